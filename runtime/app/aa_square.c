/* Square (Andriushchenko et al., ECCV 2020), L-inf, untargeted: random
 * search on the margin z_y - max_{j != y} z_j through predict alone (no
 * gradient). Start: x0 + eps times vertical stripes of random sign per
 * channel and column. Query q changes one square window of side
 * s = max(round(sqrt(p_q n / C)), 1) (at most H - 1) at a random place to
 * x0 +- eps (one random sign per channel, redrawn until the window
 * changes) and keeps the change if the margin drops; p_q is 0.8 halved at
 * q / queries * 10000 > 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/philox.h"
#include "runtime/app/aa.h"

#define SQUARE_P_INIT 0.8
#define SQUARE_TRIES 10
#define STREAM_SQUARE 0x73717561u /* "squa" */

double aa_square_fraction(int q, int queries) {
    static const int steps[] = {10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000};
    int i = (int)((double)q / queries * 10000);
    double p = SQUARE_P_INIT;
    for (size_t k = 0; k < sizeof steps / sizeof *steps; k++)
        if (i > steps[k]) p /= 2;
    return p;
}

static double margin(const double *z, int64_t k, int y) {
    double other = -INFINITY;
    for (int j = 0; j < k; j++)
        if (j != y) other = fmax(other, z[j]);
    return z[y] - other;
}

static double draw(const AaCtx *c, int q, int64_t r, int slot) {
    uint64_t stride = 2 + (uint64_t)SQUARE_TRIES * (uint64_t)c->C;
    uint64_t index = ((uint64_t)q * (uint64_t)c->B + (uint64_t)r) * stride + (uint64_t)slot;
    return philox_uniform(c->seed, c->batch, STREAM_SQUARE, index);
}

/* Row r of c->x: c->xbest with one window set to x0 +- eps. */
static void propose(AaCtx *c, int q, int64_t r, int64_t s) {
    const int64_t hw = c->H * c->W, base = r * c->img;
    memcpy(c->x + base, c->xbest + base, (size_t)c->img * sizeof(float));
    int64_t top = (int64_t)(draw(c, q, r, 0) * (double)(c->H - s + 1));
    int64_t left = (int64_t)(draw(c, q, r, 1) * (double)(c->W - s + 1));
    for (int t = 0; t < SQUARE_TRIES; t++) {
        bool changed = false;
        for (int64_t ch = 0; ch < c->C; ch++) {
            float sign = draw(c, q, r, 2 + t * (int)c->C + (int)ch) < 0.5 ? -1.0f : 1.0f;
            for (int64_t i = top; i < top + s; i++)
                for (int64_t j = left; j < left + s; j++) {
                    int64_t at = base + ch * hw + i * c->W + j;
                    c->x[at] = aa_clampf(c->x0[at] + sign * (float)c->eps, 0, 1);
                    changed |= fabsf(c->x[at] - c->xbest[at]) >= 1e-7f;
                }
        }
        if (changed) return;
    }
}

static void stripes(AaCtx *c) {
    const int64_t hw = c->H * c->W;
    for (int64_t r = 0; r < c->B; r++)
        for (int64_t ch = 0; ch < c->C; ch++)
            for (int64_t j = 0; j < c->W; j++) {
                float sign = philox_uniform(c->seed, c->batch, STREAM_SQUARE + 1,
                                      (uint64_t)((r * c->C + ch) * c->W + j)) < 0.5 ? -1.0f : 1.0f;
                for (int64_t i = 0; i < c->H; i++) {
                    int64_t at = r * c->img + ch * hw + i * c->W + j;
                    c->xbest[at] = aa_clampf(c->x0[at] + sign * (float)c->eps, 0, 1);
                }
            }
}

void aa_square(AaCtx *c, int queries, bool *robust) {
    if (!aa_count(robust, c->B)) return;
    stripes(c);
    aa_logits(c, c->xbest);
    aa_mark_broken(c, robust);
    for (int64_t r = 0; r < c->B; r++) c->fbest[r] = margin(c->z + r * c->K, c->K, c->y[r]);
    for (int q = 1; q < queries && aa_count(robust, c->B); q++) {
        double p = aa_square_fraction(q, queries);
        int64_t s = (int64_t)llround(sqrt(p * (double)c->img / (double)c->C));
        s = s < 1 ? 1 : s > c->H - 1 ? c->H - 1 : s;
        for (int64_t r = 0; r < c->B; r++) {
            if (robust[r]) propose(c, q, r, s);
            else memcpy(c->x + r * c->img, c->xbest + r * c->img, (size_t)c->img * sizeof(float));
        }
        aa_logits(c, c->x);
        for (int64_t r = 0; r < c->B; r++) {
            double m = margin(c->z + r * c->K, c->K, c->y[r]);
            if (robust[r] && m < c->fbest[r]) {
                c->fbest[r] = m;
                memcpy(c->xbest + r * c->img, c->x + r * c->img, (size_t)c->img * sizeof(float));
            }
        }
        aa_mark_broken(c, robust);
    }
}
