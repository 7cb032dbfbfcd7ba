/* Constants (initializers, Constant nodes) and node attributes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import/onnx_internal.h"

static bool tensor_dims(Ox *o, const Onnx__TensorProto *t, OxValue *v, const char *name) {
    if (t->n_dims > OX_MAX_RANK)
        return ox_fail(o, "constant '%s' has rank %zu (at most %d)", name, t->n_dims, OX_MAX_RANK);
    v->rank = (int)t->n_dims;
    v->numel = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || t->dims[i] > OX_MAX_ELEMS || v->numel * t->dims[i] > OX_MAX_ELEMS)
            return ox_fail(o, "constant '%s' has a negative or too large shape", name);
        v->dim[i] = t->dims[i];
        v->numel *= t->dims[i];
    }
    return true;
}

/* Element i of raw little-endian data of the given type. */
static double raw_elem(const uint8_t *p, int32_t type, int64_t i) {
    switch (type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: { float f; memcpy(&f, p + 4 * i, 4); return f; }
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: { double d; memcpy(&d, p + 8 * i, 8); return d; }
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: { int64_t k; memcpy(&k, p + 8 * i, 8); return (double)k; }
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: { int32_t k; memcpy(&k, p + 4 * i, 4); return k; }
    default: return 0;
    }
}

static size_t elem_size(int32_t type) {
    switch (type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return 8;
    default: return 0;
    }
}

/* The typed repeated field of t for its data type, as (count, reader). */
static size_t typed_count(const Onnx__TensorProto *t) {
    switch (t->data_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return t->n_float_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return t->n_double_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return t->n_int64_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return t->n_int32_data;
    default: return 0;
    }
}

static double typed_elem(const Onnx__TensorProto *t, int64_t i) {
    switch (t->data_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return t->float_data[i];
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return t->double_data[i];
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return (double)t->int64_data[i];
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return t->int32_data[i];
    default: return 0;
    }
}

/* A constant value from a tensor: FLOAT, DOUBLE, INT64 or INT32, its data
 * in raw_data or the typed field, inside the file. */
bool ox_add_tensor(Ox *o, const Onnx__TensorProto *t, const char *name) {
    if (!t) return ox_fail(o, "constant '%s' has no tensor", name ? name : "?");
    if (!name || !name[0]) return ox_fail(o, "a constant without a name");
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return ox_fail(o, "constant '%s' keeps its data in an external file (save the model "
                          "with its weights inside: onnx.save(m, f, save_as_external_data=False))",
                       name);
    size_t es = elem_size(t->data_type);
    if (!es)
        return ox_fail(o, "constant '%s' has data type %d (supported: float, double, int64, int32)",
                       name, (int)t->data_type);
    int v = ox_add_value(o, name);
    if (v < 0) return false;
    OxValue *val = &o->vals[v];
    val->is_const = true;
    if (!tensor_dims(o, t, val, name)) return false;
    bool raw = t->has_raw_data && t->raw_data.len > 0;
    if (raw ? t->raw_data.len != (size_t)val->numel * es : typed_count(t) != (size_t)val->numel)
        return ox_fail(o, "constant '%s' holds %zu %s for %lld elements", name,
                       raw ? t->raw_data.len : typed_count(t), raw ? "bytes" : "values",
                       (long long)val->numel);
    val->data = malloc(sizeof(double) * (size_t)(val->numel ? val->numel : 1));
    if (!val->data) return ox_fail(o, "constant '%s': out of memory", name);
    for (int64_t i = 0; i < val->numel; i++)
        val->data[i] = raw ? raw_elem(t->raw_data.data, t->data_type, i) : typed_elem(t, i);
    return true;
}

const Onnx__AttributeProto *ox_attr(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i] && n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

bool ox_attr_int(Ox *o, const Onnx__NodeProto *n, const char *name, int64_t dflt, int64_t *out) {
    const Onnx__AttributeProto *a = ox_attr(n, name);
    *out = dflt;
    if (!a) return true;
    if (!a->has_i || (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT))
        return ox_fail(o, "attribute '%s' must be an integer", name);
    *out = a->i;
    return true;
}

double ox_short(double v) {
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if ((float)strtod(buf, NULL) == (float)v) return strtod(buf, NULL);
    }
    return v;
}

bool ox_attr_float(Ox *o, const Onnx__NodeProto *n, const char *name, double dflt, double *out) {
    const Onnx__AttributeProto *a = ox_attr(n, name);
    *out = dflt;
    if (!a) return true;
    if (!a->has_f || !isfinite(a->f))
        return ox_fail(o, "attribute '%s' must be a finite number", name);
    *out = ox_short(a->f);
    return true;
}

bool ox_attr_ints(Ox *o, const Onnx__NodeProto *n, const char *name, int64_t *out, int *cnt) {
    const Onnx__AttributeProto *a = ox_attr(n, name);
    *cnt = 0;
    if (!a) return true;
    if (a->n_ints > 2 * OX_MAX_RANK)
        return ox_fail(o, "attribute '%s' has %zu entries (at most %d)", name, a->n_ints,
                       2 * OX_MAX_RANK);
    for (size_t i = 0; i < a->n_ints; i++) {
        if (a->ints[i] < -(1LL << 30) || a->ints[i] > (1LL << 30))
            return ox_fail(o, "attribute '%s' holds %lld, out of range", name,
                           (long long)a->ints[i]);
        out[i] = a->ints[i];
    }
    *cnt = (int)a->n_ints;
    return true;
}

const char *ox_attr_str(const Onnx__NodeProto *n, const char *name, const char *dflt) {
    const Onnx__AttributeProto *a = ox_attr(n, name);
    if (!a || !a->has_s || !a->s.data) return dflt;
    static char buf[64];
    size_t k = a->s.len < sizeof buf - 1 ? a->s.len : sizeof buf - 1;
    memcpy(buf, a->s.data, k);
    buf[k] = 0;
    return buf;
}

int ox_opt_input(Ox *o, const Onnx__NodeProto *n, size_t k) {
    if (k >= n->n_input || !n->input[k] || !n->input[k][0]) return -2;
    int v = ox_find(o, n->input[k]);
    if (v < 0) return ox_fail(o, "input %zu '%s' is defined by no earlier node", k, n->input[k]), -1;
    return v;
}

int ox_input(Ox *o, const Onnx__NodeProto *n, size_t k) {
    int v = ox_opt_input(o, n, k);
    if (v == -2) return ox_fail(o, "input %zu is missing", k), -1;
    return v;
}

int ox_const_input(Ox *o, const Onnx__NodeProto *n, size_t k, const char *what) {
    int v = ox_input(o, n, k);
    if (v >= 0 && !o->vals[v].is_const)
        return ox_fail(o, "%s (input %zu '%s') must be a constant", what, k, n->input[k]), -1;
    return v;
}

bool ox_is_scalar(const OxValue *v) { return v->is_const && v->numel == 1; }

int64_t ox_int(double v) {
    const double lim = 1099511627776.0; /* 2^40 */
    return v != v ? 0 : v < -lim ? -(int64_t)lim : v > lim ? (int64_t)lim : (int64_t)v;
}
