"""Views of a modelled zram device: what util-linux's zramctl prints for it,
and the RAM it costs over a trace (its sizing answer).

zramctl (sys-utils/zramctl.c of util-linux's current tree; COMP-RATIO is
its newest column, the release that added it unverified) reads the
device's sysfs files and prints one libsmartcols table.  Columns, with their width
hints and alignment as `infos[]` declares them: NAME (/dev/zram0),
DISKSIZE, DATA (orig_data_size), COMPR (compr_data_size), ALGORITHM (the
bracketed entry of comp_algorithm), STREAMS (max_comp_streams, which the
kernel printed as num_online_cpus() until 6.15 removed the file: the cell
is then empty), ZERO-PAGES (same_pages, always in plain digits), TOTAL
(mem_used_total), MEM-LIMIT, MEM-USED (mem_used_max, the peak), MIGRATED
(pages_compacted, a page count that zramctl formats as a size, "0B"),
COMP-RATIO ("%.4f" of DATA / TOTAL in doubles, so "-nan" for 0/0 and "inf"
over an empty pool) and MOUNTPOINT ("[SWAP]" for a swap device).  The
default set is NAME ALGORITHM DISKSIZE DATA COMPR TOTAL STREAMS MOUNTPOINT.
Sizes go through lib/strutils.c size_to_human_string(SIZE_SUFFIX_1LETTER)
unless --bytes: below 1 KiB "<n>B"; else the largest power of 1024 not
above the value gives the letter (K M G T P E), the remainder is cut to
thousandths (floor), rounded half up to tenths (frac = (frac + 50) / 100),
a 10/10 carries into the integer part (so 1048575 is "1024K"), and a zero
tenth is left out ("4K", "1.5M").

The table is libsmartcols' human format as it comes out on a pipe (no
terminal width to fit): a column is as wide as its widest cell, at least
its header, and a column whose width hint is 1 or more (5 for the sizes)
is widened to the hint when both its cells and its header are narrower;
cells are padded with spaces, right-aligned where the column is, joined by
one space, and the last, left-aligned column is not padded.

The size report samples mem_used_total (zs_get_total_pages) after every
event of a replay (zram_replay's `sample` hook) into a timeline of at most
`max_points` points: each point is the highest value its interval of
events is known to have reached, which is mem_used_max when the interval
raised it (the kernel's update_used_max runs right after zs_malloc, before
an overwritten slot's old object is freed), else the value at the
interval's end; when the timeline fills, neighbouring points merge (the
higher kept) and intervals double.  So the timeline's highest point is
mm_stat's mem_used_max.  zram_write_page refuses a write (-ENOMEM, a
failed write) when after zs_malloc the pool holds more than limit_pages =
PAGE_ALIGN(mem_limit) / PAGE_SIZE pages; a replay without a limit that
peaks at P pages therefore runs unchanged under any mem_limit of P pages
or more, and any mem_limit of P - 1 pages or less fails the write that
first reached P pages.
"""

from .memory import PAGE_SIZE

DEVICE = "/dev/zram0"
SWAP_MOUNTPOINT = "[SWAP]"          # lib/ismounted.c: a device in /proc/swaps
MAX_POINTS = 2000
MIB = 1 << 20

# name, width hint, right-aligned: zramctl.c's infos[] (SCOLS_FL_RIGHT)
ZRAMCTL_COLUMNS = (("NAME", 0.25, False), ("DISKSIZE", 5, True), ("DATA", 5, True),
                   ("COMPR", 5, True), ("ALGORITHM", 3, False), ("STREAMS", 3, True),
                   ("ZERO-PAGES", 3, True), ("TOTAL", 5, True), ("MEM-LIMIT", 5, True),
                   ("MEM-USED", 5, True), ("MIGRATED", 5, True), ("COMP-RATIO", 5, True),
                   ("MOUNTPOINT", 0.10, False))
ZRAMCTL_DEFAULT = ("NAME", "ALGORITHM", "DISKSIZE", "DATA", "COMPR", "TOTAL", "STREAMS",
                   "MOUNTPOINT")
ZRAMCTL_ALL = tuple(name for name, _hint, _right in ZRAMCTL_COLUMNS)


# -- zramctl -------------------------------------------------------------------

def size_to_human_string(nbytes):
    """util-linux's size_to_human_string(SIZE_SUFFIX_1LETTER, nbytes)."""
    exp = 0
    while exp < 60 and nbytes >= 1 << (exp + 10):
        exp += 10
    if exp == 0:
        return f"{nbytes}B"
    whole, rest = divmod(nbytes, 1 << exp)
    tenths = 0
    if rest:
        tenths = ((rest * 1000 >> exp) + 50) // 100
        if tenths == 10:
            whole, tenths = whole + 1, 0
    letter = "BKMGTPE"[exp // 10]
    return f"{whole}.{tenths}{letter}" if tenths else f"{whole}{letter}"


def algorithm_name(compressor):
    """The name comp_algorithm brackets for a zswapsim compressor: zram has
    one zstd and one lz4hc (levels are algorithm_params), and zswapsim's
    kernel-lz4 and kernel-lz4hc builds are the kernel's lz4 and lz4hc."""
    name = compressor.name.removeprefix("kernel-")
    for family in ("zstd", "lz4hc"):
        if name.startswith(family + "-"):
            return family
    return name


def comp_ratio(orig, total):
    """zramctl's "%.4f" of (double) orig / total, C's text for 0/0 and x/0."""
    if total == 0:
        return "-nan" if orig == 0 else "inf"
    return f"{orig / total:.4f}"


def zramctl_row(device, online_cpus=1, swap=True, in_bytes=False):
    """{column: cell text or None (an empty cell)} for every zramctl column."""
    mm = device.mm_stat()

    def size(value):
        return str(value) if in_bytes else size_to_human_string(value)

    return {
        "NAME": DEVICE,
        "DISKSIZE": size(device.nr_pages * PAGE_SIZE),
        "DATA": size(mm["orig_data_size"]),
        "COMPR": size(mm["compr_data_size"]),
        "ALGORITHM": algorithm_name(device.compressor),
        "STREAMS": str(online_cpus) if device.profile.max_comp_streams else None,
        "ZERO-PAGES": str(mm["same_pages"]),
        "TOTAL": size(mm["mem_used_total"]),
        "MEM-LIMIT": size(mm["mem_limit"]),
        "MEM-USED": size(mm["mem_used_max"]),
        "MIGRATED": size(mm["pages_compacted"]),
        "COMP-RATIO": comp_ratio(mm["orig_data_size"], mm["mem_used_total"]),
        "MOUNTPOINT": SWAP_MOUNTPOINT if swap else None,
    }


def zramctl_table(rows, columns=ZRAMCTL_DEFAULT):
    """The lines zramctl prints for `rows` (zramctl_row dicts), in the
    libsmartcols layout of a non-terminal output."""
    spec = {name: (hint, right) for name, hint, right in ZRAMCTL_COLUMNS}
    widths = []
    for name in columns:
        hint = spec[name][0]
        width = max((len(row[name] or "") for row in rows), default=0)
        if width < len(name):
            width = len(name)
        elif hint >= 1 and width < hint and len(name) < hint:
            width = hint
        widths.append(width)
    lines = []
    for cells in [dict(zip(columns, columns))] + rows:
        parts = []
        for n, (name, width) in enumerate(zip(columns, widths)):
            text, right = cells[name] or "", spec[name][1]
            last = n == len(columns) - 1
            if right:
                parts.append(text.rjust(width))
            else:
                parts.append(text if last else text.ljust(width))
        lines.append(" ".join(parts))
    return lines


# -- the size report -----------------------------------------------------------

class MemUsedTimeline:
    """zram_replay's `sample` hook: mem_used_total, in pages, over the events
    (see the module comment for what a point holds)."""

    def __init__(self, device, max_points=MAX_POINTS):
        if max_points < 2 or max_points % 2:
            raise ValueError("max_points must be an even number of at least 2")
        self.device = device
        self.max_points = max_points
        self.stride = 1             # events per point
        self.points = []            # (last event of the interval, highest pages)
        self.peak_event = 0         # the event that last raised mem_used_max
        self.last_event = 0
        self._top = device.stats["mem_used_max"]
        self._high = 0
        self._count = 0

    def __call__(self, event):
        pages = self.device.pool.total_pages()
        top = self.device.stats["mem_used_max"]
        if top > self._top:
            self._top, self.peak_event, pages = top, event, top
        if pages > self._high:
            self._high = pages
        self.last_event = event
        self._count += 1
        if self._count == self.stride:
            self._flush()

    def _flush(self):
        self.points.append((self.last_event, self._high))
        self._high = self._count = 0
        if len(self.points) == self.max_points:
            self.points = [(b[0], max(a[1], b[1]))
                           for a, b in zip(self.points[0::2], self.points[1::2])]
            self.stride *= 2

    def finish(self):
        """The points, the last (partial) interval included."""
        if self._count:
            self._flush()
        return self.points


def size_report(device, timeline, baseline=None, without=None):
    """The sizing answer for a replayed `device` sampled by `timeline`; with
    `baseline` (the same trace's device and timeline without any
    post-processing) also what post-processing saved, and with `without`
    ({kind: the device replayed with every step but that kind's}) what each
    kind saves beside the others: its device's figures less this one's."""
    points = timeline.finish()
    mm = device.mm_stat()
    peak_pages = mm["mem_used_max"] // PAGE_SIZE
    report = {
        "events": timeline.last_event,
        "events_per_point": timeline.stride,
        "timeline": [[event, pages * PAGE_SIZE] for event, pages in points],
        "peak_bytes": mm["mem_used_max"],
        "peak_event": timeline.peak_event,
        "end_bytes": mm["mem_used_total"],
        # limit_pages = PAGE_ALIGN(mem_limit) >> PAGE_SHIFT; refused when pages > limit_pages
        "mem_limit_no_failed_write": peak_pages * PAGE_SIZE,
        "mem_limit_failing": max(peak_pages - 1, 0) * PAGE_SIZE,
        "failed_writes": device.stats["failed_writes"],
    }
    if baseline is not None:
        base_device, base_timeline = baseline
        base_mm = base_device.mm_stat()
        report["baseline"] = {
            "timeline": [[event, pages * PAGE_SIZE]
                         for event, pages in base_timeline.finish()],
            "peak_bytes": base_mm["mem_used_max"], "end_bytes": base_mm["mem_used_total"]}
        report["saved"] = {
            "end_bytes": base_mm["mem_used_total"] - mm["mem_used_total"],
            "peak_bytes": base_mm["mem_used_max"] - mm["mem_used_max"]}
    if without:
        report["saved_by"] = {
            kind: {"end_bytes": other.mm_stat()["mem_used_total"] - mm["mem_used_total"],
                   "peak_bytes": other.mm_stat()["mem_used_max"] - mm["mem_used_max"]}
            for kind, other in without.items()}
    return report


def size_report_lines(report):
    """The size report as text."""
    def both(value):
        return f"{value} B ({value / MIB:.2f} MiB)"

    ok, failing = report["mem_limit_no_failed_write"], report["mem_limit_failing"]
    lines = [f"size report: mem_used_total over {report['events']} events "
             f"({len(report['timeline'])} points of {report['events_per_point']} event(s))",
             f"  peak (mem_used_max)  {both(report['peak_bytes'])} at event "
             f"{report['peak_event']}",
             f"  at the end           {both(report['end_bytes'])}",
             f"  mem_limit            {ok} B ({ok // PAGE_SIZE} pages) or more fails no write; "
             f"{failing} B or less (but not 0) fails at least one"]
    if "saved" in report:
        base, saved = report["baseline"], report["saved"]
        lines += [f"  without post-processing: peak {both(base['peak_bytes'])}, "
                  f"end {both(base['end_bytes'])}",
                  f"  post-processing saves:   peak {both(saved['peak_bytes'])}, "
                  f"end {both(saved['end_bytes'])}"]
    for kind, saved in report.get("saved_by", {}).items():
        lines.append(f"  {kind + ' saves':<24} peak {both(saved['peak_bytes'])}, "
                     f"end {both(saved['end_bytes'])} (beside the other steps)")
    return lines
