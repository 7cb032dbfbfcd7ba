/* Conformance of the CPU backend against the reference interpreter (the
 * model is ggml's test-backend-ops): every primitive op alone (this file); every fused
 * kernel of every model file and whole entry points are in
 * test_conformance_models.c.
 *
 * 1. ops: small functions (inputs + one op, or a short chain that makes a
 *    complex op the head of an epilogue) for several shapes, odd sizes and
 *    attribute variants; the default pipeline (fuse included), cpu_load,
 *    cpu_loaded_call against interp_run in INTERP_F32 on the function as
 *    built (before the pipeline), fresh random inputs from fixed seeds.
 *    Tolerances, |compiled - interp| <= atol + rtol |interp| per element:
 *      - integer and bool results, max, select, views, casts, one_hot,
 *        gather, iota, bernoulli: exact (atol = rtol = 0);
 *      - elementwise float ops (incl. transcendental, uniform/normal
 *        random numbers): atol = rtol = 1e-5 (f32 libm is within 1-2 ulp,
 *        i.e. ~2.4e-7 relative, of the double result rounded once);
 *      - sums of K terms (reduce_sum, matmul, conv, pool backward, avg
 *        pooling): atol = rtol = 1e-5 sqrt(K) (f32 accumulation in another
 *        order than the interpreter's double sum, random-walk growth). */

#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cpu/cpu_compile.h"
#include "codegen/kir/kernel.h"
#include "codegen/lower.h"
#include "ir/builder.h"
#include "ir/interp.h"
#include "passes/pass.h"
#include "runtime/program/init.h"
#include "tests/codegen/conformance_util.h"

#define DIMS(...) ((const int64_t[]){__VA_ARGS__})
#define NDIMS(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define TY(dt, ...) type_make((dt), NDIMS(__VA_ARGS__), DIMS(__VA_ARGS__))
#define SC(dt) type_scalar(dt)
#define INTS(key, ...) attr_ints((key), DIMS(__VA_ARGS__), NDIMS(__VA_ARGS__))

#define ELEM 1e-5
static double sum_tol(double k) { return 1e-5 * sqrt(k < 1 ? 1 : k); }


/* ====================================================================== */
/* 1. every primitive op                                                   */
/* ====================================================================== */

#define MAX_CASES 160
#define MAX_INS 4

typedef struct {
    char label[128];
    const char *fname;
    NamedValue in[MAX_INS];
    int nin;
    double atol, rtol;
} Case;

typedef struct Suite {
    const char *name;
    Module *m;
    Diag d;
    Case c[MAX_CASES];
    int n;
    CRng rng;
    /* the case being built */
    Builder b;
} Suite;

static const char *const IN_NAMES[MAX_INS] = {"a", "b", "c", "d"};

static void suite_init(Suite *s, const char *name, uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->name = name;
    s->m = module_new(name);
    s->rng.s = seed;
    diag_init(&s->d);
}

static Builder *case_begin(Suite *s, double atol, double rtol, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static Builder *case_begin(Suite *s, double atol, double rtol, const char *fmt, ...) {
    cr_assert_lt(s->n, MAX_CASES, "%s: too many cases", s->name);
    Case *c = &s->c[s->n];
    memset(c, 0, sizeof *c);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->label, sizeof c->label, fmt, ap);
    va_end(ap);
    c->fname = arena_printf(s->m->arena, "f%d", s->n);
    c->atol = atol;
    c->rtol = rtol;
    s->b = (Builder){s->m, module_add_func(s->m, c->fname), &s->d};
    return &s->b;
}

static int case_input(Suite *s, Type t, Gen g, int64_t lo, int64_t hi) {
    Case *c = &s->c[s->n];
    cr_assert_lt(c->nin, MAX_INS);
    const char *name = IN_NAMES[c->nin];
    c->in[c->nin++] = cf_value(name, t, g, lo, hi, &s->rng);
    return b_input(&s->b, name, t);
}

static void case_end(Suite *s, int y) {
    Case *c = &s->c[s->n];
    cr_assert(y >= 0 && s->d.code == 0, "%s: building %s: %s", s->name, c->label, s->d.msg);
    func_add_output(s->m, s->b.f, "y", y);
    s->n++;
}

typedef struct {
    Type t;
    Gen g;
    int64_t lo, hi;
} In;

#define IN(dt, g, ...) ((In){TY(dt, __VA_ARGS__), (g), 0, 0})
#define INS(dt, g) ((In){SC(dt), (g), 0, 0})
#define IDX(lo_, hi_, ...) ((In){TY(DT_I32, __VA_ARGS__), G_INT, (lo_), (hi_)})

/* One op over fresh inputs; `src` is the declared type for source ops. */
static void op_case(Suite *s, double atol, double rtol, OpKind op, const In *ins, int nin,
                    const Attr *attrs, int nattrs, const Type *src, const char *note) {
    char shapes[96] = "";
    size_t len = 0;
    for (int k = 0; k < nin; k++) {
        char ts[48];
        len += (size_t)snprintf(shapes + len, sizeof shapes - len, "%s%s", k ? "," : "",
                                type_str(&ins[k].t, ts, sizeof ts));
        if (len >= sizeof shapes) len = sizeof shapes - 1;
    }
    Builder *b = case_begin(s, atol, rtol, "%s(%s)%s%s", op_name(op), shapes, note ? " " : "",
                            note ? note : "");
    int ids[MAX_INS];
    for (int k = 0; k < nin; k++) ids[k] = case_input(s, ins[k].t, ins[k].g, ins[k].lo, ins[k].hi);
    int y = src ? b_source(b, op, "y", ids, nin, attrs, nattrs, *src)
                : b_node(b, op, "y", ids, nin, attrs, nattrs);
    case_end(s, y);
}

#define OP1(s, tol_a, tol_r, op, in0, ...) \
    op_case((s), (tol_a), (tol_r), (op), (In[]){in0}, 1, NULL, 0, NULL, NULL)

/* Interprets every case (composites decomposed first: the interpreter runs
 * primitives; their values against the definitions are
 * tests/passes/test_composites.c's), runs the pipeline, compiles once,
 * compares.
 * test_cuda_codegen includes this file with CONFORMANCE_RUN set to its own
 * runner (the same cases through the CUDA backend's emulation). */
#ifndef CONFORMANCE_RUN
#define CONFORMANCE_RUN suite_run
#endif

__attribute__((unused)) static void suite_run(Suite *s) {
    NamedValue *want[MAX_CASES];
    int nwant[MAX_CASES];
    InterpOptions io = {INTERP_F32};
    Diag dd;
    diag_init(&dd);
    PassCtx ctx = {&dd};
    cr_assert(pass_decompose(s->m, &ctx), "%s: decompose: %s", s->name, dd.msg);
    for (int i = 0; i < s->n; i++) {
        Case *c = &s->c[i];
        Diag d;
        diag_init(&d);
        bool ok = interp_run(s->m, module_find_func(s->m, c->fname), &io, c->in, c->nin, NULL, 0,
                             &want[i], &nwant[i], &d);
        cr_assert(ok, "%s: interpreting %s: %s", s->name, c->label, d.msg);
    }
    Diag d;
    char *ir = cf_device() ? cf_device_ir_file(s->m) : NULL; /* igrc exec runs the pipeline */
    cr_assert(ir || !cf_device(), "%s: cannot write the IR for %s", s->name, cf_device());
    cr_assert(cf_pipeline(s->m, NULL, &d), "%s: pipeline: %s", s->name, d.msg);
    diag_init(&d);
    double t0 = cf_now();
    CpuLoaded *l = ir ? NULL : cpu_load(s->m, 2, &d);
    cr_assert(l || ir, "%s: cpu_load: %s", s->name, d.msg);
    double t_compile = cf_now() - t0, worst = 0;
    int worst_case = -1, failed = 0;
    for (int i = 0; i < s->n; i++) {
        Case *c = &s->c[i];
        NamedValue *got = NULL;
        int ngot = 0;
        diag_init(&d);
        bool ok = l ? cpu_loaded_call(l, c->fname, c->in, c->nin, NULL, 0, &got, &ngot, &d)
                    : cf_device_call(ir, NULL, 0, 0, c->fname, c->in, c->nin, NULL, 0, &got, &ngot, &d);
        cr_expect(ok, "%s: %s: compiled call: %s", s->name, c->label, d.msg);
        if (!ok) {
            failed++;
            named_values_free(want[i], nwant[i]);
            continue;
        }
        cr_assert_eq(ngot, nwant[i]);
        for (int k = 0; k < ngot; k++) {
            int64_t n = type_numel(&want[i][k].type), first;
            cr_expect_eq(type_numel(&got[k].type), n, "%s: %s: numel", s->name, c->label);
            double w, wa;
            int64_t bad = cf_mismatches(got[k].data, want[i][k].data, n, c->atol, c->rtol, &w, &wa, &first);
            cr_expect_eq(bad, 0,
                         "%s: %s: %lld of %lld elements differ (first [%lld]: compiled %.9g, "
                         "interp %.9g; worst |diff| %.3g)",
                         s->name, c->label, (long long)bad, (long long)n, (long long)first,
                         first >= 0 ? got[k].data[first] : 0.0,
                         first >= 0 ? want[i][k].data[first] : 0.0, wa);
            if (bad) failed++;
            if (w > worst || worst_case < 0) {
                worst = fmax(worst, w);
                worst_case = i;
            }
        }
        named_values_free(got, ngot);
        named_values_free(want[i], nwant[i]);
    }
    fprintf(stderr,
            "[conformance] ops %-10s %3d cases, %d failing; worst error/tolerance %.3g (%s); "
            "compile %.2f s\n",
            s->name, s->n, failed, worst, worst_case >= 0 ? s->c[worst_case].label : "-", t_compile);
    cpu_loaded_free(l);
    if (ir) remove(ir), free(ir);
    for (int i = 0; i < s->n; i++) cf_values_free(s->c[i].in, s->c[i].nin);
    module_free(s->m);
}

/* The four standard shapes: odd sizes, a single element, rank 4, scalar. */
static Type shape_of(DType dt, int i) {
    switch (i) {
    case 0: return TY(dt, 3, 5, 7);
    case 1: return TY(dt, 1);
    case 2: return TY(dt, 2, 3, 11, 13);
    default: return SC(dt);
    }
}

TestSuite(conformance);

Test(conformance, unary_ops) {
    Suite s;
    suite_init(&s, "unary", 11);
    static const struct {
        OpKind op;
        Gen g;
    } ops[] = {{OP_NEG, G_SIGNED},  {OP_ABS, G_SIGNED},   {OP_SIGN, G_SMALL},
               {OP_EXP, G_SIGNED},  {OP_LOG, G_POS},      {OP_SQRT, G_POS},
               {OP_RSQRT, G_POS},   {OP_RECIP, G_SIGNED}, {OP_RELU, G_SMALL},
               {OP_SIGMOID, G_SIGNED}, {OP_TANH, G_SIGNED}, {OP_SOFTPLUS, G_SIGNED},
               {OP_STOP_GRADIENT, G_SIGNED}, {OP_RELU, G_SIGNED}, {OP_RELU, G_SPECIAL},
               {OP_NEG, G_SPECIAL}, {OP_ABS, G_SPECIAL}, {OP_ERF, G_SIGNED}, {OP_ERF, G_SPECIAL},
               {OP_GELU, G_SIGNED}, {OP_SILU, G_SIGNED}, {OP_LEAKY_RELU, G_SIGNED},
               {OP_ELU, G_SIGNED}, {OP_GELU, G_SPECIAL}, {OP_ELU, G_SPECIAL}};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        for (int sh = 0; sh < 4; sh++) {
            bool exact = ops[k].op == OP_NEG || ops[k].op == OP_ABS || ops[k].op == OP_SIGN ||
                         ops[k].op == OP_RELU || ops[k].op == OP_STOP_GRADIENT;
            In in = {shape_of(DT_F32, sh), ops[k].g, 0, 0};
            op_case(&s, exact ? 0 : ELEM, exact ? 0 : ELEM, ops[k].op, &in, 1, NULL, 0, NULL, NULL);
        }
    /* softplus with beta, across PyTorch's threshold (beta x > 20 -> x) */
    Attr beta2 = attr_float("beta", 2.0), beta05 = attr_float("beta", 0.5);
    In wide = {TY(DT_F32, 4, 9), G_INT, -60, 60}; /* integers: beta x crosses 20 both ways */
    op_case(&s, ELEM, ELEM, OP_SOFTPLUS, &wide, 1, &beta2, 1, NULL, "beta=2");
    op_case(&s, ELEM, ELEM, OP_SOFTPLUS, &wide, 1, &beta05, 1, NULL, "beta=0.5");
    In sig = {TY(DT_F32, 3, 5, 7), G_SIGNED, 0, 0};
    op_case(&s, ELEM, ELEM, OP_SOFTPLUS, &sig, 1, &beta2, 1, NULL, "beta=2");
    op_case(&s, ELEM, ELEM, OP_SIGMOID, &wide, 1, NULL, 0, NULL, "tails");
    op_case(&s, ELEM, ELEM, OP_TANH, &wide, 1, NULL, 0, NULL, "tails");
    op_case(&s, ELEM, ELEM, OP_ERF, &wide, 1, NULL, 0, NULL, "tails");
    /* the activations' attributes, and their tails (elu's exp must not overflow) */
    Attr tanh_form = attr_str("approximate", "tanh"), a03 = attr_float("alpha", 0.3);
    op_case(&s, ELEM, ELEM, OP_GELU, &wide, 1, &tanh_form, 1, NULL, "tanh tails");
    op_case(&s, ELEM, ELEM, OP_GELU, &wide, 1, NULL, 0, NULL, "tails");
    op_case(&s, ELEM, ELEM, OP_SILU, &wide, 1, NULL, 0, NULL, "tails");
    op_case(&s, ELEM, ELEM, OP_LEAKY_RELU, &wide, 1, &a03, 1, NULL, "alpha=0.3");
    op_case(&s, ELEM, ELEM, OP_ELU, &wide, 1, &a03, 1, NULL, "alpha=0.3 tails");
    /* f64 */
    static const OpKind f64ops[] = {OP_EXP, OP_LOG, OP_TANH, OP_SIGMOID, OP_SOFTPLUS, OP_RSQRT, OP_ERF};
    for (size_t k = 0; k < sizeof f64ops / sizeof f64ops[0]; k++) {
        In in = {TY(DT_F64, 3, 5, 7), G_POS, 0, 0};
        op_case(&s, 1e-12, 1e-12, f64ops[k], &in, 1, NULL, 0, NULL, "f64");
    }
    /* not (bool), neg/abs/sign on i32 */
    op_case(&s, 0, 0, OP_NOT, (In[]){IN(DT_BOOL, G_BOOL, 3, 5, 7)}, 1, NULL, 0, NULL, NULL);
    op_case(&s, 0, 0, OP_NOT, (In[]){INS(DT_BOOL, G_BOOL)}, 1, NULL, 0, NULL, NULL);
    op_case(&s, 0, 0, OP_NEG, (In[]){IDX(-50, 50, 3, 5, 7)}, 1, NULL, 0, NULL, "i32");
    op_case(&s, 0, 0, OP_ABS, (In[]){IDX(-50, 50, 3, 5, 7)}, 1, NULL, 0, NULL, "i32");
    CONFORMANCE_RUN(&s);
}

Test(conformance, casts) {
    Suite s;
    suite_init(&s, "cast", 12);
    static const struct {
        DType from, to;
        Gen g;
    } cs[] = {{DT_F32, DT_I32, G_SIGNED}, {DT_F32, DT_BOOL, G_SMALL}, {DT_I32, DT_F32, G_INT},
              {DT_I32, DT_BOOL, G_INT},   {DT_BOOL, DT_F32, G_BOOL},  {DT_BOOL, DT_I32, G_BOOL},
              {DT_F32, DT_F64, G_SIGNED}, {DT_F64, DT_F32, G_SIGNED}, {DT_I32, DT_F64, G_INT},
              {DT_F64, DT_I32, G_SIGNED}, {DT_F32, DT_F32, G_SIGNED}, {DT_BOOL, DT_F64, G_BOOL}};
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++)
        for (int sh = 0; sh < 4; sh += 2) {
            Attr dt = attr_dtype("dtype", cs[k].to);
            In in = {shape_of(cs[k].from, sh), cs[k].g, -3, 4};
            /* f64 -> f32 rounds once either way; everything else is exact */
            op_case(&s, 0, 0, OP_CAST, &in, 1, &dt, 1, NULL, dtype_name(cs[k].to));
        }
    CONFORMANCE_RUN(&s);
}

Test(conformance, binary_ops) {
    Suite s;
    suite_init(&s, "binary", 13);
    static const struct {
        OpKind op;
        Gen ga, gb;
        bool exact;
    } ops[] = {{OP_ADD, G_SIGNED, G_SIGNED, false}, {OP_SUB, G_SIGNED, G_SIGNED, false},
               {OP_MUL, G_SIGNED, G_SIGNED, false}, {OP_DIV, G_SIGNED, G_POS, false},
               {OP_MAX, G_SIGNED, G_SIGNED, true},  {OP_MIN, G_SIGNED, G_SIGNED, true},
               {OP_POW, G_POS, G_SIGNED, false},    {OP_MAX, G_SMALL, G_SMALL, true},
               {OP_MAX, G_SPECIAL, G_SPECIAL, true}, {OP_MIN, G_SPECIAL, G_SPECIAL, true}};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        for (int sh = 0; sh < 4; sh++) {
            In in[2] = {{shape_of(DT_F32, sh), ops[k].ga, 0, 0}, {shape_of(DT_F32, sh), ops[k].gb, 0, 0}};
            double t = ops[k].exact ? 0 : ELEM;
            op_case(&s, t, t, ops[k].op, in, 2, NULL, 0, NULL, NULL);
        }
    static const OpKind cmp[] = {OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE};
    for (size_t k = 0; k < 6; k++)
        for (int sh = 0; sh < 4; sh += 3) {
            In in[2] = {{shape_of(DT_F32, sh), G_SMALL, 0, 0}, {shape_of(DT_F32, sh), G_SMALL, 0, 0}};
            op_case(&s, 0, 0, cmp[k], in, 2, NULL, 0, NULL, NULL);
            In ii[2] = {{shape_of(DT_I32, sh), G_INT, -2, 3}, {shape_of(DT_I32, sh), G_INT, -2, 3}};
            op_case(&s, 0, 0, cmp[k], ii, 2, NULL, 0, NULL, "i32");
        }
    op_case(&s, 0, 0, OP_AND, (In[]){IN(DT_BOOL, G_BOOL, 3, 5, 7), IN(DT_BOOL, G_BOOL, 3, 5, 7)}, 2,
            NULL, 0, NULL, NULL);
    op_case(&s, 0, 0, OP_OR, (In[]){IN(DT_BOOL, G_BOOL, 2, 3, 11, 13), IN(DT_BOOL, G_BOOL, 2, 3, 11, 13)},
            2, NULL, 0, NULL, NULL);
    op_case(&s, 0, 0, OP_EQ, (In[]){IN(DT_BOOL, G_BOOL, 3, 5, 7), IN(DT_BOOL, G_BOOL, 3, 5, 7)}, 2,
            NULL, 0, NULL, "bool");
    /* select on f32, i32 and bool */
    op_case(&s, 0, 0, OP_SELECT,
            (In[]){IN(DT_BOOL, G_BOOL, 3, 5, 7), IN(DT_F32, G_SIGNED, 3, 5, 7), IN(DT_F32, G_SIGNED, 3, 5, 7)},
            3, NULL, 0, NULL, NULL);
    op_case(&s, 0, 0, OP_SELECT,
            (In[]){INS(DT_BOOL, G_BOOL), INS(DT_F32, G_SIGNED), INS(DT_F32, G_SIGNED)}, 3, NULL, 0,
            NULL, NULL);
    op_case(&s, 0, 0, OP_SELECT,
            (In[]){IN(DT_BOOL, G_BOOL, 2, 3, 11, 13), IDX(-9, 9, 2, 3, 11, 13), IDX(-9, 9, 2, 3, 11, 13)},
            3, NULL, 0, NULL, "i32");
    op_case(&s, 0, 0, OP_SELECT,
            (In[]){IN(DT_BOOL, G_BOOL, 5), IN(DT_BOOL, G_BOOL, 5), IN(DT_BOOL, G_BOOL, 5)}, 3, NULL, 0,
            NULL, "bool");
    /* i32 arithmetic: wrap-around, truncating division, x / 0 = 0 */
    static const OpKind iops[] = {OP_ADD, OP_SUB, OP_MUL, OP_MAX, OP_MIN};
    for (size_t k = 0; k < 5; k++) {
        In in[2] = {{TY(DT_I32, 3, 5, 7), G_WIDE, 0, 0}, {TY(DT_I32, 3, 5, 7), G_WIDE, 0, 0}};
        op_case(&s, 0, 0, iops[k], in, 2, NULL, 0, NULL, "i32 wide");
    }
    op_case(&s, 0, 0, OP_DIV, (In[]){IDX(-100, 100, 3, 5, 7), IDX(-6, 7, 3, 5, 7)}, 2, NULL, 0, NULL,
            "i32 (zero divisors)");
    op_case(&s, 0, 0, OP_MUL, (In[]){IDX(-100, 100, 1), IDX(-6, 7, 1)}, 2, NULL, 0, NULL, "i32");
    /* f64 */
    static const OpKind fops[] = {OP_ADD, OP_MUL, OP_DIV, OP_POW, OP_MIN};
    for (size_t k = 0; k < 5; k++)
        op_case(&s, 1e-12, 1e-12, fops[k], (In[]){IN(DT_F64, G_POS, 3, 5, 7), IN(DT_F64, G_SIGNED, 3, 5, 7)},
                2, NULL, 0, NULL, "f64");
    CONFORMANCE_RUN(&s);
}

Test(conformance, views) {
    Suite s;
    suite_init(&s, "views", 14);
    /* broadcast: size-1 dims, leading dims, scalar, several dtypes */
    struct {
        In in;
        Type to;
    } bc[] = {{IN(DT_F32, G_SIGNED, 1, 5), TY(DT_F32, 3, 5)},
              {IN(DT_F32, G_SIGNED, 5), TY(DT_F32, 3, 5)},
              {IN(DT_F32, G_SIGNED, 3, 1, 7), TY(DT_F32, 2, 3, 5, 7)},
              {INS(DT_F32, G_SIGNED), TY(DT_F32, 4, 3)},
              {IN(DT_F32, G_SIGNED, 1), TY(DT_F32, 2, 3, 11, 13)},
              {IN(DT_F32, G_SIGNED, 2, 1, 11, 1), TY(DT_F32, 2, 3, 11, 13)},
              {IN(DT_F32, G_SIGNED, 3, 5, 7), TY(DT_F32, 3, 5, 7)},
              {IN(DT_F32, G_SIGNED, 3, 5, 7), TY(DT_F32, 1, 3, 5, 7)},
              {IN(DT_BOOL, G_BOOL, 3, 1), TY(DT_BOOL, 3, 4)},
              {IDX(-5, 5, 1, 7), TY(DT_I32, 2, 3, 7)}};
    for (size_t k = 0; k < sizeof bc / sizeof bc[0]; k++) {
        Attr a = attr_ints("shape", bc[k].to.dim, bc[k].to.rank);
        op_case(&s, 0, 0, OP_BROADCAST, &bc[k].in, 1, &a, 1, NULL, NULL);
    }
    /* reshape */
    struct {
        In in;
        Type to;
    } rs[] = {{IN(DT_F32, G_SIGNED, 3, 5, 7), TY(DT_F32, 7, 15)},
              {IN(DT_F32, G_SIGNED, 2, 3, 11, 13), TY(DT_F32, 6, 143)},
              {IN(DT_F32, G_SIGNED, 1), SC(DT_F32)},
              {INS(DT_F32, G_SIGNED), TY(DT_F32, 1, 1)},
              {IDX(0, 9, 6, 4), TY(DT_I32, 2, 3, 2, 2)}};
    for (size_t k = 0; k < sizeof rs / sizeof rs[0]; k++) {
        Attr a = attr_ints("shape", rs[k].to.dim, rs[k].to.rank);
        op_case(&s, 0, 0, OP_RESHAPE, &rs[k].in, 1, &a, 1, NULL, NULL);
    }
    /* transpose */
    op_case(&s, 0, 0, OP_TRANSPOSE, (In[]){IN(DT_F32, G_SIGNED, 3, 5)}, 1, (Attr[]){INTS("perm", 1, 0)}, 1,
            NULL, "perm=1,0");
    op_case(&s, 0, 0, OP_TRANSPOSE, (In[]){IN(DT_F32, G_SIGNED, 3, 5, 7)}, 1,
            (Attr[]){INTS("perm", 2, 0, 1)}, 1, NULL, "perm=2,0,1");
    op_case(&s, 0, 0, OP_TRANSPOSE, (In[]){IN(DT_F32, G_SIGNED, 2, 3, 11, 13)}, 1,
            (Attr[]){INTS("perm", 0, 2, 3, 1)}, 1, NULL, "perm=0,2,3,1");
    op_case(&s, 0, 0, OP_TRANSPOSE, (In[]){IN(DT_F32, G_SIGNED, 2, 3, 11, 13)}, 1,
            (Attr[]){INTS("perm", 3, 2, 1, 0)}, 1, NULL, "perm=3,2,1,0");
    op_case(&s, 0, 0, OP_TRANSPOSE, (In[]){IDX(0, 99, 1, 4, 1)}, 1, (Attr[]){INTS("perm", 2, 1, 0)}, 1,
            NULL, "i32 perm=2,1,0");
    /* slice: strided, offset, single element */
    op_case(&s, 0, 0, OP_SLICE, (In[]){IN(DT_F32, G_SIGNED, 3, 5, 7)}, 1,
            (Attr[]){INTS("start", 0, 1, 2), INTS("stop", 3, 5, 7), INTS("step", 1, 2, 3)}, 3, NULL,
            "step=1,2,3");
    op_case(&s, 0, 0, OP_SLICE, (In[]){IN(DT_F32, G_SIGNED, 2, 3, 11, 13)}, 1,
            (Attr[]){INTS("start", 1, 0, 3, 0), INTS("stop", 2, 3, 11, 13), INTS("step", 1, 2, 1, 4)}, 3,
            NULL, "step=1,2,1,4");
    op_case(&s, 0, 0, OP_SLICE, (In[]){IN(DT_F32, G_SIGNED, 7)}, 1,
            (Attr[]){INTS("start", 6), INTS("stop", 7), INTS("step", 1)}, 3, NULL, "last");
    op_case(&s, 0, 0, OP_SLICE, (In[]){IN(DT_F32, G_SIGNED, 3, 5, 7)}, 1,
            (Attr[]){INTS("start", 1, 1, 1), INTS("stop", 3, 4, 6), INTS("step", 2, 1, 2)}, 3, NULL,
            "inner");
    op_case(&s, 0, 0, OP_SLICE, (In[]){IDX(0, 99, 9, 4)}, 1,
            (Attr[]){INTS("start", 2, 1), INTS("stop", 9, 4), INTS("step", 3, 5)}, 3, NULL, "i32");
    /* pad: lo/hi, value, dtypes */
    op_case(&s, 0, 0, OP_PAD, (In[]){IN(DT_F32, G_SIGNED, 3, 5)}, 1,
            (Attr[]){INTS("lo", 1, 2), INTS("hi", 2, 0), attr_float("value", -1.5)}, 3, NULL,
            "value=-1.5");
    op_case(&s, 0, 0, OP_PAD, (In[]){IN(DT_F32, G_SIGNED, 2, 3, 4)}, 1,
            (Attr[]){INTS("lo", 0, 0, 1), INTS("hi", 0, 1, 1)}, 2, NULL, NULL);
    op_case(&s, 0, 0, OP_PAD, (In[]){IN(DT_F32, G_SIGNED, 1)}, 1,
            (Attr[]){INTS("lo", 3), INTS("hi", 2), attr_float("value", 7)}, 3, NULL, "value=7");
    op_case(&s, 0, 0, OP_PAD, (In[]){IN(DT_F32, G_SIGNED, 2, 3, 11, 13)}, 1,
            (Attr[]){INTS("lo", 0, 1, 2, 0), INTS("hi", 1, 0, 2, 3), attr_float("value", 0.25)}, 3, NULL,
            "value=0.25");
    op_case(&s, 0, 0, OP_PAD, (In[]){IDX(0, 9, 3, 2)}, 1,
            (Attr[]){INTS("lo", 1, 1), INTS("hi", 0, 2), attr_float("value", 3)}, 3, NULL, "i32");
    op_case(&s, 0, 0, OP_PAD, (In[]){IN(DT_F32, G_SIGNED, 3, 5)}, 1,
            (Attr[]){INTS("lo", 0, 0), INTS("hi", 0, 0)}, 2, NULL, "none");
    /* concat along every axis, 2 and 3 operands */
    op_case(&s, 0, 0, OP_CONCAT,
            (In[]){IN(DT_F32, G_SIGNED, 2, 5), IN(DT_F32, G_SIGNED, 3, 5), IN(DT_F32, G_SIGNED, 1, 5)}, 3,
            (Attr[]){attr_int("axis", 0)}, 1, NULL, "axis=0");
    op_case(&s, 0, 0, OP_CONCAT, (In[]){IN(DT_F32, G_SIGNED, 3, 2, 7), IN(DT_F32, G_SIGNED, 3, 5, 7)}, 2,
            (Attr[]){attr_int("axis", 1)}, 1, NULL, "axis=1");
    op_case(&s, 0, 0, OP_CONCAT,
            (In[]){IN(DT_F32, G_SIGNED, 2, 3, 4), IN(DT_F32, G_SIGNED, 2, 3, 1), IN(DT_F32, G_SIGNED, 2, 3, 6)},
            3, (Attr[]){attr_int("axis", 2)}, 1, NULL, "axis=2");
    op_case(&s, 0, 0, OP_CONCAT, (In[]){IN(DT_F32, G_SIGNED, 2, 3, 11, 13), IN(DT_F32, G_SIGNED, 2, 3, 11, 2)},
            2, (Attr[]){attr_int("axis", 3)}, 1, NULL, "axis=3");
    op_case(&s, 0, 0, OP_CONCAT, (In[]){IDX(0, 9, 2, 3), IDX(0, 9, 2, 1)}, 2, (Attr[]){attr_int("axis", 1)},
            1, NULL, "i32 axis=1");
    op_case(&s, 0, 0, OP_CONCAT, (In[]){IN(DT_F32, G_SIGNED, 5)}, 1, (Attr[]){attr_int("axis", 0)}, 1, NULL,
            "one operand");
    CONFORMANCE_RUN(&s);
}

Test(conformance, reductions) {
    Suite s;
    suite_init(&s, "reduce", 15);
    struct {
        In in;
        int64_t axes[4];
        int naxes;
    } rd[] = {{IN(DT_F32, G_SIGNED, 3, 5, 7), {0}, 1},
              {IN(DT_F32, G_SIGNED, 3, 5, 7), {1}, 1},
              {IN(DT_F32, G_SIGNED, 3, 5, 7), {2}, 1},
              {IN(DT_F32, G_SIGNED, 3, 5, 7), {0, 2}, 2},
              {IN(DT_F32, G_SIGNED, 3, 5, 7), {0, 1, 2}, 3},
              {IN(DT_F32, G_SIGNED, 2, 3, 11, 13), {1, 3}, 2},
              {IN(DT_F32, G_SIGNED, 2, 3, 11, 13), {0, 1, 2, 3}, 4},
              {IN(DT_F32, G_SIGNED, 2, 3, 11, 13), {2}, 1},
              {IN(DT_F32, G_SIGNED, 1), {0}, 1},
              {IN(DT_F32, G_SIGNED, 4, 1, 3), {1}, 1}};
    for (size_t k = 0; k < sizeof rd / sizeof rd[0]; k++) {
        double K = 1;
        for (int j = 0; j < rd[k].naxes; j++) K *= (double)rd[k].in.t.dim[rd[k].axes[j]];
        for (int keep = 0; keep <= 1; keep++) {
            Attr a[2] = {attr_ints("axes", rd[k].axes, rd[k].naxes), attr_int("keepdims", keep)};
            op_case(&s, sum_tol(K), sum_tol(K), OP_REDUCE_SUM, &rd[k].in, 1, a, 2, NULL,
                    keep ? "keepdims" : NULL);
            op_case(&s, 0, 0, OP_REDUCE_MAX, &rd[k].in, 1, a, 2, NULL, keep ? "keepdims" : NULL);
        }
    }
    /* reduce_max with ties and f64 sums */
    Attr ax1[1] = {INTS("axes", 1)};
    op_case(&s, 0, 0, OP_REDUCE_MAX, (In[]){IN(DT_F32, G_SMALL, 6, 9)}, 1, ax1, 1, NULL, "ties");
    op_case(&s, 1e-12, 1e-12, OP_REDUCE_SUM, (In[]){IN(DT_F64, G_SIGNED, 6, 9)}, 1, ax1, 1, NULL, "f64");
    /* argmax: distinct values along every axis; ties: first max wins */
    for (int ax = 0; ax < 3; ax++)
        op_case(&s, 0, 0, OP_ARGMAX, (In[]){IN(DT_F32, G_DISTINCT, 3, 5, 7)}, 1, (Attr[]){attr_int("axis", ax)},
                1, NULL, ax == 0 ? "axis=0" : ax == 1 ? "axis=1" : "axis=2");
    op_case(&s, 0, 0, OP_ARGMAX, (In[]){IN(DT_F32, G_DISTINCT, 2, 3, 11, 13)}, 1,
            (Attr[]){attr_int("axis", 3)}, 1, NULL, "axis=3");
    op_case(&s, 0, 0, OP_ARGMAX, (In[]){IN(DT_F32, G_DISTINCT, 2, 3, 11, 13)}, 1,
            (Attr[]){attr_int("axis", 1)}, 1, NULL, "axis=1");
    op_case(&s, 0, 0, OP_ARGMAX, (In[]){IN(DT_F32, G_SMALL, 8, 10)}, 1, (Attr[]){attr_int("axis", 1)}, 1,
            NULL, "ties");
    op_case(&s, 0, 0, OP_ARGMAX, (In[]){IN(DT_F32, G_SIGNED, 1)}, 1, (Attr[]){attr_int("axis", 0)}, 1,
            NULL, "one element");
    CONFORMANCE_RUN(&s);
}

Test(conformance, indexing_and_sources) {
    Suite s;
    suite_init(&s, "index", 16);
    /* one_hot: out-of-range indices (-1, depth) give zero rows */
    op_case(&s, 0, 0, OP_ONE_HOT, (In[]){IDX(-1, 5, 5)}, 1, (Attr[]){attr_int("depth", 4)}, 1, NULL,
            "depth=4");
    op_case(&s, 0, 0, OP_ONE_HOT, (In[]){IDX(0, 7, 2, 3)}, 1,
            (Attr[]){attr_int("depth", 7), attr_dtype("dtype", DT_I32)}, 2, NULL, "depth=7 i32");
    op_case(&s, 0, 0, OP_ONE_HOT, (In[]){IDX(0, 10, 2)}, 1,
            (Attr[]){attr_int("depth", 10), attr_dtype("dtype", DT_F32)}, 2, NULL, "depth=10");
    op_case(&s, 0, 0, OP_ONE_HOT, (In[]){(In){SC(DT_I32), G_INT, 0, 3}}, 1, (Attr[]){attr_int("depth", 3)}, 1,
            NULL, "scalar");
    /* gather */
    op_case(&s, 0, 0, OP_GATHER, (In[]){IN(DT_F32, G_SIGNED, 3, 5), IDX(0, 5, 3)}, 2, NULL, 0, NULL, NULL);
    op_case(&s, 0, 0, OP_GATHER, (In[]){IN(DT_F32, G_SIGNED, 2, 3, 11), IDX(0, 11, 2, 3)}, 2, NULL, 0, NULL,
            NULL);
    op_case(&s, 0, 0, OP_GATHER, (In[]){IN(DT_F32, G_SIGNED, 7), (In){SC(DT_I32), G_INT, 0, 7}}, 2, NULL, 0,
            NULL, "scalar index");
    op_case(&s, 0, 0, OP_GATHER, (In[]){IDX(-9, 9, 4, 1), IDX(0, 1, 4)}, 2, NULL, 0, NULL, "i32");
    /* iota along every axis, f32 and i32 */
    for (int ax = 0; ax < 3; ax++) {
        Type f = TY(DT_F32, 3, 5, 7), i = TY(DT_I32, 2, 3, 11);
        op_case(&s, 0, 0, OP_IOTA, NULL, 0, (Attr[]){attr_int("axis", ax)}, 1, &f, "f32");
        op_case(&s, 0, 0, OP_IOTA, NULL, 0, (Attr[]){attr_int("axis", ax)}, 1, &i, "i32");
    }
    Type one = TY(DT_F32, 1);
    op_case(&s, 0, 0, OP_IOTA, NULL, 0, (Attr[]){attr_int("axis", 0)}, 1, &one, NULL);
    /* random numbers from a key (seed, step) */
    for (int sh = 0; sh < 3; sh++) {
        Type t = shape_of(DT_F32, sh);
        In key = IDX(0, 100000, 2);
        op_case(&s, ELEM, ELEM, OP_RANDOM_UNIFORM, &key, 1, (Attr[]){attr_int("stream", 0)}, 1, &t, NULL);
        op_case(&s, ELEM, ELEM, OP_RANDOM_NORMAL, &key, 1, (Attr[]){attr_int("stream", 7)}, 1, &t,
                "stream=7");
        op_case(&s, 0, 0, OP_RANDOM_BERNOULLI, &key, 1,
                (Attr[]){attr_int("stream", 3), attr_float("p", 0.3)}, 2, &t, "p=0.3");
    }
    Type t64 = TY(DT_F64, 4, 5);
    In key = IDX(0, 100000, 2);
    op_case(&s, 1e-12, 1e-12, OP_RANDOM_NORMAL, &key, 1, (Attr[]){attr_int("stream", 1)}, 1, &t64, "f64");
    op_case(&s, 0, 0, OP_RANDOM_UNIFORM, &key, 1, (Attr[]){attr_int("stream", 4294967295LL)}, 1, &t64,
            "f64 stream=2^32-1");
    /* constants: splat and data */
    Type c35 = TY(DT_F32, 3, 5), c23 = TY(DT_F32, 2, 3), i23 = TY(DT_I32, 2, 3);
    static const double data[] = {1.5, -2, 3.25, 0, 1e-3, 7};
    op_case(&s, 0, 0, OP_CONSTANT, NULL, 0, (Attr[]){attr_float("value", 2.5)}, 1, &c35, "splat");
    op_case(&s, 0, 0, OP_CONSTANT, NULL, 0, (Attr[]){attr_floats("data", data, 6)}, 1, &c23, "data");
    op_case(&s, 0, 0, OP_CONSTANT, NULL, 0, (Attr[]){attr_floats("data", data, 6)}, 1, &i23, "data i32");
    CONFORMANCE_RUN(&s);
}

Test(conformance, matmul) {
    Suite s;
    suite_init(&s, "matmul", 17);
    struct {
        In a, b;
        double k;
    } mm[] = {{IN(DT_F32, G_SIGNED, 3, 5), IN(DT_F32, G_SIGNED, 5, 7), 5},
              {IN(DT_F32, G_SIGNED, 1, 1), IN(DT_F32, G_SIGNED, 1, 1), 1},
              {IN(DT_F32, G_SIGNED, 3, 17), IN(DT_F32, G_SIGNED, 17, 1), 17},
              {IN(DT_F32, G_SIGNED, 1, 33), IN(DT_F32, G_SIGNED, 33, 9), 33},
              {IN(DT_F32, G_SIGNED, 2, 3, 4, 5), IN(DT_F32, G_SIGNED, 2, 3, 5, 6), 5},
              {IN(DT_F32, G_SIGNED, 4, 2, 9), IN(DT_F32, G_SIGNED, 4, 9, 3), 9},
              {IN(DT_F32, G_SIGNED, 2, 70), IN(DT_F32, G_SIGNED, 70, 130), 70},
              {IN(DT_F64, G_SIGNED, 3, 5), IN(DT_F64, G_SIGNED, 5, 7), 5}};
    for (size_t k = 0; k < sizeof mm / sizeof mm[0]; k++) {
        double t = mm[k].a.t.dtype == DT_F64 ? 1e-12 : sum_tol(mm[k].k);
        op_case(&s, t, t, OP_MATMUL, (In[]){mm[k].a, mm[k].b}, 2, NULL, 0, NULL, NULL);
    }
    CONFORMANCE_RUN(&s);
}

static int64_t conv_out(int64_t h, int64_t k, int64_t s, int64_t p) { return (h + 2 * p - k) / s + 1; }

Test(conformance, convolution) {
    Suite s;
    suite_init(&s, "conv", 18);
    struct {
        int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw;
    } cv[] = {{2, 3, 9, 11, 4, 3, 3, 2, 2, 1, 1},
              {1, 1, 5, 5, 2, 5, 5, 1, 1, 2, 2},
              {2, 2, 7, 8, 3, 2, 3, 2, 1, 0, 1},
              {1, 4, 6, 6, 5, 1, 1, 1, 1, 0, 0},
              {2, 1, 10, 9, 3, 3, 3, 2, 2, 0, 0}};
    for (size_t k = 0; k < sizeof cv / sizeof cv[0]; k++) {
        int64_t oh = conv_out(cv[k].h, cv[k].kh, cv[k].sh, cv[k].ph),
                ow = conv_out(cv[k].w, cv[k].kw, cv[k].sw, cv[k].pw);
        In x = IN(DT_F32, G_SIGNED, cv[k].n, cv[k].c, cv[k].h, cv[k].w);
        In w = IN(DT_F32, G_SIGNED, cv[k].o, cv[k].c, cv[k].kh, cv[k].kw);
        In dy = IN(DT_F32, G_SIGNED, cv[k].n, cv[k].o, oh, ow);
        Attr st = INTS("stride", cv[k].sh, cv[k].sw), pd = INTS("padding", cv[k].ph, cv[k].pw);
        char note[64];
        snprintf(note, sizeof note, "stride=%lld,%lld pad=%lld,%lld", (long long)cv[k].sh,
                 (long long)cv[k].sw, (long long)cv[k].ph, (long long)cv[k].pw);
        double kf = (double)(cv[k].c * cv[k].kh * cv[k].kw), kd = (double)(cv[k].o * cv[k].kh * cv[k].kw),
               kw = (double)(cv[k].n * oh * ow);
        op_case(&s, sum_tol(kf), sum_tol(kf), OP_CONV2D, (In[]){x, w}, 2, (Attr[]){st, pd}, 2, NULL, note);
        Attr is = INTS("input_shape", cv[k].n, cv[k].c, cv[k].h, cv[k].w);
        op_case(&s, sum_tol(kd), sum_tol(kd), OP_CONV2D_BWD_DATA, (In[]){dy, w}, 2, (Attr[]){st, pd, is}, 3,
                NULL, note);
        Attr ks = INTS("kernel", cv[k].kh, cv[k].kw);
        op_case(&s, sum_tol(kw), sum_tol(kw), OP_CONV2D_BWD_FILTER, (In[]){x, dy}, 2, (Attr[]){st, pd, ks}, 3,
                NULL, note);
    }
    CONFORMANCE_RUN(&s);
}

Test(conformance, pooling) {
    Suite s;
    suite_init(&s, "pool", 19);
    struct {
        int64_t n, c, h, w, kh, kw, sh, sw, ph, pw;
    } pl[] = {{2, 3, 9, 11, 3, 3, 2, 2, 1, 1},
              {2, 2, 8, 8, 2, 2, 2, 2, 0, 0},
              {1, 2, 7, 9, 3, 2, 1, 2, 1, 0},
              {1, 1, 5, 5, 5, 5, 1, 1, 2, 2},
              {2, 3, 6, 7, 1, 1, 1, 1, 0, 0}};
    for (size_t k = 0; k < sizeof pl / sizeof pl[0]; k++) {
        int64_t oh = conv_out(pl[k].h, pl[k].kh, pl[k].sh, pl[k].ph),
                ow = conv_out(pl[k].w, pl[k].kw, pl[k].sw, pl[k].pw);
        Attr ks = INTS("kernel", pl[k].kh, pl[k].kw), st = INTS("stride", pl[k].sh, pl[k].sw),
             pd = INTS("padding", pl[k].ph, pl[k].pw);
        char note[64];
        snprintf(note, sizeof note, "k=%lld,%lld s=%lld,%lld p=%lld,%lld", (long long)pl[k].kh,
                 (long long)pl[k].kw, (long long)pl[k].sh, (long long)pl[k].sw, (long long)pl[k].ph,
                 (long long)pl[k].pw);
        In x = IN(DT_F32, G_DISTINCT, pl[k].n, pl[k].c, pl[k].h, pl[k].w);
        In xt = IN(DT_F32, G_SMALL, pl[k].n, pl[k].c, pl[k].h, pl[k].w); /* ties: first max wins */
        In g = IN(DT_F32, G_SIGNED, pl[k].n, pl[k].c, pl[k].h, pl[k].w);
        In dy = IN(DT_F32, G_SIGNED, pl[k].n, pl[k].c, oh, ow);
        double kk = (double)(pl[k].kh * pl[k].kw);
        op_case(&s, 0, 0, OP_MAXPOOL2D, &x, 1, (Attr[]){ks, st, pd}, 3, NULL, note);
        op_case(&s, 0, 0, OP_MAXPOOL2D, &xt, 1, (Attr[]){ks, st, pd}, 3, NULL, note);
        op_case(&s, sum_tol(kk), sum_tol(kk), OP_MAXPOOL2D_BWD, (In[]){x, dy}, 2, (Attr[]){ks, st, pd}, 3, NULL,
                note);
        op_case(&s, sum_tol(kk), sum_tol(kk), OP_MAXPOOL2D_BWD, (In[]){xt, dy}, 2, (Attr[]){ks, st, pd}, 3,
                NULL, note);
        op_case(&s, 0, 0, OP_MAXPOOL2D_SELECT, (In[]){x, g}, 2, (Attr[]){ks, st, pd}, 3, NULL, note);
        op_case(&s, 0, 0, OP_MAXPOOL2D_SELECT, (In[]){xt, g}, 2, (Attr[]){ks, st, pd}, 3, NULL, note);
        /* avgpool2d: padding counted in the divisor (the default, attribute
         * absent) and, when padded, not (count_include_pad = 0) */
        Attr is = INTS("input_shape", pl[k].n, pl[k].c, pl[k].h, pl[k].w);
        bool padded = pl[k].ph || pl[k].pw;
        for (int cip = padded ? 0 : 1; cip < 2; cip++) {
            Attr a[5] = {ks, st, pd, attr_int("count_include_pad", 0)};
            int na = cip ? 3 : 4;
            char cnote[96];
            snprintf(cnote, sizeof cnote, "%s count_include_pad=%d", note, cip);
            op_case(&s, sum_tol(kk), sum_tol(kk), OP_AVGPOOL2D, &g, 1, a, na, NULL, cnote);
            a[na] = is;
            op_case(&s, sum_tol(kk), sum_tol(kk), OP_AVGPOOL2D_BWD, &dy, 1, a, na + 1, NULL, cnote);
        }
    }
    /* avgpool with a window that does not tile the input */
    op_case(&s, sum_tol(9), sum_tol(9), OP_AVGPOOL2D, (In[]){IN(DT_F32, G_SIGNED, 2, 2, 8, 9)}, 1,
            (Attr[]){INTS("kernel", 3, 3), INTS("stride", 2, 2)}, 2, NULL, "k=3 s=2");
    op_case(&s, sum_tol(9), sum_tol(9), OP_AVGPOOL2D_BWD, (In[]){IN(DT_F32, G_SIGNED, 2, 2, 3, 4)}, 1,
            (Attr[]){INTS("kernel", 3, 3), INTS("stride", 2, 2), INTS("input_shape", 2, 2, 8, 9)}, 3, NULL,
            "k=3 s=2");
    CONFORMANCE_RUN(&s);
}

/* Small compositions: complex heads with epilogues (the fuse pass's head
 * absorption), reductions of products, softmax, views of views, and the
 * program builder's corner cases (an input as output, one value as two
 * outputs). */
/* Concats wider than the fuse pass fuses (FUSE_MAX_CONCAT): their own
 * groups, run in parts of 8 operands (codegen/lower.h). Operands are
 * slices (views, materialised first), computed values, and one buffer given
 * twice; the parts are 8, 8 and 3 operands, then 8 and 4 along axis 0. */
static void wide_concat_cases(Suite *s) {
    Builder *b = case_begin(s, ELEM, ELEM, "wide concat axis=1, 19 operands, then * 2");
    int a = case_input(s, TY(DT_F32, 3, 40), G_SIGNED, 0, 0), ops[19];
    for (int i = 0, at = 0; i < 19; i++) {
        int w = i % 3 + 1;
        Attr sa[3] = {INTS("start", 0, at), INTS("stop", 3, at + w), INTS("step", 1, 1)};
        const char *name = arena_printf(s->m->arena, "s%d", i);
        ops[i] = b_node(b, OP_SLICE, name, &a, 1, sa, 3);
        if (i % 4 == 1) ops[i] = b_unary(b, OP_NEG, arena_printf(s->m->arena, "n%d", i), ops[i]);
        at += w;
    }
    ops[17] = ops[3]; /* an operand twice, across parts */
    int cc = b_node(b, OP_CONCAT, "cc", ops, 19, (Attr[]){attr_int("axis", 1)}, 1);
    int y = b_binary(b, OP_MUL, "y", cc, b_const(b, "two", 2, *b_type(b, cc)));
    case_end(s, y);
    b = case_begin(s, 0, 0, "wide concat axis=0, 12 operands, an output");
    a = case_input(s, TY(DT_F32, 6, 2, 5), G_SIGNED, 0, 0);
    int c = case_input(s, TY(DT_F32, 2, 2, 5), G_SIGNED, 0, 0);
    for (int i = 0; i < 12; i++) {
        Attr sa[3] = {INTS("start", i % 6, 0, 0), INTS("stop", i % 6 + 1, 2, 5), INTS("step", 1, 1, 1)};
        ops[i] = b_node(b, OP_SLICE, arena_printf(s->m->arena, "r%d", i), &a, 1, sa, 3);
    }
    ops[5] = c, ops[9] = c; /* two rows each */
    y = b_node(b, OP_CONCAT, "y", ops, 12, (Attr[]){attr_int("axis", 0)}, 1);
    case_end(s, y);
}

Test(conformance, compositions) {
    Suite s;
    suite_init(&s, "compose", 20);
    Builder *b;
    int a, w, c, y;
    /* relu(matmul(a, w) + c) */
    b = case_begin(&s, sum_tol(17), sum_tol(17), "relu(matmul + c)");
    a = case_input(&s, TY(DT_F32, 3, 17), G_SIGNED, 0, 0);
    w = case_input(&s, TY(DT_F32, 17, 5), G_SIGNED, 0, 0);
    c = case_input(&s, TY(DT_F32, 3, 5), G_SIGNED, 0, 0);
    y = b_unary(b, OP_RELU, "y", b_binary(b, OP_ADD, "s", b_node(b, OP_MATMUL, "mm", (int[]){a, w}, 2, NULL, 0), c));
    case_end(&s, y);
    /* relu(conv2d(x, w) + broadcast(bias)) */
    b = case_begin(&s, sum_tol(27), sum_tol(27), "relu(conv2d + bias)");
    a = case_input(&s, TY(DT_F32, 2, 3, 9, 11), G_SIGNED, 0, 0);
    w = case_input(&s, TY(DT_F32, 4, 3, 3, 3), G_SIGNED, 0, 0);
    c = case_input(&s, TY(DT_F32, 4), G_SIGNED, 0, 0);
    {
        Attr at[2] = {INTS("stride", 2, 2), INTS("padding", 1, 1)};
        int cv = b_node(b, OP_CONV2D, "cv", (int[]){a, w}, 2, at, 2);
        Type ct = *b_type(b, cv);
        int bb = b_bcast_axis(b, "bias", c, &ct, 1);
        y = b_unary(b, OP_RELU, "y", b_binary(b, OP_ADD, "s", cv, bb));
    }
    case_end(&s, y);
    /* maxpool2d(relu(x)) * 2 and maxpool2d_bwd feeding a product */
    b = case_begin(&s, ELEM, ELEM, "maxpool(x) * exp(maxpool(x))");
    a = case_input(&s, TY(DT_F32, 2, 3, 8, 8), G_DISTINCT, 0, 0);
    {
        Attr at[3] = {INTS("kernel", 2, 2), INTS("stride", 2, 2), INTS("padding", 0, 0)};
        int mp = b_node(b, OP_MAXPOOL2D, "mp", &a, 1, at, 3);
        y = b_binary(b, OP_MUL, "y", mp, b_unary(b, OP_EXP, "e", mp));
    }
    case_end(&s, y);
    /* sum over axis 1 of a*b (a reduction absorbing its producer) */
    b = case_begin(&s, sum_tol(13), sum_tol(13), "reduce_sum(a*b)");
    a = case_input(&s, TY(DT_F32, 2, 13, 5), G_SIGNED, 0, 0);
    w = case_input(&s, TY(DT_F32, 2, 13, 5), G_SIGNED, 0, 0);
    y = b_reduce(b, OP_REDUCE_SUM, "y", b_binary(b, OP_MUL, "p", a, w), DIMS(1), 1, false);
    case_end(&s, y);
    /* softmax along the last axis of [3, 7, 11] */
    b = case_begin(&s, 1e-5 * sqrt(11), 1e-5 * sqrt(11), "softmax");
    a = case_input(&s, TY(DT_F32, 3, 7, 11), G_SIGNED, 0, 0);
    {
        Type t = *b_type(b, a);
        int mx = b_reduce(b, OP_REDUCE_MAX, "mx", a, DIMS(2), 1, true);
        int e = b_unary(b, OP_EXP, "e", b_binary(b, OP_SUB, "sh", a, b_broadcast(b, "mxb", mx, &t)));
        int sm = b_reduce(b, OP_REDUCE_SUM, "sm", e, DIMS(2), 1, true);
        y = b_binary(b, OP_DIV, "y", e, b_broadcast(b, "smb", sm, &t));
    }
    case_end(&s, y);
    /* transpose(slice(pad(x))) + reshape(concat) */
    b = case_begin(&s, ELEM, ELEM, "view chain");
    a = case_input(&s, TY(DT_F32, 4, 6), G_SIGNED, 0, 0);
    w = case_input(&s, TY(DT_F32, 3, 2), G_SIGNED, 0, 0);
    {
        Attr pa[3] = {INTS("lo", 1, 0), INTS("hi", 0, 2), attr_float("value", 0.5)};
        int p = b_node(b, OP_PAD, "p", &a, 1, pa, 3); /* [5, 8] */
        Attr sa[3] = {INTS("start", 0, 1), INTS("stop", 5, 8), INTS("step", 2, 3)};
        int sl = b_node(b, OP_SLICE, "sl", &p, 1, sa, 3); /* [3, 3] */
        Attr ta = INTS("perm", 1, 0);
        int tr = b_node(b, OP_TRANSPOSE, "tr", &sl, 1, &ta, 1); /* [3, 3] */
        Attr ca = attr_int("axis", 1);
        int cc = b_node(b, OP_CONCAT, "cc", (int[]){w, w}, 2, &ca, 1); /* [3, 4] */
        int sl2 = b_node(b, OP_SLICE, "sl2", &cc, 1,
                         (Attr[]){INTS("start", 0, 0), INTS("stop", 3, 3), INTS("step", 1, 1)}, 3);
        y = b_binary(b, OP_ADD, "y", tr, sl2);
    }
    case_end(&s, y);
    /* a reduction materialised and broadcast back: x - mean(x) */
    b = case_begin(&s, sum_tol(35), sum_tol(35), "x - mean(x)");
    a = case_input(&s, TY(DT_F32, 2, 5, 7), G_SIGNED, 0, 0);
    {
        Type t = *b_type(b, a);
        int sm = b_reduce(b, OP_REDUCE_SUM, "sm", a, DIMS(1, 2), 2, true);
        int mean = b_binary(b, OP_MUL, "mean", sm, b_const(b, "k", 1.0 / 35, *b_type(b, sm)));
        y = b_binary(b, OP_SUB, "y", a, b_broadcast(b, "mb", mean, &t));
    }
    case_end(&s, y);
    /* an input as the output, and one value as two outputs */
    b = case_begin(&s, 0, 0, "identity");
    a = case_input(&s, TY(DT_F32, 3, 5), G_SIGNED, 0, 0);
    case_end(&s, a);
    b = case_begin(&s, ELEM, ELEM, "one value, two outputs");
    a = case_input(&s, TY(DT_F32, 3, 5), G_SIGNED, 0, 0);
    y = b_unary(b, OP_EXP, "e", a);
    func_add_output(s.m, b->f, "y2", y);
    case_end(&s, y);
    b = case_begin(&s, ELEM, ELEM, "param-free constant chain");
    a = case_input(&s, TY(DT_F32, 3, 5), G_SIGNED, 0, 0);
    {
        Type t = *b_type(b, a);
        int io = b_source(b, OP_IOTA, "io", NULL, 0, (Attr[]){attr_int("axis", 1)}, 1, t);
        y = b_binary(b, OP_MUL, "y", a, b_binary(b, OP_ADD, "z", io, b_const(b, "one", 1, t)));
    }
    case_end(&s, y);
    wide_concat_cases(&s);
    CONFORMANCE_RUN(&s);
}

