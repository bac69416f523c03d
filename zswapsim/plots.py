"""Pictures of sweep results, drawn with matplotlib's Agg backend to PNG.

The trace-info picture has a histogram of compressed page sizes per
compressor.  The compare picture has density per backend grouped by compressor on the
left and each configuration's pool size over the trace's events on the
right; the tune-retries picture has one line per max_pool_percent of
reclaim failures, and of LRU pages scanned, against retries.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

LINESTYLES = ("-", "--", ":", "-.")


def compare_plot(records, path, title):
    backends = list(dict.fromkeys(r["backend"] for r in records))
    compressors = list(dict.fromkeys(r["compressor"] for r in records))
    by_pair = {(r["backend"], r["compressor"]): r for r in records}
    colors = {b: f"C{i}" for i, b in enumerate(sorted(backends))}
    fig, (bars, lines) = plt.subplots(1, 2, figsize=(13, 5))

    width = 0.8 / len(backends)
    for i, backend in enumerate(sorted(backends)):
        xs = [c + (i - (len(backends) - 1) / 2) * width for c in range(len(compressors))]
        heights = [by_pair[backend, comp]["density"] or 0 for comp in compressors]
        bars.bar(xs, heights, width, label=backend, color=colors[backend])
    bars.set_xticks(range(len(compressors)), compressors)
    bars.set_ylabel("density (stored pages per pool page)")
    bars.set_title("density by allocator and compressor")
    bars.legend()

    for j, comp in enumerate(compressors):
        for backend in sorted(backends):
            timeline = by_pair[backend, comp]["timeline"]
            lines.plot([e for e, _ in timeline], [p for _, p in timeline],
                       color=colors[backend], linestyle=LINESTYLES[j % len(LINESTYLES)],
                       label=f"{backend} / {comp}")
    lines.set_xlabel("trace events")
    lines.set_ylabel("pool pages")
    lines.set_title("pool size over the trace")
    lines.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def tune_plot(records, path, title):
    fig, (fails, scans) = plt.subplots(1, 2, figsize=(13, 5))
    for pct in dict.fromkeys(r["max_pool_percent"] for r in records):
        rows = sorted((r for r in records if r["max_pool_percent"] == pct),
                      key=lambda r: r["retries"])
        xs = [r["retries"] for r in rows]
        fails.plot(xs, [r["reject_reclaim_fail"] for r in rows], marker="o",
                   label=f"max_pool_percent {pct}")
        scans.plot(xs, [r["reclaim_pages_scanned"] for r in rows], marker="o",
                   label=f"max_pool_percent {pct}")
    values = sorted({r["retries"] for r in records})
    for ax, ylabel in ((fails, "reject_reclaim_fail"), (scans, "LRU pages scanned")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(values, [str(v) for v in values])
        ax.minorticks_off()
        ax.set_xlabel("retries")
        ax.set_ylabel(ylabel)
        ax.legend()
    fails.set_title("reclaim failures against retries")
    scans.set_title("what reclaim scanned")
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
        ax.bar(xs, counts, width, align="edge", label=f"{name} (mean {sizes[name]['mean'] or 0:.0f} B)")
    ax.axvline(4096, color="grey", linestyle=":")
    ax.set_xlabel(f"compressed length, {step}-byte bins (the last: 4096 B and more)")
    ax.set_ylabel("stored pages")
    ax.set_title(f"{title}: {sizes['pages']} stored pages that are not same-filled")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
