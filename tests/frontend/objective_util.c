#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frontend/frontend.h"
#include "frontend/internal.h"
#include "ir/interp.h"
#include "ir/shape.h"
#include "passes/pass.h"
#include "runtime/io/idx.h"
#include "runtime/program/init.h"


#include "tests/frontend/objective_util.h"

/* ---- loading, passes, running ---- */

const char *source_dir(void) {
    const char *s = getenv("IGRC_SOURCE_DIR");
    cr_assert(s, "IGRC_SOURCE_DIR is not set");
    return s;
}

void model_path(const char *rel, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", source_dir(), rel);
}

Module *load_model(const char *rel, const char *const *defs, int ndefs, int64_t batch) {
    char p[PATH_MAX];
    model_path(rel, p, sizeof p);
    FrontendOptions o = {defs, ndefs, batch};
    Diag d;
    diag_init(&d);
    Module *m = frontend_load(p, &o, &d);
    cr_assert(m, "%s: %s", rel, d.msg);
    diag_init(&d);
    cr_assert(ir_verify(m, &d), "%s: verifier: %s", rel, d.msg);
    return m;
}

/* The merged, overridden document of a model file, for net_emit. */
cJSON *load_doc(const char *rel, const char *const *defs, int ndefs) {
    char p[PATH_MAX];
    model_path(rel, p, sizeof p);
    Diag d;
    diag_init(&d);
    cJSON *doc = doc_load(p, &d);
    cr_assert(doc, "%s: %s", rel, d.msg);
    cr_assert(doc_apply_defines(doc, p, defs, ndefs, &d), "%s: %s", rel, d.msg);
    return doc;
}

double doc_param(const cJSON *doc, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "params"), key);
    cr_assert(cJSON_IsNumber(v), "params.%s is not a number", key);
    return v->valuedouble;
}

void run_pipeline(Module *m, const char *what) {
    PipelineOptions po;
    memset(&po, 0, sizeof po);
    Diag d;
    diag_init(&d);
    cr_assert(pipeline_run(m, &po, &d), "%s: pipeline: %s", what, d.msg);
    diag_init(&d);
    cr_assert(ir_verify(m, &d), "%s: verifier after the pipeline: %s", what, d.msg);
}

double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}


Outs run_fn(const Module *m, const char *fn, InterpPrecision prec, const NamedValue *in,
                   int nin, const NamedValue *ps, int np) {
    const Function *f = module_find_func(m, fn);
    cr_assert(f, "%s: no function %s", m->name, fn);
    InterpOptions io = {prec};
    Outs o = {NULL, 0};
    Diag d;
    diag_init(&d);
    bool ok = interp_run(m, f, &io, in, nin, ps, np, &o.v, &o.n, &d);
    cr_assert(ok, "%s.%s: %s", m->name, fn, d.msg);
    return o;
}

void outs_free(Outs *o) {
    named_values_free(o->v, o->n);
    o->v = NULL;
    o->n = 0;
}

const NamedValue *out_get(const Outs *o, const char *name) {
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->v[i].name, name) == 0) return &o->v[i];
    cr_assert_fail("no output %s", name);
    return NULL;
}

double scalar_out(const Outs *o, const char *name) {
    const NamedValue *v = out_get(o, name);
    cr_assert_eq(type_numel(&v->type), 1, "%s is not a scalar", name);
    return v->data[0];
}

double max_abs(const double *a, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* ---- random numbers (splitmix64, Box-Muller) ---- */


double rng_unit(Rng *r) { /* in (0, 1) */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

double rng_normal(Rng *r) {
    double u = rng_unit(r), v = rng_unit(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

int64_t rng_index(Rng *r, int64_t n) {
    int64_t i = (int64_t)(rng_unit(r) * (double)n);
    return i < n ? i : n - 1;
}

/* ---- parameters ---- */


Params params_alloc(const Module *m) {
    Params p = {calloc((size_t)m->nparams, sizeof(NamedValue)), m->nparams};
    for (int i = 0; i < m->nparams; i++) {
        p.v[i].name = m->params[i].name;
        p.v[i].type = m->params[i].type;
        p.v[i].data = calloc((size_t)type_numel(&m->params[i].type) + 1, sizeof(double));
    }
    return p;
}

bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Trainable weights N(0, 2/fan_in) (He), biases N(0, 0.1^2), fc3 included;
 * state: running variances 1, everything else (running means, optimiser
 * state) 0. Activations and logits stay O(1). */
Params params_random(const Module *m, uint64_t seed) {
    Params p = params_alloc(m);
    Rng r = {seed};
    for (int i = 0; i < m->nparams; i++) {
        const Param *pr = &m->params[i];
        int64_t n = type_numel(&pr->type);
        if (!pr->trainable) {
            for (int64_t k = 0; k < n; k++) p.v[i].data[k] = ends_with(pr->name, "running_var");
            continue;
        }
        double sd = pr->type.rank > 1 ? sqrt(2.0 / (double)(n / pr->type.dim[0])) : 0.1;
        for (int64_t k = 0; k < n; k++) p.v[i].data[k] = sd * rng_normal(&r);
    }
    return p;
}

/* The file's initialisation (what `igrc exec` and training start from). */
Params params_init(const Module *m, uint32_t seed) {
    Params p = params_alloc(m);
    for (int i = 0; i < m->nparams; i++) {
        const Param *pr = &m->params[i];
        rt_init_fill(p.v[i].data, type_numel(&pr->type), (RtInitKind)pr->init.kind, pr->init.a,
                     seed, rt_init_stream(pr->name));
    }
    return p;
}

void params_free(Params *p) {
    for (int i = 0; i < p->n; i++) free(p->v[i].data);
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

/* Replaces every parameter that o has an output of the same name for
 * (updated weights, optimiser state, running statistics); returns how many. */
int params_take(Params *p, Outs *o) {
    int taken = 0;
    for (int i = 0; i < p->n; i++)
        for (int k = 0; k < o->n; k++)
            if (o->v[k].data && strcmp(o->v[k].name, p->v[i].name) == 0) {
                cr_assert_eq(type_numel(&o->v[k].type), type_numel(&p->v[i].type), "%s", p->v[i].name);
                free(p->v[i].data);
                p->v[i].data = o->v[k].data;
                o->v[k].data = NULL;
                taken++;
                break;
            }
    return taken;
}

int count_trainable(const Module *m) {
    int n = 0;
    for (int i = 0; i < m->nparams; i++) n += m->params[i].trainable;
    return n;
}

/* ---- MNIST batches and inputs ---- */


Batch mnist_batch(bool train, int first, int n) {
    IdxDataset ds;
    char err[4096];
    cr_assert(idx_find_dataset("mnist", source_dir(), &ds, err, sizeof err), "%s", err);
    IdxArray im = {0}, lb = {0};
    cr_assert(idx_load(train ? ds.train_images : ds.test_images, &im, err, sizeof err), "%s", err);
    cr_assert(idx_load(train ? ds.train_labels : ds.test_labels, &lb, err, sizeof err), "%s", err);
    cr_assert(im.rank == 3 && im.dims[1] == 28 && im.dims[2] == 28 && (int64_t)lb.n == im.dims[0]);
    cr_assert_leq(first + n, im.dims[0]);
    Batch b = {n, malloc(sizeof(double) * (size_t)n * 784), malloc(sizeof(int) * (size_t)n)};
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 784; k++) b.x[i * 784 + k] = im.data[(size_t)(first + i) * 784 + (size_t)k] / 255.0;
        b.y[i] = lb.data[first + i];
    }
    idx_free(&im);
    idx_free(&lb);
    return b;
}

void batch_free(Batch *b) {
    free(b->x);
    free(b->y);
}

NamedValue nv_image(const char *name, const double *x, int n) {
    NamedValue v = {name, type_make(DT_F32, 4, (const int64_t[]){n, 1, 28, 28}), NULL};
    v.data = malloc(sizeof(double) * (size_t)n * 784);
    memcpy(v.data, x, sizeof(double) * (size_t)n * 784);
    return v;
}

NamedValue nv_labels(const char *name, const int *y, int n) {
    NamedValue v = {name, type_make(DT_I32, 1, (const int64_t[]){n}), NULL};
    v.data = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) v.data[i] = y[i];
    return v;
}

NamedValue nv_scalar(const char *name, double x) {
    NamedValue v = {name, type_scalar(DT_F32), malloc(sizeof(double))};
    v.data[0] = x;
    return v;
}

NamedValue nv_key(uint32_t a, uint32_t b) {
    NamedValue v = {"key", type_make(DT_I32, 1, (const int64_t[]){2}), malloc(2 * sizeof(double))};
    v.data[0] = a;
    v.data[1] = b;
    return v;
}

void nvs_free(NamedValue *v, int n) {
    for (int i = 0; i < n; i++) free(v[i].data);
}

/* x_adv = clip(x + 0.1 noise, 0, 1), noise N(0, 1). */
double *perturbed(const double *x, int64_t n, uint64_t seed) {
    Rng r = {seed};
    double *a = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) a[i] = fmin(1.0, fmax(0.0, x[i] + 0.1 * rng_normal(&r)));
    return a;
}

