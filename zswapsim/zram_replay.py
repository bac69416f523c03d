"""A trace played against a zram swap device, the swap layer's part done
as mm/page_io.c does it.

Each store is a swap-out: the page is written at its offset.  A write zram
refuses (no memory, mem_limit, a page too big for the allocator, an index
past the device) is an I/O error: end_swap_bio_write redirties the page,
so it stays in RAM, in the swap cache, and its loads are served from there
without a zram read until a later store writes it out.  zram itself still
holds what it held at that index before the failed write.  Kernels whose
zram has ->rw_page submit a failed write a second time as a bio
(__swap_writepage), so zram counts it twice.  From 6.12 (the profile's
swap_zero_map) a zero-filled page never reaches zram: the swap layer marks
its slot in the zero map (swpout_zero) and fills a load of it with zeros
(swpin_zero); whatever zram held at that index stays there, unread, until
the slot is freed.  Each invalidation is the swap core's slot-free notify.
A drop_clean (a clean page read from swap left RAM again) is nothing: only
zswap's load is exclusive (zswap_load erases its entry when reading into
the swap cache, 6.9 on); a read from zram (swap_read_folio ->
zram_read_page) leaves the slot's data in place, so the page needs no store.
zram is one swap area, so a trace must use one swap type.

A policy (zram_policy.py) makes its timed sysfs writes as the clock
passes their times.  Every load is checked against the trace, and at the end every live page is
accounted for: resident, in the zero map, or in zram with the bytes last
written there; and zram holds nothing the trace has freed.
"""

from .compress import page_key
from .memory import PAGE_SIZE
from .errors import TraceError
from .replay import VerifyError, inconsistent_drop, inconsistent_load
from .trace import DROP_CLEAN, INVALIDATE_AREA, INVALIDATE_PAGE, LOAD, STORE, TraceReader
from .zram_writeback import NSEC_PER_SEC

ZERO_PAGE = bytes(PAGE_SIZE)


def zram_replay(device, trace_path, progress=None, at_end=None, sample=None, policy=None):
    """Play the trace at `trace_path` on `device` (a Zram); returns the swap
    layer's view at the end: live pages and the resident ones among them,
    and where the kernel has the zero map, the pages in it and its
    swpout_zero and swpin_zero.  The device's clock follows the trace's
    timestamps, or in a trace without them the event index in seconds.
    `policy` (a zram_policy.Policy, prepared on `device`) runs its actions
    as the clock passes their times, and those due by the last event's
    time after it; `at_end(device)`, if given, runs after the last event
    (sysfs actions), before every page is checked; `sample(event)`, if
    given, after each event (zram_views.MemUsedTimeline)."""
    swap_type_seen = None
    live = {}           # offset -> page_key of the page the trace stored there
    held = {}           # index -> page_key of what zram holds (stale for a resident page)
    resident = {}       # offset -> page whose write failed: redirtied, kept in RAM
    zero_map = set()    # offsets whose page is zero-filled, kept by the swap layer
    zero_events = {"swpout_zero": 0, "swpin_zero": 0}
    reader = TraceReader(trace_path)
    due = float("inf") if policy is None else policy.next_ns
    clock = 0
    for event, (op, swap_type, offset, image, ts) in enumerate(reader, 1):
        clock = ts if reader.has_timestamps else event * NSEC_PER_SEC
        if clock > due:
            policy.run_due(device, clock)
            due = policy.next_ns
        device.clock_ns = clock
        if swap_type_seen is None:
            swap_type_seen = swap_type
        elif swap_type != swap_type_seen:
            raise TraceError(f"zram is one swap area, but the trace uses swap types "
                             f"{swap_type_seen} and {swap_type} (event {event})")
        if op == STORE:
            key = live[offset] = page_key(image)
            zero_map.discard(offset)
            if device.profile.swap_zero_map and image == ZERO_PAGE:
                zero_map.add(offset)
                resident.pop(offset, None)
                zero_events["swpout_zero"] += 1
            elif swap_writepage(device, offset, image):
                held[offset] = key
                resident.pop(offset, None)
            else:
                resident[offset] = image
        elif op == LOAD:
            expected = live.get(offset)
            if (image is None) != (expected is None):
                raise inconsistent_load(event, swap_type, offset, image, expected)
            page = resident.get(offset)
            if offset in zero_map:
                page = ZERO_PAGE
                zero_events["swpin_zero"] += 1
            elif page is None:
                page = swap_readpage(device, offset)
            if image is not None and page != image:
                if page_key(image) != expected:
                    raise inconsistent_load(event, swap_type, offset, image, expected)
                raise VerifyError(f"verify failed at event {event}: zram read of index "
                                  f"{offset} returned other bytes than were written")
        elif op == DROP_CLEAN:
            if offset not in live:
                raise inconsistent_drop(event, swap_type, offset)
        elif op == INVALIDATE_PAGE:
            device.discard(offset)
            for pages in (live, held, resident):
                pages.pop(offset, None)
            zero_map.discard(offset)
        elif op == INVALIDATE_AREA:
            for index in sorted(live):
                device.discard(index)
            for pages in (live, held, resident):
                pages.clear()
            zero_map.clear()
        if sample is not None:
            sample(event)
        if progress is not None and event % 256 == 0:
            progress(event)
    if policy is not None:
        policy.run_due(device, clock, inclusive=True)
        device.clock_ns = clock
    if at_end is not None:
        at_end(device)
    check_zram_conservation(device, live, held, resident, zero_map)
    view = {"live_pages": len(live), "resident_pages": len(resident)}
    if device.profile.swap_zero_map:
        view |= {"zero_map_pages": len(zero_map)} | zero_events
    return view


def swap_writepage(device, index, page):
    """Swap out one page; False when zram refused it (the page stays in RAM)."""
    if device.write(index, page):
        return True
    return device.rw_page and device.write(index, page)     # ->rw_page failed: the bio


def swap_readpage(device, index):
    """Swap in one page (None on an I/O error), with the same bio fallback."""
    page = device.read(index, rw_page=device.rw_page)
    if page is None and device.rw_page:
        page = device.read(index)
    return page


def check_zram_conservation(device, live, held, resident, zero_map=()):
    """Every live page is resident, in the swap layer's zero map, or in zram
    with the right bytes, and zram holds exactly the pages written there and
    not freed since."""
    for offset, key in live.items():
        if offset not in resident and offset not in zero_map and held.get(offset) != key:
            raise VerifyError(f"page lost: index {offset} is neither in zram nor in RAM")
    for index, key in held.items():
        if page_key(device.peek(index)) != key:
            raise VerifyError(f"page corrupted: zram index {index} holds other bytes than "
                              "were last written there")
    if device.stats["pages_stored"] != len(held):
        raise VerifyError(f"conservation broken: zram stores {device.stats['pages_stored']} "
                          f"pages, {len(held)} were written and not freed")
