/* Max and average pooling: direct loops, parallel over the N C planes
 * (each plane's output and, for the backward ops, its dx are written by one
 * thread only). Semantics follow ops/pool.c's kernels exactly: max pooling's
 * padding is -inf, the window's first maximal element in row-major order
 * wins, and a NaN beats everything (so the first NaN wins); average
 * pooling's padding adds 0 and counts in the divisor with
 * count_include_pad. */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "runtime/cpu/cpu_ops_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define POOL_HAVE_AVX512 1
#endif

typedef struct {
    int64_t N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW; /* the args' order */
    int64_t include_pad;                                  /* average pooling's arg 12 */
} Geom;

/* The in-bounds rows [*h0, *h1) and columns [*w0, *w1) of window (oh, ow),
 * and the average's divisor: KH KW with count_include_pad, else the
 * in-bounds count (>= 1, as the padding is at most half the kernel). */
static double pool_window(const Geom *g, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1,
                          int64_t *w0, int64_t *w1) {
    int64_t h = oh * g->SH - g->PH, w = ow * g->SW - g->PW;
    *h0 = h < 0 ? 0 : h;
    *h1 = h + g->KH < g->H ? h + g->KH : g->H;
    *w0 = w < 0 ? 0 : w;
    *w1 = w + g->KW < g->W ? w + g->KW : g->W;
    return (double)(g->include_pad ? g->KH * g->KW : (*h1 - *h0) * (*w1 - *w0));
}

/* Which pooling kernel a row runs; a switch over these, not over CpuOp,
 * so that an op of another family adds nothing here. */
typedef enum { POOL_MAX, POOL_MAX_BWD, POOL_MAX_SELECT, POOL_AVG, POOL_AVG_BWD } PoolKind;

typedef struct {
    Geom g;
    PoolKind kind;
    const void *in0, *in1;
    void *out;
} Job;

/* Plane index of the winner of window (oh, ow), visiting its in-bounds
 * elements in row-major order; -1 for padding only. */
#define DEF_ARGMAX(T, sfx)                                                                     \
    static int64_t argmax_##sfx(const Geom *g, const T *x, int64_t oh, int64_t ow) {           \
        int64_t best = -1, h0, h1, w0, w1;                                                     \
        pool_window(g, oh, ow, &h0, &h1, &w0, &w1);                                             \
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
            const T *x = j->kind == POOL_AVG_BWD ? NULL : (const T *)j->in0 + p * HW;          \
            const T *src = (const T *)j->in1;                                                  \
            T *out = (T *)j->out;                                                              \
            if (j->kind == POOL_MAX_BWD || j->kind == POOL_AVG_BWD)                            \
                memset(out + p * HW, 0, (size_t)HW * sizeof(T));                               \
            for (int64_t oh = 0; oh < g->OH; oh++)                                             \
                for (int64_t ow = 0; ow < g->OW; ow++) {                                       \
                    int64_t w = p * OHW + oh * g->OW + ow, b;                                  \
                    switch (j->kind) {                                                         \
                    case POOL_MAX:                                                             \
                        b = argmax_##sfx(g, x, oh, ow);                                        \
                        out[w] = b < 0 ? -(T)INFINITY : x[b];                                  \
                        break;                                                                 \
                    case POOL_MAX_BWD:                                                         \
                        b = argmax_##sfx(g, x, oh, ow);                                        \
                        if (b >= 0) out[p * HW + b] += src[w];                                 \
                        break;                                                                 \
                    case POOL_MAX_SELECT:                                                      \
                        b = argmax_##sfx(g, x, oh, ow);                                        \
                        out[w] = b < 0 ? 0 : src[p * HW + b];                                  \
                        break;                                                                 \
                    case POOL_AVG: {                                                           \
                        int64_t h0, h1, w0, w1;                                                \
                        double div = pool_window(g, oh, ow, &h0, &h1, &w0, &w1), sum = 0.0;     \
                        for (int64_t ih = h0; ih < h1; ih++)                                   \
                            for (int64_t iw = w0; iw < w1; iw++) sum += x[ih * g->W + iw];     \
                        out[w] = (T)(sum / div);                                               \
                        break;                                                                 \
                    }                                                                          \
                    case POOL_AVG_BWD: {                                                       \
                        int64_t h0, h1, w0, w1;                                                \
                        double div = pool_window(g, oh, ow, &h0, &h1, &w0, &w1);                \
                        T v = (T)(((const T *)j->in0)[w] / div);                               \
                        for (int64_t ih = h0; ih < h1; ih++)                                   \
                            for (int64_t iw = w0; iw < w1; iw++)                               \
                                out[p * HW + ih * g->W + iw] += v;                             \
                        break;                                                                 \
                    }                                                                          \
                    }                                                                          \
                }                                                                              \
        }                                                                                      \
    }

/* Max pooling over 2x2 windows at stride 2 without padding (SmallCNN's,
 * and most networks'): the windows tile the plane, so the backward writes
 * each dx element of a window once, the winner's (0 + dy, as the general
 * kernel's zeroing and adding gives) and 0 elsewhere, with no scatter; the
 * rows and columns an odd H or W leaves out are zeroed first. The winner
 * is argmax's: the first maximal element in row-major order, a NaN beating
 * everything. 3-4x faster than the general loop at batch 128. */
#define DEF_POOL2(T, sfx)                                                                      \
    static inline int win4_##sfx(const T *r0, const T *r1) {                                  \
        const T v[4] = {r0[0], r0[1], r1[0], r1[1]};                                           \
        int k = 0;                                                                             \
        for (int i = 1; i < 4; i++)                                                            \
            if (!isnan(v[k]) && (isnan(v[i]) || v[i] > v[k])) k = i;                           \
        return k;                                                                              \
    }                                                                                          \
    static void pool2_##sfx(const Job *j, int64_t begin, int64_t end) {                        \
        const Geom *g = &j->g;                                                                 \
        int64_t W = g->W, HW = g->H * W, OHW = g->OH * g->OW;                                  \
        bool ragged = g->H != 2 * g->OH || W != 2 * g->OW;                                     \
        const T *src = (const T *)j->in1;                                                      \
        T *out = (T *)j->out;                                                                  \
        for (int64_t p = begin; p < end; p++) {                                                \
            const T *x = (const T *)j->in0 + p * HW;                                           \
            if (j->kind == POOL_MAX_BWD && ragged)                                             \
                memset(out + p * HW, 0, (size_t)HW * sizeof(T));                               \
            for (int64_t oh = 0; oh < g->OH; oh++)                                             \
                for (int64_t ow = 0; ow < g->OW; ow++) {                                       \
                    int64_t at = 2 * oh * W + 2 * ow, w = p * OHW + oh * g->OW + ow;           \
                    int k = win4_##sfx(x + at, x + at + W);                                    \
                    int64_t off = at + (k >> 1) * W + (k & 1);                                 \
                    if (j->kind == POOL_MAX) {                                                 \
                        out[w] = x[off];                                                       \
                    } else if (j->kind == POOL_MAX_SELECT) {                                   \
                        out[w] = src[p * HW + off];                                            \
                    } else {                                                                   \
                        T *d = out + p * HW + at, v = (T)0 + src[w];                            \
                        d[0] = k == 0 ? v : 0, d[1] = k == 1 ? v : 0;                          \
                        d[W] = k == 2 ? v : 0, d[W + 1] = k == 3 ? v : 0;                      \
                    }                                                                          \
                }                                                                              \
        }                                                                                      \
    }

DEF_POOL(float, f32)
DEF_POOL(double, f64)
DEF_POOL2(float, f32)
DEF_POOL2(double, f64)

/* The f32 2x2 stride-2 kernel in AVX-512, 16 windows of a row pair per
 * iteration, bitwise the scalar kernel's results: the even and odd columns
 * of both rows are split into four vectors (the windows' elements in
 * row-major order), and win4's rule runs lane-wise (a candidate takes over
 * when the best so far is not NaN and it is NaN or greater). The runtime
 * library is built for any x86-64, so this is compiled for AVX-512 alone
 * and chosen when the CPU has it. Pooling was 13% of SmallCNN's standard
 * step in the scalar kernel (about 16 cycles a window). */
#ifdef POOL_HAVE_AVX512
#define AVX512 __attribute__((target("avx512f")))

/* Columns [2 c0, 2 c0 + 2n) of row r split into even and odd ones. */
AVX512 static inline void split16(const float *r, int64_t c0, int n, __m512 *even, __m512 *odd) {
    __mmask16 lo = (__mmask16)(n >= 8 ? 0xffff : (1u << (2 * n)) - 1);
    __mmask16 hi = (__mmask16)(n <= 8 ? 0 : (1u << (2 * (n - 8))) - 1);
    __m512 a = _mm512_maskz_loadu_ps(lo, r + 2 * c0), b = _mm512_maskz_loadu_ps(hi, r + 2 * c0 + 16);
    const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    *even = _mm512_permutex2var_ps(a, ie, b);
    *odd = _mm512_permutex2var_ps(a, io, b);
}

/* Interleaves even and odd columns back into row r's [2 c0, 2 c0 + 2n). */
AVX512 static inline void merge16(float *r, int64_t c0, int n, __m512 even, __m512 odd) {
    __mmask16 lo = (__mmask16)(n >= 8 ? 0xffff : (1u << (2 * n)) - 1);
    __mmask16 hi = (__mmask16)(n <= 8 ? 0 : (1u << (2 * (n - 8))) - 1);
    const __m512i il = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i ih = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    _mm512_mask_storeu_ps(r + 2 * c0, lo, _mm512_permutex2var_ps(even, il, odd));
    _mm512_mask_storeu_ps(r + 2 * c0 + 16, hi, _mm512_permutex2var_ps(even, ih, odd));
}

AVX512 static void pool2_avx512(const Job *j, int64_t begin, int64_t end) {
    const Geom *g = &j->g;
    int64_t W = g->W, HW = g->H * W, OHW = g->OH * g->OW;
    bool ragged = g->H != 2 * g->OH || W != 2 * g->OW;
    float *out = j->out;
    for (int64_t p = begin; p < end; p++) {
        const float *x = (const float *)j->in0 + p * HW, *src = (const float *)j->in1;
        if (j->kind == POOL_MAX_BWD && ragged) memset(out + p * HW, 0, (size_t)HW * sizeof(float));
        for (int64_t oh = 0; oh < g->OH; oh++)
            for (int64_t c0 = 0; c0 < g->OW; c0 += 16) {
                int n = g->OW - c0 < 16 ? (int)(g->OW - c0) : 16;
                __mmask16 m = (__mmask16)((1u << n) - 1);
                const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
                __m512 v[4];
                split16(r0, c0, n, &v[0], &v[1]);
                split16(r1, c0, n, &v[2], &v[3]);
                __m512 best = v[0];
                __m512i k = _mm512_setzero_si512();
                for (int i = 1; i < 4; i++) {
                    __mmask16 t = _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q) &
                                  (_mm512_cmp_ps_mask(v[i], v[i], _CMP_UNORD_Q) |
                                   _mm512_cmp_ps_mask(v[i], best, _CMP_GT_OQ));
                    best = _mm512_mask_mov_ps(best, t, v[i]);
                    k = _mm512_mask_mov_epi32(k, t, _mm512_set1_epi32(i));
                }
                int64_t w = p * OHW + oh * g->OW + c0;
                if (j->kind == POOL_MAX) {
                    _mm512_mask_storeu_ps(out + w, m, best);
                    continue;
                }
                __m512 d[4];
                if (j->kind == POOL_MAX_SELECT) { /* the winner's element of src */
                    split16(src + p * HW + 2 * oh * W, c0, n, &d[0], &d[1]);
                    split16(src + p * HW + 2 * oh * W + W, c0, n, &d[2], &d[3]);
                    __m512 sel = d[0];
                    for (int i = 1; i < 4; i++)
                        sel = _mm512_mask_mov_ps(sel, _mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(i)), d[i]);
                    _mm512_mask_storeu_ps(out + w, m, sel);
                    continue;
                }
                /* backward: 0 + dy at the winner, 0 elsewhere */
                __m512 dy = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(m, src + w));
                for (int i = 0; i < 4; i++)
                    d[i] = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(i)), dy);
                merge16(out + p * HW + 2 * oh * W, c0, n, d[0], d[1]);
                merge16(out + p * HW + 2 * oh * W + W, c0, n, d[2], d[3]);
            }
    }
}

static void pool2_avx512_range(void *ctx, int64_t begin, int64_t end) { pool2_avx512(ctx, begin, end); }
#endif

/* 1: the AVX-512 kernel where the CPU has it; 0: the scalar one; -1 not
 * yet asked. */
static int g_simd = -1;

static bool use_simd(void) {
#ifdef POOL_HAVE_AVX512
    if (g_simd < 0) {
        __builtin_cpu_init();
        g_simd = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return g_simd == 1;
#else
    return false;
#endif
}

bool cpu_pool_set_simd(bool on) {
    g_simd = -1;
    bool have = on && use_simd();
    g_simd = have;
    return have;
}

static void pool_f32_range(void *ctx, int64_t begin, int64_t end) { pool_f32(ctx, begin, end); }
static void pool_f64_range(void *ctx, int64_t begin, int64_t end) { pool_f64(ctx, begin, end); }
static void pool2_f32_range(void *ctx, int64_t begin, int64_t end) { pool2_f32(ctx, begin, end); }
static void pool2_f64_range(void *ctx, int64_t begin, int64_t end) { pool2_f64(ctx, begin, end); }

/* Whether the 2x2 stride-2 max-pooling kernel applies. */
static bool tiles_2x2(const Job *j) {
    const Geom *g = &j->g;
    return j->kind != POOL_AVG && j->kind != POOL_AVG_BWD && g->KH == 2 && g->KW == 2 &&
           g->SH == 2 && g->SW == 2 && g->PH == 0 && g->PW == 0;
}

static void pool_run(ThreadPool *pool, PoolKind kind, CpuDtype dt, const int64_t *a,
                     void *const *bufs) {
    bool avg = kind == POOL_AVG || kind == POOL_AVG_BWD;
    Job j = {{a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11],
              avg ? a[12] : 1},
             kind, bufs[1], bufs[2], bufs[0]};
    /* About 16K window taps per chunk: less is not worth a thread hand-off. */
    int64_t taps = j.g.OH * j.g.OW * j.g.KH * j.g.KW;
    int64_t grain = taps >= 16384 ? 1 : 16384 / taps;
    TpRangeFn fn = tiles_2x2(&j) ? (dt == CPU_F32 ? pool2_f32_range : pool2_f64_range)
                                 : (dt == CPU_F32 ? pool_f32_range : pool_f64_range);
#ifdef POOL_HAVE_AVX512
    if (fn == pool2_f32_range && use_simd()) fn = pool2_avx512_range;
#endif
    tp_parallel_for(pool, j.g.N * j.g.C, grain, fn, &j);
}

/* The rows' run functions: each names its kernel. */
#define DEF_RUN(fn, kind)                                                                      \
    static void fn(ThreadPool *pool, CpuOp op, CpuDtype dt, const int64_t *a,                  \
                   void *const *bufs) {                                                        \
        (void)op;                                                                              \
        pool_run(pool, kind, dt, a, bufs);                                                     \
    }
DEF_RUN(maxpool_run, POOL_MAX)
DEF_RUN(maxpool_bwd_run, POOL_MAX_BWD)
DEF_RUN(maxpool_select_run, POOL_MAX_SELECT)
DEF_RUN(avgpool_run, POOL_AVG)
DEF_RUN(avgpool_bwd_run, POOL_AVG_BWD)

static bool maxpool_check(const CpuOpRow *r, const int64_t *a, char *err, size_t cap) {
    return cpu_window_ok(r, a, 6, false, err, cap) &&
           cpu_size_ok(r, "y", a[0], a[1], a[10], a[11], err, cap);
}

static bool avgpool_check(const CpuOpRow *r, const int64_t *a, char *err, size_t cap) {
    return cpu_window_ok(r, a, 6, true, err, cap) &&
           cpu_size_ok(r, "y", a[0], a[1], a[10], a[11], err, cap);
}

static const char *const POOL_ARGS[] = {"N",  "C",  "H",  "W",  "KH", "KW",
                                        "SH", "SW", "PH", "PW", "OH", "OW"};
static const char *const AVGPOOL_ARGS[] = {"N",  "C",  "H",  "W",  "KH", "KW", "SH",
                                           "SW", "PH", "PW", "OH", "OW", "count_include_pad"};

/* The buffers' extents as arg indices: images x, dx, g [N,C,H,W], pooled
 * maps y, dy [N,C,OH,OW]. */
#define IMG {0, 1, 2, 3}
#define MAP {0, 1, 10, 11}
#define MAX_ROW(e, nm, n, out, in0, in1, fn)                                                       \
    {.op = e, .name = nm, .nargs = 12, .argnames = POOL_ARGS, .check = maxpool_check,              \
     .nbufs = n, .dims = {out, in0, in1}, .run = fn}
#define AVG_ROW(e, nm, out, in0, fn)                                                               \
    {.op = e, .name = nm, .nargs = 13, .argnames = AVGPOOL_ARGS, .check = avgpool_check,           \
     .nbufs = 2, .dims = {out, in0}, .run = fn}

const CpuOpRow cpu_pool_rows[] = {
    MAX_ROW(CPU_MAXPOOL2D, "maxpool2d", 2, MAP, IMG, {0}, maxpool_run),
    MAX_ROW(CPU_MAXPOOL2D_BWD, "maxpool2d_bwd", 3, IMG, IMG, MAP, maxpool_bwd_run),
    MAX_ROW(CPU_MAXPOOL2D_SELECT, "maxpool2d_select", 3, MAP, IMG, IMG, maxpool_select_run),
    AVG_ROW(CPU_AVGPOOL2D, "avgpool2d", MAP, IMG, avgpool_run),
    AVG_ROW(CPU_AVGPOOL2D_BWD, "avgpool2d_bwd", IMG, MAP, avgpool_bwd_run),
    CPU_ROWS_END,
};
