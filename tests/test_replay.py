"""Replaying traces: counters worked out by hand, verification and the
conservation check, and the shipped trace against an independent count."""

import random
from pathlib import Path

import pytest

from zswapsim import _kcompress, compress
from zswapsim.cli import main
from zswapsim.compress import KernelLz4, page_key
from zswapsim.errors import TraceError
from zswapsim.engine import ENGINES, zswap_class
from zswapsim.replay import TIMING_FIELDS, VerifyError, check_conservation, replay
from zswapsim.trace import LOAD, TraceReader, TraceWriter
from zswapsim.trace.format import NO_IMAGE

SHIPPED = Path(__file__).resolve().parents[1] / "traces" / "python-heap.trace"


def half_random_page(seed):
    """lz4 + 8 header bytes lands in 24..31 chunks: two per zbud page."""
    return random.Random(seed).randbytes(1500) + bytes(4096 - 1500)


@pytest.fixture
def scripted_trace(tmp_path):
    path = tmp_path / "scripted.trace"
    with TraceWriter(path, description="test script") as w:
        for offset in range(22):
            w.store(0, offset, half_random_page(offset))
        w.load(0, 0)
        w.load(0, 5)
        w.invalidate_page(0, 5)
        w.store(0, 22, half_random_page(22))
        w.store(1, 0, bytes(4096))                # same-filled? refused: pool full
        w.load(1, 0)
        w.load(0, 99)                             # never stored
    return path


def test_scripted_trace_counters(scripted_trace):
    # RAM 100 pages, 10 % -> limit 10, accept below 9.  Stores 0..20 fill
    # 11 pages; store 21 finds 11 > 10: refused, shrink queued.  The load of
    # 0 first runs the shrink: the tail page {0, 1} is written back, then 0
    # is read from the swap device.  Load 5 hits; invalidate 5.  Store 22
    # and the zero page on type 1 meet the hysteresis (10 pages, not < 9).
    r = replay(scripted_trace, ram_pages=100, max_pool_percent=10)
    assert r["events"] == 29
    assert r["pool_limit_hit"] == 1 and r["written_back_pages"] == 2
    assert r["reject_pool_full"] == 3 and r["same_filled_pages"] == 0
    assert r["zswpin"] == 1 and r["load_misses"] == 2 and r["load_unknown"] == 1
    assert r["stored_pages"] == 18                # 21 pooled - 2 written back - 1 invalidated
    assert r["swap_writes"] == 5                  # 3 refused + 2 written back
    assert r["swap_used_slots"] == 5 and r["live_pages"] == 23
    assert r["pool_pages"] == 10 and r["pool_total_size"] == 40960
    assert r["density"] == pytest.approx(18 / 10)
    assert r["effective_ratio"] == pytest.approx(18 * 4096 / 40960)
    assert r["allocator_waste_bytes"] == 40960 - r["compressed_bytes"]


def test_3_11_replay_of_same_trace(scripted_trace, replay_engine):
    # Store 21 finds 11 > 10: reclaim_page writes back the tail {0, 1}, frees
    # the page, and the store goes on into page 11's free buddy (10 pages).
    # Load 0 misses, load 5 hits, invalidate 5 frees a buddy on {4, 5}; store
    # 22 (10 pages: not full) takes that buddy.  Type 1 gets its own pool:
    # the zero page is compressed (no same-filled pages in 3.11) into a new
    # page there, 11 pages in all.
    r = replay(scripted_trace, ram_pages=100, max_pool_percent=10, kernel="3.11")
    assert r["pool_limit_hit"] == 1 and r["written_back_pages"] == 2
    assert r["reject_reclaim_fail"] == 0 and r["same_filled_pages"] == 0
    assert r["stored_pages"] == 21                # type 0: 23 - 2 - 1; type 1: 1
    assert r["pool_pages"] == 11 and r["swap_used_slots"] == 2
    assert r["zswpin"] == 2 and r["load_misses"] == 1 and r["load_unknown"] == 1
    assert r["live_pages"] == 23


def test_verify_catches_a_corrupted_load(scripted_trace, monkeypatch, replay_engine):
    """A decompression that flips the page's last bit fails the first load
    that finds the page: event 23, the load of offset 0; without
    verification the replay counts what an uncorrupted one counts.  Both
    engines then decompress in Python (the compiled cache is told lz4 has
    no compiled codec), and keep no results (a budget of 0), so every load
    decompresses: the native loop takes a pool entry holding the cache's
    bytes for the expected image as that image without decompressing."""
    settings = dict(ram_pages=100, max_pool_percent=10, verify=False)
    clean = replay(scripted_trace, **settings)
    real_decompress = KernelLz4.decompress

    def corrupting_decompress(self, data, size=4096):
        page = real_decompress(self, data, size)
        return page[:-1] + bytes([page[-1] ^ 1])

    monkeypatch.setattr(KernelLz4, "decompress", corrupting_decompress)
    monkeypatch.setattr(compress, "native_codec", lambda compressor: None)
    for cache_class in (compress.CompressionCache, compress.NativeCompressionCache):
        monkeypatch.setattr(cache_class.__init__, "__defaults__", (0,))
    with pytest.raises(VerifyError, match="^verify failed at event 23: load of type 0 offset 0 "
                       "returned a different page, the trace expects the stored page$"):
        replay(scripted_trace, ram_pages=100, max_pool_percent=10)
    corrupted = replay(scripted_trace, **settings)
    for result in (clean, corrupted):
        for field in TIMING_FIELDS:
            result.pop(field)
    assert corrupted == clean and clean["zswpin"] > 0


@pytest.mark.parametrize("engine", ENGINES)
def test_conservation_catches_lost_corrupted_and_extra_pages(engine):
    """Three pages live, two stored: the third is lost unless it stayed in
    RAM; a key that is not the stored page's (so the cache has nothing for
    it, and the page itself is hashed) is a corruption; a page held but
    not live breaks the count.  Each engine's first_unheld counts the live
    pages up to the first it does not hold, in the live dict's order."""
    z = zswap_class(engine)()
    page, other = half_random_page(1), half_random_page(4)
    z.store(0, 1, page)
    z.store(0, 3, other)
    live = {0: {1: page_key(page), 2: page_key(page), 3: page_key(other)}}
    assert z.first_unheld(live, True) == (2, ("lost", 0, 2))
    with pytest.raises(VerifyError, match="^page lost: type 0 offset 2 is neither"):
        check_conservation(z, live, verify=True)
    assert check_conservation(z, live, True, resident={(0, 2): page}) == 3
    with pytest.raises(VerifyError, match="conservation broken"):
        check_conservation(z, {}, verify=True)
    swapped = {0: {3: page_key(other), 1: page_key(other)}}
    assert z.first_unheld(swapped, True) == (2, ("corrupted", 0, 1))
    assert z.first_unheld(swapped, False) == (2, None)
    with pytest.raises(VerifyError, match="^page corrupted: type 0 offset 1 holds"):
        check_conservation(z, swapped, verify=True)
    assert check_conservation(z, {0: {1: page_key(page), 3: page_key(other)}}, verify=True) == 2


@pytest.mark.parametrize("engine", ENGINES)
def test_conservation_catches_bytes_corrupted_in_the_pool(engine):
    """The stored page is still in the compression cache, so the check
    compares compressed bytes: one flipped bit in the frame must show."""
    z = zswap_class(engine)()
    page = half_random_page(3)
    z.store(0, 1, page)
    assert check_conservation(z, {0: {1: page_key(page)}}, verify=True) == 1
    if engine == "native":
        z._engine._flip_bit(0, 1, 8 * 100 + 6)
    else:
        entry = z.trees[0][1]
        frame = z.memory.frames[entry.handle >> 12]
        frame[(entry.handle & 4095) + 100] ^= 0x40
    with pytest.raises(VerifyError, match="page corrupted: type 0 offset 1"):
        check_conservation(z, {0: {1: page_key(page)}}, verify=True)


def test_shipped_trace_against_an_independent_count():
    """Without a binding limit, every page is stored unless lib/lz4's output
    does not fit 6.1's 4096 bytes (not counted) or needs more than 3968 - 8
    bytes (reject_compress_poor): count both straight from the pages."""
    pages = [image for _op, _t, _o, image, _ts in TraceReader(SHIPPED)]
    same = sum(p == p[:8] * 512 for p in pages)
    outputs = [_kcompress.lz4_compress(p, 4096) for p in pages if p != p[:8] * 512]
    lengths = [4097 if data is None else len(data) for data in outputs]
    too_big = sum(n > 4096 for n in lengths)
    poor = sum(3960 < n <= 4096 for n in lengths)
    r = replay(SHIPPED)
    assert r["events"] == len(pages) == 5127
    assert r["same_filled_pages"] == same
    assert r["reject_too_big"] == too_big
    assert r["reject_compress_poor"] == poor
    assert r["stored_pages"] == len(pages) - too_big - poor
    assert r["compressed_bytes"] == sum(n for n in lengths if n <= 3960)
    assert r["swap_writes"] == too_big + poor and r["pool_limit_hit"] == 0
    pooled = r["stored_pages"] - same
    assert r["effective_ratio"] == pytest.approx(pooled * 4096 / r["pool_total_size"])


@pytest.mark.parametrize("name", ["python-heap", "swapcache-churn", "python-job", "gcc-cc1",
                                  "postgres-pgbench"])
def test_shipped_traces_replay_and_verify(name):
    trace = Path(__file__).resolve().parents[1] / "traces" / f"{name}.trace"
    result = replay(trace, ram_pages=65536)                  # 256M
    assert result["verified"] and result["stored_pages"] + result["swap_used_slots"] \
        == result["live_pages"] > 0


@pytest.mark.parametrize("offset, image, what", [
    (0, 1, "names another page than the one stored there"),
    (7, 0, "names a page, but nothing is stored there"),
    (0, NO_IMAGE, "names no page, but one is stored there")])
def test_a_load_contradicting_the_trace_is_the_traces_fault(tmp_path, capsys, offset, image,
                                                            what, replay_engine):
    """A valid file whose crafted fourth event loads `offset` naming `image`:
    with offset 0 holding image 0 and offset 1 image 1, each contradicts the
    trace's own stores, whatever the store layer did."""
    path = tmp_path / "crafted.trace"
    with TraceWriter(path) as w:
        w.store(0, 0, half_random_page(0))                         # image 0
        w.store(0, 1, half_random_page(1))                         # image 1
        w.load(0, 1)
        if image != NO_IMAGE:
            w._last_use[image] = w._n_events                       # keep the image alive
        w._append(LOAD, 0, image, offset, 0)
    message = f"trace inconsistent at event 4: load of type 0 offset {offset} {what}"
    with pytest.raises(TraceError) as error:
        replay(path)
    assert str(error.value) == message
    with pytest.raises(TraceError):                 # no swap slot: the pages stay in RAM
        replay(path, swap_capacity=0)
    with pytest.raises(SystemExit) as status:
        main(["replay", str(path)])
    assert status.value.code == 2
    assert capsys.readouterr().err == f"zswapsim: error: {message}\n"
