/* VJP rules: for node n with output cotangent ct, the cotangent of operand
 * i, written with IR ops only (so autodiff applies to its own output).
 * Each op's rule is in its row (ops/<family>.c, passes/vjp_rule.h has the
 * builders they share). Each rule returns a value id, VJP_NONE when the
 * operand gets no gradient (integer or boolean operands,
 * piecewise-constant dependence), or -1 on error. */
#include "passes/pass_rows.h"
#include "passes/vjp_rule.h"

int vjp_none(VjpCtx *c, int i) {
    (void)c;
    (void)i;
    return VJP_NONE;
}

/* Every primitive but fused (which runs after autodiff) has a rule; an op
 * without one is an error, never a silent zero gradient
 * (tests/passes/test_autodiff.c checks the rows are complete). */
bool vjp_has_rule(OpKind op) { return pass_op_row(op)->vjp != NULL; }

int vjp_rule(VjpCtx *c, int i) {
    VjpRule rule = pass_op_row(c->n->op)->vjp;
    if (rule) return rule(c, i);
    diag_error(c->b->d, EXIT_BADINPUT,
               "node '%s' (%s) has no differentiable backward (run decompose before autodiff)",
               c->n->name, op_name(c->n->op));
    return -1;
}
