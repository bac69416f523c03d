"""A progress bar on stderr for runs long enough to want one.

tqdm draws it (events or configurations done, their rate, and the ETA); it
appears only after a second, only when stderr is a terminal, and never with
--quiet, so pipes, logs and tests see nothing.
"""

import sys

from tqdm import tqdm


class Progress:
    """Callable with the absolute count done so far (and the total, when it
    only becomes known on the way)."""

    def __init__(self, total, unit, quiet=False):
        self.bar = tqdm(total=total, unit=unit, unit_scale=True, delay=1.0, file=sys.stderr,
                        leave=False, dynamic_ncols=True,
                        disable=quiet or not sys.stderr.isatty())

    def __call__(self, done, total=None):
        if total is not None and total != self.bar.total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()
