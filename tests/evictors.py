"""The evict callback the allocator reclaim tests share."""

import errno


class Evictor:
    """Records the handles it is asked to evict, in order, and frees each
    one (success, 0) unless it is in `refuse` (-EEXIST, as zswap answers for
    a page in the swap cache).  With `unchanged` the refusal is returned
    through pool.unchanged(), as zswap's writeback returns it, which lets
    reclaim_page count repeated rounds instead of running them; without it
    every try runs, the plain loop."""

    def __init__(self, refuse=(), unchanged=False):
        self.refuse = set(refuse)
        self.unchanged = unchanged
        self.calls = []

    def __call__(self, pool, handle):
        self.calls.append(handle)
        if handle in self.refuse:
            return pool.unchanged(-errno.EEXIST) if self.unchanged else -errno.EEXIST
        pool.free(handle)
        return 0
