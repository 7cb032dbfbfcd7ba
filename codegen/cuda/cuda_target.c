/* The CUDA target (codegen/backend_compile.h): the program's kernels and
 * the GPU library rendered as one CUDA C module, compiled by NVRTC, and
 * embedded in the host object as the image runtime/cuda/cuda_abi.h
 * describes (symbol igrc_cuda_image), which the runtime's CUDA backend
 * loads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codegen/backend_compile.h"
#include "codegen/cpu/llvm_backend.h"
#include "codegen/cuda/cuda_compile.h"

static bool write_file(const char *path, const void *data, size_t n, Diag *d) {
    FILE *f = path ? fopen(path, "wb") : stdout;
    if (!f) return diag_error(d, EXIT_RUNTIME, "%s: %s", path, strerror(errno));
    bool ok = fwrite(data, 1, n, f) == n;
    if (path) ok = (fclose(f) == 0) && ok;
    return ok || diag_error(d, EXIT_RUNTIME, "%s: write failed", path ? path : "stdout");
}

/* dump_dir/cuda/<name> */
static bool dump_file(const char *dir, const char *name, const char *text, size_t n, Diag *d) {
    char path[4200];
    snprintf(path, sizeof path, "%s/cuda", dir);
    mkdir(dir, 0777);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/cuda/%s", dir, name);
    return write_file(path, text, n, d);
}

static void report_cache(const CudaCompileStats *st) {
    fprintf(stderr, "igrc: %-28s %8.3f s (%s%s)\n", "NVRTC", st->nvrtc_s,
            st->cache_hit       ? "cache hit: "
            : st->cache_corrupt ? "corrupt cache entry replaced: "
                                : "cache miss: ",
            st->cache_file[0] ? st->cache_file : "not cached");
}

static bool check(const CodegenOptions *o, Diag *d) {
    return cuda_arch_check(o->arch ? o->arch : CUDA_DEFAULT_ARCH, o->tf32, d);
}

/* The module's text is dumped before NVRTC runs, so that a compile error's
 * line can be looked up in DIR/cuda/module.cu. */
static bool add_code(const Compiled *c, const CodegenOptions *t, CpuModule *host, Diag *d) {
    CudaCompileOptions o = {t->arch, {t->tf32}, NULL, false, false};
    CudaSource src;
    if (!cuda_render_module(c->kernels, c->nkernels, &src, d)) return false;
    CudaBinary b = {0};
    CudaCompileStats st;
    bool ok = (!t->dump_dir || dump_file(t->dump_dir, "module.cu", src.text, strlen(src.text), d)) &&
              cuda_compile_source(&src, c->kernels, &o, &b, &st, d);
    if (ok && t->timings) report_cache(&st);
    if (ok && t->dump_dir) ok = dump_file(t->dump_dir, "module.ptx", b.ptx, b.ptx_bytes - 1, d);
    size_t n = 0;
    void *img = ok ? cuda_binary_image(&b, &n) : NULL;
    ok = ok && (img ? cpu_add_blob(host, "igrc_cuda_image", img, n, d)
                    : diag_error(d, EXIT_RUNTIME, "out of memory for the CUDA image"));
    free(img);
    cuda_source_free(&src);
    cuda_binary_free(&b);
    return ok;
}

static bool emit_source(const Compiled *c, const char *out, Diag *d) {
    CudaSource src;
    if (!cuda_render_module(c->kernels, c->nkernels, &src, d)) return false;
    bool ok = write_file(out, src.text, strlen(src.text), d);
    cuda_source_free(&src);
    return ok;
}

const CodegenBackend codegen_cuda = {
    .name = "cuda",
    .default_arch = CUDA_DEFAULT_ARCH,
    .check = check,
    .add_code = add_code,
    .emit_source = emit_source,
};
