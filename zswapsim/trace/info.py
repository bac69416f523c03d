"""Summarise a trace: what kind of workload it records.

The numbers are the ones that predict how zswap will treat the workload:
how many pages it stores and reloads, how many distinct images exist (the
upper bound on compression work), how many stored pages are zero or
same-filled (which zswap keeps without compressing), how many swap slots
it touches, and how the other stored pages compress: a histogram of lz4
and zstd output lengths in 256-byte bins over the store events (each
distinct image compressed once), the last bin holding outputs of 4096 bytes
or more, which 6.1's zswap cannot keep.  Pure data; the CLI renders it,
through printable() for text the trace itself carries.
"""

import numpy as np

from ..compress import get_compressor
from ..memory import same_filled_word
from .format import OP_NAMES, STORE, TraceReader

_UNSEEN, _MIXED, _SAME_FILLED, _ZERO = 0, 1, 2, 3
_SLOT_SHIFT = 50  # offsets are below 2**50, so (swap_type << 50) | offset names a slot
SIZE_BIN = 256
SIZE_BINS = 4096 // SIZE_BIN + 1   # the last bin: 4096 bytes and more
HISTOGRAM_COMPRESSORS = ("lz4", "zstd")


def trace_info(path):
    """Read the whole trace once and return its summary as a dict.

    Keys: version, page_size, description, has_timestamps; events (count per
    op name); distinct_images; zero_pages and same_filled_pages, counted over
    store events (a zero page is also same-filled); zero_share and
    same_filled_share of the stores; footprint, the number of distinct
    (swap_type, offset) slots stored to; compressed_sizes, per compressor
    the store counts per SIZE_BIN-byte bin of output length and the mean
    length, over stores of pages that are not same-filled.
    """
    reader = TraceReader(path, expect_page_size=None)
    zero_page = bytes(reader.page_size)
    compressors = [get_compressor(name) for name in HISTOGRAM_COMPRESSORS]
    kinds = np.zeros(1024, np.uint8)  # image id -> _UNSEEN/_MIXED/_SAME_FILLED/_ZERO
    lengths = np.zeros((len(compressors), 1024), np.int64)    # image id -> output length
    histograms = np.zeros((len(compressors), SIZE_BINS), np.int64)
    length_sums = np.zeros(len(compressors), np.int64)
    events_by_op = np.zeros(max(OP_NAMES) + 1, np.int64)
    zero_pages = same_filled_pages = 0
    footprint = set()
    for events, images in reader.blocks():
        events_by_op += np.bincount(events["op"], minlength=max(OP_NAMES) + 1)
        stores = events[events["op"] == STORE]
        stored_ids = stores["image"].astype(np.int64)
        if stored_ids.size == 0:
            continue
        kinds = _grown(kinds, int(stored_ids.max()) + 1)
        if lengths.shape[1] < len(kinds):
            missing = len(kinds) - lengths.shape[1]
            lengths = np.hstack([lengths, np.zeros((len(compressors), missing), np.int64)])
        for image_id in np.unique(stored_ids[kinds[stored_ids] == _UNSEEN]).tolist():
            page = images[image_id]
            if page == zero_page:
                kinds[image_id] = _ZERO
            elif same_filled_word(page) is not None:
                kinds[image_id] = _SAME_FILLED
            else:
                kinds[image_id] = _MIXED
                for c, compressor in enumerate(compressors):
                    lengths[c, image_id] = len(compressor.compress(page))
        stored_kinds = kinds[stored_ids]
        mixed_ids = stored_ids[stored_kinds == _MIXED]
        for c in range(len(compressors)):
            mixed_lengths = lengths[c, mixed_ids]
            histograms[c] += np.bincount(np.minimum(mixed_lengths // SIZE_BIN, SIZE_BINS - 1),
                                         minlength=SIZE_BINS)
            length_sums[c] += int(mixed_lengths.sum())
        zero_pages += int(np.count_nonzero(stored_kinds == _ZERO))
        same_filled_pages += int(np.count_nonzero(stored_kinds >= _SAME_FILLED))
        swap_types = stores["swap_type"].astype(np.uint64)
        slots = (swap_types << np.uint64(_SLOT_SHIFT)) | stores["offset"]
        footprint.update(np.unique(slots).tolist())
    stores = int(events_by_op[STORE])
    compressed = int(histograms[0].sum())
    return {
        "version": reader.version,
        "page_size": reader.page_size,
        "description": reader.description,
        "has_timestamps": reader.has_timestamps,
        "events": {name: int(events_by_op[op]) for op, name in OP_NAMES.items()},
        "distinct_images": reader.images_defined,
        "zero_pages": zero_pages,
        "same_filled_pages": same_filled_pages,
        "zero_share": zero_pages / stores if stores else 0.0,
        "same_filled_share": same_filled_pages / stores if stores else 0.0,
        "footprint": len(footprint),
        "compressed_sizes": {
            "bin_bytes": SIZE_BIN,
            "pages": compressed,
            **{compressor.name: {
                "histogram": histograms[c].tolist(),
                "mean": float(length_sums[c]) / compressed if compressed else None,
            } for c, compressor in enumerate(compressors)},
        },
    }


def printable(text):
    """`text` safe to print on a terminal: every character that is not
    printable (controls such as ESC, which would let a crafted description
    clear or recolour the screen, line breaks, bidi overrides) written as
    its Python escape, e.g. \\x1b, \\n, \\u202e."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _grown(array, size):
    """`array` with room for at least `size` entries, doubling to keep growth cheap."""
    if size <= len(array):
        return array
    grown = np.zeros(max(size, 2 * len(array)), array.dtype)
    grown[:len(array)] = array
    return grown
