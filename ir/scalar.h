/* The float semantics of the elementwise ops on one value, in double: the
 * single definition the reference interpreter and the kernel IR's
 * evaluator (codegen/kernel_eval.c) both compute with. */
#ifndef IGRC_SCALAR_H
#define IGRC_SCALAR_H

#include "ir/ops.h"

/* op one of the elementwise unary primitives, NEG ... STOP_GRADIENT (beta
 * for softplus; cast and stop_gradient are identities); NaN for an op
 * without a value. */
double ir_unary_f64(OpKind op, double x, double beta);
/* op one of ADD ... GE (comparisons and and/or give 0 or 1); i32 makes
 * mul wrap modulo 2^32 (the stored result is wrapped by the caller). NaN
 * for an op without a value. */
double ir_binary_f64(OpKind op, double a, double b, bool i32);
/* max/min propagating NaN (as torch.maximum does), unlike fmax/fmin. */
double ir_max_f64(double a, double b);
double ir_min_f64(double a, double b);

#endif
