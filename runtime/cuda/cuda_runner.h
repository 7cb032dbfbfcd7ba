/* The device executor of a Program (the CUDA counterpart of runtime/
 * runner.c): the same calls, the same results, on one GPU.
 *
 * Parameters and constants live on the device from creation on. Each
 * entry point, on its first call, gets its device arenas (its own and its
 * loop bodies'), a device I/O buffer and a pinned host staging buffer of
 * the same layout (cuda_io_layout), and its operation list (cuda_plan_func)
 * resolved to device pointers; the call copies the inputs into the pinned
 * buffer, then uploads, runs and downloads on one stream. With graphs on
 * (IGRC_CUDA_GRAPHS unset or not "0") the first call captures all of that
 * as a CUDA graph and later calls replay it: one launch per call.
 *
 * Not reentrant: one call at a time per runner. */
#ifndef IGRC_RUNTIME_CUDA_RUNNER_H
#define IGRC_RUNTIME_CUDA_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/cuda/cuda_plan.h"
#include "runtime/program/program.h"

typedef struct CudaRunner CudaRunner;

/* Opens the driver, loads the module from image (runtime/cuda/cuda_abi.h),
 * allocates and uploads parameters (params[i]: host data of parameter i,
 * ptensor_bytes each) and constants. p must outlive the runner. */
CudaRunner *cuda_runner_new(const Program *p, const void *image, size_t image_bytes,
                            void *const *params, char *err, size_t errcap);
/* The same with the given launch geometry and library plans (pl->opt is
 * replaced by the image's options); cuda_runner_new passes those of
 * runtime/cuda/cuda_lib_plan.c. */
CudaRunner *cuda_runner_new_planned(const Program *p, const void *image, size_t image_bytes,
                                    void *const *params, const CudaPlanner *pl, char *err,
                                    size_t errcap);
void cuda_runner_free(CudaRunner *r);

/* Runs function f (inputs/outputs as runner_call). Outputs bound to a
 * parameter (cuda_runner_bind) are not written to the host. */
bool cuda_runner_call(CudaRunner *r, int f, const void *const *inputs, void *const *outputs,
                      char *err, size_t errcap);
/* From the next call on, output `out` of f is written into parameter
 * `param` on the device, inside the call's graph. */
bool cuda_runner_bind(CudaRunner *r, int f, int out, int param, char *err, size_t errcap);

/* From the next call of f on, its input (input) or output k is neither
 * staged nor returned: it stays in f's device I/O buffer at *addr, which
 * the caller fills or reads on the runner's stream between calls. */
bool cuda_runner_keep(CudaRunner *r, int f, bool input, int k, uint64_t *addr, char *err, size_t errcap);
/* The stream every call is ordered on (a CUstream). */
void *cuda_runner_stream(CudaRunner *r);

/* Parameter i between the device and host memory (ptensor_bytes). */
bool cuda_runner_get_param(CudaRunner *r, int i, void *host, char *err, size_t errcap);
bool cuda_runner_set_param(CudaRunner *r, int i, const void *host, char *err, size_t errcap);

/* Peak device bytes allocated (arenas, loop buffers, params, consts, I/O
 * buffers, lib scratch), and the pinned host staging bytes. */
int64_t cuda_runner_memory_bytes(const CudaRunner *r);
int64_t cuda_runner_pinned_bytes(const CudaRunner *r);
/* "NAME (sm_XY), CUBIN|PTX for sm_AB, graphs on|off" */
const char *cuda_runner_describe(const CudaRunner *r);

#endif
