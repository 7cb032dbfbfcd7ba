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

double ir_unary_f64(OpKind op, double x, double beta) {
    switch (op) {
    case OP_NEG: return -x;
    case OP_ABS: return fabs(x);
    case OP_SIGN: return x > 0 ? 1.0 : x < 0 ? -1.0 : x == 0 ? 0.0 : x; /* NaN stays NaN */
    case OP_EXP: return exp(x);
    case OP_LOG: return log(x);
    case OP_SQRT: return sqrt(x);
    case OP_RSQRT: return 1.0 / sqrt(x);
    case OP_RECIP: return 1.0 / x;
    /* relu(NaN) = NaN, as in PyTorch, so a NaN is never hidden from the
     * training guard; relu(-0) = +0. The backends spell the same test. */
    case OP_RELU: return x <= 0 ? 0.0 : x;
    case OP_SIGMOID: return sigmoid(x);
    case OP_TANH: return tanh(x);
    case OP_SOFTPLUS: return softplus(x, beta);
    case OP_ERF: return erf(x);
    case OP_NOT: return x == 0;
    default: return x; /* cast, stop_gradient */
    }
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

static double binary_f(OpKind op, double a, double b, bool i32) {
    switch (op) {
    case OP_ADD: return a + b; /* i32: exact in double, then wrapped */
    case OP_SUB: return a - b;
    case OP_MUL: return i32 ? mul_i32(a, b) : a * b;
    /* IEEE division; for i32 the stored quotient truncates toward zero as
     * C's does (a double quotient of int32s never rounds across an integer)
     * and x / 0 stores 0. */
    case OP_DIV: return a / b;
    case OP_MAX: return ir_max_f64(a, b);
    case OP_MIN: return ir_min_f64(a, b);
    case OP_POW: return pow(a, b);
    case OP_AND: return a != 0 && b != 0;
    case OP_OR: return a != 0 || b != 0;
    /* Comparisons are C's: any comparison with NaN is false except ne. */
    case OP_EQ: return a == b;
    case OP_NE: return a != b;
    case OP_LT: return a < b;
    case OP_LE: return a <= b;
    case OP_GT: return a > b;
    case OP_GE: return a >= b;
    default: return NAN;
    }
}

bool ik_binary(const Node *n, const Value *in, Value *out, Diag *d) {
    if (!need_shape(n, in, 0, &out->type, d) || !need_shape(n, in, 1, &out->type, d))
        return false;
    bool i32 = out->type.dtype == DT_I32;
    int64_t numel = type_numel(&out->type);
    for (int64_t i = 0; i < numel; i++)
        out->data[i] = binary_f(n->op, in[0].data[i], in[1].data[i], i32);
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
