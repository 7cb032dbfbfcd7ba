/* The importer's driver: unpacks the model (protobuf-c), checks its
 * opset, converts its nodes in order and assembles the graph file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import/onnx_internal.h"

typedef bool (*OpFn)(Ox *o, const Onnx__NodeProto *n);

static const struct {
    const char *op;
    OpFn fn;
} OPS[] = {
    {"Conv", ox_conv},           {"ConvTranspose", ox_conv_transpose},
    {"Gemm", ox_gemm},
    {"MatMul", ox_matmul},       {"Add", ox_binary},
    {"Sub", ox_binary},          {"Mul", ox_binary},
    {"Div", ox_binary},          {"Relu", ox_unary},
    {"LeakyRelu", ox_unary},     {"Sigmoid", ox_unary},
    {"Tanh", ox_unary},          {"Gelu", ox_unary},
    {"Softplus", ox_unary},      {"Elu", ox_unary},
    {"Neg", ox_unary},           {"Abs", ox_unary},
    {"MaxPool", ox_pool},        {"AveragePool", ox_pool},
    {"GlobalAveragePool", ox_global_pool},
    {"BatchNormalization", ox_batch_norm},
    {"Dropout", ox_unary},       {"Flatten", ox_flatten},
    {"Reshape", ox_reshape},     {"Transpose", ox_transpose},
    {"Concat", ox_concat},       {"Identity", ox_unary},
    {"Constant", ox_constant},   {"Pad", ox_pad},
    {"Clip", ox_clip},           {"Softmax", ox_softmax},
    {"ReduceMean", ox_reduce_mean}, {"Shape", ox_shape},
};
#define NOPS (sizeof OPS / sizeof OPS[0])

const char *onnx_supported_ops(void) {
    static char list[1024];
    if (!list[0]) {
        for (size_t i = 0; i < NOPS; i++) {
            if (i) strcat(list, ", ");
            strcat(list, OPS[i].op);
        }
        strcat(list, ", Erf in GELU's pattern; on constants only: ");
        strcat(list, ox_fold_ops());
    }
    return list;
}

static bool check_model(Ox *o) {
    if (!o->model->graph) return ox_fail(o, "the model has no graph");
    o->g = o->model->graph;
    if (o->g->n_node > OX_MAX_NODES) return ox_fail(o, "more than %d nodes", OX_MAX_NODES);
    for (size_t i = 0; i < o->model->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *s = o->model->opset_import[i];
        if (!s->domain || !s->domain[0] || strcmp(s->domain, "ai.onnx") == 0)
            o->opset = s->has_version ? (int)(s->version > 1000 ? 1000 : s->version) : 0;
    }
    if (o->opset < 13 || o->opset > 18)
        return ox_fail(o, "opset %d of the default domain is not supported (13 to 18; "
                          "torch.onnx.export(..., opset_version=17))", o->opset);
    return true;
}

/* The tensor type of a graph input or output, with its shape. */
static const Onnx__TensorShapeProto *shape_of(const Onnx__ValueInfoProto *v) {
    if (!v->type || v->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !v->type->tensor_type)
        return NULL;
    return v->type->tensor_type->shape;
}

/* The one graph input that is not an initializer: the network's x. */
static bool add_input(Ox *o, cJSON *inputs) {
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < o->g->n_input; i++) {
        const Onnx__ValueInfoProto *v = o->g->input[i];
        if (ox_find(o, v->name) >= 0) continue;
        if (in) return ox_fail(o, "the graph has several inputs ('%s', '%s'); one is supported",
                               in->name ? in->name : "", v->name ? v->name : "");
        in = v;
    }
    if (!in) return ox_fail(o, "the graph has no input");
    const Onnx__TensorShapeProto *s = shape_of(in);
    if (!s || s->n_dim < 2 || s->n_dim > OX_MAX_RANK ||
        in->type->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return ox_fail(o, "input '%s' must be a float tensor of rank 2 to %d with a known shape",
                       in->name ? in->name : "", OX_MAX_RANK);
    int v = ox_add_value(o, in->name);
    if (v < 0) return false;
    OxValue *x = &o->vals[v];
    x->id = "x";
    x->rank = (int)s->n_dim;
    cJSON *shape = cJSON_CreateArray();
    cJSON_AddItemToArray(shape, cJSON_CreateString("B"));
    int64_t row = 1;
    for (int i = 0; i < x->rank; i++) {
        const Onnx__TensorShapeProto__Dimension *d = s->dim[i];
        bool known = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        x->dim[i] = known ? d->dim_value : 0;
        if (i && (!known || d->dim_value < 1 || d->dim_value > (1 << 24))) {
            cJSON_Delete(shape);
            return ox_fail(o, "input '%s' needs a fixed size for axis %d (only the batch axis "
                              "may be dynamic)", in->name, i);
        }
        if (i) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)d->dim_value));
        row *= i ? x->dim[i] : 1;
    }
    if (row > (1LL << 31)) {
        cJSON_Delete(shape);
        return ox_fail(o, "input '%s' has more than 2^31 elements per row", in->name);
    }
    cJSON *xj = cJSON_CreateObject();
    cJSON_AddItemToObject(xj, "shape", shape);
    cJSON_AddStringToObject(xj, "dtype", "f32");
    cJSON *range = cJSON_CreateArray();
    cJSON_AddItemToArray(range, cJSON_CreateNumber(o->opt->range[0]));
    cJSON_AddItemToArray(range, cJSON_CreateNumber(o->opt->range[1]));
    cJSON_AddItemToObject(xj, "range", range);
    cJSON_AddItemToObject(inputs, "x", xj);
    return true;
}

static bool convert(Ox *o, int i) {
    const Onnx__NodeProto *n = o->g->node[i];
    o->cur = i;
    /* a node adds its outputs and at most a few constants: the value
     * pointers its conversion holds stay valid */
    ox_reserve_values(o, (n->n_output < 64 ? (int)n->n_output : 64) + 8);
    if (!n->op_type) return ox_fail(o, "no op_type");
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
        return ox_fail(o, "domain '%s' is not supported (only the default domain)", n->domain);
    if (o->absorbed[i] || strcmp(n->op_type, "Constant") == 0) return true;
    if (o->gelu_x[i]) {
        int x = ox_find(o, o->gelu_x[i]);
        if (x < 0 || o->vals[x].is_const) return ox_fail(o, "GELU of a constant or unknown value");
        return ox_gelu(o, n, x);
    }
    if (ox_foldable(o, n)) return ox_fold(o, n);
    for (size_t k = strcmp(n->op_type, "Reshape") == 0 ? 2 : 0; k < n->n_input; k++) {
        int v = n->input[k] ? ox_find(o, n->input[k]) : -1;
        if (v >= 0 && o->vals[v].batch_tag)
            return ox_fail(o, "input %zu holds the dynamic batch size (from Shape), which only "
                              "Reshape's shape may use", k);
    }
    for (size_t k = 0; k < NOPS; k++)
        if (strcmp(n->op_type, OPS[k].op) == 0) return OPS[k].fn(o, n);
    return ox_fail(o, "op type '%s' is not supported (supported: %s)", n->op_type,
                   onnx_supported_ops());
}

static bool add_output(Ox *o, cJSON *doc, cJSON *inputs) {
    o->cur = -1;
    if (o->g->n_output != 1) return ox_fail(o, "the graph has %zu outputs; one is supported", o->g->n_output);
    int v = ox_find(o, o->g->output[0]->name);
    if (v < 0 || o->vals[v].is_const || strcmp(o->vals[v].id, "x") == 0)
        return ox_fail(o, "the graph's output '%s' is not computed from its input",
                       o->g->output[0]->name ? o->g->output[0]->name : "");
    const OxValue *out = &o->vals[v];
    if (out->rank == 2 && out->dim[1] >= 2) {
        cJSON *y = cJSON_CreateObject(), *shape = cJSON_CreateArray();
        cJSON_AddItemToArray(shape, cJSON_CreateString("B"));
        cJSON_AddItemToObject(y, "shape", shape);
        cJSON_AddStringToObject(y, "dtype", "i32");
        cJSON_AddNumberToObject(y, "classes", (double)out->dim[1]);
        cJSON_AddItemToObject(inputs, "y", y);
    }
    cJSON *nets = cJSON_AddObjectToObject(doc, "networks");
    cJSON *net = cJSON_AddObjectToObject(nets, o->opt->net_name);
    cJSON_AddStringToObject(net, "input", "x");
    cJSON_AddItemToObject(net, "nodes", o->nodes);
    o->nodes = NULL;
    cJSON_AddStringToObject(net, "output", out->id);
    return true;
}

static bool run(Ox *o, cJSON *doc) {
    if (!check_model(o)) return false;
    size_t nn = o->g->n_node ? o->g->n_node : 1;
    o->absorbed = calloc(nn, sizeof *o->absorbed);
    o->gelu_x = calloc(nn, sizeof *o->gelu_x);
    if (!o->absorbed || !o->gelu_x) abort();
    for (size_t i = 0; i < o->g->n_initializer; i++)
        if (!ox_add_tensor(o, o->g->initializer[i], o->g->initializer[i]->name)) return false;
    if (o->g->n_sparse_initializer) return ox_fail(o, "sparse initializers are not supported");
    for (int i = 0; i < (int)o->g->n_node; i++)
        if (o->g->node[i]->op_type && strcmp(o->g->node[i]->op_type, "Constant") == 0) {
            o->cur = i;
            if (!ox_constant(o, o->g->node[i])) return false;
        }
    o->cur = -1;
    cJSON *inputs = cJSON_AddObjectToObject(doc, "inputs");
    if (!add_input(o, inputs)) return false;
    ox_find_patterns(o);
    for (int i = 0; i < (int)o->g->n_node; i++)
        if (!convert(o, i)) return false;
    o->cur = -1;
    if (!cJSON_GetArraySize(o->nodes)) return ox_fail(o, "the graph has no nodes to import");
    return add_output(o, doc, inputs);
}

static void ox_free(Ox *o) {
    for (int i = 0; i < o->nvals; i++) free(o->vals[i].data);
    free(o->vals);
    free(o->absorbed);
    free(o->gelu_x);
    cJSON_Delete(o->nodes);
    if (o->by_name) strmap_free(o->by_name);
    if (o->ids) strmap_free(o->ids);
    if (o->model) onnx__model_proto__free_unpacked(o->model, NULL);
    if (o->arena) arena_free(o->arena);
}

bool onnx_import_mem(const void *buf, size_t len, const char *label, const OnnxOptions *opt,
                     OnnxImport *out, char *err, size_t errcap) {
    memset(out, 0, sizeof *out);
    Ox o = {.label = label, .opt = opt, .cur = -1, .err = err, .errcap = errcap,
            .arena = arena_new(), .by_name = strmap_new(), .ids = strmap_new(),
            .nodes = cJSON_CreateArray()};
    strmap_put(o.ids, "x", 1);
    o.model = onnx__model_proto__unpack(NULL, len, buf);
    cJSON *doc = cJSON_CreateObject();
    bool ok = o.model ? true
                      : ox_fail(&o, "not an ONNX model: the protobuf data is malformed or "
                                    "truncated (%zu bytes)", len);
    if (ok) {
        cJSON_AddNumberToObject(doc, "igrc", 1);
        cJSON_AddStringToObject(doc, "description", "");
        ok = run(&o, doc);
    }
    if (ok) {
        cJSON_ReplaceItemInObject(doc, "description",
                                  cJSON_CreateString(arena_printf(
                                      o.arena, "Imported from %s (%s %s, opset %d) by igrc import.",
                                      label, o.model->producer_name ? o.model->producer_name : "?",
                                      o.model->producer_version ? o.model->producer_version : "",
                                      o.opset)));
        out->doc = doc;
        out->weights = o.w;
        out->nweights = o.nw;
        out->nparams = o.nparams;
        o.w = NULL;
        o.nw = 0;
    } else {
        cJSON_Delete(doc);
    }
    for (int i = 0; i < o.nw; i++) free(o.w[i].name), free(o.w[i].data);
    free(o.w);
    ox_free(&o);
    return ok;
}

bool onnx_import_file(const char *path, const OnnxOptions *opt, OnnxImport *out, char *err,
                      size_t errcap) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return snprintf(err, errcap, "%s: cannot open: %s", path, strerror(errno)), false;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            char *nb = cap > (1UL << 31) ? NULL : realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return snprintf(err, errcap, "%s: larger than 2 GiB (protobuf's limit)", path), false;
            }
            buf = nb;
        }
        size_t k = fread(buf + len, 1, cap - len, f);
        len += k;
        if (k == 0) break;
    }
    bool rd = !ferror(f);
    fclose(f);
    if (!rd) {
        free(buf);
        return snprintf(err, errcap, "%s: read error", path), false;
    }
    bool ok = onnx_import_mem(buf, len, path, opt, out, err, errcap);
    free(buf);
    return ok;
}

void onnx_import_free(OnnxImport *imp) {
    cJSON_Delete(imp->doc);
    for (int i = 0; i < imp->nweights; i++) free(imp->weights[i].name), free(imp->weights[i].data);
    free(imp->weights);
    memset(imp, 0, sizeof *imp);
}
