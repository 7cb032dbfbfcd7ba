/* The CPU backend end to end: a module after the pipeline -> program +
 * kernels (codegen/program_build.h) -> one LLVM module holding the kernels,
 * the program text (symbol igrc_program) and the kernel table (igrc_kernels)
 * -> an object file, linked into an executable (with libigrc_rt) or into a
 * shared library that this process loads (igrc exec --backend cpu, tests). */
#ifndef IGRC_CODEGEN_CPU_COMPILE_H
#define IGRC_CODEGEN_CPU_COMPILE_H

#include <stdbool.h>

#include "codegen/program_build.h"
#include "ir/interp.h"
#include "runtime/exec.h"
#include "runtime/cpu/runner.h"

typedef struct CpuModule CpuModule;

typedef struct {
    const char *dump_dir;  /* plan.txt, program.txt and kernels/<name>.k here */
    const char *llvm_path; /* also write the optimised LLVM IR here */
    bool timings;          /* phase times on stderr */
    /* Called once the kernels and program are in the LLVM module, before
     * it is optimised, to add more (the CUDA target's image); may be NULL. */
    bool (*extend)(const Compiled *c, CpuModule *cm, void *ctx, Diag *d);
    void *extend_ctx;
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
 * loaded into this process, with an Exec (CPU runner or CUDA device) over
 * it; cpu_loaded_runner is the CPU runner (NULL on a device). */
typedef struct CpuLoaded CpuLoaded;

CpuLoaded *cpu_load(const Module *m, int threads, Diag *d);
/* cpu_load with compile options (o may be NULL; a CUDA target's hook adds
 * its image) and the device the program runs on. */
CpuLoaded *cpu_load_on(const Module *m, const CpuCompileOptions *o, ExecDevice dev, int threads,
                       Diag *d);
void cpu_loaded_free(CpuLoaded *l);
Runner *cpu_loaded_runner(CpuLoaded *l);
/* Runs function `fn` like interp_run does: inputs by name, params by name
 * (those not given keep the runner's initial values), outputs as doubles. */
bool cpu_loaded_call(CpuLoaded *l, const char *fn, const NamedValue *inputs, int ninputs,
                     const NamedValue *params, int nparams, NamedValue **outputs, int *noutputs,
                     Diag *d);

#endif
