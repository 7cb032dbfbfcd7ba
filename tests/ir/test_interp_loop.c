/* loop(carry, captures...) {body, trips}: interpretation against closed
 * forms and against the same iteration in C (a PGD attack whose body uses
 * grad, lowered by the pipeline), the shape rule's messages for bad body
 * signatures, the text round trip, and autodiff's refusal to differentiate
 * a loop that is not behind stop_gradient. */
#include "tests/ir/interp_test_util.h"

#include "ir/builder.h"
#include "ir/parse.h"
#include "ir/print.h"
#include "ir/shape.h"
#include "passes/pass.h"

static const Type V3 = {DT_F64, 1, {3}};

static void expect_out(const NamedValue *o, const double *want, int64_t n) {
    Value v = {o->type, o->data};
    expect_vals(&v, want, n, 0);
}
#define EXPECT_OUT(o, ...) expect_out((o), D(__VA_ARGS__), NV(__VA_ARGS__))

typedef struct {
    Module *m;
    Diag d;
} Ctx;

static Builder func(Ctx *c, const char *name) {
    return (Builder){c->m, module_add_func(c->m, name), &c->d};
}

static int loop_node(Builder *b, const char *name, const int *ins, int nin, const char *body,
                     int64_t trips) {
    Attr a[2] = {attr_str("body", body), attr_int("trips", trips)};
    return b_node(b, OP_LOOP, name, ins, nin, a, 2);
}

static int full(Builder *b, double v, const Type *like) {
    Type t = *like;
    return b_broadcast(b, NULL, b_const(b, NULL, v, type_scalar(t.dtype)), &t);
}

/* body(i, c, k) = 2 c + k */
static void affine_body(Ctx *c, const char *name) {
    Builder b = func(c, name);
    b_input(&b, "i", type_scalar(DT_I32));
    int x = b_input(&b, "c", V3), k = b_input(&b, "k", V3);
    int y = b_binary(&b, OP_ADD, "next", b_binary(&b, OP_MUL, "twice", x, full(&b, 2, &V3)), k);
    func_add_output(c->m, b.f, "c", y);
}

/* body(i, c) = c + i */
static void counter_body(Ctx *c, const char *name) {
    Builder b = func(c, name);
    int i = b_input(&b, "i", type_scalar(DT_I32));
    int x = b_input(&b, "c", V3);
    Attr dt = attr_dtype("dtype", DT_F64);
    int fi = b_node(&b, OP_CAST, "fi", &i, 1, &dt, 1);
    func_add_output(c->m, b.f, "c", b_binary(&b, OP_ADD, "next", x, b_broadcast(&b, "fi.b", fi, &V3)));
}

static Ctx ctx_new(void) {
    Ctx c = {.m = module_new("loops")};
    diag_init(&c.d);
    return c;
}

/* Runs function fname on inputs x0 (and k) of type V3. */
static NamedValue *run(Ctx *c, const char *fname, const double *x0, const double *k, int *nout) {
    NamedValue in[2] = {{"x0", V3, (double *)x0}, {"k", V3, (double *)k}};
    NamedValue *out = NULL;
    Function *f = module_find_func(c->m, fname);
    cr_assert(f);
    cr_assert(interp_run(c->m, f, &(InterpOptions){INTERP_F64}, in, k ? 2 : 1, NULL, 0, &out,
                         nout, &c->d), "%s", c->d.msg);
    return out;
}

/* main(x0, k) = loop(x0, k) {body, trips} */
static void affine_main(Ctx *c, const char *body, int64_t trips) {
    Builder b = func(c, "main");
    int ins[2] = {b_input(&b, "x0", V3), b_input(&b, "k", V3)};
    int l = loop_node(&b, "l", ins, 2, body, trips);
    cr_assert(l >= 0, "%s", c->d.msg);
    func_add_output(c->m, b.f, "y", l);
}

Test(loop, affine_body_matches_closed_form) {
    Ctx c = ctx_new();
    affine_body(&c, "body");
    affine_main(&c, "body", 5);
    const double x0[3] = {1, -2, 0.5}, k[3] = {0.25, 3, -1};
    int n;
    NamedValue *out = run(&c, "main", x0, k, &n);
    for (int j = 0; j < 3; j++) /* c_t = 2^t c_0 + (2^t - 1) k */
        expect_close(out[0].data[j], 32 * x0[j] + 31 * k[j], 1e-15, "carry");
    named_values_free(out, n);
    module_free(c.m);
}

Test(loop, zero_trips_is_the_carry) {
    Ctx c = ctx_new();
    affine_body(&c, "body");
    affine_main(&c, "body", 0);
    const double x0[3] = {1, -2, 0.5}, k[3] = {9, 9, 9};
    int n;
    NamedValue *out = run(&c, "main", x0, k, &n);
    EXPECT_OUT(&out[0], 1, -2, 0.5);
    named_values_free(out, n);
    module_free(c.m);
}

Test(loop, body_sees_the_trip_index) {
    Ctx c = ctx_new();
    counter_body(&c, "count");
    Builder b = func(&c, "main");
    int x = b_input(&b, "x0", V3);
    func_add_output(c.m, b.f, "y", loop_node(&b, "l", &x, 1, "count", 5));
    cr_assert(!diag_failed(&c.d), "%s", c.d.msg);
    const double x0[3] = {1, 2, 3};
    int n;
    NamedValue *out = run(&c, "main", x0, NULL, &n);
    EXPECT_OUT(&out[0], 11, 12, 13); /* + 0+1+2+3+4 */
    named_values_free(out, n);
    module_free(c.m);
}

/* outer body(i, c) = loop(c) {count, 3}: each outer trip adds 0+1+2. */
Test(loop, nested_loops) {
    Ctx c = ctx_new();
    counter_body(&c, "count");
    Builder ob = func(&c, "outer");
    b_input(&ob, "i", type_scalar(DT_I32));
    int x = b_input(&ob, "c", V3);
    func_add_output(c.m, ob.f, "c", loop_node(&ob, "inner", &x, 1, "count", 3));
    Builder b = func(&c, "main");
    int x0 = b_input(&b, "x0", V3);
    func_add_output(c.m, b.f, "y", loop_node(&b, "l", &x0, 1, "outer", 4));
    cr_assert(!diag_failed(&c.d), "%s", c.d.msg);
    int n;
    NamedValue *out = run(&c, "main", (double[]){0, 1, 2}, NULL, &n);
    EXPECT_OUT(&out[0], 12, 13, 14);
    named_values_free(out, n);
    module_free(c.m);
}

/* ---- bad bodies ---- */

static void expect_loop_error(void (*make_body)(Ctx *), const char *want) {
    Ctx c = ctx_new();
    make_body(&c);
    Builder b = func(&c, "main");
    int ins[2] = {b_input(&b, "x0", V3), b_input(&b, "k", V3)};
    cr_assert(loop_node(&b, "pgd", ins, 2, "body", 3) < 0, "loop built");
    cr_expect(strstr(c.d.msg, "node 'pgd' (loop)"), "%s", c.d.msg);
    cr_expect(strstr(c.d.msg, want), "expected '%s' in: %s", want, c.d.msg);
    module_free(c.m);
}

static void no_body(Ctx *c) { func(c, "other"); }

static void too_few_inputs(Ctx *c) {
    Builder b = func(c, "body");
    b_input(&b, "i", type_scalar(DT_I32));
    func_add_output(c->m, b.f, "c", b_input(&b, "c", V3));
}

static void float_counter(Ctx *c) {
    Builder b = func(c, "body");
    b_input(&b, "i", type_scalar(DT_F64));
    int x = b_input(&b, "c", V3);
    b_input(&b, "k", V3);
    func_add_output(c->m, b.f, "c", x);
}

static void wrong_carry(Ctx *c) {
    Builder b = func(c, "body");
    b_input(&b, "i", type_scalar(DT_I32));
    b_input(&b, "c", type_make(DT_F64, 1, (int64_t[]){4}));
    func_add_output(c->m, b.f, "c", b_input(&b, "k", V3));
}

static void wrong_capture(Ctx *c) {
    Builder b = func(c, "body");
    b_input(&b, "i", type_scalar(DT_I32));
    int x = b_input(&b, "c", V3);
    b_input(&b, "k", type_make(DT_F32, 1, (int64_t[]){3}));
    func_add_output(c->m, b.f, "c", x);
}

static void two_outputs(Ctx *c) {
    Builder b = func(c, "body");
    b_input(&b, "i", type_scalar(DT_I32));
    int x = b_input(&b, "c", V3), k = b_input(&b, "k", V3);
    func_add_output(c->m, b.f, "c", x);
    func_add_output(c->m, b.f, "k", k);
}

static void wrong_output(Ctx *c) {
    Builder b = func(c, "body");
    b_input(&b, "i", type_scalar(DT_I32));
    b_input(&b, "c", V3);
    b_input(&b, "k", V3);
    int64_t ax = 0;
    func_add_output(c->m, b.f, "c", b_reduce(&b, OP_REDUCE_SUM, "s", 1, &ax, 1, false));
}

Test(loop, bad_body_signatures) {
    expect_loop_error(no_body, "no function 'body' in the module");
    expect_loop_error(too_few_inputs, "body function 'body' must have 3 inputs (i, carry, 1 captures), has 2");
    expect_loop_error(float_counter, "body function 'body': input 0 ('i') must be the trip counter, i32[], got f64[]");
    expect_loop_error(wrong_carry, "input 1 ('c') must be the carry's type, f64[3], got f64[4]");
    expect_loop_error(wrong_capture, "input 2 ('k') must be its capture's type, f64[3], got f32[3]");
    expect_loop_error(two_outputs, "must have exactly one output (the new carry), has 2");
    expect_loop_error(wrong_output, "output 'c' must have the carry's type f64[3], got f64[]");
}

Test(loop, body_cannot_be_its_own_function) {
    Ctx c = ctx_new();
    Builder b = func(&c, "self");
    b_input(&b, "i", type_scalar(DT_I32));
    int x = b_input(&b, "c", V3);
    cr_assert(loop_node(&b, "l", &x, 1, "self", 2) < 0);
    cr_expect(strstr(c.d.msg, "the loop body 'self' is the function containing the loop"), "%s",
              c.d.msg);
    module_free(c.m);
}

/* Unverified IR can still recurse through two functions: the interpreter
 * stops at its nesting limit instead of overflowing the stack. */
Test(loop, mutual_recursion_is_an_error_not_a_crash) {
    Module *m = module_new("rec");
    const char *names[2] = {"f", "g"};
    Type i32 = type_scalar(DT_I32);
    for (int k = 0; k < 2; k++) {
        Function *f = module_add_func(m, names[k]);
        func_add_node(m, f, OP_INPUT, "i", NULL, 0, NULL, 0, i32);
        int x = func_add_node(m, f, OP_INPUT, "c", NULL, 0, NULL, 0, V3);
        Attr a[2] = {attr_str("body", names[1 - k]), attr_int("trips", 1)};
        func_add_output(m, f, "c", func_add_node(m, f, OP_LOOP, "l", &x, 1, a, 2, V3));
    }
    Function *main = module_add_func(m, "main");
    int x = func_add_node(m, main, OP_INPUT, "x0", NULL, 0, NULL, 0, V3);
    Attr a[2] = {attr_str("body", "f"), attr_int("trips", 1)};
    func_add_output(m, main, "y", func_add_node(m, main, OP_LOOP, "l", &x, 1, a, 2, V3));
    NamedValue in = {"x0", V3, (double[]){1, 2, 3}}, *out;
    int n;
    Diag d;
    diag_init(&d);
    cr_assert(!interp_run(m, main, NULL, &in, 1, NULL, 0, &out, &n, &d));
    cr_expect(strstr(d.msg, "loops nest deeper than 32"), "%s", d.msg);
    module_free(m);
}

Test(loop, eval_node_refuses_a_loop) {
    Value x = val(V3, D(1, 2, 3));
    Attr a[2] = {attr_str("body", "b"), attr_int("trips", 1)};
    Diag d = eval_fail(OP_LOOP, a, 2, &x, 1, V3);
    cr_expect(strstr(d.msg, "node 'y' (loop)") && strstr(d.msg, "use interp_run"), "%s", d.msg);
    value_free(&x);
}

/* ---- text ---- */

#define LOOP_TEXT \
    "module @m batch=1\n" \
    "\n" \
    "func @pgd.body {\n" \
    "  %i = input() : i32[]\n" \
    "  %x = input() : f64[3]\n" \
    "  %c = input() : f64[3]\n" \
    "  %y = add(%x, %c) : f64[3]\n" \
    "  return x=%y\n" \
    "}\n" \
    "\n" \
    "func @main {\n" \
    "  %x0 = input() : f64[3]\n" \
    "  %c = input() : f64[3]\n" \
    "  %l = loop(%x0, %c) {body=\"pgd.body\", trips=40} : f64[3]\n" \
    "  return y=%l\n" \
    "}\n"

Test(loop, text_round_trips_and_runs) {
    Diag d;
    diag_init(&d);
    Module *m = ir_parse(LOOP_TEXT, "loop.ir", &d);
    cr_assert(m, "%s", d.msg);
    cr_assert(ir_verify(m, &d), "%s", d.msg);
    char *s = ir_module_to_string(m);
    cr_expect_str_eq(s, LOOP_TEXT);
    Module *m2 = ir_parse(s, "again.ir", &d);
    cr_assert(m2, "%s", d.msg);
    char *s2 = ir_module_to_string(m2);
    cr_expect_str_eq(s2, s);
    NamedValue in[2] = {{"x0", V3, (double[]){1, 2, 3}}, {"c", V3, (double[]){0.5, -1, 0}}}, *out;
    int n;
    cr_assert(interp_run(m2, module_find_func(m2, "main"), &(InterpOptions){INTERP_F64}, in, 2,
                         NULL, 0, &out, &n, &d), "%s", d.msg);
    EXPECT_OUT(&out[0], 21, -38, 3);
    named_values_free(out, n);
    free(s);
    free(s2);
    module_free(m);
    module_free(m2);
}

/* ---- PGD: a body with grad, lowered by the pipeline ---- */

enum { PN = 6, TRIPS = 9 };
static const double ALPHA = 0.03, EPS = 0.1;
static const Type VP = {DT_F64, 1, {PN}};

/* body(i, x, x0, w) = clip(x + alpha sign(grad(sum(w x^2), x)), x0 - eps, x0 + eps) */
static void pgd_body(Ctx *c) {
    Builder b = func(c, "pgd.body");
    b_input(&b, "i", type_scalar(DT_I32));
    int x = b_input(&b, "x", VP), x0 = b_input(&b, "x0", VP), w = b_input(&b, "w", VP);
    int wx2 = b_binary(&b, OP_MUL, "wx2", w, b_binary(&b, OP_MUL, "x2", x, x));
    int64_t ax = 0;
    int gins[2] = {b_reduce(&b, OP_REDUCE_SUM, "loss", wx2, &ax, 1, false), x};
    int g = b_node(&b, OP_GRAD, "g", gins, 2, NULL, 0);
    int step = b_binary(&b, OP_MUL, "step", b_unary(&b, OP_SIGN, "dir", g), full(&b, ALPHA, &VP));
    int e = full(&b, EPS, &VP);
    int lo = b_binary(&b, OP_SUB, "lo", x0, e), hi = b_binary(&b, OP_ADD, "hi", x0, e);
    int up = b_binary(&b, OP_ADD, "up", x, step);
    int y = b_binary(&b, OP_MIN, "clip_hi", b_binary(&b, OP_MAX, "clip_lo", up, lo), hi);
    func_add_output(c->m, b.f, "x", y);
}

/* main(x0, w): adv = stop_gradient(loop(x0, x0, w)); also the gradient of
 * sum(adv * x0) in x0, which autodiff must get without entering the loop. */
static void pgd_main(Ctx *c, bool detach) {
    Builder b = func(c, "main");
    int x0 = b_input(&b, "x0", VP), w = b_input(&b, "w", VP);
    int ins[3] = {x0, x0, w};
    int adv = loop_node(&b, "pgd", ins, 3, "pgd.body", TRIPS);
    if (detach) adv = b_unary(&b, OP_STOP_GRADIENT, "adv", adv);
    int64_t ax = 0;
    int l = b_reduce(&b, OP_REDUCE_SUM, "l", b_binary(&b, OP_MUL, "ax0", adv, x0), &ax, 1, false);
    int gins[2] = {l, x0};
    func_add_output(c->m, b.f, "adv", adv);
    func_add_output(c->m, b.f, "dl", b_node(&b, OP_GRAD, "dl", gins, 2, NULL, 0));
    cr_assert(!diag_failed(&c->d), "%s", c->d.msg);
}

static double sgn(double v) { return (v > 0) - (v < 0); }

Test(loop, pgd_matches_the_iteration_in_c) {
    Ctx c = ctx_new();
    pgd_body(&c);
    pgd_main(&c, true);
    PipelineOptions po = {.verify_each = true};
    cr_assert(pipeline_run(c.m, &po, &c.d), "%s", c.d.msg);
    double x0[PN] = {0.3, -0.2, 0.05, 1.1, -0.7, 0.0}, w[PN] = {1, -2, 0.5, -0.3, 2, 1};
    double x[PN];
    memcpy(x, x0, sizeof x);
    for (int t = 0; t < TRIPS; t++)
        for (int j = 0; j < PN; j++) {
            double v = x[j] + ALPHA * sgn(2 * w[j] * x[j]);
            x[j] = fmin(fmax(v, x0[j] - EPS), x0[j] + EPS);
        }
    NamedValue in[2] = {{"x0", VP, x0}, {"w", VP, w}}, *out;
    int n;
    cr_assert(interp_run(c.m, module_find_func(c.m, "main"), &(InterpOptions){INTERP_F64}, in, 2,
                         NULL, 0, &out, &n, &c.d), "%s", c.d.msg);
    for (int j = 0; j < PN; j++) {
        expect_close(out[0].data[j], x[j], 1e-15, "adv");
        expect_close(out[1].data[j], x[j], 1e-15, "d sum(adv x0) / d x0 = adv");
    }
    named_values_free(out, n);
    module_free(c.m);
}

Test(loop, differentiating_through_a_loop_is_an_error) {
    Ctx c = ctx_new();
    pgd_body(&c);
    pgd_main(&c, false);
    PipelineOptions po = {0};
    cr_assert(!pipeline_run(c.m, &po, &c.d));
    cr_expect(strstr(c.d.msg, "node 'pgd' (loop) is not differentiable: wrap its result in "
                              "stop_gradient"), "%s", c.d.msg);
    module_free(c.m);
}
