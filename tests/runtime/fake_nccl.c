/* A test double of libnccl.so.2 (loaded through IGRC_NCCL_LIB), so that
 * the data-parallel trainer's NCCL path runs where no GPU is: "device"
 * memory is host memory (the CPU backend's buffers, or fake_cuda's), and
 * the two ranks of a communicator talk over a Unix socket whose abstract
 * name is the unique id. It knows two-rank communicators (igrc's pair
 * communicators; nranks 1 too), sum and PreMulSum of f32/f64 all-reduces,
 * and runs each collective when it is called (a group changes nothing).
 * FAKE_NCCL_TRACE=FILE appends one line per all-reduce to FILE. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "runtime/dist/nccl_abi.h"

enum { ncclSystemError = 2, ncclInvalidArgument = 4, ncclInvalidUsage = 5, ncclRemoteError = 6 };

struct ncclComm {
    int fd, rank, nranks;
};

#define MAX_IDS 64
#define MAX_OPS 64
static struct {
    char name[64];
    int fd;
} g_listen[MAX_IDS]; /* ids this process made: their listening sockets */
static double g_premul[MAX_OPS];
static int g_nops;

static socklen_t address(const char *name, struct sockaddr_un *a) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    size_t n = strlen(name);
    memcpy(a->sun_path + 1, name, n); /* abstract: a leading NUL, nothing on disk */
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

ncclResult_t ncclGetVersion(int *version) {
    *version = 21100; /* 2.11.0: the first with PreMulSum */
    return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t r) {
    return r == ncclSuccess ? "no error" : r == ncclSystemError ? "system error (fake_nccl)"
                                       : r == ncclRemoteError   ? "remote process exited (fake_nccl)"
                                                                : "invalid usage (fake_nccl)";
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    static int made;
    if (made == MAX_IDS) return ncclInvalidUsage;
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "igrc-fake-nccl-%d-%d", (int)getpid(), made);
    struct sockaddr_un a;
    socklen_t len = address(id->internal, &a);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, len) || listen(fd, 1)) return ncclSystemError;
    snprintf(g_listen[made].name, sizeof g_listen[made].name, "%s", id->internal);
    g_listen[made++].fd = fd;
    return ncclSuccess;
}

/* Rank 0 made the id (igrc's lower rank of a pair does) and accepts; rank 1 connects. */
static int pair_fd(const char *name, int rank) {
    if (rank == 0) {
        for (int i = 0; i < MAX_IDS; i++)
            if (g_listen[i].name[0] && !strcmp(g_listen[i].name, name)) {
                int fd = accept(g_listen[i].fd, NULL, NULL);
                close(g_listen[i].fd);
                g_listen[i].name[0] = 0;
                return fd;
            }
        return -1;
    }
    struct sockaddr_un a;
    socklen_t len = address(name, &a);
    for (int tries = 0; tries < 200; tries++) { /* 10 s for the partner to listen */
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, len) == 0) return fd;
        if (fd >= 0) close(fd);
        nanosleep(&(struct timespec){0, 50000000}, NULL);
    }
    return -1;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    if (nranks < 1 || nranks > 2 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
    struct ncclComm *c = calloc(1, sizeof *c);
    if (!c) return ncclSystemError;
    *c = (struct ncclComm){-1, rank, nranks};
    if (nranks == 2 && (c->fd = pair_fd(id.internal, rank)) < 0) {
        free(c);
        return ncclSystemError;
    }
    *comm = c;
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t c) {
    if (c && c->fd >= 0) close(c->fd);
    free(c);
    return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t c) { return ncclCommDestroy(c); }

ncclResult_t ncclRedOpCreatePreMulSum(ncclRedOp_t *op, void *scalar, ncclDataType_t dt,
                                      ncclScalarResidence_t residence, ncclComm_t comm) {
    (void)comm;
    if (residence != ncclScalarHostImmediate || (dt != ncclFloat32 && dt != ncclFloat64) || g_nops == MAX_OPS)
        return ncclInvalidUsage;
    g_premul[g_nops] = dt == ncclFloat64 ? *(const double *)scalar : *(const float *)scalar;
    *op = 100 + g_nops++;
    return ncclSuccess;
}

ncclResult_t ncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm) {
    (void)comm;
    return op >= 100 && op < 100 + g_nops ? ncclSuccess : ncclInvalidArgument;
}

ncclResult_t ncclGroupStart(void) { return ncclSuccess; }
ncclResult_t ncclGroupEnd(void) { return ncclSuccess; }

static bool io(int fd, void *buf, size_t n, bool out) {
    for (size_t done = 0; done < n;) {
        ssize_t k = out ? write(fd, (char *)buf + done, n - done) : read(fd, (char *)buf + done, n - done);
        if (k <= 0 && !(k < 0 && errno == EINTR)) return false;
        if (k > 0) done += (size_t)k;
    }
    return true;
}

static void trace(const ncclComm_t c, size_t count, ncclDataType_t dt, ncclRedOp_t op) {
    const char *path = getenv("FAKE_NCCL_TRACE");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (!f) return;
    fprintf(f, "allreduce pid %d rank %d/%d count %zu %s %s\n", (int)getpid(), c->rank, c->nranks, count,
            dt == ncclFloat64 ? "f64" : "f32", op >= 100 ? "premulsum" : "sum");
    fclose(f);
}

/* recv = pre(mine) + pre(theirs): a + b == b + a, so both ranks get the same bits. */
ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t dt, ncclRedOp_t op,
                           ncclComm_t c, cudaStream_t stream) {
    (void)stream;
    size_t es = dt == ncclFloat64 ? 8 : dt == ncclFloat32 ? 4 : 0;
    if (!c || !es || (op != ncclSum && (op < 100 || op >= 100 + g_nops))) return ncclInvalidArgument;
    trace(c, count, dt, op);
    double s = op == ncclSum ? 1.0 : g_premul[op - 100];
    char *mine = malloc(count * es + 1), *theirs = malloc(count * es + 1);
    if (!mine || !theirs) return free(mine), free(theirs), ncclSystemError;
    for (size_t i = 0; i < count; i++)
        if (es == 8) ((double *)mine)[i] = op == ncclSum ? ((const double *)send)[i] : ((const double *)send)[i] * s;
        else ((float *)mine)[i] = op == ncclSum ? ((const float *)send)[i] : ((const float *)send)[i] * (float)s;
    bool ok = true;
    if (c->nranks == 1) memset(theirs, 0, count * es);
    else if (c->rank == 0) ok = io(c->fd, mine, count * es, true) && io(c->fd, theirs, count * es, false);
    else ok = io(c->fd, theirs, count * es, false) && io(c->fd, mine, count * es, true);
    for (size_t i = 0; ok && i < count; i++)
        if (es == 8) ((double *)recv)[i] = ((double *)mine)[i] + ((double *)theirs)[i];
        else ((float *)recv)[i] = ((float *)mine)[i] + ((float *)theirs)[i];
    free(mine), free(theirs);
    return ok ? ncclSuccess : ncclRemoteError;
}

/* Every entry point has the prototype runtime/dist/nccl_abi.h gives it. */
#define X(name, ret, args) static ret(*const check_##name) args __attribute__((unused)) = name;
IGRC_NCCL_API(X)
#undef X
