/*
 * zsmalloc.c - the compiled twin of zswapsim/zpool/zsmalloc.py: size classes
 * over chains of pages, as mm/zsmalloc.c of Linux 6.1, with the zspage LRU
 * reclaim that 6.2 to 6.4 had and the longer chains of 6.3+.
 *
 * Every request grows by the 8-byte handle header (ZS_HANDLE_SIZE) and is
 * served from a size class: classes are 16 bytes apart from 32 to 4096.  A
 * class packs objects of its size back to back into a "zspage", a chain of up
 * to `chain_size` pages, so an object may straddle two pages and is copied in
 * two parts.  With chain_size 4 (the default, and the only choice before 6.3)
 * the chain length is 6.1's get_pages_per_zspage: the highest integer
 * percentage used, the shortest chain winning a tie.  Any other chain size
 * (CONFIG_ZSMALLOC_CHAIN_SIZE, 5..16, default 8 from 6.3 on) uses 6.3's
 * calculate_zspage_chain_size: the fewest bytes wasted, one page for a power
 * of two.  Classes whose chains would have the same pages and objects are
 * merged into the larger one, walking from the largest class down; the first
 * class from the top that is not "huge" (one object per single page) sets
 * huge_class_size.
 *
 * A zspage sits on its class's fullness list (6.1's four groups: empty,
 * almost empty with at most 3/4 of its objects in use, almost full, full):
 * allocation takes the head of almost full, else of almost empty, and a new
 * zspage only when both are empty.  Pages with more objects in use go to the
 * head of their list.  Free objects form a LIFO list inside each zspage; a
 * zspage whose last object is freed is released at once.
 *
 * Handles are indirect, as in the kernel (a slab word holding the object's
 * location), which is what lets compact() move objects: zs_compact walks the
 * classes from the top and, per class while zs_can_compact finds a whole
 * zspage's worth of unused slots, moves the live objects of the emptiest
 * zspage (almost empty first) into the fullest (almost full first), freeing
 * the source when it empties.  Here, as in the Python model, handles count
 * up from 1 and a hash table maps each to its zspage, slot and size.
 *
 * Reclaim is zs_reclaim_page of 6.2-6.4: every allocation moves its zspage to
 * the head of a pool LRU; reclaim takes the tail zspage off its fullness
 * list, marks it under reclaim and evicts its allocated objects in index
 * order through the owner's callback, stopping at the first failure.  Objects
 * freed meanwhile are not reusable until the loop ends.  An emptied zspage is
 * freed and 0 returned; otherwise its free list is rebuilt in index order and
 * it goes back to its fullness list and to the LRU head, and the next tail is
 * tried, `retries` times, then -EAGAIN.  An empty LRU or no evict callback
 * gives -EINVAL; unlike zbud, retries 0 gives -EAGAIN.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "zsmalloc.h"

#define ZS_HANDLE_SIZE 8
#define ZS_MIN_ALLOC_SIZE 32
#define ZS_MAX_ALLOC_SIZE PAGE_SIZE
#define CLASS_BITS 8
#define ZS_SIZE_CLASS_DELTA (PAGE_SIZE >> CLASS_BITS)		/* 16 */
#define ZS_SIZE_CLASSES ((int)((ZS_MAX_ALLOC_SIZE - ZS_MIN_ALLOC_SIZE + ZS_SIZE_CLASS_DELTA \
				- 1) / ZS_SIZE_CLASS_DELTA + 1))	/* 255 */
_Static_assert(ZS_SIZE_CLASSES == ZS_NR_CLASSES, "zsmalloc.h's class count");
#define FULLNESS_THRESHOLD_FRAC 4

enum fullness { ZS_EMPTY, ZS_ALMOST_EMPTY, ZS_ALMOST_FULL, ZS_FULL, NR_FULLNESS };

#define GROUP_NONE (-1)		/* off the fullness lists */

struct size_class {
	uint32_t index, size, pages_per_zspage, objs_per_zspage;
	bool huge;
	uint32_t header_len;		/* the handle word heading a non-huge object */
	uint32_t almost_empty_max;
	struct link fullness[NR_FULLNESS];	/* fullness[g].next is the list head */
	uint64_t listed[NR_FULLNESS];
	uint64_t zspages;		/* OBJ_ALLOCATED = zspages * objs_per_zspage */
	uint64_t obj_used;		/* OBJ_USED */
};

struct zspage {
	uint64_t id;
	struct size_class *cls;
	uint32_t pfns[ZS_CHAIN_MAX];
	uint8_t *frames[ZS_CHAIN_MAX];	/* the pages' frames, in chain order */
	uint32_t inuse;
	uint32_t nfree;
	uint32_t *free_objs;		/* free_objs[nfree - 1] is the free list's head */
	uint64_t *objects;		/* object index -> handle; 0 for a free slot */
	int group;
	bool under_reclaim;
	struct link list;		/* on cls->fullness[group] */
	struct link lru;		/* self-linked while off the LRU */
	struct link all;		/* on the pool's list of every zspage */
};

struct handle_entry {
	uint64_t handle;		/* 0: an empty slot of the table */
	struct zspage *zspage;
	uint32_t index, size;
};

struct zs_pool {
	struct zpool_common common;	/* first: module.c reads the counters here */
	uint32_t chain_size;
	struct size_class *size_class[ZS_SIZE_CLASSES];
	struct size_class classes[ZS_SIZE_CLASSES];	/* the distinct ones sit at their index */
	uint32_t huge_class_size;
	uint64_t pages_allocated, pages_compacted;
	struct handle_entry *table;	/* open addressing, linear probing */
	uint64_t table_cap, nr_handles;
	struct link lru;		/* lru.next is the LRU head (most recent) */
	struct link zspages;		/* every zspage, for zs_destroy */
	uint64_t next_handle, next_zspage;
};

/* get_pages_per_zspage: the chain length with the best integer used-%. */
static uint32_t pages_per_zspage_6_1(uint32_t class_size, uint32_t max_pages)
{
	uint32_t best_used = 0, best_pages = 1, pages;

	for (pages = 1; pages <= max_pages; pages++) {
		uint32_t span = pages * PAGE_SIZE;
		uint32_t used = (span - span % class_size) * 100 / span;

		if (used > best_used) {
			best_used = used;
			best_pages = pages;
		}
	}
	return best_pages;
}

/* calculate_zspage_chain_size: the chain length that wastes the fewest bytes. */
static uint32_t chain_pages_6_3(uint32_t class_size, uint32_t chain_size)
{
	uint32_t best_waste = PAGE_SIZE, best_pages = 1, pages;

	if ((class_size & (class_size - 1)) == 0)
		return 1;
	for (pages = 1; pages <= chain_size; pages++) {
		uint32_t waste = pages * PAGE_SIZE % class_size;

		if (waste < best_waste) {
			best_waste = waste;
			best_pages = pages;
		}
	}
	return best_pages;
}

static uint32_t zspage_pages(uint32_t class_size, uint32_t chain_size)
{
	if (chain_size == 4)
		return pages_per_zspage_6_1(class_size, 4);
	return chain_pages_6_3(class_size, chain_size);
}

/* get_size_class_index for a request that already includes the header. */
static uint32_t class_index(uint32_t size)
{
	uint32_t index = size <= ZS_MIN_ALLOC_SIZE ? 0
		: (size - ZS_MIN_ALLOC_SIZE + ZS_SIZE_CLASS_DELTA - 1) / ZS_SIZE_CLASS_DELTA;

	return index < ZS_SIZE_CLASSES - 1 ? index : ZS_SIZE_CLASSES - 1;
}

static int fullness_group(const struct size_class *cls, uint32_t inuse)
{
	if (inuse == 0)
		return ZS_EMPTY;
	if (inuse == cls->objs_per_zspage)
		return ZS_FULL;
	if (inuse <= cls->almost_empty_max)
		return ZS_ALMOST_EMPTY;
	return ZS_ALMOST_FULL;
}

static uint64_t obj_allocated(const struct size_class *cls)
{
	return cls->zspages * cls->objs_per_zspage;
}

/* zs_can_compact: pages a perfect repacking of this class would free. */
static uint64_t can_compact(const struct size_class *cls)
{
	uint64_t allocated = obj_allocated(cls);

	if (allocated <= cls->obj_used)
		return 0;
	return (allocated - cls->obj_used) / cls->objs_per_zspage * cls->pages_per_zspage;
}

struct zs_pool *zs_create(const struct frame_source *src, bool has_evict, uint32_t chain_size)
{
	struct zs_pool *pool;
	struct size_class *previous = NULL;
	int index;

	if (chain_size < ZS_CHAIN_MIN || chain_size > ZS_CHAIN_MAX)
		return NULL;
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return NULL;
	zpool_common_init(&pool->common, src, has_evict);
	pool->chain_size = chain_size;
	link_init(&pool->lru);
	link_init(&pool->zspages);
	pool->next_handle = 1;
	for (index = ZS_SIZE_CLASSES - 1; index >= 0; index--) {
		uint32_t size = ZS_MIN_ALLOC_SIZE + (uint32_t)index * ZS_SIZE_CLASS_DELTA;
		uint32_t pages, objs, group;
		struct size_class *cls;

		if (size > ZS_MAX_ALLOC_SIZE)
			size = ZS_MAX_ALLOC_SIZE;
		pages = zspage_pages(size, chain_size);
		objs = pages * PAGE_SIZE / size;
		if (pages != 1 && objs != 1 && !pool->huge_class_size)
			pool->huge_class_size = size - (ZS_HANDLE_SIZE - 1);
		if (previous && previous->pages_per_zspage == pages &&
		    previous->objs_per_zspage == objs) {
			pool->size_class[index] = previous;
			continue;
		}
		cls = &pool->classes[index];
		cls->index = (uint32_t)index;
		cls->size = size;
		cls->pages_per_zspage = pages;
		cls->objs_per_zspage = objs;
		cls->huge = pages == 1 && objs == 1;
		cls->header_len = cls->huge ? 0 : ZS_HANDLE_SIZE;
		cls->almost_empty_max = 3 * objs / FULLNESS_THRESHOLD_FRAC;
		for (group = 0; group < NR_FULLNESS; group++)
			link_init(&cls->fullness[group]);
		previous = pool->size_class[index] = cls;
	}
	return pool;
}

static void release_zspage(struct zspage *zspage)
{
	free(zspage->free_objs);
	free(zspage->objects);
	free(zspage);
}

void zs_destroy(void *opaque)
{
	struct zs_pool *pool = opaque;

	while (!link_empty(&pool->zspages)) {
		struct zspage *zspage = link_entry(pool->zspages.next, struct zspage, all);

		link_del(&zspage->all);
		release_zspage(zspage);
	}
	free(pool->table);
	zpool_common_release(&pool->common);
	free(pool);
}

struct zpool_common *zs_common(void *opaque)
{
	struct zs_pool *pool = opaque;

	return &pool->common;
}

/* -- the handle table ---------------------------------------------------------- */

static uint64_t slot_of(const struct zs_pool *pool, uint64_t handle)
{
	return (handle * 0x9e3779b97f4a7c15ull) >> 17 & (pool->table_cap - 1);
}

static struct handle_entry *lookup(const struct zs_pool *pool, uint64_t handle)
{
	uint64_t i;

	if (!pool->table_cap || !handle)
		return NULL;
	for (i = slot_of(pool, handle); pool->table[i].handle; i = (i + 1) & (pool->table_cap - 1))
		if (pool->table[i].handle == handle)
			return &pool->table[i];
	return NULL;
}

static void place(struct zs_pool *pool, const struct handle_entry *entry)
{
	uint64_t i = slot_of(pool, entry->handle);

	while (pool->table[i].handle)
		i = (i + 1) & (pool->table_cap - 1);
	pool->table[i] = *entry;
}

static int table_insert(struct zs_pool *pool, const struct handle_entry *entry)
{
	if (2 * (pool->nr_handles + 1) > pool->table_cap) {
		uint64_t old_cap = pool->table_cap, i;
		struct handle_entry *old = pool->table;
		uint64_t cap = old_cap ? 2 * old_cap : 1024;

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
	}
	place(pool, entry);
	pool->nr_handles++;
	return 0;
}

/* Delete with backward shift, so lookups need no tombstones. */
static void table_delete(struct zs_pool *pool, struct handle_entry *entry)
{
	uint64_t mask = pool->table_cap - 1;
	uint64_t hole = (uint64_t)(entry - pool->table), i = hole;

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

/* -- fullness lists ---------------------------------------------------------- */

/* insert_zspage: at the head, or just behind a head with more in use. */
static void insert_zspage(struct zspage *zspage, int group)
{
	struct size_class *cls = zspage->cls;
	struct link *head = &cls->fullness[group];

	zspage->group = group;
	cls->listed[group]++;
	if (!link_empty(head)) {
		struct zspage *first = link_entry(head->next, struct zspage, list);

		if (zspage->inuse < first->inuse) {	/* the busier head stays in front */
			link_add(&zspage->list, &first->list);
			return;
		}
	}
	link_add(&zspage->list, head);
}

/* remove_zspage: take it off its fullness list. */
static void remove_zspage(struct zspage *zspage)
{
	link_del(&zspage->list);
	zspage->cls->listed[zspage->group]--;
	zspage->group = GROUP_NONE;
}

/* putback_zspage: onto the list its fill calls for (none when empty). */
static int putback_zspage(struct zspage *zspage)
{
	int group = fullness_group(zspage->cls, zspage->inuse);

	if (group != ZS_EMPTY)
		insert_zspage(zspage, group);
	return group;
}

static struct zspage *list_head_zspage(struct size_class *cls, int group)
{
	struct link *head = &cls->fullness[group];

	return link_empty(head) ? NULL : link_entry(head->next, struct zspage, list);
}

/* -- zspages ------------------------------------------------------------------ */

static int alloc_zspage(struct zs_pool *pool, struct size_class *cls, struct zspage **out)
{
	struct frame_source *src = &pool->common.src;
	struct zspage *zspage = calloc(1, sizeof(*zspage));
	uint32_t i, n = cls->objs_per_zspage;
	int status = ZE_OOM;

	if (!zspage)
		return ZE_OOM;
	zspage->free_objs = malloc(n * sizeof(*zspage->free_objs));
	zspage->objects = calloc(n, sizeof(*zspage->objects));
	if (!zspage->free_objs || !zspage->objects) {
		release_zspage(zspage);
		return ZE_OOM;
	}
	for (i = 0; i < cls->pages_per_zspage; i++) {
		status = src->alloc(src->ctx, &zspage->pfns[i], &zspage->frames[i]);
		if (status) {			/* give back those taken, in order */
			uint32_t j;

			for (j = 0; j < i; j++)
				src->free(src->ctx, zspage->pfns[j]);
			release_zspage(zspage);
			return status;
		}
	}
	for (i = 0; i < n; i++)			/* the lowest index at the head */
		zspage->free_objs[i] = n - 1 - i;
	zspage->nfree = n;
	zspage->cls = cls;
	zspage->group = GROUP_NONE;
	link_init(&zspage->list);
	link_init(&zspage->lru);
	link_add(&zspage->all, &pool->zspages);
	pool->pages_allocated += cls->pages_per_zspage;
	cls->zspages++;
	zspage->id = ++pool->next_zspage;
	*out = zspage;
	return 0;
}

static void free_zspage(struct zs_pool *pool, struct zspage *zspage)
{
	struct frame_source *src = &pool->common.src;
	uint32_t i;

	for (i = 0; i < zspage->cls->pages_per_zspage; i++)
		src->free(src->ctx, zspage->pfns[i]);
	pool->pages_allocated -= zspage->cls->pages_per_zspage;
	zspage->cls->zspages--;
	link_del(&zspage->lru);
	link_del(&zspage->all);
	release_zspage(zspage);
}

/* Copy n bytes to or from byte `offset` of the zspage; an object lies in one
 * page or straddles two. */
static void copy_span(struct zspage *zspage, uint32_t offset, uint8_t *buf, uint32_t n,
		      bool to_zspage)
{
	uint32_t page = offset >> PAGE_SHIFT, start = offset & PAGE_MASK;
	uint32_t first = n < PAGE_SIZE - start ? n : PAGE_SIZE - start;

	if (to_zspage) {
		memcpy(zspage->frames[page] + start, buf, first);
		if (first < n)
			memcpy(zspage->frames[page + 1], buf + first, n - first);
	} else {
		memcpy(buf, zspage->frames[page] + start, first);
		if (first < n)
			memcpy(buf + first, zspage->frames[page + 1], n - first);
	}
}

/* -- the zpool API ---------------------------------------------------------- */

int zs_malloc(void *opaque, long long size, uint64_t *handle_out)
{
	struct zs_pool *pool = opaque;
	struct size_class *cls;
	struct zspage *zspage;
	struct handle_entry entry;
	uint64_t handle;
	uint32_t index;
	int group, status;

	if (size <= 0 || size > ZS_MAX_ALLOC_SIZE)
		return -EINVAL;
	cls = pool->size_class[class_index((uint32_t)size + ZS_HANDLE_SIZE)];
	zspage = list_head_zspage(cls, ZS_ALMOST_FULL);
	if (!zspage)
		zspage = list_head_zspage(cls, ZS_ALMOST_EMPTY);
	if (!zspage) {
		status = alloc_zspage(pool, cls, &zspage);
		if (status)
			return status;
	}
	handle = pool->next_handle;
	entry = (struct handle_entry){ handle, zspage, zspage->free_objs[zspage->nfree - 1],
				       (uint32_t)size };
	status = table_insert(pool, &entry);
	if (status) {
		if (zspage->group == GROUP_NONE)
			free_zspage(pool, zspage);
		return status;
	}
	pool->next_handle = handle + 1;
	index = zspage->free_objs[--zspage->nfree];
	zspage->inuse++;
	zspage->objects[index] = handle;
	cls->obj_used++;
	group = fullness_group(cls, zspage->inuse);
	if (zspage->group == GROUP_NONE) {		/* a new zspage */
		insert_zspage(zspage, group);
		link_add(&zspage->lru, &pool->lru);
	} else {
		if (group != zspage->group) {
			remove_zspage(zspage);
			insert_zspage(zspage, group);
		}
		link_del(&zspage->lru);
		link_add(&zspage->lru, &pool->lru);
	}
	if (cls->header_len) {			/* the handle word heads a non-huge object */
		uint8_t word[ZS_HANDLE_SIZE];
		int i;

		for (i = 0; i < ZS_HANDLE_SIZE; i++)
			word[i] = (uint8_t)(handle >> (8 * i));
		copy_span(zspage, index * cls->size, word, ZS_HANDLE_SIZE, true);
	}
	*handle_out = handle;
	return 0;
}

int zs_free(void *opaque, uint64_t handle)
{
	struct zs_pool *pool = opaque;
	struct handle_entry *entry = lookup(pool, handle);
	struct zspage *zspage;
	struct size_class *cls;
	uint32_t index;
	int group;

	if (!entry)
		return ZE_NOT_IN_POOL;
	zspage = entry->zspage;
	index = entry->index;
	table_delete(pool, entry);
	zspage->objects[index] = 0;
	zspage->inuse--;
	cls = zspage->cls;
	cls->obj_used--;
	if (zspage->under_reclaim)
		return 0;		/* the slot stays unusable until reclaim is done */
	zspage->free_objs[zspage->nfree++] = index;
	group = fullness_group(cls, zspage->inuse);
	if (group != zspage->group) {
		remove_zspage(zspage);
		if (group == ZS_EMPTY)
			free_zspage(pool, zspage);
		else
			insert_zspage(zspage, group);
	}
	return 0;
}

int zs_object(struct zs_pool *pool, uint64_t handle, struct zs_object *obj)
{
	const struct handle_entry *entry = lookup(pool, handle);
	const struct size_class *cls;
	uint32_t offset, page;

	if (!entry)
		return ZE_NOT_IN_POOL;
	cls = entry->zspage->cls;
	offset = entry->index * cls->size + cls->header_len;
	page = offset >> PAGE_SHIFT;
	obj->size = entry->size;
	obj->offset = offset & PAGE_MASK;
	obj->pfn = entry->zspage->pfns[page];
	obj->frame = entry->zspage->frames[page];
	obj->next_frame = obj->offset + obj->size > PAGE_SIZE ? entry->zspage->frames[page + 1]
		: NULL;
	obj->zspage_id = entry->zspage->id;
	obj->index = entry->index;
	return 0;
}

uint64_t zs_total_pages(const void *opaque)
{
	const struct zs_pool *pool = opaque;

	return pool->pages_allocated;
}

/* -- reclaim (6.2-6.4) ------------------------------------------------------ */

static void restore_freelist(struct zspage *zspage)
{
	uint32_t i = zspage->cls->objs_per_zspage;

	zspage->nfree = 0;
	while (i--)
		if (!zspage->objects[i])
			zspage->free_objs[zspage->nfree++] = i;
}

int zs_order(void *opaque, struct order *out)
{
	struct zs_pool *pool = opaque;
	const struct link *node;
	int status = 0, index, group;

	for (node = pool->lru.prev; node != &pool->lru && !status; node = node->prev)
		status = order_push(out, link_entry(node, const struct zspage, lru)->id);
	if (!status)
		status = order_push(out, UINT64_MAX);
	for (index = 0; index < ZS_SIZE_CLASSES && !status; index++) {
		const struct size_class *cls = pool->size_class[index];

		if (cls->index != (uint32_t)index)
			continue;
		for (group = 0; group < NR_FULLNESS && !status; group++) {
			const struct link *head = &cls->fullness[group];

			for (node = head->prev; node != head && !status; node = node->prev)
				status = order_push(out, link_entry(node, const struct zspage,
								    list)->id);
			if (!status)
				status = order_push(out, UINT64_MAX);
		}
	}
	return status;
}

int zs_reclaim_page(void *opaque, long long retries, int *result)
{
	struct zs_pool *pool = opaque;
	struct reclaim_tries tries;
	int status;

	pool->common.reclaim_calls++;
	if (!pool->common.has_evict || link_empty(&pool->lru)) {
		*result = -EINVAL;
		return 0;
	}
	tries_init(&tries, &pool->common, retries, zs_order, pool);
	while ((status = tries_take(&tries, link_entry(pool->lru.prev, struct zspage,
							    lru)->id)) == 1) {
		struct zspage *zspage = link_entry(pool->lru.prev, struct zspage, lru);
		uint32_t index;
		int ret;

		link_del(&zspage->lru);			/* the LRU tail */
		pool->common.reclaim_pages_scanned++;
		zspage->under_reclaim = true;
		remove_zspage(zspage);
		/* In index order; a callback may free later objects, but nothing
		 * can be allocated here (the zspage is on no fullness list). */
		for (index = 0; index < zspage->cls->objs_per_zspage; index++) {
			if (!zspage->objects[index])
				continue;
			status = zpool_call_evict(&pool->common, zspage->objects[index], &ret);
			if (status) {
				tries_release(&tries);
				*result = -EAGAIN;
				return status;
			}
			if (ret)
				break;
		}
		zspage->under_reclaim = false;
		if (zspage->inuse == 0) {
			free_zspage(pool, zspage);
			tries_release(&tries);
			*result = 0;
			return 0;
		}
		restore_freelist(zspage);
		putback_zspage(zspage);
		link_add(&zspage->lru, &pool->lru);		/* back at the head */
		status = tries_put_back(&tries, zspage->id);
		if (status)
			break;
	}
	tries_release(&tries);
	*result = -EAGAIN;
	return status;
}

/* -- compaction ------------------------------------------------------------- */

/* isolate_zspage: a source is the emptiest, a destination the fullest. */
static struct zspage *isolate_zspage(struct size_class *cls, bool source)
{
	int first = source ? ZS_ALMOST_EMPTY : ZS_ALMOST_FULL;
	int second = source ? ZS_ALMOST_FULL : ZS_ALMOST_EMPTY;
	struct zspage *zspage = list_head_zspage(cls, first);

	if (!zspage)
		zspage = list_head_zspage(cls, second);
	if (zspage)
		remove_zspage(zspage);
	return zspage;
}

/* migrate_zspage: move src's objects in index order into dst's free slots
 * (its free list head first); true if dst filled up first. */
static bool migrate_zspage(struct zs_pool *pool, struct zspage *src, struct zspage *dst)
{
	uint32_t size = src->cls->size, index;
	uint8_t buf[ZS_MAX_ALLOC_SIZE];

	for (index = 0; index < src->cls->objs_per_zspage; index++) {
		uint64_t handle = src->objects[index];
		struct handle_entry *entry;
		uint32_t slot;

		if (!handle)
			continue;
		if (dst->inuse == dst->cls->objs_per_zspage)
			return true;
		src->objects[index] = 0;
		slot = dst->free_objs[--dst->nfree];
		copy_span(src, index * size, buf, size, false);
		copy_span(dst, slot * size, buf, size, true);
		dst->objects[slot] = handle;
		dst->inuse++;
		src->free_objs[src->nfree++] = index;
		src->inuse--;
		entry = lookup(pool, handle);
		entry->zspage = dst;
		entry->index = slot;
	}
	return false;
}

/* __zs_compact for one class. */
static uint64_t compact_class(struct zs_pool *pool, struct size_class *cls)
{
	struct zspage *src, *dst = NULL;
	uint64_t freed = 0;

	while ((src = isolate_zspage(cls, true))) {
		if (!can_compact(cls))
			break;
		while ((dst = isolate_zspage(cls, false))) {
			if (!migrate_zspage(pool, src, dst))
				break;			/* src has no objects left */
			putback_zspage(dst);		/* dst is full: try another */
		}
		if (!dst)
			break;
		putback_zspage(dst);
		if (putback_zspage(src) == ZS_EMPTY) {
			free_zspage(pool, src);
			freed += cls->pages_per_zspage;
		}
		src = NULL;
	}
	if (src)
		putback_zspage(src);
	return freed;
}

uint64_t zs_compact(struct zs_pool *pool)
{
	uint64_t freed = 0;
	int index;

	for (index = ZS_SIZE_CLASSES - 1; index >= 0; index--)
		if (pool->size_class[index]->index == (uint32_t)index)
			freed += compact_class(pool, pool->size_class[index]);
	pool->pages_compacted += freed;
	return freed;
}

/* -- reports and the audit -------------------------------------------------- */

uint32_t zs_huge_class_size(const struct zs_pool *pool)
{
	return pool->huge_class_size;
}

uint32_t zs_chain_size(const struct zs_pool *pool)
{
	return pool->chain_size;
}

uint64_t zs_pages_compacted(const struct zs_pool *pool)
{
	return pool->pages_compacted;
}

int zs_class_stats(const struct zs_pool *pool, uint32_t index, struct zs_class_stats *row)
{
	const struct size_class *cls;

	if (index >= ZS_SIZE_CLASSES || pool->size_class[index]->index != index)
		return 0;
	cls = pool->size_class[index];
	row->index = cls->index;
	row->size = cls->size;
	row->almost_full = cls->listed[ZS_ALMOST_FULL];
	row->almost_empty = cls->listed[ZS_ALMOST_EMPTY];
	row->obj_allocated = obj_allocated(cls);
	row->obj_used = cls->obj_used;
	row->pages_used = cls->zspages * cls->pages_per_zspage;
	row->pages_per_zspage = cls->pages_per_zspage;
	row->objs_per_zspage = cls->objs_per_zspage;
	row->freeable = can_compact(cls);
	return 1;
}

static int check_zspage(struct zs_pool *pool, const struct size_class *cls,
			const struct zspage *z, int group)
{
	struct zpool_common *c = &pool->common;
	uint32_t i, objects = 0, free_slots = 0;

	if (z->group != group || z->cls != cls)
		return zpool_corrupted(c, "zspage %llu: not on class %u's list %d",
				       (unsigned long long)z->id, cls->size, z->group);
	if (z->group != fullness_group(cls, z->inuse))
		return zpool_corrupted(c, "zspage %llu: group %d for %u objects in use",
				       (unsigned long long)z->id, z->group, z->inuse);
	for (i = 0; i < cls->objs_per_zspage; i++)
		objects += z->objects[i] != 0;
	if (z->inuse != objects || !objects)
		return zpool_corrupted(c, "zspage %llu: inuse %u, %u objects",
				       (unsigned long long)z->id, z->inuse, objects);
	for (i = 0; i < z->nfree; i++) {
		uint32_t slot = z->free_objs[i], j;

		if (slot >= cls->objs_per_zspage || z->objects[slot])
			break;
		for (j = 0; j < i && z->free_objs[j] != slot; j++)
			;
		if (j < i)
			break;
		free_slots++;
	}
	if (free_slots != z->nfree || z->nfree + z->inuse != cls->objs_per_zspage)
		return zpool_corrupted(c, "zspage %llu: free slots and objects disagree",
				       (unsigned long long)z->id);
	for (i = 0; i < cls->objs_per_zspage; i++) {
		const struct handle_entry *entry = z->objects[i] ? lookup(pool, z->objects[i])
			: NULL;

		if (z->objects[i] && (!entry || entry->zspage != z || entry->index != i))
			return zpool_corrupted(c, "zspage %llu: the handle of object %u names "
					       "another slot", (unsigned long long)z->id, i);
	}
	if (link_empty(&z->lru))
		return zpool_corrupted(c, "zspage %llu: not on the LRU",
				       (unsigned long long)z->id);
	return 0;
}

int zs_check(void *opaque)
{
	struct zs_pool *pool = opaque;
	struct zpool_common *c = &pool->common;
	uint64_t pages = 0, lru = 0, lru_live = 0, live = 0, i;
	const struct link *node;
	int index, group, status;

	/* the zspages holding an object are exactly those on the LRU */
	for (node = pool->lru.next; node != &pool->lru; node = node->next, lru++)
		lru_live += link_entry(node, const struct zspage, lru)->inuse > 0;
	for (node = pool->zspages.next; node != &pool->zspages; node = node->next)
		live += link_entry(node, const struct zspage, all)->inuse > 0;
	if (lru != live || lru_live != lru)
		return zpool_corrupted(c, "LRU holds exactly the live zspages: %llu LRU entries "
				       "for %llu zspages", (unsigned long long)lru,
				       (unsigned long long)live);
	for (index = 0; index < ZS_SIZE_CLASSES; index++) {
		const struct size_class *cls = pool->size_class[index];
		uint64_t listed = 0, in_use = 0;

		if (cls->index != (uint32_t)index)
			continue;
		for (group = 0; group < NR_FULLNESS; group++)
			for (node = cls->fullness[group].next; node != &cls->fullness[group];
			     node = node->next) {
				listed++;
				in_use += link_entry(node, const struct zspage, list)->inuse;
			}
		if (listed != cls->zspages)
			return zpool_corrupted(c, "class %u: %llu zspages listed, %llu counted",
					       cls->size, (unsigned long long)listed,
					       (unsigned long long)cls->zspages);
		if (in_use != cls->obj_used)
			return zpool_corrupted(c, "class %u: obj_used %llu, %llu objects in use",
					       cls->size, (unsigned long long)cls->obj_used,
					       (unsigned long long)in_use);
		for (group = 0; group < NR_FULLNESS; group++)
			for (node = cls->fullness[group].next; node != &cls->fullness[group];
			     node = node->next) {
				status = check_zspage(pool, cls, link_entry(node, const struct
									    zspage, list),
						      group);
				if (status)
					return status;
			}
		pages += cls->zspages * cls->pages_per_zspage;
	}
	for (i = 0; i < pool->table_cap; i++) {
		const struct handle_entry *entry = &pool->table[i];

		if (entry->handle && entry->zspage->objects[entry->index] != entry->handle)
			return zpool_corrupted(c, "handle %llu: its slot holds another object",
					       (unsigned long long)entry->handle);
	}
	if (pages != pool->pages_allocated)
		return zpool_corrupted(c, "pages_allocated %llu, the zspages hold %llu",
				       (unsigned long long)pool->pages_allocated,
				       (unsigned long long)pages);
	return 0;
}

/* -- the driver table --------------------------------------------------------- */

static void *driver_create(const struct frame_source *src, bool has_evict,
			   const struct zpool_options *options)
{
	return zs_create(src, has_evict, options->chain_size);
}

static int driver_span(void *pool, uint64_t handle, struct zpool_span *span)
{
	struct zs_object obj;
	int status = zs_object(pool, handle, &obj);

	if (status)
		return status;
	span->frame = obj.frame;
	span->next = obj.next_frame;
	span->pfn = obj.pfn;
	span->offset = obj.offset;
	span->size = obj.size;
	return 0;
}

const struct zpool_driver zsmalloc_driver = {
	.name = "zsmalloc",
	.create = driver_create,
	.destroy = zs_destroy,
	.common = zs_common,
	.malloc = zs_malloc,
	.free = zs_free,
	.span = driver_span,
	.reclaim_page = zs_reclaim_page,
	.total_pages = zs_total_pages,
	.order = zs_order,
	.check = zs_check,
};
