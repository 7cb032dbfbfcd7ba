/* The command line of a generated executable: `train`, `eval`, `info`.
 * A generated executable is its kernels + its program text + this library;
 * runtime/app/main.c (library igrc_rt_main) passes the embedded program here.
 * Exit status: 0 success, 1 a runtime or data failure, 2 bad usage. */
#ifndef IGRC_RUNTIME_APP_H
#define IGRC_RUNTIME_APP_H

#include <stdint.h>

#include "runtime/backend.h"
#include "runtime/program/program.h"

int igrc_app_main(int argc, char **argv, const char *program_text, int64_t program_size,
                  const PKernelFn *kernels, int nkernels);
/* The same with every backend's code (runtime/backend.h): the kernel table
 * and the device images (--target cuda's), for --device. The kernel table
 * may be empty when an image holds the program's kernels. */
int igrc_app_main_code(int argc, char **argv, const char *program_text, int64_t program_size,
                       const BackendCode *code);

#endif
