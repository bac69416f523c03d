"""Drive a trace through one or more configured zswaps and account for
every page.

The replayer plays the swap core: each trace event becomes the frontswap
call the kernel would make.  Several configurations ("lanes") can ride one
pass over the trace, each with its own Zswap, RAM and swap device; lanes
with the same compressor share one compression cache, so each distinct page
is compressed once per compressor however many allocators it feeds; a
compressor with a batch call (zstd) has each block's new pages compressed
ahead on the trace reader's helper thread, a second core's work while this
one replays the block before.  Lanes never see each other otherwise, so a
lane's result is exactly what a replay of that configuration alone gives.

A page the swap core could not swap out (no free swap slot, or the device
write failed: see faults.py for injecting such failures) stays resident:
its later loads are served from RAM and checked there.

A drop_clean event (a clean page loaded from swap left RAM again) is
nothing to a kernel whose zswap keeps its copy at a load; under exclusive
loads (6.9 on: the profile's exclusive_loads) zswap gave the copy up, so
the page is stored again (Zswap.evict_loaded).  A trace older than the
event cannot say when that happened; a replay that meets a load in one
says so on stderr, once.

With verification on, every load is checked against the page image the
trace says the offset holds, and at the end a conservation check proves
nothing was lost: each offset still live in the trace is in the pool or on
the swap device with the right bytes, and nothing else is.  Pages are
compared by page_key (a 128-bit digest), so the replayer keeps 16 bytes per
live page, not the page.

After the replay, each compressor is timed on a sample of the trace's pages
(cpu_cost.py): this machine's CPU cost, reported beside the counters.
"""

import sys
import time

from . import _engine
from .compress import CompressionCache, NativeCompressionCache, get_compressor, page_key
from .cpu_cost import MEASURED, PageSample, cpu_cost, page_costs
from .errors import ConfigError, TraceError, ZswapsimError
from .config import ZswapConfig, as_config
from .engine import chosen_engine, zswap_class
from .stats import derived
from .trace import (DROP_CLEAN, INVALIDATE_AREA, INVALIDATE_PAGE, LOAD, STORE, TraceReader,
                    columns)
from .trace.format import DROP_CLEAN_VERSION

# What differs between two runs of the same replay: its seconds, and the
# CPU cost measured after it.
TIMING_FIELDS = ("seconds",) + MEASURED

_noted_old_traces = set()   # traces this process has said the old-trace note for


class VerifyError(ZswapsimError):
    """The simulator returned other bytes than were stored: a bug, said loudly."""


def replay(trace_path, config=None, *, verify=True, classes=False, progress=None, engine=None,
           **settings):
    """Replay a trace file through the zswap of `config` (a ZswapConfig),
    or of its settings given as keywords (replay(path, backend="zsmalloc",
    ram="32M")); returns a dict of settings, counters and figures, and with
    `classes` the zsmalloc class table at the end.  `engine` is "python"
    or "native" (engine.py: ZSWAPSIM_ENGINE, else the default)."""
    return replay_lanes(trace_path, [ZswapConfig.of(config, **settings)], verify=verify,
                        classes=classes, progress=progress, engine=engine)[0]


class Lane:
    """One configuration riding the pass: its Zswap (with its own RAM and
    swap device), the pages it kept in RAM because they could not leave
    ((swap type, offset) -> page), the compression cache it shares with
    the lanes that compress alike, and its timeline of pool sizes."""

    __slots__ = ("config", "cache", "zswap", "resident", "timeline")

    def __init__(self, config, cache, classes, zswap_class):
        self.config, self.cache = config, cache
        self.zswap = zswap_class(config, compressor=cache)
        if classes and not self.zswap.has_class_stats():
            raise ConfigError("--classes needs a backend with size classes (zsmalloc), "
                              f"not {config.backend}")
        self.resident = {}
        self.timeline = []

    def store(self, swap_type, offset, image, key, ahead):
        """The swap core's swap-out of `image`; it stays in RAM if it cannot leave."""
        resident = self.resident
        if resident:
            resident.pop((swap_type, offset), None)
        if self.zswap.store(swap_type, offset, image, key, ahead) is None:
            resident[swap_type, offset] = image

    def load(self, swap_type, offset):
        page = self.resident.get((swap_type, offset)) if self.resident else None
        return page if page is not None else self.zswap.load(swap_type, offset)

    def invalidate_page(self, swap_type, offset):
        if self.resident:
            self.resident.pop((swap_type, offset), None)
        self.zswap.invalidate_page(swap_type, offset)

    def invalidate_area(self, swap_type):
        for slot in [slot for slot in self.resident if slot[0] == swap_type]:
            del self.resident[slot]
        self.zswap.invalidate_area(swap_type)

    def drop_clean(self, swap_type, offset):
        """A clean page loaded exclusively from zswap left RAM: it is stored
        again, and stays in RAM if it still cannot leave.  A page this lane
        kept in RAM all along, or read from the swap device or the zero map
        (whose copy stays), needs nothing."""
        zswap = self.zswap
        if (swap_type, offset) in self.resident or zswap.where(swap_type, offset) != "ram":
            return
        page = zswap.peek(swap_type, offset)
        if zswap.evict_loaded(swap_type, offset) is None:
            self.resident[swap_type, offset] = page


class EventLoop:
    """The swap core over a block's events: each event becomes the calls
    the kernel would make on every lane, the expected page of each live
    offset is kept in `live` ({swap type: {offset: page_key}}), and with
    `verify` every load is checked against the trace's image.  `events`
    counts the events run.  zswapsim/_engine/replay.c's Replay is the
    compiled twin (NativeEventLoop), for lanes of native Zswaps."""

    def __init__(self, lanes, exclusive, live, verify, note):
        self.lanes, self.live, self.verify, self.note = lanes, live, verify, note
        self.exclusive_lanes = [lane for lane, flag in zip(lanes, exclusive) if flag]
        self.events = 0

    def run(self, events, images, first_image, aheads, begin, end):
        """Run events[begin:end] of a block whose live images are `images`
        (id -> page), the first of them new in this block `first_image`;
        `aheads` holds per lane its cache's compressions of the block's new
        images made ahead, or None."""
        lanes, live, verify = self.lanes, self.live, self.verify
        lane_ahead = list(zip(lanes, aheads))
        for op, swap_type, image_id, offset in columns(events[begin:end]):
            self.events += 1
            if op == STORE:
                image = images[image_id]
                key = page_key(image)
                new = image_id - first_image
                for lane, results in lane_ahead:
                    lane.store(swap_type, offset, image, key,
                               results[new] if results and 0 <= new < len(results) else None)
                live_offsets = live.get(swap_type)
                if live_offsets is None:
                    live_offsets = live[swap_type] = {}
                live_offsets[offset] = key
            elif op == LOAD:
                if self.note is not None:
                    self.note()
                    self.note = None
                image = images.get(image_id)
                expected = None
                if verify:
                    live_offsets = live.get(swap_type)
                    expected = live_offsets.get(offset) if live_offsets else None
                    if (image is None) != (expected is None):
                        raise inconsistent_load(self.events, swap_type, offset, image, expected)
                for lane in lanes:
                    page = lane.load(swap_type, offset)
                    if verify and page != image:
                        raise load_failure(self.events, swap_type, offset, page, image,
                                           expected)
            elif op == INVALIDATE_PAGE:
                for lane in lanes:
                    lane.invalidate_page(swap_type, offset)
                live.get(swap_type, {}).pop(offset, None)
            elif op == DROP_CLEAN:
                if verify and offset not in live.get(swap_type, ()):
                    raise inconsistent_drop(self.events, swap_type, offset)
                for lane in self.exclusive_lanes:
                    lane.drop_clean(swap_type, offset)
            elif op == INVALIDATE_AREA:
                for lane in lanes:
                    lane.invalidate_area(swap_type)
                live.pop(swap_type, None)


class NativeEventLoop(_engine.Replay):
    """EventLoop in C, over the lanes' compiled Zswaps (replay.c)."""

    def __init__(self, lanes, exclusive, live, verify, note):
        super().__init__([lane.zswap._engine for lane in lanes],
                         [lane.resident for lane in lanes], exclusive, live, verify, note,
                         page_key, load_failure, inconsistent_load, inconsistent_drop)


def replay_lanes(trace_path, configs, verify=True, classes=False, progress=None,
                 timeline_points=0, engine=None):
    """One pass over the trace for every configuration in `configs`
    (ZswapConfigs, or dicts of their settings), in `engine` (as replay's).
    Returns one result dict per configuration, in order.  `progress(events)` is called now and then
    with the events done; `timeline_points` > 0 adds to each result a
    "timeline" of (event, pool pages) samples about that many long."""
    configs = [as_config(config) for config in configs]
    native = chosen_engine(engine) == "native"
    caches, lane_keys = _compression_caches(
        configs, NativeCompressionCache if native else CompressionCache)
    lane_class = zswap_class(engine)
    lanes = [Lane(config, caches[key], classes, lane_class)
             for config, key in zip(configs, lane_keys)]

    reader = TraceReader(trace_path)
    sample = PageSample(reader)
    sample_every = 0
    if timeline_points:
        sample_every = max(1, (reader.event_count() or 1) // timeline_points)
    live = {}           # swap type -> {offset: page_key of the expected image}
    exclusive = [lane.zswap.profile.exclusive_loads for lane in lanes]
    # A trace older than drop_clean loses nothing until its first load.
    note = None
    if any(exclusive) and reader.version < DROP_CLEAN_VERSION:
        kernels = [lane.zswap.profile.name for lane in lanes if lane.zswap.profile.exclusive_loads]
        note = lambda: note_old_trace(trace_path, reader.version, kernels)  # noqa: E731
    batching = [cache for cache in caches.values() if cache.batch is not None]
    # Per lane, the index of its cache's results made ahead, or None.
    ahead_index = [batching.index(lane.cache) if lane.cache in batching else None
                   for lane in lanes]
    loop = (NativeEventLoop if native else EventLoop)(
        lanes, exclusive, live, verify, note)
    # The loop hands back control where a timeline sample or a progress call is due.
    every = [n for n in (sample_every, 256 if progress is not None else 0) if n]
    started = time.perf_counter()
    for block in reader.blocks(_compress_ahead(batching)):
        sample.take(block.images, reader.images_defined)
        done = block.ahead or [()] * len(batching)
        aheads = [None if index is None else done[index] or None for index in ahead_index]
        begin, end = 0, len(block.events)
        while begin < end:
            events = loop.events
            stop = min([end] + [begin + n - events % n for n in every])
            loop.run(block.events, block.images, block.first_image, aheads, begin, stop)
            begin, events = stop, loop.events
            if sample_every and events % sample_every == 0:
                for lane in lanes:
                    lane.timeline.append((events, lane.zswap.pool_pages()))
            if progress is not None and events % 256 == 0:
                progress(events)
    events = loop.events
    for lane in lanes:
        lane.zswap.run_pending_work()
    if progress is not None:
        progress(events)
    elapsed = time.perf_counter() - started
    costs = page_costs({key: cache.compressor for key, cache in caches.items()},
                       sample.pages, elapsed)
    return [_result(trace_path, lane, costs[key], live, verify, events, elapsed, classes,
                    timeline_points)
            for lane, key in zip(lanes, lane_keys)]


def _result(trace_path, lane, cost, live, verify, events, elapsed, classes, timeline_points):
    """A lane's result dict: its settings, counters and figures."""
    config, zswap = lane.config, lane.zswap
    live_pages = check_conservation(zswap, live, verify, lane.resident)
    counts = zswap.counters()
    result = {
        "trace": str(trace_path), "backend": config.backend,
        "compressor": zswap.compressor.name, "kernel": config.kernel,
        "pool_options": zswap.pool_options, "ram_pages": config.ram_pages,
        "max_pool_percent": config.max_pool_percent,
        "accept_threshold_percent": config.accept_threshold_percent,
        "retries": config.retries,
        "same_filled_pages_enabled": zswap.same_filled_pages_enabled,
        "what_if": config.what_if(), "events": events, "live_pages": live_pages,
        "verified": verify, "seconds": round(elapsed, 3),
    }
    result.update(counts)
    result.update(derived(counts))
    result.update(cpu_cost(cost, counts))
    result["resident_pages"] = len(lane.resident)
    if zswap.faults is not None:
        result.update({f"injected_{kind}": n for kind, n in zswap.faults.injected.items()})
    if classes:
        result["classes"] = zswap.class_stats()
    if timeline_points:
        result["timeline"] = lane.timeline + [(events, zswap.pool_pages())]
    return result


def note_old_trace(trace_path, version, kernels):
    """Say once per trace what a trace older than drop_clean cannot tell an
    exclusive-load kernel."""
    if str(trace_path) in _noted_old_traces:
        return
    _noted_old_traces.add(str(trace_path))
    kernels = ", ".join(sorted(set(kernels)))
    print(f"zswapsim: note: {trace_path} is a version {version} trace, older than the "
          "drop_clean event: pages loaded and dropped again are not stored again, so "
          f"under the exclusive loads of Linux {kernels} zswpout and the pool count too few "
          "stores and such pages stay in RAM (swapcache_hits) as if never reclaimed; make "
          "the trace again with `zswapsim trace synth` to have them", file=sys.stderr)


def _compression_caches(configs, cache_class):
    """({key: a cache_class over its compressor}, each config's key).  Lanes
    share a cache when they compress alike: the same compressor object, or named
    compressors of the same identity (lz4 is one under 6.12 and 6.18, two
    under 6.1 and 6.12: their dlen differs).  Each name is looked up once
    per kernel."""
    caches, keys, named = {}, [], {}
    for config in configs:
        name = config.compressor
        if not isinstance(name, str):
            key, compressor = name, name
        elif (name, config.kernel) in named:
            key, compressor = named[name, config.kernel], None
        else:
            compressor = get_compressor(name, kernel=config.kernel)
            key = named[name, config.kernel] = compressor.identity()
        if key not in caches:
            caches[key] = cache_class(compressor)
        keys.append(key)
    return caches, keys


def _compress_ahead(caches):
    """The reader's work ahead for caches whose compressor batches: each
    block's new images compressed on its helper thread, one batch a cache."""
    if not caches:
        return None
    batches = [cache.batch for cache in caches]
    return lambda images: [batch(images) for batch in batches]


def _mismatch(event, swap_type, offset, page, image):
    got = "nothing" if page is None else "a different page"
    want = "nothing" if image is None else "the stored page"
    return (f"verify failed at event {event}: load of type {swap_type} offset {offset} "
            f"returned {got}, the trace expects {want}")


def load_failure(event, swap_type, offset, page, image, expected_key):
    """The error for a load that returned `page` where the trace's image is
    `image`: the trace's own contradiction if the image is not the one its
    store left there, else the simulator's VerifyError."""
    if image is not None and page_key(image) != expected_key:
        return inconsistent_load(event, swap_type, offset, image, expected_key)
    return VerifyError(_mismatch(event, swap_type, offset, page, image))


def inconsistent_load(event, swap_type, offset, image, expected_key):
    """The TraceError for a load that names another image than the trace
    stored at its offset (`expected_key`, None when nothing is stored): the
    trace contradicts itself, so no simulator could have passed it."""
    if expected_key is None:
        what = "names a page, but nothing is stored there"
    elif image is None:
        what = "names no page, but one is stored there"
    else:
        what = "names another page than the one stored there"
    return TraceError(f"trace inconsistent at event {event}: load of type {swap_type} "
                      f"offset {offset} {what}")


def inconsistent_drop(event, swap_type, offset):
    """The TraceError for a drop_clean of an offset the trace holds nothing at."""
    return TraceError(f"trace inconsistent at event {event}: drop_clean of type {swap_type} "
                      f"offset {offset}, but nothing is stored there")


def check_conservation(zswap, live, verify, resident=()):
    """Every live page ({swap type: {offset: page_key}}) that did not stay
    in RAM (`resident`: (swap type, offset) pairs) is in the pool or on the
    swap device (with the right bytes when verifying), and zswap holds
    nothing the trace has freed.  Returns the live pages, resident included."""
    live_pages, unheld = zswap.first_unheld(live, verify, resident)
    if unheld is not None:
        kind, swap_type, offset = unheld
        if kind == "lost":
            raise VerifyError(f"page lost: type {swap_type} offset {offset} is neither "
                              "in the pool nor on the swap device")
        raise VerifyError(f"page corrupted: type {swap_type} offset {offset} holds "
                          "other bytes than were stored")
    held = zswap.slots_in_use() + len(resident)
    if held != live_pages:
        raise VerifyError(f"conservation broken: {live_pages} live pages but zswap holds "
                          f"{zswap.stored_pages}, the swap device {zswap.swapdev.used_slots()} "
                          f"and RAM {len(resident)}")
    return live_pages
