"""The kernel profiles against kernel facts stated here independently, each
with its source, and the models built from them against what those facts
imply.  Sources:

- 3.11 mm/zswap.c as merged ([PATCHv11 3/4] "zswap: add to mm/", linux-mm,
  May 2013): includes linux/zbud.h and calls zbud_* only; zswap_dstmem is
  kmalloc(PAGE_SIZE * 2); zswap_frontswap_store calls
  zbud_reclaim_page(tree->pool, 8) when zswap_is_full(); struct zswap_header
  holds one swp_entry_t (8 bytes); debugfs has pool_pages, no
  same_filled_pages.
- "mm/zpool: update zswap to use zpool" ([PATCHv5 4/4], Dan Streetman, Jul
  2014): pool_pages becomes pool_total_size; zswap can use zsmalloc.
- 6.1 mm/zswap.c: acomp_request_set_params(..., PAGE_SIZE, dlen) with dlen =
  PAGE_SIZE; zswap_same_filled_pages_enabled = true; shrink_worker calls
  zpool_shrink(pool, 1, NULL); 6.1's zs_zpool_driver has no .shrink.
- ../shared/KERNEL.md §1.3: zsmalloc chain 4 until 6.1, 8 by default later;
  huge_class_size 3264 - 7 = 3257 with chain 4, 3632 - 7 = 3625 with chain 8;
  zsmalloc writeback (its zspage LRU) 6.2 - 6.4.  §1.5: max_zpage_size =
  PAGE_SIZE / 4 * 3 = 3072 before 4.17, "greater than this" stored
  uncompressed.  §1.1: zbud removed in 6.15.
- zram_devops.rw_page = zram_rw_page until its removal in 6.3.
"""

import dataclasses
import io
import json
import re
import tokenize
from pathlib import Path

import pytest

from zswapsim import profiles
from zswapsim.cli import main
from zswapsim.compress import Compressor
from zswapsim.errors import ConfigError
from zswapsim.memory import Memory
from zswapsim.profiles import (ABSENT, SHIPPED, WHAT_IF, ZRAM_PROFILES, ZSWAP_PROFILES,
                               Availability, nearest_profile)
from zswapsim.zram import Zram
from zswapsim.zswap import Zswap

PACKAGE = Path(profiles.__file__).parent
TRACE = str(PACKAGE.parent / "traces" / "python-heap.trace")
VERSION = re.compile(r"\d+\.\d+")           # MAJOR.MINOR, as profiles are named

# kernel -> (shipped allocators, evictable ones, compression limit, chain, header,
#            same-filled default, reclaim on store, one pool per swap type)
# (the what-ifs xvmalloc and zcache-zbud get zbud's evict contract everywhere)
WHAT_IFS = {"xvmalloc", "zcache-zbud"}
ZSWAP_FACTS = {
    "3.11": ({"zbud"}, {"zbud", "z3fold", "zsmalloc"} | WHAT_IFS, 8192, 4, 8, False, True,
             True),
    "6.1": ({"zbud", "z3fold", "zsmalloc"}, {"zbud", "z3fold"} | WHAT_IFS, 4096, 4, 8, True,
            False, False),
    "6.3": ({"zbud", "z3fold", "zsmalloc"}, {"zbud", "z3fold", "zsmalloc"} | WHAT_IFS, 4096,
            8, 8, True, False, False),
}
# kernel -> (chain, huge_class_size of that chain, max_zpage_size, rw_page)
ZRAM_FACTS = {"4.14": (4, 3257, 3072, True), "6.1": (4, 3257, None, True),
              "6.6": (8, 3625, None, False)}


@pytest.mark.parametrize("kernel", sorted(ZSWAP_FACTS))
def test_zswap_profile_holds_the_kernels_facts(kernel):
    shipped, evictable, limit, chain, header, same_filled, on_store, per_type = \
        ZSWAP_FACTS[kernel]
    profile = ZSWAP_PROFILES[kernel]
    assert {a.name for a in profile.allocators if a.status == SHIPPED} == shipped
    assert set(profile.evictable) == evictable
    assert profile.compress_dst_size == limit
    assert profile.zsmalloc_chain_size == chain
    assert profile.zswap_header_size == header
    assert profile.same_filled_default is same_filled
    assert (profile.limit_rule == profiles.RECLAIM_ON_STORE) is on_store
    assert profile.pool_per_swap_type is per_type
    assert profile.lru_owner == "allocator"             # allocator LRUs until 6.4
    assert profile.exclusive_loads is False             # exclusive_loads came in 6.5
    assert ("pool_pages" in profile.debugfs_counters) is (kernel == "3.11")
    assert ("same_filled_pages" in profile.debugfs_counters) is (kernel != "3.11")
    for name in WHAT_IFS:
        assert "never shipped in zswap" in profile.what_if(name)


@pytest.mark.parametrize("kernel", sorted(ZSWAP_FACTS))
def test_a_zswap_built_from_the_profile_follows_it(kernel):
    shipped, evictable, limit, chain, header, same_filled, on_store, per_type = \
        ZSWAP_FACTS[kernel]
    for backend in ("zbud", "z3fold", "zsmalloc", "xvmalloc", "zcache-zbud"):
        zswap = Zswap(backend=backend, kernel=kernel, memory=Memory(4096))
        assert zswap.header_len == (header if backend in evictable else 0)
        assert zswap.same_filled_pages_enabled is same_filled
        assert (zswap.pool is None) is per_type
    zsmalloc = Zswap(backend="zsmalloc", kernel=kernel, memory=Memory(4096))
    assert zsmalloc.pool_for(0).huge_class_size == {4: 3257, 8: 3625}[chain]


class Fixed(Compressor):
    """Every page compresses to `length` bytes."""

    name = "fixed"

    def __init__(self, length):
        self.length = length

    def compress(self, page):
        return bytes(self.length)


@pytest.mark.parametrize("kernel, poor, too_big", [("3.11", 1, 0), ("6.1", 0, 1)])
def test_output_past_one_page_reaches_the_allocator_only_in_3_11(zswap_engine, kernel, poor,
                                                                 too_big):
    """5000 bytes fit 3.11's two-page buffer, so zbud refuses them (-ENOSPC,
    5008 > 3968): reject_compress_poor; 6.1's compressor is given one page
    and fails first, with no counter (reject_too_big is ours)."""
    zswap = zswap_engine(backend="zbud", compressor=Fixed(5000), kernel=kernel, ram_pages=4096)
    assert zswap.store(0, 1, bytes(range(256)) * 16) is False
    assert (zswap.reject_compress_poor, zswap.reject_too_big) == (poor, too_big)


@pytest.mark.parametrize("kernel", sorted(ZRAM_FACTS))
def test_zram_profile_holds_the_kernels_facts(kernel):
    chain, huge_class_size, max_zpage_size, rw_page = ZRAM_FACTS[kernel]
    profile = ZRAM_PROFILES[kernel]
    assert (profile.zsmalloc_chain_size, profile.max_zpage_size, profile.rw_page) == \
        (chain, max_zpage_size, rw_page)
    assert [a.name for a in profile.allocators if a.status == SHIPPED] == ["zsmalloc"]
    device = Zram(1 << 20, kernel=kernel)
    assert device.huge_class_size == huge_class_size and device.rw_page is rw_page
    first_huge = max_zpage_size + 1 if max_zpage_size else huge_class_size
    assert not device.is_huge(first_huge - 1) and device.is_huge(first_huge)


def version_literals(source):
    """String literals of `source` that are a bare MAJOR.MINOR kernel version
    (the package's own three-part version is not one)."""
    return [token.string for token in tokenize.generate_tokens(io.StringIO(source).readline)
            if token.type == tokenize.STRING
            and VERSION.fullmatch(token.string.strip("'\"rbuf"))]


def test_no_module_but_profiles_names_a_kernel_version():
    assert version_literals('if kernel == "3.11":\n    x = "a 3.11 doc"\n') == ['"3.11"']
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "profiles.py":
            continue
        found = version_literals(path.read_text())
        if found:
            offenders[str(path.relative_to(PACKAGE))] = found
    assert offenders == {}


def test_the_nearest_profile_below_a_release():
    assert nearest_profile("zswap", "6.2.16") == ("6.1", "no 6.2 profile: 6.1 is the nearest "
                                                         "below")
    assert nearest_profile("zram", "4.13.0") == (None, "older than every modelled zram kernel "
                                                       "(the oldest is 4.14)")


def test_kernels_lists_what_differs_and_where_it_changed(capsys):
    main(["kernels", "--json"])
    tables = json.loads(capsys.readouterr().out)
    zswap, zram = tables["zswap"], tables["zram"]
    assert zswap["profiles"] == ["3.11", "6.1", "6.3", "6.6", "6.12", "6.18"]
    assert zram["profiles"] == ["4.14", "6.1", "6.6", "6.12", "6.18"]
    differs = {row["fact"]: row for row in zswap["differs"]}
    assert set(differs) == {"allocators", "evictable", "pool_per_swap_type", "limit_rule",
                            "shrink_rule", "duplicate_store", "zero_pages",
                            "same_filled_default", "compress_dst_size", "zsmalloc_chain_size",
                            "debugfs_counters", "reclaim_retries_site", "lru_owner",
                            "exclusive_loads", "zswap_header_size", "reclaim_retries",
                            "incompressible", "second_chance", "shrink_failures_max",
                            "zpools_per_pool", "vmstat_counters", "compressor_limits",
                            "shrink_delay", "shrink_step_cost", "shrink_writeback_cost"}
    assert zswap["same"] == {}
    # the worker's timing is listed as fitted, not as a kernel rule
    assert all(differs[name]["changed"].startswith("no kernel rule")
               for name in ("shrink_delay", "shrink_step_cost", "shrink_writeback_cost"))
    # lzo-rle 5.1, crypto zstd 4.17, software crypto 842 4.1, lib/lz4 v1.7.3 4.11
    limits = differs["compressor_limits"]["values"]
    assert {name: entry["status"] for name, entry in limits["3.11"].items()} == {
        "lz4": "approximate", "lz4hc": "approximate", "842": "absent", "lzo-rle": "absent",
        "zstd": "absent"}
    assert all(limits[kernel] == [] for kernel in ("6.1", "6.3", "6.6", "6.12", "6.18"))
    assert differs["lru_owner"]["values"] == {"3.11": "allocator", "6.1": "allocator",
                                              "6.3": "allocator", "6.6": "zswap",
                                              "6.12": "zswap",
                                              "6.18": "zswap"}
    assert differs["compress_dst_size"]["values"] == {"3.11": 8192, "6.1": 4096, "6.3": 4096,
                                                      "6.6": 4096, "6.12": 4096, "6.18": 4096}
    assert differs["allocators"]["values"]["3.11"]["zsmalloc"]["status"] == WHAT_IF
    assert "45190f01dd40" in differs["limit_rule"]["changed"]
    rows = {row["fact"]: row for row in zram["differs"]}
    assert set(rows) == {"zsmalloc_chain_size", "huge_rule", "max_zpage_size", "rw_page",
                         "compressors", "backends", "counts_invalid_io",
                         "swap_zero_map", "writeback", "writeback_incompressible",
                         "writeback_largest_first", "idle_skips_same_and_written",
                         "debug_stat_fields", "counts_writestall", "max_comp_streams",
                         "compressor_limits",
                         "recompress", "recompress_priority", "recompress_largest_first",
                         "recompress_clears_idle", "recompress_limits_priority"}
    assert set(rows["compressor_limits"]["values"]["4.14"]) == {"lzo-rle", "zstd"}
    # debug_stat: writestall alone in 4.14, then writestall and miss_free;
    # 6.15 prints writestall as 0 and drops max_comp_streams
    assert rows["debug_stat_fields"]["values"]["4.14"] == ["writestall"]
    assert rows["debug_stat_fields"]["values"]["6.18"] == ["writestall", "miss_free"]
    assert rows["counts_writestall"]["values"] == rows["max_comp_streams"]["values"] == {
        "4.14": True, "6.1": True, "6.6": True, "6.12": True, "6.18": False}
    # recompression from 6.2 (CONFIG_ZRAM_MULTI_COMP), priority=N 6.12, the pp buckets
    # and the IDLE clearing 6.13, the priority cap 6.15
    assert rows["recompress"]["values"] == {"4.14": False, "6.1": False, "6.6": True,
                                            "6.12": True, "6.18": True}
    assert rows["recompress_priority"]["values"] == {"4.14": False, "6.1": False,
                                                     "6.6": False, "6.12": True, "6.18": True}
    assert rows["recompress_limits_priority"]["values"] == {"4.14": False, "6.1": False,
                                                            "6.6": False, "6.12": False,
                                                            "6.18": True}
    # zram writeback from 5.0, incompressible writeback 6.2, largest first 6.13
    assert rows["writeback"]["values"] == {"4.14": False, "6.1": True, "6.6": True,
                                           "6.12": True, "6.18": True}
    assert rows["writeback_largest_first"]["values"] == {"4.14": False, "6.1": False,
                                                         "6.6": False, "6.12": False,
                                                         "6.18": True}
    assert rows["rw_page"]["values"] == {"4.14": True, "6.1": True, "6.6": False,
                                         "6.12": False, "6.18": False}
    assert all(row["changed"] for row in zswap["differs"] + zram["differs"])

    main(["kernels"])
    text = capsys.readouterr().out
    assert "  compression output limit (bytes)\n    3.11   8192\n    6.1    4096\n" in text
    assert "what-if xvmalloc (3.11, 6.1, 6.3): xvmalloc never shipped in zswap" in text
    assert "what-if xvmalloc (6.6, 6.12): xvmalloc never shipped in zswap" in text


def one_line_error(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("zswapsim: error: ")
    return lines[0]


def test_a_bad_kernel_is_one_line_listing_the_profiles(capsys):
    line = one_line_error(capsys, ["replay", TRACE, "--kernel", "5.0"])
    assert "'5.0' is not one of '6.1', '6.3', '3.11'" in line
    line = one_line_error(capsys, ["zram", TRACE, "--kernel", "6.3"])
    assert "'6.3' is not one of '6.1', '6.6', '6.12', '6.18', '4.14'" in line
    with pytest.raises(ConfigError, match="unknown zswap kernel '5.0'; profiles: 6.1, 6.3, 3.11"):
        Zswap(kernel="5.0")


# zbud as KERNEL.md §1.1 states it for 6.15: removed.
WITHOUT_ZBUD = dataclasses.replace(
    ZSWAP_PROFILES["6.3"], name="6.15", version=(6, 15),
    allocators=(Availability("zbud", ABSENT, "zbud was removed in 6.15"),
                Availability("zsmalloc", SHIPPED)))


def test_an_allocator_the_kernel_removed_is_one_error_naming_the_release(capsys, monkeypatch):
    with pytest.raises(ConfigError, match="^Linux 6.15 has no zbud for zswap: zbud was "
                                          "removed in 6.15$"):
        Zswap(backend="zbud", kernel=WITHOUT_ZBUD)
    assert Zswap(backend="zsmalloc", kernel=WITHOUT_ZBUD).kernel == "6.15"
    monkeypatch.setitem(ZSWAP_PROFILES, "6.1", WITHOUT_ZBUD)     # through the command line
    line = one_line_error(capsys, ["replay", TRACE, "--backend", "zbud"])
    assert line == "zswapsim: error: Linux 6.15 has no zbud for zswap: zbud was removed in 6.15"


def test_a_what_if_runs_and_says_so(capsys):
    main(["replay", TRACE, "--kernel", "3.11", "--backend", "zsmalloc", "--no-verify", "-q"])
    err = capsys.readouterr().err
    assert err.startswith("zswapsim: note: what-if: zswap could use zsmalloc only from 3.18")
    main(["replay", TRACE, "--backend", "zbud", "--no-verify", "-q"])
    assert "what-if" not in capsys.readouterr().err
