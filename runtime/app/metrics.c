#include "runtime/app/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "base/rt_error.h"

typedef struct {
    float x, y;
} Pair;

typedef struct {
    float v;
    int64_t i;
} Ranked;

/* ---- argument checks ---------------------------------------------------- */

static bool check_vec(const char *fn, const char *name, const float *v, int64_t n, char *err,
                      size_t cap) {
    if (!v) return rt_fail(err, cap, "%s: %s is NULL", fn, name);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return rt_fail(err, cap, "%s: %s[%" PRId64 "] is %g", fn, name, i, (double)v[i]);
    return true;
}

static bool check_pair(const char *fn, const float *x, const float *y, int64_t n, int64_t min_n,
                       double *out, char *err, size_t cap) {
    if (!out) return rt_fail(err, cap, "%s: no output pointer", fn);
    *out = NAN;
    if (n < min_n)
        return rt_fail(err, cap, "%s: n is %" PRId64 ", needs at least %" PRId64, fn, n, min_n);
    return check_vec(fn, "x", x, n, err, cap) && check_vec(fn, "y", y, n, err, cap);
}

/* ---- Kendall's tau-b (Knight 1966) -------------------------------------- */

static int cmp_pair(const void *a, const void *b) {
    const Pair *p = a, *q = b;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    if (p->y != q->y) return p->y < q->y ? -1 : 1;
    return 0;
}

/* Pairs tied within runs of equal keys of a sorted sequence: sum t(t-1)/2. */
static int64_t tied_pairs_x(const Pair *p, int64_t n, bool joint) {
    int64_t ties = 0, run = 1;
    for (int64_t i = 1; i <= n; i++) {
        bool same = i < n && p[i].x == p[i - 1].x && (!joint || p[i].y == p[i - 1].y);
        if (same) {
            run++;
        } else {
            ties += run * (run - 1) / 2;
            run = 1;
        }
    }
    return ties;
}

static int64_t tied_runs(const float *v, int64_t n) {
    int64_t ties = 0, run = 1;
    for (int64_t i = 1; i <= n; i++) {
        if (i < n && v[i] == v[i - 1]) {
            run++;
        } else {
            ties += run * (run - 1) / 2;
            run = 1;
        }
    }
    return ties;
}

/* Bottom-up merge sort of v ascending; returns the number of exchanges an
 * insertion sort would make, i.e. pairs i < j with v[i] > v[j] (equal values
 * are not exchanged: those pairs are ties, not discordances). */
static int64_t sort_count_swaps(float *v, float *tmp, int64_t n) {
    int64_t swaps = 0;
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n - w; lo += 2 * w) {
            int64_t mid = lo + w, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                if (v[i] <= v[j]) {
                    tmp[k++] = v[i++];
                } else {
                    swaps += mid - i;
                    tmp[k++] = v[j++];
                }
            }
            while (i < mid) tmp[k++] = v[i++];
            while (j < hi) tmp[k++] = v[j++];
            for (k = lo; k < hi; k++) v[k] = tmp[k];
        }
    }
    return swaps;
}

MetricStatus metric_kendall_tau_b(const float *x, const float *y, int64_t n, double *out,
                                  char *err, size_t errcap) {
    const char *fn = "kendall_tau_b";
    if (!check_pair(fn, x, y, n, 2, out, err, errcap)) return METRIC_ERROR;
    if (n > METRIC_KENDALL_MAX_N) { /* n (n - 1) must fit in int64_t */
        rt_fail(err, errcap, "%s: n is %" PRId64 ", at most %" PRId64, fn, n,
                (int64_t)METRIC_KENDALL_MAX_N);
        return METRIC_ERROR;
    }
    Pair *p = malloc((size_t)n * sizeof *p);
    float *ys = malloc((size_t)n * sizeof *ys), *tmp = malloc((size_t)n * sizeof *tmp);
    if (!p || !ys || !tmp) {
        free(p), free(ys), free(tmp);
        rt_fail(err, errcap, "%s: out of memory for n = %" PRId64, fn, n);
        return METRIC_ERROR;
    }
    for (int64_t i = 0; i < n; i++) p[i] = (Pair){x[i], y[i]};
    qsort(p, (size_t)n, sizeof *p, cmp_pair);
    int64_t n0 = n * (n - 1) / 2;
    int64_t n1 = tied_pairs_x(p, n, false); /* tied in x (incl. joint) */
    int64_t n3 = tied_pairs_x(p, n, true);  /* tied in x and y */
    for (int64_t i = 0; i < n; i++) ys[i] = p[i].y;
    /* Within a run of equal x, y is already ascending: no swaps there, so
     * every swap counted is a discordant pair. */
    int64_t swaps = sort_count_swaps(ys, tmp, n);
    int64_t n2 = tied_runs(ys, n); /* tied in y (incl. joint) */
    free(p), free(ys), free(tmp);
    if (n1 == n0 || n2 == n0) return METRIC_UNDEFINED; /* a constant map */
    /* P + Q = n0 - n1 - n2 + n3 and Q = swaps. */
    int64_t p_minus_q = n0 - n1 - n2 + n3 - 2 * swaps;
    *out = (double)p_minus_q / sqrt((double)(n0 - n1) * (double)(n0 - n2));
    return METRIC_OK;
}

/* ---- top-k ------------------------------------------------------------- */

static int cmp_ranked(const void *a, const void *b) {
    const Ranked *p = a, *q = b;
    if (p->v != q->v) return p->v > q->v ? -1 : 1;
    return p->i < q->i ? -1 : (p->i > q->i);
}

MetricStatus metric_topk(const float *v, int64_t n, int64_t k, int64_t *idx, char *err,
                         size_t errcap) {
    const char *fn = "topk";
    if (!idx) {
        rt_fail(err, errcap, "%s: no output array", fn);
        return METRIC_ERROR;
    }
    if (n < 1 || k < 1 || k > n) {
        rt_fail(err, errcap, "%s: k is %" PRId64 " for n = %" PRId64 ", needs 1 <= k <= n", fn,
                k, n);
        return METRIC_ERROR;
    }
    if (!check_vec(fn, "v", v, n, err, errcap)) return METRIC_ERROR;
    Ranked *r = malloc((size_t)n * sizeof *r);
    if (!r) {
        rt_fail(err, errcap, "%s: out of memory for n = %" PRId64, fn, n);
        return METRIC_ERROR;
    }
    for (int64_t i = 0; i < n; i++) r[i] = (Ranked){v[i], i};
    qsort(r, (size_t)n, sizeof *r, cmp_ranked);
    for (int64_t i = 0; i < k; i++) idx[i] = r[i].i;
    free(r);
    return METRIC_OK;
}

MetricStatus metric_topk_intersection(const float *a, const float *b, int64_t n, int64_t k,
                                      double *out, char *err, size_t errcap) {
    const char *fn = "topk_intersection";
    if (!out) {
        rt_fail(err, errcap, "%s: no output pointer", fn);
        return METRIC_ERROR;
    }
    *out = NAN;
    if (n < 1 || k < 1 || k > n) {
        rt_fail(err, errcap, "%s: k is %" PRId64 " for n = %" PRId64 ", needs 1 <= k <= n", fn,
                k, n);
        return METRIC_ERROR;
    }
    int64_t *ia = malloc((size_t)k * sizeof *ia), *ib = malloc((size_t)k * sizeof *ib);
    unsigned char *in_a = calloc((size_t)n, 1);
    MetricStatus st = METRIC_ERROR;
    if (!ia || !ib || !in_a) {
        rt_fail(err, errcap, "%s: out of memory for n = %" PRId64, fn, n);
    } else if (metric_topk(a, n, k, ia, err, errcap) == METRIC_OK &&
               metric_topk(b, n, k, ib, err, errcap) == METRIC_OK) {
        int64_t common = 0;
        for (int64_t i = 0; i < k; i++) in_a[ia[i]] = 1;
        for (int64_t i = 0; i < k; i++) common += in_a[ib[i]];
        *out = (double)common / (double)k;
        st = METRIC_OK;
    }
    free(ia), free(ib), free(in_a);
    return st;
}

/* ---- Pearson and cosine ------------------------------------------------ */

/* Tested exactly: a mean computed in floating point need not equal the
 * constant, which would leave tiny nonzero deviations instead of 0/0. */
static bool is_constant(const float *v, int64_t n) {
    for (int64_t i = 1; i < n; i++)
        if (v[i] != v[0]) return false;
    return true;
}

static double mean(const float *v, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    return s / (double)n;
}

MetricStatus metric_pearson(const float *x, const float *y, int64_t n, double *out, char *err,
                            size_t errcap) {
    if (!check_pair("pearson", x, y, n, 2, out, err, errcap)) return METRIC_ERROR;
    if (is_constant(x, n) || is_constant(y, n)) return METRIC_UNDEFINED;
    double mx = mean(x, n), my = mean(y, n), sxy = 0, sxx = 0, syy = 0;
    for (int64_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy, sxx += dx * dx, syy += dy * dy;
    }
    *out = sxy / sqrt(sxx * syy);
    return METRIC_OK;
}

MetricStatus metric_cosine(const float *x, const float *y, int64_t n, double *out, char *err,
                           size_t errcap) {
    if (!check_pair("cosine", x, y, n, 1, out, err, errcap)) return METRIC_ERROR;
    double xy = 0, xx = 0, yy = 0;
    for (int64_t i = 0; i < n; i++) {
        xy += (double)x[i] * y[i], xx += (double)x[i] * x[i], yy += (double)y[i] * y[i];
    }
    if (xx == 0 || yy == 0) return METRIC_UNDEFINED;
    *out = xy / sqrt(xx * yy);
    return METRIC_OK;
}
