/* The tensor IR's elementwise math in kernel-IR primitives (see lower_math.h):
 * casts and Philox here; each elementwise op's own rule is in its row
 * (ops/elementwise.c). An op without a rule is a lowering error, never a
 * silent identity. */
#include "codegen/lower_math_rule.h"

#include <math.h>
#include <stdlib.h>

int lm_unary(K *k, OpKind op, int a, double beta) {
    UnaryLowering rule = codegen_op_row(op)->unary;
    return rule ? rule(k, a, beta) : -1;
}

int lm_binary(K *k, OpKind op, int a, int b) {
    const CodegenOpRow *row = codegen_op_row(op);
    return row->binary ? row->binary(k, row->kop, a, b) : -1;
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
