/*
 * zram_module.c - zswapsim._engine.Zram: zram.c's device as a Python type,
 * one call per operation (zswapsim/zram_native.py's NativeZram subclasses
 * it with zram.py's API).  The binding owns what is Python's: it compresses
 * and decompresses through the CompressionCache it is given, as zram.py's
 * Zram does (compress(page), decompress(data, PAGE_SIZE)), turns status
 * codes into exceptions and pages into bytes.  An index Python can name but
 * the device cannot (negative, or past 2^63) is invalid I/O, as zram.py
 * counts it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "zram.h"

typedef struct {
	PyObject_HEAD
	struct zram *zram;
	PyObject *compressor;		/* a zswapsim.compress.CompressionCache */
	PyObject *page;			/* the page being written (borrowed) ... */
	const uint8_t *page_bytes;	/* ... and its bytes */
	PyObject *compressed;		/* the last compress() result, for its bytes */
} ZramObject;

static PyObject *Invalid, *PoolCorrupted;

/* -- the codec: the CompressionCache's methods ------------------------------- */

static int codec_compress(void *ctx, const uint8_t *page, const uint8_t **out, size_t *len)
{
	ZramObject *self = ctx;
	PyObject *arg = page == self->page_bytes && self->page ? Py_NewRef(self->page)
		: PyBytes_FromStringAndSize((const char *)page, PAGE_SIZE);
	PyObject *result, *data;

	if (!arg)
		return ZE_CALLBACK;
	result = PyObject_CallMethod(self->compressor, "compress", "O", arg);
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
	ZramObject *self = ctx;
	PyObject *result = PyObject_CallMethod(self->compressor, "decompress", "y#I",
					       (const char *)src, (Py_ssize_t)len, PAGE_SIZE);
	Py_buffer view;

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

static PyObject *failed(ZramObject *self, int status)
{
	if (status == ZE_CALLBACK) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_SystemError, "a callback failed without an error");
		return NULL;
	}
	if (status == ZE_OOM)
		return PyErr_NoMemory();
	if (status == -EINVAL)
		return PyErr_Format(Invalid, "zram: the allocator refused a 0-byte object");
	if (status == ZE_CORRUPTED)
		return PyErr_Format(PoolCorrupted, "%s", zram_pool_message(self->zram));
	return PyErr_Format(PyExc_SystemError, "zram: status %d", status);
}

static int ready(ZramObject *self)
{
	if (self->zram)
		return 1;
	PyErr_SetString(PyExc_ValueError, "the Zram's __init__ has not run");
	return 0;
}

/* A page index; one the device cannot have becomes UINT64_MAX. */
static int parse_index(ZramObject *self, PyObject *obj, uint64_t *index)
{
	PyObject *number;
	long long value;
	int overflow;

	if (!ready(self) || !(number = PyNumber_Index(obj)))
		return -1;
	value = PyLong_AsLongLongAndOverflow(number, &overflow);
	Py_DECREF(number);
	if (value == -1 && PyErr_Occurred())
		return -1;
	*index = overflow || value < 0 ? UINT64_MAX : (uint64_t)value;
	return 0;
}

static PyObject *page_bytes(int status, ZramObject *self, const uint8_t *page)
{
	if (status)
		return failed(self, status);
	return PyBytes_FromStringAndSize((const char *)page, PAGE_SIZE);
}

/* -- the operations --------------------------------------------------------------- */

static PyObject *zo_write(ZramObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	uint64_t index;
	Py_buffer page;
	bool written = false;
	int status;

	if (nargs != 2)
		return PyErr_Format(PyExc_TypeError, "write(index, page): %zd arguments", nargs);
	if (parse_index(self, args[0], &index) ||
	    PyObject_GetBuffer(args[1], &page, PyBUF_SIMPLE))
		return NULL;
	if (page.len != PAGE_SIZE) {
		PyBuffer_Release(&page);
		return PyErr_Format(PyExc_ValueError, "a page is %u bytes, not %zd", PAGE_SIZE,
				    page.len);
	}
	self->page = args[1];
	self->page_bytes = page.buf;
	status = zram_write(self->zram, index, page.buf, &written);
	self->page = NULL;
	self->page_bytes = NULL;
	PyBuffer_Release(&page);
	if (status)
		return failed(self, status);
	return PyBool_FromLong(written);
}

/* read(index, rw_page=False): rw_page matters only to a written-back page,
 * which this device never holds */
static PyObject *zo_read(ZramObject *self, PyObject *const *args, Py_ssize_t nargs,
			 PyObject *kwnames)
{
	Py_ssize_t given = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
	uint8_t page[PAGE_SIZE];
	uint64_t index;
	bool found = false;
	int status;

	if (nargs < 1 || given > 2 ||
	    (kwnames && given == 2 &&
	     PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "rw_page")))
		return PyErr_Format(PyExc_TypeError, "read(index, rw_page=False): not these "
				    "arguments");
	if (parse_index(self, args[0], &index))
		return NULL;
	status = zram_read(self->zram, index, page, &found);
	if (!status && !found)
		Py_RETURN_NONE;
	return page_bytes(status, self, page);
}

static PyObject *zo_peek(ZramObject *self, PyObject *index_obj)
{
	uint8_t page[PAGE_SIZE];
	uint64_t index;

	if (parse_index(self, index_obj, &index))
		return NULL;
	return page_bytes(zram_peek(self->zram, index, page), self, page);
}

static PyObject *zo_discard(ZramObject *self, PyObject *index_obj)
{
	uint64_t index;
	int status;

	if (parse_index(self, index_obj, &index))
		return NULL;
	status = zram_discard(self->zram, index);
	if (status)
		return failed(self, status);
	Py_RETURN_NONE;
}

static PyObject *zo_compact(ZramObject *self, PyObject *unused)
{
	(void)unused;
	return ready(self) ? PyLong_FromUnsignedLongLong(zram_compact(self->zram)) : NULL;
}

/* mark_idle(age_ns): None marks every slot; an age past 2^64 - 1 ns none */
static PyObject *zo_mark_idle(ZramObject *self, PyObject *age)
{
	uint64_t age_ns = 0;

	if (!ready(self))
		return NULL;
	if (age != Py_None) {
		PyObject *number = PyNumber_Index(age);
		int overflow;
		long long value;

		if (!number)
			return NULL;
		value = PyLong_AsLongLongAndOverflow(number, &overflow);
		Py_DECREF(number);
		if (value == -1 && PyErr_Occurred())
			return NULL;
		if (overflow < 0 || (!overflow && value < 0))
			return PyErr_Format(PyExc_ValueError, "an idle age is 0 or more ns");
		age_ns = overflow ? UINT64_MAX : (uint64_t)value;
	}
	return PyLong_FromUnsignedLongLong(zram_mark_idle(self->zram, age == Py_None, age_ns));
}

static PyObject *zo_total_pages(ZramObject *self, PyObject *unused)
{
	(void)unused;
	return ready(self) ? PyLong_FromUnsignedLongLong(zram_total_pages(self->zram)) : NULL;
}

static PyObject *zo_is_huge(ZramObject *self, PyObject *length_obj)
{
	Py_ssize_t length;

	if (!ready(self))
		return NULL;
	length = PyNumber_AsSsize_t(length_obj, PyExc_OverflowError);
	if (length == -1 && PyErr_Occurred())
		return NULL;
	if (length < 0)
		return PyErr_Format(PyExc_ValueError, "a length is 0 or more");
	return PyBool_FromLong(zram_is_huge(self->zram, (size_t)length));
}

/* zram.py's `stats`, by name and in its order */
static PyObject *zo_counts(ZramObject *self, PyObject *unused)
{
	struct zram_stats s;
	PyObject *counts;

	(void)unused;
	if (!ready(self) || !(counts = PyDict_New()))
		return NULL;
	zram_stats(self->zram, &s);
#define ZRAM_ITEM(name) {						\
		PyObject *value = PyLong_FromUnsignedLongLong(s.name);	\
		int bad = !value || PyDict_SetItemString(counts, #name, value);	\
		Py_XDECREF(value);					\
		if (bad) {						\
			Py_DECREF(counts);				\
			return NULL;					\
		}							\
	}
	ZRAM_STATS(ZRAM_ITEM)
#undef ZRAM_ITEM
	return counts;
}

/* (handle, size, word, huge, ac_time, idle) of a stored slot, None for an
 * empty one: handle None for a same-filled page, word None for any other */
static PyObject *zo_slot(ZramObject *self, PyObject *index_obj)
{
	struct zram_slot_info info;
	uint64_t index;

	if (parse_index(self, index_obj, &index))
		return NULL;
	if (!zram_slot(self->zram, index, &info))
		Py_RETURN_NONE;
	if (info.same)
		return Py_BuildValue("(OIy#OKO)", Py_None, info.size, (const char *)info.word,
				     (Py_ssize_t)sizeof(info.word), Py_False,
				     (unsigned long long)info.ac_time, info.idle ? Py_True : Py_False);
	return Py_BuildValue("(KIOOKO)", (unsigned long long)info.handle, info.size, Py_None,
			     info.huge ? Py_True : Py_False, (unsigned long long)info.ac_time,
			     info.idle ? Py_True : Py_False);
}

/* The stored slots' indexes, in no order. */
static PyObject *zo_indexes(ZramObject *self, PyObject *unused)
{
	uint64_t count, *indexes, i;
	PyObject *list;

	(void)unused;
	if (!ready(self))
		return NULL;
	count = zram_slot_count(self->zram);
	indexes = PyMem_Malloc((count ? count : 1) * sizeof(*indexes));
	if (!indexes)
		return PyErr_NoMemory();
	zram_slot_indexes(self->zram, indexes);
	list = PyList_New((Py_ssize_t)count);
	for (i = 0; list && i < count; i++) {
		PyObject *value = PyLong_FromUnsignedLongLong(indexes[i]);

		if (!value)
			Py_CLEAR(list);
		else
			PyList_SET_ITEM(list, (Py_ssize_t)i, value);
	}
	PyMem_Free(indexes);
	return list;
}

/* (frames in use, their peak) of the device's RAM */
static PyObject *zo_ram_pages(ZramObject *self, PyObject *unused)
{
	(void)unused;
	if (!ready(self))
		return NULL;
	return Py_BuildValue("(KK)", (unsigned long long)zram_ram_used_pages(self->zram),
			     (unsigned long long)zram_ram_peak_pages(self->zram));
}

static PyObject *zo_check(ZramObject *self, PyObject *unused)
{
	int status;

	(void)unused;
	if (!ready(self))
		return NULL;
	status = zram_check(self->zram);
	if (status)
		return failed(self, status);
	Py_RETURN_NONE;
}

/* -- construction ---------------------------------------------------------------- */

static int zo_init(ZramObject *self, PyObject *args, PyObject *kwargs)
{
	static char *keywords[] = { "compressor", "backend", "chain_size", "nr_pages",
				    "limit_pages", "huge_above_max_zpage", "max_zpage_size",
				    "counts_invalid_io", "counts_writestall", "idle_skips_same",
				    NULL };
	PyObject *compressor;
	const char *backend = NULL;
	int chain_size = 0, max_zpage_size = 0, huge_above = 0, invalid_io = 0,
		writestall = 0, skips_same = 0;
	long long nr_pages = 0, limit_pages = 0;
	struct zram_config cfg = { 0 };
	struct zram_codec codec = { codec_compress, codec_decompress, self };
	int status;

	if (self->zram) {
		PyErr_SetString(PyExc_TypeError, "a Zram is initialised once");
		return -1;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$siLLpippp", keywords, &compressor,
					 &backend, &chain_size, &nr_pages, &limit_pages,
					 &huge_above, &max_zpage_size, &invalid_io, &writestall,
					 &skips_same))
		return -1;
	if (!backend || !(cfg.driver = zpool_driver_named(backend))) {
		PyErr_Format(PyExc_ValueError, "no compiled %s pool", backend ? backend : "(none)");
		return -1;
	}
	if (chain_size < 0 || nr_pages < 1 || limit_pages < 0 || max_zpage_size < 0) {
		PyErr_SetString(PyExc_ValueError, "zram: chain_size, limit_pages and "
				"max_zpage_size are 0 or more, nr_pages 1 or more");
		return -1;
	}
	cfg.pool_options.chain_size = (uint32_t)chain_size;
	cfg.nr_pages = (uint64_t)nr_pages;
	cfg.limit_pages = (uint64_t)limit_pages;
	cfg.huge_above_max_zpage = huge_above;
	cfg.max_zpage_size = (uint32_t)max_zpage_size;
	cfg.counts_invalid_io = invalid_io;
	cfg.counts_writestall = writestall;
	cfg.idle_skips_same = skips_same;
	status = zram_create(&cfg, &codec, &self->zram);
	if (status == -EINVAL) {
		PyErr_Format(PyExc_ValueError, "zram: no zsmalloc class table of chain size %d",
			     chain_size);
		return -1;
	}
	if (status) {
		PyErr_NoMemory();
		return -1;
	}
	self->compressor = Py_NewRef(compressor);
	return 0;
}

static int zo_traverse(ZramObject *self, visitproc visit, void *arg)
{
	Py_VISIT(self->compressor);
	Py_VISIT(self->compressed);
	return 0;
}

static int zo_clear(ZramObject *self)
{
	Py_CLEAR(self->compressor);
	Py_CLEAR(self->compressed);
	return 0;
}

static void zo_dealloc(ZramObject *self)
{
	PyObject_GC_UnTrack(self);
	if (self->zram)
		zram_destroy(self->zram);
	zo_clear(self);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *get_clock(ZramObject *self, void *unused)
{
	(void)unused;
	return ready(self) ? PyLong_FromUnsignedLongLong(zram_clock(self->zram)) : NULL;
}

static int set_clock(ZramObject *self, PyObject *value, void *unused)
{
	unsigned long long clock;

	(void)unused;
	if (!ready(self))
		return -1;
	if (!value) {
		PyErr_SetString(PyExc_AttributeError, "clock_ns cannot be deleted");
		return -1;
	}
	clock = PyLong_AsUnsignedLongLong(value);
	if (clock == (unsigned long long)-1 && PyErr_Occurred())
		return -1;
	zram_set_clock(self->zram, clock);
	return 0;
}

static PyObject *get_huge_class_size(ZramObject *self, void *unused)
{
	(void)unused;
	return ready(self) ? PyLong_FromUnsignedLong(zram_huge_class_size(self->zram)) : NULL;
}

static PyGetSetDef zram_getset[] = {
	{ "clock_ns", (getter)get_clock, (setter)set_clock,
	  "the device's clock (ns), which stamps each access", NULL },
	{ "huge_class_size", (getter)get_huge_class_size, NULL,
	  "zs_huge_class_size of the profile's class table", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyMethodDef zram_methods[] = {
	{ "write", (PyCFunction)(void (*)(void))zo_write, METH_FASTCALL,
	  "write(index, page): stored, or False (failed_writes or invalid_io)" },
	{ "read", (PyCFunction)(void (*)(void))zo_read, METH_FASTCALL | METH_KEYWORDS,
	  "read(index, rw_page=False): the page, None for an invalid index" },
	{ "peek", (PyCFunction)zo_peek, METH_O, "the page read() gives, touching nothing" },
	{ "discard", (PyCFunction)zo_discard, METH_O, "slot-free notify of one page" },
	{ "compact", (PyCFunction)zo_compact, METH_NOARGS, "echo 1 > compact: pages freed" },
	{ "_mark_idle", (PyCFunction)zo_mark_idle, METH_O,
	  "_mark_idle(age_ns or None for all): slots marked" },
	{ "_total_pages", (PyCFunction)zo_total_pages, METH_NOARGS, "zs_get_total_pages" },
	{ "is_huge", (PyCFunction)zo_is_huge, METH_O, "whether a length is stored whole" },
	{ "_counts", (PyCFunction)zo_counts, METH_NOARGS, "zram.py's stats" },
	{ "_slot", (PyCFunction)zo_slot, METH_O,
	  "(handle, size, word, huge, ac_time, idle) or None" },
	{ "_indexes", (PyCFunction)zo_indexes, METH_NOARGS, "the stored slots' indexes" },
	{ "_ram_pages", (PyCFunction)zo_ram_pages, METH_NOARGS, "(used, peak) frames" },
	{ "_check", (PyCFunction)zo_check, METH_NOARGS, "the allocator's audit" },
	{ NULL, NULL, 0, NULL },
};

static PyTypeObject ZramType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zswapsim._engine.Zram",
	.tp_doc = "zram.c: Zram(compressor, *, backend, chain_size, nr_pages, ...); see "
		  "zram_native.py",
	.tp_basicsize = sizeof(ZramObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_traverse = (traverseproc)zo_traverse,
	.tp_clear = (inquiry)zo_clear,
	.tp_dealloc = (destructor)zo_dealloc,
	.tp_methods = zram_methods,
	.tp_getset = zram_getset,
	.tp_init = (initproc)zo_init,
	.tp_new = PyType_GenericNew,
};

int zram_module_add(PyObject *module)
{
	PyObject *errors = PyImport_ImportModule("zswapsim.errors");

	if (!errors)
		return -1;
	Invalid = PyObject_GetAttrString(errors, "Invalid");
	PoolCorrupted = PyObject_GetAttrString(errors, "PoolCorrupted");
	Py_DECREF(errors);
	if (!Invalid || !PoolCorrupted || PyType_Ready(&ZramType))
		return -1;
	return PyModule_AddObjectRef(module, "Zram", (PyObject *)&ZramType);
}
