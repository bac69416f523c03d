/*
 * xvmalloc.h - the API of xvmalloc.c, the compiled twin of
 * zswapsim/zpool/xvmalloc.py.
 */
#ifndef ZSWAPSIM_XVMALLOC_H
#define ZSWAPSIM_XVMALLOC_H

#include "engine.h"

#define XV_NUM_FREE_LISTS 508
#define XV_MAX_FLI 8		/* second-level bitmap words */

struct xv_pool;

/* A free block on a free list: (pfn, offset of its header). */
struct xv_free_block {
	uint32_t pfn, offset;
};

struct xv_pool *xv_create(const struct frame_source *src, bool has_evict);
void xv_destroy(void *pool);
struct zpool_common *xv_common(void *pool);
/* 0, -EINVAL (size <= 0), -ENOSPC (too large), -ENOMEM, ZE_CALLBACK, ZE_OOM or
 * ZE_CORRUPTED; -ENOMEM with no error of the frame source's is the seed's own
 * for 4089..4092 bytes */
int xv_malloc(void *pool, long long size, uint64_t *handle);
/* 0, ZE_NOT_IN_POOL, ZE_OOM or ZE_CORRUPTED */
int xv_free(void *pool, uint64_t handle);
int xv_span(void *pool, uint64_t handle, struct zpool_span *span);
/* *result is reclaim_page's return value; the status is 0, ZE_CALLBACK, ZE_OOM
 * or ZE_CORRUPTED */
int xv_reclaim_page(void *pool, long long retries, int *result);
uint64_t xv_total_pages(const void *pool);
int xv_order(void *pool, struct order *out);
int xv_check(void *pool);

/* -- introspection (the Python pool's, for tests and reports) -------------- */

/* find_block: the free list whose head serves `size` (aligned) bytes, -1 for
 * none, -2 for a get_index(size) past the bitmaps' reach (512 on) where the
 * Python model's indexing fails. */
int xv_find_block(const struct xv_pool *pool, uint32_t size);
/* The blocks on freelist[slindex], head first, into out[] (at most cap); how many. */
uint64_t xv_free_blocks(const struct xv_pool *pool, uint32_t slindex,
			struct xv_free_block *out, uint64_t cap);
uint64_t xv_flbitmap(const struct xv_pool *pool);
uint64_t xv_slbitmap(const struct xv_pool *pool, uint32_t word);
/* The held pages, or those under reclaim, by ascending pfn into out[]; how many. */
uint64_t xv_pfns(const void *pool, uint32_t *out, uint64_t cap);
uint64_t xv_under_reclaim(const void *pool, uint32_t *out, uint64_t cap);

#endif
