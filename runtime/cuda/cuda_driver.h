/* The CUDA driver API, loaded at run time with dlopen("libcuda.so.1").
 *
 * Generated executables must start on machines without a GPU driver (the
 * CPU backend needs none), so nothing links libcuda: runtime/cuda/cuda_api.h
 * declares the entry points used, each looked up by the versioned symbol
 * cuda.h's macros give it (cuMemAlloc -> "cuMemAlloc_v2"), which is the ABI
 * its prototype describes. IGRC_LIBCUDA names another library
 * file (tests point it at a missing file or at the toolkit's stub).
 *
 * Every call goes through cudrv_ok(), whose message names the call, the
 * CUresult (name and text) and what was being done. */
#ifndef IGRC_RUNTIME_CUDA_DRIVER_H
#define IGRC_RUNTIME_CUDA_DRIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/cuda/cuda_abi.h"
#include "runtime/cuda/cuda_api.h"

#define CUDRV_MEMBER(name, symbol, params) CUresult (*name) params;

typedef struct {
    void *lib;
    char path[512];     /* the library opened */
    CUdevice dev;
    CUcontext ctx;      /* the device's primary context, retained */
    int cc_major, cc_minor;
    char name[128];     /* the device's name */
    int version;        /* cuDriverGetVersion */
    CUDA_API_FUNCTIONS(CUDRV_MEMBER)
} CudaDriver;

/* Opens the driver, initialises it and makes device 0's primary context
 * current. False with the reason: no library ("no CUDA driver found"), the
 * toolkit's stub library, a missing entry point, no device. */
bool cudrv_open(CudaDriver *d, char *err, size_t errcap);
/* Releases the context and closes the library (d may be half open). */
void cudrv_close(CudaDriver *d);

/* True when rc is CUDA_SUCCESS; otherwise false with
 * "CALL failed while WHAT: NAME (text)" in err. */
bool cudrv_ok(const CudaDriver *d, CUresult rc, const char *call, const char *what, char *err,
              size_t errcap);

/* Which part of an image a device of compute capability major.minor runs:
 * the CUBIN when its arch is the device's, else the PTX when present and
 * the device is at least the PTX's arch (the driver JIT-compiles it). */
typedef enum { CUDA_PICK_CUBIN, CUDA_PICK_PTX, CUDA_PICK_NONE } CudaPick;
CudaPick cuda_image_pick(const CudaImage *img, int major, int minor);
/* "sm_90" -> 90 (digits after "sm_"; a suffix such as "a" is ignored), or -1. */
int cuda_arch_number(const char *arch);

/* Loads the module of img for d's device (cuda_image_pick); the JIT log is
 * part of the message when the PTX does not compile. */
bool cudrv_load_image(CudaDriver *d, const CudaImage *img, CUmodule *mod, char *err,
                      size_t errcap);

#endif
