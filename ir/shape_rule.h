/* Private to shape inference (ir/shape.c) and the ops/ families' shape
 * rules: the rule context and the failure helpers every rule reports
 * through, so messages look alike whichever family a rule lives in. */
#ifndef IGRC_SHAPE_RULE_H
#define IGRC_SHAPE_RULE_H

#include "ir/shape.h"

typedef struct {
    const Node *n;
    const Type *in[8]; /* first operands' types (concat may have more) */
    const Module *m;
    const Function *f;
    Diag *d;
} Rule;

/* Computes n's result type into *out; false after recording the error. */
typedef bool (*ShapeRule)(Rule *r, Type *out);

/* "node 'name' (op): " then fmt with the strings a and b. */
bool shape_fail(Rule *r, const char *fmt, const char *a, const char *b);
bool shape_failf(Rule *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "<what>: <a> vs <b>" and "<what>, got <a>". */
bool shape_fail_types(Rule *r, const char *what, const Type *a, const Type *b);
bool shape_fail_type(Rule *r, const char *what, const Type *a);
/* The node's int-list attribute key (at most IR_MAX_RANK entries). */
int shape_ints(Rule *r, const char *key, int64_t *out);
bool shape_need_float(Rule *r, const Type *t);
/* A random key operand: i32[2]. */
bool shape_key_ok(Rule *r, const Type *key);
/* Output extent of a window op; false if the window does not fit. */
bool shape_window_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t *out);
/* Binary elementwise: both operands of one type, which *out becomes. */
bool shape_same_operands(Rule *r, Type *out);

#endif
