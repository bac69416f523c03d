"""zcache's zbud: Dan Magenheimer's compression buddies allocator as
drivers/staging/zcache/zbud.c had it in Linux 3.8 to 3.10, before mainline
zbud (mm/zbud.c, 3.11) replaced it.  zcache was never a zswap allocator:
zswapsim puts it under zswap and zram as a what-if, beside mainline zbud.

No header chunk: the bookkeeping (struct zbudpage: both zbud sizes as
PAGE_SHIFT-bit fields, an unevictable count, the budlist and lru list
heads) overlays the struct page, so all NCHUNKS = PAGE_SIZE >> 6 = 64
chunks of 64 bytes hold data.  Instead each zbud carries its tmem handle
(struct tmem_handle: a 24-byte oid, u32 index, u16 pool_id, u16 client_id,
32 bytes) in front of the compressed bytes: the key tmem finds the zpage by
to invalidate it or repatriate it to the swap cache.  A zbud of n bytes of
data thus takes ceil((n + 32) / 64) chunks, at most MAX_CHUNK = 63, so
zbud_max_buddy_size is 63 * 64 - 32 = 4000 bytes; the caller must check it
(zcache rejected larger zpages as compress_poor, here NoSpace).  The
handle holds the owner's key: with `key_in_handle` = k, the first k bytes
of each object are that key and lie in the last k bytes of the handle, so
an object of n bytes is a zbud of n - k bytes of data.  zswap's 8-byte
header (the swap entry) is its key, as zcache's frontswap put the swap
type and offset in the handle's oid and index; zram, with no key, gets
objects after the whole handle.  The rest of the handle is left unwritten.

The first zbud (budnum 0) starts at the pageframe's first byte, the second
(budnum 1) ends at its last; a handle is the zbudref, the page's address
with the budnum in bit 0.  Pages with one zbud wait on unbuddied[n], n the
chunks used; an allocation of c chunks tries the lists from n = 64 - c down
to 1 (the fullest page that fits) and takes the first entry, the oldest,
since pages are added at the tail.  A page whose zbud is freed while its
buddy lives goes to the tail of its buddy's list; full pages wait on the
buddied list.

The LRU is by pageframe and approximate: a page moves to the MRU end when a
zbud is added to it and stays where it is when one is deleted, so pages
that are hard to buddy are reclaimed sooner.  zcache kept separate lists
for ephemeral (cleancache) and persistent (frontswap) pages; swap pages are
persistent, so this is the persistent side (zbud_make_zombie_lru) and the
ephemeral side is not modelled.  reclaim_page takes the pageframe least
recently added to, skipping those marked unevictable (a two-phase put
between create_prep and create_finish), and makes it a zombie: off the LRU
and its list for good, so it never takes a new zbud.  Its zbuds, first then
second, go through the owner's evict callback, stopping at the first
failure; the zombie is freed with its last zbud, and 0 returned.  A zombie
that keeps a zbud stays readable until its owner frees it, as zcache's did
after a failed writeback.  zcache's writeback took one pageframe a call;
under the zpool contract the next one is tried, up to `retries` pages, then
-EAGAIN.  zcache's own store policy (zbud_max_zsize, the mean-size check)
belonged to zcache, not zbud: zswap's store path applies instead.

Against mainline zbud under zswap: one more chunk per page, but a 32-byte
handle per zbud where mainline's carries zswap's 8-byte header, so it is
denser only where that chunk lets two zbuds share a page.
"""

import errno

from ..errors import Invalid, NoSpace
from ..memory import PAGE_SHIFT, PAGE_SIZE
from .base import PagePool, UnbuddiedLists, register

CHUNK_SHIFT = 6
CHUNK_SIZE = 1 << CHUNK_SHIFT                           # 64
NCHUNKS = PAGE_SIZE >> CHUNK_SHIFT                      # 64: no header chunk
MAX_CHUNK = NCHUNKS - 1                                 # 63
TMEM_HANDLE_SIZE = 24 + 4 + 2 + 2                       # struct tmem_handle: 32
MAX_ZBUD_SIZE = MAX_CHUNK << CHUNK_SHIFT                # 4032, handle included
MAX_BUDDY_SIZE = MAX_ZBUD_SIZE - TMEM_HANDLE_SIZE       # 4000: zbud_max_buddy_size()
PAGE_MASK = PAGE_SIZE - 1


def size_to_chunks(zbud_size):
    """Chunks of a zbud of `zbud_size` bytes, its tmem handle included."""
    return (zbud_size + CHUNK_SIZE - 1) >> CHUNK_SHIFT


class ZbudPage:
    """struct zbudpage, the overlay of a pageframe's struct page."""

    __slots__ = ("pfn", "zbud_size", "unevictable", "zombie", "buddy_list")

    def __init__(self, pfn):
        self.pfn = pfn
        self.zbud_size = [0, 0]     # by budnum, tmem handle included; 0 = unused
        self.unevictable = 0
        self.zombie = False
        self.buddy_list = None      # the unbuddied or buddied list it is on

    def used_chunks(self):
        return size_to_chunks(self.zbud_size[0]) + size_to_chunks(self.zbud_size[1])

    def zbud_offset(self, budnum):
        """Where zbud `budnum` starts: the page's first byte, or its last
        chunks (zbud_data)."""
        if budnum == 0:
            return 0
        return PAGE_SIZE - (size_to_chunks(self.zbud_size[1]) << CHUNK_SHIFT)


@register
class ZcacheZbudPool(PagePool):
    name = "zcache-zbud"
    options = {"key_in_handle": range(TMEM_HANDLE_SIZE + 1)}

    def __init__(self, memory=None, evict=None, key_in_handle=0):
        super().__init__(memory, evict)   # pages: pfn -> ZbudPage; lru: first = oldest
        self.key_in_handle = key_in_handle
        # Indexed by free chunks, NCHUNKS - the kernel's used-chunk index,
        # so that take() walks them in the kernel's order.
        self.unbuddied = UnbuddiedLists(NCHUNKS, fifo=True)
        self.buddied = {}                 # first item = the list head
        self.zombies = {}                 # pfn -> ZbudPage: taken by reclaim, not yet empty

    # -- helpers ---------------------------------------------------------

    def _page(self, handle):
        zbudpage = self.pages.get(handle >> PAGE_SHIFT)
        if zbudpage is None or handle & PAGE_MASK > 1 \
                or not zbudpage.zbud_size[handle & 1]:
            raise Invalid(f"handle {handle:#x} names no live zbud")
        return zbudpage

    def _list_del(self, zbudpage):
        del zbudpage.buddy_list[zbudpage.pfn]
        zbudpage.buddy_list = None

    def _free_page(self, zbudpage):
        del self.pages[zbudpage.pfn]
        self.memory.free_page(zbudpage.pfn)

    # -- the zpool API ---------------------------------------------------

    def malloc(self, size):
        """Both phases of zcache's put at once: the zbud is evictable when
        malloc returns."""
        return self._create(size)[1]

    def create_prep(self, size):
        """zbud_match_prep / zbud_create_prep alone: the zbud is placed and
        its pageframe unevictable until create_finish(handle)."""
        zbudpage, handle = self._create(size)
        zbudpage.unevictable += 1
        return handle

    def create_finish(self, handle):
        """zbud_create_finish: the pageframe may be evicted again."""
        zbudpage = self._page(handle)
        if not zbudpage.unevictable:
            raise Invalid(f"handle {handle:#x}: create_finish without create_prep")
        zbudpage.unevictable -= 1

    def _create(self, size):
        """Place the zbud of an object of `size` bytes: (its page, its handle)."""
        data = size - self.key_in_handle
        if data <= 0:
            raise Invalid(f"zbud of {size} bytes: no data after a {self.key_in_handle}-byte key")
        if data > MAX_BUDDY_SIZE:
            raise NoSpace(f"zbud of {data} bytes > zbud_max_buddy_size {MAX_BUDDY_SIZE}")
        zbud_size = data + TMEM_HANDLE_SIZE
        zbudpage = self.unbuddied.take(size_to_chunks(zbud_size))
        if zbudpage is not None:                    # zbud_match_prep
            budnum = 0 if not zbudpage.zbud_size[0] else 1
            self.buddied[zbudpage.pfn] = zbudpage
            zbudpage.buddy_list = self.buddied
            self.lru.move_to_end(zbudpage.pfn)      # promoted on add only
        else:                                       # zbud_create_prep
            pfn = self.memory.alloc_page()          # NoMemory propagates
            zbudpage = self.pages[pfn] = self.lru[pfn] = ZbudPage(pfn)
            budnum = 0
            self.unbuddied.add(zbudpage, NCHUNKS - size_to_chunks(zbud_size))
        zbudpage.zbud_size[budnum] = zbud_size
        return zbudpage, (zbudpage.pfn << PAGE_SHIFT) | budnum

    def free(self, handle):
        """zbud_free_and_delist; the LRU is left alone."""
        zbudpage = self._page(handle)
        sizes = zbudpage.zbud_size
        sizes[handle & 1] = 0
        other = sizes[1 - (handle & 1)]
        if zbudpage.zombie:
            if not other:
                del self.zombies[zbudpage.pfn]
                self._free_page(zbudpage)
            return
        self._list_del(zbudpage)
        if not other:
            del self.lru[zbudpage.pfn]
            self._free_page(zbudpage)
        else:
            self.unbuddied.add(zbudpage, NCHUNKS - size_to_chunks(other))

    def _extent(self, handle):
        """The object: the key's end of the tmem handle, then the data."""
        zbudpage = self._page(handle)
        budnum = handle & 1
        handle_part = TMEM_HANDLE_SIZE - self.key_in_handle
        return (self.memory.frames[zbudpage.pfn], zbudpage.zbud_offset(budnum) + handle_part,
                zbudpage.zbud_size[budnum] - handle_part)

    def reclaim_page(self, retries):
        self.reclaim_calls += 1
        if self.evict is None or not self.lru or retries <= 0:
            return -errno.EINVAL
        lru = self.lru
        for _ in range(retries):
            zbudpage = next((page for page in lru.values() if not page.unevictable), None)
            if zbudpage is None:
                break                               # every LRU page is being added to
            self.reclaim_pages_scanned += 1
            del lru[zbudpage.pfn]                   # zbud_make_zombie_lru
            self._list_del(zbudpage)
            zbudpage.zombie = True
            self.zombies[zbudpage.pfn] = zbudpage
            sizes = zbudpage.zbud_size
            handles = [(zbudpage.pfn << PAGE_SHIFT) | budnum
                       for budnum in (0, 1) if sizes[budnum]]
            for handle in handles:
                # A zbud freed by the callback of its buddy is not evicted:
                # zcache's writeback would find no tmem entry for its key.
                if sizes[handle & 1] and self._call_evict(handle) != 0:
                    break
            if not (sizes[0] or sizes[1]):
                return 0                            # freed with its last zbud
        return -errno.EAGAIN

    def check(self):
        """Audit every page against its zbuds, its list, the LRU or the
        zombies, and the Memory; raise PoolCorrupted naming the first
        inconsistency.  Call it between pool calls."""
        corrupted = self._corrupted
        self._check_frames()
        for pfn, zbudpage in self.pages.items():
            if zbudpage.pfn != pfn:
                corrupted(f"page {pfn}: its zbudpage says page {zbudpage.pfn}")
            sizes = zbudpage.zbud_size
            for budnum, size in enumerate(sizes):
                if size and not TMEM_HANDLE_SIZE < size <= MAX_ZBUD_SIZE:
                    corrupted(f"page {pfn}: zbud {budnum} of {size} bytes")
            if not (sizes[0] or sizes[1]):
                corrupted(f"page {pfn}: empty but held")
            self._check_disjoint(pfn, [
                (zbudpage.zbud_offset(budnum),
                 zbudpage.zbud_offset(budnum) + (size_to_chunks(size) << CHUNK_SHIFT),
                 f"zbud {budnum}")
                for budnum, size in enumerate(sizes) if size])
            if not 0 <= zbudpage.unevictable <= (sizes[0] > 0) + (sizes[1] > 0):
                corrupted(f"page {pfn}: unevictable {zbudpage.unevictable}")
            if zbudpage.zombie:
                if self.zombies.get(pfn) is not zbudpage or zbudpage.buddy_list is not None \
                        or pfn in self.lru:
                    corrupted(f"page {pfn}: a zombie on a list or the LRU")
                continue
            if sizes[0] and sizes[1]:
                expected, which = self.buddied, "buddied"
            else:
                used = zbudpage.used_chunks()
                expected, which = self.unbuddied[NCHUNKS - used], f"unbuddied[{used}]"
            if zbudpage.buddy_list is not expected or expected.get(pfn) is not zbudpage:
                corrupted(f"page {pfn}: not on {which}")
            if self.lru.get(pfn) is not zbudpage:
                corrupted(f"page {pfn}: not on the LRU")
        if any(self.pages.get(pfn) is not zbudpage or not zbudpage.zombie
               for pfn, zbudpage in self.zombies.items()):
            corrupted("the zombie list holds a page that is not a zombie of the pool")
        live = len(self.pages) - len(self.zombies)
        listed = len(self.buddied) + sum(map(len, self.unbuddied))
        if listed != live:
            corrupted(f"{listed} list entries for {live} pages off the zombie list")
        self.unbuddied.check(corrupted)
        if len(self.lru) != live:
            corrupted(f"{len(self.lru)} LRU entries for {live} pages off the zombie list")

    # -- introspection for tests and reports -----------------------------

    def unbuddied_pfns(self, used_chunks):
        """Pages on the kernel's unbuddied[used_chunks], head (oldest) first."""
        return list(self.unbuddied[NCHUNKS - used_chunks])
