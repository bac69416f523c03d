"""zbud: at most two compressed objects ("buddies") per page, as mm/zbud.c
of Linux 3.11 to 6.4 lays them out, with the LRU reclaim it had until 6.5.

A zbud page is cut into 64 chunks of 64 bytes.  The first chunk holds the
page's header, leaving NCHUNKS = 63 for data.  The first buddy sits
left-justified right after the header, the last buddy right-justified
against the page end, and the free space between them can take one more
object of up to that many chunks.  Handles are addresses: the page's address
plus the buddy's offset, so the first buddy's handle is always page + 64.

Pages with one free buddy wait on unbuddied[free chunks]; an allocation of
n chunks takes the head of the first non-empty list from n upward (the
kernel's "best fit"), and pages are added at the head.  Full pages sit on the
buddied list.  Every allocation moves its page to the head of the pool LRU;
reclaim_page takes the tail, marks it under reclaim and evicts its buddies
through the owner's callback, the semantics of the zbud v11 patch that
mainline kept: the page is freed and 0 returned once both buddies are gone,
otherwise the page goes back to its list and to the LRU head and the next
tail is tried, up to `retries` pages, then -EAGAIN.  A free that hits a page
under reclaim only clears the buddy's size; the reclaim loop frees the page.

The simple layout buys predictable reclaim (a page empties after at most two
evictions) at the price of density: never better than two objects a page.
"""

import errno

from ..errors import Invalid, NoSpace
from ..memory import PAGE_SHIFT, PAGE_SIZE
from .base import PagePool, ReclaimTries, UnbuddiedLists, register

NCHUNKS_ORDER = 6
CHUNK_SHIFT = PAGE_SHIFT - NCHUNKS_ORDER
CHUNK_SIZE = 1 << CHUNK_SHIFT                          # 64
ZHDR_SIZE_ALIGNED = CHUNK_SIZE                         # the header's chunk
NCHUNKS = (PAGE_SIZE - ZHDR_SIZE_ALIGNED) >> CHUNK_SHIFT   # 63
MAX_ALLOC_SIZE = PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE  # 3968
PAGE_MASK = PAGE_SIZE - 1

FIRST, LAST = 0, 1


def size_to_chunks(size):
    return (size + CHUNK_SIZE - 1) >> CHUNK_SHIFT


class ZbudHeader:
    """struct zbud_header, plus the requested sizes so read() can return them."""

    __slots__ = ("pfn", "first_chunks", "last_chunks", "first_size", "last_size",
                 "under_reclaim", "buddy_list")

    def __init__(self, pfn):
        self.pfn = pfn
        self.first_chunks = 0
        self.last_chunks = 0
        self.first_size = 0
        self.last_size = 0
        self.under_reclaim = False
        self.buddy_list = None      # the unbuddied or buddied list it is on

    def num_free_chunks(self):
        return NCHUNKS - self.first_chunks - self.last_chunks


@register
class ZbudPool(PagePool):
    name = "zbud"

    def __init__(self, memory=None, evict=None):
        super().__init__(memory, evict)   # pages: pfn -> ZbudHeader
        self.unbuddied = UnbuddiedLists(NCHUNKS)
        self.buddied = {}                 # as an unbuddied list: the last item is the head

    # -- helpers ---------------------------------------------------------

    @staticmethod
    def encode_handle(zhdr, bud):
        base = zhdr.pfn << PAGE_SHIFT
        if bud == FIRST:
            return base + ZHDR_SIZE_ALIGNED
        return base + PAGE_SIZE - (zhdr.last_chunks << CHUNK_SHIFT)

    def _header(self, handle):
        zhdr = self.pages.get(handle >> PAGE_SHIFT)
        if zhdr is None:
            raise Invalid(f"handle {handle:#x} is not in this pool")
        return zhdr

    def _list_add(self, zhdr, buddy_list):
        buddy_list[zhdr.pfn] = zhdr
        zhdr.buddy_list = buddy_list

    def _list_del(self, zhdr):
        del zhdr.buddy_list[zhdr.pfn]
        zhdr.buddy_list = None

    def _relist(self, zhdr):
        """Put a page with at least one buddy on the list its fill calls for."""
        if zhdr.first_chunks == 0 or zhdr.last_chunks == 0:
            self.unbuddied.add(zhdr, zhdr.num_free_chunks())
        else:
            self._list_add(zhdr, self.buddied)

    def _free_page(self, zhdr):
        del self.pages[zhdr.pfn]
        self.memory.free_page(zhdr.pfn)

    # -- the zpool API ---------------------------------------------------

    def malloc(self, size):
        if size <= 0:
            raise Invalid("zbud_alloc of size 0")
        if size > MAX_ALLOC_SIZE:
            raise NoSpace(f"zbud_alloc of {size} bytes > {MAX_ALLOC_SIZE}")
        chunks = size_to_chunks(size)
        zhdr = self.unbuddied.take(chunks)
        if zhdr is not None:
            bud = FIRST if zhdr.first_chunks == 0 else LAST
        else:
            pfn = self.memory.alloc_page()          # NoMemory propagates
            zhdr = self.pages[pfn] = ZbudHeader(pfn)
            bud = FIRST

        if bud == FIRST:
            zhdr.first_chunks, zhdr.first_size = chunks, size
        else:
            zhdr.last_chunks, zhdr.last_size = chunks, size
        self._relist(zhdr)

        lru = self.lru
        if zhdr.pfn in lru:
            lru.move_to_end(zhdr.pfn)
        else:
            lru[zhdr.pfn] = zhdr
        return self.encode_handle(zhdr, bud)

    def free(self, handle):
        zhdr = self._header(handle)
        if (handle - ZHDR_SIZE_ALIGNED) & PAGE_MASK:
            zhdr.last_chunks = zhdr.last_size = 0
        else:
            zhdr.first_chunks = zhdr.first_size = 0
        if zhdr.under_reclaim:
            return                      # the reclaim loop finishes the job
        self._list_del(zhdr)
        if zhdr.first_chunks == 0 and zhdr.last_chunks == 0:
            del self.lru[zhdr.pfn]
            self._free_page(zhdr)
        else:
            self.unbuddied.add(zhdr, zhdr.num_free_chunks())

    def _extent(self, handle):
        """(frame, offset, size) of a live object."""
        zhdr = self._header(handle)
        offset = handle & PAGE_MASK
        if offset == ZHDR_SIZE_ALIGNED and zhdr.first_chunks:
            size = zhdr.first_size
        elif zhdr.last_chunks and offset == PAGE_SIZE - (zhdr.last_chunks << CHUNK_SHIFT):
            size = zhdr.last_size
        else:
            raise Invalid(f"handle {handle:#x} names no live buddy")
        return self.memory.frames[zhdr.pfn], offset, size

    def reclaim_page(self, retries):
        self.reclaim_calls += 1
        if self.evict is None or not self.lru or retries <= 0:
            return -errno.EINVAL
        lru = self.lru
        tries = ReclaimTries(self, retries)
        while tries.take(next(iter(lru))):
            _, zhdr = lru.popitem(last=False)            # the LRU tail
            self.reclaim_pages_scanned += 1
            self._list_del(zhdr)
            zhdr.under_reclaim = True
            first_handle = self.encode_handle(zhdr, FIRST) if zhdr.first_chunks else 0
            last_handle = self.encode_handle(zhdr, LAST) if zhdr.last_chunks else 0
            ret = 0
            if first_handle:
                ret = self._call_evict(first_handle)
            if ret == 0 and last_handle:
                self._call_evict(last_handle)
            zhdr.under_reclaim = False
            if zhdr.first_chunks == 0 and zhdr.last_chunks == 0:
                self._free_page(zhdr)
                return 0
            self._relist(zhdr)
            lru[zhdr.pfn] = zhdr                          # back at the head
            tries.put_back(zhdr.pfn)
        return -errno.EAGAIN

    def _reclaim_order(self):
        return tuple(self.lru), tuple(self.buddied), self.unbuddied.order()

    def check(self):
        """Audit every page against its header, its list, the LRU and the
        Memory; raise PoolCorrupted naming the first inconsistency.  Call it
        between pool calls, not from an evict callback (a page under reclaim
        is off its lists)."""
        corrupted = self._corrupted
        self._check_frames()
        for pfn, zhdr in self.pages.items():
            if zhdr.pfn != pfn:
                corrupted(f"page {pfn}: its header says page {zhdr.pfn}")
            if zhdr.under_reclaim:
                corrupted(f"page {pfn}: under reclaim outside reclaim_page")
            for name, chunks, size in (("first", zhdr.first_chunks, zhdr.first_size),
                                       ("last", zhdr.last_chunks, zhdr.last_size)):
                if not 0 <= size <= MAX_ALLOC_SIZE or size_to_chunks(size) != chunks:
                    corrupted(f"page {pfn}: {name} buddy of {size} bytes in {chunks} chunks")
            if not (zhdr.first_chunks or zhdr.last_chunks):
                corrupted(f"page {pfn}: empty but held")
            # The chunks each part takes: header, first buddy after it, last
            # buddy against the page end; none may overlap another.
            first_end = ZHDR_SIZE_ALIGNED + (zhdr.first_chunks << CHUNK_SHIFT)
            last_start = PAGE_SIZE - (zhdr.last_chunks << CHUNK_SHIFT)
            self._check_disjoint(pfn, [extent for extent in (
                (0, ZHDR_SIZE_ALIGNED, "header"), (ZHDR_SIZE_ALIGNED, first_end, "first"),
                (last_start, PAGE_SIZE, "last")) if extent[0] < extent[1]])
            if zhdr.first_chunks and zhdr.last_chunks:
                expected, which = self.buddied, "buddied"
            else:
                free_chunks = zhdr.num_free_chunks()
                expected, which = self.unbuddied[free_chunks], f"unbuddied[{free_chunks}]"
            if zhdr.buddy_list is not expected or expected.get(pfn) is not zhdr:
                corrupted(f"page {pfn}: not on {which}")
            if self.lru.get(pfn) is not zhdr:
                corrupted(f"page {pfn}: not on the LRU")
        listed = len(self.buddied) + sum(map(len, self.unbuddied))
        if listed != len(self.pages):
            corrupted(f"{listed} list entries for {len(self.pages)} pages")
        self.unbuddied.check(corrupted)
        if len(self.lru) != len(self.pages):
            corrupted(f"{len(self.lru)} LRU entries for {len(self.pages)} pages")

    # -- introspection for tests and reports -----------------------------

    def unbuddied_pfns(self, free_chunks):
        """Pages on unbuddied[free_chunks], head first."""
        return list(reversed(self.unbuddied[free_chunks]))
