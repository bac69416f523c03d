"""The zpool contract every allocator model implements.

It is the kernel's zpool API, trimmed to what zswap and zram call: malloc
returns an opaque handle, write/read copy real bytes to and from the object
(the kernel's map/memcpy/unmap), map gives the bytes to read in place (a
view into the frame, as zpool_map_handle maps the object), free releases
it, reclaim_page(retries) runs the allocator's LRU reclaim through the
owner's evict callback, and total_pages counts the frames held.  Failures
raise the kernel errno as an exception (NoSpace, NoMemory, Invalid);
reclaim_page returns 0 or -errno, as the kernel function does, because its
callers branch on the value.
"""

from ..errors import ConfigError, Invalid, PoolCorrupted
from ..memory import PAGE_SIZE, Memory


class Zpool:
    """Common state: the frames' owner, the evict callback, reclaim counters."""

    name = ""

    def __init__(self, memory=None, evict=None):
        self.memory = memory if memory is not None else Memory()
        self.evict = evict
        # What reclaim cost: calls, pages taken off the LRU tail, evict calls,
        # and evict results by errno (0 for success).
        self.reclaim_calls = 0
        self.reclaim_pages_scanned = 0
        self.evict_calls = 0
        self.evict_results = {}

    def malloc(self, size):
        raise NotImplementedError

    def free(self, handle):
        raise NotImplementedError

    def write(self, handle, data):
        frame, offset, size = self._extent(handle)
        if len(data) > size:
            raise Invalid(f"write of {len(data)} bytes into a {size}-byte object")
        frame[offset:offset + len(data)] = data

    def map(self, handle):
        """The object's bytes for reading without a copy: a view into its
        frame, good until the pool next changes (compare its bytes, not the
        view: a memoryview compares item by item)."""
        frame, offset, size = self._extent(handle)
        return frame[offset:offset + size]

    def read(self, handle):
        return bytes(self.map(handle))

    def _extent(self, handle):
        """(frame, byte offset, size) of a live object that lies in one page;
        pools whose objects span pages override write and map instead."""
        raise NotImplementedError

    def reclaim_page(self, retries):
        raise NotImplementedError

    def total_pages(self):
        raise NotImplementedError

    def total_size(self):
        """Bytes of pool pages, as zpool_get_total_size reports."""
        return self.total_pages() * PAGE_SIZE

    def _call_evict(self, handle):
        """Run the owner's evict callback and count its result."""
        self.evict_calls += 1
        ret = self.evict(self, handle)
        self.evict_results[ret] = self.evict_results.get(ret, 0) + 1
        return ret

    # -- the audit's helpers -------------------------------------------------

    def _corrupted(self, message):
        """Raise PoolCorrupted: every check() fails through here, with an
        if rather than an assert, so the audits stay on under python -O and
        a compiled check() can raise the same error in the same words."""
        raise PoolCorrupted(f"{self.name} pool: {message}")

    def _check_disjoint(self, pfn, extents):
        """The (start, end, name) byte ranges laid in page `pfn` (a header,
        objects) overlap nowhere and end within the page."""
        extents = sorted(extents)
        for (_, end, name), (start, _, other) in zip(extents, extents[1:]):
            if end > start:
                self._corrupted(f"page {pfn}: {name} overlaps {other}")
        if extents and extents[-1][1] > PAGE_SIZE:
            self._corrupted(f"page {pfn}: {extents[-1][2]} ends past the page")


_DRIVERS = {}


def register(cls):
    """Class decorator: make an allocator available to create_pool by name."""
    _DRIVERS[cls.name] = cls
    return cls


def known_pools():
    return sorted(_DRIVERS)


def create_pool(name, memory=None, evict=None, **options):
    """A new pool of allocator `name` over `memory` (None: its own, unbounded),
    calling `evict(pool, handle) -> 0 | -errno` when reclaim needs room."""
    try:
        driver = _DRIVERS[name]
    except KeyError:
        raise ConfigError(f"unknown backend '{name}'; known: {', '.join(known_pools())}") from None
    return driver(memory=memory, evict=evict, **options)
