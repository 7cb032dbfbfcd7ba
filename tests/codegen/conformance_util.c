#define _POSIX_C_SOURCE 200809L

#include "tests/codegen/conformance_util.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frontend/frontend.h"
#include "passes/pass.h"

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
