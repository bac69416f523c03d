/*
 * swapdev.h - the API of swapdev.c, the compiled twin of
 * zswapsim/swapdev.py, and the map from swap entries to records that it and
 * zswap.c keep their per-slot state in.
 */
#ifndef ZSWAPSIM_SWAPDEV_H
#define ZSWAPSIM_SWAPDEV_H

#include "engine.h"
#include "faults.h"

/* A swap entry as one word: the type above the offset (zswap's swp_entry_t). */
#define SWP_TYPE_SHIFT 58
#define SWP_OFFSET_MASK ((UINT64_C(1) << SWP_TYPE_SHIFT) - 1)
#define MAX_SWAPFILES 32

static inline uint64_t swp_entry(uint32_t type, uint64_t offset)
{
	return (uint64_t)type << SWP_TYPE_SHIFT | offset;
}

static inline uint32_t swp_type(uint64_t entry)
{
	return (uint32_t)(entry >> SWP_TYPE_SHIFT);
}

/* -- a hash map: swap entry -> a record (never NULL) --------------------------- */

/* A bucket's key and record side by side: a probe reads one cache line. */
struct slot_bucket {
	uint64_t key;
	void *value;			/* NULL: an empty bucket */
};

struct slot_map {
	struct slot_bucket *buckets;
	size_t cap, len;		/* cap is 0 or a power of two */
};

void *slot_map_get(const struct slot_map *map, uint64_t key);
/* Insert or replace; 0 or ZE_OOM. */
int slot_map_put(struct slot_map *map, uint64_t key, void *value);
/* Remove; the record, or NULL when there was none. */
void *slot_map_del(struct slot_map *map, uint64_t key);
void slot_map_release(struct slot_map *map);
/* Visit every record whose entry has swap type `type`; `visit` may delete
 * the record it is given (and only that one) and returns 0 or a status that
 * stops the walk and is returned. */
int slot_map_each_of_type(struct slot_map *map, uint32_t type,
			  int (*visit)(void *ctx, uint64_t key, void *value), void *ctx);

/* -- pages kept once per content, shared by reference ------------------------------ */

struct shared_page {
	uint64_t hash;
	uint64_t refs;
	struct shared_page *next;	/* the next page of the same hash */
	uint8_t bytes[PAGE_SIZE];
};

/* One store may serve several devices: a replay's lanes share one, so a
 * trace's image that every lane swaps out is kept once, not once a lane. */
struct page_store {
	struct slot_map by_hash;	/* content hash -> its pages, chained */
	uint64_t users;			/* the devices keeping their pages here */
	/* The bytes last interned and their page (NULL: none), so the next
	 * lane storing the same image finds it with one compare, no hash. */
	const uint8_t *last_source;
	struct shared_page *last_page;
};

/* The stored page equal to `page`, one reference more; NULL when the C heap
 * is exhausted. */
struct shared_page *page_intern(struct page_store *store, const uint8_t *page);
void page_release(struct page_store *store, struct shared_page *page);

/* -- the swap device ------------------------------------------------------------- */

struct swapdev {
	struct page_store *pages;	/* the slots' pages, each content once */
	struct slot_map slots;		/* swap entry -> its struct shared_page */
	struct fault_plan *faults;	/* NULL: no injected failures */
	uint64_t writes, reads, discards;
};

/* 0, or ZE_OOM (the device then holds nothing, and swapdev_release is safe) */
int swapdev_init(struct swapdev *dev, struct fault_plan *faults);
void swapdev_release(struct swapdev *dev);
/* Keep `dev`'s pages in `with`'s store from now on: 0, or -EBUSY when `dev`
 * holds a page (it keeps its own store; nothing it does changes either way). */
int swapdev_share_pages(struct swapdev *dev, struct swapdev *with);
/* 0, -EIO (an injected failure; the slot keeps what it held) or ZE_OOM */
int swapdev_write(struct swapdev *dev, uint32_t type, uint64_t offset, const uint8_t *page);
/* The page in the slot (counted as a read), or NULL when it holds nothing. */
const uint8_t *swapdev_read(struct swapdev *dev, uint32_t type, uint64_t offset);
/* The page in the slot without counting a read, or NULL. */
const uint8_t *swapdev_peek(const struct swapdev *dev, uint32_t type, uint64_t offset);
void swapdev_discard(struct swapdev *dev, uint32_t type, uint64_t offset);
void swapdev_discard_area(struct swapdev *dev, uint32_t type);
uint64_t swapdev_used_slots(const struct swapdev *dev);

#endif
