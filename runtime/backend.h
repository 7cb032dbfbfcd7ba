/* The run-time half of a backend: what runs a Program on one kind of
 * device. Each backend fills one Backend table in its own folder
 * (runtime/cpu/cpu_backend.c, runtime/cuda/cuda_backend.c) and has one row
 * in runtime/backend.c; runtime/exec.c is the only caller of the table, and
 * everything above it (the executables' commands, checkpoints, igrc exec,
 * the tests) goes through Exec. The compile-time half is
 * codegen/backend_compile.h: the code generator named "x" there writes the
 * code that the backend named "x" here loads.
 *
 * A backend owns its memory: load allocates what every call needs
 * (parameters, constants, arenas, staging), so a call allocates nothing;
 * calls take and return host buffers, and parameters are copied in and out
 * one at a time (a checkpoint, a --resume). */
#ifndef IGRC_RUNTIME_BACKEND_H
#define IGRC_RUNTIME_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/program/program.h"

/* A device image the compiler embedded for backend `backend` (CUDA's is
 * runtime/cuda/cuda_abi.h's PTX + CUBIN). */
typedef struct {
    const char *backend;
    const void *data;
    int64_t size;
} BackendImage;

/* The compiled code an executable (or a library igrc exec loaded) carries:
 * the host kernel table, NULL/0 when it has none, and device images. */
typedef struct {
    const PKernelFn *kernels;
    int nkernels;
    const BackendImage *images;
    int nimages;
} BackendCode;

/* One program loaded on one backend. */
typedef struct BackendRun BackendRun;

typedef struct Backend {
    const char *name; /* what --device and --backend call it */
    bool host_memory; /* computes in the process's memory (no device memory to report) */
    /* Whether c holds this backend's code for p. */
    bool (*has_code)(const Program *p, const BackendCode *c);
    /* Kernels c holds for this backend (0 when none): what the program's
     * kernel steps may name. */
    int (*kernel_count)(const BackendCode *c);
    /* Loads p (which must outlive the run) with parameters from seed
     * (program_init_param); threads <= 0: the backend's default. */
    BackendRun *(*load)(const Program *p, const BackendCode *c, int threads, uint32_t seed,
                        char *err, size_t errcap);
    void (*free)(BackendRun *r);
    /* Runs function f: inputs[k] and outputs[k] are host buffers of the
     * k-th input and output (ptensor_bytes each). */
    bool (*call)(BackendRun *r, int f, const void *const *inputs, void *const *outputs,
                 char *err, size_t errcap);
    /* From the next call of f on, output `out` becomes parameter `param`
     * after the call (an optimiser step writing the new weights). */
    bool (*bind)(BackendRun *r, int f, int out, int param, char *err, size_t errcap);
    /* Parameter i's storage when the backend computes in host memory; NULL
     * otherwise, and then param_get/param_set copy it out and in. */
    void *(*param_host)(BackendRun *r, int i);
    bool (*param_get)(BackendRun *r, int i, void *dst, char *err, size_t errcap);
    bool (*param_set)(BackendRun *r, int i, const void *src, char *err, size_t errcap);
    /* From the next call of f on, input k (input) or output k of f stays in
     * device memory: the call neither uploads nor returns it (its host
     * pointer is not read), and *addr is where it lives, for the caller to
     * fill or read there between calls, in the order of the backend's
     * stream (a collective reducing gradients in place). NULL on backends
     * that compute in host memory, where the caller's buffers serve. */
    bool (*keep_on_device)(BackendRun *r, int f, bool input, int k, uint64_t *addr, char *err,
                           size_t errcap);
    /* From the next call on, reduce and ranksum steps call c's members
     * (program.h). NULL on a backend whose reduce steps do nothing (the
     * caller takes the outputs after the call) and whose ranksum steps are
     * copies: it runs one rank's programs only. */
    void (*set_collectives)(BackendRun *r, const PCollectives *c);
    /* The stream calls are ordered on (a CUstream); NULL with keep_on_device. */
    void *(*stream)(BackendRun *r);
    /* Peak bytes held on the device. */
    int64_t (*memory_bytes)(const BackendRun *r);
    /* One line: "cpu, 8 threads", the GPU... */
    void (*describe)(const BackendRun *r, char *buf, size_t cap);
} Backend;

/* The backend called name, or NULL. */
const Backend *backend_find(const char *name);
/* Every backend of this runtime, in the order messages list them. */
const Backend *const *backend_all(int *n);
/* Their names as a message lists them: "cpu or cuda". */
const char *backend_names(void);

/* The image for backend name in c, NULL (and *size 0) when there is none. */
const void *backend_code_image(const BackendCode *c, const char *name, int64_t *size);
/* The kernels of c the program may name: the first backend's that has any. */
int backend_code_kernels(const BackendCode *c);
/* False, with why in err, when c lacks be's code for p ("this executable
 * was compiled without --target cuda: it runs only with --device cpu"). */
bool backend_check_code(const Backend *be, const Program *p, const BackendCode *c, char *err,
                        size_t errcap);
/* Whether any step of p is a generated kernel (a library-only program
 * needs no kernel table). */
bool program_has_kernels(const Program *p);

#endif
