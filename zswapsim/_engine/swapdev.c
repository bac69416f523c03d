/*
 * swapdev.c - the compiled twin of zswapsim/swapdev.py: the backing swap
 * device, one PAGE_SIZE slot per (swap type, offset).  Pages land here when
 * zswap refuses them and when zswap writes an entry back; discards free
 * slots (invalidate_page, swapoff); an injected fault fails a write with
 * -EIO.  It counts writes, reads (of slots holding a page) and discards.
 * How many pages may be out at once (SwapDevice.capacity) zswap.c checks,
 * as zswap.py's store does; SwapDevice's nr_slots, which no Zswap sets, is
 * not modelled.
 *
 * The slots live in a hash map from the swap entry (type above offset),
 * open addressing with linear probing and backward-shift deletion; zswap.c
 * keeps its per-slot records in the same kind of map.  A slot holds a
 * reference to its page in a page store that keeps each content once, as
 * the Python device holds a reference to the page object it was given (a
 * trace's image swapped out to many slots costs one page, not one each).
 * The lanes of one replay share one store (replay.c), as the Python lanes
 * share the trace's page objects: an image sixteen lanes write to their
 * devices is copied once, and found by the other fifteen with one compare.
 */
#include <stdlib.h>
#include <string.h>

#include "swapdev.h"

/* -- the map ------------------------------------------------------------------- */

static size_t bucket(const struct slot_map *map, uint64_t key)
{
	key ^= key >> 33;			/* murmur3's finaliser */
	key *= UINT64_C(0xff51afd7ed558ccd);
	key ^= key >> 33;
	key *= UINT64_C(0xc4ceb9fe1a85ec53);
	key ^= key >> 33;
	return (size_t)key & (map->cap - 1);
}

static size_t find(const struct slot_map *map, uint64_t key)
{
	size_t i = bucket(map, key);

	while (map->buckets[i].value && map->buckets[i].key != key)
		i = (i + 1) & (map->cap - 1);
	return i;
}

void *slot_map_get(const struct slot_map *map, uint64_t key)
{
	return map->cap ? map->buckets[find(map, key)].value : NULL;
}

static int grow(struct slot_map *map)
{
	struct slot_map bigger = { .cap = map->cap ? 2 * map->cap : 64 };
	size_t i;

	bigger.buckets = calloc(bigger.cap, sizeof(*bigger.buckets));
	if (!bigger.buckets)
		return ZE_OOM;
	for (i = 0; i < map->cap; i++)
		if (map->buckets[i].value)
			bigger.buckets[find(&bigger, map->buckets[i].key)] = map->buckets[i];
	bigger.len = map->len;
	free(map->buckets);
	*map = bigger;
	return 0;
}

int slot_map_put(struct slot_map *map, uint64_t key, void *value)
{
	size_t i;

	if (map->cap) {
		i = find(map, key);
		if (map->buckets[i].value) {		/* a replacement */
			map->buckets[i].value = value;
			return 0;
		}
	}
	if (4 * (map->len + 1) > 3 * map->cap) {	/* at most three quarters full */
		int status = grow(map);

		if (status)
			return status;
	}
	i = find(map, key);
	if (!map->buckets[i].value)
		map->len++;
	map->buckets[i] = (struct slot_bucket){ key, value };
	return 0;
}

/* Empty bucket i, moving back the records after it that may sit there. */
static void delete_at(struct slot_map *map, size_t i)
{
	size_t mask = map->cap - 1, j = i;

	map->buckets[i].value = NULL;
	map->len--;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!map->buckets[j].value)
			return;
		home = bucket(map, map->buckets[j].key);
		/* the record at j may move to the hole at i unless its home lies
		 * cyclically in (i, j] */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			map->buckets[i] = map->buckets[j];
			map->buckets[j].value = NULL;
			i = j;
		}
	}
}

void *slot_map_del(struct slot_map *map, uint64_t key)
{
	size_t i;
	void *value;

	if (!map->cap)
		return NULL;
	i = find(map, key);
	value = map->buckets[i].value;
	if (value)
		delete_at(map, i);
	return value;
}

void slot_map_release(struct slot_map *map)
{
	free(map->buckets);
	*map = (struct slot_map){ 0 };
}

/* A deletion moves records back only into the hole it made, at or after
 * bucket i cyclically, so staying on i after one visits every record once
 * or, for a record wrapped round from the start, twice (visits must not
 * mind: each is told the record's current key).  Whether the record at i
 * was kept is told by its key: records may share a value (a page). */
int slot_map_each_of_type(struct slot_map *map, uint32_t type,
			  int (*visit)(void *ctx, uint64_t key, void *value), void *ctx)
{
	size_t i = 0;

	while (i < map->cap) {
		void *value = map->buckets[i].value;
		uint64_t key = map->buckets[i].key;
		int status;

		if (!value || swp_type(key) != type) {
			i++;
			continue;
		}
		status = visit(ctx, key, value);
		if (status)
			return status;
		if (map->buckets[i].value && map->buckets[i].key == key)	/* kept: move on */
			i++;
	}
	return 0;
}

/* -- the page store: a slot holds a reference, as the Python device holds
 * the page object it was given, so a page swapped out to many slots is kept
 * once -------------------------------------------------------------------------- */

/* Four independent multiply chains over interleaved words, so the CPU runs
 * them side by side (one chain is bound by the multiply's latency), folded
 * into one word at the end. */
static uint64_t page_hash(const uint8_t *page)
{
	uint64_t lane[4] = { UINT64_C(0x9e3779b97f4a7c15), UINT64_C(0xbf58476d1ce4e5b9),
			     UINT64_C(0x94d049bb133111eb), UINT64_C(0x2545f4914f6cdd1d) };
	uint64_t word, hash = 0;
	uint32_t i, j;

	for (i = 0; i < PAGE_SIZE; i += 32)
		for (j = 0; j < 4; j++) {
			memcpy(&word, page + i + 8 * j, 8);
			lane[j] = (lane[j] ^ word) * UINT64_C(0x100000001b3);
			lane[j] ^= lane[j] >> 29;
		}
	for (j = 0; j < 4; j++)
		hash = (hash ^ lane[j]) * UINT64_C(0xff51afd7ed558ccd) + j;
	return hash ^ hash >> 33;
}

struct shared_page *page_intern(struct page_store *store, const uint8_t *page)
{
	uint64_t hash;
	struct shared_page *head, *found;

	if (page == store->last_source && !memcmp(store->last_page->bytes, page, PAGE_SIZE)) {
		store->last_page->refs++;
		return store->last_page;
	}
	hash = page_hash(page);
	head = slot_map_get(&store->by_hash, hash);

	for (found = head; found; found = found->next)
		if (!memcmp(found->bytes, page, PAGE_SIZE))
			break;
	if (found) {
		found->refs++;
	} else {
		found = malloc(sizeof(*found));
		if (!found)
			return NULL;
		found->hash = hash;
		found->refs = 1;
		found->next = head;
		memcpy(found->bytes, page, PAGE_SIZE);
		if (slot_map_put(&store->by_hash, hash, found)) {
			free(found);
			return NULL;
		}
	}
	store->last_source = page;
	store->last_page = found;
	return found;
}

void page_release(struct page_store *store, struct shared_page *page)
{
	struct shared_page *head;

	if (--page->refs)
		return;
	if (page == store->last_page) {
		store->last_source = NULL;
		store->last_page = NULL;
	}
	head = slot_map_get(&store->by_hash, page->hash);
	if (head == page) {
		if (page->next)		/* a replacement, which never grows the map */
			slot_map_put(&store->by_hash, page->hash, page->next);
		else
			slot_map_del(&store->by_hash, page->hash);
	} else {
		while (head->next != page)
			head = head->next;
		head->next = page->next;
	}
	free(page);
}

/* One device fewer keeps its pages in `store`; the last frees it, empty by
 * then (each device's slots gave their references back as it went). */
static void page_store_put(struct page_store *store)
{
	if (--store->users)
		return;
	slot_map_release(&store->by_hash);
	free(store);
}

/* -- the device ------------------------------------------------------------------- */

int swapdev_init(struct swapdev *dev, struct fault_plan *faults)
{
	*dev = (struct swapdev){ .faults = faults, .pages = calloc(1, sizeof(*dev->pages)) };
	if (!dev->pages)
		return ZE_OOM;
	dev->pages->users = 1;
	return 0;
}

/* A slot's reference goes with its slot; the store goes with its last device. */
void swapdev_release(struct swapdev *dev)
{
	size_t i;

	for (i = 0; i < dev->slots.cap; i++)
		if (dev->slots.buckets[i].value)
			page_release(dev->pages, dev->slots.buckets[i].value);
	slot_map_release(&dev->slots);
	if (dev->pages)
		page_store_put(dev->pages);
	dev->pages = NULL;
}

int swapdev_share_pages(struct swapdev *dev, struct swapdev *with)
{
	if (dev->slots.len)
		return -EBUSY;
	if (dev->pages != with->pages) {
		page_store_put(dev->pages);
		dev->pages = with->pages;
		dev->pages->users++;
	}
	return 0;
}

int swapdev_write(struct swapdev *dev, uint32_t type, uint64_t offset, const uint8_t *page)
{
	uint64_t key = swp_entry(type, offset);
	struct shared_page *old, *new;

	if (dev->faults && faults_fail(dev->faults, FAULT_SWAP_WRITE))
		return -EIO;
	new = page_intern(dev->pages, page);
	if (!new)
		return ZE_OOM;
	old = slot_map_get(&dev->slots, key);
	if (slot_map_put(&dev->slots, key, new)) {
		page_release(dev->pages, new);
		return ZE_OOM;
	}
	if (old)
		page_release(dev->pages, old);
	dev->writes++;
	return 0;
}

const uint8_t *swapdev_read(struct swapdev *dev, uint32_t type, uint64_t offset)
{
	const struct shared_page *page = slot_map_get(&dev->slots, swp_entry(type, offset));

	if (!page)
		return NULL;
	dev->reads++;
	return page->bytes;
}

const uint8_t *swapdev_peek(const struct swapdev *dev, uint32_t type, uint64_t offset)
{
	const struct shared_page *page = slot_map_get(&dev->slots, swp_entry(type, offset));

	return page ? page->bytes : NULL;
}

void swapdev_discard(struct swapdev *dev, uint32_t type, uint64_t offset)
{
	struct shared_page *page = slot_map_del(&dev->slots, swp_entry(type, offset));

	if (page) {
		page_release(dev->pages, page);
		dev->discards++;
	}
}

static int discard_one(void *ctx, uint64_t key, void *page)
{
	struct swapdev *dev = ctx;

	slot_map_del(&dev->slots, key);
	page_release(dev->pages, page);
	dev->discards++;
	return 0;
}

void swapdev_discard_area(struct swapdev *dev, uint32_t type)
{
	slot_map_each_of_type(&dev->slots, type, discard_one, dev);
}

uint64_t swapdev_used_slots(const struct swapdev *dev)
{
	return dev->slots.len;
}
