/* What cpu_ops.c, cpu_conv.c and cpu_pool.c share; not for other users. */
#ifndef IGRC_RUNTIME_CPU_OPS_INTERNAL_H
#define IGRC_RUNTIME_CPU_OPS_INTERNAL_H

#include "runtime/cpu/cpu_ops.h"

/* Element size of a dtype. */
static inline size_t cpu_esz(CpuDtype dt) { return dt == CPU_F32 ? sizeof(float) : sizeof(double); }

/* Into how many slices to cut each of `items` independent work items so
 * that `threads` threads have something to do: 1 when items already
 * suffice, else ceil(threads / items), never more than max_split. */
static inline int64_t cpu_splits(int threads, int64_t items, int64_t max_split) {
    if (items >= threads) return 1;
    int64_t s = (threads + items - 1) / items;
    return s < max_split ? s : max_split;
}

/* The calling thread's scratch buffer, grown to at least `bytes` (old
 * contents are lost when it grows). Aborts if memory runs out. */
void *cpu_scratch(size_t bytes);

/* Row-major C (MxN) = op(A) op(B) + beta C on one thread, via OpenBLAS. */
void cpu_gemm(CpuDtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A,
              int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc);

void cpu_conv_run(ThreadPool *pool, CpuOp op, CpuDtype dt, const int64_t *args,
                  void *const *bufs);
size_t cpu_conv_scratch(CpuOp op, CpuDtype dt, const int64_t *args, int threads);
void cpu_pool_run(ThreadPool *pool, CpuOp op, CpuDtype dt, const int64_t *args,
                  void *const *bufs);

#endif
