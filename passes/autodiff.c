/* The autodiff pass: lowers `grad(y, x)` nodes by reverse accumulation.
 * All grad nodes of one y found together share one backward sweep. */
#include <stdlib.h>

#include "passes/autodiff.h"
#include "passes/pass.h"
#include "passes/rewrite.h"

/* Marks values on a path from some wrt to y: depends on a wrt (forward)
 * and y depends on it (backward). Only float values carry gradients, and
 * stop_gradient cuts the forward dependence. */
static bool *relevant(const Function *f, int y, const int *wrt, int n, int *lo) {
    bool *fwd = calloc((size_t)f->n + 1, 1), *bwd = calloc((size_t)f->n + 1, 1);
    *lo = y;
    for (int i = 0; i < n; i++) {
        fwd[wrt[i]] = true;
        if (wrt[i] < *lo) *lo = wrt[i];
    }
    for (int v = *lo; v <= y; v++) {
        const Node *nd = &f->nodes[v];
        if (nd->op == OP_STOP_GRADIENT || !dtype_is_float(nd->type.dtype)) continue;
        for (int k = 0; k < nd->ninputs && !fwd[v]; k++) fwd[v] = fwd[nd->inputs[k]];
    }
    bwd[y] = true;
    for (int v = y; v >= *lo; v--)
        if (bwd[v] && fwd[v])
            for (int k = 0; k < f->nodes[v].ninputs; k++) bwd[f->nodes[v].inputs[k]] = true;
    for (int v = 0; v <= y; v++) fwd[v] = fwd[v] && bwd[v];
    free(bwd);
    return fwd;
}

static bool accumulate(Builder *b, int *adj, int v, int contrib) {
    if (contrib < 0) return contrib == VJP_NONE;
    if (adj[v] < 0) {
        adj[v] = contrib;
        return true;
    }
    const char *name = arena_printf(b->m->arena, "d.%s", b->f->nodes[v].name);
    adj[v] = b_binary(b, OP_ADD, name, adj[v], contrib);
    return adj[v] >= 0;
}

static int seed_one(Builder *b, int y) {
    return b_const(b, arena_printf(b->m->arena, "d.%s", b->f->nodes[y].name), 1.0, *b_type(b, y));
}

bool ad_backward(Builder *b, int y, int seed, const int *wrt, int n, int *grads) {
    int lo, top = b->f->n;
    bool *need = relevant(b->f, y, wrt, n, &lo);
    int *adj = malloc(sizeof(int) * (size_t)(top + 1));
    for (int v = 0; v < top; v++) adj[v] = -1;
    bool ok = true;
    if (need[y]) adj[y] = seed >= 0 ? seed : seed_one(b, y);
    for (int v = y; ok && v >= lo; v--) {
        if (!need[v] || adj[v] < 0) continue;
        Node copy = b->f->nodes[v]; /* b may reallocate the node array */
        VjpCtx c = {b, &copy, v, adj[v]};
        for (int i = 0; ok && i < copy.ninputs; i++)
            if (need[copy.inputs[i]]) ok = accumulate(b, adj, copy.inputs[i], vjp_rule(&c, i));
    }
    for (int i = 0; ok && i < n; i++) {
        grads[i] = adj[wrt[i]];
        if (grads[i] < 0) { /* y does not depend on this wrt */
            const Type t_v = *b_type(b, wrt[i]), *t = &t_v;
            const char *name = arena_printf(b->m->arena, "d.%s.zero", b->f->nodes[wrt[i]].name);
            int z = b_const(b, name, 0.0, type_scalar(t->dtype));
            grads[i] = b_broadcast(b, name, z, t); /* the builder makes the name unique */
        }
        ok = grads[i] >= 0;
    }
    free(need);
    free(adj);
    return ok && !diag_failed(b->d);
}

/* Lowers every grad node of f. The first grad(y, .) met sweeps for all
 * grad(y, x) nodes whose x is already defined; later ones reuse it. */
static bool autodiff_function(Module *m, Function *f, Diag *d) {
    Rewriter rw;
    rw_begin(&rw, m, f, d);
    int *done_y = malloc(sizeof(int) * (size_t)(f->n + 1)), *done_x = malloc(sizeof(int) * (size_t)(f->n + 1));
    int *done_g = malloc(sizeof(int) * (size_t)(f->n + 1)), ndone = 0;
    for (int id = 0; id < f->n && !diag_failed(d); id++) {
        const Node *n = &f->nodes[id];
        if (n->op != OP_GRAD) {
            rw_copy(&rw, id);
            continue;
        }
        int y = rw.map[n->inputs[0]], x = rw.map[n->inputs[1]], hit = -1;
        for (int k = 0; k < ndone && hit < 0; k++)
            if (done_y[k] == y && done_x[k] == x) hit = done_g[k];
        if (hit < 0) {
            int wrt[256], nw = 0;
            for (int j = id; j < f->n && nw < 256; j++) {
                const Node *g = &f->nodes[j];
                int gx = g->op == OP_GRAD && rw.map[g->inputs[0]] == y ? rw.map[g->inputs[1]] : -1;
                bool seen = gx < 0;
                for (int k = 0; k < ndone && !seen; k++) seen = done_y[k] == y && done_x[k] == gx;
                for (int k = 0; k < nw && !seen; k++) seen = wrt[k] == gx;
                if (!seen) wrt[nw++] = gx;
            }
            int grads[256];
            if (!ad_backward(&rw.b, y, -1, wrt, nw, grads)) break;
            for (int k = 0; k < nw; k++) {
                done_y[ndone] = y, done_x[ndone] = wrt[k], done_g[ndone++] = grads[k];
                if (wrt[k] == x) hit = grads[k];
            }
        }
        rw.map[id] = hit;
    }
    free(done_y);
    free(done_x);
    free(done_g);
    if (diag_failed(d)) diag_prefix(d, "autodiff, function '%s'", f->name);
    return rw_finish(&rw);
}

bool pass_autodiff(Module *m, PassCtx *ctx) {
    for (int i = 0; i < m->nfuncs; i++)
        if (!autodiff_function(m, m->funcs[i], ctx->d)) return false;
    return true;
}
