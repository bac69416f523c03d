"""xvmalloc: the TLSF-style allocator of ramzswap and zram, as Nitin Gupta's
seed drivers/staging/ramzswap/xvmalloc.c (2009; later staging/zram, removed
when zsmalloc replaced it) lays it out, plus an LRU reclaim it never had.

It is modelled because it came before zbud and zsmalloc and shows why they
were written: objects of every size share a page, so density is good for
small objects, but an object never crosses a page and, with objects over
half a page, most of each page is a free block nobody can use.

Every block, free or allocated, starts with a 4-byte header (XV_ALIGN): a
u16 size and a u16 prev, the offset of the block before it with the flags
BLOCK_FREE and PREV_FREE in its two low bits.  The headers are written into
the frame, little endian, where the kernel puts them and are what free()
reads to find and merge neighbours; an allocated block's size is the size
asked for, which is how read() knows it.  A free block's list links (page
pointers in the kernel) are kept here in Python instead.  A new page is one
free block of PAGE_SIZE - XV_ALIGN = 4092 bytes at offset 0.

Free blocks of at least XV_MIN_ALLOC_SIZE = 32 bytes sit on NUM_FREE_LISTS =
508 LIFO lists spaced FL_DELTA = 8 bytes apart: a block goes on the list of
its size rounded down (get_index_for_insert), a request looks from the list
of its size rounded up (get_index, sizes below 32 counting as 32), so a free
block the size of the request but not a multiple of 8 is passed over: the
"approximate best fit".  find_block takes that list's head, else the next
non-empty list in the same second-level bitmap word, else the lowest list of
the next word the first-level bitmap marks (the words are 64-bit longs; the
word size never changes which list is found).  A request is rounded up to
XV_ALIGN only; with nothing found the pool grows by one page and searches
again.  The allocated part keeps the start of the block and the rest after
it becomes a free block (header included) that is listed only if it is at
least 32 bytes; smaller remainders stay in the page, unlisted, until a
neighbour's free merges them.  A free merges the block with a free next and
a free previous block and releases the page when the merge covers it all.

Handles are addresses, as the kernel's <page, offset> pair: pfn << 12 | the
offset of the object's data, just past its header, so never 0.  The limits
follow the kernel too: 0 bytes is Invalid and more than XV_MAX_ALLOC_SIZE =
4092 NoSpace (xv_malloc returned -ENOMEM for both; these are the zpool
errnos).  Requests of 4089 to 4092 bytes are the seed's own quirk: aligned
to 4092, their get_index is 508, one past the last list, so find_block
fails even on a fresh page; xv_malloc grows the pool by a page anyway and
returns -ENOMEM, and so does this model (NoMemory), leaving the page as a
free block that later requests can use.  4088 bytes is the largest object.

Reclaim is an extension, since the kernel's users freed xvmalloc objects
themselves: every allocation moves its page to the head of a page LRU, and
reclaim_page takes the tail page, marks it under reclaim and evicts its
objects in address order through the owner's callback, stopping at the
first failure.  A free under reclaim merges as usual but does not release
the page; the loop does.  An emptied page is freed and 0 returned; otherwise
the page goes back to the LRU head and the next tail is tried, `retries`
pages, then -EAGAIN; no callback, an empty LRU or retries <= 0 is -EINVAL.
These are zbud's semantics.
"""

import errno
import struct

from ..errors import Invalid, NoMemory, NoSpace
from ..memory import PAGE_SHIFT, PAGE_SIZE
from .base import PagePool, ReclaimTries, register

XV_ALIGN_SHIFT = 2
XV_ALIGN = 1 << XV_ALIGN_SHIFT                                  # 4: also the header size
XV_ALIGN_MASK = XV_ALIGN - 1
XV_MIN_ALLOC_SIZE = 32
XV_MAX_ALLOC_SIZE = PAGE_SIZE - XV_ALIGN                        # 4092
FL_DELTA_SHIFT = 3
FL_DELTA = 1 << FL_DELTA_SHIFT                                  # 8
FL_DELTA_MASK = FL_DELTA - 1
NUM_FREE_LISTS = (XV_MAX_ALLOC_SIZE - XV_MIN_ALLOC_SIZE) // FL_DELTA + 1   # 508
BITS_PER_LONG = 64
LONG_SHIFT = 6                                                  # log2(BITS_PER_LONG)
LONG_MASK = BITS_PER_LONG - 1
MAX_FLI = -(-NUM_FREE_LISTS // BITS_PER_LONG)                   # 8 second-level words

# enum blockflags as the bits they set in block_header.prev
BLOCK_FREE = 1 << 0
PREV_FREE = 1 << 1
FLAGS_MASK = XV_ALIGN_MASK
PREV_MASK = 0xFFFF & ~FLAGS_MASK

PAGE_MASK = PAGE_SIZE - 1
WHOLE_PAGE = PAGE_SIZE - XV_ALIGN         # the size of a page's only block when it is all free

BLOCK_HEADER = struct.Struct("<HH")       # struct block_header { u16 size; u16 prev; }
PREV_FIELD = struct.Struct("<H")          # block_header.prev alone, at offset + 2


def xv_align(size):
    return (size + XV_ALIGN_MASK) & ~XV_ALIGN_MASK


def get_index_for_insert(size):
    """The free list a free block of `size` bytes goes on: its size rounded
    down to FL_DELTA."""
    size = min(size, XV_MAX_ALLOC_SIZE) & ~FL_DELTA_MASK
    return (size - XV_MIN_ALLOC_SIZE) >> FL_DELTA_SHIFT


def get_index(size):
    """The first free list all of whose blocks hold `size` bytes: the size,
    at least XV_MIN_ALLOC_SIZE, rounded up to FL_DELTA."""
    size = (max(size, XV_MIN_ALLOC_SIZE) + FL_DELTA_MASK) & ~FL_DELTA_MASK
    return (size - XV_MIN_ALLOC_SIZE) >> FL_DELTA_SHIFT


def _ffs(word):
    """__ffs: the index of the lowest set bit of a non-zero word."""
    return (word & -word).bit_length() - 1


# Bound once: the headers are read and written several times per call.
read_header = BLOCK_HEADER.unpack_from
write_header = BLOCK_HEADER.pack_into


def _update_prev(frame, offset, keep, add):
    """Rewrite the prev field of the block at `offset`: the bits in `keep`
    stay, those in `add` are set."""
    prev = PREV_FIELD.unpack_from(frame, offset + 2)[0]
    PREV_FIELD.pack_into(frame, offset + 2, (prev & keep) | add)


@register
class XvmallocPool(PagePool):
    name = "xvmalloc"

    def __init__(self, memory=None, evict=None):
        super().__init__(memory, evict)   # pages: pfn -> data offsets of its live objects
        # freelist[i]: (pfn, offset) -> None, the *last* item is the list head.
        self.freelist = [{} for _ in range(NUM_FREE_LISTS)]
        self.flbitmap = 0                 # bit w: slbitmap[w] is not 0
        self.slbitmap = [0] * MAX_FLI     # bit i of word w: freelist[w * 64 + i] is not empty
        self.under_reclaim = set()

    # -- free lists and bitmaps -------------------------------------------

    def _insert_block(self, pfn, offset, size):
        slindex = get_index_for_insert(size)
        self.freelist[slindex][pfn, offset] = None
        flindex = slindex >> LONG_SHIFT
        self.slbitmap[flindex] |= 1 << (slindex & LONG_MASK)
        self.flbitmap |= 1 << flindex

    def _clear_list_bit(self, slindex):
        """freelist[slindex] has just emptied."""
        flindex = slindex >> LONG_SHIFT
        word = self.slbitmap[flindex] = self.slbitmap[flindex] & ~(1 << (slindex & LONG_MASK))
        if not word:
            self.flbitmap &= ~(1 << flindex)

    def _remove_block(self, pfn, offset, slindex):
        blocks = self.freelist[slindex]
        del blocks[pfn, offset]
        if not blocks:
            self._clear_list_bit(slindex)

    def find_block(self, size):
        """The index of the free list whose head serves `size` (already
        aligned) bytes, or None when no list can."""
        if not self.flbitmap:
            return None
        slindex = get_index(size)
        flindex, slbitstart = slindex >> LONG_SHIFT, slindex & LONG_MASK
        slbitmap = self.slbitmap[flindex] >> slbitstart
        if slbitmap & 1:
            return slindex                              # the exact list
        slbitmap >>= 1
        if slbitmap:
            return slindex + _ffs(slbitmap) + 1         # further in the same word
        flbitmap = self.flbitmap >> (flindex + 1)
        if not flbitmap:
            return None
        flindex += _ffs(flbitmap) + 1                   # the next word with a list
        return (flindex << LONG_SHIFT) + _ffs(self.slbitmap[flindex])

    # -- pages -----------------------------------------------------------

    def _grow_pool(self):
        pfn = self.memory.alloc_page()                  # NoMemory propagates
        self.pages[pfn] = set()
        write_header(self.memory.frames[pfn], 0, WHOLE_PAGE, BLOCK_FREE)
        self._insert_block(pfn, 0, WHOLE_PAGE)

    def _release_page(self, pfn):
        del self.pages[pfn]
        self.lru.pop(pfn, None)
        self.memory.free_page(pfn)

    # -- the zpool API ---------------------------------------------------

    def malloc(self, size):
        if size <= 0:
            raise Invalid("xv_malloc of size 0")
        if size > XV_MAX_ALLOC_SIZE:
            raise NoSpace(f"xv_malloc of {size} bytes > {XV_MAX_ALLOC_SIZE}")
        origsize = size
        size = xv_align(size)
        index = self.find_block(size)
        if index is None:
            self._grow_pool()
            index = self.find_block(size)
            if index is None:
                raise NoMemory(f"xv_malloc of {origsize} bytes: get_index({size}) is past "
                               f"the last free list")
        blocks = self.freelist[index]
        pfn, offset = blocks.popitem()[0]               # the list head, taken off
        if not blocks:
            self._clear_list_bit(index)
        frame = self.memory.frames[pfn]
        block_size, prev = read_header(frame, offset)

        rest_offset = offset + XV_ALIGN + size
        if block_size > size:
            # Split: the rest, less its own header, is a free block after ours.
            rest = block_size - size - XV_ALIGN
            write_header(frame, rest_offset, rest, offset | BLOCK_FREE)
            if rest >= XV_MIN_ALLOC_SIZE:
                self._insert_block(pfn, rest_offset, rest)
            following = rest_offset + XV_ALIGN + rest
            if following != PAGE_SIZE:
                _update_prev(frame, following, FLAGS_MASK, rest_offset)
        elif rest_offset != PAGE_SIZE:
            _update_prev(frame, rest_offset, ~PREV_FREE, 0)     # exact fit
        write_header(frame, offset, origsize, prev & ~BLOCK_FREE)

        data = offset + XV_ALIGN
        self.pages[pfn].add(data)
        lru = self.lru
        if pfn in lru:
            lru.move_to_end(pfn)
        else:
            lru[pfn] = None
        return (pfn << PAGE_SHIFT) | data

    def free(self, handle):
        pfn, data = handle >> PAGE_SHIFT, handle & PAGE_MASK
        objects = self.pages.get(pfn)
        if objects is None or data not in objects:
            raise Invalid(f"handle {handle:#x} names no live object")
        objects.remove(data)
        frame = self.memory.frames[pfn]
        offset = data - XV_ALIGN
        size, prev = read_header(frame, offset)
        size = xv_align(size)

        following = offset + XV_ALIGN + size
        if following != PAGE_SIZE:
            next_size, next_prev = read_header(frame, following)
            if next_prev & BLOCK_FREE:
                if next_size >= XV_MIN_ALLOC_SIZE:
                    self._remove_block(pfn, following, get_index_for_insert(next_size))
                size += XV_ALIGN + next_size
        if prev & PREV_FREE:
            offset = prev & PREV_MASK
            prev_size, prev = read_header(frame, offset)
            if prev_size >= XV_MIN_ALLOC_SIZE:
                self._remove_block(pfn, offset, get_index_for_insert(prev_size))
            size += XV_ALIGN + prev_size

        if size == WHOLE_PAGE and pfn not in self.under_reclaim:
            self._release_page(pfn)
            return
        write_header(frame, offset, size, prev | BLOCK_FREE)
        if size >= XV_MIN_ALLOC_SIZE:
            self._insert_block(pfn, offset, size)
        following = offset + XV_ALIGN + size
        if following != PAGE_SIZE:
            _update_prev(frame, following, FLAGS_MASK, offset | PREV_FREE)

    def _extent(self, handle):
        """(frame, offset, size) of a live object."""
        pfn, data = handle >> PAGE_SHIFT, handle & PAGE_MASK
        objects = self.pages.get(pfn)
        if objects is None or data not in objects:
            raise Invalid(f"handle {handle:#x} names no live object")
        frame = self.memory.frames[pfn]
        return frame, data, read_header(frame, data - XV_ALIGN)[0]

    def reclaim_page(self, retries):
        self.reclaim_calls += 1
        if self.evict is None or not self.lru or retries <= 0:
            return -errno.EINVAL
        lru = self.lru
        tries = ReclaimTries(self, retries)
        while tries.take(next(iter(lru))):
            pfn, _ = lru.popitem(last=False)               # the LRU tail
            self.reclaim_pages_scanned += 1
            objects = self.pages[pfn]
            self.under_reclaim.add(pfn)
            for data in sorted(objects):
                # Skip an object the callbacks have freed meanwhile.
                if data in objects and self._call_evict((pfn << PAGE_SHIFT) | data) != 0:
                    break
            self.under_reclaim.discard(pfn)
            if not objects:
                self._remove_block(pfn, 0, get_index_for_insert(WHOLE_PAGE))
                self._release_page(pfn)
                return 0
            lru[pfn] = None                                # back at the head
            tries.put_back(pfn)
        return -errno.EAGAIN

    def check(self):
        """Walk every page's block headers and audit them against the page's
        objects, the free lists, the bitmaps, the LRU and the Memory; raise
        PoolCorrupted naming the first inconsistency.  Call it between pool
        calls, not from an evict callback."""
        corrupted = self._corrupted
        if self.under_reclaim:
            corrupted(f"pages {sorted(self.under_reclaim)} under reclaim")
        self._check_frames()
        listable = {}                   # (pfn, offset) -> the free list its header calls for
        for pfn, objects in self.pages.items():
            # Only a page the -ENOMEM quirk grew and nothing used is objectless.
            if (pfn in self.lru) != bool(objects):
                corrupted(f"page {pfn}: on the LRU iff it has objects")
            frame, offset, previous, previous_free, allocated = \
                self.memory.frames[pfn], 0, 0, False, set()
            while offset < PAGE_SIZE:        # the blocks, headers included, tile the page
                size, prev = BLOCK_HEADER.unpack_from(frame, offset)
                where = f"page {pfn}: block at {offset}"
                if prev & PREV_MASK != previous:
                    corrupted(f"{where}: prev {prev & PREV_MASK}, "
                              f"the block before is at {previous}")
                if bool(prev & PREV_FREE) != previous_free:
                    corrupted(f"{where}: PREV_FREE is wrong")
                free = bool(prev & BLOCK_FREE)
                if free:
                    if previous_free:
                        corrupted(f"{where}: free after a free block, unmerged")
                    if size & XV_ALIGN_MASK:
                        corrupted(f"{where}: free block of {size} bytes")
                    if size >= XV_MIN_ALLOC_SIZE:
                        listable[pfn, offset] = get_index_for_insert(size)
                else:
                    if not size:
                        corrupted(f"{where}: allocated block of 0 bytes")
                    allocated.add(offset + XV_ALIGN)
                previous, previous_free = offset, free
                offset += XV_ALIGN + xv_align(size)
            if offset != PAGE_SIZE:
                corrupted(f"page {pfn}: the last block ends at {offset}")
            if allocated != objects:
                corrupted(f"page {pfn}: allocated blocks {sorted(allocated)}, "
                          f"objects {sorted(objects)}")
        for index, blocks in enumerate(self.freelist):
            for pfn, offset in blocks:
                if listable.pop((pfn, offset), None) != index:
                    corrupted(f"free list {index}: page {pfn} offset {offset} "
                              "is no free block of its size")
        if listable:
            corrupted(f"free blocks on no free list: {sorted(listable)}")
        slbitmap = [0] * MAX_FLI
        for index, blocks in enumerate(self.freelist):
            if blocks:
                slbitmap[index // BITS_PER_LONG] |= 1 << index % BITS_PER_LONG
        if self.slbitmap != slbitmap:
            corrupted("second-level bitmap disagrees with the free lists")
        if self.flbitmap != sum(1 << word for word, bits in enumerate(slbitmap) if bits):
            corrupted("first-level bitmap disagrees with the second level")
        if not set(self.lru) <= set(self.pages):
            corrupted("LRU holds pages the pool does not")

    # -- introspection for tests and reports -----------------------------

    def free_blocks(self, slindex):
        """(pfn, offset) of the blocks on freelist[slindex], head first."""
        return list(reversed(self.freelist[slindex]))

    def page_blocks(self, pfn):
        """Every block of a page in address order, as its header reads:
        (offset, size, prev field)."""
        frame = self.memory.frames[pfn]
        blocks, offset = [], 0
        while offset < PAGE_SIZE:
            size, prev = BLOCK_HEADER.unpack_from(frame, offset)
            blocks.append((offset, size, prev))
            offset += XV_ALIGN + xv_align(size)
        return blocks
