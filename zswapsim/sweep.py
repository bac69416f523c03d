"""Sweeps: the same trace through many configurations, and what to conclude.

compare() answers "which allocator and compressor suit these pages": every
backend x compressor pair rides one pass over the trace (replay_lanes), each
distinct page compressed once per compressor.  Density alone is no verdict:
a pool that refuses stores or writes pages back sends them to the swap
device, so the verdict (VERDICT_RULE) takes the fewest swap writes first and
the densest of those, among allocators the chosen kernel's zswap really had.
tune_retries() answers "how many reclaim retries would this workload want":
the same backend and compressor with each retries value (and, optionally,
each max_pool_percent), the pool limit made to bite by a small --ram.  No
kernel lets a user set retries (the profile's reclaim_retries), so the advice says what a
value other than the kernel's costs, or why retries cannot matter at all.

A configuration's record holds everything a lone `replay` of it reports,
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

from .config import DEFAULT, ZswapConfig, as_config, parse_list
from .errors import ConfigError, WorkerLost
from .profiles import ALLOCATOR_LRU, DRIVER_SHRINK_OPS, kernel_profile
from .replay import replay_lanes
from .trace import TraceReader

ALL_BACKENDS = ("zbud", "z3fold", "zsmalloc", "xvmalloc")
DEFAULT_COMPRESSORS = ("lz4", "zstd")
DEFAULT_RETRIES = (1, 2, 4, 8, 16, 32)

# The columns of the terminal tables.  The records (--json, --csv) hold every
# field `replay --json` has and what the sweep adds: stores_refused, then
# recommended (compare), or kernel_retries, recommended_retries,
# recommended and advice (tune-retries).
COMPARE_FIELDS = (
    "backend", "compressor", "stored_pages", "pool_pages", "pool_total_size",
    "compressed_bytes", "density", "effective_ratio", "allocator_waste_bytes",
    "allocator_waste_percent", "reject_compress_poor", "reject_alloc_fail",
    "reject_reclaim_fail", "reject_kmemcache_fail", "reject_pool_full", "reject_too_big",
    "stores_refused", "written_back_pages", "swap_writes", "peak_pool_pages",
    "compress_us_per_page", "decompress_us_per_page", "cpu_seconds_stores_loads")

TUNE_FIELDS = (
    "max_pool_percent", "retries", "pool_limit_hit", "reclaim_calls", "reclaim_success",
    "reclaim_eagain", "reclaim_pages_scanned", "evict_eexist", "evict_enomem",
    "reject_reclaim_fail", "written_back_pages", "stores_refused", "swap_writes",
    "swap_reads", "peak_pool_pages")

# -- what the kernels fix, and what they never had --------------------------

def what_if(backend, kernel):
    """Why `backend` under `kernel` is a what-if (the profile's note), or
    None when that kernel's zswap really had it."""
    return kernel_profile("zswap", kernel).what_if(backend)


def stores_refused(result):
    """Stores zswap did not keep: each went to the swap device instead."""
    return result["stores"] - result["zswpout"]


# -- compare -----------------------------------------------------------------

VERDICT_RULE = ("the fewest swap writes (stores refused + pages written back), "
                "then the densest; a what-if (*) only when every one is")


def compare(trace, backends=ALL_BACKENDS, compressors=DEFAULT_COMPRESSORS, *, verify=True,
            jobs=1, dask_scheduler=None, progress=None, timeline_points=0, **settings):
    """One record per backend x compressor: every field of its replay,
    stores_refused and recommended (the verdict's pick); what_if is the
    replay's (the note, None when the kernel really had all of it).  In verdict order: the
    fewest swap writes first, then the densest.  `backends` and
    `compressors` are lists or "a,b" strings, and the other ZswapConfig
    settings (ram="32M", max_pool_percent, kernel...) are keywords.  With
    timeline_points, each record also carries its pool-size timeline."""
    configs = sweep_configs(settings, ("backend", parse_list(backends, str, "backends")),
                            ("compressor", parse_list(compressors, str, "compressors")))
    records = run_configs(trace, configs, verify=verify, jobs=jobs,
                          dask_scheduler=dask_scheduler, progress=progress,
                          timeline_points=timeline_points)
    for record in records:
        record["stores_refused"] = stores_refused(record)
    return rank(records)


def rank(records):
    """Sort compare records into verdict order (the fewest swap writes, then
    the densest, then the fewest pool pages) and mark the verdict's pick
    `recommended`: the first that is not a what-if, or the first of all when
    every one is; none when no configuration stored anything."""
    records.sort(key=lambda r: (r["swap_writes"], r["density"] is None, -(r["density"] or 0),
                                r["pool_pages"], r["backend"], r["compressor"]))
    stored = [r for r in records if r["density"] is not None]
    pick = ([r for r in stored if not r["what_if"]] or stored or [None])[0]
    for record in records:
        record["recommended"] = record is pick
    return records


def sweep_configs(settings, inner, outer):
    """The ZswapConfigs of a sweep, all checked before any runs: the
    settings every configuration shares, and two swept (setting, values)
    axes, `outer` varying slowest."""
    swept = {inner[0], outer[0]} & set(settings)
    if swept:
        raise ConfigError(f"{', '.join(sorted(swept))}: swept here, give the values as a list")
    common = ZswapConfig.of(**settings)
    return [ZswapConfig.of(common, **{outer[0]: o, inner[0]: i})
            for o in outer[1] for i in inner[1]]


def verdict(records):
    """The lines under the compare table: the rule, the verdict by it, the
    densest configuration when that is another one, what each what-if is,
    and whether the retries run are other than the kernel's."""
    pick = next((r for r in records if r["recommended"]), None)
    if pick is None:
        return ["no configuration stored anything in its pool"]
    lines = [f"rule: {VERDICT_RULE}", f"verdict: {_summary(pick)}"]
    densest = min((r for r in records if r["density"] is not None),
                  key=lambda r: (-r["density"], r["pool_pages"]))
    if densest is not pick:
        lines.append(f"densest: {_summary(densest)}")
    for backend in dict.fromkeys(r["backend"] for r in records if r["what_if"]):
        lines.append(f"* a what-if: {what_if(backend, pick['kernel'])}")
    unlike = [r for r in records if kernel_retries(r["backend"], r["kernel"]) not in
              (None, r["retries"])]
    if unlike:
        backends = ", ".join(dict.fromkeys(r["backend"] for r in unlike))
        first = unlike[0]
        fixed = kernel_retries(first["backend"], first["kernel"])
        lines.append(f"retries {first['retries']} is a what-if too: "
                     f"{first['kernel']} fixes retries at {fixed} for {backends}, "
                     "so another value needs a kernel change")
    return lines


def _summary(record):
    star = "*" if record["what_if"] else ""
    return (f"{record['backend']}{star} with {record['compressor']}: "
            f"{record['swap_writes']} swap writes ({record['stores_refused']} refused, "
            f"{record['written_back_pages']} written back), "
            f"{record['density']:.2f} stored pages per pool page "
            f"({record['pool_pages']} pool pages, "
            f"{record['allocator_waste_percent']:.1f}% allocator waste)")


# -- tune-retries ------------------------------------------------------------

def tune_retries(trace, retries=DEFAULT_RETRIES, max_pool_percents=(DEFAULT.max_pool_percent,),
                 *, verify=True, jobs=1, dask_scheduler=None, progress=None, **settings):
    """One record per max_pool_percent x retries, in that order: every field
    of its replay, stores_refused, kernel_retries (what the kernel passes:
    kernel_retries()), and its pool limit's advice (recommend):
    recommended_retries (None when there is none), advice (the line saying
    why), and recommended on the row recommended.  Both sweeps are lists or
    "a,b" strings, and the other ZswapConfig settings (backend, compressor,
    ram="32M", kernel...) are keywords."""
    configs = sweep_configs(settings, ("retries", parse_list(retries, int, "retries values")),
                            ("max_pool_percent", parse_list(max_pool_percents, int,
                                                            "max_pool_percent values")))
    records = run_configs(trace, configs, verify=verify, jobs=jobs,
                          dask_scheduler=dask_scheduler, progress=progress)
    for record in records:
        record["stores_refused"] = stores_refused(record)
        record["kernel_retries"] = kernel_retries(record["backend"], record["kernel"])
    advice = {item["max_pool_percent"]: item for item in recommend(records)}
    for record in records:
        item = advice[record["max_pool_percent"]]
        record["recommended_retries"] = item["retries"]
        record["recommended"] = record["retries"] == item["retries"]
        record["advice"] = advice_line(item)
    return records


def recommend(records):
    """Per max_pool_percent, in the records' order: the retries value with
    the fewest swap writes (stores refused plus pages written back), the
    smallest of any tie; or retries None and the reason none is
    recommended: retries cannot matter to this kernel and allocator, the
    pool limit was never hit, or every value swept gave the same swap
    writes.  advice_line() says it in words."""
    advice = []
    for pct in dict.fromkeys(r["max_pool_percent"] for r in records):
        rows = sorted((r for r in records if r["max_pool_percent"] == pct),
                      key=lambda r: r["retries"])
        backend, kernel = rows[0]["backend"], rows[0]["kernel"]
        best = min(rows, key=lambda r: (r["swap_writes"], r["retries"]))
        fixed = kernel_retries(backend, kernel)
        at_kernel = next((r for r in rows if r["retries"] == fixed), None)
        item = {"max_pool_percent": pct, "backend": backend, "kernel": kernel,
                "retries": None, "reason": _retries_cannot_matter(backend, kernel, rows),
                "what_if": what_if(backend, kernel), "kernel_retries": fixed,
                "swap_writes": best["swap_writes"],
                "reclaim_pages_scanned": best["reclaim_pages_scanned"],
                "reclaim_calls": best["reclaim_calls"],
                "kernel_swap_writes": None if at_kernel is None else at_kernel["swap_writes"]}
        if item["reason"] is None:
            if all(r["swap_writes"] == best["swap_writes"] for r in rows):
                item["reason"] = ("retries make no difference here: every value swept "
                                  f"gives {best['swap_writes']} swap writes")
            else:
                item["retries"] = best["retries"]
        advice.append(item)
    return advice


def kernel_retries(backend, kernel):
    """The retries `kernel` passes to `backend`'s reclaim, or None when it
    passes none: a what-if, or no allocator reclaim to retry."""
    if what_if(backend, kernel) or _no_allocator_reclaim(backend, kernel):
        return None
    return kernel_profile("zswap", kernel).reclaim_retries


def _no_allocator_reclaim(backend, kernel):
    """Why `kernel`'s zswap never calls `backend`'s reclaim_page, or None."""
    profile = kernel_profile("zswap", kernel)
    if profile.lru_owner != ALLOCATOR_LRU:
        return ("from 6.5 zswap keeps the LRU itself and writes back entry by entry "
                f"(zswap_reclaim_entry), so {kernel} has no allocator reclaim to retry")
    if backend not in profile.evictable:
        return (f"{kernel}'s {backend} has no zpool shrink, so zswap's shrink fails with "
                "-EINVAL (zpool_shrink() in mm/zpool.c) before it tries a page")
    return None


def _retries_cannot_matter(backend, kernel, rows):
    """Why no retries value can change this run, or None."""
    reason = _no_allocator_reclaim(backend, kernel)
    if reason is not None:
        return f"retries cannot matter: {reason}"
    if not any(r["pool_limit_hit"] for r in rows):
        return ("the pool limit was never hit, so retries cannot matter here; "
                "lower --ram or --max-pool-percent")
    return None


TUNE_RULE = ("the smallest retries value with the fewest swap writes "
             "(stores refused + pages written back)")


def advice_line(item):
    """One item of recommend() in words: the value, what it gives and costs,
    and what the kernel does instead; or why there is no value."""
    head = f"max_pool_percent {item['max_pool_percent']}: "
    if item["retries"] is None:
        return head + item["reason"]
    line = (f"{head}retries {item['retries']} gives the fewest swap writes, "
            f"{item['swap_writes']} ({item['reclaim_pages_scanned']} LRU pages scanned in "
            f"{item['reclaim_calls']} reclaim calls)")
    if item["what_if"] is not None:
        return f"{line}; a what-if: {item['what_if']}, so no kernel fixes its retries"
    kernel = item["kernel"]
    site = kernel_profile("zswap", kernel).reclaim_retries_site or \
        DRIVER_SHRINK_OPS[item["backend"]]
    fixed = f"{kernel} fixes retries at {item['kernel_retries']} in {site}"
    if item["retries"] == item["kernel_retries"]:
        return f"{line}: the value {fixed}"
    at_kernel = "not swept here" if item["kernel_swap_writes"] is None \
        else f"{item['kernel_swap_writes']} swap writes"
    return (f"{line}; {fixed} ({at_kernel}), with no sysfs knob: retries {item['retries']} "
            "needs a kernel change")


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
    configs = [as_config(config) for config in configs]
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
    order = sorted(range(len(configs)), key=lambda i: str(as_config(configs[i]).compressor))
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
