/* The CUDA runtime where no GPU is: loading the driver fails with a clear
 * message (a missing library, the toolkit's stub), in the library, through
 * exec_new and through the executable's command line; a CPU-only
 * executable asked for --device cuda says it was compiled without it; the
 * image's CUBIN/PTX choice; and the execution interface on the CPU
 * (parameter bindings, host views). */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/app/app.h"
#include "runtime/cpu/runner.h"
#include "runtime/cuda/cuda_driver.h"
#include "runtime/exec.h"
#include "tests/common/scratch.h"
#include "tests/common/spawn.h"

TestSuite(cuda_driver, .init = scratch_setup, .fini = scratch_teardown, .timeout = 600);

#define STUB "/usr/local/cuda/lib64/stubs/libcuda.so"

/* y = x through the arena; the only step a copy, so no kernels needed. */
static const char kCopyProgram[] =
    "program copy batch 1\n"
    "param w f32 [4] init uniform 0.5 trainable\n"
    "func f arena 256\n"
    "  in x f32 [4]\n"
    "  out y f32 [4] a0\n"
    "  copy 16 a0 i0 # copy_1\n"
    "end\n";

static Program *copy_program(void) {
    char err[512];
    Program *p = program_parse(kCopyProgram, 0, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    return p;
}

/* A well-formed image whose PTX is not real code: enough to get past the
 * image checks to the driver. */
static void *fake_image(size_t *n) {
    static const char ptx[] = "// not compiled\n";
    CudaImage img = {.arch = "sm_90", .nkernels = 0, .ptx = ptx, .ptx_bytes = sizeof ptx};
    void *buf = cuda_image_write(&img, n);
    cr_assert_not_null(buf);
    return buf;
}

static bool have_stub(void) { return access(STUB, R_OK) == 0; }

/* ---- the driver library ---- */

Test(cuda_driver, missing_library) {
    setenv("IGRC_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
    CudaDriver d;
    char err[1024] = "";
    cr_assert_not(cudrv_open(&d, err, sizeof err));
    cr_expect(strstr(err, "no CUDA driver found"), "%s", err);
    cr_expect(strstr(err, "/nonexistent/libcuda.so.1"), "the message names the file: %s", err);
    cr_expect_null(d.lib, "closed after the failure");
}

Test(cuda_driver, stub_library) {
    if (!have_stub()) cr_skip_test("no %s on this machine", STUB);
    setenv("IGRC_LIBCUDA", STUB, 1);
    CudaDriver d;
    char err[1024] = "";
    cr_assert_not(cudrv_open(&d, err, sizeof err));
    cr_expect(strstr(err, "stub library"), "%s", err);
    cr_expect(strstr(err, "CUDA_ERROR_STUB_LIBRARY"), "%s", err);
    cr_expect(strstr(err, STUB), "%s", err);
}

/* Every versioned symbol resolves in the stub (it exports the whole API):
 * the names the header macros expand to are the ones the library has. */
Test(cuda_driver, error_messages_name_call_and_result) {
    if (!have_stub()) cr_skip_test("no %s on this machine", STUB);
    setenv("IGRC_LIBCUDA", STUB, 1);
    CudaDriver d;
    char err[1024] = "";
    cr_assert_not(cudrv_open(&d, err, sizeof err));
    cr_assert_not(strstr(err, "lacks"), "a symbol is missing: %s", err);
    /* cudrv_ok on its own: the call, what was done, the result's name */
    CudaDriver none;
    memset(&none, 0, sizeof none);
    cr_assert_not(cudrv_ok(&none, CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc", "allocating the arena",
                           err, sizeof err));
    cr_expect(strstr(err, "cuMemAlloc failed while allocating the arena"), "%s", err);
    cr_expect(strstr(err, "CUresult 2"), "no driver to name it: the number: %s", err);
    cr_assert(cudrv_ok(&none, CUDA_SUCCESS, "cuInit", "x", err, sizeof err));
}

/* ---- the image: CUBIN or PTX ---- */

Test(cuda_driver, image_pick) {
    CudaImage img = {.arch = "sm_90", .ptx = "p", .ptx_bytes = 2, .cubin = "c", .cubin_bytes = 1};
    cr_expect_eq(cuda_image_pick(&img, 9, 0), CUDA_PICK_CUBIN);
    cr_expect_eq(cuda_image_pick(&img, 10, 0), CUDA_PICK_PTX, "newer device: JIT the PTX");
    cr_expect_eq(cuda_image_pick(&img, 8, 0), CUDA_PICK_NONE, "older device: neither runs");
    img.ptx = NULL, img.ptx_bytes = 0;
    cr_expect_eq(cuda_image_pick(&img, 9, 0), CUDA_PICK_CUBIN);
    cr_expect_eq(cuda_image_pick(&img, 12, 0), CUDA_PICK_NONE, "CUBIN only, other arch");
    img = (CudaImage){.arch = "sm_89", .ptx = "p", .ptx_bytes = 2};
    cr_expect_eq(cuda_image_pick(&img, 8, 9), CUDA_PICK_PTX, "PTX only");
    cr_expect_eq(cuda_arch_number("sm_90"), 90);
    cr_expect_eq(cuda_arch_number("sm_90a"), 90);
    cr_expect_eq(cuda_arch_number("sm_120"), 120);
    cr_expect_eq(cuda_arch_number("compute_90"), -1);
    cr_expect_eq(cuda_arch_number("sm_"), -1);
}

/* ---- exec_new ---- */

Test(cuda_driver, exec_without_image) {
    Program *p = copy_program();
    char err[1024] = "";
    Exec *e = exec_new(p, &(BackendCode){0}, "cuda", 1, 0, err, sizeof err);
    cr_assert_null(e);
    cr_expect(strstr(err, "compiled without --target cuda"), "%s", err);
    program_free(p);
}

Test(cuda_driver, exec_missing_driver) {
    setenv("IGRC_LIBCUDA", in_dir("no-such-libcuda.so"), 1);
    Program *p = copy_program();
    size_t n;
    void *img = fake_image(&n);
    char err[1024] = "";
    Exec *e = exec_new(p, &(BackendCode){NULL, 0, &(BackendImage){"cuda", img, (int64_t)n}, 1}, "cuda", 1, 0, err, sizeof err);
    cr_assert_null(e);
    cr_expect(strstr(err, "no CUDA driver found"), "%s", err);
    /* a broken image is refused before the driver is looked for */
    ((char *)img)[0] = 'X';
    e = exec_new(p, &(BackendCode){NULL, 0, &(BackendImage){"cuda", img, (int64_t)n}, 1}, "cuda", 1, 0, err, sizeof err);
    cr_assert_null(e);
    cr_expect(strstr(err, "CUDA image: bad magic"), "%s", err);
    free(img);
    program_free(p);
}

/* ---- the command line, in a child with stderr in a file ---- */

typedef struct {
    int rc;
    char *err;
} AppRun;

static AppRun app_run(const char *const *args, const void *image, size_t n) {
    char *argv[16];
    int argc = 0;
    argv[argc++] = "copy";
    for (; args[argc - 1]; argc++) argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    const char *log = in_dir("app.err");
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2), dup2(fd, 1), close(fd);
        BackendImage img = {"cuda", image, (int64_t)n};
        int rc = igrc_app_main_code(argc, argv, kCopyProgram, (int64_t)strlen(kCopyProgram),
                                    &(BackendCode){NULL, 0, &img, 1});
        fflush(stdout), fflush(stderr);
        _exit(rc);
    }
    int st;
    waitpid(pid, &st, 0);
    return (AppRun){WIFEXITED(st) ? WEXITSTATUS(st) : 128, slurp(log, NULL)};
}

Test(cuda_driver, app_missing_driver) {
    setenv("IGRC_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
    size_t n;
    void *img = fake_image(&n);
    AppRun r = app_run((const char *const[]){"info", "--device", "cuda", NULL}, img, n);
    cr_expect_eq(r.rc, 1, "exit %d: %s", r.rc, r.err);
    cr_expect(strstr(r.err, "no CUDA driver found"), "%s", r.err);
    free(r.err);
    free(img);
}

Test(cuda_driver, app_stub_driver) {
    if (!have_stub()) cr_skip_test("no %s on this machine", STUB);
    setenv("IGRC_LIBCUDA", STUB, 1);
    size_t n;
    void *img = fake_image(&n);
    AppRun r = app_run((const char *const[]){"info", "--device", "cuda", NULL}, img, n);
    cr_expect_eq(r.rc, 1, "exit %d: %s", r.rc, r.err);
    cr_expect(strstr(r.err, "stub library"), "%s", r.err);
    free(r.err);
    free(img);
}

Test(cuda_driver, app_device_option) {
    AppRun r = app_run((const char *const[]){"info", "--device", "tpu", NULL}, NULL, 0);
    cr_expect_eq(r.rc, 2, "an unknown device is a usage error: exit %d", r.rc);
    cr_expect(strstr(r.err, "--device must be cpu or cuda, got 'tpu'"), "%s", r.err);
    free(r.err);
    r = app_run((const char *const[]){"info", "--device", "cuda", NULL}, NULL, 0);
    cr_expect_eq(r.rc, 1, "exit %d", r.rc);
    cr_expect(strstr(r.err, "this executable was compiled without --target cuda"), "%s", r.err);
    free(r.err);
    r = app_run((const char *const[]){"info", "--device", "cpu", NULL}, NULL, 0);
    cr_expect_eq(r.rc, 0, "exit %d: %s", r.rc, r.err);
    cr_expect(strstr(r.err, "runner memory"), "%s", r.err);
    free(r.err);
}

/* A real executable from `igrc compile` (CPU only): --device cuda stops
 * before any work, for every command, with a non-zero exit. */
Test(cuda_driver, cpu_executable_refuses_cuda) {
    const char *exe = in_dir("mlp");
    Result c = spawn_v(igrc_bin(), (const char *const[]){"compile",
                                                          src_path("models/mnist_mlp_standard.json"),
                                                          "-o", exe, "--batch", "8", NULL});
    cr_assert_eq(c.rc, 0, "igrc compile: exit %d\n%s", c.rc, c.err);
    result_free(&c);
    const char *cmds[][4] = {{"info", "--device", "cuda", NULL},
                             {"train", "--device", "cuda", NULL},
                             {"eval", "--device", "cuda", NULL},
                             {"attrib", "--device", "cuda", NULL},
                             {"consistency", "--device", "cuda", NULL},
                             {"ig", "--device", "cuda", NULL}};
    for (int i = 0; i < 6; i++) {
        Result r = spawn_v(exe, cmds[i]);
        cr_expect_neq(r.rc, 0, "%s --device cuda: exit 0", cmds[i][0]);
        cr_expect(strstr(r.err, "this executable was compiled without --target cuda"),
                  "%s: %s", cmds[i][0], r.err);
        result_free(&r);
    }
    Result r = spawn_v(exe, (const char *const[]){"info", "--device", "cpu", NULL});
    cr_expect_eq(r.rc, 0, "info --device cpu: exit %d\n%s", r.rc, r.err);
    cr_expect(strstr(r.out, "runner memory"), "%s", r.out);
    result_free(&r);
}

/* A --target cuda executable runs on the CPU where there is no driver and
 * says so when asked for the GPU; igrc exec --backend cuda likewise. */
Test(cuda_driver, cuda_executable_without_driver) {
#ifndef IGRC_HAVE_CUDA
    cr_skip_test("igrc built without the CUDA backend: no --target cuda");
#endif
    setenv("IGRC_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
    const char *exe = in_dir("mlp_cuda");
    const char *model = src_path("models/mnist_mlp_standard.json");
    Result c = spawn_v(igrc_bin(), (const char *const[]){"compile", model, "-o", exe, "--batch",
                                                          "8", "--target", "cuda", NULL});
    cr_assert_eq(c.rc, 0, "igrc compile --target cuda: exit %d\n%s", c.rc, c.err);
    result_free(&c);
    Result r = spawn_v(exe, (const char *const[]){"info", "--device", "cuda", NULL});
    cr_expect_eq(r.rc, 1, "info --device cuda: exit %d\n%s", r.rc, r.err);
    cr_expect(strstr(r.err, "no CUDA driver found"), "%s", r.err);
    result_free(&r);
    r = spawn_v(exe, (const char *const[]){"info", "--device", "cpu", NULL});
    cr_expect_eq(r.rc, 0, "info --device cpu: exit %d\n%s", r.rc, r.err);
    cr_expect(strstr(r.out, "cuda image"), "%s", r.out);
    result_free(&r);
    r = spawn_v(igrc_bin(), (const char *const[]){"exec", model, "--fn", "predict", "--batch", "2",
                                                   "--backend", "cuda", "--inputs", "/nonexistent",
                                                   "-o", in_dir("out.safetensors"), NULL});
    cr_expect_eq(r.rc, 1, "exec --backend cuda: exit %d\n%s", r.rc, r.err);
    cr_expect(strstr(r.err, "no CUDA driver found"), "%s", r.err);
    result_free(&r);
}

/* ---- the execution interface on the CPU ---- */

Test(cuda_driver, exec_cpu_binding_and_params) {
    Program *p = copy_program();
    char err[1024];
    Exec *e = exec_new(p, &(BackendCode){NULL, 0, NULL, 0}, "cpu", 1, 7, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    cr_expect_eq(exec_backend(e), backend_find("cpu"));
    cr_expect_eq(exec_program(e), p);
    /* the same initial values as a runner with that seed */
    Runner *r = runner_new(p, NULL, 0, 1, 7, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    cr_expect_eq(memcmp(exec_param(e, 0), runner_param(r, 0), 16), 0);
    float w0[4];
    memcpy(w0, exec_param(e, 0), sizeof w0);
    cr_expect(w0[0] != 0 || w0[1] != 0, "uniform init gave zeros");
    runner_free(r);

    float x[4] = {1, 2, 3, 4}, y[4] = {0};
    const void *ins[1] = {x};
    void *outs[1] = {y};
    cr_assert(exec_call(e, 0, ins, outs), "%s", exec_error(e));
    cr_expect_eq(memcmp(y, x, sizeof x), 0, "y = x");
    cr_expect_eq(memcmp(exec_param(e, 0), w0, sizeof w0), 0, "unbound: w unchanged");

    cr_assert_not(exec_bind_param_output(e, 0, 1, 0), "no output 1");
    cr_assert_not(exec_bind_param_output(e, 0, 0, 1), "no parameter 1");
    cr_assert(exec_bind_param_output(e, 0, 0, 0), "%s", exec_error(e));
    cr_assert(exec_call(e, 0, ins, outs), "%s", exec_error(e));
    cr_expect_eq(memcmp(exec_param(e, 0), x, sizeof x), 0, "bound: w = y after the call");

    cr_assert(exec_init_params(e, 7));
    cr_expect_eq(memcmp(exec_param(e, 0), w0, sizeof w0), 0, "re-initialised from seed 7");
    cr_expect_gt(exec_memory_bytes(e), 0);
    cr_expect(strstr(exec_describe(e), "cpu, 1 threads"), "%s", exec_describe(e));
    exec_free(e);
    program_free(p);
}

Test(cuda_driver, device_names) {
    cr_expect_str_eq(backend_find("cpu")->name, "cpu");
    cr_expect_str_eq(backend_find("cuda")->name, "cuda");
    cr_expect_null(backend_find("gpu"));
    cr_expect_str_eq(backend_names(), "cpu or cuda");
}
