/*
 * sanitize_harness.c - not part of the module: tests/test_kernel_compress.py
 * builds it with the algorithm files under -fsanitize=address,undefined and
 * runs it over a file of pages, so that any out-of-bounds access or undefined
 * behaviour in the compressors or decoders ends the run with a report.
 *
 * For every page: each compressor at dlen 4096 and 8192, each output
 * decoded back and compared.  On every STRIDE-th page (the optional second
 * argument, 8 by default) the decoders are also fed that output truncated
 * at 64 lengths, with single bits flipped, and random bytes, and the
 * compressors get destinations from 0 bytes to just under lz4's bound; on
 * every (2 x STRIDE)-th, lz4hc runs at every level.  Hostile input must give
 * an error or some output within the buffer, never an access outside it.
 * Inputs and outputs are malloc'ed to their exact sizes so ASan sees the
 * first stray byte.
 * Exit 0 with one summary line; 1 on a failed round trip.
 */
#include <stdio.h>
#include <stdlib.h>

#include "kcompress.h"

#define PAGE 4096

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

typedef int (*decoder)(const uint8_t *, size_t, uint8_t *, size_t, size_t *);

static unsigned long decoded_ok, rejected;

/* Decode an exact-size copy of data into an exact-size buffer. */
static int decode(decoder dec, const uint8_t *data, size_t n, uint8_t *page_out, size_t *len)
{
	uint8_t *copy = malloc(n ? n : 1);
	uint8_t *out = malloc(PAGE);
	int status;

	memcpy(copy, data, n);
	status = dec(copy, n, out, PAGE, len);
	if (page_out && status == 0)
		memcpy(page_out, out, *len);
	status == 0 ? decoded_ok++ : rejected++;
	free(out);
	free(copy);
	return status;
}

static void hostile(decoder dec, const uint8_t *data, size_t n)
{
	uint8_t *mutated = malloc(n);
	size_t len, i;

	for (i = 0; i < n; i += 1 + n / 64)
		decode(dec, data, i, NULL, &len);
	for (i = 0; i < 32; i++) {
		memcpy(mutated, data, n);
		mutated[rng() % n] ^= (uint8_t)(1U << (rng() % 8));
		decode(dec, mutated, n, NULL, &len);
	}
	for (i = 0; i < 8; i++) {
		size_t j, m = rng() % (n + 1);

		for (j = 0; j < m; j++)
			mutated[j] = (uint8_t)rng();
		if (i & 1)	/* a plausible lzo-rle or lz4 start, then noise */
			mutated[0] = 17;
		decode(dec, mutated, m, NULL, &len);
	}
	free(mutated);
}

static int check(const char *name, size_t out_len, const uint8_t *dst, const uint8_t *page,
		 decoder dec, int fuzz)
{
	uint8_t back[PAGE];
	size_t len = 0;

	if (out_len == 0)
		return 0;	/* did not fit: nothing to decode */
	if (decode(dec, dst, out_len, back, &len) != 0 || len != PAGE ||
	    memcmp(back, page, PAGE) != 0) {
		fprintf(stderr, "%s: round trip failed\n", name);
		return 1;
	}
	if (fuzz)
		hostile(dec, dst, out_len);
	return 0;
}

int main(int argc, char **argv)
{
	static const size_t dlens[] = { PAGE, 2 * PAGE };
	FILE *f;
	uint8_t buffer[PAGE];
	unsigned long pages = 0;
	int failed = 0;

	unsigned long stride = argc == 3 ? strtoul(argv[2], NULL, 10) : 8;

	if (argc < 2 || argc > 3 || stride == 0 || !(f = fopen(argv[1], "rb"))) {
		fprintf(stderr, "usage: %s PAGES_FILE [STRIDE]\n", argv[0]);
		return 2;
	}
	while (fread(buffer, 1, PAGE, f) == PAGE) {
		uint8_t *page = malloc(PAGE);
		size_t d;
		int level, fuzz = pages % stride == 0;

		memcpy(page, buffer, PAGE);
		for (d = 0; d < 2; d++) {
			uint8_t *dst = malloc(dlens[d]);

			failed |= check("lz4", kc_lz4_compress(page, PAGE, dst, dlens[d], 1), dst, page,
					kc_lz4_decompress, fuzz);
			failed |= check("lz4 fast", kc_lz4_compress(page, PAGE, dst, dlens[d],
								    KC_LZ4_MAX_ACCELERATION),
					dst, page, kc_lz4_decompress, fuzz);
			failed |= check("lz4hc", kc_lz4hc_compress(page, PAGE, dst, dlens[d], 9), dst,
					page, kc_lz4_decompress, fuzz);
			failed |= check("lzo", kc_lzo_compress(page, PAGE, dst, dlens[d], 0), dst, page,
					kc_lzo_decompress, fuzz);
			failed |= check("lzo-rle", kc_lzo_compress(page, PAGE, dst, dlens[d], 1), dst,
					page, kc_lzo_decompress, fuzz);
			failed |= check("842", kc_842_compress(page, PAGE, dst, dlens[d]), dst, page,
					kc_842_decompress, fuzz);
			free(dst);
		}
		if (fuzz) {
			static const size_t small[] = { 0, 1, 2, 3, 5, 17, 100, 2000, 4000, 4127 };

			for (d = 0; d < sizeof(small) / sizeof(small[0]); d++) {
				uint8_t *dst = malloc(small[d] ? small[d] : 1);

				kc_lz4_compress(page, PAGE, dst, small[d], 1);
				kc_lz4hc_compress(page, PAGE, dst, small[d], 9);
				kc_lzo_compress(page, PAGE, dst, small[d], 0);
				kc_lzo_compress(page, PAGE, dst, small[d], 1);
				kc_842_compress(page, PAGE, dst, small[d]);
				free(dst);
			}
		}
		if (pages % (2 * stride) == 0) {
			uint8_t *dst = malloc(2 * PAGE);

			for (level = 0; level <= 17; level++)
				failed |= check("lz4hc level", kc_lz4hc_compress(page, PAGE, dst, 2 * PAGE,
										level),
						dst, page, kc_lz4_decompress, 0);
			free(dst);
		}
		free(page);
		pages++;
	}
	fclose(f);
	printf("%lu pages, %lu decodes accepted, %lu rejected\n", pages, decoded_ok, rejected);
	return failed;
}
