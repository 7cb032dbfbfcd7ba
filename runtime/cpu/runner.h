/* The CPU executor of a Program (runtime/program/program.h): arenas,
 * parameters, a thread pool and the step loop (runtime/cpu/runner.c). The
 * CPU backend of runtime/exec.h runs it. */
#ifndef IGRC_RUNTIME_CPU_RUNNER_H
#define IGRC_RUNTIME_CPU_RUNNER_H

#include "runtime/cpu/threadpool.h"
#include "runtime/program/program.h"

/* Execution state: parameters (initialised from the seed by rt_init_fill,
 * converted to the param's dtype, or loaded), 64-byte aligned arenas (one
 * shared by the entry points, one per loop body), a thread pool (threads <= 0: tp_default_size()). runner_new
 * checks the kernel table and the program's structure (error in err, NULL)
 * and keeps p and a copy of the kernel table; p must outlive the runner. */
typedef struct Runner Runner;

Runner *runner_new(const Program *p, const PKernelFn *kernels, int nkernels, int threads,
                   uint32_t seed, char *err, size_t errcap);
void runner_free(Runner *r);
const Program *runner_program(const Runner *r);
ThreadPool *runner_pool(Runner *r);
/* The storage of parameter i (ptensor_bytes(&p->params[i].t) bytes). */
void *runner_param(Runner *r, int i);
/* Re-initialises every parameter from seed (what runner_new does). */
void runner_init_params(Runner *r, uint32_t seed);
/* Runs function f: inputs[k] points at the k-th input's data, outputs[k]
 * receives the k-th output (caller-allocated, ptensor_bytes each). */
void runner_call(Runner *r, int f, const void *const *inputs, void *const *outputs);
/* From the next call on, reduce and ranksum steps call c's members (c
 * copied; NULL: their one-process meaning, see program.h). */
void runner_set_collectives(Runner *r, const PCollectives *c);
/* Peak bytes the runner holds: arenas (with the loop steps' carry scratch)
 * + params + constants + the largest cpu_op_scratch_bytes of a lib step. */
int64_t runner_memory_bytes(const Runner *r);

#endif
