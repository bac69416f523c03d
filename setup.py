"""Builds zswapsim's two C extensions: _kcompress, the kernel's compressors,
and _engine, the compiled twins of the allocator models.

setuptools already builds this package, and two small extensions of plain C
files need nothing more: ext_modules here keeps `pip install -e '.[test]'`
the whole set-up, with no second build system (meson-python or
scikit-build-core would add one for a dozen files).  Warnings are errors so a
compiler complaint cannot slip by.  The C code reads words in host byte order
as little-endian, as the x86_64 kernel whose bytes it reproduces.
"""

import sys

from setuptools import Extension, setup

if sys.byteorder != "little":
    raise SystemExit("zswapsim's C extensions need a little-endian host")

FLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]
KCOMPRESS = ["module.c", "lz4.c", "lz4hc.c", "lzo.c", "842.c"]
# tests/sanitize.py builds these same files under the sanitizers.
ENGINE = ["module.c", "zpool.c", "zbud.c", "zsmalloc.c", "z3fold.c", "xvmalloc.c",
          "zcache_zbud.c", "zswap.c", "memory.c", "swapdev.c", "faults.c", "zswap_module.c",
          "replay.c", "compression_cache.c", "zram.c", "zram_module.c"]
ENGINE_HEADERS = ["engine.h", "zbud.h", "zsmalloc.h", "z3fold.h", "xvmalloc.h", "zcache_zbud.h",
                  "zswap.h", "memory.h", "swapdev.h", "faults.h", "zswap_module.h",
                  "compression_cache.h", "zram.h", "../_kcompress/kcompress.h"]

setup(ext_modules=[
    Extension(
        "zswapsim._kcompress",
        sources=[f"zswapsim/_kcompress/{name}" for name in KCOMPRESS],
        depends=["zswapsim/_kcompress/kcompress.h"],
        extra_compile_args=FLAGS,
    ),
    Extension(
        "zswapsim._engine",
        sources=[f"zswapsim/_engine/{name}" for name in ENGINE],
        depends=[f"zswapsim/_engine/{name}" for name in ENGINE_HEADERS],
        extra_compile_args=FLAGS,
    ),
])
