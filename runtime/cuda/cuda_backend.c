/* The CUDA backend (runtime/backend.h): the program's kernels from the
 * embedded image (runtime/cuda/cuda_abi.h), run by the CUDA runner
 * (runtime/cuda/cuda_runner.h) in device memory; parameters are copied
 * between host and device only when asked for. */
#include <stdio.h>
#include <stdlib.h>

#include "base/rt_error.h"
#include "runtime/backend.h"
#include "runtime/cuda/cuda_runner.h"

struct BackendRun {
    CudaRunner *r;
};

static bool cuda_has_code(const Program *p, const BackendCode *c) {
    (void)p;
    int64_t n;
    return backend_code_image(c, "cuda", &n) != NULL;
}

static int cuda_kernel_count(const BackendCode *c) {
    int64_t n;
    const void *data = backend_code_image(c, "cuda", &n);
    CudaImage img;
    char err[256];
    return data && cuda_image_parse(data, (size_t)n, &img, err, sizeof err) ? img.nkernels : 0;
}

/* The initial parameters, drawn on the host from seed, then uploaded. */
static BackendRun *cuda_load(const Program *p, const BackendCode *c, int threads, uint32_t seed,
                             char *err, size_t errcap) {
    (void)threads;
    int64_t n;
    const void *image = backend_code_image(c, "cuda", &n);
    BackendRun *b = calloc(1, sizeof *b);
    void **host = calloc((size_t)p->nparams + 1, sizeof *host);
    bool ok = b && host;
    for (int i = 0; ok && i < p->nparams; i++) {
        size_t bytes = ptensor_bytes(&p->params[i].t);
        ok = (host[i] = calloc(1, bytes ? bytes : 1)) &&
             program_init_param(&p->params[i], host[i], seed);
    }
    if (!ok) rt_fail(err, errcap, "out of memory initialising parameters");
    else if (!image) ok = rt_fail(err, errcap, "no CUDA image");
    else ok = (b->r = cuda_runner_new(p, image, (size_t)n, host, err, errcap)) != NULL;
    for (int i = 0; host && i < p->nparams; i++) free(host[i]);
    free(host);
    if (!ok) {
        free(b);
        return NULL;
    }
    return b;
}

static void cuda_free(BackendRun *b) {
    if (!b) return;
    cuda_runner_free(b->r);
    free(b);
}

static bool cuda_call(BackendRun *b, int f, const void *const *inputs, void *const *outputs,
                      char *err, size_t errcap) {
    return cuda_runner_call(b->r, f, inputs, outputs, err, errcap);
}

/* The copy runs on the device, inside the call's graph; the bound output
 * is not returned to the host. */
static bool cuda_bind(BackendRun *b, int f, int out, int param, char *err, size_t errcap) {
    return cuda_runner_bind(b->r, f, out, param, err, errcap);
}

static void *cuda_param_host(BackendRun *b, int i) {
    (void)b, (void)i;
    return NULL;
}

static bool cuda_param_get(BackendRun *b, int i, void *dst, char *err, size_t errcap) {
    return cuda_runner_get_param(b->r, i, dst, err, errcap);
}

static bool cuda_param_set(BackendRun *b, int i, const void *src, char *err, size_t errcap) {
    return cuda_runner_set_param(b->r, i, src, err, errcap);
}

static bool cuda_keep_on_device(BackendRun *b, int f, bool input, int k, uint64_t *addr, char *err,
                                size_t errcap) {
    return cuda_runner_keep(b->r, f, input, k, addr, err, errcap);
}

static void *cuda_stream(BackendRun *b) { return cuda_runner_stream(b->r); }

static int64_t cuda_memory_bytes(const BackendRun *b) { return cuda_runner_memory_bytes(b->r); }

static void cuda_describe(const BackendRun *b, char *buf, size_t cap) {
    snprintf(buf, cap, "cuda: %s", cuda_runner_describe(b->r));
}

const Backend backend_cuda = {
    .name = "cuda",
    .has_code = cuda_has_code,
    .kernel_count = cuda_kernel_count,
    .load = cuda_load,
    .free = cuda_free,
    .call = cuda_call,
    .bind = cuda_bind,
    .param_host = cuda_param_host,
    .param_get = cuda_param_get,
    .param_set = cuda_param_set,
    .keep_on_device = cuda_keep_on_device,
    .stream = cuda_stream,
    .memory_bytes = cuda_memory_bytes,
    .describe = cuda_describe,
};
