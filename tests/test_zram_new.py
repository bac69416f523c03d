"""zram of Linux 6.12 and 6.18 against the kernel's sources and what the
real 6.12.117 and 6.18.15 kernels reported (fidelity/linux-6.12, -6.18).

Facts, as read in torvalds/linux drivers/block/zram/ and the shared docs:
- zram_drv.c, mm_stat_show (6.12 and 6.18 alike, scnprintf then sysfs_emit
  of nine "%8llu"-style fields): orig_data_size, compr_data_size,
  mem_used_total, mem_limit, mem_used_max, same_pages, pages_compacted,
  huge_pages, huge_pages_since.  The fidelity files record the same nine
  names in their mm_stat.
- zram_drv.c, io_stat_show (6.12 and 6.18): "%8llu %8llu 0 %8llu" of
  failed_reads, failed_writes, notify_free: the third field, invalid_io,
  is a literal 0 since valid_io_request went (6.4); 6.1 counted it.
- zram_drv.c, bd_stat_show (CONFIG_ZRAM_WRITEBACK): bd_count, bd_reads,
  bd_writes, in 4 KiB units.
- ../shared/KERNEL.md §5: huge_class_size 3625 with zsmalloc chains of 8;
  ../shared/fidelity/README.md: CONFIG_ZSMALLOC_CHAIN_SIZE=8 in both Debian
  builds; lib/zstd is libzstd 1.5.6 in 6.12, 1.5.7 in 6.18.
- backend_lz4.c: level is LZ4_compress_fast's acceleration (default 1);
  backend_lz4hc.c: LZ4_compress_HC's level (default 9); backend_zstd.c:
  zstd_get_params(level, PAGE_SIZE) (default 3); backend_deflate.c:
  zlib_deflateInit2(level (default Z_DEFAULT_COMPRESSION), Z_DEFLATED,
  -11, MAX_MEM_LEVEL 8); from 6.16 ("zram: support deflate-specific
  params", dc75a0d93bd5) the window bits come from deflate.winbits;
  backend_lzo.c, backend_lzorle.c, backend_842.c read no parameter.
- zram_rw_page is gone since 6.3.
- mm/page_io.c swap_writepage from 6.12: a zero-filled folio sets its
  zeromap bits and is not written (SWPOUT_ZERO); a load of it is filled
  with zeros (SWPIN_ZERO); another page clears the bits before its write.
  zram's slot keeps what it held until the swap slot is freed.

Each test runs in both engines (conftest's zram_engine): zram.Zram and its
compiled twin NativeZram, the command line and fidelity.py included.
"""

import json
import zlib

import pytest

from kernel_data import FIDELITY, load_set
from test_profiles import one_line_error
from zswapsim import _kcompress
from zswapsim import fidelity
from zswapsim.cli import main
from zswapsim.engine import ENGINE_VARIABLE
from zswapsim.compress import GivenLengths
from zswapsim.errors import ConfigError
from zswapsim.fidelity import KERNEL_SIZES, run_fidelity
from zswapsim.profiles import KERNEL_ZSTD, ZRAM_PROFILES
from zswapsim.trace import TraceWriter
from zswapsim.zram_replay import zram_replay

NEW = ("6.12", "6.18")
MM_STAT_SHOW = ("orig_data_size", "compr_data_size", "mem_used_total", "mem_limit",
                "mem_used_max", "same_pages", "pages_compacted", "huge_pages",
                "huge_pages_since")
IO_STAT_SHOW = ("failed_reads", "failed_writes", "invalid_io", "notify_free")
BD_STAT_SHOW = ("bd_count", "bd_reads", "bd_writes")
HUGE_CLASS_SIZE_CHAIN_8 = 3625
LIBZSTD = {"6.12": "1.5.6", "6.18": "1.5.7"}
ALGORITHMS = ("lz4", "lz4hc", "zstd", "deflate")


def text_pages(count=24):
    """Compressible pages that differ from one another: numbered lines."""
    pages = []
    for n in range(count):
        text = "".join(f"line {n * 1000 + i}: the quick brown fox {i * i % 97}\n"
                       for i in range(200))
        pages.append(text.encode()[:4096].ljust(4096, b"."))
    return pages


def stored_bytes(lengths):
    """compr_data_size for these compressed lengths: 4096 for a huge one."""
    return sum(4096 if n >= HUGE_CLASS_SIZE_CHAIN_8 else n for n in lengths)


def device_bytes(engine, kernel, compressor, params=None, pages=None):
    device = engine(1 << 24, compressor=compressor, kernel=kernel, algorithm_params=params)
    for index, page in enumerate(pages or text_pages()):
        assert device.write(index, page)
    return device.mm_stat()["compr_data_size"]


# -- the profiles --------------------------------------------------------------

@pytest.mark.parametrize("kernel", NEW)
def test_profile_holds_the_kernels_facts(zram_engine, kernel):
    profile = ZRAM_PROFILES[kernel]
    assert (profile.zsmalloc_chain_size, profile.rw_page, profile.counts_invalid_io) == \
        (8, False, False)
    assert KERNEL_ZSTD[kernel][0] == LIBZSTD[kernel]
    device = zram_engine(1 << 20, kernel=kernel)
    assert device.huge_class_size == HUGE_CLASS_SIZE_CHAIN_8
    assert not device.is_huge(HUGE_CLASS_SIZE_CHAIN_8 - 1)
    assert device.is_huge(HUGE_CLASS_SIZE_CHAIN_8)
    sources = {b.name: b.source for b in profile.backends}
    assert sources == {"lzo": "backend_lzo.c", "lzo-rle": "backend_lzorle.c",
                       "lz4": "backend_lz4.c", "lz4hc": "backend_lz4hc.c",
                       "zstd": "backend_zstd.c", "deflate": "backend_deflate.c",
                       "842": "backend_842.c"}
    defaults = {b.name: {key: default for key, _, default in b.params}
                for b in profile.backends if b.params}
    deflate = {"level": -1} | ({"deflate.winbits": -11} if kernel == "6.18" else {})
    assert defaults == {"lz4": {"level": 1}, "lz4hc": {"level": 9}, "zstd": {"level": 3},
                        "deflate": deflate}


@pytest.mark.parametrize("kernel", NEW + ("6.1", "6.6"))
def test_stat_fields_are_the_show_functions(zram_engine, kernel):
    device = zram_engine(1 << 20, kernel=kernel)
    assert tuple(device.mm_stat()) == MM_STAT_SHOW
    assert tuple(device.io_stat()) == IO_STAT_SHOW
    assert device.bd_stat() == dict.fromkeys(BD_STAT_SHOW, 0)


@pytest.mark.parametrize("kernel", NEW)
def test_the_kernels_recorded_mm_stat_has_these_fields(kernel):
    expected, _ = load_set(f"linux-{kernel}/mix2000")
    for alg in ALGORITHMS:
        assert tuple(expected["zram"][alg]["mm_stat"]) == MM_STAT_SHOW


@pytest.mark.parametrize("kernel, invalid_io", [("6.1", 2), ("6.6", 0), ("6.12", 0),
                                               ("6.18", 0)])
def test_invalid_io_is_a_literal_zero_from_6_4(zram_engine, kernel, invalid_io):
    device = zram_engine(4096, kernel=kernel)
    assert device.write(1, bytes(4096)) is False
    assert device.read(1) is None
    assert device.io_stat()["invalid_io"] == invalid_io


# -- the kernel's own sizes: exact ---------------------------------------------

@pytest.mark.parametrize("name", ["mix2000", "mix10000"])
@pytest.mark.parametrize("kernel", NEW)
def test_mm_stat_equals_the_real_kernels_on_its_sizes(zram_engine, kernel, name):
    """All nine fields, before and after compaction, for every algorithm."""
    expected, pages = load_set(f"linux-{kernel}/{name}")
    assert sorted(expected["zram"]) == sorted(ALGORITHMS)
    for alg, case in expected["zram"].items():
        device = zram_engine(case["disksize"], kernel=kernel,
                             compressor=GivenLengths(alg, pages, case["per_page_compr_size"]))
        for index, page in enumerate(pages):
            assert device.write(index, page)
        assert device.mm_stat() == case["mm_stat"], alg
        device.compact()
        assert device.mm_stat() == case["mm_stat_after_compact"], alg


def test_the_6_6_model_already_gives_6_12s_mm_stat(zram_engine):
    expected, pages = load_set("linux-6.12/mix2000")
    for alg, case in expected["zram"].items():
        device = zram_engine(case["disksize"], kernel="6.6",
                             compressor=GivenLengths(alg, pages, case["per_page_compr_size"]))
        for index, page in enumerate(pages):
            device.write(index, page)
        assert device.mm_stat() == case["mm_stat"], alg


def test_fidelity_runs_the_zram_cases_of_6_12_and_6_18_exactly(zram_engine, monkeypatch):
    # the engine's zram; the zswap cases stay Python's (no native z3fold yet)
    monkeypatch.delenv(ENGINE_VARIABLE)
    monkeypatch.setattr(fidelity, "zram_class", lambda: zram_engine)
    rows, _ = run_fidelity(FIDELITY)
    exact = [row for row in rows if row["mode"] == KERNEL_SIZES
             and row["case"].startswith("zram")
             and row["set"].startswith(("linux-6.12/", "linux-6.18/"))]
    # 2 kernels x 2 sets x 4 algorithms x 5 fields
    assert len(exact) == 80
    assert [row for row in exact if row["difference"]] == []


@pytest.mark.parametrize("kernel", NEW)
def test_deflate_end_to_end_is_the_kernels(zram_engine, kernel):
    """zlib's raw deflate at level 6, window bits 11, memLevel 8 gives the
    kernel's bytes (the README: deflate sizes equal 6.1's)."""
    expected, pages = load_set(f"linux-{kernel}/mix2000")
    case = expected["zram"]["deflate"]
    device = zram_engine(case["disksize"], compressor="deflate", kernel=kernel)
    for index, page in enumerate(pages):
        device.write(index, page)
    assert device.mm_stat() == case["mm_stat"]


# -- algorithm_params ------------------------------------------------------------

def raw_deflate(page, level, wbits):
    stream = zlib.compressobj(level, zlib.DEFLATED, wbits, 8)
    return stream.compress(page) + stream.flush()


@pytest.mark.parametrize("kernel", NEW)
def test_a_level_changes_deflate_as_zlib_does(zram_engine, kernel):
    pages = text_pages()
    for level in (1, 9):
        expected = stored_bytes(len(raw_deflate(p, level, -11)) for p in pages)
        assert device_bytes(zram_engine, kernel, "deflate", f"level={level}", pages) == expected
    assert stored_bytes(len(raw_deflate(p, 1, -11)) for p in pages) != \
        stored_bytes(len(raw_deflate(p, 9, -11)) for p in pages)
    # the default is Z_DEFAULT_COMPRESSION, zlib's 6: the same as no params
    assert device_bytes(zram_engine, kernel, "deflate", "level=-1", pages) == \
        device_bytes(zram_engine, kernel, "deflate", None, pages)


def test_deflate_window_bits_are_6_18s(zram_engine):
    pages = text_pages()
    small = stored_bytes(len(raw_deflate(p, 6, -9)) for p in pages)
    assert device_bytes(zram_engine, "6.18", "deflate", "deflate.winbits=-9", pages) == small
    assert small != device_bytes(zram_engine, "6.18", "deflate", None, pages)
    zlib_wrapped = stored_bytes(len(raw_deflate(p, 6, 15)) for p in pages)
    assert device_bytes(zram_engine, "6.18", "deflate", "deflate.winbits=15", pages) == \
        zlib_wrapped


@pytest.mark.parametrize("kernel", NEW)
def test_a_level_reaches_lib_lz4(zram_engine, kernel):
    """backend_lz4hc.c passes the level to LZ4_compress_HC, backend_lz4.c to
    LZ4_compress_fast as its acceleration, both into zcomp's 8192 bytes:
    the device stores what lib/lz4 at that level gives (the compiled
    twin, itself held to the kernel's per-page sizes in
    test_kernel_compress), and a level changes it."""
    pages = text_pages()
    for level in (1, 12):
        expected = stored_bytes(len(_kcompress.lz4hc_compress(p, 8192, level)) for p in pages)
        assert device_bytes(zram_engine, kernel, "lz4hc", f"level={level}", pages) == expected
    assert device_bytes(zram_engine, kernel, "lz4hc", "level=1", pages) != \
        device_bytes(zram_engine, kernel, "lz4hc", "level=12", pages)
    fast = stored_bytes(len(_kcompress.lz4_compress(p, 8192, 64)) for p in pages)
    assert device_bytes(zram_engine, kernel, "lz4", "level=64", pages) == fast
    # a larger acceleration probes fewer positions: longer output
    assert fast > device_bytes(zram_engine, kernel, "lz4", "level=1", pages) == \
        device_bytes(zram_engine, kernel, "lz4")


@pytest.mark.parametrize("kernel", NEW)
def test_a_level_changes_zstd(zram_engine, kernel):
    pages = text_pages()
    fastest, strongest = (device_bytes(zram_engine, kernel, "zstd", f"level={level}", pages)
                          for level in (1, 19))
    assert strongest < fastest
    assert device_bytes(zram_engine, kernel, "zstd", "level=3", pages) == \
        device_bytes(zram_engine, kernel, "zstd", None, pages)


@pytest.mark.parametrize("kernel, compressor, params, fragment", [
    ("6.12", "zstd", "window=3", "zram's zstd (backend_zstd.c) under Linux 6.12 reads no "
                                 "'window'; it reads level"),
    ("6.12", "zstd", "level=abc", "'level=abc': expected KEY=INTEGER"),
    ("6.12", "zstd", "level", "'level': expected KEY=INTEGER"),
    ("6.12", "zstd", "level=1 level=2", "level given twice"),
    ("6.12", "zstd", "level=23", "zstd level=23: not in 1..22 (default 3)"),
    ("6.12", "lz4hc", "level=17", "lz4hc level=17: not in 1..16 (default 9)"),
    ("6.12", "lz4", "level=0", "lz4 level=0: not in 1..65537 (default 1)"),
    ("6.18", "deflate", "level=10", "deflate level=10: not in -1..9 (default -1)"),
    ("6.12", "lzo", "level=1", "zram's lzo takes no algorithm_params under Linux 6.12"),
    ("6.18", "842", "level=1", "zram's 842 takes no algorithm_params under Linux 6.18"),
    ("6.1", "zstd", "level=1", "Linux 6.1's zram has no algorithm_params"),
    ("6.6", "zstd", "level=1", "Linux 6.6's zram has no algorithm_params"),
    ("6.12", "deflate", "deflate.winbits=-12", "under Linux 6.12 reads no 'deflate.winbits'"),
    ("6.18", "deflate", "deflate.winbits=-8", "not in -15..-9 or 9..15 (default -11)"),
    ("6.18", "zstd", "dict=/etc/dictionary", "compression dictionaries are not modelled"),
])
def test_bad_algorithm_params_are_one_line(zram_engine, capsys, tmp_path, kernel, compressor,
                                           params, fragment):
    dump = tmp_path / "dump.raw"
    dump.write_bytes(text_pages(1)[0])
    line = one_line_error(capsys, ["zram", "--raw", str(dump), "--kernel", kernel,
                                   "--compressor", compressor, "--algorithm-params", params])
    assert fragment in line, line


def test_algorithm_params_need_a_named_compressor(zram_engine):
    with pytest.raises(ConfigError, match="need a compressor named by its algorithm"):
        zram_engine(1 << 20, compressor=GivenLengths("lz4", [], []), kernel="6.12",
             algorithm_params="level=1")


def test_the_cli_prints_the_three_stat_files(zram_engine, capsys, tmp_path):
    dump = tmp_path / "dump.raw"
    dump.write_bytes(b"".join(text_pages(4)))
    main(["zram", "--raw", str(dump), "--kernel", "6.18", "--compressor", "deflate",
          "--algorithm-params", "level=1", "--json"])
    stats = json.loads(capsys.readouterr().out)
    assert tuple(stats) == ("mm_stat", "io_stat", "bd_stat", "debug_stat")
    assert stats["mm_stat"]["compr_data_size"] == \
        stored_bytes(len(raw_deflate(p, 1, -11)) for p in text_pages(4))
    assert stats["bd_stat"] == dict.fromkeys(BD_STAT_SHOW, 0)


# -- the swap layer's zero map (6.12) -------------------------------------------

def zero_map_trace(path):
    """A text page at 1 rewritten as zeros (the swap cache's rewrite of a
    live slot) and loaded; a zero page at 2, loaded, then overwritten by a
    text page, loaded, and freed; a same-filled (0xab) page at 3."""
    text = text_pages(1)[0]
    with TraceWriter(path) as w:
        w.store(0, 1, text)
        w.store(0, 1, bytes(4096))
        w.load(0, 1)
        w.store(0, 2, bytes(4096))
        w.load(0, 2)
        w.store(0, 3, b"\xab" * 4096)
        w.store(0, 2, text)
        w.load(0, 2)
        w.invalidate_page(0, 2)
    return path


@pytest.mark.parametrize("kernel, zero_map", [("6.6", False), ("6.12", True),
                                              ("6.18", True)])
def test_zero_pages_stay_in_the_swap_layer_from_6_12(zram_engine, tmp_path, kernel, zero_map):
    device = zram_engine(1 << 20, kernel=kernel)
    swap = zram_replay(device, zero_map_trace(tmp_path / "zero.trace"))
    mm, io = device.mm_stat(), device.io_stat()
    text_length = len(device.compressor.compress(text_pages(1)[0]))
    if zero_map:
        # zram keeps the text page at 1 (stale, unread) and the 0xab page
        assert (swap["swpout_zero"], swap["swpin_zero"], swap["zero_map_pages"]) == (2, 2, 1)
        assert (mm["same_pages"], mm["compr_data_size"]) == (1, text_length)
    else:
        # every store reaches zram: the zeros at 1 are a same-filled page
        assert "swpout_zero" not in swap
        assert (mm["same_pages"], mm["compr_data_size"]) == (2, 0)
    assert mm["orig_data_size"] == 2 * 4096
    assert io["notify_free"] == 1 and swap["live_pages"] == 2
