"""zswapsim: replay recorded page workloads through models of Linux compressed swap."""

__version__ = "0.1.0"
