/* The CpuModule: host target machine, kernels, data symbols, the O3
 * pipeline and the .ll / .o writers. */
#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cpu/llvm_internal.h"

static bool native_ready(Diag *d) {
    static int state; /* 0 untried, 1 ready, -1 failed */
    if (state == 0)
        state = LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter() ? -1 : 1;
    return state > 0 || diag_error(d, EXIT_RUNTIME, "cpu backend: LLVM has no native target");
}

/* Host triple, CPU name and CPU features (the name can read "generic" on
 * CPUs LLVM 16 does not know while the features are right), PIC so objects
 * go into executables and shared libraries alike. */
static LLVMTargetMachineRef host_machine(Diag *d) {
    char *triple = LLVMGetDefaultTargetTriple(), *err = NULL;
    LLVMTargetRef target;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        diag_error(d, EXIT_RUNTIME, "cpu backend: target %s: %s", triple, err ? err : "?");
        LLVMDisposeMessage(err);
        LLVMDisposeMessage(triple);
        return NULL;
    }
    char *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, features,
                                                      LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                                                      LLVMCodeModelDefault);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    LLVMDisposeMessage(triple);
    if (!tm) diag_error(d, EXIT_RUNTIME, "cpu backend: cannot create the host target machine");
    return tm;
}

CpuModule *cpu_module_new(const char *name, Diag *d) {
    if (!native_ready(d)) return NULL;
    LLVMTargetMachineRef tm = host_machine(d);
    if (!tm) return NULL;
    CpuModule *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->tm = tm;
    m->tsc = LLVMOrcCreateNewThreadSafeContext();
    m->ctx = LLVMOrcThreadSafeContextGetContext(m->tsc);
    m->mod = LLVMModuleCreateWithNameInContext(name ? name : "igrc", m->ctx);
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(m->mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(m->mod, td);
    LLVMDisposeTargetData(td);
    return m;
}

void cpu_module_free(CpuModule *m) {
    if (!m) return;
    if (m->mod) LLVMDisposeModule(m->mod); /* NULL once a JIT took it */
    LLVMOrcDisposeThreadSafeContext(m->tsc);
    LLVMDisposeTargetMachine(m->tm);
    free(m);
}

bool cpu_add_kernel(CpuModule *m, const KernelDef *k, Diag *d) {
    return cpu_emit_kernel(m, k, d);
}

static bool symbol_free(CpuModule *m, const char *sym, Diag *d) {
    if (!sym || !*sym) return diag_error(d, EXIT_RUNTIME, "cpu backend: empty symbol name");
    if (LLVMGetNamedGlobal(m->mod, sym) || LLVMGetNamedFunction(m->mod, sym))
        return diag_error(d, EXIT_RUNTIME, "cpu backend: symbol '%s' is already defined", sym);
    return true;
}

/* An external constant global named sym: "<sym><suffix>". */
static LLVMValueRef add_const(CpuModule *m, const char *sym, const char *suffix, LLVMValueRef init) {
    size_t n = strlen(sym) + strlen(suffix) + 1;
    char *name = malloc(n);
    if (!name) abort();
    snprintf(name, n, "%s%s", sym, suffix);
    LLVMValueRef g = LLVMAddGlobal(m->mod, LLVMTypeOf(init), name);
    free(name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMExternalLinkage);
    return g;
}

bool cpu_add_blob(CpuModule *m, const char *symbol, const void *data, size_t n, Diag *d) {
    if (!symbol_free(m, symbol, d)) return false;
    if (n > 0xFFFFFFFFu) return diag_error(d, EXIT_RUNTIME, "cpu backend: blob '%s' too large", symbol);
    LLVMValueRef s = LLVMConstStringInContext(m->ctx, n ? data : "", (unsigned)n, 0);
    LLVMSetAlignment(add_const(m, symbol, "", s), 16);
    add_const(m, symbol, "_size", LLVMConstInt(LLVMInt64TypeInContext(m->ctx), n, 0));
    return true;
}

bool cpu_add_kernel_table(CpuModule *m, const char *symbol, const char *const *kernel_names,
                          int n, Diag *d) {
    if (!symbol_free(m, symbol, d)) return false;
    LLVMContextRef c = m->ctx;
    LLVMTypeRef ptr = LLVMPointerTypeInContext(c, 0), i64 = LLVMInt64TypeInContext(c);
    LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(c), (LLVMTypeRef[]){ptr, i64, i64}, 3, 0);
    LLVMValueRef *fns = malloc((size_t)(n > 0 ? n : 1) * sizeof *fns);
    if (!fns) abort();
    for (int i = 0; i < n; i++) {
        fns[i] = LLVMGetNamedFunction(m->mod, kernel_names[i]);
        if (!fns[i]) fns[i] = LLVMAddFunction(m->mod, kernel_names[i], fty);
    }
    add_const(m, symbol, "", LLVMConstArray(ptr, fns, (unsigned)n));
    free(fns);
    add_const(m, symbol, "_count", LLVMConstInt(LLVMInt32TypeInContext(c), (unsigned long long)n, 0));
    return true;
}

static bool verified(CpuModule *m, Diag *d) {
    char *msg = NULL;
    if (!LLVMVerifyModule(m->mod, LLVMReturnStatusAction, &msg)) {
        LLVMDisposeMessage(msg);
        return true;
    }
    diag_error(d, EXIT_RUNTIME, "cpu backend: invalid LLVM module: %s", msg ? msg : "?");
    LLVMDisposeMessage(msg);
    return false;
}

static bool llvm_error(LLVMErrorRef err, const char *what, Diag *d) {
    if (!err) return true;
    char *msg = LLVMGetErrorMessage(err);
    diag_error(d, EXIT_RUNTIME, "cpu backend: %s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return false;
}

bool cpu_optimize(CpuModule *m, Diag *d) {
    if (!verified(m, d)) return false;
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(opts, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(opts, 1);
    LLVMPassBuilderOptionsSetLoopInterleaving(opts, 1);
    LLVMPassBuilderOptionsSetLoopUnrolling(opts, 1);
    LLVMErrorRef err = LLVMRunPasses(m->mod, "default<O3>", m->tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    return llvm_error(err, "optimisation", d);
}

bool cpu_emit_llvm(CpuModule *m, const char *path, Diag *d) {
    char *err = NULL;
    if (!LLVMPrintModuleToFile(m->mod, path, &err)) return true;
    diag_error(d, EXIT_RUNTIME, "cpu backend: cannot write %s: %s", path, err ? err : "?");
    LLVMDisposeMessage(err);
    return false;
}

bool cpu_emit_object(CpuModule *m, const char *path, Diag *d) {
    if (!verified(m, d)) return false;
    char *err = NULL, *p = malloc(strlen(path) + 1);
    if (!p) abort();
    strcpy(p, path);
    LLVMBool bad = LLVMTargetMachineEmitToFile(m->tm, m->mod, p, LLVMObjectFile, &err);
    free(p);
    if (!bad) return true;
    diag_error(d, EXIT_RUNTIME, "cpu backend: cannot write %s: %s", path, err ? err : "?");
    LLVMDisposeMessage(err);
    return false;
}
