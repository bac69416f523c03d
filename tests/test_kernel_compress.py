"""The kernel's own compressors (zswapsim._kcompress) against what the real
kernels produced for the public page sets, against lengths worked out by
hand from the lz4 and lzo formats, and against hostile input; and once
under AddressSanitizer and UBSan."""

import functools
import random
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import sanitize
from kernel_data import SETS, load_set
from zswapsim import _kcompress
from zswapsim.compress import PAGE_SIZE, get_compressor
from zswapsim.errors import ConfigError

SOURCES = sanitize.PACKAGE / "_kcompress"
HUGE_THRESHOLD = 3257       # zram 6.1 stores a page whole from here (huge_class_size)
ZRAM_DLEN = 2 * PAGE_SIZE   # zcomp_compress: *dst_len = PAGE_SIZE * 2
ZSWAP_DLEN = PAGE_SIZE      # zswap 6.1: the request's dlen

COMPRESS = {
    "lz4": _kcompress.lz4_compress,
    "lz4hc": lambda page, dlen: _kcompress.lz4hc_compress(page, dlen, 9),
    "lzo": _kcompress.lzo_compress,
    "lzo-rle": _kcompress.lzorle_compress,
    "842": _kcompress.sw842_compress,
}
DECOMPRESS = {"lz4": _kcompress.lz4_decompress, "lz4hc": _kcompress.lz4_decompress,
              "lzo": _kcompress.lzo_decompress, "lzo-rle": _kcompress.lzo_decompress,
              "842": _kcompress.sw842_decompress}


@functools.cache
def page_set(name):
    return load_set(name)


def length(data):
    return 0 if data is None else len(data)


def zram_mismatches(algorithm, expected, pages):
    """Pages where ours disagrees with zram's per_page_compr_size: 0 is a
    same-filled page (never compressed), 4096 one stored whole (ours must
    reach the huge threshold), anything else the compressed length."""
    bad = []
    for index, (size, page) in enumerate(zip(expected, pages)):
        if size == 0:
            continue
        ours = length(COMPRESS[algorithm](page, ZRAM_DLEN))
        if (ours < HUGE_THRESHOLD) if size == PAGE_SIZE else (ours != size):
            bad.append((index, size, ours))
    return bad


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("dlen", [ZSWAP_DLEN, ZRAM_DLEN])
def test_lz4_lengths_equal_the_kernels_on_every_page(name, dlen):
    kernel, pages = page_set(name)
    expected = kernel["kernel_lz4_len"][f"max_out_{dlen}"]
    ours = [length(_kcompress.lz4_compress(page, dlen)) for page in pages]
    assert [i for i, (a, b) in enumerate(zip(ours, expected)) if a != b] == []
    if dlen == ZSWAP_DLEN:
        assert ours.count(0) == {"mix2000": 302, "mix10000": 1705}[name]   # the sheet's 4.1


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("algorithm", ["lz4", "lz4hc", "lzo", "lzo-rle"])
def test_zram_61_per_page_sizes(name, algorithm):
    kernel, pages = page_set(name)
    assert zram_mismatches(algorithm, kernel["zram"][algorithm]["per_page_compr_size"],
                           pages) == []


@pytest.mark.parametrize("version", ["linux-6.12", "linux-6.18"])
@pytest.mark.parametrize("algorithm", ["lz4", "lz4hc"])
def test_zram_per_page_sizes_of_newer_kernels(version, algorithm):
    kernel, pages = load_set(f"{version}/mix2000")
    assert zram_mismatches(algorithm, kernel["zram"][algorithm]["per_page_compr_size"],
                           pages) == []


def test_lz4_streams_interoperate_with_liblz4():
    """python-lz4 (liblz4 1.9.4) is an independent encoder and decoder of
    the same block format: each side must read the other's streams."""
    import lz4.block
    for page in page_set("mix2000")[1]:
        for ours in (_kcompress.lz4_compress(page, ZRAM_DLEN),
                     _kcompress.lz4hc_compress(page, ZRAM_DLEN, 9)):
            assert lz4.block.decompress(ours, uncompressed_size=PAGE_SIZE) == page
        for theirs in (lz4.block.compress(page, store_size=False),
                       lz4.block.compress(page, store_size=False, mode="high_compression")):
            assert _kcompress.lz4_decompress(theirs, PAGE_SIZE) == page


@pytest.mark.parametrize("name, huge, not_fitting, mean", [
    ("mix2000", 426, 300, 2985.6), ("mix10000", 2215, 1684, 3014.9)])
def test_842_against_the_reference_build(name, huge, not_fitting, mean):
    """No kernel ran 842 on these pages; the sheet's reference build of the
    kernel's lib/842 (section 3.7) measured these figures: pages at or over
    the huge threshold, pages over zswap's 4096, and the mean length over
    pages that are not same-filled; 4,424 bytes at most."""
    _, pages_ = page_set(name)
    lengths = [len(_kcompress.sw842_compress(page, ZRAM_DLEN)) for page in pages_]
    assert sum(size >= HUGE_THRESHOLD for size in lengths) == huge
    assert sum(_kcompress.sw842_compress(page, ZSWAP_DLEN) is None for page in pages_) \
        == not_fitting == sum(size > ZSWAP_DLEN for size in lengths)
    stored = [size for size, page in zip(lengths, pages_) if page != page[:8] * 512]
    assert round(sum(stored) / len(stored), 1) == mean
    assert max(lengths) == 4424


def test_842_by_hand():
    """A zero page, 512 zero blocks: a zeros template (0x1c) for the first;
    each 64th repeat after it flushes a repeat template (0x1b, count - 1 =
    63) that absorbs it, 7 times (blocks 1-448); 63 repeats are left for a
    last template (62); then the end (0x1e) and crc32_be of zeros, 0.
    130 bits: 17 bytes, zero-padded to 24."""
    bits = ("11100" + ("11011" + format(63, "06b")) * 7 + "11011" + format(62, "06b")
            + "11110" + "0" * 32)
    assert len(bits) == 130
    padded = bits + "0" * (24 * 8 - len(bits))
    expected = bytes(int(padded[i:i + 8], 2) for i in range(0, len(padded), 8))
    assert _kcompress.sw842_compress(bytes(PAGE_SIZE), ZRAM_DLEN) == expected
    assert _kcompress.sw842_decompress(expected, PAGE_SIZE) == bytes(PAGE_SIZE)


# -- hand-worked lengths --------------------------------------------------

def incompressible_page():
    """A page in which no 4-byte string occurs twice: no algorithm here can
    find a match, and no lzo-rle zero run (checked, not assumed)."""
    page = random.Random(16).randbytes(PAGE_SIZE)
    grams = [page[i:i + 4] for i in range(PAGE_SIZE - 3)]
    assert len(set(grams)) == len(grams)
    return page


# lz4: one final literal run of 4096: token, (4096 - 15) = 16 x 255 + 1 in 17
# length bytes, the literals.  The kernel's check wants R + 1 + (R + 240)/255
# = 4114 bytes, exactly what is written.
LZ4_RAW = 1 + 17 + PAGE_SIZE
# lzo: first-literal byte 0, (4096 - 18) = 15 x 255 + 253 in 16 bytes, the
# literals, end marker 0x11 0x00 0x00; lzo-rle adds its 0x11 0x01 header.
LZO_RAW = 1 + 16 + PAGE_SIZE + 3


@pytest.mark.parametrize("algorithm, raw", [("lz4", LZ4_RAW), ("lz4hc", LZ4_RAW),
                                            ("lzo", LZO_RAW), ("lzo-rle", LZO_RAW + 2)])
def test_did_not_fit_boundary_on_an_incompressible_page(algorithm, raw):
    page = incompressible_page()
    compress = COMPRESS[algorithm]
    fitted = compress(page, raw)       # below lz4's bound 4128: the limited mode
    assert length(fitted) == raw
    assert fitted == compress(page, ZRAM_DLEN)
    assert DECOMPRESS[algorithm](fitted, PAGE_SIZE) == page
    assert compress(page, raw - 1) is None
    assert compress(page, ZSWAP_DLEN) is None


def test_lzo_rle_zero_runs_are_one_instruction_of_up_to_2051_bytes():
    """Worked by hand from the sheet's 3.3-3.4: the first probe is at 5 and
    finds zeros; the run is capped at 2051; the second run stops at ip_end
    (4096 - 20), with rl = 2016, a multiple of 8 (the form a decoder must
    not mistake for a long M4); 20 tail literals follow as 0, 20 - 18."""
    page = b"\x01\x02\x03\x04\x05" + bytes(PAGE_SIZE - 5)
    expected = (b"\x11\x01" + bytes([5 - 3]) + page[:5]
                + bytes([0x18 | (2047 & 7), 0xfc, 0xff, 2047 >> 3])
                + bytes([0x18 | (2016 & 7), 0xfc, 0xff, 2016 >> 3])
                + bytes([0, 20 - 18]) + bytes(20) + b"\x11\x00\x00")
    assert _kcompress.lzorle_compress(page, ZRAM_DLEN) == expected
    assert _kcompress.lzo_decompress(expected, PAGE_SIZE) == page


def test_lzo_and_lzo_rle_of_an_empty_input():
    assert _kcompress.lzo_compress(b"", ZRAM_DLEN) == b"\x11\x00\x00"
    assert _kcompress.lzorle_compress(b"", ZRAM_DLEN) == b"\x11\x01\x11\x00\x00"
    assert _kcompress.lzo_decompress(b"\x11\x00\x00", 0) == b""
    assert _kcompress.lzo_decompress(b"\x11\x01\x11\x00\x00", 0) == b""


# -- round trips and the limited modes (hypothesis) -------------------------

def pages(draw_bytes):
    return st.one_of(
        draw_bytes,
        st.lists(st.sampled_from([bytes(64), b"\xff" * 8, b"text of a page, ", b"\x00\x01"]),
                 min_size=1, max_size=300).map(lambda parts: b"".join(parts)[:PAGE_SIZE]),
        st.binary(min_size=0, max_size=64).map(
            lambda head: (head + bytes(PAGE_SIZE))[:PAGE_SIZE]),
        st.sampled_from(sorted(set((Path(__file__).read_bytes() * 4)[i:i + PAGE_SIZE]
                                   for i in range(0, 8192, 1021)))),
    )


ANY_PAGE = pages(st.binary(min_size=0, max_size=PAGE_SIZE))


@settings(max_examples=150, deadline=None)
@given(page=ANY_PAGE, algorithm=st.sampled_from(sorted(COMPRESS)))
def test_round_trip(page, algorithm):
    data = COMPRESS[algorithm](page, ZRAM_DLEN)
    assert DECOMPRESS[algorithm](data, len(page)) == page


@settings(max_examples=150, deadline=None)
@given(page=ANY_PAGE, algorithm=st.sampled_from(["lz4", "lz4hc"]))
def test_lz4_limited_mode_fails_exactly_when_the_output_is_longer(page, algorithm):
    """The kernel's room checks ask, at each sequence, for no more than what
    the rest of the output is sure to take (8 + L/255 beyond L literals: an
    offset, and at least a final token and 5 literals), so in limited mode
    "did not fit" means precisely "longer than dlen"."""
    compress = COMPRESS[algorithm]
    data = compress(page, ZRAM_DLEN)
    assert len(data) < len(page) + len(page) // 255 + 16      # so dlen = len is limited
    assert compress(page, len(data)) == data
    assert DECOMPRESS[algorithm](compress(page, len(data)), len(page)) == page
    assert compress(page, len(data) - 1) is None


@settings(max_examples=150, deadline=None)
@given(page=ANY_PAGE, algorithm=st.sampled_from(["lzo", "lzo-rle"]))
def test_lzo_safe_bound_is_within_7_bytes(page, algorithm):
    """lzo's _safe checks want 17 bytes before a 4-16 literal run that
    takes 1 + t, and at least 5 more follow it (a match, the end marker):
    the worst case, t = 4, asks for 7 bytes it never writes."""
    compress = COMPRESS[algorithm]
    data = compress(page, ZRAM_DLEN)
    assert compress(page, len(data) + 7) == data
    assert compress(page, len(data)) in (None, data)
    assert compress(page, len(data) - 1) is None


@pytest.mark.parametrize("level", range(1, 17))
def test_lz4hc_levels_round_trip_and_search_harder_upwards(level):
    kernel, pages_ = page_set("mix2000")
    sample = [page for page in pages_[:400] if len(set(page)) > 1]
    total = 0
    for page in sample:
        data = _kcompress.lz4hc_compress(page, ZRAM_DLEN, level)
        assert _kcompress.lz4_decompress(data, PAGE_SIZE) == page
        total += len(data)
    # 1 << (level - 1) chain steps: more never loses on this sample as a whole.
    if level > 1:
        before = sum(len(_kcompress.lz4hc_compress(page, ZRAM_DLEN, level - 1))
                     for page in sample)
        assert total <= before


def test_lz4hc_level_clamps_as_the_kernel_does():
    page = page_set("mix2000")[1][0]
    assert _kcompress.lz4hc_compress(page, ZRAM_DLEN, 0) == \
        _kcompress.lz4hc_compress(page, ZRAM_DLEN, 9)
    assert _kcompress.lz4hc_compress(page, ZRAM_DLEN, 40) == \
        _kcompress.lz4hc_compress(page, ZRAM_DLEN, 16)


# -- hostile input ------------------------------------------------------------

# lz4, by hand: 1 literal "A", a match at offset 1 of 4 + 10, 5 final literals.
LZ4_VALID = b"\x1a" + b"A" + b"\x01\x00" + b"\x50" + b"BCDEF"
# lzo: first byte 17 + 1 (one literal), M2 of 3 at distance 1, end marker.
LZO_VALID = b"\x12A" + b"\x40\x00" + b"\x11\x00\x00"
# lzo-rle: the same literal, a zero run of 4 (rl 0: 0x18 fc ff 00), end marker.
LZO_RLE_VALID = b"\x11\x01" + b"\x12A" + b"\x18\xfc\xff\x00" + b"\x11\x00\x00"
# 842: a first block made of ring slot 0 (I8, 0x19), which nothing has written.
SW842_NO_HISTORY = bytes([0b11001000, 0b00000111, 0b10000000]) + bytes(5)


def test_the_hand_made_streams_decode():
    assert _kcompress.lz4_decompress(LZ4_VALID, 20) == b"A" * 15 + b"BCDEF"
    assert _kcompress.lzo_decompress(LZO_VALID, 4) == b"AAAA"
    assert _kcompress.lzo_decompress(LZO_RLE_VALID, 5) == b"A" + bytes(4)


@pytest.mark.parametrize("decompress, data, size", [
    (_kcompress.lz4_decompress, b"", 0),                            # no token at all
    (_kcompress.lz4_decompress, LZ4_VALID, 21),                     # decodes 20, not 21
    (_kcompress.lz4_decompress, LZ4_VALID, 19),                     # output overrun
    (_kcompress.lz4_decompress, LZ4_VALID.replace(b"\x01\x00", b"\x00\x00"), 20),  # offset 0
    (_kcompress.lz4_decompress, LZ4_VALID.replace(b"\x01\x00", b"\x02\x00"), 20),  # before start
    (_kcompress.lz4_decompress, b"\x1a" + b"A" + b"\x01\x00" + b"\x50BCDE", 19),  # short input
    (_kcompress.lz4_decompress, b"\xf0" + b"\xff" * 8, 4096),      # length bytes run out
    (_kcompress.lz4_decompress, b"\x1f" + b"A" + b"\x01\x00\x01" + b"\x50BCDEF", 22),
    (_kcompress.lzo_decompress, LZO_VALID, 3),                      # output overrun
    (_kcompress.lzo_decompress, LZO_VALID.replace(b"\x40", b"\x44"), 4),  # distance 2 > 1
    (_kcompress.lzo_decompress, LZO_VALID[:-1], 4),                 # no end marker
    (_kcompress.lzo_decompress, LZO_VALID + b"\x00", 4),            # bytes after the end
    (_kcompress.lzo_decompress, b"\x11\x00\x01", 0),                # marker with a length
    (_kcompress.lzo_decompress, LZO_RLE_VALID, 4),                  # zero run past the end
    (_kcompress.lzo_decompress, LZO_RLE_VALID[:8], 5),              # run cut short
    (_kcompress.sw842_decompress, SW842_NO_HISTORY, 8),             # index before the start
    (_kcompress.sw842_decompress, bytes(8), 8),                     # template 0: data cut
])
def test_decompressors_reject_malformed_input(decompress, data, size):
    with pytest.raises(ValueError):
        decompress(data, size)


@settings(max_examples=300, deadline=None)
@given(algorithm=st.sampled_from(sorted(COMPRESS)), data=st.data())
def test_decompressors_survive_damaged_pages(algorithm, data):
    """A damaged stream gives ValueError or a page of the right size, never
    a crash (the sanitizer test below checks the memory side)."""
    _, pages_ = page_set("mix2000")
    page = pages_[data.draw(st.integers(0, len(pages_) - 1))]
    stream = bytearray(COMPRESS[algorithm](page, ZRAM_DLEN))
    how = data.draw(st.sampled_from(["truncate", "flip", "random"]))
    if how == "truncate":
        del stream[data.draw(st.integers(0, len(stream) - 1)):]
    elif how == "flip":
        stream[data.draw(st.integers(0, len(stream) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    else:
        stream = data.draw(st.binary(max_size=PAGE_SIZE + 64))
    try:
        result = DECOMPRESS[algorithm](bytes(stream), PAGE_SIZE)
    except ValueError:
        return
    assert len(result) == PAGE_SIZE
    if how == "truncate":
        pytest.fail("a truncated stream decoded")


def test_sanitizers_find_nothing(tmp_path):
    """The C files built with -fsanitize=address,undefined (any report
    aborts) and run over every public page and fuzzed decoder input."""
    harness = sanitize.build(
        [SOURCES / name for name in ("sanitize_harness.c", "lz4.c", "lz4hc.c", "lzo.c", "842.c")],
        tmp_path / "harness", f"-I{SOURCES}")
    for name in SETS:
        pages_file = tmp_path / f"{name}.raw"
        pages_file.write_bytes(b"".join(page_set(name)[1]))
        stride = {"mix2000": "8", "mix10000": "40"}[name]     # fuzz 250 pages of each set
        run = subprocess.run([str(harness), str(pages_file), stride],
                             capture_output=True, text=True, env=sanitize.HARNESS_ENV)
        assert run.returncode == 0 and run.stderr == "", run.stderr[-4000:]
        pages_run = int(run.stdout.split()[0])
        assert pages_run == len(page_set(name)[1])


# -- the registry ---------------------------------------------------------------

def test_lz4_upstream_is_python_lz4():
    import lz4.block
    page = page_set("mix2000")[1][0]
    assert get_compressor("lz4-upstream").compress(page) == \
        lz4.block.compress(page, store_size=False)


@pytest.mark.parametrize("name, function", [
    ("lz4", _kcompress.lz4_compress), ("lzo", _kcompress.lzo_compress),
    ("lzo-rle", _kcompress.lzorle_compress), ("842", _kcompress.sw842_compress),
    ("lz4hc", lambda page, dlen: _kcompress.lz4hc_compress(page, dlen, 9)),
    ("lz4hc-3", lambda page, dlen: _kcompress.lz4hc_compress(page, dlen, 3)),
])
def test_registered_kernel_compressors(name, function):
    """Each name is the kernel's compressor, into zswap's 4096 bytes under
    Linux 6.1 (compress_dst_size: dlen = PAGE_SIZE)."""
    compressor = get_compressor(name, kernel="6.1")
    assert compressor.name == name and compressor.dlen == ZSWAP_DLEN
    for page in page_set("mix2000")[1][:300]:
        data = compressor.compress(page)
        expected = function(page, ZSWAP_DLEN)
        if expected is None:
            assert data == bytes(ZSWAP_DLEN + 1)      # longer than zswap's buffer
            with pytest.raises(ValueError):
                compressor.decompress(data)
        else:
            assert data == expected and compressor.decompress(data) == page
    compressor.dlen = ZRAM_DLEN
    assert compressor.compress(incompressible_page()) == function(incompressible_page(),
                                                                   ZRAM_DLEN)


@pytest.mark.parametrize("name", ["lz4hc-0", "lz4hc-17", "lz4hc-x", "lzo-1", "kernel-lz4"])
def test_unknown_kernel_compressor_names(name):
    with pytest.raises(ConfigError):
        get_compressor(name)


# -- end to end: the models on our bytes against the kernel's counters ---------

@pytest.mark.parametrize("algorithm", ["lz4", "lz4hc", "lzo", "lzo-rle"])
def test_zram_on_our_bytes_equals_the_kernel(algorithm):
    from zswapsim.fidelity import ZRAM_FIELDS
    from zswapsim.zram import Zram
    kernel, pages_ = page_set("mix2000")
    expected = kernel["zram"][algorithm]
    device = Zram(expected["disksize"], compressor=algorithm)
    for index, page in enumerate(pages_):
        device.write(index, page)
    stat = device.mm_stat()
    assert {field: stat[field] for field in ZRAM_FIELDS} == \
        {field: expected[field] for field in ZRAM_FIELDS}


# Every 6.1 zswap run with a kernel compressor (mix10000 has no lzo runs).
ZSWAP_CASES = [(name, pool, "lz4") for name in SETS for pool in ("zbud", "z3fold", "zsmalloc")] \
    + [("mix2000", "zbud", "lzo"), ("mix2000", "zsmalloc", "lzo")]


@pytest.mark.parametrize("name, pool, algorithm", ZSWAP_CASES)
def test_zswap_on_our_bytes_equals_the_kernel(name, pool, algorithm):
    """zswap 6.1 compresses into 4096 bytes: our "did not fit" must fall on
    the kernel's pages for stored_pages and the pools to agree."""
    from zswapsim.fidelity import ZSWAP_FIELDS
    from zswapsim.memory import Memory
    from zswapsim.zswap import Zswap
    kernel, pages_ = page_set(name)
    expected = kernel["zswap"][pool][algorithm]
    zswap = Zswap(backend=pool, compressor=algorithm,
                  memory=Memory(expected["mem_total_kb"] * 1024 // PAGE_SIZE),
                  max_pool_percent=expected["max_pool_percent"])
    for offset, page in enumerate(pages_, start=1):
        zswap.store(0, offset, page)
    counters = zswap.counters()
    assert {field: counters[field] for field in ZSWAP_FIELDS} == \
        {field: expected[field] for field in ZSWAP_FIELDS}
