"""Turn a raw page dump into a trace.

A raw dump (N pages back to back, optionally zstd-compressed) is the simplest
thing a user can capture, e.g. by reading /proc/<pid>/mem or a swap area.  It
has no events of its own, so it becomes a trace that stores page i at offset
i of swap type 0: enough to measure compression and pool packing.
"""

import os

import zstandard

from ..errors import TraceError
from .format import PAGE_SIZE, ZSTD_FRAME_MAGIC, TraceWriter, require_file

PAGES_PER_READ = 256


def import_raw(src_path, out_path, description=None, page_size=PAGE_SIZE):
    """Write a trace storing every page of the dump at `src_path`; return the page count.

    The dump is streamed, so it may be far larger than memory.
    """
    name = os.path.basename(os.fspath(src_path))
    dump = raw_pages(src_path, page_size)
    with TraceWriter(out_path, description=description or "", page_size=page_size) as writer:
        pages = 0
        for page in dump:
            writer.store(0, pages, page)
            pages += 1
        if pages == 0:
            raise TraceError(f"{name}: empty dump, no pages to import")
        writer.description = (description if description is not None
                              else f"raw page dump {name}, {pages} pages")
    return pages


def raw_pages(src_path, page_size=PAGE_SIZE):
    """An iterator over the pages of a raw dump (plain or zstd), streaming; a
    length that is not a whole number of pages is a TraceError at its end.

    The dump must be a regular file or a block device (a swap partition):
    something with an end.  A pipe or a character device (/dev/zero) is
    refused before anything is read, as it may never end, and a cap would
    silently cut a real dump short; zstd detection also needs to seek back.
    """
    name = os.path.basename(os.fspath(src_path))
    require_file(os.fspath(src_path), "a raw dump", "it must have an end", block_devices=True)
    return _pages(src_path, name, page_size)


def _pages(src_path, name, page_size):
    with open(src_path, "rb") as dump:
        compressed = dump.read(len(ZSTD_FRAME_MAGIC)) == ZSTD_FRAME_MAGIC
        dump.seek(0)
        source = (zstandard.ZstdDecompressor().stream_reader(dump, read_across_frames=True)
                  if compressed else dump)
        pages = 0
        while True:
            chunk = _read_full(source, page_size * PAGES_PER_READ, name)
            whole = len(chunk) - len(chunk) % page_size
            for start in range(0, whole, page_size):
                yield chunk[start:start + page_size]
                pages += 1
            if len(chunk) < page_size * PAGES_PER_READ:
                break
        left_over = len(chunk) - whole
        if left_over:
            raise TraceError(f"{name}: dump length is not a multiple of {page_size}: "
                             f"{left_over} bytes left over after {pages} pages")


def _read_full(source, size, name):
    """Read `size` bytes unless the dump ends first; stream readers may return less."""
    chunks = []
    remaining = size
    try:
        while remaining:
            chunk = source.read(remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except zstandard.ZstdError as error:
        raise TraceError(f"{name}: corrupt zstd stream ({error})") from None
    return b"".join(chunks)
