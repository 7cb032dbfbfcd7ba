/* The emulation harness of test_cuda_codegen (cuda_emul.h). */
#define _POSIX_C_SOURCE 200809L

#include "tests/codegen/cuda_emul.h"

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda/cuda_render.h"
#include "runtime/cpu/cpu_ops.h"
#include "tests/codegen/conformance_util.h"

typedef void (*EmuKernelFn)(void *const *bufs, long long begin, long long end, unsigned grid);
typedef int (*EmuLibFn)(const char *name, const unsigned *grid, unsigned threads, void *out,
                        const void *in0, const void *in1, void *scratch, const long long *args);

struct CudaEmu {
    void *so;
    EmuKernelFn *kernels;
    int n;
    EmuLibFn lib;
};

static char **g_dirs;
static int g_ndirs;

static void remove_dirs(void) {
    for (int i = 0; i < g_ndirs; i++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dirs[i]);
        if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_dirs[i]);
        free(g_dirs[i]);
    }
    free(g_dirs);
}

const char *cuda_emu_tmpdir(void) {
    const char *tmp = getenv("TMPDIR");
    char dir[256];
    snprintf(dir, sizeof dir, "%s/igrc_cuda_emu_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert(mkdtemp(dir), "mkdtemp %s", dir);
    if (g_ndirs == 0) atexit(remove_dirs);
    g_dirs = realloc(g_dirs, sizeof *g_dirs * (size_t)(g_ndirs + 1));
    g_dirs[g_ndirs++] = strdup(dir);
    return g_dirs[g_ndirs - 1];
}

/* emu_k<i>: the launch of igrc_k<i> with the buffers cast to its types. */
static void kernel_wrapper(FILE *o, const KernelDef *k, int i) {
    fprintf(o, "extern \"C\" void emu_k%d(void *const *b, long long begin, long long end, "
               "unsigned grid) {\n  emu_launch(dim3{grid, 1, 1}, 256, false, [&] { igrc_k%d(",
            i, i);
    for (int j = 0; j < k->nbufs; j++)
        fprintf(o, "(%s%s *)b[%d], ", k->bufs[j].written ? "" : "const ", cuda_ctype(k->bufs[j].type), j);
    fputs("begin, end); });\n}\n", o);
}

/* The prelude and the kernels, as cuda_render_module writes them but
 * without the library, which is cuda_emul_lib.so. */
static bool write_source(const char *path, KernelDef *const *kernels, int n, char *err, size_t cap) {
    FILE *o = fopen(path, "w");
    if (!o) {
        snprintf(err, cap, "cannot write %s", path);
        return false;
    }
    fputs("#include \"tests/codegen/cuda_emulation.h\"\n", o);
    fputs(igrc_cuda_prelude_src, o);
    fputs("\n", o);
    Diag d;
    diag_init(&d);
    bool ok = true;
    for (int i = 0; ok && i < n; i++) ok = cuda_render_kernel(o, kernels[i], i, &d);
    for (int i = 0; ok && i < n; i++) kernel_wrapper(o, kernels[i], i);
    fclose(o);
    if (!ok) snprintf(err, cap, "render: %s", d.msg);
    return ok;
}

static bool compile_so(const char *cpp, const char *so, const char *log, char *err, size_t cap) {
    const char *cxx = getenv("CXX");
    char cmd[4096];
    /* -ffp-contract=off: a * b + c rounds twice, as NVRTC's --fmad=false */
    snprintf(cmd, sizeof cmd,
             "%s -std=c++17 -O1 -ffp-contract=off -fPIC -shared -w -I'%s' -o '%s' '%s' "
             "> '%s' 2>&1",
             cxx && *cxx ? cxx : "g++", cf_source_dir(), so, cpp, log);
    if (system(cmd) == 0) return true;
    FILE *f = fopen(log, "r");
    size_t got = f ? fread(err, 1, cap - 1, f) : 0;
    err[got] = 0;
    if (f) fclose(f);
    return false;
}

/* The library module, loaded once per process. */
static EmuLibFn lib_fn(char *err, size_t cap) {
    static EmuLibFn fn;
    if (fn) return fn;
    void *so = dlopen(CUDA_EMUL_LIB, RTLD_NOW | RTLD_LOCAL);
    if (so) *(void **)&fn = dlsym(so, "emu_lib");
    if (!fn) snprintf(err, cap, "%s: %s", CUDA_EMUL_LIB, dlerror());
    return fn;
}

CudaEmu *cuda_emu_build(KernelDef *const *kernels, int n, const char *dir, char *err, size_t cap) {
    EmuLibFn lib = lib_fn(err, cap);
    if (!lib) return NULL;
    CudaEmu *e = calloc(1, sizeof *e);
    e->lib = lib;
    e->n = n;
    e->kernels = calloc((size_t)n + 1, sizeof *e->kernels);
    if (n == 0) return e; /* the library alone */
    char cpp[600], so[600], log[600];
    snprintf(cpp, sizeof cpp, "%s/emu.cpp", dir);
    snprintf(so, sizeof so, "%s/emu.so", dir);
    snprintf(log, sizeof log, "%s/emu.log", dir);
    if (!write_source(cpp, kernels, n, err, cap) || !compile_so(cpp, so, log, err, cap)) {
        cuda_emu_free(e);
        return NULL;
    }
    if (!(e->so = dlopen(so, RTLD_NOW | RTLD_LOCAL))) {
        snprintf(err, cap, "dlopen %s: %s", so, dlerror());
        cuda_emu_free(e);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "emu_k%d", i);
        *(void **)&e->kernels[i] = dlsym(e->so, name);
    }
    return e;
}

void cuda_emu_free(CudaEmu *e) {
    if (!e) return;
    if (e->so) dlclose(e->so);
    free(e->kernels);
    free(e);
}

void cuda_emu_kernel(CudaEmu *e, int i, void *const *bufs, int64_t begin, int64_t end, unsigned grid) {
    e->kernels[i](bufs, begin, end, grid);
}

bool cuda_emu_lib(CudaEmu *e, const CudaLaunch *l, void *out, const void *in0, const void *in1,
                  void *scratch, const int64_t *args) {
    long long a[CPU_OP_MAX_ARGS] = {0};
    for (int i = 0; i < CPU_OP_MAX_ARGS; i++) a[i] = args[i];
    return e->lib(l->kernel, l->grid, l->block[0], out, in0, in1, scratch, a) != 0;
}

/* ---- generated kernels against kernel_eval ---- */

static double get(KType t, const void *p, int64_t i) {
    switch (t) {
    case KT_F32: return ((const float *)p)[i];
    case KT_F64: return ((const double *)p)[i];
    case KT_I32: return ((const int32_t *)p)[i];
    case KT_I64: return (double)((const int64_t *)p)[i];
    default: return ((const uint8_t *)p)[i];
    }
}

/* Random contents: floats U(-2, 2), bools 0/1, integers over the whole
 * i32 range (wide) or in [0, 2) (small enough to index any buffer). */
static void fill(const KBuf *b, void *p, CRng *r, bool small_ints) {
    for (int64_t i = 0; i < b->numel; i++) switch (b->type) {
        case KT_F32: ((float *)p)[i] = (float)crng_range(r, -2, 2); break;
        case KT_F64: ((double *)p)[i] = crng_range(r, -2, 2); break;
        case KT_I32:
            ((int32_t *)p)[i] = small_ints ? (int32_t)crng_int(r, 0, 2)
                                           : (int32_t)(uint32_t)(crng_unit(r) * 4294967296.0);
            break;
        case KT_I64: ((int64_t *)p)[i] = small_ints ? crng_int(r, 0, 2) : crng_int(r, -1000, 1000); break;
        default: ((uint8_t *)p)[i] = (uint8_t)crng_int(r, 0, 2); break;
        }
}

typedef struct {
    void **ref, **emu;
    int n;
} Bufs;

static void bufs_alloc(const KernelDef *k, Bufs *b) {
    b->n = k->nbufs;
    b->ref = calloc((size_t)k->nbufs + 1, sizeof(void *));
    b->emu = calloc((size_t)k->nbufs + 1, sizeof(void *));
    for (int j = 0; j < k->nbufs; j++) {
        size_t bytes = (size_t)k->bufs[j].numel * ktype_size(k->bufs[j].type) + 8;
        b->ref[j] = calloc(1, bytes);
        b->emu[j] = calloc(1, bytes);
    }
}

static void bufs_free(Bufs *b) {
    for (int j = 0; j < b->n; j++) free(b->ref[j]), free(b->emu[j]);
    free(b->ref);
    free(b->emu);
}

/* Fills both copies alike and runs kernel_eval on ref; retries once with
 * small integers when random ones index out of bounds. */
static bool reference(const KernelDef *k, Bufs *b, CRng *r, EmuCheck *st) {
    Diag d;
    for (int attempt = 0; attempt < 2; attempt++) {
        for (int j = 0; j < k->nbufs; j++) {
            fill(&k->bufs[j], b->ref[j], r, attempt > 0);
            memcpy(b->emu[j], b->ref[j], (size_t)k->bufs[j].numel * ktype_size(k->bufs[j].type));
        }
        diag_init(&d);
        if (kernel_eval(k, b->ref, 0, k->domain, &d)) return true;
        st->index_refills++;
    }
    cr_expect(false, "kernel_eval(%s): %s", k->name, d.msg);
    return false;
}

/* Written buffers of emu against ref; returns the worst error ratio. */
static double compare(const KernelDef *k, const Bufs *b, const char *label, bool *ok) {
    double worst = 0;
    for (int j = 0; j < k->nbufs; j++) {
        const KBuf *kb = &k->bufs[j];
        if (!kb->written) continue;
        int64_t n = kb->numel, first;
        double *got = malloc(sizeof(double) * (size_t)(n + 1)), *want = malloc(sizeof(double) * (size_t)(n + 1));
        for (int64_t i = 0; i < n; i++) got[i] = get(kb->type, b->emu[j], i), want[i] = get(kb->type, b->ref[j], i);
        double tol = kb->type == KT_F32 ? 1e-5 : kb->type == KT_F64 ? 1e-12 : 0, w, wa;
        int64_t bad = cf_mismatches(got, want, n, tol, tol, &w, &wa, &first);
        cr_expect_eq(bad, 0, "%s: kernel %s buffer %d: %lld of %lld elements differ (first [%lld]: "
                     "emulated %.9g, kernel_eval %.9g)", label, k->name, j, (long long)bad, (long long)n,
                     (long long)first, first >= 0 ? got[first] : 0.0, first >= 0 ? want[first] : 0.0);
        if (bad) *ok = false;
        worst = fmax(worst, w);
        free(got);
        free(want);
    }
    return worst;
}

void cuda_emu_check_kernels(CudaEmu *e, KernelDef *const *kernels, int n, uint64_t seed,
                            const char *label, EmuCheck *st) {
    memset(st, 0, sizeof *st);
    CRng r = {seed};
    for (int i = 0; i < n; i++) {
        const KernelDef *k = kernels[i];
        Bufs b;
        bufs_alloc(k, &b);
        bool ok = reference(k, &b, &r, st);
        if (ok) {
            int64_t mid = k->domain / 3;
            cuda_emu_kernel(e, i, b.emu, 0, mid, 2);
            cuda_emu_kernel(e, i, b.emu, mid, k->domain, 3);
            double w = compare(k, &b, label, &ok);
            if (w > st->worst || !st->worst_name[0]) {
                st->worst = fmax(st->worst, w);
                snprintf(st->worst_name, sizeof st->worst_name, "%s", k->name);
            }
        }
        st->kernels++;
        st->failed += !ok;
        bufs_free(&b);
    }
}

/* ---- library kernels against runtime/cpu_ops.c ---- */

/* Elements of out, in0 and in1 of op, and the terms K of its sums. */
static void lib_sizes(CpuOp op, const int64_t *a, int64_t n[3], int64_t *K) {
    if (op == CPU_MATMUL) {
        n[0] = a[0] * a[1] * a[3], n[1] = a[0] * a[1] * a[2], n[2] = a[0] * a[2] * a[3];
        *K = a[2];
        return;
    }
    if (op <= CPU_CONV2D_BWD_FILTER) {
        int64_t x = a[0] * a[1] * a[2] * a[3], w = a[4] * a[1] * a[5] * a[6];
        int64_t y = a[0] * a[4] * a[11] * a[12];
        int64_t sz[3][3] = {{y, x, w}, {x, y, w}, {w, x, y}};
        int64_t terms[3] = {a[1] * a[5] * a[6], a[4] * a[5] * a[6], a[0] * a[11] * a[12]};
        int k = op - CPU_CONV2D;
        memcpy(n, sz[k], sizeof sz[k]);
        *K = terms[k];
        return;
    }
    int64_t x = a[0] * a[1] * a[2] * a[3], y = a[0] * a[1] * a[10] * a[11];
    bool bwd = op == CPU_MAXPOOL2D_BWD || op == CPU_AVGPOOL2D_BWD;
    n[0] = bwd ? x : y;
    n[1] = op == CPU_AVGPOOL2D_BWD ? y : x;
    n[2] = op == CPU_MAXPOOL2D_BWD ? y : op == CPU_MAXPOOL2D_SELECT ? x : 0;
    *K = 0;
}

static double *to_doubles(CpuDtype dt, const void *p, int64_t n) {
    double *d = malloc(sizeof(double) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++) d[i] = dt == CPU_F32 ? ((const float *)p)[i] : ((const double *)p)[i];
    return d;
}

double cuda_emu_check_lib(CudaEmu *e, CpuOp op, CpuDtype dt, const int64_t *op_args,
                          const CudaOptions *opt, bool ties_nans, uint64_t seed, const char *label) {
    /* the launches get all CPU_OP_MAX_ARGS args (IgrcLibArgs), the op's first */
    int64_t args[CPU_OP_MAX_ARGS] = {0}, n[3], K;
    cr_assert_gt(cpu_op_nargs(op), 0, "%s: op %d", label, (int)op);
    memcpy(args, op_args, sizeof(int64_t) * (size_t)cpu_op_nargs(op));
    lib_sizes(op, args, n, &K);
    size_t es = dt == CPU_F32 ? 4 : 8;
    void *buf[4];
    CRng r = {seed};
    for (int i = 0; i < 4; i++) buf[i] = calloc((size_t)(i < 3 ? n[i] : n[0]) + 1, es);
    for (int i = 1; i < 3; i++)
        for (int64_t j = 0; j < n[i]; j++) {
            double v = ties_nans ? (crng_unit(&r) < 0.03 ? NAN : (double)crng_int(&r, -2, 3))
                                 : crng_range(&r, -2, 2);
            if (dt == CPU_F32) ((float *)buf[i])[j] = (float)v;
            else ((double *)buf[i])[j] = v;
        }
    cpu_op_run(NULL, op, dt, args, (void *const[]){buf[0], buf[1], buf[2]});
    CudaLaunch l[IGRC_CUDA_LIB_MAX_LAUNCHES];
    int64_t scratch_bytes = 0;
    char err[512] = "";
    int nl = cuda_lib_plan(op, dt, args, opt, l, &scratch_bytes, err, sizeof err);
    cr_assert_gt(nl, 0, "%s: cuda_lib_plan(%s): %s", label, cpu_op_name(op), err);
    void *scratch = scratch_bytes ? calloc(1, (size_t)scratch_bytes) : NULL;
    for (int i = 0; i < nl; i++)
        cr_assert(cuda_emu_lib(e, &l[i], buf[3], buf[1], n[2] ? buf[2] : NULL, scratch, args),
                  "%s: the module has no library kernel %s", label, l[i].kernel);
    double *want = to_doubles(dt, buf[0], n[0]), *got = to_doubles(dt, buf[3], n[0]), w, wa;
    double tol = K == 0 ? 0 : (dt == CPU_F32 ? 1e-5 : 1e-12) * sqrt((double)K);
    int64_t first, bad = cf_mismatches(got, want, n[0], tol, tol, &w, &wa, &first);
    cr_expect_eq(bad, 0, "%s: %s %s: %lld of %lld elements differ (first [%lld]: emulated %.9g, "
                 "cpu %.9g; worst |diff| %.3g)", label, cpu_op_name(op), dt == CPU_F32 ? "f32" : "f64",
                 (long long)bad, (long long)n[0], (long long)first, first >= 0 ? got[first] : 0.0,
                 first >= 0 ? want[first] : 0.0, wa);
    free(want);
    free(got);
    free(scratch);
    for (int i = 0; i < 4; i++) free(buf[i]);
    return w;
}
