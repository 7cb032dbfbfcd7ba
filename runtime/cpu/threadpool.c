/* Thread pool: workers sleep on a condition variable until the caller
 * publishes a job (a new generation), then all participants, the caller
 * included, claim chunk indices from an atomic counter. The caller waits
 * until every worker has acknowledged the generation, so the job fields are
 * never overwritten while a worker still reads them. */
#include "runtime/cpu/threadpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

struct ThreadPool {
    int n;                 /* threads including the caller */
    pthread_t *workers;    /* n - 1 */
    pthread_mutex_t mu;    /* guards gen, stop, pending and the job fields */
    pthread_cond_t wake;   /* caller -> workers: new generation or stop */
    pthread_cond_t done;   /* workers -> caller: pending reached 0 */
    pthread_mutex_t call;  /* serialises concurrent callers */
    uint64_t gen;
    bool stop;
    int pending;           /* workers yet to finish the current generation */
    /* the current job */
    TpRangeFn fn;
    void *ctx;
    int64_t total, nchunks;
    atomic_llong next;     /* next chunk index to claim */
};

/* The pool whose job this thread is running: a nested call runs inline
 * instead of deadlocking on the pool it is part of. */
static _Thread_local const ThreadPool *tl_active;

int tp_default_size(void) {
    const char *s = getenv("IGRC_THREADS");
    if (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end == '\0' && v >= 1 && v <= 1024) return (int)v;
    }
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c >= 1 ? (int)(c > 1024 ? 1024 : c) : 1;
}

int tp_size(const ThreadPool *tp) { return tp ? tp->n : 1; }

/* Claims and runs chunks until none is left. Chunk i is [total*i/k,
 * total*(i+1)/k): fixed boundaries whoever runs it. */
static void run_chunks(ThreadPool *tp) {
    const ThreadPool *outer = tl_active;
    tl_active = tp;
    int64_t k = tp->nchunks, i;
    while ((i = atomic_fetch_add_explicit(&tp->next, 1, memory_order_relaxed)) < k)
        tp->fn(tp->ctx, tp->total * i / k, tp->total * (i + 1) / k);
    tl_active = outer;
}

static void *worker_main(void *arg) {
    ThreadPool *tp = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&tp->mu);
    for (;;) {
        while (!tp->stop && tp->gen == seen) pthread_cond_wait(&tp->wake, &tp->mu);
        if (tp->stop) break;
        seen = tp->gen;
        pthread_mutex_unlock(&tp->mu);
        run_chunks(tp);
        pthread_mutex_lock(&tp->mu);
        if (--tp->pending == 0) pthread_cond_signal(&tp->done);
    }
    pthread_mutex_unlock(&tp->mu);
    return NULL;
}

/* Stops and joins the first `started` workers, then frees everything. */
static void shutdown_pool(ThreadPool *tp, int started) {
    pthread_mutex_lock(&tp->mu);
    tp->stop = true;
    pthread_cond_broadcast(&tp->wake);
    pthread_mutex_unlock(&tp->mu);
    for (int i = 0; i < started; i++) pthread_join(tp->workers[i], NULL);
    pthread_cond_destroy(&tp->wake);
    pthread_cond_destroy(&tp->done);
    pthread_mutex_destroy(&tp->mu);
    pthread_mutex_destroy(&tp->call);
    free(tp->workers);
    free(tp);
}

ThreadPool *tp_new(int n) {
    if (n <= 0) n = tp_default_size();
    ThreadPool *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    tp->n = n;
    tp->workers = calloc((size_t)n, sizeof *tp->workers);
    if (!tp->workers) {
        free(tp);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&tp->mu, NULL);
    pthread_mutex_init(&tp->call, NULL);
    pthread_cond_init(&tp->wake, NULL);
    pthread_cond_init(&tp->done, NULL);
    atomic_init(&tp->next, 0);
    for (int i = 0; i < n - 1; i++) {
        int rc = pthread_create(&tp->workers[i], NULL, worker_main, tp);
        if (rc) {
            shutdown_pool(tp, i);
            errno = rc;
            return NULL;
        }
    }
    return tp;
}

void tp_free(ThreadPool *tp) {
    if (tp) shutdown_pool(tp, tp->n - 1);
}

void tp_parallel_for(ThreadPool *tp, int64_t n, int64_t grain, TpRangeFn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    /* Each chunk gets >= grain elements: at most n / grain chunks. */
    int64_t k = n / grain;
    if (!tp || tp->n == 1 || k < 2 || tl_active == tp) {
        fn(ctx, 0, n);
        return;
    }
    if (k > tp->n) k = tp->n;
    pthread_mutex_lock(&tp->call);
    pthread_mutex_lock(&tp->mu);
    tp->fn = fn;
    tp->ctx = ctx;
    tp->total = n;
    tp->nchunks = k;
    atomic_store_explicit(&tp->next, 0, memory_order_relaxed);
    tp->pending = tp->n - 1;
    tp->gen++;
    pthread_cond_broadcast(&tp->wake);
    pthread_mutex_unlock(&tp->mu);
    run_chunks(tp);
    pthread_mutex_lock(&tp->mu);
    while (tp->pending > 0) pthread_cond_wait(&tp->done, &tp->mu);
    pthread_mutex_unlock(&tp->mu);
    pthread_mutex_unlock(&tp->call);
}
