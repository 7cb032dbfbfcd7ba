/* A fixed pool of worker threads for data-parallel loops: the calling thread
 * takes part, so a pool of n threads starts n - 1 workers. Sized to the
 * machine by default (sysconf(_SC_NPROCESSORS_ONLN)); IGRC_THREADS overrides. */
#ifndef IGRC_RUNTIME_THREADPOOL_H
#define IGRC_RUNTIME_THREADPOOL_H

#include <stdint.h>

typedef struct ThreadPool ThreadPool;

/* fn computes the elements [begin, end) of a loop. */
typedef void (*TpRangeFn)(void *ctx, int64_t begin, int64_t end);

/* n <= 0: the default size (IGRC_THREADS, else the online cores). NULL on
 * failure to start a thread (errno set). */
ThreadPool *tp_new(int n);
void tp_free(ThreadPool *tp);
int tp_size(const ThreadPool *tp);
/* The default size rule alone (what tp_new(0) would start). */
int tp_default_size(void);

/* Runs fn over [0, n) split into contiguous chunks of at least `grain`
 * elements (grain >= 1), at most one chunk per thread when the range is
 * small; returns when every chunk is done. A NULL pool or n <= grain runs
 * fn(ctx, 0, n) on the caller. Not reentrant: fn must not call
 * tp_parallel_for on the same pool (it runs inline if it does). */
void tp_parallel_for(ThreadPool *tp, int64_t n, int64_t grain, TpRangeFn fn, void *ctx);

#endif
