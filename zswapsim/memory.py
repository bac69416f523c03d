"""Simulated RAM: a budget of 4096-byte page frames holding real bytes.

Allocators take their pages from here as the kernel's take them from
alloc_page(), and the budget's size is what zswap calls totalram_pages, the
base of max_pool_percent.  A frame is a real bytearray, so every object an
allocator places lands at a real offset in real memory and an overlap shows
up as a corrupted load.  Each frame is handed out as a memoryview of its
bytearray: the same bytes, but slice copies in and out cost a quarter of a
bytearray's.  Allocating past the budget fails with ENOMEM.
Freed frames keep their stale bytes and are handed out again last-freed
first, like the page allocator's per-CPU lists.
"""

import re

from .errors import ConfigError, NoMemory

PAGE_SIZE = 4096
PAGE_SHIFT = 12


class Memory:
    """Page frames numbered by pfn; `totalram_pages` None means unbounded.
    A FaultPlan in `faults` makes some allocations fail as if RAM ran out."""

    def __init__(self, totalram_pages=None, faults=None):
        if totalram_pages is not None and totalram_pages < 1:
            raise ConfigError("simulated RAM must hold at least one page")
        self.totalram_pages = totalram_pages
        self.frames = []          # pfn -> memoryview of a bytearray(PAGE_SIZE)
        self._free_pfns = []
        self.used_pages = 0
        self.peak_pages = 0
        self.faults = faults

    def alloc_page(self):
        """Take a frame and return its pfn; NoMemory when the budget is spent."""
        if self.totalram_pages is not None and self.used_pages >= self.totalram_pages:
            raise NoMemory("simulated RAM exhausted")
        if self.faults is not None and self.faults.fail("alloc"):
            raise NoMemory("injected page allocation failure")
        if self._free_pfns:
            pfn = self._free_pfns.pop()
        else:
            pfn = len(self.frames)
            self.frames.append(memoryview(bytearray(PAGE_SIZE)))
        self.used_pages += 1
        if self.used_pages > self.peak_pages:
            self.peak_pages = self.used_pages
        return pfn

    def free_page(self, pfn):
        self._free_pfns.append(pfn)
        self.used_pages -= 1

    def free_pfns(self):
        """The frames on the free list, for allocator audits."""
        return set(self._free_pfns)

    def free_pages(self):
        """Frames still available, or None when unbounded."""
        if self.totalram_pages is None:
            return None
        return self.totalram_pages - self.used_pages


def same_filled_word(page):
    """The 8-byte word a page repeats from end to end, else None: the test
    zswap_is_page_same_filled and zram's page_same_filled make."""
    word = page[:8]
    if page[8:16] != word:          # most pages differ at once: skip building a page
        return None
    return word if page == word * (len(page) // 8) else None


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", re.IGNORECASE | re.ASCII)

# The largest size accepted: 2^52 bytes (4 PiB), x86-64's MAX_PHYSMEM_BITS
# with five-level paging, the most memory Linux can address.
MAX_SIZE = 1 << 52


def parse_size(text):
    """Bytes in a size such as 4096, 512K, 512M, 4G or 1.5G (binary units,
    ASCII digits), exactly, and at most MAX_SIZE."""
    match = _SIZE.fullmatch(str(text))
    if not match:
        raise ConfigError(f"cannot read size '{text}': use a number with K, M, G or T, e.g. 512M")
    number, unit = match.groups()
    whole, _, fraction = number.lstrip("0").partition(".")
    fraction = fraction.rstrip("0")[:4000]      # within int()'s digit limit
    unit = _SIZE_UNITS[unit.upper()]
    size = None
    if len(whole) <= len(str(MAX_SIZE)):         # else too large, before any arithmetic
        size = int(whole or 0) * unit + int(fraction or 0) * unit // 10 ** len(fraction)
    if size is None or size > MAX_SIZE:
        raise ConfigError(f"size '{text}' is larger than {MAX_SIZE >> 40}T (2^52 bytes, "
                          "the most memory Linux can address)")
    return size


def ram_pages(text):
    """Page frames in a RAM size given by the user; at least one page."""
    pages = parse_size(text) // PAGE_SIZE
    if pages < 1:
        raise ConfigError(f"RAM size '{text}' is smaller than one {PAGE_SIZE}-byte page")
    return pages
