/* Module text -> NVRTC -> PTX + CUBIN, through the kernel cache
 * (cuda_compile.h). */
#include "codegen/cuda/cuda_compile.h"

#include <nvrtc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/cuda/cuda_cache.h"

#define MODULE_NAME "igrc_module.cu"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- architectures ---- */

/* The number in "sm_NN", or -1. */
static int arch_number(const char *arch) {
    if (!arch || strncmp(arch, "sm_", 3) != 0 || !arch[3]) return -1;
    int v = 0;
    for (const char *p = arch + 3; *p; p++) {
        if (*p < '0' || *p > '9' || v > 10000) return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

bool cuda_arch_check(const char *arch, bool tf32, Diag *d) {
    int num = 0, want = arch_number(arch);
    if (nvrtcGetNumSupportedArchs(&num) != NVRTC_SUCCESS || num <= 0)
        return diag_error(d, EXIT_RUNTIME, "NVRTC does not list its supported architectures");
    int *list = calloc((size_t)num, sizeof *list);
    nvrtcGetSupportedArchs(list);
    bool found = false;
    char names[512] = "";
    size_t len = 0;
    for (int i = 0; i < num; i++) {
        found = found || list[i] == want;
        len += (size_t)snprintf(names + len, len < sizeof names ? sizeof names - len : 0, "%ssm_%d",
                                i ? " " : "", list[i]);
    }
    free(list);
    if (!found)
        return diag_error(d, EXIT_BADINPUT,
                          "--gpu-arch '%s' is not an architecture this NVRTC compiles for "
                          "(supported: %s)", arch ? arch : "(none)", names);
    if (tf32 && want < 80)
        return diag_error(d, EXIT_BADINPUT, "--tf32 needs tensor cores with TF32 (sm_80 or newer), not %s",
                          arch);
    return true;
}

void cuda_cache_dir(char *buf, size_t cap) {
    const char *v = getenv("IGRC_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (v && *v) snprintf(buf, cap, "%s", v);
    else if (xdg && *xdg) snprintf(buf, cap, "%s/igrc", xdg);
    else snprintf(buf, cap, "%s/.cache/igrc", home && *home ? home : ".");
}

/* ---- NVRTC ---- */

typedef struct {
    const char *opts[8];
    int n;
    char arch_opt[64];
    bool ptx_only;
} NvOptions;

/* sm_NN: PTX and CUBIN; compute_NN (ptx_only): PTX alone, without ptxas. */
static void nv_options(const char *arch, const CudaOptions *opt, bool ptx_only, NvOptions *o) {
    o->ptx_only = ptx_only;
    if (ptx_only) snprintf(o->arch_opt, sizeof o->arch_opt, "--gpu-architecture=compute_%s", arch + 3);
    else snprintf(o->arch_opt, sizeof o->arch_opt, "--gpu-architecture=%s", arch);
    o->n = 0;
    o->opts[o->n++] = o->arch_opt;
    o->opts[o->n++] = "--std=c++17";
    /* a * b + c rounds twice, as in the CPU backend; the library's GEMMs
     * ask for fma explicitly */
    o->opts[o->n++] = "--fmad=false";
    if (opt->tf32) o->opts[o->n++] = "-DIGRC_TF32=1";
}

/* The kernel named by the first "igrc_module.cu(LINE): error" of log. */
static void name_failing_kernel(const char *log, const CudaSource *src, KernelDef *const *kernels,
                                char *out, size_t cap) {
    const char *p = strstr(log, MODULE_NAME "(");
    const char *err = strstr(log, ": error");
    if (err) {
        const char *q = err;
        while (q > log && q[-1] != '\n') q--;
        if (strncmp(q, MODULE_NAME "(", strlen(MODULE_NAME) + 1) == 0) p = q;
    }
    out[0] = 0;
    if (!p) return;
    int line = atoi(p + strlen(MODULE_NAME) + 1), k = cuda_source_kernel_at(src, line);
    if (k >= 0)
        snprintf(out, cap, " in kernel igrc_k%d (%s, line %d)", k, kernels ? kernels[k]->name : "?", line);
    else
        snprintf(out, cap, " in the prelude or library (line %d)", line);
}

static bool nv_fail(nvrtcResult r, const char *what, Diag *d) {
    return diag_error(d, EXIT_RUNTIME, "NVRTC %s: %s", what, nvrtcGetErrorString(r));
}

/* NVRTC's output for a compiled program into out. */
static bool nv_results(nvrtcProgram prog, bool ptx_only, CudaBinary *out, Diag *d) {
    size_t n = 0;
    nvrtcResult r = nvrtcGetPTXSize(prog, &n);
    if (r != NVRTC_SUCCESS) return nv_fail(r, "PTX size", d);
    out->ptx = malloc(n + 1);
    if ((r = nvrtcGetPTX(prog, out->ptx)) != NVRTC_SUCCESS) return nv_fail(r, "PTX", d);
    out->ptx[n] = 0;
    out->ptx_bytes = strlen(out->ptx) + 1;
    if (ptx_only) return true;
    if ((r = nvrtcGetCUBINSize(prog, &n)) != NVRTC_SUCCESS) return nv_fail(r, "CUBIN size", d);
    out->cubin = malloc(n ? n : 1);
    out->cubin_bytes = n;
    if ((r = nvrtcGetCUBIN(prog, out->cubin)) != NVRTC_SUCCESS) return nv_fail(r, "CUBIN", d);
    return true;
}

static bool nvrtc_compile(const CudaSource *src, KernelDef *const *kernels, const NvOptions *o,
                          CudaBinary *out, Diag *d) {
    nvrtcProgram prog;
    nvrtcResult r = nvrtcCreateProgram(&prog, src->text, MODULE_NAME, 0, NULL, NULL);
    if (r != NVRTC_SUCCESS) return nv_fail(r, "cannot create a program", d);
    r = nvrtcCompileProgram(prog, o->n, o->opts);
    bool ok = true;
    if (r != NVRTC_SUCCESS) {
        size_t n = 0;
        nvrtcGetProgramLogSize(prog, &n);
        char *log = calloc(n + 1, 1), where[300];
        nvrtcGetProgramLog(prog, log);
        name_failing_kernel(log, src, kernels, where, sizeof where);
        ok = diag_error(d, EXIT_RUNTIME, "NVRTC failed to compile the CUDA module%s (%s):\n%.3000s",
                        where, o->arch_opt, log);
        free(log);
    }
    ok = ok && nv_results(prog, o->ptx_only, out, d);
    nvrtcDestroyProgram(&prog);
    return ok;
}

/* ---- with the cache ---- */

static CudaCacheKey module_key(const CudaSource *src, const NvOptions *o) {
    int major = 0, minor = 0;
    nvrtcVersion(&major, &minor);
    char version[64];
    snprintf(version, sizeof version, "igrc-cuda-cache 1, nvrtc %d.%d", major, minor);
    const char *parts[12] = {version};
    int n = 1;
    for (int i = 0; i < o->n; i++) parts[n++] = o->opts[i];
    parts[n++] = src->text;
    return cuda_cache_key(parts, n);
}

/* A cached image into out, if it parses and matches what was asked. */
static bool from_image(const void *data, size_t n, const char *arch, int nkernels, CudaBinary *out) {
    CudaImage img;
    char err[256];
    if (!cuda_image_parse(data, n, &img, err, sizeof err) || strcmp(img.arch, arch) ||
        img.nkernels != nkernels || !img.ptx || !img.cubin)
        return false;
    snprintf(out->arch, sizeof out->arch, "%s", img.arch);
    out->opt = img.opt;
    out->nkernels = img.nkernels;
    out->ptx = malloc(img.ptx_bytes);
    memcpy(out->ptx, img.ptx, img.ptx_bytes);
    out->ptx_bytes = img.ptx_bytes;
    out->cubin = malloc(img.cubin_bytes);
    memcpy(out->cubin, img.cubin, img.cubin_bytes);
    out->cubin_bytes = img.cubin_bytes;
    return true;
}

static bool cache_lookup(const char *path, CudaCacheKey key, const char *arch, int nk,
                         CudaBinary *out, CudaCompileStats *st) {
    void *data = NULL;
    size_t n = 0;
    bool corrupt = false;
    bool hit = cuda_cache_load(path, key, &data, &n, &corrupt) && from_image(data, n, arch, nk, out);
    st->cache_corrupt = corrupt || (data && !hit);
    free(data);
    return hit;
}

bool cuda_compile_source(const CudaSource *src, KernelDef *const *kernels,
                         const CudaCompileOptions *o, CudaBinary *out, CudaCompileStats *st,
                         Diag *d) {
    CudaCompileStats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    memset(out, 0, sizeof *out);
    const char *arch = o && o->arch ? o->arch : CUDA_DEFAULT_ARCH;
    CudaOptions opt = o ? o->opt : (CudaOptions){false};
    if (!cuda_arch_check(arch, opt.tf32, d)) return false;
    NvOptions nv;
    nv_options(arch, &opt, o && o->ptx_only, &nv);
    CudaCacheKey key = module_key(src, &nv);
    bool use_cache = !(o && (o->no_cache || o->ptx_only));
    if (use_cache) {
        char dir[4096];
        if (o && o->cache_dir) snprintf(dir, sizeof dir, "%s", o->cache_dir);
        else cuda_cache_dir(dir, sizeof dir);
        cuda_cache_path(dir, key, st->cache_file, sizeof st->cache_file);
        if ((st->cache_hit = cache_lookup(st->cache_file, key, arch, src->nkernels, out, st)))
            return true;
    }
    double t0 = now_s();
    st->nvrtc_runs++;
    bool ok = nvrtc_compile(src, kernels, &nv, out, d);
    st->nvrtc_s = now_s() - t0;
    if (!ok) {
        cuda_binary_free(out);
        return false;
    }
    snprintf(out->arch, sizeof out->arch, "%s", arch);
    out->opt = opt;
    out->nkernels = src->nkernels;
    if (use_cache) {
        size_t n = 0;
        char err[512];
        void *img = cuda_binary_image(out, &n);
        if (!img || !cuda_cache_store(st->cache_file, key, img, n, err, sizeof err)) {
            fprintf(stderr, "igrc: warning: kernel cache not written: %s\n", img ? err : "out of memory");
            st->cache_file[0] = 0;
        }
        free(img);
    }
    return true;
}

bool cuda_compile_kernels(KernelDef *const *kernels, int n, const CudaCompileOptions *o,
                          CudaBinary *out, CudaCompileStats *st, CudaSource *src, Diag *d) {
    CudaSource s;
    if (!cuda_render_module(kernels, n, &s, d)) return false;
    bool ok = cuda_compile_source(&s, kernels, o, out, st, d);
    if (src && ok) *src = s;
    else cuda_source_free(&s);
    return ok;
}

void cuda_binary_free(CudaBinary *b) {
    free(b->ptx);
    free(b->cubin);
    memset(b, 0, sizeof *b);
}

void *cuda_binary_image(const CudaBinary *b, size_t *n) {
    CudaImage img = {.opt = b->opt, .nkernels = b->nkernels, .ptx = b->ptx,
                     .ptx_bytes = b->ptx_bytes, .cubin = b->cubin, .cubin_bytes = b->cubin_bytes};
    snprintf(img.arch, sizeof img.arch, "%s", b->arch);
    return cuda_image_write(&img, n);
}
