/* Fused body -> kernel IR. The output element's flat index is unflattened
 * into coordinates only when some operand needs them; elementwise chains
 * over one shape read every buffer at the flat index itself, which is what
 * lets LLVM vectorise them. Values are memoised per (node, coordinates):
 * gradient chains reuse values many times and would otherwise grow
 * exponentially. The ops' own rules are their rows (ops/<family>.c); the
 * state and helpers they use are in codegen/lower_rule.h. */
#include "codegen/lower_rule.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

bool low_fail(Low *L, const Node *n, const char *msg) {
    if (!L->failed)
        diag_error(L->d, EXIT_BADINPUT, "kernel '%s': node '%s' (%s): %s", L->k->name, n->name,
                   op_name(n->op), msg);
    L->failed = true;
    return false;
}

Coord coord_flat(const Type *t, int flat) {
    Coord C = {.rank = t->rank, .flat = flat};
    for (int i = 0; i < t->rank; i++) {
        C.dim[i] = t->dim[i];
        C.c[i] = -1;
    }
    return C;
}

Coord coord_empty(const Type *t) { return coord_flat(t, -1); }

int coord_get(Low *L, Coord *C, int i) {
    if (C->c[i] >= 0) return C->c[i];
    if (C->dim[i] == 1) return C->c[i] = cidx(L, 0);
    int64_t stride = 1;
    for (int j = i + 1; j < C->rank; j++) stride *= C->dim[j];
    int v = C->flat;
    if (stride != 1) v = k_idiv(L->k, v, cidx(L, stride));
    if (i > 0) v = k_imod(L->k, v, cidx(L, C->dim[i])); /* the outermost never wraps */
    return C->c[i] = v;
}

int coord_index(Low *L, Coord *C) {
    if (C->flat >= 0) return C->flat;
    if (C->rank == 0) return C->flat = cidx(L, 0);
    int acc = coord_get(L, C, 0);
    for (int i = 1; i < C->rank; i++) {
        if (C->dim[i] != 1) acc = k_binary(L->k, KO_MUL, acc, cidx(L, C->dim[i]));
        acc = k_binary(L->k, KO_ADD, acc, coord_get(L, C, i));
    }
    return C->flat = acc;
}

void coord_all(Low *L, Coord *C) {
    for (int i = 0; i < C->rank; i++) coord_get(L, C, i);
}

/* ---- memo ---- */

static int memo_find(const Low *L, int node, const Coord *C) {
    for (int i = L->nmemo - 1; i >= 0; i--) {
        const Memo *e = &L->memo[i];
        if (e->node != node) continue;
        if (C->flat >= 0 && e->flat == C->flat) return e->val;
        if (C->flat < 0 && e->flat < 0 && memcmp(e->c, C->c, sizeof(int) * (size_t)C->rank) == 0)
            return e->val;
    }
    return -1;
}

static void memo_put(Low *L, int node, const Coord *C, int val) {
    if (L->nmemo == L->memocap) {
        L->memocap = L->memocap ? 2 * L->memocap : 64;
        L->memo = realloc(L->memo, sizeof(Memo) * (size_t)L->memocap);
    }
    Memo *e = &L->memo[L->nmemo++];
    e->node = node;
    e->flat = C->flat;
    memcpy(e->c, C->c, sizeof e->c);
    e->val = val;
}

/* ---- ops ---- */

int clamp_index(Low *L, int x, int64_t hi) {
    int z = cidx(L, 0), h = cidx(L, hi);
    x = k_select(L->k, lt(L, x, z), z, x);
    return k_select(L->k, lt(L, h, x), h, x);
}

/* Operands first..last-1 of concat n, whose axis coordinate C counts from
 * the first one's start: a select chain over their loads (each clamped in
 * bounds, so every one is safe to evaluate). */
int emit_concat_range(Low *L, const Node *n, int first, int last, Coord *C) {
    int axis = (int)node_int(n, "axis", 0);
    int c = coord_get(L, C, axis), result = -1;
    int64_t off = 0;
    for (int k = first; k < last; k++) {
        const Type *x = &L->f->nodes[n->inputs[k]].type;
        Coord X = coord_empty(x);
        for (int j = 0; j < x->rank; j++) X.c[j] = j == axis ? -1 : coord_get(L, C, j);
        int local = off ? k_binary(L->k, KO_SUB, c, cidx(L, off)) : c;
        X.c[axis] = clamp_index(L, local, x->dim[axis] - 1);
        int val = low_emit(L, n->inputs[k], &X);
        result = result < 0 ? val : k_select(L->k, lt(L, c, cidx(L, off)), result, val);
        off += x->dim[axis];
    }
    return result;
}

int low_source_fail(Low *L, const Node *n) {
    return low_fail(L, n, "a source the kernel cannot compute (a buffer input was expected)"), -1;
}

/* Elementwise ops by arity: cast and select are one step each, the others
 * their row's math (lower_math.c's lm_unary, lm_binary). */
static int emit_elementwise(Low *L, const Node *n, Coord *C) {
    int a[3] = {-1, -1, -1};
    for (int k = 0; k < n->ninputs && k < 3; k++) a[k] = low_emit(L, n->inputs[k], C);
    if (L->failed) return -1;
    if (n->op == OP_CAST) return lm_cast(L->k, ktype_of(n->type.dtype), a[0]);
    if (n->op == OP_SELECT) return k_select(L->k, a[0], a[1], a[2]);
    int r = n->ninputs == 1 ? lm_unary(L->k, n->op, a[0], node_float(n, "beta", 1.0))
                            : lm_binary(L->k, n->op, a[0], a[1]);
    return r >= 0 ? r : (low_fail(L, n, "no kernel lowering for this elementwise op"), -1);
}

/* A value in a buffer is loaded; every other op's row says how to compute
 * it (ops/<family>.c), elementwise ones go by their pattern. */
static int emit_op(Low *L, int v, Coord *C) {
    const Node *n = &L->f->nodes[v];
    if (L->buf[v] >= 0) return k_load(L->k, L->buf[v], coord_index(L, C));
    EmitRule rule = codegen_op_row(n->op)->emit;
    if (rule) return rule(L, n, C);
    if (op_info(n->op)->cls == OC_SOURCE) return low_source_fail(L, n);
    if (op_info(n->op)->pattern == PK_ELEMWISE) return emit_elementwise(L, n, C);
    return low_fail(L, n, "op not supported inside a fused kernel"), -1;
}

int low_emit(Low *L, int v, Coord *C) {
    if (L->failed) return -1;
    if (C->flat < 0) coord_all(L, C); /* a canonical key for the memo */
    int hit = memo_find(L, v, C);
    if (hit >= 0) return hit;
    int val = emit_op(L, v, C);
    if (val >= 0) memo_put(L, v, C, val);
    return val;
}

/* The finished kernel, verified, or NULL (the message already in d). */
static KernelDef *low_finish(Low *L, Diag *d) {
    free(L->buf);
    free(L->memo);
    if (L->failed || !kernel_verify(L->k, d)) {
        kernel_free(L->k);
        return NULL;
    }
    return L->k;
}

bool lower_is_concat_copy(const Function *body) {
    if (body->noutputs != 1) return false;
    const Node *out = &body->nodes[body->outputs[0].value];
    if (out->op != OP_CONCAT) return false;
    for (int k = 0; k < out->ninputs; k++)
        if (body->nodes[out->inputs[k]].op != OP_INPUT) return false;
    return true;
}

KernelDef *lower_concat_part(const Function *body, int part, const char *kernel_name, int *reads,
                             int *nreads, Diag *d) {
    const Node *out = &body->nodes[body->outputs[0].value];
    int axis = (int)node_int(out, "axis", 0);
    int first = part * LOWER_CONCAT_PART, last = first + LOWER_CONCAT_PART;
    if (last > out->ninputs) last = out->ninputs;
    int64_t off = 0;
    Type t = out->type; /* the part: the output with its operands' extent on axis */
    t.dim[axis] = 0;
    for (int k = 0; k < last; k++) {
        int64_t e = body->nodes[out->inputs[k]].type.dim[axis];
        *(k < first ? &off : &t.dim[axis]) += e;
    }
    Low L = {.f = body, .d = d, .k = kernel_new(kernel_name, type_numel(&t))};
    kernel_set_comment(L.k, body->name);
    L.buf = malloc(sizeof(int) * (size_t)(body->n + 1));
    int ob = kernel_add_buf(L.k, ktype_of(out->type.dtype), type_numel(&out->type), true, out->name);
    *nreads = 0;
    for (int i = 0, ordinal = 0; i < body->n; i++) {
        const Node *n = &body->nodes[i];
        bool read = false; /* buffers 1.. are this part's operands, once each */
        for (int k = first; k < last; k++) read |= out->inputs[k] == i;
        L.buf[i] = -1;
        if (read) {
            L.buf[i] = kernel_add_buf(L.k, ktype_of(n->type.dtype), type_numel(&n->type), false, n->name);
            reads[(*nreads)++] = ordinal;
        }
        ordinal += n->op == OP_INPUT;
    }
    Coord P = coord_flat(&t, k_index(L.k)), C = coord_empty(&out->type);
    int val = emit_concat_range(&L, out, first, last, &P);
    for (int j = 0; j < t.rank; j++) C.c[j] = coord_get(&L, &P, j);
    if (off) C.c[axis] = k_binary(L.k, KO_ADD, C.c[axis], cidx(&L, off));
    k_store(L.k, ob, coord_index(&L, &C), val);
    return low_finish(&L, d);
}

int lower_find_head(const Function *body) {
    for (int i = 0; i < body->n; i++)
        if (op_info(body->nodes[i].op)->pattern == PK_COMPLEX) return i;
    return -1;
}

char *lower_c_name(const char *name, char *buf, size_t cap) {
    size_t j = 0;
    for (const char *p = name; *p && j + 1 < cap; p++)
        buf[j++] = isalnum((unsigned char)*p) ? *p : '_';
    buf[j] = 0;
    return buf;
}

KernelDef *lower_body(const Module *m, const Function *body, const char *kernel_name,
                      bool head_buf, Diag *d) {
    (void)m;
    if (body->noutputs != 1) {
        diag_error(d, EXIT_BADINPUT, "fused body '%s' must have one output", body->name);
        return NULL;
    }
    const Node *out = &body->nodes[body->outputs[0].value];
    Low L = {.f = body, .d = d, .k = kernel_new(kernel_name, type_numel(&out->type))};
    kernel_set_comment(L.k, body->name);
    L.buf = malloc(sizeof(int) * (size_t)(body->n + 1));
    int ob = kernel_add_buf(L.k, ktype_of(out->type.dtype), type_numel(&out->type), true, out->name);
    for (int i = 0; i < body->n; i++) {
        const Node *n = &body->nodes[i];
        L.buf[i] = -1;
        if (n->op == OP_INPUT || (n->op == OP_CONSTANT && node_attr(n, "data")))
            L.buf[i] = kernel_add_buf(L.k, ktype_of(n->type.dtype), type_numel(&n->type), false, n->name);
    }
    int head = lower_find_head(body);
    if (head >= 0 && head_buf) {
        const Node *h = &body->nodes[head];
        L.buf[head] = kernel_add_buf(L.k, ktype_of(h->type.dtype), type_numel(&h->type), false, h->name);
    } else if (head >= 0) {
        low_fail(&L, &body->nodes[head], "a complex op inside a kernel (it runs as a library call)");
    }
    Coord C = coord_flat(&out->type, k_index(L.k));
    int val = low_emit(&L, body->outputs[0].value, &C);
    if (!L.failed) k_store(L.k, ob, C.flat, val);
    return low_finish(&L, d);
}
