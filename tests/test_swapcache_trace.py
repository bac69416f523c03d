"""The shipped swap-cache trace: its script rebuilds it event for event, and it
does what it is shipped for, making reclaim fail on -EEXIST so that a small
`retries` fails where a larger one gets past the pages held in the swap cache."""

import importlib.util
from itertools import zip_longest
from pathlib import Path

import pytest

from zswapsim.replay import replay
from zswapsim.trace import TraceReader

TRACES = Path(__file__).resolve().parents[1] / "traces"
SHIPPED = TRACES / "swapcache-churn.trace"
RAM_PAGES = 4096                                  # --ram 16M


def load_script():
    spec = importlib.util.spec_from_file_location(
        "make_swapcache_trace", TRACES / "make_swapcache_trace.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_rebuilds_the_shipped_trace(tmp_path):
    # Events and page images, not file bytes: another zstandard release may
    # compress the same blocks differently.
    out = load_script().build(tmp_path / "swapcache-churn.trace")
    rebuilt, shipped = TraceReader(out), TraceReader(SHIPPED)
    assert rebuilt.description == shipped.description
    assert all(a == b for a, b in zip_longest(rebuilt, shipped))


@pytest.mark.parametrize("backend", ["zbud", "z3fold"])
@pytest.mark.parametrize("kernel", ["6.1", "3.11"])
def test_more_retries_get_past_the_swap_cache(kernel, backend):
    few, many = (replay(SHIPPED, backend=backend, ram_pages=RAM_PAGES, retries=retries,
                        kernel=kernel) for retries in (1, 32))
    assert few["evict_eexist"] > 0 and many["evict_eexist"] > 0
    assert few["reject_reclaim_fail"] > 0
    assert many["reject_reclaim_fail"] < few["reject_reclaim_fail"]
