"""Our compiled kernel lz4 against python-lz4, per page, side by side.

The kernel-exact lz4 (zswapsim._kcompress, the kernel's LZ4_compress_default
with zram's 8192-byte destination) and python-lz4's lz4.block.compress (the
reference: liblz4's streaming call the simulator's "lz4" uses today, with
the same per-call Python overhead) compress the same pages in turn, best of
5 rounds each; the ratio is ours / theirs per page, <= 1.2 the target.
lzo and lzo-rle have no installed library to race (no PyPI package holds
the kernel's 13-bit dictionary), so their own cost per page is printed.

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
from zswapsim.fidelity import load_set  # noqa: E402

FIDELITY = ROOT.parent / "shared" / "fidelity"
ROUNDS = 5
DLEN = 8192


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
    ours, theirs = [], []
    for _ in range(ROUNDS):     # the two sides in turn, so drift moves both
        ours.append(per_page(lambda page: _kcompress.lz4_compress(page, DLEN), pages))
        theirs.append(per_page(lambda page: lz4.block.compress(page, store_size=False), pages))
    ours, theirs = min(ours), min(theirs)
    print(f"{args.set}: {len(pages)} pages, best of {ROUNDS}")
    print(f"  kernel lz4 (ours)   {ours:7.2f} us/page")
    print(f"  python-lz4 {lz4.library_version_string():8s} {theirs:7.2f} us/page")
    print(f"  ratio ours/theirs   {ours / theirs:7.2f}   (target <= 1.2)")
    for name, compress in (("lz4hc", lambda p: _kcompress.lz4hc_compress(p, DLEN, 9)),
                           ("lzo", lambda p: _kcompress.lzo_compress(p, DLEN)),
                           ("lzo-rle", lambda p: _kcompress.lzorle_compress(p, DLEN))):
        best = min(per_page(compress, pages) for _ in range(ROUNDS))
        print(f"  kernel {name:8s}     {best:7.2f} us/page")


if __name__ == "__main__":
    main()
