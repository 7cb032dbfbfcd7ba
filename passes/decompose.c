/* Decompose: rewrites every composite op into primitives, so autodiff,
 * fusion and the backends see only the primitive table. The last node of
 * each expansion keeps the composite's name, so later dumps still read
 * like the model (`fc1` stays `fc1`); intermediates get `<name>.<part>`. */
#include <string.h>

#include "passes/pass.h"
#include "passes/rewrite.h"

typedef struct {
    Builder *b;
    const Node *n;   /* the composite being expanded */
    const int *in;   /* its operands, already remapped */
} Exp;

static const char *part(Exp *e, const char *what) {
    return arena_printf(e->b->m->arena, "%s.%s", e->n->name, what);
}

static int scalar(Exp *e, const char *what, double v, const Type *like) {
    Type t = *like;
    int c = b_const(e->b, part(e, what), v, type_scalar(t.dtype));
    return b_broadcast(e->b, part(e, what), c, &t);
}

/* linear: y = x w^T (+ b) */
static int linear(Exp *e) {
    int64_t perm[2] = {1, 0};
    Attr a = attr_ints("perm", perm, 2);
    int wt = b_node(e->b, OP_TRANSPOSE, part(e, "wT"), &e->in[1], 1, &a, 1);
    bool bias = e->n->ninputs == 3;
    int ins[2] = {e->in[0], wt};
    int y = b_node(e->b, OP_MATMUL, bias ? part(e, "mm") : e->n->name, ins, 2, NULL, 0);
    if (!bias || y < 0) return y;
    int bb = b_bcast_axis(e->b, part(e, "bias"), e->in[2], b_type(e->b, y), 1);
    return b_binary(e->b, OP_ADD, e->n->name, y, bb);
}

/* Axes a batch norm reduces over: every axis but the channel axis 1. */
static int stat_axes(const Type *t, int64_t *axes) {
    int k = 0;
    for (int i = 0; i < t->rank; i++)
        if (i != 1) axes[k++] = i;
    return k;
}

/* Batch statistics: biased variance, as the normalisation uses. */
static void batch_stats(Exp *e, int x, int *mean, int *var) {
    Builder *b = e->b;
    const Type t_v = *b_type(b, x), *t = &t_v;
    int64_t axes[IR_MAX_RANK];
    int k = stat_axes(t, axes);
    double count = (double)type_numel(t) / (double)t->dim[1];
    Type c = type_make(t->dtype, 1, &t->dim[1]);
    int inv = scalar(e, "inv_count", 1.0 / count, &c);
    int s = b_reduce(b, OP_REDUCE_SUM, part(e, "sum"), x, axes, k, false);
    *mean = b_binary(b, OP_MUL, part(e, "batch_mean"), s, inv);
    int xc = b_binary(b, OP_SUB, part(e, "xc"), x, b_bcast_axis(b, part(e, "mean.b"), *mean, t, 1));
    int sq = b_binary(b, OP_MUL, part(e, "xc2"), xc, xc);
    int ss = b_reduce(b, OP_REDUCE_SUM, part(e, "sumsq"), sq, axes, k, false);
    *var = b_binary(b, OP_MUL, part(e, "batch_var"), ss, inv);
}

/* y = (x - mean) * rsqrt(var + eps) * gamma + beta, per channel. Training
 * mode normalises with the batch's statistics, evaluation with the running
 * ones. (Running-statistics updates are state outputs added by the
 * training lowering, not by this op.) */
static int batch_norm(Exp *e) {
    Builder *b = e->b;
    int x = e->in[0], mean = e->in[3], var = e->in[4];
    const Type t_v = *b_type(b, x), *t = &t_v;
    Type c = type_make(t->dtype, 1, &t->dim[1]);
    if (node_int(e->n, "training", 0)) batch_stats(e, x, &mean, &var);
    int eps = scalar(e, "eps", node_float(e->n, "eps", 1e-5), &c);
    int rstd = b_unary(b, OP_RSQRT, part(e, "rstd"), b_binary(b, OP_ADD, part(e, "var_eps"), var, eps));
    int scale = b_binary(b, OP_MUL, part(e, "scale"), rstd, e->in[1]);
    int shift = b_binary(b, OP_SUB, part(e, "shift"), e->in[2],
                         b_binary(b, OP_MUL, part(e, "mean_scale"), mean, scale));
    int xs = b_binary(b, OP_MUL, part(e, "xs"), x, b_bcast_axis(b, part(e, "scale.b"), scale, t, 1));
    return b_binary(b, OP_ADD, e->n->name, xs, b_bcast_axis(b, part(e, "shift.b"), shift, t, 1));
}

/* Inverted dropout: y = x * mask / (1 - p), mask ~ Bernoulli(1 - p). */
static int dropout(Exp *e) {
    Builder *b = e->b;
    double p = node_float(e->n, "p", 0.5);
    int x = e->in[0];
    if (!node_int(e->n, "training", 0) || p == 0.0) return x; /* identity in evaluation */
    const Type t_v = *b_type(b, x), *t = &t_v;
    Attr a[2] = {attr_float("p", 1.0 - p), attr_int("stream", node_int(e->n, "stream", 0))};
    int mask = b_source(b, OP_RANDOM_BERNOULLI, part(e, "mask"), &e->in[1], 1, a, 2, *t);
    int keep = scalar(e, "rescale", 1.0 / (1.0 - p), t);
    return b_binary(b, OP_MUL, e->n->name, b_binary(b, OP_MUL, part(e, "masked"), x, mask), keep);
}

/* Shifted logits z - max(z) along axis: the stable core of both softmaxes. */
static int shifted(Exp *e, int x, int64_t axis) {
    Builder *b = e->b;
    const Type t_v = *b_type(b, x), *t = &t_v;
    int mx = b_reduce(b, OP_REDUCE_MAX, part(e, "max"), x, &axis, 1, true);
    mx = b_unary(b, OP_STOP_GRADIENT, part(e, "max.sg"), mx);
    return b_binary(b, OP_SUB, part(e, "shifted"), x, b_broadcast(b, part(e, "max.b"), mx, t));
}

static int log_softmax_of(Exp *e, int x, int64_t axis, const char *name) {
    Builder *b = e->b;
    const Type t_v = *b_type(b, x), *t = &t_v;
    int z = shifted(e, x, axis);
    int s = b_reduce(b, OP_REDUCE_SUM, part(e, "sumexp"), b_unary(b, OP_EXP, part(e, "exp"), z),
                     &axis, 1, true);
    int lse = b_broadcast(b, part(e, "lse.b"), b_unary(b, OP_LOG, part(e, "lse"), s), t);
    return b_binary(b, OP_SUB, name, z, lse);
}

static int softmax(Exp *e) {
    Builder *b = e->b;
    int64_t axis = node_int(e->n, "axis", 0);
    const Type t_v = *b_type(b, e->in[0]), *t = &t_v;
    int ex = b_unary(b, OP_EXP, part(e, "exp"), shifted(e, e->in[0], axis));
    int s = b_reduce(b, OP_REDUCE_SUM, part(e, "sum"), ex, &axis, 1, true);
    return b_binary(b, OP_DIV, e->n->name, ex, b_broadcast(b, part(e, "sum.b"), s, t));
}

/* CE = -log_softmax(z)[y], reduced by mean (default), sum or none. */
static int cross_entropy(Exp *e) {
    Builder *b = e->b;
    const char *red = node_str(e->n, "reduction");
    bool none = red && strcmp(red, "none") == 0, sum = red && strcmp(red, "sum") == 0;
    int ls = log_softmax_of(e, e->in[0], 1, part(e, "log_softmax"));
    int ins[2] = {ls, e->in[1]};
    int picked = b_node(b, OP_GATHER, part(e, "picked"), ins, 2, NULL, 0);
    int nll = b_unary(b, OP_NEG, none ? e->n->name : part(e, "nll"), picked);
    if (none || nll < 0) return nll;
    int64_t ax = 0;
    int total = b_reduce(b, OP_REDUCE_SUM, sum ? e->n->name : part(e, "total"), nll, &ax, 1, false);
    if (sum || total < 0) return total;
    double n = (double)b_type(b, nll)->dim[0];
    Type st = type_scalar(b_type(b, nll)->dtype);
    return b_binary(b, OP_MUL, e->n->name, total, scalar(e, "inv_n", 1.0 / n, &st));
}

static int expand(Exp *e) {
    switch (e->n->op) {
    case OP_LINEAR: return linear(e);
    case OP_BATCH_NORM: return batch_norm(e);
    case OP_DROPOUT: return dropout(e);
    case OP_SOFTMAX: return softmax(e);
    case OP_LOG_SOFTMAX:
        return log_softmax_of(e, e->in[0], node_int(e->n, "axis", 0), e->n->name);
    case OP_CROSS_ENTROPY: return cross_entropy(e);
    default:
        diag_error(e->b->d, EXIT_RUNTIME, "node '%s': no decomposition for composite op %s",
                   e->n->name, op_name(e->n->op));
        return -1;
    }
}

static bool decompose_function(Module *m, Function *f, Diag *d) {
    Rewriter rw;
    rw_begin(&rw, m, f, d);
    for (int id = 0; id < f->n && !diag_failed(d); id++) {
        const Node *n = &f->nodes[id];
        if (op_info(n->op)->cls != OC_COMPOSITE) {
            rw_copy(&rw, id);
            continue;
        }
        int in[8];
        for (int i = 0; i < n->ninputs && i < 8; i++) in[i] = rw.map[n->inputs[i]];
        Exp e = {&rw.b, n, in};
        rw.map[id] = expand(&e);
    }
    if (diag_failed(d)) diag_prefix(d, "decompose, function '%s'", f->name);
    return rw_finish(&rw);
}

bool pass_decompose(Module *m, PassCtx *ctx) {
    for (int i = 0; i < m->nfuncs; i++)
        if (!decompose_function(m, m->funcs[i], ctx->d)) return false;
    return true;
}
