"""zswapsim: replay recorded page workloads through models of Linux compressed swap.

The Python API beside the command line: compare() allocators x compressors
and tune_retries() return the records the matching commands print
(recommend() turns the latter into advice); zswapsim.replay.replay() runs
one configuration.  Each takes its settings as a ZswapConfig or as keywords
(backend="zsmalloc", ram="32M", max_pool_percent=20, ...), defaulted and
checked by zswapsim.config as the command line's options are.
"""

__version__ = "0.1.0"

# zswapsim does no linear algebra, but numpy (the trace columns) loads
# OpenBLAS, which starts a thread per core that spins for a while: on a
# two-core machine that is the core the trace reader decodes on.  One
# thread, unless the user asked otherwise, before anything imports numpy.
import os as _os  # noqa: E402

_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
del _os

# The compiled parts: without a build their source folders would import as
# empty namespace packages, so say what is missing before anything uses them.
import importlib.util as _util  # noqa: E402

for _name in ("_kcompress", "_engine"):
    _spec = _util.find_spec(f"{__name__}.{_name}")
    if _spec is None or _spec.origin in (None, "namespace"):
        raise ImportError(f"zswapsim.{_name} is not built: install with pip install -e . "
                          "(or python setup.py build_ext --inplace in a checkout)")
del _name, _spec, _util

from .config import ZswapConfig  # noqa: E402
from .sweep import compare, recommend, tune_retries  # noqa: E402

__all__ = ["ZswapConfig", "compare", "tune_retries", "recommend"]
