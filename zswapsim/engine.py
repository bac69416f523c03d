"""Which engine runs zswap: the Python models (zswap.py and zpool/*.py, the
readable reference) or their compiled twins in zswapsim/_engine
(zswap_native.py, zpool/native.py), which must give the same results call
for call, as heapq and _heapq do.

One choice per call (`engine=` of replay, replay_lanes and the sweeps),
`zswapsim --engine` on the command line, or ZSWAPSIM_ENGINE for the
process and the workers it starts.  The default is the native engine, now
that every allocator has its compiled twin; the allocators reached one call
at a time (create_pool) default to the Python models, whose internals their
tests and notebooks read.  zram has its compiled twin too (zram_native.py),
without a backing device or recompression so far: a run that asks for
either gets the Python Zram under both engines (zram_class).  A native
build that is missing is an ImportError at import time
(zswapsim/__init__.py), never a fall-back.
"""

import os

from .errors import ConfigError

ENGINES = ("native", "python")
DEFAULT_ENGINE = "native"
ENGINE_VARIABLE = "ZSWAPSIM_ENGINE"


def check_engine(name, source="engine"):
    if name not in ENGINES:
        raise ConfigError(f"unknown {source} '{name}'; known: {', '.join(ENGINES)}")
    return name


def chosen_engine(engine=None):
    """`engine` if given, else ZSWAPSIM_ENGINE's, else the default; checked."""
    if engine is not None:
        return check_engine(engine)
    value = os.environ.get(ENGINE_VARIABLE)
    if value:
        return check_engine(value, ENGINE_VARIABLE)
    return DEFAULT_ENGINE


def zswap_class(engine=None):
    """The Zswap class of `engine` (chosen_engine's rules)."""
    if chosen_engine(engine) == "native":
        from .zswap_native import NativeZswap
        return NativeZswap
    from .zswap import Zswap
    return Zswap


def zram_class(engine=None, writeback=False, recompression=False):
    """The Zram class of `engine` (chosen_engine's rules), but zram.Zram in
    either engine for a device that needs a backing device (`writeback`:
    writeback, its limit) or `recompression`, which only it has yet."""
    if chosen_engine(engine) == "native" and not (writeback or recompression):
        from .zram_native import NativeZram
        return NativeZram
    from .zram import Zram
    return Zram


def describe(engine=None):
    """One line for --version: the engine in use and what the native one covers."""
    from .zpool.base import known_pools
    pools = ", ".join(known_pools("native"))
    return (f"engine: {chosen_engine(engine)} (native: zswap over {pools}; zram: native "
            f"over {pools}, its writeback and recompression python)")
