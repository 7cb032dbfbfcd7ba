/* Shape rules: one per op family. Each checks its operands and attributes
 * and computes the result type; messages show both shapes and name the node,
 * because a shape mismatch is the error users meet most. */
#include "ir/shape.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const Node *n;
    const Type *in[8]; /* first operands' types (concat may have more) */
    const Module *m;
    const Function *f;
    Diag *d;
} Rule;

static bool fail(Rule *r, const char *fmt, const char *a, const char *b) {
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, a, b);
    return diag_error(r->d, EXIT_BADINPUT, "node '%s' (%s): %s", r->n->name, op_name(r->n->op),
                      msg);
}

static bool failf(Rule *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool failf(Rule *r, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(r, "%s%s", msg, "");
}

static bool fail_types(Rule *r, const char *what, const Type *a, const Type *b) {
    char sa[128], sb[128];
    char fmt[512];
    snprintf(fmt, sizeof fmt, "%s: %%s vs %%s", what);
    return fail(r, fmt, type_str(a, sa, sizeof sa), b ? type_str(b, sb, sizeof sb) : "");
}

static bool fail_type(Rule *r, const char *what, const Type *a) {
    char sa[128], fmt[512];
    snprintf(fmt, sizeof fmt, "%s, got %%s%%s", what);
    return fail(r, fmt, type_str(a, sa, sizeof sa), "");
}

static int get_ints(Rule *r, const char *key, int64_t *out) {
    return node_ints(r->n, key, out, IR_MAX_RANK);
}

/* ---- elementwise ---- */

static bool need_float(Rule *r, const Type *t) {
    return dtype_is_float(t->dtype) || fail_type(r, "expects a float operand", t);
}

static bool unary(Rule *r, Type *out) {
    const Type *x = r->in[0];
    *out = *x;
    OpKind op = r->n->op;
    if (op == OP_NEG || op == OP_ABS || op == OP_SIGN || op == OP_RELU)
        return x->dtype != DT_BOOL || fail_type(r, "expects a numeric operand", x);
    if (op == OP_NOT) return x->dtype == DT_BOOL || fail_type(r, "expects a bool operand", x);
    if (op == OP_STOP_GRADIENT) return true;
    if (op == OP_CAST) {
        out->dtype = (DType)node_int(r->n, "dtype", DT_F32);
        return true;
    }
    return need_float(r, x); /* the rest of the elementwise unary ops */
}

static bool binary(Rule *r, Type *out) {
    const Type *a = r->in[0], *b = r->in[1];
    if (!type_equal(a, b))
        return fail_types(r, "operands differ (insert an explicit broadcast)", a, b);
    *out = *a;
    OpKind op = r->n->op;
    if (op == OP_AND || op == OP_OR)
        return a->dtype == DT_BOOL || fail_type(r, "expects bool operands", a);
    if (op >= OP_EQ && op <= OP_GE) {
        out->dtype = DT_BOOL;
        return true;
    }
    if (op == OP_POW) return need_float(r, a);
    return a->dtype != DT_BOOL || fail_type(r, "expects numeric operands", a);
}

static bool select_rule(Rule *r, Type *out) {
    const Type *c = r->in[0], *a = r->in[1], *b = r->in[2];
    if (c->dtype != DT_BOOL) return fail_type(r, "condition must be bool", c);
    if (!type_equal(a, b)) return fail_types(r, "branches differ", a, b);
    if (!type_same_shape(c, a)) return fail_types(r, "condition and branches differ", c, a);
    *out = *a;
    return true;
}

/* ---- shape ops ---- */

static bool shape_attr(Rule *r, Type *out, DType dt) {
    int64_t s[IR_MAX_RANK + 1];
    int k = node_ints(r->n, "shape", s, IR_MAX_RANK + 1);
    if (k > IR_MAX_RANK) return fail(r, "shape has more than %s dims%s", "6", "");
    *out = type_make(dt, k, s);
    return true;
}

static bool broadcast_rule(Rule *r, Type *out) {
    const Type *x = r->in[0];
    if (!shape_attr(r, out, x->dtype)) return false;
    if (x->rank > out->rank) return fail_types(r, "cannot broadcast to a lower rank", x, out);
    int off = out->rank - x->rank;
    for (int i = 0; i < x->rank; i++)
        if (x->dim[i] != 1 && x->dim[i] != out->dim[off + i])
            return fail_types(r, "cannot broadcast", x, out);
    return true;
}

static bool reshape_rule(Rule *r, Type *out) {
    if (!shape_attr(r, out, r->in[0]->dtype)) return false;
    if (type_numel(out) != type_numel(r->in[0]))
        return fail_types(r, "reshape changes the element count", r->in[0], out);
    return true;
}

static bool transpose_rule(Rule *r, Type *out) {
    const Type *x = r->in[0];
    int64_t p[IR_MAX_RANK];
    int k = get_ints(r, "perm", p);
    bool seen[IR_MAX_RANK] = {false};
    if (k != x->rank) return fail_type(r, "perm must list every axis once", x);
    *out = *x;
    for (int i = 0; i < k; i++) {
        if (p[i] < 0 || p[i] >= k || seen[p[i]])
            return fail_type(r, "perm must list every axis once", x);
        seen[p[i]] = true;
        out->dim[i] = x->dim[p[i]];
    }
    return true;
}

static bool slice_rule(Rule *r, Type *out) {
    const Type *x = r->in[0];
    int64_t st[IR_MAX_RANK], sp[IR_MAX_RANK], sz[IR_MAX_RANK];
    if (get_ints(r, "start", st) != x->rank || get_ints(r, "stop", sp) != x->rank ||
        get_ints(r, "step", sz) != x->rank)
        return fail_type(r, "start/stop/step need one entry per axis", x);
    *out = *x;
    for (int i = 0; i < x->rank; i++) {
        if (st[i] < 0 || st[i] > sp[i] || sp[i] > x->dim[i] || sz[i] < 1)
            return fail_type(r, "slice bounds must satisfy 0 <= start <= stop <= dim", x);
        out->dim[i] = (sp[i] - st[i] + sz[i] - 1) / sz[i];
    }
    return true;
}

static bool concat_rule(Rule *r, Type *out) {
    const Function *f = r->f;
    const Type *a = r->in[0];
    int64_t axis = node_int(r->n, "axis", 0);
    if (axis >= a->rank) return fail_type(r, "axis out of range", a);
    *out = *a;
    out->dim[axis] = 0;
    for (int i = 0; i < r->n->ninputs; i++) {
        const Type *b = &f->nodes[r->n->inputs[i]].type;
        Type ta = *a, tb = *b;
        ta.dim[axis] = tb.dim[axis] = 0;
        if (!type_equal(&ta, &tb)) return fail_types(r, "operands differ off the axis", a, b);
        out->dim[axis] += b->dim[axis];
    }
    return true;
}

static bool pad_rule(Rule *r, Type *out) {
    const Type *x = r->in[0];
    int64_t lo[IR_MAX_RANK], hi[IR_MAX_RANK];
    if (get_ints(r, "lo", lo) != x->rank || get_ints(r, "hi", hi) != x->rank)
        return fail_type(r, "lo/hi need one entry per axis", x);
    *out = *x;
    for (int i = 0; i < x->rank; i++) out->dim[i] += lo[i] + hi[i];
    return true;
}

/* ---- reductions ---- */

static bool reduce_rule(Rule *r, Type *out) {
    const Type *x = r->in[0];
    int64_t axes[IR_MAX_RANK + 1];
    int k = node_ints(r->n, "axes", axes, IR_MAX_RANK + 1);
    bool drop[IR_MAX_RANK] = {false};
    for (int i = 0; i < k; i++) {
        if (axes[i] < 0 || axes[i] >= x->rank || drop[axes[i]])
            return fail_type(r, "axes must be distinct axes of the operand", x);
        drop[axes[i]] = true;
    }
    if (x->dtype == DT_BOOL) return fail_type(r, "expects a numeric operand", x);
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
    if (axis >= x->rank) return fail_type(r, "axis out of range", x);
    *out = (Type){.dtype = DT_I32};
    for (int i = 0; i < x->rank; i++)
        if (i != axis) out->dim[out->rank++] = x->dim[i];
    return true;
}

/* ---- linear algebra, convolution, pooling ---- */

static bool matmul_rule(Rule *r, Type *out) {
    const Type *a = r->in[0], *b = r->in[1];
    int k = a->rank;
    if (k < 2 || b->rank != k || a->dtype != b->dtype || !dtype_is_float(a->dtype))
        return fail_types(r, "expects float operands of equal rank >= 2", a, b);
    for (int i = 0; i < k - 2; i++)
        if (a->dim[i] != b->dim[i]) return fail_types(r, "batch dims differ", a, b);
    if (a->dim[k - 1] != b->dim[k - 2]) return fail_types(r, "inner dims differ", a, b);
    *out = *a;
    out->dim[k - 1] = b->dim[k - 1];
    return true;
}

/* Output extent of a window op; false if the window does not fit. */
static bool window_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t *out) {
    int64_t span = in + 2 * p - k;
    if (span < 0 || s < 1) return false;
    *out = span / s + 1;
    return true;
}

static bool conv_out(Rule *r, const Type *x, int64_t o, int64_t kh, int64_t kw, Type *out) {
    int64_t st[2] = {1, 1}, pd[2] = {0, 0};
    get_ints(r, "stride", st);
    get_ints(r, "padding", pd);
    *out = *x;
    out->dim[1] = o;
    if (!window_out(x->dim[2], kh, st[0], pd[0], &out->dim[2]) ||
        !window_out(x->dim[3], kw, st[1], pd[1], &out->dim[3]))
        return fail_type(r, "the kernel does not fit the input", x);
    return true;
}

static bool conv_rule(Rule *r, Type *out) {
    const Type *x = r->in[0], *w = r->in[1];
    if (x->rank != 4 || w->rank != 4 || x->dtype != w->dtype || !dtype_is_float(x->dtype))
        return fail_types(r, "expects float x[N,C,H,W] and w[O,C,KH,KW]", x, w);
    if (x->dim[1] != w->dim[1]) return fail_types(r, "input channels differ", x, w);
    return conv_out(r, x, w->dim[0], w->dim[2], w->dim[3], out);
}

static bool conv_bwd_data_rule(Rule *r, Type *out) {
    const Type *dy = r->in[0], *w = r->in[1];
    int64_t is[4];
    if (dy->rank != 4 || w->rank != 4 || get_ints(r, "input_shape", is) != 4)
        return fail_types(r, "expects dy[N,O,OH,OW], w[O,C,KH,KW], input_shape[4]", dy, w);
    Type x = type_make(dy->dtype, 4, is), y;
    if (x.dim[1] != w->dim[1] || x.dim[0] != dy->dim[0] || dy->dim[1] != w->dim[0])
        return fail_types(r, "channels differ", dy, w);
    if (!conv_out(r, &x, w->dim[0], w->dim[2], w->dim[3], &y)) return false;
    if (!type_same_shape(&y, dy)) return fail_types(r, "dy is not conv2d's output shape", dy, &y);
    *out = x;
    return true;
}

static bool conv_bwd_filter_rule(Rule *r, Type *out) {
    const Type *x = r->in[0], *dy = r->in[1];
    int64_t k[2];
    if (x->rank != 4 || dy->rank != 4 || get_ints(r, "kernel", k) != 2 || x->dtype != dy->dtype)
        return fail_types(r, "expects x[N,C,H,W], dy[N,O,OH,OW], kernel[2]", x, dy);
    Type y;
    if (!conv_out(r, x, dy->dim[1], k[0], k[1], &y)) return false;
    if (!type_same_shape(&y, dy)) return fail_types(r, "dy is not conv2d's output shape", dy, &y);
    int64_t dims[4] = {dy->dim[1], x->dim[1], k[0], k[1]};
    *out = type_make(x->dtype, 4, dims);
    return true;
}

static bool pool_out(Rule *r, const Type *x, Type *out) {
    int64_t k[2], st[2], pd[2] = {0, 0};
    get_ints(r, "kernel", k);
    get_ints(r, "stride", st);
    get_ints(r, "padding", pd);
    if (x->rank != 4 || !dtype_is_float(x->dtype))
        return fail_type(r, "expects a float x[N,C,H,W]", x);
    if (2 * pd[0] > k[0] || 2 * pd[1] > k[1])
        return fail_type(r, "padding must be at most half the kernel", x);
    *out = *x;
    if (!window_out(x->dim[2], k[0], st[0], pd[0], &out->dim[2]) ||
        !window_out(x->dim[3], k[1], st[1], pd[1], &out->dim[3]))
        return fail_type(r, "the window does not fit the input", x);
    return true;
}

static bool pool_rule(Rule *r, Type *out) { return pool_out(r, r->in[0], out); }

static bool maxpool_bwd_rule(Rule *r, Type *out) {
    Type y;
    if (!pool_out(r, r->in[0], &y)) return false;
    if (!type_equal(&y, r->in[1])) return fail_types(r, "dy is not the pool's output", r->in[1], &y);
    *out = *r->in[0];
    return true;
}

static bool maxpool_select_rule(Rule *r, Type *out) {
    if (!type_equal(r->in[0], r->in[1])) return fail_types(r, "g must have x's type", r->in[1], r->in[0]);
    return pool_out(r, r->in[0], out);
}

static bool grad_rule(Rule *r, Type *out) {
    const Type *y = r->in[0], *x = r->in[1];
    if (y->rank != 0 || !dtype_is_float(y->dtype))
        return fail_type(r, "differentiates a float scalar", y);
    if (!dtype_is_float(x->dtype)) return fail_type(r, "differentiates with respect to a float value", x);
    *out = *x;
    return true;
}

static bool avgpool_bwd_rule(Rule *r, Type *out) {
    int64_t is[4];
    if (get_ints(r, "input_shape", is) != 4) return fail_type(r, "needs input_shape[4]", r->in[0]);
    Type x = type_make(r->in[0]->dtype, 4, is), y;
    if (!pool_out(r, &x, &y)) return false;
    if (!type_equal(&y, r->in[0])) return fail_types(r, "dy is not the pool's output", r->in[0], &y);
    *out = x;
    return true;
}

/* ---- indexing ---- */

static bool one_hot_rule(Rule *r, Type *out) {
    const Type *idx = r->in[0];
    if (idx->dtype != DT_I32 || idx->rank >= IR_MAX_RANK)
        return fail_type(r, "expects i32 indices of rank < 6", idx);
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
        return fail_types(r, "expects x[..., C] and i32 idx[...] with x's leading dims", x, idx);
    *out = *idx;
    out->dtype = x->dtype;
    return true;
}

/* ---- composites ---- */

static bool linear_rule(Rule *r, Type *out) {
    const Type *x = r->in[0], *w = r->in[1];
    if (x->rank != 2 || w->rank != 2 || x->dim[1] != w->dim[1] || x->dtype != w->dtype)
        return fail_types(r, "expects x[N,K] and w[O,K]", x, w);
    if (r->n->ninputs == 3) {
        const Type *b = r->in[2];
        if (b->rank != 1 || b->dim[0] != w->dim[0] || b->dtype != w->dtype)
            return fail_types(r, "bias must be [O]", b, w);
    }
    int64_t dims[2] = {x->dim[0], w->dim[0]};
    *out = type_make(x->dtype, 2, dims);
    return true;
}

static bool batch_norm_rule(Rule *r, Type *out) {
    const Type *x = r->in[0];
    if (x->rank < 2 || !dtype_is_float(x->dtype)) return fail_type(r, "expects float x[N,C,...]", x);
    Type c = type_make(x->dtype, 1, &x->dim[1]);
    for (int i = 1; i < 5; i++)
        if (!type_equal(r->in[i], &c))
            return fail_types(r, "gamma/beta/mean/var must be [C]", r->in[i], &c);
    int64_t groups = node_int(r->n, "groups", 1);
    if (x->dim[0] % groups != 0)
        return failf(r, "groups=%lld must divide the batch of x, %lld", (long long)groups,
                     (long long)x->dim[0]);
    /* the decomposition views x as [G, N/G, C, ...]: one more axis */
    if (groups > 1 && x->rank >= IR_MAX_RANK)
        return fail_type(r, "groups > 1 needs x of rank < 6", x);
    *out = *x;
    return true;
}

static bool key_ok(Rule *r, const Type *key) {
    Type want = type_make(DT_I32, 1, (int64_t[]){2});
    return type_equal(key, &want) || fail_type(r, "the random key must be i32[2]", key);
}

static bool dropout_rule(Rule *r, Type *out) {
    *out = *r->in[0];
    return need_float(r, r->in[0]) && key_ok(r, r->in[1]);
}

static bool softmax_rule(Rule *r, Type *out) {
    const Type *x = r->in[0];
    if (node_int(r->n, "axis", 0) >= x->rank) return fail_type(r, "axis out of range", x);
    *out = *x;
    return need_float(r, x);
}

/* reduction=mean|sum|none over per-row values of z[N,...]: a scalar or [N]. */
static bool reduction_out(Rule *r, const Type *z, Type *out) {
    const char *red = node_str(r->n, "reduction");
    if (red && strcmp(red, "mean") && strcmp(red, "sum") && strcmp(red, "none"))
        return fail(r, "reduction must be mean, sum or none, got '%s'%s", red, "");
    *out = (red && strcmp(red, "none") == 0) ? type_make(z->dtype, 1, z->dim) : type_scalar(z->dtype);
    return true;
}

/* cross_entropy and mart_bce */
static bool cross_entropy_rule(Rule *r, Type *out) {
    const Type *z = r->in[0], *y = r->in[1];
    if (z->rank != 2 || !dtype_is_float(z->dtype) || y->rank != 1 || y->dtype != DT_I32 ||
        y->dim[0] != z->dim[0])
        return fail_types(r, "expects float logits[N,C] and i32 labels[N]", z, y);
    return reduction_out(r, z, out);
}

static bool kl_div_rule(Rule *r, Type *out) {
    const Type *p = r->in[0], *q = r->in[1];
    if (p->rank != 2 || !dtype_is_float(p->dtype) || !type_equal(p, q))
        return fail_types(r, "expects float p_logits[N,C] and q_logits of the same type", p, q);
    return reduction_out(r, p, out);
}

/* cosine_similarity and pearson: one value per row of the flattened operands. */
static bool rowwise_rule(Rule *r, Type *out) {
    const Type *a = r->in[0], *b = r->in[1];
    if (a->rank < 1 || !dtype_is_float(a->dtype) || !type_equal(a, b))
        return fail_types(r, "expects float a[N,...] and b of the same type", a, b);
    *out = type_make(a->dtype, 1, a->dim);
    return true;
}

/* ---- control flow ---- */

/* The k-th input of a loop body, in node order: (i, carry, captures...). */
static bool body_input_ok(Rule *r, const Function *body, int node, int k) {
    Type i32 = type_scalar(DT_I32);
    const Type *want = k == 0 ? &i32 : &r->f->nodes[r->n->inputs[k - 1]].type;
    const Type *got = &body->nodes[node].type;
    if (type_equal(got, want)) return true;
    const char *role = k == 0 ? "the trip counter" : k == 1 ? "the carry's type" : "its capture's type";
    char sg[128], sw[128];
    return failf(r, "body function '%s': input %d ('%s') must be %s, %s, got %s", body->name, k,
                 body->nodes[node].name, role, type_str(want, sw, sizeof sw),
                 type_str(got, sg, sizeof sg));
}

static bool body_inputs_ok(Rule *r, const Function *body) {
    int k = 0, want = r->n->ninputs + 1;
    for (int v = 0; v < body->n; v++) {
        if (body->nodes[v].op != OP_INPUT) continue;
        if (k < want && !body_input_ok(r, body, v, k)) return false;
        k++;
    }
    if (k == want) return true;
    return failf(r, "body function '%s' must have %d inputs (i, carry, %d captures), has %d",
                 body->name, want, want - 2, k);
}

static bool body_output_ok(Rule *r, const Function *body) {
    if (body->noutputs != 1)
        return failf(r, "body function '%s' must have exactly one output (the new carry), has %d",
                     body->name, body->noutputs);
    const Output *o = &body->outputs[0];
    if (o->value < 0 || o->value >= body->n)
        return failf(r, "body function '%s': output '%s' refers to no value", body->name, o->name);
    const Type *res = &body->nodes[o->value].type, *carry = r->in[0];
    if (type_equal(res, carry)) return true;
    char sc[128], sr[128];
    return failf(r, "body function '%s': output '%s' must have the carry's type %s, got %s",
                 body->name, o->name, type_str(carry, sc, sizeof sc), type_str(res, sr, sizeof sr));
}

/* The result is the carry's type; the body (a function of the module, not
 * this one) must map (i32[] i, carry, captures...) to one new carry. */
static bool loop_rule(Rule *r, Type *out) {
    const Module *m = r->m;
    const char *name = node_str(r->n, "body");
    const Function *body = m && name ? module_find_func(m, name) : NULL;
    if (!body)
        return fail(r, "no function '%s' in the module for the loop body%s", name ? name : "", "");
    if (strcmp(body->name, r->f->name) == 0)
        return fail(r, "the loop body '%s' is the function containing the loop%s", name, "");
    if (!body_inputs_ok(r, body) || !body_output_ok(r, body)) return false;
    *out = *r->in[0];
    return true;
}

/* fused(x...) {body}: body's inputs have the operands' types, in order;
 * the result is its one output's type. */
static bool fused_rule(Rule *r, Type *out) {
    const Module *m = r->m;
    const char *name = node_str(r->n, "body");
    const Function *body = m && name ? module_find_func(m, name) : NULL;
    if (!body)
        return fail(r, "no function '%s' in the module for the fused body%s", name ? name : "", "");
    if (strcmp(body->name, r->f->name) == 0)
        return fail(r, "the fused body '%s' is the function containing it%s", name, "");
    int k = 0;
    for (int v = 0; v < body->n; v++) {
        if (body->nodes[v].op != OP_INPUT) continue;
        if (k < r->n->ninputs && !type_equal(&body->nodes[v].type, &r->f->nodes[r->n->inputs[k]].type)) {
            char sg[128], sw[128];
            return failf(r, "fused body '%s': input %d ('%s') must be %s, got %s", body->name, k,
                         body->nodes[v].name,
                         type_str(&r->f->nodes[r->n->inputs[k]].type, sw, sizeof sw),
                         type_str(&body->nodes[v].type, sg, sizeof sg));
        }
        k++;
    }
    if (k != r->n->ninputs)
        return failf(r, "fused body '%s' has %d inputs, the node passes %d", body->name, k,
                     r->n->ninputs);
    if (body->noutputs != 1 || body->outputs[0].value < 0 || body->outputs[0].value >= body->n)
        return failf(r, "fused body '%s' must have exactly one output, has %d", body->name,
                     body->noutputs);
    *out = body->nodes[body->outputs[0].value].type;
    return true;
}

/* ---- sources ---- */

static bool source_rule(Rule *r, Type *out) {
    const Module *m = r->m;
    const Node *n = r->n;
    *out = n->type;
    if (n->op == OP_PARAM) {
        const char *ref = node_str(n, "ref");
        int p = ref ? module_find_param(m, ref) : -1;
        if (p < 0) return fail(r, "no module parameter named '%s'%s", ref ? ref : "", "");
        if (!type_equal(&m->params[p].type, &n->type))
            return fail_types(r, "type differs from the module parameter", &n->type,
                              &m->params[p].type);
    }
    if (n->op == OP_CONSTANT) {
        const Attr *data = node_attr(n, "data");
        if (data && data->n != type_numel(&n->type))
            return fail_type(r, "data length must equal the element count", &n->type);
    }
    if (n->op == OP_IOTA && node_int(n, "axis", 0) >= n->type.rank)
        return fail_type(r, "axis out of range", &n->type);
    if (n->op >= OP_RANDOM_UNIFORM && n->op <= OP_RANDOM_BERNOULLI) return key_ok(r, r->in[0]);
    return true;
}

typedef bool (*ShapeRule)(Rule *r, Type *out);

/* The ops with a rule of their own; elementwise ops (composite activations
 * included) take unary, binary or select by arity from their row. */
static const ShapeRule RULES[OP_COUNT] = {
    [OP_BROADCAST] = broadcast_rule, [OP_RESHAPE] = reshape_rule,
    [OP_TRANSPOSE] = transpose_rule, [OP_SLICE] = slice_rule, [OP_CONCAT] = concat_rule,
    [OP_PAD] = pad_rule, [OP_REDUCE_SUM] = reduce_rule, [OP_REDUCE_MAX] = reduce_rule,
    [OP_ARGMAX] = argmax_rule, [OP_MATMUL] = matmul_rule, [OP_CONV2D] = conv_rule,
    [OP_CONV2D_BWD_DATA] = conv_bwd_data_rule, [OP_CONV2D_BWD_FILTER] = conv_bwd_filter_rule,
    [OP_MAXPOOL2D] = pool_rule, [OP_AVGPOOL2D] = pool_rule, [OP_MAXPOOL2D_BWD] = maxpool_bwd_rule,
    [OP_AVGPOOL2D_BWD] = avgpool_bwd_rule, [OP_MAXPOOL2D_SELECT] = maxpool_select_rule,
    [OP_GRAD] = grad_rule, [OP_ONE_HOT] = one_hot_rule, [OP_GATHER] = gather_rule,
    [OP_LINEAR] = linear_rule, [OP_BATCH_NORM] = batch_norm_rule, [OP_DROPOUT] = dropout_rule,
    [OP_SOFTMAX] = softmax_rule, [OP_LOG_SOFTMAX] = softmax_rule,
    [OP_CROSS_ENTROPY] = cross_entropy_rule, [OP_MART_BCE] = cross_entropy_rule,
    [OP_KL_DIV] = kl_div_rule, [OP_COSINE_SIMILARITY] = rowwise_rule, [OP_PEARSON] = rowwise_rule,
    [OP_LOOP] = loop_rule, [OP_FUSED] = fused_rule,
};

static ShapeRule rule_for(const OpInfo *info, OpKind op) {
    if (info->cls == OC_SOURCE) return source_rule;
    if (RULES[op]) return RULES[op];
    if (info->pattern != PK_ELEMWISE) return NULL;
    return info->min_inputs == 1 ? unary : info->min_inputs == 2 ? binary : select_rule;
}

bool shape_infer(const Module *m, const Function *f, const Node *n, Type *out, Diag *d) {
    Rule r = {.n = n, .m = m, .f = f, .d = d};
    for (int i = 0; i < n->ninputs && i < 8; i++) r.in[i] = &f->nodes[n->inputs[i]].type;
    const OpInfo *info = op_info(n->op);
    ShapeRule rule = info ? rule_for(info, n->op) : NULL;
    if (!rule) return fail(&r, "op %s has no shape rule%s", info ? info->name : "?", NULL);
    return rule(&r, out);
}
