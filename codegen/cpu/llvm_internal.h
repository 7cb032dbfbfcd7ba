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

/* State while one kernel's body is emitted. */
typedef struct {
    LLVMBasicBlockRef pre, header; /* block before the loop, loop header */
    LLVMValueRef r, acc, arg;      /* phis: counter, accumulator, argmax index */
} CpuLoop;

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
} CpuEmit;

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
