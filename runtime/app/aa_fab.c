/* FAB-T (Croce & Hein, "Minimally distorted adversarial examples with a
 * fast adaptive boundary attack", ICML 2020), L-inf, targeted: for the
 * target t, the boundary z_t = z_y is linearised at the iterate x (value
 * f = z_t - z_y, gradient w from grad_logits with dlogits = e_t - e_y); d1
 * and d2 are the smallest L-inf steps from x and from the original x0 onto
 * that hyperplane within [0,1]; with a = min(|d1| / (|d1| + |d2|), 0.1) the
 * next iterate is (1 - a)(x + 1.05 d1) + a (x0 + 1.05 d2), clipped to
 * [0,1]. An iterate the network misclassifies is kept if it is the
 * closest to x0 so far and replaced by x0 + 0.9 (x - x0) (the backward
 * step). A row is broken once such an iterate lies within eps of x0. The
 * first restart starts at x0, later ones at a random point within eps / 2. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/app/aa.h"
#include "runtime/app/app_internal.h"

#define FAB_ALPHA_MAX 0.1
#define FAB_ETA 1.05
#define FAB_BETA 0.9
#define STREAM_FAB 0x66616200u /* "fab" */

static int by_cap(const void *p, const void *q) {
    double a = ((const AaCap *)p)->cap, b = ((const AaCap *)q)->cap;
    return (a > b) - (a < b);
}

/* Every coordinate moves by the same t in the direction that changes the
 * sum toward b, up to its bound; t is found on the bounds sorted. */
double aa_project_linf(const float *w, const float *x, double b, int64_t n, AaCap *scratch, float *d) {
    if (b == 0) {
        memset(d, 0, (size_t)n * sizeof *d);
        return 0;
    }
    const double s = b > 0 ? 1 : -1, need = fabs(b);
    int64_t m = 0;
    double rem = 0;
    for (int64_t i = 0; i < n; i++) {
        if (w[i] == 0) continue;
        double dir = s * (w[i] > 0 ? 1 : -1);
        scratch[m].cap = dir > 0 ? 1.0 - x[i] : x[i];
        scratch[m].a = fabs(w[i]);
        rem += scratch[m++].a;
    }
    qsort(scratch, (size_t)m, sizeof *scratch, by_cap);
    double t = INFINITY, acc = 0;
    for (int64_t j = 0; j < m; j++) {
        if (acc + scratch[j].cap * rem >= need) {
            t = (need - acc) / rem;
            break;
        }
        acc += scratch[j].a * scratch[j].cap;
        rem -= scratch[j].a;
    }
    double norm = 0;
    for (int64_t i = 0; i < n; i++) {
        if (w[i] == 0) {
            d[i] = 0;
            continue;
        }
        double dir = s * (w[i] > 0 ? 1 : -1), cap = dir > 0 ? 1.0 - x[i] : x[i];
        d[i] = (float)(dir * fmin(t, cap));
        norm = fmax(norm, fabs(d[i]));
    }
    return norm;
}

static double linf_dist(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* Rows misclassified at x (c->z): broken if within eps, else stepped back
 * toward x0 when closer than any before. Returns whether any row moved. */
static bool check_and_step_back(AaCtx *c, bool *robust, double *best) {
    bool moved = false;
    for (int64_t r = 0; r < c->B; r++) {
        if (!robust[r] || aa_argmax(c->z + r * c->K, c->K) == c->y[r]) continue;
        float *x = c->x + r * c->img;
        const float *x0 = c->x0 + r * c->img;
        double dist = linf_dist(x, x0, c->img);
        if (dist <= c->eps) {
            robust[r] = false;
            continue;
        }
        best[r] = fmin(best[r], dist);
        for (int64_t i = 0; i < c->img; i++) x[i] = (float)((1 - FAB_BETA) * x0[i] + FAB_BETA * x[i]);
        moved = true;
    }
    return moved;
}

static void fab_step(AaCtx *c, int64_t r, const int *target, AaCap *scratch) {
    const int64_t n = c->img;
    float *x = c->x + r * n, *d1 = c->xprev + r * n, *d2 = c->xbest + r * n;
    const float *x0 = c->x0 + r * n, *w = c->g + r * n;
    const double *z = c->z + r * c->K;
    double f = z[target[r]] - z[c->y[r]], wx = 0;
    for (int64_t i = 0; i < n; i++) wx += (double)w[i] * ((double)x0[i] - x[i]);
    double n1 = aa_project_linf(w, x, -f, n, scratch, d1), n2 = aa_project_linf(w, x0, -f - wx, n, scratch, d2);
    double a = n1 + n2 > 0 ? fmin(n1 / (n1 + n2), FAB_ALPHA_MAX) : 0;
    for (int64_t i = 0; i < n; i++)
        x[i] = aa_clampf((float)((1 - a) * (x[i] + FAB_ETA * d1[i]) + a * (x0[i] + FAB_ETA * d2[i])), 0, 1);
}

static void set_dlogits(AaCtx *c, const int *target) {
    memset(c->wd, 0, (size_t)(c->B * c->K) * sizeof(double));
    for (int64_t r = 0; r < c->B; r++) {
        c->wd[r * c->K + target[r]] += 1;
        c->wd[r * c->K + c->y[r]] -= 1;
    }
}

static void fab_run(AaCtx *c, const int *target, int iters, int restart, uint32_t stream, bool *robust,
                    double *best, AaCap *scratch) {
    for (int64_t r = 0; r < c->B; r++) {
        if (restart > 0 && robust[r]) aa_random_start(c, r, stream, 0.5, c->x);
        else memcpy(c->x + r * c->img, c->x0 + r * c->img, (size_t)c->img * sizeof(float));
        best[r] = INFINITY;
    }
    set_dlogits(c, target);
    for (int k = 0; k <= iters && aa_count(robust, c->B); k++) {
        aa_vjp(c, c->x, c->g);
        if (check_and_step_back(c, robust, best)) aa_vjp(c, c->x, c->g);
        for (int64_t r = 0; k < iters && r < c->B; r++)
            if (robust[r]) fab_step(c, r, target, scratch);
    }
}

void aa_fab_t(AaCtx *c, int iters, int restarts, int targets, bool *robust) {
    int *target = malloc((size_t)c->B * sizeof(int));
    double *best = malloc((size_t)c->B * sizeof(double)), *z0 = malloc((size_t)(c->B * c->K) * sizeof(double));
    AaCap *scratch = malloc((size_t)c->img * sizeof(AaCap));
    if (!target || !best || !z0 || !scratch) {
        fprintf(stderr, "error: out of memory in FAB-T\n");
        exit(APP_FAIL);
    }
    aa_logits(c, c->x0);
    memcpy(z0, c->z, (size_t)(c->B * c->K) * sizeof(double));
    for (int t = 0; t < targets; t++) {
        for (int64_t r = 0; r < c->B; r++) target[r] = aa_ranked_class(z0 + r * c->K, c->K, t + 2);
        for (int k = 0; k < restarts && aa_count(robust, c->B); k++)
            fab_run(c, target, iters, k, STREAM_FAB + 0x100u * (uint32_t)k + 0x10000u * (uint32_t)(t + 1),
                    robust, best, scratch);
    }
    free(target), free(best), free(z0), free(scratch);
}
