/*
 * 842.c - Linux's software 842: sw842_compress() from
 * lib/842/842_compress.c (6.1.192), rewritten from
 * shared/KERNEL-COMPRESSORS.md section 3.7, and a decoder for the format
 * lib/842/842.h describes, which checks the stream's CRC as
 * sw842_decompress() does.
 *
 * The input is cut into 8-byte blocks.  A block equal to the one before is
 * counted into a repeat (up to 64 per template), an all-zero block costs a
 * 5-bit template, and any other takes the first of 26 templates, in the
 * kernel's order, whose index arguments can all be served: each half,
 * quarter or the whole block either found in a ring of recent values
 * (8-, 9- or 8-bit index) or written raw.  After every block its values go
 * into the rings at slots fixed by its position.  The stream ends with an
 * end template, a big-endian CRC-32 of the input, and zero padding to a
 * multiple of 8 bytes; it did not fit when that length exceeds dlen.
 * No kernel run exists for 842: no zram or zswap data in shared/fidelity.
 */
#include "kcompress.h"

#define OP_BITS 5
#define OP_REPEAT 0x1b
#define OP_ZEROS 0x1c
#define OP_SHORT_DATA 0x1d
#define OP_END 0x1e
#define REPEAT_BITS 6
#define REPEAT_MAX 64
#define SHORT_DATA_BITS 3
#define CRC_BITS 32
#define I2_BITS 8
#define I4_BITS 9
#define I8_BITS 8
#define RING2 (1 << I2_BITS)
#define RING4 (1 << I4_BITS)
#define RING8 (1 << I8_BITS)

/* An argument: its size in bytes, raw data (D) or a ring index (I). */
enum { D = 0, I = 1 };
struct argument {
	uint8_t size, kind;
};

struct template {
	uint8_t code, count;
	struct argument args[4];
};

#define A(kind, size) { size, kind }
/* The kernel's order: the cheapest first, raw D8 last as the fallback. */
static const struct template templates[] = {
	{ 0x19, 1, { A(I, 8) } },
	{ 0x18, 2, { A(I, 4), A(I, 4) } },
	{ 0x17, 3, { A(I, 4), A(I, 2), A(I, 2) } },
	{ 0x13, 3, { A(I, 2), A(I, 2), A(I, 4) } },
	{ 0x12, 4, { A(I, 2), A(I, 2), A(I, 2), A(I, 2) } },
	{ 0x16, 3, { A(I, 4), A(I, 2), A(D, 2) } },
	{ 0x15, 3, { A(I, 4), A(D, 2), A(I, 2) } },
	{ 0x0e, 3, { A(I, 2), A(D, 2), A(I, 4) } },
	{ 0x09, 3, { A(D, 2), A(I, 2), A(I, 4) } },
	{ 0x11, 4, { A(I, 2), A(I, 2), A(I, 2), A(D, 2) } },
	{ 0x10, 4, { A(I, 2), A(I, 2), A(D, 2), A(I, 2) } },
	{ 0x0d, 4, { A(I, 2), A(D, 2), A(I, 2), A(I, 2) } },
	{ 0x08, 4, { A(D, 2), A(I, 2), A(I, 2), A(I, 2) } },
	{ 0x14, 2, { A(I, 4), A(D, 4) } },
	{ 0x04, 2, { A(D, 4), A(I, 4) } },
	{ 0x0f, 3, { A(I, 2), A(I, 2), A(D, 4) } },
	{ 0x0c, 4, { A(I, 2), A(D, 2), A(I, 2), A(D, 2) } },
	{ 0x0b, 3, { A(I, 2), A(D, 4), A(I, 2) } },
	{ 0x07, 4, { A(D, 2), A(I, 2), A(I, 2), A(D, 2) } },
	{ 0x06, 4, { A(D, 2), A(I, 2), A(D, 2), A(I, 2) } },
	{ 0x03, 3, { A(D, 4), A(I, 2), A(I, 2) } },
	{ 0x0a, 3, { A(I, 2), A(D, 2), A(D, 4) } },
	{ 0x05, 3, { A(D, 2), A(I, 2), A(D, 4) } },
	{ 0x02, 3, { A(D, 4), A(I, 2), A(D, 2) } },
	{ 0x01, 3, { A(D, 4), A(D, 2), A(I, 2) } },
	{ 0x00, 1, { A(D, 8) } },
};
#define TEMPLATES (sizeof(templates) / sizeof(templates[0]))

/* Tables filled on first use, one per thread so no two threads race. */
static _Thread_local uint32_t crc_table[256];

/* crc32_be: polynomial 0x04C11DB7, most significant bit first, no inversion. */
static uint32_t crc32_be(const uint8_t *p, size_t n)
{
	uint32_t crc = 0;

	if (!crc_table[1]) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i << 24;

			for (int bit = 0; bit < 8; bit++)
				c = c & 0x80000000U ? (c << 1) ^ 0x04c11db7U : c << 1;
			crc_table[i] = c;
		}
	}
	while (n--)
		crc = (crc << 8) ^ crc_table[(crc >> 24) ^ *p++];
	return crc;
}

static uint64_t read_be(const uint8_t *p, int size)
{
	uint64_t v = 0;

	for (int i = 0; i < size; i++)
		v = v << 8 | p[i];
	return v;
}

/* Bits, most significant first, into a buffer known to be large enough. */
struct bit_writer {
	uint8_t *out;
	size_t length;		/* whole bytes written */
	uint64_t pending;	/* the low `count` bits, not yet a whole byte */
	int count;
};

static void put_bits(struct bit_writer *w, uint64_t value, int count)
{
	if (count > 32) {
		put_bits(w, value >> 32, count - 32);
		count = 32;
	}
	w->pending = w->pending << count | (value & ((1ULL << count) - 1));
	w->count += count;
	while (w->count >= 8) {
		w->count -= 8;
		w->out[w->length++] = (uint8_t)(w->pending >> w->count);
	}
	w->pending &= (1ULL << w->count) - 1;
}

/* The last bits, zero-filled to a byte. */
static void flush_bits(struct bit_writer *w)
{
	if (w->count)
		put_bits(w, 0, 8 - w->count);
}

/*
 * The rings as value lookups: a slot can be found once written, and a value
 * held by several slots is found in the one written last (the kernel's
 * newest-first hash buckets).  Chains through a small hash of the value.
 */
#define BUCKETS 1024
struct ring {
	uint64_t value[RING4];
	int16_t next[RING4], prev[RING4], head[BUCKETS];
	uint8_t written[RING4];
};

static unsigned int bucket_of(uint64_t v)
{
	return (unsigned int)((v * 0x9e3779b97f4a7c15ULL) >> 54);	/* 10 bits */
}

static void ring_reset(struct ring *r)
{
	memset(r->written, 0, sizeof(r->written));
	memset(r->head, -1, sizeof(r->head));
}

static int ring_find(const struct ring *r, uint64_t v)
{
	for (int slot = r->head[bucket_of(v)]; slot >= 0; slot = r->next[slot])
		if (r->value[slot] == v)
			return slot;
	return -1;
}

static void ring_write(struct ring *r, int slot, uint64_t v)
{
	if (r->written[slot]) {
		if (r->prev[slot] >= 0)
			r->next[r->prev[slot]] = r->next[slot];
		else
			r->head[bucket_of(r->value[slot])] = r->next[slot];
		if (r->next[slot] >= 0)
			r->prev[r->next[slot]] = r->prev[slot];
	}
	r->value[slot] = v;
	r->written[slot] = 1;
	r->prev[slot] = -1;
	r->next[slot] = r->head[bucket_of(v)];
	if (r->next[slot] >= 0)
		r->prev[r->next[slot]] = (int16_t)slot;
	r->head[bucket_of(v)] = (int16_t)slot;
}

struct rings {
	struct ring by_size[9];	/* indexed by 2, 4, 8 */
};

static _Thread_local struct rings rings;

static void update_rings(struct rings *rs, const uint8_t *block, size_t pos)
{
	ring_write(&rs->by_size[8], (int)((pos >> 3) % RING8), read_be(block, 8));
	for (int i = 0; i < 2; i++)
		ring_write(&rs->by_size[4], (int)((pos >> 2) % RING4) + i, read_be(block + 4 * i, 4));
	for (int i = 0; i < 4; i++)
		ring_write(&rs->by_size[2], (int)((pos >> 1) % RING2) + i, read_be(block + 2 * i, 2));
}

static int index_bits(int size)
{
	return size == 2 ? I2_BITS : size == 4 ? I4_BITS : I8_BITS;
}

/* Bit of (size, part) in a block's set of values found in the rings. */
static unsigned int found_bit(int size, int part)
{
	return 1U << (size == 2 ? part : size == 4 ? 4 + part : 6);
}

/* The values each template needs found. */
static _Thread_local unsigned int needs[TEMPLATES];

static void compute_needs(void)
{
	for (size_t t = 0; t < TEMPLATES; t++) {
		int offset = 0;

		for (int a = 0; a < templates[t].count; a++) {
			const struct argument *arg = &templates[t].args[a];

			if (arg->kind == I)
				needs[t] |= found_bit(arg->size, offset / arg->size);
			offset += arg->size;
		}
	}
}

static void put_block(struct bit_writer *w, struct rings *rs, const uint8_t *block)
{
	int found[9][4];
	unsigned int have = 0;
	size_t t;

	for (int size = 2; size <= 8; size *= 2)
		for (int part = 0; part < 8 / size; part++) {
			found[size][part] = ring_find(&rs->by_size[size],
						      read_be(block + size * part, size));
			if (found[size][part] >= 0)
				have |= found_bit(size, part);
		}
	/* The first template whose indices can all be given; D8 the fallback. */
	for (t = 0; t < TEMPLATES - 1; t++)
		if ((needs[t] & ~have) == 0)
			break;
	put_bits(w, templates[t].code, OP_BITS);
	for (int a = 0, offset = 0; a < templates[t].count; a++) {
		const struct argument *arg = &templates[t].args[a];

		if (arg->kind == I)
			put_bits(w, (uint64_t)found[arg->size][offset / arg->size],
				 index_bits(arg->size));
		else
			put_bits(w, read_be(block + offset, arg->size), 8 * arg->size);
		offset += arg->size;
	}
}

size_t kc_842_compress(const uint8_t *src, size_t n, uint8_t *dst, size_t dlen)
{
	struct rings *rs = &rings;
	/* Worst case: 69 bits per block, short data, end, CRC, padding. */
	static _Thread_local uint8_t stream[KC_MAX_INPUT / 8 * 69 / 8 + 64];
	struct bit_writer w = { stream, 0, 0, 0 };
	unsigned int repeats = 0;
	size_t pos, length;

	if (!needs[TEMPLATES - 2])
		compute_needs();
	for (int size = 2; size <= 8; size *= 2)
		ring_reset(&rs->by_size[size]);
	for (pos = 0; pos + 8 <= n; pos += 8) {
		const uint8_t *block = src + pos;

		if (pos > 0 && memcmp(block, block - 8, 8) == 0) {
			if (++repeats < REPEAT_MAX) {
				update_rings(rs, block, pos);
				continue;
			}
			/* The 64th repeat: flushed, and this block absorbed in it. */
			put_bits(&w, OP_REPEAT, OP_BITS);
			put_bits(&w, repeats - 1, REPEAT_BITS);
			repeats = 0;
			update_rings(rs, block, pos);
			continue;
		}
		if (repeats) {
			put_bits(&w, OP_REPEAT, OP_BITS);
			put_bits(&w, repeats - 1, REPEAT_BITS);
			repeats = 0;
		}
		if (read_be(block, 8) == 0)
			put_bits(&w, OP_ZEROS, OP_BITS);
		else
			put_block(&w, rs, block);
		update_rings(rs, block, pos);
	}
	if (repeats) {
		put_bits(&w, OP_REPEAT, OP_BITS);
		put_bits(&w, repeats - 1, REPEAT_BITS);
	}
	if (n - pos) {
		put_bits(&w, OP_SHORT_DATA, OP_BITS);
		put_bits(&w, n - pos, SHORT_DATA_BITS);
		for (; pos < n; pos++)
			put_bits(&w, src[pos], 8);
	}
	put_bits(&w, OP_END, OP_BITS);
	put_bits(&w, crc32_be(src, n), CRC_BITS);
	flush_bits(&w);
	length = w.length;
	memset(stream + length, 0, (8 - length % 8) % 8);
	length += (8 - length % 8) % 8;
	/* Every kernel write checks the room it touches: no fit, no output. */
	if (length > dlen)
		return 0;
	memcpy(dst, stream, length);
	return length;
}

struct bit_reader {
	const uint8_t *in;
	size_t bits, bit;	/* available, consumed */
};

static int get_bits(struct bit_reader *r, int count, uint64_t *value)
{
	uint64_t v = 0;

	if ((size_t)count > r->bits - r->bit)
		return 0;
	while (count--) {
		v = v << 1 | ((r->in[r->bit >> 3] >> (7 - (r->bit & 7))) & 1);
		r->bit++;
	}
	*value = v;
	return 1;
}

static void write_be(uint8_t *p, uint64_t v, int size)
{
	for (int i = size - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/*
 * An index names a ring slot, and a slot holds the value of the latest
 * block written at a position it maps to: found in the output already
 * decoded, before the current block.
 */
static int copy_indexed(uint8_t *dst, size_t block_start, uint8_t *to, int size,
			uint64_t index)
{
	size_t ring_bytes = (size_t)size * (size == 2 ? RING2 : size == 4 ? RING4 : RING8);
	size_t pos = block_start / ring_bytes * ring_bytes + (size_t)index * (size_t)size;

	if (pos + (size_t)size > block_start) {
		if (pos < ring_bytes)
			return 0;
		pos -= ring_bytes;
	}
	memcpy(to, dst + pos, (size_t)size);
	return 1;
}

int kc_842_decompress(const uint8_t *src, size_t n, uint8_t *dst, size_t cap,
		      size_t *out_len)
{
	struct bit_reader r = { src, n * 8, 0 };
	size_t op = 0;
	uint64_t code, value, crc;

	for (;;) {
		if (!get_bits(&r, OP_BITS, &code))
			return -1;
		if (code == OP_END)
			break;
		if (code == OP_REPEAT) {
			if (!get_bits(&r, REPEAT_BITS, &value) || op < 8 || op % 8 ||
			    (value + 1) * 8 > cap - op)
				return -1;
			for (uint64_t i = 0; i <= value; i++, op += 8)
				memcpy(dst + op, dst + op - 8, 8);
		} else if (code == OP_ZEROS) {
			if (op % 8 || cap - op < 8)
				return -1;
			memset(dst + op, 0, 8);
			op += 8;
		} else if (code == OP_SHORT_DATA) {
			if (!get_bits(&r, SHORT_DATA_BITS, &value) || value == 0 || op % 8 ||
			    value > cap - op)
				return -1;
			for (uint64_t i = 0; i < value; i++) {
				uint64_t byte;

				if (!get_bits(&r, 8, &byte))
					return -1;
				dst[op++] = (uint8_t)byte;
			}
		} else {
			const struct template *t = NULL;
			size_t offset = 0;

			for (size_t i = 0; i < TEMPLATES; i++)
				if (templates[i].code == code)
					t = &templates[i];
			if (!t || op % 8 || cap - op < 8)
				return -1;
			for (int a = 0; a < t->count; a++) {
				const struct argument *arg = &t->args[a];
				int bits = arg->kind == I ? index_bits(arg->size) : 8 * arg->size;

				if (!get_bits(&r, bits, &value))
					return -1;
				if (arg->kind == D)
					write_be(dst + op + offset, value, arg->size);
				else if (!copy_indexed(dst, op, dst + op + offset, arg->size, value))
					return -1;
				offset += arg->size;
			}
			op += 8;
		}
	}
	/* The CRC, then zero bits to a byte, zero bytes to a multiple of 8. */
	if (!get_bits(&r, CRC_BITS, &crc) || crc != crc32_be(dst, op))
		return -1;
	{
		size_t length = (r.bit + 7) / 8;

		length += (8 - length % 8) % 8;
		if (length != n)
			return -1;
		while (r.bit < r.bits)
			if (!get_bits(&r, 1, &value) || value)
				return -1;
	}
	*out_len = op;
	return 0;
}
