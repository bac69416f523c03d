"""The modelled kernels: one frozen profile per Linux release, holding the
facts of that release that decide zswap's and zram's numbers.

The store paths (zswap.py, zram.py) branch on these named facts, the way
kernel code branches on CONFIG_* options; no other module compares a
version string.  Each fact names its source (a file of that release, a
commit, or ../shared/KERNEL.md) where it is declared, and each field says
in its metadata where the rule changed, which `zswapsim kernels` prints.

Allocators.  A profile lists every allocator zswapsim models as one of:
- shipped: the kernel's zswap (or zram) could use it;
- what-if: the kernel never had it there, but its contract (zpool, and
  the evict callback where the profile's pools are evictable) can be
  served, so it runs and the output says so: xvmalloc never shipped in
  zswap; 3.11's zswap was built on zbud alone, and zsmalloc and z3fold run
  under it with zbud's contract (the recorded replays depend on them);
- absent: the kernel removed it or had no way to use it (zbud and z3fold
  after 6.15, anything but zsmalloc once the zpool layer is gone in
  6.18): asking for it is one error naming the release.
`allocator(name)`, `what_if(name)` and `check_allocator(name)` are the
lookups; the table below is the authoritative one.

6.12 and 6.18 are today's kernels (Debian 13, RHEL 10; the 6.18 LTS line):
zswap owns the entry LRU (lru_owner), zero-filled pages stay in the swap
layer's zero map (zero_pages), loads are exclusive, poor output is counted
or stored as-is (incompressible).  6.6 sits between: frontswap gone and
zswap's own LRU, but same-filled pages, non-exclusive loads, no second
chance and 32 zpools per pool.
"""

import dataclasses
import re
from dataclasses import dataclass, field

from .errors import ConfigError
from .memory import PAGE_SIZE
from .zpool.zsmalloc import DEFAULT_CHAIN_SIZE as ZSMALLOC_MODEL_CHAIN_SIZE

SHIPPED, WHAT_IF, ABSENT = "shipped", "what-if", "absent"
APPROXIMATE = "approximate"     # a compressor whose bytes zswapsim has only from a later kernel

# limit_rule
RECLAIM_ON_STORE = "reclaim on store"
REJECT_AND_SHRINK = "reject, queue shrink work, hysteresis"
# shrink_rule
STORE_RECLAIMS_PAGE = "the store calls zbud_reclaim_page(pool, 8)"
ZPOOL_SHRINK_ONE = "zpool_shrink(pool, 1): one reclaim_page(8) by the allocator"
# duplicate_store
ZSWAP_REPLACES = "zswap counts duplicate_entry and replaces"
FRONTSWAP_INVALIDATES = "frontswap invalidates the old copy first"
# zero_pages
NOT_SPECIAL = "stored like any page"
ZSWAP_SAME_FILLED = "zswap same-filled entries"
SWAP_ZEROMAP = "the swap layer's zero map (swpout_zero), never zswap"
# lru_owner
ALLOCATOR_LRU = "allocator"
ZSWAP_LRU = "zswap"
# limit_rule, shrink_rule and duplicate_store of the zswap-LRU kernels
CHECK_LIMITS = "zswap_check_limits: reject at >= max until <= accept; queue shrink on reject"
REJECT_SHRINK_EACH_TIME = "reject above max and in the hysteresis, queue shrink work each time"
SHRINK_LRU_UNTIL_ACCEPT = ("shrink_worker: zswap_reclaim_entry from the LRU tail until "
                           "zswap_can_accept; a failed entry back to the head; stop on an "
                           "empty LRU or MAX_RECLAIM_RETRIES failures")
ZSWAP_COUNTS_AND_INVALIDATES = "zswap counts duplicate_entry and invalidates the old first"
SHRINK_LRU_TO_ACCEPT = ("shrink_worker: one LRU entry per step, second chance, until at or "
                        "below the accept threshold or MAX_RECLAIM_RETRIES failures")
XA_STORE_REPLACES = "the new entry replaces the old (xa_store), no counter"
# incompressible: output that does not fit the compression buffer
REFUSED_UNCOUNTED = "refused, counted nowhere"
REFUSED_COMPRESS_FAIL = "refused, counted in reject_compress_fail"
STORED_AS_IS = "stored as-is (a PAGE_SIZE object), counted in stored_incompressible_pages"
# The shrink worker's clock: a swap-out lasts this many ticks, and the
# worker's passes cost the profile's shrink_step_cost or
# shrink_writeback_cost of them (ZswapConfig, zswap.py).
SWAP_OUT_TICKS = 10
# huge rule of zram
HUGE_ABOVE_MAX_ZPAGE = "length > max_zpage_size"
HUGE_FROM_CLASS_SIZE = "length >= huge_class_size"
# zram's compressors
CRYPTO_API = "the crypto API (zcomp over crypto_comp)"
ZRAM_BACKENDS = "zram's own backends (drivers/block/zram/backend_*.c)"


# The source of the facts that are not the kernel's but the workqueue's timing.
FITTED = "no kernel rule: fitted to the zswap_limited runs of 6.12 and 6.18 (fidelity.py)"


def fact(label, changed):
    """Field metadata: what the fact is and where the kernel changed it."""
    return {"metadata": {"label": label, "changed": changed}}


@dataclass(frozen=True)
class Availability:
    """Whether a kernel has an allocator or a compressor."""
    name: str
    status: str                 # SHIPPED, WHAT_IF, ABSENT or (compressors) APPROXIMATE
    note: str = ""              # why it is a what-if, which release removed or brought it


class Profile:
    """What zswap and zram profiles share: a name, a version to order
    releases by, the allocator table and the compressors' limits, with
    their lookups."""

    def allocator(self, name):
        """This kernel's entry for allocator `name`, None if unlisted."""
        return next((entry for entry in self.allocators if entry.name == name), None)

    def what_if(self, name):
        """The reason `name` runs only as a what-if here, else None."""
        entry = self.allocator(name)
        return entry.note if entry is not None and entry.status == WHAT_IF else None

    def check_allocator(self, name):
        """Refuse an allocator this kernel does not have, naming the release;
        names no profile lists are left to create_pool's own error."""
        entry = self.allocator(name)
        if entry is not None and entry.status == ABSENT:
            raise ConfigError(f"Linux {self.name} has no {name} for {self.model}: "
                              f"{entry.note}")

    def _compressor_entry(self, name):
        return next((entry for entry in self.compressor_limits if entry.name == name), None)

    def check_compressor(self, name):
        """Refuse a compressor this kernel lacks (or zswapsim lacks for it)."""
        entry = self._compressor_entry(name)
        if entry is not None and entry.status == ABSENT:
            raise ConfigError(f"Linux {self.name}'s {self.model} has no {name}: {entry.note}")

    def compressor_note(self, name):
        """How compressor `name` here differs from this kernel's, else None."""
        entry = self._compressor_entry(name)
        return f"{name}: {entry.note}" if entry is not None else None


@dataclass(frozen=True)
class ZswapProfile(Profile):
    name: str
    version: tuple
    allocators: tuple = field(**fact(
        "allocators", "zbud only in 3.11 (2b2811178e85); the zpool layer and zsmalloc in 3.18; "
        "z3fold in 4.8 (9a001fc19ccc)"))
    evictable: tuple = field(**fact(
        "allocators with a zpool evict path",
        "zsmalloc's zspage LRU and writeback in 6.2 (Nhat Pham, 'Implement writeback for "
        "zsmalloc'); all allocator LRUs dropped in 6.5"))
    pool_per_swap_type: bool = field(**fact(
        "one pool per swap type",
        "3.11 creates a zbud pool per swap type (zswap_frontswap_init); one shared pool by "
        "the 2014 zpool series"))
    lru_owner: str = field(**fact(
        "LRU owner", "zswap's own entry LRU from 6.5 (Cerasuolo, 'mm: zswap: move writeback "
        "LRU from zpool to zswap')"))
    limit_rule: str = field(**fact(
        "pool limit rule", "5.6, 45190f01dd40 (accept_threshold_percent, shrink_worker)"))
    shrink_rule: str = field(**fact(
        "shrink rule", "5.6, 45190f01dd40; shrink until can accept in 6.5 (399ab221f3ff)"))
    reclaim_retries: int = field(**fact(
        "retries the allocator's reclaim_page gets",
        "8, fixed in code with no knob; gone with the allocator LRUs in 6.5"))
    reclaim_retries_site: str = field(**fact(
        "where the retries are fixed (none: the zpool driver's shrink op)",
        "the store itself in 3.11; each zpool driver's shrink op from 3.18"))
    duplicate_store: str = field(**fact(
        "store to an offset zswap holds",
        "frontswap invalidates first since d1dc6f1bcf1e 'frontswap: allow multiple "
        "backends' (4.2)"))
    zero_pages: str = field(**fact(
        "zero / same-filled pages",
        "same-filled pages in zswap from 4.15 ('zswap: same-filled pages handling', Oct "
        "2017); the swap layer's zero map from 6.12"))
    same_filled_default: bool = field(**fact(
        "same_filled_pages_enabled default", "parameter added with same-filled pages (4.15)"))
    exclusive_loads: bool = field(**fact(
        "exclusive loads", "exclusive_loads parameter 6.5; always from 6.9"))
    compress_dst_size: int = field(**fact(
        "compression output limit (bytes)",
        "dlen = PAGE_SIZE with the acomp conversion (5.11, 1ec3b5fe6eec)"))
    incompressible: str = field(**fact(
        "output that does not fit the buffer (or reaches PAGE_SIZE, 6.18)",
        "reject_compress_fail counts a compressor error by 6.12; stored as-is in 6.18 "
        "(SeongJae Park, 'mm: zswap: store incompressible page as-is', 2025)"))
    second_chance: bool = field(**fact(
        "second-chance referenced bit on LRU entries",
        "6.12 (Nhat Pham, 'mm: zswap: implement a second chance algorithm for dynamic "
        "zswap shrinker', Jul 2024)"))
    shrink_failures_max: int = field(**fact(
        "failures before the shrink work gives up",
        "MAX_RECLAIM_RETRIES (16, mm/internal.h) in shrink_worker from 6.5 (399ab221f3ff)"))
    zpools_per_pool: int = field(**fact(
        "zpools per zswap pool",
        "ZSWAP_NR_ZPOOLS 32 in 6.6 ('mm: zswap: multiple zpools support', Yosry Ahmed); "
        "one again by 6.12"))
    zsmalloc_chain_size: int = field(**fact(
        "zsmalloc chain size (pages)",
        "CONFIG_ZSMALLOC_CHAIN_SIZE, default 8, in 6.3 ('zsmalloc: make zspage chain size "
        "configurable', Senozhatsky, Jan 2023)"))
    zswap_header_size: int = field(**fact(
        "zswap_header bytes on evictable allocations",
        "struct zswap_header dropped in 6.5 with the allocator LRUs"))
    debugfs_counters: tuple = field(**fact(
        "debugfs counters",
        "pool_pages became pool_total_size in 3.18 (zpool); same_filled_pages in 4.15"))
    vmstat_counters: tuple = field(**fact(
        "/proc/vmstat events a replay reports (none: the 6.1-era counter set)",
        "ZSWPWB in 6.8; SWPOUT_ZERO and SWPIN_ZERO with the zero map in 6.12"))
    # Not rules of the kernel's but when its workqueue ran the shrink work and
    # how fast: the swap-outs between queueing it and its start
    # (ZswapConfig.shrink_delay), and the worker's time for one pass of its
    # loop and for one that wrote a page back, in ticks (SWAP_OUT_TICKS a
    # swap-out; 0: the whole run takes no time), fitted to the fidelity runs
    # of the kernels that have them (fidelity.py).
    shrink_delay: int = field(default=0, **fact(
        "shrink work starts, swap-outs after queued (fitted)", FITTED))
    shrink_step_cost: int = field(default=0, **fact(
        f"shrink work's pass, ticks of {SWAP_OUT_TICKS} a swap-out (fitted)", FITTED))
    shrink_writeback_cost: int = field(default=0, **fact(
        "shrink work's pass writing back, ticks (fitted)", FITTED))
    compressor_limits: tuple = field(default=(), **fact(
        "compressors it lacks, or whose bytes zswapsim has only from a later kernel",
        "lib/lz4 became LZ4 v1.7.3 in 4.11 (r90 before); crypto/842.c in software in 4.1; "
        "crypto zstd in 4.17; lzo-rle in 5.1"))
    model = "zswap"

    def pool_options(self, backend):
        """Options a `backend` pool gets from this kernel beyond the model's defaults."""
        if backend == "zsmalloc" and self.zsmalloc_chain_size != ZSMALLOC_MODEL_CHAIN_SIZE:
            return {"chain_size": self.zsmalloc_chain_size}
        if backend == "zcache-zbud":    # the swap entry lives in its tmem handle
            return {"key_in_handle": self.zswap_header_size}
        return {}


@dataclass(frozen=True)
class Backend:
    """One of zram's compression backends and the algorithm_params keys it
    reads, each with the intervals its value may take and its default."""
    name: str
    source: str                 # the backend's file, or the crypto driver before 6.12
    params: tuple = ()          # ((key, ((lowest, highest), ...), default), ...)

    def param(self, key):
        """(intervals, default) of `key`; None if this backend reads no `key`."""
        return next(((intervals, default) for name, intervals, default in self.params
                     if name == key), None)

    def describe(self):
        """The parameters as `zswapsim kernels` prints them."""
        return {key: " or ".join(f"{low}..{high}" for low, high in intervals) +
                f" (default {default})" for key, intervals, default in self.params}


@dataclass(frozen=True)
class ZramProfile(Profile):
    name: str
    version: tuple
    allocators: tuple = field(**fact("allocators", "zsmalloc since 3.3-3.4 (was xvmalloc)"))
    zsmalloc_chain_size: int = field(**fact(
        "zsmalloc chain size (pages)", "CONFIG_ZSMALLOC_CHAIN_SIZE, default 8, in 6.3"))
    huge_rule: str = field(**fact(
        "stored uncompressed when",
        "4.17: 'zram: drop max_zpage_size and use zs_huge_class_size()' (Senozhatsky, "
        "Mar 2018)"))
    max_zpage_size: int = field(**fact(
        "max_zpage_size (bytes)", "dropped in 4.17 (huge_class_size from zsmalloc instead)"))
    rw_page: bool = field(**fact(
        "->rw_page (a failed swap I/O is retried as a bio)",
        "zram_rw_page removed in 6.3 (Christoph Hellwig's rw_page removal; commit "
        "unverified)"))
    compressors: str = field(**fact(
        "compressors", "zram's own backends and algorithm_params in 6.12 (Senozhatsky, "
        "'zram: introduce custom comp backends API' series, Sep 2024)"))
    backends: tuple = field(**fact(
        "backends and their algorithm_params",
        "level in 6.12 (algorithm_params_store); deflate.winbits in 6.16 ('zram: support "
        "deflate-specific params', dc75a0d93bd5)"))
    mm_stat_fields: tuple = field(**fact(
        "mm_stat fields", "the same nine in mm_stat_show of 6.1, 6.12 and 6.18 "
        "(huge_pages_since's release unverified)"))
    io_stat_fields: tuple = field(**fact(
        "io_stat fields", "the same four in io_stat_show of 6.1, 6.12 and 6.18; "
        "invalid_io printed as a literal 0 from 6.4"))
    counts_invalid_io: bool = field(**fact(
        "invalid_io counted",
        "6.4, 'zram: remove valid_io_request' (Hellwig): the block layer refuses I/O past "
        "the device before zram sees it, and io_stat_show prints 0"))
    swap_zero_map: bool = field(**fact(
        "zero-filled pages kept in the swap layer's zero map (never reach zram)",
        "6.12, 'mm: store zero pages to be swapped out in a bitmap' (Usama Arif): "
        "swap_writepage in mm/page_io.c"))
    bd_stat_fields: tuple = field(**fact(
        "bd_stat fields (CONFIG_ZRAM_WRITEBACK)",
        "the same three in bd_stat_show of 6.1, 6.12 and 6.18"))
    writeback: bool = field(**fact(
        "backing device, idle marking and writeback (idle, huge, page_index)",
        "5.0 (CONFIG_ZRAM_WRITEBACK's idle/huge writeback); huge_idle by 6.1"))
    writeback_incompressible: bool = field(**fact(
        "writeback of incompressible pages", "6.2 (with CONFIG_ZRAM_MULTI_COMP)"))
    writeback_largest_first: bool = field(**fact(
        "writeback takes the largest objects first (post-processing buckets)",
        "6.13 (zram_pp_select: buckets of 64 bytes of object size)"))
    idle_skips_same_and_written: bool = field(**fact(
        "idle marking skips same-filled and written-back slots, clears younger ones",
        "6.13 (the idle rework of Sep 2024; release assumed, not verified)"))
    debug_stat_fields: tuple = field(**fact(
        "debug_stat fields (after the 'version: 1' line)",
        "writestall alone from 2016 (debug_stat's num_recompress renamed, Minchan Kim; 4.7, "
        "unverified); miss_free added after 4.14, by 6.1 (release unverified); writestall "
        "printed as a "
        "literal 0 from 6.15 ('zram: remove writestall zram_stats member', Senozhatsky, "
        "Feb 2025)"))
    counts_writestall: bool = field(**fact(
        "writestall counted (zs_malloc's fast path failed, the GFP_NOIO retry ran)",
        "6.15: the second (GFP_NOIO) zs_malloc stage removed, and writestall with it, in "
        "Senozhatsky's preemptible-zram series (Feb-Mar 2025; release assumed)"))
    max_comp_streams: bool = field(**fact(
        "max_comp_streams attribute (shows num_online_cpus())",
        "defunct from 4.7 (per-CPU streams); removed in 6.15, 'zram: remove max_comp_streams "
        "device attr' (Senozhatsky, Mar 2025; release assumed)"))
    recompress: bool = field(**fact(
        "recomp_algorithm and recompress (CONFIG_ZRAM_MULTI_COMP)",
        "6.2 ('zram: introduce recompress sysfs knob', 84b33bf78889, Senozhatsky, Nov 2022)"))
    recompress_priority: bool = field(**fact(
        "recompress takes priority=N (and algorithm_params one per priority)",
        "6.12 ('zram: support priority parameter in recompression', the custom comp "
        "backends series, Sep 2024)"))
    recompress_largest_first: bool = field(**fact(
        "recompress takes the largest objects first (post-processing buckets)",
        "6.13 (scan_slots_for_recompress into the pp buckets writeback uses)"))
    recompress_clears_idle: bool = field(**fact(
        "recompress clears IDLE on every slot it reads, kept or not",
        "6.13 ('zram: clear IDLE flag after recompression', Oct 2024; release assumed)"))
    recompress_limits_priority: bool = field(**fact(
        "recompress refuses priorities past the device's algorithms (-EINVAL); "
        "INCOMPRESSIBLE once the loop has run to the last priority",
        "6.15 ('zram: limit max recompress prio to num_active_comps', 'zram: rework "
        "recompression loop', Feb 2025; release assumed); before, every priority up to "
        "ZRAM_MAX_COMPS was walked and INCOMPRESSIBLE needed all secondaries tried in one "
        "call"))
    compressor_limits: tuple = field(default=(), **fact(
        "compressors it lacks, or whose bytes zswapsim has only from a later kernel",
        "lib/lz4 became LZ4 v1.7.3 in 4.11 (r90 before); crypto/842.c in software in 4.1; "
        "crypto zstd in 4.17; lzo-rle in 5.1"))
    model = "zram"

    def backend(self, name):
        """This kernel's backend for compressor `name`; None for a compressor
        zswapsim runs under zram without a backend of its own (kernel-lz4, ...)."""
        return next((entry for entry in self.backends if entry.name == name), None)


# -- zswap -------------------------------------------------------------------

# The counters in /sys/kernel/debug/zswap, in the order zswap_debugfs_init
# creates them.  3.11: mm/zswap.c as merged (PATCHv11/12 "zswap: add to mm/",
# May 2013); "mm/zpool: update zswap to use zpool" (Dan Streetman, PATCHv5 4/4,
# Jul 2014) renamed pool_pages to pool_total_size (bytes); same_filled_pages
# came with "zswap: same-filled pages handling" (Oct 2017); 6.1 and 6.3 as
# ../shared/KERNEL.md §1.4 and the fidelity files list them.
DEBUGFS_3_11 = ("pool_limit_hit", "reject_reclaim_fail", "reject_alloc_fail",
                "reject_kmemcache_fail", "reject_compress_poor", "written_back_pages",
                "duplicate_entry", "pool_pages", "stored_pages")
DEBUGFS_6_1 = ("pool_limit_hit", "reject_reclaim_fail", "reject_alloc_fail",
               "reject_kmemcache_fail", "reject_compress_poor", "written_back_pages",
               "duplicate_entry", "pool_total_size", "stored_pages", "same_filled_pages")
# 6.12 and 6.18: the files those kernels' debugfs held in the fidelity runs
# (../shared/fidelity/README.md): same_filled_pages and duplicate_entry gone,
# reject_compress_fail new; 6.18 adds decompress_fail and
# stored_incompressible_pages.  Beside them the /proc/vmstat events.
DEBUGFS_6_12 = ("pool_limit_hit", "reject_reclaim_fail", "reject_alloc_fail",
                "reject_kmemcache_fail", "reject_compress_fail", "reject_compress_poor",
                "written_back_pages", "pool_total_size", "stored_pages")
DEBUGFS_6_18 = ("pool_limit_hit", "reject_reclaim_fail", "reject_alloc_fail",
                "reject_kmemcache_fail", "reject_compress_fail", "reject_compress_poor",
                "decompress_fail", "written_back_pages", "pool_total_size", "stored_pages",
                "stored_incompressible_pages")
# ZSWPOUT, ZSWPIN, ZSWPWB (6.8), PSWPOUT, PSWPIN, SWPOUT_ZERO, SWPIN_ZERO (6.12,
# page_io.c swap_zeromap_folio_set / swap_read_folio_zeromap).
VMSTAT_6_12 = ("zswpout", "zswpin", "zswpwb", "pswpout", "pswpin", "swpout_zero", "swpin_zero")

XVMALLOC_NEVER_IN_ZSWAP = Availability(
    "xvmalloc", WHAT_IF, "xvmalloc never shipped in zswap (zram's allocator until zsmalloc "
    "replaced it in 3.3-3.4); run with zbud's LRU reclaim contract")
ZCACHE_ZBUD_NEVER_IN_ZSWAP = Availability(
    "zcache-zbud", WHAT_IF, "zcache's zbud never shipped in zswap (drivers/staging/zcache, "
    "2010-2012, behind frontswap and cleancache); run with zbud's LRU reclaim contract")
ZPOOL_DRIVERS = (Availability("zbud", SHIPPED), Availability("z3fold", SHIPPED),
                 Availability("zsmalloc", SHIPPED), XVMALLOC_NEVER_IN_ZSWAP,
                 ZCACHE_ZBUD_NEVER_IN_ZSWAP)

# The what-ifs behind zswap's own LRU (6.6, 6.12): no allocator reclaim.
LRU_WHAT_IFS = (
    Availability("xvmalloc", WHAT_IF, "xvmalloc never shipped in zswap (zram's allocator until "
              "3.3-3.4); runs behind zswap's own LRU through the zpool malloc/free contract"),
    Availability("zcache-zbud", WHAT_IF, "zcache's zbud never shipped in zswap "
              "(drivers/staging/zcache, 2010-2012); runs behind zswap's own LRU through the "
              "zpool malloc/free contract"))

# Compressors before the kernels whose bytes zswapsim has (KERNEL-COMPRESSORS.md:
# lib/lz4 as LZ4 v1.7.3 from 4.11, "lib: update LZ4 compressor module", Sven
# Schmidt; lzo-rle from 5.1, "lib/lzo: implement run-length encoding", Dave
# Rodgman; crypto/zstd.c from 4.17; crypto/842.c driving lib/842 from 4.1).
LZO_RLE_FROM_5_1 = Availability("lzo-rle", ABSENT, "lzo-rle came in 5.1 ('lib/lzo: implement "
                                "run-length encoding')")
ZSTD_FROM_4_17 = Availability("zstd", ABSENT, "the crypto API's zstd came in 4.17 "
                              "(zstd-upstream runs as a what-if)")
LIB_LZ4_R90 = ("3.11's lib/lz4 is LZ4 r90, replaced by v1.7.3 in 4.11; the lengths here are "
               "4.11's and later kernels'")

# Where each zpool driver fixes the retries it passes to its reclaim_page.
DRIVER_SHRINK_OPS = {"zbud": "zbud_zpool_shrink() in mm/zbud.c",
                     "z3fold": "z3fold_zpool_shrink() in mm/z3fold.c",
                     "zsmalloc": "zs_zpool_shrink() in mm/zsmalloc.c"}

ZSWAP_3_11 = ZswapProfile(
    name="3.11", version=(3, 11),
    # mm/zswap.c of 3.11 (2b2811178e85 "zswap: add to mm/") includes linux/zbud.h
    # and calls zbud_* directly; the zpool layer that let zswap use zsmalloc came
    # in 3.18 (Dan Streetman, Jul 2014), z3fold in 4.8 (9a001fc19ccc "z3fold: the
    # 3-fold allocator for compressed pages", May 2016).
    allocators=(Availability("zbud", SHIPPED),
                Availability("z3fold", WHAT_IF, "z3fold came in 4.8, after 3.11's zswap, which "
                          "used zbud alone; run with zbud's contract"),
                Availability("zsmalloc", WHAT_IF, "zswap could use zsmalloc only from 3.18 (the "
                          "zpool layer); run with zbud's contract, evictable"),
                XVMALLOC_NEVER_IN_ZSWAP, ZCACHE_ZBUD_NEVER_IN_ZSWAP),
    # zbud's evict op is zswap_writeback_entry; the what-ifs get the same.
    evictable=("zbud", "z3fold", "xvmalloc", "zcache-zbud", "zsmalloc"),
    pool_per_swap_type=True,            # zswap_frontswap_init: zbud_create_pool per type
    lru_owner=ALLOCATOR_LRU,            # zbud's page LRU (mm/zbud.c, KERNEL.md §1.1)
    # zswap_frontswap_store 3.11: if zswap_is_full(), pool_limit_hit++ and
    # zbud_reclaim_page(tree->pool, 8); failure -> reject_reclaim_fail, -ENOMEM.
    limit_rule=RECLAIM_ON_STORE,
    shrink_rule=STORE_RECLAIMS_PAGE,
    reclaim_retries=8,                  # zbud_reclaim_page(tree->pool, 8)
    reclaim_retries_site="zswap_frontswap_store() in mm/zswap.c",
    # __frontswap_store 3.11 calls store on a dup (only a failed dup store clears
    # the bit); zswap_rb_insert gives -EEXIST, zswap counts duplicate_entry and
    # replaces the old entry.  d1dc6f1bcf1e (4.2) made frontswap invalidate first.
    duplicate_store=ZSWAP_REPLACES,
    zero_pages=NOT_SPECIAL,             # no same-filled handling before 4.15
    same_filled_default=False,
    exclusive_loads=False,              # loads leave the entry (zswap_frontswap_load)
    # The per-CPU zswap_dstmem is kmalloc(PAGE_SIZE * 2) and crypto_comp_compress
    # of 3.11 writes without a bound, so poor output reaches zbud_alloc (-ENOSPC).
    compress_dst_size=2 * PAGE_SIZE,
    incompressible=REFUSED_UNCOUNTED,   # never reached: zbud_alloc refuses first
    second_chance=False,
    shrink_failures_max=None,           # no shrink work: the store reclaims
    zpools_per_pool=1,
    zsmalloc_chain_size=4,              # ZS_MAX_ZSPAGE_ORDER 2 (the what-if's zsmalloc)
    zswap_header_size=8,                # struct zswap_header { swp_entry_t swpentry; }
    debugfs_counters=DEBUGFS_3_11,
    vmstat_counters=None,
    compressor_limits=(Availability("lz4", APPROXIMATE, LIB_LZ4_R90),
                       Availability("lz4hc", APPROXIMATE, LIB_LZ4_R90),
                       Availability("842", ABSENT, "3.11's crypto 842 is the nx-842 hardware; "
                                    "crypto/842.c in software came in 4.1"),
                       LZO_RLE_FROM_5_1, ZSTD_FROM_4_17),
)

ZSWAP_6_1 = ZswapProfile(
    name="6.1", version=(6, 1),
    allocators=ZPOOL_DRIVERS,           # CONFIG_ZSWAP_ZPOOL_DEFAULT_{ZBUD,Z3FOLD,ZSMALLOC}
    # zbud and z3fold have zpool .shrink (zbud_zpool_shrink, z3fold_zpool_shrink);
    # zs_zpool_driver of 6.1 has none, so zsmalloc never writes back.
    evictable=("zbud", "z3fold", "xvmalloc", "zcache-zbud"),
    pool_per_swap_type=False,           # one zswap_pool, its zpool shared by all types
    lru_owner=ALLOCATOR_LRU,            # zbud/z3fold page LRUs (KERNEL.md §1.1, §1.2)
    # zswap_frontswap_store 6.1: full -> pool_limit_hit++, zswap_pool_reached_full,
    # queue shrink_work, reject; then reject until below accept_threshold_percent.
    limit_rule=REJECT_AND_SHRINK,
    # shrink_worker 6.1: zpool_shrink(pool->zpool, 1, NULL), failure counted in
    # reject_reclaim_fail; the 8 retries are the driver's (zbud_zpool_shrink).
    shrink_rule=ZPOOL_SHRINK_ONE,
    # zbud_zpool_shrink: zbud_reclaim_page(pool, 8); z3fold_zpool_shrink:
    # z3fold_reclaim_page(pool, 8); 6.2-6.4 zs_zpool_shrink: zs_reclaim_page(pool, 8).
    reclaim_retries=8,
    reclaim_retries_site=None,          # the driver's shrink op: DRIVER_SHRINK_OPS
    duplicate_store=FRONTSWAP_INVALIDATES,      # __frontswap_store 6.1
    zero_pages=ZSWAP_SAME_FILLED,       # zswap_is_page_same_filled, entry length 0
    same_filled_default=True,           # zswap_same_filled_pages_enabled = true
    exclusive_loads=False,
    # zswap_frontswap_store 6.1: acomp_request_set_params(..., PAGE_SIZE, dlen) with
    # dlen = PAGE_SIZE: longer output fails the compressor, with no counter.
    compress_dst_size=PAGE_SIZE,
    incompressible=REFUSED_UNCOUNTED,   # the crypto error is not counted in 6.1
    second_chance=False,
    shrink_failures_max=None,           # shrink_worker makes one zpool_shrink call
    zpools_per_pool=1,
    zsmalloc_chain_size=4,              # ZS_MAX_ZSPAGE_ORDER 2 in 6.1's zsmalloc.c
    zswap_header_size=8,                # zswap_header on zpool_evictable() pools
    debugfs_counters=DEBUGFS_6_1,
    vmstat_counters=None,
)

ZSWAP_6_3 = dataclasses.replace(
    ZSWAP_6_1, name="6.3", version=(6, 3),
    # zs_zpool_driver gains .shrink = zs_zpool_shrink -> zs_reclaim_page(pool, 8)
    # in 6.2 (the zspage LRU of "Implement writeback for zsmalloc").
    evictable=("zbud", "z3fold", "xvmalloc", "zcache-zbud", "zsmalloc"),
    zsmalloc_chain_size=8,              # CONFIG_ZSMALLOC_CHAIN_SIZE default 8 (6.3)
)

ZSWAP_6_6 = ZswapProfile(
    name="6.6", version=(6, 6),
    allocators=(Availability("zbud", SHIPPED), Availability("z3fold", SHIPPED),
                Availability("zsmalloc", SHIPPED)) + LRU_WHAT_IFS,
    evictable=(),                       # zpool evict/shrink dropped in 6.5
    pool_per_swap_type=False,
    # mm/zswap.c of 6.6 (read as torvalds/linux's 6.6/6.7-era copy): struct
    # zswap_pool has its own `lru` list and lru_lock; zswap_store list_adds
    # an entry at the head, zswap_reclaim_entry takes list_last_entry.
    lru_owner=ZSWAP_LRU,
    # zswap_store 6.6: zswap_is_full() (max < pool pages) counts
    # pool_limit_hit and sets reached_full, then `goto shrink`; while
    # reached_full and !zswap_can_accept() also `goto shrink`: each queues
    # the last pool's shrink_work and rejects.
    limit_rule=REJECT_SHRINK_EACH_TIME,
    # shrink_worker 6.6: zswap_reclaim_entry until zswap_can_accept(); a
    # failure counts reject_reclaim_fail, -EAGAIN ones up to
    # MAX_RECLAIM_RETRIES, an empty LRU (-EINVAL) ends the work at once.
    shrink_rule=SHRINK_LRU_UNTIL_ACCEPT,
    reclaim_retries=None,
    reclaim_retries_site=None,
    # zswap_store 6.6: zswap_rb_search finds the duplicate, duplicate_entry++,
    # zswap_invalidate_entry, before anything else (frontswap is gone).
    duplicate_store=ZSWAP_COUNTS_AND_INVALIDATES,
    zero_pages=ZSWAP_SAME_FILLED,       # zswap_is_page_same_filled, length 0
    same_filled_default=True,
    exclusive_loads=False,              # the exclusive_loads parameter (Kconfig default)
    compress_dst_size=PAGE_SIZE,        # dlen = PAGE_SIZE into the 2-page dstmem
    incompressible=REFUSED_COMPRESS_FAIL,   # ret of crypto_wait_req: reject_compress_fail
    second_chance=False,
    shrink_failures_max=16,             # MAX_RECLAIM_RETRIES
    # zswap_find_zpool: hash_ptr(entry, ilog2(ZSWAP_NR_ZPOOLS)); the model
    # hashes the swap offset instead (the entry's address is unknowable), so
    # 6.6's pool sizes are approximate.
    zpools_per_pool=32,
    zsmalloc_chain_size=8,              # CONFIG_ZSMALLOC_CHAIN_SIZE default 8
    zswap_header_size=0,
    debugfs_counters=("pool_limit_hit", "reject_reclaim_fail", "reject_alloc_fail",
                      "reject_kmemcache_fail", "reject_compress_fail", "reject_compress_poor",
                      "written_back_pages", "duplicate_entry", "pool_total_size",
                      "stored_pages", "same_filled_pages"),
    vmstat_counters=("zswpout", "zswpin", "pswpout", "pswpin"),
    # 6.6 has no zswap_limited runs to fit: its worker, on the same
    # workqueue, takes 6.12's time per pass.
    shrink_step_cost=1,
    shrink_writeback_cost=45,
)

ZSWAP_6_12 = ZswapProfile(
    name="6.12", version=(6, 12),
    # CONFIG_ZSWAP_ZPOOL_DEFAULT_{ZBUD,Z3FOLD_DEPRECATED,ZSMALLOC} in 6.12's
    # mm/Kconfig; z3fold was deprecated in 6.12 and Debian's 6.12 build leaves
    # it out (CONFIG_Z3FOLD_DEPRECATED off, ../shared/fidelity/README.md).
    allocators=(Availability("zbud", SHIPPED),
                Availability("z3fold", SHIPPED, "mainline 6.12 has it, deprecated "
                          "(CONFIG_Z3FOLD_DEPRECATED); Debian's 6.12 does not build it"),
                Availability("zsmalloc", SHIPPED)) + LRU_WHAT_IFS,
    evictable=(),                       # zpool evict/shrink dropped in 6.5
    pool_per_swap_type=False,           # one zswap_pool, one zpool (ZSWAP_NR_ZPOOLS gone)
    # mm/zswap.c 6.12: list_lru zswap_list_lru, zswap_lru_add at store,
    # shrink_memcg_cb walks it (KERNEL.md §1.4, verified in 6.12.117).
    lru_owner=ZSWAP_LRU,
    # zswap_check_limits(): cur_pages >= zswap_max_pages() counts pool_limit_hit
    # and sets zswap_pool_reached_full, cleared once cur_pages <=
    # zswap_accept_thr_pages() (= max_pages * accept_thr_percent / 100); a
    # rejected store queues zswap_shrink_work while reached_full is set.
    limit_rule=CHECK_LIMITS,
    # shrink_worker(): shrink_memcg() walks one entry (nr_to_walk = 1) per
    # step while zswap_total_pages() > thr; a rotation or a failed writeback
    # is a failure, MAX_RECLAIM_RETRIES of them end the work.
    shrink_rule=SHRINK_LRU_TO_ACCEPT,
    reclaim_retries=None,               # no allocator reclaim_page to retry
    reclaim_retries_site=None,
    duplicate_store=XA_STORE_REPLACES,  # zswap_store: old = xa_store(); free old
    zero_pages=SWAP_ZEROMAP,            # page_io.c swap_writepage: is_folio_zero_filled
    same_filled_default=False,          # same_filled_pages_enabled removed (6.10)
    exclusive_loads=True,               # zswap_load: swapcache folio, entry erased
    # zswap_compress 6.12: dlen = PAGE_SIZE into acomp_request_set_params; a
    # compressor error (lz4: output did not fit) counts reject_compress_fail,
    # -ENOSPC from compressor or zpool_malloc reject_compress_poor.
    compress_dst_size=PAGE_SIZE,
    incompressible=REFUSED_COMPRESS_FAIL,
    second_chance=True,                 # zswap_store sets entry->referenced
    shrink_failures_max=16,             # MAX_RECLAIM_RETRIES
    zpools_per_pool=1,
    zsmalloc_chain_size=8,              # CONFIG_ZSMALLOC_CHAIN_SIZE=8 (Debian, default)
    zswap_header_size=0,                # no zswap_header since 6.5
    debugfs_counters=DEBUGFS_6_12,
    vmstat_counters=VMSTAT_6_12,
    # The worker starts at the next swap-out and takes a tenth of one for a
    # pass, four and a half for a pass that writes a page back: every
    # zswap_limited counter of 6.12 held in its kernel range (16 of 16).
    # See the fit in fidelity.py.
    shrink_delay=0,
    shrink_step_cost=1,
    shrink_writeback_cost=45,
)

ZSWAP_6_18 = dataclasses.replace(
    ZSWAP_6_12, name="6.18", version=(6, 18),
    # "mm: zswap: interact directly with zsmalloc" (6.18): no zpool layer; the
    # same commit's message says zbud and z3fold were removed in 6.15.
    allocators=(Availability("zbud", ABSENT, "zbud was removed in 6.15, and 6.18 has no zpool "
                          "layer (zsmalloc only)"),
                Availability("z3fold", ABSENT, "z3fold was removed in 6.15, and 6.18 has no "
                          "zpool layer (zsmalloc only)"),
                Availability("zsmalloc", SHIPPED),
                Availability("xvmalloc", ABSENT, "6.18 has no zpool layer: zswap calls zsmalloc "
                          "directly, so no other allocator can serve it"),
                Availability("zcache-zbud", ABSENT, "6.18 has no zpool layer: zswap calls "
                          "zsmalloc directly, so no other allocator can serve it")),
    # zswap_compress 6.18: comp_ret || !dlen || dlen >= PAGE_SIZE with writeback
    # enabled: dlen = PAGE_SIZE, the page copied as-is; zswap_store_page counts
    # stored_incompressible_pages for length == PAGE_SIZE.
    incompressible=STORED_AS_IS,
    debugfs_counters=DEBUGFS_6_18,
    # 6.18's limited runs wrote nothing back: with 6.12's pace, a worker
    # that starts 41 swap-outs after it was queued never gets past the
    # referenced entries, and every counter of both runs equals the kernel's.
    shrink_delay=41,
)

ZSWAP_PROFILES = {profile.name: profile for profile in (ZSWAP_6_1, ZSWAP_6_3, ZSWAP_3_11,
                                                        ZSWAP_6_6, ZSWAP_6_12, ZSWAP_6_18)}

# Per kernel: the libzstd release of its lib/zstd (include/linux/zstd_lib.h),
# then the size each user hands zstd_get_params(level, size), which picks the
# row of libzstd's level table the parameters start from (0: size unknown).
# crypto/zstd.c, zswap's zstd (and zram's until 6.12), is always level 3
# (ZSTD_DEF_LEVEL) and asks for size 0, until its acomp rewrite asked for
# ZSTD_MAX_SIZE (256 KiB): 6.18's.  zram's own backend_zstd.c (6.12 on)
# asks for PAGE_SIZE at the level of its algorithm_params (default 3); None
# means zram goes through crypto/zstd.c.  6.1 is 1.4.10 (zstd_lib.h), 6.12
# and 6.18 are 1.5.6 and 1.5.7 (../shared/fidelity/README.md), and 6.3 and
# 6.6 have the 1.5.2 that Linux 6.2 imported.  Linux 3.11 and 4.14 have no
# crypto zstd (it came in 4.17: ZSTD_FROM_4_17).
KERNEL_ZSTD = {
    #        release  crypto/zstd.c  zram's backend
    "6.1": ("1.4.10", 0, None),
    "6.3": ("1.5.2", 0, None),
    "6.6": ("1.5.2", 0, None),
    "6.12": ("1.5.6", 0, PAGE_SIZE),
    "6.18": ("1.5.7", 256 << 10, PAGE_SIZE),
}
DEFAULT_ZSWAP_KERNEL = ZSWAP_6_1.name

# -- zram --------------------------------------------------------------------

ZRAM_ALLOCATORS = (
    Availability("zsmalloc", SHIPPED),
    Availability("zbud", WHAT_IF, "zram only ever used zsmalloc; zbud runs to compare density"),
    Availability("z3fold", WHAT_IF, "zram only ever used zsmalloc; z3fold runs to compare "
              "density"),
    Availability("xvmalloc", WHAT_IF, "zram's allocator until zsmalloc replaced it in 3.3-3.4 "
              "('zram: replace xvmalloc with zsmalloc'); runs to compare density"),
)

# mm_stat_show, io_stat_show and bd_stat_show of drivers/block/zram/zram_drv.c:
# the same nine, four and three fields, in this order, in 6.1, 6.12 and 6.18
# (../shared/KERNEL.md §1.5; the 6.12 and 6.18 fidelity files' mm_stat).
MM_STAT = ("orig_data_size", "compr_data_size", "mem_used_total", "mem_limit",
           "mem_used_max", "same_pages", "pages_compacted", "huge_pages", "huge_pages_since")
IO_STAT = ("failed_reads", "failed_writes", "invalid_io", "notify_free")
BD_STAT = ("bd_count", "bd_reads", "bd_writes")         # in 4 KiB units
# debug_stat_show: "version: %d\n" (version 1 in every release), then one
# line: writestall alone in 4.14 (4.13/4.14 zram_drv.c); writestall and
# miss_free in 6.1 to 6.12 ("%8llu %8llu", as the 2022 and 2025 patches'
# context lines show it); "0 %8llu" from 6.15, the literal 0 where
# writestall stood.
DEBUG_STAT_VERSION = 1
DEBUG_STAT_4_14 = ("writestall",)
DEBUG_STAT = ("writestall", "miss_free")

# Before 6.12 zram named a crypto API compressor and had no parameters.
CRYPTO_BACKENDS = tuple(Backend(name, "crypto/" + source) for name, source in (
    ("lzo", "lzo.c"), ("lzo-rle", "lzo-rle.c"), ("lz4", "lz4.c"), ("lz4hc", "lz4hc.c"),
    ("zstd", "zstd.c"), ("deflate", "deflate.c"), ("842", "842.c")))


def zram_backends(deflate_params):
    """zram's backends from 6.12, with the algorithm_params each reads
    (the key's value range, then the default its setup_params picks):
    - backend_lz4.c: level is LZ4_compress_fast's acceleration, default
      LZ4_ACCELERATION_DEFAULT 1 (lib/lz4 treats less than 1 as 1);
    - backend_lz4hc.c: LZ4_compress_HC's level, default LZ4HC_DEFAULT_CLEVEL
      9, lib/lz4hc clamping to 1..LZ4HC_MAX_CLEVEL 16;
    - backend_zstd.c: zstd_get_params(level, PAGE_SIZE), default
      zstd_default_clevel() 3 (levels 1..22 here: zswapsim's zstd has no
      negative "fast" levels);
    - backend_deflate.c: zlib_deflateInit2's level, default
      Z_DEFAULT_COMPRESSION -1 (zlib's 6), and from 6.16 its windowBits,
      default DEFLATE_DEF_WINBITS -11 (raw deflate; 9..15 adds zlib's header
      and trailer), memLevel MAX_MEM_LEVEL 8; zlib_deflateInit2
      (lib/zlib_deflate/deflate.c) refuses any other level or windowBits;
    - backend_lzo.c, backend_lzorle.c, backend_842.c read no parameter."""
    return (Backend("lzo", "backend_lzo.c"), Backend("lzo-rle", "backend_lzorle.c"),
            Backend("lz4", "backend_lz4.c", (("level", ((1, 65537),), 1),)),
            Backend("lz4hc", "backend_lz4hc.c", (("level", ((1, 16),), 9),)),
            Backend("zstd", "backend_zstd.c", (("level", ((1, 22),), 3),)),
            Backend("deflate", "backend_deflate.c",
                    (("level", ((-1, 9),), -1),) + deflate_params),
            Backend("842", "backend_842.c"))


ZRAM_6_1 = ZramProfile(
    name="6.1", version=(6, 1), allocators=ZRAM_ALLOCATORS,
    zsmalloc_chain_size=4,              # ZS_MAX_ZSPAGE_ORDER 2: huge_class_size 3257
    huge_rule=HUGE_FROM_CLASS_SIZE,     # __zram_bvec_write: comp_len >= huge_class_size
    max_zpage_size=None,
    rw_page=True,                       # zram_devops.rw_page = zram_rw_page in 6.1
    compressors=CRYPTO_API,             # zcomp.c: crypto_alloc_comp(comp->name, 0, 0)
    backends=CRYPTO_BACKENDS,
    mm_stat_fields=MM_STAT, io_stat_fields=IO_STAT,
    counts_invalid_io=True,             # zram_submit_bio: !valid_io_request -> invalid_io++
    swap_zero_map=False,                # swap_writepage hands every page to the device
    bd_stat_fields=BD_STAT,
    writeback=True,                     # writeback_store: idle, huge, huge_idle, page_index
    writeback_incompressible=False,
    writeback_largest_first=False,      # writeback_store walks the indexes in order
    idle_skips_same_and_written=False,  # idle_store marks every allocated slot
    debug_stat_fields=DEBUG_STAT,
    counts_writestall=True,             # __zram_bvec_write: fast zs_malloc failed
    max_comp_streams=True,              # max_comp_streams_show: num_online_cpus()
    recompress=False,                   # CONFIG_ZRAM_MULTI_COMP came in 6.2
    recompress_priority=False,
    recompress_largest_first=False,
    recompress_clears_idle=False,
    recompress_limits_priority=False,
)
ZRAM_6_6 = dataclasses.replace(
    ZRAM_6_1, name="6.6", version=(6, 6),
    zsmalloc_chain_size=8,              # CONFIG_ZSMALLOC_CHAIN_SIZE 8: huge from 3625
    rw_page=False,                      # zram_rw_page removed in 6.3
    writeback_incompressible=True,      # ZRAM_INCOMPRESSIBLE writeback, 6.2
    recompress=True,                    # recomp_algorithm_store, recompress_store (6.2)
    # 6.4, "zram: remove valid_io_request": the block layer refuses I/O past
    # the device before zram sees it, and io_stat_show prints a literal 0.
    counts_invalid_io=False,
)
# 6.12 and 6.18, from drivers/block/zram/ of each release and the fidelity
# README's Debian configs (CONFIG_ZSMALLOC_CHAIN_SIZE=8): zram_write_page
# stores comp_len >= huge_class_size uncompressed (write_incompressible_page
# by 6.18), huge_class_size 3625 with chains of 8; no ->rw_page; io_stat_show
# prints "failed_reads failed_writes 0 notify_free" (valid_io_request gone
# since 6.4); mm_stat_show and bd_stat_show print the 6.1 fields.  The 6.6
# profile, fed 6.12's per-page lengths, already gives 6.12's mm_stat exactly.
ZRAM_6_12 = dataclasses.replace(
    ZRAM_6_6, name="6.12", version=(6, 12),
    compressors=ZRAM_BACKENDS,          # zcomp.c: backends[] of backend_*.c
    backends=zram_backends(()),         # algorithm_params_store: priority, level, algo, dict
    recompress_priority=True,           # recompress_store parses priority=N
    counts_invalid_io=False,
    # swap_writepage: a zero-filled folio sets its bits in the swap zeromap and
    # is not written (count_vm_event SWPOUT_ZERO); a load of it is filled with
    # zeros (swap_read_folio_zero_fill, SWPIN_ZERO); any other page clears
    # the bits before it is written.  What zram held there stays until the
    # slot is freed.
    swap_zero_map=True,
)
ZRAM_6_18 = dataclasses.replace(
    ZRAM_6_12, name="6.18", version=(6, 18),
    # algorithm_params_store also parses deflate.winbits (6.16)
    backends=zram_backends((("deflate.winbits", ((-15, -9), (9, 15)), -11),)),
    writeback_largest_first=True,       # scan_slots_for_writeback into pp buckets (6.13)
    idle_skips_same_and_written=True,
    # 6.15: one zs_malloc(GFP_NOIO) and no writestall ("0 %8llu" in
    # debug_stat_show); the max_comp_streams attribute is gone.
    counts_writestall=False,
    max_comp_streams=False,
    recompress_largest_first=True,      # scan_slots_for_recompress into pp buckets (6.13)
    recompress_clears_idle=True,        # recompress_slot: zram_clear_flag(ZRAM_IDLE) (6.13)
    recompress_limits_priority=True,    # prio_max = min(prio_max, num_active_comps) (6.15)
)
ZRAM_4_14 = dataclasses.replace(
    ZRAM_6_1, name="4.14", version=(4, 14),
    # zram_drv.h before 4.17: max_zpage_size = PAGE_SIZE / 4 * 3, "pages that
    # compress to size greater than this are stored uncompressed".
    huge_rule=HUGE_ABOVE_MAX_ZPAGE,
    max_zpage_size=PAGE_SIZE // 4 * 3,
    # 4.14 had CONFIG_ZRAM_WRITEBACK for huge pages only ("zram: add
    # writeback"), not modelled: the profile has no backing device.
    writeback=False,
    compressor_limits=(LZO_RLE_FROM_5_1, ZSTD_FROM_4_17),
    debug_stat_fields=DEBUG_STAT_4_14,  # zram_compress: writestall on the slow path
)

ZRAM_PROFILES = {profile.name: profile
                 for profile in (ZRAM_6_1, ZRAM_6_6, ZRAM_6_12, ZRAM_6_18, ZRAM_4_14)}
DEFAULT_ZRAM_KERNEL = ZRAM_6_1.name
PROFILES = {"zswap": ZSWAP_PROFILES, "zram": ZRAM_PROFILES}


def kernel_profile(model, kernel):
    """The profile `kernel` names for `model` ("zswap" or "zram"); a profile
    passes through; an unknown name is a ConfigError listing the known ones."""
    if isinstance(kernel, Profile):
        return kernel
    known = PROFILES[model]
    try:
        return known[kernel]
    except KeyError:
        raise ConfigError(f"unknown {model} kernel '{kernel}'; profiles: "
                          f"{', '.join(known)}") from None


# -- releases ----------------------------------------------------------------

def release_version(text):
    """(major, minor) of a release string such as 6.12.117+deb12-amd64."""
    match = re.match(r"(\d+)\.(\d+)", text)
    if match is None:
        raise ConfigError(f"'{text}' is not a kernel release (expected MAJOR.MINOR...)")
    return int(match[1]), int(match[2])


def nearest_profile(model, release):
    """(profile name, note) for a running release: the newest profile at or
    below it; the note says when the match is not exact.  The name is None
    when the release is older than every profile."""
    version = release_version(release)
    known = sorted(PROFILES[model].values(), key=lambda p: p.version)
    at_or_below = [p for p in known if p.version <= version]
    if not at_or_below:
        return None, f"older than every modelled {model} kernel (the oldest is {known[0].name})"
    pick = at_or_below[-1]
    if version > known[-1].version:
        return pick.name, f"newer than every modelled {model} kernel: {pick.name} is the newest"
    if version != pick.version:
        return pick.name, (f"no {version[0]}.{version[1]} profile: {pick.name} is the "
                           "nearest below")
    return pick.name, None


# -- the table `zswapsim kernels` prints -------------------------------------

def _plain(value):
    """A fact as JSON holds it."""
    if isinstance(value, tuple) and value and isinstance(value[0], Availability):
        return {entry.name: {"status": entry.status, "note": entry.note} for entry in value}
    if isinstance(value, tuple) and value and isinstance(value[0], Backend):
        return {entry.name: {"source": entry.source, "params": entry.describe()}
                for entry in value}
    return list(value) if isinstance(value, tuple) else value


def facts_table(model):
    """Per fact: its label, each profile's value, and where it changed; the
    facts equal in every profile under "same"."""
    profiles = sorted(PROFILES[model].values(), key=lambda p: p.version)
    differs, same = [], {}
    for spec in dataclasses.fields(profiles[0]):
        if not spec.metadata:
            continue
        values = {p.name: _plain(getattr(p, spec.name)) for p in profiles}
        if len({repr(value) for value in values.values()}) == 1:
            same[spec.name] = values[profiles[0].name]
            continue
        differs.append({"fact": spec.name, "label": spec.metadata["label"], "values": values,
                        "changed": spec.metadata["changed"]})
    return {"profiles": [p.name for p in profiles], "differs": differs, "same": same}
