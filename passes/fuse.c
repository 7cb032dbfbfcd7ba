/* Fusion: groups of nodes become one `fused` node whose body is a function
 * of the module, and every group becomes one kernel in codegen.
 *
 * The rule comes from the op table's pattern kinds (TVM's scheme):
 * - elementwise, broadcast and injective nodes fuse into their one consumer;
 * - a reduction absorbs the chain that produces its operand (the sum of a
 *   product is one loop, no temporary), but is itself materialised: fusing
 *   it into a consumer would recompute it for every consumer element;
 * - a conv/matmul/pool ("complex") node with one elementwise consumer of
 *   its own shape becomes that group's head: the library call writes the
 *   group's input and one epilogue kernel (bias, ReLU, ...) reads it once;
 * - views (broadcast, reshape, transpose, slice, pad, concat), iota and
 *   splat constants are cheap to recompute, so they are copied into every
 *   group that reads them instead of being materialised;
 * - a value is materialised (a group root, an arena buffer) when it is an
 *   output, is read by more than one group, is read by a complex op, a loop
 *   or a fused node, or is expanded by a broadcast (recomputing an
 *   expensive value per broadcast element would multiply its cost);
 * - a concat of more than FUSE_MAX_CONCAT operands is its own group over
 *   materialised operands, which codegen runs as one copy per operand: fused,
 *   every element would load every operand (a select chain), and its code
 *   would grow with the width (`activations` of a deep net concatenates
 *   every layer);
 * - a group stops growing at FUSE_MAX_NODES nodes: its largest elementwise
 *   operand chain is materialised instead. A kernel's code grows with its
 *   group, and LLVM's optimiser and instruction selection take superlinear
 *   time on one huge block (a 800-layer chain: 53 s of O3 uncapped); one
 *   extra buffer round trip per few hundred ops costs next to nothing.
 * A group's name is its root's, so dumps and kernels name graph nodes. */
#include <stdlib.h>
#include <string.h>

#include "passes/pass.h"
#include "passes/rewrite.h"

typedef enum { K_BUFFER, K_COMPLEX, K_CHEAP, K_NORMAL } FuseKind;

enum { FUSE_MAX_NODES = 256, FUSE_MAX_CONCAT = 8 };

static bool is_wide_concat(const Node *n) {
    return n->op == OP_CONCAT && n->ninputs > FUSE_MAX_CONCAT;
}

typedef struct {
    Module *m;
    Function *f;
    FuseKind *kind;
    int *uses;      /* effective consumers: through cheap nodes, by group */
    bool *root;     /* materialised group root */
    int *head;      /* root id -> absorbed complex node, or -1 */
    bool *absorbed; /* complex node that is some group's head */
    Diag *d;
} Fuse;

static bool is_view(OpKind op) {
    return op == OP_BROADCAST || op == OP_RESHAPE || op == OP_TRANSPOSE || op == OP_SLICE ||
           op == OP_PAD || op == OP_CONCAT;
}

/* loop, fused, rank_sum: each runs as a program step of its own, so its
 * result is a buffer and so are its operands. */
static bool is_opaque_primitive(OpKind op) {
    return op_info(op)->cls == OC_PRIMITIVE && op_info(op)->pattern == PK_OPAQUE;
}

static FuseKind kind_of(const Node *n) {
    OpKind op = n->op;
    if (op == OP_INPUT || op == OP_PARAM || is_opaque_primitive(op)) return K_BUFFER;
    if (op == OP_CONSTANT) return node_attr(n, "data") ? K_BUFFER : K_CHEAP;
    if (op == OP_IOTA) return K_CHEAP;
    if (is_wide_concat(n)) return K_NORMAL;
    if (is_view(n->op)) return K_CHEAP;
    return op_info(n->op)->pattern == PK_COMPLEX ? K_COMPLEX : K_NORMAL;
}

static bool is_reduction(OpKind op) { return op_info(op)->pattern == PK_REDUCTION; }

/* Does consumer c need operand v in a buffer of its own? */
static bool needs_buffer(const Fuse *fz, int c) {
    OpKind op = fz->f->nodes[c].op;
    return fz->kind[c] == K_COMPLEX || is_opaque_primitive(op) || is_wide_concat(&fz->f->nodes[c]);
}

/* Effective uses, counted from the last node back: a cheap consumer passes
 * on the uses of the groups that copy it. */
static void count_uses(Fuse *fz) {
    const Function *f = fz->f;
    for (int k = 0; k < f->noutputs; k++) fz->uses[f->outputs[k].value]++;
    for (int c = f->n - 1; c >= 0; c--) {
        const Node *n = &f->nodes[c];
        int through = fz->kind[c] == K_CHEAP && !fz->root[c] ? (fz->uses[c] ? fz->uses[c] : 1) : 1;
        for (int k = 0; k < n->ninputs; k++) {
            int v = n->inputs[k];
            bool seen = false; /* x + x reads x once per element */
            for (int j = 0; j < k; j++) seen |= n->inputs[j] == v;
            if (!seen) fz->uses[v] += through;
        }
    }
}

/* Decides the materialised values, last node first so a node's uses are
 * final when it is visited. */
static void pick_roots(Fuse *fz) {
    const Function *f = fz->f;
    bool *out = calloc((size_t)f->n + 1, sizeof *out);
    for (int k = 0; k < f->noutputs; k++) out[f->outputs[k].value] = true;
    for (int c = f->n - 1; c >= 0; c--) {
        const Node *n = &f->nodes[c];
        for (int k = 0; k < n->ninputs; k++) {
            int v = n->inputs[k];
            if (fz->kind[v] == K_BUFFER) continue;
            if (needs_buffer(fz, c) || (n->op == OP_BROADCAST && fz->kind[v] != K_CHEAP))
                fz->root[v] = true;
        }
        if (fz->kind[c] == K_BUFFER) continue;
        if (out[c] || fz->kind[c] == K_COMPLEX || is_reduction(n->op) || is_wide_concat(n) ||
            (fz->uses[c] > 1 && fz->kind[c] != K_CHEAP))
            fz->root[c] = true;
    }
    free(out);
}

/* Group sizes in node order (a node's operand chains are sized before it):
 * when a node would take its group past FUSE_MAX_NODES, its largest
 * elementwise operands become roots until it fits. Only K_NORMAL nodes are
 * cut: rooting one changes no use count (count_uses passes uses through
 * cheap nodes only). Runs before absorb_heads, which reads the roots. */
static void cap_groups(Fuse *fz) {
    const Function *f = fz->f;
    int *size = calloc((size_t)f->n + 1, sizeof *size);
    for (int v = 0; v < f->n; v++) {
        const Node *n = &f->nodes[v];
        if (fz->kind[v] == K_BUFFER) continue;
        int total = 1;
        for (int k = 0; k < n->ninputs; k++) {
            int u = n->inputs[k];
            bool seen = false; /* x + x is one operand chain */
            for (int j = 0; j < k; j++) seen |= n->inputs[j] == u;
            if (!seen && !fz->root[u]) total += size[u];
        }
        while (total > FUSE_MAX_NODES) {
            int cut = -1;
            for (int k = 0; k < n->ninputs; k++) {
                int u = n->inputs[k];
                if (fz->kind[u] == K_NORMAL && !fz->root[u] && size[u] > 1 &&
                    (cut < 0 || size[u] > size[cut]))
                    cut = u;
            }
            if (cut < 0) break; /* only cheap or single-node operands left */
            fz->root[cut] = true;
            total -= size[cut];
        }
        size[v] = total;
    }
    free(size);
}

/* consumer[v] = the last node reading v (a fusable node that is not a root
 * has one effective consumer, so "last" is "the"). */
static int *consumers(const Function *f) {
    int *c = malloc(sizeof(int) * (size_t)(f->n + 1));
    for (int v = 0; v < f->n; v++) c[v] = -1;
    for (int u = 0; u < f->n; u++)
        for (int k = 0; k < f->nodes[u].ninputs; k++) c[f->nodes[u].inputs[k]] = u;
    return c;
}

/* A complex node read once, by an elementwise node of its own shape whose
 * group is elementwise at that shape, becomes the head of that group. */
static void absorb_heads(Fuse *fz) {
    const Function *f = fz->f;
    int *cons = consumers(f), *croot = malloc(sizeof(int) * (size_t)(f->n + 1));
    bool *out = calloc((size_t)f->n + 1, sizeof *out);
    for (int k = 0; k < f->noutputs; k++) out[f->outputs[k].value] = true;
    for (int v = f->n - 1; v >= 0; v--) {
        int u = cons[v];
        croot[v] = fz->root[v] ? v : u < 0 || fz->kind[v] == K_BUFFER ? -1 : croot[u];
    }
    for (int c = 0; c < f->n; c++) {
        int u = cons[c];
        if (fz->kind[c] != K_COMPLEX || fz->uses[c] != 1 || out[c] || u < 0 ||
            op_info(f->nodes[u].op)->pattern != PK_ELEMWISE)
            continue;
        int r = croot[u];
        if (r < 0 || fz->head[r] >= 0 || op_info(f->nodes[r].op)->pattern != PK_ELEMWISE ||
            !type_same_shape(&f->nodes[r].type, &f->nodes[c].type) ||
            !type_same_shape(&f->nodes[u].type, &f->nodes[c].type))
            continue;
        fz->head[r] = c;
        fz->root[c] = false;
        fz->absorbed[c] = true;
    }
    free(out);
    free(croot);
    free(cons);
}

/* ---- building the bodies ---- */

typedef struct {
    Builder b;
    int *map;    /* outer id -> body id, -1 */
    int *ins;    /* outer ids of the body's inputs, in order */
    int nins;
} Body;

static bool member(const Fuse *fz, int root, int v) {
    if (v == root) return true;
    if (fz->kind[v] == K_BUFFER || fz->root[v]) return false;
    if (fz->kind[v] == K_COMPLEX) return fz->head[root] == v;
    return true;
}

/* A value of the group not copied yet, or an outside operand (which becomes
 * a body input on first use): true when v still has to be copied first. */
static bool pending_member(Fuse *fz, Body *bd, int root, int v) {
    if (bd->map[v] >= 0) return false;
    if (member(fz, root, v)) return true;
    const Node *n = &fz->f->nodes[v];
    bd->ins[bd->nins++] = v;
    bd->map[v] = func_add_node(fz->m, bd->b.f, OP_INPUT, n->name, NULL, 0, NULL, 0, n->type);
    return false;
}

/* Copies node v, whose operands are all in the body, into it. */
static void copy_node(Fuse *fz, Body *bd, int v) {
    const Node *n = &fz->f->nodes[v];
    int stack[64] = {0}, *ins = n->ninputs > 64 ? malloc(sizeof(int) * (size_t)n->ninputs) : stack;
    for (int k = 0; k < n->ninputs; k++) ins[k] = bd->map[n->inputs[k]];
    bd->map[v] = func_add_node(fz->m, bd->b.f, n->op, n->name, ins, n->ninputs, n->attrs,
                               n->nattrs, n->type);
    if (ins != stack) free(ins);
}

/* Copies member v and, first, its operands into the body, depth first in
 * operand order. An explicit stack: an elementwise chain can be as long as
 * the network is deep (tens of thousands of nodes). */
static int body_value(Fuse *fz, Body *bd, int root, int v) {
    int *node = malloc(sizeof(int) * (size_t)(fz->f->n + 1));
    int *next = malloc(sizeof(int) * (size_t)(fz->f->n + 1)); /* operand to look at */
    int depth = 0;
    node[0] = v, next[0] = 0;
    while (depth >= 0) {
        const Node *n = &fz->f->nodes[node[depth]];
        while (next[depth] < n->ninputs &&
               !pending_member(fz, bd, root, n->inputs[next[depth]]))
            next[depth]++;
        if (next[depth] < n->ninputs) { /* copy the operand first */
            int u = n->inputs[next[depth]];
            depth++;
            node[depth] = u, next[depth] = 0;
            continue;
        }
        copy_node(fz, bd, node[depth--]);
    }
    free(node);
    free(next);
    return bd->map[v];
}

/* Emits `fused` for the group of root r into the rewritten function. */
static int emit_group(Fuse *fz, Rewriter *rw, int r) {
    const Function *f = fz->f;
    const Node *n = &f->nodes[r];
    const char *bname = arena_printf(fz->m->arena, "%s.fused.%s", f->name, n->name);
    Body bd = {.b = {fz->m, module_add_func(fz->m, bname), fz->d}};
    bd.map = malloc(sizeof(int) * (size_t)(f->n + 1));
    bd.ins = malloc(sizeof(int) * (size_t)(f->n + 1));
    for (int i = 0; i < f->n; i++) bd.map[i] = -1;
    int out = body_value(fz, &bd, r, r);
    func_add_output(fz->m, bd.b.f, n->name, out);
    int *outer = malloc(sizeof(int) * (size_t)(bd.nins + 1));
    for (int k = 0; k < bd.nins; k++) outer[k] = rw->map[bd.ins[k]];
    Attr a = attr_str("body", bname);
    int id = func_add_node(fz->m, rw->b.f, OP_FUSED, n->name, outer, bd.nins, &a, 1, n->type);
    rw->map[r] = id;
    free(outer);
    free(bd.map);
    free(bd.ins);
    return id;
}

static bool fuse_function(Module *m, Function *f, Diag *d) {
    size_t n = (size_t)f->n + 1;
    Fuse fz = {m, f, malloc(n * sizeof(FuseKind)), calloc(n, sizeof(int)), calloc(n, sizeof(bool)),
               malloc(n * sizeof(int)), calloc(n, sizeof(bool)), d};
    for (int i = 0; i < f->n; i++) {
        fz.kind[i] = kind_of(&f->nodes[i]);
        fz.head[i] = -1;
    }
    /* uses depend on which cheap nodes are roots and roots on uses: two
     * rounds settle it (a cheap node becomes a root only as an output or
     * an operand of a buffer-needing consumer, which the first round finds) */
    pick_roots(&fz);
    count_uses(&fz);
    pick_roots(&fz);
    cap_groups(&fz);
    absorb_heads(&fz);
    Rewriter rw;
    rw_begin(&rw, m, f, d);
    for (int i = 0; i < f->n; i++) {
        if (fz.kind[i] == K_BUFFER || (fz.kind[i] == K_COMPLEX && fz.root[i]))
            rw_copy(&rw, i);
        else if (fz.root[i])
            emit_group(&fz, &rw, i);
    }
    free(fz.kind);
    free(fz.uses);
    free(fz.root);
    free(fz.head);
    free(fz.absorbed);
    return rw_finish(&rw);
}

static bool is_fused_body(const Module *m, const Function *f) {
    for (int i = 0; i < m->nfuncs; i++) {
        const Function *g = m->funcs[i];
        for (int k = 0; k < g->n; k++)
            if (g->nodes[k].op == OP_FUSED) {
                const char *b = node_str(&g->nodes[k], "body");
                if (b && strcmp(b, f->name) == 0) return true;
            }
    }
    return false;
}

bool pass_fuse(Module *m, PassCtx *ctx) {
    int count = m->nfuncs; /* bodies added below are not fused again */
    for (int i = 0; i < count; i++) {
        if (is_fused_body(m, m->funcs[i])) continue; /* fuse ran before (a re-run) */
        if (!fuse_function(m, m->funcs[i], ctx->d)) return false;
    }
    return true;
}
