"""Build swapcache-churn.trace: a program that reads its old data back in
while it keeps allocating and freeing, so the oldest pages in zswap's pool
sit in the swap cache and writeback meets -EEXIST at the LRU tail.

The page images are real: 1400 pages sampled (fixed seed) from the stores of
python-heap.trace, the anonymous memory of a Python 3.11 process, zero and
same-filled pages included in their real share; they are used in the
process's order, so pages repeat.  The event sequence is synthetic and comes
from the same fixed seed, so every run writes the same bytes.

The program, in rounds of 80 new pages swapped out (stores at fresh offsets):

- its swapped-out footprint follows a sawtooth from 1000 to 2200 pages and
  back, six times: each round frees (invalidates) as many pages as it takes
  to meet the curve, picking old data more often than new;
- twice a cycle it reads back the 500 oldest swapped-out pages (loads).  They
  stay in the swap cache, their zswap entries in place, for 20 rounds; then
  half are written again (stored, which drops them from the swap cache) and
  the rest are freed.

The oldest pages are the pool's LRU tail, so while a batch is held every
reclaim that reaches the tail finds pages it cannot write back: reclaim_page
fails unless `retries` carries it past the held run.  The sawtooth makes the
pool cross its limit again and again, in kernel 6.1 (one shrink per limit
hit, then the 90 % hysteresis) as in 3.11 (reclaim on every store over the
limit).

    python traces/make_swapcache_trace.py [OUT.trace]

writes OUT.trace (default: swapcache-churn.trace beside this script).
"""

import itertools
import random
import sys
from pathlib import Path

from zswapsim.trace import STORE, TraceReader, TraceWriter

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "python-heap.trace"
OUTPUT = HERE / "swapcache-churn.trace"
SEED = 20261122
SWAP_TYPE = 0

PARAMS = dict(
    images=1400,          # page images sampled from the source trace's stores
    low=1000,             # swapped-out pages the footprint falls back to
    high=2200,            # and rises to, once a cycle
    cycles=6,             # rise-and-fall cycles
    period=40,            # rounds per cycle
    stores=80,            # new pages swapped out per round
    batches=(0.3, 0.7),   # where in a cycle old data is read back
    batch=500,            # oldest swapped-out pages read back per batch
    hold=20,              # rounds a batch stays in the swap cache
    dirty=0.5,            # share of a batch written again afterwards; the rest is freed
    old_bias=2.0,         # a free takes the page of age rank n * random() ** old_bias
)

DESCRIPTION = ("swap-cache churn: a program reads its oldest swapped-out data back in and "
               "holds it in the swap cache while it allocates and frees (footprint sawtooth "
               "1000..2200 pages); page images sampled from python-heap.trace; made by "
               f"traces/make_swapcache_trace.py (seed {SEED})")


def source_pages(count, rng):
    """`count` page images from the source trace's stores, in the order the
    process held them."""
    images = [image for op, _type, _offset, image, _ts in TraceReader(SOURCE) if op == STORE]
    return [images[i] for i in sorted(rng.sample(range(len(images)), count))]


def footprint_target(round_, p):
    """Swapped-out pages the program is at after `round_`: a sawtooth."""
    phase = (round_ % p["period"]) / p["period"]
    rise = 2 * phase if phase < 0.5 else 2 - 2 * phase
    return p["low"] + (p["high"] - p["low"]) * rise


class Program:
    """The swap slots of one program, and the trace its paging writes."""

    def __init__(self, writer, pages, rng, p):
        self.w, self.pages, self.rng, self.p = writer, pages, rng, p
        self.swapped = {}        # offset -> None, oldest swap-out first
        self.next_offset = 0
        self.cursor = 0          # next page image, in the process's order

    def swap_out(self, offset=None):
        if offset is None:
            offset, self.next_offset = self.next_offset, self.next_offset + 1
        self.w.store(SWAP_TYPE, offset, self.pages[self.cursor % len(self.pages)])
        # Mostly the next page of the heap, now and then a jump ahead.
        self.cursor += 1 if self.rng.random() >= 0.1 else self.rng.randrange(2, 41)
        self.swapped[offset] = None

    def free_old(self):
        rank = int(len(self.swapped) * self.rng.random() ** self.p["old_bias"])
        offset = next(itertools.islice(self.swapped, rank, None))
        del self.swapped[offset]
        self.w.invalidate_page(SWAP_TYPE, offset)

    def read_back_oldest(self, count):
        """Swap in the `count` oldest swapped-out pages; they stay in the swap cache."""
        run = list(itertools.islice(self.swapped, count))
        for offset in run:
            self.w.load(SWAP_TYPE, offset)
            del self.swapped[offset]
        return run


def build(path=OUTPUT, **overrides):
    """Write the trace to `path`; keyword arguments override PARAMS."""
    p = {**PARAMS, **overrides}
    rng = random.Random(SEED)
    pages = source_pages(p["images"], rng)
    batch_rounds = {int(p["period"] * at) for at in p["batches"]}
    with TraceWriter(path, description=DESCRIPTION) as w:
        program = Program(w, pages, rng, p)
        held = {}                # round -> offsets leaving the swap cache then
        for _ in range(p["low"]):
            program.swap_out()
        for round_ in range(p["cycles"] * p["period"]):
            for offset in held.pop(round_, ()):
                if rng.random() < p["dirty"]:
                    program.swap_out(offset)
                else:
                    w.invalidate_page(SWAP_TYPE, offset)
            if round_ % p["period"] in batch_rounds:
                held.setdefault(round_ + p["hold"], []).extend(
                    program.read_back_oldest(p["batch"]))
            frees = round(len(program.swapped) + p["stores"] - footprint_target(round_ + 1, p))
            actions = [True] * p["stores"] + [False] * max(0, frees)
            rng.shuffle(actions)
            for is_store in actions:
                if is_store:
                    program.swap_out()
                elif program.swapped:
                    program.free_old()
    return path


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT))
