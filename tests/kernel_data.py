"""The fidelity page sets in ../shared/fidelity and what Linux 6.1 reported
for them, for the tests that hold the models against the kernel."""

from pathlib import Path

import pytest

from zswapsim.fidelity import load_set as read_set

FIDELITY = Path(__file__).resolve().parents[2] / "shared" / "fidelity"
SETS = ["mix2000", "mix10000"]


def load_set(name):
    """(kernel counters, list of page images) of set `name`; a missing
    ../shared fails the test rather than skipping it."""
    if not FIDELITY.is_dir():
        pytest.fail(f"{FIDELITY} is missing: the fidelity data sits in ../shared beside the repo")
    return read_set(FIDELITY / f"{name}.kernel.json")
