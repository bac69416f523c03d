"""Fixtures the test files share: zswap, zram, the allocators, or the whole
replay, in either engine."""

import pytest

from zswapsim.engine import ENGINE_VARIABLE, ENGINES
from zswapsim.zram import Zram
from zswapsim.zram_native import NativeZram
from zswapsim.zswap import Zswap
from zswapsim.zswap_native import NativeZswap

ZSWAP_ENGINES = {"python": Zswap, "native": NativeZswap}
ZRAM_ENGINES = {"python": Zram, "native": NativeZram}


@pytest.fixture(params=list(ZSWAP_ENGINES))
def zswap_engine(request):
    """The Zswap class of each engine in turn: zswap.Zswap (the reference),
    then zswap_native.NativeZswap.  Both take the same config and keywords;
    a test that looks inside the Python model's state uses Zswap alone."""
    return ZSWAP_ENGINES[request.param]


@pytest.fixture(params=list(ZSWAP_ENGINES))
def replay_engine(request, monkeypatch):
    """Each engine in turn as the process's choice (ZSWAPSIM_ENGINE), so
    replay(), the sweeps and the command line run in it: the name."""
    monkeypatch.setenv(ENGINE_VARIABLE, request.param)
    return request.param


@pytest.fixture(params=list(ZRAM_ENGINES))
def zram_engine(request, monkeypatch):
    """The Zram class of each engine in turn, zram.Zram (the reference) then
    zram_native.NativeZram, with that engine the process's choice too, so
    the command line and fidelity.py build their devices in it."""
    monkeypatch.setenv(ENGINE_VARIABLE, request.param)
    return ZRAM_ENGINES[request.param]


@pytest.fixture(params=ENGINES)
def pool_engine(request):
    """Each allocator engine in turn, for create_pool(..., engine=): a test
    that looks inside the Python model's state uses "python" alone."""
    return request.param
