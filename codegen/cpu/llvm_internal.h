/* Shared by the LLVM backend's files; not part of its interface. */
#ifndef IGRC_CODEGEN_CPU_LLVM_INTERNAL_H
#define IGRC_CODEGEN_CPU_LLVM_INTERNAL_H

#include <llvm-c/Orc.h>
#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "codegen/cpu/llvm_backend.h"

struct CpuModule {
    LLVMOrcThreadSafeContextRef tsc; /* owns ctx; lets the JIT take the module */
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMTargetMachineRef tm;
};

/* llvm_counters.c: a reduction counter's digits (r % div, r / div, and so
 * on down a chain of constant divisors) carried as phis. */
#define CPU_MAX_LEVELS 8
typedef struct {
    int parent;                 /* -2: the loop counter; else a level's quotient */
    int64_t div;
    LLVMValueRef m, q;          /* phis: remainder, quotient */
    LLVMValueRef m_next, q_next, carry;
} CpuLevel;

typedef struct {
    int n;
    CpuLevel lev[CPU_MAX_LEVELS];
} CpuCounters;

typedef struct {
    CpuCounters *c; /* NULL: not a digit */
    int level;
    bool is_mod;
} CpuDigit;

/* One reduction loop being emitted. */
typedef struct {
    LLVMBasicBlockRef pre, header; /* block before the loop, loop header */
    LLVMValueRef r, acc, arg;      /* phis: counter, accumulator, argmax index */
    CpuCounters ctr;
} CpuLoop;

/* State while one kernel's body is emitted. */
typedef struct {
    CpuModule *m;
    const KernelDef *k;
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMValueRef fn;     /* the body function */
    LLVMValueRef *val;   /* per instruction */
    LLVMValueRef *ptr;   /* per buffer: the body's parameter */
    LLVMValueRef index;  /* the domain element (outer loop phi) */
    CpuLoop *loop;       /* per instruction (used at KI_RED_BEGIN ids) */
    int *match;          /* KI_RED_BEGIN -> its KI_RED_END */
    CpuDigit *digit;     /* per instruction: the counter digit it is, if any */
} CpuEmit;

/* llvm_counters.c */
/* At loop j's header, after its phis: finds the body's divisions of the
 * counter by constants and makes their digits' phis. */
void cpu_counters_open(CpuEmit *e, int j, CpuCounters *c);
/* The digit instruction p stands for, or NULL. */
LLVMValueRef cpu_counter_value(const CpuEmit *e, int p);
/* In the latch, before the back edge: the digits' next values. */
void cpu_counters_step(CpuEmit *e, CpuCounters *c);
/* The phis' incoming values from pre (0) and latch. */
void cpu_counters_close(CpuEmit *e, CpuCounters *c, LLVMBasicBlockRef pre,
                        LLVMBasicBlockRef latch);

/* llvm_types.c */
LLVMTypeRef cpu_type(LLVMContextRef c, KType t);     /* register type (bool: i1) */
LLVMTypeRef cpu_mem_type(LLVMContextRef c, KType t); /* storage type (bool: i8) */
LLVMValueRef cpu_fconst(CpuEmit *e, KType t, double v);
LLVMValueRef cpu_iconst(CpuEmit *e, KType t, int64_t v);
LLVMValueRef cpu_intrinsic(CpuEmit *e, const char *name, LLVMTypeRef *tys, int ntys,
                           LLVMValueRef *args, int nargs);
LLVMValueRef cpu_call1(CpuEmit *e, const char *name, LLVMTypeRef t, LLVMValueRef x);
LLVMValueRef cpu_libm1(CpuEmit *e, const char *fname, LLVMValueRef x); /* T f(T) */

/* llvm_math.c: the kernel IR's primitives */
LLVMValueRef cpu_unary(CpuEmit *e, const KInst *in, LLVMValueRef x);
LLVMValueRef cpu_binary(CpuEmit *e, KOp op, KType t, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cpu_cast(CpuEmit *e, KType to, KType from, LLVMValueRef x);

/* llvm_emit.c */
bool cpu_emit_kernel(CpuModule *m, const KernelDef *k, Diag *d);

#endif
