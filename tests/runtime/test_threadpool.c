/* Thread pool: every element visited exactly once in chunks that respect
 * the grain and the thread count, inline runs (NULL pool, small ranges,
 * nested calls), true concurrency, sizing from IGRC_THREADS. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "runtime/cpu/threadpool.h"

typedef struct {
    atomic_int *hits;     /* per element */
    atomic_int chunks;
    atomic_llong min_len; /* shortest chunk */
} Visit;

static void visit(void *ctx, int64_t begin, int64_t end) {
    Visit *v = ctx;
    for (int64_t i = begin; i < end; i++) atomic_fetch_add(&v->hits[i], 1);
    atomic_fetch_add(&v->chunks, 1);
    long long len = end - begin, cur = atomic_load(&v->min_len);
    while (len < cur && !atomic_compare_exchange_weak(&v->min_len, &cur, len)) {
    }
}

Test(threadpool, every_element_once) {
    const int threads[] = {1, 2, 3, 4, 7};
    const int64_t ns[] = {0, 1, 2, 3, 5, 6, 7, 64, 100, 1001, 12345};
    const int64_t grains[] = {1, 2, 3, 7, 64, 1000, 100000};
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        ThreadPool *tp = tp_new(threads[t]);
        cr_assert_not_null(tp);
        cr_assert_eq(tp_size(tp), threads[t]);
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
            for (size_t b = 0; b < sizeof grains / sizeof *grains; b++) {
                int64_t n = ns[a], grain = grains[b];
                Visit v = {calloc((size_t)n + 1, sizeof(atomic_int)), 0, INT64_MAX};
                tp_parallel_for(tp, n, grain, visit, &v);
                for (int64_t i = 0; i < n; i++)
                    cr_assert_eq(atomic_load(&v.hits[i]), 1,
                                 "threads %d n %lld grain %lld: element %lld visited %d times",
                                 threads[t], (long long)n, (long long)grain, (long long)i,
                                 atomic_load(&v.hits[i]));
                int chunks = atomic_load(&v.chunks);
                cr_assert_leq(chunks, threads[t], "n %lld grain %lld: %d chunks", (long long)n,
                              (long long)grain, chunks);
                /* More than one chunk: each has at least grain elements. */
                if (chunks > 1) cr_assert_geq(atomic_load(&v.min_len), grain);
                /* A range of at least 2 grains is split when threads allow. */
                if (n >= 2 * grain && threads[t] > 1) cr_assert_geq(chunks, 2);
                free(v.hits);
            }
        tp_free(tp);
    }
}

Test(threadpool, null_pool_runs_inline) {
    Visit v = {calloc(10, sizeof(atomic_int)), 0, INT64_MAX};
    tp_parallel_for(NULL, 10, 1, visit, &v);
    cr_assert_eq(atomic_load(&v.chunks), 1);
    cr_assert_eq(atomic_load(&v.min_len), 10);
    for (int i = 0; i < 10; i++) cr_assert_eq(atomic_load(&v.hits[i]), 1);
    free(v.hits);
    cr_assert_eq(tp_size(NULL), 1);
}

typedef struct {
    ThreadPool *tp;
    atomic_int inner_calls, inline_ok;
} Nest;

typedef struct {
    pthread_t caller;
    int64_t begin, end;
    atomic_int calls;
} Inner;

static void inner(void *ctx, int64_t begin, int64_t end) {
    Inner *in = ctx;
    in->caller = pthread_self();
    in->begin = begin;
    in->end = end;
    atomic_fetch_add(&in->calls, 1);
}

/* Each outer chunk calls the same pool again: it must run inline, as one
 * call on the chunk's own thread. */
static void outer(void *ctx, int64_t begin, int64_t end) {
    Nest *ns = ctx;
    for (int64_t i = begin; i < end; i++) {
        Inner in = {0};
        tp_parallel_for(ns->tp, 1000, 1, inner, &in);
        atomic_fetch_add(&ns->inner_calls, 1);
        if (atomic_load(&in.calls) == 1 && in.begin == 0 && in.end == 1000 &&
            pthread_equal(in.caller, pthread_self()))
            atomic_fetch_add(&ns->inline_ok, 1);
    }
}

Test(threadpool, nested_call_runs_inline) {
    Nest ns = {tp_new(3), 0, 0};
    cr_assert_not_null(ns.tp);
    tp_parallel_for(ns.tp, 12, 1, outer, &ns);
    cr_assert_eq(atomic_load(&ns.inner_calls), 12);
    cr_assert_eq(atomic_load(&ns.inline_ok), 12);
    /* The pool still works afterwards. */
    Visit v = {calloc(50, sizeof(atomic_int)), 0, INT64_MAX};
    tp_parallel_for(ns.tp, 50, 1, visit, &v);
    for (int i = 0; i < 50; i++) cr_assert_eq(atomic_load(&v.hits[i]), 1);
    free(v.hits);
    tp_free(ns.tp);
}

/* Each chunk waits until all k chunks have started: possible only if k
 * threads run at once, so this shows the workers really take part. The
 * timed wait turns a broken pool into a failure instead of a hang. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, k, timeouts;
    pthread_t who[8];
} Rendezvous;

static void rendezvous(void *ctx, int64_t begin, int64_t end) {
    Rendezvous *r = ctx;
    (void)end;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&r->mu);
    r->who[begin] = pthread_self();
    if (++r->started == r->k) pthread_cond_broadcast(&r->cv);
    while (r->started < r->k)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &until)) {
            r->timeouts++;
            break;
        }
    pthread_mutex_unlock(&r->mu);
}

Test(threadpool, chunks_run_concurrently) {
    for (int k = 2; k <= 4; k++) {
        ThreadPool *tp = tp_new(k);
        Rendezvous r = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, k, 0, {0}};
        tp_parallel_for(tp, k, 1, rendezvous, &r);
        cr_assert_eq(r.started, k);
        cr_assert_eq(r.timeouts, 0, "%d threads did not all run at once", k);
        for (int a = 0; a < k; a++)
            for (int b = a + 1; b < k; b++)
                cr_assert(!pthread_equal(r.who[a], r.who[b]), "chunks %d and %d shared a thread",
                          a, b);
        tp_free(tp);
    }
}

static void add_range(void *ctx, int64_t begin, int64_t end) {
    atomic_llong *sum = ctx;
    long long s = 0;
    for (int64_t i = begin; i < end; i++) s += i;
    atomic_fetch_add(sum, s);
}

/* Many back-to-back generations: no lost wake-up, no stale job. */
Test(threadpool, many_calls) {
    ThreadPool *tp = tp_new(3);
    for (int64_t n = 0; n < 2000; n++) {
        atomic_llong sum = 0;
        tp_parallel_for(tp, n, 1 + n % 5, add_range, &sum);
        cr_assert_eq(atomic_load(&sum), n * (n - 1) / 2, "n %lld", (long long)n);
    }
    tp_free(tp);
}

Test(threadpool, default_size) {
    setenv("IGRC_THREADS", "3", 1);
    cr_assert_eq(tp_default_size(), 3);
    ThreadPool *tp = tp_new(0);
    cr_assert_eq(tp_size(tp), 3);
    tp_free(tp);
    setenv("IGRC_THREADS", "junk", 1);
    cr_assert_geq(tp_default_size(), 1);
    unsetenv("IGRC_THREADS");
    cr_assert_geq(tp_default_size(), 1);
    /* A pool that is never used still starts and joins cleanly. */
    tp_free(tp_new(5));
    tp_free(NULL);
}
