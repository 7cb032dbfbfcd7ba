/* Open MPI through dlopen: the entry points and predefined handles the job
 * needs, found by name (Open MPI's handles are addresses of its globals,
 * ompi_mpi_comm_world and the like: its ABI, which Debian's libmpi.so.40
 * keeps). IGRC_MPI_LIB names another libmpi. */
#include "runtime/dist/dist.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *Handle; /* MPI_Comm, MPI_Datatype: pointers in Open MPI */

struct Dist {
    int rank, size;
    void *lib;
    Handle world, f32, f64, byte;
    int (*init)(int *, char ***);
    int (*finalize)(void);
    int (*comm_rank)(Handle, int *);
    int (*comm_size)(Handle, int *);
    int (*sendrecv)(const void *, int, Handle, int, int, void *, int, Handle, int, int, Handle, void *);
    int (*allgather)(const void *, int, Handle, void *, int, Handle, Handle);
    int (*bcast)(void *, int, Handle, int, Handle);
    int (*abort)(Handle, int);
    int (*isend)(const void *, int, Handle, int, int, Handle, void **);
    int (*irecv)(void *, int, Handle, int, int, Handle, void **);
    int (*testall)(int, void **, int *, void *);
    int (*waitall)(int, void **, void *);
    int64_t sent; /* bytes this rank has sent */
};

#define LIBMPI "libmpi.so.40"

static bool sym(Dist *d, void *fn, const char *name, char *err, size_t cap) {
    void *p = dlsym(d->lib, name);
    if (!p) {
        snprintf(err, cap, "%s lacks %s (Open MPI 4 or 5 is needed)", LIBMPI, name);
        return false;
    }
    memcpy(fn, &p, sizeof p);
    return true;
}

static bool load(Dist *d, char *err, size_t cap) {
    const char *path = getenv("IGRC_MPI_LIB") ? getenv("IGRC_MPI_LIB") : LIBMPI;
    /* RTLD_GLOBAL: Open MPI's components, opened by libmpi, resolve its symbols. */
    d->lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!d->lib) {
        snprintf(err, cap, "this process runs under mpirun (OMPI_COMM_WORLD_SIZE=%s) but %s cannot be "
                 "loaded (%s): install Open MPI (Debian: openmpi-bin) or run without mpirun",
                 getenv("OMPI_COMM_WORLD_SIZE"), path, dlerror());
        return false;
    }
    return sym(d, &d->init, "MPI_Init", err, cap) && sym(d, &d->finalize, "MPI_Finalize", err, cap) &&
           sym(d, &d->comm_rank, "MPI_Comm_rank", err, cap) && sym(d, &d->comm_size, "MPI_Comm_size", err, cap) &&
           sym(d, &d->sendrecv, "MPI_Sendrecv", err, cap) && sym(d, &d->allgather, "MPI_Allgather", err, cap) &&
           sym(d, &d->bcast, "MPI_Bcast", err, cap) && sym(d, &d->abort, "MPI_Abort", err, cap) &&
           sym(d, &d->isend, "MPI_Isend", err, cap) && sym(d, &d->irecv, "MPI_Irecv", err, cap) &&
           sym(d, &d->testall, "MPI_Testall", err, cap) && sym(d, &d->waitall, "MPI_Waitall", err, cap) &&
           sym(d, &d->world, "ompi_mpi_comm_world", err, cap) && sym(d, &d->f32, "ompi_mpi_float", err, cap) &&
           sym(d, &d->f64, "ompi_mpi_double", err, cap) && sym(d, &d->byte, "ompi_mpi_byte", err, cap);
}

Dist *dist_open(char *err, size_t cap) {
    err[0] = 0;
    Dist *d = calloc(1, sizeof *d);
    if (!d) return snprintf(err, cap, "out of memory"), NULL;
    d->size = 1;
    const char *ompi = getenv("OMPI_COMM_WORLD_SIZE"), *pmi = getenv("PMI_SIZE");
    if (!ompi && pmi && atoi(pmi) > 1) {
        snprintf(err, cap, "this process runs under an MPI launcher other than Open MPI's (PMI_SIZE=%s); "
                 "igrc's executables use Open MPI (mpirun from openmpi-bin)", pmi);
        free(d);
        return NULL;
    }
    if (!ompi) return d;
    if (!load(d, err, cap) || d->init(NULL, NULL) != 0 || d->comm_rank(d->world, &d->rank) != 0 ||
        d->comm_size(d->world, &d->size) != 0) {
        if (d->lib && !err[0]) snprintf(err, cap, "MPI_Init failed");
        free(d);
        return NULL;
    }
    return d;
}

void dist_close(Dist *d) {
    if (!d) return;
    if (d->lib) d->finalize();
    free(d);
}

int dist_rank(const Dist *d) { return d->rank; }
int64_t dist_bytes_sent(const Dist *d) { return d->sent; }
int dist_size(const Dist *d) { return d->size; }

void dist_abort(Dist *d, int code) {
    if (d && d->lib) d->abort(d->world, code);
}

static bool mpi_ok(int rc, const char *what, char *err, size_t cap) {
    if (rc == 0) return true;
    snprintf(err, cap, "%s failed (MPI error %d)", what, rc);
    return false;
}

/* Counts go to MPI as int: a broadcast of more than PART bytes is sent in
 * parts; one sum holds at most PART elements. */
#define PART ((int64_t)1 << 28)

/* Tags of the sums sit above those of dist_exchange (0). */
#define SUM_TAG0 1000

/* Posts the current round's exchange with partner rank ^ level. */
static bool post_round(Dist *d, DistSum *s, char *err, size_t cap) {
    const int partner = d->rank ^ s->level, tag = SUM_TAG0 + s->tag;
    Handle type = s->f64 ? d->f64 : d->f32;
    d->sent += s->n * (s->f64 ? 8 : 4);
    return mpi_ok(d->irecv(s->recv, (int)s->n, type, partner, tag, d->world, &s->req[0]), "MPI_Irecv", err, cap) &&
           mpi_ok(d->isend(s->buf, (int)s->n, type, partner, tag, d->world, &s->req[1]), "MPI_Isend", err, cap);
}

/* The round's exchange is done: add, and post the next round if any. */
static bool end_round(Dist *d, DistSum *s, char *err, size_t cap) {
    if (s->f64)
        for (int64_t i = 0; i < s->n; i++) ((double *)s->buf)[i] += ((const double *)s->recv)[i];
    else
        for (int64_t i = 0; i < s->n; i++) ((float *)s->buf)[i] += ((const float *)s->recv)[i];
    s->level <<= 1;
    return s->level >= d->size || post_round(d, s, err, cap);
}

bool dist_sum_start(Dist *d, DistSum *s, void *buf, void *recv, int64_t n, bool f64, int tag, char *err,
                    size_t cap) {
    *s = (DistSum){.buf = buf, .recv = recv, .n = n, .f64 = f64, .tag = tag, .level = d->size};
    if (d->size == 1) return true;
    if (d->size & (d->size - 1))
        return snprintf(err, cap, "the fixed-order sum needs a power-of-two number of ranks, not %d", d->size), false;
    if (n < 0 || n > PART || tag < 0 || tag >= DIST_MAX_SUMS)
        return snprintf(err, cap, "a sum of %lld elements (tag %d) is beyond the %lld elements and %d tags one sum "
                        "may use", (long long)n, tag, (long long)PART, DIST_MAX_SUMS), false;
    s->level = 1;
    return post_round(d, s, err, cap);
}

bool dist_sum_test(Dist *d, DistSum *s, bool *done, char *err, size_t cap) {
    int flag = 1;
    while (s->level < d->size) {
        if (!mpi_ok(d->testall(2, s->req, &flag, NULL), "MPI_Testall", err, cap)) return false;
        if (!flag) break;
        if (!end_round(d, s, err, cap)) return false;
    }
    *done = s->level >= d->size;
    return true;
}

bool dist_sum_wait(Dist *d, DistSum *s, char *err, size_t cap) {
    while (s->level < d->size)
        if (!mpi_ok(d->waitall(2, s->req, NULL), "MPI_Waitall", err, cap) || !end_round(d, s, err, cap)) return false;
    return true;
}

bool dist_allgather(Dist *d, const double *send, int64_t n, double *recv, char *err, size_t cap) {
    if (d->size == 1) {
        memcpy(recv, send, (size_t)n * sizeof *send);
        return true;
    }
    d->sent += n * (int64_t)sizeof *send;
    return mpi_ok(d->allgather(send, (int)n, d->f64, recv, (int)n, d->f64, d->world), "MPI_Allgather", err, cap);
}

bool dist_exchange(Dist *d, int partner, const void *send, void *recv, int64_t n, char *err, size_t cap) {
    if (partner < 0 || partner >= d->size || partner == d->rank || n > PART)
        return snprintf(err, cap, "no exchange of %lld bytes with rank %d", (long long)n, partner), false;
    d->sent += n;
    return mpi_ok(d->sendrecv(send, (int)n, d->byte, partner, 0, recv, (int)n, d->byte, partner, 0, d->world, NULL),
                  "MPI_Sendrecv", err, cap);
}

bool dist_bcast(Dist *d, void *buf, int64_t n, int root, char *err, size_t cap) {
    if (d->size == 1) return true;
    for (int64_t off = 0; off < n; off += PART) {
        int cnt = (int)(n - off < PART ? n - off : PART);
        if (!mpi_ok(d->bcast((char *)buf + off, cnt, d->byte, root, d->world), "MPI_Bcast", err, cap)) return false;
    }
    return true;
}
