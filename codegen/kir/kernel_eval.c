/* Reference evaluator for the kernel IR: plain C, one element at a time.
 *
 * Float values are held in double and rounded to the value's type after
 * every instruction (f32: round to float), which for + - * / sqrt and
 * comparisons gives exactly the f32 operation's result. Integer values are
 * held in int64 and wrapped to their type. A primitive's precondition (an
 * integer divisor that is neither 0 nor -1 of the minimum, a shift below the
 * width, a float cast to int that is an integer in range) is checked: its
 * violation is an error, as it is undefined on the backends. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/kir/kernel.h"

typedef struct {
    double f;  /* f32 / f64 */
    int64_t i; /* i32 / i64 / bool, and reduction counters */
} KVal;

typedef struct {
    const KernelDef *k;
    void *const *bufs;
    KVal *v;
    int *match; /* per KI_RED_BEGIN: its KI_RED_END */
    Diag *d;
} Eval;

static bool is_float(KType t) { return t == KT_F32 || t == KT_F64; }

static double round_to(KType t, double x) { return t == KT_F32 ? (double)(float)x : x; }

static int64_t wrap(KType t, uint64_t x) {
    switch (t) {
    case KT_I32: return (int64_t)(int32_t)(uint32_t)x;
    case KT_BOOL: return x != 0;
    case KT_I64:
    case KT_F32:
    case KT_F64:
    case KT_COUNT: break;
    }
    return (int64_t)x;
}

static bool bad(Eval *e, int j, const char *what) {
    return diag_error(e->d, EXIT_RUNTIME, "kernel '%s': %%%d (%s): %s", e->k->name, j,
                      kop_name(e->k->insts[j].op), what);
}

static double unary_f(KOp op, double x) {
    switch (op) {
    case KO_NEG: return -x;
    case KO_ABS: return fabs(x);
    case KO_EXP: return exp(x);
    case KO_LOG: return log(x);
    case KO_SQRT: return sqrt(x);
    case KO_TANH: return tanh(x);
    case KO_ERF: return erf(x);
    case KO_COS: return cos(x);
    case KO_TRUNC: return trunc(x);
    case KO_ADD: case KO_SUB: case KO_MUL: case KO_DIV: case KO_POW: case KO_AND:
    case KO_OR: case KO_XOR: case KO_SHR: case KO_EQ: case KO_NE: case KO_LT:
    case KO_LE: case KO_GT: case KO_GE: case KO_COUNT: break;
    }
    return NAN; /* the verifier admits no other unary op */
}

static bool unary(Eval *e, int j) {
    const KInst *in = &e->k->insts[j];
    KVal x = e->v[in->a], *r = &e->v[j];
    if (is_float(in->type)) r->f = round_to(in->type, unary_f(in->op, x.f));
    else r->i = wrap(in->type, 0 - (uint64_t)x.i); /* neg, the one integer unary op */
    return true;
}

/* C's comparisons; integers compared as integers (exact for i64). */
static bool compare(KOp op, KVal a, KVal b, bool fl) {
    if (!fl) {
        int64_t p = a.i, q = b.i;
        return op == KO_EQ ? p == q : op == KO_NE ? p != q : op == KO_LT ? p < q
             : op == KO_LE ? p <= q : op == KO_GT ? p > q : p >= q;
    }
    double x = a.f, y = b.f;
    return op == KO_EQ ? x == y : op == KO_NE ? x != y : op == KO_LT ? x < y
         : op == KO_LE ? x <= y : op == KO_GT ? x > y : x >= y;
}

static double binary_f(KOp op, double x, double y) {
    switch (op) {
    case KO_ADD: return x + y;
    case KO_SUB: return x - y;
    case KO_MUL: return x * y;
    case KO_DIV: return x / y;
    case KO_POW: return pow(x, y);
    case KO_AND: case KO_OR: case KO_XOR: case KO_SHR: case KO_EQ: case KO_NE:
    case KO_LT: case KO_LE: case KO_GT: case KO_GE: case KO_NEG: case KO_ABS:
    case KO_EXP: case KO_LOG: case KO_SQRT: case KO_TANH: case KO_ERF: case KO_COS:
    case KO_TRUNC: case KO_COUNT: break;
    }
    return NAN;
}

/* Integer ops; false when a precondition fails. */
static bool binary_i(KOp op, KType t, int64_t x, int64_t y, int64_t *r) {
    int width = t == KT_I32 ? 32 : 64;
    int64_t min = t == KT_I32 ? INT32_MIN : INT64_MIN;
    switch (op) {
    case KO_ADD: *r = wrap(t, (uint64_t)x + (uint64_t)y); return true;
    case KO_SUB: *r = wrap(t, (uint64_t)x - (uint64_t)y); return true;
    case KO_MUL: *r = wrap(t, (uint64_t)x * (uint64_t)y); return true;
    case KO_DIV:
        if (y == 0 || (y == -1 && x == min)) return false;
        *r = x / y;
        return true;
    case KO_AND: *r = x & y; return true;
    case KO_OR: *r = x | y; return true;
    case KO_XOR: *r = x ^ y; return true;
    case KO_SHR:
        if (y < 0 || y >= width) return false;
        *r = t == KT_I32 ? (int64_t)(int32_t)((uint32_t)x >> y) : (int64_t)((uint64_t)x >> y);
        return true;
    case KO_POW: case KO_EQ: case KO_NE: case KO_LT: case KO_LE: case KO_GT: case KO_GE:
    case KO_NEG: case KO_ABS: case KO_EXP: case KO_LOG: case KO_SQRT: case KO_TANH:
    case KO_ERF: case KO_COS: case KO_TRUNC: case KO_COUNT: break;
    }
    return false;
}

static bool binary(Eval *e, int j) {
    const KInst *in = &e->k->insts[j];
    KVal a = e->v[in->a], b = e->v[in->b], *r = &e->v[j];
    KType t = e->k->insts[in->a].type;
    if (kop_is_compare(in->op)) {
        r->i = compare(in->op, a, b, is_float(t));
        return true;
    }
    if (is_float(t)) {
        r->f = round_to(t, binary_f(in->op, a.f, b.f));
        return true;
    }
    return binary_i(in->op, t, a.i, b.i, &r->i) ||
           bad(e, j, in->op == KO_SHR ? "shift out of range" : "integer division by 0 or overflow");
}

/* float -> int needs an integer in the target's range. */
static bool cast(Eval *e, int j) {
    const KInst *in = &e->k->insts[j];
    KType to = in->type, from = e->k->insts[in->a].type;
    KVal a = e->v[in->a], *r = &e->v[j];
    if (is_float(to)) {
        r->f = round_to(to, is_float(from) ? a.f : (double)a.i); /* one rounding */
        return true;
    }
    if (!is_float(from)) {
        r->i = wrap(to, (uint64_t)a.i);
        return true;
    }
    double lim = to == KT_I32 ? 2147483648.0 : 9223372036854775808.0;
    if (!(a.f == trunc(a.f) && a.f >= -lim && a.f < lim)) {
        return diag_error(e->d, EXIT_RUNTIME, "kernel '%s': %%%d (cast): %.17g is not an integer of %s",
                          e->k->name, j, a.f, ktype_name(to));
    }
    r->i = (int64_t)a.f;
    return true;
}

static bool in_bounds(Eval *e, int j, int64_t idx) {
    const KInst *in = &e->k->insts[j];
    int64_t n = e->k->bufs[in->buf].numel;
    if (idx >= 0 && idx < n) return true;
    return diag_error(e->d, EXIT_RUNTIME, "kernel '%s': %%%d (%s b%d): index %lld out of [0, %lld)",
                      e->k->name, j, in->kind == KI_LOAD ? "load" : "store", in->buf,
                      (long long)idx, (long long)n);
}

static bool load(Eval *e, int j) {
    const KInst *in = &e->k->insts[j];
    int64_t idx = e->v[in->a].i;
    if (!in_bounds(e, j, idx)) return false;
    const char *p = (const char *)e->bufs[in->buf];
    KVal *r = &e->v[j];
    switch (in->type) {
    case KT_F32: { float x; memcpy(&x, p + idx * 4, 4); r->f = x; break; }
    case KT_F64: memcpy(&r->f, p + idx * 8, 8); break;
    case KT_I32: { int32_t x; memcpy(&x, p + idx * 4, 4); r->i = x; break; }
    case KT_I64: memcpy(&r->i, p + idx * 8, 8); break;
    case KT_BOOL:
    case KT_COUNT: r->i = ((const unsigned char *)p)[idx] != 0; break;
    }
    return true;
}

static bool store(Eval *e, int j) {
    const KInst *in = &e->k->insts[j];
    int64_t idx = e->v[in->a].i;
    if (!in_bounds(e, j, idx)) return false;
    char *p = (char *)e->bufs[in->buf];
    KVal x = e->v[in->b];
    switch (in->type) {
    case KT_F32: { float f = (float)x.f; memcpy(p + idx * 4, &f, 4); break; }
    case KT_F64: memcpy(p + idx * 8, &x.f, 8); break;
    case KT_I32: { int32_t v = (int32_t)x.i; memcpy(p + idx * 4, &v, 4); break; }
    case KT_I64: memcpy(p + idx * 8, &x.i, 8); break;
    case KT_BOOL:
    case KT_COUNT: ((unsigned char *)p)[idx] = x.i != 0; break;
    }
    return true;
}

/* One instruction other than the reduction brackets. */
static bool step(Eval *e, int j, int64_t elem) {
    const KInst *in = &e->k->insts[j];
    KVal *v = e->v, *r = &v[j];
    switch (in->kind) {
    case KI_INDEX: r->i = elem; return true;
    case KI_CONST: r->f = in->f; r->i = in->i; return true;
    case KI_LOAD: return load(e, j);
    case KI_STORE: return store(e, j);
    case KI_UNARY: return unary(e, j);
    case KI_BINARY: return binary(e, j);
    case KI_IDIV: r->i = v[in->b].i ? v[in->a].i / v[in->b].i : 0; return true;
    case KI_IMOD: r->i = v[in->b].i ? v[in->a].i % v[in->b].i : 0; return true;
    case KI_SELECT: *r = v[in->a].i ? v[in->b] : v[in->c]; return true;
    case KI_CAST: return cast(e, j);
    case KI_RED_BEGIN:
    case KI_RED_END:
    case KI_COUNT: break;
    }
    return true;
}

static bool run(Eval *e, int lo, int hi, int64_t elem);

/* The reductions' combines: a sum that wraps for integers, and a max that
 * propagates NaN (the accumulator's first, then b's). */
static KVal red_sum(KType t, KVal acc, KVal b) {
    if (is_float(t)) acc.f = round_to(t, acc.f + b.f);
    else acc.i = wrap(t, (uint64_t)acc.i + (uint64_t)b.i);
    return acc;
}

static KVal red_max(KType t, KVal acc, KVal b) {
    if (!is_float(t)) return acc.i > b.i ? acc : b;
    return isnan(acc.f) || acc.f > b.f ? acc : b; /* a NaN b fails the comparison */
}

/* The bracket opened at j: runs its body extent times, combining b. */
static bool reduce(Eval *e, int j, int64_t elem) {
    const KernelDef *k = e->k;
    int end = e->match[j];
    const KInst *ei = &k->insts[end];
    KType t = k->insts[ei->b].type;
    bool fl = is_float(t);
    KVal acc = {0, 0};
    int64_t arg = 0;
    if (ei->red != KR_SUM) {
        acc.f = -INFINITY;
        acc.i = t == KT_I32 ? INT32_MIN : INT64_MIN;
    }
    for (int64_t r = 0; r < k->insts[j].i; r++) {
        e->v[j].i = r;
        if (!run(e, j + 1, end, elem)) return false;
        KVal b = e->v[ei->b];
        switch (ei->red) {
        case KR_SUM: acc = red_sum(t, acc, b); break;
        case KR_MAX: acc = red_max(t, acc, b); break;
        case KR_ARGMAX: {
            bool upd = fl ? !isnan(acc.f) && (isnan(b.f) || b.f > acc.f) : b.i > acc.i;
            if (upd) {
                acc = b;
                arg = r;
            }
            break;
        }
        }
    }
    if (ei->red == KR_ARGMAX) {
        e->v[end].f = 0;
        e->v[end].i = (int64_t)(int32_t)arg;
    } else {
        e->v[end] = acc;
    }
    return true;
}

static bool run(Eval *e, int lo, int hi, int64_t elem) {
    for (int j = lo; j < hi; j++) {
        if (e->k->insts[j].kind == KI_RED_BEGIN) {
            if (!reduce(e, j, elem)) return false;
            j = e->match[j];
        } else if (!step(e, j, elem)) {
            return false;
        }
    }
    return true;
}

bool kernel_eval(const KernelDef *k, void *const *bufs, int64_t begin, int64_t end, Diag *d) {
    if (!kernel_verify(k, d)) return false;
    if (begin < 0 || end < begin || end > k->domain)
        return diag_error(d, EXIT_RUNTIME, "kernel '%s': range [%lld, %lld) outside domain %lld",
                          k->name, (long long)begin, (long long)end, (long long)k->domain);
    size_t n = (size_t)k->ninsts + 1;
    Eval e = {k, bufs, calloc(n, sizeof(KVal)), malloc(n * sizeof(int)), d};
    int *stack = malloc(n * sizeof(int));
    if (!e.v || !e.match || !stack) abort();
    int depth = 0;
    for (int j = 0; j < k->ninsts; j++) {
        if (k->insts[j].kind == KI_RED_BEGIN) stack[depth++] = j;
        if (k->insts[j].kind == KI_RED_END) e.match[stack[--depth]] = j;
    }
    free(stack);
    bool ok = true;
    for (int64_t i = begin; i < end && ok; i++) ok = run(&e, 0, k->ninsts, i);
    free(e.v);
    free(e.match);
    return ok;
}
