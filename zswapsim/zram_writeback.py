"""zram's backing device (CONFIG_ZRAM_WRITEBACK): idle marking, writeback of
slots to the device and reads back from it, as drivers/block/zram/zram_drv.c
does them; Zram (zram.py) takes these methods.

The backing device is a bitmap of blocks, one page each: alloc_block_bdev
takes the lowest clear bit from block 1 (block 0 is never used, so that an
element of 0 is no block), so a device of N pages holds N - 1 written-back
pages (mainline up to 6.18; whether 6.18 already used block 0 is
unverified).  bd_stat_show prints bd_count (blocks in use), bd_reads and
bd_writes (pages read from and written to the device), in 4 KiB units:
pages, as zswapsim's pages are 4 KiB.

`idle` (idle_store, mark_idle): "all" marks every stored slot IDLE; an age
in seconds (CONFIG_ZRAM_MEMORY_TRACKING, CONFIG_ZRAM_TRACK_ENTRY_ACTIME from
6.10) marks a slot whose last access is older: cutoff = now - age, idle when
cutoff is after the slot's ac_time.  Every read or write of a slot
(zram_accessed, even a failed write) clears IDLE and sets ac_time to now.
Writeback and recompression never take a same-filled or written-back slot
whether or not it is marked; from the post-processing rework (6.13; "zram:
do not mark idle slots that cannot be idle", Sep 2024, release unverified)
mark_idle skips them, and also clears IDLE on a slot younger than the
cutoff; before, it marked every stored slot and cleared nothing.  The
clock is the caller's `clock_ns`: zram_replay sets it from the trace's
timestamps, or, in a trace without them, to the event index in seconds (one
event, one second).

`writeback` (writeback_store): `idle`, `huge`, `huge_idle` (both flags),
`incompressible` (6.2: ZRAM_INCOMPRESSIBLE, which only recompression sets,
zram_recompress.py, when no secondary algorithm could shrink a slot) or
`page_index=N`.  Same-filled and already
written-back slots are skipped.  A chosen slot's page is written to a free
block (bd_writes), its allocator object freed (compr_data_size, huge_pages
and the zsmalloc pages fall), and the slot then names the block: it still
counts in orig_data_size.  Before each page (each index before 6.13, each
chosen slot from 6.13): with writeback_limit_enable set and the budget
(writeback_limit, in 4 KiB units) at 0 the batch stops with -EIO; with no
free block it stops with -ENOSPC.  Each page written takes one unit off the
budget.  Before 6.13 the slots are taken in index order; from 6.13 (the
post-processing rework, "zram: rework writeback target selection
strategy") scan_slots_for_writeback puts every candidate in a bucket of its
object size / 64 (place_pp_slot, list_add: the last one placed first) and
select_pp_slot empties the buckets from the largest objects down.

A read of a written-back slot comes from the device (read_from_bdev,
bd_reads); the slot stays written back until it is overwritten or freed,
which releases its block.  Under ->rw_page (6.1) such a read fails first
(-EOPNOTSUPP, counted in failed_reads) and swap reads it again as a bio.

4.14's zram wrote huge pages to the device at write time and had no idle or
writeback files (those came in 5.0, "zram: support idle/huge page
writeback"): not modelled, so 4.14 refuses a backing device.
"""

import heapq

from .errors import ConfigError
from .memory import PAGE_SIZE

NSEC_PER_SEC = 10 ** 9
PP_BUCKET_SIZE_RANGE = 64           # bytes of object size per post-processing bucket
WRITEBACK_MODES = ("idle", "huge", "huge_idle", "incompressible")


def idle_age_ns(age):
    """The age `echo AGE > idle` names, in ns: None for "all"."""
    if age == "all":
        return None
    if isinstance(age, int) and not isinstance(age, bool) and age >= 0:
        return age * NSEC_PER_SEC
    raise ConfigError(f"idle '{age}': expected 'all' or an age in whole seconds")


class BackingDevice:
    """The bitmap of blocks 1..nr_pages-1 and the pages written there."""

    def __init__(self, nr_pages):
        if nr_pages < 2:
            raise ConfigError(f"a backing device of {nr_pages} page(s) holds no page "
                              "(block 0 is never used)")
        self.nr_pages = nr_pages
        self.pages = {}             # block -> the page written there
        self.freed = []             # heap of released blocks below `untouched`
        self.untouched = 1          # every block from here up has never been used

    def reserve(self):
        """The lowest free block, None if the device is full."""
        if self.freed:
            return heapq.heappop(self.freed)
        if self.untouched == self.nr_pages:
            return None
        self.untouched += 1
        return self.untouched - 1

    def release(self, block):
        """free_block_bdev of a block holding a page."""
        del self.pages[block]
        self.unreserve(block)

    def unreserve(self, block):
        """A reserved block given back unused (writeback_store's leftover)."""
        heapq.heappush(self.freed, block)


class Writeback:
    """idle, writeback and writeback_limit of a Zram (bd_stat is zram.py's
    Reports); the Zram keeps `slots`, `stats` (bd_reads, bd_writes),
    `clock_ns` and `profile`."""

    def _init_writeback(self, backing_pages):
        self.backing = None
        if backing_pages:
            self._check_feature("backing device writeback", "writeback")
            self.backing = BackingDevice(backing_pages)
        self.clock_ns = 0
        self.wb_limit_enable = False
        self.bd_wb_limit = 0        # 4 KiB units

    def _check_feature(self, what, fact):
        """Refuse `what` unless the profile has `fact`, naming where it came."""
        if not getattr(self.profile, fact):
            changed = self.profile.__dataclass_fields__[fact].metadata["changed"]
            raise ConfigError(f"Linux {self.profile.name}'s zram: no {what} (that came in "
                              f"{changed})")

    def mark_idle(self, age="all"):
        """echo all|SECONDS > idle; the number of slots marked."""
        self._check_feature("idle marking", "writeback")
        age_ns = idle_age_ns(age)
        cutoff = None if age_ns is None else self.clock_ns - age_ns
        reworked = self.profile.idle_skips_same_and_written
        marked = 0
        for slot in self.slots.values():
            if reworked and (slot.word is not None or slot.block is not None):
                continue
            if cutoff is None or cutoff > slot.ac_time:
                slot.idle = True
                marked += 1
            elif reworked:
                slot.idle = False
        return marked

    def set_writeback_limit(self, pages, enable=True):
        """echo PAGES > writeback_limit and ENABLE > writeback_limit_enable."""
        if pages < 0:
            raise ConfigError(f"writeback_limit {pages} is negative")
        self.bd_wb_limit = pages
        self.wb_limit_enable = enable

    def writeback(self, mode):
        """echo MODE > writeback, MODE one of WRITEBACK_MODES or "page_index=N";
        (pages written, None or the errno that ended the batch)."""
        candidates = self._writeback_candidates(mode)
        written, error, block = 0, None, None
        for index in candidates:
            if self.wb_limit_enable and not self.bd_wb_limit:
                error = "EIO"
                break
            if block is None:
                block = self.backing.reserve()
                if block is None:
                    error = "ENOSPC"
                    break
            if index is None:               # an index the pre-6.13 loop passes over
                continue
            self._write_back(index, block)
            block = None
            written += 1
            if self.wb_limit_enable and self.bd_wb_limit > 0:
                self.bd_wb_limit -= PAGE_SIZE // 4096
        if block is not None:
            self.backing.unreserve(block)
        return written, error

    def _writeback_candidates(self, mode):
        """The slots `mode` writes back, in the kernel's order; before 6.13 one
        entry per index walked, None for an index not taken."""
        wanted, single = self._writeback_filter(mode)

        def taken(index):
            slot = self.slots.get(index)
            return (slot is not None and slot.word is None and slot.block is None
                    and wanted(slot))

        walks_indexes = not self.profile.writeback_largest_first
        if single is not None:
            return [single] if taken(single) else [None] if walks_indexes else []
        if walks_indexes:
            return _index_walk(self, taken)
        buckets = {}
        for index in sorted(filter(taken, self.slots)):
            buckets.setdefault(self.slots[index].size // PP_BUCKET_SIZE_RANGE, []).append(index)
        return [index for bucket in sorted(buckets, reverse=True)
                for index in reversed(buckets[bucket])]

    def _writeback_filter(self, mode):
        """(which slots `mode` wants, the one index of page_index=N or None)."""
        if self.backing is None:
            raise ConfigError("writeback needs a backing device (backing_dev; -ENODEV)")
        if mode.startswith("page_index="):
            digits = mode[len("page_index="):]
            index = int(digits) if digits.isascii() and digits.isdigit() else -1
            if not 0 <= index < self.nr_pages:
                raise ConfigError(f"writeback '{mode}': not an index of the device's "
                                  f"{self.nr_pages} pages (-EINVAL)")
            return (lambda slot: True), index
        if mode not in WRITEBACK_MODES:
            raise ConfigError(f"writeback '{mode}': expected {', '.join(WRITEBACK_MODES)} "
                              "or page_index=N (-EINVAL)")
        if mode == "incompressible":
            self._check_feature("incompressible writeback", "writeback_incompressible")
        return {"idle": lambda slot: slot.idle, "huge": lambda slot: slot.huge,
                "huge_idle": lambda slot: slot.huge and slot.idle,
                "incompressible": lambda slot: slot.incompressible}[mode], None

    def _write_back(self, index, block):
        page = self.peek(index)
        self._free_slot(index)
        self.slots[index] = self.Slot(block=block)
        self.backing.pages[block] = page
        self.stats["pages_stored"] += 1
        self.stats["bd_writes"] += 1


def _index_walk(device, taken):
    """The pre-6.13 loop over every index: None for one not taken.  Indexes
    past the last stored slot are collapsed into one None, enough for the
    limit and block checks that each index makes."""
    stored = sorted(device.slots)
    walk = []
    previous = -1
    for index in stored:
        if index > previous + 1:
            walk.append(None)
        walk.append(index if taken(index) else None)
        previous = index
    if previous + 1 < device.nr_pages:
        walk.append(None)
    return walk
