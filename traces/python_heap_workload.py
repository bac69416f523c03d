# A real Python process with a mixed heap: parsed JSON, text, numbers, bytecode.
import collections
import json
import os
import re
import signal
import numpy as np
k = json.load(open('/work/shared/fidelity/mix2000.kernel.json'))
words = collections.Counter(re.findall(r"\w+", open('/work/shared/KERNEL.md').read() * 5))
table = {i: (str(i) * 3, float(i) / 7, [i] * 5) for i in range(15000)}
arr = np.cumsum(np.arange(100000, dtype=np.int64) % 977)
sources = ['/work/main/zswapsim/zswap.py', '/work/main/zswapsim/zpool/zbud.py',
           '/work/main/zswapsim/cli.py']
src = [compile(open(p).read(), p, 'exec') for p in sources]
print(os.getpid(), flush=True)
signal.pause()
