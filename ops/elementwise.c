/* The elementwise family: the elementwise primitives: unary (neg ... erf, not,
 * cast, stop_gradient), binary (add ... pow, and, or), compare (eq ... ge) and
 * select (semantics: ir/ops.h). Each section below is compiled into one
 * layer's library and ends with that layer's rows for these ops
 * (docs/architecture.md, "Folders and dependency direction"). */
#if defined(IGRC_OPS_IR)

#include "ir/op_rows.h"
#include "ir/scalar.h"

/* ---- shape rules; the float math (exp, log, ...) and add ... min take
 * the rule of their arity (ir/shape.c): float operand, numeric operands ---- */

static bool numeric_unary(Rule *r, Type *out) {
    const Type *x = r->in[0];
    *out = *x;
    return x->dtype != DT_BOOL || shape_fail_type(r, "expects a numeric operand", x);
}

static bool bool_unary(Rule *r, Type *out) {
    const Type *x = r->in[0];
    *out = *x;
    return x->dtype == DT_BOOL || shape_fail_type(r, "expects a bool operand", x);
}

static bool same_type(Rule *r, Type *out) {
    *out = *r->in[0];
    return true;
}

static bool cast_shape(Rule *r, Type *out) {
    *out = *r->in[0];
    out->dtype = (DType)node_int(r->n, "dtype", DT_F32);
    return true;
}

static bool bool_binary(Rule *r, Type *out) {
    if (!shape_same_operands(r, out)) return false;
    return r->in[0]->dtype == DT_BOOL || shape_fail_type(r, "expects bool operands", r->in[0]);
}

static bool compare_shape(Rule *r, Type *out) {
    if (!shape_same_operands(r, out)) return false;
    out->dtype = DT_BOOL;
    return true;
}

static bool float_binary(Rule *r, Type *out) {
    return shape_same_operands(r, out) && shape_need_float(r, r->in[0]);
}

static bool select_shape(Rule *r, Type *out) {
    const Type *c = r->in[0], *a = r->in[1], *b = r->in[2];
    if (c->dtype != DT_BOOL) return shape_fail_type(r, "condition must be bool", c);
    if (!type_equal(a, b)) return shape_fail_types(r, "branches differ", a, b);
    if (!type_same_shape(c, a)) return shape_fail_types(r, "condition and branches differ", c, a);
    *out = *a;
    return true;
}

/* ---- values (ir/scalar.h), in double; the interpreter's loops apply them
 * and then store the result in its dtype, which is also what makes cast
 * work: cast's value is the identity and storing as i32 truncates toward
 * zero, as bool gives x != 0, as f32 rounds (in INTERP_F32) ---- */

/* 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below: exp never overflows, so the
 * result is exactly 0 or 1 in the tails rather than NaN. */
static double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* log(1 + e^(beta x)) / beta; above beta x = 20 the correction
 * log1p(e^-20)/beta < 3e-9 is dropped and the result is x (PyTorch's
 * threshold), which also keeps exp from overflowing. */
static double softplus(double x, double beta) {
    double bx = beta * x;
    return bx > 20.0 ? x : log1p(exp(bx)) / beta;
}

static double neg_f(double x, double b) { (void)b; return -x; }
static double abs_f(double x, double b) { (void)b; return fabs(x); }
static double sign_f(double x, double b) { /* NaN stays NaN, -0 stays -0 */
    (void)b;
    return x > 0 ? 1.0 : x < 0 ? -1.0 : x;
}
static double exp_f(double x, double b) { (void)b; return exp(x); }
static double log_f(double x, double b) { (void)b; return log(x); }
static double sqrt_f(double x, double b) { (void)b; return sqrt(x); }
static double rsqrt_f(double x, double b) { (void)b; return 1.0 / sqrt(x); }
static double recip_f(double x, double b) { (void)b; return 1.0 / x; }
/* relu(NaN) = NaN, as in PyTorch, so a NaN is never hidden from the
 * training guard; relu(-0) = +0. */
static double relu_f(double x, double b) { (void)b; return x <= 0 ? 0.0 : x; }
static double sigmoid_f(double x, double b) { (void)b; return sigmoid(x); }
static double tanh_f(double x, double b) { (void)b; return tanh(x); }
static double erf_f(double x, double b) { (void)b; return erf(x); }
static double not_f(double x, double b) { (void)b; return x == 0; }
/* cast's value is x: storing in the result's dtype converts it */
static double identity_f(double x, double b) { (void)b; return x; }

/* int32 product modulo 2^32: the double product of two int32 values can
 * exceed 2^53 and lose the low bits the wrap keeps. */
static double mul_i32(double a, double b) {
    int64_t p = (int64_t)interp_wrap_i32(a) * (int64_t)interp_wrap_i32(b);
    return interp_wrap_i32((double)(p % 4294967296LL));
}

/* max/min propagate NaN (as torch.maximum does), unlike fmax/fmin. */
double ir_max_f64(double a, double b) { return isnan(a) ? a : isnan(b) ? b : a > b ? a : b; }
double ir_min_f64(double a, double b) { return isnan(a) ? a : isnan(b) ? b : a < b ? a : b; }

static double add_f(double a, double b, bool i) { (void)i; return a + b; } /* i32: exact, then wrapped */
static double sub_f(double a, double b, bool i) { (void)i; return a - b; }
static double mul_f(double a, double b, bool i32) { return i32 ? mul_i32(a, b) : a * b; }
/* IEEE division; for i32 the stored quotient truncates toward zero as C's
 * does (a double quotient of int32s never rounds across an integer) and
 * x / 0 stores 0. */
static double div_f(double a, double b, bool i) { (void)i; return a / b; }
static double max_f(double a, double b, bool i) { (void)i; return ir_max_f64(a, b); }
static double min_f(double a, double b, bool i) { (void)i; return ir_min_f64(a, b); }
static double pow_f(double a, double b, bool i) { (void)i; return pow(a, b); }
static double and_f(double a, double b, bool i) { (void)i; return a != 0 && b != 0; }
static double or_f(double a, double b, bool i) { (void)i; return a != 0 || b != 0; }
/* Comparisons are C's: any comparison with NaN is false except ne. */
static double eq_f(double a, double b, bool i) { (void)i; return a == b; }
static double ne_f(double a, double b, bool i) { (void)i; return a != b; }
static double lt_f(double a, double b, bool i) { (void)i; return a < b; }
static double le_f(double a, double b, bool i) { (void)i; return a <= b; }
static double gt_f(double a, double b, bool i) { (void)i; return a > b; }
static double ge_f(double a, double b, bool i) { (void)i; return a >= b; }

/* select(cond, a, b): a where cond is nonzero, else b. */
static bool k_select(const Node *n, const Value *in, Value *out, Diag *d) {
    for (int k = 0; k < 3; k++)
        if (!need_shape(n, in, k, &out->type, d)) return false;
    int64_t numel = type_numel(&out->type);
    for (int64_t i = 0; i < numel; i++)
        out->data[i] = in[0].data[i] != 0 ? in[1].data[i] : in[2].data[i];
    return true;
}

/* cast and stop_gradient compute nothing. */
static int64_t no_flops(const Function *f, const Node *n) {
    (void)f;
    (void)n;
    return 0;
}

const IrOpRow ops_elementwise_ir[] = {
    {OP_ROW(NEG, "neg", 1, 1, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = numeric_unary, .unary = neg_f},
    {OP_ROW(ABS, "abs", 1, 1, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = numeric_unary, .unary = abs_f},
    {OP_ROW(SIGN, "sign", 1, 1, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = numeric_unary, .unary = sign_f},
    {OP_ROW(EXP, "exp", 1, 1, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS), .unary = exp_f},
    {OP_ROW(LOG, "log", 1, 1, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS), .unary = log_f},
    {OP_ROW(SQRT, "sqrt", 1, 1, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS), .unary = sqrt_f},
    {OP_ROW(RSQRT, "rsqrt", 1, 1, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS), .unary = rsqrt_f},
    {OP_ROW(RECIP, "recip", 1, 1, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS), .unary = recip_f},
    {OP_ROW(RELU, "relu", 1, 1, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = numeric_unary, .unary = relu_f},
    {OP_ROW(SIGMOID, "sigmoid", 1, 1, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS), .unary = sigmoid_f},
    {OP_ROW(TANH, "tanh", 1, 1, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS), .unary = tanh_f},
    {OP_ROW(SOFTPLUS, "softplus", 1, 1, PK_ELEMWISE, OC_PRIMITIVE,
            ATTRS(A_FLOAT("beta", 1e-6, 1e6))), .unary = softplus},
    {OP_ROW(ERF, "erf", 1, 1, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS), .unary = erf_f},
    {OP_ROW(NOT, "not", 1, 1, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = bool_unary, .unary = not_f},
    {OP_ROW(CAST, "cast", 1, 1, PK_ELEMWISE, OC_PRIMITIVE, ATTRS(A_REQ_DTYPE("dtype"))),
     .shape = cast_shape, .unary = identity_f, .flops = no_flops},
    {OP_ROW(STOP_GRADIENT, "stop_gradient", 1, 1, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = same_type, .unary = identity_f, .flops = no_flops},
    {OP_ROW(ADD, "add", 2, 2, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS), .binary = add_f},
    {OP_ROW(SUB, "sub", 2, 2, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS), .binary = sub_f},
    {OP_ROW(MUL, "mul", 2, 2, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS), .binary = mul_f},
    {OP_ROW(DIV, "div", 2, 2, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS), .binary = div_f},
    {OP_ROW(MAX, "max", 2, 2, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS), .binary = max_f},
    {OP_ROW(MIN, "min", 2, 2, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS), .binary = min_f},
    {OP_ROW(POW, "pow", 2, 2, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = float_binary, .binary = pow_f},
    {OP_ROW(AND, "and", 2, 2, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = bool_binary, .binary = and_f},
    {OP_ROW(OR, "or", 2, 2, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = bool_binary, .binary = or_f},
    {OP_ROW(EQ, "eq", 2, 2, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = compare_shape, .binary = eq_f},
    {OP_ROW(NE, "ne", 2, 2, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = compare_shape, .binary = ne_f},
    {OP_ROW(LT, "lt", 2, 2, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = compare_shape, .binary = lt_f},
    {OP_ROW(LE, "le", 2, 2, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = compare_shape, .binary = le_f},
    {OP_ROW(GT, "gt", 2, 2, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = compare_shape, .binary = gt_f},
    {OP_ROW(GE, "ge", 2, 2, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = compare_shape, .binary = ge_f},
    {OP_ROW(SELECT, "select", 3, 3, PK_ELEMWISE, OC_PRIMITIVE, NO_ATTRS),
     .shape = select_shape, .kernel = k_select},
    IR_ROWS_END,
};

#elif defined(IGRC_OPS_PASSES)

#include <math.h>

#include "passes/peephole_rule.h"
#include "passes/vjp_rule.h"

/* ---- VJPs: the cotangent of operand i; the unary ones ignore i ---- */

/* Each rule: the cotangent of operand i; the unary ones ignore i. */
static int g_neg(VjpCtx *c, int i) { (void)i; return un(c, OP_NEG, "neg", c->ct); }

static int g_abs(VjpCtx *c, int i) {
    (void)i;
    return bin(c, OP_MUL, "abs", c->ct, un(c, OP_SIGN, "sign", in(c, 0)));
}

static int g_exp(VjpCtx *c, int i) { (void)i; return bin(c, OP_MUL, "exp", c->ct, c->out); }

static int g_log(VjpCtx *c, int i) { (void)i; return bin(c, OP_DIV, "log", c->ct, in(c, 0)); }

static int g_sqrt(VjpCtx *c, int i) {
    (void)i;
    const Type t = *ty(c, in(c, 0));
    return bin(c, OP_DIV, "sqrt", c->ct, bin(c, OP_MUL, "2y", full(c, "two", 2, &t), c->out));
}

static int g_rsqrt(VjpCtx *c, int i) {
    (void)i;
    const Type t = *ty(c, in(c, 0));
    int y = c->out, y3 = bin(c, OP_MUL, "y3", bin(c, OP_MUL, "y2", y, y), y);
    return bin(c, OP_MUL, "rsqrt", c->ct, bin(c, OP_MUL, "slope", full(c, "mhalf", -0.5, &t), y3));
}

static int g_recip(VjpCtx *c, int i) {
    (void)i;
    int y2 = bin(c, OP_MUL, "y2", c->out, c->out);
    return un(c, OP_NEG, "recip", bin(c, OP_MUL, "ct_y2", c->ct, y2));
}

static int g_relu(VjpCtx *c, int i) {
    (void)i;
    const Type t = *ty(c, in(c, 0));
    int pos = bin(c, OP_GT, "pos", in(c, 0), full(c, "zero", 0, &t));
    int ins[3] = {pos, c->ct, full(c, "zero", 0, &t)};
    return b_node(c->b, OP_SELECT, nm(c, "relu"), ins, 3, NULL, 0);
}

static int g_sigmoid(VjpCtx *c, int i) {
    (void)i;
    const Type t = *ty(c, in(c, 0));
    int one_m = bin(c, OP_SUB, "1-y", full(c, "one", 1, &t), c->out);
    return bin(c, OP_MUL, "sigmoid", c->ct, bin(c, OP_MUL, "slope", c->out, one_m));
}

static int g_tanh(VjpCtx *c, int i) {
    (void)i;
    const Type t = *ty(c, in(c, 0));
    int y2 = bin(c, OP_MUL, "y2", c->out, c->out);
    return bin(c, OP_MUL, "tanh", c->ct, bin(c, OP_SUB, "slope", full(c, "one", 1, &t), y2));
}

/* d/dx softplus_beta(x) = sigmoid(beta x) */
static int g_softplus(VjpCtx *c, int i) {
    (void)i;
    const Type t = *ty(c, in(c, 0));
    double beta = node_float(c->n, "beta", 1.0);
    int x = in(c, 0), bx = beta == 1.0 ? x : bin(c, OP_MUL, "bx", x, full(c, "beta", beta, &t));
    return bin(c, OP_MUL, "softplus", c->ct, un(c, OP_SIGMOID, "slope", bx));
}

/* d/dx erf(x) = 2/sqrt(pi) exp(-x^2) */
static int g_erf(VjpCtx *c, int i) {
    (void)i;
    const Type t = *ty(c, in(c, 0));
    int x = in(c, 0);
    int g = un(c, OP_EXP, "gauss", un(c, OP_NEG, "mx2", bin(c, OP_MUL, "x2", x, x)));
    int k = full(c, "two_rsqrt_pi", 1.1283791670955126, &t);
    return bin(c, OP_MUL, "erf", c->ct, bin(c, OP_MUL, "slope", k, g));
}

static int g_cast(VjpCtx *c, int i) {
    (void)i;
    DType from = ty(c, in(c, 0))->dtype;
    if (!dtype_is_float(from)) return VJP_NONE;
    Attr a = attr_dtype("dtype", from);
    return b_node(c->b, OP_CAST, nm(c, "cast"), &c->ct, 1, &a, 1);
}

static int g_add(VjpCtx *c, int i) { (void)i; return c->ct; }

static int g_sub(VjpCtx *c, int i) { return i == 0 ? c->ct : un(c, OP_NEG, "sub", c->ct); }

static int g_mul(VjpCtx *c, int i) {
    return bin(c, OP_MUL, i == 0 ? "mul.a" : "mul.b", c->ct, in(c, 1 - i));
}

/* d/da = ct / b; d/db = -ct * y / b */
static int g_div(VjpCtx *c, int i) {
    int b = in(c, 1), ct = c->ct;
    if (i == 0) return bin(c, OP_DIV, "div.a", ct, b);
    return un(c, OP_NEG, "div.b", bin(c, OP_DIV, "ct_y_b", bin(c, OP_MUL, "ct_y", ct, c->out), b));
}

/* max/min: ties go to the first operand */
static int g_minmax(VjpCtx *c, int i) {
    const Type t = *ty(c, in(c, 0));
    int first = bin(c, c->n->op == OP_MAX ? OP_GE : OP_LE, "first", in(c, 0), in(c, 1));
    int z = full(c, "zero", 0, &t);
    int ins[3] = {first, i == 0 ? c->ct : z, i == 0 ? z : c->ct};
    return b_node(c->b, OP_SELECT, nm(c, i == 0 ? "pick.a" : "pick.b"), ins, 3, NULL, 0);
}

/* d/da = b a^(b-1); d/db = y log a */
static int g_pow(VjpCtx *c, int i) {
    int a = in(c, 0), b = in(c, 1);
    const Type t = *ty(c, a);
    if (i == 0) {
        int bm1 = bin(c, OP_SUB, "b-1", b, full(c, "one", 1, &t));
        int slope = bin(c, OP_MUL, "slope", b, bin(c, OP_POW, "a^(b-1)", a, bm1));
        return bin(c, OP_MUL, "pow.a", c->ct, slope);
    }
    return bin(c, OP_MUL, "pow.b", c->ct, bin(c, OP_MUL, "y_log_a", c->out, un(c, OP_LOG, "log_a", a)));
}

static int g_select(VjpCtx *c, int i) {
    if (i == 0) return VJP_NONE;
    int z = full(c, "zero", 0, ty(c, c->ct));
    int ins[3] = {in(c, 0), i == 1 ? c->ct : z, i == 1 ? z : c->ct};
    return b_node(c->b, OP_SELECT, nm(c, i == 1 ? "sel.a" : "sel.b"), ins, 3, NULL, 0);
}

/* ---- peepholes (passes/simplify.c): identities exact in IEEE arithmetic ---- */

static bool is_float(const Function *f, int v) { return dtype_is_float(f->nodes[v].type.dtype); }

/* x + v == x for every x: v = -0.0 for floats, 0 for integers. */
static bool additive_identity(const Function *f, int v) {
    double c;
    if (!peep_splat(f, v, &c) || c != 0.0) return false;
    return !is_float(f, v) || signbit(c);
}

/* x - v == x for every x: v = +0.0 for floats, 0 for integers. */
static bool subtractive_identity(const Function *f, int v) {
    double c;
    if (!peep_splat(f, v, &c) || c != 0.0) return false;
    return !is_float(f, v) || !signbit(c);
}

static bool is_one(const Function *f, int v) {
    double c;
    return peep_splat(f, v, &c) && c == 1.0;
}

static int r_add(const Peep *p) {
    if (additive_identity(p->nf, p->y)) return p->x;
    return additive_identity(p->nf, p->x) ? p->y : -1;
}

static int r_sub(const Peep *p) { return subtractive_identity(p->nf, p->y) ? p->x : -1; }

static int r_mul(const Peep *p) {
    if (is_one(p->nf, p->y)) return p->x;
    return is_one(p->nf, p->x) ? p->y : -1;
}

static int r_div(const Peep *p) { return is_one(p->nf, p->y) ? p->x : -1; }

static int r_neg(const Peep *p) { return p->xn->op == OP_NEG ? p->xn->inputs[0] : -1; }

static int r_stop_gradient(const Peep *p) {
    return p->drop_sg || p->xn->op == OP_STOP_GRADIENT ? p->x : -1;
}

static int r_cast(const Peep *p) { return p->same_type ? p->x : -1; }

static int r_select(const Peep *p) { return p->in[1] == p->in[2] ? p->in[1] : -1; }

const PassOpRow ops_elementwise_passes[] = {
    {OP_NEG, .vjp = g_neg, .peephole = r_neg},
    {OP_ABS, .vjp = g_abs},
    {OP_SIGN, .vjp = vjp_none},
    {OP_EXP, .vjp = g_exp},
    {OP_LOG, .vjp = g_log},
    {OP_SQRT, .vjp = g_sqrt},
    {OP_RSQRT, .vjp = g_rsqrt},
    {OP_RECIP, .vjp = g_recip},
    {OP_RELU, .vjp = g_relu},
    {OP_SIGMOID, .vjp = g_sigmoid},
    {OP_TANH, .vjp = g_tanh},
    {OP_SOFTPLUS, .vjp = g_softplus},
    {OP_ERF, .vjp = g_erf},
    {OP_NOT, .vjp = vjp_none},
    {OP_CAST, .vjp = g_cast, .peephole = r_cast},
    {OP_STOP_GRADIENT, .vjp = vjp_none, .peephole = r_stop_gradient},
    {OP_ADD, .vjp = g_add, .peephole = r_add},
    {OP_SUB, .vjp = g_sub, .peephole = r_sub},
    {OP_MUL, .vjp = g_mul, .peephole = r_mul},
    {OP_DIV, .vjp = g_div, .peephole = r_div},
    {OP_MAX, .vjp = g_minmax},
    {OP_MIN, .vjp = g_minmax},
    {OP_POW, .vjp = g_pow},
    {OP_AND, .vjp = vjp_none},
    {OP_OR, .vjp = vjp_none},
    {OP_EQ, .vjp = vjp_none},
    {OP_NE, .vjp = vjp_none},
    {OP_LT, .vjp = vjp_none},
    {OP_LE, .vjp = vjp_none},
    {OP_GT, .vjp = vjp_none},
    {OP_GE, .vjp = vjp_none},
    {OP_SELECT, .vjp = g_select, .peephole = r_select},
    PASS_ROWS_END,
};

#elif defined(IGRC_OPS_CODEGEN)

#include "codegen/lower_math_rule.h"

/* ---- elementwise math in kernel-IR primitives (lower_math.h's lm_unary
 * and lm_binary; cast and select are lower.c's, one step each). The
 * semantics are the interpreter's (the IR section above); test_lower_math.c
 * evaluates every rule against them ---- */

static int u_neg(K *k, int a, double beta) {
    (void)beta;
    return ty(k, a) == KT_BOOL ? a : un(k, KO_NEG, a); /* -x on 0/1 wraps to x */
}

static int u_abs(K *k, int a, double beta) {
    (void)beta;
    if (fl(ty(k, a))) return un(k, KO_ABS, a);
    if (ty(k, a) == KT_BOOL) return a;
    int neg = bin(k, KO_LT, a, zero_of(k, a));
    return sel(k, neg, un(k, KO_NEG, a), a);
}

/* x > 0 ? 1 : x < 0 ? -1 : x -- keeps -0 and NaN (ints: 0). */
static int u_sign(K *k, int a, double beta) {
    (void)beta;
    KType t = ty(k, a);
    if (t == KT_BOOL) return a;
    int z = zero_of(k, a);
    int one = fl(t) ? cf(k, t, 1) : ci(k, t, 1), m1 = fl(t) ? cf(k, t, -1) : ci(k, t, -1);
    int pos = bin(k, KO_GT, a, z), neg = bin(k, KO_LT, a, z);
    return sel(k, pos, one, sel(k, neg, m1, a));
}

/* x <= 0 ? 0 : x: relu(NaN) = NaN (the comparison fails), relu(-0) = +0. */
static int u_relu(K *k, int a, double beta) {
    (void)beta;
    if (ty(k, a) == KT_BOOL) return a;
    int z = zero_of(k, a);
    return sel(k, bin(k, KO_LE, a, z), z, a);
}

static int u_exp(K *k, int a, double beta) { (void)beta; return un(k, KO_EXP, a); }
static int u_log(K *k, int a, double beta) { (void)beta; return un(k, KO_LOG, a); }
static int u_sqrt(K *k, int a, double beta) { (void)beta; return un(k, KO_SQRT, a); }
static int u_recip(K *k, int a, double beta) { (void)beta; return bin(k, KO_DIV, cf(k, ty(k, a), 1), a); }
static int u_rsqrt(K *k, int a, double beta) { return u_recip(k, un(k, KO_SQRT, a), beta); }

/* 1/(1+e) for x >= 0 and e/(1+e) below, e = exp(-|x|): exp never
 * overflows, so the tails are exactly 0 or 1, never NaN. */
static int u_sigmoid(K *k, int a, double beta) {
    (void)beta;
    KType t = ty(k, a);
    int e = un(k, KO_EXP, un(k, KO_NEG, un(k, KO_ABS, a)));
    int den = bin(k, KO_ADD, cf(k, t, 1), e);
    int below = bin(k, KO_DIV, e, den), above = bin(k, KO_DIV, cf(k, t, 1), den);
    return sel(k, bin(k, KO_GE, a, cf(k, t, 0)), above, below);
}

/* log1p(v) = u == 1 ? v : log(u) * (v / (u - 1)), u = 1 + v (Goldberg):
 * a few ulp, and made of ops every target vectorises. */
static int log1p_of(K *k, int v) {
    KType t = ty(k, v);
    int one = cf(k, t, 1), u = bin(k, KO_ADD, one, v);
    int q = bin(k, KO_DIV, v, bin(k, KO_SUB, u, one));
    int general = bin(k, KO_MUL, un(k, KO_LOG, u), q);
    return sel(k, bin(k, KO_EQ, u, one), v, general);
}

/* beta x > 20 ? x : log1p(exp(beta x)) / beta (PyTorch's threshold, which
 * also keeps exp from overflowing). */
static int u_softplus(K *k, int a, double beta) {
    KType t = ty(k, a);
    int b = cf(k, t, beta), bx = bin(k, KO_MUL, b, a);
    int soft = bin(k, KO_DIV, log1p_of(k, un(k, KO_EXP, bx)), b);
    return sel(k, bin(k, KO_GT, bx, cf(k, t, 20)), a, soft);
}

/* f32 tanh and erf are computed in double and rounded once (the
 * interpreter's definition), so every backend gives the same f32. */
static int in_double(K *k, KOp op, int a) {
    if (ty(k, a) == KT_F64) return un(k, op, a);
    return k_cast(k, ty(k, a), un(k, op, k_cast(k, KT_F64, a)));
}

static int u_tanh(K *k, int a, double beta) { (void)beta; return in_double(k, KO_TANH, a); }
static int u_erf(K *k, int a, double beta) { (void)beta; return in_double(k, KO_ERF, a); }
static int u_not(K *k, int a, double beta) { (void)beta; return bin(k, KO_XOR, a, ci(k, KT_BOOL, 1)); }
static int u_identity(K *k, int a, double beta) { (void)k; (void)beta; return a; }

/* Floats: isnan(a) ? a : (a > b ? a : b) -- a NaN b fails the comparison
 * and is returned -- so NaN propagates as torch.maximum's does. */
static int minmax(K *k, KOp better, int a, int b) {
    int pick = sel(k, bin(k, better, a, b), a, b);
    if (!fl(ty(k, a))) return pick;
    return sel(k, bin(k, KO_NE, a, a), a, pick);
}

/* C's truncating division with x / 0 = 0 and x / -1 = -x (wrapping): the
 * divisor is made safe first, as the primitive requires. */
static int int_div(K *k, int a, int b) {
    KType t = ty(k, a);
    int z = ci(k, t, 0), is0 = bin(k, KO_EQ, b, z), ism1 = bin(k, KO_EQ, b, ci(k, t, -1));
    int one = ci(k, t, 1), safe = sel(k, bin(k, KO_OR, is0, ism1), one, b);
    int q = bin(k, KO_DIV, a, safe), neg = un(k, KO_NEG, a);
    return sel(k, is0, z, sel(k, ism1, neg, q));
}

/* The ops that are one primitive, the row's kop. */
static int b_direct(K *k, KOp kop, int a, int b) { return bin(k, kop, a, b); }

/* Floats: the primitive; integers: int_div. */
static int b_div(K *k, KOp kop, int a, int b) {
    return fl(ty(k, a)) ? bin(k, kop, a, b) : int_div(k, a, b);
}

const CodegenOpRow ops_elementwise_codegen[] = {
    {OP_NEG, .unary = u_neg},
    {OP_ABS, .unary = u_abs},
    {OP_SIGN, .unary = u_sign},
    {OP_EXP, .unary = u_exp},
    {OP_LOG, .unary = u_log},
    {OP_SQRT, .unary = u_sqrt},
    {OP_RSQRT, .unary = u_rsqrt},
    {OP_RECIP, .unary = u_recip},
    {OP_RELU, .unary = u_relu},
    {OP_SIGMOID, .unary = u_sigmoid},
    {OP_TANH, .unary = u_tanh},
    {OP_SOFTPLUS, .unary = u_softplus},
    {OP_ERF, .unary = u_erf},
    {OP_NOT, .unary = u_not},
    {OP_STOP_GRADIENT, .unary = u_identity},
    {OP_ADD, .binary = b_direct, .kop = KO_ADD},
    {OP_SUB, .binary = b_direct, .kop = KO_SUB},
    {OP_MUL, .binary = b_direct, .kop = KO_MUL},
    {OP_DIV, .binary = b_div, .kop = KO_DIV},
    {OP_MAX, .binary = minmax, .kop = KO_GT},
    {OP_MIN, .binary = minmax, .kop = KO_LT},
    {OP_POW, .binary = b_direct, .kop = KO_POW},
    {OP_AND, .binary = b_direct, .kop = KO_AND},
    {OP_OR, .binary = b_direct, .kop = KO_OR},
    {OP_EQ, .binary = b_direct, .kop = KO_EQ},
    {OP_NE, .binary = b_direct, .kop = KO_NE},
    {OP_LT, .binary = b_direct, .kop = KO_LT},
    {OP_LE, .binary = b_direct, .kop = KO_LE},
    {OP_GT, .binary = b_direct, .kop = KO_GT},
    {OP_GE, .binary = b_direct, .kop = KO_GE},
    CODEGEN_ROWS_END,
};

#else
#error "ops/ files are compiled with IGRC_OPS_IR, IGRC_OPS_PASSES or IGRC_OPS_CODEGEN"
#endif
