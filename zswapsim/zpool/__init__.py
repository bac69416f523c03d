"""Allocator models behind one contract; `create_pool(name, ..., engine=...)`
picks one, in the Python reference or its compiled twin."""

from .base import Zpool, create_pool, known_pools
from . import xvmalloc, z3fold, zbud, zcache_zbud, zsmalloc  # noqa: F401  (register the drivers)
from . import native  # noqa: F401  (the compiled twins: a broken build fails here)

__all__ = ["Zpool", "create_pool", "known_pools"]
