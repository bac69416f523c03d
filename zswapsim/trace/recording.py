"""The zswapsim recording format: a live process's memory, snapshot by snapshot.

A recording is what `zswapsim trace record` captures: at each moment it
looked, the pages present in the process's recorded mappings (virtual
address -> content), which of them were written since the previous look
and, where the kernel tells, which were read.  It is the raw material of
the RAM model, which turns it into the write/read/free sequence `accesses()`
yields.  Page images are stored once per distinct content, keyed by a
16-byte BLAKE2b digest and compressed one by one, so a reader holds only an
index and fetches any image on demand.  docs/recording-format.md is the
specification; this module is its reference writer and reader, and the
reader turns every malformed file into a TraceError naming the byte offset.
"""

import hashlib
import os
import struct
import zlib
from array import array
from collections import namedtuple
from functools import partial

import numpy as np
import zstandard

from ..errors import TraceError
from ..files import ReplacingFile
from .format import MAGIC as TRACE_MAGIC
from .format import (MAX_DESCRIPTION, PAGE_SIZE, PAGE_SIZES, RECORDING_MAGIC, check_description,
                     decompress_exact, read_exact)

MAGIC = RECORDING_MAGIC
VERSION = 1
IMAGES_MAGIC = b"RIMG"
SNAPSHOT_MAGIC = b"RSNP"
END_MAGIC = b"REND"
NO_ACCESS_INFO = 0xFFFFFFFF
DIGEST_SIZE = 16
MAX_COMMAND = 64 * 1024

# Limits a reader enforces before allocating: an image block's directory is
# at most 1.3 MiB, a snapshot's table at most 320 MiB (16M pages: 64 GiB of
# 4K pages), a compressed image at most its page plus zstd's worst overhead.
MAX_BLOCK_IMAGES = 65536
MAX_SNAPSHOT_PAGES = 1 << 24
FRAME_SLACK = 1024
PAYLOAD_SLACK = 64 * 1024

# How the writer cuts image blocks.
WRITER_BLOCK_IMAGES = 1024
WRITER_BLOCK_BYTES = 4 * 1024 * 1024
ZSTD_LEVEL = 3

# The fixed fields of each structure; the CRCs that follow them are separate.
_HEADER = struct.Struct("<8sHHIIII")   # magic, version, flags, page_size, pid,
#                                        description_len, command_len
_IMAGES_HEADER = struct.Struct("<4sII")   # magic, n_images, frames_len
_DIRECTORY_ENTRY = struct.Struct(f"<{DIGEST_SIZE}sI")   # digest, frame_len
_SNAPSHOT_HEADER = struct.Struct("<4sQIIIII")   # magic, ts_ns, n_pages, n_written,
#                                                 n_accessed, table_len, table_crc
_U32 = struct.Struct("<I")
_COUNTS = struct.Struct("<QQ")  # trailer: snapshots, images

Snapshot = namedtuple("Snapshot", "ts_ns pages written accessed")
Snapshot.__doc__ = """One look at the process: ts_ns since the recording started; pages
maps each present page's virtual address to its content digest; written is
the frozenset of addresses written since the previous snapshot (every page
of the first); accessed is the frozenset read or written, or None when the
recorder had no way to know."""

# Where a snapshot's table lies and what its (CRC-checked) header said.
_SnapshotBlock = namedtuple("_SnapshotBlock", "table_at ts_ns n_pages n_written n_accessed "
                            "table_length table_crc raw_size images_defined")


def digest_of(content):
    """The key a page image is stored under."""
    return hashlib.blake2b(content, digest_size=DIGEST_SIZE).digest()


class RecordingWriter:
    """Writes a recording as it is taken: image blocks as distinct pages
    accumulate, one snapshot block per snapshot, the trailer on close().

    The file is built under a temporary name and renamed into place by
    close(), so an abandoned recording never leaves a half-written file.
    """

    def __init__(self, path, description="", page_size=PAGE_SIZE, *, pid=0, command=()):
        if page_size not in PAGE_SIZES:
            raise ValueError(f"page size {page_size} is not one of {PAGE_SIZES}")
        description = check_description(description)
        command = b"\0".join(os.fsencode(arg) for arg in command)
        if len(command) > MAX_COMMAND:
            raise ValueError(f"command is {len(command)} bytes, limit {MAX_COMMAND}")
        if not 0 <= pid < 1 << 32:
            raise ValueError(f"pid {pid} out of range")
        self.path = os.fspath(path)
        self.page_size = page_size
        self._file = ReplacingFile(self.path)
        self._out = self._file.file
        fixed = _HEADER.pack(MAGIC, VERSION, 0, page_size, pid, len(description), len(command))
        header = fixed + description + command
        self._out.write(header + _U32.pack(zlib.crc32(header)))
        self._compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        self._image_ids = {}          # digest -> image id, in order of definition
        self._pending = []            # (digest, frame) of images not yet in a block
        self._pending_bytes = 0
        self._previous_vaddrs = np.empty(0, np.uint64)
        self._previous_ids = np.empty(0, np.uint32)
        self._last_ts = 0
        self.snapshots = 0
        self._closed = False

    @property
    def images(self):
        """Distinct page images stored so far."""
        return len(self._image_ids)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def add_image(self, content):
        """Store a page image unless its content is already stored; return its digest."""
        self._check_open()
        if len(content) != self.page_size:
            raise ValueError(f"page is {len(content)} bytes, expected {self.page_size}")
        digest = digest_of(content)
        if digest not in self._image_ids:
            self._image_ids[digest] = len(self._image_ids)
            frame = self._compressor.compress(content)
            self._pending.append((digest, frame))
            self._pending_bytes += len(frame)
            if (len(self._pending) >= WRITER_BLOCK_IMAGES
                    or self._pending_bytes >= WRITER_BLOCK_BYTES):
                self._flush_images()
        return digest

    def snapshot(self, ts_ns, pages, written=None, accessed=None):
        """Record a snapshot from page contents: pages maps vaddr -> bytes."""
        digests = {vaddr: self.add_image(content) for vaddr, content in pages.items()}
        self.snapshot_digests(ts_ns, digests, written, accessed)

    def snapshot_digests(self, ts_ns, pages, written=None, accessed=None):
        """Record a snapshot whose images were stored with add_image: pages
        maps vaddr -> digest.  Pages that are new or whose content changed
        since the previous snapshot count as written whatever `written` says;
        `accessed` is None when there is no read information."""
        self._check_open()
        if not self._last_ts <= ts_ns < 1 << 64:
            raise ValueError(f"timestamp {ts_ns} is before the previous one or out of range")
        vaddrs = np.array(sorted(pages), dtype=np.uint64)
        if len(vaddrs) > MAX_SNAPSHOT_PAGES:
            raise ValueError(f"{len(vaddrs)} pages in one snapshot, limit {MAX_SNAPSHOT_PAGES}")
        if np.any(vaddrs % self.page_size):
            raise ValueError("a page address is not a multiple of the page size")
        try:
            ids = np.array([self._image_ids[pages[v]] for v in vaddrs.tolist()], np.uint32)
        except KeyError:
            raise ValueError("a page's digest names no image given to add_image") from None
        changed = ~_same_image(vaddrs, ids, self._previous_vaddrs, self._previous_ids)
        written_mask = self._mask(vaddrs, written, "written") | changed
        self._flush_images()
        parts = [vaddrs.astype("<u8"), ids.astype("<u4"),
                 np.flatnonzero(written_mask).astype("<u4")]
        if accessed is None:
            n_accessed = NO_ACCESS_INFO
        else:
            parts.append(np.flatnonzero(self._mask(vaddrs, accessed, "accessed")).astype("<u4"))
            n_accessed = len(parts[3])
        table = self._compressor.compress(b"".join(part.tobytes() for part in parts))
        header = _SNAPSHOT_HEADER.pack(SNAPSHOT_MAGIC, ts_ns, len(vaddrs), len(parts[2]),
                                       n_accessed, len(table), zlib.crc32(table))
        self._out.write(header + _U32.pack(zlib.crc32(header)) + table)
        self._previous_vaddrs, self._previous_ids = vaddrs, ids
        self._last_ts = ts_ns
        self.snapshots += 1

    def close(self):
        """Write the trailer and move the file into place."""
        if self._closed:
            return
        try:
            self._flush_images()
            counts = _COUNTS.pack(self.snapshots, len(self._image_ids))
            self._out.write(END_MAGIC + counts + _U32.pack(zlib.crc32(counts)))
            self._file.commit()
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self):
        """Drop the recording; no file is left behind."""
        self._closed = True
        self._file.discard()

    def _check_open(self):
        if self._closed:
            raise ValueError("recording writer is closed")

    def _mask(self, vaddrs, chosen, what):
        """Boolean mask over the sorted vaddrs of the addresses in `chosen`."""
        chosen = np.array(sorted(chosen or ()), dtype=np.uint64)
        positions = np.searchsorted(vaddrs, chosen)
        if np.any(positions >= len(vaddrs)) or np.any(vaddrs[positions] != chosen):
            raise ValueError(f"a {what} page is not among the snapshot's pages")
        mask = np.zeros(len(vaddrs), bool)
        mask[positions] = True
        return mask

    def _flush_images(self):
        if not self._pending:
            return
        directory = b"".join(_DIRECTORY_ENTRY.pack(digest, len(frame))
                             for digest, frame in self._pending)
        fixed = _IMAGES_HEADER.pack(IMAGES_MAGIC, len(self._pending), self._pending_bytes)
        self._out.write(fixed + _U32.pack(zlib.crc32(fixed + directory)) + directory)
        self._out.writelines(frame for _, frame in self._pending)
        self._pending, self._pending_bytes = [], 0


class RecordingReader:
    """Reads a recording, validating everything it reads.

    Opening walks the file's block headers (not its contents): it checks the
    header, every block header and the trailer, so a truncated file fails
    here, and indexes every image.  Iterating decodes the snapshots in order
    and can be repeated; image() fetches one page image from the file.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._image_digests = []        # image id -> digest
        self._image_ids = {}            # digest -> image id
        self._frame_at = array("Q")     # image id -> file offset of its frame
        self._frame_length = array("I")
        self._snapshots = []          # _SnapshotBlock per snapshot, in order
        with open(self.path, "rb") as f:
            self._read_header(f)
            self._index(f)
        self._file = None

    @property
    def snapshot_count(self):
        return len(self._snapshots)

    @property
    def image_count(self):
        return len(self._image_digests)

    def __iter__(self):
        """Yield every Snapshot in order."""
        previous_vaddrs, previous_ids = np.empty(0, np.uint64), np.empty(0, np.uint32)
        with open(self.path, "rb") as f:
            for block in self._snapshots:
                vaddrs, ids, written, accessed = self._read_snapshot(f, block)
                changed = ~_same_image(vaddrs, ids, previous_vaddrs, previous_ids)
                written_mask = np.zeros(len(vaddrs), bool)
                written_mask[written] = True
                if np.any(changed & ~written_mask):
                    index = int(np.argmax(changed & ~written_mask))
                    raise TraceError(f"page {index} of the snapshot is new or changed "
                                     "but not in its written list", block.table_at)
                previous_vaddrs, previous_ids = vaddrs, ids
                vaddr_list = vaddrs.tolist()
                digests = self._image_digests
                yield Snapshot(
                    block.ts_ns,
                    {vaddr: digests[image] for vaddr, image in zip(vaddr_list, ids.tolist())},
                    frozenset(vaddr_list[i] for i in written.tolist()),
                    None if accessed is None
                    else frozenset(vaddr_list[i] for i in accessed.tolist()))

    def image(self, digest):
        """The page image stored under `digest` (KeyError if the recording has none)."""
        image = self._image_ids[digest]
        at, length = self._frame_at[image], self._frame_length[image]
        if self._file is None:
            self._file = open(self.path, "rb")
        self._file.seek(at)
        frame = read_exact(self._file, length, "page image")
        content = decompress_exact(frame, self.page_size, at, what="compressed data")
        if digest_of(content) != digest:
            raise TraceError("page image does not match its digest", at)
        return content

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()

    def _read_header(self, f):
        fixed = read_exact(f, _HEADER.size, "header")
        magic, version, flags, page_size, pid, description_length, command_length = \
            _HEADER.unpack(fixed)
        if magic == TRACE_MAGIC:
            raise TraceError(f"{self.path} is a trace, not a zswapsim recording: "
                             "replay it as it is")
        if magic != MAGIC:
            raise TraceError("not a zswapsim recording (bad magic)", 0)
        if version != VERSION:
            raise TraceError(f"unsupported recording version {version}", 8)
        if flags:
            raise TraceError(f"unknown header flags {flags:#x}", 10)
        if page_size not in PAGE_SIZES:
            raise TraceError(f"invalid page size {page_size}", 12)
        if description_length > MAX_DESCRIPTION:
            raise TraceError(
                f"description length {description_length} exceeds {MAX_DESCRIPTION}", 20)
        if command_length > MAX_COMMAND:
            raise TraceError(f"command length {command_length} exceeds {MAX_COMMAND}", 24)
        description = read_exact(f, description_length, "description")
        command = read_exact(f, command_length, "command")
        (crc,) = _U32.unpack(read_exact(f, 4, "header CRC"))
        if crc != zlib.crc32(fixed + description + command):
            raise TraceError("header CRC mismatch", f.tell() - 4)
        try:
            self.description = description.decode("utf-8")
        except UnicodeDecodeError:
            raise TraceError("description is not valid UTF-8", _HEADER.size) from None
        self.version = version
        self.page_size = page_size
        self.pid = pid or None
        self.command = tuple(os.fsdecode(arg) for arg in command.split(b"\0")) if command else ()
        self._data_start = f.tell()

    def _index(self, f):
        """Walk the blocks to the trailer, indexing images and snapshots."""
        size = os.fstat(f.fileno()).st_size
        f.seek(self._data_start)
        while True:
            at = f.tell()
            magic = f.read(4)
            if magic == END_MAGIC:
                self._read_trailer(f, at)
                return
            if len(magic) < 4:
                raise TraceError("truncated recording: no trailer", at)
            if magic == IMAGES_MAGIC:
                self._index_images(f, at, size)
            elif magic == SNAPSHOT_MAGIC:
                self._index_snapshot(f, at, size)
            else:
                raise TraceError(f"bad block magic {magic!r}", at)

    def _index_images(self, f, at, size):
        fields = read_exact(f, _IMAGES_HEADER.size - 4, "image block header")
        n_images, frames_length = struct.unpack("<II", fields)
        if n_images > MAX_BLOCK_IMAGES:
            raise TraceError(f"image block defines {n_images} images, limit {MAX_BLOCK_IMAGES}",
                             at + 4)
        (crc,) = _U32.unpack(read_exact(f, 4, "image block header CRC"))
        directory = read_exact(f, n_images * _DIRECTORY_ENTRY.size, "image directory")
        if crc != zlib.crc32(IMAGES_MAGIC + fields + directory):
            raise TraceError("image block header CRC mismatch", at + 12)
        frame_at = f.tell()
        if frame_at + frames_length > size:
            raise TraceError(f"truncated image block: {frames_length} bytes of images announced, "
                             f"{size - frame_at} left in the file", frame_at)
        for digest, length in _DIRECTORY_ENTRY.iter_unpack(directory):
            if length > self.page_size + FRAME_SLACK:
                raise TraceError(f"compressed image of {length} bytes, too large", at)
            if digest in self._image_ids:
                raise TraceError("image defined twice", at)
            self._image_ids[digest] = len(self._image_digests)
            self._image_digests.append(digest)
            self._frame_at.append(frame_at)
            self._frame_length.append(length)
            frame_at += length
        if frame_at != f.tell() + frames_length:
            raise TraceError("image directory lengths do not add up to the block's image bytes",
                             at + 8)
        f.seek(frame_at)

    def _index_snapshot(self, f, at, size):
        """Check a snapshot's header (its table is checked when iterating)."""
        fields = read_exact(f, _SNAPSHOT_HEADER.size - 4, "snapshot header")
        (crc,) = _U32.unpack(read_exact(f, 4, "snapshot header CRC"))
        if crc != zlib.crc32(SNAPSHOT_MAGIC + fields):
            raise TraceError("snapshot header CRC mismatch", at + _SNAPSHOT_HEADER.size)
        _, ts_ns, n_pages, n_written, n_accessed, table_length, table_crc = \
            _SNAPSHOT_HEADER.unpack(SNAPSHOT_MAGIC + fields)
        if self._snapshots and ts_ns < self._snapshots[-1].ts_ns:
            raise TraceError("snapshot timestamp earlier than the previous one", at + 4)
        if n_pages > MAX_SNAPSHOT_PAGES:
            raise TraceError(f"snapshot holds {n_pages} pages, limit {MAX_SNAPSHOT_PAGES}",
                             at + 12)
        if n_written > n_pages:
            raise TraceError(f"{n_written} written pages of {n_pages}", at + 16)
        if n_accessed != NO_ACCESS_INFO and n_accessed > n_pages:
            raise TraceError(f"{n_accessed} accessed pages of {n_pages}", at + 20)
        raw_size = n_pages * 12 + n_written * 4
        if n_accessed != NO_ACCESS_INFO:
            raw_size += n_accessed * 4
        if table_length > raw_size + PAYLOAD_SLACK:
            raise TraceError(f"table length {table_length} too large for {raw_size} raw bytes",
                             at + 24)
        table_at = f.tell()
        if table_at + table_length > size:
            raise TraceError(f"truncated snapshot: {table_length} bytes of table announced, "
                             f"{size - table_at} left in the file", table_at)
        self._snapshots.append(_SnapshotBlock(
            table_at, ts_ns, n_pages, n_written, n_accessed, table_length, table_crc, raw_size,
            len(self._image_digests)))
        f.seek(table_length, os.SEEK_CUR)

    def _read_trailer(self, f, at):
        counts = read_exact(f, _COUNTS.size, "trailer")
        (crc,) = _U32.unpack(read_exact(f, 4, "trailer CRC"))
        if crc != zlib.crc32(counts):
            raise TraceError("trailer CRC mismatch", at + 4 + _COUNTS.size)
        snapshots, images = _COUNTS.unpack(counts)
        if snapshots != len(self._snapshots):
            raise TraceError(f"trailer counts {snapshots} snapshots, recording has "
                             f"{len(self._snapshots)}", at + 4)
        if images != len(self._image_digests):
            raise TraceError(f"trailer counts {images} images, recording has "
                             f"{len(self._image_digests)}", at + 12)
        if f.read(1):
            raise TraceError("bytes after the trailer", at + 8 + _COUNTS.size)

    def _read_snapshot(self, f, block):
        """Decode and check a snapshot's table: (vaddrs, image ids, written, accessed)."""
        f.seek(block.table_at)
        table = read_exact(f, block.table_length, "snapshot table")
        if zlib.crc32(table) != block.table_crc:
            raise TraceError("snapshot table CRC mismatch", block.table_at)
        raw = decompress_exact(table, block.raw_size, block.table_at, what="compressed data")
        n_pages, n_written = block.n_pages, block.n_written
        vaddrs = np.frombuffer(raw, "<u8", n_pages).astype(np.uint64)
        ids = np.frombuffer(raw, "<u4", n_pages, offset=n_pages * 8).astype(np.uint32)
        written = np.frombuffer(raw, "<u4", n_written, offset=n_pages * 12)
        accessed = (None if block.n_accessed == NO_ACCESS_INFO else
                    np.frombuffer(raw, "<u4", block.n_accessed,
                                  offset=n_pages * 12 + n_written * 4))
        rules = [
            (np.any(vaddrs % self.page_size), "a page address is not a multiple of the page size"),
            (np.any(vaddrs[1:] <= vaddrs[:-1]), "page addresses not strictly ascending"),
            (np.any(ids >= block.images_defined), "a page names an image not defined before it"),
            (not _strictly_ascending_below(written, n_pages),
             "written list not strictly ascending page indices"),
            (accessed is not None and not _strictly_ascending_below(accessed, n_pages),
             "accessed list not strictly ascending page indices"),
        ]
        for broken, message in rules:
            if broken:
                raise TraceError(f"{message} in the snapshot", block.table_at)
        return vaddrs, ids, written, accessed


def accesses(reader):
    """Turn a recording into the access sequence the RAM model consumes.

    Per snapshot: ("free", vaddr, None) for every page gone since the
    previous snapshot, then in address order ("write", vaddr, content) for
    every page written (new pages included) and ("read", vaddr, None) for
    every page accessed but not written, where the recording knows reads.
    `content` is a function returning the page's bytes, so pages the RAM
    model never stores are never decompressed.
    """
    previous = {}
    for snapshot in reader:
        for vaddr in sorted(previous.keys() - snapshot.pages.keys()):
            yield "free", vaddr, None
        accessed = snapshot.accessed or frozenset()
        for vaddr in sorted(snapshot.pages):
            if vaddr in snapshot.written:
                yield "write", vaddr, partial(reader.image, snapshot.pages[vaddr])
            elif vaddr in accessed:
                yield "read", vaddr, None
        previous = snapshot.pages


def _same_image(vaddrs, ids, previous_vaddrs, previous_ids):
    """Mask over sorted vaddrs: the page was in the previous snapshot with the same image."""
    if not len(previous_vaddrs):
        return np.zeros(len(vaddrs), bool)
    positions = np.minimum(np.searchsorted(previous_vaddrs, vaddrs), len(previous_vaddrs) - 1)
    return (previous_vaddrs[positions] == vaddrs) & (previous_ids[positions] == ids)


def _strictly_ascending_below(indices, limit):
    return bool(np.all(indices < limit) and np.all(np.diff(indices.astype(np.int64)) > 0))
