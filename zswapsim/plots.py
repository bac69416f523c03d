"""Pictures of sweep results, drawn with matplotlib's Agg backend to PNG.

The trace-info picture has a histogram of compressed page sizes per
compressor.  The compare picture has density per backend grouped by
compressor on the left (what-ifs hatched, the verdict's pick outlined) and
each configuration's pool size over the trace's events on the right, with
the pool limit.  The tune-retries picture has, per max_pool_percent against
retries, the swap writes the advice goes by, the LRU pages reclaim scanned,
and the peak pool size beside the pool limit; the recommended value is
ringed and the kernel's fixed value is a vertical line.  The zram size report
plots mem_used_total over the events in MiB, beside a replay without
post-processing, with the peak (mem_used_max, the smallest mem_limit that
fails no write) marked.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.patches import Patch  # noqa: E402

LINESTYLES = ("-", "--", ":", "-.")


def compare_plot(records, path, title):
    backends = list(dict.fromkeys(r["backend"] for r in records))
    compressors = list(dict.fromkeys(r["compressor"] for r in records))
    by_pair = {(r["backend"], r["compressor"]): r for r in records}
    colors = {b: f"C{i}" for i, b in enumerate(sorted(backends))}
    names = {r["backend"]: r["backend"] + " (what-if)" * bool(r["what_if"]) for r in records}
    fig, (bars, lines) = plt.subplots(1, 2, figsize=(13, 5))

    width = 0.8 / len(backends)
    for i, backend in enumerate(sorted(backends)):
        xs = [c + (i - (len(backends) - 1) / 2) * width for c in range(len(compressors))]
        pairs = [by_pair[backend, comp] for comp in compressors]
        drawn = bars.bar(xs, [r["density"] or 0 for r in pairs], width, label=names[backend],
                         color=colors[backend], linewidth=0)
        for patch, record in zip(drawn, pairs):
            if record["what_if"]:
                patch.set_hatch("//")
                patch.set_edgecolor("white")
            if record["recommended"]:
                patch.set_edgecolor("black")
                patch.set_linewidth(2)
    bars.set_xticks(range(len(compressors)), compressors)
    bars.set_ylabel("density (stored pages per pool page)")
    bars.set_title("density by allocator and compressor (outlined: the verdict)")
    bars.legend(handles=[Patch(facecolor=colors[b], label=names[b], edgecolor="white",
                               hatch="//" if names[b] != b else None)
                         for b in sorted(backends)])

    for j, comp in enumerate(compressors):
        for backend in sorted(backends):
            timeline = by_pair[backend, comp]["timeline"]
            lines.plot([e for e, _ in timeline], [p for _, p in timeline],
                       color=colors[backend], linestyle=LINESTYLES[j % len(LINESTYLES)],
                       label=f"{names[backend]} / {comp}")
    limit = records[0]["pool_limit_pages"]
    lines.axhline(limit, color="black", linestyle=":", label=f"pool limit ({limit} pages)")
    lines.set_xlabel("trace events")
    lines.set_ylabel("pool pages")
    lines.set_title("pool size over the trace")
    lines.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def tune_plot(records, path, title):
    fig, (writes, scans, peaks) = plt.subplots(1, 3, figsize=(18, 5))
    for n, pct in enumerate(dict.fromkeys(r["max_pool_percent"] for r in records)):
        rows = sorted((r for r in records if r["max_pool_percent"] == pct),
                      key=lambda r: r["retries"])
        xs = [r["retries"] for r in rows]
        color = f"C{n}"
        label = f"max_pool_percent {pct}"
        for ax, field in ((writes, "swap_writes"), (scans, "reclaim_pages_scanned"),
                          (peaks, "peak_pool_pages")):
            ax.plot(xs, [r[field] for r in rows], marker="o", color=color, label=label)
            for r in rows:
                if r["recommended"]:
                    ax.plot(r["retries"], r[field], marker="o", markersize=14,
                            markerfacecolor="none", markeredgecolor=color)
        peaks.axhline(rows[0]["pool_limit_pages"], color=color, linestyle=":",
                      label=f"pool limit at {pct}%: {rows[0]['pool_limit_pages']} pages")
    values = sorted({r["retries"] for r in records})
    kernel_retries = records[0]["kernel_retries"]
    for ax, ylabel in ((writes, "swap writes (stores refused + written back)"),
                       (scans, "LRU pages scanned"), (peaks, "peak pool pages")):
        if kernel_retries is not None:
            ax.axvline(kernel_retries, color="grey", linestyle="--",
                       label=f"the kernel's fixed {kernel_retries}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(values, [str(v) for v in values])
        ax.minorticks_off()
        ax.set_xlabel("retries")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small")
    writes.set_title("what the advice goes by (ringed: recommended)")
    scans.set_title("what reclaim scanned")
    peaks.set_title("the pool against its limit")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def sizes_plot(sizes, path, title):
    names = [name for name in sizes if isinstance(sizes[name], dict)]
    step = sizes["bin_bytes"]
    fig, ax = plt.subplots(figsize=(10, 5))
    width = step / (len(names) + 1)
    for j, name in enumerate(names):
        counts = sizes[name]["histogram"]
        xs = [i * step + (j + 0.5) * width for i in range(len(counts))]
        mean = sizes[name]["mean"] or 0
        ax.bar(xs, counts, width, align="edge", label=f"{name} (mean {mean:.0f} B)")
    ax.axvline(4096, color="grey", linestyle=":")
    ax.set_xlabel(f"compressed length, {step}-byte bins (the last: 4096 B and more)")
    ax.set_ylabel("stored pages")
    ax.set_title(f"{title}: {sizes['pages']} stored pages that are not same-filled")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def size_report_plot(report, path, title):
    mib = 1 << 20
    fig, ax = plt.subplots(figsize=(10, 5.5))
    events, peak, end = report["events"], report["peak_bytes"] / mib, report["end_bytes"] / mib
    baseline = report.get("baseline")
    if baseline is not None:
        ax.step([e for e, _ in baseline["timeline"]], [b / mib for _, b in baseline["timeline"]],
                where="post", color="grey", linestyle="--", linewidth=2.5,
                label="without post-processing")
        ax.plot(events, baseline["end_bytes"] / mib, marker="s", color="grey", linestyle="",
                label=f"end without post-processing: {baseline['end_bytes'] / mib:.2f} MiB")
    timeline = report["timeline"]
    ax.step([e for e, _ in timeline], [b / mib for _, b in timeline], where="post", color="C0",
            label="mem_used_total (highest in each interval)")
    if timeline and timeline[-1][1] / mib != end:
        ax.plot([events, events], [timeline[-1][1] / mib, end], color="C2", linestyle=":",
                label="post-processing at the end")
    ax.axhline(peak, color="C3", linestyle=":",
               label=f"smallest mem_limit that fails no write: {peak:.2f} MiB")
    ax.plot(report["peak_event"], peak, marker="o", color="C3", linestyle="",
            label=f"peak = mem_used_max: {peak:.2f} MiB at event {report['peak_event']}")
    ax.plot(events, end, marker="s", color="C2", linestyle="", label=f"end: {end:.2f} MiB")
    ax.set_ylim(bottom=0, top=peak * 1.12 or 1)
    ax.set_xlim(left=0, right=max(events, 1) * 1.04)
    ax.set_xlabel("trace events")
    ax.set_ylabel("mem_used_total (MiB)")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=80)
    plt.close(fig)
