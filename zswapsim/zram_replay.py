"""A trace played against a zram swap device: each store writes the page
at its offset, each load reads it back (checked against the trace), each
invalidation is the swap core's slot-free notify.  zram is one swap area,
so a trace must use one swap type."""

from .errors import TraceError
from .replay import VerifyError
from .trace import INVALIDATE_AREA, INVALIDATE_PAGE, LOAD, STORE, TraceReader


def zram_replay(device, trace_path, progress=None):
    swap_type_seen = None
    written = set()
    for events, (op, swap_type, offset, image, _ts) in enumerate(TraceReader(trace_path), 1):
        if swap_type_seen is None:
            swap_type_seen = swap_type
        elif swap_type != swap_type_seen:
            raise TraceError(f"zram is one swap area, but the trace uses swap types "
                             f"{swap_type_seen} and {swap_type} (event {events})")
        if op == STORE:
            device.write(offset, image)
            written.add(offset)
        elif op == LOAD:
            page = device.read(offset)
            if offset in written and page != image:
                raise VerifyError(f"verify failed at event {events}: zram read of index "
                                  f"{offset} returned other bytes than were written")
        elif op == INVALIDATE_PAGE:
            device.discard(offset)
            written.discard(offset)
        elif op == INVALIDATE_AREA:
            for index in sorted(written):
                device.discard(index)
            written.clear()
        if progress is not None and events % 256 == 0:
            progress(events)
