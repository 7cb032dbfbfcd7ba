/* NCCL through dlopen: see nccl.h. */
#include "runtime/dist/nccl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/dist/nccl_abi.h"

#define LIBNCCL "libnccl.so.2"
#define MAX_LEVELS 31

struct Nccl {
    void *lib;
#define X(name, ret, args) ret(*name) args;
    IGRC_NCCL_API(X)
#undef X
    int rank, size, levels;
    ncclComm_t comm[MAX_LEVELS]; /* level k: the pair {rank, rank ^ 2^k} */
    ncclRedOp_t premul;          /* scale * x, then sum, on comm[0] */
    bool has_premul;
    double premul_scale;
    bool premul_f64;
    char desc[64];
};

static bool ok(Nccl *n, ncclResult_t rc, const char *what, char *err, size_t cap) {
    if (rc == ncclSuccess) return true;
    snprintf(err, cap, "%s failed: %s (NCCL error %d; NCCL_DEBUG=WARN says more)", what,
             n->ncclGetErrorString ? n->ncclGetErrorString(rc) : "?", rc);
    return false;
}

static bool load(Nccl *n, char *err, size_t cap) {
    const char *path = getenv("IGRC_NCCL_LIB") && *getenv("IGRC_NCCL_LIB") ? getenv("IGRC_NCCL_LIB") : LIBNCCL;
    if (!(n->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
        snprintf(err, cap, "%s cannot be loaded (%s): install NCCL 2.11 or later (the nvidia-nccl package or "
                           "libnccl2), point IGRC_NCCL_LIB at libnccl.so.2, or set IGRC_NCCL=0 to reduce gradients "
                           "over MPI through the host", path, dlerror());
        return false;
    }
#define X(name, ret, args)                                                                      \
    if (!(*(void **)&n->name = dlsym(n->lib, #name))) {                                         \
        snprintf(err, cap, "%s lacks %s (NCCL 2.11 or later is needed)", path, #name);          \
        return false;                                                                           \
    }
    IGRC_NCCL_API(X)
#undef X
    int v = 0;
    if (!ok(n, n->ncclGetVersion(&v), "ncclGetVersion", err, cap)) return false;
    /* NCCL_VERSION_CODE: major*10000 + minor*100 + patch since 2.9 */
    snprintf(n->desc, sizeof n->desc, "NCCL %d.%d.%d", v / 10000, v / 100 % 100, v % 100);
    return true;
}

/* Level k's pair communicator: the lower rank makes the id, MPI carries it. */
static bool pair_comm(Nccl *n, Dist *d, int k, char *err, size_t cap) {
    int partner = n->rank ^ (1 << k), me = n->rank < partner ? 0 : 1;
    ncclUniqueId id, theirs;
    memset(&id, 0, sizeof id);
    if (me == 0 && !ok(n, n->ncclGetUniqueId(&id), "ncclGetUniqueId", err, cap)) return false;
    if (!dist_exchange(d, partner, &id, &theirs, (int64_t)sizeof id, err, cap)) return false;
    char what[96];
    snprintf(what, sizeof what, "ncclCommInitRank (ranks %d and %d)", n->rank, partner);
    return ok(n, n->ncclCommInitRank(&n->comm[k], 2, me == 0 ? id : theirs, me), what, err, cap);
}

Nccl *nccl_open(Dist *d, char *err, size_t cap) {
    Nccl *n = calloc(1, sizeof *n);
    if (!n) return snprintf(err, cap, "out of memory"), NULL;
    n->rank = dist_rank(d), n->size = dist_size(d);
    if (n->size & (n->size - 1)) {
        snprintf(err, cap, "NCCL's fixed-order sum needs a power-of-two number of ranks, not %d", n->size);
        free(n);
        return NULL;
    }
    bool good = load(n, err, cap);
    for (int k = 0; good && (1 << k) < n->size; k++, n->levels++) good = pair_comm(n, d, k, err, cap);
    if (!good) {
        nccl_close(n);
        return NULL;
    }
    return n;
}

void nccl_close(Nccl *n) {
    if (!n) return;
    if (n->has_premul) n->ncclRedOpDestroy(n->premul, n->comm[0]);
    for (int k = 0; k < n->levels; k++)
        if (n->comm[k]) n->ncclCommDestroy(n->comm[k]);
    if (n->lib) dlclose(n->lib);
    free(n);
}

const char *nccl_describe(const Nccl *n) { return n->desc; }

/* The PreMulSum of level 0 for scale (made once; a new scale remakes it). */
static bool premul(Nccl *n, double scale, bool f64, char *err, size_t cap) {
    if (n->has_premul && n->premul_scale == scale && n->premul_f64 == f64) return true;
    if (n->has_premul) n->ncclRedOpDestroy(n->premul, n->comm[0]);
    n->has_premul = false;
    float s32 = (float)scale;
    double s64 = scale;
    if (!ok(n, n->ncclRedOpCreatePreMulSum(&n->premul, f64 ? (void *)&s64 : (void *)&s32,
                                           f64 ? ncclFloat64 : ncclFloat32, ncclScalarHostImmediate, n->comm[0]),
            "ncclRedOpCreatePreMulSum", err, cap))
        return false;
    n->has_premul = true, n->premul_scale = scale, n->premul_f64 = f64;
    return true;
}

bool nccl_sum_tree(Nccl *n, void *const *send, void *const *recv, const int64_t *count, int nbufs, bool f64,
                   double scale, void *stream, char *err, size_t cap) {
    if (n->levels == 0) return snprintf(err, cap, "NCCL sum over one rank: nothing to reduce"), false;
    if (!premul(n, scale, f64, err, cap)) return false;
    for (int k = 0; k < n->levels; k++) {
        /* One group per level: its buffers go as one launch; levels stay in order on the stream. */
        if (!ok(n, n->ncclGroupStart(), "ncclGroupStart", err, cap)) return false;
        for (int i = 0; i < nbufs; i++) {
            ncclResult_t rc = n->ncclAllReduce(k == 0 ? send[i] : recv[i], recv[i], (size_t)count[i],
                                               f64 ? ncclFloat64 : ncclFloat32, k == 0 ? n->premul : ncclSum,
                                               n->comm[k], stream);
            if (rc != ncclSuccess) {
                n->ncclGroupEnd();
                return ok(n, rc, "ncclAllReduce", err, cap);
            }
        }
        if (!ok(n, n->ncclGroupEnd(), "ncclGroupEnd", err, cap)) return false;
    }
    return true;
}
