/* Dead-code elimination: drops values no output depends on. Function
 * inputs stay: they are the entry point's signature. */
#include <stdlib.h>

#include "passes/pass.h"
#include "passes/rewrite.h"

static bool dce_function(Module *m, Function *f, Diag *d) {
    bool *live = calloc((size_t)f->n + 1, sizeof *live);
    for (int i = 0; i < f->noutputs; i++) live[f->outputs[i].value] = true;
    for (int id = f->n - 1; id >= 0; id--) {
        const Node *n = &f->nodes[id];
        if (n->op == OP_INPUT) live[id] = true;
        if (!live[id]) continue;
        for (int i = 0; i < n->ninputs; i++) live[n->inputs[i]] = true;
    }
    Rewriter rw;
    rw_begin(&rw, m, f, d);
    for (int id = 0; id < f->n; id++)
        if (live[id]) rw_copy(&rw, id);
    free(live);
    return rw_finish(&rw);
}

bool pass_dce(Module *m, PassCtx *ctx) {
    for (int i = 0; i < m->nfuncs; i++)
        if (!dce_function(m, m->funcs[i], ctx->d)) return false;
    return true;
}
