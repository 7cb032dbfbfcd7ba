/* Parallel kernel compilation. LLVM optimises and emits one module on one
 * thread, and that is most of a compile (ResNet-18 TRADES+IGR: 595 kernels,
 * O3 and object emission 88% of it). The kernels are split into shards of
 * about equal size, each its own LLVM context and module compiled on its
 * own thread to its own object file. */
#include "codegen/cpu/cpu_shards.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/cpu/llvm_backend.h"

/* Below this many kernels a shard's fixed cost (context, target machine,
 * pass setup, one more object to link) outweighs what it saves. */
#define KERNELS_PER_SHARD 24
#define MAX_SHARDS 16

int cpu_shard_count(int nkernels) {
    const char *env = getenv("IGRC_COMPILE_THREADS");
    long threads = env && *env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    long by_size = nkernels / KERNELS_PER_SHARD;
    long n = threads < by_size ? threads : by_size;
    return n < 1 ? 1 : n > MAX_SHARDS ? MAX_SHARDS : (int)n;
}

typedef struct {
    const KernelDef *const *kernels;
    int *ids, n;   /* the kernels of this shard */
    int64_t work;  /* their instructions, for balancing */
    const char *path;
    Diag d;
    bool ok;
} Shard;

static void *compile_shard(void *arg) {
    Shard *s = arg;
    CpuModule *cm = cpu_module_new("igrc_shard", &s->d);
    bool ok = cm != NULL;
    for (int i = 0; ok && i < s->n; i++) ok = cpu_add_kernel(cm, s->kernels[s->ids[i]], &s->d);
    s->ok = ok && cpu_optimize(cm, &s->d) && cpu_emit_object(cm, s->path, &s->d);
    cpu_module_free(cm);
    return NULL;
}

static int by_size_desc(const void *a, const void *b, void *arg) {
    const KernelDef *const *k = arg;
    int x = k[*(const int *)a]->ninsts, y = k[*(const int *)b]->ninsts;
    return (x < y) - (x > y);
}

/* Largest kernel first into the lightest shard: shards of near-equal work. */
static void balance(const KernelDef *const *kernels, int n, Shard *sh, int nsh) {
    int *order = malloc(sizeof(int) * (size_t)n);
    if (!order) abort();
    for (int i = 0; i < n; i++) order[i] = i;
    qsort_r(order, (size_t)n, sizeof *order, by_size_desc, (void *)kernels);
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int s = 1; s < nsh; s++)
            if (sh[s].work < sh[best].work) best = s;
        sh[best].ids[sh[best].n++] = order[i];
        sh[best].work += kernels[order[i]]->ninsts + 64; /* + per-function cost */
    }
    free(order);
}

bool cpu_compile_shards(const KernelDef *const *kernels, int n, int nshards,
                        const char *const *paths, Diag *d) {
    Shard *sh = calloc((size_t)nshards, sizeof *sh);
    pthread_t *th = calloc((size_t)nshards, sizeof *th);
    if (!sh || !th) abort();
    for (int s = 0; s < nshards; s++) {
        sh[s] = (Shard){.kernels = kernels, .ids = malloc(sizeof(int) * (size_t)(n + 1)),
                        .path = paths[s]};
        if (!sh[s].ids) abort();
        diag_init(&sh[s].d);
    }
    balance(kernels, n, sh, nshards);
    /* Shard 0 runs on this thread; a thread that cannot start runs here too. */
    bool *started = calloc((size_t)nshards, sizeof *started);
    if (!started) abort();
    for (int s = 1; s < nshards; s++) started[s] = pthread_create(&th[s], NULL, compile_shard, &sh[s]) == 0;
    compile_shard(&sh[0]);
    for (int s = 1; s < nshards; s++) {
        if (started[s]) pthread_join(th[s], NULL);
        else compile_shard(&sh[s]);
    }
    bool ok = true;
    for (int s = 0; s < nshards; s++) {
        if (ok && !sh[s].ok) ok = diag_error(d, sh[s].d.code ? sh[s].d.code : EXIT_RUNTIME, "%s", sh[s].d.msg);
        free(sh[s].ids);
    }
    free(started);
    free(th);
    free(sh);
    return ok;
}
