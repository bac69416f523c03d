/*
 * zswap.h - the API of zswap.c, the compiled twin of zswapsim/zswap.py's
 * Zswap: frontswap's (or the swap layer's) view of zswap with its RAM, its
 * swap device and its fault plan, driven one operation at a time by plain C
 * calls that return 0 or a negative status (engine.h) and give their results
 * through pointers.  Pages go in and out as PAGE_SIZE byte arrays; the
 * caller compresses and decompresses through a zswap_codec, so a driver can
 * hand zswap precompressed bytes.
 */
#ifndef ZSWAPSIM_ZSWAP_H
#define ZSWAPSIM_ZSWAP_H

#include "engine.h"
#include "faults.h"
#include "memory.h"
#include "swapdev.h"
#include "zsmalloc.h"

#define ZSWAP_MAX_POOLS 32		/* 6.6's ZSWAP_NR_ZPOOLS; 3.11's pools per swap type */

/* The profile's limit_rule (profiles.py). */
enum zswap_limit_rule {
	LIMIT_RECLAIM_ON_STORE,		/* 3.11: a full pool reclaims on the spot */
	LIMIT_REJECT_AND_SHRINK,	/* 6.1, 6.3: reject, queue the shrink work, hysteresis */
	LIMIT_REJECT_SHRINK_EACH_TIME,	/* 6.6: every refusal queues the shrink work */
	LIMIT_CHECK_LIMITS,		/* 6.12, 6.18: zswap_check_limits */
};

/* What the shrink work does (the profile's shrink_rule and lru_owner). */
enum zswap_shrink_rule {
	SHRINK_RECLAIM_PAGE,		/* zpool_shrink(1): one reclaim_page(retries) */
	SHRINK_LRU_UNTIL_ACCEPT,	/* 6.6: write back the oldest until zswap_can_accept */
	SHRINK_LRU_SECOND_CHANCE,	/* 6.12: one entry per step, referenced ones rotated */
};

/* Everything Zswap.__init__ derives from its config and profile. */
struct zswap_config {
	const struct zpool_driver *driver;
	struct zpool_options pool_options;
	uint64_t ram_pages;
	bool has_swap_capacity;
	uint64_t swap_capacity;
	uint64_t limit_pages, accept_pages;
	long long retries;
	uint64_t shrink_delay;		/* swap-outs before queued work starts */
	uint64_t swap_out_ticks;	/* the worker's clock: ticks a swap-out lasts */
	uint64_t shrink_step_cost, shrink_writeback_cost;	/* ticks of a pass */
	enum zswap_limit_rule limit_rule;
	enum zswap_shrink_rule shrink_rule;
	bool zswap_lru;			/* zswap's own entry LRU: 6.6 on */
	bool zero_map;			/* the swap layer's zero map: 6.12 on */
	bool same_filled;
	bool evictable;			/* the pools get zswap_writeback_entry as evict */
	bool invalidate_duplicates, counts_invalidated_duplicates;
	bool store_as_is, count_compress_fail;
	bool exclusive_loads, second_chance, pool_per_swap_type;
	uint32_t header_len, compress_buffer, zpools_per_pool, shrink_failures_max;
};

struct zswap_codec {
	/* 0 with the page's compressed bytes in *out (*len of them), good until
	 * the next call, or ZE_CALLBACK */
	int (*compress)(void *ctx, const uint8_t *page, const uint8_t **out, size_t *len);
	/* 0 with `len` bytes of src decompressed into the PAGE_SIZE page, or ZE_CALLBACK */
	int (*decompress)(void *ctx, const uint8_t *src, size_t len, uint8_t *page);
	void *ctx;
};

/* store's and evict_loaded's results (True, False, None in zswap.py) */
#define ZSWAP_KEPT 1
#define ZSWAP_TO_DEVICE 0
#define ZSWAP_NOT_OUT (-1)		/* no swap slot, the device write failed, or nothing loaded */

enum zswap_where { WHERE_NONE, WHERE_POOL, WHERE_SWAP, WHERE_ZERO_MAP, WHERE_RAM };

/* The counters zswap.c keeps itself ... */
#define ZSWAP_OWN_COUNTERS(X)							\
	X(pool_limit_hit) X(reject_reclaim_fail) X(reject_alloc_fail)		\
	X(reject_kmemcache_fail) X(reject_compress_poor) X(written_back_pages)	\
	X(duplicate_entry) X(stored_pages) X(same_filled_pages) X(stores)	\
	X(zswpout) X(duplicate_stores) X(reject_pool_full) X(reject_too_big)	\
	X(loads) X(zswpin) X(load_misses) X(load_unknown) X(invalidates)	\
	X(shrink_runs) X(reject_compress_fail) X(decompress_fail)		\
	X(stored_incompressible_pages) X(swpout_zero) X(swpin_zero)		\
	X(swapcache_hits) X(shrink_rotations) X(swap_full) X(swap_write_errors)	\
	X(compressed_bytes) X(peak_pool_pages) X(zeromap_pages) X(loaded_pages)	\
	X(reclaim_success) X(reclaim_eagain) X(reclaim_einval)			\
	X(writeback_eexist) X(writeback_enomem) X(writeback_eio)
/* ... and those read off the pools, the swap device and the RAM, with two
 * flags of zswap's state (0 or 1). */
#define ZSWAP_DERIVED_COUNTERS(X)						\
	X(pool_pages) X(reclaim_calls) X(reclaim_pages_scanned) X(evict_calls)	\
	X(evict_eexist) X(evict_enomem) X(evict_eio) X(swap_writes)		\
	X(swap_reads) X(swap_discards) X(swap_used_slots) X(slots_in_use)	\
	X(ram_used_pages) X(ram_peak_pages) X(ram_free_pages)			\
	X(shrink_pending) X(shrink_running) X(pool_reached_full)

struct zswap_counts {
#define ZSWAP_FIELD(name) uint64_t name;
	ZSWAP_OWN_COUNTERS(ZSWAP_FIELD)
	ZSWAP_DERIVED_COUNTERS(ZSWAP_FIELD)
#undef ZSWAP_FIELD
};

struct zswap;

/* NULL when the C heap is exhausted or a pool refuses its options.  `faults`
 * (copied; NULL: none) is the plan the RAM, the device and the evict
 * callback draw from. */
struct zswap *zswap_create(const struct zswap_config *config, const struct zswap_codec *codec,
			   const struct fault_plan *faults);
void zswap_destroy(struct zswap *z);
/* Keep `z`'s swap device pages in `with`'s page store (swapdev_share_pages):
 * 0, or -EBUSY when `z`'s device holds a page. */
int zswap_share_swap_pages(struct zswap *z, struct zswap *with);

/* Swap types are 0..MAX_SWAPFILES-1, offsets below 2^SWP_TYPE_SHIFT. */
int zswap_store(struct zswap *z, uint32_t type, uint64_t offset, const uint8_t *page,
		int *result);
/* *found 1 with the page, 0 when nothing was ever stored at the offset */
int zswap_load(struct zswap *z, uint32_t type, uint64_t offset, uint8_t *page, int *found);
int zswap_invalidate_page(struct zswap *z, uint32_t type, uint64_t offset);
int zswap_invalidate_area(struct zswap *z, uint32_t type);
int zswap_evict_loaded(struct zswap *z, uint32_t type, uint64_t offset, int *result);
int zswap_run_pending_work(struct zswap *z);

enum zswap_where zswap_where(const struct zswap *z, uint32_t type, uint64_t offset);
/* The page a load would return, without its side effects; *found as load's. */
int zswap_peek(struct zswap *z, uint32_t type, uint64_t offset, uint8_t *page, int *found);
/* The compressed bytes of a pool entry holding them (not a same-filled or
 * as-is one): *len of them in buf (room for 2 * PAGE_SIZE), or *len 0. */
int zswap_compressed(struct zswap *z, uint32_t type, uint64_t offset, uint8_t *buf,
		     size_t *len);
uint64_t zswap_pool_pages(const struct zswap *z);
/* Flip bit `bit` of a pool entry's stored object, for the tests that show a
 * corrupted pool is caught: 0, -ENOENT (no pool entry), -EINVAL (past it). */
int zswap_flip_bit(struct zswap *z, uint32_t type, uint64_t offset, uint32_t bit);
void zswap_counts(const struct zswap *z, struct zswap_counts *out);
const struct fault_plan *zswap_faults(const struct zswap *z);	/* NULL: none */
/* zsmalloc's debugfs `classes` row of class `index` summed over the pools:
 * 1 with the row, 0 for a merged class, ZE_OOM; -EINVAL for another backend. */
int zswap_class_stats(struct zswap *z, uint32_t index, struct zs_class_stats *row);

#endif
