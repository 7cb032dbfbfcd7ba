/* The tensor-manipulation layers of the graph format that imported
 * networks need (docs/graph-format.md): arithmetic with a scalar, a
 * parameter or broadcasting, reshape, transpose, concat, pad, clip,
 * softmax, reduce_mean and conv_transpose2d. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/net_internal.h"

/* An integer list attribute of 1 to IR_MAX_RANK entries. */
static bool get_ints(Cur *c, const char *key, bool required, int64_t lo, int64_t *out, int *n) {
    bool missing;
    const cJSON *v = net_attr(c, key, required, &missing);
    *n = 0;
    if (missing) return !required;
    if (!v) return false;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1 || cJSON_GetArraySize(v) > IR_MAX_RANK)
        return net_err(c, "attribute '%s' must be a list of 1 to %d integers", key, IR_MAX_RANK);
    for (const cJSON *it = v->child; it; it = it->next) {
        if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
            it->valuedouble < (double)lo || it->valuedouble > (double)(1 << 24))
            return net_err(c, "attribute '%s' must list integers in [%lld, %d]", key, (long long)lo,
                       1 << 24);
        out[(*n)++] = (int64_t)it->valuedouble;
    }
    return true;
}

/* A scalar of x's dtype broadcast to x's type. */
static int splat(Cur *c, const char *part, double v, int x) {
    Builder *b = c->net->env->b;
    const Type t = *b_type(b, x);
    int s = b_const(b, net_vname(c, arena_printf(net_arena(c->net), "%s.s", part)), v,
                    type_scalar(t.dtype));
    return b_broadcast(b, net_vname(c, part), s, &t);
}

/* add/sub/mul/div with one input: the other operand is "scalar" (a number)
 * or the parameter <id>.<param> of "shape", broadcast NumPy-style against
 * the input; "reverse" puts the constant first (c - x, c / x). */
static int arith_const(Cur *c, OpKind op, int x) {
    static const char *const keys[] = {"id", "op", "inputs", "scalar", "param", "shape",
                                       "trainable", "reverse", NULL};
    Builder *b = c->net->env->b;
    bool missing, reverse, trainable;
    const char *pname;
    double s;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys) ||
        !net_get_bool(c, "reverse", false, &reverse) || !net_get_bool(c, "trainable", true, &trainable) ||
        !net_get_str(c, "param", NULL, &pname))
        return -1;
    net_attr(c, "scalar", false, &missing);
    if (missing == !pname)
        return net_err(c, "%s takes 2 inputs, or 1 with either 'scalar' or 'param' (with 'shape')",
                   op_name(op)), -1;
    const Type t = *b_type(b, x);
    int k;
    if (pname) {
        int64_t dims[IR_MAX_RANK];
        int n;
        if (!get_ints(c, "shape", true, 1, dims, &n)) return -1;
        if (!*pname || strchr(pname, '.') || strchr(pname, ' '))
            return net_err(c, "attribute 'param' must be a name without dots"), -1;
        Type pt = type_make(t.dtype, n, dims);
        int p = net_param(c, pname, pt, (InitSpec){INIT_ZEROS, 0}, trainable);
        if (p < 0) return -1;
        k = b_broadcast(b, net_vname(c, arena_printf(net_arena(c->net), "%s.b", pname)), p, &t);
    } else {
        if (!net_get_num(c, "scalar", 0, -INFINITY, INFINITY, &s)) return -1;
        if (!isfinite(s)) return net_err(c, "attribute 'scalar' must be finite"), -1;
        k = splat(c, "k", s, x);
    }
    if (k < 0) return -1;
    return reverse ? b_binary(b, op, net_vname(c, NULL), k, x) : b_binary(b, op, net_vname(c, NULL), x, k);
}

/* add/sub/mul/div of two inputs with "broadcast": true: both broadcast
 * NumPy-style (right-aligned, dims equal or 1) to their common shape. */
static int arith_broadcast(Cur *c, OpKind op, const int *ins) {
    static const char *const keys[] = {"id", "op", "inputs", "broadcast", NULL};
    Builder *b = c->net->env->b;
    bool on;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys) ||
        !net_get_bool(c, "broadcast", false, &on))
        return -1;
    if (!on) return b_binary(b, op, net_vname(c, NULL), ins[0], ins[1]);
    const Type ta = *b_type(b, ins[0]), tb = *b_type(b, ins[1]);
    Type t = ta.rank >= tb.rank ? ta : tb;
    for (int i = 1; i <= t.rank; i++) {
        int64_t da = i <= ta.rank ? ta.dim[ta.rank - i] : 1, db = i <= tb.rank ? tb.dim[tb.rank - i] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[128], sb[128];
            return net_err(c, "operands do not broadcast: %s vs %s", type_str(&ta, sa, sizeof sa),
                       type_str(&tb, sb, sizeof sb)), -1;
        }
        t.dim[t.rank - i] = da == 1 ? db : da;
    }
    if (ta.dtype != tb.dtype) return net_err(c, "operands differ in dtype"), -1;
    int x = b_broadcast(b, net_vname(c, "a"), ins[0], &t), y = b_broadcast(b, net_vname(c, "b"), ins[1], &t);
    return b_binary(b, op, net_vname(c, NULL), x, y);
}

/* reshape: the batch axis stays, "shape" gives the rest. */
static int reshape_layer(Cur *c, int x) {
    static const char *const keys[] = {"id", "op", "inputs", "shape", NULL};
    int64_t dims[IR_MAX_RANK + 1];
    int n;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys) ||
        !get_ints(c, "shape", true, 1, dims + 1, &n))
        return -1;
    const Type t = *b_type(c->net->env->b, x);
    if (t.rank < 1 || n + 1 > IR_MAX_RANK)
        return net_err(c, "reshape needs a batched input and at most %d dims", IR_MAX_RANK - 1), -1;
    dims[0] = t.dim[0];
    int64_t numel = 1;
    for (int i = 1; i <= n; i++) numel *= dims[i];
    if (numel * t.dim[0] != type_numel(&t)) {
        char s[128];
        return net_err(c, "shape holds %lld elements per row, the input %s", (long long)numel,
                   type_str(&t, s, sizeof s)), -1;
    }
    return b_reshape(c->net->env->b, net_vname(c, NULL), x, n + 1, dims);
}

/* transpose: "perm" lists every axis, the batch axis first. */
static int transpose_layer(Cur *c, int x) {
    static const char *const keys[] = {"id", "op", "inputs", "perm", NULL};
    int64_t perm[IR_MAX_RANK];
    int n;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys) ||
        !get_ints(c, "perm", true, 0, perm, &n))
        return -1;
    if (perm[0] != 0) return net_err(c, "'perm' must keep the batch axis first"), -1;
    Attr a = attr_ints("perm", perm, n);
    return b_node(c->net->env->b, OP_TRANSPOSE, net_vname(c, NULL), &x, 1, &a, 1);
}

static int concat_layer(Cur *c, const int *ins, int nin) {
    static const char *const keys[] = {"id", "op", "inputs", "axis", NULL};
    int64_t axis;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys) ||
        !net_get_int(c, "axis", false, 1, 1, IR_MAX_RANK - 1, &axis))
        return -1;
    Attr a = attr_int("axis", axis);
    return b_node(c->net->env->b, OP_CONCAT, net_vname(c, NULL), ins, nin, &a, 1);
}

/* pad: "lo" and "hi" per axis (the batch axis 0), filled with "value". */
static int pad_layer(Cur *c, int x) {
    static const char *const keys[] = {"id", "op", "inputs", "lo", "hi", "value", NULL};
    int64_t lo[IR_MAX_RANK], hi[IR_MAX_RANK];
    int nl, nh;
    double value;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys) ||
        !get_ints(c, "lo", true, 0, lo, &nl) || !get_ints(c, "hi", true, 0, hi, &nh) ||
        !net_get_num(c, "value", 0, -INFINITY, INFINITY, &value))
        return -1;
    const Type t = *b_type(c->net->env->b, x);
    if (nl != t.rank || nh != t.rank)
        return net_err(c, "'lo' and 'hi' need one entry per axis (%d)", t.rank), -1;
    if (lo[0] || hi[0]) return net_err(c, "the batch axis cannot be padded"), -1;
    Attr a[3] = {attr_ints("lo", lo, nl), attr_ints("hi", hi, nh), attr_float("value", value)};
    return b_node(c->net->env->b, OP_PAD, net_vname(c, NULL), &x, 1, a, 3);
}

/* clip: max(x, min) then min(., max); either bound may be left out. */
static int clip_layer(Cur *c, int x) {
    static const char *const keys[] = {"id", "op", "inputs", "min", "max", NULL};
    Builder *b = c->net->env->b;
    double lo, hi;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys) ||
        !net_get_num(c, "min", -INFINITY, -INFINITY, INFINITY, &lo) ||
        !net_get_num(c, "max", INFINITY, -INFINITY, INFINITY, &hi))
        return -1;
    if (lo > hi) return net_err(c, "'min' %g is above 'max' %g", lo, hi), -1;
    bool has_hi = isfinite(hi);
    int y = x;
    if (isfinite(lo))
        y = b_binary(b, OP_MAX, net_vname(c, has_hi ? "lo" : NULL), y, splat(c, "min", lo, x));
    if (has_hi) y = b_binary(b, OP_MIN, net_vname(c, NULL), y, splat(c, "max", hi, x));
    return y;
}

/* An axis in [-rank, rank) that is not the batch axis. */
static bool feature_axis(Cur *c, int64_t *axis, int rank) {
    if (*axis < 0) *axis += rank;
    if (*axis < 1 || *axis >= rank)
        return net_err(c, "axis must be a non-batch axis of the rank-%d input", rank);
    return true;
}

static int softmax_layer(Cur *c, int x) {
    static const char *const keys[] = {"id", "op", "inputs", "axis", NULL};
    int64_t axis;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys) ||
        !net_get_int(c, "axis", false, -1, -IR_MAX_RANK, IR_MAX_RANK - 1, &axis) ||
        !feature_axis(c, &axis, b_type(c->net->env->b, x)->rank))
        return -1;
    Attr a = attr_int("axis", axis);
    return b_node(c->net->env->b, OP_SOFTMAX, net_vname(c, NULL), &x, 1, &a, 1);
}

/* reduce_mean: reduce_sum over "axes" times 1 / count. */
static int reduce_mean_layer(Cur *c, int x) {
    static const char *const keys[] = {"id", "op", "inputs", "axes", "keepdims", NULL};
    Builder *b = c->net->env->b;
    int64_t axes[IR_MAX_RANK];
    int n;
    bool keep;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys) ||
        !get_ints(c, "axes", true, -IR_MAX_RANK, axes, &n) || !net_get_bool(c, "keepdims", true, &keep))
        return -1;
    const Type t = *b_type(b, x);
    double count = 1;
    for (int i = 0; i < n; i++) {
        if (!feature_axis(c, &axes[i], t.rank)) return -1;
        count *= (double)t.dim[axes[i]];
    }
    int s = b_reduce(b, OP_REDUCE_SUM, net_vname(c, "sum"), x, axes, n, keep);
    if (s < 0) return -1;
    return b_binary(b, OP_MUL, net_vname(c, NULL), s, splat(c, "scale", 1.0 / count, s));
}

/* conv_transpose2d (PyTorch's ConvTranspose2d, groups 1, dilation 1): the
 * data gradient of a convolution, weight [C, out_channels, kh, kw]; each
 * spatial extent (H - 1) s - 2p + k + output_padding. */
static int conv_transpose2d(Cur *c, int x) {
    static const char *const keys[] = {"id", "op", "inputs", "out_channels", "kernel", "stride",
                                       "padding", "output_padding", "bias", "init", "bias_init",
                                       NULL};
    Builder *b = c->net->env->b;
    int64_t oc, k[2], s[2], p[2], op[2];
    bool bias;
    InitSpec init;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys) ||
        !net_need_rank(c, x, 4, "an NCHW input [N,C,H,W]") ||
        !net_get_int(c, "out_channels", true, 0, 1, 1 << 20, &oc) ||
        !net_get_pair(c, "kernel", true, 1, 1, k) || !net_get_pair(c, "stride", false, 1, 1, s) ||
        !net_get_pair(c, "padding", false, 0, 0, p) || !net_get_pair(c, "output_padding", false, 0, 0, op) ||
        !net_get_bool(c, "bias", true, &bias))
        return -1;
    const Type xt = *b_type(b, x);
    int64_t is[4] = {xt.dim[0], oc, 0, 0};
    for (int i = 0; i < 2; i++) {
        if (op[i] >= s[i] || p[i] >= k[i])
            return net_err(c, "output_padding must be below the stride and padding below the kernel"),
                   -1;
        is[2 + i] = (xt.dim[2 + i] - 1) * s[i] - 2 * p[i] + k[i] + op[i];
        if (is[2 + i] < 1) return net_err(c, "the output would be empty"), -1;
    }
    int64_t fan_in = oc * k[0] * k[1], wd[4] = {xt.dim[1], oc, k[0], k[1]};
    if (!net_init_spec(c, "init", "default", fan_in, &init)) return -1;
    int w = net_param(c, "weight", type_make(xt.dtype, 4, wd), init, true);
    if (w < 0) return -1;
    Attr a[3] = {attr_ints("input_shape", is, 4), attr_ints("padding", p, 2),
                 attr_ints("stride", s, 2)};
    int ins[2] = {x, w};
    int y = b_node(b, OP_CONV2D_BWD_DATA, net_vname(c, bias ? "conv" : NULL), ins, 2, a, 3);
    return bias && y >= 0 ? net_add_bias(c, y, oc, "bias_init", fan_in) : y;
}

/* The layers above by name; -2 when op is none of them. */
int net_tensor_layer(Cur *c, const char *op, const int *ins, int nin) {
    static const struct { const char *name; OpKind op; } arith[] = {
        {"add", OP_ADD}, {"sub", OP_SUB}, {"mul", OP_MUL}, {"div", OP_DIV}};
    for (size_t i = 0; i < 4 && nin == 1; i++)
        if (strcmp(op, arith[i].name) == 0) return arith_const(c, arith[i].op, ins[0]);
    for (size_t i = 0; i < 4 && nin == 2 && cJSON_GetObjectItemCaseSensitive(c->js, "broadcast"); i++)
        if (strcmp(op, arith[i].name) == 0) return arith_broadcast(c, arith[i].op, ins);
    if (strcmp(op, "concat") == 0) return concat_layer(c, ins, nin);
    if (nin != 1) return -2;
    if (strcmp(op, "conv_transpose2d") == 0) return conv_transpose2d(c, ins[0]);
    if (strcmp(op, "reshape") == 0) return reshape_layer(c, ins[0]);
    if (strcmp(op, "transpose") == 0) return transpose_layer(c, ins[0]);
    if (strcmp(op, "pad") == 0) return pad_layer(c, ins[0]);
    if (strcmp(op, "clip") == 0) return clip_layer(c, ins[0]);
    if (strcmp(op, "softmax") == 0) return softmax_layer(c, ins[0]);
    if (strcmp(op, "reduce_mean") == 0) return reduce_mean_layer(c, ins[0]);
    return -2;
}
