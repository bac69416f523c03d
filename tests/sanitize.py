"""Building zswapsim's C files under AddressSanitizer and UBSan, for the
tests that run them so (test_kernel_compress.py's standalone harness, the
extension module under test_engine_pools.py and test_zswap_engines.py): one
set of flags, one builder, one sanitized test run, and the check that a run
ended without a report."""

import ast
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "zswapsim"


def _setup_list(name):
    """The list setup.py assigns to `name`, read without running setup.py."""
    tree = ast.parse((PACKAGE.parent / "setup.py").read_text())
    return next(ast.literal_eval(node.value) for node in tree.body
                if isinstance(node, ast.Assign) and node.targets[0].id == name)


# zswapsim._engine's C files: setup.py's ENGINE, the one list of them.
ENGINE_SOURCES = _setup_list("ENGINE")
FLAGS = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
# Leaks matter in a standalone harness; CPython itself leaks at exit.
HARNESS_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
               "UBSAN_OPTIONS": "print_stacktrace=1"}
PYTHON_ENV = {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
              "UBSAN_OPTIONS": "print_stacktrace=1"}


def compiler():
    gcc = shutil.which("gcc")
    assert gcc, "gcc is needed to build under the sanitizers"
    return gcc


def build(sources, output, *extra):
    """Compile `sources` with the sanitizers into `output`; fail the test
    with the compiler's messages if it refuses."""
    run = subprocess.run([compiler(), *FLAGS, *extra, *map(str, sources), "-o", str(output)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return output


def build_extension(directory, name, sources):
    """A sanitized build of extension module `name` (e.g. "_engine") from
    `sources`, in `directory` under the name CPython imports it by."""
    output = Path(directory) / f"{name}{sysconfig.get_config_var('EXT_SUFFIX')}"
    return build(sources, output, "-shared", "-fPIC",
                 f"-I{sysconfig.get_paths()['include']}")


def preload():
    """LD_PRELOAD for a Python process that loads a sanitized extension:
    ASan's runtime must come first."""
    return subprocess.run([compiler(), "-print-file-name=libasan.so"], capture_output=True,
                          text=True, check=True).stdout.strip()


def assert_clean(run):
    """The run exited 0 and the sanitizers said nothing."""
    report = run.stderr[-4000:]
    assert run.returncode == 0, report
    assert "Sanitizer" not in run.stderr and "runtime error" not in run.stderr, report


# What a sanitized subprocess runs: a finder ahead of the others makes the
# sanitized build the zswapsim._engine every import gets, then pytest runs
# the test file given, all but its sanitizer test.
SANITIZED_RUN = """
import importlib.machinery, importlib.util, sys

class Sanitized:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "zswapsim._engine":
            loader = importlib.machinery.ExtensionFileLoader(name, sys.argv[1])
            return importlib.util.spec_from_file_location(name, sys.argv[1], loader=loader)
        return None

sys.meta_path.insert(0, Sanitized)
import pytest, zswapsim._engine as engine
assert engine.__file__ == sys.argv[1], engine.__file__
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-k", "not sanitizers", sys.argv[2]]))
"""


def run_engine_tests(directory, test_file, examples=25):
    """Build zswapsim._engine under the sanitizers in `directory` and run
    `test_file` with it (its differential machines for `examples`
    examples), failing on any report or failed test."""
    built = build_extension(directory, "_engine", [PACKAGE / "_engine" / name
                                                   for name in ENGINE_SOURCES])
    env = dict(os.environ, LD_PRELOAD=preload(), ZSWAPSIM_DIFFERENTIAL_EXAMPLES=str(examples),
               **PYTHON_ENV)
    run = subprocess.run([sys.executable, "-c", SANITIZED_RUN, str(built), str(test_file)],
                         capture_output=True, text=True, env=env, cwd=PACKAGE.parent)
    assert_clean(run)
    assert " passed" in run.stdout and "failed" not in run.stdout, run.stdout[-3000:]
