/*
 * zswap.c - the compiled twin of zswapsim/zswap.py (which says what each
 * kernel does, from mm/zswap.c and mm/frontswap.c of 3.11, 6.1, 6.3, 6.6,
 * 6.12 and 6.18): store, load, invalidate_page, invalidate_area and
 * evict_loaded on (swap type, offset), the shrink work queued, started
 * shrink_delay swap-outs later and paced against the swap-outs on the
 * worker's clock (swap_out_ticks a swap-out), the limit and its
 * hysteresis, same-filled pages, the zero map, exclusive loads, zswap's
 * entry LRU with its second chance, 6.6's 32 zpools picked by hash_32 of
 * the offset, 3.11's pool per swap type, and zswap_writeback_entry as the
 * pools' evict callback, which finds the entry from the zswap_header
 * written in front of the object's compressed bytes.  Every branch follows
 * zswap.py's, in the same order, so the counters, pool states and fault
 * draws are the Python model's.
 *
 * State per swap entry (type above offset) is one record in a slot_map:
 * zswap's entry, whether the page is in the swap cache, in the zero map, or
 * loaded exclusively into RAM.  zswap.py's dicts keep insertion order where
 * it matters, and so do the lists here: each swap type's tree (swapoff
 * frees its entries oldest first) and the LRU (head->next the oldest).  A
 * record with nothing left in it is freed once the operation that emptied it
 * is over.  The pools are called through their driver (engine.h), with
 * frames from memory.c; the swap device is swapdev.c.
 */
#include <stdlib.h>
#include <string.h>

#include "zswap.h"

struct zentry {
	uint64_t handle;		/* 0 for a same-filled page */
	uint32_t length;		/* compressed length, 0 for a same-filled page */
	uint32_t pool;			/* index of its pool in zswap->pools */
	uint64_t word;			/* a same-filled page's repeated word */
	bool as_is;			/* 6.18: the object holds the page itself */
	bool referenced;		/* the second-chance bit (6.12) */
	struct link tree;		/* on its swap type's tree, in insertion order */
	struct link lru;		/* on zswap's LRU (zswap_lru, length > 0) */
};

struct zslot {
	uint64_t key;			/* the swap entry */
	bool has_entry, swapcache, zero;
	uint8_t *loaded;		/* the page loaded exclusively and still in RAM */
	struct zentry entry;
};

struct zpool_ref {
	struct zswap *z;
	void *pool;			/* NULL until created */
};

struct zswap {
	struct zswap_config cfg;
	struct zswap_codec codec;
	bool has_faults;
	struct fault_plan faults;
	struct memory memory;
	struct swapdev swapdev;
	struct zpool_ref pools[ZSWAP_MAX_POOLS];
	struct slot_map slots;		/* swap entry -> struct zslot */
	struct link trees[MAX_SWAPFILES];
	struct link lru;
	bool busy;			/* an operation on busy_key is under way */
	uint64_t busy_key;
	bool pool_reached_full, cursor_on_memcg;
	bool shrink_pending;		/* the shrink work is queued, not started */
	bool shrink_running;		/* a run of it is under way */
	uint32_t shrink_failures, shrink_attempts;	/* that run's loop counters */
	uint64_t shrink_start;		/* the tick from which the queued work may start */
	uint64_t worker_clock;		/* the tick of the worker's next pass */
	uint64_t last_pool_pages;
	struct zswap_counts c;		/* the own counters; the derived ones are computed */
	uint8_t object[2 * PAGE_SIZE];	/* an object's bytes on their way in or out */
	uint8_t spare[PAGE_SIZE];	/* evict_loaded's page */
};

/* -- objects: a span's bytes in and out ------------------------------------------- */

/* Bytes [at, at + n) of the object through `buf`, in (write) or out. */
static void span_io(const struct zpool_span *span, uint32_t at, uint8_t *buf, uint32_t n,
		    bool write)
{
	uint32_t in_first = span->next ? PAGE_SIZE - span->offset : span->size;

	if (at < in_first) {
		uint32_t k = n < in_first - at ? n : in_first - at;
		uint8_t *where = span->frame + span->offset + at;

		if (write)
			memcpy(where, buf, k);
		else
			memcpy(buf, where, k);
		buf += k;
		n -= k;
		at += k;
	}
	if (n) {
		uint8_t *where = span->next + (at - in_first);

		if (write)
			memcpy(where, buf, n);
		else
			memcpy(buf, where, n);
	}
}

/* The whole object into z->object; its size in *size. */
static int read_object(struct zswap *z, const struct zentry *entry, uint32_t *size)
{
	struct zpool_span span;
	int status = z->cfg.driver->span(z->pools[entry->pool].pool, entry->handle, &span);

	if (status)
		return status;
	if (span.size > sizeof(z->object))
		return ZE_CORRUPTED;
	span_io(&span, 0, z->object, span.size, false);
	*size = span.size;
	return 0;
}

/* -- pools and accounting ------------------------------------------------------------ */

static int src_alloc(void *ctx, uint32_t *pfn, uint8_t **bytes)
{
	return memory_alloc_page(&((struct zpool_ref *)ctx)->z->memory, pfn, bytes);
}

static void src_free(void *ctx, uint32_t pfn)
{
	memory_free_page(&((struct zpool_ref *)ctx)->z->memory, pfn);
}

static int src_evict(void *ctx, uint64_t handle, int *ret);

static int new_pool(struct zswap *z, uint32_t index)
{
	struct zpool_ref *ref = &z->pools[index];
	struct frame_source src = { src_alloc, src_free, src_evict, ref };

	ref->pool = z->cfg.driver->create(&src, z->cfg.evictable, &z->cfg.pool_options);
	return ref->pool ? 0 : ZE_OOM;
}

/* pool_for: the pool a store of `type` goes to (not 6.6's: see store_lru_entry) */
static int pool_for(struct zswap *z, uint32_t type, uint32_t *index)
{
	*index = z->cfg.pool_per_swap_type ? type : 0;
	return z->pools[*index].pool ? 0 : new_pool(z, *index);
}

static uint64_t total_pages(const struct zswap *z, uint32_t index)
{
	return z->cfg.driver->total_pages(z->pools[index].pool);
}

uint64_t zswap_pool_pages(const struct zswap *z)
{
	uint64_t pages = 0;
	uint32_t i;

	for (i = 0; i < ZSWAP_MAX_POOLS; i++)
		if (z->pools[i].pool)
			pages += total_pages(z, i);
	return pages;
}

static uint64_t slots_in_use(const struct zswap *z)
{
	return z->c.stored_pages + swapdev_used_slots(&z->swapdev) + z->c.zeromap_pages +
		z->c.loaded_pages;
}

/* _reclaim: reclaim_page(retries), its result counted */
static int reclaim(struct zswap *z, uint32_t index, int *ret)
{
	int status = z->cfg.driver->reclaim_page(z->pools[index].pool, z->cfg.retries, ret);

	if (status)
		return status;
	if (*ret == 0)
		z->c.reclaim_success++;
	else if (*ret == -EAGAIN)
		z->c.reclaim_eagain++;
	else if (*ret == -EINVAL)
		z->c.reclaim_einval++;
	return 0;
}

/* -- records ------------------------------------------------------------------------ */

static struct zslot *lookup(const struct zswap *z, uint64_t key)
{
	return slot_map_get(&z->slots, key);
}

static int obtain(struct zswap *z, uint64_t key, struct zslot **out)
{
	struct zslot *slot = lookup(z, key);

	if (!slot) {
		slot = calloc(1, sizeof(*slot));
		if (!slot)
			return ZE_OOM;
		slot->key = key;
		link_init(&slot->entry.tree);
		link_init(&slot->entry.lru);
		if (slot_map_put(&z->slots, key, slot)) {
			free(slot);
			return ZE_OOM;
		}
	}
	*out = slot;
	return 0;
}

/* Free a record holding nothing, unless an operation on it is under way. */
static void tidy(struct zswap *z, struct zslot *slot)
{
	if (slot->has_entry || slot->swapcache || slot->zero || slot->loaded ||
	    (z->busy && slot->key == z->busy_key))
		return;
	slot_map_del(&z->slots, slot->key);
	free(slot);
}

static void begin(struct zswap *z, uint64_t key)
{
	z->busy = true;
	z->busy_key = key;
}

static int end(struct zswap *z, uint64_t key, int status)
{
	struct zslot *slot;

	z->busy = false;
	slot = lookup(z, key);
	if (slot)
		tidy(z, slot);
	return status;
}

/* -- entries ------------------------------------------------------------------------ */

static int free_entry(struct zswap *z, struct zslot *slot)
{
	struct zentry *entry = &slot->entry;

	link_del(&entry->tree);
	slot->has_entry = false;
	if (entry->length == 0) {
		z->c.same_filled_pages--;
	} else {
		int status = z->cfg.driver->free(z->pools[entry->pool].pool, entry->handle);

		if (status)
			return status;
		z->c.compressed_bytes -= entry->length;
		if (z->cfg.limit_rule == LIMIT_RECLAIM_ON_STORE)
			z->last_pool_pages = total_pages(z, entry->pool);
		if (z->cfg.zswap_lru) {
			link_del(&entry->lru);
			if (entry->as_is)
				z->c.stored_incompressible_pages--;
		}
	}
	z->c.stored_pages--;
	return 0;
}

/* _drop: forget the copy zswap holds, if any */
static int drop(struct zswap *z, struct zslot *slot)
{
	return slot && slot->has_entry ? free_entry(z, slot) : 0;
}

static void forget_zero(struct zswap *z, struct zslot *slot)
{
	if (slot->zero) {
		slot->zero = false;
		z->c.zeromap_pages--;
	}
}

static void forget_loaded(struct zswap *z, struct zslot *slot)
{
	if (slot->loaded) {
		free(slot->loaded);
		slot->loaded = NULL;
		z->c.loaded_pages--;
	}
}

static bool same_filled_word(const uint8_t *page, uint64_t *word)
{
	uint32_t i;

	if (memcmp(page, page + 8, 8))		/* most pages differ at once */
		return false;
	for (i = 16; i < PAGE_SIZE; i += 8)
		if (memcmp(page, page + i, 8))
			return false;
	memcpy(word, page, 8);
	return true;
}

static bool zero_filled(const uint8_t *page)
{
	uint64_t word;

	return same_filled_word(page, &word) && word == 0;
}

/* _same_filled_entry: true with the entry of a same-filled page */
static bool same_filled_entry(struct zswap *z, const uint8_t *page, struct zentry *entry)
{
	if (!z->cfg.same_filled || !same_filled_word(page, &entry->word))
		return false;
	z->c.same_filled_pages++;
	entry->handle = 0;
	entry->length = 0;
	entry->pool = 0;
	entry->as_is = entry->referenced = false;
	return true;
}

/* _decompress: the page an entry holds */
static int decompress_entry(struct zswap *z, const struct zentry *entry, uint8_t *page)
{
	uint32_t size, i;
	int status;

	if (entry->length == 0) {
		for (i = 0; i < PAGE_SIZE; i += 8)
			memcpy(page + i, &entry->word, 8);
		return 0;
	}
	status = read_object(z, entry, &size);
	if (status)
		return status;
	if (entry->as_is) {
		memcpy(page, z->object, size < PAGE_SIZE ? size : PAGE_SIZE);
		return 0;
	}
	return z->codec.decompress(z->codec.ctx, z->object + z->cfg.header_len,
				   size - z->cfg.header_len, page);
}

/* _malloc: 0 with *ok and the handle, or *ok false with the refusal counted */
static int pool_malloc(struct zswap *z, uint32_t index, long long size, uint64_t *handle,
		    bool *ok)
{
	int status = z->cfg.driver->malloc(z->pools[index].pool, size, handle);

	*ok = status == 0;
	if (status == -ENOSPC)
		z->c.reject_compress_poor++;
	else if (status == -ENOMEM || status == -EINVAL)
		z->c.reject_alloc_fail++;
	else if (status)
		return status;
	return 0;
}

/* Write the header (when the entry carries one) and `data` into the object. */
static int write_object(struct zswap *z, uint32_t index, uint64_t handle, uint64_t swp,
			const uint8_t *data, uint32_t n, uint32_t header_len)
{
	struct zpool_span span;
	int status = z->cfg.driver->span(z->pools[index].pool, handle, &span);

	if (status)
		return status;
	if (header_len + n > span.size)
		return ZE_CORRUPTED;
	if (header_len)
		span_io(&span, 0, (uint8_t *)&swp, header_len, true);
	span_io(&span, header_len, (uint8_t *)data, n, true);
	return 0;
}

/* -- the shrink work ---------------------------------------------------------------- */

/* _queue_shrink_work: it may start once shrink_delay more swap-outs are made */
static void queue_shrink_work(struct zswap *z)
{
	if (!z->shrink_pending) {
		z->shrink_pending = true;
		z->shrink_start = (z->c.stores + z->cfg.shrink_delay) * z->cfg.swap_out_ticks;
	}
}

static int write_back(struct zswap *z, struct zslot *slot, int *ret);

/* _writeback_lru_entry: a fault plan draws first; the result counted */
static int writeback_lru_entry(struct zswap *z, struct zslot *slot, int *ret)
{
	if (z->has_faults && z->faults.rates[FAULT_EVICT] != 0.0 &&
	    faults_fail(&z->faults, FAULT_EVICT)) {
		*ret = -EIO;
	} else {
		int status = write_back(z, slot, ret);

		if (status)
			return status;
	}
	if (*ret == -EEXIST)
		z->c.writeback_eexist++;
	else if (*ret == -ENOMEM)
		z->c.writeback_enomem++;
	else if (*ret == -EIO)
		z->c.writeback_eio++;
	return 0;
}

static struct zslot *lru_oldest(const struct zswap *z)
{
	return link_entry(z->lru.next, struct zslot, entry.lru);
}

static void lru_to_young_end(struct zswap *z, struct zslot *slot)
{
	link_del(&slot->entry.lru);
	link_add_tail(&slot->entry.lru, &z->lru);
}

/* _shrink_memcg: 0 written back, -EAGAIN rotated or failed, -ENOENT empty */
static int shrink_memcg(struct zswap *z, int *ret)
{
	struct zslot *slot;
	int status, result;

	if (link_empty(&z->lru)) {
		*ret = -ENOENT;
		return 0;
	}
	slot = lru_oldest(z);
	lru_to_young_end(z, slot);
	if (slot->entry.referenced) {
		slot->entry.referenced = false;
		z->c.shrink_rotations++;
		*ret = -EAGAIN;
		return 0;
	}
	status = writeback_lru_entry(z, slot, &result);
	if (status)
		return status;
	if (result) {
		z->c.reject_reclaim_fail++;
		*ret = -EAGAIN;
	} else {
		*ret = 0;
	}
	return 0;
}

static void end_run(struct zswap *z)
{
	z->shrink_running = false;
}

/* _shrink_worker_step: a pass of shrink_worker (6.12) */
static int shrink_worker_step(struct zswap *z)
{
	uint32_t limit = z->cfg.shrink_failures_max;

	z->cursor_on_memcg = !z->cursor_on_memcg;
	if (!z->cursor_on_memcg) {			/* a walk ended */
		if (!z->shrink_attempts && ++z->shrink_failures == limit) {
			end_run(z);
			return 0;
		}
		z->shrink_attempts = 0;
	} else {
		int ret, status = shrink_memcg(z, &ret);

		if (status)
			return status;
		if (ret != -ENOENT) {
			z->shrink_attempts++;
			if (ret && ++z->shrink_failures == limit) {
				end_run(z);
				return 0;
			}
		}
	}
	if (zswap_pool_pages(z) <= z->cfg.accept_pages)
		end_run(z);
	return 0;
}

/* _shrink_worker_6_6_step: a pass of shrink_worker (6.6) */
static int shrink_worker_6_6_step(struct zswap *z)
{
	struct zslot *slot;
	int ret, status;

	if (link_empty(&z->lru)) {			/* -EINVAL */
		z->c.reject_reclaim_fail++;
		end_run(z);
		return 0;
	}
	slot = lru_oldest(z);
	status = writeback_lru_entry(z, slot, &ret);
	if (status)
		return status;
	if (ret) {
		lru_to_young_end(z, slot);
		z->c.reject_reclaim_fail++;
		if (++z->shrink_failures == z->cfg.shrink_failures_max) {
			end_run(z);
			return 0;
		}
	}
	if (z->cfg.accept_pages > zswap_pool_pages(z))
		end_run(z);
	return 0;
}

/* _shrink_step: one pass; 6.1's work is one zpool_shrink call */
static int shrink_step(struct zswap *z)
{
	int ret, status;

	switch (z->cfg.shrink_rule) {
	case SHRINK_LRU_SECOND_CHANCE:
		return shrink_worker_step(z);
	case SHRINK_LRU_UNTIL_ACCEPT:
		return shrink_worker_6_6_step(z);
	case SHRINK_RECLAIM_PAGE:
		break;
	}
	status = reclaim(z, 0, &ret);
	if (!status && ret < 0)
		z->c.reject_reclaim_fail++;
	end_run(z);
	return status;
}

/* _run_due_work: every pass the worker takes at a tick up to `now` */
static int run_due_work(struct zswap *z, uint64_t now)
{
	for (;;) {
		uint64_t written_back;
		int status;

		if (!z->shrink_running) {
			if (!z->shrink_pending || z->shrink_start > now)
				return 0;
			z->shrink_pending = false;
			z->shrink_running = true;
			z->shrink_failures = z->shrink_attempts = 0;
			z->c.shrink_runs++;
			if (z->worker_clock < z->shrink_start)
				z->worker_clock = z->shrink_start;
		}
		if (z->worker_clock > now)
			return 0;
		written_back = z->c.written_back_pages;
		status = shrink_step(z);
		if (status)
			return status;
		z->worker_clock += z->c.written_back_pages > written_back ?
			z->cfg.shrink_writeback_cost : z->cfg.shrink_step_cost;
	}
}

static bool work_due(const struct zswap *z)
{
	return z->shrink_pending || z->shrink_running;
}

static uint64_t swap_out_clock(const struct zswap *z)
{
	return z->c.stores * z->cfg.swap_out_ticks;
}

int zswap_run_pending_work(struct zswap *z)
{
	return run_due_work(z, UINT64_MAX);
}

/* -- writeback: the pools' evict callback ----------------------------------------- */

/* _write_back: zswap_writeback_entry on a live entry; the record may be freed */
static int write_back(struct zswap *z, struct zslot *slot, int *ret)
{
	uint32_t pfn, type = swp_type(slot->key);
	uint64_t offset = slot->key & SWP_OFFSET_MASK;
	uint8_t *frame;
	int status;

	if (slot->swapcache) {
		*ret = -EEXIST;
		return 0;
	}
	status = memory_alloc_page(&z->memory, &pfn, &frame);	/* the swap-cache page */
	if (status == -ENOMEM) {
		*ret = -ENOMEM;
		return 0;
	}
	if (status)
		return status;
	status = decompress_entry(z, &slot->entry, frame);
	if (!status)
		status = swapdev_write(&z->swapdev, type, offset, frame);
	memory_free_page(&z->memory, pfn);
	if (status == -EIO) {
		*ret = -EIO;				/* the entry stays in the pool */
		return 0;
	}
	if (status)
		return status;
	z->c.written_back_pages++;
	status = free_entry(z, slot);
	if (status)
		return status;
	tidy(z, slot);
	*ret = 0;
	return 0;
}

/* _writeback: zswap_writeback_entry as the pool calls it.  -EEXIST, and
 * -ENOMEM with RAM full, are marked unchanged unless evict faults are drawn. */
static int src_evict(void *ctx, uint64_t handle, int *ret)
{
	struct zpool_ref *ref = ctx;
	struct zswap *z = ref->z;
	bool drawing = z->has_faults && z->faults.rates[FAULT_EVICT] != 0.0;
	struct zpool_span span;
	struct zslot *slot;
	uint64_t swp = 0;
	int status, result;

	if (drawing && faults_fail(&z->faults, FAULT_EVICT)) {
		*ret = -EIO;
		return 0;
	}
	status = z->cfg.driver->span(ref->pool, handle, &span);
	if (status)
		return status;
	span_io(&span, 0, (uint8_t *)&swp, span.size < 8 ? span.size : 8, false);
	slot = lookup(z, swp);
	if (!slot || !slot->has_entry || slot->entry.handle != handle) {
		*ret = 0;				/* invalidated meanwhile */
		return 0;
	}
	status = write_back(z, slot, &result);
	if (status)
		return status;
	if (!drawing && (result == -EEXIST ||
			 (result == -ENOMEM && memory_free_pages(&z->memory) == 0)))
		z->cfg.driver->common(ref->pool)->unchanged_result = result;
	*ret = result;
	return 0;
}

/* -- the store paths ---------------------------------------------------------------- */

static bool has_slot(const struct zswap *z, uint32_t type, uint64_t offset,
		     const struct zslot *slot)
{
	return (slot->has_entry || slot->zero || slot->loaded) ||
		swapdev_peek(&z->swapdev, type, offset);
}

/* _write_to_device: zswap refused the page; the swap core writes it */
static int write_to_device(struct zswap *z, uint32_t type, uint64_t offset,
			   struct zslot *slot, const uint8_t *page, int *result)
{
	int status = drop(z, slot);

	if (status)
		return status;
	status = swapdev_write(&z->swapdev, type, offset, page);
	if (status == -EIO) {
		z->c.swap_write_errors++;
		swapdev_discard(&z->swapdev, type, offset);
		*result = ZSWAP_NOT_OUT;
		return 0;
	}
	if (status)
		return status;
	*result = ZSWAP_TO_DEVICE;
	return 0;
}

static void insert(struct zswap *z, uint32_t type, uint64_t offset, struct zslot *slot,
		   const struct zentry *entry)
{
	uint64_t pages;

	slot->entry = *entry;
	link_add_tail(&slot->entry.tree, &z->trees[type]);
	link_init(&slot->entry.lru);
	slot->has_entry = true;
	z->c.stored_pages++;
	z->c.zswpout++;
	pages = zswap_pool_pages(z);
	if (pages > z->c.peak_pool_pages)
		z->c.peak_pool_pages = pages;
	swapdev_discard(&z->swapdev, type, offset);	/* the slot's old data is dead */
}

/* _zswap_store: frontswap's store (3.11, 6.1, 6.3) up to the tree insert;
 * *ok false when the page is refused */
static int store_entry(struct zswap *z, uint32_t type, uint64_t offset, const uint8_t *page,
		       struct zentry *entry, bool *ok)
{
	const uint8_t *compressed;
	size_t length;
	uint32_t index;
	int status = pool_for(z, type, &index);

	*ok = false;
	if (status)
		return status;
	if (z->cfg.limit_rule == LIMIT_RECLAIM_ON_STORE) {
		if (z->cfg.limit_pages < z->last_pool_pages) {		/* zswap_is_full() */
			int ret;

			z->c.pool_limit_hit++;
			status = reclaim(z, index, &ret);
			if (status)
				return status;
			if (ret != 0) {
				z->c.reject_reclaim_fail++;
				z->c.reject_pool_full++;
				return 0;
			}
		}
	} else {
		uint64_t pages = total_pages(z, index);

		if (z->cfg.limit_pages < pages) {			/* zswap_is_full() */
			z->c.pool_limit_hit++;
			z->pool_reached_full = true;
			queue_shrink_work(z);
			z->c.reject_pool_full++;
			return 0;
		}
		if (z->pool_reached_full) {
			if (z->cfg.accept_pages <= pages) {		/* not zswap_can_accept() */
				z->c.reject_pool_full++;
				return 0;
			}
			z->pool_reached_full = false;
		}
	}
	if (same_filled_entry(z, page, entry)) {
		*ok = true;
		return 0;
	}
	status = z->codec.compress(z->codec.ctx, page, &compressed, &length);
	if (status)
		return status;
	if (length > z->cfg.compress_buffer) {
		z->c.reject_too_big++;
		return 0;
	}
	status = pool_malloc(z, index, (long long)(z->cfg.header_len + length), &entry->handle, ok);
	if (status || !*ok)
		return status;
	status = write_object(z, index, entry->handle, swp_entry(type, offset), compressed,
			      (uint32_t)length, z->cfg.header_len);
	if (status)
		return status;
	z->c.compressed_bytes += length;
	if (z->cfg.limit_rule == LIMIT_RECLAIM_ON_STORE)
		z->last_pool_pages = total_pages(z, index);
	entry->length = (uint32_t)length;
	entry->pool = index;
	entry->word = 0;
	entry->as_is = entry->referenced = false;
	return 0;
}

/* _check_limits: zswap_check_limits, true while stores are refused */
static bool check_limits(struct zswap *z)
{
	uint64_t pages = zswap_pool_pages(z);

	if (pages >= z->cfg.limit_pages) {
		z->c.pool_limit_hit++;
		z->pool_reached_full = true;
	} else if (z->pool_reached_full && pages <= z->cfg.accept_pages) {
		z->pool_reached_full = false;
	}
	return z->pool_reached_full;
}

/* _limit_refuses: 6.6's limit and hysteresis, each refusal queueing the work */
static bool limit_refuses(struct zswap *z)
{
	uint64_t pages = zswap_pool_pages(z);

	if (z->cfg.limit_pages < pages) {				/* zswap_is_full() */
		z->c.pool_limit_hit++;
		z->pool_reached_full = true;
	} else if (!(z->pool_reached_full && z->cfg.accept_pages <= pages)) {
		z->pool_reached_full = false;
		return false;
	}
	queue_shrink_work(z);
	return true;
}

static uint32_t hash_32(uint64_t value, uint32_t bits)
{
	return (uint32_t)(value * UINT64_C(0x61C88647)) >> (32 - bits);
}

static uint32_t log2_of(uint32_t n)
{
	uint32_t bits = 0;

	while (n >>= 1)
		bits++;
	return bits;
}

/* _zswap_store_lru: zswap_store of 6.6 / 6.12 / 6.18 up to the tree insert */
static int store_lru_entry(struct zswap *z, uint64_t offset, const uint8_t *page,
			   struct zentry *entry, bool *ok)
{
	const uint8_t *compressed;
	size_t length;
	uint32_t index = 0;
	bool as_is = false;
	int status;

	*ok = false;
	if (z->cfg.limit_rule == LIMIT_CHECK_LIMITS ? check_limits(z) : limit_refuses(z)) {
		z->c.reject_pool_full++;
		return 0;
	}
	if (same_filled_entry(z, page, entry)) {
		*ok = true;
		return 0;
	}
	status = z->codec.compress(z->codec.ctx, page, &compressed, &length);
	if (status)
		return status;
	if (z->cfg.store_as_is && length >= PAGE_SIZE) {	/* also what did not fit */
		compressed = page;
		length = PAGE_SIZE;
		as_is = true;
	} else if (length > z->cfg.compress_buffer) {
		z->c.reject_too_big++;
		if (z->cfg.count_compress_fail)
			z->c.reject_compress_fail++;
		return 0;
	}
	if (z->cfg.zpools_per_pool > 1)
		index = hash_32(offset, log2_of(z->cfg.zpools_per_pool));
	status = pool_malloc(z, index, (long long)length, &entry->handle, ok);
	if (status || !*ok)
		return status;
	status = write_object(z, index, entry->handle, 0, compressed, (uint32_t)length, 0);
	if (status)
		return status;
	z->c.compressed_bytes += length;
	entry->length = (uint32_t)length;
	entry->pool = index;
	entry->word = 0;
	entry->as_is = as_is;
	entry->referenced = z->cfg.second_chance;
	return 0;
}

/* _swap_writepage: swap_writepage of 6.6 on, from the zero map down */
static int swap_writepage(struct zswap *z, uint32_t type, uint64_t offset, struct zslot *slot,
			  const uint8_t *page, int *result)
{
	struct zentry entry;
	bool ok;
	int status;

	forget_loaded(z, slot);
	if (z->cfg.zero_map && zero_filled(page)) {		/* is_folio_zero_filled */
		status = drop(z, slot);
		if (status)
			return status;
		swapdev_discard(&z->swapdev, type, offset);
		if (!slot->zero) {
			slot->zero = true;
			z->c.zeromap_pages++;
		}
		z->c.swpout_zero++;
		*result = ZSWAP_KEPT;
		return 0;
	}
	forget_zero(z, slot);				/* swap_zeromap_folio_clear */
	status = store_lru_entry(z, offset, page, &entry, &ok);
	if (status)
		return status;
	if (!ok) {
		if (z->pool_reached_full && z->cfg.limit_rule == LIMIT_CHECK_LIMITS)
			queue_shrink_work(z);		/* 6.12: every refusal while full */
		return write_to_device(z, type, offset, slot, page, result);
	}
	status = drop(z, slot);				/* xa_store's old entry is freed */
	if (status)
		return status;
	insert(z, type, offset, slot, &entry);
	if (entry.length)
		link_add_tail(&slot->entry.lru, &z->lru);	/* zswap_lru_add: the young end */
	if (entry.as_is)
		z->c.stored_incompressible_pages++;
	*result = ZSWAP_KEPT;
	return 0;
}

static int store(struct zswap *z, uint32_t type, uint64_t offset, const uint8_t *page,
		 int *result)
{
	uint64_t key = swp_entry(type, offset);
	struct zentry entry;
	struct zslot *slot;
	bool ok;
	int status;

	if (work_due(z)) {
		status = run_due_work(z, swap_out_clock(z));
		if (status)
			return status;
	}
	z->c.stores++;
	status = obtain(z, key, &slot);
	if (status)
		return status;
	slot->swapcache = false;
	if (z->cfg.has_swap_capacity && !has_slot(z, type, offset, slot) &&
	    slots_in_use(z) >= z->cfg.swap_capacity) {
		z->c.swap_full++;
		*result = ZSWAP_NOT_OUT;
		return 0;
	}
	if (slot->has_entry) {
		z->c.duplicate_stores++;
		if (z->cfg.invalidate_duplicates) {
			if (z->cfg.counts_invalidated_duplicates)
				z->c.duplicate_entry++;		/* 6.6: zswap itself */
			status = drop(z, slot);			/* frontswap's invalidate first */
			if (status)
				return status;
		}
	}
	if (z->cfg.zswap_lru)
		return swap_writepage(z, type, offset, slot, page, result);
	status = store_entry(z, type, offset, page, &entry, &ok);
	if (status)
		return status;
	if (!ok)
		return write_to_device(z, type, offset, slot, page, result);
	if (slot->has_entry) {					/* zswap sees the duplicate */
		z->c.duplicate_entry++;
		status = drop(z, slot);
		if (status)
			return status;
	}
	insert(z, type, offset, slot, &entry);
	*result = ZSWAP_KEPT;
	return 0;
}

/* -- the operations ----------------------------------------------------------------- */

int zswap_store(struct zswap *z, uint32_t type, uint64_t offset, const uint8_t *page,
		int *result)
{
	uint64_t key = swp_entry(type, offset);

	begin(z, key);
	return end(z, key, store(z, type, offset, page, result));
}

int zswap_evict_loaded(struct zswap *z, uint32_t type, uint64_t offset, int *result)
{
	uint64_t key = swp_entry(type, offset);
	struct zslot *slot = lookup(z, key);

	if (!slot || !slot->loaded) {
		*result = ZSWAP_NOT_OUT;
		return 0;
	}
	memcpy(z->spare, slot->loaded, PAGE_SIZE);	/* the store frees the loaded copy */
	begin(z, key);
	return end(z, key, store(z, type, offset, z->spare, result));
}

static int load(struct zswap *z, uint32_t type, uint64_t offset, uint8_t *page, int *found)
{
	uint64_t key = swp_entry(type, offset);
	struct zslot *slot;
	int status;

	if (work_due(z)) {
		status = run_due_work(z, swap_out_clock(z));
		if (status)
			return status;
	}
	z->c.loads++;
	slot = lookup(z, key);
	*found = 1;
	if (z->cfg.zswap_lru && slot && !slot->has_entry) {
		if (slot->zero) {			/* swap_read_folio_zeromap */
			z->c.swpin_zero++;
			memset(page, 0, PAGE_SIZE);
			slot->swapcache = true;
			return 0;
		}
		if (slot->loaded) {			/* still in RAM */
			z->c.swapcache_hits++;
			memcpy(page, slot->loaded, PAGE_SIZE);
			slot->swapcache = true;
			return 0;
		}
	}
	if (slot && slot->has_entry) {
		status = decompress_entry(z, &slot->entry, page);
		if (status)
			return status;
		z->c.zswpin++;
		if (z->cfg.exclusive_loads) {		/* the entry leaves zswap */
			uint8_t *copy = malloc(PAGE_SIZE);

			if (!copy)
				return ZE_OOM;
			memcpy(copy, page, PAGE_SIZE);
			status = free_entry(z, slot);
			if (status) {
				free(copy);
				return status;
			}
			free(slot->loaded);
			slot->loaded = copy;
			z->c.loaded_pages++;
		} else if (z->cfg.zswap_lru && slot->entry.length) {	/* 6.6: to the head */
			lru_to_young_end(z, slot);
		}
	} else {
		const uint8_t *stored = swapdev_read(&z->swapdev, type, offset);

		if (!stored) {
			z->c.load_unknown++;
			*found = 0;
			return 0;
		}
		memcpy(page, stored, PAGE_SIZE);
		z->c.load_misses++;
		if (!slot) {
			status = obtain(z, key, &slot);
			if (status)
				return status;
		}
	}
	slot->swapcache = true;
	return 0;
}

int zswap_load(struct zswap *z, uint32_t type, uint64_t offset, uint8_t *page, int *found)
{
	uint64_t key = swp_entry(type, offset);

	begin(z, key);
	return end(z, key, load(z, type, offset, page, found));
}

int zswap_invalidate_page(struct zswap *z, uint32_t type, uint64_t offset)
{
	uint64_t key = swp_entry(type, offset);
	struct zslot *slot;
	int status = 0;

	begin(z, key);
	if (work_due(z))
		status = run_due_work(z, swap_out_clock(z));
	if (status)
		return end(z, key, status);
	z->c.invalidates++;
	slot = lookup(z, key);
	status = drop(z, slot);
	if (status)
		return end(z, key, status);
	swapdev_discard(&z->swapdev, type, offset);
	if (slot) {
		slot->swapcache = false;
		if (z->cfg.zswap_lru) {
			forget_zero(z, slot);
			forget_loaded(z, slot);
		}
	}
	return end(z, key, 0);
}

static int forget_area_slot(void *ctx, uint64_t key, void *value)
{
	struct zswap *z = ctx;
	struct zslot *slot = value;

	(void)key;
	slot->swapcache = false;
	forget_zero(z, slot);
	forget_loaded(z, slot);
	tidy(z, slot);
	return 0;
}

int zswap_invalidate_area(struct zswap *z, uint32_t type)
{
	struct link *tree = &z->trees[type];
	int status;

	if (work_due(z)) {
		status = run_due_work(z, swap_out_clock(z));
		if (status)
			return status;
	}
	while (!link_empty(tree)) {			/* oldest first, as the dict pops */
		status = free_entry(z, link_entry(tree->next, struct zslot, entry.tree));
		if (status)
			return status;
	}
	swapdev_discard_area(&z->swapdev, type);
	return slot_map_each_of_type(&z->slots, type, forget_area_slot, z);
}

/* -- reports ------------------------------------------------------------------------ */

enum zswap_where zswap_where(const struct zswap *z, uint32_t type, uint64_t offset)
{
	const struct zslot *slot = lookup(z, swp_entry(type, offset));

	if (slot && slot->has_entry)
		return WHERE_POOL;
	if (swapdev_peek(&z->swapdev, type, offset))
		return WHERE_SWAP;
	if (slot && slot->zero)
		return WHERE_ZERO_MAP;
	if (slot && slot->loaded)
		return WHERE_RAM;
	return WHERE_NONE;
}

int zswap_peek(struct zswap *z, uint32_t type, uint64_t offset, uint8_t *page, int *found)
{
	const struct zslot *slot = lookup(z, swp_entry(type, offset));
	const uint8_t *stored;

	*found = 1;
	if (slot && slot->has_entry)
		return decompress_entry(z, &slot->entry, page);
	if (slot && slot->zero) {
		memset(page, 0, PAGE_SIZE);
		return 0;
	}
	stored = slot && slot->loaded ? slot->loaded : swapdev_peek(&z->swapdev, type, offset);
	if (stored)
		memcpy(page, stored, PAGE_SIZE);
	else
		*found = 0;
	return 0;
}

int zswap_compressed(struct zswap *z, uint32_t type, uint64_t offset, uint8_t *buf,
		     size_t *len)
{
	const struct zslot *slot = lookup(z, swp_entry(type, offset));
	uint32_t size;
	int status;

	*len = 0;
	if (!slot || !slot->has_entry || !slot->entry.length || slot->entry.as_is)
		return 0;
	status = read_object(z, &slot->entry, &size);
	if (status)
		return status;
	*len = size - z->cfg.header_len;
	memcpy(buf, z->object + z->cfg.header_len, *len);
	return 0;
}

int zswap_flip_bit(struct zswap *z, uint32_t type, uint64_t offset, uint32_t bit)
{
	const struct zslot *slot = lookup(z, swp_entry(type, offset));
	struct zpool_span span;
	uint8_t byte;
	int status;

	if (!slot || !slot->has_entry || !slot->entry.length)
		return -ENOENT;
	status = z->cfg.driver->span(z->pools[slot->entry.pool].pool, slot->entry.handle, &span);
	if (status)
		return status;
	if (bit / 8 >= span.size)
		return -EINVAL;
	span_io(&span, bit / 8, &byte, 1, false);
	byte ^= (uint8_t)(1u << (bit % 8));
	span_io(&span, bit / 8, &byte, 1, true);
	return 0;
}

static uint64_t result_count(const struct zpool_common *common, int ret)
{
	size_t i;

	for (i = 0; i < common->nresults; i++)
		if (common->results[i].ret == ret)
			return common->results[i].count;
	return 0;
}

void zswap_counts(const struct zswap *z, struct zswap_counts *out)
{
	uint32_t i;

	*out = z->c;
	out->pool_pages = out->reclaim_calls = out->reclaim_pages_scanned = 0;
	out->evict_calls = out->evict_eexist = out->evict_enomem = out->evict_eio = 0;
	for (i = 0; i < ZSWAP_MAX_POOLS; i++) {
		const struct zpool_common *common;

		if (!z->pools[i].pool)
			continue;
		common = z->cfg.driver->common(z->pools[i].pool);
		out->pool_pages += total_pages(z, i);
		out->reclaim_calls += common->reclaim_calls;
		out->reclaim_pages_scanned += common->reclaim_pages_scanned;
		out->evict_calls += common->evict_calls;
		out->evict_eexist += result_count(common, -EEXIST);
		out->evict_enomem += result_count(common, -ENOMEM);
		out->evict_eio += result_count(common, -EIO);
	}
	out->swap_writes = z->swapdev.writes;
	out->swap_reads = z->swapdev.reads;
	out->swap_discards = z->swapdev.discards;
	out->swap_used_slots = swapdev_used_slots(&z->swapdev);
	out->slots_in_use = slots_in_use(z);
	out->ram_used_pages = z->memory.used_pages;
	out->ram_peak_pages = z->memory.peak_pages;
	out->ram_free_pages = memory_free_pages(&z->memory);
	out->shrink_pending = z->shrink_pending;
	out->shrink_running = z->shrink_running;
	out->pool_reached_full = z->pool_reached_full;
}

const struct fault_plan *zswap_faults(const struct zswap *z)
{
	return z->has_faults ? &z->faults : NULL;
}

int zswap_class_stats(struct zswap *z, uint32_t index, struct zs_class_stats *row)
{
	struct zs_class_stats part;
	bool any = false;
	int distinct = 0;
	uint32_t i;

	if (z->cfg.driver != &zsmalloc_driver)
		return -EINVAL;
	memset(row, 0, sizeof(*row));
	for (i = 0; i < ZSWAP_MAX_POOLS; i++) {
		if (!z->pools[i].pool)
			continue;
		any = true;
		distinct = zs_class_stats(z->pools[i].pool, index, &part);
		if (!distinct)
			continue;
		part.almost_full += row->almost_full;
		part.almost_empty += row->almost_empty;
		part.obj_allocated += row->obj_allocated;
		part.obj_used += row->obj_used;
		part.pages_used += row->pages_used;
		part.freeable += row->freeable;
		*row = part;
	}
	if (!any) {		/* no pool yet (3.11): a new pool's rows */
		struct frame_source src = { src_alloc, src_free, src_evict, &z->pools[0] };
		void *pool = z->cfg.driver->create(&src, false, &z->cfg.pool_options);

		if (!pool)
			return ZE_OOM;
		distinct = zs_class_stats(pool, index, row);
		z->cfg.driver->destroy(pool);
	}
	return distinct;
}

/* -- construction ------------------------------------------------------------------- */

struct zswap *zswap_create(const struct zswap_config *config, const struct zswap_codec *codec,
			   const struct fault_plan *faults)
{
	struct zswap *z = calloc(1, sizeof(*z));
	uint32_t i;

	if (!z)
		return NULL;
	z->cfg = *config;
	z->codec = *codec;
	if (faults) {
		z->has_faults = true;
		z->faults = *faults;
	}
	for (i = 0; i < ZSWAP_MAX_POOLS; i++)
		z->pools[i].z = z;
	for (i = 0; i < MAX_SWAPFILES; i++)
		link_init(&z->trees[i]);
	link_init(&z->lru);
	if (swapdev_init(&z->swapdev, faults ? &z->faults : NULL)) {
		free(z);
		return NULL;
	}
	if (memory_init(&z->memory, config->ram_pages, faults ? &z->faults : NULL) ||
	    config->zpools_per_pool < 1 || config->zpools_per_pool > ZSWAP_MAX_POOLS ||
	    config->zpools_per_pool & (config->zpools_per_pool - 1)) {
		swapdev_release(&z->swapdev);
		free(z);
		return NULL;
	}
	if (!config->pool_per_swap_type)
		for (i = 0; i < config->zpools_per_pool; i++)
			if (new_pool(z, i)) {
				zswap_destroy(z);
				return NULL;
			}
	return z;
}

int zswap_share_swap_pages(struct zswap *z, struct zswap *with)
{
	return swapdev_share_pages(&z->swapdev, &with->swapdev);
}

void zswap_destroy(struct zswap *z)
{
	size_t i;

	for (i = 0; i < ZSWAP_MAX_POOLS; i++)
		if (z->pools[i].pool)
			z->cfg.driver->destroy(z->pools[i].pool);
	for (i = 0; i < z->slots.cap; i++) {
		struct zslot *slot = z->slots.buckets[i].value;

		if (slot) {
			free(slot->loaded);
			free(slot);
		}
	}
	slot_map_release(&z->slots);
	swapdev_release(&z->swapdev);
	memory_release(&z->memory);
	free(z);
}
