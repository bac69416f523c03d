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
  xvmalloc: a 4-byte header before every block, the data after it, so the
    first handle is pfn * 4096 + 4; a request is aligned to 4 and cut from
    the head of the first free list from its size rounded up to 8 (list
    (size - 32) / 8, sizes below 32 as 32); a free block goes on the list of
    its size rounded down to 8, and only if it is 32 bytes or more; a new
    page is one free block of 4092 bytes, so 4088 is the largest object and
    4089..4092 grow a page and still fail (list 508 does not exist).
  zcache-zbud: 64 chunks of 64 bytes, no header chunk; each zbud is its
    32-byte tmem handle, whose last key_in_handle bytes are the object's
    first, then the rest of the object: an object of n bytes with a key of
    k takes ceil((n - k + 32) / 64) chunks, at most 63 (n - k <= 4000).
    Zbud 0 starts at byte 0, zbud 1 ends the page; a handle is pfn << 12 |
    budnum, so the first is 0.  A page with one zbud waits at the tail of
    its list by free chunks; c chunks take the oldest page of the fullest
    list that fits.  Reclaim makes the oldest pageframe a zombie, off the
    LRU for good: a refused page is not tried again.
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
from zswapsim.zpool import create_pool
from zswapsim.zpool.base import _DRIVERS, ENGINES, known_pools

PORTED = ["xvmalloc", "z3fold", "zbud", "zcache-zbud", "zsmalloc"]
# Each allocator's answers to the contract's questions, worked out from its rules.
FIRST_HANDLE = {"zbud": 64, "zsmalloc": 1, "xvmalloc": 4, "zcache-zbud": 0, "z3fold": 1}
LARGEST = {"zbud": 3968, "zsmalloc": 4096, "xvmalloc": 4088, "zcache-zbud": 4000,
           "z3fold": 4096}
NOT_IN_POOL = {"zbud": "is not in this pool", "zsmalloc": "is not in this pool",
               "xvmalloc": "names no live object", "zcache-zbud": "names no live zbud",
               "z3fold": "names no live object in this pool"}
HEX_HANDLES = {"zbud", "xvmalloc", "zcache-zbud", "z3fold"}
# reclaim_page(0): zsmalloc alone tries nothing and says -EAGAIN
RETRIES_ZERO = {"zbud": -errno.EINVAL, "zsmalloc": -errno.EAGAIN, "xvmalloc": -errno.EINVAL,
                "zcache-zbud": -errno.EINVAL, "z3fold": -errno.EINVAL}


def tries_on_one_refused_page(backend, retries):
    """The tries reclaim_page(retries) makes when the LRU's only page is
    refused: every one (the page goes back to the LRU head), or zcache's
    one (the page stays a zombie, off the LRU)."""
    return 1 if backend == "zcache-zbud" else retries


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


def refusal(backend, size):
    """The exception malloc(size) raises and its words, for a size refused."""
    if backend in ("zbud", "z3fold"):
        if size <= 0:
            return Invalid, f"{backend}_alloc of size 0"
        return NoSpace, f"{backend}_alloc of {size} bytes > {LARGEST[backend]}"
    if backend == "zsmalloc":
        return Invalid, f"zs_malloc of {size} bytes"
    if backend == "zcache-zbud":
        if size <= 0:
            return Invalid, f"zbud of {size} bytes: no data after a 0-byte key"
        return NoSpace, f"zbud of {size} bytes > zbud_max_buddy_size 4000"
    if size <= 0:
        return Invalid, "xv_malloc of size 0"
    if size <= 4092:
        return NoMemory, f"xv_malloc of {size} bytes: get_index({-(-size // 4) * 4}) is " \
            "past the last free list"
    return NoSpace, f"xv_malloc of {size} bytes > 4092"


# -- the contract, both engines ----------------------------------------------------

def test_objects_read_back_what_was_written(make):
    pool = make()
    data = [bytes([n]) * size for n, size in enumerate((1, 100, 1000, 3000, 3968), 1)]
    handles = [pool.malloc(len(d)) for d in data]
    for handle, d in zip(handles, data):
        pool.write(handle, d)
    for handle, d in zip(handles, data):
        assert pool.read(handle) == d and bytes(pool.map(handle)) == d
    assert handles[0] == FIRST_HANDLE[make.backend]
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


@engines("xvmalloc")
def test_xvmalloc_layout_by_hand(make):
    evictor = Evictor()
    pool = make(evict=evictor)
    a, b = pool.malloc(100), pool.malloc(50)      # blocks 0..103 and 104..159 (52 aligned)
    # The rest, 4096 - 160 - 4 = 3932 bytes at 160, is on list (3928 - 32) / 8 = 487, bit
    # 39 of word 7.  3000 bytes look from list 371 (word 5): nothing there, so word 7.
    c = pool.malloc(3000)
    assert (a, b, c) == (4, 108, 164)
    assert pool.free_blocks(487) == [] and pool.free_blocks(112) == [(0, 3164)]
    assert pool.slbitmap == [0, 1 << 48, 0, 0, 0, 0, 0, 0] and pool.flbitmap == 0b10
    d = pool.malloc(4088)                         # list 507: a page of its own, nothing left
    assert d == 4096 + 4 and pool.total_pages() == 2 and pool.lru_pfns() == [1, 0]
    pool.free(b)                                  # 52 bytes between two objects: list 2
    assert pool.free_blocks(2) == [(0, 104)] and pool.find_block(48) == 2
    assert pool.malloc(48) == 108                 # list 2's head again; a bare 0-byte rest
    # (offset, size, prev): c's prev is the 0-byte block's, with PREV_FREE.
    assert pool.page_blocks(0) == [(0, 100, 0), (104, 48, 0), (156, 0, 104 | 1),
                                   (160, 3000, 156 | 2), (3164, 928, 160 | 1)]
    pool.free(d)                                  # wholly free: the page goes
    assert pool.total_pages() == 1 and pool.lru_pfns() == [0]
    assert pool.reclaim_page(1) == 0 and evictor.calls == [4, 108, 164]  # address order
    assert pool.total_pages() == 0
    pool.check()


@engines("zcache-zbud")
def test_zcache_zbud_layout_by_hand(make):
    evictor = Evictor()
    pool = make(evict=evictor, key_in_handle=8)   # zswap's 8-byte swap entry as the key
    a = pool.malloc(8 + 1000)     # 1032 bytes with the handle: 17 chunks, zbud 0 of page 0
    b = pool.malloc(8 + 2000)     # 2032: 32 chunks; page 0 has 47 free: its zbud 1, 2048..
    c = pool.malloc(8 + 3000)     # 3032: 48 chunks, fits nowhere: page 1
    assert (a, b, c) == (0, 1, 4096)
    assert pool.lru_pfns() == [1, 0] and pool.unbuddied_pfns(48) == [1]
    pool.write(b, b"swpentry" + bytes(range(200)))
    frame = pool.memory.frames[0]
    # the key in the handle's last 8 bytes (2048 + 24), the rest after the handle
    assert bytes(frame[2072:2080]) == b"swpentry" and bytes(frame[2080:2280]) == bytes(range(200))
    pool.free(a)                  # page 0 keeps b (32 chunks): unbuddied[32], not promoted
    assert pool.unbuddied_pfns(32) == [0] and pool.lru_pfns() == [1, 0]
    assert pool.malloc(8 + 1984) == 0             # 2016: 32 chunks, 32 + 32 = 64 fit page 0
    assert pool.lru_pfns() == [0, 1]              # promoted on the add
    assert pool.reclaim_page(8) == 0 and evictor.calls == [4096]   # the oldest, page 1
    assert pool.total_pages() == 1
    pool.check()


@engines("zcache-zbud")
def test_zcache_zbud_zombies_by_hand(make):
    pool = make()
    a0, a1 = pool.malloc(64 * 30 - 32), pool.malloc(64 * 30 - 32)   # 30 chunks each: page 0
    b0 = pool.malloc(64 * 40 - 32)                                  # 40 chunks: page 1
    assert (a0, a1, b0) == (0, 1, 4096) and pool.lru_pfns() == [1, 0]
    pool.write(a1, b"kept")
    pool.evict = Evictor(refuse={a1})
    # page 0, the oldest: a0 goes, a1 refuses, the page stays a zombie; then page 1 goes
    assert pool.reclaim_page(8) == 0 and pool.evict.calls == [a0, a1, b0]
    assert pool.lru_pfns() == [] and pool.total_pages() == 1 and pool.read(a1)[:4] == b"kept"
    pool.check()
    c = pool.malloc(64 * 10 - 32)         # 30 + 10 would fit the zombie: a new page instead
    assert c >> 12 != 0 and c & 1 == 0 and pool.lru_pfns() == [c >> 12]
    pool.free(a1)                         # the zombie's last zbud: the page goes with it
    assert pool.total_pages() == 1 == pool.memory.used_pages
    assert pool.evict_results == {0: 2, -errno.EEXIST: 1} and pool.reclaim_pages_scanned == 2
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
    limit = LARGEST[make.backend]
    pool.malloc(limit)
    for size in (0, -1, limit + 1, 10 ** 30):
        error, message = refusal(make.backend, size)
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
    inside = FIRST_HANDLE[make.backend] + 16          # within the first object
    for handle in (-1, 2 ** 64, 10 ** 30, 99 << 12) + ((inside,) * (make.backend != "zbud")):
        shown = f"{handle:#x}" if make.backend in HEX_HANDLES else f"{handle}"
        for operation in (pool.free, pool.read, pool.map):
            with pytest.raises(Invalid) as raised:
                operation(handle)
            assert str(raised.value) == f"handle {shown} {NOT_IN_POOL[make.backend]}"
    if make.backend == "zbud":
        with pytest.raises(Invalid, match="^handle 0x50 names no live buddy$"):
            pool.read(inside)
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
    tries = tries_on_one_refused_page(make.backend, 3)
    assert pool.reclaim_page(3) == -errno.EAGAIN and pool.evict_calls == 2 + tries
    assert pool.evict_results == {0: 2, -errno.EEXIST: tries}
    pool.malloc(100)                               # a page on the LRU for the next call
    assert pool.reclaim_page(0) == RETRIES_ZERO[make.backend]
    assert make().reclaim_page(8) == -errno.EINVAL                 # no evict callback
    pool.check()


def test_reclaim_counts_unchanged_rounds(make):
    """A million tries refused unchanged on one page: counted, not run."""
    evictor = Evictor(unchanged=True)
    pool = make(evict=evictor)
    evictor.refuse = {pool.malloc(100)}
    tries = tries_on_one_refused_page(make.backend, 10 ** 6)
    assert pool.reclaim_page(10 ** 6) == -errno.EAGAIN
    assert pool.evict_calls == pool.reclaim_pages_scanned == tries
    assert pool.evict_results == {-errno.EEXIST: tries}
    assert len(evictor.calls) < 10
    assert pool.unchanged_result == -errno.EEXIST


def test_evict_that_raises_leaves_the_page_under_reclaim(make):
    """zcache's page is a zombie by then, which check() accepts."""
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
                           "0 LRU entries for 1 zspages",
               "xvmalloc": "xvmalloc pool: pages [0] under reclaim",
               "zcache-zbud": None}[make.backend]
    if message is None:
        pool.check()
        assert pool.lru_pfns() == [] and pool.total_pages() == 1
        return
    with pytest.raises(PoolCorrupted) as raised:
        pool.check()
    assert str(raised.value) == message


def test_options_and_engines(monkeypatch):
    for engine in ENGINES:
        with pytest.raises(ConfigError, match=r"^zsmalloc chain_size 3 is outside 4\.\.16$"):
            create_pool("zsmalloc", chain_size=3, engine=engine)
        with pytest.raises(ConfigError, match="^zbud takes no pool options, not chain_size$"):
            create_pool("zbud", chain_size=8, engine=engine)
        with pytest.raises(ConfigError,
                           match=r"^zcache-zbud key_in_handle 33 is outside 0\.\.32$"):
            create_pool("zcache-zbud", key_in_handle=33, engine=engine)
        assert create_pool("zcache-zbud", key_in_handle=32, engine=engine).key_in_handle == 32
    with pytest.raises(ConfigError, match="^unknown engine 'c'; known: native, python$"):
        create_pool("zbud", engine="c")
    assert known_pools("native") == sorted(PORTED)
    # An allocator with no compiled twin yet (one that exists only in Python):
    monkeypatch.setitem(_DRIVERS["python"], "newpool", object)
    with pytest.raises(ConfigError) as raised:
        create_pool("newpool", engine="native")
    assert str(raised.value) == ("the native engine has no newpool yet; "
                                 f"it has {', '.join(sorted(PORTED))}")


# -- the native engine's own guards ------------------------------------------------------

def test_native_rejects_what_is_not_an_int_or_bytes():
    from zswapsim.zpool.native import NativeZcacheZbudPool, NativeZsmallocPool
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
    for key in (True, -1, 33, 2 ** 70, "8"):
        with pytest.raises(ConfigError):
            NativeZcacheZbudPool(key_in_handle=key)


def test_native_xvmalloc_refuses_headers_scribbled_from_python():
    """xvmalloc's headers live in the Memory's frames, which Python code can
    write: a header the layout rules cannot produce is PoolCorrupted, with
    the pool left as it was, and never an access beyond the page."""
    pool = create_pool("xvmalloc", engine="native")
    a, b, c = (pool.malloc(100) for _ in range(3))   # blocks at 0, 104, 208; the rest at 312
    frame = pool.memory.frames[0]
    scribbles = [
        (104, 0xFFFF, lambda: pool.free(b), 104),         # b's size runs 64K past the page
        (210, 4000 | 2, lambda: pool.free(c), 208),       # c's "free" previous block after it
        (312, 8, lambda: pool.malloc(1000), 312),         # the listed rest shrunk under its list
    ]
    for offset, value, call, block in scribbles:
        kept = int.from_bytes(frame[offset:offset + 2], "little")
        frame[offset:offset + 2] = value.to_bytes(2, "little")
        with pytest.raises(PoolCorrupted) as raised:
            call()
        assert str(raised.value) == (f"xvmalloc pool: page 0: block at {block}: "
                                     "headers that do not tile the page")
        if offset == 104:
            assert len(pool.read(b)) == 4096 - 108    # its bytes end with the page
            with pytest.raises(PoolCorrupted, match="the last block ends at 65644$"):
                pool.check()                          # 104 + 4 + 65536
        frame[offset:offset + 2] = kept.to_bytes(2, "little")
        pool.check()
    assert [pool.read(h) for h in (a, b, c)] == [bytes(frame[4:104]), bytes(frame[108:208]),
                                                 bytes(frame[212:312])]


def test_native_xvmalloc_survives_a_nested_reclaim_releasing_its_page():
    """An evict callback that refills the page under reclaim (malloc puts it
    back on the LRU) and reclaims it again from inside: the inner call frees
    the page, and the outer one, whose page is gone (the Python model fails
    on a KeyError there), says so instead of touching it."""
    depth = []

    def evict(pool, handle):
        pool.free(handle)
        if not depth:
            depth.append(pool.malloc(100))            # into the emptied page 0
            assert pool.lru_pfns() == [0]
            assert pool.reclaim_page(1) == 0 and pool.total_pages() == 0
        return 0
    pool = create_pool("xvmalloc", engine="native", evict=evict)
    pool.malloc(100)
    with pytest.raises(PoolCorrupted, match="^xvmalloc pool: page 0: released under reclaim$"):
        pool.reclaim_page(1)
    assert depth == [4] and pool.total_pages() == pool.memory.used_pages == 0
    pool.check()


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
                key=st.sampled_from([0, 8, 32]),
                ram=st.sampled_from([None, 6, 40]), fault_rate=st.sampled_from([0, 0.2]),
                unchanged=st.booleans(), greedy=st.booleans())
    def start(self, backend, chain, key, ram, fault_rate, unchanged, greedy):
        self.backend = backend
        options = {"zsmalloc": {"chain_size": chain},
                   "zcache-zbud": {"key_in_handle": key}}.get(backend, {})
        self.prepped = []                          # zcache: handles create_prep gave
        self.unfinished = set()                    # ... and create_finish has not finished
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

    @precondition(lambda self: set(self.live) - self.unfinished)
    @rule(data=st.data())
    def free(self, data):
        """Free an object (not one mid-put: zcache's puts end in create_finish)."""
        handle = data.draw(st.sampled_from(sorted(set(self.live) - self.unfinished)))
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

    @precondition(lambda self: self.backend == "zcache-zbud")
    @rule(size=SIZES)
    def create_prep(self, size):
        status, handle = self.both("create_prep", size)
        if status == "ok":
            self.live[handle], self.sizes[handle] = b"", size
            self.prepped.append(handle)
            self.unfinished.add(handle)

    @precondition(lambda self: self.prepped)
    @rule(data=st.data())
    def create_finish(self, data):
        """Finish a put, or one already finished or freed: the same error."""
        handle = data.draw(st.sampled_from(self.prepped))
        if self.both("create_finish", handle)[0] == "ok":
            self.unfinished.discard(handle)

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
        if self.backend == "xvmalloc":
            assert (native.flbitmap, native.slbitmap) == (python.flbitmap, python.slbitmap)
            for index in range(508):
                assert native.free_blocks(index) == python.free_blocks(index), index
            assert native._pfns() == sorted(python.pages)
            for pfn in python.pages:
                assert native.page_blocks(pfn) == python.page_blocks(pfn)
        if self.backend == "zcache-zbud":
            for used in range(1, 65):
                assert native.unbuddied_pfns(used) == python.unbuddied_pfns(used), used
            assert native._pfns() == sorted(python.pages)
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
