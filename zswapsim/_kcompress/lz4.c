/*
 * lz4.c - Linux's lz4 as zswap and zram call it: LZ4_compress_default()
 * from lib/lz4/lz4_compress.c (identical in 6.1.192, 6.12.117 and 6.18.15),
 * rewritten from shared/KERNEL-COMPRESSORS.md section 3.1, at any
 * acceleration as LZ4_compress_fast takes it (zram's backend_lz4.c passes
 * its algorithm_params level from 6.12), and a decoder for the lz4 block
 * format with lib/lz4/lz4_decompress.c's end rules.
 *
 * The kernel's lz4 is the LZ4 1.7 era code: for inputs under 64 KiB a table
 * of 8,192 16-bit offsets, hashed from 4 bytes, and a search that gives up
 * once the next probe would lie past n - 12 (newer liblz4 allows n - 11, and
 * python-lz4 uses a 5-byte hash over 4,096 slots, so neither gives these
 * bytes).  A destination below the bound n + n/255 + 16 (zswap's 4096)
 * selects the limited mode, whose room checks decide "did not fit".
 */
#include "kcompress.h"

#define MINMATCH 4
#define LASTLITERALS 5
#define MFLIMIT 12
#define MIN_LENGTH (MFLIMIT + 1)
#define SKIP_TRIGGER 6
#define HASH_BITS 13
#define RUN_MASK 15
#define ML_MASK 15

static inline uint32_t hash4(const uint8_t *p)
{
	return (kc_read32(p) * 2654435761U) >> (32 - HASH_BITS);
}

/* A length's extension: 255s, then the rest (below 255). */
static uint8_t *put_length(uint8_t *op, size_t len)
{
	for (; len >= 255; len -= 255)
		*op++ = 255;
	*op++ = (uint8_t)len;
	return op;
}

size_t kc_lz4_compress(const uint8_t *src, size_t n, uint8_t *dst, size_t dlen,
		       unsigned int acceleration)
{
	uint16_t table[1 << HASH_BITS];
	const int limited = dlen < n + n / 255 + 16;
	const uint8_t *ip = src, *anchor = src;
	const uint8_t *const iend = src + n;
	/* Only read once n >= MIN_LENGTH: no pointer before src. */
	const uint8_t *const mflimit = src + (n >= MIN_LENGTH ? n - MFLIMIT : 0);
	const uint8_t *const matchlimit = src + (n >= MIN_LENGTH ? n - LASTLITERALS : 0);
	uint8_t *op = dst;
	uint8_t *const olimit = dst + dlen;
	uint32_t forward_hash;

	memset(table, 0, sizeof(table));
	if (n < MIN_LENGTH)
		goto last_literals;

	table[hash4(ip)] = 0;
	ip++;
	forward_hash = hash4(ip);

	for (;;) {
		const uint8_t *match, *forward_ip = ip;
		uint8_t *token;
		/* LZ4_compress_fast_extState: an acceleration below 1 is 1 */
		unsigned int step = 1, probes = (acceleration ? acceleration : 1) << SKIP_TRIGGER;
		size_t literals, extra;

		do {
			uint32_t h = forward_hash;

			ip = forward_ip;
			forward_ip += step;
			step = probes++ >> SKIP_TRIGGER;
			if (forward_ip > mflimit)
				goto last_literals;
			match = src + table[h];
			forward_hash = hash4(forward_ip);
			table[h] = (uint16_t)(ip - src);
		} while (kc_read32(match) != kc_read32(ip));

		while (ip > anchor && match > src && ip[-1] == match[-1]) {
			ip--;
			match--;
		}

		literals = (size_t)(ip - anchor);
		token = op++;
		if (limited && op + literals + 8 + literals / 255 > olimit)
			return 0;
		if (literals >= RUN_MASK) {
			*token = RUN_MASK << 4;
			op = put_length(op, literals - RUN_MASK);
		} else {
			*token = (uint8_t)(literals << 4);
		}
		memcpy(op, anchor, literals);
		op += literals;

next_match:
		op[0] = (uint8_t)(ip - match);
		op[1] = (uint8_t)((ip - match) >> 8);
		op += 2;
		extra = kc_count(ip + MINMATCH, match + MINMATCH, matchlimit);
		ip += MINMATCH + extra;
		if (limited && op + 6 + (extra >> 8) > olimit)
			return 0;
		if (extra >= ML_MASK) {
			*token += ML_MASK;
			op = put_length(op, extra - ML_MASK);
		} else {
			*token += (uint8_t)extra;
		}

		anchor = ip;
		if (ip > mflimit)
			break;
		table[hash4(ip - 2)] = (uint16_t)(ip - 2 - src);

		/*
		 * A match right here: a token with no literals.  Offsets fit in
		 * 16 bits for inputs up to 64 KiB, so no distance test.
		 */
		{
			uint32_t h = hash4(ip);

			match = src + table[h];
			table[h] = (uint16_t)(ip - src);
			if (kc_read32(match) == kc_read32(ip)) {
				token = op++;
				*token = 0;
				goto next_match;
			}
		}
		forward_hash = hash4(++ip);
	}

last_literals:
	{
		size_t rest = (size_t)(iend - anchor);

		if (limited && (size_t)(op - dst) + rest + 1 + (rest + 255 - RUN_MASK) / 255 > dlen)
			return 0;
		if (rest >= RUN_MASK) {
			*op++ = RUN_MASK << 4;
			op = put_length(op, rest - RUN_MASK);
		} else {
			*op++ = (uint8_t)(rest << 4);
		}
		memcpy(op, anchor, rest);
		op += rest;
	}
	return (size_t)(op - dst);
}

/*
 * The kernel's LZ4_decompress_safe() rules, which its own encoders always
 * meet: a sequence whose literals reach the last 12 output bytes or the last
 * 8 input bytes must be the final one and end the input exactly; a match
 * must leave the last 5 output bytes to literals and must point inside the
 * output written so far (offset 0 is refused too).
 */
int kc_lz4_decompress(const uint8_t *src, size_t n, uint8_t *dst, size_t cap,
		      size_t *out_len)
{
	const uint8_t *ip = src, *const iend = src + n;
	uint8_t *op = dst;
	uint8_t *const oend = dst + cap;

	for (;;) {
		unsigned int token;
		size_t length, offset;

		if (ip >= iend)
			return -1;
		token = *ip++;
		length = token >> 4;
		if (length == RUN_MASK) {
			unsigned int s;

			do {
				if (ip >= iend)
					return -1;
				s = *ip++;
				length += s;
			} while (s == 255);
		}
		if (length > (size_t)(iend - ip) || length > (size_t)(oend - op))
			return -1;
		memcpy(op, ip, length);
		ip += length;
		op += length;
		if (ip == iend)
			break;
		if ((size_t)(oend - op) < MFLIMIT || (size_t)(iend - ip) < 2 + 1 + LASTLITERALS)
			return -1;

		offset = (size_t)ip[0] | (size_t)ip[1] << 8;
		ip += 2;
		if (offset == 0 || offset > (size_t)(op - dst))
			return -1;
		length = token & ML_MASK;
		if (length == ML_MASK) {
			unsigned int s;

			do {
				if ((size_t)(iend - ip) <= LASTLITERALS)
					return -1;
				s = *ip++;
				length += s;
			} while (s == 255);
		}
		length += MINMATCH;
		if (length > (size_t)(oend - op) - LASTLITERALS)
			return -1;
		{
			const uint8_t *from = op - offset;
			uint8_t *const end = op + length;

			if (offset >= length) {
				memcpy(op, from, length);
				op = end;
			} else {
				while (op < end)
					*op++ = *from++;
			}
		}
	}
	*out_len = (size_t)(op - dst);
	return 0;
}
