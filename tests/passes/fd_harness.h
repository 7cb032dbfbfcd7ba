/* Finite-difference harness for gradient tests, shared by test_autodiff.c
 * (every VJP rule) and test_composites.c (the decomposed composites).
 *
 * For op y = op(x...) it builds L = sum(w * y) with a fixed random w (so
 * the cotangent is not all ones), asks for grad(L, x_i), and compares with
 * (L(x + h e_j) - L(x - h e_j)) / 2h on every coordinate, in float64
 * through the reference interpreter after the full pass pipeline. Second
 * order: G = sum(v * grad(L, x_0)) and grad(G, x_i) against differences of
 * G. Operands are sampled away from kinks, where the function is smooth. */
#ifndef IGRC_TESTS_FD_HARNESS_H
#define IGRC_TESTS_FD_HARNESS_H

#include <stdbool.h>

#include "ir/ir.h"

#define MAXIN 5

typedef struct {
    OpKind op;
    int nin;
    Type in[MAXIN];
    DType kind[MAXIN];   /* DT_F64: differentiable input; DT_I32/DT_BOOL: fixed data */
    Attr attrs[6];
    int nattrs;
    double lo, hi;       /* float operand range */
    double gap;          /* minimum distance between float operand values (ties) */
    bool away_from_zero; /* |x| >= 0.2 (ReLU, abs, sign kinks) */
    bool positive;       /* x in [lo, hi] with lo > 0 (log, sqrt, pow base) */
    int int_hi;          /* integer data in [0, int_hi) */
    const double *fixed[MAXIN]; /* operand data to use instead of sampling */
} Case;

static inline Type t64(int rank, const int64_t *d) { return type_make(DT_F64, rank, d); }

/* The pseudo-random numbers the harness samples with, in [0, 1). */
double urand(void);

/* Checks first (and with second, second-order) gradients of c.op. */
void check(Case c, bool second);

/* Asserts that L and every first- and second-order gradient output is
 * finite, for points where finite differences do not apply (a kink). */
void check_finite(Case c);

#endif
