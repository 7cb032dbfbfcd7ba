/* The compile-time half of a backend (runtime/backend.h is the run-time
 * half): what turns a program's kernels into code that the runtime backend
 * of the same name loads. Every executable is one host object
 * (codegen/cpu/cpu_compile.h: the program text and the symbols the
 * executable's main reads); each target adds its code to it, the CPU its
 * kernels as machine code with the kernel table, CUDA its image (PTX +
 * CUBIN) as a blob. The driver picks targets by name. */
#ifndef IGRC_CODEGEN_BACKEND_COMPILE_H
#define IGRC_CODEGEN_BACKEND_COMPILE_H

#include <stdbool.h>

#include "codegen/program_build.h"
#include "ir/diag.h"

typedef struct CpuModule CpuModule; /* the host object (codegen/cpu/llvm_backend.h) */

typedef struct {
    const char *arch;     /* the device architecture; NULL: the target's default */
    bool tf32;            /* tensor cores for f32 products, where the target has them */
    const char *dump_dir; /* NULL, or where the target writes its sources (DIR/<name>/) */
    bool timings;         /* phase times on stderr */
} CodegenOptions;

typedef struct {
    const char *name;         /* the runtime backend that loads the code */
    const char *default_arch; /* NULL: the target has no architectures */
    /* Checks o before any work is done (an unknown architecture...). */
    bool (*check)(const CodegenOptions *o, Diag *d);
    /* Adds the code of c's kernels to the host object. */
    bool (*add_code)(const Compiled *c, const CodegenOptions *o, CpuModule *host, Diag *d);
    /* Writes the source the target compiles (--emit NAME) to out, stdout
     * when NULL; NULL when the target has no source form. */
    bool (*emit_source)(const Compiled *c, const char *out, Diag *d);
} CodegenBackend;

/* The target called name in this build, or NULL. */
const CodegenBackend *codegen_backend_find(const char *name);
/* The targets of this build, as a message lists them: "cpu, cuda". */
const char *codegen_backend_names(void);

/* What --target name compiles: the CPU's kernels, which every executable
 * carries (it runs on the CPU too), then name's. *n is 1 or 2; false (with
 * d) when this build has no such target or o does not suit it. */
bool codegen_targets(const char *name, const CodegenOptions *o, const CodegenBackend *out[2],
                     int *n, Diag *d);

#endif
