/* Elementwise math for the LLVM backend: the formulas of ir/interp_elem.c
 * written as IR, and Philox 4x32-10 as integer IR (base/philox.c). */
#include <math.h>

#include "codegen/cpu/llvm_internal.h"

#define B (e->b)

static bool is_float(KType t) { return t == KT_F32 || t == KT_F64; }

static LLVMValueRef fcmp(CpuEmit *e, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildFCmp(B, p, a, b, "");
}

static LLVMValueRef sel(CpuEmit *e, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(B, c, a, b, "");
}

/* max/min propagating NaN as the interpreter's max_f/min_f:
 * isnan(a) ? a : (a > b ? a : b) -- a NaN b fails the comparison. */
LLVMValueRef cpu_fmax(CpuEmit *e, LLVMValueRef a, LLVMValueRef b, bool is_min) {
    LLVMValueRef a_nan = fcmp(e, LLVMRealUNO, a, a);
    LLVMValueRef better = fcmp(e, is_min ? LLVMRealOLT : LLVMRealOGT, a, b);
    return sel(e, a_nan, a, sel(e, better, a, b));
}

/* 1/(1+e) for x >= 0 and e/(1+e) below, e = exp(-|x|). */
static LLVMValueRef sigmoid(CpuEmit *e, KType t, LLVMValueRef x) {
    LLVMTypeRef ty = cpu_type(e->ctx, t);
    LLVMValueRef ex = cpu_call1(e, "llvm.exp", ty, LLVMBuildFNeg(B, cpu_call1(e, "llvm.fabs", ty, x), ""));
    LLVMValueRef den = LLVMBuildFAdd(B, cpu_fconst(e, t, 1.0), ex, "");
    LLVMValueRef pos = LLVMBuildFDiv(B, cpu_fconst(e, t, 1.0), den, "");
    LLVMValueRef neg = LLVMBuildFDiv(B, ex, den, "");
    return sel(e, fcmp(e, LLVMRealOGE, x, cpu_fconst(e, t, 0.0)), pos, neg);
}

/* log1p(v) without a libm call: u = 1 + v; u == 1 ? v : log(u) * (v / (u - 1))
 * (Goldberg's formula: accurate to a few ulp, and vectorisable). */
static LLVMValueRef log1p_ir(CpuEmit *e, KType t, LLVMValueRef v) {
    LLVMValueRef one = cpu_fconst(e, t, 1.0);
    LLVMValueRef u = LLVMBuildFAdd(B, one, v, "");
    LLVMValueRef lg = cpu_call1(e, "llvm.log", cpu_type(e->ctx, t), u);
    LLVMValueRef q = LLVMBuildFDiv(B, v, LLVMBuildFSub(B, u, one, ""), "");
    return sel(e, fcmp(e, LLVMRealOEQ, u, one), v, LLVMBuildFMul(B, lg, q, ""));
}

/* beta x > 20 ? x : log1p(exp(beta x)) / beta (PyTorch's threshold). */
static LLVMValueRef softplus(CpuEmit *e, KType t, LLVMValueRef x, double beta) {
    LLVMValueRef bt = cpu_fconst(e, t, beta);
    LLVMValueRef bx = LLVMBuildFMul(B, bt, x, "");
    LLVMValueRef ex = cpu_call1(e, "llvm.exp", cpu_type(e->ctx, t), bx);
    LLVMValueRef soft = LLVMBuildFDiv(B, log1p_ir(e, t, ex), bt, "");
    return sel(e, fcmp(e, LLVMRealOGT, bx, cpu_fconst(e, t, 20.0)), x, soft);
}

/* tanh, erf from libm in double (f32: rounded once, as the interpreter). */
static LLVMValueRef libm_in_double(CpuEmit *e, KType t, const char *fn, LLVMValueRef x) {
    LLVMTypeRef d = LLVMDoubleTypeInContext(e->ctx);
    if (t == KT_F64) return cpu_libm1(e, fn, x);
    LLVMValueRef r = cpu_libm1(e, fn, LLVMBuildFPExt(B, x, d, ""));
    return LLVMBuildFPTrunc(B, r, cpu_type(e->ctx, t), "");
}

static LLVMValueRef sign_f(CpuEmit *e, KType t, LLVMValueRef x) {
    LLVMValueRef z = cpu_fconst(e, t, 0.0);
    LLVMValueRef r = sel(e, fcmp(e, LLVMRealOEQ, x, z), z, x); /* NaN stays NaN */
    r = sel(e, fcmp(e, LLVMRealOLT, x, z), cpu_fconst(e, t, -1.0), r);
    return sel(e, fcmp(e, LLVMRealOGT, x, z), cpu_fconst(e, t, 1.0), r);
}

static LLVMValueRef unary_f(CpuEmit *e, const KInst *in, LLVMValueRef x) {
    KType t = in->type;
    LLVMTypeRef ty = cpu_type(e->ctx, t);
    LLVMValueRef one = cpu_fconst(e, t, 1.0), zero = cpu_fconst(e, t, 0.0);
    switch (in->op) {
    case OP_NEG: return LLVMBuildFNeg(B, x, "");
    case OP_ABS: return cpu_call1(e, "llvm.fabs", ty, x);
    case OP_SIGN: return sign_f(e, t, x);
    case OP_EXP: return cpu_call1(e, "llvm.exp", ty, x);
    case OP_LOG: return cpu_call1(e, "llvm.log", ty, x);
    case OP_SQRT: return cpu_call1(e, "llvm.sqrt", ty, x);
    case OP_RSQRT: return LLVMBuildFDiv(B, one, cpu_call1(e, "llvm.sqrt", ty, x), "");
    case OP_RECIP: return LLVMBuildFDiv(B, one, x, "");
    case OP_RELU: return sel(e, fcmp(e, LLVMRealUGT, x, zero), x, zero); /* NaN stays NaN */
    case OP_SIGMOID: return sigmoid(e, t, x);
    case OP_TANH: return libm_in_double(e, t, "tanh", x);
    case OP_ERF: return libm_in_double(e, t, "erf", x);
    case OP_SOFTPLUS: return softplus(e, t, x, in->f);
    default: return x; /* stop_gradient */
    }
}

static LLVMValueRef unary_i(CpuEmit *e, const KInst *in, LLVMValueRef x) {
    KType t = in->type;
    LLVMValueRef zero = cpu_iconst(e, t, 0);
    LLVMTypeRef ty = cpu_type(e->ctx, t);
    switch (in->op) {
    case OP_NEG: return LLVMBuildSub(B, zero, x, "");
    case OP_ABS:
        return sel(e, LLVMBuildICmp(B, LLVMIntSLT, x, zero, ""), LLVMBuildSub(B, zero, x, ""), x);
    case OP_SIGN: {
        LLVMValueRef p = LLVMBuildZExt(B, LLVMBuildICmp(B, LLVMIntSGT, x, zero, ""), ty, "");
        LLVMValueRef n = LLVMBuildZExt(B, LLVMBuildICmp(B, LLVMIntSLT, x, zero, ""), ty, "");
        return LLVMBuildSub(B, p, n, "");
    }
    case OP_RELU: return sel(e, LLVMBuildICmp(B, LLVMIntSGT, x, zero, ""), x, zero);
    case OP_NOT: return LLVMBuildNot(B, x, "");
    default: return x;
    }
}

LLVMValueRef cpu_unary(CpuEmit *e, const KInst *in, LLVMValueRef x) {
    return is_float(in->type) ? unary_f(e, in, x) : unary_i(e, in, x);
}

static LLVMValueRef binary_f(CpuEmit *e, OpKind op, KType t, LLVMValueRef a, LLVMValueRef b) {
    LLVMTypeRef ty = cpu_type(e->ctx, t);
    switch (op) {
    case OP_ADD: return LLVMBuildFAdd(B, a, b, "");
    case OP_SUB: return LLVMBuildFSub(B, a, b, "");
    case OP_MUL: return LLVMBuildFMul(B, a, b, "");
    case OP_DIV: return LLVMBuildFDiv(B, a, b, "");
    case OP_MAX: return cpu_fmax(e, a, b, false);
    case OP_MIN: return cpu_fmax(e, a, b, true);
    case OP_POW: return cpu_intrinsic(e, "llvm.pow", &ty, 1, (LLVMValueRef[]){a, b}, 2);
    case OP_EQ: return fcmp(e, LLVMRealOEQ, a, b);
    case OP_NE: return fcmp(e, LLVMRealUNE, a, b);
    case OP_LT: return fcmp(e, LLVMRealOLT, a, b);
    case OP_LE: return fcmp(e, LLVMRealOLE, a, b);
    case OP_GT: return fcmp(e, LLVMRealOGT, a, b);
    default: return fcmp(e, LLVMRealOGE, a, b);
    }
}

/* C's truncating division with x / 0 = 0 and x / -1 = -x (wrapping): the
 * divisor is made safe first so the sdiv never traps. */
static LLVMValueRef div_i(CpuEmit *e, KType t, LLVMValueRef a, LLVMValueRef b) {
    LLVMValueRef zero = cpu_iconst(e, t, 0), one = cpu_iconst(e, t, 1);
    LLVMValueRef is0 = LLVMBuildICmp(B, LLVMIntEQ, b, zero, "");
    LLVMValueRef ism1 = LLVMBuildICmp(B, LLVMIntEQ, b, cpu_iconst(e, t, -1), "");
    LLVMValueRef safe = sel(e, LLVMBuildOr(B, is0, ism1, ""), one, b);
    LLVMValueRef q = LLVMBuildSDiv(B, a, safe, "");
    return sel(e, is0, zero, sel(e, ism1, LLVMBuildSub(B, zero, a, ""), q));
}

static LLVMValueRef binary_i(CpuEmit *e, OpKind op, KType t, LLVMValueRef a, LLVMValueRef b) {
    bool u = t == KT_BOOL; /* false < true */
    switch (op) {
    case OP_ADD: return LLVMBuildAdd(B, a, b, "");
    case OP_SUB: return LLVMBuildSub(B, a, b, "");
    case OP_MUL: return LLVMBuildMul(B, a, b, "");
    case OP_DIV: return div_i(e, t, a, b);
    case OP_MAX: return sel(e, LLVMBuildICmp(B, LLVMIntSGT, a, b, ""), a, b);
    case OP_MIN: return sel(e, LLVMBuildICmp(B, LLVMIntSLT, a, b, ""), a, b);
    case OP_AND: return LLVMBuildAnd(B, a, b, "");
    case OP_OR: return LLVMBuildOr(B, a, b, "");
    case OP_EQ: return LLVMBuildICmp(B, LLVMIntEQ, a, b, "");
    case OP_NE: return LLVMBuildICmp(B, LLVMIntNE, a, b, "");
    case OP_LT: return LLVMBuildICmp(B, u ? LLVMIntULT : LLVMIntSLT, a, b, "");
    case OP_LE: return LLVMBuildICmp(B, u ? LLVMIntULE : LLVMIntSLE, a, b, "");
    case OP_GT: return LLVMBuildICmp(B, u ? LLVMIntUGT : LLVMIntSGT, a, b, "");
    default: return LLVMBuildICmp(B, u ? LLVMIntUGE : LLVMIntSGE, a, b, "");
    }
}

/* t is the operands' type. */
LLVMValueRef cpu_binary(CpuEmit *e, OpKind op, KType t, LLVMValueRef a, LLVMValueRef b) {
    return is_float(t) ? binary_f(e, op, t, a, b) : binary_i(e, op, t, a, b);
}

/* The interpreter's float -> i32: truncate, wrap modulo 2^32, non-finite 0.
 * r = t - 2^32 trunc(t 2^-32) is exact for every finite t (r is an integer
 * below 2^32 in magnitude), so the i64 conversion never overflows. */
static LLVMValueRef f_to_i32(CpuEmit *e, KType from, LLVMValueRef x) {
    LLVMTypeRef d = LLVMDoubleTypeInContext(e->ctx);
    if (from == KT_F32) x = LLVMBuildFPExt(B, x, d, "");
    LLVMValueRef t = cpu_call1(e, "llvm.trunc", d, x);
    LLVMValueRef q = cpu_call1(e, "llvm.trunc", d,
                               LLVMBuildFMul(B, t, LLVMConstReal(d, 1.0 / 4294967296.0), ""));
    LLVMValueRef r = LLVMBuildFSub(B, t, LLVMBuildFMul(B, q, LLVMConstReal(d, 4294967296.0), ""), "");
    LLVMValueRef fin = fcmp(e, LLVMRealOLT, cpu_call1(e, "llvm.fabs", d, x),
                            LLVMConstReal(d, INFINITY));
    r = sel(e, fin, r, LLVMConstReal(d, 0.0));
    LLVMValueRef i = LLVMBuildFPToSI(B, r, LLVMInt64TypeInContext(e->ctx), "");
    return LLVMBuildTrunc(B, i, LLVMInt32TypeInContext(e->ctx), "");
}

static LLVMValueRef cast_from_float(CpuEmit *e, KType to, KType from, LLVMValueRef x) {
    LLVMTypeRef tt = cpu_type(e->ctx, to);
    switch (to) {
    case KT_F32: return from == KT_F32 ? x : LLVMBuildFPTrunc(B, x, tt, "");
    case KT_F64: return from == KT_F64 ? x : LLVMBuildFPExt(B, x, tt, "");
    case KT_I32: return f_to_i32(e, from, x);
    case KT_I64: {
        LLVMTypeRef tys[2] = {tt, cpu_type(e->ctx, from)};
        return cpu_intrinsic(e, "llvm.fptosi.sat", tys, 2, &x, 1);
    }
    default: return fcmp(e, LLVMRealUNE, x, cpu_fconst(e, from, 0.0));
    }
}

LLVMValueRef cpu_cast(CpuEmit *e, KType to, KType from, LLVMValueRef x) {
    if (to == from) return x;
    if (is_float(from)) return cast_from_float(e, to, from, x);
    LLVMTypeRef tt = cpu_type(e->ctx, to);
    if (is_float(to))
        return from == KT_BOOL ? LLVMBuildUIToFP(B, x, tt, "") : LLVMBuildSIToFP(B, x, tt, "");
    if (to == KT_BOOL) return LLVMBuildICmp(B, LLVMIntNE, x, cpu_iconst(e, from, 0), "");
    if (from == KT_BOOL) return LLVMBuildZExt(B, x, tt, "");
    if (ktype_size(to) < ktype_size(from)) return LLVMBuildTrunc(B, x, tt, "");
    return LLVMBuildSExt(B, x, tt, "");
}

/* ---- Philox 4x32-10 -------------------------------------------------------- */

static LLVMValueRef c32(CpuEmit *e, uint32_t v) {
    return LLVMConstInt(LLVMInt32TypeInContext(e->ctx), v, 0);
}

/* 32x32 -> 64 product of x and the constant m: (hi, lo). */
static void mulhilo(CpuEmit *e, LLVMValueRef x, uint32_t m, LLVMValueRef *hi, LLVMValueRef *lo) {
    LLVMTypeRef i64 = LLVMInt64TypeInContext(e->ctx), i32 = LLVMInt32TypeInContext(e->ctx);
    LLVMValueRef p = LLVMBuildMul(B, LLVMBuildZExt(B, x, i64, ""), LLVMConstInt(i64, m, 0), "");
    *lo = LLVMBuildTrunc(B, p, i32, "");
    *hi = LLVMBuildTrunc(B, LLVMBuildLShr(B, p, LLVMConstInt(i64, 32, 0), ""), i32, "");
}

/* out[0], out[1] of philox4x32_10(ctr = {idx lo, idx hi, stream, 0}, key = {seed, step}). */
static void philox(CpuEmit *e, LLVMValueRef seed, LLVMValueRef step, LLVMValueRef idx,
                   uint32_t stream, LLVMValueRef out[2]) {
    LLVMTypeRef i32 = LLVMInt32TypeInContext(e->ctx), i64 = LLVMInt64TypeInContext(e->ctx);
    LLVMValueRef x[4] = {LLVMBuildTrunc(B, idx, i32, ""),
                         LLVMBuildTrunc(B, LLVMBuildLShr(B, idx, LLVMConstInt(i64, 32, 0), ""), i32, ""),
                         c32(e, stream), c32(e, 0)};
    LLVMValueRef k0 = seed, k1 = step;
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 = LLVMBuildAdd(B, k0, c32(e, 0x9E3779B9u), "");
            k1 = LLVMBuildAdd(B, k1, c32(e, 0xBB67AE85u), "");
        }
        LLVMValueRef hi0, lo0, hi1, lo1;
        mulhilo(e, x[0], 0xD2511F53u, &hi0, &lo0);
        mulhilo(e, x[2], 0xCD9E8D57u, &hi1, &lo1);
        LLVMValueRef y0 = LLVMBuildXor(B, LLVMBuildXor(B, hi1, x[1], ""), k0, "");
        LLVMValueRef y2 = LLVMBuildXor(B, LLVMBuildXor(B, hi0, x[3], ""), k1, "");
        x[0] = y0;
        x[1] = lo1;
        x[2] = y2;
        x[3] = lo0;
    }
    out[0] = x[0];
    out[1] = x[1];
}

/* ((w >> 9) + 0.5) 2^-23: exact in f32 and f64 alike. */
static LLVMValueRef unit(CpuEmit *e, KType t, LLVMValueRef w) {
    LLVMValueRef top = LLVMBuildLShr(B, w, c32(e, 9), "");
    LLVMValueRef f = LLVMBuildUIToFP(B, top, cpu_type(e->ctx, t), "");
    f = LLVMBuildFAdd(B, f, cpu_fconst(e, t, 0.5), "");
    return LLVMBuildFMul(B, f, cpu_fconst(e, t, 1.0 / 8388608.0), "");
}

/* Box-Muller in double, as philox_normal: sqrt(-2 ln u1) cos(2 pi u2). */
static LLVMValueRef normal(CpuEmit *e, LLVMValueRef w[2]) {
    LLVMTypeRef d = LLVMDoubleTypeInContext(e->ctx);
    LLVMValueRef u1 = unit(e, KT_F64, w[0]), u2 = unit(e, KT_F64, w[1]);
    LLVMValueRef l = LLVMBuildFMul(B, LLVMConstReal(d, -2.0), cpu_call1(e, "llvm.log", d, u1), "");
    LLVMValueRef c = cpu_call1(e, "llvm.cos", d,
                               LLVMBuildFMul(B, LLVMConstReal(d, 6.283185307179586476925286766559), u2, ""));
    return LLVMBuildFMul(B, cpu_call1(e, "llvm.sqrt", d, l), c, "");
}

LLVMValueRef cpu_random(CpuEmit *e, const KInst *in) {
    LLVMValueRef w[2];
    philox(e, e->val[in->a], e->val[in->b], e->val[in->c], (uint32_t)in->i, w);
    LLVMTypeRef ty = cpu_type(e->ctx, in->type), d = LLVMDoubleTypeInContext(e->ctx);
    switch (in->rand) {
    case KRAND_NORMAL: {
        LLVMValueRef z = normal(e, w);
        return in->type == KT_F64 ? z : LLVMBuildFPTrunc(B, z, ty, "");
    }
    case KRAND_BERNOULLI: {
        LLVMValueRef u = unit(e, KT_F64, w[0]);
        LLVMValueRef c = fcmp(e, LLVMRealOLT, u, LLVMConstReal(d, in->f));
        return LLVMBuildUIToFP(B, c, ty, "");
    }
    default: return unit(e, in->type, w[0]);
    }
}
