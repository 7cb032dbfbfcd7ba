/* One interface for running a Program on any backend (runtime/backend.h:
 * the CPU runner, a CUDA device), so that the executable's commands do not
 * care which: exec_call for runner_call, exec_param for runner_param.
 *
 * Parameters have a host view on every backend. Where the backend keeps
 * them in device memory, the host copy of a parameter is refreshed on
 * demand (exec_param after a call), and host edits are pushed back with
 * exec_params_changed. */
#ifndef IGRC_RUNTIME_EXEC_H
#define IGRC_RUNTIME_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/backend.h"
#include "runtime/program/program.h"

typedef struct Exec Exec;

/* p on the backend called `backend` ("cpu", "cuda"), from the compiled
 * code in c, with threads (the CPU's; <= 0 all cores) and parameters from
 * seed (the same values on every backend). p must outlive the Exec; c's
 * tables and images are used only here. NULL with the reason in err: an
 * unknown backend, code for it missing, a device failure. */
Exec *exec_new(const Program *p, const BackendCode *c, const char *backend, int threads,
               uint32_t seed, char *err, size_t errcap);
void exec_free(Exec *e);
const Backend *exec_backend(const Exec *e);
const Program *exec_program(const Exec *e);

/* Runs function f as runner_call. False on a device failure, with the
 * message in exec_error(e). */
bool exec_call(Exec *e, int f, const void *const *inputs, void *const *outputs);
const char *exec_error(const Exec *e);

/* After each later call of f, output `out` becomes parameter `param` (an
 * optimiser step writing the new weights). On a device the copy happens
 * there, inside the call's graph, and that output is not returned to the
 * host; on the CPU it is returned and copied. */
bool exec_bind_param_output(Exec *e, int f, int out, int param);

/* Host view of parameter i (ptensor_bytes), current as of the last call;
 * NULL on a device failure (exec_error). */
void *exec_param(Exec *e, int i);
/* The host views obtained with exec_param were edited (a checkpoint
 * loaded): make the backend use them. */
bool exec_params_changed(Exec *e);
/* Re-initialises every parameter from seed. */
bool exec_init_params(Exec *e, uint32_t seed);

/* Input (input) or output k of f stays on the device from the next call
 * of f on (backend.h, keep_on_device): *addr is its device address, or 0
 * on a backend that computes in host memory (there the buffers passed to
 * exec_call are the data, as before). False on a device failure. */
bool exec_keep_on_device(Exec *e, int f, bool input, int k, uint64_t *addr);
/* The stream the backend orders calls on, NULL for host-memory backends. */
void *exec_stream(Exec *e);

/* From the next call on, the program's reduce and ranksum steps call c's
 * members as they are reached (runtime/program/program.h). False when the
 * backend cannot (CUDA: its calls are captured graphs): its reduce steps do
 * nothing, so the caller takes the outputs after the call, and its ranksum
 * steps are one rank's copies. */
bool exec_set_collectives(Exec *e, const PCollectives *c);

/* Peak bytes: runner_memory_bytes on the CPU, device bytes on CUDA. */
int64_t exec_memory_bytes(const Exec *e);
/* One line describing the backend ("cpu, 8 threads", the GPU...). */
const char *exec_describe(const Exec *e);

#endif
