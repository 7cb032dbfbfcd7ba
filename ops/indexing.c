/* The indexing family: one_hot, gather (semantics: ir/ops.h). Each section
 * below is compiled into one layer's library and ends with that layer's rows
 * for these ops (docs/architecture.md, "Folders and dependency direction"). */
#if defined(IGRC_OPS_IR)

#include "ir/op_rows.h"

/* ---- shape rules ---- */

static bool one_hot_rule(Rule *r, Type *out) {
    const Type *idx = r->in[0];
    if (idx->dtype != DT_I32 || idx->rank >= IR_MAX_RANK)
        return shape_fail_type(r, "expects i32 indices of rank < 6", idx);
    *out = *idx;
    out->dtype = (DType)node_int(r->n, "dtype", DT_F32);
    out->dim[out->rank++] = node_int(r->n, "depth", 1);
    return true;
}

static bool gather_rule(Rule *r, Type *out) {
    const Type *x = r->in[0], *idx = r->in[1];
    Type lead = *x;
    lead.rank = x->rank - 1;
    lead.dtype = DT_I32;
    if (x->rank < 1 || !type_equal(&lead, idx))
        return shape_fail_types(r, "expects x[..., C] and i32 idx[...] with x's leading dims", x, idx);
    *out = *idx;
    out->dtype = x->dtype;
    return true;
}

/* ---- interpreter kernels ---- */

/* one_hot(idx) {depth}: out[..., j] = (idx == j). An index outside
 * [0, depth) matches no j and gives an all-zero row (as jax.nn.one_hot),
 * so padding labels such as -1 need no special case. */
static bool k_one_hot(const Node *n, const Value *in, Value *out, Diag *d) {
    int64_t depth = node_int(n, "depth", 0);
    Type want = in[0].type;
    if (want.rank >= IR_MAX_RANK || depth < 0) return kfail_attr(n, d, "depth");
    want.dim[want.rank++] = depth;
    if (!need_result(n, &want, &out->type, d)) return false;
    int64_t count = type_numel(&in[0].type);
    for (int64_t i = 0; i < count; i++)
        for (int64_t j = 0; j < depth; j++) out->data[i * depth + j] = in[0].data[i] == (double)j;
    return true;
}

/* gather(x[..., C], idx[...]) = x[..., idx]. An index outside [0, C) is a
 * data error (typically a label >= the class count), reported with its
 * value and position. */
static bool k_gather(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *x = &in[0].type;
    if (x->rank < 1) return kfail(n, d, EXIT_BADINPUT, "x must have rank >= 1");
    Type lead = *x;
    lead.rank = x->rank - 1;
    if (!need_shape(n, in, 1, &lead, d) || !need_result(n, &lead, &out->type, d)) return false;
    int64_t C = x->dim[x->rank - 1], count = type_numel(&lead);
    for (int64_t i = 0; i < count; i++) {
        double v = in[1].data[i];
        if (!(v >= 0 && v < (double)C) || v != floor(v))
            return kfail(n, d, EXIT_RUNTIME, "index %g at element %lld is out of range [0, %lld)",
                         v, (long long)i, (long long)C);
        out->data[i] = in[0].data[i * C + (int64_t)v];
    }
    return true;
}

const IrOpRow ops_indexing_ir[] = {
    {OP_ROW(ONE_HOT, "one_hot", 1, 1, PK_INJECTIVE, OC_PRIMITIVE,
            ATTRS(A_REQ_INT("depth", 1, 1 << 30), A_DTYPE("dtype"))),
     .shape = one_hot_rule, .kernel = k_one_hot},
    {OP_ROW(GATHER, "gather", 2, 2, PK_INJECTIVE, OC_PRIMITIVE, NO_ATTRS),
     .shape = gather_rule, .kernel = k_gather},
    IR_ROWS_END,
};

#elif defined(IGRC_OPS_PASSES)

#include "passes/vjp_rule.h"

/* ---- VJPs (one_hot: of an index, no gradient) ---- */

/* gather(x, idx): the cotangent lands on the gathered positions. */
static int gather_rule(VjpCtx *c, int i) {
    if (i == 1) return VJP_NONE;
    const Type x_v = *ty(c, in(c, 0)), *x = &x_v;
    Attr a[2] = {attr_int("depth", x->dim[x->rank - 1]), attr_dtype("dtype", x->dtype)};
    int oh = b_node(c->b, OP_ONE_HOT, nm(c, "onehot"), &c->n->inputs[1], 1, a, 2);
    Type col = *x;
    col.dim[col.rank - 1] = 1;
    int r = b_reshape(c->b, nm(c, "col"), c->ct, col.rank, col.dim);
    return bin(c, OP_MUL, "gather", oh, b_broadcast(c->b, nm(c, "col.b"), r, x));
}

const PassOpRow ops_indexing_passes[] = {
    {OP_ONE_HOT, .vjp = vjp_none},
    {OP_GATHER, .vjp = gather_rule},
    PASS_ROWS_END,
};

#elif defined(IGRC_OPS_CODEGEN)

#include "codegen/lower_rule.h"

/* ---- fused-kernel values ---- */

static int emit_one_hot(Low *L, const Node *n, Coord *C) {
    const Type *x = &L->f->nodes[n->inputs[0]].type;
    Coord X = coord_empty(x);
    for (int j = 0; j < x->rank; j++) X.c[j] = coord_get(L, C, j);
    int idx = k_cast(L->k, KT_I64, low_emit(L, n->inputs[0], &X));
    int hit = k_binary(L->k, KO_EQ, idx, coord_get(L, C, C->rank - 1));
    return lm_cast(L->k, ktype_of(n->type.dtype), hit);
}

static int emit_gather(Low *L, const Node *n, Coord *C) {
    const Type *x = &L->f->nodes[n->inputs[0]].type, *it = &L->f->nodes[n->inputs[1]].type;
    Coord I = coord_empty(it);
    for (int j = 0; j < it->rank; j++) I.c[j] = coord_get(L, C, j);
    int idx = k_cast(L->k, KT_I64, low_emit(L, n->inputs[1], &I));
    Coord X = coord_empty(x);
    for (int j = 0; j < it->rank; j++) X.c[j] = coord_get(L, C, j);
    X.c[x->rank - 1] = clamp_index(L, idx, x->dim[x->rank - 1] - 1);
    return low_emit(L, n->inputs[0], &X);
}

const CodegenOpRow ops_indexing_codegen[] = {
    {OP_ONE_HOT, .emit = emit_one_hot},
    {OP_GATHER, .emit = emit_gather},
    CODEGEN_ROWS_END,
};

#else
#error "ops/ files are compiled with IGRC_OPS_IR, IGRC_OPS_PASSES or IGRC_OPS_CODEGEN"
#endif
