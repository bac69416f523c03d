"""Figures derived from the counters, computed here and nowhere else."""

from .memory import PAGE_SIZE


def derived(counts):
    """density (stored pages per pool page), effective compression ratio
    (original bytes per pool byte) and allocator waste (pool bytes not
    holding compressed data), from a `Zswap.counters()` dict."""
    pool_pages = counts["pool_pages"]
    pool_bytes = counts["pool_total_size"]
    stored = counts["stored_pages"]
    waste = pool_bytes - counts["compressed_bytes"]
    return {
        "density": stored / pool_pages if pool_pages else None,
        "effective_ratio": stored * PAGE_SIZE / pool_bytes if pool_bytes else None,
        "allocator_waste_bytes": waste,
        "allocator_waste_percent": 100.0 * waste / pool_bytes if pool_bytes else None,
    }
