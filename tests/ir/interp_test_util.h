/* Helpers shared by the interpreter tests: build one node in a scratch
 * module, evaluate it, compare results. */
#ifndef IGRC_TESTS_INTERP_TEST_UTIL_H
#define IGRC_TESTS_INTERP_TEST_UTIL_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/interp.h"

#define DIMS(...) ((const int64_t[]){__VA_ARGS__})
#define NDIMS(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define TY(dt, ...) type_make((dt), NDIMS(__VA_ARGS__), DIMS(__VA_ARGS__))
#define D(...) ((const double[]){__VA_ARGS__})
#define NV(...) (int64_t)(sizeof((double[]){__VA_ARGS__}) / sizeof(double))
/* expect_vals on a literal list: EXPECT(v, tol, 1, 2, 3). */
#define EXPECT(v, tol, ...) expect_vals((v), D(__VA_ARGS__), NV(__VA_ARGS__), (tol))

/* A value of type t holding a copy of data (zeros when data is NULL). */
static inline Value val(Type t, const double *data) {
    int64_t n = type_numel(&t);
    Value v = {t, calloc((size_t)(n ? n : 1), sizeof(double))};
    if (data && n) memcpy(v.data, data, (size_t)n * sizeof(double));
    return v;
}

/* xorshift64*: deterministic test data in [-1, 1). */
static inline double rnd(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ull) >> 11) / 4503599627370496.0 - 1.0;
}

static inline Value val_rand(Type t, uint64_t *s) {
    Value v = val(t, NULL);
    for (int64_t i = 0; i < type_numel(&t); i++) v.data[i] = rnd(s);
    return v;
}

static inline void free_vals(Value *v, int n) {
    for (int i = 0; i < n; i++) value_free(&v[i]);
}

static inline double dot(const Value *a, const Value *b) {
    cr_assert_eq(type_numel(&a->type), type_numel(&b->type));
    double s = 0;
    for (int64_t i = 0; i < type_numel(&a->type); i++) s += a->data[i] * b->data[i];
    return s;
}

/* Builds `op` (named "y") over input nodes of the operands' types in a
 * scratch module and evaluates it. */
static inline bool eval_op(OpKind op, const Attr *attrs, int nattrs, const Value *ins, int nin,
                           Type out_t, InterpPrecision prec, Value *out, Diag *d) {
    Module *m = module_new("t");
    Function *f = module_add_func(m, "f");
    int ids[16];
    for (int i = 0; i < nin; i++)
        ids[i] = func_add_node(m, f, OP_INPUT, NULL, NULL, 0, NULL, 0, ins[i].type);
    int y = func_add_node(m, f, op, "y", ids, nin, attrs, nattrs, out_t);
    InterpOptions o = {prec};
    diag_init(d);
    bool ok = interp_eval_node(&f->nodes[y], ins, out, &o, d);
    module_free(m);
    return ok;
}

/* eval_op in f64 precision that must succeed. */
static inline Value eval_ok(OpKind op, const Attr *attrs, int nattrs, const Value *ins, int nin,
                            Type out_t) {
    Value out;
    Diag d;
    bool ok = eval_op(op, attrs, nattrs, ins, nin, out_t, INTERP_F64, &out, &d);
    cr_assert(ok, "%s failed: %s", op_name(op), d.msg);
    cr_assert(type_equal(&out.type, &out_t));
    return out;
}

/* eval_op that must fail; returns the diagnostic. */
static inline Diag eval_fail(OpKind op, const Attr *attrs, int nattrs, const Value *ins, int nin,
                             Type out_t) {
    Value out;
    Diag d;
    bool ok = eval_op(op, attrs, nattrs, ins, nin, out_t, INTERP_F64, &out, &d);
    if (ok) value_free(&out);
    cr_assert(!ok, "%s unexpectedly succeeded", op_name(op));
    cr_assert(out.data == NULL);
    return d;
}

/* Elementwise comparison; NaN matches NaN, infinities match exactly. */
static inline void expect_vals(const Value *v, const double *want, int64_t n, double tol) {
    cr_assert_eq(type_numel(&v->type), n, "numel %lld, expected %lld",
                 (long long)type_numel(&v->type), (long long)n);
    for (int64_t i = 0; i < n; i++) {
        double g = v->data[i], w = want[i];
        bool ok = isnan(w) ? isnan(g) : isinf(w) ? g == w : fabs(g - w) <= tol * (1 + fabs(w));
        cr_expect(ok, "element %lld: got %.17g, expected %.17g", (long long)i, g, w);
    }
}

static inline void expect_close(double got, double want, double rel, const char *what) {
    cr_expect(fabs(got - want) <= rel * (1 + fabs(want)), "%s: %.17g vs %.17g", what, got, want);
}

#endif
