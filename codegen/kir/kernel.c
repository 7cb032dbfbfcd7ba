/* The kernel IR: builders, type helpers, verifier, text form, hashing. */
#include "codegen/kir/kernel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- types --------------------------------------------------------------- */

const char *ktype_name(KType t) {
    static const char *const names[KT_COUNT] = {"f32", "f64", "i32", "i64", "bool"};
    return (unsigned)t < KT_COUNT ? names[t] : "?";
}

KType ktype_of(DType t) {
    switch (t) {
    case DT_F64: return KT_F64;
    case DT_I32: return KT_I32;
    case DT_BOOL: return KT_BOOL;
    case DT_F32:
    case DT_COUNT: break;
    }
    return KT_F32;
}

size_t ktype_size(KType t) {
    switch (t) {
    case KT_F64:
    case KT_I64: return 8;
    case KT_BOOL: return 1;
    case KT_F32:
    case KT_I32:
    case KT_COUNT: break;
    }
    return 4;
}

static bool kt_float(KType t) { return t == KT_F32 || t == KT_F64; }

const char *kop_name(KOp op) {
    static const char *const names[KO_COUNT] = {
#define KIR_OP_NAME(e, name) name,
        KIR_OPS(KIR_OP_NAME)
#undef KIR_OP_NAME
    };
    return (unsigned)op < KO_COUNT ? names[op] : "?";
}

bool kop_is_compare(KOp op) { return op >= KO_EQ && op <= KO_GE; }

/* ---- building -------------------------------------------------------------- */

static char *xstrdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (!p) abort();
    memcpy(p, s, n);
    return p;
}

static void *xgrow(void *p, int *cap, size_t elem) {
    int nc = *cap ? *cap * 2 : 16;
    void *q = realloc(p, (size_t)nc * elem);
    if (!q) abort();
    *cap = nc;
    return q;
}

KernelDef *kernel_new(const char *name, int64_t domain) {
    KernelDef *k = calloc(1, sizeof *k);
    if (!k) abort();
    k->name = xstrdup(name ? name : "kernel");
    k->domain = domain;
    return k;
}

void kernel_free(KernelDef *k) {
    if (!k) return;
    for (int i = 0; i < k->nbufs; i++) free((char *)k->bufs[i].name);
    free(k->bufs);
    free(k->insts);
    free(k->name);
    free(k->comment);
    free(k);
}

void kernel_set_comment(KernelDef *k, const char *comment) {
    free(k->comment);
    k->comment = xstrdup(comment);
}

int kernel_add_buf(KernelDef *k, KType t, int64_t numel, bool written, const char *name) {
    if (k->nbufs == k->bufcap) k->bufs = xgrow(k->bufs, &k->bufcap, sizeof *k->bufs);
    k->bufs[k->nbufs] = (KBuf){t, written, numel, xstrdup(name)};
    return k->nbufs++;
}

static KType type_of(const KernelDef *k, int v) {
    return v >= 0 && v < k->ninsts ? k->insts[v].type : KT_F32;
}

static int add(KernelDef *k, KInst in) {
    if (k->ninsts == k->instcap) k->insts = xgrow(k->insts, &k->instcap, sizeof *k->insts);
    k->insts[k->ninsts] = in;
    return k->ninsts++;
}

static KInst inst(KInstKind kind, KType t, int a, int b, int c) {
    return (KInst){.kind = kind, .type = t, .op = KO_COUNT, .a = a, .b = b, .c = c, .buf = -1};
}

int k_index(KernelDef *k) { return add(k, inst(KI_INDEX, KT_I64, -1, -1, -1)); }

int k_const_f(KernelDef *k, KType t, double v) {
    if (!kt_float(t)) return k_const_i(k, t, t == KT_BOOL ? v != 0 : isfinite(v) ? (int64_t)v : 0);
    KInst in = inst(KI_CONST, t, -1, -1, -1);
    in.f = t == KT_F32 ? (double)(float)v : v;
    return add(k, in);
}

int k_const_i(KernelDef *k, KType t, int64_t v) {
    KInst in = inst(KI_CONST, t, -1, -1, -1);
    if (kt_float(t))
        in.f = t == KT_F32 ? (double)(float)v : (double)v;
    else
        in.i = t == KT_BOOL ? v != 0 : t == KT_I32 ? (int64_t)(int32_t)(uint32_t)v : v;
    return add(k, in);
}

int k_load(KernelDef *k, int buf, int index) {
    KType t = buf >= 0 && buf < k->nbufs ? k->bufs[buf].type : KT_F32;
    KInst in = inst(KI_LOAD, t, index, -1, -1);
    in.buf = buf;
    return add(k, in);
}

void k_store(KernelDef *k, int buf, int index, int value) {
    KInst in = inst(KI_STORE, type_of(k, value), index, value, -1);
    in.buf = buf;
    add(k, in);
}

int k_unary(KernelDef *k, KOp op, int a) {
    KInst in = inst(KI_UNARY, type_of(k, a), a, -1, -1);
    in.op = op;
    return add(k, in);
}

int k_binary(KernelDef *k, KOp op, int a, int b) {
    KInst in = inst(KI_BINARY, kop_is_compare(op) ? KT_BOOL : type_of(k, a), a, b, -1);
    in.op = op;
    return add(k, in);
}

int k_idiv(KernelDef *k, int a, int b) { return add(k, inst(KI_IDIV, KT_I64, a, b, -1)); }
int k_imod(KernelDef *k, int a, int b) { return add(k, inst(KI_IMOD, KT_I64, a, b, -1)); }

int k_select(KernelDef *k, int cond, int a, int b) {
    return add(k, inst(KI_SELECT, type_of(k, a), cond, a, b));
}

int k_cast(KernelDef *k, KType to, int a) { return add(k, inst(KI_CAST, to, a, -1, -1)); }

int k_red_begin(KernelDef *k, int64_t extent) {
    KInst in = inst(KI_RED_BEGIN, KT_I64, -1, -1, -1);
    in.i = extent;
    return add(k, in);
}

int k_red_end(KernelDef *k, KReduce red, int begin, int value) {
    KInst in = inst(KI_RED_END, red == KR_ARGMAX ? KT_I32 : type_of(k, value), begin, value, -1);
    in.red = red;
    return add(k, in);
}

/* ---- verification ------------------------------------------------------------ */

static const char *const kind_names[KI_COUNT] = {
    "index", "const", "load", "store", "unary", "binary", "idiv",
    "imod", "select", "cast", "red_begin", "red_end"};

static const char *kind_name(KInstKind kd) {
    return (unsigned)kd < KI_COUNT ? kind_names[kd] : "?";
}

typedef struct {
    const KernelDef *k;
    Diag *d;
    int j;          /* the instruction being checked */
    int *scope;     /* per value: innermost bracket (begin id) it lives in, -1 top */
    bool *open;     /* per begin id: bracket still open */
    int *stack;
    int depth;
} Ver;

static bool vfail(Ver *v, const char *fmt, const char *a, const char *b) {
    char what[512];
    snprintf(what, sizeof what, fmt, a ? a : "", b ? b : "");
    return diag_error(v->d, EXIT_RUNTIME, "kernel '%s': %%%d (%s): %s", v->k->name, v->j,
                      kind_name(v->k->insts[v->j].kind), what);
}

/* Operand `which` (a/b/c) of instruction j: defined earlier, visible here,
 * a value (not a store), and of type want (KT_COUNT: any). */
static bool operand(Ver *v, const char *which, int id, KType want) {
    char ids[32];
    snprintf(ids, sizeof ids, "%%%d", id);
    if (id < 0 || id >= v->j) {
        char m[96];
        snprintf(m, sizeof m, "operand %s = %s is not an earlier value", which, ids);
        return vfail(v, "%s", m, NULL);
    }
    const KInst *u = &v->k->insts[id];
    if (u->kind == KI_STORE) {
        char m[96];
        snprintf(m, sizeof m, "operand %s = %s is a store (no value)", which, ids);
        return vfail(v, "%s", m, NULL);
    }
    int s = v->scope[id];
    if (s >= 0 && !v->open[s]) {
        char m[160];
        snprintf(m, sizeof m,
                 "operand %s = %s is defined inside the reduction opened at %%%d, "
                 "which is closed here",
                 which, ids, s);
        return vfail(v, "%s", m, NULL);
    }
    if (want != KT_COUNT && u->type != want) {
        char m[160];
        snprintf(m, sizeof m, "operand %s = %s has type %s, expected %s", which, ids,
                 ktype_name(u->type), ktype_name(want));
        return vfail(v, "%s", m, NULL);
    }
    return true;
}

static bool want_kind(Ver *v, const KInst *in, KType t, bool ok, const char *what) {
    if (ok) return true;
    char m[128];
    snprintf(m, sizeof m, "%s expects %s operands, got %s", kop_name(in->op), what, ktype_name(t));
    return vfail(v, "%s", m, NULL);
}

static bool unary_ok(Ver *v, const KInst *in) {
    KType t = v->k->insts[in->a].type;
    switch (in->op) {
    case KO_NEG: return want_kind(v, in, t, t != KT_BOOL, "numeric");
    case KO_ABS:
    case KO_EXP:
    case KO_LOG:
    case KO_SQRT:
    case KO_TANH:
    case KO_ERF:
    case KO_COS:
    case KO_TRUNC: return want_kind(v, in, t, kt_float(t), "float");
    case KO_ADD: case KO_SUB: case KO_MUL: case KO_DIV: case KO_POW: case KO_AND:
    case KO_OR: case KO_XOR: case KO_SHR: case KO_EQ: case KO_NE: case KO_LT:
    case KO_LE: case KO_GT: case KO_GE: case KO_COUNT: break;
    }
    return vfail(v, "'%s' is not a unary op of the kernel IR%s", kop_name(in->op), NULL);
}

static bool binary_ok(Ver *v, const KInst *in) {
    if (!operand(v, "b", in->b, v->k->insts[in->a].type)) return false;
    KType t = v->k->insts[in->a].type;
    switch (in->op) {
    case KO_ADD:
    case KO_SUB:
    case KO_MUL:
    case KO_DIV: return want_kind(v, in, t, t != KT_BOOL, "numeric");
    case KO_POW: return want_kind(v, in, t, kt_float(t), "float");
    case KO_AND:
    case KO_OR:
    case KO_XOR: return want_kind(v, in, t, !kt_float(t), "integer or bool");
    case KO_SHR: return want_kind(v, in, t, t == KT_I32 || t == KT_I64, "integer");
    case KO_EQ:
    case KO_NE:
    case KO_LT:
    case KO_LE:
    case KO_GT:
    case KO_GE:
        return in->type == KT_BOOL ||
               vfail(v, "comparison %s must have type bool, not %s", kop_name(in->op),
                     ktype_name(in->type));
    case KO_NEG: case KO_ABS: case KO_EXP: case KO_LOG: case KO_SQRT: case KO_TANH:
    case KO_ERF: case KO_COS: case KO_TRUNC: case KO_COUNT: break;
    }
    return vfail(v, "'%s' is not a binary op of the kernel IR%s", kop_name(in->op), NULL);
}

static bool cast_ok(Ver *v, const KInst *in) {
    if (!operand(v, "a", in->a, KT_COUNT)) return false;
    if (in->type != KT_BOOL) return true;
    return vfail(v, "casts to bool are comparisons (ne x, 0)%s%s", NULL, NULL);
}

static bool result_type(Ver *v, const KInst *in, KType want) {
    return in->type == want ||
           vfail(v, "result type %s, expected %s", ktype_name(in->type), ktype_name(want));
}

static bool buffer_ok(Ver *v, const KInst *in) {
    if (in->buf < 0 || in->buf >= v->k->nbufs) {
        char m[64];
        snprintf(m, sizeof m, "buffer b%d does not exist", in->buf);
        return vfail(v, "%s", m, NULL);
    }
    const KBuf *b = &v->k->bufs[in->buf];
    if (in->type != b->type) {
        char m[128];
        snprintf(m, sizeof m, "type %s does not match buffer b%d's type %s",
                 ktype_name(in->type), in->buf, ktype_name(b->type));
        return vfail(v, "%s", m, NULL);
    }
    if (in->kind == KI_STORE && !b->written) {
        char m[96];
        snprintf(m, sizeof m, "stores to buffer b%d, which is not marked written", in->buf);
        return vfail(v, "%s", m, NULL);
    }
    return true;
}

static bool red_end_ok(Ver *v, const KInst *in) {
    if (v->depth == 0 || in->a != v->stack[v->depth - 1]) {
        char m[128];
        if (v->depth == 0)
            snprintf(m, sizeof m, "closes %%%d but no reduction is open", in->a);
        else
            snprintf(m, sizeof m, "closes %%%d but the innermost open reduction is %%%d",
                     in->a, v->stack[v->depth - 1]);
        return vfail(v, "%s", m, NULL);
    }
    if (!operand(v, "b", in->b, KT_COUNT)) return false;
    KType t = v->k->insts[in->b].type;
    if (t == KT_BOOL) return vfail(v, "reduces a bool value%s%s", NULL, NULL);
    switch (in->red) {
    case KR_SUM:
    case KR_MAX: return result_type(v, in, t);
    case KR_ARGMAX: return result_type(v, in, KT_I32);
    }
    return vfail(v, "unknown reduction%s%s", NULL, NULL); /* a value outside KReduce */
}

static bool inst_ok(Ver *v, const KInst *in) {
    if ((unsigned)in->type >= KT_COUNT) return vfail(v, "invalid type%s%s", NULL, NULL);
    switch (in->kind) {
    case KI_INDEX: return result_type(v, in, KT_I64);
    case KI_CONST:
        if (in->type == KT_BOOL && in->i != 0 && in->i != 1)
            return vfail(v, "bool constant must be 0 or 1%s%s", NULL, NULL);
        if (in->type == KT_I32 && (in->i < INT32_MIN || in->i > INT32_MAX))
            return vfail(v, "i32 constant out of range%s%s", NULL, NULL);
        return true;
    case KI_LOAD: return operand(v, "a", in->a, KT_I64) && buffer_ok(v, in);
    case KI_STORE:
        return operand(v, "a", in->a, KT_I64) && operand(v, "b", in->b, in->type) &&
               buffer_ok(v, in);
    case KI_UNARY:
        return operand(v, "a", in->a, KT_COUNT) &&
               result_type(v, in, v->k->insts[in->a].type) && unary_ok(v, in);
    case KI_BINARY:
        if (!operand(v, "a", in->a, KT_COUNT) || !binary_ok(v, in)) return false;
        return kop_is_compare(in->op) || result_type(v, in, v->k->insts[in->a].type);
    case KI_IDIV:
    case KI_IMOD:
        return operand(v, "a", in->a, KT_I64) && operand(v, "b", in->b, KT_I64) &&
               result_type(v, in, KT_I64);
    case KI_SELECT:
        return operand(v, "a", in->a, KT_BOOL) && operand(v, "b", in->b, in->type) &&
               operand(v, "c", in->c, in->type);
    case KI_CAST: return cast_ok(v, in);
    case KI_RED_BEGIN:
        if (in->i < 0) return vfail(v, "negative reduction extent%s%s", NULL, NULL);
        return result_type(v, in, KT_I64);
    case KI_RED_END: return red_end_ok(v, in);
    case KI_COUNT: break;
    }
    return vfail(v, "unknown instruction kind%s%s", NULL, NULL);
}

static bool is_ident(const char *s) {
    if (!s || !*s || !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    for (const char *p = s; *p; p++)
        if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

static bool header_ok(const KernelDef *k, Diag *d) {
    if (!is_ident(k->name))
        return diag_error(d, EXIT_RUNTIME, "kernel '%s': name is not a C identifier",
                          k->name ? k->name : "(null)");
    if (k->domain < 0)
        return diag_error(d, EXIT_RUNTIME, "kernel '%s': negative domain %lld", k->name,
                          (long long)k->domain);
    for (int i = 0; i < k->nbufs; i++)
        if ((unsigned)k->bufs[i].type >= KT_COUNT || k->bufs[i].numel < 0)
            return diag_error(d, EXIT_RUNTIME, "kernel '%s': buffer b%d has an invalid %s",
                              k->name, i, k->bufs[i].numel < 0 ? "size" : "type");
    return true;
}

bool kernel_verify(const KernelDef *k, Diag *d) {
    if (!header_ok(k, d)) return false;
    size_t n = (size_t)k->ninsts + 1;
    Ver v = {k, d, 0, malloc(n * sizeof(int)), calloc(n, sizeof(bool)),
             malloc(n * sizeof(int)), 0};
    if (!v.scope || !v.open || !v.stack) abort();
    bool ok = true;
    for (int j = 0; j < k->ninsts && ok; j++) {
        v.j = j;
        const KInst *in = &k->insts[j];
        ok = inst_ok(&v, in);
        if (!ok) break;
        if (in->kind == KI_RED_BEGIN) {
            v.scope[j] = j;
            v.open[j] = true;
            v.stack[v.depth++] = j;
        } else if (in->kind == KI_RED_END) {
            v.open[in->a] = false;
            v.depth--;
            v.scope[j] = v.depth ? v.stack[v.depth - 1] : -1;
        } else {
            v.scope[j] = v.depth ? v.stack[v.depth - 1] : -1;
        }
    }
    if (ok && v.depth > 0)
        ok = diag_error(d, EXIT_RUNTIME, "kernel '%s': reduction opened at %%%d is never closed",
                        k->name, v.stack[v.depth - 1]);
    free(v.scope);
    free(v.open);
    free(v.stack);
    return ok;
}

/* ---- text form ------------------------------------------------------------------ */

static const char *red_name(KReduce r) {
    return r == KR_SUM ? "sum" : r == KR_MAX ? "max" : r == KR_ARGMAX ? "argmax" : "?";
}


static void print_inst(const KernelDef *k, int j, FILE *out) {
    const KInst *in = &k->insts[j];
    const char *t = ktype_name(in->type);
    if (in->kind == KI_RED_END) fputs("} ", out);
    if (in->kind != KI_STORE) fprintf(out, "%%%d = ", j);
    switch (in->kind) {
    case KI_INDEX: fprintf(out, "index : %s", t); break;
    case KI_CONST:
        if (kt_float(in->type))
            fprintf(out, "const %.17g : %s", in->f, t);
        else
            fprintf(out, "const %lld : %s", (long long)in->i, t);
        break;
    case KI_LOAD: fprintf(out, "load b%d[%%%d] : %s", in->buf, in->a, t); break;
    case KI_STORE: fprintf(out, "store b%d[%%%d] = %%%d : %s", in->buf, in->a, in->b, t); break;
    case KI_UNARY: fprintf(out, "%s %%%d : %s", kop_name(in->op), in->a, t); break;
    case KI_BINARY: fprintf(out, "%s %%%d, %%%d : %s", kop_name(in->op), in->a, in->b, t); break;
    case KI_IDIV: fprintf(out, "idiv %%%d, %%%d : %s", in->a, in->b, t); break;
    case KI_IMOD: fprintf(out, "imod %%%d, %%%d : %s", in->a, in->b, t); break;
    case KI_SELECT: fprintf(out, "select %%%d, %%%d, %%%d : %s", in->a, in->b, in->c, t); break;
    case KI_CAST: fprintf(out, "cast %%%d : %s", in->a, t); break;
    case KI_RED_BEGIN: fprintf(out, "red_begin %lld : %s {", (long long)in->i, t); break;
    case KI_RED_END:
        fprintf(out, "red_end %s %%%d, %%%d : %s", red_name(in->red), in->a, in->b, t);
        break;
    case KI_COUNT: fprintf(out, "? : %s", t); break;
    }
}

void kernel_print(const KernelDef *k, FILE *out) {
    fprintf(out, "kernel %s domain=%lld\n", k->name, (long long)k->domain);
    if (k->comment) fprintf(out, "# %s\n", k->comment);
    for (int i = 0; i < k->nbufs; i++) {
        const KBuf *b = &k->bufs[i];
        fprintf(out, "  b%d: %s[%lld] %s", i, ktype_name(b->type), (long long)b->numel,
                b->written ? "out" : "in");
        if (b->name) fprintf(out, " \"%s\"", b->name);
        fputc('\n', out);
    }
    int depth = 1;
    for (int j = 0; j < k->ninsts; j++) {
        if (k->insts[j].kind == KI_RED_END && depth > 1) depth--;
        for (int s = 0; s < depth; s++) fputs("  ", out);
        print_inst(k, j, out);
        fputc('\n', out);
        if (k->insts[j].kind == KI_RED_BEGIN) depth++;
    }
}

/* ---- hashing ------------------------------------------------------------------------ */

/* The fields that matter for a kind, the rest zeroed: hashing and equality
 * then ignore whatever a builder left in unused fields. */
static KInst canon(const KInst *in) {
    KInst c;
    memset(&c, 0, sizeof c);
    c.kind = in->kind;
    c.type = in->type;
    c.a = c.b = c.c = c.buf = -1;
    switch (in->kind) {
    case KI_CONST:
        if (kt_float(in->type))
            c.f = in->f;
        else
            c.i = in->i;
        break;
    case KI_LOAD: c.a = in->a; c.buf = in->buf; break;
    case KI_STORE: c.a = in->a; c.b = in->b; c.buf = in->buf; break;
    case KI_UNARY: c.op = in->op; c.a = in->a; break;
    case KI_BINARY: c.op = in->op; c.a = in->a; c.b = in->b; break;
    case KI_IDIV:
    case KI_IMOD: c.a = in->a; c.b = in->b; break;
    case KI_SELECT: c.a = in->a; c.b = in->b; c.c = in->c; break;
    case KI_CAST: c.a = in->a; break;
    case KI_RED_BEGIN: c.i = in->i; break;
    case KI_RED_END: c.red = in->red; c.a = in->a; c.b = in->b; break;
    case KI_INDEX:
    case KI_COUNT: break;
    }
    return c;
}

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0x100000001B3ull;
    return h ^ (h >> 29);
}

static uint64_t fbits(double f) {
    uint64_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

uint64_t kernel_hash(const KernelDef *k) {
    uint64_t h = 0xCBF29CE484222325ull;
    h = mix(h, (uint64_t)k->nbufs);
    for (int i = 0; i < k->nbufs; i++) {
        h = mix(h, (uint64_t)k->bufs[i].type);
        h = mix(h, (uint64_t)k->bufs[i].written);
    }
    h = mix(h, (uint64_t)k->ninsts);
    for (int j = 0; j < k->ninsts; j++) {
        KInst c = canon(&k->insts[j]);
        uint64_t w[] = {(uint64_t)c.kind, (uint64_t)c.type, (uint64_t)c.op, (uint64_t)c.red,
                        (uint64_t)(int64_t)c.a, (uint64_t)(int64_t)c.b,
                        (uint64_t)(int64_t)c.c, (uint64_t)(int64_t)c.buf, (uint64_t)c.i,
                        fbits(c.f)};
        for (size_t q = 0; q < sizeof w / sizeof w[0]; q++) h = mix(h, w[q]);
    }
    return h;
}

bool kernel_same(const KernelDef *a, const KernelDef *b) {
    if (a->nbufs != b->nbufs || a->ninsts != b->ninsts) return false;
    for (int i = 0; i < a->nbufs; i++)
        if (a->bufs[i].type != b->bufs[i].type || a->bufs[i].written != b->bufs[i].written)
            return false;
    for (int j = 0; j < a->ninsts; j++) {
        KInst x = canon(&a->insts[j]), y = canon(&b->insts[j]);
        if (x.kind != y.kind || x.type != y.type || x.op != y.op || x.red != y.red ||
            x.a != y.a || x.b != y.b || x.c != y.c || x.buf != y.buf ||
            x.i != y.i || fbits(x.f) != fbits(y.f))
            return false;
    }
    return true;
}
