"""zsmalloc (Linux 6.1 geometry) against hand-worked class arithmetic and
the real kernel's pool sizes."""

import errno
import json
import random
from pathlib import Path

import pytest

from zswapsim.errors import Invalid, NoMemory
from zswapsim.memory import Memory
from zswapsim.zpool import create_pool
from zswapsim.zpool.zsmalloc import class_index, pages_per_zspage_6_1

FIDELITY = Path(__file__).resolve().parents[2] / "shared" / "fidelity"


def test_class_geometry_by_hand():
    # Class index: ceil((s - 32) / 16), after adding the 8-byte handle.
    assert [class_index(s) for s in (8, 32, 33, 48, 49, 4096, 4104)] == [0, 0, 1, 1, 2, 254, 254]
    # 208 B: 1 page wastes 144 (96 %), 2 pages 80 (99 %), 3 pages 16 (99 %):
    # integer percentages tie at 99, so the shorter chain (2) wins.
    assert pages_per_zspage_6_1(208, 4) == 2
    # 3264 B: 1 page 79 %, 2 pages 79 %, 3 pages 79 %, 4 pages 12288/16384 = 79 %... :
    # (k*4096 - k*4096 % 3264) * 100 // (k*4096) = 79, 79, 79, 99 (5 objects in 4 pages).
    assert pages_per_zspage_6_1(3264, 4) == 4
    assert pages_per_zspage_6_1(4096, 4) == 1 and pages_per_zspage_6_1(2048, 4) == 1


def test_merged_classes_and_huge_threshold_match_the_kernel_doc():
    pool = create_pool("zsmalloc")
    # Documentation/mm/zsmalloc.rst: chain size 4 -> 69 classes, huge
    # watermark 3264, so huge_class_size = 3264 - (8 - 1) = 3257.
    assert pool.distinct_classes() == 69
    assert pool.huge_class_size == 3257


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


def test_limits_and_no_reclaim_in_6_1():
    pool = create_pool("zsmalloc", evict=lambda pool, handle: 0)
    with pytest.raises(Invalid):
        pool.malloc(0)
    with pytest.raises(Invalid):
        pool.malloc(4097)
    pool.malloc(4096)
    assert pool.reclaim_page(8) == -errno.EINVAL
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


def test_matches_linux_6_1_pool_sizes():
    """zswap/zsmalloc/lz4 (no header in 6.1) and zram's mem_used_total for
    six compressors: the kernel's own lengths, every pool size exact."""
    for name in ("mix2000", "mix10000"):
        kernel = json.loads((FIDELITY / f"{name}.kernel.json").read_text())
        for alg, zram in kernel["zram"].items():
            pool = create_pool("zsmalloc")
            for length in zram["per_page_compr_size"]:
                if length:
                    pool.malloc(length)
            assert pool.total_size() == zram["mem_used_total"], (name, alg)
