/* Library kernels for the "complex" ops of the tensor IR (matmul,
 * convolutions, pooling) on the CPU: what generated code calls rather than
 * renders, because tiling for the cache and spreading over the cores is
 * where the speed is. Matrix products go to OpenBLAS (cblas_sgemm/dgemm,
 * single-threaded per call: the parallelism is ours, over batch and tiles).
 *
 * Semantics are exactly the tensor IR's (ir/ops.h; the reference
 * interpreter's kernels in ops/linalg.c and ops/pool.c are the oracle):
 * row-major, NCHW images, OIHW weights, no dilation or groups; max
 * pooling's padding counts as -inf and ties go to the first maximal element
 * of the window in row-major order.
 *
 * One entry point dispatches on the op so the program executor stays small:
 * cpu_op_run(pool, op, dtype, args, bufs) with bufs = {out, in0, in1} and
 * args laid out per op as below (all int64). dtype is CPU_F32 or CPU_F64.
 * Each op is one row in its kernel file (cpu_matmul.c, cpu_conv.c,
 * cpu_pool.c; CpuOpRow in cpu_ops_internal.h): name, args, their check,
 * the buffers' shapes and the kernel; cpu_ops.c indexes the rows by op.
 *
 *   CPU_MATMUL            {batch, M, K, N, trans_a, trans_b}
 *       out[b] (MxN) = op(a[b]) op(b[b]); a[b] is MxK (KxM when trans_a),
 *       b[b] is KxN (NxK when trans_b); matrices contiguous per batch.
 *   CPU_CONV2D            {N, C, H, W, O, KH, KW, SH, SW, PH, PW, OH, OW}
 *       out = conv2d(x = in0 [N,C,H,W], w = in1 [O,C,KH,KW])
 *   CPU_CONV2D_BWD_DATA   same args; out = dx [N,C,H,W] from in0 = dy
 *                         [N,O,OH,OW], in1 = w
 *   CPU_CONV2D_BWD_FILTER same args; out = dw [O,C,KH,KW] from in0 = x,
 *                         in1 = dy
 *   CPU_MAXPOOL2D         {N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW}
 *       out [N,C,OH,OW] from in0 = x
 *   CPU_MAXPOOL2D_BWD     same args; out [N,C,H,W] from in0 = x, in1 = dy
 *   CPU_MAXPOOL2D_SELECT  same args; out [N,C,OH,OW] from in0 = x,
 *                         in1 = g [N,C,H,W]
 *   CPU_AVGPOOL2D         {N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW,
 *                          count_include_pad}, PH <= KH / 2, PW <= KW / 2;
 *       out [N,C,OH,OW] from in0 = x: window sum over KH KW
 *       (count_include_pad 1) or over the window's in-bounds elements (0)
 *   CPU_AVGPOOL2D_BWD     same args; out [N,C,H,W] from in0 = dy
 */
#ifndef IGRC_RUNTIME_CPU_OPS_H
#define IGRC_RUNTIME_CPU_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/cpu/threadpool.h"

typedef enum {
    CPU_MATMUL,
    CPU_CONV2D,
    CPU_CONV2D_BWD_DATA,
    CPU_CONV2D_BWD_FILTER,
    CPU_MAXPOOL2D,
    CPU_MAXPOOL2D_BWD,
    CPU_MAXPOOL2D_SELECT,
    CPU_AVGPOOL2D,
    CPU_AVGPOOL2D_BWD,
} CpuOp;
/* A count, not an op: outside the enum so that switches over CpuOp name
 * every op and nothing else. */
#define CPU_OP_COUNT (CPU_AVGPOOL2D_BWD + 1)

typedef enum { CPU_F32, CPU_F64 } CpuDtype;

#define CPU_OP_MAX_ARGS 16

const char *cpu_op_name(CpuOp op);
/* Number of args the op takes (above), or -1 for a value outside the enum. */
int cpu_op_nargs(CpuOp op);
/* Checks args for consistency (positive sizes, OH/OW matching the formula,
 * flags 0/1); false with a message naming the op and the argument. */
bool cpu_op_check(CpuOp op, const int64_t *args, char *err, size_t errcap);
/* The extents of the op's buffers {out, in0[, in1]} from its args (checked
 * by cpu_op_check), four per buffer (1 for a missing dimension): its
 * buffer count, or 0 for a value outside the enum. */
int cpu_op_buffer_dims(CpuOp op, const int64_t *args, int64_t dims[3][4]);
/* Runs op; buffers must not overlap. pool may be NULL (one thread). */
void cpu_op_run(ThreadPool *pool, CpuOp op, CpuDtype dt, const int64_t *args,
                void *const *bufs);
/* Bytes of scratch the op allocates while it runs (im2col buffers, per
 * thread), for the memory report. */
size_t cpu_op_scratch_bytes(CpuOp op, CpuDtype dt, const int64_t *args, int threads);
/* Frees the calling thread's scratch buffer (the kernels keep one per
 * thread across calls; a pool's workers free theirs when tp_free joins
 * them). The next call grows it again. */
void cpu_ops_release(void);
/* Whether f32 2x2 stride-2 max pooling uses its AVX-512 kernel (the default
 * where the CPU has it; bitwise the scalar kernel's results). Returns the
 * setting in effect: false when on is, but the CPU lacks AVX-512. For tests
 * and benchmarks; not thread-safe against running pooling. */
bool cpu_pool_set_simd(bool on);

#endif
