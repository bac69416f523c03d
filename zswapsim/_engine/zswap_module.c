/*
 * zswap_module.c - zswapsim._engine.Zswap: zswap.c's compiled Zswap as a
 * Python type, one call per operation (zswapsim/zswap_native.py's
 * NativeZswap wraps it with zswap.py's API).  The binding owns what is
 * Python's: it compresses and decompresses through the CompressionCache it
 * is given (so its hits and results are the Python Zswap's; the compiled
 * cache of compression_cache.c is called in C), turns status
 * codes into exceptions, and pages into bytes.  zswap.c itself only ever
 * sees byte arrays.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "zswap_module.h"
#include "compression_cache.h"


/* -- the codec: the CompressionCache's methods ------------------------------- */

static int codec_compress(void *ctx, const uint8_t *page, const uint8_t **out, size_t *len)
{
	ZswapObject *self = ctx;
	bool storing = page == self->page_bytes && self->page;
	PyObject *arg = storing ? Py_NewRef(self->page)
		: PyBytes_FromStringAndSize((const char *)page, PAGE_SIZE);
	PyObject *key = storing ? self->key : Py_None, *ahead = storing ? self->ahead : Py_None;
	PyObject *result, *data;

	if (!arg)
		return ZE_CALLBACK;
	if (PyObject_TypeCheck(self->compressor, &CompressionCacheType))
		result = cache_compress(self->compressor, arg, page, PAGE_SIZE, key, ahead);
	else
		result = PyObject_CallMethod(self->compressor, "compress", "OOO", arg, key, ahead);
	Py_DECREF(arg);
	if (!result)
		return ZE_CALLBACK;
	data = PyBytes_Check(result) ? Py_NewRef(result) : PyBytes_FromObject(result);
	Py_DECREF(result);
	if (!data)
		return ZE_CALLBACK;
	Py_XSETREF(self->compressed, data);
	*out = (const uint8_t *)PyBytes_AS_STRING(data);
	*len = (size_t)PyBytes_GET_SIZE(data);
	return 0;
}

static int codec_decompress(void *ctx, const uint8_t *src, size_t len, uint8_t *page)
{
	ZswapObject *self = ctx;
	PyObject *result;
	Py_buffer view;

	if (self->known_data && len == self->known_len && !memcmp(src, self->known_data, len)) {
		memcpy(page, self->known_page, PAGE_SIZE);	/* compression is deterministic */
		return 0;
	}
	if (PyObject_TypeCheck(self->compressor, &CompressionCacheType))
		return cache_decompress(self->compressor, src, len, page, PAGE_SIZE)
			? ZE_CALLBACK : 0;
	result = PyObject_CallMethod(self->compressor, "decompress", "y#I", (const char *)src,
				     (Py_ssize_t)len, PAGE_SIZE);
	if (!result)
		return ZE_CALLBACK;
	if (PyObject_GetBuffer(result, &view, PyBUF_SIMPLE)) {
		Py_DECREF(result);
		return ZE_CALLBACK;
	}
	if (view.len != PAGE_SIZE) {
		PyErr_Format(PyExc_ValueError, "decompress gave %zd bytes, not a %u-byte page",
			     view.len, PAGE_SIZE);
		PyBuffer_Release(&view);
		Py_DECREF(result);
		return ZE_CALLBACK;
	}
	memcpy(page, view.buf, PAGE_SIZE);
	PyBuffer_Release(&view);
	Py_DECREF(result);
	return 0;
}

/* -- arguments and errors ------------------------------------------------------ */

PyObject *zswap_failed(int status)
{
	if (status == ZE_CALLBACK) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_SystemError, "a callback failed without an error");
		return NULL;
	}
	if (status == ZE_OOM)
		return PyErr_NoMemory();
	return PyErr_Format(PyExc_SystemError, "zswap: status %d", status);
}

static int ready(ZswapObject *self)
{
	if (self->z)
		return 1;
	PyErr_SetString(PyExc_ValueError, "the Zswap's __init__ has not run");
	return 0;
}

static int parse_type(PyObject *obj, uint32_t *type)
{
	long value = PyLong_AsLong(obj);

	if (value == -1 && PyErr_Occurred())
		return -1;
	if (value < 0 || value >= MAX_SWAPFILES) {
		PyErr_Format(PyExc_ValueError, "swap type %ld out of range 0..%d", value,
			     MAX_SWAPFILES - 1);
		return -1;
	}
	*type = (uint32_t)value;
	return 0;
}

/* (type, offset) from the first two of `nargs` arguments */
static int parse_slot(ZswapObject *self, PyObject *const *args, Py_ssize_t nargs,
		      Py_ssize_t want, uint32_t *type, uint64_t *offset)
{
	long long value;

	if (!ready(self))
		return -1;
	if (nargs != want) {
		PyErr_Format(PyExc_TypeError, "expected %zd arguments, got %zd", want, nargs);
		return -1;
	}
	if (parse_type(args[0], type))
		return -1;
	value = PyLong_AsLongLong(args[1]);
	if (value == -1 && PyErr_Occurred())
		return -1;
	if (value < 0 || (uint64_t)value > SWP_OFFSET_MASK) {
		PyErr_Format(PyExc_ValueError, "swap offset %lld out of range 0..2^%d-1", value,
			     SWP_TYPE_SHIFT);
		return -1;
	}
	*offset = (uint64_t)value;
	return 0;
}

static PyObject *store_result(int status, int result)
{
	if (status)
		return zswap_failed(status);
	if (result == ZSWAP_NOT_OUT)
		Py_RETURN_NONE;
	return PyBool_FromLong(result == ZSWAP_KEPT);
}

static PyObject *page_result(int status, int found, const uint8_t *page)
{
	if (status)
		return zswap_failed(status);
	if (!found)
		Py_RETURN_NONE;
	return PyBytes_FromStringAndSize((const char *)page, PAGE_SIZE);
}

/* -- the operations --------------------------------------------------------------- */

int zswap_object_store(ZswapObject *self, uint32_t type, uint64_t offset, PyObject *page,
		       const uint8_t *bytes, PyObject *key, PyObject *ahead, int *result)
{
	int status;

	self->page_bytes = bytes;
	self->page = page;
	self->key = key;
	self->ahead = ahead;
	status = zswap_store(self->z, type, offset, bytes, result);
	self->page_bytes = NULL;
	self->page = self->key = self->ahead = NULL;
	return status;
}

static PyObject *zo_store(ZswapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	uint32_t type;
	uint64_t offset;
	Py_buffer page;
	int status, result = 0;

	/* store(type, offset, page, key=None, ahead=None), as Zswap.store */
	if (nargs > 5)
		return PyErr_Format(PyExc_TypeError, "expected at most 5 arguments, got %zd",
				    nargs);
	if (parse_slot(self, args, nargs < 3 ? nargs : 3, 3, &type, &offset) ||
	    PyObject_GetBuffer(args[2], &page, PyBUF_SIMPLE))
		return NULL;
	if (page.len != PAGE_SIZE) {
		PyBuffer_Release(&page);
		return PyErr_Format(PyExc_ValueError, "a page is %u bytes, not %zd", PAGE_SIZE,
				    page.len);
	}
	status = zswap_object_store(self, type, offset, args[2], page.buf,
				    nargs > 3 ? args[3] : Py_None, nargs > 4 ? args[4] : Py_None,
				    &result);
	PyBuffer_Release(&page);
	return store_result(status, result);
}

static PyObject *zo_load(ZswapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	uint8_t page[PAGE_SIZE];
	uint32_t type;
	uint64_t offset;
	int found = 0, status;

	if (parse_slot(self, args, nargs, 2, &type, &offset))
		return NULL;
	status = zswap_load(self->z, type, offset, page, &found);
	return page_result(status, found, page);
}

static PyObject *zo_peek(ZswapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	uint8_t page[PAGE_SIZE];
	uint32_t type;
	uint64_t offset;
	int found = 0, status;

	if (parse_slot(self, args, nargs, 2, &type, &offset))
		return NULL;
	status = zswap_peek(self->z, type, offset, page, &found);
	return page_result(status, found, page);
}

static PyObject *zo_compressed(ZswapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	uint8_t buf[2 * PAGE_SIZE];
	uint32_t type;
	uint64_t offset;
	size_t len = 0;
	int status;

	if (parse_slot(self, args, nargs, 2, &type, &offset))
		return NULL;
	status = zswap_compressed(self->z, type, offset, buf, &len);
	if (status)
		return zswap_failed(status);
	if (!len)
		Py_RETURN_NONE;
	return PyBytes_FromStringAndSize((const char *)buf, (Py_ssize_t)len);
}

/* _flip_bit(type, offset, bit): corrupt a pool entry's stored bytes (tests) */
static PyObject *zo_flip_bit(ZswapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	uint32_t type;
	uint64_t offset;
	unsigned long bit;
	int status;

	if (parse_slot(self, args, nargs, 3, &type, &offset))
		return NULL;
	bit = PyLong_AsUnsignedLong(args[2]);
	if (bit == (unsigned long)-1 && PyErr_Occurred())
		return NULL;
	status = bit > UINT32_MAX ? -EINVAL : zswap_flip_bit(self->z, type, offset, (uint32_t)bit);
	if (status == -ENOENT || status == -EINVAL)
		return PyErr_Format(PyExc_ValueError, "no bit %lu in a pool entry at %u:%llu", bit,
				    type, (unsigned long long)offset);
	if (status)
		return zswap_failed(status);
	Py_RETURN_NONE;
}

/* Whether the page a load of (type, offset) finds is the one whose page_key
 * is `key` (1, 0, or -1 with an exception), as zswap.py's holds_page, for a
 * Zswap compressing through the compiled cache: the entry's compressed
 * bytes against the cache's result for `key` while it has one, else the
 * page a load finds. */
static int holds(ZswapObject *self, uint32_t type, uint64_t offset, PyObject *key)
{
	uint8_t buf[2 * PAGE_SIZE], page[PAGE_SIZE];
	PyObject *expected, *copy, *found_key;
	size_t len = 0;
	int status, found = 0, same;

	if ((status = zswap_compressed(self->z, type, offset, buf, &len))) {
		zswap_failed(status);
		return -1;
	}
	if (len && (expected = cache_cached(self->compressor, key)))
		return (size_t)PyBytes_GET_SIZE(expected) == len &&
			!memcmp(PyBytes_AS_STRING(expected), buf, len);
	if ((status = zswap_peek(self->z, type, offset, page, &found))) {
		zswap_failed(status);
		return -1;
	}
	if (!found)
		return 0;
	if (!(copy = PyBytes_FromStringAndSize((const char *)page, PAGE_SIZE)))
		return -1;
	found_key = cache_page_key(self->compressor, copy);
	Py_DECREF(copy);
	if (!found_key)
		return -1;
	same = PyObject_RichCompareBool(found_key, key, Py_EQ);
	Py_DECREF(found_key);
	return same;
}

static int needs_compiled_cache(ZswapObject *self, const char *what)
{
	if (PyObject_TypeCheck(self->compressor, &CompressionCacheType))
		return 0;
	PyErr_Format(PyExc_TypeError, "%s needs the compiled cache", what);
	return -1;
}

/* holds_page(type, offset, key): holds() */
static PyObject *zo_holds_page(ZswapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	uint32_t type;
	uint64_t offset;
	int held;

	if (parse_slot(self, args, nargs, 3, &type, &offset) ||
	    needs_compiled_cache(self, "holds_page"))
		return NULL;
	held = holds(self, type, offset, args[2]);
	return held < 0 ? NULL : PyBool_FromLong(held);
}

/* The verdict on one live page for first_unheld: NULL to go on (or, with an
 * exception set, to stop), else the ("lost" | "corrupted", type, offset). */
static PyObject *unheld(ZswapObject *self, PyObject *type_obj, PyObject *offset_obj,
			PyObject *key, int verify)
{
	PyObject *slot[2] = { type_obj, offset_obj };
	uint32_t type;
	uint64_t offset;
	int held;

	if (parse_slot(self, slot, 2, 2, &type, &offset))
		return NULL;
	if (zswap_where(self->z, type, offset) == WHERE_NONE)
		return Py_BuildValue("(sOO)", "lost", type_obj, offset_obj);
	if (!verify)
		return NULL;
	Py_INCREF(key);
	held = holds(self, type, offset, key);
	Py_DECREF(key);
	return held ? NULL : Py_BuildValue("(sOO)", "corrupted", type_obj, offset_obj);
}

/* first_unheld(live, verify, resident): zswap.py's first_unheld over the
 * live dict ({type: {offset: page_key}}), without a Python call a page. */
static PyObject *zo_first_unheld(ZswapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	PyObject *type_obj, *pages, *offset_obj, *key, *found = NULL;
	Py_ssize_t type_at = 0, offset_at, counted = 0, residents;
	int verify;

	if (!ready(self) || needs_compiled_cache(self, "first_unheld"))
		return NULL;
	if (nargs != 3)
		return PyErr_Format(PyExc_TypeError, "expected 3 arguments, got %zd", nargs);
	if (!PyDict_Check(args[0]))
		return PyErr_Format(PyExc_TypeError, "live is a dict, not %s",
				    Py_TYPE(args[0])->tp_name);
	if ((verify = PyObject_IsTrue(args[1])) < 0 || (residents = PyObject_Size(args[2])) < 0)
		return NULL;
	while (!found && PyDict_Next(args[0], &type_at, &type_obj, &pages)) {
		if (!PyDict_Check(pages))
			return PyErr_Format(PyExc_TypeError, "live pages are a dict, not %s",
					    Py_TYPE(pages)->tp_name);
		offset_at = 0;
		while (!found && PyDict_Next(pages, &offset_at, &offset_obj, &key)) {
			counted++;
			if (residents) {
				PyObject *slot = PyTuple_Pack(2, type_obj, offset_obj);
				int in_ram = slot ? PySequence_Contains(args[2], slot) : -1;

				Py_XDECREF(slot);
				if (in_ram < 0)
					return NULL;
				if (in_ram)
					continue;
			}
			found = unheld(self, type_obj, offset_obj, key, verify);
			if (!found && PyErr_Occurred())
				return NULL;
		}
	}
	if (!found)
		return Py_BuildValue("(nO)", counted, Py_None);
	return Py_BuildValue("(nN)", counted, found);
}

static PyObject *zo_invalidate_page(ZswapObject *self, PyObject *const *args,
				    Py_ssize_t nargs)
{
	uint32_t type;
	uint64_t offset;
	int status;

	if (parse_slot(self, args, nargs, 2, &type, &offset))
		return NULL;
	status = zswap_invalidate_page(self->z, type, offset);
	if (status)
		return zswap_failed(status);
	Py_RETURN_NONE;
}

static PyObject *zo_invalidate_area(ZswapObject *self, PyObject *type_obj)
{
	uint32_t type;
	int status;

	if (!ready(self) || parse_type(type_obj, &type))
		return NULL;
	status = zswap_invalidate_area(self->z, type);
	if (status)
		return zswap_failed(status);
	Py_RETURN_NONE;
}

static PyObject *zo_evict_loaded(ZswapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	uint32_t type;
	uint64_t offset;
	int result = 0, status;

	if (parse_slot(self, args, nargs, 2, &type, &offset))
		return NULL;
	status = zswap_evict_loaded(self->z, type, offset, &result);
	return store_result(status, result);
}

static PyObject *zo_run_pending_work(ZswapObject *self, PyObject *unused)
{
	int status;

	(void)unused;
	if (!ready(self))
		return NULL;
	status = zswap_run_pending_work(self->z);
	if (status)
		return zswap_failed(status);
	Py_RETURN_NONE;
}

static PyObject *zo_where(ZswapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	static const char *const names[] = {
		[WHERE_POOL] = "pool", [WHERE_SWAP] = "swap", [WHERE_ZERO_MAP] = "zero map",
		[WHERE_RAM] = "ram",
	};
	uint32_t type;
	uint64_t offset;
	enum zswap_where where;

	if (parse_slot(self, args, nargs, 2, &type, &offset))
		return NULL;
	where = zswap_where(self->z, type, offset);
	if (where == WHERE_NONE)
		Py_RETURN_NONE;
	return PyUnicode_FromString(names[where]);
}

static PyObject *zo_pool_pages(ZswapObject *self, PyObject *unused)
{
	(void)unused;
	return ready(self) ? PyLong_FromUnsignedLongLong(zswap_pool_pages(self->z)) : NULL;
}

static int set_count(PyObject *dict, const char *name, uint64_t value)
{
	PyObject *number = PyLong_FromUnsignedLongLong(value);
	int status = number ? PyDict_SetItemString(dict, name, number) : -1;

	Py_XDECREF(number);
	return status;
}

/* Every counter zswap.c keeps or derives, by name. */
static PyObject *zo_counts(ZswapObject *self, PyObject *unused)
{
	struct zswap_counts c;
	PyObject *counts;

	(void)unused;
	if (!ready(self) || !(counts = PyDict_New()))
		return NULL;
	zswap_counts(self->z, &c);
#define ZSWAP_ITEM(name)						\
	if (set_count(counts, #name, c.name)) {				\
		Py_DECREF(counts);					\
		return NULL;						\
	}
	ZSWAP_OWN_COUNTERS(ZSWAP_ITEM)
	ZSWAP_DERIVED_COUNTERS(ZSWAP_ITEM)
#undef ZSWAP_ITEM
	return counts;
}

/* The fault plan's injected counts by kind, or None without a plan. */
static PyObject *zo_injected(ZswapObject *self, PyObject *unused)
{
	const struct fault_plan *plan;

	(void)unused;
	if (!ready(self))
		return NULL;
	plan = zswap_faults(self->z);
	if (!plan)
		Py_RETURN_NONE;
	return Py_BuildValue("{sKsKsK}", "alloc", (unsigned long long)plan->injected[FAULT_ALLOC],
			     "swap_write", (unsigned long long)plan->injected[FAULT_SWAP_WRITE],
			     "evict", (unsigned long long)plan->injected[FAULT_EVICT]);
}

static PyObject *zo_class_stats(ZswapObject *self, PyObject *unused)
{
	struct zs_class_stats r;
	PyObject *rows;
	uint32_t index;

	(void)unused;
	if (!ready(self) || !(rows = PyList_New(0)))
		return NULL;
	for (index = 0; index < ZS_NR_CLASSES; index++) {
		int distinct = zswap_class_stats(self->z, index, &r);
		PyObject *row;

		if (distinct < 0) {
			Py_DECREF(rows);
			if (distinct == -EINVAL)
				return PyErr_Format(PyExc_ValueError, "class_stats: not zsmalloc");
			return zswap_failed(distinct);
		}
		if (!distinct)
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

/* -- construction ---------------------------------------------------------------- */

/* An unsigned setting of `params`, at most `max` */
static int param_u64(PyObject *params, const char *name, uint64_t max, uint64_t *value)
{
	PyObject *item = PyDict_GetItemString(params, name);

	if (!item)
		return PyErr_Format(PyExc_KeyError, "zswap setting %s missing", name), -1;
	*value = PyLong_AsUnsignedLongLong(item);
	if (*value == (uint64_t)-1 && PyErr_Occurred())
		return -1;
	if (*value > max)
		return PyErr_Format(PyExc_OverflowError, "zswap setting %s is %llu, above %llu",
				    name, (unsigned long long)*value,
				    (unsigned long long)max), -1;
	return 0;
}

static int param_bool(PyObject *params, const char *name, bool *value)
{
	PyObject *item = PyDict_GetItemString(params, name);
	int truth;

	if (!item)
		return PyErr_Format(PyExc_KeyError, "zswap setting %s missing", name), -1;
	truth = PyObject_IsTrue(item);
	if (truth < 0)
		return -1;
	*value = truth;
	return 0;
}

static int parse_config(PyObject *params, struct zswap_config *cfg)
{
	uint64_t v[12];
	uint64_t capacity;
	PyObject *backend = PyDict_GetItemString(params, "backend"), *cap;
	const char *name = backend ? PyUnicode_AsUTF8(backend) : NULL;

	if (!name)
		return PyErr_Occurred() ? -1 : (PyErr_SetString(PyExc_KeyError, "backend"), -1);
	cfg->driver = zpool_driver_named(name);
	if (!cfg->driver)
		return PyErr_Format(PyExc_ValueError, "no compiled %s pool", name), -1;
	if (param_u64(params, "chain_size", UINT32_MAX, &v[0]) ||
	    param_u64(params, "key_in_handle", UINT32_MAX, &v[1]) ||
	    param_u64(params, "ram_pages", UINT64_MAX, &cfg->ram_pages) ||
	    param_u64(params, "limit_pages", UINT64_MAX, &cfg->limit_pages) ||
	    param_u64(params, "accept_pages", UINT64_MAX, &cfg->accept_pages) ||
	    param_u64(params, "retries", INT64_MAX, &v[2]) ||
	    param_u64(params, "shrink_delay", UINT32_MAX, &cfg->shrink_delay) ||
	    param_u64(params, "swap_out_ticks", 1000, &cfg->swap_out_ticks) ||
	    param_u64(params, "shrink_step_cost", UINT32_MAX, &cfg->shrink_step_cost) ||
	    param_u64(params, "shrink_writeback_cost", UINT32_MAX,
		      &cfg->shrink_writeback_cost) ||
	    param_u64(params, "limit_rule", LIMIT_CHECK_LIMITS, &v[3]) ||
	    param_u64(params, "shrink_rule", SHRINK_LRU_SECOND_CHANCE, &v[4]) ||
	    param_u64(params, "header_len", 8, &v[5]) ||
	    param_u64(params, "compress_buffer", UINT32_MAX, &v[6]) ||
	    param_u64(params, "zpools_per_pool", ZSWAP_MAX_POOLS, &v[7]) ||
	    param_u64(params, "shrink_failures_max", UINT32_MAX, &v[8]) ||
	    param_bool(params, "zswap_lru", &cfg->zswap_lru) ||
	    param_bool(params, "zero_map", &cfg->zero_map) ||
	    param_bool(params, "same_filled", &cfg->same_filled) ||
	    param_bool(params, "evictable", &cfg->evictable) ||
	    param_bool(params, "invalidate_duplicates", &cfg->invalidate_duplicates) ||
	    param_bool(params, "counts_invalidated_duplicates",
		       &cfg->counts_invalidated_duplicates) ||
	    param_bool(params, "store_as_is", &cfg->store_as_is) ||
	    param_bool(params, "count_compress_fail", &cfg->count_compress_fail) ||
	    param_bool(params, "exclusive_loads", &cfg->exclusive_loads) ||
	    param_bool(params, "second_chance", &cfg->second_chance) ||
	    param_bool(params, "pool_per_swap_type", &cfg->pool_per_swap_type))
		return -1;
	cfg->pool_options.chain_size = (uint32_t)v[0];
	cfg->pool_options.key_in_handle = (uint32_t)v[1];
	cfg->retries = (long long)v[2];
	cfg->limit_rule = (enum zswap_limit_rule)v[3];
	cfg->shrink_rule = (enum zswap_shrink_rule)v[4];
	cfg->header_len = (uint32_t)v[5];
	cfg->compress_buffer = (uint32_t)v[6];
	cfg->zpools_per_pool = (uint32_t)v[7];
	cfg->shrink_failures_max = (uint32_t)v[8];
	cap = PyDict_GetItemString(params, "swap_capacity");
	cfg->has_swap_capacity = cap && cap != Py_None;
	if (cfg->has_swap_capacity) {
		if (param_u64(params, "swap_capacity", UINT64_MAX, &capacity))
			return -1;
		cfg->swap_capacity = capacity;
	}
	return 0;
}

/* faults: (rates, seed words) or (rates, (624 state words, index)) */
static int parse_faults(PyObject *faults, struct fault_plan *plan)
{
	PyObject *rates, *seed, *words = NULL, *index_obj = NULL;
	uint32_t *key = NULL;
	Py_ssize_t n, i;
	int kind, state, status = -1;

	memset(plan, 0, sizeof(*plan));
	if (!PyArg_ParseTuple(faults, "OO", &rates, &seed))
		return -1;
	if (!PyArg_ParseTuple(rates, "ddd", &plan->rates[FAULT_ALLOC],
			      &plan->rates[FAULT_SWAP_WRITE], &plan->rates[FAULT_EVICT]))
		return -1;
	for (kind = 0; kind < FAULT_KINDS; kind++)
		if (!(plan->rates[kind] >= 0.0 && plan->rates[kind] <= 1.0))
			return PyErr_Format(PyExc_ValueError, "a fault rate is outside 0..1"), -1;
	state = PyTuple_Check(seed) && PyTuple_GET_SIZE(seed) == 2 &&
		PyTuple_Check(PyTuple_GET_ITEM(seed, 0));
	if (state) {
		words = PyTuple_GET_ITEM(seed, 0);
		index_obj = PyTuple_GET_ITEM(seed, 1);
	} else {
		words = seed;
	}
	if (!PyTuple_Check(words) || !(n = PyTuple_GET_SIZE(words)) || (state && n != MT_N))
		return PyErr_Format(PyExc_ValueError, "fault seed words: a non-empty tuple"), -1;
	key = PyMem_Malloc((size_t)n * sizeof(*key));
	if (!key)
		return PyErr_NoMemory(), -1;
	for (i = 0; i < n; i++) {
		unsigned long word = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(words, i));

		if ((word == (unsigned long)-1 && PyErr_Occurred()) || word > UINT32_MAX) {
			if (!PyErr_Occurred())
				PyErr_SetString(PyExc_OverflowError, "a seed word is 32 bits");
			goto out;
		}
		key[i] = (uint32_t)word;
	}
	if (state) {
		unsigned long index = PyLong_AsUnsignedLong(index_obj);

		if (index == (unsigned long)-1 && PyErr_Occurred())
			goto out;
		if (faults_set_state(plan, key, index > MT_N ? MT_N + 1 : (uint32_t)index)) {
			PyErr_SetString(PyExc_ValueError, "a Mersenne Twister index is 0..624");
			goto out;
		}
	} else {
		faults_seed(plan, key, (size_t)n);
	}
	status = 0;
out:
	PyMem_Free(key);
	return status;
}

static int zo_init(ZswapObject *self, PyObject *args, PyObject *kwargs)
{
	static char *keywords[] = { "compressor", "params", "faults", NULL };
	PyObject *compressor, *params, *faults = Py_None;
	struct zswap_config cfg = { 0 };
	struct fault_plan plan;
	struct zswap_codec codec = { codec_compress, codec_decompress, self };

	if (self->z) {
		PyErr_SetString(PyExc_TypeError, "a Zswap is initialised once");
		return -1;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!|O", keywords, &compressor,
					 &PyDict_Type, &params, &faults) ||
	    parse_config(params, &cfg) || (faults != Py_None && parse_faults(faults, &plan)))
		return -1;
	self->z = zswap_create(&cfg, &codec, faults != Py_None ? &plan : NULL);
	if (!self->z) {
		PyErr_NoMemory();
		return -1;
	}
	self->compressor = Py_NewRef(compressor);
	return 0;
}

static int zo_traverse(ZswapObject *self, visitproc visit, void *arg)
{
	Py_VISIT(self->compressor);
	Py_VISIT(self->compressed);
	return 0;
}

static int zo_clear(ZswapObject *self)
{
	Py_CLEAR(self->compressor);
	Py_CLEAR(self->compressed);
	return 0;
}

static void zo_dealloc(ZswapObject *self)
{
	PyObject_GC_UnTrack(self);
	if (self->z)
		zswap_destroy(self->z);
	zo_clear(self);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *get_compressor(ZswapObject *self, void *unused)
{
	(void)unused;
	return Py_NewRef(self->compressor ? self->compressor : Py_None);
}

static PyGetSetDef zswap_getset[] = {
	{ "compressor", (getter)get_compressor, NULL, "the CompressionCache", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyMethodDef zswap_methods[] = {
	{ "store", (PyCFunction)(void (*)(void))zo_store, METH_FASTCALL, NULL },
	{ "load", (PyCFunction)(void (*)(void))zo_load, METH_FASTCALL, NULL },
	{ "invalidate_page", (PyCFunction)(void (*)(void))zo_invalidate_page, METH_FASTCALL,
	  NULL },
	{ "invalidate_area", (PyCFunction)zo_invalidate_area, METH_O, NULL },
	{ "evict_loaded", (PyCFunction)(void (*)(void))zo_evict_loaded, METH_FASTCALL, NULL },
	{ "run_pending_work", (PyCFunction)zo_run_pending_work, METH_NOARGS, NULL },
	{ "where", (PyCFunction)(void (*)(void))zo_where, METH_FASTCALL, NULL },
	{ "peek", (PyCFunction)(void (*)(void))zo_peek, METH_FASTCALL, NULL },
	{ "compressed", (PyCFunction)(void (*)(void))zo_compressed, METH_FASTCALL,
	  "a pool entry's compressed bytes, or None" },
	{ "pool_pages", (PyCFunction)zo_pool_pages, METH_NOARGS, NULL },
	{ "_flip_bit", (PyCFunction)(void (*)(void))zo_flip_bit, METH_FASTCALL,
	  "_flip_bit(type, offset, bit): corrupt a pool entry's stored bytes, for tests" },
	{ "holds_page", (PyCFunction)(void (*)(void))zo_holds_page, METH_FASTCALL,
	  "holds_page(type, offset, key) through the compiled cache" },
	{ "first_unheld", (PyCFunction)(void (*)(void))zo_first_unheld, METH_FASTCALL,
	  "first_unheld(live, verify, resident): zswap.first_unheld through the compiled cache" },
	{ "counts", (PyCFunction)zo_counts, METH_NOARGS, "every counter by name" },
	{ "injected", (PyCFunction)zo_injected, METH_NOARGS, NULL },
	{ "class_stats", (PyCFunction)zo_class_stats, METH_NOARGS, NULL },
	{ NULL, NULL, 0, NULL },
};

PyTypeObject ZswapType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zswapsim._engine.Zswap",
	.tp_doc = "zswap.c: Zswap(compressor, params, faults=None); see zswap_native.py",
	.tp_basicsize = sizeof(ZswapObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_traverse = (traverseproc)zo_traverse,
	.tp_clear = (inquiry)zo_clear,
	.tp_dealloc = (destructor)zo_dealloc,
	.tp_methods = zswap_methods,
	.tp_getset = zswap_getset,
	.tp_init = (initproc)zo_init,
	.tp_new = PyType_GenericNew,
};

/* random_stream(seed_words, n): the first n random() of faults.c's generator
 * seeded with those words, for the test that holds it against random.Random */
static PyObject *random_stream(PyObject *unused, PyObject *args)
{
	struct fault_plan plan;
	PyObject *words, *faults, *list;
	Py_ssize_t n, i;

	(void)unused;
	if (!PyArg_ParseTuple(args, "O!n", &PyTuple_Type, &words, &n))
		return NULL;
	faults = Py_BuildValue("((ddd)O)", 0.0, 0.0, 0.0, words);
	if (!faults)
		return NULL;
	i = parse_faults(faults, &plan);
	Py_DECREF(faults);
	if (i)
		return NULL;
	list = PyList_New(n > 0 ? n : 0);
	for (i = 0; list && i < n; i++) {
		PyObject *value = PyFloat_FromDouble(faults_random(&plan));

		if (!value)
			Py_CLEAR(list);
		else
			PyList_SET_ITEM(list, i, value);
	}
	return list;
}

static PyMethodDef functions[] = {
	{ "random_stream", random_stream, METH_VARARGS,
	  "random_stream(seed_words, n): faults.c's first n random() draws" },
	{ NULL, NULL, 0, NULL },
};

int zswap_module_add(PyObject *module)
{
	if (PyType_Ready(&ZswapType) || PyModule_AddFunctions(module, functions) ||
	    PyModule_AddObjectRef(module, "Zswap", (PyObject *)&ZswapType))
		return -1;
	return replay_module_add(module) || compression_cache_module_add(module) ? -1 : 0;
}
