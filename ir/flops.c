#include "ir/flops.h"

static const Type *in_type(const Function *f, const Node *n, int i) {
    return &f->nodes[n->inputs[i]].type;
}

/* conv2d and its two backward ops: 2 * (dy elements) * (C * KH * KW). */
static int64_t conv_flops(const Function *f, const Node *n) {
    const Type *t = &n->type;
    if (n->op == OP_CONV2D) {
        const Type *w = in_type(f, n, 1);
        return 2 * type_numel(t) * w->dim[1] * w->dim[2] * w->dim[3];
    }
    const Type *a = in_type(f, n, 0), *b = in_type(f, n, 1);
    const Type *dy = n->op == OP_CONV2D_BWD_DATA ? a : b;
    const Type *w = n->op == OP_CONV2D_BWD_DATA ? b : t;
    return 2 * type_numel(dy) * w->dim[1] * w->dim[2] * w->dim[3];
}

static int64_t matmul_flops(const Function *f, const Node *n) {
    const Type *a = in_type(f, n, 0);
    return 2 * type_numel(&n->type) * a->dim[a->rank - 1];
}

/* One operation per element read (reductions, pooling windows' inputs). */
static int64_t per_input(const Function *f, const Node *n) { return type_numel(in_type(f, n, 0)); }

static int64_t per_output(const Function *f, const Node *n) {
    (void)f;
    return type_numel(&n->type);
}

static int64_t (*const FLOPS[OP_COUNT])(const Function *f, const Node *n) = {
    [OP_CONV2D] = conv_flops, [OP_CONV2D_BWD_DATA] = conv_flops,
    [OP_CONV2D_BWD_FILTER] = conv_flops, [OP_MATMUL] = matmul_flops,
    [OP_REDUCE_SUM] = per_input, [OP_REDUCE_MAX] = per_input, [OP_ARGMAX] = per_input,
    [OP_MAXPOOL2D] = per_input, [OP_AVGPOOL2D] = per_input,
    [OP_MAXPOOL2D_BWD] = per_output, [OP_AVGPOOL2D_BWD] = per_output,
};

/* Arithmetic ops counted, one per elementwise result; views, casts and
 * data movement count 0. */
int64_t node_flops(const Function *f, const Node *n) {
    if (FLOPS[n->op]) return FLOPS[n->op](f, n);
    if (op_info(n->op)->pattern == PK_ELEMWISE && n->op != OP_STOP_GRADIENT && n->op != OP_CAST)
        return type_numel(&n->type);
    return 0;
}

int64_t function_flops(const Function *f) {
    int64_t s = 0;
    for (int i = 0; i < f->n; i++) s += node_flops(f, &f->nodes[i]);
    return s;
}
