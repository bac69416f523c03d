"""The advice compare and tune-retries give, held to the kernels' facts.

What the kernels do, from their sources:
- No kernel has a knob for reclaim retries; each passes 8.  3.11's
  zswap_frontswap_store calls zbud_reclaim_page(tree->pool, 8) itself; in
  6.1 and 6.3 zswap's shrink_worker calls zpool_shrink(pool->zpool, 1,
  NULL) and the allocator's shrink op passes the 8 (zbud_zpool_shrink in
  mm/zbud.c, z3fold_zpool_shrink in mm/z3fold.c, 6.3's zs_zpool_shrink in
  mm/zsmalloc.c).
- 6.1's zsmalloc has no shrink op: zpool_shrink returns -EINVAL before any
  page is tried, so no retries value can change a 6.1 zsmalloc run.
- From 6.5 zswap keeps the LRU itself (zswap_reclaim_entry): no allocator
  reclaim is left to retry.
- xvmalloc never was a zswap allocator; 3.11's zswap was built on zbud
  alone (z3fold came in 4.8, zsmalloc through zpool in 3.18).
- A store zswap refuses is written to the swap device, and so is a page
  written back: swap writes = stores refused + pages written back when the
  device takes every write.
"""

import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import zswapsim
from churn import write_churn_trace
from zswapsim.profiles import ZSWAP_PROFILES
from zswapsim.replay import TIMING_FIELDS
from zswapsim.sweep import advice_line, rank, recommend, verdict, what_if

SHIPPED = Path(__file__).resolve().parents[1] / "traces" / "python-heap.trace"
RAM = 1000          # pages: a 200-page pool limit at 20 %, which the trace below exceeds


@pytest.fixture(scope="module")
def churn_trace(tmp_path_factory):
    """1,500 events over 400 real pages: stores, loads (the page stays in
    the swap cache), invalidations; in RAM pages it outgrows a 20 % pool."""
    return write_churn_trace(tmp_path_factory.mktemp("advice") / "churn.trace")


def run(*args):
    return subprocess.run([sys.executable, "-m", "zswapsim", *args],
                          capture_output=True, text=True, timeout=600)


# -- tune-retries ------------------------------------------------------------

def test_6_1_zsmalloc_says_retries_cannot_matter(churn_trace):
    records = zswapsim.tune_retries(churn_trace, (1, 8, 32), backend="zsmalloc",
                                    ram_pages=RAM, kernel="6.1")
    assert all(r["pool_limit_hit"] for r in records)        # the limit bit...
    for record in records:                                  # ...and every shrink was -EINVAL
        assert record["reclaim_einval"] == record["reclaim_calls"] > 0
        assert record["reclaim_pages_scanned"] == record["written_back_pages"] == 0
        assert record["recommended_retries"] is None and not record["recommended"]
        assert record["kernel_retries"] is None
        assert "retries cannot matter" in record["advice"] and "-EINVAL" in record["advice"]
    assert len({r["swap_writes"] for r in records}) == 1    # as the kernel's source says


def test_a_pool_limit_never_hit_says_so(churn_trace):
    records = zswapsim.tune_retries(churn_trace, (1, 8), ram_pages=1 << 20)
    assert not any(r["pool_limit_hit"] for r in records)
    assert [r["recommended_retries"] for r in records] == [None, None]
    assert all("the pool limit was never hit" in r["advice"] for r in records)


def test_6_1_zbud_names_the_kernels_8_and_where_it_is():
    # The shipped swap-cache churn trace: with 16M of RAM the pool limit bites,
    # and with userspace liblz4's lengths fewer retries write less than 8.
    records = zswapsim.tune_retries(SHIPPED.with_name("swapcache-churn.trace"), (1, 8),
                                    ram_pages=4096, compressor="lz4-upstream")
    writes = {r["retries"]: r["stores"] - r["zswpout"] + r["written_back_pages"]
              for r in records}
    assert writes == {r["retries"]: r["swap_writes"] for r in records}
    fewest = min(writes.values())
    expected = min(value for value, count in writes.items() if count == fewest)
    assert {r["recommended_retries"] for r in records} == {expected}
    assert [r["retries"] for r in records if r["recommended"]] == [expected]
    assert {r["kernel_retries"] for r in records} == {8}
    advice = records[0]["advice"]
    assert "6.1 fixes retries at 8 in zbud_zpool_shrink() in mm/zbud.c" in advice
    assert f"({writes[8]} swap writes), with no sysfs knob: retries {expected} needs a " \
        "kernel change" in advice


def rows(kernel, backend, writes, hit=1, pct=20):
    """Hand-built tune records: retries -> swap writes."""
    return [{"max_pool_percent": pct, "retries": retries, "backend": backend,
             "kernel": kernel, "swap_writes": count, "pool_limit_hit": hit,
             "reclaim_pages_scanned": 10 * retries, "reclaim_calls": 10}
            for retries, count in writes.items()]


def test_recommendation_rule_by_hand():
    # The fewest swap writes, 90, first at retries 4 (8 and 16 tie with it).
    [item] = recommend(rows("6.1", "z3fold", {1: 120, 2: 95, 4: 90, 8: 90, 16: 90}))
    assert (item["retries"], item["kernel_swap_writes"]) == (4, 90)
    assert advice_line(item) == (
        "max_pool_percent 20: retries 4 gives the fewest swap writes, 90 (40 LRU pages "
        "scanned in 10 reclaim calls); 6.1 fixes retries at 8 in z3fold_zpool_shrink() in "
        "mm/z3fold.c (90 swap writes), with no sysfs knob: retries 4 needs a kernel change")
    # The kernel's own value is the best: nothing to change.
    [item] = recommend(rows("3.11", "zbud", {1: 50, 8: 40, 32: 45}))
    assert item["retries"] == 8
    assert advice_line(item).endswith(
        ": the value 3.11 fixes retries at 8 in zswap_frontswap_store() in mm/zswap.c")
    # 8 not swept.
    [item] = recommend(rows("6.3", "zsmalloc", {1: 50, 2: 40}))
    assert "zs_zpool_shrink() in mm/zsmalloc.c (not swept here)" in advice_line(item)
    # Every value the same: no recommendation.
    [item] = recommend(rows("6.1", "zbud", {1: 7, 8: 7}))
    assert item["retries"] is None and "make no difference" in advice_line(item)


def test_what_ifs_and_kernels_without_allocator_reclaim_by_hand(monkeypatch):
    [item] = recommend(rows("6.1", "xvmalloc", {1: 9, 8: 5}))
    assert item["retries"] == 8 and item["kernel_retries"] is None
    assert "a what-if: xvmalloc never shipped in zswap" in advice_line(item)
    [item] = recommend(rows("3.11", "z3fold", {1: 9, 8: 5}))
    assert "z3fold came in 4.8, after 3.11's zswap" in advice_line(item)
    assert "zswap could use zsmalloc only from 3.18" in what_if("zsmalloc", "3.11")
    assert what_if("zbud", "3.11") is None and what_if("zsmalloc", "6.1") is None
    # A kernel from 6.5 on (not modelled yet: a stand-in profile whose LRU is
    # zswap's own): no allocator reclaim, so no retries value.
    stand_in = dataclasses.replace(ZSWAP_PROFILES["6.3"], name="6.12", lru_owner="zswap")
    monkeypatch.setitem(ZSWAP_PROFILES, "6.12", stand_in)
    [item] = recommend(rows("6.12", "zsmalloc", {1: 9, 8: 5}))
    assert item["retries"] is None and "zswap keeps the LRU itself" in advice_line(item)


def test_tune_retries_json_and_csv_carry_the_recommendation(churn_trace, tmp_path):
    csv_path = tmp_path / "t.csv"
    result = run("tune-retries", str(churn_trace), "--ram", "4000K", "--retries", "1,8",
                 "--kernel", "3.11", "--json", "--csv", str(csv_path))
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    fewest = min(r["stores"] - r["zswpout"] + r["written_back_pages"] for r in records)
    chosen = min(r["retries"] for r in records
                 if r["stores"] - r["zswpout"] + r["written_back_pages"] == fewest)
    assert {r["recommended_retries"] for r in records} == {chosen}
    assert [r["retries"] for r in records if r["recommended"]] == [chosen]
    assert all(r["advice"].startswith("max_pool_percent 20: ") for r in records)
    assert "3.11 fixes retries at 8 in zswap_frontswap_store() in mm/zswap.c" \
        in records[0]["advice"]
    with open(csv_path, newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == list(records[0])
    assert [row["recommended"] for row in table] == [str(r["recommended"]) for r in records]
    text = run("tune-retries", str(churn_trace), "--ram", "4000K", "--retries", "1,8",
               "--backend", "zsmalloc")
    assert text.stdout.splitlines()[-1].startswith(
        "max_pool_percent 20: retries cannot matter: 6.1's zsmalloc has no zpool shrink")


# -- compare -----------------------------------------------------------------

def config(backend, density, refused, written_back, pool_pages=100, is_what_if=False,
           retries=8):
    return {"backend": backend, "compressor": "lz4", "kernel": "6.1", "retries": retries,
            "density": density,
            "pool_pages": pool_pages, "allocator_waste_percent": 10.0,
            "stores_refused": refused, "written_back_pages": written_back,
            "swap_writes": refused + written_back, "what_if": is_what_if}


def test_the_verdict_takes_the_fewest_swap_writes_before_density():
    records = rank([config("zsmalloc", 3.9, 1730, 0), config("zbud", 2.0, 0, 0)])
    assert [r["backend"] for r in records if r["recommended"]] == ["zbud"]
    lines = verdict(records)
    assert lines[1].startswith("verdict: zbud with lz4: 0 swap writes (0 refused, ")
    assert lines[2].startswith("densest: zsmalloc with lz4: 1730 swap writes (1730 refused, ")
    # Equal swap writes: the densest; a written-back page counts as a refused one does.
    records = rank([config("zbud", 2.0, 5, 0), config("z3fold", 2.5, 0, 5),
                    config("zsmalloc", 3.0, 0, 6)])
    assert [r["backend"] for r in records] == ["z3fold", "zbud", "zsmalloc"]
    assert records[0]["recommended"] and len(verdict(records)) == 3


def test_a_what_if_is_marked_and_never_the_verdict_beside_a_real_one():
    records = rank([config("xvmalloc", 4.0, 0, 0, is_what_if=True),
                    config("zsmalloc", 3.0, 0, 0)])
    assert [r["backend"] for r in records] == ["xvmalloc", "zsmalloc"]
    assert records[1]["recommended"] and not records[0]["recommended"]
    densest, note = verdict(records)[2:]
    assert densest == ("densest: xvmalloc* with lz4: 0 swap writes (0 refused, 0 written back), "
                       "4.00 stored pages per pool page (100 pool pages, 10.0% allocator waste)")
    assert note.startswith("* a what-if: xvmalloc never shipped in zswap")
    alone = rank([config("xvmalloc", 4.0, 0, 0, is_what_if=True)])
    assert alone[0]["recommended"]


def test_compare_says_when_its_retries_are_not_the_kernels():
    assert not any("retries" in line for line in verdict(rank([config("zbud", 2.0, 0, 0)])))
    records = rank([config(b, 2.0, 0, 0, retries=16) for b in ("zbud", "zsmalloc")])
    # 6.1's zsmalloc never retries: only zbud's 8 is overridden.
    assert verdict(records)[-1] == ("retries 16 is a what-if too: 6.1 fixes retries at 8 "
                                    "for zbud, so another value needs a kernel change")


def test_compare_under_3_11_marks_zsmalloc_a_what_if(churn_trace):
    # lzo: 3.11's lz4 is approximate here (a what-if note of its own)
    records = zswapsim.compare(churn_trace, ("zbud", "zsmalloc"), ("lzo",), ram_pages=RAM,
                               kernel="3.11")
    assert {r["backend"]: bool(r["what_if"]) for r in records} == \
        {"zbud": False, "zsmalloc": True}
    assert [r["backend"] for r in records if r["recommended"]] == ["zbud"]
    assert "* a what-if: zswap could use zsmalloc only from 3.18 (the zpool layer); run with " \
        "zbud's contract, evictable" in verdict(records)


def test_compare_records_carry_every_field_of_replay(churn_trace, tmp_path):
    csv_path = tmp_path / "c.csv"
    result = run("compare", str(churn_trace), "--ram", "4000K", "--backend", "zbud,xvmalloc",
                 "--compressor", "lz4", "--json", "--csv", str(csv_path))
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    for record in records:
        alone = run("replay", str(churn_trace), "--ram", "4000K", "--backend",
                    record["backend"], "--compressor", "lz4", "--json")
        replayed = json.loads(alone.stdout)
        assert set(record) == set(replayed) | {"stores_refused", "recommended"}
        # Per pass, not per configuration: the timings, and the cache the lanes share.
        per_pass = {*TIMING_FIELDS, "compress_cache_hits"}
        assert {k: v for k, v in record.items() if k in set(replayed) - per_pass} == \
            {k: v for k, v in replayed.items() if k not in per_pass}
        assert bool(record["what_if"]) == (record["backend"] == "xvmalloc")
    with open(csv_path, newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == list(records[0]) and len(table) == 2
    assert json.loads(table[0]["pool_options"]) == records[0]["pool_options"]


# -- plots -------------------------------------------------------------------

def drawn(monkeypatch, draw, *args):
    """The figure a plots function drew, kept from plt.close."""
    from zswapsim import plots
    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)
    draw(*args)
    return figures[0]


def horizontal_at(ax, y):
    return [line for line in ax.get_lines() if list(line.get_ydata()) == [y, y]]


def test_tune_plot_marks_the_limit_the_kernels_value_and_the_recommendation(
        churn_trace, tmp_path, monkeypatch):
    from zswapsim.plots import tune_plot
    records = zswapsim.tune_retries(churn_trace, (1, 2, 8), ram_pages=RAM, kernel="3.11")
    figure = drawn(monkeypatch, tune_plot, records, tmp_path / "t.png", "t")
    writes, _, peaks = figure.axes
    assert horizontal_at(peaks, RAM * 20 // 100)                   # the pool limit
    assert [line for line in writes.get_lines() if list(line.get_xdata()) == [8, 8]]
    chosen = next(r for r in records if r["recommended"])
    rings = [line for line in writes.get_lines() if line.get_markersize() > 10]
    assert [(list(r.get_xdata()), list(r.get_ydata())) for r in rings] == \
        [([chosen["retries"]], [chosen["swap_writes"]])]


def test_compare_plot_marks_the_pool_limit(churn_trace, tmp_path, monkeypatch):
    from zswapsim.plots import compare_plot
    records = zswapsim.compare(churn_trace, ("zbud", "xvmalloc"), ("lz4",), ram_pages=RAM,
                               timeline_points=20)
    figure = drawn(monkeypatch, compare_plot, records, tmp_path / "c.png", "c")
    bars, lines = figure.axes
    assert horizontal_at(lines, RAM * 20 // 100)
    assert [patch.get_hatch() for patch in bars.patches] == ["//", None]   # xvmalloc, zbud
