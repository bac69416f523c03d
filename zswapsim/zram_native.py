"""The native engine's zram: zswapsim/_engine/zram.c, the compiled twin of
zram.py's Zram with its own RAM (memory.c), one call per operation, as
_heapq stands behind heapq.

zram.py stays the reference and the specification; NativeZram must agree
with it call for call (tests/test_zram_engines.py drives both with the same
writes, reads, discards and compactions).  It takes Zram's arguments,
checked by the same code (zram.device_settings), compresses through the
same CompressionCache (so cache hits and results are the Python Zram's),
and reports through the same Reports (mm_stat, io_stat, bd_stat,
debug_stat, from identical `stats`).  What differs: the RAM is the
engine's own (a `memory` given is a ConfigError); there is no backing
device and no recompression yet (a backing device asked for, writeback,
recomp_algorithm and recompress are each one ConfigError line;
engine.zram_class gives the Python Zram to runs that want them); pages are
4096 bytes (ValueError otherwise); `stats` and `slots` are snapshots, read
from the engine when asked for; the disksize is below 2^75 bytes
(OverflowError otherwise).  The allocators are the compiled ones
(zpool/native.py's); one with no compiled twin is a ConfigError naming
those there are.
"""

from collections.abc import Mapping

from . import _engine
from .errors import ConfigError
from .profiles import DEFAULT_ZRAM_KERNEL, HUGE_ABOVE_MAX_ZPAGE
from .zpool.base import pool_driver
from .zram import Reports, Slot, device_settings
from .zram_writeback import Writeback, idle_age_ns

NO_WRITEBACK = ("the native engine's zram has no backing device or writeback yet "
                "(the python engine's has)")
NO_RECOMPRESSION = "the native engine's zram has no recompression yet (the python engine's has)"


class _Pool:
    """The allocator's view zram's callers take: its pages and its audit."""

    def __init__(self, device):
        self.total_pages = device._total_pages
        self.check = device._check

    def total_size(self):
        return self.total_pages() * _engine.PAGE_SIZE


class _Ram:
    """The device's RAM, as Memory shows it (unbounded: totalram_pages None)."""

    totalram_pages = None

    def __init__(self, device):
        self._device = device

    used_pages = property(lambda self: self._device._ram_pages()[0])
    peak_pages = property(lambda self: self._device._ram_pages()[1])


class _Slots(Mapping):
    """index -> zram.Slot of each stored slot, built from the engine's table
    when asked for; in index order (zram.py's dict keeps write order)."""

    def __init__(self, device):
        self._device = device

    def __getitem__(self, index):
        fields = self._device._slot(index)
        if fields is None:
            raise KeyError(index)
        handle, size, word, huge, ac_time, idle = fields
        slot = Slot(handle, size, word, huge, ac_time=ac_time)
        slot.idle = idle
        return slot

    def __iter__(self):
        return iter(sorted(self._device._indexes()))

    def __len__(self):
        return len(self._device._indexes())


class NativeZram(Reports, _engine.Zram):
    """Zram(disksize, ...) run by the compiled engine; see the module comment
    for what differs from zram.Zram."""

    engine = "native"
    backing = None                  # no backing device: bd_stat's bd_count is 0

    def __init__(self, disksize, compressor="lz4", allocator="zsmalloc", mem_limit=0,
                 kernel=DEFAULT_ZRAM_KERNEL, memory=None, algorithm_params=None,
                 backing_dev_pages=0):
        if memory is not None:
            raise ConfigError("the native engine's zram keeps its own RAM: give no memory=")
        profile, self.nr_pages, self.limit_pages, self.compressor = device_settings(
            disksize, compressor, allocator, mem_limit, kernel, algorithm_params)
        pool_driver(allocator, "native")
        if backing_dev_pages:
            raise ConfigError(NO_WRITEBACK)
        self.profile, self.kernel, self.rw_page = profile, profile.name, profile.rw_page
        self.huge_above_max_zpage = profile.huge_rule == HUGE_ABOVE_MAX_ZPAGE
        super().__init__(self.compressor, backend=allocator,
                         chain_size=profile.zsmalloc_chain_size, nr_pages=self.nr_pages,
                         limit_pages=self.limit_pages,
                         huge_above_max_zpage=self.huge_above_max_zpage,
                         max_zpage_size=profile.max_zpage_size or 0,
                         counts_invalid_io=profile.counts_invalid_io,
                         counts_writestall=profile.counts_writestall,
                         idle_skips_same=profile.idle_skips_same_and_written)
        self.pool, self.memory, self.slots = _Pool(self), _Ram(self), _Slots(self)

    @property
    def stats(self):
        """zram.py's `stats`: a snapshot of the engine's counters."""
        return self._counts()

    _check_feature = Writeback._check_feature

    def mark_idle(self, age="all"):
        """echo all|SECONDS > idle; the number of slots marked."""
        self._check_feature("idle marking", "writeback")
        return self._mark_idle(idle_age_ns(age))

    # -- what only the Python Zram has yet ------------------------------------

    def _writeback_filter(self, mode):
        raise ConfigError(NO_WRITEBACK)

    def writeback(self, mode):
        raise ConfigError(NO_WRITEBACK)

    def set_writeback_limit(self, pages, enable=True):
        raise ConfigError(NO_WRITEBACK)

    def recomp_algorithm(self, text, compressor=None, params=None):
        raise ConfigError(NO_RECOMPRESSION)

    def recomp_algorithm_params(self, text):
        raise ConfigError(NO_RECOMPRESSION)

    def parse_recompress(self, text):
        raise ConfigError(NO_RECOMPRESSION)

    def recompress(self, text):
        raise ConfigError(NO_RECOMPRESSION)
