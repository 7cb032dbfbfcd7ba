/* The host object end to end: a module after the pipeline -> program +
 * kernels (codegen/program_build.h) -> one LLVM module holding the program
 * text (symbol igrc_program) and each target's code (codegen/
 * backend_compile.h; the CPU target's is the kernels and their table,
 * igrc_kernels) -> an object file, linked into an executable (with
 * libigrc_rt) or into a shared library that this process loads (igrc exec
 * --backend, tests). */
#ifndef IGRC_CODEGEN_CPU_COMPILE_H
#define IGRC_CODEGEN_CPU_COMPILE_H

#include <stdbool.h>

#include "codegen/backend_compile.h"
#include "codegen/program_build.h"
#include "ir/interp.h"
#include "runtime/exec.h"

typedef struct CpuModule CpuModule;

typedef struct {
    const char *dump_dir;  /* plan.txt, program.txt and kernels/<name>.k here */
    const char *llvm_path; /* also write the optimised LLVM IR here */
    bool timings;          /* phase times on stderr */
    /* The targets whose code the object carries (codegen_targets); none:
     * the CPU's alone. */
    const CodegenBackend *const *targets;
    int ntargets;
    CodegenOptions target; /* their options */
} CpuCompileOptions;

/* Writes the object file; fills *stats (may be NULL) with the compiled
 * program (caller frees with compiled_free). */
bool cpu_compile_object(const Module *m, const char *obj_path, const CpuCompileOptions *o,
                        Compiled *stats, Diag *d);

/* Links an object from cpu_compile_object with the runtime into an
 * executable. */
bool cpu_link_executable(const char *obj_path, const char *out, Diag *d);

/* What runs a JIT-compiled program: the executables' entry point
 * (runtime/app/app.h igrc_app_main), which the driver passes in. */
typedef int (*CpuJitMain)(int argc, char **argv, const char *program_text, int64_t program_size,
                          const PKernelFn *kernels, int nkernels);

/* Compiles m in memory (LLVM ORC JIT, no files) and calls main_fn with the
 * generated executable's command line (argv[0] the program name, then
 * train | eval | info ...) in this process; *rc is its exit status. False
 * (with d) when compilation fails. */
bool cpu_jit_run(const Module *m, int argc, char **argv, const CpuCompileOptions *o,
                 CpuJitMain main_fn, int *rc, Diag *d);

/* A module compiled into a shared library in a temporary directory and
 * loaded into this process, with an Exec over it on a runtime backend
 * (runtime/backend.h). */
typedef struct CpuLoaded CpuLoaded;

CpuLoaded *cpu_load(const Module *m, int threads, Diag *d);
/* cpu_load with compile options (o may be NULL; its targets add their
 * code) on the runtime backend called `backend`. */
CpuLoaded *cpu_load_on(const Module *m, const CpuCompileOptions *o, const char *backend,
                       int threads, Diag *d);
void cpu_loaded_free(CpuLoaded *l);
/* Runs function `fn` like interp_run does: inputs by name, params by name
 * (those not given keep the runner's initial values), outputs as doubles. */
bool cpu_loaded_call(CpuLoaded *l, const char *fn, const NamedValue *inputs, int ninputs,
                     const NamedValue *params, int nparams, NamedValue **outputs, int *noutputs,
                     Diag *d);

#endif
