"""The swap-out path with zswap in front of a swap device, as frontswap drove
it: store / load / invalidate_page / invalidate_area on (swap type, offset).

Three kernels are modelled, chosen by `kernel`, a profile of profiles.py
whose facts the store path branches on:

6.1 (default).  frontswap invalidates an offset it already holds before it
calls store, so zswap itself never sees a duplicate (duplicate_entry stays
0; `duplicate_stores` counts them).  The store checks the pool limit first:
when the pool is over max_pool_percent of RAM it counts pool_limit_hit,
remembers that the pool reached full, queues the shrink work and refuses
the page; while the pool stays above accept_threshold_percent of the limit
every store is refused (hysteresis) without more shrinking.  The shrink
work, run before the next event as the workqueue would, is zpool_shrink(1):
one reclaim_page(retries) call, a failure counted in reject_reclaim_fail.
Same-filled pages are kept as their 8-byte word outside the pool (and
counted in stored_pages).  The page is compressed into a PAGE_SIZE buffer:
output that does not fit is refused with no counter at all.  zbud and
z3fold allocations carry an 8-byte zswap_header (the swap entry, which lets
writeback find the tree entry) in front of the compressed bytes; zsmalloc's
do not, since it is not evictable in 6.1 (its zpool has no shrink, so the
shrink work fails with -EINVAL).  xvmalloc and zcache's zbud, which zswap
never had (what-ifs), are given the header and their LRU reclaim; zcache's
zbud keeps it inside the 32-byte tmem handle each of its objects carries.

6.3.  The 6.1 store path with 6.3's zsmalloc: evictable through its zspage
LRU (so its allocations carry the header too) and chains of
CONFIG_ZSMALLOC_CHAIN_SIZE = 8 pages.

3.11.  One pool per swap type; a store that finds the pool full counts
pool_limit_hit and runs reclaim_page(retries) on the spot: failure counts
reject_reclaim_fail and refuses the page, success lets the store go on.
No same-filled pages; the compression buffer is two pages, so poor output
reaches the allocator and counts reject_compress_poor; a duplicate store
counts duplicate_entry and replaces the old entry (frontswap drops the old
copy if the new store fails).

Either way, a refused page goes to the swap device, as the swap core writes
it there.  The evict callback is zswap_writeback_entry: find the entry from
the header in the object; 0 with no work if it was invalidated; -EEXIST if
the page is in the swap cache (loaded and not invalidated since: loads
leave the entry in place, as both kernels do); -ENOMEM if no RAM frame is
free for the swap-cache page; otherwise decompress into that frame, write it
to the swap device, free the entry and count written_back_pages.
"""

import dataclasses
import errno
import struct

from .compress import PAGE_SIZE, CompressionCache, get_compressor, page_key
from .config import ZswapConfig
from .errors import ConfigError, Invalid, NoMemory, NoSpace, WriteError
from .faults import FaultPlan
from .memory import Memory, same_filled_word
from .profiles import DEBUGFS_6_1, FRONTSWAP_INVALIDATES, RECLAIM_ON_STORE
from .swapdev import SwapDevice
from .zpool import create_pool

ZSWAP_HEADER = struct.Struct("<Q")        # struct zswap_header { swp_entry_t }
SWP_TYPE_SHIFT = 58                       # our swp_entry_t: type above offset
SWP_OFFSET_MASK = (1 << SWP_TYPE_SHIFT) - 1

CLASS_COUNTS = ("almost_full", "almost_empty", "obj_allocated", "obj_used", "pages_used",
                "freeable")

# The debugfs counters every replay reports, in the order the kernel's
# directory lists them (6.1's names, whichever profile runs).
DEBUGFS_COUNTERS = DEBUGFS_6_1


class ZswapEntry:
    __slots__ = ("handle", "length", "value")

    def __init__(self, handle, length, value):
        self.handle = handle        # 0 for a same-filled page
        self.length = length        # compressed length, 0 for a same-filled page
        self.value = value          # the repeated 8-byte word of a same-filled page


class Zswap:
    """frontswap's view of zswap plus the swap device behind it, set up by a
    ZswapConfig: `config`, with any of its settings given as keywords
    replacing the config's (Zswap(backend="zsmalloc", ram="32M")).  The
    simulated RAM, the swap device and the FaultPlan are made from the
    config unless given (a `fault_plan` given is the one `memory` and
    `swapdev` draw from); a `memory` given is the RAM.  `compressor` may be
    a CompressionCache shared with other Zswaps replaying the same pages
    (compare): each distinct page is then compressed once."""

    def __init__(self, config=None, *, memory=None, swapdev=None, fault_plan=None,
                 **settings):
        config = ZswapConfig.of(config, **settings)
        if memory is not None:
            if memory.totalram_pages is None:
                raise ConfigError("zswap needs a bounded simulated RAM: its limit is a share "
                                  "of it")
            if memory.totalram_pages != config.ram_pages and \
                    {"ram", "ram_pages"} & {name for name, value in settings.items() if value}:
                raise ConfigError(f"the memory given has {memory.totalram_pages} pages, "
                                  f"not the {config.ram_pages} of ram_pages")
            config = ZswapConfig.of(config, ram_pages=memory.totalram_pages)
        if fault_plan is None and config.faults is not None:
            fault_plan = FaultPlan(**dataclasses.asdict(config.faults))
        self.config = config
        profile = self.profile = config.profile
        self.kernel = profile.name
        self.backend = backend = config.backend
        compressor = config.compressor
        if isinstance(compressor, str):
            compressor = get_compressor(compressor)
        self.compressor = compressor if isinstance(compressor, CompressionCache) \
            else CompressionCache(compressor)
        self.memory = memory if memory is not None \
            else Memory(config.ram_pages, faults=fault_plan)
        self.swapdev = swapdev if swapdev is not None \
            else SwapDevice(capacity=config.swap_capacity, faults=fault_plan)
        self.max_pool_percent = config.max_pool_percent
        self.accept_threshold_percent = config.accept_threshold_percent
        # The limit and the hysteresis threshold in pages, as zswap computes
        # them from totalram_pages on every store (RAM does not change here).
        totalram = self.memory.totalram_pages
        self.limit_pages = totalram * config.max_pool_percent // 100
        self.accept_pages = totalram * config.accept_threshold_percent // 100 \
            * config.max_pool_percent // 100
        self.retries = config.retries
        self.same_filled_pages_enabled = config.same_filled()
        self.evictable = backend in profile.evictable
        self.pool_options = {**profile.pool_options(backend), **config.pool_options}
        self.header_len = profile.zswap_header_size if self.evictable else 0
        self.compress_buffer = profile.compress_dst_size
        self.reclaim_on_store = profile.limit_rule == RECLAIM_ON_STORE
        self.invalidate_duplicates = profile.duplicate_store == FRONTSWAP_INVALIDATES

        self.trees = {}             # swap type -> {offset: ZswapEntry}
        self.pools = {}             # swap type -> pool, or {None: the one pool}
        self.pool = None            # the one pool, unless the kernel has one per swap type
        self.swapcache = {}         # swap type -> offsets whose page is in the swap cache
        self.pool_reached_full = False
        self.shrink_pending = False
        self.last_pool_pages = 0    # 3.11's zswap_pool_pages: the last tree's pool
        self.compressed_bytes = 0   # sum of entry lengths now in the pools
        self.peak_pool_pages = 0
        self.faults = fault_plan    # a FaultPlan failing some evict calls, or None
        self.swap_full = 0          # stores the swap core could not give a slot
        self.swap_write_errors = 0  # stores whose swap-device write failed

        self.pool_limit_hit = 0
        self.reject_reclaim_fail = 0
        self.reject_alloc_fail = 0
        self.reject_kmemcache_fail = 0
        self.reject_compress_poor = 0
        self.written_back_pages = 0
        self.duplicate_entry = 0
        self.stored_pages = 0
        self.same_filled_pages = 0
        self.stores = 0
        self.zswpout = 0
        self.duplicate_stores = 0
        self.reject_pool_full = 0   # refused by the limit or its hysteresis
        self.reject_too_big = 0     # output did not fit the compression buffer
        self.loads = 0
        self.zswpin = 0
        self.load_misses = 0
        self.load_unknown = 0       # loads of an offset nothing was stored at
        self.invalidates = 0
        self.shrink_runs = 0
        self.reclaim_results = {}   # reclaim_page return value -> count

        if not profile.pool_per_swap_type:
            self.pool = self.pools[None] = self._new_pool()

    # -- pools and accounting --------------------------------------------

    def _new_pool(self):
        return create_pool(self.backend, memory=self.memory,
                           evict=self._writeback if self.evictable else None, **self.pool_options)

    def pool_for(self, swap_type):
        if self.pool is not None:
            return self.pool
        pool = self.pools.get(swap_type)
        if pool is None:
            pool = self.pools[swap_type] = self._new_pool()
        return pool

    def pool_pages(self):
        if self.pool is not None:
            return self.pool.total_pages()
        return sum(pool.total_pages() for pool in self.pools.values())

    @property
    def pool_total_size(self):
        return self.pool_pages() * PAGE_SIZE

    def _reclaim(self, pool):
        ret = pool.reclaim_page(self.retries)
        self.reclaim_results[ret] = self.reclaim_results.get(ret, 0) + 1
        return ret

    def run_pending_work(self):
        """The shrink worker, as the workqueue runs it once the store returns
        (the frontswap calls run it first when it is pending)."""
        if not self.shrink_pending:
            return
        self.shrink_pending = False
        self.shrink_runs += 1
        if self._reclaim(self.pools[None]) < 0:
            self.reject_reclaim_fail += 1

    # -- entries ---------------------------------------------------------

    def _free_entry(self, swap_type, entry):
        if entry.length == 0:
            self.same_filled_pages -= 1
        else:
            pool = self.pool_for(swap_type)
            pool.free(entry.handle)
            self.compressed_bytes -= entry.length
            if self.reclaim_on_store:
                self.last_pool_pages = pool.total_pages()
        self.stored_pages -= 1

    def _drop(self, swap_type, offset):
        """Forget an offset's copy in zswap, if any; True when there was one."""
        tree = self.trees.get(swap_type)
        entry = tree.pop(offset, None) if tree else None
        if entry is not None:
            self._free_entry(swap_type, entry)
        return entry is not None

    def _leave_swapcache(self, swap_type, offset):
        cached = self.swapcache.get(swap_type)
        if cached:
            cached.discard(offset)

    # -- frontswap operations --------------------------------------------

    def store(self, swap_type, offset, page):
        """Swap a page out; True when zswap keeps it, False when it went to
        the swap device instead, None when it could not leave RAM (no free
        swap slot, or the device write failed)."""
        if self.shrink_pending:
            self.run_pending_work()
        self.stores += 1
        self._leave_swapcache(swap_type, offset)
        tree = self.trees.get(swap_type)
        if tree is None:
            tree = self.trees[swap_type] = {}
        swapdev = self.swapdev
        if swapdev.capacity is not None and offset not in tree \
                and not swapdev.holds(swap_type, offset) \
                and self.stored_pages + swapdev.used_slots() >= swapdev.capacity:
            self.swap_full += 1
            return None
        if offset in tree:
            self.duplicate_stores += 1
            if self.invalidate_duplicates:
                self._drop(swap_type, offset)       # frontswap's invalidate first
        entry = self._zswap_store(swap_type, offset, page)
        if entry is None:
            self._drop(swap_type, offset)           # never leave a stale copy
            try:
                self.swapdev.write(swap_type, offset, page)
            except WriteError:
                self.swap_write_errors += 1
                self.swapdev.discard(swap_type, offset)
                return None
            return False
        if offset in tree:                          # zswap sees the duplicate
            self.duplicate_entry += 1
            self._drop(swap_type, offset)
        tree[offset] = entry
        self.stored_pages += 1
        self.zswpout += 1
        pages = self.pool_pages()
        if pages > self.peak_pool_pages:
            self.peak_pool_pages = pages
        swapdev.discard(swap_type, offset)          # the slot's old data is dead
        return True

    def _zswap_store(self, swap_type, offset, page):
        """zswap_frontswap_store up to the tree insert: an entry, or None."""
        pool = self.pool_for(swap_type)
        if self.reclaim_on_store:
            if self.limit_pages < self.last_pool_pages:     # zswap_is_full()
                self.pool_limit_hit += 1
                if self._reclaim(pool) != 0:
                    self.reject_reclaim_fail += 1
                    self.reject_pool_full += 1
                    return None
        else:
            pages = pool.total_pages()
            if self.limit_pages < pages:                    # zswap_is_full()
                self.pool_limit_hit += 1
                self.pool_reached_full = True
                self.shrink_pending = True
                self.reject_pool_full += 1
                return None
            if self.pool_reached_full:
                if self.accept_pages <= pages:              # not zswap_can_accept()
                    self.reject_pool_full += 1
                    return None
                self.pool_reached_full = False

        if self.same_filled_pages_enabled:
            word = same_filled_word(page)
            if word is not None:
                self.same_filled_pages += 1
                return ZswapEntry(0, 0, word)

        compressed = self.compressor.compress(page)
        length = len(compressed)
        if length > self.compress_buffer:
            self.reject_too_big += 1
            return None
        try:
            handle = pool.malloc(self.header_len + length)
        except NoSpace:
            self.reject_compress_poor += 1
            return None
        except (NoMemory, Invalid):     # zswap: any other zpool_malloc error
            self.reject_alloc_fail += 1
            return None
        if self.header_len:
            pool.write(handle, ZSWAP_HEADER.pack((swap_type << SWP_TYPE_SHIFT) | offset)
                       + compressed)
        else:
            pool.write(handle, compressed)
        self.compressed_bytes += length
        if self.reclaim_on_store:
            self.last_pool_pages = pool.total_pages()
        return ZswapEntry(handle, length, None)

    def _decompress(self, swap_type, entry):
        if entry.length == 0:
            return entry.value * (PAGE_SIZE // 8)
        data = self.pool_for(swap_type).map(entry.handle)
        return self.compressor.decompress(data[self.header_len:], PAGE_SIZE)

    def load(self, swap_type, offset):
        """Swap a page in: from zswap on a hit, else from the swap device;
        None when nothing was ever stored at the offset."""
        if self.shrink_pending:
            self.run_pending_work()
        self.loads += 1
        tree = self.trees.get(swap_type)
        entry = tree.get(offset) if tree else None
        if entry is not None:
            page = self._decompress(swap_type, entry)
            self.zswpin += 1
        else:
            page = self.swapdev.read(swap_type, offset)
            if page is None:
                self.load_unknown += 1
                return None
            self.load_misses += 1
        cached = self.swapcache.get(swap_type)
        if cached is None:
            cached = self.swapcache[swap_type] = set()
        cached.add(offset)
        return page

    def invalidate_page(self, swap_type, offset):
        """The swap slot was freed: drop every copy of the page."""
        if self.shrink_pending:
            self.run_pending_work()
        self.invalidates += 1
        self._drop(swap_type, offset)
        self.swapdev.discard(swap_type, offset)
        self._leave_swapcache(swap_type, offset)

    def invalidate_area(self, swap_type):
        """swapoff: drop everything stored for the swap type."""
        if self.shrink_pending:
            self.run_pending_work()
        for entry in self.trees.pop(swap_type, {}).values():
            self._free_entry(swap_type, entry)
        self.swapdev.discard_area(swap_type)
        self.swapcache.pop(swap_type, None)

    # -- writeback: the pool's evict callback ----------------------------

    def _writeback(self, pool, handle):
        """zswap_writeback_entry.  -EEXIST, and -ENOMEM when RAM is full,
        change nothing and recur until something else changes, so they are
        returned as pool.unchanged() unless a fault plan is drawing for each
        evict (the next draw could fail it another way)."""
        drawing = self.faults is not None and self.faults.rates["evict"]
        if drawing and self.faults.fail("evict"):
            return -errno.EIO
        swp = ZSWAP_HEADER.unpack_from(pool.map(handle))[0]
        swap_type, offset = swp >> SWP_TYPE_SHIFT, swp & SWP_OFFSET_MASK
        entry = self.trees.get(swap_type, {}).get(offset)
        if entry is None or entry.handle != handle:
            return 0                                # invalidated meanwhile
        if offset in self.swapcache.get(swap_type, ()):
            return -errno.EEXIST if drawing else pool.unchanged(-errno.EEXIST)
        try:
            pfn = self.memory.alloc_page()          # the swap-cache page
        except NoMemory:
            if self.memory.free_pages() == 0 and not drawing:   # full, not injected
                return pool.unchanged(-errno.ENOMEM)
            return -errno.ENOMEM
        frame = self.memory.frames[pfn]
        frame[:] = self._decompress(swap_type, entry)
        try:
            self.swapdev.write(swap_type, offset, bytes(frame))
        except WriteError:
            return -errno.EIO                       # the entry stays in the pool
        finally:
            self.memory.free_page(pfn)
        self.written_back_pages += 1
        del self.trees[swap_type][offset]
        self._free_entry(swap_type, entry)
        return 0

    # -- reports ---------------------------------------------------------

    def has_class_stats(self):
        return self.backend == "zsmalloc"

    def class_stats(self):
        """zsmalloc's debugfs `classes` rows, summed over the pools (3.11
        keeps one per swap type)."""
        pools = list(self.pools.values()) or [create_pool(self.backend, **self.pool_options)]
        rows = {}
        for pool in pools:
            for row in pool.class_stats():
                total = rows.setdefault(row["class"], dict(row, **{k: 0 for k in CLASS_COUNTS}))
                for key in CLASS_COUNTS:
                    total[key] += row[key]
        return list(rows.values())

    def where(self, swap_type, offset):
        """'pool' or 'swap' for the copy the next load would find, else None."""
        if offset in self.trees.get(swap_type, ()):
            return "pool"
        if self.swapdev.holds(swap_type, offset):
            return "swap"
        return None

    def holds_page(self, swap_type, offset, key):
        """Whether the copy a load would find is the page whose page_key is
        `key`, without decompressing when the cache still knows the page's
        compressed form (compression is deterministic, so equal output
        means the same page)."""
        entry = self.trees.get(swap_type, {}).get(offset)
        if entry is not None and entry.length:
            expected = self.compressor.cached(key)
            if expected is not None:
                data = self.pool_for(swap_type).read(entry.handle)
                return data[self.header_len:] == expected
        page = self.peek(swap_type, offset)
        return page is not None and page_key(page) == key

    def peek(self, swap_type, offset):
        """The page a load would return, without a load's side effects."""
        entry = self.trees.get(swap_type, {}).get(offset)
        if entry is not None:
            return self._decompress(swap_type, entry)
        return self.swapdev.slots.get(swap_type, {}).get(offset)

    def counters(self):
        """Every counter by name: the kernel's debugfs ones first."""
        pools = list(self.pools.values())
        counts = {name: getattr(self, name) for name in DEBUGFS_COUNTERS}
        counts.update(
            stores=self.stores, zswpout=self.zswpout, duplicate_stores=self.duplicate_stores,
            reject_pool_full=self.reject_pool_full, reject_too_big=self.reject_too_big,
            loads=self.loads, zswpin=self.zswpin, load_misses=self.load_misses,
            load_unknown=self.load_unknown, invalidates=self.invalidates,
            swap_writes=self.swapdev.writes, swap_reads=self.swapdev.reads,
            # vmstat's names for them: pages written to and read from the
            # swap device (a device write that failed is not counted, as
            # a synchronous rw_page device's is not)
            pswpout=self.swapdev.writes, pswpin=self.swapdev.reads,
            swap_used_slots=self.swapdev.used_slots(),
            pool_pages=self.pool_pages(), peak_pool_pages=self.peak_pool_pages,
            pool_limit_pages=self.limit_pages,
            compressed_bytes=self.compressed_bytes,
            shrink_runs=self.shrink_runs,
            reclaim_calls=sum(p.reclaim_calls for p in pools),
            reclaim_success=self.reclaim_results.get(0, 0),
            reclaim_eagain=self.reclaim_results.get(-errno.EAGAIN, 0),
            reclaim_einval=self.reclaim_results.get(-errno.EINVAL, 0),
            reclaim_pages_scanned=sum(p.reclaim_pages_scanned for p in pools),
            evict_calls=sum(p.evict_calls for p in pools),
            evict_eexist=sum(p.evict_results.get(-errno.EEXIST, 0) for p in pools),
            evict_enomem=sum(p.evict_results.get(-errno.ENOMEM, 0) for p in pools),
            evict_eio=sum(p.evict_results.get(-errno.EIO, 0) for p in pools),
            swap_full=self.swap_full, swap_write_errors=self.swap_write_errors,
            compress_cache_hits=self.compressor.hits,
        )
        return counts
