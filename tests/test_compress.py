"""Compressors against the kernel's output and the cache's promise."""

import random

import pytest

from kernel_data import load_set
from zswapsim.compress import CompressionCache, Compressor, get_compressor
from zswapsim.errors import ConfigError
from zswapsim.replay import TIMING_FIELDS, replay


def sample_pages():
    rng = random.Random(5)
    text = b"zswap is a backend for frontswap that takes pages in the process of swapping out. "
    return [bytes(4096), rng.randbytes(4096), (text * 60)[:4096],
            rng.randbytes(1000) + bytes(3096), bytes(range(256)) * 16]


ALL_NAMES = ["lz4", "lz4hc", "lz4hc-3", "lzo", "lzo-rle", "842", "zstd", "zstd-1", "zstd-19",
             "deflate", "lz4-upstream", "lz4hc-upstream", "zstd-upstream", "zstd-upstream-19"]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_round_trip(name):
    """zram's two-page destination holds any page's output."""
    compressor = get_compressor(name, user="zram")
    for page in sample_pages():
        assert compressor.decompress(compressor.compress(page)) == page


@pytest.mark.parametrize("name", ["lz4", "lz4hc", "lzo", "lzo-rle", "842"])
def test_a_page_that_does_not_fit_zswaps_buffer_is_too_big(name):
    """Under 6.12 zswap compresses into dlen = PAGE_SIZE: random bytes do
    not fit, and the kernel's compressor says so; compress() then gives
    PAGE_SIZE + 1 bytes, which every store path refuses."""
    random_page = sample_pages()[1]
    assert len(get_compressor(name, kernel="6.12").compress(random_page)) == 4097
    assert len(get_compressor(name, kernel="6.12", user="zram").compress(random_page)) > 4096


def test_lz4_is_raw_block_format():
    """The kernel's lz4 and the upstream what-if both write lz4's block
    format with no size prefix: liblz4 decodes either."""
    import lz4.block
    page = sample_pages()[2]
    for name in ("lz4", "lz4-upstream"):
        data = get_compressor(name).compress(page)
        assert lz4.block.decompress(data, uncompressed_size=4096) == page
    upstream = get_compressor("lz4-upstream").compress(page)
    assert len(upstream) == len(lz4.block.compress(page)) - 4       # no 4-byte size prefix


def test_deflate_is_byte_exact_with_the_kernel():
    """zram with deflate on Linux 6.1 recorded each page's compressed length
    (4096 = stored uncompressed, 0 = same-filled): ours must equal every one."""
    kernel, pages = load_set("mix2000")
    deflate = get_compressor("deflate")
    compared = 0
    for i, length in enumerate(kernel["zram"]["deflate"]["per_page_compr_size"]):
        if length in (0, 4096):
            continue
        assert len(deflate.compress(pages[i])) == length, i
        compared += 1
    assert compared > 1400


def test_unknown_names_list_the_known_ones():
    for bad in ("lzma", "zstd-0", "zstd-23", "zstd-x", "", "lz4hc-17", "kernel-lz4",
                "zstd-upstream-0", "lz4-upstream-1"):
        with pytest.raises(ConfigError, match="known: lz4, lz4hc, lz4hc-N"):
            get_compressor(bad)


class Counting(Compressor):
    """A real compressor (lz4 unless named), counting the pages it compresses
    one at a time; its batch call, if any, is the real one's."""
    name = "counting"

    def __init__(self, inner="lz4"):
        self.inner = get_compressor(inner)
        self.calls = 0

    def compress(self, page):
        self.calls += 1
        return self.inner.compress(page)

    def decompress(self, data, size=4096):
        return self.inner.decompress(data, size)

    def batch_compressor(self):
        return self.inner.batch_compressor()


def test_cache_compresses_each_distinct_page_once_and_changes_nothing():
    counting = Counting()
    cache = CompressionCache(counting)
    pages = sample_pages() * 3
    outputs = [cache.compress(p) for p in pages]
    assert counting.calls == len(sample_pages()) and cache.hits == len(pages) - counting.calls
    assert outputs == [get_compressor("lz4").compress(p) for p in pages]
    # A budget too small to keep anything still gives the same bytes.
    tiny = CompressionCache(get_compressor("lz4"), budget_bytes=0)
    assert [tiny.compress(p) for p in pages] == outputs


def test_cache_does_not_change_replay_results(monkeypatch, tmp_path):
    from zswapsim.trace import TraceWriter
    rng = random.Random(11)
    distinct = [rng.randbytes(rng.randrange(200, 3000)) for _ in range(60)]
    distinct = [p + bytes(4096 - len(p)) for p in distinct]
    path = tmp_path / "repeats.trace"
    with TraceWriter(path) as w:                  # repeats, loads, frees, a biting limit
        for step in range(1500):
            offset = rng.randrange(400)
            kind = rng.random()
            if kind < 0.6:
                w.store(0, offset, rng.choice(distinct))
            elif kind < 0.9:
                w.load(0, offset)
            else:
                w.invalidate_page(0, offset)
    cached = replay(path, ram_pages=400)
    import zswapsim.replay
    for name in ("CompressionCache", "NativeCompressionCache"):   # either engine's
        original = getattr(zswapsim.replay, name)
        monkeypatch.setattr(zswapsim.replay, name,
                            lambda compressor, original=original: original(compressor,
                                                                           budget_bytes=0))
    uncached = replay(path, ram_pages=400)
    assert uncached["compress_cache_hits"] == 0 and cached["compress_cache_hits"] > 300
    assert cached["written_back_pages"] > 0 and cached["zswpin"] > 0
    for key in ("compress_cache_hits",) + TIMING_FIELDS:
        cached.pop(key), uncached.pop(key)
    assert cached == uncached


@pytest.mark.parametrize("name", ["zstd", "zstd-1", "zstd-19"])
def test_zstd_batch_gives_what_compress_gives(name):
    compressor = get_compressor(name)
    pages = sample_pages() * 2
    batch = compressor.batch_compressor()
    assert [segment.tobytes() for segment in batch(pages)] == \
        [compressor.compress(page) for page in pages]


@pytest.mark.parametrize("name", ["lz4", "lz4hc", "lzo", "deflate", "lz4-upstream"])
def test_compressors_without_a_batch_call_say_so(name):
    assert get_compressor(name).batch_compressor() is None


def test_cache_takes_the_compressions_made_ahead_on_a_miss_and_only_then():
    from zswapsim.compress import page_key
    zstd = Counting("zstd")
    cache = CompressionCache(zstd)
    pages = sample_pages()
    for page, ahead in zip(pages, cache.batch(pages)):
        assert cache.compress(page, page_key(page), ahead) == zstd.inner.compress(page)
    assert zstd.calls == 0 and cache.misses == len(pages)
    # A hit ignores what is handed ahead; a miss with nothing ahead, and
    # one with no key given, compress on the spot.
    assert cache.compress(pages[0], page_key(pages[0]), memoryview(b"other")) == \
        zstd.inner.compress(pages[0])
    first, last = (bytes(4095) + bytes([tag]) for tag in (1, 2))
    assert cache.compress(first, page_key(first)) == zstd.inner.compress(first)
    assert cache.compress(last) == zstd.inner.compress(last)
    assert zstd.calls == 2 and cache.hits == 1
