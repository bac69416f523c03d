"""Building zswapsim's C files under AddressSanitizer and UBSan, for the
tests that run them so (test_kernel_compress.py's standalone harness,
test_engine_pools.py's extension module): one set of flags, one builder, and
the check that a run ended without a report."""

import shutil
import subprocess
import sysconfig
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "zswapsim"
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
