"""The zswapsim benchmark: the ratios that say whether the simulator's own
work hides behind the one cost it cannot avoid, compressing the pages it
stores and decompressing the ones it loads.

Every figure is a ratio of two timings taken side by side in this run, the
two sides timed in turn and the best of 5 of each kept, so a shared, noisy
machine moves both sides together (a summary table at the end holds each
against its target).  Each figure is taken for both engines (engine.py):
the Python models and their compiled twins, the latter over the
allocators it has (NATIVE_BACKENDS); the overhead ratio's three sides
(compress-only, Python replay, native replay) are timed in one rotation:
  1. overhead: replay time / compress-only time, per backend and compressor,
     on the shipped real traces (verification on), and beside it the same
     ratio of CPU time over all threads (with zstd, the trace reader's
     helper threads compress each block's new pages on the second core);
  2. fan-out: every backend the engine has in one pass / one backend;
  3. allocator cost: malloc+write+read+free per object, and reclaim per
     evicted page, in microseconds, on a real trace's object sizes; and
     the whole store path per page with compression taken out, beside
     lz4's own cost per page (the floor of figure 1's ratio);
  4. scaling: time per event at 10^4, 10^5 and 10^6 events;
  5. memory: a replay's peak RSS over what it simulates (pool frames and
     swap device bytes), above a fixed allowance: the interpreter, the
     trace reader's two blocks and the compression cache, each measured;
  6. sweeps: a 16-configuration tune-retries against one replay of the
     same trace, and --jobs 2 against 1.

    python bench/run.py [--quick] [--output FILE]
"""

import argparse
import contextlib
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
from zswapsim.engine import ENGINE_VARIABLE, ENGINES, zswap_class  # noqa: E402
from zswapsim.memory import Memory  # noqa: E402
from zswapsim.replay import replay, replay_lanes  # noqa: E402
from zswapsim.trace import LOAD, STORE, TraceReader, TraceWriter  # noqa: E402
from zswapsim.zpool import create_pool, known_pools  # noqa: E402

TRACES = ["python-heap", "python-job", "gcc-cc1", "postgres-pgbench"]
BACKENDS = ["zbud", "z3fold", "zsmalloc", "xvmalloc"]
NATIVE_BACKENDS = [backend for backend in BACKENDS if backend in known_pools("native")]
RAM = 65536                     # 256M: the pool limit rarely bites, so every page is compressed


def engine_backends(engine):
    return NATIVE_BACKENDS if engine == "native" else BACKENDS


@contextlib.contextmanager
def engine_for_workers(engine):
    """ZSWAPSIM_ENGINE set for what runs inside (sweeps and their workers)."""
    saved = os.environ.get(ENGINE_VARIABLE)
    os.environ[ENGINE_VARIABLE] = engine
    try:
        yield
    finally:
        if saved is None:
            del os.environ[ENGINE_VARIABLE]
        else:
            os.environ[ENGINE_VARIABLE] = saved


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
                engines = [engine for engine in ENGINES if backend in engine_backends(engine)]
                timings = side_by_side(
                    runs, lambda: compress_only(events, compressor),
                    *[lambda engine=engine: replay(path, backend=backend, compressor=comp,
                                                   ram_pages=RAM, verify=True, engine=engine)
                      for engine in engines])
                (base, base_cpu), sides = timings[0], dict(zip(engines, timings[1:]))
                row = {"trace": name, "compressor": comp, "backend": backend,
                       "compress_only_s": round(base, 4)}
                for engine in ENGINES:
                    t, cpu = sides.get(engine, (None, None))
                    row[f"{engine}_s"] = t and round(t, 4)
                    row[f"{engine}_ratio"] = t and round(t / base, 2)
                    row[f"{engine}_cpu_ratio"] = t and round(cpu / base_cpu, 2)
                rows.append(row)
    return rows


def fan_out(runs):
    rows = []
    for name in TRACES:
        path = trace_path(name)
        for engine in ENGINES:
            backends = engine_backends(engine)
            configs = [dict(backend=b, ram_pages=RAM) for b in backends]
            (one, _), (all_, _) = side_by_side(
                runs, lambda: replay(path, backend="zbud", ram_pages=RAM, engine=engine),
                lambda: replay_lanes(path, configs, engine=engine))
            rows.append({"trace": name, "engine": engine, "backends": len(backends),
                         "one_backend_s": round(one, 4), "all_backends_s": round(all_, 4),
                         "ratio": round(all_ / one, 2)})
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
    for engine, backend in [(e, b) for e in ENGINES for b in engine_backends(e)]:
        pool = create_pool(backend, memory=Memory(), engine=engine)
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
        pool = create_pool(backend, memory=Memory(), evict=evict, engine=engine)
        for size in sizes:
            pool.write(pool.malloc(size), payloads[size])
        pages = pool.total_pages()
        started = time.perf_counter()
        while pool.total_pages():
            pool.reclaim_page(8)
        reclaim = (time.perf_counter() - started) / pages * 1e6
        rows.append({"engine": engine, "backend": backend,
                     "alloc_write_read_free_us": round(single, 2),
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
    for engine, backend in [(e, b) for e in ENGINES for b in engine_backends(e)]:
        def store_all():
            zswap = zswap_class(engine)(backend=backend, compressor=cache, ram_pages=RAM)
            for offset, (image, key) in enumerate(zip(images, keys)):
                zswap.store(0, offset, image, key)
        (lz4_s, _), (store_s, _) = side_by_side(
            runs, lambda: [lz4.compress(image) for image in images], store_all)
        lz4_us, store_us = lz4_s / len(images) * 1e6, store_s / len(images) * 1e6
        rows.append({"engine": engine, "backend": backend, "store_path_us": round(store_us, 2),
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
        timings = side_by_side(1, *[lambda engine=engine: replay(
            path, backend="zsmalloc", ram_pages=16384, engine=engine) for engine in ENGINES])
        for engine, (t, _) in zip(ENGINES, timings):
            rows.append({"engine": engine, "events": events, "seconds": round(t, 3),
                         "us_per_event": round(t / events * 1e6, 2)})
    for row in rows:
        base = next(r for r in rows if r["engine"] == row["engine"])["us_per_event"]
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
def counted(cache_class):
    class Counted(cache_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            caches.append(self)
    return Counted
zswapsim.replay.CompressionCache = counted(zswapsim.replay.CompressionCache)
zswapsim.replay.NativeCompressionCache = counted(zswapsim.replay.NativeCompressionCache)
mode, args = sys.argv[1], sys.argv[2:]
result = {}
if mode == "read":
    for _ in TraceReader(args[0]):
        pass
elif mode == "replay":
    lane = dict(backend=args[1], ram_pages=int(args[2]), compressor=args[3])
    result = zswapsim.replay.replay_lanes(args[0], [lane], engine=args[4])[0]
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
    for engine, (label, path, ram, compressor) in [(e, t) for e in ENGINES for t in traces]:
        reader = child("read", str(path))["rss_kb"] - idle
        got = child("replay", str(path), "zbud", str(ram), compressor, engine)
        simulated_kb = (got["peak_pool_pages"] + got["swap_slots"]) * 4
        net = got["rss_kb"] - idle - reader - got["cache_kb"]
        rows.append({"engine": engine, "trace": label, "compressor": compressor,
                     "ram_pages": ram,
                     "peak_rss_mb": round(got["rss_kb"] / 1024, 1),
                     "interpreter_mb": round(idle / 1024, 1), "reader_mb": round(reader / 1024, 1),
                     "cache_mb": round(got["cache_kb"] / 1024, 1),
                     "simulated_mb": round(simulated_kb / 1024, 1),
                     "gross_ratio": round((got["rss_kb"] - idle) / simulated_kb, 2),
                     "ratio": round(net / simulated_kb, 2)})
    return rows


def sweeps(runs):
    """A 16-configuration tune-retries (one pass, 16 lanes) against one
    replay of the same trace, per engine; then --jobs 2 against 1."""
    path = trace_path("swapcache-churn")
    args = dict(retries=(1, 2, 4, 8, 16, 32, 64, 128), max_pool_percents=(20, 30),
                ram_pages=4096)
    rows = []
    for engine in ENGINES:
        with engine_for_workers(engine):
            (one, _), (sixteen, _) = side_by_side(
                runs, lambda: replay(path, ram_pages=4096), lambda: tune_retries(path, **args))
            parallel = best_of(runs, lambda: tune_retries(path, jobs=2, **args))
        rows.append({"engine": engine, "configurations": 16, "one_replay_s": round(one, 2),
                     "tune_retries_s": round(sixteen, 2), "ratio": round(sixteen / one, 2),
                     "jobs_2_s": round(parallel, 2),
                     "jobs_2_speedup": round(sixteen / parallel, 2)})
    return rows


def summary(results):
    """One row per figure and engine: the measured range against issue 18's target."""
    def span(values):
        return f"{min(values)} - {max(values)}"

    rows = []
    for engine in ENGINES:
        def of(figure, field="ratio", **match):
            return [row[field] for row in results[figure]
                    if row.get("engine", engine) == engine and row.get(field) is not None
                    and all(row[key] == value for key, value in match.items())]
        scaling = of("scaling", "us_per_event")
        growth = round(scaling[-1] / scaling[0], 2)
        figures = [
            ("overhead, lz4", of("overhead", f"{engine}_ratio", compressor="lz4"), 1.2),
            ("overhead, zstd", of("overhead", f"{engine}_ratio", compressor="zstd"), 1.1),
            ("fan-out, all backends / one", of("fan_out"), 1.5),
            ("tune-retries 16 configurations / one replay", of("sweeps"), 2.5),
            ("scaling, largest / smallest per event", [growth], 1.1),
            ("memory, net of the allowance", of("memory"), 1.5),
        ]
        rows += [{"engine": engine, "figure": figure, "measured": span(values),
                  "target": f"<= {target}", "met": "yes" if max(values) <= target else "no"}
                 for figure, values, target in figures]
    return rows


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
               "cpus": os.cpu_count(), "native_backends": NATIVE_BACKENDS}
    with tempfile.TemporaryDirectory(prefix="zswapsim-bench-") as workdir:
        results["overhead"] = overhead(runs)
        table("1. overhead: replay / compress-only (verify on)", results["overhead"])
        results["fan_out"] = fan_out(runs)
        table("2. fan-out: all backends in one pass / one backend", results["fan_out"])
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
        results["sweeps"] = sweeps(runs)
        table("6. sweeps: tune-retries, 16 configurations", results["sweeps"])
    results["summary"] = summary(results)
    table("Summary against the targets of issue 18", results["summary"])
    results["seconds"] = round(time.perf_counter() - started, 1)
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print(f"\n{args.json} written; {results['seconds']} s in all")


if __name__ == "__main__":
    main()
