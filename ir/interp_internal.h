/* Private to the reference interpreter: the kernel signature, the families'
 * entry points, and small index helpers shared by the kernel files.
 *
 * A kernel receives out with out->type = n->type and out->data zeroed; it
 * fills the data in double precision. The dispatcher (interp.c) then stores
 * the result in its dtype (f32 rounding, i32 wrap, bool 0/1), so kernels
 * never round themselves.
 */
#ifndef IGRC_INTERP_INTERNAL_H
#define IGRC_INTERP_INTERNAL_H

#include "ir/interp.h"

typedef bool (*Kernel)(const Node *n, const Value *in, Value *out, Diag *d);

/* Records "node 'name' (op): <message>" with the given exit code. */
bool kfail(const Node *n, Diag *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Fails unless operand i has exactly type shape `want` (dtype ignored). */
bool need_shape(const Node *n, const Value *in, int i, const Type *want, Diag *d);
/* Fails unless operand i has the given rank. */
bool need_rank(const Node *n, const Value *in, int i, int rank, Diag *d);

/* The i32 storage rule: truncate toward zero, wrap modulo 2^32, NaN and
 * +-inf give 0. Kernels use it where int32 arithmetic must be exact. */
double interp_wrap_i32(double v);

/* Row-major strides of t (elements), st[rank-1] = 1. */
void type_strides(const Type *t, int64_t *st);

/* Advances a row-major multi-index over t; false once it wraps to zero. */
static inline bool idx_next(int64_t *idx, const Type *t) {
    for (int i = t->rank - 1; i >= 0; i--) {
        if (++idx[i] < t->dim[i]) return true;
        idx[i] = 0;
    }
    return false;
}

/* interp_elem.c: elementwise unary, binary, compare, select, cast. */
bool ik_unary(const Node *n, const Value *in, Value *out, Diag *d);
bool ik_binary(const Node *n, const Value *in, Value *out, Diag *d);
bool ik_select(const Node *n, const Value *in, Value *out, Diag *d);

/* interp_tensor.c: shape ops, reductions, matmul, indexing. */
bool k_broadcast(const Node *n, const Value *in, Value *out, Diag *d);
bool k_reshape(const Node *n, const Value *in, Value *out, Diag *d);
bool k_transpose(const Node *n, const Value *in, Value *out, Diag *d);
bool k_slice(const Node *n, const Value *in, Value *out, Diag *d);
bool k_concat(const Node *n, const Value *in, Value *out, Diag *d);
bool k_pad(const Node *n, const Value *in, Value *out, Diag *d);
bool k_reduce(const Node *n, const Value *in, Value *out, Diag *d);
bool k_argmax(const Node *n, const Value *in, Value *out, Diag *d);
bool k_matmul(const Node *n, const Value *in, Value *out, Diag *d);
bool k_one_hot(const Node *n, const Value *in, Value *out, Diag *d);
bool k_gather(const Node *n, const Value *in, Value *out, Diag *d);

/* interp_conv.c: convolution and pooling, forward and backward. */
bool k_conv2d(const Node *n, const Value *in, Value *out, Diag *d);
bool k_conv2d_bwd_data(const Node *n, const Value *in, Value *out, Diag *d);
bool k_conv2d_bwd_filter(const Node *n, const Value *in, Value *out, Diag *d);
bool k_maxpool2d(const Node *n, const Value *in, Value *out, Diag *d);
bool k_maxpool2d_bwd(const Node *n, const Value *in, Value *out, Diag *d);
bool k_maxpool2d_select(const Node *n, const Value *in, Value *out, Diag *d);
bool k_avgpool2d(const Node *n, const Value *in, Value *out, Diag *d);
bool k_avgpool2d_bwd(const Node *n, const Value *in, Value *out, Diag *d);

#endif
