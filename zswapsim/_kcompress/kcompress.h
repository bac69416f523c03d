/*
 * kcompress.h - the kernel's page compressors, rewritten from
 * shared/KERNEL-COMPRESSORS.md, shared by module.c and the algorithm files.
 *
 * Every compressor is stateless and takes the destination size its caller
 * gives (zswap 4096, zram 8192): it returns the output length, or 0 where
 * the kernel reports "did not fit".  Every writer stays within dlen bytes of
 * dst.  Every decompressor returns 0 and the output length in *out_len, or
 * -1 for malformed input; it never reads past src + n or writes past
 * dst + cap.  Inputs are at most KC_MAX_INPUT bytes (a 4 KiB page, with room
 * for 64 KiB pages): lz4 then always takes the kernel's 16-bit table.
 */
#ifndef KCOMPRESS_H
#define KCOMPRESS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define KC_MAX_INPUT 65536
/* LZ4_ACCELERATION_MAX of zram's level range; probes (a << 6) stay in 32 bits */
#define KC_LZ4_MAX_ACCELERATION 65537

size_t kc_lz4_compress(const uint8_t *src, size_t n, uint8_t *dst, size_t dlen,
		       unsigned int acceleration);
size_t kc_lz4hc_compress(const uint8_t *src, size_t n, uint8_t *dst, size_t dlen,
			 int level);
int kc_lz4_decompress(const uint8_t *src, size_t n, uint8_t *dst, size_t cap,
		      size_t *out_len);

size_t kc_lzo_compress(const uint8_t *src, size_t n, uint8_t *dst, size_t dlen,
		       int rle);
int kc_lzo_decompress(const uint8_t *src, size_t n, uint8_t *dst, size_t cap,
		      size_t *out_len);

size_t kc_842_compress(const uint8_t *src, size_t n, uint8_t *dst, size_t dlen);
int kc_842_decompress(const uint8_t *src, size_t n, uint8_t *dst, size_t cap,
		      size_t *out_len);

/*
 * The same functions for other extensions (zswapsim._engine's compression
 * cache), through the capsule module.c exports as KC_CAPSULE: one compiled
 * copy of each compressor.
 */
#define KC_CAPSULE "zswapsim._kcompress._C_API"

struct kcompress_api {
	size_t (*lz4_compress)(const uint8_t *src, size_t n, uint8_t *dst, size_t dlen,
			       unsigned int acceleration);
	size_t (*lz4hc_compress)(const uint8_t *src, size_t n, uint8_t *dst, size_t dlen,
				 int level);
	size_t (*lzo_compress)(const uint8_t *src, size_t n, uint8_t *dst, size_t dlen,
			       int rle);
	size_t (*sw842_compress)(const uint8_t *src, size_t n, uint8_t *dst, size_t dlen);
	int (*lz4_decompress)(const uint8_t *src, size_t n, uint8_t *dst, size_t cap,
			      size_t *out_len);
	int (*lzo_decompress)(const uint8_t *src, size_t n, uint8_t *dst, size_t cap,
			      size_t *out_len);
	int (*sw842_decompress)(const uint8_t *src, size_t n, uint8_t *dst, size_t cap,
				size_t *out_len);
};

static inline uint32_t kc_read32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;		/* little-endian hosts only: see setup.py */
}

static inline uint64_t kc_read64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Equal bytes at a and b, counted up to (not including) a_limit. */
static inline size_t kc_count(const uint8_t *a, const uint8_t *b, const uint8_t *a_limit)
{
	const uint8_t *start = a;

	while (a + 8 <= a_limit) {
		uint64_t diff = kc_read64(a) ^ kc_read64(b);

		if (diff)
			return (size_t)(a - start) + (size_t)(__builtin_ctzll(diff) >> 3);
		a += 8;
		b += 8;
	}
	while (a < a_limit && *a == *b) {
		a++;
		b++;
	}
	return (size_t)(a - start);
}

#endif
