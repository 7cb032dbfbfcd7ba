/* The CUDA backend's generated kernels, run without a GPU: every case of
 * the CPU conformance suite (test_conformance_ops.c, included below with
 * its runner replaced) goes through the pipeline and codegen_build; the
 * module's CUDA C is compiled by the host C++ compiler with
 * cuda_emulation.h and each kernel is run on random buffers against the
 * kernel IR's evaluator (codegen/kernel_eval.c).
 *
 * Tolerances, |emulated - kernel_eval| <= tol (1 + |kernel_eval|):
 *   - i32, i64 and bool buffers: exact (tol = 0): integer code is the same
 *     arithmetic on both sides;
 *   - f32: 1e-5. Both sides compute + - * / sqrt, comparisons and
 *     conversions exactly rounded in f32 (kernel_eval rounds its double
 *     result once, which for these is the f32 result) and reduce in the
 *     same order, so they differ only through transcendental functions:
 *     the host's expf/logf/powf and kernel_eval's double functions rounded
 *     once are within 1-2 ulp (1.2e-7 relative) per call, which a short
 *     chain or a sum of up to a few thousand such terms keeps far below
 *     1e-5;
 *   - f64: 1e-12 for the same reason with 2^-52 ulps.
 * Philox (random_uniform/normal/bernoulli cases) is integer code plus one
 * conversion, so the random starts match the CPU's to these tolerances
 * (uniform and bernoulli exactly). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>

#include "base/philox.h"
#include "codegen/lower_math.h"
#include "codegen/program_build.h"
#include "tests/codegen/cuda_emul.h"

struct Suite;
static void cuda_suite_run(struct Suite *s);

#define CONFORMANCE_RUN cuda_suite_run
#define conformance cuda_emulated_ops
#include "tests/codegen/test_conformance_ops.c"
#undef conformance

/* Every library step of the program (matmul, convolutions, pooling with
 * the cases' shapes) emulated against cpu_ops; returns the worst ratio. */
static double check_lib_steps(CudaEmu *e, const Program *p, const char *label, int *count) {
    double worst = 0;
    CudaOptions opt = {false};
    for (int f = 0; f < p->nfuncs; f++)
        for (int i = 0; i < p->funcs[f].nsteps; i++) {
            const PStep *st = &p->funcs[f].steps[i];
            if (st->kind != PS_LIB) continue;
            worst = fmax(worst, cuda_emu_check_lib(e, (CpuOp)st->index, (CpuDtype)st->dtype, st->args,
                                                   &opt, false, 77 + (uint64_t)i, label));
            (*count)++;
        }
    return worst;
}

static void cuda_suite_run(Suite *s) {
    Diag d;
    cr_assert(cf_pipeline(s->m, NULL, &d), "%s: pipeline: %s", s->name, d.msg);
    Compiled c;
    diag_init(&d);
    cr_assert(codegen_build(s->m, &c, &d), "%s: codegen_build: %s", s->name, d.msg);
    const char *dir = cuda_emu_tmpdir();
    char err[8192];
    double t0 = cf_now();
    CudaEmu *e = cuda_emu_build(c.kernels, c.nkernels, dir, err, sizeof err);
    cr_assert(e, "%s: the emulated module does not build:\n%s", s->name, err);
    double t_build = cf_now() - t0;
    EmuCheck st;
    cuda_emu_check_kernels(e, c.kernels, c.nkernels, 1000 + (uint64_t)s->n, s->name, &st);
    int nlib = 0;
    double lib_worst = check_lib_steps(e, c.prog, s->name, &nlib);
    fprintf(stderr,
            "[cuda-emulation] ops %-10s %3d kernels, %d failing, %d with small indices; worst "
            "error/tolerance %.3g (%s); %d library steps, worst %.3g; host build %.1f s\n",
            s->name, st.kernels, st.failed, st.index_refills, st.worst, st.worst_name, nlib,
            lib_worst, t_build);
    cr_expect_gt(st.kernels + nlib, 0, "%s: nothing generated", s->name);
    cuda_emu_free(e);
    compiled_free(&c);
    for (int i = 0; i < s->n; i++) cf_values_free(s->c[i].in, s->c[i].nin);
    module_free(s->m);
}

/* ---- Philox: the GPU draws the CPU's random numbers ---- */

/* y[e] = random(seed, step, index = e * stride + offset) for KRandom r. */
static KernelDef *random_kernel(KRandom r, KType t, int64_t stride, int64_t offset, int64_t stream, double p) {
    KernelDef *k = kernel_new("k_random", 4096);
    int y = kernel_add_buf(k, t, 4096, true, "y");
    int key = kernel_add_buf(k, KT_I32, 2, false, "key");
    int e = k_index(k);
    int seed = k_load(k, key, k_const_i(k, KT_I64, 0)), step = k_load(k, key, k_const_i(k, KT_I64, 1));
    int idx = k_binary(k, KO_ADD, k_binary(k, KO_MUL, e, k_const_i(k, KT_I64, stride)),
                       k_const_i(k, KT_I64, offset));
    k_store(k, y, e, lm_random(k, r, t, seed, step, idx, (uint32_t)stream, p));
    return k;
}

/* Uniform and bernoulli are integer code and exact conversions, normal
 * is the same double formula: with the host's libm on both sides every
 * value must be identical to base/philox.c's, bit for bit (on a GPU,
 * normal's log/cos/sqrt are CUDA's, within an ulp or two of glibc's). */
Test(cuda_emulated_ops, philox_bit_identical) {
    struct {
        KRandom r;
        KType t;
        int64_t stride, offset, stream;
        double p;
    } cs[] = {{KRAND_UNIFORM, KT_F32, 1, 0, 0, 0},
              {KRAND_UNIFORM, KT_F64, 977, (int64_t)1 << 33, 4294967295LL, 0},
              {KRAND_NORMAL, KT_F64, 1, 5, 3, 0},
              {KRAND_NORMAL, KT_F32, 65537, (int64_t)1 << 40, 7, 0},
              {KRAND_BERNOULLI, KT_F32, 1, 0, 2, 0.3},
              {KRAND_BERNOULLI, KT_F64, 3, 11, 9, 0.999}};
    enum { NC = sizeof cs / sizeof cs[0] };
    KernelDef *k[NC];
    for (int i = 0; i < NC; i++) k[i] = random_kernel(cs[i].r, cs[i].t, cs[i].stride, cs[i].offset, cs[i].stream, cs[i].p);
    const char *dir = cuda_emu_tmpdir();
    char err[8192];
    CudaEmu *e = cuda_emu_build(k, NC, dir, err, sizeof err);
    cr_assert(e, "%s", err);
    int32_t keys[2][2] = {{12345, 0}, {-7, 2147483647}};
    for (int i = 0; i < NC; i++)
        for (int kk = 0; kk < 2; kk++) {
            double *y = calloc(4096, sizeof(double));
            void *bufs[2] = {y, keys[kk]};
            cuda_emu_kernel(e, i, bufs, 0, 4096, 5);
            int64_t bad = 0, ones = 0;
            for (int64_t j = 0; j < 4096; j++) {
                uint64_t idx = (uint64_t)(j * cs[i].stride + cs[i].offset);
                uint32_t s = (uint32_t)keys[kk][0], st = (uint32_t)keys[kk][1], str = (uint32_t)cs[i].stream;
                double want = cs[i].r == KRAND_NORMAL ? philox_normal(s, st, str, idx)
                              : cs[i].r == KRAND_UNIFORM ? philox_uniform(s, st, str, idx)
                                                        : philox_uniform(s, st, str, idx) < cs[i].p;
                if (cs[i].t == KT_F32) want = (float)want;
                double got = cs[i].t == KT_F32 ? ((float *)y)[j] : y[j];
                bad += got != want;
                ones += got == 1.0;
            }
            cr_expect_eq(bad, 0, "random case %d key %d: %lld of 4096 values differ from base/philox.c", i,
                         kk, (long long)bad);
            if (cs[i].r == KRAND_BERNOULLI)
                cr_expect(fabs((double)ones / 4096 - cs[i].p) < 0.05, "bernoulli(%g): %lld ones", cs[i].p,
                          (long long)ones);
            free(y);
        }
    cuda_emu_free(e);
    for (int i = 0; i < NC; i++) kernel_free(k[i]);
}

/* ---- the generated kernels of whole models ---- */

/* Every distinct kernel of two SmallCNN models, at narrow widths (4/8
 * channels, 16 hidden units: the same kernels with smaller extents; the
 * reference evaluator runs each element, so the published widths took
 * minutes), in one module: the models share most of their kernels, and a
 * kernel identical to one already checked (kernel_same) is not emulated
 * and evaluated again. */
Test(cuda_emulated_ops, model_kernels) {
    static const char *const defs[2][6] = {
        {"eval.ig_steps=2", "pgd_steps=2", "ig_steps=2", "width1=4", "width2=8", "hidden=16"},
        {"eval.ig_steps=2", "ssr_iterations=3", "width1=4", "width2=8", "hidden=16"}};
    static const char *const files[2] = {"models/mnist_smallcnn_trades_igr.json", "models/mnist_smallcnn_ssr.json"};
    static const int ndefs[2] = {6, 5};
    Module *m[2];
    Compiled c[2];
    KernelDef **k = NULL;
    uint64_t *h = NULL;
    int n = 0, launches = 0;
    for (int i = 0; i < 2; i++) {
        m[i] = cf_load_model(files[i], defs[i], ndefs[i], 2);
        cr_assert(m[i], "%s does not load", files[i]);
        Diag d;
        cr_assert(cf_pipeline(m[i], NULL, &d), "%s: pipeline: %s", files[i], d.msg);
        diag_init(&d);
        cr_assert(codegen_build(m[i], &c[i], &d), "%s: %s", files[i], d.msg);
        for (int j = 0; j < c[i].nkernels; j++, launches++) {
            KernelDef *kj = c[i].kernels[j];
            uint64_t hj = kernel_hash(kj);
            bool seen = false;
            for (int q = 0; q < n && !seen; q++) seen = h[q] == hj && kernel_same(k[q], kj);
            if (seen) continue;
            k = realloc(k, sizeof *k * (size_t)(n + 1));
            h = realloc(h, sizeof *h * (size_t)(n + 1));
            k[n] = kj, h[n++] = hj;
        }
    }
    const char *dir = cuda_emu_tmpdir();
    char err[8192];
    CudaEmu *e = cuda_emu_build(k, n, dir, err, sizeof err);
    cr_assert(e, "%s", err);
    EmuCheck st;
    cuda_emu_check_kernels(e, k, n, 4242, "SmallCNN trades_igr + ssr", &st);
    fprintf(stderr, "[cuda-emulation] %s, %s: %d distinct kernels (of %d), %d failing, %d with small "
            "indices; worst error/tolerance %.3g (%s)\n", files[0], files[1], st.kernels, launches, st.failed,
            st.index_refills, st.worst, st.worst_name);
    cuda_emu_free(e);
    free(k);
    free(h);
    for (int i = 0; i < 2; i++) {
        compiled_free(&c[i]);
        module_free(m[i]);
    }
}

/* ---- corners the op cases do not reach ---- */

/* NaN-aware reductions: x with NaNs where x < -1.5; per row of 5, the
 * argmax (first NaN wins) and the max (NaN propagates). */
static KernelDef *nan_reductions(void) {
    KernelDef *k = kernel_new("k_nan_reductions", 64);
    int am = kernel_add_buf(k, KT_I32, 64, true, "argmax");
    int mx = kernel_add_buf(k, KT_F32, 64, true, "max");
    int x = kernel_add_buf(k, KT_F32, 64 * 5, false, "x");
    int e = k_index(k);
    int base = k_binary(k, KO_MUL, e, k_const_i(k, KT_I64, 5));
    int nan = k_const_f(k, KT_F32, NAN), lim = k_const_f(k, KT_F32, -1.5);
    int vals[2];
    for (int j = 0; j < 2; j++) {
        int r = k_red_begin(k, 5);
        int v = k_load(k, x, k_binary(k, KO_ADD, base, r));
        int w = k_select(k, k_binary(k, KO_LT, v, lim), nan, v);
        vals[j] = k_red_end(k, j ? KR_MAX : KR_ARGMAX, r, w);
    }
    k_store(k, am, e, vals[0]);
    k_store(k, mx, e, vals[1]);
    return k;
}

/* Conversions at their limits: f64 x 1e19 to i64 (saturating) and to i32
 * (wrapping), the i64 product wrapped to i32, infinities to i32 (0). */
static KernelDef *casts_at_limits(void) {
    KernelDef *k = kernel_new("k_casts", 100);
    int o64 = kernel_add_buf(k, KT_I64, 100, true, "o64");
    int o32 = kernel_add_buf(k, KT_I32, 100, true, "o32");
    int ow = kernel_add_buf(k, KT_I32, 100, true, "wrap");
    int oi = kernel_add_buf(k, KT_I32, 100, true, "inf");
    int x = kernel_add_buf(k, KT_F64, 100, false, "x");
    int e = k_index(k);
    int v = k_binary(k, KO_MUL, k_load(k, x, e), k_const_f(k, KT_F64, 1e19));
    k_store(k, o64, e, lm_cast(k, KT_I64, v));
    k_store(k, o32, e, lm_cast(k, KT_I32, k_binary(k, KO_MUL, k_load(k, x, e), k_const_f(k, KT_F64, 3e9))));
    int big = k_binary(k, KO_MUL, e, k_const_i(k, KT_I64, 123456789012LL));
    k_store(k, ow, e, k_cast(k, KT_I32, big));
    int inf = k_select(k, k_binary(k, KO_GT, k_load(k, x, e), k_const_f(k, KT_F64, 0)),
                       k_const_f(k, KT_F64, INFINITY), k_const_f(k, KT_F64, -INFINITY));
    k_store(k, oi, e, lm_cast(k, KT_I32, inf));
    return k;
}

/* i32 minimum: -INT_MIN and INT_MIN / -1 wrap; x / 0 = 0; bools ordered
 * false < true. */
static KernelDef *int_limits(void) {
    KernelDef *k = kernel_new("k_int_limits", 50);
    int q = kernel_add_buf(k, KT_I32, 50, true, "q");
    int n = kernel_add_buf(k, KT_I32, 50, true, "neg");
    int b = kernel_add_buf(k, KT_BOOL, 50, true, "blt");
    int d = kernel_add_buf(k, KT_I32, 50, false, "d");
    int p = kernel_add_buf(k, KT_BOOL, 50, false, "p");
    int e = k_index(k);
    int mn = k_const_i(k, KT_I32, INT32_MIN), dv = k_load(k, d, e);
    int m1 = k_select(k, k_binary(k, KO_GT, dv, k_const_i(k, KT_I32, 0)), k_const_i(k, KT_I32, -1),
                      k_const_i(k, KT_I32, 0));
    k_store(k, q, e, lm_binary(k, OP_DIV, mn, m1));
    k_store(k, n, e, k_unary(k, KO_NEG, mn));
    int pv = k_load(k, p, e);
    k_store(k, b, e, k_binary(k, KO_LT, lm_unary(k, OP_NOT, pv, 0), pv));
    return k;
}

Test(cuda_emulated_ops, corners) {
    KernelDef *k[3] = {nan_reductions(), casts_at_limits(), int_limits()};
    const char *dir = cuda_emu_tmpdir();
    char err[8192];
    CudaEmu *e = cuda_emu_build(k, 3, dir, err, sizeof err);
    cr_assert(e, "%s", err);
    EmuCheck st;
    cuda_emu_check_kernels(e, k, 3, 99, "corners", &st);
    cr_expect_eq(st.failed, 0);
    cr_expect_eq(st.kernels, 3);
    cuda_emu_free(e);
    for (int i = 0; i < 3; i++) kernel_free(k[i]);
}
