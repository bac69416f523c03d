/*
 * engine.h - what the compiled allocators share, as zswapsim/zpool/base.py
 * holds what the Python models share: the frame source a pool takes its
 * pages from, the owner's evict callback, the reclaim counters, ReclaimTries
 * (the `retries` tries of one reclaim_page call, finished arithmetically once
 * they stop changing anything), the audit's disjointness test, and the small
 * doubly linked list the kernel's lists become; and the driver table each
 * allocator fills (struct zpool_driver, mm/zpool.c's zpool_driver), through
 * which module.c and the compiled zswap call every pool alike.
 *
 * None of this knows Python: module.c supplies the frame source (the Python
 * Memory, one call per new frame) and the evict callback, and turns status
 * codes into the Python pools' exceptions.  A function returns 0 or a
 * negative status: a kernel errno, or one of the ZE_ codes below.
 */
#ifndef ZSWAPSIM_ENGINE_H
#define ZSWAPSIM_ENGINE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGE_SHIFT 12
#define PAGE_SIZE (1u << PAGE_SHIFT)
#define PAGE_MASK (PAGE_SIZE - 1)

/* Status codes beyond the errnos. */
#define ZE_CALLBACK (-10000)	/* a callback failed; its error is pending in the caller */
#define ZE_OOM (-10001)		/* the C heap is exhausted (not the simulated RAM) */
#define ZE_NOT_IN_POOL (-10002)	/* a handle names no page or object of this pool */
#define ZE_NO_LIVE_BUDDY (-10003)	/* zbud: the handle's page holds no such buddy */
#define ZE_CORRUPTED (-10004)	/* check(): the message is in the pool's audit buffer */

#define ZE_MESSAGE_LEN 256

/* -- lists: a circular list through a head; head->next is the list head ---- */

struct link {
	struct link *next, *prev;
};

#define link_entry(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void link_init(struct link *head)
{
	head->next = head->prev = head;
}

static inline bool link_empty(const struct link *head)
{
	return head->next == head;
}

static inline void link_between(struct link *node, struct link *prev, struct link *next)
{
	node->prev = prev;
	node->next = next;
	prev->next = node;
	next->prev = node;
}

/* At the head (list_add). */
static inline void link_add(struct link *node, struct link *head)
{
	link_between(node, head, head->next);
}

/* At the tail (list_add_tail). */
static inline void link_add_tail(struct link *node, struct link *head)
{
	link_between(node, head->prev, head);
}

static inline void link_del(struct link *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->next = node->prev = node;
}

/* -- frames and the evict callback ----------------------------------------- */

struct frame_source {
	/* 0 with a new frame's pfn and its PAGE_SIZE bytes, or -ENOMEM or ZE_CALLBACK */
	int (*alloc)(void *ctx, uint32_t *pfn, uint8_t **bytes);
	void (*free)(void *ctx, uint32_t pfn);
	/* 0 with the callback's result in *ret, or ZE_CALLBACK */
	int (*evict)(void *ctx, uint64_t handle, int *ret);
	void *ctx;
};

/* -- what every pool counts (base.Zpool's attributes) ------------------------ */

struct evict_result {
	int ret;
	uint64_t count;
};

struct zpool_common {
	struct frame_source src;
	bool has_evict;
	uint64_t reclaim_calls;
	uint64_t reclaim_pages_scanned;
	uint64_t evict_calls;
	/* evict results by value, in the order each value first came */
	struct evict_result *results;
	size_t nresults, results_cap;
	/* the last evict call's result if its callback marked it unchanged, else 0 */
	int unchanged_result;
	char message[ZE_MESSAGE_LEN];	/* what check() found */
};

void zpool_common_init(struct zpool_common *common, const struct frame_source *src,
		       bool has_evict);
void zpool_common_release(struct zpool_common *common);
/* _call_evict: 0 with the callback's result in *ret, or ZE_CALLBACK / ZE_OOM */
int zpool_call_evict(struct zpool_common *common, uint64_t handle, int *ret);
/* The result counter of `ret`; NULL only when the C heap is exhausted. */
uint64_t *zpool_result_slot(struct zpool_common *common, int ret);
/* Format a PoolCorrupted message into common->message; returns ZE_CORRUPTED. */
int zpool_corrupted(struct zpool_common *common, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* -- the driver table: one per allocator, what zswap and module.c call ------ */

/* Where a live object's bytes lie: in one frame, or straddling into `next`. */
struct zpool_span {
	uint8_t *frame, *next;
	uint32_t pfn, offset, size;
};

/* The keyword options a pool is created with (the Python pools' `options`). */
struct zpool_options {
	uint32_t chain_size;	/* zsmalloc: CONFIG_ZSMALLOC_CHAIN_SIZE */
	uint32_t key_in_handle;	/* zcache zbud: bytes of the swap entry kept in its tmem handle */
};

struct order;

struct zpool_driver {
	const char *name;			/* the Python pool's name */
	/* NULL when an option is out of range or the C heap is exhausted */
	void *(*create)(const struct frame_source *src, bool has_evict,
			const struct zpool_options *options);
	void (*destroy)(void *pool);
	struct zpool_common *(*common)(void *pool);
	/* 0, -EINVAL, -ENOSPC, -ENOMEM, ZE_CALLBACK or ZE_OOM */
	int (*malloc)(void *pool, long long size, uint64_t *handle);
	int (*free)(void *pool, uint64_t handle);
	/* 0, ZE_NOT_IN_POOL or an allocator's own "no such object" status */
	int (*span)(void *pool, uint64_t handle, struct zpool_span *span);
	/* *result is reclaim_page's return value; the status is 0, ZE_CALLBACK or ZE_OOM */
	int (*reclaim_page)(void *pool, long long retries, int *result);
	uint64_t (*total_pages)(const void *pool);
	int (*order)(void *pool, struct order *out);	/* the _reclaim_order snapshot */
	int (*check)(void *pool);
};

extern const struct zpool_driver zbud_driver, zsmalloc_driver, z3fold_driver,
	xvmalloc_driver, zcache_zbud_driver;
/* The driver of a pool name, NULL when there is none. */
const struct zpool_driver *zpool_driver_named(const char *name);

/* -- the order a reclaim try can still move (base.Zpool._reclaim_order) ---- */

struct order {
	uint64_t *words;
	size_t len, cap;
};

int order_push(struct order *order, uint64_t word);	/* 0 or ZE_OOM */
bool order_equal(const struct order *a, const struct order *b);
void order_release(struct order *order);

/* -- ReclaimTries ------------------------------------------------------------ */

struct reclaim_tries {
	struct zpool_common *pool;
	long long left;
	uint64_t calls;		/* the pool's evict_calls as the current try began */
	bool has_first;
	uint64_t first;		/* LRU key of the page that began the run of unchanged tries */
	int *results;		/* the evict result of each try in that run */
	size_t nresults, results_cap;
	bool has_order;
	struct order order;	/* the pool's order when the run last came round to first */
	/* the pool's _reclaim_order, written into an empty order; 0 or ZE_OOM */
	int (*snapshot)(void *pool, struct order *out);
	void *snapshot_pool;
};

void tries_init(struct reclaim_tries *tries, struct zpool_common *pool, long long retries,
		int (*snapshot)(void *, struct order *), void *snapshot_pool);
void tries_release(struct reclaim_tries *tries);
/* Whether a try is left for the page at LRU key `key`: 1, 0, or ZE_OOM. */
int tries_take(struct reclaim_tries *tries, uint64_t key);
/* The page at `key` could not be freed and is back at the LRU head; 0 or ZE_OOM. */
int tries_put_back(struct reclaim_tries *tries, uint64_t key);

/* -- the audit -------------------------------------------------------------- */

struct extent {
	uint32_t start, end;
	const char *name;
};

/* _check_disjoint: the extents laid in page `pfn` overlap nowhere and end
 * within the page; 0 or ZE_CORRUPTED.  Sorts `extents` in place. */
int check_disjoint(struct zpool_common *common, uint32_t pfn, struct extent *extents,
		   size_t n);

#endif
