"""The drop_clean trace event (format version 2): a clean page that was
swapped in left RAM again.

Expected values come from docs/trace-format.md (the byte layout, encoded
here with struct, not with zswapsim's writer) and from the kernel: under
frontswap (6.1) a clean swap-cache page is dropped with no call, its slot
keeping the page; from 6.9 zswap_load erases its entry when it reads into
the swap cache and dirties the page, so reclaim stores it again at the same
slot (mm/zswap.c, "fix data loss on SWP_SYNCHRONOUS_IO devices"); a page
read from the swap device or zram keeps its copy there, so its drop needs
no store.
"""

import random
import struct
import zlib

import pytest
import zstandard

from zswapsim.errors import TraceError
from zswapsim.replay import TIMING_FIELDS, replay, replay_lanes
from zswapsim.trace import (DROP_CLEAN, INVALIDATE_PAGE, LOAD, NO_IMAGE, OP_NAMES, STORE,
                            TraceReader, TraceWriter)
from zswapsim.trace.recording import RecordingReader, RecordingWriter, accesses
from zswapsim.trace.synth import synthesize_from_accesses
from zswapsim.zram import Zram
from zswapsim.zram_replay import zram_replay

PAGE = 4096
TEXT = (b"the quick brown fox jumps over the lazy dog; " * 100)[:PAGE]
OTHER = (b"pack my box with five dozen liquor jugs. " * 100)[:PAGE]


# --- encoding by hand, from docs/trace-format.md ------------------------------------------

def header(version, description=b"hand"):
    fixed = struct.pack("<8sHHII", b"ZSWTRACE", version, 0, PAGE, len(description)) + description
    return fixed + struct.pack("<I", zlib.crc32(fixed))


def event(op, offset, image=NO_IMAGE, swap_type=0, ts=0):
    return struct.pack("<BBHIQQ", op, swap_type, 0, image, offset, ts)


def hand_trace(version, images, events, release):
    """One block holding `images`, `events` (bytes of 24 each) and `release`."""
    raw = b"".join(images) + b"".join(events) + struct.pack(f"<{len(release)}I", *release)
    payload = zstandard.ZstdCompressor().compress(raw)
    block = struct.pack("<4s5I", b"ZBLK", len(images), len(events), len(release),
                        len(payload), zlib.crc32(payload)) + payload
    counts = struct.pack("<QQ", len(events), len(images))
    return header(version) + block + b"ZEND" + counts + struct.pack("<I", zlib.crc32(counts))


def write_trace(path, *events):
    """A trace of (op name, offset, page or None) written with TraceWriter."""
    with TraceWriter(path) as writer:
        for op, offset, page in events:
            if op == "store":
                writer.store(0, offset, page)
            else:
                getattr(writer, op)(0, offset)
    return path


# --- the format ---------------------------------------------------------------------------

def test_round_trip_and_byte_layout(tmp_path):
    path = tmp_path / "t.trace"
    with TraceWriter(path, timestamps=True) as writer:
        writer.store(3, 9, TEXT, ts=10)
        writer.load(3, 9, ts=20)
        writer.drop_clean(3, 9, ts=30)
        writer.load(3, 9, ts=40)            # the slot still holds TEXT
    reader = TraceReader(path)
    assert reader.version == 2
    assert list(reader) == [(STORE, 3, 9, TEXT, 10), (LOAD, 3, 9, TEXT, 20),
                            (DROP_CLEAN, 3, 9, None, 30), (LOAD, 3, 9, TEXT, 40)]
    assert OP_NAMES[5] == "drop_clean"

    data = path.read_bytes()
    assert struct.unpack_from("<8sH", data) == (b"ZSWTRACE", 2)
    (length,) = struct.unpack_from("<I", data, 16)
    at = 20 + length + 4
    n_images, n_events, n_release, payload_length, _crc = struct.unpack_from("<5I", data, at + 4)
    assert (n_images, n_events, n_release) == (1, 4, 1)
    raw = zstandard.ZstdDecompressor().decompress(data[at + 24:at + 24 + payload_length])
    records = raw[PAGE:PAGE + 4 * 24]
    # op 5, swap type 3, reserved 0, image none, offset 9, timestamp 30
    assert records[48:72] == bytes([5, 3, 0, 0]) + b"\xff" * 4 + struct.pack("<QQ", 9, 30)


def test_a_version_1_trace_is_still_read(tmp_path):
    data = hand_trace(1, [TEXT], [event(STORE, 4, 0), event(LOAD, 4, 0),
                                  event(INVALIDATE_PAGE, 4)], [0])
    path = tmp_path / "v1.trace"
    path.write_bytes(data)
    reader = TraceReader(path)
    assert reader.version == 1
    assert list(reader) == [(STORE, 0, 4, TEXT, 0), (LOAD, 0, 4, TEXT, 0),
                            (INVALIDATE_PAGE, 0, 4, None, 0)]


def test_drop_clean_is_unknown_in_version_1_and_names_no_image(tmp_path):
    for version, drop, message in [(1, event(DROP_CLEAN, 4), "unknown op 5"),
                                   (2, event(DROP_CLEAN, 4, 0), "drop_clean naming an image")]:
        path = tmp_path / f"bad{version}.trace"
        path.write_bytes(hand_trace(version, [TEXT], [event(STORE, 4, 0), drop], [0]))
        with pytest.raises(TraceError, match=message):
            list(TraceReader(path))
    path = tmp_path / "v3.trace"
    path.write_bytes(hand_trace(3, [TEXT], [event(STORE, 4, 0)], [0]))
    with pytest.raises(TraceError, match="unsupported trace version 3"):
        TraceReader(path)


# --- what a replay makes of it ------------------------------------------------------------

def zswap(path, kernel, **settings):
    return replay(path, kernel=kernel, backend="zsmalloc", ram_pages=16384, **settings)


def test_nothing_under_6_1_a_store_again_under_6_12(tmp_path, replay_engine):
    dropped = write_trace(tmp_path / "d.trace", ("store", 7, TEXT), ("load", 7, None),
                          ("drop_clean", 7, None))
    kept = write_trace(tmp_path / "k.trace", ("store", 7, TEXT), ("load", 7, None))
    # 6.1: the load leaves the entry in zswap; the drop changes nothing.
    old = zswap(dropped, "6.1")
    timings = {name: old[name] for name in TIMING_FIELDS}
    assert old == {**zswap(kept, "6.1"), "trace": str(dropped), "events": 3, **timings}
    assert (old["zswpout"], old["stored_pages"]) == (1, 1)
    # 6.12: the load took the entry out (stored_pages 0); the drop stores it again.
    without, with_drop = zswap(kept, "6.12"), zswap(dropped, "6.12")
    assert (without["zswpout"], without["stored_pages"]) == (1, 0)
    assert (with_drop["zswpout"], with_drop["stored_pages"]) == (2, 1)
    assert with_drop["pswpout"] == 0 and with_drop["live_pages"] == 1
    # The page is back in the pool: the next load is a zswap hit, not the page in RAM.
    again = zswap(write_trace(tmp_path / "a.trace", ("store", 7, TEXT), ("load", 7, None),
                              ("drop_clean", 7, None), ("load", 7, None)), "6.12")
    assert (again["zswpin"], again["swapcache_hits"], again["stored_pages"]) == (2, 0, 0)


def test_a_page_read_from_the_device_or_the_zero_map_keeps_its_copy(tmp_path, replay_engine):
    # Under 6.12 a page that does not compress into one page is refused
    # (reject_compress_fail) and written to the swap device; a zero page
    # goes to the zero map.  Their loads leave those copies: a drop stores nothing.
    noise = random.Random(1).randbytes(PAGE)
    path = write_trace(tmp_path / "t.trace", ("store", 1, noise), ("store", 2, bytes(PAGE)),
                       ("load", 1, None), ("load", 2, None),
                       ("drop_clean", 1, None), ("drop_clean", 2, None))
    result = zswap(path, "6.12")
    assert (result["reject_compress_fail"], result["pswpout"], result["swpout_zero"]) == (1, 1, 1)
    assert (result["stores"], result["zswpout"], result["stored_pages"]) == (2, 0, 0)


def test_a_drop_of_an_empty_slot_is_an_inconsistent_trace(tmp_path, replay_engine):
    path = write_trace(tmp_path / "t.trace", ("store", 1, TEXT), ("drop_clean", 2, None))
    with pytest.raises(TraceError, match="event 2: drop_clean of type 0 offset 2, but nothing"):
        zswap(path, "6.12")
    with pytest.raises(TraceError, match="event 2: drop_clean of type 0 offset 2, but nothing"):
        zram_replay(Zram(1 << 20, kernel="6.12"), path)


def test_zram_treats_it_as_nothing(tmp_path):
    dropped = write_trace(tmp_path / "d.trace", ("store", 0, TEXT), ("store", 1, OTHER),
                          ("load", 0, None), ("drop_clean", 0, None), ("load", 0, None))
    kept = write_trace(tmp_path / "k.trace", ("store", 0, TEXT), ("store", 1, OTHER),
                       ("load", 0, None), ("load", 0, None))
    for kernel in ("6.1", "6.12"):
        devices = [Zram(1 << 20, kernel=kernel) for _ in range(2)]
        views = [zram_replay(device, path) for device, path in zip(devices, (dropped, kept))]
        assert views[0] == views[1]
        assert devices[0].stats == devices[1].stats
        assert devices[0].stats["pages_stored"] == 2


def test_an_old_trace_under_exclusive_loads_is_noted_once(tmp_path, capsys, replay_engine):
    path = tmp_path / "old.trace"
    path.write_bytes(hand_trace(1, [TEXT], [event(STORE, 4, 0), event(LOAD, 4, 0)], [0]))
    zswap(path, "6.1")
    assert capsys.readouterr().err == ""
    replay_lanes(path, [dict(kernel="6.12", backend="zsmalloc", ram_pages=16384),
                        dict(kernel="6.18", backend="zsmalloc", ram_pages=16384)])
    zswap(path, "6.12")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.count("zswapsim: note:") == 1
    assert "older than the drop_clean event: pages loaded and dropped again are not stored " \
           "again" in err
    assert "6.12, 6.18" in err
    # Nothing to say of an old trace without loads, or of a version 2 trace.
    stores_only = tmp_path / "stores.trace"
    stores_only.write_bytes(hand_trace(1, [TEXT], [event(STORE, 4, 0)], [0]))
    zswap(stores_only, "6.12")
    zswap(write_trace(tmp_path / "new.trace", ("store", 4, TEXT), ("load", 4, None)), "6.12")
    assert capsys.readouterr().err == ""


# --- where synth emits it -----------------------------------------------------------------

def ops(path):
    return [(OP_NAMES[op], offset, image) for op, _type, offset, image, _ts in TraceReader(path)]


def test_synth_emits_a_drop_where_a_loaded_page_is_evicted_clean(tmp_path):
    # One page of RAM.  write A; write B: A (dirty) to slot 0; read A: B
    # (dirty) to slot 1, A loaded from slot 0 and clean; write C: A is
    # reclaimed clean (drop_clean of slot 0), C is a first touch.
    path = tmp_path / "s.trace"
    stats = synthesize_from_accesses(path, [("write", "A", TEXT), ("write", "B", OTHER),
                                            ("read", "A", None), ("write", "C", TEXT)], 1)
    assert ops(path) == [("store", 0, TEXT), ("store", 1, OTHER), ("load", 0, TEXT),
                         ("drop_clean", 0, None)]
    assert (stats["stores"], stats["loads"], stats["clean_drops"]) == (2, 1, 1)
    # 6.1 stores A and B once; 6.12 took A out at the load and stores it again.
    assert [zswap(path, kernel)["zswpout"] for kernel in ("6.1", "6.12")] == [2, 3]
    assert zswap(path, "6.12")["stored_pages"] == 2


def test_synth_from_a_recording_emits_it(tmp_path):
    # Two pages, one page of RAM; snapshot 1 writes both, 2 reads A, 3 reads B.
    # A to slot 0; read A: B to slot 1, A loaded; read B: A dropped clean, B loaded.
    a, b = 0x1000, 0x2000
    recording = tmp_path / "r.rec"
    with RecordingWriter(recording) as writer:
        writer.snapshot(1, {a: TEXT, b: OTHER})
        writer.snapshot(2, {a: TEXT, b: OTHER}, accessed={a})
        writer.snapshot(3, {a: TEXT, b: OTHER}, accessed={b})
    path = tmp_path / "r.trace"
    with RecordingReader(recording) as reader:
        synthesize_from_accesses(path, accesses(reader), 1)
    assert ops(path) == [("store", 0, TEXT), ("store", 1, OTHER), ("load", 0, TEXT),
                         ("drop_clean", 0, None), ("load", 1, OTHER)]
