/* Philox 4x32-10, bit-exact with Random123's philox4x32_R(10, ...). */
#include "base/philox.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

/* One Philox round: two 32x32->64 multiplies, the high halves mixed with the
 * other words and the round key, the low halves carried over (permuted). */
static void philox_round(uint32_t x[4], const uint32_t k[2]) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * x[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * x[2];
    uint32_t y0 = (uint32_t)(p1 >> 32) ^ x[1] ^ k[0];
    uint32_t y1 = (uint32_t)p1;
    uint32_t y2 = (uint32_t)(p0 >> 32) ^ x[3] ^ k[1];
    uint32_t y3 = (uint32_t)p0;
    x[0] = y0;
    x[1] = y1;
    x[2] = y2;
    x[3] = y3;
}

void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t x[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int r = 0; r < 10; r++) {
        if (r > 0) { /* Weyl key schedule: bumped before rounds 2..10 */
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(x, k);
    }
    for (int i = 0; i < 4; i++) out[i] = x[i];
}

static void philox_element(uint32_t seed, uint32_t step, uint32_t stream,
                           uint64_t index, uint32_t out[4]) {
    const uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), stream, 0};
    const uint32_t key[2] = {seed, step};
    philox4x32_10(ctr, key, out);
}

/* Top 23 bits, centred in their bucket: 24 significant bits, so exactly
 * representable in a float (a float backend compares the same number),
 * and strictly inside (0,1) so log(u) and bernoulli(p=1) behave. */
static double philox_to_unit(uint32_t w) {
    return ((double)(w >> 9) + 0.5) * (1.0 / 8388608.0);
}

double philox_uniform(uint32_t seed, uint32_t step, uint32_t stream, uint64_t index) {
    uint32_t out[4];
    philox_element(seed, step, stream, index, out);
    return philox_to_unit(out[0]);
}

double philox_normal(uint32_t seed, uint32_t step, uint32_t stream, uint64_t index) {
    /* Not M_PI: strict C17 does not define it. */
    static const double two_pi = 6.283185307179586476925286766559;
    uint32_t out[4];
    philox_element(seed, step, stream, index, out);
    double u1 = philox_to_unit(out[0]);
    double u2 = philox_to_unit(out[1]);
    return sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
}
