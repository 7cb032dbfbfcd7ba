/* Fused body -> kernel IR. The output element's flat index is unflattened
 * into coordinates only when some operand needs them; elementwise chains
 * over one shape read every buffer at the flat index itself, which is what
 * lets LLVM vectorise them. Values are memoised per (node, coordinates):
 * gradient chains reuse values many times and would otherwise grow
 * exponentially. */
#include "codegen/lower.h"

#include "codegen/lower_math.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int rank;
    int64_t dim[IR_MAX_RANK];
    int c[IR_MAX_RANK]; /* kernel value ids, -1 until needed */
    int flat;           /* flat index in this shape, -1 until needed */
} Coord;

typedef struct {
    int node, flat, c[IR_MAX_RANK], val;
} Memo;

typedef struct {
    const Function *f;
    KernelDef *k;
    Diag *d;
    int *buf;  /* body node id -> buffer, -1 */
    Memo *memo;
    int nmemo, memocap;
    bool failed;
} Low;

static bool low_fail(Low *L, const Node *n, const char *msg) {
    if (!L->failed)
        diag_error(L->d, EXIT_BADINPUT, "kernel '%s': node '%s' (%s): %s", L->k->name, n->name,
                   op_name(n->op), msg);
    L->failed = true;
    return false;
}

static int ci(Low *L, int64_t v) { return k_const_i(L->k, KT_I64, v); }

static Coord coord_flat(const Type *t, int flat) {
    Coord C = {.rank = t->rank, .flat = flat};
    for (int i = 0; i < t->rank; i++) {
        C.dim[i] = t->dim[i];
        C.c[i] = -1;
    }
    return C;
}

static Coord coord_empty(const Type *t) { return coord_flat(t, -1); }

static int coord_get(Low *L, Coord *C, int i) {
    if (C->c[i] >= 0) return C->c[i];
    if (C->dim[i] == 1) return C->c[i] = ci(L, 0);
    int64_t stride = 1;
    for (int j = i + 1; j < C->rank; j++) stride *= C->dim[j];
    int v = C->flat;
    if (stride != 1) v = k_idiv(L->k, v, ci(L, stride));
    if (i > 0) v = k_imod(L->k, v, ci(L, C->dim[i])); /* the outermost never wraps */
    return C->c[i] = v;
}

static int coord_index(Low *L, Coord *C) {
    if (C->flat >= 0) return C->flat;
    if (C->rank == 0) return C->flat = ci(L, 0);
    int acc = coord_get(L, C, 0);
    for (int i = 1; i < C->rank; i++) {
        if (C->dim[i] != 1) acc = k_binary(L->k, KO_MUL, acc, ci(L, C->dim[i]));
        acc = k_binary(L->k, KO_ADD, acc, coord_get(L, C, i));
    }
    return C->flat = acc;
}

static void coord_all(Low *L, Coord *C) {
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

static int emit(Low *L, int v, Coord *C);

static int lt(Low *L, int a, int b) { return k_binary(L->k, KO_LT, a, b); }

/* clamp(x, 0, hi) on i64 indices (loads of padding/concat never read out
 * of bounds; the select picks the right value afterwards). */
static int clamp_index(Low *L, int x, int64_t hi) {
    int z = ci(L, 0), h = ci(L, hi);
    x = k_select(L->k, lt(L, x, z), z, x);
    return k_select(L->k, lt(L, h, x), h, x);
}

static int emit_broadcast(Low *L, const Node *n, Coord *C) {
    const Type *x = &L->f->nodes[n->inputs[0]].type;
    Coord X = coord_empty(x);
    int off = C->rank - x->rank;
    for (int j = 0; j < x->rank; j++)
        X.c[j] = x->dim[j] == 1 ? ci(L, 0) : coord_get(L, C, j + off);
    if (type_numel(x) == type_numel(&n->type)) X.flat = coord_index(L, C); /* only 1s added */
    return emit(L, n->inputs[0], &X);
}

static int emit_transpose(Low *L, const Node *n, Coord *C) {
    const Type *x = &L->f->nodes[n->inputs[0]].type;
    int64_t perm[IR_MAX_RANK];
    node_ints(n, "perm", perm, IR_MAX_RANK);
    Coord X = coord_empty(x);
    for (int i = 0; i < C->rank; i++) X.c[perm[i]] = coord_get(L, C, i);
    return emit(L, n->inputs[0], &X);
}

static int emit_slice(Low *L, const Node *n, Coord *C) {
    const Type *x = &L->f->nodes[n->inputs[0]].type;
    int64_t start[IR_MAX_RANK], step[IR_MAX_RANK];
    node_ints(n, "start", start, IR_MAX_RANK);
    int ns = node_ints(n, "step", step, IR_MAX_RANK);
    Coord X = coord_empty(x);
    for (int j = 0; j < x->rank; j++) {
        int c = coord_get(L, C, j);
        int64_t s = j < ns ? step[j] : 1;
        if (s != 1) c = k_binary(L->k, KO_MUL, c, ci(L, s));
        X.c[j] = start[j] ? k_binary(L->k, KO_ADD, c, ci(L, start[j])) : c;
    }
    return emit(L, n->inputs[0], &X);
}

static int emit_pad(Low *L, const Node *n, Coord *C) {
    const Type *x = &L->f->nodes[n->inputs[0]].type;
    int64_t lo[IR_MAX_RANK];
    node_ints(n, "lo", lo, IR_MAX_RANK);
    Coord X = coord_empty(x);
    int inside = -1;
    for (int j = 0; j < x->rank; j++) {
        int c = coord_get(L, C, j);
        if (lo[j] == 0 && x->dim[j] == n->type.dim[j]) {
            X.c[j] = c;
            continue;
        }
        int xc = lo[j] ? k_binary(L->k, KO_SUB, c, ci(L, lo[j])) : c;
        int ok = k_binary(L->k, KO_AND, k_binary(L->k, KO_GE, xc, ci(L, 0)),
                          lt(L, xc, ci(L, x->dim[j])));
        inside = inside < 0 ? ok : k_binary(L->k, KO_AND, inside, ok);
        X.c[j] = clamp_index(L, xc, x->dim[j] - 1);
    }
    int val = emit(L, n->inputs[0], &X);
    if (inside < 0) return val;
    KType t = ktype_of(n->type.dtype);
    int pv = t == KT_F32 || t == KT_F64 ? k_const_f(L->k, t, node_float(n, "value", 0))
                                        : k_const_i(L->k, t, (int64_t)node_float(n, "value", 0));
    return k_select(L->k, inside, val, pv);
}

/* Operands first..last-1 of concat n, whose axis coordinate C counts from
 * the first one's start: a select chain over their loads (each clamped in
 * bounds, so every one is safe to evaluate). */
static int emit_concat_range(Low *L, const Node *n, int first, int last, Coord *C) {
    int axis = (int)node_int(n, "axis", 0);
    int c = coord_get(L, C, axis), result = -1;
    int64_t off = 0;
    for (int k = first; k < last; k++) {
        const Type *x = &L->f->nodes[n->inputs[k]].type;
        Coord X = coord_empty(x);
        for (int j = 0; j < x->rank; j++) X.c[j] = j == axis ? -1 : coord_get(L, C, j);
        int local = off ? k_binary(L->k, KO_SUB, c, ci(L, off)) : c;
        X.c[axis] = clamp_index(L, local, x->dim[axis] - 1);
        int val = emit(L, n->inputs[k], &X);
        result = result < 0 ? val : k_select(L->k, lt(L, c, ci(L, off)), result, val);
        off += x->dim[axis];
    }
    return result;
}

static int emit_concat(Low *L, const Node *n, Coord *C) {
    return emit_concat_range(L, n, 0, n->ninputs, C);
}

/* Reductions: one inner loop over the reduced axes in row-major order (the
 * interpreter's summation order), the other coordinates from the output. */
static int emit_reduce(Low *L, const Node *n, Coord *C) {
    const Type *x = &L->f->nodes[n->inputs[0]].type;
    bool drop[IR_MAX_RANK] = {false};
    int64_t axes[IR_MAX_RANK + 1], extent = 1;
    int na = n->op == OP_ARGMAX ? 1 : node_ints(n, "axes", axes, IR_MAX_RANK + 1);
    if (n->op == OP_ARGMAX) axes[0] = node_int(n, "axis", 0);
    for (int j = 0; j < na; j++) drop[axes[j]] = true;
    for (int j = 0; j < x->rank; j++) extent *= drop[j] ? x->dim[j] : 1;
    bool keep = n->op != OP_ARGMAX && node_int(n, "keepdims", 0) != 0;
    coord_all(L, C); /* outer coordinates exist before the loop opens */
    int begin = k_red_begin(L->k, extent), r = begin;
    Coord X = coord_empty(x);
    for (int j = x->rank - 1, o = C->rank - 1; j >= 0; j--) {
        if (drop[j]) {
            int q = r;
            if (x->dim[j] == 1) {
                X.c[j] = ci(L, 0);
            } else {
                X.c[j] = k_imod(L->k, q, ci(L, x->dim[j]));
                r = k_idiv(L->k, q, ci(L, x->dim[j]));
            }
            if (keep) o--;
        } else {
            X.c[j] = C->c[o--];
        }
    }
    int nmemo = L->nmemo;
    int val = emit(L, n->inputs[0], &X);
    L->nmemo = nmemo; /* values of the loop body are not visible after it */
    KReduce red = n->op == OP_REDUCE_SUM ? KR_SUM : n->op == OP_REDUCE_MAX ? KR_MAX : KR_ARGMAX;
    return k_red_end(L->k, red, begin, val);
}

static int emit_one_hot(Low *L, const Node *n, Coord *C) {
    const Type *x = &L->f->nodes[n->inputs[0]].type;
    Coord X = coord_empty(x);
    for (int j = 0; j < x->rank; j++) X.c[j] = coord_get(L, C, j);
    int idx = k_cast(L->k, KT_I64, emit(L, n->inputs[0], &X));
    int hit = k_binary(L->k, KO_EQ, idx, coord_get(L, C, C->rank - 1));
    return lm_cast(L->k, ktype_of(n->type.dtype), hit);
}

static int emit_gather(Low *L, const Node *n, Coord *C) {
    const Type *x = &L->f->nodes[n->inputs[0]].type, *it = &L->f->nodes[n->inputs[1]].type;
    Coord I = coord_empty(it);
    for (int j = 0; j < it->rank; j++) I.c[j] = coord_get(L, C, j);
    int idx = k_cast(L->k, KT_I64, emit(L, n->inputs[1], &I));
    Coord X = coord_empty(x);
    for (int j = 0; j < it->rank; j++) X.c[j] = coord_get(L, C, j);
    X.c[x->rank - 1] = clamp_index(L, idx, x->dim[x->rank - 1] - 1);
    return emit(L, n->inputs[0], &X);
}

static int emit_random(Low *L, const Node *n, Coord *C) {
    const Type *kt = &L->f->nodes[n->inputs[0]].type;
    Coord k0 = coord_flat(kt, ci(L, 0)), k1 = coord_flat(kt, ci(L, 1));
    int seed = emit(L, n->inputs[0], &k0), step = emit(L, n->inputs[0], &k1);
    KRandom r = n->op == OP_RANDOM_NORMAL ? KRAND_NORMAL
                : n->op == OP_RANDOM_BERNOULLI ? KRAND_BERNOULLI : KRAND_UNIFORM;
    return lm_random(L->k, r, ktype_of(n->type.dtype), seed, step, coord_index(L, C),
                     (uint32_t)node_int(n, "stream", 0), node_float(n, "p", 0.5));
}

static int emit_source(Low *L, int v, Coord *C) {
    const Node *n = &L->f->nodes[v];
    if (L->buf[v] >= 0) return k_load(L->k, L->buf[v], coord_index(L, C));
    KType t = ktype_of(n->type.dtype);
    if (n->op == OP_CONSTANT && !node_attr(n, "data")) {
        double val = node_float(n, "value", 0);
        return t == KT_F32 || t == KT_F64 ? k_const_f(L->k, t, val) : k_const_i(L->k, t, (int64_t)val);
    }
    if (n->op == OP_IOTA) return lm_cast(L->k, t, coord_get(L, C, (int)node_int(n, "axis", 0)));
    return low_fail(L, n, "a source the kernel cannot compute (a buffer input was expected)"), -1;
}

static int emit_elementwise(Low *L, const Node *n, Coord *C) {
    int a[3] = {-1, -1, -1};
    for (int k = 0; k < n->ninputs && k < 3; k++) a[k] = emit(L, n->inputs[k], C);
    if (L->failed) return -1;
    if (n->op == OP_CAST) return lm_cast(L->k, ktype_of(n->type.dtype), a[0]);
    if (n->op == OP_SELECT) return k_select(L->k, a[0], a[1], a[2]);
    int r = n->ninputs == 1 ? lm_unary(L->k, n->op, a[0], node_float(n, "beta", 1.0))
                            : lm_binary(L->k, n->op, a[0], a[1]);
    return r >= 0 ? r : (low_fail(L, n, "no kernel lowering for this elementwise op"), -1);
}

static int emit_reshape(Low *L, const Node *n, Coord *C) {
    Coord X = coord_flat(&L->f->nodes[n->inputs[0]].type, coord_index(L, C));
    return emit(L, n->inputs[0], &X);
}

typedef int (*EmitRule)(Low *L, const Node *n, Coord *C);

/* The ops a fused kernel computes by index arithmetic; elementwise ops
 * come from their pattern (emit_elementwise), sources from their buffer. */
static const EmitRule EMIT[OP_COUNT] = {
    [OP_BROADCAST] = emit_broadcast, [OP_RESHAPE] = emit_reshape,
    [OP_TRANSPOSE] = emit_transpose, [OP_SLICE] = emit_slice, [OP_PAD] = emit_pad,
    [OP_CONCAT] = emit_concat, [OP_REDUCE_SUM] = emit_reduce, [OP_REDUCE_MAX] = emit_reduce,
    [OP_ARGMAX] = emit_reduce, [OP_ONE_HOT] = emit_one_hot, [OP_GATHER] = emit_gather,
};

static int emit_op(Low *L, int v, Coord *C) {
    const Node *n = &L->f->nodes[v];
    if (L->buf[v] >= 0 || op_info(n->op)->cls == OC_SOURCE) {
        if (n->op >= OP_RANDOM_UNIFORM && n->op <= OP_RANDOM_BERNOULLI && L->buf[v] < 0)
            return emit_random(L, n, C);
        return emit_source(L, v, C);
    }
    if (EMIT[n->op]) return EMIT[n->op](L, n, C);
    if (op_info(n->op)->pattern == PK_ELEMWISE) return emit_elementwise(L, n, C);
    return low_fail(L, n, "op not supported inside a fused kernel"), -1;
}

static int emit(Low *L, int v, Coord *C) {
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
    if (off) C.c[axis] = k_binary(L.k, KO_ADD, C.c[axis], ci(&L, off));
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
    int val = emit(&L, body->outputs[0].value, &C);
    if (!L.failed) k_store(L.k, ob, C.flat, val);
    return low_finish(&L, d);
}
