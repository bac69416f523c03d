"""The zswapsim trace format: a recorded frontswap workload on disk.

A trace is the sequence of frontswap calls a kernel made (store, load,
invalidate_page, invalidate_area) with the page images they carried, and
(from version 2) the drop_clean events that say when a clean page loaded
from swap left RAM again: no call under frontswap, a store again under the
exclusive loads of Linux 6.9 and later.  Each
distinct image is stored once and named by an integer id.  Events travel in
blocks; a block carries the images it introduces and a release list of the
ids no later event names, so a reader holds only the live images plus one
block, however long the trace (this reader a few: it decodes the next block
on a helper thread while the caller works through the current one; with
work ahead, up to two more sit in that work's thread and its queue).  What
the file decides, the live set, is bounded by the reader's max_memory, so a
small hostile file cannot make it hold gigabytes of page images.
docs/trace-format.md is the specification; this module is its reference
writer and reader, and the reader turns every malformed or hostile file
into a TraceError that says where the problem is.
"""

import hashlib
import os
import queue
import shlex
import stat
import struct
import tempfile
import threading
import zlib
from array import array
from collections import deque, namedtuple
from types import MappingProxyType

import numpy as np
import zstandard

from ..errors import ConfigError, TraceError
from ..files import ReplacingFile

STORE, LOAD, INVALIDATE_PAGE, INVALIDATE_AREA, DROP_CLEAN = 1, 2, 3, 4, 5
OP_NAMES = {STORE: "store", LOAD: "load", INVALIDATE_PAGE: "invalidate_page",
            INVALIDATE_AREA: "invalidate_area", DROP_CLEAN: "drop_clean"}
NO_IMAGE = 0xFFFFFFFF
PAGE_SIZE = 4096

MAGIC = b"ZSWTRACE"
RECORDING_MAGIC = b"ZSWRECRD"   # a `trace record` recording (recording.py), not a trace
VERSION = 2                     # what the writer writes
DROP_CLEAN_VERSION = 2          # the first version with drop_clean events
# The versions a reader reads, each with the last op it may hold.
LAST_OP = {1: INVALIDATE_AREA, 2: DROP_CLEAN}
FLAG_TIMESTAMPS = 1
BLOCK_MAGIC = b"ZBLK"
END_MAGIC = b"ZEND"

# Linux page sizes (4K, 16K, 64K); replay itself supports only 4096.
PAGE_SIZES = (4096, 16384, 65536)
MAX_SWAPFILES = 32
MAX_OFFSET = 1 << 50
MAX_DESCRIPTION = 64 * 1024

# Per-block limits a reader enforces before allocating anything, so a hostile
# header cannot make it reserve more than about 300 MiB for one block.
MAX_BLOCK_IMAGES = 65536
MAX_BLOCK_IMAGE_BYTES = 256 * 1024 * 1024
MAX_BLOCK_EVENTS = 1 << 20
MAX_BLOCK_RELEASES = 1 << 20
PAYLOAD_SLACK = 64 * 1024
ZSTD_FRAME_MAGIC = b"\x28\xb5\x2f\xfd"

# The page image bytes a reader holds at once unless told otherwise
# (--max-trace-memory): the live set, counting the blocks decoded ahead.
DEFAULT_MAX_MEMORY = 2 << 30
# Blocks this reader may have decoded ahead of the one in use; their
# releases are not yet applied, so the bound counts them.
READ_AHEAD_BLOCKS = 3

# How the writer cuts blocks: small enough to keep a reader's block cheap.
WRITER_BLOCK_EVENTS = 8192
WRITER_BLOCK_IMAGES = 1024
# Page image bytes a reader decompresses in one call: a writer's whole block
# of 4 KiB pages.
DECODE_CHUNK_BYTES = WRITER_BLOCK_IMAGES * PAGE_SIZE
ZSTD_LEVEL = 3

EVENT_DTYPE = np.dtype([
    ("op", "u1"),
    ("swap_type", "u1"),
    ("reserved", "<u2"),
    ("image", "<u4"),
    ("offset", "<u8"),
    ("ts", "<u8"),
])
assert EVENT_DTYPE.itemsize == 24

_HEADER = struct.Struct("<8sHHII")       # magic, version, flags, page_size, description length
_U32 = struct.Struct("<I")
_BLOCK_HEADER = struct.Struct("<4sIIIII")  # magic, n_images, n_events, n_release, payload_len, crc
_COUNTS = struct.Struct("<QQ")           # trailer: total events, total images


class TraceWriter:
    """Records frontswap events and writes them as a trace file on close().

    Events (24 bytes each) and distinct page images go to spool files beside
    the output, because release lists need each image's last reference,
    which is only known once the workload has ended; what stays in memory is
    a few words per distinct image and per resident slot, not per event.
    """

    def __init__(self, path, description="", page_size=PAGE_SIZE, timestamps=False):
        if page_size not in PAGE_SIZES:
            raise ValueError(f"page size {page_size} is not one of {PAGE_SIZES}")
        self.path = os.fspath(path)
        self.description = description
        self.page_size = page_size
        self.timestamps = timestamps
        self._directory = os.path.dirname(os.path.abspath(self.path))
        self._spool = tempfile.TemporaryFile(dir=self._directory, prefix=".zswtrace-spool-")
        self._event_spool = tempfile.TemporaryFile(dir=self._directory,
                                                   prefix=".zswtrace-events-")
        self._image_ids = {}              # blake2b digest of a page -> image id
        self._first_use = array("Q")      # image id -> index of the event introducing it
        self._last_use = array("Q")       # image id -> index of the last store/load naming it
        self._events = np.zeros(WRITER_BLOCK_EVENTS, EVENT_DTYPE)   # not yet spooled
        self._buffered = 0
        self._n_events = 0
        self._resident = [{} for _ in range(MAX_SWAPFILES)]  # per swap type: offset -> image id
        self._closed = False

    @property
    def description(self):
        return self._description

    @description.setter
    def description(self, text):
        self._encoded_description = check_description(text)
        self._description = text

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def store(self, swap_type, offset, page, ts=0):
        self._check_event(swap_type, offset, ts)
        page = bytes(page)
        if len(page) != self.page_size:
            raise ValueError(f"page is {len(page)} bytes, expected {self.page_size}")
        digest = hashlib.blake2b(page, digest_size=16).digest()
        image = self._image_ids.get(digest)
        if image is None:
            # Ids are handed out at first reference, which is the order the
            # format requires, so no renumbering is needed at close.
            image = len(self._first_use)
            self._image_ids[digest] = image
            self._spool.write(page)
            self._first_use.append(self._n_events)
            self._last_use.append(self._n_events)
        else:
            self._last_use[image] = self._n_events
        self._resident[swap_type][offset] = image
        self._append(STORE, swap_type, image, offset, ts)

    def load(self, swap_type, offset, ts=0):
        self._check_event(swap_type, offset, ts)
        image = self._resident[swap_type].get(offset, NO_IMAGE)
        if image != NO_IMAGE:
            self._last_use[image] = self._n_events
        self._append(LOAD, swap_type, image, offset, ts)

    def drop_clean(self, swap_type, offset, ts=0):
        """A clean page loaded from the slot left RAM; the slot keeps its image."""
        self._check_event(swap_type, offset, ts)
        self._append(DROP_CLEAN, swap_type, NO_IMAGE, offset, ts)

    def invalidate_page(self, swap_type, offset, ts=0):
        self._check_event(swap_type, offset, ts)
        self._resident[swap_type].pop(offset, None)
        self._append(INVALIDATE_PAGE, swap_type, NO_IMAGE, offset, ts)

    def invalidate_area(self, swap_type, ts=0):
        self._check_event(swap_type, 0, ts)
        self._resident[swap_type].clear()
        self._append(INVALIDATE_AREA, swap_type, NO_IMAGE, 0, ts)

    def close(self):
        """Write the trace to a temporary name and rename it into place."""
        if self._closed:
            return
        self._closed = True
        try:
            self._spool_events()
            with ReplacingFile(self.path) as out:
                self._write(out.file)
        finally:
            self._close_spools()

    def abort(self):
        """Drop everything recorded; no file is written."""
        self._closed = True
        self._close_spools()

    def _close_spools(self):
        self._spool.close()
        self._event_spool.close()

    def _check_event(self, swap_type, offset, ts):
        if self._closed:
            raise ValueError("trace writer is closed")
        if not 0 <= swap_type < MAX_SWAPFILES:
            raise ValueError(f"swap type {swap_type} out of range 0..{MAX_SWAPFILES - 1}")
        if not 0 <= offset < MAX_OFFSET:
            raise ValueError(f"offset {offset} out of range 0..2**50-1")
        if not 0 <= ts < 1 << 64:
            raise ValueError(f"timestamp {ts} out of range")
        if ts and not self.timestamps:
            raise ValueError("timestamp given to a writer created without timestamps=True")

    def _append(self, op, swap_type, image, offset, ts):
        self._events[self._buffered] = (op, swap_type, 0, image, offset, ts)
        self._buffered += 1
        self._n_events += 1
        if self._buffered == len(self._events):
            self._spool_events()

    def _spool_events(self):
        self._event_spool.write(self._events[:self._buffered].tobytes())
        self._buffered = 0

    def _header(self):
        description = self._encoded_description
        flags = FLAG_TIMESTAMPS if self.timestamps else 0
        fixed = _HEADER.pack(MAGIC, VERSION, flags, self.page_size, len(description))
        return fixed + description + _U32.pack(zlib.crc32(fixed + description))

    def _cut_blocks(self, first_use):
        """Split events into (start, end, first_image, end_image) blocks of at
        most WRITER_BLOCK_EVENTS events introducing at most WRITER_BLOCK_IMAGES images."""
        blocks = []
        start, image = 0, 0
        while start < self._n_events:
            end = min(start + WRITER_BLOCK_EVENTS, self._n_events)
            image_end = int(np.searchsorted(first_use, end))
            if image_end - image > WRITER_BLOCK_IMAGES:
                image_end = image + WRITER_BLOCK_IMAGES
                # the next image's first event opens the next block
                end = int(first_use[image_end])
            blocks.append((start, end, image, image_end))
            start, image = end, image_end
        return blocks

    def _write(self, out):
        out.write(self._header())
        first_use = np.array(self._first_use, dtype=np.uint64)
        last_use = np.array(self._last_use, dtype=np.uint64)
        release_order = np.argsort(last_use, kind="stable")
        sorted_last_use = last_use[release_order]
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        self._spool.seek(0)
        self._event_spool.seek(0)
        for start, end, image, image_end in self._cut_blocks(first_use):
            images = self._spool.read((image_end - image) * self.page_size)
            events = self._event_spool.read((end - start) * EVENT_DTYPE.itemsize)
            low, high = np.searchsorted(sorted_last_use, [start, end])
            release = release_order[low:high].astype("<u4")
            raw = b"".join((images, events, release.tobytes()))
            payload = compressor.compress(raw)
            out.write(_BLOCK_HEADER.pack(BLOCK_MAGIC, image_end - image, end - start,
                                         len(release), len(payload), zlib.crc32(payload)))
            out.write(payload)
        counts = _COUNTS.pack(self._n_events, len(first_use))
        out.write(END_MAGIC + counts + _U32.pack(zlib.crc32(counts)))


class TraceReader:
    """Reads a trace in one streaming pass, validating everything it reads.

    The header is read and checked on construction; each iteration reopens the
    file, so a reader can be iterated more than once, and the file must be a
    regular one.  max_memory bounds the page image bytes held at once (the
    default: DEFAULT_MAX_MEMORY, or what set_default_max_memory() made it);
    a trace that needs more is a TraceError at the block that would pass it.
    """

    def __init__(self, path, expect_page_size=PAGE_SIZE, max_memory=None):
        self.path = os.fspath(path)
        self.max_memory = (_default_max_memory if max_memory is None
                           else check_max_memory(max_memory))
        self._live = {}
        self._images_defined = 0
        require_file(self.path, "a trace", "it is read more than once")
        with open(self.path, "rb") as f:
            self._read_header(f, expect_page_size)
            self._data_start = f.tell()

    def event_count(self):
        """The trailer's event count, read ahead of the events (for progress
        and sampling); None when the file has no valid trailer, which
        iteration then reports as an error where it finds it."""
        counts = self._trailer_counts()
        return counts and counts[0]

    def image_count(self):
        """The trailer's count of distinct page images, read ahead as
        event_count() is (for sampling the pages); None without a trailer."""
        counts = self._trailer_counts()
        return counts and counts[1]

    def _trailer_counts(self):
        tail = 4 + _COUNTS.size + 4
        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() - self._data_start < tail:
                return None
            f.seek(-tail, os.SEEK_END)
            trailer = f.read(tail)
        counts, (crc,) = trailer[4:-4], _U32.unpack(trailer[-4:])
        if trailer[:4] != END_MAGIC or crc != zlib.crc32(counts):
            return None
        return _COUNTS.unpack(counts)

    @property
    def live_images(self):
        """Page images held right now: those some current or later event still names."""
        return len(self._live)

    @property
    def images_defined(self):
        """Images the blocks read so far have defined (the trailer's total once done)."""
        return self._images_defined

    def __iter__(self):
        """Yield (op, swap_type, offset, image, ts); image is the page bytes or None,
        the same bytes object for the same id while it is alive."""
        for events, images in self.blocks():
            for (op, swap_type, image, offset), ts in zip(columns(events), events["ts"].tolist()):
                yield op, swap_type, offset, images.get(image), ts

    def blocks(self, ahead=None):
        """Yield a Block per block: (events, images), a read-only EVENT_DTYPE
        array and a read-only mapping id -> page bytes of every image alive
        for this block (it changes once the next block is requested).  A
        helper thread reads, checks and decompresses the next block while
        this one is used.

        With `ahead`, the helper thread also calls ahead(new images) on the
        list of images a block introduces; the Block carries what it
        returned (`ahead`) and the id of its first new image (`first_image`)."""
        self._live = live = {}
        self._images_defined = 0
        decoded = _with_work_ahead(_prefetched(self._decoded_blocks()), ahead)
        if ahead is not None:
            decoded = _prefetched(decoded)          # a thread of its own
        for images, events, release, done in decoded:
            first = self._images_defined
            live.update(zip(range(first, first + len(images)), images))
            self._images_defined = first + len(images)
            del images      # the live set holds them; a released one goes with its release
            yield Block(events, MappingProxyType(live), first, done)
            for image in release:
                del live[image]

    def _decoded_blocks(self):
        """Yield (new images, events, release list) per block, every rule of
        the format checked; ends after a valid trailer.  It keeps its own
        tally of the ids defined and alive, so it can run ahead of blocks()."""
        state = _BlockState()
        with open(self.path, "rb") as f:
            self._file_size = os.fstat(f.fileno()).st_size
            f.seek(self._data_start)
            while True:
                at = f.tell()
                magic = f.read(4)
                if magic == END_MAGIC:
                    self._read_trailer(f, at, state)
                    return
                if len(magic) < 4:
                    raise TraceError("truncated trace: no trailer", at)
                if magic != BLOCK_MAGIC:
                    raise TraceError(f"bad block magic {magic!r}", at)
                yield self._read_block(f, at, state)

    def _read_header(self, f, expect_page_size):
        fixed = read_exact(f, _HEADER.size, "header")
        magic, version, flags, page_size, description_length = _HEADER.unpack(fixed)
        if magic == RECORDING_MAGIC:
            raise TraceError(
                f"{self.path} is a recording (of `zswapsim trace record`), not a trace; make a "
                f"trace of it with: zswapsim trace synth --recording {shlex.quote(self.path)} "
                "--ram SIZE -o OUTPUT.trace  (SIZE: the RAM the recorded program had, e.g. 64M)")
        if magic != MAGIC:
            raise TraceError("not a zswapsim trace (bad magic)", 0)
        if version not in LAST_OP:
            raise TraceError(f"unsupported trace version {version}", 8)
        if flags & ~FLAG_TIMESTAMPS:
            raise TraceError(f"unknown header flags {flags:#x}", 10)
        if page_size not in PAGE_SIZES:
            raise TraceError(f"invalid page size {page_size}", 12)
        if description_length > MAX_DESCRIPTION:
            raise TraceError(
                f"description length {description_length} exceeds {MAX_DESCRIPTION}", 16)
        description = read_exact(f, description_length, "description")
        (crc,) = _U32.unpack(read_exact(f, 4, "header CRC"))
        if crc != zlib.crc32(fixed + description):
            raise TraceError("header CRC mismatch", _HEADER.size + description_length)
        try:
            self.description = description.decode("utf-8")
        except UnicodeDecodeError:
            raise TraceError("description is not valid UTF-8", _HEADER.size) from None
        if expect_page_size is not None and page_size != expect_page_size:
            raise TraceError(f"page size {page_size}, expected {expect_page_size}", 12)
        self.version = version
        self.page_size = page_size
        self.has_timestamps = bool(flags & FLAG_TIMESTAMPS)

    def _read_block(self, f, at, state):
        """Read, check and decode the block at `at`; return its new images,
        events and release list, and account for them in `state`."""
        fields = read_exact(f, _BLOCK_HEADER.size - 4, "block header")
        n_images, n_events, n_release, payload_length, payload_crc = struct.unpack("<5I", fields)
        if n_images > MAX_BLOCK_IMAGES or n_images * self.page_size > MAX_BLOCK_IMAGE_BYTES:
            raise TraceError(f"block defines {n_images} images, too many", at + 4)
        if n_events > MAX_BLOCK_EVENTS:
            raise TraceError(f"block holds {n_events} events, limit {MAX_BLOCK_EVENTS}", at + 8)
        if n_release > MAX_BLOCK_RELEASES:
            raise TraceError(f"block releases {n_release} images, limit {MAX_BLOCK_RELEASES}",
                             at + 12)
        images_size = n_images * self.page_size
        events_size = n_events * EVENT_DTYPE.itemsize
        raw_size = images_size + events_size + n_release * 4
        if payload_length > raw_size + PAYLOAD_SLACK:
            raise TraceError(f"payload length {payload_length} too large for {raw_size} raw bytes",
                             at + 16)
        self._check_memory(n_images, at, state)
        payload_at = at + _BLOCK_HEADER.size
        # Checked before reading, so a short file claiming a large payload
        # costs no allocation.
        if payload_length > self._file_size - payload_at:
            raise TraceError(f"truncated block payload: {max(self._file_size - payload_at, 0)} "
                             f"of {payload_length} bytes", payload_at)
        try:
            payload = read_exact(f, payload_length, "block payload")
            if zlib.crc32(payload) != payload_crc:
                raise TraceError("block payload CRC mismatch", payload_at)
            images, events, release = _decoded_payload(
                payload, self.page_size, (n_images, n_events, n_release), payload_at)
        except MemoryError:
            raise TraceError(f"out of memory decoding the block ({n_images} new page images, "
                             f"{len(state.live)} live); --max-trace-memory SIZE bounds what "
                             "a trace may make the reader hold", at) from None
        state.live.update(range(state.defined, state.defined + n_images))
        state.defined += n_images
        self._check_events(events, at, state)
        release = release.tolist()
        self._check_release(release, at, state)
        state.live.difference_update(release)
        state.recent_releases.append(len(release))
        state.events += n_events
        return images, events, release

    def _check_memory(self, n_images, at, state):
        """Refuse the block at `at` if decoding it would make this reader hold
        more than max_memory of page images: the live set, the block's new
        images, and the images the blocks decoded ahead may still hold
        because their releases are not yet applied."""
        block = n_images * self.page_size
        if block > self.max_memory:
            raise TraceError(f"block defines {n_images} images ({block:,} bytes), more than "
                             f"the reader's bound of {self.max_memory:,} bytes "
                             "(--max-trace-memory)", at + 4)
        held = (len(state.live) + n_images + sum(state.recent_releases)) * self.page_size
        if held > self.max_memory:
            raise TraceError(f"the trace needs {held:,} bytes of page images at once here "
                             f"({len(state.live) + n_images} live), more than the reader's "
                             f"bound of {self.max_memory:,} bytes (--max-trace-memory)", at)

    def _check_events(self, events, at, state):
        """Reject the block at `at` if any event breaks the format's rules."""
        op, image = events["op"], events["image"]
        named = image != NO_IMAGE
        imageless = (op == INVALIDATE_PAGE) | (op == INVALIDATE_AREA) | (op == DROP_CLEAN)
        rules = [
            ((op < STORE) | (op > LAST_OP[self.version]),
             lambda i: f"unknown op {op[i]}"),
            (events["reserved"] != 0, lambda i: "nonzero reserved field"),
            (events["swap_type"] >= MAX_SWAPFILES,
             lambda i: f"swap type {events['swap_type'][i]} out of range"),
            (events["offset"] >= MAX_OFFSET,
             lambda i: f"offset {events['offset'][i]} out of range"),
            ((op == INVALIDATE_AREA) & (events["offset"] != 0),
             lambda i: "invalidate_area with a nonzero offset"),
            ((op == STORE) & ~named, lambda i: "store without an image"),
            (imageless & named, lambda i: f"{OP_NAMES[int(op[i])]} naming an image"),
            (named & (image >= state.defined),
             lambda i: f"image {image[i]} not yet defined"),
        ]
        if not self.has_timestamps:
            rules.append((events["ts"] != 0, lambda i: "timestamp in a trace without timestamps"))
        for broken, describe in rules:
            if broken.any():
                index = int(np.argmax(broken))
                raise TraceError(f"{describe(index)} in event {index} of the block", at)
        for image_id in np.unique(image[named]).tolist():
            if image_id not in state.live:
                index = int(np.argmax(image == image_id))
                raise TraceError(
                    f"image {image_id} already released in event {index} of the block", at)

    def _check_release(self, release, at, state):
        released = set()
        for image_id in release:
            if image_id >= state.defined:
                raise TraceError(f"release of undefined image {image_id} in the block", at)
            if image_id not in state.live or image_id in released:
                raise TraceError(f"release of already released image {image_id} in the block", at)
            released.add(image_id)

    def _read_trailer(self, f, at, state):
        counts = read_exact(f, _COUNTS.size, "trailer")
        (crc,) = _U32.unpack(read_exact(f, 4, "trailer CRC"))
        if crc != zlib.crc32(counts):
            raise TraceError("trailer CRC mismatch", at + 4 + _COUNTS.size)
        total_events, total_images = _COUNTS.unpack(counts)
        if total_events != state.events:
            raise TraceError(f"trailer counts {total_events} events, trace has {state.events}",
                             at + 4)
        if total_images != state.defined:
            raise TraceError(
                f"trailer counts {total_images} images, trace has {state.defined}", at + 12)
        if f.read(1):
            raise TraceError("bytes after the trailer", at + 8 + _COUNTS.size)


def columns(events):
    """(op, swap_type, image, offset) of each event of a block, as Python ints:
    a column at a time, three times faster than the records' tolist()."""
    return zip(events["op"].tolist(), events["swap_type"].tolist(), events["image"].tolist(),
               events["offset"].tolist())


_END = object()


class _BlockState:
    """What a reader has seen so far: image ids defined and still alive, events."""

    __slots__ = ("defined", "live", "events", "recent_releases")

    def __init__(self):
        self.defined = 0
        self.live = set()
        self.events = 0
        # Release counts of the last blocks: what the caller may not have dropped yet.
        self.recent_releases = deque(maxlen=READ_AHEAD_BLOCKS)


class Block(namedtuple("Block", "events images")):
    """A block as TraceReader.blocks yields it: (events, images), with the
    id of the first image it defines and what the reader's work ahead
    returned for its new images (None without)."""

    def __new__(cls, events, images, first_image=0, ahead=None):
        block = super().__new__(cls, events, images)
        block.first_image, block.ahead = first_image, ahead
        return block


def _with_work_ahead(decoded, ahead):
    """Decoded blocks with ahead(new images) added to each: None without
    `ahead`, or for a block that brings no image."""
    try:
        for images, events, release in decoded:
            yield images, events, release, ahead(images) if ahead is not None and images else None
    finally:
        decoded.close()


def _prefetched(items, depth=1):
    """Yield what the iterator `items` yields, produced by a helper thread at
    most `depth` items ahead of the one in use, and raise where it raised.
    Reading and zstd decompression release the GIL, so on a second core a
    trace block is decoded while the replayer works through the one before
    it.  Stopping early (close, an exception, garbage collection) stops the
    thread."""
    handoff = queue.Queue()
    room = threading.Semaphore(depth)       # items the helper may produce ahead
    stop = threading.Event()

    def wait_for_room():
        while not room.acquire(timeout=0.05):
            if stop.is_set():
                return False
        return not stop.is_set()

    def produce():
        try:
            while wait_for_room():
                item = next(items, _END)
                handoff.put((item is not _END, item))
                if item is _END:
                    return
        except BaseException as error:     # handed to the consumer, raised there
            handoff.put((False, error))
        finally:
            items.close()

    worker = threading.Thread(target=produce, name="trace-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            more, item = handoff.get()
            if not more:
                if item is not _END:
                    raise item
                return
            room.release()
            yield item
    finally:
        stop.set()
        worker.join()


_default_max_memory = DEFAULT_MAX_MEMORY


def check_max_memory(size):
    """A reader's bound on page image bytes, checked: a whole number, at
    least one 4096-byte page."""
    if not isinstance(size, int) or isinstance(size, bool) or size < PAGE_SIZE:
        raise ConfigError(f"the trace memory bound must be at least {PAGE_SIZE} bytes, "
                          f"not {size!r}")
    return size


def set_default_max_memory(size):
    """Make `size` the max_memory of every TraceReader made without one from
    now on, here and in the worker processes forked later (the CLI's
    --max-trace-memory)."""
    global _default_max_memory
    _default_max_memory = check_max_memory(size)


def check_description(description):
    """A description as the header stores it (UTF-8 bytes), refused in one
    line when it is longer than the format allows or cannot be encoded."""
    try:
        encoded = description.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError("the description is not valid UTF-8") from None
    if len(encoded) > MAX_DESCRIPTION:
        raise ConfigError(f"the description is {len(encoded)} bytes, the format holds at most "
                          f"{MAX_DESCRIPTION}")
    return encoded


def require_file(path, what, why, block_devices=False):
    """Refuse, before opening it, an input that is not a regular file (or,
    with block_devices, a block device): opening a FIFO without a writer
    blocks, and a pipe or /dev/zero may never end."""
    mode = os.stat(path).st_mode
    if not (stat.S_ISREG(mode) or block_devices and stat.S_ISBLK(mode)):
        kinds = "a regular file or block device" if block_devices else "a regular file"
        raise TraceError(f"{path}: not {kinds}; {what} must be one, as {why} "
                         "(save a pipe's output to a file first)")


def read_exact(f, size, what):
    """Read exactly `size` bytes or report where `what` was cut short."""
    at = f.tell()
    data = f.read(size)
    if len(data) != size:
        raise TraceError(f"truncated {what}: {len(data)} of {size} bytes", at)
    return data


def _decoded_payload(payload, page_size, counts, at):
    """The new images (one bytes object each), events and release list of a
    block payload that must decompress to exactly what `counts` (n_images,
    n_events, n_release) make.  The frame is decoded as a stream, the images
    DECODE_CHUNK_BYTES at a time, so the block is never held twice (payload
    aside): a frame of zeros that declares 256 MiB costs 256 MiB of images
    and one chunk more.  A chunk is one call that releases the GIL, where a
    page a time would make the replaying thread hand the GIL back and forth
    at every page (a replay ten per cent slower)."""
    n_images, n_events, n_release = counts
    size = n_images * page_size + n_events * EVENT_DTYPE.itemsize + n_release * 4
    what = "block payload"
    try:
        declared = zstandard.frame_content_size(payload)
        if declared not in (-1, size):
            raise TraceError(f"{what} declares {declared} bytes, expected {size}", at)
        if _frame_length(payload) != len(payload):
            raise TraceError(f"corrupt {what} (bytes after its zstd frame)", at)
        stream = zstandard.ZstdDecompressor().stream_reader(payload, read_size=len(payload))

        def take(length):
            data = stream.read(length)
            while len(data) < length:
                more = stream.read(length - len(data))
                if not more:
                    raise TraceError(f"{what} decompresses to {stream.tell()} bytes, "
                                     f"expected {size}", at)
                data += more
            return data

        images, chunk_pages = [], max(1, DECODE_CHUNK_BYTES // page_size)
        for first in range(0, n_images, chunk_pages):
            chunk = take(min(chunk_pages, n_images - first) * page_size)
            images += [chunk[start:start + page_size]
                       for start in range(0, len(chunk), page_size)]
        events = np.frombuffer(take(n_events * EVENT_DTYPE.itemsize), EVENT_DTYPE)
        release = np.frombuffer(take(n_release * 4), "<u4")
        if stream.read(1):
            raise TraceError(f"corrupt {what} (more than {size} bytes)", at)
    except zstandard.ZstdError as error:
        raise TraceError(f"corrupt {what} ({error})", at) from None
    return images, events, release


def _frame_length(payload):
    """Bytes of `payload` that its first zstd frame spans, from the frame's
    block headers (RFC 8878, 3.1.1): the frame header, each block's 3-byte
    header and contents (one byte for an RLE block), the optional checksum."""
    if payload[:4] != ZSTD_FRAME_MAGIC:
        raise zstandard.ZstdError("not a zstd frame")
    at = zstandard.frame_header_size(payload)
    while True:
        if at + 3 > len(payload):
            raise zstandard.ZstdError("frame cut short")
        block_header = int.from_bytes(payload[at:at + 3], "little")
        last, kind, length = block_header & 1, (block_header >> 1) & 3, block_header >> 3
        if kind == 3:
            raise zstandard.ZstdError("reserved block type")
        at += 3 + (1 if kind == 1 else length)
        if last:
            break
    return at + (4 if zstandard.get_frame_parameters(payload).has_checksum else 0)


def decompress_exact(payload, size, at, what="block payload"):
    """Decompress a zstd frame (`what`) that must hold exactly `size` bytes.

    The frame's declared content size is checked first because python-zstandard
    allocates whatever a frame declares, ignoring max_output_size.
    """
    try:
        declared = zstandard.frame_content_size(payload)
        if declared not in (-1, size):
            raise TraceError(f"{what} declares {declared} bytes, expected {size}", at)
        raw = zstandard.ZstdDecompressor().decompress(
            payload, max_output_size=max(size, 1), allow_extra_data=False)
    except zstandard.ZstdError as error:
        raise TraceError(f"corrupt {what} ({error})", at) from None
    if len(raw) != size:
        raise TraceError(f"{what} decompresses to {len(raw)} bytes, expected {size}",
                         at)
    return raw
