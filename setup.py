"""Builds zswapsim._kcompress, the kernel's compressors in C.

setuptools already builds this package, and one small extension of plain C
files needs nothing more: ext_modules here keeps `pip install -e '.[test]'`
the whole set-up, with no second build system (meson-python or
scikit-build-core would add one for five files).  Warnings are errors so a
compiler complaint cannot slip by.  The C code reads words in host byte order
as little-endian, as the x86_64 kernel whose bytes it reproduces.
"""

import sys

from setuptools import Extension, setup

if sys.byteorder != "little":
    raise SystemExit("zswapsim._kcompress needs a little-endian host")

SOURCES = ["module.c", "lz4.c", "lz4hc.c", "lzo.c", "842.c"]

setup(ext_modules=[Extension(
    "zswapsim._kcompress",
    sources=[f"zswapsim/_kcompress/{name}" for name in SOURCES],
    depends=["zswapsim/_kcompress/kcompress.h"],
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"],
)])
