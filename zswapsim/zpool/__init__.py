"""Allocator models behind one contract; `create_pool(name, ...)` picks one."""

from .base import Zpool, create_pool, known_pools
from . import zbud  # noqa: F401  (registers the driver)

__all__ = ["Zpool", "create_pool", "known_pools"]
