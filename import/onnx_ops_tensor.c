/* Elementwise ops, activations, shape ops and constants: Add, Sub, Mul,
 * Div, Relu, LeakyRelu, Sigmoid, Tanh, Softplus, Gelu, Elu, Neg, Abs,
 * Dropout, Identity, Clip, Softmax, ReduceMean, Reshape, Flatten,
 * Transpose, Concat, Pad, Constant. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "import/onnx_internal.h"

static int computed(Ox *o, const Onnx__NodeProto *n, size_t k) {
    int v = ox_input(o, n, k);
    if (v >= 0 && o->vals[v].is_const)
        return ox_fail(o, "input %zu '%s' is a constant where a computed value is needed", k,
                       o->vals[v].name), -1;
    return v;
}

/* The result has x's shape. */
static bool same_shape(Ox *o, const Onnx__NodeProto *n, const char *id, int x) {
    int64_t dim[OX_MAX_RANK];
    memcpy(dim, o->vals[x].dim, sizeof dim);
    return ox_define(o, n, 0, id, o->vals[x].rank, dim) >= 0;
}

static const char *lower(Ox *o, const char *s) {
    char *t = arena_strdup(o->arena, s);
    for (char *p = t; *p; p++) *p = (char)tolower((unsigned char)*p);
    return t;
}

/* c (a constant) broadcasts NumPy-style to x's shape. */
static bool broadcasts(const OxValue *c, const OxValue *x) {
    if (c->rank > x->rank) return false;
    for (int i = 0; i < c->rank; i++) {
        int64_t d = c->dim[c->rank - 1 - i], e = x->dim[x->rank - 1 - i];
        if (d != 1 && (d != e || x->rank - 1 - i == 0)) return false;
    }
    return true;
}

static bool binary_const(Ox *o, const Onnx__NodeProto *n, int x, int c, bool reverse) {
    const OxValue *C = &o->vals[c];
    const char *op = lower(o, n->op_type), *id;
    cJSON *node;
    if (C->numel == 1) {
        id = ox_node_id(o, n);
        node = ox_emit(o, id, op, &x, 1);
        cJSON_AddNumberToObject(node, "scalar", ox_short(C->data[0]));
    } else {
        if (!broadcasts(C, &o->vals[x]))
            return ox_fail(o, "the constant '%s' does not broadcast to the other operand's "
                              "per-row shape", C->name);
        const char *suffix = ox_param_suffix(o, C->name);
        id = ox_param_id(o, n, C->name, suffix);
        if (!ox_weight(o, id, suffix, c, false, 1, true)) return false;
        node = ox_emit(o, id, op, &x, 1);
        cJSON_AddStringToObject(node, "param", suffix);
        cJSON_AddItemToObject(node, "shape", ox_ints_json(C->dim, C->rank));
    }
    if (reverse) cJSON_AddBoolToObject(node, "reverse", true);
    return same_shape(o, n, id, x);
}

bool ox_binary(Ox *o, const Onnx__NodeProto *n) {
    int a = ox_input(o, n, 0), b = a < 0 ? -1 : ox_input(o, n, 1);
    if (b < 0) return false;
    const OxValue *A = &o->vals[a], *B = &o->vals[b];
    if (A->is_const && B->is_const)
        return ox_fail(o, "both operands are constants (export with do_constant_folding=True)");
    if (A->is_const || B->is_const)
        return binary_const(o, n, A->is_const ? b : a, A->is_const ? a : b, A->is_const);
    int64_t dim[OX_MAX_RANK] = {A->dim[0]};
    bool bcast = false, fits = A->rank == B->rank;
    for (int i = 1; i < A->rank && fits; i++) {
        fits = A->dim[i] == B->dim[i] || A->dim[i] == 1 || B->dim[i] == 1;
        bcast |= A->dim[i] != B->dim[i];
        dim[i] = A->dim[i] == 1 ? B->dim[i] : A->dim[i];
    }
    if (!fits)
        return ox_fail(o, "operands '%s' and '%s' do not broadcast (ranks must be equal, each "
                          "axis equal or 1)", A->name, B->name);
    const char *id = ox_node_id(o, n);
    int ins[2] = {a, b};
    cJSON *node = ox_emit(o, id, lower(o, n->op_type), ins, 2);
    if (bcast) cJSON_AddBoolToObject(node, "broadcast", true);
    return ox_define(o, n, 0, id, A->rank, dim) >= 0;
}

bool ox_gelu(Ox *o, const Onnx__NodeProto *n, int x) {
    const char *id = ox_node_id(o, n), *form = ox_attr_str(n, "approximate", "none");
    if (strcmp(form, "none") && strcmp(form, "tanh"))
        return ox_fail(o, "approximate '%s' (none or tanh)", form);
    cJSON *node = ox_emit(o, id, "gelu", &x, 1);
    if (strcmp(form, "none")) cJSON_AddStringToObject(node, "approximate", form);
    return same_shape(o, n, id, x);
}

static bool dropout(Ox *o, const Onnx__NodeProto *n, int x) {
    int r = ox_opt_input(o, n, 1), t = r == -1 ? -1 : ox_opt_input(o, n, 2);
    if (t == -1) return false;
    if (r >= 0 && !ox_is_scalar(&o->vals[r])) return ox_fail(o, "the ratio must be a constant");
    if (t >= 0 && (!ox_is_scalar(&o->vals[t]) || o->vals[t].data[0] != 0))
        return ox_fail(o, "training_mode must be a constant false");
    if (n->n_output > 1 && n->output[1] && n->output[1][0])
        return ox_fail(o, "the mask output is not supported");
    double p = r >= 0 ? o->vals[r].data[0] : 0.5;
    if (!(p >= 0 && p <= 0.99)) return ox_fail(o, "ratio %g outside [0, 0.99]", p);
    const char *id = ox_node_id(o, n);
    cJSON_AddNumberToObject(ox_emit(o, id, "dropout", &x, 1), "p", ox_short(p));
    return same_shape(o, n, id, x);
}

/* Identity: the same value under another name (PyTorch's exporter writes
 * one for each initializer it deduplicated). */
static bool identity(Ox *o, const Onnx__NodeProto *n) {
    int x = ox_input(o, n, 0);
    if (x < 0) return false;
    if (!o->vals[x].is_const) return same_shape(o, n, o->vals[x].id, x);
    if (n->n_output < 1 || !n->output[0]) return ox_fail(o, "output 0 is missing");
    int v = ox_add_value(o, n->output[0]);
    if (v < 0) return false;
    OxValue *src = &o->vals[x], *dst = &o->vals[v];
    const char *name = dst->name;
    *dst = *src;
    dst->name = name;
    dst->data = malloc(sizeof(double) * (size_t)(src->numel ? src->numel : 1));
    if (!dst->data) abort();
    memcpy(dst->data, src->data, sizeof(double) * (size_t)src->numel);
    return true;
}

bool ox_unary(Ox *o, const Onnx__NodeProto *n) {
    static const struct { const char *onnx, *graph; } map[] = {
        {"Relu", "relu"}, {"Sigmoid", "sigmoid"}, {"Tanh", "tanh"},   {"Softplus", "softplus"},
        {"Neg", "neg"},   {"Abs", "abs"},         {"Elu", "elu"},     {"LeakyRelu", "leaky_relu"}};
    if (strcmp(n->op_type, "Identity") == 0) return identity(o, n);
    int x = computed(o, n, 0);
    if (x < 0) return false;
    if (strcmp(n->op_type, "Dropout") == 0) return dropout(o, n, x);
    if (strcmp(n->op_type, "Gelu") == 0) return ox_gelu(o, n, x);
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(n->op_type, map[i].onnx)) continue;
        double alpha;
        bool leaky = strcmp(map[i].graph, "leaky_relu") == 0, elu = strcmp(map[i].graph, "elu") == 0;
        if ((leaky || elu) && !ox_attr_float(o, n, "alpha", leaky ? 0.01 : 1.0, &alpha)) return false;
        const char *id = ox_node_id(o, n);
        cJSON *node = ox_emit(o, id, map[i].graph, &x, 1);
        if (leaky || elu) cJSON_AddNumberToObject(node, "alpha", alpha);
        return same_shape(o, n, id, x);
    }
    return ox_fail(o, "not an elementwise op");
}

/* An optional scalar constant input into *out (unchanged when absent). */
static bool opt_scalar(Ox *o, const Onnx__NodeProto *n, size_t k, const char *what, double *out,
                       bool *given) {
    int v = ox_opt_input(o, n, k);
    *given = v >= 0;
    if (v == -1) return false;
    if (v >= 0 && !ox_is_scalar(&o->vals[v]))
        return ox_fail(o, "%s must be a constant scalar", what);
    if (v >= 0) *out = o->vals[v].data[0];
    return true;
}

bool ox_clip(Ox *o, const Onnx__NodeProto *n) {
    int x = computed(o, n, 0);
    double lo = 0, hi = 0;
    bool has_lo, has_hi;
    if (x < 0 || !opt_scalar(o, n, 1, "min", &lo, &has_lo) ||
        !opt_scalar(o, n, 2, "max", &hi, &has_hi))
        return false;
    if ((has_lo && !isfinite(lo)) || (has_hi && !isfinite(hi)) || (has_lo && has_hi && lo > hi))
        return ox_fail(o, "min and max must be finite, min <= max");
    const char *id = ox_node_id(o, n);
    cJSON *node = ox_emit(o, id, "clip", &x, 1);
    if (has_lo) cJSON_AddNumberToObject(node, "min", ox_short(lo));
    if (has_hi) cJSON_AddNumberToObject(node, "max", ox_short(hi));
    return same_shape(o, n, id, x);
}

/* axis normalised into [1, rank): the batch axis cannot be the one. */
static bool axis_of(Ox *o, int64_t *axis, int rank) {
    if (*axis < 0) *axis += rank;
    if (*axis < 1 || *axis >= rank)
        return ox_fail(o, "axis %lld is not a non-batch axis of a rank-%d value",
                       (long long)*axis, rank);
    return true;
}

bool ox_softmax(Ox *o, const Onnx__NodeProto *n) {
    int x = computed(o, n, 0);
    int64_t axis;
    if (x < 0 || !ox_attr_int(o, n, "axis", -1, &axis) || !axis_of(o, &axis, o->vals[x].rank))
        return false;
    const char *id = ox_node_id(o, n);
    cJSON_AddNumberToObject(ox_emit(o, id, "softmax", &x, 1), "axis", (double)axis);
    return same_shape(o, n, id, x);
}

bool ox_reduce_mean(Ox *o, const Onnx__NodeProto *n) {
    int x = computed(o, n, 0);
    int64_t axes[2 * OX_MAX_RANK], keep;
    int na = 0;
    if (x < 0 || !ox_attr_ints(o, n, "axes", axes, &na) || !ox_attr_int(o, n, "keepdims", 1, &keep))
        return false;
    int a = ox_opt_input(o, n, 1);
    if (a == -1) return false;
    if (a >= 0) {
        if (!o->vals[a].is_const || o->vals[a].numel > OX_MAX_RANK)
            return ox_fail(o, "axes must be a constant list");
        na = (int)o->vals[a].numel;
        for (int i = 0; i < na; i++) axes[i] = ox_int(o->vals[a].data[i]);
    }
    const OxValue *X = &o->vals[x];
    if (!na) return ox_fail(o, "reducing every axis (the batch too) is not supported");
    bool drop[OX_MAX_RANK] = {false};
    for (int i = 0; i < na; i++) {
        if (!axis_of(o, &axes[i], X->rank)) return false;
        if (drop[axes[i]]) return ox_fail(o, "axis %lld is listed twice", (long long)axes[i]);
        drop[axes[i]] = true;
    }
    int64_t dim[OX_MAX_RANK];
    int r = 0;
    for (int i = 0; i < X->rank; i++)
        if (!drop[i] || keep) dim[r++] = drop[i] ? 1 : X->dim[i];
    const char *id = ox_node_id(o, n);
    cJSON *node = ox_emit(o, id, "reduce_mean", &x, 1);
    cJSON_AddItemToObject(node, "axes", ox_ints_json(axes, na));
    cJSON_AddBoolToObject(node, "keepdims", keep != 0);
    return ox_define(o, n, 0, id, r, dim) >= 0;
}

/* A reshape to dim (dim[0] the batch): flatten when the result is 2-D. */
static bool emit_reshape(Ox *o, const Onnx__NodeProto *n, int x, int rank, const int64_t *dim) {
    const char *id = ox_node_id(o, n);
    cJSON *node = ox_emit(o, id, rank == 2 ? "flatten" : "reshape", &x, 1);
    if (rank != 2) cJSON_AddItemToObject(node, "shape", ox_ints_json(dim + 1, rank - 1));
    return ox_define(o, n, 0, id, rank, dim) >= 0;
}

static int64_t row_numel(const OxValue *v) {
    int64_t k = 1;
    for (int i = 1; i < v->rank; i++) k *= v->dim[i];
    return k;
}

bool ox_reshape(Ox *o, const Onnx__NodeProto *n) {
    int x = computed(o, n, 0), s = x < 0 ? -1 : ox_const_input(o, n, 1, "the shape");
    int64_t allowzero;
    if (s < 0 || !ox_attr_int(o, n, "allowzero", 0, &allowzero)) return false;
    const OxValue *X = &o->vals[x], *S = &o->vals[s];
    if (S->rank != 1 || S->numel < 1 || S->numel > OX_MAX_RANK)
        return ox_fail(o, "the shape must list 1 to %d dims", OX_MAX_RANK);
    int rank = (int)S->numel, infer = -1;
    int64_t dim[OX_MAX_RANK], known = 1, row = row_numel(X);
    for (int i = 1; i < rank; i++) {
        double d = S->data[i];
        if (d == -1 && infer < 0) infer = i, dim[i] = 1;
        else if (d == 0 && !allowzero && i < X->rank) dim[i] = X->dim[i];
        else if (d >= 1 && d <= (1 << 24) && d == floor(d)) dim[i] = (int64_t)d;
        else return ox_fail(o, "shape entry %d (%g) is not supported", i, d);
        known *= dim[i];
        if (known > row) return ox_fail(o, "the shape holds more elements than a row");
    }
    if (infer >= 0) dim[infer] = known && row % known == 0 ? row / known : 0;
    if (infer >= 0) known *= dim[infer];
    for (int i = 1; i < rank && S->batch_tag; i++)
        if (S->data[i] == 0)
            return ox_fail(o, "the shape moves the dynamic batch size off the first axis");
    double d0 = S->data[0];
    if (known != row || !(d0 == 0 || d0 == -1 || d0 == (double)X->dim[0]))
        return ox_fail(o, "the reshape moves elements across the batch axis (only the other "
                          "axes may be reshaped)");
    dim[0] = X->dim[0];
    return emit_reshape(o, n, x, rank, dim);
}

bool ox_flatten(Ox *o, const Onnx__NodeProto *n) {
    int x = computed(o, n, 0);
    int64_t axis;
    if (x < 0 || !ox_attr_int(o, n, "axis", 1, &axis)) return false;
    if (axis < 0) axis += o->vals[x].rank;
    if (axis != 1) return ox_fail(o, "only axis 1 is supported (the batch stays)");
    int64_t dim[2] = {o->vals[x].dim[0], row_numel(&o->vals[x])};
    return emit_reshape(o, n, x, 2, dim);
}

bool ox_transpose(Ox *o, const Onnx__NodeProto *n) {
    int x = computed(o, n, 0), np;
    int64_t perm[2 * OX_MAX_RANK], dim[OX_MAX_RANK];
    if (x < 0 || !ox_attr_ints(o, n, "perm", perm, &np)) return false;
    const OxValue *X = &o->vals[x];
    bool seen[OX_MAX_RANK] = {false};
    if (np != X->rank) return ox_fail(o, "perm must list the %d axes", X->rank);
    for (int i = 0; i < np; i++) {
        if (perm[i] < 0 || perm[i] >= np || seen[perm[i]])
            return ox_fail(o, "perm must list every axis once");
        seen[perm[i]] = true;
        dim[i] = X->dim[perm[i]];
    }
    if (perm[0] != 0) return ox_fail(o, "perm must keep the batch axis first");
    const char *id = ox_node_id(o, n);
    cJSON_AddItemToObject(ox_emit(o, id, "transpose", &x, 1), "perm", ox_ints_json(perm, np));
    return ox_define(o, n, 0, id, np, dim) >= 0;
}

bool ox_concat(Ox *o, const Onnx__NodeProto *n) {
    int ins[16];
    int64_t axis, dim[OX_MAX_RANK];
    if (n->n_input < 1 || n->n_input > 16) return ox_fail(o, "1 to 16 inputs are supported");
    for (size_t k = 0; k < n->n_input; k++)
        if ((ins[k] = computed(o, n, k)) < 0) return false;
    const OxValue *A = &o->vals[ins[0]];
    if (!ox_attr_int(o, n, "axis", 0, &axis) || !axis_of(o, &axis, A->rank)) return false;
    memcpy(dim, A->dim, sizeof dim);
    dim[axis] = 0;
    for (size_t k = 0; k < n->n_input; k++) {
        const OxValue *B = &o->vals[ins[k]];
        for (int i = 1; i < A->rank; i++)
            if (B->rank != A->rank || (i != axis && B->dim[i] != A->dim[i]))
                return ox_fail(o, "inputs differ off the axis");
        dim[axis] += B->dim[axis];
    }
    const char *id = ox_node_id(o, n);
    cJSON_AddNumberToObject(ox_emit(o, id, "concat", ins, (int)n->n_input), "axis", (double)axis);
    return ox_define(o, n, 0, id, A->rank, dim) >= 0;
}

bool ox_pad(Ox *o, const Onnx__NodeProto *n) {
    int x = computed(o, n, 0), p = x < 0 ? -1 : ox_const_input(o, n, 1, "pads");
    double value = 0;
    bool given;
    if (p < 0 || !opt_scalar(o, n, 2, "the constant value", &value, &given)) return false;
    if (ox_opt_input(o, n, 3) != -2) return ox_fail(o, "the axes input is not supported");
    if (strcmp(ox_attr_str(n, "mode", "constant"), "constant"))
        return ox_fail(o, "only mode 'constant' is supported");
    const OxValue *X = &o->vals[x], *P = &o->vals[p];
    if (P->numel != 2 * X->rank) return ox_fail(o, "pads must hold %d values", 2 * X->rank);
    int64_t lo[OX_MAX_RANK], hi[OX_MAX_RANK], dim[OX_MAX_RANK];
    for (int i = 0; i < X->rank; i++) {
        double a = P->data[i], b = P->data[X->rank + i];
        if (!(a >= 0 && b >= 0 && a <= (1 << 20) && b <= (1 << 20)))
            return ox_fail(o, "pads must be between 0 and 2^20 (no cropping)");
        lo[i] = (int64_t)a, hi[i] = (int64_t)b;
        dim[i] = X->dim[i] + lo[i] + hi[i];
    }
    if (lo[0] || hi[0]) return ox_fail(o, "the batch axis cannot be padded");
    if (!isfinite(value)) return ox_fail(o, "the constant value must be finite");
    bool any = false;
    for (int i = 0; i < X->rank; i++) any |= lo[i] || hi[i];
    if (!any) return same_shape(o, n, X->id, x); /* F.avg_pool2d's zero Pad */
    const char *id = ox_node_id(o, n);
    cJSON *node = ox_emit(o, id, "pad", &x, 1);
    cJSON_AddItemToObject(node, "lo", ox_ints_json(lo, X->rank));
    cJSON_AddItemToObject(node, "hi", ox_ints_json(hi, X->rank));
    if (value != 0) cJSON_AddNumberToObject(node, "value", ox_short(value));
    return ox_define(o, n, 0, id, X->rank, dim) >= 0;
}

/* Constant: value (a tensor), value_float(s) or value_int(s). */
bool ox_constant(Ox *o, const Onnx__NodeProto *n) {
    const char *out = n->n_output ? n->output[0] : NULL;
    const Onnx__AttributeProto *a = ox_attr(n, "value");
    if (a) return ox_add_tensor(o, a->t, out);
    Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
    int64_t one = 1;
    t.has_data_type = 1;
    if ((a = ox_attr(n, "value_float")) != NULL)
        t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, t.n_float_data = 1, t.float_data = (float *)&a->f;
    else if ((a = ox_attr(n, "value_int")) != NULL)
        t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64, t.n_int64_data = 1, t.int64_data = (int64_t *)&a->i;
    else if ((a = ox_attr(n, "value_floats")) != NULL)
        t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, t.n_float_data = a->n_floats,
        t.float_data = a->floats, t.n_dims = 1, t.dims = &one, one = (int64_t)a->n_floats;
    else if ((a = ox_attr(n, "value_ints")) != NULL)
        t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64, t.n_int64_data = a->n_ints,
        t.int64_data = a->ints, t.n_dims = 1, t.dims = &one, one = (int64_t)a->n_ints;
    else
        return ox_fail(o, "only value, value_float(s) and value_int(s) are supported");
    return ox_add_tensor(o, &t, out);
}
