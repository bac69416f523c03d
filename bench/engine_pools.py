"""The allocators one call at a time, Python model against its compiled twin
(create_pool(..., engine="python" | "native")), side by side.

Each allocator runs the same seeded sequence in both engines: a working set
of live objects churned by malloc + write (sizes of compressed pages, 200 to
3900 bytes) and free of a random live object, with a read of each object
before it goes; the two engines' reads are compared, so the sequences are
known to agree.  Passes alternate engine by engine, --rounds times; each
engine's best pass (thread CPU time) and the ratio python / native are
printed.  This is the one-call-at-a-time path the tests use: every call
still crosses from Python, so the ratio bounds what the block engine gains
on allocator work, not what it will gain on a replay.

    python bench/engine_pools.py [--ops 200000] [--rounds 5]
"""

import argparse
import random
import time

from zswapsim.zpool import create_pool

BACKENDS = ("zbud", "zsmalloc")


def sequence(seed, ops):
    """(size, victim index) pairs: malloc `size`, then free live[victim % len]."""
    rng = random.Random(seed)
    return [(rng.randint(200, 3900), rng.randrange(1 << 30)) for _ in range(ops)]


def run(backend, engine, ops, live_target):
    pool = create_pool(backend, engine=engine)
    payload = bytes(range(256)) * 16
    live, reads = [], 0
    malloc, write, read, free = pool.malloc, pool.write, pool.read, pool.free
    start = time.thread_time()
    for size, victim in ops:
        handle = malloc(size)
        write(handle, payload[:size])
        live.append(handle)
        if len(live) > live_target:
            gone = live.pop(victim % len(live))
            reads += len(read(gone))
            free(gone)
    elapsed = time.thread_time() - start
    return elapsed, (reads, pool.total_pages(), [read(h) for h in live[-50:]])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--live", type=int, default=20_000, help="live objects kept")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{args.ops} malloc+write / read+free pairs, {args.live} live objects, "
          f"best of {args.rounds} (thread CPU time)")
    print(f"{'allocator':10} {'python s':>9} {'native s':>9} {'python/native':>14}")
    for backend in BACKENDS:
        ops = sequence(1, args.ops)
        best = {}
        for _ in range(args.rounds):
            results = {}
            for engine in ("python", "native"):
                elapsed, results[engine] = run(backend, engine, ops, args.live)
                best[engine] = min(best.get(engine, elapsed), elapsed)
            if results["python"] != results["native"]:
                raise SystemExit(f"{backend}: the engines disagree")
        print(f"{backend:10} {best['python']:9.3f} {best['native']:9.3f} "
              f"{best['python'] / best['native']:14.2f}")


if __name__ == "__main__":
    main()
