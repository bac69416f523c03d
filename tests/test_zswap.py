"""The store layer against zswap's rules, with expectations worked by hand.

Most tests use pages of 1500 random bytes followed by zeros: lz4 output is a
little over 1500 bytes, so with the 8-byte header each zbud object takes 24
or 25 chunks and exactly two fit a page (three never do).  A pool of n pages
then holds 2n such stores, and the limit arithmetic is plain:
limit = totalram * max_pool_percent // 100, full when pool pages > limit,
accepting again when pool pages < totalram * 90 // 100 * pct // 100.
"""

import random

import lz4.block
import pytest

from zswapsim.errors import ConfigError
from zswapsim.memory import Memory
from zswapsim.zswap import Zswap


def half_random_page(seed):
    rng = random.Random(seed)
    return rng.randbytes(1500) + bytes(4096 - 1500)


def test_half_random_pages_take_half_a_zbud_page():
    for seed in range(40):
        length = len(lz4.block.compress(half_random_page(seed), store_size=False)) + 8
        assert 23 * 64 < length <= 31 * 64       # two fit in 63 chunks, as the tests assume


@pytest.fixture
def make(zswap_engine):
    """make(ram=100, pct=10, **settings): a Zswap of each engine in turn."""
    def make_zswap(ram=100, pct=10, **settings):
        return zswap_engine(ram_pages=ram, max_pool_percent=pct, **settings)
    return make_zswap


def test_store_load_invalidate_round_trip(make):
    z = make(ram=1000)
    pages = [half_random_page(i) for i in range(5)]
    for i, page in enumerate(pages):
        assert z.store(0, i, page) is True
    assert z.stored_pages == 5 and z.pool_pages() == 3
    assert [z.load(0, i) for i in range(5)] == pages
    z.invalidate_page(0, 2)
    assert z.load(0, 2) is None
    assert z.load_unknown == 1 and z.stored_pages == 4
    z.invalidate_area(0)
    assert z.stored_pages == 0 and z.pool_pages() == 0
    assert z.load(0, 0) is None


def test_same_filled_pages_use_no_pool(make):
    z = make(ram=1000)
    zero = bytes(4096)
    word = bytes([1, 2, 3, 4, 5, 6, 7, 8]) * 512
    assert z.store(0, 0, zero) and z.store(0, 1, word)
    assert z.same_filled_pages == 2 and z.stored_pages == 2 and z.pool_pages() == 0
    assert z.load(0, 0) == zero and z.load(0, 1) == word
    almost = bytearray(word)
    almost[4095] ^= 1                             # last word differs: not same-filled
    assert z.store(0, 2, bytes(almost))
    assert z.same_filled_pages == 2 and z.pool_pages() == 1
    z.invalidate_page(0, 1)
    assert z.same_filled_pages == 1 and z.stored_pages == 2


def test_page_too_big_for_buffer_goes_to_swap_uncounted(make):
    z = make(ram=1000)
    noise = random.Random(7).randbytes(4096)      # lz4 output > 4096 bytes
    assert len(lz4.block.compress(noise, store_size=False)) > 4096
    assert z.store(0, 0, noise) is False
    counts = z.counters()
    assert counts["stored_pages"] == 0 and counts["reject_compress_poor"] == 0
    assert counts["swap_writes"] == 1 and counts["reject_too_big"] == 1
    assert z.load(0, 0) == noise and z.load_misses == 1


def test_3_11_sends_poor_pages_to_the_allocator(make):
    z = make(ram=1000, kernel="3.11")
    noise = random.Random(7).randbytes(4096)
    assert z.store(0, 0, noise) is False          # 4112 + 8 > 3968: -ENOSPC
    assert z.reject_compress_poor == 1 and z.load(0, 0) == noise


def test_compress_poor_limit_is_3960_bytes_of_output_for_zbud(make):
    z = make(ram=1000)
    rng = random.Random(3)
    too_big = 0
    for random_len in range(3900, 4000):
        page = rng.randbytes(random_len) + bytes(4096 - random_len)
        dlen = len(lz4.block.compress(page, store_size=False))
        stored = z.store(0, random_len, page)
        assert stored == (dlen <= 3960), dlen     # 3960 + 8 header = 3968
        too_big += dlen > 3960
    assert 0 < too_big < 100                      # both sides of the line were tried
    assert z.reject_compress_poor == too_big


def test_duplicate_store_6_1_frontswap_invalidates_first(make):
    z = make(ram=1000)
    z.store(0, 5, half_random_page(1))
    z.store(0, 5, half_random_page(2))
    assert z.duplicate_entry == 0 and z.duplicate_stores == 1
    assert z.stored_pages == 1 and z.load(0, 5) == half_random_page(2)


def test_duplicate_store_3_11_counts_duplicate_entry(make):
    z = make(ram=1000, kernel="3.11")
    z.store(0, 5, half_random_page(1))
    z.store(0, 5, half_random_page(2))
    assert z.duplicate_entry == 1 and z.stored_pages == 1
    assert z.load(0, 5) == half_random_page(2)
    assert z.pool_pages() == 1                    # the old object was freed


def test_failed_duplicate_store_leaves_no_stale_copy(make):
    z = make(ram=1000, kernel="3.11")
    z.store(0, 5, half_random_page(1))
    noise = random.Random(7).randbytes(4096)
    assert z.store(0, 5, noise) is False
    assert z.stored_pages == 0 and z.load(0, 5) == noise


def fill(z, count, start=0):
    pages = [half_random_page(i) for i in range(start, start + count)]
    return [z.store(0, start + i, p) for i, p in enumerate(pages)], pages


def test_6_1_limit_rejects_then_shrink_writes_back_lru_tail(make):
    z = make()                                    # limit 10 pages, accept below 9
    stored, pages = fill(z, 21)                   # 21 objects: pages 1..10 full, 11th half
    assert all(stored) and z.pool_pages() == 11
    assert z.store(0, 21, half_random_page(21)) is False   # 11 > 10: full
    assert z.pool_limit_hit == 1 and z.written_back_pages == 0
    # The next event runs the shrink work: the LRU tail page (offsets 0, 1) goes.
    assert z.store(0, 22, half_random_page(22)) is False   # 10 pages, not < 9
    assert z.written_back_pages == 2 and z.pool_pages() == 10
    assert z.pool_limit_hit == 1 and z.reject_pool_full == 2
    assert z.where(0, 0) == "swap" and z.where(0, 2) == "pool"
    assert z.load(0, 0) == pages[0] and z.load(0, 1) == pages[1]
    assert z.load_misses == 2 and z.zswpin == 0
    assert z.where(0, 21) == "swap" and z.load(0, 21) == half_random_page(21)
    # Invalidating three pages' worth brings the pool under 9: accepted again.
    for offset in range(2, 8):
        z.invalidate_page(0, offset)
    assert z.pool_pages() == 7
    assert z.store(0, 23, half_random_page(23)) is True
    assert not z.pool_reached_full


def test_pages_in_swap_cache_refuse_writeback_with_eexist(make):
    z = make()
    fill(z, 21)
    z.load(0, 0)                                  # offsets 0, 1 share the tail page
    z.store(0, 21, half_random_page(21))          # full: shrink queued
    z.invalidate_page(0, 20)                      # any next event runs the shrink
    # Tail page {0, 1}: evict(0) -> -EEXIST, page to the LRU head; next tail
    # {2, 3} is written back.
    counts = z.counters()
    assert counts["evict_eexist"] == 1 and counts["written_back_pages"] == 2
    assert counts["reclaim_pages_scanned"] == 2 and counts["reclaim_success"] == 1
    assert z.where(0, 0) == "pool" and z.where(0, 2) == "swap"


def test_retries_one_fails_where_eight_succeed(make):
    z = make(retries=1)
    fill(z, 21)
    z.load(0, 0)
    z.store(0, 21, half_random_page(21))
    z.invalidate_page(0, 20)
    assert z.reject_reclaim_fail == 1 and z.written_back_pages == 0
    assert z.counters()["reclaim_eagain"] == 1


def test_writeback_enomem_when_no_frame_for_swap_cache_page():
    memory = Memory(30)                              # the Python model's: RAM used outside
    z = Zswap(memory=memory, max_pool_percent=20)   # limit 6 pages
    fill(z, 13)                                      # 7 pages: over the limit
    while memory.free_pages():
        memory.alloc_page()                          # the rest of RAM is in use
    z.store(0, 13, half_random_page(13))             # full: shrink queued
    z.invalidate_page(0, 12)                         # the shrink runs and fails
    counts = z.counters()
    assert counts["evict_enomem"] == 8               # eight tail pages, one try each
    assert counts["reclaim_eagain"] == 1 and z.reject_reclaim_fail == 1
    assert z.written_back_pages == 0


def test_evict_of_invalidated_entry_returns_zero():
    z = Zswap(ram_pages=1000, max_pool_percent=10)      # the Python model's insides
    z.store(0, 0, half_random_page(0))
    z.store(0, 1, half_random_page(1))
    handle = z.trees[0][0].handle
    pool = z.pool_for(0)
    z.trees[0].pop(0)                                # as if invalidated under reclaim
    assert z._writeback(pool, handle) == 0 and z.written_back_pages == 0


def test_3_11_reclaims_synchronously_inside_store(make):
    z = make(kernel="3.11")
    stored, _ = fill(z, 21)
    assert all(stored) and z.pool_pages() == 11
    # Full: reclaim the tail page right away, then store.
    assert z.store(0, 21, half_random_page(21)) is True
    assert z.pool_limit_hit == 1 and z.written_back_pages == 2
    assert z.pool_pages() == 10                   # one freed; the new object joins page 11


def test_3_11_failed_reclaim_refuses_store(make):
    z = make(kernel="3.11")
    fill(z, 21)
    for offset in range(21):
        z.load(0, offset)                         # everything is in the swap cache
    assert z.store(0, 21, half_random_page(21)) is False
    assert z.reject_reclaim_fail == 1 and z.pool_limit_hit == 1
    counts = z.counters()
    assert counts["evict_calls"] == counts["evict_eexist"] == 8


def test_bad_options(make):
    with pytest.raises(ConfigError):
        make(pct=101)
    with pytest.raises(ConfigError):
        make(kernel="5.0")
    with pytest.raises(ConfigError):
        make(backend="nope")
    with pytest.raises(ConfigError):
        make(compressor="lzma")


def test_swap_device_slots_end_at_its_size():
    from zswapsim.errors import Invalid
    from zswapsim.swapdev import SwapDevice
    device = SwapDevice(nr_slots=4)
    device.write(0, 3, bytes(4096))
    with pytest.raises(Invalid):
        device.write(0, 4, bytes(4096))
    device.discard_area(0)
    assert device.used_slots() == 0 and device.discards == 1


def test_zsmalloc_writes_back_only_from_6_3(make):
    # Each page compresses to 1533 bytes of lz4.  6.1: no header, 1533 + 8 =
    # 1541 -> class 1552, merged up to 1632 (2 pages, 5 objects).  6.3: the
    # zswap header too, 1549 -> class 1552 with chain 8 (8 pages hold 21).
    assert {len(lz4.block.compress(half_random_page(i), store_size=False))
            for i in range(30)} == {1533}
    z = make(backend="zsmalloc")                  # limit 10 pages, accept below 9
    stored, _ = fill(z, 26)                       # 5 full zspages, then an 11th/12th page
    assert all(stored) and z.pool_pages() == 12
    assert z.store(0, 26, half_random_page(26)) is False   # full: shrink queued
    assert z.store(0, 27, half_random_page(27)) is False   # shrink: no evict op
    assert z.reject_reclaim_fail == 1 and z.written_back_pages == 0
    assert z.counters()["reclaim_einval"] == 1

    z = make(backend="zsmalloc", kernel="6.3")
    stored, pages = fill(z, 22)                   # 21 in the first zspage, 1 in a second
    assert all(stored) and z.pool_pages() == 16
    assert z.store(0, 22, half_random_page(22)) is False   # full: shrink queued
    # The shrink evicts the LRU-tail zspage's 21 objects; 8 pages < 9 accepts again.
    assert z.store(0, 23, half_random_page(23)) is True
    assert z.written_back_pages == 21 and z.pool_pages() == 8
    assert z.where(0, 0) == "swap" and z.load(0, 20) == pages[20]
    assert z.where(0, 21) == "pool" and z.where(0, 23) == "pool"


def test_zsmalloc_refusing_an_oversized_object_is_an_alloc_reject(zswap_engine):
    # zs_malloc answers -EINVAL above 4096 bytes; zswap counts any
    # zpool_malloc error but -ENOSPC as reject_alloc_fail and refuses the page.
    noise = random.Random(0).randbytes(4096)                 # lz4: 4112 bytes
    z = zswap_engine(backend="zsmalloc", kernel="3.11", ram_pages=1024)   # 2-page buffer
    assert z.store(0, 0, noise) is False and z.reject_alloc_fail == 1
    page = random.Random(0).randbytes(4052) + bytes(44)       # lz4: 4089 bytes + 8 header
    assert len(lz4.block.compress(page, store_size=False)) == 4089
    z = zswap_engine(backend="zsmalloc", kernel="6.3", ram_pages=1024)
    assert z.store(0, 0, page) is False and z.reject_alloc_fail == 1
    assert z.load(0, 0) == page                               # from the swap device
