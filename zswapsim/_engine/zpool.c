/*
 * zpool.c - the compiled twin of zswapsim/zpool/base.py: the part of the
 * zpool contract every allocator shares (mm/zpool.c's role in the kernel).
 *
 * The evict callback returns 0 once it has freed the handle, or -errno.  A
 * failure that changed nothing and would recur for as long as nothing
 * changes may be marked unchanged (pool.unchanged(-errno)); reclaim_page then
 * counts the rounds of the LRU such failures would repeat instead of running
 * them (ReclaimTries), so a huge `retries` costs no more than a few rounds.
 * A try that cannot free its page puts the page back at the LRU head; once
 * every page in turn has failed on a result marked unchanged and a whole
 * round leaves the pool's order (the LRU and the lists a page goes back on)
 * as it found it, every later round repeats it exactly, and the rounds left
 * are counted arithmetically as running them would count them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

void zpool_common_init(struct zpool_common *common, const struct frame_source *src,
		       bool has_evict)
{
	memset(common, 0, sizeof(*common));
	common->src = *src;
	common->has_evict = has_evict;
}

void zpool_common_release(struct zpool_common *common)
{
	free(common->results);
	common->results = NULL;
	common->nresults = common->results_cap = 0;
}

uint64_t *zpool_result_slot(struct zpool_common *common, int ret)
{
	size_t i;

	for (i = 0; i < common->nresults; i++)
		if (common->results[i].ret == ret)
			return &common->results[i].count;
	if (common->nresults == common->results_cap) {
		size_t cap = common->results_cap ? 2 * common->results_cap : 4;
		struct evict_result *grown = realloc(common->results, cap * sizeof(*grown));

		if (!grown)
			return NULL;
		common->results = grown;
		common->results_cap = cap;
	}
	common->results[common->nresults].ret = ret;
	common->results[common->nresults].count = 0;
	return &common->results[common->nresults++].count;
}

int zpool_call_evict(struct zpool_common *common, uint64_t handle, int *ret)
{
	uint64_t *slot;

	common->evict_calls++;
	common->unchanged_result = 0;
	if (common->src.evict(common->src.ctx, handle, ret))
		return ZE_CALLBACK;
	slot = zpool_result_slot(common, *ret);
	if (!slot)
		return ZE_OOM;
	(*slot)++;
	if (*ret != common->unchanged_result)
		common->unchanged_result = 0;
	return 0;
}

int zpool_corrupted(struct zpool_common *common, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(common->message, sizeof(common->message), fmt, args);
	va_end(args);
	return ZE_CORRUPTED;
}

/* -- orders ----------------------------------------------------------------- */

int order_push(struct order *order, uint64_t word)
{
	if (order->len == order->cap) {
		size_t cap = order->cap ? 2 * order->cap : 64;
		uint64_t *grown = realloc(order->words, cap * sizeof(*grown));

		if (!grown)
			return ZE_OOM;
		order->words = grown;
		order->cap = cap;
	}
	order->words[order->len++] = word;
	return 0;
}

bool order_equal(const struct order *a, const struct order *b)
{
	return a->len == b->len && (a->len == 0 ||
				    !memcmp(a->words, b->words, a->len * sizeof(*a->words)));
}

void order_release(struct order *order)
{
	free(order->words);
	order->words = NULL;
	order->len = order->cap = 0;
}

/* -- ReclaimTries ------------------------------------------------------------ */

void tries_init(struct reclaim_tries *tries, struct zpool_common *pool, long long retries,
		int (*snapshot)(void *, struct order *), void *snapshot_pool)
{
	memset(tries, 0, sizeof(*tries));
	tries->pool = pool;
	tries->left = retries;
	tries->snapshot = snapshot;
	tries->snapshot_pool = snapshot_pool;
}

void tries_release(struct reclaim_tries *tries)
{
	free(tries->results);
	tries->results = NULL;
	order_release(&tries->order);
}

static void forget_run(struct reclaim_tries *tries)
{
	tries->has_first = false;
	tries->nresults = 0;
}

static int came_round(struct reclaim_tries *tries)
{
	struct zpool_common *pool = tries->pool;
	struct order order = { 0 };
	int status = tries->snapshot(tries->snapshot_pool, &order);

	if (status) {
		order_release(&order);
		return status;
	}
	if (tries->has_order && order_equal(&order, &tries->order)) {
		long long n = (long long)tries->nresults;
		long long rounds = tries->left / n;
		size_t i;

		tries->left %= n;
		pool->reclaim_pages_scanned += (uint64_t)(rounds * n);
		pool->evict_calls += (uint64_t)(rounds * n);
		for (i = 0; i < tries->nresults; i++) {
			uint64_t *slot = zpool_result_slot(pool, tries->results[i]);

			if (!slot) {
				order_release(&order);
				return ZE_OOM;
			}
			*slot += (uint64_t)rounds;
		}
		order_release(&order);
		order_release(&tries->order);
		tries->has_order = false;
	} else {
		order_release(&tries->order);
		tries->order = order;
		tries->has_order = true;
	}
	forget_run(tries);
	return 0;
}

int tries_take(struct reclaim_tries *tries, uint64_t key)
{
	if (tries->has_first && key == tries->first) {
		int status = came_round(tries);

		if (status)
			return status;
	}
	if (tries->left <= 0)
		return 0;
	tries->left--;
	tries->calls = tries->pool->evict_calls;
	return 1;
}

int tries_put_back(struct reclaim_tries *tries, uint64_t key)
{
	struct zpool_common *pool = tries->pool;

	if (pool->unchanged_result && pool->evict_calls == tries->calls + 1) {
		if (tries->nresults == tries->results_cap) {
			size_t cap = tries->results_cap ? 2 * tries->results_cap : 16;
			int *grown = realloc(tries->results, cap * sizeof(*grown));

			if (!grown)
				return ZE_OOM;
			tries->results = grown;
			tries->results_cap = cap;
		}
		if (!tries->nresults) {
			tries->has_first = true;
			tries->first = key;
		}
		tries->results[tries->nresults++] = pool->unchanged_result;
	} else if (tries->nresults) {
		forget_run(tries);
		order_release(&tries->order);
		tries->has_order = false;
	}
	return 0;
}

/* -- the audit -------------------------------------------------------------- */

static int extent_cmp(const struct extent *a, const struct extent *b)
{
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	if (a->end != b->end)
		return a->end < b->end ? -1 : 1;
	return strcmp(a->name, b->name);
}

int check_disjoint(struct zpool_common *common, uint32_t pfn, struct extent *extents,
		   size_t n)
{
	size_t i, j;

	for (i = 1; i < n; i++)			/* insertion sort: a handful of extents */
		for (j = i; j > 0 && extent_cmp(&extents[j - 1], &extents[j]) > 0; j--) {
			struct extent swap = extents[j];

			extents[j] = extents[j - 1];
			extents[j - 1] = swap;
		}
	for (i = 1; i < n; i++)
		if (extents[i - 1].end > extents[i].start)
			return zpool_corrupted(common, "page %u: %s overlaps %s", pfn,
					       extents[i - 1].name, extents[i].name);
	if (n && extents[n - 1].end > PAGE_SIZE)
		return zpool_corrupted(common, "page %u: %s ends past the page", pfn,
				       extents[n - 1].name);
	return 0;
}

/* -- the drivers, by the Python pools' names --------------------------------- */

static const struct zpool_driver *const drivers[] = {
	&zbud_driver,
	&zsmalloc_driver,
	&z3fold_driver,
	&xvmalloc_driver,
	&zcache_zbud_driver,
};

const struct zpool_driver *zpool_driver_named(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (!strcmp(drivers[i]->name, name))
			return drivers[i];
	return NULL;
}
