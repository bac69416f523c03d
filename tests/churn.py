"""A small churning trace for the sweep tests: 1,500 events over 400 real
pages of the shipped python-heap trace (stores, loads that leave pages in
the swap cache, invalidations), with a fixed seed, so that a RAM of 1,000
pages makes every pool's 20 % limit bite and reclaim run."""

import random
from pathlib import Path

from zswapsim.trace import TraceReader, TraceWriter

SHIPPED = Path(__file__).resolve().parents[1] / "traces" / "python-heap.trace"


def write_churn_trace(path):
    """Write the churn trace to `path` and return `path`."""
    images = [image for _, _, _, image, _ in TraceReader(SHIPPED)][:400]
    rng = random.Random(11)
    stored = set()
    with TraceWriter(path) as w:
        for _ in range(1500):
            offset = rng.randrange(600)
            kind = rng.random()
            if kind < 0.7 or offset not in stored:
                w.store(0, offset, rng.choice(images))
                stored.add(offset)
            elif kind < 0.9:
                w.load(0, offset)
            else:
                w.invalidate_page(0, offset)
                stored.discard(offset)
    return path
