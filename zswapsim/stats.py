"""Figures derived from the counters, computed here and nowhere else."""

from .memory import PAGE_SIZE


def derived(counts):
    """From a `Zswap.counters()` dict: density, stored pages per pool page
    (same-filled pages count, as in stored_pages); effective ratio, the
    original bytes of the pages the pool holds per pool byte (same-filled
    pages left out: they cost the pool nothing); and allocator waste, pool
    bytes not holding compressed data."""
    pool_pages = counts["pool_pages"]
    pool_bytes = counts["pool_total_size"]
    stored = counts["stored_pages"]
    pooled = stored - counts.get("same_filled_pages", 0)     # none from 6.12
    waste = pool_bytes - counts["compressed_bytes"]
    return {
        "density": stored / pool_pages if pool_pages else None,
        "effective_ratio": pooled * PAGE_SIZE / pool_bytes if pool_bytes else None,
        "allocator_waste_bytes": waste,
        "allocator_waste_percent": 100.0 * waste / pool_bytes if pool_bytes else None,
    }
