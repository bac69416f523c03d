"""zsmalloc: size classes over chains of pages, as mm/zsmalloc.c of Linux 6.1.

Every request grows by the 8-byte handle header (ZS_HANDLE_SIZE) and is
served from a size class: classes are 16 bytes apart from 32 to 4096.  A
class packs objects of its size back to back into a "zspage", a chain of up
to ZS_MAX_PAGES_PER_ZSPAGE = 4 pages, chosen so the chain wastes the least
(the highest integer percentage used; the shortest chain wins a tie), so an
object may straddle two pages and is copied in two parts.  Classes whose
chains would have the same pages and objects are merged into the larger
one, walking from the largest class down.  The first class from the top
that is not "huge" (one object per single page) sets huge_class_size.

A zspage sits on its class's fullness list: almost full, almost empty
(at most 3/4 of its objects in use) or full; allocation takes the head of
almost full, else of almost empty, and a new zspage only when both are
empty.  Pages with more objects in use go to the head of their list.  Free
objects form a LIFO list inside each zspage.  A zspage whose last object is
freed is released at once.  6.1's zsmalloc has no writeback: the zpool
driver has no shrink, so reclaim_page answers -EINVAL.

Handles are indirect, as in the kernel (a slab word holding the object's
location), so the allocator knows each object's zspage and index.
"""

import errno
from collections import OrderedDict

from ..errors import Invalid, NoMemory
from ..memory import PAGE_SIZE
from .base import Zpool, register

ZS_HANDLE_SIZE = 8
ZS_MIN_ALLOC_SIZE = 32
ZS_MAX_ALLOC_SIZE = PAGE_SIZE
CLASS_BITS = 8
ZS_SIZE_CLASS_DELTA = PAGE_SIZE >> CLASS_BITS                         # 16
ZS_SIZE_CLASSES = -(-(ZS_MAX_ALLOC_SIZE - ZS_MIN_ALLOC_SIZE) // ZS_SIZE_CLASS_DELTA) + 1  # 255
FULLNESS_THRESHOLD_FRAC = 4
ZS_EMPTY, ZS_ALMOST_EMPTY, ZS_ALMOST_FULL, ZS_FULL = range(4)


def pages_per_zspage_6_1(class_size, max_pages):
    """get_pages_per_zspage: the chain length with the best integer used-%."""
    best_used, best_pages = 0, 1
    for pages in range(1, max_pages + 1):
        span = pages * PAGE_SIZE
        used = (span - span % class_size) * 100 // span
        if used > best_used:
            best_used, best_pages = used, pages
    return best_pages


def class_index(size):
    """get_size_class_index for a request that already includes the header."""
    index = 0 if size <= ZS_MIN_ALLOC_SIZE else \
        -(-(size - ZS_MIN_ALLOC_SIZE) // ZS_SIZE_CLASS_DELTA)
    return min(index, ZS_SIZE_CLASSES - 1)


class SizeClass:
    __slots__ = ("index", "size", "pages_per_zspage", "objs_per_zspage", "huge", "fullness")

    def __init__(self, index, size, pages_per_zspage):
        self.index = index
        self.size = size
        self.pages_per_zspage = pages_per_zspage
        self.objs_per_zspage = pages_per_zspage * PAGE_SIZE // size
        self.huge = pages_per_zspage == 1 and self.objs_per_zspage == 1
        # One OrderedDict per fullness group; the last item is the list head.
        self.fullness = [OrderedDict() for _ in range(4)]

    def fullness_group(self, inuse):
        if inuse == 0:
            return ZS_EMPTY
        if inuse == self.objs_per_zspage:
            return ZS_FULL
        if inuse <= 3 * self.objs_per_zspage // FULLNESS_THRESHOLD_FRAC:
            return ZS_ALMOST_EMPTY
        return ZS_ALMOST_FULL


class Zspage:
    __slots__ = ("id", "size_class", "pfns", "inuse", "free_objs", "group")

    def __init__(self, zspage_id, size_class, pfns):
        self.id = zspage_id
        self.size_class = size_class
        self.pfns = pfns
        self.inuse = 0
        self.free_objs = list(range(size_class.objs_per_zspage - 1, -1, -1))  # pop() = head
        self.group = None


@register
class ZsmallocPool(Zpool):
    name = "zsmalloc"

    def __init__(self, memory=None, evict=None, chain_size=4):
        super().__init__(memory, evict)
        self.chain_size = chain_size
        self.size_class = [None] * ZS_SIZE_CLASSES
        self.huge_class_size = 0
        previous = None
        for index in range(ZS_SIZE_CLASSES - 1, -1, -1):
            size = min(ZS_MIN_ALLOC_SIZE + index * ZS_SIZE_CLASS_DELTA, ZS_MAX_ALLOC_SIZE)
            pages = pages_per_zspage_6_1(size, chain_size)
            objs = pages * PAGE_SIZE // size
            if pages != 1 and objs != 1 and not self.huge_class_size:
                self.huge_class_size = size - (ZS_HANDLE_SIZE - 1)
            if previous and (previous.pages_per_zspage, previous.objs_per_zspage) == (pages, objs):
                self.size_class[index] = previous
                continue
            previous = self.size_class[index] = SizeClass(index, size, pages)
        self.pages_allocated = 0
        self.handles = {}            # handle -> [zspage, object index, requested size]
        self._next_handle = 1
        self._next_zspage = 0

    def distinct_classes(self):
        return len({id(c) for c in self.size_class})

    # -- fullness lists --------------------------------------------------

    def _insert(self, zspage, group):
        """insert_zspage: at the head, or just behind a head with more in use."""
        lst = zspage.size_class.fullness[group]
        zspage.group = group
        if lst:
            head_id = next(reversed(lst))
            head = lst[head_id]
            if zspage.inuse < head.inuse:
                del lst[head_id]
                lst[zspage.id] = zspage
                lst[head_id] = head
                return
        lst[zspage.id] = zspage

    def _fix_fullness(self, zspage):
        group = zspage.size_class.fullness_group(zspage.inuse)
        if group != zspage.group:
            del zspage.size_class.fullness[zspage.group][zspage.id]
            if group == ZS_EMPTY:
                return group
            self._insert(zspage, group)
        return group

    # -- the zpool API ---------------------------------------------------

    def malloc(self, size):
        if size <= 0 or size > ZS_MAX_ALLOC_SIZE:
            raise Invalid(f"zs_malloc of {size} bytes")
        size_class = self.size_class[class_index(size + ZS_HANDLE_SIZE)]
        zspage = None
        for group in (ZS_ALMOST_FULL, ZS_ALMOST_EMPTY):
            candidates = size_class.fullness[group]
            if candidates:
                zspage = candidates[next(reversed(candidates))]
                break
        if zspage is None:
            zspage = self._alloc_zspage(size_class)
        index = zspage.free_objs.pop()
        zspage.inuse += 1
        if zspage.group is None:
            self._insert(zspage, size_class.fullness_group(zspage.inuse))
        else:
            self._fix_fullness(zspage)
        handle = self._next_handle
        self._next_handle += 1
        self.handles[handle] = [zspage, index, size]
        self._write_span(zspage, index, 0, handle.to_bytes(8, "little")
                         if not size_class.huge else b"")
        return handle

    def _alloc_zspage(self, size_class):
        pfns = []
        try:
            for _ in range(size_class.pages_per_zspage):
                pfns.append(self.memory.alloc_page())
        except NoMemory:
            for pfn in pfns:
                self.memory.free_page(pfn)
            raise
        self.pages_allocated += size_class.pages_per_zspage
        self._next_zspage += 1
        return Zspage(self._next_zspage, size_class, pfns)

    def free(self, handle):
        zspage, index, _ = self._lookup(handle)
        del self.handles[handle]
        zspage.free_objs.append(index)
        zspage.inuse -= 1
        if self._fix_fullness(zspage) == ZS_EMPTY:
            for pfn in zspage.pfns:
                self.memory.free_page(pfn)
            self.pages_allocated -= zspage.size_class.pages_per_zspage

    def _lookup(self, handle):
        entry = self.handles.get(handle)
        if entry is None:
            raise Invalid(f"handle {handle} is not in this pool")
        return entry

    def _write_span(self, zspage, index, skip, data):
        """Copy `data` into object `index` at `skip` bytes in, across pages."""
        offset = index * zspage.size_class.size + skip
        frames = self.memory.frames
        while data:
            page, in_page = divmod(offset, PAGE_SIZE)
            part = data[:PAGE_SIZE - in_page]
            frames[zspage.pfns[page]][in_page:in_page + len(part)] = part
            data = data[len(part):]
            offset += len(part)

    def _read_span(self, zspage, index, skip, length):
        offset = index * zspage.size_class.size + skip
        frames = self.memory.frames
        parts = []
        while length:
            page, in_page = divmod(offset, PAGE_SIZE)
            take = min(length, PAGE_SIZE - in_page)
            parts.append(frames[zspage.pfns[page]][in_page:in_page + take])
            length -= take
            offset += take
        return b"".join(parts)

    def _header_len(self, zspage):
        return 0 if zspage.size_class.huge else ZS_HANDLE_SIZE

    def write(self, handle, data):
        zspage, index, size = self._lookup(handle)
        if len(data) > size:
            raise Invalid(f"write of {len(data)} bytes into a {size}-byte object")
        self._write_span(zspage, index, self._header_len(zspage), data)

    def read(self, handle):
        zspage, index, size = self._lookup(handle)
        return self._read_span(zspage, index, self._header_len(zspage), size)

    def reclaim_page(self, retries):
        self.reclaim_calls += 1
        return -errno.EINVAL

    def total_pages(self):
        return self.pages_allocated
