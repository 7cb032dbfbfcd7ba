/* The part of NCCL's C interface (nccl.h, NCCL 2.11 and later) that igrc
 * uses, written from NVIDIA's NCCL API reference: libnccl.so.2 is opened at
 * run time (runtime/dist/nccl.c), so no NCCL header or library is needed
 * to build. Shared with the test double tests/runtime/fake_nccl.c. */
#ifndef IGRC_RUNTIME_NCCL_ABI_H
#define IGRC_RUNTIME_NCCL_ABI_H

#include <stddef.h>

#define NCCL_UNIQUE_ID_BYTES 128

typedef struct ncclComm *ncclComm_t;
typedef struct {
    char internal[NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;
typedef int ncclResult_t;      /* ncclSuccess 0 */
typedef int ncclDataType_t;    /* ncclFloat32 7, ncclFloat64 8 */
typedef int ncclRedOp_t;       /* ncclSum 0; PreMulSum handles from ncclRedOpCreatePreMulSum */
typedef int ncclScalarResidence_t; /* ncclScalarHostImmediate 1 */
typedef void *cudaStream_t;    /* a CUstream */

enum { ncclSuccess = 0, ncclFloat32 = 7, ncclFloat64 = 8, ncclSum = 0, ncclScalarHostImmediate = 1 };

/* The entry points, by their exported names. */
#define IGRC_NCCL_API(X)                                                                                    \
    X(ncclGetVersion, ncclResult_t, (int *version))                                                         \
    X(ncclGetUniqueId, ncclResult_t, (ncclUniqueId * id))                                                   \
    X(ncclCommInitRank, ncclResult_t, (ncclComm_t * comm, int nranks, ncclUniqueId id, int rank))           \
    X(ncclCommDestroy, ncclResult_t, (ncclComm_t comm))                                                     \
    X(ncclCommAbort, ncclResult_t, (ncclComm_t comm))                                                       \
    X(ncclGetErrorString, const char *, (ncclResult_t result))                                              \
    X(ncclRedOpCreatePreMulSum, ncclResult_t,                                                               \
      (ncclRedOp_t * op, void *scalar, ncclDataType_t datatype, ncclScalarResidence_t residence,           \
       ncclComm_t comm))                                                                                    \
    X(ncclRedOpDestroy, ncclResult_t, (ncclRedOp_t op, ncclComm_t comm))                                    \
    X(ncclGroupStart, ncclResult_t, (void))                                                                 \
    X(ncclGroupEnd, ncclResult_t, (void))                                                                   \
    X(ncclAllReduce, ncclResult_t,                                                                          \
      (const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,         \
       ncclComm_t comm, cudaStream_t stream))

#endif
