/* Loading the CUDA driver (runtime/cuda/cuda_driver.h). */
#include "runtime/cuda/cuda_driver.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rt_error.h"

bool cudrv_ok(const CudaDriver *d, CUresult rc, const char *call, const char *what, char *err,
              size_t errcap) {
    if (rc == CUDA_SUCCESS) return true;
    const char *name = NULL, *text = NULL;
    if (d && d->cuGetErrorName) d->cuGetErrorName(rc, &name);
    if (d && d->cuGetErrorString) d->cuGetErrorString(rc, &text);
    char num[32];
    snprintf(num, sizeof num, "CUresult %d", (int)rc);
    return rt_fail(err, errcap, "CUDA: %s failed while %s: %s (%s)", call, what,
                   name ? name : num, text ? text : "no description");
}

/* Every symbol by its versioned name; false naming the first missing one. */
static bool resolve_symbols(CudaDriver *d, char *err, size_t errcap) {
    struct {
        const char *name;
        void **slot;
    } syms[] = {
#define CUDRV_ENTRY(name, symbol, params) {#symbol, (void **)&d->name},
        CUDA_API_FUNCTIONS(CUDRV_ENTRY)
#undef CUDRV_ENTRY
    };
    for (size_t i = 0; i < sizeof syms / sizeof *syms; i++) {
        *syms[i].slot = dlsym(d->lib, syms[i].name);
        if (!*syms[i].slot)
            return rt_fail(err, errcap, "CUDA: the driver %s lacks %s (a driver older than the "
                                        "CUDA 12 API?)", d->path, syms[i].name);
    }
    return true;
}

static bool open_library(CudaDriver *d, char *err, size_t errcap) {
    const char *env = getenv("IGRC_LIBCUDA");
    snprintf(d->path, sizeof d->path, "%s", env && *env ? env : "libcuda.so.1");
    dlerror();
    d->lib = dlopen(d->path, RTLD_NOW | RTLD_LOCAL);
    if (!d->lib) {
        const char *why = dlerror();
        return rt_fail(err, errcap, "no CUDA driver found (%s)%s", why ? why : d->path,
                       env && *env ? " [IGRC_LIBCUDA]" : "; is the NVIDIA driver installed?");
    }
    return resolve_symbols(d, err, errcap);
}

static bool init_device(CudaDriver *d, char *err, size_t errcap) {
    CUresult rc = d->cuInit(0);
    if (rc == CUDA_ERROR_STUB_LIBRARY)
        return rt_fail(err, errcap, "CUDA: %s is the CUDA toolkit's stub library, not a driver "
                                    "(cuInit returned CUDA_ERROR_STUB_LIBRARY): install the "
                                    "NVIDIA driver or point IGRC_LIBCUDA at its libcuda.so.1",
                       d->path);
    if (!cudrv_ok(d, rc, "cuInit", "initialising the driver", err, errcap)) return false;
    int n = 0;
    if (!cudrv_ok(d, d->cuDeviceGetCount(&n), "cuDeviceGetCount", "counting devices", err,
                  errcap))
        return false;
    if (n < 1) return rt_fail(err, errcap, "CUDA: the driver reports no device");
    /* one GPU per rank of an mpirun job on a machine: its local rank, wrapped */
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    int ordinal = local ? atoi(local) % n : 0;
    if (!cudrv_ok(d, d->cuDeviceGet(&d->dev, ordinal), "cuDeviceGet", "selecting the device", err,
                  errcap) ||
        !cudrv_ok(d, d->cuDeviceGetName(d->name, (int)sizeof d->name, d->dev), "cuDeviceGetName",
                  "reading the device's name", err, errcap) ||
        !cudrv_ok(d, d->cuDeviceGetAttribute(&d->cc_major,
                                             CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d->dev),
                  "cuDeviceGetAttribute", "reading the compute capability", err, errcap) ||
        !cudrv_ok(d, d->cuDeviceGetAttribute(&d->cc_minor,
                                             CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d->dev),
                  "cuDeviceGetAttribute", "reading the compute capability", err, errcap))
        return false;
    if (!cudrv_ok(d, d->cuDriverGetVersion(&d->version), "cuDriverGetVersion",
                  "reading the driver's version", err, errcap) ||
        !cudrv_ok(d, d->cuDevicePrimaryCtxRetain(&d->ctx, d->dev), "cuDevicePrimaryCtxRetain",
                  "retaining the device's primary context", err, errcap))
        return false;
    return cudrv_ok(d, d->cuCtxSetCurrent(d->ctx), "cuCtxSetCurrent",
                    "making the primary context current", err, errcap);
}

bool cudrv_open(CudaDriver *d, char *err, size_t errcap) {
    memset(d, 0, sizeof *d);
    if (open_library(d, err, errcap) && init_device(d, err, errcap)) return true;
    cudrv_close(d);
    return false;
}

void cudrv_close(CudaDriver *d) {
    if (!d) return;
    if (d->ctx && d->cuDevicePrimaryCtxRelease) d->cuDevicePrimaryCtxRelease(d->dev);
    if (d->lib) dlclose(d->lib);
    memset(d, 0, sizeof *d);
}

/* ---- modules ---- */

int cuda_arch_number(const char *arch) {
    if (!arch || strncmp(arch, "sm_", 3) || arch[3] < '0' || arch[3] > '9') return -1;
    int v = 0;
    for (const char *c = arch + 3; *c >= '0' && *c <= '9' && v < 100000; c++) v = v * 10 + (*c - '0');
    return v;
}

CudaPick cuda_image_pick(const CudaImage *img, int major, int minor) {
    int dev = major * 10 + minor, arch = cuda_arch_number(img->arch);
    if (img->cubin && img->cubin_bytes && arch == dev) return CUDA_PICK_CUBIN;
    if (img->ptx && img->ptx_bytes && arch >= 0 && dev >= arch) return CUDA_PICK_PTX;
    return CUDA_PICK_NONE;
}

bool cudrv_load_image(CudaDriver *d, const CudaImage *img, CUmodule *mod, char *err,
                      size_t errcap) {
    CudaPick pick = cuda_image_pick(img, d->cc_major, d->cc_minor);
    if (pick == CUDA_PICK_NONE)
        return rt_fail(err, errcap, "CUDA: the executable's image is for %s (%s%s) and cannot run "
                                    "on %s (compute capability %d.%d): recompile with --target "
                                    "cuda for this GPU",
                       img->arch, img->cubin_bytes ? "CUBIN" : "",
                       img->ptx_bytes ? (img->cubin_bytes ? " and PTX" : "PTX") : "", d->name,
                       d->cc_major, d->cc_minor);
    char log[8192] = "";
    CUjit_option keys[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *vals[2] = {log, (void *)(uintptr_t)sizeof log};
    const void *data = pick == CUDA_PICK_CUBIN ? img->cubin : (const void *)img->ptx;
    CUresult rc = d->cuModuleLoadDataEx(mod, data, 2, keys, vals);
    char what[320];
    snprintf(what, sizeof what, "loading the %s for %s on %s (sm_%d%d)",
             pick == CUDA_PICK_CUBIN ? "CUBIN" : "PTX (JIT)", img->arch, d->name, d->cc_major,
             d->cc_minor);
    if (cudrv_ok(d, rc, "cuModuleLoadDataEx", what, err, errcap)) return true;
    if (log[0] && err) {
        size_t n = strlen(err);
        if (n + 8 < errcap) snprintf(err + n, errcap - n, "\n%s", log);
    }
    return false;
}
