/* Data-parallel training steps: see train_dp.h. */
#include "runtime/app/train_dp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/contract.h"
#include "runtime/app/app_internal.h"
#include "runtime/dist/nccl.h"

typedef struct {
    int out, in;     /* train_grads output, train_apply input */
    int64_t offset;  /* elements into the packed gradient */
    int64_t n;
    bool taken;      /* this micro-batch's value is in its leaf */
    bool done;       /* its sum over ranks is complete */
    DistSum sum;
} GradSlot;

struct DpTrain {
    Exec *r;
    Dist *dist;
    const PFunc *grads, *apply;
    int fg, fa;
    int in_x, in_y, in_progress, in_key, out_loss, out_logits, in_lr, in_step;
    int64_t G, M, L, K, img; /* rows per micro-batch, micro-batches, per rank, classes, floats per image */
    GradSlot *slots;
    int nslots;
    int *slot_of;             /* train_grads output -> slot, -1 */
    int *stats;               /* train_grads outputs named like a parameter (running statistics) */
    int nstats;
    int64_t P;                /* gradient elements */
    bool f64;
    char *leaves;             /* L packed gradients */
    char *theirs;             /* what the partner sends in a round of the sum (P elements) */
    int64_t cur;              /* the leaf train_grads is computing */
    int64_t early;            /* sums started by reduce steps (counted for the tests) */
    char err[512];            /* the first failure inside a call */
    char *rs_recv;            /* sum_over_ranks' partner buffer */
    size_t rs_bytes;
    double wait_s;            /* spent waiting for sums after the last call, over `steps` steps */
    int64_t steps;
    void **outs, **aouts;
    const void **gins, **ains;
    float *x;
    int32_t *y;
    float scal[4];
    int32_t key[2];
    double *mb, *all;         /* per micro-batch (loss, correct): this rank's, every rank's */
    Nccl *nccl;               /* set: gradients reduced where computed (open_nccl) */
    void **send, **recv;      /* per slot: train_grads' output, train_apply's input (device or host) */
    int64_t *count;
};

static void take_grad(void *ctx, int f, int out, const void *value, int64_t bytes);
static void sum_over_ranks(void *ctx, void *buf, int64_t n, bool f64);

static bool pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

static int fail(const char *msg, DpTrain *t) {
    fprintf(stderr, "error: %s\n", msg);
    dp_free(t);
    return APP_FAIL;
}

/* The sizes: M micro-batches of G over N ranks, powers of two for the tree. */
static int check_sizes(DpTrain *t, int64_t B, int N) {
    char msg[512];
    t->M = B / t->G;
    if (t->M % N == 0 && pow2(t->M / N) && pow2(N)) {
        t->L = t->M / N;
        return APP_OK;
    }
    snprintf(msg, sizeof msg,
             "%d ranks cannot share batch %" PRId64 " in micro-batches of %" PRId64 " (train.micro_batch): the %"
             PRId64 " micro-batches must split evenly over the ranks, and the ranks and the micro-batches per "
             "rank must be powers of two (the fixed summation order is a binary tree)",
             N, B, t->G, t->M);
    fprintf(stderr, "error: %s\n", msg);
    return APP_USAGE;
}

/* grad.<param> outputs of train_grads and the same inputs of train_apply. */
static bool map_grads(DpTrain *t, const Program *p) {
    const size_t plen = strlen(OUT_GRAD_PREFIX);
    t->slots = calloc((size_t)t->grads->noutputs + 1, sizeof *t->slots);
    t->stats = calloc((size_t)t->grads->noutputs + 1, sizeof *t->stats);
    t->slot_of = malloc(((size_t)t->grads->noutputs + 1) * sizeof *t->slot_of);
    if (!t->slots || !t->stats || !t->slot_of) return false;
    for (int o = 0; o < t->grads->noutputs; o++) t->slot_of[o] = -1;
    for (int o = 0; o < t->grads->noutputs; o++) {
        const PTensor *pt = &t->grads->outputs[o];
        if (program_find_param(p, pt->name) >= 0) {
            t->stats[t->nstats++] = o;
            continue;
        }
        if (strncmp(pt->name, OUT_GRAD_PREFIX, plen)) continue;
        int in = app_find_input(t->apply, pt->name);
        if (in < 0 || ptensor_bytes(&t->apply->inputs[in]) != ptensor_bytes(pt)) {
            fprintf(stderr, "error: train_apply has no input matching train_grads' output %s\n", pt->name);
            return false;
        }
        bool f64 = pt->dtype == PD_F64;
        if ((pt->dtype != PD_F32 && !f64) || (t->nslots && f64 != t->f64)) {
            fprintf(stderr, "error: gradient %s: data-parallel training needs all gradients f32 or all f64\n",
                    pt->name);
            return false;
        }
        t->f64 = f64;
        t->slot_of[o] = t->nslots;
        t->slots[t->nslots++] = (GradSlot){.out = o, .in = in, .offset = t->P, .n = ptensor_numel(pt)};
        t->P += ptensor_numel(pt);
    }
    return t->nslots > 0;
}

static bool bind(DpTrain *t, const Program *p) {
    t->in_x = app_find_input(t->grads, IN_X), t->in_y = app_find_input(t->grads, IN_Y);
    t->in_progress = app_find_input(t->grads, IN_PROGRESS), t->in_key = app_find_input(t->grads, IN_KEY);
    t->out_loss = app_find_output(t->grads, OUT_LOSS), t->out_logits = app_find_output(t->grads, OUT_LOGITS);
    t->in_lr = app_find_input(t->apply, IN_LR), t->in_step = app_find_input(t->apply, IN_STEP);
    if (t->in_x < 0 || t->in_y < 0 || t->in_progress < 0 || t->in_key < 0 || t->out_loss < 0 || t->out_logits < 0 ||
        t->in_lr < 0 || t->in_step < 0 || t->grads->outputs[t->out_loss].dtype != PD_F32) {
        fprintf(stderr, "error: train_grads / train_apply do not have the inputs and outputs of this runtime\n");
        return false;
    }
    t->G = t->grads->inputs[t->in_x].dim[0];
    t->K = t->grads->outputs[t->out_logits].dim[1];
    t->img = ptensor_numel(&t->grads->inputs[t->in_x]) / t->G;
    if (!map_grads(t, p)) return false;
    for (int o = 0; o < t->apply->noutputs; o++) {
        int pi = program_find_param(p, t->apply->outputs[o].name);
        if (pi >= 0 && !exec_bind_param_output(t->r, t->fa, o, pi)) {
            fprintf(stderr, "error: %s\n", exec_error(t->r));
            return false;
        }
    }
    return true;
}

static bool alloc(DpTrain *t) {
    const size_t es = t->f64 ? 8 : 4;
    t->leaves = malloc((size_t)(t->L * t->P) * es);
    t->theirs = malloc((size_t)t->P * es);
    t->outs = app_alloc_outputs(t->grads);
    t->aouts = app_alloc_outputs(t->apply);
    t->gins = calloc((size_t)t->grads->ninputs + 1, sizeof *t->gins);
    t->ains = calloc((size_t)t->apply->ninputs + 1, sizeof *t->ains);
    t->x = malloc((size_t)(t->G * t->img) * sizeof(float));
    t->y = malloc((size_t)t->G * sizeof(int32_t));
    t->mb = malloc((size_t)(2 * t->L) * sizeof(double));
    t->all = malloc((size_t)(2 * t->M) * sizeof(double));
    if (!t->leaves || !t->theirs || !t->outs || !t->aouts || !t->gins || !t->ains || !t->x || !t->y || !t->mb || !t->all) return false;
    t->gins[t->in_x] = t->x, t->gins[t->in_y] = t->y;
    t->gins[t->in_progress] = &t->scal[0], t->gins[t->in_key] = t->key;
    t->ains[t->in_lr] = &t->scal[1], t->ains[t->in_step] = &t->scal[2];
    for (int s = 0; s < t->nslots; s++) t->ains[t->slots[s].in] = t->leaves + (size_t)t->slots[s].offset * es;
    return true;
}

/* NCCL sums the gradients in device memory, from train_grads' outputs into
 * train_apply's inputs, when the backend computes on a device, there are 2
 * or more ranks and each has one micro-batch per step (train.micro_batch =
 * batch / ranks); with more micro-batches per rank their tree runs on the
 * host, over MPI. IGRC_NCCL=0: never; IGRC_NCCL=1: always (on a
 * host-memory backend only a test double of libnccl takes the pointers). */
static int open_nccl(DpTrain *t, int64_t B) {
    const char *env = getenv("IGRC_NCCL");
    bool force = env && !strcmp(env, "1"), want = env && *env ? strcmp(env, "0") != 0 : exec_stream(t->r) != NULL;
    if (!want || dist_size(t->dist) < 2) return APP_OK;
    if (t->L != 1) {
        if (!force) return APP_OK;
        fprintf(stderr, "error: IGRC_NCCL=1 reduces one micro-batch per rank: compile with -D train.micro_batch=%"
                PRId64 " (batch %" PRId64 " over %d ranks), not %" PRId64 "\n", B / dist_size(t->dist), B,
                dist_size(t->dist), t->G);
        return APP_USAGE;
    }
    char err[1024];
    if (!(t->nccl = nccl_open(t->dist, err, sizeof err))) {
        fprintf(stderr, "error: rank %d: %s\n", dist_rank(t->dist), err);
        return APP_FAIL;
    }
    t->send = calloc((size_t)t->nslots, sizeof *t->send), t->recv = calloc((size_t)t->nslots, sizeof *t->recv);
    t->count = calloc((size_t)t->nslots, sizeof *t->count);
    if (!t->send || !t->recv || !t->count) return fail("out of memory", NULL);
    for (int s = 0; s < t->nslots; s++) {
        uint64_t out = 0, in = 0;
        if (!exec_keep_on_device(t->r, t->fg, false, t->slots[s].out, &out) ||
            !exec_keep_on_device(t->r, t->fa, true, t->slots[s].in, &in)) {
            fprintf(stderr, "error: %s\n", exec_error(t->r));
            return APP_FAIL;
        }
        t->send[s] = out ? (void *)(uintptr_t)out : t->outs[t->slots[s].out];
        t->recv[s] = in ? (void *)(uintptr_t)in : (void *)t->ains[t->slots[s].in];
        t->count[s] = t->slots[s].n;
    }
    if (dist_rank(t->dist) == 0)
        fprintf(stderr, "%d ranks: gradients summed with %s\n", dist_size(t->dist), nccl_describe(t->nccl));
    return APP_OK;
}

/* Whether f, or a loop body it runs, has a ranksum step. */
static bool has_ranksum(const Program *p, int f, int depth) {
    for (int s = 0; s < p->funcs[f].nsteps && depth < 64; s++) {
        const PStep *st = &p->funcs[f].steps[s];
        if (st->kind == PS_RANKSUM || (st->kind == PS_LOOP && has_ranksum(p, st->index, depth + 1))) return true;
    }
    return false;
}

/* The reduce steps hand over gradients (IGRC_DP_OVERLAP=0: not; the sums
 * then start after the call), the ranksum steps sum over ranks. A program
 * whose train_grads sums batch-norm statistics over ranks (train.sync_bn)
 * counts M ranks' rows: it runs only with N = M ranks, on a backend that
 * runs its ranksum steps. */
static int open_collectives(DpTrain *t, const Program *p, int64_t B) {
    const char *ov = getenv("IGRC_DP_OVERLAP");
    bool overlap = !(ov && !strcmp(ov, "0")), sync = has_ranksum(p, t->fg, 0);
    PCollectives c = {.reduce = overlap ? take_grad : NULL, .rank_sum = sum_over_ranks, .ctx = t};
    bool ran = exec_set_collectives(t->r, &c);
    if (!sync) return APP_OK;
    int N = dist_size(t->dist);
    if (t->M != N) {
        fprintf(stderr, "error: %s sums batch-norm statistics over ranks (train.sync_bn): compiled for %" PRId64
                " ranks (batch %" PRId64 " in micro-batches of %" PRId64 "), run with %d: use mpirun -np %" PRId64
                ", or compile with -D train.micro_batch=%" PRId64 " for %d\n", p->name, t->M, B, t->G, N, t->M,
                B / N, N);
        return APP_USAGE;
    }
    if (!ran && N > 1) {
        fprintf(stderr, "error: train.sync_bn sums batch-norm statistics over ranks inside train_grads, which the "
                        "%s backend cannot (its calls run as captured graphs): use --device cpu, or compile "
                        "without train.sync_bn (statistics per rank)\n", exec_backend(t->r)->name);
        return APP_USAGE;
    }
    return APP_OK;
}

int dp_open(const Program *p, Exec *r, Dist *dist, DpTrain **out) {
    *out = NULL;
    int fg = program_find_func(p, ENTRY_TRAIN_GRADS), fa = program_find_func(p, ENTRY_TRAIN_APPLY);
    if (fg < 0 || fa < 0) {
        if (dist_size(dist) == 1) return APP_OK;
        fprintf(stderr, "error: %d ranks, but program %s was compiled without train.micro_batch, so it cannot "
                        "train data-parallel: compile it with -D train.micro_batch=G (G rows per micro-batch)\n",
                dist_size(dist), p->name);
        return APP_USAGE;
    }
    DpTrain *t = calloc(1, sizeof *t);
    if (!t) return fail("out of memory", NULL);
    *t = (DpTrain){.r = r, .dist = dist, .grads = &p->funcs[fg], .apply = &p->funcs[fa], .fg = fg, .fa = fa};
    if (!bind(t, p)) return dp_free(t), APP_FAIL;
    int ts = program_find_func(p, ENTRY_TRAIN_STEP);
    int64_t B = ts >= 0 ? p->funcs[ts].inputs[app_find_input(&p->funcs[ts], IN_X)].dim[0] : t->G;
    int rc = check_sizes(t, B, dist_size(dist));
    if (rc) return dp_free(t), rc;
    if (!alloc(t)) return fail("out of memory", t);
    if ((rc = open_nccl(t, B))) return dp_free(t), rc;
    if ((rc = open_collectives(t, p, B))) return dp_free(t), rc;
    *out = t;
    return APP_OK;
}

int64_t dp_micro_batch(const DpTrain *t) { return t->G; }

double dp_wait_ms(const DpTrain *t) { return t && t->steps ? 1e3 * t->wait_s / (double)t->steps : 0; }

void dp_free(DpTrain *t) {
    if (!t) return;
    free(t->slots), free(t->slot_of), free(t->stats), free(t->leaves), free(t->theirs), free(t->rs_recv);
    if (t->outs) app_free_outputs(t->grads, t->outs);
    if (t->aouts) app_free_outputs(t->apply, t->aouts);
    free(t->gins), free(t->ains), free(t->x), free(t->y), free(t->mb), free(t->all);
    nccl_close(t->nccl);
    free(t->send), free(t->recv), free(t->count);
    free(t);
}

/* Slot g's leaves summed as the balanced binary tree in leaf order, into leaf 0. */
static void sum_leaves(DpTrain *t, const GradSlot *g) {
    const size_t es = t->f64 ? 8 : 4;
    for (int64_t w = 1; w < t->L; w *= 2)
        for (int64_t i = 0; i + w < t->L; i += 2 * w) {
            char *a = t->leaves + (size_t)(i * t->P + g->offset) * es;
            const char *b = t->leaves + (size_t)((i + w) * t->P + g->offset) * es;
            if (t->f64)
                for (int64_t k = 0; k < g->n; k++) ((double *)a)[k] += ((const double *)b)[k];
            else
                for (int64_t k = 0; k < g->n; k++) ((float *)a)[k] += ((const float *)b)[k];
        }
}

/* This micro-batch's gradient g is final: into its leaf. On the rank's last
 * micro-batch (leaf 0) the rank's subtree is then complete, and the sum
 * over ranks starts. */
static void take(DpTrain *t, GradSlot *g, const void *value) {
    const size_t es = t->f64 ? 8 : 4;
    if (g->taken || t->err[0]) return;
    g->taken = true;
    char *leaf = t->leaves + (size_t)(t->cur * t->P + g->offset) * es;
    memcpy(leaf, value, (size_t)g->n * es);
    if (t->cur != 0) return;
    sum_leaves(t, g);
    if (dist_sum_start(t->dist, &g->sum, leaf, t->theirs + (size_t)g->offset * es, g->n, t->f64,
                       (int)(g - t->slots), t->err, sizeof t->err))
        dist_sum_test(t->dist, &g->sum, &g->done, t->err, sizeof t->err);
}

/* Lets the sums in flight move: MPI advances them only inside its calls. */
static void progress(DpTrain *t) {
    for (int i = 0; i < t->nslots && !t->err[0]; i++) {
        GradSlot *g = &t->slots[i];
        if (g->taken && !g->done && t->cur == 0) dist_sum_test(t->dist, &g->sum, &g->done, t->err, sizeof t->err);
    }
}

/* The reduce step after gradient `out` of train_grads (program.h): the
 * gradient goes on its way while the backward pass goes on. */
static void take_grad(void *ctx, int f, int out, const void *value, int64_t bytes) {
    DpTrain *t = ctx;
    (void)bytes;
    if (f != t->fg || t->nccl || out < 0 || out >= t->grads->noutputs || t->slot_of[out] < 0) return;
    take(t, &t->slots[t->slot_of[out]], value);
    progress(t);
}

/* A ranksum step (train.sync_bn): in place, blocking, the tag after the
 * gradients' (their sums may be in flight meanwhile). */
static void sum_over_ranks(void *ctx, void *buf, int64_t n, bool f64) {
    DpTrain *t = ctx;
    const size_t bytes = (size_t)n * (f64 ? 8 : 4);
    if (t->err[0] || dist_size(t->dist) == 1) return;
    if (t->rs_bytes < bytes) {
        free(t->rs_recv);
        if (!(t->rs_recv = malloc(bytes))) {
            t->rs_bytes = 0;
            snprintf(t->err, sizeof t->err, "out of memory");
            return;
        }
        t->rs_bytes = bytes;
    }
    DistSum s;
    if (dist_sum_start(t->dist, &s, buf, t->rs_recv, n, f64, t->nslots, t->err, sizeof t->err))
        dist_sum_wait(t->dist, &s, t->err, sizeof t->err);
}

/* Micro-batch m (global index) of the step into leaf l. */
static bool micro_batch(DpTrain *t, const Dataset *d, const int64_t *order, int64_t start, const DpStep *s,
                        int64_t m, int64_t l) {
    dataset_batch(d, order, start + m * t->G, t->G, true, t->x, t->y, NULL);
    t->scal[0] = (float)s->progress;
    t->key[0] = (int32_t)s->seed, t->key[1] = (int32_t)(uint32_t)((uint64_t)s->step * (uint64_t)t->M + (uint64_t)m);
    t->cur = l;
    for (int i = 0; i < t->nslots; i++) t->slots[i].taken = t->slots[i].done = false;
    if (!app_call(t->r, t->fg, t->gins, t->outs)) return false;
    double correct = 0;
    for (int64_t k = 0; k < t->G; k++)
        correct += app_argmax(&t->grads->outputs[t->out_logits], t->outs[t->out_logits], k, t->K) == t->y[k];
    t->mb[2 * l] = *(const float *)t->outs[t->out_loss], t->mb[2 * l + 1] = correct;
    if (t->nccl) return true; /* its gradients stay where they were computed */
    for (int i = 0; i < t->nslots; i++) /* those no reduce step took (a backend without them) */
        take(t, &t->slots[i], t->outs[t->slots[i].out]);
    return !t->err[0];
}

/* Every sum over ranks complete, divided by M (exact: a power of two). */
static bool finish_sums(DpTrain *t) {
    const double inv = 1.0 / (double)t->M;
    for (int i = 0; i < t->nslots; i++) {
        GradSlot *g = &t->slots[i];
        if (!dist_sum_wait(t->dist, &g->sum, t->err, sizeof t->err)) return false;
        if (t->f64)
            for (int64_t k = 0; k < g->n; k++) ((double *)g->sum.buf)[k] *= inv;
        else
            for (int64_t k = 0; k < g->n; k++) ((float *)g->sum.buf)[k] *= (float)inv;
    }
    return true;
}

/* Running statistics: those micro-batch 0 computed (rank 0's first), on every rank. */
static bool share_stats(DpTrain *t, const Program *p, char *err, size_t cap) {
    for (int i = 0; i < t->nstats; i++) {
        const PTensor *pt = &t->grads->outputs[t->stats[i]];
        void *dst = exec_param(t->r, program_find_param(p, pt->name));
        if (!dst) return snprintf(err, cap, "%s", exec_error(t->r)), false;
        if (dist_rank(t->dist) == 0) memcpy(dst, t->outs[t->stats[i]], ptensor_bytes(pt));
        if (!dist_bcast(t->dist, dst, (int64_t)ptensor_bytes(pt), 0, err, cap)) return false;
    }
    return !t->nstats || exec_params_changed(t->r) || (snprintf(err, cap, "%s", exec_error(t->r)), false);
}

bool dp_step(DpTrain *t, const Dataset *d, const int64_t *order, int64_t start, const DpStep *s, double *loss,
             int64_t *correct) {
    const int64_t first = (int64_t)dist_rank(t->dist) * t->L;
    char *err = t->err;
    err[0] = 0;
    bool ok = true;
    for (int64_t l = t->L - 1; ok && l >= 0; l--) /* the first last: its running statistics are kept */
        ok = micro_batch(t, d, order, start, s, first + l, l);
    if (ok && t->nccl)
        ok = nccl_sum_tree(t->nccl, t->send, t->recv, t->count, t->nslots, t->f64, 1.0 / (double)t->M,
                           exec_stream(t->r), err, sizeof t->err);
    else if (ok) {
        double t0 = app_now();
        ok = finish_sums(t);
        t->wait_s += app_now() - t0, t->steps++;
    }
    ok = ok && dist_allgather(t->dist, t->mb, 2 * t->L, t->all, err, sizeof t->err) &&
         share_stats(t, exec_program(t->r), err, sizeof t->err);
    if (!ok) {
        if (err[0]) fprintf(stderr, "\nerror: rank %d: %s\n", dist_rank(t->dist), err);
        return false;
    }
    double lsum = 0, csum = 0;
    for (int64_t m = 0; m < t->M; m++) lsum += t->all[2 * m], csum += t->all[2 * m + 1];
    *loss = lsum / (double)t->M, *correct = (int64_t)csum;
    t->scal[1] = (float)s->lr, t->scal[2] = (float)s->step;
    return app_call(t->r, t->fa, t->ains, t->aouts);
}
