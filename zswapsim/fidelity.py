"""Check the models against what a real kernel reported for the same pages.

A fidelity folder (the repository ships one as fidelity/) holds, per page
set, NAME.kernel.json or NAME.kernel.json.zst (the counters a kernel
reported, laid out as fidelity/README.md describes) and the page file it
names (N raw 4096-byte pages, zstd-compressed); sub-folders such as
linux-6.12/ hold the same sets run through other kernels.  Every case whose
model (zram or zswap) has a profile for the set's kernel line is run twice
where it can be: with the kernel's own per-page compressed lengths (zram's
per_page_compr_size; for zswap with lz4, kernel_lz4_len), which must match
exactly since only our write paths and allocators run; and end to end with
zswapsim's own compressor of that name for that kernel (get_compressor),
whose differences are measured, and are none today.  Cases with no profile
for their kernel are listed as skipped, never run with the wrong model.
zswap cases are held to 6.1's four debugfs fields on the allocator-LRU
kernels, and to every debugfs and vmstat counter the kernel
reported from 6.12 (zswap.reported_counters).  These rows are exact checks
(`check` "exact").

The zswap_limited runs (a small max_pool_percent in a small guest, so the
pool fills and the shrink work writes back) replay as the kernel took
them: RAM of mem_total_kb, the run's max_pool_percent and
accept_threshold_percent, every page stored once in page order at swap
offsets 1..N, no loads, and the queued shrink work run at the end, as the
kernel's worker runs before the counters are read.  When the worker ran
depends on the kernel's scheduler, which does not repeat itself from boot
to boot, so each run carries the `range` of every counter over its
repeated boots, and the rows are range checks (`check` "range"): a
counter's difference is 0 inside [min, max] widened by RANGE_SLACK, else
its distance to the nearer bound.  pool_limit_hit moves the most from boot
to boot and is reported, not held (`held` false).  The worker's timing is
the profile's shrink_delay, shrink_step_cost and shrink_writeback_cost
(ZswapConfig): when it starts, and how long its passes take while the
stores go on; the fit, below, says how they were chosen.

The files are data from outside, so reading them is bounded: a file is
decompressed as a stream and refused once it passes the size it may have
(a kernel JSON 64 MiB, a page file the npages its JSON names, at most 2^18),
the pages are checked against pages_sha256, and every field a run reads is
checked before any case starts.  Each problem is one FidelityError line.
"""

import hashlib
import json
import os
import re
import stat
from pathlib import Path

import zstandard

from .compress import GivenLengths, get_compressor
from .config import DEFAULT
from .engine import zram_class, zswap_class
from .errors import ConfigError, FidelityError
from .memory import PAGE_SIZE
from .profiles import ALLOCATOR_LRU, ZRAM_PROFILES, ZSWAP_PROFILES
from .zpool import known_pools
from .zswap import reported_counters

MAX_PAGES = 1 << 18                 # pages in one set (1 GiB of page images)
MAX_KERNEL_JSON = 64 << 20          # bytes of one NAME.kernel.json, decompressed
READ_CHUNK = 1 << 20                # bytes decompressed per step
SET_SUFFIXES = (".kernel.json", ".kernel.json.zst")
RELEASE = re.compile(r"(\d+)\.(\d+)[!-~]*")     # uname -r: "6.1.0-56-amd64"

ZRAM_FIELDS = ("orig_data_size", "compr_data_size", "mem_used_total", "same_pages",
               "huge_pages")
ZSWAP_FIELDS = ("pool_total_size", "stored_pages", "same_filled_pages", "reject_compress_poor")
KERNEL_SIZES, OURS = "kernel sizes", "ours"
EXACT, RANGE = "exact", "range"

# zswap_limited: the counters held to the kernel's range, and the one only
# reported; the widening of a range: RANGE_SLACK of its upper end or
# SLACK_PAGES pages (of bytes for pool_total_size), whichever is more.
LIMITED_HELD = ("pool_total_size", "stored_pages", "pswpout", "written_back_pages")
LIMITED_REPORTED = ("pool_limit_hit",)
LIMITED_VMSTAT = ("pswpout", "zswpout")         # reported by the 6.1 runs too
RANGE_SLACK = 0.02
SLACK_PAGES = 8
BYTE_COUNTERS = ("pool_total_size",)

# How each profile's worker timing was chosen (the fit): replayed on the
# limited runs (kernel sizes), counting the held counters inside their
# widened ranges.  6.1's held counters do not depend on it (its shrink work
# is one zpool_shrink, and every store it waits through is refused anyway),
# so 6.1 stays at 0, 0, 0.  6.12 holds all 16 with the work starting at the
# next swap-out (K 0), a pass a tenth of a swap-out (1 tick) and a pass
# that writes back four and a half (45 ticks): on the grid K 0, 1, 2, 4 x
# pass 0..3 x writeback 30..60 by 5, 43 of the 112 points hold all 16 and
# none fewer than 9; a worker that runs whole at its start holds at most 10
# (at K 9: written_back_pages 1.5-2.5 times the kernel's), because the
# real worker writes back while the stores go on and the pool stays full,
# refusing, until it is done.  The counts move in steps, as the kernel's
# do (a run ends where a sweep of the LRU ends): two of the model's four
# written_back_pages equal a real boot's (194 and 1,190).  6.18's worker
# wrote nothing back: at 6.12's pace it holds all 8, every counter
# exactly, from K 41 on (K 30-40: 4; K 0-20: none), the worker starting
# too late after each refusal to get past the referenced entries; 6.12's
# K 0 would hold none of them.


def zswap_fields(profile):
    """The counters a static zswap case of `profile`'s kernel is held to."""
    return ZSWAP_FIELDS if profile.lru_owner == ALLOCATOR_LRU else reported_counters(profile)


def limited_fields(profile, counter_range):
    """The counters of a limited run reported against its range: every
    counter the kernel reported that the model has, held ones first."""
    model = reported_counters(profile) + tuple(
        name for name in LIMITED_VMSTAT if name not in reported_counters(profile))
    rest = [name for name in model if name not in LIMITED_HELD + LIMITED_REPORTED]
    return [name for name in (*LIMITED_HELD, *LIMITED_REPORTED, *rest)
            if name in counter_range]


def range_slack(field, high):
    """How far outside the kernel's [low, high] a counter still counts as in it."""
    pages = SLACK_PAGES * (PAGE_SIZE if field in BYTE_COUNTERS else 1)
    return max(RANGE_SLACK * high, pages)


def range_difference(field, value, low, high):
    """0 inside [low, high] widened by range_slack, else the distance to the
    nearer bound (negative below the range)."""
    slack = range_slack(field, high)
    if low - slack <= value <= high + slack:
        return 0
    return value - high if value > high else value - low


# -- reading the files -------------------------------------------------------

def read_kernel_json(path):
    """The counters of NAME.kernel.json[.zst] at `path`, with the fields
    every set has checked (see _check_layout)."""
    path = Path(path)
    if path.name.endswith(".zst"):
        data = b"".join(_zstd_chunks(path, MAX_KERNEL_JSON))
    else:
        data = _read_capped(path, MAX_KERNEL_JSON)
    try:
        kernel = json.loads(data)
    except (ValueError, RecursionError) as exc:      # JSONDecodeError, bad UTF-8, nesting
        raise FidelityError(f"{path}: not valid JSON ({exc})") from None
    _check_layout(path, kernel)
    return kernel


def pages_path(json_path, kernel):
    """Where the page file of a set is: pages_file, relative to its JSON."""
    return Path(json_path).parent / kernel["pages_file"]


def check_pages(path, npages, sha256=None):
    """Stream page file `path` through its checks without keeping it."""
    digest, size = hashlib.sha256(), 0
    for chunk in _zstd_chunks(path, npages * PAGE_SIZE):
        digest.update(chunk)
        size += len(chunk)
    _check_content(path, npages, size, digest, sha256)


def read_pages(path, npages, sha256=None):
    """The npages page images of zstd page file `path`."""
    raw = b"".join(_zstd_chunks(path, npages * PAGE_SIZE))
    _check_content(path, npages, len(raw), hashlib.sha256(raw), sha256)
    return [raw[i:i + PAGE_SIZE] for i in range(0, len(raw), PAGE_SIZE)]


def load_set(json_path):
    """(kernel counters, list of page images) of one set."""
    kernel = read_kernel_json(json_path)
    pages = read_pages(pages_path(json_path, kernel), kernel["npages"],
                       kernel.get("pages_sha256"))
    return kernel, pages


def _open_regular(path):
    """`path` opened for reading; a FIFO or device (endless, or never
    ready) is refused before it is opened."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise FidelityError(f"{path}: not a regular file")
        return open(path, "rb")
    except OSError as exc:
        raise FidelityError(f"{path}: cannot read it ({exc.strerror})") from None


def _read_capped(path, limit):
    with _open_regular(path) as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise FidelityError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(data) > limit:
        raise FidelityError(f"{path}: larger than {limit:,} bytes; refused")
    return data


def _zstd_chunks(path, limit):
    """Yield the decompressed content of zstd file `path` piece by piece,
    refusing it as soon as it passes `limit` bytes: a small file that
    would expand to gigabytes (a zstd bomb) costs `limit` bytes, no more."""
    size = 0
    with _open_regular(path) as f:
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
            while chunk := reader.read(min(READ_CHUNK, limit + 1 - size)):
                size += len(chunk)
                if size > limit:
                    raise FidelityError(f"{path}: decompresses to more than {limit:,} bytes; "
                                        "refused")
                yield chunk
        except OSError as exc:
            raise FidelityError(f"{path}: cannot read it ({exc.strerror})") from None
        except zstandard.ZstdError as exc:
            raise FidelityError(f"{path}: not a valid zstd file ({exc})") from None


def _check_content(path, npages, size, digest, sha256):
    # A cut-off zstd file decodes to fewer bytes without an error of its own.
    if size != npages * PAGE_SIZE:
        raise FidelityError(f"{path}: holds {size:,} bytes, not the {npages * PAGE_SIZE:,} of "
                            f"{npages} pages (truncated, or not this set's file)")
    if sha256 is not None and digest.hexdigest() != sha256:
        raise FidelityError(f"{path}: its SHA-256 is {digest.hexdigest()}, "
                            f"not the pages_sha256 {sha256}")


# -- checking the fields -----------------------------------------------------

def _check_layout(path, kernel):
    """The fields every set has, whichever kernel it comes from."""
    if not isinstance(kernel, dict):
        raise FidelityError(f"{path}: the JSON is {_kind(kernel)}, not an object")
    _value(path, kernel, "", "pages_file", str)
    npages = _value(path, kernel, "", "npages", int, 1, MAX_PAGES)
    if _value(path, kernel, "", "page_size", int, required=False) not in (None, PAGE_SIZE):
        raise FidelityError(f"{path}: page_size is {kernel['page_size']}; "
                            f"zswapsim models {PAGE_SIZE}-byte pages")
    sha256 = _value(path, kernel, "", "pages_sha256", str, required=False)
    if sha256 is not None and not re.fullmatch("[0-9a-f]{64}", sha256):
        raise FidelityError(f"{path}: pages_sha256 {sha256!r} is not 64 hex digits")
    release = _value(path, kernel, "", "kernel", str)
    if not RELEASE.fullmatch(release):
        raise FidelityError(f"{path}: kernel {release!r} is not a release as uname -r gives it")
    for alg, case in _objects(path, kernel.get("zram"), "zram"):
        _lengths(path, case, f"zram.{alg}", "per_page_compr_size", npages)
    for pool, by_compressor in _objects(path, kernel.get("zswap"), "zswap"):
        _objects(path, by_compressor, f"zswap.{pool}")
    lz4 = _value(path, kernel, "", "kernel_lz4_len", dict, required=False) or {}
    _lengths(path, lz4, "kernel_lz4_len", "max_out_4096", npages)


def _check_cases(path, kernel, line):
    """The fields a run of the `line` models reads, so none is missed mid-run."""
    npages = kernel["npages"]
    zram_cases = _objects(path, kernel.get("zram"), "zram") if line in ZRAM_PROFILES else []
    for alg, case in zram_cases:
        _value(path, case, f"zram.{alg}", "disksize", int, npages * PAGE_SIZE)
        for field in ZRAM_FIELDS:
            _value(path, case, f"zram.{alg}", field, int)
    if line not in ZSWAP_PROFILES:
        return
    for pool, by_compressor in _objects(path, kernel.get("zswap"), "zswap"):
        if pool not in known_pools():
            raise FidelityError(f"{path}: zswap.{pool}: unknown pool; known: "
                                f"{', '.join(known_pools())}")
        for comp, case in _objects(path, by_compressor, f"zswap.{pool}"):
            where = f"zswap.{pool}.{comp}"
            _value(path, case, where, "mem_total_kb", int, PAGE_SIZE // 1024)
            _value(path, case, where, "max_pool_percent", int, 0, 100)
            for field in zswap_fields(ZSWAP_PROFILES[line]):
                _value(path, case, where, field, int)
    for index, run in enumerate(_limited_runs(path, kernel)):
        where = f"zswap_limited[{index}]"
        pool = _value(path, run, where, "zpool", str)
        if pool not in known_pools():
            raise FidelityError(f"{path}: {where}.zpool: unknown pool {pool!r}; known: "
                                f"{', '.join(known_pools())}")
        _value(path, run, where, "compressor", str)
        _value(path, run, where, "mem_total_kb", int, PAGE_SIZE // 1024)
        _value(path, run, where, "max_pool_percent", int, 0, 100)
        _value(path, run, where, "accept_threshold_percent", int, 0, 100, required=False)
        counter_range = _value(path, run, where, "range", dict)
        for field in LIMITED_HELD + LIMITED_REPORTED:
            _value(path, counter_range, f"{where}.range", field, list)
        for field in limited_fields(ZSWAP_PROFILES[line], counter_range):
            bounds = counter_range[field]
            if len(bounds) != 2 or any(type(bound) is not int or bound < 0
                                       for bound in bounds) or bounds[0] > bounds[1]:
                raise FidelityError(f"{path}: {where}.range.{field} is {bounds!r}, not "
                                    "[min, max] of counts, min <= max")


def _limited_runs(path, kernel):
    """The zswap_limited list of a set (none: empty), each run an object."""
    runs = _value(path, kernel, "", "zswap_limited", list, required=False) or []
    for index, run in enumerate(runs):
        if not isinstance(run, dict):
            raise FidelityError(f"{path}: zswap_limited[{index}] is {_kind(run)}, "
                                "not an object")
    return runs


def _objects(path, value, where):
    """The (name, object) pairs of JSON object `value` (None: an absent
    one), each checked to be an object; `where` is its dotted name."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise FidelityError(f"{path}: {where} is {_kind(value)}, not an object")
    for name, item in value.items():
        if not isinstance(item, dict):
            raise FidelityError(f"{path}: {where}.{name} is {_kind(item)}, not an object")
    return list(value.items())


def _value(path, parent, where, key, kind, low=0, high=None, required=True):
    """parent[key] if it is of `kind` (and, for an integer, in low..high);
    `where` is parent's dotted name in the JSON, for the message."""
    name = f"{where}.{key}" if where else key
    if key not in parent:
        if required:
            raise FidelityError(f"{path}: no {name}")
        return None
    value = parent[key]
    if kind is int and type(value) is not int or not isinstance(value, kind):
        raise FidelityError(f"{path}: {name} is {_kind(value)}, not {_kind(kind())}")
    if kind is int and not (low <= value and (high is None or value <= high)):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise FidelityError(f"{path}: {name} is {value}, not {bounds}")
    return value


def _lengths(path, parent, where, key, npages):
    """A list of npages compressed lengths (0..PAGE_SIZE), if present."""
    lengths = _value(path, parent, where, key, list, required=False)
    if lengths is None:
        return
    if len(lengths) != npages:
        raise FidelityError(f"{path}: {where}.{key} has {len(lengths)} entries, "
                            f"not npages {npages}")
    for index, length in enumerate(lengths):
        if type(length) is not int or not 0 <= length <= PAGE_SIZE:
            raise FidelityError(f"{path}: {where}.{key}[{index}] is {length!r}, "
                                f"not a length in 0..{PAGE_SIZE}")


def _kind(value):
    """How JSON would name the type of `value`."""
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)


# -- running a folder --------------------------------------------------------

def find_sets(directory):
    """{set name: JSON path} of the folder and its sub-folders; a
    sub-folder's set is named SUB/NAME."""
    directory = Path(directory)
    sets = {}
    for pattern in ("*", "*/*"):
        for suffix in SET_SUFFIXES:
            for path in directory.glob(pattern + suffix):
                name = path.relative_to(directory).as_posix()[:-len(suffix)]
                if name in sets:
                    raise FidelityError(f"{directory}: {name} is there twice "
                                        f"({sets[name].name} and {path.name}); keep one")
                sets[name] = path
    if not sets:
        raise FidelityError(f"{directory}: no *.kernel.json or *.kernel.json.zst files")
    return dict(sorted(sets.items()))


def kernel_line(kernel):
    """The release line ("6.12") of a set's kernel field."""
    major, minor = RELEASE.fullmatch(kernel["kernel"]).groups()
    return f"{int(major)}.{int(minor)}"


def run_fidelity(directory):
    """(rows, skipped): one row per (set, case, mode, field) with simulated
    and kernel values, and one {set, kernel, case, reason} per case not
    run.  Every file is read and checked before the first case runs."""
    runnable, skipped = {}, []
    for name, json_path in find_sets(directory).items():
        kernel = read_kernel_json(json_path)
        line = kernel_line(kernel)
        skipped += _skipped_cases(name, line, kernel)
        if line not in ZSWAP_PROFILES and line not in ZRAM_PROFILES:
            continue
        _check_cases(json_path, kernel, line)
        check_pages(pages_path(json_path, kernel), kernel["npages"], kernel.get("pages_sha256"))
        runnable[name] = json_path, kernel
    rows = []
    for name, (json_path, kernel) in runnable.items():
        pages = read_pages(pages_path(json_path, kernel), kernel["npages"],
                           kernel.get("pages_sha256"))
        rows += _run_set(name, kernel_line(kernel), kernel, pages)
    return rows, skipped


def _skipped_cases(name, line, kernel):
    """One {set, kernel, case, reason} per case of a set that is not run."""
    cases = []
    if line not in ZRAM_PROFILES:
        cases += [(f"zram {alg}", f"no {line} zram profile yet") for alg in kernel.get("zram", {})]
    if line not in ZSWAP_PROFILES:
        cases += [(f"zswap {pool}/{comp}", f"no {line} zswap profile yet")
                  for pool, by_compressor in kernel.get("zswap", {}).items()
                  for comp in by_compressor]
        limited = kernel.get("zswap_limited")
        if isinstance(limited, list):
            cases += [(_limited_case(run), f"no {line} zswap profile yet")
                      for run in limited if isinstance(run, dict)]
    return [{"set": name, "kernel": kernel["kernel"], "case": case, "reason": reason}
            for case, reason in cases]


def _run_set(name, line, kernel, pages):
    """Every case of one set that its kernel line has a profile for."""
    rows = []
    zram_cases = kernel.get("zram", {}) if line in ZRAM_PROFILES else {}
    for alg, expected in zram_cases.items():
        for mode, compressor in _compressors(alg, pages, expected.get("per_page_compr_size"),
                                             line, "zram"):
            device = zram_class()(expected["disksize"], compressor=compressor, kernel=line)
            for index, page in enumerate(pages):
                device.write(index, page)
            rows += _rows(name, f"zram {alg}", mode, device.mm_stat(), expected, ZRAM_FIELDS)
    lz4_lengths = kernel.get("kernel_lz4_len", {}).get("max_out_4096")
    zswap_cases = kernel.get("zswap", {}) if line in ZSWAP_PROFILES else {}
    for pool, by_compressor in zswap_cases.items():
        for comp, expected in by_compressor.items():
            given = lz4_lengths if comp == "lz4" else None
            for mode, compressor in _compressors(comp, pages, given, line, "zswap"):
                zswap = zswap_class()(backend=pool, compressor=compressor, kernel=line,
                                      ram_pages=expected["mem_total_kb"] * 1024 // PAGE_SIZE,
                                      max_pool_percent=expected["max_pool_percent"])
                for offset, page in enumerate(pages, start=1):
                    zswap.store(0, offset, page)
                rows += _rows(name, f"zswap {pool}/{comp}", mode, zswap.counters(),
                              expected, zswap_fields(zswap.profile))
    limited = kernel.get("zswap_limited", []) if line in ZSWAP_PROFILES else []
    for run in limited:
        comp = run["compressor"]
        given = lz4_lengths if comp == "lz4" else None
        for mode, compressor in _compressors(comp, pages, given, line, "zswap"):
            counts = replay_limited(run, pages, compressor, line)
            rows += _range_rows(name, _limited_case(run), mode, counts, run,
                                limited_fields(ZSWAP_PROFILES[line], run["range"]))
    return rows


def _limited_case(run):
    return f"zswap limited {run.get('zpool')}/{run.get('compressor')}"


def replay_limited(run, pages, compressor, line, **settings):
    """The counters of zswap_limited run `run` replayed under kernel `line`:
    each page stored once, in page order, at offsets 1..N, the shrink work
    left queued run at the end; `settings` (shrink_delay=K) go to Zswap."""
    zswap = zswap_class()(backend=run["zpool"], compressor=compressor, kernel=line,
                          ram_pages=run["mem_total_kb"] * 1024 // PAGE_SIZE,
                          max_pool_percent=run["max_pool_percent"],
                          accept_threshold_percent=run.get("accept_threshold_percent",
                                                           DEFAULT.accept_threshold_percent),
                          **settings)
    for offset, page in enumerate(pages, start=1):
        zswap.store(0, offset, page)
    zswap.run_pending_work()
    return zswap.counters()


def _compressors(alg, pages, given_lengths, line, user):
    """(mode, compressor) pairs a case can run with: the kernel's own sizes
    when given, and ours, the kernel's algorithm (zstd as kernel `line`'s
    `user` calls it) as zswapsim has it."""
    if given_lengths is not None:
        yield KERNEL_SIZES, GivenLengths(alg, pages, given_lengths)
    try:
        ours = get_compressor(alg, kernel=line, user=user)
    except ConfigError:
        return                          # a compressor zswapsim lacks for this kernel
    yield OURS, ours


def _rows(name, case, mode, simulated, expected, fields):
    return [{"set": name, "case": case, "mode": mode, "field": field, "check": EXACT,
             "simulated": simulated[field], "kernel": expected[field],
             "difference": simulated[field] - expected[field],
             "percent": _percent(simulated[field], expected[field])}
            for field in fields]


def _range_rows(name, case, mode, simulated, run, fields):
    """Range-check rows: `kernel` is [min, max] over the run's boots."""
    rows = []
    for field in fields:
        low, high = run["range"][field]
        value = simulated[field]
        difference = range_difference(field, value, low, high)
        rows.append({"set": name, "case": case, "mode": mode, "field": field,
                     "check": RANGE, "held": field in LIMITED_HELD, "simulated": value,
                     "kernel": [low, high], "slack": range_slack(field, high),
                     "difference": difference,
                     "percent": _percent(value, value - difference) if difference else 0.0})
    return rows


def _percent(simulated, kernel):
    """The difference in % of the kernel's value; None where that is 0 and
    ours is not (no percentage of nothing)."""
    if kernel:
        return 100.0 * (simulated - kernel) / kernel
    return 0.0 if simulated == kernel else None


def exact_failures(rows):
    """Exact rows run on the kernel's own sizes that differ: modelling bugs."""
    return [row for row in rows
            if row["check"] == EXACT and row["mode"] == KERNEL_SIZES and row["difference"]]


def range_misses(rows):
    """Held range rows on the kernel's own sizes outside the widened range."""
    return [row for row in rows if row["check"] == RANGE and row["held"]
            and row["mode"] == KERNEL_SIZES and row["difference"]]
