"""z3fold: up to three compressed objects per page, as mm/z3fold.c of Linux
6.1 lays them out, with the page LRU and reclaim it had until 6.5.

A z3fold page is cut into TOTAL_CHUNKS = 64 chunks of 64 bytes.  The page's
header (struct z3fold_header) fills the first ZHDR_CHUNKS of them; the kernel
comment says one chunk, but the struct has grown past 64 bytes, so on x86_64
it takes two (worked out at ZHDR_SIZE below), leaving NCHUNKS = 62 for data.
The fidelity sets agree: one header chunk gives pool sizes 2 % too small.
The FIRST object sits left-justified right after the header, the LAST one
right-justified against the page end, and a MIDDLE one starts right after
FIRST.  An object too big to share (over PAGE_SIZE - header - one chunk, that
is 3904 bytes) gets a HEADLESS page of its own; over PAGE_SIZE is -ENOSPC.

Pages with a free slot wait on unbuddied[num_free_chunks]; with a middle
object that count is the larger gap beside it, not the sum.  An allocation of
n chunks takes the head of the first non-empty list from n upward;
get_free_buddy picks the slot.  The kernel keeps these lists per CPU; the
fidelity kernel had one vCPU, so there is one set.  Every allocation moves
its page to the head of the pool LRU.

Handles are indirect in the kernel (a slot that names page and buddy), so an
object can move and keep its handle.  Here a handle is an opaque number
mapped to (page, buddy); it is never reused.  Objects move in two ways, both
on free.  z3fold_free queues a compaction work item for the page; we run it
at once, as if the workqueue got the CPU before the next call.  The work
first tries compact_single_buddy: a page left with one object copies it into
another listed page (no new page is taken) and is freed, the moved handle
then being "foreign" in its new page.  Otherwise z3fold_compact_page moves a
middle object: to FIRST if the page has no first or last, or down next to
FIRST / up next to LAST when that closes a gap of BIG_CHUNK_GAP chunks.
Pages that hold foreign handles are never compacted away and never
reclaimed.  Freed pages leave pages_nr at once; 6.1 no longer reuses stale
pages for allocation (Miaohe Lin's 2022 fixes).

reclaim_page(retries) takes the LRU tail (skipping pages with foreign
handles), claims it and evicts MIDDLE, FIRST, LAST through the owner's
callback, stopping at the first failure.  A free of a claimed page only
clears the buddy's size (a headless one does nothing); the reclaim loop then
frees the page and returns 0 once every object is gone (a headless page as
soon as its callback returns 0).  Otherwise the page goes back to the LRU
head and to its unbuddied list, uncompacted, and the next tail is tried, up
to `retries` pages, then -EAGAIN.
"""

import errno
from ..errors import Invalid, NoSpace
from ..memory import PAGE_SHIFT, PAGE_SIZE
from .base import PagePool, ReclaimTries, UnbuddiedLists, register

NCHUNKS_ORDER = 6
CHUNK_SHIFT = PAGE_SHIFT - NCHUNKS_ORDER
CHUNK_SIZE = 1 << CHUNK_SHIFT                          # 64
# sizeof(struct z3fold_header) on x86_64 without lock debugging: list_head
# buddy 16, spinlock_t page_lock 4, kref refcount 4, work_struct work 32
# (data 8, list_head 16, func 8), slots 8, pool 8 (offset 72), short cpu 2,
# four unsigned short 8, the first_num/mapped_count/foreign_handles bit
# fields 2: 84 bytes, padded to the pointers' 8-byte alignment.
ZHDR_SIZE = 88
ZHDR_SIZE_ALIGNED = -(-ZHDR_SIZE // CHUNK_SIZE) * CHUNK_SIZE   # 128
ZHDR_CHUNKS = ZHDR_SIZE_ALIGNED >> CHUNK_SHIFT         # 2
TOTAL_CHUNKS = PAGE_SIZE >> CHUNK_SHIFT                # 64
NCHUNKS = TOTAL_CHUNKS - ZHDR_CHUNKS                   # 62
MAX_SHARED_SIZE = PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE  # 3904: larger is headless
BIG_CHUNK_GAP = 3

HEADLESS, FIRST, MIDDLE, LAST = 0, 1, 2, 3
BUDDY_NAMES = ("headless", "first", "middle", "last")


def size_to_chunks(size):
    return (size + CHUNK_SIZE - 1) >> CHUNK_SHIFT


class Z3foldHeader:
    """struct z3fold_header of one pool page, plus the handle in each slot
    and the page's frame (Memory's memoryview of it)."""

    __slots__ = ("pfn", "headless", "first_chunks", "middle_chunks", "last_chunks",
                 "start_middle", "foreign_handles", "claimed", "buddy_list", "handles", "frame")

    def __init__(self, pfn, headless=False, frame=None):
        self.pfn = pfn
        self.headless = headless
        self.first_chunks = 0
        self.middle_chunks = 0
        self.last_chunks = 0
        self.start_middle = 0
        self.foreign_handles = 0    # objects moved in from another page
        self.claimed = False        # PAGE_CLAIMED by reclaim
        self.buddy_list = None      # the unbuddied list it is on
        self.handles = [0, 0, 0, 0]  # handle per buddy kind, 0 if none
        self.frame = frame

    def chunks(self, bud):
        if bud == FIRST:
            return self.first_chunks
        if bud == MIDDLE:
            return self.middle_chunks
        return self.last_chunks

    def set_chunks(self, bud, chunks):
        if bud == FIRST:
            self.first_chunks = chunks
        elif bud == MIDDLE:
            self.middle_chunks = chunks
            self.start_middle = self.first_chunks + ZHDR_CHUNKS if chunks else 0
        else:
            self.last_chunks = chunks

    def is_empty(self):
        return not (self.first_chunks or self.middle_chunks or self.last_chunks)

    def buddy_single(self):
        """At most one object in the page."""
        return bool(self.first_chunks) + bool(self.middle_chunks) + bool(self.last_chunks) <= 1

    def num_free_chunks(self):
        if self.middle_chunks:
            before = 0 if self.first_chunks else self.start_middle - ZHDR_CHUNKS
            after = 0 if self.last_chunks else \
                TOTAL_CHUNKS - (self.start_middle + self.middle_chunks)
            return max(before, after)
        return NCHUNKS - self.first_chunks - self.last_chunks

    def get_free_buddy(self, chunks):
        """The slot a new object of `chunks` takes; HEADLESS if none fits."""
        if self.middle_chunks:
            if not self.first_chunks and chunks <= self.start_middle - ZHDR_CHUNKS:
                return FIRST
            return LAST if not self.last_chunks else HEADLESS
        if not self.first_chunks:
            return FIRST
        return LAST if not self.last_chunks else MIDDLE

    def offset(self, bud):
        """Byte offset of a buddy in the page (z3fold_map)."""
        if bud == HEADLESS:
            return 0
        if bud == FIRST:
            return ZHDR_SIZE_ALIGNED
        if bud == MIDDLE:
            return self.start_middle << CHUNK_SHIFT
        return PAGE_SIZE - (self.last_chunks << CHUNK_SHIFT)


class Z3foldObject:
    """Where a handle's object lives now (its page, slot and byte offset
    there, kept in step when it moves), and the size malloc was asked for."""

    __slots__ = ("zhdr", "bud", "offset", "size", "foreign")

    def __init__(self, zhdr, bud, offset, size):
        self.zhdr = zhdr
        self.bud = bud
        self.offset = offset
        self.size = size
        self.foreign = False


@register
class Z3foldPool(PagePool):
    name = "z3fold"

    def __init__(self, memory=None, evict=None):
        super().__init__(memory, evict)   # pages: pfn -> Z3foldHeader; len() is pages_nr
        self.objects = {}                 # handle -> Z3foldObject
        self._last_handle = 0
        self.unbuddied = UnbuddiedLists(NCHUNKS)

    # -- lists and pages -------------------------------------------------

    def _list_del(self, zhdr):
        if zhdr.buddy_list is not None:
            del zhdr.buddy_list[zhdr.pfn]
            zhdr.buddy_list = None

    def _add_to_unbuddied(self, zhdr):
        if zhdr.first_chunks and zhdr.middle_chunks and zhdr.last_chunks:
            return                              # no free slot: on no list
        self.unbuddied.add(zhdr, zhdr.num_free_chunks())

    def _new_page(self, headless):
        pfn = self.memory.alloc_page()              # NoMemory propagates
        self.pages[pfn] = zhdr = Z3foldHeader(pfn, headless, self.memory.frames[pfn])
        return zhdr

    def _release_page(self, zhdr):
        self._list_del(zhdr)
        self.lru.pop(zhdr.pfn, None)
        del self.pages[zhdr.pfn]
        self.memory.free_page(zhdr.pfn)

    def _move(self, src, src_bud, dst, dst_bud, nbytes):
        """Copy a buddy's chunks to a new place (memmove: it may overlap
        the old one) and repoint its handle."""
        handle = src.handles[src_bud]
        src.handles[src_bud] = 0
        dst.handles[dst_bud] = handle
        obj = self.objects[handle]
        src_off, dst_off = obj.offset, dst.offset(dst_bud)
        dst.frame[dst_off:dst_off + nbytes] = src.frame[src_off:src_off + nbytes]
        obj.zhdr, obj.bud, obj.offset = dst, dst_bud, dst_off
        return obj

    # -- compaction (the work z3fold_free queues) -------------------------

    def _do_compact_page(self, zhdr):
        self._list_del(zhdr)
        if not zhdr.foreign_handles and zhdr.buddy_single() and self._compact_single_buddy(zhdr):
            self._release_page(zhdr)
            return
        if zhdr.middle_chunks:
            self._compact_page(zhdr)
        self._add_to_unbuddied(zhdr)

    def _compact_single_buddy(self, zhdr):
        """Copy the page's only object into another listed page; True if moved."""
        bud = FIRST if zhdr.first_chunks else MIDDLE if zhdr.middle_chunks else LAST
        chunks = zhdr.chunks(bud)
        new = self.unbuddied.take(chunks)            # __z3fold_alloc
        if new is None:
            return False
        new_bud = new.get_free_buddy(chunks)
        new.set_chunks(new_bud, chunks)
        obj = self._move(zhdr, bud, new, new_bud, chunks << CHUNK_SHIFT)
        obj.foreign = True
        new.foreign_handles += 1
        self._add_to_unbuddied(new)
        zhdr.set_chunks(bud, 0)
        return True

    def _compact_page(self, zhdr):
        """z3fold_compact_page: move the middle object if that makes room."""
        middle = zhdr.middle_chunks
        nbytes = middle << CHUNK_SHIFT
        if not zhdr.first_chunks and not zhdr.last_chunks:
            self._move(zhdr, MIDDLE, zhdr, FIRST, nbytes)
            zhdr.first_chunks, zhdr.middle_chunks, zhdr.start_middle = middle, 0, 0
        elif (zhdr.first_chunks and not zhdr.last_chunks
              and zhdr.start_middle - (zhdr.first_chunks + ZHDR_CHUNKS) >= BIG_CHUNK_GAP):
            self._slide_middle(zhdr, zhdr.first_chunks + ZHDR_CHUNKS, nbytes)
        elif (zhdr.last_chunks and not zhdr.first_chunks
              and TOTAL_CHUNKS - (zhdr.last_chunks + zhdr.start_middle + middle)
              >= BIG_CHUNK_GAP):
            self._slide_middle(zhdr, TOTAL_CHUNKS - zhdr.last_chunks - middle, nbytes)

    def _slide_middle(self, zhdr, new_start, nbytes):
        frame = zhdr.frame
        src, dst = zhdr.start_middle << CHUNK_SHIFT, new_start << CHUNK_SHIFT
        frame[dst:dst + nbytes] = frame[src:src + nbytes]
        zhdr.start_middle = new_start
        self.objects[zhdr.handles[MIDDLE]].offset = dst

    # -- the zpool API ---------------------------------------------------

    def malloc(self, size):
        if size <= 0:
            raise Invalid("z3fold_alloc of size 0")
        if size > PAGE_SIZE:
            raise NoSpace(f"z3fold_alloc of {size} bytes > {PAGE_SIZE}")
        if size > MAX_SHARED_SIZE:
            zhdr = self._new_page(headless=True)
            bud, offset = HEADLESS, 0
            self.lru[zhdr.pfn] = zhdr
        else:
            chunks = size_to_chunks(size)
            zhdr = self.unbuddied.take(chunks)      # __z3fold_alloc
            if zhdr is None:
                zhdr = self._new_page(headless=False)
                bud, offset = FIRST, ZHDR_SIZE_ALIGNED
                zhdr.first_chunks = chunks
                self.lru[zhdr.pfn] = zhdr
            else:
                # A listed page always has a slot for what its list
                # promises, so this is never HEADLESS.
                bud = zhdr.get_free_buddy(chunks)
                zhdr.set_chunks(bud, chunks)
                offset = zhdr.offset(bud)
                try:
                    self.lru.move_to_end(zhdr.pfn)
                except KeyError:
                    self.lru[zhdr.pfn] = zhdr
            self._add_to_unbuddied(zhdr)

        self._last_handle = handle = self._last_handle + 1
        self.objects[handle] = Z3foldObject(zhdr, bud, offset, size)
        zhdr.handles[bud] = handle
        return handle

    def _object(self, handle):
        obj = self.objects.get(handle)
        if obj is None:
            raise Invalid(f"handle {handle:#x} names no live object in this pool")
        return obj

    def free(self, handle):
        obj = self._object(handle)
        zhdr = obj.zhdr
        if zhdr.headless:
            if zhdr.claimed:
                return                  # reclaim frees the page if evict succeeds
            del self.objects[handle]
            self._release_page(zhdr)
            return
        del self.objects[handle]
        zhdr.set_chunks(obj.bud, 0)
        zhdr.handles[obj.bud] = 0
        if zhdr.claimed:
            return                      # the reclaim loop finishes the job
        if obj.foreign:
            zhdr.foreign_handles -= 1
        if zhdr.is_empty():
            self._release_page(zhdr)
        else:
            self._do_compact_page(zhdr)

    def _extent(self, handle):
        obj = self._object(handle)
        return obj.zhdr.frame, obj.offset, obj.size

    def reclaim_page(self, retries):
        self.reclaim_calls += 1
        # The kernel tests for an empty LRU before every try, but a try
        # that fails puts its page back, so only the first can find none.
        if self.evict is None or retries <= 0 or not self.lru:
            return -errno.EINVAL
        lru = self.lru
        tries = ReclaimTries(self, retries)
        while (zhdr := self._evictable_tail()) is not None and tries.take(zhdr.pfn):
            del lru[zhdr.pfn]
            self._list_del(zhdr)
            self.reclaim_pages_scanned += 1         # pages claimed, not those skipped
            zhdr.claimed = True
            # The handles are taken before any callback runs, as the kernel
            # encodes them under the page lock; an empty slot's handle is 0.
            slots = zhdr.handles
            if zhdr.headless:
                handles = [slots[HEADLESS]]
            else:
                handles = [slots[bud] for bud in (MIDDLE, FIRST, LAST) if slots[bud]]
            ret = 0
            for handle in handles:
                ret = self._call_evict(handle)
                if ret:
                    break
            zhdr.claimed = False
            if zhdr.headless:
                if ret == 0:
                    del self.objects[handles[0]]
                    self._release_page(zhdr)
                    return 0
            elif zhdr.is_empty():
                self._release_page(zhdr)
                return 0
            else:
                self._add_to_unbuddied(zhdr)
            lru[zhdr.pfn] = zhdr                    # back at the head
            tries.put_back(zhdr.pfn)
        return -errno.EAGAIN

    def _evictable_tail(self):
        """The page nearest the LRU tail that reclaim may take: pages
        holding foreign handles cannot be evicted.  None if there is none."""
        for zhdr in self.lru.values():
            if zhdr.headless or not zhdr.foreign_handles:
                return zhdr
        return None

    def _reclaim_order(self):
        return tuple(self.lru), self.unbuddied.order()

    def check(self):
        """Audit every page against its header, the handle table, its
        unbuddied list, the LRU and the Memory; raise PoolCorrupted naming
        the first inconsistency.  Call it between pool calls, not from an
        evict callback (a claimed page is off its lists)."""
        corrupted = self._corrupted
        self._check_frames()
        objects = listed = 0
        for pfn, zhdr in self.pages.items():
            if zhdr.pfn != pfn:
                corrupted(f"page {pfn}: its header says page {zhdr.pfn}")
            if zhdr.claimed:
                corrupted(f"page {pfn}: claimed outside reclaim_page")
            if zhdr.frame is not self.memory.frames[pfn]:
                corrupted(f"page {pfn}: another page's frame")
            # The chunks each part takes: the header (none when headless) and
            # every object from its offset; none may overlap another.
            extents = [] if zhdr.headless else [(0, ZHDR_SIZE_ALIGNED, "header")]
            in_page = foreign = 0
            stale = []
            for bud in (HEADLESS, FIRST, MIDDLE, LAST):
                name, handle = BUDDY_NAMES[bud], zhdr.handles[bud]
                used = zhdr.headless if bud == HEADLESS else zhdr.chunks(bud) > 0
                if bool(handle) != used:
                    corrupted(f"page {pfn}: {name} slot's handle vs its chunks")
                if not handle:
                    continue
                obj = self.objects.get(handle)
                if obj is None or obj.zhdr is not zhdr or obj.bud != bud:
                    corrupted(f"page {pfn}: {name} handle {handle} names another place")
                chunks = size_to_chunks(obj.size)
                if not (MAX_SHARED_SIZE < obj.size <= PAGE_SIZE if bud == HEADLESS else
                        0 < obj.size <= MAX_SHARED_SIZE and chunks == zhdr.chunks(bud)):
                    corrupted(f"page {pfn}: {name} object of {obj.size} bytes "
                              "does not fit its slot")
                start = zhdr.offset(bud)
                extents.append((start, start + (chunks << CHUNK_SHIFT), name))
                if obj.offset != start:
                    stale.append(name)
                in_page += 1
                foreign += obj.foreign
            if not in_page:
                corrupted(f"page {pfn}: empty but held")
            objects += in_page
            self._check_disjoint(pfn, extents)
            if foreign != zhdr.foreign_handles:
                corrupted(f"page {pfn}: foreign_handles {zhdr.foreign_handles}, "
                          f"{foreign} objects moved in")
            if stale:
                corrupted(f"page {pfn}: the {', '.join(stale)} handle's offset is stale")
            if zhdr.headless or (zhdr.first_chunks and zhdr.middle_chunks and zhdr.last_chunks):
                if zhdr.buddy_list is not None:
                    corrupted(f"page {pfn}: on a list with no free slot")
            else:
                free_chunks = zhdr.num_free_chunks()
                expected = self.unbuddied[free_chunks]
                if zhdr.buddy_list is not expected or expected.get(pfn) is not zhdr:
                    corrupted(f"page {pfn}: not on unbuddied[{free_chunks}]")
                listed += 1
            if self.lru.get(pfn) is not zhdr:
                corrupted(f"page {pfn}: not on the LRU")
        if objects != len(self.objects):
            corrupted(f"{len(self.objects)} handles for {objects} objects in the pages")
        if sum(map(len, self.unbuddied)) != listed:
            corrupted(f"{sum(map(len, self.unbuddied))} unbuddied entries for {listed} pages")
        self.unbuddied.check(corrupted)
        if len(self.lru) != len(self.pages):
            corrupted(f"{len(self.lru)} LRU entries for {len(self.pages)} pages")

    # -- introspection for tests and reports -----------------------------

    def unbuddied_pfns(self, free_chunks):
        """Pages on unbuddied[free_chunks], head first."""
        return list(reversed(self.unbuddied[free_chunks]))

    def locate(self, handle):
        """(pfn, buddy name, byte offset in the frame) of a live object."""
        obj = self._object(handle)
        return obj.zhdr.pfn, BUDDY_NAMES[obj.bud], obj.offset

    def layout(self, pfn):
        """A page's header fields; free_chunks is None for a headless page."""
        zhdr = self.pages[pfn]
        return {"headless": zhdr.headless, "first": zhdr.first_chunks,
                "middle": zhdr.middle_chunks, "start_middle": zhdr.start_middle,
                "last": zhdr.last_chunks, "foreign_handles": zhdr.foreign_handles,
                "free_chunks": None if zhdr.headless else zhdr.num_free_chunks()}
