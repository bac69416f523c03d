"""zbud against the rules of mm/zbud.c, worked out by hand.

Sizes below are chosen in whole chunks of 64 bytes so every expected list,
offset and handle can be read off the kernel's arithmetic:
chunks = ceil(size / 64), 63 usable chunks, header in chunk 0, first buddy
at offset 64, last buddy at 4096 - 64 * last_chunks.
"""

import errno

import pytest

from zswapsim.errors import Invalid, NoMemory, NoSpace
from zswapsim.memory import Memory
from zswapsim.zpool import create_pool
from zswapsim.zpool.zbud import size_to_chunks

from evictors import Evictor


def chunks(n):
    """A size that needs exactly n chunks (the largest such size)."""
    return 64 * n


def test_chunk_arithmetic():
    assert [size_to_chunks(s) for s in (1, 63, 64, 65, 128, 129, 3968)] == [1, 1, 1, 2, 2, 3, 62]


def test_size_limits():
    pool = create_pool("zbud")
    with pytest.raises(Invalid):
        pool.malloc(0)
    with pytest.raises(NoSpace) as exc:
        pool.malloc(4096 - 64 - 64 + 1)           # 3969: one byte over the limit
    assert exc.value.errno == errno.ENOSPC
    handle = pool.malloc(3968)                    # the largest accepted: 62 chunks
    assert handle & 4095 == 64
    assert pool.total_pages() == 1
    # 62 chunks leave one free chunk: the page waits on unbuddied[1].
    assert pool.unbuddied_pfns(1) == [handle >> 12]
    pool.malloc(3968)                             # cannot share: a second page
    assert pool.total_pages() == 2


def test_first_and_last_placement_and_bytes():
    memory = Memory()
    pool = create_pool("zbud", memory=memory)
    first = pool.malloc(100)                      # 2 chunks
    pfn = first >> 12
    assert first == pfn * 4096 + 64
    assert pool.unbuddied_pfns(61) == [pfn]       # 63 - 2 free
    last = pool.malloc(200)                       # 4 chunks, right-justified
    assert last == pfn * 4096 + 4096 - 4 * 64
    assert pool.total_pages() == 1
    assert all(not pool.unbuddied[i] for i in range(63))   # page is buddied now
    a, b = bytes(range(100)), bytes(reversed(range(200)))
    pool.write(first, a)
    pool.write(last, b)
    frame = memory.frames[pfn]
    assert bytes(frame[64:164]) == a
    assert bytes(frame[4096 - 256:4096 - 56]) == b
    assert pool.read(first) == a and pool.read(last) == b
    view = pool.map(first)              # in place: a later write shows through
    pool.write(first, a[::-1])
    assert bytes(view) == a[::-1] and view.obj is frame.obj


def test_best_fit_takes_smallest_list_then_newest_page():
    pool = create_pool("zbud")
    # Each request is too big for every page opened before it, so each opens
    # a page: free chunks 63-62=1, 63-40=23, 63-30=33, 63-45=18.
    a = pool.malloc(chunks(62)) >> 12
    b = pool.malloc(chunks(40)) >> 12
    c = pool.malloc(chunks(30)) >> 12
    d = pool.malloc(chunks(45)) >> 12
    assert len({a, b, c, d}) == 4
    # 20 chunks: lists 20..62 -> the first non-empty one is 23 (b).
    assert pool.malloc(chunks(20)) >> 12 == b
    # 25 chunks: 23 is gone (b is buddied); next is 33 (c).
    assert pool.malloc(chunks(25)) >> 12 == c
    # 10 chunks: list 18 (d) comes before everything larger.
    assert pool.malloc(chunks(10)) >> 12 == d
    # Two pages on the same list: the one added last is the list head.
    older = pool.malloc(chunks(50)) >> 12         # free 13
    newer = pool.malloc(chunks(50)) >> 12         # free 13
    assert pool.unbuddied_pfns(13) == [newer, older]
    assert pool.malloc(chunks(13)) >> 12 == newer
    # A request that fits no list opens a new page.
    assert pool.malloc(chunks(14)) >> 12 not in (a, b, c, d, older, newer)


def test_free_relists_then_releases_page():
    memory = Memory()
    pool = create_pool("zbud", memory=memory)
    first = pool.malloc(chunks(10))
    last = pool.malloc(chunks(20))
    pfn = first >> 12
    pool.free(first)                              # last stays: free = 63 - 20
    assert pool.unbuddied_pfns(43) == [pfn]
    # The freed first slot is reused as FIRST (at offset 64) by the next fit.
    again = pool.malloc(chunks(5))
    assert again == pfn * 4096 + 64
    pool.free(again)
    pool.free(last)
    assert pool.total_pages() == 0 and memory.used_pages == 0
    assert pool.lru_pfns() == []


def test_malloc_moves_page_to_lru_head():
    pool = create_pool("zbud")
    a = pool.malloc(chunks(40)) >> 12
    b = pool.malloc(chunks(40)) >> 12
    c = pool.malloc(chunks(40)) >> 12
    assert pool.lru_pfns() == [c, b, a]
    assert pool.malloc(chunks(20)) >> 12 == c     # newest page of unbuddied[23]
    d = pool.malloc(chunks(23)) >> 12             # b (free 23) is the head now
    assert d == b
    assert pool.lru_pfns() == [b, c, a]


def test_malloc_reports_enomem_when_ram_is_spent():
    pool = create_pool("zbud", memory=Memory(totalram_pages=1))
    pool.malloc(chunks(40))
    with pytest.raises(NoMemory):
        pool.malloc(chunks(40))


def test_reclaim_einval_paths():
    assert create_pool("zbud").reclaim_page(8) == -errno.EINVAL          # no evict op
    pool = create_pool("zbud", evict=Evictor())
    assert pool.reclaim_page(8) == -errno.EINVAL                         # empty LRU
    pool.malloc(100)
    assert pool.reclaim_page(0) == -errno.EINVAL                         # no retries
    assert pool.total_pages() == 1


def test_reclaim_evicts_tail_first_then_last_buddy():
    evictor = Evictor()
    pool = create_pool("zbud", evict=evictor)
    a_first = pool.malloc(chunks(30))
    a_last = pool.malloc(chunks(30))
    b_first = pool.malloc(chunks(40))
    assert pool.reclaim_page(8) == 0
    assert evictor.calls == [a_first, a_last]
    assert pool.total_pages() == 1
    assert pool.lru_pfns() == [b_first >> 12]
    assert pool.reclaim_pages_scanned == 1


def test_failed_eviction_goes_to_lru_head_and_next_tail_is_tried():
    pool = create_pool("zbud")
    a = pool.malloc(chunks(40))
    b = pool.malloc(chunks(40))
    c = pool.malloc(chunks(40))
    pool.evict = Evictor(refuse={a})
    # a (tail) refuses and moves to the head; b is the new tail and goes.
    assert pool.reclaim_page(8) == 0
    assert pool.evict.calls == [a, b]
    assert pool.lru_pfns() == [a >> 12, c >> 12]
    assert pool.reclaim_pages_scanned == 2


def test_first_buddy_failure_stops_the_page():
    pool = create_pool("zbud")
    first = pool.malloc(chunks(30))
    pool.malloc(chunks(30))                       # the last buddy
    pool.evict = Evictor(refuse={first})
    assert pool.reclaim_page(1) == -errno.EAGAIN
    assert pool.evict.calls == [first]            # last was never tried
    assert pool.total_pages() == 1


def test_partial_eviction_relists_remaining_buddy():
    pool = create_pool("zbud")
    first = pool.malloc(chunks(30))
    last = pool.malloc(chunks(20))
    pfn = first >> 12
    pool.evict = Evictor(refuse={last})
    assert pool.reclaim_page(1) == -errno.EAGAIN
    assert pool.evict.calls == [first, last]
    assert pool.unbuddied_pfns(63 - 20) == [pfn]  # only the last buddy is left
    assert pool.lru_pfns() == [pfn]
    assert pool.read(last) == bytes(chunks(20))   # still readable, untouched


def test_eagain_after_retries_pages_and_lru_rotation():
    pool = create_pool("zbud")
    a = pool.malloc(chunks(40))
    b = pool.malloc(chunks(40))
    c = pool.malloc(chunks(40))
    pool.evict = Evictor(refuse={a, b, c})
    # Tail order a, b, c; each failure goes to the head: a, b, c, a, b.
    assert pool.reclaim_page(5) == -errno.EAGAIN
    assert pool.evict.calls == [a, b, c, a, b]
    assert pool.lru_pfns() == [b >> 12, a >> 12, c >> 12]
    assert pool.total_pages() == 3
    assert pool.reclaim_pages_scanned == 5
    assert pool.evict_results == {-errno.EEXIST: 5}


def test_free_during_reclaim_only_clears_and_reclaim_frees_page():
    memory = Memory()
    pool = create_pool("zbud", memory=memory)
    first = pool.malloc(chunks(30))
    last = pool.malloc(chunks(30))
    seen = []

    def evict(pool_, handle):
        seen.append(handle)
        if handle == first:
            # Free both buddies: the page is under reclaim, so it must stay.
            pool_.free(first)
            pool_.free(last)
            seen.append(pool_.total_pages())
            return 0
        return 0      # the stale last handle: entry gone, nothing to do

    pool.evict = evict
    assert pool.reclaim_page(8) == 0
    # The last handle was encoded before the callbacks ran, as the kernel does.
    assert seen == [first, 1, last]
    assert pool.total_pages() == 0 and memory.used_pages == 0


def test_unknown_backend_lists_known_ones():
    from zswapsim.errors import ConfigError
    with pytest.raises(ConfigError, match="unknown backend 'zbudd'.*zbud"):
        create_pool("zbudd")
