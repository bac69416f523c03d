/*
 * zsmalloc.h - the API of zsmalloc.c, the compiled twin of
 * zswapsim/zpool/zsmalloc.py.
 */
#ifndef ZSWAPSIM_ZSMALLOC_H
#define ZSWAPSIM_ZSMALLOC_H

#include "engine.h"

#define ZS_CHAIN_MIN 4		/* CONFIG_ZSMALLOC_CHAIN_SIZE's range */
#define ZS_CHAIN_MAX 16
#define ZS_NR_CLASSES 255

struct zs_pool;

/* Where a live object's bytes lie: next_frame is set when they straddle. */
struct zs_object {
	uint8_t *frame, *next_frame;
	uint32_t pfn, offset, size, index;
	uint64_t zspage_id;
};

/* One row of the debugfs `classes` file (6.1 columns). */
struct zs_class_stats {
	uint32_t index, size, pages_per_zspage, objs_per_zspage;
	uint64_t almost_full, almost_empty, obj_allocated, obj_used, pages_used, freeable;
};

/* NULL for a chain size outside ZS_CHAIN_MIN..ZS_CHAIN_MAX or no C heap left */
struct zs_pool *zs_create(const struct frame_source *src, bool has_evict, uint32_t chain_size);
void zs_destroy(void *pool);
struct zpool_common *zs_common(void *pool);
/* 0, -EINVAL (size outside 1..4096), -ENOMEM, ZE_CALLBACK or ZE_OOM */
int zs_malloc(void *pool, long long size, uint64_t *handle);
int zs_free(void *pool, uint64_t handle);
int zs_object(struct zs_pool *pool, uint64_t handle, struct zs_object *obj);
int zs_reclaim_page(void *pool, long long retries, int *result);
uint64_t zs_compact(struct zs_pool *pool);
uint64_t zs_total_pages(const void *pool);
uint64_t zs_pages_compacted(const struct zs_pool *pool);
uint32_t zs_huge_class_size(const struct zs_pool *pool);
uint32_t zs_chain_size(const struct zs_pool *pool);
/* 1 with the row of distinct class `index`, 0 when index names a merged class */
int zs_class_stats(const struct zs_pool *pool, uint32_t index, struct zs_class_stats *row);
int zs_order(void *pool, struct order *out);
int zs_check(void *pool);

#endif
