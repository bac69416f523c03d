/*
 * z3fold.c - the compiled twin of zswapsim/zpool/z3fold.py: up to three
 * compressed objects per page, as mm/z3fold.c of Linux 6.1 lays them out,
 * with the page LRU and reclaim it had until 6.5.
 *
 * A z3fold page is cut into TOTAL_CHUNKS = 64 chunks of 64 bytes.  The page's
 * header (struct z3fold_header) fills the first ZHDR_CHUNKS of them; the kernel
 * comment says one chunk, but the struct has grown past 64 bytes, so on x86_64
 * it takes two (worked out at ZHDR_SIZE below), leaving NCHUNKS = 62 for data.
 * The fidelity sets agree: one header chunk gives pool sizes 2 % too small.
 * The FIRST object sits left-justified right after the header, the LAST one
 * right-justified against the page end, and a MIDDLE one starts right after
 * FIRST.  An object too big to share (over PAGE_SIZE - header - one chunk, that
 * is 3904 bytes) gets a HEADLESS page of its own; over PAGE_SIZE is -ENOSPC.
 *
 * Pages with a free slot wait on unbuddied[num_free_chunks]; with a middle
 * object that count is the larger gap beside it, not the sum.  An allocation of
 * n chunks takes the head of the first non-empty list from n upward;
 * get_free_buddy picks the slot.  The kernel keeps these lists per CPU; the
 * fidelity kernel had one vCPU, so there is one set.  Every allocation moves
 * its page to the head of the pool LRU.
 *
 * Handles are indirect in the kernel (a slot that names page and buddy), so an
 * object can move and keep its handle.  Here a handle is an opaque number
 * mapped to (page, buddy); it is never reused.  Objects move in two ways, both
 * on free.  z3fold_free queues a compaction work item for the page; we run it
 * at once, as if the workqueue got the CPU before the next call.  The work
 * first tries compact_single_buddy: a page left with one object copies it into
 * another listed page (no new page is taken) and is freed, the moved handle
 * then being "foreign" in its new page.  Otherwise z3fold_compact_page moves a
 * middle object: to FIRST if the page has no first or last, or down next to
 * FIRST / up next to LAST when that closes a gap of BIG_CHUNK_GAP chunks.
 * Pages that hold foreign handles are never compacted away and never
 * reclaimed.  Freed pages leave pages_nr at once; 6.1 no longer reuses stale
 * pages for allocation (Miaohe Lin's 2022 fixes).
 *
 * reclaim_page(retries) takes the LRU tail (skipping pages with foreign
 * handles), claims it and evicts MIDDLE, FIRST, LAST through the owner's
 * callback, stopping at the first failure.  A free of a claimed page only
 * clears the buddy's size (a headless one does nothing); the reclaim loop then
 * frees the page and returns 0 once every object is gone (a headless page as
 * soon as its callback returns 0).  Otherwise the page goes back to the LRU
 * head and to its unbuddied list, uncompacted, and the next tail is tried, up
 * to `retries` pages, then -EAGAIN.
 *
 * As the Python model does, handles count up from 1 and a table maps each to
 * its object (page, slot, byte offset, the size asked for, and whether it
 * moved in from another page); each header keeps the handle in each of its
 * slots; the unbuddied lists carry a mask of lists that may be non-empty
 * (bits cleared lazily when found empty); and the headers live beside the
 * frames rather than in their first two chunks, which stay unused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "z3fold.h"

#define NCHUNKS_ORDER 6
#define CHUNK_SHIFT (PAGE_SHIFT - NCHUNKS_ORDER)
#define CHUNK_SIZE (1u << CHUNK_SHIFT)				/* 64 */
/* sizeof(struct z3fold_header) on x86_64 without lock debugging, field by
 * field in z3fold.py */
#define ZHDR_SIZE 88u
#define ZHDR_SIZE_ALIGNED ((ZHDR_SIZE + CHUNK_SIZE - 1) / CHUNK_SIZE * CHUNK_SIZE)	/* 128 */
#define ZHDR_CHUNKS (ZHDR_SIZE_ALIGNED >> CHUNK_SHIFT)		/* 2 */
#define TOTAL_CHUNKS (PAGE_SIZE >> CHUNK_SHIFT)			/* 64 */
#define NCHUNKS (TOTAL_CHUNKS - ZHDR_CHUNKS)			/* 62 */
#define MAX_SHARED_SIZE (PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE)	/* 3904: larger is headless */
#define BIG_CHUNK_GAP 3

_Static_assert(NCHUNKS == Z3FOLD_NCHUNKS, "z3fold.h's list count");

#define LIST_NONE (-1)

enum buddy { HEADLESS, FIRST, MIDDLE, LAST };

static const char *const buddy_names[] = { "headless", "first", "middle", "last" };

/* struct z3fold_header of one pool page, plus the handle in each slot. */
struct z3fold_header {
	uint32_t pfn;
	bool headless;
	uint32_t first_chunks, middle_chunks, last_chunks, start_middle;
	uint32_t foreign_handles;	/* objects moved in from another page */
	bool claimed;			/* PAGE_CLAIMED by reclaim */
	int list;			/* LIST_NONE or the unbuddied list it is on */
	struct link buddy;		/* on that list */
	struct link lru;		/* self-linked while off the LRU */
	uint64_t handles[4];		/* handle per buddy kind, 0 if none */
	uint8_t *frame;
};

/* Where a handle's object lives now (kept in step when it moves), and the
 * size malloc was asked for: an entry of the handle table. */
struct z3fold_object {
	uint64_t handle;		/* 0: an empty slot of the table */
	struct z3fold_header *zhdr;
	enum buddy bud;
	uint32_t offset, size;
	bool foreign;
};

struct z3fold_pool {
	struct zpool_common common;	/* first: module.c reads the counters here */
	struct z3fold_header **pages;	/* pfn -> header, NULL where the pool holds no page */
	uint32_t pages_cap;
	uint64_t nr_pages;		/* pages_nr */
	struct link unbuddied[NCHUNKS];
	uint64_t mask;			/* bit n: unbuddied[n] may be non-empty */
	struct link lru;		/* lru.next is the LRU head (most recent) */
	struct z3fold_object *table;	/* open addressing, linear probing */
	uint64_t table_cap, nr_handles;
	uint64_t last_handle;
};

static uint32_t size_to_chunks(uint32_t size)
{
	return (size + CHUNK_SIZE - 1) >> CHUNK_SHIFT;
}

/* -- the header ------------------------------------------------------------- */

static uint32_t buddy_chunks(const struct z3fold_header *zhdr, enum buddy bud)
{
	if (bud == FIRST)
		return zhdr->first_chunks;
	if (bud == MIDDLE)
		return zhdr->middle_chunks;
	return zhdr->last_chunks;
}

static void set_chunks(struct z3fold_header *zhdr, enum buddy bud, uint32_t chunks)
{
	if (bud == FIRST) {
		zhdr->first_chunks = chunks;
	} else if (bud == MIDDLE) {
		zhdr->middle_chunks = chunks;
		zhdr->start_middle = chunks ? zhdr->first_chunks + ZHDR_CHUNKS : 0;
	} else {
		zhdr->last_chunks = chunks;
	}
}

static bool is_empty(const struct z3fold_header *zhdr)
{
	return !zhdr->first_chunks && !zhdr->middle_chunks && !zhdr->last_chunks;
}

static bool is_full(const struct z3fold_header *zhdr)
{
	return zhdr->first_chunks && zhdr->middle_chunks && zhdr->last_chunks;
}

/* At most one object in the page. */
static bool buddy_single(const struct z3fold_header *zhdr)
{
	return !!zhdr->first_chunks + !!zhdr->middle_chunks + !!zhdr->last_chunks <= 1;
}

static int num_free_chunks(const struct z3fold_header *zhdr)
{
	if (zhdr->middle_chunks) {
		int before = zhdr->first_chunks ? 0 : (int)zhdr->start_middle - (int)ZHDR_CHUNKS;
		int after = zhdr->last_chunks ? 0 : (int)TOTAL_CHUNKS -
			(int)(zhdr->start_middle + zhdr->middle_chunks);

		return before > after ? before : after;
	}
	return (int)NCHUNKS - (int)zhdr->first_chunks - (int)zhdr->last_chunks;
}

/* The slot a new object of `chunks` takes; HEADLESS if none fits. */
static enum buddy get_free_buddy(const struct z3fold_header *zhdr, uint32_t chunks)
{
	if (zhdr->middle_chunks) {
		if (!zhdr->first_chunks && (int)chunks <= (int)zhdr->start_middle - (int)ZHDR_CHUNKS)
			return FIRST;
		return !zhdr->last_chunks ? LAST : HEADLESS;
	}
	if (!zhdr->first_chunks)
		return FIRST;
	return !zhdr->last_chunks ? LAST : MIDDLE;
}

/* Byte offset of a buddy in the page (z3fold_map). */
static uint32_t buddy_offset(const struct z3fold_header *zhdr, enum buddy bud)
{
	if (bud == HEADLESS)
		return 0;
	if (bud == FIRST)
		return ZHDR_SIZE_ALIGNED;
	if (bud == MIDDLE)
		return zhdr->start_middle << CHUNK_SHIFT;
	return PAGE_SIZE - (zhdr->last_chunks << CHUNK_SHIFT);
}

/* -- the handle table ------------------------------------------------------- */

static uint64_t slot_of(const struct z3fold_pool *pool, uint64_t handle)
{
	return (handle * 0x9e3779b97f4a7c15ull) >> 17 & (pool->table_cap - 1);
}

static struct z3fold_object *lookup(const struct z3fold_pool *pool, uint64_t handle)
{
	uint64_t i;

	if (!pool->table_cap || !handle)
		return NULL;
	for (i = slot_of(pool, handle); pool->table[i].handle; i = (i + 1) & (pool->table_cap - 1))
		if (pool->table[i].handle == handle)
			return &pool->table[i];
	return NULL;
}

static void place(struct z3fold_pool *pool, const struct z3fold_object *obj)
{
	uint64_t i = slot_of(pool, obj->handle);

	while (pool->table[i].handle)
		i = (i + 1) & (pool->table_cap - 1);
	pool->table[i] = *obj;
}

/* Room in the table for one more handle, made before malloc changes anything. */
static int table_reserve(struct z3fold_pool *pool)
{
	uint64_t old_cap = pool->table_cap, cap, i;
	struct z3fold_object *old = pool->table;

	if (2 * (pool->nr_handles + 1) <= old_cap)
		return 0;
	cap = old_cap ? 2 * old_cap : 1024;
	pool->table = calloc(cap, sizeof(*pool->table));
	if (!pool->table) {
		pool->table = old;
		return ZE_OOM;
	}
	pool->table_cap = cap;
	for (i = 0; i < old_cap; i++)
		if (old[i].handle)
			place(pool, &old[i]);
	free(old);
	return 0;
}

/* Delete with backward shift, so lookups need no tombstones. */
static void table_delete(struct z3fold_pool *pool, struct z3fold_object *obj)
{
	uint64_t mask = pool->table_cap - 1;
	uint64_t hole = (uint64_t)(obj - pool->table), i = hole;

	for (;;) {
		uint64_t home;

		i = (i + 1) & mask;
		if (!pool->table[i].handle)
			break;
		home = slot_of(pool, pool->table[i].handle);
		/* move it into the hole unless its home lies in (hole, i] */
		if ((i > hole && (home <= hole || home > i)) ||
		    (i < hole && home <= hole && home > i)) {
			pool->table[hole] = pool->table[i];
			hole = i;
		}
	}
	pool->table[hole].handle = 0;
	pool->nr_handles--;
}

/* -- the pool --------------------------------------------------------------- */

struct z3fold_pool *z3fold_create(const struct frame_source *src, bool has_evict)
{
	struct z3fold_pool *pool = calloc(1, sizeof(*pool));
	uint32_t i;

	if (!pool)
		return NULL;
	zpool_common_init(&pool->common, src, has_evict);
	for (i = 0; i < NCHUNKS; i++)
		link_init(&pool->unbuddied[i]);
	link_init(&pool->lru);
	return pool;
}

void z3fold_destroy(void *opaque)
{
	struct z3fold_pool *pool = opaque;
	uint32_t pfn;

	for (pfn = 0; pfn < pool->pages_cap; pfn++)
		free(pool->pages[pfn]);
	free(pool->pages);
	free(pool->table);
	zpool_common_release(&pool->common);
	free(pool);
}

struct zpool_common *z3fold_common(void *opaque)
{
	struct z3fold_pool *pool = opaque;

	return &pool->common;
}

/* -- lists and pages -------------------------------------------------------- */

static void list_del_from(struct z3fold_header *zhdr)
{
	if (zhdr->list != LIST_NONE) {
		link_del(&zhdr->buddy);
		zhdr->list = LIST_NONE;
	}
}

static void add_to_unbuddied(struct z3fold_pool *pool, struct z3fold_header *zhdr)
{
	int free_chunks;

	if (is_full(zhdr))
		return;				/* no free slot: on no list */
	free_chunks = num_free_chunks(zhdr);
	link_add(&zhdr->buddy, &pool->unbuddied[free_chunks]);
	pool->mask |= 1ull << free_chunks;
	zhdr->list = free_chunks;
}

/* UnbuddiedLists.take: the head of the first non-empty list from
 * unbuddied[chunks] up, taken off its list, or NULL. */
static struct z3fold_header *take_unbuddied(struct z3fold_pool *pool, uint32_t chunks)
{
	uint64_t mask = pool->mask >> chunks;

	while (mask) {
		unsigned int n = chunks + (unsigned int)__builtin_ctzll(mask);
		struct link *head = &pool->unbuddied[n];

		if (!link_empty(head)) {
			struct z3fold_header *zhdr = link_entry(head->next, struct z3fold_header,
								buddy);

			list_del_from(zhdr);
			return zhdr;
		}
		pool->mask &= ~(1ull << n);		/* emptied since its bit was set */
		mask &= mask - 1;
	}
	return NULL;
}

/* A new frame from the frame source, with its header; 0, -ENOMEM, ZE_CALLBACK or ZE_OOM. */
static int new_page(struct z3fold_pool *pool, bool headless, struct z3fold_header **out)
{
	struct frame_source *src = &pool->common.src;
	struct z3fold_header *zhdr;
	uint8_t *frame;
	uint32_t pfn;
	int status = src->alloc(src->ctx, &pfn, &frame);

	if (status)
		return status;
	if (pfn >= pool->pages_cap) {
		uint32_t cap = pool->pages_cap ? pool->pages_cap : 64;
		struct z3fold_header **grown;

		while (cap <= pfn)
			cap *= 2;
		grown = realloc(pool->pages, cap * sizeof(*grown));
		if (!grown)
			goto no_heap;
		memset(grown + pool->pages_cap, 0, (cap - pool->pages_cap) * sizeof(*grown));
		pool->pages = grown;
		pool->pages_cap = cap;
	}
	zhdr = calloc(1, sizeof(*zhdr));
	if (!zhdr)
		goto no_heap;
	zhdr->pfn = pfn;
	zhdr->headless = headless;
	zhdr->list = LIST_NONE;
	zhdr->frame = frame;
	link_init(&zhdr->buddy);
	link_init(&zhdr->lru);
	pool->pages[pfn] = zhdr;
	pool->nr_pages++;
	*out = zhdr;
	return 0;
no_heap:
	src->free(src->ctx, pfn);
	return ZE_OOM;
}

static void release_page(struct z3fold_pool *pool, struct z3fold_header *zhdr)
{
	uint32_t pfn = zhdr->pfn;

	list_del_from(zhdr);
	link_del(&zhdr->lru);
	pool->pages[pfn] = NULL;
	pool->nr_pages--;
	free(zhdr);
	pool->common.src.free(pool->common.src.ctx, pfn);
}

/* Copy a buddy's chunks to a new place (memmove: it may overlap the old one)
 * and repoint its handle. */
static struct z3fold_object *move_buddy(struct z3fold_pool *pool, struct z3fold_header *src,
					enum buddy src_bud, struct z3fold_header *dst,
					enum buddy dst_bud, uint32_t nbytes)
{
	uint64_t handle = src->handles[src_bud];
	struct z3fold_object *obj = lookup(pool, handle);
	uint32_t dst_off = buddy_offset(dst, dst_bud);

	src->handles[src_bud] = 0;
	dst->handles[dst_bud] = handle;
	memmove(dst->frame + dst_off, src->frame + obj->offset, nbytes);
	obj->zhdr = dst;
	obj->bud = dst_bud;
	obj->offset = dst_off;
	return obj;
}

/* -- compaction (the work z3fold_free queues) -------------------------------- */

/* Copy the page's only object into another listed page; true if moved. */
static bool compact_single_buddy(struct z3fold_pool *pool, struct z3fold_header *zhdr)
{
	enum buddy bud = zhdr->first_chunks ? FIRST : zhdr->middle_chunks ? MIDDLE : LAST;
	uint32_t chunks = buddy_chunks(zhdr, bud);
	struct z3fold_header *dst = take_unbuddied(pool, chunks);	/* __z3fold_alloc */
	enum buddy dst_bud;

	if (!dst)
		return false;
	dst_bud = get_free_buddy(dst, chunks);
	set_chunks(dst, dst_bud, chunks);
	move_buddy(pool, zhdr, bud, dst, dst_bud, chunks << CHUNK_SHIFT)->foreign = true;
	dst->foreign_handles++;
	add_to_unbuddied(pool, dst);
	set_chunks(zhdr, bud, 0);
	return true;
}

static void slide_middle(struct z3fold_pool *pool, struct z3fold_header *zhdr,
			 uint32_t new_start, uint32_t nbytes)
{
	uint32_t src = zhdr->start_middle << CHUNK_SHIFT, dst = new_start << CHUNK_SHIFT;

	memmove(zhdr->frame + dst, zhdr->frame + src, nbytes);
	zhdr->start_middle = new_start;
	lookup(pool, zhdr->handles[MIDDLE])->offset = dst;
}

/* z3fold_compact_page: move the middle object if that makes room. */
static void compact_page(struct z3fold_pool *pool, struct z3fold_header *zhdr)
{
	uint32_t middle = zhdr->middle_chunks, nbytes = middle << CHUNK_SHIFT;
	int first = (int)zhdr->first_chunks, last = (int)zhdr->last_chunks;
	int start = (int)zhdr->start_middle;

	if (!first && !last) {
		move_buddy(pool, zhdr, MIDDLE, zhdr, FIRST, nbytes);
		zhdr->first_chunks = middle;
		zhdr->middle_chunks = zhdr->start_middle = 0;
	} else if (first && !last && start - (first + (int)ZHDR_CHUNKS) >= BIG_CHUNK_GAP) {
		slide_middle(pool, zhdr, (uint32_t)first + ZHDR_CHUNKS, nbytes);
	} else if (last && !first &&
		   (int)TOTAL_CHUNKS - (last + start + (int)middle) >= BIG_CHUNK_GAP) {
		slide_middle(pool, zhdr, TOTAL_CHUNKS - (uint32_t)last - middle, nbytes);
	}
}

static void do_compact_page(struct z3fold_pool *pool, struct z3fold_header *zhdr)
{
	list_del_from(zhdr);
	if (!zhdr->foreign_handles && buddy_single(zhdr) && compact_single_buddy(pool, zhdr)) {
		release_page(pool, zhdr);
		return;
	}
	if (zhdr->middle_chunks)
		compact_page(pool, zhdr);
	add_to_unbuddied(pool, zhdr);
}

/* -- the zpool API ---------------------------------------------------------- */

int z3fold_malloc(void *opaque, long long size, uint64_t *handle)
{
	struct z3fold_pool *pool = opaque;
	struct z3fold_header *zhdr;
	enum buddy bud;
	int status;

	if (size <= 0)
		return -EINVAL;
	if (size > PAGE_SIZE)
		return -ENOSPC;
	status = table_reserve(pool);
	if (status)
		return status;
	if (size > MAX_SHARED_SIZE) {
		status = new_page(pool, true, &zhdr);
		if (status)
			return status;
		bud = HEADLESS;
	} else {
		uint32_t chunks = size_to_chunks((uint32_t)size);

		zhdr = take_unbuddied(pool, chunks);	/* __z3fold_alloc */
		if (!zhdr) {
			status = new_page(pool, false, &zhdr);
			if (status)
				return status;
			bud = FIRST;
			zhdr->first_chunks = chunks;
		} else {
			/* A listed page always has a slot for what its list
			 * promises, so this is never HEADLESS. */
			bud = get_free_buddy(zhdr, chunks);
			set_chunks(zhdr, bud, chunks);
			link_del(&zhdr->lru);
		}
		add_to_unbuddied(pool, zhdr);
	}
	link_add(&zhdr->lru, &pool->lru);
	*handle = ++pool->last_handle;
	place(pool, &(struct z3fold_object){ *handle, zhdr, bud, buddy_offset(zhdr, bud),
					     (uint32_t)size, false });
	pool->nr_handles++;
	zhdr->handles[bud] = *handle;
	return 0;
}

int z3fold_free(void *opaque, uint64_t handle)
{
	struct z3fold_pool *pool = opaque;
	struct z3fold_object *obj = lookup(pool, handle);
	struct z3fold_header *zhdr;
	enum buddy bud;
	bool foreign;

	if (!obj)
		return ZE_NOT_IN_POOL;
	zhdr = obj->zhdr;
	if (zhdr->headless) {
		if (zhdr->claimed)
			return 0;		/* reclaim frees the page if evict succeeds */
		table_delete(pool, obj);
		release_page(pool, zhdr);
		return 0;
	}
	bud = obj->bud;
	foreign = obj->foreign;
	table_delete(pool, obj);
	set_chunks(zhdr, bud, 0);
	zhdr->handles[bud] = 0;
	if (zhdr->claimed)
		return 0;			/* the reclaim loop finishes the job */
	if (foreign)
		zhdr->foreign_handles--;
	if (is_empty(zhdr))
		release_page(pool, zhdr);
	else
		do_compact_page(pool, zhdr);
	return 0;
}

int z3fold_locate(const struct z3fold_pool *pool, uint64_t handle, uint32_t *pfn,
		  const char **buddy, uint8_t **frame, uint32_t *offset, uint32_t *size)
{
	const struct z3fold_object *obj = lookup(pool, handle);

	if (!obj)
		return ZE_NOT_IN_POOL;
	*pfn = obj->zhdr->pfn;
	*buddy = buddy_names[obj->bud];
	*frame = obj->zhdr->frame;
	*offset = obj->offset;
	*size = obj->size;
	return 0;
}

int z3fold_page_layout(const struct z3fold_pool *pool, uint64_t pfn, struct z3fold_layout *out)
{
	const struct z3fold_header *zhdr = pfn < pool->pages_cap ? pool->pages[pfn] : NULL;

	if (!zhdr)
		return ZE_NOT_IN_POOL;
	*out = (struct z3fold_layout){
		.headless = zhdr->headless,
		.first = zhdr->first_chunks,
		.middle = zhdr->middle_chunks,
		.start_middle = zhdr->start_middle,
		.last = zhdr->last_chunks,
		.foreign_handles = zhdr->foreign_handles,
		.free_chunks = (uint32_t)num_free_chunks(zhdr),
	};
	return 0;
}

uint64_t z3fold_total_pages(const void *opaque)
{
	const struct z3fold_pool *pool = opaque;

	return pool->nr_pages;
}

/* The page nearest the LRU tail that reclaim may take: pages holding foreign
 * handles cannot be evicted.  NULL if there is none. */
static struct z3fold_header *evictable_tail(struct z3fold_pool *pool)
{
	struct link *node;

	for (node = pool->lru.prev; node != &pool->lru; node = node->prev) {
		struct z3fold_header *zhdr = link_entry(node, struct z3fold_header, lru);

		if (zhdr->headless || !zhdr->foreign_handles)
			return zhdr;
	}
	return NULL;
}

/* (lru, (mask, unbuddied lists)), each run tail first as the Python dicts
 * iterate (their last item is the head). */
int z3fold_order(void *opaque, struct order *out)
{
	struct z3fold_pool *pool = opaque;
	const struct link *node, *head;
	int status = 0;
	uint32_t n;

	for (node = pool->lru.prev; node != &pool->lru && !status; node = node->prev)
		status = order_push(out, link_entry(node, const struct z3fold_header, lru)->pfn);
	if (!status)
		status = order_push(out, UINT64_MAX);
	if (!status)
		status = order_push(out, pool->mask);
	for (n = 0; n < NCHUNKS && !status; n++) {
		head = &pool->unbuddied[n];
		for (node = head->prev; node != head && !status; node = node->prev)
			status = order_push(out, link_entry(node, const struct z3fold_header,
							    buddy)->pfn);
		if (!status)
			status = order_push(out, UINT64_MAX);
	}
	return status;
}

int z3fold_reclaim_page(void *opaque, long long retries, int *result)
{
	struct z3fold_pool *pool = opaque;
	struct z3fold_header *zhdr;
	struct reclaim_tries tries;
	int status = 0;

	pool->common.reclaim_calls++;
	/* The kernel tests for an empty LRU before every try, but a try that
	 * fails puts its page back, so only the first can find none. */
	if (!pool->common.has_evict || retries <= 0 || link_empty(&pool->lru)) {
		*result = -EINVAL;
		return 0;
	}
	tries_init(&tries, &pool->common, retries, z3fold_order, pool);
	while ((zhdr = evictable_tail(pool)) && (status = tries_take(&tries, zhdr->pfn)) == 1) {
		uint64_t handles[3];
		size_t n = 0, i;
		int ret = 0;

		link_del(&zhdr->lru);
		list_del_from(zhdr);
		pool->common.reclaim_pages_scanned++;	/* pages claimed, not those skipped */
		zhdr->claimed = true;
		/* The handles are taken before any callback runs, as the kernel
		 * encodes them under the page lock; an empty slot's handle is 0. */
		if (zhdr->headless) {
			handles[n++] = zhdr->handles[HEADLESS];
		} else {
			static const enum buddy evict_order[] = { MIDDLE, FIRST, LAST };

			for (i = 0; i < 3; i++)
				if (zhdr->handles[evict_order[i]])
					handles[n++] = zhdr->handles[evict_order[i]];
		}
		for (i = 0; i < n && !ret; i++) {
			status = zpool_call_evict(&pool->common, handles[i], &ret);
			if (status)
				goto out;		/* the page stays claimed, as in Python */
		}
		zhdr->claimed = false;
		if (zhdr->headless) {
			if (ret == 0) {
				table_delete(pool, lookup(pool, handles[0]));
				release_page(pool, zhdr);
				tries_release(&tries);
				*result = 0;
				return 0;
			}
		} else if (is_empty(zhdr)) {
			release_page(pool, zhdr);
			tries_release(&tries);
			*result = 0;
			return 0;
		} else {
			add_to_unbuddied(pool, zhdr);
		}
		link_add(&zhdr->lru, &pool->lru);	/* back at the head */
		status = tries_put_back(&tries, zhdr->pfn);
		if (status)
			break;
	}
out:
	tries_release(&tries);
	*result = -EAGAIN;
	return status;
}

/* -- the audit -------------------------------------------------------------- */

static int check_page(struct z3fold_pool *pool, uint32_t pfn, const struct z3fold_header *zhdr,
		      uint64_t *objects, uint64_t *listed)
{
	struct zpool_common *c = &pool->common;
	struct extent extents[5];
	const char *stale[4];
	size_t n = 0, nstale = 0, i;
	uint32_t in_page = 0, foreign = 0;
	int bud, status;

	if (zhdr->pfn != pfn)
		return zpool_corrupted(c, "page %u: its header says page %u", pfn, zhdr->pfn);
	if (zhdr->claimed)
		return zpool_corrupted(c, "page %u: claimed outside reclaim_page", pfn);
	/* The chunks each part takes: the header (none when headless) and every
	 * object from its offset; none may overlap another. */
	if (!zhdr->headless)
		extents[n++] = (struct extent){ 0, ZHDR_SIZE_ALIGNED, "header" };
	for (bud = HEADLESS; bud <= LAST; bud++) {
		const char *name = buddy_names[bud];
		uint64_t handle = zhdr->handles[bud];
		bool used = bud == HEADLESS ? zhdr->headless : buddy_chunks(zhdr, bud) > 0;
		const struct z3fold_object *obj;
		uint32_t chunks, start;
		bool fits;

		if (!!handle != used)
			return zpool_corrupted(c, "page %u: %s slot's handle vs its chunks", pfn,
					       name);
		if (!handle)
			continue;
		obj = lookup(pool, handle);
		if (!obj || obj->zhdr != zhdr || (int)obj->bud != bud)
			return zpool_corrupted(c, "page %u: %s handle %llu names another place", pfn,
					       name, (unsigned long long)handle);
		chunks = size_to_chunks(obj->size);
		fits = bud == HEADLESS ? MAX_SHARED_SIZE < obj->size && obj->size <= PAGE_SIZE
			: 0 < obj->size && obj->size <= MAX_SHARED_SIZE &&
			  chunks == buddy_chunks(zhdr, bud);
		if (!fits)
			return zpool_corrupted(c, "page %u: %s object of %u bytes does not fit its slot",
					       pfn, name, obj->size);
		start = buddy_offset(zhdr, bud);
		extents[n++] = (struct extent){ start, start + (chunks << CHUNK_SHIFT), name };
		if (obj->offset != start)
			stale[nstale++] = name;
		in_page++;
		foreign += obj->foreign;
	}
	if (!in_page)
		return zpool_corrupted(c, "page %u: empty but held", pfn);
	*objects += in_page;
	status = check_disjoint(c, pfn, extents, n);
	if (status)
		return status;
	if (foreign != zhdr->foreign_handles)
		return zpool_corrupted(c, "page %u: foreign_handles %u, %u objects moved in", pfn,
				       zhdr->foreign_handles, foreign);
	if (nstale) {
		char names[64] = "";
		size_t used = 0;

		for (i = 0; i < nstale; i++)
			used += (size_t)snprintf(names + used, sizeof(names) - used,
						 i ? ", %s" : "%s", stale[i]);
		return zpool_corrupted(c, "page %u: the %s handle's offset is stale", pfn, names);
	}
	if (zhdr->headless || is_full(zhdr)) {
		if (zhdr->list != LIST_NONE)
			return zpool_corrupted(c, "page %u: on a list with no free slot", pfn);
	} else {
		int free_chunks = num_free_chunks(zhdr);

		if (zhdr->list != free_chunks || link_empty(&zhdr->buddy))
			return zpool_corrupted(c, "page %u: not on unbuddied[%d]", pfn, free_chunks);
		(*listed)++;
	}
	if (link_empty(&zhdr->lru))
		return zpool_corrupted(c, "page %u: not on the LRU", pfn);
	return 0;
}

int z3fold_check(void *opaque)
{
	struct z3fold_pool *pool = opaque;
	struct zpool_common *c = &pool->common;
	char unmarked[ZE_MESSAGE_LEN] = "";
	uint64_t objects = 0, listed = 0, entries = 0, lru = 0;
	const struct link *node;
	size_t used = 0;
	uint32_t pfn, list;
	int status;

	for (pfn = 0; pfn < pool->pages_cap; pfn++)
		if (pool->pages[pfn] &&
		    (status = check_page(pool, pfn, pool->pages[pfn], &objects, &listed)))
			return status;
	if (objects != pool->nr_handles)
		return zpool_corrupted(c, "%llu handles for %llu objects in the pages",
				       (unsigned long long)pool->nr_handles,
				       (unsigned long long)objects);
	for (list = 0; list < NCHUNKS; list++)
		for (node = pool->unbuddied[list].next; node != &pool->unbuddied[list];
		     node = node->next)
			entries++;
	if (entries != listed)
		return zpool_corrupted(c, "%llu unbuddied entries for %llu pages",
				       (unsigned long long)entries, (unsigned long long)listed);
	for (list = 0; list < NCHUNKS; list++)
		if (!link_empty(&pool->unbuddied[list]) && !(pool->mask >> list & 1) &&
		    used + 8 < sizeof(unmarked))
			used += (size_t)snprintf(unmarked + used, sizeof(unmarked) - used,
						 used ? ", %u" : "%u", list);
	if (used)
		return zpool_corrupted(c, "unbuddied[%s] listed but their mask bits clear",
				       unmarked);
	for (node = pool->lru.next; node != &pool->lru; node = node->next)
		lru++;
	if (lru != pool->nr_pages)
		return zpool_corrupted(c, "%llu LRU entries for %llu pages",
				       (unsigned long long)lru, (unsigned long long)pool->nr_pages);
	return 0;
}

/* -- introspection ---------------------------------------------------------- */

uint64_t z3fold_pfns(const void *opaque, uint32_t *out, uint64_t cap)
{
	const struct z3fold_pool *pool = opaque;
	uint64_t n = 0;
	uint32_t pfn;

	for (pfn = 0; pfn < pool->pages_cap; pfn++)
		if (pool->pages[pfn]) {
			if (n < cap)
				out[n] = pfn;
			n++;
		}
	return n;
}

/* -- the driver table --------------------------------------------------------- */

static void *driver_create(const struct frame_source *src, bool has_evict,
			   const struct zpool_options *options)
{
	(void)options;
	return z3fold_create(src, has_evict);
}

static int driver_span(void *pool, uint64_t handle, struct zpool_span *span)
{
	const char *buddy;

	span->next = NULL;
	return z3fold_locate(pool, handle, &span->pfn, &buddy, &span->frame, &span->offset,
			     &span->size);
}

const struct zpool_driver z3fold_driver = {
	.name = "z3fold",
	.create = driver_create,
	.destroy = z3fold_destroy,
	.common = z3fold_common,
	.malloc = z3fold_malloc,
	.free = z3fold_free,
	.span = driver_span,
	.reclaim_page = z3fold_reclaim_page,
	.total_pages = z3fold_total_pages,
	.order = z3fold_order,
	.check = z3fold_check,
};
