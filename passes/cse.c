/* Common subexpression elimination. Two nodes are the same computation when
 * their op, operands (after earlier merges), attributes and type are equal;
 * attributes are sorted by key, so they compare in order, and numbers
 * compare bit for bit (0.0 and -0.0 stay apart). The first occurrence (the
 * lowest id) survives with its name; later ones are replaced by it.
 *
 * `input` nodes are never merged: they are the signature. `param` nodes
 * with the same ref merge. Random ops merge like any other node (same op,
 * key operand, stream, p and type): the generator is counter-based, so they
 * are pure functions of their operands and attributes. Loops are pure too. */
#include <stdlib.h>
#include <string.h>

#include "passes/pass.h"
#include "passes/rewrite.h"

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0x100000001b3ull;
}

static uint64_t dbits(double v) {
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static uint64_t hash_str(uint64_t h, const char *s) {
    for (; s && *s; s++) h = mix(h, (unsigned char)*s);
    return mix(h, 0xff);
}

static uint64_t hash_node(const Node *n, const int *ins) {
    uint64_t h = mix(1469598103934665603ull, (uint64_t)n->op);
    h = mix(h, (uint64_t)n->ninputs);
    for (int i = 0; i < n->ninputs; i++) h = mix(h, (uint64_t)ins[i]);
    h = mix(h, (uint64_t)n->type.dtype);
    h = mix(h, (uint64_t)n->type.rank);
    for (int i = 0; i < n->type.rank; i++) h = mix(h, (uint64_t)n->type.dim[i]);
    for (int i = 0; i < n->nattrs; i++) {
        const Attr *a = &n->attrs[i];
        h = hash_str(h, a->key);
        h = mix(h, (uint64_t)a->kind);
        switch (a->kind) {
        case ATTR_INT: case ATTR_DTYPE: h = mix(h, (uint64_t)a->i); break;
        case ATTR_FLOAT: h = mix(h, dbits(a->f)); break;
        case ATTR_INTS:
            h = mix(h, (uint64_t)a->n);
            for (int k = 0; k < a->n; k++) h = mix(h, (uint64_t)a->ints[k]);
            break;
        case ATTR_FLOATS:
            h = mix(h, (uint64_t)a->n);
            for (int k = 0; k < a->n; k++) h = mix(h, dbits(a->floats[k]));
            break;
        case ATTR_STR: h = hash_str(h, a->s); break;
        }
    }
    return h;
}

static bool attr_eq(const Attr *a, const Attr *b) {
    if (strcmp(a->key, b->key) != 0 || a->kind != b->kind) return false;
    switch (a->kind) {
    case ATTR_INT: case ATTR_DTYPE: return a->i == b->i;
    case ATTR_FLOAT: return dbits(a->f) == dbits(b->f);
    case ATTR_INTS:
        return a->n == b->n && (a->n == 0 || memcmp(a->ints, b->ints, sizeof(int64_t) * (size_t)a->n) == 0);
    case ATTR_FLOATS:
        if (a->n != b->n) return false;
        for (int k = 0; k < a->n; k++)
            if (dbits(a->floats[k]) != dbits(b->floats[k])) return false;
        return true;
    case ATTR_STR: return strcmp(a->s ? a->s : "", b->s ? b->s : "") == 0;
    }
    return false;
}

/* Old node n with remapped operands ins against node k of the new body. */
static bool same_node(const Node *n, const int *ins, const Node *k) {
    if (n->op != k->op || n->ninputs != k->ninputs || n->nattrs != k->nattrs ||
        !type_equal(&n->type, &k->type))
        return false;
    for (int i = 0; i < n->ninputs; i++)
        if (ins[i] != k->inputs[i]) return false;
    for (int i = 0; i < n->nattrs; i++)
        if (!attr_eq(&n->attrs[i], &k->attrs[i])) return false;
    return true;
}

static bool cse_function(Module *m, Function *f, Diag *d) {
    size_t cap = 16;
    while (cap < 2 * (size_t)f->n + 2) cap *= 2;
    int *table = malloc(sizeof(int) * cap); /* new value ids, -1 empty */
    for (size_t i = 0; i < cap; i++) table[i] = -1;
    int *ins = malloc(sizeof(int) * ((size_t)f->n + 1));
    Rewriter rw;
    rw_begin(&rw, m, f, d);
    for (int id = 0; id < f->n; id++) {
        const Node *n = &f->nodes[id];
        if (n->op == OP_INPUT || n->ninputs > f->n) {
            rw_copy(&rw, id);
            continue;
        }
        for (int i = 0; i < n->ninputs; i++) ins[i] = rw.map[n->inputs[i]];
        size_t slot = (size_t)hash_node(n, ins) & (cap - 1);
        int hit = -1;
        for (; table[slot] >= 0; slot = (slot + 1) & (cap - 1))
            if (same_node(n, ins, &rw.b.f->nodes[table[slot]])) {
                hit = table[slot];
                break;
            }
        if (hit >= 0) {
            rw.map[id] = hit;
            continue;
        }
        table[slot] = rw_copy(&rw, id);
    }
    free(table);
    free(ins);
    return rw_finish(&rw);
}

bool pass_cse(Module *m, PassCtx *ctx) {
    for (int i = 0; i < m->nfuncs; i++)
        if (!cse_function(m, m->funcs[i], ctx->d)) return false;
    return true;
}
