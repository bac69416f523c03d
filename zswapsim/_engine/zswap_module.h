/*
 * zswap_module.h - what zswap_module.c's Python Zswap type shares with
 * replay.c, which drives many of them through a block of trace events
 * without going back to Python between events.
 */
#ifndef ZSWAPSIM_ZSWAP_MODULE_H
#define ZSWAPSIM_ZSWAP_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "zswap.h"

typedef struct {
	PyObject_HEAD
	struct zswap *z;
	PyObject *compressor;		/* a zswapsim.compress.CompressionCache */
	const uint8_t *page_bytes;	/* the store under way: its page's bytes ... */
	PyObject *page;			/* ... and the page object itself (borrowed) */
	PyObject *key, *ahead;		/* ... its page_key and compression made ahead, or None */
	PyObject *compressed;		/* the last compress() result, for its bytes */
	/* A compressed form whose page is known (replay.c sets it around a
	 * verified load): decompressing these very bytes gives that page. */
	const uint8_t *known_data, *known_page;
	size_t known_len;
} ZswapObject;

extern PyTypeObject ZswapType;

/* zswap_store of `page` (whose PAGE_SIZE bytes are `bytes`), compressed
 * through the Zswap's cache with its page_key `key` and `ahead` (None or
 * the compression made ahead); a status, the store's result in *result. */
int zswap_object_store(ZswapObject *self, uint32_t type, uint64_t offset, PyObject *page,
		       const uint8_t *bytes, PyObject *key, PyObject *ahead, int *result);
/* NULL with the exception a failed status stands for. */
PyObject *zswap_failed(int status);

int replay_module_add(PyObject *module);	/* replay.c: the Replay type */

#endif
