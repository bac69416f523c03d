/*
 * lz4hc.c - Linux's lz4hc: LZ4_compress_HC() from lib/lz4/lz4hc_compress.c
 * (identical in 6.1.192, 6.12.117 and 6.18.15), rewritten from
 * shared/KERNEL-COMPRESSORS.md section 3.2.
 *
 * The LZ4 1.7.3-era HC: a hash chain searched up to 1 << (level - 1) times
 * (256 at the default level 9), and a parser weighing up to three
 * overlapping matches before it commits one.  Newer liblz4 adds pattern
 * analysis and changes the loop ends, so only 1.7.3-1.8.0 give these bytes.
 * Positions are kept as the kernel keeps them, offset by 64 KiB, so an
 * empty table slot (0) is never a candidate.  Output is the lz4 block
 * format; the limited mode is taken for dlen below n + n/255 + 16.
 */
#include "kcompress.h"

#define MINMATCH 4
#define LASTLITERALS 5
#define MFLIMIT 12
#define OPTIMAL_ML 18
#define ML_MASK 15
#define RUN_MASK 15
#define MAX_DISTANCE 65535
#define WINDOW 65536U
#define HASH_LOG 15
#define MAX_LEVEL 16
#define DEFAULT_LEVEL 9

struct hc_state {
	uint32_t hash_table[1 << HASH_LOG];
	uint16_t chain[WINDOW];
	const uint8_t *src;	/* index WINDOW */
	uint32_t next_to_update;
	unsigned int attempts;
};

/* 256 KiB of tables, reset per call: one per thread, off the stack. */
static _Thread_local struct hc_state hc_state;

static inline uint32_t hc_hash(const uint8_t *p)
{
	return (kc_read32(p) * 2654435761U) >> (32 - HASH_LOG);
}

static inline const uint8_t *at(const struct hc_state *hc, uint32_t index)
{
	return hc->src + (index - WINDOW);
}

static inline uint32_t index_of(const struct hc_state *hc, const uint8_t *p)
{
	return (uint32_t)(p - hc->src) + WINDOW;
}

/* Chain every position from next_to_update up to ip (exclusive). */
static void hc_insert(struct hc_state *hc, const uint8_t *ip)
{
	const uint32_t target = index_of(hc, ip);
	uint32_t index;

	for (index = hc->next_to_update; index < target; index++) {
		uint32_t h = hc_hash(at(hc, index));
		/* A table entry ahead of index wraps to a huge delta: capped. */
		uint64_t delta = (uint64_t)(uint32_t)(index - hc->hash_table[h]);

		if (index < hc->hash_table[h] || delta > MAX_DISTANCE)
			delta = MAX_DISTANCE;
		hc->chain[(uint16_t)index] = (uint16_t)delta;
		hc->hash_table[h] = index;
	}
	hc->next_to_update = target;	/* even where that moves it back */
}

static int find_best_match(struct hc_state *hc, const uint8_t *ip, const uint8_t *limit,
			   const uint8_t **match_at)
{
	unsigned int attempts = hc->attempts;
	size_t best = 0;
	uint32_t index;

	hc_insert(hc, ip);
	index = hc->hash_table[hc_hash(ip)];
	while (index >= WINDOW && attempts) {
		const uint8_t *candidate = at(hc, index);

		attempts--;
		if (candidate[best] == ip[best] && kc_read32(candidate) == kc_read32(ip)) {
			size_t length = MINMATCH + kc_count(ip + MINMATCH, candidate + MINMATCH,
							    limit);

			if (length > best) {
				best = length;
				*match_at = candidate;
			}
		}
		index -= hc->chain[(uint16_t)index];
	}
	return (int)best;
}

/*
 * The longest match around ip reaching back no further than low, longer
 * than `longest`: its start in the input and its reference.
 */
static int find_wider_match(struct hc_state *hc, const uint8_t *ip, const uint8_t *low,
			    const uint8_t *high, int longest, const uint8_t **match_at,
			    const uint8_t **start_at)
{
	unsigned int attempts = hc->attempts;
	const ptrdiff_t delta = ip - low;
	uint32_t index;

	hc_insert(hc, ip);
	index = hc->hash_table[hc_hash(ip)];
	while (index >= WINDOW && attempts) {
		const uint8_t *candidate = at(hc, index);

		attempts--;
		if (low[longest] == candidate[longest - delta] &&
		    kc_read32(candidate) == kc_read32(ip)) {
			int length = MINMATCH + (int)kc_count(ip + MINMATCH, candidate + MINMATCH,
							      high);
			int back = 0;

			while (ip + back > low && candidate + back > hc->src &&
			       ip[back - 1] == candidate[back - 1])
				back--;
			length -= back;
			if (length > longest) {
				longest = length;
				*match_at = candidate + back;
				*start_at = ip + back;
			}
		}
		index -= hc->chain[(uint16_t)index];
	}
	return longest;
}

static uint8_t *put_length(uint8_t *op, size_t len)
{
	for (; len >= 255; len -= 255)
		*op++ = 255;
	*op++ = (uint8_t)len;
	return op;
}

/* One sequence: the literals since *anchor, then the match.  0: no room. */
static int encode_sequence(const uint8_t **ip, uint8_t **op, const uint8_t **anchor,
			   int match_length, const uint8_t *match, int limited, uint8_t *oend)
{
	size_t literals = (size_t)(*ip - *anchor), extra;
	uint8_t *token = (*op)++;

	if (limited && *op + (literals >> 8) + literals + 8 > oend)
		return 0;
	if (literals >= RUN_MASK) {
		*token = RUN_MASK << 4;
		*op = put_length(*op, literals - RUN_MASK);
	} else {
		*token = (uint8_t)(literals << 4);
	}
	memcpy(*op, *anchor, literals);
	*op += literals;

	(*op)[0] = (uint8_t)(*ip - match);
	(*op)[1] = (uint8_t)((*ip - match) >> 8);
	*op += 2;

	extra = (size_t)match_length - MINMATCH;
	if (limited && *op + (extra >> 8) + 6 > oend)
		return 0;
	if (extra >= ML_MASK) {
		*token += ML_MASK;
		*op = put_length(*op, extra - ML_MASK);
	} else {
		*token += (uint8_t)extra;
	}
	*ip += match_length;
	*anchor = *ip;
	return 1;
}

size_t kc_lz4hc_compress(const uint8_t *src, size_t n, uint8_t *dst, size_t dlen, int level)
{
	struct hc_state *hc = &hc_state;
	const int limited = dlen < n + n / 255 + 16;
	const uint8_t *ip = src, *anchor = src;
	const uint8_t *const iend = src + n;
	/* Below 12 bytes no match is sought: keep the limits at src. */
	const uint8_t *const mflimit = src + (n > MFLIMIT ? n - MFLIMIT : 0);
	const uint8_t *const matchlimit = src + (n > MFLIMIT ? n - LASTLITERALS : 0);
	uint8_t *op = dst, *const oend = dst + dlen;
	const uint8_t *ref = NULL, *start2 = NULL, *ref2 = NULL, *start3 = NULL, *ref3 = NULL;
	const uint8_t *start0, *ref0;
	int ml, ml2, ml3, ml0;

	if (level > MAX_LEVEL)
		level = MAX_LEVEL;
	if (level < 1)
		level = DEFAULT_LEVEL;
	memset(hc->hash_table, 0, sizeof(hc->hash_table));
	memset(hc->chain, 0xff, sizeof(hc->chain));
	hc->src = src;
	hc->next_to_update = WINDOW;
	hc->attempts = 1U << (level - 1);

	if (n > MFLIMIT)
		ip++;
	while (ip < mflimit) {
		ml = find_best_match(hc, ip, matchlimit, &ref);
		if (!ml) {
			ip++;
			continue;
		}
		start0 = ip;
		ref0 = ref;
		ml0 = ml;

search2:
		if (ip + ml < mflimit)
			ml2 = find_wider_match(hc, ip + ml - 2, ip, matchlimit, ml, &ref2, &start2);
		else
			ml2 = ml;
		if (ml2 == ml) {
			if (!encode_sequence(&ip, &op, &anchor, ml, ref, limited, oend))
				return 0;
			continue;
		}
		if (start0 < ip && start2 < ip + ml0) {
			ip = start0;
			ref = ref0;
			ml = ml0;
		}
		if (start2 - ip < 3) {
			/* The first match is too short to keep: the second replaces it. */
			ml = ml2;
			ip = start2;
			ref = ref2;
			goto search2;
		}

search3:
		if (start2 - ip < OPTIMAL_ML) {
			int new_ml = ml, correction;

			if (new_ml > OPTIMAL_ML)
				new_ml = OPTIMAL_ML;
			if (ip + new_ml > start2 + ml2 - MINMATCH)
				new_ml = (int)(start2 - ip) + ml2 - MINMATCH;
			correction = new_ml - (int)(start2 - ip);
			if (correction > 0) {
				start2 += correction;
				ref2 += correction;
				ml2 -= correction;
			}
		}
		if (start2 + ml2 < mflimit)
			ml3 = find_wider_match(hc, start2 + ml2 - 3, start2, matchlimit, ml2,
					       &ref3, &start3);
		else
			ml3 = ml2;

		if (ml3 == ml2) {
			/* Two sequences: the first cut where the second starts. */
			if (start2 < ip + ml)
				ml = (int)(start2 - ip);
			if (!encode_sequence(&ip, &op, &anchor, ml, ref, limited, oend))
				return 0;
			ip = start2;
			if (!encode_sequence(&ip, &op, &anchor, ml2, ref2, limited, oend))
				return 0;
			continue;
		}

		if (start3 < ip + ml + 3) {
			if (start3 >= ip + ml) {
				/* The second match is dropped; the third becomes the first. */
				if (start2 < ip + ml) {
					int correction = (int)(ip + ml - start2);

					start2 += correction;
					ref2 += correction;
					ml2 -= correction;
					if (ml2 < MINMATCH) {
						start2 = start3;
						ref2 = ref3;
						ml2 = ml3;
					}
				}
				if (!encode_sequence(&ip, &op, &anchor, ml, ref, limited, oend))
					return 0;
				ip = start3;
				ref = ref3;
				ml = ml3;
				start0 = start2;
				ref0 = ref2;
				ml0 = ml2;
				goto search2;
			}
			start2 = start3;
			ref2 = ref3;
			ml2 = ml3;
			goto search3;
		}

		/* Three ascending matches: write the first. */
		if (start2 < ip + ml) {
			if (start2 - ip < ML_MASK) {
				int correction;

				if (ml > OPTIMAL_ML)
					ml = OPTIMAL_ML;
				if (ip + ml > start2 + ml2 - MINMATCH)
					ml = (int)(start2 - ip) + ml2 - MINMATCH;
				correction = ml - (int)(start2 - ip);
				if (correction > 0) {
					start2 += correction;
					ref2 += correction;
					ml2 -= correction;
				}
			} else {
				ml = (int)(start2 - ip);
			}
		}
		if (!encode_sequence(&ip, &op, &anchor, ml, ref, limited, oend))
			return 0;
		ip = start2;
		ref = ref2;
		ml = ml2;
		start2 = start3;
		ref2 = ref3;
		ml2 = ml3;
		goto search3;
	}

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
