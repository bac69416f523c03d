"""zswap over each allocator against what Linux 6.1 reported for the same pages.

fidelity/ (or $ZSWAPSIM_FIDELITY, see kernel_data.py) holds page sets and
the real kernel's debugfs counters for them.  The Python lz4 binding is
newer than the kernel's, so these tests feed the kernel's own lz4 output
lengths (kernel_lz4_len.max_out_4096, 0 for "did not fit in 4096 bytes")
through GivenLengths, which replays them; the rest of the path (same-filled
detection, the buffer rule, the 8-byte header for zbud and z3fold and none
for zsmalloc, the allocators' layouts, the pool-size accounting) is ours and
must land on the kernel's numbers exactly.
"""

import pytest

from kernel_data import FIDELITY, SETS, load_set
from zswapsim.compress import GivenLengths
from zswapsim.errors import NoSpace
from zswapsim.fidelity import OURS, run_fidelity
from zswapsim.memory import Memory
from zswapsim.zpool import create_pool
from zswapsim.zswap import Zswap


@pytest.mark.parametrize("backend", ["zbud", "z3fold", "zsmalloc"])
@pytest.mark.parametrize("name", SETS)
def test_zswap_lz4_matches_linux_6_1(name, backend):
    kernel, pages = load_set(name)
    expected = kernel["zswap"][backend]["lz4"]
    totalram = expected["mem_total_kb"] // 4
    z = Zswap(backend=backend,
              compressor=GivenLengths("lz4", pages, kernel["kernel_lz4_len"]["max_out_4096"]),
              memory=Memory(totalram), max_pool_percent=expected["max_pool_percent"])
    for offset, page in enumerate(pages, start=1):   # swap slots 1..N in page order
        z.store(0, offset, page)
    counts = z.counters()
    for name_ in ("stored_pages", "same_filled_pages", "pool_total_size",
                  "reject_compress_poor", "reject_alloc_fail", "reject_reclaim_fail",
                  "written_back_pages", "pool_limit_hit", "duplicate_entry"):
        assert counts[name_] == expected[name_], name_
    assert counts["swap_writes"] == expected["pswpout"]
    assert counts["zswpout"] == expected["zswpout"]


@pytest.mark.parametrize("backend", ["zbud", "z3fold"])
@pytest.mark.parametrize("name", SETS)
def test_allocator_alone_on_kernel_lengths(name, backend):
    """The allocator by itself: lengths + 8 for every pooled page (zbud
    refuses above 3968 B, z3fold gives a headless page above 3904 B)."""
    kernel, pages = load_set(name)
    expected = kernel["zswap"][backend]["lz4"]
    pool = create_pool(backend)
    poor = 0
    for page, length in zip(pages, kernel["kernel_lz4_len"]["max_out_4096"]):
        if page == page[:8] * 512 or length == 0:
            continue
        try:
            pool.malloc(length + 8)
        except NoSpace:
            poor += 1
    assert pool.total_size() == expected["pool_total_size"]
    assert poor == expected["reject_compress_poor"]


@pytest.mark.parametrize("name", SETS)
def test_zsmalloc_zstd_pool_from_zram_lengths(name):
    """zswap over zsmalloc with zstd.  zram's per-page sizes give the
    kernel's zstd length of every page below huge_class_size (3257); a page
    zram stored whole (4096) compressed to 3257 bytes or more, which in
    zswap means the huge class (one page) if it fit the 4096-byte buffer and
    the swap device if not.  Those that fit are the stored pages left over;
    the rest must be exactly the kernel's pswpout, and the pool its size."""
    kernel, _ = load_set(name)
    expected = kernel["zswap"]["zsmalloc"]["zstd"]
    pool = create_pool("zsmalloc")
    compressible = huge = 0
    for length in kernel["zram"]["zstd"]["per_page_compr_size"]:
        if length == 4096:
            huge += 1
        elif length:
            pool.malloc(length)
            compressible += 1
    huge_fitting = expected["stored_pages"] - expected["same_filled_pages"] - compressible
    assert 0 <= huge_fitting <= huge
    assert huge - huge_fitting == expected["pswpout"]
    assert pool.total_size() + huge_fitting * 4096 == expected["pool_total_size"]


def test_end_to_end_equals_every_kernel_on_every_value(replay_engine):
    """`zswapsim fidelity` with zswapsim's own compressors ("ours": the
    compiled lib/lz4, lz4hc, lzo and lzo-rle, zlib's deflate, and each
    kernel's libzstd with the parameters its zram or zswap asks for) against
    every static case the real 6.1, 6.12 and 6.18 kernels reported: not one
    value may differ, as on the kernel's own sizes, in either engine."""
    rows, _skipped = run_fidelity(FIDELITY)
    ours = [row for row in rows if row["mode"] == OURS and row["check"] == "exact"]
    kernels = {row["set"].split("/")[0] for row in ours}
    assert kernels == {"mix2000", "mix10000", "linux-6.12", "linux-6.18"}
    assert {row["case"] for row in ours} >= {"zram lz4", "zram lz4hc", "zram zstd",
                                             "zram deflate", "zswap zsmalloc/zstd"}
    assert [row for row in ours if row["difference"]] == []
