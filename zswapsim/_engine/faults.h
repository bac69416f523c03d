/*
 * faults.h - the API of faults.c, the compiled twin of zswapsim/faults.py.
 */
#ifndef ZSWAPSIM_FAULTS_H
#define ZSWAPSIM_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_N 624

enum fault_kind { FAULT_ALLOC, FAULT_SWAP_WRITE, FAULT_EVICT, FAULT_KINDS };

struct fault_plan {
	uint32_t mt[MT_N];
	uint32_t index;			/* next word of mt to temper; MT_N: regenerate first */
	double rates[FAULT_KINDS];
	uint64_t injected[FAULT_KINDS];
};

/* random.Random(seed) for the int seed whose absolute value has the 32-bit
 * words key[0..n) (least significant first; n = 1, key[0] = 0 for seed 0). */
void faults_seed(struct fault_plan *plan, const uint32_t *key, size_t n);
/* random.Random.setstate's MT part: the 624 words and the index (0..624);
 * -EINVAL for an index out of range. */
int faults_set_state(struct fault_plan *plan, const uint32_t *mt, uint32_t index);
/* random.Random.random(): 53 random bits as a double in [0, 1). */
double faults_random(struct fault_plan *plan);
/* FaultPlan.fail: whether this call of `kind` fails; counted when it does. */
bool faults_fail(struct fault_plan *plan, enum fault_kind kind);

#endif
