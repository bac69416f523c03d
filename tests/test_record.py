"""Recording live processes: the pages captured from a real child process,
the written sets between snapshots, the process left running, clean ends and
clear errors; and the recording format itself: round trip, deduplication,
accesses(), and every truncation or corrupted byte detected.

The child is a small Python program that fills an anonymous mmap with known
patterns and changes pages on request; the test and the child synchronise
through its stdin and stdout only, never through timing.
"""

import inspect
import mmap
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from zswapsim.errors import ConfigError, TraceError, UserError
from zswapsim.trace.record import (
    ANONYMOUS,
    FILE_DIRTY,
    PM_FILE,
    PM_PRESENT,
    PM_SOFT_DIRTY,
    PM_SWAPPED,
    SHARED,
    classify,
    parse_maps,
    record,
    soft_dirty_available,
)
from zswapsim.trace.recording import RecordingReader, RecordingWriter, Snapshot, accesses

PAGE = mmap.PAGESIZE
AREA_PAGES = 16
DUPLICATES = range(4)          # the child fills these pages with one same image
CHANGED = (2, 9, 10)           # the pages the child rewrites when asked


def pattern(tag, index, page_size):
    """Page content the child writes; page index `index` of generation `tag`."""
    return (f"<{tag}:{index}>".encode() * page_size)[:page_size]


CHILD_MAIN = textwrap.dedent("""
    import ctypes, mmap, sys
    PAGE = mmap.PAGESIZE
    area = mmap.mmap(-1, {pages} * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    def fill(index, tag, content_index):
        area[index * PAGE:(index + 1) * PAGE] = pattern(tag, content_index, PAGE)
    for index in range({pages}):
        fill(index, "first", index) if index >= {duplicates} else fill(index, "same", 0)
    print(ctypes.addressof(ctypes.c_char.from_buffer(area)), flush=True)
    for line in sys.stdin:
        command, *arguments = line.split()
        if command == "exit":
            break
        for index in map(int, arguments[1:]):
            fill(index, arguments[0], index)
        print("done", flush=True)
""").format(pages=AREA_PAGES, duplicates=len(DUPLICATES))
CHILD = inspect.getsource(pattern) + CHILD_MAIN


class Child:
    """The child program: `address` of its mmap; `ask` sends one command line
    and waits for its answer."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.pid = self.process.pid
        self.address = int(self.process.stdout.readline())

    def ask(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline() == "done\n"

    def tell_exit(self):
        self.process.stdin.write("exit\n")
        self.process.stdin.flush()

    def state(self):
        with open(f"/proc/{self.pid}/stat", "rb") as stat:
            return chr(stat.read().rsplit(b")", 1)[1][1])

    def area(self, pages):
        """The snapshot's digests for the mmap, by page index."""
        return {(vaddr - self.address) // PAGE: digest for vaddr, digest in pages.items()
                if self.address <= vaddr < self.address + AREA_PAGES * PAGE}

    def area_indices(self, vaddrs):
        return {(vaddr - self.address) // PAGE for vaddr in vaddrs
                if self.address <= vaddr < self.address + AREA_PAGES * PAGE}


@pytest.fixture
def child():
    child = Child()
    yield child
    child.process.kill()
    child.process.wait()
    child.process.stdin.close()
    child.process.stdout.close()


def expected_first(index):
    return pattern("same", 0, PAGE) if index in DUPLICATES else pattern("first", index, PAGE)


# --- recording a live process ------------------------------------------------------------

def test_one_snapshot_holds_the_known_pages_and_leaves_the_process_running(child, tmp_path):
    output = tmp_path / "one.rec"
    summary = record(pid=child.pid, output=output)
    assert summary["snapshots"] == 1 and summary["ended"] == "single snapshot"
    assert summary["write_tracking"] in ("content", "soft-dirty")
    with RecordingReader(output) as reader:
        assert reader.pid == child.pid and reader.page_size == PAGE
        assert reader.command[1:] == ("-c", CHILD)
        assert f"process {child.pid}" in reader.description
        [snapshot] = list(reader)
        area = child.area(snapshot.pages)
        assert sorted(area) == list(range(AREA_PAGES))
        for index, digest in area.items():
            assert reader.image(digest) == expected_first(index)
        assert snapshot.written == frozenset(snapshot.pages)
        assert snapshot.accessed is None
        assert len({area[index] for index in DUPLICATES}) == 1       # stored once
        assert reader.image_count == len(set(snapshot.pages.values()))
    assert child.state() not in "Tt"
    child.ask("write later 0")           # it still answers: it was continued


def test_interval_recording_sees_exactly_the_pages_changed(child, tmp_path):
    output = tmp_path / "interval.rec"

    def drive(count, ts_ns, pages):
        """Between snapshots 1 and 2 the child changes CHANGED, then exits."""
        if count == 1:
            child.ask("write second " + " ".join(map(str, CHANGED)))
        elif count == 2:
            child.tell_exit()

    summary = record(pid=child.pid, output=output, interval_ms=20, duration_s=60,
                     on_snapshot=drive)
    assert summary["ended"] == "process exited" and summary["snapshots"] >= 2
    with RecordingReader(output) as reader:
        snapshots = list(reader)
        assert len(snapshots) == summary["snapshots"]
        first, second = snapshots[:2]
        assert child.area_indices(first.written) == set(range(AREA_PAGES))
        assert child.area_indices(second.written) == set(CHANGED)
        area = child.area(second.pages)
        for index in range(AREA_PAGES):
            expected = (pattern("second", index, PAGE) if index in CHANGED
                        else expected_first(index))
            assert reader.image(area[index]) == expected
        for later in snapshots[2:]:     # the child only exits: nothing more written there
            assert not child.area_indices(later.written)
        assert [s.ts_ns for s in snapshots] == sorted(s.ts_ns for s in snapshots)


def test_a_command_is_recorded_until_it_exits(tmp_path):
    output = tmp_path / "command.rec"
    program = "import time; data = bytearray(b'x' * 200_000); time.sleep(0.2)"
    summary = record(command=[sys.executable, "-c", program], output=output, interval_ms=20)
    assert summary["ended"] == "process exited" and summary["exit_status"] == 0
    with RecordingReader(output) as reader:
        assert reader.snapshot_count == summary["snapshots"] >= 1
        assert reader.command == (sys.executable, "-c", program)
        assert all(snapshot.pages for snapshot in reader)


def test_a_command_still_running_at_the_end_of_the_duration_is_terminated(tmp_path):
    output = tmp_path / "killed.rec"
    summary = record(command=[sys.executable, "-c", "import time; time.sleep(60)"],
                     output=output, interval_ms=20, duration_s=0.05)
    assert summary["ended"] == "duration"
    assert summary["exit_status"] == -signal.SIGTERM
    assert RecordingReader(output).snapshot_count == summary["snapshots"] >= 1


def test_a_command_that_ends_at_once_is_an_error_or_a_valid_recording(tmp_path):
    output = tmp_path / "short.rec"
    try:
        summary = record(command=["true"], output=output, interval_ms=20)
    except UserError as error:         # it ended before the recorder got hold of it
        assert str(error) == "true exited (status 0) before its first snapshot"
        assert not os.listdir(tmp_path)
    else:
        assert summary["ended"] == "process exited" and summary["exit_status"] == 0
        assert RecordingReader(output).snapshot_count == summary["snapshots"]


def test_a_missing_process_is_a_clear_user_error(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    with pytest.raises(UserError, match=rf"^no process {gone.pid}$"):
        record(pid=gone.pid, output=tmp_path / "none.rec")
    assert not os.listdir(tmp_path)


def test_options_are_checked(tmp_path, child):
    output = tmp_path / "bad.rec"
    with pytest.raises(ConfigError, match="exactly one"):
        record(output=output)
    with pytest.raises(ConfigError, match="interval"):
        record(pid=child.pid, output=output, interval_ms=0)
    with pytest.raises(ConfigError, match="itself"):
        record(pid=os.getpid(), output=output)
    with pytest.raises(UserError, match="cannot run"):
        record(command=[str(tmp_path / "no-such-program")], output=output)
    with pytest.raises(UserError, match="cannot write"):
        record(pid=child.pid, output=tmp_path / "no-such-directory" / "x.rec")


@pytest.mark.skipif(soft_dirty_available(), reason="this kernel tracks soft-dirty pages")
def test_asking_for_soft_dirty_tracking_where_the_kernel_lacks_it(child, tmp_path):
    with pytest.raises(UserError, match="soft-dirty"):
        record(pid=child.pid, output=tmp_path / "sd.rec", write_tracking="soft-dirty")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root and setpriv to record as another user")
def test_missing_ptrace_rights_are_explained(child, tmp_path):
    script = ("from zswapsim.errors import UserError\n"
              "from zswapsim.trace.record import record\n"
              "try:\n"
              f"    record(pid={child.pid}, output='/tmp/never-written.rec')\n"
              "except UserError as error:\n"
              "    print(error)\n")
    outcome = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              sys.executable, "-c", script], capture_output=True, text=True,
                             cwd="/", env={**os.environ, "PYTHONPATH": os.getcwd()})
    if outcome.returncode or "No module named" in outcome.stderr:
        pytest.skip(f"cannot run the recorder as uid 65534: {outcome.stderr.strip()}")
    assert "permission denied" in outcome.stdout and "CAP_SYS_PTRACE" in outcome.stdout
    assert "ptrace_scope" in outcome.stdout
    assert child.state() not in "Tt"


# --- the pieces of a scan ----------------------------------------------------------------

MAPS = """\
55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000002000 rw-s 00000000 00:01 1054                       /dev/zero (deleted)
7f0000002000-7f0000004000 rw-s 00000000 00:01 1055                       /memfd:jit (deleted)
7f0000004000-7f0000006000 rw-s 00000000 fe:00 42                         /var/lib/db/data file
7f0000006000-7f0000008000 rw-p 00000000 00:00 0 
7f0000008000-7f000000a000 r--p 00000000 00:00 0 
7f000000a000-7f000000c000 rw-p 0001c000 fe:00 329635                     /usr/lib/libc.so.6
7f000000c000-7f000000e000 rw-p 00000000 00:00 0                          [anon:arena]
7f000000e000-7f0000010000 r--p 00000000 00:00 0                          [vvar]
7ffd3a529000-7ffd3a54a000 rw-p 00000000 00:00 0                          [stack]
"""


def test_the_mappings_kept_are_private_writable_anonymous_and_the_requested_kinds():
    kinds = lambda mappings: [(hex(m.start), m.kind) for m in mappings]   # noqa: E731
    anonymous = [("0x55d0c0a00000", ANONYMOUS), ("0x7f0000006000", ANONYMOUS),
                 ("0x7f000000c000", ANONYMOUS), ("0x7ffd3a529000", ANONYMOUS)]
    assert kinds(parse_maps(MAPS)) == anonymous
    everything = kinds(parse_maps(MAPS, include_shared=True, include_file_dirty=True))
    assert sorted(everything) == sorted(anonymous + [
        ("0x7f0000000000", SHARED), ("0x7f0000002000", SHARED), ("0x7f000000a000", FILE_DIRTY)])
    assert parse_maps(MAPS)[0].end == 0x55d0c0a21000


def test_pagemap_entries_are_classified():
    entries = np.array([0, PM_PRESENT | 1234, PM_SWAPPED | 77, PM_PRESENT | PM_FILE | 5,
                        PM_PRESENT | PM_SOFT_DIRTY | 9], dtype=np.uint64)
    present, swapped, written = classify(entries, ANONYMOUS, soft_dirty=False)
    assert present.tolist() == [False, True, False, True, True]
    assert swapped.tolist() == [False, False, True, False, False]
    assert written is None
    present, _, written = classify(entries, FILE_DIRTY, soft_dirty=True)
    assert present.tolist() == [False, True, False, False, True]     # file pages unmodified
    assert written.tolist() == [False, False, False, False, True]


# --- the recording format ----------------------------------------------------------------

A, B, C = 0x10000, 0x11000, 0x7F0000000000


def hand_built(path, page_size=PAGE):
    """Three snapshots: A and B; then B changed, C new, A read; then only C, rewritten."""
    one, two, three = (pattern(tag, 0, page_size) for tag in ("one", "two", "three"))
    with RecordingWriter(path, "hand built", page_size, pid=42, command=["prog", "-x"]) as writer:
        writer.snapshot(0, {A: one, B: two})
        writer.snapshot(10, {A: one, B: three, C: one}, accessed={A})
        writer.snapshot(20, {C: one}, written={C})
    return one, two, three


def test_round_trip_and_deduplication(tmp_path):
    path = tmp_path / "hand.rec"
    one, two, three = hand_built(path)
    with RecordingReader(path) as reader:
        assert (reader.description, reader.pid, reader.command) == ("hand built", 42,
                                                                    ("prog", "-x"))
        assert reader.image_count == 3 and reader.snapshot_count == 3
        first, second, third = reader
        assert isinstance(first, Snapshot)
        assert first.ts_ns == 0 and first.written == {A, B} and first.accessed is None
        assert second.written == {B, C} and second.accessed == {A}
        assert second.pages[A] == second.pages[C] == first.pages[A]
        assert reader.image(second.pages[B]) == three
        assert third.pages == {C: first.pages[A]} and third.written == {C}
        assert list(reader) == [first, second, third]      # iterating again


def test_accesses_frees_first_then_writes_and_reads_by_address(tmp_path):
    path = tmp_path / "hand.rec"
    one, two, three = hand_built(path)
    with RecordingReader(path) as reader:
        # Written content comes as a function giving the bytes on demand.
        got = [(kind, vaddr, content() if callable(content) else content)
               for kind, vaddr, content in accesses(reader)]
    assert got == [
        ("write", A, one), ("write", B, two),
        ("read", A, None), ("write", B, three), ("write", C, one),
        ("free", A, None), ("free", B, None), ("write", C, one),
    ]


def test_a_recording_without_snapshots_is_valid(tmp_path):
    with RecordingWriter(tmp_path / "empty.rec"):
        pass
    reader = RecordingReader(tmp_path / "empty.rec")
    assert reader.snapshot_count == 0 and list(accesses(reader)) == []


def test_an_abandoned_recording_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError):
        with RecordingWriter(tmp_path / "gone.rec") as writer:
            writer.snapshot(0, {A: pattern("x", 0, PAGE)})
            raise RuntimeError("recorder failed")
    assert not os.listdir(tmp_path)


def read_everything(path):
    with RecordingReader(path) as reader:
        for snapshot in reader:
            for digest in snapshot.pages.values():
                reader.image(digest)


def test_every_truncation_is_a_trace_error(tmp_path):
    path = tmp_path / "hand.rec"
    hand_built(path)
    data = path.read_bytes()
    cut = tmp_path / "cut.rec"
    for length in range(len(data)):
        cut.write_bytes(data[:length])
        with pytest.raises(TraceError, match="at byte"):
            read_everything(cut)


def test_every_corrupted_byte_is_a_trace_error(tmp_path):
    path = tmp_path / "hand.rec"
    hand_built(path)
    data = path.read_bytes()
    bad = tmp_path / "bad.rec"
    for offset in range(len(data)):
        corrupted = bytearray(data)
        corrupted[offset] ^= 0x55
        bad.write_bytes(corrupted)
        with pytest.raises(TraceError, match="at byte"):
            read_everything(bad)


def test_bytes_after_the_trailer_and_other_files_are_rejected(tmp_path):
    path = tmp_path / "hand.rec"
    hand_built(path)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(TraceError, match="after the trailer"):
        RecordingReader(path)
    path.write_bytes(b"ZSWTRACE" + bytes(40))
    with pytest.raises(TraceError, match="not a zswapsim recording"):
        RecordingReader(path)


def test_the_writer_refuses_inconsistent_snapshots(tmp_path):
    with RecordingWriter(tmp_path / "w.rec") as writer:
        writer.snapshot(5, {A: pattern("x", 0, PAGE)})
        with pytest.raises(ValueError, match="before the previous"):
            writer.snapshot(4, {A: pattern("x", 0, PAGE)})
        with pytest.raises(ValueError, match="not among"):
            writer.snapshot(6, {A: pattern("x", 0, PAGE)}, written={B})
        with pytest.raises(ValueError, match="multiple of the page size"):
            writer.snapshot(6, {A + 1: pattern("x", 0, PAGE)})
        with pytest.raises(ValueError, match="bytes, expected"):
            writer.snapshot(6, {A: b"short"})


# --- the command line's `trace record`: exit status, signals, bad options ---------------

BIG_CHILD = textwrap.dedent("""
    import sys, time
    pages = [index.to_bytes(8, "little") * 512 for index in range(40_000)]  # 160 MiB, distinct
    print("ready", flush=True)
    time.sleep(60)
""")


CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def record_cli(*args):
    """`zswapsim trace record ARGS` started from the checkout's root."""
    return subprocess.Popen([sys.executable, "-m", "zswapsim", "trace", "record",
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=CHECKOUT)


def proc_state(pid):
    """The state letter of /proc/PID/stat; None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return chr(f.read().rsplit(b")", 1)[1][1])
    except FileNotFoundError:
        return None


def wait_for_state(pid, wanted, seconds=30):
    deadline = time.monotonic() + seconds
    while proc_state(pid) != wanted:
        assert time.monotonic() < deadline, f"process {pid} never reached state {wanted}"
        time.sleep(0.001)


@pytest.mark.parametrize("command, status", [
    (["false"], 1),
    (["sh", "-c", "sleep 0.3; exit 3"], 3),
    (["sh", "-c", "sleep 0.3; kill -9 $$"], 128 + signal.SIGKILL),
])
def test_the_recorder_exits_with_the_commands_failure(tmp_path, command, status):
    recorder = record_cli("-o", tmp_path / "r.rec", "--", *command)
    _, err = recorder.communicate(timeout=60)
    assert recorder.returncode == status, err
    assert "Traceback" not in err
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_mid_snapshot_ends_the_command_and_leaves_no_file(tmp_path, signum):
    recorder = record_cli("--interval", "100", "-o", tmp_path / "r.rec", "--",
                          sys.executable, "-c", BIG_CHILD)
    assert recorder.stdout.readline() == "ready\n"
    child_pid = int(open(f"/proc/{recorder.pid}/task/{recorder.pid}/children").read().split()[0])
    wait_for_state(child_pid, "T")             # stopped: a snapshot is being taken
    recorder.send_signal(signum)
    _, err = recorder.communicate(timeout=30)
    assert recorder.returncode == 128 + signum, err
    assert err.strip() == f"zswapsim: terminated by {signal.Signals(signum).name}"
    assert proc_state(child_pid) is None         # ended and reaped by the recorder
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_recorded_pid_is_left_running_whatever_ends_the_recorder(tmp_path, signum):
    target = subprocess.Popen([sys.executable, "-c", BIG_CHILD], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert target.stdout.readline() == "ready\n"
        recorder = record_cli("--pid", target.pid, "--interval", "100",
                              "-o", tmp_path / "r.rec")
        wait_for_state(target.pid, "T")
        recorder.send_signal(signum)
        _, err = recorder.communicate(timeout=30)
        time.sleep(0.05)
        assert proc_state(target.pid) in ("S", "R"), proc_state(target.pid)
        if signum == signal.SIGINT:          # Ctrl-C: the snapshots taken are kept
            assert recorder.returncode == 0, err
            assert os.listdir(tmp_path) == ["r.rec"]
            assert RecordingReader(tmp_path / "r.rec").snapshot_count >= 1
        else:
            assert recorder.returncode == 128 + signum, err
            assert os.listdir(tmp_path) == []
    finally:
        target.kill()
        target.wait()
        target.stdout.close()


@pytest.mark.parametrize("option, fragment", [
    (["--pid", "99999999999999999999"], "invalid pid 99999999999999999999"),
    (["--duration", "nan", "--", "sleep", "1"], "duration must be"),
    (["--duration", "inf", "--", "sleep", "1"], "duration must be"),
    (["--duration", "1e309", "--", "sleep", "1"], "duration must be"),
])
def test_impossible_pids_and_durations_are_one_line(tmp_path, option, fragment):
    recorder = record_cli("-o", tmp_path / "r.rec", *option)
    _, err = recorder.communicate(timeout=60)
    assert recorder.returncode == 2
    assert err.count("\n") == 1 and err.startswith("zswapsim: error: ") and fragment in err, err
    assert os.listdir(tmp_path) == []
