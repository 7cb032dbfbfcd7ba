/* Shape inference: each op's rule is in its row (ops/<family>.c); this file
 * dispatches to it and holds the helpers every rule reports through. Each
 * rule checks its operands and attributes and computes the result type;
 * messages show both shapes and name the node, because a shape mismatch is
 * the error users meet most. */
#include "ir/shape.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir/op_rows.h"

bool shape_fail(Rule *r, const char *fmt, const char *a, const char *b) {
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, a, b);
    return diag_error(r->d, EXIT_BADINPUT, "node '%s' (%s): %s", r->n->name, op_name(r->n->op),
                      msg);
}

bool shape_failf(Rule *r, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return shape_fail(r, "%s%s", msg, "");
}

bool shape_fail_types(Rule *r, const char *what, const Type *a, const Type *b) {
    char sa[128], sb[128];
    char fmt[512];
    snprintf(fmt, sizeof fmt, "%s: %%s vs %%s", what);
    return shape_fail(r, fmt, type_str(a, sa, sizeof sa), b ? type_str(b, sb, sizeof sb) : "");
}

bool shape_fail_type(Rule *r, const char *what, const Type *a) {
    char sa[128], fmt[512];
    snprintf(fmt, sizeof fmt, "%s, got %%s%%s", what);
    return shape_fail(r, fmt, type_str(a, sa, sizeof sa), "");
}

int shape_ints(Rule *r, const char *key, int64_t *out) {
    return node_ints(r->n, key, out, IR_MAX_RANK);
}

bool shape_need_float(Rule *r, const Type *t) {
    return dtype_is_float(t->dtype) || shape_fail_type(r, "expects a float operand", t);
}

bool shape_key_ok(Rule *r, const Type *key) {
    Type want = type_make(DT_I32, 1, (int64_t[]){2});
    return type_equal(key, &want) || shape_fail_type(r, "the random key must be i32[2]", key);
}

bool shape_window_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t *out) {
    int64_t span = in + 2 * p - k;
    if (span < 0 || s < 1) return false;
    *out = span / s + 1;
    return true;
}

bool shape_same_operands(Rule *r, Type *out) {
    const Type *a = r->in[0], *b = r->in[1];
    if (!type_equal(a, b))
        return shape_fail_types(r, "operands differ (insert an explicit broadcast)", a, b);
    *out = *a;
    return true;
}

/* ---- elementwise ops without a rule of their own ---- */

/* The float math (exp, log, ...) and the composite activations (gelu, ...):
 * the operand's type, which must be float. */
static bool float_unary(Rule *r, Type *out) {
    *out = *r->in[0];
    return shape_need_float(r, r->in[0]);
}

/* add, sub, mul, div, max, min: two numeric operands of one type. */
static bool numeric_binary(Rule *r, Type *out) {
    if (!shape_same_operands(r, out)) return false;
    return r->in[0]->dtype != DT_BOOL || shape_fail_type(r, "expects numeric operands", r->in[0]);
}

/* The op's own rule, else the elementwise one of its arity. */
static ShapeRule rule_for(const IrOpRow *row) {
    if (row->shape) return row->shape;
    if (row->info.pattern != PK_ELEMWISE) return NULL;
    return row->info.min_inputs == 1 ? float_unary : row->info.min_inputs == 2 ? numeric_binary : NULL;
}

bool shape_infer(const Module *m, const Function *f, const Node *n, Type *out, Diag *d) {
    Rule r = {.n = n, .m = m, .f = f, .d = d};
    for (int i = 0; i < n->ninputs && i < 8; i++) r.in[i] = &f->nodes[n->inputs[i]].type;
    const IrOpRow *row = ir_op_row(n->op);
    ShapeRule rule = row ? rule_for(row) : NULL;
    if (!rule) return shape_fail(&r, "op %s has no shape rule%s", row ? row->info.name : "?", NULL);
    return rule(&r, out);
}
