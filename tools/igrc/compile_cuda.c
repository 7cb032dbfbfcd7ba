/* igrc compile --target cuda: the CPU executable plus the CUDA image
 * (PTX + CUBIN of every kernel and the library, runtime/cuda/cuda_abi.h) as the
 * blob symbol igrc_cuda_image in the same object; --emit cuda writes the
 * module's CUDA C instead. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/igrc/compile_cuda.h"

#ifdef IGRC_HAVE_CUDA

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

/* The module's text is dumped before NVRTC runs, so that a compile error's
 * line can be looked up in DIR/cuda/module.cu. */
static bool add_image(const Compiled *c, CpuModule *cm, void *ctx, Diag *d) {
    const CudaTarget *t = ctx;
    CudaCompileOptions o = {t->arch, {t->tf32}, NULL, false};
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
    ok = ok && (img ? cpu_add_blob(cm, "igrc_cuda_image", img, n, d)
                    : diag_error(d, EXIT_RUNTIME, "out of memory for the CUDA image"));
    free(img);
    cuda_source_free(&src);
    cuda_binary_free(&b);
    return ok;
}

bool cuda_target_available(void) { return true; }

bool cuda_target_check(const CudaTarget *t, Diag *d) { return cuda_arch_check(t->arch, t->tf32, d); }

void cuda_target_hook(CudaTarget *t, CpuCompileOptions *o) {
    o->extend = add_image;
    o->extend_ctx = t;
}

bool cuda_emit_source(const Module *m, const char *out, Diag *d) {
    Compiled c;
    if (!codegen_build(m, &c, d)) return false;
    CudaSource src;
    bool ok = cuda_render_module(c.kernels, c.nkernels, &src, d);
    if (ok) {
        ok = write_file(out, src.text, strlen(src.text), d);
        cuda_source_free(&src);
    }
    compiled_free(&c);
    return ok;
}

#else

bool cuda_target_available(void) { return false; }

bool cuda_target_check(const CudaTarget *t, Diag *d) {
    (void)t;
    return diag_error(d, EXIT_BADINPUT, "this igrc was built without the CUDA backend");
}

void cuda_target_hook(CudaTarget *t, CpuCompileOptions *o) {
    (void)t;
    (void)o;
}

bool cuda_emit_source(const Module *m, const char *out, Diag *d) {
    (void)m;
    (void)out;
    return diag_error(d, EXIT_BADINPUT, "this igrc was built without the CUDA backend");
}

#endif
