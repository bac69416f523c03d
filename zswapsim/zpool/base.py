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

The evict callback returns 0 once it has freed the handle, or -errno.  A
failure that changed nothing, in the pool or outside it, and that the same
call would repeat for as long as nothing changes (zswap's -EEXIST for a page
in the swap cache) may be returned as pool.unchanged(-errno): reclaim_page
then counts the rounds of the LRU such failures would repeat instead of
running them (ReclaimTries), so a huge `retries` costs no more than a few
rounds.

Each allocator has two engines: the Python model here (the readable
reference) and its compiled twin in zswapsim/_engine (native.py), which must
agree with it call for call; create_pool(..., engine=...) picks one.
"""

from collections import OrderedDict

from ..engine import ENGINES
from ..errors import ConfigError, Invalid, PoolCorrupted
from ..memory import PAGE_SIZE, Memory


class Zpool:
    """Common state: the frames' owner, the evict callback, reclaim counters."""

    name = ""
    # The options a driver's constructor takes beyond memory and evict, each
    # with the values it accepts (zsmalloc's chain_size); most take none.
    options = {}

    def __init__(self, memory=None, evict=None):
        self.memory = memory if memory is not None else Memory()
        self.evict = evict
        # What reclaim cost: calls, pages taken off the LRU tail, evict calls,
        # and evict results by errno (0 for success).
        self.reclaim_calls = 0
        self.reclaim_pages_scanned = 0
        self.evict_calls = 0
        self.evict_results = {}
        # The result of the last evict call if its callback marked it
        # unchanged, else 0.
        self.unchanged_result = 0

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
        self.unchanged_result = 0
        ret = self.evict(self, handle)
        self.evict_results[ret] = self.evict_results.get(ret, 0) + 1
        if ret != self.unchanged_result:
            self.unchanged_result = 0
        return ret

    def unchanged(self, ret):
        """For an evict callback, `return pool.unchanged(-errno.EEXIST)`:
        this failure changed nothing and would recur, call for call, until
        something else changes (see the module comment)."""
        self.unchanged_result = ret
        return ret

    def _reclaim_order(self):
        """What a reclaim try that changes nothing can still move: the order
        of the LRU and of the lists a page is put back on, as a value two
        calls can compare."""
        raise NotImplementedError

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


class PagePool(Zpool):
    """A pool of single pages known by pfn, with a page LRU: zbud, z3fold
    and xvmalloc (zsmalloc's units are zspages)."""

    def __init__(self, memory=None, evict=None):
        super().__init__(memory, evict)
        self.pages = {}                   # pfn -> the allocator's page record
        self.lru = OrderedDict()          # pfn -> ...; last item = LRU head (most recent)

    def total_pages(self):
        return len(self.pages)

    def _check_frames(self):
        check_frames(self, self.pages)

    def _reclaim_order(self):
        return tuple(self.lru)

    # -- introspection for tests and reports -----------------------------

    def lru_pfns(self):
        """Page frame numbers from the LRU head (newest) to the tail."""
        return list(reversed(self.lru))


def check_frames(pool, pfns):
    """The audit the page pools share (either engine): every page in `pfns`
    is a frame of the pool's Memory and not on its free list, and
    total_pages counts them all."""
    memory = pool.memory
    free_frames, frames = memory.free_pfns(), len(memory.frames)
    for pfn in pfns:
        if pfn >= frames or pfn in free_frames:
            pool._corrupted(f"page {pfn}: not a frame the pool holds")
    if not pool.total_pages() == len(pfns) <= memory.used_pages:
        pool._corrupted(f"total_pages {pool.total_pages()} for {len(pfns)} pages, "
                        f"{memory.used_pages} frames in use")


class UnbuddiedLists(list):
    """zbud's and z3fold's unbuddied[n], the pages with n free chunks, with
    a mask to find the first candidate list in one step.

    Each list is a dict pfn -> page header whose *last* item is the list
    head, so list_add is an insert and list_first_entry popitem(); a header
    keeps the list it is on in `buddy_list`.  Bit n of `mask` is set when
    unbuddied[n] may be non-empty: the kernel's for_each_unbuddied_list
    tries each list from n up, take() jumps to the first marked one and
    clears the bits of lists it finds empty.

    zcache's zbud adds at the list tail and takes the first entry: with
    `fifo` each list's *first* item is its head and take() pops it, the
    oldest page on the list."""

    __slots__ = ("mask", "fifo")

    def __init__(self, nchunks, fifo=False):
        super().__init__({} for _ in range(nchunks))
        self.mask = 0
        self.fifo = fifo

    def add(self, zhdr, free_chunks):
        """list_add the page at the head of unbuddied[free_chunks] (with
        fifo, list_add_tail: at its tail)."""
        pages = zhdr.buddy_list = self[free_chunks]
        pages[zhdr.pfn] = zhdr
        self.mask |= 1 << free_chunks

    def take(self, chunks):
        """The head of the first non-empty list from unbuddied[chunks] up,
        taken off its list, or None."""
        mask = self.mask >> chunks
        while mask:
            low = mask & -mask
            candidates = self[chunks + low.bit_length() - 1]
            if candidates:
                if self.fifo:
                    zhdr = candidates.pop(next(iter(candidates)))
                else:
                    zhdr = candidates.popitem()[1]
                zhdr.buddy_list = None
                return zhdr
            self.mask ^= low << chunks          # emptied since its bit was set
            mask ^= low
        return None

    def check(self, corrupted):
        """For check(): no listed page hides behind a clear mask bit."""
        unmarked = [n for n, pages in enumerate(self) if pages and not self.mask >> n & 1]
        if unmarked:
            corrupted(f"unbuddied{unmarked} listed but their mask bits clear")

    def order(self):
        """The lists' order, for _reclaim_order."""
        return self.mask, tuple(tuple(pages) for pages in self)


class ReclaimTries:
    """The `retries` tries of one reclaim_page call, finished arithmetically
    once they have stopped changing anything.

    A try that cannot free its page puts the page back at the LRU head, and
    the next try takes the new tail.  Once every page in turn has failed on
    an evict result its callback marked unchanged, nothing but the order of
    the LRU and of the pool's lists can have moved; and once a whole round
    of such tries also leaves that order as it found it, every later round
    repeats it exactly.  take() then counts the whole rounds left as running
    them would count them (pages scanned, evict calls, evict results) and
    leaves only the last, partial round to run.  A round usually restores
    the order at once (zbud, z3fold, xvmalloc); zsmalloc's insert_zspage,
    which lets a busier head stay in front, can need a round or two more."""

    __slots__ = ("pool", "left", "calls", "first", "results", "order")

    def __init__(self, pool, retries):
        self.pool = pool
        self.left = retries
        self.calls = 0          # the pool's evict_calls as the current try began
        self.first = None       # LRU key of the page that began the run of unchanged tries
        self.results = []       # the evict result of each try in that run
        self.order = None       # the pool's order when the run last came round to `first`

    def take(self, key):
        """Whether a try is left for the page at LRU key `key`, the tail."""
        if key == self.first:
            self._came_round()
        if self.left <= 0:
            return False
        self.left -= 1
        self.calls = self.pool.evict_calls
        return True

    def put_back(self, key):
        """The page at `key` could not be freed and is back at the LRU head."""
        pool = self.pool
        if pool.unchanged_result and pool.evict_calls == self.calls + 1:
            if not self.results:
                self.first = key
            self.results.append(pool.unchanged_result)
        elif self.results:
            self.first, self.results, self.order = None, [], None

    def _came_round(self):
        pool, results = self.pool, self.results
        order = pool._reclaim_order()
        if order == self.order:
            rounds, self.left = divmod(self.left, len(results))
            pool.reclaim_pages_scanned += rounds * len(results)
            pool.evict_calls += rounds * len(results)
            for ret in results:
                pool.evict_results[ret] += rounds
            order = None
        self.order = order
        self.first, self.results = None, []


# create_pool's default: the Python models, which the Python Zswap builds on
# whatever engine zswap runs in (engine.py chooses that).
DEFAULT_ENGINE = "python"
_DRIVERS = {engine: {} for engine in ENGINES}


def register(cls):
    """Class decorator: make an allocator available to create_pool by name,
    in the engine its class names (`engine`, "python" unless it says)."""
    _DRIVERS[getattr(cls, "engine", "python")][cls.name] = cls
    return cls


def known_pools(engine="python"):
    return sorted(_DRIVERS[engine])


def pool_driver(name, engine="python"):
    """The registered driver class of allocator `name` in `engine`."""
    if engine not in _DRIVERS:
        raise ConfigError(f"unknown engine '{engine}'; known: {', '.join(ENGINES)}")
    drivers = _DRIVERS[engine]
    if name not in drivers:
        if name in _DRIVERS["python"]:
            raise ConfigError(f"the {engine} engine has no {name} yet; "
                              f"it has {', '.join(known_pools(engine))}")
        raise ConfigError(f"unknown backend '{name}'; known: {', '.join(known_pools())}")
    return drivers[name]


def check_pool_options(name, options):
    """Refuse options driver `name` does not declare, or values outside the
    ones it declares, naming what it takes."""
    declared = pool_driver(name).options
    for option, value in options.items():
        if option not in declared:
            takes = (f"takes only {', '.join(declared)}" if declared
                     else "takes no pool options")
            raise ConfigError(f"{name} {takes}, not {option}")
        values = declared[option]
        if isinstance(value, bool) or not isinstance(value, int) or value not in values:
            raise ConfigError(f"{name} {option} {value!r} is outside "
                              f"{values.start}..{values.stop - 1}")


def create_pool(name, memory=None, evict=None, engine=DEFAULT_ENGINE, **options):
    """A new pool of allocator `name` over `memory` (None: its own, unbounded),
    calling `evict(pool, handle) -> 0 | -errno` when reclaim needs room; in
    the Python model or its compiled twin (`engine` "python" or "native")."""
    driver = pool_driver(name, engine)
    check_pool_options(name, options)
    return driver(memory=memory, evict=evict, **options)
