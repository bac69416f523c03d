"""Synthetic traces: the RAM model's swap events on hand-worked sequences,
the access patterns and content mix of the generator, and their errors."""

import random
import struct
import zlib
from collections import Counter
from pathlib import Path

import pytest
import zstandard

from zswapsim.compress import get_compressor
from zswapsim.errors import ConfigError, UserError
from zswapsim.memory import same_filled_word
from zswapsim.replay import replay
from zswapsim.trace import OP_NAMES, STORE, TraceReader, TraceWriter
from zswapsim.trace.ram_model import RamModel
from zswapsim.trace.synth import (
    VOCABULARY,
    ContentMix,
    Phase,
    generate_accesses,
    load_source,
    parse_mix,
    parse_phase,
    synthesize,
    synthesize_from_accesses,
)

PAGE = 4096
lz4 = get_compressor("lz4")
HEAP_TRACE = Path(__file__).resolve().parent.parent / "traces" / "python-heap.trace"


def page(tag):
    return struct.pack("<Q", tag) * (PAGE // 8)


def tag_of(image):
    return None if image is None else struct.unpack("<Q", image[:8])[0]


def events(path):
    """(op, offset, tag of the image) for every event of a trace."""
    return [(OP_NAMES[op], offset, tag_of(image))
            for op, _type, offset, image, _ts in TraceReader(path)]


def run_model(tmp_path, ram_pages, accesses):
    """Events and statistics of `accesses` given as (kind, key, tag or None)."""
    path = tmp_path / "model.trace"
    sequence = [(kind, key, None if tag is None else page(tag)) for kind, key, tag in accesses]
    stats = synthesize_from_accesses(path, sequence, ram_pages)
    return events(path), stats


# --- the RAM model -------------------------------------------------------------------------

def test_eviction_faults_clean_drops_invalidates_and_slot_reuse(tmp_path):
    got, stats = run_model(tmp_path, 2, [
        ("write", "A", 1), ("write", "B", 2),
        ("write", "C", 3),     # RAM full: A, least recently used, goes to slot 0
        ("read", "A", None),   # B to slot 1, then A comes back and keeps slot 0
        ("read", "B", None),   # C to slot 2; B keeps slot 1
        ("read", "C", None),   # A is clean and slot 0 still holds it: dropped, no store
        ("write", "B", 22),    # B's swap copy is stale: slot 1 invalidated and freed
        ("read", "A", None),   # C is clean (slot 2): dropped; A loaded from slot 0
        ("free", "A", None),   # A's slot 0 invalidated; RAM holds B alone
        ("write", "D", 4),     # room for D without reclaim
        ("write", "E", 5),     # B (dirty) to the lowest free slot, 0
        ("free", "C", None),   # C is swapped out: its slot 2 is invalidated
        ("write", "F", 6),     # D to slot 1
    ])
    assert got == [
        ("store", 0, 1),
        ("store", 1, 2), ("load", 0, 1),
        ("store", 2, 3), ("load", 1, 2),
        ("drop_clean", 0, None), ("load", 2, 3),
        ("invalidate_page", 1, None),
        ("drop_clean", 2, None), ("load", 0, 1),
        ("invalidate_page", 0, None),
        ("store", 0, 22),
        ("invalidate_page", 2, None),
        ("store", 1, 4),
    ]
    assert stats == dict(accesses=13, reads=4, writes=7, frees=2, first_touches=6, loads=4,
                         stores=5, clean_drops=2, invalidates=3, peak_resident=2,
                         peak_swap_slots=3, resident=2, swap_slots=2)


def test_write_fault_loads_then_invalidates(tmp_path):
    got, _ = run_model(tmp_path, 1, [("write", 0, 1), ("write", 1, 2), ("write", 0, 3),
                                     ("read", 1, None)])
    assert got == [("store", 0, 1), ("store", 1, 2), ("load", 0, 1),
                   ("invalidate_page", 0, None), ("store", 0, 3), ("load", 1, 2)]


def test_a_page_read_before_any_write_is_a_zero_page(tmp_path):
    got, stats = run_model(tmp_path, 1, [("read", "X", None), ("read", "Y", None),
                                         ("read", "X", None)])
    assert [(op, offset) for op, offset, _ in got] == [("store", 0), ("store", 1), ("load", 0)]
    images = {image for _, _, _, image, _ in TraceReader(tmp_path / "model.trace")}
    assert images == {bytes(PAGE)}
    assert stats["first_touches"] == 2


def test_free_without_a_slot_and_hits_make_no_events(tmp_path):
    got, stats = run_model(tmp_path, 2, [("write", 1, 1), ("read", 1, None), ("write", 1, 2),
                                         ("free", 1, None), ("free", 99, None)])
    assert got == []
    assert (stats["resident"], stats["swap_slots"], stats["frees"]) == (0, 0, 2)


def test_content_made_by_a_function_only_when_stored(tmp_path):
    made = []
    def maker(tag):
        return lambda: made.append(tag) or page(tag)
    sequence = [("write", 0, maker(1)), ("write", 0, maker(2)), ("write", 1, maker(3)),
                ("write", 2, lambda: b"short"), ("write", 3, maker(4))]
    with pytest.raises(ConfigError, match="write to page 2 carries 5 bytes, expected 4096"):
        synthesize_from_accesses(tmp_path / "t.trace", sequence, 1)
    assert made == [2, 3]        # 1 was overwritten, 4 never left RAM
    synthesize_from_accesses(tmp_path / "t.trace", sequence[:3], 1)
    assert events(tmp_path / "t.trace") == [("store", 0, 2)]


def test_finish_leaves_ram_and_swap_as_they_are(tmp_path):
    with TraceWriter(tmp_path / "t.trace") as writer:
        model = RamModel(writer, 3)
        for key in range(5):
            model.access("write", key, page(key))
        stats = model.finish()
    assert events(tmp_path / "t.trace") == [("store", 0, 0), ("store", 1, 1)]
    assert (stats["resident"], stats["swap_slots"]) == (3, 2)


@pytest.mark.parametrize("access, message", [
    (("erase", 1, None), "unknown access kind 'erase'"),
    (("write", 1, None), "write to page 1 carries no content"),
    (("write", 1, b"x" * 100), "write to page 1 carries 100 bytes, expected 4096"),
])
def test_bad_accesses(tmp_path, access, message):
    with pytest.raises(ConfigError, match=message):
        synthesize_from_accesses(tmp_path / "t.trace", [access], 4)
    assert not (tmp_path / "t.trace").exists()


# --- access patterns ------------------------------------------------------------------------

def pages_of(phases, accesses, seed=0):
    mix = ContentMix({"zero": 1})
    return [(kind, key) for kind, key, _ in generate_accesses(phases, accesses, mix,
                                                               random.Random(seed))]


def full(pattern, accesses, footprint, **settings):
    return Phase(pattern, accesses, footprint=footprint,
                 **{"skew": 1.0, "write_fraction": 0.0, **settings})


def test_zipf_concentrates_accesses_on_few_pages():
    def top_tenth_share(phase):
        counts = Counter(key for _, key in pages_of([phase], phase.accesses))
        return sum(count for _, count in counts.most_common(100)) / phase.accesses
    uniform = top_tenth_share(full("uniform", 20000, 1000))
    zipf = top_tenth_share(full("zipf", 20000, 1000, skew=1.1))
    steep = top_tenth_share(full("zipf", 20000, 1000, skew=2.0))
    assert uniform < 0.15 < 0.7 < zipf < steep
    hottest = Counter(key for _, key in pages_of([full("zipf", 5000, 1000)], 5000))
    assert hottest.most_common(1)[0][0] == 0      # rank 1 is the phase's first page


def test_sequential_scan_wraps_at_the_footprint():
    keys = [key for _, key in pages_of([full("sequential", 7, 3, offset=10)], 7)]
    assert keys == [10, 11, 12, 10, 11, 12, 10]


def test_a_scan_larger_than_ram_misses_every_time(tmp_path):
    stats = synthesize(tmp_path / "t.trace", ram_pages=2, footprint=3, pattern="sequential",
                       accesses=30, write_fraction=0, mix={"text": 1})
    # LRU's worst case: each page is stored once, then dropped clean at every later eviction.
    assert (stats["first_touches"], stats["loads"], stats["stores"], stats["clean_drops"]) == (
        3, 27, 3, 25)
    assert [op for op, _, _ in events(tmp_path / "t.trace")][:7] == [
        "store", "store", "load", "store", "load", "drop_clean", "load"]


def test_phases_run_in_turn_and_repeat():
    phases = [full("sequential", 4, 4, offset=100), full("uniform", 6, 10, offset=1000)]
    keys = [key for _, key in pages_of(phases, 22)]
    assert keys[:4] == keys[10:14] == [100, 101, 102, 103]
    assert all(1000 <= key < 1010 for key in keys[4:10] + keys[14:20])
    assert keys[20:] == [100, 101]             # the last run is cut at the accesses asked for


def test_first_touch_writes_and_write_fraction():
    accesses = pages_of([full("uniform", 20000, 200, write_fraction=0.25)], 20000)
    first = {}
    for kind, key in accesses:
        first.setdefault(key, kind)
    assert set(first.values()) == {"write"}
    later_writes = sum(kind == "write" for kind, _ in accesses) - len(first)
    assert later_writes / (len(accesses) - len(first)) == pytest.approx(0.25, abs=0.02)


# --- page contents --------------------------------------------------------------------------

def classify(image):
    if image == bytes(PAGE):
        return "zero"
    if same_filled_word(image) is not None:
        return "same"
    if all(32 <= byte < 127 for byte in set(image)):
        return "text"
    if len(zlib.compress(image, 1)) > 0.9 * PAGE:
        return "random"
    return "binary"


def test_stored_pages_follow_the_mix(tmp_path):
    mix = {"zero": 0.1, "same": 0.15, "text": 0.3, "binary": 0.25, "random": 0.2}
    stats = synthesize(tmp_path / "t.trace", ram_pages=16, accesses=3000, footprint=3000,
                       pattern="sequential", write_fraction=0, mix=mix, seed=3)
    stored = [image for op, _, _, image, _ in TraceReader(tmp_path / "t.trace") if op == STORE]
    assert len(stored) == stats["stores"] == 3000 - 16
    counts = Counter(map(classify, stored))
    for kind, weight in mix.items():
        assert counts[kind] / len(stored) == pytest.approx(weight, abs=0.03), kind
        assert stats[f"content_{kind}"] == pytest.approx(3000 * weight, abs=90)
    same = [image for image in stored if classify(image) == "same"]
    one_byte = sum(image == image[:1] * PAGE for image in same)
    assert 0.3 < one_byte / len(same) < 0.7


def test_generated_kinds_compress_like_their_models():
    mix = ContentMix({"text": 1, "binary": 1})
    text = mix.page("text", 5)
    assert set(text.decode().split()[:-1]) <= set(VOCABULARY)   # the last word may be cut
    assert 0.6 < len(lz4.compress(text)) / PAGE < 0.8                # as a page of prose
    binary = mix.page("binary", 5)
    assert 0.3 < len(lz4.compress(binary)) / PAGE < 0.5              # as real heap pages
    assert len({binary[i:i + 8] for i in range(0, PAGE, 8)}) < 150   # few distinct words


def test_a_rewrite_keeps_the_kind_and_changes_at_most_64_bytes():
    mix = ContentMix({"zero": 1, "same": 1, "text": 1, "binary": 1, "random": 1})
    rng = random.Random(9)
    for kind in mix.kinds:
        first = mix.page(kind, 42)
        rewrites = [mix.rewrite(kind, 42, rng)() for _ in range(20)]
        assert {classify(page) for page in rewrites} == {kind}
        if kind in ("text", "binary", "random"):
            changed = [[i for i in range(PAGE) if first[i] != page[i]] for page in rewrites]
            assert all(not run or run[-1] - run[0] < 64 for run in changed)
            assert sum(bool(run) for run in changed) >= 15
    assert len({mix.rewrite("same", 42, rng)()[:8] for _ in range(20)}) > 10   # new fills


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    options = dict(ram_pages=32, accesses=1500, footprint=100, pattern="zipf", zipf_skew=0.8,
                   write_fraction=0.4)
    synthesize(tmp_path / "a.trace", seed=7, **options)
    synthesize(tmp_path / "b.trace", seed=7, **options)
    synthesize(tmp_path / "c.trace", seed=8, **options)
    a = (tmp_path / "a.trace").read_bytes()
    assert a == (tmp_path / "b.trace").read_bytes()
    assert a != (tmp_path / "c.trace").read_bytes()


def test_synthetic_trace_replays_and_verifies(tmp_path):
    phases = [Phase("zipf", 3000), Phase("sequential", 500, offset=600, footprint=300)]
    stats = synthesize(tmp_path / "t.trace", ram_pages=100, phases=phases, footprint=400,
                       zipf_skew=0.9, write_fraction=0.3, seed=1)
    assert stats["accesses"] == 3500 and stats["loads"] and stats["invalidates"]
    assert stats["clean_drops"] and stats["peak_resident"] == 100
    result = replay(tmp_path / "t.trace", ram_pages=256)   # a 51-page pool: writeback too
    assert result["events"] == (stats["stores"] + stats["loads"] + stats["invalidates"]
                                + stats["clean_drops"])
    assert result["live_pages"] == stats["swap_slots"]
    assert result["written_back_pages"] > 0
    description = TraceReader(tmp_path / "t.trace").description
    assert description.startswith("synthetic: 3500 accesses in phases [zipf skew 0.9 over "
                                  "pages 0..399 for 3000 accesses")


def test_defaults_and_progress(tmp_path):
    calls = []
    stats = synthesize(tmp_path / "t.trace", ram_pages=8,
                       progress=lambda done, total: calls.append((done, total)))
    assert stats["accesses"] == 64 and calls == [(64, 64)]   # 4 per page of a 16-page footprint
    assert "zipf skew 0.8 over pages 0..15" in TraceReader(tmp_path / "t.trace").description
    calls.clear()
    synthesize(tmp_path / "t.trace", ram_pages=8, accesses=5000, pattern="uniform",
               mix={"zero": 1}, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4096, 5000), (5000, 5000)]


# --- sources of real pages ------------------------------------------------------------------

def test_pages_sampled_from_a_trace(tmp_path):
    stats = synthesize(tmp_path / "t.trace", ram_pages=8, accesses=300, footprint=300,
                       pattern="sequential", write_fraction=0, source=HEAP_TRACE)
    real = {image for op, _, _, image, _ in TraceReader(HEAP_TRACE) if op == STORE}
    stored = [image for op, _, _, image, _ in TraceReader(tmp_path / "t.trace") if op == STORE]
    assert len(stored) == 292 and set(stored) <= real
    assert stats["content_source"] == 300


@pytest.mark.parametrize("compress", [False, True])
def test_pages_sampled_from_a_raw_dump(tmp_path, compress):
    data = b"".join(page(1000 + i) for i in range(40))
    (tmp_path / "dump").write_bytes(zstandard.ZstdCompressor().compress(data) if compress
                                    else data)
    sample = load_source(tmp_path / "dump", random.Random(0), limit=10)
    assert len(sample) == 10 and len(set(sample)) == 10
    assert all(1000 <= tag_of(image) < 1040 for image in sample)
    assert sorted(map(tag_of, load_source(tmp_path / "dump", random.Random(0)))) == list(
        range(1000, 1040))


def test_a_source_with_a_mix(tmp_path):
    (tmp_path / "dump").write_bytes(page(77) * 3)
    synthesize(tmp_path / "t.trace", ram_pages=4, accesses=400, footprint=400,
               pattern="sequential", write_fraction=0, source=tmp_path / "dump",
               mix={"source": 1, "random": 1}, seed=2)
    tags = Counter(tag_of(image) == 77 for op, _, _, image, _ in
                   TraceReader(tmp_path / "t.trace") if op == STORE)
    assert 150 < tags[True] < 250


# --- option parsing and errors --------------------------------------------------------------

def test_parse_mix_and_phase():
    assert parse_mix("zero=0.05, text=1") == {"zero": 0.05, "text": 1.0}
    assert parse_phase("zipf:2000:offset=64,footprint=128,skew=1.5,write-fraction=0.1") == \
        Phase("zipf", 2000, offset=64, footprint=128, skew=1.5, write_fraction=0.1)
    assert parse_phase("sequential:10") == Phase("sequential", 10)


@pytest.mark.parametrize("text, message", [
    ("zero", "cannot read mix 'zero'"),
    ("zero=lots", "cannot read 'lots' in 'zero=lots' as a number"),
])
def test_bad_mix_text(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_mix(text)


@pytest.mark.parametrize("text, message", [
    ("zipf", "cannot read phase 'zipf'"),
    ("zipf:many", "cannot read 'many'"),
    ("zipf:10:speed=3", "unknown phase setting 'speed'"),
])
def test_bad_phase_text(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_phase(text)


@pytest.mark.parametrize("options, message", [
    (dict(ram_pages=0), "RAM in pages must be at least 1, not 0"),
    (dict(footprint=0), "footprint in pages must be at least 1, not 0"),
    (dict(accesses=0), "accesses must be at least 1, not 0"),
    (dict(pattern="random-walk"), "unknown access pattern 'random-walk': use uniform, zipf"),
    (dict(zipf_skew=0), "zipf skew must be a number > 0, not 0"),
    (dict(zipf_skew=-1.5), "zipf skew must be a number > 0, not -1.5"),
    (dict(write_fraction=1.5), "write fraction must be between 0 and 1, not 1.5"),
    (dict(write_fraction=-0.1), "write fraction must be between 0 and 1, not -0.1"),
    (dict(phases=[]), "give at least one phase"),
    (dict(phases=[Phase("zipf", 10, offset=-1)]), "phase offset must be at least 0, not -1"),
    (dict(phases=[Phase("zipf", 1.5)]), "accesses must be a whole number, not 1.5"),
    (dict(mix={"zero": 0, "text": 0}), "the mix weights must add up to more than 0"),
    (dict(mix={"text": -1, "zero": 2}), "mix weight of text must be a number >= 0, not -1"),
    (dict(mix={"json": 1}), "unknown content kind 'json' in the mix"),
    (dict(mix={"source": 1}), "the mix asks for source pages but no source was given"),
    (dict(mix={"text": 1}, source=HEAP_TRACE), "a source is given but the mix gives it no"),
    (dict(source="/nonexistent/dump"), "source /nonexistent/dump: No such file or directory"),
])
def test_bad_options(tmp_path, options, message):
    with pytest.raises(UserError, match=message):
        synthesize(tmp_path / "t.trace", **{"ram_pages": 8, "accesses": 10, **options})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("data, message", [
    (b"", "holds no pages"),
    (zstandard.ZstdCompressor().compress(b""), "holds no pages"),
    (b"\x01" * (PAGE + 10), "dump length is not a multiple of 4096"),
])
def test_bad_sources(tmp_path, data, message):
    (tmp_path / "dump").write_bytes(data)
    with pytest.raises(UserError, match=message):     # ConfigError or TraceError
        synthesize(tmp_path / "t.trace", ram_pages=8, accesses=10, source=tmp_path / "dump")
    assert not (tmp_path / "t.trace").exists()
