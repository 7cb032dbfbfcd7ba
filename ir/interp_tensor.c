/* Shape ops, reductions, matmul and indexing kernels.
 *
 * Each kernel checks that its operands agree with the node's declared
 * result type before indexing, so a malformed call fails with a message
 * instead of reading out of bounds.
 */
#include <math.h>
#include <string.h>

#include "ir/interp_internal.h"

static bool bad_attr(const Node *n, Diag *d, const char *key) {
    return kfail(n, d, EXIT_BADINPUT, "attribute '%s' does not fit operand and result", key);
}

static bool result_is(const Node *n, const Type *want, const Type *got, Diag *d) {
    if (type_same_shape(want, got)) return true;
    char a[128], b[128];
    return kfail(n, d, EXIT_BADINPUT, "result type %s, the operands give %s",
                 type_str(got, a, sizeof a), type_str(want, b, sizeof b));
}

/* ---- shape ops ---- */

/* broadcast {shape}: numpy rule. x's dims align with the result's rightmost
 * dims; a size-1 dim of x repeats, so it always reads index 0. */
bool k_broadcast(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *x = &in[0].type, *y = &out->type;
    int off = y->rank - x->rank;
    if (off < 0) return bad_attr(n, d, "shape");
    for (int j = 0; j < x->rank; j++)
        if (x->dim[j] != 1 && x->dim[j] != y->dim[off + j]) return bad_attr(n, d, "shape");
    int64_t st[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, i = 0;
    type_strides(x, st);
    if (type_numel(y) == 0) return true;
    do {
        int64_t src = 0;
        for (int j = 0; j < x->rank; j++) src += (x->dim[j] == 1 ? 0 : idx[off + j]) * st[j];
        out->data[i++] = in[0].data[src];
    } while (idx_next(idx, y));
    return true;
}

/* reshape {shape}: row-major order is kept, so the data is copied as is. */
bool k_reshape(const Node *n, const Value *in, Value *out, Diag *d) {
    int64_t numel = type_numel(&out->type);
    if (type_numel(&in[0].type) != numel) return bad_attr(n, d, "shape");
    if (numel) memcpy(out->data, in[0].data, (size_t)numel * sizeof(double));
    return true;
}

/* transpose {perm}: out.dim[i] = x.dim[perm[i]], so out[idx] reads x at
 * the index whose axis perm[i] equals idx[i]. */
bool k_transpose(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *x = &in[0].type, *y = &out->type;
    int64_t p[IR_MAX_RANK + 1], st[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, i = 0;
    bool seen[IR_MAX_RANK] = {false};
    if (node_ints(n, "perm", p, IR_MAX_RANK + 1) != x->rank || y->rank != x->rank)
        return bad_attr(n, d, "perm");
    for (int j = 0; j < x->rank; j++) {
        if (p[j] < 0 || p[j] >= x->rank || seen[p[j]] || y->dim[j] != x->dim[p[j]])
            return bad_attr(n, d, "perm");
        seen[p[j]] = true;
    }
    type_strides(x, st);
    if (type_numel(y) == 0) return true;
    do {
        int64_t src = 0;
        for (int j = 0; j < y->rank; j++) src += idx[j] * st[p[j]];
        out->data[i++] = in[0].data[src];
    } while (idx_next(idx, y));
    return true;
}

/* slice {start, stop, step}: per axis, out[idx] = x[start + idx * step],
 * with ceil((stop - start) / step) elements. */
bool k_slice(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *x = &in[0].type, *y = &out->type;
    int64_t a[IR_MAX_RANK + 1], b[IR_MAX_RANK + 1], s[IR_MAX_RANK + 1];
    int r = x->rank;
    if (node_ints(n, "start", a, IR_MAX_RANK + 1) != r ||
        node_ints(n, "stop", b, IR_MAX_RANK + 1) != r ||
        node_ints(n, "step", s, IR_MAX_RANK + 1) != r || y->rank != r)
        return bad_attr(n, d, "start/stop/step");
    for (int j = 0; j < r; j++)
        if (a[j] < 0 || a[j] > b[j] || b[j] > x->dim[j] || s[j] < 1 ||
            y->dim[j] != (b[j] - a[j] + s[j] - 1) / s[j])
            return bad_attr(n, d, "start/stop/step");
    int64_t st[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, i = 0;
    type_strides(x, st);
    if (type_numel(y) == 0) return true;
    do {
        int64_t src = 0;
        for (int j = 0; j < r; j++) src += (a[j] + idx[j] * s[j]) * st[j];
        out->data[i++] = in[0].data[src];
    } while (idx_next(idx, y));
    return true;
}

/* concat {axis}: for each block of leading indices, the operands' slabs
 * (dim[axis] * inner elements each) follow one another. */
bool k_concat(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *y = &out->type;
    int64_t axis = node_int(n, "axis", 0), total = 0;
    if (axis < 0 || axis >= y->rank) return bad_attr(n, d, "axis");
    for (int k = 0; k < n->ninputs; k++) {
        Type t = in[k].type; /* must equal y off the axis */
        t.dim[axis] = y->dim[axis];
        if (!type_same_shape(&t, y)) return kfail(n, d, EXIT_BADINPUT, "operand %d differs "
                                                  "from the result off the axis", k);
        total += in[k].type.dim[axis];
    }
    if (total != y->dim[axis]) return bad_attr(n, d, "axis");
    int64_t outer = 1, inner = 1;
    for (int j = 0; j < axis; j++) outer *= y->dim[j];
    for (int j = (int)axis + 1; j < y->rank; j++) inner *= y->dim[j];
    for (int64_t o = 0; o < outer; o++) {
        double *dst = out->data + o * y->dim[axis] * inner;
        for (int k = 0; k < n->ninputs; k++) {
            int64_t len = in[k].type.dim[axis] * inner;
            if (len) memcpy(dst, in[k].data + o * len, (size_t)len * sizeof(double));
            dst += len;
        }
    }
    return true;
}

/* pad {lo, hi, value=0}: x lands at offset lo on every axis; the border
 * holds value. */
bool k_pad(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *x = &in[0].type, *y = &out->type;
    int64_t lo[IR_MAX_RANK + 1], hi[IR_MAX_RANK + 1];
    if (node_ints(n, "lo", lo, IR_MAX_RANK + 1) != x->rank ||
        node_ints(n, "hi", hi, IR_MAX_RANK + 1) != x->rank || y->rank != x->rank)
        return bad_attr(n, d, "lo/hi");
    for (int j = 0; j < x->rank; j++)
        if (lo[j] < 0 || hi[j] < 0 || y->dim[j] != x->dim[j] + lo[j] + hi[j])
            return bad_attr(n, d, "lo/hi");
    double v = node_float(n, "value", 0.0);
    int64_t numel = type_numel(y), st[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, i = 0;
    for (int64_t k = 0; k < numel; k++) out->data[k] = v;
    type_strides(y, st);
    if (type_numel(x) == 0) return true;
    do {
        int64_t dst = 0;
        for (int j = 0; j < x->rank; j++) dst += (idx[j] + lo[j]) * st[j];
        out->data[dst] = in[0].data[i++];
    } while (idx_next(idx, x));
    return true;
}

/* ---- reductions ---- */

/* reduce_sum / reduce_max {axes, keepdims=0}. Each input element adds into
 * the output element at its index with the reduced axes zeroed; keepdims
 * only inserts size-1 dims, which does not move any flat index.
 * reduce_max: an empty reduction gives -inf (INT32_MIN for i32) and NaN
 * propagates (once the running max is NaN it stays NaN). Sums accumulate
 * in double in row-major order of the input. */
bool k_reduce(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *x = &in[0].type;
    int64_t axes[IR_MAX_RANK + 1];
    int k = node_ints(n, "axes", axes, IR_MAX_RANK + 1);
    bool drop[IR_MAX_RANK] = {false}, keep = node_int(n, "keepdims", 0) != 0;
    if (k > x->rank) return bad_attr(n, d, "axes");
    for (int j = 0; j < k; j++) {
        if (axes[j] < 0 || axes[j] >= x->rank || drop[axes[j]]) return bad_attr(n, d, "axes");
        drop[axes[j]] = true;
    }
    Type kept = *x, want = {.dtype = x->dtype};
    for (int j = 0; j < x->rank; j++) {
        if (drop[j]) kept.dim[j] = 1;
        if (!drop[j] || keep) want.dim[want.rank++] = kept.dim[j];
    }
    if (!result_is(n, &want, &out->type, d)) return false;
    int64_t st[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, i = 0, numel = type_numel(&out->type);
    type_strides(&kept, st);
    bool is_max = n->op == OP_REDUCE_MAX;
    double init = !is_max ? 0.0 : out->type.dtype == DT_I32 ? -2147483648.0 : -INFINITY;
    for (int64_t j = 0; j < numel; j++) out->data[j] = init;
    if (type_numel(x) == 0) return true;
    do {
        int64_t dst = 0;
        for (int j = 0; j < x->rank; j++) dst += drop[j] ? 0 : idx[j] * st[j];
        double v = in[0].data[i++], *acc = &out->data[dst];
        if (!is_max) *acc += v;
        else if (v > *acc || isnan(v)) *acc = isnan(*acc) ? *acc : v;
    } while (idx_next(idx, x));
    return true;
}

/* argmax {axis}: i32 index of the first maximum along axis. NaN counts as
 * larger than every number, so the first NaN wins (matching reduce_max,
 * which returns NaN there). An empty axis has no answer and is an error. */
bool k_argmax(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *x = &in[0].type;
    int64_t axis = node_int(n, "axis", 0);
    if (axis < 0 || axis >= x->rank) return bad_attr(n, d, "axis");
    Type want = {.dtype = DT_I32};
    int64_t outer = 1, inner = 1, len = x->dim[axis];
    for (int j = 0; j < x->rank; j++) {
        if (j != axis) want.dim[want.rank++] = x->dim[j];
        if (j < axis) outer *= x->dim[j];
        if (j > axis) inner *= x->dim[j];
    }
    if (!result_is(n, &want, &out->type, d)) return false;
    if (len == 0 && outer * inner > 0) return kfail(n, d, EXIT_BADINPUT, "argmax of an empty axis");
    for (int64_t o = 0; o < outer; o++)
        for (int64_t q = 0; q < inner; q++) {
            const double *p = in[0].data + o * len * inner + q;
            int64_t best = 0;
            for (int64_t j = 1; j < len && !isnan(p[best * inner]); j++)
                if (isnan(p[j * inner]) || p[j * inner] > p[best * inner]) best = j;
            out->data[o * inner + q] = (double)best;
        }
    return true;
}

/* ---- linear algebra ---- */

/* matmul a[..,M,K] x b[..,K,N] -> [..,M,N], leading dims equal; each dot
 * product accumulates in double in k order. */
bool k_matmul(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *a = &in[0].type, *b = &in[1].type;
    int r = a->rank;
    Type want = *a;
    if (r < 2 || b->rank != r || a->dim[r - 1] != b->dim[r - 2])
        return kfail(n, d, EXIT_BADINPUT, "operands are not [..,M,K] and [..,K,N]");
    for (int j = 0; j < r - 2; j++)
        if (a->dim[j] != b->dim[j]) return kfail(n, d, EXIT_BADINPUT, "batch dims differ");
    want.dim[r - 1] = b->dim[r - 1];
    if (!result_is(n, &want, &out->type, d)) return false;
    int64_t M = a->dim[r - 2], K = a->dim[r - 1], N = b->dim[r - 1], batch = 1;
    for (int j = 0; j < r - 2; j++) batch *= a->dim[j];
    for (int64_t t = 0; t < batch; t++) {
        const double *pa = in[0].data + t * M * K, *pb = in[1].data + t * K * N;
        double *py = out->data + t * M * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0.0;
                for (int64_t k = 0; k < K; k++) s += pa[i * K + k] * pb[k * N + j];
                py[i * N + j] = s;
            }
    }
    return true;
}

/* ---- indexing ---- */

/* one_hot(idx) {depth}: out[..., j] = (idx == j). An index outside
 * [0, depth) matches no j and gives an all-zero row (as jax.nn.one_hot),
 * so padding labels such as -1 need no special case. */
bool k_one_hot(const Node *n, const Value *in, Value *out, Diag *d) {
    int64_t depth = node_int(n, "depth", 0);
    Type want = in[0].type;
    if (want.rank >= IR_MAX_RANK || depth < 0) return bad_attr(n, d, "depth");
    want.dim[want.rank++] = depth;
    if (!result_is(n, &want, &out->type, d)) return false;
    int64_t count = type_numel(&in[0].type);
    for (int64_t i = 0; i < count; i++)
        for (int64_t j = 0; j < depth; j++) out->data[i * depth + j] = in[0].data[i] == (double)j;
    return true;
}

/* gather(x[..., C], idx[...]) = x[..., idx]. An index outside [0, C) is a
 * data error (typically a label >= the class count), reported with its
 * value and position. */
bool k_gather(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *x = &in[0].type;
    if (x->rank < 1) return kfail(n, d, EXIT_BADINPUT, "x must have rank >= 1");
    Type lead = *x;
    lead.rank = x->rank - 1;
    if (!need_shape(n, in, 1, &lead, d) || !result_is(n, &lead, &out->type, d)) return false;
    int64_t C = x->dim[x->rank - 1], count = type_numel(&lead);
    for (int64_t i = 0; i < count; i++) {
        double v = in[1].data[i];
        if (!(v >= 0 && v < (double)C) || v != floor(v))
            return kfail(n, d, EXIT_RUNTIME, "index %g at element %lld is out of range [0, %lld)",
                         v, (long long)i, (long long)C);
        out->data[i] = in[0].data[i * C + (int64_t)v];
    }
    return true;
}
