/* The builder: adds nodes with their attributes checked and their result
 * type inferred, so every producer of IR (frontend, passes) gets the same
 * checks and the same error messages. Every call returns the new value id,
 * or -1 after recording an error in b->d (later calls then return -1 too,
 * so a sequence of builds needs one check at the end). */
#ifndef IGRC_BUILDER_H
#define IGRC_BUILDER_H

#include "ir/ir.h"

typedef struct {
    Module *m;
    Function *f;
    Diag *d;
} Builder;

int b_node(Builder *b, OpKind op, const char *name, const int *ins, int nin, const Attr *attrs,
           int nattrs);
/* Source ops (input, param, constant, iota, random_*) with a declared type. */
int b_source(Builder *b, OpKind op, const char *name, const int *ins, int nin,
             const Attr *attrs, int nattrs, Type t);

int b_input(Builder *b, const char *name, Type t);
int b_param(Builder *b, const char *param_name);           /* value named like the param */
int b_const(Builder *b, const char *name, double v, Type t); /* every element v */
int b_unary(Builder *b, OpKind op, const char *name, int x);
int b_binary(Builder *b, OpKind op, const char *name, int x, int y);
int b_broadcast(Builder *b, const char *name, int x, const Type *to);
int b_reshape(Builder *b, const char *name, int x, int rank, const int64_t *dims);
int b_reduce(Builder *b, OpKind op, const char *name, int x, const int64_t *axes, int naxes,
             bool keepdims);
/* Scalar or per-channel value broadcast to type `to` along `axis`:
 * x of shape [to.dim[axis]] becomes [1,..,C,..,1] then to's shape. */
int b_bcast_axis(Builder *b, const char *name, int x, const Type *to, int axis);

/* Points into the node array: valid only until the next node is added.
 * Keep a copy (Type t = *b_type(b, v)) across builder calls. */
static inline const Type *b_type(const Builder *b, int v) { return &b->f->nodes[v].type; }

#endif
