/*
 * memory.c - the compiled twin of zswapsim/memory.py's Memory: a budget of
 * totalram_pages page frames holding real bytes, the frames the pools and
 * zswap's swap-cache pages are made of.  As there, allocating past the
 * budget fails with -ENOMEM before a fault is drawn, an injected fault
 * fails it after, freed frames keep their stale bytes and are handed out
 * again last-freed first (the page allocator's per-CPU lists), a new pfn is
 * the next never used, and the peak of frames in use is kept.
 */
#include <stdlib.h>

#include "memory.h"

int memory_init(struct memory *memory, uint64_t totalram_pages, struct fault_plan *faults)
{
	if (totalram_pages < 1)
		return -EINVAL;
	*memory = (struct memory){ .totalram_pages = totalram_pages, .faults = faults };
	return 0;
}

void memory_release(struct memory *memory)
{
	uint32_t pfn;

	for (pfn = 0; pfn < memory->nframes; pfn++)
		free(memory->frames[pfn]);
	free(memory->frames);
	free(memory->free_pfns);
	memory->frames = NULL;
	memory->free_pfns = NULL;
	memory->nframes = memory->nfree = 0;
}

static int new_frame(struct memory *memory, uint32_t *pfn)
{
	uint8_t *frame;

	if (memory->nframes == UINT32_MAX)
		return ZE_OOM;
	if (memory->nframes == memory->frames_cap) {
		uint32_t cap = memory->frames_cap ? 2 * memory->frames_cap : 64;
		uint8_t **grown = realloc(memory->frames, (size_t)cap * sizeof(*grown));
		uint32_t *free_grown;

		if (!grown)
			return ZE_OOM;
		memory->frames = grown;
		free_grown = realloc(memory->free_pfns, (size_t)cap * sizeof(*free_grown));
		if (!free_grown)
			return ZE_OOM;
		memory->free_pfns = free_grown;
		memory->frames_cap = cap;	/* the free list holds as many pfns */
	}
	frame = calloc(1, PAGE_SIZE);
	if (!frame)
		return ZE_OOM;
	*pfn = memory->nframes;
	memory->frames[memory->nframes++] = frame;
	return 0;
}

int memory_alloc_page(struct memory *memory, uint32_t *pfn, uint8_t **bytes)
{
	if (memory->used_pages >= memory->totalram_pages)
		return -ENOMEM;			/* simulated RAM exhausted */
	if (memory->faults && faults_fail(memory->faults, FAULT_ALLOC))
		return -ENOMEM;			/* injected page allocation failure */
	if (memory->nfree) {
		*pfn = memory->free_pfns[--memory->nfree];
	} else {
		int status = new_frame(memory, pfn);

		if (status)
			return status;
	}
	memory->used_pages++;
	if (memory->used_pages > memory->peak_pages)
		memory->peak_pages = memory->used_pages;
	*bytes = memory->frames[*pfn];
	return 0;
}

/* The free list has room for every frame (new_frame grows both together). */
void memory_free_page(struct memory *memory, uint32_t pfn)
{
	memory->free_pfns[memory->nfree++] = pfn;
	memory->used_pages--;
}

uint64_t memory_free_pages(const struct memory *memory)
{
	return memory->totalram_pages - memory->used_pages;
}
