/* What cpu_ops.c and the kernel files (cpu_matmul.c, cpu_conv.c,
 * cpu_pool.c) share; not for other users.
 *
 * Each kernel file ends with an array of CpuOpRow, one row per CpuOp it
 * runs, so that everything about a library op (name, arguments, their
 * check, its buffers' shapes, its kernel) is in one place; cpu_ops.c
 * indexes the families' rows by op once and dispatches through them. */
#ifndef IGRC_RUNTIME_CPU_OPS_INTERNAL_H
#define IGRC_RUNTIME_CPU_OPS_INTERNAL_H

#include "runtime/cpu/cpu_ops.h"

typedef struct CpuOpRow CpuOpRow;

/* The op's own argument checks, after the generic ones (a known op, args
 * not NULL); false with a message naming the op and the argument. */
typedef bool (*CpuOpCheck)(const CpuOpRow *r, const int64_t *a, char *err, size_t cap);
/* Runs the op (cpu_op_run's contract); op tells rows that share one
 * function apart. */
typedef void (*CpuOpRun)(ThreadPool *pool, CpuOp op, CpuDtype dt, const int64_t *a,
                         void *const *bufs);
typedef size_t (*CpuOpScratch)(CpuOp op, CpuDtype dt, const int64_t *a, int threads);

/* A buffer's shape as four arg indices (CPU_DIM_ONE for an extent of 1). */
#define CPU_DIM_ONE (-1)

struct CpuOpRow {
    CpuOp op;                     /* CPU_OP_COUNT ends a family's array */
    const char *name;             /* the program format's spelling */
    int nargs;                    /* at most CPU_OP_MAX_ARGS */
    const char *const *argnames;  /* nargs names, for messages */
    CpuOpCheck check;
    int nbufs;                    /* 2 or 3: {out, in0[, in1]} */
    signed char dims[3][4];       /* each buffer's extents, as arg indices */
    CpuOpRun run;
    CpuOpScratch scratch;         /* NULL: the op allocates no scratch */
};

#define CPU_ROWS_END {.op = CPU_OP_COUNT}

/* The families' arrays, listed by cpu_ops.c's registry. */
extern const CpuOpRow cpu_matmul_rows[];
extern const CpuOpRow cpu_conv_rows[];
extern const CpuOpRow cpu_pool_rows[];

/* ---- argument checks the rows share (cpu_ops.c) ---- */

/* Checks arg i against [lo, hi]. */
bool cpu_in_range(const CpuOpRow *r, const int64_t *a, int i, int64_t lo, int64_t hi,
                  char *err, size_t cap);
/* Checks that a buffer of d0 d1 d2 d3 elements stays below 2^40 (no
 * overflow anywhere in the index arithmetic) and that the GEMM dimensions
 * it implies fit OpenBLAS's int; `what` names the buffer. */
bool cpu_size_ok(const CpuOpRow *r, const char *what, int64_t d0, int64_t d1, int64_t d2,
                 int64_t d3, char *err, size_t cap);
/* The window args of a convolution or pooling, whose layout is N C H W
 * first and KH KW SH SW PH PW OH OW from index sh - 2: sizes, strides and
 * kernel positive, padding non-negative (at most half the kernel, and arg
 * 12 a 0/1 flag, when avg: average pooling), OH and OW matching the
 * formula, and the input x not too large. */
bool cpu_window_ok(const CpuOpRow *r, const int64_t *a, int sh, bool avg, char *err,
                   size_t cap);

/* ---- kernels' helpers (cpu_ops.c) ---- */

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

#endif
