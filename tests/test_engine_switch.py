"""Choosing the engine (engine.py): `zswapsim --engine`, ZSWAPSIM_ENGINE and
`engine=` pick the Python models or their compiled twins, zswap's and
zram's; the results are the same, `--version` says which runs, and a bad
choice is one line."""

import json
import os
import subprocess
import sys

import pytest

from test_cli import SHIPPED, assert_one_line_error
from zswapsim.engine import ENGINE_VARIABLE, chosen_engine, describe, zram_class, zswap_class
from zswapsim.errors import ConfigError
from zswapsim.replay import TIMING_FIELDS, replay
from zswapsim.zram import Zram
from zswapsim.zram_native import NativeZram
from zswapsim.zswap import Zswap
from zswapsim.zswap_native import NativeZswap


def run(*args, env=None):
    environment = {key: value for key, value in os.environ.items() if key != ENGINE_VARIABLE}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "zswapsim", *args], capture_output=True,
                          text=True, timeout=300, env=environment)


def without_timing(result):
    return {key: value for key, value in result.items() if key not in TIMING_FIELDS}


def test_the_choice_goes_argument_then_variable_then_default(monkeypatch):
    monkeypatch.delenv(ENGINE_VARIABLE, raising=False)
    assert zswap_class() is NativeZswap and chosen_engine() == "native"
    monkeypatch.setenv(ENGINE_VARIABLE, "python")
    assert zswap_class() is Zswap
    assert zswap_class("native") is NativeZswap
    monkeypatch.setenv(ENGINE_VARIABLE, "fast")
    with pytest.raises(ConfigError, match="unknown ZSWAPSIM_ENGINE 'fast'"):
        chosen_engine()
    with pytest.raises(ConfigError, match="unknown engine 'c'"):
        chosen_engine("c")


def test_zram_follows_the_choice_but_for_writeback_and_recompression(monkeypatch):
    monkeypatch.delenv(ENGINE_VARIABLE, raising=False)
    assert zram_class() is NativeZram
    monkeypatch.setenv(ENGINE_VARIABLE, "python")
    assert zram_class() is Zram and zram_class("native") is NativeZram
    assert zram_class("native", writeback=True) is Zram
    assert zram_class("native", recompression=True) is Zram
    every = "xvmalloc, z3fold, zbud, zcache-zbud, zsmalloc"
    assert describe("native") == (f"engine: native (native: zswap over {every}; zram: native "
                                  f"over {every}, its writeback and recompression python)")


@pytest.mark.parametrize("kernel", ["6.1", "6.12", "6.18"])
def test_replay_gives_the_same_result_in_both_engines(kernel):
    settings = dict(backend="zsmalloc", ram="16M", kernel=kernel)
    python = replay(SHIPPED, engine="python", **settings)
    native = replay(SHIPPED, engine="native", **settings)
    assert python["written_back_pages"] + python["pool_limit_hit"] > 0    # the limit bites
    assert without_timing(native) == without_timing(python)


def test_version_names_the_engine_the_option_or_variable_chose():
    assert "engine: native" in run("--version").stdout
    assert "engine: python" in run("--engine", "python", "--version").stdout
    assert "engine: python" in run("--version", env={ENGINE_VARIABLE: "python"}).stdout


def test_the_command_line_engine_gives_the_same_numbers():
    args = ("replay", SHIPPED, "--ram", "16M", "--backend", "zbud", "--json")
    results = [run(*engine, *args) for engine in ((), ("--engine", "native"))]
    for result in results:
        assert result.returncode == 0, result.stderr
    python, native = (without_timing(json.loads(result.stdout)) for result in results)
    assert native == python


@pytest.mark.parametrize("extra", [
    ("--kernel", "6.18", "--mem-limit", "1M", "--compact", "--idle", "all", "--zramctl"),
    ("--size-report",),
    # writeback: the Python zram under either engine
    ("--kernel", "6.6", "--backing-dev", "1M", "--idle", "all", "--writeback", "idle")])
def test_the_zram_command_gives_the_same_numbers_in_both_engines(extra):
    args = ("zram", SHIPPED, "--json", "-q", *extra)
    results = [run(*engine, *args) for engine in ((), ("--engine", "native"))]
    for result in results:
        assert result.returncode == 0, result.stderr
    python, native = (json.loads(result.stdout) for result in results)
    assert native == python
    assert python["mm_stat"]["orig_data_size"] > 0


def test_a_bad_engine_is_one_line_before_any_work():
    assert_one_line_error(run("kernels", env={ENGINE_VARIABLE: "turbo"}),
                          "unknown ZSWAPSIM_ENGINE 'turbo'; known: native, python")
    result = run("--engine", "turbo", "kernels")
    assert result.returncode == 2 and "'turbo' is not one of" in result.stderr
