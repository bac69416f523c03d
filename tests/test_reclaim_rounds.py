"""reclaim_page's repeated rounds, counted instead of run.

A reclaim try that cannot free its page puts it back at the LRU head (as
zbud_reclaim_page, z3fold_reclaim_page and zs_reclaim_page do), so when every
page fails on a result that changes nothing, the loop goes round the LRU
again and again.  The pools count those rounds once they repeat.  These tests
hold that against what running the tries out gives:

- by hand: a few pages that all refuse, whose LRU order after r tries is the
  starting order turned r times (r mod the pages taken per round), with r
  pages scanned and r evict calls, for r up to 10**12;
- against the plain loop: the same pools driven in lockstep, one through an
  evict callback that marks its refusals unchanged (so rounds are counted)
  and one that does not (so every try runs), must agree in return values,
  counters, LRU order, list order and where the next object lands, on every
  allocator (zsmalloc with both the 6.1 and the 6.3 chain rules);
- through zswap: a trace whose every page sits in the swap cache replays
  with retries 1,048,576 (and tune-retries with 10**12) to the counters the
  arithmetic gives, making a few rounds of real evict calls per reclaim.
"""

import errno
import random

import pytest

from evictors import Evictor
from zswapsim import zswap as zswap_module
from zswapsim.engine import ENGINE_VARIABLE
from zswapsim.errors import ConfigError, Invalid, NoMemory, NoSpace
from zswapsim.memory import Memory
from zswapsim.replay import TIMING_FIELDS, replay
from zswapsim.sweep import tune_retries
from zswapsim.trace import TraceWriter
from zswapsim.zpool import create_pool
from zswapsim.zswap import Zswap

EEXIST = -errno.EEXIST
BACKENDS = [("zbud", {}), ("z3fold", {}), ("xvmalloc", {}), ("zsmalloc", {}),
            ("zsmalloc", {"chain_size": 8})]
IDS = ["zbud", "z3fold", "xvmalloc", "zsmalloc-6.1", "zsmalloc-6.3"]


# -- by hand -------------------------------------------------------------------

@pytest.mark.parametrize("retries, head_to_tail", [
    (1, [0, 2, 1]), (2, [1, 0, 2]), (3, [2, 1, 0]), (10, [0, 2, 1]), (11, [1, 0, 2]),
    (10**12, [0, 2, 1]),                    # 10**12 = 3 * 333333333333 + 1
])
def test_zbud_pages_that_all_refuse_turn_round(retries, head_to_tail):
    """Three 3000-byte objects take a page each (47 chunks: no two share),
    so the LRU runs 2, 1, 0 from the head.  Each try moves the tail page to
    the head; r tries turn the order r mod 3 times."""
    evictor = Evictor(unchanged=True)
    pool = create_pool("zbud", evict=evictor)
    evictor.refuse = {pool.malloc(3000) for _ in range(3)}
    assert pool.lru_pfns() == [2, 1, 0]
    assert pool.reclaim_page(retries) == -errno.EAGAIN
    assert pool.lru_pfns() == head_to_tail
    assert (pool.reclaim_pages_scanned, pool.evict_calls, pool.evict_results) == \
        (retries, retries, {EEXIST: retries})
    assert len(evictor.calls) <= 3 * 3         # two rounds run, then a partial one
    pool.check()


@pytest.mark.parametrize("retries, head_to_tail", [
    (1, "AHB"), (2, "HAB"), (3, "AHB"), (4, "HAB"), (10**12, "HAB"), (10**12 + 1, "AHB"),
])
def test_z3fold_rounds_pass_over_a_page_holding_a_foreign_handle(retries, head_to_tail):
    """Page A holds three objects; page C's last object moves into page B
    when C's other two are freed (compact_single_buddy), so B holds a
    foreign handle and reclaim never takes it; H is a headless page.  The
    LRU runs H, B, A from the head.  The first try takes A, the second skips
    B for H, leaving B at the tail; from then on A and H alternate."""
    evictor = Evictor(unchanged=True)
    pool = create_pool("z3fold", evict=evictor)
    a = [pool.malloc(size) for size in (1000, 1000, 500)]
    c = [pool.malloc(size) for size in (600, 700, 1200)]
    b = pool.malloc(1800)
    pool.free(c[0])
    pool.free(c[2])
    h = pool.malloc(4000)
    name = {pool.locate(a[0])[0]: "A", pool.locate(b)[0]: "B", pool.locate(h)[0]: "H"}
    assert pool.layout(pool.locate(b)[0])["foreign_handles"] == 1
    assert "".join(name[pfn] for pfn in pool.lru_pfns()) == "HBA"
    evictor.refuse = set(pool.objects)
    assert pool.reclaim_page(retries) == -errno.EAGAIN
    assert "".join(name[pfn] for pfn in pool.lru_pfns()) == head_to_tail
    assert (pool.reclaim_pages_scanned, pool.evict_calls, pool.evict_results) == \
        (retries, retries, {EEXIST: retries})
    assert len(evictor.calls) <= 3 * 2
    pool.check()


# -- against the plain loop --------------------------------------------------

def order(pool):
    """Everything a reclaim try can move or count, read through each pool's
    own introspection, plus the reclaim counters."""
    counters = (pool.reclaim_calls, pool.reclaim_pages_scanned, pool.evict_calls,
                sorted(pool.evict_results.items()))
    if pool.name == "zbud":
        lists = ([pool.unbuddied_pfns(n) for n in range(len(pool.unbuddied))],
                 list(pool.buddied))
    elif pool.name == "z3fold":
        lists = ([pool.unbuddied_pfns(n) for n in range(len(pool.unbuddied))],
                 {pfn: pool.layout(pfn) for pfn in pool.pages})
    elif pool.name == "xvmalloc":
        lists = [pool.free_blocks(n) for n in range(len(pool.freelist))]
    else:
        return ([z.id for z in pool.lru_zspages()],
                [[list(group) for group in c.fullness] for c in pool.classes()],
                {z.id: list(z.free_objs) for z in pool.lru_zspages()}, counters)
    return pool.lru_pfns(), lists, counters


def where(pool, handle):
    """Where an object landed, in terms two equal pools share."""
    if pool.name == "z3fold":
        return pool.locate(handle)
    if pool.name == "zsmalloc":
        zspage, index, _ = pool.handles[handle]
        return zspage.id, index
    return handle                                       # an address


def random_size(rng):
    return rng.choice([rng.randint(1, 400), rng.randint(400, 2100), rng.randint(1, 4096)])


class Lockstep:
    """Two pools that receive the same calls: `counted` reclaims through an
    evictor that marks its refusals unchanged, `plain` through one that
    does not."""

    def __init__(self, backend, options):
        self.counted_evictor = Evictor(unchanged=True)
        self.plain_evictor = Evictor()
        self.counted = create_pool(backend, evict=self.counted_evictor, **options)
        self.plain = create_pool(backend, evict=self.plain_evictor, **options)
        self.live = []

    def malloc(self, size):
        try:
            handle = self.counted.malloc(size)
        except (Invalid, NoMemory, NoSpace) as exc:
            with pytest.raises(type(exc)):
                self.plain.malloc(size)
            return None
        other = self.plain.malloc(size)
        assert where(self.counted, handle) == where(self.plain, other)
        assert handle == other
        self.live.append(handle)
        return handle

    def free(self, handle):
        self.counted.free(handle)
        self.plain.free(handle)
        self.live.remove(handle)

    def refuse(self, handles):
        self.counted_evictor.refuse = self.plain_evictor.refuse = set(handles)

    def reclaim(self, retries):
        calls = len(self.plain_evictor.calls)
        ret = self.counted.reclaim_page(retries)
        assert self.plain.reclaim_page(retries) == ret, retries
        assert order(self.counted) == order(self.plain), retries
        self.counted.check()
        self.plain.check()
        # Addresses are reused: only this call's evictions are gone.
        evicted = set(self.plain_evictor.calls[calls:]) - self.plain_evictor.refuse
        self.live = [handle for handle in self.live if handle not in evicted]
        return ret

    def lru_len(self):
        return len(self.counted.lru)


@pytest.mark.parametrize("backend, options", BACKENDS, ids=IDS)
def test_counted_rounds_equal_the_plain_loop(backend, options):
    """Random pools (40 seeds) where all, most or half of the objects
    refuse; reclaim with retries around each multiple of the LRU's length,
    then allocate and free a little, and reclaim again: the two pools agree
    throughout, and the counted one runs fewer evict calls."""
    real_calls = {"counted": 0, "plain": 0}
    for seed in range(40):
        rng = random.Random(seed)
        pools = Lockstep(backend, options)
        for _ in range(rng.randint(3, 50)):
            if pools.live and rng.random() < 0.25:
                pools.free(rng.choice(pools.live))
            else:
                pools.malloc(random_size(rng))
        refuse_rate = rng.choice([1.0, 0.9, 0.5])
        pools.refuse(h for h in pools.live if rng.random() < refuse_rate)
        for _ in range(8):
            if not pools.lru_len():
                break
            n = pools.lru_len()
            pools.reclaim(rng.choice([0, 1, n - 1, n, n + 1, 2 * n, 2 * n + 1, 3 * n - 1,
                                      5 * n + 2, 11 * n + rng.randint(0, n)]))
            if rng.random() < 0.5 and (handle := pools.malloc(random_size(rng))):
                if rng.random() < refuse_rate:
                    pools.counted_evictor.refuse.add(handle)
            if pools.live and rng.random() < 0.3:
                pools.free(rng.choice(pools.live))
        real_calls["counted"] += len(pools.counted_evictor.calls)
        real_calls["plain"] += len(pools.plain_evictor.calls)
    # The comparison means something only if rounds were counted.
    assert real_calls["counted"] < real_calls["plain"]


@pytest.mark.parametrize("backend, options", BACKENDS, ids=IDS)
def test_counting_saves_real_calls(backend, options):
    """Where every object refuses, 100 rounds' worth of retries cost the
    counted pool at most four rounds of real evict calls: two to see a
    round repeat, one more should zsmalloc's order need it, the partial one."""
    rng = random.Random(5)
    pools = Lockstep(backend, options)
    for _ in range(30):
        pools.malloc(random_size(rng))
    pools.refuse(pools.live)
    n = pools.lru_len()
    assert pools.reclaim(100 * n + 7) == -errno.EAGAIN
    assert pools.counted.reclaim_pages_scanned == 100 * n + 7
    assert len(pools.plain_evictor.calls) == 100 * n + 7
    assert len(pools.counted_evictor.calls) <= 4 * n


def three_zspages(pool):
    """Class 512 packs 8 objects in one page (a power of two: one page under
    either chain rule; 100 % used under 6.1's).  Fill three zspages, then
    free objects to leave 3, 4 and 1 in use, all almost empty (at most
    3 * 8 // 4 = 6), and order the list and the LRU by hand: the list runs
    Z1, Z3, Z2 from its head, the LRU Z1, Z3, Z2 from its tail."""
    handles = [pool.malloc(500) for _ in range(24)]
    for keep, first in ((3, 0), (4, 8), (1, 16)):
        for handle in handles[first + keep:first + 8]:
            pool.free(handle)
    almost_empty = pool.size_class[pool.handles[handles[0]][0].size_class.index].fullness[1]
    assert {zspage.id: zspage.inuse for zspage in almost_empty.values()} == {1: 3, 2: 4, 3: 1}
    for zspage_id in (2, 3, 1):                 # the last moved is the head
        almost_empty.move_to_end(zspage_id)
    for zspage_id in (1, 3, 2):                 # the first moved is the tail
        pool.lru.move_to_end(zspage_id)
    pool.check()
    return almost_empty


@pytest.mark.parametrize("options", [{}, {"chain_size": 8}], ids=["6.1", "6.3"])
def test_zsmalloc_order_can_take_two_rounds_to_settle(options):
    """insert_zspage puts a zspage behind a head that has more objects in
    use.  Round one, taking Z1 (3 in use), Z3 (1), Z2 (4): Z1 goes before
    Z3 (3 >= 1), giving Z1 Z3 Z2; Z3 goes behind Z1 (1 < 3), Z1 Z3 Z2; Z2
    goes to the head (4 >= 3): Z2 Z1 Z3.  Round two: Z1 goes behind Z2
    (3 < 4), Z2 Z1 Z3; Z3 behind Z2, Z2 Z3 Z1; Z2 to the head, Z2 Z3 Z1.  So
    round one does not leave the order round two leaves; round three keeps
    Z2 Z3 Z1.  Counted rounds must wait for that and agree with the plain
    loop for every retries value."""
    pool = create_pool("zsmalloc", evict=Evictor(), **options)
    almost_empty = three_zspages(pool)
    pool.evict.refuse = set(pool.handles)
    heads = []
    for _ in range(3):
        pool.reclaim_page(3)
        heads.append(list(reversed(almost_empty)))
    assert heads == [[2, 1, 3], [2, 3, 1], [2, 3, 1]]

    for retries in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 31, 100]:
        pools = Lockstep("zsmalloc", options)
        three_zspages(pools.counted)
        three_zspages(pools.plain)
        pools.live = list(pools.counted.handles)
        pools.refuse(pools.live)
        pools.reclaim(retries)
    # 10**12 + 2 tries are whole rounds: the settled order.  10**12 tries
    # leave one more try: Z1 (3 in use) goes behind Z2 (4) again.
    for retries, list_heads, lru_heads in ((10**12 + 2, [2, 3, 1], [2, 3, 1]),
                                           (10**12, [2, 1, 3], [1, 2, 3])):
        counted = create_pool("zsmalloc", evict=Evictor(unchanged=True), **options)
        almost_empty = three_zspages(counted)
        counted.evict.refuse = set(counted.handles)
        assert counted.reclaim_page(retries) == -errno.EAGAIN
        assert list(reversed(almost_empty)) == list_heads
        assert [zspage.id for zspage in counted.lru_zspages()] == lru_heads
        assert counted.evict_results == {EEXIST: retries}
        assert len(counted.evict.calls) <= 4 * 3


# -- through zswap -----------------------------------------------------------

@pytest.fixture(scope="module")
def cached_trace(tmp_path_factory):
    """400 pages stored and at once read back, so each sits in the swap
    cache: every writeback answers -EEXIST."""
    path = tmp_path_factory.mktemp("rounds") / "cached.trace"
    rng = random.Random(7)
    with TraceWriter(path, description="every page in the swap cache") as writer:
        for offset in range(400):
            writer.store(0, offset, bytes(rng.randrange(16) for _ in range(1200)) + bytes(2896))
            writer.load(0, offset)
    return path


@pytest.fixture
def real_writebacks(monkeypatch):
    """Counts the writeback callback's real calls: zswap.py's, so the
    replays of a test using it run in the Python engine."""
    monkeypatch.setenv(ENGINE_VARIABLE, "python")
    calls = [0]
    writeback = zswap_module.Zswap._writeback

    def counting(self, pool, handle):
        calls[0] += 1
        return writeback(self, pool, handle)

    monkeypatch.setattr(zswap_module.Zswap, "_writeback", counting)
    return calls


RECLAIM_FIELDS = ("reclaim_pages_scanned", "evict_calls", "evict_eexist")


@pytest.mark.parametrize("backend", ["zbud", "z3fold", "xvmalloc", "zsmalloc"])
@pytest.mark.parametrize("kernel", ["6.3", "3.11"])
def test_replay_with_a_million_retries(cached_trace, real_writebacks, backend, kernel):
    """--ram 256K (a 12-page limit).  Every reclaim fails whatever retries
    is, so everything but the scan counters is as at retries 8, and each of
    those is retries per reclaim call; the real writeback calls stay a few
    rounds of the pool's ~13 pages per call, not a million."""
    eight = replay(cached_trace, backend=backend, ram_pages=64, retries=8, kernel=kernel)
    real_writebacks[0] = 0
    many = replay(cached_trace, backend=backend, ram_pages=64, retries=1 << 20, kernel=kernel)
    calls = many["reclaim_calls"]
    assert calls == eight["reclaim_calls"] == many["reject_reclaim_fail"] > 300
    for field in RECLAIM_FIELDS:
        assert eight[field] == 8 * calls
        assert many[field] == (1 << 20) * calls
    assert many["written_back_pages"] == 0
    unlike = RECLAIM_FIELDS + ("retries",) + TIMING_FIELDS
    assert {k: v for k, v in many.items() if k not in unlike and not isinstance(v, float)} == \
        {k: v for k, v in eight.items() if k not in unlike and not isinstance(v, float)}
    assert real_writebacks[0] <= 3 * (many["pool_limit_pages"] + 8) * calls


def test_tune_retries_up_to_uint_max(cached_trace):
    """reclaim_page's retries is an unsigned int: its largest value costs
    a few rounds of the LRU, counted (10**12, past it, is refused)."""
    records = tune_retries(cached_trace, (1, 8, 2**32 - 1), ram_pages=64)
    assert [r["retries"] for r in records] == [1, 8, 2**32 - 1]
    for record in records:
        assert record["reclaim_pages_scanned"] == record["retries"] * record["reclaim_calls"]
        assert record["reject_reclaim_fail"] == record["reclaim_calls"]
    with pytest.raises(ConfigError, match="retries 1000000000000 is outside 0..4294967295"):
        tune_retries(cached_trace, (10**12,), ram_pages=64)


def test_evict_faults_keep_every_try_real(cached_trace, real_writebacks):
    """A fault plan drawing for each evict makes no failure repeatable, so
    every counted evict call is a real one."""
    result = replay(cached_trace, ram_pages=64, retries=64,
                    faults={"seed": 3, "evict": 0.01})
    assert result["evict_calls"] == real_writebacks[0] == 64 * result["reclaim_calls"] > 0
    assert result["evict_eio"] > 0


def test_writeback_with_ram_full_counts_enomem_rounds(real_writebacks):
    """With the pool allowed all of RAM and RAM full, writeback cannot get
    a swap-cache page: -ENOMEM, which changes nothing.  Eight zbud pages of
    one buddy each (3000 random bytes do not compress) take 10**9 + 3 tries:
    10**9 is a whole number of rounds of 8, so the LRU ends three turns on."""
    zswap = Zswap(memory=Memory(8), max_pool_percent=100, retries=8)
    rng = random.Random(1)
    for offset in range(8):
        assert zswap.store(0, offset, rng.randbytes(3000) + bytes(1096))
    pool = zswap.pool
    assert zswap.memory.free_pages() == 0 and pool.total_pages() == 8
    before = pool.lru_pfns()
    real_writebacks[0] = 0
    assert pool.reclaim_page(10**9 + 3) == -errno.EAGAIN
    assert pool.evict_results == {-errno.ENOMEM: 10**9 + 3}
    assert pool.lru_pfns() == before[-3:] + before[:-3]     # the last three tail pages moved
    assert real_writebacks[0] <= 3 * 8
