/* igrc compile: graph file -> executable (or IR, LLVM IR, an object file);
 * igrc run: compile in memory and run the executable's command line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codegen/backend_compile.h"
#include "codegen/cpu/cpu_compile.h"
#include "ir/print.h"
#include "runtime/app/app.h"
#include "runtime/io/outfile.h"
#include "tools/igrc/driver.h"

static const char HELP[] =
    "usage: igrc compile FILE [-o OUT] [--target cpu|cuda] [--emit exe|obj|llvm|ir|kernels|cuda]\n"
    "                    [--gpu-arch sm_NN] [--tf32]\n"
    "                    [--batch N] [-D key=value]... [--dump-dir DIR]\n"
    "                    [--dump-after PASS,...] [--dump-after-all] [--disable PASS,...]\n"
    "                    [--verify-each] [--time-passes]\n"
    "       igrc run FILE [compile options] -- COMMAND [ARGS]\n"
    "\n"
    "Compiles FILE through the pass pipeline and the CPU backend (LLVM O3 for this\n"
    "machine's CPU) and links one executable with the runtime: OUT train | eval |\n"
    "info (OUT --help). --emit stops early: ir prints the IR after the pipeline,\n"
    "kernels the kernel IR of every distinct kernel (to OUT, default stdout), llvm\n"
    "writes the optimised LLVM IR, obj the object file. --dump-dir also writes\n"
    "program.txt, plan.txt (memory plan: arena offsets, peak bytes) and\n"
    "kernels/<name>.k. OUT defaults to the file's stem (resnet18_trades_igr.json ->\n"
    "./resnet18_trades_igr). igrc run compiles in memory (LLVM's JIT, no files) and\n"
    "runs the executable's COMMAND (train, eval, info) in this process.\n"
    "\n"
    "--target cuda also compiles every kernel and the GPU library with NVRTC for\n"
    "--gpu-arch (default sm_90) and embeds the PTX and CUBIN in the executable, which\n"
    "then runs on the CPU or the GPU; --tf32 uses tensor cores (TF32) for f32 matmul\n"
    "and convolutions (sm_80 or newer). Compiled modules are cached in\n"
    "$IGRC_CACHE_DIR (default $XDG_CACHE_HOME/igrc, else ~/.cache/igrc). --emit cuda\n"
    "writes the module's CUDA C to OUT (default stdout); --dump-dir also writes\n"
    "cuda/module.cu and cuda/module.ptx.\n";

typedef struct {
    CommonArgs c;
    const char *out, *emit, *target, *gpu_arch;
    bool tf32;
    char **run_args; /* igrc run: after -- */
    int nrun;
} CompileArgs;

static int parse(int argc, char **argv, CompileArgs *a, bool run) {
    for (int i = 1; i < argc; i++) {
        if (run && strcmp(argv[i], "--") == 0) {
            a->run_args = argv + i + 1;
            a->nrun = argc - i - 1;
            break;
        }
        int r = common_option(&a->c, argc, argv, &i);
        if (r < 0) return EXIT_BADINPUT;
        if (r) continue;
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) return fputs(HELP, stdout), -1;
        if (!strcmp(o, "-o") && v && !run) a->out = v, i++;
        else if (!strcmp(o, "--emit") && v && !run) a->emit = v, i++;
        else if (!strcmp(o, "--target") && v) a->target = v, i++;
        else if (!strcmp(o, "--gpu-arch") && v && !run) a->gpu_arch = v, i++;
        else if (!strcmp(o, "--tf32") && !run) a->tf32 = true;
        else if (o[0] != '-' && !a->c.file) a->c.file = o;
        else return usage_error(run ? "run" : "compile", "unexpected or incomplete argument '%s'", o);
    }
    const char *cmd = run ? "run" : "compile";
    if (!a->c.file) return usage_error(cmd, "no graph file given");
    if (run && strcmp(a->target, "cpu"))
        return usage_error(cmd, "--target '%s': igrc run runs on the CPU", a->target);
    const CodegenBackend *t = codegen_backend_find(a->target);
    if (!t)
        return usage_error(cmd, "--target '%s' is not available (targets of this igrc: %s; cuda "
                                "needs the CUDA toolkit at configure time)", a->target,
                           codegen_backend_names());
    if (!t->default_arch && (a->gpu_arch || a->tf32))
        return usage_error(cmd, "%s needs a GPU target (--target cuda)",
                           a->gpu_arch ? "--gpu-arch" : "--tf32");
    const CodegenBackend *src = codegen_backend_find(a->emit);
    if (strcmp(a->emit, "exe") && strcmp(a->emit, "obj") && strcmp(a->emit, "llvm") &&
        strcmp(a->emit, "ir") && strcmp(a->emit, "kernels") && !(src && src->emit_source))
        return usage_error(cmd, "--emit must be exe, obj, llvm, ir, kernels or a target's source "
                                "(cuda), got '%s'", a->emit);
    if (src && src != t) return usage_error(cmd, "--emit %s needs --target %s", a->emit, a->emit);
    if (run && !a->nrun) return usage_error(cmd, "give the executable's command after --");
    return EXIT_OK;
}

/* --emit <target>: the source that target compiles. */
static bool emit_source(const CodegenBackend *t, const Module *m, const char *out, Diag *d) {
    Compiled c;
    bool ok = codegen_build(m, &c, d) && t->emit_source(&c, out, d);
    compiled_free(&c);
    return ok;
}

/* ./<stem of FILE> */
static void default_out(const char *file, char *buf, size_t cap) {
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    snprintf(buf, cap, "%.*s", (int)strcspn(base, "."), base);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static bool write_ir(const Module *m, const char *out, Diag *d) {
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f) return diag_error(d, EXIT_RUNTIME, "%s: %s", out, strerror(errno));
    ir_print_module(m, f);
    if (out) fclose(f);
    return true;
}

/* The kernel IR codegen lowers the module to: each distinct kernel once,
 * in first-launch order (what `--dump-dir` writes as kernels/<name>.k). */
static bool write_kernels(const Module *m, const char *out, Diag *d) {
    Compiled c;
    if (!codegen_build(m, &c, d)) {
        compiled_free(&c);
        return false;
    }
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f) {
        compiled_free(&c);
        return diag_error(d, EXIT_RUNTIME, "%s: %s", out, strerror(errno));
    }
    for (int i = 0; i < c.nkernels; i++) kernel_print(c.kernels[i], f);
    compiled_free(&c);
    if (out) fclose(f);
    return true;
}

/* The executable (or what --emit asks for) at out. */
static bool compile_to(const CompileArgs *a, Module *m, const CodegenBackend *const *targets,
                       int ntargets, const char *out, Diag *d) {
    if (!strcmp(a->emit, "ir")) return write_ir(m, a->out, d);
    if (!strcmp(a->emit, "kernels")) return write_kernels(m, a->out, d);
    const CodegenBackend *src = codegen_backend_find(a->emit);
    if (src) return emit_source(src, m, a->out, d);
    CpuCompileOptions o = {a->c.pipe.dump_dir, NULL, a->c.pipe.timings, targets, ntargets,
                           {a->gpu_arch, a->tf32, a->c.pipe.dump_dir, a->c.pipe.timings}};
    if (!strcmp(a->emit, "llvm")) {
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp.o", out);
        o.llvm_path = out;
        bool ok = cpu_compile_object(m, tmp, &o, NULL, d);
        unlink(tmp);
        return ok;
    }
    if (!strcmp(a->emit, "obj")) return cpu_compile_object(m, out, &o, NULL, d);
    char obj[4200];
    snprintf(obj, sizeof obj, "%s.o.tmp", out);
    Compiled c;
    bool ok = cpu_compile_object(m, obj, &o, &c, d) && cpu_link_executable(obj, out, d);
    unlink(obj);
    if (ok) {
        int64_t arena = 0;
        for (int i = 0; i < c.prog->nfuncs; i++)
            if (c.prog->funcs[i].arena_bytes > arena) arena = c.prog->funcs[i].arena_bytes;
        fprintf(stderr, "igrc: %s: %d kernels (%d launches), largest arena %.1f MiB\n", out,
                c.nkernels, c.launches, (double)arena / (1 << 20));
        compiled_free(&c);
    }
    return ok;
}

static int compile_module(CompileArgs *a, const char *out) {
    double t0 = now_s();
    Diag d;
    diag_init(&d);
    /* a bad --gpu-arch is reported before seconds of lowering */
    const CodegenBackend *targets[2];
    int ntargets = 0;
    CodegenOptions to = {a->gpu_arch, a->tf32, NULL, false};
    if (!codegen_backend_find(a->emit) && !codegen_targets(a->target, &to, targets, &ntargets, &d))
        return report(&d);
    Module *m = load_module(&a->c, &d);
    bool ok = m && pipeline_run(m, &a->c.pipe, &d) && compile_to(a, m, targets, ntargets, out, &d);
    module_free(m);
    if (!ok) return report(&d);
    if (a->c.pipe.timings) fprintf(stderr, "igrc: compile total %.3f s\n", now_s() - t0);
    return EXIT_OK;
}

int cmd_compile(int argc, char **argv) {
    CompileArgs a = {.emit = "exe", .target = "cpu"};
    int rc = parse(argc, argv, &a, false);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    char out[4096];
    if (a.out) snprintf(out, sizeof out, "%s", a.out);
    else if (strcmp(a.emit, "ir") && strcmp(a.emit, "kernels") && !codegen_backend_find(a.emit))
        default_out(a.c.file, out, sizeof out);
    else return compile_module(&a, out); /* to stdout */
    char target[4096], err[4400]; /* a device or a FIFO is never replaced */
    if (!outfile_target(out, target, sizeof target, err, sizeof err)) {
        fprintf(stderr, "igrc: %s\n", err);
        return EXIT_RUNTIME;
    }
    return compile_module(&a, target);
}

/* igrc run: the pipeline, then the CPU backend in memory (LLVM's JIT), then
 * the executable's command line in this process: no files written. */
int cmd_run(int argc, char **argv) {
    CompileArgs a = {.emit = "exe", .target = "cpu"};
    int rc = parse(argc, argv, &a, true);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    Diag d;
    diag_init(&d);
    Module *m = load_module(&a.c, &d);
    char **args = calloc((size_t)a.nrun + 2, sizeof *args);
    char name[256];
    default_out(a.c.file, name, sizeof name);
    args[0] = name;
    for (int i = 0; i < a.nrun; i++) args[i + 1] = a.run_args[i];
    CpuCompileOptions o = {a.c.pipe.dump_dir, NULL, a.c.pipe.timings, NULL, 0, {0}};
    bool ok = m && pipeline_run(m, &a.c.pipe, &d) && cpu_jit_run(m, a.nrun + 1, args, &o, igrc_app_main, &rc, &d);
    free(args);
    module_free(m);
    return ok ? rc : report(&d);
}
