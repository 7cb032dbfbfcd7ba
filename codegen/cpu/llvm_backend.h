/* The CPU backend: kernels (codegen/kir/kernel.h) to native code through the
 * LLVM 16 C API.
 *
 * A CpuModule is one LLVM module for the host (triple, CPU name and the
 * host's CPU features, position-independent code, aggressive optimisation).
 * Each kernel becomes an external function with the kernel ABI
 *     void NAME(void *const *bufs, int64_t begin, int64_t end);
 * whose loop over [begin, end) is an internal always-inline body taking
 * one noalias pointer per buffer, so O3 vectorises it without runtime
 * alias checks (the memory planner never overlaps one call's buffers).
 * The kernels' instructions are the kernel IR's primitives (compound math
 * is expanded before, codegen/lower_math.c).
 *
 * Every fallible call fills the Diag and returns false.
 */
#ifndef IGRC_CODEGEN_CPU_LLVM_BACKEND_H
#define IGRC_CODEGEN_CPU_LLVM_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "codegen/kir/kernel.h"
#include "ir/diag.h"

typedef struct CpuModule CpuModule;

CpuModule *cpu_module_new(const char *name, Diag *d);
/* Defines a function named k->name with the kernel ABI (k is verified). */
bool cpu_add_kernel(CpuModule *m, const KernelDef *k, Diag *d);
/* const char symbol[n + 1] (data, then a NUL) and const int64_t symbol_size = n. */
bool cpu_add_blob(CpuModule *m, const char *symbol, const void *data, size_t n, Diag *d);
/* void (*const symbol[n])(void *const *, int64_t, int64_t) holding the named
 * kernels (declared if not defined in this module), and
 * const int32_t symbol_count = n. */
bool cpu_add_kernel_table(CpuModule *m, const char *symbol, const char *const *kernel_names,
                          int n, Diag *d);
/* Verifies the module and runs LLVM's "default<O3>" pipeline for the host. */
bool cpu_optimize(CpuModule *m, Diag *d);
bool cpu_emit_llvm(CpuModule *m, const char *path, Diag *d);   /* textual .ll */
bool cpu_emit_object(CpuModule *m, const char *path, Diag *d); /* ELF .o */
void cpu_module_free(CpuModule *m);

/* In-memory execution (ORC LLJIT): cpu_jit takes the module's IR (the
 * CpuModule can only be freed afterwards), compiles it on first lookup and
 * resolves libm and other outside symbols in this process. */
typedef struct CpuJit CpuJit;
CpuJit *cpu_jit(CpuModule *m, Diag *d);
/* The address of a defined symbol (function or data), or NULL with a Diag. */
void *cpu_jit_lookup(CpuJit *j, const char *symbol, Diag *d);
void cpu_jit_free(CpuJit *j);

/* Runs the system C compiler ($CC, else cc) via posix_spawn: links the
 * objects (then extra arguments such as -L/-l, then -lm) into an executable,
 * or a shared library when shared. The compiler's output goes into the Diag
 * message on failure. */
bool cpu_link(const char *const *objects, int nobj, const char *out, bool shared,
              const char *const *extra, int nextra, Diag *d);
/* Combines objects into one relocatable object (cc -r). */
bool cpu_link_relocatable(const char *const *objects, int nobj, const char *out, Diag *d);

#endif
