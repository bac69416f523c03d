/*
 * kcompress_race.c - not part of the package: bench/kcompress.py builds it
 * at bench time with zswapsim/_kcompress/lz4.c and lzo.c (the flags
 * setup.py gives them) and links it to Debian's liblz4 and liblzo2, the
 * reference libraries (apt-get install liblz4-dev liblzo2-dev).
 *
 * Usage: kcompress_race PAGES_FILE ROUNDS.  Over the 4096-byte pages of
 * PAGES_FILE, each race times one full pass of our function and one of the
 * library's, in turn, ROUNDS times, and prints the best pass of each side
 * in nanoseconds per page, and the median of the rounds' ratios ours /
 * theirs (each round's two passes close in time: on a shared machine the
 * steadier figure).  Passes are timed in this thread's CPU time, which a
 * preempting process on a shared core does not inflate:
 *
 *   lz4 compress     kc_lz4_compress            LZ4_compress_default
 *   lzo compress     kc_lzo_compress (no rle)   lzo1x_1_compress
 *   lz4 decompress   kc_lz4_decompress          LZ4_decompress_safe
 *   lzo decompress   kc_lzo_decompress          lzo1x_decompress_safe
 *
 * Both sides get the same destination, 8192 bytes (zram's: above either
 * format's bound for a page, so nothing is cut short), and the decoders the
 * same input, our compressor's output (one format, read by both).  Every
 * decoded page is compared with its original once, before timing.
 * Output: the libraries' versions ("liblz4 V liblzo2 V"), then one line per
 * race, "NAME OURS_NS THEIRS_NS MEDIAN_RATIO"; exit 1 on an error.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <lz4.h>
#include <lzo/lzo1x.h>

#include "kcompress.h"

#define PAGE 4096
#define DLEN 8192

static uint8_t *pages, *packed;		/* n pages; their compressed forms */
static size_t *packed_len, n_pages;
static uint8_t dst[DLEN];
static lzo_align_t lzo_work[(LZO1X_1_MEM_COMPRESS + sizeof(lzo_align_t) - 1) /
			    sizeof(lzo_align_t)];
static volatile size_t sink;		/* keeps every output length live */

typedef size_t (*pass_fn)(size_t page);

static size_t ours_lz4(size_t i)
{
	return kc_lz4_compress(pages + i * PAGE, PAGE, dst, DLEN, 1);
}

static size_t theirs_lz4(size_t i)
{
	return (size_t)LZ4_compress_default((const char *)pages + i * PAGE, (char *)dst,
					    PAGE, DLEN);
}

static size_t ours_lzo(size_t i)
{
	return kc_lzo_compress(pages + i * PAGE, PAGE, dst, DLEN, 0);
}

static size_t theirs_lzo(size_t i)
{
	lzo_uint len = DLEN;

	lzo1x_1_compress(pages + i * PAGE, PAGE, dst, &len, lzo_work);
	return len;
}

static size_t ours_unlz4(size_t i)
{
	size_t len = 0;

	kc_lz4_decompress(packed + i * DLEN, packed_len[i], dst, PAGE, &len);
	return len;
}

static size_t theirs_unlz4(size_t i)
{
	return (size_t)LZ4_decompress_safe((const char *)packed + i * DLEN, (char *)dst,
					   (int)packed_len[i], PAGE);
}

static size_t ours_unlzo(size_t i)
{
	size_t len = 0;

	kc_lzo_decompress(packed + i * DLEN, packed_len[i], dst, PAGE, &len);
	return len;
}

static size_t theirs_unlzo(size_t i)
{
	lzo_uint len = PAGE;

	lzo1x_decompress_safe(packed + i * DLEN, packed_len[i], dst, &len, NULL);
	return len;
}

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

/* One pass over every page, in nanoseconds per page. */
static double pass(pass_fn fn)
{
	double start = now_ns();
	size_t i, total = 0;

	for (i = 0; i < n_pages; i++)
		total += fn(i);
	sink = total;
	return (now_ns() - start) / n_pages;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void race(const char *name, pass_fn ours, pass_fn theirs, int rounds)
{
	double best_ours = 1e300, best_theirs = 1e300, t_ours, t_theirs;
	double *ratios = malloc(rounds * sizeof(*ratios));
	int r;

	for (r = 0; r < rounds; r++) {
		t_ours = pass(ours);
		t_theirs = pass(theirs);
		best_ours = t_ours < best_ours ? t_ours : best_ours;
		best_theirs = t_theirs < best_theirs ? t_theirs : best_theirs;
		ratios[r] = t_ours / t_theirs;
	}
	qsort(ratios, rounds, sizeof(*ratios), by_value);
	printf("%s %.1f %.1f %.3f\n", name, best_ours, best_theirs, ratios[rounds / 2]);
	free(ratios);
}

/* Our compressor's output of every page, checked to decode back by both
 * decoders; 0 when all did. */
static int pack(pass_fn compress, pass_fn ours_dec, pass_fn theirs_dec)
{
	size_t i;

	for (i = 0; i < n_pages; i++) {
		packed_len[i] = compress(i);
		memcpy(packed + i * DLEN, dst, packed_len[i]);
		if (packed_len[i] == 0 || ours_dec(i) != PAGE ||
		    memcmp(dst, pages + i * PAGE, PAGE) || theirs_dec(i) != PAGE ||
		    memcmp(dst, pages + i * PAGE, PAGE)) {
			fprintf(stderr, "page %zu does not round-trip\n", i);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	FILE *f;
	long size;
	int rounds;

	if (argc != 3 || (rounds = atoi(argv[2])) < 1) {
		fprintf(stderr, "usage: %s PAGES_FILE ROUNDS\n", argv[0]);
		return 1;
	}
	f = fopen(argv[1], "rb");
	if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) <= 0 || size % PAGE) {
		fprintf(stderr, "%s: not a file of whole pages\n", argv[1]);
		return 1;
	}
	n_pages = size / PAGE;
	pages = malloc(size);
	packed = malloc(n_pages * DLEN);
	packed_len = malloc(n_pages * sizeof(*packed_len));
	rewind(f);
	if (!pages || !packed || !packed_len || fread(pages, PAGE, n_pages, f) != n_pages ||
	    lzo_init() != LZO_E_OK) {
		fprintf(stderr, "%s: cannot read it, or no memory\n", argv[1]);
		return 1;
	}
	fclose(f);
	printf("liblz4 %s liblzo2 %s\n", LZ4_versionString(), lzo_version_string());
	race("lz4-compress", ours_lz4, theirs_lz4, rounds);
	race("lzo-compress", ours_lzo, theirs_lzo, rounds);
	if (pack(ours_lz4, ours_unlz4, theirs_unlz4))
		return 1;
	race("lz4-decompress", ours_unlz4, theirs_unlz4, rounds);
	if (pack(ours_lzo, ours_unlzo, theirs_unlzo))
		return 1;
	race("lzo-decompress", ours_unlzo, theirs_unlzo, rounds);
	return 0;
}
