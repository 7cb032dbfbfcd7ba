/* Constant folding: a node whose inputs are all constants (the shape
 * arithmetic PyTorch's exporter writes for F.pad, and constant operands
 * it did not fold) becomes a constant. Ops: Cast, ConstantOfShape,
 * Concat, Reshape, Transpose, Slice, Unsqueeze, Squeeze, Add, Sub, Mul,
 * Div, Neg, Gather; and Shape of any value, the batch size reading 0 (so
 * x.view(x.size(0), -1) reshapes with 0: "keep the batch axis"). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "import/onnx_internal.h"

#define FOLD_MAX_ELEMS (1LL << 24)

static const char *const FOLDABLE[] = {"Cast", "ConstantOfShape", "Concat", "Reshape",
                                       "Transpose", "Slice", "Unsqueeze", "Squeeze", "Add",
                                       "Sub", "Mul", "Div", "Neg", "Gather", NULL};

const char *ox_fold_ops(void) {
    static char list[256];
    if (!list[0])
        for (const char *const *f = FOLDABLE; *f; f++) {
            if (f != FOLDABLE) strcat(list, ", ");
            strcat(list, *f);
        }
    return list;
}

bool ox_foldable(Ox *o, const Onnx__NodeProto *n) {
    bool known = false;
    for (const char *const *f = FOLDABLE; *f; f++) known |= strcmp(n->op_type, *f) == 0;
    if (!known || n->n_input < 1) return false;
    for (size_t k = 0; k < n->n_input; k++) {
        if (!n->input[k] || !n->input[k][0]) continue;
        int v = ox_find(o, n->input[k]);
        if (v < 0 || !o->vals[v].is_const) return false;
    }
    return true;
}

/* A new constant for output 0 of n with the given shape, data zeroed. */
static OxValue *new_const(Ox *o, const Onnx__NodeProto *n, int rank, const int64_t *dim) {
    int64_t numel = 1;
    if (rank < 0 || rank > OX_MAX_RANK) return ox_fail(o, "folded constant of rank %d", rank), NULL;
    for (int i = 0; i < rank; i++) {
        if (dim[i] < 0 || dim[i] > FOLD_MAX_ELEMS || numel * dim[i] > FOLD_MAX_ELEMS)
            return ox_fail(o, "folded constant would be too large"), NULL;
        numel *= dim[i];
    }
    if (n->n_output < 1 || !n->output[0]) return ox_fail(o, "output 0 is missing"), NULL;
    int64_t copy[OX_MAX_RANK]; /* dim may point into o->vals */
    if (rank) memcpy(copy, dim, sizeof(int64_t) * (size_t)rank);
    int v = ox_add_value(o, n->output[0]);
    if (v < 0) return NULL;
    OxValue *c = &o->vals[v];
    c->is_const = true;
    c->rank = rank;
    if (rank) memcpy(c->dim, copy, sizeof(int64_t) * (size_t)rank);
    c->numel = numel;
    c->data = calloc((size_t)(numel ? numel : 1), sizeof(double));
    if (!c->data) abort();
    return c;
}

static const OxValue *in(Ox *o, const Onnx__NodeProto *n, size_t k) {
    int v = ox_opt_input(o, n, k);
    return v >= 0 ? &o->vals[v] : NULL;
}

/* Row-major strides of a shape. */
static void strides(const OxValue *v, int64_t *s) {
    int64_t k = 1;
    for (int i = v->rank - 1; i >= 0; i--) s[i] = k, k *= v->dim[i];
}

/* Element index of out's multi-index idx in a NumPy-broadcast operand. */
static int64_t bcast_index(const OxValue *a, const OxValue *out, int64_t flat) {
    int64_t sa[OX_MAX_RANK], so[OX_MAX_RANK], k = 0;
    strides(a, sa);
    strides(out, so);
    for (int i = 0; i < out->rank; i++) {
        int64_t idx = flat / so[i];
        flat %= so[i];
        int ai = i - (out->rank - a->rank);
        if (ai >= 0 && a->dim[ai] != 1) k += idx * sa[ai];
    }
    return k;
}

static bool binary(Ox *o, const Onnx__NodeProto *n, const OxValue *a, const OxValue *b) {
    int rank = a->rank > b->rank ? a->rank : b->rank;
    int64_t dim[OX_MAX_RANK];
    for (int i = 0; i < rank; i++) {
        int64_t da = i - (rank - a->rank) >= 0 ? a->dim[i - (rank - a->rank)] : 1;
        int64_t db = i - (rank - b->rank) >= 0 ? b->dim[i - (rank - b->rank)] : 1;
        if (da != db && da != 1 && db != 1) return ox_fail(o, "constant operands do not broadcast");
        dim[i] = da == 1 ? db : da;
    }
    OxValue *c = new_const(o, n, rank, dim);
    if (!c) return false;
    char op = n->op_type[0];
    for (int64_t i = 0; i < c->numel; i++) {
        double x = a->data[bcast_index(a, c, i)], y = b->data[bcast_index(b, c, i)];
        c->data[i] = op == 'A' ? x + y : op == 'S' ? x - y : op == 'M' ? x * y : x / y;
    }
    return true;
}

static bool reshape(Ox *o, const Onnx__NodeProto *n, const OxValue *x, const OxValue *s) {
    int64_t dim[OX_MAX_RANK], known = 1;
    int infer = -1;
    if (!s || s->rank != 1 || s->numel > OX_MAX_RANK) return ox_fail(o, "bad constant shape");
    for (int i = 0; i < (int)s->numel; i++) {
        double d = s->data[i];
        if (d == -1 && infer < 0) infer = i, dim[i] = 1;
        else if (d == 0 && i < x->rank) dim[i] = x->dim[i];
        else if (d >= 0 && d <= FOLD_MAX_ELEMS) dim[i] = (int64_t)d;
        else return ox_fail(o, "bad constant shape");
        known *= dim[i];
        if (known > FOLD_MAX_ELEMS) return ox_fail(o, "folded constant would be too large");
    }
    if (infer >= 0) dim[infer] = known ? x->numel / known : 0;
    OxValue *c = new_const(o, n, (int)s->numel, dim);
    if (!c) return false;
    if (c->numel != x->numel) return ox_fail(o, "reshape changes the element count");
    memcpy(c->data, x->data, sizeof(double) * (size_t)x->numel);
    return true;
}

static bool transpose(Ox *o, const Onnx__NodeProto *n, const OxValue *x) {
    int64_t perm[2 * OX_MAX_RANK], dim[OX_MAX_RANK], sx[OX_MAX_RANK], so[OX_MAX_RANK];
    int np;
    if (!ox_attr_ints(o, n, "perm", perm, &np)) return false;
    if (!np)
        for (np = 0; np < x->rank; np++) perm[np] = x->rank - 1 - np;
    bool seen[OX_MAX_RANK] = {false};
    if (np != x->rank) return ox_fail(o, "perm must list every axis once");
    for (int i = 0; i < np; i++) {
        if (perm[i] < 0 || perm[i] >= np || seen[perm[i]]) return ox_fail(o, "bad perm");
        seen[perm[i]] = true;
        dim[i] = x->dim[perm[i]];
    }
    OxValue *c = new_const(o, n, np, dim);
    if (!c) return false;
    strides(x, sx);
    strides(c, so);
    for (int64_t i = 0; i < c->numel; i++) {
        int64_t rem = i, k = 0;
        for (int d = 0; d < np; d++) k += (rem / so[d]) * sx[perm[d]], rem %= so[d];
        c->data[i] = x->data[k];
    }
    return true;
}

static bool concat(Ox *o, const Onnx__NodeProto *n) {
    const OxValue *a = in(o, n, 0);
    int64_t axis, dim[OX_MAX_RANK];
    if (!a || !ox_attr_int(o, n, "axis", 0, &axis)) return false;
    if (axis < 0) axis += a->rank;
    if (axis < 0 || axis >= a->rank) return ox_fail(o, "axis out of range");
    memcpy(dim, a->dim, sizeof dim);
    dim[axis] = 0;
    for (size_t k = 0; k < n->n_input; k++) {
        const OxValue *b = in(o, n, k);
        if (!b || b->rank != a->rank) return ox_fail(o, "constant inputs differ in rank");
        for (int i = 0; i < a->rank; i++)
            if (i != axis && b->dim[i] != a->dim[i]) return ox_fail(o, "inputs differ off the axis");
        dim[axis] += b->dim[axis];
    }
    OxValue *c = new_const(o, n, a->rank, dim);
    if (!c) return false;
    int64_t outer = 1, off = 0, inner = 1;
    for (int i = 0; i < axis; i++) outer *= dim[i];
    for (int i = (int)axis + 1; i < a->rank; i++) inner *= dim[i];
    for (size_t k = 0; k < n->n_input; k++) {
        const OxValue *b = in(o, n, k);
        int64_t chunk = b->dim[axis] * inner;
        for (int64_t r = 0; r < outer; r++)
            memcpy(c->data + r * dim[axis] * inner + off, b->data + r * chunk,
                   sizeof(double) * (size_t)chunk);
        off += chunk;
    }
    return true;
}

/* Slice along one axis at a time: starts, ends, axes, steps (ONNX's
 * clamping rules). */
static bool slice(Ox *o, const Onnx__NodeProto *n, const OxValue *x) {
    const OxValue *st = in(o, n, 1), *en = in(o, n, 2), *ax = in(o, n, 3), *sp = in(o, n, 4);
    if (!st || !en || st->numel != en->numel || st->numel > x->rank ||
        (ax && ax->numel != st->numel) || (sp && sp->numel != st->numel))
        return ox_fail(o, "bad slice parameters");
    int64_t lo[OX_MAX_RANK], step[OX_MAX_RANK], dim[OX_MAX_RANK];
    for (int i = 0; i < x->rank; i++) lo[i] = 0, step[i] = 1, dim[i] = x->dim[i];
    for (int k = 0; k < (int)st->numel; k++) {
        int64_t a = ax ? ox_int(ax->data[k]) : k, d;
        if (a < 0) a += x->rank;
        if (a < 0 || a >= x->rank) return ox_fail(o, "slice axis out of range");
        d = x->dim[a];
        double s = sp ? sp->data[k] : 1, b = st->data[k], e = en->data[k];
        if (s == 0 || !isfinite(s) || fabs(s) > FOLD_MAX_ELEMS) return ox_fail(o, "bad slice step");
        if (b < 0) b += (double)d;
        if (e < 0) e += (double)d;
        b = s > 0 ? fmin(fmax(b, 0), (double)d) : fmin(fmax(b, 0), (double)d - 1);
        e = s > 0 ? fmin(fmax(e, 0), (double)d) : fmin(fmax(e, -1), (double)d - 1);
        double cnt = s > 0 ? ceil((e - b) / s) : ceil((b - e) / -s);
        lo[a] = (int64_t)b, step[a] = (int64_t)s, dim[a] = cnt > 0 ? (int64_t)cnt : 0;
    }
    OxValue *c = new_const(o, n, x->rank, dim);
    if (!c) return false;
    int64_t sx[OX_MAX_RANK], so[OX_MAX_RANK];
    strides(x, sx);
    strides(c, so);
    for (int64_t i = 0; i < c->numel; i++) {
        int64_t rem = i, k = 0;
        for (int d = 0; d < x->rank; d++) k += (lo[d] + (rem / so[d]) * step[d]) * sx[d], rem %= so[d];
        c->data[i] = x->data[k];
    }
    return true;
}

/* Unsqueeze and Squeeze: the same data under a new shape. */
static bool squeeze(Ox *o, const Onnx__NodeProto *n, const OxValue *x, bool un) {
    const OxValue *ax = in(o, n, 1);
    bool mark[2 * OX_MAX_RANK] = {false};
    int rank = un ? x->rank + (ax ? (int)ax->numel : 0) : x->rank;
    if ((un && !ax) || rank > OX_MAX_RANK || (ax && ax->numel > OX_MAX_RANK))
        return ox_fail(o, "bad axes");
    for (int k = 0; ax && k < (int)ax->numel; k++) {
        int64_t a = ox_int(ax->data[k]);
        if (a < 0) a += rank;
        if (a < 0 || a >= rank || mark[a] || (!un && x->dim[a] != 1)) return ox_fail(o, "bad axes");
        mark[a] = true;
    }
    int64_t dim[OX_MAX_RANK];
    int r = 0;
    for (int i = 0, j = 0; i < rank; i++) {
        if (un) dim[r++] = mark[i] ? 1 : x->dim[j++];
        else if (!(ax ? mark[i] : x->dim[i] == 1)) dim[r++] = x->dim[i];
    }
    OxValue *c = new_const(o, n, r, dim);
    if (!c) return false;
    memcpy(c->data, x->data, sizeof(double) * (size_t)x->numel);
    return true;
}

static bool cast(Ox *o, const Onnx__NodeProto *n, const OxValue *x) {
    int64_t to;
    if (!ox_attr_int(o, n, "to", 1, &to)) return false;
    OxValue *c = new_const(o, n, x->rank, x->dim);
    if (!c) return false;
    for (int64_t i = 0; i < x->numel; i++) {
        double v = x->data[i];
        c->data[i] = to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? (double)(float)v
                     : to == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? v
                     : isfinite(v) ? trunc(v) : 0;
    }
    return true;
}

static bool constant_of_shape(Ox *o, const Onnx__NodeProto *n, const OxValue *s) {
    int64_t dim[OX_MAX_RANK];
    if (s->rank != 1 || s->numel > OX_MAX_RANK) return ox_fail(o, "bad shape");
    for (int i = 0; i < (int)s->numel; i++) {
        if (!(s->data[i] >= 0 && s->data[i] <= FOLD_MAX_ELEMS)) return ox_fail(o, "bad shape");
        dim[i] = (int64_t)s->data[i];
    }
    double fill = 0;
    const Onnx__AttributeProto *a = ox_attr(n, "value");
    if (a && a->t) {
        int before = o->nvals;
        if (!ox_add_tensor(o, a->t, arena_printf(o->arena, "%s:value", n->output[0]))) return false;
        if (o->vals[before].numel != 1) return ox_fail(o, "value must hold one element");
        fill = o->vals[before].data[0];
    }
    OxValue *c = new_const(o, n, (int)s->numel, dim);
    if (!c) return false;
    for (int64_t i = 0; i < c->numel; i++) c->data[i] = fill;
    return true;
}

/* Gather along axis: data[..., indices, ...]. */
static bool gather(Ox *o, const Onnx__NodeProto *n, const OxValue *x, const OxValue *ix) {
    int64_t axis, dim[OX_MAX_RANK];
    if (!ix || !ox_attr_int(o, n, "axis", 0, &axis)) return ox_fail(o, "bad gather");
    if (axis < 0) axis += x->rank;
    int rank = x->rank - 1 + ix->rank;
    if (axis < 0 || axis >= x->rank || rank > OX_MAX_RANK) return ox_fail(o, "bad gather axis");
    int r = 0;
    for (int i = 0; i < axis; i++) dim[r++] = x->dim[i];
    for (int i = 0; i < ix->rank; i++) dim[r++] = ix->dim[i];
    for (int i = (int)axis + 1; i < x->rank; i++) dim[r++] = x->dim[i];
    OxValue *c = new_const(o, n, rank, dim);
    if (!c) return false;
    int64_t outer = 1, inner = 1, d = x->dim[axis];
    for (int i = 0; i < axis; i++) outer *= x->dim[i];
    for (int i = (int)axis + 1; i < x->rank; i++) inner *= x->dim[i];
    for (int64_t k = 0; k < ix->numel; k++) {
        int64_t j = ox_int(ix->data[k]);
        if (j < 0) j += d;
        if (j < 0 || j >= d) return ox_fail(o, "gather index %lld out of range", (long long)j);
        for (int64_t a = 0; a < outer; a++)
            memcpy(c->data + (a * ix->numel + k) * inner, x->data + (a * d + j) * inner,
                   sizeof(double) * (size_t)inner);
    }
    return true;
}

bool ox_shape(Ox *o, const Onnx__NodeProto *n) {
    int v = ox_input(o, n, 0);
    int64_t start, end;
    if (v < 0 || !ox_attr_int(o, n, "start", 0, &start) ||
        !ox_attr_int(o, n, "end", o->vals[v].rank, &end))
        return false;
    const OxValue *x = &o->vals[v];
    int64_t r = x->rank, dims[OX_MAX_RANK];
    memcpy(dims, x->dim, sizeof dims); /* x may move when the result is added */
    start = start < 0 ? start + r : start, end = end < 0 ? end + r : end;
    start = start < 0 ? 0 : start > r ? r : start, end = end < 0 ? 0 : end > r ? r : end;
    int64_t len = end > start ? end - start : 0;
    OxValue *c = new_const(o, n, 1, &len);
    if (!c) return false;
    for (int64_t i = 0; i < len; i++) c->data[i] = (double)dims[start + i];
    c->batch_tag = len && start == 0 && dims[0] == 0;
    return true;
}

/* Whether an input holds the dynamic batch size (Shape's 0). */
static bool tagged(Ox *o, const Onnx__NodeProto *n) {
    for (size_t k = 0; k < n->n_input; k++) {
        const OxValue *v = in(o, n, k);
        if (v && v->batch_tag) return true;
    }
    return false;
}

/* Shape's 0 for the batch may move (Gather, Concat, ...) but not enter
 * arithmetic, where it would compute with 0. */
static bool moves_data(const char *op) {
    return strcmp(op, "Add") && strcmp(op, "Sub") && strcmp(op, "Mul") && strcmp(op, "Div") &&
           strcmp(op, "Neg") && strcmp(op, "ConstantOfShape");
}

static bool fold_one(Ox *o, const Onnx__NodeProto *n);

bool ox_fold(Ox *o, const Onnx__NodeProto *n) {
    bool tag = tagged(o, n);
    if (tag && !moves_data(n->op_type))
        return ox_fail(o, "computes with the dynamic batch size (from Shape), which is not "
                          "supported: export with a fixed batch or flatten with x.flatten(1)");
    int before = o->nvals;
    if (!fold_one(o, n)) return false;
    for (int v = before; v < o->nvals; v++) o->vals[v].batch_tag = tag;
    return true;
}

static bool fold_one(Ox *o, const Onnx__NodeProto *n) {
    const char *op = n->op_type;
    const OxValue *x = in(o, n, 0);
    if (!x || o->failed) return ox_fail(o, "input 0 is missing");
    if (n->n_output < 1 || !n->output[0] || !n->output[0][0]) return ox_fail(o, "output 0 is missing");
    if (strcmp(op, "Cast") == 0) return cast(o, n, x);
    if (strcmp(op, "ConstantOfShape") == 0) return constant_of_shape(o, n, x);
    if (strcmp(op, "Concat") == 0) return concat(o, n);
    if (strcmp(op, "Reshape") == 0) return reshape(o, n, x, in(o, n, 1));
    if (strcmp(op, "Transpose") == 0) return transpose(o, n, x);
    if (strcmp(op, "Slice") == 0) return slice(o, n, x);
    if (strcmp(op, "Unsqueeze") == 0 || strcmp(op, "Squeeze") == 0)
        return squeeze(o, n, x, op[0] == 'U');
    if (strcmp(op, "Gather") == 0) return gather(o, n, x, in(o, n, 1));
    if (strcmp(op, "Neg") == 0) {
        OxValue *c = new_const(o, n, x->rank, x->dim);
        if (!c) return false;
        for (int64_t i = 0; i < x->numel; i++) c->data[i] = -x->data[i];
        return true;
    }
    const OxValue *y = in(o, n, 1);
    if (!y || n->n_input != 2) return ox_fail(o, "needs two inputs");
    return binary(o, n, x, y);
}
