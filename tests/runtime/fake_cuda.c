/* A test double of libcuda.so.1 for test_cuda_runtime (loaded through
 * IGRC_LIBCUDA), so the CUDA runner's own logic runs where no GPU is:
 * device memory is host memory, a stream runs each operation as it is
 * enqueued, stream capture records the operations (with the kernel
 * parameter values as of the launch, as CUDA does) and a graph launch
 * replays them. It reports one device of compute capability 9.0 and knows
 * the few kernels the runner tests' programs use:
 *
 *   igrc_k0(float *out, const float *c, const float *w, const int *trip,
 *           long long begin, long long end): out[i] = c[i] + w[i] + *trip
 *   igrc_k1(float *out, const float *in, long long begin, long long end):
 *           out[0] = in[0] + in[1] + in[2] + in[3]
 *   fake_matmul(out, a, b, scratch, IgrcLibArgs {batch, M, K, N, 0, 0})
 *
 * FAKE_CUDA_FAIL=NAME makes launches of kernel NAME fail. Every entry point
 * is defined under the symbol runtime/cuda_api.h lists (cuMemAlloc_v2...),
 * with its prototype (checked at the end of this file). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/cuda_abi.h"
#include "runtime/cuda/cuda_api.h"
#include "tests/runtime/fake_cuda.h"

#define MAX_PTR 8

typedef struct FakeFn FakeFn;

typedef struct {
    const FakeFn *fn;                  /* NULL: a copy */
    void *ptr[MAX_PTR];
    long long be[2];
    IgrcLibArgs args;
    void *dst;
    const void *src;
    size_t n;
} Node;

struct FakeFn {
    const char *name;
    int nptr;
    bool lib;
    void (*run)(const Node *);
};

typedef struct {
    Node *nodes;
    int n, cap;
} Graph;

static FakeCudaStats g_stats;
static Graph *g_capture; /* the graph being captured, if any */

void fake_cuda_stats(FakeCudaStats *out) { *out = g_stats; }

/* ---- kernels ---- */

static void k0(const Node *nd) {
    float *out = nd->ptr[0];
    const float *c = nd->ptr[1], *w = nd->ptr[2];
    const int *trip = nd->ptr[3];
    for (long long i = nd->be[0]; i < nd->be[1]; i++) out[i] = c[i] + w[i] + (float)*trip;
}

static void k1(const Node *nd) {
    float *out = nd->ptr[0];
    const float *in = nd->ptr[1];
    out[0] = in[0] + in[1] + in[2] + in[3];
}

static void matmul(const Node *nd) {
    const long long *a = nd->args.a, M = a[1], K = a[2], N = a[3];
    float *out = nd->ptr[0];
    const float *x = nd->ptr[1], *y = nd->ptr[2];
    for (long long b = 0; b < a[0]; b++)
        for (long long i = 0; i < M; i++)
            for (long long j = 0; j < N; j++) {
                float s = 0;
                for (long long k = 0; k < K; k++) s += x[b * M * K + i * K + k] * y[b * K * N + k * N + j];
                out[b * M * N + i * N + j] = s;
            }
}

static const FakeFn kFns[] = {
    {"igrc_k0", 4, false, k0}, {"igrc_k1", 2, false, k1}, {"fake_matmul", 4, true, matmul}};

/* ---- execution ---- */

static void run_node(const Node *nd) {
    if (nd->fn) {
        nd->fn->run(nd);
        g_stats.kernels_run++;
    } else {
        memmove(nd->dst, nd->src, nd->n);
        g_stats.copies_run++;
    }
}

static CUresult submit(const Node *nd) {
    if (!g_capture) {
        run_node(nd);
        return CUDA_SUCCESS;
    }
    Graph *g = g_capture;
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 64;
        Node *n = realloc(g->nodes, (size_t)cap * sizeof *n);
        if (!n) return CUDA_ERROR_OUT_OF_MEMORY;
        g->nodes = n, g->cap = cap;
    }
    g->nodes[g->n++] = *nd;
    return CUDA_SUCCESS;
}

static CUresult copy(void *dst, const void *src, size_t n) {
    Node nd = {.dst = dst, .src = src, .n = n};
    return submit(&nd);
}

/* ---- the driver API ---- */

CUresult cuInit(unsigned int flags) { return flags ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS; }
CUresult cuDriverGetVersion(int *v) { return *v = 13000, CUDA_SUCCESS; }

CUresult cuGetErrorName(CUresult e, const char **s) {
    *s = e == CUDA_ERROR_LAUNCH_FAILED ? "CUDA_ERROR_LAUNCH_FAILED"
         : e == CUDA_ERROR_NOT_FOUND   ? "CUDA_ERROR_NOT_FOUND"
                                       : "CUDA_ERROR_UNKNOWN";
    return CUDA_SUCCESS;
}

CUresult cuGetErrorString(CUresult e, const char **s) {
    *s = e == CUDA_ERROR_LAUNCH_FAILED ? "unspecified launch failure" : "fake error";
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *n) { return *n = 1, CUDA_SUCCESS; }
CUresult cuDeviceGet(CUdevice *d, int i) { return *d = i, i ? CUDA_ERROR_INVALID_DEVICE : CUDA_SUCCESS; }

CUresult cuDeviceGetName(char *name, int len, CUdevice d) {
    (void)d;
    strncpy(name, "Fake GPU", (size_t)len - 1);
    name[len - 1] = 0;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice d) {
    (void)d;
    *v = a == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR ? 9 : 0;
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) {
    (void)d;
    *c = (CUcontext)&g_stats;
    return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) { return (void)d, CUDA_SUCCESS; }
CUresult cuCtxSetCurrent(CUcontext c) { return (void)c, CUDA_SUCCESS; }

/* The image's CUBIN is "FAKECUBIN..."; anything else is taken as PTX. */
CUresult cuModuleLoadDataEx(CUmodule *m, const void *image, unsigned int n,
                                    CUjit_option *o, void **v) {
    (void)n, (void)o, (void)v;
    strcpy(g_stats.loaded, memcmp(image, "FAKECUBIN", 9) ? "ptx" : "cubin");
    *m = (CUmodule)kFns;
    return CUDA_SUCCESS;
}
CUresult cuModuleUnload(CUmodule m) { return (void)m, CUDA_SUCCESS; }

CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) {
    (void)m;
    for (size_t i = 0; i < sizeof kFns / sizeof *kFns; i++)
        if (!strcmp(kFns[i].name, name)) return *f = (CUfunction)&kFns[i], CUDA_SUCCESS;
    return CUDA_ERROR_NOT_FOUND;
}

CUresult cuFuncSetAttribute(CUfunction f, CUfunction_attribute a, int v) {
    return (void)f, (void)a, (void)v, CUDA_SUCCESS;
}

/* Allocations carry their size in front, for the live byte count. */
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
    size_t *b = calloc(1, n + 16);
    if (!b) return CUDA_ERROR_OUT_OF_MEMORY;
    b[0] = n;
    g_stats.live_allocs++, g_stats.live_bytes += (int64_t)n;
    *p = (CUdeviceptr)(uintptr_t)((char *)b + 16);
    return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr p) {
    size_t *b = (size_t *)((char *)(uintptr_t)p - 16);
    g_stats.live_allocs--, g_stats.live_bytes -= (int64_t)b[0];
    free(b);
    return CUDA_SUCCESS;
}

CUresult cuMemHostAlloc(void **p, size_t n, unsigned int flags) {
    (void)flags;
    *p = calloc(1, n);
    g_stats.live_host++;
    return *p ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
CUresult cuMemFreeHost(void *p) {
    free(p);
    g_stats.live_host--;
    return CUDA_SUCCESS;
}

CUresult cuMemGetInfo_v2(size_t *free_b, size_t *total) {
    *free_b = (size_t)1 << 30, *total = (size_t)1 << 31;
    return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void *h, size_t n) {
    memcpy((void *)(uintptr_t)d, h, n);
    return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoH_v2(void *h, CUdeviceptr d, size_t n) {
    memcpy(h, (const void *)(uintptr_t)d, n);
    return CUDA_SUCCESS;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void *h, size_t n, CUstream s) {
    (void)s;
    return copy((void *)(uintptr_t)d, h, n);
}
CUresult cuMemcpyDtoHAsync_v2(void *h, CUdeviceptr d, size_t n, CUstream s) {
    (void)s;
    return copy(h, (const void *)(uintptr_t)d, n);
}
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr src, size_t n, CUstream s) {
    (void)s;
    return copy((void *)(uintptr_t)d, (const void *)(uintptr_t)src, n);
}

CUresult cuStreamCreate(CUstream *s, unsigned int flags) {
    (void)flags;
    *s = (CUstream)&g_capture;
    return CUDA_SUCCESS;
}
CUresult cuStreamDestroy_v2(CUstream s) { return (void)s, CUDA_SUCCESS; }
CUresult cuStreamSynchronize(CUstream s) {
    return (void)s, g_capture ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : CUDA_SUCCESS;
}

CUresult cuStreamBeginCapture_v2(CUstream s, CUstreamCaptureMode mode) {
    (void)s, (void)mode;
    if (g_capture) return CUDA_ERROR_ILLEGAL_STATE;
    g_capture = calloc(1, sizeof *g_capture);
    g_stats.captures++;
    return g_capture ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult cuStreamEndCapture(CUstream s, CUgraph *g) {
    (void)s;
    if (!g_capture) return CUDA_ERROR_ILLEGAL_STATE;
    *g = (CUgraph)g_capture;
    g_capture = NULL;
    return CUDA_SUCCESS;
}

CUresult cuGraphInstantiateWithFlags(CUgraphExec *e, CUgraph g, unsigned long long flags) {
    (void)flags;
    const Graph *src = (const Graph *)g;
    Graph *x = calloc(1, sizeof *x);
    if (!x) return CUDA_ERROR_OUT_OF_MEMORY;
    x->nodes = malloc((size_t)(src->n ? src->n : 1) * sizeof *x->nodes);
    if (src->n) memcpy(x->nodes, src->nodes, (size_t)src->n * sizeof *x->nodes);
    x->n = x->cap = src->n;
    *e = (CUgraphExec)x;
    return CUDA_SUCCESS;
}

static void graph_free(Graph *g) {
    if (!g) return;
    free(g->nodes);
    free(g);
}
CUresult cuGraphDestroy(CUgraph g) { return graph_free((Graph *)g), CUDA_SUCCESS; }
CUresult cuGraphExecDestroy(CUgraphExec e) { return graph_free((Graph *)e), CUDA_SUCCESS; }

CUresult cuGraphLaunch(CUgraphExec e, CUstream s) {
    (void)s;
    const Graph *g = (const Graph *)e;
    g_stats.graph_launches++;
    for (int i = 0; i < g->n; i++) run_node(&g->nodes[i]);
    return CUDA_SUCCESS;
}

/* Parameter values are read now: a captured launch keeps them. */
CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                unsigned int bx, unsigned int by, unsigned int bz,
                                unsigned int shmem, CUstream s, void **params, void **extra) {
    (void)gy, (void)gz, (void)by, (void)bz, (void)shmem, (void)s, (void)extra;
    const FakeFn *fn = (const FakeFn *)f;
    const char *fail = getenv("FAKE_CUDA_FAIL");
    if ((fail && !strcmp(fail, fn->name)) || gx == 0 || bx == 0) return CUDA_ERROR_LAUNCH_FAILED;
    Node nd = {.fn = fn};
    for (int k = 0; k < fn->nptr; k++) nd.ptr[k] = (void *)(uintptr_t)*(CUdeviceptr *)params[k];
    if (fn->lib) {
        nd.args = *(IgrcLibArgs *)params[4];
    } else {
        nd.be[0] = *(long long *)params[fn->nptr];
        nd.be[1] = *(long long *)params[fn->nptr + 1];
    }
    return submit(&nd);
}

/* Each entry point the runtime resolves is defined here, by its symbol,
 * with the prototype runtime/cuda_api.h declares. */
#define FAKE_CHECK(name, symbol, params)                                                \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&symbol), CUresult(*) params), \
                   #symbol " differs from runtime/cuda_api.h");
CUDA_API_FUNCTIONS(FAKE_CHECK)
