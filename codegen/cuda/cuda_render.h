/* The CUDA backend's renderer: kernels (codegen/kernel.h) as CUDA C text.
 *
 * Kernel table index i becomes the module entry igrc_k<i> with the
 * parameters runtime/cuda/cuda_abi.h fixes: one pointer per buffer in the kernel
 * ABI order (const for buffers the kernel does not write), then
 * `long long begin, long long end`, covered by a grid-stride loop. The body
 * is the kernel's SSA code, one C++ local per value; reductions are nested
 * for loops. Math goes through the prelude (cuda_prelude.cuh), which gives
 * the CPU backend's semantics.
 *
 * A module is the prelude, the library kernels (cuda_lib.cu) and every
 * generated kernel, in table order; the line each kernel starts on is
 * recorded so that an NVRTC error can name its kernel. */
#ifndef IGRC_CODEGEN_CUDA_RENDER_H
#define IGRC_CODEGEN_CUDA_RENDER_H

#include <stdbool.h>
#include <stdio.h>

#include "codegen/kir/kernel.h"
#include "ir/diag.h"

/* The texts embedded at build time from codegen/cuda/ (NUL-terminated). */
extern const char igrc_cuda_prelude_src[];
extern const char igrc_cuda_lib_src[];

/* Element type of a buffer of t in CUDA C ("float", "u8", ...). */
const char *cuda_ctype(KType t);

/* Writes kernel k (verified first) as entry igrc_k<index>. */
bool cuda_render_kernel(FILE *out, const KernelDef *k, int index, Diag *d);

typedef struct {
    char *text;       /* the whole module, malloc'd */
    int *first_line;  /* per kernel: its first line (1-based) in text */
    int nkernels;
} CudaSource;

/* prelude + library + kernels[0..n-1] as igrc_k0.. */
bool cuda_render_module(KernelDef *const *kernels, int n, CudaSource *out, Diag *d);
void cuda_source_free(CudaSource *s);
/* The kernel whose text holds line (1-based), or -1 (prelude, library). */
int cuda_source_kernel_at(const CudaSource *s, int line);

#endif
