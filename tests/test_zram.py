"""zram against the real Linux 6.1 kernel's mm_stat on the fidelity sets,
and its write path rules worked out by hand."""

import pytest

from kernel_data import SETS, load_set
from zswapsim.compress import Compressor, GivenLengths, get_compressor
from zswapsim.errors import ConfigError
from zswapsim.zram import MM_STAT, Zram

def write_all(device, pages):
    for index, page in enumerate(pages):
        assert device.write(index, page)


@pytest.mark.parametrize("name", SETS)
def test_mm_stat_equals_linux_6_1_for_every_compressor(name):
    """The kernel's own per-page lengths through our write path and
    zsmalloc: all nine mm_stat fields, before and after compaction."""
    kernel, pages = load_set(name)
    assert len(kernel["zram"]) == 6
    for alg, expected in kernel["zram"].items():
        device = Zram(expected["disksize"],
                      compressor=GivenLengths(alg, pages, expected["per_page_compr_size"]))
        write_all(device, pages)
        assert device.mm_stat() == expected["mm_stat"], alg
        device.compact()
        assert device.mm_stat() == expected["mm_stat_after_compact"], alg


@pytest.mark.parametrize("name", SETS)
def test_deflate_end_to_end_is_the_kernels(name):
    kernel, pages = load_set(name)
    expected = kernel["zram"]["deflate"]
    device = Zram(expected["disksize"], compressor="deflate")
    write_all(device, pages)
    assert device.mm_stat() == expected["mm_stat"]
    assert all(device.read(i) == page for i, page in enumerate(pages[:300]))


class Fixed(Compressor):
    """Output of a chosen length; the page itself comes back on decompress."""

    name = "fixed"

    def __init__(self, length):
        self.length = length
        self.pages = {}

    def compress(self, page):
        data = page[:16] + bytes(self.length - 16)
        self.pages[data] = page
        return data

    def decompress(self, data, size=4096):
        return self.pages[bytes(data)]


def page(n):
    return n.to_bytes(8, "little") + bytes(range(256)) * 15 + bytes(248)


@pytest.mark.parametrize("kernel, small, huge", [("6.1", 3256, 3257), ("6.6", 3624, 3625),
                                                 ("4.14", 3072, 3073)])
def test_huge_threshold_per_kernel(kernel, small, huge):
    device = Zram(1 << 20, compressor=Fixed(small), kernel=kernel)
    device.write(0, page(0))
    device.compressor.compressor.length = huge
    device.write(1, page(1))
    stat = device.mm_stat()
    # 4.17+: huge from huge_class_size on; before: above max_zpage_size 3072.
    assert (stat["huge_pages"], stat["compr_data_size"]) == (1, small + 4096)
    assert device.read(1) == page(1) and device.read(0) == page(0)


def test_rewrite_discard_and_reads():
    device = Zram(16 * 4096, compressor=Fixed(1000))
    assert device.read(3) == bytes(4096)                      # never written: zeros
    device.write(3, page(1))
    device.write(3, bytes(4096))                             # rewrite: old object freed
    stat = device.mm_stat()
    assert (stat["same_pages"], stat["compr_data_size"], stat["mem_used_total"],
            stat["orig_data_size"]) == (1, 0, 0, 4096)
    assert stat["mem_used_max"] == 4096                      # one page while it was held
    device.discard(3)
    assert device.mm_stat()["same_pages"] == 0 and device.io_stat()["notify_free"] == 1
    assert device.write(16, page(2)) is False                # past disksize
    assert device.read(-1) is None and device.io_stat()["invalid_io"] == 2


def test_mem_limit_is_checked_after_allocation():
    # 1000 + 8 -> class 1008: zsmalloc packs 4 per page (6.1 chain rule: 1 page).
    device = Zram(64 * 4096, compressor=Fixed(1000), mem_limit=4096)
    assert all(device.write(i, page(i)) for i in range(4))
    assert device.write(4, page(4)) is False                 # a second page: over the limit
    stat, io = device.mm_stat(), device.io_stat()
    assert io["failed_writes"] == 1 and stat["mem_used_total"] == 4096
    assert stat["mem_used_max"] == 2 * 4096 and stat["mem_limit"] == 4096
    # Rewriting a slot also needs room for the new object before the old goes.
    assert device.write(0, page(9)) is False and device.read(0) == page(0)


def test_compaction_after_frees():
    device = Zram(64 * 4096, compressor=Fixed(3248))          # 3256 -> class 3264, 5 per 4 pages
    for i in range(10):
        device.write(i, page(i))
    for i in (0, 1, 2, 5, 6):
        device.discard(i)
    assert device.mm_stat()["mem_used_total"] == 8 * 4096
    assert device.compact() == 4
    stat = device.mm_stat()
    assert (stat["mem_used_total"], stat["pages_compacted"]) == (4 * 4096, 4)
    assert all(device.read(i) == page(i) for i in (3, 4, 7, 8, 9))


def test_other_allocators_and_their_limits():
    device = Zram(8 * 4096, compressor=Fixed(3300), allocator="zbud")
    assert device.write(0, page(0)) is False                 # huge: 4096 B > zbud's 3968
    assert device.io_stat()["failed_writes"] == 1
    device = Zram(8 * 4096, compressor=Fixed(3300), allocator="z3fold")
    assert device.write(0, page(0)) and device.mm_stat()["huge_pages"] == 1
    with pytest.raises(ConfigError):
        Zram(4096, kernel="5.0")


def test_own_lz4_differs_from_the_kernels_lz4():
    kernel, pages = load_set("mix2000")
    device = Zram(kernel["zram"]["lz4"]["disksize"], compressor=get_compressor("lz4"))
    write_all(device, pages)
    ours, theirs = device.mm_stat()["compr_data_size"], kernel["zram"]["lz4"]["compr_data_size"]
    assert 0 < (ours - theirs) / theirs < 0.02              # a newer liblz4, ~1 % longer
    assert list(device.mm_stat()) == list(MM_STAT)
