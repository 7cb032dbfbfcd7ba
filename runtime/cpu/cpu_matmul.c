/* Batched matrix products: each batch matrix's rows cut into slices when
 * there are fewer matrices than threads, each slice one OpenBLAS GEMM. */
#include <limits.h>

#include "runtime/cpu/cpu_ops_internal.h"

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

static void matmul_run(ThreadPool *pool, CpuOp op, CpuDtype dt, const int64_t *a,
                       void *const *bufs) {
    (void)op;
    int64_t batch = a[0], M = a[1], K = a[2], N = a[3];
    /* Below ~64K multiply-adds a thread hand-off costs more than it saves. */
    bool small = batch * M * N * K < (1 << 16);
    int threads = small ? 1 : tp_size(pool);
    MatmulJob j = {dt, M, K, N, cpu_splits(threads, batch, M), a[4] != 0, a[5] != 0,
                   bufs[1], bufs[2], bufs[0]};
    tp_parallel_for(small ? NULL : pool, batch * j.S, 1, matmul_range, &j);
}

static bool matmul_check(const CpuOpRow *r, const int64_t *a, char *err, size_t cap) {
    for (int i = 0; i < 4; i++)
        if (!cpu_in_range(r, a, i, 1, INT_MAX, err, cap)) return false;
    return cpu_in_range(r, a, 4, 0, 1, err, cap) && cpu_in_range(r, a, 5, 0, 1, err, cap) &&
           cpu_size_ok(r, "a", a[0], a[1], a[2], 1, err, cap) &&
           cpu_size_ok(r, "b", a[0], a[2], a[3], 1, err, cap) &&
           cpu_size_ok(r, "out", a[0], a[1], a[3], 1, err, cap);
}

static const char *const MATMUL_ARGS[] = {"batch", "M", "K", "N", "trans_a", "trans_b"};

/* Buffers {out [b,M,N], a [b,M,K], b [b,K,N]}, as stored (the transposes
 * only reorder a matrix). */
const CpuOpRow cpu_matmul_rows[] = {
    {.op = CPU_MATMUL, .name = "matmul", .nargs = 6, .argnames = MATMUL_ARGS,
     .check = matmul_check, .nbufs = 3,
     .dims = {{0, 1, 3, CPU_DIM_ONE}, {0, 1, 2, CPU_DIM_ONE}, {0, 2, 3, CPU_DIM_ONE}},
     .run = matmul_run},
    CPU_ROWS_END,
};
