/* What the test driver library (tests/runtime/fake_cuda.c) reports about
 * its use; read through dlsym("fake_cuda_stats"). */
#ifndef IGRC_TESTS_FAKE_CUDA_H
#define IGRC_TESTS_FAKE_CUDA_H

#include <stdint.h>

typedef struct {
    int captures;        /* cuStreamBeginCapture calls */
    int graph_launches;  /* cuGraphLaunch calls */
    int kernels_run;     /* kernel executions (direct or in a graph) */
    int copies_run;      /* device copies executed, all directions */
    int live_allocs;     /* cuMemAlloc minus cuMemFree */
    int live_host;       /* cuMemHostAlloc minus cuMemFreeHost */
    int64_t live_bytes;  /* device bytes allocated now */
    char loaded[16];     /* "cubin" or "ptx": what cuModuleLoadDataEx got */
} FakeCudaStats;

typedef void (*FakeCudaStatsFn)(FakeCudaStats *out);

#endif
