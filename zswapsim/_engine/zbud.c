/*
 * zbud.c - the compiled twin of zswapsim/zpool/zbud.py: at most two
 * compressed objects ("buddies") per page, as mm/zbud.c of Linux 3.11 to 6.4
 * lays them out, with the LRU reclaim it had until 6.5.
 *
 * A zbud page is cut into 64 chunks of 64 bytes.  The first chunk holds the
 * page's header, leaving NCHUNKS = 63 for data.  The first buddy sits
 * left-justified right after the header, the last buddy right-justified
 * against the page end, and the free space between them can take one more
 * object of up to that many chunks.  Handles are addresses: the page's address
 * plus the buddy's offset, so the first buddy's handle is always page + 64.
 *
 * Pages with one free buddy wait on unbuddied[free chunks]; an allocation of
 * n chunks takes the head of the first non-empty list from n upward (the
 * kernel's "best fit"), and pages are added at the head.  Full pages sit on the
 * buddied list.  Every allocation moves its page to the head of the pool LRU;
 * reclaim_page takes the tail, marks it under reclaim and evicts its buddies
 * through the owner's callback, the semantics of the zbud v11 patch that
 * mainline kept: the page is freed and 0 returned once both buddies are gone,
 * otherwise the page goes back to its list and to the LRU head and the next
 * tail is tried, up to `retries` pages, then -EAGAIN.  A free that hits a page
 * under reclaim only clears the buddy's size; the reclaim loop frees the page.
 *
 * The simple layout buys predictable reclaim (a page empties after at most two
 * evictions) at the price of density: never better than two objects a page.
 *
 * As the Python model does, each header also keeps the requested sizes (so a
 * read returns exactly what was asked for), the unbuddied lists carry a mask
 * of lists that may be non-empty (bits cleared lazily when found empty), and
 * the headers live beside the frames rather than in their first chunk, which
 * stays unused as the kernel's header would leave it to the object bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "zbud.h"

#define NCHUNKS_ORDER 6
#define CHUNK_SHIFT (PAGE_SHIFT - NCHUNKS_ORDER)
#define CHUNK_SIZE (1u << CHUNK_SHIFT)				/* 64 */
#define ZHDR_SIZE_ALIGNED CHUNK_SIZE				/* the header's chunk */
#define NCHUNKS ((PAGE_SIZE - ZHDR_SIZE_ALIGNED) >> CHUNK_SHIFT)	/* 63 */
#define MAX_ALLOC_SIZE (PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE)	/* 3968 */

#define LIST_NONE (-1)
#define LIST_BUDDIED ((int)NCHUNKS)

enum buddy { FIRST, LAST };

/* struct zbud_header, plus the requested sizes so read() can return them. */
struct zbud_header {
	uint32_t pfn;
	uint32_t first_chunks, last_chunks;
	uint32_t first_size, last_size;
	bool under_reclaim;
	int list;			/* LIST_NONE, unbuddied[0..62] or LIST_BUDDIED */
	struct link buddy;		/* on that list */
	struct link lru;
	uint8_t *frame;
};

struct zbud_pool {
	struct zpool_common common;	/* first: module.c reads the counters here */
	struct zbud_header **pages;	/* pfn -> header, NULL where the pool holds no page */
	uint32_t pages_cap;
	uint64_t nr_pages;
	struct link unbuddied[NCHUNKS];
	uint64_t mask;			/* bit n: unbuddied[n] may be non-empty */
	struct link buddied;
	struct link lru;		/* lru.next is the LRU head (most recent) */
};

static uint32_t size_to_chunks(uint32_t size)
{
	return (size + CHUNK_SIZE - 1) >> CHUNK_SHIFT;
}

static uint32_t num_free_chunks(const struct zbud_header *zhdr)
{
	return NCHUNKS - zhdr->first_chunks - zhdr->last_chunks;
}

struct zbud_pool *zbud_create(const struct frame_source *src, bool has_evict)
{
	struct zbud_pool *pool = calloc(1, sizeof(*pool));
	uint32_t i;

	if (!pool)
		return NULL;
	zpool_common_init(&pool->common, src, has_evict);
	for (i = 0; i < NCHUNKS; i++)
		link_init(&pool->unbuddied[i]);
	link_init(&pool->buddied);
	link_init(&pool->lru);
	return pool;
}

void zbud_destroy(void *opaque)
{
	struct zbud_pool *pool = opaque;

	uint32_t pfn;

	for (pfn = 0; pfn < pool->pages_cap; pfn++)
		free(pool->pages[pfn]);
	free(pool->pages);
	zpool_common_release(&pool->common);
	free(pool);
}

struct zpool_common *zbud_common(void *opaque)
{
	struct zbud_pool *pool = opaque;

	return &pool->common;
}

/* -- helpers ---------------------------------------------------------------- */

static uint64_t encode_handle(const struct zbud_header *zhdr, enum buddy bud)
{
	uint64_t base = (uint64_t)zhdr->pfn << PAGE_SHIFT;

	if (bud == FIRST)
		return base + ZHDR_SIZE_ALIGNED;
	return base + PAGE_SIZE - (zhdr->last_chunks << CHUNK_SHIFT);
}

static struct zbud_header *header_of(const struct zbud_pool *pool, uint64_t handle)
{
	uint64_t pfn = handle >> PAGE_SHIFT;

	return pfn < pool->pages_cap ? pool->pages[pfn] : NULL;
}

static void list_add_to(struct zbud_pool *pool, struct zbud_header *zhdr, int list)
{
	if (list == LIST_BUDDIED) {
		link_add(&zhdr->buddy, &pool->buddied);
	} else {
		link_add(&zhdr->buddy, &pool->unbuddied[list]);
		pool->mask |= 1ull << list;
	}
	zhdr->list = list;
}

static void list_del_from(struct zbud_header *zhdr)
{
	link_del(&zhdr->buddy);
	zhdr->list = LIST_NONE;
}

/* Put a page with at least one buddy on the list its fill calls for. */
static void relist(struct zbud_pool *pool, struct zbud_header *zhdr)
{
	if (zhdr->first_chunks == 0 || zhdr->last_chunks == 0)
		list_add_to(pool, zhdr, (int)num_free_chunks(zhdr));
	else
		list_add_to(pool, zhdr, LIST_BUDDIED);
}

/* UnbuddiedLists.take: the head of the first non-empty list from
 * unbuddied[chunks] up, taken off its list, or NULL. */
static struct zbud_header *take_unbuddied(struct zbud_pool *pool, uint32_t chunks)
{
	uint64_t mask = pool->mask >> chunks;

	while (mask) {
		unsigned int n = chunks + (unsigned int)__builtin_ctzll(mask);
		struct link *head = &pool->unbuddied[n];

		if (!link_empty(head)) {
			struct zbud_header *zhdr = link_entry(head->next, struct zbud_header, buddy);

			list_del_from(zhdr);
			return zhdr;
		}
		pool->mask &= ~(1ull << n);		/* emptied since its bit was set */
		mask &= mask - 1;
	}
	return NULL;
}

static void free_page(struct zbud_pool *pool, struct zbud_header *zhdr)
{
	uint32_t pfn = zhdr->pfn;

	pool->pages[pfn] = NULL;
	pool->nr_pages--;
	free(zhdr);
	pool->common.src.free(pool->common.src.ctx, pfn);
}

static int hold_page(struct zbud_pool *pool, uint32_t pfn, uint8_t *frame,
		     struct zbud_header **out)
{
	struct zbud_header *zhdr;

	if (pfn >= pool->pages_cap) {
		uint32_t cap = pool->pages_cap ? pool->pages_cap : 64;
		struct zbud_header **grown;

		while (cap <= pfn)
			cap *= 2;
		grown = realloc(pool->pages, cap * sizeof(*grown));
		if (!grown)
			return ZE_OOM;
		memset(grown + pool->pages_cap, 0, (cap - pool->pages_cap) * sizeof(*grown));
		pool->pages = grown;
		pool->pages_cap = cap;
	}
	zhdr = calloc(1, sizeof(*zhdr));
	if (!zhdr)
		return ZE_OOM;
	zhdr->pfn = pfn;
	zhdr->frame = frame;
	zhdr->list = LIST_NONE;
	link_init(&zhdr->buddy);
	link_init(&zhdr->lru);
	pool->pages[pfn] = zhdr;
	pool->nr_pages++;
	*out = zhdr;
	return 0;
}

/* -- the zpool API ---------------------------------------------------------- */

int zbud_malloc(void *opaque, long long size, uint64_t *handle)
{
	struct zbud_pool *pool = opaque;
	struct zbud_header *zhdr;
	enum buddy bud;
	uint32_t chunks;

	if (size <= 0)
		return -EINVAL;
	if (size > MAX_ALLOC_SIZE)
		return -ENOSPC;
	chunks = size_to_chunks((uint32_t)size);
	zhdr = take_unbuddied(pool, chunks);
	if (zhdr) {
		bud = zhdr->first_chunks == 0 ? FIRST : LAST;
	} else {
		uint32_t pfn;
		uint8_t *frame;
		int status = pool->common.src.alloc(pool->common.src.ctx, &pfn, &frame);

		if (status)
			return status;
		status = hold_page(pool, pfn, frame, &zhdr);
		if (status) {
			pool->common.src.free(pool->common.src.ctx, pfn);
			return status;
		}
		bud = FIRST;
	}
	if (bud == FIRST) {
		zhdr->first_chunks = chunks;
		zhdr->first_size = (uint32_t)size;
	} else {
		zhdr->last_chunks = chunks;
		zhdr->last_size = (uint32_t)size;
	}
	relist(pool, zhdr);
	link_del(&zhdr->lru);			/* a no-op for a new page */
	link_add(&zhdr->lru, &pool->lru);
	*handle = encode_handle(zhdr, bud);
	return 0;
}

int zbud_free(void *opaque, uint64_t handle)
{
	struct zbud_pool *pool = opaque;
	struct zbud_header *zhdr = header_of(pool, handle);

	if (!zhdr)
		return ZE_NOT_IN_POOL;
	if ((handle - ZHDR_SIZE_ALIGNED) & PAGE_MASK)
		zhdr->last_chunks = zhdr->last_size = 0;
	else
		zhdr->first_chunks = zhdr->first_size = 0;
	if (zhdr->under_reclaim)
		return 0;			/* the reclaim loop finishes the job */
	list_del_from(zhdr);
	if (zhdr->first_chunks == 0 && zhdr->last_chunks == 0) {
		link_del(&zhdr->lru);
		free_page(pool, zhdr);
	} else {
		list_add_to(pool, zhdr, (int)num_free_chunks(zhdr));
	}
	return 0;
}

int zbud_extent(struct zbud_pool *pool, uint64_t handle, uint32_t *pfn, uint8_t **frame,
		uint32_t *offset, uint32_t *size)
{
	struct zbud_header *zhdr = header_of(pool, handle);
	uint32_t off = (uint32_t)(handle & PAGE_MASK);

	if (!zhdr)
		return ZE_NOT_IN_POOL;
	if (off == ZHDR_SIZE_ALIGNED && zhdr->first_chunks)
		*size = zhdr->first_size;
	else if (zhdr->last_chunks && off == PAGE_SIZE - (zhdr->last_chunks << CHUNK_SHIFT))
		*size = zhdr->last_size;
	else
		return ZE_NO_LIVE_BUDDY;
	*pfn = zhdr->pfn;
	*frame = zhdr->frame;
	*offset = off;
	return 0;
}

uint64_t zbud_total_pages(const void *opaque)
{
	const struct zbud_pool *pool = opaque;

	return pool->nr_pages;
}

static void push_list_order(struct order *out, const struct link *head, int *status)
{
	const struct link *node;

	/* tail first, as the Python model's dicts iterate (their last item is the head) */
	for (node = head->prev; node != head && !*status; node = node->prev)
		*status = order_push(out, link_entry(node, const struct zbud_header, buddy)->pfn);
	if (!*status)
		*status = order_push(out, UINT64_MAX);
}

int zbud_order(void *opaque, struct order *out)
{
	struct zbud_pool *pool = opaque;
	const struct link *node;
	int status = 0;
	uint32_t n;

	for (node = pool->lru.prev; node != &pool->lru && !status; node = node->prev)
		status = order_push(out, link_entry(node, const struct zbud_header, lru)->pfn);
	if (!status)
		status = order_push(out, UINT64_MAX);
	push_list_order(out, &pool->buddied, &status);
	if (!status)
		status = order_push(out, pool->mask);
	for (n = 0; n < NCHUNKS; n++)
		push_list_order(out, &pool->unbuddied[n], &status);
	return status;
}

int zbud_reclaim_page(void *opaque, long long retries, int *result)
{
	struct zbud_pool *pool = opaque;
	struct reclaim_tries tries;
	int status;

	pool->common.reclaim_calls++;
	if (!pool->common.has_evict || link_empty(&pool->lru) || retries <= 0) {
		*result = -EINVAL;
		return 0;
	}
	tries_init(&tries, &pool->common, retries, zbud_order, pool);
	while ((status = tries_take(&tries, link_entry(pool->lru.prev, struct zbud_header,
							    lru)->pfn)) == 1) {
		struct zbud_header *zhdr = link_entry(pool->lru.prev, struct zbud_header, lru);
		uint64_t first_handle, last_handle;
		int ret = 0;

		link_del(&zhdr->lru);			/* the LRU tail */
		pool->common.reclaim_pages_scanned++;
		list_del_from(zhdr);
		zhdr->under_reclaim = true;
		first_handle = zhdr->first_chunks ? encode_handle(zhdr, FIRST) : 0;
		last_handle = zhdr->last_chunks ? encode_handle(zhdr, LAST) : 0;
		if (first_handle) {
			status = zpool_call_evict(&pool->common, first_handle, &ret);
			if (status)
				break;
		}
		if (ret == 0 && last_handle) {
			status = zpool_call_evict(&pool->common, last_handle, &ret);
			if (status)
				break;
		}
		zhdr->under_reclaim = false;
		if (zhdr->first_chunks == 0 && zhdr->last_chunks == 0) {
			free_page(pool, zhdr);
			tries_release(&tries);
			*result = 0;
			return 0;
		}
		relist(pool, zhdr);
		link_add(&zhdr->lru, &pool->lru);		/* back at the head */
		status = tries_put_back(&tries, zhdr->pfn);
		if (status)
			break;
	}
	tries_release(&tries);
	*result = -EAGAIN;
	return status;
}

/* -- the audit -------------------------------------------------------------- */

static int check_page(struct zbud_pool *pool, uint32_t pfn, const struct zbud_header *zhdr)
{
	struct zpool_common *c = &pool->common;
	struct extent extents[3];
	size_t n = 0;
	int expected, status;

	if (zhdr->pfn != pfn)
		return zpool_corrupted(c, "page %u: its header says page %u", pfn, zhdr->pfn);
	if (zhdr->under_reclaim)
		return zpool_corrupted(c, "page %u: under reclaim outside reclaim_page", pfn);
	if (zhdr->first_size > MAX_ALLOC_SIZE ||
	    size_to_chunks(zhdr->first_size) != zhdr->first_chunks)
		return zpool_corrupted(c, "page %u: first buddy of %u bytes in %u chunks", pfn,
				       zhdr->first_size, zhdr->first_chunks);
	if (zhdr->last_size > MAX_ALLOC_SIZE ||
	    size_to_chunks(zhdr->last_size) != zhdr->last_chunks)
		return zpool_corrupted(c, "page %u: last buddy of %u bytes in %u chunks", pfn,
				       zhdr->last_size, zhdr->last_chunks);
	if (!zhdr->first_chunks && !zhdr->last_chunks)
		return zpool_corrupted(c, "page %u: empty but held", pfn);
	extents[n++] = (struct extent){ 0, ZHDR_SIZE_ALIGNED, "header" };
	if (zhdr->first_chunks)
		extents[n++] = (struct extent){ ZHDR_SIZE_ALIGNED, ZHDR_SIZE_ALIGNED +
						(zhdr->first_chunks << CHUNK_SHIFT), "first" };
	if (zhdr->last_chunks)
		extents[n++] = (struct extent){ PAGE_SIZE - (zhdr->last_chunks << CHUNK_SHIFT),
						PAGE_SIZE, "last" };
	status = check_disjoint(c, pfn, extents, n);
	if (status)
		return status;
	expected = zhdr->first_chunks && zhdr->last_chunks ? LIST_BUDDIED
		: (int)num_free_chunks(zhdr);
	if (zhdr->list != expected || link_empty(&zhdr->buddy)) {
		if (expected == LIST_BUDDIED)
			return zpool_corrupted(c, "page %u: not on buddied", pfn);
		return zpool_corrupted(c, "page %u: not on unbuddied[%d]", pfn, expected);
	}
	if (link_empty(&zhdr->lru))
		return zpool_corrupted(c, "page %u: not on the LRU", pfn);
	return 0;
}

/* Entries on a list whose pages say they are on it; -1 for a stranger. */
static long long count_list(const struct link *head, int list)
{
	const struct link *node;
	long long n = 0;

	for (node = head->next; node != head; node = node->next, n++)
		if (link_entry(node, const struct zbud_header, buddy)->list != list)
			return -1;
	return n;
}

int zbud_check(void *opaque)
{
	struct zbud_pool *pool = opaque;
	struct zpool_common *c = &pool->common;
	char unmarked[ZE_MESSAGE_LEN] = "";
	size_t used = 0;
	const struct link *node;
	long long listed, n;
	uint64_t lru = 0;
	uint32_t pfn;
	int list, status;

	for (pfn = 0; pfn < pool->pages_cap; pfn++)
		if (pool->pages[pfn] && (status = check_page(pool, pfn, pool->pages[pfn])))
			return status;
	listed = count_list(&pool->buddied, LIST_BUDDIED);
	for (list = 0; list < (int)NCHUNKS && listed >= 0; list++) {
		n = count_list(&pool->unbuddied[list], list);
		listed = n < 0 ? -1 : listed + n;
	}
	if (listed != (long long)pool->nr_pages)
		return zpool_corrupted(c, "%lld list entries for %llu pages", listed,
				       (unsigned long long)pool->nr_pages);
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
	if (lru != pool->nr_pages)
		return zpool_corrupted(c, "%llu LRU entries for %llu pages",
				       (unsigned long long)lru, (unsigned long long)pool->nr_pages);
	return 0;
}

/* -- introspection ---------------------------------------------------------- */

/* The held pages' pfns in ascending order into out[], at most cap; how many there are. */
uint64_t zbud_pfns(const void *opaque, uint32_t *out, uint64_t cap)
{
	const struct zbud_pool *pool = opaque;
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
	return zbud_create(src, has_evict);
}

static int driver_span(void *pool, uint64_t handle, struct zpool_span *span)
{
	span->next = NULL;
	return zbud_extent(pool, handle, &span->pfn, &span->frame, &span->offset, &span->size);
}

const struct zpool_driver zbud_driver = {
	.name = "zbud",
	.create = driver_create,
	.destroy = zbud_destroy,
	.common = zbud_common,
	.malloc = zbud_malloc,
	.free = zbud_free,
	.span = driver_span,
	.reclaim_page = zbud_reclaim_page,
	.total_pages = zbud_total_pages,
	.order = zbud_order,
	.check = zbud_check,
};
