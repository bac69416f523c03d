"""zram: a compressed RAM block device, as drivers/block/zram/zram_drv.c
writes, reads, frees and accounts pages.

A write of page `index` (__zram_bvec_write in 6.1):
- a same-filled page (one 8-byte word repeated) is kept as that word: it
  counts in same_pages and allocates nothing;
- otherwise it is compressed (into a two-page buffer, so any length fits);
  an output of at least the allocator's huge_class_size is stored
  uncompressed, as a PAGE_SIZE object, and counts in huge_pages and
  huge_pages_since;
- the object is allocated, mem_used_max updated, and only then mem_limit
  checked: over it, the new object is freed again;
- only now is the slot's old object freed: the new one takes the slot, and
  compr_data_size grows by the stored length.
A write that gets no object (zs_malloc refused, mem_limit exceeded)
returns -ENOMEM before the old object is touched, so the slot keeps the
old page, and counts in failed_writes; a request past disksize counts in
invalid_io alone.  A freed slot (swap's slot-free notify, or a discard)
counts notify_free.  A read of a slot never written gives zeros.  mm_stat
and io_stat report the kernel's fields in the kernel's order.

The swap layer calls zram through ->rw_page where the driver has one (6.1
and 4.14; removed in 6.3) and, when that fails, submits the same write as a
bio (__swap_writepage): one failed swap-out is two failed writes, or two
invalid_io, in those kernels' io_stat.  `rw_page` says which; zram_replay.py
plays the swap layer.

The backing device, idle marking and writeback are zram_writeback.py's;
recompression (recomp_algorithm, recompress) is zram_recompress.py's.  The
compiled twin of this file is zswapsim/_engine/zram.c (zram_native.py's
NativeZram): the same device, idle marking included, without a backing
device or recompression.

Kernel profiles (`kernel`, from profiles.py): 6.1 (zsmalloc chains of 4
pages, huge from huge_class_size = 3257 bytes), 6.6 (chains of 8 with 6.3's
chain rule, huge from 3625; the ten inuse-ratio fullness groups of 6.4+ are
not modelled, which matters only to where objects land after frees) and
4.14 (before 4.17: a fixed max_zpage_size of 3072, huge when the length is
*greater*).  zram only ever ran on zsmalloc; another allocator can be put
under it to compare density, with the preset's huge threshold: zbud (3968
bytes at most) and xvmalloc (4088) cannot hold a huge page's 4096 bytes, so
such writes fail as zs_malloc's would.  6.12 and 6.18 are 6.6's write
path and zsmalloc (6.6, fed 6.12's per-page lengths, gives 6.12's mm_stat
exactly) with 6.12's compressors: zram's own backends, whose
algorithm_params (`algorithm_params`, "level=N deflate.winbits=W") pick a
compression level (lz4's acceleration, lz4hc, zstd, deflate) and, from
6.16, deflate's window bits; a past-the-end request is refused by the block
layer there and no longer counts in invalid_io (6.4).  mm_stat, io_stat,
bd_stat and debug_stat print the profile's fields in its order.

debug_stat (debug_stat_show): writestall counts writes whose first,
non-sleeping zs_malloc failed (the kernel retries with GFP_NOIO; here the
retry fails alike, so each is also a failed write) until 6.15 removed that
second stage; miss_free counts slot-free notifies that found the slot
locked, which a single caller never does, so it stays 0.
"""

from .compress import (ZCOMP_DST_SIZE, CompressionCache, Deflate, KernelLz4, KernelLz4hc,
                       get_compressor, kernel_zstd)
from .errors import ConfigError, NoMemory, NoSpace
from .memory import PAGE_SIZE, Memory, same_filled_word
from .profiles import (BD_STAT, DEBUG_STAT_VERSION, DEFAULT_ZRAM_KERNEL, HUGE_ABOVE_MAX_ZPAGE,
                       IO_STAT, MM_STAT, kernel_profile)
from .zpool import create_pool
from .zram_recompress import Recompress
from .zram_writeback import Writeback

__all__ = ["BD_STAT", "IO_STAT", "MM_STAT", "Zram", "parse_algorithm_params"]


def parse_algorithm_params(text):
    """{key: int} of an algorithm_params string, "level=9 deflate.winbits=-12"
    (empty: none); a token that is not KEY=INTEGER, or a key given twice, is
    a ConfigError.  Which keys a backend reads is `_backend_params`' check."""
    params = {}
    for token in (text or "").split():
        key, _, value = token.partition("=")
        if key == "dict":
            raise ConfigError(f"algorithm_params '{token}': compression dictionaries are "
                              "not modelled")
        try:
            number = int(value, 10)
        except ValueError:
            raise ConfigError(f"algorithm_params '{token}': expected KEY=INTEGER, "
                              "e.g. level=9") from None
        if key in params:
            raise ConfigError(f"algorithm_params: {key} given twice")
        params[key] = number
    return params


def _backend_params(profile, algorithm, params):
    """`params` checked against the backend of `algorithm` under `profile`,
    with the backend's defaults filled in; None when none were given (the
    compressor then is exactly `get_compressor(algorithm)`)."""
    if not params:
        return None
    backend = profile.backend(algorithm)
    if backend is None or not backend.params:
        takers = [entry.name for entry in profile.backends if entry.params]
        if not takers:
            raise ConfigError(f"Linux {profile.name}'s zram has no algorithm_params (they "
                              "came with zram's own backends in 6.12)")
        raise ConfigError(f"zram's {algorithm} takes no algorithm_params under Linux "
                          f"{profile.name}; {', '.join(takers)} do")
    for key, value in params.items():
        spec = backend.param(key)
        if spec is None:
            raise ConfigError(f"zram's {algorithm} ({backend.source}) under Linux "
                              f"{profile.name} reads no '{key}'; it reads "
                              f"{', '.join(backend.describe())}")
        if not any(low <= value <= high for low, high in spec[0]):
            raise ConfigError(f"{algorithm} {key}={value}: not in "
                              f"{backend.describe()[key]}")
    return {key: params.get(key, default) for key, _intervals, default in backend.params}


def _backend_compressor(profile, algorithm, params):
    """The compressor zram's backend `algorithm` runs with checked `params`
    under `profile`, into zcomp's two-page buffer: lib/lz4 at the level as
    LZ4_compress_fast's acceleration or LZ4_compress_HC's level, zstd as that
    kernel's (backend_zstd.c asks its lib/zstd for zstd_get_params(level,
    PAGE_SIZE): compress.kernel_zstd), deflate at the level and window bits."""
    level = params.get("level")
    if algorithm == "lz4":
        return KernelLz4(ZCOMP_DST_SIZE, acceleration=level)
    if algorithm == "lz4hc":
        return KernelLz4hc(level, ZCOMP_DST_SIZE)
    if algorithm == "zstd":
        return kernel_zstd(profile.name, "zram", level)
    # Z_DEFAULT_COMPRESSION (-1) is zlib's level 6
    return Deflate(level=level, wbits=params.get("deflate.winbits", Deflate.WBITS))


# zram.py's `stats`: struct zram_stats of zram_drv.h (with pages_stored),
# the backing device's reads and writes, debug_stat's writestall and
# miss_free, and io_stat.
STATS = ("compr_data_size", "mem_used_max", "same_pages", "pages_compacted", "huge_pages",
         "huge_pages_since", "pages_stored", "bd_reads", "bd_writes", "writestall",
         "miss_free") + IO_STAT


class Slot:
    __slots__ = ("handle", "size", "word", "huge", "block", "ac_time", "idle",
                 "incompressible", "priority")

    def __init__(self, handle=None, size=0, word=None, huge=False, block=None, ac_time=0):
        self.handle = handle        # the allocator's handle, None for a same-filled page
        self.size = size            # bytes stored (compressed length, or PAGE_SIZE if huge)
        self.word = word            # the repeated word of a same-filled page
        self.huge = huge
        self.block = block          # the backing device's block of a written-back page
        self.ac_time = ac_time      # last access, ns on the device's clock
        self.idle = False           # ZRAM_IDLE
        self.incompressible = False     # ZRAM_INCOMPRESSIBLE (set by recompression)
        self.priority = 0           # ZRAM_COMP_PRIORITY: the algorithm that compressed it


def device_settings(disksize, compressor, allocator, mem_limit, kernel, algorithm_params):
    """(profile, nr_pages, limit_pages, CompressionCache) of a device with
    these arguments, each checked as Zram's constructor checks it (and
    NativeZram's, which takes the same)."""
    profile = kernel_profile("zram", kernel)
    profile.check_allocator(allocator)
    if isinstance(algorithm_params, str):
        algorithm_params = parse_algorithm_params(algorithm_params)
    if algorithm_params and not isinstance(compressor, str):
        raise ConfigError("algorithm_params need a compressor named by its algorithm")
    if disksize < PAGE_SIZE:
        raise ConfigError(f"disksize {disksize} is smaller than one page")
    if mem_limit < 0:
        raise ConfigError(f"mem_limit {mem_limit} is negative")
    if isinstance(compressor, str):
        params = _backend_params(profile, compressor, algorithm_params)
        compressor = (get_compressor(compressor, kernel=profile, user="zram")
                      if params is None else _backend_compressor(profile, compressor, params))
    cache = compressor if isinstance(compressor, CompressionCache) \
        else CompressionCache(compressor)
    return profile, disksize // PAGE_SIZE, -(-mem_limit // PAGE_SIZE), cache


class Reports:
    """mm_stat, io_stat, bd_stat and debug_stat, from a device's `stats`,
    `pool`, `limit_pages`, `backing` and `profile`: Zram's and NativeZram's."""

    def mm_stat(self):
        s = self.stats
        values = {
            "orig_data_size": s["pages_stored"] * PAGE_SIZE,
            "compr_data_size": s["compr_data_size"],
            "mem_used_total": self.pool.total_pages() * PAGE_SIZE,
            "mem_limit": self.limit_pages * PAGE_SIZE,
            "mem_used_max": s["mem_used_max"] * PAGE_SIZE,
            "same_pages": s["same_pages"],
            "pages_compacted": s["pages_compacted"],
            "huge_pages": s["huge_pages"],
            "huge_pages_since": s["huge_pages_since"],
        }
        return {name: values[name] for name in self.profile.mm_stat_fields}

    def io_stat(self):
        stats = self.stats
        return {name: stats[name] for name in self.profile.io_stat_fields}

    def bd_stat(self):
        in_use = 0 if self.backing is None else len(self.backing.pages)
        stats = self.stats
        values = {"bd_count": in_use, "bd_reads": stats["bd_reads"],
                  "bd_writes": stats["bd_writes"]}
        return {name: values[name] for name in self.profile.bd_stat_fields}

    def debug_stat(self):
        """debug_stat's version and fields; miss_free (a slot-free notify that
        found the slot locked) stays 0, as one caller never contends."""
        stats = self.stats
        fields = {name: stats[name] for name in self.profile.debug_stat_fields}
        return {"version": DEBUG_STAT_VERSION} | fields


class Zram(Writeback, Recompress, Reports):
    Slot = Slot
    engine = "python"

    def __init__(self, disksize, compressor="lz4", allocator="zsmalloc", mem_limit=0,
                 kernel=DEFAULT_ZRAM_KERNEL, memory=None, algorithm_params=None,
                 backing_dev_pages=0):
        profile, self.nr_pages, self.limit_pages, self.compressor = device_settings(
            disksize, compressor, allocator, mem_limit, kernel, algorithm_params)
        self.profile = profile
        self.kernel = profile.name
        self.rw_page = profile.rw_page
        self.memory = memory if memory is not None else Memory()
        chain_size = profile.zsmalloc_chain_size
        options = {"chain_size": chain_size} if allocator == "zsmalloc" else {}
        self.pool = create_pool(allocator, memory=self.memory, **options)
        self.geometry = create_pool("zsmalloc", chain_size=chain_size)     # the class table
        self.huge_class_size = self.geometry.huge_class_size
        self.huge_above_max_zpage = profile.huge_rule == HUGE_ABOVE_MAX_ZPAGE
        self.slots = {}             # index -> Slot
        self.stats = dict.fromkeys(STATS, 0)
        self._init_writeback(backing_dev_pages)
        self._init_recompress()

    def is_huge(self, length):
        if self.huge_above_max_zpage:
            return length > self.profile.max_zpage_size
        return length >= self.huge_class_size

    def _valid(self, index):
        if 0 <= index < self.nr_pages:
            return True
        if self.profile.counts_invalid_io:
            self.stats["invalid_io"] += 1
        return False

    # -- block I/O ---------------------------------------------------------

    def write(self, index, page):
        """Write one page; False when it failed: failed_writes counted (the slot
        keeps its old contents), or invalid_io for an index past the device."""
        if not self._valid(index):
            return False
        stats = self.stats
        word = same_filled_word(page)
        if word is not None:
            new = Slot(word=word, ac_time=self.clock_ns)
            stats["same_pages"] += 1
        else:
            data = self.compressor.compress(page)
            huge = self.is_huge(len(data))
            if huge:
                data = page
            try:
                handle = self.pool.malloc(len(data))
            except (NoSpace, NoMemory):
                # the fast zs_malloc failed: writestall, then the GFP_NOIO
                # retry, which fails alike (nothing here reclaims memory)
                if self.profile.counts_writestall:
                    stats["writestall"] += 1
                return self._write_failed(index)
            pages = self.pool.total_pages()
            stats["mem_used_max"] = max(stats["mem_used_max"], pages)
            if self.limit_pages and pages > self.limit_pages:
                self.pool.free(handle)
                return self._write_failed(index)
            self.pool.write(handle, data)
            new = Slot(handle, len(data), huge=huge, ac_time=self.clock_ns)
            if huge:
                stats["huge_pages"] += 1
                stats["huge_pages_since"] += 1
        self._free_slot(index)
        self.slots[index] = new
        stats["compr_data_size"] += new.size
        stats["pages_stored"] += 1
        return True

    def _write_failed(self, index):
        """failed_writes; the slot keeps its page, yet zram_accessed touches it."""
        self.stats["failed_writes"] += 1
        self._accessed(index)
        return False

    def _accessed(self, index):
        slot = self.slots.get(index)
        if slot is not None:
            slot.idle = False
            slot.ac_time = self.clock_ns

    def read(self, index, rw_page=False):
        """The page at `index` (zeros if never written); None for an invalid
        index, or for a written-back page asked for through ->rw_page (which
        must come as a bio: failed_reads)."""
        if not self._valid(index):
            return None
        slot = self.slots.get(index)
        if slot is not None and slot.block is not None:
            if rw_page:
                self.stats["failed_reads"] += 1
                self._accessed(index)
                return None
            self.stats["bd_reads"] += 1
        self._accessed(index)
        return self.peek(index)

    def peek(self, index):
        """The page at a valid `index`, as read() gives it, touching no counter."""
        slot = self.slots.get(index)
        if slot is None:
            return bytes(PAGE_SIZE)
        if slot.block is not None:
            return self.backing.pages[slot.block]
        if slot.handle is None:
            return slot.word * (PAGE_SIZE // len(slot.word))
        data = self.pool.read(slot.handle)
        if slot.huge:
            return data
        return (self.comps[slot.priority] if slot.priority else self.compressor).decompress(
            data, PAGE_SIZE)

    def discard(self, index):
        """Swap's slot-free notify (or a discard) for one page."""
        if not self._valid(index):
            return
        self.stats["notify_free"] += 1
        self._free_slot(index)

    def _free_slot(self, index):
        slot = self.slots.pop(index, None)
        if slot is None:
            return
        stats = self.stats
        if slot.block is not None:
            self.backing.release(slot.block)
        elif slot.handle is None:
            stats["same_pages"] -= 1
        else:
            self.pool.free(slot.handle)
            stats["compr_data_size"] -= slot.size
            if slot.huge:
                stats["huge_pages"] -= 1
        stats["pages_stored"] -= 1

    def compact(self):
        """echo 1 > compact: the allocator's compaction; pages freed."""
        compact = getattr(self.pool, "compact", None)
        freed = compact() if compact is not None else 0
        self.stats["pages_compacted"] += freed
        return freed
