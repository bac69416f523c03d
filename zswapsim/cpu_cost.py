"""What a replay's compressor costs in CPU time, measured on this machine.

Density alone does not say whether a compressor pays: zstd packs more pages
into the pool than lz4 but spends more time on each.  `replay` and `compare`
therefore time the compressor the run used on the trace's own pages, here,
after the replay: compress and decompress microseconds per page, and what
the replay's traffic would spend at those rates:

    cpu_seconds_stores_loads = stores * compress_us_per_page
        + (zswpin + written_back_pages) * decompress_us_per_page

Every store zswap is offered counts as a compression, and every page zswap
hands back, to a load (zswpin) or to writeback (which decompresses the
entry to write it to the swap device), as a decompression.  The kernel
skips the compressor for same-filled pages and for stores it refuses
before compressing, so the total is an upper bound by their share.

These are this machine's figures, through this simulator's bindings, not
the kernel's: another CPU, the kernel's build and its cache state give
other times.  They are timings, so they differ from run to run and are no
part of what a replay's result must reproduce (MEASURED).

The pages: up to SAMPLE_PAGES of the trace's distinct page images, spread
evenly over it (every k-th image id, k from the trailer's image count),
collected block by block as the replay reads them.  The timing: the best
of up to PASSES passes, within a budget of BUDGET_SHARE of the replay's
own time, so measuring stays small against the replay it reports on; a
short replay's budget cuts the pages timed, to MIN_PAGES at the least.
A pass is timed in this thread's CPU time (time.thread_time), not
wall-clock time (time.perf_counter): where other processes share the
cores, a pass preempted halfway would count their time too (on a 2-core
machine with three others busy, wall-clock figures of one replay to the
next differed up to fourfold; CPU-time figures, by a few per cent).
"""

import gc
import time

from .memory import PAGE_SIZE

SAMPLE_PAGES = 2000
PASSES = 3
BUDGET_SHARE = 0.05         # of the replay's seconds, shared by the compressors timed
MIN_PAGES = 100
CHUNK = 50                  # pages between looks at the budget; the warm-up's pages

# The result fields measured here: timings, which no test of a replay's
# reproducible result compares (nor cpu_sample_pages, which the budget
# decides).
MEASURED = ("compress_us_per_page", "decompress_us_per_page", "cpu_seconds_stores_loads",
            "cpu_sample_pages")

# The total in words, for the command line, given the names it shows
# the first three MEASURED fields by.
TOTAL_RULE = "{2} = stores x {0} + (zswpin + written_back_pages) x {1}"


class PageSample:
    """Up to `size` of a trace's page images, every k-th image id, chosen
    so that k spreads them over the whole trace; take() them block by block."""

    def __init__(self, reader, size=SAMPLE_PAGES):
        self.size = size
        self.stride = max(1, -(-(reader.image_count() or 0) // size))
        self.pages = []
        self._next_id = 0

    def take(self, images, defined):
        """From a block's live `images` (id -> page), those sampled among
        the ids below `defined` (the reader's images_defined) not yet seen."""
        while self._next_id < defined and len(self.pages) < self.size:
            self.pages.append(images[self._next_id])
            self._next_id += self.stride


def page_costs(compressors, pages, replay_seconds):
    """page_cost() of each of `compressors` ({name: compressor}) on the
    sampled `pages`, sharing BUDGET_SHARE of the replay's seconds."""
    budget = BUDGET_SHARE * replay_seconds / max(1, len(compressors))
    return {name: page_cost(compressor, pages, budget)
            for name, compressor in compressors.items()}


def page_cost(compressor, pages, budget_seconds):
    """(compress µs per page, decompress µs per page, pages compressed) of
    `compressor` on `pages`, each direction in half of `budget_seconds`.
    Decompression is timed on the outputs shorter than a page, the ones a
    pool could hold (None when there is none); both None without pages."""
    if not pages:
        return None, None, 0
    compress_us, outputs = _best_per_item_us(compressor.compress, pages, budget_seconds / 2)
    stored = [data for data in outputs if len(data) < PAGE_SIZE]
    decompress_us = _best_per_item_us(compressor.decompress, stored, budget_seconds / 2)[0] \
        if stored else None
    return compress_us, decompress_us, len(outputs)


def _best_per_item_us(call, items, budget_seconds):
    """(µs per item of the fastest of up to PASSES timed passes of call()
    over items, the outputs of the first).  CHUNK items warm the caches
    first.  The first pass decides how many items fit the budget: it stops
    at a PASSES-th of it, once MIN_PAGES are done; the others follow while
    the budget lasts.  The garbage collector is off meanwhile, as timeit
    has it, so no collection of the replay's objects lands in a pass."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        for item in items[:CHUNK]:
            call(item)
        spent, outputs = 0.0, []
        for start in range(0, len(items), CHUNK):
            if len(outputs) >= MIN_PAGES and spent >= budget_seconds / PASSES:
                break
            started = time.thread_time()
            outputs += [call(item) for item in items[start:start + CHUNK]]
            spent += time.thread_time() - started
        items, best = items[:len(outputs)], spent
        for _ in range(PASSES - 1):
            if spent + best > budget_seconds:
                break
            started = time.thread_time()
            for item in items:
                call(item)
            took = time.thread_time() - started
            spent, best = spent + took, min(best, took)
    finally:
        if collecting:
            gc.enable()
    return best / len(items) * 1e6, outputs


def cpu_cost(cost, counts):
    """The MEASURED fields of one replay: `cost` as page_cost() gave it,
    the total from the replay's counters (see the module's comment)."""
    compress_us, decompress_us, sample_pages = cost
    compress_us = None if compress_us is None else round(compress_us, 3)
    decompress_us = None if decompress_us is None else round(decompress_us, 3)
    total_us = counts["stores"] * (compress_us or 0) + \
        (counts["zswpin"] + counts["written_back_pages"]) * (decompress_us or 0)
    return {"compress_us_per_page": compress_us, "decompress_us_per_page": decompress_us,
            "cpu_seconds_stores_loads": round(total_us / 1e6, 6),
            "cpu_sample_pages": sample_pages}
