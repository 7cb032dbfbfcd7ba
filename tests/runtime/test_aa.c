/* The pieces of the AutoAttack attacks (runtime/app/aa_*.c) against
 * independent computations: the targeted DLR loss against its definition
 * (logits sorted here) and its derivative against central differences;
 * APGD's checkpoints against the paper's recurrence run in integers; FAB's
 * L-inf projection against a bisection on the common step t (feasible and
 * infeasible targets); Square's schedule at its boundaries. The attacks
 * end to end: tests/tools/test_autoattack.c and
 * tests/reference/test_autoattack_reference.py. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/app/aa.h"

static double urand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return ((*s >> 8) & 0xffffff) / 16777216.0;
}

static int desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

static double dlr_by_definition(const double *z, int k, int y, int t) {
    double s[16];
    memcpy(s, z, (size_t)k * sizeof *s);
    qsort(s, (size_t)k, sizeof *s, desc);
    return -(z[y] - z[t]) / (s[0] - 0.5 * (s[2] + s[3]) + 1e-12);
}

Test(aa, dlr_targeted_value_and_derivative) {
    unsigned seed = 7;
    for (int trial = 0; trial < 50; trial++) {
        double z[10], w[10];
        for (int j = 0; j < 10; j++) z[j] = 6 * urand(&seed) - 3;
        int y = trial % 10, t = (trial * 7 + 3) % 10;
        if (t == y) t = (t + 1) % 10;
        double f = aa_dlr_targeted(z, 10, y, t, w);
        cr_assert_float_eq(f, dlr_by_definition(z, 10, y, t), 1e-12, "trial %d", trial);
        for (int j = 0; j < 10; j++) {
            const double h = 1e-6;
            double zp[10], zm[10], scratch[10];
            memcpy(zp, z, sizeof z), memcpy(zm, z, sizeof z);
            zp[j] += h, zm[j] -= h;
            double fd = (aa_dlr_targeted(zp, 10, y, t, scratch) - aa_dlr_targeted(zm, 10, y, t, scratch)) / (2 * h);
            cr_expect(fabs(fd - w[j]) <= 1e-6 * (1 + fabs(fd)), "trial %d, d/dz%d: %g vs differences %g", trial, j,
                      w[j], fd);
        }
    }
}

Test(aa, apgd_checkpoints_follow_the_recurrence) {
    /* p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06),
     * in hundredths: exact in integers. */
    const int iters[] = {100, 20, 1000, 7};
    for (size_t n = 0; n < sizeof iters / sizeof *iters; n++) {
        int want[32], nwant = 0, prev = 0, p = 22;
        while (p <= 100) {
            int wj = (p * iters[n] + 99) / 100;
            if (wj >= 1 && (nwant == 0 || wj > want[nwant - 1])) want[nwant++] = wj;
            int gap = p - prev - 3 > 6 ? p - prev - 3 : 6;
            prev = p, p += gap;
        }
        int got[32], ngot = aa_apgd_checkpoints(iters[n], got, 32);
        cr_assert_eq(ngot, nwant, "N = %d", iters[n]);
        for (int j = 0; j < ngot; j++) cr_expect_eq(got[j], want[j], "N = %d, w_%d", iters[n], j + 1);
    }
    int w[32];
    int n = aa_apgd_checkpoints(100, w, 32);
    const int paper[] = {22, 41, 57, 70, 80, 87, 93, 99};
    cr_assert_eq(n, 8);
    for (int j = 0; j < 8; j++) cr_expect_eq(w[j], paper[j]);
}

/* The largest s * sum w_i d_i with |d_i| <= t inside the box. */
static double reach(const float *w, const float *x, int n, double s, double t) {
    double sum = 0;
    for (int i = 0; i < n; i++) {
        if (w[i] == 0) continue;
        double dir = s * (w[i] > 0 ? 1 : -1), cap = dir > 0 ? 1.0 - x[i] : x[i];
        sum += fabs(w[i]) * fmin(t, cap);
    }
    return sum;
}

Test(aa, linf_projection_is_the_smallest_step) {
    enum { N = 200 };
    unsigned seed = 3;
    float w[N], x[N], d[N];
    AaCap scratch[N];
    for (int trial = 0; trial < 40; trial++) {
        for (int i = 0; i < N; i++) {
            w[i] = i % 9 == 0 ? 0 : (float)(2 * urand(&seed) - 1);
            x[i] = i % 13 == 0 ? (float)(i % 2) : (float)urand(&seed); /* some on the box's faces */
        }
        double s = trial % 2 ? 1 : -1, full = reach(w, x, N, s, 1);
        double b = s * full * (trial < 30 ? 0.05 + 0.9 * urand(&seed) : 1.5); /* the last ten infeasible */
        double norm = aa_project_linf(w, x, b, N, scratch, d);
        double sum = 0, dmax = 0;
        for (int i = 0; i < N; i++) {
            cr_assert(d[i] >= -x[i] - 1e-7 && d[i] <= 1 - x[i] + 1e-7, "trial %d: d_%d outside the box", trial, i);
            sum += (double)w[i] * d[i];
            dmax = fmax(dmax, fabs(d[i]));
        }
        cr_expect_float_eq(norm, dmax, 1e-7);
        if (trial >= 30) { /* infeasible: the point that comes closest */
            cr_expect(fabs(sum - s * full) <= 1e-5 * full, "trial %d: sum %g, best reachable %g", trial, sum, s * full);
            continue;
        }
        cr_expect(fabs(sum - b) <= 1e-5 * fabs(b), "trial %d: w.d = %g, wanted %g", trial, sum, b);
        double lo = 0, hi = 1; /* the smallest t reaching |b|, by bisection */
        for (int it = 0; it < 100; it++) {
            double mid = 0.5 * (lo + hi);
            if (reach(w, x, N, s, mid) >= fabs(b)) hi = mid;
            else lo = mid;
        }
        cr_expect(fabs(norm - hi) <= 1e-6, "trial %d: |d|_inf %g, smallest %g", trial, norm, hi);
    }
    cr_expect_eq(aa_project_linf(w, x, 0, N, scratch, d), 0);
}

Test(aa, square_schedule_halves_at_its_steps) {
    cr_expect_float_eq(aa_square_fraction(1, 5000), 0.8, 1e-15);
    cr_expect_float_eq(aa_square_fraction(5, 5000), 0.8, 1e-15);     /* 10 of 10000: not above 10 */
    cr_expect_float_eq(aa_square_fraction(6, 5000), 0.4, 1e-15);     /* 12 */
    cr_expect_float_eq(aa_square_fraction(100, 5000), 0.2, 1e-15);   /* 200: not above 200 */
    cr_expect_float_eq(aa_square_fraction(101, 5000), 0.1, 1e-15);   /* 202 */
    cr_expect_float_eq(aa_square_fraction(4999, 5000), 0.8 / 512, 1e-15);
    cr_expect_float_eq(aa_square_fraction(1, 1000), 0.8, 1e-15);     /* 10 of 10000 at 1000 queries */
    cr_expect_float_eq(aa_square_fraction(2, 1000), 0.4, 1e-15);     /* 20: in (10, 50] */
}
