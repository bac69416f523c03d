/*
 * module.c - zswapsim._engine: the compiled allocators (zbud.c, zsmalloc.c,
 * z3fold.c, xvmalloc.c, zcache_zbud.c) exposed to Python one call at a
 * time, each through its driver table (engine.h), with the API of the
 * Python pools in zswapsim/zpool/ (zswapsim/zpool/native.py puts the last
 * touches on it).
 *
 * Frames: a pool takes each new page from its Python Memory (alloc_page,
 * free_page), so pfns, budgets and injected faults are the Memory's own, call
 * for call, and the bytes it stores live in the Memory's frames: the pool
 * keeps a buffer of memory.frames[pfn] for every pfn it has held (the frame
 * arena of this path), so stale bytes, and frames shared with zswap's swap
 * cache, are the Python pools' too.  A failing alloc_page raises its own
 * exception out of malloc; the pool is left as the Python pool leaves it.
 *
 * The evict callback is called as evict(pool, handle) and must return an
 * int; an exception it raises propagates out of reclaim_page, leaving the
 * page under reclaim exactly as the Python pool does.  Status codes become
 * the Python pools' exceptions, in their words.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>

#include "engine.h"
#include "z3fold.h"
#include "zbud.h"
#include "zsmalloc.h"
#include "xvmalloc.h"
#include "zcache_zbud.h"

int zswap_module_add(PyObject *module);	/* zswap_module.c: the Zswap type */
int zram_module_add(PyObject *module);	/* zram_module.c: the Zram type */

static PyObject *Invalid, *NoSpace, *NoMemory, *PoolCorrupted, *ConfigError;

/* A frame the pool has held: the memoryview memory.frames[pfn] and its bytes. */
struct frame_slot {
	PyObject *view;
	Py_buffer buf;
};

typedef struct {
	PyObject_HEAD
	PyObject *memory;
	PyObject *evict;
	struct frame_slot *frames;	/* by pfn; view NULL where never held */
	uint32_t frames_cap;
	const struct pool_binding *binding;
	void *impl;			/* the driver's pool */
	struct zpool_common *common;
} PoolObject;

/* What this file adds to an allocator's driver for its Python type. */
struct pool_binding {
	const struct zpool_driver *driver;
	bool hex_handles;		/* errors name handles in hex (zbud's are addresses) */
	const char *not_in_pool;	/* what ZE_NOT_IN_POOL says of the handle */
	/* NULL with the exception of malloc's -EINVAL or -ENOSPC, or of an -ENOMEM the
	 * allocator returns of its own (no Memory error pending), in the Python pool's words */
	PyObject *(*malloc_error)(PoolObject *self, PyObject *size, int status);
	/* the held pages' pfns, ascending (the page pools') */
	uint64_t (*pfns)(const void *pool, uint32_t *out, uint64_t cap);
	/* _reclaim_order's value: `lru` (stolen) and the lists after it in `order` */
	PyObject *(*order_value)(PoolObject *self, PyObject *lru, const struct order *order,
				 size_t *pos);
};

static const struct pool_binding zbud_binding, zsmalloc_binding, z3fold_binding,
	xvmalloc_binding, zcache_zbud_binding;

/* -- the frame source and the evict callback --------------------------------- */

static int frame_alloc(void *ctx, uint32_t *pfn_out, uint8_t **bytes)
{
	PoolObject *self = ctx;
	PyObject *result = PyObject_CallMethod(self->memory, "alloc_page", NULL);
	long long pfn;

	if (!result)
		return -ENOMEM;		/* the Memory's NoMemory, or whatever it raised */
	pfn = PyLong_AsLongLong(result);
	Py_DECREF(result);
	if (pfn == -1 && PyErr_Occurred())
		return ZE_CALLBACK;
	if (pfn < 0 || pfn > INT32_MAX) {
		PyErr_Format(PyExc_RuntimeError, "alloc_page returned pfn %lld", pfn);
		return ZE_CALLBACK;
	}
	if ((uint32_t)pfn >= self->frames_cap) {
		uint32_t cap = self->frames_cap ? self->frames_cap : 64;
		struct frame_slot *grown;

		while (cap <= (uint32_t)pfn)
			cap *= 2;
		grown = PyMem_Realloc(self->frames, cap * sizeof(*grown));
		if (!grown)
			goto no_memory;
		memset(grown + self->frames_cap, 0, (cap - self->frames_cap) * sizeof(*grown));
		self->frames = grown;
		self->frames_cap = cap;
	}
	if (!self->frames[pfn].view) {
		struct frame_slot *slot = &self->frames[pfn];
		PyObject *frames = PyObject_GetAttrString(self->memory, "frames");
		PyObject *view = frames ? PySequence_GetItem(frames, (Py_ssize_t)pfn) : NULL;

		Py_XDECREF(frames);
		if (!view)
			goto failed;
		if (PyObject_GetBuffer(view, &slot->buf, PyBUF_WRITABLE)) {
			Py_DECREF(view);
			goto failed;
		}
		if (slot->buf.len != PAGE_SIZE) {
			PyBuffer_Release(&slot->buf);
			Py_DECREF(view);
			PyErr_Format(PyExc_RuntimeError, "frame %lld is not %u bytes", pfn, PAGE_SIZE);
			goto failed;
		}
		slot->view = view;
	}
	*pfn_out = (uint32_t)pfn;
	*bytes = self->frames[pfn].buf.buf;
	return 0;
no_memory:
	PyErr_NoMemory();
failed:
	{	/* give the frame back, keeping the error */
		PyObject *type, *value, *traceback, *ret;

		PyErr_Fetch(&type, &value, &traceback);
		ret = PyObject_CallMethod(self->memory, "free_page", "L", pfn);
		Py_XDECREF(ret);
		PyErr_Clear();
		PyErr_Restore(type, value, traceback);
	}
	return ZE_CALLBACK;
}

static void frame_free(void *ctx, uint32_t pfn)
{
	PoolObject *self = ctx;
	PyObject *type, *value, *traceback, *ret;

	PyErr_Fetch(&type, &value, &traceback);	/* a malloc may be unwinding */
	ret = PyObject_CallMethod(self->memory, "free_page", "I", pfn);
	if (ret)
		Py_DECREF(ret);
	else
		PyErr_WriteUnraisable(self->memory);
	PyErr_Restore(type, value, traceback);
}

static int call_evict(void *ctx, uint64_t handle, int *ret)
{
	PoolObject *self = ctx;
	PyObject *result;
	long value;

	if (!self->evict) {
		PyErr_SetString(PyExc_RuntimeError, "the pool's evict callback was cleared");
		return ZE_CALLBACK;
	}
	result = PyObject_CallFunction(self->evict, "OK", (PyObject *)self,
				       (unsigned long long)handle);
	if (!result)
		return ZE_CALLBACK;
	value = PyLong_AsLong(result);
	Py_DECREF(result);
	if (value == -1 && PyErr_Occurred())
		return ZE_CALLBACK;
	if (value < INT_MIN || value > INT_MAX) {
		PyErr_Format(PyExc_OverflowError, "evict returned %ld, not 0 or -errno", value);
		return ZE_CALLBACK;
	}
	*ret = (int)value;
	return 0;
}

/* -- arguments and errors ----------------------------------------------------- */

static const char *pool_name(const PoolObject *self)
{
	return self->binding->driver->name;
}

static int ready(PoolObject *self)
{
	if (self->impl)
		return 1;
	PyErr_SetString(PyExc_ValueError, "the pool's __init__ has not run");
	return 0;
}

/* A Python int as a handle: 1, 0 for an int no handle can be (negative or
 * too large), -1 with TypeError for anything else. */
static int parse_handle(PyObject *obj, uint64_t *handle)
{
	if (!PyLong_Check(obj)) {
		PyErr_Format(PyExc_TypeError, "a handle is an int, not %s", Py_TYPE(obj)->tp_name);
		return -1;
	}
	*handle = PyLong_AsUnsignedLongLong(obj);
	if (*handle == (uint64_t)-1 && PyErr_Occurred()) {
		PyErr_Clear();
		return 0;
	}
	return 1;
}

/* A Python int as a size or count, clamped to long long (the checks only compare). */
static int parse_count(PyObject *obj, const char *what, long long *value)
{
	int overflow;

	if (!PyLong_Check(obj)) {
		PyErr_Format(PyExc_TypeError, "%s is an int, not %s", what, Py_TYPE(obj)->tp_name);
		return -1;
	}
	*value = PyLong_AsLongLongAndOverflow(obj, &overflow);
	if (overflow)
		*value = overflow > 0 ? LLONG_MAX : LLONG_MIN;
	return *value == -1 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *not_in_pool(PoolObject *self, PyObject *handle, int status)
{
	PyObject *text = self->binding->hex_handles ? PyNumber_ToBase(handle, 16) : PyObject_Str(handle);

	if (!text)
		return NULL;
	if (status == ZE_NO_LIVE_BUDDY)
		PyErr_Format(Invalid, "handle %U names no live buddy", text);
	else
		PyErr_Format(Invalid, "handle %U %s", text, self->binding->not_in_pool);
	Py_DECREF(text);
	return NULL;
}

/* NULL with the exception a status stands for; `handle` for the handle errors. */
static PyObject *fail(PoolObject *self, int status, PyObject *handle)
{
	switch (status) {
	case ZE_CALLBACK:
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_SystemError, "a callback failed without an error");
		return NULL;
	case -ENOMEM:
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_SystemError, "ENOMEM without the Memory's error");
		return NULL;
	case ZE_OOM:
		return PyErr_NoMemory();
	case ZE_NOT_IN_POOL:
	case ZE_NO_LIVE_BUDDY:
		return not_in_pool(self, handle, status);
	case ZE_CORRUPTED:
		PyErr_Format(PoolCorrupted, "%s pool: %s", pool_name(self), self->common->message);
		return NULL;
	default:
		PyErr_Format(PyExc_SystemError, "%s pool: status %d", pool_name(self), status);
		return NULL;
	}
}

/* -- construction ----------------------------------------------------------------- */

/* 0 once the pool of `binding` is made with `options`, else -1 with an error. */
static int pool_setup(PoolObject *self, const struct pool_binding *binding, PyObject *memory,
		      PyObject *evict, const struct zpool_options *options)
{
	struct frame_source src = { frame_alloc, frame_free, call_evict, self };

	if (self->impl) {
		PyErr_SetString(PyExc_TypeError, "a pool is initialised once");
		return -1;
	}
	Py_INCREF(memory);
	self->memory = memory;
	if (evict != Py_None) {
		Py_INCREF(evict);
		self->evict = evict;
	}
	self->binding = binding;
	self->impl = binding->driver->create(&src, self->evict != NULL, options);
	if (!self->impl) {
		PyErr_NoMemory();
		return -1;
	}
	self->common = binding->driver->common(self->impl);
	return 0;
}

/* __init__(memory, evict=None) of a pool that takes no options */
static int init_without_options(PoolObject *self, PyObject *args, PyObject *kwargs,
				const struct pool_binding *binding)
{
	static char *keywords[] = { "memory", "evict", NULL };
	PyObject *memory, *evict = Py_None;
	struct zpool_options options = { 0 };

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O", keywords, &memory, &evict))
		return -1;
	return pool_setup(self, binding, memory, evict, &options);
}

static int zbud_init(PoolObject *self, PyObject *args, PyObject *kwargs)
{
	return init_without_options(self, args, kwargs, &zbud_binding);
}

static int xvmalloc_init(PoolObject *self, PyObject *args, PyObject *kwargs)
{
	return init_without_options(self, args, kwargs, &xvmalloc_binding);
}

static int z3fold_init(PoolObject *self, PyObject *args, PyObject *kwargs)
{
	static char *keywords[] = { "memory", "evict", NULL };
	PyObject *memory, *evict = Py_None;
	struct zpool_options options = { 0 };

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O", keywords, &memory, &evict))
		return -1;
	return pool_setup(self, &z3fold_binding, memory, evict, &options);
}

static int zsmalloc_init(PoolObject *self, PyObject *args, PyObject *kwargs)
{
	static char *keywords[] = { "memory", "evict", "chain_size", NULL };
	PyObject *memory, *evict = Py_None, *chain = NULL;
	struct zpool_options options = { 0 };
	long chain_size = 4;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OO", keywords, &memory, &evict, &chain))
		return -1;
	if (chain) {
		int overflow = 0;

		chain_size = PyLong_Check(chain) && !PyBool_Check(chain)
			? PyLong_AsLongAndOverflow(chain, &overflow) : -1;
		if (overflow || chain_size < ZS_CHAIN_MIN || chain_size > ZS_CHAIN_MAX) {
			PyErr_Clear();
			PyErr_Format(ConfigError, "zsmalloc chain_size %R is outside %d..%d", chain,
				     ZS_CHAIN_MIN, ZS_CHAIN_MAX);
			return -1;
		}
	}
	options.chain_size = (uint32_t)chain_size;
	return pool_setup(self, &zsmalloc_binding, memory, evict, &options);
}

static int zcache_zbud_init(PoolObject *self, PyObject *args, PyObject *kwargs)
{
	static char *keywords[] = { "memory", "evict", "key_in_handle", NULL };
	PyObject *memory, *evict = Py_None, *key = NULL;
	struct zpool_options options = { 0 };
	long key_in_handle = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OO", keywords, &memory, &evict, &key))
		return -1;
	if (key) {
		int overflow = 0;

		key_in_handle = PyLong_Check(key) && !PyBool_Check(key)
			? PyLong_AsLongAndOverflow(key, &overflow) : -1;
		if (overflow || key_in_handle < 0 || key_in_handle > ZCACHE_TMEM_HANDLE_SIZE) {
			PyErr_Clear();
			PyErr_Format(ConfigError, "zcache-zbud key_in_handle %R is outside 0..%d", key,
				     ZCACHE_TMEM_HANDLE_SIZE);
			return -1;
		}
	}
	options.key_in_handle = (uint32_t)key_in_handle;
	return pool_setup(self, &zcache_zbud_binding, memory, evict, &options);
}

static int pool_traverse(PoolObject *self, visitproc visit, void *arg)
{
	uint32_t pfn;

	Py_VISIT(self->memory);
	Py_VISIT(self->evict);
	for (pfn = 0; pfn < self->frames_cap; pfn++)
		Py_VISIT(self->frames[pfn].view);
	return 0;
}

static int pool_clear(PoolObject *self)
{
	if (self->common)
		self->common->has_evict = false;
	Py_CLEAR(self->evict);
	return 0;
}

static void pool_dealloc(PoolObject *self)
{
	uint32_t pfn;

	PyObject_GC_UnTrack(self);
	if (self->impl)
		self->binding->driver->destroy(self->impl);
	for (pfn = 0; pfn < self->frames_cap; pfn++)
		if (self->frames[pfn].view) {
			PyBuffer_Release(&self->frames[pfn].buf);
			Py_DECREF(self->frames[pfn].view);
		}
	PyMem_Free(self->frames);
	Py_CLEAR(self->memory);
	Py_CLEAR(self->evict);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

/* -- the zpool API ---------------------------------------------------------------- */

/* A new handle from `alloc` (the driver's malloc, or a variant of it) */
static PyObject *allocate(PoolObject *self, PyObject *size_obj,
			  int (*alloc)(void *, long long, uint64_t *))
{
	long long size;
	uint64_t handle;
	int status;

	if (!ready(self) || parse_count(size_obj, "a size", &size))
		return NULL;
	status = alloc(self->impl, size, &handle);
	if (status == -EINVAL || status == -ENOSPC || (status == -ENOMEM && !PyErr_Occurred()))
		return self->binding->malloc_error(self, size_obj, status);
	if (status)
		return fail(self, status, NULL);
	return PyLong_FromUnsignedLongLong(handle);
}

static PyObject *pool_malloc(PoolObject *self, PyObject *size_obj)
{
	return ready(self) ? allocate(self, size_obj, self->binding->driver->malloc) : NULL;
}

static PyObject *pool_free(PoolObject *self, PyObject *handle_obj)
{
	uint64_t handle;
	int status, known;

	if (!ready(self) || (known = parse_handle(handle_obj, &handle)) < 0)
		return NULL;
	if (!known)
		return not_in_pool(self, handle_obj, ZE_NOT_IN_POOL);
	status = self->binding->driver->free(self->impl, handle);
	if (status)
		return fail(self, status, handle_obj);
	Py_RETURN_NONE;
}

static int object_span(PoolObject *self, PyObject *handle_obj, struct zpool_span *span)
{
	uint64_t handle;
	int status, known;

	if (!ready(self) || (known = parse_handle(handle_obj, &handle)) < 0)
		return -1;
	if (!known) {
		not_in_pool(self, handle_obj, ZE_NOT_IN_POOL);
		return -1;
	}
	status = self->binding->driver->span(self->impl, handle, span);
	if (status) {
		fail(self, status, handle_obj);
		return -1;
	}
	return 0;
}

static PyObject *pool_write(PoolObject *self, PyObject *args)
{
	PyObject *handle_obj;
	Py_buffer data;
	struct zpool_span span;
	size_t n, first;

	if (!PyArg_ParseTuple(args, "Oy*:write", &handle_obj, &data))
		return NULL;
	if (object_span(self, handle_obj, &span)) {
		PyBuffer_Release(&data);
		return NULL;
	}
	n = (size_t)data.len;
	if (n > span.size) {
		PyErr_Format(Invalid, "write of %zd bytes into a %u-byte object", data.len,
			     span.size);
		PyBuffer_Release(&data);
		return NULL;
	}
	first = span.next && n > PAGE_SIZE - span.offset ? PAGE_SIZE - span.offset : n;
	memcpy(span.frame + span.offset, data.buf, first);
	if (first < n)
		memcpy(span.next, (const uint8_t *)data.buf + first, n - first);
	PyBuffer_Release(&data);
	Py_RETURN_NONE;
}

static PyObject *copy_out(const struct zpool_span *span)
{
	PyObject *out = PyBytes_FromStringAndSize(NULL, span->size);
	uint32_t first = span->next ? PAGE_SIZE - span->offset : span->size;
	char *dst;

	if (!out)
		return NULL;
	dst = PyBytes_AS_STRING(out);
	memcpy(dst, span->frame + span->offset, first);
	if (first < span->size)
		memcpy(dst + first, span->next, span->size - first);
	return out;
}

static PyObject *pool_read(PoolObject *self, PyObject *handle_obj)
{
	struct zpool_span span;

	return object_span(self, handle_obj, &span) ? NULL : copy_out(&span);
}

/* A view into the frame, as the Python pools give; a copy of an object
 * that straddles two pages, as zs_map_object copies one out. */
static PyObject *pool_map(PoolObject *self, PyObject *handle_obj)
{
	struct zpool_span span;

	if (object_span(self, handle_obj, &span))
		return NULL;
	if (span.next)
		return copy_out(&span);
	return PySequence_GetSlice(self->frames[span.pfn].view, span.offset,
				   (Py_ssize_t)span.offset + span.size);
}

static PyObject *pool_reclaim_page(PoolObject *self, PyObject *retries_obj)
{
	long long retries;
	int result, status;

	if (!ready(self) || parse_count(retries_obj, "retries", &retries))
		return NULL;
	if (retries == LLONG_MAX || retries == LLONG_MIN)
		return PyErr_Format(PyExc_OverflowError, "retries %S is beyond 64 bits",
				    retries_obj);
	status = self->binding->driver->reclaim_page(self->impl, retries, &result);
	if (status)
		return fail(self, status, NULL);
	return PyLong_FromLong(result);
}

static PyObject *pool_total_pages(PoolObject *self, PyObject *unused)
{
	(void)unused;
	if (!ready(self))
		return NULL;
	return PyLong_FromUnsignedLongLong(self->binding->driver->total_pages(self->impl));
}

static PyObject *pool_total_size(PoolObject *self, PyObject *unused)
{
	(void)unused;
	if (!ready(self))
		return NULL;
	return PyLong_FromUnsignedLongLong(PAGE_SIZE *
					   self->binding->driver->total_pages(self->impl));
}

static PyObject *pool_unchanged(PoolObject *self, PyObject *ret)
{
	long value;

	if (!ready(self))
		return NULL;
	value = PyLong_AsLong(ret);
	if (value == -1 && PyErr_Occurred())
		return NULL;
	if (value < INT_MIN || value > INT_MAX)
		return PyErr_Format(PyExc_OverflowError, "unchanged(%ld): not -errno", value);
	self->common->unchanged_result = (int)value;
	Py_INCREF(ret);
	return ret;
}

/* The pool's own audit; native.py adds the Memory's side. */
static PyObject *pool_check(PoolObject *self, PyObject *unused)
{
	int status;

	(void)unused;
	if (!ready(self))
		return NULL;
	status = self->binding->driver->check(self->impl);
	if (status)
		return fail(self, status, NULL);
	Py_RETURN_NONE;
}

/* -- _reclaim_order: the Python models' value, built from the flat snapshot -- */

/* The words up to the next separator, as a tuple of ints. */
static PyObject *take_run(const struct order *order, size_t *pos)
{
	size_t start = *pos, i;
	PyObject *run;

	while (*pos < order->len && order->words[*pos] != UINT64_MAX)
		(*pos)++;
	run = PyTuple_New((Py_ssize_t)(*pos - start));
	for (i = start; run && i < *pos; i++) {
		PyObject *item = PyLong_FromUnsignedLongLong(order->words[i]);

		if (!item) {
			Py_CLEAR(run);
			break;
		}
		PyTuple_SET_ITEM(run, (Py_ssize_t)(i - start), item);
	}
	(*pos)++;			/* the separator */
	return run;
}

static PyObject *take_runs(const struct order *order, size_t *pos, Py_ssize_t n)
{
	PyObject *runs = PyTuple_New(n);
	Py_ssize_t i;

	for (i = 0; runs && i < n; i++) {
		PyObject *run = take_run(order, pos);

		if (!run)
			Py_CLEAR(runs);
		else
			PyTuple_SET_ITEM(runs, i, run);
	}
	return runs;
}

static Py_ssize_t distinct_classes(PoolObject *self)
{
	struct zs_class_stats row;
	Py_ssize_t n = 0;
	uint32_t index;

	for (index = 0; index < ZS_NR_CLASSES; index++)
		n += zs_class_stats(self->impl, index, &row);
	return n;
}

static PyObject *pool_reclaim_order(PoolObject *self, PyObject *unused)
{
	struct order order = { 0 };
	PyObject *lru, *result;
	size_t pos = 0;
	int status;

	(void)unused;
	if (!ready(self))
		return NULL;
	status = self->binding->driver->order(self->impl, &order);
	if (status) {
		order_release(&order);
		return fail(self, status, NULL);
	}
	lru = take_run(&order, &pos);
	result = lru ? self->binding->order_value(self, lru, &order, &pos) : NULL;
	order_release(&order);
	return result;
}

/* -- counters ---------------------------------------------------------------------- */

static PyObject *get_memory(PoolObject *self, void *unused)
{
	(void)unused;
	return Py_NewRef(self->memory ? self->memory : Py_None);
}

static PyObject *get_evict(PoolObject *self, void *unused)
{
	(void)unused;
	return Py_NewRef(self->evict ? self->evict : Py_None);
}

static int set_evict(PoolObject *self, PyObject *evict, void *unused)
{
	(void)unused;
	if (!evict) {
		PyErr_SetString(PyExc_AttributeError, "evict cannot be deleted; set it to None");
		return -1;
	}
	if (!ready(self))
		return -1;
	Py_CLEAR(self->evict);
	if (evict != Py_None)
		self->evict = Py_NewRef(evict);
	self->common->has_evict = self->evict != NULL;
	return 0;
}

#define COUNTER(field)								\
static PyObject *get_##field(PoolObject *self, void *unused)			\
{										\
	(void)unused;								\
	if (!ready(self))							\
		return NULL;							\
	return PyLong_FromUnsignedLongLong(self->common->field);		\
}
COUNTER(reclaim_calls)
COUNTER(reclaim_pages_scanned)
COUNTER(evict_calls)

static PyObject *get_unchanged_result(PoolObject *self, void *unused)
{
	(void)unused;
	if (!ready(self))
		return NULL;
	return PyLong_FromLong(self->common->unchanged_result);
}

static PyObject *get_evict_results(PoolObject *self, void *unused)
{
	PyObject *results;
	size_t i;

	(void)unused;
	if (!ready(self) || !(results = PyDict_New()))
		return NULL;
	for (i = 0; i < self->common->nresults; i++) {
		PyObject *key = PyLong_FromLong(self->common->results[i].ret);
		PyObject *count = PyLong_FromUnsignedLongLong(self->common->results[i].count);
		int failed = !key || !count || PyDict_SetItem(results, key, count);

		Py_XDECREF(key);
		Py_XDECREF(count);
		if (failed) {
			Py_DECREF(results);
			return NULL;
		}
	}
	return results;
}

static PyGetSetDef pool_getset[] = {
	{ "memory", (getter)get_memory, NULL, "the Memory the frames come from", NULL },
	{ "evict", (getter)get_evict, (setter)set_evict, "the owner's evict callback, or None", NULL },
	{ "reclaim_calls", (getter)get_reclaim_calls, NULL, NULL, NULL },
	{ "reclaim_pages_scanned", (getter)get_reclaim_pages_scanned, NULL, NULL, NULL },
	{ "evict_calls", (getter)get_evict_calls, NULL, NULL, NULL },
	{ "evict_results", (getter)get_evict_results, NULL, "evict results by value", NULL },
	{ "unchanged_result", (getter)get_unchanged_result, NULL, NULL, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

#define POOL_METHODS								\
	{ "malloc", (PyCFunction)pool_malloc, METH_O, NULL },			\
	{ "free", (PyCFunction)pool_free, METH_O, NULL },			\
	{ "write", (PyCFunction)pool_write, METH_VARARGS, NULL },		\
	{ "read", (PyCFunction)pool_read, METH_O, NULL },			\
	{ "map", (PyCFunction)pool_map, METH_O, NULL },				\
	{ "reclaim_page", (PyCFunction)pool_reclaim_page, METH_O, NULL },	\
	{ "total_pages", (PyCFunction)pool_total_pages, METH_NOARGS, NULL },	\
	{ "total_size", (PyCFunction)pool_total_size, METH_NOARGS, NULL },	\
	{ "unchanged", (PyCFunction)pool_unchanged, METH_O, NULL },		\
	{ "_check", (PyCFunction)pool_check, METH_NOARGS, NULL },		\
	{ "_reclaim_order", (PyCFunction)pool_reclaim_order, METH_NOARGS, NULL }

/* -- what the page pools share ------------------------------------------------------ */

/* n pfns as a Python list; `pfns` is freed. */
static PyObject *pfns_to_list(uint32_t *pfns, uint64_t n)
{
	PyObject *result = PyList_New((Py_ssize_t)n);
	uint64_t i;

	for (i = 0; result && i < n; i++) {
		PyObject *item = PyLong_FromUnsignedLong(pfns[i]);

		if (!item) {
			Py_CLEAR(result);
			break;
		}
		PyList_SET_ITEM(result, (Py_ssize_t)i, item);
	}
	PyMem_Free(pfns);
	return result;
}

/* The pfns an allocator's `list` gives (ascending), as a Python list. */
static PyObject *pfn_list(PoolObject *self, uint64_t (*list)(const void *, uint32_t *, uint64_t))
{
	uint32_t *pfns;
	uint64_t n;

	if (!ready(self))
		return NULL;
	n = list(self->impl, NULL, 0);
	pfns = PyMem_Malloc((n ? n : 1) * sizeof(*pfns));
	if (!pfns)
		return PyErr_NoMemory();
	list(self->impl, pfns, n);
	return pfns_to_list(pfns, n);
}

/* The held pages, by pfn, for the Memory's side of check() (native.py). */
static PyObject *pool_pfn_list(PoolObject *self, PyObject *unused)
{
	(void)unused;
	return pfn_list(self, self->binding->pfns);
}

/* -- zbud's extras ------------------------------------------------------------------ */

static PyObject *zbud_malloc_error(PoolObject *self, PyObject *size, int status)
{
	(void)self;
	if (status == -EINVAL)
		return PyErr_Format(Invalid, "zbud_alloc of size 0");
	return PyErr_Format(NoSpace, "zbud_alloc of %S bytes > %u", size, PAGE_SIZE - 128);
}

/* (lru, buddied, (unbuddied mask, unbuddied lists)) */
static PyObject *zbud_order_value(PoolObject *self, PyObject *lru, const struct order *order,
				  size_t *pos)
{
	PyObject *buddied = take_run(order, pos), *lists = NULL;
	uint64_t mask = 0;

	(void)self;
	if (buddied) {
		mask = order->words[(*pos)++];
		lists = take_runs(order, pos, PAGE_SIZE / 64 - 1);
	}
	if (!lists) {
		Py_XDECREF(buddied);
		Py_DECREF(lru);
		return NULL;
	}
	return Py_BuildValue("(NN(KN))", lru, buddied, (unsigned long long)mask, lists);
}

static const struct pool_binding zbud_binding = {
	.driver = &zbud_driver,
	.hex_handles = true,
	.not_in_pool = "is not in this pool",
	.pfns = zbud_pfns,
	.malloc_error = zbud_malloc_error,
	.order_value = zbud_order_value,
};

static PyMethodDef zbud_methods[] = {
	POOL_METHODS,
	{ "_pfns", (PyCFunction)pool_pfn_list, METH_NOARGS, "the held pages, by pfn" },
	{ NULL, NULL, 0, NULL },
};

/* -- z3fold's extras ---------------------------------------------------------------- */

/* (pfn, buddy name, byte offset in the frame) of a live object */
static PyObject *z3fold_locate_method(PoolObject *self, PyObject *handle_obj)
{
	uint32_t pfn, offset, size;
	const char *buddy;
	uint8_t *frame;
	uint64_t handle;
	int status, known;

	if (!ready(self) || (known = parse_handle(handle_obj, &handle)) < 0)
		return NULL;
	status = known ? z3fold_locate(self->impl, handle, &pfn, &buddy, &frame, &offset, &size)
		: ZE_NOT_IN_POOL;
	if (status)
		return fail(self, status, handle_obj);
	return Py_BuildValue("(IsI)", pfn, buddy, offset);
}

/* A page's header fields; free_chunks is None for a headless page; KeyError
 * for a page the pool does not hold, as z3fold.py's pages[pfn]. */
static PyObject *z3fold_layout_method(PoolObject *self, PyObject *pfn_obj)
{
	struct z3fold_layout layout;
	unsigned long long pfn;

	if (!ready(self))
		return NULL;
	if (!PyLong_Check(pfn_obj))
		return PyErr_Format(PyExc_TypeError, "a pfn is an int, not %s",
				    Py_TYPE(pfn_obj)->tp_name);
	pfn = PyLong_AsUnsignedLongLong(pfn_obj);
	if (pfn == (unsigned long long)-1 && PyErr_Occurred())
		PyErr_Clear();
	else if (!z3fold_page_layout(self->impl, pfn, &layout))
		return Py_BuildValue("{sNsIsIsIsIsIsN}", "headless", PyBool_FromLong(layout.headless),
				     "first", layout.first, "middle", layout.middle,
				     "start_middle", layout.start_middle, "last", layout.last,
				     "foreign_handles", layout.foreign_handles, "free_chunks",
				     layout.headless ? Py_NewRef(Py_None)
				     : PyLong_FromUnsignedLong(layout.free_chunks));
	PyErr_SetObject(PyExc_KeyError, pfn_obj);
	return NULL;
}

static PyObject *z3fold_malloc_error(PoolObject *self, PyObject *size, int status)
{
	(void)self;
	if (status == -EINVAL)
		return PyErr_Format(Invalid, "z3fold_alloc of size 0");
	return PyErr_Format(NoSpace, "z3fold_alloc of %S bytes > %u", size, PAGE_SIZE);
}

/* (lru, (unbuddied mask, unbuddied lists)) */
static PyObject *z3fold_order_value(PoolObject *self, PyObject *lru, const struct order *order,
				    size_t *pos)
{
	uint64_t mask = order->words[(*pos)++];
	PyObject *lists = take_runs(order, pos, Z3FOLD_NCHUNKS);

	(void)self;
	if (!lists) {
		Py_DECREF(lru);
		return NULL;
	}
	return Py_BuildValue("(N(KN))", lru, (unsigned long long)mask, lists);
}

static const struct pool_binding z3fold_binding = {
	.driver = &z3fold_driver,
	.hex_handles = true,
	.not_in_pool = "names no live object in this pool",
	.malloc_error = z3fold_malloc_error,
	.pfns = z3fold_pfns,
	.order_value = z3fold_order_value,
};

static PyMethodDef z3fold_methods[] = {
	POOL_METHODS,
	{ "_pfns", (PyCFunction)pool_pfn_list, METH_NOARGS, "the held pages, by pfn" },
	{ "locate", (PyCFunction)z3fold_locate_method, METH_O,
	  "(pfn, buddy name, byte offset in the frame) of a live object" },
	{ "layout", (PyCFunction)z3fold_layout_method, METH_O, "a page's header fields" },
	{ NULL, NULL, 0, NULL },
};

/* -- zsmalloc's extras ---------------------------------------------------------------- */

static PyObject *zs_compact_method(PoolObject *self, PyObject *unused)
{
	(void)unused;
	if (!ready(self))
		return NULL;
	return PyLong_FromUnsignedLongLong(zs_compact(self->impl));
}

static PyObject *zs_class_stats_method(PoolObject *self, PyObject *unused)
{
	struct zs_class_stats r;
	PyObject *rows;
	uint32_t index;

	(void)unused;
	if (!ready(self) || !(rows = PyList_New(0)))
		return NULL;
	for (index = 0; index < ZS_NR_CLASSES; index++) {
		PyObject *row;

		if (!zs_class_stats(self->impl, index, &r))
			continue;
		row = Py_BuildValue("{sIsIsKsKsKsKsKsIsK}", "class", r.index, "size", r.size,
				    "almost_full", (unsigned long long)r.almost_full,
				    "almost_empty", (unsigned long long)r.almost_empty,
				    "obj_allocated", (unsigned long long)r.obj_allocated,
				    "obj_used", (unsigned long long)r.obj_used,
				    "pages_used", (unsigned long long)r.pages_used,
				    "pages_per_zspage", r.pages_per_zspage,
				    "freeable", (unsigned long long)r.freeable);
		if (!row || PyList_Append(rows, row)) {
			Py_XDECREF(row);
			Py_DECREF(rows);
			return NULL;
		}
		Py_DECREF(row);
	}
	return rows;
}

static PyObject *zs_distinct_classes(PoolObject *self, PyObject *unused)
{
	(void)unused;
	return ready(self) ? PyLong_FromSsize_t(distinct_classes(self)) : NULL;
}

static PyObject *zs_locate(PoolObject *self, PyObject *handle_obj)
{
	struct zs_object obj;
	uint64_t handle;
	int status, known;

	if (!ready(self) || (known = parse_handle(handle_obj, &handle)) < 0)
		return NULL;
	status = known ? zs_object(self->impl, handle, &obj) : ZE_NOT_IN_POOL;
	if (status)
		return fail(self, status, handle_obj);
	return Py_BuildValue("(KI)", (unsigned long long)obj.zspage_id, obj.index);
}

#define ZS_GETTER(name, expr)							\
static PyObject *get_##name(PoolObject *self, void *unused)			\
{										\
	(void)unused;								\
	if (!ready(self))							\
		return NULL;							\
	return PyLong_FromUnsignedLongLong(expr);				\
}
ZS_GETTER(huge_class_size, zs_huge_class_size(self->impl))
ZS_GETTER(chain_size, zs_chain_size(self->impl))
ZS_GETTER(pages_allocated, zs_total_pages(self->impl))
ZS_GETTER(pages_compacted, zs_pages_compacted(self->impl))

static PyGetSetDef zs_getset[] = {
	{ "huge_class_size", (getter)get_huge_class_size, NULL, NULL, NULL },
	{ "chain_size", (getter)get_chain_size, NULL, NULL, NULL },
	{ "pages_allocated", (getter)get_pages_allocated, NULL, NULL, NULL },
	{ "pages_compacted", (getter)get_pages_compacted, NULL, NULL, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

/* zs_malloc refuses a size only with -EINVAL */
static PyObject *zs_malloc_error(PoolObject *self, PyObject *size, int status)
{
	(void)self;
	(void)status;
	return PyErr_Format(Invalid, "zs_malloc of %S bytes", size);
}

/* (lru, the four fullness lists of each distinct class) */
static PyObject *zs_order_value(PoolObject *self, PyObject *lru, const struct order *order,
				size_t *pos)
{
	PyObject *lists = take_runs(order, pos, 4 * distinct_classes(self));

	if (!lists) {
		Py_DECREF(lru);
		return NULL;
	}
	return Py_BuildValue("(NN)", lru, lists);
}

static const struct pool_binding zsmalloc_binding = {
	.driver = &zsmalloc_driver,
	.not_in_pool = "is not in this pool",
	.malloc_error = zs_malloc_error,
	.order_value = zs_order_value,
};

static PyMethodDef zs_methods[] = {
	POOL_METHODS,
	{ "compact", (PyCFunction)zs_compact_method, METH_NOARGS, "zs_compact: pages freed" },
	{ "class_stats", (PyCFunction)zs_class_stats_method, METH_NOARGS,
	  "the rows of debugfs `classes` (6.1 columns)" },
	{ "distinct_classes", (PyCFunction)zs_distinct_classes, METH_NOARGS, NULL },
	{ "locate", (PyCFunction)zs_locate, METH_O, "(zspage id, object index) of a handle" },
	{ NULL, NULL, 0, NULL },
};

/* -- xvmalloc's extras ------------------------------------------------------------------ */

static PyObject *xv_malloc_error(PoolObject *self, PyObject *size, int status)
{
	long long n;

	(void)self;
	if (status == -EINVAL)
		return PyErr_Format(Invalid, "xv_malloc of size 0");
	if (status == -ENOSPC)
		return PyErr_Format(NoSpace, "xv_malloc of %S bytes > %u", size, PAGE_SIZE - 4);
	n = PyLong_AsLongLong(size);		/* 4089..4092: the seed's own -ENOMEM */
	return PyErr_Format(NoMemory, "xv_malloc of %lld bytes: get_index(%lld) is past the "
			    "last free list", n, (n + 3) & ~3ll);
}

/* PagePool._reclaim_order: the LRU alone */
static PyObject *lru_order_value(PoolObject *self, PyObject *lru, const struct order *order,
				 size_t *pos)
{
	(void)self;
	(void)order;
	(void)pos;
	return lru;
}

static const struct pool_binding xvmalloc_binding = {
	.driver = &xvmalloc_driver,
	.hex_handles = true,
	.not_in_pool = "names no live object",
	.pfns = xv_pfns,
	.malloc_error = xv_malloc_error,
	.order_value = lru_order_value,
};

static PyObject *xv_under_reclaim_list(PoolObject *self, PyObject *unused)
{
	(void)unused;
	return pfn_list(self, xv_under_reclaim);
}

/* An index into the free lists as a Python list takes it (negative from the end). */
static int free_list_index(PyObject *obj, uint32_t *index)
{
	long long value;

	if (parse_count(obj, "a free list index", &value))
		return -1;
	if (value < 0)
		value += XV_NUM_FREE_LISTS;
	if (value < 0 || value >= XV_NUM_FREE_LISTS) {
		PyErr_SetString(PyExc_IndexError, "list index out of range");
		return -1;
	}
	*index = (uint32_t)value;
	return 0;
}

static PyObject *xv_free_blocks_method(PoolObject *self, PyObject *slindex_obj)
{
	struct xv_free_block *blocks;
	uint32_t slindex;
	uint64_t n, i;
	PyObject *list;

	if (!ready(self) || free_list_index(slindex_obj, &slindex))
		return NULL;
	n = xv_free_blocks(self->impl, slindex, NULL, 0);
	blocks = PyMem_Malloc((n ? n : 1) * sizeof(*blocks));
	if (!blocks)
		return PyErr_NoMemory();
	xv_free_blocks(self->impl, slindex, blocks, n);
	list = PyList_New((Py_ssize_t)n);
	for (i = 0; list && i < n; i++) {
		PyObject *item = Py_BuildValue("(II)", blocks[i].pfn, blocks[i].offset);

		if (!item) {
			Py_CLEAR(list);
			break;
		}
		PyList_SET_ITEM(list, (Py_ssize_t)i, item);
	}
	PyMem_Free(blocks);
	return list;
}

static PyObject *xv_find_block_method(PoolObject *self, PyObject *size_obj)
{
	long long size;
	int index;

	if (!ready(self) || parse_count(size_obj, "a size", &size))
		return NULL;
	/* past 1 << 20 every size is past the bitmaps, as it is from 4129 on */
	index = xv_find_block(self->impl, size < 0 ? 0 : size > 1 << 20 ? 1 << 20 : (uint32_t)size);
	if (index == -2)
		return PyErr_Format(PyExc_IndexError, "list index out of range");
	if (index < 0)
		Py_RETURN_NONE;
	return PyLong_FromLong(index);
}

static PyObject *get_flbitmap(PoolObject *self, void *unused)
{
	(void)unused;
	if (!ready(self))
		return NULL;
	return PyLong_FromUnsignedLongLong(xv_flbitmap(self->impl));
}

static PyObject *get_slbitmap(PoolObject *self, void *unused)
{
	PyObject *words;
	uint32_t word;

	(void)unused;
	if (!ready(self) || !(words = PyList_New(XV_MAX_FLI)))
		return NULL;
	for (word = 0; word < XV_MAX_FLI; word++) {
		PyObject *item = PyLong_FromUnsignedLongLong(xv_slbitmap(self->impl, word));

		if (!item) {
			Py_DECREF(words);
			return NULL;
		}
		PyList_SET_ITEM(words, word, item);
	}
	return words;
}

static PyGetSetDef xv_getset[] = {
	{ "flbitmap", (getter)get_flbitmap, NULL, "bit w: slbitmap[w] is not 0", NULL },
	{ "slbitmap", (getter)get_slbitmap, NULL,
	  "bit i of word w: freelist[w * 64 + i] is not empty", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyMethodDef xv_methods[] = {
	POOL_METHODS,
	{ "_pfns", (PyCFunction)pool_pfn_list, METH_NOARGS, "the held pages, by pfn" },
	{ "_under_reclaim", (PyCFunction)xv_under_reclaim_list, METH_NOARGS,
	  "the pages under reclaim, by pfn" },
	{ "free_blocks", (PyCFunction)xv_free_blocks_method, METH_O,
	  "(pfn, offset) of the blocks on freelist[slindex], head first" },
	{ "find_block", (PyCFunction)xv_find_block_method, METH_O,
	  "the index of the free list whose head serves `size` bytes, or None" },
	{ NULL, NULL, 0, NULL },
};

/* -- zcache zbud's extras ---------------------------------------------------------------- */

static PyObject *zcache_zbud_malloc_error(PoolObject *self, PyObject *size, int status)
{
	uint32_t key = zcache_zbud_key_in_handle(self->impl);
	PyObject *key_obj, *data;

	if (status == -EINVAL)
		return PyErr_Format(Invalid, "zbud of %S bytes: no data after a %u-byte key", size,
				    key);
	key_obj = PyLong_FromUnsignedLong(key);
	data = key_obj ? PyNumber_Subtract(size, key_obj) : NULL;
	Py_XDECREF(key_obj);
	if (data) {
		PyErr_Format(NoSpace, "zbud of %S bytes > zbud_max_buddy_size %d", data,
			     ZCACHE_MAX_BUDDY_SIZE);
		Py_DECREF(data);
	}
	return NULL;
}

static const struct pool_binding zcache_zbud_binding = {
	.driver = &zcache_zbud_driver,
	.hex_handles = true,
	.not_in_pool = "names no live zbud",
	.pfns = zcache_zbud_pfns,
	.malloc_error = zcache_zbud_malloc_error,
	.order_value = lru_order_value,
};

static PyObject *zz_create_prep(PoolObject *self, PyObject *size_obj)
{
	return allocate(self, size_obj, zcache_zbud_create_prep);
}

static PyObject *zz_create_finish(PoolObject *self, PyObject *handle_obj)
{
	uint64_t handle;
	int status, known;
	PyObject *text;

	if (!ready(self) || (known = parse_handle(handle_obj, &handle)) < 0)
		return NULL;
	status = known ? zcache_zbud_create_finish(self->impl, handle) : ZE_NOT_IN_POOL;
	if (!status)
		Py_RETURN_NONE;
	if (status != -EINVAL)
		return fail(self, status, handle_obj);
	text = PyNumber_ToBase(handle_obj, 16);
	if (text) {
		PyErr_Format(Invalid, "handle %U: create_finish without create_prep", text);
		Py_DECREF(text);
	}
	return NULL;
}

/* The pfns on unbuddied[free_chunks], head (oldest) first. */
static PyObject *zz_unbuddied(PoolObject *self, PyObject *index_obj)
{
	long long index;
	uint32_t *pfns;
	uint64_t n;

	if (!ready(self) || parse_count(index_obj, "a list index", &index))
		return NULL;
	if (index < 0 || index >= ZCACHE_NCHUNKS)
		return PyErr_Format(PyExc_IndexError, "unbuddied[%lld] is not one of the %d lists",
				    index, ZCACHE_NCHUNKS);
	n = zcache_zbud_unbuddied(self->impl, (uint32_t)index, NULL, 0);
	pfns = PyMem_Malloc((n ? n : 1) * sizeof(*pfns));
	if (!pfns)
		return PyErr_NoMemory();
	zcache_zbud_unbuddied(self->impl, (uint32_t)index, pfns, n);
	return pfns_to_list(pfns, n);
}

static PyObject *get_key_in_handle(PoolObject *self, void *unused)
{
	(void)unused;
	if (!ready(self))
		return NULL;
	return PyLong_FromUnsignedLong(zcache_zbud_key_in_handle(self->impl));
}

static PyGetSetDef zz_getset[] = {
	{ "key_in_handle", (getter)get_key_in_handle, NULL,
	  "bytes of each object's start kept in its tmem handle", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyMethodDef zz_methods[] = {
	POOL_METHODS,
	{ "_pfns", (PyCFunction)pool_pfn_list, METH_NOARGS, "the held pages, by pfn" },
	{ "create_prep", (PyCFunction)zz_create_prep, METH_O,
	  "zbud_create_prep: a handle whose pageframe is unevictable until create_finish" },
	{ "create_finish", (PyCFunction)zz_create_finish, METH_O,
	  "zbud_create_finish: the pageframe may be evicted again" },
	{ "_unbuddied", (PyCFunction)zz_unbuddied, METH_O,
	  "the pages on unbuddied[free chunks], head (oldest) first" },
	{ NULL, NULL, 0, NULL },
};

/* -- types and the module ------------------------------------------------------------ */

static PyTypeObject PoolType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zswapsim._engine.Pool",
	.tp_doc = "What the compiled pools share: counters and the evict callback.",
	.tp_basicsize = sizeof(PoolObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_traverse = (traverseproc)pool_traverse,
	.tp_clear = (inquiry)pool_clear,
	.tp_dealloc = (destructor)pool_dealloc,
	.tp_getset = pool_getset,
};

static PyTypeObject ZbudType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zswapsim._engine.Zbud",
	.tp_doc = "zbud.c: Zbud(memory, evict=None)",
	.tp_basicsize = sizeof(PoolObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_traverse = (traverseproc)pool_traverse,
	.tp_clear = (inquiry)pool_clear,
	.tp_dealloc = (destructor)pool_dealloc,
	.tp_methods = zbud_methods,
	.tp_init = (initproc)zbud_init,
	.tp_new = PyType_GenericNew,
};

static PyTypeObject Z3foldType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zswapsim._engine.Z3fold",
	.tp_doc = "z3fold.c: Z3fold(memory, evict=None)",
	.tp_basicsize = sizeof(PoolObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_traverse = (traverseproc)pool_traverse,
	.tp_clear = (inquiry)pool_clear,
	.tp_dealloc = (destructor)pool_dealloc,
	.tp_methods = z3fold_methods,
	.tp_init = (initproc)z3fold_init,
	.tp_new = PyType_GenericNew,
};

static PyTypeObject ZsmallocType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zswapsim._engine.Zsmalloc",
	.tp_doc = "zsmalloc.c: Zsmalloc(memory, evict=None, chain_size=4)",
	.tp_basicsize = sizeof(PoolObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_traverse = (traverseproc)pool_traverse,
	.tp_clear = (inquiry)pool_clear,
	.tp_dealloc = (destructor)pool_dealloc,
	.tp_methods = zs_methods,
	.tp_getset = zs_getset,
	.tp_init = (initproc)zsmalloc_init,
	.tp_new = PyType_GenericNew,
};

static PyTypeObject XvmallocType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zswapsim._engine.Xvmalloc",
	.tp_doc = "xvmalloc.c: Xvmalloc(memory, evict=None)",
	.tp_basicsize = sizeof(PoolObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_traverse = (traverseproc)pool_traverse,
	.tp_clear = (inquiry)pool_clear,
	.tp_dealloc = (destructor)pool_dealloc,
	.tp_methods = xv_methods,
	.tp_getset = xv_getset,
	.tp_init = (initproc)xvmalloc_init,
	.tp_new = PyType_GenericNew,
};

static PyTypeObject ZcacheZbudType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zswapsim._engine.ZcacheZbud",
	.tp_doc = "zcache_zbud.c: ZcacheZbud(memory, evict=None, key_in_handle=0)",
	.tp_basicsize = sizeof(PoolObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_traverse = (traverseproc)pool_traverse,
	.tp_clear = (inquiry)pool_clear,
	.tp_dealloc = (destructor)pool_dealloc,
	.tp_methods = zz_methods,
	.tp_getset = zz_getset,
	.tp_init = (initproc)zcache_zbud_init,
	.tp_new = PyType_GenericNew,
};

static struct PyModuleDef engine_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "zswapsim._engine",
	.m_doc = "The compiled allocators, one call at a time (see module.c).",
	.m_size = -1,
};

PyMODINIT_FUNC PyInit__engine(void)
{
	PyObject *errors = PyImport_ImportModule("zswapsim.errors"), *module;

	if (!errors)
		return NULL;
	Invalid = PyObject_GetAttrString(errors, "Invalid");
	NoSpace = PyObject_GetAttrString(errors, "NoSpace");
	NoMemory = PyObject_GetAttrString(errors, "NoMemory");
	PoolCorrupted = PyObject_GetAttrString(errors, "PoolCorrupted");
	ConfigError = PyObject_GetAttrString(errors, "ConfigError");
	Py_DECREF(errors);
	if (!Invalid || !NoSpace || !NoMemory || !PoolCorrupted || !ConfigError)
		return NULL;
	ZbudType.tp_base = &PoolType;
	ZsmallocType.tp_base = &PoolType;
	Z3foldType.tp_base = &PoolType;
	XvmallocType.tp_base = &PoolType;
	ZcacheZbudType.tp_base = &PoolType;
	if (PyType_Ready(&PoolType) || PyType_Ready(&ZbudType) || PyType_Ready(&ZsmallocType) ||
	    PyType_Ready(&Z3foldType) || PyType_Ready(&XvmallocType) ||
	    PyType_Ready(&ZcacheZbudType))
		return NULL;
	module = PyModule_Create(&engine_module);
	if (!module)
		return NULL;
	if (PyModule_AddObjectRef(module, "Pool", (PyObject *)&PoolType) ||
	    PyModule_AddObjectRef(module, "Zbud", (PyObject *)&ZbudType) ||
	    PyModule_AddObjectRef(module, "Zsmalloc", (PyObject *)&ZsmallocType) ||
	    PyModule_AddObjectRef(module, "Z3fold", (PyObject *)&Z3foldType) ||
	    PyModule_AddObjectRef(module, "Xvmalloc", (PyObject *)&XvmallocType) ||
	    PyModule_AddObjectRef(module, "ZcacheZbud", (PyObject *)&ZcacheZbudType) ||
	    PyModule_AddIntConstant(module, "PAGE_SIZE", PAGE_SIZE) || zswap_module_add(module) ||
	    zram_module_add(module)) {
		Py_DECREF(module);
		return NULL;
	}
	return module;
}
