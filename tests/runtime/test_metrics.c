/* Attribution metrics: Knight's tau-b against the O(n^2) definition on
 * vectors full of ties, hand-computed cases, top-k tie rules, Pearson and
 * cosine. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/philox.h"
#include "runtime/app/metrics.h"

#define N_OF(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

static int sgn(float d) { return (d > 0) - (d < 0); }

/* tau-b straight from its definition: every pair classified once. */
static double tau_b_pairs(const float *x, const float *y, int64_t n) {
    int64_t p = 0, q = 0, tx = 0, ty = 0;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = i + 1; j < n; j++) {
            int sx = sgn(x[i] - x[j]), sy = sgn(y[i] - y[j]);
            if (sx && sy) {
                if (sx == sy) p++;
                else q++;
            } else if (!sx && sy) {
                tx++;
            } else if (sx && !sy) {
                ty++;
            }
        }
    }
    return (double)(p - q) / sqrt((double)(p + q + tx) * (double)(p + q + ty));
}

static double tau(const float *x, const float *y, int64_t n) {
    double t = -2;
    char err[256] = "";
    MetricStatus st = metric_kendall_tau_b(x, y, n, &t, err, sizeof err);
    cr_assert_eq(st, METRIC_OK, "n %ld: status %d: %s", (long)n, st, err);
    return t;
}

/* Values from {0..levels-1} (levels 0: continuous in [0,1)), so that most
 * pairs are tied when levels is small. */
static void fill(float *v, int64_t n, uint32_t seed, uint32_t stream, int levels) {
    for (int64_t i = 0; i < n; i++) {
        double u = philox_uniform(seed, 7, stream, (uint64_t)i);
        v[i] = levels ? (float)floor(u * levels) : (float)u;
    }
}

Test(kendall, knight_matches_pair_definition_with_ties) {
    static const int64_t sizes[] = {2, 3, 5, 17, 64, 257, 1000, 3000};
    static const int levels[] = {2, 3, 5, 20, 0};
    float *x = malloc(3000 * sizeof *x), *y = malloc(3000 * sizeof *y);
    int checked = 0;
    for (uint32_t seed = 1; seed <= 3; seed++)
        for (int s = 0; s < N_OF(sizes); s++)
            for (int lx = 0; lx < N_OF(levels); lx++) {
                int64_t n = sizes[s];
                fill(x, n, seed, 1, levels[lx]);
                fill(y, n, seed, 2, levels[(lx + seed) % N_OF(levels)]);
                /* Correlate y with x half of the time so tau is not ~0. */
                if (seed % 2)
                    for (int64_t i = 0; i < n; i++) y[i] += x[i];
                double want = tau_b_pairs(x, y, n);
                if (isnan(want)) continue; /* a constant draw at tiny n */
                double got = tau(x, y, n);
                cr_assert(fabs(got - want) <= 1e-12, "seed %u n %ld levels %d: %.17g vs %.17g",
                          seed, (long)n, levels[lx], got, want);
                cr_assert(fabs(tau(y, x, n) - got) <= 1e-12, "tau-b is symmetric");
                checked++;
            }
    cr_assert_geq(checked, 110, "only %d cases had a defined tau", checked);
    free(x);
    free(y);
}

Test(kendall, perfect_agreement_and_reversal) {
    float x[100], up[100], down[100];
    for (int i = 0; i < 100; i++) {
        x[i] = (float)((i * 37) % 100); /* a permutation of 0..99 */
        up[i] = expf(x[i] / 10.0f);     /* monotone transform: same ranking */
        down[i] = -x[i] * 3.0f;
    }
    cr_assert_float_eq(tau(x, up, 100), 1.0, 1e-15);
    cr_assert_float_eq(tau(x, down, 100), -1.0, 1e-15);
}

Test(kendall, hand_computed_ties) {
    /* Pairs: 4 concordant, (2,3) tied in x only, (3,4) tied in y only:
     * 4 / sqrt(5 * 5). */
    float x1[] = {1, 2, 2, 3}, y1[] = {1, 2, 3, 3};
    cr_assert_float_eq(tau(x1, y1, 4), 0.8, 1e-15);
    /* 3 concordant, 2 discordant, 1 tied in y only: 1 / sqrt(5 * 6). */
    float x2[] = {1, 2, 3, 4}, y2[] = {1, 3, 2, 2};
    cr_assert_float_eq(tau(x2, y2, 4), 1.0 / sqrt(30.0), 1e-15);
    /* A pair tied in both maps counts in neither denominator term. */
    float x3[] = {1, 1, 2}, y3[] = {5, 5, 6};
    cr_assert_float_eq(tau(x3, y3, 3), 1.0, 1e-15);
    /* Hundreds of tied zeros, as zero-baseline IG gives on MNIST. */
    float z1[400] = {0}, z2[400] = {0};
    z1[10] = 1, z1[20] = 2;
    z2[10] = 2, z2[30] = 1;
    cr_assert_float_eq(tau(z1, z2, 400), tau_b_pairs(z1, z2, 400), 1e-15);
}

/* n = 100,000: 5e9 pairs, beyond 32-bit counts. x pairs up neighbours
 * (n/2 ties in x, none in y, no discordance): tau-b = sqrt((n0 - n/2) / n0). */
Test(kendall, large_n_needs_64_bit_pair_counts) {
    int64_t n = 100000;
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(i / 2), y[i] = (float)(n - i);
    double n0 = (double)n * (double)(n - 1) / 2;
    cr_assert_float_eq(tau(x, y, n), -sqrt((n0 - (double)n / 2) / n0), 1e-14);
    for (int64_t i = 0; i < n; i++) y[i] = (float)i;
    cr_assert_float_eq(tau(x, y, n), sqrt((n0 - (double)n / 2) / n0), 1e-14);
    free(x);
    free(y);
}

Test(kendall, constant_map_is_undefined) {
    float c[] = {3, 3, 3, 3}, v[] = {1, 2, 3, 4};
    double t = 0;
    cr_assert_eq(metric_kendall_tau_b(c, v, 4, &t, NULL, 0), METRIC_UNDEFINED);
    cr_assert(isnan(t));
    cr_assert_eq(metric_kendall_tau_b(v, c, 4, &t, NULL, 0), METRIC_UNDEFINED);
    cr_assert_eq(metric_kendall_tau_b(c, c, 4, &t, NULL, 0), METRIC_UNDEFINED);
}

Test(kendall, bad_arguments) {
    float v[] = {1, 2, NAN, 4}, w[] = {1, 2, 3, 4};
    double t = 0;
    char err[256];
    cr_assert_eq(metric_kendall_tau_b(w, w, 1, &t, err, sizeof err), METRIC_ERROR);
    cr_assert(strstr(err, "kendall_tau_b: n is 1"), "%s", err);
    cr_assert(isnan(t));
    cr_assert_eq(metric_kendall_tau_b(w, v, 4, &t, err, sizeof err), METRIC_ERROR);
    cr_assert(strstr(err, "y[2] is nan"), "%s", err);
    cr_assert_eq(metric_kendall_tau_b(NULL, w, 4, &t, err, sizeof err), METRIC_ERROR);
    cr_assert(strstr(err, "x is NULL"), "%s", err);
}

static void topk(const float *v, int64_t n, int64_t k, int64_t *idx) {
    char err[256] = "";
    cr_assert_eq(metric_topk(v, n, k, idx, err, sizeof err), METRIC_OK, "%s", err);
}

Test(topk, order_and_ties_by_lower_index) {
    float v[] = {0.5f, 0.9f, 0.9f, 0.1f, 0.9f, -2.0f};
    int64_t idx[6];
    topk(v, 6, 2, idx);
    cr_assert(idx[0] == 1 && idx[1] == 2, "%ld %ld", (long)idx[0], (long)idx[1]);
    topk(v, 6, 6, idx);
    int64_t want[] = {1, 2, 4, 0, 3, 5};
    for (int i = 0; i < 6; i++) cr_assert_eq(idx[i], want[i], "place %d", i);
}

static double inter(const float *a, const float *b, int64_t n, int64_t k) {
    double r = -1;
    char err[256] = "";
    cr_assert_eq(metric_topk_intersection(a, b, n, k, &r, err, sizeof err), METRIC_OK, "%s",
                 err);
    return r;
}

Test(topk, intersection_hand_cases) {
    float a[] = {3, 2, 1, 0}, b[] = {0, 1, 2, 3};
    cr_assert_float_eq(inter(a, b, 4, 2), 0.0, 1e-15);       /* {0,1} vs {3,2} */
    cr_assert_float_eq(inter(a, b, 4, 3), 2.0 / 3.0, 1e-15); /* {0,1,2} vs {3,2,1} */
    cr_assert_float_eq(inter(a, b, 4, 4), 1.0, 1e-15);
    cr_assert_float_eq(inter(a, a, 4, 1), 1.0, 1e-15);
    /* Ties at the k-th value go to the lower indices: {0,1} vs {1,2}. */
    float t1[] = {1, 1, 1, 0}, t2[] = {0, 1, 1, 1};
    cr_assert_float_eq(inter(t1, t2, 4, 2), 0.5, 1e-15);
    /* Magnitudes are the caller's choice: ranked as given, -5 is last. */
    float s1[] = {-5, 1, 2}, s2[] = {5, 1, 2};
    cr_assert_float_eq(inter(s1, s2, 3, 1), 0.0, 1e-15);
}

Test(topk, bad_arguments) {
    float v[] = {1, 2, 3};
    int64_t idx[4];
    double r = 0;
    char err[256];
    cr_assert_eq(metric_topk(v, 3, 4, idx, err, sizeof err), METRIC_ERROR);
    cr_assert(strstr(err, "topk: k is 4 for n = 3"), "%s", err);
    cr_assert_eq(metric_topk(v, 3, 0, idx, err, sizeof err), METRIC_ERROR);
    cr_assert_eq(metric_topk_intersection(v, v, 3, 5, &r, err, sizeof err), METRIC_ERROR);
    cr_assert(strstr(err, "topk_intersection: k is 5"), "%s", err);
    cr_assert(isnan(r));
    float inf[] = {1, INFINITY, 3};
    cr_assert_eq(metric_topk_intersection(v, inf, 3, 1, &r, err, sizeof err), METRIC_ERROR);
    cr_assert(strstr(err, "v[1] is inf"), "%s", err);
}

static double pearson(const float *x, const float *y, int64_t n) {
    double r = -2;
    cr_assert_eq(metric_pearson(x, y, n, &r, NULL, 0), METRIC_OK);
    return r;
}

static double cosine(const float *x, const float *y, int64_t n) {
    double r = -2;
    cr_assert_eq(metric_cosine(x, y, n, &r, NULL, 0), METRIC_OK);
    return r;
}

Test(pearson, hand_cases) {
    /* dx = (-1, 0, 1), dy = (-7/3, -1/3, 8/3): sxy 5, sxx 2, syy 114/9. */
    float x[] = {1, 2, 3}, y[] = {2, 4, 7};
    cr_assert_float_eq(pearson(x, y, 3), 15.0 / sqrt(228.0), 1e-15);
    float lin[] = {4, 7, 10}, neg[] = {0, -1, -2};
    cr_assert_float_eq(pearson(x, lin, 3), 1.0, 1e-15);
    cr_assert_float_eq(pearson(x, neg, 3), -1.0, 1e-15);
    /* A constant map (0.1 does not survive a floating-point mean exactly). */
    float c[1000];
    for (int i = 0; i < 1000; i++) c[i] = 0.1f;
    double r = 0;
    cr_assert_eq(metric_pearson(c, c, 1000, &r, NULL, 0), METRIC_UNDEFINED);
    cr_assert(isnan(r));
    char err[256];
    cr_assert_eq(metric_pearson(x, y, 1, &r, err, sizeof err), METRIC_ERROR);
    cr_assert(strstr(err, "pearson: n is 1"), "%s", err);
}

Test(cosine, hand_cases) {
    float e1[] = {1, 0, 0}, d[] = {1, 1, 0};
    cr_assert_float_eq(cosine(e1, d, 3), 1.0 / sqrt(2.0), 1e-15);
    float a[] = {1, 2}, b[] = {-2, 1}, na[] = {-3, -6};
    cr_assert_float_eq(cosine(a, b, 2), 0.0, 1e-15);
    cr_assert_float_eq(cosine(a, na, 2), -1.0, 1e-15);
    float z[] = {0, 0};
    double r = 0;
    cr_assert_eq(metric_cosine(a, z, 2, &r, NULL, 0), METRIC_UNDEFINED);
    cr_assert(isnan(r));
    char err[256];
    cr_assert_eq(metric_cosine(a, NULL, 2, &r, err, sizeof err), METRIC_ERROR);
    cr_assert(strstr(err, "cosine: y is NULL"), "%s", err);
}
