"""zswap in both engines: zswap.py's Zswap (the reference) and NativeZswap,
its compiled twin (zswapsim/_engine/zswap.c with memory.c, swapdev.c and
faults.c).

First the one PRNG both engines draw faults from: faults.c's stream must be
random.Random(seed).random()'s, seed for seed.  Then a hypothesis state
machine drives a Python Zswap and a NativeZswap with the same operations
(store, load, invalidate_page, invalidate_area, evict_loaded,
run_pending_work) under every kernel profile with every backend that profile
allows and the native engine has, a small RAM so the limit, its hysteresis,
writeback and its -EEXIST / -ENOMEM cases happen, and a few shrink delays,
retries and fault rates; after every step return values, counters(), the
slots in use, and where() and peek() of every offset touched must be equal.
The same machine runs once through a build under AddressSanitizer and UBSan.
"""

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import sanitize
from zswapsim import _engine, compress, replay
from zswapsim.config import ZswapConfig
from zswapsim.errors import ConfigError
from zswapsim.faults import FaultPlan
from zswapsim.memory import Memory
from zswapsim.profiles import ZSWAP_PROFILES
from zswapsim.trace import TraceWriter
from zswapsim.zpool.base import _DRIVERS, known_pools
from zswapsim.zswap import Zswap
from zswapsim.zswap_native import NativeZswap, _seed_words

NATIVE_BACKENDS = known_pools("native")
PAGE = 4096


def allowed(kernel, backend):
    try:
        ZswapConfig(kernel=kernel, backend=backend)
    except ConfigError:
        return False
    return True


CASES = [(kernel, backend) for kernel in ZSWAP_PROFILES for backend in NATIVE_BACKENDS
         if allowed(kernel, backend)]


# -- the one PRNG ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2**32 + 5, 3**200, -7, 2**64 - 1])
def test_fault_stream_is_pythons(seed):
    rng = random.Random(seed)
    assert _engine.random_stream(_seed_words(seed), 2000) == [rng.random() for _ in range(2000)]


def test_seed_words_are_randoms_key():
    assert _seed_words(0) == (0,)
    assert _seed_words(2**32 + 5) == (5, 1)
    assert _seed_words(-(2**64 - 1)) == (2**32 - 1, 2**32 - 1)


def test_a_fault_plan_given_goes_on_from_its_state():
    """A FaultPlan part-drawn: the native engine continues its stream (and
    counts what it injects from there)."""
    plans = [FaultPlan(seed=11, swap_write=0.5), FaultPlan(seed=11, swap_write=0.5)]
    for plan in plans:
        for _ in range(7):
            plan.fail("swap_write")
    before = plans[0].injected["swap_write"]
    python = Zswap(ram_pages=100, fault_plan=plans[0])
    native = NativeZswap(ram_pages=100, fault_plan=plans[1])
    page = random.Random(1).randbytes(PAGE)         # incompressible: to the device
    results = [(python.store(0, i, page), native.store(0, i, page)) for i in range(60)]
    assert all(a == b for a, b in results)
    assert {a for a, _ in results} == {False, None}
    assert native.faults.injected["swap_write"] == python.faults.injected["swap_write"] - before
    assert native.faults.injected["swap_write"] == sum(a is None for a, _ in results)


# -- the native engine's own refusals -------------------------------------------------------

def test_native_keeps_its_own_ram_and_swap_device():
    with pytest.raises(ConfigError, match="its own RAM and swap device.*memory="):
        NativeZswap(memory=Memory(100))
    with pytest.raises(ConfigError, match="swapdev="):
        NativeZswap(swapdev=object())


def test_native_names_the_backends_it_has(monkeypatch):
    """A backend with no compiled twin (one that exists only in Python) is
    refused, naming those there are."""
    monkeypatch.setitem(_DRIVERS["python"], "newpool", type("NewPool", (), {"options": {}}))
    with pytest.raises(ConfigError) as raised:
        NativeZswap(backend="newpool", kernel="6.1")
    assert str(raised.value) == ("the native engine has no newpool pool yet; it has "
                                 f"{', '.join(NATIVE_BACKENDS)}")


def test_native_bounds_swap_types_and_offsets():
    native = NativeZswap(ram_pages=100)
    with pytest.raises(ValueError, match="swap type 32 out of range 0..31"):
        native.store(32, 0, bytes(PAGE))
    with pytest.raises(ValueError, match="swap offset -1"):
        native.load(0, -1)
    with pytest.raises(ValueError, match="a page is 4096 bytes"):
        native.store(0, 0, b"x")


def test_swapoff_discards_every_slot_of_the_type_sharing_a_page():
    """Slots holding one page share it; swapoff must free every one of them."""
    native = NativeZswap(ram_pages=100, max_pool_percent=0)
    page = random.Random(3).randbytes(PAGE)            # incompressible: to the device
    for swap_type in (0, 1):
        for offset in range(500):
            assert native.store(swap_type, offset, page) is False
    native.invalidate_area(0)
    assert native.swapdev.used_slots() == 500 and native.swapdev.discards == 500
    assert native.where(0, 7) is None and native.peek(1, 7) == page
    native.invalidate_area(1)
    assert native.slots_in_use() == 0


def test_a_passs_lanes_share_one_page_store_and_keep_their_own_slots():
    """replay.c gives a pass's lanes one page store (swapdev.c), so a page
    every lane writes to its device is kept once.  Each lane's slots stay
    its own: one lane's swapoff or its end leaves the others' pages, and a
    lane that held pages before the pass keeps the store it had."""
    rng = random.Random(5)
    pages = [rng.randbytes(PAGE) for _ in range(30)]   # incompressible: to the device
    earlier = NativeZswap(ram_pages=100, max_pool_percent=0)
    assert earlier.store(0, 99, pages[0]) is False
    lanes = [NativeZswap(ram_pages=100, max_pool_percent=0) for _ in range(3)] + [earlier]
    _engine.Replay([lane._engine for lane in lanes], [{} for _ in lanes], [False] * 4, {},
                   True, None, compress.page_key, None, None, None)
    for offset, page in enumerate(pages):
        for lane in lanes:
            assert lane.store(0, offset, page) is False
    lanes[1].invalidate_area(0)
    assert lanes[1].slots_in_use() == 0
    del lanes[0]                                        # the store's first device goes
    for lane in lanes[1:]:
        assert [lane.peek(0, offset) for offset in range(30)] == pages
        assert lane.swapdev.used_slots() == 30 + (lane is earlier)
    assert earlier.peek(0, 99) == pages[0]
    lanes[1].store(0, 5, pages[6])                      # a slot rewritten in one lane only
    assert lanes[1].peek(0, 5) == pages[6] and lanes[2].peek(0, 5) == pages[5]


def test_a_long_random_run_agrees():
    """Beside the state machine's short runs: a few thousand operations over
    sixty offsets per case, so the maps grow, collide and shrink."""
    for case_number, (kernel, backend) in enumerate(CASES):
        config = ZswapConfig(kernel=kernel, backend=backend, ram_pages=200,
                             max_pool_percent=10, shrink_delay=case_number % 3,
                             shrink_step_cost=case_number % 4,
                             shrink_writeback_cost=case_number % 5 * 11,
                             faults={"seed": case_number, "evict": 0.1, "swap_write": 0.05})
        engines = (Zswap(config), NativeZswap(config))
        rng = random.Random(case_number)
        for step in range(2500):
            swap_type, offset, choice = rng.randrange(2), rng.randrange(60), rng.random()
            if choice < 0.5:
                call = ("store", swap_type, offset, rng.choice(PAGES))
            elif choice < 0.75:
                call = ("load", swap_type, offset)
            elif choice < 0.9:
                call = ("invalidate_page", swap_type, offset)
            elif choice < 0.96:
                call = ("evict_loaded", swap_type, offset)
            elif choice < 0.99:
                call = ("run_pending_work",)
            else:
                call = ("invalidate_area", swap_type)
            python, native = (getattr(z, call[0])(*call[1:]) for z in engines)
            assert native == python, (kernel, backend, step, call[:3])
            if step % 50 == 0 or call[0] == "invalidate_area":
                assert engines[1].counters() == engines[0].counters(), (kernel, backend, step)
        for swap_type in (0, 1):
            for offset in range(60):
                assert engines[1].peek(swap_type, offset) == engines[0].peek(swap_type, offset)


# -- the differential state machine ---------------------------------------------------------

def _pages():
    rng = random.Random(2026)
    half = [rng.randbytes(1500) + bytes(PAGE - 1500) for _ in range(4)]
    small = [rng.randbytes(300) + bytes(PAGE - 300) for _ in range(2)]
    text = (b"zswap keeps compressed pages in RAM " * 120)[:PAGE]
    return [bytes(PAGE), bytes(range(8)) * (PAGE // 8), b"\xff" * PAGE, rng.randbytes(PAGE),
            rng.randbytes(PAGE), text] + half + small


PAGES = _pages()
TYPES = st.integers(0, 1)
OFFSETS = st.integers(0, 11)


class Engines(RuleBasedStateMachine):
    @initialize(case=st.sampled_from(CASES), ram=st.sampled_from([8, 24, 60, 200]),
                percent=st.sampled_from([5, 10, 20, 50, 100]),
                accept=st.sampled_from([50, 90, 100]),
                shrink_delay=st.sampled_from([None, 0, 1, 5]),
                pace=st.sampled_from([(None, None), (0, 0), (3, 7), (0, 25)]),
                retries=st.sampled_from([0, 1, 8, 2**32 - 1]),
                capacity=st.sampled_from([None, 6, 30]),
                faults=st.sampled_from([None, {"seed": 5, "evict": 0.3},
                                        {"seed": 2**40 + 3, "alloc": 0.1, "swap_write": 0.1,
                                         "evict": 0.1}]))
    def start(self, case, ram, percent, accept, shrink_delay, pace, retries, capacity,
              faults):
        kernel, backend = case
        if faults and faults.get("evict") and retries > 8:
            retries = 8         # evict faults make every try differ: all would run
        config = ZswapConfig(kernel=kernel, backend=backend, ram_pages=ram,
                             max_pool_percent=percent, accept_threshold_percent=accept,
                             shrink_delay=shrink_delay, shrink_step_cost=pace[0],
                             shrink_writeback_cost=pace[1], retries=retries,
                             swap_capacity=capacity, faults=faults)
        self.engines = (Zswap(config), NativeZswap(config))
        self.touched = set()

    def both(self, name, *args):
        results = [getattr(zswap, name)(*args) for zswap in self.engines]
        assert results[0] == results[1], name
        return results[0]

    @rule(swap_type=TYPES, offset=OFFSETS, page=st.sampled_from(range(len(PAGES))))
    def store(self, swap_type, offset, page):
        self.touched.add((swap_type, offset))
        self.both("store", swap_type, offset, PAGES[page])

    @rule(swap_type=TYPES, offset=OFFSETS)
    def load(self, swap_type, offset):
        self.touched.add((swap_type, offset))
        self.both("load", swap_type, offset)

    @rule(swap_type=TYPES, offset=OFFSETS)
    def invalidate_page(self, swap_type, offset):
        self.both("invalidate_page", swap_type, offset)

    @rule(swap_type=TYPES)
    def invalidate_area(self, swap_type):
        self.both("invalidate_area", swap_type)

    @rule(swap_type=TYPES, offset=OFFSETS)
    def evict_loaded(self, swap_type, offset):
        self.both("evict_loaded", swap_type, offset)

    @rule()
    def run_pending_work(self):
        self.both("run_pending_work")

    @invariant()
    def agree(self):
        if not hasattr(self, "engines"):
            return
        python, native = self.engines
        assert native.counters() == python.counters()
        assert native.slots_in_use() == python.slots_in_use()
        for swap_type, offset in sorted(self.touched):
            assert native.where(swap_type, offset) == python.where(swap_type, offset)
            assert native.peek(swap_type, offset) == python.peek(swap_type, offset)
        if python.faults is not None:
            assert native.faults.injected == python.faults.injected
        assert native.memory.used_pages == python.memory.used_pages
        assert native.memory.peak_pages == python.memory.peak_pages
        if python.has_class_stats():
            assert native.class_stats() == python.class_stats()

    def teardown(self):
        if hasattr(self, "engines"):
            self.both("run_pending_work")
            self.agree()


Engines.TestCase.settings = settings(
    max_examples=int(os.environ.get("ZSWAPSIM_DIFFERENTIAL_EXAMPLES", 300)),
    stateful_step_count=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TestEngines = Engines.TestCase


def test_every_profile_and_native_backend_is_a_case():
    assert {kernel for kernel, _ in CASES} == set(ZSWAP_PROFILES)
    assert ("6.18", "zbud") not in CASES and ("6.12", "zsmalloc") in CASES
    assert ("6.18", "z3fold") not in CASES and ("3.11", "z3fold") in CASES
    # the what-ifs run where the zpool layer is: 3.11's profile too
    assert ("3.11", "xvmalloc") in CASES and ("6.18", "xvmalloc") not in CASES
    assert ("3.11", "zcache-zbud") in CASES and ("6.12", "zcache-zbud") in CASES


# -- once under the sanitizers --------------------------------------------------------------

def test_sanitizers_find_nothing(tmp_path):
    """The extension built with -fsanitize=address,undefined runs this file
    (the state machine included) without a report."""
    sanitize.run_engine_tests(tmp_path, __file__)


# -- replay.py with the native engine ---------------------------------------------------------

TRACES = Path(__file__).resolve().parents[1] / "traces"


@pytest.mark.parametrize("trace", ["python-heap", "swapcache-churn"])
@pytest.mark.parametrize("kernel, backend", [("3.11", "zbud"), ("6.1", "zbud"),
                                             ("6.3", "zsmalloc"), ("6.6", "zbud"),
                                             ("6.12", "zsmalloc"), ("6.18", "zsmalloc"),
                                             ("3.11", "z3fold"), ("6.1", "z3fold"),
                                             ("6.12", "z3fold"),
                                             ("3.11", "xvmalloc"), ("6.12", "xvmalloc"),
                                             ("3.11", "zcache-zbud"), ("6.1", "zcache-zbud")])
def test_a_replay_through_the_native_engine_is_the_pythons(trace, kernel, backend):
    """replay.py driving NativeZswap (everything it asks of a Zswap, the
    end-of-run checks included) reports what it reports driving
    zswap.Zswap, timing aside, with the limit biting."""
    settings = dict(kernel=kernel, backend=backend, ram_pages=2048, max_pool_percent=5,
                    classes=backend == "zsmalloc")
    python = replay.replay(TRACES / f"{trace}.trace", engine="python", **settings)
    native = replay.replay(TRACES / f"{trace}.trace", engine="native", **settings)
    for result in (python, native):
        for field in replay.TIMING_FIELDS:
            result.pop(field)
    assert native == python and python["verified"] and python["pool_limit_hit"] > 0


def lanes_in_both_engines(path, configs):
    """replay_lanes of `configs` in each engine, timings dropped."""
    results = [replay.replay_lanes(path, configs, engine=engine)
               for engine in ("python", "native")]
    for lanes in results:
        for result in lanes:
            for field in replay.TIMING_FIELDS:
                result.pop(field)
    return results


def test_the_event_loops_agree_where_pages_stay_in_ram(tmp_path):
    """replay.c's loop against EventLoop where the swap core keeps pages in
    RAM: a two-slot swap device and injected write faults leave pages
    resident, which later loads, invalidations, a drop under 6.12's
    exclusive loads and an invalidate_area over them must handle alike.
    The trace: 10 pages on type 1, 40 on type 0 (the first 10 the same
    pages), loads of all, one drop, an invalidated half, the type 0 area
    given up, 5 stored there again, type 1 loaded again."""
    path = tmp_path / "resident.trace"
    rng = random.Random(7)
    pages = [rng.randbytes(600 + 60 * n) + bytes(3496 - 60 * n) for n in range(40)]
    with TraceWriter(path) as w:
        for offset in range(10):
            w.store(1, offset, pages[offset])
        for offset, page in enumerate(pages):
            w.store(0, offset, page)
        for offset in range(40):
            w.load(0, offset)
        w.drop_clean(0, 3)
        for offset in range(0, 40, 2):
            w.invalidate_page(0, offset)
        w.invalidate_area(0)
        for offset in range(5):
            w.store(0, offset, pages[39 - offset])
        for offset in range(10):
            w.load(1, offset)
    faults = dict(swap_write=0.5, alloc=0.1, seed=5)
    configs = [dict(kernel=kernel, backend=backend, ram_pages=400, max_pool_percent=3,
                    swap_capacity=6, faults=faults)
               for kernel, backend in (("6.1", "zbud"), ("6.12", "zsmalloc"),
                                       ("6.18", "zsmalloc"))]
    python, native = lanes_in_both_engines(path, configs)
    assert native == python
    assert all(lane["verified"] and lane["resident_pages"] > 0 for lane in python)
    assert all(lane["zswpout"] > 0 for lane in python)     # zswap took pages in every lane
    assert any(lane["injected_swap_write"] > 0 for lane in python)


@pytest.mark.parametrize("trace", ["swapcache-churn", "python-job"])
def test_the_event_loops_agree_with_faults_and_a_small_device(trace):
    """The shipped traces through both loops with every kind of fault and a
    swap device too small for the run, several lanes in one pass."""
    faults = dict(swap_write=0.05, alloc=0.02, evict=0.05, seed=11)
    configs = [dict(kernel=kernel, backend=backend, ram_pages=2048, max_pool_percent=5,
                    swap_capacity=256, faults=faults)
               for kernel in ("3.11", "6.1", "6.6", "6.12", "6.18")
               for backend in NATIVE_BACKENDS if allowed(kernel, backend)]
    python, native = lanes_in_both_engines(TRACES / f"{trace}.trace", configs)
    assert native == python
    assert any(lane["resident_pages"] for lane in python)


# -- the compression cache: compress.py's and compression_cache.c's ------------------------

CACHE_COMPRESSORS = [("lz4", "6.1"), ("lz4", "6.12"), ("lz4hc-4", "6.12"), ("lzo", "6.1"),
                     ("lzo-rle", "6.1"), ("842", "6.1"), ("zstd", "6.12"), ("deflate", "6.1")]


def cache_pages(seed):
    """Pages of every kind: compressible, same-filled, incompressible (lz4
    and lzo do not fit 4096 bytes), and repeats of each."""
    rng = random.Random(seed)
    pages = [rng.randbytes(rng.randrange(1, 4096)).ljust(PAGE, b"\0") for _ in range(12)]
    pages += [bytes([n]) * PAGE for n in range(3)] + [rng.randbytes(PAGE) for _ in range(3)]
    return [rng.choice(pages) for _ in range(120)]


@pytest.mark.parametrize("name, kernel", CACHE_COMPRESSORS)
@pytest.mark.parametrize("budget", [64 << 20, 6000, 10])
def test_the_compiled_cache_is_the_pythons(name, kernel, budget):
    """Both caches over one compressor, fed the same pages (with and
    without their key, now and then with bytes made ahead), give the same
    bytes, hits, misses, cached bytes and cached(key) after every call,
    within a budget that holds everything, a few results, or none at all
    (the new result goes at once); and each result decompresses alike."""
    compressor = compress.get_compressor(name, kernel=kernel)
    caches = (compress.CompressionCache(compressor, budget),
              compress.NativeCompressionCache(compressor, budget))
    keys = []
    for n, page in enumerate(cache_pages(len(name) + budget)):
        key = compress.page_key(page) if n % 2 else None
        ahead = memoryview(compressor.compress(page)) if n % 7 == 0 else None
        got = [cache.compress(page, key, ahead) for cache in caches]
        assert got[1] == got[0]
        keys.append(compress.page_key(page))
        for field in ("hits", "misses", "cached_bytes", "budget_bytes"):
            assert getattr(caches[1], field) == getattr(caches[0], field), field
        assert [caches[1].cached(k) for k in keys] == [caches[0].cached(k) for k in keys]
        if len(got[0]) <= PAGE:
            assert caches[1].decompress(got[0]) == caches[0].decompress(got[0]) == page
    if budget < 16:         # not even a key fits: nothing stays, nothing hits
        assert caches[1].hits == caches[1].cached_bytes == 0
    else:
        assert caches[1].hits > 0
    assert caches[1].name == compressor.name
    assert (caches[1].batch is None) == (compressor.batch_compressor() is None)


@pytest.mark.parametrize("name", ["lz4", "lzo", "842"])
def test_the_compiled_cache_refuses_malformed_input_as_kcompress_does(name):
    """A decompression of bytes no compressor made raises the ValueError of
    the _kcompress call the Python compressor makes, word for word."""
    compressor = compress.get_compressor(name, kernel="6.1")
    native = compress.NativeCompressionCache(compressor)
    good = compressor.compress(bytes(100).ljust(PAGE, b"\1"))
    for data, size in ((b"\xff" * 40, PAGE), (good, PAGE - 1), (good[:-3], PAGE)):
        with pytest.raises(ValueError) as python:
            compressor.decompress(data, size)
        with pytest.raises(ValueError) as compiled:
            native.decompress(data, size)
        assert str(compiled.value) == str(python.value)
    assert compress.native_codec(compressor) is not None
    assert compress.native_codec(compress.get_compressor("zstd", kernel="6.1")) is None


@pytest.mark.parametrize("cache_class", [compress.CompressionCache,
                                         compress.NativeCompressionCache])
def test_a_page_kept_as_is_holds_its_page(cache_class):
    """6.18 keeps a page that does not compress as the page itself: its
    entry has no compressed form to hold against the cache's (which is
    longer than a page), so holds_page reads the page, whichever cache the
    native Zswap compresses through, and says what zswap.py says."""
    pages = [random.Random(n).randbytes(PAGE) for n in range(4)]
    zswaps = [Zswap(kernel="6.18", backend="zsmalloc")]
    zswaps.append(NativeZswap(kernel="6.18", backend="zsmalloc",
                              compressor=cache_class(compress.get_compressor("lz4",
                                                                             kernel="6.18"))))
    for zswap in zswaps:
        for offset, page in enumerate(pages):
            assert zswap.store(0, offset, page) is True
        assert zswap.counters()["stored_pages"] == 4
        assert [zswap.holds_page(0, n, compress.page_key(page))
                for n, page in enumerate(pages)] == [True] * 4
        assert not zswap.holds_page(0, 0, compress.page_key(pages[1]))
        assert zswap.compressor.cached(compress.page_key(pages[0])) is not None


def test_first_unheld_agrees_and_refuses_what_is_not_a_live_map():
    """The end-of-run walk over the live pages, in both engines on the same
    stores: a page stored in the pool, one written back to the swap device
    (6.1 refuses a page that does not compress, so its key is checked
    against the device's page), one never stored (lost unless resident),
    one named by another page's key (corrupted), walked in the live dict's
    order.  What is not a {type: {offset: key}} map is a TypeError or
    ValueError, not a crash."""
    pages = [random.Random(0).randbytes(PAGE)]
    pages += [random.Random(n).randbytes(1500).ljust(PAGE, b"\1") for n in (1, 2)]
    keys = [compress.page_key(page) for page in pages]
    zswaps = [cls(kernel="6.1", backend="zbud") for cls in (Zswap, NativeZswap)]
    for zswap in zswaps:
        for offset, page in enumerate(pages):
            zswap.store(0, offset, page)
        assert [zswap.where(0, n) for n in range(3)] == ["swap", "pool", "pool"]
    cases = [
        ({0: {0: keys[0], 1: keys[1], 2: keys[2]}}, True, (), (3, None)),
        ({0: {2: keys[2], 9: keys[0], 0: keys[0]}}, True, (), (2, ("lost", 0, 9))),
        ({0: {2: keys[2], 9: keys[0], 0: keys[0]}}, True, {(0, 9): pages[0]}, (3, None)),
        ({0: {2: keys[2], 0: keys[1]}}, True, (), (2, ("corrupted", 0, 0))),
        ({0: {1: keys[0], 2: keys[2]}}, True, (), (1, ("corrupted", 0, 1))),
        ({0: {1: keys[0], 2: keys[2]}}, False, (), (2, None)),
        ({}, True, (), (0, None)),
    ]
    for live, verify, resident, expected in cases:
        assert [zswap.first_unheld(live, verify, resident) for zswap in zswaps] == \
            [expected] * 2
    native = zswaps[1]._engine
    for live in ([], {0: [1]}, {"0": {1: keys[0]}}, {0: {"1": keys[0]}}, {40: {1: keys[0]}},
                 {0: {-1: keys[0]}}):
        with pytest.raises((TypeError, ValueError)):
            native.first_unheld(live, True, ())
    with pytest.raises(TypeError):
        native.first_unheld({0: {1: keys[0]}}, True)


@pytest.mark.parametrize("bit", [8 * 8 + 3, 8 * 600])
def test_the_native_loop_catches_a_corrupted_pool(tmp_path, bit, monkeypatch):
    """The native loop takes a pool entry holding the cache's bytes for the
    expected image as that image without decompressing it; one bit flipped
    in the entry (past 6.1's 8-byte header, and far inside the data) makes
    it decompress and fail verification, or fail to decompress at all."""
    path = tmp_path / "flip.trace"
    page = random.Random(3).randbytes(1200).ljust(PAGE, b"\0")
    with TraceWriter(path) as w:
        w.store(0, 5, page)
        w.load(0, 5)
    real_run = replay.NativeEventLoop.run

    def corrupting_run(self, events, images, first_image, aheads, begin, end):
        for offset in range(begin, end):        # corrupt just before the load runs
            real_run(self, events, images, first_image, aheads, offset, offset + 1)
            if offset == 0:
                self.zswaps[0]._flip_bit(0, 5, bit)

    monkeypatch.setattr(replay.NativeEventLoop, "run", corrupting_run)
    original_init = replay.NativeEventLoop.__init__

    def keeping_init(self, lanes, *args):
        original_init(self, lanes, *args)
        self.zswaps = [lane.zswap._engine for lane in lanes]

    monkeypatch.setattr(replay.NativeEventLoop, "__init__", keeping_init)
    with pytest.raises((replay.VerifyError, ValueError),
                       match="verify failed at event 2|malformed|decoded"):
        replay.replay(path, kernel="6.1", backend="zbud", engine="native")
    monkeypatch.undo()
    assert replay.replay(path, kernel="6.1", backend="zbud", engine="native")["verified"]
