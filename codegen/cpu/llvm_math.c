/* The kernel IR's primitives as LLVM IR: one spelling per primitive and
 * type class. Compound math never reaches here (codegen/lower_math.c
 * expands it); the semantics are codegen/kir/kernel.h's. */
#include "codegen/cpu/llvm_internal.h"

#define B (e->b)

static bool is_float(KType t) { return t == KT_F32 || t == KT_F64; }

static LLVMValueRef unary_f(CpuEmit *e, const KInst *in, LLVMValueRef x) {
    LLVMTypeRef ty = cpu_type(e->ctx, in->type);
    bool f32 = in->type == KT_F32;
    switch (in->op) {
    case KO_NEG: return LLVMBuildFNeg(B, x, "");
    case KO_ABS: return cpu_call1(e, "llvm.fabs", ty, x);
    case KO_EXP: return cpu_call1(e, "llvm.exp", ty, x);
    case KO_LOG: return cpu_call1(e, "llvm.log", ty, x);
    case KO_SQRT: return cpu_call1(e, "llvm.sqrt", ty, x);
    case KO_COS: return cpu_call1(e, "llvm.cos", ty, x);
    case KO_TRUNC: return cpu_call1(e, "llvm.trunc", ty, x);
    case KO_TANH: return cpu_libm1(e, f32 ? "tanhf" : "tanh", x); /* no intrinsic in LLVM 16 */
    case KO_ERF: return cpu_libm1(e, f32 ? "erff" : "erf", x);
    case KO_ADD: case KO_SUB: case KO_MUL: case KO_DIV: case KO_POW: case KO_AND:
    case KO_OR: case KO_XOR: case KO_SHR: case KO_EQ: case KO_NE: case KO_LT:
    case KO_LE: case KO_GT: case KO_GE: case KO_COUNT: break;
    }
    return NULL; /* the verifier admits no other unary op */
}

LLVMValueRef cpu_unary(CpuEmit *e, const KInst *in, LLVMValueRef x) {
    if (is_float(in->type)) return unary_f(e, in, x);
    return LLVMBuildSub(B, cpu_iconst(e, in->type, 0), x, ""); /* neg, the integer unary op */
}

/* Ordered predicates but for ne: C's comparisons, false with NaN but !=. */
static LLVMValueRef compare_f(CpuEmit *e, KOp op, LLVMValueRef a, LLVMValueRef b) {
    LLVMRealPredicate p = op == KO_EQ ? LLVMRealOEQ : op == KO_NE ? LLVMRealUNE
                        : op == KO_LT ? LLVMRealOLT : op == KO_LE ? LLVMRealOLE
                        : op == KO_GT ? LLVMRealOGT : LLVMRealOGE;
    return LLVMBuildFCmp(B, p, a, b, "");
}

/* Signed, but bool (i1) unsigned: false < true. */
static LLVMValueRef compare_i(CpuEmit *e, KOp op, KType t, LLVMValueRef a, LLVMValueRef b) {
    bool u = t == KT_BOOL;
    LLVMIntPredicate p = op == KO_EQ ? LLVMIntEQ : op == KO_NE ? LLVMIntNE
                       : op == KO_LT ? (u ? LLVMIntULT : LLVMIntSLT)
                       : op == KO_LE ? (u ? LLVMIntULE : LLVMIntSLE)
                       : op == KO_GT ? (u ? LLVMIntUGT : LLVMIntSGT)
                       : (u ? LLVMIntUGE : LLVMIntSGE);
    return LLVMBuildICmp(B, p, a, b, "");
}

static LLVMValueRef arith_f(CpuEmit *e, KOp op, KType t, LLVMValueRef a, LLVMValueRef b) {
    LLVMTypeRef ty = cpu_type(e->ctx, t);
    switch (op) {
    case KO_ADD: return LLVMBuildFAdd(B, a, b, "");
    case KO_SUB: return LLVMBuildFSub(B, a, b, "");
    case KO_MUL: return LLVMBuildFMul(B, a, b, "");
    case KO_DIV: return LLVMBuildFDiv(B, a, b, "");
    case KO_POW: return cpu_intrinsic(e, "llvm.pow", &ty, 1, (LLVMValueRef[]){a, b}, 2);
    case KO_AND: case KO_OR: case KO_XOR: case KO_SHR: case KO_EQ: case KO_NE:
    case KO_LT: case KO_LE: case KO_GT: case KO_GE: case KO_NEG: case KO_ABS:
    case KO_EXP: case KO_LOG: case KO_SQRT: case KO_TANH: case KO_ERF: case KO_COS:
    case KO_TRUNC: case KO_COUNT: break;
    }
    return NULL;
}

/* add/sub/mul wrap; div's divisor is never 0 or -1 of the minimum. */
static LLVMValueRef arith_i(CpuEmit *e, KOp op, LLVMValueRef a, LLVMValueRef b) {
    switch (op) {
    case KO_ADD: return LLVMBuildAdd(B, a, b, "");
    case KO_SUB: return LLVMBuildSub(B, a, b, "");
    case KO_MUL: return LLVMBuildMul(B, a, b, "");
    case KO_DIV: return LLVMBuildSDiv(B, a, b, "");
    case KO_AND: return LLVMBuildAnd(B, a, b, "");
    case KO_OR: return LLVMBuildOr(B, a, b, "");
    case KO_XOR: return LLVMBuildXor(B, a, b, "");
    case KO_SHR: return LLVMBuildLShr(B, a, b, "");
    case KO_POW: case KO_EQ: case KO_NE: case KO_LT: case KO_LE: case KO_GT: case KO_GE:
    case KO_NEG: case KO_ABS: case KO_EXP: case KO_LOG: case KO_SQRT: case KO_TANH:
    case KO_ERF: case KO_COS: case KO_TRUNC: case KO_COUNT: break;
    }
    return NULL;
}

/* t is the operands' type. */
LLVMValueRef cpu_binary(CpuEmit *e, KOp op, KType t, LLVMValueRef a, LLVMValueRef b) {
    if (kop_is_compare(op)) return is_float(t) ? compare_f(e, op, a, b) : compare_i(e, op, t, a, b);
    return is_float(t) ? arith_f(e, op, t, a, b) : arith_i(e, op, a, b);
}

/* Never to bool (the verifier); float -> int only for integers in range. */
LLVMValueRef cpu_cast(CpuEmit *e, KType to, KType from, LLVMValueRef x) {
    if (to == from) return x;
    LLVMTypeRef tt = cpu_type(e->ctx, to);
    if (is_float(from) && is_float(to))
        return to == KT_F32 ? LLVMBuildFPTrunc(B, x, tt, "") : LLVMBuildFPExt(B, x, tt, "");
    if (is_float(from)) return LLVMBuildFPToSI(B, x, tt, "");
    if (is_float(to))
        return from == KT_BOOL ? LLVMBuildUIToFP(B, x, tt, "") : LLVMBuildSIToFP(B, x, tt, "");
    if (from == KT_BOOL) return LLVMBuildZExt(B, x, tt, "");
    if (ktype_size(to) < ktype_size(from)) return LLVMBuildTrunc(B, x, tt, "");
    return LLVMBuildSExt(B, x, tt, "");
}
