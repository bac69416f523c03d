/*
 * module.c - zswapsim._kcompress: the kernel's page compressors (lz4.c,
 * lz4hc.c, lzo.c, 842.c) exposed to Python, one call per page.
 *
 * A compressor returns the kernel's bytes, or None where the kernel says the
 * output did not fit the destination size the caller gives (zswap 4096,
 * zram 8192).  A decompressor returns exactly `size` bytes or raises
 * ValueError: malformed input, or input that decodes to another length (the
 * kernel's loads demand a whole page).  The GIL is released while the C code
 * runs, so a caller's helper threads can compress side by side.  The same
 * functions are exported to C callers as a capsule (kcompress.h's
 * struct kcompress_api).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "kcompress.h"

/* No algorithm here writes more than n + n/8 + 80 bytes (842: 69 bits per 64). */
static size_t output_room(size_t n, size_t dlen)
{
	size_t bound = n + n / 8 + 80;

	return dlen < bound ? dlen : bound;
}

enum algorithm { LZ4, LZ4HC, LZO, LZO_RLE, SW842 };

static PyObject *compress(enum algorithm algorithm, PyObject *args)
{
	Py_buffer page;
	Py_ssize_t dlen;
	int level = algorithm == LZ4 ? 1 : 9;	/* lz4: the acceleration */
	PyObject *out;
	size_t length = 0;

	if (algorithm == LZ4 || algorithm == LZ4HC) {
		if (!PyArg_ParseTuple(args, "y*n|i", &page, &dlen, &level))
			return NULL;
	} else if (!PyArg_ParseTuple(args, "y*n", &page, &dlen)) {
		return NULL;
	}
	if (page.len > KC_MAX_INPUT || dlen < 0) {
		PyBuffer_Release(&page);
		PyErr_Format(PyExc_ValueError, "input of %zd bytes (at most %d) or dlen %zd < 0",
			     page.len, KC_MAX_INPUT, dlen);
		return NULL;
	}
	if (algorithm == LZ4 && (level < 1 || level > KC_LZ4_MAX_ACCELERATION)) {
		PyBuffer_Release(&page);
		PyErr_Format(PyExc_ValueError, "lz4 acceleration %d outside 1..%d", level,
			     KC_LZ4_MAX_ACCELERATION);
		return NULL;
	}
	out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)output_room((size_t)page.len,
								       (size_t)dlen));
	if (out) {
		const uint8_t *src = page.buf;
		uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
		size_t n = (size_t)page.len;

		Py_BEGIN_ALLOW_THREADS
		switch (algorithm) {
		case LZ4:
			length = kc_lz4_compress(src, n, dst, (size_t)dlen, (unsigned int)level);
			break;
		case LZ4HC:
			length = kc_lz4hc_compress(src, n, dst, (size_t)dlen, level);
			break;
		case LZO:
		case LZO_RLE:
			length = kc_lzo_compress(src, n, dst, (size_t)dlen, algorithm == LZO_RLE);
			break;
		case SW842:
			length = kc_842_compress(src, n, dst, (size_t)dlen);
			break;
		}
		Py_END_ALLOW_THREADS
	}
	PyBuffer_Release(&page);
	if (!out)
		return NULL;
	if (length == 0) {
		Py_DECREF(out);
		Py_RETURN_NONE;
	}
	if (_PyBytes_Resize(&out, (Py_ssize_t)length) < 0)
		return NULL;
	return out;
}

static PyObject *decompress(int (*decode)(const uint8_t *, size_t, uint8_t *, size_t,
					  size_t *), const char *name, PyObject *args)
{
	Py_buffer data;
	Py_ssize_t size;
	PyObject *out;
	size_t produced = 0;
	int status = -1;

	if (!PyArg_ParseTuple(args, "y*n", &data, &size))
		return NULL;
	if (size < 0 || size > KC_MAX_INPUT) {
		PyBuffer_Release(&data);
		PyErr_Format(PyExc_ValueError, "size %zd outside 0..%d", size, KC_MAX_INPUT);
		return NULL;
	}
	out = PyBytes_FromStringAndSize(NULL, size);
	if (out) {
		const uint8_t *src = data.buf;
		size_t n = (size_t)data.len;
		uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);

		Py_BEGIN_ALLOW_THREADS
		status = decode(src, n, dst, (size_t)size, &produced);
		Py_END_ALLOW_THREADS
	}
	PyBuffer_Release(&data);
	if (!out)
		return NULL;
	if (status != 0 || produced != (size_t)size) {
		Py_DECREF(out);
		if (status != 0)
			PyErr_Format(PyExc_ValueError, "%s: malformed input", name);
		else
			PyErr_Format(PyExc_ValueError, "%s: decoded %zu bytes, expected %zd",
				     name, produced, size);
		return NULL;
	}
	return out;
}

static PyObject *py_lz4_compress(PyObject *self, PyObject *args)
{
	(void)self;
	return compress(LZ4, args);
}

static PyObject *py_lz4hc_compress(PyObject *self, PyObject *args)
{
	(void)self;
	return compress(LZ4HC, args);
}

static PyObject *py_lzo_compress(PyObject *self, PyObject *args)
{
	(void)self;
	return compress(LZO, args);
}

static PyObject *py_lzorle_compress(PyObject *self, PyObject *args)
{
	(void)self;
	return compress(LZO_RLE, args);
}

static PyObject *py_842_compress(PyObject *self, PyObject *args)
{
	(void)self;
	return compress(SW842, args);
}

static PyObject *py_842_decompress(PyObject *self, PyObject *args)
{
	(void)self;
	return decompress(kc_842_decompress, "842", args);
}

static PyObject *py_lz4_decompress(PyObject *self, PyObject *args)
{
	(void)self;
	return decompress(kc_lz4_decompress, "lz4", args);
}

static PyObject *py_lzo_decompress(PyObject *self, PyObject *args)
{
	(void)self;
	return decompress(kc_lzo_decompress, "lzo", args);
}

static PyMethodDef methods[] = {
	{"lz4_compress", py_lz4_compress, METH_VARARGS,
	 "lz4_compress(page, dlen, acceleration=1): LZ4_compress_fast's bytes, None if no fit"},
	{"lz4hc_compress", py_lz4hc_compress, METH_VARARGS,
	 "lz4hc_compress(page, dlen, level=9): LZ4_compress_HC's bytes, None if no fit"},
	{"lzo_compress", py_lzo_compress, METH_VARARGS,
	 "lzo_compress(page, dlen): lzo1x_1_compress_safe's bytes, None if no fit"},
	{"lzorle_compress", py_lzorle_compress, METH_VARARGS,
	 "lzorle_compress(page, dlen): lzorle1x_1_compress_safe's bytes, None if no fit"},
	{"sw842_compress", py_842_compress, METH_VARARGS,
	 "sw842_compress(page, dlen): sw842_compress's bytes, None if they do not fit"},
	{"sw842_decompress", py_842_decompress, METH_VARARGS,
	 "sw842_decompress(data, size): exactly size bytes (CRC checked), or ValueError"},
	{"lz4_decompress", py_lz4_decompress, METH_VARARGS,
	 "lz4_decompress(data, size): exactly size bytes, or ValueError"},
	{"lzo_decompress", py_lzo_decompress, METH_VARARGS,
	 "lzo_decompress(data, size): lzo or lzo-rle (by its header), or ValueError"},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "_kcompress",
	"The kernel's lz4, lz4hc, lzo, lzo-rle and 842, byte for byte.", -1, methods,
	NULL, NULL, NULL, NULL,
};

static const struct kcompress_api api = {
	.lz4_compress = kc_lz4_compress,
	.lz4hc_compress = kc_lz4hc_compress,
	.lzo_compress = kc_lzo_compress,
	.sw842_compress = kc_842_compress,
	.lz4_decompress = kc_lz4_decompress,
	.lzo_decompress = kc_lzo_decompress,
	.sw842_decompress = kc_842_decompress,
};

PyMODINIT_FUNC PyInit__kcompress(void)
{
	PyObject *m = PyModule_Create(&module), *capsule;

	if (!m)
		return NULL;
	capsule = PyCapsule_New((void *)&api, KC_CAPSULE, NULL);
	if (!capsule || PyModule_AddObject(m, "_C_API", capsule)) {
		Py_XDECREF(capsule);
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
