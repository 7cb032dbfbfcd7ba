/* Private to the reference interpreter (ir/interp.c) and the kernels in the
 * ops/ families' rows: the kernel signature and the checks and index
 * helpers kernels share.
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
/* "attribute 'key' does not fit operand and result". */
bool kfail_attr(const Node *n, Diag *d, const char *key);
/* Fails unless the declared result type *got has the shape *want the
 * operands give. */
bool need_result(const Node *n, const Type *want, const Type *got, Diag *d);
/* "inconsistent shapes x ..., w ..., y ..." (convolution and pooling). */
bool kfail_shapes(const Node *n, const Type *x, const Type *w, const Type *y, Diag *d);
/* A two-element attribute (stride, padding, kernel); both dflt when it is
 * absent and dflt >= 0, else it must be there. */
bool need_pair(const Node *n, const char *key, int64_t dflt, int64_t v[2], Diag *d);
/* Extent of a window op along one axis: floor((in + 2p - k) / s) + 1;
 * -1 when the window does not fit. */
int64_t window_extent(int64_t in, int64_t k, int64_t s, int64_t p);

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

#endif
