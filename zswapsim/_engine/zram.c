/*
 * zram.c - the compiled twin of zswapsim/zram.py (which says what each
 * kernel does, from drivers/block/zram/zram_drv.c of 4.14, 6.1, 6.6, 6.12
 * and 6.18): the device's write, read, slot free, compaction and idle
 * marking, its stats and the pool under it.
 *
 * A write (__zram_bvec_write, zram_write_page): a same-filled page keeps
 * its word and allocates nothing; any other is compressed through the
 * codec, stored whole (PAGE_SIZE bytes, ZRAM_HUGE) when the profile's huge
 * rule says so, allocated, mem_used_max raised, and only then mem_limit
 * checked; an allocation refused or over the limit fails the write with the
 * slot's old page kept.  Only a write that got its object frees the old one.
 * Every branch and counter follows zram.py's, in the same order.
 *
 * Slots: zram_drv.c's table is one flat array of disksize / PAGE_SIZE
 * entries; here a slot_map (swapdev.h) from index to a record, as zram.py
 * keeps a dict, so a device of terabytes costs only the slots written.  The
 * pool is the driver's (engine.h) over frames of the engine's own RAM
 * (memory.c, unbounded as zram.py's default Memory); huge_class_size comes
 * from a throwaway zsmalloc class table of the profile's chain size, as
 * zram.py's `geometry` gives it, whatever the allocator.
 *
 * Where this is less than zram.py: no backing device (writeback, bd_reads,
 * bd_writes) and no recompression; zram_native.py keeps those runs on the
 * Python model.
 */
#include <stdlib.h>
#include <string.h>

#include "memory.h"
#include "swapdev.h"
#include "zram.h"
#include "zsmalloc.h"

struct zslot {
	struct zram_slot_info info;
};

struct zram {
	struct zram_config cfg;
	struct zram_codec codec;
	struct memory memory;
	void *pool;
	uint32_t huge_class_size;
	struct slot_map slots;		/* index -> struct zslot */
	uint64_t clock_ns;
	struct zram_stats stats;
};

/* -- frames and objects -------------------------------------------------------- */

static int src_alloc(void *ctx, uint32_t *pfn, uint8_t **bytes)
{
	return memory_alloc_page(&((struct zram *)ctx)->memory, pfn, bytes);
}

static void src_free(void *ctx, uint32_t pfn)
{
	memory_free_page(&((struct zram *)ctx)->memory, pfn);
}

/* Bytes of the object through `buf`, in (write) or out: the first page's
 * part, then the part straddling into the next. */
static void object_io(const struct zpool_span *span, uint8_t *buf, bool write)
{
	uint32_t first = span->next ? PAGE_SIZE - span->offset : span->size;
	uint8_t *parts[2] = { span->frame + span->offset, span->next };
	uint32_t lengths[2] = { first, span->size - first };
	int i;

	for (i = 0; i < 2 && lengths[i]; i++) {
		if (write)
			memcpy(parts[i], buf, lengths[i]);
		else
			memcpy(buf, parts[i], lengths[i]);
		buf += lengths[i];
	}
}

static int object_span(const struct zram *zram, uint64_t handle, struct zpool_span *span)
{
	int status = zram->cfg.driver->span(zram->pool, handle, span);

	if (status)
		return status;
	if (span->size > PAGE_SIZE || (span->next == NULL && span->offset + span->size > PAGE_SIZE))
		return ZE_CORRUPTED;
	return 0;
}

/* -- the huge rule ------------------------------------------------------------- */

bool zram_is_huge(const struct zram *zram, size_t length)
{
	if (zram->cfg.huge_above_max_zpage)
		return length > zram->cfg.max_zpage_size;
	return length >= zram->huge_class_size;
}

/* zs_huge_class_size of the profile's class table, from a pool made for it */
static int class_table_huge_size(struct zram *zram, uint32_t *size)
{
	struct frame_source src = { src_alloc, src_free, NULL, zram };
	struct zs_pool *table = zs_create(&src, false, zram->cfg.pool_options.chain_size);

	if (!table)
		return -EINVAL;
	*size = zs_huge_class_size(table);
	zs_destroy(table);
	return 0;
}

/* -- slots ---------------------------------------------------------------------- */

static struct zslot *lookup(const struct zram *zram, uint64_t index)
{
	return slot_map_get(&zram->slots, index);
}

/* valid_io_request: an index past the device counts invalid_io where the
 * kernel still checks it itself */
static bool valid(struct zram *zram, uint64_t index)
{
	if (index < zram->cfg.nr_pages)
		return true;
	if (zram->cfg.counts_invalid_io)
		zram->stats.invalid_io++;
	return false;
}

/* zram_accessed: clear IDLE and stamp the access time */
static void accessed(struct zram *zram, uint64_t index)
{
	struct zslot *slot = lookup(zram, index);

	if (slot) {
		slot->info.idle = false;
		slot->info.ac_time = zram->clock_ns;
	}
}

/* zram_free_page: the slot's object (or word) and its accounting go; the
 * record stays for the caller to refill or delete. */
static int release(struct zram *zram, struct zslot *slot)
{
	struct zram_slot_info *info = &slot->info;

	if (info->same) {
		zram->stats.same_pages--;
	} else {
		int status = zram->cfg.driver->free(zram->pool, info->handle);

		if (status)
			return status;
		zram->stats.compr_data_size -= info->size;
		if (info->huge)
			zram->stats.huge_pages--;
	}
	zram->stats.pages_stored--;
	return 0;
}

static bool same_filled_word(const uint8_t *page, uint8_t word[8])
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

/* -- block I/O -------------------------------------------------------------------- */

static void write_failed(struct zram *zram, uint64_t index, bool *written)
{
	zram->stats.failed_writes++;
	accessed(zram, index);
	*written = false;
}

/* The object of a page that is not same-filled: 0 with its slot info, or
 * *stored false when the write failed. */
static int store_object(struct zram *zram, const uint8_t *page, struct zram_slot_info *info,
			bool *stored)
{
	const struct zpool_driver *driver = zram->cfg.driver;
	const uint8_t *data;
	size_t len;
	uint64_t handle, pages;
	struct zpool_span span;
	int status = zram->codec.compress(zram->codec.ctx, page, &data, &len);

	*stored = false;
	if (status)
		return status;
	info->huge = zram_is_huge(zram, len);
	if (info->huge) {
		data = page;
		len = PAGE_SIZE;
	}
	status = driver->malloc(zram->pool, (long long)len, &handle);
	if (status == -ENOSPC || status == -ENOMEM) {
		/* the fast zs_malloc failed: writestall, then the GFP_NOIO retry,
		 * which fails alike (nothing here reclaims memory) */
		if (zram->cfg.counts_writestall)
			zram->stats.writestall++;
		return 0;
	}
	if (status)
		return status;
	pages = driver->total_pages(zram->pool);
	if (pages > zram->stats.mem_used_max)
		zram->stats.mem_used_max = pages;
	if (zram->cfg.limit_pages && pages > zram->cfg.limit_pages)
		return driver->free(zram->pool, handle);	/* over mem_limit: not stored */
	status = object_span(zram, handle, &span);
	if (status)
		return status;
	if (span.size != len)
		return ZE_CORRUPTED;
	object_io(&span, (uint8_t *)data, true);
	info->same = false;
	info->handle = handle;
	info->size = (uint32_t)len;
	*stored = true;
	return 0;
}

int zram_write(struct zram *zram, uint64_t index, const uint8_t *page, bool *written)
{
	struct zram_slot_info info = { .ac_time = zram->clock_ns };
	struct zslot *slot;
	int status;

	*written = false;
	if (!valid(zram, index))
		return 0;
	if (same_filled_word(page, info.word)) {
		info.same = true;
		zram->stats.same_pages++;
	} else {
		bool stored;

		status = store_object(zram, page, &info, &stored);
		if (status || !stored) {
			if (!status)
				write_failed(zram, index, written);
			return status;
		}
		if (info.huge) {
			zram->stats.huge_pages++;
			zram->stats.huge_pages_since++;
		}
	}
	slot = lookup(zram, index);
	if (slot) {
		status = release(zram, slot);
		if (status)
			return status;
	} else {
		slot = malloc(sizeof(*slot));
		if (!slot || slot_map_put(&zram->slots, index, slot)) {
			free(slot);
			return ZE_OOM;
		}
	}
	slot->info = info;
	zram->stats.compr_data_size += info.size;
	zram->stats.pages_stored++;
	*written = true;
	return 0;
}

int zram_peek(struct zram *zram, uint64_t index, uint8_t *page)
{
	const struct zslot *slot = lookup(zram, index);
	struct zpool_span span;
	uint8_t object[PAGE_SIZE];
	uint32_t i;
	int status;

	if (!slot) {
		memset(page, 0, PAGE_SIZE);
		return 0;
	}
	if (slot->info.same) {
		for (i = 0; i < PAGE_SIZE; i += 8)
			memcpy(page + i, slot->info.word, 8);
		return 0;
	}
	status = object_span(zram, slot->info.handle, &span);
	if (status)
		return status;
	if (slot->info.huge) {
		if (span.size != PAGE_SIZE)
			return ZE_CORRUPTED;
		object_io(&span, page, false);
		return 0;
	}
	object_io(&span, object, false);
	return zram->codec.decompress(zram->codec.ctx, object, span.size, page);
}

int zram_read(struct zram *zram, uint64_t index, uint8_t *page, bool *found)
{
	*found = false;
	if (!valid(zram, index))
		return 0;
	accessed(zram, index);
	*found = true;
	return zram_peek(zram, index, page);
}

int zram_discard(struct zram *zram, uint64_t index)
{
	struct zslot *slot;
	int status = 0;

	if (!valid(zram, index))
		return 0;
	zram->stats.notify_free++;
	slot = slot_map_del(&zram->slots, index);
	if (slot) {
		status = release(zram, slot);
		free(slot);
	}
	return status;
}

uint64_t zram_compact(struct zram *zram)
{
	uint64_t freed = 0;

	if (zram->cfg.driver == &zsmalloc_driver)
		freed = zs_compact(zram->pool);
	zram->stats.pages_compacted += freed;
	return freed;
}

/* mark_idle of 6.1 (every stored slot whose access is old enough) and, with
 * idle_skips_same, of 6.13 on: same-filled slots left, younger ones cleared */
uint64_t zram_mark_idle(struct zram *zram, bool all, uint64_t age_ns)
{
	uint64_t marked = 0;
	size_t i;

	for (i = 0; i < zram->slots.cap; i++) {
		struct zslot *slot = zram->slots.buckets[i].value;
		uint64_t ac_time;

		if (!slot || (zram->cfg.idle_skips_same && slot->info.same))
			continue;
		ac_time = slot->info.ac_time;
		/* cutoff = clock - age, idle when cutoff > ac_time */
		if (all || (zram->clock_ns > ac_time && zram->clock_ns - ac_time > age_ns)) {
			slot->info.idle = true;
			marked++;
		} else if (zram->cfg.idle_skips_same) {
			slot->info.idle = false;
		}
	}
	return marked;
}

/* -- reports ---------------------------------------------------------------------- */

void zram_set_clock(struct zram *zram, uint64_t clock_ns)
{
	zram->clock_ns = clock_ns;
}

uint64_t zram_clock(const struct zram *zram)
{
	return zram->clock_ns;
}

uint64_t zram_total_pages(const struct zram *zram)
{
	return zram->cfg.driver->total_pages(zram->pool);
}

uint32_t zram_huge_class_size(const struct zram *zram)
{
	return zram->huge_class_size;
}

void zram_stats(const struct zram *zram, struct zram_stats *out)
{
	*out = zram->stats;
}

bool zram_slot(const struct zram *zram, uint64_t index, struct zram_slot_info *info)
{
	const struct zslot *slot = lookup(zram, index);

	if (slot)
		*info = slot->info;
	return slot != NULL;
}

uint64_t zram_slot_count(const struct zram *zram)
{
	return zram->slots.len;
}

void zram_slot_indexes(const struct zram *zram, uint64_t *out)
{
	size_t i;

	for (i = 0; i < zram->slots.cap; i++)
		if (zram->slots.buckets[i].value)
			*out++ = zram->slots.buckets[i].key;
}

uint64_t zram_ram_used_pages(const struct zram *zram)
{
	return zram->memory.used_pages;
}

uint64_t zram_ram_peak_pages(const struct zram *zram)
{
	return zram->memory.peak_pages;
}

int zram_check(struct zram *zram)
{
	return zram->cfg.driver->check(zram->pool);
}

const char *zram_pool_message(struct zram *zram)
{
	return zram->cfg.driver->common(zram->pool)->message;
}

/* -- the device ------------------------------------------------------------------ */

int zram_create(const struct zram_config *config, const struct zram_codec *codec,
		struct zram **out)
{
	struct frame_source src = { src_alloc, src_free, NULL, NULL };
	struct zram *zram;
	int status;

	if (config->nr_pages < 1)
		return -EINVAL;
	zram = calloc(1, sizeof(*zram));
	if (!zram)
		return ZE_OOM;
	zram->cfg = *config;
	zram->codec = *codec;
	src.ctx = zram;
	memory_init(&zram->memory, UINT64_MAX, NULL);
	status = class_table_huge_size(zram, &zram->huge_class_size);
	if (!status) {
		zram->pool = config->driver->create(&src, false, &config->pool_options);
		if (!zram->pool)
			status = -EINVAL;
	}
	if (status) {
		memory_release(&zram->memory);
		free(zram);
		return status;
	}
	*out = zram;
	return 0;
}

void zram_destroy(struct zram *zram)
{
	size_t i;

	zram->cfg.driver->destroy(zram->pool);
	for (i = 0; i < zram->slots.cap; i++)
		free(zram->slots.buckets[i].value);
	slot_map_release(&zram->slots);
	memory_release(&zram->memory);
	free(zram);
}
