"""The swap-out path with zswap in front of a swap device, as frontswap drove
it: store / load / invalidate_page / invalidate_area on (swap type, offset).

Six kernels are modelled, chosen by `kernel`, a profile of profiles.py
whose facts the store path branches on:

6.1 (default).  frontswap invalidates an offset it already holds before it
calls store, so zswap itself never sees a duplicate (duplicate_entry stays
0; `duplicate_stores` counts them).  The store checks the pool limit first:
when the pool is over max_pool_percent of RAM it counts pool_limit_hit,
remembers that the pool reached full, queues the shrink work and refuses
the page; while the pool stays above accept_threshold_percent of the limit
every store is refused (hysteresis) without more shrinking.  The shrink
work (when it runs: see below) is zpool_shrink(1):
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

6.12 and 6.18 (the zswap-LRU kernels, no frontswap).  The swap layer keeps
an all-zero page in its zero map (swpout_zero, swpin_zero on a load); it
never reaches zswap, and a non-zero same-filled page is compressed like any
other.  zswap_check_limits: a store that finds the pool at or above the
limit counts pool_limit_hit and marks the pool full; while full, every
store is refused until the pool is at or below accept_threshold_percent of
the limit, and every refused store queues the shrink work.  Output longer
than the one-page buffer counts reject_compress_fail (6.12), or is stored
as-is as a PAGE_SIZE object and counted in stored_incompressible_pages
(6.18).  A store to an offset zswap holds replaces the old entry, with no
counter; a refused one frees it.  Every entry joins zswap's own LRU,
referenced; the shrink work (shrink_worker, one memory cgroup holding every
entry) takes the oldest entry per step: a referenced one is rotated to the
young end with the bit cleared (a failure: nothing was written back), an
unreferenced one is rotated and written back through the same
zswap_writeback_entry cases as above; it goes on while the pool is above
the accept threshold and gives up after MAX_RECLAIM_RETRIES (16) failures.
Loads are exclusive: the entry leaves zswap and the page stays in RAM,
dirty in the swap cache, until it is stored again, its slot is freed, or
`evict_loaded` (a clean page leaving RAM: the trace's drop_clean event)
stores it again.  In a trace older than that event, a later load of such
an offset is served from the page in RAM (`swapcache_hits`).

6.6.  No frontswap: zswap counts a store to an offset it holds in
duplicate_entry and invalidates the old entry first.  The 6.1 limit and
hysteresis, but every refusal by either queues the shrink work.  Same-filled
pages as in 6.1; compressor errors counted in reject_compress_fail.
zswap's own LRU, no second chance: the shrink work writes back the oldest
entry until zswap_can_accept, a failed one going back to the young end,
and stops on an empty LRU or after 16 failures.  Loads are not exclusive (the
exclusive_loads parameter is off) and make their entry the youngest.  A
pool has 32 zpools and the kernel picks one by hashing the entry's address;
here by hash_32 of the swap offset, so 6.6's pool sizes are approximate.

When the shrink work runs, and how fast: the kernel queues it on a
workqueue and its worker runs when the scheduler gives it the CPU, while
the swap-outs go on.  Here the worker has a clock of its own, in ticks, a
swap-out lasting SWAP_OUT_TICKS (profiles.py) and nothing else taking
time.  Queued work may start once the next ZswapConfig.shrink_delay (K)
swap-outs have been made; a run then takes one pass of its loop at a
time, each at the tick the last one ended: shrink_step_cost ticks for a
pass, shrink_writeback_cost for one that wrote a page back (6.1's run is
one pass, one zpool_shrink call).  Before every operation the worker takes
the passes due by then: the clock stands at the end of the last swap-out.
So while a run writes back, the stores go on and find the pool full.
Queueing work already queued does nothing, as queue_work does; work queued
while a run is under way starts after it.  A replay's end runs whatever is
left, whatever its delay.  With K = 0 and passes that take no time, the
work runs whole right after the store that queued it.  Each kernel profile
carries the timing its fidelity runs fit best (none for the kernels
without such runs; fidelity.py).
"""

import dataclasses
import errno
import math
import struct
from collections import OrderedDict

from .compress import (PAGE_SIZE, CompressionCache, NativeCompressionCache, get_compressor,
                       page_key)
from .config import ZswapConfig
from .errors import ConfigError, Invalid, NoMemory, NoSpace, WriteError
from .faults import FaultPlan
from .memory import Memory, same_filled_word
from .profiles import (CHECK_LIMITS, DEBUGFS_6_1, FRONTSWAP_INVALIDATES, RECLAIM_ON_STORE,
                       REFUSED_COMPRESS_FAIL, SHRINK_LRU_TO_ACCEPT, STORED_AS_IS,
                       SWAP_OUT_TICKS, SWAP_ZEROMAP, ZSWAP_COUNTS_AND_INVALIDATES, ZSWAP_LRU)
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
ZERO_PAGE = bytes(PAGE_SIZE)
AS_IS = "as-is"                           # the value of an entry holding the page itself


def reported_counters(profile):
    """The kernel counters a replay under `profile` reports: 6.1's debugfs
    names for the allocator-LRU kernels, the kernel's own debugfs files
    and vmstat events for the zswap-LRU ones."""
    if profile.lru_owner == ZSWAP_LRU:
        return profile.debugfs_counters + profile.vmstat_counters
    return DEBUGFS_COUNTERS


def hash_32(value, bits):
    """include/linux/hash.h's multiplicative hash (GOLDEN_RATIO_32)."""
    return (value * 0x61C88647 & 0xFFFFFFFF) >> (32 - bits)


def compression_cache(config, cache_class=CompressionCache):
    """The compression cache a Zswap of `config` compresses through: the
    cache the config's compressor is, else a `cache_class` over it (by name
    or object)."""
    compressor = config.compressor
    if isinstance(compressor, (CompressionCache, NativeCompressionCache)):
        return compressor
    if isinstance(compressor, str):
        compressor = get_compressor(compressor, kernel=config.profile)
    return cache_class(compressor)


def derived_settings(config, totalram):
    """What a Zswap of `config` over `totalram` pages of RAM derives from the
    config and its kernel profile, by attribute name (either engine's)."""
    profile, backend = config.profile, config.backend
    # The limit and the hysteresis threshold in pages, as zswap computes
    # them from totalram_pages on every store (RAM does not change here).
    limit_pages = totalram * config.max_pool_percent // 100
    if profile.limit_rule == CHECK_LIMITS:      # zswap_accept_thr_pages()
        accept_pages = limit_pages * config.accept_threshold_percent // 100
    else:                                       # zswap_can_accept()
        accept_pages = totalram * config.accept_threshold_percent // 100 \
            * config.max_pool_percent // 100
    evictable = backend in profile.evictable
    counts_invalidated_duplicates = profile.duplicate_store == ZSWAP_COUNTS_AND_INVALIDATES
    return dict(
        max_pool_percent=config.max_pool_percent,
        accept_threshold_percent=config.accept_threshold_percent,
        limit_pages=limit_pages, accept_pages=accept_pages, retries=config.retries,
        zero_map=profile.zero_pages == SWAP_ZEROMAP,
        same_filled_pages_enabled=config.same_filled(), evictable=evictable,
        pool_options={**profile.pool_options(backend), **config.pool_options},
        header_len=profile.zswap_header_size if evictable else 0,
        compress_buffer=profile.compress_dst_size,
        reclaim_on_store=profile.limit_rule == RECLAIM_ON_STORE,
        counts_invalidated_duplicates=counts_invalidated_duplicates,
        invalidate_duplicates=profile.duplicate_store == FRONTSWAP_INVALIDATES
        or counts_invalidated_duplicates,
        zswap_lru=profile.lru_owner == ZSWAP_LRU,
        store_as_is=profile.incompressible == STORED_AS_IS,
        count_compress_fail=profile.incompressible == REFUSED_COMPRESS_FAIL,
        counter_names=reported_counters(profile),
        shrink_delay=config.effective("shrink_delay"),
        shrink_step_cost=config.effective("shrink_step_cost"),
        shrink_writeback_cost=config.effective("shrink_writeback_cost"))


# counters() beyond the kernel's, in order; the zswap-LRU kernels add LRU_COUNTERS.
COUNTERS = ("stores", "zswpout", "duplicate_stores", "reject_pool_full", "reject_too_big",
            "loads", "zswpin", "load_misses", "load_unknown", "invalidates", "swap_writes",
            "swap_reads", "pswpout", "pswpin", "swap_used_slots", "pool_pages",
            "peak_pool_pages", "pool_limit_pages", "compressed_bytes", "shrink_runs",
            "reclaim_calls", "reclaim_success", "reclaim_eagain", "reclaim_einval",
            "reclaim_pages_scanned", "evict_calls", "evict_eexist", "evict_enomem", "evict_eio",
            "swap_full", "swap_write_errors", "compress_cache_hits")
LRU_COUNTERS = ("swapcache_hits", "shrink_rotations", "writeback_eexist", "writeback_enomem",
                "writeback_eio")


def first_unheld(zswap, live, verify, resident=()):
    """Over `live` ({swap type: {offset: page_key}}) in its order: (the
    pages counted, None), or at the first page that did not stay in RAM
    (`resident`: (swap type, offset) pairs) and is neither in the pool nor
    on the swap device, or when verifying holds other bytes, (the pages
    counted up to it, ("lost" or "corrupted", swap type, offset)).  The
    Python reference of the native engine's Zswap.first_unheld."""
    counted = 0
    for swap_type, pages in live.items():
        for offset, key in pages.items():
            counted += 1
            if (swap_type, offset) in resident:
                continue
            if zswap.where(swap_type, offset) is None:
                return counted, ("lost", swap_type, offset)
            if verify and not zswap.holds_page(swap_type, offset, key):
                return counted, ("corrupted", swap_type, offset)
    return counted, None


def ordered_counters(zswap, values):
    """counters() of either engine's Zswap from `values`, every counter by
    name: the kernel's (zswap.counter_names) first, then COUNTERS."""
    names = zswap.counter_names + COUNTERS + (LRU_COUNTERS if zswap.zswap_lru else ())
    return {name: values[name] for name in names}


class ZswapEntry:
    __slots__ = ("handle", "length", "value", "referenced", "zpool")

    def __init__(self, handle, length, value, referenced=False, zpool=None):
        self.handle = handle        # 0 for a same-filled page
        self.length = length        # compressed length, 0 for a same-filled page
        self.value = value          # the repeated 8-byte word of a same-filled page, or AS_IS
        self.referenced = referenced    # the second-chance bit (6.12)
        self.zpool = zpool          # its zpool where a pool has several (6.6), else None


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
        self.backend = config.backend
        self.compressor = compression_cache(config)
        self.memory = memory if memory is not None \
            else Memory(config.ram_pages, faults=fault_plan)
        self.swapdev = swapdev if swapdev is not None \
            else SwapDevice(capacity=config.swap_capacity, faults=fault_plan)
        vars(self).update(derived_settings(config, self.memory.totalram_pages))

        self.trees = {}             # swap type -> {offset: ZswapEntry}
        self.pools = {}             # swap type -> pool, or {None: the one pool}
        self.pool = None            # the one pool, unless the kernel has one per swap type
        self.swapcache = {}         # swap type -> offsets whose page is in the swap cache
        self.pool_reached_full = False
        self.shrink_pending = False     # the shrink work is queued, not started
        self.shrink_start = 0           # the tick from which the queued work may start
        self.shrink_running = False     # a run of the shrink work is under way
        self.shrink_failures = 0        # that run's failures and its walk's attempts
        self.shrink_attempts = 0
        self.worker_clock = 0           # the tick at which the worker takes its next step
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
        # The zswap-LRU kernels (6.12, 6.18)
        self.lru = OrderedDict()    # (swap type, offset) -> entry, oldest first (list_lru)
        self.cursor_on_memcg = False    # zswap_next_shrink: NULL until the first walk
        self.zeromap = {}           # swap type -> offsets the swap layer holds as zero pages
        self.zeromap_pages = 0
        self.loaded = {}            # swap type -> {offset: page} loaded exclusively, in RAM
        self.loaded_pages = 0
        self.reject_compress_fail = 0
        self.decompress_fail = 0    # never: the model's decompression does not fail
        self.stored_incompressible_pages = 0
        self.swpout_zero = 0
        self.swpin_zero = 0
        self.swapcache_hits = 0     # loads served by a page still in RAM
        self.shrink_rotations = 0   # referenced entries the shrink work rotated
        self.writeback_results = {}     # the shrink work's zswap_writeback_entry results

        if profile.zpools_per_pool > 1:     # entries placed by hash_32 of the offset
            self.pools = {index: self._new_pool() for index in range(profile.zpools_per_pool)}
        elif not profile.pool_per_swap_type:
            self.pool = self.pools[None] = self._new_pool()

    # -- pools and accounting --------------------------------------------

    def _new_pool(self):
        return create_pool(self.backend, memory=self.memory,
                           evict=self._writeback if self.evictable else None, **self.pool_options)

    def _pool_of(self, swap_type, entry):
        return entry.zpool if entry.zpool is not None else self.pool_for(swap_type)

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

    @property
    def zswpwb(self):
        return self.written_back_pages

    @property
    def pswpout(self):
        return self.swapdev.writes

    @property
    def pswpin(self):
        return self.swapdev.reads

    def slots_in_use(self):
        """Swap slots the live pages hold: zswap's entries, the device's
        pages, the zero map's and the pages loaded back into RAM."""
        return self.stored_pages + self.swapdev.used_slots() + self.zeromap_pages \
            + self.loaded_pages

    def _has_slot(self, swap_type, offset, tree):
        return (offset in tree or self.swapdev.holds(swap_type, offset)
                or offset in self.zeromap.get(swap_type, ())
                or offset in self.loaded.get(swap_type, ()))

    def _reclaim(self, pool):
        ret = pool.reclaim_page(self.retries)
        self.reclaim_results[ret] = self.reclaim_results.get(ret, 0) + 1
        return ret

    def _queue_shrink_work(self):
        """queue_work(shrink_wq, ...): the work may start once shrink_delay
        more swap-outs have been made (the first tick after them); queueing
        work already queued does nothing, and work queued while a run is
        under way starts when that run has ended."""
        if not self.shrink_pending:
            self.shrink_pending = True
            self.shrink_start = (self.stores + self.shrink_delay) * SWAP_OUT_TICKS

    def _run_due_work(self, now):
        """The worker catches up with the swap-outs: every step it takes at
        a tick up to `now` is taken, in order, before the operation that
        calls this (every operation does, while work is queued or under way)."""
        while True:
            if not self.shrink_running:
                if not self.shrink_pending or self.shrink_start > now:
                    return
                self.shrink_pending = False
                self.shrink_running = True
                self.shrink_failures = self.shrink_attempts = 0
                self.shrink_runs += 1
                self.worker_clock = max(self.worker_clock, self.shrink_start)
            if self.worker_clock > now:
                return
            written_back = self.written_back_pages
            self._shrink_step()
            self.worker_clock += self.shrink_writeback_cost \
                if self.written_back_pages > written_back else self.shrink_step_cost

    def run_pending_work(self):
        """The shrink work, run now to its end: the run under way and any
        queued one, whatever is left of its delay (a replay's end; during
        a replay _run_due_work decides when each step is taken)."""
        self._run_due_work(math.inf)

    def _end_run(self):
        self.shrink_running = False

    def _shrink_step(self):
        """One pass of the shrink work's loop; the pass that leaves the loop
        ends the run.  6.1's work is one zpool_shrink call."""
        if self.profile.shrink_rule == SHRINK_LRU_TO_ACCEPT:
            self._shrink_worker_step()
        elif self.zswap_lru:
            self._shrink_worker_6_6_step()
        else:
            if self._reclaim(self.pools[None]) < 0:
                self.reject_reclaim_fail += 1
            self._end_run()

    def _shrink_worker_step(self):
        """A pass of shrink_worker (6.12): round-robin over the memory
        cgroups, here the one holding every entry, so the cursor alternates
        between it and the end of the walk (NULL); one entry per pass while
        the pool is above the accept threshold, until MAX_RECLAIM_RETRIES
        failures."""
        limit = self.profile.shrink_failures_max
        self.cursor_on_memcg = not self.cursor_on_memcg
        if not self.cursor_on_memcg:                    # a walk ended
            if not self.shrink_attempts:
                self.shrink_failures += 1
                if self.shrink_failures == limit:
                    return self._end_run()
            self.shrink_attempts = 0
        else:
            ret = self._shrink_memcg()
            if ret != -errno.ENOENT:
                self.shrink_attempts += 1
                if ret:
                    self.shrink_failures += 1
                    if self.shrink_failures == limit:
                        return self._end_run()
        if self.pool_pages() <= self.accept_pages:
            self._end_run()

    def _shrink_worker_6_6_step(self):
        """A pass of shrink_worker (6.6): one zswap_reclaim_entry; a failure
        counts reject_reclaim_fail and puts the entry back at the young end;
        an empty LRU ends the work, as do 16 failures, as does the pool
        passing zswap_can_accept."""
        if not self.lru:                            # -EINVAL
            self.reject_reclaim_fail += 1
            return self._end_run()
        key = next(iter(self.lru))
        if self._writeback_lru_entry(key, self.lru[key]):
            self.lru.move_to_end(key)               # list_move to the head
            self.reject_reclaim_fail += 1
            self.shrink_failures += 1
            if self.shrink_failures == self.profile.shrink_failures_max:
                return self._end_run()
        if self.accept_pages > self.pool_pages():   # zswap_can_accept()
            self._end_run()

    def _writeback_lru_entry(self, key, entry):
        """zswap_writeback_entry for an LRU entry, a fault plan drawing first."""
        if self.faults is not None and self.faults.rates["evict"] \
                and self.faults.fail("evict"):
            ret = -errno.EIO
        else:
            ret = self._write_back(*key, entry)
        self.writeback_results[ret] = self.writeback_results.get(ret, 0) + 1
        return ret

    def _shrink_memcg(self):
        """shrink_memcg with nr_to_walk 1 and shrink_memcg_cb: 0 when the
        oldest entry was written back, -EAGAIN when it was rotated or its
        writeback failed, -ENOENT on an empty LRU."""
        if not self.lru:
            return -errno.ENOENT
        key = next(iter(self.lru))
        entry = self.lru[key]
        self.lru.move_to_end(key)           # LRU_ROTATE, or rotated before writeback
        if entry.referenced:
            entry.referenced = False
            self.shrink_rotations += 1
            return -errno.EAGAIN
        if self._writeback_lru_entry(key, entry):
            self.reject_reclaim_fail += 1
            return -errno.EAGAIN
        return 0

    # -- entries ---------------------------------------------------------

    def _free_entry(self, swap_type, offset, entry):
        if entry.length == 0:
            self.same_filled_pages -= 1
        else:
            pool = self._pool_of(swap_type, entry)
            pool.free(entry.handle)
            self.compressed_bytes -= entry.length
            if self.reclaim_on_store:
                self.last_pool_pages = pool.total_pages()
            if self.zswap_lru:
                del self.lru[swap_type, offset]
                if entry.value is AS_IS:
                    self.stored_incompressible_pages -= 1
        self.stored_pages -= 1

    def _drop(self, swap_type, offset):
        """Forget an offset's copy in zswap, if any; True when there was one."""
        tree = self.trees.get(swap_type)
        entry = tree.pop(offset, None) if tree else None
        if entry is not None:
            self._free_entry(swap_type, offset, entry)
        return entry is not None

    def _forget_zero(self, swap_type, offset):
        zero = self.zeromap.get(swap_type)
        if zero and offset in zero:
            zero.discard(offset)
            self.zeromap_pages -= 1

    def _forget_loaded(self, swap_type, offset):
        loaded = self.loaded.get(swap_type)
        if loaded and loaded.pop(offset, None) is not None:
            self.loaded_pages -= 1

    def _leave_swapcache(self, swap_type, offset):
        cached = self.swapcache.get(swap_type)
        if cached:
            cached.discard(offset)

    # -- frontswap operations --------------------------------------------

    def store(self, swap_type, offset, page, key=None, ahead=None):
        """Swap a page out; True when zswap keeps it, False when it went to
        the swap device instead, None when it could not leave RAM (no free
        swap slot, or the device write failed).  `key` and `ahead`, when the
        caller has them, are the page's page_key and its compression made
        ahead, for the compression cache (CompressionCache.compress)."""
        if self.shrink_pending or self.shrink_running:
            self._run_due_work(self.stores * SWAP_OUT_TICKS)
        self.stores += 1
        self._leave_swapcache(swap_type, offset)
        tree = self.trees.get(swap_type)
        if tree is None:
            tree = self.trees[swap_type] = {}
        swapdev = self.swapdev
        if swapdev.capacity is not None and not self._has_slot(swap_type, offset, tree) \
                and self.slots_in_use() >= swapdev.capacity:
            self.swap_full += 1
            return None
        if offset in tree:
            self.duplicate_stores += 1
            if self.invalidate_duplicates:
                if self.counts_invalidated_duplicates:
                    self.duplicate_entry += 1       # 6.6: zswap itself
                self._drop(swap_type, offset)       # frontswap's invalidate first
        if self.zswap_lru:
            return self._swap_writepage(swap_type, offset, page, tree, key, ahead)
        entry = self._zswap_store(swap_type, offset, page, key, ahead)
        if entry is None:
            return self._write_to_device(swap_type, offset, page)
        if offset in tree:                          # zswap sees the duplicate
            self.duplicate_entry += 1
            self._drop(swap_type, offset)
        self._insert(swap_type, offset, tree, entry)
        return True

    def _write_to_device(self, swap_type, offset, page):
        """zswap refused the page: the swap core writes it to the device."""
        self._drop(swap_type, offset)               # never leave a stale copy
        try:
            self.swapdev.write(swap_type, offset, page)
        except WriteError:
            self.swap_write_errors += 1
            self.swapdev.discard(swap_type, offset)
            return None
        return False

    def _insert(self, swap_type, offset, tree, entry):
        tree[offset] = entry
        self.stored_pages += 1
        self.zswpout += 1
        pages = self.pool_pages()
        if pages > self.peak_pool_pages:
            self.peak_pool_pages = pages
        self.swapdev.discard(swap_type, offset)     # the slot's old data is dead

    def _swap_writepage(self, swap_type, offset, page, tree, key, ahead):
        """swap_writepage of 6.12: a zero page to the zero map (True: it
        left RAM with no I/O), any other through zswap_store (True), or to
        the device when zswap refuses it (False, None as store())."""
        self._forget_loaded(swap_type, offset)
        if self.zero_map and page == ZERO_PAGE:     # is_folio_zero_filled
            self._drop(swap_type, offset)
            self.swapdev.discard(swap_type, offset)
            zero = self.zeromap.get(swap_type)
            if zero is None:
                zero = self.zeromap[swap_type] = set()
            if offset not in zero:
                zero.add(offset)
                self.zeromap_pages += 1
            self.swpout_zero += 1
            return True
        self._forget_zero(swap_type, offset)        # swap_zeromap_folio_clear
        entry = self._zswap_store_lru(offset, page, key, ahead)
        if entry is None:
            if self.pool_reached_full and self.profile.limit_rule == CHECK_LIMITS:
                self._queue_shrink_work()           # 6.12: every refusal while full
            return self._write_to_device(swap_type, offset, page)
        self._drop(swap_type, offset)               # xa_store's old entry is freed
        self._insert(swap_type, offset, tree, entry)
        if entry.length:
            self.lru[swap_type, offset] = entry     # zswap_lru_add: the young end
        if entry.value is AS_IS:
            self.stored_incompressible_pages += 1
        return True

    def _check_limits(self):
        """zswap_check_limits: True while the pool is to refuse stores."""
        pages = self.pool_pages()
        if pages >= self.limit_pages:
            self.pool_limit_hit += 1
            self.pool_reached_full = True
        elif self.pool_reached_full and pages <= self.accept_pages:
            self.pool_reached_full = False
        return self.pool_reached_full

    def _limit_refuses(self):
        """6.6's limit and hysteresis: each refusal queues the shrink work."""
        pages = self.pool_pages()
        if self.limit_pages < pages:                # zswap_is_full()
            self.pool_limit_hit += 1
            self.pool_reached_full = True
        elif self.pool_reached_full and self.accept_pages <= pages:    # !zswap_can_accept()
            pass
        else:
            self.pool_reached_full = False
            return False
        self._queue_shrink_work()
        return True

    def _zswap_store_lru(self, offset, page, key, ahead):
        """zswap_store of 6.6 / 6.12 / 6.18 up to the tree insert: an entry,
        or None with the reason counted."""
        refused = self._check_limits() if self.profile.limit_rule == CHECK_LIMITS \
            else self._limit_refuses()
        if refused:
            self.reject_pool_full += 1
            return None
        entry = self._same_filled_entry(page)
        if entry is not None:
            return entry
        compressed = self.compressor.compress(page, key, ahead)
        length = len(compressed)
        value = None
        if self.store_as_is and length >= PAGE_SIZE:     # also what did not fit
            compressed, length, value = page, PAGE_SIZE, AS_IS
        elif length > self.compress_buffer:
            self.reject_too_big += 1
            if self.count_compress_fail:
                self.reject_compress_fail += 1
            return None
        pool = self.pool if self.pool is not None \
            else self.pools[hash_32(offset, len(self.pools).bit_length() - 1)]
        handle = self._malloc(pool, length)
        if handle is None:
            return None
        pool.write(handle, compressed)
        self.compressed_bytes += length
        return ZswapEntry(handle, length, value, self.profile.second_chance,
                          None if pool is self.pool else pool)

    def _same_filled_entry(self, page):
        """zswap_is_page_same_filled: an entry holding the word, or None."""
        if not self.same_filled_pages_enabled:
            return None
        word = same_filled_word(page)
        if word is None:
            return None
        self.same_filled_pages += 1
        return ZswapEntry(0, 0, word)

    def _malloc(self, pool, size):
        """zpool_malloc: the handle, or None with -ENOSPC counted in
        reject_compress_poor and any other error in reject_alloc_fail."""
        try:
            return pool.malloc(size)
        except NoSpace:
            self.reject_compress_poor += 1
        except (NoMemory, Invalid):
            self.reject_alloc_fail += 1
        return None

    def _zswap_store(self, swap_type, offset, page, key, ahead):
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
                self._queue_shrink_work()
                self.reject_pool_full += 1
                return None
            if self.pool_reached_full:
                if self.accept_pages <= pages:              # not zswap_can_accept()
                    self.reject_pool_full += 1
                    return None
                self.pool_reached_full = False

        entry = self._same_filled_entry(page)
        if entry is not None:
            return entry

        compressed = self.compressor.compress(page, key, ahead)
        length = len(compressed)
        if length > self.compress_buffer:
            self.reject_too_big += 1
            return None
        handle = self._malloc(pool, self.header_len + length)
        if handle is None:
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
        data = self._pool_of(swap_type, entry).map(entry.handle)
        if entry.value is AS_IS:
            return bytes(data)
        return self.compressor.decompress(data[self.header_len:], PAGE_SIZE)

    def load(self, swap_type, offset):
        """Swap a page in: from zswap on a hit, else from the swap device;
        None when nothing was ever stored at the offset."""
        if self.shrink_pending or self.shrink_running:
            self._run_due_work(self.stores * SWAP_OUT_TICKS)
        self.loads += 1
        tree = self.trees.get(swap_type)
        entry = tree.get(offset) if tree else None
        if self.zswap_lru and entry is None:
            page = self._load_from_swap_layer(swap_type, offset)
            if page is not None:
                self._enter_swapcache(swap_type, offset)
                return page
        if entry is not None:
            page = self._decompress(swap_type, entry)
            self.zswpin += 1
            if self.profile.exclusive_loads:        # the entry leaves zswap
                del tree[offset]
                self._free_entry(swap_type, offset, entry)
                self.loaded.setdefault(swap_type, {})[offset] = page
                self.loaded_pages += 1
            elif self.zswap_lru and entry.length:   # 6.6: to the LRU head
                self.lru.move_to_end((swap_type, offset))
        else:
            page = self.swapdev.read(swap_type, offset)
            if page is None:
                self.load_unknown += 1
                return None
            self.load_misses += 1
        self._enter_swapcache(swap_type, offset)
        return page

    def _enter_swapcache(self, swap_type, offset):
        cached = self.swapcache.get(swap_type)
        if cached is None:
            cached = self.swapcache[swap_type] = set()
        cached.add(offset)

    def _load_from_swap_layer(self, swap_type, offset):
        """A load zswap never sees: the zero map's page (swap_read_folio_zeromap)
        or a page loaded earlier and still in RAM; None otherwise."""
        if offset in self.zeromap.get(swap_type, ()):
            self.swpin_zero += 1
            return ZERO_PAGE
        page = self.loaded.get(swap_type, {}).get(offset)
        if page is not None:
            self.swapcache_hits += 1
        return page

    def evict_loaded(self, swap_type, offset):
        """A clean page swapped in at `offset` left RAM again.  Under
        exclusive loads zswap gave its copy up at the load, so the page is
        stored again (store()'s result); otherwise the slot still holds it
        and nothing happens (None)."""
        page = self.loaded.get(swap_type, {}).get(offset)
        return None if page is None else self.store(swap_type, offset, page)

    def invalidate_page(self, swap_type, offset):
        """The swap slot was freed: drop every copy of the page."""
        if self.shrink_pending or self.shrink_running:
            self._run_due_work(self.stores * SWAP_OUT_TICKS)
        self.invalidates += 1
        self._drop(swap_type, offset)
        self.swapdev.discard(swap_type, offset)
        self._leave_swapcache(swap_type, offset)
        if self.zswap_lru:
            self._forget_zero(swap_type, offset)
            self._forget_loaded(swap_type, offset)

    def invalidate_area(self, swap_type):
        """swapoff: drop everything stored for the swap type."""
        if self.shrink_pending or self.shrink_running:
            self._run_due_work(self.stores * SWAP_OUT_TICKS)
        for offset, entry in self.trees.pop(swap_type, {}).items():
            self._free_entry(swap_type, offset, entry)
        self.swapdev.discard_area(swap_type)
        self.swapcache.pop(swap_type, None)
        self.zeromap_pages -= len(self.zeromap.pop(swap_type, ()))
        self.loaded_pages -= len(self.loaded.pop(swap_type, ()))

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
        ret = self._write_back(swap_type, offset, entry)
        if not drawing and (ret == -errno.EEXIST
                            or ret == -errno.ENOMEM and self.memory.free_pages() == 0):
            return pool.unchanged(ret)              # recurs: not injected, nothing changed
        return ret

    def _write_back(self, swap_type, offset, entry):
        """zswap_writeback_entry on a live entry: 0 once its page is on the
        swap device and the entry freed, else -EEXIST, -ENOMEM or -EIO."""
        if offset in self.swapcache.get(swap_type, ()):
            return -errno.EEXIST
        try:
            pfn = self.memory.alloc_page()          # the swap-cache page
        except NoMemory:
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
        self._free_entry(swap_type, offset, entry)
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
        """'pool', 'swap', 'zero map' or 'ram' for the copy the next load
        would find, else None."""
        if offset in self.trees.get(swap_type, ()):
            return "pool"
        if self.swapdev.holds(swap_type, offset):
            return "swap"
        if offset in self.zeromap.get(swap_type, ()):
            return "zero map"
        if offset in self.loaded.get(swap_type, ()):
            return "ram"
        return None

    def holds_page(self, swap_type, offset, key):
        """Whether the copy a load would find is the page whose page_key is
        `key`, without decompressing when the cache still knows the page's
        compressed form (compression is deterministic, so equal output
        means the same page)."""
        entry = self.trees.get(swap_type, {}).get(offset)
        if entry is not None and entry.length and entry.value is not AS_IS:
            expected = self.compressor.cached(key)
            if expected is not None:
                data = self._pool_of(swap_type, entry).read(entry.handle)
                return data[self.header_len:] == expected
        page = self.peek(swap_type, offset)
        return page is not None and page_key(page) == key

    def first_unheld(self, live, verify, resident=()):
        return first_unheld(self, live, verify, resident)

    def peek(self, swap_type, offset):
        """The page a load would return, without a load's side effects."""
        entry = self.trees.get(swap_type, {}).get(offset)
        if entry is not None:
            return self._decompress(swap_type, entry)
        if offset in self.zeromap.get(swap_type, ()):
            return ZERO_PAGE
        page = self.loaded.get(swap_type, {}).get(offset)
        return page if page is not None else self.swapdev.slots.get(swap_type, {}).get(offset)

    def counters(self):
        """Every counter by name: the kernel's debugfs ones first."""
        pools = list(self.pools.values())
        values = {name: getattr(self, name) for name in self.counter_names}
        results = self.writeback_results
        values.update(
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
            swapcache_hits=self.swapcache_hits, shrink_rotations=self.shrink_rotations,
            writeback_eexist=results.get(-errno.EEXIST, 0),
            writeback_enomem=results.get(-errno.ENOMEM, 0),
            writeback_eio=results.get(-errno.EIO, 0))
        return ordered_counters(self, values)
