"""Allocator models behind one contract; `create_pool(name, ...)` picks one."""

from .base import Zpool, create_pool, known_pools
from . import xvmalloc, z3fold, zbud, zcache_zbud, zsmalloc  # noqa: F401  (register the drivers)

__all__ = ["Zpool", "create_pool", "known_pools"]
