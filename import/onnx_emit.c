/* What the importer produces: graph nodes, the values they compute, and
 * weights named like the graph's parameters. */
#include <stdlib.h>
#include <string.h>

#include "import/onnx_internal.h"

cJSON *ox_ints_json(const int64_t *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

cJSON *ox_emit(Ox *o, const char *id, const char *op, const int *ins, int nin) {
    cJSON *node = cJSON_CreateObject(), *in = cJSON_CreateArray();
    cJSON_AddStringToObject(node, "id", id);
    cJSON_AddStringToObject(node, "op", op);
    for (int i = 0; i < nin; i++) cJSON_AddItemToArray(in, cJSON_CreateString(o->vals[ins[i]].id));
    cJSON_AddItemToObject(node, "inputs", in);
    cJSON_AddItemToArray(o->nodes, node);
    return node;
}

int ox_define(Ox *o, const Onnx__NodeProto *n, size_t out, const char *id, int rank,
              const int64_t *dim) {
    if (out >= n->n_output || !n->output[out] || !n->output[out][0])
        return ox_fail(o, "output %zu is missing", out), -1;
    if (rank < 1 || rank > OX_MAX_RANK)
        return ox_fail(o, "its result would have rank %d (1 to %d, the batch first)", rank,
                       OX_MAX_RANK), -1;
    int64_t row = 1;
    for (int i = 1; i < rank; i++) {
        if (dim[i] < 1 || dim[i] > (1LL << 24))
            return ox_fail(o, "its result would have a dimension of %lld", (long long)dim[i]), -1;
        if ((row *= dim[i]) > (1LL << 31))
            return ox_fail(o, "its result would have more than 2^31 elements per row"), -1;
    }
    int64_t copy[OX_MAX_RANK]; /* dim may point into o->vals */
    memcpy(copy, dim, sizeof(int64_t) * (size_t)rank);
    int v = ox_add_value(o, n->output[out]);
    if (v < 0) return -1;
    OxValue *val = &o->vals[v];
    val->id = id;
    val->rank = rank;
    memcpy(val->dim, copy, sizeof(int64_t) * (size_t)rank);
    return v;
}

/* Weight id.suffix from constant v as F32, transposed (2-D) and scaled. */
bool ox_weight(Ox *o, const char *id, const char *suffix, int v, bool transpose, double scale,
               bool trainable) {
    const OxValue *c = &o->vals[v];
    if (transpose && c->rank != 2) return ox_fail(o, "'%s' must be a matrix", c->name);
    if (o->nw == o->capw) {
        o->capw = o->capw ? 2 * o->capw : 32;
        StTensor *w = realloc(o->w, sizeof *w * (size_t)o->capw);
        if (!w) abort();
        o->w = w;
    }
    StTensor *t = &o->w[o->nw];
    memset(t, 0, sizeof *t);
    t->name = strdup(arena_printf(o->arena, "%s.%s", id, suffix));
    t->dtype = ST_F32;
    t->rank = c->rank;
    for (int i = 0; i < c->rank; i++) t->shape[i] = transpose ? c->dim[c->rank - 1 - i] : c->dim[i];
    t->nbytes = sizeof(float) * (size_t)c->numel;
    float *f = malloc(t->nbytes ? t->nbytes : 1);
    if (!t->name || !f) abort();
    int64_t rows = transpose ? c->dim[0] : 1, cols = transpose ? c->dim[1] : c->numel;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < cols; k++)
            f[transpose ? k * rows + r : k] = (float)(c->data[r * cols + k] * scale);
    t->data = f;
    o->nw++;
    if (trainable) o->nparams += c->numel;
    return true;
}
