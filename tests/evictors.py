"""The evict callback the allocator reclaim tests share."""

import errno


class Evictor:
    """Records the handles it is asked to evict, in order, and frees each
    one (success, 0) unless it is in `refuse` (-EEXIST, as zswap answers for
    a page in the swap cache)."""

    def __init__(self, refuse=()):
        self.refuse = set(refuse)
        self.calls = []

    def __call__(self, pool, handle):
        self.calls.append(handle)
        if handle in self.refuse:
            return -errno.EEXIST
        pool.free(handle)
        return 0
