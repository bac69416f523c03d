"""xvmalloc against the rules of the seed drivers/staging/ramzswap/xvmalloc.c,
worked out by hand.

The arithmetic every expectation below comes from:
- a request of n bytes is aligned to 4; its block is that many bytes after a
  4-byte header, cut from the start of the free block found, and the data
  (the handle's page offset) starts 4 bytes into the block;
- what is left, less a new 4-byte header, is a free block after it, listed
  only if it is at least 32 bytes;
- a free block of s bytes is on list (s rounded down to 8 - 32) / 8; a
  request looks from list (max(n, 32) rounded up to 8 - 32) / 8 upward:
  the list itself, then the same 64-list bitmap word, then the lowest list
  of the next word that has one;
- a new page is one free block of 4092 bytes at offset 0.

The tests that use only the pool's public API (the zpool calls and the
introspection: page_blocks, free_blocks, find_block, the bitmaps, lru_pfns)
run against both engines, the Python model and its compiled twin; those
that look inside the model (check_pool, the state machine) run on it alone.
"""

import errno
import random

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from zswapsim.errors import Invalid, NoMemory, NoSpace
from zswapsim.memory import Memory
from zswapsim.zpool import create_pool
from zswapsim.zpool.xvmalloc import (
    BLOCK_FREE, BLOCK_HEADER, MAX_FLI, NUM_FREE_LISTS, PREV_FREE, PREV_MASK,
    XV_MAX_ALLOC_SIZE, get_index, get_index_for_insert, xv_align,
)

from evictors import Evictor


def new_pool(engine="python", **kwargs):
    memory = Memory(kwargs.pop("totalram_pages", None))
    return create_pool("xvmalloc", memory=memory, engine=engine, **kwargs), memory


def blocks(pool, pfn):
    """(offset, size, free) of every block of a page, in address order."""
    return [(offset, size, bool(prev & BLOCK_FREE))
            for offset, size, prev in pool.page_blocks(pfn)]


def pfn_of(handle):
    return handle >> 12


def offset_of(handle):
    return handle & 4095


def check_pool(pool):
    """Every structure agrees with the block headers in the frames."""
    assert pool.total_pages() == pool.memory.used_pages
    listed = {}
    for pfn, objects in pool.pages.items():
        live, end, prev_offset, prev_free = set(), 0, 0, False
        for offset, size, prev in pool.page_blocks(pfn):
            assert offset == end
            free = bool(prev & BLOCK_FREE)
            assert bool(prev & PREV_FREE) == prev_free
            assert prev & PREV_MASK == prev_offset
            assert not (free and prev_free)               # neighbours are merged
            if not free:
                live.add(offset + 4)
            elif size >= 32:
                listed[pfn, offset] = get_index_for_insert(size)
            end, prev_offset, prev_free = offset + 4 + xv_align(size), offset, free
        assert end == 4096
        assert live == objects
        if not objects:                                   # only a page grown for 4089..4092
            assert pool.page_blocks(pfn) == [(0, 4092, BLOCK_FREE)]
    assert {key: i for i, blocks_ in enumerate(pool.freelist) for key in blocks_} == listed
    nonempty = [i for i in range(NUM_FREE_LISTS) if pool.freelist[i]]
    words = [0] * MAX_FLI
    for i in nonempty:
        words[i // 64] |= 1 << (i % 64)
    assert pool.slbitmap == words
    assert pool.flbitmap == sum(1 << w for w in range(MAX_FLI) if words[w])
    assert set(pool.lru) == {pfn for pfn, objects in pool.pages.items() if objects}
    assert not pool.under_reclaim
    assert min(pool.reclaim_calls, pool.reclaim_pages_scanned, pool.evict_calls) >= 0


# -- sizes and lists -------------------------------------------------------

def test_list_spacing_and_indexes():
    assert (XV_MAX_ALLOC_SIZE, NUM_FREE_LISTS, MAX_FLI) == (4092, 508, 8)
    # A request rounds up to 8, and anything below 32 counts as 32.
    assert [get_index(n) for n in (1, 32, 33, 40, 41, 1016, 1020, 4088)] == \
        [0, 0, 1, 1, 2, 123, 124, 507]
    # A free block rounds down: list i holds blocks of 32 + 8i .. 32 + 8i + 7.
    assert [get_index_for_insert(s) for s in (32, 36, 40, 1020, 1024, 4088, 4092)] == \
        [0, 0, 1, 123, 124, 507, 507]
    # 4089..4092 align to 4092, which rounds up to 4096: list 508 does not exist.
    assert get_index(4092) == 508 == NUM_FREE_LISTS


def test_size_limits_and_the_largest_object(pool_engine):
    pool, memory = new_pool(pool_engine)
    with pytest.raises(Invalid):
        pool.malloc(0)
    with pytest.raises(NoSpace) as exc:
        pool.malloc(XV_MAX_ALLOC_SIZE + 1)
    assert exc.value.errno == errno.ENOSPC
    assert pool.total_pages() == 0
    # 4088 is served from list 507 by the page's 4092-byte block; the 4 bytes
    # left are a bare header: a free block of 0 bytes, unlisted.
    handle = pool.malloc(4088)
    assert offset_of(handle) == 4
    assert blocks(pool, pfn_of(handle)) == [(0, 4088, False), (4092, 0, True)]
    assert pool.flbitmap == 0
    assert len(pool.read(handle)) == 4088


def test_4089_to_4092_grow_a_page_then_fail_as_the_seed_does(pool_engine):
    pool, memory = new_pool(pool_engine)
    with pytest.raises(NoMemory):
        pool.malloc(4090)
    # grow_pool ran before the second find_block failed: the page stays, one
    # free block on the last list, and it is on no LRU (it holds no object).
    assert pool.total_pages() == 1 == memory.used_pages
    assert pool.free_blocks(507) == [(0, 0)]
    assert pool.lru_pfns() == []
    with pytest.raises(NoMemory):
        pool.malloc(4092)                         # every such request adds one
    assert pool.total_pages() == 2
    # Later requests use those pages, newest first (the lists are LIFO).
    handle = pool.malloc(100)
    assert handle == (1 << 12) | 4
    pool.free(handle)                             # wholly free again: released
    assert pool.total_pages() == 1
    assert pool.free_blocks(507) == [(0, 0)]


def test_nomemory_from_ram_leaves_the_pool_unchanged(pool_engine):
    pool, memory = new_pool(pool_engine, totalram_pages=1)
    pool.malloc(3000)                 # rest 4092 - 3000 - 4 = 1088 at 3004: list 132
    state = (pool.free_blocks(132), pool.flbitmap, list(pool.slbitmap), pool.lru_pfns())
    with pytest.raises(NoMemory):
        pool.malloc(2000)             # get_index 246 > 132: needs a page, none left
    assert (pool.free_blocks(132), pool.flbitmap, list(pool.slbitmap), pool.lru_pfns()) == state
    assert pool.total_pages() == 1 == memory.used_pages
    assert offset_of(pool.malloc(1000)) == 3008      # the rest still serves


# -- placement, headers, bytes ---------------------------------------------

def test_consecutive_objects_and_their_headers(pool_engine):
    pool, memory = new_pool(pool_engine)
    a = pool.malloc(100)              # block 0..103, data at 4
    b = pool.malloc(50)               # aligned 52: block 104..159, data at 108
    c = pool.malloc(1)                # aligned 4: block 160..167, data at 164
    assert [offset_of(h) for h in (a, b, c)] == [4, 108, 164]
    pfn = pfn_of(a)
    assert pfn_of(b) == pfn_of(c) == pfn
    # The rest: 4096 - 168 - 4 = 3924 bytes at 168, list (3920 - 32) / 8 = 486,
    # word 486 // 64 = 7, bit 486 - 448 = 38.
    assert blocks(pool, pfn) == [(0, 100, False), (104, 50, False), (160, 1, False),
                                 (168, 3924, True)]
    assert pool.free_blocks(486) == [(pfn, 168)]
    assert pool.slbitmap == [0] * 7 + [1 << 38]
    assert pool.flbitmap == 1 << 7
    # The headers in the frame: u16 size (as asked), u16 prev offset | flags.
    frame = memory.frames[pfn]
    assert bytes(frame[0:4]) == BLOCK_HEADER.pack(100, 0)
    assert bytes(frame[104:108]) == BLOCK_HEADER.pack(50, 0)
    assert bytes(frame[160:164]) == BLOCK_HEADER.pack(1, 104)
    assert bytes(frame[168:172]) == BLOCK_HEADER.pack(3924, 160 | BLOCK_FREE)
    # Data goes right after the header and reads back at its exact length.
    da, db, dc = bytes(range(100)), bytes(range(50, 100)), b"\xee"
    pool.write(a, da)
    pool.write(b, db)
    pool.write(c, dc)
    assert bytes(frame[4:104]) == da and bytes(frame[108:158]) == db and frame[164] == 0xEE
    assert (pool.read(a), pool.read(b), pool.read(c)) == (da, db, dc)
    assert bytes(frame[104:108]) == BLOCK_HEADER.pack(50, 0)      # untouched by a's bytes


def test_write_and_handle_checks(pool_engine):
    pool, _ = new_pool(pool_engine)
    handle = pool.malloc(10)
    pool.write(handle, b"abc")
    assert pool.read(handle)[:3] == b"abc" and len(pool.read(handle)) == 10
    with pytest.raises(Invalid):
        pool.write(handle, bytes(11))
    with pytest.raises(Invalid):
        pool.read(handle + 4)                     # inside the object, not a handle
    with pytest.raises(Invalid):
        pool.free(1 << 24)                        # a page the pool does not hold
    other = pool.malloc(10)                       # keeps the page after the free
    pool.free(handle)
    with pytest.raises(Invalid):
        pool.free(handle)                         # the kernel's BUG_ON(BLOCK_FREE)
    pool.free(other)
    assert pool.total_pages() == 0


# -- splitting -------------------------------------------------------------

def test_split_lists_only_remainders_of_32_bytes_or_more(pool_engine):
    pool, memory = new_pool(pool_engine)
    a = pool.malloc(4048)     # 4092 - 4048 = 44 left: a 40-byte block at 4052, list 1
    pa = pfn_of(a)
    assert blocks(pool, pa) == [(0, 4048, False), (4052, 40, True)]
    assert pool.free_blocks(1) == [(pa, 4052)]
    b = pool.malloc(4056)     # list 503 and up are empty: a new page; 36 left: 32 bytes, list 0
    pb = pfn_of(b)
    assert pb != pa
    assert blocks(pool, pb) == [(0, 4056, False), (4060, 32, True)]
    assert pool.free_blocks(0) == [(pb, 4060)]
    c = pool.malloc(4060)     # aligned 4064 -> list 504: a new page; 32 left: 28 bytes, unlisted
    pc = pfn_of(c)
    assert blocks(pool, pc) == [(0, 4060, False), (4064, 28, True)]
    assert [i for i in range(NUM_FREE_LISTS) if pool.free_blocks(i)] == [0, 1]
    # 20 bytes: list 0, b's 32-byte block; 12 left -> 8 bytes at 4084, unlisted.
    assert pool.malloc(20) == (pb << 12) | 4064
    assert blocks(pool, pb)[-1] == (4084, 8, True)
    # 24 bytes: list 0 is empty, list 1 (same word) has a's block; 16 left -> 12.
    assert pool.malloc(24) == (pa << 12) | 4056
    # Now nothing is listed: 28, 8 and 12 free bytes sit in three pages, and a
    # 1-byte request still needs a fourth.
    assert pool.flbitmap == 0
    assert pfn_of(pool.malloc(1)) not in (pa, pb, pc)
    assert pool.total_pages() == 4
    # Freeing c merges it with the unlisted 28 bytes: 4060 + 4 + 28 = 4092.
    pool.free(c)
    assert pool.total_pages() == 3 == memory.used_pages


# -- find_block: approximate best fit through the bitmaps -------------------

def holes_page(engine="python"):
    """A page with free blocks of 96, 296 and 1000 bytes kept apart by
    1-byte objects, and the 2664-byte rest:
    a 0..99 | s 100..107 | b 108..407 | s 408..415 | c 416..1419 | s 1420..1427 | rest 1428.."""
    pool, _ = new_pool(engine)
    a = pool.malloc(96)
    pool.malloc(1)
    b = pool.malloc(296)
    pool.malloc(1)
    c = pool.malloc(1000)
    pool.malloc(1)
    for handle in (a, b, c):
        pool.free(handle)
    return pool, pfn_of(a)


def test_free_blocks_land_on_their_lists_and_bitmaps(pool_engine):
    pool, pfn = holes_page(pool_engine)
    # 96 -> list 8; 296 -> 33; 1000 -> 121 (word 1, bit 57); 2664 -> 329 (word 5, bit 9).
    assert pool.free_blocks(8) == [(pfn, 0)]
    assert pool.free_blocks(33) == [(pfn, 108)]
    assert pool.free_blocks(121) == [(pfn, 416)]
    assert pool.free_blocks(329) == [(pfn, 1428)]
    assert pool.slbitmap == [1 << 8 | 1 << 33, 1 << 57, 0, 0, 0, 1 << 9, 0, 0]
    assert pool.flbitmap == 0b100011


def test_find_block_three_steps(pool_engine):
    pool, _ = holes_page(pool_engine)
    assert pool.find_block(96) == 8           # 1. the exact list
    assert pool.find_block(100) == 33         # 2. list 9 is empty; next bit of word 0
    assert pool.find_block(300) == 121        # 3. list 34: nothing above it in word 0 -> word 1
    assert pool.find_block(1004) == 329       # 3. list 122: nothing above in word 1 -> word 5
    assert pool.find_block(2664) == 329       # 1. exact
    assert pool.find_block(2668) is None      # list 330 and above are empty


def test_malloc_takes_the_block_find_block_picks():
    pool, pfn = holes_page()
    # 97 -> 100 bytes, list 9: b (296) is taken, not c or the rest.
    b = pool.malloc(97)
    assert b == (pfn << 12) | 112
    # b's rest: 296 - 100 - 4 = 192 bytes at 108 + 104 = 212, list 20.
    assert pool.free_blocks(20) == [(pfn, 212)]
    # 300 -> list 34; word 0 has only 8 and 20 now -> word 1: c.
    assert pool.malloc(300) == (pfn << 12) | 420
    # c's rest: 1000 - 300 - 4 = 696 bytes at 416 + 304 = 720, list 83.
    assert pool.free_blocks(83) == [(pfn, 720)]
    assert pool.malloc(96) == (pfn << 12) | 4     # a, an exact fit
    assert pool.free_blocks(8) == []
    assert pool.page_blocks(pfn)[1] == (100, 1, 0)   # the 1-byte s: PREV_FREE cleared
    check_pool(pool)


def test_a_block_of_the_requested_size_can_be_passed_over(pool_engine):
    pool, _ = new_pool(pool_engine)
    x = pool.malloc(100)                      # block 0..103
    pool.malloc(1)                            # keeps x from merging with the rest
    pfn = pfn_of(x)
    pool.free(x)                              # 100 bytes -> list 8
    assert pool.free_blocks(8) == [(pfn, 0)]
    # A 100-byte request looks from list 9 (104): it takes the rest at 112.
    assert pool.malloc(100) == (pfn << 12) | 116
    # A 96-byte request looks from list 8 and gets x; 4 bytes are left over.
    assert pool.malloc(96) == (pfn << 12) | 4
    assert blocks(pool, pfn)[:2] == [(0, 96, False), (100, 0, True)]


def test_lists_are_lifo(pool_engine):
    pool, _ = new_pool(pool_engine)
    p = pool.malloc(96)                       # block 0
    pool.malloc(1)                            # block 100
    q = pool.malloc(96)                       # block 108
    pool.malloc(1)                            # block 208
    pfn = pfn_of(p)
    pool.free(p)
    pool.free(q)
    assert pool.free_blocks(8) == [(pfn, 108), (pfn, 0)]
    assert pool.malloc(90) == (pfn << 12) | 112   # 92 bytes, list 8: the head, q


# -- freeing and merging ---------------------------------------------------

def three_objects(engine="python"):
    """a 0..103, b 104..207, c 208..311, rest 312: 4096 - 312 - 4 = 3780 (list 468)."""
    pool, memory = new_pool(engine)
    a, b, c = (pool.malloc(100) for _ in range(3))
    return pool, memory, a, b, c


def test_free_merges_with_next_then_with_both(pool_engine):
    pool, memory, a, b, c = three_objects(pool_engine)
    pfn = pfn_of(a)
    pool.free(b)                  # neighbours in use: listed alone, list 8
    assert blocks(pool, pfn) == [(0, 100, False), (104, 100, True), (208, 100, False),
                                 (312, 3780, True)]
    assert pool.free_blocks(8) == [(pfn, 104)]
    assert pool.page_blocks(pfn)[2][2] == 104 | PREV_FREE     # c knows b is free
    pool.free(a)                  # merges the next block: 100 + 4 + 100 = 204, list 21
    assert blocks(pool, pfn) == [(0, 204, True), (208, 100, False), (312, 3780, True)]
    assert pool.free_blocks(8) == [] and pool.free_blocks(21) == [(pfn, 0)]
    assert pool.page_blocks(pfn)[1][2] == 0 | PREV_FREE
    pool.free(c)                  # both sides: 204 + 4 + 100 + 4 + 3780 = 4092
    assert pool.total_pages() == 0 == memory.used_pages
    assert pool.flbitmap == 0 and not any(pool.slbitmap)
    assert pool.lru_pfns() == []


def test_free_merges_with_previous(pool_engine):
    pool, memory, a, b, c = three_objects(pool_engine)
    pfn = pfn_of(a)
    pool.free(a)                  # list 8; b's header gets PREV_FREE, prev 0
    assert pool.page_blocks(pfn)[1][2] == 0 | PREV_FREE
    pool.free(b)                  # merges the previous block: 204 at 0, list 21
    assert blocks(pool, pfn) == [(0, 204, True), (208, 100, False), (312, 3780, True)]
    assert pool.free_blocks(21) == [(pfn, 0)]
    assert pool.page_blocks(pfn)[1][2] == 0 | PREV_FREE
    # The merged block serves a request that neither half could: 200 -> list 21.
    assert pool.malloc(200) == (pfn << 12) | 4
    assert blocks(pool, pfn)[:2] == [(0, 200, False), (204, 0, True)]
    assert pool.page_blocks(pfn)[2][2] == 204 | PREV_FREE


# -- pages -----------------------------------------------------------------

@pytest.mark.parametrize("size, per_page", [
    (1, 508),       # 8 bytes each; taken while the rest 4092 - 8k >= 32: k = 0..507
    (28, 127),      # 32 bytes each; 4092 - 32k >= 32: k = 0..126
    (1016, 4),      # rests 3072, 2052, 1032 (list 125 >= 123), then 12
    (1020, 3),      # rests 3068, 2044, 1020: list 123 < get_index(1020) = 124
    (2040, 2),      # rest 2048 is list 252, found from 251 in the same word
    (2041, 1),      # aligned 2044: rest 2044 is list 251 < get_index 252
    (3000, 1),
])
def test_objects_of_one_size_per_page(size, per_page, pool_engine):
    pool, memory = new_pool(pool_engine)
    handles = [pool.malloc(size) for _ in range(2 * per_page + 1)]
    pfns = [pfn_of(h) for h in handles]
    assert len(set(pfns[:per_page])) == 1
    assert pfns[per_page] != pfns[0]
    assert pool.total_pages() == 3 == memory.used_pages
    # The first page's objects sit back to back: block = aligned size + 4.
    step = xv_align(size) + 4
    assert [offset_of(h) for h in handles[:per_page]] == [4 + i * step for i in range(per_page)]
    for handle in handles:
        pool.free(handle)
    assert pool.total_pages() == 0 == memory.used_pages


# -- reclaim ---------------------------------------------------------------


def three_pages(pool):
    """One object per page: 3000, 3500, 3900 bytes leave rests on lists 132, 69, 19."""
    return [pool.malloc(size) for size in (3000, 3500, 3900)]


def test_malloc_moves_its_page_to_the_lru_head(pool_engine):
    pool, _ = new_pool(pool_engine)
    a, b, c = three_pages(pool)
    assert pool.lru_pfns() == [pfn_of(c), pfn_of(b), pfn_of(a)]
    # 1000 -> list 121 (word 1): nothing above it there (69 is below) -> word 2: list 132, a.
    assert pfn_of(pool.malloc(1000)) == pfn_of(a)
    assert pool.lru_pfns() == [pfn_of(a), pfn_of(c), pfn_of(b)]
    pool.free(b)                  # a free does not move pages, it only drops empty ones
    assert pool.lru_pfns() == [pfn_of(a), pfn_of(c)]


def test_reclaim_einval_paths(pool_engine):
    pool, _ = new_pool(pool_engine)
    pool.malloc(100)
    assert pool.reclaim_page(8) == -errno.EINVAL               # no evict callback
    pool, _ = new_pool(pool_engine, evict=Evictor())
    assert pool.reclaim_page(8) == -errno.EINVAL               # empty LRU
    pool.malloc(100)
    assert pool.reclaim_page(0) == -errno.EINVAL               # no retries
    assert pool.total_pages() == 1
    assert pool.reclaim_calls == 2 and pool.reclaim_pages_scanned == 0


def test_reclaim_evicts_the_tail_page_in_address_order(pool_engine):
    evictor = Evictor()
    pool, memory = new_pool(pool_engine, evict=evictor)
    a = pool.malloc(100)          # data 4
    b = pool.malloc(200)          # data 108
    c = pool.malloc(300)          # data 312
    pool.free(a)                  # 100 bytes at 0, list 8
    d = pool.malloc(50)           # 52 bytes, list 3 -> list 8: back at 0, data 4
    assert offset_of(d) == 4
    other = pool.malloc(3900)     # a second page, newer
    assert pool.reclaim_page(8) == 0
    assert evictor.calls == [d, b, c]
    assert pool.total_pages() == 1 == memory.used_pages
    assert pool.lru_pfns() == [pfn_of(other)]
    assert pool.reclaim_pages_scanned == 1 and pool.evict_results == {0: 3}


def test_failed_page_goes_to_the_head_and_the_next_tail_is_tried(pool_engine):
    pool, _ = new_pool(pool_engine)
    a, b, c = three_pages(pool)
    pool.evict = Evictor(refuse={a})
    assert pool.reclaim_page(8) == 0
    assert pool.evict.calls == [a, b]
    assert pool.lru_pfns() == [pfn_of(a), pfn_of(c)]
    assert pool.reclaim_pages_scanned == 2


def test_first_failure_stops_the_page(pool_engine):
    pool, _ = new_pool(pool_engine)
    first, second, third = (pool.malloc(100) for _ in range(3))
    pool.evict = Evictor(refuse={second})
    assert pool.reclaim_page(1) == -errno.EAGAIN
    assert pool.evict.calls == [first, second]        # third never tried
    assert pool.total_pages() == 1
    assert pool.lru_pfns() == [pfn_of(first)]
    # first is gone, its block free again (list 8); the others are intact.
    assert pool.free_blocks(8) == [(pfn_of(first), 0)]
    assert len(pool.read(second)) == 100 and len(pool.read(third)) == 100


def test_eagain_after_retries_pages_and_lru_rotation(pool_engine):
    pool, _ = new_pool(pool_engine)
    a, b, c = three_pages(pool)
    pool.evict = Evictor(refuse={a, b, c})
    # Tail order a, b, c; each failure goes to the head: a, b, c, a, b.
    assert pool.reclaim_page(5) == -errno.EAGAIN
    assert pool.evict.calls == [a, b, c, a, b]
    assert pool.lru_pfns() == [pfn_of(b), pfn_of(a), pfn_of(c)]
    assert pool.total_pages() == 3
    assert pool.reclaim_pages_scanned == 5
    assert pool.evict_results == {-errno.EEXIST: 5}


def test_an_evict_that_frees_nothing_keeps_the_page(pool_engine):
    pool, _ = new_pool(pool_engine, evict=lambda pool_, handle: 0)
    handle = pool.malloc(100)
    assert pool.reclaim_page(2) == -errno.EAGAIN
    assert pool.total_pages() == 1 and pool.lru_pfns() == [pfn_of(handle)]
    assert pool.evict_calls == 2


def test_free_during_reclaim_leaves_the_page_to_the_loop(pool_engine):
    pool, memory = new_pool(pool_engine)
    first, second, third = (pool.malloc(100) for _ in range(3))
    pfn = pfn_of(first)
    seen = []

    def evict(pool_, handle):
        seen.append(handle)
        for h in (first, second, third):
            pool_.free(h)
        # Wholly free but under reclaim: still held, as one free block.
        seen.append(pool_.total_pages())
        seen.append(pool_.free_blocks(507))
        return 0

    pool.evict = evict
    assert pool.reclaim_page(8) == 0
    # second and third were freed before their turn: not evicted.
    assert seen == [first, 1, [(pfn, 0)]]
    assert pool.total_pages() == 0 == memory.used_pages
    assert pool.flbitmap == 0 and pool.lru_pfns() == []


def test_an_object_allocated_during_reclaim_keeps_the_page(pool_engine):
    pool, _ = new_pool(pool_engine)
    handle = pool.malloc(100)
    pfn = pfn_of(handle)
    new = []

    def evict(pool_, h):
        pool_.free(h)
        new.append(pool_.malloc(200))   # lands in the emptied page under reclaim
        return 0

    pool.evict = evict
    assert pool.reclaim_page(1) == -errno.EAGAIN
    assert new == [(pfn << 12) | 4]
    assert pool.total_pages() == 1 and pool.lru_pfns() == [pfn]


# -- random sequences ------------------------------------------------------

# Multiples of 8, repeated: sizes whose freed blocks a new request can fit exactly.
SIZES = st.one_of(st.integers(1, 4200), st.integers(1, 100), st.integers(4080, 4100),
                  st.sampled_from((40, 96, 1000, 2040)))


def squeeze(pfns):
    """The list without runs of one value: pages in the order visited."""
    return [pfn for i, pfn in enumerate(pfns) if i == 0 or pfns[i - 1] != pfn]


class XvmallocMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.memory = Memory()
        self.pool = create_pool("xvmalloc", memory=self.memory, evict=self.evict)
        self.contents = {}            # handle -> the bytes it must read back
        self.grown_for_nothing = 0    # 4089..4092 requests: each left a free page
        self.plan = []                # evict answers still to give: True frees
        self.evicted_pfns = []        # the page of every evict call of a reclaim

    def evict(self, pool, handle):
        assert pool.read(handle) == self.contents[handle]
        self.evicted_pfns.append(pfn_of(handle))
        if self.plan and not self.plan.pop(0):
            return -errno.EEXIST
        pool.free(handle)
        del self.contents[handle]
        assert pfn_of(handle) in pool.pages      # not freed under the loop's feet
        return 0

    def pick(self, index):
        return sorted(self.contents)[index % len(self.contents)]

    @rule(size=SIZES)
    def malloc(self, size):
        self.do_malloc(size)

    def do_malloc(self, size):
        pages = self.pool.total_pages()
        if size > XV_MAX_ALLOC_SIZE:
            with pytest.raises(NoSpace):
                self.pool.malloc(size)
            assert self.pool.total_pages() == pages
        elif xv_align(size) > 4088:
            with pytest.raises(NoMemory):
                self.pool.malloc(size)
            assert self.pool.total_pages() == pages + 1
            self.grown_for_nothing += 1
        else:
            handle = self.pool.malloc(size)
            assert handle not in self.contents
            assert offset_of(handle) % 4 == 0 and offset_of(handle) >= 4
            data = self.pool.read(handle)
            assert len(data) == size
            assert self.pool.lru_pfns()[0] == pfn_of(handle)
            self.contents[handle] = data      # whatever the frame held before

    @precondition(lambda self: self.contents)
    @rule(index=st.integers(0, 1 << 16), seed=st.integers(0, 1 << 32))
    def write(self, index, seed):
        handle = self.pick(index)
        rng = random.Random(seed)
        old = self.contents[handle]
        data = rng.randbytes(rng.choice((len(old), rng.randint(0, len(old)))))
        self.pool.write(handle, data)
        self.contents[handle] = data + old[len(data):]

    @precondition(lambda self: self.contents)
    @rule(index=st.integers(0, 1 << 16))
    def free(self, index):
        handle = self.pick(index)
        self.pool.free(handle)
        del self.contents[handle]

    @precondition(lambda self: self.contents)
    @rule(index=st.integers(0, 1 << 16))
    def replace(self, index):
        """Free an object and store one of its size: the freed block, if its
        neighbours are in use and its size a multiple of 8, is an exact fit."""
        handle = self.pick(index)
        size = len(self.contents.pop(handle))
        self.pool.free(handle)
        self.do_malloc(size)

    @rule(retries=st.integers(0, 3), plan=st.lists(st.booleans(), max_size=6))
    def reclaim(self, retries, plan):
        self.plan, self.evicted_pfns = plan, []
        pages, scanned = self.pool.total_pages(), self.pool.reclaim_pages_scanned
        tail_first = self.pool.lru_pfns()[::-1]
        ret = self.pool.reclaim_page(retries)
        done = self.pool.reclaim_pages_scanned - scanned
        # Pages are visited from the tail, each failed one going to the head.
        visits = [tail_first[i % len(tail_first)] for i in range(done)]
        assert squeeze(self.evicted_pfns) == squeeze(visits)
        empty = not tail_first
        if empty or retries <= 0:
            assert ret == -errno.EINVAL and done == 0
            assert self.pool.total_pages() == pages
        elif ret == 0:
            assert 1 <= done <= retries
            assert self.pool.total_pages() == pages - 1
        else:
            assert ret == -errno.EAGAIN and done == retries
            assert self.pool.total_pages() == pages

    @invariant()
    def objects_read_back(self):
        for handle, data in self.contents.items():
            assert self.pool.read(handle) == data

    @invariant()
    def structures_agree(self):
        check_pool(self.pool)

    def teardown(self):
        for handle in list(self.contents):
            self.pool.free(handle)
        check_pool(self.pool)
        # What can stay: pages grown for 4089..4092 requests that nothing used.
        assert self.pool.total_pages() <= self.grown_for_nothing
        if not self.grown_for_nothing:
            assert self.memory.used_pages == 0


XvmallocMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=50,
                                             deadline=None)
TestXvmallocMachine = XvmallocMachine.TestCase
