"""The shrink work's timing (ZswapConfig.shrink_delay, K: the queued work
starts after the next K swap-outs; shrink_step_cost and
shrink_writeback_cost: how long its passes take against the swap-outs) and
the zswap_limited fidelity runs, held to the real kernels' ranges over
their repeated boots.

The hand cases are derived from the 6.12 rules (zswap_check_limits,
shrink_worker with second chance, mm/zswap.c) on zbud pages that each hold
one object, so the pool's pages are its entries, and from the worker's
clock as zswap.py states it; the ranges are the kernel's
(fidelity/README.md, zswap_limited)."""

import json
from pathlib import Path

import pytest

from kernel_data import FIDELITY, load_set
from zswapsim.compress import GivenLengths
from zswapsim.config import ZswapConfig
from zswapsim.errors import ConfigError, FidelityError
from zswapsim.fidelity import (EXACT, KERNEL_SIZES, LIMITED_HELD, RANGE, exact_failures,
                               find_sets, range_difference, range_misses, read_kernel_json,
                               replay_limited, run_fidelity)
from zswapsim.memory import PAGE_SIZE
from zswapsim.profiles import ZSWAP_PROFILES
from zswapsim.zpool.base import known_pools
from zswapsim.zswap import Zswap
from zswapsim.zswap_native import NativeZswap

# -- the hand case: K = 2 -----------------------------------------------------
#
# RAM 100 pages, max_pool_percent 4: limit 4 pages; accept_threshold_percent
# 50: accept threshold 2 pages.  Every page compresses to 3000 bytes: 47 of
# zbud's 64-byte chunks, and two do not fit one page's 63 free chunks, so
# each entry has a zbud page of its own.
#
# stores 1-4: kept, pool 1..4 pages.
# store 5: 4 >= limit: pool_limit_hit 1, full, refused (pswpout 1); the
#          shrink work is queued and waits for two swap-outs.
# stores 6, 7: the two it waits for: 4 >= limit, hit 2 and 3, refused.
# before store 8 the work runs: entries 1, 2, 3, 4 are referenced, so four
#          steps rotate them (four failures; the walk's NULL ends count none
#          as each walk made an attempt), then entry 1 and entry 2 are
#          written back (pswpout 3 + 2 = 5); the pool is at 2 pages, at the
#          accept threshold, and the work stops.
# store 8: 2 <= accept: no longer full, kept (3 pages); store 9 kept (4).
# store 10: 4 >= limit: hit 4, refused (pswpout 6), the work queued again.

HAND_LENGTH = 3000
HAND_PAGES = [bytes([index]) * 8 + bytes(PAGE_SIZE - 8) for index in range(1, 11)]


@pytest.fixture
def hand_zswap(zswap_engine):
    """hand_zswap(shrink_delay, step, writeback): the hand case's zswap, of
    each engine in turn; by default the work's passes take no time."""
    def make_zswap(shrink_delay, step=0, writeback=0):
        return zswap_engine(backend="zbud", kernel="6.12", ram_pages=100, max_pool_percent=4,
                            accept_threshold_percent=50, shrink_delay=shrink_delay,
                            shrink_step_cost=step, shrink_writeback_cost=writeback,
                            compressor=GivenLengths("lz4", HAND_PAGES,
                                                    [HAND_LENGTH] * len(HAND_PAGES)))
    return make_zswap


def test_hand_case_the_shrink_work_waits_exactly_two_stores(hand_zswap):
    z = hand_zswap(2)
    assert (z.limit_pages, z.accept_pages) == (4, 2)
    for offset, page in enumerate(HAND_PAGES[:7], start=1):
        z.store(0, offset, page)
    # after store 7 the work has waited its two stores and not run yet
    assert (z.pool_limit_hit, z.written_back_pages, z.pool_pages()) == (3, 0, 4)
    assert z.shrink_pending and [z.where(0, n) for n in (5, 6, 7)] == ["swap"] * 3
    z.store(0, 8, HAND_PAGES[7])
    assert (z.shrink_rotations, z.written_back_pages) == (4, 2)
    assert [z.where(0, n) for n in (1, 2, 3, 4, 8)] == ["swap", "swap", "pool", "pool", "pool"]
    for offset in (9, 10):
        z.store(0, offset, HAND_PAGES[offset - 1])
    counts = z.counters()
    assert {name: counts[name] for name in ("pool_limit_hit", "written_back_pages",
                                            "stored_pages", "pswpout", "zswpout")} == \
        {"pool_limit_hit": 4, "written_back_pages": 2, "stored_pages": 4, "pswpout": 6,
         "zswpout": 6}
    assert z.where(0, 9) == "pool" and z.where(0, 10) == "swap" and z.shrink_pending


def test_a_load_does_not_count_as_a_swap_out_nor_run_work_still_waiting(hand_zswap):
    z = hand_zswap(2)
    for offset, page in enumerate(HAND_PAGES[:6], start=1):
        z.store(0, offset, page)                # store 6 counted one of the two
    assert z.load(0, 3) == HAND_PAGES[2]        # exclusive: entry 3 leaves the pool
    assert z.shrink_pending and z.written_back_pages == 0
    z.store(0, 7, HAND_PAGES[6])                # the second: 3 pages, below the limit,
    # but the pool stays full above the accept threshold (3 > 2): refused
    assert z.where(0, 7) == "swap" and z.shrink_pending
    z.invalidate_page(0, 7)                     # no stores left to wait for: runs first
    assert not z.shrink_pending and z.pool_pages() <= z.accept_pages


def test_delay_zero_runs_the_work_right_after_the_store_that_queued_it(hand_zswap):
    """Hand case at K = 0: store 5 is refused (hit 1) and the work runs
    before store 6: four rotations, entries 1 and 2 written back; stores 6
    and 7 kept (4 pages); store 8 hits (2) and the work runs before store
    9: entries 3 and 4, now unreferenced, written back; stores 9 and 10
    kept."""
    z = hand_zswap(0)
    for offset, page in enumerate(HAND_PAGES, start=1):
        z.store(0, offset, page)
    assert (z.pool_limit_hit, z.written_back_pages, z.stored_pages, z.pswpout) == (2, 4, 4, 6)
    assert [z.where(0, n) for n in range(1, 11)] == \
        ["swap"] * 5 + ["pool", "pool", "swap", "pool", "pool"]


# -- the hand case paced: K = 0, a pass 1 tick, a writeback 45 ---------------
#
# A swap-out is 10 ticks; swap-out n + 1 sees the clock at 10 n.
# store 5: hit 1, refused; the work is queued to start at tick 50.
# store 6 (tick 50): the run starts; its pass at 50 rotates entry 1
#          (failure 1) and the next pass is due at 51; then the store finds
#          the pool full (4 >= 4): hit 2, refused, the work queued again
#          (to start at 60, once this run has ended).
# store 7 (tick 60): passes at 51..57 end a walk, rotate 2, end a walk,
#          rotate 3, end a walk, rotate 4, end a walk; the pass at 58 writes
#          entry 1 back (pool 3) and the next is due at 58 + 45 = 103.  The
#          pool is still full above the accept threshold (3 > 2): refused.
# stores 8, 9, 10 (ticks 70, 80, 90): no pass is due; all refused.
# the end: the pass at 103 ends a walk, the one at 104 writes entry 2 back
#          (pool 2 <= 2) and ends the run; the work queued at store 6 runs
#          at 149: its first pass ends a walk with no attempt (failure 1)
#          and the pool is at the threshold: done.


def test_hand_case_paced_the_pool_stays_full_while_the_worker_writes_back(hand_zswap):
    z = hand_zswap(0, step=1, writeback=45)
    for offset, page in enumerate(HAND_PAGES[:6], start=1):
        z.store(0, offset, page)
    assert (z.shrink_rotations, z.pool_limit_hit) == (1, 2)
    assert z.shrink_running and z.shrink_pending
    z.store(0, 7, HAND_PAGES[6])
    assert (z.shrink_rotations, z.written_back_pages, z.pool_pages()) == (4, 1, 3)
    for offset in (8, 9, 10):
        z.store(0, offset, HAND_PAGES[offset - 1])
    assert (z.written_back_pages, z.pool_pages(), z.shrink_runs) == (1, 3, 1)
    z.run_pending_work()
    assert not (z.shrink_running or z.shrink_pending)
    counts = z.counters()
    assert {name: counts[name] for name in ("pool_limit_hit", "written_back_pages",
                                            "stored_pages", "pswpout", "zswpout",
                                            "shrink_runs", "shrink_rotations")} == \
        {"pool_limit_hit": 2, "written_back_pages": 2, "stored_pages": 2, "pswpout": 8,
         "zswpout": 4, "shrink_runs": 2, "shrink_rotations": 4}
    assert [z.where(0, n) for n in range(1, 11)] == ["swap", "swap", "pool", "pool"] + \
        ["swap"] * 6


def test_a_load_gives_the_paced_worker_no_time(hand_zswap):
    """Only swap-outs move the worker's clock: a load after store 6 finds
    the clock at that swap-out's end (tick 60), so the passes due by then
    are taken first (as store 7 would), and more loads take none."""
    z = hand_zswap(0, step=1, writeback=45)
    for offset, page in enumerate(HAND_PAGES[:6], start=1):
        z.store(0, offset, page)
    assert (z.shrink_rotations, z.written_back_pages) == (1, 0)
    for _ in range(3):
        assert z.load(0, 6) == HAND_PAGES[5]            # from the swap device
        assert (z.shrink_rotations, z.written_back_pages) == (4, 1)
    for offset in range(7, 11):                         # the next pass is due at 103
        z.store(0, offset, HAND_PAGES[offset - 1])
    assert (z.shrink_rotations, z.written_back_pages, z.pool_pages()) == (4, 1, 3)


KERNEL_CASES = [("6.1", "zbud"), ("6.1", "z3fold"), ("6.3", "zsmalloc"), ("3.11", "zbud"),
                ("6.6", "zsmalloc"), ("6.12", "zbud"), ("6.12", "zsmalloc"),
                ("6.18", "zsmalloc")]


@pytest.fixture(scope="module")
def mix2000():
    kernel, pages = load_set("mix2000")
    return GivenLengths("lz4", pages, kernel["kernel_lz4_len"]["max_out_4096"]), pages


@pytest.mark.parametrize("zswap_engine, line, pool",
                         [(Zswap, line, pool) for line, pool in KERNEL_CASES]
                         + [(NativeZswap, line, pool) for line, pool in KERNEL_CASES
                            if pool in known_pools("native")])
def test_delay_zero_is_the_old_path(mix2000, zswap_engine, line, pool):
    """K = 0 with passes that take no time is the old rule, stated
    independently: the work queued by a store runs right after it.  A zswap
    whose work never runs by itself (K past the run) with the work run
    after every store gives every counter alike, on a run where the limit
    bites (mix2000, 1 % of 208 MB)."""
    compressor, pages = mix2000
    settings = dict(backend=pool, kernel=line, compressor=compressor, ram_pages=52174,
                    max_pool_percent=1)
    delayed = zswap_engine(shrink_delay=0, shrink_step_cost=0, shrink_writeback_cost=0,
                           **settings)
    old = zswap_engine(shrink_delay=2**32 - 1, **settings)
    for offset, page in enumerate(pages, start=1):
        delayed.store(0, offset, page)
        old.store(0, offset, page)
        old.run_pending_work()
    assert delayed.pool_limit_hit > 0 and delayed.counters() == old.counters()


def test_the_old_kernels_default_to_zero_and_the_settings_are_checked():
    for line in ("3.11", "6.1", "6.3"):             # one zpool_shrink call: no pace
        profile = ZSWAP_PROFILES[line]
        assert (profile.shrink_delay, profile.shrink_step_cost,
                profile.shrink_writeback_cost) == (0, 0, 0)
    assert ZswapConfig(kernel="6.6", backend="zsmalloc").effective("shrink_delay") == 0
    assert ZswapConfig(kernel="6.12", shrink_delay=5).effective("shrink_delay") == 5
    assert ZswapConfig(kernel="6.12", shrink_step_cost=0).effective("shrink_step_cost") == 0
    # None follows the kernel even when the config is remade for another one
    config = ZswapConfig.of(ZswapConfig(), kernel="6.18", backend="zsmalloc")
    for name in ("shrink_delay", "shrink_step_cost", "shrink_writeback_cost"):
        assert config.effective(name) == getattr(ZSWAP_PROFILES["6.18"], name)
    for name, bad in [("shrink_delay", value) for value in (-1, 2**32, 1.5, True)] + \
            [(name, value) for name in ("shrink_step_cost", "shrink_writeback_cost")
             for value in (-1, 10**6 + 1, 0.5, False)]:
        with pytest.raises(ConfigError, match=name):
            ZswapConfig(**{name: bad})


# -- the range rule -----------------------------------------------------------

@pytest.mark.parametrize("field, value, low, high, difference", [
    # [100, 200]: 2 % of 200 is 4 pages, less than 8: widened by 8
    ("stored_pages", 150, 100, 200, 0), ("stored_pages", 208, 100, 200, 0),
    ("stored_pages", 209, 100, 200, 9), ("stored_pages", 92, 100, 200, 0),
    ("stored_pages", 91, 100, 200, -9),
    # [1000, 1000]: 2 % is 20 pages, more than 8
    ("written_back_pages", 1020, 1000, 1000, 0), ("written_back_pages", 1021, 1000, 1000, 21),
    ("written_back_pages", 979, 1000, 1000, -21),
    # bytes: 2 % of 1,000,000 is 20,000, less than 8 pages (32,768)
    ("pool_total_size", 1_032_768, 1_000_000, 1_000_000, 0),
    ("pool_total_size", 1_032_769, 1_000_000, 1_000_000, 32_769),
    # 2 % of 4,096,000 is 81,920, more than 32 KiB
    ("pool_total_size", 4_177_920, 4_096_000, 4_096_000, 0),
    ("pool_total_size", 4_177_921, 4_096_000, 4_096_000, 81_921),
])
def test_range_rule(field, value, low, high, difference):
    assert range_difference(field, value, low, high) == difference


# -- the shipped limited runs -------------------------------------------------

@pytest.fixture(scope="module")
def fidelity_rows():
    rows, skipped = run_fidelity(FIDELITY)
    assert [entry for entry in skipped if "limited" in entry["case"]] == []
    return rows


def test_limited_rows_are_range_checks_and_pool_limit_hit_is_not_held(fidelity_rows):
    limited = [row for row in fidelity_rows if row["case"].startswith("zswap limited")]
    assert {row["check"] for row in limited} == {RANGE}
    assert {row["check"] for row in fidelity_rows if row not in limited} == {EXACT}
    # 6.1: two sets x zbud and z3fold; 6.12: two sets x zbud and zsmalloc;
    # 6.18: two sets x zsmalloc: ten runs, each on the kernel's sizes and ours
    cases = {(row["set"], row["case"], row["mode"]) for row in limited}
    assert len(cases) == 20
    hits = [row for row in limited if row["field"] == "pool_limit_hit"]
    assert len(hits) == 20 and not any(row["held"] for row in hits)
    assert all(row["held"] == (row["field"] in LIMITED_HELD) for row in limited)
    assert exact_failures(fidelity_rows) == []
    # ours is the compiled lib/lz4, whose lengths are the kernel's: alike
    by_mode = {}
    for row in limited:
        by_mode.setdefault(row["mode"], []).append(
            (row["set"], row["case"], row["field"], row["simulated"]))
    assert sorted(by_mode[KERNEL_SIZES]) == sorted(by_mode["ours"])


LIMITED_RUNS = [(name, pool) for name in ("mix2000", "mix10000") for pool in ("zbud", "z3fold")] \
    + [(f"linux-{line}/{name}", pool) for line, pools in (("6.12", ("zbud", "zsmalloc")),
                                                           ("6.18", ("zsmalloc",)))
       for name in ("mix2000", "mix10000") for pool in pools]


@pytest.mark.parametrize("name, pool, field", [
    pytest.param(name, pool, field, id=f"{name}-{pool}-{field}")
    for name, pool in LIMITED_RUNS for field in LIMITED_HELD])
def test_limited_run_within_the_kernels_widened_range(fidelity_rows, name, pool, field):
    rows = [row for row in fidelity_rows if row["set"] == name and row["mode"] == KERNEL_SIZES
            and row["case"] == f"zswap limited {pool}/lz4" and row["field"] == field]
    assert len(rows) == 1
    assert rows[0]["difference"] == 0, rows[0]


def test_6_18_equals_its_kernel_on_every_counter(fidelity_rows):
    """6.18's worker wrote nothing back in either run; at its delay every
    counter the model has equals the kernel's, both boots alike."""
    rows = [row for row in fidelity_rows if row["set"].startswith("linux-6.18")
            and row["case"].startswith("zswap limited") and row["mode"] == KERNEL_SIZES]
    assert rows and all(row["simulated"] in range(row["kernel"][0], row["kernel"][1] + 1)
                        for row in rows)


def test_range_misses_are_the_held_rows_outside(fidelity_rows):
    assert range_misses(fidelity_rows) == []
    held = [row for row in fidelity_rows if row["check"] == RANGE and row["held"]]
    outside = dict(held[0], difference=1)
    reported = next(dict(row, difference=1) for row in fidelity_rows
                    if row["check"] == RANGE and not row["held"])
    theirs = dict(held[1], mode="ours", difference=1)
    assert range_misses([outside, reported, theirs] + held[2:]) == [outside]


def test_replay_limited_follows_the_delay(mix2000):
    """The 6.18 run of mix2000 at K = 0 writes back (the worker gets to the
    unreferenced entries), at the profile's K it writes nothing back, as
    the kernel did."""
    compressor, pages = mix2000
    kernel, _ = load_set("linux-6.18/mix2000")
    run = kernel["zswap_limited"][0]
    assert replay_limited(run, pages, compressor, "6.18", shrink_delay=0)[
        "written_back_pages"] > 0
    counts = replay_limited(run, pages, compressor, "6.18")
    assert (counts["written_back_pages"], counts["stored_pages"], counts["pool_limit_hit"]) == \
        (0, run["stored_pages"], run["pool_limit_hit"])


@pytest.mark.parametrize("change, message", [
    (lambda run: run["range"].update(stored_pages=[5, 4]), r"zswap_limited\[0\]\.range\."
     r"stored_pages is \[5, 4\], not \[min, max\]"),
    (lambda run: run["range"].pop("pool_limit_hit"), r"no zswap_limited\[0\]\.range\."
     "pool_limit_hit"),
    (lambda run: run.update(zpool="zpool9"), r"zswap_limited\[0\]\.zpool: unknown pool"),
    (lambda run: run.update(max_pool_percent=101), r"max_pool_percent is 101, not 0\.\.100"),
])
def test_a_bad_limited_run_is_one_error_before_any_case_runs(tmp_path, change, message):
    path = find_sets(FIDELITY)["mix2000"]
    kernel = read_kernel_json(path)
    change(kernel["zswap_limited"][0])
    kernel["pages_file"] = str((Path(path).parent / kernel["pages_file"]).resolve())
    (tmp_path / "mix2000.kernel.json").write_text(json.dumps(kernel))
    with pytest.raises(FidelityError, match=message):
        run_fidelity(tmp_path)
