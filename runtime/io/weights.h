/* Matching the tensors of a safetensors file to a program's parameters by
 * name: the one set of rules behind every weights loader (the executables'
 * --ckpt, --resume and --init-from through ckpt_load, and igrc exec
 * --params), so that a PyTorch state_dict loads the same way everywhere.
 *
 *   - Weights (every parameter but the optimiser state: trainable ones and
 *     batch-norm running statistics) must be in the file, with the
 *     parameter's shape.
 *   - Optimiser state (non-trainable parameters named optim.*) may be
 *     absent: it is then zero, as a fresh optimiser's is.
 *   - Float tensors (F16, BF16, F32, F64) convert to the parameter's float
 *     type; integer and bool tensors need the parameter's dtype exactly.
 *   - Tensors that are no parameter are ignored, and listed in a note;
 *     PyTorch's <bn>.num_batches_tracked next to a batch norm the program
 *     has is ignored silently (the program's batch norm does not use it).
 */
#ifndef IGRC_RUNTIME_WEIGHTS_H
#define IGRC_RUNTIME_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/io/safetensors.h"

typedef enum {
    WEIGHTS_ALL,   /* every parameter, optimiser state included (resuming) */
    WEIGHTS_ONLY,  /* weights required; optimiser state from the file when there, else zero */
    WEIGHTS_FRESH, /* weights required; optimiser state zero, the file's ignored */
} WeightsMode;

typedef struct {
    const char *name;
    StDtype dtype; /* the parameter's: F32, F64, I32, I64 or BOOL */
    int rank;
    const int64_t *dim;
    bool optim; /* optimiser state (weights_is_optim) */
} WeightsParam;

typedef struct {
    int n;
    /* per parameter: its values in the parameter's dtype (the file's data,
     * or a converted copy), or NULL for zeros */
    const void **data;
    bool *owned;     /* data[i] was allocated here */
    int zero_filled; /* optimiser tensors set to zero */
    int ignored;     /* of those, how many the file had (WEIGHTS_FRESH) */
    int extra;       /* file tensors that are no parameter */
    char extra_names[512]; /* their names, comma-separated, cut short if many */
} WeightsMatch;

/* Optimiser state: a non-trainable parameter named optim.* (frontend/optim.c
 * names it after PyTorch's optimizer state: optim.exp_avg.<param>...). */
bool weights_is_optim(const char *name, bool trainable);

/* Checks every parameter of ps against f (read from path) under mode and
 * converts what needs converting, all before the caller writes anything:
 * on failure nothing is left allocated and err names path, the tensor and,
 * for a mismatch, both dtypes or both shapes. program names the program in
 * the message for a missing tensor. */
bool weights_match(const char *path, const char *program, const StFile *f,
                   const WeightsParam *ps, int n, WeightsMode mode, WeightsMatch *m, char *err,
                   size_t errcap);
void weights_match_free(WeightsMatch *m);

/* At most two lines on out, each starting with prefix: how many optimiser
 * tensors were zero-filled, and the tensors ignored. Nothing when neither. */
void weights_notes(const WeightsMatch *m, const char *path, const char *prefix, FILE *out);

#endif
