"""zram's debug_stat, the zramctl view and the size report (zram_views.py).

Expected strings and numbers are worked out by hand from the sources'
rules: util-linux's lib/strutils.c size_to_human_string and libsmartcols'
column widths (calculate.c) and cell padding (print.c) for zramctl;
drivers/block/zram/zram_drv.c's debug_stat_show and zram_write_page's
mem_limit check (pages > limit_pages after zs_malloc) for the rest.
"""

import json
import random
from pathlib import Path

import pytest

from zswapsim.cli import main
from zswapsim.memory import PAGE_SIZE, Memory
from zswapsim.profiles import ZRAM_PROFILES
from zswapsim.trace import TraceWriter
from zswapsim.zram import Zram
from zswapsim.zram_replay import zram_replay
from zswapsim.zram_views import (ZRAMCTL_ALL, MemUsedTimeline, size_report,
                                 size_to_human_string, zramctl_row, zramctl_table)

TRACES = Path(__file__).resolve().parent.parent / "traces"
SMALL_TRACE = TRACES / "python-job.trace"
CHURN_TRACE = TRACES / "postgres-pgbench.trace"


def random_pages(count, seed=7):
    rng = random.Random(seed)
    return [rng.randbytes(PAGE_SIZE) for _ in range(count)]


# -- size_to_human_string ------------------------------------------------------

@pytest.mark.parametrize("nbytes, text", [
    (0, "0B"), (1, "1B"), (1023, "1023B"),         # below 1 KiB: "%d" then "B"
    (1024, "1K"), (4096, "4K"),                    # no remainder: no decimal point
    (1536, "1.5K"),                                # 512/1024 -> 500 thousandths -> .5
    (1075, "1K"),       # remainder 51: 51000/1024 = 49 -> (49 + 50)/100 = 0 tenths
    (1076, "1.1K"),     # remainder 52: 52000/1024 = 50 -> (50 + 50)/100 = 1 tenth
    (1048575, "1024K"),  # 1023 K + 1023: 999 thousandths -> 10 tenths, carried
    (1572864, "1.5M"), (1100000, "1M"),            # 51424 B over 1 MiB: 49 -> 0
    (123456789, "117.7M"),  # 117 MiB + 773397 B: 737 thousandths -> 7 tenths
    (16 << 30, "16G"), (3 << 40, "3T"),
])
def test_size_to_human_string_follows_util_linux(nbytes, text):
    assert size_to_human_string(nbytes) == text


# -- the zramctl table ---------------------------------------------------------

def device_with(kernel, random_count=3, zero_count=2, disksize=1536 << 20):
    """Random pages are stored whole (huge: one PAGE_SIZE object, one pool
    page each); zero pages are same-filled and take none."""
    device = Zram(disksize, kernel=kernel)
    pages = random_pages(random_count) + [bytes(PAGE_SIZE)] * zero_count
    for index, page in enumerate(pages):
        assert device.write(index, page)
    return device


def test_zramctl_default_table_for_6_1():
    device = device_with("6.1")
    # DATA 5 pages = 20480 B = 20K, COMPR = TOTAL = 3 x 4096 = 12K,
    # DISKSIZE 1536 MiB = 1.5G; STREAMS num_online_cpus() = 1.
    # Widths: NAME 10 (its cell), ALGORITHM 9 and DISKSIZE 8 (headers),
    # DATA 4 (cell 3 < header 4: the header, not the hint), COMPR and TOTAL
    # 5, STREAMS 7; MOUNTPOINT last and left-aligned, unpadded.
    assert zramctl_table([zramctl_row(device)]) == [
        "NAME       ALGORITHM DISKSIZE DATA COMPR TOTAL STREAMS MOUNTPOINT",
        "/dev/zram0 lz4           1.5G  20K   12K   12K       1 [SWAP]",
    ]


def test_zramctl_all_columns_and_bytes():
    device = device_with("6.1")
    row = zramctl_row(device, online_cpus=4)
    assert {name: row[name] for name in ("ZERO-PAGES", "MEM-LIMIT", "MEM-USED", "MIGRATED",
                                         "COMP-RATIO", "STREAMS")} == {
        "ZERO-PAGES": "2", "MEM-LIMIT": "0B", "MEM-USED": "12K", "MIGRATED": "0B",
        "COMP-RATIO": "1.6667", "STREAMS": "4"}      # 20480 / 12288 = 1.66667
    raw = zramctl_row(device, in_bytes=True, swap=False)
    assert (raw["DISKSIZE"], raw["DATA"], raw["COMPR"], raw["TOTAL"], raw["MIGRATED"],
            raw["MOUNTPOINT"]) == (str(1536 << 20), "20480", "12288", "12288", "0", None)
    header, line = zramctl_table([row], ZRAMCTL_ALL)
    # ZERO-PAGES keeps its 10-wide header; MEM-USED "12K" right in 8.
    assert header == ("NAME       DISKSIZE DATA COMPR ALGORITHM STREAMS ZERO-PAGES TOTAL "
                      "MEM-LIMIT MEM-USED MIGRATED COMP-RATIO MOUNTPOINT")
    assert line == ("/dev/zram0     1.5G  20K   12K lz4             4          2   12K "
                    "       0B      12K       0B     1.6667 [SWAP]")


def test_a_narrow_size_column_widens_to_its_hint():
    device = device_with("6.1", random_count=384, zero_count=0)
    # 384 pages = 1.5M: DATA's cell (4) is not narrower than its header (4),
    # so the width hint 5 applies: " DATA" and " 1.5M".
    header, line = zramctl_table([zramctl_row(device)])
    assert header.split("ALGORITHM ")[1].startswith("DISKSIZE  DATA COMPR TOTAL")
    assert "  1.5G  1.5M  1.5M  1.5M       1 [SWAP]" in line


def test_zramctl_under_6_18_has_no_streams_and_an_empty_device_ratio():
    device = Zram(1 << 30, kernel="6.18")
    row = zramctl_row(device)
    assert row["STREAMS"] is None and row["COMP-RATIO"] == "-nan"     # 0.0 / 0.0
    assert zramctl_table([row])[1] == ("/dev/zram0 lz4             1G   0B    0B    0B"
                                       "         [SWAP]")
    device.write(0, b"\x01" * PAGE_SIZE)        # same-filled: data, no pool page
    assert zramctl_row(device)["COMP-RATIO"] == "inf"


# -- debug_stat ----------------------------------------------------------------

# debug_stat_show: 4.14 prints "version: 1\n%8llu\n" (writestall); 6.1-6.12
# "version: 1\n%8llu %8llu\n" (writestall, miss_free); 6.15 on "0 %8llu".
DEBUG_STAT_FIELDS = {"4.14": ("writestall",), "6.1": ("writestall", "miss_free"),
                     "6.6": ("writestall", "miss_free"), "6.12": ("writestall", "miss_free"),
                     "6.18": ("writestall", "miss_free")}
WRITESTALL_COUNTED = {"4.14": True, "6.1": True, "6.6": True, "6.12": True, "6.18": False}


@pytest.mark.parametrize("kernel", sorted(ZRAM_PROFILES))
def test_debug_stat_fields_per_kernel(kernel):
    device = Zram(1 << 20, kernel=kernel, memory=Memory(totalram_pages=1))
    first, second = random_pages(2)
    assert device.write(0, first)           # one huge object: the only page of RAM
    assert not device.write(1, second)      # zs_malloc finds no page: both stages fail
    assert tuple(device.debug_stat()) == ("version",) + DEBUG_STAT_FIELDS[kernel]
    assert device.debug_stat()["version"] == 1
    assert device.debug_stat()["writestall"] == int(WRITESTALL_COUNTED[kernel])
    assert device.debug_stat().get("miss_free", 0) == 0
    assert device.io_stat()["failed_writes"] == 1


def test_a_mem_limit_refusal_is_no_writestall():
    device = Zram(1 << 20, kernel="6.1", mem_limit=PAGE_SIZE)
    first, second = random_pages(2)
    assert device.write(0, first) and not device.write(1, second)
    assert device.debug_stat()["writestall"] == 0 and device.io_stat()["failed_writes"] == 1


# -- the size report -----------------------------------------------------------

def replay(trace, kernel="6.1", mem_limit=0, max_points=2000):
    device = Zram(16 << 30, kernel=kernel, mem_limit=mem_limit)
    timeline = MemUsedTimeline(device, max_points)
    zram_replay(device, trace, sample=timeline)
    return device, timeline


@pytest.mark.parametrize("trace, max_points", [(SMALL_TRACE, 2000), (CHURN_TRACE, 2000),
                                               (CHURN_TRACE, 8)])
def test_the_peak_is_the_timelines_highest_point_and_mem_used_max(trace, max_points):
    device, timeline = replay(trace, max_points=max_points)
    report = size_report(device, timeline)
    assert len(report["timeline"]) <= max_points
    assert report["peak_bytes"] == max(b for _, b in report["timeline"]) \
        == device.mm_stat()["mem_used_max"]
    assert report["end_bytes"] == device.mm_stat()["mem_used_total"]
    assert report["timeline"][-1][0] == report["events"]


def overwrite_trace(path):
    """Offset 0 stored twice with different incompressible pages: the second
    write allocates its object (a second pool page) before the first is
    freed, so the pool peaks at 2 pages inside one event and ends at 1."""
    first, second = random_pages(2)
    with TraceWriter(path) as w:
        w.store(0, 0, first)
        w.store(0, 0, second)
        w.load(0, 0)
    return path


def test_a_peak_inside_one_event_is_on_the_timeline(tmp_path):
    device, timeline = replay(overwrite_trace(tmp_path / "overwrite.trace"))
    report = size_report(device, timeline)
    assert report["timeline"] == [[1, PAGE_SIZE], [2, 2 * PAGE_SIZE], [3, PAGE_SIZE]]
    assert report["peak_bytes"] == 2 * PAGE_SIZE and report["peak_event"] == 2
    assert report["end_bytes"] == PAGE_SIZE


@pytest.mark.parametrize("trace", [SMALL_TRACE, CHURN_TRACE])
def test_the_mem_limit_answer_holds_in_replays(trace):
    device, timeline = replay(trace)
    report = size_report(device, timeline)
    assert device.io_stat()["failed_writes"] == 0
    answer = report["mem_limit_no_failed_write"]
    assert answer == device.mm_stat()["mem_used_max"]
    assert report["mem_limit_failing"] == answer - PAGE_SIZE
    for limit, fails in ((answer, False), (answer + PAGE_SIZE, False),
                         (answer - PAGE_SIZE + 1, False),     # PAGE_ALIGN: still the peak
                         (answer - PAGE_SIZE, True)):
        limited, _ = replay(trace, mem_limit=limit)
        assert (limited.io_stat()["failed_writes"] > 0) is fails, limit


# -- the CLI -------------------------------------------------------------------

def run_json(capsys, argv):
    main(argv + ["--json", "-q"])
    return json.loads(capsys.readouterr().out)


def test_json_holds_debug_stat_zramctl_and_the_size_report(capsys):
    out = run_json(capsys, ["zram", str(CHURN_TRACE), "--zramctl", "--size-report",
                            "--backing-dev", "64M", "--idle", "600", "--writeback", "idle"])
    assert tuple(out) == ("mm_stat", "io_stat", "bd_stat", "debug_stat", "swap",
                          "post_processing", "zramctl", "size_report")
    assert out["debug_stat"] == {"version": 1, "writestall": 0, "miss_free": 0}
    assert tuple(out["zramctl"]) == ZRAMCTL_ALL
    report = out["size_report"]
    assert set(report) == {"events", "events_per_point", "timeline", "peak_bytes",
                           "peak_event", "end_bytes", "mem_limit_no_failed_write",
                           "mem_limit_failing", "failed_writes", "baseline", "saved"}
    base, _ = replay(CHURN_TRACE)
    assert report["baseline"]["end_bytes"] == base.mm_stat()["mem_used_total"]
    assert report["saved"] == {
        "end_bytes": base.mm_stat()["mem_used_total"] - out["mm_stat"]["mem_used_total"],
        "peak_bytes": 0}                # writeback runs after the last event
    assert report["saved"]["end_bytes"] > 0
    assert report["peak_bytes"] == base.mm_stat()["mem_used_max"]


def test_the_text_views(capsys):
    main(["zram", str(SMALL_TRACE), "-q", "--zramctl", "--size-report"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "ALGORITHM", "DISKSIZE", "DATA", "COMPR", "TOTAL",
                                "STREAMS", "MOUNTPOINT"]
    assert lines[1].startswith("/dev/zram0 lz4 ") and lines[1].endswith(" 1 [SWAP]")
    assert lines[2].startswith("size report: mem_used_total over 4631 events")


def test_the_plot_is_a_png(tmp_path, capsys):
    plot = tmp_path / "size.png"
    main(["zram", str(SMALL_TRACE), "-q", "--size-report", "--plot", str(plot)])
    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


@pytest.mark.parametrize("extra, fragment", [
    (["--plot", "x.png"], "--plot needs --size-report"),
    (["--bytes"], "--output-all and --bytes need --zramctl"),
    (["--output-all"], "--output-all and --bytes need --zramctl"),
    (["--size-report", "--mem-limit", "1M"], "drop --mem-limit"),
])
def test_bad_view_options_are_one_line(tmp_path, capsys, extra, fragment, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["zram", str(SMALL_TRACE), "-q"] + extra)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], lines
    assert not (tmp_path / "x.png").exists()


def test_size_report_refuses_a_raw_dump(tmp_path, capsys):
    dump = tmp_path / "dump.raw"
    dump.write_bytes(b"".join(random_pages(2)))
    with pytest.raises(SystemExit) as exit_info:
        main(["zram", "--raw", str(dump), "--size-report"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--size-report needs a TRACE" in lines[0], lines


def test_each_post_processing_step_saves_what_leaving_it_out_costs(capsys):
    """With writeback and recompression both given, the size report says
    what each saves beside the other: the end and peak of a separate run
    without that step, less this run's (the separate runs are made here
    through the command line, not by the report)."""
    trace = TRACES / "python-heap.trace"
    common = ["zram", str(trace), "--kernel", "6.18", "--backing-dev", "16M", "--idle", "all",
              "--recomp-algorithm", "algo=zstd priority=1", "-q", "--json"]
    steps = {"writeback": ["--writeback", "idle", "--writeback-limit", "512"],
             "recompress": ["--recompress", "type=idle max_pages=500"]}

    def mm_stat(*args):
        try:
            main(common + list(args))
        except SystemExit as exc:
            assert exc.code in (0, None)
        return json.loads(capsys.readouterr().out)

    both = mm_stat(*steps["writeback"], *steps["recompress"], "--size-report")
    saved_by = both["size_report"]["saved_by"]
    assert set(saved_by) == {"writeback", "recompress"}
    for kind, args in steps.items():
        other, = (steps[name] for name in steps if name != kind)
        alone = mm_stat(*other)["mm_stat"]
        assert saved_by[kind] == {
            "end_bytes": alone["mem_used_total"] - both["mm_stat"]["mem_used_total"],
            "peak_bytes": alone["mem_used_max"] - both["mm_stat"]["mem_used_max"]}
    # writeback frees zsmalloc objects of whole pages' worth; recompression
    # only shrinks objects inside zspages, which without compaction may cost
    assert saved_by["writeback"]["end_bytes"] > 0
