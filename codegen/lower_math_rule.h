/* Private to codegen/lower_math.c and the elementwise math in the ops/
 * families' codegen sections: shorthands for building kernel IR.
 *
 * Every builder appends an instruction, and C leaves the order in which a
 * call's arguments are evaluated open: values are built into locals one
 * statement at a time, so the kernel text is the same from every compiler. */
#ifndef IGRC_LOWER_MATH_RULE_H
#define IGRC_LOWER_MATH_RULE_H

#include "codegen/codegen_rows.h"
#include "codegen/lower_math.h"

typedef KernelDef K;

static inline KType ty(const K *k, int v) { return k->insts[v].type; }
static inline bool fl(KType t) { return t == KT_F32 || t == KT_F64; }
static inline int cf(K *k, KType t, double v) { return k_const_f(k, t, v); }
static inline int ci(K *k, KType t, int64_t v) { return k_const_i(k, t, v); }
/* 0 of v's type: comparisons are against it. */
static inline int zero_of(K *k, int v) {
    return fl(ty(k, v)) ? cf(k, ty(k, v), 0) : ci(k, ty(k, v), 0);
}
static inline int bin(K *k, KOp op, int a, int b) { return k_binary(k, op, a, b); }
static inline int un(K *k, KOp op, int a) { return k_unary(k, op, a); }
static inline int sel(K *k, int c, int a, int b) { return k_select(k, c, a, b); }

#endif
