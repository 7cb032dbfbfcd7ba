/* CPU library kernels against the reference interpreter (the oracle), on
 * random inputs of odd shapes, in f32 and f64, with pools of 1, 2 and 3
 * threads; plus argument checks and scratch accounting.
 *
 * Tolerances, relative (|got - want| <= tol (1 + |want|)), with inputs in
 * [-1, 1): f64 1e-12 (only the summation order differs from the oracle);
 * f32 1e-5 sqrt(K) for a sum of K products (single precision rounding
 * error grows like 6e-8 sqrt(K) for such sums: a wide margin that still
 * catches a wrong or missing term). The oracle runs in f64 on the very
 * values (f32-rounded for the f32 runs) the kernel gets. */
#include <stdio.h>

#include "runtime/cpu/cpu_conv_dnnl.h"
#include "runtime/cpu/cpu_ops.h"
#include "tests/ir/interp_test_util.h"

static const int THREADS[] = {1, 2, 3};
#define NTHREADS 3

/* ---- helpers ---- */

/* n random values in [-1, 1); mode 1 draws from {-1, 0, 1} (ties), mode 2
 * adds a NaN every 7th element; rounded to float for f32. */
static double *rand_vals(int64_t n, uint64_t *seed, CpuDtype dt, int mode) {
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        double r = rnd(seed);
        v[i] = mode == 1 ? round(r) : mode == 2 && i % 7 == 3 ? NAN : r;
        if (dt == CPU_F32) v[i] = (float)v[i];
    }
    return v;
}

static void *to_buf(CpuDtype dt, const double *v, int64_t n) {
    void *b = malloc((size_t)(n ? n : 1) * (dt == CPU_F32 ? 4 : 8));
    for (int64_t i = 0; i < n; i++)
        if (dt == CPU_F32) ((float *)b)[i] = (float)v[i];
        else ((double *)b)[i] = v[i];
    return b;
}

/* Runs a kernel on copies of in0/in1; the output starts as NaN garbage so
 * that an element the kernel forgets to write shows. */
static void *run_kernel(ThreadPool *tp, CpuOp op, CpuDtype dt, const int64_t *args,
                        const double *in0, int64_t n0, const double *in1, int64_t n1,
                        int64_t nout) {
    char err[256];
    cr_assert(cpu_op_check(op, args, err, sizeof err), "%s", err);
    size_t es = dt == CPU_F32 ? 4 : 8;
    void *out = malloc((size_t)nout * es);
    memset(out, 0xff, (size_t)nout * es);
    void *a = to_buf(dt, in0, n0), *b = in1 ? to_buf(dt, in1, n1) : NULL;
    cpu_op_run(tp, op, dt, args, (void *const[]){out, a, b});
    free(a);
    free(b);
    return out;
}

/* The oracle's result for op on f64 operands of the given types. */
static double *oracle(OpKind op, const Attr *at, int na, const Type *tin, double *const *ins,
                      int nin, Type tout) {
    Value v[2] = {0};
    for (int i = 0; i < nin; i++) v[i] = val(tin[i], ins[i]);
    Value out = eval_ok(op, at, na, v, nin, tout);
    free_vals(v, nin);
    return out.data;
}

static void check_close(const char *what, CpuDtype dt, const void *got, const double *want,
                        int64_t n, double tol) {
    for (int64_t i = 0; i < n; i++) {
        double g = dt == CPU_F32 ? ((const float *)got)[i] : ((const double *)got)[i];
        double w = want[i];
        bool ok = isnan(w) ? isnan(g) : isinf(w) ? g == w : fabs(g - w) <= tol * (1 + fabs(w));
        if (!ok) {
            cr_expect(ok, "%s: element %lld of %lld: got %.17g, want %.17g", what, (long long)i,
                      (long long)n, g, w);
            return;
        }
    }
}

static double tol_for(CpuDtype dt, int64_t terms) {
    return dt == CPU_F64 ? 1e-12 : 1e-5 * sqrt((double)terms);
}

static const char *dt_name(CpuDtype dt) { return dt == CPU_F32 ? "f32" : "f64"; }

/* ---- matmul ---- */

typedef struct {
    int64_t batch, M, K, N;
} Mm;

static const Mm MMS[] = {
    {1, 7, 5, 3},     {3, 4, 6, 5},    {2, 33, 17, 9},
    {1, 130, 70, 65}, /* one matrix big enough to be split by rows */
    {5, 64, 32, 48},  /* more batches than threads */
    {1, 1, 1, 1},
};

/* Stored form of a [batch, R, C] tensor, transposed per batch if asked. */
static double *stored(const double *v, int64_t batch, int64_t R, int64_t C, bool trans) {
    double *s = malloc((size_t)(batch * R * C) * sizeof *s);
    for (int64_t b = 0; b < batch; b++)
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < C; j++)
                s[b * R * C + (trans ? j * R + i : i * C + j)] = v[b * R * C + i * C + j];
    return s;
}

Test(cpu_ops, matmul_matches_interp) {
    uint64_t seed = 11;
    ThreadPool *pools[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) pools[t] = tp_new(THREADS[t]);
    for (size_t c = 0; c < sizeof MMS / sizeof *MMS; c++)
        for (int dti = 0; dti < 2; dti++) {
            const Mm *m = &MMS[c];
            CpuDtype dt = (CpuDtype)dti;
            double *a = rand_vals(m->batch * m->M * m->K, &seed, dt, 0);
            double *b = rand_vals(m->batch * m->K * m->N, &seed, dt, 0);
            Type ta = TY(DT_F64, m->batch, m->M, m->K), tb = TY(DT_F64, m->batch, m->K, m->N);
            double *want = oracle(OP_MATMUL, NULL, 0, (Type[]){ta, tb}, (double *[]){a, b}, 2,
                                  TY(DT_F64, m->batch, m->M, m->N));
            for (int tr = 0; tr < 4; tr++) {
                bool tra = tr & 1, trb = tr >> 1;
                double *sa = stored(a, m->batch, m->M, m->K, tra);
                double *sb = stored(b, m->batch, m->K, m->N, trb);
                int64_t args[] = {m->batch, m->M, m->K, m->N, tra, trb};
                for (int t = 0; t < NTHREADS; t++) {
                    void *y = run_kernel(pools[t], CPU_MATMUL, dt, args, sa, m->batch * m->M * m->K,
                                         sb, m->batch * m->K * m->N, m->batch * m->M * m->N);
                    char what[128];
                    snprintf(what, sizeof what, "matmul %s case %zu trans %d%d threads %d",
                             dt_name(dt), c, tra, trb, THREADS[t]);
                    check_close(what, dt, y, want, m->batch * m->M * m->N, tol_for(dt, m->K));
                    free(y);
                }
                free(sa);
                free(sb);
            }
            free(a);
            free(b);
            free(want);
        }
    for (int t = 0; t < NTHREADS; t++) tp_free(pools[t]);
    cpu_ops_release();
}

/* ---- convolution ---- */

typedef struct {
    int64_t N, C, H, W, O, KH, KW, SH, SW, PH, PW;
} Conv;

static const Conv CONVS[] = {
    {3, 5, 7, 7, 4, 3, 3, 1, 1, 1, 1},   /* odd sizes, same padding */
    {2, 3, 11, 9, 6, 5, 3, 2, 1, 2, 1},  /* non-square everything, stride 2 */
    {1, 2, 9, 11, 3, 3, 5, 2, 2, 1, 2},  /* one sample: split within it */
    {1, 4, 8, 8, 3, 1, 1, 1, 1, 0, 0},   /* 1x1 stride 1: no im2col, split */
    {3, 5, 7, 7, 2, 1, 1, 1, 1, 0, 0},   /* 1x1 stride 1 over samples */
    {2, 3, 7, 7, 4, 1, 1, 2, 2, 0, 0},   /* 1x1 but strided: im2col */
    {4, 3, 7, 6, 4, 3, 2, 2, 1, 1, 2},   /* padding as wide as the kernel */
    {2, 3, 5, 5, 2, 5, 5, 1, 1, 0, 0},   /* kernel covers the input */
    {5, 1, 6, 5, 1, 2, 2, 2, 2, 0, 0},   /* one channel in and out */
    {1, 1, 4, 4, 1, 1, 1, 1, 1, 0, 0},   /* C KH KW = 1 */
    /* 16 channels or more: oneDNN's blocked layouts (cpu_conv_dnnl.c) */
    {4, 16, 9, 9, 32, 3, 3, 1, 1, 1, 1},   /* ResNet's 3x3, same padding */
    {3, 32, 8, 8, 16, 3, 3, 2, 2, 1, 1},   /* its stride-2 3x3 */
    {2, 16, 6, 6, 32, 1, 1, 2, 2, 0, 0},   /* its 1x1 stride-2 shortcut */
    {3, 20, 7, 5, 24, 3, 3, 1, 1, 0, 0},   /* channels not a multiple of 16 */
};

static int64_t ext(int64_t in, int64_t k, int64_t s, int64_t p) { return (in + 2 * p - k) / s + 1; }

static void conv_args(const Conv *c, int64_t *a) {
    const int64_t v[13] = {c->N,  c->C,  c->H,  c->W,  c->O,  c->KH, c->KW, c->SH, c->SW,
                           c->PH, c->PW, ext(c->H, c->KH, c->SH, c->PH),
                           ext(c->W, c->KW, c->SW, c->PW)};
    memcpy(a, v, sizeof v);
}

/* Runs the three conv ops of case c in dtype dt against the oracle, each
 * twice per pool: both runs must agree bit for bit. */
static void conv_case(const Conv *c, CpuDtype dt, ThreadPool *const *pools, uint64_t *seed) {
    int64_t a[13];
    conv_args(c, a);
    int64_t OH = a[11], OW = a[12];
    int64_t nx = c->N * c->C * c->H * c->W, nw = c->O * c->C * c->KH * c->KW,
            ny = c->N * c->O * OH * OW;
    Type tx = TY(DT_F64, c->N, c->C, c->H, c->W), tw = TY(DT_F64, c->O, c->C, c->KH, c->KW),
         ty = TY(DT_F64, c->N, c->O, OH, OW);
    double *x = rand_vals(nx, seed, dt, 0), *w = rand_vals(nw, seed, dt, 0),
           *dy = rand_vals(ny, seed, dt, 0);
    int64_t attr_v[8] = {c->SH, c->SW, c->PH, c->PW, c->KH, c->KW, 0, 0};
    Attr at[3] = {attr_ints("stride", attr_v, 2), attr_ints("padding", attr_v + 2, 2)};
    struct {
        CpuOp op;
        OpKind kind;
        double *in0, *in1;
        int64_t n0, n1, nout, terms;
        Type t0, t1, tout;
    } ops[3] = {
        {CPU_CONV2D, OP_CONV2D, x, w, nx, nw, ny, c->C * c->KH * c->KW, tx, tw, ty},
        {CPU_CONV2D_BWD_DATA, OP_CONV2D_BWD_DATA, dy, w, ny, nw, nx, c->O * c->KH * c->KW, ty,
         tw, tx},
        {CPU_CONV2D_BWD_FILTER, OP_CONV2D_BWD_FILTER, x, dy, nx, ny, nw, c->N * OH * OW, tx, ty,
         tw},
    };
    for (int k = 0; k < 3; k++) {
        int na = 2;
        if (ops[k].op == CPU_CONV2D_BWD_DATA) at[na++] = attr_ints("input_shape", tx.dim, 4);
        if (ops[k].op == CPU_CONV2D_BWD_FILTER) at[na++] = attr_ints("kernel", attr_v + 4, 2);
        double *want = oracle(ops[k].kind, at, na, (Type[]){ops[k].t0, ops[k].t1},
                              (double *[]){ops[k].in0, ops[k].in1}, 2, ops[k].tout);
        for (int t = 0; t < NTHREADS; t++) {
            void *r1 = run_kernel(pools[t], ops[k].op, dt, a, ops[k].in0, ops[k].n0, ops[k].in1,
                                  ops[k].n1, ops[k].nout);
            void *r2 = run_kernel(pools[t], ops[k].op, dt, a, ops[k].in0, ops[k].n0, ops[k].in1,
                                  ops[k].n1, ops[k].nout);
            char what[160];
            snprintf(what, sizeof what, "%s %s N%lld C%lld %lldx%lld O%lld k%lldx%lld threads %d",
                     cpu_op_name(ops[k].op), dt_name(dt), (long long)c->N, (long long)c->C,
                     (long long)c->H, (long long)c->W, (long long)c->O, (long long)c->KH,
                     (long long)c->KW, THREADS[t]);
            check_close(what, dt, r1, want, ops[k].nout, tol_for(dt, ops[k].terms));
            cr_expect(!memcmp(r1, r2, (size_t)ops[k].nout * (dt == CPU_F32 ? 4 : 8)),
                      "%s: two runs differ", what);
            free(r1);
            free(r2);
        }
        free(want);
    }
    free(x);
    free(w);
    free(dy);
}

Test(cpu_ops, conv_matches_interp) {
    uint64_t seed = 5;
    ThreadPool *pools[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) pools[t] = tp_new(THREADS[t]);
    for (size_t c = 0; c < sizeof CONVS / sizeof *CONVS; c++) {
        conv_case(&CONVS[c], CPU_F32, pools, &seed);
        conv_case(&CONVS[c], CPU_F64, pools, &seed);
    }
    for (int t = 0; t < NTHREADS; t++) tp_free(pools[t]);
    cpu_ops_release();
}

/* The same cases with oneDNN turned off: f32 through im2col + OpenBLAS. */
Test(cpu_ops, conv_im2col_matches_interp) {
    cpu_dnnl_set_enabled(false);
    uint64_t seed = 6;
    ThreadPool *pools[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) pools[t] = tp_new(THREADS[t]);
    for (size_t c = 0; c < sizeof CONVS / sizeof *CONVS; c++)
        conv_case(&CONVS[c], CPU_F32, pools, &seed);
    for (int t = 0; t < NTHREADS; t++) tp_free(pools[t]);
    cpu_ops_release();
    cpu_dnnl_set_enabled(true);
}

/* bwd_filter over many samples (each thread's partial dw summed in a fixed
 * order): five runs with fresh pools of the same size agree bit for bit,
 * and a NULL pool equals a pool of one. */
Test(cpu_ops, conv_bwd_filter_deterministic) {
    uint64_t seed = 77;
    const Conv c = {13, 4, 9, 9, 6, 3, 3, 1, 1, 1, 1};
    int64_t a[13];
    conv_args(&c, a);
    int64_t nx = c.N * c.C * c.H * c.W, ny = c.N * c.O * a[11] * a[12], nw = c.O * c.C * 9;
    double *x = rand_vals(nx, &seed, CPU_F32, 0), *dy = rand_vals(ny, &seed, CPU_F32, 0);
    for (int t = 0; t < NTHREADS; t++) {
        void *first = NULL;
        for (int rep = 0; rep < 5; rep++) {
            ThreadPool *tp = tp_new(THREADS[t]);
            void *dw = run_kernel(tp, CPU_CONV2D_BWD_FILTER, CPU_F32, a, x, nx, dy, ny, nw);
            tp_free(tp);
            if (!first) first = dw;
            else {
                cr_expect(!memcmp(first, dw, (size_t)nw * 4), "threads %d run %d differs",
                          THREADS[t], rep);
                free(dw);
            }
        }
        if (t == 0) {
            void *dw = run_kernel(NULL, CPU_CONV2D_BWD_FILTER, CPU_F32, a, x, nx, dy, ny, nw);
            cr_expect(!memcmp(first, dw, (size_t)nw * 4), "NULL pool differs from 1 thread");
            free(dw);
        }
        free(first);
    }
    free(x);
    free(dy);
    cpu_ops_release();
}

/* ---- pooling ---- */

typedef struct {
    int64_t N, C, H, W, KH, KW, SH, SW, PH, PW;
} Pool;

static const Pool POOLS[] = {
    {3, 5, 7, 7, 3, 3, 2, 2, 1, 1},   /* odd, overlapping, padded */
    {2, 3, 11, 9, 2, 3, 1, 2, 0, 1},  /* non-square, mixed strides */
    {1, 2, 6, 6, 2, 2, 2, 2, 0, 0},   /* the classic 2x2/2 (its own kernel) */
    {2, 3, 7, 9, 2, 2, 2, 2, 0, 0},   /* 2x2/2 leaving the last row and column out */
    {2, 2, 5, 7, 5, 5, 1, 1, 2, 2},   /* 5x5 windows, padding 2 */
    {1, 3, 9, 11, 3, 2, 3, 1, 1, 0},  /* stride larger than kernel height */
    {1, 2, 4, 4, 2, 2, 1, 1, 2, 2},   /* corner windows hold only padding */
    {2, 2, 8, 40, 2, 2, 2, 2, 0, 0},  /* 2x2/2, rows of 20 windows: 16 + 4 */
    {1, 3, 9, 67, 2, 2, 2, 2, 0, 0},  /* 2x2/2, 33 windows a row and a ragged edge */
};

static void pool_args(const Pool *p, int64_t *a, bool padded) {
    int64_t ph = padded ? p->PH : 0, pw = padded ? p->PW : 0;
    const int64_t v[12] = {p->N,  p->C,  p->H,  p->W, p->KH, p->KW, p->SH, p->SW, ph, pw,
                           ext(p->H, p->KH, p->SH, ph), ext(p->W, p->KW, p->SW, pw)};
    memcpy(a, v, sizeof v);
}

/* The five pooling ops of case p, data mode `mode`, against the oracle;
 * the average pools with padding counted in the divisor and, when padded,
 * not. Average pooling takes the case's padding when it is at most half
 * the kernel (PyTorch's rule), else none. */
static void pool_case(const Pool *p, CpuDtype dt, int mode, ThreadPool *const *pools,
                      uint64_t *seed) {
    for (int kind = 0; kind < 3; kind++) { /* max, avg counting padding, avg not */
        int avg = kind > 0, cip = kind == 1;
        bool padded = !avg || (2 * p->PH <= p->KH && 2 * p->PW <= p->KW);
        if (kind == 2 && (!padded || (p->PH == 0 && p->PW == 0))) continue;
        int64_t a[13];
        pool_args(p, a, padded);
        a[12] = cip;
        int64_t nx = p->N * p->C * p->H * p->W, ny = p->N * p->C * a[10] * a[11];
        Type tx = TY(DT_F64, p->N, p->C, p->H, p->W), ty = TY(DT_F64, p->N, p->C, a[10], a[11]);
        double *x = rand_vals(nx, seed, dt, avg ? 0 : mode), *dy = rand_vals(ny, seed, dt, 0),
               *g = rand_vals(nx, seed, dt, 0);
        Attr at[5] = {attr_ints("kernel", a + 4, 2), attr_ints("stride", a + 6, 2),
                      attr_ints("padding", a + 8, 2), attr_int("count_include_pad", cip),
                      attr_ints("input_shape", tx.dim, 4)};
        struct {
            CpuOp op;
            OpKind kind;
            int nin, nattr;
            double *in0, *in1;
            int64_t n0, n1, nout, terms;
            Type t0, t1, tout;
        } ops[3] = {
            {CPU_MAXPOOL2D, OP_MAXPOOL2D, 1, 3, x, NULL, nx, 0, ny, 1, tx, tx, ty},
            {CPU_MAXPOOL2D_BWD, OP_MAXPOOL2D_BWD, 2, 3, x, dy, nx, ny, nx, p->KH * p->KW, tx, ty,
             tx},
            {CPU_MAXPOOL2D_SELECT, OP_MAXPOOL2D_SELECT, 2, 3, x, g, nx, nx, ny, 1, tx, tx, ty},
        };
        if (avg) {
            ops[0] = (__typeof__(ops[0])){CPU_AVGPOOL2D, OP_AVGPOOL2D, 1, 4, x, NULL, nx, 0, ny,
                                          p->KH * p->KW, tx, tx, ty};
            ops[1] = (__typeof__(ops[1])){CPU_AVGPOOL2D_BWD, OP_AVGPOOL2D_BWD, 1, 5, dy, NULL, ny,
                                          0, nx, p->KH * p->KW, ty, ty, tx};
        }
        for (int k = 0; k < (avg ? 2 : 3); k++) {
            double *want = oracle(ops[k].kind, at, ops[k].nattr, (Type[]){ops[k].t0, ops[k].t1},
                                  (double *[]){ops[k].in0, ops[k].in1}, ops[k].nin, ops[k].tout);
            for (int t = 0; t < NTHREADS; t++) {
                void *r = run_kernel(pools[t], ops[k].op, dt, a, ops[k].in0, ops[k].n0,
                                     ops[k].in1, ops[k].n1, ops[k].nout);
                char what[160];
                snprintf(what, sizeof what, "%s %s mode %d N%lld C%lld %lldx%lld k%lldx%lld "
                         "p%lldx%lld cip %d threads %d", cpu_op_name(ops[k].op), dt_name(dt), mode,
                         (long long)p->N, (long long)p->C, (long long)p->H, (long long)p->W,
                         (long long)p->KH, (long long)p->KW, (long long)a[8], (long long)a[9],
                         cip, THREADS[t]);
                /* max forward and select copy an element: exact. */
                double tol = ops[k].op == CPU_MAXPOOL2D || ops[k].op == CPU_MAXPOOL2D_SELECT
                                 ? 0.0
                                 : tol_for(dt, ops[k].terms);
                check_close(what, dt, r, want, ops[k].nout, tol);
                free(r);
            }
            free(want);
        }
        free(x);
        free(dy);
        free(g);
    }
}

/* Every case with the f32 2x2/2 kernel in AVX-512 (where the CPU has it)
 * and in scalar code: both exact against the oracle, ties and NaN too. */
Test(cpu_ops, pool_matches_interp) {
    uint64_t seed = 3;
    ThreadPool *pools[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) pools[t] = tp_new(THREADS[t]);
    for (int simd = 1; simd >= 0; simd--) {
        bool on = cpu_pool_set_simd(simd);
        if (simd && !on) fprintf(stderr, "pool_matches_interp: no AVX-512 here, scalar only\n");
        for (size_t c = 0; c < sizeof POOLS / sizeof *POOLS; c++)
            for (int mode = 0; mode < 3; mode++) {
                pool_case(&POOLS[c], CPU_F32, mode, pools, &seed);
                pool_case(&POOLS[c], CPU_F64, mode, pools, &seed);
            }
    }
    cpu_pool_set_simd(true);
    for (int t = 0; t < NTHREADS; t++) tp_free(pools[t]);
    cpu_ops_release();
}

/* Hand case for the tie and NaN rules: x = [[1, 3, 3], [NaN, 3, NaN]],
 * 2x2 windows, stride 1: window 0 holds 1 3 / NaN 3 and the NaN at (1,0)
 * wins; window 1 holds 3 3 / 3 NaN and the NaN at (1,2) wins. With the
 * rows swapped back to finite values the first 3 wins. */
Test(cpu_ops, maxpool_ties_and_nan) {
    int64_t a[12] = {1, 1, 2, 3, 2, 2, 1, 1, 0, 0, 1, 2};
    double x[6] = {1, 3, 3, NAN, 3, NAN}, dy[2] = {10, 20};
    double *y = run_kernel(NULL, CPU_MAXPOOL2D, CPU_F64, a, x, 6, NULL, 0, 2);
    cr_expect(isnan(y[0]) && isnan(y[1]));
    double *dx = run_kernel(NULL, CPU_MAXPOOL2D_BWD, CPU_F64, a, x, 6, dy, 2, 6);
    const double want[6] = {0, 0, 0, 10, 0, 20};
    for (int i = 0; i < 6; i++) cr_expect_eq(dx[i], want[i], "dx[%d] = %g", i, dx[i]);
    double x2[6] = {1, 3, 3, 2, 3, 0};
    double *dx2 = run_kernel(NULL, CPU_MAXPOOL2D_BWD, CPU_F64, a, x2, 6, dy, 2, 6);
    const double want2[6] = {0, 30, 0, 0, 0, 0};
    for (int i = 0; i < 6; i++) cr_expect_eq(dx2[i], want2[i], "dx2[%d] = %g", i, dx2[i]);
    free(y);
    free(dx);
    free(dx2);
}

/* ---- argument checks and accounting ---- */

static void expect_reject(CpuOp op, const int64_t *a, const char *needle) {
    char err[256] = "";
    cr_expect(!cpu_op_check(op, a, err, sizeof err), "%s accepted bad args", cpu_op_name(op));
    cr_expect(strstr(err, cpu_op_name(op)) && strstr(err, needle), "message '%s' lacks '%s'",
              err, needle);
}

Test(cpu_ops, check_args) {
    char err[256];
    int64_t mm[6] = {2, 3, 4, 5, 0, 1};
    cr_expect(cpu_op_check(CPU_MATMUL, mm, err, sizeof err), "%s", err);
    expect_reject(CPU_MATMUL, (int64_t[]){2, 3, 4, 5, 2, 0}, "trans_a");
    expect_reject(CPU_MATMUL, (int64_t[]){2, 0, 4, 5, 0, 0}, "M");
    int64_t cv[13] = {2, 3, 7, 7, 4, 3, 3, 2, 2, 1, 1, 4, 4};
    cr_expect(cpu_op_check(CPU_CONV2D, cv, err, sizeof err), "%s", err);
    cv[11] = 3;
    expect_reject(CPU_CONV2D_BWD_DATA, cv, "OH");
    cv[11] = 4;
    cv[12] = 5;
    expect_reject(CPU_CONV2D_BWD_FILTER, cv, "OW");
    cv[12] = 4;
    cv[9] = -1;
    expect_reject(CPU_CONV2D, cv, "PH");
    cv[9] = 1;
    cv[8] = 0;
    expect_reject(CPU_CONV2D, cv, "SW");
    int64_t big[13] = {1, 1, 2, 2, 1, 5, 1, 1, 1, 1, 0, 0, 2}; /* 5-tall kernel, H + 2 = 4 */
    expect_reject(CPU_CONV2D, big, "KH");
    int64_t pl[13] = {1, 2, 6, 6, 2, 2, 2, 2, 0, 0, 3, 3, 1};
    cr_expect(cpu_op_check(CPU_AVGPOOL2D, pl, err, sizeof err), "%s", err);
    pl[8] = 1;
    pl[10] = 4;
    cr_expect(cpu_op_check(CPU_MAXPOOL2D, pl, err, sizeof err), "%s", err);
    cr_expect(cpu_op_check(CPU_AVGPOOL2D, pl, err, sizeof err), "padding 1 <= 2 / 2: %s", err);
    pl[12] = 2;
    expect_reject(CPU_AVGPOOL2D_BWD, pl, "count_include_pad");
    pl[12] = 0;
    int64_t over[13] = {1, 2, 6, 6, 2, 2, 2, 2, 2, 0, 5, 3, 1}; /* PH 2 > KH / 2 */
    cr_expect(cpu_op_check(CPU_MAXPOOL2D, over, err, sizeof err), "%s", err);
    expect_reject(CPU_AVGPOOL2D, over, "PH");
    expect_reject(CPU_MAXPOOL2D_SELECT, (int64_t[]){1, 2, 6, 6, 2, 2, 2, 2, 1, 0, 4, 4}, "OW");
    cr_expect(!cpu_op_check(CPU_OP_COUNT, mm, err, sizeof err));
    cr_expect_eq(cpu_op_nargs(CPU_MATMUL), 6);
    cr_expect_eq(cpu_op_nargs(CPU_CONV2D_BWD_FILTER), 13);
    cr_expect_eq(cpu_op_nargs(CPU_MAXPOOL2D), 12);
    cr_expect_eq(cpu_op_nargs(CPU_AVGPOOL2D_BWD), 13);
    cr_expect_eq(cpu_op_nargs(CPU_OP_COUNT), -1);
    cr_expect_str_eq(cpu_op_name(CPU_MAXPOOL2D_SELECT), "maxpool2d_select");
}

/* Every op has its row (the registry aborts on a missing or duplicate one)
 * and its buffers' extents come from the right args. */
Test(cpu_ops, every_op_has_a_row) {
    int64_t a[CPU_OP_MAX_ARGS], d[3][4];
    for (int i = 0; i < CPU_OP_MAX_ARGS; i++) a[i] = 100 + i;
    for (int op = 0; op < CPU_OP_COUNT; op++) {
        cr_expect_str_neq(cpu_op_name((CpuOp)op), "?", "op %d", op);
        int n = cpu_op_buffer_dims((CpuOp)op, a, d);
        cr_expect(n == 2 || n == 3, "%s: %d buffers", cpu_op_name((CpuOp)op), n);
    }
    cr_expect_eq(cpu_op_buffer_dims(CPU_OP_COUNT, a, d), 0);
    /* dw [O,C,KH,KW] from x [N,C,H,W] and dy [N,O,OH,OW] */
    cr_assert_eq(cpu_op_buffer_dims(CPU_CONV2D_BWD_FILTER, a, d), 3);
    int64_t want[3][4] = {{104, 101, 105, 106}, {100, 101, 102, 103}, {100, 104, 111, 112}};
    cr_expect(!memcmp(d, want, sizeof want));
    /* matmul's out [batch,M,N]: the fourth extent is 1 */
    cpu_op_buffer_dims(CPU_MATMUL, a, d);
    cr_expect(d[0][0] == 100 && d[0][1] == 101 && d[0][2] == 103 && d[0][3] == 1);
    /* avgpool2d_bwd: dx [N,C,H,W] from dy [N,C,OH,OW]; no third buffer */
    cr_assert_eq(cpu_op_buffer_dims(CPU_AVGPOOL2D_BWD, a, d), 2);
    cr_expect(d[1][2] == 110 && d[1][3] == 111 && d[2][0] == 1);
}

/* im2col's scratch (oneDNN off). */
Test(cpu_ops, scratch_bytes) {
    cpu_dnnl_set_enabled(false);
    /* 3x3 conv, N 3, C 5, 7x7 -> 7x7: one im2col matrix is 45 x 49. */
    int64_t cv[13] = {3, 5, 7, 7, 4, 3, 3, 1, 1, 1, 1, 7, 7};
    size_t col = 45 * 49;
    cr_expect_eq(cpu_op_scratch_bytes(CPU_CONV2D, CPU_F32, cv, 1), col * 4);
    cr_expect_eq(cpu_op_scratch_bytes(CPU_CONV2D, CPU_F64, cv, 3), 3 * col * 8);
    cr_expect_eq(cpu_op_scratch_bytes(CPU_CONV2D_BWD_DATA, CPU_F32, cv, 2), 2 * col * 4);
    /* bwd_filter over 3 samples and 3 threads: 3 columns + 2 partial dw. */
    cr_expect_eq(cpu_op_scratch_bytes(CPU_CONV2D_BWD_FILTER, CPU_F32, cv, 3),
                 (3 * col + 2 * 4 * 45) * 4);
    int64_t pw[13] = {3, 5, 7, 7, 4, 1, 1, 1, 1, 0, 0, 7, 7};
    cr_expect_eq(cpu_op_scratch_bytes(CPU_CONV2D, CPU_F32, pw, 4), 0);
    int64_t pl[12] = {1, 2, 6, 6, 2, 2, 2, 2, 0, 0, 3, 3};
    cr_expect_eq(cpu_op_scratch_bytes(CPU_MAXPOOL2D, CPU_F32, pl, 4), 0);
    int64_t mm[6] = {2, 3, 4, 5, 0, 1};
    cr_expect_eq(cpu_op_scratch_bytes(CPU_MATMUL, CPU_F64, mm, 4), 0);
    cpu_dnnl_set_enabled(true);
}

/* oneDNN's: the blocked copies of the operands it reorders (16 channels
 * in, 32 out: x and y at least) and its own scratchpad; f64 stays im2col. */
Test(cpu_ops, scratch_bytes_onednn) {
    if (!cpu_dnnl_enabled()) cr_skip_test("built without oneDNN");
    int64_t cv[13] = {4, 16, 9, 9, 32, 3, 3, 1, 1, 1, 1, 9, 9};
    size_t x = 4 * 16 * 81 * 4, y = 4 * 32 * 81 * 4, w = 32 * 16 * 9 * 4;
    for (CpuOp op = CPU_CONV2D; op <= CPU_CONV2D_BWD_FILTER; op++) {
        size_t b = cpu_op_scratch_bytes(op, CPU_F32, cv, 2);
        cr_expect(b >= x + y && b <= 4 * (x + y + w), "%s: %zu bytes", cpu_op_name(op), b);
    }
    cr_expect_eq(cpu_op_scratch_bytes(CPU_CONV2D, CPU_F64, cv, 1), (size_t)(16 * 9 * 81 * 8));
}
