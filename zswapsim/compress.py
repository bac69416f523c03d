"""Compressors as zswap and zram drive them, the kernel's own by name.

Each compressor turns one page image into the bytes the kernel would store,
chosen by name for a kernel and its caller (get_compressor): lz4, lz4hc,
lzo, lzo-rle and 842 are the kernel's lib/ code compiled (zswapsim/_kcompress,
byte for byte from KERNEL-COMPRESSORS.md), into the destination size that
caller's kernel path gives (zswap's compress_dst_size, zram's two pages), so
"did not fit" falls where the kernel's does; deflate is crypto/deflate.c's
zlib stream (raw, level 6, window bits 11, memLevel 8), which Python's zlib
gives byte for byte.  Kernels older than the code zswapsim has say so in
their profile's compressor_limits: 3.11's lib/lz4 predates 4.11's, and a
compressor a kernel lacks is one error naming the release that brought it.

zstd's bytes depend on the libzstd release a kernel's lib/zstd imports and
on the parameters its caller asks zstd_get_params() for, so zstd too is
chosen by kernel: get_compressor("zstd", kernel="6.12", user="zram") is
6.12's zram zstd, byte for byte.  Two declared tables say how:
profiles.KERNEL_ZSTD (per kernel, the release and each user's call) and
ZSTD_LIBRARIES (per release, the pinned binding whose bundled libzstd gives
the same bytes; the bindings have different module names, so all three
install side by side).

The userspace libraries stay as what-ifs under their own names:
lz4-upstream and lz4hc-upstream (python-lz4's liblz4, whose 5-byte hash and
end rule give other bytes on most pages) and zstd-upstream[-N] (libzstd
1.5.7 for an unknown source size, which no kernel asks for).

Compression is the one cost a simulator cannot avoid, so `CompressionCache`
compresses each distinct page image once per run and hands back the same
bytes for every later copy: the result is identical, only faster.  Pages
are told apart by `page_key`, a 128-bit XXH3 digest, which the replayer also
uses to verify loads; it computes each stored page's key once and hands it
to every cache (compress's `key`), so allocators fed the same page do not
hash it again.  NativeCompressionCache is the cache's compiled twin, which
the native engine's zswaps call without going through Python.
"""

import zlib
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import lz4.block
import pyzstd
import zstandard
from backports import zstd as backports_zstd
from xxhash import xxh3_128_digest

from . import _engine, _kcompress
from .errors import ConfigError
from .profiles import DEFAULT_ZRAM_KERNEL, DEFAULT_ZSWAP_KERNEL, KERNEL_ZSTD, kernel_profile

PAGE_SIZE = 4096


class Compressor:
    """One algorithm: `compress(page) -> bytes`, `decompress(data) -> page`."""

    name = ""
    PARAMS = ()         # the attributes that, with the class, decide the bytes

    def identity(self):
        """What decides this compressor's output and its name in results:
        lanes whose compressors have the same identity share one cache."""
        return (type(self).__name__, self.name) + tuple(getattr(self, p) for p in self.PARAMS)

    def batch_compressor(self):
        """A function for another thread that compresses a list of pages
        in one call releasing the GIL, returning a sequence of buffers
        with compress()'s bytes; None when the algorithm has no such call."""
        return None

    def compress(self, page):
        raise NotImplementedError

    def decompress(self, data, size=PAGE_SIZE):
        raise NotImplementedError


class GivenLengths(Compressor):
    """Stands in for a kernel compressor whose output lengths are known
    (fidelity data): compress() gives filler bytes of the page's given
    length, so the store paths and allocators run exactly as on the
    kernel's output; 0 means "did not fit" and gives `too_big` bytes.
    Pages are matched by content; decompress() gives the page back."""

    def identity(self):
        return (type(self).__name__, id(self))

    def __init__(self, name, pages, lengths, too_big=PAGE_SIZE + 1):
        self.name = f"{name} (given lengths)"
        self._length_of = {}
        self._page_of = {}
        for page, length in zip(pages, lengths):
            if self._length_of.setdefault(page, length) != length:
                raise ValueError("one page content given two different lengths")
        for page, length in self._length_of.items():
            self._length_of[page] = length or too_big

    def compress(self, page):
        filler = self._page_filler(page)
        self._page_of[filler] = page
        return filler

    def _page_filler(self, page):
        # Distinct fillers for distinct pages of one length: the page's
        # digest, repeated, cut to the length.
        digest = page_key(page)
        length = self._length_of[page]
        return (digest * (length // 16 + 1))[:length]

    def decompress(self, data, size=PAGE_SIZE):
        return self._page_of[bytes(data)]


class Lz4(Compressor):
    """Userspace liblz4 (python-lz4's) LZ4_compress_fast at `acceleration`
    (1: LZ4_compress_default): the lz4-upstream what-if."""

    name = "lz4-upstream"
    PARAMS = ("acceleration",)

    def __init__(self, acceleration=1):
        self.acceleration = acceleration

    def compress(self, page):
        return lz4.block.compress(page, mode="fast", acceleration=self.acceleration,
                                  store_size=False)

    def decompress(self, data, size=PAGE_SIZE):
        return lz4.block.decompress(data, uncompressed_size=size)


class Lz4hc(Lz4):
    """Userspace liblz4's LZ4_compress_HC at `level`: lz4hc-upstream."""

    name = "lz4hc-upstream"
    PARAMS = ("level",)

    def __init__(self, level=9):
        self.level = level

    def compress(self, page):
        return lz4.block.compress(page, mode="high_compression",
                                  compression=self.level, store_size=False)


class ZstdBinding:
    """One pinned Python binding of libzstd (pyproject.toml says which and
    why).  Each compresses a page into one frame as lib/zstd's
    zstd_compress_cctx does: every compression parameter set explicitly from
    a row of zstd_get_params(), the content size written, no checksum, and
    the page's size pledged, so the library fits the row to 4096 bytes."""

    def __init__(self, package, libzstd, installed, compressor, batch=None):
        self.package = package          # the pinned distribution, for messages
        self.libzstd = libzstd          # the libzstd release it bundles
        self._installed = installed     # the release the installed module reports
        self._compressor = compressor   # row -> compress(page) -> bytes
        self._batch = batch             # row -> batch(pages), or None

    def compressor(self, row):
        if self._installed != self.libzstd:
            raise ConfigError(f"{self.package} should bundle libzstd {self.libzstd}, but the "
                              f"installed one has {self._installed}: reinstall zswapsim "
                              "(pip install -e .) for its pinned zstd bindings")
        return self._compressor(row)

    def batch(self, row):
        """A batch compressor for the trace reader's helper thread: the
        binding's own multi-page call, or the pages split between
        BATCH_THREADS threads, each with a context of its own (these
        bindings release the GIL while compressing)."""
        if self._batch is not None:
            return self._batch(row)
        contexts = [self.compressor(row) for _ in range(BATCH_THREADS)]
        threads = ThreadPoolExecutor(BATCH_THREADS)

        def compress_all(pages):
            shares = [pages[i::BATCH_THREADS] for i in range(BATCH_THREADS)]
            done = list(threads.map(_compress_each, contexts, shares))
            return [done[i % BATCH_THREADS][i // BATCH_THREADS] for i in range(len(pages))]
        return compress_all


# Two threads compress a batch: at high levels compression is nearly all the
# work and takes both cores (zstd-19 replays twice as fast); at level 3 it is
# a wash against one, the replaying thread being busy itself.
BATCH_THREADS = 2


def _compress_each(compress, pages):
    return [memoryview(compress(page)) for page in pages]


def _zstandard_compressor(row):
    params = zstandard.ZstdCompressionParameters(write_content_size=True, write_checksum=False,
                                                 **row)
    return zstandard.ZstdCompressor(compression_params=params)


def _zstandard_batch(row):
    cctx = _zstandard_compressor(row)
    return lambda pages: cctx.multi_compress_to_buffer(pages, threads=BATCH_THREADS)


def _pyzstd_compressor(row):
    option = {getattr(pyzstd.CParameter, _camel_case(field)): value
              for field, value in row.items()}
    option.update({pyzstd.CParameter.contentSizeFlag: 1, pyzstd.CParameter.checksumFlag: 0})
    return pyzstd.RichMemZstdCompressor(option).compress


def _camel_case(field):
    first, *rest = field.split("_")
    return first + "".join(word.title() for word in rest)


def _backports_compressor(row):
    parameter = backports_zstd.CompressionParameter
    options = {getattr(parameter, field): value for field, value in row.items()}
    options.update({parameter.content_size_flag: 1, parameter.checksum_flag: 0})
    cctx = backports_zstd.ZstdCompressor(options=options)
    return lambda page: cctx.compress(page, backports_zstd.ZstdCompressor.FLUSH_FRAME)


PYZSTD = ZstdBinding("pyzstd 0.15.0", "1.5.0", pyzstd.zstd_version, _pyzstd_compressor)
ZSTANDARD = ZstdBinding("zstandard 0.23.0", "1.5.6", ".".join(map(str, zstandard.ZSTD_VERSION)),
                        lambda row: _zstandard_compressor(row).compress, _zstandard_batch)
BACKPORTS_ZSTD = ZstdBinding("backports-zstd 1.8.0", "1.5.7", backports_zstd.zstd_version,
                             _backports_compressor)

# Per libzstd release a kernel imports, the binding whose libzstd compresses
# a page to the same bytes: 1.4.10 (6.1's) is matched by any release 1.4.8
# to 1.5.0 (KERNEL-COMPRESSORS.md 4.3), and 1.5.2 by 1.5.6 (python-zstandard
# 0.19.0's 1.5.2 against 0.23.0's 1.5.6: all 12,000 pages of ../shared/fidelity
# identical, with either row crypto/zstd.c and zram ask for).  The output
# changed in 1.5.1 and again in 1.5.7.
ZSTD_LIBRARIES = {"1.4.10": PYZSTD, "1.5.2": ZSTANDARD, "1.5.6": ZSTANDARD,
                  "1.5.7": BACKPORTS_ZSTD}

ZSTD_DEF_LEVEL = 3
ZCOMP_DST_SIZE = 2 * PAGE_SIZE     # zram's zcomp_compress: dst_len of the 2-page buffer
DEFAULT_KERNEL = {"zswap": DEFAULT_ZSWAP_KERNEL, "zram": DEFAULT_ZRAM_KERNEL}

_ROW_FIELDS = ("window_log", "chain_log", "hash_log", "search_log", "min_match",
               "target_length", "strategy")


def zstd_row(level, estimated_size):
    """The compression parameters zstd_get_params(level, estimated_size)
    gives: libzstd's table row for the level and size (0: unknown), as
    ZSTD_getCParams picks it.  1.5.2, 1.5.6 and 1.5.7 have the same rows
    for every level at sizes 0 and 256 KiB; 6.1 asks only for level 3."""
    params = zstandard.ZstdCompressionParameters.from_level(level, source_size=estimated_size)
    return {field: getattr(params, field) for field in _ROW_FIELDS}


class Zstd(Compressor):
    """zstd at `level` from the parameters zstd_get_params(level,
    estimated_size) starts from, by libzstd `release` (in ZSTD_LIBRARIES).
    The defaults are this simulator's zstd before kernels had their own.
    Any release decodes any frame: one decompression context serves all,
    python-zstandard's, which keeps its context across calls."""

    name = "zstd"
    PARAMS = ("level", "estimated_size", "release")

    def __init__(self, level=ZSTD_DEF_LEVEL, estimated_size=0, release="1.5.7"):
        self.level = level
        self.estimated_size = estimated_size
        self.release = release
        self.library = ZSTD_LIBRARIES[release]
        self._row = zstd_row(level, estimated_size)
        self._compress = self.library.compressor(self._row)
        self._dctx = zstandard.ZstdDecompressor()

    def compress(self, page):
        return self._compress(page)

    def batch_compressor(self):
        return self.library.batch(self._row)

    def decompress(self, data, size=PAGE_SIZE):
        return self._dctx.decompress(data, max_output_size=size)


def kernel_zstd(kernel, user, level=None):
    """The zstd of Linux `kernel` as `user` (zswap or zram) calls it: the
    row zstd_get_params(level, size) gives for that caller's size, from the
    kernel's libzstd.  `level` None is the default 3; the crypto API's zstd
    (zswap, and zram before its own backends) is always 3, so another level
    there is a what-if (compressor_what_if)."""
    if user not in DEFAULT_KERNEL:
        raise ConfigError(f"unknown zstd user '{user}'; known: {', '.join(DEFAULT_KERNEL)}")
    if kernel not in KERNEL_ZSTD:
        raise ConfigError(f"no zstd for Linux {kernel}: known {', '.join(KERNEL_ZSTD)}")
    release, crypto_size, zram_size = KERNEL_ZSTD[kernel]
    size = zram_size if user == "zram" and zram_size is not None else crypto_size
    return Zstd(level or ZSTD_DEF_LEVEL, size, release)


def _crypto_zstd(kernel, user):
    """Whether `user` under `kernel` reaches zstd through crypto/zstd.c."""
    return user == "zswap" or KERNEL_ZSTD[kernel][2] is None


class Deflate(Compressor):
    """zlib at `level` (-1: Z_DEFAULT_COMPRESSION, zlib's 6) with window
    bits `wbits` (negative: a raw stream) and memLevel 8."""

    name = "deflate"
    PARAMS = ("level", "wbits")
    WBITS = -11

    def __init__(self, level=6, wbits=WBITS):
        self.level, self.wbits = level, wbits

    def compress(self, page):
        stream = zlib.compressobj(self.level, zlib.DEFLATED, self.wbits, 8)
        return stream.compress(page) + stream.flush()

    def decompress(self, data, size=PAGE_SIZE):
        return zlib.decompress(data, self.wbits, size)


class KernelCompressor(Compressor):
    """One of the kernel's own compressors, compiled (zswapsim/_kcompress):
    the bytes Linux 6.1-6.18 produce, page for page, for a destination of
    `dlen` bytes, the size the caller's kernel path gives (zswap 4096, the
    default; zram 8192).  Where the kernel says the output did not fit,
    compress() gives `dlen + 1` zero bytes, so every caller's "too big"
    test fires as the kernel's does; such bytes never decompress."""

    PARAMS = ("dlen",)

    def __init__(self, dlen=PAGE_SIZE):
        self.dlen = dlen

    def compress(self, page):
        data = self._compress(page, self.dlen)
        return bytes(self.dlen + 1) if data is None else data


class KernelLz4(KernelCompressor):
    """lib/lz4's LZ4_compress_fast at `acceleration` (1: LZ4_compress_default,
    what crypto/lz4.c calls; zram's backend_lz4.c passes its level from
    6.12): limited mode below the bound (n + n/255 + 16 = 4128 for a page),
    so dlen 4096 fails where zswap's does."""

    name = "lz4"
    PARAMS = ("dlen", "acceleration")

    def __init__(self, dlen=PAGE_SIZE, acceleration=1):
        super().__init__(dlen)
        self.acceleration = acceleration

    def _compress(self, page, dlen):
        return _kcompress.lz4_compress(page, dlen, self.acceleration)

    def decompress(self, data, size=PAGE_SIZE):
        return _kcompress.lz4_decompress(data, size)


class KernelLz4hc(KernelLz4):
    """lib/lz4's LZ4_compress_HC at `level` (1-16; the kernel's default 9)."""

    name = "lz4hc"
    PARAMS = ("dlen", "level")

    def __init__(self, level=9, dlen=PAGE_SIZE):
        KernelCompressor.__init__(self, dlen)
        self.level = level

    def _compress(self, page, dlen):
        return _kcompress.lz4hc_compress(page, dlen, self.level)


class Lzo(KernelCompressor):
    """lib/lzo's lzo1x_1_compress_safe: zswap's Kconfig default."""

    name = "lzo"
    _compress = staticmethod(_kcompress.lzo_compress)

    def decompress(self, data, size=PAGE_SIZE):
        return _kcompress.lzo_decompress(data, size)


class LzoRle(Lzo):
    """lib/lzo's lzorle1x_1_compress_safe: zram's Kconfig default."""

    name = "lzo-rle"
    _compress = staticmethod(_kcompress.lzorle_compress)


class Sw842(KernelCompressor):
    """lib/842's sw842_compress (no kernel run holds 842 sizes: its lengths
    are checked against the fact sheet's reference build of lib/842)."""

    name = "842"
    _compress = staticmethod(_kcompress.sw842_compress)

    def decompress(self, data, size=PAGE_SIZE):
        return _kcompress.sw842_decompress(data, size)


_ZSTD_LEVELS = range(1, 23)
_LZ4HC_LEVELS = range(1, 17)
UPSTREAM = "-upstream"


def known_compressors():
    """Names accepted by `get_compressor`, in the order users see them."""
    return ["lz4", "lz4hc", "lz4hc-N (N = 1..16)", "lzo", "lzo-rle", "zstd",
            "zstd-N (N = 1..22)", "deflate", "842", "lz4-upstream", "lz4hc-upstream",
            "zstd-upstream", "zstd-upstream-N"]


def get_compressor(name, kernel=None, user="zswap", dst_size=None):
    """The compressor `name` as Linux `kernel` (a profile name or profile;
    None: the default kernel of `user`) runs it for `user`, zswap or zram:
    - lz4, lz4hc[-N], lzo, lzo-rle, 842: the kernel's own, compiled, into
      a destination of `dst_size` bytes (None: the caller's, zswap's
      profile compress_dst_size or zram's 2 * PAGE_SIZE), so "did not fit"
      falls where the kernel's does;
    - zstd[-N]: the kernel's lib/zstd as `user` calls it (kernel_zstd);
    - deflate: crypto/deflate.c's zlib stream;
    - lz4-upstream, lz4hc-upstream, zstd-upstream[-N]: the userspace
      libraries (python-lz4's liblz4, libzstd 1.5.7 for an unknown source
      size), what-ifs no kernel runs (compressor_what_if says so).
    A compressor the kernel lacks is a ConfigError naming the release that
    brought it (the profile's compressor_limits)."""
    if user not in DEFAULT_KERNEL:
        raise ConfigError(f"unknown compressor user '{user}'; known: {', '.join(DEFAULT_KERNEL)}")
    if name.startswith("zstd-upstream"):
        level = _level(name, "zstd-upstream", _ZSTD_LEVELS) or ZSTD_DEF_LEVEL
        return _named(name, Zstd(level, release=BACKPORTS_ZSTD.libzstd))
    if name == "lz4-upstream":
        return Lz4()
    if name == "lz4hc-upstream":
        return Lz4hc()
    profile = kernel_profile(user, kernel if kernel is not None else DEFAULT_KERNEL[user])
    if dst_size is None:
        dst_size = profile.compress_dst_size if user == "zswap" else ZCOMP_DST_SIZE
    if name == "zstd" or name.startswith("zstd-"):
        profile.check_compressor("zstd")
        return _named(name, kernel_zstd(profile.name, user, _level(name, "zstd", _ZSTD_LEVELS)))
    if name == "lz4hc" or name.startswith("lz4hc-"):
        profile.check_compressor("lz4hc")
        return _named(name, KernelLz4hc(_level(name, "lz4hc", _LZ4HC_LEVELS) or 9, dst_size))
    kernel_own = {"lz4": KernelLz4, "lzo": Lzo, "lzo-rle": LzoRle, "842": Sw842}
    if name in kernel_own:
        profile.check_compressor(name)
        return kernel_own[name](dst_size)
    if name == "deflate":
        return Deflate()
    raise _unknown(name)


def compressor_what_if(name, kernel=None, user="zswap"):
    """Why compressor `name` under `kernel` for `user` is not what the kernel
    ran, or None when it is (or comes as close as zswapsim has)."""
    if not isinstance(name, str):
        return None
    if name.endswith(UPSTREAM) or name.startswith("zstd-upstream"):
        library = "libzstd " + BACKPORTS_ZSTD.libzstd if name.startswith("zstd") \
            else "liblz4 " + lz4.library_version_string()
        return f"{name} is userspace {library}, not a kernel's compressor"
    profile = kernel_profile(user, kernel if kernel is not None else DEFAULT_KERNEL[user])
    level = _level(name, "zstd", _ZSTD_LEVELS) if name.startswith("zstd-") else None
    if level not in (None, ZSTD_DEF_LEVEL) and _crypto_zstd(profile.name, user):
        return (f"Linux {profile.name}'s {user} zstd is always level {ZSTD_DEF_LEVEL} "
                f"(crypto/zstd.c): level {level} is a what-if")
    return profile.compressor_note(name.partition("-")[0] if name.startswith("lz4hc-")
                                   else name)


def _named(name, compressor):
    compressor.name = name
    return compressor


def _level(name, stem, levels):
    """None for `stem` itself, N for "stem-N" with N in `levels`."""
    if name == stem:
        return None
    level = _ascii_number(name[len(stem) + 1:]) if name.startswith(stem + "-") else None
    if level in levels:
        return level
    raise _unknown(name)


def _ascii_number(text):
    """The number ASCII digits `text` spell, else None (int() would also
    read other scripts' digits, such as "٣")."""
    return int(text) if text.isascii() and text.isdigit() else None


def _unknown(name):
    return ConfigError(f"unknown compressor '{name}'; known: {', '.join(known_compressors())}")


def page_key(page):
    """A page's identity by content: its 128-bit XXH3 digest (a fortieth of
    BLAKE2b's cost on a 4 KiB page; no adversary picks these pages)."""
    return xxh3_128_digest(page)


class CompressionCache:
    """Compress each distinct page image once: results keyed by page_key,
    kept in LRU order within a byte budget.  The budget bounds what a long
    replay holds beyond its simulated memory; lanes fed the same page hit
    at once, and a result evicted costs at most a second compression (or,
    in the end-of-run check, a decompression).

    Where the compressor has a batch call (`batch`), the trace reader's
    helper thread compresses each block's new images with it while the
    replayer works through the block before; the replayer hands a page's
    result to compress() as `ahead`, which a miss takes instead of
    compressing on the spot."""

    def __init__(self, compressor, budget_bytes=64 << 20):
        self.compressor = compressor
        self.name = compressor.name
        self.budget_bytes = budget_bytes
        self.cached_bytes = 0
        self.hits = 0
        self.misses = 0
        self.batch = compressor.batch_compressor()
        self._results = OrderedDict()

    def compress(self, page, key=None, ahead=None):
        """The page's compressed bytes; `key` is its page_key when the
        caller knows it, `ahead` its compression made ahead (a buffer)."""
        if key is None:
            key = page_key(page)
        results = self._results
        data = results.get(key)
        if data is not None:
            results.move_to_end(key)
            self.hits += 1
            return data
        self.misses += 1
        data = ahead.tobytes() if ahead is not None else self.compressor.compress(page)
        results[key] = data
        self.cached_bytes += len(data) + len(key)
        while self.cached_bytes > self.budget_bytes:
            old_key, old = results.popitem(last=False)
            self.cached_bytes -= len(old) + len(old_key)
        return data

    def cached(self, key):
        """The compressed form of the page with this key, if still cached."""
        return self._results.get(key)

    def decompress(self, data, size=PAGE_SIZE):
        return self.compressor.decompress(data, size)


def native_codec(compressor):
    """(algorithm, dlen, level) of a compressor that is one of _kcompress's
    as compress.py calls it, for the compiled cache to call in C; None for
    any other compressor (subclasses included: they may compress otherwise)."""
    kind = type(compressor)
    if kind is KernelLz4:
        return ("lz4", compressor.dlen, compressor.acceleration)
    if kind is KernelLz4hc:
        return ("lz4hc", compressor.dlen, compressor.level)
    if kind in (Lzo, LzoRle, Sw842):
        return (compressor.name, compressor.dlen, 0)
    return None


class NativeCompressionCache(_engine.CompressionCache):
    """CompressionCache's compiled twin (zswapsim/_engine/compression_cache.c):
    the same results, hits, misses and budget, with the kernel's own
    compressors called in C.  The native engine's zswaps compress through
    it without a Python call per page."""

    def __init__(self, compressor, budget_bytes=64 << 20):
        super().__init__(compressor, budget_bytes, page_key, native_codec(compressor))
        self.name = compressor.name
        self.batch = compressor.batch_compressor()
