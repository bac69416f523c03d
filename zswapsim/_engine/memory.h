/*
 * memory.h - the API of memory.c, the compiled twin of zswapsim/memory.py's
 * Memory (a bounded one: zswap's limit is a share of it).
 */
#ifndef ZSWAPSIM_MEMORY_H
#define ZSWAPSIM_MEMORY_H

#include "engine.h"
#include "faults.h"

struct memory {
	uint64_t totalram_pages;
	uint8_t **frames;		/* pfn -> its PAGE_SIZE bytes; a frame never moves */
	uint32_t nframes, frames_cap;
	uint32_t *free_pfns;		/* the free list; its last pfn is handed out first */
	uint32_t nfree;			/* the list has room for frames_cap pfns */
	uint64_t used_pages, peak_pages;
	struct fault_plan *faults;	/* NULL: no injected failures */
};

/* 0, or -EINVAL for no page at all */
int memory_init(struct memory *memory, uint64_t totalram_pages, struct fault_plan *faults);
void memory_release(struct memory *memory);
/* 0 with a frame's pfn and bytes, -ENOMEM (the budget is spent or a fault was
 * injected) or ZE_OOM */
int memory_alloc_page(struct memory *memory, uint32_t *pfn, uint8_t **bytes);
void memory_free_page(struct memory *memory, uint32_t pfn);
uint64_t memory_free_pages(const struct memory *memory);

#endif
