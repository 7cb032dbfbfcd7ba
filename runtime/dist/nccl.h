/* Gradient sums on the GPU with NCCL (libnccl.so.2, opened at run time like
 * the CUDA driver; IGRC_NCCL_LIB names another), in the same fixed order as
 * dist_sum_tree: recursive doubling over ranks, level k between the pair
 * {r, r ^ 2^k}, each pair its own two-rank communicator. A two-rank sum is
 * one IEEE addition a + b, the same bits on both sides and the same as the
 * host tree's, so a run does not depend on whether MPI or NCCL reduced it.
 * MPI (runtime/dist/dist.h) carries each pair's NCCL unique id. */
#ifndef IGRC_RUNTIME_NCCL_H
#define IGRC_RUNTIME_NCCL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/dist/dist.h"

typedef struct Nccl Nccl;

/* Loads NCCL and makes the pair communicators of every level (a collective
 * call: every rank of d, in rank order of levels). The ranks must be a
 * power of two. NULL with the reason in err. */
Nccl *nccl_open(Dist *d, char *err, size_t cap);
void nccl_close(Nccl *n);
/* "NCCL 2.21.5" */
const char *nccl_describe(const Nccl *n);

/* On stream (the backend's CUstream), for every i: recv[i] = the tree sum
 * over ranks of scale * send[i] (count[i] f32 elements, f64 when f64);
 * send and recv in device memory and may be the same. scale, a power of
 * two, is applied before the first level (NCCL's PreMulSum): equal to
 * scaling the sum, exactly. Enqueued only: the caller's next call on the
 * stream comes after it. */
bool nccl_sum_tree(Nccl *n, void *const *send, void *const *recv, const int64_t *count, int nbufs, bool f64,
                   double scale, void *stream, char *err, size_t cap);

#endif
