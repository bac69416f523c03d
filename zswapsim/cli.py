"""The zswapsim command line: wiring and rendering only, no simulation.

Every error a user can cause ends as one line on stderr and exit status 2;
a verification failure (the simulator lost or corrupted a page) exits 3,
running out of memory (one line too) exits 1.
"""

import csv
import importlib.metadata
import json
import os
import signal
import sys

import click

from .compress import compressor_what_if
from .cpu_cost import MEASURED, TOTAL_RULE
from .config import DEFAULT, DEFAULT_RAM, RANGES, ZswapConfig, parse_list
from .engine import DEFAULT_ENGINE, ENGINE_VARIABLE, ENGINES, chosen_engine, zram_class
from .engine import describe as describe_engine
from .errors import PoolCorrupted, Terminated, UserError, WorkerLost
from .files import ReplacingFile, check_input, check_output
from .memory import PAGE_SIZE, parse_size, ram_pages
from .progress import Progress
from .replay import VerifyError, replay
from .sweep import (ALL_BACKENDS, COMPARE_FIELDS, DEFAULT_COMPRESSORS, DEFAULT_RETRIES,
                    TUNE_FIELDS, TUNE_RULE, advice_line, compare, recommend, sweep_configs,
                    tune_retries, verdict)
from .trace import TraceReader, trace_info
from .trace.format import DEFAULT_MAX_MEMORY, check_description, set_default_max_memory
from .fidelity import EXACT, KERNEL_SIZES, RANGE, exact_failures, range_misses, run_fidelity
from .trace.importer import import_raw, raw_pages
from .trace.info import printable
from .trace.record import record, shell_status
from .trace.recording import RecordingReader
from .trace.recording import accesses as recording_accesses
from .trace.synth import PATTERNS, parse_mix, parse_phase, synthesize, synthesize_from_accesses
from .profiles import (DEFAULT_ZRAM_KERNEL, PROFILES, SWAP_OUT_TICKS, ZRAM_PROFILES,
                       ZSWAP_PROFILES, facts_table)
from .zram_policy import Policy
from .zram_replay import zram_replay
from .zram_views import (ZRAMCTL_ALL, ZRAMCTL_DEFAULT, MemUsedTimeline, size_report,
                         size_report_lines, zramctl_row, zramctl_table)
from .zpool.zsmalloc import CHAIN_SIZES
from .zswap import CLASS_COUNTS, DEBUGFS_COUNTERS, reported_counters

LRU_ACTIVITY = ("shrink_rotations", "writeback_eexist", "writeback_enomem", "writeback_eio",
                "swapcache_hits")
DERIVED = ("density", "effective_ratio", "allocator_waste_bytes", "allocator_waste_percent")
ACTIVITY = ("stores", "zswpout", "duplicate_stores", "reject_pool_full", "reject_too_big",
            "loads", "zswpin", "load_misses", "load_unknown", "invalidates",
            "swap_writes", "pswpout", "swap_reads", "pswpin", "swap_used_slots",
            "pool_pages", "pool_limit_pages",
            "compressed_bytes", "shrink_runs", "reclaim_calls", "reclaim_success",
            "reclaim_eagain", "reclaim_einval", "reclaim_pages_scanned", "evict_calls",
            "evict_eexist", "evict_enomem", "evict_eio", "swap_full", "swap_write_errors",
            "resident_pages")


def _input_file(ctx, param, value):
    """A click callback: a trace or recording must be a regular file (raw
    dumps, which may be block devices, are checked where they are read)."""
    return None if value is None else check_input(value, _option_name(param))


def _output_file(suffix=None):
    """A click callback checking an output path before any work starts."""
    def check(ctx, param, value):
        return None if value is None else check_output(value, _option_name(param), suffix)
    return check


def _option_name(param):
    if param.param_type_name == "argument":
        return param.human_readable_name
    return max(param.opts, key=len)


def _version(ctx, param, value):
    if value and not ctx.resilient_parsing:
        click.echo(f"zswapsim {importlib.metadata.version('zswapsim')}, {describe_engine()}")
        ctx.exit()


def _engine(ctx, param, value):
    """--engine for this process and the workers it starts (ZSWAPSIM_ENGINE);
    a bad ZSWAPSIM_ENGINE is refused here, before any work."""
    if value is not None:
        os.environ[ENGINE_VARIABLE] = value
    return chosen_engine()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="Show the version and the engine in use, and exit.")
@click.option("--engine", type=click.Choice(ENGINES), default=None, expose_value=False,
              is_eager=True, callback=_engine,
              help=f"Run zswap in the Python models or their compiled twins (also "
                   f"{ENGINE_VARIABLE}); the results are the same.  [default: "
                   f"{DEFAULT_ENGINE}]")
def cli():
    """Replay recorded page workloads through models of Linux compressed swap."""


def _range(name):
    """A setting's range for --help, from the config's declaration."""
    return "{}..{}".format(*RANGES[name])


def _shrink_timing_option(name, metavar, text):
    """An option of the shrink work's timing: `text` with the setting's
    range in its {}, and each kernel's default, fitted where it has
    zswap_limited fidelity runs."""
    defaults = ", ".join(f"{line} {getattr(profile, name)}"
                         for line, profile in ZSWAP_PROFILES.items())
    return click.option("--" + name.replace("_", "-"), type=int, default=None,
                        metavar=metavar,
                        help=text.format(_range(name)) + "; default: the kernel's, fitted "
                        f"where it has zswap_limited fidelity runs ({defaults}).")


# The options every zswap command shares, with the config's defaults; the
# config checks the values (click only reads them as numbers).
def _backend_option(name="backend", **kwargs):
    return click.option("--backend", "--zpool", name, show_default=True,
                        help="zpool allocator (the kernel's zpool parameter): zbud, z3fold, "
                             "zsmalloc, or xvmalloc or zcache-zbud (what-ifs: never zswap "
                             "allocators).", **kwargs)


def _ram_option():
    return click.option("--ram", default=DEFAULT_RAM, show_default=True,
                        help="Simulated RAM (totalram_pages), e.g. 32M or 4G; at most 4096T.")


def _accept_threshold_option():
    return click.option("--accept-threshold-percent", type=int,
                        default=DEFAULT.accept_threshold_percent, show_default=True,
                        help="Hysteresis: once full, accept again below this share of the "
                             f"limit ({_range('accept_threshold_percent')}).")


def _kernel_option():
    return click.option("--kernel", type=click.Choice(ZSWAP_PROFILES), default=DEFAULT.kernel,
                        show_default=True, help="Which kernel's zswap store path to follow "
                                                "(zswapsim kernels: what differs).")


MAX_POOL_PERCENT_HELP = f"Pool limit as a percentage of RAM ({_range('max_pool_percent')})."
RETRIES_HELP = f"LRU pages reclaim_page tries before -EAGAIN ({_range('retries')})."


def _note_what_if(config):
    """Say on stderr what in a replay's settings no real kernel had (sweeps
    mark it in their tables and records instead)."""
    note = config.what_if()
    if note:
        click.echo(f"zswapsim: note: what-if: {note}", err=True)


def _max_trace_memory(command):
    """--max-trace-memory: the page image bytes a trace reader may hold at once."""
    def apply(ctx, param, value):
        set_default_max_memory(parse_size(value))
    return click.option("--max-trace-memory", default=f"{DEFAULT_MAX_MEMORY >> 30}G",
                        show_default=True, expose_value=False, callback=apply,
                        help="Most page image bytes a trace may make the reader hold at "
                             "once; a trace needing more is refused.")(command)


def _description_option(command):
    """--description, refused at once when the trace header cannot hold it."""
    def check(ctx, param, value):
        if value is not None:
            check_description(value)
        return value
    return click.option("--description", default=None, callback=check,
                        help="Free-form description to store (at most 64 KiB).")(command)


COMPRESSOR_HELP = ("The --kernel's own lz4, lz4hc, lzo, lzo-rle, zstd, deflate or 842 "
                   "(zstd-N, lz4hc-N: a level); lz4-upstream, lz4hc-upstream, "
                   "zstd-upstream[-N]: userspace libraries, as what-ifs.")

@cli.command("replay")
@click.argument("trace_path", metavar="TRACE", callback=_input_file)
@_backend_option(default=DEFAULT.backend)
@click.option("--compressor", default=DEFAULT.compressor, show_default=True,
              help=COMPRESSOR_HELP)
@_ram_option()
@click.option("--max-pool-percent", type=int, default=DEFAULT.max_pool_percent,
              show_default=True, help=MAX_POOL_PERCENT_HELP)
@_accept_threshold_option()
@click.option("--retries", type=int, default=DEFAULT.retries, show_default=True,
              help=RETRIES_HELP)
@_kernel_option()
@_shrink_timing_option("shrink_delay", "K", "Swap-outs the queued shrink work waits for "
                       "before it starts ({})")
@_shrink_timing_option("shrink_step_cost", "TICKS", "The shrink worker's time for one pass "
                       f"of its loop, in 1/{SWAP_OUT_TICKS} of a swap-out ({{}}; 0: no time)")
@_shrink_timing_option("shrink_writeback_cost", "TICKS", "The shrink worker's time for a "
                       f"pass that writes a page back, in 1/{SWAP_OUT_TICKS} of a swap-out "
                       "({})")
@click.option("--same-filled-pages-enabled/--no-same-filled-pages-enabled", default=None,
              help="Keep same-filled pages outside the pool (the kernel parameter); "
                   "default: as the kernel did (yes, but not in 3.11).")
@click.option("--chain-size", type=int, default=None,
              help="zsmalloc pages per zspage at most (CONFIG_ZSMALLOC_CHAIN_SIZE, "
                   f"{CHAIN_SIZES.start}..{CHAIN_SIZES.stop - 1}); "
                   "default 4, or 8 with --kernel 6.3.")
@click.option("--classes", is_flag=True, help="Also print zsmalloc's debugfs classes table.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Check every load and the final pool contents against the trace.")
@click.option("--swap-size", default=None,
              help="Swap device size, e.g. 64M: stores that find it full stay in RAM.")
@click.option("--fault-alloc", type=float, default=0.0,
              help="Rate (0..1) of injected page-frame allocation failures (ENOMEM).")
@click.option("--fault-swap-write", type=float, default=0.0,
              help="Rate (0..1) of injected swap-device write failures (EIO).")
@click.option("--fault-evict", type=float, default=0.0,
              help="Rate (0..1) of injected evict-callback failures (EIO).")
@click.option("--fault-seed", type=int, default=0, show_default=True,
              help="Seed of the injected faults.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@_max_trace_memory
def replay_cmd(trace_path, backend, compressor, ram, max_pool_percent,
               accept_threshold_percent, retries, kernel, shrink_delay, shrink_step_cost,
               shrink_writeback_cost, same_filled_pages_enabled, chain_size, classes, as_json,
               verify, swap_size, fault_alloc, fault_swap_write, fault_evict, fault_seed, quiet):
    """Replay TRACE through zswap and print the kernel's counters."""
    config = ZswapConfig(
        backend=backend, compressor=compressor, ram=ram, max_pool_percent=max_pool_percent,
        accept_threshold_percent=accept_threshold_percent, retries=retries, kernel=kernel,
        shrink_delay=shrink_delay, shrink_step_cost=shrink_step_cost,
        shrink_writeback_cost=shrink_writeback_cost,
        same_filled_pages_enabled=same_filled_pages_enabled,
        pool_options={"chain_size": chain_size} if chain_size is not None else None,
        swap_size=swap_size, faults=dict(seed=fault_seed, alloc=fault_alloc,
                                         swap_write=fault_swap_write, evict=fault_evict))
    progress = Progress(TraceReader(trace_path).event_count(), "event", quiet)
    _note_what_if(config)           # once the trace is known to be readable
    with progress:
        result = replay(trace_path, config, verify=verify, classes=classes, progress=progress)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    click.echo(f"{result['trace']}: {result['events']} events, backend {backend}, "
               f"compressor {result['compressor']}, kernel {kernel}, "
               f"RAM {result['ram_pages']} pages, max_pool_percent {max_pool_percent}, "
               f"retries {retries}, shrink delay {config.effective('shrink_delay')}, pass "
               f"{config.effective('shrink_step_cost')}/"
               f"{config.effective('shrink_writeback_cost')} ticks")
    _table("zswap debugfs", result, reported_counters(ZSWAP_PROFILES[kernel]))
    _table("activity", result, ACTIVITY)
    if "shrink_rotations" in result:                # zswap's own LRU (6.6 on)
        _table("zswap LRU", result, LRU_ACTIVITY)
    _table("derived", result, DERIVED)
    _table("cpu (this machine, not the kernel's)", result, MEASURED)
    click.echo(f"  timed after the replay on the trace's pages;\n"
               f"  {TOTAL_RULE.format(*MEASURED)}")
    injected = [name for name in result if name.startswith("injected_")]
    if injected:
        _table("injected faults", result, injected)
    if classes:
        _classes_table(result["classes"])
    if verify:
        click.echo(f"\nverified: every load matched; {result['live_pages']} live pages all "
                   "accounted for (pool, swap device, "
                   f"or {result['resident_pages']} left in RAM)")


def _what_if(profile, allocator, compressor):
    """The line saying a zram run is a what-if: this kernel never had the
    allocator there, or the compressor's bytes are not this kernel's."""
    notes = [profile.what_if(allocator), compressor_what_if(compressor, profile, "zram")]
    note = "; ".join(note for note in notes if note)
    if note:
        click.echo(f"what-if: {note}")


def _table(title, values, names):
    click.echo(f"\n{title}")
    for name in names:
        value = values[name]
        if isinstance(value, float):
            value = f"{value:.3f}"
        elif value is None:
            value = "-"
        click.echo(f"  {name:<26} {value:>14}")


def _classes_table(rows):
    """Laid out as zsmalloc's debugfs `classes` file, Total line included."""
    columns = (("class", 5), ("size", 5), ("almost_full", 11), ("almost_empty", 12),
               ("obj_allocated", 13), ("obj_used", 10), ("pages_used", 10),
               ("pages_per_zspage", 16), ("freeable", 8))
    click.echo("\nzsmalloc classes")
    click.echo(" " + " ".join(f"{name:>{width}}" for name, width in columns))
    for row in rows:
        click.echo(" " + " ".join(f"{row[name]:>{width}}" for name, width in columns))
    totals = {name: sum(row[name] for row in rows) for name in CLASS_COUNTS}
    totals.update({"class": "Total", "size": "", "pages_per_zspage": ""})
    click.echo("\n " + " ".join(f"{totals[name]:>{width}}" for name, width in columns))


def _list_of(convert, what):
    """A click callback turning "a,b,c" into a tuple, refusing an empty list."""
    def parse(ctx, param, value):
        return None if value is None else parse_list(value, convert, what)
    return parse


def _sweep_options(command):
    """Options every sweep shares: the machine, the kernel, how to run, how to print."""
    for option in reversed((
        _ram_option(),
        _accept_threshold_option(),
        _kernel_option(),
        click.option("--jobs", type=click.IntRange(1, 1024), default=1, show_default=True,
                     help="Run the configurations in this many local processes."),
        click.option("--dask-scheduler", metavar="ADDRESS", default=None,
                     help="Run the configurations on this Dask cluster (zswapsim[dask])."),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON list of records."),
        click.option("--csv", "csv_path", callback=_output_file(), default=None,
                     help="Also write the records to this CSV file."),
        click.option("--plot", "plot_path", callback=_output_file(".png"), default=None,
                     help="Also draw the results to this PNG file."),
        click.option("--verify/--no-verify", default=True, show_default=True,
                     help="Check every load and the final contents of every configuration."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
        _max_trace_memory,
    )):
        command = option(command)
    return command


def _sweep_progress(trace_path, configs, dask_scheduler, quiet):
    """Events replayed, summed over the local passes; configurations done on Dask."""
    if not dask_scheduler:
        return Progress(TraceReader(trace_path).event_count(), "event", quiet)
    return Progress(configs, "config", quiet)


@cli.command("compare")
@click.argument("trace_path", metavar="TRACE", callback=_input_file)
@_backend_option("backends", default=",".join(ALL_BACKENDS), callback=_list_of(str, "backends"))
@click.option("--compressor", "compressors", default=",".join(DEFAULT_COMPRESSORS),
              show_default=True, callback=_list_of(str, "compressors"),
              help="Comma-separated compressors (as --compressor of replay).")
@click.option("--max-pool-percent", type=int, default=DEFAULT.max_pool_percent,
              show_default=True, help=MAX_POOL_PERCENT_HELP)
@click.option("--retries", type=int, default=DEFAULT.retries, show_default=True,
              help=RETRIES_HELP)
@_sweep_options
def compare_cmd(trace_path, backends, compressors, max_pool_percent, retries, ram,
                accept_threshold_percent, kernel, jobs, dask_scheduler, as_json, csv_path,
                plot_path, verify, quiet):
    """Compare allocators x compressors on TRACE: density, waste, rejects."""
    settings = dict(ram=ram, max_pool_percent=max_pool_percent,
                    accept_threshold_percent=accept_threshold_percent, retries=retries,
                    kernel=kernel)
    configs = sweep_configs(settings, ("backend", backends), ("compressor", compressors))
    with _sweep_progress(trace_path, len(configs), dask_scheduler, quiet) as progress:
        records = compare(trace_path, backends, compressors, verify=verify, jobs=jobs,
                          dask_scheduler=dask_scheduler, progress=progress,
                          timeline_points=400 if plot_path else 0, **settings)
    if plot_path:
        from .plots import compare_plot
        with ReplacingFile(plot_path) as out:
            compare_plot(records, out.file, f"{trace_path}: kernel {kernel}, RAM {ram}, "
                                            f"max_pool_percent {max_pool_percent}")
        for record in records:
            del record["timeline"]
    # A what-if's backend is starred in the table; the verdict says what it is.
    shown = [dict(r, backend=r["backend"] + "*" * bool(r["what_if"])) for r in records]
    _emit(records, COMPARE_FIELDS, as_json, csv_path, shown)
    if not as_json:
        labels = [SHORT_LABELS[name] for name in MEASURED[:3]]
        click.echo(f"\n{', '.join(labels)}: this machine's CPU time, not the kernel's, "
                   "timed after the replay\non the trace's pages; "
                   f"{TOTAL_RULE.format(*labels)}")
        click.echo("")
        for line in verdict(records):
            click.echo(line)


@cli.command("tune-retries")
@click.argument("trace_path", metavar="TRACE", callback=_input_file)
@_backend_option(default=DEFAULT.backend)
@click.option("--compressor", default=DEFAULT.compressor, show_default=True,
              help=COMPRESSOR_HELP)
@click.option("--retries", "retries_values", default=",".join(map(str, DEFAULT_RETRIES)),
              show_default=True, callback=_list_of(int, "retries values"),
              help=f"Comma-separated retries values to sweep (each {_range('retries')}).")
@click.option("--max-pool-percent", "percents", default=str(DEFAULT.max_pool_percent),
              show_default=True, callback=_list_of(int, "max_pool_percent values"),
              help=f"Comma-separated pool limits ({_range('max_pool_percent')}), a second axis.")
@_sweep_options
def tune_retries_cmd(trace_path, backend, compressor, retries_values, percents, ram,
                     accept_threshold_percent, kernel, jobs, dask_scheduler, as_json, csv_path,
                     plot_path, verify, quiet):
    """Sweep reclaim retries on TRACE and recommend the smallest that does the job."""
    settings = dict(backend=backend, compressor=compressor, ram=ram,
                    accept_threshold_percent=accept_threshold_percent, kernel=kernel)
    configs = sweep_configs(settings, ("retries", retries_values), ("max_pool_percent", percents))
    with _sweep_progress(trace_path, len(configs), dask_scheduler, quiet) as progress:
        records = tune_retries(trace_path, retries_values, percents, verify=verify, jobs=jobs,
                               dask_scheduler=dask_scheduler, progress=progress, **settings)
    if plot_path:
        from .plots import tune_plot
        with ReplacingFile(plot_path) as out:
            tune_plot(records, out.file, f"{trace_path}: {backend} + {compressor}, "
                                         f"kernel {kernel}, RAM {ram}")
    _emit(records, TUNE_FIELDS, as_json, csv_path)
    if not as_json:
        click.echo(f"\nrecommended: {TUNE_RULE}")
        for item in recommend(records):
            click.echo(advice_line(item))


def _emit(records, fields, as_json, csv_path, shown=None):
    """Write every field of the records to csv_path, then print them as JSON
    or print `fields` of `shown` (the records as the table shows them) as a
    table."""
    if csv_path:
        with ReplacingFile(csv_path, "w", newline="") as out:
            writer = csv.DictWriter(out.file, fieldnames=list(dict.fromkeys(
                name for record in records for name in record)))
            writer.writeheader()
            writer.writerows({name: json.dumps(value) if isinstance(value, (dict, list))
                              else value for name, value in row.items()}
                             for row in records)
    if as_json:
        click.echo(json.dumps(records, indent=1))
        return
    shown = records if shown is None else shown
    labels = {name: SHORT_LABELS.get(name, name) for name in fields}
    widths = {name: max(len(labels[name]), *(len(_cell(row[name])) for row in shown))
              for name in fields}
    click.echo(" ".join(f"{labels[name]:>{widths[name]}}" for name in fields))
    for row in shown:
        click.echo(" ".join(f"{_cell(row[name]):>{widths[name]}}" for name in fields))


# Column heads for the terminal; JSON and CSV keep the full counter names.
SHORT_LABELS = {
    "compressor": "comp", "stored_pages": "stored", "pool_pages": "pool_pg",
    "pool_total_size": "pool_bytes", "compressed_bytes": "comp_bytes",
    "effective_ratio": "ratio", "allocator_waste_bytes": "waste_B",
    "allocator_waste_percent": "waste%", "reject_compress_poor": "rej_poor",
    "reject_alloc_fail": "rej_alloc", "reject_reclaim_fail": "rej_reclaim",
    "reject_kmemcache_fail": "rej_kmem", "reject_pool_full": "rej_full",
    "reject_too_big": "rej_big", "written_back_pages": "written_back",
    "peak_pool_pages": "peak_pg", "max_pool_percent": "pool%",
    "pool_limit_hit": "limit_hit", "reclaim_calls": "reclaims",
    "reclaim_success": "ok", "reclaim_eagain": "eagain",
    "reclaim_pages_scanned": "scanned", "evict_eexist": "eexist", "evict_enomem": "enomem",
    "stores_refused": "refused", "swap_writes": "swap_wr", "swap_reads": "swap_rd",
    "compress_us_per_page": "comp_us", "decompress_us_per_page": "decomp_us",
    "cpu_seconds_stores_loads": "cpu_s",
}


def _cell(value):
    if isinstance(value, float):
        return f"{value:.3f}"
    return "-" if value is None else str(value)


@cli.command("zram")
@click.argument("trace_path", metavar="[TRACE]", required=False, callback=_input_file)
@click.option("--raw", "raw_path", type=click.Path(dir_okay=False), default=None,
              help="A raw page dump instead of a trace: page i is written to index i.")
@click.option("--compressor", default="lz4", show_default=True,
              help=COMPRESSOR_HELP)
@click.option("--allocator", default="zsmalloc", show_default=True,
              help="zsmalloc (the kernel's), or zbud, z3fold, xvmalloc, zcache-zbud to "
                   "compare.")
@click.option("--disksize", default="16G", show_default=True, help="Device size.")
@click.option("--mem-limit", default="0", show_default=True,
              help="mem_limit: most memory the device may use (0: none).")
@click.option("--kernel", type=click.Choice(ZRAM_PROFILES), default=DEFAULT_ZRAM_KERNEL,
              show_default=True,
              help="Which kernel's zram to follow (zswapsim kernels: what differs).")
@click.option("--algorithm-params", default=None,
              help="zram's algorithm_params (6.12+), e.g. 'level=9', or for deflate under "
                   "6.18 'level=9 deflate.winbits=-12'.")
@click.option("--compact", is_flag=True, help="Run compaction at the end (echo 1 > compact).")
@click.option("--backing-dev", default=None,
              help="A backing device of this size for writeback (CONFIG_ZRAM_WRITEBACK).")
@click.option("--idle", default=None,
              help="At the end: echo all|SECONDS > idle (the clock: the trace's timestamps, "
                   "else one second per event).")
@click.option("--writeback", default=None,
              help="At the end, after --idle: echo idle|huge|huge_idle|incompressible|"
                   "page_index=N > writeback.")
@click.option("--writeback-limit", type=click.IntRange(min=0), default=None,
              help="writeback_limit in 4 KiB units, with writeback_limit_enable=1.")
@click.option("--recomp-algorithm", "recomp_algorithms", multiple=True,
              help="A secondary algorithm before the run (6.2+), e.g. 'algo=zstd priority=1'; "
                   "repeatable.")
@click.option("--recomp-params", "recomp_params", multiple=True,
              help="A secondary algorithm's algorithm_params (6.12+), e.g. 'priority=1 "
                   "level=9'; repeatable.")
@click.option("--recompress", default=None,
              help="At the end, after --idle and before --writeback: echo 'type=idle|huge|"
                   "huge_idle threshold=BYTES max_pages=N algo=NAME priority=N' > recompress.")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False), default=None,
              callback=_input_file,
              help="A TOML file of timed sysfs writes made during the replay (idle, writeback, "
                   "writeback_limit, recomp_algorithm, recompress, compact; README: zram).")
@click.option("--json", "as_json", is_flag=True,
              help="Print mm_stat, io_stat, bd_stat and debug_stat as JSON.")
@click.option("--zramctl", "zramctl", is_flag=True,
              help="Print what util-linux's zramctl shows for the device (zram0).")
@click.option("--output-all", is_flag=True, help="With --zramctl: every column.")
@click.option("--bytes", "in_bytes", is_flag=True,
              help="With --zramctl: sizes in bytes, not in zramctl's human units.")
@click.option("--cpus", type=click.IntRange(min=1), default=1, show_default=True,
              help="Online CPUs of the modelled machine: zramctl's STREAMS "
                   "(max_comp_streams, num_online_cpus(), until 6.15).")
@click.option("--size-report", is_flag=True,
              help="The RAM the device costs over the trace: mem_used_total's timeline, "
                   "peak and end, the mem_limit that fails no write, and what "
                   "post-processing saves.")
@click.option("--plot", "plot_path", callback=_output_file(".png"), default=None,
              help="With --size-report: draw the timeline to this PNG file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@_max_trace_memory
def zram_cmd(trace_path, raw_path, compressor, allocator, disksize, mem_limit, kernel,
             algorithm_params, compact, backing_dev, idle, writeback, writeback_limit,
             recomp_algorithms, recomp_params, recompress, policy_path, as_json, zramctl,
             output_all, in_bytes, cpus, size_report, plot_path, quiet):
    """Write a trace's pages (or a raw dump's) to a modelled zram device and
    print its mm_stat, io_stat, bd_stat and debug_stat; for a trace also
    the swap layer's live pages and those kept in RAM because zram refused
    their write."""
    if (trace_path is None) == (raw_path is None):
        raise click.UsageError("give a TRACE or --raw DUMP")
    _check_zram_views(raw_path, mem_limit, zramctl, output_all, in_bytes, size_report,
                      plot_path)

    policy = None
    if policy_path is not None:
        if raw_path:
            raise click.UsageError("--policy needs a TRACE (a raw dump has no clock)")
        policy = Policy.load(policy_path)
    planned = set() if policy is None else {action.name for action in policy.actions}
    device_class = zram_class(
        writeback=bool(backing_dev or writeback or writeback_limit is not None
                       or planned & {"writeback", "writeback_limit"}),
        recompression=bool(recomp_algorithms or recomp_params or recompress
                           or planned & {"recomp_algorithm", "recompress"}))

    def make_device():
        device = device_class(parse_size(disksize), compressor=compressor, allocator=allocator,
                              mem_limit=parse_size(mem_limit), kernel=kernel,
                              algorithm_params=algorithm_params,
                              backing_dev_pages=parse_size(backing_dev) // PAGE_SIZE
                              if backing_dev else 0)
        for text in recomp_algorithms:
            device.recomp_algorithm(text)
        for text in recomp_params:
            device.recomp_algorithm_params(text)
        return device

    device = make_device()
    if policy is not None:
        policy.prepare(device)
    post = _zram_post_processing(device, idle, writeback, writeback_limit, recompress)
    timeline = MemUsedTimeline(device) if size_report else None
    swap = None
    if raw_path:
        for index, page in enumerate(raw_pages(raw_path)):
            device.write(index, page)
        post(device)
    else:
        with Progress(TraceReader(trace_path).event_count(), "event", quiet) as progress:
            swap = zram_replay(device, trace_path, progress, at_end=post, sample=timeline,
                               policy=policy)
        clock = ("trace timestamps" if TraceReader(trace_path).has_timestamps
                 else "event indices, one second each")
        if post.report:
            post.report["clock"] = clock
    if compact:
        device.compact()
    stats = {"mm_stat": device.mm_stat(), "io_stat": device.io_stat(),
             "bd_stat": device.bd_stat(), "debug_stat": device.debug_stat()}
    if swap is not None:
        stats["swap"] = swap
    if post.report:
        stats["post_processing"] = post.report
    if policy is not None:
        stats["policy"] = {"clock": clock, "actions": policy.report()}

    def replay_leaving_out(kind):
        """The trace replayed on a fresh device with every post-processing
        step but those of `kind` (writeback, recompress or compact), or with
        none when `kind` is None: (device, its MemUsedTimeline)."""
        variant = make_device()
        kept = {} if kind is None else {"writeback": writeback, "recompress": recompress}
        kept.pop(kind, None)
        variant_policy = None
        if policy is not None and kind is not None:
            variant_policy = Policy.load(policy_path)
            variant_policy.actions = [a for a in variant_policy.actions if a.name != kind]
            variant_policy.prepare(variant)
        variant_post = _zram_post_processing(
            variant, None if kind is None else idle, kept.get("writeback"),
            writeback_limit if kept.get("writeback") else None, kept.get("recompress"))
        sampled = MemUsedTimeline(variant)
        zram_replay(variant, trace_path, at_end=variant_post, sample=sampled,
                    policy=variant_policy)
        if compact and kind not in (None, "compact"):
            variant.compact()
        return variant, sampled

    kinds = [kind for kind, given in (("writeback", writeback), ("recompress", recompress),
                                      ("compact", compact))
             if given or policy is not None and any(a.name == kind for a in policy.actions)]
    views = _zram_views(device, trace_path, replay_leaving_out, timeline, kinds,
                        zramctl, output_all, in_bytes, cpus, plot_path)
    if as_json:
        click.echo(json.dumps(stats | {name: view for name, (view, _) in views.items()},
                              indent=1))
        return
    _what_if(device.profile, allocator, compressor)
    if views:
        for _view, lines in views.values():
            click.echo("\n".join(lines))
        return
    for name, values in stats.items():
        if name == "policy":
            _policy_table(values)
            continue
        click.echo(f"{name}: " + " ".join(str(v) for v in values.values()))
        for field, value in values.items():
            click.echo(f"  {field:<20} {value:>14}")


def _check_zram_views(raw_path, mem_limit, zramctl, output_all, in_bytes, size_report,
                      plot_path):
    """Refuse view options that do not go together, before any work."""
    if (output_all or in_bytes) and not zramctl:
        raise click.UsageError("--output-all and --bytes need --zramctl")
    if plot_path and not size_report:
        raise click.UsageError("--plot needs --size-report")
    if size_report and raw_path:
        raise click.UsageError("--size-report needs a TRACE (a raw dump has no events)")
    if size_report and parse_size(mem_limit):
        raise click.UsageError("--size-report finds the mem_limit itself: drop --mem-limit")


def _zram_views(device, trace_path, replay_leaving_out, timeline, kinds, zramctl,
                output_all, in_bytes, cpus, plot_path):
    """{name: (JSON value, text lines)} of the --zramctl and --size-report
    views asked for; with post-processing steps of `kinds`, the size report
    replays the trace once more without any (the baseline), and with two or
    more kinds once without each, for what each saves."""
    views = {}
    if zramctl:
        row = zramctl_row(device, cpus, swap=trace_path is not None, in_bytes=in_bytes)
        views["zramctl"] = (row, zramctl_table([row], ZRAMCTL_ALL if output_all
                                               else ZRAMCTL_DEFAULT))
    if timeline is not None:
        baseline = replay_leaving_out(None) if kinds else None
        without = {kind: replay_leaving_out(kind)[0] for kind in kinds} \
            if len(kinds) > 1 else {}
        report = size_report(device, timeline, baseline, without)
        views["size_report"] = (report, size_report_lines(report))
        if plot_path:
            from .plots import size_report_plot
            with ReplacingFile(plot_path) as out:
                size_report_plot(report, out.file, f"zram {device.kernel}, "
                                                   f"{device.compressor.name}: {trace_path}")
    return views


def _policy_table(policy):
    """Per policy action: when it ran, how often, and what it did."""
    click.echo(f"policy (clock: {policy['clock']}):")
    for entry in policy["actions"]:
        when = f"at {entry['at']:g} s" + (f", every {entry['every']:g} s"
                                          if "every" in entry else "")
        click.echo(f"  {entry['action']}  ({when}; {entry['runs']} runs)")
        done = {key: value for key, value in entry.items()
                if key not in ("action", "at", "every", "runs", "stopped_by")}
        done |= {f"stopped_by {error}": runs
                 for error, runs in entry.get("stopped_by", {}).items()}
        for field, value in done.items():
            click.echo(f"    {field:<22} {value:>12}")


def _zram_post_processing(device, idle, writeback, writeback_limit, recompress=None):
    """The sysfs writes --idle, --recompress, --writeback and
    --writeback-limit stand for, checked on the fresh device before the
    run; a callable that applies them to the filled device, its `report`
    the outcome."""
    age = idle
    if idle is not None and idle != "all":
        if not idle.isascii() or not idle.isdigit():
            raise click.UsageError(f"--idle '{idle}': expected 'all' or whole seconds")
        age = int(idle)
    if idle is not None:
        device.mark_idle(age)
    if recompress is not None:
        device.parse_recompress(recompress)
    if writeback is not None:
        device.writeback(writeback)
    elif writeback_limit is not None:
        raise click.UsageError("--writeback-limit needs --writeback")

    def apply(device):
        if writeback_limit is not None:
            device.set_writeback_limit(writeback_limit)
        if idle is not None:
            apply.report["idle_marked"] = device.mark_idle(age)
        if recompress is not None:
            outcome = device.recompress(recompress)
            apply.report["recompressed"] = outcome["recompressed"]
            apply.report["recompress_attempted"] = outcome["attempted"]
            apply.report["marked_incompressible"] = outcome["incompressible"]
            if "stopped_by" in outcome:
                apply.report["recompress_stopped_by"] = outcome["stopped_by"]
        if writeback is not None:
            written, error = device.writeback(writeback)
            apply.report["written_back"] = written
            if error:
                apply.report["stopped_by"] = "-" + error

    apply.report = {}
    return apply


@cli.command("kernels")
@click.option("--json", "as_json", is_flag=True, help="Print the table as one JSON object.")
def kernels_cmd(as_json):
    """What differs between the modelled kernels' profiles (the --kernel
    names), and the kernel version or commit where each rule changed."""
    tables = {model: facts_table(model) for model in PROFILES}
    if as_json:
        click.echo(json.dumps(tables, indent=1))
        return
    for model, table in tables.items():
        names = table["profiles"]
        click.echo(f"{model}: --kernel {', '.join(names)}")
        for row in table["differs"]:
            click.echo(f"\n  {row['label']}")
            for name in names:
                click.echo(f"    {name:<6} {_fact_text(row['values'][name])}")
            for line in _allocator_notes(row["values"]):
                click.echo(f"    {line}")
            click.echo(f"    changed: {row['changed']}")
        click.echo(f"\n  the same in every {model} profile:")
        for fact, value in table["same"].items():
            click.echo(f"    {fact:<22} {_fact_text(value)}")
        click.echo("")


def _allocator_notes(values):
    """For an allocators row: each what-if or absent allocator's note, once,
    with the profiles it applies to."""
    notes = {}
    for name, value in values.items():
        if isinstance(value, dict):
            for allocator, entry in value.items():
                if entry.get("note"):
                    key = (entry["status"], allocator, entry["note"])
                    notes.setdefault(key, []).append(name)
    return [f"{status} {allocator} ({', '.join(names)}): {note}"
            for (status, allocator, note), names in notes.items()]


def _fact_text(value):
    """A profile fact in words: allocators by status, backends with the
    algorithm_params they read, lists comma-separated."""
    if isinstance(value, dict) and all("params" in entry for entry in value.values()):
        return "; ".join(name + "".join(f" {key}={text}" for key, text in entry["params"].items())
                         for name, entry in value.items())
    if isinstance(value, dict):
        by_status = {}
        for name, entry in value.items():
            by_status.setdefault(entry["status"], []).append(name)
        return "; ".join(f"{status}: {', '.join(names)}" for status, names in by_status.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(value) or "none"
    return "-" if value is None else str(value)


@cli.command("fidelity")
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def fidelity_cmd(directory, as_json):
    """Run every case of a fidelity folder (kernel counters for page sets)
    and compare: on the kernel's own compressed sizes the numbers must be
    the kernel's exactly; with our compressors the differences are shown.
    The zswap_limited runs are range checks: each counter against the
    kernel's min..max over its boots, widened (difference 0 inside);
    pool_limit_hit is reported, not held.  Cases of kernels without a
    profile here are listed as skipped (on stderr with --json)."""
    rows, skipped = run_fidelity(directory)
    failures = exact_failures(rows)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
    elif rows:
        _emit(rows, ("set", "case", "mode", "field", "check", "simulated", "kernel",
                     "difference", "percent"), False, None, [_fidelity_cell(row) for row in rows])
    for entry in skipped:
        click.echo(f"skipped {entry['set']} {entry['case']} (kernel {entry['kernel']}): "
                   f"{entry['reason']}", err=as_json)
    if not as_json:
        exact = sum(1 for row in rows if row["mode"] == KERNEL_SIZES and row["check"] == EXACT)
        click.echo(f"\n{exact - len(failures)} of {exact} values computed from the kernel's "
                   "own compressed sizes equal the kernel's")
        held = sum(1 for row in rows if row["mode"] == KERNEL_SIZES and row.get("held"))
        if held:
            click.echo(f"{held - len(range_misses(rows))} of {held} zswap_limited counters "
                       "computed from the kernel's own compressed sizes are inside the "
                       "kernel's widened range (pool_limit_hit reported, not held)")
    if failures:
        sys.exit(1)


def _fidelity_cell(row):
    """A fidelity row as the table shows it: a range as min..max, and a
    counter reported but not held marked so."""
    if row["check"] != RANGE:
        return row
    low, high = row["kernel"]
    return dict(row, kernel=f"{low}..{high}", check=RANGE if row["held"] else "reported")


@cli.group("trace")
def trace_group():
    """Make and inspect trace files."""


@trace_group.command("import")
@click.argument("raw_path", metavar="RAW", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, callback=_output_file(),
              help="Trace file to write.")
@_description_option
def import_cmd(raw_path, output, description):
    """Turn a raw page dump (N x 4096 bytes, optionally zstd) into a trace
    that stores page i at offset i of swap type 0."""
    pages = import_raw(raw_path, output, description=description)
    click.echo(f"{output}: {pages} pages")


@trace_group.command("record", context_settings={"ignore_unknown_options": True})
@click.option("--pid", type=int, default=None, help="Record this running process.")
@click.option("-o", "--output", required=True, callback=_output_file(),
              help="Recording file to write.")
@click.option("--interval", "interval_ms", type=click.IntRange(1, None), default=None,
              help="Milliseconds between snapshots (default 1000 once timed).")
@click.option("--duration", "duration_s", type=click.FloatRange(0, None, min_open=True),
              default=None, help="Seconds to record (default: until the process exits).")
@click.option("--shared", is_flag=True, help="Also record shared memory mappings.")
@click.option("--file-dirty", is_flag=True,
              help="Also record private file mappings' dirty (written) pages.")
@click.option("--write-tracking", type=click.Choice(("auto", "soft-dirty", "content")),
              default="auto", show_default=True,
              help="How written pages are found: soft-dirty bits where the kernel has them, "
                   "else page digests.")
@_description_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def record_cmd(pid, output, interval_ms, duration_s, shared, file_dirty, write_tracking,
               description, as_json, command):
    """Record a process's pages over time: --pid PID, or -- COMMAND ARGS...
    to start a program and record it until it exits (or --duration ends)."""
    if (pid is None) == (not command):
        raise click.UsageError("give either --pid PID or -- COMMAND ARGS...")
    summary = record(pid=pid, command=list(command) or None, output=output,
                     interval_ms=interval_ms, duration_s=duration_s, include_shared=shared,
                     include_file_dirty=file_dirty, description=description,
                     write_tracking=write_tracking)
    if as_json:
        click.echo(json.dumps(summary, indent=1))
    else:
        click.echo(", ".join(f"{name} {value}" for name, value in summary.items()))
    status = summary["exit_status"]
    if status and summary["ended"] == "process exited":     # the command failed by itself
        sys.exit(shell_status(status))


@trace_group.command("synth")
@click.option("-o", "--output", required=True, callback=_output_file(),
              help="Trace file to write.")
@click.option("--ram", required=True, help="The modelled program's RAM budget, e.g. 64M.")
@click.option("--recording", callback=_input_file, default=None,
              help="Replay the accesses of a `trace record` recording instead of a model.")
@click.option("--accesses", type=int, default=None,
              help="Accesses to generate (default 4 per footprint page).")
@click.option("--footprint", type=int, default=None,
              help="Pages the program touches (default twice the RAM).")
@click.option("--pattern", type=click.Choice(PATTERNS), default="zipf", show_default=True)
@click.option("--skew", type=float, default=0.8, show_default=True, help="Zipf skew (> 0).")
@click.option("--write-fraction", type=float, default=0.3, show_default=True,
              help="Share of later accesses that write.")
@click.option("--phase", "phases", multiple=True, metavar="PATTERN:ACCESSES[:key=value,...]",
              help="A phase (repeatable; keys offset, footprint, skew, write-fraction); "
                   "phases replace --pattern.")
@click.option("--mix", default=None,
              help="Content mix, e.g. zero=0.05,same=0.05,text=0.4,binary=0.3,random=0.2"
                   "[,source=W].")
@click.option("--source", type=click.Path(dir_okay=False), default=None,
              help="Real pages to sample: a trace or a raw page dump.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--accesses-per-second", "rate", type=float, default=None,
              help="Give every event its access's time (access i at i / RATE s, 1..10^9): "
                   "the clock of zram's idle marking and --policy. Default: no timestamps.")
@_description_option
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def synth_cmd(output, ram, recording, accesses, footprint, pattern, skew, write_fraction,
              phases, mix, source, seed, rate, description, as_json, quiet):
    """Write a trace of the swap events a kernel with --ram of memory would
    produce for a modelled program or a recorded one."""
    model_options = (accesses, footprint, phases, mix, source)
    with Progress(None, "access", quiet) as progress:
        if recording:
            if any(option not in (None, ()) for option in model_options):
                raise click.UsageError("--recording replaces the model options "
                                       "(--accesses, --footprint, --phase, --mix, --source)")
            with RecordingReader(recording) as reader:
                stats = synthesize_from_accesses(
                    output, recording_accesses(reader), ram_pages(ram),
                    description=description or f"{reader.description}; "
                                               f"swap events for --ram {ram}",
                    progress=progress, rate=rate)
        else:
            stats = synthesize(output, ram_pages(ram), accesses=accesses, footprint=footprint,
                               pattern=pattern, zipf_skew=skew, write_fraction=write_fraction,
                               phases=[parse_phase(text) for text in phases] or None,
                               mix=parse_mix(mix) if mix else None, source=source, seed=seed,
                               description=description, progress=progress, rate=rate)
    if as_json:
        click.echo(json.dumps(stats, indent=1))
        return
    click.echo(f"{output}: " + ", ".join(f"{name} {value}" for name, value in stats.items()))


@trace_group.command("info")
@click.argument("trace_path", metavar="TRACE", callback=_input_file)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", "plot_path", callback=_output_file(".png"), default=None,
              help="Also draw the compressed-size histograms to this PNG file.")
@_max_trace_memory
def info_cmd(trace_path, as_json, plot_path):
    """Summarise a trace: events by kind, distinct pages, zero and same-filled
    shares, footprint, and how its pages compress with lz4 and zstd."""
    info = trace_info(trace_path)
    if plot_path:
        from .plots import sizes_plot
        with ReplacingFile(plot_path) as out:
            sizes_plot(info["compressed_sizes"], out.file, trace_path)
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    for name, value in info.items():
        if name == "compressed_sizes":
            continue
        if isinstance(value, dict):
            click.echo(f"{name}:")
            for key, count in value.items():
                click.echo(f"  {key:<24} {count}")
        elif isinstance(value, float):
            click.echo(f"{name:<26} {value:.3f}")
        else:
            click.echo(f"{name:<26} {printable(str(value))}")
    _size_histogram(info["compressed_sizes"])


def _size_histogram(sizes, bar_width=28):
    names = [name for name in sizes if isinstance(sizes[name], dict)]
    click.echo(f"\ncompressed sizes of the {sizes['pages']} stored pages that are not "
               f"same-filled, in {sizes['bin_bytes']}-byte bins")
    if not sizes["pages"]:
        return
    click.echo("mean: " + ", ".join(f"{name} {sizes[name]['mean']:.0f} B" for name in names))
    top = max(max(sizes[name]["histogram"]) for name in names)
    bins = len(sizes[names[0]]["histogram"])
    click.echo(f"{'bytes':>11}  " + "  ".join(f"{name:<{bar_width + 7}}" for name in names))
    for i in range(bins):
        low = i * sizes["bin_bytes"]
        label = f"{low:>4}-{low + sizes['bin_bytes'] - 1:<4}" if i < bins - 1 else f"{low:>4}+    "
        cells = []
        for name in names:
            count = sizes[name]["histogram"][i]
            bar = "#" * round(bar_width * count / top)
            cells.append(f"{count:>6} {bar:<{bar_width}}")
        click.echo(f"{label:>11}  " + "  ".join(cells))


@cli.command("host")
@click.option("--root", default="/", show_default=True, type=click.Path(file_okay=False),
              help="Read /sys and /proc under this directory (a copy of another machine's).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def host_cmd(root, as_json):
    """Show this kernel's zswap and zram counters under zswapsim's names,
    and which modelled kernel `--kernel host` picks for its release."""
    from .host import read_host
    report = read_host(root)
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    click.echo(f"kernel {report['release']}")
    for model, pick in report["profiles"].items():
        note = f" ({pick['note']})" if pick["note"] else ""
        click.echo(f"  --kernel host for {model}: {pick['kernel'] or '-'}{note}")
    _host_section("zswap parameters", report["zswap_parameters"])
    picked = report["profiles"]["zswap"]["kernel"]
    modelled = reported_counters(ZSWAP_PROFILES[picked]) if picked else DEBUGFS_COUNTERS
    _host_section("zswap debugfs", report["zswap_debugfs"], modelled=modelled)
    _host_section("/proc/vmstat", report["vmstat"])
    devices = report["zram"]
    if isinstance(devices, str):
        click.echo(f"\nzram: {devices}")
        return
    for name, device in devices.items():
        algorithm = device["comp_algorithm"]
        if isinstance(algorithm, dict):
            algorithm = f"{algorithm['selected']} (offered: {' '.join(algorithm['offered'])})"
        click.echo(f"\n{name}: comp_algorithm {algorithm}")
        for stat in ("mm_stat", "io_stat", "bd_stat"):
            _host_section(stat, device[stat], indent="  ")


def _host_section(title, values, modelled=None, indent=""):
    """A name/value table, or the one line saying why there is none; names
    a model lacks are marked, so a reader sees what zswapsim cannot show."""
    if isinstance(values, str):
        click.echo(f"\n{indent}{title}: {values}")
        return
    click.echo(f"\n{indent}{title}")
    names = [name for name in modelled or () if name in values]
    names += [name for name in values if name not in names]
    for name in names:
        mark = "  (not modelled)" if modelled is not None and name not in modelled else ""
        click.echo(f"{indent}  {name:<28} {values[name]!s:>14}{mark}")


@cli.command("kernel-check")
@click.argument("pages_path", metavar="PAGES", type=click.Path(dir_okay=False, exists=True))
@click.option("--compressor", default=None,
              help="The kernel's zram compressor (default lzo-rle, else the kernel's default).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--root", default="/", hidden=True, type=click.Path(file_okay=False))
@click.option("--dev", default="/dev", hidden=True, type=click.Path(file_okay=False))
def kernel_check_cmd(pages_path, compressor, as_json, root, dev):
    """Write PAGES (a raw dump, a .pages.zst set or a trace's stored pages)
    to a new zram device of this kernel and print its mm_stat against the
    model's.  Needs root and the zram module; removes the device it made."""
    from .host import kernel_check
    result = kernel_check(pages_path, compressor=compressor, root=root, dev=dev)
    exact = [row for row in result["rows"] if row["mode"] == "kernel sizes"]
    failures = [row for row in exact if row["difference"]]
    if as_json:
        click.echo(json.dumps(result, indent=1))
        sys.exit(1 if failures else 0)
    note = f" ({result['note']})" if result["note"] else ""
    click.echo(f"{pages_path}: {result['pages']} pages written to {result['device']} "
               f"(removed again), compressor {result['compressor']}, kernel "
               f"{result['release']}, profile {result['profile'] or '-'}{note}\n")
    if not result["rows"]:
        _table("kernel mm_stat (no modelled zram kernel to compare)", result["mm_stat"],
               result["mm_stat"])
        return
    _emit(result["rows"], ("mode", "field", "simulated", "kernel", "difference", "percent"),
          False, None)
    if "ours" not in result["modes"]:
        click.echo(f"\n(zswapsim has no {result['compressor']}: only the kernel's sizes run)")
    click.echo(f"\n{len(exact) - len(failures)} of {len(exact)} values computed from the "
               "kernel's own compressed sizes equal the kernel's")
    if failures:
        sys.exit(1)


def main(argv=None):
    """Entry point: run the CLI, turning every expected error into one line
    (control characters escaped, so a path or a message stays on it)."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    try:
        cli.main(args=argv, prog_name="zswapsim", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help())
    except click.exceptions.Abort:
        _fail("interrupted", 130)
    except Terminated as exc:
        _fail(f"terminated by {signal.Signals(exc.signum).name}", 128 + exc.signum)
    except click.ClickException as exc:
        _fail(f"error: {exc.format_message()}", 2)
    except UserError as exc:
        _fail(f"error: {exc}", exc.exit_status)
    except VerifyError as exc:
        _fail(f"VERIFY FAILED: {exc}", 3)
    except PoolCorrupted as exc:
        _fail(f"POOL CORRUPTED: {exc}", 3)
    except WorkerLost as exc:
        _fail(f"error: {exc}", 1)
    except OSError as exc:
        message = exc.strerror or str(exc) or type(exc).__name__
        _fail(f"error: {exc.filename}: {message}" if exc.filename else f"error: {message}", 2)
    except MemoryError:
        _fail("error: out of memory", 1)


def _terminate(signum, frame):
    """SIGTERM or SIGHUP: unwind as Ctrl-C does; a second one is ignored so
    the unwinding (removing partial outputs, ending workers) can finish."""
    for other in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(other, signal.SIG_IGN)
    raise Terminated(signum)


def _fail(message, status):
    click.echo(f"zswapsim: {_escaped(message)}", err=True)
    sys.exit(status)


def _escaped(text):
    """`text` with control characters written as escapes (a newline as \\n,
    ESC as \\x1b), as repr() writes them, other characters kept."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
