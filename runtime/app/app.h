/* The command line of a generated executable: `train`, `eval`, `info`.
 * A generated executable is its kernels + its program text + this library;
 * runtime/app/main.c (library igrc_rt_main) passes the embedded program here.
 * Exit status: 0 success, 1 a runtime or data failure, 2 bad usage. */
#ifndef IGRC_RUNTIME_APP_H
#define IGRC_RUNTIME_APP_H

#include <stdint.h>

#include "runtime/program/program.h"

int igrc_app_main(int argc, char **argv, const char *program_text, int64_t program_size,
                  const PKernelFn *kernels, int nkernels);
/* The same with the embedded CUDA image (runtime/cuda/cuda_abi.h; NULL/0 when
 * the executable was compiled without --target cuda), for --device cuda.
 * kernels may be empty when the image holds the program's kernels. */
int igrc_app_main_cuda(int argc, char **argv, const char *program_text, int64_t program_size,
                       const PKernelFn *kernels, int nkernels, const void *cuda_image,
                       int64_t cuda_image_size);

#endif
