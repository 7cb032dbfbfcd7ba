/* Checkpoints: every parameter of a program (trainable and state, named as
 * in the program, so PyTorch's safetensors.torch.load_file reads them) in
 * one safetensors file, plus where training stood in __metadata__. */
#ifndef IGRC_RUNTIME_CHECKPOINT_H
#define IGRC_RUNTIME_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/exec.h"

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

/* Loads every parameter of e's program from path (and pushes them to the
 * device), after checking all of them (presence, dtype, shape) first, so on
 * failure e is unchanged. Extra
 * tensors in the file are ignored. info (may be NULL) receives the metadata
 * found. Messages name the file and the tensor or key at fault. */
bool ckpt_load(const char *path, Exec *e, CkptInfo *info, char *err, size_t errcap);

#endif
