"""Which engine runs zswap: the Python models (zswap.py and zpool/*.py, the
readable reference) or their compiled twins in zswapsim/_engine
(zswap_native.py, zpool/native.py), which must give the same results call
for call, as heapq and _heapq do.

One choice per call (`engine=` of replay, replay_lanes and the sweeps),
`zswapsim --engine` on the command line, or ZSWAPSIM_ENGINE for the
process and the workers it starts.  The default is the Python engine until
every allocator has its compiled twin (compare's default backends include
z3fold).  zram runs the Python models under either engine;
its compiled twin is still to come.  A native build that is missing is an
ImportError at import time (zswapsim/__init__.py), never a fall-back.
"""

import os

from .errors import ConfigError

ENGINES = ("native", "python")
DEFAULT_ENGINE = "python"
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


def describe(engine=None):
    """One line for --version: the engine in use and what the native one covers."""
    from .zpool.base import known_pools
    return (f"engine: {chosen_engine(engine)} (native: zswap over "
            f"{', '.join(known_pools('native'))}; zram: python)")
