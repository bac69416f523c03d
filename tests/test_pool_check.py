"""pool.check(), the allocators' self-audit: it passes on every state the
allocators reach (random operation sequences, and every shipped trace
replayed through zswap with the audit after each event, the "debug mode"),
and it raises PoolCorrupted on each kind of corruption it exists to catch
(overlapping objects, pages missing from a list or the LRU, wrong counters
and bitmaps, pages given back to the Memory while still in use), under
`python -O` too, which strips every assert.
"""

import errno
import random
import subprocess
import sys
from pathlib import Path

import pytest

from zswapsim.compress import CompressionCache, get_compressor
from zswapsim.errors import Invalid, NoMemory, NoSpace, PoolCorrupted
from zswapsim.memory import Memory
from zswapsim.trace import INVALIDATE_AREA, INVALIDATE_PAGE, LOAD, STORE, TraceReader
from zswapsim.zpool import create_pool
from zswapsim.zpool.xvmalloc import BLOCK_FREE, BLOCK_HEADER, PREV_FREE, get_index_for_insert
from zswapsim.zpool.zsmalloc import ZS_ALMOST_FULL
from zswapsim.zswap import Zswap

TRACES = Path(__file__).resolve().parent.parent / "traces"
BACKENDS = ["zbud", "z3fold", "xvmalloc", "zsmalloc"]


# -- (a) random operation sequences ---------------------------------------

def random_size(rng):
    """Small and large objects, and the sizes at each allocator's limits."""
    return rng.choice([rng.randint(1, 300), rng.randint(1, 4096), rng.randint(3850, 4100),
                       rng.choice([64, 3904, 3905, 3968, 3969, 4088, 4089, 4092, 4096])])


@pytest.mark.parametrize("backend, options", [(backend, {}) for backend in BACKENDS]
                         + [("zsmalloc", {"chain_size": 8})],
                         ids=BACKENDS + ["zsmalloc-chain8"])
def test_check_passes_after_random_operations(backend, options):
    """Two pools share one bounded Memory (so each must audit its own page
    set, and allocations fail now and then); after every malloc, free,
    reclaim and compaction both pass check() and every object reads back."""
    for seed in range(10):
        rng = random.Random(seed)
        memory = Memory(rng.choice([24, 60, 200]))
        live, refuse = {}, set()

        def evict(pool, handle):
            if handle in refuse:
                return -errno.EEXIST
            pool.free(handle)
            del live[pool, handle]
            return 0

        pools = [create_pool(backend, memory=memory, evict=evict, **options) for _ in range(2)]
        for _ in range(400):
            pool, action = rng.choice(pools), rng.random()
            if action < 0.55:
                size = random_size(rng)
                try:
                    handle = pool.malloc(size)
                except (Invalid, NoMemory, NoSpace):
                    continue
                live[pool, handle] = rng.randbytes(size)
                pool.write(handle, live[pool, handle])
                if rng.random() < 0.2:
                    refuse.add(handle)
            elif action < 0.85:
                mine = [handle for owner, handle in live if owner is pool]
                if mine:
                    handle = rng.choice(mine)
                    pool.free(handle)
                    del live[pool, handle]
            elif action < 0.97 or backend != "zsmalloc":
                assert pool.reclaim_page(rng.randint(0, 4)) in (0, -errno.EAGAIN, -errno.EINVAL)
            else:
                pool.compact()
            for each in pools:
                each.check()
            assert sum(each.total_pages() for each in pools) == memory.used_pages
        for (pool, handle), payload in live.items():
            assert pool.read(handle) == payload


# -- (b) each corruption is caught ------------------------------------------

def zbud_pool():
    """Page A: first buddy of 16 chunks and last of 32 (buddied); page B: a
    first buddy of 8 chunks (on unbuddied[55])."""
    pool = create_pool("zbud")
    a1, _, b1 = pool.malloc(1000), pool.malloc(2000), pool.malloc(500)
    return pool, pool.pages[a1 >> 12], pool.pages[b1 >> 12]


def corrupt_zbud_overlap(pool, a, b):
    a.first_chunks, a.first_size = 40, 40 * 64          # reaches into the last buddy


def corrupt_zbud_size(pool, a, b):
    a.last_size = 2100                                  # 33 chunks' worth in 32


def corrupt_zbud_lru(pool, a, b):
    del pool.lru[b.pfn]


def corrupt_zbud_wrong_list(pool, a, b):
    del pool.unbuddied[55][b.pfn]
    b.buddy_list = pool.unbuddied[54]
    b.buddy_list[b.pfn] = b


def corrupt_zbud_buddied_listed_unbuddied(pool, a, b):
    del pool.buddied[a.pfn]
    a.buddy_list = pool.unbuddied[15]
    a.buddy_list[a.pfn] = a


def corrupt_zbud_stray_list_entry(pool, a, b):
    pool.unbuddied[30][a.pfn] = a                       # A is also on a second list


def corrupt_zbud_memory(pool, a, b):
    pool.memory.free_page(b.pfn)                        # given back, still in use


def corrupt_zbud_empty(pool, a, b):
    b.first_chunks = b.first_size = 0


def corrupt_zbud_reclaim_flag(pool, a, b):
    b.under_reclaim = True


def corrupt_zbud_header_pfn(pool, a, b):
    b.pfn = 99                                          # encode_handle would point elsewhere


def corrupt_zbud_mask(pool, a, b):
    pool.unbuddied.mask &= ~(1 << 55)                   # malloc would never find B


def z3fold_pool():
    """Page A: first, middle and last objects (full, on no list); page B: a
    first object and one moved in from page C by compaction (foreign);
    page H: headless."""
    pool = create_pool("z3fold")
    a = [pool.malloc(size) for size in (1000, 1000, 500)]       # first, last, middle
    c = [pool.malloc(size) for size in (600, 700, 1200)]
    b = pool.malloc(1800)
    pool.free(c[0])                         # C's middle slides up next to its last
    pool.free(c[2])                         # C's last, left alone, moves into B
    headless = pool.malloc(4000)
    pool.check()
    b = pool.objects[b].zhdr
    assert b.foreign_handles == 1 and len(pool.pages) == 3
    return pool, pool.objects[a[0]].zhdr, b, pool.objects[headless].zhdr


def corrupt_z3fold_overlap(pool, a, b, h):
    a.start_middle -= 3                                 # the middle reaches into FIRST


def corrupt_z3fold_header_overlap(pool, a, b, h):
    a.start_middle = 1                                  # the middle starts inside the header


def corrupt_z3fold_handle(pool, a, b, h):
    pool.objects[a.handles[1]].bud = 2                  # FIRST's handle says MIDDLE


def corrupt_z3fold_stale_handle(pool, a, b, h):
    pool.objects[10_000] = pool.objects[a.handles[1]]


def corrupt_z3fold_foreign_count(pool, a, b, h):
    b.foreign_handles = 0


def corrupt_z3fold_lru(pool, a, b, h):
    del pool.lru[h.pfn]


def corrupt_z3fold_wrong_list(pool, a, b, h):
    del b.buddy_list[b.pfn]
    b.buddy_list = pool.unbuddied[b.num_free_chunks() + 1]
    b.buddy_list[b.pfn] = b


def corrupt_z3fold_listed_full(pool, a, b, h):
    a.buddy_list = pool.unbuddied[0]
    a.buddy_list[a.pfn] = a


def corrupt_z3fold_memory(pool, a, b, h):
    pool.memory.free_page(h.pfn)


def corrupt_z3fold_mask(pool, a, b, h):
    pool.unbuddied.mask = 0


def corrupt_z3fold_stale_offset(pool, a, b, h):
    pool.objects[a.handles[2]].offset += 64             # MIDDLE's bytes are elsewhere


def corrupt_z3fold_frame(pool, a, b, h):
    a.frame = pool.memory.frames[b.pfn]


def xvmalloc_pool():
    """One page: objects of 100, 1000 and 20 bytes, then the 100 freed (a
    listed free block before the 1000), leaving a listed 2944-byte tail."""
    pool = create_pool("xvmalloc")
    first = pool.malloc(100)
    middle = pool.malloc(1000)
    pool.malloc(20)
    pool.free(first)
    pool.check()
    return pool, middle >> 12, middle & 4095


def corrupt_xvmalloc_grown_header(pool, pfn, data):
    frame = pool.memory.frames[pfn]
    size, prev = BLOCK_HEADER.unpack_from(frame, data - 4)
    BLOCK_HEADER.pack_into(frame, data - 4, size + 24, prev)    # runs into the next block


def corrupt_xvmalloc_inner_handle(pool, pfn, data):
    pool.pages[pfn].add(data + 64)                      # an object inside another


def corrupt_xvmalloc_unlisted(pool, pfn, data):
    pool._remove_block(pfn, 0, get_index_for_insert(100))


def corrupt_xvmalloc_stale_listed(pool, pfn, data):
    pool._insert_block(pfn, data - 4, 1000)             # an allocated block on a free list


def corrupt_xvmalloc_slbitmap(pool, pfn, data):
    pool.slbitmap[0] ^= 1 << 63


def corrupt_xvmalloc_flbitmap(pool, pfn, data):
    pool.flbitmap ^= 1 << 7


def corrupt_xvmalloc_free_flag(pool, pfn, data):
    frame = pool.memory.frames[pfn]
    size, prev = BLOCK_HEADER.unpack_from(frame, data - 4)
    BLOCK_HEADER.pack_into(frame, data - 4, size, prev | BLOCK_FREE)


def corrupt_xvmalloc_prev_free(pool, pfn, data):
    frame = pool.memory.frames[pfn]
    size, prev = BLOCK_HEADER.unpack_from(frame, data - 4)
    BLOCK_HEADER.pack_into(frame, data - 4, size, prev & ~PREV_FREE)


def corrupt_xvmalloc_prev_offset(pool, pfn, data):
    frame = pool.memory.frames[pfn]
    size, prev = BLOCK_HEADER.unpack_from(frame, data - 4)
    BLOCK_HEADER.pack_into(frame, data - 4, size, prev + 4)


def corrupt_xvmalloc_lru(pool, pfn, data):
    del pool.lru[pfn]


def corrupt_xvmalloc_memory(pool, pfn, data):
    pool.memory.free_page(pfn)


def zsmalloc_pool():
    """Class-100 objects filling more than one zspage, plus one of 3000."""
    pool = create_pool("zsmalloc")
    handles = [pool.malloc(100) for _ in range(50)] + [pool.malloc(3000)]
    pool.check()
    return pool, handles


def corrupt_zsmalloc_overlap(pool, handles):
    pool.handles[handles[1]][1] = pool.handles[handles[0]][1]   # two handles, one slot


def corrupt_zsmalloc_free_slot(pool, handles):
    pool.handles[handles[0]][0].free_objs.append(pool.handles[handles[0]][1])


def corrupt_zsmalloc_lru(pool, handles):
    pool.lru.pop(pool.handles[handles[-1]][0].id)


def corrupt_zsmalloc_obj_used(pool, handles):
    pool.handles[handles[0]][0].size_class.obj_used += 1


def corrupt_zsmalloc_pages(pool, handles):
    pool.pages_allocated += 1


def corrupt_zsmalloc_frames(pool, handles):
    zspage = pool.handles[handles[-1]][0]
    zspage.frames[0] = pool.memory.frames[pool.handles[handles[0]][0].pfns[0]]


def corrupt_zsmalloc_group(pool, handles):
    zspage = pool.handles[handles[-1]][0]              # one object of four: almost empty
    pool._remove(zspage)
    pool._insert(zspage, ZS_ALMOST_FULL)


CORRUPTIONS = [
    (zbud_pool, corrupt_zbud_overlap, "first overlaps last"),
    (zbud_pool, corrupt_zbud_size, "last buddy of 2100 bytes in 32 chunks"),
    (zbud_pool, corrupt_zbud_lru, "not on the LRU"),
    (zbud_pool, corrupt_zbud_wrong_list, r"not on unbuddied\[55\]"),
    (zbud_pool, corrupt_zbud_buddied_listed_unbuddied, "not on buddied"),
    (zbud_pool, corrupt_zbud_stray_list_entry, "3 list entries for 2 pages"),
    (zbud_pool, corrupt_zbud_memory, "not a frame the pool holds"),
    (zbud_pool, corrupt_zbud_empty, "empty but held"),
    (zbud_pool, corrupt_zbud_reclaim_flag, "under reclaim"),
    (zbud_pool, corrupt_zbud_mask, r"unbuddied\[55\] listed but their mask bits clear"),
    (zbud_pool, corrupt_zbud_header_pfn, "page 1: its header says page 99"),
    (z3fold_pool, corrupt_z3fold_overlap, "first overlaps middle"),
    (z3fold_pool, corrupt_z3fold_header_overlap, "header overlaps middle"),
    (z3fold_pool, corrupt_z3fold_handle, "first handle .* names another place"),
    (z3fold_pool, corrupt_z3fold_stale_handle, "7 handles for 6 objects"),
    (z3fold_pool, corrupt_z3fold_foreign_count, "foreign_handles 0, 1 objects moved in"),
    (z3fold_pool, corrupt_z3fold_lru, "not on the LRU"),
    (z3fold_pool, corrupt_z3fold_wrong_list, r"not on unbuddied\[\d+\]"),
    (z3fold_pool, corrupt_z3fold_listed_full, "on a list with no free slot"),
    (z3fold_pool, corrupt_z3fold_memory, "not a frame the pool holds"),
    (z3fold_pool, corrupt_z3fold_mask, "listed but their mask bits clear"),
    (z3fold_pool, corrupt_z3fold_stale_offset, "middle handle's offset is stale"),
    (z3fold_pool, corrupt_z3fold_frame, "another page's frame"),
    (xvmalloc_pool, corrupt_xvmalloc_grown_header,
     "block at 1132: prev 1108, the block before is at 104"),
    (xvmalloc_pool, corrupt_xvmalloc_inner_handle, "allocated blocks"),
    (xvmalloc_pool, corrupt_xvmalloc_unlisted, r"free blocks on no free list: \[\(0, 0\)\]"),
    (xvmalloc_pool, corrupt_xvmalloc_stale_listed, "is no free block of its size"),
    (xvmalloc_pool, corrupt_xvmalloc_slbitmap, "second-level bitmap"),
    (xvmalloc_pool, corrupt_xvmalloc_flbitmap, "first-level bitmap"),
    (xvmalloc_pool, corrupt_xvmalloc_free_flag, "free after a free block"),
    (xvmalloc_pool, corrupt_xvmalloc_prev_free, "PREV_FREE is wrong"),
    (xvmalloc_pool, corrupt_xvmalloc_prev_offset,
     "block at 104: prev 4, the block before is at 0"),
    (xvmalloc_pool, corrupt_xvmalloc_lru, "on the LRU iff it has objects"),
    (xvmalloc_pool, corrupt_xvmalloc_memory, "not a frame the pool holds"),
    (zsmalloc_pool, corrupt_zsmalloc_overlap, "the handle of object 1 names another slot"),
    (zsmalloc_pool, corrupt_zsmalloc_free_slot, "free slots"),
    (zsmalloc_pool, corrupt_zsmalloc_lru, "LRU holds exactly the live zspages"),
    (zsmalloc_pool, corrupt_zsmalloc_obj_used, "obj_used"),
    (zsmalloc_pool, corrupt_zsmalloc_pages, "pages_allocated"),
    (zsmalloc_pool, corrupt_zsmalloc_group, "group"),
    (zsmalloc_pool, corrupt_zsmalloc_frames, "frames are not its pages'"),
]


@pytest.mark.parametrize("build, corrupt, message", CORRUPTIONS,
                         ids=[corrupt.__name__[len("corrupt_"):] for _, corrupt, _ in CORRUPTIONS])
def test_check_catches_corruption(build, corrupt, message):
    pool, *parts = build()
    pool.check()
    corrupt(pool, *parts)
    with pytest.raises(PoolCorrupted, match=f"^{pool.name} pool: .*{message}"):
        pool.check()


OPTIMIZED_RUN = """
import sys
sys.path.insert(0, {tests!r})
from test_pool_check import CORRUPTIONS, zbud_pool
from zswapsim.errors import PoolCorrupted
assert False, "asserts are still on"            # stripped by -O, as the audits' would be
pool, a, b = zbud_pool()
a.first_chunks = 40                             # the first buddy now covers the last one
try:
    pool.check()
except PoolCorrupted as exc:
    print("zbud first_chunks 40:", exc)
for build, corrupt, message in CORRUPTIONS:
    pool, *parts = build()
    corrupt(pool, *parts)
    try:
        pool.check()
    except PoolCorrupted:
        print("caught", corrupt.__name__)
"""


def test_audits_survive_python_O():
    """Under -O (asserts compiled out) a zbud page whose first_chunks is
    forced from 16 to 40 fails check() with PoolCorrupted, and so does every
    corruption above, in every allocator."""
    run = subprocess.run([sys.executable, "-O", "-c",
                          OPTIMIZED_RUN.format(tests=str(Path(__file__).parent))],
                         capture_output=True, text=True, check=True)
    lines = run.stdout.splitlines()
    assert lines[0] == ("zbud first_chunks 40: zbud pool: "
                        "page 0: first buddy of 1000 bytes in 40 chunks")
    assert lines[1:] == [f"caught {corrupt.__name__}" for _, corrupt, _ in CORRUPTIONS]


# -- (c) debug mode: the shipped traces, audited as they replay --------------

MAX_EVENTS = 20_000
EVERY_EVENT_UNTIL = 2_000
THEN_EVERY = 50


@pytest.mark.parametrize("trace", ["python-heap", "swapcache-churn", "python-job", "gcc-cc1",
                                   "postgres-pgbench"])
def test_debug_mode_replay_of_shipped_traces(trace):
    """Every backend replays the trace's first 20,000 events in 4M of RAM (a
    204-page pool limit), with every load checked against the trace and
    check() run on every pool after each of the first 2,000 events and after
    every 50th one from then on (a sample: auditing every event of every
    trace would take minutes).  All run on kernel 3.11, whose stores reclaim
    on the spot, thousands of times per trace."""
    cache = CompressionCache(get_compressor("lz4"))
    lanes = [Zswap(backend=backend, compressor=cache, memory=Memory(1024), kernel="3.11")
             for backend in BACKENDS]
    events = TraceReader(TRACES / f"{trace}.trace")
    for index, (op, swap_type, offset, image, _) in enumerate(events):
        if index == MAX_EVENTS:
            break
        for zswap in lanes:
            if op == STORE:
                zswap.store(swap_type, offset, image)
            elif op == LOAD:
                assert zswap.load(swap_type, offset) == image, (zswap.backend, index)
            elif op == INVALIDATE_PAGE:
                zswap.invalidate_page(swap_type, offset)
            elif op == INVALIDATE_AREA:
                zswap.invalidate_area(swap_type)
            if index < EVERY_EVENT_UNTIL or index % THEN_EVERY == 0:
                for pool in zswap.pools.values():
                    pool.check()
    for zswap in lanes:
        assert zswap.counters()["reclaim_calls"] > 0, zswap.backend
