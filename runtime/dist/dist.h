/* Processes of one data-parallel job: which rank this process is among how
 * many, and the few collective steps training needs, over Open MPI when the
 * executable runs under mpirun. libmpi is opened at run time (dlopen), so
 * executables need no MPI to run as one process; under mpirun without a
 * loadable libmpi they stop with an error rather than train N independent
 * copies. The reduction order is fixed (DistSum), so a result does not
 * depend on MPI's choice of algorithm. */
#ifndef IGRC_RUNTIME_DIST_H
#define IGRC_RUNTIME_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Dist Dist;

/* The job this process belongs to: one process (size 1, no MPI) unless the
 * environment says mpirun started it (OMPI_COMM_WORLD_SIZE, or PMI_SIZE of
 * another MPI, which is refused). NULL with the reason in err. */
Dist *dist_open(char *err, size_t cap);
void dist_close(Dist *d);
int dist_rank(const Dist *d);
int dist_size(const Dist *d);
/* Bytes this rank has sent so far (its own payload, as the collectives here send it). */
int64_t dist_bytes_sent(const Dist *d);

/* A sum over ranks in flight, in place on every rank: n floats (f64 when
 * f64) at buf, added as a balanced binary tree over ranks in rank order
 * (recursive doubling, partners r ^ 1, r ^ 2, ...: in each round both
 * partners add the same two operands, a + b == b + a in IEEE arithmetic),
 * so every rank gets the same bits, and for a power-of-two size the same
 * bits as the same tree computed in one process. Non-blocking: several run
 * at once (one tag each), and each advances only inside dist_sum_test and
 * dist_sum_wait, so the caller computes between them. */
typedef struct {
    void *buf, *recv;   /* the operand and result; n elements received from the partner */
    int64_t n;
    bool f64;
    int tag;
    int level;          /* the current round's partner distance; size when done */
    void *req[2];       /* the round's MPI_Requests (pointers in Open MPI) */
} DistSum;

/* Starts s on buf (recv: scratch of the same size, untouched by the caller
 * until done); tag, 0 <= tag < DIST_MAX_SUMS, tells concurrent sums apart. */
#define DIST_MAX_SUMS 30000
bool dist_sum_start(Dist *d, DistSum *s, void *buf, void *recv, int64_t n, bool f64, int tag, char *err,
                    size_t cap);
/* Advances s without blocking; *done once buf holds the sum. */
bool dist_sum_test(Dist *d, DistSum *s, bool *done, char *err, size_t cap);
/* Blocks until buf holds the sum. */
bool dist_sum_wait(Dist *d, DistSum *s, char *err, size_t cap);
/* recv (size * n doubles, rank order) = every rank's n doubles. */
bool dist_allgather(Dist *d, const double *send, int64_t n, double *recv, char *err, size_t cap);
/* n bytes from rank root to every rank. */
bool dist_bcast(Dist *d, void *buf, int64_t n, int root, char *err, size_t cap);
/* n bytes to rank partner and n bytes back from it (both call it). */
bool dist_exchange(Dist *d, int partner, const void *send, void *recv, int64_t n, char *err, size_t cap);
/* Ends every rank of the job (after an error on this one). */
void dist_abort(Dist *d, int code);

#endif
