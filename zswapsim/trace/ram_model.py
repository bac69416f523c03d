"""A process's RAM under memory pressure, reduced to the swap events it causes.

A trace records what the frontswap layer saw; a program only reads, writes
and frees its pages.  RamModel stands between the two as the kernel's
reclaim and fault paths do, so any access sequence becomes a trace:

- RAM holds at most `ram_pages` pages.  A page seen for the first time is
  allocated (a read of a never-written page reads zeros).
- Reclaim takes the least recently accessed resident page before a new page
  comes in.  A dirty page is stored to swap at a fresh slot; a clean page
  whose swap slot still holds its content is dropped without a store, as
  the kernel drops an unmodified swap-cache page, and the trace says so
  (drop_clean): nothing happens then under frontswap, but a kernel with
  exclusive zswap loads (6.9 on) gave up zswap's copy at the load and
  stores the page again.
- A fault on a swapped-out page loads it; the page keeps its slot (it is
  in the swap cache) until it is written, which invalidates and frees the
  slot.  Freeing a page invalidates its slot if it has one.
- Slots are handed out lowest free offset first, so freed offsets are
  reused soon, as they are in a swap area that is not full.  (The kernel's
  cluster allocator scatters offsets more; nothing in zswap depends on
  their order.)

Only the content of dirty resident pages is kept: a swapped-out page's
content lives in the trace, and a clean page's is the one its slot holds.  A
write may give, instead of the bytes, a function that makes them: it is
called only if the page is stored, so a generator spends nothing on pages
that are overwritten or never leave RAM, and RAM's content need not be held.
"""

import heapq
from collections import OrderedDict

from ..errors import ConfigError
from .format import PAGE_SIZE

ACCESS_KINDS = ("read", "write", "free")
ZERO_PAGE = bytes(PAGE_SIZE)


class RamModel:
    """Feed it accesses with access(kind, page_key, content); it writes the
    swap events to `writer` (a TraceWriter) as they happen."""

    def __init__(self, writer, ram_pages, swap_type=0):
        if ram_pages < 1:
            raise ConfigError("simulated RAM must hold at least one page")
        self.writer = writer
        self.ram_pages = ram_pages
        self.swap_type = swap_type
        # Resident pages, least recently accessed first: key -> content of a
        # dirty page, or None for a clean one whose swap slot holds its copy.
        self._resident = OrderedDict()
        self._slot = {}            # page key -> swap slot, resident (clean) or swapped out
        self._free_slots = []      # heap of freed slots below _next_slot
        self._next_slot = 0
        self.stats = dict(accesses=0, reads=0, writes=0, frees=0, first_touches=0,
                          loads=0, stores=0, clean_drops=0, invalidates=0,
                          peak_resident=0, peak_swap_slots=0)

    def access(self, kind, key, content=None):
        """One access.  A write's `content` is the page's new bytes or a
        function returning them; reads and frees ignore it."""
        stats = self.stats
        stats["accesses"] += 1
        if kind == "write":
            stats["writes"] += 1
            if content is None:
                raise ConfigError(f"write to page {key!r} carries no content")
            if not callable(content):
                content = _page_bytes(key, content)
            self._touch(key)
            self._drop_slot(key)
            self._resident[key] = content
        elif kind == "read":
            stats["reads"] += 1
            self._touch(key)
        elif kind == "free":
            stats["frees"] += 1
            self._resident.pop(key, None)
            self._drop_slot(key)
        else:
            raise ConfigError(f"unknown access kind {kind!r}: use one of "
                              + ", ".join(ACCESS_KINDS))

    def finish(self):
        """The statistics, with what RAM and swap hold at the end.  Nothing is
        freed: the trace ends with the process still alive."""
        return {**self.stats, "resident": len(self._resident), "swap_slots": len(self._slot)}

    def _touch(self, key):
        """Make `key` resident and most recently used: fault it in from swap,
        or allocate it as a zero page, reclaiming a page first if RAM is full."""
        resident = self._resident
        if key in resident:
            resident.move_to_end(key)
            return
        if len(resident) >= self.ram_pages:
            self._reclaim()
        slot = self._slot.get(key)
        if slot is not None:
            self.stats["loads"] += 1
            self.writer.load(self.swap_type, slot)
            resident[key] = None
        else:
            self.stats["first_touches"] += 1
            resident[key] = ZERO_PAGE
        if len(resident) > self.stats["peak_resident"]:
            self.stats["peak_resident"] = len(resident)

    def _reclaim(self):
        key, content = self._resident.popitem(last=False)
        if content is None:
            self.stats["clean_drops"] += 1
            self.writer.drop_clean(self.swap_type, self._slot[key])
            return
        if self._free_slots:
            slot = heapq.heappop(self._free_slots)
        else:
            slot = self._next_slot
            self._next_slot += 1
        self._slot[key] = slot
        if len(self._slot) > self.stats["peak_swap_slots"]:
            self.stats["peak_swap_slots"] = len(self._slot)
        self.stats["stores"] += 1
        self.writer.store(self.swap_type, slot,
                          _page_bytes(key, content()) if callable(content) else content)

    def _drop_slot(self, key):
        """The page's swap copy is stale or unwanted: invalidate and free its slot."""
        slot = self._slot.pop(key, None)
        if slot is not None:
            self.stats["invalidates"] += 1
            self.writer.invalidate_page(self.swap_type, slot)
            heapq.heappush(self._free_slots, slot)


def _page_bytes(key, content):
    content = bytes(content)
    if len(content) != PAGE_SIZE:
        raise ConfigError(f"write to page {key!r} carries {len(content)} bytes, "
                          f"expected {PAGE_SIZE}")
    return content
