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
    char dir[] = "/tmp/igrc_cuda_emu_XXXXXX", err[8192];
    cr_assert(mkdtemp(dir));
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
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
    compiled_free(&c);
    for (int i = 0; i < s->n; i++) cf_values_free(s->c[i].in, s->c[i].nin);
    module_free(s->m);
}
