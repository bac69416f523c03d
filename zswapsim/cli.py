"""The zswapsim command line: wiring and rendering only, no simulation.

Every error a user can cause ends as one line on stderr and exit status 2;
a verification failure (the simulator lost or corrupted a page) exits 3.
"""

import json
import sys

import click

from .errors import UserError
from .memory import ram_pages
from .replay import VerifyError, replay
from .trace import trace_info
from .trace.importer import import_raw
from .zswap import CLASS_COUNTS, DEBUGFS_COUNTERS, KERNELS

DERIVED = ("density", "effective_ratio", "allocator_waste_bytes", "allocator_waste_percent")
ACTIVITY = ("stores", "zswpout", "duplicate_stores", "reject_pool_full", "reject_too_big",
            "loads", "zswpin", "load_misses", "load_unknown", "invalidates",
            "swap_writes", "swap_reads", "swap_used_slots", "pool_pages", "pool_limit_pages",
            "compressed_bytes", "shrink_runs", "reclaim_calls", "reclaim_success",
            "reclaim_eagain", "reclaim_einval", "reclaim_pages_scanned", "evict_calls",
            "evict_eexist", "evict_enomem")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zswapsim")
def cli():
    """Replay recorded page workloads through models of Linux compressed swap."""


@cli.command("replay")
@click.argument("trace_path", metavar="TRACE", type=click.Path(dir_okay=False))
@click.option("--backend", default="zbud", show_default=True,
              help="zpool allocator: zbud, z3fold, zsmalloc or xvmalloc.")
@click.option("--compressor", default="lz4", show_default=True,
              help="lz4, lz4hc, zstd, zstd-N or deflate.")
@click.option("--ram", default="4G", show_default=True,
              help="Simulated RAM (totalram_pages), e.g. 512M or 4G.")
@click.option("--max-pool-percent", type=click.IntRange(0, 100), default=20, show_default=True,
              help="Pool limit as a percentage of RAM.")
@click.option("--accept-threshold-percent", type=click.IntRange(0, 100), default=90,
              show_default=True, help="6.1 hysteresis: accept again below this share of the limit.")
@click.option("--retries", type=click.IntRange(0, 1 << 20), default=8, show_default=True,
              help="LRU pages reclaim_page tries before -EAGAIN.")
@click.option("--kernel", type=click.Choice(KERNELS), default="6.1", show_default=True,
              help="Which kernel's zswap store path to follow.")
@click.option("--chain-size", type=click.IntRange(4, 16), default=None,
              help="zsmalloc pages per zspage at most (CONFIG_ZSMALLOC_CHAIN_SIZE); "
                   "default 4, or 8 with --kernel 6.3.")
@click.option("--classes", is_flag=True, help="Also print zsmalloc's debugfs classes table.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Check every load and the final pool contents against the trace.")
def replay_cmd(trace_path, backend, compressor, ram, max_pool_percent,
               accept_threshold_percent, retries, kernel, chain_size, classes, as_json, verify):
    """Replay TRACE through zswap and print the kernel's counters."""
    pool_options = None
    if chain_size is not None:
        if backend != "zsmalloc":
            raise click.UsageError("--chain-size applies to --backend zsmalloc only")
        pool_options = {"chain_size": chain_size}
    result = replay(trace_path, backend=backend, compressor=compressor, ram_pages=ram_pages(ram),
                    max_pool_percent=max_pool_percent,
                    accept_threshold_percent=accept_threshold_percent, retries=retries,
                    kernel=kernel, verify=verify, pool_options=pool_options, classes=classes)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    click.echo(f"{result['trace']}: {result['events']} events, backend {backend}, "
               f"compressor {result['compressor']}, kernel {kernel}, "
               f"RAM {result['ram_pages']} pages, max_pool_percent {max_pool_percent}, "
               f"retries {retries}")
    _table("zswap debugfs", result, DEBUGFS_COUNTERS)
    _table("activity", result, ACTIVITY)
    _table("derived", result, DERIVED)
    if classes:
        _classes_table(result["classes"])
    if verify:
        click.echo(f"\nverified: every load matched; {result['live_pages']} live pages all "
                   "accounted for (pool or swap device)")


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


@cli.group("trace")
def trace_group():
    """Make and inspect trace files."""


@trace_group.command("import")
@click.argument("raw_path", metavar="RAW", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Trace file to write.")
@click.option("--description", default=None, help="Free-form source description.")
def import_cmd(raw_path, output, description):
    """Turn a raw page dump (N x 4096 bytes, optionally zstd) into a trace
    that stores page i at offset i of swap type 0."""
    pages = import_raw(raw_path, output, description=description)
    click.echo(f"{output}: {pages} pages")


@trace_group.command("info")
@click.argument("trace_path", metavar="TRACE", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info_cmd(trace_path, as_json):
    """Summarise a trace: events by kind, distinct pages, footprint."""
    info = trace_info(trace_path)
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    for name, value in info.items():
        if isinstance(value, dict):
            click.echo(f"{name}:")
            for key, count in value.items():
                click.echo(f"  {key:<24} {count}")
        else:
            click.echo(f"{name:<26} {value}")


def main(argv=None):
    """Entry point: run the CLI, turning every expected error into one line."""
    try:
        cli.main(args=argv, prog_name="zswapsim", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help())
    except click.exceptions.Abort:
        click.echo("zswapsim: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"zswapsim: error: {exc.format_message()}", err=True)
        sys.exit(2)
    except UserError as exc:
        click.echo(f"zswapsim: error: {exc}", err=True)
        sys.exit(2)
    except VerifyError as exc:
        click.echo(f"zswapsim: VERIFY FAILED: {exc}", err=True)
        sys.exit(3)
    except OSError as exc:
        click.echo(f"zswapsim: error: {exc.filename or ''}: {exc.strerror}", err=True)
        sys.exit(2)
