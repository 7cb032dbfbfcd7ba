/* The control family: loop, fused, grad, rank_sum (semantics: ir/ops.h). Each section
 * below is compiled into one layer's library and ends with that layer's rows
 * for these ops (docs/architecture.md, "Folders and dependency direction"). */
#if defined(IGRC_OPS_IR)

#include <string.h>

#include "ir/op_rows.h"

/* ---- shape rules; no kernels: interp_run runs loop and fused bodies
 * itself (ir/interp.c), and autodiff lowers grad ---- */

/* The k-th input of a loop body, in node order: (i, carry, captures...). */
static bool body_input_ok(Rule *r, const Function *body, int node, int k) {
    Type i32 = type_scalar(DT_I32);
    const Type *want = k == 0 ? &i32 : &r->f->nodes[r->n->inputs[k - 1]].type;
    const Type *got = &body->nodes[node].type;
    if (type_equal(got, want)) return true;
    const char *role = k == 0 ? "the trip counter" : k == 1 ? "the carry's type" : "its capture's type";
    char sg[128], sw[128];
    return shape_failf(r, "body function '%s': input %d ('%s') must be %s, %s, got %s", body->name, k,
                 body->nodes[node].name, role, type_str(want, sw, sizeof sw),
                 type_str(got, sg, sizeof sg));
}

static bool body_inputs_ok(Rule *r, const Function *body) {
    int k = 0, want = r->n->ninputs + 1;
    for (int v = 0; v < body->n; v++) {
        if (body->nodes[v].op != OP_INPUT) continue;
        if (k < want && !body_input_ok(r, body, v, k)) return false;
        k++;
    }
    if (k == want) return true;
    return shape_failf(r, "body function '%s' must have %d inputs (i, carry, %d captures), has %d",
                 body->name, want, want - 2, k);
}

static bool body_output_ok(Rule *r, const Function *body) {
    if (body->noutputs != 1)
        return shape_failf(r, "body function '%s' must have exactly one output (the new carry), has %d",
                     body->name, body->noutputs);
    const Output *o = &body->outputs[0];
    if (o->value < 0 || o->value >= body->n)
        return shape_failf(r, "body function '%s': output '%s' refers to no value", body->name, o->name);
    const Type *res = &body->nodes[o->value].type, *carry = r->in[0];
    if (type_equal(res, carry)) return true;
    char sc[128], sr[128];
    return shape_failf(r, "body function '%s': output '%s' must have the carry's type %s, got %s",
                 body->name, o->name, type_str(carry, sc, sizeof sc), type_str(res, sr, sizeof sr));
}

/* The result is the carry's type; the body (a function of the module, not
 * this one) must map (i32[] i, carry, captures...) to one new carry. */
static bool loop_rule(Rule *r, Type *out) {
    const Module *m = r->m;
    const char *name = node_str(r->n, "body");
    const Function *body = m && name ? module_find_func(m, name) : NULL;
    if (!body)
        return shape_fail(r, "no function '%s' in the module for the loop body%s", name ? name : "", "");
    if (strcmp(body->name, r->f->name) == 0)
        return shape_fail(r, "the loop body '%s' is the function containing the loop%s", name, "");
    if (!body_inputs_ok(r, body) || !body_output_ok(r, body)) return false;
    *out = *r->in[0];
    return true;
}

/* fused(x...) {body}: body's inputs have the operands' types, in order;
 * the result is its one output's type. */
static bool fused_rule(Rule *r, Type *out) {
    const Module *m = r->m;
    const char *name = node_str(r->n, "body");
    const Function *body = m && name ? module_find_func(m, name) : NULL;
    if (!body)
        return shape_fail(r, "no function '%s' in the module for the fused body%s", name ? name : "", "");
    if (strcmp(body->name, r->f->name) == 0)
        return shape_fail(r, "the fused body '%s' is the function containing it%s", name, "");
    int k = 0;
    for (int v = 0; v < body->n; v++) {
        if (body->nodes[v].op != OP_INPUT) continue;
        if (k < r->n->ninputs && !type_equal(&body->nodes[v].type, &r->f->nodes[r->n->inputs[k]].type)) {
            char sg[128], sw[128];
            return shape_failf(r, "fused body '%s': input %d ('%s') must be %s, got %s", body->name, k,
                         body->nodes[v].name,
                         type_str(&r->f->nodes[r->n->inputs[k]].type, sw, sizeof sw),
                         type_str(&body->nodes[v].type, sg, sizeof sg));
        }
        k++;
    }
    if (k != r->n->ninputs)
        return shape_failf(r, "fused body '%s' has %d inputs, the node passes %d", body->name, k,
                     r->n->ninputs);
    if (body->noutputs != 1 || body->outputs[0].value < 0 || body->outputs[0].value >= body->n)
        return shape_failf(r, "fused body '%s' must have exactly one output, has %d", body->name,
                     body->noutputs);
    *out = body->nodes[body->outputs[0].value].type;
    return true;
}

static bool grad_rule(Rule *r, Type *out) {
    const Type *y = r->in[0], *x = r->in[1];
    if (y->rank != 0 || !dtype_is_float(y->dtype))
        return shape_fail_type(r, "differentiates a float scalar", y);
    if (!dtype_is_float(x->dtype)) return shape_fail_type(r, "differentiates with respect to a float value", x);
    *out = *x;
    return true;
}

/* rank_sum(x): x summed over the ranks of a data-parallel job, the same on
 * every rank (train.sync_bn's batch statistics). A function runs on one
 * rank for the interpreter, so here it is the identity; the runtime sums
 * across ranks (a ranksum program step). */
static bool rank_sum_rule(Rule *r, Type *out) {
    if (!dtype_is_float(r->in[0]->dtype)) return shape_fail_type(r, "sums float values over ranks", r->in[0]);
    *out = *r->in[0];
    return true;
}

static bool k_rank_sum(const Node *n, const Value *in, Value *out, Diag *d) {
    (void)n, (void)d;
    int64_t numel = type_numel(&out->type);
    if (numel) memcpy(out->data, in[0].data, (size_t)numel * sizeof(double));
    return true;
}

const IrOpRow ops_control_ir[] = {
    {OP_ROW(LOOP, "loop", 1, -1, PK_OPAQUE, OC_PRIMITIVE,
            ATTRS(A_REQ_STR("body"), A_REQ_INT("trips", 0, 1 << 30))), .shape = loop_rule},
    {OP_ROW(FUSED, "fused", 0, -1, PK_OPAQUE, OC_PRIMITIVE, ATTRS(A_REQ_STR("body"))),
     .shape = fused_rule},
    {OP_ROW(GRAD, "grad", 2, 2, PK_OPAQUE, OC_HIGHER, NO_ATTRS), .shape = grad_rule},
    {OP_ROW(RANK_SUM, "rank_sum", 1, 1, PK_OPAQUE, OC_PRIMITIVE, NO_ATTRS), .shape = rank_sum_rule,
     .kernel = k_rank_sum},
    IR_ROWS_END,
};

#elif defined(IGRC_OPS_PASSES)

#include "passes/vjp_rule.h"

/* ---- VJPs (fused runs after autodiff; autodiff lowers grad itself) ---- */

/* The body runs `trips` times: its adjoint would need every carry. */
static int g_loop(VjpCtx *c, int i) {
    (void)i;
    diag_error(c->b->d, EXIT_BADINPUT,
               "node '%s' (loop) is not differentiable: wrap its result in stop_gradient",
               c->n->name);
    return -1;
}

/* Every rank's output is the sum of every rank's x, so each x's adjoint is
 * the sum over ranks of the outputs' cotangents. */
static int g_rank_sum(VjpCtx *c, int i) {
    (void)i;
    return b_unary(c->b, OP_RANK_SUM, nm(c, "rank_sum"), c->ct);
}

const PassOpRow ops_control_passes[] = {
    {OP_LOOP, .vjp = g_loop},
    {OP_RANK_SUM, .vjp = g_rank_sum},
    PASS_ROWS_END,
};

#elif defined(IGRC_OPS_CODEGEN)

#include "codegen/codegen_rows.h"

/* No rows: program_build.c turns loop, fused and rank_sum nodes into
 * program steps (a loop step, a fused group's kernel, a ranksum step)
 * itself, and grad is gone. */
const CodegenOpRow ops_control_codegen[] = {
    CODEGEN_ROWS_END,
};

#else
#error "ops/ files are compiled with IGRC_OPS_IR, IGRC_OPS_PASSES or IGRC_OPS_CODEGEN"
#endif
