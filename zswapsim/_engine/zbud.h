/*
 * zbud.h - the API of zbud.c, the compiled twin of zswapsim/zpool/zbud.py.
 */
#ifndef ZSWAPSIM_ZBUD_H
#define ZSWAPSIM_ZBUD_H

#include "engine.h"

struct zbud_pool;

struct zbud_pool *zbud_create(const struct frame_source *src, bool has_evict);
void zbud_destroy(void *pool);
struct zpool_common *zbud_common(void *pool);
/* 0, -EINVAL (size <= 0), -ENOSPC (too large), -ENOMEM, ZE_CALLBACK or ZE_OOM */
int zbud_malloc(void *pool, long long size, uint64_t *handle);
int zbud_free(void *pool, uint64_t handle);
/* The live object's frame, offset and size; ZE_NOT_IN_POOL or ZE_NO_LIVE_BUDDY */
int zbud_extent(struct zbud_pool *pool, uint64_t handle, uint32_t *pfn, uint8_t **frame,
		uint32_t *offset, uint32_t *size);
/* *result is reclaim_page's return value; the status is 0, ZE_CALLBACK or ZE_OOM */
int zbud_reclaim_page(void *pool, long long retries, int *result);
uint64_t zbud_total_pages(const void *pool);
int zbud_order(void *pool, struct order *out);
int zbud_check(void *pool);
uint64_t zbud_pfns(const void *pool, uint32_t *out, uint64_t cap);

#endif
