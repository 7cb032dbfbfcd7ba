/* The reduce family: reduce_sum, reduce_max, argmax (semantics: ir/ops.h).
 * Each section below is compiled into one layer's library and ends with that
 * layer's rows for these ops (docs/architecture.md, "Folders and dependency
 * direction"). */
#if defined(IGRC_OPS_IR)

#include "ir/op_rows.h"

/* ---- shape rules ---- */

static bool reduce_rule(Rule *r, Type *out) {
    const Type *x = r->in[0];
    int64_t axes[IR_MAX_RANK + 1];
    int k = node_ints(r->n, "axes", axes, IR_MAX_RANK + 1);
    bool drop[IR_MAX_RANK] = {false};
    for (int i = 0; i < k; i++) {
        if (axes[i] < 0 || axes[i] >= x->rank || drop[axes[i]])
            return shape_fail_type(r, "axes must be distinct axes of the operand", x);
        drop[axes[i]] = true;
    }
    if (x->dtype == DT_BOOL) return shape_fail_type(r, "expects a numeric operand", x);
    bool keep = node_int(r->n, "keepdims", 0) != 0;
    *out = (Type){.dtype = x->dtype};
    for (int i = 0; i < x->rank; i++) {
        if (!drop[i]) out->dim[out->rank++] = x->dim[i];
        else if (keep) out->dim[out->rank++] = 1;
    }
    return true;
}

static bool argmax_rule(Rule *r, Type *out) {
    const Type *x = r->in[0];
    int64_t axis = node_int(r->n, "axis", 0);
    if (axis >= x->rank) return shape_fail_type(r, "axis out of range", x);
    *out = (Type){.dtype = DT_I32};
    for (int i = 0; i < x->rank; i++)
        if (i != axis) out->dim[out->rank++] = x->dim[i];
    return true;
}

/* ---- interpreter kernels ---- */

/* reduce_sum / reduce_max {axes, keepdims=0}. Each input element adds into
 * the output element at its index with the reduced axes zeroed; keepdims
 * only inserts size-1 dims, which does not move any flat index.
 * reduce_max: an empty reduction gives -inf (INT32_MIN for i32) and NaN
 * propagates (once the running max is NaN it stays NaN). Sums accumulate
 * in double in row-major order of the input. */
static bool k_reduce(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *x = &in[0].type;
    int64_t axes[IR_MAX_RANK + 1];
    int k = node_ints(n, "axes", axes, IR_MAX_RANK + 1);
    bool drop[IR_MAX_RANK] = {false}, keep = node_int(n, "keepdims", 0) != 0;
    if (k > x->rank) return kfail_attr(n, d, "axes");
    for (int j = 0; j < k; j++) {
        if (axes[j] < 0 || axes[j] >= x->rank || drop[axes[j]]) return kfail_attr(n, d, "axes");
        drop[axes[j]] = true;
    }
    Type kept = *x, want = {.dtype = x->dtype};
    for (int j = 0; j < x->rank; j++) {
        if (drop[j]) kept.dim[j] = 1;
        if (!drop[j] || keep) want.dim[want.rank++] = kept.dim[j];
    }
    if (!need_result(n, &want, &out->type, d)) return false;
    int64_t st[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, i = 0, numel = type_numel(&out->type);
    type_strides(&kept, st);
    bool is_max = n->op == OP_REDUCE_MAX;
    double init = !is_max ? 0.0 : out->type.dtype == DT_I32 ? -2147483648.0 : -INFINITY;
    for (int64_t j = 0; j < numel; j++) out->data[j] = init;
    if (type_numel(x) == 0) return true;
    do {
        int64_t dst = 0;
        for (int j = 0; j < x->rank; j++) dst += drop[j] ? 0 : idx[j] * st[j];
        double v = in[0].data[i++], *acc = &out->data[dst];
        if (!is_max) *acc += v;
        else if (v > *acc || isnan(v)) *acc = isnan(*acc) ? *acc : v;
    } while (idx_next(idx, x));
    return true;
}

/* argmax {axis}: i32 index of the first maximum along axis. NaN counts as
 * larger than every number, so the first NaN wins (matching reduce_max,
 * which returns NaN there). An empty axis has no answer and is an error. */
static bool k_argmax(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *x = &in[0].type;
    int64_t axis = node_int(n, "axis", 0);
    if (axis < 0 || axis >= x->rank) return kfail_attr(n, d, "axis");
    Type want = {.dtype = DT_I32};
    int64_t outer = 1, inner = 1, len = x->dim[axis];
    for (int j = 0; j < x->rank; j++) {
        if (j != axis) want.dim[want.rank++] = x->dim[j];
        if (j < axis) outer *= x->dim[j];
        if (j > axis) inner *= x->dim[j];
    }
    if (!need_result(n, &want, &out->type, d)) return false;
    if (len == 0 && outer * inner > 0) return kfail(n, d, EXIT_BADINPUT, "argmax of an empty axis");
    for (int64_t o = 0; o < outer; o++)
        for (int64_t q = 0; q < inner; q++) {
            const double *p = in[0].data + o * len * inner + q;
            int64_t best = 0;
            for (int64_t j = 1; j < len && !isnan(p[best * inner]); j++)
                if (isnan(p[j * inner]) || p[j * inner] > p[best * inner]) best = j;
            out->data[o * inner + q] = (double)best;
        }
    return true;
}

const IrOpRow ops_reduce_ir[] = {
    {OP_ROW(REDUCE_SUM, "reduce_sum", 1, 1, PK_REDUCTION, OC_PRIMITIVE,
            ATTRS(A_REQ_INTS("axes", 0, 0, 5), A_INT("keepdims", 0, 1))),
     .shape = reduce_rule, .kernel = k_reduce, .flops = flops_per_input},
    {OP_ROW(REDUCE_MAX, "reduce_max", 1, 1, PK_REDUCTION, OC_PRIMITIVE,
            ATTRS(A_REQ_INTS("axes", 0, 0, 5), A_INT("keepdims", 0, 1))),
     .shape = reduce_rule, .kernel = k_reduce, .flops = flops_per_input},
    {OP_ROW(ARGMAX, "argmax", 1, 1, PK_REDUCTION, OC_PRIMITIVE, ATTRS(A_REQ_INT("axis", 0, 5))),
     .shape = argmax_rule, .kernel = k_argmax, .flops = flops_per_input},
    IR_ROWS_END,
};

#elif defined(IGRC_OPS_PASSES)

#include "passes/vjp_rule.h"

/* ---- VJPs (argmax: an index, no gradient) ---- */

/* ct reshaped to keepdims form and broadcast back to x's shape. */
static int spread(VjpCtx *c, const char *part, int v) {
    const Type x_v = *ty(c, in(c, 0)), *x = &x_v;
    int64_t axes[IR_MAX_RANK], kd[IR_MAX_RANK];
    int k = node_ints(c->n, "axes", axes, IR_MAX_RANK);
    for (int i = 0; i < x->rank; i++) kd[i] = x->dim[i];
    for (int i = 0; i < k; i++) kd[axes[i]] = 1;
    int r = b_reshape(c->b, nm(c, part), v, x->rank, kd);
    return b_broadcast(c->b, nm(c, part), r, x);
}

/* reduce_max shares ct equally among the tied maxima. */
static int reduce_rule(VjpCtx *c) {
    int g = spread(c, "spread", c->ct);
    if (c->n->op == OP_REDUCE_SUM) return g;
    const Type x_v = *ty(c, in(c, 0)), *x = &x_v;
    int hit = bin(c, OP_EQ, "is_max", in(c, 0), spread(c, "max", c->out));
    Attr a = attr_dtype("dtype", x->dtype);
    int mask = b_node(c->b, OP_CAST, nm(c, "mask"), &hit, 1, &a, 1);
    int64_t axes[IR_MAX_RANK];
    int k = node_ints(c->n, "axes", axes, IR_MAX_RANK);
    int cnt = b_reduce(c->b, OP_REDUCE_SUM, nm(c, "ties"), mask, axes, k, node_int(c->n, "keepdims", 0));
    return bin(c, OP_DIV, "reduce_max", bin(c, OP_MUL, "masked", g, mask), spread(c, "ties", cnt));
}

static int g_reduce(VjpCtx *c, int i) { (void)i; return reduce_rule(c); }

const PassOpRow ops_reduce_passes[] = {
    {OP_REDUCE_SUM, .vjp = g_reduce},
    {OP_REDUCE_MAX, .vjp = g_reduce},
    {OP_ARGMAX, .vjp = vjp_none},
    PASS_ROWS_END,
};

#elif defined(IGRC_OPS_CODEGEN)

#include "codegen/lower_rule.h"

/* ---- fused-kernel values ---- */

/* Reductions: one inner loop over the reduced axes in row-major order (the
 * interpreter's summation order), the other coordinates from the output. */
static int emit_reduce(Low *L, const Node *n, Coord *C) {
    const Type *x = &L->f->nodes[n->inputs[0]].type;
    bool drop[IR_MAX_RANK] = {false};
    int64_t axes[IR_MAX_RANK + 1], extent = 1;
    int na = n->op == OP_ARGMAX ? 1 : node_ints(n, "axes", axes, IR_MAX_RANK + 1);
    if (n->op == OP_ARGMAX) axes[0] = node_int(n, "axis", 0);
    for (int j = 0; j < na; j++) drop[axes[j]] = true;
    for (int j = 0; j < x->rank; j++) extent *= drop[j] ? x->dim[j] : 1;
    bool keep = n->op != OP_ARGMAX && node_int(n, "keepdims", 0) != 0;
    coord_all(L, C); /* outer coordinates exist before the loop opens */
    int begin = k_red_begin(L->k, extent), r = begin;
    Coord X = coord_empty(x);
    for (int j = x->rank - 1, o = C->rank - 1; j >= 0; j--) {
        if (drop[j]) {
            int q = r;
            if (x->dim[j] == 1) {
                X.c[j] = cidx(L, 0);
            } else {
                X.c[j] = k_imod(L->k, q, cidx(L, x->dim[j]));
                r = k_idiv(L->k, q, cidx(L, x->dim[j]));
            }
            if (keep) o--;
        } else {
            X.c[j] = C->c[o--];
        }
    }
    int nmemo = L->nmemo;
    int val = low_emit(L, n->inputs[0], &X);
    L->nmemo = nmemo; /* values of the loop body are not visible after it */
    KReduce red = n->op == OP_REDUCE_SUM ? KR_SUM : n->op == OP_REDUCE_MAX ? KR_MAX : KR_ARGMAX;
    return k_red_end(L->k, red, begin, val);
}

const CodegenOpRow ops_reduce_codegen[] = {
    {OP_REDUCE_SUM, .emit = emit_reduce},
    {OP_REDUCE_MAX, .emit = emit_reduce},
    {OP_ARGMAX, .emit = emit_reduce},
    CODEGEN_ROWS_END,
};

#else
#error "ops/ files are compiled with IGRC_OPS_IR, IGRC_OPS_PASSES or IGRC_OPS_CODEGEN"
#endif
