"""Each kernel's zstd (compress.kernel_zstd) against that kernel's own output.

../shared/fidelity holds what Linux 6.1, 6.12 and 6.18 reported for the same
two page sets.  zram's per_page_compr_size is the kernel's zstd length of
every page it stored compressed; a page it stored whole (4096) compressed to
huge_class_size or more.  zswap's pool over zsmalloc with zstd tells the
length of every page too, summed through the allocator.  Each kernel bundles
its own libzstd and its zram and zswap ask for their own parameters, so each
is held to its own numbers, and the others' must not do.
"""

import hashlib
from functools import cache

import pytest
import pyzstd
import zstandard
from backports import zstd as backports_zstd

from kernel_data import SETS, load_set
from zswapsim.compress import PAGE_SIZE, ConfigError, get_compressor, kernel_zstd, zstd_row
from zswapsim.memory import Memory
from zswapsim.profiles import KERNEL_ZSTD
from zswapsim.zpool import create_pool
from zswapsim.zram import Zram
from zswapsim.zswap import Zswap

KERNEL_DIRS = {"6.1": "", "6.12": "linux-6.12/", "6.18": "linux-6.18/"}     # in the fidelity data
CHAIN_SIZE = {"6.1": 4, "6.12": 8, "6.18": 8}   # CONFIG_ZSMALLOC_CHAIN_SIZE (fidelity README)
ZERO_PAGE = bytes(PAGE_SIZE)


@cache
def kernel_run(kernel, name):
    """(kernel JSON, pages) of set `name` as Linux `kernel` ran it."""
    return load_set(KERNEL_DIRS[kernel] + name)


def zram_agreement(compressor, kernel, name):
    """(pages whose length agrees with the kernel's zram, pages zram
    compressed): equal lengths, or huge where the kernel stored the page
    whole; same-filled pages (size 0) never reach the compressor."""
    run, pages = kernel_run(kernel, name)
    huge_class_size = create_pool("zsmalloc", chain_size=CHAIN_SIZE[kernel]).huge_class_size
    equal = total = 0
    for page, size in zip(pages, run["zram"]["zstd"]["per_page_compr_size"]):
        if size == 0:
            continue
        total += 1
        length = len(compressor.compress(page))
        equal += length >= huge_class_size if size == PAGE_SIZE else length == size
    return equal, total


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("kernel", list(KERNEL_DIRS))
def test_zram_zstd_page_by_page(kernel, name):
    equal, total = zram_agreement(kernel_zstd(kernel, "zram"), kernel, name)
    assert total == {"mix2000": 1752, "mix10000": 8752}[name]
    assert equal == total, f"Linux {kernel} zram zstd: {equal}/{total} pages equal"


@pytest.mark.parametrize("kernel", list(KERNEL_DIRS))
def test_another_kernels_zstd_does_not_do(kernel):
    """The per-kernel choice matters: every other kernel's zram zstd misses
    hundreds of this kernel's pages (mix2000)."""
    for other in KERNEL_DIRS:
        if other != kernel:
            equal, total = zram_agreement(kernel_zstd(other, "zram"), kernel, "mix2000")
            assert equal < total - 400, (other, equal)


@pytest.mark.parametrize("name", SETS)
def test_zram_6_1_zstd_end_to_end(name):
    run, pages = kernel_run("6.1", name)
    expected = run["zram"]["zstd"]
    device = Zram(expected["disksize"], compressor=kernel_zstd("6.1", "zram"), kernel="6.1")
    for index, page in enumerate(pages):
        device.write(index, page)
    stat = device.mm_stat()
    for field in ("orig_data_size", "compr_data_size", "mem_used_total", "same_pages",
                  "huge_pages"):
        assert stat[field] == expected[field], field


@pytest.mark.parametrize("name", SETS)
def test_zswap_6_1_zsmalloc_zstd_end_to_end(name):
    run, pages = kernel_run("6.1", name)
    expected = run["zswap"]["zsmalloc"]["zstd"]
    zswap = Zswap(backend="zsmalloc", compressor=kernel_zstd("6.1", "zswap"), kernel="6.1",
                  memory=Memory(expected["mem_total_kb"] // 4),
                  max_pool_percent=expected["max_pool_percent"])
    for offset, page in enumerate(pages, start=1):
        zswap.store(0, offset, page)
    counts = zswap.counters()
    for field in ("pool_total_size", "stored_pages", "same_filled_pages",
                  "reject_compress_poor"):
        assert counts[field] == expected[field], field
    assert counts["swap_writes"] == expected["pswpout"]     # did not fit in 4096 bytes


def zswap_pool(kernel, name, compressor):
    """6.12's and 6.18's zswap store, by the fidelity README's rules, into a
    zsmalloc pool with 8-page zspages: zero pages never reach zswap; a page
    compressed beyond PAGE_SIZE is refused in 6.12 (reject_compress_fail)
    and stored whole in 6.18 (stored_incompressible_pages)."""
    _, pages = kernel_run(kernel, name)
    pool = create_pool("zsmalloc", chain_size=8)
    stored = incompressible = 0
    for page in pages:
        if page == ZERO_PAGE:
            continue
        length = len(compressor.compress(page))
        if length > PAGE_SIZE or (kernel == "6.18" and length == PAGE_SIZE):
            incompressible += 1
            if kernel == "6.12":
                continue
            length = PAGE_SIZE
        pool.malloc(length)
        stored += 1
    return pool.total_size(), stored, incompressible


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("kernel", ["6.12", "6.18"])
def test_zswap_zsmalloc_zstd_pool(kernel, name):
    run, _ = kernel_run(kernel, name)
    expected = run["zswap"]["zsmalloc"]["zstd"]
    size, stored, incompressible = zswap_pool(kernel, name, kernel_zstd(kernel, "zswap"))
    assert size == expected["pool_total_size"]
    assert stored == expected["stored_pages"]
    assert incompressible == (expected["reject_compress_fail"] if kernel == "6.12"
                              else expected["stored_incompressible_pages"])


def test_zswap_6_12_needs_crypto_zstd_parameters():
    """6.12's zswap asks crypto/zstd.c's zstd_get_params(3, 0), not zram's
    (3, PAGE_SIZE): with zram's parameters the pool comes out smaller."""
    run, _ = kernel_run("6.12", "mix2000")
    size, _, _ = zswap_pool("6.12", "mix2000", kernel_zstd("6.12", "zram"))
    assert size < run["zswap"]["zsmalloc"]["zstd"]["pool_total_size"]


def test_parameter_rows_are_libzstd_tables():
    """zstd_get_params(3, 0): the unknown-size row W21 C16 H17 S1 L5 T0
    dfast (KERNEL-COMPRESSORS.md 3.5); (3, 256 KiB): the <= 256 KB row
    W18 C16 H16 S1 L4 T0 dfast (lib/zstd/compress/clevels.h)."""
    fields = ("window_log", "chain_log", "hash_log", "search_log", "min_match",
              "target_length", "strategy")
    assert [zstd_row(3, 0)[f] for f in fields] == [21, 16, 17, 1, 5, 0, 2]
    assert [zstd_row(3, 256 << 10)[f] for f in fields] == [18, 16, 16, 1, 4, 0, 2]


@pytest.mark.parametrize("user", ["zswap", "zram"])
@pytest.mark.parametrize("kernel", list(KERNEL_ZSTD))
def test_frame_and_round_trip(kernel, user):
    """One frame per page: magic 28 b5 2f fd, header byte 0x60 (single
    segment, 2-byte content size, no checksum, no dictionary ID), content
    size 4096 - 256; the batch call gives compress()'s bytes; every frame
    decompresses to its page."""
    _, pages = kernel_run("6.1", "mix2000")
    zstd = kernel_zstd(kernel, user)
    sample = pages[:300]
    frames = [zstd.compress(page) for page in sample]
    assert {frame[:7].hex() for frame in frames} == {"28b52ffd60000f"}
    assert [bytes(frame) for frame in zstd.batch_compressor()(sample)] == frames
    assert [zstd.decompress(frame) for frame in frames] == sample


def test_bindings_bundle_the_pinned_releases():
    assert pyzstd.zstd_version == "1.5.0"
    assert zstandard.ZSTD_VERSION == (1, 5, 6)
    assert backports_zstd.zstd_version == "1.5.7"
    assert {kernel: kernel_zstd(kernel, "zram").library.libzstd for kernel in KERNEL_ZSTD} == {
        "6.1": "1.5.0", "6.3": "1.5.6", "6.6": "1.5.6", "6.12": "1.5.6", "6.18": "1.5.7"}


# SHA-256 of the userspace zstd's frames for mix2000's pages, in page order,
# recorded with python-zstandard 0.25.0 (libzstd 1.5.7) before zstd had
# kernels, when it was called "zstd": zstd-upstream gives the same bytes.
DEFAULT_ZSTD_DIGESTS = {
    "zstd-upstream": "7ee38db09db96f1cfff379f2e60970bd9a73f41a61644460129ca99da9e4f307",
    "zstd-upstream-19": "0e2df5445f91a1dbf490743dd8165baf664ec54d4c5f31589aab9652cae488c9",
}


@pytest.mark.parametrize("name", list(DEFAULT_ZSTD_DIGESTS))
def test_upstream_zstd_unchanged(name):
    _, pages = kernel_run("6.1", "mix2000")
    zstd = get_compressor(name)
    digest = hashlib.sha256(b"".join(zstd.compress(page) for page in pages)).hexdigest()
    assert digest == DEFAULT_ZSTD_DIGESTS[name]


def test_kernel_zstd_names_and_levels():
    assert get_compressor("zstd", kernel="6.12", user="zram").name == "zstd"
    zram_level_5 = get_compressor("zstd-5", kernel="6.12", user="zram")
    assert (zram_level_5.name, zram_level_5.level) == ("zstd-5", 5)
    assert get_compressor("zstd-3", kernel="6.1").level == 3


@pytest.mark.parametrize("call, message", [
    (lambda: kernel_zstd("3.11", "zswap"), "no zstd for Linux 3.11"),
    (lambda: kernel_zstd("6.1", "zcache"), "unknown zstd user 'zcache'"),
    (lambda: get_compressor("zstd", kernel="3.11"), "3.11's zswap has no zstd"),
    (lambda: get_compressor("zstd", kernel="4.14", user="zram"), "4.14's zram has no zstd"),
    (lambda: get_compressor("zstd-23", kernel="6.18"), "unknown compressor 'zstd-23'"),
])
def test_bad_kernel_zstd(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_a_level_the_crypto_api_cannot_ask_for_is_a_what_if():
    """crypto/zstd.c always asks for level 3: zstd-5 under zswap, or under
    zram before its own backends (6.12), runs as a what-if saying so; zram
    6.12's backend_zstd.c takes the level (algorithm_params)."""
    from zswapsim.compress import compressor_what_if
    assert get_compressor("zstd-5", kernel="6.12").level == 5
    assert "6.12's zswap zstd is always level 3" in compressor_what_if("zstd-5", "6.12")
    assert "6.6's zram zstd is always level 3" in compressor_what_if("zstd-5", "6.6", "zram")
    assert compressor_what_if("zstd-5", "6.12", "zram") is None
    assert compressor_what_if("zstd-3", "6.1") is None
