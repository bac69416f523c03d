/*
 * lzo.c - Linux's lzo and lzo-rle: lzo1x_1_compress_safe() and
 * lzorle1x_1_compress_safe() from lib/lzo/lzo1x_compress.c with
 * lib/lzo/lzo1x_compress_safe.c (6.1.192; the same code in 6.12 and 6.18),
 * rewritten from shared/KERNEL-COMPRESSORS.md sections 3.3 and 3.4, and a
 * decoder for both bitstreams in the manner of lib/lzo/lzo1x_decompress_safe.c.
 *
 * LZO1X-1 as in LZO 2.10 except for its dictionary: 8,192 16-bit offsets
 * (D_BITS 13, where liblzo2 has 14), so no library gives these bytes.
 * lzo-rle (bitstream version 1, zram's default) adds a 0x11 0x01 header and
 * encodes zero runs of up to 2,051 bytes as one 4-byte instruction.  The
 * _safe variant checks the room left before each write, with the kernel's
 * over-generous margins (4 before a 1-3 literal copy, 17 before a 4-16 byte
 * run): where a check fails the kernel reports LZO_E_OUTPUT_OVERRUN and the
 * caller gets "did not fit".
 */
#include "kcompress.h"

#define D_BITS 13
#define M2_MAX_LEN 8
#define M3_MAX_LEN 33
#define M4_MAX_LEN 9
#define M2_MAX_OFFSET 0x0800
#define M3_MAX_OFFSET 0x4000
#define M4_MAX_OFFSET_V0 0xbfff
#define M4_MAX_OFFSET_V1 0xbffe
#define M3_MARKER 32
#define M4_MARKER 16
#define MIN_ZERO_RUN_LENGTH 4
#define MAX_ZERO_RUN_LENGTH (2047 + MIN_ZERO_RUN_LENGTH)
#define TAIL_MARGIN 20

/* One compression: the output cursor, its end, and the literal state. */
struct lzo_out {
	uint8_t *op;
	uint8_t *start;		/* after lzo-rle's header */
	uint8_t *end;
	int state_offset;	/* where 1-3 trailing literals are OR-ed in */
};

#define HAVE_ROOM(out, x) ((size_t)((out)->end - (out)->op) >= (size_t)(x))

/* Pending literals before an instruction; 0 where the room runs out. */
static int put_literals(struct lzo_out *out, const uint8_t *from, size_t t)
{
	if (t == 0)
		return 1;
	if (t <= 3) {
		if (!HAVE_ROOM(out, 4))
			return 0;
		out->op[out->state_offset] |= (uint8_t)t;
	} else if (t <= 16) {
		if (!HAVE_ROOM(out, 17))
			return 0;
		*out->op++ = (uint8_t)(t - 3);
	} else {
		if (t <= 18) {
			if (!HAVE_ROOM(out, 1))
				return 0;
			*out->op++ = (uint8_t)(t - 3);
		} else {
			size_t rest = t - 18;

			if (!HAVE_ROOM(out, 1))
				return 0;
			*out->op++ = 0;
			while (rest > 255) {
				rest -= 255;
				if (!HAVE_ROOM(out, 1))
					return 0;
				*out->op++ = 0;
			}
			if (!HAVE_ROOM(out, 1))
				return 0;
			*out->op++ = (uint8_t)rest;
		}
		if (!HAVE_ROOM(out, t))
			return 0;
	}
	memcpy(out->op, from, t);
	out->op += t;
	return 1;
}

/* A length beyond an instruction's field: one 0 per 255, then the rest. */
static int put_long_length(struct lzo_out *out, size_t rest)
{
	while (rest > 255) {
		rest -= 255;
		if (!HAVE_ROOM(out, 1))
			return 0;
		*out->op++ = 0;
	}
	if (!HAVE_ROOM(out, 1))
		return 0;
	*out->op++ = (uint8_t)rest;
	return 1;
}

static int put_match(struct lzo_out *out, size_t m_len, size_t m_off)
{
	if (m_len <= M2_MAX_LEN && m_off <= M2_MAX_OFFSET) {
		m_off -= 1;
		if (!HAVE_ROOM(out, 2))
			return 0;
		*out->op++ = (uint8_t)(((m_len - 1) << 5) | ((m_off & 7) << 2));
		*out->op++ = (uint8_t)(m_off >> 3);
		return 1;
	}
	if (m_off <= M3_MAX_OFFSET) {
		m_off -= 1;
		if (!HAVE_ROOM(out, 1))
			return 0;
		if (m_len <= M3_MAX_LEN) {
			*out->op++ = (uint8_t)(M3_MARKER | (m_len - 2));
		} else {
			*out->op++ = M3_MARKER;
			if (!put_long_length(out, m_len - M3_MAX_LEN))
				return 0;
		}
	} else {
		m_off -= 0x4000;
		if (!HAVE_ROOM(out, 1))
			return 0;
		if (m_len <= M4_MAX_LEN) {
			*out->op++ = (uint8_t)(M4_MARKER | ((m_off >> 11) & 8) | (m_len - 2));
		} else {
			*out->op++ = (uint8_t)(M4_MARKER | ((m_off >> 11) & 8));
			if (!put_long_length(out, m_len - M4_MAX_LEN))
				return 0;
		}
	}
	if (!HAVE_ROOM(out, 2))
		return 0;
	*out->op++ = (uint8_t)(m_off << 2);
	*out->op++ = (uint8_t)(m_off >> 6);
	return 1;
}

/* Zero bytes from p, up to limit. */
static size_t count_zeros(const uint8_t *p, const uint8_t *limit)
{
	const uint8_t *start = p;

	while (p + 8 <= limit) {
		uint64_t v = kc_read64(p);

		if (v)
			return (size_t)(p - start) + (size_t)(__builtin_ctzll(v) >> 3);
		p += 8;
	}
	while (p < limit && *p == 0)
		p++;
	return (size_t)(p - start);
}

/*
 * One chunk (lzo1x_1_do_compress): `carried` literals before `in` are still
 * pending.  Returns the literals left pending at the chunk's end, or
 * (size_t)-1 where the room ran out.
 */
static size_t compress_chunk(const uint8_t *in, size_t in_len, size_t carried,
			     struct lzo_out *out, int rle)
{
	uint16_t dict[1 << D_BITS];
	const uint8_t *const in_end = in + in_len;
	const uint8_t *const ip_end = in + in_len - TAIL_MARGIN;
	const uint8_t *ii = in;
	const uint8_t *ip = in + (carried < 4 ? 4 - carried : 0);

	memset(dict, 0, sizeof(dict));
	for (;;) {
		const uint8_t *m_pos = in;
		size_t run_length = 0, m_len;
		uint32_t dv;

		ip += 1 + ((size_t)(ip - ii) >> 5);
next:
		if (ip >= ip_end)
			break;
		dv = kc_read32(ip);
		if (dv == 0 && rle) {
			const uint8_t *limit = ip + MAX_ZERO_RUN_LENGTH + 1;

			if (limit > ip_end)
				limit = ip_end;
			run_length = 4 + count_zeros(ip + 4, limit);
			if (run_length > MAX_ZERO_RUN_LENGTH)
				run_length = MAX_ZERO_RUN_LENGTH;
		} else {
			uint32_t slot = ((dv * 0x1824429dU) >> (32 - D_BITS)) & ((1U << D_BITS) - 1);

			m_pos = in + dict[slot];
			dict[slot] = (uint16_t)(ip - in);
			if (dv != kc_read32(m_pos))
				continue;
		}

		ii -= carried;
		carried = 0;
		if (!put_literals(out, ii, (size_t)(ip - ii)))
			return (size_t)-1;

		if (run_length) {
			size_t rl = run_length - MIN_ZERO_RUN_LENGTH;

			if (!HAVE_ROOM(out, 4))
				return (size_t)-1;
			out->op[0] = (uint8_t)(0x18 | (rl & 7));
			out->op[1] = 0xfc;
			out->op[2] = 0xff;
			out->op[3] = (uint8_t)(rl >> 3);
			out->op += 4;
			out->state_offset = -3;
			ip += run_length;
			run_length = 0;	/* `next` is past its initialiser */
			ii = ip;
			goto next;
		}

		/*
		 * Compare 8 bytes at a time; after each whole 8 that matched,
		 * stop once ip + m_len reaches ip_end, as the kernel's loop does.
		 */
		m_len = 4;
		for (;;) {
			uint64_t v = kc_read64(ip + m_len) ^ kc_read64(m_pos + m_len);

			if (v) {
				m_len += (size_t)(__builtin_ctzll(v) >> 3);
				break;
			}
			m_len += 8;
			if (ip + m_len >= ip_end)
				break;
		}
		{
			size_t m_off = (size_t)(ip - m_pos);

			ip += m_len;
			if (rle && m_off > M3_MAX_OFFSET && ((m_off - 0x4000) & 0x403f) == 0x403f &&
			    m_len >= 261 && m_len <= 264) {
				/* lzo-rle: such an M4 would read as a zero run. */
				ip -= m_len - 260;
				m_len = 260;
			}
			if (!put_match(out, m_len, m_off))
				return (size_t)-1;
		}
		out->state_offset = -2;
		ii = ip;
		goto next;
	}
	return (size_t)(in_end - (ii - carried));
}

size_t kc_lzo_compress(const uint8_t *src, size_t n, uint8_t *dst, size_t dlen, int rle)
{
	struct lzo_out out = { dst, dst, dst + dlen, -2 };
	const size_t chunk_max = (size_t)(rle ? M4_MAX_OFFSET_V1 : M4_MAX_OFFSET_V0) + 1;
	const uint8_t *ip = src;
	size_t left = n, pending = 0;

	if (rle) {
		/* The kernel writes the header before its first room check. */
		if (dlen < 2)
			return 0;
		*out.op++ = 17;
		*out.op++ = 1;
		out.start = out.op;
	}
	while (left > TAIL_MARGIN) {
		size_t len = left < chunk_max ? left : chunk_max;

		pending = compress_chunk(ip, len, pending, &out, rle);
		if (pending == (size_t)-1)
			return 0;
		ip += len;
		left -= len;
	}
	pending += left;

	if (pending > 0) {
		const uint8_t *from = src + n - pending;

		if (out.op == out.start && pending <= 238) {
			if (!HAVE_ROOM(&out, 1))
				return 0;
			*out.op++ = (uint8_t)(17 + pending);
		} else if (pending <= 3) {
			out.op[out.state_offset] |= (uint8_t)pending;
		} else if (pending <= 18) {
			if (!HAVE_ROOM(&out, 1))
				return 0;
			*out.op++ = (uint8_t)(pending - 3);
		} else {
			if (!HAVE_ROOM(&out, 1))
				return 0;
			*out.op++ = 0;
			if (!put_long_length(&out, pending - 18))
				return 0;
		}
		if (!HAVE_ROOM(&out, pending))
			return 0;
		memcpy(out.op, from, pending);
		out.op += pending;
	}
	if (!HAVE_ROOM(&out, 3))
		return 0;
	*out.op++ = M4_MARKER | 1;
	*out.op++ = 0;
	*out.op++ = 0;
	return (size_t)(out.op - dst);
}

/* A long length: zero bytes worth 255 each, then a final non-zero byte. */
static int get_long_length(const uint8_t **ipp, const uint8_t *iend, size_t *length)
{
	const uint8_t *ip = *ipp;

	for (;;) {
		if (ip >= iend)
			return 0;
		if (*ip != 0)
			break;
		*length += 255;
		ip++;
	}
	*length += *ip++;
	*ipp = ip;
	return 1;
}

/*
 * Both bitstreams: lzo-rle by its 0x11 0x01 header, as the kernel's decoder
 * tells them apart (plain LZO1X never starts with 17 unless it is the
 * 3-byte output of an empty input).  `state` is what the previous
 * instruction left: 0 after a match with no trailing literals, 1-3 after
 * one with that many, 4 after a literal run; it decides what an
 * instruction byte below 16 means.
 */
int kc_lzo_decompress(const uint8_t *src, size_t n, uint8_t *dst, size_t cap,
		      size_t *out_len)
{
	const uint8_t *ip = src, *const iend = src + n;
	uint8_t *op = dst, *const oend = dst + cap;
	int rle = 0;
	size_t state = 0, next = 0, length, dist;

	if (n < 3)
		return -1;
	if (n >= 5 && ip[0] == 17) {
		rle = ip[1] != 0;
		ip += 2;
	}
	if (*ip > 17) {
		length = (size_t)(*ip++ - 17);
		if (length < 4) {
			next = length;
			goto trailing_literals;
		}
		goto literal_run;
	}
	for (;;) {
		unsigned int t;

		if (ip >= iend)
			return -1;
		t = *ip++;
		if (t < 16) {
			if (state == 0) {
				length = t;
				if (t == 0) {
					length = 15;
					if (!get_long_length(&ip, iend, &length))
						return -1;
				}
				length += 3;
literal_run:
				if (length > (size_t)(iend - ip) || length > (size_t)(oend - op))
					return -1;
				memcpy(op, ip, length);
				op += length;
				ip += length;
				state = 4;
				continue;
			}
			if (ip >= iend)
				return -1;
			next = t & 3;
			dist = 1 + (t >> 2) + ((size_t)*ip++ << 2);
			if (state == 4) {
				dist += M2_MAX_OFFSET;
				length = 3;
			} else {
				length = 2;
			}
		} else if (t >= 64) {
			if (ip >= iend)
				return -1;
			next = t & 3;
			dist = 1 + ((t >> 2) & 7) + ((size_t)*ip++ << 3);
			length = (t >> 5) + 1;
		} else if (t >= 32) {
			length = (t & 31) + 2;
			if (length == 2) {
				length = M3_MAX_LEN;
				if (!get_long_length(&ip, iend, &length))
					return -1;
			}
			if (iend - ip < 2)
				return -1;
			dist = 1 + (((size_t)ip[0] | (size_t)ip[1] << 8) >> 2);
			next = ip[0] & 3;
			ip += 2;
		} else {
			if (iend - ip < 2)
				return -1;
			if (rle && (t & 0xf8) == 0x18 && ip[0] >= 0xfc && ip[1] == 0xff) {
				/* A zero run: 4 + (3 bits here | the third byte << 3). */
				if (iend - ip < 3)
					return -1;
				length = MIN_ZERO_RUN_LENGTH + ((t & 7) | (size_t)ip[2] << 3);
				if (length > (size_t)(oend - op))
					return -1;
				memset(op, 0, length);
				op += length;
				next = ip[0] & 3;
				ip += 3;
				goto trailing_literals;
			}
			length = (t & 7) + 2;
			if (length == 2) {
				length = M4_MAX_LEN;
				if (!get_long_length(&ip, iend, &length))
					return -1;
				if (iend - ip < 2)
					return -1;
			}
			dist = ((size_t)(t & 8) << 11) + (((size_t)ip[0] | (size_t)ip[1] << 8) >> 2);
			next = ip[0] & 3;
			ip += 2;
			if (dist == 0) {
				/* The end marker 0x11 0x00 0x00, ending the input. */
				if (length != 3 || ip != iend)
					return -1;
				*out_len = (size_t)(op - dst);
				return 0;
			}
			dist += 0x4000;
		}
		if (dist > (size_t)(op - dst) || length > (size_t)(oend - op))
			return -1;
		{
			const uint8_t *from = op - dist;
			uint8_t *const end = op + length;

			while (op < end)
				*op++ = *from++;
		}
trailing_literals:
		state = next;
		if (next > (size_t)(iend - ip) || next > (size_t)(oend - op))
			return -1;
		memcpy(op, ip, next);
		op += next;
		ip += next;
	}
}
