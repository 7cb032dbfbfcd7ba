/* The CUDA runner (runtime/cuda_runner.c) against the test driver library
 * tests/runtime/fake_cuda.c (IGRC_LIBCUDA): a program with nested loops, a
 * kernel and a library step gives the same outputs and parameters as the
 * CPU runner over several calls, with the updated weights bound into their
 * parameter on the device; graphs are captured once and replayed (or not
 * used with IGRC_CUDA_GRAPHS=0); the image's CUBIN or PTX is chosen by
 * arch; device memory is what the plan says and all of it is freed; a
 * failed launch and a missing kernel are reported with the call, the
 * result and the step. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu/runner.h"
#include "runtime/cuda/cuda_runner.h"
#include "runtime/exec.h"
#include "tests/runtime/fake_cuda.h"
#include "tests/runtime/loop_fixture.h"

static void *g_fake; /* our handle: keeps the library (and its counters) loaded */

static void setup(void) {
    setenv("IGRC_LIBCUDA", FAKE_LIBCUDA, 1);
    unsetenv("IGRC_CUDA_GRAPHS");
    unsetenv("FAKE_CUDA_FAIL");
    g_fake = dlopen(FAKE_LIBCUDA, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(g_fake, "%s", dlerror());
}

static void teardown(void) { dlclose(g_fake); }

TestSuite(cuda_runner, .init = setup, .fini = teardown, .timeout = 120);

static FakeCudaStats stats(void) {
    FakeCudaStatsFn fn = (FakeCudaStatsFn)dlsym(g_fake, "fake_cuda_stats");
    cr_assert_not_null(fn);
    FakeCudaStats s;
    fn(&s);
    return s;
}

static const char kProgram[] =
    "program e2e batch 1\n"
    "param w f32 [4] init uniform 0.5 trainable\n"
    "param m f32 [4,3] init uniform 0.5 trainable\n"
    "func step arena 1024\n"
    "  in x f32 [4]\n"
    "  in a f32 [2,4]\n"
    "  out y f32 [4] a256\n"
    "  out loss f32 [] a512\n"
    "  out w f32 [4] a256\n"
    "  out z f32 [2,3] a768\n"
    "  loop outer 2 16 a256 i0 p0 # while_outer\n"
    "  kernel 1 1 1 a512 a256 # sum\n"
    "  lib matmul f32 1 2 4 3 0 0 ; a768 i1 p1 # mm\n"
    "end\n"
    NESTED_LOOP_FUNCS;

/* The CPU versions of the fake driver's igrc_k0 and igrc_k1. */
static void k0(void *const *b, int64_t begin, int64_t end) {
    float *out = b[0];
    const float *c = b[1], *w = b[2];
    const int32_t *trip = b[3];
    for (int64_t i = begin; i < end; i++) out[i] = c[i] + w[i] + (float)*trip;
}

static void k1(void *const *b, int64_t begin, int64_t end) {
    (void)begin, (void)end;
    float *out = b[0];
    const float *in = b[1];
    out[0] = in[0] + in[1] + in[2] + in[3];
}

static const PKernelFn kKernels[] = {k0, k1};

static unsigned grid(int64_t n) { return (unsigned)((n + 255) / 256); }

/* The fake driver's library kernel for matmul; nothing else. */
static int lib_plan(CpuOp op, CpuDtype dt, const int64_t *args, const CudaOptions *opt,
                    CudaLaunch *out, int64_t *scratch, char *err, size_t cap) {
    (void)args, (void)opt;
    if (op != CPU_MATMUL || dt != CPU_F32) return snprintf(err, cap, "not in the fake"), -1;
    memset(out, 0, sizeof *out);
    strcpy(out->kernel, "fake_matmul");
    out->grid[0] = out->grid[1] = out->grid[2] = 1;
    out->block[0] = 64, out->block[1] = out->block[2] = 1;
    *scratch = 0;
    return 1;
}

static const CudaPlanner kPlanner = {grid, lib_plan, {false}};

static Program *parse(const char *text, int nkernels) {
    char err[1024];
    Program *p = program_parse(text, nkernels, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    return p;
}

static void *image(const char *arch, bool cubin, size_t *n) {
    static const char ptx[] = "// fake ptx\n", bin[] = "FAKECUBIN";
    CudaImage img = {.nkernels = 2};
    snprintf(img.arch, sizeof img.arch, "%s", arch);
    img.ptx = ptx, img.ptx_bytes = sizeof ptx;
    if (cubin) img.cubin = bin, img.cubin_bytes = sizeof bin - 1;
    return cuda_image_write(&img, n);
}

typedef struct {
    Program *p;
    Runner *cpu;
    CudaRunner *gpu;
    void *img;
} Pair;

static Pair pair(const char *arch, bool cubin, uint32_t seed) {
    Pair q = {parse(kProgram, 2), NULL, NULL, NULL};
    char err[2048];
    q.cpu = runner_new(q.p, kKernels, 2, 1, seed, err, sizeof err);
    cr_assert_not_null(q.cpu, "%s", err);
    void *params[2] = {runner_param(q.cpu, 0), runner_param(q.cpu, 1)};
    size_t n;
    q.img = image(arch, cubin, &n);
    q.gpu = cuda_runner_new_planned(q.p, q.img, n, params, &kPlanner, err, sizeof err);
    cr_assert_not_null(q.gpu, "%s", err);
    return q;
}

static void pair_free(Pair *q) {
    cuda_runner_free(q->gpu);
    runner_free(q->cpu);
    program_free(q->p);
    free(q->img);
}

/* Runs both `calls` times on different inputs, the output w bound to
 * parameter w (by hand on the CPU), and compares everything. */
static void compare(Pair *q, int calls) {
    char err[2048];
    for (int c = 0; c < calls; c++) {
        float x[4], a[8];
        for (int i = 0; i < 4; i++) x[i] = 0.25f * (float)(i + c) - 0.5f;
        for (int i = 0; i < 8; i++) a[i] = 0.125f * (float)(i * (c + 1) % 7) - 0.3f;
        const void *ins[2] = {x, a};
        float y[2][4], loss[2], w[2][4], z[2][6];
        memset(w, 0xff, sizeof w); /* NaN: the device must not write the bound output */
        void *oc[4] = {y[0], &loss[0], w[0], z[0]}, *og[4] = {y[1], &loss[1], w[1], z[1]};
        runner_call(q->cpu, 0, ins, oc);
        memcpy(runner_param(q->cpu, 0), w[0], sizeof w[0]);
        cr_assert(cuda_runner_call(q->gpu, 0, ins, og, err, sizeof err), "call %d: %s", c, err);
        cr_expect_eq(memcmp(y[0], y[1], sizeof y[0]), 0, "call %d: y differs", c);
        cr_expect_eq(loss[0], loss[1], "call %d: loss %g vs %g", c, loss[0], loss[1]);
        for (int i = 0; i < 6; i++)
            cr_expect(fabsf(z[0][i] - z[1][i]) <= 1e-5f, "call %d: z[%d] %g vs %g", c, i,
                      z[0][i], z[1][i]);
        cr_expect(isnan(w[1][0]), "call %d: a bound output came back to the host", c);
        float pw[4];
        cr_assert(cuda_runner_get_param(q->gpu, 0, pw, err, sizeof err), "%s", err);
        cr_expect_eq(memcmp(pw, runner_param(q->cpu, 0), sizeof pw), 0,
                     "call %d: parameter w differs", c);
    }
}

Test(cuda_runner, same_results_as_cpu_with_graphs) {
    Pair q = pair("sm_90", true, 3);
    char err[2048];
    cr_assert(cuda_runner_bind(q.gpu, 0, 2, 0, err, sizeof err), "%s", err);
    FakeCudaStats s0 = stats();
    compare(&q, 3);
    FakeCudaStats s = stats();
    cr_expect_str_eq(s.loaded, "cubin");
    cr_expect_eq(s.captures - s0.captures, 1, "captured once");
    cr_expect_eq(s.graph_launches - s0.graph_launches, 3, "one graph launch per call");
    cr_expect_eq(s.kernels_run - s0.kernels_run, 3 * (2 * 3 + 1 + 1), "kernels per call: 6+1+1");
    cr_expect(strstr(cuda_runner_describe(q.gpu), "Fake GPU (sm_90), CUBIN for sm_90, graphs on"),
              "%s", cuda_runner_describe(q.gpu));
    pair_free(&q);
}

Test(cuda_runner, same_results_as_cpu_without_graphs) {
    setenv("IGRC_CUDA_GRAPHS", "0", 1);
    Pair q = pair("sm_80", false, 5);
    char err[2048];
    cr_assert(cuda_runner_bind(q.gpu, 0, 2, 0, err, sizeof err), "%s", err);
    FakeCudaStats s0 = stats();
    compare(&q, 2);
    FakeCudaStats s = stats();
    cr_expect_str_eq(s.loaded, "ptx", "no CUBIN for sm_90: the PTX");
    cr_expect_eq(s.captures - s0.captures, 0);
    cr_expect_eq(s.graph_launches - s0.graph_launches, 0);
    cr_expect_eq(s.kernels_run - s0.kernels_run, 2 * 8);
    pair_free(&q);
}

/* A binding made after the graph was captured: the next call captures
 * again, and from then on the parameter follows the output. */
Test(cuda_runner, binding_after_capture) {
    Pair q = pair("sm_90", true, 9);
    char err[2048];
    FakeCudaStats s0 = stats();
    float x[4] = {1, 2, 3, 4}, a[8] = {0}, y[4], loss, w[4], z[6];
    const void *ins[2] = {x, a};
    void *outs[4] = {y, &loss, w, z};
    float w0[4], w1[4];
    cr_assert(cuda_runner_get_param(q.gpu, 0, w0, err, sizeof err), "%s", err);
    cr_assert(cuda_runner_call(q.gpu, 0, ins, outs, err, sizeof err), "%s", err);
    cr_assert(cuda_runner_get_param(q.gpu, 0, w1, err, sizeof err), "%s", err);
    cr_expect_eq(memcmp(w0, w1, sizeof w0), 0, "unbound: w unchanged");
    cr_assert(cuda_runner_bind(q.gpu, 0, 2, 0, err, sizeof err), "%s", err);
    cr_assert(cuda_runner_bind(q.gpu, 0, 2, 0, err, sizeof err), "the same binding again: %s", err);
    cr_expect_not(cuda_runner_bind(q.gpu, 0, 2, 1, err, sizeof err), "output bound elsewhere");
    cr_expect_not(cuda_runner_bind(q.gpu, 0, 0, 1, err, sizeof err), "sizes differ");
    cr_assert(cuda_runner_call(q.gpu, 0, ins, outs, err, sizeof err), "%s", err);
    cr_assert(cuda_runner_get_param(q.gpu, 0, w1, err, sizeof err), "%s", err);
    cr_expect_eq(memcmp(w1, w, sizeof w1), 0, "bound: w is the call's output (also y)");
    cr_expect_eq(memcmp(w1, y, sizeof w1), 0);
    cr_expect_eq(stats().captures - s0.captures, 2, "captured again after the binding");
    /* a host edit reaches the device */
    float zero[4] = {0};
    cr_assert(cuda_runner_set_param(q.gpu, 0, zero, err, sizeof err), "%s", err);
    cr_assert(cuda_runner_get_param(q.gpu, 0, w1, err, sizeof err), "%s", err);
    cr_expect_eq(memcmp(w1, zero, sizeof zero), 0);
    pair_free(&q);
}

/* Input x and output y kept on the device (the fake's device memory is
 * host memory, so the test reads and writes them at their addresses): the
 * call neither stages x from the host nor returns y, the graph is captured
 * again, and the results equal a call with everything staged. */
Test(cuda_runner, inputs_and_outputs_kept_on_the_device) {
    Pair q = pair("sm_90", true, 11);
    char err[2048];
    float x[4] = {0.5f, -1, 2, 0.25f}, a[8] = {0.1f, 0.2f}, y[4], loss, w[4], z[6];
    float y2[4], loss2, w2[4], z2[6], stale[4] = {9, 9, 9, 9};
    const void *ins[2] = {x, a};
    void *outs[4] = {y, &loss, w, z};
    cr_assert(cuda_runner_call(q.gpu, 0, ins, outs, err, sizeof err), "%s", err);
    uint64_t dx = 0, dy = 0, again = 0;
    cr_assert(cuda_runner_keep(q.gpu, 0, true, 0, &dx, err, sizeof err), "%s", err);
    cr_assert(cuda_runner_keep(q.gpu, 0, false, 0, &dy, err, sizeof err), "%s", err);
    cr_assert(cuda_runner_keep(q.gpu, 0, false, 0, &again, err, sizeof err), "%s", err);
    cr_expect(dx && dy && again == dy, "addresses %llx %llx %llx", (unsigned long long)dx,
              (unsigned long long)dy, (unsigned long long)again);
    cr_expect_not(cuda_runner_keep(q.gpu, 0, false, 4, &again, err, sizeof err), "no output 4");
    memcpy((void *)(uintptr_t)dx, x, sizeof x); /* x written "on the device" */
    memcpy(y2, stale, sizeof y2);
    const void *ins2[2] = {stale, a}; /* the host x is not read */
    void *outs2[4] = {y2, &loss2, w2, z2};
    FakeCudaStats s0 = stats();
    cr_assert(cuda_runner_call(q.gpu, 0, ins2, outs2, err, sizeof err), "%s", err);
    cr_expect_eq(stats().captures - s0.captures, 1, "captured again after keep");
    cr_expect_eq(memcmp(y2, stale, sizeof y2), 0, "a kept output came back to the host");
    cr_expect_eq(memcmp((void *)(uintptr_t)dy, y, sizeof y), 0, "y on the device differs");
    cr_expect_eq(loss2, loss);
    cr_expect_eq(memcmp(z2, z, sizeof z), 0);
    pair_free(&q);
}

/* Device bytes: parameters (16 + 48), three arenas (1024 + 256 + 256),
 * two loops' trip tables and carries (4 x 256), the I/O buffer of step
 * (6 x 256); all of it, and the pinned staging, freed. */
Test(cuda_runner, memory) {
    FakeCudaStats s0 = stats();
    Pair q = pair("sm_90", true, 1);
    cr_expect_eq(cuda_runner_memory_bytes(q.gpu), 64, "before a call: the parameters");
    float x[4] = {0}, a[8] = {0}, y[4], loss, w[4], z[6];
    const void *ins[2] = {x, a};
    void *outs[4] = {y, &loss, w, z};
    char err[2048];
    cr_assert(cuda_runner_call(q.gpu, 0, ins, outs, err, sizeof err), "%s", err);
    const int64_t want = 64 + 1536 + 1024 + 1536;
    cr_expect_eq(cuda_runner_memory_bytes(q.gpu), want, "%lld",
                 (long long)cuda_runner_memory_bytes(q.gpu));
    cr_expect_eq(stats().live_bytes - s0.live_bytes, want, "the driver agrees");
    cr_expect_eq(cuda_runner_pinned_bytes(q.gpu), 1536);
    pair_free(&q);
    FakeCudaStats s = stats();
    cr_expect_eq(s.live_allocs, s0.live_allocs, "device allocations leaked");
    cr_expect_eq(s.live_bytes, s0.live_bytes);
    cr_expect_eq(s.live_host, s0.live_host, "pinned buffers leaked");
}

Test(cuda_runner, launch_failure_message) {
    setenv("FAKE_CUDA_FAIL", "igrc_k1", 1);
    for (int graphs = 0; graphs < 2; graphs++) {
        setenv("IGRC_CUDA_GRAPHS", graphs ? "1" : "0", 1);
        Pair q = pair("sm_90", true, 1);
        float x[4] = {0}, a[8] = {0}, y[4], loss, w[4], z[6];
        const void *ins[2] = {x, a};
        void *outs[4] = {y, &loss, w, z};
        char err[2048];
        cr_assert_not(cuda_runner_call(q.gpu, 0, ins, outs, err, sizeof err));
        cr_expect(strstr(err, "cuLaunchKernel failed while launching igrc_k1 for step 1 (sum) "
                              "of step in a call of step"), "%s", err);
        cr_expect(strstr(err, "CUDA_ERROR_LAUNCH_FAILED (unspecified launch failure)"), "%s", err);
        pair_free(&q);
    }
}

Test(cuda_runner, missing_kernel_message) {
    Program *p = parse("program k batch 1\n"
                       "func f arena 256\n"
                       "  in x f32 [4]\n"
                       "  out y f32 [4] a0\n"
                       "  kernel 2 4 1 a0 i0 # neg\n"
                       "end\n",
                       3);
    size_t n;
    void *img = image("sm_90", true, &n);
    char err[2048];
    CudaRunner *r = cuda_runner_new_planned(p, img, n, NULL, &kPlanner, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    float x[4] = {0}, y[4];
    const void *ins[1] = {x};
    void *outs[1] = {y};
    cr_assert_not(cuda_runner_call(r, 0, ins, outs, err, sizeof err));
    cr_expect(strstr(err, "cuModuleGetFunction failed while looking up kernel igrc_k2"), "%s", err);
    cr_expect(strstr(err, "CUDA_ERROR_NOT_FOUND"), "%s", err);
    cuda_runner_free(r);
    free(img);
    program_free(p);
}

/* exec_new on the device uses runtime/cuda_lib_plan.c's plans: with them,
 * the host views follow the device; without them (a build before the CUDA
 * code generator), it says so once the driver is loaded. */
Test(cuda_runner, exec_on_device) {
    Program *p = parse("program d batch 1\n"
                       "param w f32 [4] init uniform 0.5 trainable\n"
                       "func f arena 256\n"
                       "  in x f32 [4]\n"
                       "  out y f32 [4] a0\n"
                       "  kernel 0 4 1 a0 i0 p0 i0 # add\n"
                       "end\n",
                       1);
    size_t n;
    void *img = image("sm_90", true, &n);
    char err[2048];
    Exec *e = exec_new(p, &(BackendCode){NULL, 0, &(BackendImage){"cuda", img, (int64_t)n}, 1}, "cuda", 1, 4, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    float w0[4], x[4] = {1, 1, 1, 1}, y[4];
    memcpy(w0, exec_param(e, 0), sizeof w0);
    cr_assert(exec_bind_param_output(e, 0, 0, 0), "%s", exec_error(e));
    const void *ins[1] = {x};
    void *outs[1] = {y};
    cr_assert(exec_call(e, 0, ins, outs), "%s", exec_error(e));
    /* igrc_k0 with trip = x[0] = 1 (as int bits: 1.0f is not 1; compare computed) */
    float *w = exec_param(e, 0);
    cr_assert_not_null(w, "%s", exec_error(e));
    cr_expect_neq(memcmp(w, w0, sizeof w0), 0, "the device wrote the parameter");
    memset(w, 0, sizeof w0);
    cr_assert(exec_params_changed(e), "%s", exec_error(e));
    exec_free(e);
    e = NULL;
    exec_free(e);
    free(img);
    program_free(p);
}
