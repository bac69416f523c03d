"""Fixtures the test files share: zswap, or the whole replay, in either engine."""

import pytest

from zswapsim.engine import ENGINE_VARIABLE
from zswapsim.zswap import Zswap
from zswapsim.zswap_native import NativeZswap

ZSWAP_ENGINES = {"python": Zswap, "native": NativeZswap}


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
