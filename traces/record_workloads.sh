#!/bin/sh
# How the three recorded traces in this directory were made, command by
# command (run as root from the repository root, with the venv installed:
# recording another user's process needs root or ptrace rights over it).
# Recordings go to /tmp; only the traces derived from them are shipped.
set -eu
Z=.venv/bin/zswapsim
CC1=$(gcc -print-prog-name=cc1)

# 1. A Python data-processing job (traces/workloads/python_job.py), recorded
#    every second until it exits, replayed with 32M of RAM.
$Z trace record -o /tmp/job.rec --interval 1000 \
    --description "Python 3.11 data-processing job (traces/workloads/python_job.py): CSV render and parse, aggregate, join, sort" \
    -- .venv/bin/python traces/workloads/python_job.py
$Z trace synth --recording /tmp/job.rec --ram 32M -o traces/python-job.trace

# 2. A compiler run: GCC 12's cc1 at -O2 on a 2 MB Cython-generated C file
#    that ships with fontTools (a matplotlib dependency), preprocessed first,
#    recorded every 500 ms until it exits, replayed with 200M of RAM.
gcc -E -I/usr/include/python3.11 \
    .venv/lib/python3.11/site-packages/fontTools/misc/bezierTools.c -o /tmp/bezierTools.i
$Z trace record -o /tmp/cc1.rec --interval 500 \
    --description "GCC 12 cc1 -O2 compiling fontTools/misc/bezierTools.c (Cython output, 3.5 MB preprocessed)" \
    -- "$CC1" -quiet -O2 /tmp/bezierTools.i -o /tmp/bezierTools.s
$Z trace synth --recording /tmp/cc1.rec --ram 200M -o traces/gcc-cc1.trace

# 3. A database server under a benchmark: PostgreSQL 15 with 32MB of shared
#    buffers, pgbench's TPC-B-like load at scale 5 from one client; the
#    client's backend is recorded with its shared memory every 500 ms for
#    20 s, replayed with 28M of RAM.
id pgrec >/dev/null 2>&1 || useradd -m pgrec
rm -rf /tmp/pgdata && mkdir /tmp/pgdata && chown pgrec /tmp/pgdata
runuser -u pgrec -- initdb -D /tmp/pgdata -A trust >/dev/null
runuser -u pgrec -- pg_ctl -D /tmp/pgdata -l /tmp/pg.log \
    -o "-k /tmp -c shared_buffers=32MB -c listen_addresses=''" start
runuser -u pgrec -- pgbench -h /tmp -i -s 5 postgres
runuser -u pgrec -- pgbench -h /tmp -c 1 -T 25 postgres > /tmp/pgbench-run.log &
sleep 2
BACKEND=$(pgrep -f "postgres: pgrec postgres \[local\]" | head -1)
$Z trace record --pid "$BACKEND" --shared --interval 500 --duration 20 -o /tmp/pg.rec \
    --description "PostgreSQL 15 backend serving pgbench (TPC-B-like, scale 5, 1 client), shared buffers included"
wait
runuser -u pgrec -- pg_ctl -D /tmp/pgdata stop
$Z trace synth --recording /tmp/pg.rec --ram 28M -o traces/postgres-pgbench.trace
