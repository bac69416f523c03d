"""zswapsim: replay recorded page workloads through models of Linux compressed swap.

The Python API beside the command line: compare() allocators x compressors
and tune_retries() return the records the matching commands print
(recommend() turns the latter into advice); zswapsim.replay.replay() runs
one configuration.
"""

__version__ = "0.1.0"

from .sweep import compare, recommend, tune_retries  # noqa: E402

__all__ = ["compare", "tune_retries", "recommend"]
