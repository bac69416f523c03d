"""trace synth --accesses-per-second: every event carries the time of the
access that made it (access i at i / rate seconds, in nanoseconds), the
clock zram's idle marking reads; the events themselves do not change."""

import json

import pytest

from test_config import cli
from zswapsim.errors import ConfigError
from zswapsim.trace import TraceReader
from zswapsim.trace.synth import synthesize

ACCESSES = 3000
RATE = 10                       # 100 ms an access


def events(path):
    return [(op, swap_type, offset, image, ts) for op, swap_type, offset, image, ts
            in TraceReader(path)]


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clock")
    plain, timed = folder / "plain.trace", folder / "timed.trace"
    for path, rate in ((plain, None), (timed, RATE)):
        synthesize(path, ram_pages=64, accesses=ACCESSES, footprint=256, seed=3, rate=rate)
    return plain, timed


def test_timestamps_are_access_times_and_nothing_else_changes(traces):
    plain, timed = traces
    assert not TraceReader(plain).has_timestamps and TraceReader(timed).has_timestamps
    untimed, stamped = events(plain), events(timed)
    assert [event[:4] for event in stamped] == [event[:4] for event in untimed]
    assert all(event[4] == 0 for event in untimed)
    stamps = [event[4] for event in stamped]
    step = 10 ** 9 // RATE
    assert stamps == sorted(stamps) and all(ts % step == 0 for ts in stamps)
    assert stamps[-1] <= (ACCESSES - 1) * step
    # RAM of 64 pages over 256: swap-outs start once the first 64 pages are in
    assert stamps[0] >= 64 * step and len(set(stamps)) > 100


def test_zram_idle_reads_the_trace_clock(capsys, traces):
    """idle=SECONDS marks a slot idle when its last access is older: on the
    timed trace (300 s in all) an age of 1000 s marks nothing, 0 marks
    every slot written before the last event's time."""
    _plain, timed = traces
    marked = {}
    for age in (1000, 0):
        status, out, err = cli(capsys, "zram", timed, "--kernel", "6.12", "--backing-dev",
                               "1M", "--idle", str(age), "--json", "-q")
        assert status == 0, err
        report = json.loads(out)["post_processing"]
        assert report["clock"] == "trace timestamps"
        marked[age] = report["idle_marked"]
    assert marked[1000] == 0 < marked[0]


@pytest.mark.parametrize("rate", [0, 0.5, 2e9, True, "10"])
def test_a_rate_out_of_range_is_refused(tmp_path, rate):
    with pytest.raises(ConfigError, match="accesses per second"):
        synthesize(tmp_path / "t.trace", ram_pages=8, accesses=10, rate=rate)
    assert not (tmp_path / "t.trace").exists()


def test_the_command_line_takes_the_rate_and_refuses_a_bad_one(capsys, tmp_path):
    path = tmp_path / "t.trace"
    status, out, err = cli(capsys, "trace", "synth", "-o", path, "--ram", "256K",
                           "--accesses", "500", "--accesses-per-second", "1000", "-q")
    assert status == 0 and TraceReader(path).has_timestamps
    status, out, err = cli(capsys, "trace", "synth", "-o", tmp_path / "u.trace", "--ram",
                           "256K", "--accesses-per-second", "0", "-q")
    assert status == 2 and len(err) == 1 and "accesses per second 0.0 is outside" in err[0]
