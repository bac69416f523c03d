/*
 * replay.c - the compiled twin of zswapsim/replay.py's EventLoop: the swap
 * core over a block of trace events.  Each event becomes the calls the
 * kernel would make on every lane's Zswap (zswap_module.c's type, called
 * here in C without going back to Python between events): a store of the
 * event's image, a load checked against it, an invalidation, or a clean
 * page dropped again under exclusive loads.  A page a lane could not swap
 * out stays in that lane's `resident` dict; `live` holds the expected page
 * of every live offset ({swap type: {offset: page_key}}), which the end of
 * the replay checks (replay.py's check_conservation).
 *
 * A verified load whose pool entry holds exactly the bytes the compression
 * cache made of the expected image is not decompressed: compression is
 * deterministic, so those bytes decompress to that image (any other bytes
 * are decompressed and compared).  The counters are the same; the cost a
 * decompression would have taken is cpu_cost.py's to report, as always.
 *
 * The Python objects EventLoop keeps stay Python objects here (the lanes'
 * resident dicts, live, the page keys), so both loops leave the same state
 * behind them; what moves to C is the loop itself and the calls between.
 * Errors are replay.py's: its functions make the exceptions, this file
 * raises them.
 */
#include "zswap_module.h"
#include "compression_cache.h"

/* The trace's event records (trace/format.py's EVENT_DTYPE, little-endian). */
enum trace_op { OP_STORE = 1, OP_LOAD, OP_INVALIDATE_PAGE, OP_INVALIDATE_AREA, OP_DROP_CLEAN };
#define EVENT_SIZE 24
#define NO_IMAGE UINT32_C(0xFFFFFFFF)

struct event {
	uint8_t op, type;
	uint32_t image;
	uint64_t offset;
};

static uint64_t little_endian(const uint8_t *bytes, int n)
{
	uint64_t value = 0;

	while (n--)
		value = value << 8 | bytes[n];
	return value;
}

static void decode_event(const uint8_t *record, struct event *event)
{
	event->op = record[0];
	event->type = record[1];
	event->image = (uint32_t)little_endian(record + 4, 4);
	event->offset = little_endian(record + 8, 8);
}

typedef struct {
	PyObject_HEAD
	Py_ssize_t nlanes;
	ZswapObject **zswaps;
	PyObject **residents;		/* per lane, {(swap type, offset): page} */
	bool *exclusive;		/* per lane, its kernel's exclusive loads */
	PyObject *live;
	PyObject *note;			/* called at the first load, or None */
	PyObject *page_key, *load_failure, *inconsistent_load, *inconsistent_drop;
	bool verify;
	unsigned long long events;
} ReplayObject;

/* -- errors ------------------------------------------------------------------- */

/* Raise the exception `factory(*args)` makes; NULL. */
static PyObject *raise_made(PyObject *factory, const char *format, ...)
{
	PyObject *args, *exc;
	va_list va;

	va_start(va, format);
	args = Py_VaBuildValue(format, va);
	va_end(va);
	if (!args)
		return NULL;
	exc = PyObject_CallObject(factory, args);
	Py_DECREF(args);
	if (exc) {
		PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
		Py_DECREF(exc);
	}
	return NULL;
}

static PyObject *or_none(PyObject *obj)
{
	return obj ? obj : Py_None;
}

/* 0 when the event names a slot a Zswap has, else -1 with zswap_module.c's error */
static int check_slot(const struct event *event)
{
	if (event->type >= MAX_SWAPFILES) {
		PyErr_Format(PyExc_ValueError, "swap type %d out of range 0..%d", event->type,
			     MAX_SWAPFILES - 1);
		return -1;
	}
	if (event->offset > SWP_OFFSET_MASK) {
		PyErr_Format(PyExc_ValueError, "swap offset %llu out of range 0..2^%d-1",
			     (unsigned long long)event->offset, SWP_TYPE_SHIFT);
		return -1;
	}
	return 0;
}

/* -- the dicts: live offsets and resident pages ------------------------------------ */

/* live[type], borrowed; NULL without an error when absent and not `create` */
static PyObject *live_offsets(ReplayObject *self, uint32_t type, bool create)
{
	PyObject *key = PyLong_FromUnsignedLong(type), *offsets;

	if (!key)
		return NULL;
	offsets = PyDict_GetItemWithError(self->live, key);
	if (!offsets && create && !PyErr_Occurred()) {
		offsets = PyDict_New();
		if (offsets && PyDict_SetItem(self->live, key, offsets))
			Py_CLEAR(offsets);
		Py_XDECREF(offsets);	/* live holds it */
	}
	Py_DECREF(key);
	return offsets;
}

static PyObject *slot_key(const struct event *event)
{
	return Py_BuildValue("(kK)", (unsigned long)event->type,
			     (unsigned long long)event->offset);
}

/* Remove `key` from `dict` if there; 0 or -1 with an error. */
static int discard(PyObject *dict, PyObject *key)
{
	int present = PyDict_Contains(dict, key);

	return present <= 0 ? present : PyDict_DelItem(dict, key);
}

/* The lane's resident page at the event's slot, borrowed; NULL when none
 * (*error then says whether that is an error). */
static PyObject *resident_page(PyObject *resident, const struct event *event, int *error)
{
	PyObject *slot, *page;

	*error = 0;
	if (!PyDict_GET_SIZE(resident))
		return NULL;
	if (!(slot = slot_key(event))) {
		*error = -1;
		return NULL;
	}
	page = PyDict_GetItemWithError(resident, slot);
	Py_DECREF(slot);
	if (!page && PyErr_Occurred())
		*error = -1;
	return page;
}

static int forget_resident(PyObject *resident, const struct event *event)
{
	PyObject *slot;
	int status;

	if (!PyDict_GET_SIZE(resident))
		return 0;
	if (!(slot = slot_key(event)))
		return -1;
	status = discard(resident, slot);
	Py_DECREF(slot);
	return status;
}

static int keep_resident(PyObject *resident, const struct event *event, PyObject *page)
{
	PyObject *slot = slot_key(event);
	int status = slot ? PyDict_SetItem(resident, slot, page) : -1;

	Py_XDECREF(slot);
	return status;
}

/* -- the events --------------------------------------------------------------------- */

/* The image `id`, a new reference; NULL without an error when none is live. */
static PyObject *image_named(PyObject *images, uint32_t id)
{
	PyObject *key, *image;

	if (id == NO_IMAGE)
		return NULL;
	if (!(key = PyLong_FromUnsignedLong(id)))
		return NULL;
	image = PyObject_GetItem(images, key);
	Py_DECREF(key);
	if (!image && PyErr_ExceptionMatches(PyExc_KeyError))
		PyErr_Clear();
	return image;
}

/* The page bytes of `image`, into `view`; -1 with an error unless PAGE_SIZE. */
static int page_view(PyObject *image, Py_buffer *view)
{
	if (PyObject_GetBuffer(image, view, PyBUF_SIMPLE))
		return -1;
	if (view->len != PAGE_SIZE) {
		PyErr_Format(PyExc_ValueError, "a page is %u bytes, not %zd", PAGE_SIZE,
			     view->len);
		PyBuffer_Release(view);
		return -1;
	}
	return 0;
}

/* The lane's compression of the block's new image `index` made ahead, a new
 * reference (None when there is none). */
static PyObject *ahead_of(PyObject *results, long long index)
{
	Py_ssize_t n;

	if (results == Py_None || index < 0)
		return Py_NewRef(Py_None);
	if ((n = PySequence_Size(results)) < 0)
		return NULL;
	return index < n ? PySequence_GetItem(results, (Py_ssize_t)index) : Py_NewRef(Py_None);
}

static int run_store(ReplayObject *self, const struct event *event, PyObject *images,
		     long long first_image, PyObject *const *aheads)
{
	PyObject *image = image_named(images, event->image), *key = NULL, *offsets, *number;
	Py_buffer view;
	Py_ssize_t lane;
	int status = -1;

	if (!image) {
		if (!PyErr_Occurred())
			PyErr_Format(PyExc_KeyError, "image %lu", (unsigned long)event->image);
		return -1;
	}
	if (page_view(image, &view)) {
		Py_DECREF(image);
		return -1;
	}
	if (!(key = PyObject_CallOneArg(self->page_key, image)))
		goto out;
	for (lane = 0; lane < self->nlanes; lane++) {
		PyObject *ahead = ahead_of(aheads[lane], (long long)event->image - first_image);
		int result = 0, stored;

		if (!ahead || forget_resident(self->residents[lane], event)) {
			Py_XDECREF(ahead);
			goto out;
		}
		stored = zswap_object_store(self->zswaps[lane], event->type, event->offset, image,
					    view.buf, key, ahead, &result);
		Py_DECREF(ahead);
		if (stored) {
			zswap_failed(stored);
			goto out;
		}
		if (result == ZSWAP_NOT_OUT &&
		    keep_resident(self->residents[lane], event, image))
			goto out;
	}
	if (!(offsets = live_offsets(self, event->type, true)) ||
	    !(number = PyLong_FromUnsignedLongLong(event->offset)))
		goto out;
	status = PyDict_SetItem(offsets, number, key);
	Py_DECREF(number);
out:
	PyBuffer_Release(&view);
	Py_XDECREF(key);
	Py_DECREF(image);
	return status;
}

/* Whether a lane's load gave the trace's image: `page` a resident page or
 * NULL, else `found` and the loaded bytes; -1 with an error. */
static int load_matches(PyObject *page, int found, const uint8_t *loaded, PyObject *image,
			const Py_buffer *image_view)
{
	Py_buffer view;
	int same;

	if (!page)
		return found ? image && !memcmp(loaded, image_view->buf, PAGE_SIZE) : !image;
	if (!image)
		return 0;
	if (PyObject_GetBuffer(page, &view, PyBUF_SIMPLE))
		return -1;
	same = view.len == PAGE_SIZE && !memcmp(view.buf, image_view->buf, PAGE_SIZE);
	PyBuffer_Release(&view);
	return same;
}

/* Tell the lane's zswap the compressed form of the image a verified load
 * expects, when its compression cache still has it: a pool entry with those
 * bytes decompresses to the image, so the load need not decompress it, and
 * an entry whose bytes differ in any way is decompressed and checked.
 * `image` is the page whose page_key is `key`.  Returns the reference to
 * release after the load, or NULL. */
static PyObject *know_image(ZswapObject *zswap, PyObject *key, const uint8_t *image)
{
	PyObject *data;

	if (!PyObject_TypeCheck(zswap->compressor, &CompressionCacheType))
		return NULL;
	if (!(data = cache_cached(zswap->compressor, key)))
		return NULL;
	Py_INCREF(data);	/* the load may not evict it, but holds it anyway */
	zswap->known_data = (const uint8_t *)PyBytes_AS_STRING(data);
	zswap->known_len = (size_t)PyBytes_GET_SIZE(data);
	zswap->known_page = image;
	return data;
}

/* Whether `key` is the page_key of `image`: 1, 0, or -1 with an error.  A
 * trace whose load names another image than its store left is the trace's
 * fault, which only a real decompression then shows. */
static int is_key_of(ReplayObject *self, PyObject *image, PyObject *key)
{
	PyObject *own = PyObject_CallOneArg(self->page_key, image);
	int same;

	if (!own)
		return -1;
	same = PyObject_RichCompareBool(own, key, Py_EQ);
	Py_DECREF(own);
	return same;
}

static int run_load(ReplayObject *self, const struct event *event, PyObject *images)
{
	uint8_t loaded[PAGE_SIZE];
	PyObject *image, *expected = NULL, *offsets, *number;
	Py_buffer view = { 0 };
	Py_ssize_t lane;
	int status = -1, same_key = 0;

	if (self->note != Py_None) {
		PyObject *note = self->note, *result;

		self->note = Py_NewRef(Py_None);
		result = PyObject_CallNoArgs(note);
		Py_DECREF(note);
		if (!result)
			return -1;
		Py_DECREF(result);
	}
	image = image_named(images, event->image);
	if (!image && PyErr_Occurred())
		return -1;
	if (image && page_view(image, &view)) {
		Py_DECREF(image);
		return -1;
	}
	if (self->verify) {
		if (!(offsets = live_offsets(self, event->type, false)) && PyErr_Occurred())
			goto out;
		if (offsets) {
			if (!(number = PyLong_FromUnsignedLongLong(event->offset)))
				goto out;
			expected = PyDict_GetItemWithError(offsets, number);
			Py_DECREF(number);
			if (!expected && PyErr_Occurred())
				goto out;
		}
		if (!image != !expected) {
			raise_made(self->inconsistent_load, "(KkKOO)", self->events,
				   (unsigned long)event->type, (unsigned long long)event->offset,
				   or_none(image), or_none(expected));
			goto out;
		}
		if (image && (same_key = is_key_of(self, image, expected)) < 0)
			goto out;
	}
	for (lane = 0; lane < self->nlanes; lane++) {
		int error, found = 0, same;
		PyObject *page = resident_page(self->residents[lane], event, &error);

		if (error)
			goto out;
		if (!page) {
			ZswapObject *zswap = self->zswaps[lane];
			PyObject *known = same_key > 0 ? know_image(zswap, expected, view.buf) : NULL;
			int loading;

			loading = zswap_load(zswap->z, event->type, event->offset, loaded, &found);
			zswap->known_data = zswap->known_page = NULL;
			Py_XDECREF(known);
			if (loading) {
				zswap_failed(loading);
				goto out;
			}
		}
		if (!self->verify)
			continue;
		if ((same = load_matches(page, found, loaded, image, &view)) < 0)
			goto out;
		if (!same) {
			PyObject *got = page ? Py_NewRef(page) : found
				? PyBytes_FromStringAndSize((const char *)loaded, PAGE_SIZE)
				: Py_NewRef(Py_None);

			if (got)
				raise_made(self->load_failure, "(KkKNOO)", self->events,
					   (unsigned long)event->type,
					   (unsigned long long)event->offset, got, or_none(image),
					   or_none(expected));
			goto out;
		}
	}
	status = 0;
out:
	if (image) {
		PyBuffer_Release(&view);
		Py_DECREF(image);
	}
	return status;
}

static int run_invalidate_page(ReplayObject *self, const struct event *event)
{
	PyObject *offsets, *number;
	Py_ssize_t lane;
	int status;

	for (lane = 0; lane < self->nlanes; lane++) {
		if (forget_resident(self->residents[lane], event))
			return -1;
		status = zswap_invalidate_page(self->zswaps[lane]->z, event->type, event->offset);
		if (status)
			return zswap_failed(status), -1;
	}
	if (!(offsets = live_offsets(self, event->type, false)))
		return PyErr_Occurred() ? -1 : 0;
	if (!(number = PyLong_FromUnsignedLongLong(event->offset)))
		return -1;
	status = discard(offsets, number);
	Py_DECREF(number);
	return status;
}

/* replay.py's Lane.drop_clean on every lane whose kernel loads exclusively. */
static int run_drop_clean(ReplayObject *self, const struct event *event)
{
	uint8_t page[PAGE_SIZE];
	Py_ssize_t lane;

	if (self->verify) {
		PyObject *offsets = live_offsets(self, event->type, false), *number;
		int present = 0;

		if (!offsets && PyErr_Occurred())
			return -1;
		if (offsets) {
			if (!(number = PyLong_FromUnsignedLongLong(event->offset)))
				return -1;
			present = PyDict_Contains(offsets, number);
			Py_DECREF(number);
			if (present < 0)
				return -1;
		}
		if (!present)
			return raise_made(self->inconsistent_drop, "(KkK)", self->events,
					  (unsigned long)event->type,
					  (unsigned long long)event->offset), -1;
	}
	for (lane = 0; lane < self->nlanes; lane++) {
		struct zswap *z = self->zswaps[lane]->z;
		PyObject *kept, *copy;
		int error, found = 0, result = 0, status;

		if (!self->exclusive[lane])
			continue;
		kept = resident_page(self->residents[lane], event, &error);
		if (error)
			return -1;
		if (kept || zswap_where(z, event->type, event->offset) != WHERE_RAM)
			continue;
		if ((status = zswap_peek(z, event->type, event->offset, page, &found)) ||
		    (status = zswap_evict_loaded(z, event->type, event->offset, &result)))
			return zswap_failed(status), -1;
		if (result != ZSWAP_NOT_OUT)
			continue;
		copy = found ? PyBytes_FromStringAndSize((const char *)page, PAGE_SIZE)
			: Py_NewRef(Py_None);
		status = copy ? keep_resident(self->residents[lane], event, copy) : -1;
		Py_XDECREF(copy);
		if (status)
			return -1;
	}
	return 0;
}

/* Drop a lane's resident pages of swap type `type`. */
static int forget_area(PyObject *resident, uint32_t type)
{
	PyObject *slot, *page, *doomed;
	Py_ssize_t pos = 0, i;
	int status = 0;

	if (!PyDict_GET_SIZE(resident))
		return 0;
	if (!(doomed = PyList_New(0)))
		return -1;
	while (PyDict_Next(resident, &pos, &slot, &page)) {
		PyObject *first = PyTuple_Check(slot) && PyTuple_GET_SIZE(slot) == 2
			? PyTuple_GET_ITEM(slot, 0) : NULL;
		long value = first ? PyLong_AsLong(first) : -1;

		if (value == -1 && PyErr_Occurred()) {
			Py_DECREF(doomed);
			return -1;
		}
		if (value == (long)type && PyList_Append(doomed, slot)) {
			Py_DECREF(doomed);
			return -1;
		}
	}
	for (i = 0; !status && i < PyList_GET_SIZE(doomed); i++)
		status = PyDict_DelItem(resident, PyList_GET_ITEM(doomed, i));
	Py_DECREF(doomed);
	return status;
}

static int run_invalidate_area(ReplayObject *self, const struct event *event)
{
	PyObject *key;
	Py_ssize_t lane;
	int status;

	for (lane = 0; lane < self->nlanes; lane++) {
		if (forget_area(self->residents[lane], event->type))
			return -1;
		status = zswap_invalidate_area(self->zswaps[lane]->z, event->type);
		if (status)
			return zswap_failed(status), -1;
	}
	if (!(key = PyLong_FromUnsignedLong(event->type)))
		return -1;
	status = discard(self->live, key);
	Py_DECREF(key);
	return status;
}

/* run(events, images, first_image, aheads, begin, end): EventLoop.run */
static PyObject *replay_run(ReplayObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	Py_buffer records;
	PyObject *images, *aheads;
	long long first_image;
	Py_ssize_t begin, end, count, i;
	int status = 0;

	if (!self->zswaps) {
		PyErr_SetString(PyExc_ValueError, "the Replay's __init__ has not run");
		return NULL;
	}
	if (nargs != 6)
		return PyErr_Format(PyExc_TypeError, "expected 6 arguments, got %zd", nargs);
	images = args[1];
	first_image = PyLong_AsLongLong(args[2]);
	begin = PyLong_AsSsize_t(args[4]);
	end = PyLong_AsSsize_t(args[5]);
	if (PyErr_Occurred())
		return NULL;
	if (!(aheads = PySequence_Fast(args[3], "aheads is a sequence")))
		return NULL;
	if (PySequence_Fast_GET_SIZE(aheads) != self->nlanes) {
		Py_DECREF(aheads);
		return PyErr_Format(PyExc_ValueError, "%zd aheads for %zd lanes",
				    PySequence_Fast_GET_SIZE(aheads), self->nlanes);
	}
	if (PyObject_GetBuffer(args[0], &records, PyBUF_SIMPLE)) {
		Py_DECREF(aheads);
		return NULL;
	}
	count = records.len / EVENT_SIZE;
	if (records.len % EVENT_SIZE || begin < 0 || begin > end || end > count) {
		PyErr_Format(PyExc_ValueError, "events [%zd, %zd) of a block of %zd bytes", begin,
			     end, records.len);
		status = -1;
	}
	for (i = begin; !status && i < end; i++) {
		struct event event;

		decode_event((const uint8_t *)records.buf + i * EVENT_SIZE, &event);
		self->events++;
		if (event.op != OP_INVALIDATE_AREA && (status = check_slot(&event)))
			break;
		switch (event.op) {
		case OP_STORE:
			status = run_store(self, &event, images, first_image,
					   PySequence_Fast_ITEMS(aheads));
			break;
		case OP_LOAD:
			status = run_load(self, &event, images);
			break;
		case OP_INVALIDATE_PAGE:
			status = run_invalidate_page(self, &event);
			break;
		case OP_DROP_CLEAN:
			status = run_drop_clean(self, &event);
			break;
		case OP_INVALIDATE_AREA:
			status = event.type < MAX_SWAPFILES ? run_invalidate_area(self, &event)
				: check_slot(&event);
			break;
		}
	}
	PyBuffer_Release(&records);
	Py_DECREF(aheads);
	if (status)
		return NULL;
	Py_RETURN_NONE;
}

/* -- construction ------------------------------------------------------------------- */

static void release_lanes(ReplayObject *self)
{
	Py_ssize_t lane;

	for (lane = 0; lane < self->nlanes; lane++) {
		if (self->zswaps)
			Py_CLEAR(self->zswaps[lane]);
		if (self->residents)
			Py_CLEAR(self->residents[lane]);
	}
	PyMem_Free(self->zswaps);
	PyMem_Free(self->residents);
	PyMem_Free(self->exclusive);
	self->zswaps = NULL;
	self->residents = NULL;
	self->exclusive = NULL;
	self->nlanes = 0;
}

/* Replay(zswaps, residents, exclusive, live, verify, note, page_key,
 *        load_failure, inconsistent_load, inconsistent_drop) */
static int replay_init(ReplayObject *self, PyObject *args, PyObject *kwargs)
{
	static char *keywords[] = { "zswaps", "residents", "exclusive", "live", "verify", "note",
				    "page_key", "load_failure", "inconsistent_load",
				    "inconsistent_drop", NULL };
	PyObject *zswaps, *residents, *exclusive, *live, *note, *page_key, *load_failure,
		*inconsistent_load, *inconsistent_drop;
	Py_ssize_t n, lane;
	int verify;

	if (self->zswaps) {
		PyErr_SetString(PyExc_TypeError, "a Replay is initialised once");
		return -1;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!O!O!pOOOOO", keywords,
					 &PyList_Type, &zswaps, &PyList_Type, &residents,
					 &PyList_Type, &exclusive, &PyDict_Type, &live, &verify,
					 &note, &page_key, &load_failure, &inconsistent_load,
					 &inconsistent_drop))
		return -1;
	n = PyList_GET_SIZE(zswaps);
	if (PyList_GET_SIZE(residents) != n || PyList_GET_SIZE(exclusive) != n) {
		PyErr_SetString(PyExc_ValueError, "one resident dict and exclusive flag per zswap");
		return -1;
	}
	self->zswaps = PyMem_Calloc(n ? n : 1, sizeof(*self->zswaps));
	self->residents = PyMem_Calloc(n ? n : 1, sizeof(*self->residents));
	self->exclusive = PyMem_Calloc(n ? n : 1, sizeof(*self->exclusive));
	if (!self->zswaps || !self->residents || !self->exclusive) {
		release_lanes(self);
		PyErr_NoMemory();
		return -1;
	}
	self->nlanes = n;
	for (lane = 0; lane < n; lane++) {
		PyObject *zswap = PyList_GET_ITEM(zswaps, lane);
		PyObject *resident = PyList_GET_ITEM(residents, lane);
		int flag = PyObject_IsTrue(PyList_GET_ITEM(exclusive, lane));

		if (!PyObject_TypeCheck(zswap, &ZswapType) || !((ZswapObject *)zswap)->z ||
		    !PyDict_Check(resident) || flag < 0) {
			if (flag >= 0)
				PyErr_SetString(PyExc_TypeError, "a lane is an initialised "
						"_engine.Zswap with a resident dict");
			release_lanes(self);
			return -1;
		}
		self->zswaps[lane] = (ZswapObject *)Py_NewRef(zswap);
		self->residents[lane] = Py_NewRef(resident);
		self->exclusive[lane] = flag;
		/* one page store for the lanes' swap devices; a lane whose device
		 * already holds pages keeps its own, which changes no result */
		if (lane)
			(void)zswap_share_swap_pages(self->zswaps[lane]->z, self->zswaps[0]->z);
	}
	self->live = Py_NewRef(live);
	self->note = Py_NewRef(note);
	self->page_key = Py_NewRef(page_key);
	self->load_failure = Py_NewRef(load_failure);
	self->inconsistent_load = Py_NewRef(inconsistent_load);
	self->inconsistent_drop = Py_NewRef(inconsistent_drop);
	self->verify = verify;
	return 0;
}

static int replay_traverse(ReplayObject *self, visitproc visit, void *arg)
{
	Py_ssize_t lane;

	for (lane = 0; lane < self->nlanes; lane++) {
		Py_VISIT(self->zswaps[lane]);
		Py_VISIT(self->residents[lane]);
	}
	Py_VISIT(self->live);
	Py_VISIT(self->note);
	Py_VISIT(self->page_key);
	Py_VISIT(self->load_failure);
	Py_VISIT(self->inconsistent_load);
	Py_VISIT(self->inconsistent_drop);
	return 0;
}

static int replay_clear(ReplayObject *self)
{
	release_lanes(self);
	Py_CLEAR(self->live);
	Py_CLEAR(self->note);
	Py_CLEAR(self->page_key);
	Py_CLEAR(self->load_failure);
	Py_CLEAR(self->inconsistent_load);
	Py_CLEAR(self->inconsistent_drop);
	return 0;
}

static void replay_dealloc(ReplayObject *self)
{
	PyObject_GC_UnTrack(self);
	replay_clear(self);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *get_events(ReplayObject *self, void *unused)
{
	(void)unused;
	return PyLong_FromUnsignedLongLong(self->events);
}

static PyGetSetDef replay_getset[] = {
	{ "events", (getter)get_events, NULL, "the events run", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyMethodDef replay_methods[] = {
	{ "run", (PyCFunction)(void (*)(void))replay_run, METH_FASTCALL,
	  "run(events, images, first_image, aheads, begin, end): EventLoop.run" },
	{ NULL, NULL, 0, NULL },
};

static PyTypeObject ReplayType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zswapsim._engine.Replay",
	.tp_doc = "replay.c: EventLoop's compiled twin; see replay.py's NativeEventLoop",
	.tp_basicsize = sizeof(ReplayObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_traverse = (traverseproc)replay_traverse,
	.tp_clear = (inquiry)replay_clear,
	.tp_dealloc = (destructor)replay_dealloc,
	.tp_methods = replay_methods,
	.tp_getset = replay_getset,
	.tp_init = (initproc)replay_init,
	.tp_new = PyType_GenericNew,
};

int replay_module_add(PyObject *module)
{
	if (PyType_Ready(&ReplayType))
		return -1;
	return PyModule_AddObjectRef(module, "Replay", (PyObject *)&ReplayType);
}
