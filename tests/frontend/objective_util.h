/* Shared helpers of the objective tests: loading models, running entry
 * points, random parameters, MNIST batches (tests/frontend/objective_util.c). */
#ifndef IGRC_TEST_OBJECTIVE_UTIL_H
#define IGRC_TEST_OBJECTIVE_UTIL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "ir/interp.h"

#define NDEFS_MAX 8

typedef struct {
    NamedValue *v;
    int n;
} Outs;

typedef struct {
    uint64_t s;
} Rng;

typedef struct {
    NamedValue *v; /* one per module parameter, in module order */
    int n;
} Params;

typedef struct {
    int n;
    double *x; /* [n, 1, 28, 28] in [0, 1] */
    int *y;
} Batch;

const char *source_dir(void);
void model_path(const char *rel, char *out, size_t cap);
Module *load_model(const char *rel, const char *const *defs, int ndefs, int64_t batch);
cJSON *load_doc(const char *rel, const char *const *defs, int ndefs);
double doc_param(const cJSON *doc, const char *key);
void run_pipeline(Module *m, const char *what);
double now_s(void);
Outs run_fn(const Module *m, const char *fn, InterpPrecision prec, const NamedValue *in, int nin, const NamedValue *ps, int np);
void outs_free(Outs *o);
const NamedValue *out_get(const Outs *o, const char *name);
double scalar_out(const Outs *o, const char *name);
double max_abs(const double *a, int64_t n);
double rng_unit(Rng *r);
double rng_normal(Rng *r);
int64_t rng_index(Rng *r, int64_t n);
Params params_alloc(const Module *m);
bool ends_with(const char *s, const char *suffix);
Params params_random(const Module *m, uint64_t seed);
Params params_init(const Module *m, uint32_t seed);
void params_free(Params *p);
int params_take(Params *p, Outs *o);
int count_trainable(const Module *m);
Batch mnist_batch(bool train, int first, int n);
void batch_free(Batch *b);
NamedValue nv_image(const char *name, const double *x, int n);
NamedValue nv_labels(const char *name, const int *y, int n);
NamedValue nv_scalar(const char *name, double x);
NamedValue nv_key(uint32_t a, uint32_t b);
void nvs_free(NamedValue *v, int n);
double *perturbed(const double *x, int64_t n, uint64_t seed);

#endif
