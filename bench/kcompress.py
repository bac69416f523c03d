"""Our compiled kernel compressors against the reference libraries, per page,
side by side on the same pages (a page set of the shipped fidelity/ folder).

1. The issue's speed targets, in C (bench/kcompress_race.c, built here at
   bench time with our lz4.c and lzo.c under setup.py's flags and linked
   to Debian's liblz4 and liblzo2): our lz4 compress / liblz4's
   LZ4_compress_default and our lzo compress / liblzo2's lzo1x_1_compress,
   each <= 1.2; the two decompressors beside them, with no target.  Both
   sides run in one process over the same pages, a full pass of each in
   turn, --c-rounds times: the best pass of each, and the median of the
   rounds' ratios (the two passes of a round close in time, so it is the
   steadier figure on a shared machine, and the one held to the target).
   Algorithm against algorithm, with no binding in between.  (python-lzo would put its own call
   overhead, a header and a copy on the reference side only, and no
   binding's call matches ours; the C race needs none of them.)
2. The same per Python call, what a replay pays: our _kcompress lz4 and
   lz4hc against python-lz4's lz4.block.compress (the simulator's "lz4"
   and "lz4hc"), best of --rounds.  Only a stand-in for the issue's
   reference: python-lz4 does not call LZ4_compress_default but resets a
   stream state and calls LZ4_compress_fast_continue (lz4/block/_block.c),
   into a compressBound buffer it then copies to bytes, with the GIL
   released, each call.  Then our lzo, lzo-rle and 842 alone, and each
   kernel's zstd (compress.kernel_zstd, for zswap and zram) beside the
   default "zstd".

Destination 8192 bytes throughout (zram's, the unlimited mode).  Every
pass is timed in this thread's CPU time, which a process preempting it on
a shared core does not inflate.

    python bench/kcompress.py [--set mix2000] [--fidelity DIR]
    (needs gcc and: apt-get install liblz4-dev liblzo2-dev)
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lz4.block

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zswapsim import _kcompress  # noqa: E402
from zswapsim.compress import DEFAULT_KERNEL, get_compressor, kernel_zstd  # noqa: E402
from zswapsim.fidelity import find_sets, load_set  # noqa: E402

FIDELITY = ROOT / "fidelity"
SOURCES = ROOT / "zswapsim" / "_kcompress"
RACE = Path(__file__).with_name("kcompress_race.c")
C_FLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]     # setup.py's
TARGET = 1.2
DLEN = 8192
ZSTD_KERNELS = ("6.1", "6.12", "6.18")    # the kernels fidelity/ has zstd runs of


def per_page(compress, pages):
    """One pass over the pages, in microseconds of this thread's CPU time
    per page (as zswapsim.cpu_cost times them)."""
    start = time.thread_time()
    for page in pages:
        compress(page)
    return (time.thread_time() - start) / len(pages) * 1e6


def c_race(pages, rounds):
    """{race: (ours, theirs: best ns per page, median ratio of the rounds)}
    and the libraries' versions line, from kcompress_race built and run in
    a scratch folder."""
    with tempfile.TemporaryDirectory(prefix="kcompress-race-") as scratch:
        binary, pages_file = Path(scratch) / "race", Path(scratch) / "pages.raw"
        build = subprocess.run(
            [os.environ.get("CC", "gcc"), *C_FLAGS, f"-I{SOURCES}", str(RACE),
             str(SOURCES / "lz4.c"), str(SOURCES / "lzo.c"), "-llz4", "-llzo2",
             "-o", str(binary)], capture_output=True, text=True)
        if build.returncode:
            sys.exit(f"{build.stderr}kcompress.py: cannot build {RACE.name}: it needs gcc, "
                     "liblz4-dev and liblzo2-dev (apt-get install liblz4-dev liblzo2-dev)")
        pages_file.write_bytes(b"".join(pages))
        run = subprocess.run([str(binary), str(pages_file), str(rounds)],
                             capture_output=True, text=True)
        if run.returncode:
            sys.exit(f"kcompress.py: {RACE.name} failed: {run.stderr.strip()}")
    versions, *lines = run.stdout.splitlines()
    races = {}
    for line in lines:
        name, *figures = line.split()
        races[name] = tuple(map(float, figures))
    return races, versions


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="mix2000", help="page set in the fidelity folder")
    parser.add_argument("--fidelity", type=Path, default=FIDELITY,
                        help="the fidelity folder (default: the shipped fidelity/)")
    parser.add_argument("--rounds", type=int, default=5, help="passes of each Python side")
    parser.add_argument("--c-rounds", type=int, default=30, help="passes of each C side")
    args = parser.parse_args()
    sets = find_sets(args.fidelity)
    if args.set not in sets:
        sys.exit(f"kcompress.py: {args.fidelity} has no set {args.set}; "
                 f"it has {', '.join(sets)}")
    _, pages = load_set(sets[args.set])

    races, versions = c_race(pages, args.c_rounds)
    print(f"{args.set}: {len(pages)} pages of {args.fidelity}; in C, {args.c_rounds} "
          f"rounds of a pass each side, in turn: best pass, median ratio ({versions})")
    references = {"lz4-compress": "LZ4_compress_default", "lzo-compress": "lzo1x_1_compress",
                  "lz4-decompress": "LZ4_decompress_safe",
                  "lzo-decompress": "lzo1x_decompress_safe"}
    for name, reference in references.items():
        ours, theirs, ratio = races[name]
        target = f"(target <= {TARGET})" if name.endswith("-compress") else "(no target)"
        print(f"  {name:15s} ours {ours / 1000:6.2f} us/page  {reference:22s} "
              f"{theirs / 1000:6.2f}  ratio {ratio:5.2f}  {target}")

    print(f"per Python call, best of {args.rounds}: python-lz4 with liblz4 "
          f"{lz4.library_version_string()}")
    calls = [
        ("lz4", lambda page: _kcompress.lz4_compress(page, DLEN),
         lambda page: lz4.block.compress(page, store_size=False)),
        ("lz4hc", lambda page: _kcompress.lz4hc_compress(page, DLEN, 9),
         lambda page: lz4.block.compress(page, store_size=False, mode="high_compression",
                                         compression=9)),
    ]
    for name, ours_call, theirs_call in calls:
        ours, theirs = [], []
        for _ in range(args.rounds):     # the two sides in turn, so drift moves both
            ours.append(per_page(ours_call, pages))
            theirs.append(per_page(theirs_call, pages))
        ours, theirs = min(ours), min(theirs)
        print(f"  {name:8s} ours {ours:7.2f} us/page  python-lz4 {theirs:7.2f}  "
              f"ratio {ours / theirs:5.2f}")
    for name, compress in (("lzo", lambda p: _kcompress.lzo_compress(p, DLEN)),
                           ("lzo-rle", lambda p: _kcompress.lzorle_compress(p, DLEN)),
                           ("842", lambda p: _kcompress.sw842_compress(p, DLEN))):
        best = min(per_page(compress, pages) for _ in range(args.rounds))
        print(f"  {name:8s} ours {best:7.2f} us/page")
    zstds = [("zstd", get_compressor("zstd"))] + [
        (f"zstd {kernel} {user}", kernel_zstd(kernel, user))
        for kernel in ZSTD_KERNELS for user in DEFAULT_KERNEL]
    for name, zstd in zstds:
        frames = [zstd.compress(page) for page in pages]
        compress = min(per_page(zstd.compress, pages) for _ in range(args.rounds))
        decompress = min(per_page(zstd.decompress, frames) for _ in range(args.rounds))
        print(f"  {name:15s} compress {compress:6.2f} us/page  decompress {decompress:5.2f}  "
              f"({zstd.library.package}, libzstd {zstd.library.libzstd})")


if __name__ == "__main__":
    main()
