/* Reverse-mode autodiff as an IR -> IR transform. The adjoint graph is
 * appended to the function being built, written with ordinary ops from
 * each op's VJP rule (its passes row, ops/<family>.c), so applying it again
 * to its own output gives second and higher derivatives with no special
 * cases. */
#ifndef IGRC_AUTODIFF_H
#define IGRC_AUTODIFF_H

#include "ir/builder.h"

#define VJP_NONE (-2)

typedef struct {
    Builder *b;
    const Node *n; /* the node being differentiated (a copy: b may grow f) */
    int out;       /* its value id */
    int ct;        /* cotangent of its output */
} VjpCtx;

/* Cotangent of operand i of c->n; VJP_NONE if it gets none; -1 on error. */
typedef int (*VjpRule)(VjpCtx *c, int i);
int vjp_rule(VjpCtx *c, int i);
/* Whether op has a rule (every primitive but fused does). */
bool vjp_has_rule(OpKind op);

/* Appends to b->f the gradients of value y (a float scalar, seeded with 1,
 * or any value seeded with cotangent seed >= 0) with respect to values
 * wrt[0..n), writing their ids to grads. A wrt that y does not depend on
 * gets zeros. Returns false on error (b->d says which node). */
bool ad_backward(Builder *b, int y, int seed, const int *wrt, int n, int *grads);

#endif
