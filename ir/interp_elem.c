/* Elementwise kernels: unary, binary, compare, select, cast.
 *
 * Every operand has the result's shape (broadcasting is an explicit node).
 * Results are computed in double; the dispatcher then applies the dtype's
 * storage rule, which is also what makes cast work: cast's kernel is the
 * identity and storing as i32 truncates toward zero, storing as bool gives
 * x != 0, storing as f32 rounds (in INTERP_F32).
 */
#include <math.h>
#include <stdint.h>

#include "ir/interp_internal.h"
#include "ir/scalar.h"

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

typedef double (*UnaryF)(double x, double beta);

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

static const UnaryF UNARY[OP_COUNT] = {
    [OP_NEG] = neg_f, [OP_ABS] = abs_f, [OP_SIGN] = sign_f, [OP_EXP] = exp_f,
    [OP_LOG] = log_f, [OP_SQRT] = sqrt_f, [OP_RSQRT] = rsqrt_f, [OP_RECIP] = recip_f,
    [OP_RELU] = relu_f, [OP_SIGMOID] = sigmoid_f, [OP_TANH] = tanh_f,
    [OP_SOFTPLUS] = softplus, [OP_ERF] = erf_f, [OP_NOT] = not_f, [OP_CAST] = identity_f,
    [OP_STOP_GRADIENT] = identity_f,
};

/* An op without a value here is NaN: tests/codegen/test_lower_math.c
 * checks every elementwise primitive of the op table has one. */
double ir_unary_f64(OpKind op, double x, double beta) {
    return (unsigned)op < OP_COUNT && UNARY[op] ? UNARY[op](x, beta) : NAN;
}

bool ik_unary(const Node *n, const Value *in, Value *out, Diag *d) {
    if (!need_shape(n, in, 0, &out->type, d)) return false;
    double beta = node_float(n, "beta", 1.0);
    int64_t numel = type_numel(&out->type);
    for (int64_t i = 0; i < numel; i++) out->data[i] = ir_unary_f64(n->op, in[0].data[i], beta);
    return true;
}

/* int32 product modulo 2^32: the double product of two int32 values can
 * exceed 2^53 and lose the low bits the wrap keeps. */
static double mul_i32(double a, double b) {
    int64_t p = (int64_t)interp_wrap_i32(a) * (int64_t)interp_wrap_i32(b);
    return interp_wrap_i32((double)(p % 4294967296LL));
}

/* max/min propagate NaN (as torch.maximum does), unlike fmax/fmin. */
double ir_max_f64(double a, double b) { return isnan(a) ? a : isnan(b) ? b : a > b ? a : b; }
double ir_min_f64(double a, double b) { return isnan(a) ? a : isnan(b) ? b : a < b ? a : b; }

typedef double (*BinaryF)(double a, double b, bool i32);

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

static const BinaryF BINARY[OP_COUNT] = {
    [OP_ADD] = add_f, [OP_SUB] = sub_f, [OP_MUL] = mul_f, [OP_DIV] = div_f,
    [OP_MAX] = max_f, [OP_MIN] = min_f, [OP_POW] = pow_f, [OP_AND] = and_f,
    [OP_OR] = or_f,   [OP_EQ] = eq_f,   [OP_NE] = ne_f,   [OP_LT] = lt_f,
    [OP_LE] = le_f,   [OP_GT] = gt_f,   [OP_GE] = ge_f,
};

double ir_binary_f64(OpKind op, double a, double b, bool i32) {
    return (unsigned)op < OP_COUNT && BINARY[op] ? BINARY[op](a, b, i32) : NAN;
}

bool ik_binary(const Node *n, const Value *in, Value *out, Diag *d) {
    if (!need_shape(n, in, 0, &out->type, d) || !need_shape(n, in, 1, &out->type, d))
        return false;
    bool i32 = out->type.dtype == DT_I32;
    int64_t numel = type_numel(&out->type);
    for (int64_t i = 0; i < numel; i++)
        out->data[i] = ir_binary_f64(n->op, in[0].data[i], in[1].data[i], i32);
    return true;
}

/* select(cond, a, b): a where cond is nonzero, else b. */
bool ik_select(const Node *n, const Value *in, Value *out, Diag *d) {
    for (int k = 0; k < 3; k++)
        if (!need_shape(n, in, k, &out->type, d)) return false;
    int64_t numel = type_numel(&out->type);
    for (int64_t i = 0; i < numel; i++)
        out->data[i] = in[0].data[i] != 0 ? in[1].data[i] : in[2].data[i];
    return true;
}
