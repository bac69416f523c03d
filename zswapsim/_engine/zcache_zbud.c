/*
 * zcache_zbud.c - the compiled twin of zswapsim/zpool/zcache_zbud.py:
 * zcache's zbud, Dan Magenheimer's compression buddies allocator as
 * drivers/staging/zcache/zbud.c had it in Linux 3.8 to 3.10, before mainline
 * zbud (mm/zbud.c, 3.11) replaced it.  zcache was never a zswap allocator:
 * zswapsim puts it under zswap and zram as a what-if, beside mainline zbud.
 *
 * No header chunk: the bookkeeping (struct zbudpage: both zbud sizes as
 * PAGE_SHIFT-bit fields, an unevictable count, the budlist and lru list
 * heads) overlays the struct page, so all NCHUNKS = PAGE_SIZE >> 6 = 64
 * chunks of 64 bytes hold data.  Instead each zbud carries its tmem handle
 * (struct tmem_handle: a 24-byte oid, u32 index, u16 pool_id, u16 client_id,
 * 32 bytes) in front of the compressed bytes: the key tmem finds the zpage by
 * to invalidate it or repatriate it to the swap cache.  A zbud of n bytes of
 * data thus takes ceil((n + 32) / 64) chunks, at most MAX_CHUNK = 63, so
 * zbud_max_buddy_size is 63 * 64 - 32 = 4000 bytes; the caller must check it
 * (zcache rejected larger zpages as compress_poor, here -ENOSPC).  The
 * handle holds the owner's key: with `key_in_handle` = k, the first k bytes
 * of each object are that key and lie in the last k bytes of the handle, so
 * an object of n bytes is a zbud of n - k bytes of data.  zswap's 8-byte
 * header (the swap entry) is its key, as zcache's frontswap put the swap
 * type and offset in the handle's oid and index; zram, with no key, gets
 * objects after the whole handle.  The rest of the handle is left unwritten.
 *
 * The first zbud (budnum 0) starts at the pageframe's first byte, the second
 * (budnum 1) ends at its last; a handle is the zbudref, the page's address
 * with the budnum in bit 0.  Pages with one zbud wait on unbuddied[n], n the
 * chunks used; an allocation of c chunks tries the lists from n = 64 - c down
 * to 1 (the fullest page that fits) and takes the first entry, the oldest,
 * since pages are added at the tail.  A page whose zbud is freed while its
 * buddy lives goes to the tail of its buddy's list; full pages wait on the
 * buddied list.
 *
 * The LRU is by pageframe and approximate: a page moves to the MRU end when a
 * zbud is added to it and stays where it is when one is deleted, so pages
 * that are hard to buddy are reclaimed sooner.  zcache kept separate lists
 * for ephemeral (cleancache) and persistent (frontswap) pages; swap pages are
 * persistent, so this is the persistent side (zbud_make_zombie_lru) and the
 * ephemeral side is not modelled.  reclaim_page takes the pageframe least
 * recently added to, skipping those marked unevictable (a two-phase put
 * between create_prep and create_finish), and makes it a zombie: off the LRU
 * and its list for good, so it never takes a new zbud.  Its zbuds, first then
 * second, go through the owner's evict callback, stopping at the first
 * failure; the zombie is freed with its last zbud, and 0 returned.  A zombie
 * that keeps a zbud stays readable until its owner frees it, as zcache's did
 * after a failed writeback.  zcache's writeback took one pageframe a call;
 * under the zpool contract the next one is tried, up to `retries` pages, then
 * -EAGAIN.  zcache's own store policy (zbud_max_zsize, the mean-size check)
 * belonged to zcache, not zbud: zswap's store path applies instead.
 *
 * Against mainline zbud under zswap: one more chunk per page, but a 32-byte
 * handle per zbud where mainline's carries zswap's 8-byte header, so it is
 * denser only where that chunk lets two zbuds share a page.
 *
 * As in the Python model, the unbuddied lists are indexed by free chunks
 * (NCHUNKS - the kernel's used-chunk index, so that the first non-empty list
 * from c up is the fullest page that fits) with a mask of lists that may be
 * non-empty, and the zbudpage records live beside the frames.  The usual
 * eviction frees the zombie under reclaim_page's feet (its callback frees
 * the last zbud), so the loop holds the record until it is done with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "zcache_zbud.h"

#define CHUNK_SHIFT 6
#define CHUNK_SIZE (1u << CHUNK_SHIFT)				/* 64 */
#define NCHUNKS (PAGE_SIZE >> CHUNK_SHIFT)			/* 64: no header chunk */
#define MAX_CHUNK (NCHUNKS - 1)					/* 63 */
#define TMEM_HANDLE_SIZE (24 + 4 + 2 + 2)			/* struct tmem_handle: 32 */
#define MAX_ZBUD_SIZE (MAX_CHUNK << CHUNK_SHIFT)		/* 4032, handle included */
#define MAX_BUDDY_SIZE (MAX_ZBUD_SIZE - TMEM_HANDLE_SIZE)	/* 4000: zbud_max_buddy_size() */
_Static_assert(NCHUNKS == ZCACHE_NCHUNKS && TMEM_HANDLE_SIZE == ZCACHE_TMEM_HANDLE_SIZE &&
	       MAX_BUDDY_SIZE == ZCACHE_MAX_BUDDY_SIZE, "zcache_zbud.h's sizes");

#define LIST_NONE (-1)
#define LIST_BUDDIED ((int)NCHUNKS)
#define LIST_ZOMBIE ((int)NCHUNKS + 1)

/* struct zbudpage, the overlay of a pageframe's struct page. */
struct zbudpage {
	uint32_t pfn;
	uint8_t *frame;
	uint32_t zbud_size[2];		/* by budnum, tmem handle included; 0 = unused */
	uint32_t unevictable;
	bool zombie;
	int list;			/* LIST_NONE, unbuddied[0..63], LIST_BUDDIED or LIST_ZOMBIE */
	struct link buddy;		/* on that list */
	struct link lru;
	bool reclaiming;		/* reclaim_page holds the record */
	bool freed;			/* its page freed meanwhile: reclaim_page frees the record */
};

struct zcache_zbud_pool {
	struct zpool_common common;	/* first: module.c reads the counters here */
	struct zbudpage **pages;	/* pfn -> record, NULL where the pool holds no page */
	uint32_t pages_cap;
	uint64_t nr_pages, nr_zombies;
	uint32_t key_in_handle;
	struct link unbuddied[NCHUNKS];	/* by free chunks; .next is the head, the oldest */
	uint64_t mask;			/* bit n: unbuddied[n] may be non-empty */
	struct link buddied;
	struct link zombies;		/* taken by reclaim, not yet empty */
	struct link lru;		/* lru.next is the MRU end, lru.prev the oldest */
};

/* Chunks of a zbud of `zbud_size` bytes, its tmem handle included. */
static uint32_t size_to_chunks(uint32_t zbud_size)
{
	return (zbud_size + CHUNK_SIZE - 1) >> CHUNK_SHIFT;
}

static uint32_t used_chunks(const struct zbudpage *zbudpage)
{
	return size_to_chunks(zbudpage->zbud_size[0]) + size_to_chunks(zbudpage->zbud_size[1]);
}

/* Where zbud `budnum` starts: the page's first byte, or its last chunks. */
static uint32_t zbud_offset(const struct zbudpage *zbudpage, unsigned int budnum)
{
	if (budnum == 0)
		return 0;
	return PAGE_SIZE - (size_to_chunks(zbudpage->zbud_size[1]) << CHUNK_SHIFT);
}

struct zcache_zbud_pool *zcache_zbud_create(const struct frame_source *src, bool has_evict,
					    uint32_t key_in_handle)
{
	struct zcache_zbud_pool *pool;
	uint32_t i;

	if (key_in_handle > TMEM_HANDLE_SIZE || !(pool = calloc(1, sizeof(*pool))))
		return NULL;
	zpool_common_init(&pool->common, src, has_evict);
	pool->key_in_handle = key_in_handle;
	for (i = 0; i < NCHUNKS; i++)
		link_init(&pool->unbuddied[i]);
	link_init(&pool->buddied);
	link_init(&pool->zombies);
	link_init(&pool->lru);
	return pool;
}

void zcache_zbud_destroy(void *opaque)
{
	struct zcache_zbud_pool *pool = opaque;
	uint32_t pfn;

	for (pfn = 0; pfn < pool->pages_cap; pfn++)
		free(pool->pages[pfn]);
	free(pool->pages);
	zpool_common_release(&pool->common);
	free(pool);
}

struct zpool_common *zcache_zbud_common(void *opaque)
{
	struct zcache_zbud_pool *pool = opaque;

	return &pool->common;
}

/* -- helpers ---------------------------------------------------------------- */

/* The page of a handle naming a live zbud, else NULL. */
static struct zbudpage *page_of(const struct zcache_zbud_pool *pool, uint64_t handle)
{
	uint64_t pfn = handle >> PAGE_SHIFT;
	struct zbudpage *zbudpage = pfn < pool->pages_cap ? pool->pages[pfn] : NULL;

	if (!zbudpage || (handle & PAGE_MASK) > 1 || !zbudpage->zbud_size[handle & 1])
		return NULL;
	return zbudpage;
}

/* UnbuddiedLists.add with fifo: list_add_tail on unbuddied[free_chunks]. */
static void add_unbuddied(struct zcache_zbud_pool *pool, struct zbudpage *zbudpage,
			  uint32_t free_chunks)
{
	link_add_tail(&zbudpage->buddy, &pool->unbuddied[free_chunks]);
	zbudpage->list = (int)free_chunks;
	pool->mask |= 1ull << free_chunks;
}

static void list_del_from(struct zbudpage *zbudpage)
{
	link_del(&zbudpage->buddy);
	zbudpage->list = LIST_NONE;
}

/* UnbuddiedLists.take: the head (oldest) of the first non-empty list from
 * unbuddied[chunks] up, taken off its list, or NULL. */
static struct zbudpage *take_unbuddied(struct zcache_zbud_pool *pool, uint32_t chunks)
{
	uint64_t mask = pool->mask >> chunks;

	while (mask) {
		unsigned int n = chunks + (unsigned int)__builtin_ctzll(mask);
		struct link *head = &pool->unbuddied[n];

		if (!link_empty(head)) {
			struct zbudpage *zbudpage = link_entry(head->next, struct zbudpage, buddy);

			list_del_from(zbudpage);
			return zbudpage;
		}
		pool->mask &= ~(1ull << n);		/* emptied since its bit was set */
		mask &= mask - 1;
	}
	return NULL;
}

static void free_page(struct zcache_zbud_pool *pool, struct zbudpage *zbudpage)
{
	uint32_t pfn = zbudpage->pfn;

	pool->pages[pfn] = NULL;
	pool->nr_pages--;
	pool->common.src.free(pool->common.src.ctx, pfn);
	if (zbudpage->reclaiming)
		zbudpage->freed = true;
	else
		free(zbudpage);
}

static int hold_page(struct zcache_zbud_pool *pool, uint32_t pfn, uint8_t *frame,
		     struct zbudpage **out)
{
	struct zbudpage *zbudpage;

	if (pfn >= pool->pages_cap) {
		uint32_t cap = pool->pages_cap ? pool->pages_cap : 64;
		struct zbudpage **grown;

		while (cap <= pfn)
			cap *= 2;
		grown = realloc(pool->pages, cap * sizeof(*grown));
		if (!grown)
			return ZE_OOM;
		memset(grown + pool->pages_cap, 0, (cap - pool->pages_cap) * sizeof(*grown));
		pool->pages = grown;
		pool->pages_cap = cap;
	}
	zbudpage = calloc(1, sizeof(*zbudpage));
	if (!zbudpage)
		return ZE_OOM;
	zbudpage->pfn = pfn;
	zbudpage->frame = frame;
	zbudpage->list = LIST_NONE;
	link_init(&zbudpage->buddy);
	link_init(&zbudpage->lru);
	pool->pages[pfn] = zbudpage;
	pool->nr_pages++;
	*out = zbudpage;
	return 0;
}

/* -- the zpool API ---------------------------------------------------------- */

/* Place the zbud of an object of `size` bytes: its page and its handle. */
static int create(struct zcache_zbud_pool *pool, long long size, struct zbudpage **out,
		  uint64_t *handle)
{
	struct zbudpage *zbudpage;
	uint32_t zbud_size, chunks;
	unsigned int budnum;

	if (size <= (long long)pool->key_in_handle)
		return -EINVAL;
	if (size - pool->key_in_handle > MAX_BUDDY_SIZE)
		return -ENOSPC;
	zbud_size = (uint32_t)(size - pool->key_in_handle) + TMEM_HANDLE_SIZE;
	chunks = size_to_chunks(zbud_size);
	zbudpage = take_unbuddied(pool, chunks);
	if (zbudpage) {					/* zbud_match_prep */
		budnum = zbudpage->zbud_size[0] ? 1 : 0;
		link_add_tail(&zbudpage->buddy, &pool->buddied);
		zbudpage->list = LIST_BUDDIED;
		link_del(&zbudpage->lru);		/* promoted on add only */
		link_add(&zbudpage->lru, &pool->lru);
	} else {					/* zbud_create_prep */
		uint32_t pfn;
		uint8_t *frame;
		int status = pool->common.src.alloc(pool->common.src.ctx, &pfn, &frame);

		if (status)
			return status;
		status = hold_page(pool, pfn, frame, &zbudpage);
		if (status) {
			pool->common.src.free(pool->common.src.ctx, pfn);
			return status;
		}
		link_add(&zbudpage->lru, &pool->lru);
		budnum = 0;
		add_unbuddied(pool, zbudpage, NCHUNKS - chunks);
	}
	zbudpage->zbud_size[budnum] = zbud_size;
	*out = zbudpage;
	*handle = (uint64_t)zbudpage->pfn << PAGE_SHIFT | budnum;
	return 0;
}

/* Both phases of zcache's put at once: the zbud is evictable on return. */
int zcache_zbud_malloc(void *opaque, long long size, uint64_t *handle)
{
	struct zbudpage *zbudpage;

	return create(opaque, size, &zbudpage, handle);
}

int zcache_zbud_create_prep(void *opaque, long long size, uint64_t *handle)
{
	struct zbudpage *zbudpage;
	int status = create(opaque, size, &zbudpage, handle);

	if (!status)
		zbudpage->unevictable++;
	return status;
}

int zcache_zbud_create_finish(void *opaque, uint64_t handle)
{
	struct zbudpage *zbudpage = page_of(opaque, handle);

	if (!zbudpage)
		return ZE_NOT_IN_POOL;
	if (!zbudpage->unevictable)
		return -EINVAL;
	zbudpage->unevictable--;
	return 0;
}

/* zbud_free_and_delist; the LRU is left alone. */
int zcache_zbud_free(void *opaque, uint64_t handle)
{
	struct zcache_zbud_pool *pool = opaque;
	struct zbudpage *zbudpage = page_of(pool, handle);
	uint32_t other;

	if (!zbudpage)
		return ZE_NOT_IN_POOL;
	zbudpage->zbud_size[handle & 1] = 0;
	other = zbudpage->zbud_size[1 - (handle & 1)];
	if (zbudpage->zombie) {
		if (!other) {
			list_del_from(zbudpage);
			pool->nr_zombies--;
			free_page(pool, zbudpage);
		}
		return 0;
	}
	list_del_from(zbudpage);
	if (!other) {
		link_del(&zbudpage->lru);
		free_page(pool, zbudpage);
	} else {
		add_unbuddied(pool, zbudpage, NCHUNKS - size_to_chunks(other));
	}
	return 0;
}

/* The object: the key's end of the tmem handle, then the data. */
int zcache_zbud_span(void *opaque, uint64_t handle, struct zpool_span *span)
{
	struct zcache_zbud_pool *pool = opaque;
	struct zbudpage *zbudpage = page_of(pool, handle);
	unsigned int budnum = handle & 1;
	uint32_t handle_part = TMEM_HANDLE_SIZE - pool->key_in_handle;

	if (!zbudpage)
		return ZE_NOT_IN_POOL;
	span->frame = zbudpage->frame;
	span->next = NULL;
	span->pfn = zbudpage->pfn;
	span->offset = zbud_offset(zbudpage, budnum) + handle_part;
	span->size = zbudpage->zbud_size[budnum] - handle_part;
	return 0;
}

uint64_t zcache_zbud_total_pages(const void *opaque)
{
	const struct zcache_zbud_pool *pool = opaque;

	return pool->nr_pages;
}

/* PagePool._reclaim_order: the LRU, oldest first. */
int zcache_zbud_order(void *opaque, struct order *out)
{
	struct zcache_zbud_pool *pool = opaque;
	const struct link *node;
	int status = 0;

	for (node = pool->lru.prev; node != &pool->lru && !status; node = node->prev)
		status = order_push(out, link_entry(node, const struct zbudpage, lru)->pfn);
	return status ? status : order_push(out, UINT64_MAX);
}

/* The pageframe nearest the LRU's old end that is not unevictable, or NULL. */
static struct zbudpage *oldest_evictable(const struct zcache_zbud_pool *pool)
{
	struct link *node;

	for (node = pool->lru.prev; node != &pool->lru; node = node->prev) {
		struct zbudpage *zbudpage = link_entry(node, struct zbudpage, lru);

		if (!zbudpage->unevictable)
			return zbudpage;
	}
	return NULL;
}

/* Evict a zombie's zbuds, first then second, up to the first failure; a zbud
 * freed by the callback of its buddy is not evicted (zcache's writeback
 * would find no tmem entry for its key).  0, or a callback's failure. */
static int evict_zbuds(struct zcache_zbud_pool *pool, struct zbudpage *zbudpage)
{
	bool held[2] = { zbudpage->zbud_size[0] != 0, zbudpage->zbud_size[1] != 0 };
	unsigned int budnum;
	int ret = 0;

	for (budnum = 0; budnum < 2 && !ret; budnum++)
		if (held[budnum] && zbudpage->zbud_size[budnum]) {
			int status = zpool_call_evict(&pool->common, (uint64_t)zbudpage->pfn <<
						      PAGE_SHIFT | budnum, &ret);

			if (status)
				return status;
		}
	return 0;
}

int zcache_zbud_reclaim_page(void *opaque, long long retries, int *result)
{
	struct zcache_zbud_pool *pool = opaque;
	struct zpool_common *c = &pool->common;
	long long try;

	c->reclaim_calls++;
	*result = -EINVAL;
	if (!c->has_evict || link_empty(&pool->lru) || retries <= 0)
		return 0;
	*result = -EAGAIN;
	for (try = 0; try < retries; try++) {
		struct zbudpage *zbudpage = oldest_evictable(pool);
		int status;
		bool freed;

		if (!zbudpage)
			break;				/* every LRU page is being added to */
		c->reclaim_pages_scanned++;
		link_del(&zbudpage->lru);		/* zbud_make_zombie_lru */
		list_del_from(zbudpage);
		zbudpage->zombie = true;
		link_add_tail(&zbudpage->buddy, &pool->zombies);
		zbudpage->list = LIST_ZOMBIE;
		pool->nr_zombies++;
		zbudpage->reclaiming = true;
		status = evict_zbuds(pool, zbudpage);
		zbudpage->reclaiming = false;
		freed = zbudpage->freed;		/* with its last zbud */
		if (freed)
			free(zbudpage);
		if (status)
			return status;
		if (freed) {
			*result = 0;
			return 0;
		}
	}
	return 0;
}

/* -- the audit -------------------------------------------------------------- */

static int check_page(struct zcache_zbud_pool *pool, uint32_t pfn,
		      const struct zbudpage *zbudpage)
{
	struct zpool_common *c = &pool->common;
	static const char *const names[2] = { "zbud 0", "zbud 1" };
	struct extent extents[2];
	unsigned int budnum, held = 0;
	size_t n = 0;
	int status;

	if (zbudpage->pfn != pfn)
		return zpool_corrupted(c, "page %u: its zbudpage says page %u", pfn, zbudpage->pfn);
	for (budnum = 0; budnum < 2; budnum++) {
		uint32_t size = zbudpage->zbud_size[budnum];

		if (size && !(TMEM_HANDLE_SIZE < size && size <= MAX_ZBUD_SIZE))
			return zpool_corrupted(c, "page %u: zbud %u of %u bytes", pfn, budnum, size);
	}
	for (budnum = 0; budnum < 2; budnum++)
		if (zbudpage->zbud_size[budnum]) {
			uint32_t start = zbud_offset(zbudpage, budnum);

			extents[n++] = (struct extent){ start, start + (size_to_chunks(
				zbudpage->zbud_size[budnum]) << CHUNK_SHIFT), names[budnum] };
			held++;
		}
	if (!held)
		return zpool_corrupted(c, "page %u: empty but held", pfn);
	status = check_disjoint(c, pfn, extents, n);
	if (status)
		return status;
	if (zbudpage->unevictable > held)
		return zpool_corrupted(c, "page %u: unevictable %u", pfn, zbudpage->unevictable);
	if (zbudpage->zombie) {
		if (zbudpage->list != LIST_ZOMBIE || !link_empty(&zbudpage->lru))
			return zpool_corrupted(c, "page %u: a zombie on a list or the LRU", pfn);
		return 0;
	}
	if (held == 2) {
		if (zbudpage->list != LIST_BUDDIED)
			return zpool_corrupted(c, "page %u: not on buddied", pfn);
	} else if (zbudpage->list != (int)(NCHUNKS - used_chunks(zbudpage))) {
		return zpool_corrupted(c, "page %u: not on unbuddied[%u]", pfn,
				       used_chunks(zbudpage));
	}
	if (link_empty(&zbudpage->lru))
		return zpool_corrupted(c, "page %u: not on the LRU", pfn);
	return 0;
}

/* Entries on a list whose pages say they are on it; -1 for a stranger. */
static long long count_list(const struct link *head, int list)
{
	const struct link *node;
	long long n = 0;

	for (node = head->next; node != head; node = node->next, n++)
		if (link_entry(node, const struct zbudpage, buddy)->list != list)
			return -1;
	return n;
}

int zcache_zbud_check(void *opaque)
{
	struct zcache_zbud_pool *pool = opaque;
	struct zpool_common *c = &pool->common;
	char unmarked[ZE_MESSAGE_LEN] = "";
	long long listed, n, live;
	const struct link *node;
	uint64_t lru = 0;
	size_t used = 0;
	uint32_t pfn;
	int list, status;

	for (pfn = 0; pfn < pool->pages_cap; pfn++)
		if (pool->pages[pfn] && (status = check_page(pool, pfn, pool->pages[pfn])))
			return status;
	if (count_list(&pool->zombies, LIST_ZOMBIE) != (long long)pool->nr_zombies)
		return zpool_corrupted(c, "the zombie list holds a page that is not a zombie of "
				       "the pool");
	live = (long long)(pool->nr_pages - pool->nr_zombies);
	listed = count_list(&pool->buddied, LIST_BUDDIED);
	for (list = 0; list < (int)NCHUNKS && listed >= 0; list++) {
		n = count_list(&pool->unbuddied[list], list);
		listed = n < 0 ? -1 : listed + n;
	}
	if (listed != live)
		return zpool_corrupted(c, "%lld list entries for %lld pages off the zombie list",
				       listed, live);
	for (list = 0; list < (int)NCHUNKS; list++)
		if (!link_empty(&pool->unbuddied[list]) && !(pool->mask >> list & 1) &&
		    used + 8 < sizeof(unmarked))
			used += (size_t)snprintf(unmarked + used, sizeof(unmarked) - used,
						 used ? ", %d" : "%d", list);
	if (used)
		return zpool_corrupted(c, "unbuddied[%s] listed but their mask bits clear",
				       unmarked);
	for (node = pool->lru.next; node != &pool->lru; node = node->next)
		lru++;
	if ((long long)lru != live)
		return zpool_corrupted(c, "%llu LRU entries for %lld pages off the zombie list",
				       (unsigned long long)lru, live);
	return 0;
}

/* -- introspection ---------------------------------------------------------- */

uint32_t zcache_zbud_key_in_handle(const struct zcache_zbud_pool *pool)
{
	return pool->key_in_handle;
}

uint64_t zcache_zbud_unbuddied(const struct zcache_zbud_pool *pool, uint32_t free_chunks,
			       uint32_t *out, uint64_t cap)
{
	const struct link *node;
	uint64_t n = 0;

	if (free_chunks >= NCHUNKS)
		return 0;
	for (node = pool->unbuddied[free_chunks].next; node != &pool->unbuddied[free_chunks];
	     node = node->next, n++)
		if (n < cap)
			out[n] = link_entry(node, const struct zbudpage, buddy)->pfn;
	return n;
}

uint64_t zcache_zbud_pfns(const void *opaque, uint32_t *out, uint64_t cap)
{
	const struct zcache_zbud_pool *pool = opaque;
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
	return zcache_zbud_create(src, has_evict, options->key_in_handle);
}

const struct zpool_driver zcache_zbud_driver = {
	.name = "zcache-zbud",
	.create = driver_create,
	.destroy = zcache_zbud_destroy,
	.common = zcache_zbud_common,
	.malloc = zcache_zbud_malloc,
	.free = zcache_zbud_free,
	.span = zcache_zbud_span,
	.reclaim_page = zcache_zbud_reclaim_page,
	.total_pages = zcache_zbud_total_pages,
	.order = zcache_zbud_order,
	.check = zcache_zbud_check,
};
