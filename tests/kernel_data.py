"""The fidelity page sets and what real kernels reported for them, for the
tests that hold the models against the kernel: the copy the repository
ships in fidelity/, or the folder $ZSWAPSIM_FIDELITY names (CI points it at
../shared/fidelity when that is there, which may hold newer data)."""

import os
from pathlib import Path

import pytest

from zswapsim.fidelity import find_sets, load_set as read_set

SHIPPED = Path(__file__).resolve().parents[1] / "fidelity"
FIDELITY = Path(os.environ.get("ZSWAPSIM_FIDELITY") or SHIPPED)
SETS = ["mix2000", "mix10000"]


def set_path(name):
    """The JSON (.kernel.json or .kernel.json.zst) of set `name`, such as
    "mix2000" or "linux-6.12/mix2000"; a missing set fails the test rather
    than skipping it."""
    if not FIDELITY.is_dir():
        pytest.fail(f"{FIDELITY} is missing (ZSWAPSIM_FIDELITY, or the shipped fidelity/)")
    sets = find_sets(FIDELITY)
    if name not in sets:
        pytest.fail(f"{FIDELITY} has no set {name}; it has {', '.join(sets)}")
    return sets[name]


def load_set(name):
    """(kernel counters, list of page images) of set `name`."""
    return read_set(set_path(name))
