"""The zswapsim benchmark: the ratios that say whether the simulator's own
work hides behind the one cost it cannot avoid, compressing the pages it
stores and decompressing the ones it loads.

Every figure is a ratio of two timings taken side by side in this run, the
two sides timed in turn and the best of 5 of each kept, so a shared, noisy
machine moves both sides together (a summary table at the end holds each
against its target):
  1. overhead: replay time / compress-only time, per backend and compressor,
     on the shipped real traces (verification on), and beside it the same
     ratio of CPU time over all threads (with zstd, the trace reader's
     helper threads compress each block's new pages on the second core);
  2. fan-out: `compare` over the four backends / one backend's replay;
  3. allocator cost: malloc+write+read+free per object, and reclaim per
     evicted page, in microseconds, on a real trace's object sizes; and
     the whole store path per page with compression taken out, beside
     lz4's own cost per page (the floor of figure 1's ratio);
  4. scaling: time per event at 10^4, 10^5 and 10^6 events;
  5. memory: a replay's peak RSS over what it simulates (pool frames and
     swap device bytes), above a fixed allowance: the interpreter, the
     trace reader's two blocks and the compression cache, each measured;
  6. sweep scaling: a 16-configuration tune-retries, --jobs 2 against 1.

    python bench/run.py [--quick] [--output FILE]
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zswapsim import tune_retries  # noqa: E402
from zswapsim.compress import CompressionCache, get_compressor, page_key  # noqa: E402
from zswapsim.memory import Memory  # noqa: E402
from zswapsim.replay import replay, replay_lanes  # noqa: E402
from zswapsim.trace import LOAD, STORE, TraceReader, TraceWriter  # noqa: E402
from zswapsim.zpool import create_pool  # noqa: E402
from zswapsim.zswap import Zswap  # noqa: E402

TRACES = ["python-heap", "python-job", "gcc-cc1", "postgres-pgbench"]
BACKENDS = ["zbud", "z3fold", "zsmalloc", "xvmalloc"]
RAM = 65536                     # 256M: the pool limit rarely bites, so every page is compressed


def trace_path(name):
    return ROOT / "traces" / f"{name}.trace"


def stored_images(name):
    """The page image of every store of shipped trace `name`, in order."""
    return [image for op, _, _, image, _ in TraceReader(trace_path(name)) if op == STORE]


def best_of(runs, fn):
    """The fastest of `runs` timings of fn(): the least disturbed by the machine."""
    return side_by_side(runs, fn)[0][0]


def side_by_side(runs, *fns):
    """(wall seconds, CPU seconds of all the process's threads) of the
    fastest of `runs` calls of each of `fns`, called in turn round after
    round, so that a disturbance of the machine falls on every side alike."""
    best = [None] * len(fns)
    for _ in range(runs):
        for index, fn in enumerate(fns):
            started, cpu_started = time.perf_counter(), time.process_time()
            fn()
            run = (time.perf_counter() - started, time.process_time() - cpu_started)
            best[index] = run if best[index] is None else min(best[index], run)
    return best


def compress_only(events, compressor):
    """Compress every stored image and decompress every loaded page, as the
    kernel must; nothing else."""
    compressed = {}
    for op, swap_type, offset, image, _ in events:
        if op == STORE:
            compressed[swap_type, offset] = compressor.compress(image)
        elif op == LOAD and (swap_type, offset) in compressed:
            compressor.decompress(compressed[swap_type, offset])


def overhead(runs):
    rows = []
    for name in TRACES:
        path = trace_path(name)
        events = list(TraceReader(path))
        for comp in ("lz4", "zstd"):
            compressor = get_compressor(comp)
            for backend in BACKENDS:
                (base, base_cpu), (t, cpu) = side_by_side(
                    runs, lambda: compress_only(events, compressor),
                    lambda: replay(path, backend=backend, compressor=comp, ram_pages=RAM,
                                   verify=True))
                rows.append({"trace": name, "compressor": comp, "backend": backend,
                             "replay_s": round(t, 4), "compress_only_s": round(base, 4),
                             "ratio": round(t / base, 2), "cpu_ratio": round(cpu / base_cpu, 2)})
    return rows


def fan_out(runs):
    rows = []
    for name in TRACES:
        path = trace_path(name)
        configs = [dict(backend=b, ram_pages=RAM) for b in BACKENDS]
        (one, _), (four, _) = side_by_side(runs, lambda: replay(path, backend="zbud",
                                                                ram_pages=RAM),
                                           lambda: replay_lanes(path, configs))
        rows.append({"trace": name, "one_backend_s": round(one, 4), "four_backends_s":
                     round(four, 4), "ratio": round(four / one, 2)})
    return rows


def allocator_cost(objects):
    """Sizes as zswap 6.1 allocates them for python-heap's lz4 output."""
    lz4 = get_compressor("lz4")
    sizes = [len(lz4.compress(image)) + 8 for image in stored_images("python-heap")]
    sizes = [s for s in sizes if s <= 3968]          # what every allocator accepts
    rng = random.Random(1)
    sizes = [rng.choice(sizes) for _ in range(objects)]
    payloads = {s: bytes(s) for s in set(sizes)}
    rows = []
    for backend in BACKENDS:
        pool = create_pool(backend, memory=Memory())
        started = time.perf_counter()
        for size in sizes:
            handle = pool.malloc(size)
            pool.write(handle, payloads[size])
            pool.read(handle)
            pool.free(handle)
        single = (time.perf_counter() - started) / len(sizes) * 1e6

        def evict(p, handle):
            p.free(handle)
            return 0
        pool = create_pool(backend, memory=Memory(), evict=evict)
        for size in sizes:
            pool.write(pool.malloc(size), payloads[size])
        pages = pool.total_pages()
        started = time.perf_counter()
        while pool.total_pages():
            pool.reclaim_page(8)
        reclaim = (time.perf_counter() - started) / pages * 1e6
        rows.append({"backend": backend, "alloc_write_read_free_us": round(single, 2),
                     "reclaim_per_page_us": round(reclaim, 2), "objects": len(sizes)})
    return rows


def store_path(runs):
    """What a store costs besides compression: zswap's store path and the
    allocator, per page, with every page's lz4 output already in the cache;
    beside it lz4's own cost per page on the same images.  Their sum over
    lz4 alone is the overhead ratio a replay of these pages could reach if
    nothing else (trace decoding, verification) cost anything."""
    images = stored_images("python-heap")
    cache = CompressionCache(get_compressor("lz4"))
    keys = [page_key(image) for image in images]
    lz4 = get_compressor("lz4")
    for image in images:
        cache.compress(image)
    rows = []
    for backend in BACKENDS:
        def store_all():
            zswap = Zswap(backend=backend, compressor=cache, memory=Memory(RAM))
            for offset, (image, key) in enumerate(zip(images, keys)):
                cache.remember(image, key)
                zswap.store(0, offset, image)
        (lz4_s, _), (store_s, _) = side_by_side(
            runs, lambda: [lz4.compress(image) for image in images], store_all)
        lz4_us, store_us = lz4_s / len(images) * 1e6, store_s / len(images) * 1e6
        rows.append({"backend": backend, "store_path_us": round(store_us, 2),
                     "lz4_us": round(lz4_us, 2),
                     "floor_ratio": round((store_us + lz4_us) / lz4_us, 2)})
    return rows


def synthetic_trace(path, events, seed=3):
    """`events` events over real python-heap pages: a bounded working set of
    swap slots with stores, loads and invalidations, the same mix at any length."""
    images = stored_images("python-heap")[:2000]
    rng = random.Random(seed)
    stored = set()
    with TraceWriter(path, description=f"bench: {events} events") as w:
        for _ in range(events):
            offset = rng.randrange(20000)
            roll = rng.random()
            if roll < 0.6 or offset not in stored:
                w.store(0, offset, rng.choice(images))
                stored.add(offset)
            elif roll < 0.9:
                w.load(0, offset)
            else:
                w.invalidate_page(0, offset)
                stored.discard(offset)


def scaling(sizes, workdir):
    rows = []
    for events in sizes:
        path = Path(workdir) / f"scale-{events}.trace"
        synthetic_trace(path, events)
        t = best_of(1, lambda: replay(path, backend="zsmalloc", ram_pages=16384))
        rows.append({"events": events, "seconds": round(t, 3),
                     "us_per_event": round(t / events * 1e6, 2)})
    base = rows[0]["us_per_event"]
    for row in rows:
        row["vs_smallest"] = round(row["us_per_event"] / base, 2)
    return rows


# VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork+exec.
# argv: "idle" (the interpreter with zswapsim imported), "read PATH" (one
# pass of the trace reader, nothing replayed) or "replay PATH BACKEND RAM".
# The compression caches are counted on the way (a subclass that keeps its
# instances), so their bytes can be told apart from the rest.
MEMORY_CHILD = """
import json, sys
import zswapsim.replay
from zswapsim.trace import TraceReader
caches = []
class CountedCache(zswapsim.replay.CompressionCache):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        caches.append(self)
zswapsim.replay.CompressionCache = CountedCache
mode, args = sys.argv[1], sys.argv[2:]
result = {}
if mode == "read":
    for _ in TraceReader(args[0]):
        pass
elif mode == "replay":
    lane = dict(backend=args[1], ram_pages=int(args[2]), compressor=args[3])
    result = zswapsim.replay.replay_lanes(args[0], [lane])[0]
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"rss_kb": hwm, "peak_pool_pages": result.get("peak_pool_pages"),
                  "swap_slots": result.get("swap_used_slots"),
                  "cache_kb": sum(cache.cached_bytes for cache in caches) // 1024}))
"""


def memory(traces):
    """Peak RSS of a replay in a fresh interpreter over the simulated bytes at
    their peak (pool frames and swap slots), after taking off the fixed
    allowance: the interpreter with zswapsim imported, the trace reader's
    blocks (a pass of the reader alone, bounded by two blocks whatever the
    trace's length) and the compression cache (bounded by its budget).  With
    zstd the blocks' compressions made ahead are not taken off.  The gross
    ratio, with only the interpreter taken off, is kept beside it."""
    def child(*args):
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, *args], capture_output=True,
                             text=True, check=True, cwd=ROOT).stdout
        return json.loads(out)
    idle = child("idle")["rss_kb"]
    rows = []
    for label, path, ram, compressor in traces:
        reader = child("read", str(path))["rss_kb"] - idle
        got = child("replay", str(path), "zbud", str(ram), compressor)
        simulated_kb = (got["peak_pool_pages"] + got["swap_slots"]) * 4
        net = got["rss_kb"] - idle - reader - got["cache_kb"]
        rows.append({"trace": label, "compressor": compressor, "ram_pages": ram,
                     "peak_rss_mb": round(got["rss_kb"] / 1024, 1),
                     "interpreter_mb": round(idle / 1024, 1), "reader_mb": round(reader / 1024, 1),
                     "cache_mb": round(got["cache_kb"] / 1024, 1),
                     "simulated_mb": round(simulated_kb / 1024, 1),
                     "gross_ratio": round((got["rss_kb"] - idle) / simulated_kb, 2),
                     "ratio": round(net / simulated_kb, 2)})
    return rows


def sweep_scaling():
    path = trace_path("swapcache-churn") if trace_path("swapcache-churn").exists() else None
    args = dict(retries=(1, 2, 4, 8, 16, 32, 64, 128), max_pool_percents=(20, 30),
                ram_pages=4096)
    serial = best_of(1, lambda: tune_retries(path, jobs=1, **args))
    parallel = best_of(1, lambda: tune_retries(path, jobs=2, **args))
    return [{"configurations": 16, "jobs_1_s": round(serial, 2), "jobs_2_s": round(parallel, 2),
             "speedup": round(serial / parallel, 2)}]


def summary(results):
    """One row per figure: the measured range against the issue's target."""
    def span(values):
        return f"{min(values)} - {max(values)}"

    def ratios(compressor):
        return [row["ratio"] for row in results["overhead"] if row["compressor"] == compressor]

    growth = results["scaling"][-1]["us_per_event"] / results["scaling"][0]["us_per_event"]
    memory = [row["ratio"] for row in results["memory"]]
    rows = [
        ("overhead, lz4", span(ratios("lz4")), "<= 1.3", max(ratios("lz4")) <= 1.3),
        ("overhead, zstd", span(ratios("zstd")), "<= 1.15", max(ratios("zstd")) <= 1.15),
        ("fan-out", span([row["ratio"] for row in results["fan_out"]]), "<= 1.6",
         max(row["ratio"] for row in results["fan_out"]) <= 1.6),
        ("scaling, largest / smallest per event", round(growth, 2), "<= 1.1", growth <= 1.1),
        ("memory, net of the allowance", span(memory), "<= 1.5", max(memory) <= 1.5),
        ("sweep, --jobs 2 speed-up", results["sweep"][0]["speedup"], "-", None),
    ]
    return [{"figure": figure, "measured": measured, "target": target,
             "met": "-" if met is None else ("yes" if met else "no")}
            for figure, measured, target, met in rows]


def table(title, rows):
    print(f"\n{title}")
    if not rows:
        return
    fields = list(rows[0])
    widths = {f: max(len(f), *(len(str(r[f])) for r in rows)) for f in fields}
    print("  ".join(f"{f:>{widths[f]}}" for f in fields))
    for row in rows:
        print("  ".join(f"{str(row[f]):>{widths[f]}}" for f in fields))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="One timing per figure and smaller sizes (a smoke run).")
    parser.add_argument("--output", "--json", dest="json", default=None,
                        help="Where to write the results (default bench/results.json, the "
                             "tracked file; with --quick a file in the temporary folder).")
    args = parser.parse_args()
    if args.json is None:
        args.json = (os.path.join(tempfile.gettempdir(), "zswapsim-bench-quick.json")
                     if args.quick else str(ROOT / "bench" / "results.json"))
    runs = 1 if args.quick else 5
    started = time.perf_counter()
    results = {"date": time.strftime("%Y-%m-%d"), "python": sys.version.split()[0],
               "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="zswapsim-bench-") as workdir:
        results["overhead"] = overhead(runs)
        table("1. overhead: replay / compress-only (verify on)", results["overhead"])
        results["fan_out"] = fan_out(runs)
        table("2. fan-out: four backends in one pass / one backend", results["fan_out"])
        results["allocators"] = allocator_cost(20000 if args.quick else 100000)
        table("3. allocator cost (microseconds)", results["allocators"])
        results["store_path"] = store_path(runs)
        table("3b. store path per page, compression from the cache (microseconds)",
              results["store_path"])
        sizes = (10**4, 10**5) if args.quick else (10**4, 10**5, 10**6)
        results["scaling"] = scaling(sizes, workdir)
        table("4. scaling: time per event", results["scaling"])
        big = Path(workdir) / f"scale-{sizes[-1]}.trace"
        small = Path(workdir) / f"scale-{sizes[-2]}.trace"
        results["memory"] = memory([("python-heap", trace_path("python-heap"), RAM, "lz4"),
                                    (small.name, small, 16384, "lz4"),
                                    (big.name, big, 16384, "lz4"), (big.name, big, 16384, "zstd")])
        table("5. memory: (peak RSS - interpreter - reader - cache) / simulated bytes",
              results["memory"])
        results["sweep"] = sweep_scaling()
        table("6. sweep scaling: tune-retries, 16 configurations", results["sweep"])
    results["summary"] = summary(results)
    table("Summary against the targets of issue 7", results["summary"])
    results["seconds"] = round(time.perf_counter() - started, 1)
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print(f"\n{args.json} written; {results['seconds']} s in all")


if __name__ == "__main__":
    main()
