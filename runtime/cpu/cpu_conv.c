/* Convolutions as GEMMs over im2col matrices (NCHW x, OIHW w).
 *
 * For sample n the column matrix col (CKK x P, CKK = C KH KW, P = OH OW)
 * holds at row (c, kh, kw), column (oh, ow) the input x[n, c, oh SH - PH +
 * kh, ow SW - PW + kw], or 0 in the padding. Then
 *   conv2d:      y_n (O x P)   = w (O x CKK) . col
 *   bwd_data:    dx_n          = col2im(w^T . dy_n)      (col2im adds)
 *   bwd_filter:  dw (O x CKK)  = sum_n dy_n . col_n^T
 * A 1x1 stride-1 unpadded convolution has col = x_n and skips the copy.
 *
 * Parallel over samples; when there are fewer samples than threads each
 * sample is cut further: forward by output columns, bwd_data by input
 * channels (so col2im's writes stay disjoint), bwd_filter by rows of dw.
 * bwd_filter over samples gives each chunk its own partial dw and sums the
 * partials in chunk order, so the result depends on the thread count only.
 *
 * f32 calls go to oneDNN first when the build has it (cpu_conv_dnnl.c);
 * this file's path runs f64 and whatever oneDNN does not take.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rt_error.h"
#include "runtime/cpu/cpu_conv_dnnl.h"
#include "runtime/cpu/cpu_ops_internal.h"

typedef struct {
    int64_t N, C, H, W, O, KH, KW, SH, SW, PH, PW, OH, OW; /* the args' order */
} Geom;

static Geom geom(const int64_t *a) {
    return (Geom){a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12]};
}

static bool pointwise(const Geom *g) {
    return g->KH == 1 && g->KW == 1 && g->SH == 1 && g->SW == 1 && g->PH == 0 && g->PW == 0;
}

/* The output columns ow whose tap kw lands inside x: [lo, hi). */
static void tap_range(const Geom *g, int64_t kw, int64_t *lo, int64_t *hi) {
    int64_t lim = g->W + g->PW - kw;
    int64_t l = g->PW > kw ? (g->PW - kw + g->SW - 1) / g->SW : 0;
    int64_t h = lim <= 0 ? 0 : (lim - 1) / g->SW + 1;
    h = h < g->OW ? h : g->OW;
    *lo = l < h ? l : h, *hi = h;
}

/* Rows [r0, r1), columns [p0, p1) of sample x's column matrix, stored
 * densely (leading dimension p1 - p0). Per row (c, kh, kw) the taps with
 * iw inside x are the ow in [lo, hi): each output row is zeros, a strided
 * copy (memcpy at stride 1), zeros, with no per-element bounds test. */
#define DEF_IM2COL(T, sfx)                                                                    \
    static void im2col_##sfx(const Geom *g, const T *x, int64_t r0, int64_t r1, int64_t p0,   \
                             int64_t p1, T *col) {                                            \
        int64_t kk = g->KH * g->KW;                                                           \
        for (int64_t r = r0; r < r1; r++) {                                                   \
            int64_t kh = r % kk / g->KW, kw = r % g->KW, lo, hi;                              \
            tap_range(g, kw, &lo, &hi);                                                       \
            const T *xc = x + r / kk * g->H * g->W;                                           \
            for (int64_t p = p0; p < p1;) {                                                   \
                int64_t oh = p / g->OW, a = p % g->OW, b = g->OW;                             \
                b = b - a < p1 - p ? b : a + (p1 - p);                                        \
                int64_t ih = oh * g->SH - g->PH + kh;                                         \
                int64_t l = ih < 0 || ih >= g->H ? b : lo < a ? a : lo > b ? b : lo;          \
                int64_t h = ih < 0 || ih >= g->H ? b : hi < l ? l : hi > b ? b : hi;          \
                memset(col, 0, sizeof(T) * (size_t)(l - a)), col += l - a;                    \
                if (h > l) {                                                                  \
                    const T *xr = xc + ih * g->W + l * g->SW + kw - g->PW;                    \
                    if (g->SW == 1) memcpy(col, xr, sizeof(T) * (size_t)(h - l));             \
                    else                                                                      \
                        for (int64_t k = 0; k < h - l; k++) col[k] = xr[k * g->SW];           \
                }                                                                             \
                col += h - l;                                                                 \
                memset(col, 0, sizeof(T) * (size_t)(b - h)), col += b - h;                    \
                p += b - a;                                                                   \
            }                                                                                 \
        }                                                                                     \
    }

/* Adds the column matrix rows of channels [c0, c1) (col's row 0 is channel
 * c0's first tap) into sample dx at the positions im2col read them from:
 * per row only the taps inside x, [lo, hi), with no per-element test. */
#define DEF_COL2IM(T, sfx)                                                                    \
    static void col2im_##sfx(const Geom *g, const T *col, int64_t c0, int64_t c1, T *dx) {    \
        for (int64_t c = c0; c < c1; c++)                                                     \
            for (int64_t kh = 0; kh < g->KH; kh++)                                            \
                for (int64_t kw = 0; kw < g->KW; kw++, col += g->OH * g->OW) {                \
                    T *xc = dx + c * g->H * g->W;                                             \
                    int64_t lo, hi;                                                           \
                    tap_range(g, kw, &lo, &hi);                                               \
                    for (int64_t oh = 0; oh < g->OH && lo < hi; oh++) {                       \
                        int64_t ih = oh * g->SH - g->PH + kh;                                 \
                        if (ih < 0 || ih >= g->H) continue;                                   \
                        T *xr = xc + ih * g->W + lo * g->SW + kw - g->PW;                     \
                        const T *cr = col + oh * g->OW + lo;                                  \
                        for (int64_t k = 0; k < hi - lo; k++) xr[k * g->SW] += cr[k];         \
                    }                                                                         \
                }                                                                             \
    }

DEF_IM2COL(float, f32)
DEF_IM2COL(double, f64)
DEF_COL2IM(float, f32)
DEF_COL2IM(double, f64)

static void im2col(CpuDtype dt, const Geom *g, const void *x, int64_t r0, int64_t r1, int64_t p0,
                   int64_t p1, void *col) {
    if (dt == CPU_F32) im2col_f32(g, x, r0, r1, p0, p1, col);
    else im2col_f64(g, x, r0, r1, p0, p1, col);
}

static void col2im(CpuDtype dt, const Geom *g, const void *col, int64_t c0, int64_t c1, void *dx) {
    if (dt == CPU_F32) col2im_f32(g, col, c0, c1, dx);
    else col2im_f64(g, col, c0, c1, dx);
}

/* How a call is cut: S slices per sample (or, for bwd_filter over
 * samples, T sample groups with T - 1 partial dw buffers). */
typedef struct {
    int64_t items;      /* parallel work items */
    int64_t S;          /* slices per sample (bwd_filter: rows of dw) */
    int64_t T;          /* bwd_filter: sample groups, 0 when sliced by rows */
    size_t item_bytes;  /* scratch one item needs */
} Plan;

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static Plan plan(CpuOp op, CpuDtype dt, const Geom *g, int threads) {
    int64_t P = g->OH * g->OW, KK = g->KH * g->KW, CKK = g->C * KK;
    size_t es = cpu_esz(dt), pw = pointwise(g);
    Plan p = {0};
    if (op == CPU_CONV2D) {
        p.S = cpu_splits(threads, g->N, P);
        p.item_bytes = pw ? 0 : (size_t)(CKK * ceil_div(P, p.S)) * es;
    } else if (op == CPU_CONV2D_BWD_DATA) {
        p.S = cpu_splits(threads, g->N, g->C);
        p.item_bytes = pw ? 0 : (size_t)(ceil_div(g->C, p.S) * KK * P) * es;
    } else if (g->N >= threads || CKK == 1) {
        p.S = 1;
        p.T = g->N < threads ? g->N : threads;
        p.item_bytes = pw ? 0 : (size_t)(CKK * P) * es;
        return (p.items = p.T), p;
    } else {
        p.S = CKK < threads ? CKK : threads;
        p.item_bytes = pw ? 0 : (size_t)(ceil_div(CKK, p.S) * P) * es;
        return (p.items = p.S), p;
    }
    p.items = g->N * p.S;
    return p;
}

static size_t conv_scratch(CpuOp op, CpuDtype dt, const int64_t *args, int threads) {
    size_t dnnl_bytes;
    if (cpu_dnnl_conv_scratch(op, dt, args, threads, &dnnl_bytes)) return dnnl_bytes;
    Geom g = geom(args);
    Plan p = plan(op, dt, &g, threads);
    int64_t live = p.items < threads ? p.items : threads;
    size_t partials = p.T > 1 ? (size_t)((p.T - 1) * g.O * g.C * g.KH * g.KW) * cpu_esz(dt) : 0;
    return (size_t)live * p.item_bytes + partials;
}

typedef struct {
    Geom g;
    Plan p;
    CpuDtype dt;
    const char *in0, *in1;
    char *out, *partial;
} Job;

#define AT(base, elems) ((base) + (size_t)(elems) * es)

/* Item n S + s: output columns [p0, p1) of sample n. */
static void fwd_range(void *ctx, int64_t begin, int64_t end) {
    const Job *j = ctx;
    const Geom *g = &j->g;
    size_t es = cpu_esz(j->dt);
    int64_t P = g->OH * g->OW, CKK = g->C * g->KH * g->KW, S = j->p.S;
    for (int64_t i = begin; i < end; i++) {
        int64_t n = i / S, s = i % S, p0 = P * s / S, p1 = P * (s + 1) / S;
        const char *x = AT(j->in0, n * g->C * g->H * g->W);
        const void *col = AT(x, p0);
        int64_t ld = P;
        if (!pointwise(g)) {
            void *buf = cpu_scratch(j->p.item_bytes);
            im2col(j->dt, g, x, 0, CKK, p0, p1, buf);
            col = buf, ld = p1 - p0;
        }
        cpu_gemm(j->dt, false, false, g->O, p1 - p0, CKK, j->in1, CKK, col, ld, 0.0,
                 AT(j->out, n * g->O * P + p0), P);
    }
}

/* Item n S + s: input channels [c0, c1) of dx for sample n. */
static void bwd_data_range(void *ctx, int64_t begin, int64_t end) {
    const Job *j = ctx;
    const Geom *g = &j->g;
    size_t es = cpu_esz(j->dt);
    int64_t P = g->OH * g->OW, HW = g->H * g->W, KK = g->KH * g->KW, S = j->p.S;
    for (int64_t i = begin; i < end; i++) {
        int64_t n = i / S, s = i % S, c0 = g->C * s / S, c1 = g->C * (s + 1) / S;
        const char *dy = AT(j->in0, n * g->O * P);
        char *dx = AT(j->out, n * g->C * HW);
        /* Rows [c0 KK, c1 KK) of w^T: columns of the O x CKK matrix w. */
        const char *wt = AT(j->in1, c0 * KK);
        if (pointwise(g)) {
            cpu_gemm(j->dt, true, false, c1 - c0, P, g->O, wt, g->C, dy, P, 0.0, AT(dx, c0 * HW),
                     P);
            continue;
        }
        void *col = cpu_scratch(j->p.item_bytes);
        cpu_gemm(j->dt, true, false, (c1 - c0) * KK, P, g->O, wt, g->C * KK, dy, P, 0.0, col, P);
        memset(AT(dx, c0 * HW), 0, (size_t)((c1 - c0) * HW) * es);
        col2im(j->dt, g, col, c0, c1, dx);
    }
}

/* dw[:, r0:r1] (+)= dy_n . col_n[r0:r1, :]^T; beta 0 for the first sample. */
static void filter_gemm(const Job *j, int64_t n, int64_t r0, int64_t r1, bool first, char *dw,
                        int64_t ldc) {
    const Geom *g = &j->g;
    size_t es = cpu_esz(j->dt);
    int64_t P = g->OH * g->OW;
    const char *x = AT(j->in0, n * g->C * g->H * g->W);
    const void *col = AT(x, r0 * P);
    if (!pointwise(g)) {
        void *buf = cpu_scratch(j->p.item_bytes);
        im2col(j->dt, g, x, r0, r1, 0, P, buf);
        col = buf;
    }
    cpu_gemm(j->dt, false, true, g->O, r1 - r0, P, AT(j->in1, n * g->O * P), P, col, P,
             first ? 0.0 : 1.0, dw, ldc);
}

/* Item t: samples [N t / T, N (t+1) / T) into partial t (dw itself for 0). */
static void bwd_filter_samples(void *ctx, int64_t begin, int64_t end) {
    const Job *j = ctx;
    size_t es = cpu_esz(j->dt);
    int64_t N = j->g.N, T = j->p.T, CKK = j->g.C * j->g.KH * j->g.KW;
    for (int64_t t = begin; t < end; t++) {
        char *acc = t == 0 ? j->out : AT(j->partial, (t - 1) * j->g.O * CKK);
        for (int64_t n = N * t / T; n < N * (t + 1) / T; n++)
            filter_gemm(j, n, 0, CKK, n == N * t / T, acc, CKK);
    }
}

/* Item s: rows [r0, r1) of dw over all samples, in sample order. */
static void bwd_filter_rows(void *ctx, int64_t begin, int64_t end) {
    const Job *j = ctx;
    size_t es = cpu_esz(j->dt);
    int64_t S = j->p.S, CKK = j->g.C * j->g.KH * j->g.KW;
    for (int64_t s = begin; s < end; s++) {
        int64_t r0 = CKK * s / S, r1 = CKK * (s + 1) / S;
        for (int64_t n = 0; n < j->g.N; n++) filter_gemm(j, n, r0, r1, n == 0, AT(j->out, r0), CKK);
    }
}

/* dw[i] += partial_1[i] + ... + partial_{T-1}[i], always in that order. */
static void sum_partials(void *ctx, int64_t begin, int64_t end) {
    const Job *j = ctx;
    int64_t len = j->g.O * j->g.C * j->g.KH * j->g.KW;
    for (int64_t t = 1; t < j->p.T; t++) {
        if (j->dt == CPU_F32) {
            float *dw = (float *)j->out;
            const float *q = (const float *)j->partial + (t - 1) * len;
            for (int64_t i = begin; i < end; i++) dw[i] += q[i];
        } else {
            double *dw = (double *)j->out;
            const double *q = (const double *)j->partial + (t - 1) * len;
            for (int64_t i = begin; i < end; i++) dw[i] += q[i];
        }
    }
}

static void conv_run(ThreadPool *pool, CpuOp op, CpuDtype dt, const int64_t *args,
                     void *const *bufs) {
    if (cpu_dnnl_conv_run(pool, op, dt, args, bufs)) return;
    Geom g = geom(args);
    Job j = {g, plan(op, dt, &g, tp_size(pool)), dt, bufs[1], bufs[2], bufs[0], NULL};
    if (op == CPU_CONV2D) {
        tp_parallel_for(pool, j.p.items, 1, fwd_range, &j);
    } else if (op == CPU_CONV2D_BWD_DATA) {
        tp_parallel_for(pool, j.p.items, 1, bwd_data_range, &j);
    } else if (j.p.T == 0) {
        tp_parallel_for(pool, j.p.items, 1, bwd_filter_rows, &j);
    } else {
        int64_t len = g.O * g.C * g.KH * g.KW;
        if (j.p.T > 1 && !(j.partial = malloc((size_t)((j.p.T - 1) * len) * cpu_esz(dt)))) {
            fprintf(stderr, "igrc runtime: out of memory for conv2d_bwd_filter partials\n");
            abort();
        }
        tp_parallel_for(pool, j.p.items, 1, bwd_filter_samples, &j);
        if (j.p.T > 1) tp_parallel_for(pool, len, 4096, sum_partials, &j);
        free(j.partial);
    }
}

static bool conv_check(const CpuOpRow *r, const int64_t *a, char *err, size_t cap) {
    /* im2col's column matrix is (C KH KW) x (OH OW), a GEMM operand. */
    return cpu_window_ok(r, a, 7, false, err, cap) &&
           cpu_size_ok(r, "w", a[4], a[1], a[5], a[6], err, cap) &&
           cpu_size_ok(r, "y", a[0], a[4], a[11], a[12], err, cap) &&
           cpu_size_ok(r, "the im2col matrix", a[1], a[5], a[6], a[11] * a[12], err, cap) &&
           (a[1] * a[5] * a[6] <= INT_MAX && a[11] * a[12] <= INT_MAX
                ? true
                : rt_fail(err, cap, "%s: C KH KW or OH OW exceeds a BLAS int", r->name));
}

static const char *const CONV_ARGS[] = {"N",  "C",  "H",  "W",  "O",  "KH", "KW",
                                        "SH", "SW", "PH", "PW", "OH", "OW"};

/* The buffers' extents as arg indices: images x, dx [N,C,H,W], weights
 * w, dw [O,C,KH,KW], outputs y, dy [N,O,OH,OW]. */
#define IMG {0, 1, 2, 3}
#define WTS {4, 1, 5, 6}
#define OUT {0, 4, 11, 12}
#define CONV_ROW(e, nm, out, in0, in1)                                                             \
    {.op = e, .name = nm, .nargs = 13, .argnames = CONV_ARGS, .check = conv_check, .nbufs = 3,     \
     .dims = {out, in0, in1}, .run = conv_run, .scratch = conv_scratch}

const CpuOpRow cpu_conv_rows[] = {
    CONV_ROW(CPU_CONV2D, "conv2d", OUT, IMG, WTS),
    CONV_ROW(CPU_CONV2D_BWD_DATA, "conv2d_bwd_data", IMG, OUT, WTS),
    CONV_ROW(CPU_CONV2D_BWD_FILTER, "conv2d_bwd_filter", WTS, IMG, OUT),
    CPU_ROWS_END,
};
