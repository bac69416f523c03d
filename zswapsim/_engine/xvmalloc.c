/*
 * xvmalloc.c - the compiled twin of zswapsim/zpool/xvmalloc.py: the
 * TLSF-style allocator of ramzswap and zram, as Nitin Gupta's seed
 * drivers/staging/ramzswap/xvmalloc.c (2009; later staging/zram, removed when
 * zsmalloc replaced it) lays it out, plus an LRU reclaim it never had.
 *
 * It is modelled because it came before zbud and zsmalloc and shows why they
 * were written: objects of every size share a page, so density is good for
 * small objects, but an object never crosses a page and, with objects over
 * half a page, most of each page is a free block nobody can use.
 *
 * Every block, free or allocated, starts with a 4-byte header (XV_ALIGN): a
 * u16 size and a u16 prev, the offset of the block before it with the flags
 * BLOCK_FREE and PREV_FREE in its two low bits.  The headers are written into
 * the frame, little endian, where the kernel puts them and are what free()
 * reads to find and merge neighbours; an allocated block's size is the size
 * asked for, which is how read() knows it.  A free block's list links (page
 * pointers in the kernel) are kept beside the frame instead.  A new page is
 * one free block of PAGE_SIZE - XV_ALIGN = 4092 bytes at offset 0.
 *
 * Free blocks of at least XV_MIN_ALLOC_SIZE = 32 bytes sit on NUM_FREE_LISTS =
 * 508 LIFO lists spaced FL_DELTA = 8 bytes apart: a block goes on the list of
 * its size rounded down (get_index_for_insert), a request looks from the list
 * of its size rounded up (get_index, sizes below 32 counting as 32), so a free
 * block the size of the request but not a multiple of 8 is passed over: the
 * "approximate best fit".  find_block takes that list's head, else the next
 * non-empty list in the same second-level bitmap word, else the lowest list of
 * the next word the first-level bitmap marks (the words are 64-bit longs; the
 * word size never changes which list is found).  A request is rounded up to
 * XV_ALIGN only; with nothing found the pool grows by one page and searches
 * again.  The allocated part keeps the start of the block and the rest after
 * it becomes a free block (header included) that is listed only if it is at
 * least 32 bytes; smaller remainders stay in the page, unlisted, until a
 * neighbour's free merges them.  A free merges the block with a free next and
 * a free previous block and releases the page when the merge covers it all.
 *
 * Handles are addresses, as the kernel's <page, offset> pair: pfn << 12 | the
 * offset of the object's data, just past its header, so never 0.  The limits
 * follow the kernel too: 0 bytes is -EINVAL and more than XV_MAX_ALLOC_SIZE =
 * 4092 -ENOSPC (xv_malloc returned -ENOMEM for both; these are the zpool
 * errnos).  Requests of 4089 to 4092 bytes are the seed's own quirk: aligned
 * to 4092, their get_index is 508, one past the last list, so find_block
 * fails even on a fresh page; xv_malloc grows the pool by a page anyway and
 * returns -ENOMEM, and so does this twin, leaving the page as a free block
 * that later requests can use.  4088 bytes is the largest object.
 *
 * Reclaim is an extension, since the kernel's users freed xvmalloc objects
 * themselves: every allocation moves its page to the head of a page LRU, and
 * reclaim_page takes the tail page, marks it under reclaim and evicts its
 * objects in address order through the owner's callback, stopping at the
 * first failure.  A free under reclaim merges as usual but does not release
 * the page; the loop does.  An emptied page is freed and 0 returned; otherwise
 * the page goes back to the LRU head and the next tail is tried, `retries`
 * pages, then -EAGAIN; no callback, an empty LRU or retries <= 0 is -EINVAL.
 * These are zbud's semantics.
 *
 * Beside each frame a page record keeps what the Python model keeps in its
 * dicts and sets: the data offsets of its live objects (a bitmap), its listed
 * free blocks (one record each, on its free list and on its page's list), its
 * place on the LRU.  The headers stay in the frame, which Python code can
 * write to, so every header read is bounded by the page and a layout the
 * rules cannot produce is ZE_CORRUPTED, never a stray access; and a page that
 * an evict callback releases under reclaim_page's feet (a nested reclaim of
 * the same page, which the model does not survive either) is kept until the
 * loop lets go of it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "xvmalloc.h"

#define XV_ALIGN_SHIFT 2
#define XV_ALIGN (1u << XV_ALIGN_SHIFT)				/* 4: also the header size */
#define XV_ALIGN_MASK (XV_ALIGN - 1)
#define XV_MIN_ALLOC_SIZE 32u
#define XV_MAX_ALLOC_SIZE (PAGE_SIZE - XV_ALIGN)			/* 4092 */
#define FL_DELTA_SHIFT 3
#define FL_DELTA (1u << FL_DELTA_SHIFT)				/* 8 */
#define FL_DELTA_MASK (FL_DELTA - 1)
#define NUM_FREE_LISTS ((XV_MAX_ALLOC_SIZE - XV_MIN_ALLOC_SIZE) / FL_DELTA + 1)	/* 508 */
#define BITS_PER_LONG 64
#define LONG_SHIFT 6						/* log2(BITS_PER_LONG) */
#define LONG_MASK (BITS_PER_LONG - 1)
#define MAX_FLI ((NUM_FREE_LISTS + BITS_PER_LONG - 1) / BITS_PER_LONG)	/* 8 */
_Static_assert(NUM_FREE_LISTS == XV_NUM_FREE_LISTS && MAX_FLI == XV_MAX_FLI,
	       "xvmalloc.h's sizes");

/* enum blockflags as the bits they set in block_header.prev */
#define BLOCK_FREE (1u << 0)
#define PREV_FREE (1u << 1)
#define FLAGS_MASK XV_ALIGN_MASK
#define PREV_MASK (0xFFFFu & ~FLAGS_MASK)

#define WHOLE_PAGE (PAGE_SIZE - XV_ALIGN)	/* the size of a page's only block when all free */
#define SLOT_WORDS (PAGE_SIZE / XV_ALIGN / 64)	/* 16: a bit per 4-byte offset of a page */

/* A listed free block: on freelist[slindex] and on its page's list. */
struct free_block {
	struct link list;		/* freelist[slindex].next is the list head */
	struct link sibling;		/* on page->blocks */
	struct xv_page *page;
	uint32_t offset, slindex;	/* of its header */
};

struct xv_page {
	uint32_t pfn;
	uint8_t *frame;
	struct link lru;		/* empty while off the LRU */
	struct link blocks;		/* its listed free blocks */
	uint64_t objects[SLOT_WORDS];	/* bit data >> 2: a live object's data offset */
	uint32_t nobjects;
	bool under_reclaim;
	uint32_t pins;			/* the reclaim_page calls working on it */
	bool released;			/* released while pinned: the last pin frees the record */
};

struct xv_pool {
	struct zpool_common common;	/* first: module.c reads the counters here */
	struct xv_page **pages;		/* pfn -> record, NULL where the pool holds no page */
	uint32_t pages_cap;
	uint64_t nr_pages;
	struct link freelist[NUM_FREE_LISTS];
	uint64_t flbitmap;		/* bit w: slbitmap[w] is not 0 */
	uint64_t slbitmap[MAX_FLI];	/* bit i of word w: freelist[w * 64 + i] is not empty */
	struct link lru;		/* lru.next is the LRU head (most recent) */
	struct free_block *spare;	/* a block record kept for the next insert */
};

static uint32_t xv_align(uint32_t size)
{
	return (size + XV_ALIGN_MASK) & ~XV_ALIGN_MASK;
}

/* The free list a free block of `size` (>= XV_MIN_ALLOC_SIZE) bytes goes on:
 * its size rounded down to FL_DELTA. */
static uint32_t get_index_for_insert(uint32_t size)
{
	if (size > XV_MAX_ALLOC_SIZE)
		size = XV_MAX_ALLOC_SIZE;
	size &= ~FL_DELTA_MASK;
	return (size - XV_MIN_ALLOC_SIZE) >> FL_DELTA_SHIFT;
}

/* The first free list all of whose blocks hold `size` bytes: the size, at
 * least XV_MIN_ALLOC_SIZE, rounded up to FL_DELTA. */
static uint32_t get_index(uint32_t size)
{
	if (size < XV_MIN_ALLOC_SIZE)
		size = XV_MIN_ALLOC_SIZE;
	size = (size + FL_DELTA_MASK) & ~FL_DELTA_MASK;
	return (size - XV_MIN_ALLOC_SIZE) >> FL_DELTA_SHIFT;
}

static uint32_t ffs_long(uint64_t word)
{
	return (uint32_t)__builtin_ctzll(word);
}

/* -- block headers in the frame: struct block_header { u16 size; u16 prev; } -- */

static uint32_t read_u16(const uint8_t *bytes)
{
	return bytes[0] | (uint32_t)bytes[1] << 8;
}

static void write_u16(uint8_t *bytes, uint32_t value)
{
	bytes[0] = (uint8_t)value;
	bytes[1] = (uint8_t)(value >> 8);
}

/* `offset` is at most PAGE_SIZE - XV_ALIGN for each of these. */
static void read_header(const uint8_t *frame, uint32_t offset, uint32_t *size, uint32_t *prev)
{
	*size = read_u16(frame + offset);
	*prev = read_u16(frame + offset + 2);
}

static void write_header(uint8_t *frame, uint32_t offset, uint32_t size, uint32_t prev)
{
	write_u16(frame + offset, size);
	write_u16(frame + offset + 2, prev);
}

/* Rewrite the prev field of the block at `offset`: the bits in `keep` stay,
 * those in `add` are set. */
static void update_prev(uint8_t *frame, uint32_t offset, uint32_t keep, uint32_t add)
{
	write_u16(frame + offset + 2, (read_u16(frame + offset + 2) & keep) | add);
}

/* -- pages and their objects -------------------------------------------------- */

/* `data` is a page offset, below PAGE_SIZE. */
static bool has_object(const struct xv_page *page, uint32_t data)
{
	return !(data & XV_ALIGN_MASK) && page->objects[data >> 8] >> (data >> 2 & 63) & 1;
}

static void flip_object(struct xv_page *page, uint32_t data)
{
	page->objects[data >> 8] ^= 1ull << (data >> 2 & 63);
}

static struct xv_page *page_of(const struct xv_pool *pool, uint64_t handle)
{
	uint64_t pfn = handle >> PAGE_SHIFT;

	return pfn < pool->pages_cap ? pool->pages[pfn] : NULL;
}

static struct xv_page *lru_tail(const struct xv_pool *pool)
{
	return link_entry(pool->lru.prev, struct xv_page, lru);
}

static int corrupted_block(struct xv_pool *pool, const struct xv_page *page, uint32_t offset)
{
	return zpool_corrupted(&pool->common, "page %u: block at %u: headers that do not "
			       "tile the page", page->pfn, offset);
}

/* -- free lists and bitmaps ------------------------------------------------------ */

static void insert_block(struct xv_pool *pool, struct free_block *block, struct xv_page *page,
			 uint32_t offset, uint32_t size)
{
	uint32_t slindex = get_index_for_insert(size), flindex = slindex >> LONG_SHIFT;

	block->page = page;
	block->offset = offset;
	block->slindex = slindex;
	link_add(&block->list, &pool->freelist[slindex]);
	link_add(&block->sibling, &page->blocks);
	pool->slbitmap[flindex] |= 1ull << (slindex & LONG_MASK);
	pool->flbitmap |= 1ull << flindex;
}

/* Take a block off its free list (clearing its bits if that empties it) and
 * off its page's list; the record is the caller's. */
static void remove_block(struct xv_pool *pool, struct free_block *block)
{
	uint32_t slindex = block->slindex, flindex = slindex >> LONG_SHIFT;

	link_del(&block->list);
	link_del(&block->sibling);
	if (!link_empty(&pool->freelist[slindex]))
		return;
	pool->slbitmap[flindex] &= ~(1ull << (slindex & LONG_MASK));
	if (!pool->slbitmap[flindex])
		pool->flbitmap &= ~(1ull << flindex);
}

/* The records of listed blocks: one kept spare, so that no insert can fail
 * once a call has begun to change the pool. */
static bool reserve_record(struct xv_pool *pool)
{
	if (!pool->spare)
		pool->spare = malloc(sizeof(*pool->spare));
	return pool->spare != NULL;
}

static struct free_block *take_record(struct xv_pool *pool)
{
	struct free_block *block = pool->spare;

	pool->spare = NULL;
	return block;
}

static void put_record(struct xv_pool *pool, struct free_block *block)
{
	if (pool->spare)
		free(block);
	else
		pool->spare = block;
}

/* The listed block at `offset` of `page` if it is on freelist[slindex], else NULL. */
static struct free_block *listed_block(const struct xv_page *page, uint32_t offset,
				       uint32_t slindex)
{
	struct link *node;

	for (node = page->blocks.next; node != &page->blocks; node = node->next) {
		struct free_block *block = link_entry(node, struct free_block, sibling);

		if (block->offset == offset)
			return block->slindex == slindex ? block : NULL;
	}
	return NULL;
}

int xv_find_block(const struct xv_pool *pool, uint32_t size)
{
	uint32_t slindex, flindex, slbitstart;
	uint64_t slbitmap, flbitmap;

	if (!pool->flbitmap)
		return -1;
	slindex = get_index(size);
	flindex = slindex >> LONG_SHIFT;
	slbitstart = slindex & LONG_MASK;
	if (flindex >= MAX_FLI)
		return -2;
	slbitmap = pool->slbitmap[flindex] >> slbitstart;
	if (slbitmap & 1)
		return (int)slindex;				/* the exact list */
	slbitmap >>= 1;
	if (slbitmap)
		return (int)(slindex + ffs_long(slbitmap) + 1);	/* further in the same word */
	flbitmap = pool->flbitmap >> (flindex + 1);
	if (!flbitmap)
		return -1;
	flindex += ffs_long(flbitmap) + 1;			/* the next word with a list */
	return (int)((flindex << LONG_SHIFT) + ffs_long(pool->slbitmap[flindex]));
}

/* -- pages ---------------------------------------------------------------------- */

struct xv_pool *xv_create(const struct frame_source *src, bool has_evict)
{
	struct xv_pool *pool = calloc(1, sizeof(*pool));
	uint32_t i;

	if (!pool)
		return NULL;
	zpool_common_init(&pool->common, src, has_evict);
	for (i = 0; i < NUM_FREE_LISTS; i++)
		link_init(&pool->freelist[i]);
	link_init(&pool->lru);
	return pool;
}

static void free_record(struct xv_page *page)
{
	while (!link_empty(&page->blocks)) {
		struct free_block *block = link_entry(page->blocks.next, struct free_block, sibling);

		link_del(&block->sibling);
		free(block);
	}
	free(page);
}

void xv_destroy(void *opaque)
{
	struct xv_pool *pool = opaque;
	uint32_t pfn;

	for (pfn = 0; pfn < pool->pages_cap; pfn++)
		if (pool->pages[pfn])
			free_record(pool->pages[pfn]);
	free(pool->pages);
	free(pool->spare);
	zpool_common_release(&pool->common);
	free(pool);
}

struct zpool_common *xv_common(void *opaque)
{
	struct xv_pool *pool = opaque;

	return &pool->common;
}

static int grow_table(struct xv_pool *pool, uint32_t pfn)
{
	uint32_t cap = pool->pages_cap ? pool->pages_cap : 64;
	struct xv_page **grown;

	if (pfn < pool->pages_cap)
		return 0;
	while (cap <= pfn)
		cap *= 2;
	grown = realloc(pool->pages, cap * sizeof(*grown));
	if (!grown)
		return ZE_OOM;
	memset(grown + pool->pages_cap, 0, (cap - pool->pages_cap) * sizeof(*grown));
	pool->pages = grown;
	pool->pages_cap = cap;
	return 0;
}

static int grow_pool(struct xv_pool *pool)
{
	struct zpool_common *c = &pool->common;
	struct xv_page *page;
	uint8_t *frame;
	uint32_t pfn;
	int status;

	if (!reserve_record(pool) || !(page = calloc(1, sizeof(*page))))
		return ZE_OOM;
	status = c->src.alloc(c->src.ctx, &pfn, &frame);
	if (status) {
		free(page);
		return status;
	}
	if (grow_table(pool, pfn)) {
		free(page);
		c->src.free(c->src.ctx, pfn);
		return ZE_OOM;
	}
	page->pfn = pfn;
	page->frame = frame;
	link_init(&page->lru);
	link_init(&page->blocks);
	pool->pages[pfn] = page;
	pool->nr_pages++;
	write_header(frame, 0, WHOLE_PAGE, BLOCK_FREE);
	insert_block(pool, take_record(pool), page, 0, WHOLE_PAGE);
	return 0;
}

static void release_page(struct xv_pool *pool, struct xv_page *page)
{
	struct zpool_common *c = &pool->common;

	/* none by the layout's rules; a frame scribbled from Python can leave some */
	while (!link_empty(&page->blocks)) {
		struct free_block *block = link_entry(page->blocks.next, struct free_block, sibling);

		remove_block(pool, block);
		put_record(pool, block);
	}
	pool->pages[page->pfn] = NULL;
	pool->nr_pages--;
	link_del(&page->lru);
	c->src.free(c->src.ctx, page->pfn);
	if (page->pins)
		page->released = true;
	else
		free(page);
}

/* -- the zpool API ---------------------------------------------------------------- */

int xv_malloc(void *opaque, long long size, uint64_t *handle)
{
	struct xv_pool *pool = opaque;
	struct free_block *block;
	struct xv_page *page;
	uint32_t aligned, offset, block_size, prev, rest_offset, data;
	int index, status;

	if (size <= 0)
		return -EINVAL;
	if (size > XV_MAX_ALLOC_SIZE)
		return -ENOSPC;
	aligned = xv_align((uint32_t)size);
	index = xv_find_block(pool, aligned);
	if (index < 0) {
		status = grow_pool(pool);
		if (status)
			return status;
		index = xv_find_block(pool, aligned);
		if (index < 0)
			return -ENOMEM;		/* get_index(aligned) is past the last free list */
	}
	block = link_entry(pool->freelist[index].next, struct free_block, list);
	page = block->page;
	offset = block->offset;
	read_header(page->frame, offset, &block_size, &prev);
	if (block_size < aligned || block_size & XV_ALIGN_MASK ||
	    offset + XV_ALIGN + block_size > PAGE_SIZE)
		return corrupted_block(pool, page, offset);
	remove_block(pool, block);			/* the list head, taken off */

	rest_offset = offset + XV_ALIGN + aligned;
	if (block_size > aligned) {
		/* Split: the rest, less its own header, is a free block after ours. */
		uint32_t rest = block_size - aligned - XV_ALIGN, following;

		write_header(page->frame, rest_offset, rest, offset | BLOCK_FREE);
		if (rest >= XV_MIN_ALLOC_SIZE)
			insert_block(pool, block, page, rest_offset, rest);
		else
			put_record(pool, block);
		following = rest_offset + XV_ALIGN + rest;
		if (following != PAGE_SIZE)
			update_prev(page->frame, following, FLAGS_MASK, rest_offset);
	} else {
		put_record(pool, block);
		if (rest_offset != PAGE_SIZE)				/* exact fit */
			update_prev(page->frame, rest_offset, 0xFFFFu & ~PREV_FREE, 0);
	}
	write_header(page->frame, offset, (uint32_t)size, prev & ~BLOCK_FREE);

	data = offset + XV_ALIGN;
	flip_object(page, data);
	page->nobjects++;
	link_del(&page->lru);				/* a no-op off the LRU */
	link_add(&page->lru, &pool->lru);
	*handle = (uint64_t)page->pfn << PAGE_SHIFT | data;
	return 0;
}

int xv_free(void *opaque, uint64_t handle)
{
	struct xv_pool *pool = opaque;
	struct xv_page *page = page_of(pool, handle);
	struct free_block *next_block = NULL, *prev_block = NULL;
	uint32_t data = (uint32_t)(handle & PAGE_MASK), offset, size, prev, following;
	uint8_t *frame;

	if (!page || !has_object(page, data))
		return ZE_NOT_IN_POOL;
	frame = page->frame;
	offset = data - XV_ALIGN;
	read_header(frame, offset, &size, &prev);
	size = xv_align(size);

	/* The merge, worked out before anything changes. */
	following = offset + XV_ALIGN + size;
	if (following != PAGE_SIZE && following > PAGE_SIZE - XV_ALIGN)
		return corrupted_block(pool, page, offset);
	if (following != PAGE_SIZE) {
		uint32_t next_size, next_prev;

		read_header(frame, following, &next_size, &next_prev);
		if (next_prev & BLOCK_FREE) {
			if (next_size >= XV_MIN_ALLOC_SIZE &&
			    !(next_block = listed_block(page, following,
							get_index_for_insert(next_size))))
				return corrupted_block(pool, page, following);
			size += XV_ALIGN + next_size;
		}
	}
	if (prev & PREV_FREE) {
		uint32_t prev_size, start = prev & PREV_MASK;

		if (start >= offset)
			return corrupted_block(pool, page, offset);
		read_header(frame, start, &prev_size, &prev);
		if (prev_size >= XV_MIN_ALLOC_SIZE &&
		    !(prev_block = listed_block(page, start, get_index_for_insert(prev_size))))
			return corrupted_block(pool, page, start);
		size += XV_ALIGN + prev_size;
		offset = start;
	}
	following = offset + XV_ALIGN + size;
	if (following != PAGE_SIZE && following > PAGE_SIZE - XV_ALIGN)
		return corrupted_block(pool, page, offset);
	if (!reserve_record(pool))
		return ZE_OOM;

	flip_object(page, data);
	page->nobjects--;
	if (next_block) {
		remove_block(pool, next_block);
		put_record(pool, next_block);
	}
	if (prev_block) {
		remove_block(pool, prev_block);
		put_record(pool, prev_block);
	}
	if (size == WHOLE_PAGE && !page->under_reclaim) {
		release_page(pool, page);
		return 0;
	}
	write_header(frame, offset, size, prev | BLOCK_FREE);
	if (size >= XV_MIN_ALLOC_SIZE)
		insert_block(pool, take_record(pool), page, offset, size);
	if (following != PAGE_SIZE)
		update_prev(frame, following, FLAGS_MASK, offset | PREV_FREE);
	return 0;
}

int xv_span(void *opaque, uint64_t handle, struct zpool_span *span)
{
	struct xv_pool *pool = opaque;
	struct xv_page *page = page_of(pool, handle);
	uint32_t data = (uint32_t)(handle & PAGE_MASK), size, prev;

	if (!page || !has_object(page, data))
		return ZE_NOT_IN_POOL;
	read_header(page->frame, data - XV_ALIGN, &size, &prev);
	span->frame = page->frame;
	span->next = NULL;
	span->pfn = page->pfn;
	span->offset = data;
	/* a header scribbled from Python may claim more: the model's slice ends with the page */
	span->size = size < PAGE_SIZE - data ? size : PAGE_SIZE - data;
	return 0;
}

uint64_t xv_total_pages(const void *opaque)
{
	const struct xv_pool *pool = opaque;

	return pool->nr_pages;
}

/* PagePool._reclaim_order: the LRU, tail first. */
int xv_order(void *opaque, struct order *out)
{
	struct xv_pool *pool = opaque;
	const struct link *node;
	int status = 0;

	for (node = pool->lru.prev; node != &pool->lru && !status; node = node->prev)
		status = order_push(out, link_entry(node, const struct xv_page, lru)->pfn);
	return status ? status : order_push(out, UINT64_MAX);
}

/* Evict the objects `page` held as the try began, in address order, skipping
 * those freed meanwhile, up to the first failure: 0 with that result in *ret,
 * or the status of a callback that failed. */
static int evict_objects(struct xv_pool *pool, struct xv_page *page, int *ret)
{
	uint64_t held[SLOT_WORDS];
	uint32_t word;

	memcpy(held, page->objects, sizeof(held));
	*ret = 0;
	for (word = 0; word < SLOT_WORDS; word++)
		for (; held[word]; held[word] &= held[word] - 1) {
			uint32_t data = (word * 64 + ffs_long(held[word])) << XV_ALIGN_SHIFT;
			int status;

			if (!has_object(page, data))
				continue;
			status = zpool_call_evict(&pool->common,
						  (uint64_t)page->pfn << PAGE_SHIFT | data, ret);
			if (status || *ret)
				return status;
		}
	return 0;
}

/* The pin of a try ends; the record goes if a callback released its page. */
static bool unpin(struct xv_page *page)
{
	bool released = page->released;

	if (!--page->pins && released)
		free(page);
	return released;
}

int xv_reclaim_page(void *opaque, long long retries, int *result)
{
	struct xv_pool *pool = opaque;
	struct zpool_common *c = &pool->common;
	struct reclaim_tries tries;
	int status;

	c->reclaim_calls++;
	*result = -EINVAL;
	if (!c->has_evict || link_empty(&pool->lru) || retries <= 0)
		return 0;
	*result = -EAGAIN;
	tries_init(&tries, c, retries, xv_order, pool);
	while ((status = tries_take(&tries, lru_tail(pool)->pfn)) == 1) {
		struct xv_page *page = lru_tail(pool);
		uint32_t pfn = page->pfn;
		int ret;

		link_del(&page->lru);				/* the LRU tail */
		c->reclaim_pages_scanned++;
		page->under_reclaim = true;
		page->pins++;
		status = evict_objects(pool, page, &ret);
		if (unpin(page)) {
			if (!status)
				status = zpool_corrupted(c, "page %u: released under reclaim", pfn);
			break;
		}
		if (status)
			break;				/* under reclaim still, as the model leaves it */
		page->under_reclaim = false;
		if (!page->nobjects) {
			struct free_block *block = listed_block(page, 0,
								get_index_for_insert(WHOLE_PAGE));

			if (!block) {
				status = corrupted_block(pool, page, 0);
				break;
			}
			remove_block(pool, block);
			put_record(pool, block);
			release_page(pool, page);
			*result = 0;
			break;
		}
		if (link_empty(&page->lru))			/* back at the head */
			link_add(&page->lru, &pool->lru);
		status = tries_put_back(&tries, pfn);
		if (status)
			break;
	}
	tries_release(&tries);
	return status;
}

/* -- the audit -------------------------------------------------------------------- */

/* A message built piece by piece, cut at ZE_MESSAGE_LEN. */
struct text {
	char buf[ZE_MESSAGE_LEN];
	size_t used;
};

static void __attribute__((format(printf, 2, 3))) text_add(struct text *text,
							     const char *fmt, ...)
{
	va_list args;
	int n;

	if (text->used >= sizeof(text->buf) - 1)
		return;
	va_start(args, fmt);
	n = vsnprintf(text->buf + text->used, sizeof(text->buf) - text->used, fmt, args);
	va_end(args);
	if (n > 0)
		text->used += (size_t)n;
}

/* The data offsets set in a slot bitmap of `words` words, as a Python list. */
static void text_offsets(struct text *text, const uint64_t *bits, uint32_t words)
{
	const char *separator = "";
	uint32_t word;
	uint64_t rest;

	text_add(text, "[");
	for (word = 0; word < words; word++)
		for (rest = bits[word]; rest; rest &= rest - 1) {
			text_add(text, "%s%u", separator, (word * 64 + ffs_long(rest)) << XV_ALIGN_SHIFT);
			separator = ", ";
		}
	text_add(text, "]");
}

/* Walk a page's headers: they tile the page, each prev names the block
 * before, free blocks are merged; the listable ones are marked in
 * `listable` (by header offset) for the free lists' turn. */
static int check_page(struct xv_pool *pool, const struct xv_page *page, uint64_t *listable)
{
	struct zpool_common *c = &pool->common;
	uint64_t allocated[SLOT_WORDS + 1] = { 0 };	/* one more: data at PAGE_SIZE */
	uint32_t offset = 0, previous = 0, pfn = page->pfn;
	bool previous_free = false;
	struct text text = { "", 0 };

	if (link_empty(&page->lru) == (page->nobjects > 0))
		return zpool_corrupted(c, "page %u: on the LRU iff it has objects", pfn);
	while (offset < PAGE_SIZE) {
		uint32_t size, prev;
		bool is_free;

		read_header(page->frame, offset, &size, &prev);
		if ((prev & PREV_MASK) != previous)
			return zpool_corrupted(c, "page %u: block at %u: prev %u, the block before "
					       "is at %u", pfn, offset, prev & PREV_MASK, previous);
		if (!!(prev & PREV_FREE) != previous_free)
			return zpool_corrupted(c, "page %u: block at %u: PREV_FREE is wrong", pfn,
					       offset);
		is_free = prev & BLOCK_FREE;
		if (is_free) {
			if (previous_free)
				return zpool_corrupted(c, "page %u: block at %u: free after a free "
						       "block, unmerged", pfn, offset);
			if (size & XV_ALIGN_MASK)
				return zpool_corrupted(c, "page %u: block at %u: free block of %u "
						       "bytes", pfn, offset, size);
			if (size >= XV_MIN_ALLOC_SIZE)
				listable[offset >> 8] |= 1ull << (offset >> 2 & 63);
		} else {
			if (!size)
				return zpool_corrupted(c, "page %u: block at %u: allocated block of "
						       "0 bytes", pfn, offset);
			allocated[(offset + XV_ALIGN) >> 8] |= 1ull << ((offset + XV_ALIGN) >> 2 & 63);
		}
		previous = offset;
		previous_free = is_free;
		offset += XV_ALIGN + xv_align(size);
	}
	if (offset != PAGE_SIZE)
		return zpool_corrupted(c, "page %u: the last block ends at %u", pfn, offset);
	if (!allocated[SLOT_WORDS] && !memcmp(allocated, page->objects, sizeof(page->objects)))
		return 0;
	text_add(&text, "allocated blocks ");
	text_offsets(&text, allocated, SLOT_WORDS + 1);
	text_add(&text, ", objects ");
	text_offsets(&text, page->objects, SLOT_WORDS);
	return zpool_corrupted(c, "page %u: %s", pfn, text.buf);
}

/* Every listed block is a listable free block of its list's size, once, and
 * every listable block is listed. */
static int check_free_lists(struct xv_pool *pool, uint64_t *listable)
{
	struct zpool_common *c = &pool->common;
	struct text text = { "", 0 };
	const char *separator = "";
	uint32_t index, pfn, word;

	for (index = 0; index < NUM_FREE_LISTS; index++) {
		const struct link *node;

		for (node = pool->freelist[index].prev; node != &pool->freelist[index];
		     node = node->prev) {
			const struct free_block *block = link_entry(node, const struct free_block,
								    list);
			uint64_t *word_of = &listable[(uint64_t)block->page->pfn * SLOT_WORDS +
						      (block->offset >> 8)];
			uint64_t bit = 1ull << (block->offset >> 2 & 63);
			uint32_t size, prev;

			read_header(block->page->frame, block->offset, &size, &prev);
			if (!(*word_of & bit) || get_index_for_insert(size) != index)
				return zpool_corrupted(c, "free list %u: page %u offset %u is no free "
						       "block of its size", index, block->page->pfn,
						       block->offset);
			*word_of &= ~bit;
		}
	}
	for (pfn = 0; pfn < pool->pages_cap; pfn++)
		for (word = 0; word < SLOT_WORDS; word++) {
			uint64_t rest;

			for (rest = listable[(uint64_t)pfn * SLOT_WORDS + word]; rest;
			     rest &= rest - 1) {
				text_add(&text, "%s(%u, %u)", separator, pfn,
					 (word * 64 + ffs_long(rest)) << XV_ALIGN_SHIFT);
				separator = ", ";
			}
		}
	if (text.used)
		return zpool_corrupted(c, "free blocks on no free list: [%s]", text.buf);
	return 0;
}

int xv_check(void *opaque)
{
	struct xv_pool *pool = opaque;
	struct zpool_common *c = &pool->common;
	uint64_t slbitmap[MAX_FLI] = { 0 }, flbitmap = 0, *listable;
	const struct link *node;
	uint32_t pfn, index;
	int status = 0;

	listable = calloc((size_t)pool->pages_cap * SLOT_WORDS + 1, sizeof(*listable));
	if (!listable)
		return ZE_OOM;
	for (pfn = 0; pfn < pool->pages_cap && !status; pfn++)
		if (pool->pages[pfn])
			status = check_page(pool, pool->pages[pfn], listable + (uint64_t)pfn * SLOT_WORDS);
	if (!status)
		status = check_free_lists(pool, listable);
	free(listable);
	if (status)
		return status;
	for (index = 0; index < NUM_FREE_LISTS; index++)
		if (!link_empty(&pool->freelist[index]))
			slbitmap[index / BITS_PER_LONG] |= 1ull << index % BITS_PER_LONG;
	if (memcmp(slbitmap, pool->slbitmap, sizeof(slbitmap)))
		return zpool_corrupted(c, "second-level bitmap disagrees with the free lists");
	for (index = 0; index < MAX_FLI; index++)
		if (slbitmap[index])
			flbitmap |= 1ull << index;
	if (pool->flbitmap != flbitmap)
		return zpool_corrupted(c, "first-level bitmap disagrees with the second level");
	for (node = pool->lru.next; node != &pool->lru; node = node->next) {
		const struct xv_page *page = link_entry(node, const struct xv_page, lru);

		if (page->pfn >= pool->pages_cap || pool->pages[page->pfn] != page)
			return zpool_corrupted(c, "LRU holds pages the pool does not");
	}
	return 0;
}

/* -- introspection ------------------------------------------------------------------ */

uint64_t xv_free_blocks(const struct xv_pool *pool, uint32_t slindex,
			struct xv_free_block *out, uint64_t cap)
{
	const struct link *node;
	uint64_t n = 0;

	if (slindex >= NUM_FREE_LISTS)
		return 0;
	for (node = pool->freelist[slindex].next; node != &pool->freelist[slindex];
	     node = node->next, n++)
		if (n < cap) {
			const struct free_block *block = link_entry(node, const struct free_block,
								    list);

			out[n].pfn = block->page->pfn;
			out[n].offset = block->offset;
		}
	return n;
}

uint64_t xv_flbitmap(const struct xv_pool *pool)
{
	return pool->flbitmap;
}

uint64_t xv_slbitmap(const struct xv_pool *pool, uint32_t word)
{
	return word < MAX_FLI ? pool->slbitmap[word] : 0;
}

static uint64_t pfns_where(const struct xv_pool *pool, bool under_reclaim_only, uint32_t *out,
			   uint64_t cap)
{
	uint64_t n = 0;
	uint32_t pfn;

	for (pfn = 0; pfn < pool->pages_cap; pfn++)
		if (pool->pages[pfn] && (!under_reclaim_only || pool->pages[pfn]->under_reclaim)) {
			if (n < cap)
				out[n] = pfn;
			n++;
		}
	return n;
}

uint64_t xv_pfns(const void *pool, uint32_t *out, uint64_t cap)
{
	return pfns_where(pool, false, out, cap);
}

uint64_t xv_under_reclaim(const void *pool, uint32_t *out, uint64_t cap)
{
	return pfns_where(pool, true, out, cap);
}

/* -- the driver table ----------------------------------------------------------------- */

static void *driver_create(const struct frame_source *src, bool has_evict,
			   const struct zpool_options *options)
{
	(void)options;
	return xv_create(src, has_evict);
}

const struct zpool_driver xvmalloc_driver = {
	.name = "xvmalloc",
	.create = driver_create,
	.destroy = xv_destroy,
	.common = xv_common,
	.malloc = xv_malloc,
	.free = xv_free,
	.span = xv_span,
	.reclaim_page = xv_reclaim_page,
	.total_pages = xv_total_pages,
	.order = xv_order,
	.check = xv_check,
};
