"""Injected faults: page-frame allocations, swap-device writes and evict
calls fail at a seeded rate, and the swap device can fill.  Under every
mix a verified replay loses nothing, and each injected fault shows up in
exactly the counter the kernel's path would bump."""

from pathlib import Path

import pytest

from zswapsim.errors import ConfigError
from zswapsim.faults import FaultPlan
from zswapsim.replay import TIMING_FIELDS, replay

TRACE = Path(__file__).resolve().parents[1] / "traces" / "swapcache-churn.trace"
RAM = 4096          # 16M: the pool limit bites, so reclaim and writeback run


def run(backend, kernel="6.1", swap_capacity=None, **rates):
    return replay(TRACE, backend=backend, ram_pages=RAM, kernel=kernel, verify=True,
                  swap_capacity=swap_capacity, faults=dict(seed=7, **rates) if rates else None)


@pytest.mark.parametrize("backend", ["zbud", "zsmalloc"])
@pytest.mark.parametrize("kernel", ["6.1", "3.11"])
def test_allocation_failures_are_rejects_or_writeback_enomem(backend, kernel):
    result = run(backend, kernel, alloc=0.02)
    # Each failed frame is either a pool allocation (reject_alloc_fail) or
    # writeback's swap-cache page (-ENOMEM from the evict callback).
    assert result["injected_alloc"] > 20
    assert result["injected_alloc"] == result["reject_alloc_fail"] + result["evict_enomem"]


@pytest.mark.parametrize("backend", ["zbud", "z3fold", "zsmalloc", "xvmalloc"])
def test_swap_write_failures_leave_pages_in_ram_or_in_the_pool(backend):
    result = run(backend, swap_write=0.2)
    # A refused page that cannot be written stays in RAM; a failed writeback
    # leaves the entry in the pool with -EIO.
    assert result["injected_swap_write"] > 20
    assert result["injected_swap_write"] == result["swap_write_errors"] + result["evict_eio"]
    assert result["resident_pages"] > 0


@pytest.mark.parametrize("backend", ["zbud", "z3fold", "xvmalloc"])
def test_evict_failures_are_counted_as_eio(backend):
    result = run(backend, evict=0.3)
    assert result["injected_evict"] > 20 and result["injected_evict"] == result["evict_eio"]
    baseline = run(backend)
    assert result["reject_reclaim_fail"] >= baseline["reject_reclaim_fail"]


def test_a_full_swap_device_keeps_pages_in_ram():
    result = run("zbud", swap_capacity=1000)
    assert result["swap_full"] > 0 and result["resident_pages"] > 0
    assert result["stored_pages"] + result["swap_used_slots"] <= 1000


@pytest.mark.parametrize("backend", ["zbud", "z3fold", "zsmalloc", "xvmalloc"])
def test_every_fault_at_once(backend):
    # 6.3, so zsmalloc has an evict op too.
    result = run(backend, "6.3", swap_capacity=2150, alloc=0.02, swap_write=0.05, evict=0.1)
    assert min(result["injected_alloc"], result["injected_swap_write"],
               result["injected_evict"]) > 0
    # replay() verified every load and the conservation of every live page.
    assert result["verified"] and result["live_pages"] == \
        result["stored_pages"] + result["swap_used_slots"] + result["resident_pages"]


def test_same_seed_same_faults():
    first, second = run("zbud", alloc=0.05, evict=0.1), run("zbud", alloc=0.05, evict=0.1)
    for result in (first, second):
        for field in TIMING_FIELDS:
            result.pop(field)
    assert first == second


def test_rates_outside_0_1_are_refused():
    with pytest.raises(ConfigError):
        FaultPlan(alloc=1.5)
