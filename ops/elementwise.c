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

#elif defined(IGRC_OPS_CODEGEN)

#else
#error "ops/ files are compiled with IGRC_OPS_IR, IGRC_OPS_PASSES or IGRC_OPS_CODEGEN"
#endif
