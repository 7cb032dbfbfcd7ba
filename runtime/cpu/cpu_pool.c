/* Max and average pooling: direct loops, parallel over the N C planes
 * (each plane's output and, for the backward ops, its dx are written by one
 * thread only). Semantics follow ops/pool.c's kernels exactly: max pooling's
 * padding is -inf, the window's first maximal element in row-major order
 * wins, and a NaN beats everything (so the first NaN wins); average
 * pooling's padding adds 0 and counts in the divisor with
 * count_include_pad. */
#include <math.h>
#include <string.h>

#include "runtime/cpu/cpu_ops_internal.h"

typedef struct {
    int64_t N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW; /* the args' order */
    int64_t include_pad;                                  /* average pooling's arg 12 */
} Geom;

/* The in-bounds rows [*h0, *h1) and columns [*w0, *w1) of window (oh, ow)
 * (max pooling's too) and the average's divisor: KH KW with count_include_pad, else the
 * in-bounds count (>= 1, as the padding is at most half the kernel). */
static double avg_window(const Geom *g, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1,
                         int64_t *w0, int64_t *w1) {
    int64_t h = oh * g->SH - g->PH, w = ow * g->SW - g->PW;
    *h0 = h < 0 ? 0 : h;
    *h1 = h + g->KH < g->H ? h + g->KH : g->H;
    *w0 = w < 0 ? 0 : w;
    *w1 = w + g->KW < g->W ? w + g->KW : g->W;
    return (double)(g->include_pad ? g->KH * g->KW : (*h1 - *h0) * (*w1 - *w0));
}

typedef struct {
    Geom g;
    CpuOp op;
    const void *in0, *in1;
    void *out;
} Job;

/* Plane index of the winner of window (oh, ow), visiting its in-bounds
 * elements in row-major order; -1 for padding only. */
#define DEF_ARGMAX(T, sfx)                                                                     \
    static int64_t argmax_##sfx(const Geom *g, const T *x, int64_t oh, int64_t ow) {           \
        int64_t best = -1, h0, h1, w0, w1;                                                     \
        avg_window(g, oh, ow, &h0, &h1, &w0, &w1);                                             \
        for (int64_t ih = h0; ih < h1; ih++)                                                   \
            for (int64_t i = ih * g->W + w0; i < ih * g->W + w1; i++)                          \
                if (best < 0 || (!isnan(x[best]) && (isnan(x[i]) || x[i] > x[best]))) best = i; \
        return best;                                                                           \
    }

/* Planes [begin, end): max pooling forward / bwd / select, then average
 * pooling forward / bwd, for element type T. The average's window sum (of
 * the in-bounds elements: padding adds 0) is taken in double (it is the interpreter's arithmetic for f64 and more
 * accurate than float for f32). */
#define DEF_POOL(T, sfx)                                                                       \
    DEF_ARGMAX(T, sfx)                                                                         \
    static void pool_##sfx(const Job *j, int64_t begin, int64_t end) {                         \
        const Geom *g = &j->g;                                                                 \
        int64_t HW = g->H * g->W, OHW = g->OH * g->OW;                                         \
        for (int64_t p = begin; p < end; p++) {                                                \
            /* in0 is x, except for avgpool2d_bwd where it is dy */                            \
            const T *x = j->op == CPU_AVGPOOL2D_BWD ? NULL : (const T *)j->in0 + p * HW;      \
            const T *src = (const T *)j->in1;                                                  \
            T *out = (T *)j->out;                                                              \
            if (j->op == CPU_MAXPOOL2D_BWD || j->op == CPU_AVGPOOL2D_BWD)                      \
                memset(out + p * HW, 0, (size_t)HW * sizeof(T));                               \
            for (int64_t oh = 0; oh < g->OH; oh++)                                             \
                for (int64_t ow = 0; ow < g->OW; ow++) {                                       \
                    int64_t w = p * OHW + oh * g->OW + ow, b;                                  \
                    switch (j->op) {                                                           \
                    case CPU_MAXPOOL2D:                                                        \
                        b = argmax_##sfx(g, x, oh, ow);                                        \
                        out[w] = b < 0 ? -(T)INFINITY : x[b];                                  \
                        break;                                                                 \
                    case CPU_MAXPOOL2D_BWD:                                                    \
                        b = argmax_##sfx(g, x, oh, ow);                                        \
                        if (b >= 0) out[p * HW + b] += src[w];                                 \
                        break;                                                                 \
                    case CPU_MAXPOOL2D_SELECT:                                                 \
                        b = argmax_##sfx(g, x, oh, ow);                                        \
                        out[w] = b < 0 ? 0 : src[p * HW + b];                                  \
                        break;                                                                 \
                    case CPU_AVGPOOL2D: {                                                      \
                        int64_t h0, h1, w0, w1;                                                \
                        double div = avg_window(g, oh, ow, &h0, &h1, &w0, &w1), sum = 0.0;     \
                        for (int64_t ih = h0; ih < h1; ih++)                                   \
                            for (int64_t iw = w0; iw < w1; iw++) sum += x[ih * g->W + iw];     \
                        out[w] = (T)(sum / div);                                               \
                        break;                                                                 \
                    }                                                                          \
                    case CPU_AVGPOOL2D_BWD: {                                                  \
                        int64_t h0, h1, w0, w1;                                                \
                        double div = avg_window(g, oh, ow, &h0, &h1, &w0, &w1);                \
                        T v = (T)(((const T *)j->in0)[w] / div);                               \
                        for (int64_t ih = h0; ih < h1; ih++)                                   \
                            for (int64_t iw = w0; iw < w1; iw++)                               \
                                out[p * HW + ih * g->W + iw] += v;                             \
                        break;                                                                 \
                    }                                                                          \
                    case CPU_MATMUL: /* not pooling ops: cpu_op_run sends only pooling */      \
                    case CPU_CONV2D:                                                           \
                    case CPU_CONV2D_BWD_DATA:                                                  \
                    case CPU_CONV2D_BWD_FILTER: break;                                         \
                    }                                                                          \
                }                                                                              \
        }                                                                                      \
    }

DEF_POOL(float, f32)
DEF_POOL(double, f64)

static void pool_f32_range(void *ctx, int64_t begin, int64_t end) { pool_f32(ctx, begin, end); }
static void pool_f64_range(void *ctx, int64_t begin, int64_t end) { pool_f64(ctx, begin, end); }

void cpu_pool_run(ThreadPool *pool, CpuOp op, CpuDtype dt, const int64_t *a, void *const *bufs) {
    bool avg = op == CPU_AVGPOOL2D || op == CPU_AVGPOOL2D_BWD;
    Job j = {{a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11],
              avg ? a[12] : 1},
             op, bufs[1], bufs[2], bufs[0]};
    /* About 16K window taps per chunk: less is not worth a thread hand-off. */
    int64_t taps = j.g.OH * j.g.OW * j.g.KH * j.g.KW;
    int64_t grain = taps >= 16384 ? 1 : 16384 / taps;
    TpRangeFn fn = dt == CPU_F32 ? pool_f32_range : pool_f64_range;
    tp_parallel_for(pool, j.g.N * j.g.C, grain, fn, &j);
}
