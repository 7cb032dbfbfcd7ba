/* Reference evaluator for the kernel IR: plain C, one element at a time.
 *
 * Float values are held in double and rounded to the value's type after
 * every instruction (f32: round to float), which for + - * / sqrt, max, min
 * and comparisons gives exactly the f32 operation's result. Integer values
 * are held in int64 and wrapped to their type. The formulas are the tensor
 * interpreter's (ir/interp_elem.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/philox.h"
#include "codegen/kir/kernel.h"
#include "ir/scalar.h"

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
    default: return (int64_t)x;
    }
}

/* The interpreter's rule for float -> i32: truncate, wrap modulo 2^32,
 * non-finite gives 0. */
static int64_t f_to_i32(double v) {
    if (!isfinite(v)) return 0;
    double t = trunc(v);
    double r = fmod(t, 4294967296.0);
    return (int64_t)(int32_t)(uint32_t)(int64_t)r;
}

/* float -> i64: truncate, saturate, NaN gives 0 (llvm.fptosi.sat). */
static int64_t f_to_i64(double v) {
    if (isnan(v)) return 0;
    if (v >= 9223372036854775808.0) return INT64_MAX;
    if (v < -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

static int64_t unary_i(OpKind op, KType t, int64_t x) {
    switch (op) {
    case OP_NEG: return wrap(t, 0 - (uint64_t)x);
    case OP_ABS: return x < 0 ? wrap(t, 0 - (uint64_t)x) : x;
    case OP_SIGN: return (x > 0) - (x < 0);
    case OP_RELU: return x > 0 ? x : 0;
    case OP_NOT: return x == 0;
    default: return x;
    }
}


static KVal binary(OpKind op, KType t, KVal a, KVal b) {
    KVal r = {0, 0};
    if (is_float(t)) {
        double x = a.f, y = b.f;
        switch (op) {
        case OP_ADD: r.f = x + y; break;
        case OP_SUB: r.f = x - y; break;
        case OP_MUL: r.f = x * y; break;
        case OP_DIV: r.f = x / y; break;
        case OP_MAX: r.f = ir_max_f64(x, y); break;
        case OP_MIN: r.f = ir_min_f64(x, y); break;
        case OP_POW: r.f = pow(x, y); break;
        case OP_EQ: r.i = x == y; break;
        case OP_NE: r.i = x != y; break;
        case OP_LT: r.i = x < y; break;
        case OP_LE: r.i = x <= y; break;
        case OP_GT: r.i = x > y; break;
        case OP_GE: r.i = x >= y; break;
        default: break;
        }
        r.f = round_to(t, r.f);
        return r;
    }
    int64_t x = a.i, y = b.i;
    switch (op) {
    case OP_ADD: r.i = wrap(t, (uint64_t)x + (uint64_t)y); break;
    case OP_SUB: r.i = wrap(t, (uint64_t)x - (uint64_t)y); break;
    case OP_MUL: r.i = wrap(t, (uint64_t)x * (uint64_t)y); break;
    case OP_DIV: r.i = y == 0 ? 0 : y == -1 ? wrap(t, 0 - (uint64_t)x) : x / y; break;
    case OP_MAX: r.i = x > y ? x : y; break;
    case OP_MIN: r.i = x < y ? x : y; break;
    case OP_AND: r.i = x && y; break;
    case OP_OR: r.i = x || y; break;
    case OP_EQ: r.i = x == y; break;
    case OP_NE: r.i = x != y; break;
    case OP_LT: r.i = x < y; break;
    case OP_LE: r.i = x <= y; break;
    case OP_GT: r.i = x > y; break;
    case OP_GE: r.i = x >= y; break;
    default: break;
    }
    return r;
}

static KVal cast(KType to, KType from, KVal a) {
    KVal r = {0, 0};
    if (is_float(from)) {
        double x = a.f;
        switch (to) {
        case KT_F32: r.f = (double)(float)x; break;
        case KT_F64: r.f = x; break;
        case KT_I32: r.i = f_to_i32(x); break;
        case KT_I64: r.i = f_to_i64(x); break;
        default: r.i = x != 0; break;
        }
    } else {
        int64_t x = a.i;
        switch (to) {
        case KT_F32: r.f = (double)(float)x; break; /* one rounding, as sitofp */
        case KT_F64: r.f = (double)x; break;
        default: r.i = wrap(to, (uint64_t)x); break;
        }
    }
    return r;
}

static double random_val(const KInst *in, KVal seed, KVal step, KVal index) {
    uint32_t s = (uint32_t)seed.i, st = (uint32_t)step.i, stream = (uint32_t)in->i;
    uint64_t idx = (uint64_t)index.i;
    switch (in->rand) {
    case KRAND_NORMAL: return round_to(in->type, philox_normal(s, st, stream, idx));
    case KRAND_BERNOULLI: return philox_uniform(s, st, stream, idx) < in->f ? 1.0 : 0.0;
    default: return round_to(in->type, philox_uniform(s, st, stream, idx));
    }
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
    default: r->i = ((const unsigned char *)p)[idx] != 0; break;
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
    default: ((unsigned char *)p)[idx] = x.i != 0; break;
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
    case KI_UNARY:
        if (is_float(in->type))
            r->f = round_to(in->type, ir_unary_f64(in->op, v[in->a].f, in->f));
        else
            r->i = unary_i(in->op, in->type, v[in->a].i);
        return true;
    case KI_BINARY: *r = binary(in->op, e->k->insts[in->a].type, v[in->a], v[in->b]); return true;
    case KI_IDIV: r->i = v[in->b].i ? v[in->a].i / v[in->b].i : 0; return true;
    case KI_IMOD: r->i = v[in->b].i ? v[in->a].i % v[in->b].i : 0; return true;
    case KI_SELECT: *r = v[in->a].i ? v[in->b] : v[in->c]; return true;
    case KI_CAST: *r = cast(in->type, e->k->insts[in->a].type, v[in->a]); return true;
    case KI_RANDOM: r->f = random_val(in, v[in->a], v[in->b], v[in->c]); return true;
    default: return true;
    }
}

static bool run(Eval *e, int lo, int hi, int64_t elem);

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
        case KR_SUM: acc = binary(OP_ADD, t, acc, b); break;
        case KR_MAX: acc = binary(OP_MAX, t, acc, b); break;
        default: {
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
