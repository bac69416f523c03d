"""The allocators in both engines: the Python models (zswapsim/zpool/*.py)
and their compiled twins (zswapsim/_engine, create_pool(..., engine="native")).

One contract suite runs for every ported allocator in both engines, against
numbers worked out by hand from the layout rules:
  zbud: 64-byte chunks, header in chunk 0, so the first buddy's handle is
    pfn * 4096 + 64 and a last buddy of n chunks sits at 4096 - 64 n;
    3968 bytes at most (63 chunks less one for the other buddy).
  zsmalloc (chain 4, 6.1's rule): a request of 100 bytes is 108 with its
    handle word, class index ceil((108 - 32) / 16) = 5, size 112; one page
    would use 98 % (64 bytes left), two 99 % (16 left), three and four no
    more, so 2 pages and 8192 // 112 = 73 objects; object 36 spans bytes
    4032..4144, across the page boundary.  A request of 200 is class 208:
    two pages at chain 4, but three at chain 8 (6.3's least waste: 12288 %
    208 = 16).  A request of 3000 is class 3008 merged upward, 3 pages.
  z3fold: 64-byte chunks, a two-chunk header (128 bytes), so NCHUNKS = 62;
    handles count up from 1; FIRST at byte 128, LAST at 4096 - 64 n, a new
    MIDDLE at chunk first + 2; a page with no middle is listed on 62 - first
    - last free chunks, with one on the larger gap beside it; over 3904
    bytes (4096 - 128 - 64) a headless page at offset 0, over 4096 -ENOSPC.
Then a hypothesis state machine drives a Python pool and a native pool with
the same operations and compares everything after every step, and the same
differential run goes once through a build under AddressSanitizer and UBSan.
"""

import errno
import gc
import os
import weakref

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import sanitize
from evictors import Evictor
from zswapsim.errors import ConfigError, Invalid, NoMemory, NoSpace, PoolCorrupted
from zswapsim.faults import FaultPlan
from zswapsim.memory import Memory
from zswapsim.zpool import base, create_pool
from zswapsim.zpool.base import ENGINES, known_pools

PORTED = ["zbud", "zsmalloc", "z3fold"]
# The Python pools' words for a handle they do not know, and its base.
UNKNOWN_HANDLE = {"zbud": ("is not in this pool", 16), "zsmalloc": ("is not in this pool", 10),
                  "z3fold": ("names no live object in this pool", 16)}


@pytest.fixture(params=[(backend, engine) for backend in PORTED for engine in ENGINES],
                ids=lambda p: f"{p[0]}-{p[1]}")
def make(request):
    """make(memory=None, evict=None, **options): a pool of this allocator and engine."""
    backend, engine = request.param

    def make_pool(memory=None, evict=None, **options):
        return create_pool(backend, memory=memory, evict=evict, engine=engine, **options)
    make_pool.backend, make_pool.engine = backend, engine
    return make_pool


def engines(backend):
    """A pool maker per engine for one allocator's own tests."""
    return pytest.mark.parametrize("make", [(backend, engine) for engine in ENGINES],
                                   ids=ENGINES, indirect=True)


def first_handle(make):
    """The handle of the first object in a new pool: page 0's first buddy, or
    zsmalloc's and z3fold's 1."""
    return 64 if make.backend == "zbud" else 1


# -- the contract, both engines ----------------------------------------------------

def test_objects_read_back_what_was_written(make):
    pool = make()
    data = [bytes([n]) * size for n, size in enumerate((1, 100, 1000, 3000, 3968), 1)]
    handles = [pool.malloc(len(d)) for d in data]
    for handle, d in zip(handles, data):
        pool.write(handle, d)
    for handle, d in zip(handles, data):
        assert pool.read(handle) == d and bytes(pool.map(handle)) == d
    assert handles[0] == first_handle(make)
    assert pool.total_size() == pool.total_pages() * 4096
    pool.check()


@engines("zbud")
def test_zbud_layout_by_hand(make):
    pool = make()
    a, b = pool.malloc(100), pool.malloc(100)     # 2 chunks each, both buddies of page 0
    c = pool.malloc(3968)                         # 62 chunks: a page of its own
    assert (a, b, c) == (64, 4096 - 128, 4096 + 64)
    assert pool.total_pages() == 2 and pool.lru_pfns() == [1, 0]
    pool.free(b)
    assert pool.unbuddied_pfns(63 - 2) == [0]     # 61 chunks free on page 0
    assert pool.malloc(64 * 61) == 4096 - 64 * 61  # the page's last buddy again, best fit


@engines("z3fold")
def test_z3fold_layout_by_hand(make):
    memory = Memory()
    pool = make(memory=memory)
    data = {}
    for size, seed in ((100, 1), (200, 2), (300, 3), (3905, 4)):    # 2, 4, 5 chunks; headless
        handle = pool.malloc(size)
        data[handle] = bytes((seed + n) & 0xFF for n in range(size))
        pool.write(handle, data[handle])
    assert list(data) == [1, 2, 3, 4]
    assert [pool.locate(h) for h in data] == [(0, "first", 128), (0, "last", 4096 - 4 * 64),
                                              (0, "middle", (2 + 2) * 64), (1, "headless", 0)]
    assert pool.total_pages() == 2 == memory.used_pages and pool.lru_pfns() == [1, 0]
    assert not any(pool.unbuddied_pfns(n) for n in range(62))    # full, and headless
    assert bytes(memory.frames[0][3840:4040]) == data[2]
    pool.free(1)
    # No FIRST, a LAST of 4: the gap after the middle is 64 - (4 + 4 + 5) = 51
    # >= 3, so the middle slides up against LAST, to 64 - 4 - 5 = 55; the page
    # is listed on the gap before it, 55 - 2 = 53.
    assert pool.locate(3) == (0, "middle", 55 * 64)
    assert pool.layout(0) == {"headless": False, "first": 0, "middle": 5, "start_middle": 55,
                              "last": 4, "foreign_handles": 0, "free_chunks": 53}
    assert pool.unbuddied_pfns(53) == [0]
    assert pool.malloc(64 * 53) == 5 and pool.locate(5) == (0, "first", 128)
    pool.free(2)
    # FIRST 53 and MIDDLE 5 at 55 to 60: the gap 55 - (53 + 2) = 0 keeps it there.
    assert pool.locate(3) == (0, "middle", 55 * 64) and pool.unbuddied_pfns(4) == [0]
    for handle in (3, 4):
        assert pool.read(handle) == data[handle]
    # Pages after N mallocs: 20 chunks go three a page (60 <= 62), 21 two
    # (42 leaves 20), 32 one; nine of each from a new pool.
    for size, pages in ((1280, 3), (1281, 5), (64 * 31 + 1, 9)):
        fresh = make()
        for _ in range(9):
            fresh.malloc(size)
        assert fresh.total_pages() == pages
    pool.check()


@engines("z3fold")
def test_z3fold_single_buddy_moves_and_is_not_reclaimed(make):
    evictor = Evictor()
    pool = make(evict=evictor)
    small, big, other = pool.malloc(64 * 10), pool.malloc(64 * 40), pool.malloc(64 * 30)
    pool.write(small, b"s" * 640)
    assert [pool.locate(h)[:2] for h in (small, big, other)] == [(0, "first"), (0, "last"),
                                                                 (1, "first")]
    pool.free(big)
    # Page 0 keeps one object: it moves into page 1 (on list 62 - 30 = 32 >= 10)
    # as LAST, foreign there, and page 0 goes.
    assert pool.locate(small) == (1, "last", 4096 - 640) and pool.read(small) == b"s" * 640
    assert pool.total_pages() == 1 and pool.layout(1)["foreign_handles"] == 1
    assert pool.unbuddied_pfns(62 - 30 - 10) == [1]
    assert pool.reclaim_page(8) == -errno.EAGAIN and evictor.calls == []
    pool.free(small)
    assert pool.reclaim_page(8) == 0 and evictor.calls == [other]
    pool.check()


@engines("zsmalloc")
def test_zsmalloc_geometry_by_hand(make):
    pool = make()
    handles = [pool.malloc(100) for _ in range(37)]
    assert handles == list(range(1, 38)) and pool.total_pages() == 2
    row = next(r for r in pool.class_stats() if r["size"] == 112)
    assert row == {"class": 5, "size": 112, "almost_full": 0, "almost_empty": 1,
                   "obj_allocated": 73, "obj_used": 37, "pages_used": 2,
                   "pages_per_zspage": 2, "freeable": 0}
    assert pool.huge_class_size == 3257
    straddler = handles[36]                        # object 36: bytes 4032..4144
    data = bytes(range(100))
    pool.write(straddler, data)
    assert pool.read(straddler) == data
    assert isinstance(pool.map(straddler), bytes)              # copied out of two pages
    assert isinstance(pool.map(handles[35]), memoryview)       # a view of its one page
    assert pool.locate(straddler) == (1, 36)
    assert make(chain_size=8).chain_size == 8
    for chain, pages in ((4, 2), (8, 3)):
        sized = make(chain_size=chain)
        sized.malloc(200)
        assert sized.total_pages() == pages


@engines("zsmalloc")
def test_zsmalloc_compaction(make):
    pool = make()
    handles = [pool.malloc(100) for _ in range(2 * 73)]           # two full zspages, 4 pages
    for n, handle in enumerate(handles):
        pool.write(handle, n.to_bytes(2, "little") * 50)
    kept = handles[:33] + handles[73:73 + 33]                     # 66 objects fit in one
    for handle in set(handles) - set(kept):
        pool.free(handle)
    assert pool.total_pages() == 4
    assert pool.compact() == 2 and pool.pages_compacted == 2 and pool.total_pages() == 2
    for handle in kept:
        assert pool.read(handle) == handles.index(handle).to_bytes(2, "little") * 50
    pool.check()


def test_bad_sizes(make):
    pool = make()
    limit = 3968 if make.backend == "zbud" else 4096
    pool.malloc(limit)
    for size in (0, -1, limit + 1, 10 ** 30, -10 ** 30):
        if make.backend in ("zbud", "z3fold"):
            error, message = (Invalid, f"{make.backend}_alloc of size 0") if size <= 0 else \
                (NoSpace, f"{make.backend}_alloc of {size} bytes > {limit}")
        else:
            error, message = Invalid, f"zs_malloc of {size} bytes"
        with pytest.raises(error) as raised:
            pool.malloc(size)
        assert str(raised.value) == message
    handle = pool.malloc(10)
    with pytest.raises(Invalid, match="^write of 11 bytes into a 10-byte object$"):
        pool.write(handle, bytes(11))
    pool.check()


def test_bad_handles(make):
    pool = make()
    pool.malloc(100)
    words, radix = UNKNOWN_HANDLE[make.backend]
    counted = make.backend != "zbud"            # handles from 1, not addresses: 0 is none
    for handle in (-1, 2 ** 64, 10 ** 30, 99 << 12) + ((0,) if counted else ()):
        shown = f"{handle:#x}" if radix == 16 else f"{handle}"
        for operation in (pool.free, pool.read, pool.map):
            with pytest.raises(Invalid) as raised:
                operation(handle)
            assert str(raised.value) == f"handle {shown} {words}"
    if make.backend == "zbud":
        with pytest.raises(Invalid, match="^handle 0x50 names no live buddy$"):
            pool.read(64 + 16)
    pool.check()


def test_memory_exhaustion_and_faults(make):
    memory = Memory(3)
    pool = make(memory=memory)
    pool.malloc(100)                               # one page (zbud) or two (zsmalloc)
    used = memory.used_pages
    with pytest.raises(NoMemory, match="^simulated RAM exhausted$"):
        for _ in range(4):                         # zbud: page 0's last buddy, then a page
            pool.malloc(3000)                      # each; zsmalloc: 3 pages at once
    if make.backend == "zsmalloc":                 # the chain's first page went back
        assert memory.used_pages == used == pool.total_pages() == 2
    faulty = Memory(faults=FaultPlan(seed=1, alloc=1.0))
    with pytest.raises(NoMemory, match="^injected page allocation failure$"):
        make(memory=faulty).malloc(100)
    assert faulty.used_pages == 0 and faulty.faults.injected["alloc"] == 1


def test_reclaim(make):
    evictor = Evictor()
    pool = make(evict=evictor)
    a, b = pool.malloc(100), pool.malloc(100)      # one page, one zspage
    assert pool.reclaim_page(8) == 0 and evictor.calls == [a, b]
    assert pool.total_pages() == 0 and pool.evict_results == {0: 2}
    assert (pool.reclaim_calls, pool.reclaim_pages_scanned, pool.evict_calls) == (1, 1, 2)
    assert pool.reclaim_page(8) == -errno.EINVAL   # an empty LRU
    c = pool.malloc(100)
    evictor.refuse = {c}
    assert pool.reclaim_page(3) == -errno.EAGAIN and pool.evict_calls == 5
    assert pool.evict_results == {0: 2, -errno.EEXIST: 3}
    retries_zero = -errno.EAGAIN if make.backend == "zsmalloc" else -errno.EINVAL
    assert pool.reclaim_page(0) == retries_zero
    assert make().reclaim_page(8) == -errno.EINVAL                 # no evict callback
    pool.check()


def test_reclaim_counts_unchanged_rounds(make):
    """A million tries refused unchanged on one page: counted, not run."""
    evictor = Evictor(unchanged=True)
    pool = make(evict=evictor)
    evictor.refuse = {pool.malloc(100)}
    assert pool.reclaim_page(10 ** 6) == -errno.EAGAIN
    assert pool.evict_calls == pool.reclaim_pages_scanned == 10 ** 6
    assert pool.evict_results == {-errno.EEXIST: 10 ** 6}
    assert len(evictor.calls) < 10
    assert pool.unchanged_result == -errno.EEXIST


def test_evict_that_raises_leaves_the_page_under_reclaim(make):
    def evict(pool, handle):
        raise RuntimeError("writeback broke")
    pool = make(evict=evict)
    pool.malloc(100)
    with pytest.raises(RuntimeError, match="writeback broke"):
        pool.reclaim_page(8)
    assert pool.evict_calls == 1 and pool.evict_results == {}
    message = {"zbud": "zbud pool: page 0: under reclaim outside reclaim_page",
               "z3fold": "z3fold pool: page 0: claimed outside reclaim_page",
               "zsmalloc": "zsmalloc pool: LRU holds exactly the live zspages: "
                           "0 LRU entries for 1 zspages"}[make.backend]
    with pytest.raises(PoolCorrupted) as raised:
        pool.check()
    assert str(raised.value) == message


def test_options_and_engines(monkeypatch):
    for engine in ENGINES:
        with pytest.raises(ConfigError, match=r"^zsmalloc chain_size 3 is outside 4\.\.16$"):
            create_pool("zsmalloc", chain_size=3, engine=engine)
        with pytest.raises(ConfigError, match="^zbud takes no pool options, not chain_size$"):
            create_pool("zbud", chain_size=8, engine=engine)
    with pytest.raises(ConfigError, match="^unknown engine 'c'; known: native, python$"):
        create_pool("zbud", engine="c")
    # An allocator the Python engine has and the native one lacks (a stand-in
    # that stays unported whatever is ported meanwhile).
    monkeypatch.setitem(base._DRIVERS["python"], "unported", object)
    with pytest.raises(ConfigError) as raised:
        create_pool("unported", engine="native")
    assert str(raised.value) == \
        f"the native engine has no unported yet; it has {', '.join(sorted(PORTED))}"
    assert known_pools("native") == sorted(PORTED)


# -- the native engine's own guards ------------------------------------------------------

def test_native_rejects_what_is_not_an_int_or_bytes():
    from zswapsim.zpool.native import NativeZsmallocPool
    for backend in PORTED:
        pool = create_pool(backend, engine="native", evict=lambda pool, handle: "zero")
        handle = pool.malloc(100)
        with pytest.raises(TypeError):
            pool.free("1")
        with pytest.raises(TypeError):
            pool.malloc(1.5)
        with pytest.raises(TypeError):
            pool.write(handle, "text")
        with pytest.raises(TypeError):
            pool.reclaim_page(8)                   # the callback's "zero" is no int
        with pytest.raises(TypeError):
            pool.reclaim_page(None)
    for chain in (True, 17, 2 ** 70, "8"):
        with pytest.raises(ConfigError):
            NativeZsmallocPool(chain_size=chain)


def test_native_pools_are_collected_and_views_outlive_them():
    class Owner:
        def evict(self, pool, handle):
            pool.free(handle)
            return 0
    memory = Memory()
    for backend in PORTED:
        owner = Owner()
        owner.pool = create_pool(backend, memory=memory, evict=owner.evict, engine="native")
        handle = owner.pool.malloc(100)
        owner.pool.write(handle, b"x" * 100)
        view = owner.pool.map(handle)
        gone = weakref.ref(owner)
        del owner
        gc.collect()
        assert gone() is None                      # the pool's traverse sees its callback
        assert bytes(view) == b"x" * 100           # the view holds the Memory's frame


# -- the differential state machine ------------------------------------------------------

SIZES = st.one_of(st.integers(1, 300), st.integers(1, 4096),
                  st.sampled_from([0, -1, 64, 65, 3904, 3905, 3968, 3969, 4088, 4089, 4096,
                                   4097]))


class Lane:
    """One engine's side: its Memory (faults drawn from the same seed), pool,
    a neighbour zbud pool of the same engine on the same Memory (so the two
    pools' frames interleave), and a record of its evict calls.  A greedy
    callback first takes a neighbour object, a frame allocation in the
    middle of reclaim as zswap's writeback makes one."""

    def __init__(self, engine, backend, options, ram, fault_rate, shared):
        self.memory = Memory(ram, FaultPlan(seed=7, alloc=fault_rate) if fault_rate else None)
        self.shared = shared
        self.calls = []
        self.pool = create_pool(backend, memory=self.memory, evict=self.evict, engine=engine,
                                **options)
        self.neighbour = create_pool("zbud", memory=self.memory, engine=engine)
        self.neighbour_live = []

    def evict(self, pool, handle):
        self.calls.append(handle)
        if self.shared.greedy:
            self.calls.append(outcome(self.neighbour_malloc, 1000))
        if handle in self.shared.refuse:
            ret = -errno.EEXIST
            return pool.unchanged(ret) if self.shared.unchanged else ret
        pool.free(handle)
        self.shared.evicted(self, handle)
        return 0

    def neighbour_malloc(self, size):
        handle = self.neighbour.malloc(size)
        self.neighbour_live.append(handle)
        return handle

    def neighbour_free(self):
        self.neighbour.free(self.neighbour_live.pop(0))


def outcome(call, *args):
    """A call's result, or its exception's type and words."""
    try:
        return "ok", call(*args)
    except (Invalid, NoSpace, NoMemory) as error:
        return type(error).__name__, str(error)


class Differential(RuleBasedStateMachine):
    @initialize(backend=st.sampled_from(PORTED), chain=st.sampled_from([4, 8, 16]),
                ram=st.sampled_from([None, 6, 40]), fault_rate=st.sampled_from([0, 0.2]),
                unchanged=st.booleans(), greedy=st.booleans())
    def start(self, backend, chain, ram, fault_rate, unchanged, greedy):
        self.backend = backend
        options = {"chain_size": chain} if backend == "zsmalloc" else {}
        self.refuse, self.unchanged, self.greedy = set(), unchanged, greedy
        self.live = {}                             # handle -> bytes written
        self.sizes = {}                            # handle -> size asked for
        self.gone = {}                             # lane -> handles its evict freed
        self.lanes = [Lane(engine, backend, options, ram, fault_rate, self)
                      for engine in ("python", "native")]

    def evicted(self, lane, handle):
        self.gone.setdefault(lane, []).append(handle)

    def both(self, method, *args):
        results = [outcome(getattr(lane.pool, method), *args) for lane in self.lanes]
        assert results[0] == results[1], (method, args, results)
        return results[0]

    def settle_evictions(self):
        gone = [self.gone.pop(lane, []) for lane in self.lanes]
        assert gone[0] == gone[1]
        for handle in gone[0]:
            self.live.pop(handle, None)
            self.refuse.discard(handle)

    @rule(size=SIZES, data=st.data())
    def malloc(self, size, data):
        status, handle = self.both("malloc", size)
        if status == "ok":
            assert handle not in self.live
            payload = data.draw(st.binary(max_size=size))
            self.both("write", handle, payload)
            self.live[handle], self.sizes[handle] = payload, size

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def write(self, data):
        handle = data.draw(st.sampled_from(sorted(self.live)))
        payload = data.draw(st.binary(min_size=len(self.live[handle]),
                                      max_size=self.sizes[handle] + 8))
        status, _ = self.both("write", handle, payload)
        if status == "ok":
            self.live[handle] = payload

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free(self, data):
        handle = data.draw(st.sampled_from(sorted(self.live)))
        self.both("free", handle)
        del self.live[handle]
        self.refuse.discard(handle)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def refuse_eviction(self, data):
        self.refuse ^= {data.draw(st.sampled_from(sorted(self.live)))}

    @rule(retries=st.sampled_from([0, 1, 2, 8, 1000]))
    def reclaim(self, retries):
        self.both("reclaim_page", retries)
        self.settle_evictions()
        assert self.lanes[0].calls == self.lanes[1].calls

    @rule(size=st.integers(1, 3968))
    def neighbour_malloc(self, size):
        results = [outcome(lane.neighbour_malloc, size) for lane in self.lanes]
        assert results[0] == results[1]

    @precondition(lambda self: self.lanes[0].neighbour_live)
    @rule()
    def neighbour_free(self):
        for lane in self.lanes:
            lane.neighbour_free()

    @precondition(lambda self: self.backend == "zsmalloc")
    @rule()
    def compact(self):
        self.both("compact")

    @rule(handle=st.integers(-2, 1 << 20))
    def read_any_handle(self, handle):
        """Reading a handle at random: the same bytes or the same error."""
        self.both("read", handle)

    @invariant()
    def agree(self):
        if not hasattr(self, "lanes"):
            return
        python, native = (lane.pool for lane in self.lanes)
        for handle, payload in self.live.items():
            assert python.read(handle)[:len(payload)] == payload
            assert native.read(handle) == python.read(handle)
            assert bytes(native.map(handle)) == bytes(python.map(handle))
        for name in ("total_pages", "total_size", "_reclaim_order"):
            assert getattr(native, name)() == getattr(python, name)(), name
        for name in ("reclaim_calls", "reclaim_pages_scanned", "evict_calls", "evict_results",
                     "unchanged_result"):
            assert getattr(native, name) == getattr(python, name), name
        if self.backend == "zsmalloc":
            assert native.class_stats() == python.class_stats()
            assert native.lru_zspage_ids() == python.lru_zspage_ids()
            assert [native.locate(h) for h in self.live] == [python.locate(h) for h in self.live]
            assert native.pages_compacted == python.pages_compacted
        else:
            assert native.lru_pfns() == python.lru_pfns()
        if self.backend == "z3fold":
            assert [native.locate(h) for h in self.live] == [python.locate(h) for h in self.live]
            pfns = python.lru_pfns()
            assert [native.layout(pfn) for pfn in pfns] == [python.layout(pfn) for pfn in pfns]
        assert self.lanes[0].neighbour_live == self.lanes[1].neighbour_live
        assert self.lanes[0].calls == self.lanes[1].calls
        for lane in self.lanes:
            lane.neighbour.check()
        memories = [lane.memory for lane in self.lanes]
        assert memories[0].used_pages == memories[1].used_pages
        assert memories[0].free_pfns() == memories[1].free_pfns()
        python.check()
        native.check()


Differential.TestCase.settings = settings(
    max_examples=int(os.environ.get("ZSWAPSIM_DIFFERENTIAL_EXAMPLES", 200)),
    stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TestDifferential = Differential.TestCase


# -- once under the sanitizers -----------------------------------------------------------

def test_sanitizers_find_nothing(tmp_path):
    """The extension built with -fsanitize=address,undefined runs this
    whole file (the contract suite and the differential machine) without a
    report."""
    sanitize.run_engine_tests(tmp_path, __file__)
