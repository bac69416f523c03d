"""zsmalloc against hand-worked class arithmetic, a second computation of
the kernel's geometry formulas, the real kernel's pool sizes, and the
compaction and reclaim loops of mm/zsmalloc.c followed step by step."""

import errno
import random

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from zswapsim.errors import ConfigError, Invalid, NoMemory
from zswapsim.memory import Memory
from zswapsim.zpool import create_pool
from zswapsim.zpool.zsmalloc import class_index, pages_per_zspage_6_1

from evictors import Evictor
from kernel_data import SETS, load_set



# -- geometry ------------------------------------------------------------

def kernel_geometry(chain, rule):
    """A second, independent reading of zs_create_pool: for every class
    index, (merged class size, pages per zspage, objects per zspage), plus
    huge_class_size.  `rule` is "6.1" (best integer percentage, ties to the
    shorter chain) or "6.3" (least waste, powers of two on one page)."""
    def pages_for(size):
        if rule == "6.1":
            used = [(k * 4096 - (k * 4096) % size) * 100 // (k * 4096)
                    for k in range(1, chain + 1)]
            return used.index(max(used)) + 1
        if size & (size - 1) == 0:
            return 1
        waste = [(k * 4096) % size for k in range(1, chain + 1)]
        return waste.index(min(waste)) + 1

    table, huge = {}, None
    upper = None
    for index in reversed(range(255)):
        size = min(32 + 16 * index, 4096)
        k = pages_for(size)
        objs = k * 4096 // size
        if huge is None and k != 1 and objs != 1:
            huge = size - 7
        if upper is not None and upper[1:] == (k, objs):
            table[index] = upper
        else:
            upper = table[index] = (size, k, objs)
    return table, huge


@pytest.mark.parametrize("chain, rule", [(4, "6.1"), (8, "6.3"), (5, "6.3"), (16, "6.3")])
def test_geometry_matches_a_second_computation(chain, rule):
    table, huge = kernel_geometry(chain, rule)
    pool = create_pool("zsmalloc", chain_size=chain)
    assert pool.huge_class_size == huge
    assert pool.distinct_classes() == len(set(table.values()))
    for request in list(range(1, 4097, 7)) + [4088, 4089, 4096]:
        index = -(-(request + 8 - 32) // 16) if request + 8 > 32 else 0
        c = pool.size_class[min(index, 254)]
        assert (c.size, c.pages_per_zspage, c.objs_per_zspage) == table[min(index, 254)], request


def test_class_geometry_by_hand():
    # Class index: ceil((s - 32) / 16), after adding the 8-byte handle.
    assert [class_index(s) for s in (8, 32, 33, 48, 49, 4096, 4104)] == [0, 0, 1, 1, 2, 254, 254]
    # 208 B: 1 page wastes 144 (96 %), 2 pages 80 (99 %), 3 pages 16 (99 %):
    # integer percentages tie at 99, so the shorter chain (2) wins in 6.1.
    assert pages_per_zspage_6_1(208, 4) == 2
    # 3264 B: (k*4096 - k*4096 % 3264) * 100 // (k*4096) = 79, 79, 79, 99.
    assert pages_per_zspage_6_1(3264, 4) == 4
    assert pages_per_zspage_6_1(4096, 4) == 1 and pages_per_zspage_6_1(2048, 4) == 1
    # 6.3's rule with chain 8 picks 3 pages for 208 B (16 B of waste).
    assert create_pool("zsmalloc", chain_size=8).size_class[11].pages_per_zspage == 3


def test_chain_4_matches_the_kernel_doc():
    pool = create_pool("zsmalloc")
    # Documentation/mm/zsmalloc.rst: chain size 4 -> 69 classes, huge
    # watermark 3264, so huge_class_size = 3264 - (8 - 1) = 3257.
    assert pool.distinct_classes() == 69
    assert pool.huge_class_size == 3257


def test_chain_8_geometry():
    pool = create_pool("zsmalloc", chain_size=8)
    # calculate_zspage_chain_size gives 119 distinct classes for chain 8.
    # zsmalloc.rst's table says 123: that is what 6.1's percentage rule gives
    # with 8 pages (checked here), not what 6.3's code computes.
    assert pool.distinct_classes() == 119
    assert len(set(kernel_geometry(8, "6.1")[0].values())) == 123
    # Watermark 3632 as in the doc: huge_class_size 3625.  A 3624-byte
    # object (3632 with its handle) shares 8 pages with 8 others; 3625 is huge.
    assert pool.huge_class_size == 3625
    big = pool.size_class[class_index(3624 + 8)]
    assert (big.size, big.pages_per_zspage, big.objs_per_zspage) == (3632, 8, 9)
    assert pool.size_class[class_index(3625 + 8)].size == 4096
    with pytest.raises(ConfigError):
        create_pool("zsmalloc", chain_size=3)
    with pytest.raises(ConfigError):
        create_pool("zsmalloc", chain_size=17)


@pytest.mark.parametrize("chain, per_zspage, pages", [(4, 73, 2), (8, 256, 7)])
def test_n_objects_of_one_size(chain, per_zspage, pages):
    # 100 B + 8 -> class 112.  Chain 4 (6.1): 1 page 98 %, 2-4 pages 99 %,
    # so 2 pages hold 8192 // 112 = 73.  Chain 8 (6.3): waste 64, 16, 80,
    # 32, 96, 48, 0 for 1..7 pages, so 7 pages hold exactly 256.
    pool = create_pool("zsmalloc", chain_size=chain)
    for _ in range(per_zspage):
        pool.malloc(100)
    assert pool.total_pages() == pages
    pool.malloc(100)
    assert pool.total_pages() == 2 * pages


# -- objects and fullness ------------------------------------------------

def test_objects_span_pages_and_keep_their_bytes():
    memory = Memory()
    pool = create_pool("zsmalloc", memory=memory)
    rng = random.Random(2)
    # 3256 + 8 = 3264 -> class 3264: 4 pages hold 5 objects, at offsets
    # 0, 3264, 6528, 9792, 13056; objects 1, 2 and 3 straddle page boundaries.
    objects = {}
    for _ in range(5):
        data = rng.randbytes(3256)
        handle = pool.malloc(3256)
        pool.write(handle, data)
        objects[handle] = data
    assert pool.total_pages() == 4
    assert all(pool.read(h) == d for h, d in objects.items())
    # Object 1 starts at 3264: its handle word, then data from 3272 on.
    second = list(objects)[1]
    frames = memory.frames
    pfns = pool.handles[second][0].pfns
    assert bytes(frames[pfns[0]][3272:4096]) == objects[second][:824]
    assert bytes(frames[pfns[1]][:100]) == objects[second][824:924]
    # map() reads in place, except an object straddling two pages, which it
    # copies out (object 0 lies in page 0; object 1 straddles).
    first = list(objects)[0]
    assert isinstance(pool.map(first), memoryview) and pool.map(first).obj is frames[pfns[0]].obj
    assert isinstance(pool.map(second), bytes) and pool.map(second) == objects[second]
    handle = pool.malloc(3256)                    # the 6th opens a second zspage
    assert pool.total_pages() == 8
    pool.free(handle)                             # ... released at once
    assert pool.total_pages() == 4 and memory.used_pages == 4
    for h in objects:
        pool.free(h)
    assert pool.total_pages() == 0 and memory.used_pages == 0


def test_huge_objects_take_a_page_each():
    pool = create_pool("zsmalloc")
    a = pool.malloc(3257)                         # 3257 + 8 = 3265 -> class 4096
    b = pool.malloc(3256)                         # 3264 -> class 3264, 4-page zspage
    assert pool.total_pages() == 1 + 4
    pool.write(a, bytes(range(256)) * 12 + bytes(185))
    assert pool.read(a)[:256] == bytes(range(256))
    pool.free(a)
    pool.free(b)
    assert pool.total_pages() == 0


def test_limits():
    pool = create_pool("zsmalloc")
    with pytest.raises(Invalid):
        pool.malloc(0)
    with pytest.raises(Invalid):
        pool.malloc(4097)
    pool.malloc(4096)
    small = create_pool("zsmalloc", memory=Memory(2))
    with pytest.raises(NoMemory):
        small.malloc(3000)                        # class 3008 chains 4 pages
    assert small.memory.used_pages == 0           # nothing half-allocated


def test_almost_full_zspage_is_filled_first():
    pool = create_pool("zsmalloc")
    # Class 3264: 5 objects per zspage; almost empty means inuse <= 3*5//4 = 3.
    first = [pool.malloc(3256) for _ in range(5)]
    second = [pool.malloc(3256) for _ in range(5)]
    for h in second[:3]:
        pool.free(h)                              # 2/5: almost empty
    pool.free(first[0])                           # 4/5: almost full
    h = pool.malloc(3256)
    assert pool.handles[h][:2] == [pool.handles[first[1]][0], 0]
    # The first zspage is full again; the next goes to the almost empty one,
    # into the slot freed last (LIFO): index 2.
    h = pool.malloc(3256)
    assert pool.handles[h][:2] == [pool.handles[second[4]][0], 2]
    assert pool.total_pages() == 8


# -- compaction ----------------------------------------------------------

def three_zspages_of_3264():
    """Class 3264 (5 objects in 4 pages): Z1 keeps object 4 only, Z2 keeps
    objects 3 and 4, Z3 is full.  Returns the pool, the zspages and the
    bytes of every live handle."""
    pool = create_pool("zsmalloc")
    rng = random.Random(7)
    handles = [pool.malloc(3256) for _ in range(15)]
    data = {}
    for h in handles:
        data[h] = rng.randbytes(3256)
        pool.write(h, data[h])
    z1, z2, z3 = (pool.handles[handles[i]][0] for i in (0, 5, 10))
    for h in handles[0:4] + handles[5:8]:        # Z1 frees 0,1,2,3; Z2 frees 0,1,2
        pool.free(h)
        del data[h]
    return pool, (z1, z2, z3), data, handles


def test_class_stats_rows():
    pool, _, _, _ = three_zspages_of_3264()
    rows = {row["size"]: row for row in pool.class_stats()}
    assert len(rows) == 69
    # 3 zspages x 5 = 15 allocated, 3 used, 12 pages, and one whole zspage
    # of unused slots: (15 - 8) // 5 * 4 = 4 freeable pages.
    assert rows[3264] == {"class": 202, "size": 3264, "almost_full": 0, "almost_empty": 2,
                          "obj_allocated": 15, "obj_used": 8, "pages_used": 12,
                          "pages_per_zspage": 4, "freeable": 4}
    assert rows[32]["obj_allocated"] == 0


def test_compaction_moves_the_head_source_into_the_fullest_destination():
    pool, (z1, z2, z3), data, handles = three_zspages_of_3264()
    # Both partial zspages are almost empty; Z2 went onto that list last
    # with more in use than the head Z1, so insert_zspage made Z2 the head.
    # zs_compact takes the source from the almost-empty head (Z2) and the
    # destination from almost full (none), then almost empty: Z1.  Z2's two
    # objects (indices 3, 4) go into Z1's free-list head slots: 3, then 2.
    assert pool.compact() == 4
    assert pool.pages_compacted == 4 and pool.total_pages() == 8
    assert pool.handles[handles[8]][:2] == [z1, 3]
    assert pool.handles[handles[9]][:2] == [z1, 2]
    assert all(pool.read(h) == d for h, d in data.items())
    # Now 10 allocated, 8 used: nothing left to gain.
    assert pool.compact() == 0
    rows = {row["size"]: row for row in pool.class_stats()}
    assert rows[3264]["freeable"] == 0 and rows[3264]["almost_empty"] == 1


def test_compaction_needs_a_whole_zspage_of_holes():
    pool = create_pool("zsmalloc")
    handles = [pool.malloc(3256) for _ in range(10)]
    pool.free(handles[0])
    pool.free(handles[5])                         # 10 allocated, 8 used: 2 // 5 = 0
    assert pool.compact() == 0 and pool.total_pages() == 8


# -- reclaim (6.2-6.4) ---------------------------------------------------


def test_reclaim_return_paths():
    assert create_pool("zsmalloc").reclaim_page(8) == -errno.EINVAL       # no evict op
    pool = create_pool("zsmalloc", evict=Evictor())
    assert pool.reclaim_page(8) == -errno.EINVAL                           # empty LRU
    pool.malloc(100)
    assert pool.reclaim_page(0) == -errno.EAGAIN      # the kernel's loop never runs
    assert pool.reclaim_page(1) == 0 and pool.total_pages() == 0
    assert pool.reclaim_calls == 3 and pool.reclaim_pages_scanned == 1


def test_lru_follows_allocations():
    pool = create_pool("zsmalloc", evict=Evictor())
    a = pool.malloc(100)            # class 112
    b = pool.malloc(500)            # class 512
    c = pool.malloc(1000)           # class 1008
    zs = {h: pool.handles[h][0] for h in (a, b, c)}
    assert pool.lru_zspages() == [zs[c], zs[b], zs[a]]
    pool.malloc(100)                # goes into a's zspage, which moves to the head
    assert pool.lru_zspages() == [zs[a], zs[c], zs[b]]


def test_reclaim_evicts_the_tail_zspage_in_index_order():
    evictor = Evictor()
    pool = create_pool("zsmalloc", evict=evictor)
    old = [pool.malloc(3256) for _ in range(5)]
    new = pool.malloc(100)
    pool.free(old[1])
    assert pool.reclaim_page(8) == 0
    assert evictor.calls == [old[0], old[2], old[3], old[4]]
    assert pool.total_pages() == 2 and pool.lru_zspages() == [pool.handles[new][0]]


def test_failed_reclaim_puts_the_zspage_back_and_gives_up_after_retries():
    evictor = Evictor()
    pool = create_pool("zsmalloc", evict=evictor)
    first = [pool.malloc(3256) for _ in range(5)]       # zspage A (LRU tail)
    second = [pool.malloc(1000) for _ in range(2)]      # zspage B
    evictor.refuse = {first[2], second[0]}
    assert pool.reclaim_page(2) == -errno.EAGAIN
    # A: evict 0 and 1, stop at 2.  Then B (now the tail): stop at its 0.
    assert evictor.calls == [first[0], first[1], first[2], second[0]]
    za, zb = pool.handles[first[2]][0], pool.handles[second[0]][0]
    assert pool.lru_zspages() == [zb, za]               # each went back to the head
    assert pool.reclaim_pages_scanned == 2
    # A's free list was rebuilt lowest index first: 0, then 1.
    h = pool.malloc(3256)
    assert pool.handles[h][:2] == [za, 0]
    assert pool.total_pages() == 4 + 1


def test_slots_freed_during_reclaim_are_not_reused_until_it_ends():
    pool = None
    made = []

    def evict(p, handle):
        p.free(handle)
        made.append(p.malloc(3256))      # may not land in the zspage being emptied
        return 0

    pool = create_pool("zsmalloc", evict=evict)
    victims = [pool.malloc(3256) for _ in range(5)]
    victim_zspage = pool.handles[victims[0]][0]
    assert pool.reclaim_page(8) == 0
    assert all(pool.handles[h][0] is not victim_zspage for h in made)
    assert pool.total_pages() == 4                       # the five new objects


def test_restore_freelist_after_a_free_from_inside_the_callback():
    pool = None
    handles = []

    def evict(p, handle):
        # Frees a later object of the same zspage, then fails.
        p.free(handles[4])
        return -errno.EEXIST

    pool = create_pool("zsmalloc", evict=evict)
    handles += [pool.malloc(3256) for _ in range(5)]
    pool.free(handles[1])                                 # free list: 1
    zspage = pool.handles[handles[0]][0]
    assert pool.reclaim_page(1) == -errno.EAGAIN
    # restore_freelist lists the free slots by index, 1 then 4; a plain LIFO
    # push of the deferred slot would have put 4 first.
    assert pool.handles[pool.malloc(3256)][:2] == [zspage, 1]
    assert pool.handles[pool.malloc(3256)][:2] == [zspage, 4]


# -- a random walk through the API --------------------------------------

class ZsmallocMachine(RuleBasedStateMachine):
    chain_size = 4

    def __init__(self):
        super().__init__()
        self.memory = Memory(96)
        self.refuse = set()
        self.pool = create_pool("zsmalloc", memory=self.memory, evict=self._evict,
                                chain_size=self.chain_size)
        self.live = {}

    def _evict(self, pool, handle):
        if handle in self.refuse:
            return -errno.EEXIST
        pool.free(handle)
        del self.live[handle]
        return 0

    def _store(self, size, data):
        if size > 4096:
            with pytest.raises(Invalid):
                self.pool.malloc(size)
            return
        try:
            handle = self.pool.malloc(size)
        except NoMemory:
            return
        payload = random.Random(data.draw(st.integers(0, 2**32))).randbytes(size)
        self.pool.write(handle, payload)
        self.live[handle] = payload
        if data.draw(st.booleans()):
            self.refuse.add(handle)

    @rule(size=st.integers(1, 4200), data=st.data())
    def malloc(self, size, data):
        self._store(size, data)

    # Runs of one size fill several zspages of a class, so frees leave
    # holes that compaction and reclaim have to deal with.
    @rule(size=st.sampled_from([100, 1000, 3256]), count=st.integers(5, 12), data=st.data())
    def malloc_run(self, size, count, data):
        for _ in range(count):
            self._store(size, data)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free(self, data):
        handle = data.draw(st.sampled_from(sorted(self.live)))
        self.pool.free(handle)
        del self.live[handle]
        self.refuse.discard(handle)

    @rule(retries=st.integers(0, 4))
    def reclaim(self, retries):
        ret = self.pool.reclaim_page(retries)
        assert ret in (0, -errno.EAGAIN, -errno.EINVAL)

    @rule()
    def compact(self):
        before = self.pool.total_pages()
        freed = self.pool.compact()
        assert self.pool.total_pages() == before - freed

    @invariant()
    def contents_and_accounting(self):
        self.pool.check()
        for handle, payload in self.live.items():
            assert self.pool.read(handle) == payload
        assert self.pool.total_pages() == self.memory.used_pages
        rows = self.pool.class_stats()
        assert sum(r["obj_used"] for r in rows) == len(self.live)
        assert sum(r["pages_used"] for r in rows) == self.pool.total_pages()
        assert all(r["obj_used"] <= r["obj_allocated"] for r in rows)

    def teardown(self):
        for handle in list(self.live):
            self.pool.free(handle)
        assert self.pool.total_pages() == 0 and self.memory.used_pages == 0


class ZsmallocChain8Machine(ZsmallocMachine):
    chain_size = 8


for machine in (ZsmallocMachine, ZsmallocChain8Machine):
    machine.TestCase.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)
test_zsmalloc_state_machine = ZsmallocMachine.TestCase
test_zsmalloc_chain_8_state_machine = ZsmallocChain8Machine.TestCase


# -- the real kernel -----------------------------------------------------

def test_matches_linux_6_1_pool_sizes():
    """zram's mem_used_total for six compressors: the kernel's own lengths,
    every pool size exact."""
    for name in SETS:
        kernel, _ = load_set(name)
        for alg, zram in kernel["zram"].items():
            pool = create_pool("zsmalloc")
            for length in zram["per_page_compr_size"]:
                if length:
                    pool.malloc(length)
            assert pool.total_size() == zram["mem_used_total"], (name, alg)
