/* VJP rules: for node n with output cotangent ct, the cotangent of operand
 * i, written with IR ops only (so autodiff applies to its own output).
 * Each rule returns a value id, VJP_NONE when the operand gets no gradient
 * (integer or boolean operands, piecewise-constant dependence), or -1 on
 * error. */
#include <string.h>

#include "passes/autodiff.h"

static const char *nm(VjpCtx *c, const char *part) {
    return arena_printf(c->b->m->arena, "d.%s.%s", c->n->name, part);
}

static const Type *ty(VjpCtx *c, int v) { return b_type(c->b, v); }
static int in(VjpCtx *c, int i) { return c->n->inputs[i]; }

static int full(VjpCtx *c, const char *part, double v, const Type *like_ptr) {
    Type like = *like_ptr; /* may point into the node array, which b_const grows */
    int s = b_const(c->b, nm(c, part), v, type_scalar(like.dtype));
    return b_broadcast(c->b, nm(c, part), s, &like);
}

static int bin(VjpCtx *c, OpKind op, const char *part, int a, int b) {
    return b_binary(c->b, op, nm(c, part), a, b);
}

static int un(VjpCtx *c, OpKind op, const char *part, int a) {
    return b_unary(c->b, op, nm(c, part), a);
}

static int copy_attrs_node(VjpCtx *c, OpKind op, const char *part, const int *ins, int nin,
                           const Attr *extra, int nextra) {
    Attr a[8];
    int k = 0;
    for (int i = 0; i < c->n->nattrs && k < 8; i++) a[k++] = c->n->attrs[i];
    for (int i = 0; i < nextra && k < 8; i++) a[k++] = extra[i];
    return b_node(c->b, op, nm(c, part), ins, nin, a, k);
}

/* ---- elementwise ---- */

/* Each rule: the cotangent of operand i; the unary ones ignore i. */
static int g_neg(VjpCtx *c, int i) { (void)i; return un(c, OP_NEG, "neg", c->ct); }

static int g_abs(VjpCtx *c, int i) {
    (void)i;
    return bin(c, OP_MUL, "abs", c->ct, un(c, OP_SIGN, "sign", in(c, 0)));
}

static int g_exp(VjpCtx *c, int i) { (void)i; return bin(c, OP_MUL, "exp", c->ct, c->out); }
static int g_log(VjpCtx *c, int i) { (void)i; return bin(c, OP_DIV, "log", c->ct, in(c, 0)); }

static int g_sqrt(VjpCtx *c, int i) {
    (void)i;
    const Type t = *ty(c, in(c, 0));
    return bin(c, OP_DIV, "sqrt", c->ct, bin(c, OP_MUL, "2y", full(c, "two", 2, &t), c->out));
}

static int g_rsqrt(VjpCtx *c, int i) {
    (void)i;
    const Type t = *ty(c, in(c, 0));
    int y = c->out, y3 = bin(c, OP_MUL, "y3", bin(c, OP_MUL, "y2", y, y), y);
    return bin(c, OP_MUL, "rsqrt", c->ct, bin(c, OP_MUL, "slope", full(c, "mhalf", -0.5, &t), y3));
}

static int g_recip(VjpCtx *c, int i) {
    (void)i;
    int y2 = bin(c, OP_MUL, "y2", c->out, c->out);
    return un(c, OP_NEG, "recip", bin(c, OP_MUL, "ct_y2", c->ct, y2));
}

static int g_relu(VjpCtx *c, int i) {
    (void)i;
    const Type t = *ty(c, in(c, 0));
    int pos = bin(c, OP_GT, "pos", in(c, 0), full(c, "zero", 0, &t));
    int ins[3] = {pos, c->ct, full(c, "zero", 0, &t)};
    return b_node(c->b, OP_SELECT, nm(c, "relu"), ins, 3, NULL, 0);
}

static int g_sigmoid(VjpCtx *c, int i) {
    (void)i;
    const Type t = *ty(c, in(c, 0));
    int one_m = bin(c, OP_SUB, "1-y", full(c, "one", 1, &t), c->out);
    return bin(c, OP_MUL, "sigmoid", c->ct, bin(c, OP_MUL, "slope", c->out, one_m));
}

static int g_tanh(VjpCtx *c, int i) {
    (void)i;
    const Type t = *ty(c, in(c, 0));
    int y2 = bin(c, OP_MUL, "y2", c->out, c->out);
    return bin(c, OP_MUL, "tanh", c->ct, bin(c, OP_SUB, "slope", full(c, "one", 1, &t), y2));
}

/* d/dx softplus_beta(x) = sigmoid(beta x) */
static int g_softplus(VjpCtx *c, int i) {
    (void)i;
    const Type t = *ty(c, in(c, 0));
    double beta = node_float(c->n, "beta", 1.0);
    int x = in(c, 0), bx = beta == 1.0 ? x : bin(c, OP_MUL, "bx", x, full(c, "beta", beta, &t));
    return bin(c, OP_MUL, "softplus", c->ct, un(c, OP_SIGMOID, "slope", bx));
}

/* d/dx erf(x) = 2/sqrt(pi) exp(-x^2) */
static int g_erf(VjpCtx *c, int i) {
    (void)i;
    const Type t = *ty(c, in(c, 0));
    int x = in(c, 0);
    int g = un(c, OP_EXP, "gauss", un(c, OP_NEG, "mx2", bin(c, OP_MUL, "x2", x, x)));
    int k = full(c, "two_rsqrt_pi", 1.1283791670955126, &t);
    return bin(c, OP_MUL, "erf", c->ct, bin(c, OP_MUL, "slope", k, g));
}

static int g_cast(VjpCtx *c, int i) {
    (void)i;
    DType from = ty(c, in(c, 0))->dtype;
    if (!dtype_is_float(from)) return VJP_NONE;
    Attr a = attr_dtype("dtype", from);
    return b_node(c->b, OP_CAST, nm(c, "cast"), &c->ct, 1, &a, 1);
}

/* Piecewise constant or not differentiable by definition: sign, not,
 * stop_gradient, and/or, comparisons, argmax, one_hot, sources. */
static int g_none(VjpCtx *c, int i) {
    (void)c;
    (void)i;
    return VJP_NONE;
}

static int g_add(VjpCtx *c, int i) { (void)i; return c->ct; }
static int g_sub(VjpCtx *c, int i) { return i == 0 ? c->ct : un(c, OP_NEG, "sub", c->ct); }

static int g_mul(VjpCtx *c, int i) {
    return bin(c, OP_MUL, i == 0 ? "mul.a" : "mul.b", c->ct, in(c, 1 - i));
}

/* d/da = ct / b; d/db = -ct * y / b */
static int g_div(VjpCtx *c, int i) {
    int b = in(c, 1), ct = c->ct;
    if (i == 0) return bin(c, OP_DIV, "div.a", ct, b);
    return un(c, OP_NEG, "div.b", bin(c, OP_DIV, "ct_y_b", bin(c, OP_MUL, "ct_y", ct, c->out), b));
}

/* max/min: ties go to the first operand */
static int g_minmax(VjpCtx *c, int i) {
    const Type t = *ty(c, in(c, 0));
    int first = bin(c, c->n->op == OP_MAX ? OP_GE : OP_LE, "first", in(c, 0), in(c, 1));
    int z = full(c, "zero", 0, &t);
    int ins[3] = {first, i == 0 ? c->ct : z, i == 0 ? z : c->ct};
    return b_node(c->b, OP_SELECT, nm(c, i == 0 ? "pick.a" : "pick.b"), ins, 3, NULL, 0);
}

/* d/da = b a^(b-1); d/db = y log a */
static int g_pow(VjpCtx *c, int i) {
    int a = in(c, 0), b = in(c, 1);
    const Type t = *ty(c, a);
    if (i == 0) {
        int bm1 = bin(c, OP_SUB, "b-1", b, full(c, "one", 1, &t));
        int slope = bin(c, OP_MUL, "slope", b, bin(c, OP_POW, "a^(b-1)", a, bm1));
        return bin(c, OP_MUL, "pow.a", c->ct, slope);
    }
    return bin(c, OP_MUL, "pow.b", c->ct, bin(c, OP_MUL, "y_log_a", c->out, un(c, OP_LOG, "log_a", a)));
}

static int select_rule(VjpCtx *c, int i) {
    if (i == 0) return VJP_NONE;
    int z = full(c, "zero", 0, ty(c, c->ct));
    int ins[3] = {in(c, 0), i == 1 ? c->ct : z, i == 1 ? z : c->ct};
    return b_node(c->b, OP_SELECT, nm(c, i == 1 ? "sel.a" : "sel.b"), ins, 3, NULL, 0);
}

/* ---- shape ops ---- */

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
        if (t.rank + 1 > IR_MAX_RANK) return diag_error(c->b->d, EXIT_BADINPUT, "node '%s': strided slice of a rank-%d value has no VJP", c->n->name, t.rank), -1;
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

/* ---- reductions ---- */

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

/* ---- matmul, convolution, pooling ---- */

static int swap_last(VjpCtx *c, const char *part, int v) {
    int r = ty(c, v)->rank;
    int64_t p[IR_MAX_RANK];
    for (int i = 0; i < r; i++) p[i] = i;
    p[r - 2] = r - 1;
    p[r - 1] = r - 2;
    Attr a = attr_ints("perm", p, r);
    return b_node(c->b, OP_TRANSPOSE, nm(c, part), &v, 1, &a, 1);
}

static int matmul_rule(VjpCtx *c, int i) {
    int ins[2];
    if (i == 0) ins[0] = c->ct, ins[1] = swap_last(c, "bT", in(c, 1));
    else ins[0] = swap_last(c, "aT", in(c, 0)), ins[1] = c->ct;
    return b_node(c->b, OP_MATMUL, nm(c, i == 0 ? "matmul.a" : "matmul.b"), ins, 2, NULL, 0);
}

static Attr shape_attr(const char *key, const Type *t) { return attr_ints(key, t->dim, t->rank); }

/* conv2d and its two backward ops are each other's adjoints:
 * <ct, conv(x,w)> = <bwd_data(ct,w), x> = <bwd_filter(x,ct), w>. */
static int conv_family_rule(VjpCtx *c, int i) {
    int64_t st[2], pd[2];
    node_ints(c->n, "stride", st, 2);
    node_ints(c->n, "padding", pd, 2);
    Attr a[3] = {attr_ints("stride", st, 2), attr_ints("padding", pd, 2)};
    const Type *w;
    int ins[2];
    if (c->n->op == OP_CONV2D) {
        if (i == 0) {
            ins[0] = c->ct, ins[1] = in(c, 1);
            a[2] = shape_attr("input_shape", ty(c, in(c, 0)));
            return b_node(c->b, OP_CONV2D_BWD_DATA, nm(c, "conv.x"), ins, 2, a, 3);
        }
        w = ty(c, in(c, 1));
        ins[0] = in(c, 0), ins[1] = c->ct;
        a[2] = attr_ints("kernel", &w->dim[2], 2);
        return b_node(c->b, OP_CONV2D_BWD_FILTER, nm(c, "conv.w"), ins, 2, a, 3);
    }
    if (c->n->op == OP_CONV2D_BWD_DATA) { /* (dy, w) -> dx */
        if (i == 0) {
            ins[0] = c->ct, ins[1] = in(c, 1);
            return b_node(c->b, OP_CONV2D, nm(c, "bwd_data.dy"), ins, 2, a, 2);
        }
        w = ty(c, in(c, 1));
        ins[0] = c->ct, ins[1] = in(c, 0);
        a[2] = attr_ints("kernel", &w->dim[2], 2);
        return b_node(c->b, OP_CONV2D_BWD_FILTER, nm(c, "bwd_data.w"), ins, 2, a, 3);
    }
    /* OP_CONV2D_BWD_FILTER: (x, dy) -> dw */
    if (i == 0) {
        ins[0] = in(c, 1), ins[1] = c->ct;
        a[2] = shape_attr("input_shape", ty(c, in(c, 0)));
        return b_node(c->b, OP_CONV2D_BWD_DATA, nm(c, "bwd_filter.x"), ins, 2, a, 3);
    }
    ins[0] = in(c, 0), ins[1] = c->ct;
    return b_node(c->b, OP_CONV2D, nm(c, "bwd_filter.dy"), ins, 2, a, 2);
}

/* Max-pool routing is piecewise constant in x: gradients flow only through
 * the routed values. maxpool2d_bwd and maxpool2d_select are transposes. */
static int pool_rule(VjpCtx *c, int i) {
    int ins[2] = {in(c, 0), c->ct};
    OpKind op = c->n->op;
    if (op == OP_MAXPOOL2D) return copy_attrs_node(c, OP_MAXPOOL2D_BWD, "maxpool", ins, 2, NULL, 0);
    if (op == OP_MAXPOOL2D_BWD)
        return i == 0 ? VJP_NONE
                      : copy_attrs_node(c, OP_MAXPOOL2D_SELECT, "maxpool_bwd", ins, 2, NULL, 0);
    if (op == OP_MAXPOOL2D_SELECT)
        return i == 0 ? VJP_NONE
                      : copy_attrs_node(c, OP_MAXPOOL2D_BWD, "maxpool_select", ins, 2, NULL, 0);
    if (op == OP_AVGPOOL2D) {
        Attr a = shape_attr("input_shape", ty(c, in(c, 0)));
        return copy_attrs_node(c, OP_AVGPOOL2D_BWD, "avgpool", &c->ct, 1, &a, 1);
    }
    /* OP_AVGPOOL2D_BWD: its transpose is avgpool2d, same window */
    Attr a[8];
    int k = 0;
    for (int j = 0; j < c->n->nattrs && k < 8; j++)
        if (strcmp(c->n->attrs[j].key, "input_shape") != 0) a[k++] = c->n->attrs[j];
    return b_node(c->b, OP_AVGPOOL2D, nm(c, "avgpool_bwd"), &c->ct, 1, a, k);
}

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

static int g_reshape(VjpCtx *c, int i) {
    (void)i;
    const Type *x = ty(c, in(c, 0));
    return b_reshape(c->b, nm(c, "reshape"), c->ct, x->rank, x->dim);
}

static int g_broadcast(VjpCtx *c, int i) { (void)i; return broadcast_rule(c); }
static int g_transpose(VjpCtx *c, int i) { (void)i; return transpose_rule(c); }
static int g_slice(VjpCtx *c, int i) { (void)i; return slice_rule(c); }
static int g_pad(VjpCtx *c, int i) { (void)i; return pad_rule(c); }
static int g_reduce(VjpCtx *c, int i) { (void)i; return reduce_rule(c); }

/* The body runs `trips` times: its adjoint would need every carry. */
static int g_loop(VjpCtx *c, int i) {
    (void)i;
    diag_error(c->b->d, EXIT_BADINPUT,
               "node '%s' (loop) is not differentiable: wrap its result in stop_gradient",
               c->n->name);
    return -1;
}

/* Every primitive of the op table but fused (which runs after autodiff)
 * has a rule here; an op without one is an error, never a silent zero
 * gradient (tests/passes/test_autodiff.c checks the table is complete). */
static const VjpRule RULES[OP_COUNT] = {
    [OP_INPUT] = g_none, [OP_PARAM] = g_none, [OP_CONSTANT] = g_none, [OP_IOTA] = g_none,
    [OP_RANDOM_UNIFORM] = g_none, [OP_RANDOM_NORMAL] = g_none, [OP_RANDOM_BERNOULLI] = g_none,
    [OP_NEG] = g_neg, [OP_ABS] = g_abs, [OP_SIGN] = g_none, [OP_EXP] = g_exp, [OP_LOG] = g_log,
    [OP_SQRT] = g_sqrt, [OP_RSQRT] = g_rsqrt, [OP_RECIP] = g_recip, [OP_RELU] = g_relu,
    [OP_SIGMOID] = g_sigmoid, [OP_TANH] = g_tanh, [OP_SOFTPLUS] = g_softplus, [OP_ERF] = g_erf,
    [OP_NOT] = g_none, [OP_CAST] = g_cast, [OP_STOP_GRADIENT] = g_none,
    [OP_ADD] = g_add, [OP_SUB] = g_sub, [OP_MUL] = g_mul, [OP_DIV] = g_div, [OP_MAX] = g_minmax,
    [OP_MIN] = g_minmax, [OP_POW] = g_pow, [OP_AND] = g_none, [OP_OR] = g_none,
    [OP_EQ] = g_none, [OP_NE] = g_none, [OP_LT] = g_none, [OP_LE] = g_none, [OP_GT] = g_none,
    [OP_GE] = g_none, [OP_SELECT] = select_rule, [OP_BROADCAST] = g_broadcast,
    [OP_RESHAPE] = g_reshape, [OP_TRANSPOSE] = g_transpose, [OP_SLICE] = g_slice,
    [OP_CONCAT] = concat_rule, [OP_PAD] = g_pad, [OP_REDUCE_SUM] = g_reduce,
    [OP_REDUCE_MAX] = g_reduce, [OP_ARGMAX] = g_none, [OP_MATMUL] = matmul_rule,
    [OP_CONV2D] = conv_family_rule, [OP_CONV2D_BWD_DATA] = conv_family_rule,
    [OP_CONV2D_BWD_FILTER] = conv_family_rule, [OP_MAXPOOL2D] = pool_rule,
    [OP_MAXPOOL2D_BWD] = pool_rule, [OP_MAXPOOL2D_SELECT] = pool_rule, [OP_AVGPOOL2D] = pool_rule,
    [OP_AVGPOOL2D_BWD] = pool_rule, [OP_ONE_HOT] = g_none, [OP_GATHER] = gather_rule,
    [OP_LOOP] = g_loop,
};

bool vjp_has_rule(OpKind op) { return (unsigned)op < OP_COUNT && RULES[op]; }

int vjp_rule(VjpCtx *c, int i) {
    if (vjp_has_rule(c->n->op)) return RULES[c->n->op](c, i);
    diag_error(c->b->d, EXIT_BADINPUT,
               "node '%s' (%s) has no differentiable backward (run decompose before autodiff)",
               c->n->name, op_name(c->n->op));
    return -1;
}
