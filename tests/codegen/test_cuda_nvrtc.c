/* The CUDA backend through NVRTC (no GPU needed):
 *   - every kernel of every model in models/ (ResNet-18 included) compiles
 *     for sm_90 as igrc_k<i>, and every library launch the models' programs
 *     plan (with and without --tf32) names an entry of the module's PTX;
 *   - the kernel cache: a second compile of the same module does no NVRTC
 *     work and gives the same bytes; a corrupt or truncated entry is
 *     recompiled and replaced; another architecture is another entry; the
 *     cache directory follows IGRC_CACHE_DIR / XDG_CACHE_HOME / HOME;
 *   - errors: an architecture NVRTC does not know, --tf32 below sm_80, and
 *     NVRTC's log naming the generated kernel that failed to compile. */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen/cuda/cuda_compile.h"
#include "codegen/program_build.h"
#include "tests/codegen/conformance_util.h"
#include "tests/common/scratch.h"

/* The cheap variants of the models (short attacks and IG paths: every
 * kernel's structure is the same as at full length). */
typedef struct {
    const char *file;
    const char *defs[5];
    int ndefs;
} ModelSpec;

static const ModelSpec MODELS[] = {
    {"mnist_mlp_standard.json", {"eval.ig_steps=2"}, 1},
    {"mnist_smallcnn.json", {"eval.ig_steps=2"}, 1},
    {"mnist_smallcnn_standard.json", {"eval.ig_steps=2"}, 1},
    {"mnist_smallcnn_at.json", {"eval.ig_steps=2", "pgd_steps=2"}, 2},
    {"mnist_smallcnn_trades.json", {"eval.ig_steps=2", "pgd_steps=2"}, 2},
    {"mnist_smallcnn_mart.json", {"eval.ig_steps=2", "pgd_steps=2"}, 2},
    {"mnist_smallcnn_at_igr.json", {"eval.ig_steps=2", "pgd_steps=2", "ig_steps=2"}, 3},
    {"mnist_smallcnn_trades_igr.json", {"eval.ig_steps=2", "pgd_steps=2", "ig_steps=2"}, 3},
    {"mnist_smallcnn_mart_igr.json", {"eval.ig_steps=2", "pgd_steps=2", "ig_steps=2"}, 3},
    {"mnist_smallcnn_ig_norm.json",
     {"eval.ig_steps=2", "pgd_steps=2", "ig_norm_steps=3", "ig_norm_attack_steps=2"}, 4},
    {"mnist_smallcnn_ig_sum_norm.json",
     {"eval.ig_steps=2", "pgd_steps=2", "ig_norm_steps=3", "ig_norm_attack_steps=2"}, 4},
    {"mnist_smallcnn_advaat.json", {"eval.ig_steps=2", "pgd_steps=2", "advaat_ig_steps=2"}, 3},
    {"mnist_smallcnn_art.json", {"eval.ig_steps=2", "pgd_steps=2"}, 2},
    {"mnist_smallcnn_ssr.json", {"eval.ig_steps=2", "ssr_iterations=3"}, 2},
    {"resnet18_trades_igr.json", {"eval.ig_steps=2", "pgd_steps=2", "ig_steps=2"}, 3},
};
#define NMODELS (int)(sizeof MODELS / sizeof MODELS[0])

TestSuite(cuda_nvrtc, .init = scratch_setup, .fini = scratch_teardown, .timeout = 1800);

/* Every .json file in models/ has a spec above: a new model cannot be missed. */
static void expect_all_models_listed(void) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/models", cf_source_dir());
    DIR *d = opendir(dir);
    cr_assert(d, "cannot list %s", dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 5, ".json")) continue;
        bool found = false;
        for (int i = 0; i < NMODELS; i++) found = found || !strcmp(MODELS[i].file, e->d_name);
        cr_expect(found, "models/%s has no entry in this test's model list", e->d_name);
    }
    closedir(d);
}

typedef struct {
    KernelDef **k; /* distinct kernels across the models (borrowed) */
    int n, cap;
    PStep *lib;    /* distinct library steps (op, dtype, args) */
    int nlib, libcap;
} Union;

static void add_kernel(Union *u, KernelDef *k) {
    for (int i = 0; i < u->n; i++)
        if (kernel_hash(u->k[i]) == kernel_hash(k) && kernel_same(u->k[i], k)) return;
    if (u->n == u->cap) u->k = realloc(u->k, sizeof *u->k * (size_t)(u->cap = u->cap * 2 + 64));
    u->k[u->n++] = k;
}

static void add_lib(Union *u, const PStep *s) {
    for (int i = 0; i < u->nlib; i++)
        if (u->lib[i].index == s->index && u->lib[i].dtype == s->dtype &&
            !memcmp(u->lib[i].args, s->args, sizeof s->args))
            return;
    if (u->nlib == u->libcap) u->lib = realloc(u->lib, sizeof *u->lib * (size_t)(u->libcap = u->libcap * 2 + 16));
    u->lib[u->nlib++] = *s;
}

/* ".entry NAME(" in the PTX. */
static bool has_entry(const char *ptx, const char *name) {
    char pat[IGRC_CUDA_NAME_MAX + 16];
    snprintf(pat, sizeof pat, ".entry %.*s(", IGRC_CUDA_NAME_MAX, name);
    return strstr(ptx, pat) != NULL;
}

static void expect_lib_entries(const Union *u, const CudaBinary *b, bool tf32) {
    CudaOptions opt = {tf32};
    for (int i = 0; i < u->nlib; i++) {
        CudaLaunch l[IGRC_CUDA_LIB_MAX_LAUNCHES];
        int64_t scratch;
        char err[256];
        const PStep *s = &u->lib[i];
        int n = cuda_lib_plan((CpuOp)s->index, (CpuDtype)s->dtype, s->args, &opt, l, &scratch, err, sizeof err);
        cr_expect_gt(n, 0, "cuda_lib_plan(%s): %s", cpu_op_name((CpuOp)s->index), err);
        for (int j = 0; j < n; j++)
            cr_expect(has_entry(b->ptx, l[j].kernel), "%s: planned kernel %s is not in the PTX%s",
                      cpu_op_name((CpuOp)s->index), l[j].kernel, tf32 ? " (tf32)" : "");
    }
}

static KernelDef *small_kernel(void);

Test(cuda_nvrtc, every_model_kernel_compiles) {
    expect_all_models_listed();
    Compiled c[NMODELS];
    Module *m[NMODELS];
    Union u = {0};
    int launches = 0;
    for (int i = 0; i < NMODELS; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "models/%s", MODELS[i].file);
        m[i] = cf_load_model(rel, MODELS[i].defs, MODELS[i].ndefs, 2);
        cr_assert(m[i], "%s does not load", rel);
        Diag d;
        cr_assert(cf_pipeline(m[i], NULL, &d), "%s: pipeline: %s", rel, d.msg);
        diag_init(&d);
        cr_assert(codegen_build(m[i], &c[i], &d), "%s: codegen_build: %s", rel, d.msg);
        for (int k = 0; k < c[i].nkernels; k++) add_kernel(&u, c[i].kernels[k]);
        for (int f = 0; f < c[i].prog->nfuncs; f++)
            for (int s = 0; s < c[i].prog->funcs[f].nsteps; s++)
                if (c[i].prog->funcs[f].steps[s].kind == PS_LIB) add_lib(&u, &c[i].prog->funcs[f].steps[s]);
        launches += c[i].nkernels;
    }
    /* --tf32 adds -DIGRC_TF32=1, which only the library (cuda_lib.cu)
     * reads: the generated kernels' text is the same either way, so the
     * tf32 module is the library with one small kernel, and the planned
     * library steps are checked against its PTX as before. */
    KernelDef *small = small_kernel();
    for (int tf32 = 0; tf32 < 2; tf32++) {
        /* the models' kernels to PTX alone (ptxas is most of NVRTC's time; the CUBIN path
         * is the tf32 module's here and tools/test_cuda_driver.c's executables') */
        CudaCompileOptions o = {"sm_90", {tf32 != 0}, NULL, true, tf32 == 0};
        CudaBinary b;
        CudaCompileStats st;
        Diag d;
        diag_init(&d);
        double t0 = cf_now();
        KernelDef **ks = tf32 ? &small : u.k;
        int nk = tf32 ? 1 : u.n;
        cr_assert(cuda_compile_kernels(ks, nk, &o, &b, &st, NULL, &d), "NVRTC%s: %s", tf32 ? " (tf32)" : "", d.msg);
        cr_expect_eq(st.nvrtc_runs, 1);
        if (tf32) cr_expect_gt(b.cubin_bytes, 0);
        else cr_expect_eq(b.cubin_bytes, 0, "PTX only, yet a CUBIN");
        cr_expect(strstr(b.ptx, ".target sm_90"), "the PTX's target");
        cr_expect_eq(b.nkernels, nk);
        for (int k = 0; k < nk; k++) {
            char name[32];
            snprintf(name, sizeof name, "igrc_k%d", k);
            cr_expect(has_entry(b.ptx, name), "kernel %s (%s) missing from the PTX", name, ks[k]->name);
        }
        expect_lib_entries(&u, &b, tf32);
        if (tf32) cr_expect(strstr(b.ptx, "mma.sync.aligned.m16n8k8"), "the TF32 kernels use mma.sync");
        fprintf(stderr, "[cuda-nvrtc] %d models: %d distinct kernels (of %d), %d distinct library steps; "
                "%s: %d kernels, NVRTC %.1f s, PTX %zu bytes, CUBIN %zu bytes\n", NMODELS, u.n, launches,
                u.nlib, tf32 ? "sm_90 tf32" : "compute_90 (PTX only)", nk, cf_now() - t0, b.ptx_bytes, b.cubin_bytes);
        cuda_binary_free(&b);
    }
    kernel_free(small);
    free(u.k);
    free(u.lib);
    for (int i = 0; i < NMODELS; i++) {
        compiled_free(&c[i]);
        module_free(m[i]);
    }
}

/* ---- the cache ---- */

/* out[i] = in[i] * 2 + 1 over n elements. */
static KernelDef *scale_kernel(int64_t n) {
    KernelDef *k = kernel_new("k0_small", n);
    int out = kernel_add_buf(k, KT_F32, n, true, "y");
    int in = kernel_add_buf(k, KT_F32, n, false, "x");
    int i = k_index(k);
    int v = k_binary(k, KO_MUL, k_load(k, in, i), k_const_f(k, KT_F32, 2.0));
    k_store(k, out, i, k_binary(k, KO_ADD, v, k_const_f(k, KT_F32, 1.0)));
    return k;
}

static KernelDef *small_kernel(void) { return scale_kernel(100); }

static char *render(const KernelDef *k) {
    char *text = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&text, &len);
    Diag d;
    diag_init(&d);
    cr_assert(o && cuda_render_kernel(o, k, 0, &d), "%s", d.msg);
    fclose(o);
    return text;
}

/* kernel_same ignores the domain and the buffers' sizes because the
 * renderer never reads them: one kernel serves launches of any size. */
Test(cuda_nvrtc, render_ignores_domain_and_sizes) {
    KernelDef *a = scale_kernel(100), *b = scale_kernel(1234567);
    cr_assert(kernel_same(a, b));
    char *ta = render(a), *tb = render(b);
    cr_expect_str_eq(ta, tb);
    free(ta);
    free(tb);
    kernel_free(a);
    kernel_free(b);
}

/* The cache tests' module: the prelude and the small kernel, without the
 * library. The cache keys and stores whatever text it is given, and an
 * NVRTC run of the library takes seconds under the sanitizers (five runs
 * here); every_model_kernel_compiles and tools/test_cuda_driver.c compile
 * the library, for sm_90 and sm_80. */
static bool compile_small(const char *arch, const char *cache, CudaBinary *b, CudaCompileStats *st, Diag *d) {
    KernelDef *k = small_kernel();
    CudaSource src = {NULL, calloc(1, sizeof(int)), 1};
    size_t len = 0;
    FILE *o = open_memstream(&src.text, &len);
    cr_assert(o);
    fputs(igrc_cuda_prelude_src, o);
    fputs("\n", o);
    src.first_line[0] = 2;
    for (const char *c = igrc_cuda_prelude_src; *c; c++) src.first_line[0] += *c == '\n';
    diag_init(d);
    cr_assert(cuda_render_kernel(o, k, 0, d), "%s", d->msg);
    fclose(o);
    CudaCompileOptions opt = {arch, {false}, cache, false, false};
    bool ok = cuda_compile_source(&src, &k, &opt, b, st, d);
    cuda_source_free(&src);
    kernel_free(k);
    return ok;
}

static size_t file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (size_t)sb.st_size : 0;
}

/* Damages the entry at path: keep `keep` bytes, or flip the byte at -flip. */
static void damage(const char *path, long keep, long flip) {
    size_t n;
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n);
    cr_assert_eq(fread(buf, 1, n, f), n);
    fclose(f);
    if (flip) buf[n - (size_t)flip] ^= 0x5a;
    if (keep >= 0) n = (size_t)keep;
    f = fopen(path, "wb");
    cr_assert(f);
    fwrite(buf, 1, n, f);
    fclose(f);
    free(buf);
}

/* One NVRTC compile fills the cache and every later step reuses its entry:
 *   - the first compile names no directory: the entry goes to
 *     $IGRC_CACHE_DIR (a nested directory that does not exist yet);
 *   - a hit does no NVRTC work and gives the same bytes, with the cache
 *     directory named explicitly;
 *   - another architecture is another entry;
 *   - a truncated, corrupted or empty entry is detected, recompiled to the
 *     same CUBIN and replaced, and the replacement is then hit. */
Test(cuda_nvrtc, cache_hit_does_no_nvrtc_work) {
    const char *cache = in_dir("cache/nested");
    CudaBinary a, b;
    CudaCompileStats s1, s2;
    Diag d;
    setenv("IGRC_CACHE_DIR", cache, 1);
    cr_assert(compile_small("sm_90", NULL, &a, &s1, &d), "%s", d.msg);
    cr_expect(!s1.cache_hit);
    cr_expect_eq(s1.nvrtc_runs, 1);
    char prefix[4200];
    snprintf(prefix, sizeof prefix, "%s/", cache);
    cr_expect_eq(strncmp(s1.cache_file, prefix, strlen(prefix)), 0, "the default directory is "
                 "$IGRC_CACHE_DIR: %s", s1.cache_file);
    cr_expect_gt(file_size(s1.cache_file), a.cubin_bytes, "entry written: %s", s1.cache_file);
    unsetenv("IGRC_CACHE_DIR");
    cr_assert(compile_small("sm_90", cache, &b, &s2, &d), "%s", d.msg);
    cr_expect(s2.cache_hit, "the second compile hits the cache");
    cr_expect_eq(s2.nvrtc_runs, 0, "no NVRTC work on a hit");
    cr_expect_str_eq(s2.cache_file, s1.cache_file);
    cr_expect_eq(a.ptx_bytes, b.ptx_bytes);
    cr_expect_eq(memcmp(a.ptx, b.ptx, a.ptx_bytes), 0);
    cr_expect_eq(a.cubin_bytes, b.cubin_bytes);
    cr_expect_eq(memcmp(a.cubin, b.cubin, a.cubin_bytes), 0);
    cr_expect_str_eq(b.arch, "sm_90");
    cr_expect_eq(b.nkernels, 1);
    cuda_binary_free(&b);
    /* another architecture is another entry */
    cr_assert(compile_small("sm_80", cache, &b, &s2, &d), "%s", d.msg);
    cr_expect(!s2.cache_hit);
    cr_expect_str_neq(s2.cache_file, s1.cache_file);
    cr_expect_str_eq(b.arch, "sm_80");
    cuda_binary_free(&b);

    /* a corrupt entry is recompiled (formerly corrupt_entry_is_recompiled) */
    size_t full = file_size(s1.cache_file);
    struct {
        long keep, flip;
        const char *what;
    } cases[] = {{(long)full / 2, 0, "truncated"}, {-1, 10, "a flipped CUBIN byte"}, {0, 0, "empty"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        damage(s1.cache_file, cases[i].keep, cases[i].flip);
        cr_assert(compile_small("sm_90", cache, &b, &s2, &d), "%s: %s", cases[i].what, d.msg);
        cr_expect(!s2.cache_hit && s2.cache_corrupt, "%s entry detected", cases[i].what);
        cr_expect_eq(s2.nvrtc_runs, 1, "%s entry recompiled", cases[i].what);
        cr_expect_eq(b.cubin_bytes, a.cubin_bytes);
        cr_expect_eq(memcmp(b.cubin, a.cubin, a.cubin_bytes), 0, "%s: the recompiled CUBIN", cases[i].what);
        cr_expect_eq(file_size(s1.cache_file), full, "%s entry replaced", cases[i].what);
        cuda_binary_free(&b);
        cr_assert(compile_small("sm_90", cache, &b, &s2, &d), "%s", d.msg);
        cr_expect(s2.cache_hit, "the replaced entry is used (%s)", cases[i].what);
        cuda_binary_free(&b);
    }
    cuda_binary_free(&a);
}

/* The directory rule; that a compile given no directory uses it is
 * checked in cache_hit_does_no_nvrtc_work. */
Test(cuda_nvrtc, cache_directory) {
    char buf[4096];
    setenv("IGRC_CACHE_DIR", "/x/igrc-cache", 1);
    setenv("XDG_CACHE_HOME", "/y", 1);
    setenv("HOME", "/z", 1);
    cuda_cache_dir(buf, sizeof buf);
    cr_expect_str_eq(buf, "/x/igrc-cache");
    unsetenv("IGRC_CACHE_DIR");
    cuda_cache_dir(buf, sizeof buf);
    cr_expect_str_eq(buf, "/y/igrc");
    unsetenv("XDG_CACHE_HOME");
    cuda_cache_dir(buf, sizeof buf);
    cr_expect_str_eq(buf, "/z/.cache/igrc");
}

/* ---- errors ---- */

Test(cuda_nvrtc, unsupported_arch) {
    Diag d;
    diag_init(&d);
    cr_expect(!cuda_arch_check("sm_70", false, &d));
    cr_expect_eq(d.code, EXIT_BADINPUT);
    cr_expect(strstr(d.msg, "sm_70") && strstr(d.msg, "supported: ") && strstr(d.msg, "sm_90"), "%s", d.msg);
    const char *bad[] = {"sm_", "90", "sm_9x", "compute_90", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        diag_init(&d);
        cr_expect(!cuda_arch_check(bad[i], false, &d), "'%s' is refused", bad[i]);
    }
    diag_init(&d);
    cr_expect(!cuda_arch_check("sm_75", true, &d));
    cr_expect(strstr(d.msg, "--tf32") && strstr(d.msg, "sm_80"), "%s", d.msg);
    diag_init(&d);
    cr_expect(cuda_arch_check("sm_80", true, &d), "%s", d.msg);
    /* and compiling asks first, without touching the cache */
    CudaBinary b;
    CudaCompileStats st;
    cr_expect(!compile_small("sm_70", in_dir("cache"), &b, &st, &d));
    cr_expect_eq(st.nvrtc_runs, 0);
    cr_expect(strstr(d.msg, "sm_70"), "%s", d.msg);
}

Test(cuda_nvrtc, error_names_the_kernel) {
    KernelDef *k[2] = {small_kernel(), small_kernel()};
    free(k[1]->name);
    k[1]->name = strdup("k1_broken");
    CudaSource src;
    Diag d;
    diag_init(&d);
    cr_assert(cuda_render_module(k, 2, &src, &d), "%s", d.msg);
    /* break the second kernel's body: an undeclared identifier */
    char *body = strstr(src.text, "igrc_k1(");
    cr_assert(body);
    char *e = strstr(body, "igrc_first(begin)");
    cr_assert(e);
    memcpy(e, "igrc_firzt", 10);
    CudaCompileOptions o = {"sm_90", {false}, NULL, true, false};
    CudaBinary b;
    diag_init(&d);
    cr_expect(!cuda_compile_source(&src, k, &o, &b, NULL, &d));
    cr_expect(strstr(d.msg, "igrc_k1") && strstr(d.msg, "k1_broken"), "names the kernel: %s", d.msg);
    cr_expect(strstr(d.msg, "igrc_firzt"), "includes NVRTC's log: %s", d.msg);
    cuda_source_free(&src);
    kernel_free(k[0]);
    kernel_free(k[1]);
}
