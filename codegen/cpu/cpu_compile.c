/* Module -> object file / executable / loaded shared library. */
#include "codegen/cpu/cpu_compile.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codegen/cpu/cpu_shards.h"
#include "codegen/cpu/llvm_backend.h"
#include "runtime/exec.h"

#ifndef IGRC_RT_LINK
#define IGRC_RT_LINK ""
#endif

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void phase(const CpuCompileOptions *o, const char *what, double *t0) {
    double t = now_s();
    if (o && o->timings) fprintf(stderr, "igrc: %-28s %8.3f s\n", what, t - *t0);
    *t0 = t;
}

/* dump_dir/program.txt, plan.txt and kernels/<name>.k */
static bool write_dumps(const Compiled *c, const char *text, const char *dir, Diag *d) {
    char path[4096];
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/kernels", dir);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/program.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) return diag_error(d, EXIT_RUNTIME, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/plan.txt", dir);
    if (!(f = fopen(path, "w"))) return diag_error(d, EXIT_RUNTIME, "%s: %s", path, strerror(errno));
    codegen_write_plan(c, f);
    fclose(f);
    for (int i = 0; i < c->nkernels; i++) {
        snprintf(path, sizeof path, "%s/kernels/%s.k", dir, c->kernels[i]->name);
        if (!(f = fopen(path, "w"))) return diag_error(d, EXIT_RUNTIME, "%s: %s", path, strerror(errno));
        kernel_print(c->kernels[i], f);
        fclose(f);
    }
    return true;
}

/* The CPU target (codegen/backend_compile.h): the kernels as machine
 * code and their table (igrc_kernels), which the runtime's CPU backend
 * calls. */
/* igrc_kernels: the table of the kernels, defined here or in other objects
 * of the same executable (compiled in shards). */
static bool cpu_add_table(const Compiled *c, CpuModule *cm, Diag *d) {
    const char **names = calloc((size_t)c->nkernels + 1, sizeof *names);
    if (!names) abort();
    for (int i = 0; i < c->nkernels; i++) names[i] = c->kernels[i]->name;
    bool ok = cpu_add_kernel_table(cm, "igrc_kernels", names, c->nkernels, d);
    free(names);
    return ok;
}

static bool cpu_add_code(const Compiled *c, const CodegenOptions *o, CpuModule *cm, Diag *d) {
    (void)o;
    bool ok = true;
    for (int i = 0; ok && i < c->nkernels; i++) ok = cpu_add_kernel(cm, c->kernels[i], d);
    return ok && cpu_add_table(c, cm, d);
}

const CodegenBackend codegen_cpu = {.name = "cpu", .add_code = cpu_add_code};

/* One LLVM module: the program text (igrc_program) and every target's
 * code, optimised; with kernels_elsewhere, the CPU kernels are compiled
 * in shards and this module holds only their table. */
static CpuModule *build_module(const Compiled *c, const char *text, const CpuCompileOptions *o,
                               bool kernels_elsewhere, double *t0, Diag *d) {
    CpuModule *cm = cpu_module_new(c->prog->name, d);
    if (!cm) return NULL;
    static const CodegenBackend *const cpu_only[] = {&codegen_cpu};
    const CodegenBackend *const *t = o && o->ntargets ? o->targets : cpu_only;
    int nt = o && o->ntargets ? o->ntargets : 1;
    CodegenOptions none = {0};
    bool ok = cpu_add_blob(cm, "igrc_program", text, strlen(text), d);
    for (int i = 0; ok && i < nt; i++) {
        bool cpu = t[i] == &codegen_cpu;
        ok = cpu && kernels_elsewhere ? cpu_add_table(c, cm, d)
                                      : t[i]->add_code(c, o ? &o->target : &none, cm, d);
        if (ok) phase(o, cpu ? "LLVM IR built" : "target code added", t0);
    }
    ok = ok && cpu_optimize(cm, d);
    if (ok) phase(o, "LLVM O3", t0);
    if (ok && o && o->llvm_path) ok = cpu_emit_llvm(cm, o->llvm_path, d);
    if (!ok) {
        cpu_module_free(cm);
        return NULL;
    }
    return cm;
}

static bool emit_one(const Compiled *c, const char *text, const char *obj_path,
                     const CpuCompileOptions *o, double *t0, Diag *d) {
    CpuModule *cm = build_module(c, text, o, false, t0, d);
    bool ok = cm && cpu_emit_object(cm, obj_path, d);
    if (ok) phase(o, "object emitted", t0);
    cpu_module_free(cm);
    return ok;
}

/* The kernels in nshards objects compiled in parallel, the rest (program,
 * kernel table, other targets' code) in one more, combined into obj_path. */
static bool emit_sharded(const Compiled *c, const char *text, const char *obj_path, int nshards,
                         const CpuCompileOptions *o, double *t0, Diag *d) {
    size_t len = strlen(obj_path) + 32;
    char **paths = calloc((size_t)nshards + 1, sizeof *paths);
    if (!paths) abort();
    for (int s = 0; s <= nshards; s++) {
        if (!(paths[s] = malloc(len))) abort();
        snprintf(paths[s], len, "%s.part%d.o", obj_path, s);
    }
    CpuModule *cm = build_module(c, text, o, true, t0, d);
    bool ok = cm && cpu_emit_object(cm, paths[nshards], d);
    cpu_module_free(cm);
    ok = ok && cpu_compile_shards((const KernelDef *const *)c->kernels, c->nkernels, nshards,
                                  (const char *const *)paths, d);
    if (ok) phase(o, "kernels compiled in parallel", t0);
    ok = ok && cpu_link_relocatable((const char *const *)paths, nshards + 1, obj_path, d);
    for (int s = 0; s <= nshards; s++) {
        unlink(paths[s]);
        free(paths[s]);
    }
    free(paths);
    return ok;
}

static bool emit_module(const Compiled *c, const char *text, const char *obj_path,
                        const CpuCompileOptions *o, double *t0, Diag *d) {
    int nshards = o && o->llvm_path ? 1 : cpu_shard_count(c->nkernels); /* .ll: one module */
    if (nshards <= 1) return emit_one(c, text, obj_path, o, t0, d);
    return emit_sharded(c, text, obj_path, nshards, o, t0, d);
}

/* The program and kernels of m, and the program's text. */
static bool lower_module(const Module *m, const CpuCompileOptions *o, Compiled *c, char **text,
                         double *t0, Diag *d) {
    if (!codegen_build(m, c, d)) return false;
    phase(o, "kernels lowered, memory planned", t0);
    *text = program_to_text(c->prog);
    if (!*text) return diag_error(d, EXIT_RUNTIME, "cannot print the program");
    return !(o && o->dump_dir) || write_dumps(c, *text, o->dump_dir, d);
}

bool cpu_jit_run(const Module *m, int argc, char **argv, const CpuCompileOptions *o,
                 CpuJitMain main_fn, int *rc, Diag *d) {
    double t0 = now_s();
    Compiled c;
    char *text = NULL;
    CpuModule *cm = NULL;
    CpuJit *jit = NULL;
    bool ok = lower_module(m, o, &c, &text, &t0, d) && (cm = build_module(&c, text, o, false, &t0, d)) &&
              (jit = cpu_jit(cm, d));
    const char *prog = ok ? cpu_jit_lookup(jit, "igrc_program", d) : NULL;
    const PKernelFn *table = prog ? cpu_jit_lookup(jit, "igrc_kernels", d) : NULL;
    const int32_t *count = table ? cpu_jit_lookup(jit, "igrc_kernels_count", d) : NULL;
    ok = count != NULL;
    if (ok) {
        phase(o, "JIT compiled", &t0);
        *rc = main_fn(argc, argv, prog, (int64_t)strlen(prog), table, *count);
    }
    cpu_jit_free(jit);
    cpu_module_free(cm);
    free(text);
    compiled_free(&c);
    return ok;
}

bool cpu_compile_object(const Module *m, const char *obj_path, const CpuCompileOptions *o,
                        Compiled *stats, Diag *d) {
    double t0 = now_s();
    Compiled c;
    char *text = NULL;
    bool ok = lower_module(m, o, &c, &text, &t0, d) && emit_module(&c, text, obj_path, o, &t0, d);
    free(text);
    if (ok && stats) *stats = c;
    else compiled_free(&c);
    return ok;
}

/* IGRC_RT_LINK is a '|'-separated list fixed at build time (the runtime's
 * libraries and their dependencies); IGRC_RUNTIME_DIR, if set, names a
 * directory holding libigrc_rt.a and libigrc_rt_main.a instead. */
bool cpu_link_executable(const char *obj_path, const char *out, Diag *d) {
    char *flags = strdup(IGRC_RT_LINK);
    const char *args[64];
    int n = 0;
    const char *dir = getenv("IGRC_RUNTIME_DIR");
    char ldir[4200];
    if (dir && *dir) {
        snprintf(ldir, sizeof ldir, "-L%s", dir);
        args[n++] = ldir;
    }
    for (char *save = NULL, *t = strtok_r(flags, "|", &save); t && n < 63; t = strtok_r(NULL, "|", &save))
        args[n++] = t;
    const char *objs[1] = {obj_path};
    bool ok = cpu_link(objs, 1, out, false, args, n, d);
    free(flags);
    return ok;
}

/* ---- loading into this process ---- */

struct CpuLoaded {
    void *so;
    Program *prog;
    Exec *exec;
    char dir[256];
};

static void remove_dir(const char *dir) {
    char path[512];
    const char *files[] = {"k.o", "k.so"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

CpuLoaded *cpu_load(const Module *m, int threads, Diag *d) {
    return cpu_load_on(m, NULL, "cpu", threads, d);
}

/* Device images in the loaded library: igrc_<backend>_image and its size,
 * the symbols a target's add_code writes. */
static int find_images(void *so, BackendImage *img, int cap) {
    int n = 0, nb = 0;
    const Backend *const *all = backend_all(&nb);
    for (int i = 0; i < nb && n < cap; i++) {
        char sym[64], size_sym[80];
        snprintf(sym, sizeof sym, "igrc_%s_image", all[i]->name);
        snprintf(size_sym, sizeof size_sym, "%s_size", sym);
        const void *data = dlsym(so, sym);
        const int64_t *size = dlsym(so, size_sym);
        if (data && size && *size > 0) img[n++] = (BackendImage){all[i]->name, data, *size};
    }
    return n;
}

/* The program, kernel table and device images of the loaded library, and
 * an Exec on backend over them. */
static bool open_loaded(CpuLoaded *l, const char *so, const char *backend, int threads, Diag *d) {
    char err[2048];
    const char *text = dlsym(l->so, "igrc_program");
    const PKernelFn *table = dlsym(l->so, "igrc_kernels");
    const int32_t *count = dlsym(l->so, "igrc_kernels_count");
    if (!text || !table || !count)
        return diag_error(d, EXIT_RUNTIME, "%s lacks the program symbols", so);
    BackendImage images[8];
    BackendCode code = {table, *count, images, find_images(l->so, images, 8)};
    if (!(l->prog = program_parse(text, *count, err, sizeof err)))
        return diag_error(d, EXIT_RUNTIME, "generated program: %s", err);
    l->exec = exec_new(l->prog, &code, backend, threads, 0, err, sizeof err);
    return l->exec || diag_error(d, EXIT_RUNTIME, "%s: %s", backend, err);
}

CpuLoaded *cpu_load_on(const Module *m, const CpuCompileOptions *o, const char *backend,
                       int threads, Diag *d) {
    CpuLoaded *l = calloc(1, sizeof *l);
    const char *tmp = getenv("TMPDIR");
    snprintf(l->dir, sizeof l->dir, "%s/igrc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(l->dir)) {
        diag_error(d, EXIT_RUNTIME, "cannot create a temporary directory: %s", strerror(errno));
        free(l);
        return NULL;
    }
    char obj[512], so[512];
    snprintf(obj, sizeof obj, "%s/k.o", l->dir);
    snprintf(so, sizeof so, "%s/k.so", l->dir);
    const char *objs[1] = {obj};
    bool ok = cpu_compile_object(m, obj, o, NULL, d) && cpu_link(objs, 1, so, true, NULL, 0, d);
    if (ok && !(l->so = dlopen(so, RTLD_NOW | RTLD_LOCAL)))
        ok = diag_error(d, EXIT_RUNTIME, "dlopen %s: %s", so, dlerror());
    if (ok) ok = open_loaded(l, so, backend, threads, d);
    if (!ok) {
        cpu_loaded_free(l);
        return NULL;
    }
    return l;
}

void cpu_loaded_free(CpuLoaded *l) {
    if (!l) return;
    exec_free(l->exec);
    if (l->prog) program_free(l->prog);
    if (l->so) dlclose(l->so);
    remove_dir(l->dir);
    free(l);
}

static void to_typed(const double *src, int64_t n, PDtype t, void *dst) {
    for (int64_t i = 0; i < n; i++) switch (t) {
        case PD_F64: ((double *)dst)[i] = src[i]; break;
        case PD_I32: ((int32_t *)dst)[i] = (int32_t)src[i]; break;
        case PD_I64: ((int64_t *)dst)[i] = (int64_t)src[i]; break;
        case PD_BOOL: ((uint8_t *)dst)[i] = src[i] != 0; break;
        case PD_F32: ((float *)dst)[i] = (float)src[i]; break;
        }
}

static void to_doubles(const void *src, int64_t n, PDtype t, double *dst) {
    for (int64_t i = 0; i < n; i++) switch (t) {
        case PD_F64: dst[i] = ((const double *)src)[i]; break;
        case PD_I32: dst[i] = ((const int32_t *)src)[i]; break;
        case PD_I64: dst[i] = (double)((const int64_t *)src)[i]; break;
        case PD_BOOL: dst[i] = ((const uint8_t *)src)[i]; break;
        case PD_F32: dst[i] = ((const float *)src)[i]; break;
        }
}

static const NamedValue *find_value(const NamedValue *v, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (v[i].name && strcmp(v[i].name, name) == 0) return &v[i];
    return NULL;
}

static bool bind_params(CpuLoaded *l, const NamedValue *params, int nparams, Diag *d) {
    for (int i = 0; i < l->prog->nparams; i++) {
        const PTensor *t = &l->prog->params[i].t;
        const NamedValue *v = find_value(params, nparams, t->name);
        if (!v) continue;
        if (type_numel(&v->type) != ptensor_numel(t))
            return diag_error(d, EXIT_BADINPUT, "param '%s': %lld elements given, %lld expected",
                              t->name, (long long)type_numel(&v->type), (long long)ptensor_numel(t));
        void *host = exec_param(l->exec, i);
        if (!host) return diag_error(d, EXIT_RUNTIME, "param '%s': %s", t->name, exec_error(l->exec));
        to_typed(v->data, ptensor_numel(t), t->dtype, host);
    }
    return exec_params_changed(l->exec) ||
           diag_error(d, EXIT_RUNTIME, "parameters: %s", exec_error(l->exec));
}

bool cpu_loaded_call(CpuLoaded *l, const char *fn, const NamedValue *inputs, int ninputs,
                     const NamedValue *params, int nparams, NamedValue **outputs, int *noutputs,
                     Diag *d) {
    int f = program_find_func(l->prog, fn);
    if (f < 0) return diag_error(d, EXIT_BADINPUT, "no function '%s' in the program", fn);
    const PFunc *pf = &l->prog->funcs[f];
    if (!bind_params(l, params, nparams, d)) return false;
    void **in = calloc((size_t)pf->ninputs + 1, sizeof *in), **out = calloc((size_t)pf->noutputs + 1, sizeof *out);
    bool ok = true;
    for (int k = 0; ok && k < pf->ninputs; k++) {
        const PTensor *t = &pf->inputs[k];
        const NamedValue *v = find_value(inputs, ninputs, t->name);
        if (!v || type_numel(&v->type) != ptensor_numel(t)) {
            ok = diag_error(d, EXIT_BADINPUT, "input '%s' of %s: missing or of the wrong size", t->name, fn);
            break;
        }
        in[k] = calloc((size_t)ptensor_bytes(t) + 8, 1);
        to_typed(v->data, ptensor_numel(t), t->dtype, in[k]);
    }
    for (int k = 0; ok && k < pf->noutputs; k++) out[k] = calloc(ptensor_bytes(&pf->outputs[k]) + 8, 1);
    if (ok && !exec_call(l->exec, f, (const void *const *)in, out))
        ok = diag_error(d, EXIT_RUNTIME, "%s on %s: %s", fn, exec_backend(l->exec)->name,
                        exec_error(l->exec));
    NamedValue *res = ok ? calloc((size_t)pf->noutputs + 1, sizeof *res) : NULL;
    for (int k = 0; ok && k < pf->noutputs; k++) {
        const PTensor *t = &pf->outputs[k];
        res[k].name = t->name;
        res[k].type = type_make(t->dtype == PD_F64 ? DT_F64 : t->dtype == PD_I32 ? DT_I32
                                : t->dtype == PD_BOOL ? DT_BOOL : DT_F32, t->rank, t->dim);
        res[k].data = malloc(sizeof(double) * (size_t)(ptensor_numel(t) + 1));
        to_doubles(out[k], ptensor_numel(t), t->dtype, res[k].data);
    }
    for (int k = 0; k < pf->ninputs; k++) free(in[k]);
    for (int k = 0; k < pf->noutputs; k++) free(out[k]);
    free(in);
    free(out);
    *outputs = res;
    *noutputs = ok ? pf->noutputs : 0;
    return ok;
}
