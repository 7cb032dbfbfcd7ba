/* The layout family: broadcast, reshape, transpose, slice, concat, pad
 * (semantics: ir/ops.h). Each section below is compiled into one layer's
 * library and ends with that layer's rows for these ops (docs/architecture.md,
 * "Folders and dependency direction"). */
#if defined(IGRC_OPS_IR)

#include <string.h>

#include "ir/op_rows.h"

/* ---- shape rules ---- */

static bool shape_attr(Rule *r, Type *out, DType dt) {
    int64_t s[IR_MAX_RANK + 1];
    int k = node_ints(r->n, "shape", s, IR_MAX_RANK + 1);
    if (k > IR_MAX_RANK) return shape_fail(r, "shape has more than %s dims%s", "6", "");
    *out = type_make(dt, k, s);
    return true;
}

static bool broadcast_rule(Rule *r, Type *out) {
    const Type *x = r->in[0];
    if (!shape_attr(r, out, x->dtype)) return false;
    if (x->rank > out->rank) return shape_fail_types(r, "cannot broadcast to a lower rank", x, out);
    int off = out->rank - x->rank;
    for (int i = 0; i < x->rank; i++)
        if (x->dim[i] != 1 && x->dim[i] != out->dim[off + i])
            return shape_fail_types(r, "cannot broadcast", x, out);
    return true;
}

static bool reshape_rule(Rule *r, Type *out) {
    if (!shape_attr(r, out, r->in[0]->dtype)) return false;
    if (type_numel(out) != type_numel(r->in[0]))
        return shape_fail_types(r, "reshape changes the element count", r->in[0], out);
    return true;
}

static bool transpose_rule(Rule *r, Type *out) {
    const Type *x = r->in[0];
    int64_t p[IR_MAX_RANK];
    int k = shape_ints(r, "perm", p);
    bool seen[IR_MAX_RANK] = {false};
    if (k != x->rank) return shape_fail_type(r, "perm must list every axis once", x);
    *out = *x;
    for (int i = 0; i < k; i++) {
        if (p[i] < 0 || p[i] >= k || seen[p[i]])
            return shape_fail_type(r, "perm must list every axis once", x);
        seen[p[i]] = true;
        out->dim[i] = x->dim[p[i]];
    }
    return true;
}

static bool slice_rule(Rule *r, Type *out) {
    const Type *x = r->in[0];
    int64_t st[IR_MAX_RANK], sp[IR_MAX_RANK], sz[IR_MAX_RANK];
    if (shape_ints(r, "start", st) != x->rank || shape_ints(r, "stop", sp) != x->rank ||
        shape_ints(r, "step", sz) != x->rank)
        return shape_fail_type(r, "start/stop/step need one entry per axis", x);
    *out = *x;
    for (int i = 0; i < x->rank; i++) {
        if (st[i] < 0 || st[i] > sp[i] || sp[i] > x->dim[i] || sz[i] < 1)
            return shape_fail_type(r, "slice bounds must satisfy 0 <= start <= stop <= dim", x);
        out->dim[i] = (sp[i] - st[i] + sz[i] - 1) / sz[i];
    }
    return true;
}

static bool concat_rule(Rule *r, Type *out) {
    const Function *f = r->f;
    const Type *a = r->in[0];
    int64_t axis = node_int(r->n, "axis", 0);
    if (axis >= a->rank) return shape_fail_type(r, "axis out of range", a);
    *out = *a;
    out->dim[axis] = 0;
    for (int i = 0; i < r->n->ninputs; i++) {
        const Type *b = &f->nodes[r->n->inputs[i]].type;
        Type ta = *a, tb = *b;
        ta.dim[axis] = tb.dim[axis] = 0;
        if (!type_equal(&ta, &tb)) return shape_fail_types(r, "operands differ off the axis", a, b);
        out->dim[axis] += b->dim[axis];
    }
    return true;
}

static bool pad_rule(Rule *r, Type *out) {
    const Type *x = r->in[0];
    int64_t lo[IR_MAX_RANK], hi[IR_MAX_RANK];
    if (shape_ints(r, "lo", lo) != x->rank || shape_ints(r, "hi", hi) != x->rank)
        return shape_fail_type(r, "lo/hi need one entry per axis", x);
    *out = *x;
    for (int i = 0; i < x->rank; i++) out->dim[i] += lo[i] + hi[i];
    return true;
}

/* ---- interpreter kernels: each checks that its operands agree with the
 * node's declared result type before indexing, so a malformed call fails
 * with a message instead of reading out of bounds ---- */

/* broadcast {shape}: numpy rule. x's dims align with the result's rightmost
 * dims; a size-1 dim of x repeats, so it always reads index 0. */
static bool k_broadcast(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *x = &in[0].type, *y = &out->type;
    int off = y->rank - x->rank;
    if (off < 0) return kfail_attr(n, d, "shape");
    for (int j = 0; j < x->rank; j++)
        if (x->dim[j] != 1 && x->dim[j] != y->dim[off + j]) return kfail_attr(n, d, "shape");
    int64_t st[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, i = 0;
    type_strides(x, st);
    if (type_numel(y) == 0) return true;
    do {
        int64_t src = 0;
        for (int j = 0; j < x->rank; j++) src += (x->dim[j] == 1 ? 0 : idx[off + j]) * st[j];
        out->data[i++] = in[0].data[src];
    } while (idx_next(idx, y));
    return true;
}

/* reshape {shape}: row-major order is kept, so the data is copied as is. */
static bool k_reshape(const Node *n, const Value *in, Value *out, Diag *d) {
    int64_t numel = type_numel(&out->type);
    if (type_numel(&in[0].type) != numel) return kfail_attr(n, d, "shape");
    if (numel) memcpy(out->data, in[0].data, (size_t)numel * sizeof(double));
    return true;
}

/* transpose {perm}: out.dim[i] = x.dim[perm[i]], so out[idx] reads x at
 * the index whose axis perm[i] equals idx[i]. */
static bool k_transpose(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *x = &in[0].type, *y = &out->type;
    int64_t p[IR_MAX_RANK + 1], st[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, i = 0;
    bool seen[IR_MAX_RANK] = {false};
    if (node_ints(n, "perm", p, IR_MAX_RANK + 1) != x->rank || y->rank != x->rank)
        return kfail_attr(n, d, "perm");
    for (int j = 0; j < x->rank; j++) {
        if (p[j] < 0 || p[j] >= x->rank || seen[p[j]] || y->dim[j] != x->dim[p[j]])
            return kfail_attr(n, d, "perm");
        seen[p[j]] = true;
    }
    type_strides(x, st);
    if (type_numel(y) == 0) return true;
    do {
        int64_t src = 0;
        for (int j = 0; j < y->rank; j++) src += idx[j] * st[p[j]];
        out->data[i++] = in[0].data[src];
    } while (idx_next(idx, y));
    return true;
}

/* slice {start, stop, step}: per axis, out[idx] = x[start + idx * step],
 * with ceil((stop - start) / step) elements. */
static bool k_slice(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *x = &in[0].type, *y = &out->type;
    int64_t a[IR_MAX_RANK + 1], b[IR_MAX_RANK + 1], s[IR_MAX_RANK + 1];
    int r = x->rank;
    if (node_ints(n, "start", a, IR_MAX_RANK + 1) != r ||
        node_ints(n, "stop", b, IR_MAX_RANK + 1) != r ||
        node_ints(n, "step", s, IR_MAX_RANK + 1) != r || y->rank != r)
        return kfail_attr(n, d, "start/stop/step");
    for (int j = 0; j < r; j++)
        if (a[j] < 0 || a[j] > b[j] || b[j] > x->dim[j] || s[j] < 1 ||
            y->dim[j] != (b[j] - a[j] + s[j] - 1) / s[j])
            return kfail_attr(n, d, "start/stop/step");
    int64_t st[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, i = 0;
    type_strides(x, st);
    if (type_numel(y) == 0) return true;
    do {
        int64_t src = 0;
        for (int j = 0; j < r; j++) src += (a[j] + idx[j] * s[j]) * st[j];
        out->data[i++] = in[0].data[src];
    } while (idx_next(idx, y));
    return true;
}

/* concat {axis}: for each block of leading indices, the operands' slabs
 * (dim[axis] * inner elements each) follow one another. */
static bool k_concat(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *y = &out->type;
    int64_t axis = node_int(n, "axis", 0), total = 0;
    if (axis < 0 || axis >= y->rank) return kfail_attr(n, d, "axis");
    for (int k = 0; k < n->ninputs; k++) {
        Type t = in[k].type; /* must equal y off the axis */
        t.dim[axis] = y->dim[axis];
        if (!type_same_shape(&t, y)) return kfail(n, d, EXIT_BADINPUT, "operand %d differs "
                                                  "from the result off the axis", k);
        total += in[k].type.dim[axis];
    }
    if (total != y->dim[axis]) return kfail_attr(n, d, "axis");
    int64_t outer = 1, inner = 1;
    for (int j = 0; j < axis; j++) outer *= y->dim[j];
    for (int j = (int)axis + 1; j < y->rank; j++) inner *= y->dim[j];
    for (int64_t o = 0; o < outer; o++) {
        double *dst = out->data + o * y->dim[axis] * inner;
        for (int k = 0; k < n->ninputs; k++) {
            int64_t len = in[k].type.dim[axis] * inner;
            if (len) memcpy(dst, in[k].data + o * len, (size_t)len * sizeof(double));
            dst += len;
        }
    }
    return true;
}

/* pad {lo, hi, value=0}: x lands at offset lo on every axis; the border
 * holds value. */
static bool k_pad(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *x = &in[0].type, *y = &out->type;
    int64_t lo[IR_MAX_RANK + 1], hi[IR_MAX_RANK + 1];
    if (node_ints(n, "lo", lo, IR_MAX_RANK + 1) != x->rank ||
        node_ints(n, "hi", hi, IR_MAX_RANK + 1) != x->rank || y->rank != x->rank)
        return kfail_attr(n, d, "lo/hi");
    for (int j = 0; j < x->rank; j++)
        if (lo[j] < 0 || hi[j] < 0 || y->dim[j] != x->dim[j] + lo[j] + hi[j])
            return kfail_attr(n, d, "lo/hi");
    double v = node_float(n, "value", 0.0);
    int64_t numel = type_numel(y), st[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, i = 0;
    for (int64_t k = 0; k < numel; k++) out->data[k] = v;
    type_strides(y, st);
    if (type_numel(x) == 0) return true;
    do {
        int64_t dst = 0;
        for (int j = 0; j < x->rank; j++) dst += (idx[j] + lo[j]) * st[j];
        out->data[dst] = in[0].data[i++];
    } while (idx_next(idx, x));
    return true;
}

const IrOpRow ops_layout_ir[] = {
    {OP_ROW(BROADCAST, "broadcast", 1, 1, PK_BROADCAST, OC_PRIMITIVE,
            ATTRS(A_REQ_INTS("shape", 0, 0, A_BIG))),
     .shape = broadcast_rule, .kernel = k_broadcast},
    {OP_ROW(RESHAPE, "reshape", 1, 1, PK_INJECTIVE, OC_PRIMITIVE,
            ATTRS(A_REQ_INTS("shape", 0, 0, A_BIG))), .shape = reshape_rule, .kernel = k_reshape},
    {OP_ROW(TRANSPOSE, "transpose", 1, 1, PK_INJECTIVE, OC_PRIMITIVE,
            ATTRS(A_REQ_INTS("perm", -1, 0, 5))), .shape = transpose_rule, .kernel = k_transpose},
    {OP_ROW(SLICE, "slice", 1, 1, PK_INJECTIVE, OC_PRIMITIVE,
            ATTRS(A_REQ_INTS("start", -1, 0, A_BIG), A_REQ_INTS("step", -1, 1, A_BIG),
                  A_REQ_INTS("stop", -1, 0, A_BIG))), .shape = slice_rule, .kernel = k_slice},
    {OP_ROW(CONCAT, "concat", 1, -1, PK_INJECTIVE, OC_PRIMITIVE, ATTRS(A_REQ_INT("axis", 0, 5))),
     .shape = concat_rule, .kernel = k_concat},
    {OP_ROW(PAD, "pad", 1, 1, PK_INJECTIVE, OC_PRIMITIVE,
            ATTRS(A_REQ_INTS("hi", -1, 0, A_BIG), A_REQ_INTS("lo", -1, 0, A_BIG),
                  A_FLOAT("value", -INFINITY, INFINITY))), .shape = pad_rule, .kernel = k_pad},
    IR_ROWS_END,
};

#elif defined(IGRC_OPS_PASSES)

#include "passes/peephole_rule.h"
#include "passes/vjp_rule.h"

/* ---- VJPs ---- */

/* Sums ct over the axes broadcast added or stretched, back to x's shape. */
static int broadcast_rule(VjpCtx *c) {
    const Type xv = *ty(c, in(c, 0)), yv = *ty(c, c->out), *x = &xv, *y = &yv;
    int64_t axes[IR_MAX_RANK];
    int k = 0, off = y->rank - x->rank;
    for (int i = 0; i < y->rank; i++)
        if (i < off || (x->dim[i - off] == 1 && y->dim[i] != 1)) axes[k++] = i;
    int s = k ? b_reduce(c->b, OP_REDUCE_SUM, nm(c, "sum"), c->ct, axes, k, false) : c->ct;
    return b_reshape(c->b, nm(c, "bcast"), s, x->rank, x->dim);
}

static int transpose_rule(VjpCtx *c) {
    int64_t p[IR_MAX_RANK], inv[IR_MAX_RANK];
    int k = node_ints(c->n, "perm", p, IR_MAX_RANK);
    for (int i = 0; i < k; i++) inv[p[i]] = i;
    Attr a = attr_ints("perm", inv, k);
    return b_node(c->b, OP_TRANSPOSE, nm(c, "transpose"), &c->ct, 1, &a, 1);
}

static int pad_node(VjpCtx *c, const char *part, int x, const int64_t *lo, const int64_t *hi) {
    int r = ty(c, x)->rank;
    Attr a[2] = {attr_ints("lo", lo, r), attr_ints("hi", hi, r)};
    return b_node(c->b, OP_PAD, nm(c, part), &x, 1, a, 2);
}

/* Scatters ct into x's shape. A strided axis is widened first: ct of
 * length L along it becomes [L, 1] -> padded to [L, step] -> [L * step]. */
static int slice_rule(VjpCtx *c) {
    const Type x_v = *ty(c, in(c, 0)), *x = &x_v;
    int64_t st[IR_MAX_RANK], sp[IR_MAX_RANK], step[IR_MAX_RANK];
    node_ints(c->n, "start", st, IR_MAX_RANK);
    node_ints(c->n, "stop", sp, IR_MAX_RANK);
    node_ints(c->n, "step", step, IR_MAX_RANK);
    int g = c->ct;
    for (int ax = 0; ax < x->rank; ax++) {
        if (step[ax] == 1) continue;
        Type t = *ty(c, g);
        int64_t d[IR_MAX_RANK + 1], lo[IR_MAX_RANK + 1] = {0}, hi[IR_MAX_RANK + 1] = {0};
        for (int i = 0, j = 0; i < t.rank; i++) {
            d[j++] = t.dim[i];
            if (i == ax) d[j++] = 1;
        }
        if (t.rank + 1 > IR_MAX_RANK)
            return diag_error(c->b->d, EXIT_BADINPUT, "node '%s': strided slice of a rank-%d value has no VJP",
                              c->n->name, t.rank),
                   -1;
        g = b_reshape(c->b, nm(c, "split"), g, t.rank + 1, d);
        hi[ax + 1] = step[ax] - 1;
        g = pad_node(c, "spread", g, lo, hi);
        t.dim[ax] *= step[ax];
        g = b_reshape(c->b, nm(c, "merge"), g, t.rank, t.dim);
    }
    const Type gt_v = *ty(c, g), *gt = &gt_v;
    int64_t lo[IR_MAX_RANK], hi[IR_MAX_RANK], cut[IR_MAX_RANK];
    bool need_cut = false;
    for (int i = 0; i < x->rank; i++) {
        lo[i] = st[i];
        hi[i] = x->dim[i] - st[i] - gt->dim[i];
        cut[i] = gt->dim[i];
        if (hi[i] < 0) cut[i] += hi[i], hi[i] = 0, need_cut = true;
    }
    if (need_cut) { /* the widened tail ran past x's end */
        int64_t zero[IR_MAX_RANK] = {0}, one[IR_MAX_RANK];
        for (int i = 0; i < x->rank; i++) one[i] = 1;
        Attr a[3] = {attr_ints("start", zero, x->rank), attr_ints("stop", cut, x->rank),
                     attr_ints("step", one, x->rank)};
        g = b_node(c->b, OP_SLICE, nm(c, "trim"), &g, 1, a, 3);
    }
    return pad_node(c, "slice", g, lo, hi);
}

static int slice_of(VjpCtx *c, const char *part, int v, const int64_t *start, const int64_t *stop) {
    int r = ty(c, v)->rank;
    int64_t one[IR_MAX_RANK];
    for (int i = 0; i < r; i++) one[i] = 1;
    Attr a[3] = {attr_ints("start", start, r), attr_ints("stop", stop, r), attr_ints("step", one, r)};
    return b_node(c->b, OP_SLICE, nm(c, part), &v, 1, a, 3);
}

static int concat_rule(VjpCtx *c, int i) {
    int64_t axis = node_int(c->n, "axis", 0), off = 0;
    for (int k = 0; k < i; k++) off += ty(c, in(c, k))->dim[axis];
    const Type x_v = *ty(c, in(c, i)), *x = &x_v;
    int64_t start[IR_MAX_RANK] = {0}, stop[IR_MAX_RANK];
    for (int k = 0; k < x->rank; k++) stop[k] = x->dim[k];
    start[axis] = off;
    stop[axis] = off + x->dim[axis];
    return slice_of(c, "concat", c->ct, start, stop);
}

static int pad_rule(VjpCtx *c) {
    const Type x_v = *ty(c, in(c, 0)), *x = &x_v;
    int64_t lo[IR_MAX_RANK], stop[IR_MAX_RANK];
    node_ints(c->n, "lo", lo, IR_MAX_RANK);
    for (int k = 0; k < x->rank; k++) stop[k] = lo[k] + x->dim[k];
    return slice_of(c, "pad", c->ct, lo, stop);
}

static int g_reshape(VjpCtx *c, int i) {
    (void)i;
    const Type *x = ty(c, in(c, 0));
    return b_reshape(c->b, nm(c, "reshape"), c->ct, x->rank, x->dim);
}

static int g_broadcast(VjpCtx *c, int i) { (void)i; return broadcast_rule(c); }

static int g_transpose(VjpCtx *c, int i) { (void)i; return transpose_rule(c); }

static int g_slice(VjpCtx *c, int i) { (void)i; return slice_rule(c); }

static int g_pad(VjpCtx *c, int i) { (void)i; return pad_rule(c); }

/* ---- peepholes (passes/simplify.c) ---- */

/* transpose(transpose(v, p1), p2) = transpose(v, p1 ∘ p2), and the identity
 * permutation dropped; -1 when neither applies. */
static int simplify_transpose(Rewriter *rw, const Node *n, int x) {
    const Node *xn = &rw->b.f->nodes[x];
    int64_t p2[IR_MAX_RANK], p1[IR_MAX_RANK], q[IR_MAX_RANK];
    int r = node_ints(n, "perm", p2, IR_MAX_RANK);
    if (r != n->type.rank) return -1;
    int src = x;
    for (int j = 0; j < r; j++) q[j] = p2[j];
    if (xn->op == OP_TRANSPOSE && node_ints(xn, "perm", p1, IR_MAX_RANK) == r) {
        /* out.dim[j] = mid.dim[p2[j]] = x.dim[p1[p2[j]]] */
        for (int j = 0; j < r; j++) q[j] = p1[p2[j]];
        src = xn->inputs[0];
    }
    bool ident = true;
    for (int j = 0; j < r; j++) ident = ident && q[j] == j;
    if (ident) return src;
    if (src == x) return -1;
    Attr a = attr_ints("perm", q, r);
    return peep_emit(rw, n, OP_TRANSPOSE, &src, 1, &a, 1);
}

/* broadcast/reshape: of its own type, or of the same op (collapsed). */
static int r_reshape(const Peep *p) {
    if (p->same_type) return p->x;
    if (p->xn->op != p->n->op) return -1;
    int xx = p->xn->inputs[0];
    if (type_equal(&p->nf->nodes[xx].type, &p->n->type)) return xx;
    return peep_emit(p->rw, p->n, p->n->op, &xx, 1, p->n->attrs, p->n->nattrs);
}

static int r_transpose(const Peep *p) { return simplify_transpose(p->rw, p->n, p->x); }

const PassOpRow ops_layout_passes[] = {
    {OP_BROADCAST, .vjp = g_broadcast, .peephole = r_reshape},
    {OP_RESHAPE, .vjp = g_reshape, .peephole = r_reshape},
    {OP_TRANSPOSE, .vjp = g_transpose, .peephole = r_transpose},
    {OP_SLICE, .vjp = g_slice},
    {OP_CONCAT, .vjp = concat_rule},
    {OP_PAD, .vjp = g_pad},
    PASS_ROWS_END,
};

#elif defined(IGRC_OPS_CODEGEN)

#include "codegen/lower_rule.h"

/* ---- fused-kernel values: index arithmetic, nothing materialised ---- */

static int emit_broadcast(Low *L, const Node *n, Coord *C) {
    const Type *x = &L->f->nodes[n->inputs[0]].type;
    Coord X = coord_empty(x);
    int off = C->rank - x->rank;
    for (int j = 0; j < x->rank; j++)
        X.c[j] = x->dim[j] == 1 ? cidx(L, 0) : coord_get(L, C, j + off);
    if (type_numel(x) == type_numel(&n->type)) X.flat = coord_index(L, C); /* only 1s added */
    return low_emit(L, n->inputs[0], &X);
}

static int emit_reshape(Low *L, const Node *n, Coord *C) {
    Coord X = coord_flat(&L->f->nodes[n->inputs[0]].type, coord_index(L, C));
    return low_emit(L, n->inputs[0], &X);
}

static int emit_transpose(Low *L, const Node *n, Coord *C) {
    const Type *x = &L->f->nodes[n->inputs[0]].type;
    int64_t perm[IR_MAX_RANK];
    node_ints(n, "perm", perm, IR_MAX_RANK);
    Coord X = coord_empty(x);
    for (int i = 0; i < C->rank; i++) X.c[perm[i]] = coord_get(L, C, i);
    return low_emit(L, n->inputs[0], &X);
}

static int emit_slice(Low *L, const Node *n, Coord *C) {
    const Type *x = &L->f->nodes[n->inputs[0]].type;
    int64_t start[IR_MAX_RANK], step[IR_MAX_RANK];
    node_ints(n, "start", start, IR_MAX_RANK);
    int ns = node_ints(n, "step", step, IR_MAX_RANK);
    Coord X = coord_empty(x);
    for (int j = 0; j < x->rank; j++) {
        int c = coord_get(L, C, j);
        int64_t s = j < ns ? step[j] : 1;
        if (s != 1) c = k_binary(L->k, KO_MUL, c, cidx(L, s));
        X.c[j] = start[j] ? k_binary(L->k, KO_ADD, c, cidx(L, start[j])) : c;
    }
    return low_emit(L, n->inputs[0], &X);
}

static int emit_pad(Low *L, const Node *n, Coord *C) {
    const Type *x = &L->f->nodes[n->inputs[0]].type;
    int64_t lo[IR_MAX_RANK];
    node_ints(n, "lo", lo, IR_MAX_RANK);
    Coord X = coord_empty(x);
    int inside = -1;
    for (int j = 0; j < x->rank; j++) {
        int c = coord_get(L, C, j);
        if (lo[j] == 0 && x->dim[j] == n->type.dim[j]) {
            X.c[j] = c;
            continue;
        }
        int xc = lo[j] ? k_binary(L->k, KO_SUB, c, cidx(L, lo[j])) : c;
        int ok = k_binary(L->k, KO_AND, k_binary(L->k, KO_GE, xc, cidx(L, 0)),
                          lt(L, xc, cidx(L, x->dim[j])));
        inside = inside < 0 ? ok : k_binary(L->k, KO_AND, inside, ok);
        X.c[j] = clamp_index(L, xc, x->dim[j] - 1);
    }
    int val = low_emit(L, n->inputs[0], &X);
    if (inside < 0) return val;
    KType t = ktype_of(n->type.dtype);
    int pv = t == KT_F32 || t == KT_F64 ? k_const_f(L->k, t, node_float(n, "value", 0))
                                        : k_const_i(L->k, t, (int64_t)node_float(n, "value", 0));
    return k_select(L->k, inside, val, pv);
}

static int emit_concat(Low *L, const Node *n, Coord *C) {
    return emit_concat_range(L, n, 0, n->ninputs, C);
}

const CodegenOpRow ops_layout_codegen[] = {
    {OP_BROADCAST, .emit = emit_broadcast},
    {OP_RESHAPE, .emit = emit_reshape},
    {OP_TRANSPOSE, .emit = emit_transpose},
    {OP_SLICE, .emit = emit_slice},
    {OP_CONCAT, .emit = emit_concat},
    {OP_PAD, .emit = emit_pad},
    CODEGEN_ROWS_END,
};

#else
#error "ops/ files are compiled with IGRC_OPS_IR, IGRC_OPS_PASSES or IGRC_OPS_CODEGEN"
#endif
