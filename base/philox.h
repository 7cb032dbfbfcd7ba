/* Philox 4x32-10 counter-based RNG (Salmon et al., "Parallel random numbers:
 * as easy as 1, 2, 3", SC'11; the Random123 library).
 *
 * Counter-based means element i of a random tensor is a pure function of
 * (seed, step, stream, i): every backend (interpreter, CPU codegen, GPU) can
 * compute any element independently, in any order, and get the same bits.
 *
 * igrc's mapping, used identically by every backend: element `index` of a
 * random op with attribute `stream`, under key (seed, step):
 *   ctr = {(uint32)index, (uint32)(index >> 32), stream, 0}, key = {seed, step}
 *   uniform u = ((out[0] >> 9) + 0.5) * 2^-23, in (0,1), never 0 or 1, and
 *     exactly representable in a float (24 significant bits)
 *   normal (Box-Muller): u1 from out[0], u2 from out[1] the same way,
 *     z = sqrt(-2 ln u1) * cos(2 pi u2)
 *   bernoulli(p) = u < p
 */
#ifndef IGRC_BASE_PHILOX_H
#define IGRC_BASE_PHILOX_H

#include <stdint.h>

void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

double philox_uniform(uint32_t seed, uint32_t step, uint32_t stream, uint64_t index);
double philox_normal(uint32_t seed, uint32_t step, uint32_t stream, uint64_t index);

#endif
