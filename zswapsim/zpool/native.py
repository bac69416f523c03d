"""The native engine's allocators: the compiled twins in zswapsim/_engine
(zbud.c of zbud.py, zsmalloc.c of zsmalloc.py, z3fold.c of z3fold.py,
xvmalloc.c of xvmalloc.py, zcache_zbud.c of zcache_zbud.py), reachable one
call at a time with the Python pools' API, as _heapq stands behind heapq.

The Python models stay the reference; these must agree with them call for
call (tests/test_engine_pools.py drives both with the same operations).  A
native pool takes every new frame from its Memory through alloc_page, so
pfns, budgets and injected faults are the Memory's own, and stores its bytes
in the Memory's frames (zswapsim/_engine/module.c).  Handles, return values,
exceptions and their messages, counters, list orders and check() are the
Python pools'; map() gives a view of the frame as they do.  What differs:
handles, sizes and retries must be ints (TypeError otherwise; retries
beyond 63 bits raise OverflowError), evict callbacks must return ints, and
the internals the Python classes expose to their own tests (pages,
objects, handles, size_class, freelist, zombies) are not here.
"""

from .. import _engine
from ..errors import PoolCorrupted
from ..memory import Memory
from .base import check_frames, register
from .xvmalloc import XvmallocPool
from .z3fold import NCHUNKS as Z3FOLD_NCHUNKS
from .zbud import NCHUNKS as ZBUD_NCHUNKS
from .zcache_zbud import NCHUNKS as ZCACHE_NCHUNKS, TMEM_HANDLE_SIZE
from .zsmalloc import CHAIN_SIZES, DEFAULT_CHAIN_SIZE


class _NativePool:
    """What both native pools add in Python: the Memory default and the
    audit's wording (base.Zpool's)."""

    __slots__ = ()
    engine = "native"
    options = {}

    def _corrupted(self, message):
        raise PoolCorrupted(f"{self.name} pool: {message}")


class _NativePagePool(_NativePool):
    """What the page pools with unbuddied lists add (base.PagePool's
    introspection): their _reclaim_order ends with (mask, lists)."""

    __slots__ = ()
    nchunks = 0                 # how many unbuddied lists

    def __init__(self, memory=None, evict=None):
        super().__init__(Memory() if memory is None else memory, evict)

    def check(self):
        """The Python model's audit: the Memory's side here, the pool's in C."""
        check_frames(self, self._pfns())
        self._check()

    def lru_pfns(self):
        """Page frame numbers from the LRU head (newest) to the tail."""
        return list(reversed(self._reclaim_order()[0]))

    def unbuddied_pfns(self, free_chunks):
        """Pages on unbuddied[free_chunks], head first."""
        if not 0 <= free_chunks < self.nchunks:
            raise IndexError(f"unbuddied[{free_chunks}] is not one of the "
                             f"{self.nchunks} lists")
        return list(reversed(self._reclaim_order()[-1][1][free_chunks]))


@register
class NativeZbudPool(_NativePagePool, _engine.Zbud):
    __slots__ = ()
    name = "zbud"
    nchunks = ZBUD_NCHUNKS


@register
class NativeZ3foldPool(_NativePagePool, _engine.Z3fold):
    """z3fold.c; locate(handle) and layout(pfn) are z3fold.py's."""

    __slots__ = ()
    name = "z3fold"
    nchunks = Z3FOLD_NCHUNKS


@register
class NativeZsmallocPool(_NativePool, _engine.Zsmalloc):
    __slots__ = ()
    name = "zsmalloc"
    options = {"chain_size": CHAIN_SIZES}

    def __init__(self, memory=None, evict=None, chain_size=DEFAULT_CHAIN_SIZE):
        super().__init__(Memory() if memory is None else memory, evict, chain_size)

    def check(self):
        self._check()

    def lru_zspage_ids(self):
        """Zspage ids from the LRU head (newest) to the tail."""
        return list(reversed(self._reclaim_order()[0]))


@register
class NativeXvmallocPool(_NativePool, _engine.Xvmalloc):
    __slots__ = ()
    name = "xvmalloc"

    def __init__(self, memory=None, evict=None):
        super().__init__(Memory() if memory is None else memory, evict)

    def check(self):
        """xvmalloc.py's audit: the pages under reclaim and the Memory's side
        here, the rest in xvmalloc.c."""
        under_reclaim = self._under_reclaim()
        if under_reclaim:
            self._corrupted(f"pages {under_reclaim} under reclaim")
        check_frames(self, self._pfns())
        self._check()

    def lru_pfns(self):
        """Page frame numbers from the LRU head (newest) to the tail."""
        return list(reversed(self._reclaim_order()))

    # The headers are in the Memory's frames: the model's reader reads them.
    page_blocks = XvmallocPool.page_blocks


@register
class NativeZcacheZbudPool(_NativePool, _engine.ZcacheZbud):
    __slots__ = ()
    name = "zcache-zbud"
    options = {"key_in_handle": range(TMEM_HANDLE_SIZE + 1)}

    def __init__(self, memory=None, evict=None, key_in_handle=0):
        super().__init__(Memory() if memory is None else memory, evict, key_in_handle)

    def check(self):
        """zcache_zbud.py's audit: the Memory's side here, the pool's in
        zcache_zbud.c."""
        check_frames(self, self._pfns())
        self._check()

    def lru_pfns(self):
        """Page frame numbers from the LRU's MRU end to its oldest."""
        return list(reversed(self._reclaim_order()))

    def unbuddied_pfns(self, used_chunks):
        """Pages on the kernel's unbuddied[used_chunks], head (oldest) first."""
        if not 0 < used_chunks <= ZCACHE_NCHUNKS:
            raise IndexError(f"unbuddied[{used_chunks}] is not one of the kernel's lists "
                             f"1..{ZCACHE_NCHUNKS}")
        return self._unbuddied(ZCACHE_NCHUNKS - used_chunks)
