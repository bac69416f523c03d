"""Fuzzing the trace and recording readers, which promise to turn any
damaged or hostile file into a TraceError and never into a crash or a huge
allocation (docs/trace-format.md, docs/recording-format.md).

Small real files (pages of traces/python-heap.trace and a window of
traces/postgres-pgbench.trace, written with TraceWriter and RecordingWriter
in several blocks) are mutated thousands of times with a seeded random
mutator: bit flips, boundary values in bytes and in 16-, 32- and 64-bit
fields, truncation, deleted, duplicated and inserted ranges, whole blocks
deleted, duplicated, swapped or spliced in from another file, and, so the
checks behind the checksums are reached too, CRCs repaired after the damage
and block payloads mutated under a valid zstd frame.  Every mutant is read to
the end (TraceReader: event_count, iteration and blocks(); RecordingReader:
every snapshot and every page image accesses() hands out); only TraceError
may escape.  Any other exception fails the test with a reproducer: the
mutant is saved to a file and the message says how to read it again.
Separately, sizes claimed beyond the limits are rejected without allocating.

ZSWAPSIM_FUZZ_EXAMPLES (default 5000; recordings get half) and
ZSWAPSIM_FUZZ_SEED choose the run; docs/fuzzing.md has the details.
"""

import os
import random
import re
import struct
import time
import tracemalloc
import traceback
import zlib
from collections import namedtuple
from pathlib import Path

import pytest
import zstandard

from zswapsim.errors import TraceError
from zswapsim.trace import TraceReader, TraceWriter
from zswapsim.trace import format as trace_format
from zswapsim.trace import recording as recording_format
from zswapsim.trace.recording import RecordingReader, RecordingWriter, accesses

TRACES = Path(__file__).resolve().parent.parent / "traces"
SEED = int(os.environ.get("ZSWAPSIM_FUZZ_SEED", "20261122"))
EXAMPLES = int(os.environ.get("ZSWAPSIM_FUZZ_EXAMPLES", "5000"))
PAGE = 4096

U16, U32, U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")
BOUNDARY_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE)
BOUNDARY_INTS = (0, 1, 2, 3, 4, 5, 31, 32, 4095, 4096, 16384, 65535, 65536, 65537,
                 2**20, 2**20 + 1, 2**28, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40, 2**50 - 1,
                 2**50, 2**63, 2**64 - 1)


# -- the base files ---------------------------------------------------------

@pytest.fixture(scope="module")
def pages():
    """Twelve distinct pages of a real process's heap, from all over it."""
    found = {}
    for _, _, _, image, _ in TraceReader(TRACES / "python-heap.trace"):
        found[image] = None
        if len(found) == 12 * 97:
            return list(found)[::97]
    raise AssertionError("python-heap.trace has fewer distinct pages than expected")


@pytest.fixture(scope="module")
def trace_bases(pages, tmp_path_factory):
    """name -> bytes of the traces to mutate."""
    directory = tmp_path_factory.mktemp("trace-bases")
    bases = {}
    # Every op, two swap types, timestamps, and blocks of at most 3 images
    # and 6 events, so the file has six blocks and release lists that span them.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trace_format, "WRITER_BLOCK_IMAGES", 3)
        patch.setattr(trace_format, "WRITER_BLOCK_EVENTS", 6)
        with TraceWriter(directory / "blocks.trace", "fuzz base", timestamps=True) as writer:
            for i, page in enumerate(pages[:8]):
                writer.store(i % 2, 100 + i, page, ts=10 * i)
            writer.store(0, 7, pages[0], ts=90)            # the same image at another slot
            for i in range(10):
                writer.load(i % 2, 100 + i, ts=100 + i)     # hits, then two never stored
            writer.invalidate_page(0, 100, ts=120)
            writer.load(0, 100, ts=121)
            writer.drop_clean(0, 102, ts=122)               # loaded above, left RAM clean
            writer.store(1, 2**50 - 1, pages[8], ts=130)
            writer.invalidate_area(1, ts=140)
            writer.load(1, 101, ts=141)
            writer.store(0, 104, pages[9], ts=150)          # overwrite
            writer.load(0, 104, ts=151)
    # A window of a real workload, stores, loads and invalidates, in one block.
    with TraceWriter(directory / "window.trace", "postgres window") as writer:
        for index, (op, swap_type, offset, image, _) in enumerate(
                TraceReader(TRACES / "postgres-pgbench.trace")):
            if index >= 2290 + 48:
                break
            if index >= 2290:
                if op == trace_format.STORE:
                    writer.store(swap_type, offset, image)
                elif op == trace_format.LOAD:
                    writer.load(swap_type, offset)
                else:
                    writer.invalidate_page(swap_type, offset)
    TraceWriter(directory / "empty.trace", "nothing").close()
    for path in directory.iterdir():
        bases[path.stem] = path.read_bytes()
        list(TraceReader(path))                            # valid to begin with
    assert len(trace_spans(bases["blocks"])) >= 2 + 4
    return bases


@pytest.fixture(scope="module")
def recording_bases(pages, tmp_path_factory):
    """name -> bytes of the recordings to mutate: image blocks of at most 3
    images between the snapshots, pages appearing, changing and vanishing,
    snapshots with and without read information."""
    directory = tmp_path_factory.mktemp("recording-bases")
    path = directory / "small.rec"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recording_format, "WRITER_BLOCK_IMAGES", 3)
        with RecordingWriter(path, "fuzz base", pid=42, command=["python", "job.py"]) as writer:
            base = 0x7F0000000000
            snapshot = {base + i * PAGE: pages[i] for i in range(5)}
            writer.snapshot(0, snapshot)
            snapshot[base] = pages[5]                                       # changed
            snapshot[base + 9 * PAGE] = pages[6]                            # new
            del snapshot[base + 2 * PAGE]                                   # gone
            writer.snapshot(1_000, snapshot, written={base + PAGE},
                            accessed={base + 3 * PAGE, base + 4 * PAGE})
            writer.snapshot(2_000, snapshot, accessed=set())
            snapshot.update({base + (20 + i) * PAGE: page for i, page in enumerate(pages[7:])})
            writer.snapshot(2_000, snapshot, accessed={base + 4 * PAGE})
    data = path.read_bytes()
    read_recording(path)
    assert len(recording_spans(data)) >= 8
    return {"small": data}


# -- reading a file to the end ------------------------------------------------

def read_trace(path):
    """All a caller can ask of a trace, whatever its page size; then the
    check of the page size replay needs."""
    reader = TraceReader(path, expect_page_size=None)
    reader.event_count()
    for _ in reader:
        pass
    for events, images in reader.blocks():
        events["op"].sum()
        sum(map(len, images.values()))
    TraceReader(path)


def read_recording(path):
    with RecordingReader(path) as reader:
        for _, _, content in accesses(reader):
            if content is not None:
                content()


# -- the file layouts, read leniently -------------------------------------------

def trace_spans(data):
    """(start, end, kind) of the header, each block and the trailer, as far
    as the length fields make sense."""
    at = 24 + U32.unpack_from(data, 16)[0] if len(data) >= 24 else len(data) + 1
    if at > len(data):
        return []
    spans = [(0, at, b"HEAD")]
    while at + 24 <= len(data) and data[at:at + 4] in (b"ZBLK", b"ZEND"):
        kind = bytes(data[at:at + 4])
        end = at + 24 + (U32.unpack_from(data, at + 16)[0] if kind == b"ZBLK" else 0)
        if end > len(data):
            break
        spans.append((at, end, kind))
        at = end
    return spans


def repair_trace_crcs(data):
    """Make every CRC the spans reach right again, so damage gets past them."""
    for start, end, kind in trace_spans(data):
        if kind == b"HEAD":
            data[end - 4:end] = U32.pack(zlib.crc32(data[:end - 4]))
        elif kind == b"ZBLK":
            data[start + 20:start + 24] = U32.pack(zlib.crc32(data[start + 24:end]))
        else:
            data[start + 20:start + 24] = U32.pack(zlib.crc32(data[start + 4:start + 20]))


def recording_spans(data):
    if len(data) < 32:
        return []
    end = 32 + U32.unpack_from(data, 20)[0] + U32.unpack_from(data, 24)[0]
    if end > len(data):
        return []
    spans, at = [(0, end, b"HEAD")], end
    while at + 24 <= len(data) and data[at:at + 4] in (b"RIMG", b"RSNP", b"REND"):
        kind = bytes(data[at:at + 4])
        if kind == b"RIMG":
            n_images, frames = struct.unpack_from("<II", data, at + 4)
            end = at + 16 + 20 * n_images + frames
        elif kind == b"RSNP":
            end = at + 36 + (U32.unpack_from(data, at + 24)[0] if at + 36 <= len(data) else 0)
        else:
            end = at + 24
        if end > len(data):
            break
        spans.append((at, end, kind))
        at = end
    return spans


def repair_recording_crcs(data):
    for start, end, kind in recording_spans(data):
        if kind == b"HEAD":
            data[end - 4:end] = U32.pack(zlib.crc32(data[:end - 4]))
        elif kind == b"RIMG":
            directory_end = start + 16 + 20 * U32.unpack_from(data, start + 4)[0]
            data[start + 12:start + 16] = U32.pack(
                zlib.crc32(data[start:start + 12] + data[start + 16:directory_end]))
        elif kind == b"RSNP":
            data[start + 28:start + 32] = U32.pack(zlib.crc32(data[start + 36:end]))
            data[start + 32:start + 36] = U32.pack(zlib.crc32(data[start:start + 32]))
        else:
            data[start + 20:start + 24] = U32.pack(zlib.crc32(data[start + 4:start + 20]))


# -- mutations -------------------------------------------------------------------

def mutate_bytes(rng, data):
    """One damage to a bytearray, in place; returns what it did."""
    if not data:
        data += rng.randbytes(rng.randint(1, 32))
        return "filled an empty file"
    at = rng.randrange(len(data))
    kind = rng.randrange(9)
    if kind == 0:
        bit = rng.randrange(8)
        data[at] ^= 1 << bit
        return f"flipped bit {bit} at {at}"
    if kind == 1:
        data[at] = rng.choice(BOUNDARY_BYTES)
        return f"set byte {at} to {data[at]:#x}"
    if kind == 2:
        field = rng.choice((U16, U32, U32, U64))
        at = max(0, min(at, len(data) - field.size))
        value = rng.choice(BOUNDARY_INTS) & ((1 << 8 * field.size) - 1)
        data[at:at + field.size] = field.pack(value)[:len(data) - at]
        return f"wrote {value} as a {field.size}-byte field at {at}"
    if kind == 3:
        del data[at:]
        return f"truncated at {at}"
    if kind == 4:
        length = rng.choice((1, 2, 4, 8, rng.randint(1, 256)))
        del data[at:at + length]
        return f"deleted {length} bytes at {at}"
    if kind == 5:
        source, length = rng.randrange(len(data)), rng.choice((4, 8, 24, rng.randint(1, 512)))
        data[at:at] = data[source:source + length]
        return f"copied {length} bytes from {source} to {at}"
    if kind == 6:
        length = rng.randint(1, 16)
        data[at:at] = rng.randbytes(length)
        return f"inserted {length} random bytes at {at}"
    if kind == 7:
        length = rng.randint(1, 16)
        data[at:at + length] = rng.randbytes(length)
        return f"overwrote {length} bytes at {at} with random ones"
    data[at:at + 4] = rng.choice((b"ZBLK", b"ZEND", b"RIMG", b"RSNP", b"REND"))
    return f"wrote a block magic at {at}"


def mutate_field(rng, data, layout):
    """Write a boundary value into a header field of the header, a block or
    the trailer: the counts, lengths and flags a reader must distrust."""
    spans = [span for span in layout.spans(data) if layout.fields.get(span[2])]
    if not spans:
        return mutate_bytes(rng, data)
    start, end, kind = rng.choice(spans)
    offset, field = rng.choice(layout.fields[kind])
    if offset < 0:                                  # a directory entry's length
        entries = U32.unpack_from(data, start + 4)[0]
        if not entries:
            return mutate_bytes(rng, data)
        offset = 16 + 20 * rng.randrange(entries) + 16
    value = rng.choice(BOUNDARY_INTS) & ((1 << 8 * field.size) - 1)
    field.pack_into(data, start + offset, value)
    return f"set the {kind.decode()} field at {start + offset} to {value}"


def mutate_blocks(rng, data, layout, donors):
    """Delete, duplicate, swap or splice in whole blocks (the trailer counts
    as one)."""
    blocks = [(start, end) for start, end, kind in layout.spans(data) if kind != b"HEAD"]
    if not blocks:
        return mutate_bytes(rng, data)
    start, end = rng.choice(blocks)
    kind = rng.randrange(4)
    if kind == 0:
        del data[start:end]
        return f"deleted the block at {start}"
    if kind == 1:
        data[end:end] = data[start:end]
        return f"duplicated the block at {start}"
    if kind == 2 and len(blocks) > 1:
        (start, end), (other_start, other_end) = sorted(rng.sample(blocks, 2))
        data[start:other_end] = (data[other_start:other_end] + data[end:other_start]
                                 + data[start:end])
        return f"swapped the blocks at {start} and {other_start}"
    name, donor = rng.choice(donors)
    donor_blocks = [(s, e) for s, e, k in layout.spans(donor) if k != b"HEAD"]
    if not donor_blocks:
        return mutate_bytes(rng, data)
    donor_start, donor_end = rng.choice(donor_blocks)
    at = rng.choice((start, end))
    data[at:at] = donor[donor_start:donor_end]
    return f"spliced in {name}'s block at {donor_start} at {at}"


# Each field of an event record, with the values its rules turn on.
EVENT_FIELDS = [
    (0, struct.Struct("B"), (0, 1, 2, 3, 4, 5, 255)),                          # op
    (1, struct.Struct("B"), (0, 1, 31, 32, 255)),                              # swap_type
    (2, U16, (1, 0x8000, 0xFFFF)),                                             # reserved
    (4, U32, (0, 1, 2, 5, 8, 11, 12, 2**31, 0xFFFFFFFE, 0xFFFFFFFF)),          # image
    (8, U64, (0, 1, 100, 2**50 - 1, 2**50, 2**63, 2**64 - 1)),                 # offset
    (16, U64, (0, 1, 2**64 - 1)),                                              # timestamp
]


def mutate_trace_payload(rng, data):
    """Rewrite one block around a damaged payload: fields of its events and
    release list or its counts changed, maybe bytes of the raw payload
    damaged, compressed again into a valid zstd frame (its size declared or
    not) with a right CRC."""
    blocks = [(start, end) for start, end, kind in trace_spans(data) if kind == b"ZBLK"]
    if not blocks:
        return mutate_bytes(rng, data)
    start, end = rng.choice(blocks)
    n_images, n_events, n_release = struct.unpack_from("<3I", data, start + 4)
    raw = bytearray(zstandard.ZstdDecompressor().decompress(data[start + 24:end]))
    events_at = n_images * PAGE
    done = []
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(4)
        if choice <= 1 and n_events:
            record = events_at + 24 * rng.randrange(n_events)
            offset, field, values = rng.choice(EVENT_FIELDS)
            value = rng.choice(values)
            field.pack_into(raw, record + offset, value)
            done.append(f"event field at raw {record + offset} := {value}")
        elif choice == 2 and n_release:
            entry = events_at + 24 * n_events + 4 * rng.randrange(n_release)
            value = rng.choice((0, 1, 2, 3, 5, 8, 2**32 - 1, rng.randrange(16)))
            U32.pack_into(raw, entry, value)
            done.append(f"release entry at raw {entry} := {value}")
        else:
            index = rng.randrange(3)
            counts = list(struct.unpack_from("<3I", data, start + 4))
            counts[index] = max(0, counts[index] + rng.choice((-1, 1, 2)))
            struct.pack_into("<3I", data, start + 4, *counts)
            done.append(f"block counts := {counts}")
    if rng.random() < 0.3:
        done.append(mutate_bytes(rng, raw) + " in the raw payload")
    sized = rng.random() < 0.7
    payload = zstandard.ZstdCompressor(write_content_size=sized).compress(bytes(raw))
    data[start + 16:end] = U32.pack(len(payload)) + U32.pack(zlib.crc32(payload)) + payload
    return f"payload of the block at {start}: {'; '.join(done)}" + ("" if sized else " (unsized)")


def mutate_recording_table(rng, data):
    """Rewrite one snapshot around a damaged table (addresses, image ids,
    written and accessed lists), compressed again, with right CRCs."""
    snapshots = [(start, end) for start, end, kind in recording_spans(data) if kind == b"RSNP"]
    if not snapshots:
        return mutate_bytes(rng, data)
    start, end = rng.choice(snapshots)
    raw = bytearray(zstandard.ZstdDecompressor().decompress(data[start + 36:end]))
    done = []
    for _ in range(rng.randint(1, 3) if len(raw) >= 8 else 0):
        field = rng.choice((U32, U64))
        at = rng.randrange(0, len(raw) - field.size + 1, 4)
        value = rng.choice(BOUNDARY_INTS + (PAGE * rng.randrange(64), rng.randrange(16)))
        value &= (1 << 8 * field.size) - 1
        field.pack_into(raw, at, value)
        done.append(f"table field at raw {at} := {value}")
    if not done or rng.random() < 0.3:
        done.append(mutate_bytes(rng, raw) + " in the raw table")
    payload = zstandard.ZstdCompressor(write_content_size=rng.random() < 0.7).compress(bytes(raw))
    data[start + 24:end] = (U32.pack(len(payload)) + U32.pack(zlib.crc32(payload)) + bytes(4)
                            + payload)
    data[start + 32:start + 36] = U32.pack(zlib.crc32(data[start:start + 32]))
    return f"table of the snapshot at {start}: {'; '.join(done)}"


Layout = namedtuple("Layout", "spans repair payload fields")
TRACE = Layout(trace_spans, repair_trace_crcs, mutate_trace_payload, {
    b"HEAD": [(8, U16), (10, U16), (12, U32), (16, U32)],
    b"ZBLK": [(4, U32), (8, U32), (12, U32), (16, U32)],
    b"ZEND": [(4, U64), (12, U64)]})
RECORDING = Layout(recording_spans, repair_recording_crcs, mutate_recording_table, {
    b"HEAD": [(8, U16), (10, U16), (12, U32), (20, U32), (24, U32)],
    b"RIMG": [(4, U32), (8, U32), (-1, U32)],
    b"RSNP": [(4, U64), (12, U32), (16, U32), (20, U32), (24, U32)],
    b"REND": [(4, U64), (12, U64)]})


def make_mutant(rng, base, layout, donors):
    """A mutant of `base` and the list of what was done to it."""
    data = bytearray(base)
    done = []
    if rng.random() < 0.3:
        done.append(layout.payload(rng, data))
    for _ in range(rng.choice((0, 1, 1, 1, 2, 3)) if done else rng.randint(1, 3)):
        choice = rng.random()
        if choice < 0.15:
            done.append(mutate_blocks(rng, data, layout, donors))
        elif choice < 0.4:
            done.append(mutate_field(rng, data, layout))
        else:
            done.append(mutate_bytes(rng, data))
    if rng.random() < 0.5:
        layout.repair(data)
        done.append("CRCs repaired")
    return bytes(data), done


# -- the fuzz loop ------------------------------------------------------------------

def fuzz(tmp_path, bases, layout, read, examples):
    """Read `examples` mutants; returns the outcome counts and fails with
    reproducers if anything but TraceError escaped."""
    donors = sorted(bases.items())
    path = tmp_path / "mutant"
    outcomes, failures, slowest = {"read": 0}, [], (0.0, None)
    started = time.perf_counter()
    for index in range(examples):
        rng = random.Random(f"{SEED}:{read.__name__}:{index}")
        name = rng.choice(sorted(bases))
        mutant, done = make_mutant(rng, bases[name], layout, donors)
        path.write_bytes(mutant)
        began = time.perf_counter()
        try:
            read(path)
            outcomes["read"] += 1
        except TraceError as error:
            kind = re.sub(r"0x[0-9a-f]+|b'.*?'|b\".*?\"|\(.*\)|[0-9]+", "N", str(error))
            outcomes[kind] = outcomes.get(kind, 0) + 1
        except Exception as error:     # noqa: BLE001 (anything else is the bug we look for)
            saved = tmp_path / f"failure-{index}"
            saved.write_bytes(mutant)
            where = traceback.extract_tb(error.__traceback__)[-1]
            failures.append(
                f"mutant {index} (ZSWAPSIM_FUZZ_SEED={SEED}) of {name!r}: {'; '.join(done)}\n"
                f"  {type(error).__name__}: {error}\n  at {where.filename}:{where.lineno}\n"
                f"  saved as {saved}; reproduce with\n"
                f"  python -c \"import sys; from tests.test_fuzz import {read.__name__}; "
                f"{read.__name__}(sys.argv[1])\" {saved}")
            if len(failures) == 10:
                break
        slowest = max(slowest, (time.perf_counter() - began, index))
    seconds = time.perf_counter() - started
    print(f"\n{examples} mutants of {sorted(bases)} in {seconds:.1f} s (seed {SEED}), "
          f"slowest {slowest[0] * 1000:.0f} ms (mutant {slowest[1]}):")
    for kind, count in sorted(outcomes.items(), key=lambda item: -item[1]):
        print(f"  {count:6}  {kind}")
    assert not failures, "the reader let other errors than TraceError escape:\n" + "\n".join(
        failures)
    return outcomes


def test_trace_reader_mutants_raise_only_trace_errors(trace_bases, tmp_path):
    outcomes = fuzz(tmp_path, trace_bases, TRACE, read_trace, EXAMPLES)
    # The mutants get well past the checksums: many kinds of rejection.
    assert len(outcomes) >= min(30, EXAMPLES // 50), sorted(outcomes)


def test_recording_reader_mutants_raise_only_trace_errors(recording_bases, tmp_path):
    outcomes = fuzz(tmp_path, recording_bases, RECORDING, read_recording, max(1, EXAMPLES // 2))
    assert len(outcomes) >= min(20, EXAMPLES // 100), sorted(outcomes)


# -- hostile sizes: rejected before anything is allocated -------------------------

def trace_header(description=b"", length=None):
    length = len(description) if length is None else length
    fixed = struct.pack("<8sHHII", b"ZSWTRACE", 1, 0, PAGE, length) + description
    return fixed + U32.pack(zlib.crc32(fixed))


def trace_block(counts, payload, payload_length=None):
    return struct.pack("<4s5I", b"ZBLK", *counts,
                       len(payload) if payload_length is None else payload_length,
                       zlib.crc32(payload)) + payload


def frame_declaring(size):
    """A zstd frame header declaring `size` bytes, with one empty last block."""
    return b"\x28\xb5\x2f\xfd\xe0" + U64.pack(size) + b"\x01\x00\x00"


def recording_header():
    fixed = struct.pack("<8sHHIIII", b"ZSWRECRD", 1, 0, PAGE, 0, 0, 0)
    return fixed + U32.pack(zlib.crc32(fixed))


def image_block(entries, frames, frames_length=None):
    fixed = struct.pack("<4sII", b"RIMG", len(entries),
                        len(frames) if frames_length is None else frames_length)
    directory = b"".join(struct.pack("<16sI", digest, length) for digest, length in entries)
    return fixed + U32.pack(zlib.crc32(fixed + directory)) + directory + frames


def snapshot_block(n_pages, n_written, n_accessed, table, table_length=None):
    fixed = struct.pack("<4sQIIIII", b"RSNP", 0, n_pages, n_written, n_accessed,
                        len(table) if table_length is None else table_length, zlib.crc32(table))
    return fixed + U32.pack(zlib.crc32(fixed)) + table


def recording_trailer(snapshots, images):
    counts = struct.pack("<QQ", snapshots, images)
    return b"REND" + counts + U32.pack(zlib.crc32(counts))


def trace_trailer(events, images):
    counts = struct.pack("<QQ", events, images)
    return b"ZEND" + counts + U32.pack(zlib.crc32(counts))


def unsized_frame(raw):
    return zstandard.ZstdCompressor(write_content_size=False).compress(raw)


# (what, reader, the file, the TraceError expected); files are built lazily.
HOSTILE = [
    ("trace: a frame declaring 2**40 bytes", read_trace, lambda: (
        trace_header() + trace_block((1, 1, 0), frame_declaring(1 << 40)) + trace_trailer(1, 1)),
     "declares 1099511627776 bytes"),
    ("trace: a frame declaring 2**64-2 bytes", read_trace, lambda: (
        trace_header() + trace_block((1, 1, 0), frame_declaring(2**64 - 2)) + trace_trailer(1, 1)),
     "corrupt block payload"),
    ("trace: an unsized frame of 64 MiB", read_trace, lambda: (
        trace_header() + trace_block((1, 1, 0), unsized_frame(bytes(64 << 20)))
        + trace_trailer(1, 1)),
     "corrupt block payload"),
    ("trace: 2**32-1 images", read_trace, lambda: (
        trace_header() + trace_block((2**32 - 1, 1, 0), b"") + trace_trailer(1, 1)),
     "too many"),
    ("trace: 2**32-1 events", read_trace, lambda: (
        trace_header() + trace_block((0, 2**32 - 1, 0), b"") + trace_trailer(1, 1)),
     "limit"),
    ("trace: 2**32-1 releases", read_trace, lambda: (
        trace_header() + trace_block((0, 1, 2**32 - 1), b"") + trace_trailer(1, 1)),
     "limit"),
    ("trace: a payload of 2**32-1 bytes", read_trace, lambda: (
        trace_header() + trace_block((1, 1, 0), b"", payload_length=2**32 - 1)
        + trace_trailer(1, 1)),
     "too large"),
    ("trace: a description of 2**32-1 bytes", read_trace, lambda: (
        trace_header(length=2**32 - 1) + trace_trailer(0, 0)),
     "description length"),
    ("recording: 2**32-1 images", read_recording, lambda: (
        recording_header() + struct.pack("<4sII", b"RIMG", 2**32 - 1, 0) + bytes(4)
        + recording_trailer(0, 0)),
     "limit"),
    ("recording: 2**32-1 bytes of frames", read_recording, lambda: (
        recording_header() + image_block([], b"", frames_length=2**32 - 1)
        + recording_trailer(0, 0)),
     "truncated image block"),
    ("recording: a frame of 2**32-1 bytes", read_recording, lambda: (
        recording_header() + image_block([(bytes(16), 2**32 - 1)], b"")
        + recording_trailer(0, 1)),
     "too large"),
    ("recording: a page image declaring 2**40 bytes", read_recording, lambda: (
        recording_header()
        + image_block([(recording_format.digest_of(bytes(PAGE)), 16)], frame_declaring(1 << 40))
        + snapshot_block(1, 1, 2**32 - 1, zstandard.ZstdCompressor().compress(bytes(16)))
        + recording_trailer(1, 1)),
     "declares 1099511627776 bytes"),
    ("recording: 2**32-1 pages in a snapshot", read_recording, lambda: (
        recording_header() + snapshot_block(2**32 - 1, 0, 0, b"") + recording_trailer(1, 0)),
     "limit"),
    ("recording: a table of 2**32-1 bytes", read_recording, lambda: (
        recording_header() + snapshot_block(1, 1, 0, b"", table_length=2**32 - 1)
        + recording_trailer(1, 0)),
     "too large"),
]


@pytest.mark.parametrize("read, build, message", [case[1:] for case in HOSTILE],
                         ids=[case[0] for case in HOSTILE])
def test_hostile_sizes_are_rejected_without_allocating(tmp_path, read, build, message):
    """Rejected within 2 s, having allocated less than 16 MiB."""
    path = tmp_path / "hostile"
    path.write_bytes(build())
    tracemalloc.start()
    began = time.perf_counter()
    try:
        with pytest.raises(TraceError, match=message):
            read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - began < 2
    assert peak < 16 << 20, f"{peak} bytes allocated"


MAX_COUNTS = (trace_format.MAX_BLOCK_IMAGES, trace_format.MAX_BLOCK_EVENTS,
              trace_format.MAX_BLOCK_RELEASES)
MAX_RAW = MAX_COUNTS[0] * PAGE + MAX_COUNTS[1] * 24 + MAX_COUNTS[2] * 4


@pytest.mark.parametrize("block, message, bound", [
    (lambda: trace_block(MAX_COUNTS, unsized_frame(bytes(PAGE + 24))), "decompresses to",
     300 << 20),
    # The claimed payload is compared with the file's length before any read.
    (lambda: trace_block(MAX_COUNTS, b"", payload_length=MAX_RAW), "truncated block payload",
     16 << 20),
], ids=["an unsized frame", "a payload longer than the file"])
def test_the_largest_block_within_the_limits_stays_within_the_documented_bound(
        tmp_path, block, message, bound):
    """Counts at every limit: the reader may reserve the whole block, which
    the format caps at about 300 MiB (docs/trace-format.md, Limits), and no
    more, however short the file."""
    path = tmp_path / "largest"
    path.write_bytes(trace_header() + block() + trace_trailer(1, 1))
    tracemalloc.start()
    try:
        with pytest.raises(TraceError, match=message):
            read_trace(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < bound, f"{peak} bytes allocated"
