/*
 * compression_cache.c - the compiled twin of zswapsim/compress.py's
 * CompressionCache: each distinct page image compressed once, results
 * keyed by page_key and kept in LRU order within a byte budget (each
 * result costs its length plus its key's), hits and misses counted as the
 * Python cache counts them, a miss taking the compression made ahead when
 * the caller has one.
 *
 * Where the compressor is one of the kernel's own in zswapsim._kcompress
 * (compress.py's native_codec() names it), a miss and a decompression call
 * the compiled compressor through _kcompress's capsule, with its
 * destination size and level, and give what the Python compressor gives
 * (a result that does not fit is dlen + 1 zero bytes); any other
 * compressor is called in Python.  The GIL is released while a compressor
 * runs, as _kcompress releases it, so the trace reader's thread goes on.
 */
#include "compression_cache.h"

#include <structmember.h>

#include "../_kcompress/kcompress.h"
#include "engine.h"

#define KEY_HASH_SEED UINT64_C(0xcbf29ce484222325)	/* FNV-1a's offset basis */
#define KEY_HASH_PRIME UINT64_C(0x100000001b3)

enum kernel_algorithm { ALG_PYTHON, ALG_LZ4, ALG_LZ4HC, ALG_LZO, ALG_LZO_RLE, ALG_842 };

static const struct {
	const char *name;
	enum kernel_algorithm algorithm;
} kernel_algorithms[] = {
	{ "lz4", ALG_LZ4 }, { "lz4hc", ALG_LZ4HC }, { "lzo", ALG_LZO },
	{ "lzo-rle", ALG_LZO_RLE }, { "842", ALG_842 },
};

struct cache_entry {
	struct link lru;		/* from the oldest (head->next) to the newest */
	struct cache_entry *chain;	/* the next entry of its hash bucket */
	uint64_t hash;
	PyObject *key, *data;		/* bytes, both */
};

typedef struct {
	PyObject_HEAD
	PyObject *compressor, *page_key;
	enum kernel_algorithm algorithm;
	Py_ssize_t dlen;
	int level;			/* lz4's acceleration, lz4hc's level */
	const struct kcompress_api *api;
	long long budget_bytes, cached_bytes;
	unsigned long long hits, misses;
	struct link lru;
	struct cache_entry **buckets;
	size_t nbuckets, nentries;
} CacheObject;

/* -- the table ------------------------------------------------------------------- */

static uint64_t key_hash(const char *bytes, Py_ssize_t len)
{
	uint64_t hash = KEY_HASH_SEED;
	Py_ssize_t i;

	for (i = 0; i < len; i++)
		hash = (hash ^ (uint8_t)bytes[i]) * KEY_HASH_PRIME;
	return hash;
}

static struct cache_entry *find(CacheObject *self, PyObject *key, uint64_t hash)
{
	struct cache_entry *entry;

	if (!self->nbuckets)
		return NULL;
	for (entry = self->buckets[hash & (self->nbuckets - 1)]; entry; entry = entry->chain)
		if (entry->hash == hash && PyBytes_GET_SIZE(entry->key) == PyBytes_GET_SIZE(key) &&
		    !memcmp(PyBytes_AS_STRING(entry->key), PyBytes_AS_STRING(key),
			    PyBytes_GET_SIZE(key)))
			return entry;
	return NULL;
}

/* Double the buckets (or make the first ones); 0 or -1 with MemoryError. */
static int grow(CacheObject *self)
{
	size_t n = self->nbuckets ? 2 * self->nbuckets : 1024, i;
	struct cache_entry **buckets = PyMem_Calloc(n, sizeof(*buckets));

	if (!buckets) {
		PyErr_NoMemory();
		return -1;
	}
	for (i = 0; i < self->nbuckets; i++) {
		struct cache_entry *entry = self->buckets[i], *next;

		for (; entry; entry = next) {
			next = entry->chain;
			entry->chain = buckets[entry->hash & (n - 1)];
			buckets[entry->hash & (n - 1)] = entry;
		}
	}
	PyMem_Free(self->buckets);
	self->buckets = buckets;
	self->nbuckets = n;
	return 0;
}

static void unlink_entry(CacheObject *self, struct cache_entry *entry)
{
	struct cache_entry **at = &self->buckets[entry->hash & (self->nbuckets - 1)];

	while (*at != entry)
		at = &(*at)->chain;
	*at = entry->chain;
	link_del(&entry->lru);
	self->nentries--;
	self->cached_bytes -= PyBytes_GET_SIZE(entry->data) + PyBytes_GET_SIZE(entry->key);
	Py_DECREF(entry->key);
	Py_DECREF(entry->data);
	PyMem_Free(entry);
}

/* Keep `data` under `key` as the newest result, then drop the oldest while
 * over budget (the new one too, if it alone exceeds it); 0 or -1. */
static int insert(CacheObject *self, PyObject *key, uint64_t hash, PyObject *data)
{
	struct cache_entry *entry;
	size_t bucket;

	if (self->nentries >= self->nbuckets && grow(self))
		return -1;
	if (!(entry = PyMem_Malloc(sizeof(*entry)))) {
		PyErr_NoMemory();
		return -1;
	}
	bucket = hash & (self->nbuckets - 1);
	entry->hash = hash;
	entry->key = Py_NewRef(key);
	entry->data = Py_NewRef(data);
	entry->chain = self->buckets[bucket];
	self->buckets[bucket] = entry;
	link_add_tail(&entry->lru, &self->lru);
	self->nentries++;
	self->cached_bytes += PyBytes_GET_SIZE(data) + PyBytes_GET_SIZE(key);
	while (self->cached_bytes > self->budget_bytes && !link_empty(&self->lru))
		unlink_entry(self, link_entry(self->lru.next, struct cache_entry, lru));
	return 0;
}

static void clear_entries(CacheObject *self)
{
	while (!link_empty(&self->lru))
		unlink_entry(self, link_entry(self->lru.next, struct cache_entry, lru));
	PyMem_Free(self->buckets);
	self->buckets = NULL;
	self->nbuckets = 0;
}

/* -- the compressor ----------------------------------------------------------------- */

/* The kernel compressor's bytes for `len` bytes at `bytes`, a new reference. */
static PyObject *kernel_compress(CacheObject *self, const uint8_t *bytes, size_t len)
{
	size_t bound = len + len / 8 + 80;	/* as _kcompress's output_room */
	size_t room = (size_t)self->dlen < bound ? (size_t)self->dlen : bound, length = 0;
	PyObject *out;
	uint8_t *dst;

	if (len > KC_MAX_INPUT)
		return PyErr_Format(PyExc_ValueError, "input of %zu bytes (at most %d)", len,
				    KC_MAX_INPUT);
	if (!(out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)room)))
		return NULL;
	dst = (uint8_t *)PyBytes_AS_STRING(out);
	Py_BEGIN_ALLOW_THREADS
	switch (self->algorithm) {
	case ALG_LZ4:
		length = self->api->lz4_compress(bytes, len, dst, (size_t)self->dlen,
						 (unsigned int)self->level);
		break;
	case ALG_LZ4HC:
		length = self->api->lz4hc_compress(bytes, len, dst, (size_t)self->dlen,
						   self->level);
		break;
	case ALG_LZO:
	case ALG_LZO_RLE:
		length = self->api->lzo_compress(bytes, len, dst, (size_t)self->dlen,
						 self->algorithm == ALG_LZO_RLE);
		break;
	case ALG_842:
		length = self->api->sw842_compress(bytes, len, dst, (size_t)self->dlen);
		break;
	case ALG_PYTHON:
		break;
	}
	Py_END_ALLOW_THREADS
	if (!length) {		/* KernelCompressor.compress: did not fit */
		Py_DECREF(out);
		if (!(out = PyBytes_FromStringAndSize(NULL, self->dlen + 1)))
			return NULL;
		memset(PyBytes_AS_STRING(out), 0, (size_t)self->dlen + 1);
		return out;
	}
	if (_PyBytes_Resize(&out, (Py_ssize_t)length))
		return NULL;
	return out;
}

/* The compressor's bytes for `page`, a new reference (bytes). */
static PyObject *compress_page(CacheObject *self, PyObject *page, const uint8_t *bytes,
			       size_t len)
{
	PyObject *data, *made;

	if (self->algorithm != ALG_PYTHON)
		return kernel_compress(self, bytes, len);
	if (!(made = PyObject_CallMethod(self->compressor, "compress", "O", page)))
		return NULL;
	data = PyBytes_Check(made) ? Py_NewRef(made) : PyBytes_FromObject(made);
	Py_DECREF(made);
	return data;
}

PyObject *cache_compress(PyObject *cache, PyObject *page, const uint8_t *bytes, size_t len,
			 PyObject *key, PyObject *ahead)
{
	CacheObject *self = (CacheObject *)cache;
	struct cache_entry *entry;
	PyObject *data;
	uint64_t hash;

	key = key == Py_None ? PyObject_CallOneArg(self->page_key, page) : Py_NewRef(key);
	if (!key)
		return NULL;
	if (!PyBytes_Check(key)) {
		PyErr_Format(PyExc_TypeError, "a page key is bytes, not %s", Py_TYPE(key)->tp_name);
		Py_DECREF(key);
		return NULL;
	}
	hash = key_hash(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key));
	if ((entry = find(self, key, hash))) {
		link_del(&entry->lru);
		link_add_tail(&entry->lru, &self->lru);
		self->hits++;
		Py_DECREF(key);
		return Py_NewRef(entry->data);
	}
	self->misses++;
	data = ahead != Py_None ? PyBytes_FromObject(ahead) : compress_page(self, page, bytes, len);
	if (data && insert(self, key, hash, data))
		Py_CLEAR(data);
	Py_DECREF(key);
	return data;
}

static int decoded_length(const char *name, int status, size_t produced, size_t size)
{
	if (status) {
		PyErr_Format(PyExc_ValueError, "%s: malformed input", name);
		return -1;
	}
	if (produced != size) {
		PyErr_Format(PyExc_ValueError, "%s: decoded %zu bytes, expected %zu", name,
			     produced, size);
		return -1;
	}
	return 0;
}

int cache_decompress(PyObject *cache, const uint8_t *src, size_t len, uint8_t *out,
		     size_t size)
{
	CacheObject *self = (CacheObject *)cache;
	PyObject *result;
	Py_buffer view;
	size_t produced = 0;
	int status = -1;

	if (self->algorithm != ALG_PYTHON && size <= KC_MAX_INPUT) {
		const char *name = self->algorithm == ALG_842 ? "842"
			: self->algorithm == ALG_LZO || self->algorithm == ALG_LZO_RLE ? "lzo"
			: "lz4";

		Py_BEGIN_ALLOW_THREADS
		switch (self->algorithm) {
		case ALG_LZ4:
		case ALG_LZ4HC:
			status = self->api->lz4_decompress(src, len, out, size, &produced);
			break;
		case ALG_LZO:
		case ALG_LZO_RLE:
			status = self->api->lzo_decompress(src, len, out, size, &produced);
			break;
		case ALG_842:
			status = self->api->sw842_decompress(src, len, out, size, &produced);
			break;
		case ALG_PYTHON:
			break;
		}
		Py_END_ALLOW_THREADS
		return decoded_length(name, status, produced, size);
	}
	result = PyObject_CallMethod(self->compressor, "decompress", "y#n", (const char *)src,
				     (Py_ssize_t)len, (Py_ssize_t)size);
	if (!result)
		return -1;
	if (!PyObject_GetBuffer(result, &view, PyBUF_SIMPLE)) {
		if ((size_t)view.len == size) {
			memcpy(out, view.buf, size);
			status = 0;
		} else {
			PyErr_Format(PyExc_ValueError, "decompress gave %zd bytes, not %zu",
				     view.len, size);
		}
		PyBuffer_Release(&view);
	}
	Py_DECREF(result);
	return status;
}

/* -- the Python type --------------------------------------------------------------- */

static PyObject *or_none(PyObject *obj)
{
	return obj ? obj : Py_None;
}

static int ready(CacheObject *self)
{
	if (self->compressor)
		return 1;
	PyErr_SetString(PyExc_ValueError, "the CompressionCache's __init__ has not run");
	return 0;
}

/* compress(page, key=None, ahead=None) */
static PyObject *cc_compress(CacheObject *self, PyObject *args, PyObject *kwargs)
{
	static char *keywords[] = { "page", "key", "ahead", NULL };
	PyObject *page, *key = Py_None, *ahead = Py_None, *data;
	Py_buffer view;

	if (!ready(self) || !PyArg_ParseTupleAndKeywords(args, kwargs, "O|OO", keywords, &page,
							 &key, &ahead) ||
	    PyObject_GetBuffer(page, &view, PyBUF_SIMPLE))
		return NULL;
	data = cache_compress((PyObject *)self, page, view.buf, (size_t)view.len, key, ahead);
	PyBuffer_Release(&view);
	return data;
}

PyObject *cache_cached(PyObject *cache, PyObject *key)
{
	CacheObject *self = (CacheObject *)cache;
	struct cache_entry *entry;

	if (!PyBytes_Check(key))
		return NULL;		/* no such key is ever cached */
	entry = find(self, key, key_hash(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key)));
	return entry ? entry->data : NULL;
}

PyObject *cache_page_key(PyObject *cache, PyObject *page)
{
	return PyObject_CallOneArg(((CacheObject *)cache)->page_key, page);
}

static PyObject *cc_cached(CacheObject *self, PyObject *key)
{
	if (!ready(self))
		return NULL;
	return Py_NewRef(or_none(cache_cached((PyObject *)self, key)));
}

/* decompress(data, size=PAGE_SIZE) */
static PyObject *cc_decompress(CacheObject *self, PyObject *args, PyObject *kwargs)
{
	static char *keywords[] = { "data", "size", NULL };
	Py_ssize_t size = PAGE_SIZE;
	Py_buffer data;
	PyObject *out;

	if (!ready(self) || !PyArg_ParseTupleAndKeywords(args, kwargs, "y*|n", keywords, &data,
							 &size))
		return NULL;
	if (size < 0) {
		PyBuffer_Release(&data);
		return PyErr_Format(PyExc_ValueError, "size %zd < 0", size);
	}
	out = PyBytes_FromStringAndSize(NULL, size);
	if (out && cache_decompress((PyObject *)self, data.buf, (size_t)data.len,
				    (uint8_t *)PyBytes_AS_STRING(out), (size_t)size))
		Py_CLEAR(out);
	PyBuffer_Release(&data);
	return out;
}

/* native_codec: None, or (algorithm name, dlen, level) of a _kcompress compressor */
static int parse_codec(CacheObject *self, PyObject *codec)
{
	const char *name;
	size_t i;

	self->algorithm = ALG_PYTHON;
	if (codec == Py_None)
		return 0;
	if (!PyArg_ParseTuple(codec, "sni", &name, &self->dlen, &self->level))
		return -1;
	for (i = 0; i < sizeof(kernel_algorithms) / sizeof(kernel_algorithms[0]); i++)
		if (!strcmp(name, kernel_algorithms[i].name))
			self->algorithm = kernel_algorithms[i].algorithm;
	if (self->algorithm == ALG_PYTHON) {
		PyErr_Format(PyExc_ValueError, "no compiled compressor %s", name);
		return -1;
	}
	if (self->dlen < 0 || self->dlen >= PY_SSIZE_T_MAX / 2 ||
	    (self->algorithm == ALG_LZ4 &&
	     (self->level < 1 || self->level > KC_LZ4_MAX_ACCELERATION))) {
		PyErr_Format(PyExc_ValueError, "%s: dlen %zd or level %d out of range", name,
			     self->dlen, self->level);
		self->algorithm = ALG_PYTHON;
		return -1;
	}
	self->api = PyCapsule_Import(KC_CAPSULE, 0);
	if (!self->api) {
		self->algorithm = ALG_PYTHON;
		return -1;
	}
	return 0;
}

/* CompressionCache(compressor, budget_bytes, page_key, codec) */
static int cc_init(CacheObject *self, PyObject *args, PyObject *kwargs)
{
	static char *keywords[] = { "compressor", "budget_bytes", "page_key", "codec", NULL };
	PyObject *compressor, *page_key, *codec;
	long long budget;

	if (self->compressor) {
		PyErr_SetString(PyExc_TypeError, "a CompressionCache is initialised once");
		return -1;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OLOO", keywords, &compressor, &budget,
					 &page_key, &codec) ||
	    parse_codec(self, codec))
		return -1;
	link_init(&self->lru);
	self->budget_bytes = budget;
	self->compressor = Py_NewRef(compressor);
	self->page_key = Py_NewRef(page_key);
	return 0;
}

static int cc_traverse(CacheObject *self, visitproc visit, void *arg)
{
	Py_VISIT(self->compressor);
	Py_VISIT(self->page_key);
	return 0;
}

static int cc_clear(CacheObject *self)
{
	if (self->compressor)
		clear_entries(self);
	Py_CLEAR(self->compressor);
	Py_CLEAR(self->page_key);
	return 0;
}

static void cc_dealloc(CacheObject *self)
{
	PyObject_GC_UnTrack(self);
	cc_clear(self);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *get_compressor(CacheObject *self, void *unused)
{
	(void)unused;
	return Py_NewRef(self->compressor ? self->compressor : Py_None);
}

static PyMemberDef cc_members[] = {
	{ "budget_bytes", T_LONGLONG, offsetof(CacheObject, budget_bytes), READONLY, NULL },
	{ "cached_bytes", T_LONGLONG, offsetof(CacheObject, cached_bytes), READONLY, NULL },
	{ "hits", T_ULONGLONG, offsetof(CacheObject, hits), READONLY, NULL },
	{ "misses", T_ULONGLONG, offsetof(CacheObject, misses), READONLY, NULL },
	{ NULL, 0, 0, 0, NULL },
};

static PyGetSetDef cc_getset[] = {
	{ "compressor", (getter)get_compressor, NULL, "the compressor it caches", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyMethodDef cc_methods[] = {
	{ "compress", (PyCFunction)(void (*)(void))cc_compress, METH_VARARGS | METH_KEYWORDS,
	  "compress(page, key=None, ahead=None): the page's compressed bytes" },
	{ "cached", (PyCFunction)cc_cached, METH_O, "the cached result of a key, or None" },
	{ "decompress", (PyCFunction)(void (*)(void))cc_decompress,
	  METH_VARARGS | METH_KEYWORDS, "decompress(data, size=PAGE_SIZE)" },
	{ NULL, NULL, 0, NULL },
};

PyTypeObject CompressionCacheType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zswapsim._engine.CompressionCache",
	.tp_doc = "compression_cache.c: see compress.py's NativeCompressionCache",
	.tp_basicsize = sizeof(CacheObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_traverse = (traverseproc)cc_traverse,
	.tp_clear = (inquiry)cc_clear,
	.tp_dealloc = (destructor)cc_dealloc,
	.tp_methods = cc_methods,
	.tp_members = cc_members,
	.tp_getset = cc_getset,
	.tp_init = (initproc)cc_init,
	.tp_new = PyType_GenericNew,
};

int compression_cache_module_add(PyObject *module)
{
	if (PyType_Ready(&CompressionCacheType))
		return -1;
	return PyModule_AddObjectRef(module, "CompressionCache",
				     (PyObject *)&CompressionCacheType);
}
