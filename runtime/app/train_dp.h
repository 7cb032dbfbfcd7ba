/* Data-parallel training steps (docs/distributed.md): a global batch of B
 * rows is M = B / G micro-batches of G rows (train.micro_batch, compiled
 * in); rank r of N computes micro-batches r M/N ... (r+1) M/N - 1 with
 * train_grads, the gradients are summed over micro-batches as one balanced
 * binary tree in micro-batch order (within the rank, then across ranks:
 * DistSum) and divided by M, and every rank applies the same update with
 * train_apply. Each gradient's sum starts at the reduce step after it in
 * train_grads, so it travels while the rest of the backward pass runs. Random keys and data rows depend on the micro-batch's
 * global index only, so a run gives the same bits at any N. */
#ifndef IGRC_RUNTIME_APP_TRAIN_DP_H
#define IGRC_RUNTIME_APP_TRAIN_DP_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/dist/dist.h"
#include "runtime/exec.h"
#include "runtime/io/dataset.h"
#include "runtime/program/program.h"

typedef struct DpTrain DpTrain;

/* *out = the trainer when the program has train_grads and train_apply,
 * NULL when it has only train_step (then N must be 1). APP_OK, or an exit
 * status with the error printed. */
int dp_open(const Program *p, Exec *r, Dist *dist, DpTrain **out);
void dp_free(DpTrain *t);
int64_t dp_micro_batch(const DpTrain *t);
/* Milliseconds per step spent waiting, after the rank's last micro-batch,
 * for the gradient sums over ranks to complete (what overlapping them with
 * the backward pass leaves). */
double dp_wait_ms(const DpTrain *t);

typedef struct {
    uint32_t seed;
    int64_t step; /* global, 1-based */
    double lr, progress;
} DpStep;

/* One optimiser step on rows start .. start + B - 1 of order: the mean
 * loss over the global batch and its correctly classified rows (every rank
 * gets both). False on a failure (printed). */
bool dp_step(DpTrain *t, const Dataset *d, const int64_t *order, int64_t start, const DpStep *s, double *loss,
             int64_t *correct);

#endif
