/*
 * z3fold.h - the API of z3fold.c, the compiled twin of zswapsim/zpool/z3fold.py.
 */
#ifndef ZSWAPSIM_Z3FOLD_H
#define ZSWAPSIM_Z3FOLD_H

#include "engine.h"

#define Z3FOLD_NCHUNKS 62		/* the unbuddied lists: 64 chunks less the header's two */

/* z3fold.py's layout(pfn): a page's header fields */
struct z3fold_layout {
	bool headless;
	uint32_t first, middle, start_middle, last, foreign_handles;
	uint32_t free_chunks;		/* num_free_chunks; meaningless when headless */
};

struct z3fold_pool;

struct z3fold_pool *z3fold_create(const struct frame_source *src, bool has_evict);
void z3fold_destroy(void *pool);
struct zpool_common *z3fold_common(void *pool);
/* 0, -EINVAL (size <= 0), -ENOSPC (over PAGE_SIZE), -ENOMEM, ZE_CALLBACK or ZE_OOM */
int z3fold_malloc(void *pool, long long size, uint64_t *handle);
/* 0 or ZE_NOT_IN_POOL */
int z3fold_free(void *pool, uint64_t handle);
/* The live object's page, slot name ("first", ...), frame, byte offset and size;
 * ZE_NOT_IN_POOL */
int z3fold_locate(const struct z3fold_pool *pool, uint64_t handle, uint32_t *pfn,
		  const char **buddy, uint8_t **frame, uint32_t *offset, uint32_t *size);
/* 0 with the fields of held page `pfn`, or ZE_NOT_IN_POOL */
int z3fold_page_layout(const struct z3fold_pool *pool, uint64_t pfn, struct z3fold_layout *out);
/* *result is reclaim_page's return value; the status is 0, ZE_CALLBACK or ZE_OOM */
int z3fold_reclaim_page(void *pool, long long retries, int *result);
uint64_t z3fold_total_pages(const void *pool);
int z3fold_order(void *pool, struct order *out);
int z3fold_check(void *pool);
/* The held pages' pfns in ascending order into out[], at most cap; how many there are. */
uint64_t z3fold_pfns(const void *pool, uint32_t *out, uint64_t cap);

#endif
