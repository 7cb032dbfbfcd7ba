/* Launch geometry for generated kernels and the library kernels of
 * codegen/cuda/cuda_lib.cu (runtime/cuda/cuda_abi.h). The constants mirror the
 * library's: 64 x 64 GEMM output tiles (256 threads, or 128 for the TF32
 * tensor-core variant), conv2d_bwd_filter split into partial sums of about
 * 4096 reduction terms (at most 32) then summed in order by a second
 * launch. */
#include <stdio.h>

#include "base/rt_error.h"
#include "runtime/cuda/cuda_abi.h"

#define TILE 64
#define SPLIT_K 4096 /* IGRC_SPLIT_K in cuda_lib.cu */
#define SPLIT_MAX 32 /* IGRC_SPLIT_MAX */

_Static_assert(CPU_OP_MAX_ARGS == 16, "IgrcLibArgs in cuda_lib.cu holds 16 args");

unsigned cuda_kernel_grid(int64_t n) {
    int64_t blocks = (n + IGRC_CUDA_BLOCK - 1) / IGRC_CUDA_BLOCK;
    if (blocks < 1) return 1;
    return blocks > IGRC_CUDA_MAX_GRID ? IGRC_CUDA_MAX_GRID : (unsigned)blocks;
}

/* igrc_filter_splits() of cuda_lib.cu. */
static int64_t filter_splits(int64_t K) {
    int64_t s = K / SPLIT_K;
    return s < 1 ? 1 : s > SPLIT_MAX ? SPLIT_MAX : s;
}

static void launch(CudaLaunch *l, const char *base, const char *sfx, int64_t gx, int64_t gy,
                   int64_t gz, unsigned threads) {
    snprintf(l->kernel, sizeof l->kernel, "igrc_%s_%s", base, sfx);
    l->grid[0] = (unsigned)gx;
    l->grid[1] = (unsigned)gy;
    l->grid[2] = (unsigned)gz;
    l->block[0] = threads;
    l->block[1] = l->block[2] = 1;
    l->shmem = 0;
}

/* A GEMM launch over an M x N output, batch tiles deep (z). */
static int gemm(CudaLaunch *out, const char *base, const char *sfx, int64_t M, int64_t N,
                int64_t batch, bool tc, char *err, size_t cap) {
    int64_t gy = (M + TILE - 1) / TILE;
    if (gy > IGRC_CUDA_MAX_GRID)
        return rt_fail(err, cap, "%s: %lld output rows exceed the CUDA grid", base, (long long)M), -1;
    launch(out, base, sfx, (N + TILE - 1) / TILE, gy,
           batch > IGRC_CUDA_MAX_GRID ? IGRC_CUDA_MAX_GRID : batch, tc ? 128 : 256);
    return 1;
}

static int conv_plan(CpuOp op, const int64_t *a, const char *sfx, const char *sum_sfx, bool tc,
                     size_t esz, CudaLaunch *out, int64_t *scratch, char *err, size_t cap) {
    int64_t N = a[0], C = a[1], H = a[2], W = a[3], O = a[4], KH = a[5], KW = a[6];
    int64_t P = a[11] * a[12];
    if (op == CPU_CONV2D) return gemm(out, "conv2d", sfx, O, P, N, tc, err, cap);
    if (op == CPU_CONV2D_BWD_DATA) return gemm(out, "conv2d_bwd_data", sfx, C, H * W, N, tc, err, cap);
    int64_t S = filter_splits(N * P), len = O * C * KH * KW;
    if (gemm(out, "conv2d_bwd_filter", sfx, O, C * KH * KW, 1, tc, err, cap) < 0) return -1;
    out[0].grid[2] = (unsigned)S;
    if (S == 1) return 1;
    *scratch = S * len * (int64_t)esz;
    launch(&out[1], "conv2d_bwd_filter_sum", sum_sfx, cuda_kernel_grid(len), 1, 1, IGRC_CUDA_BLOCK);
    return 2;
}

static const char *pool_name(CpuOp op) {
    switch (op) {
    case CPU_MAXPOOL2D: return "maxpool2d";
    case CPU_MAXPOOL2D_BWD: return "maxpool2d_bwd";
    case CPU_MAXPOOL2D_SELECT: return "maxpool2d_select";
    case CPU_AVGPOOL2D: return "avgpool2d";
    case CPU_AVGPOOL2D_BWD: return "avgpool2d_bwd";
    case CPU_MATMUL: /* not pooling ops: planned by their own functions */
    case CPU_CONV2D:
    case CPU_CONV2D_BWD_DATA:
    case CPU_CONV2D_BWD_FILTER: break;
    }
    return NULL;
}

int cuda_lib_plan(CpuOp op, CpuDtype dt, const int64_t *args, const CudaOptions *opt,
                  CudaLaunch *out, int64_t *scratch_bytes, char *err, size_t errcap) {
    *scratch_bytes = 0;
    if (dt != CPU_F32 && dt != CPU_F64)
        return rt_fail(err, errcap, "%s: the CUDA library has no kernels for dtype %d",
                       cpu_op_name(op), (int)dt), -1;
    if (!cpu_op_check(op, args, err, errcap)) return -1;
    const char *sfx = dt == CPU_F64 ? "f64" : "f32";
    bool tc = dt == CPU_F32 && opt && opt->tf32;
    size_t esz = dt == CPU_F64 ? 8 : 4;
    if (op == CPU_MATMUL)
        return gemm(out, "matmul", tc ? "tf32" : sfx, args[1], args[3], args[0], tc, err, errcap);
    if (op <= CPU_CONV2D_BWD_FILTER)
        return conv_plan(op, args, tc ? "tf32" : sfx, sfx, tc, esz, out, scratch_bytes, err, errcap);
    bool backward = op == CPU_MAXPOOL2D_BWD || op == CPU_AVGPOOL2D_BWD;
    int64_t planes = args[0] * args[1];
    int64_t n = backward ? planes * args[2] * args[3] : planes * args[10] * args[11];
    launch(out, pool_name(op), sfx, cuda_kernel_grid(n), 1, 1, IGRC_CUDA_BLOCK);
    return 1;
}
