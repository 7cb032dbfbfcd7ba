/* Shared state of the ONNX importer's files (docs/onnx.md). */
#ifndef IGRC_IMPORT_ONNX_INTERNAL_H
#define IGRC_IMPORT_ONNX_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "import/onnx.h"
#include "import/onnx.pb-c.h"
#include "ir/ir.h"

#define OX_MAX_RANK 6
#define OX_MAX_NODES 100000
#define OX_MAX_ELEMS (1LL << 31) /* elements of one constant */

/* One ONNX value: a constant (initializer or Constant output) or a value
 * the network computes (dim[0] is then the batch). */
typedef struct {
    const char *name;
    bool is_const;
    int rank;
    int64_t dim[OX_MAX_RANK];
    int64_t numel;
    double *data;       /* a constant's elements, row-major */
    const char *id;     /* a computed value's graph node id ("x": the input) */
    bool batch_tag;     /* a constant holding the dynamic batch size (as 0, from Shape) */
} OxValue;

typedef struct {
    const char *label;
    const OnnxOptions *opt;
    Onnx__ModelProto *model;
    Onnx__GraphProto *g;
    int opset;
    Arena *arena;
    OxValue *vals;
    int nvals, capvals;
    StrMap *by_name; /* ONNX value name -> index in vals */
    StrMap *ids;     /* graph node ids in use */
    cJSON *nodes;    /* the network's node list */
    StTensor *w;     /* weights, named like the graph's parameters */
    int nw, capw;
    long long nparams;
    bool *absorbed;  /* nodes a pattern folded into a later node */
    const char **gelu_x; /* per node: the input of a GELU pattern ending here, or NULL */
    int cur;         /* the node being converted, -1 for none */
    char *err;
    size_t errcap;
    bool failed;
} Ox;

/* onnx_load.c: errors and values */
bool ox_fail(Ox *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ox_find(Ox *o, const char *name);
int ox_add_value(Ox *o, const char *name);
void ox_reserve_values(Ox *o, int extra);
const char *ox_node_label(Ox *o, int i);

/* onnx_tensor.c: constants and attributes */
bool ox_add_tensor(Ox *o, const Onnx__TensorProto *t, const char *name);
const Onnx__AttributeProto *ox_attr(const Onnx__NodeProto *n, const char *name);
bool ox_attr_int(Ox *o, const Onnx__NodeProto *n, const char *name, int64_t dflt, int64_t *out);
/* The shortest decimal that reads back as the same float (1e-05, not
 * 9.99999974737875e-06). */
double ox_short(double v);
bool ox_attr_float(Ox *o, const Onnx__NodeProto *n, const char *name, double dflt, double *out);
/* An INTS attribute of at most OX_MAX_RANK * 2 entries; *n 0 when absent. */
bool ox_attr_ints(Ox *o, const Onnx__NodeProto *n, const char *name, int64_t *out, int *cnt);
const char *ox_attr_str(const Onnx__NodeProto *n, const char *name, const char *dflt);
/* Input k of node n: a value index, or -1 (after an error) when missing. */
int ox_input(Ox *o, const Onnx__NodeProto *n, size_t k);
/* Input k when present and non-empty, else -2; -1 after an error. */
int ox_opt_input(Ox *o, const Onnx__NodeProto *n, size_t k);
/* A constant input: its value index, or -1 with an error naming what. */
int ox_const_input(Ox *o, const Onnx__NodeProto *n, size_t k, const char *what);
bool ox_is_scalar(const OxValue *v);
/* An axis or index held by a constant: v's integer part, clamped to
 * [-2^40, 2^40] (NaN: 0), so casts never overflow. */
int64_t ox_int(double v);

/* onnx_names.c: node ids and parameter names */
const char *ox_sanitize(Ox *o, const char *s);
/* The id of a node with parameters: the initializer's name without
 * ".<suffix>" when it has that form (PyTorch's "conv1.weight"), else one
 * derived from the node's name. Unique. */
const char *ox_param_id(Ox *o, const Onnx__NodeProto *n, const char *init_name,
                        const char *suffix);
const char *ox_node_id(Ox *o, const Onnx__NodeProto *n);
/* The part of an initializer's name after its last dot (or all of it). */
const char *ox_param_suffix(Ox *o, const char *init_name);

/* onnx_emit.c: graph nodes, weights, computed values */
cJSON *ox_emit(Ox *o, const char *id, const char *op, const int *ins, int nin);
int ox_define(Ox *o, const Onnx__NodeProto *n, size_t out, const char *id, int rank,
              const int64_t *dim);
bool ox_weight(Ox *o, const char *id, const char *suffix, int v, bool transpose,
               double scale, bool trainable);
cJSON *ox_ints_json(const int64_t *v, int n);

/* onnx_fold.c: nodes of constants become constants */
bool ox_foldable(Ox *o, const Onnx__NodeProto *n);
const char *ox_fold_ops(void); /* the ops folded, comma-separated */
bool ox_fold(Ox *o, const Onnx__NodeProto *n);
bool ox_shape(Ox *o, const Onnx__NodeProto *n);

/* onnx_pattern.c: GELU's erf form */
void ox_find_patterns(Ox *o);

/* onnx_ops_nn.c and onnx_ops_tensor.c: one node each */
bool ox_conv(Ox *o, const Onnx__NodeProto *n);
bool ox_conv_transpose(Ox *o, const Onnx__NodeProto *n);
bool ox_gemm(Ox *o, const Onnx__NodeProto *n);
bool ox_matmul(Ox *o, const Onnx__NodeProto *n);
bool ox_pool(Ox *o, const Onnx__NodeProto *n);
bool ox_global_pool(Ox *o, const Onnx__NodeProto *n);
bool ox_batch_norm(Ox *o, const Onnx__NodeProto *n);
bool ox_binary(Ox *o, const Onnx__NodeProto *n);
bool ox_unary(Ox *o, const Onnx__NodeProto *n);
bool ox_gelu(Ox *o, const Onnx__NodeProto *n, int x);
bool ox_reshape(Ox *o, const Onnx__NodeProto *n);
bool ox_flatten(Ox *o, const Onnx__NodeProto *n);
bool ox_transpose(Ox *o, const Onnx__NodeProto *n);
bool ox_concat(Ox *o, const Onnx__NodeProto *n);
bool ox_pad(Ox *o, const Onnx__NodeProto *n);
bool ox_clip(Ox *o, const Onnx__NodeProto *n);
bool ox_softmax(Ox *o, const Onnx__NodeProto *n);
bool ox_reduce_mean(Ox *o, const Onnx__NodeProto *n);
bool ox_constant(Ox *o, const Onnx__NodeProto *n);

#endif
