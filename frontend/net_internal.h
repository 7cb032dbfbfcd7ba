/* Shared by the network lowering's files (frontend/net.c: layers, lists,
 * blocks; frontend/net_tensor.c: the tensor-manipulation layers imported
 * networks need): the lowering state and the attribute readers. Not part of
 * the frontend's interface. */
#ifndef IGRC_FRONTEND_NET_INTERNAL_H
#define IGRC_FRONTEND_NET_INTERNAL_H

#include "frontend/internal.h"

typedef struct {
    NetEnv *env;
    const char *file;   /* file the network or block was defined in */
    const char *where;  /* "networks.smallcnn" or "blocks.basic_block" */
    const char *prefix; /* "" or "layer1.0." */
    const cJSON *args;  /* block arguments, NULL for a network */
    StrMap *ids;        /* local id -> value id */
    int depth;
} Net;

/* The node being lowered, for error messages. */
typedef struct {
    Net *net;
    const cJSON *js;
    const char *id;
    char jpath[512];
} Cur;

Arena *net_arena(Net *n);
Diag *net_diag(Net *n);
/* An error naming the file and the node's JSON path; returns false. */
bool net_err(Cur *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The node's attribute key (block arguments resolved), or NULL. */
const cJSON *net_attr(Cur *c, const char *key, bool required, bool *missing);
bool net_get_int(Cur *c, const char *key, bool required, int64_t dflt, int64_t lo, int64_t hi,
                 int64_t *out);
bool net_get_pair(Cur *c, const char *key, bool required, int64_t dflt, int64_t lo,
                  int64_t out[2]);
bool net_get_num(Cur *c, const char *key, double dflt, double lo, double hi, double *out);
bool net_get_bool(Cur *c, const char *key, bool dflt, bool *out);
bool net_get_str(Cur *c, const char *key, const char *dflt, const char **out);
bool net_init_spec(Cur *c, const char *key, const char *dflt, int64_t fan_in, InitSpec *out);
/* A parameter named prefix + id + "." + suffix. */
int net_param(Cur *c, const char *suffix, Type t, InitSpec init, bool trainable);
/* The IR name of a part of the node: id, or id.part. */
const char *net_vname(Cur *c, const char *part);
bool net_need_rank(Cur *c, int x, int rank, const char *what);
int net_add_bias(Cur *c, int y, int64_t channels, const char *init_key, int64_t fan_in);

/* net_tensor.c: the layer op with these inputs (add/sub/mul/div with a
 * scalar, param or broadcast, reshape, transpose, concat, pad, clip,
 * softmax, reduce_mean, conv_transpose2d); -2 when op is none of them. */
int net_tensor_layer(Cur *c, const char *op, const int *ins, int nin);

#endif
