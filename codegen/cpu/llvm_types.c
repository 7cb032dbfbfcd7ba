/* Types, constants and calls for the LLVM backend. */
#include <string.h>

#include "codegen/cpu/llvm_internal.h"

LLVMTypeRef cpu_type(LLVMContextRef c, KType t) {
    switch (t) {
    case KT_F32: return LLVMFloatTypeInContext(c);
    case KT_F64: return LLVMDoubleTypeInContext(c);
    case KT_I32: return LLVMInt32TypeInContext(c);
    case KT_I64: return LLVMInt64TypeInContext(c);
    case KT_BOOL:
    case KT_COUNT: break;
    }
    return LLVMInt1TypeInContext(c);
}

LLVMTypeRef cpu_mem_type(LLVMContextRef c, KType t) {
    return t == KT_BOOL ? LLVMInt8TypeInContext(c) : cpu_type(c, t);
}

LLVMValueRef cpu_fconst(CpuEmit *e, KType t, double v) {
    return LLVMConstReal(cpu_type(e->ctx, t), v);
}

LLVMValueRef cpu_iconst(CpuEmit *e, KType t, int64_t v) {
    return LLVMConstInt(cpu_type(e->ctx, t), (unsigned long long)v, t != KT_BOOL);
}

/* A call of an overloaded intrinsic, e.g. ("llvm.exp", {float}). */
LLVMValueRef cpu_intrinsic(CpuEmit *e, const char *name, LLVMTypeRef *tys, int ntys,
                           LLVMValueRef *args, int nargs) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->mod, id, tys, (size_t)ntys);
    LLVMTypeRef fty = LLVMIntrinsicGetType(e->ctx, id, tys, (size_t)ntys);
    return LLVMBuildCall2(e->b, fty, fn, args, (unsigned)nargs, "");
}

LLVMValueRef cpu_call1(CpuEmit *e, const char *name, LLVMTypeRef t, LLVMValueRef x) {
    return cpu_intrinsic(e, name, &t, 1, &x, 1);
}

static void add_fn_attr(LLVMContextRef c, LLVMValueRef fn, const char *name, uint64_t v) {
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    if (kind)
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(c, kind, v));
}

/* T fname(T) from libm (T = x's type), marked as touching no memory. */
LLVMValueRef cpu_libm1(CpuEmit *e, const char *fname, LLVMValueRef x) {
    LLVMTypeRef d = LLVMTypeOf(x);
    LLVMTypeRef fty = LLVMFunctionType(d, &d, 1, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(e->mod, fname);
    if (!fn) {
        fn = LLVMAddFunction(e->mod, fname, fty);
        add_fn_attr(e->ctx, fn, "nounwind", 0);
        add_fn_attr(e->ctx, fn, "willreturn", 0);
        add_fn_attr(e->ctx, fn, "memory", 0); /* memory(none) */
    }
    return LLVMBuildCall2(e->b, fty, fn, &x, 1, "");
}
