/* The host-side plan of the CUDA runner, as pure functions of a Program:
 * which launches and copies one call of an entry point makes, with every
 * buffer as an abstract device address; how large each device buffer is;
 * where inputs and outputs sit in the staging buffers; when a captured
 * CUDA graph may be replayed. runtime/cuda/cuda_runner.c turns the addresses into
 * device pointers once and launches (or captures) the list; nothing here
 * touches a device, so tests check it on any machine.
 *
 * Loops are unrolled: a PS_LOOP step becomes the copy of its initial carry,
 * then per trip the body's operations (its inputs bound to the trip-index
 * table entry, the carry and the captures) and the copy of the body's
 * output back into the carry, exactly the CPU runner's order. Each loop
 * step (a "slot": every step of every function has one, cuda_slot()) owns
 * a device table of trip indices 0..TRIPS-1 and a carry scratch buffer. */
#ifndef IGRC_RUNTIME_CUDA_PLAN_H
#define IGRC_RUNTIME_CUDA_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/cuda/cuda_abi.h"
#include "runtime/program/program.h"

/* Byte alignment of every device buffer and staging slot. */
#define CUDA_ALIGN 256
/* Most operations one call may unroll to. */
#define CUDA_MAX_OPS 2000000

typedef enum {
    CA_NULL,    /* no buffer (a lib kernel's absent in1 or scratch) */
    CA_ARENA,   /* index: function; off: byte offset */
    CA_PARAM,   /* index: parameter */
    CA_CONST,   /* index: constant */
    CA_INPUT,   /* index: input of the planned entry point */
    CA_OUTPUT,  /* index: output of the planned entry point */
    CA_TRIPS,   /* index: slot; off: 4 * trip */
    CA_CARRY,   /* index: slot */
    CA_SCRATCH  /* the library kernels' shared scratch */
} CudaSpace;

typedef struct {
    CudaSpace space;
    int index;
    int64_t off;
} CudaAddr;

typedef enum { COP_KERNEL, COP_LIB, COP_COPY } CudaOpKind;

typedef struct {
    CudaOpKind kind;
    int func, step;     /* the Program step it runs; step -1: an output copy */
    int kernel;         /* COP_KERNEL: kernel table index */
    CudaLaunch launch;  /* COP_KERNEL, COP_LIB */
    int naddr;
    CudaAddr *addr;     /* kernel: the step's buffers (ABI order);
                           lib: {out, in0, in1, scratch}; copy: {dst, src} */
    int64_t begin, end; /* kernel: [0, domain) */
    IgrcLibArgs args;   /* lib */
    int64_t bytes;      /* copy */
} CudaOp;

typedef struct {
    CudaOp *ops;
    int n, cap;
    int64_t scratch_bytes; /* the largest lib plan's scratch */
} CudaOpList;

/* The launch geometry and library plans (runtime/cuda/cuda_abi.h), passed in so
 * the plan is checked on its own. */
typedef struct {
    unsigned (*kernel_grid)(int64_t n);
    int (*lib_plan)(CpuOp op, CpuDtype dt, const int64_t *args, const CudaOptions *opt,
                    CudaLaunch *out, int64_t *scratch_bytes, char *err, size_t errcap);
    CudaOptions opt;
} CudaPlanner;

/* Output `out` of an entry point written into parameter `param` on the
 * device after the steps (instead of being returned to the host). */
typedef struct {
    int out, param;
} CudaBind;

/* The operations of one call of entry point f, bound outputs last. */
bool cuda_plan_func(const Program *p, int f, const CudaPlanner *pl, const CudaBind *binds,
                    int nbinds, CudaOpList *ops, char *err, size_t errcap);
void cuda_ops_free(CudaOpList *ops);
/* Kernel parameters of an operation: kernel naddr + 2 (begin, end); lib 5
 * (out, in0, in1, scratch, args); copy 0. */
int cuda_op_nparams(const CudaOp *op);

/* Slot of step s of function f: steps numbered through all functions. */
int cuda_slot(const Program *p, int f, int s);
int cuda_nslots(const Program *p);

/* Device buffer sizes, each rounded up to CUDA_ALIGN. */
typedef struct {
    int nfuncs, nslots;
    int64_t *arena;   /* per function (0: none) */
    int64_t *trips;   /* per slot: 4 * TRIPS for a loop step, else 0 */
    int64_t *carry;   /* per slot: CARRYBYTES for a loop step, else 0 */
    int64_t params, consts, scratch;
} CudaMemPlan;

bool cuda_mem_plan(const Program *p, const CudaPlanner *pl, CudaMemPlan *m, char *err,
                   size_t errcap);
void cuda_mem_plan_free(CudaMemPlan *m);
/* Arena and loop buffers of f and of the loop bodies it reaches. */
int64_t cuda_mem_func_bytes(const Program *p, const CudaMemPlan *m, int f);
/* Marks in reach[] (nfuncs) f and every loop body reachable from it. */
void cuda_func_reach(const Program *p, int f, bool *reach);

/* Where the inputs and outputs of entry point f sit in its device I/O
 * buffer and in the pinned host staging buffer (the same layout): inputs
 * then outputs, each at a CUDA_ALIGN offset. in_off/out_off have
 * ninputs/noutputs entries; returns the total bytes. */
int64_t cuda_io_layout(const PFunc *f, int64_t *in_off, int64_t *out_off);

/* What a call does with its CUDA graph: launch the operations directly
 * (graphs off), capture a graph (none yet, or captured for an older set of
 * bindings) and launch it, or replay the captured one. */
typedef enum { CUDA_RUN_DIRECT, CUDA_RUN_CAPTURE, CUDA_RUN_REPLAY } CudaRunMode;
CudaRunMode cuda_run_mode(bool graphs_on, bool captured, uint64_t captured_gen, uint64_t gen);
/* IGRC_CUDA_GRAPHS: "0" turns graphs off; anything else (or unset) on. */
bool cuda_graphs_enabled(void);

#endif
