"""Fixtures the test files share: zswap and the allocators in either engine."""

import pytest

from zswapsim.engine import ENGINES
from zswapsim.zswap import Zswap
from zswapsim.zswap_native import NativeZswap

ZSWAP_ENGINES = {"python": Zswap, "native": NativeZswap}


@pytest.fixture(params=list(ZSWAP_ENGINES))
def zswap_engine(request):
    """The Zswap class of each engine in turn: zswap.Zswap (the reference),
    then zswap_native.NativeZswap.  Both take the same config and keywords;
    a test that looks inside the Python model's state uses Zswap alone."""
    return ZSWAP_ENGINES[request.param]


@pytest.fixture(params=ENGINES)
def pool_engine(request):
    """Each allocator engine in turn, for create_pool(..., engine=): a test
    that looks inside the Python model's state uses "python" alone."""
    return request.param
