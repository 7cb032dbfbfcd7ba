/* cpu_ops.h: the op table, argument checks, dispatch, per-thread scratch
 * and matmul. Convolutions live in cpu_conv.c, pooling in cpu_pool.c. */
#include <cblas.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/rt_error.h"
#include "runtime/cpu/cpu_ops_internal.h"

/* Declared by OpenBLAS's cblas.h but not by netlib's; repeated here so the
 * build does not depend on which cblas.h the include path finds first. */
void openblas_set_num_threads(int num_threads);

typedef struct {
    const char *name;
    int nargs;
    const char *const *argnames;
} OpRow;

static const char *const MATMUL_ARGS[] = {"batch", "M", "K", "N", "trans_a", "trans_b"};
static const char *const CONV_ARGS[] = {"N",  "C",  "H",  "W",  "O",  "KH", "KW",
                                        "SH", "SW", "PH", "PW", "OH", "OW"};
static const char *const POOL_ARGS[] = {"N",  "C",  "H",  "W",  "KH", "KW",
                                        "SH", "SW", "PH", "PW", "OH", "OW"};
static const char *const AVGPOOL_ARGS[] = {"N",  "C",  "H",  "W",  "KH", "KW", "SH",
                                           "SW", "PH", "PW", "OH", "OW", "count_include_pad"};

static const OpRow OPS[CPU_OP_COUNT] = {
    [CPU_MATMUL] = {"matmul", 6, MATMUL_ARGS},
    [CPU_CONV2D] = {"conv2d", 13, CONV_ARGS},
    [CPU_CONV2D_BWD_DATA] = {"conv2d_bwd_data", 13, CONV_ARGS},
    [CPU_CONV2D_BWD_FILTER] = {"conv2d_bwd_filter", 13, CONV_ARGS},
    [CPU_MAXPOOL2D] = {"maxpool2d", 12, POOL_ARGS},
    [CPU_MAXPOOL2D_BWD] = {"maxpool2d_bwd", 12, POOL_ARGS},
    [CPU_MAXPOOL2D_SELECT] = {"maxpool2d_select", 12, POOL_ARGS},
    [CPU_AVGPOOL2D] = {"avgpool2d", 13, AVGPOOL_ARGS},
    [CPU_AVGPOOL2D_BWD] = {"avgpool2d_bwd", 13, AVGPOOL_ARGS},
};

static bool op_valid(CpuOp op) { return (int)op >= 0 && op < CPU_OP_COUNT; }

const char *cpu_op_name(CpuOp op) { return op_valid(op) ? OPS[op].name : "?"; }

int cpu_op_nargs(CpuOp op) { return op_valid(op) ? OPS[op].nargs : -1; }

/* ---- argument checks ---- */


/* Checks arg i against [lo, hi]. */
static bool in_range(CpuOp op, const int64_t *a, int i, int64_t lo, int64_t hi, char *err,
                     size_t cap) {
    if (a[i] >= lo && a[i] <= hi) return true;
    return rt_fail(err, cap, "%s: argument %s = %lld, must be in [%lld, %lld]", OPS[op].name,
                OPS[op].argnames[i], (long long)a[i], (long long)lo, (long long)hi);
}

/* Checks the window extent arg `o` = (in + 2 pad - k) / s + 1 for the args
 * at indices in, k, s, p. */
static bool extent_ok(CpuOp op, const int64_t *a, int in, int k, int s, int p, int o,
                      char *err, size_t cap) {
    int64_t span = a[in] + 2 * a[p] - a[k];
    if (span < 0)
        return rt_fail(err, cap, "%s: kernel %s = %lld does not fit %s = %lld with padding %s = %lld",
                    OPS[op].name, OPS[op].argnames[k], (long long)a[k], OPS[op].argnames[in],
                    (long long)a[in], OPS[op].argnames[p], (long long)a[p]);
    if (a[o] != span / a[s] + 1)
        return rt_fail(err, cap, "%s: argument %s = %lld, expected (%s + 2 %s - %s) / %s + 1 = %lld",
                    OPS[op].name, OPS[op].argnames[o], (long long)a[o], OPS[op].argnames[in],
                    OPS[op].argnames[p], OPS[op].argnames[k], OPS[op].argnames[s],
                    (long long)(span / a[s] + 1));
    return true;
}

/* Checks that a buffer of d0 d1 d2 d3 elements stays below 2^40 (no
 * overflow anywhere in the index arithmetic) and that the GEMM dimensions
 * it implies fit OpenBLAS's int. */
static bool size_ok(CpuOp op, const char *what, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                    char *err, size_t cap) {
    int64_t n = d0, lim = (int64_t)1 << 40;
    bool ovf = __builtin_mul_overflow(n, d1, &n) || __builtin_mul_overflow(n, d2, &n) ||
               __builtin_mul_overflow(n, d3, &n);
    if (ovf || n > lim)
        return rt_fail(err, cap, "%s: %s is too large (%lld x %lld x %lld x %lld elements)",
                    OPS[op].name, what, (long long)d0, (long long)d1, (long long)d2,
                    (long long)d3);
    return true;
}

bool cpu_op_check(CpuOp op, const int64_t *a, char *err, size_t cap) {
    if (!op_valid(op)) return rt_fail(err, cap, "cpu op %d: unknown op", (int)op);
    if (!a) return rt_fail(err, cap, "%s: no arguments", OPS[op].name);
    if (op == CPU_MATMUL) {
        for (int i = 0; i < 4; i++)
            if (!in_range(op, a, i, 1, INT_MAX, err, cap)) return false;
        return in_range(op, a, 4, 0, 1, err, cap) && in_range(op, a, 5, 0, 1, err, cap) &&
               size_ok(op, "a", a[0], a[1], a[2], 1, err, cap) &&
               size_ok(op, "b", a[0], a[2], a[3], 1, err, cap) &&
               size_ok(op, "out", a[0], a[1], a[3], 1, err, cap);
    }
    bool conv = op <= CPU_CONV2D_BWD_FILTER;
    int sh = conv ? 7 : 6; /* index of SH; then SW, PH, PW, OH, OW */
    for (int i = 0; i < sh + 2; i++)
        if (!in_range(op, a, i, 1, INT_MAX, err, cap)) return false;
    /* average pooling's padding is at most half the kernel (PyTorch's rule),
     * so every window holds an input element */
    bool avg = op == CPU_AVGPOOL2D || op == CPU_AVGPOOL2D_BWD;
    int kh = sh - 2;
    if (!in_range(op, a, sh + 2, 0, avg ? a[kh] / 2 : INT_MAX, err, cap) ||
        !in_range(op, a, sh + 3, 0, avg ? a[kh + 1] / 2 : INT_MAX, err, cap) ||
        (avg && !in_range(op, a, 12, 0, 1, err, cap)))
        return false;
    if (!extent_ok(op, a, 2, kh, sh, sh + 2, sh + 4, err, cap) ||
        !extent_ok(op, a, 3, kh + 1, sh + 1, sh + 3, sh + 5, err, cap) ||
        !size_ok(op, "x", a[0], a[1], a[2], a[3], err, cap))
        return false;
    if (!conv) return size_ok(op, "y", a[0], a[1], a[10], a[11], err, cap);
    /* im2col's column matrix is (C KH KW) x (OH OW), a GEMM operand. */
    return size_ok(op, "w", a[4], a[1], a[5], a[6], err, cap) &&
           size_ok(op, "y", a[0], a[4], a[11], a[12], err, cap) &&
           size_ok(op, "the im2col matrix", a[1], a[5], a[6], a[11] * a[12], err, cap) &&
           (a[1] * a[5] * a[6] <= INT_MAX && a[11] * a[12] <= INT_MAX
                ? true
                : rt_fail(err, cap, "%s: C KH KW or OH OW exceeds a BLAS int", OPS[op].name));
}

/* ---- OpenBLAS and scratch ---- */

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

/* The parallelism is ours: OpenBLAS threads inside our threads would
 * oversubscribe the cores. */
static void blas_init(void) { openblas_set_num_threads(1); }

void cpu_gemm(CpuDtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A,
              int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
    enum CBLAS_TRANSPOSE at = ta ? CblasTrans : CblasNoTrans, bt = tb ? CblasTrans : CblasNoTrans;
    if (dt == CPU_F32)
        cblas_sgemm(CblasRowMajor, at, bt, (int)M, (int)N, (int)K, 1.0f, A, (int)lda, B,
                    (int)ldb, (float)beta, C, (int)ldc);
    else
        cblas_dgemm(CblasRowMajor, at, bt, (int)M, (int)N, (int)K, 1.0, A, (int)lda, B,
                    (int)ldb, beta, C, (int)ldc);
}

/* Each thread keeps one buffer for its lifetime; the key's destructor
 * frees a worker's buffer when the pool joins it. */
static _Thread_local void *tl_buf;
static _Thread_local size_t tl_cap;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_key_init(void) {
    if (pthread_key_create(&scratch_key, free)) abort();
}

void *cpu_scratch(size_t bytes) {
    if (bytes <= tl_cap && tl_buf) return tl_buf;
    pthread_once(&scratch_once, scratch_key_init);
    size_t cap = tl_cap + tl_cap / 2 > bytes ? tl_cap + tl_cap / 2 : bytes;
    free(tl_buf);
    tl_buf = malloc(cap ? cap : 1);
    tl_cap = tl_buf ? cap : 0;
    pthread_setspecific(scratch_key, tl_buf);
    if (!tl_buf) {
        fprintf(stderr, "igrc runtime: out of memory for %zu bytes of kernel scratch\n", cap);
        abort();
    }
    return tl_buf;
}

void cpu_ops_release(void) {
    if (!tl_buf) return;
    free(tl_buf);
    tl_buf = NULL;
    tl_cap = 0;
    pthread_setspecific(scratch_key, NULL);
}

/* ---- matmul ---- */

typedef struct {
    CpuDtype dt;
    int64_t M, K, N, S; /* S: row slices per batch matrix */
    bool ta, tb;
    const char *a, *b;
    char *y;
} MatmulJob;

/* Item i = batch t, slice s: rows [m0, m1) of out[t]. */
static void matmul_range(void *ctx, int64_t begin, int64_t end) {
    const MatmulJob *j = ctx;
    size_t es = cpu_esz(j->dt);
    for (int64_t i = begin; i < end; i++) {
        int64_t t = i / j->S, s = i % j->S;
        int64_t m0 = j->M * s / j->S, m1 = j->M * (s + 1) / j->S;
        const char *a = j->a + (size_t)(t * j->M * j->K) * es;
        const char *b = j->b + (size_t)(t * j->K * j->N) * es;
        /* Row m0 of op(a): row m0 of a, or column m0 of the stored KxM. */
        a += (size_t)(j->ta ? m0 : m0 * j->K) * es;
        cpu_gemm(j->dt, j->ta, j->tb, m1 - m0, j->N, j->K, a, j->ta ? j->M : j->K, b,
                 j->tb ? j->K : j->N, 0.0, j->y + (size_t)((t * j->M + m0) * j->N) * es, j->N);
    }
}

static void matmul_run(ThreadPool *pool, CpuDtype dt, const int64_t *a, void *const *bufs) {
    int64_t batch = a[0], M = a[1], K = a[2], N = a[3];
    /* Below ~64K multiply-adds a thread hand-off costs more than it saves. */
    bool small = batch * M * N * K < (1 << 16);
    int threads = small ? 1 : tp_size(pool);
    MatmulJob j = {dt, M, K, N, cpu_splits(threads, batch, M), a[4] != 0, a[5] != 0,
                   bufs[1], bufs[2], bufs[0]};
    tp_parallel_for(small ? NULL : pool, batch * j.S, 1, matmul_range, &j);
}

/* ---- dispatch ---- */

void cpu_op_run(ThreadPool *pool, CpuOp op, CpuDtype dt, const int64_t *args,
                void *const *bufs) {
    pthread_once(&blas_once, blas_init);
    switch (op) {
    case CPU_MATMUL: matmul_run(pool, dt, args, bufs); break;
    case CPU_CONV2D:
    case CPU_CONV2D_BWD_DATA:
    case CPU_CONV2D_BWD_FILTER: cpu_conv_run(pool, op, dt, args, bufs); break;
    case CPU_MAXPOOL2D:
    case CPU_MAXPOOL2D_BWD:
    case CPU_MAXPOOL2D_SELECT:
    case CPU_AVGPOOL2D:
    case CPU_AVGPOOL2D_BWD: cpu_pool_run(pool, op, dt, args, bufs); break;
    }
}

size_t cpu_op_scratch_bytes(CpuOp op, CpuDtype dt, const int64_t *args, int threads) {
    if (op < CPU_CONV2D || op > CPU_CONV2D_BWD_FILTER) return 0;
    return cpu_conv_scratch(op, dt, args, threads < 1 ? 1 : threads);
}
