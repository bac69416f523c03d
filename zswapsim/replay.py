"""Drive a trace through a configured zswap and account for every page.

The replayer plays the swap core: each trace event becomes the frontswap
call the kernel would make.  With verification on, every load is checked
against the page image the trace says the offset holds, and at the end a
conservation check proves nothing was lost: each offset still live in the
trace is in the pool or on the swap device with the right bytes, and
nothing else is.
"""

import time

from .errors import ConfigError, ZswapsimError
from .memory import Memory
from .stats import derived
from .swapdev import SwapDevice
from .trace import INVALIDATE_AREA, INVALIDATE_PAGE, LOAD, STORE, TraceReader
from .zswap import Zswap


class VerifyError(ZswapsimError):
    """The simulator returned other bytes than were stored: a bug, said loudly."""


def replay(trace_path, backend="zbud", compressor="lz4", ram_pages=1 << 20,
           max_pool_percent=20, accept_threshold_percent=90, retries=8, kernel="6.1",
           verify=True, pool_options=None, classes=False):
    """Replay a trace file; returns a dict of settings, counters and figures,
    and with `classes` the zsmalloc class table at the end."""
    zswap = Zswap(backend=backend, compressor=compressor, memory=Memory(ram_pages),
                  swapdev=SwapDevice(), max_pool_percent=max_pool_percent,
                  accept_threshold_percent=accept_threshold_percent, retries=retries,
                  kernel=kernel, pool_options=pool_options)
    if classes and not zswap.has_class_stats():
        raise ConfigError(f"--classes needs a backend with size classes (zsmalloc), not {backend}")
    reader = TraceReader(trace_path)
    live = {}           # swap type -> {offset: expected page image}
    events = 0
    started = time.perf_counter()
    for op, swap_type, offset, image, _ts in reader:
        events += 1
        if op == STORE:
            zswap.store(swap_type, offset, image)
            live.setdefault(swap_type, {})[offset] = image
        elif op == LOAD:
            page = zswap.load(swap_type, offset)
            if verify and page != image:
                raise VerifyError(_mismatch(events, swap_type, offset, page, image))
        elif op == INVALIDATE_PAGE:
            zswap.invalidate_page(swap_type, offset)
            live.get(swap_type, {}).pop(offset, None)
        elif op == INVALIDATE_AREA:
            zswap.invalidate_area(swap_type)
            live.pop(swap_type, None)
    zswap.run_pending_work()
    elapsed = time.perf_counter() - started
    live_pages = check_conservation(zswap, live, verify)

    counts = zswap.counters()
    result = {
        "trace": str(trace_path), "backend": backend, "compressor": zswap.compressor.name,
        "kernel": kernel, "pool_options": zswap.pool_options, "ram_pages": ram_pages, "max_pool_percent": max_pool_percent,
        "accept_threshold_percent": accept_threshold_percent, "retries": retries,
        "events": events, "live_pages": live_pages, "verified": verify,
        "seconds": round(elapsed, 3),
    }
    result.update(counts)
    result.update(derived(counts))
    if classes:
        result["classes"] = zswap.class_stats()
    return result


def _mismatch(event, swap_type, offset, page, image):
    got = "nothing" if page is None else "a different page"
    want = "nothing" if image is None else "the stored page"
    return (f"verify failed at event {event}: load of type {swap_type} offset {offset} "
            f"returned {got}, the trace expects {want}")


def check_conservation(zswap, live, verify):
    """Every live page is in the pool or on the swap device (with the right
    bytes when verifying), and zswap holds nothing the trace has freed."""
    live_pages = 0
    for swap_type, pages in live.items():
        for offset, image in pages.items():
            live_pages += 1
            if zswap.where(swap_type, offset) is None:
                raise VerifyError(f"page lost: type {swap_type} offset {offset} is neither "
                                  "in the pool nor on the swap device")
            if verify and zswap.peek(swap_type, offset) != image:
                raise VerifyError(f"page corrupted: type {swap_type} offset {offset} holds "
                                  "other bytes than were stored")
    held = zswap.stored_pages + zswap.swapdev.used_slots()
    if held != live_pages:
        raise VerifyError(f"conservation broken: {live_pages} live pages but zswap holds "
                          f"{zswap.stored_pages} and the swap device {zswap.swapdev.used_slots()}")
    return live_pages
