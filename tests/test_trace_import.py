"""Importing raw page dumps, and the trace summary that `zswapsim info` shows."""

import os
import random
import struct

import pytest
import zstandard

from zswapsim.compress import get_compressor
from zswapsim.errors import TraceError
from zswapsim.trace import (
    STORE,
    TraceReader,
    TraceWriter,
    import_raw,
    trace_info,
)
from zswapsim.trace.importer import raw_pages

PAGE = 4096


def page(tag):
    return struct.pack("<Q", tag) * (PAGE // 8)


def dump_pages(count):
    """`count` pages where page 5 repeats page 0 and page 7 is all zeros."""
    pages = [page(1000 + i) for i in range(count)]
    pages[5] = pages[0]
    pages[7] = bytes(PAGE)
    return pages


def stored(pages):
    return [(STORE, 0, offset, content, 0) for offset, content in enumerate(pages)]


def test_plain_dump(tmp_path):
    pages = dump_pages(10)
    (tmp_path / "dump.bin").write_bytes(b"".join(pages))
    assert import_raw(tmp_path / "dump.bin", tmp_path / "dump.trace") == 10
    reader = TraceReader(tmp_path / "dump.trace")
    assert reader.description == "raw page dump dump.bin, 10 pages"
    assert list(reader) == stored(pages)
    assert reader.images_defined == 9


def test_zstd_dump_of_several_frames_and_many_reads(tmp_path):
    pages = dump_pages(700)                    # more than one read's worth
    compressor = zstandard.ZstdCompressor()
    (tmp_path / "dump.zst").write_bytes(compressor.compress(b"".join(pages[:300]))
                                        + compressor.compress(b"".join(pages[300:])))
    count = import_raw(tmp_path / "dump.zst", tmp_path / "dump.trace", description="mine")
    assert count == 700
    reader = TraceReader(tmp_path / "dump.trace")
    assert reader.description == "mine"
    assert list(reader) == stored(pages)


@pytest.mark.parametrize("compress", [False, True])
def test_dump_with_a_partial_page(tmp_path, compress):
    data = b"".join(page(i) for i in range(3)) + b"\x01" * 100
    if compress:
        data = zstandard.ZstdCompressor().compress(data)
    (tmp_path / "dump.bin").write_bytes(data)
    with pytest.raises(TraceError, match="not a multiple of 4096: 100 bytes left over after 3"):
        import_raw(tmp_path / "dump.bin", tmp_path / "dump.trace")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dump.bin"]


@pytest.mark.parametrize("data", [b"", zstandard.ZstdCompressor().compress(b"")])
def test_empty_dump(tmp_path, data):
    (tmp_path / "dump.bin").write_bytes(data)
    with pytest.raises(TraceError, match="empty dump"):
        import_raw(tmp_path / "dump.bin", tmp_path / "dump.trace")
    assert not (tmp_path / "dump.trace").exists()


def test_corrupt_zstd_dump(tmp_path):
    (tmp_path / "dump.zst").write_bytes(b"\x28\xb5\x2f\xfd" + b"\xff" * 64)
    with pytest.raises(TraceError, match="corrupt zstd stream"):
        import_raw(tmp_path / "dump.zst", tmp_path / "dump.trace")
    assert not (tmp_path / "dump.trace").exists()


def test_info_counts_by_construction(tmp_path):
    zero = bytes(PAGE)
    same_filled = bytes(range(1, 9)) * (PAGE // 8)
    mixed = bytes(range(256)) * (PAGE // 256)
    path = tmp_path / "t.trace"
    with TraceWriter(path, description="info test", timestamps=True) as writer:
        writer.store(0, 1, zero, ts=1)          # slot (0, 1)
        writer.store(0, 2, zero, ts=2)          # slot (0, 2)
        writer.store(1, 1, same_filled, ts=3)   # slot (1, 1)
        writer.store(0, 1, mixed, ts=4)         # slot (0, 1) again
        writer.store(0, 3, same_filled, ts=5)   # slot (0, 3)
        writer.load(0, 1, ts=6)
        writer.load(0, 9, ts=7)
        writer.invalidate_page(0, 2, ts=8)
        writer.invalidate_area(1, ts=9)
    assert trace_info(path) == {
        "version": 2,
        "page_size": PAGE,
        "description": "info test",
        "has_timestamps": True,
        "events": {"store": 5, "load": 2, "invalidate_page": 1, "invalidate_area": 1,
                   "drop_clean": 0},
        "distinct_images": 3,
        "zero_pages": 2,
        "same_filled_pages": 4,           # the two zero pages and the two word-filled ones
        "zero_share": 2 / 5,
        "same_filled_share": 4 / 5,
        "footprint": 4,
        # The one mixed store: 256 literal bytes then one long match, so
        # both compressors land in the 256-511 byte bin.
        "compressed_sizes": {
            "bin_bytes": 256, "pages": 1,
            "lz4": {"histogram": [0, 1] + [0] * 15, "mean": info_mean(mixed, "lz4")},
            "zstd": {"histogram": [0, 1] + [0] * 15, "mean": info_mean(mixed, "zstd")},
        },
    }


def info_mean(page, name):
    return float(len(get_compressor(name).compress(page)))


def test_info_size_histogram_counts_stores_by_output_length(tmp_path):
    rng = random.Random(5)
    noise = rng.randbytes(PAGE)                        # incompressible: output > 4096
    half = rng.randbytes(2100) + bytes(PAGE - 2100)    # ~2100 literals + a zero run
    path = tmp_path / "h.trace"
    with TraceWriter(path) as writer:
        for offset in range(3):
            writer.store(0, offset, noise)             # one image, three stores
        writer.store(0, 3, half)
        writer.store(0, 4, bytes(PAGE))                # zero: not in the histogram
    sizes = trace_info(path)["compressed_sizes"]
    assert sizes["pages"] == 4
    for name in ("lz4", "zstd"):
        expected = [0] * 17
        expected[16] = 3                               # 4096 bytes and more
        expected[2100 // 256] = 1                      # 2048-2303
        assert sizes[name]["histogram"] == expected, name


def test_info_of_an_imported_dump_across_blocks(tmp_path):
    pages = dump_pages(3000)                   # several blocks of 1024 images
    (tmp_path / "dump.bin").write_bytes(b"".join(pages))
    import_raw(tmp_path / "dump.bin", tmp_path / "dump.trace")
    info = trace_info(tmp_path / "dump.trace")
    assert info["events"] == {"store": 3000, "load": 0, "invalidate_page": 0,
                              "invalidate_area": 0, "drop_clean": 0}
    assert info["distinct_images"] == 2999
    assert info["zero_pages"] == 1
    assert info["same_filled_pages"] == 3000   # page(tag) repeats one 8-byte word
    assert info["footprint"] == 3000
    assert not info["has_timestamps"]


def test_info_reads_other_page_sizes(tmp_path):
    path = tmp_path / "64k.trace"
    with TraceWriter(path, page_size=65536) as writer:
        writer.store(0, 0, bytes(65536))
        writer.load(0, 0)
    info = trace_info(path)
    assert (info["page_size"], info["zero_pages"], info["events"]["store"],
            info["events"]["load"]) == (65536, 1, 1, 1)


def test_a_dump_that_may_never_end_is_refused_before_reading(tmp_path):
    """A FIFO with no writer would block open() forever, and /dev/zero never
    ends: both are refused from their file type alone, and no trace is made."""
    fifo = tmp_path / "dump.fifo"
    os.mkfifo(fifo)
    for source in (fifo, "/dev/zero"):
        with pytest.raises(TraceError, match="not a regular file or block device"):
            raw_pages(source)
        with pytest.raises(TraceError, match=f"^{source}: not a regular file"):
            import_raw(source, tmp_path / "out.trace")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dump.fifo"]
