"""Summarise a trace: what kind of workload it records.

The numbers are the ones that predict how zswap will treat the workload:
how many pages it stores and reloads, how many distinct images exist (the
upper bound on compression work), how many stored pages are zero or
same-filled (which zswap keeps without compressing), and how many swap slots
it touches.  Pure data; the CLI renders it.
"""

import numpy as np

from ..memory import same_filled_word
from .format import INVALIDATE_AREA, OP_NAMES, STORE, TraceReader

_UNSEEN, _MIXED, _SAME_FILLED, _ZERO = 0, 1, 2, 3
_SLOT_SHIFT = 50  # offsets are below 2**50, so (swap_type << 50) | offset names a slot


def trace_info(path):
    """Read the whole trace once and return its summary as a dict.

    Keys: version, page_size, description, has_timestamps; events (count per
    op name); distinct_images; zero_pages and same_filled_pages, counted over
    store events (a zero page is also same-filled); footprint, the number of
    distinct (swap_type, offset) slots stored to.
    """
    reader = TraceReader(path, expect_page_size=None)
    zero_page = bytes(reader.page_size)
    kinds = np.zeros(1024, np.uint8)  # image id -> _UNSEEN/_MIXED/_SAME_FILLED/_ZERO
    events_by_op = np.zeros(INVALIDATE_AREA + 1, np.int64)
    zero_pages = same_filled_pages = 0
    footprint = set()
    for events, images in reader.blocks():
        events_by_op += np.bincount(events["op"], minlength=INVALIDATE_AREA + 1)
        stores = events[events["op"] == STORE]
        stored_ids = stores["image"].astype(np.int64)
        if stored_ids.size == 0:
            continue
        kinds = _grown(kinds, int(stored_ids.max()) + 1)
        for image_id in np.unique(stored_ids[kinds[stored_ids] == _UNSEEN]).tolist():
            page = images[image_id]
            if page == zero_page:
                kinds[image_id] = _ZERO
            elif same_filled_word(page) is not None:
                kinds[image_id] = _SAME_FILLED
            else:
                kinds[image_id] = _MIXED
        stored_kinds = kinds[stored_ids]
        zero_pages += int(np.count_nonzero(stored_kinds == _ZERO))
        same_filled_pages += int(np.count_nonzero(stored_kinds >= _SAME_FILLED))
        slots = (stores["swap_type"].astype(np.uint64) << np.uint64(_SLOT_SHIFT)) | stores["offset"]
        footprint.update(np.unique(slots).tolist())
    return {
        "version": reader.version,
        "page_size": reader.page_size,
        "description": reader.description,
        "has_timestamps": reader.has_timestamps,
        "events": {name: int(events_by_op[op]) for op, name in OP_NAMES.items()},
        "distinct_images": reader.images_defined,
        "zero_pages": zero_pages,
        "same_filled_pages": same_filled_pages,
        "footprint": len(footprint),
    }


def _grown(array, size):
    """`array` with room for at least `size` entries, doubling to keep growth cheap."""
    if size <= len(array):
        return array
    grown = np.zeros(max(size, 2 * len(array)), array.dtype)
    grown[:len(array)] = array
    return grown
