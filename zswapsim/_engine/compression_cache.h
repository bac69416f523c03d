/*
 * compression_cache.h - the API of compression_cache.c, the compiled twin of
 * zswapsim/compress.py's CompressionCache, for the C callers that compress
 * through it without a Python call (zswap_module.c's codec).
 */
#ifndef ZSWAPSIM_COMPRESSION_CACHE_H
#define ZSWAPSIM_COMPRESSION_CACHE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

extern PyTypeObject CompressionCacheType;

/* CompressionCache.compress(page, key, ahead) for `page` (a bytes-like
 * object whose `len` bytes are `bytes`), `key` its page_key or None and
 * `ahead` a buffer or None: the compressed bytes, a new reference, or NULL
 * with an error. */
PyObject *cache_compress(PyObject *cache, PyObject *page, const uint8_t *bytes, size_t len,
			 PyObject *key, PyObject *ahead);
/* CompressionCache.decompress(src, size) into `out`: 0, or -1 with an error
 * (the compressor's, or ValueError when it gives another length). */
int cache_decompress(PyObject *cache, const uint8_t *src, size_t len, uint8_t *out,
		     size_t size);

/* CompressionCache.cached(key): the cached result, borrowed, or NULL. */
PyObject *cache_cached(PyObject *cache, PyObject *key);
/* The cache's page_key of `page`, a new reference, or NULL with an error. */
PyObject *cache_page_key(PyObject *cache, PyObject *page);

int compression_cache_module_add(PyObject *module);

#endif
