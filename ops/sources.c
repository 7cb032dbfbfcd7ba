/* The sources family: input, param, constant, iota, random_uniform,
 * random_normal, random_bernoulli (semantics: ir/ops.h). Each section below is
 * compiled into one layer's library and ends with that layer's rows for these
 * ops (docs/architecture.md, "Folders and dependency direction"). */
#if defined(IGRC_OPS_IR)

#include "base/philox.h"
#include "ir/op_rows.h"

/* ---- shape rules: the node's declared type, checked ---- */

static bool declared_type(Rule *r, Type *out) {
    *out = r->n->type;
    return true;
}

/* param {ref}: the module parameter's type. */
static bool param_shape(Rule *r, Type *out) {
    const Module *m = r->m;
    const Node *n = r->n;
    *out = n->type;
    const char *ref = node_str(n, "ref");
    int p = ref ? module_find_param(m, ref) : -1;
    if (p < 0) return shape_fail(r, "no module parameter named '%s'%s", ref ? ref : "", "");
    if (!type_equal(&m->params[p].type, &n->type))
        return shape_fail_types(r, "type differs from the module parameter", &n->type,
                                &m->params[p].type);
    return true;
}

static bool constant_shape(Rule *r, Type *out) {
    const Attr *data = node_attr(r->n, "data");
    *out = r->n->type;
    if (data && data->n != type_numel(&r->n->type))
        return shape_fail_type(r, "data length must equal the element count", &r->n->type);
    return true;
}

static bool iota_shape(Rule *r, Type *out) {
    *out = r->n->type;
    if (node_int(r->n, "axis", 0) >= r->n->type.rank)
        return shape_fail_type(r, "axis out of range", &r->n->type);
    return true;
}

static bool random_shape(Rule *r, Type *out) {
    *out = r->n->type;
    return shape_key_ok(r, r->in[0]);
}

/* ---- interpreter kernels (input and param: interp_run binds them) ---- */

/* constant {value | data}: data (row-major) wins; otherwise every element
 * is value (default 0). */
static bool k_constant(const Node *n, const Value *in, Value *out, Diag *d) {
    (void)in;
    int64_t numel = type_numel(&out->type);
    const Attr *data = node_attr(n, "data");
    if (!data) {
        double v = node_float(n, "value", 0.0);
        for (int64_t i = 0; i < numel; i++) out->data[i] = v;
        return true;
    }
    if (data->kind != ATTR_FLOATS && data->kind != ATTR_INTS)
        return kfail(n, d, EXIT_BADINPUT, "attribute 'data' must be a list of numbers");
    if (data->n != numel)
        return kfail(n, d, EXIT_BADINPUT, "'data' has %d values, the type has %lld elements",
                     data->n, (long long)numel);
    for (int64_t i = 0; i < numel; i++)
        out->data[i] = data->kind == ATTR_FLOATS ? data->floats[i] : (double)data->ints[i];
    return true;
}

/* iota {axis}: each element is its index along axis. */
static bool k_iota(const Node *n, const Value *in, Value *out, Diag *d) {
    (void)in;
    int64_t axis = node_int(n, "axis", 0), st[IR_MAX_RANK];
    if (axis < 0 || axis >= out->type.rank)
        return kfail(n, d, EXIT_BADINPUT, "axis %lld out of range for rank %d", (long long)axis,
                     out->type.rank);
    type_strides(&out->type, st);
    int64_t numel = type_numel(&out->type);
    for (int64_t i = 0; i < numel; i++)
        out->data[i] = (double)((i / st[axis]) % out->type.dim[axis]);
    return true;
}

/* random_*(key) {stream[, p]}: element i is the Philox number for counter
 * (i, stream) under key (seed, step); the i32 key words are reinterpreted
 * bit-wise as uint32, so seed -1 means 0xffffffff. */
static bool k_random(const Node *n, const Value *in, Value *out, Diag *d) {
    Type key = type_make(DT_I32, 1, (int64_t[]){2});
    if (!need_shape(n, in, 0, &key, d)) return false;
    uint32_t seed = (uint32_t)(int32_t)interp_wrap_i32(in[0].data[0]);
    uint32_t step = (uint32_t)(int32_t)interp_wrap_i32(in[0].data[1]);
    uint32_t stream = (uint32_t)node_int(n, "stream", 0);
    double p = node_float(n, "p", 0.5);
    int64_t numel = type_numel(&out->type);
    for (int64_t i = 0; i < numel; i++) {
        uint64_t idx = (uint64_t)i;
        if (n->op == OP_RANDOM_NORMAL)
            out->data[i] = philox_normal(seed, step, stream, idx);
        else if (n->op == OP_RANDOM_BERNOULLI)
            out->data[i] = philox_uniform(seed, step, stream, idx) < p ? 1.0 : 0.0;
        else
            out->data[i] = philox_uniform(seed, step, stream, idx);
    }
    return true;
}

const IrOpRow ops_sources_ir[] = {
    {OP_ROW(INPUT, "input", 0, 0, PK_OPAQUE, OC_SOURCE, NO_ATTRS), .shape = declared_type},
    {OP_ROW(PARAM, "param", 0, 0, PK_OPAQUE, OC_SOURCE, ATTRS(A_REQ_STR("ref"))),
     .shape = param_shape},
    {OP_ROW(CONSTANT, "constant", 0, 0, PK_OPAQUE, OC_SOURCE,
            ATTRS(A_FLOATS("data", -INFINITY, INFINITY), A_FLOAT("value", -INFINITY, INFINITY))),
     .shape = constant_shape, .kernel = k_constant},
    {OP_ROW(IOTA, "iota", 0, 0, PK_INJECTIVE, OC_SOURCE, ATTRS(A_REQ_INT("axis", 0, 5))),
     .shape = iota_shape, .kernel = k_iota},
    {OP_ROW(RANDOM_UNIFORM, "random_uniform", 1, 1, PK_INJECTIVE, OC_SOURCE,
            ATTRS(A_REQ_INT("stream", 0, 4294967295.0))),
     .shape = random_shape, .kernel = k_random},
    {OP_ROW(RANDOM_NORMAL, "random_normal", 1, 1, PK_INJECTIVE, OC_SOURCE,
            ATTRS(A_REQ_INT("stream", 0, 4294967295.0))),
     .shape = random_shape, .kernel = k_random},
    {OP_ROW(RANDOM_BERNOULLI, "random_bernoulli", 1, 1, PK_INJECTIVE, OC_SOURCE,
            ATTRS(A_REQ_FLOAT("p", 0, 1), A_REQ_INT("stream", 0, 4294967295.0))),
     .shape = random_shape, .kernel = k_random},
    IR_ROWS_END,
};

#elif defined(IGRC_OPS_PASSES)

#include "passes/vjp_rule.h"

/* No gradient flows into a source's key. */
const PassOpRow ops_sources_passes[] = {
    {OP_INPUT, .vjp = vjp_none},
    {OP_PARAM, .vjp = vjp_none},
    {OP_CONSTANT, .vjp = vjp_none},
    {OP_IOTA, .vjp = vjp_none},
    {OP_RANDOM_UNIFORM, .vjp = vjp_none},
    {OP_RANDOM_NORMAL, .vjp = vjp_none},
    {OP_RANDOM_BERNOULLI, .vjp = vjp_none},
    PASS_ROWS_END,
};

#elif defined(IGRC_OPS_CODEGEN)

#include "codegen/lower_rule.h"

/* ---- fused-kernel values (input, param and constants with data are
 * buffers, loaded by lower.c) ---- */

static int emit_constant(Low *L, const Node *n, Coord *C) {
    (void)C;
    if (node_attr(n, "data")) return low_source_fail(L, n);
    KType t = ktype_of(n->type.dtype);
    double val = node_float(n, "value", 0);
    return t == KT_F32 || t == KT_F64 ? k_const_f(L->k, t, val) : k_const_i(L->k, t, (int64_t)val);
}

static int emit_iota(Low *L, const Node *n, Coord *C) {
    KType t = ktype_of(n->type.dtype);
    return lm_cast(L->k, t, coord_get(L, C, (int)node_int(n, "axis", 0)));
}

static int emit_random(Low *L, const Node *n, Coord *C) {
    const Type *kt = &L->f->nodes[n->inputs[0]].type;
    Coord k0 = coord_flat(kt, cidx(L, 0)), k1 = coord_flat(kt, cidx(L, 1));
    int seed = low_emit(L, n->inputs[0], &k0), step = low_emit(L, n->inputs[0], &k1);
    KRandom r = n->op == OP_RANDOM_NORMAL ? KRAND_NORMAL
                : n->op == OP_RANDOM_BERNOULLI ? KRAND_BERNOULLI : KRAND_UNIFORM;
    return lm_random(L->k, r, ktype_of(n->type.dtype), seed, step, coord_index(L, C),
                     (uint32_t)node_int(n, "stream", 0), node_float(n, "p", 0.5));
}

const CodegenOpRow ops_sources_codegen[] = {
    {OP_CONSTANT, .emit = emit_constant},
    {OP_IOTA, .emit = emit_iota},
    {OP_RANDOM_UNIFORM, .emit = emit_random},
    {OP_RANDOM_NORMAL, .emit = emit_random},
    {OP_RANDOM_BERNOULLI, .emit = emit_random},
    CODEGEN_ROWS_END,
};

#else
#error "ops/ files are compiled with IGRC_OPS_IR, IGRC_OPS_PASSES or IGRC_OPS_CODEGEN"
#endif
