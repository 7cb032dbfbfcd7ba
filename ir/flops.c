#include "ir/flops.h"

static const Type *in_type(const Function *f, const Node *n, int i) {
    return &f->nodes[n->inputs[i]].type;
}

int64_t node_flops(const Function *f, const Node *n) {
    const Type *t = &n->type;
    switch (n->op) {
    case OP_CONV2D: {
        const Type *w = in_type(f, n, 1); /* 2 * outputs * (C * KH * KW) */
        return 2 * type_numel(t) * w->dim[1] * w->dim[2] * w->dim[3];
    }
    case OP_CONV2D_BWD_DATA:
    case OP_CONV2D_BWD_FILTER: {
        const Type *a = in_type(f, n, 0), *b = in_type(f, n, 1);
        const Type *dy = n->op == OP_CONV2D_BWD_DATA ? a : b;
        const Type *w = n->op == OP_CONV2D_BWD_DATA ? b : t;
        return 2 * type_numel(dy) * w->dim[1] * w->dim[2] * w->dim[3];
    }
    case OP_MATMUL: return 2 * type_numel(t) * in_type(f, n, 0)->dim[in_type(f, n, 0)->rank - 1];
    case OP_REDUCE_SUM:
    case OP_REDUCE_MAX:
    case OP_ARGMAX:
    case OP_MAXPOOL2D:
    case OP_AVGPOOL2D: return type_numel(in_type(f, n, 0));
    case OP_MAXPOOL2D_BWD:
    case OP_AVGPOOL2D_BWD: return type_numel(t);
    default:
        if (op_info(n->op)->pattern == PK_ELEMWISE && n->op != OP_STOP_GRADIENT &&
            n->op != OP_CAST)
            return type_numel(t);
        return 0;
    }
}

int64_t function_flops(const Function *f) {
    int64_t s = 0;
    for (int i = 0; i < f->n; i++) s += node_flops(f, &f->nodes[i]);
    return s;
}
