/*
 * zram.h - the API of zram.c, the compiled twin of zswapsim/zram.py's Zram:
 * the block device's write, read, discard (slot free), compact and idle
 * marking on page indexes, driven by plain C calls that return 0 or a
 * negative status (engine.h) and give their results through pointers.
 * Pages go in and out as PAGE_SIZE byte arrays; the caller compresses and
 * decompresses through a zram_codec.
 */
#ifndef ZSWAPSIM_ZRAM_H
#define ZSWAPSIM_ZRAM_H

#include "engine.h"

/* Everything Zram.__init__ derives from its arguments and profile. */
struct zram_config {
	const struct zpool_driver *driver;
	struct zpool_options pool_options;	/* chain_size: also the class table's */
	uint64_t nr_pages;		/* disksize / PAGE_SIZE */
	uint64_t limit_pages;		/* PAGE_ALIGN(mem_limit) / PAGE_SIZE, 0: no limit */
	bool huge_above_max_zpage;	/* before 4.17: huge when length > max_zpage_size */
	uint32_t max_zpage_size;
	bool counts_invalid_io;		/* valid_io_request (until 6.4) */
	bool counts_writestall;		/* the GFP_NOIO retry (until 6.15) */
	bool idle_skips_same;		/* mark_idle leaves same-filled slots (6.13) */
};

struct zram_codec {
	/* 0 with the page's compressed bytes in *out (*len of them), good until
	 * the next call, or ZE_CALLBACK */
	int (*compress)(void *ctx, const uint8_t *page, const uint8_t **out, size_t *len);
	/* 0 with `len` bytes of src decompressed into the PAGE_SIZE page, or ZE_CALLBACK */
	int (*decompress)(void *ctx, const uint8_t *src, size_t len, uint8_t *page);
	void *ctx;
};

/* zram.py's `stats`, in its order: struct zram_stats of zram_drv.h with
 * pages_stored, and debug_stat's writestall and miss_free.  bd_reads and
 * bd_writes count the backing device, which this device never has, and
 * miss_free a contended slot lock, which one caller never meets. */
#define ZRAM_STATS(X)								\
	X(compr_data_size) X(mem_used_max) X(same_pages) X(pages_compacted)	\
	X(huge_pages) X(huge_pages_since) X(pages_stored) X(bd_reads)		\
	X(bd_writes) X(writestall) X(miss_free) X(failed_reads)		\
	X(failed_writes) X(invalid_io) X(notify_free)

struct zram_stats {
#define ZRAM_FIELD(name) uint64_t name;
	ZRAM_STATS(ZRAM_FIELD)
#undef ZRAM_FIELD
};

/* One slot of the table: zram.py's Slot. */
struct zram_slot_info {
	bool same;			/* ZRAM_SAME: `word` repeated, no object */
	uint64_t handle;		/* the allocator's handle, unless same */
	uint32_t size;			/* bytes stored: the compressed length, or PAGE_SIZE */
	uint8_t word[8];
	bool huge;			/* ZRAM_HUGE: stored uncompressed */
	bool idle;			/* ZRAM_IDLE */
	uint64_t ac_time;		/* last access, ns on the device's clock */
};

struct zram;

/* 0 with the device in *out; -EINVAL for no page or a pool refusing its
 * options, ZE_OOM when the C heap is exhausted. */
int zram_create(const struct zram_config *config, const struct zram_codec *codec,
		struct zram **out);
void zram_destroy(struct zram *zram);

/* An index at or past nr_pages (UINT64_MAX for any the caller cannot name)
 * is invalid I/O.  *written: the page is stored; false when the write
 * failed (failed_writes; the slot keeps its page) or the index is invalid.
 * Besides the codec's ZE_CALLBACK, the allocator's -EINVAL for a compressed
 * length of 0. */
int zram_write(struct zram *zram, uint64_t index, const uint8_t *page, bool *written);
/* *found false for an invalid index, else the page (zeros if never written). */
int zram_read(struct zram *zram, uint64_t index, uint8_t *page, bool *found);
/* The page read() gives at an index, touching no counter or slot. */
int zram_peek(struct zram *zram, uint64_t index, uint8_t *page);
/* Swap's slot-free notify, or a discard, of one page. */
int zram_discard(struct zram *zram, uint64_t index);
/* echo 1 > compact: the pages the allocator freed (0 but for zsmalloc). */
uint64_t zram_compact(struct zram *zram);
/* echo all|SECONDS > idle: mark every stored slot (`all`), or those whose
 * last access is more than age_ns before the clock; the number marked. */
uint64_t zram_mark_idle(struct zram *zram, bool all, uint64_t age_ns);

void zram_set_clock(struct zram *zram, uint64_t clock_ns);
uint64_t zram_clock(const struct zram *zram);
uint64_t zram_total_pages(const struct zram *zram);	/* zs_get_total_pages */
uint32_t zram_huge_class_size(const struct zram *zram);
bool zram_is_huge(const struct zram *zram, size_t length);
void zram_stats(const struct zram *zram, struct zram_stats *out);
/* true with the slot at `index`, false when it holds nothing */
bool zram_slot(const struct zram *zram, uint64_t index, struct zram_slot_info *info);
uint64_t zram_slot_count(const struct zram *zram);
/* The indexes of the stored slots, in no order, into `out` (room for
 * zram_slot_count of them). */
void zram_slot_indexes(const struct zram *zram, uint64_t *out);
/* The simulated RAM's frames in use and their peak. */
uint64_t zram_ram_used_pages(const struct zram *zram);
uint64_t zram_ram_peak_pages(const struct zram *zram);
/* The allocator's audit: 0 or ZE_CORRUPTED with zram_pool_message's text. */
int zram_check(struct zram *zram);
const char *zram_pool_message(struct zram *zram);

#endif
