#define _POSIX_C_SOURCE 200809L

#include "tests/codegen/conformance_util.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "frontend/frontend.h"
#include "ir/print.h"
#include "passes/pass.h"
#include "runtime/io/safetensors.h"
#include "tests/common/scratch.h"
#include "tests/common/spawn.h"

/* splitmix64 */
double crng_unit(CRng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

double crng_range(CRng *r, double lo, double hi) { return lo + (hi - lo) * crng_unit(r); }

int64_t crng_int(CRng *r, int64_t lo, int64_t hi) {
    int64_t v = lo + (int64_t)(crng_unit(r) * (double)(hi - lo));
    return v < hi ? v : hi - 1;
}

NamedValue cf_value(const char *name, Type t, Gen g, int64_t lo, int64_t hi, CRng *r) {
    int64_t n = type_numel(&t);
    NamedValue v = {name, t, calloc((size_t)n + 1, sizeof(double))};
    for (int64_t i = 0; i < n; i++) {
        double x;
        switch (g) {
        case G_POS: x = crng_range(r, 0.1, 3.0); break;
        case G_DISTINCT: x = (double)(i - n / 2) / 16.0; break;
        case G_SMALL: x = (double)crng_int(r, -2, 3); break;
        case G_BOOL: x = (double)crng_int(r, 0, 2); break;
        case G_INT: x = (double)crng_int(r, lo, hi); break;
        case G_UNIT: x = crng_unit(r); break;
        case G_WIDE: x = (double)(int32_t)(uint32_t)(crng_unit(r) * 4294967296.0); break;
        case G_SPECIAL: {
            static const double sp[] = {NAN, INFINITY, -INFINITY, -0.0, 0.0, -1.5, 2.5, 0.75};
            x = sp[crng_int(r, 0, 8)];
            break;
        }
        default: x = crng_range(r, -2.0, 2.0); break;
        }
        v.data[i] = x;
    }
    if (g == G_DISTINCT) /* Fisher-Yates */
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = crng_int(r, 0, i + 1);
            double s = v.data[i];
            v.data[i] = v.data[j];
            v.data[j] = s;
        }
    if (t.dtype == DT_F32)
        for (int64_t i = 0; i < n; i++) v.data[i] = (double)(float)v.data[i];
    if (t.dtype == DT_BOOL)
        for (int64_t i = 0; i < n; i++) v.data[i] = v.data[i] != 0;
    if (t.dtype == DT_I32)
        for (int64_t i = 0; i < n; i++) v.data[i] = trunc(v.data[i]);
    return v;
}

void cf_values_free(NamedValue *v, int n) {
    for (int i = 0; i < n; i++) {
        free(v[i].data);
        v[i].data = NULL;
    }
}

int64_t cf_mismatches(const double *got, const double *want, int64_t n, double atol, double rtol,
                      double *worst, double *worst_abs, int64_t *first_bad) {
    int64_t bad = 0;
    double w = 0, wa = 0;
    if (first_bad) *first_bad = -1;
    for (int64_t i = 0; i < n; i++) {
        double a = got[i], b = want[i];
        bool ok;
        double ratio = 0;
        if (isnan(a) || isnan(b)) {
            ok = isnan(a) && isnan(b);
            ratio = ok ? 0 : INFINITY;
        } else if (isinf(a) || isinf(b)) {
            ok = a == b;
            ratio = ok ? 0 : INFINITY;
        } else {
            double diff = fabs(a - b), lim = atol + rtol * fabs(b);
            wa = fmax(wa, diff);
            ratio = lim > 0 ? diff / lim : (diff > 0 ? INFINITY : 0);
            ok = diff <= lim;
        }
        w = fmax(w, ratio);
        if (!ok) {
            if (first_bad && *first_bad < 0) *first_bad = i;
            bad++;
        }
    }
    if (worst) *worst = w;
    if (worst_abs) *worst_abs = wa;
    return bad;
}

const char *cf_source_dir(void) {
    const char *s = getenv("IGRC_SOURCE_DIR");
    return s && *s ? s : ".";
}

Module *cf_load_model(const char *rel, const char *const *defs, int ndefs, int64_t batch) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", cf_source_dir(), rel);
    FrontendOptions o = {defs, ndefs, batch};
    Diag d;
    diag_init(&d);
    Module *m = frontend_load(p, &o, &d);
    if (!m) fprintf(stderr, "%s: %s\n", rel, d.msg);
    return m;
}

bool cf_pipeline(Module *m, const char *disable, Diag *d) {
    PipelineOptions po;
    memset(&po, 0, sizeof po);
    po.disable = disable;
    diag_init(d);
    return pipeline_run(m, &po, d);
}

double cf_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- IGRC_CONFORMANCE_DEVICE: the compiled side out of process ---- */

const char *cf_device(void) {
    const char *v = getenv("IGRC_CONFORMANCE_DEVICE");
    return v && *v ? v : NULL;
}

char *cf_device_ir_file(const Module *m) {
    const char *tmp = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/igrc-conformance-XXXXXX.ir", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemps(path, 3);
    char *text = fd >= 0 ? ir_module_to_string(m) : NULL;
    FILE *f = text ? fdopen(fd, "w") : NULL;
    bool ok = f && fputs(text, f) >= 0;
    if (f) ok = fclose(f) == 0 && ok;
    else if (fd >= 0) close(fd);
    free(text);
    if (ok) return strdup(path);
    fprintf(stderr, "cf_device_ir_file: cannot write %s\n", path);
    if (fd >= 0) unlink(path);
    return NULL;
}

/* Values to a safetensors file: floats as f32/f64, i32, bool. */
static bool cf_write_values(const char *path, const NamedValue *v, int n, Diag *d) {
    StTensor *ts = calloc((size_t)n + 1, sizeof *ts);
    for (int i = 0; i < n; i++) {
        DType dt = v[i].type.dtype;
        int64_t k = type_numel(&v[i].type);
        ts[i] = (StTensor){(char *)v[i].name, dt == DT_F64 ? ST_F64 : dt == DT_I32 ? ST_I32 : dt == DT_BOOL ? ST_BOOL : ST_F32,
                           v[i].type.rank, {0}, NULL, 0};
        for (int j = 0; j < ts[i].rank; j++) ts[i].shape[j] = v[i].type.dim[j];
        ts[i].nbytes = (size_t)k * st_dtype_size(ts[i].dtype);
        ts[i].data = malloc(ts[i].nbytes + 1);
        for (int64_t j = 0; j < k; j++) {
            double x = v[i].data[j];
            switch (ts[i].dtype) {
            case ST_F64: ((double *)ts[i].data)[j] = x; break;
            case ST_I32: ((int32_t *)ts[i].data)[j] = (int32_t)x; break;
            case ST_BOOL: ((uint8_t *)ts[i].data)[j] = x != 0; break;
            default: ((float *)ts[i].data)[j] = (float)x; break;
            }
        }
    }
    char err[1024];
    bool ok = st_write(path, ts, n, NULL, 0, err, sizeof err);
    for (int i = 0; i < n; i++) free(ts[i].data);
    free(ts);
    return ok || diag_error(d, EXIT_RUNTIME, "%s", err);
}

/* A tensor as a NamedValue whose name is stored after its data (one
 * malloc, so named_values_free releases both). */
static bool cf_read_value(const StTensor *t, NamedValue *v) {
    static const DType map[] = {[ST_F32] = DT_F32, [ST_F64] = DT_F64, [ST_I32] = DT_I32,
                                [ST_I64] = DT_I32, [ST_U8] = DT_BOOL, [ST_BOOL] = DT_BOOL};
    int64_t n = 1;
    for (int j = 0; j < t->rank; j++) n *= t->shape[j];
    v->type = type_make(map[t->dtype], t->rank, t->shape);
    v->data = malloc(sizeof(double) * (size_t)(n + 1) + strlen(t->name) + 1);
    if (!v->data) return false;
    char *name = (char *)(v->data + n + 1);
    strcpy(name, t->name);
    v->name = name;
    for (int64_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case ST_F32: v->data[i] = ((const float *)t->data)[i]; break;
        case ST_F64: v->data[i] = ((const double *)t->data)[i]; break;
        case ST_I32: v->data[i] = ((const int32_t *)t->data)[i]; break;
        case ST_I64: v->data[i] = (double)((const int64_t *)t->data)[i]; break;
        default: v->data[i] = ((const uint8_t *)t->data)[i]; break;
        }
    }
    return true;
}

static bool cf_read_outputs(const char *path, NamedValue **outs, int *nout, Diag *d) {
    StFile f = {0};
    char err[1024];
    if (!st_read(path, &f, err, sizeof err)) return diag_error(d, EXIT_RUNTIME, "%s", err);
    *outs = calloc((size_t)f.n + 1, sizeof **outs);
    *nout = 0;
    bool ok = true;
    for (int i = 0; ok && i < f.n; i++)
        if ((ok = cf_read_value(&f.tensors[i], &(*outs)[i]))) ++*nout;
    st_free(&f);
    return ok || diag_error(d, EXIT_RUNTIME, "%s: out of memory", path);
}

bool cf_device_call(const char *file, const char *const *defs, int ndefs, int64_t batch,
                    const char *fn, const NamedValue *in, int nin, const NamedValue *params,
                    int nparams, NamedValue **outs, int *nout, Diag *d) {
    bool own_dir = !g_dir[0]; /* spawn_v needs a scratch directory */
    if (own_dir) scratch_setup();
    char ip[600], op[600], pp[600], nb[32];
    snprintf(ip, sizeof ip, "%s/device_in.safetensors", g_dir);
    snprintf(op, sizeof op, "%s/device_out.safetensors", g_dir);
    snprintf(pp, sizeof pp, "%s/device_params.safetensors", g_dir);
    snprintf(nb, sizeof nb, "%lld", (long long)batch);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s%s%s", file[0] == '/' ? "" : cf_source_dir(), file[0] == '/' ? "" : "/", file);
    /* --dtype f64: outputs written as f64, lossless for f32 and f64 results
     * (a compiled backend computes in the program's own types) */
    const char *args[64] = {"exec", path, "--fn", fn, "--inputs", ip, "-o", op, "--backend", cf_device(),
                            "--dtype", "f64"};
    int k = 12;
    if (nparams > 0) args[k++] = "--params", args[k++] = pp;
    if (batch > 0) args[k++] = "--batch", args[k++] = nb;
    for (int i = 0; i < ndefs && k < 62; i++) args[k++] = "-D", args[k++] = defs[i];
    bool ok = cf_write_values(ip, in, nin, d) && (nparams <= 0 || cf_write_values(pp, params, nparams, d));
    if (ok) {
        Result r = spawn_v(igrc_bin(), args);
        ok = r.rc == 0 ? cf_read_outputs(op, outs, nout, d)
                       : diag_error(d, EXIT_RUNTIME, "igrc exec %s --fn %s --backend %s: exit %d: %s", path, fn,
                                    cf_device(), r.rc, r.err);
        result_free(&r);
    }
    unlink(ip), unlink(op), unlink(pp);
    if (own_dir) scratch_teardown(), g_dir[0] = 0;
    return ok;
}
