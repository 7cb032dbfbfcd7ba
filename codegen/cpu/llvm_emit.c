/* One kernel as LLVM IR: the ABI entry, and the always-inline body with a
 * loop over [begin, end) and nested loops for the reduction brackets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cpu/llvm_internal.h"

#define B (e->b)

static void add_attr(LLVMContextRef c, LLVMValueRef fn, unsigned idx, const char *name) {
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(c, kind, 0));
}

static LLVMValueRef buf_addr(CpuEmit *e, const KInst *in) {
    LLVMTypeRef mt = cpu_mem_type(e->ctx, e->k->bufs[in->buf].type);
    LLVMValueRef idx = e->val[in->a];
    return LLVMBuildInBoundsGEP2(B, mt, e->ptr[in->buf], &idx, 1, "");
}

static LLVMValueRef emit_load(CpuEmit *e, const KInst *in) {
    LLVMTypeRef mt = cpu_mem_type(e->ctx, in->type);
    LLVMValueRef v = LLVMBuildLoad2(B, mt, buf_addr(e, in), "");
    LLVMSetAlignment(v, (unsigned)ktype_size(in->type));
    if (in->type == KT_BOOL) v = LLVMBuildICmp(B, LLVMIntNE, v, LLVMConstInt(mt, 0, 0), "");
    return v;
}

static void emit_store(CpuEmit *e, const KInst *in) {
    LLVMValueRef v = e->val[in->b];
    if (in->type == KT_BOOL) v = LLVMBuildZExt(B, v, LLVMInt8TypeInContext(e->ctx), "");
    LLVMValueRef s = LLVMBuildStore(B, v, buf_addr(e, in));
    LLVMSetAlignment(s, (unsigned)ktype_size(in->type));
}

static LLVMValueRef emit_const(CpuEmit *e, const KInst *in) {
    if (in->type == KT_F32 || in->type == KT_F64) return cpu_fconst(e, in->type, in->f);
    return cpu_iconst(e, in->type, in->i);
}

/* a / b or a % b on non-negative i64; a zero divisor gives 0 (the evaluator's
 * rule) without trapping. Constant divisors become multiplies. */
static LLVMValueRef emit_idiv(CpuEmit *e, const KInst *in) {
    LLVMValueRef a = e->val[in->a], b = e->val[in->b];
    bool mod = in->kind == KI_IMOD;
    if (LLVMIsAConstantInt(b) && LLVMConstIntGetSExtValue(b) > 0)
        return mod ? LLVMBuildURem(B, a, b, "") : LLVMBuildUDiv(B, a, b, "");
    LLVMValueRef zero = cpu_iconst(e, KT_I64, 0);
    LLVMValueRef is0 = LLVMBuildICmp(B, LLVMIntEQ, b, zero, "");
    LLVMValueRef safe = LLVMBuildSelect(B, is0, cpu_iconst(e, KT_I64, 1), b, "");
    LLVMValueRef r = mod ? LLVMBuildURem(B, a, safe, "") : LLVMBuildUDiv(B, a, safe, "");
    return LLVMBuildSelect(B, is0, zero, r, "");
}

/* The reduction's start value: 0, -inf (or the type's minimum), and for
 * argmax index 0. */
static LLVMValueRef red_init(CpuEmit *e, KReduce red, KType t) {
    if (red == KR_SUM) return t == KT_F32 || t == KT_F64 ? cpu_fconst(e, t, 0.0) : cpu_iconst(e, t, 0);
    if (t == KT_F32 || t == KT_F64) return cpu_fconst(e, t, -INFINITY);
    return cpu_iconst(e, t, t == KT_I32 ? INT32_MIN : INT64_MIN);
}

static const KInst *end_of(CpuEmit *e, int j) { return &e->k->insts[e->match[j]]; }

/* KI_RED_BEGIN j with extent >= 1: a do-while loop; the counter and the
 * accumulator are phis whose back edges KI_RED_END fills in. */
static void open_loop(CpuEmit *e, int j) {
    const KInst *end = end_of(e, j);
    KType t = e->k->insts[end->b].type;
    CpuLoop *l = &e->loop[j];
    l->pre = LLVMGetInsertBlock(B);
    l->header = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "red");
    LLVMBuildBr(B, l->header);
    LLVMPositionBuilderAtEnd(B, l->header);
    l->r = LLVMBuildPhi(B, LLVMInt64TypeInContext(e->ctx), "r");
    l->acc = LLVMBuildPhi(B, cpu_type(e->ctx, t), "acc");
    l->arg = end->red == KR_ARGMAX ? LLVMBuildPhi(B, LLVMInt32TypeInContext(e->ctx), "arg") : NULL;
    cpu_counters_open(e, j, &l->ctr);
    e->val[j] = l->r;
}

/* argmax step: take b when acc is not NaN and (b is NaN or b > acc). */
static LLVMValueRef argmax_takes(CpuEmit *e, KType t, LLVMValueRef acc, LLVMValueRef b) {
    if (t != KT_F32 && t != KT_F64) return LLVMBuildICmp(B, LLVMIntSGT, b, acc, "");
    LLVMValueRef ord = LLVMBuildFCmp(B, LLVMRealORD, acc, acc, "");
    return LLVMBuildAnd(B, ord, LLVMBuildFCmp(B, LLVMRealUGT, b, acc, ""), "");
}

/* max step: isnan(acc) ? acc : (acc > b ? acc : b) -- a NaN b fails the
 * comparison and is taken -- as the evaluator's (codegen/kir/kernel_eval.c). */
static LLVMValueRef max_combine(CpuEmit *e, KType t, LLVMValueRef acc, LLVMValueRef b) {
    LLVMValueRef keep = cpu_binary(e, KO_GT, t, acc, b);
    if (t == KT_F32 || t == KT_F64) keep = LLVMBuildOr(B, keep, cpu_binary(e, KO_NE, t, acc, acc), "");
    return LLVMBuildSelect(B, keep, acc, b, "");
}

static LLVMValueRef close_loop(CpuEmit *e, const KInst *in) {
    CpuLoop *l = &e->loop[in->a];
    KType t = e->k->insts[in->b].type;
    LLVMValueRef b = e->val[in->b], next, arg_next = NULL;
    if (in->red == KR_SUM) {
        next = cpu_binary(e, KO_ADD, t, l->acc, b);
    } else if (in->red == KR_MAX) {
        next = max_combine(e, t, l->acc, b);
    } else {
        LLVMValueRef take = argmax_takes(e, t, l->acc, b);
        next = LLVMBuildSelect(B, take, b, l->acc, "");
        LLVMValueRef r32 = LLVMBuildTrunc(B, l->r, LLVMInt32TypeInContext(e->ctx), "");
        arg_next = LLVMBuildSelect(B, take, r32, l->arg, "");
    }
    cpu_counters_step(e, &l->ctr);
    LLVMValueRef r_next = LLVMBuildAdd(B, l->r, cpu_iconst(e, KT_I64, 1), "");
    LLVMValueRef more = LLVMBuildICmp(B, LLVMIntULT, r_next,
                                      cpu_iconst(e, KT_I64, e->k->insts[in->a].i), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(B);
    LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "red.end");
    LLVMBuildCondBr(B, more, l->header, after);
    LLVMAddIncoming(l->r, (LLVMValueRef[]){cpu_iconst(e, KT_I64, 0), r_next},
                    (LLVMBasicBlockRef[]){l->pre, latch}, 2);
    LLVMAddIncoming(l->acc, (LLVMValueRef[]){red_init(e, in->red, t), next},
                    (LLVMBasicBlockRef[]){l->pre, latch}, 2);
    cpu_counters_close(e, &l->ctr, l->pre, latch);
    if (l->arg)
        LLVMAddIncoming(l->arg, (LLVMValueRef[]){LLVMConstInt(LLVMInt32TypeInContext(e->ctx), 0, 0), arg_next},
                        (LLVMBasicBlockRef[]){l->pre, latch}, 2);
    LLVMPositionBuilderAtEnd(B, after);
    return l->arg ? arg_next : next;
}

/* An empty reduction: the start value, and the bracket's body skipped. */
static int skip_empty(CpuEmit *e, int j) {
    const KInst *end = end_of(e, j);
    KType t = e->k->insts[end->b].type;
    e->val[e->match[j]] = end->red == KR_ARGMAX ? cpu_iconst(e, KT_I32, 0) : red_init(e, end->red, t);
    return e->match[j];
}

static LLVMValueRef emit_inst(CpuEmit *e, const KInst *in) {
    LLVMValueRef *v = e->val;
    switch (in->kind) {
    case KI_INDEX: return e->index;
    case KI_CONST: return emit_const(e, in);
    case KI_LOAD: return emit_load(e, in);
    case KI_STORE: emit_store(e, in); return NULL;
    case KI_UNARY: return cpu_unary(e, in, v[in->a]);
    case KI_BINARY: return cpu_binary(e, in->op, e->k->insts[in->a].type, v[in->a], v[in->b]);
    case KI_IDIV:
    case KI_IMOD: return emit_idiv(e, in);
    case KI_SELECT: return LLVMBuildSelect(B, v[in->a], v[in->b], v[in->c], "");
    case KI_CAST: return cpu_cast(e, in->type, e->k->insts[in->a].type, v[in->a]);
    case KI_RED_END: return close_loop(e, in);
    case KI_RED_BEGIN: /* opened by emit_insts */
    case KI_COUNT: break;
    }
    return NULL;
}

static void emit_insts(CpuEmit *e) {
    const KernelDef *k = e->k;
    for (int j = 0; j < k->ninsts; j++) {
        const KInst *in = &k->insts[j];
        if (in->kind == KI_RED_BEGIN) {
            if (in->i == 0)
                j = skip_empty(e, j);
            else
                open_loop(e, j);
            continue;
        }
        LLVMValueRef digit = cpu_counter_value(e, j);
        e->val[j] = digit ? digit : emit_inst(e, in);
    }
}

/* internal void NAME.body(ptr noalias b0, ..., i64 begin, i64 end) */
static LLVMValueRef body_fn(CpuEmit *e) {
    const KernelDef *k = e->k;
    int np = k->nbufs + 2;
    LLVMTypeRef *ps = malloc((size_t)np * sizeof *ps);
    if (!ps) abort();
    for (int i = 0; i < k->nbufs; i++) ps[i] = LLVMPointerTypeInContext(e->ctx, 0);
    ps[k->nbufs] = ps[k->nbufs + 1] = LLVMInt64TypeInContext(e->ctx);
    LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(e->ctx), ps, (unsigned)np, 0);
    free(ps);
    size_t n = strlen(k->name) + 8;
    char *name = malloc(n);
    if (!name) abort();
    snprintf(name, n, "%s.body", k->name);
    LLVMValueRef fn = LLVMAddFunction(e->mod, name, fty);
    free(name);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    /* Not inlined into the entry: inlining turns every noalias parameter
     * into scoped alias metadata on every access, quadratic in the buffers
     * (O3 took minutes on kernels of hundreds of buffers); the loop is all
     * in here, so the call costs nothing. */
    add_attr(e->ctx, fn, LLVMAttributeFunctionIndex, "noinline");
    add_attr(e->ctx, fn, LLVMAttributeFunctionIndex, "nounwind");
    for (int i = 0; i < k->nbufs; i++) {
        add_attr(e->ctx, fn, (unsigned)i + 1, "noalias");
        add_attr(e->ctx, fn, (unsigned)i + 1, "nocapture");
    }
    return fn;
}

/* entry: begin < end ? loop : exit; loop: i = phi; body; i + 1 < end ? loop : exit. */
static void emit_body(CpuEmit *e) {
    LLVMValueRef begin = LLVMGetParam(e->fn, (unsigned)e->k->nbufs);
    LLVMValueRef end = LLVMGetParam(e->fn, (unsigned)e->k->nbufs + 1);
    for (int i = 0; i < e->k->nbufs; i++) e->ptr[i] = LLVMGetParam(e->fn, (unsigned)i);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "entry");
    LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "loop");
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "exit");
    LLVMPositionBuilderAtEnd(B, entry);
    LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntSLT, begin, end, ""), loop, exit);
    LLVMPositionBuilderAtEnd(B, loop);
    e->index = LLVMBuildPhi(B, LLVMInt64TypeInContext(e->ctx), "i");
    emit_insts(e);
    LLVMValueRef next = LLVMBuildAdd(B, e->index, cpu_iconst(e, KT_I64, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(B);
    LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntSLT, next, end, ""), loop, exit);
    LLVMAddIncoming(e->index, (LLVMValueRef[]){begin, next},
                    (LLVMBasicBlockRef[]){entry, latch}, 2);
    LLVMPositionBuilderAtEnd(B, exit);
    LLVMBuildRetVoid(B);
}

/* void NAME(ptr bufs, i64 begin, i64 end): loads the buffer pointers once
 * and calls the body. */
static void emit_entry(CpuEmit *e, LLVMValueRef body) {
    LLVMContextRef c = e->ctx;
    LLVMTypeRef ptr = LLVMPointerTypeInContext(c, 0), i64 = LLVMInt64TypeInContext(c);
    LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(c), (LLVMTypeRef[]){ptr, i64, i64}, 3, 0);
    LLVMValueRef fn = LLVMAddFunction(e->mod, e->k->name, fty);
    add_attr(c, fn, LLVMAttributeFunctionIndex, "nounwind");
    LLVMPositionBuilderAtEnd(B, LLVMAppendBasicBlockInContext(c, fn, "entry"));
    int n = e->k->nbufs + 2;
    LLVMValueRef *args = malloc((size_t)n * sizeof *args);
    if (!args) abort();
    for (int i = 0; i < e->k->nbufs; i++) {
        LLVMValueRef idx = LLVMConstInt(i64, (unsigned long long)i, 0);
        LLVMValueRef slot = LLVMBuildInBoundsGEP2(B, ptr, LLVMGetParam(fn, 0), &idx, 1, "");
        args[i] = LLVMBuildLoad2(B, ptr, slot, "");
    }
    args[n - 2] = LLVMGetParam(fn, 1);
    args[n - 1] = LLVMGetParam(fn, 2);
    LLVMTypeRef bty = LLVMGlobalGetValueType(body);
    LLVMBuildCall2(B, bty, body, args, (unsigned)n, "");
    free(args);
    LLVMBuildRetVoid(B);
}

static int *bracket_matches(const KernelDef *k) {
    size_t n = (size_t)k->ninsts + 1;
    int *match = malloc(n * sizeof(int)), *stack = malloc(n * sizeof(int)), depth = 0;
    if (!match || !stack) abort();
    for (int j = 0; j < k->ninsts; j++) {
        match[j] = -1;
        if (k->insts[j].kind == KI_RED_BEGIN) stack[depth++] = j;
        if (k->insts[j].kind == KI_RED_END) match[stack[--depth]] = j;
    }
    free(stack);
    return match;
}

bool cpu_emit_kernel(CpuModule *m, const KernelDef *k, Diag *d) {
    if (!kernel_verify(k, d)) return false;
    if (LLVMGetNamedFunction(m->mod, k->name) || LLVMGetNamedGlobal(m->mod, k->name))
        return diag_error(d, EXIT_RUNTIME, "cpu backend: symbol '%s' is already defined", k->name);
    size_t n = (size_t)k->ninsts + 1, nb = (size_t)k->nbufs + 1;
    CpuEmit e = {m, k, m->ctx, m->mod, LLVMCreateBuilderInContext(m->ctx), NULL,
                 calloc(n, sizeof(LLVMValueRef)), calloc(nb, sizeof(LLVMValueRef)), NULL,
                 calloc(n, sizeof(CpuLoop)), bracket_matches(k), calloc(n, sizeof(CpuDigit))};
    if (!e.val || !e.ptr || !e.loop || !e.digit) abort();
    e.fn = body_fn(&e);
    emit_body(&e);
    emit_entry(&e, e.fn);
    LLVMDisposeBuilder(e.b);
    free(e.val);
    free(e.ptr);
    free(e.loop);
    free(e.match);
    free(e.digit);
    return true;
}
