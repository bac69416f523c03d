"""Recorded swap workloads: the trace file format, its importer and summary.

See docs/trace-format.md for the on-disk layout.
"""

from .format import (
    DROP_CLEAN,
    EVENT_DTYPE,
    INVALIDATE_AREA,
    INVALIDATE_PAGE,
    LOAD,
    NO_IMAGE,
    OP_NAMES,
    PAGE_SIZE,
    STORE,
    TraceReader,
    TraceWriter,
    columns,
)
from .importer import import_raw
from .info import trace_info

__all__ = [
    "DROP_CLEAN", "EVENT_DTYPE", "INVALIDATE_AREA", "INVALIDATE_PAGE", "LOAD", "NO_IMAGE",
    "OP_NAMES", "PAGE_SIZE", "STORE", "TraceReader", "TraceWriter", "columns", "import_raw",
    "trace_info",
]
