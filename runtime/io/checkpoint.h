/* Checkpoints: every parameter of a program (trainable and state, named as
 * in the program, so PyTorch's safetensors.torch.load_file reads them) in
 * one safetensors file, plus where training stood in __metadata__; and
 * weights-only files, read from PyTorch or written for it. */
#ifndef IGRC_RUNTIME_CHECKPOINT_H
#define IGRC_RUNTIME_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/exec.h"
#include "runtime/io/weights.h"

typedef struct {
    char program[128];
    char data[256];
    int64_t epoch;   /* epochs completed */
    int64_t batch;   /* batches completed in epoch `epoch` (0 at an epoch end) */
    int64_t step;    /* global steps completed */
    uint32_t seed;
    int64_t batches_per_epoch; /* what the run used, for resume checks; 0 unknown */
    int64_t train_images;      /* the same */
    bool has_position;         /* epoch/batch/step/seed were all in the file */
} CkptInfo;

/* Writes all of e's parameters (their host views, fetched from a device
 * when needed) and info atomically (never a half-written file at path). */
bool ckpt_save(const char *path, Exec *e, const CkptInfo *info, char *err, size_t errcap);

/* Loads e's parameters from path under the rules of runtime/io/weights.h
 * (WEIGHTS_ALL to resume: every parameter; WEIGHTS_ONLY: weights alone, as
 * a PyTorch state_dict holds them; WEIGHTS_FRESH: weights, and a zero
 * optimiser state whatever the file holds) and pushes them to the device.
 * Everything is checked and converted first, so on failure e is unchanged.
 * info (may be NULL) receives the metadata found; notes (may be NULL)
 * receives the zero-filled and ignored-tensor notes. Messages name the file
 * and the tensor or key at fault. */
bool ckpt_load(const char *path, Exec *e, WeightsMode mode, CkptInfo *info, FILE *notes,
               char *err, size_t errcap);

/* Writes the weights alone (every parameter but the optimiser state), in
 * the program's dtypes, atomically, so that PyTorch's
 * model.load_state_dict(load_file(path), strict=True) takes them: each
 * batch norm (X.running_mean and X.running_var) also gets PyTorch's
 * X.num_batches_tracked, an I64 scalar holding info->step. Metadata:
 * format "pt", program (e's), step. */
bool ckpt_export(const char *path, Exec *e, const CkptInfo *info, char *err, size_t errcap);

#endif
