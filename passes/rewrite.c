#include "passes/rewrite.h"

#include <stdlib.h>

void rw_begin(Rewriter *rw, Module *m, Function *f, Diag *d) {
    rw->old = f;
    rw->b = (Builder){m, func_new_detached(m, f->name), d};
    rw->map = malloc(sizeof(int) * (size_t)(f->n + 1));
    for (int i = 0; i < f->n; i++) rw->map[i] = -1;
}

int rw_copy(Rewriter *rw, int id) {
    const Node *n = &rw->old->nodes[id];
    int ins[64] = {0}, *buf = n->ninputs > 64 ? malloc(sizeof(int) * (size_t)n->ninputs) : ins;
    for (int i = 0; i < n->ninputs; i++) buf[i] = rw->map[n->inputs[i]];
    int v = func_add_node(rw->b.m, rw->b.f, n->op, n->name, buf, n->ninputs, n->attrs, n->nattrs,
                          n->type);
    if (buf != ins) free(buf);
    rw->map[id] = v;
    return v;
}

static void discard(Function *f) {
    free(f->nodes);
    free(f->outputs);
    strmap_free(f->names);
    free(f);
}

bool rw_finish(Rewriter *rw) {
    Function *nf = rw->b.f;
    bool ok = !diag_failed(rw->b.d);
    for (int i = 0; ok && i < rw->old->noutputs; i++) {
        int v = rw->map[rw->old->outputs[i].value];
        if (v < 0)
            ok = diag_error(rw->b.d, EXIT_RUNTIME, "output '%s' was dropped by a rewrite",
                            rw->old->outputs[i].name);
        else
            func_add_output(rw->b.m, nf, rw->old->outputs[i].name, v);
    }
    free(rw->map);
    rw->map = NULL;
    if (!ok) {
        discard(nf);
        return false;
    }
    func_replace(rw->old, nf);
    return true;
}
