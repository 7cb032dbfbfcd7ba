/* Decompose: rewrites every composite op into primitives, so autodiff,
 * fusion and the backends see only the primitive table. The last node of
 * each expansion keeps the composite's name, so later dumps still read
 * like the model (`fc1` stays `fc1`); intermediates get `<name>.<part>`.
 * The expansions are the composites' rows (ops/composites.c). */
#include "passes/expand_rule.h"
#include "passes/pass.h"

/* Every composite's row has its expansion (tests/passes/test_composites.c). */
static int expand(Exp *e) {
    ExpandRule rule = pass_op_row(e->n->op)->expand;
    if (rule) return rule(e);
    diag_error(e->b->d, EXIT_RUNTIME, "node '%s': no decomposition for composite op %s",
               e->n->name, op_name(e->n->op));
    return -1;
}

static bool decompose_function(Module *m, Function *f, Diag *d) {
    Rewriter rw;
    rw_begin(&rw, m, f, d);
    for (int id = 0; id < f->n && !diag_failed(d); id++) {
        const Node *n = &f->nodes[id];
        if (op_info(n->op)->cls != OC_COMPOSITE) {
            rw_copy(&rw, id);
            continue;
        }
        int in[8];
        for (int i = 0; i < n->ninputs && i < 8; i++) in[i] = rw.map[n->inputs[i]];
        Exp e = {&rw.b, n, in};
        rw.map[id] = expand(&e);
    }
    if (diag_failed(d)) diag_prefix(d, "decompose, function '%s'", f->name);
    return rw_finish(&rw);
}

bool pass_decompose(Module *m, PassCtx *ctx) {
    for (int i = 0; i < m->nfuncs; i++)
        if (!decompose_function(m, m->funcs[i], ctx->d)) return false;
    return true;
}
