/* The part of the CUDA driver API (cuda.h of CUDA 12 and 13) that igrc
 * calls, declared here so that the runtime builds where the CUDA toolkit is
 * not installed: the driver is opened with dlopen at run time, so all the
 * runtime needs from cuda.h is its ABI, and that is what this file states.
 *
 * Names and values are cuda.h's. Each function is listed with the symbol
 * the driver exports for it (cuda.h's macros map cuMemAlloc to
 * cuMemAlloc_v2) and its parameter types. tests/runtime/test_cuda_api.c
 * checks every entry against the toolkit's cuda.h when one is installed:
 * the symbol is the name cuda.h's macros give, the prototype is the same,
 * every constant has cuda.h's value and every type its size.
 *
 * IGRC_CUDA_API_LISTS_ONLY (defined before this file, after cuda.h) keeps
 * only the lists, for that check. */
#ifndef IGRC_RUNTIME_CUDA_API_H
#define IGRC_RUNTIME_CUDA_API_H

#include <stddef.h>

/* X(name, value) */
#define CUDA_API_CONSTANTS(X)                           \
    X(CUDA_SUCCESS, 0)                                  \
    X(CUDA_ERROR_INVALID_VALUE, 1)                      \
    X(CUDA_ERROR_OUT_OF_MEMORY, 2)                      \
    X(CUDA_ERROR_STUB_LIBRARY, 34)                      \
    X(CUDA_ERROR_INVALID_DEVICE, 101)                   \
    X(CUDA_ERROR_ILLEGAL_STATE, 401)                    \
    X(CUDA_ERROR_NOT_FOUND, 500)                        \
    X(CUDA_ERROR_LAUNCH_FAILED, 719)                    \
    X(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, 900)       \
    X(CUDA_ERROR_UNKNOWN, 999)                          \
    X(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 75) \
    X(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 76) \
    X(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 8) \
    X(CU_JIT_ERROR_LOG_BUFFER, 5)                       \
    X(CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, 6)            \
    X(CU_STREAM_CAPTURE_MODE_THREAD_LOCAL, 1)           \
    X(CU_STREAM_NON_BLOCKING, 1)

/* X(name, symbol, (parameter types)); every function returns CUresult. */
#define CUDA_API_FUNCTIONS(X)                                                                \
    X(cuInit, cuInit, (unsigned int))                                                        \
    X(cuDriverGetVersion, cuDriverGetVersion, (int *))                                       \
    X(cuGetErrorName, cuGetErrorName, (CUresult, const char **))                             \
    X(cuGetErrorString, cuGetErrorString, (CUresult, const char **))                         \
    X(cuDeviceGetCount, cuDeviceGetCount, (int *))                                           \
    X(cuDeviceGet, cuDeviceGet, (CUdevice *, int))                                           \
    X(cuDeviceGetName, cuDeviceGetName, (char *, int, CUdevice))                             \
    X(cuDeviceGetAttribute, cuDeviceGetAttribute, (int *, CUdevice_attribute, CUdevice))    \
    X(cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRetain, (CUcontext *, CUdevice))           \
    X(cuDevicePrimaryCtxRelease, cuDevicePrimaryCtxRelease_v2, (CUdevice))                   \
    X(cuCtxSetCurrent, cuCtxSetCurrent, (CUcontext))                                         \
    X(cuModuleLoadDataEx, cuModuleLoadDataEx,                                                \
      (CUmodule *, const void *, unsigned int, CUjit_option *, void **))                     \
    X(cuModuleUnload, cuModuleUnload, (CUmodule))                                            \
    X(cuModuleGetFunction, cuModuleGetFunction, (CUfunction *, CUmodule, const char *))      \
    X(cuFuncSetAttribute, cuFuncSetAttribute, (CUfunction, CUfunction_attribute, int))       \
    X(cuMemAlloc, cuMemAlloc_v2, (CUdeviceptr *, size_t))                                    \
    X(cuMemFree, cuMemFree_v2, (CUdeviceptr))                                                \
    X(cuMemHostAlloc, cuMemHostAlloc, (void **, size_t, unsigned int))                       \
    X(cuMemFreeHost, cuMemFreeHost, (void *))                                                \
    X(cuMemGetInfo, cuMemGetInfo_v2, (size_t *, size_t *))                                   \
    X(cuMemcpyHtoD, cuMemcpyHtoD_v2, (CUdeviceptr, const void *, size_t))                    \
    X(cuMemcpyDtoH, cuMemcpyDtoH_v2, (void *, CUdeviceptr, size_t))                          \
    X(cuMemcpyHtoDAsync, cuMemcpyHtoDAsync_v2, (CUdeviceptr, const void *, size_t, CUstream)) \
    X(cuMemcpyDtoHAsync, cuMemcpyDtoHAsync_v2, (void *, CUdeviceptr, size_t, CUstream))      \
    X(cuMemcpyDtoDAsync, cuMemcpyDtoDAsync_v2, (CUdeviceptr, CUdeviceptr, size_t, CUstream)) \
    X(cuStreamCreate, cuStreamCreate, (CUstream *, unsigned int))                            \
    X(cuStreamDestroy, cuStreamDestroy_v2, (CUstream))                                       \
    X(cuStreamSynchronize, cuStreamSynchronize, (CUstream))                                  \
    X(cuStreamBeginCapture, cuStreamBeginCapture_v2, (CUstream, CUstreamCaptureMode))        \
    X(cuStreamEndCapture, cuStreamEndCapture, (CUstream, CUgraph *))                         \
    X(cuGraphInstantiate, cuGraphInstantiateWithFlags, (CUgraphExec *, CUgraph, unsigned long long)) \
    X(cuGraphLaunch, cuGraphLaunch, (CUgraphExec, CUstream))                                 \
    X(cuGraphExecDestroy, cuGraphExecDestroy, (CUgraphExec))                                 \
    X(cuGraphDestroy, cuGraphDestroy, (CUgraph))                                             \
    X(cuLaunchKernel, cuLaunchKernel,                                                        \
      (CUfunction, unsigned int, unsigned int, unsigned int, unsigned int, unsigned int,     \
       unsigned int, unsigned int, CUstream, void **, void **))

#ifndef IGRC_CUDA_API_LISTS_ONLY

/* cuda.h's enums are 4-byte types with these values; passed as int. */
typedef int CUresult;
typedef int CUdevice_attribute;
typedef int CUfunction_attribute;
typedef int CUjit_option;
typedef int CUstreamCaptureMode;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;

#define CUDA_API_ENUM(name, value) name = value,
enum { CUDA_API_CONSTANTS(CUDA_API_ENUM) };
#undef CUDA_API_ENUM

#endif
#endif
