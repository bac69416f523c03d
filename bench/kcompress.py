"""Our compiled kernel lz4 and lz4hc against python-lz4, per page, side by side.

The kernel-exact lz4 and lz4hc (zswapsim._kcompress: LZ4_compress_default
and LZ4_compress_HC level 9, zram's 8192-byte destination) and python-lz4's
lz4.block.compress (the reference: the liblz4 calls the simulator's "lz4"
and "lz4hc" make today, with the same per-call Python overhead) compress
the same pages in turn, best of 5 rounds each; the ratio is ours / theirs
per page, <= 1.2 the target.  lzo, lzo-rle and 842 have no installed
library to race (for lzo no PyPI package holds the kernel's 13-bit
dictionary), so their own cost per page is printed, and so is each
kernel's zstd (compress.kernel_zstd, for zswap and zram: the pinned binding
whose libzstd gives that kernel's bytes) beside the default "zstd", compress
and decompress.

    python bench/kcompress.py [--set mix2000]
"""

import argparse
import sys
import time
from pathlib import Path

import lz4.block

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zswapsim import _kcompress  # noqa: E402
from zswapsim.compress import ZSTD_USERS, get_compressor, kernel_zstd  # noqa: E402
from zswapsim.fidelity import load_set  # noqa: E402

FIDELITY = ROOT.parent / "shared" / "fidelity"
ROUNDS = 5
DLEN = 8192
ZSTD_KERNELS = ("6.1", "6.12", "6.18")    # the kernels ../shared/fidelity has zstd runs of


def per_page(compress, pages):
    """One pass over the pages, in microseconds per page."""
    start = time.perf_counter()
    for page in pages:
        compress(page)
    return (time.perf_counter() - start) / len(pages) * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="mix2000", help="page set in ../shared/fidelity")
    args = parser.parse_args()
    _, pages = load_set(FIDELITY / f"{args.set}.kernel.json")
    print(f"{args.set}: {len(pages)} pages, best of {ROUNDS}, python-lz4 with liblz4 "
          f"{lz4.library_version_string()}")
    races = [
        ("lz4", lambda page: _kcompress.lz4_compress(page, DLEN),
         lambda page: lz4.block.compress(page, store_size=False)),
        ("lz4hc", lambda page: _kcompress.lz4hc_compress(page, DLEN, 9),
         lambda page: lz4.block.compress(page, store_size=False, mode="high_compression",
                                         compression=9)),
    ]
    for name, ours_call, theirs_call in races:
        ours, theirs = [], []
        for _ in range(ROUNDS):     # the two sides in turn, so drift moves both
            ours.append(per_page(ours_call, pages))
            theirs.append(per_page(theirs_call, pages))
        ours, theirs = min(ours), min(theirs)
        print(f"  {name:8s} ours {ours:7.2f} us/page  python-lz4 {theirs:7.2f}  "
              f"ratio {ours / theirs:5.2f}  (target <= 1.2)")
    for name, compress in (("lzo", lambda p: _kcompress.lzo_compress(p, DLEN)),
                           ("lzo-rle", lambda p: _kcompress.lzorle_compress(p, DLEN)),
                           ("842", lambda p: _kcompress.sw842_compress(p, DLEN))):
        best = min(per_page(compress, pages) for _ in range(ROUNDS))
        print(f"  {name:8s} ours {best:7.2f} us/page")
    zstds = [("zstd", get_compressor("zstd"))] + [
        (f"zstd {kernel} {user}", kernel_zstd(kernel, user))
        for kernel in ZSTD_KERNELS for user in ZSTD_USERS]
    for name, zstd in zstds:
        frames = [zstd.compress(page) for page in pages]
        compress = min(per_page(zstd.compress, pages) for _ in range(ROUNDS))
        decompress = min(per_page(zstd.decompress, frames) for _ in range(ROUNDS))
        print(f"  {name:15s} compress {compress:6.2f} us/page  decompress {decompress:5.2f}  "
              f"({zstd.library.package}, libzstd {zstd.library.libzstd})")


if __name__ == "__main__":
    main()
