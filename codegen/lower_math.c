/* The tensor IR's elementwise math in kernel-IR primitives (see lower_math.h).
 * Each tensor op has one rule in a table indexed by op: an op without a rule
 * is a lowering error, never a silent identity. */
#include "codegen/lower_math.h"

#include <math.h>
#include <stdlib.h>

/* Every builder appends an instruction, and C leaves the order in which a
 * call's arguments are evaluated open: values are built into locals one
 * statement at a time, so the kernel text is the same from every compiler. */
typedef KernelDef K;

static KType ty(const K *k, int v) { return k->insts[v].type; }
static bool fl(KType t) { return t == KT_F32 || t == KT_F64; }
static int cf(K *k, KType t, double v) { return k_const_f(k, t, v); }
static int ci(K *k, KType t, int64_t v) { return k_const_i(k, t, v); }
/* 0 of v's type: the comparisons below are against it. */
static int zero_of(K *k, int v) { return fl(ty(k, v)) ? cf(k, ty(k, v), 0) : ci(k, ty(k, v), 0); }
static int bin(K *k, KOp op, int a, int b) { return k_binary(k, op, a, b); }
static int un(K *k, KOp op, int a) { return k_unary(k, op, a); }
static int sel(K *k, int c, int a, int b) { return k_select(k, c, a, b); }

/* ---- unary ------------------------------------------------------------------ */

typedef int (*UnaryRule)(K *k, int a, double beta);

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

static const UnaryRule unary_rules[OP_COUNT] = {
    [OP_NEG] = u_neg, [OP_ABS] = u_abs, [OP_SIGN] = u_sign, [OP_EXP] = u_exp,
    [OP_LOG] = u_log, [OP_SQRT] = u_sqrt, [OP_RSQRT] = u_rsqrt, [OP_RECIP] = u_recip,
    [OP_RELU] = u_relu, [OP_SIGMOID] = u_sigmoid, [OP_TANH] = u_tanh,
    [OP_SOFTPLUS] = u_softplus, [OP_ERF] = u_erf, [OP_NOT] = u_not,
    [OP_STOP_GRADIENT] = u_identity,
};

int lm_unary(K *k, OpKind op, int a, double beta) {
    if ((unsigned)op >= OP_COUNT || !unary_rules[op]) return -1;
    return unary_rules[op](k, a, beta);
}

/* ---- binary ------------------------------------------------------------------ */

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

/* The ops that are one primitive; 0 (KO_NEG, a unary op) marks none. */
static const KOp direct_binary[OP_COUNT] = {
    [OP_ADD] = KO_ADD, [OP_SUB] = KO_SUB, [OP_MUL] = KO_MUL, [OP_DIV] = KO_DIV,
    [OP_POW] = KO_POW, [OP_AND] = KO_AND, [OP_OR] = KO_OR, [OP_EQ] = KO_EQ,
    [OP_NE] = KO_NE, [OP_LT] = KO_LT, [OP_LE] = KO_LE, [OP_GT] = KO_GT, [OP_GE] = KO_GE,
};

int lm_binary(K *k, OpKind op, int a, int b) {
    if (op == OP_MAX) return minmax(k, KO_GT, a, b);
    if (op == OP_MIN) return minmax(k, KO_LT, a, b);
    if (op == OP_DIV && !fl(ty(k, a))) return int_div(k, a, b);
    if ((unsigned)op >= OP_COUNT || direct_binary[op] == KO_NEG) return -1;
    return bin(k, direct_binary[op], a, b);
}

/* ---- casts ------------------------------------------------------------------- */

/* Truncate, wrap modulo 2^32, non-finite gives 0: r = t - 2^32 trunc(t 2^-32)
 * is exact for finite t and below 2^32 in magnitude, so the i64 cast is safe. */
static int float_to_i32(K *k, int x) {
    if (ty(k, x) != KT_F64) x = k_cast(k, KT_F64, x);
    int mag = un(k, KO_ABS, x), fin = bin(k, KO_LT, mag, cf(k, KT_F64, INFINITY));
    int t = un(k, KO_TRUNC, x);
    int q = un(k, KO_TRUNC, bin(k, KO_MUL, t, cf(k, KT_F64, 1.0 / 4294967296.0)));
    int r = bin(k, KO_SUB, t, bin(k, KO_MUL, q, cf(k, KT_F64, 4294967296.0)));
    r = sel(k, fin, r, cf(k, KT_F64, 0));
    return k_cast(k, KT_I32, k_cast(k, KT_I64, r));
}

/* Truncate and saturate, NaN gives 0 (llvm.fptosi.sat's rule). */
static int float_to_i64(K *k, int x) {
    if (ty(k, x) != KT_F64) x = k_cast(k, KT_F64, x);
    int t = un(k, KO_TRUNC, x);
    int big = bin(k, KO_GE, t, cf(k, KT_F64, 9223372036854775808.0));
    int small = bin(k, KO_LT, t, cf(k, KT_F64, -9223372036854775808.0));
    int nan = bin(k, KO_NE, t, t), bad = bin(k, KO_OR, bin(k, KO_OR, big, small), nan);
    int i = k_cast(k, KT_I64, sel(k, bad, cf(k, KT_F64, 0), t));
    int lo = sel(k, small, ci(k, KT_I64, INT64_MIN), i);
    return sel(k, big, ci(k, KT_I64, INT64_MAX), lo);
}

int lm_cast(K *k, KType to, int a) {
    KType from = ty(k, a);
    if (to == from) return a;
    if (to == KT_BOOL) return bin(k, KO_NE, a, zero_of(k, a)); /* NaN -> true */
    if (fl(from) && to == KT_I32) return float_to_i32(k, a);
    if (fl(from) && to == KT_I64) return float_to_i64(k, a);
    return k_cast(k, to, a);
}

/* ---- Philox 4x32-10 ------------------------------------------------------------ */

/* Words are i32 values holding the u32 bits: add and mul wrap alike. */
static int w32(K *k, uint32_t v) { return ci(k, KT_I32, (int64_t)(int32_t)v); }

/* The 64-bit product of the word x and the constant m: (hi, lo). */
static void mulhilo(K *k, int x, uint32_t m, int *hi, int *lo) {
    int wide = k_cast(k, KT_I64, x), x64 = bin(k, KO_AND, wide, ci(k, KT_I64, 0xFFFFFFFFll));
    int p = bin(k, KO_MUL, x64, ci(k, KT_I64, m));
    *lo = k_cast(k, KT_I32, p);
    *hi = k_cast(k, KT_I32, bin(k, KO_SHR, p, ci(k, KT_I64, 32)));
}

/* out = words 0 and 1 of philox4x32_10(ctr = {idx lo, idx hi, stream, 0},
 * key = {seed, step}), as base/philox.c. */
static void philox(K *k, int seed, int step, int idx, uint32_t stream, int out[2]) {
    int x[4];
    x[0] = k_cast(k, KT_I32, idx);
    x[1] = k_cast(k, KT_I32, bin(k, KO_SHR, idx, ci(k, KT_I64, 32)));
    x[2] = w32(k, stream);
    x[3] = w32(k, 0);
    int k0 = seed, k1 = step;
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 = bin(k, KO_ADD, k0, w32(k, 0x9E3779B9u));
            k1 = bin(k, KO_ADD, k1, w32(k, 0xBB67AE85u));
        }
        int hi0, lo0, hi1, lo1;
        mulhilo(k, x[0], 0xD2511F53u, &hi0, &lo0);
        mulhilo(k, x[2], 0xCD9E8D57u, &hi1, &lo1);
        int y0 = bin(k, KO_XOR, bin(k, KO_XOR, hi1, x[1]), k0);
        int y2 = bin(k, KO_XOR, bin(k, KO_XOR, hi0, x[3]), k1);
        x[0] = y0;
        x[1] = lo1;
        x[2] = y2;
        x[3] = lo0;
    }
    out[0] = x[0];
    out[1] = x[1];
}

/* ((w >> 9) + 0.5) 2^-23: 24 significant bits, exact in f32 and f64. */
static int unit(K *k, KType t, int w) {
    int top = k_cast(k, t, bin(k, KO_SHR, w, ci(k, KT_I32, 9)));
    int mid = bin(k, KO_ADD, top, cf(k, t, 0.5));
    return bin(k, KO_MUL, mid, cf(k, t, 1.0 / 8388608.0));
}

/* Box-Muller in double, as philox_normal: sqrt(-2 ln u1) cos(2 pi u2). */
static int box_muller(K *k, const int w[2]) {
    int u1 = unit(k, KT_F64, w[0]), u2 = unit(k, KT_F64, w[1]);
    int lg = un(k, KO_LOG, u1), l = bin(k, KO_MUL, cf(k, KT_F64, -2.0), lg);
    int c = un(k, KO_COS, bin(k, KO_MUL, cf(k, KT_F64, 6.283185307179586476925286766559), u2));
    return bin(k, KO_MUL, un(k, KO_SQRT, l), c);
}

int lm_random(K *k, KRandom r, KType t, int seed, int step, int index, uint32_t stream,
              double p) {
    int w[2];
    philox(k, seed, step, index, stream, w);
    switch (r) {
    case KRAND_UNIFORM: return unit(k, t, w[0]);
    case KRAND_NORMAL: {
        int z = box_muller(k, w);
        return t == KT_F64 ? z : k_cast(k, t, z);
    }
    case KRAND_BERNOULLI: {
        int u = unit(k, KT_F64, w[0]), hit = bin(k, KO_LT, u, cf(k, KT_F64, p));
        int one = cf(k, t, 1), zero = cf(k, t, 0);
        return sel(k, hit, one, zero);
    }
    }
    abort();
}
