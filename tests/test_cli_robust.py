"""The command line against a hostile user: outputs that cannot be written
(found before any work), special files as inputs and outputs, error lines
that stay one line, and signals or a killed worker during `--jobs` sweeps.

Every case runs the real CLI in a subprocess; process states are read from
/proc/PID/stat, never inferred from timing alone.
"""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zswapsim.trace.synth import synthesize

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "traces" / "python-heap.trace"


def cli(*args):
    return [sys.executable, "-m", "zswapsim", *map(str, args)]


def run(*args, timeout=120, **options):
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, **options)


def one_error_line(result, fragment, status=2):
    assert result.returncode == status, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("zswapsim: ") and fragment in lines[0], lines[0]
    return lines[0]


def state(pid):
    """The scheduler state letter of /proc/PID/stat, None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return chr(f.read().rsplit(b")", 1)[1][1])
    except FileNotFoundError:
        return None


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    if int(f.read().rsplit(b")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return found


def wait_until(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def alive(pid):
    return state(pid) not in (None, "Z", "X")


@pytest.fixture(scope="module")
def long_trace(tmp_path_factory):
    """A trace whose `compare --jobs 2` takes seconds: signals land mid-run."""
    path = tmp_path_factory.mktemp("long") / "long.trace"
    synthesize(path, 2048, accesses=200_000)
    return path


# -- start-up --------------------------------------------------------------

def test_the_cli_loads_neither_plotting_nor_dask_until_asked():
    probe = ("import sys, zswapsim.cli; "
             "print(sorted(m for m in ('matplotlib', 'distributed', 'asyncio') "
             "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("given, expected", [(None, "1 1"), ("2", "2 ")])
def test_numpy_starts_no_blas_threads_unless_the_user_asks(given, expected):
    """numpy loaded with the trace reader brings no OpenBLAS thread pool
    (one thread: the process's own), unless OPENBLAS_NUM_THREADS was set."""
    probe = ("import os, zswapsim.replay, numpy; "
             "print(os.environ['OPENBLAS_NUM_THREADS'], "
             "len(os.listdir('/proc/self/task')) if os.environ['OPENBLAS_NUM_THREADS'] == '1' "
             "else '')")
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=ROOT, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected.strip()


# -- outputs checked before the work ---------------------------------------

def corrupt_copy(tmp_path):
    """The shipped trace cut off half way: its header reads, but replaying it
    would end in a truncation error, so an error about anything else proves
    no event was replayed."""
    data = SHIPPED.read_bytes()
    path = tmp_path / "cut.trace"
    path.write_bytes(data[:len(data) // 2])
    return path


@pytest.mark.parametrize("command", [["compare"], ["tune-retries"], ["trace", "info"]])
def test_a_plot_in_a_missing_folder_fails_before_any_event_is_replayed(tmp_path, command):
    trace = corrupt_copy(tmp_path)
    one_error_line(run(*command, trace), "truncated block payload")
    result = run(*command, trace, "--plot", tmp_path / "missing" / "out.png")
    one_error_line(result, f"folder {tmp_path / 'missing'} does not exist")


def test_a_csv_in_a_missing_folder_fails_before_the_run(tmp_path):
    result = run("compare", corrupt_copy(tmp_path), "--csv", tmp_path / "no" / "r.csv")
    one_error_line(result, "--csv")


def test_a_plot_must_be_a_png(tmp_path):
    result = run("trace", "info", SHIPPED, "--plot", tmp_path / "sizes.txt")
    one_error_line(result, "must end in .png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [
    ["trace", "synth", "--ram", "1M", "--accesses", "100", "-o", "OUT"],
    ["trace", "import", SHIPPED, "-o", "OUT"],
    ["trace", "record", "-o", "OUT", "--", "sleep", "5"],
])
def test_an_output_that_is_a_fifo_is_refused_and_left_a_fifo(tmp_path, command):
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    started = time.monotonic()
    result = run(*[fifo if arg == "OUT" else arg for arg in command])
    one_error_line(result, "is a FIFO (named pipe), not a regular file; refusing to replace it")
    assert time.monotonic() - started < 4          # the recorded `sleep 5` never started
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_an_output_that_is_a_socket_or_a_directory_is_refused(tmp_path):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock"))
    try:
        one_error_line(run("trace", "synth", "--ram", "1M", "-o", tmp_path / "sock"),
                       "is a socket")
        assert stat.S_ISSOCK(os.stat(tmp_path / "sock").st_mode)
    finally:
        server.close()
    one_error_line(run("trace", "synth", "--ram", "1M", "-o", tmp_path), "is a directory")


def test_a_csv_over_a_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "r.csv")
    one_error_line(run("compare", SHIPPED, "--csv", tmp_path / "r.csv"), "is a FIFO")
    assert stat.S_ISFIFO(os.stat(tmp_path / "r.csv").st_mode)


def test_a_251_byte_output_name_works_and_leaves_nothing_else(tmp_path):
    name = "t" * 245 + ".trace"
    assert len(name.encode()) == 251
    result = run("trace", "synth", "--ram", "1M", "--accesses", "500", "-o", tmp_path / name)
    assert result.returncode == 0, result.stderr
    assert os.listdir(tmp_path) == [name]
    assert run("trace", "info", tmp_path / name).returncode == 0


def test_a_name_longer_than_the_filesystem_allows_is_one_line(tmp_path):
    result = run("trace", "synth", "--ram", "1M", "-o", tmp_path / ("t" * 256))
    one_error_line(result, "the name is longer than the filesystem's 255 bytes")


def test_a_written_output_keeps_the_umask_permissions(tmp_path):
    result = subprocess.run(["sh", "-c", "umask 022 && exec \"$@\"", "sh",
                             *cli("trace", "synth", "--ram", "1M", "--accesses", "100",
                                  "-o", tmp_path / "t.trace")],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(tmp_path / "t.trace").st_mode) == 0o644


# -- inputs and error lines ------------------------------------------------

def test_a_fifo_input_is_named_as_such_at_once(tmp_path):
    os.mkfifo(tmp_path / "in.trace")
    result = run("replay", tmp_path / "in.trace", timeout=20)      # no writer: must not hang
    one_error_line(result, "is a FIFO (named pipe), not a regular file")


def test_a_process_substitution_input_is_named_a_pipe(tmp_path):
    read_end, write_end = os.pipe()
    try:
        result = run("trace", "info", f"/dev/fd/{read_end}", pass_fds=(read_end,), timeout=20)
    finally:
        os.close(read_end)
        os.close(write_end)
    one_error_line(result, "is a pipe (as <(...) gives)")


def test_a_fifo_source_is_not_called_missing(tmp_path):
    os.mkfifo(tmp_path / "pages")
    result = run("trace", "synth", "--ram", "1M", "-o", tmp_path / "t.trace",
                 "--source", tmp_path / "pages", timeout=20)
    line = one_error_line(result, "is a FIFO")
    assert "no such file" not in line.lower()


def test_control_characters_in_an_error_stay_on_one_line(tmp_path):
    missing = str(tmp_path / "two\nlines\x1b[2J")
    line = one_error_line(run("replay", missing), "No such file or directory")
    assert "two\\nlines\\x1b[2J" in line and "\x1b" not in line


# -- --jobs and signals ----------------------------------------------------

def start_sweep(*args):
    proc = subprocess.Popen(cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert wait_until(lambda: len(children(proc.pid)) >= 2, 30), "no workers started"
    workers = children(proc.pid)
    time.sleep(0.5)                 # the workers are replaying now
    assert proc.poll() is None, "the sweep ended before the signal: make the trace longer"
    return proc, workers


@pytest.mark.parametrize("command, signum, status", [
    (["compare"], signal.SIGTERM, 128 + signal.SIGTERM),
    (["compare"], signal.SIGINT, 130),
    (["compare"], signal.SIGHUP, 128 + signal.SIGHUP),
    (["tune-retries", "--ram", "4M", "--retries", "1,2,3,4,5,6,7,8"], signal.SIGTERM,
     128 + signal.SIGTERM),
])
def test_a_signal_to_the_parent_ends_the_workers_within_a_second(
        tmp_path, long_trace, command, signum, status):
    csv_path = tmp_path / "records.csv"
    proc, workers = start_sweep(command[0], long_trace, *command[1:], "--jobs", "2", "-q",
                                "--csv", csv_path)
    os.kill(proc.pid, signum)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 1.5
    assert proc.returncode == status, err
    assert "Traceback" not in err
    assert wait_until(lambda: not any(alive(pid) for pid in workers), 1)
    assert list(tmp_path.iterdir()) == []           # no CSV, no temporary file


def test_a_worker_killed_as_the_oom_killer_would_is_one_line(tmp_path, long_trace):
    csv_path = tmp_path / "records.csv"
    proc, workers = start_sweep("compare", long_trace, "--jobs", "2", "-q", "--csv", csv_path)
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "worker process ended abruptly" in lines[0], err
    assert wait_until(lambda: not any(alive(pid) for pid in workers), 1)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def silent_port():
    """A TCP port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


@pytest.mark.parametrize("address, fragment", [
    ("bogus://x", "unknown address scheme 'bogus'"),
    ("not an address", "missing port number"),
    ("127.0.0.1:1", "cannot reach the Dask scheduler at 127.0.0.1:1"),
    ("tcp://127.0.0.1:{silent}", "no answer within 5 s"),
])
def test_a_bad_dask_address_is_one_line_within_a_bound(address, fragment, silent_port):
    pytest.importorskip("distributed")
    started = time.monotonic()
    result = run("compare", SHIPPED, "--dask-scheduler", address.format(silent=silent_port),
                 timeout=60)
    one_error_line(result, fragment)
    assert time.monotonic() - started < 20


# -- bench outputs ---------------------------------------------------------

def test_the_soak_run_leaves_the_tracked_results_alone(tmp_path):
    tracked = ROOT / "bench" / "soak.json"
    before = tracked.read_bytes()
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"),
                             "--events", "2000"], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert tracked.read_bytes() == before
    runs = json.loads((tmp_path / "zswapsim-soak.json").read_text())["runs"]
    assert len(runs) == 8 and all(run["events"] == 2000 for run in runs)


@pytest.mark.parametrize("option, value", [("--shrink-step-cost", 10**6 + 1),
                                           ("--shrink-writeback-cost", -1),
                                           ("--shrink-delay", 2**32)])
def test_a_shrink_timing_out_of_range_is_one_line_before_the_replay(option, value):
    result = run("replay", SHIPPED, "--kernel", "6.12", "--backend", "zsmalloc", option, value)
    one_error_line(result, f"{option[2:].replace('-', '_')} {value} is outside")
    assert result.stdout == ""
