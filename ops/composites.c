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
            ATTRS(A_FLOAT("eps", 0, 1), A_INT("groups", 1, 1 << 20), A_REQ_INT("training", 0, 1))),
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

#elif defined(IGRC_OPS_CODEGEN)

#else
#error "ops/ files are compiled with IGRC_OPS_IR, IGRC_OPS_PASSES or IGRC_OPS_CODEGEN"
#endif
