/* The composites family: linear, batch_norm, dropout, softmax, log_softmax,
 * cross_entropy, kl_div, cosine_similarity, mart_bce, pearson, gelu, silu,
 * leaky_relu, elu (semantics: ir/ops.h). Each section below is compiled into
 * one layer's library and ends with that layer's rows for these ops
 * (docs/architecture.md, "Folders and dependency direction"). */
#if defined(IGRC_OPS_IR)

#include <string.h>

#include "ir/op_rows.h"

/* ---- shape rules (the activations, elementwise, take the unary one of
 * ir/shape.c: a float operand); no kernels, flops or lowering: decompose
 * rewrites every composite into primitives first ---- */

static bool linear_rule(Rule *r, Type *out) {
    const Type *x = r->in[0], *w = r->in[1];
    if (x->rank != 2 || w->rank != 2 || x->dim[1] != w->dim[1] || x->dtype != w->dtype)
        return shape_fail_types(r, "expects x[N,K] and w[O,K]", x, w);
    if (r->n->ninputs == 3) {
        const Type *b = r->in[2];
        if (b->rank != 1 || b->dim[0] != w->dim[0] || b->dtype != w->dtype)
            return shape_fail_types(r, "bias must be [O]", b, w);
    }
    int64_t dims[2] = {x->dim[0], w->dim[0]};
    *out = type_make(x->dtype, 2, dims);
    return true;
}

static bool batch_norm_rule(Rule *r, Type *out) {
    const Type *x = r->in[0];
    if (x->rank < 2 || !dtype_is_float(x->dtype)) return shape_fail_type(r, "expects float x[N,C,...]", x);
    Type c = type_make(x->dtype, 1, &x->dim[1]);
    for (int i = 1; i < 5; i++)
        if (!type_equal(r->in[i], &c))
            return shape_fail_types(r, "gamma/beta/mean/var must be [C]", r->in[i], &c);
    int64_t groups = node_int(r->n, "groups", 1);
    if (x->dim[0] % groups != 0)
        return shape_failf(r, "groups=%lld must divide the batch of x, %lld", (long long)groups,
                     (long long)x->dim[0]);
    if (groups > 1 && node_int(r->n, "ranks", 1) > 1)
        return shape_failf(r, "groups and ranks: path-point groups keep their statistics per rank");
    /* the decomposition views x as [G, N/G, C, ...]: one more axis */
    if (groups > 1 && x->rank >= IR_MAX_RANK)
        return shape_fail_type(r, "groups > 1 needs x of rank < 6", x);
    *out = *x;
    return true;
}

static bool dropout_rule(Rule *r, Type *out) {
    *out = *r->in[0];
    return shape_need_float(r, r->in[0]) && shape_key_ok(r, r->in[1]);
}

static bool softmax_rule(Rule *r, Type *out) {
    const Type *x = r->in[0];
    if (node_int(r->n, "axis", 0) >= x->rank) return shape_fail_type(r, "axis out of range", x);
    *out = *x;
    return shape_need_float(r, x);
}

/* reduction=mean|sum|none over per-row values of z[N,...]: a scalar or [N]. */
static bool reduction_out(Rule *r, const Type *z, Type *out) {
    const char *red = node_str(r->n, "reduction");
    if (red && strcmp(red, "mean") && strcmp(red, "sum") && strcmp(red, "none"))
        return shape_fail(r, "reduction must be mean, sum or none, got '%s'%s", red, "");
    *out = (red && strcmp(red, "none") == 0) ? type_make(z->dtype, 1, z->dim) : type_scalar(z->dtype);
    return true;
}

/* cross_entropy and mart_bce */
static bool cross_entropy_rule(Rule *r, Type *out) {
    const Type *z = r->in[0], *y = r->in[1];
    if (z->rank != 2 || !dtype_is_float(z->dtype) || y->rank != 1 || y->dtype != DT_I32 ||
        y->dim[0] != z->dim[0])
        return shape_fail_types(r, "expects float logits[N,C] and i32 labels[N]", z, y);
    return reduction_out(r, z, out);
}

static bool kl_div_rule(Rule *r, Type *out) {
    const Type *p = r->in[0], *q = r->in[1];
    if (p->rank != 2 || !dtype_is_float(p->dtype) || !type_equal(p, q))
        return shape_fail_types(r, "expects float p_logits[N,C] and q_logits of the same type", p, q);
    return reduction_out(r, p, out);
}

/* cosine_similarity and pearson: one value per row of the flattened operands. */
static bool rowwise_rule(Rule *r, Type *out) {
    const Type *a = r->in[0], *b = r->in[1];
    if (a->rank < 1 || !dtype_is_float(a->dtype) || !type_equal(a, b))
        return shape_fail_types(r, "expects float a[N,...] and b of the same type", a, b);
    *out = type_make(a->dtype, 1, a->dim);
    return true;
}

const IrOpRow ops_composites_ir[] = {
    {OP_ROW(LINEAR, "linear", 2, 3, PK_OPAQUE, OC_COMPOSITE, NO_ATTRS), .shape = linear_rule},
    {OP_ROW(BATCH_NORM, "batch_norm", 5, 5, PK_OPAQUE, OC_COMPOSITE,
            ATTRS(A_FLOAT("eps", 0, 1), A_INT("groups", 1, 1 << 20), A_REQ_INT("training", 0, 1),
                  A_INT("ranks", 1, 1 << 20))),
     .shape = batch_norm_rule},
    {OP_ROW(DROPOUT, "dropout", 2, 2, PK_OPAQUE, OC_COMPOSITE,
            ATTRS(A_REQ_FLOAT("p", 0, 0.999999), A_REQ_INT("stream", 0, 4294967295.0),
                  A_REQ_INT("training", 0, 1))), .shape = dropout_rule},
    {OP_ROW(SOFTMAX, "softmax", 1, 1, PK_OPAQUE, OC_COMPOSITE, ATTRS(A_REQ_INT("axis", 0, 5))),
     .shape = softmax_rule},
    {OP_ROW(LOG_SOFTMAX, "log_softmax", 1, 1, PK_OPAQUE, OC_COMPOSITE,
            ATTRS(A_REQ_INT("axis", 0, 5))), .shape = softmax_rule},
    {OP_ROW(CROSS_ENTROPY, "cross_entropy", 2, 2, PK_OPAQUE, OC_COMPOSITE,
            ATTRS(A_STR("reduction"))), .shape = cross_entropy_rule},
    {OP_ROW(KL_DIV, "kl_div", 2, 2, PK_OPAQUE, OC_COMPOSITE,
            ATTRS(A_FLOAT("eps", 0, 1), A_STR("reduction"))), .shape = kl_div_rule},
    {OP_ROW(COSINE_SIMILARITY, "cosine_similarity", 2, 2, PK_OPAQUE, OC_COMPOSITE,
            ATTRS(A_FLOAT("eps", 0, 1))), .shape = rowwise_rule},
    {OP_ROW(MART_BCE, "mart_bce", 2, 2, PK_OPAQUE, OC_COMPOSITE, ATTRS(A_STR("reduction"))),
     .shape = cross_entropy_rule},
    {OP_ROW(PEARSON, "pearson", 2, 2, PK_OPAQUE, OC_COMPOSITE, NO_ATTRS), .shape = rowwise_rule},
    {OP_ROW(GELU, "gelu", 1, 1, PK_ELEMWISE, OC_COMPOSITE, ATTRS(A_STR("approximate")))},
    {OP_ROW(SILU, "silu", 1, 1, PK_ELEMWISE, OC_COMPOSITE, NO_ATTRS)},
    {OP_ROW(LEAKY_RELU, "leaky_relu", 1, 1, PK_ELEMWISE, OC_COMPOSITE,
            ATTRS(A_FLOAT("alpha", -1e6, 1e6)))},
    {OP_ROW(ELU, "elu", 1, 1, PK_ELEMWISE, OC_COMPOSITE, ATTRS(A_FLOAT("alpha", -1e6, 1e6)))},
    IR_ROWS_END,
};

#elif defined(IGRC_OPS_PASSES)

#include <string.h>

#include "passes/expand_rule.h"

/* ---- expansions into primitives (passes/decompose.c) ---- */

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

/* x's axes a batch norm keeps in its statistics: the channel axis 1, or
 * (group, channel) = (0, 2) of the grouped view [G, N/G, C, ...]. */
static bool kept_axis(int i, bool grouped) { return grouped ? i == 0 || i == 2 : i == 1; }

static int stat_axes(const Type *t, bool grouped, int64_t *axes) {
    int k = 0;
    for (int i = 0; i < t->rank; i++)
        if (!kept_axis(i, grouped)) axes[k++] = i;
    return k;
}

/* A statistic ([C] or [G, C]) reshaped to t's rank and broadcast to t. */
static int spread_stat(Exp *e, const char *what, int v, const Type *to_ptr, bool grouped) {
    const Type to = *to_ptr;
    int64_t dims[IR_MAX_RANK];
    for (int i = 0; i < to.rank; i++) dims[i] = kept_axis(i, grouped) ? to.dim[i] : 1;
    int r = b_reshape(e->b, part(e, arena_printf(e->b->m->arena, "%s.r", what)), v, to.rank, dims);
    return b_broadcast(e->b, part(e, what), r, &to);
}

/* A per-channel sum of this rank's rows, over the job's `ranks` ranks
 * when ranks > 1 (train.sync_bn: statistics of the global batch). */
static int stat_sum(Exp *e, const char *what, int v, const int64_t *axes, int k, int64_t ranks) {
    int s = b_reduce(e->b, OP_REDUCE_SUM, part(e, what), v, axes, k, false);
    if (ranks == 1) return s;
    return b_unary(e->b, OP_RANK_SUM, part(e, arena_printf(e->b->m->arena, "%s.ranks", what)), s);
}

/* Batch statistics over the axes not kept (and over `ranks` ranks' rows):
 * biased variance, as the normalisation uses. */
static void batch_stats(Exp *e, int x, bool grouped, int *mean, int *var) {
    Builder *b = e->b;
    const Type t_v = *b_type(b, x), *t = &t_v;
    int64_t axes[IR_MAX_RANK], ranks = grouped ? 1 : node_int(e->n, "ranks", 1);
    int k = stat_axes(t, grouped, axes);
    Type st = {.dtype = t->dtype};
    double count = (double)type_numel(t) * (double)ranks;
    for (int i = 0; i < t->rank; i++)
        if (kept_axis(i, grouped)) st.dim[st.rank++] = t->dim[i], count /= (double)t->dim[i];
    int inv = scalar(e, "inv_count", 1.0 / count, &st);
    *mean = b_binary(b, OP_MUL, part(e, "batch_mean"), stat_sum(e, "sum", x, axes, k, ranks), inv);
    int xc = b_binary(b, OP_SUB, part(e, "xc"), x, spread_stat(e, "mean.b", *mean, t, grouped));
    int sq = b_binary(b, OP_MUL, part(e, "xc2"), xc, xc);
    *var = b_binary(b, OP_MUL, part(e, "batch_var"), stat_sum(e, "sumsq", sq, axes, k, ranks), inv);
}

/* y = (x - mean) * rsqrt(var + eps) * gamma + beta, per channel (and per
 * group: statistics of shape st). Training mode normalises with the batch's
 * statistics, evaluation with the running ones. (Running-statistics updates
 * are state outputs added by the training lowering, not by this op.) */
static int normalise(Exp *e, int x, bool grouped, const char *name) {
    Builder *b = e->b;
    int mean = e->in[3], var = e->in[4];
    if (x < 0) return -1;
    const Type t_v = *b_type(b, x), *t = &t_v;
    if (node_int(e->n, "training", 0)) batch_stats(e, x, grouped, &mean, &var);
    if (mean < 0) return -1;
    const Type st = *b_type(b, mean);
    int eps = scalar(e, "eps", node_float(e->n, "eps", 1e-5), &st);
    int rstd = b_unary(b, OP_RSQRT, part(e, "rstd"), b_binary(b, OP_ADD, part(e, "var_eps"), var, eps));
    int gamma = b_broadcast(b, part(e, "gamma.g"), e->in[1], &st);
    int beta = b_broadcast(b, part(e, "beta.g"), e->in[2], &st);
    int scale = b_binary(b, OP_MUL, part(e, "scale"), rstd, gamma);
    int shift = b_binary(b, OP_SUB, part(e, "shift"), beta,
                         b_binary(b, OP_MUL, part(e, "mean_scale"), mean, scale));
    int xs = b_binary(b, OP_MUL, part(e, "xs"), x, spread_stat(e, "scale.b", scale, t, grouped));
    return b_binary(b, OP_ADD, name, xs, spread_stat(e, "shift.b", shift, t, grouped));
}

/* groups=G (training): x [N,C,...] is viewed as [G, N/G, C, ...] so each
 * group of consecutive samples gets its own statistics (IG's path points,
 * as G separate calls would), then reshaped back. Evaluation uses the
 * running statistics, so groups do not matter there. */
static int batch_norm(Exp *e) {
    Builder *b = e->b;
    int64_t g = node_int(e->n, "groups", 1);
    if (g == 1 || !node_int(e->n, "training", 0)) return normalise(e, e->in[0], false, e->n->name);
    const Type t = *b_type(b, e->in[0]);
    int64_t dims[IR_MAX_RANK] = {g, t.dim[0] / g};
    for (int i = 1; i < t.rank; i++) dims[i + 1] = t.dim[i];
    int xg = b_reshape(b, part(e, "grouped"), e->in[0], t.rank + 1, dims);
    int y = normalise(e, xg, true, part(e, "y.grouped"));
    return b_reshape(b, e->n->name, y, t.rank, t.dim);
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

static int softmax_of(Exp *e, int x, int64_t axis, const char *name) {
    Builder *b = e->b;
    const Type t_v = *b_type(b, x), *t = &t_v;
    int ex = b_unary(b, OP_EXP, part(e, "exp"), shifted(e, x, axis));
    int s = b_reduce(b, OP_REDUCE_SUM, part(e, "sum"), ex, &axis, 1, true);
    return b_binary(b, OP_DIV, name, ex, b_broadcast(b, part(e, "sum.b"), s, t));
}

/* ---- losses: per-row values [N], then the node's reduction ---- */

static bool reduction_is(const Exp *e, const char *what) {
    const char *red = node_str(e->n, "reduction");
    return strcmp(red ? red : "mean", what) == 0;
}

/* The name of the per-row values: the composite's own with reduction=none. */
static const char *rows_name(Exp *e, const char *what) {
    return reduction_is(e, "none") ? e->n->name : part(e, what);
}

/* Sums (sum) or averages (mean, the default) rows [N]; none keeps them. */
static int reduce_rows(Exp *e, int rows) {
    Builder *b = e->b;
    bool sum = reduction_is(e, "sum");
    if (reduction_is(e, "none") || rows < 0) return rows;
    int64_t ax = 0;
    int total = b_reduce(b, OP_REDUCE_SUM, sum ? e->n->name : part(e, "total"), rows, &ax, 1, false);
    if (sum || total < 0) return total;
    double n = (double)b_type(b, rows)->dim[0];
    Type st = type_scalar(b_type(b, rows)->dtype);
    return b_binary(b, OP_MUL, e->n->name, total, scalar(e, "inv_n", 1.0 / n, &st));
}

/* -log_softmax(z)[y] per row, named name. */
static int nll_rows(Exp *e, int ls, const char *name) {
    int ins[2] = {ls, e->in[1]};
    int picked = b_node(e->b, OP_GATHER, part(e, "picked"), ins, 2, NULL, 0);
    return b_unary(e->b, OP_NEG, name, picked);
}

/* CE = -log_softmax(z)[y], reduced by mean (default), sum or none. */
static int cross_entropy(Exp *e) {
    int ls = log_softmax_of(e, e->in[0], 1, part(e, "log_softmax"));
    return reduce_rows(e, nll_rows(e, ls, rows_name(e, "nll")));
}

static int row_sum(Exp *e, const char *what, int x) {
    int64_t ax = 1;
    return b_reduce(e->b, OP_REDUCE_SUM, part(e, what), x, &ax, 1, false);
}

/* KL(p || q) = sum_c p_c (log p_c - log q_c) per row, with both logs from
 * log_softmax (finite where p_c underflows to 0). eps > 0 is MART's
 * log(q_c + eps). */
static int kl_div(Exp *e) {
    Builder *b = e->b;
    const Type t = *b_type(b, e->in[0]);
    double eps = node_float(e->n, "eps", 0.0);
    int lp = log_softmax_of(e, e->in[0], 1, part(e, "log_p"));
    int p = b_unary(b, OP_EXP, part(e, "p"), lp);
    int lq;
    if (eps > 0) {
        int q = softmax_of(e, e->in[1], 1, part(e, "q"));
        int qe = b_binary(b, OP_ADD, part(e, "q_eps"), q, scalar(e, "eps", eps, &t));
        lq = b_unary(b, OP_LOG, part(e, "log_q"), qe);
    } else {
        lq = log_softmax_of(e, e->in[1], 1, part(e, "log_q"));
    }
    int ratio = b_binary(b, OP_SUB, part(e, "log_ratio"), lp, lq);
    int terms = b_binary(b, OP_MUL, part(e, "terms"), p, ratio);
    int rows = b_reduce(b, OP_REDUCE_SUM, rows_name(e, "rows"), terms, (int64_t[]){1}, 1, false);
    return reduce_rows(e, rows);
}

/* x [N, ...] as rows [N, K]. */
static int flat_rows(Exp *e, const char *what, int x) {
    const Type t = *b_type(e->b, x);
    int64_t dims[2] = {t.dim[0], t.dim[0] ? type_numel(&t) / t.dim[0] : 0};
    return b_reshape(e->b, part(e, what), x, 2, dims);
}

/* cos = a.b / sqrt(max(|a|^2 |b|^2, eps^2)): the same value as
 * a.b / max(|a| |b|, eps), but no sqrt of 0 on the differentiated path.
 * sqrt's derivative at 0 is infinite, and 0 * inf is NaN in the adjoint of
 * a zero row; here the max routes a zero row's gradient to the constant
 * eps^2, so the value is 0 and every derivative is finite. */
static int cosine_rows(Exp *e, int a, int c, const char *name) {
    Builder *b = e->b;
    double eps = node_float(e->n, "eps", 1e-8);
    int dot = row_sum(e, "dot", b_binary(b, OP_MUL, part(e, "ab"), a, c));
    int na = row_sum(e, "aa", b_binary(b, OP_MUL, part(e, "a2"), a, a));
    int nc = row_sum(e, "bb", b_binary(b, OP_MUL, part(e, "b2"), c, c));
    int nn = b_binary(b, OP_MUL, part(e, "aa_bb"), na, nc);
    if (nn < 0) return -1;
    const Type t = *b_type(b, nn);
    int den2 = b_binary(b, OP_MAX, part(e, "den2"), nn, scalar(e, "eps2", eps * eps, &t));
    return b_binary(b, OP_DIV, name, dot, b_unary(b, OP_SQRT, part(e, "den"), den2));
}

static int cosine_similarity(Exp *e) {
    int a = flat_rows(e, "a", e->in[0]); /* sequenced: node order is deterministic */
    return cosine_rows(e, a, flat_rows(e, "b", e->in[1]), e->n->name);
}

/* x - mean(x) along each row of x [N, K]. */
static int centred(Exp *e, const char *what, int x) {
    Builder *b = e->b;
    if (x < 0) return -1;
    const Type t = *b_type(b, x);
    int64_t col[2] = {t.dim[0], 1};
    Type rt = type_make(t.dtype, 1, t.dim);
    Arena *ar = b->m->arena;
    int sum = row_sum(e, arena_printf(ar, "%s.sum", what), x);
    int mean = b_binary(b, OP_MUL, part(e, arena_printf(ar, "%s.mean", what)), sum,
                        scalar(e, "inv_k", 1.0 / (double)t.dim[1], &rt));
    int mr = b_reshape(b, part(e, arena_printf(ar, "%s.mean.r", what)), mean, 2, col);
    int mb = b_broadcast(b, part(e, arena_printf(ar, "%s.mean.b", what)), mr, &t);
    return b_binary(b, OP_SUB, part(e, what), x, mb);
}

/* Pearson correlation = cosine of the centred rows. */
static int pearson(Exp *e) {
    int a = centred(e, "a.c", flat_rows(e, "a", e->in[0]));
    int c = centred(e, "b.c", flat_rows(e, "b", e->in[1]));
    return cosine_rows(e, a, c, e->n->name);
}

/* w = the most probable wrong class: the true class masked to -1 (below
 * every probability), then argmax. An index: no gradient flows through it. */
static int wrong_class(Exp *e, int p) {
    Builder *b = e->b;
    if (p < 0) return -1;
    const Type t = *b_type(b, p);
    Attr oh[2] = {attr_int("depth", t.dim[1]), attr_dtype("dtype", DT_BOOL)};
    int is_y = b_node(b, OP_ONE_HOT, part(e, "is_y"), &e->in[1], 1, oh, 2);
    int ins[3] = {is_y, scalar(e, "minus_one", -1.0, &t), p};
    int masked = b_node(b, OP_SELECT, part(e, "wrong_p"), ins, 3, NULL, 0);
    Attr ax = attr_int("axis", 1);
    return b_node(b, OP_ARGMAX, part(e, "wrong"), &masked, 1, &ax, 1);
}

/* MART's BCE per row: CE(z, y) - log(1.0001 - p_w + 1e-12), p = softmax(z). */
static int mart_bce(Exp *e) {
    Builder *b = e->b;
    int ls = log_softmax_of(e, e->in[0], 1, part(e, "log_softmax"));
    int nll = nll_rows(e, ls, part(e, "nll"));
    int p = b_unary(b, OP_EXP, part(e, "p"), ls);
    int ins[2] = {p, wrong_class(e, p)};
    int pw = b_node(b, OP_GATHER, part(e, "p_wrong"), ins, 2, NULL, 0);
    if (pw < 0) return -1;
    const Type t = *b_type(b, pw);
    int gap = b_binary(b, OP_SUB, part(e, "gap"), scalar(e, "c1", 1.0001, &t), pw);
    int arg = b_binary(b, OP_ADD, part(e, "gap_eps"), gap, scalar(e, "c2", 1e-12, &t));
    int margin = b_unary(b, OP_LOG, part(e, "margin"), arg);
    return reduce_rows(e, b_binary(b, OP_SUB, rows_name(e, "rows"), nll, margin));
}

/* ---- activations (PyTorch's definitions; NaN propagates through each) ---- */

/* gelu: x (1 + erf(x / sqrt 2)) / 2, or with approximate="tanh"
 * x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2. */
static int gelu(Exp *e) {
    Builder *b = e->b;
    int x = e->in[0];
    const Type t = *b_type(b, x);
    const char *form = node_str(e->n, "approximate");
    bool tanh_form = form && !strcmp(form, "tanh");
    if (form && !tanh_form && strcmp(form, "none")) {
        diag_error(b->d, EXIT_BADINPUT, "node '%s': gelu's approximate must be \"none\" or \"tanh\", got '%s'",
                   e->n->name, form);
        return -1;
    }
    int s;
    if (tanh_form) {
        int x3 = b_binary(b, OP_MUL, part(e, "x3"), b_binary(b, OP_MUL, part(e, "x2"), x, x), x);
        int in = b_binary(b, OP_ADD, part(e, "cubic"), x,
                          b_binary(b, OP_MUL, part(e, "k_x3"), scalar(e, "k", 0.044715, &t), x3));
        int arg = b_binary(b, OP_MUL, part(e, "arg"), scalar(e, "c", 0.7978845608028654, &t), in);
        s = b_unary(b, OP_TANH, part(e, "tanh"), arg);
    } else {
        int arg = b_binary(b, OP_MUL, part(e, "arg"), x, scalar(e, "rsqrt2", 0.7071067811865476, &t));
        s = b_unary(b, OP_ERF, part(e, "erf"), arg);
    }
    int half = b_binary(b, OP_MUL, part(e, "half_x"), scalar(e, "half", 0.5, &t), x);
    return b_binary(b, OP_MUL, e->n->name, half,
                    b_binary(b, OP_ADD, part(e, "one_plus"), scalar(e, "one", 1.0, &t), s));
}

static int silu(Exp *e) {
    int x = e->in[0];
    return b_binary(e->b, OP_MUL, e->n->name, x, b_unary(e->b, OP_SIGMOID, part(e, "sigmoid"), x));
}

/* x > 0 ? x : neg, with neg computed for every element (select's VJP sends
 * zero to the branch not taken). */
static int positive_or(Exp *e, int neg) {
    Builder *b = e->b;
    int x = e->in[0];
    const Type t = *b_type(b, x);
    int pos = b_binary(b, OP_GT, part(e, "pos"), x, scalar(e, "zero", 0.0, &t));
    int ins[3] = {pos, x, neg};
    return b_node(b, OP_SELECT, e->n->name, ins, 3, NULL, 0);
}

static int leaky_relu(Exp *e) {
    const Type t = *b_type(e->b, e->in[0]);
    int alpha = scalar(e, "alpha", node_float(e->n, "alpha", 0.01), &t);
    return positive_or(e, b_binary(e->b, OP_MUL, part(e, "neg"), alpha, e->in[0]));
}

/* alpha (exp(min(x, 0)) - 1): the min keeps exp finite where the branch is
 * not taken, so its zero cotangent never meets an infinite slope. */
static int elu(Exp *e) {
    Builder *b = e->b;
    int x = e->in[0];
    const Type t = *b_type(b, x);
    int xm = b_binary(b, OP_MIN, part(e, "xmin"), x, scalar(e, "zero_m", 0.0, &t));
    int em1 = b_binary(b, OP_SUB, part(e, "expm1"), b_unary(b, OP_EXP, part(e, "exp"), xm),
                       scalar(e, "one", 1.0, &t));
    int alpha = scalar(e, "alpha", node_float(e->n, "alpha", 1.0), &t);
    return positive_or(e, b_binary(b, OP_MUL, part(e, "neg"), alpha, em1));
}

static int softmax(Exp *e) {
    return softmax_of(e, e->in[0], node_int(e->n, "axis", 0), e->n->name);
}

static int log_softmax(Exp *e) {
    return log_softmax_of(e, e->in[0], node_int(e->n, "axis", 0), e->n->name);
}

const PassOpRow ops_composites_passes[] = {
    {OP_LINEAR, .expand = linear},
    {OP_BATCH_NORM, .expand = batch_norm},
    {OP_DROPOUT, .expand = dropout},
    {OP_SOFTMAX, .expand = softmax},
    {OP_LOG_SOFTMAX, .expand = log_softmax},
    {OP_CROSS_ENTROPY, .expand = cross_entropy},
    {OP_KL_DIV, .expand = kl_div},
    {OP_COSINE_SIMILARITY, .expand = cosine_similarity},
    {OP_MART_BCE, .expand = mart_bce},
    {OP_PEARSON, .expand = pearson},
    {OP_GELU, .expand = gelu},
    {OP_SILU, .expand = silu},
    {OP_LEAKY_RELU, .expand = leaky_relu},
    {OP_ELU, .expand = elu},
    PASS_ROWS_END,
};

#elif defined(IGRC_OPS_CODEGEN)

#include "codegen/codegen_rows.h"

/* No rows: decompose leaves no composite for the backends. */
const CodegenOpRow ops_composites_codegen[] = {
    CODEGEN_ROWS_END,
};

#else
#error "ops/ files are compiled with IGRC_OPS_IR, IGRC_OPS_PASSES or IGRC_OPS_CODEGEN"
#endif
