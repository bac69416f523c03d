"""zram against the real Linux 6.1 kernel's mm_stat on the fidelity sets,
and its write path rules worked out by hand.

The swap layer over zram (zram_replay) is checked on small traces whose
counts follow from the kernel source: a write zram refuses returns before
the slot's old object is freed (__zram_bvec_write), counts failed_writes
(zram_bvec_rw) or, past the device, invalid_io (valid_io_request); 6.1 and
4.14 swap out through ->rw_page first and resubmit a failure as a bio
(__swap_writepage), so each failed swap-out counts twice there and once in
6.6; end_swap_bio_write redirties the page, which stays in RAM.

Each test that uses only the device's public API runs in both engines
(conftest's zram_engine): zram.Zram and its compiled twin NativeZram."""

import json
from pathlib import Path

import pytest

from kernel_data import SETS, load_set
from zswapsim.cli import main
from zswapsim.compress import Compressor, GivenLengths
from zswapsim.errors import ConfigError, TraceError
from zswapsim.replay import VerifyError
from zswapsim.trace import LOAD, TraceReader, TraceWriter
from zswapsim.trace.format import NO_IMAGE
from zswapsim.zram import MM_STAT, Zram
from zswapsim.zram_replay import zram_replay

TRACES = Path(__file__).resolve().parents[1] / "traces"


def write_all(device, pages):
    for index, page in enumerate(pages):
        assert device.write(index, page)


@pytest.mark.parametrize("name", SETS)
def test_mm_stat_equals_linux_6_1_for_every_compressor(zram_engine, name):
    """The kernel's own per-page lengths through our write path and
    zsmalloc: all nine mm_stat fields, before and after compaction."""
    kernel, pages = load_set(name)
    assert len(kernel["zram"]) == 6
    for alg, expected in kernel["zram"].items():
        device = zram_engine(expected["disksize"],
                             compressor=GivenLengths(alg, pages, expected["per_page_compr_size"]))
        write_all(device, pages)
        assert device.mm_stat() == expected["mm_stat"], alg
        device.compact()
        assert device.mm_stat() == expected["mm_stat_after_compact"], alg


@pytest.mark.parametrize("name", SETS)
def test_deflate_end_to_end_is_the_kernels(zram_engine, name):
    kernel, pages = load_set(name)
    expected = kernel["zram"]["deflate"]
    device = zram_engine(expected["disksize"], compressor="deflate")
    write_all(device, pages)
    assert device.mm_stat() == expected["mm_stat"]
    assert all(device.read(i) == page for i, page in enumerate(pages[:300]))


class Fixed(Compressor):
    """Output of a chosen length; the page itself comes back on decompress."""

    name = "fixed"

    def __init__(self, length):
        self.length = length
        self.pages = {}

    def compress(self, page):
        data = page[:16] + bytes(self.length - 16)
        self.pages[data] = page
        return data

    def decompress(self, data, size=4096):
        return self.pages[bytes(data)]


def page(n):
    return n.to_bytes(8, "little") + bytes(range(256)) * 15 + bytes(248)


@pytest.mark.parametrize("kernel, small, huge", [("6.1", 3256, 3257), ("6.6", 3624, 3625),
                                                 ("4.14", 3072, 3073)])
def test_huge_threshold_per_kernel(zram_engine, kernel, small, huge):
    device = zram_engine(1 << 20, compressor=Fixed(small), kernel=kernel)
    device.write(0, page(0))
    device.compressor.compressor.length = huge
    device.write(1, page(1))
    stat = device.mm_stat()
    # 4.17+: huge from huge_class_size on; before: above max_zpage_size 3072.
    assert (stat["huge_pages"], stat["compr_data_size"]) == (1, small + 4096)
    assert device.read(1) == page(1) and device.read(0) == page(0)


def test_rewrite_discard_and_reads(zram_engine):
    device = zram_engine(16 * 4096, compressor=Fixed(1000))
    assert device.read(3) == bytes(4096)                      # never written: zeros
    device.write(3, page(1))
    device.write(3, bytes(4096))                             # rewrite: old object freed
    stat = device.mm_stat()
    assert (stat["same_pages"], stat["compr_data_size"], stat["mem_used_total"],
            stat["orig_data_size"]) == (1, 0, 0, 4096)
    assert stat["mem_used_max"] == 4096                      # one page while it was held
    device.discard(3)
    assert device.mm_stat()["same_pages"] == 0 and device.io_stat()["notify_free"] == 1
    assert device.write(16, page(2)) is False                # past disksize
    assert device.read(-1) is None and device.io_stat()["invalid_io"] == 2


def test_mem_limit_is_checked_after_allocation(zram_engine):
    # 1000 + 8 -> class 1008: zsmalloc packs 4 per page (6.1 chain rule: 1 page).
    device = zram_engine(64 * 4096, compressor=Fixed(1000), mem_limit=4096)
    assert all(device.write(i, page(i)) for i in range(4))
    assert device.write(4, page(4)) is False                 # a second page: over the limit
    stat, io = device.mm_stat(), device.io_stat()
    assert io["failed_writes"] == 1 and stat["mem_used_total"] == 4096
    assert stat["mem_used_max"] == 2 * 4096 and stat["mem_limit"] == 4096
    # Rewriting a slot also needs room for the new object before the old goes.
    assert device.write(0, page(9)) is False and device.read(0) == page(0)


def test_compaction_after_frees(zram_engine):
    device = zram_engine(64 * 4096, compressor=Fixed(3248))   # 3256: class 3264, 5 per 4 pages
    for i in range(10):
        device.write(i, page(i))
    for i in (0, 1, 2, 5, 6):
        device.discard(i)
    assert device.mm_stat()["mem_used_total"] == 8 * 4096
    assert device.compact() == 4
    stat = device.mm_stat()
    assert (stat["mem_used_total"], stat["pages_compacted"]) == (4 * 4096, 4)
    assert all(device.read(i) == page(i) for i in (3, 4, 7, 8, 9))


def test_other_allocators_and_their_limits(zram_engine):
    device = zram_engine(8 * 4096, compressor=Fixed(3300), allocator="zbud")
    assert device.write(0, page(0)) is False                 # huge: 4096 B > zbud's 3968
    assert device.io_stat()["failed_writes"] == 1
    with pytest.raises(ConfigError):
        zram_engine(4096, kernel="5.0")


def test_z3fold_holds_a_huge_page():
    """(z3fold has no compiled twin yet: the Python engine's alone.)"""
    device = Zram(8 * 4096, compressor=Fixed(3300), allocator="z3fold")
    assert device.write(0, page(0)) and device.mm_stat()["huge_pages"] == 1


def test_lz4_is_the_kernels_and_lz4_upstream_is_not(zram_engine):
    """Linux 6.1's zram with lz4 on mix2000: our lz4 stores exactly the
    kernel's compr_data_size; userspace liblz4 (a 5-byte hash, the n - 11
    end rule) about 1 % more."""
    kernel, pages = load_set("mix2000")
    theirs = kernel["zram"]["lz4"]["compr_data_size"]
    sizes = {}
    for name in ("lz4", "lz4-upstream"):
        device = zram_engine(kernel["zram"]["lz4"]["disksize"], compressor=name)
        write_all(device, pages)
        sizes[name] = device.mm_stat()["compr_data_size"]
        assert list(device.mm_stat()) == list(MM_STAT)
    assert sizes["lz4"] == theirs
    assert 0 < (sizes["lz4-upstream"] - theirs) / theirs < 0.02


class Lengths(Fixed):
    """Fixed, with a length per page number (page(n) starts with n)."""

    def __init__(self, lengths):
        super().__init__(0)
        self.lengths = lengths

    def compress(self, page):
        self.length = self.lengths[int.from_bytes(page[:8], "little")]
        return super().compress(page)


def write_trace(path, script):
    """A trace from (op, offset, page number) steps; loads name what was stored."""
    with TraceWriter(path) as w:
        for op, offset, n in script:
            if op == "store":
                w.store(0, offset, page(n))
            elif op == "load":
                w.load(0, offset)
            else:
                w.invalidate_page(0, offset)
    return path


def mm(stat):
    return tuple(stat[name] for name in MM_STAT)


@pytest.mark.parametrize("kernel, tries", [("6.1", 2), ("4.14", 2), ("6.6", 1)])
def test_a_refused_write_leaves_the_page_in_ram_and_zram_the_old_one(zram_engine, tmp_path,
                                                                    kernel, tries):
    # 2040 + the 8-byte handle = class 2048: two objects fill one page, in
    # every preset (6.1's rule takes the first chain with no waste, 6.3's
    # returns 1 for a power of two).  mem_limit is that one page: a third
    # object needs a second zspage and is refused.
    trace = write_trace(tmp_path / "t.trace", [
        ("store", 0, 0), ("store", 1, 1),
        ("store", 2, 2),             # refused: resident
        ("load", 2, 2),              # from RAM
        ("store", 0, 10),            # rewrite refused: zram keeps page 0, RAM holds page 10
        ("load", 0, 10),             # from RAM: page 10, not zram's stale page 0
        ("invalidate", 1, 1),        # frees one object
        ("store", 2, 2),             # written again, into the freed object
        ("load", 2, 2),              # from zram
    ])
    device = zram_engine(16 * 4096, compressor=Fixed(2040), mem_limit=4096, kernel=kernel)
    swap = zram_replay(device, trace)
    assert swap == {"live_pages": 2, "resident_pages": 1}          # offsets 0 and 2; 0 in RAM
    # Stored: stale page 0 and page 2, 2040 bytes each, in one page; the
    # refused allocations made two pages for a moment.
    assert mm(device.mm_stat()) == (2 * 4096, 2 * 2040, 4096, 4096, 2 * 4096, 0, 0, 0, 0)
    assert device.io_stat() == {"failed_reads": 0, "failed_writes": 2 * tries,
                                "invalid_io": 0, "notify_free": 1}
    assert device.read(0) == page(0) and device.read(2) == page(2)


def test_zbud_under_zram_cannot_hold_a_huge_page(zram_engine, tmp_path):
    # Page 1 compresses to 3300 >= huge_class_size 3257: stored whole, 4096
    # bytes, more than zbud's 3968.  Both tries fail, twice (6.1's rw_page).
    trace = write_trace(tmp_path / "t.trace", [
        ("store", 0, 0), ("store", 1, 1), ("load", 1, 1), ("load", 0, 0),
        ("invalidate", 1, 1), ("store", 1, 1), ("load", 1, 1)])
    device = zram_engine(16 * 4096, compressor=Lengths({0: 1000, 1: 3300}), allocator="zbud")
    assert zram_replay(device, trace) == {"live_pages": 2, "resident_pages": 1}
    assert mm(device.mm_stat()) == (4096, 1000, 4096, 0, 4096, 0, 0, 0, 0)
    assert device.io_stat() == {"failed_reads": 0, "failed_writes": 4,
                                "invalid_io": 0, "notify_free": 1}


# 6.1 counts each request past the device in invalid_io (valid_io_request),
# twice: ->rw_page fails and the swap layer retries with a bio.  From 6.4
# ("zram: remove valid_io_request") the block layer refuses such I/O before
# zram sees it, and io_stat_show prints a literal 0.
@pytest.mark.parametrize("kernel, invalid_io", [("6.1", 2 * 2), ("6.6", 0)])
def test_an_index_past_the_device_is_an_io_error_not_a_wrong_read(zram_engine, tmp_path, kernel,
                                                                 invalid_io):
    far = (1 << 50) - 1                                             # the trace format's last
    trace = write_trace(tmp_path / "t.trace", [
        ("store", 0, 0), ("store", 2, 1), ("store", far, 2), ("store", 1, 3),
        ("load", 2, 1), ("load", far, 2), ("load", 0, 0), ("load", 1, 3)])
    device = zram_engine(2 * 4096, compressor=Fixed(1000), kernel=kernel)     # indices 0, 1
    assert zram_replay(device, trace) == {"live_pages": 4, "resident_pages": 2}
    # Two 1000-byte objects (class 1008) in one page; nothing refused by zram
    # itself, so failed_writes stays 0; the two requests past the device are
    # refused (counted in invalid_io where the kernel counts them).
    assert mm(device.mm_stat()) == (2 * 4096, 2000, 4096, 0, 4096, 0, 0, 0, 0)
    assert device.io_stat() == {"failed_reads": 0, "failed_writes": 0,
                                "invalid_io": invalid_io, "notify_free": 0}


def test_shipped_traces_under_a_tight_mem_limit_verify(zram_engine):
    """The runs that used to stop with VERIFY FAILED: every live page of the
    trace, counted from its events alone, is in zram or in RAM."""
    path = TRACES / "postgres-pgbench.trace"
    live = set()
    for op, _, offset, _, _ in TraceReader(path):
        if op == 1:
            live.add(offset)
        elif op == 3:
            live.discard(offset)
    device = zram_engine(16 << 30, mem_limit=1 << 20)
    swap = zram_replay(device, path)
    stat, io = device.mm_stat(), device.io_stat()
    assert swap["live_pages"] == len(live) and 0 < swap["resident_pages"] < len(live)
    assert stat["mem_used_total"] <= 1 << 20 and io["failed_writes"] % 2 == 0
    # Each resident page failed at least its last swap-out, twice.
    assert io["failed_writes"] >= 2 * swap["resident_pages"]
    assert stat["orig_data_size"] >= (len(live) - swap["resident_pages"]) * 4096


def inconsistent_traces(tmp_path):
    """(trace, message) pairs: a valid file whose loads contradict its stores."""
    cases = []
    for name, offset, image, what in [
            ("other", 0, 1, "names another page than the one stored there"),
            ("never", 7, 0, "names a page, but nothing is stored there"),
            ("none", 0, NO_IMAGE, "names no page, but one is stored there")]:
        path = tmp_path / f"{name}.trace"
        with TraceWriter(path) as w:
            w.store(0, 0, page(0))                                  # image 0
            w.store(0, 1, page(1))                                  # image 1
            w.load(0, 1)
            if image != NO_IMAGE:
                w._last_use[image] = w._n_events                    # keep the image alive
            w._append(LOAD, 0, image, offset, 0)                    # event 4, crafted
        cases.append((path, f"trace inconsistent at event 4: load of type 0 offset "
                            f"{offset} {what}"))
    return cases


def test_an_inconsistent_trace_is_the_traces_fault(zram_engine, tmp_path, capsys):
    for path, message in inconsistent_traces(tmp_path):
        with pytest.raises(TraceError) as error:
            zram_replay(zram_engine(1 << 20), path)
        assert str(error.value) == message
        with pytest.raises(SystemExit) as status:
            main(["zram", str(path), "-q"])
        assert status.value.code == 2
        assert capsys.readouterr().err == f"zswapsim: error: {message}\n"


def test_zram_command_reports_the_swap_layer_and_refuses_endless_input(zram_engine, capsys):
    main(["zram", str(TRACES / "swapcache-churn.trace"), "--allocator", "zbud", "--json", "-q"])
    stats = json.loads(capsys.readouterr().out)
    # Huge pages cannot go into zbud: each refused twice (6.1), kept in RAM.
    assert stats["io_stat"]["failed_writes"] >= 2 * stats["swap"]["resident_pages"] > 0
    assert stats["mm_stat"]["huge_pages"] == 0
    with pytest.raises(SystemExit) as status:
        main(["zram", "--raw", "/dev/zero"])
    assert status.value.code == 2
    assert capsys.readouterr().err.startswith("zswapsim: error: /dev/zero: not a regular file")


def test_a_wrong_zram_read_is_still_a_verify_failure(tmp_path, monkeypatch):
    """The trace is consistent, so a wrong page is the simulator's fault."""
    trace = write_trace(tmp_path / "t.trace", [("store", 0, 0), ("load", 0, 0)])
    monkeypatch.setattr(Zram, "peek", lambda self, index: page(99))     # what read() gives
    with pytest.raises(VerifyError, match="event 2: zram read of index 0"):
        zram_replay(Zram(1 << 20, compressor=Fixed(1000)), trace)
    trace = write_trace(tmp_path / "t.trace", [("store", 0, 0)])
    with pytest.raises(VerifyError, match="page corrupted: zram index 0"):
        zram_replay(Zram(1 << 20, compressor=Fixed(1000)), trace)
