/* Loop-invariant code motion: values of a loop body that depend only on
 * its captures (not on the trip index or the carry) are computed once,
 * before the loop, and passed in as new captures. TRADES' attack is the
 * case that matters: the natural logits net(x) inside every PGD step's KL
 * are the same on every trip, a third of the attack's work.
 *
 * Only bodies used by one loop node are rewritten (a shared body would
 * change for every caller). Sources (constants, params, iota) stay in the
 * body: they cost nothing there and fusion inlines them. Random ops keyed
 * by captures are invariant too: the same key gives the same numbers. */
#include <stdlib.h>
#include <string.h>

#include "passes/pass.h"
#include "passes/rewrite.h"

static int loops_using(const Module *m, const char *body) {
    int k = 0;
    for (int i = 0; i < m->nfuncs; i++)
        for (int v = 0; v < m->funcs[i]->n; v++) {
            const Node *n = &m->funcs[i]->nodes[v];
            if ((n->op == OP_LOOP || n->op == OP_FUSED) && strcmp(node_str(n, "body"), body) == 0) k++;
        }
    return k;
}

/* variant[v]: depends on the trip index or the carry (the first two inputs). */
static bool *variance(const Function *b) {
    bool *var = calloc((size_t)b->n + 1, sizeof *var);
    int k = 0;
    for (int v = 0; v < b->n; v++) {
        const Node *n = &b->nodes[v];
        if (n->op == OP_INPUT) {
            var[v] = k++ < 2;
            continue;
        }
        var[v] = n->op == OP_LOOP; /* nested loops stay where they are */
        for (int j = 0; j < n->ninputs; j++) var[v] |= var[n->inputs[j]];
    }
    return var;
}

static bool is_cheap(OpKind op) {
    return op == OP_BROADCAST || op == OP_RESHAPE || op == OP_TRANSPOSE || op == OP_SLICE ||
           op == OP_PAD || op == OP_CONCAT || op_info(op)->cls == OC_SOURCE;
}

/* What stays in the body: variant nodes, and cheap invariant ones (views,
 * constants) read by something that stays: hoisting a broadcast would
 * materialise its expansion as a capture. The boundary is then every
 * invariant computed node read by something that stays. */
static bool *boundary(const Function *b, const bool *var, int *count) {
    bool *keep = calloc((size_t)b->n + 1, sizeof *keep), *bd = calloc((size_t)b->n + 1, sizeof *bd);
    for (int k = 0; k < b->noutputs; k++) keep[b->outputs[k].value] = true;
    for (int v = b->n - 1; v >= 0; v--) {
        const Node *n = &b->nodes[v];
        keep[v] = var[v] || (keep[v] && is_cheap(n->op));
        if (!keep[v]) continue;
        for (int j = 0; j < n->ninputs; j++) {
            int u = n->inputs[j];
            if (var[u] || is_cheap(b->nodes[u].op)) keep[u] = true;
        }
    }
    *count = 0;
    for (int v = 0; v < b->n; v++) {
        if (!keep[v]) continue;
        for (int j = 0; j < b->nodes[v].ninputs; j++) {
            int u = b->nodes[v].inputs[j];
            if (!keep[u] && !bd[u]) bd[u] = true, (*count)++;
        }
    }
    free(keep);
    return bd;
}

/* Copies the invariant cone of the boundary into the outer function
 * (before the loop), returning body id -> outer id for the boundary. */
static void hoist_cone(Rewriter *rw, const Node *loop, const Function *b, const bool *var,
                       const bool *bd, int *outer) {
    bool *need = calloc((size_t)b->n + 1, sizeof *need);
    for (int v = b->n - 1; v >= 0; v--) {
        need[v] |= bd[v];
        if (!need[v]) continue;
        for (int j = 0; j < b->nodes[v].ninputs; j++) need[b->nodes[v].inputs[j]] = true;
    }
    int k = 0;
    for (int v = 0; v < b->n; v++) {
        const Node *n = &b->nodes[v];
        if (n->op == OP_INPUT) { /* captures map to the loop's operands */
            if (k >= 2) outer[v] = rw->map[loop->inputs[k - 1]];
            k++;
            continue;
        }
        if (!need[v] || var[v]) continue;
        int ins[64] = {0}, *buf = n->ninputs > 64 ? malloc(sizeof(int) * (size_t)n->ninputs) : ins;
        for (int j = 0; j < n->ninputs; j++) buf[j] = outer[n->inputs[j]];
        const char *name = arena_printf(rw->b.m->arena, "%s.%s", loop->name, n->name);
        outer[v] = func_add_node(rw->b.m, rw->b.f, n->op, name, buf, n->ninputs, n->attrs,
                                 n->nattrs, n->type);
        if (buf != ins) free(buf);
    }
    free(need);
}

/* The body again: its inputs, then one new capture per boundary value,
 * then the variant nodes (invariant ones are left for dce). */
static bool rebuild_body(Module *m, Function *b, const bool *bd, Diag *d) {
    Rewriter rw;
    rw_begin(&rw, m, b, d);
    for (int v = 0; v < b->n; v++)
        if (b->nodes[v].op == OP_INPUT) rw_copy(&rw, v);
    for (int v = 0; v < b->n; v++)
        if (bd[v])
            rw.map[v] = func_add_node(m, rw.b.f, OP_INPUT, b->nodes[v].name, NULL, 0, NULL, 0,
                                      b->nodes[v].type);
    for (int v = 0; v < b->n; v++)
        if (b->nodes[v].op != OP_INPUT && !bd[v]) rw_copy(&rw, v);
    return rw_finish(&rw);
}

/* Hoists out of loop node `id` of f; true also when nothing moved. */
static bool hoist_loop(Module *m, Function *f, int id, Diag *d, bool *changed) {
    const Node *loop = &f->nodes[id];
    Function *b = module_find_func(m, node_str(loop, "body"));
    if (!b || loops_using(m, b->name) != 1) return true;
    bool *var = variance(b);
    int nb = 0;
    bool *bd = boundary(b, var, &nb), ok = true;
    if (nb > 0) {
        Rewriter rw;
        rw_begin(&rw, m, f, d);
        for (int v = 0; v < id; v++) rw_copy(&rw, v);
        int *outer = malloc(sizeof(int) * (size_t)(b->n + 1));
        hoist_cone(&rw, loop, b, var, bd, outer);
        int nin = loop->ninputs + nb, *ins = malloc(sizeof(int) * (size_t)nin), k = 0;
        for (int j = 0; j < loop->ninputs; j++) ins[k++] = rw.map[loop->inputs[j]];
        for (int v = 0; v < b->n; v++)
            if (bd[v]) ins[k++] = outer[v];
        rw.map[id] = func_add_node(m, rw.b.f, OP_LOOP, loop->name, ins, nin, loop->attrs,
                                   loop->nattrs, loop->type);
        for (int v = id + 1; v < f->n; v++) rw_copy(&rw, v);
        free(ins);
        free(outer);
        ok = rebuild_body(m, b, bd, d) && rw_finish(&rw);
        *changed = true;
    }
    free(var);
    free(bd);
    return ok;
}

bool pass_licm(Module *m, PassCtx *ctx) {
    bool changed = false;
    int count = m->nfuncs;
    for (int i = 0; i < count; i++) {
        Function *f = m->funcs[i];
        for (int id = 0; id < f->n; id++)
            if (f->nodes[id].op == OP_LOOP && !hoist_loop(m, f, id, ctx->d, &changed)) return false;
    }
    return !changed || pass_dce(m, ctx);
}
