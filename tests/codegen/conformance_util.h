/* Helpers of the CPU backend's conformance suite (test_conformance.c):
 * deterministic test data, model loading, the pipeline, compiled and
 * interpreted calls, and error statistics against the interpreter. */
#ifndef IGRC_TEST_CONFORMANCE_UTIL_H
#define IGRC_TEST_CONFORMANCE_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "codegen/cpu/cpu_compile.h"
#include "ir/interp.h"

/* ---- data ---- */

typedef struct {
    uint64_t s;
} CRng;

double crng_unit(CRng *r);                /* [0, 1) */
double crng_range(CRng *r, double lo, double hi);
int64_t crng_int(CRng *r, int64_t lo, int64_t hi); /* [lo, hi) */

/* How an input is filled. Float values are rounded to f32 so the compiled
 * code (f32 buffers) and the interpreter see identical numbers. */
typedef enum {
    G_SIGNED,   /* U(-2, 2) */
    G_POS,      /* U(0.1, 3): log, sqrt, rsqrt, pow, div */
    G_DISTINCT, /* a shuffled permutation of k/16: no ties (max, argmax, pools) */
    G_SMALL,    /* integers -2..2 as floats: many equal pairs for compares */
    G_BOOL,     /* 0 or 1 */
    G_INT,      /* integers in [lo, hi) (i32 data, indices) */
    G_UNIT,     /* U(0, 1): images */
    G_WIDE,     /* i32 over the whole range (wrap-around arithmetic) */
    G_SPECIAL,  /* NaN, +-inf, +-0 among ordinary values: NaN must propagate */
} Gen;

/* A NamedValue of type t filled by g (lo/hi for G_INT); data malloc'd. */
NamedValue cf_value(const char *name, Type t, Gen g, int64_t lo, int64_t hi, CRng *r);
void cf_values_free(NamedValue *v, int n);

/* ---- comparison ---- */

/* |got - want| <= atol + rtol |want| elementwise; NaN matches NaN, an
 * infinity matches only itself; atol = rtol = 0 asks for exact equality.
 * Returns the number of elements outside; *worst gets the largest
 * |got - want| / (atol + rtol |want|) ratio seen (<= 1 passes) and
 * *worst_abs the largest absolute difference (either may be NULL). */
int64_t cf_mismatches(const double *got, const double *want, int64_t n, double atol, double rtol,
                      double *worst, double *worst_abs, int64_t *first_bad);

/* ---- modules ---- */

const char *cf_source_dir(void);
Module *cf_load_model(const char *rel, const char *const *defs, int ndefs, int64_t batch);
/* pipeline_run with default options but `disable` (NULL: every pass). */
bool cf_pipeline(Module *m, const char *disable, Diag *d);
double cf_now(void);

/* ---- IGRC_CONFORMANCE_DEVICE: the compiled side out of process ----
 * When $IGRC_CONFORMANCE_DEVICE names a backend (cpu, cuda), the suites
 * run the compiled side through `$IGRC_BIN exec FILE --backend DEVICE`
 * instead of cpu_load in this process, so the same comparisons check
 * another backend (bench/gpu_check.sh sets it to cuda). */

/* The backend named by $IGRC_CONFORMANCE_DEVICE, or NULL (unset or empty). */
const char *cf_device(void);
/* Writes m as IR text to a fresh temporary file; the malloc'd path, or
 * NULL with a message on stderr. */
char *cf_device_ir_file(const Module *m);
/* Entry point fn of `file` (relative to cf_source_dir() unless absolute; a
 * graph file with defs and batch > 0, or an .ir file with ndefs = batch = 0) on the inputs and params (nparams may be
 * 0: the file's init specs, seed 0), through igrc exec on cf_device().
 * Outputs in the function's order, as cpu_loaded_call gives them; their
 * names live in the same allocation as their data. */
bool cf_device_call(const char *file, const char *const *defs, int ndefs, int64_t batch,
                    const char *fn, const NamedValue *in, int nin, const NamedValue *params,
                    int nparams, NamedValue **outs, int *nout, Diag *d);

#endif
