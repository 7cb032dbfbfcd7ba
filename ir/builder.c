#include "ir/builder.h"

#include <string.h>

#include "ir/shape.h"

static bool inputs_ok(Builder *b, const int *ins, int nin) {
    if (diag_failed(b->d)) return false;
    for (int i = 0; i < nin; i++)
        if (ins[i] < 0 || ins[i] >= b->f->n)
            return diag_error(b->d, EXIT_RUNTIME, "builder: operand %d is not a value", i);
    return true;
}

static int add_checked(Builder *b, OpKind op, const char *name, const int *ins, int nin,
                       const Attr *attrs, int nattrs, const Type *declared) {
    if (!inputs_ok(b, ins, nin)) return -1;
    Node probe = {.op = op, .name = name ? name : "(new)", .ninputs = nin, .inputs = (int *)ins,
                  .nattrs = nattrs, .attrs = (Attr *)attrs};
    if (declared) probe.type = *declared;
    Type t;
    const OpInfo *info = op_info(op);
    if (nin < info->min_inputs || (info->max_inputs >= 0 && nin > info->max_inputs)) {
        diag_error(b->d, EXIT_BADINPUT, "node '%s' (%s): takes %d..%d operands, has %d",
                   probe.name, info->name, info->min_inputs, info->max_inputs, nin);
        return -1;
    }
    if (!attrs_check(b->m, b->f, &probe, b->d) || !shape_infer(b->m, b->f, &probe, &t, b->d))
        return -1;
    return func_add_node(b->m, b->f, op, name, ins, nin, attrs, nattrs, t);
}

int b_node(Builder *b, OpKind op, const char *name, const int *ins, int nin, const Attr *attrs,
           int nattrs) {
    return add_checked(b, op, name, ins, nin, attrs, nattrs, NULL);
}

int b_source(Builder *b, OpKind op, const char *name, const int *ins, int nin,
             const Attr *attrs, int nattrs, Type t) {
    return add_checked(b, op, name, ins, nin, attrs, nattrs, &t);
}

int b_input(Builder *b, const char *name, Type t) {
    return b_source(b, OP_INPUT, name, NULL, 0, NULL, 0, t);
}

int b_param(Builder *b, const char *param_name) {
    /* One value per parameter per function: gradients must see every use. */
    int v = func_find(b->f, param_name);
    if (v >= 0 && b->f->nodes[v].op == OP_PARAM) {
        const char *ref = node_str(&b->f->nodes[v], "ref");
        if (ref && strcmp(ref, param_name) == 0) return v;
    }
    int p = module_find_param(b->m, param_name);
    if (p < 0) {
        diag_error(b->d, EXIT_RUNTIME, "builder: no parameter '%s'", param_name);
        return -1;
    }
    Attr a = attr_str("ref", param_name);
    return b_source(b, OP_PARAM, param_name, NULL, 0, &a, 1, b->m->params[p].type);
}

int b_const(Builder *b, const char *name, double v, Type t) {
    Attr a = attr_float("value", v);
    return b_source(b, OP_CONSTANT, name, NULL, 0, &a, 1, t);
}

int b_unary(Builder *b, OpKind op, const char *name, int x) {
    return b_node(b, op, name, &x, 1, NULL, 0);
}

int b_binary(Builder *b, OpKind op, const char *name, int x, int y) {
    int ins[2] = {x, y};
    return b_node(b, op, name, ins, 2, NULL, 0);
}

int b_broadcast(Builder *b, const char *name, int x, const Type *to_ptr) {
    Type to_copy = *to_ptr, *to = &to_copy; /* to_ptr may point into the node array */
    if (!inputs_ok(b, &x, 1)) return -1;
    if (type_same_shape(b_type(b, x), to)) return x;
    Attr a = attr_ints("shape", to->dim, to->rank);
    return b_node(b, OP_BROADCAST, name, &x, 1, &a, 1);
}

int b_reshape(Builder *b, const char *name, int x, int rank, const int64_t *dims) {
    Attr a = attr_ints("shape", dims, rank);
    return b_node(b, OP_RESHAPE, name, &x, 1, &a, 1);
}

int b_reduce(Builder *b, OpKind op, const char *name, int x, const int64_t *axes, int naxes,
             bool keepdims) {
    Attr a[2] = {attr_ints("axes", axes, naxes), attr_int("keepdims", keepdims)};
    return b_node(b, op, name, &x, 1, a, 2);
}

int b_bcast_axis(Builder *b, const char *name, int x, const Type *to_ptr, int axis) {
    Type to_copy = *to_ptr, *to = &to_copy; /* to_ptr may point into the node array */
    if (!inputs_ok(b, &x, 1)) return -1;
    int64_t dims[IR_MAX_RANK];
    for (int i = 0; i < to->rank; i++) dims[i] = i == axis ? to->dim[i] : 1;
    const char *rname = name ? arena_printf(b->m->arena, "%s.r", name) : NULL;
    int r = b_reshape(b, rname, x, to->rank, dims);
    return b_broadcast(b, name, r, to);
}
