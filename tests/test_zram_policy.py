"""zram --policy: timed sysfs writes on the replay's clock, and their
errors, against counts worked out by hand from the trace scripts and
zram_drv.c's rules (mark_idle: cutoff = now - age, idle when the cutoff is
after ac_time; 6.12 marks every stored slot on "all"; writeback=idle takes
IDLE slots).  A trace without timestamps has event i at second i; an
action at T runs once the clock passes T, before the next event."""

import json
import subprocess
import sys

import pytest

from test_profiles import one_line_error
from test_zram import page, write_trace
from zswapsim.cli import main
from zswapsim.trace import TraceWriter


def stores(tmp_path, count):
    """A trace of `count` stores, page n at offset n, event n at second n + 1."""
    return write_trace(tmp_path / "t.trace", [("store", n, n) for n in range(count)])


def run_policy(tmp_path, capsys, trace, text, *argv):
    policy = tmp_path / "p.toml"
    policy.write_text(text)
    assert main(["zram", str(trace), "-q", "--json", "--kernel", "6.12", "--policy",
                 str(policy)] + list(argv)) is None
    return json.loads(capsys.readouterr().out)


def test_at_and_every_on_the_event_clock(tmp_path, capsys):
    # 9 events, seconds 1..9.  idle=all at 2, 5, 8: after 2, 5 and 8 stores
    # (6.12 marks every stored slot): 15 marks in 3 runs.  At 9 (the last
    # event's time) it runs after the trace; at 10 never.
    out = run_policy(tmp_path, capsys, stores(tmp_path, 9), """
[[action]]
at = 2
every = 3
idle = "all"

[[action]]
at = "9s"
compact = true

[[action]]
at = 10
idle = "all"
""")
    actions = out["policy"]["actions"]
    assert actions[0] == {"action": "idle=all", "at": 2, "every": 3, "runs": 3,
                          "marked": 2 + 5 + 8}
    assert actions[1]["runs"] == 1 and actions[1]["pages_compacted"] == 0
    assert actions[2] == {"action": "idle=all", "at": 10, "runs": 0}
    assert out["policy"]["clock"] == "event indices, one second each"


def test_a_trace_with_timestamps_sets_the_clock(tmp_path, capsys):
    # stores at 10 s, 20 s, 30 s, 40 s; idle=all every 15 s from 0: runs at
    # 0 (nothing stored), 15 (1 slot), 30 (after the 30 s store: it is not
    # later than 30, so 3 slots; the action waits for a later event), 45
    # is past the last event (40 s): not run.  6.12 marks every slot.
    trace = tmp_path / "ts.trace"
    with TraceWriter(trace, timestamps=True) as writer:
        for n in range(4):
            writer.store(0, n, page(n), ts=(n + 1) * 10 * 10 ** 9)
    out = run_policy(tmp_path, capsys, trace, """
[[action]]
every = "15s"
idle = "all"
""")
    assert out["policy"]["actions"][0]["runs"] == 3
    assert out["policy"]["actions"][0]["marked"] == 0 + 1 + 3
    assert out["policy"]["clock"] == "trace timestamps"


def test_the_clock_during_an_action_is_its_own_time(tmp_path, capsys):
    # idle=1 at 5: cutoff 4 s; stores at 1, 2, 3 are older, 4 and 5 not
    out = run_policy(tmp_path, capsys, stores(tmp_path, 8), """
[[action]]
at = 5
idle = 1
""")
    assert out["policy"]["actions"][0]["marked"] == 3


def test_actions_due_together_run_in_file_order(tmp_path, capsys):
    trace = stores(tmp_path, 6)
    # at 3: idle marks slots 0..2, then writeback takes those three
    out = run_policy(tmp_path, capsys, trace, """
[[action]]
at = 3
idle = "all"
[[action]]
at = 3
writeback = "idle"
""", "--backing-dev", "64K")
    assert [a.get("marked", a.get("written_back")) for a in out["policy"]["actions"]] == [3, 3]
    assert out["bd_stat"]["bd_writes"] == 3
    # the other way round, writeback at 3 finds nothing idle
    out = run_policy(tmp_path, capsys, trace, """
[[action]]
at = 3
writeback = "idle"
[[action]]
at = 3
idle = "all"
""", "--backing-dev", "64K")
    assert out["policy"]["actions"][0]["written_back"] == 0


def test_writeback_limit_runs_out_and_is_reported(tmp_path, capsys):
    # limit 2 at 1 s; idle=all and writeback=idle at 4: 2 pages, then -EIO
    # at the third; again at 6 (every 2): 0 pages, -EIO at once
    out = run_policy(tmp_path, capsys, stores(tmp_path, 7), """
[[action]]
at = 1
writeback_limit = 2
[[action]]
at = 4
every = 2
idle = "all"
[[action]]
at = 4
every = 2
writeback = "idle"
""", "--backing-dev", "64K")
    limit, idle, writeback = out["policy"]["actions"]
    assert limit["writeback_limit"] == 2
    assert writeback == {"action": "writeback=idle", "at": 4, "every": 2, "runs": 2,
                         "written_back": 2, "stopped_by": {"-EIO": 2}}
    assert idle["runs"] == 2


def test_recompression_policy_on_a_shipped_trace_reads_back_every_page(capsys):
    # recompress at 1000 s, then 4000 more events' loads verify what was
    # recompressed; the end-of-run check reads every held page back
    import tempfile
    with tempfile.TemporaryDirectory() as directory:
        policy = f"{directory}/p.toml"
        with open(policy, "w") as f:
            f.write('[[action]]\nrecomp_algorithm = "algo=zstd priority=1"\n'
                    '[[action]]\nat = 1000\nevery = 1000\nrecompress = "type=huge"\n'
                    '[[action]]\nat = 1000\nevery = 1000\nrecompress = "max_pages=300"\n')
        assert main(["zram", "traces/postgres-pgbench.trace", "-q", "--json", "--kernel",
                     "6.18", "--policy", policy]) is None
    out = json.loads(capsys.readouterr().out)
    recompress = out["policy"]["actions"][2]
    assert recompress["runs"] == 23                   # 1000, 2000, ..., 23000 of 23416
    assert recompress["recompressed"] > 0
    assert recompress["attempted"] <= 23 * 300


def test_recompress_option_at_the_end(tmp_path, capsys):
    trace = stores(tmp_path, 4)
    assert main(["zram", str(trace), "-q", "--json", "--kernel", "6.12",
                 "--recomp-algorithm", "algo=zstd priority=1", "--idle", "all",
                 "--recompress", "type=idle max_pages=3"]) is None
    out = json.loads(capsys.readouterr().out)
    post = out["post_processing"]
    assert post["idle_marked"] == 4 and post["recompress_attempted"] == 3


@pytest.mark.parametrize("text, argv, message", [
    ("[[action]\nat = 1", [], "policy P: Expected ']]' at the end of an array "
                              "declaration (at line 1"),
    ("[[action]]\nat = 1\nidel = 'all'", [], "action 1: unknown key 'idel'"),
    ("[[action]]\nat = 'soon'\nidle = 'all'", [], "at = 'soon': expected seconds or a "
                                                  "number with s, m, h or d"),
    ("[[action]]\nat = -5\nidle = 'all'", [], "at = -5: not a time of 0 or more"),
    ("[[action]]\nat = 5\nevery = 0\nidle = 'all'", [], "every = 0: must be more than 0"),
    ("[[action]]\nat = 5", [], "action 1: no action; give exactly one of idle, "),
    ("[[action]]\nidle = 'all'\ncompact = true", [], "idle and compact in one table"),
    ("[[action]]\nidle = 'soon'", [], "idle = 'soon': expected 'all' or whole seconds"),
    ("[[action]]\nwriteback = 'idle'", [], "action 1 (writeback=idle): writeback needs a "
                                           "backing device"),
    ("[[action]]\nwriteback = 'cold'", ["--backing-dev", "1M"], "writeback 'cold': expected"),
    ("[[action]]\nwriteback_limit = -1", ["--backing-dev", "1M"],
     "writeback_limit = -1: expected pages"),
    ("[[action]]\nrecompress = 'type=huge'", ["--kernel", "6.1"],
     "no recompression (that came in 6.2"),
    ("[[action]]\nrecompress = 'algo=zstd'", [], "no secondary algorithm zstd"),
    ("[[action]]\nat = 60\nrecomp_algorithm = 'algo=zstd'", [],
     "recomp_algorithm is taken only before disksize"),
    ("[[action]]\nrecomp_algorithm = 'algo=zstd'\n[[action]]\nat = 9\n"
     "recompress = 'threshold=4000'", [], "action 2 (recompress=threshold=4000): recompress "
                                          "'threshold=4000': threshold 4000 is not below"),
    ("[[action]]\ncompact = 1", [], "compact = 1: expected true"),
    ("[[action]]\nidle = 'all'\nalgorithm_params = 'level=3'", [],
     "algorithm_params goes, as a string, with recomp_algorithm only"),
    ("interval = 5", [], "unknown top-level key 'interval'"),
])
def test_policy_errors_are_one_line_before_the_replay(tmp_path, capsys, text, argv, message):
    trace = stores(tmp_path, 2)
    policy = tmp_path / "P"
    policy.write_text(text)
    line = one_line_error(capsys, ["zram", str(trace), "-q", "--kernel", "6.12", "--policy",
                                   str(policy)] + argv)
    assert message.replace("policy P", f"policy {policy}") in line


@pytest.mark.parametrize("argv, message", [
    (["--recomp-algorithm", "algo=zstd priority=5"], "priority 5 is not 1..3"),
    (["--recompress", "type=huge"], "no secondary algorithm at priority 1 or above"),
    (["--recomp-algorithm", "algo=zstd", "--recompress", "threshold=3625"],
     "threshold 3625 is not below huge_class_size 3625"),
    (["--recomp-algorithm", "algo=zstd", "--recompress", "type=cold"], "type=cold"),
])
def test_recompress_options_are_checked_before_the_run(tmp_path, capsys, argv, message):
    trace = stores(tmp_path, 2)
    assert message in one_line_error(capsys, ["zram", str(trace), "-q", "--kernel", "6.12"]
                                     + argv)


def test_a_bad_policy_in_a_real_process_is_one_line_and_exit_2(tmp_path):
    trace = stores(tmp_path, 2)
    policy = tmp_path / "p.toml"
    policy.write_text("[[action]]\nat = 'later'\nidle = 'all'\n")
    done = subprocess.run([sys.executable, "-m", "zswapsim", "zram", str(trace), "-q",
                           "--policy", str(policy)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr and "at = 'later'" in done.stderr
