"""The trace format: round trips, block cutting and bounded memory, and the
rejection of every kind of malformed file the specification lists.

Malformed files are built with the small encoder below, written from
docs/trace-format.md rather than from zswapsim.trace.format, so the tests also
check that reader and writer agree with the document.
"""

import random
import struct
import threading
import time
import zlib

import numpy as np
import pytest
import zstandard

from zswapsim.errors import TraceError
from zswapsim.trace import (
    INVALIDATE_AREA,
    INVALIDATE_PAGE,
    LOAD,
    NO_IMAGE,
    STORE,
    TraceReader,
    TraceWriter,
)
from zswapsim.trace.format import _prefetched

PAGE = 4096
EVENT = np.dtype([("op", "u1"), ("swap_type", "u1"), ("reserved", "<u2"),
                  ("image", "<u4"), ("offset", "<u8"), ("ts", "<u8")])


def page(tag):
    """A distinct page image for every integer tag."""
    return struct.pack("<Q", tag) * (PAGE // 8)


# --- an encoder written from the specification -------------------------------------------

def encode_header(version=1, flags=0, page_size=PAGE, description=b"test", length=None):
    length = len(description) if length is None else length
    fixed = struct.pack("<8sHHII", b"ZSWTRACE", version, flags, page_size, length) + description
    return fixed + struct.pack("<I", zlib.crc32(fixed))


def encode_events(*rows):
    """rows: (op, swap_type, image, offset[, ts[, reserved]])."""
    records = np.zeros(len(rows), EVENT)
    for record, row in zip(records, rows):
        op, swap_type, image, offset, ts, reserved = (tuple(row) + (0, 0))[:6]
        record["op"], record["swap_type"], record["image"] = op, swap_type, image
        record["offset"], record["ts"], record["reserved"] = offset, ts, reserved
    return records


def encode_block(images=(), events=(), release=(), raw=None, payload=None, counts=None):
    """One block; `raw`, `payload` and `counts` override what would be derived."""
    events = encode_events(*events) if not isinstance(events, np.ndarray) else events
    release = np.asarray(release, "<u4")
    if raw is None:
        raw = b"".join(images) + events.tobytes() + release.tobytes()
    if payload is None:
        payload = zstandard.ZstdCompressor().compress(raw)
    n_images, n_events, n_release = counts or (len(images), len(events), len(release))
    return struct.pack("<4s5I", b"ZBLK", n_images, n_events, n_release, len(payload),
                       zlib.crc32(payload)) + payload


def encode_trailer(n_events, n_images):
    counts = struct.pack("<QQ", n_events, n_images)
    return b"ZEND" + counts + struct.pack("<I", zlib.crc32(counts))


def two_block_spec():
    """A valid trace: block 1 defines images 0, 1 and releases 0; block 2
    defines image 2 and releases 1 and 2."""
    return [
        dict(images=[page(10), page(11)],
             events=[(STORE, 0, 0, 0), (STORE, 0, 1, 1), (LOAD, 0, 0, 0)], release=[0]),
        dict(images=[page(12)],
             events=[(STORE, 0, 2, 2), (LOAD, 0, 1, 1), (INVALIDATE_PAGE, 0, NO_IMAGE, 1),
                     (LOAD, 0, NO_IMAGE, 1), (INVALIDATE_AREA, 0, NO_IMAGE, 0)],
             release=[1, 2]),
    ]


def encode_trace(blocks, header=None, trailer=None):
    body = b"".join(encode_block(**spec) for spec in blocks)
    if trailer is None:
        trailer = encode_trailer(sum(len(spec["events"]) for spec in blocks),
                                 sum(len(spec["images"]) for spec in blocks))
    return (header or encode_header()) + body + trailer


def decode_blocks(data):
    """(n_images, n_events, n_release, images, events, release) per block, plus trailer."""
    (length,) = struct.unpack_from("<I", data, 16)
    at = 24 + length
    blocks = []
    while data[at:at + 4] == b"ZBLK":
        n_images, n_events, n_release, payload_length, _ = struct.unpack_from("<5I", data, at + 4)
        raw = zstandard.ZstdDecompressor().decompress(data[at + 24:at + 24 + payload_length])
        images = [raw[i * PAGE:(i + 1) * PAGE] for i in range(n_images)]
        events = np.frombuffer(raw, EVENT, n_events, offset=n_images * PAGE)
        release = np.frombuffer(raw, "<u4", n_release, offset=n_images * PAGE + n_events * 24)
        blocks.append((n_images, n_events, n_release, images, events, release))
        at += 24 + payload_length
    return blocks, struct.unpack_from("<4sQQ", data, at)


def read_all(path, **kwargs):
    return list(TraceReader(path, **kwargs))


def write(tmp_path, data, name="t.trace"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- round trips -----------------------------------------------------------------------

def test_round_trip_of_hand_built_sequence(tmp_path):
    a, b, c = page(1), page(2), page(3)
    path = tmp_path / "hand.trace"
    with TraceWriter(path, description="hand built ✓", timestamps=True) as writer:
        writer.store(0, 5, a, ts=100)
        writer.store(0, 6, b, ts=110)
        writer.store(1, 5, a, ts=120)           # same content, another slot
        writer.load(0, 5, ts=130)               # expects a
        writer.load(0, 7, ts=140)               # never stored
        writer.store(0, 5, c, ts=150)           # overwrite
        writer.load(0, 5, ts=160)               # expects c
        writer.invalidate_page(0, 6, ts=170)
        writer.load(0, 6, ts=180)               # invalidated
        writer.invalidate_area(1, ts=190)
        writer.load(1, 5, ts=200)               # area invalidated
        writer.load(0, 5, ts=210)               # other area untouched: still c
    expected = [
        (STORE, 0, 5, a, 100), (STORE, 0, 6, b, 110), (STORE, 1, 5, a, 120),
        (LOAD, 0, 5, a, 130), (LOAD, 0, 7, None, 140), (STORE, 0, 5, c, 150),
        (LOAD, 0, 5, c, 160), (INVALIDATE_PAGE, 0, 6, None, 170), (LOAD, 0, 6, None, 180),
        (INVALIDATE_AREA, 1, 0, None, 190), (LOAD, 1, 5, None, 200), (LOAD, 0, 5, c, 210),
    ]
    reader = TraceReader(path)
    assert (reader.version, reader.page_size) == (2, PAGE)
    assert reader.description == "hand built ✓"
    assert reader.has_timestamps
    events = list(reader)
    assert events == expected
    assert events[0][3] is events[2][3] is events[3][3]      # one bytes object per image
    assert events[5][3] is events[6][3] is events[11][3]
    assert reader.images_defined == 3
    assert reader.live_images == 0
    assert list(reader) == expected                          # a reader can be iterated again

    # The bytes on disk follow the document: ids in first-reference order,
    # loads naming the expected image, everything released in the one block.
    data = path.read_bytes()
    description = "hand built ✓".encode()
    assert struct.unpack_from("<8sHHII", data) == (b"ZSWTRACE", 2, 1, PAGE, len(description))
    assert data[20:20 + len(description)] == description
    blocks, trailer = decode_blocks(data)
    assert len(blocks) == 1
    _, _, _, images, records, release = blocks[0]
    assert images == [a, b, c]
    assert records["image"].tolist() == [0, 1, 0, 0, NO_IMAGE, 2, 2, NO_IMAGE, NO_IMAGE,
                                         NO_IMAGE, NO_IMAGE, 2]
    assert records["reserved"].tolist() == [0] * 12
    assert sorted(release.tolist()) == [0, 1, 2]
    assert trailer == (b"ZEND", 12, 3)


def test_untimed_trace_and_empty_trace(tmp_path):
    path = tmp_path / "untimed.trace"
    with TraceWriter(path) as writer:
        writer.store(3, 2**50 - 1, page(1))
        writer.load(31, 0)
    reader = TraceReader(path)
    assert not reader.has_timestamps and reader.description == ""
    assert list(reader) == [(STORE, 3, 2**50 - 1, page(1), 0), (LOAD, 31, 0, None, 0)]

    empty = tmp_path / "empty.trace"
    TraceWriter(empty, description="nothing").close()
    assert read_all(empty) == []
    assert empty.stat().st_size == 20 + len("nothing") + 4 + 24


def test_writer_rejects_bad_calls(tmp_path):
    writer = TraceWriter(tmp_path / "w.trace")
    with pytest.raises(ValueError, match="4095 bytes"):
        writer.store(0, 0, b"x" * 4095)
    with pytest.raises(ValueError, match="swap type"):
        writer.store(32, 0, page(1))
    with pytest.raises(ValueError, match="offset"):
        writer.load(0, 2**50)
    with pytest.raises(ValueError, match="timestamp"):
        writer.invalidate_page(0, 0, ts=5)
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.invalidate_area(0)
    with pytest.raises(ValueError, match="page size"):
        TraceWriter(tmp_path / "x.trace", page_size=1000)


def test_writer_leaves_nothing_behind_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with TraceWriter(tmp_path / "w.trace") as writer:
            writer.store(0, 0, page(1))
            raise RuntimeError("recording failed")
    assert list(tmp_path.iterdir()) == []
    with TraceWriter(tmp_path / "w.trace") as writer:
        writer.store(0, 0, page(1))
    assert [p.name for p in tmp_path.iterdir()] == ["w.trace"]


def test_other_page_sizes_need_consent(tmp_path):
    path = tmp_path / "16k.trace"
    big = b"\x5a" * 16384
    with TraceWriter(path, page_size=16384) as writer:
        writer.store(0, 1, big)
        writer.load(0, 1)
    with pytest.raises(TraceError, match="page size 16384, expected 4096 at byte 12"):
        TraceReader(path)
    reader = TraceReader(path, expect_page_size=None)
    assert reader.page_size == 16384
    assert list(reader) == [(STORE, 0, 1, big, 0), (LOAD, 0, 1, big, 0)]


# --- block cutting and bounded memory ----------------------------------------------------

def record_workload(writer):
    """Drive `writer` through a workload spanning many blocks; return the
    events it must read back, computed from a model of the slots."""
    rng = random.Random(7)
    slots, expected = {}, []

    def store(swap_type, offset, content):
        writer.store(swap_type, offset, content)
        slots[swap_type, offset] = content
        expected.append((STORE, swap_type, offset, content, 0))

    def load(swap_type, offset):
        writer.load(swap_type, offset)
        expected.append((LOAD, swap_type, offset, slots.get((swap_type, offset)), 0))

    store(2, 0, page(0))                       # kept alive until the very end
    for i in range(3000):                      # 3000 new images in 3000 events
        store(0, i, page(i + 1))
    for i in range(3000):                      # each image's last reference
        load(0, i)
    for _ in range(12000):                     # short-lived images and a few old ones
        offset = rng.randrange(500)
        if rng.random() < 0.5:
            store(1, offset, page(10_000 + rng.randrange(20_000)))
        elif rng.random() < 0.8:
            load(1, offset)
        else:
            writer.invalidate_page(1, offset)
            slots.pop((1, offset), None)
            expected.append((INVALIDATE_PAGE, 1, offset, None, 0))
    writer.invalidate_area(0)
    for slot in [slot for slot in slots if slot[0] == 0]:
        del slots[slot]
    expected.append((INVALIDATE_AREA, 0, 0, None, 0))
    load(2, 0)
    return expected


def test_blocks_are_cut_and_images_released(tmp_path):
    path = tmp_path / "big.trace"
    with TraceWriter(path) as writer:
        expected = record_workload(writer)
    assert len(expected) > 2 * 8192

    blocks, trailer = decode_blocks(path.read_bytes())
    assert all(n_events <= 8192 and n_images <= 1024 for n_images, n_events, *_ in blocks)
    assert any(n_images == 1024 and n_events < 8192 for n_images, n_events, *_ in blocks)
    assert sum(n_events for _, n_events, *_ in blocks) == len(expected) == trailer[1]
    distinct = {event[3] for event in expected if event[3] is not None}
    assert sum(n_images for n_images, *_ in blocks) == len(distinct) == trailer[2]

    # An image must be held from its first reference's block to its last's.
    first, last = {}, {}
    for index, event in enumerate(expected):
        if event[3] is not None:
            first.setdefault(event[3], index)
            last[event[3]] = index
    boundaries = np.cumsum([0] + [n_events for _, n_events, *_ in blocks])
    block_of = np.searchsorted(boundaries, np.arange(len(expected)), side="right") - 1
    needed = [sum(1 for content in first
                  if first[content] < boundaries[b + 1] and last[content] >= boundaries[b])
              for b in range(len(blocks))]

    reader = TraceReader(path)
    for index, event in enumerate(reader):
        assert event == expected[index]
        assert reader.live_images == needed[block_of[index]]
    assert index == len(expected) - 1
    assert max(needed) < len(distinct)
    assert any(later < earlier for earlier, later in zip(needed, needed[1:]))
    assert reader.live_images == 0


def test_blocks_yields_arrays_and_live_images(tmp_path):
    data = encode_trace(two_block_spec())
    reader = TraceReader(write(tmp_path, data))
    (events1, images1), (events2, images2) = [(e.copy(), dict(i)) for e, i in reader.blocks()]
    assert events1["image"].tolist() == [0, 1, 0]
    assert images1 == {0: page(10), 1: page(11)}
    assert events2["op"].tolist() == [STORE, LOAD, INVALIDATE_PAGE, LOAD, INVALIDATE_AREA]
    assert images2 == {1: page(11), 2: page(12)}            # image 0 released after block 1


# --- malformed files -------------------------------------------------------------------

def test_hand_encoded_trace_is_valid(tmp_path):
    assert [event[:3] for event in read_all(write(tmp_path, encode_trace(two_block_spec())))] == [
        (STORE, 0, 0), (STORE, 0, 1), (LOAD, 0, 0), (STORE, 0, 2), (LOAD, 0, 1),
        (INVALIDATE_PAGE, 0, 1), (LOAD, 0, 1), (INVALIDATE_AREA, 0, 0)]


def patched(data, offset, new):
    return data[:offset] + new + data[offset + len(new):]


@pytest.mark.parametrize("header, message, offset", [
    (patched(encode_header(), 0, b"ZSWTRACX"), "bad magic", 0),
    (encode_header(version=3), "unsupported trace version 3", 8),
    (encode_header(flags=2), "unknown header flags 0x2", 10),
    (encode_header(page_size=8192), "invalid page size 8192", 12),
    (encode_header(page_size=16384), "page size 16384, expected 4096", 12),
    (encode_header(length=65537, description=b""), "description length 65537", 16),
    (patched(encode_header(), 20, b"T"), "header CRC mismatch", 24),
    (encode_header(description=b"\xff\xfe"), "not valid UTF-8", 20),
])
def test_bad_header(tmp_path, header, message, offset):
    data = header + encode_trailer(0, 0)
    with pytest.raises(TraceError, match=message) as caught:
        read_all(write(tmp_path, data))
    assert caught.value.offset == offset


def test_bad_block_and_trailer_framing(tmp_path):
    base = encode_trace(two_block_spec())
    first_block = len(encode_header())
    second_block = first_block + len(encode_block(**two_block_spec()[0]))
    trailer = len(base) - 24

    def rejects(data, message, offset):
        with pytest.raises(TraceError, match=message) as caught:
            read_all(write(tmp_path, data))
        assert caught.value.offset == offset

    rejects(patched(base, second_block, b"ZBLX"), "bad block magic", second_block)
    rejects(base[:trailer], "no trailer", trailer)
    rejects(base + b"\0", "bytes after the trailer", len(base))
    rejects(patched(base, trailer + 5, b"\x07"), "trailer CRC mismatch", trailer + 20)
    rejects(base[:trailer] + encode_trailer(9, 3), "trailer counts 9 events, trace has 8",
            trailer + 4)
    rejects(base[:trailer] + encode_trailer(8, 4), "trailer counts 4 images, trace has 3",
            trailer + 12)
    payload_byte = second_block + 24 + 3
    rejects(patched(base, payload_byte, bytes([base[payload_byte] ^ 0x40])),
            "block payload CRC mismatch", second_block + 24)


@pytest.mark.parametrize("field, value, message", [
    (4, 65537, "defines 65537 images"),
    (8, (1 << 20) + 1, "holds 1048577 events"),
    (12, (1 << 20) + 1, "releases 1048577 images"),
    (16, 2 * PAGE + 3 * 24 + 4 + 65536 + 1, "payload length 73805 too large"),
])
def test_block_counts_beyond_limits(tmp_path, field, value, message):
    data = encode_trace(two_block_spec())
    block = len(encode_header())
    data = patched(data, block + field, struct.pack("<I", value))
    with pytest.raises(TraceError, match=message) as caught:
        read_all(write(tmp_path, data))
    assert caught.value.offset == block + field


def spec_with(block_index, **changes):
    spec = two_block_spec()
    spec[block_index].update(changes)
    return spec


def second_block_events(*replacement):
    return spec_with(1, events=[(STORE, 0, 2, 2)] + list(replacement))


def hostile_frame(declared_size):
    """A zstd frame whose header claims `declared_size` bytes but holds none."""
    frame_header = b"\x28\xb5\x2f\xfd" + bytes([0xE0]) + struct.pack("<Q", declared_size)
    return frame_header + b"\x01\x00\x00"      # one empty raw block, the last


def unsized_frame(raw):
    """A zstd frame that does not declare its content size."""
    return zstandard.ZstdCompressor(write_content_size=False).compress(raw)


FIRST_RAW = b"".join([page(10), page(11)]) + encode_events(
    (STORE, 0, 0, 0), (STORE, 0, 1, 1), (LOAD, 0, 0, 0)).tobytes() + struct.pack("<I", 0)


@pytest.mark.parametrize("spec, message, where", [
    (spec_with(0, raw=FIRST_RAW + b"!"), "payload declares 8269 bytes, expected 8268", "payload0"),
    (spec_with(0, raw=FIRST_RAW[:-1]), "payload declares 8267 bytes, expected 8268", "payload0"),
    (spec_with(0, payload=unsized_frame(FIRST_RAW[:-1])),
     "decompresses to 8267 bytes, expected 8268", "payload0"),
    (spec_with(0, payload=unsized_frame(FIRST_RAW + b"!")), "corrupt block payload", "payload0"),
    (spec_with(0, payload=b"this is not zstd"), "corrupt block payload", "payload0"),
    (spec_with(0, payload=hostile_frame(1 << 40)),
     f"payload declares {1 << 40} bytes, expected 8268", "payload0"),
    (spec_with(0, payload=unsized_frame(bytes(1 << 20))), "corrupt block payload", "payload0"),
    (spec_with(0, payload=zstandard.ZstdCompressor().compress(FIRST_RAW) * 2),
     "corrupt block payload", "payload0"),
    (second_block_events((0, 0, NO_IMAGE, 0)), "unknown op 0 in event 1 of the block", "block1"),
    (second_block_events((5, 0, NO_IMAGE, 0)), "unknown op 5 in event 1", "block1"),
    (second_block_events((LOAD, 32, 2, 2)), "swap type 32 out of range in event 1", "block1"),
    (second_block_events((LOAD, 0, 2, 2**50)), f"offset {2**50} out of range", "block1"),
    (second_block_events((LOAD, 0, 2, 2, 0, 1)), "nonzero reserved field", "block1"),
    (second_block_events((INVALIDATE_AREA, 0, NO_IMAGE, 3)), "invalidate_area with a nonzero",
     "block1"),
    (second_block_events((STORE, 0, NO_IMAGE, 3)), "store without an image", "block1"),
    (second_block_events((INVALIDATE_PAGE, 0, 2, 2)), "invalidate_page naming an image",
     "block1"),
    (second_block_events((INVALIDATE_AREA, 0, 1, 0)), "invalidate_area naming an image",
     "block1"),
    (second_block_events((LOAD, 0, 3, 2)), "image 3 not yet defined", "block1"),
    (second_block_events((LOAD, 0, 0, 0)), "image 0 already released in event 1", "block1"),
    (second_block_events((LOAD, 0, 2, 2, 99)), "timestamp in a trace without timestamps",
     "block1"),
    (spec_with(0, release=[5]), "release of undefined image 5", "block0"),
    (spec_with(1, release=[1, 2, 1]), "release of already released image 1", "block1"),
    (spec_with(1, release=[0, 1, 2]), "release of already released image 0", "block1"),
])
def test_bad_block_content(tmp_path, spec, message, where):
    block0 = len(encode_header())
    block1 = block0 + len(encode_block(**two_block_spec()[0]))
    with pytest.raises(TraceError, match=message) as caught:
        read_all(write(tmp_path, encode_trace(spec)))
    assert caught.value.offset == {"payload0": block0 + 24, "block0": block0,
                                   "block1": block1}[where]


def test_timestamps_allowed_with_the_flag(tmp_path):
    data = encode_trace(second_block_events((LOAD, 0, 2, 2, 99)), header=encode_header(flags=1))
    assert read_all(write(tmp_path, data)) == [
        (STORE, 0, 0, page(10), 0), (STORE, 0, 1, page(11), 0), (LOAD, 0, 0, page(10), 0),
        (STORE, 0, 2, page(12), 0), (LOAD, 0, 2, page(12), 99)]


def test_nothing_is_handed_out_from_a_bad_block(tmp_path):
    data = encode_trace(second_block_events((LOAD, 0, 2, 2), (9, 0, NO_IMAGE, 0)))
    seen = []
    with pytest.raises(TraceError, match="unknown op 9"):
        for event in TraceReader(write(tmp_path, data)):
            seen.append(event)
    assert len(seen) == 3          # the first block only


# --- truncation and fuzzing ----------------------------------------------------------

def sample_traces(tmp_path):
    path = tmp_path / "sample.trace"
    with TraceWriter(path, description="sample", timestamps=True) as writer:
        writer.store(0, 1, page(1), ts=1)
        writer.store(0, 2, page(2), ts=2)
        writer.load(0, 1, ts=3)
        writer.drop_clean(0, 1, ts=4)
        writer.invalidate_page(0, 2, ts=4)
        writer.invalidate_area(0, ts=5)
    return [path.read_bytes(), encode_trace(two_block_spec())]


def test_every_truncation_is_a_trace_error(tmp_path):
    for data in sample_traces(tmp_path):
        read_all(write(tmp_path, data))
        for cut in range(len(data)):
            with pytest.raises(TraceError):
                read_all(write(tmp_path, data[:cut], "cut.trace"))


def check_only_trace_errors(tmp_path, data):
    path = write(tmp_path, data, "fuzz.trace")
    try:
        read_all(path)
        return True
    except TraceError:
        return False


def test_random_byte_mutations_raise_only_trace_errors(tmp_path):
    originals = sample_traces(tmp_path)
    rng = random.Random(2024)
    for _ in range(300):
        data = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            kind = rng.randrange(4)
            if kind == 0:
                data[at] ^= 1 << rng.randrange(8)
            elif kind == 1:
                data[at] = rng.randrange(256)
            elif kind == 2:
                del data[at:at + rng.randint(1, 16)]
            else:
                data[at:at] = rng.randbytes(rng.randint(1, 16))
        check_only_trace_errors(tmp_path, bytes(data))


def test_random_payload_mutations_raise_only_trace_errors(tmp_path):
    """Mutate decoded block contents and re-encode them with valid CRCs, so
    the checks behind the checksums are exercised too."""
    rng = random.Random(99)
    survivors = 0
    for _ in range(300):
        spec = two_block_spec()
        target = rng.choice(spec)
        raw = bytearray(b"".join(target["images"]) + encode_events(*target["events"]).tobytes()
                        + np.asarray(target["release"], "<u4").tobytes())
        for _ in range(rng.randint(1, 3)):
            # Aim at the events and release list, where the meaning lives.
            at = rng.randrange(len(target["images"]) * PAGE, len(raw))
            raw[at] = rng.choice([0, 1, 2, 3, 4, 5, 31, 32, 0xFF, rng.randrange(256)])
        target["raw"] = bytes(raw)
        survivors += check_only_trace_errors(tmp_path, encode_trace(spec))
    assert survivors < 300


# --- the decoding thread -------------------------------------------------------------

def prefetch_threads():
    return [thread for thread in threading.enumerate() if thread.name == "trace-prefetch"]


def test_stopping_early_ends_the_decoding_thread(tmp_path):
    path = write(tmp_path, encode_trace(two_block_spec()))
    events = iter(TraceReader(path))
    next(events)
    assert len(prefetch_threads()) == 1
    events.close()
    assert prefetch_threads() == []


def test_an_error_in_the_consumer_ends_the_decoding_thread(tmp_path):
    path = write(tmp_path, encode_trace(two_block_spec()))
    with pytest.raises(ZeroDivisionError):
        for _ in TraceReader(path):
            1 / 0
    assert prefetch_threads() == []


def test_the_decoding_thread_works_one_item_ahead():
    produced = []

    def items():
        for n in range(10):
            produced.append(n)
            yield n

    handed = _prefetched(items())
    assert next(handed) == 0
    time.sleep(0.2)                  # ample time to run ahead, were it allowed to
    assert produced == [0, 1]        # the one in use and the one decoded ahead
    assert list(handed) == list(range(1, 10))
    assert prefetch_threads() == []


def test_work_ahead_sees_each_blocks_new_images_in_order(tmp_path):
    path = write(tmp_path, encode_trace(two_block_spec()))
    reader = TraceReader(path)
    seen = []
    workers = set()

    def ahead(new):
        workers.add(threading.current_thread().name)
        return [bytes(image) for image in new]

    for block in reader.blocks(ahead=ahead):
        first, done = block.first_image, block.ahead
        seen.append((first, done))
        assert [block.images[first + index] for index in range(len(done))] == done
    # Block 1 brings images 0 and 1, block 2 image 2 (two_block_spec).
    assert seen == [(0, [page(10), page(11)]), (2, [page(12)])]
    assert workers == {"trace-prefetch"}                 # off the consumer's thread


def test_an_error_in_the_work_ahead_reaches_the_consumer_and_ends_both_threads(tmp_path):
    path = write(tmp_path, encode_trace(two_block_spec()))
    reader = TraceReader(path)

    def ahead(new):
        if new[0] == page(12):
            raise ValueError("ahead failed on block 2")
        return None

    blocks = reader.blocks(ahead=ahead)
    next(blocks)
    with pytest.raises(ValueError, match="block 2"):
        next(blocks)
    assert prefetch_threads() == []


def test_stopping_early_ends_the_work_ahead_thread_too(tmp_path):
    path = write(tmp_path, encode_trace(two_block_spec()))
    blocks = TraceReader(path).blocks(ahead=len)
    next(blocks)
    blocks.close()
    assert prefetch_threads() == []
