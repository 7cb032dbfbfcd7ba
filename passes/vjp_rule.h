/* Private to autodiff's rule dispatch (passes/vjp.c) and the VJP rules in
 * the ops/ families' passes sections: the small builders every rule writes
 * its adjoint with. Intermediates are named d.<node>.<part>. */
#ifndef IGRC_VJP_RULE_H
#define IGRC_VJP_RULE_H

#include "passes/pass_rows.h"

static inline const char *nm(VjpCtx *c, const char *part) {
    return arena_printf(c->b->m->arena, "d.%s.%s", c->n->name, part);
}

static inline const Type *ty(VjpCtx *c, int v) { return b_type(c->b, v); }
static inline int in(VjpCtx *c, int i) { return c->n->inputs[i]; }

/* v broadcast to like's type. */
static inline int full(VjpCtx *c, const char *part, double v, const Type *like_ptr) {
    Type like = *like_ptr; /* may point into the node array, which b_const grows */
    int s = b_const(c->b, nm(c, part), v, type_scalar(like.dtype));
    return b_broadcast(c->b, nm(c, part), s, &like);
}

static inline int bin(VjpCtx *c, OpKind op, const char *part, int a, int b) {
    return b_binary(c->b, op, nm(c, part), a, b);
}

static inline int un(VjpCtx *c, OpKind op, const char *part, int a) {
    return b_unary(c->b, op, nm(c, part), a);
}

static inline Attr shape_attr(const char *key, const Type *t) {
    return attr_ints(key, t->dim, t->rank);
}

/* The rule of every operand without a gradient: piecewise constant or not
 * differentiable by definition (sources, sign, not, stop_gradient, and/or,
 * comparisons, argmax, one_hot). */
int vjp_none(VjpCtx *c, int i);

#endif
