/* Integrated gradients, unrolled: the m path points (k/m) x, k = 1..m, are
 * one batch of m*B rows through the network, so one forward and one
 * backward serve every path point (SPEC §1). Row k*B + b is path point k of
 * sample b; batch-norm statistics in training mode are per path point
 * (groups of B rows), as m separate calls would compute them. */
#include <string.h>

#include "frontend/objective.h"

static const char *nm(Builder *b, const char *base, const char *part) {
    return arena_printf(b->m->arena, "%s.%s", base, part);
}

/* [B, ...] -> [m, B, ...] by repeating along a new leading axis. */
static int tile(Builder *b, const char *name, int v, int m) {
    Type t = *b_type(b, v), big = t;
    int64_t one[IR_MAX_RANK];
    one[0] = 1;
    for (int i = 0; i < t.rank; i++) one[i + 1] = t.dim[i];
    big.rank = t.rank + 1;
    big.dim[0] = m;
    for (int i = 0; i < t.rank; i++) big.dim[i + 1] = t.dim[i];
    int r = b_reshape(b, nm(b, name, "r"), v, t.rank + 1, one);
    return b_broadcast(b, name, r, &big);
}

/* Merges the two leading axes: [m, B, ...] -> [m*B, ...]. */
static int merge2(Builder *b, const char *name, int v) {
    Type t = *b_type(b, v);
    int64_t d[IR_MAX_RANK];
    d[0] = t.dim[0] * t.dim[1];
    for (int i = 2; i < t.rank; i++) d[i - 1] = t.dim[i];
    return b_reshape(b, name, v, t.rank - 1, d);
}

/* alpha_k = k/m as [m, 1, ..., 1] broadcast to [m, B, ...]. */
static int alphas(Builder *b, const char *base, int m, const Type *to) {
    double *a = arena_alloc(b->m->arena, sizeof(double) * (size_t)m);
    for (int k = 0; k < m; k++) a[k] = (double)(k + 1) / m;
    int64_t d[IR_MAX_RANK];
    d[0] = m;
    for (int i = 1; i < to->rank; i++) d[i] = 1;
    Attr at = attr_floats("data", a, m);
    int c = b_source(b, OP_CONSTANT, nm(b, base, "alpha"), NULL, 0, &at, 1, type_make(to->dtype, to->rank, d));
    return b_broadcast(b, nm(b, base, "alpha.b"), c, to);
}

/* The scalar whose path gradient IG averages: the true logits (attribution
 * of the prediction), or the cross-entropy loss (IG-NORM's attribution of
 * the loss), summed over the m*B path rows. */
static int target_sum(Builder *b, const char *name, int logits, int ys, const char *target) {
    int ins[2] = {logits, ys};
    if (strcmp(target, "ce") == 0) {
        Attr a = attr_str("reduction", "sum");
        return b_node(b, OP_CROSS_ENTROPY, nm(b, name, "target_sum"), ins, 2, &a, 1);
    }
    int zy = b_node(b, OP_GATHER, nm(b, name, "target_logit"), ins, 2, NULL, 0);
    int64_t ax = 0;
    return b_reduce(b, OP_REDUCE_SUM, nm(b, name, "target_sum"), zy, &ax, 1, false);
}

int ig_emit(ObjEnv *oe, const IgSpec *s, int x, int y) {
    Builder *b = oe->env->b;
    const char *name = s->name;
    int steps = s->steps;
    Type xt = *b_type(b, x);
    /* delta = x - baseline; path = baseline + alpha_k delta */
    int delta = s->baseline < 0 ? x : b_binary(b, OP_SUB, nm(b, name, "delta"), x, s->baseline);
    int ds = tile(b, nm(b, name, "delta_tiled"), delta, steps);
    Type big = *b_type(b, ds);
    int scaled = b_binary(b, OP_MUL, nm(b, name, "scaled"), ds, alphas(b, name, steps, &big));
    if (s->baseline >= 0)
        scaled = b_binary(b, OP_ADD, nm(b, name, "shifted"), scaled, tile(b, nm(b, name, "base_tiled"), s->baseline, steps));
    int path = merge2(b, nm(b, name, "path"), scaled);
    NetEnv env = *oe->env;
    env.training = s->training;
    env.bn_groups = steps;
    env.stat_updates = NULL; /* path points never update running statistics */
    env.notes = false;
    env.value_prefix = name;
    int logits = net_emit(&env, s->network, path);
    int ys = merge2(b, nm(b, name, "y_tiled"), tile(b, nm(b, name, "y_tiled.m"), y, steps));
    int total = target_sum(b, name, logits, ys, s->target);
    int gins[2] = {total, path};
    int g = b_node(b, OP_GRAD, nm(b, name, "path_grad"), gins, 2, NULL, 0);
    int64_t d[IR_MAX_RANK], ax = 0;
    d[0] = steps;
    for (int i = 0; i < xt.rank; i++) d[i + 1] = xt.dim[i];
    int gm = b_reshape(b, nm(b, name, "path_grad.m"), g, xt.rank + 1, d);
    int sum = b_reduce(b, OP_REDUCE_SUM, nm(b, name, "grad_sum"), gm, &ax, 1, false);
    int inv = b_broadcast(b, nm(b, name, "inv_m"), b_const(b, nm(b, name, "inv_m.s"), 1.0 / steps, type_scalar(xt.dtype)), &xt);
    int avg = b_binary(b, OP_MUL, nm(b, name, "avg_grad"), sum, inv);
    return b_binary(b, OP_MUL, name, delta, avg);
}
