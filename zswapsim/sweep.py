"""Sweeps: the same trace through many configurations, and what to conclude.

compare() answers "which allocator and compressor give the densest pool on
these pages": every backend x compressor pair rides one pass over the trace
(replay_lanes), each distinct page compressed once per compressor.
tune_retries() answers "how many reclaim retries does this workload need":
the same backend and compressor with each retries value (and, optionally,
each max_pool_percent), the pool limit made to bite by a small --ram.

A configuration's record holds exactly what a lone `replay` of it reports,
whether the sweep runs serially, in local processes (`jobs`, each a pass
carrying a group of the configurations as lanes) or on a Dask cluster
(`dask_scheduler`, a task per configuration): lanes never share state that
changes results.
"""

import multiprocessing
import os
import signal
import tempfile
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from .errors import ConfigError, WorkerLost
from .replay import DEFAULTS, replay_lanes
from .trace import TraceReader

ALL_BACKENDS = ("zbud", "z3fold", "zsmalloc", "xvmalloc")
DEFAULT_COMPRESSORS = ("lz4", "zstd")
DEFAULT_RETRIES = (1, 2, 4, 8, 16, 32)

COMPARE_FIELDS = (
    "backend", "compressor", "stored_pages", "pool_pages", "pool_total_size",
    "compressed_bytes", "density", "effective_ratio", "allocator_waste_bytes",
    "allocator_waste_percent", "reject_compress_poor", "reject_alloc_fail",
    "reject_reclaim_fail", "reject_kmemcache_fail", "reject_pool_full", "reject_too_big",
    "written_back_pages", "peak_pool_pages")

TUNE_FIELDS = (
    "max_pool_percent", "retries", "pool_limit_hit", "reclaim_calls", "reclaim_success",
    "reclaim_eagain", "reclaim_pages_scanned", "evict_eexist", "evict_enomem",
    "reject_reclaim_fail", "written_back_pages", "stores_refused", "peak_pool_pages")


def compare(trace, backends=ALL_BACKENDS, compressors=DEFAULT_COMPRESSORS, *,
            ram_pages=1 << 20, max_pool_percent=20, accept_threshold_percent=90, retries=8,
            kernel="6.1", verify=True, jobs=1, dask_scheduler=None, progress=None,
            timeline_points=0):
    """One record per backend x compressor (COMPARE_FIELDS), densest first.
    With timeline_points, each record also carries its pool-size timeline."""
    _require(backends, "backends")
    _require(compressors, "compressors")
    common = dict(ram_pages=ram_pages, max_pool_percent=max_pool_percent,
                  accept_threshold_percent=accept_threshold_percent, retries=retries,
                  kernel=kernel)
    configs = [dict(common, backend=b, compressor=c) for c in compressors for b in backends]
    results = run_configs(trace, configs, verify=verify, jobs=jobs,
                          dask_scheduler=dask_scheduler, progress=progress,
                          timeline_points=timeline_points)
    records = []
    for result in results:
        record = {name: result[name] for name in COMPARE_FIELDS}
        if timeline_points:
            record["timeline"] = result["timeline"]
        records.append(record)
    records.sort(key=lambda r: (r["density"] is None, -(r["density"] or 0), r["pool_pages"],
                                r["backend"], r["compressor"]))
    return records


def verdict(records):
    """The line under the compare table."""
    best = records[0]
    if best["density"] is None:
        return "no configuration stored anything in its pool"
    return (f"densest: {best['backend']} with {best['compressor']}, "
            f"{best['density']:.2f} stored pages per pool page "
            f"({best['pool_pages']} pool pages, "
            f"{best['allocator_waste_percent']:.1f}% allocator waste)")


def tune_retries(trace, retries=DEFAULT_RETRIES, max_pool_percents=(20,), *, backend="zbud",
                 compressor="lz4", ram_pages=1 << 20, accept_threshold_percent=90,
                 kernel="6.1", verify=True, jobs=1, dask_scheduler=None, progress=None):
    """One record per max_pool_percent x retries (TUNE_FIELDS), in that order."""
    _require(retries, "retries values")
    _require(max_pool_percents, "max_pool_percent values")
    if any(r < 1 for r in retries):
        raise ConfigError("retries values must be 1 or more")
    if any(not 1 <= p <= 100 for p in max_pool_percents):
        raise ConfigError("max_pool_percent values must be within 1..100")
    configs = [dict(backend=backend, compressor=compressor, ram_pages=ram_pages,
                    max_pool_percent=pct, accept_threshold_percent=accept_threshold_percent,
                    retries=r, kernel=kernel)
               for pct in max_pool_percents for r in retries]
    results = run_configs(trace, configs, verify=verify, jobs=jobs,
                          dask_scheduler=dask_scheduler, progress=progress)
    records = []
    for result in results:
        result["stores_refused"] = result["stores"] - result["zswpout"]
        records.append({name: result[name] for name in TUNE_FIELDS})
    return records


def recommend(records):
    """Per max_pool_percent: the smallest retries whose reject_reclaim_fail
    is within 1% of the best value's, and what it costs in LRU scans."""
    advice = []
    for pct in dict.fromkeys(r["max_pool_percent"] for r in records):
        rows = sorted((r for r in records if r["max_pool_percent"] == pct),
                      key=lambda r: r["retries"])
        best = min(rows, key=lambda r: (r["reject_reclaim_fail"], r["retries"]))
        chosen = next(r for r in rows
                      if r["reject_reclaim_fail"] * 100 <= best["reject_reclaim_fail"] * 101)
        advice.append({
            "max_pool_percent": pct, "retries": chosen["retries"],
            "reject_reclaim_fail": chosen["reject_reclaim_fail"],
            "reclaim_pages_scanned": chosen["reclaim_pages_scanned"],
            "reclaim_calls": chosen["reclaim_calls"],
            "best_retries": best["retries"],
            "best_reject_reclaim_fail": best["reject_reclaim_fail"],
            "limit_bit": any(r["pool_limit_hit"] for r in rows),
        })
    return advice


def advice_line(advice):
    pct = advice["max_pool_percent"]
    if not advice["limit_bit"]:
        return (f"max_pool_percent {pct}: the pool limit never bit, so retries do not "
                "matter here; lower --ram or --max-pool-percent")
    return (f"max_pool_percent {pct}: use retries {advice['retries']} "
            f"({advice['reject_reclaim_fail']} reclaim failures; the best, "
            f"{advice['best_reject_reclaim_fail']}, at retries {advice['best_retries']}); "
            f"it scans {advice['reclaim_pages_scanned']} LRU pages in "
            f"{advice['reclaim_calls']} reclaim calls")


# -- running the configurations --------------------------------------------

def run_configs(trace, configs, verify=True, jobs=1, dask_scheduler=None, progress=None,
                timeline_points=0):
    """Replay every configuration; results in the order of `configs`.
    Serially they all ride one pass over the trace; with `jobs` > 1 they
    are split into that many groups (lane_groups), each one pass in a
    local process of its own.  Either way `progress(done, total)` is told
    the events replayed so far, summed over the passes.  On a Dask cluster
    each configuration is a task and `progress` is told the tasks done."""
    if jobs < 1:
        raise ConfigError("--jobs must be 1 or more")
    trace = os.fspath(trace)
    if dask_scheduler:
        tasks = [(trace, config, verify, timeline_points) for config in configs]
        return _run_on_dask(dask_scheduler, trace, tasks, progress)
    if jobs == 1 or len(configs) == 1:
        return replay_lanes(trace, configs, verify=verify, progress=progress,
                            timeline_points=timeline_points)
    groups = lane_groups(configs, jobs)
    events = TraceReader(trace).event_count() if progress is not None else None
    total = events * len(groups) if events else None
    events_done = multiprocessing.Value("q", 0)
    executor = ProcessPoolExecutor(max_workers=len(groups), initializer=_start_worker,
                                   initargs=(events_done,))
    try:
        futures = [executor.submit(_run_group, trace, [configs[i] for i in group], verify,
                                   timeline_points)
                   for group in groups]
        pending = futures
        while pending:
            done, pending = wait(pending, timeout=PROGRESS_INTERVAL,
                                 return_when=FIRST_EXCEPTION)
            if progress is not None:
                progress(events_done.value, total)
            if any(future.exception() for future in done):
                break                   # raised below, the other passes not waited for
        results = [None] * len(configs)
        for group, future in zip(groups, futures):
            for index, result in zip(group, future.result()):
                results[index] = result
    except BaseException as error:
        # An error, Ctrl-C or SIGTERM: the workers' passes are of no use
        # now, so they are ended at once rather than waited for.
        _end_workers(executor)
        if isinstance(error, BrokenProcessPool):
            raise WorkerLost("a --jobs worker process ended abruptly (killed by a signal, "
                             "as the out-of-memory killer does); the other workers were "
                             "ended") from None
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return results


def lane_groups(configs, jobs):
    """Indices of `configs` split into at most `jobs` groups, to run as
    lanes of one pass each: the configurations of one compressor sit
    together, since lanes share a compressor's cache, and group sizes
    differ by one at most."""
    order = sorted(range(len(configs)),
                   key=lambda i: str(configs[i].get("compressor", DEFAULTS["compressor"])))
    count = min(jobs, len(configs))
    size, larger = divmod(len(order), count)
    groups, start = [], 0
    for number in range(count):
        end = start + size + (number < larger)
        groups.append(order[start:end])
        start = end
    return groups


PROGRESS_INTERVAL = 0.2         # seconds between progress reports from the workers

_events_done = None             # in a worker process: the count shared with the parent


def _start_worker(counter):
    """A worker leaves Ctrl-C to its parent, which ends it, and dies of
    SIGTERM and SIGHUP as a process without handlers does."""
    global _events_done
    _events_done = counter
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _end_workers(executor):
    """Kill the pool's worker processes (Python 3.14 names this
    terminate_workers(); 3.11 keeps the processes in _processes)."""
    for process in list((executor._processes or {}).values()):
        process.kill()


def _run_group(trace, configs, verify, timeline_points):
    reported = 0

    def report(events):
        nonlocal reported
        with _events_done.get_lock():
            _events_done.value += events - reported
        reported = events

    return replay_lanes(trace, configs, verify=verify, timeline_points=timeline_points,
                        progress=report)


def _run_task(task):
    trace, config, verify, timeline_points = task
    return replay_lanes(trace, [config], verify=verify, timeline_points=timeline_points)[0]


def _run_task_from_bytes(data, task):
    """A Dask worker's task: the trace arrives as bytes, as a worker need not
    see the client's files."""
    trace, config, verify, timeline_points = task
    with tempfile.TemporaryDirectory(prefix="zswapsim-") as directory:
        path = os.path.join(directory, os.path.basename(trace))
        with open(path, "wb") as f:
            f.write(data)
        result = _run_task((path, config, verify, timeline_points))
    result["trace"] = trace
    return result


DASK_CONNECT_TIMEOUT_S = 5      # how long a --dask-scheduler address has to answer


def _run_on_dask(address, trace, tasks, progress):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ConfigError("--dask-scheduler needs the dask extra: "
                          "pip install 'zswapsim[dask]'") from None
    _check_scheduler(address)
    with open(trace, "rb") as f:
        data = f.read()
    try:
        client = Client(address, timeout=f"{DASK_CONNECT_TIMEOUT_S}s")
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    with client:
        shared = client.scatter(data, broadcast=True)
        futures = [client.submit(_run_task_from_bytes, shared, task, pure=False)
                   for task in tasks]
        for done, _ in enumerate(as_completed(futures), start=1):
            if progress is not None:
                progress(done)
        return client.gather(futures)


def _check_scheduler(address):
    """Ask `address` who it is, within DASK_CONNECT_TIMEOUT_S, so a wrong
    address is one line: Client() alone waits long on a port that accepts
    and stays silent, and fails oddly on one that answers something else."""
    import asyncio

    from distributed.core import rpc

    async def identity():
        async with rpc(address) as remote:
            return await remote.identity()

    try:
        answer = asyncio.run(asyncio.wait_for(identity(), DASK_CONNECT_TIMEOUT_S))
    except ValueError as exc:           # the address does not parse
        raise ConfigError(f"--dask-scheduler {address}: {exc}") from None
    except TimeoutError:
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: no answer "
                          f"within {DASK_CONNECT_TIMEOUT_S} s") from None
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    except Exception:
        answer = None
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind != "Scheduler":
        raise ConfigError(f"{address} did not answer as a Dask scheduler"
                          + (f" (it is a Dask {kind})" if isinstance(kind, str) else ""))


def _require(values, what):
    if not values:
        raise ConfigError(f"the list of {what} is empty")
