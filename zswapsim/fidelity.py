"""Check the models against what a real kernel reported for the same pages.

A fidelity folder holds, per page set, NAME.kernel.json (the counters a
kernel reported, laid out as ../shared/fidelity/README.md describes) and the
page file it names (N raw 4096-byte pages, zstd-compressed).  Every case in
it is run twice where it can be: with the kernel's own per-page compressed
lengths (zram's per_page_compr_size; for zswap with lz4, kernel_lz4_len),
which must match exactly since only our write paths and allocators run;
and end to end with zswapsim's own compressor, whose library may differ
from the kernel's, so differences there are measured, not errors.
"""

import json
from pathlib import Path

import zstandard

from .compress import GivenLengths, get_compressor
from .errors import ConfigError
from .memory import PAGE_SIZE, Memory
from .zram import Zram
from .zswap import Zswap

ZRAM_FIELDS = ("orig_data_size", "compr_data_size", "mem_used_total", "same_pages",
               "huge_pages")
ZSWAP_FIELDS = ("pool_total_size", "stored_pages", "same_filled_pages", "reject_compress_poor")
KERNEL_SIZES, OURS = "kernel sizes", "ours"


def load_set(json_path):
    kernel = json.loads(Path(json_path).read_text())
    pages_path = Path(json_path).parent / kernel["pages_file"]
    with open(pages_path, "rb") as f:
        raw = zstandard.ZstdDecompressor().stream_reader(f).read()
    if len(raw) != kernel["npages"] * PAGE_SIZE:
        raise ConfigError(f"{pages_path}: {len(raw)} bytes, expected {kernel['npages']} pages")
    return kernel, [raw[i * PAGE_SIZE:(i + 1) * PAGE_SIZE] for i in range(kernel["npages"])]


def run_fidelity(directory):
    """One row per (set, case, mode, field): simulated and kernel values."""
    directory = Path(directory)
    sets = sorted(directory.glob("*.kernel.json"))
    if not sets:
        raise ConfigError(f"{directory}: no *.kernel.json files")
    rows = []
    for json_path in sets:
        try:
            kernel, pages = load_set(json_path)
        except (OSError, ValueError, KeyError, zstandard.ZstdError) as exc:
            raise ConfigError(f"{json_path}: cannot read the set ({exc})") from None
        name = json_path.name[:-len(".kernel.json")]
        for alg, expected in kernel.get("zram", {}).items():
            for mode, compressor in _compressors(alg, pages, expected.get("per_page_compr_size")):
                device = Zram(expected["disksize"], compressor=compressor)
                for index, page in enumerate(pages):
                    device.write(index, page)
                rows += _rows(name, f"zram {alg}", mode, device.mm_stat(), expected, ZRAM_FIELDS)
        lz4_lengths = kernel.get("kernel_lz4_len", {}).get("max_out_4096")
        for pool, by_compressor in kernel.get("zswap", {}).items():
            for comp, expected in by_compressor.items():
                given = lz4_lengths if comp == "lz4" else None
                for mode, compressor in _compressors(comp, pages, given):
                    zswap = Zswap(backend=pool, compressor=compressor,
                                  memory=Memory(expected["mem_total_kb"] * 1024 // PAGE_SIZE),
                                  max_pool_percent=expected["max_pool_percent"])
                    for offset, page in enumerate(pages, start=1):
                        zswap.store(0, offset, page)
                    rows += _rows(name, f"zswap {pool}/{comp}", mode, zswap.counters(),
                                  expected, ZSWAP_FIELDS)
    return rows


def _compressors(alg, pages, given_lengths):
    """(mode, compressor) pairs a case can run with."""
    if given_lengths is not None:
        yield KERNEL_SIZES, GivenLengths(alg, pages, given_lengths)
    try:
        yield OURS, get_compressor(alg)
    except ConfigError:
        return                          # lzo and lzo-rle: no userspace twin here


def _rows(name, case, mode, simulated, expected, fields):
    return [{"set": name, "case": case, "mode": mode, "field": field,
             "simulated": simulated[field], "kernel": expected[field],
             "difference": simulated[field] - expected[field],
             "percent": (100.0 * (simulated[field] - expected[field]) / expected[field]
                         if expected[field] else 0.0)}
            for field in fields]


def exact_failures(rows):
    """Rows run on the kernel's own sizes that differ: modelling bugs."""
    return [row for row in rows if row["mode"] == KERNEL_SIZES and row["difference"]]

