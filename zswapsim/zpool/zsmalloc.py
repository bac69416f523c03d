"""zsmalloc: size classes over chains of pages, as mm/zsmalloc.c of Linux 6.1,
with the zspage LRU reclaim that 6.2 to 6.4 had and the longer chains of 6.3+.

Every request grows by the 8-byte handle header (ZS_HANDLE_SIZE) and is
served from a size class: classes are 16 bytes apart from 32 to 4096.  A
class packs objects of its size back to back into a "zspage", a chain of up
to `chain_size` pages, so an object may straddle two pages and is copied in
two parts.  With chain_size 4 (the default, and the only choice before 6.3)
the chain length is 6.1's get_pages_per_zspage: the highest integer
percentage used, the shortest chain winning a tie.  Any other chain size
(CONFIG_ZSMALLOC_CHAIN_SIZE, 5..16, default 8 from 6.3 on) uses 6.3's
calculate_zspage_chain_size: the fewest bytes wasted, one page for a power
of two.  The two rules differ at chain 4 only for class 208 (2 pages in 6.1,
3 in a 6.3 kernel configured with 4).  Classes whose chains would have the
same pages and objects are merged into the larger one, walking from the
largest class down; the first class from the top that is not "huge" (one
object per single page) sets huge_class_size.

A zspage sits on its class's fullness list (6.1's four groups: empty, almost
empty with at most 3/4 of its objects in use, almost full, full; the ten
ratio groups of 6.4+ are not modelled): allocation takes the head of almost
full, else of almost empty, and a new zspage only when both are empty.
Pages with more objects in use go to the head of their list.  Free objects
form a LIFO list inside each zspage; a zspage whose last object is freed is
released at once.

Handles are indirect, as in the kernel (a slab word holding the object's
location), which is what lets compact() move objects: zs_compact walks the
classes from the top and, per class while zs_can_compact finds a whole
zspage's worth of unused slots, moves the live objects of the emptiest
zspage (almost empty first) into the fullest (almost full first), freeing
the source when it empties.

Reclaim is zs_reclaim_page of 6.2-6.4 (Nhat Pham's writeback series): every
allocation moves its zspage to the head of a pool LRU; reclaim takes the
tail zspage off its fullness list, marks it under reclaim and evicts its
allocated objects in index order through the owner's callback, stopping at
the first failure.  Objects freed meanwhile are not reusable until the loop
ends.  An emptied zspage is freed and 0 returned; otherwise its free list is
rebuilt in index order and it goes back to its fullness list and to the LRU
head, and the next tail is tried, `retries` times, then -EAGAIN.  An empty
LRU or no evict callback (6.1's zsmalloc zpool has no shrink: zswap passes
none there) gives -EINVAL; unlike zbud, retries 0 gives -EAGAIN, as the
kernel's loop simply never runs.
"""

import errno
from collections import OrderedDict

from ..errors import Invalid, NoMemory
from ..memory import PAGE_SHIFT, PAGE_SIZE
from .base import ReclaimTries, Zpool, register

ZS_HANDLE_SIZE = 8
ZS_MIN_ALLOC_SIZE = 32
ZS_MAX_ALLOC_SIZE = PAGE_SIZE
CLASS_BITS = 8
ZS_SIZE_CLASS_DELTA = PAGE_SIZE >> CLASS_BITS                         # 16
ZS_SIZE_CLASSES = -(-(ZS_MAX_ALLOC_SIZE - ZS_MIN_ALLOC_SIZE) // ZS_SIZE_CLASS_DELTA) + 1  # 255
CHAIN_SIZES = range(4, 17)               # CONFIG_ZSMALLOC_CHAIN_SIZE's range
DEFAULT_CHAIN_SIZE = 4                   # ZS_MAX_ZSPAGE_ORDER 2, the only choice before 6.3
FULLNESS_THRESHOLD_FRAC = 4
ZS_EMPTY, ZS_ALMOST_EMPTY, ZS_ALMOST_FULL, ZS_FULL = range(4)
PAGE_MASK = PAGE_SIZE - 1


def pages_per_zspage_6_1(class_size, max_pages):
    """get_pages_per_zspage: the chain length with the best integer used-%."""
    best_used, best_pages = 0, 1
    for pages in range(1, max_pages + 1):
        span = pages * PAGE_SIZE
        used = (span - span % class_size) * 100 // span
        if used > best_used:
            best_used, best_pages = used, pages
    return best_pages


def chain_pages_6_3(class_size, chain_size):
    """calculate_zspage_chain_size: the chain length that wastes the fewest bytes."""
    if class_size & (class_size - 1) == 0:
        return 1
    best_waste, best_pages = PAGE_SIZE, 1
    for pages in range(1, chain_size + 1):
        waste = pages * PAGE_SIZE % class_size
        if waste < best_waste:
            best_waste, best_pages = waste, pages
    return best_pages


def zspage_pages(class_size, chain_size):
    if chain_size == 4:
        return pages_per_zspage_6_1(class_size, 4)
    return chain_pages_6_3(class_size, chain_size)


def class_index(size):
    """get_size_class_index for a request that already includes the header."""
    index = 0 if size <= ZS_MIN_ALLOC_SIZE else \
        -(-(size - ZS_MIN_ALLOC_SIZE) // ZS_SIZE_CLASS_DELTA)
    return min(index, ZS_SIZE_CLASSES - 1)


# class_index(size + ZS_HANDLE_SIZE) for every size malloc accepts, 0 included.
CLASS_OF_REQUEST = [class_index(size + ZS_HANDLE_SIZE) for size in range(ZS_MAX_ALLOC_SIZE + 1)]


class SizeClass:
    __slots__ = ("index", "size", "pages_per_zspage", "objs_per_zspage", "huge",
                 "header_len", "almost_empty_max", "fullness", "zspages", "obj_used")

    def __init__(self, index, size, pages_per_zspage):
        self.index = index
        self.size = size
        self.pages_per_zspage = pages_per_zspage
        self.objs_per_zspage = pages_per_zspage * PAGE_SIZE // size
        self.huge = pages_per_zspage == 1 and self.objs_per_zspage == 1
        self.header_len = 0 if self.huge else ZS_HANDLE_SIZE    # the handle word heading an object
        self.almost_empty_max = 3 * self.objs_per_zspage // FULLNESS_THRESHOLD_FRAC
        # One OrderedDict per fullness group; the last item is the list head.
        self.fullness = [OrderedDict() for _ in range(4)]
        self.zspages = 0                 # OBJ_ALLOCATED = zspages * objs_per_zspage
        self.obj_used = 0                # OBJ_USED

    def fullness_group(self, inuse):
        if inuse == 0:
            return ZS_EMPTY
        if inuse == self.objs_per_zspage:
            return ZS_FULL
        if inuse <= self.almost_empty_max:
            return ZS_ALMOST_EMPTY
        return ZS_ALMOST_FULL

    def obj_allocated(self):
        return self.zspages * self.objs_per_zspage

    def can_compact(self):
        """zs_can_compact: pages a perfect repacking of this class would free."""
        wasted = self.obj_allocated() - self.obj_used
        return wasted // self.objs_per_zspage * self.pages_per_zspage if wasted > 0 else 0


class Zspage:
    __slots__ = ("id", "size_class", "pfns", "frames", "inuse", "free_objs", "objects", "group",
                 "under_reclaim")

    def __init__(self, zspage_id, size_class, pfns, frames):
        self.id = zspage_id
        self.size_class = size_class
        self.pfns = pfns
        self.frames = frames             # the pages' frames, in chain order
        self.inuse = 0
        self.free_objs = list(range(size_class.objs_per_zspage - 1, -1, -1))  # pop() = head
        self.objects = {}                # object index -> handle, for the allocated ones
        self.group = None                # None while off the fullness lists
        self.under_reclaim = False


@register
class ZsmallocPool(Zpool):
    name = "zsmalloc"
    options = {"chain_size": CHAIN_SIZES}

    def __init__(self, memory=None, evict=None, chain_size=DEFAULT_CHAIN_SIZE):
        super().__init__(memory, evict)
        self.chain_size = chain_size
        self.size_class = [None] * ZS_SIZE_CLASSES
        self.huge_class_size = 0
        previous = None
        for index in range(ZS_SIZE_CLASSES - 1, -1, -1):
            size = min(ZS_MIN_ALLOC_SIZE + index * ZS_SIZE_CLASS_DELTA, ZS_MAX_ALLOC_SIZE)
            pages = zspage_pages(size, chain_size)
            objs = pages * PAGE_SIZE // size
            if pages != 1 and objs != 1 and not self.huge_class_size:
                self.huge_class_size = size - (ZS_HANDLE_SIZE - 1)
            if previous and (previous.pages_per_zspage, previous.objs_per_zspage) == (pages, objs):
                self.size_class[index] = previous
                continue
            previous = self.size_class[index] = SizeClass(index, size, pages)
        self.pages_allocated = 0
        self.pages_compacted = 0
        self.handles = {}            # handle -> [zspage, object index, requested size]
        self.lru = OrderedDict()     # zspage id -> zspage; last item = LRU head
        self._next_handle = 1
        self._next_zspage = 0

    def classes(self):
        """The distinct size classes, smallest first."""
        return [c for i, c in enumerate(self.size_class) if c.index == i]

    def distinct_classes(self):
        return len(self.classes())

    def lookup_class_index(self, size):
        """zs_lookup_class_index: the index of the (merged) class serving
        `size` bytes as given, without the handle header zs_malloc adds."""
        return self.size_class[class_index(size)].index

    # -- fullness lists --------------------------------------------------

    def _insert(self, zspage, group):
        """insert_zspage: at the head, or just behind a head with more in use."""
        lst = zspage.size_class.fullness[group]
        zspage.group = group
        head = lst[next(reversed(lst))] if lst else None
        lst[zspage.id] = zspage
        if head is not None and zspage.inuse < head.inuse:
            lst.move_to_end(head.id)            # the busier head stays in front

    def _remove(self, zspage):
        """remove_zspage: take it off its fullness list."""
        del zspage.size_class.fullness[zspage.group][zspage.id]
        zspage.group = None

    def _putback(self, zspage):
        """putback_zspage: onto the list its fill calls for (none when empty)."""
        group = zspage.size_class.fullness_group(zspage.inuse)
        if group != ZS_EMPTY:
            self._insert(zspage, group)
        return group

    # -- zspages ---------------------------------------------------------

    def _alloc_zspage(self, size_class):
        memory = self.memory
        pfns = []
        try:
            for _ in range(size_class.pages_per_zspage):
                pfns.append(memory.alloc_page())
        except NoMemory:
            for pfn in pfns:
                memory.free_page(pfn)
            raise
        self.pages_allocated += size_class.pages_per_zspage
        size_class.zspages += 1
        self._next_zspage += 1
        return Zspage(self._next_zspage, size_class, pfns, [memory.frames[pfn] for pfn in pfns])

    def _free_zspage(self, zspage):
        for pfn in zspage.pfns:
            self.memory.free_page(pfn)
        self.pages_allocated -= zspage.size_class.pages_per_zspage
        zspage.size_class.zspages -= 1
        self.lru.pop(zspage.id, None)

    # -- the zpool API ---------------------------------------------------

    def malloc(self, size):
        if size <= 0 or size > ZS_MAX_ALLOC_SIZE:
            raise Invalid(f"zs_malloc of {size} bytes")
        size_class = self.size_class[CLASS_OF_REQUEST[size]]
        candidates = size_class.fullness[ZS_ALMOST_FULL] or size_class.fullness[ZS_ALMOST_EMPTY]
        if candidates:
            zspage = candidates[next(reversed(candidates))]
        else:
            zspage = self._alloc_zspage(size_class)
        handle = self._next_handle
        self._next_handle = handle + 1
        index = zspage.free_objs.pop()
        inuse = zspage.inuse = zspage.inuse + 1
        zspage.objects[index] = handle
        size_class.obj_used += 1
        group = size_class.fullness_group(inuse)
        if zspage.group is None:                # a new zspage
            self._insert(zspage, group)
            self.lru[zspage.id] = zspage
        else:
            if group != zspage.group:
                self._remove(zspage)
                self._insert(zspage, group)
            try:
                self.lru.move_to_end(zspage.id)
            except KeyError:
                self.lru[zspage.id] = zspage
        self.handles[handle] = [zspage, index, size]
        if size_class.header_len:               # the handle word heads a non-huge object
            self._write_span(zspage, index * size_class.size,
                             handle.to_bytes(ZS_HANDLE_SIZE, "little"))
        return handle

    def free(self, handle):
        zspage, index, _ = self._lookup(handle)
        del self.handles[handle]
        del zspage.objects[index]
        inuse = zspage.inuse = zspage.inuse - 1
        size_class = zspage.size_class
        size_class.obj_used -= 1
        if zspage.under_reclaim:
            return               # the slot stays unusable until reclaim is done
        zspage.free_objs.append(index)
        group = size_class.fullness_group(inuse)
        if group != zspage.group:
            self._remove(zspage)
            if group == ZS_EMPTY:
                self._free_zspage(zspage)
            else:
                self._insert(zspage, group)

    @staticmethod
    def _write_span(zspage, offset, data):
        """Copy `data` to byte `offset` of the zspage; an object lies in one
        page or straddles two."""
        frames, page, start = zspage.frames, offset >> PAGE_SHIFT, offset & PAGE_MASK
        end = start + len(data)
        if end <= PAGE_SIZE:
            frames[page][start:end] = data
        else:
            split = PAGE_SIZE - start
            frames[page][start:] = data[:split]
            frames[page + 1][:end - PAGE_SIZE] = data[split:]

    @staticmethod
    def _read_span(zspage, offset, length):
        """The bytes at `offset`: a view of the frame when they lie in one
        page, a copy of both parts when they straddle two (as zs_map_object
        copies such an object out to a per-CPU buffer)."""
        frames, page, start = zspage.frames, offset >> PAGE_SHIFT, offset & PAGE_MASK
        end = start + length
        if end <= PAGE_SIZE:
            return frames[page][start:end]
        return b"".join((frames[page][start:], frames[page + 1][:end - PAGE_SIZE]))

    def _lookup(self, handle):
        entry = self.handles.get(handle)
        if entry is None:
            raise Invalid(f"handle {handle} is not in this pool")
        return entry

    def write(self, handle, data):
        zspage, index, size = self._lookup(handle)
        if len(data) > size:
            raise Invalid(f"write of {len(data)} bytes into a {size}-byte object")
        size_class = zspage.size_class
        self._write_span(zspage, index * size_class.size + size_class.header_len, data)

    def map(self, handle):
        zspage, index, size = self._lookup(handle)
        size_class = zspage.size_class
        return self._read_span(zspage, index * size_class.size + size_class.header_len, size)

    def total_pages(self):
        return self.pages_allocated

    # -- reclaim (6.2-6.4) -----------------------------------------------

    def reclaim_page(self, retries):
        self.reclaim_calls += 1
        if self.evict is None or not self.lru:
            return -errno.EINVAL
        lru = self.lru
        tries = ReclaimTries(self, retries)
        while tries.take(next(iter(lru))):
            _, zspage = lru.popitem(last=False)           # the LRU tail
            self.reclaim_pages_scanned += 1
            zspage.under_reclaim = True
            self._remove(zspage)
            # In index order; a callback may free later objects, but nothing
            # can be allocated here (the zspage is on no fullness list).
            for index in sorted(zspage.objects):
                handle = zspage.objects.get(index)
                if handle is not None and self._call_evict(handle):
                    break
            zspage.under_reclaim = False
            if zspage.inuse == 0:
                self._free_zspage(zspage)
                return 0
            # restore_freelist: every free slot, lowest index at the head.
            zspage.free_objs = [i for i in range(zspage.size_class.objs_per_zspage - 1, -1, -1)
                                if i not in zspage.objects]
            self._putback(zspage)
            lru[zspage.id] = zspage                      # back at the head
            tries.put_back(zspage.id)
        return -errno.EAGAIN

    def _reclaim_order(self):
        # Free lists are rebuilt in index order by every try, so after a
        # round they cannot differ; the fullness lists can.
        return tuple(self.lru), tuple(tuple(group) for size_class in self.classes()
                                      for group in size_class.fullness)

    # -- compaction ------------------------------------------------------

    def compact(self):
        """zs_compact: repack every class; returns the pages freed."""
        freed = 0
        for size_class in reversed(self.classes()):
            freed += self._compact_class(size_class)
        self.pages_compacted += freed
        return freed

    def _isolate(self, size_class, source):
        """isolate_zspage: a source is the emptiest, a destination the fullest."""
        groups = (ZS_ALMOST_EMPTY, ZS_ALMOST_FULL) if source else (ZS_ALMOST_FULL, ZS_ALMOST_EMPTY)
        for group in groups:
            candidates = size_class.fullness[group]
            if candidates:
                zspage = candidates[next(reversed(candidates))]
                self._remove(zspage)
                return zspage
        return None

    def _compact_class(self, size_class):
        """__zs_compact for one class."""
        freed = 0
        while (src := self._isolate(size_class, source=True)) is not None:
            if not size_class.can_compact():
                break
            while (dst := self._isolate(size_class, source=False)) is not None:
                if not self._migrate(src, dst):
                    break                                  # src has no objects left
                self._putback(dst)                         # dst is full: try another
            if dst is None:
                break
            self._putback(dst)
            if self._putback(src) == ZS_EMPTY:
                self._free_zspage(src)
                freed += size_class.pages_per_zspage
            src = None
        if src is not None:
            self._putback(src)
        return freed

    def _migrate(self, src, dst):
        """migrate_zspage: move src's objects in index order into dst's free
        slots (its free list head first); True if dst filled up first."""
        size = src.size_class.size
        for index in sorted(src.objects):
            if dst.inuse == dst.size_class.objs_per_zspage:
                return True
            handle = src.objects.pop(index)
            slot = dst.free_objs.pop()
            self._write_span(dst, slot * size, self._read_span(src, index * size, size))
            dst.objects[slot] = handle
            dst.inuse += 1
            src.free_objs.append(index)
            src.inuse -= 1
            self.handles[handle][:2] = [dst, slot]
        return False

    # -- reports ---------------------------------------------------------

    def class_stats(self):
        """The rows of the kernel's debugfs `classes` file (6.1 columns)."""
        rows = []
        for c in self.classes():
            obj_allocated = c.obj_allocated()
            rows.append({
                "class": c.index, "size": c.size,
                "almost_full": len(c.fullness[ZS_ALMOST_FULL]),
                "almost_empty": len(c.fullness[ZS_ALMOST_EMPTY]),
                "obj_allocated": obj_allocated, "obj_used": c.obj_used,
                "pages_used": obj_allocated // c.objs_per_zspage * c.pages_per_zspage,
                "pages_per_zspage": c.pages_per_zspage,
                "freeable": c.can_compact(),
            })
        return rows

    def check(self):
        """Audit every zspage against its class, lists and the handle table;
        raise PoolCorrupted naming the first inconsistency."""
        corrupted = self._corrupted
        zspages = {entry[0].id: entry[0] for entry in self.handles.values()}
        if set(zspages) != set(self.lru):
            corrupted("LRU holds exactly the live zspages: "
                      f"{len(self.lru)} LRU entries for {len(zspages)} zspages")
        pages = 0
        for c in self.classes():
            listed = [z for group in c.fullness for z in group.values()]
            if len(listed) != c.zspages:
                corrupted(f"class {c.size}: {len(listed)} zspages listed, {c.zspages} counted")
            in_use = sum(z.inuse for z in listed)
            if in_use != c.obj_used:
                corrupted(f"class {c.size}: obj_used {c.obj_used}, {in_use} objects in use")
            for z in listed:
                if c.fullness[z.group].get(z.id) is not z or z.size_class is not c:
                    corrupted(f"zspage {z.id}: not on class {c.size}'s list {z.group}")
                if z.group != c.fullness_group(z.inuse):
                    corrupted(f"zspage {z.id}: group {z.group} for {z.inuse} objects in use")
                if not z.inuse == len(z.objects) > 0:
                    corrupted(f"zspage {z.id}: inuse {z.inuse}, {len(z.objects)} objects")
                free = set(z.free_objs)
                if len(free) != len(z.free_objs) or free & set(z.objects) \
                        or len(free) + z.inuse != c.objs_per_zspage:
                    corrupted(f"zspage {z.id}: free slots {sorted(z.free_objs)}, "
                              f"objects at {sorted(z.objects)}")
                for index, handle in z.objects.items():
                    if self.handles[handle][:2] != [z, index]:
                        corrupted(f"zspage {z.id}: the handle of object {index} "
                                  "names another slot")
                if not len(z.frames) == len(z.pfns) == c.pages_per_zspage or any(
                        frame is not self.memory.frames[pfn]
                        for frame, pfn in zip(z.frames, z.pfns)):
                    corrupted(f"zspage {z.id}: frames are not its pages'")
                if z.id not in self.lru:
                    corrupted(f"zspage {z.id}: not on the LRU")
            pages += c.zspages * c.pages_per_zspage
        if pages != self.pages_allocated:
            corrupted(f"pages_allocated {self.pages_allocated}, the zspages hold {pages}")

    def lru_zspages(self):
        """Zspages from the LRU head (newest) to the tail."""
        return list(reversed(self.lru.values()))

    def lru_zspage_ids(self):
        """Zspage ids from the LRU head (newest) to the tail."""
        return list(reversed(self.lru))

    def locate(self, handle):
        """(zspage id, object index) of a live object."""
        zspage, index, _ = self._lookup(handle)
        return zspage.id, index
