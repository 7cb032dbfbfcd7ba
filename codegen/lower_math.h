/* The tensor IR's elementwise math in kernel-IR primitives: the one place
 * the compound formulas (sigmoid, softplus and its log1p, tanh and erf in
 * double for f32, sign, relu, NaN-aware max/min, C's integer division,
 * float -> int casts, Philox 4x32-10 with Box-Muller) are written for the
 * backends. Kernel lowering (codegen/lower.c) calls these; the renderers
 * see only the primitives of codegen/kir/kernel.h.
 *
 * The semantics are the reference interpreter's (ir/scalar.h, base/philox.h);
 * tests/codegen/test_lower_math.c evaluates every expansion with the kernel
 * evaluator against those C definitions. Every builder returns the value id
 * of the result; lm_unary and lm_binary return -1 for an op they have no
 * rule for. */
#ifndef IGRC_CODEGEN_LOWER_MATH_H
#define IGRC_CODEGEN_LOWER_MATH_H

#include "codegen/kir/kernel.h"
#include "ir/ops.h"

typedef enum { KRAND_UNIFORM, KRAND_NORMAL, KRAND_BERNOULLI } KRandom;

/* op an elementwise unary op of the tensor IR (NEG ... NOT, CAST excluded;
 * STOP_GRADIENT is the identity); beta is softplus's. */
int lm_unary(KernelDef *k, OpKind op, int a, double beta);
/* op an elementwise binary op of the tensor IR, ADD ... GE. */
int lm_binary(KernelDef *k, OpKind op, int a, int b);
/* The tensor IR's cast: float -> i32 truncates and wraps (non-finite: 0),
 * float -> i64 truncates and saturates (NaN: 0), anything -> bool is x != 0. */
int lm_cast(KernelDef *k, KType to, int a);
/* Philox numbers (base/philox.h) for counter (index, stream), key (seed,
 * step): uniform in (0, 1), normal by Box-Muller in double, bernoulli 1 with
 * probability p; result type t (f32 or f64). seed, step i32; index i64. */
int lm_random(KernelDef *k, KRandom r, KType t, int seed, int step, int index,
              uint32_t stream, double p);

#endif
