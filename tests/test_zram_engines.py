"""zram in both engines: zram.py's Zram (the reference) and NativeZram, its
compiled twin (zswapsim/_engine/zram.c over the compiled allocators and
memory.c).

A hypothesis state machine drives a Python Zram and a NativeZram with the
same operations (writes of random, same-filled, incompressible and
nearly-huge pages, reads, discards, compactions, the clock moving and idle
marking, indexes past the device and below it) under every zram kernel
profile with every allocator that profile allows and the native engine
has, a few compressors and mem_limits; after every step return values,
the bytes read, `stats`, mm_stat, io_stat, bd_stat, debug_stat, every
slot, the RAM used and each pool's audit must agree.  Then every shipped
trace through zram_replay in both engines, with a mem_limit that bites
and one that does not, sampled after each event (zram_views'
MemUsedTimeline), and a timed idle/compact policy.  The same machine runs
once through a build under AddressSanitizer and UBSan.
"""

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import sanitize
from zswapsim.compress import Compressor
from zswapsim.errors import ConfigError, Invalid
from zswapsim.memory import Memory
from zswapsim.profiles import ZRAM_PROFILES
from zswapsim.zpool.base import known_pools
from zswapsim.zram import Zram
from zswapsim.zram_native import NativeZram
from zswapsim.zram_policy import Policy
from zswapsim.zram_replay import zram_replay
from zswapsim.zram_views import MemUsedTimeline

PAGE = 4096
NATIVE_ALLOCATORS = known_pools("native")
TRACES = sorted((Path(__file__).resolve().parents[1] / "traces").glob("*.trace"))


def allowed(kernel, allocator):
    try:
        ZRAM_PROFILES[kernel].check_allocator(allocator)
    except ConfigError:
        return False
    return True


CASES = [(kernel, allocator) for kernel in ZRAM_PROFILES for allocator in NATIVE_ALLOCATORS
         if allowed(kernel, allocator)]


def slots(device):
    return {index: (slot.handle, slot.size, slot.word, slot.huge, slot.ac_time, slot.idle)
            for index, slot in device.slots.items()}


def reports(device):
    return (dict(device.stats), device.mm_stat(), device.io_stat(), device.bd_stat(),
            device.debug_stat())


# -- the differential state machine ---------------------------------------------------------

def _pages():
    """Zeros, same-filled words, incompressible pages (huge: stored whole,
    beyond zbud), pages of 300, 1500, 3150 and 3400 random bytes (under
    huge_class_size, over 4.14's max_zpage_size, over 6.1's 3257 but under
    6.6's 3625), and text."""
    rng = random.Random(2026)
    pages = [bytes(PAGE), bytes(range(8)) * (PAGE // 8), b"\xff" * PAGE,
             rng.randbytes(PAGE), rng.randbytes(PAGE),
             (b"zram keeps compressed pages in RAM " * 120)[:PAGE]]
    for length in (300, 300, 1500, 1500, 1500, 3150, 3400):
        pages.append(rng.randbytes(length) + bytes(PAGE - length))
    return pages


PAGES = _pages()
NR_PAGES = 12
INDEXES = st.integers(-1, NR_PAGES + 1)         # one below the device, two past it


class Engines(RuleBasedStateMachine):
    @initialize(case=st.sampled_from(CASES), compressor=st.sampled_from(["lz4", "lzo",
                                                                          "deflate"]),
                mem_limit=st.sampled_from([0, PAGE, 3 * PAGE, 8 * PAGE]))
    def start(self, case, compressor, mem_limit):
        kernel, allocator = case
        self.devices = [cls(NR_PAGES * PAGE, compressor=compressor, allocator=allocator,
                            mem_limit=mem_limit, kernel=kernel) for cls in (Zram, NativeZram)]
        self.touched = set()

    def both(self, name, *args):
        results = [getattr(device, name)(*args) for device in self.devices]
        assert results[0] == results[1], name
        return results[0]

    @rule(index=INDEXES, page=st.sampled_from(range(len(PAGES))))
    def write(self, index, page):
        self.touched.add(index)
        self.both("write", index, PAGES[page])

    @rule(index=INDEXES)
    def read(self, index):
        self.both("read", index)

    @rule(index=INDEXES, rw_page=st.booleans())
    def read_as_swap_does(self, index, rw_page):
        results = [device.read(index, rw_page=rw_page) for device in self.devices]
        assert results[0] == results[1]

    @rule(index=INDEXES)
    def discard(self, index):
        self.both("discard", index)

    @rule(index=st.sampled_from([-2**70, 2**63, 2**64 + 3]))
    def far_index(self, index):
        self.both("write", index, PAGES[3])
        self.both("read", index)
        self.both("discard", index)

    @rule()
    def compact(self):
        self.both("compact")

    @rule(seconds=st.sampled_from([1, 7, 3600]))
    def tick(self, seconds):
        for device in self.devices:
            device.clock_ns += seconds * 10**9

    @rule(age=st.sampled_from(["all", 0, 5, 3601, 2**70]))
    def mark_idle(self, age):
        try:
            self.both("mark_idle", age)
        except ConfigError as error:        # 4.14: no idle file
            assert "no idle marking" in str(error)

    @invariant()
    def agree(self):
        if not hasattr(self, "devices"):
            return
        python, native = self.devices
        assert reports(native) == reports(python)
        assert slots(native) == slots(python)
        for index in sorted(self.touched):
            assert native.peek(index) == python.peek(index)
        assert native.pool.total_pages() == python.pool.total_pages()
        assert native.memory.used_pages == python.memory.used_pages
        assert native.memory.peak_pages == python.memory.peak_pages
        python.pool.check()
        native.pool.check()


Engines.TestCase.settings = settings(
    max_examples=int(os.environ.get("ZSWAPSIM_DIFFERENTIAL_EXAMPLES", 300)),
    stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TestEngines = Engines.TestCase


def test_every_profile_and_native_allocator_is_a_case():
    assert {kernel for kernel, _ in CASES} == set(ZRAM_PROFILES)
    assert {allocator for _, allocator in CASES} == {"zbud", "zsmalloc", "z3fold", "xvmalloc",
                                                      "zcache-zbud"}


# -- the shipped traces ---------------------------------------------------------------------

CONFIGS = [("6.1", "zsmalloc", 0), ("6.1", "zbud", 2 << 20), ("4.14", "zsmalloc", 2 << 20),
           ("6.6", "zsmalloc", 1 << 20), ("6.12", "zsmalloc", 0), ("6.18", "zbud", 2 << 20)]


def replayed(cls, trace, kernel, allocator, mem_limit, policy=None):
    device = cls(16 << 30, allocator=allocator, mem_limit=mem_limit, kernel=kernel)
    timeline = MemUsedTimeline(device, max_points=64)
    if policy is not None:
        policy = Policy.parse(policy)
        policy.prepare(device)
    view = zram_replay(device, trace, sample=timeline, policy=policy)
    result = {"view": view, "reports": reports(device), "slots": slots(device),
              "timeline": timeline.finish(),
              "policy": None if policy is None else policy.report()}
    result["compacted"] = device.compact()
    result["after_compact"] = device.mm_stat()
    return result


@pytest.mark.parametrize("kernel, allocator, mem_limit", CONFIGS)
@pytest.mark.parametrize("trace", TRACES, ids=lambda path: path.stem)
def test_a_shipped_trace_replays_alike(trace, kernel, allocator, mem_limit):
    """zram_replay (its end-of-run checks included) over each engine: the
    swap layer's view, every report, every slot, the mem_used_total timeline
    and a compaction at the end."""
    python = replayed(Zram, trace, kernel, allocator, mem_limit)
    native = replayed(NativeZram, trace, kernel, allocator, mem_limit)
    assert native == python
    assert python["reports"][0]["pages_stored"] > 0
    if mem_limit:
        assert python["view"]["resident_pages"] > 0         # the limit bites


IDLE_AND_COMPACT = {"action": [{"at": "30s", "every": "200s", "idle": 100},
                               {"at": "500s", "every": "1000s", "compact": True},
                               {"at": "700s", "idle": "all"}]}


@pytest.mark.parametrize("kernel", ["6.1", "6.18"])
def test_a_timed_idle_and_compact_policy_replays_alike(kernel):
    """6.1 marks every slot old enough; 6.18 skips same-filled slots and
    clears the younger ones."""
    trace = TRACES[0]
    python = replayed(Zram, trace, kernel, "zsmalloc", 0, IDLE_AND_COMPACT)
    native = replayed(NativeZram, trace, kernel, "zsmalloc", 0, IDLE_AND_COMPACT)
    assert native == python
    runs = {entry["action"]: entry for entry in python["policy"]}
    assert runs["idle=100"]["marked"] > 0 and runs["compact=1"]["runs"] > 0


# -- what the native device refuses, and hostile callbacks --------------------------------

def test_native_refuses_what_it_does_not_have():
    with pytest.raises(ConfigError, match="its own RAM: give no memory="):
        NativeZram(1 << 20, memory=Memory())
    with pytest.raises(ConfigError, match="no backing device or writeback yet"):
        NativeZram(1 << 20, backing_dev_pages=16)
    with pytest.raises(ConfigError, match="unknown backend 'slab'"):
        NativeZram(1 << 20, allocator="slab")
    device = NativeZram(1 << 20, kernel="6.6")
    for call, what in [(lambda: device.writeback("idle"), "writeback"),
                       (lambda: device.set_writeback_limit(8), "writeback"),
                       (lambda: device.recomp_algorithm("algo=zstd"), "recompression"),
                       (lambda: device.recompress("type=idle"), "recompression")]:
        with pytest.raises(ConfigError, match=f"the native engine's zram has no .*{what} yet"):
            call()
    with pytest.raises(ConfigError, match="action 1 .*: the native engine's zram has no "
                                          "recompression yet"):
        Policy.parse({"action": [{"recompress": "type=idle"}]}).prepare(device)
    with pytest.raises(ValueError, match="a page is 4096 bytes"):
        device.write(0, b"x")
    assert device.stats == Zram(1 << 20, kernel="6.6").stats


class Empty(Compressor):
    """A hostile compressor: nothing out."""

    name = "empty"

    def compress(self, page):
        return b""

    def decompress(self, data, size=PAGE):
        return bytes(size)


class Failing(Empty):
    def compress(self, page):
        raise RuntimeError("compressor broke")


class ShortPages(Compressor):
    """Stores the first 100 bytes, gives back 100 bytes: not a page."""

    name = "short"

    def compress(self, page):
        return page[:100]

    def decompress(self, data, size=PAGE):
        return bytes(data)


@pytest.mark.parametrize("allocator", NATIVE_ALLOCATORS)
def test_a_hostile_compressor_raises_and_changes_nothing(allocator):
    page = PAGES[5]
    for compressor, error in ((Empty(), Invalid), (Failing(), RuntimeError)):
        devices = [cls(1 << 20, compressor=compressor, allocator=allocator)
                   for cls in (Zram, NativeZram)]
        for device in devices:
            assert device.write(1, PAGES[1])                # same-filled: no compressor
            with pytest.raises(error):
                device.write(1, page)
        assert reports(devices[1]) == reports(devices[0])
        assert devices[1].read(1) == devices[0].read(1) == PAGES[1]


def test_a_decompressor_that_gives_no_page_is_an_error():
    """zram.py returns what decompress gave; the native engine copies a
    page and refuses any other length."""
    device = NativeZram(1 << 20, compressor=ShortPages())
    assert device.write(0, PAGES[5])
    with pytest.raises(ValueError, match="decompress gave 100 bytes, not a 4096-byte page"):
        device.read(0)
    assert device.peek(1) == bytes(PAGE)


# -- once under the sanitizers --------------------------------------------------------------

def test_sanitizers_find_nothing(tmp_path):
    """The extension built with -fsanitize=address,undefined runs this file
    (the state machine and the trace replays included) without a report."""
    sanitize.run_engine_tests(tmp_path, __file__)
