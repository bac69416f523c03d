"""z3fold against the rules of mm/z3fold.c (Linux 6.1), worked out by hand.

The arithmetic every expected number below comes from: 64 chunks of 64 bytes;
the header takes ZHDR_CHUNKS = 2 (sizeof(struct z3fold_header) = 88 on
x86_64, rounded up to 128), so NCHUNKS = 62; chunks = ceil(size / 64).
FIRST sits at byte 128, LAST at 4096 - 64 * last_chunks, a new MIDDLE at
chunk first_chunks + 2.  A page's list is num_free_chunks: 62 - first - last
without a middle, else the larger free gap beside the middle.  Requests over
4096 - 128 - 64 = 3904 bytes get a headless page.  Sizes are mostly whole
chunks (chunks(n) = 64 * n) so offsets read straight off the rules.

Every test that goes through the pool's public API (create_pool's pools:
malloc, write, read, free, reclaim_page, locate, layout, the list views,
check) runs against both engines, the Python model and z3fold.c (the `make`
fixture); the ones that look at the model's own helpers run it alone.
"""

import errno
import functools

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from zswapsim.errors import Invalid, NoMemory, NoSpace
from zswapsim.memory import Memory
from zswapsim.zpool import create_pool
from zswapsim.zpool.base import ENGINES
from zswapsim.zpool.z3fold import (FIRST, HEADLESS, LAST, MIDDLE, NCHUNKS, ZHDR_CHUNKS,
                                   Z3foldHeader, size_to_chunks)
from zswapsim.zswap import Zswap

from evictors import Evictor


@pytest.fixture(params=ENGINES)
def make(request):
    """make(**create_pool's keywords): a z3fold pool of each engine in turn."""
    return functools.partial(create_pool, "z3fold", engine=request.param)


def chunks(n):
    """A size that needs exactly n chunks (the largest such size)."""
    return 64 * n


def pattern(n, seed):
    return bytes((seed + 7 * i) & 0xFF for i in range(n))


def filled(pool, size, seed):
    """malloc and write a recognisable pattern; (handle, data)."""
    handle = pool.malloc(size)
    data = pattern(size, seed)
    pool.write(handle, data)
    return handle, data


def three_buddies(pool, first, last, middle):
    """One page holding FIRST, LAST then MIDDLE of the given chunk counts
    (alloc order F, L, M), each filled; returns the handles and data."""
    f, f_data = filled(pool, chunks(first), 1)
    l, l_data = filled(pool, chunks(last), 2)
    m, m_data = filled(pool, chunks(middle), 3)
    assert {pool.locate(h)[0] for h in (f, l, m)} == {pool.locate(f)[0]}
    return (f, l, m), {f: f_data, l: l_data, m: m_data}


# -- geometry and limits ----------------------------------------------------

def test_header_is_two_chunks_on_x86_64():
    assert ZHDR_CHUNKS == 2 and NCHUNKS == 62


def test_chunk_arithmetic():
    assert [size_to_chunks(s) for s in (1, 64, 65, 128, 129, 1280, 1281, 3904)] == \
        [1, 1, 2, 2, 3, 20, 21, 61]


def test_size_limits_and_headless_threshold(make):
    pool = make()
    with pytest.raises(Invalid):
        pool.malloc(0)
    with pytest.raises(NoSpace) as exc:
        pool.malloc(4097)
    assert exc.value.errno == errno.ENOSPC
    assert pool.total_pages() == 0

    shared = pool.malloc(3904)                    # largest object with a header: 61 chunks
    pfn, bud, offset = pool.locate(shared)
    assert (bud, offset) == ("first", 128)
    assert pool.unbuddied_pfns(1) == [pfn]        # 62 - 61 free
    # One chunk still fits beside it, as LAST.
    assert pool.locate(pool.malloc(64)) == (pfn, "last", 4096 - 64)

    headless = pool.malloc(3905)                  # one byte more: a page of its own
    hpfn, bud, offset = pool.locate(headless)
    assert (bud, offset) == ("headless", 0) and hpfn != pfn
    assert pool.layout(hpfn)["headless"] and pool.layout(hpfn)["free_chunks"] is None
    assert all(hpfn not in pool.unbuddied_pfns(i) for i in range(NCHUNKS))
    assert pool.lru_pfns() == [hpfn, pfn]
    # Nothing can share a headless page.
    assert pool.locate(pool.malloc(64))[0] not in (pfn, hpfn)

    full = pool.malloc(4096)
    data = pattern(4096, 9)
    pool.write(full, data)
    assert pool.read(full) == data
    assert pool.total_pages() == 4


# -- placement --------------------------------------------------------------

def test_first_last_middle_placement_and_bytes(make):
    memory = Memory()
    pool = make(memory=memory)
    first, a = filled(pool, 100, 1)               # 2 chunks
    pfn = pool.locate(first)[0]
    assert pool.locate(first) == (pfn, "first", 128)
    assert pool.unbuddied_pfns(60) == [pfn]       # 62 - 2
    last, b = filled(pool, 200, 2)                # 4 chunks, right-justified
    assert pool.locate(last) == (pfn, "last", 4096 - 4 * 64)
    assert pool.unbuddied_pfns(56) == [pfn]       # 62 - 2 - 4
    middle, c = filled(pool, 300, 3)              # 5 chunks, right after FIRST
    assert pool.locate(middle) == (pfn, "middle", (2 + 2) * 64)
    assert pool.total_pages() == 1
    assert all(not pool.unbuddied_pfns(i) for i in range(NCHUNKS))   # three: no list
    frame = memory.frames[pfn]
    assert bytes(frame[128:228]) == a
    assert bytes(frame[3840:4040]) == b
    assert bytes(frame[256:556]) == c
    assert [pool.read(h) for h in (first, last, middle)] == [a, b, c]


def test_short_write_keeps_the_rest(make):
    pool = make()
    handle, data = filled(pool, 100, 5)
    pool.write(handle, b"xyz")
    assert pool.read(handle) == b"xyz" + data[3:]
    with pytest.raises(Invalid):
        pool.write(handle, bytes(101))


def test_num_free_chunks_unit():
    z = Z3foldHeader(0)
    z.first_chunks, z.last_chunks = 10, 20
    assert z.num_free_chunks() == 62 - 10 - 20
    z = Z3foldHeader(0)
    z.middle_chunks, z.start_middle = 10, 12      # gap before 12 - 2 = 10, after 64 - 22 = 42
    assert z.num_free_chunks() == 42
    z.last_chunks = 40                            # after is taken: only the gap before
    assert z.num_free_chunks() == 10
    z.last_chunks, z.first_chunks = 0, 10         # before is taken: only the gap after
    assert z.num_free_chunks() == 42


def test_get_free_buddy_unit():
    z = Z3foldHeader(0)
    assert z.get_free_buddy(5) == FIRST
    z.first_chunks = 5
    assert z.get_free_buddy(5) == LAST
    z.last_chunks = 5
    assert z.get_free_buddy(5) == MIDDLE
    z = Z3foldHeader(0)
    z.middle_chunks, z.start_middle = 10, 12      # 10 chunks free before the middle
    assert z.get_free_buddy(10) == FIRST
    assert z.get_free_buddy(11) == LAST
    z.last_chunks = 30
    assert z.get_free_buddy(11) == HEADLESS       # no slot fits (kernel WARNs)


def test_free_list_is_the_larger_gap_beside_a_middle(make):
    pool = make()
    # F10 | M20 at chunk 12..32 | 2 free | L30 at 34..64
    (f, l, m), data = three_buddies(pool, 10, 30, 20)
    pfn = pool.locate(f)[0]
    pool.free(f)
    # The gap after the middle is 64 - (30 + 12 + 20) = 2 < 3: nothing moves.
    # Free chunks 10 + 2 = 12, but the page is listed by the larger gap: 10.
    assert pool.locate(m) == (pfn, "middle", 12 * 64)
    assert pool.unbuddied_pfns(10) == [pfn]
    assert pool.layout(pfn)["free_chunks"] == 10
    # 10 chunks fit before the middle: get_free_buddy gives FIRST.
    again = pool.malloc(chunks(10))
    assert pool.locate(again) == (pfn, "first", 128)
    assert pool.read(m) == data[m] and pool.read(l) == data[l]


def test_best_fit_takes_smallest_list_then_newest_page(make):
    pool = make()
    a = pool.locate(pool.malloc(chunks(61)))[0]   # free 1
    b = pool.locate(pool.malloc(chunks(40)))[0]   # free 22
    c = pool.locate(pool.malloc(chunks(30)))[0]   # free 32
    assert len({a, b, c}) == 3
    assert pool.locate(pool.malloc(chunks(20)))[0] == b     # list 22 before 32
    assert pool.locate(pool.malloc(chunks(25)))[0] == c     # b is now on list 2
    older = pool.locate(pool.malloc(chunks(50)))[0]         # free 12
    newer = pool.locate(pool.malloc(chunks(50)))[0]         # free 12
    assert pool.unbuddied_pfns(12) == [newer, older]
    assert pool.locate(pool.malloc(chunks(12)))[0] == newer


@pytest.mark.parametrize("size,count,pages", [
    (1, 9, 3),          # 1 chunk: F, L, M in every page
    (chunks(20), 9, 3),  # 3 x 20 <= 62: still three a page
    (chunks(20) + 1, 9, 5),   # 21 chunks: F + L leave 20, too small for a third
    (chunks(31), 9, 5),  # 2 x 31 = 62: two a page
    (chunks(31) + 1, 9, 9),   # 32 chunks: one a page
    (3904, 4, 4),        # 61 chunks, one a page (with a header)
    (3905, 4, 4),        # headless
])
def test_n_objects_of_one_size(size, count, pages, make):
    memory = Memory()
    pool = make(memory=memory)
    for _ in range(count):
        pool.malloc(size)
    assert pool.total_pages() == pages == memory.used_pages


def test_three_twenty_chunk_objects_fill_a_page(make):
    pool = make()
    f, l, m = (pool.malloc(chunks(20)) for _ in range(3))
    pfn = pool.locate(f)[0]
    assert pool.locate(l) == (pfn, "last", 4096 - 20 * 64)
    assert pool.locate(m) == (pfn, "middle", 22 * 64)   # first 20 + header 2


def test_malloc_reports_enomem_and_leaves_the_pool_alone(make):
    pool = make(memory=Memory(totalram_pages=1))
    handle = pool.malloc(chunks(40))
    pfn = pool.locate(handle)[0]
    for size in (chunks(23), 3905):               # needs a new page / a headless one
        with pytest.raises(NoMemory):
            pool.malloc(size)
        assert pool.total_pages() == 1
        assert pool.lru_pfns() == [pfn]
        assert pool.unbuddied_pfns(22) == [pfn]
    assert pool.locate(pool.malloc(chunks(22)))[0] == pfn


# -- compaction on free -----------------------------------------------------

def test_middle_slides_up_then_becomes_first(make):
    memory = Memory()
    pool = make(memory=memory)
    # F5 | M10 at 7..17 | L5 at 59..64
    (f, l, m), data = three_buddies(pool, 5, 5, 10)
    pfn = pool.locate(f)[0]
    assert pool.locate(m) == (pfn, "middle", 7 * 64)
    pool.free(f)
    # FIRST empty, LAST used, gap after 64 - (5 + 7 + 10) = 42 >= 3:
    # the middle moves up against LAST, to 64 - 5 - 10 = 49.
    assert pool.locate(m) == (pfn, "middle", 49 * 64)
    assert pool.unbuddied_pfns(47) == [pfn]       # free before: 49 - 2
    assert pool.read(m) == data[m] and pool.read(l) == data[l]
    pool.free(l)
    # A single object and no other page to take it: FIRST and LAST empty,
    # so the middle becomes FIRST, keeping its handle.
    assert pool.locate(m) == (pfn, "first", 128)
    assert pool.layout(pfn)["first"] == 10 and pool.layout(pfn)["middle"] == 0
    assert pool.unbuddied_pfns(52) == [pfn]
    assert pool.read(m) == data[m]
    assert pool.total_pages() == 1 == memory.used_pages


@pytest.mark.parametrize("last,start,free_list", [
    (29, 15, 13),       # gap after 64 - (29 + 12 + 20) = 3: moves to 64 - 29 - 20
    (30, 12, 10),       # gap 2: stays
])
def test_middle_slides_up_only_for_a_big_gap(last, start, free_list, make):
    pool = make()
    (f, l, m), data = three_buddies(pool, 10, last, 20)   # middle at 12
    pfn = pool.locate(f)[0]
    pool.free(f)
    assert pool.locate(m) == (pfn, "middle", start * 64)
    assert pool.unbuddied_pfns(free_list) == [pfn]
    assert pool.read(m) == data[m]


@pytest.mark.parametrize("first,start,free_list", [
    (7, 9, 35),         # gap 12 - (7 + 2) = 3: moves down to 9; free after 64 - 29
    (8, 12, 32),        # gap 2: stays; free after 64 - 32
])
def test_middle_slides_down_only_for_a_big_gap(first, start, free_list, make):
    pool = make()
    (f, l, m), data = three_buddies(pool, 10, 30, 20)     # middle at 12, gap after 2
    pfn = pool.locate(f)[0]
    pool.free(f)                                  # listed on 10, nothing moves
    small, small_data = filled(pool, chunks(first), 4)
    assert pool.locate(small) == (pfn, "first", 128)
    pool.free(l)
    assert pool.locate(m) == (pfn, "middle", start * 64)
    assert pool.unbuddied_pfns(free_list) == [pfn]
    assert pool.read(m) == data[m] and pool.read(small) == small_data


def test_single_buddy_moves_to_another_page_and_frees_its_own(make):
    memory = Memory()
    pool = make(memory=memory)
    small, small_data = filled(pool, chunks(10), 1)    # page A: F10, free 52
    big = pool.malloc(chunks(40))                 # list 52 -> A as LAST; A free 12
    a = pool.locate(small)[0]
    assert pool.locate(big)[0] == a
    other, other_data = filled(pool, chunks(30), 2)    # lists 30.. empty: page B, free 32
    b = pool.locate(other)[0]
    assert pool.lru_pfns() == [b, a]
    pool.free(big)
    # A keeps one object; compact_single_buddy finds B on list 32 >= 10 and
    # copies it there as LAST; A is freed.  The handle stays valid.
    assert pool.locate(small) == (b, "last", 4096 - 10 * 64)
    assert pool.read(small) == small_data and pool.read(other) == other_data
    assert pool.total_pages() == 1 == memory.used_pages
    assert pool.layout(b)["foreign_handles"] == 1
    assert pool.unbuddied_pfns(62 - 30 - 10) == [b]
    assert pool.lru_pfns() == [b]
    pool.free(small)
    assert pool.layout(b)["foreign_handles"] == 0


def test_a_page_left_with_only_a_foreign_object_stays(make):
    pool = make()
    small, small_data = filled(pool, chunks(10), 1)    # page A: F10
    big = pool.malloc(chunks(40))                 # A: L40
    other = pool.malloc(chunks(30))               # page B: F30, free 32
    pool.free(big)                                # small moves into B as LAST, A goes
    b = pool.locate(other)[0]
    assert pool.locate(small) == (b, "last", 4096 - 10 * 64)
    c = pool.locate(pool.malloc(chunks(45)))[0]   # lists 45.. empty: page C, free 17
    pool.free(other)
    # B's one object is foreign there, so compact_single_buddy is not tried
    # (C's 17 free chunks would take it): B stays, on 62 - 10 = 52.
    assert pool.locate(small) == (b, "last", 4096 - 10 * 64)
    assert pool.read(small) == small_data
    assert pool.layout(b)["foreign_handles"] == 1 and pool.unbuddied_pfns(52) == [b]
    assert pool.unbuddied_pfns(17) == [c] and pool.total_pages() == 2


def test_single_buddy_needs_a_listed_page_with_room(make):
    pool = make()
    f = pool.malloc(chunks(40))                   # page A: free 22
    l = pool.malloc(chunks(20))                   # A: LAST, free 2
    other = pool.malloc(chunks(45))               # page B: free 17 < 40
    a, b = pool.locate(f)[0], pool.locate(other)[0]
    pool.free(l)
    assert pool.locate(f) == (a, "first", 128)    # nowhere to go: stays
    assert pool.total_pages() == 2
    assert pool.unbuddied_pfns(22) == [a] and pool.unbuddied_pfns(17) == [b]


def test_free_releases_an_empty_page(make):
    memory = Memory()
    pool = make(memory=memory)
    h = pool.malloc(100)
    headless = pool.malloc(4000)
    pool.free(h)
    pool.free(headless)
    assert pool.total_pages() == 0 == memory.used_pages
    assert pool.lru_pfns() == []
    pool.check()                                  # and so no handle is left either
    with pytest.raises(Invalid):
        pool.free(h)
    with pytest.raises(Invalid):
        pool.read(headless)


# -- reclaim ----------------------------------------------------------------


def test_reclaim_einval_paths(make):
    assert make().reclaim_page(8) == -errno.EINVAL        # no evict op
    pool = make(evict=Evictor())
    assert pool.reclaim_page(8) == -errno.EINVAL                         # empty LRU
    pool.malloc(100)
    assert pool.reclaim_page(0) == -errno.EINVAL                         # no retries
    assert pool.total_pages() == 1 and pool.reclaim_calls == 2


def test_reclaim_evicts_middle_first_last(make):
    evictor = Evictor()
    memory = Memory()
    pool = make(memory=memory, evict=evictor)
    (f, l, m), _ = three_buddies(pool, 10, 10, 10)
    assert pool.reclaim_page(8) == 0
    assert evictor.calls == [m, f, l]
    assert pool.total_pages() == 0 == memory.used_pages
    assert pool.reclaim_pages_scanned == 1 and pool.evict_results == {0: 3}


def test_malloc_moves_page_to_lru_head_and_reclaim_takes_the_tail(make):
    pool = make()
    a_first = pool.malloc(chunks(40))             # page A, free 22
    b_first = pool.malloc(chunks(40))             # page B, free 22
    a, b = pool.locate(a_first)[0], pool.locate(b_first)[0]
    assert pool.lru_pfns() == [b, a]
    b_last = pool.malloc(chunks(20))              # head of list 22 is B
    assert pool.locate(b_last)[0] == b
    a_last = pool.malloc(chunks(22))              # only A is on list 22: A to the head
    assert pool.locate(a_last)[0] == a
    assert pool.lru_pfns() == [a, b]
    pool.evict = Evictor()
    assert pool.reclaim_page(8) == 0
    assert pool.evict.calls == [b_first, b_last]
    assert pool.lru_pfns() == [a]


def test_failed_page_goes_to_lru_head_and_its_list_and_next_tail_is_tried(make):
    pool = make()
    a, b, c = (pool.malloc(chunks(40)) for _ in range(3))
    pa, pb, pc = (pool.locate(h)[0] for h in (a, b, c))
    assert pool.unbuddied_pfns(22) == [pc, pb, pa]
    pool.evict = Evictor(refuse={a})
    assert pool.reclaim_page(8) == 0
    assert pool.evict.calls == [a, b]
    assert pool.lru_pfns() == [pa, pc]
    assert pool.unbuddied_pfns(22) == [pa, pc]
    assert pool.reclaim_pages_scanned == 2


def test_eagain_after_retries_pages_and_lru_rotation(make):
    pool = make()
    a, b, c = (pool.malloc(chunks(40)) for _ in range(3))
    pa, pb, pc = (pool.locate(h)[0] for h in (a, b, c))
    pool.evict = Evictor(refuse={a, b, c})
    # Tail order a, b, c; each failure goes to the head: a, b, c, a, b.
    assert pool.reclaim_page(5) == -errno.EAGAIN
    assert pool.evict.calls == [a, b, c, a, b]
    assert pool.lru_pfns() == [pb, pa, pc]
    assert pool.total_pages() == 3 and pool.reclaim_pages_scanned == 5
    assert pool.evict_results == {-errno.EEXIST: 5}
    pool.free(a)                                  # no longer claimed: freed at once
    assert pool.total_pages() == 2 and pool.lru_pfns() == [pb, pc]


def test_middle_failure_stops_the_page(make):
    pool = make()
    (f, l, m), data = three_buddies(pool, 10, 10, 10)
    pool.evict = Evictor(refuse={m})
    assert pool.reclaim_page(1) == -errno.EAGAIN
    assert pool.evict.calls == [m]
    assert all(pool.read(h) == data[h] for h in (f, l, m))


def test_partial_eviction_relists_without_compaction(make):
    pool = make()
    (f, l, m), data = three_buddies(pool, 10, 30, 20)     # middle at 12..32
    pfn = pool.locate(f)[0]

    def evict(pool_, handle):
        pool_.free(f)                             # under reclaim: sizes cleared only
        pool_.free(l)
        return -errno.EEXIST                      # and the middle stays

    pool.evict = evict
    assert pool.reclaim_page(1) == -errno.EAGAIN
    # No compaction on the way back: the middle stays at 12.  Gaps: before
    # 12 - 2 = 10, after 64 - 32 = 32; listed on 32, back at the LRU head.
    assert pool.locate(m) == (pfn, "middle", 12 * 64)
    assert pool.unbuddied_pfns(32) == [pfn] and pool.lru_pfns() == [pfn]
    assert pool.read(m) == data[m]
    # 25 chunks do not fit before the middle (10): LAST.  Then the page is on
    # list 10 (the gap before) and 5 chunks go FIRST.
    assert pool.locate(pool.malloc(chunks(25))) == (pfn, "last", 4096 - 25 * 64)
    assert pool.unbuddied_pfns(10) == [pfn]
    assert pool.locate(pool.malloc(chunks(5))) == (pfn, "first", 128)


def test_free_during_reclaim_only_clears_and_reclaim_frees_page(make):
    memory = Memory()
    pool = make(memory=memory)
    (f, l, m), _ = three_buddies(pool, 10, 10, 10)
    seen = []

    def evict(pool_, handle):
        seen.append(handle)
        if handle == m:
            for h in (m, f, l):
                pool_.free(h)
            seen.append(pool_.total_pages())      # still held by reclaim
        return 0      # stale first/last handles: entry gone, nothing to do

    pool.evict = evict
    assert pool.reclaim_page(8) == 0
    # The handles were taken before the callbacks ran, as the kernel does.
    assert seen == [m, 1, f, l]
    assert pool.total_pages() == 0 == memory.used_pages


def test_headless_page_is_freed_once_its_object_is_evicted(make):
    memory = Memory()
    pool = make(memory=memory)
    h = pool.malloc(4000)
    inside = []

    def evict(pool_, handle):
        pool_.free(handle)                        # under reclaim: does nothing yet
        inside.append(pool_.total_pages())
        return 0

    pool.evict = evict
    assert pool.reclaim_page(8) == 0
    assert inside == [1]
    assert pool.total_pages() == 0 == memory.used_pages
    pool.check()                                  # and so no handle is left either
    with pytest.raises(Invalid):
        pool.read(h)


def test_headless_failure_goes_back_to_lru_head(make):
    pool = make()
    h, data = filled(pool, 4000, 3)
    other = pool.malloc(100)
    ph, po = pool.locate(h)[0], pool.locate(other)[0]
    pool.evict = Evictor(refuse={h, other})
    assert pool.reclaim_page(1) == -errno.EAGAIN
    assert pool.evict.calls == [h]
    assert pool.lru_pfns() == [ph, po]
    assert pool.read(h) == data


def test_reclaim_skips_pages_with_foreign_handles(make):
    pool = make()
    small = pool.malloc(chunks(10))               # page A
    big = pool.malloc(chunks(40))                 # A, LAST
    other = pool.malloc(chunks(30))               # page B
    pool.free(big)                                # small moves into B (foreign)
    b = pool.locate(other)[0]
    assert pool.layout(b)["foreign_handles"] == 1
    pool.evict = Evictor()
    assert pool.reclaim_page(8) == -errno.EAGAIN  # the only page cannot be taken
    assert pool.evict.calls == [] and pool.reclaim_pages_scanned == 0
    c = pool.locate(pool.malloc(chunks(50)))[0]   # a new page at the LRU head
    assert pool.lru_pfns() == [c, b]
    assert pool.reclaim_page(8) == 0              # B is skipped, C goes
    assert pool.lru_pfns() == [b]
    pool.free(small)
    assert pool.reclaim_page(8) == 0
    assert pool.total_pages() == 0


def test_zswap_writeback_through_z3fold():
    """zswap's evict callback reads its header back through our handles."""
    memory = Memory(1000)
    z = Zswap(backend="z3fold", compressor="lz4", memory=memory)
    pages = [bytes([i]) * 2048 + pattern(2048, i) for i in range(1, 7)]
    for offset, page in enumerate(pages, start=1):
        assert z.store(0, offset, page)
    pool = z.pools[None]
    while pool.total_pages():
        assert pool.reclaim_page(8) == 0
    assert z.written_back_pages == 6
    assert [z.load(0, offset) for offset in range(1, 7)] == pages


# -- random sequences -------------------------------------------------------

SIZES = st.one_of(st.integers(1, 4200),
                  st.sampled_from([64, 65, chunks(20), chunks(20) + 1, chunks(31),
                                   chunks(31) + 1, 3904, 3905, 4096, 4097]))


class Z3foldMachine(RuleBasedStateMachine):
    """Random malloc/write/free/reclaim against a byte-level shadow copy,
    through the public API, in the Python model (and, subclassed, z3fold.c)."""

    engine = "python"

    def __init__(self):
        super().__init__()
        self.memory = Memory(totalram_pages=24)
        self.pool = create_pool("z3fold", memory=self.memory, evict=self.evict,
                                engine=self.engine)
        self.expected = {}          # live handle -> bytes it must read back
        self.decisions = []

    def evict(self, pool, handle):
        assert pool.read(handle) == self.expected[handle]
        if self.decisions and self.decisions.pop():
            pool.free(handle)
            del self.expected[handle]
            return 0
        return -errno.EEXIST

    @rule(size=SIZES)
    def malloc(self, size):
        before = (self.pool.total_pages(), self.pool.lru_pfns())
        try:
            handle = self.pool.malloc(size)
        except NoSpace:
            assert size > 4096
            return
        except NoMemory:
            assert (self.pool.total_pages(), self.pool.lru_pfns()) == before
            return
        assert size <= 4096 and handle not in self.expected
        self.expected[handle] = self.pool.read(handle)
        assert len(self.expected[handle]) == size

    @precondition(lambda self: self.expected)
    @rule(data=st.data())
    def write(self, data):
        handle = data.draw(st.sampled_from(sorted(self.expected)))
        old = self.expected[handle]
        new = data.draw(st.binary(max_size=len(old)))
        self.pool.write(handle, new)
        self.expected[handle] = new + old[len(new):]

    @precondition(lambda self: self.expected)
    @rule(data=st.data())
    def free(self, data):
        handle = data.draw(st.sampled_from(sorted(self.expected)))
        self.pool.free(handle)
        del self.expected[handle]

    @rule(decisions=st.lists(st.booleans(), max_size=12), retries=st.integers(0, 4))
    def reclaim(self, decisions, retries):
        self.decisions = list(decisions)
        ret = self.pool.reclaim_page(retries)
        assert ret in (0, -errno.EAGAIN, -errno.EINVAL)

    @invariant()
    def objects_read_back(self):
        for handle, data in self.expected.items():
            assert self.pool.read(handle) == data

    @invariant()
    def pages_are_accounted_and_laid_out(self):
        """check() holds every page on the LRU and every handle in its slot;
        so with as many objects laid in the pages as live handles expected,
        the pool's handles are exactly the expected ones."""
        pool = self.pool
        pool.check()
        pfns = pool.lru_pfns()
        assert pool.total_pages() == self.memory.used_pages == len(set(pfns)) == len(pfns)
        listed = {pfn: i for i in range(NCHUNKS) for pfn in pool.unbuddied_pfns(i)}
        objects = 0
        for pfn in pfns:
            lay = pool.layout(pfn)
            if lay["headless"]:
                assert pfn not in listed
                objects += 1
                continue
            first, middle, last = lay["first"], lay["middle"], lay["last"]
            spans = [(2, 2 + first)] if first else []
            if middle:
                spans.append((lay["start_middle"], lay["start_middle"] + middle))
            if last:
                spans.append((64 - last, 64))
            objects += len(spans)
            # Objects lie after the header, in order, without overlapping.
            assert spans and spans[0][0] >= 2
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
            assert lay["foreign_handles"] >= 0
            if lay["first"] and lay["middle"] and lay["last"]:
                assert pfn not in listed
            else:
                assert listed[pfn] == lay["free_chunks"] >= 0
        assert objects == len(self.expected)

    def teardown(self):
        for handle in list(self.expected):
            self.pool.free(handle)
        assert self.pool.total_pages() == 0 == self.memory.used_pages


class NativeZ3foldMachine(Z3foldMachine):
    engine = "native"


for machine in (Z3foldMachine, NativeZ3foldMachine):
    machine.TestCase.settings = settings(max_examples=100, stateful_step_count=50,
                                         deadline=None)
test_z3fold_state_machine = Z3foldMachine.TestCase
test_native_z3fold_state_machine = NativeZ3foldMachine.TestCase
