/*
 * faults.c - the compiled twin of zswapsim/faults.py: faults injected on
 * purpose (page-frame allocations, swap-device writes, the evict callback),
 * each kind failing at its rate, drawn from one seeded generator.
 *
 * The one PRNG both engines use: faults.py draws random.Random(seed).random(),
 * so this is CPython's Mersenne Twister (MT19937, Matsumoto and Nishimura)
 * seeded as CPython seeds it from an int -- init_genrand(19650218), then
 * init_by_array over the 32-bit words of abs(seed), least significant first
 * -- and random() is CPython's genrand_res53: two tempered words a and b,
 * ((a >> 5) * 67108864 + (b >> 6)) / 9007199254740992.  The same seed gives
 * the same stream here and in Python, draw for draw
 * (tests/test_zswap_engines.py holds the two side by side).
 */
#include <errno.h>
#include <string.h>

#include "faults.h"

#define MT_M 397
#define MATRIX_A 0x9908b0dfu
#define UPPER_MASK 0x80000000u
#define LOWER_MASK 0x7fffffffu

static void init_genrand(struct fault_plan *plan, uint32_t s)
{
	uint32_t i;

	plan->mt[0] = s;
	for (i = 1; i < MT_N; i++)
		plan->mt[i] = 1812433253u * (plan->mt[i - 1] ^ (plan->mt[i - 1] >> 30)) + i;
	plan->index = MT_N;
}

void faults_seed(struct fault_plan *plan, const uint32_t *key, size_t n)
{
	uint32_t *mt = plan->mt, i = 1;
	size_t j = 0, k;

	init_genrand(plan, 19650218u);
	for (k = MT_N > n ? MT_N : n; k; k--) {
		mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
		i++;
		j++;
		if (i >= MT_N) {
			mt[0] = mt[MT_N - 1];
			i = 1;
		}
		if (j >= n)
			j = 0;
	}
	for (k = MT_N - 1; k; k--) {
		mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941u)) - i;
		i++;
		if (i >= MT_N) {
			mt[0] = mt[MT_N - 1];
			i = 1;
		}
	}
	mt[0] = 0x80000000u;		/* a non-zero initial state */
	plan->index = MT_N;
}

int faults_set_state(struct fault_plan *plan, const uint32_t *mt, uint32_t index)
{
	if (index > MT_N)
		return -EINVAL;
	memcpy(plan->mt, mt, sizeof(plan->mt));
	plan->index = index;
	return 0;
}

static uint32_t twist(uint32_t upper, uint32_t lower, uint32_t far)
{
	uint32_t y = (upper & UPPER_MASK) | (lower & LOWER_MASK);

	return far ^ (y >> 1) ^ ((y & 1u) ? MATRIX_A : 0u);
}

static uint32_t genrand_uint32(struct fault_plan *plan)
{
	uint32_t *mt = plan->mt, y;
	int kk;

	if (plan->index >= MT_N) {
		for (kk = 0; kk < MT_N - MT_M; kk++)
			mt[kk] = twist(mt[kk], mt[kk + 1], mt[kk + MT_M]);
		for (; kk < MT_N - 1; kk++)
			mt[kk] = twist(mt[kk], mt[kk + 1], mt[kk + (MT_M - MT_N)]);
		mt[MT_N - 1] = twist(mt[MT_N - 1], mt[0], mt[MT_M - 1]);
		plan->index = 0;
	}
	y = mt[plan->index++];
	y ^= y >> 11;
	y ^= (y << 7) & 0x9d2c5680u;
	y ^= (y << 15) & 0xefc60000u;
	y ^= y >> 18;
	return y;
}

double faults_random(struct fault_plan *plan)
{
	uint32_t a = genrand_uint32(plan) >> 5, b = genrand_uint32(plan) >> 6;

	return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

bool faults_fail(struct fault_plan *plan, enum fault_kind kind)
{
	double rate = plan->rates[kind];

	if (rate != 0.0 && faults_random(plan) < rate) {
		plan->injected[kind]++;
		return true;
	}
	return false;
}
