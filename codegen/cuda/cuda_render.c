/* Kernel IR -> CUDA C (see cuda_render.h). Each instruction j becomes one
 * statement defining v<j>: a primitive of codegen/kir/kernel.h spelled as a
 * C operator or a prelude function of one line. */
#include "codegen/cuda/cuda_render.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool is_float(KType t) { return t == KT_F32 || t == KT_F64; }

const char *cuda_ctype(KType t) {
    static const char *const names[KT_COUNT] = {"float", "double", "i32", "i64", "u8"};
    return (unsigned)t < KT_COUNT ? names[t] : "?";
}

/* C type of a value (bool values are C++ bools; buffers hold bytes). */
static const char *vtype(KType t) { return t == KT_BOOL ? "bool" : cuda_ctype(t); }

typedef struct {
    FILE *o;
    const KernelDef *k;
    int *match; /* per KI_RED_BEGIN: its KI_RED_END, and back */
    int depth;  /* loop nesting, for indentation */
} Render;

static void indent(Render *r) {
    for (int i = 0; i < r->depth + 2; i++) fputs("    ", r->o);
}

/* A float constant of type t whose value is (t)v, as the CPU backend's
 * constants are: hex literals are exact; non-finite values by their bits. */
static void float_const(FILE *o, KType t, double v) {
    if (t == KT_F32) {
        float f = (float)v;
        if (isfinite(f)) {
            fprintf(o, "%af", (double)f);
        } else {
            uint32_t b;
            memcpy(&b, &f, 4);
            fprintf(o, "igrc_bits_f(0x%08xu)", b);
        }
    } else if (isfinite(v)) {
        fprintf(o, "%a", v);
    } else {
        uint64_t b;
        memcpy(&b, &v, 8);
        fprintf(o, "igrc_bits_d(0x%016llxull)", (unsigned long long)b);
    }
}

static void const_value(FILE *o, const KInst *in) {
    switch (in->type) {
    case KT_F32:
    case KT_F64: float_const(o, in->type, in->f); break;
    /* decimal, but for the minimum, which has no literal of its type */
    case KT_I32:
        if ((int32_t)in->i == INT32_MIN) fputs("(i32)0x80000000u", o);
        else fprintf(o, "%d", (int)(int32_t)in->i);
        break;
    case KT_I64:
        if (in->i == INT64_MIN) fputs("(i64)0x8000000000000000ull", o);
        else fprintf(o, "%lldll", (long long)in->i);
        break;
    case KT_BOOL:
    case KT_COUNT: fputs(in->i ? "true" : "false", o); break;
    }
}

/* The math library at the value's type (prelude overloads): igrc_<name>. */
static void unary(Render *r, const KInst *in) {
    FILE *o = r->o;
    int a = in->a;
    if (!is_float(in->type)) {
        fprintf(o, "igrc_neg(v%d)", a); /* the integer unary op */
        return;
    }
    if (in->op == KO_NEG) fprintf(o, "-v%d", a);
    else fprintf(o, "igrc_%s(v%d)", kop_name(in->op), a);
}

static const char *c_operator(KOp op) {
    switch (op) {
    case KO_EQ: return "==";
    case KO_NE: return "!=";
    case KO_LT: return "<";
    case KO_LE: return "<=";
    case KO_GT: return ">";
    case KO_GE: return ">=";
    case KO_ADD: return "+";
    case KO_SUB: return "-";
    case KO_MUL: return "*";
    case KO_DIV: return "/";
    case KO_AND: return "&";
    case KO_OR: return "|";
    case KO_XOR: return "^";
    case KO_SHR: case KO_POW: case KO_NEG: case KO_ABS: case KO_EXP: case KO_LOG:
    case KO_SQRT: case KO_TANH: case KO_ERF: case KO_COS: case KO_TRUNC: case KO_COUNT: break;
    }
    return NULL;
}

/* t is the operands' type. Integer add/sub/mul wrap through the prelude's
 * unsigned helpers; shr shifts the unsigned bits. */
static void binary(Render *r, const KInst *in, KType t) {
    FILE *o = r->o;
    int a = in->a, b = in->b;
    if (in->op == KO_POW) {
        fprintf(o, "igrc_pow(v%d, v%d)", a, b);
    } else if (in->op == KO_SHR) {
        fprintf(o, t == KT_I32 ? "(i32)((u32)v%d >> v%d)" : "(i64)((u64)v%d >> v%d)", a, b);
    } else if (!is_float(t) && t != KT_BOOL &&
               (in->op == KO_ADD || in->op == KO_SUB || in->op == KO_MUL)) {
        fprintf(o, "igrc_%s(v%d, v%d)", kop_name(in->op), a, b);
    } else {
        fprintf(o, "(%s)(v%d %s v%d)", vtype(in->type), a, c_operator(in->op), b);
    }
}

/* Never to bool (the verifier); float -> int only for integers in range. */
static void cast(Render *r, KType to, KType from, int a) {
    FILE *o = r->o;
    if (to == from) fprintf(o, "v%d", a);
    else if (from == KT_BOOL) fprintf(o, "(%s)(v%d ? 1 : 0)", vtype(to), a);
    else if (to == KT_I32 && from == KT_I64) fprintf(o, "(i32)(u32)(u64)v%d", a); /* wraps */
    else fprintf(o, "(%s)v%d", vtype(to), a); /* one rounding, or exact */
}

/* The reduction opened at j: accumulator (and argmax index), then the loop. */
static void red_begin(Render *r, int j) {
    const KInst *end = &r->k->insts[r->match[j]];
    KType t = r->k->insts[end->b].type;
    int e = r->match[j];
    indent(r);
    if (end->red == KR_SUM) {
        fprintf(r->o, "%s acc%d = (%s)0;\n", vtype(t), e, vtype(t));
    } else if (is_float(t)) {
        fprintf(r->o, "%s acc%d = -", vtype(t), e);
        float_const(r->o, t, INFINITY);
        fputs(";\n", r->o);
    } else {
        fprintf(r->o, "%s acc%d = %s;\n", vtype(t), e,
                t == KT_I32 ? "(i32)0x80000000u" : t == KT_I64 ? "(i64)0x8000000000000000ull" : "false");
    }
    if (end->red == KR_ARGMAX) {
        indent(r);
        fprintf(r->o, "i32 arg%d = 0;\n", e);
    }
    indent(r);
    fprintf(r->o, "for (i64 v%d = 0; v%d < %lldll; v%d++) {\n", j, j, (long long)r->k->insts[j].i, j);
    r->depth++;
}

static void red_end(Render *r, int e) {
    const KInst *in = &r->k->insts[e];
    KType t = r->k->insts[in->b].type;
    FILE *o = r->o;
    int b = in->b;
    indent(r);
    if (in->red == KR_SUM) {
        if (is_float(t)) fprintf(o, "acc%d = acc%d + v%d;\n", e, e, b);
        else if (t == KT_BOOL) fprintf(o, "acc%d = acc%d || v%d;\n", e, e, b);
        else fprintf(o, "acc%d = igrc_add(acc%d, v%d);\n", e, e, b);
    } else if (in->red == KR_MAX) {
        if (is_float(t)) fprintf(o, "acc%d = igrc_max(acc%d, v%d);\n", e, e, b);
        else fprintf(o, "acc%d = v%d > acc%d ? v%d : acc%d;\n", e, b, e, b, e);
    } else {
        /* the first maximal b wins; a NaN b counts as maximal, the first NaN wins */
        if (is_float(t))
            fprintf(o, "if (!igrc_isnan(acc%d) && (igrc_isnan(v%d) || v%d > acc%d)) ", e, b, b, e);
        else
            fprintf(o, "if (v%d > acc%d) ", b, e);
        fprintf(o, "{ acc%d = v%d; arg%d = (i32)v%d; }\n", e, b, e, in->a);
    }
    r->depth--;
    indent(r);
    fputs("}\n", o);
    indent(r);
    if (in->red == KR_ARGMAX) fprintf(o, "const i32 v%d = arg%d;\n", e, e);
    else fprintf(o, "const %s v%d = acc%d;\n", vtype(t), e, e);
}

static void load_store(Render *r, int j, const KInst *in) {
    FILE *o = r->o;
    if (in->kind == KI_LOAD) {
        fprintf(o, "const %s v%d = ", vtype(in->type), j);
        fprintf(o, in->type == KT_BOOL ? "b%d[v%d] != 0;\n" : "b%d[v%d];\n", in->buf, in->a);
    } else if (in->type == KT_BOOL) {
        fprintf(o, "b%d[v%d] = (u8)(v%d ? 1 : 0);\n", in->buf, in->a, in->b);
    } else {
        fprintf(o, "b%d[v%d] = v%d;\n", in->buf, in->a, in->b);
    }
}

static void inst(Render *r, int j) {
    const KInst *in = &r->k->insts[j];
    FILE *o = r->o;
    if (in->kind == KI_RED_BEGIN) return red_begin(r, j);
    if (in->kind == KI_RED_END) return red_end(r, j);
    indent(r);
    if (in->kind == KI_LOAD || in->kind == KI_STORE) return load_store(r, j, in);
    fprintf(o, "const %s v%d = ", vtype(in->type), j);
    switch (in->kind) {
    case KI_INDEX: fputs("e", o); break;
    case KI_CONST: const_value(o, in); break;
    case KI_UNARY: unary(r, in); break;
    case KI_BINARY: binary(r, in, r->k->insts[in->a].type); break;
    case KI_IDIV: fprintf(o, "(v%d ? v%d / v%d : 0)", in->b, in->a, in->b); break;
    case KI_IMOD: fprintf(o, "(v%d ? v%d %% v%d : 0)", in->b, in->a, in->b); break;
    case KI_SELECT: fprintf(o, "v%d ? v%d : v%d", in->a, in->b, in->c); break;
    case KI_CAST: cast(r, in->type, r->k->insts[in->a].type, in->a); break;
    case KI_LOAD: case KI_STORE: case KI_RED_BEGIN: case KI_RED_END: case KI_COUNT: break;
    }
    fputs(";\n", o);
}

static void signature(FILE *o, const KernelDef *k, int index) {
    fprintf(o, "extern \"C\" __global__ void __launch_bounds__(256) igrc_k%d(", index);
    for (int b = 0; b < k->nbufs; b++)
        fprintf(o, "%s%s *__restrict__ b%d, ", k->bufs[b].written ? "" : "const ",
                cuda_ctype(k->bufs[b].type), b);
    fputs("long long begin, long long end) {\n", o);
}

bool cuda_render_kernel(FILE *out, const KernelDef *k, int index, Diag *d) {
    if (!kernel_verify(k, d)) return false;
    int n = k->ninsts;
    Render r = {out, k, malloc(sizeof(int) * (size_t)(n + 1)), 0};
    int *stack = malloc(sizeof(int) * (size_t)(n + 1)), depth = 0;
    if (!r.match || !stack) abort();
    for (int j = 0; j < n; j++) {
        if (k->insts[j].kind == KI_RED_BEGIN) stack[depth++] = j;
        if (k->insts[j].kind == KI_RED_END) r.match[stack[--depth]] = j;
    }
    free(stack);
    fprintf(out, "/* %s: %s */\n", k->name, k->comment ? k->comment : "");
    signature(out, k, index);
    fputs("    for (i64 e = igrc_first(begin); e < end; e += igrc_stride()) {\n", out);
    for (int j = 0; j < n; j++) inst(&r, j);
    fputs("    }\n}\n\n", out);
    free(r.match);
    return true;
}

/* ---- modules ---- */

static int count_lines(const char *s, size_t n) {
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += s[i] == '\n';
    return lines;
}

bool cuda_render_module(KernelDef *const *kernels, int n, CudaSource *out, Diag *d) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&text, &len);
    if (!o) return diag_error(d, EXIT_RUNTIME, "cannot allocate the CUDA module text");
    out->first_line = calloc((size_t)n + 1, sizeof(int));
    out->nkernels = n;
    fputs("/* igrc CUDA module: prelude, library kernels, generated kernels */\n", o);
    fputs(igrc_cuda_prelude_src, o);
    fputs("\n", o);
    fputs(igrc_cuda_lib_src, o);
    fputs("\n/* ---- generated kernels ---- */\n\n", o);
    bool ok = true;
    size_t scanned = 0;
    int lines = 0;
    for (int i = 0; ok && i < n; i++) {
        fflush(o);
        lines += count_lines(text + scanned, len - scanned);
        scanned = len;
        out->first_line[i] = lines + 1;
        ok = cuda_render_kernel(o, kernels[i], i, d);
    }
    fclose(o);
    out->text = text;
    if (!ok) cuda_source_free(out);
    return ok;
}

void cuda_source_free(CudaSource *s) {
    free(s->text);
    free(s->first_line);
    memset(s, 0, sizeof *s);
}

int cuda_source_kernel_at(const CudaSource *s, int line) {
    int k = -1;
    for (int i = 0; i < s->nkernels; i++)
        if (s->first_line[i] <= line) k = i;
    return k;
}
