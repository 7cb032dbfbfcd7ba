/* The CUDA library kernels (codegen/cuda/cuda_lib.cu) as runtime/
 * cuda_lib_plan.c launches them, run on the CPU through the emulation
 * header, against runtime/cpu_ops.c in f32 and f64 on odd shapes: several
 * 64 x 64 tiles with ragged edges, K not a multiple of the 16-wide step,
 * batches, transposes, strides, padding, 1x1 kernels, and a
 * conv2d_bwd_filter long enough to be split into partial sums (two
 * launches and scratch).
 *
 * Tolerances (cuda_emul.h), |emulated - cpu| <= tol (1 + |cpu|):
 *   - pooling: exact. The kernels visit windows and add in the CPU's
 *     order, and the average's window sum is taken in double on both
 *     sides; max pooling is also run on data full of ties and NaNs;
 *   - matmul and convolutions: tol = 1e-5 sqrt(K) (f32) and 1e-12 sqrt(K)
 *     (f64) for K terms per output: the tiled kernel adds its terms with
 *     fma in ascending k while OpenBLAS blocks and vectorises them, and
 *     rounding errors of two orders differ by a random walk of about
 *     sqrt(K) ulps of the partial sums (the CPU conformance suite's rule).
 * The TF32 tensor-core kernels (IGRC_TF32) use inline PTX (mma.sync) and
 * cannot run here: test_cuda_nvrtc.c only compiles them with NVRTC. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/codegen/conformance_util.h"
#include "tests/codegen/cuda_emul.h"

static CudaEmu *g_emu;

/* The library alone: a module without generated kernels. */
static void lib_setup(void) {
    char err[8192];
    g_emu = cuda_emu_build(NULL, 0, cuda_emu_tmpdir(), err, sizeof err);
    cr_assert(g_emu, "the emulated library does not build:\n%s", err);
}

static void lib_teardown(void) { cuda_emu_free(g_emu); }

TestSuite(cuda_lib, .init = lib_setup, .fini = lib_teardown, .timeout = 600);

static const CudaOptions NO_TF32 = {false};

/* Both dtypes; returns the worst ratio seen. */
static double check_both(CpuOp op, const int64_t *args, bool ties, uint64_t seed) {
    double w = 0;
    for (int dt = CPU_F32; dt <= CPU_F64; dt++) {
        double r = cuda_emu_check_lib(g_emu, op, (CpuDtype)dt, args, &NO_TF32, ties, seed + (uint64_t)dt,
                                      cpu_op_name(op));
        w = r > w ? r : w;
    }
    return w;
}

Test(cuda_lib, matmul) {
    static const int64_t cases[][6] = {
        {1, 1, 1, 1, 0, 0},    {1, 70, 37, 130, 0, 0}, {3, 17, 33, 5, 1, 0},
        {2, 65, 19, 66, 0, 1}, {2, 9, 41, 64, 1, 1},   {1, 128, 16, 64, 0, 0},
    };
    double w = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) w = fmax(w, check_both(CPU_MATMUL, cases[i], false, 10 + i));
    fprintf(stderr, "[cuda-emulation] lib matmul: %zu shapes x 2 dtypes, worst error/tolerance %.3g\n",
            sizeof cases / sizeof cases[0], w);
}

/* Convolution args with OH, OW from the formula. */
static void conv_args(int64_t *a, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t K,
                      int64_t S, int64_t P) {
    int64_t v[13] = {N, C, H, W, O, K, K, S, S, P, P, (H + 2 * P - K) / S + 1, (W + 2 * P - K) / S + 1};
    memcpy(a, v, sizeof v);
}

Test(cuda_lib, convolutions) {
    /* N C H W O K S P: ragged tiles, strides, padding, 1x1, non-square */
    static const int64_t shapes[][8] = {
        {2, 3, 11, 13, 5, 3, 1, 1}, {1, 2, 9, 7, 70, 3, 2, 0}, {3, 5, 6, 6, 4, 1, 1, 0},
        {2, 4, 10, 9, 3, 5, 3, 2},  {1, 1, 1, 1, 1, 1, 1, 0},  {2, 17, 5, 5, 66, 3, 1, 1},
    };
    double w = 0;
    int64_t a[16] = {0};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int64_t *s = shapes[i];
        conv_args(a, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
        for (int op = CPU_CONV2D; op <= CPU_CONV2D_BWD_FILTER; op++)
            w = fmax(w, check_both((CpuOp)op, a, false, 100 + 3 * i + (uint64_t)op));
    }
    fprintf(stderr, "[cuda-emulation] lib conv2d/bwd_data/bwd_filter: %zu shapes x 2 dtypes, worst "
            "error/tolerance %.3g\n", sizeof shapes / sizeof shapes[0], w);
}

/* N OH OW = 2 x 64 x 65 = 8320 reduction terms: two partial sums. */
Test(cuda_lib, bwd_filter_split) {
    int64_t a[16] = {0};
    conv_args(a, 2, 2, 64, 65, 3, 3, 1, 1);
    CudaLaunch l[IGRC_CUDA_LIB_MAX_LAUNCHES];
    int64_t scratch = 0;
    char err[256];
    int n = cuda_lib_plan(CPU_CONV2D_BWD_FILTER, CPU_F32, a, &NO_TF32, l, &scratch, err, sizeof err);
    cr_assert_eq(n, 2, "a long reduction is split into partials and a sum (%s)", err);
    cr_expect_eq(l[0].grid[2], 2);
    cr_expect_eq(scratch, 2 * 3 * 2 * 3 * 3 * 4, "scratch: 2 partials of O C KH KW floats");
    cr_expect_str_eq(l[1].kernel, "igrc_conv2d_bwd_filter_sum_f32");
    double w = check_both(CPU_CONV2D_BWD_FILTER, a, false, 7);
    fprintf(stderr, "[cuda-emulation] lib bwd_filter split in 2: worst error/tolerance %.3g\n", w);
}

static void pool_args(int64_t *a, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t S,
                      int64_t P) {
    int64_t v[12] = {N, C, H, W, K, K, S, S, P, P, (H + 2 * P - K) / S + 1, (W + 2 * P - K) / S + 1};
    memcpy(a, v, sizeof v);
}

Test(cuda_lib, pooling) {
    /* N C H W K S P: overlapping windows (K > S), gaps (K < S), padding (at
     * most K / 2, as average pooling requires) */
    static const int64_t shapes[][7] = {
        {2, 3, 11, 13, 3, 2, 1}, {1, 2, 8, 8, 2, 2, 0}, {2, 1, 7, 9, 3, 1, 1},
        {1, 3, 10, 7, 2, 3, 0},  {1, 1, 1, 1, 1, 1, 0}, {2, 2, 5, 6, 4, 2, 2},
    };
    int64_t a[16] = {0};
    int checked = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int64_t *s = shapes[i];
        for (int op = CPU_MAXPOOL2D; op <= CPU_AVGPOOL2D_BWD; op++) {
            bool avg = op >= CPU_AVGPOOL2D;
            pool_args(a, s[0], s[1], s[2], s[3], s[4], s[5], s[6]);
            /* average pooling: padding counted in the divisor (arg 12 = 1) and not */
            for (int cip = avg ? 0 : 1; cip < 2; cip++) {
                a[12] = avg ? cip : 0;
                for (int ties = 0; ties < 2 - avg; ties++, checked++)
                    cr_expect_eq(check_both((CpuOp)op, a, ties, 300 + 7 * i + (uint64_t)op), 0,
                                 "pooling is bit-exact");
            }
        }
    }
    fprintf(stderr, "[cuda-emulation] lib pooling: %d op/shape/data cases x 2 dtypes, all exact\n", checked);
}

Test(cuda_lib, plan_errors) {
    int64_t a[16] = {1, 4, 4, 4, 0, 2}; /* trans_b = 2 */
    CudaLaunch l[IGRC_CUDA_LIB_MAX_LAUNCHES];
    int64_t scratch = 0;
    char err[256] = "";
    cr_expect_eq(cuda_lib_plan(CPU_MATMUL, CPU_F32, a, &NO_TF32, l, &scratch, err, sizeof err), -1);
    cr_expect(strstr(err, "trans_b"), "names the bad argument: %s", err);
    a[5] = 0;
    cr_expect_eq(cuda_lib_plan(CPU_MATMUL, (CpuDtype)7, a, &NO_TF32, l, &scratch, err, sizeof err), -1);
    cr_expect(strstr(err, "dtype"), "names the dtype: %s", err);
    CudaOptions tf = {true};
    cr_expect_eq(cuda_lib_plan(CPU_MATMUL, CPU_F32, a, &tf, l, &scratch, err, sizeof err), 1);
    cr_expect_str_eq(l[0].kernel, "igrc_matmul_tf32");
    cr_expect_eq(l[0].block[0], 128);
    cr_expect_eq(cuda_lib_plan(CPU_MATMUL, CPU_F64, a, &tf, l, &scratch, err, sizeof err), 1);
    cr_expect_str_eq(l[0].kernel, "igrc_matmul_f64", "f64 never uses TF32");
    cr_expect_eq(cuda_kernel_grid(1), 1);
    cr_expect_eq(cuda_kernel_grid(257), 2);
    cr_expect_eq(cuda_kernel_grid((int64_t)1 << 40), IGRC_CUDA_MAX_GRID);
}
