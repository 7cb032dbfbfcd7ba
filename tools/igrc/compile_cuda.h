/* igrc compile --target cuda (compile_cuda.c); every function exists in a
 * build without CUDA too, where cuda_target_available() is false. */
#ifndef IGRC_COMPILE_CUDA_H
#define IGRC_COMPILE_CUDA_H

#include <stdbool.h>

#include "codegen/cpu/cpu_compile.h"

#define IGRC_DEFAULT_GPU_ARCH "sm_90" /* H100 / H200 */

typedef struct {
    const char *arch; /* "sm_90" */
    bool tf32;
    const char *dump_dir; /* also write cuda/module.cu and module.ptx here */
    bool timings;         /* NVRTC time and the cache's answer on stderr */
} CudaTarget;

/* Whether this igrc was built with the CUDA backend. */
bool cuda_target_available(void);
/* Checks t's architecture and options before any work is done. */
bool cuda_target_check(const CudaTarget *t, Diag *d);
/* Makes the CPU compile add the image of t to the object (symbol
 * igrc_cuda_image); t must outlive the compile. */
void cuda_target_hook(CudaTarget *t, CpuCompileOptions *o);
/* The module's CUDA C to out (stdout when NULL). */
bool cuda_emit_source(const Module *m, const char *out, Diag *d);

#endif
