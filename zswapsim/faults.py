"""Faults injected on purpose, to show that nothing is lost when the kernel's
calls fail: page-frame allocations (-ENOMEM), swap-device writes (-EIO) and
the evict callback (-EIO), each at a rate, drawn from one seeded generator
so a run is repeatable.  Each kind counts the faults it injected, so the
counters they cause can be held against them.
"""

import random

from .config import check_rate

KINDS = ("alloc", "swap_write", "evict")


class FaultPlan:
    def __init__(self, seed=0, alloc=0.0, swap_write=0.0, evict=0.0):
        self.rates = {"alloc": alloc, "swap_write": swap_write, "evict": evict}
        for kind, rate in self.rates.items():
            check_rate(kind, rate)
        self.rng = random.Random(seed)
        self.injected = dict.fromkeys(KINDS, 0)

    def fail(self, kind):
        """Whether this call of `kind` fails; counted when it does."""
        rate = self.rates[kind]
        if rate and self.rng.random() < rate:
            self.injected[kind] += 1
            return True
        return False
