"""zswap of Linux 6.12 and 6.18 held to their sources and to the real kernels.

Every expected number below is worked out from mm/zswap.c, mm/page_io.c of
those releases (see profiles.ZSWAP_6_12 / ZSWAP_6_18) or read from
../shared/fidelity, never from the model's output:

- zswap_check_limits: a store finds the pool full when pool pages >=
  max_pages = totalram * max_pool_percent / 100, counts pool_limit_hit,
  refuses and queues the shrink work; refusals go on until the pool is at
  or below accept = max_pages * accept_threshold_percent / 100.  6.1's
  zswap_is_full is strict (max_pages < pool pages).
- shrink_worker with one memory cgroup: each step looks at the oldest LRU
  entry; a referenced one (every entry is referenced when stored) is
  rotated with the bit cleared, which counts as a failure; an unreferenced
  one is written back (or its failure counted in reject_reclaim_fail, a
  failure too); the work stops at or below accept, or at the 16th failure
  (MAX_RECLAIM_RETRIES).
- Zero pages go to the swap layer's zero map (swpout_zero) from 6.12, and a
  non-zero same-filled page is compressed like any other.
- zswap_compress: dlen = PAGE_SIZE; an lz4 output that does not fit is a
  compressor error (reject_compress_fail, 6.12) or, in 6.18, a page stored
  as-is as a PAGE_SIZE object (stored_incompressible_pages).
- zbud refuses allocations over PAGE_SIZE - 2 * 64 = 3968 bytes (-ENOSPC:
  reject_compress_poor); zsmalloc takes up to PAGE_SIZE.

The allocations are sized so that each takes one pool page: zbud puts two
objects in a page only if both fit in its 63 free chunks (64 bytes each),
and an object of 3000 bytes is 47 chunks.
"""

import random
import shutil
from pathlib import Path

import pytest

from zswapsim.compress import GivenLengths
from zswapsim.errors import ConfigError
from zswapsim.fidelity import KERNEL_SIZES, read_kernel_json, read_pages, run_fidelity
from zswapsim.memory import PAGE_SIZE
from zswapsim.profiles import ZSWAP_PROFILES
from zswapsim.zswap import Zswap

RNG = random.Random(1512)
PAGES = [RNG.randbytes(PAGE_SIZE) for _ in range(40)]
ZERO = bytes(PAGE_SIZE)
ONES = b"\x01" * PAGE_SIZE                  # same-filled, not zero


@pytest.fixture
def zswap(zswap_engine):
    """zswap(kernel, backend="zbud", ram=100, percent=10, lengths=None,
    pages=PAGES): a Zswap of each engine in turn whose compressor gives
    every page of `pages` its length in `lengths` (3000 bytes unless told;
    0 means "did not fit")."""
    def make_zswap(kernel, backend="zbud", ram=100, percent=10, lengths=None, pages=PAGES):
        lengths = lengths if lengths is not None else [3000] * len(pages)
        return zswap_engine(backend=backend, kernel=kernel, ram_pages=ram,
                            max_pool_percent=percent,
                            compressor=GivenLengths("lz4", pages, lengths))
    return make_zswap


def store_all(z, pages, first_offset=1):
    for offset, page in enumerate(pages, start=first_offset):
        z.store(0, offset, page)


# -- the limit and the accept threshold ------------------------------------

@pytest.mark.parametrize("kernel", ["6.12", "6.18"])
def test_a_store_with_the_pool_exactly_at_the_limit_is_refused(zswap, kernel):
    if kernel == "6.18":                # zsmalloc: 4000 bytes go to the one-page huge class
        z = zswap(kernel, backend="zsmalloc", lengths=[4000] * len(PAGES))
    else:
        z = zswap(kernel)
    assert z.limit_pages == 10 and z.accept_pages == 9   # 100 * 10 / 100; 10 * 90 / 100
    store_all(z, PAGES[:10])
    assert z.pool_pages() == 10 and z.pool_limit_hit == 0
    z.store(0, 11, PAGES[10])                            # 10 >= 10: full
    c = z.counters()
    assert (c["pool_limit_hit"], c["stored_pages"], c["zswpout"], c["pswpout"]) == (1, 10, 10, 1)
    assert z.shrink_pending and z.where(0, 11) == "swap"


def test_6_1_stores_at_the_limit_and_refuses_above_it(zswap):
    z = zswap("6.1")
    store_all(z, PAGES[:11])                             # 10 < 10 is false: the 11th goes in
    assert (z.pool_pages(), z.pool_limit_hit) == (11, 0)
    z.store(0, 12, PAGES[11])                            # 10 < 11
    assert (z.pool_limit_hit, z.stored_pages) == (1, 11)


def test_shrink_work_rotates_every_referenced_entry_then_writes_back_the_oldest(zswap):
    z = zswap("6.12")
    store_all(z, PAGES[:11])                             # the 11th is refused, work queued
    z.run_pending_work()
    # 10 referenced entries rotated once each (10 failures, below 16), then
    # the oldest, offset 1, now unreferenced, is written back: 9 <= accept 9.
    assert (z.shrink_rotations, z.written_back_pages, z.counters()["zswpwb"]) == (10, 1, 1)
    assert z.where(0, 1) == "swap" and all(z.where(0, n) == "pool" for n in range(2, 11))
    assert z.pool_pages() == 9 and z.reject_reclaim_fail == 0
    # The rotation kept the order: offset 2 is the oldest entry now.
    if isinstance(z, Zswap):                             # the Python model's LRU
        assert next(iter(z.lru)) == (0, 2)
    # At the accept threshold (9 <= 9) the pool accepts again ...
    z.store(0, 12, PAGES[11])
    assert z.where(0, 12) == "pool" and z.pool_limit_hit == 1
    # ... and the next store finds it full again.
    z.store(0, 13, PAGES[12])
    assert z.pool_limit_hit == 2 and z.where(0, 13) == "swap"
    # pswpout: the refused 11th and 13th, and the written-back page.
    assert z.counters()["pswpout"] == 3


def test_shrink_work_stops_after_16_failures(zswap):
    # RAM of 20 pages, all taken by the pool at 100 %: writeback cannot get
    # a swap-cache page (-ENOMEM).
    z = zswap("6.12", ram=20, percent=100)
    store_all(z, PAGES[:21])
    assert z.pool_pages() == 20 and z.memory.free_pages() == 0 and z.shrink_pending
    z.run_pending_work()
    assert (z.shrink_rotations, z.written_back_pages, z.reject_reclaim_fail) == (16, 0, 0)
    z.store(0, 22, PAGES[21])                            # refused: the work is queued again
    z.run_pending_work()
    # The cursor (zswap_next_shrink) stayed on the memcg, so the new run
    # starts at the end of the walk with no attempts: failure 1; then 4
    # rotations (entries 17..20) and 11 failed writebacks make 16.
    assert (z.shrink_rotations, z.written_back_pages, z.reject_reclaim_fail) == (20, 0, 11)
    assert z.counters()["writeback_enomem"] == 11


# -- zero and same-filled pages --------------------------------------------

def test_zero_and_same_filled_pages_under_6_1_and_6_12(zswap, zswap_engine):
    pages = [ZERO, ONES]
    old = zswap("6.1", pages=pages, lengths=[0, 40])
    store_all(old, pages)
    assert (old.same_filled_pages, old.stored_pages, old.pool_pages()) == (2, 2, 0)
    new = zswap("6.12", pages=pages, lengths=[0, 40])
    store_all(new, pages)
    c = new.counters()
    assert (c["swpout_zero"], c["stored_pages"], c["zswpout"], c["pswpout"]) == (1, 1, 1, 0)
    assert new.pool_pages() == 1 and "same_filled_pages" not in c
    assert new.where(0, 1) == "zero map" and new.load(0, 1) == ZERO
    assert new.counters()["swpin_zero"] == 1
    with pytest.raises(ConfigError, match="same_filled_pages_enabled"):
        zswap_engine(kernel="6.12", ram_pages=100, same_filled_pages_enabled=True)


# -- exclusive loads --------------------------------------------------------

def test_an_exclusive_load_takes_the_entry_out_and_a_later_eviction_stores_again(zswap):
    z = zswap("6.12")
    z.store(0, 5, PAGES[0])
    assert z.load(0, 5) == PAGES[0]
    assert (z.stored_pages, z.zswpin, z.pool_pages()) == (0, 1, 0)
    assert z.where(0, 5) == "ram"
    assert z.load(0, 5) == PAGES[0] and z.swapcache_hits == 1   # still in the swap cache
    assert z.evict_loaded(0, 5) is True
    assert (z.stored_pages, z.zswpout, z.where(0, 5)) == (1, 2, "pool")
    z.invalidate_page(0, 5)
    assert (z.stored_pages, z.where(0, 5), z.slots_in_use()) == (0, None, 0)


def test_a_6_1_load_leaves_the_entry_and_an_eviction_stores_nothing(zswap):
    z = zswap("6.1")
    z.store(0, 5, PAGES[0])
    assert z.load(0, 5) == PAGES[0] and z.stored_pages == 1
    assert z.evict_loaded(0, 5) is None and z.zswpout == 1


# -- incompressible pages ----------------------------------------------------

def test_an_incompressible_page_under_6_12_and_6_18(zswap):
    pages = PAGES[:3]
    lengths = [0, PAGE_SIZE, 120]           # did not fit; exactly a page; 128-byte class
    old = zswap("6.12", backend="zsmalloc", pages=pages, lengths=lengths)
    store_all(old, pages)
    c = old.counters()
    # zsmalloc takes the 4096-byte output; the one that did not fit is a
    # compressor error.
    assert (c["reject_compress_fail"], c["reject_compress_poor"], c["stored_pages"],
            c["pswpout"]) == (1, 0, 2, 1)
    zbud = zswap("6.12", pages=pages, lengths=lengths)
    store_all(zbud, pages)
    assert (zbud.reject_compress_fail, zbud.reject_compress_poor, zbud.stored_pages) == \
        (1, 1, 1)
    new = zswap("6.18", backend="zsmalloc", pages=pages, lengths=lengths)
    store_all(new, pages)
    c = new.counters()
    # Both the page that did not fit and the 4096-byte output (dlen >=
    # PAGE_SIZE) are stored as-is: a huge zsmalloc object, one page each.
    assert (c["stored_incompressible_pages"], c["stored_pages"], c["reject_compress_fail"],
            c["pswpout"], c["decompress_fail"]) == (2, 3, 0, 0, 0)
    # two huge objects, a page each, and the 128-byte class's one-page zspage
    assert new.pool_pages() == 3
    assert new.load(0, 1) == pages[0] and new.stored_incompressible_pages == 1


# -- allocators -------------------------------------------------------------

@pytest.mark.parametrize("backend", ["zbud", "z3fold"])
def test_zbud_and_z3fold_under_6_18_are_refused_naming_6_15(zswap_engine, backend):
    with pytest.raises(ConfigError, match=f"no {backend} for zswap: {backend} was removed "
                                          "in 6.15"):
        zswap_engine(backend=backend, kernel="6.18", ram_pages=100)


def test_6_12_still_has_zbud_and_z3fold_and_says_debian_lacks_z3fold():
    profile = ZSWAP_PROFILES["6.12"]
    assert {a.name for a in profile.allocators if a.status == "shipped"} == \
        {"zbud", "z3fold", "zsmalloc"}
    assert "Debian" in profile.allocator("z3fold").note
    assert ZSWAP_PROFILES["6.18"].debugfs_counters[-1] == "stored_incompressible_pages"


# -- the real kernels ---------------------------------------------------------

@pytest.fixture(scope="module")
def new_kernel_rows(tmp_path_factory):
    """The 6.12 and 6.18 sets of the shipped fidelity folder, run alone."""
    folder = tmp_path_factory.mktemp("fidelity")
    for line in ("linux-6.12", "linux-6.18"):
        shutil.copytree(f"fidelity/{line}", folder / line)
    for name in ("mix2000", "mix10000"):
        (folder / f"{name}.pages.zst").symlink_to(Path(f"fidelity/{name}.pages.zst").resolve())
    return run_fidelity(folder)


def test_static_zswap_cases_of_6_12_and_6_18_equal_the_kernels(new_kernel_rows):
    rows, skipped = new_kernel_rows
    exact = [row for row in rows if row["mode"] == KERNEL_SIZES and row["check"] == "exact"
             and row["case"].startswith("zswap")]
    cases = {(row["set"], row["case"]) for row in exact}
    # lz4 has the kernel's sizes: 6.12 zbud and zsmalloc, 6.18 zsmalloc, two sets each
    assert len(cases) == 6
    # 16 counters on 6.12 (9 debugfs, 7 vmstat), 18 on 6.18
    assert len(exact) == 4 * 16 + 2 * 18
    assert [row for row in exact if row["difference"]] == []
    assert [entry for entry in skipped if "limited" in entry["case"]] == []   # they run


def test_compress_fail_is_the_lz4_pages_that_did_not_fit(new_kernel_rows):
    """Independently of the model: 6.12's reject_compress_fail (zsmalloc,
    lz4) is the number of non-zero pages whose kernel lz4 output did not fit
    4096 bytes, and 6.18 stores exactly those as-is."""
    rows, _ = new_kernel_rows
    for line, field in (("linux-6.12", "reject_compress_fail"),
                        ("linux-6.18", "stored_incompressible_pages")):
        kernel = read_kernel_json(f"fidelity/{line}/mix2000.kernel.json.zst")
        pages = read_pages("fidelity/mix2000.pages.zst", kernel["npages"])
        lengths = kernel["kernel_lz4_len"]["max_out_4096"]
        did_not_fit = sum(1 for page, length in zip(pages, lengths)
                          if length == 0 and page != ZERO)
        assert kernel["zswap"]["zsmalloc"]["lz4"][field] == did_not_fit
        row, = [row for row in rows if row["set"] == f"{line}/mix2000" and row["mode"] ==
                KERNEL_SIZES and row["case"] == "zswap zsmalloc/lz4" and row["field"] == field]
        assert row["simulated"] == did_not_fit


# -- 6.6: zswap's LRU without second chance, same-filled pages, 32 zpools ----

def test_6_6_writes_back_the_oldest_until_it_can_accept_and_a_load_makes_young(zswap):
    z = zswap("6.6")
    assert (z.limit_pages, z.accept_pages) == (10, 9)   # 6.1's zswap_can_accept formula
    store_all(z, PAGES[:11])                            # 10 < 10 is false: all stored
    assert z.load(0, 1) == PAGES[0] and z.stored_pages == 11    # not exclusive
    z.store(0, 12, PAGES[11])                           # 10 < 11: full, refused, queued
    assert (z.pool_limit_hit, z.where(0, 12), z.shrink_pending) == (1, "swap", True)
    z.run_pending_work()
    # Offset 1 went to the LRU head at its load; 2, 3, 4 are written back,
    # oldest first with no second chance, until 9 > 8 pool pages.
    assert [n for n in range(1, 12) if z.where(0, n) == "swap"] == [2, 3, 4]
    assert (z.written_back_pages, z.pool_pages(), z.shrink_rotations) == (3, 8, 0)


def test_6_6_a_page_in_the_swap_cache_fails_writeback_16_times_then_the_work_stops(zswap):
    z = zswap("6.6")
    store_all(z, PAGES[:11])
    for offset in range(1, 12):
        z.load(0, offset)                               # all in the swap cache: -EEXIST
    z.store(0, 12, PAGES[11])
    z.run_pending_work()
    c = z.counters()
    assert (c["reject_reclaim_fail"], c["written_back_pages"], c["writeback_eexist"]) == \
        (16, 0, 16)
    # A store to an offset zswap holds: duplicate_entry, the old entry goes
    # first (11 -> 10 pages), and the hysteresis (9 <= 10) refuses the page.
    z.store(0, 1, PAGES[20])
    assert (z.duplicate_entry, z.where(0, 1), z.shrink_pending) == (1, "swap", True)


def test_6_6_keeps_same_filled_pages_and_spreads_entries_over_32_zpools(zswap):
    def zpool_of(offset):               # hash_32(offset, ilog2(32)), include/linux/hash.h
        return (offset * 0x61C88647 % 2**32) >> 27
    offsets = list(range(1, 200))
    same = [o for o in offsets if zpool_of(o) == zpool_of(1)][:2]
    other = next(o for o in offsets if zpool_of(o) != zpool_of(1))
    pages = [ONES, PAGES[0], PAGES[1], PAGES[2]]
    z = zswap("6.6", pages=pages, lengths=[0, 1500, 1500, 1500], percent=50)
    z.store(0, 100, ONES)
    assert (z.same_filled_pages, z.stored_pages, z.pool_pages()) == (1, 1, 0)
    z.store(0, same[0], PAGES[0])
    z.store(0, same[1], PAGES[1])               # zbud pairs two 1500-byte objects (24 chunks)
    assert z.pool_pages() == 1
    z.store(0, other, PAGES[2])                 # another zpool: a page of its own
    assert z.pool_pages() == 2
    if isinstance(z, Zswap):
        assert len(z.pools) == 32
