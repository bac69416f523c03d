"""The running kernel beside the models: what its zswap and zram report, and
a check that writes a page set to a real zram device and holds its mm_stat
against zswapsim's Zram.

`read_host` gathers zswap's module parameters, its debugfs counters, the
swap lines of /proc/vmstat and every zram device's mm_stat, io_stat,
bd_stat and comp_algorithm, under the names zswapsim uses (which are the
kernel's: mm_stat_show and io_stat_show print their fields in the order of
zram.MM_STAT, IO_STAT and BD_STAT in 6.1, 6.12 and 6.18 alike; since 6.4
io_stat's invalid_io is a literal 0).  A file that is missing or unreadable
becomes one "unavailable: ..." value, never an error: debugfs is often not
mounted, zswap may be built out, zram may not be loaded.

`pick_kernel` maps a release to the modelled kernel `--kernel host` stands
for: the newest profile at or below it (profiles.nearest_profile, so a new
profile is picked up here as soon as it is declared).

`kernel_check` needs root and the zram module.  It hot-adds one device,
sets its compressor and disksize, writes the pages one 4096-byte O_DIRECT
write per page at page offsets (as the fidelity data was made), reads
mm_stat after every write (what each page added to compr_data_size is the
kernel's own stored length, which the model can then be fed, so only our
write path and zsmalloc are on trial) and hot-removes the device again, in
a `finally` that SIGTERM and SIGHUP reach too (and that no signal cuts in
half).  It touches no device but the index hot_add returned.  Every path
goes through `root` (and `dev` for the device node) so that the tests can
run all of it against a fake tree.
"""

import contextlib
import mmap
import os
import re
import signal
import time

from .compress import GivenLengths, get_compressor
from .engine import zram_class
from .errors import ConfigError, UserError
from .fidelity import KERNEL_SIZES, OURS
from .memory import PAGE_SIZE
from .profiles import PROFILES
from .profiles import nearest_profile as pick_kernel
from .trace import STORE, TraceReader
from .trace.format import MAGIC as TRACE_MAGIC
from .trace.importer import raw_pages
from .zram import BD_STAT, IO_STAT, MM_STAT

ZRAM_FILES = {"mm_stat": MM_STAT, "io_stat": IO_STAT, "bd_stat": BD_STAT}
VMSTAT_LINE = re.compile(r"(zswp\w*|pswp\w*|swp\w*_zero)\s+(\d+)$")

OSRELEASE = "proc/sys/kernel/osrelease"
VMSTAT = "proc/vmstat"
ZSWAP_PARAMETERS = "sys/module/zswap/parameters"
ZSWAP_DEBUGFS = "sys/kernel/debug/zswap"
SYS_BLOCK = "sys/block"
ZRAM_CONTROL = "sys/class/zram-control"
# disksize = (pages + 256) x 4096, as the kernel reference data was made.
DISKSIZE_SLACK_PAGES = 256
DEVICE_NODE_WAIT_S = 2.0


class Refused(UserError):
    """kernel-check will not run on this machine; the message says why."""


# -- releases and profiles -------------------------------------------------

def host_kernel(model, root="/"):
    """The profile `--kernel host` means on this machine, or a ConfigError."""
    release = running_release(root)
    profile, note = pick_kernel(model, release)
    if profile is None:
        raise ConfigError(f"--kernel host: kernel {release} is {note}")
    return profile


def running_release(root="/"):
    """The release under `root` (/proc/sys/kernel/osrelease, as uname -r)."""
    try:
        return _read(root, OSRELEASE).strip()
    except OSError:
        if os.path.abspath(root) != "/":
            raise
        return os.uname().release


# -- reading the kernel's files -------------------------------------------

def _path(root, relative):
    return os.path.join(root, relative)


def _read(root, relative):
    with open(_path(root, relative)) as f:
        return f.read()


def _unavailable(relative, exc, hint=""):
    reason = exc.strerror.lower() if exc.strerror else str(exc)
    return f"unavailable: /{relative}: {reason}{hint}"


def _named(names, text):
    """A stat line's numbers under the kernel's names; any the names do not
    cover (a newer kernel's extra fields) keep their position as the name."""
    values = [int(word) for word in text.split()]
    return {(names[i] if i < len(names) else f"field_{i + 1}"): value
            for i, value in enumerate(values)}


def _directory_values(root, relative, hint):
    """Every file of a sysfs or debugfs directory, a number where it is one."""
    try:
        names = sorted(os.listdir(_path(root, relative)))
    except OSError as exc:
        return _unavailable(relative, exc, hint)
    values = {}
    for name in names:
        try:
            text = _read(root, os.path.join(relative, name)).strip()
        except OSError as exc:
            values[name] = _unavailable(os.path.join(relative, name), exc)
            continue
        values[name] = int(text) if text.isdigit() else text
    return values


def _vmstat(root):
    try:
        text = _read(root, VMSTAT)
    except OSError as exc:
        return _unavailable(VMSTAT, exc)
    return {match[1]: int(match[2]) for match in map(VMSTAT_LINE.match, text.splitlines())
            if match}


def parse_comp_algorithm(text):
    """comp_algorithm_show's line, "lzo [lzo-rle] lz4": (selected, offered)."""
    offered = [word.strip("[]") for word in text.split()]
    selected = next((word.strip("[]") for word in text.split() if word.startswith("[")), None)
    return selected, offered


def _zram_device(root, name):
    device = {}
    relative = os.path.join(SYS_BLOCK, name, "comp_algorithm")
    try:
        selected, offered = parse_comp_algorithm(_read(root, relative))
        device["comp_algorithm"] = {"selected": selected, "offered": offered}
    except OSError as exc:
        device["comp_algorithm"] = _unavailable(relative, exc)
    for stat, names in ZRAM_FILES.items():
        relative = os.path.join(SYS_BLOCK, name, stat)
        try:
            device[stat] = _named(names, _read(root, relative))
        except OSError as exc:
            hint = " (CONFIG_ZRAM_WRITEBACK off)" if stat == "bd_stat" else ""
            device[stat] = _unavailable(relative, exc, hint)
    return device


def _zram_devices(root):
    try:
        names = [name for name in os.listdir(_path(root, SYS_BLOCK))
                 if re.fullmatch(r"zram\d+", name)]
    except OSError as exc:
        return _unavailable(SYS_BLOCK, exc)
    if not names:
        return f"unavailable: no /{SYS_BLOCK}/zram* devices (zram not loaded)"
    return {name: _zram_device(root, name)
            for name in sorted(names, key=lambda name: int(name[len("zram"):]))}


def read_host(root="/"):
    """Everything zswapsim can hold its models against on this kernel."""
    try:
        release = running_release(root)
    except OSError as exc:
        release = _unavailable(OSRELEASE, exc)
    profiles = {}
    for model in PROFILES:
        try:
            profile, note = pick_kernel(model, release)
        except ConfigError as exc:
            profile, note = None, str(exc)
        profiles[model] = {"kernel": profile, "note": note}
    return {
        "release": release,
        "profiles": profiles,
        "zswap_parameters": _directory_values(root, ZSWAP_PARAMETERS,
                                              " (no zswap in this kernel)"),
        "zswap_debugfs": _directory_values(root, ZSWAP_DEBUGFS,
                                           " (debugfs not mounted or not readable, or zswap"
                                           " not enabled since boot: it sets up on first"
                                           " enabling)"),
        "vmstat": _vmstat(root),
        "zram": _zram_devices(root),
    }


# -- kernel-check: one zram device of our own ------------------------------

def load_pages(path):
    """The pages to write: a trace's stored images in store order, or a raw
    dump (plain or zstd, as fidelity's *.pages.zst)."""
    with open(path, "rb") as f:
        is_trace = f.read(len(TRACE_MAGIC)) == TRACE_MAGIC
    if is_trace:
        pages = [image for op, _type, _offset, image, _ts in TraceReader(path) if op == STORE]
    else:
        pages = list(raw_pages(path))
    if not pages:
        raise ConfigError(f"{path}: no pages to write")
    return pages


class _Stops:
    """^C, SIGTERM and SIGHUP raise KeyboardInterrupt, so that the `finally`
    removing our device runs whichever way the run is stopped; while held
    (a device being added or removed) a stop waits until the step is done.
    A flag, not a signal mask: Python runs handlers on the main thread
    whichever thread the kernel delivered the signal to."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.holding = False
        self.pending = None
        self.previous = {}

    def __enter__(self):
        try:
            for signum in self.SIGNALS:
                self.previous[signum] = signal.signal(signum, self._arrived)
        except ValueError:              # not the main thread: signals stay as they are
            pass
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _arrived(self, signum, frame):
        if self.holding:
            self.pending = signum
            return
        raise KeyboardInterrupt(signal.Signals(signum).name)

    @contextlib.contextmanager
    def held(self):
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            if self.pending is not None:
                signum, self.pending = self.pending, None
                raise KeyboardInterrupt(signal.Signals(signum).name)


def _hot_add(root):
    relative = os.path.join(ZRAM_CONTROL, "hot_add")
    try:
        text = _read(root, relative)
    except OSError as exc:
        raise Refused(f"no free zram device could be added (/{relative}: "
                      f"{exc.strerror or exc})") from None
    if not text.strip().isdigit():
        raise Refused(f"no free zram device could be added (/{relative} said {text.strip()!r})")
    return int(text)


def _hot_remove(root, index):
    relative = os.path.join(ZRAM_CONTROL, "hot_remove")
    try:
        with open(_path(root, relative), "w") as f:
            f.write(str(index))
    except OSError as exc:
        raise UserError(f"zram{index} could not be removed ({exc.strerror}); remove it with "
                        f"'echo {index} > /{relative}'") from None


def _set(root, device, attribute, value):
    relative = os.path.join(SYS_BLOCK, device, attribute)
    try:
        with open(_path(root, relative), "w") as f:
            f.write(value)
    except OSError as exc:
        raise UserError(f"/{relative}: cannot set {value!r} ({exc.strerror})") from None


def _write_pages(node, pages, after_each):
    """One 4096-byte O_DIRECT write per page at its page offset: each is one
    bio, so zram sees whole pages in order and the page cache keeps none.
    `after_each(index)` runs once the write of page `index` is done."""
    deadline = time.monotonic() + DEVICE_NODE_WAIT_S
    while not os.path.exists(node) and time.monotonic() < deadline:
        time.sleep(0.01)                # udev may still be creating the node
    buffer = mmap.mmap(-1, PAGE_SIZE)   # page-aligned, as O_DIRECT needs
    fd = os.open(node, os.O_WRONLY | os.O_DIRECT)
    try:
        for index, page in enumerate(pages):
            buffer[:] = page
            if os.pwrite(fd, buffer, index * PAGE_SIZE) != PAGE_SIZE:
                raise UserError(f"{node}: short write at page {index}")
            after_each(index)
    finally:
        os.close(fd)
        buffer.close()


def _mm_stat(root, device):
    return _named(MM_STAT, _read(root, os.path.join(SYS_BLOCK, device, "mm_stat")))


def _check_may_run(root, euid):
    if euid != 0:
        raise Refused("kernel-check needs root: it creates and removes a zram device")
    if not os.path.exists(_path(root, os.path.join(ZRAM_CONTROL, "hot_add"))):
        raise Refused(f"no zram module: /{ZRAM_CONTROL}/hot_add is missing (modprobe zram)")


def kernel_check(pages_path, compressor=None, root="/", dev="/dev", euid=None):
    """Write the page set to a zram device of our own and hold its mm_stat
    against the model's, one row per field and mode: "kernel sizes" feeds
    the model the length each page added to compr_data_size (mm_stat is
    read after every write, as the fidelity data was made), so only our
    write path and zsmalloc run and every row should agree; "ours" runs
    zswapsim's twin of the compressor, where it has one."""
    _check_may_run(root, os.geteuid() if euid is None else euid)
    pages = load_pages(pages_path)
    release = running_release(root)
    profile, note = pick_kernel("zram", release)
    disksize = (len(pages) + DISKSIZE_SLACK_PAGES) * PAGE_SIZE
    index = None
    with _Stops() as stops:
        try:
            with stops.held():          # no stop between hot_add and knowing the index
                index = _hot_add(root)
            device = f"zram{index}"
            selected, offered = parse_comp_algorithm(
                _read(root, os.path.join(SYS_BLOCK, device, "comp_algorithm")))
            algorithm = compressor or ("lzo-rle" if "lzo-rle" in offered else selected)
            if algorithm not in offered:
                raise ConfigError(f"this kernel's zram has no compressor '{algorithm}'; "
                                  f"it offers: {', '.join(offered)}")
            _set(root, device, "comp_algorithm", algorithm)
            _set(root, device, "disksize", str(disksize))
            stored = [0]                # compr_data_size after each write
            _write_pages(os.path.join(dev, device), pages,
                         lambda _index: stored.append(_mm_stat(root, device)["compr_data_size"]))
            kernel = _mm_stat(root, device)
        finally:
            if index is not None:
                with stops.held():
                    _hot_remove(root, index)
    lengths = [after - before for before, after in zip(stored, stored[1:])]
    models = _models(pages, lengths, disksize, algorithm, profile)
    rows = [_row(mode, field, simulated[field], kernel[field])
            for mode, simulated in models.items() for field in MM_STAT]
    return {"release": release, "profile": profile, "note": note, "device": device,
            "compressor": algorithm, "pages": len(pages), "disksize": disksize,
            "modes": list(models), "mm_stat": kernel, "rows": rows}


def _models(pages, lengths, disksize, algorithm, profile):
    """mode -> the model's mm_stat after the same writes."""
    if profile is None:
        return {}
    compressors = {KERNEL_SIZES: GivenLengths(algorithm, pages, lengths)}
    try:
        compressors[OURS] = get_compressor(algorithm, kernel=profile, user="zram")
    except ConfigError:
        pass                            # a compressor this kernel lacks: its sizes alone
    results = {}
    for mode, compressor in compressors.items():
        device = zram_class()(disksize, compressor=compressor, kernel=profile)
        for index, page in enumerate(pages):
            device.write(index, page)
        results[mode] = device.mm_stat()
    return results


def _row(mode, field, simulated, kernel):
    difference = simulated - kernel
    return {"mode": mode, "field": field, "simulated": simulated, "kernel": kernel,
            "difference": difference,
            "percent": 100.0 * difference / kernel if kernel else 0.0}
