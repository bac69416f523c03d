"""Record a live process's memory, over time, as a zswapsim recording.

What zswap and zram see of a workload is the memory its processes could
swap: private anonymous pages (heap, stacks, anonymous mmaps), and on request
shared memory and the privately modified pages of file mappings.  This module
captures that memory from procfs: /proc/PID/maps names the mappings,
/proc/PID/pagemap says which pages are present, /proc/PID/mem gives their
contents.  The process is stopped (SIGSTOP) while a snapshot is taken, so
each snapshot is one consistent moment, and continued (SIGCONT) right after.
Written pages come from the kernel's soft-dirty bits where it has them
(CONFIG_MEM_SOFT_DIRTY), otherwise from comparing each page's content with
the previous snapshot.  docs/recording-format.md describes the result.
"""

import ctypes
import errno
import mmap
import os
import select
import signal
import subprocess
import threading
import time
from collections import namedtuple
from contextlib import contextmanager

import numpy as np

from ..errors import CommandFailed, ConfigError, UserError
from .format import PAGE_SIZES
from .recording import MAX_COMMAND, RecordingWriter

# /proc/PID/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
PM_PRESENT = 1 << 63
PM_SWAPPED = 1 << 62
PM_FILE = 1 << 61            # file page or shared anonymous page
PM_SOFT_DIRTY = 1 << 55

ANONYMOUS, SHARED, FILE_DIRTY = "anonymous", "shared", "file-dirty"
WRITE_TRACKING = ("auto", "soft-dirty", "content")

DEFAULT_INTERVAL_MS = 1000
PAGEMAP_CHUNK_PAGES = 65536       # pagemap entries read at a time (512 KiB)
MEM_READ_PAGES = 256              # pages read from /proc/PID/mem at a time
STOP_TIMEOUT_S = 2.0              # how long to wait for every thread to stop
STOP_FLAG_POLL_S = 0.1            # how often a wait between snapshots checks for Ctrl-C
KILL_GRACE_S = 5.0                # SIGTERM to SIGKILL, for a command still running at the end
PID_MAX_LIMIT = 1 << 22           # the kernel's PID_MAX_LIMIT on 64-bit: no pid is larger
MAX_DURATION_S = 366 * 86400      # a year: longer is a typo (and nan, inf are no duration)

# Shared mappings backed by shmem, whose pages go to swap (other shared file
# mappings are written back to their files instead).
SHMEM_NAMES = ("/dev/zero", "/SYSV", "/memfd:", "/dev/shm/", "[anon_shmem")

Mapping = namedtuple("Mapping", "start end kind name")


class _ProcessGone(Exception):
    """The recorded process exited; the recording ends with what it holds."""


def record(*, pid=None, command=None, output, interval_ms=None, duration_s=None,
           include_shared=False, include_file_dirty=False, description=None,
           write_tracking="auto", on_snapshot=None):
    """Record process `pid`, or run `command` (a list of argv) and record it,
    into the recording file `output`; return a summary dict.

    Without interval_ms and duration_s a pid gets one snapshot.  Otherwise a
    snapshot is taken every interval_ms (default 1000) until duration_s has
    passed, the process exits, or Ctrl-C; a command is always recorded that
    way and is killed (SIGTERM, SIGKILL 5 s later) if it is still running
    when the recording ends.  A pid is left running.  write_tracking is
    "auto", "soft-dirty" (an error where the kernel lacks it) or "content".
    on_snapshot(count, ts_ns, pages), if given, is called after each snapshot
    once the process runs again.
    """
    if (pid is None) == (command is None):
        raise ConfigError("give exactly one of a pid or a command to record")
    if command is not None and not command:
        raise ConfigError("the command to record is empty")
    if pid is not None and not 0 < pid <= PID_MAX_LIMIT:
        raise ConfigError(f"invalid pid {pid}: a pid is 1..{PID_MAX_LIMIT}")
    if pid == os.getpid():
        raise ConfigError("the recorder cannot record itself")
    if interval_ms is not None and interval_ms <= 0:
        raise ConfigError(f"interval must be positive, not {interval_ms} ms")
    if duration_s is not None and not 0 <= duration_s <= MAX_DURATION_S:
        raise ConfigError(f"duration must be 0 to {MAX_DURATION_S} s, not {duration_s}")
    if write_tracking not in WRITE_TRACKING:
        raise ConfigError(f"write tracking '{write_tracking}' is not one of "
                          f"{', '.join(WRITE_TRACKING)}")
    if not os.path.exists("/proc/self/pagemap"):
        raise UserError("this kernel has no /proc/PID/pagemap (CONFIG_PROC_PAGE_MONITOR is off)")
    page_size = os.sysconf("SC_PAGE_SIZE")
    if page_size not in PAGE_SIZES:
        raise UserError(f"page size {page_size} cannot be recorded (only {PAGE_SIZES})")
    soft_dirty_here = write_tracking != "content" and soft_dirty_available()
    if write_tracking == "soft-dirty" and not soft_dirty_here:
        raise UserError("this kernel does not track soft-dirty pages (CONFIG_MEM_SOFT_DIRTY "
                        "is off); record with content comparison instead")
    timed = command is not None or interval_ms is not None or duration_s is not None
    soft_dirty = timed and soft_dirty_here      # one snapshot leaves the bits alone
    interval_ns = int((interval_ms or DEFAULT_INTERVAL_MS) * 1_000_000)
    duration_ns = None if duration_s is None else int(duration_s * 1_000_000_000)

    child = _start(command) if command is not None else None
    process = None
    try:
        process = _Process.of_child(child) if child else _Process(pid)
        try:
            argv = list(command) if command is not None else process.argv()
        except _ProcessGone:
            raise UserError(f"process {process.pid} has exited") from None
        try:
            writer = RecordingWriter(
                output, _describe(process, description, include_shared, include_file_dirty,
                                  timed and interval_ns),
                page_size, pid=process.pid, command=_fit_command(argv))
        except OSError as error:
            raise UserError(f"cannot write {os.fspath(output)}: {error.strerror}") from None
        with writer, _stop_requests() as stop_requested:
            ended, swapped_missed = _take_snapshots(
                process, writer, page_size, include_shared, include_file_dirty, soft_dirty,
                timed, interval_ns, duration_ns, stop_requested, on_snapshot)
    finally:
        if process is not None:
            process.close()
        exit_status = _finish(child) if child else None
    return {
        "output": os.fspath(output),
        "pid": process.pid,
        "command": argv,
        "snapshots": writer.snapshots,
        "images": writer.images,
        "bytes": os.path.getsize(output),
        "ended": ended,
        "write_tracking": "soft-dirty" if soft_dirty else "content",
        "access_tracking": None,
        "swapped_pages_missed": swapped_missed,
        "exit_status": exit_status,
    }


def soft_dirty_available():
    """Whether the kernel keeps soft-dirty bits, tried on a page of our own:
    after clear_refs 4 its bit 55 must be clear, and set again once written."""
    page_size = os.sysconf("SC_PAGE_SIZE")
    page = mmap.mmap(-1, page_size)
    try:
        page[0] = 1
        address = ctypes.addressof(ctypes.c_char.from_buffer(page))
        with open("/proc/self/pagemap", "rb", buffering=0) as pagemap:
            def soft_dirty():
                entry = int.from_bytes(os.pread(pagemap.fileno(), 8,
                                                address // page_size * 8), "little")
                return bool(entry & PM_SOFT_DIRTY)
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("4")
            cleared = not soft_dirty()
            page[0] = 2
            return cleared and soft_dirty()
    except OSError:
        return False
    finally:
        page.close()


def parse_maps(text, include_shared=False, include_file_dirty=False):
    """The mappings of a /proc/PID/maps text that a recording keeps."""
    mappings = []
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        span, perms = fields[0], fields[1]
        name = fields[5] if len(fields) > 5 else ""
        start, end = (int(address, 16) for address in span.split("-"))
        if perms[1] != "w":
            continue
        if perms[3] == "p":
            if name in ("", "[heap]") or name.startswith(("[stack", "[anon:")):
                mappings.append(Mapping(start, end, ANONYMOUS, name))
            elif include_file_dirty and not name.startswith("["):
                mappings.append(Mapping(start, end, FILE_DIRTY, name))
        elif include_shared and name.startswith(SHMEM_NAMES):
            mappings.append(Mapping(start, end, SHARED, name))
    return mappings


def classify(entries, kind, soft_dirty):
    """Masks over a mapping's pagemap entries: (captured, swapped, written).

    Captured pages are present; in a private file mapping only those the
    process has modified, which are anonymous copies (bit 61 clear).
    Written (soft-dirty) is None unless the kernel's soft-dirty bits are used.
    """
    present = (entries & PM_PRESENT) != 0
    if kind == FILE_DIRTY:
        present &= (entries & PM_FILE) == 0
    swapped = (entries & PM_SWAPPED) != 0
    written = present & ((entries & PM_SOFT_DIRTY) != 0) if soft_dirty else None
    return present, swapped, written


class _Process:
    """A process watched through a pidfd, so its exit is seen at once and a
    recycled pid can never be signalled by mistake."""

    def __init__(self, pid):
        self.pid = pid
        self.name = "?"
        try:
            self.pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            raise UserError(f"no process {pid}") from None
        except OSError:                 # the id of a thread other than a process's first
            raise UserError(f"{pid} is not a process id (a thread's id?)") from None
        try:
            with self.procfs(), open(f"/proc/{pid}/comm") as comm:
                self.name = comm.read().strip()
            if self.exited():
                raise _ProcessGone()
            self.maps()
            with self.procfs():
                for path in ("pagemap", "mem"):
                    os.close(os.open(f"/proc/{pid}/{path}", os.O_RDONLY))
        except _ProcessGone:
            self.close()
            raise UserError(f"process {pid} has exited") from None
        except BaseException:
            self.close()
            raise

    @classmethod
    def of_child(cls, child):
        """The process of a command just started, which may already have ended."""
        try:
            return cls(child.pid)
        except UserError:
            if child.poll() is None:
                raise
            message = (f"{child.args[0]} exited (status {child.returncode}) before its "
                       "first snapshot")
            if child.returncode:
                raise CommandFailed(message, shell_status(child.returncode)) from None
            raise UserError(message) from None

    def close(self):
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def exited(self, timeout=0):
        """Whether the process has exited, waiting up to `timeout` seconds for it."""
        readable, _, _ = select.select([self.pidfd], [], [], timeout)
        return bool(readable)

    def argv(self):
        with self.procfs(), open(f"/proc/{self.pid}/cmdline", "rb") as cmdline:
            # Programs that rewrite their title (postgres) pad it with NULs.
            return [os.fsdecode(arg) for arg in cmdline.read().rstrip(b"\0").split(b"\0")]

    def maps(self):
        with self.procfs(), open(f"/proc/{self.pid}/maps") as maps:
            return maps.read()

    @contextmanager
    def procfs(self):
        """Turn procfs failures into: the process is gone, or a one-line UserError."""
        try:
            yield
        except (FileNotFoundError, ProcessLookupError):
            raise _ProcessGone() from None
        except PermissionError:
            raise UserError(
                f"cannot record process {self.pid} ({self.name}): permission denied; recording "
                "needs root or ptrace rights over the process (the same user id with "
                "/proc/sys/kernel/yama/ptrace_scope 0, or CAP_SYS_PTRACE)") from None
        except OSError as error:
            if self.exited():
                raise _ProcessGone() from None
            raise UserError(f"cannot record process {self.pid} ({self.name}): "
                            f"{error.strerror}") from None

    @contextmanager
    def stopped(self):
        """Hold the process stopped; continue it afterwards, whatever happens,
        unless it was already stopped (by a user or a debugger) before."""
        if self._thread_states() <= {"T", "t"}:
            yield
            return
        try:
            # Sent inside the try: a signal that unwinds us right after the
            # SIGSTOP must still be followed by the SIGCONT.
            with self.procfs():
                signal.pidfd_send_signal(self.pidfd, signal.SIGSTOP)
            self._wait_stopped()
            yield
        finally:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def _wait_stopped(self):
        """Wait until every thread has stopped, or STOP_TIMEOUT_S (a thread in
        uninterruptible sleep stops only when it leaves it; we go on then)."""
        deadline = time.monotonic() + STOP_TIMEOUT_S
        pause = 0.0005
        while not self._thread_states() <= {"T", "t"} and time.monotonic() < deadline:
            if self.exited(pause):
                raise _ProcessGone()
            pause = min(2 * pause, 0.01)

    def _thread_states(self):
        """The set of scheduler states of the process's threads (see proc(5))."""
        states = set()
        with self.procfs():
            for tid in os.listdir(f"/proc/{self.pid}/task"):
                try:
                    with open(f"/proc/{self.pid}/task/{tid}/stat", "rb") as stat:
                        states.add(chr(stat.read().rsplit(b")", 1)[1][1]))
                except FileNotFoundError:
                    continue            # the thread exited meanwhile
        if not states or states <= {"Z", "X"}:
            raise _ProcessGone()
        return states


def _take_snapshots(process, writer, page_size, include_shared, include_file_dirty, soft_dirty,
                    timed, interval_ns, duration_ns, stop_requested, on_snapshot):
    """The recording loop; returns (why it ended, most swapped pages missed)."""
    start = time.monotonic_ns()
    previous = {}
    swapped_missed = 0
    tick = 0
    while True:
        try:
            with process.stopped():
                ts_ns = time.monotonic_ns() - start
                pages, written, missed = _scan(process, writer, page_size, include_shared,
                                               include_file_dirty, soft_dirty, previous)
                if process.exited():
                    raise _ProcessGone()
                writer.snapshot_digests(ts_ns, pages, written)
        except _ProcessGone:
            return "process exited", swapped_missed
        previous = pages
        swapped_missed = max(swapped_missed, missed)
        if on_snapshot:
            on_snapshot(writer.snapshots, ts_ns, len(pages))
        if not timed:
            return "single snapshot", swapped_missed
        elapsed = time.monotonic_ns() - start
        tick = max(tick + 1, elapsed // interval_ns + 1)
        if duration_ns is not None and tick * interval_ns > duration_ns:
            return "duration", swapped_missed
        while (wait := start + tick * interval_ns - time.monotonic_ns()) > 0:
            if stop_requested():
                return "interrupted", swapped_missed
            if process.exited(min(wait / 1e9, STOP_FLAG_POLL_S)):
                return "process exited", swapped_missed
        if stop_requested():
            return "interrupted", swapped_missed


def _scan(process, writer, page_size, include_shared, include_file_dirty, soft_dirty, previous):
    """Read one snapshot of the stopped process, storing new page images in
    the writer: returns ({vaddr: digest}, soft-dirty written set or None,
    swapped-out pages whose content no earlier snapshot holds)."""
    pages = {}
    written = set() if soft_dirty else None
    missed = 0
    pid = process.pid
    mappings = parse_maps(process.maps(), include_shared, include_file_dirty)
    with process.procfs():
        pagemap = open(f"/proc/{pid}/pagemap", "rb", buffering=0)
        mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
    with pagemap, mem:
        for mapping in mappings:
            for chunk in range(mapping.start, mapping.end, PAGEMAP_CHUNK_PAGES * page_size):
                count = min(PAGEMAP_CHUNK_PAGES, (mapping.end - chunk) // page_size)
                with process.procfs():
                    raw = os.pread(pagemap.fileno(), count * 8, chunk // page_size * 8)
                if len(raw) < count * 8:
                    raise _ProcessGone()    # the pagemap of a process whose memory is gone
                present, swapped, dirty = classify(np.frombuffer(raw, "<u8"), mapping.kind,
                                                   soft_dirty)
                for index in np.flatnonzero(swapped).tolist():
                    vaddr = chunk + index * page_size
                    if vaddr in previous:
                        pages[vaddr] = previous[vaddr]
                    else:
                        missed += 1
                if dirty is not None:
                    written.update((chunk + np.flatnonzero(dirty) * page_size).tolist())
                for first, length in _runs(np.flatnonzero(present)):
                    start = chunk + first * page_size
                    _capture_run(process, mem, start, start + length * page_size, page_size,
                                 writer, pages)
    if soft_dirty:
        with process.procfs(), open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
            clear_refs.write("4")
        written &= pages.keys()     # present pages whose read failed are not in the snapshot
    return pages, written, missed


def _runs(indices):
    """(first, length) of each run of consecutive integers in sorted `indices`."""
    if not len(indices):
        return []
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    firsts = np.concatenate(([0], breaks))
    lasts = np.concatenate((breaks, [len(indices)]))
    return zip(indices[firsts].tolist(), (lasts - firsts).tolist())


def _capture_run(process, mem, start, end, page_size, writer, pages):
    """Store the pages of a present run [start, end), read MEM_READ_PAGES at a
    time, into `pages`; a page the kernel cannot read (EIO) is skipped."""
    position = start
    while position < end:
        with process.procfs():
            try:
                data = os.pread(mem.fileno(), min(end - position, MEM_READ_PAGES * page_size),
                                position)
            except OSError as error:
                if error.errno not in (errno.EIO, errno.EFAULT):
                    raise
                data = b""
        whole = len(data) - len(data) % page_size
        view = memoryview(data)
        for offset in range(0, whole, page_size):
            pages[position + offset] = writer.add_image(view[offset:offset + page_size])
        position += whole or page_size     # nothing read: skip the page that failed


@contextmanager
def _stop_requests():
    """While recording, Ctrl-C asks the loop to stop between snapshots, so the
    file is always closed with complete snapshots; yields the question."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: requested.set())
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def _start(command):
    try:
        return subprocess.Popen(command)
    except OSError as error:
        raise UserError(f"cannot run {command[0]}: {error.strerror}") from None


def shell_status(returncode):
    """A child's exit status as a shell gives it: 128 + N when signal N ended it."""
    return 128 - returncode if returncode < 0 else returncode


def _finish(child):
    """End a recorded command that is still running; reap it; its exit status."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
    return child.wait()


def _describe(process, description, include_shared, include_file_dirty, interval_ns):
    if description is not None:
        return description
    kept = ["private anonymous memory"]
    if include_shared:
        kept.append("shared memory")
    if include_file_dirty:
        kept.append("modified private file pages")
    when = f"every {interval_ns / 1e6:g} ms" if interval_ns else "once"
    return (f"{', '.join(kept)} of process {process.pid} ({process.name}), "
            f"recorded {when} on Linux {os.uname().release}")


def _fit_command(argv):
    """The leading arguments of argv that fit the recording's command field."""
    size = -1
    for count, arg in enumerate(argv):
        size += len(os.fsencode(arg)) + 1
        if size > MAX_COMMAND:
            return argv[:count]
    return argv
