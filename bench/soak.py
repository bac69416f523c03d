"""Soak run: a million events through every backend, with lz4 and with zstd
(whose pages are compressed ahead on helper threads), a bounded pool and
verification on, watching the process's resident set.

The trace is bench/run.py's synthetic one (real python-heap pages over a
bounded set of swap slots: stores, loads, invalidations), so RAM use should
stop growing once the pool and swap device reach their steady size: the
RSS curve printed (every 100,000 events) must go flat after warm-up, and
the replay must end with every load matched and every page accounted for.

    python bench/soak.py [--events 1000000] [--output bench/soak.json]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import synthetic_trace  # noqa: E402
from zswapsim.replay import replay  # noqa: E402

BACKENDS = ["zbud", "z3fold", "zsmalloc", "xvmalloc"]
COMPRESSORS = ["lz4", "zstd"]
SAMPLE_EVERY = 100_000


def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def soak(path, backend, compressor, events):
    curve = []

    def progress(done):
        if done // SAMPLE_EVERY > len(curve):
            curve.append((done, round(rss_mb(), 1)))

    started = time.perf_counter()
    result = replay(path, backend=backend, compressor=compressor, ram_pages=16384, verify=True,
                    progress=progress)
    warm = [rss for done, rss in curve if done >= events // 2]
    return {"backend": backend, "compressor": compressor, "events": result["events"], "seconds":
            round(time.perf_counter() - started, 1), "mismatches": 0,
            "live_pages": result["live_pages"], "written_back": result["written_back_pages"],
            "rss_curve_mb": [rss for _, rss in curve],
            "second_half_growth_mb": round(max(warm) - min(warm), 1) if warm else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--output", "--json", dest="json",
                        default=os.path.join(tempfile.gettempdir(), "zswapsim-soak.json"),
                        help="Where to write the runs (default: the temporary folder; give "
                             "bench/soak.json to update the tracked results).")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="zswapsim-soak-") as workdir:
        path = Path(workdir) / "soak.trace"
        synthetic_trace(path, args.events)
        for compressor in COMPRESSORS:
            for backend in BACKENDS:
                # replay() raises VerifyError on any mismatch or lost page.
                row = soak(path, backend, compressor, args.events)
                rows.append(row)
                print(f"{backend:>9} {compressor:>4}: {row['events']} events in "
                      f"{row['seconds']} s, mismatches 0, "
                      f"RSS {row['rss_curve_mb']} MB, second-half growth "
                      f"{row['second_half_growth_mb']} MB")
    Path(args.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "runs": rows},
                                          indent=1) + "\n")
    print(f"{args.json} written")


if __name__ == "__main__":
    main()
