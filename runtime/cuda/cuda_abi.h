/* The contract between the CUDA code generator (codegen/cuda/) and the CUDA
 * runtime (runtime/cuda_*.c): kernel names and parameters, launch geometry,
 * the library kernels that stand for the CPU's library ops, and the image
 * (PTX + CUBIN) embedded in a generated executable.
 *
 * Generated kernels. Kernel table index i (the index a PS_KERNEL step
 * names) is the module entry "igrc_k<i>":
 *
 *   extern "C" __global__ void igrc_k<i>(T0 *b0, const T1 *b1, ...,
 *                                        long long begin, long long end)
 *
 * b0.. are the step's buffers in the kernel ABI order (output first, then
 * the body inputs, then the complex-head temp; see codegen/kernel.h), one
 * pointer parameter each; the kernel covers [begin, end) with a grid-stride
 * loop, so any grid is correct and cuda_kernel_grid() only picks a good one.
 *
 * Library kernels. A PS_LIB step (op, dtype, args as in runtime/cpu/cpu_ops.h)
 * is one or more launches planned by cuda_lib_plan(); each launch runs
 *
 *   extern "C" __global__ void NAME(void *out, const void *in0,
 *                                   const void *in1, void *scratch,
 *                                   IgrcLibArgs args)
 *
 * in order on the step's stream (in1 NULL for one-input ops; scratch NULL
 * when the plan asks for none). The CUDA source of these kernels is part of
 * every module, so the image holds them too.
 */
#ifndef IGRC_RUNTIME_CUDA_ABI_H
#define IGRC_RUNTIME_CUDA_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/cpu/cpu_ops.h"

#define IGRC_CUDA_KERNEL_PREFIX "igrc_k"
#define IGRC_CUDA_BLOCK 256      /* threads per block of generated kernels */
#define IGRC_CUDA_MAX_GRID 65535 /* blocks; the grid-stride loop covers more */
#define IGRC_CUDA_LIB_MAX_LAUNCHES 4
#define IGRC_CUDA_NAME_MAX 64

/* The library kernels' last parameter, passed by value: the step's args. */
typedef struct {
    long long a[CPU_OP_MAX_ARGS];
} IgrcLibArgs;

typedef struct {
    char kernel[IGRC_CUDA_NAME_MAX]; /* module entry name */
    unsigned grid[3], block[3];
    unsigned shmem; /* dynamic shared memory bytes */
} CudaLaunch;

/* Options that select kernel variants; recorded in the image. */
typedef struct {
    bool tf32; /* tensor-core (TF32 mma) matmul/convolution for f32 */
} CudaOptions;

/* Blocks for a generated kernel over n elements (n > 0). */
unsigned cuda_kernel_grid(int64_t n);

/* The launches that compute lib step (op, dt, args), at most
 * IGRC_CUDA_LIB_MAX_LAUNCHES, written to out; *scratch_bytes receives the
 * device scratch they share (0: none). Returns the count, or -1 with a
 * message in err for an op/dtype the CUDA library does not cover. */
int cuda_lib_plan(CpuOp op, CpuDtype dt, const int64_t *args, const CudaOptions *opt,
                  CudaLaunch *out, int64_t *scratch_bytes, char *err, size_t errcap);

/* The image a generated executable embeds as the blob symbol
 * "igrc_cuda_image" (with "igrc_cuda_image_size"):
 *
 *   "IGRCCUDA 1\n"
 *   "arch sm_90\n"
 *   "tf32 0\n"
 *   "kernels N\n"                 generated kernels igrc_k0..igrc_k<N-1>
 *   "ptx BYTES\n"  BYTES of PTX text (NUL-terminated, the NUL counted)
 *   "\ncubin BYTES\n"  BYTES of CUBIN
 *
 * cuda_image_write returns a malloc'd buffer (length in *n);
 * cuda_image_parse points into data (no copies) and names what is wrong. */
typedef struct {
    char arch[16];
    CudaOptions opt;
    int nkernels;
    const char *ptx;
    size_t ptx_bytes;
    const void *cubin;
    size_t cubin_bytes;
} CudaImage;

void *cuda_image_write(const CudaImage *img, size_t *n);
bool cuda_image_parse(const void *data, size_t n, CudaImage *img, char *err, size_t errcap);

#endif
