"""One configuration, one validation: every boundary is accepted or refused,
in the same words, by replay, compare and tune-retries on the command line
and by the Python API.

The ranges are worked out from the kernel, not read from zswapsim:
- mm/zswap.c declares max_pool_percent and accept_threshold_percent with
  module_param_named(..., uint, 0644) and no set hook, so 0 is legal.  From
  100 up the limit is all of RAM, which a pool living in RAM never passes,
  so 0..100 holds every behaviour (and 100 turns the hysteresis off).
- reclaim_page(pool, unsigned int retries): zbud_reclaim_page and
  z3fold_reclaim_page return -EINVAL at once for retries == 0; 6.3's
  zs_reclaim_page runs its loop zero times and returns -EAGAIN.  So 0 is a
  legal call that makes no try, and the range is unsigned int's.
- totalram_pages is at most 2^52 bytes (x86-64's MAX_PHYSMEM_BITS with
  five-level paging), 2^40 pages of 4096 bytes.
"""

import errno
import json
import random

import pytest

import zswapsim
from zswapsim.cli import main
from zswapsim.compress import get_compressor
from zswapsim.config import ZswapConfig
from zswapsim.errors import ConfigError
from zswapsim.memory import Memory, parse_size
from zswapsim.replay import TIMING_FIELDS, replay
from zswapsim.trace import TraceWriter
from zswapsim.zswap import Zswap

# (setting, CLI option, lowest, highest, the message for one below, one above)
BOUNDARIES = [
    ("max_pool_percent", "--max-pool-percent", 0, 100,
     "max_pool_percent -1 is outside 0..100", "max_pool_percent 101 is outside 0..100"),
    ("accept_threshold_percent", "--accept-threshold-percent", 0, 100,
     "accept_threshold_percent -1 is outside 0..100",
     "accept_threshold_percent 101 is outside 0..100"),
    ("retries", "--retries", 0, (1 << 32) - 1,
     "retries -1 is outside 0..4294967295", "retries 4294967296 is outside 0..4294967295"),
]
OVERFLOW = "999999999999999999999999"
OVERFLOW_MESSAGE = (f"size '{OVERFLOW}' is larger than 4096T (2^52 bytes, the most memory "
                    "Linux can address)")


def half_random_page(seed):
    """1500 random bytes then zeros: two fit a zbud page (see test_zswap.py)."""
    return random.Random(seed).randbytes(1500) + bytes(4096 - 1500)


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    """Four half-random pages stored at offsets 0..3, then each loaded."""
    path = tmp_path_factory.mktemp("config") / "four.trace"
    with TraceWriter(path) as w:
        for offset in range(4):
            w.store(0, offset, half_random_page(offset))
        for offset in range(4):
            w.load(0, offset)
    return path


def cli(capsys, *args):
    """Run the CLI in this process: (exit status, stdout, stderr lines)."""
    try:
        main([str(arg) for arg in args])
        status = 0
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err.splitlines()


# -- the ranges ----------------------------------------------------------

@pytest.mark.parametrize("name, option, low, high, below, above", BOUNDARIES)
def test_each_boundary_is_the_same_in_the_api(trace, name, option, low, high, below, above):
    for value in (low, high):
        assert getattr(ZswapConfig(**{name: value}), name) == value
        assert getattr(Zswap(**{name: value}), name) == value
    assert replay(trace, **{name: low})[name] == low
    for value, message in ((low - 1, below), (high + 1, above)):
        for build in (lambda: ZswapConfig(**{name: value}), lambda: Zswap(**{name: value}),
                      lambda: replay(trace, **{name: value}),
                      lambda: zswapsim.compare(trace, **{name: value})):
            with pytest.raises(ConfigError) as error:
                build()
            assert str(error.value) == message
    sweep = {"retries": lambda v: zswapsim.tune_retries(trace, [v]),
             "max_pool_percent": lambda v: zswapsim.tune_retries(trace, [8], [v]),
             "accept_threshold_percent":
                 lambda v: zswapsim.tune_retries(trace, [8], accept_threshold_percent=v)}[name]
    for value in (low, high):
        assert len(sweep(value)) == 1
    for value, message in ((low - 1, below), (high + 1, above)):
        with pytest.raises(ConfigError) as error:
            sweep(value)
        assert str(error.value) == message


@pytest.mark.parametrize("name, option, low, high, below, above", BOUNDARIES)
@pytest.mark.parametrize("command", ["replay", "compare", "tune-retries"])
def test_each_boundary_is_the_same_on_the_command_line(capsys, trace, command, name, option,
                                                       low, high, below, above):
    extra = ("--backend", "zbud", "--compressor", "lz4") if command == "compare" else ()
    for value in (low, high):
        status, out, err = cli(capsys, command, trace, option, value, "--json", *extra)
        assert (status, err) == (0, []), err
        results = json.loads(out)
        for result in results if isinstance(results, list) else [results]:
            if name in result:                      # compare's records leave settings out
                assert result[name] == value
    for value, message in ((low - 1, below), (high + 1, above)):
        status, out, err = cli(capsys, command, trace, option, value, *extra)
        assert (status, out, err) == (2, "", [f"zswapsim: error: {message}"])


def test_what_the_kernel_does_at_the_lowest_values():
    """max_pool_percent 0: zswap_is_full is limit (0) < pool pages, so the
    first store goes in and the second finds the pool full.  retries 0:
    zbud's reclaim_page returns -EINVAL without a try, zsmalloc's (6.3)
    -EAGAIN.  accept_threshold_percent 0: zswap_can_accept is 0 > pool
    pages, never true, so a pool once full accepts nothing again."""
    z = Zswap(ram_pages=100, max_pool_percent=0)
    assert z.store(0, 0, half_random_page(0)) is True
    assert z.store(0, 1, half_random_page(1)) is False and z.pool_limit_hit == 1

    for backend, kernel, result in (("zbud", "6.1", -errno.EINVAL),
                                    ("zsmalloc", "6.3", -errno.EAGAIN)):
        z = Zswap(backend=backend, kernel=kernel, ram_pages=100, max_pool_percent=10,
                  retries=0)
        offset = 0
        while not z.pool_limit_hit:
            z.store(0, offset, half_random_page(offset))
            offset += 1
        z.run_pending_work()
        assert z.reclaim_results == {result: 1} and z.reject_reclaim_fail == 1
        assert z.written_back_pages == 0 and z.counters()["reclaim_pages_scanned"] == 0

    z = Zswap(ram_pages=100, max_pool_percent=10, accept_threshold_percent=0, retries=0)
    for offset in range(22):                      # 21 fit 11 pages; the 22nd hits the limit
        z.store(0, offset, half_random_page(offset))
    assert z.pool_limit_hit == 1
    z.invalidate_area(0)
    assert z.pool_pages() == 0
    assert z.store(0, 0, half_random_page(0)) is False and z.pool_limit_hit == 1


# -- sizes, lists, options -------------------------------------------------

def test_ram_as_a_size_equals_ram_pages(trace):
    assert ZswapConfig(ram="32M") == ZswapConfig(ram_pages=8192)
    assert Zswap(ram="32M").limit_pages == 8192 * 20 // 100
    assert replay(trace, ram="32M")["ram_pages"] == 8192
    assert untimed(zswapsim.compare(trace, ram="32M")) == \
        untimed(zswapsim.compare(trace, ram_pages=8192))
    assert untimed(zswapsim.tune_retries(trace, (1, 2), ram="32M")) == \
        untimed(zswapsim.tune_retries(trace, (1, 2), ram_pages=8192))


def untimed(records):
    """Sweep records without the pass's wall-clock timings."""
    return [{name: value for name, value in r.items() if name not in TIMING_FIELDS}
            for r in records]
    with pytest.raises(ConfigError, match="give ram or ram_pages, not both"):
        replay(trace, ram="32M", ram_pages=8192)
    assert ZswapConfig(ram="4096T").ram_pages == 1 << 40
    with pytest.raises(ConfigError, match="larger than 4096T"):
        parse_size(str((1 << 52) + 1))
    with pytest.raises(ConfigError, match="cannot read size"):
        ZswapConfig(ram="\u0663\u0662M")                # Arabic-Indic digits: 32M


def test_lists_may_be_strings(trace):
    records = zswapsim.compare(trace, "zbud,zsmalloc", "lz4")
    assert untimed(records) == untimed(zswapsim.compare(trace, ["zbud", "zsmalloc"], ["lz4"]))
    assert sorted(r["backend"] for r in records) == ["zbud", "zsmalloc"]
    tuned = zswapsim.tune_retries(trace, "1,2", "10,20")
    assert [(r["max_pool_percent"], r["retries"]) for r in tuned] == \
        [(10, 1), (10, 2), (20, 1), (20, 2)]
    with pytest.raises(ConfigError, match="the list of backends is empty"):
        zswapsim.compare(trace, ",")
    with pytest.raises(ConfigError, match="unknown backend 'slab'"):
        zswapsim.compare(trace, "zbud,slab")


def test_pool_options_are_the_drivers_own():
    with pytest.raises(ConfigError) as error:
        Zswap(backend="zbud", pool_options={"chain_size": 8})
    assert str(error.value) == "zbud takes no pool options, not chain_size"
    with pytest.raises(ConfigError) as error:
        Zswap(backend="zsmalloc", pool_options={"chains": 8})
    assert str(error.value) == "zsmalloc takes only chain_size, not chains"
    for bad in (3, 17, 8.0, "8"):
        with pytest.raises(ConfigError, match="zsmalloc chain_size .* is outside 4..16"):
            Zswap(backend="zsmalloc", pool_options={"chain_size": bad})
    assert Zswap(backend="zsmalloc", pool_options={"chain_size": 8}).pool.chain_size == 8


def test_compressor_levels_are_ascii_digits(capsys, trace):
    assert get_compressor("zstd-3").name == "zstd-3"
    for name in ("zstd-\u0663", "kernel-lz4hc-\u0669"):         # Arabic-Indic 3 and 9
        with pytest.raises(ConfigError, match="unknown compressor"):
            get_compressor(name)
    status, out, err = cli(capsys, "replay", trace, "--compressor", "zstd-\u0663")
    assert status == 2 and len(err) == 1 and "unknown compressor 'zstd-\u0663'" in err[0]


@pytest.mark.parametrize("args", [["replay", "TRACE"], ["compare", "TRACE"],
                                  ["tune-retries", "TRACE"], ["trace", "synth", "-o", "OUT"]])
def test_an_enormous_ram_is_one_line(capsys, trace, tmp_path, args):
    out_path = tmp_path / "never.trace"
    args = [trace if a == "TRACE" else out_path if a == "OUT" else a for a in args]
    status, out, err = cli(capsys, *args, "--ram", OVERFLOW)
    assert (status, out, err) == (2, "", [f"zswapsim: error: {OVERFLOW_MESSAGE}"])
    assert not out_path.exists()


# -- names as the kernel has them ------------------------------------------

def test_pswpin_and_pswpout(capsys, trace):
    """max_pool_percent 0 over the four stores and loads: store 0 goes in;
    store 1 finds the pool full (a swap write) and queues the shrink, which
    before store 2 writes page 0 back (a second write); stores 2 and 3 are
    held off by the hysteresis, which accepts below 0 pages only (two more
    writes); all four loads then read the swap device."""
    status, out, err = cli(capsys, "replay", trace, "--max-pool-percent", "0", "--json")
    result = json.loads(out)
    assert (result["pswpout"], result["pswpin"]) == (4, 4)
    assert (result["swap_writes"], result["swap_reads"]) == (4, 4)
    assert result["written_back_pages"] == 1 and result["zswpout"] == 1
    status, out, err = cli(capsys, "replay", trace, "--max-pool-percent", "0")
    assert any(line.split() == ["pswpout", "4"] for line in out.splitlines())
    assert any(line.split() == ["pswpin", "4"] for line in out.splitlines())


def test_zpool_is_backend(capsys, trace):
    status, out, err = cli(capsys, "replay", trace, "--zpool", "zsmalloc", "--json")
    assert json.loads(out)["backend"] == "zsmalloc"
    status, out, err = cli(capsys, "compare", trace, "--zpool", "zbud,z3fold", "--compressor",
                           "lz4", "--json")
    assert sorted(r["backend"] for r in json.loads(out)) == ["z3fold", "zbud"]


def test_same_filled_pages_enabled(capsys, tmp_path):
    path = tmp_path / "zero.trace"
    with TraceWriter(path) as w:
        w.store(0, 0, bytes(4096))
        w.load(0, 0)
    runs = {}
    for args in ([], ["--no-same-filled-pages-enabled"], ["--kernel", "3.11"]):
        status, out, err = cli(capsys, "replay", path, "--json", *args)
        runs[tuple(args)] = json.loads(out)
    assert (runs[()]["same_filled_pages"], runs[()]["pool_pages"]) == (1, 0)
    for args in (("--no-same-filled-pages-enabled",), ("--kernel", "3.11")):
        assert runs[args]["same_filled_pages_enabled"] is False
        assert (runs[args]["same_filled_pages"], runs[args]["pool_pages"]) == (0, 1)


# -- what-ifs ---------------------------------------------------------------

# Each what-if's note must say these (the kernel facts: 3.11's zswap was zbud
# alone, zsmalloc reached zswap with the zpool layer in 3.18 and z3fold came
# in 4.8; xvmalloc was zram's, never zswap's; same-filled pages came in 4.15).
@pytest.mark.parametrize("args, phrases", [
    (["--kernel", "3.11", "--backend", "zsmalloc"], ["zsmalloc only from 3.18"]),
    (["--kernel", "3.11", "--backend", "z3fold"], ["z3fold came in 4.8, after 3.11's zswap"]),
    (["--backend", "xvmalloc"], ["xvmalloc never shipped in zswap"]),
    (["--kernel", "6.3", "--backend", "xvmalloc"], ["xvmalloc never shipped in zswap"]),
    (["--kernel", "3.11", "--same-filled-pages-enabled"],
     ["3.11's zswap had no same-filled pages"]),
    (["--kernel", "3.11", "--backend", "xvmalloc", "--same-filled-pages-enabled"],
     ["xvmalloc never shipped in zswap", "; 3.11's zswap had no same-filled pages"]),
    # lib/lz4 was LZ4 r90 until 4.11 imported v1.7.3, the code zswapsim has
    (["--kernel", "3.11"], ["3.11's lib/lz4 is LZ4 r90, replaced by v1.7.3 in 4.11"]),
    (["--compressor", "lz4-upstream"], ["lz4-upstream is userspace liblz4"]),
    (["--compressor", "zstd-upstream-19"], ["zstd-upstream-19 is userspace libzstd 1.5.7"]),
    # crypto/zstd.c: zstd_get_params(ZSTD_DEF_LEVEL 3, ...), no level parameter
    (["--compressor", "zstd-1", "--kernel", "6.12"], ["6.12's zswap zstd is always level 3"]),
])
def test_a_what_if_says_so_once(capsys, trace, args, phrases):
    status, out, err = cli(capsys, "replay", trace, *args, "--json")
    assert status == 0 and len(err) == 1 and err[0].startswith("zswapsim: note: what-if: ")
    note = err[0][len("zswapsim: note: what-if: "):]
    assert all(phrase in note for phrase in phrases)
    assert json.loads(out)["what_if"] == note
    status, out, err = cli(capsys, "replay", trace, *args)
    assert err == [f"zswapsim: note: what-if: {note}"] and "what-if" not in out


def test_what_shipped_runs_without_a_note(capsys, trace):
    for kernel, backend, compressor in (
            ("3.11", "zbud", "lzo"), ("6.1", "zsmalloc", "lz4"), ("6.1", "z3fold", "zstd"),
            ("6.3", "zsmalloc", "lzo-rle"), ("6.12", "zbud", "zstd-3"),
            ("6.18", "zsmalloc", "lz4hc")):
        status, out, err = cli(capsys, "replay", trace, "--kernel", kernel, "--backend",
                               backend, "--compressor", compressor, "--json")
        assert (status, err, json.loads(out)["what_if"]) == (0, [], None)


@pytest.mark.parametrize("kernel, compressor, message", [
    ("3.11", "zstd", "Linux 3.11's zswap has no zstd: the crypto API's zstd came in 4.17"),
    ("3.11", "lzo-rle", "Linux 3.11's zswap has no lzo-rle: lzo-rle came in 5.1"),
    ("3.11", "842", "Linux 3.11's zswap has no 842: 3.11's crypto 842 is the nx-842 hardware"),
])
def test_a_compressor_the_kernel_lacks_is_one_error(capsys, trace, kernel, compressor, message):
    status, out, err = cli(capsys, "replay", trace, "--kernel", kernel, "--compressor",
                           compressor)
    assert status == 2 and len(err) == 1 and message in err[0] and out == ""


def test_a_sweep_says_what_is_a_what_if_in_its_output(capsys, trace):
    """Sweeps mark what-ifs in their records and table (no stderr note: a
    default compare sweeps xvmalloc on every run)."""
    status, out, err = cli(capsys, "compare", trace, "--backend", "zbud,xvmalloc",
                           "--compressor", "lz4,zstd", "--json")
    assert (status, err) == (0, [])
    notes = {r["backend"]: r["what_if"] for r in json.loads(out)}
    assert notes["zbud"] is None
    assert notes["xvmalloc"].startswith("xvmalloc never shipped in zswap")
    status, out, err = cli(capsys, "compare", trace, "--backend", "zbud,xvmalloc")
    assert "xvmalloc*" in out and "* a what-if: xvmalloc never shipped in zswap" in out
    status, out, err = cli(capsys, "tune-retries", trace, "--kernel", "3.11", "--backend",
                           "zsmalloc", "--retries", "1,2", "--json")
    assert (status, err) == (0, [])
    assert all(r["what_if"].startswith("zswap could use zsmalloc only from 3.18")
               for r in json.loads(out))


def test_a_memory_given_is_the_ram():
    assert Zswap(memory=Memory(100), max_pool_percent=10).limit_pages == 10
    with pytest.raises(ConfigError, match="the memory given has 100 pages"):
        Zswap(memory=Memory(100), ram="32M")


def test_wrong_kinds_of_value_are_config_errors():
    for settings, message in (
            ({"retries": "8"}, "retries '8' is not an integer"),
            ({"max_pool_percent": 20.0}, "max_pool_percent 20.0 is not an integer"),
            ({"same_filled_pages_enabled": 1}, "same_filled_pages_enabled is True, False or "
                                               "None (the kernel's default), not 1"),
            ({"faults": {"alloc": 0.5, "oom": 1}}, "faults take seed, alloc, swap_write, "
                                                   "evict, not oom"),
            ({"faults": {"evict": 1.5}}, "evict fault rate 1.5 is outside 0..1"),
            ({"kernel": "5.0"}, "unknown zswap kernel '5.0'; profiles: 6.1, 6.3, 3.11"),
            ({"compressor": "lzma"}, "unknown compressor 'lzma'")):
        with pytest.raises(ConfigError) as error:
            Zswap(**settings)
        assert str(error.value).startswith(message)
    with pytest.raises(ConfigError, match="unknown zswap setting chain_size; known: backend"):
        Zswap(backend="zsmalloc", chain_size=8)
