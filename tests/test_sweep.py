"""compare and tune-retries: every record equals a lone replay of its
configuration however the sweep runs (one pass, local processes, a Dask
cluster), and the shapes of what the commands print and write (the advice
itself: test_advice.py)."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from churn import write_churn_trace
import zswapsim
from zswapsim.replay import TIMING_FIELDS, replay
from zswapsim.sweep import COMPARE_FIELDS, TUNE_FIELDS, lane_groups, run_configs

SHIPPED = Path(__file__).resolve().parents[1] / "traces" / "python-heap.trace"


@pytest.fixture(scope="module")
def churn_trace(tmp_path_factory):
    """1,500 events over real pages: stores, loads that leave pages in the
    swap cache, invalidations; small enough RAM (see RAM) that every pool's
    limit bites and reclaim runs."""
    return write_churn_trace(tmp_path_factory.mktemp("sweep") / "churn.trace")


RAM = 1000          # pages: a 200-page pool limit at 20 %


def lone(path, **config):
    return replay(path, ram_pages=RAM, **config)


def without_timing(results):
    """Results without what belongs to a pass rather than a configuration:
    its timings, and the hits of the compression cache its lanes share."""
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS + ("compress_cache_hits",)}
            for r in results]


def test_compare_records_equal_lone_replays(churn_trace):
    records = zswapsim.compare(churn_trace, compressors=("lz4", "zstd"), ram_pages=RAM)
    assert len(records) == 8
    for record in records:
        alone = lone(churn_trace, backend=record["backend"], compressor=record["compressor"])
        assert without_timing([{k: record[k] for k in alone}]) == without_timing([alone])
        assert set(record) - set(alone) == {"stores_refused", "recommended"}
    assert any(r["written_back_pages"] for r in records)      # the limit did bite
    # Verdict order: the fewest swap writes, then the densest.
    order = [(r["swap_writes"], -r["density"]) for r in records]
    assert order == sorted(order)


def test_tune_retries_records_equal_lone_replays(churn_trace):
    records = zswapsim.tune_retries(churn_trace, (1, 4), (10, 20), ram_pages=RAM, kernel="3.11")
    assert [(r["max_pool_percent"], r["retries"]) for r in records] == \
        [(10, 1), (10, 4), (20, 1), (20, 4)]
    for record in records:
        alone = lone(churn_trace, retries=record["retries"], kernel="3.11",
                     max_pool_percent=record["max_pool_percent"])
        assert without_timing([{k: record[k] for k in alone}]) == without_timing([alone])
        assert record["stores_refused"] == alone["stores"] - alone["zswpout"]
        assert set(TUNE_FIELDS) <= set(record)
    assert all(r["reclaim_calls"] > 0 for r in records)


def sweep_configs():
    # Compressors interleaved, so the local groups (one compressor each
    # where they can) hold configurations out of order.
    return [dict(backend=b, compressor=c, ram_pages=RAM, retries=r)
            for b in ("zbud", "zsmalloc", "z3fold") for r in (1, 8) for c in ("zstd", "lz4")]


@pytest.mark.parametrize("jobs", [2, 5])
def test_local_processes_give_the_serial_results(churn_trace, jobs):
    serial = run_configs(churn_trace, sweep_configs(), timeline_points=20)
    parallel = run_configs(churn_trace, sweep_configs(), jobs=jobs, timeline_points=20)
    assert without_timing(parallel) == without_timing(serial)


def test_lane_groups_keep_a_compressor_together_and_balance():
    configs = [dict(backend=b, compressor=c)
               for c in ("zstd", "lz4") for b in ("zbud", "z3fold", "zsmalloc")]
    # lz4's configurations are 3, 4, 5 and sort first; zstd's are 0, 1, 2.
    assert lane_groups(configs, 2) == [[3, 4, 5], [0, 1, 2]]
    assert lane_groups(configs, 4) == [[3, 4], [5, 0], [1], [2]]
    assert lane_groups(configs, 9) == [[3], [4], [5], [0], [1], [2]]
    assert lane_groups([dict(backend="zbud")], 2) == [[0]]


def test_local_processes_report_every_event_of_every_pass(churn_trace):
    calls = []
    run_configs(churn_trace, sweep_configs()[:4], jobs=2,
                progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (2 * 1500, 2 * 1500)        # two passes of the 1,500 events
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_dask_cluster_gives_the_serial_results(churn_trace):
    import distributed                               # in the test extra
    serial = run_configs(churn_trace, sweep_configs())
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        remote = run_configs(churn_trace, sweep_configs(),
                             dask_scheduler=cluster.scheduler_address)
    assert without_timing(remote) == without_timing(serial)


def run(*args):
    return subprocess.run([sys.executable, "-m", "zswapsim", *args],
                          capture_output=True, text=True, timeout=600)


def test_compare_cli_json_csv_and_plot(churn_trace, tmp_path):
    csv_path, png = tmp_path / "c.csv", tmp_path / "c.png"
    result = run("compare", str(churn_trace), "--ram", "4000K", "--backend", "zbud,xvmalloc",
                 "--compressor", "lz4", "--json", "--csv", str(csv_path), "--plot", str(png))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""          # no progress bar off a terminal
    records = json.loads(result.stdout)
    assert all(set(COMPARE_FIELDS) <= set(r) for r in records) and len(records) == 2
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(records[0]) and len(rows) == 2
    assert [r["backend"] for r in rows] == [r["backend"] for r in records]
    from PIL import Image
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (1300, 500)
    text = run("compare", str(churn_trace), "--ram", "4000K", "--compressor", "lz4")
    assert text.returncode == 0 and "\nverdict: " in text.stdout


def test_tune_retries_cli_table_advice_and_plot(churn_trace, tmp_path):
    png = tmp_path / "t.png"
    result = run("tune-retries", str(churn_trace), "--ram", "4000K", "--kernel", "3.11",
                 "--retries", "1,2", "--max-pool-percent", "10,20", "--plot", str(png),
                 "--jobs", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["pool%", "retries"] and len(lines) == 1 + 4 + 1 + 1 + 2
    assert lines[-3].startswith("recommended: the smallest retries value")
    assert lines[-2].startswith("max_pool_percent 10: ")
    assert lines[-1].startswith("max_pool_percent 20: ")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, fragment", [
    (["compare", "--backend", ","], "the list of backends is empty"),
    (["compare", "--backend", "zbud,slab"], "unknown backend 'slab'"),
    (["compare", "--compressor", "lz4,lzma"], "unknown compressor 'lzma'"),
    (["compare", "--jobs", "0"], "--jobs"),
    (["tune-retries", "--retries", "-2"], "retries -2 is outside 0..4294967295"),
    (["tune-retries", "--retries", "1,x"], "not a comma-separated list of retries values"),
    (["tune-retries", "--max-pool-percent", "20,101"], "max_pool_percent 101 is outside 0..100"),
    (["tune-retries", "--dask-scheduler", "tcp://127.0.0.1:1"], "cannot reach the Dask scheduler"),
])
def test_bad_sweep_options(args, fragment):
    result = run(args[0], str(SHIPPED), *args[1:])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("zswapsim: error: ") and fragment in lines[0], lines[0]


def on_a_terminal(code):
    """Run Python `code` with stderr on a 120-column pseudo-terminal; what it drew."""
    import fcntl
    import os
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    child = subprocess.Popen([sys.executable, "-c", code], stderr=slave,
                             stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    os.close(slave)
    drawn = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:                  # the child closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    assert child.wait() == 0
    return drawn.decode(errors="replace")


PROGRESS_RUN = """
import time
from zswapsim.progress import Progress
with Progress(1000, "event", quiet={quiet}) as progress:
    time.sleep(1.2)
    progress(500)
    time.sleep(0.2)
    progress(1000)
"""


def test_progress_bar_only_on_a_terminal_after_a_second():
    drawn = on_a_terminal(PROGRESS_RUN.format(quiet=False))
    assert "500/1.00k" in drawn and "event/s" in drawn and "<00:01" in drawn    # ETA
    assert on_a_terminal(PROGRESS_RUN.format(quiet=True)) == ""
    quick = PROGRESS_RUN.format(quiet=False).replace("time.sleep(1.2)", "")
    assert on_a_terminal(quick) == ""             # done within the second: no bar
