/* The float semantics of the elementwise ops on one value, in double: the
 * single definition the reference interpreter and the kernel IR's
 * evaluator (codegen/kernel_eval.c) both compute with. */
#ifndef IGRC_SCALAR_H
#define IGRC_SCALAR_H

#include "ir/ops.h"

/* op one of NEG ... SOFTPLUS (beta for softplus), NOT, CAST and
 * STOP_GRADIENT (identities). */
double ir_unary_f64(OpKind op, double x, double beta);
/* max/min propagating NaN (as torch.maximum does), unlike fmax/fmin. */
double ir_max_f64(double a, double b);
double ir_min_f64(double a, double b);

#endif
