"""zram's backing device, idle marking and writeback, and LTP's zram03 case,
against numbers derived by hand from drivers/block/zram/zram_drv.c:
- writeback_store (6.1..6.12): every index in order; before each, with
  writeback_limit_enable and bd_wb_limit 0 the batch ends with -EIO, with no
  free block (alloc_block_bdev from bit 1: block 0 never used) -ENOSPC;
  ZRAM_WB and ZRAM_SAME slots skipped; idle mode needs ZRAM_IDLE, huge mode
  ZRAM_HUGE; a written page costs one 4 KiB unit of the budget; the slot's
  object is freed (zram_free_page: compr_data_size, huge_pages) and
  pages_stored kept.
- 6.13+ (scan_slots_for_writeback, place_pp_slot, select_pp_slot): buckets
  of obj_size / 64, taken from the highest; list_add puts the last placed
  (highest index) first.
- mark_idle: cutoff = now - age; idle when cutoff is after ac_time; SAME
  and WB slots never marked; zram_accessed clears IDLE on each access.
- bd_stat_show: bd_count, bd_reads, bd_writes, FOUR_K units (= pages).
- __zram_bvec_read under ->rw_page (6.1): a ZRAM_WB slot gives -EOPNOTSUPP
  (failed_reads) before read_from_bdev, and swap reads it as a bio.
"""

import json

import lz4.block
import pytest

from test_profiles import one_line_error
from test_zram import page, write_trace
from zswapsim.cli import main
from zswapsim.compress import Compressor
from zswapsim.errors import ConfigError
from zswapsim.zram import Zram
from zswapsim.zram_replay import swap_readpage

SECOND = 10 ** 9


class Sized(Compressor):
    """Output of a length chosen per page (page(n) -> lengths[n])."""

    name = "sized"

    def __init__(self, lengths):
        self.lengths = lengths
        self.pages = {}

    def compress(self, data):
        out = data[:16] + bytes(self.lengths[int.from_bytes(data[:8], "little")] - 16)
        self.pages[out] = data
        return out

    def decompress(self, data, size=4096):
        return self.pages[bytes(data)]


def device_with(lengths, kernel="6.12", backing=16, pages=16):
    device = Zram(pages * 4096, compressor=Sized(lengths), kernel=kernel,
                  backing_dev_pages=backing)
    for n in lengths:
        assert device.write(n, page(n))
    return device


@pytest.mark.parametrize("kernel", ["6.1", "6.6", "6.18"])
def test_ltp_zram03(kernel):
    """512 MiB of 'a' but the device's last byte NUL: 131,071 same-filled
    pages and one lz4 page of 26 bytes (lz4.block, LZ4_compress_default);
    26 + 8 (handle) = 34 -> class 48; 48 divides 3 pages exactly (12288 =
    256 x 48): 100% used, the best for chains of 4 (6.1) and the least waste
    for chains of 8 (6.3+), so one zspage is 3 pages."""
    last = b"a" * 4095 + b"\0"
    length = len(lz4.block.compress(last, store_size=False))
    assert length == 26
    device = Zram(512 << 20, compressor="lz4", kernel=kernel)
    for index in range(131071):
        device.write(index, b"a" * 4096)
    device.write(131071, last)
    stat = device.mm_stat()
    assert stat["orig_data_size"] == 536_870_912
    assert stat["same_pages"] == 131_071
    assert stat["huge_pages"] == 0
    assert stat["compr_data_size"] == length
    assert stat["mem_used_total"] == 3 * 4096


def test_huge_and_huge_idle_selection():
    # 6.12: huge from 3625; index 4 same-filled
    device = device_with({0: 1000, 1: 3700, 2: 3700, 3: 500})
    device.write(4, bytes(4096))
    device.clock_ns = 10 * SECOND
    assert device.mark_idle("all") == 5               # 6.12 marks the same-filled slot too
    device.clock_ns = 20 * SECOND
    assert device.read(2) == page(2)                  # accessed: no longer idle
    assert device.writeback("huge_idle") == (1, None)
    assert device.bd_stat() == {"bd_count": 1, "bd_reads": 0, "bd_writes": 1}
    stat = device.mm_stat()
    assert (stat["huge_pages"], stat["huge_pages_since"]) == (1, 2)
    assert stat["compr_data_size"] == 1000 + 4096 + 500
    assert stat["orig_data_size"] == 5 * 4096         # written back, still stored
    assert device.writeback("huge") == (1, None)      # index 2, idle or not
    assert device.bd_stat() == {"bd_count": 2, "bd_reads": 0, "bd_writes": 2}
    assert device.mm_stat()["huge_pages"] == 0
    assert device.writeback("idle") == (2, None)      # 0 and 3; 4 is same-filled
    assert device.mm_stat()["mem_used_total"] == 0
    assert [device.read(n) for n in range(4)] == [page(n) for n in range(4)]
    assert device.bd_stat() == {"bd_count": 4, "bd_reads": 4, "bd_writes": 4}


def test_writeback_limit_runs_out_mid_batch():
    device = device_with({n: 1000 for n in range(5)})
    device.mark_idle("all")
    device.set_writeback_limit(3)
    assert device.writeback("idle") == (3, "EIO")     # 0, 1, 2; index 3 finds 0 left
    assert device.bd_wb_limit == 0
    assert device.writeback("idle") == (0, "EIO")
    device.set_writeback_limit(5)                     # budget for both, and one left
    assert device.writeback("idle") == (2, None)
    assert device.bd_wb_limit == 3
    assert sorted(slot.block for slot in device.slots.values()) == [1, 2, 3, 4, 5]


def test_budget_exactly_used_stops_at_the_next_index():
    device = device_with({n: 1000 for n in range(5)}, pages=8)
    device.mark_idle("all")
    device.set_writeback_limit(5)
    assert device.writeback("idle") == (5, "EIO")     # index 5 is still walked


def test_full_backing_device_is_enospc():
    device = device_with({n: 1000 for n in range(4)}, backing=3)   # blocks 1 and 2
    device.mark_idle("all")
    assert device.writeback("idle") == (2, "ENOSPC")
    assert device.bd_stat()["bd_count"] == 2
    device.discard(0)                                 # frees block 1
    assert device.bd_stat()["bd_count"] == 1
    assert device.writeback("idle") == (1, "ENOSPC")  # index 2 into block 1
    assert device.slots[2].block == 1


def test_largest_objects_first_from_6_13():
    lengths = {0: 100, 1: 2000, 2: 3700, 3: 2010, 4: 130}
    # buckets (size // 64): 1, 31, 64 (huge: 4096), 31, 2 -> 2, then 3 before 1
    device = device_with(lengths, kernel="6.18")
    device.mark_idle("all")
    device.set_writeback_limit(3)
    assert device.writeback("idle") == (3, "EIO")
    assert {n for n, slot in device.slots.items() if slot.block is not None} == {1, 2, 3}
    assert device.slots[2].block == 1 and device.slots[3].block == 2
    assert device.slots[1].block == 3
    older = device_with(lengths, kernel="6.12")
    older.mark_idle("all")
    older.set_writeback_limit(3)
    assert older.writeback("idle") == (3, "EIO")
    assert {n for n, slot in older.slots.items() if slot.block is not None} == {0, 1, 2}


@pytest.mark.parametrize("kernel, marks_same, clears", [("6.12", True, False),
                                                     ("6.18", False, True)])
def test_idle_ageing_with_the_clock(kernel, marks_same, clears):
    device = Zram(16 * 4096, compressor=Sized({0: 1000, 1: 1000}), kernel=kernel,
                  backing_dev_pages=4)
    device.write(0, page(0))                          # at 0 s
    device.write(2, bytes(4096))                      # same-filled, at 0 s
    device.clock_ns = 100 * SECOND
    device.write(1, page(1))
    device.clock_ns = 300 * SECOND
    assert device.mark_idle(300) == 0                 # cutoff 0 is not after ac_time 0
    assert device.mark_idle(250) == 1 + marks_same    # cutoff 50 s: index 0 (and 2)
    assert [device.slots[n].idle for n in range(3)] == [True, False, marks_same]
    assert device.mark_idle(199) == 2 + marks_same    # cutoff 101 s: index 1 too
    device.write(1, page(1))                          # a write clears IDLE
    assert not device.slots[1].idle
    assert device.mark_idle(301) == 0                 # cutoff -1 s: nothing is older
    assert device.slots[0].idle is not clears         # 6.13+ clears the flag it finds
    with pytest.raises(ConfigError, match="expected 'all' or an age"):
        device.mark_idle(-1)


def test_reads_after_writeback_come_from_the_device():
    device = device_with({0: 1000, 1: 3700}, kernel="6.12")
    assert device.writeback("page_index=1") == (1, None)
    assert swap_readpage(device, 1) == page(1)
    assert device.bd_stat() == {"bd_count": 1, "bd_reads": 1, "bd_writes": 1}
    assert device.io_stat()["failed_reads"] == 0
    device.write(1, page(1))                          # overwritten: block released
    assert device.bd_stat() == {"bd_count": 0, "bd_reads": 1, "bd_writes": 1}
    old = device_with({0: 1000}, kernel="6.1")       # ->rw_page fails, the bio reads
    assert old.writeback("page_index=0") == (1, None)
    assert swap_readpage(old, 0) == page(0)
    assert old.io_stat()["failed_reads"] == 1
    assert old.bd_stat() == {"bd_count": 1, "bd_reads": 1, "bd_writes": 1}


def test_zram_command_idle_by_event_index_then_writeback(tmp_path, capsys):
    """Events 1..4 are seconds 1..4: index 0 stored at 1 and loaded at 4,
    1 stored at 2, 2 at 3.  idle=1 at 4 s: cutoff 3 s, after index 1's 2 s
    only."""
    trace = write_trace(tmp_path / "t.trace", [("store", 0, 0), ("store", 1, 1),
                                               ("store", 2, 2), ("load", 0, 0)])
    assert main(["zram", str(trace), "-q", "--kernel", "6.12", "--backing-dev", "64K",
                 "--idle", "1", "--writeback", "idle", "--json"]) is None
    out = json.loads(capsys.readouterr().out)
    assert out["post_processing"] == {"idle_marked": 1, "written_back": 1,
                                      "clock": "event indices, one second each"}
    assert out["bd_stat"] == {"bd_count": 1, "bd_reads": 0, "bd_writes": 1}
    assert out["mm_stat"]["orig_data_size"] == 3 * 4096


@pytest.mark.parametrize("argv, message", [
    (["--writeback", "idle"], "writeback needs a backing device"),
    (["--kernel", "4.14", "--backing-dev", "1M"],
     "4.14's zram: no backing device writeback (that came in 5.0 "),
    (["--kernel", "6.1", "--backing-dev", "1M", "--writeback", "incompressible"],
     "no incompressible writeback (that came in 6.2 "),
    (["--backing-dev", "1M", "--writeback", "cold"], "writeback 'cold': expected"),
    (["--backing-dev", "1M", "--writeback", "page_index=4096", "--disksize", "16M"],
     "not an index of the device's 4096 pages"),
    (["--idle", "soon"], "--idle 'soon': expected 'all' or whole seconds"),
    (["--writeback-limit", "4"], "--writeback-limit needs --writeback"),
])
def test_impossible_actions_are_one_error_line(tmp_path, capsys, argv, message):
    trace = write_trace(tmp_path / "t.trace", [("store", 0, 0)])
    assert message in one_line_error(capsys, ["zram", str(trace), "-q"] + argv)
