"""The command line as a user meets it: real subprocesses, exit codes, and
one clear line (never a traceback) for every mistake a user can make."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kernel_data import FIDELITY, set_path
from zswapsim.fidelity import pages_path, read_kernel_json
from zswapsim.trace import TraceReader, TraceWriter
from zswapsim.zswap import DEBUGFS_COUNTERS

SHIPPED = str(Path(__file__).resolve().parents[1] / "traces" / "python-heap.trace")


def run(*args):
    return subprocess.run([sys.executable, "-m", "zswapsim", *args],
                          capture_output=True, text=True, timeout=300)


def assert_one_line_error(result, fragment, status=2):
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("zswapsim: error: ") and fragment in lines[0], lines[0]


def test_replay_json_has_the_kernel_counter_names():
    result = run("replay", SHIPPED, "--ram", "32M", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for name in DEBUGFS_COUNTERS:
        assert isinstance(data[name], int), name
    # 32M of RAM = 8192 pages; 20 % = 1638 pages; the 6.1 pool stops there.
    assert data["pool_limit_pages"] == 1638
    assert data["pool_pages"] <= 1638 + 1 and data["pool_limit_hit"] >= 1
    assert data["stored_pages"] + data["swap_used_slots"] == data["live_pages"] == 5127


def test_replay_table_is_readable():
    result = run("replay", SHIPPED)
    assert result.returncode == 0, result.stderr
    assert "pool_total_size" in result.stdout and "verified:" in result.stdout


@pytest.mark.parametrize("backend", ["zbud", "z3fold", "zsmalloc", "xvmalloc"])
@pytest.mark.parametrize("kernel", ["6.1", "6.3"])
def test_every_backend_replays_and_loses_nothing(backend, kernel):
    result = run("replay", SHIPPED, "--ram", "32M", "--backend", backend, "--kernel", kernel,
                 "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["backend"] == backend and data["pool_limit_hit"] >= 1
    assert data["stored_pages"] + data["swap_used_slots"] == data["live_pages"] == 5127
    # 6.1's zsmalloc has no shrink: it never writes back; every other pool does.
    assert (data["written_back_pages"] == 0) == (backend == "zsmalloc" and kernel == "6.1")


def test_classes_table_adds_up_to_the_pool():
    result = run("replay", SHIPPED, "--backend", "zsmalloc", "--classes", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["classes"]) == 69
    assert sum(row["pages_used"] for row in data["classes"]) == data["pool_pages"]
    assert sum(row["obj_used"] for row in data["classes"]) == \
        data["stored_pages"] - data["same_filled_pages"]
    text = run("replay", SHIPPED, "--backend", "zsmalloc", "--chain-size", "8", "--classes")
    assert text.returncode == 0, text.stderr
    assert "pages_per_zspage" in text.stdout and "\n Total" in text.stdout


@pytest.mark.parametrize("args, fragment", [
    (["replay", "/nonexistent.trace"], "No such file"),
    (["replay", SHIPPED, "--backend", "zbudd"], "unknown backend 'zbudd'"),
    (["replay", SHIPPED, "--compressor", "lzma"], "unknown compressor 'lzma'"),
    (["replay", SHIPPED, "--max-pool-percent", "150"], "max_pool_percent 150 is outside 0..100"),
    (["replay", SHIPPED, "--accept-threshold-percent", "-1"],
     "accept_threshold_percent -1 is outside 0..100"),
    (["replay", SHIPPED, "--retries", "-1"], "retries -1 is outside 0..4294967295"),
    (["replay", SHIPPED, "--ram", "0"], "smaller than one 4096-byte page"),
    (["replay", SHIPPED, "--ram", "lots"], "cannot read size 'lots'"),
    (["replay", SHIPPED, "--kernel", "5.0"], "--kernel"),
    (["replay", SHIPPED, "--classes"], "--classes needs a backend with size classes"),
    (["replay", SHIPPED, "--fault-alloc", "2"], "alloc fault rate 2.0 is outside 0..1"),
    (["replay", SHIPPED, "--swap-size", "big"], "cannot read size 'big'"),
    (["trace", "record", "-o", "/tmp/never.rec"], "give either --pid PID or -- COMMAND"),
    (["trace", "record", "--pid", "999999999", "-o", "/tmp/never.rec"], "999999999"),
    (["replay", SHIPPED, "--chain-size", "8"], "zbud takes no pool options, not chain_size"),
    (["replay", SHIPPED, "--backend", "zsmalloc", "--chain-size", "3"],
     "zsmalloc chain_size 3 is outside 4..16"),
    (["replay"], "Missing argument"),
    (["frobnicate"], "No such command"),
])
def test_bad_options(args, fragment):
    assert_one_line_error(run(*args), fragment)


def test_corrupt_and_truncated_traces(tmp_path):
    data = Path(SHIPPED).read_bytes()
    truncated = tmp_path / "truncated.trace"
    truncated.write_bytes(data[:len(data) // 2])
    assert_one_line_error(run("replay", str(truncated)), "at byte")
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF
    corrupt = tmp_path / "corrupt.trace"
    corrupt.write_bytes(bytes(flipped))
    assert_one_line_error(run("replay", str(corrupt)), "at byte")
    not_a_trace = tmp_path / "text.trace"
    not_a_trace.write_text("hello\n")
    assert_one_line_error(run("replay", str(not_a_trace)), "at byte 0")


def test_wrong_page_size(tmp_path):
    path = tmp_path / "big-pages.trace"
    with TraceWriter(path, page_size=16384) as w:
        w.store(0, 0, bytes(16384))
    assert_one_line_error(run("replay", str(path)), "page size 16384, expected 4096")


def test_import_then_replay_and_info(tmp_path):
    raw = tmp_path / "dump.raw"
    pages = [bytes([i]) * 4096 for i in range(3)] + [bytes(range(256)) * 16]
    raw.write_bytes(b"".join(pages))
    trace = tmp_path / "dump.trace"
    result = run("trace", "import", str(raw), "-o", str(trace))
    assert result.returncode == 0 and "4 pages" in result.stdout
    info = json.loads(run("trace", "info", str(trace), "--json").stdout)
    assert info["events"]["store"] == 4 and info["same_filled_pages"] == 3
    replayed = json.loads(run("replay", str(trace), "--json").stdout)
    assert replayed["same_filled_pages"] == 3 and replayed["stored_pages"] == 4
    bad = tmp_path / "short.raw"
    bad.write_bytes(bytes(5000))
    assert_one_line_error(run("trace", "import", str(bad), "-o", str(tmp_path / "x.trace")),
                          "904 bytes left over")


def test_verify_failure_exits_3(tmp_path, monkeypatch, capsys, replay_engine):
    """A load that gives other bytes (here every decompression gives zeros,
    with nothing cached, so every load decompresses) is one line, exit 3."""
    from zswapsim import compress
    from zswapsim.cli import main
    path = tmp_path / "t.trace"
    with TraceWriter(path) as w:
        w.store(0, 7, bytes(range(256)) * 16)
        w.load(0, 7)
    monkeypatch.setattr(compress.KernelLz4, "decompress", lambda self, data, size=4096:
                        bytes(size))
    monkeypatch.setattr(compress, "native_codec", lambda compressor: None)
    for cache_class in (compress.CompressionCache, compress.NativeCompressionCache):
        monkeypatch.setattr(cache_class.__init__, "__defaults__", (0,))
    with pytest.raises(SystemExit) as exc:
        main(["replay", str(path)])
    assert exc.value.code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "VERIFY FAILED" in err[0] and "offset 7" in err[0]


def test_info_prints_the_size_histogram_and_plots_it(tmp_path):
    png = tmp_path / "sizes.png"
    result = run("trace", "info", SHIPPED, "--plot", str(png))
    assert result.returncode == 0, result.stderr
    assert "mean: lz4 " in result.stdout and "4096+" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(run("trace", "info", SHIPPED, "--json").stdout)
    assert sum(data["compressed_sizes"]["zstd"]["histogram"]) == \
        data["events"]["store"] - data["same_filled_pages"]


def test_synth_is_seeded_and_replays(tmp_path):
    args = ["trace", "synth", "--ram", "1M", "--accesses", "3000", "--footprint", "600",
            "--mix", "zero=1,text=2,random=1", "--seed", "4"]
    first, second = tmp_path / "a.trace", tmp_path / "b.trace"
    assert run(*args, "-o", str(first)).returncode == 0
    result = run(*args, "-o", str(second), "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["accesses"] == 3000 and stats["peak_resident"] == 256
    assert first.read_bytes() == second.read_bytes()
    replayed = run("replay", str(first), "--ram", "1M", "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["stores"] == stats["stores"]


@pytest.mark.parametrize("args, fragment", [
    (["--pattern", "spiral"], "--pattern"),
    (["--skew", "0"], "skew"),
    (["--write-fraction", "1.5"], "write fraction"),
    (["--mix", "zero=0"], "mix"),
    (["--phase", "zipf"], "phase"),
    (["--recording", "x.rec", "--accesses", "5"], "--recording replaces the model options"),
])
def test_synth_bad_options(tmp_path, args, fragment):
    (tmp_path / "x.rec").touch()        # an input that exists: the options are what is wrong
    args = [str(tmp_path / arg) if arg == "x.rec" else arg for arg in args]
    result = run("trace", "synth", "-o", str(tmp_path / "t.trace"), "--ram", "1M", *args)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "t.trace").exists()


def test_record_a_command_then_synth_from_the_recording(tmp_path):
    rec, trace = tmp_path / "job.rec", tmp_path / "job.trace"
    program = ("import mmap, sys, time; m = mmap.mmap(-1, 64 * 4096); "
               "[m.__setitem__(slice(i * 4096, i * 4096 + 8), i.to_bytes(8, 'little') * 1) "
               "for i in range(64)]; time.sleep(1.5)")
    result = run("trace", "record", "-o", str(rec), "--interval", "200", "--json", "--",
                 sys.executable, "-c", program)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["snapshots"] >= 2 and summary["ended"] == "process exited"
    result = run("trace", "synth", "--recording", str(rec), "--ram", "64K", "-o", str(trace),
                 "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["peak_resident"] == 16 and stats["stores"] > 64    # 16 pages of RAM
    assert run("replay", str(trace), "--ram", "1M").returncode == 0


def test_zram_command_on_a_trace_and_a_raw_dump(tmp_path):
    result = run("zram", str(Path(SHIPPED).parent / "swapcache-churn.trace"), "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert list(stats["mm_stat"]) == ["orig_data_size", "compr_data_size", "mem_used_total",
                                      "mem_limit", "mem_used_max", "same_pages",
                                      "pages_compacted", "huge_pages", "huge_pages_since"]
    # What the trace leaves live, worked out from its events alone.
    live = set()
    invalidates = 0
    for op, _, offset, _, _ in TraceReader(Path(SHIPPED).parent / "swapcache-churn.trace"):
        if op == 1:
            live.add(offset)
        elif op == 3:
            live.discard(offset)
            invalidates += 1
    assert stats["mm_stat"]["orig_data_size"] == len(live) * 4096
    assert stats["io_stat"]["notify_free"] == invalidates
    dump = tmp_path / "dump.raw"
    dump.write_bytes(bytes(4096) * 3 + bytes(range(256)) * 16)
    raw = json.loads(run("zram", "--raw", str(dump), "--json").stdout)
    assert raw["mm_stat"]["same_pages"] == 3 and raw["mm_stat"]["orig_data_size"] == 4 * 4096


def test_zram_refuses_two_swap_areas_and_both_inputs(tmp_path):
    path = tmp_path / "two.trace"
    with TraceWriter(path) as w:
        w.store(0, 1, bytes(4096))
        w.store(1, 1, bytes(4096))
    assert_one_line_error(run("zram", str(path)), "zram is one swap area")
    assert_one_line_error(run("zram", str(path), "--raw", str(path)), "give a TRACE or --raw")


def test_fidelity_command_exact_and_catching_a_difference(tmp_path):
    result = run("fidelity", str(FIDELITY))
    assert result.returncode == 0, result.stderr
    # 6.1: 60 zram and 24 zswap values; 6.12: 40 zram values and 4 lz4 zswap
    # cases of 16 counters; 6.18: 40 zram values and 2 zswap cases of 18
    # (tests/test_zram_new.py and tests/test_zswap_new.py hold them to the kernel)
    assert "264 of 264 values computed from the kernel's own compressed sizes" in result.stdout
    kernel = read_kernel_json(set_path("mix2000"))
    kernel["zram"]["zstd"]["mem_used_total"] += 4096        # a kernel we would disagree with
    kernel["pages_file"] = str(pages_path(set_path("mix2000"), kernel))
    (tmp_path / "mix2000.kernel.json").write_text(json.dumps(kernel))
    result = run("fidelity", str(tmp_path), "--json")
    assert result.returncode == 1
    wrong = [r for r in json.loads(result.stdout)
             if r["difference"] and r["mode"] == "kernel sizes"]
    assert [(r["case"], r["field"], r["difference"]) for r in wrong] == \
        [("zram zstd", "mem_used_total", -4096)]


def test_replay_with_injected_faults_reports_them():
    result = run("replay", str(Path(SHIPPED).parent / "swapcache-churn.trace"), "--ram", "16M",
                 "--fault-alloc", "0.02", "--fault-evict", "0.1", "--fault-seed", "3")
    assert result.returncode == 0, result.stderr
    assert "injected faults" in result.stdout and "injected_evict" in result.stdout
    assert "verified: every load matched" in result.stdout
