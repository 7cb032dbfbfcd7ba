/* f32 convolutions through oneDNN, when the build has it (IGRC_HAVE_DNNL;
 * cpu_conv_dnnl.c says why): cpu_conv.c's rows try this first and run
 * im2col + OpenBLAS when it returns false (f64, a shape oneDNN has no
 * primitive for, a build without oneDNN, or IGRC_CONV=im2col). */
#ifndef IGRC_RUNTIME_CPU_CONV_DNNL_H
#define IGRC_RUNTIME_CPU_CONV_DNNL_H

#include <stdbool.h>

#include "runtime/cpu/cpu_ops.h"

/* Whether f32 convolutions go to oneDNN in this process: built with it and
 * not turned off by IGRC_CONV=im2col. */
bool cpu_dnnl_enabled(void);
/* Turns the oneDNN path off (false) or back on (unless IGRC_CONV=im2col
 * turned it off at start) for this process: the benchmark's and the
 * tests' comparisons of the two paths in one process. */
void cpu_dnnl_set_enabled(bool enabled);
/* Called first thing in an executable's main: when OMP_WAIT_POLICY is
 * unset, sets it to passive and executes the program again (libgomp reads
 * it before main; cpu_conv_dnnl.c says why); returns otherwise. */
void cpu_dnnl_settle_env(char **argv);
/* Runs a convolution op (cpu_op_run's contract); false, touching nothing,
 * when oneDNN does not take it. */
bool cpu_dnnl_conv_run(ThreadPool *pool, CpuOp op, CpuDtype dt, const int64_t *args,
                       void *const *bufs);
/* The scratch bytes that run needs into *bytes; false when oneDNN does
 * not take the op. */
bool cpu_dnnl_conv_scratch(CpuOp op, CpuDtype dt, const int64_t *args, int threads,
                           size_t *bytes);

#endif
