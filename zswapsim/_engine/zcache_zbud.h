/*
 * zcache_zbud.h - the API of zcache_zbud.c, the compiled twin of
 * zswapsim/zpool/zcache_zbud.py.
 */
#ifndef ZSWAPSIM_ZCACHE_ZBUD_H
#define ZSWAPSIM_ZCACHE_ZBUD_H

#include "engine.h"

#define ZCACHE_NCHUNKS 64
#define ZCACHE_TMEM_HANDLE_SIZE 32	/* key_in_handle's largest value */
#define ZCACHE_MAX_BUDDY_SIZE 4000	/* zbud_max_buddy_size() */

struct zcache_zbud_pool;

/* NULL for a key_in_handle over ZCACHE_TMEM_HANDLE_SIZE or no C heap left */
struct zcache_zbud_pool *zcache_zbud_create(const struct frame_source *src, bool has_evict,
					    uint32_t key_in_handle);
void zcache_zbud_destroy(void *pool);
struct zpool_common *zcache_zbud_common(void *pool);
/* 0, -EINVAL (no data after the key), -ENOSPC (over zbud_max_buddy_size),
 * -ENOMEM, ZE_CALLBACK or ZE_OOM */
int zcache_zbud_malloc(void *pool, long long size, uint64_t *handle);
/* zbud_create_prep: malloc, with the pageframe unevictable until create_finish */
int zcache_zbud_create_prep(void *pool, long long size, uint64_t *handle);
/* 0, ZE_NOT_IN_POOL, or -EINVAL with no create_prep to finish */
int zcache_zbud_create_finish(void *pool, uint64_t handle);
int zcache_zbud_free(void *pool, uint64_t handle);
int zcache_zbud_span(void *pool, uint64_t handle, struct zpool_span *span);
/* *result is reclaim_page's return value; the status is 0, ZE_CALLBACK or ZE_OOM */
int zcache_zbud_reclaim_page(void *pool, long long retries, int *result);
uint64_t zcache_zbud_total_pages(const void *pool);
int zcache_zbud_order(void *pool, struct order *out);
int zcache_zbud_check(void *pool);

/* -- introspection ------------------------------------------------------------ */

uint32_t zcache_zbud_key_in_handle(const struct zcache_zbud_pool *pool);
/* The pages on unbuddied[free_chunks] (0..63), head (oldest) first, into out[]; how many. */
uint64_t zcache_zbud_unbuddied(const struct zcache_zbud_pool *pool, uint32_t free_chunks,
			       uint32_t *out, uint64_t cap);
/* The held pages, zombies included, by ascending pfn into out[]; how many. */
uint64_t zcache_zbud_pfns(const void *pool, uint32_t *out, uint64_t cap);

#endif
