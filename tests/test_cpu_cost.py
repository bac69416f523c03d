"""The CPU cost `replay` and `compare` report (zswapsim/cpu_cost.py).

The figures are wall-clock timings of this machine, so no test holds them
to a value: the tests check that they are there, of the right type and
positive, that the total is the stated sum of the per-page figures times
counts derived here from the trace (not read back from the code), that the
sample is the one the module promises, and that the output says whose
figure it is.
"""

import json
import random

import pytest

import zswapsim
from zswapsim.cli import main
from zswapsim.compress import get_compressor
from zswapsim.cpu_cost import MEASURED, MIN_PAGES, SAMPLE_PAGES, PageSample, page_cost
from zswapsim.replay import replay
from zswapsim.trace import TraceReader, TraceWriter

PAGES = 2500            # distinct pages: three trace blocks (1,024 images a block)
LOADS = 500


def text_page(number):
    """A compressible page unlike every other number's."""
    return (f"page {number:06d} of the cpu-cost trace; " * 120).encode()[:4096]


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    """PAGES stores of distinct pages at offsets 0.., then LOADS loads of
    the first LOADS offsets: with RAM to spare, every store goes to zswap
    and every load comes from it."""
    path = tmp_path_factory.mktemp("cpu") / "pages.trace"
    with TraceWriter(path) as w:
        for offset in range(PAGES):
            w.store(0, offset, text_page(offset))
        for offset in range(LOADS):
            w.load(0, offset)
    return path


def total(result):
    """The module's stated total, from the result's per-page figures and
    counts, in seconds."""
    decompressions = result["zswpin"] + result["written_back_pages"]
    return (result["stores"] * result["compress_us_per_page"]
            + decompressions * result["decompress_us_per_page"]) / 1e6


def assert_measured(result):
    for field in ("compress_us_per_page", "decompress_us_per_page",
                  "cpu_seconds_stores_loads"):
        assert isinstance(result[field], float) and result[field] > 0, field
    assert isinstance(result["cpu_sample_pages"], int)
    assert MIN_PAGES <= result["cpu_sample_pages"] <= SAMPLE_PAGES
    assert result["cpu_seconds_stores_loads"] == pytest.approx(total(result), abs=1e-6)


@pytest.mark.parametrize("compressor", ["lz4", "zstd", "lzo"])
def test_replay_reports_the_cpu_cost(trace, compressor):
    result = replay(trace, compressor=compressor, ram_pages=65536)
    # Counted from the trace as written: nothing refused, nothing written back.
    assert (result["stores"], result["zswpin"], result["written_back_pages"]) == \
        (PAGES, LOADS, 0)
    assert_measured(result)


def test_the_total_counts_writeback_decompressions(trace):
    """A pool limit of 40 pages (20 % of 200) makes zbud write entries back:
    each one decompressed, so the total counts them beside the loads."""
    result = replay(trace, backend="zbud", ram_pages=200)
    assert result["written_back_pages"] > 0 and result["stores"] == PAGES
    assert_measured(result)


def test_a_trace_without_stores_costs_nothing(tmp_path):
    path = tmp_path / "empty.trace"
    with TraceWriter(path) as w:
        w.invalidate_area(0)
    result = replay(path)
    assert [result[field] for field in MEASURED] == [None, None, 0.0, 0]


def test_the_sample_spreads_over_the_whole_trace(trace):
    """A 1,000-page sample of 2,500 images takes every third id,
    ceil(2500 / 1000) = 3: ids 0, 3, ..., 2499, 834 pages, across all
    three blocks."""
    reader = TraceReader(trace)
    sample = PageSample(reader, size=1000)
    for _, images in reader.blocks():
        sample.take(images, reader.images_defined)
    assert sample.pages == [text_page(number) for number in range(0, PAGES, 3)]
    assert len(sample.pages) == 834


def test_the_default_sample_is_bounded(trace):
    """With more distinct pages than SAMPLE_PAGES (2,000), the stride is 2
    and the sample the 1,250 even ids."""
    reader = TraceReader(trace)
    sample = PageSample(reader)
    for _, images in reader.blocks():
        sample.take(images, reader.images_defined)
    assert len(sample.pages) == 1250 and sample.pages[-1] == text_page(2498)


def test_the_budget_bounds_the_pages_timed():
    pages = [text_page(number) for number in range(1000)]
    lz4 = get_compressor("lz4")
    assert page_cost(lz4, pages, 0.0)[2] == MIN_PAGES
    assert page_cost(lz4, pages[:30], 0.0)[2] == 30
    compress_us, decompress_us, timed = page_cost(lz4, pages, 60.0)
    assert timed == 1000 and compress_us > 0 and decompress_us > 0


def test_nothing_to_decompress_when_no_page_compresses():
    """Random pages do not compress below a page, so no pool would hold
    one: no decompression figure, and none is invented."""
    rng = random.Random(5)
    pages = [rng.randbytes(4096) for _ in range(200)]
    for name in ("lz4", "lzo"):
        compress_us, decompress_us, timed = page_cost(get_compressor(name), pages, 1.0)
        assert compress_us > 0 and decompress_us is None and timed == 200


def test_replay_text_says_whose_figure_it_is(trace, capsys):
    main(["replay", str(trace), "--ram", "256M", "-q"])
    out = capsys.readouterr().out
    section = out[out.index("\ncpu (this machine, not the kernel's)\n"):]
    lines = section.splitlines()[2:6]
    assert [line.split()[0] for line in lines] == list(MEASURED)
    shown = {line.split()[0]: float(line.split()[1]) for line in lines}
    assert all(value > 0 for value in shown.values())
    assert "cpu_seconds_stores_loads = stores x compress_us_per_page + " \
        "(zswpin + written_back_pages) x decompress_us_per_page" in section


def test_replay_json_has_the_fields(trace, capsys):
    main(["replay", str(trace), "--ram", "256M", "--compressor", "zstd", "--json", "-q"])
    assert_measured(json.loads(capsys.readouterr().out))


def test_compare_table_and_records(trace, capsys):
    main(["compare", str(trace), "--ram", "256M", "--backend", "zbud,zsmalloc",
          "--compressor", "lz4,zstd", "-q"])
    out = capsys.readouterr().out.splitlines()
    head = out[0].split()
    assert head[-3:] == ["comp_us", "decomp_us", "cpu_s"]
    rows = [line.split() for line in out[1:5]]
    assert all(float(cell) > 0 for row in rows for cell in row[-3:])
    assert "comp_us, decomp_us, cpu_s: this machine's CPU time, not the kernel's" in out[6]

    records = zswapsim.compare(trace, backends="zbud,zsmalloc", compressors="lz4,zstd",
                               ram_pages=65536)
    for record in records:
        assert_measured(record)
    # One measurement per compressor in a pass: its lanes share the figures.
    for name in ("lz4", "zstd"):
        figures = {(r["compress_us_per_page"], r["decompress_us_per_page"])
                   for r in records if r["compressor"] == name}
        assert len(figures) == 1
