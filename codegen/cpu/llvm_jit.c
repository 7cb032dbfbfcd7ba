/* In-memory execution of a CpuModule through LLVM's ORC LLJIT: what
 * `igrc run` uses instead of writing and linking an executable. The JIT
 * resolves what kernels call outside themselves (libm) in this process. */
#include <llvm-c/LLJIT.h>
#include <stdlib.h>

#include "codegen/cpu/llvm_internal.h"

struct CpuJit {
    LLVMOrcLLJITRef jit;
};

static bool jit_error(LLVMErrorRef err, const char *what, Diag *d) {
    if (!err) return true;
    char *msg = LLVMGetErrorMessage(err);
    diag_error(d, EXIT_RUNTIME, "cpu backend: JIT %s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return false;
}

/* An LLJIT for this host (CPU features detected as for objects) that also
 * searches this process's symbols. */
static LLVMOrcLLJITRef make_jit(Diag *d) {
    LLVMOrcJITTargetMachineBuilderRef jtmb;
    if (!jit_error(LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb), "host detection", d)) return NULL;
    LLVMOrcLLJITBuilderRef b = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(b, jtmb);
    LLVMOrcLLJITRef jit;
    if (!jit_error(LLVMOrcCreateLLJIT(&jit, b), "creation", d)) return NULL;
    LLVMOrcDefinitionGeneratorRef gen;
    if (!jit_error(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
                       &gen, LLVMOrcLLJITGetGlobalPrefix(jit), NULL, NULL),
                   "process symbols", d)) {
        LLVMOrcDisposeLLJIT(jit);
        return NULL;
    }
    LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(jit), gen);
    return jit;
}

CpuJit *cpu_jit(CpuModule *m, Diag *d) {
    if (!m->mod) return diag_error(d, EXIT_RUNTIME, "cpu backend: module already given to a JIT"), NULL;
    LLVMOrcLLJITRef jit = make_jit(d);
    if (!jit) return NULL;
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m->mod, m->tsc);
    m->mod = NULL; /* the JIT owns it now */
    if (!jit_error(LLVMOrcLLJITAddLLVMIRModule(jit, LLVMOrcLLJITGetMainJITDylib(jit), tsm),
                   "adding the module", d)) {
        LLVMOrcDisposeLLJIT(jit);
        return NULL;
    }
    CpuJit *j = calloc(1, sizeof *j);
    if (!j) abort();
    j->jit = jit;
    return j;
}

void *cpu_jit_lookup(CpuJit *j, const char *symbol, Diag *d) {
    LLVMOrcExecutorAddress addr = 0;
    if (!jit_error(LLVMOrcLLJITLookup(j->jit, &addr, symbol), symbol, d)) return NULL;
    return (void *)(uintptr_t)addr;
}

void cpu_jit_free(CpuJit *j) {
    if (!j) return;
    LLVMOrcDisposeLLJIT(j->jit);
    free(j);
}
