/* Mixed-radix counters for reduction loops: the kernel IR indexes a
 * flattened reduction (sum over N, H, W of a bias gradient, say) by
 * dividing the loop counter by constants, r % 26, r / 26 % 26, ..., one
 * 64-bit division per digit per element. A reduction's sum is taken in
 * order (no reassociation, so the loop is not vectorised), and those
 * divisions were most of its time: the bias gradients of SmallCNN's conv1
 * and conv2 took 14% of a standard training step. Here each digit is a phi
 * carried from one iteration to the next (increment, compare, select),
 * with the same values, so results are bit-identical.
 *
 * A level is (parent, divisor): the parent is the loop counter or another
 * level's quotient, each advances by 0 or 1 per iteration, and the level's
 * remainder and quotient stand in for the imod / idiv instructions of the
 * body that divide that parent by that constant. */
#include <stdlib.h>

#include "codegen/cpu/llvm_internal.h"

#define B (e->b)

enum { ROOT = -2, NONE = -1 };

/* The level of (parent, div), added when new; NONE when full. */
static int level_of(CpuCounters *c, int parent, int64_t div) {
    for (int l = 0; l < c->n; l++)
        if (c->lev[l].parent == parent && c->lev[l].div == div) return l;
    if (c->n == CPU_MAX_LEVELS) return NONE;
    c->lev[c->n] = (CpuLevel){parent, div, NULL, NULL, NULL, NULL, NULL};
    return c->n++;
}

/* A constant divisor > 0 of instruction in, or 0. */
static int64_t const_divisor(const KernelDef *k, const KInst *in) {
    const KInst *b = &k->insts[in->b];
    return b->kind == KI_CONST && b->type == KT_I64 && b->i > 0 ? b->i : 0;
}

/* Finds the divisions by constants of loop j's counter (and of their
 * quotients) in its body, and records each one's level in e->digit. */
static void find_levels(CpuEmit *e, int j, CpuCounters *c) {
    const KernelDef *k = e->k;
    int end = e->match[j];
    int *ident = malloc((size_t)(end + 1) * sizeof *ident);
    if (!ident) abort();
    for (int p = j; p <= end; p++) ident[p] = NONE;
    ident[j] = ROOT;
    for (int p = j + 1; p < end; p++) {
        const KInst *in = &k->insts[p];
        if (in->kind != KI_IDIV && in->kind != KI_IMOD) continue;
        int64_t div = const_divisor(k, in);
        if (!div || in->a < j || ident[in->a] == NONE) continue;
        int l = level_of(c, ident[in->a], div);
        if (l == NONE) continue;
        e->digit[p] = (CpuDigit){c, l, in->kind == KI_IMOD};
        if (in->kind == KI_IDIV) ident[p] = l;
    }
    free(ident);
}

void cpu_counters_open(CpuEmit *e, int j, CpuCounters *c) {
    c->n = 0;
    find_levels(e, j, c);
    LLVMTypeRef i64 = LLVMInt64TypeInContext(e->ctx);
    for (int l = 0; l < c->n; l++) {
        c->lev[l].m = LLVMBuildPhi(B, i64, "digit");
        c->lev[l].q = LLVMBuildPhi(B, i64, "quot");
    }
}

LLVMValueRef cpu_counter_value(const CpuEmit *e, int p) {
    const CpuDigit *d = &e->digit[p];
    if (!d->c) return NULL;
    const CpuLevel *l = &d->c->lev[d->level];
    return d->is_mod ? l->m : l->q;
}

/* In the latch: each level's next remainder and quotient (its parent's
 * carry added, wrapping at the divisor), before the back edge. */
void cpu_counters_step(CpuEmit *e, CpuCounters *c) {
    LLVMTypeRef i64 = LLVMInt64TypeInContext(e->ctx);
    for (int l = 0; l < c->n; l++) {
        CpuLevel *v = &c->lev[l];
        LLVMValueRef inc = v->parent == ROOT ? cpu_iconst(e, KT_I64, 1)
                                             : LLVMBuildZExt(B, c->lev[v->parent].carry, i64, "");
        LLVMValueRef m1 = LLVMBuildAdd(B, v->m, inc, "");
        v->carry = LLVMBuildICmp(B, LLVMIntEQ, m1, cpu_iconst(e, KT_I64, v->div), "");
        v->m_next = LLVMBuildSelect(B, v->carry, cpu_iconst(e, KT_I64, 0), m1, "");
        v->q_next = LLVMBuildAdd(B, v->q, LLVMBuildZExt(B, v->carry, i64, ""), "");
    }
}

/* The phis' incoming values: 0 from the block before the loop (the
 * counter starts at 0), the step's from the latch. */
void cpu_counters_close(CpuEmit *e, CpuCounters *c, LLVMBasicBlockRef pre,
                        LLVMBasicBlockRef latch) {
    LLVMValueRef zero = cpu_iconst(e, KT_I64, 0);
    for (int l = 0; l < c->n; l++) {
        CpuLevel *v = &c->lev[l];
        LLVMAddIncoming(v->m, (LLVMValueRef[]){zero, v->m_next}, (LLVMBasicBlockRef[]){pre, latch}, 2);
        LLVMAddIncoming(v->q, (LLVMValueRef[]){zero, v->q_next}, (LLVMBasicBlockRef[]){pre, latch}, 2);
    }
}
