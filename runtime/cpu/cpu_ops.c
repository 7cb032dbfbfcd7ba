/* cpu_ops.h's generic parts: the registry that indexes the kernel files'
 * rows (cpu_matmul.c, cpu_conv.c, cpu_pool.c) by op, the public entry
 * points that look an op up there, the argument checks the rows share,
 * OpenBLAS's setup and the per-thread scratch. */
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

/* ---- the registry ---- */

/* One entry per kernel file. */
static const struct {
    const char *file;
    const CpuOpRow *rows;
} FAMILIES[] = {
    {"cpu_matmul.c", cpu_matmul_rows},
    {"cpu_conv.c", cpu_conv_rows},
    {"cpu_pool.c", cpu_pool_rows},
};

static const CpuOpRow *ROWS[CPU_OP_COUNT];
static const char *FILE_OF[CPU_OP_COUNT];
static pthread_once_t built = PTHREAD_ONCE_INIT;

/* A malformed table is a programming error, not an input error. */
_Noreturn static void table_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("igrc runtime: internal error in the CPU library's op table (runtime/cpu/): ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static void check_row(const CpuOpRow *r, const char *file) {
    if (!r->name) table_error("%s: the row of CpuOp #%d has no name", file, (int)r->op);
    if (r->nargs < 1 || r->nargs > CPU_OP_MAX_ARGS || !r->argnames || !r->check || !r->run)
        table_error("op '%s' (%s): no arguments, names, check or run function, or more than "
                    "CPU_OP_MAX_ARGS arguments", r->name, file);
    if (r->nbufs != 2 && r->nbufs != 3)
        table_error("op '%s' (%s): %d buffers, not 2 or 3", r->name, file, r->nbufs);
    for (int b = 0; b < r->nbufs; b++)
        for (int d = 0; d < 4; d++)
            if (r->dims[b][d] != CPU_DIM_ONE && (r->dims[b][d] < 0 || r->dims[b][d] >= r->nargs))
                table_error("op '%s' (%s): buffer %d's extent %d is arg %d, not one of its %d",
                            r->name, file, b, d, r->dims[b][d], r->nargs);
}

static void build(void) {
    for (size_t f = 0; f < sizeof FAMILIES / sizeof FAMILIES[0]; f++)
        for (const CpuOpRow *r = FAMILIES[f].rows; r->op != CPU_OP_COUNT; r++) {
            if ((unsigned)r->op > CPU_OP_COUNT)
                table_error("%s: a row for CpuOp #%d, which is no op", FAMILIES[f].file,
                            (int)r->op);
            if (ROWS[r->op])
                table_error("op '%s' has rows in %s and %s", ROWS[r->op]->name, FILE_OF[r->op],
                            FAMILIES[f].file);
            check_row(r, FAMILIES[f].file);
            ROWS[r->op] = r;
            FILE_OF[r->op] = FAMILIES[f].file;
        }
    for (int op = 0; op < CPU_OP_COUNT; op++)
        if (!ROWS[op])
            table_error("CpuOp #%d (after '%s' in cpu_ops.h) has no row in any kernel file", op,
                        op > 0 && ROWS[op - 1] ? ROWS[op - 1]->name : "-");
}

/* The op's row, or NULL for a value outside the enum. */
static const CpuOpRow *row(CpuOp op) {
    if ((unsigned)op >= CPU_OP_COUNT) return NULL;
    pthread_once(&built, build);
    return ROWS[op];
}

/* ---- the public entry points ---- */

const char *cpu_op_name(CpuOp op) { return row(op) ? row(op)->name : "?"; }

int cpu_op_nargs(CpuOp op) { return row(op) ? row(op)->nargs : -1; }

bool cpu_op_check(CpuOp op, const int64_t *a, char *err, size_t cap) {
    const CpuOpRow *r = row(op);
    if (!r) return rt_fail(err, cap, "cpu op %d: unknown op", (int)op);
    if (!a) return rt_fail(err, cap, "%s: no arguments", r->name);
    return r->check(r, a, err, cap);
}

int cpu_op_buffer_dims(CpuOp op, const int64_t *args, int64_t dims[3][4]) {
    const CpuOpRow *r = row(op);
    if (!r) return 0;
    for (int b = 0; b < 3; b++)
        for (int d = 0; d < 4; d++)
            dims[b][d] = b >= r->nbufs || r->dims[b][d] == CPU_DIM_ONE ? 1 : args[r->dims[b][d]];
    return r->nbufs;
}

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

/* The parallelism is ours: OpenBLAS threads inside our threads would
 * oversubscribe the cores. */
static void blas_init(void) { openblas_set_num_threads(1); }

void cpu_op_run(ThreadPool *pool, CpuOp op, CpuDtype dt, const int64_t *args,
                void *const *bufs) {
    pthread_once(&blas_once, blas_init);
    const CpuOpRow *r = row(op);
    if (r) r->run(pool, op, dt, args, bufs);
}

size_t cpu_op_scratch_bytes(CpuOp op, CpuDtype dt, const int64_t *args, int threads) {
    const CpuOpRow *r = row(op);
    if (!r || !r->scratch) return 0;
    return r->scratch(op, dt, args, threads < 1 ? 1 : threads);
}

/* ---- argument checks the rows share ---- */

bool cpu_in_range(const CpuOpRow *r, const int64_t *a, int i, int64_t lo, int64_t hi,
                  char *err, size_t cap) {
    if (a[i] >= lo && a[i] <= hi) return true;
    return rt_fail(err, cap, "%s: argument %s = %lld, must be in [%lld, %lld]", r->name,
                   r->argnames[i], (long long)a[i], (long long)lo, (long long)hi);
}

/* Checks the window extent arg `o` = (in + 2 pad - k) / s + 1 for the args
 * at indices in, k, s, p. */
static bool extent_ok(const CpuOpRow *r, const int64_t *a, int in, int k, int s, int p, int o,
                      char *err, size_t cap) {
    const char *const *n = r->argnames;
    int64_t span = a[in] + 2 * a[p] - a[k];
    if (span < 0)
        return rt_fail(err, cap, "%s: kernel %s = %lld does not fit %s = %lld with padding %s = %lld",
                       r->name, n[k], (long long)a[k], n[in], (long long)a[in], n[p],
                       (long long)a[p]);
    if (a[o] != span / a[s] + 1)
        return rt_fail(err, cap, "%s: argument %s = %lld, expected (%s + 2 %s - %s) / %s + 1 = %lld",
                       r->name, n[o], (long long)a[o], n[in], n[p], n[k], n[s],
                       (long long)(span / a[s] + 1));
    return true;
}

bool cpu_size_ok(const CpuOpRow *r, const char *what, int64_t d0, int64_t d1, int64_t d2,
                 int64_t d3, char *err, size_t cap) {
    int64_t n = d0, lim = (int64_t)1 << 40;
    bool ovf = __builtin_mul_overflow(n, d1, &n) || __builtin_mul_overflow(n, d2, &n) ||
               __builtin_mul_overflow(n, d3, &n);
    if (ovf || n > lim)
        return rt_fail(err, cap, "%s: %s is too large (%lld x %lld x %lld x %lld elements)",
                       r->name, what, (long long)d0, (long long)d1, (long long)d2,
                       (long long)d3);
    return true;
}

bool cpu_window_ok(const CpuOpRow *r, const int64_t *a, int sh, bool avg, char *err,
                   size_t cap) {
    for (int i = 0; i < sh + 2; i++)
        if (!cpu_in_range(r, a, i, 1, INT_MAX, err, cap)) return false;
    /* average pooling's padding is at most half the kernel (PyTorch's rule),
     * so every window holds an input element */
    int kh = sh - 2;
    if (!cpu_in_range(r, a, sh + 2, 0, avg ? a[kh] / 2 : INT_MAX, err, cap) ||
        !cpu_in_range(r, a, sh + 3, 0, avg ? a[kh + 1] / 2 : INT_MAX, err, cap) ||
        (avg && !cpu_in_range(r, a, 12, 0, 1, err, cap)))
        return false;
    return extent_ok(r, a, 2, kh, sh, sh + 2, sh + 4, err, cap) &&
           extent_ok(r, a, 3, kh + 1, sh + 1, sh + 3, sh + 5, err, cap) &&
           cpu_size_ok(r, "x", a[0], a[1], a[2], a[3], err, cap);
}

/* ---- OpenBLAS and scratch ---- */

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
