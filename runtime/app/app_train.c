/* `train`: the host side of training. Everything that decides the numbers
 * (the permutation, the key, the learning rate, the progress input) is a
 * function of (seed, epoch, batch, global step), so a run resumed from a
 * checkpoint repeats an uninterrupted run bit for bit. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/contract.h"
#include "runtime/app/app_internal.h"
#include "runtime/app/train_dp.h"
#include "runtime/io/checkpoint.h"
#include "runtime/io/outfile.h"

typedef struct {
    /* options */
    const char *data, *out, *resume, *init_from, *device;
    int64_t epochs, batches, limit, ckpt_every, threads, log_every;
    double lr;
    uint32_t seed;
    /* derived */
    const Program *p;
    const PFunc *fn;
    int f;
    int in_x, in_y, in_lr, in_step, in_progress, in_key;
    int out_loss, out_logits;
    int *out_param; /* per output: parameter index or -1 */
    int64_t B, K, nb; /* batch, classes, batches per epoch */
    double *milestones, gamma;
    int nmilestones;
    char ckpt_path[1100], last_path[1100];
    Dist *dist;  /* the ranks of an mpirun job (one process alone) */
    DpTrain *dp; /* data-parallel micro-batches (train.micro_batch), else NULL */
    bool writer; /* rank 0: writes the checkpoints and last.json */
} Train;

static int bind_entry(Train *t) {
    const Program *p = t->p;
    t->f = program_find_func(p, ENTRY_TRAIN_STEP);
    if (t->f < 0) {
        fprintf(stderr, "error: program %s has no train_step entry point, so it cannot be "
                        "trained (was it compiled from a model without an objective?)\n",
                p->name);
        return APP_FAIL;
    }
    const PFunc *fn = t->fn = &p->funcs[t->f];
    if (!app_check_input(fn, IN_X, PD_F32, 4) || !app_check_input(fn, IN_Y, PD_I32, 1))
        return APP_FAIL;
    t->in_x = app_find_input(fn, IN_X), t->in_y = app_find_input(fn, IN_Y);
    t->in_lr = app_find_input(fn, IN_LR), t->in_step = app_find_input(fn, IN_STEP);
    t->in_progress = app_find_input(fn, IN_PROGRESS), t->in_key = app_find_input(fn, IN_KEY);
    for (int i = 0; i < fn->ninputs; i++) {
        const char *n = fn->inputs[i].name;
        bool scalar = !strcmp(n, IN_LR) || !strcmp(n, IN_STEP) || !strcmp(n, IN_PROGRESS);
        if (scalar && ptensor_numel(&fn->inputs[i]) != 1) {
            fprintf(stderr, "error: train_step input '%s' must be a scalar\n", n);
            return APP_FAIL;
        }
        if (!strcmp(n, IN_KEY) && ptensor_numel(&fn->inputs[i]) != 2) {
            fprintf(stderr, "error: train_step input 'key' must have 2 elements\n");
            return APP_FAIL;
        }
        if (!scalar && strcmp(n, IN_KEY) && strcmp(n, IN_X) && strcmp(n, IN_Y)) {
            fprintf(stderr, "error: train_step has an input '%s' this runtime cannot feed "
                            "(it feeds x, y, lr, step, progress, key)\n", n);
            return APP_FAIL;
        }
    }
    t->B = fn->inputs[t->in_x].dim[0];
    t->out_loss = app_find_output(fn, OUT_LOSS);
    if (t->out_loss < 0 || ptensor_numel(&fn->outputs[t->out_loss]) != 1) {
        fprintf(stderr, "error: train_step has no scalar output 'loss'\n");
        return APP_FAIL;
    }
    t->out_logits = app_find_output(fn, OUT_LOGITS);
    if (t->out_logits >= 0) {
        const PTensor *l = &fn->outputs[t->out_logits];
        if (l->rank != 2 || l->dim[0] != t->B || (l->dtype != PD_F32 && l->dtype != PD_F64))
            t->out_logits = -1; /* not usable for accuracy; train anyway */
        else t->K = l->dim[1];
    }
    t->out_param = calloc((size_t)fn->noutputs + 1, sizeof(int));
    if (!t->out_param) return APP_FAIL;
    for (int o = 0; o < fn->noutputs; o++) {
        int pi = program_find_param(p, fn->outputs[o].name);
        t->out_param[o] = pi;
        if (pi >= 0 && ptensor_bytes(&p->params[pi].t) != ptensor_bytes(&fn->outputs[o])) {
            fprintf(stderr, "error: train_step output '%s' does not match its parameter's "
                            "size\n", fn->outputs[o].name);
            return APP_FAIL;
        }
    }
    return APP_OK;
}

/* train_step's outputs named like parameters are the new values: written
 * into them by the backend after each call (on a device, without a round
 * trip through the host). */
static bool bind_params(const Train *t, Exec *r) {
    for (int o = 0; o < t->fn->noutputs; o++)
        if (t->out_param[o] >= 0 && !exec_bind_param_output(r, t->f, o, t->out_param[o])) {
            fprintf(stderr, "error: %s\n", exec_error(r));
            return false;
        }
    return true;
}

/* "75,90" (or a single number) -> epochs where lr *= gamma. */
static int parse_milestones(Train *t) {
    const PSetting *s = program_setting(t->p, "train.lr_milestones");
    t->gamma = app_setting(t->p, "train.lr_gamma");
    if (!s) return APP_OK;
    if (!s->is_str) {
        t->milestones = malloc(sizeof(double));
        if (!t->milestones) return APP_FAIL;
        t->milestones[0] = s->num, t->nmilestones = 1;
        return APP_OK;
    }
    t->milestones = calloc(strlen(s->str) + 1, sizeof(double));
    if (!t->milestones) return APP_FAIL;
    for (const char *c = s->str; *c;) {
        char *end;
        double v = strtod(c, &end);
        if (end == c) {
            fprintf(stderr, "error: setting train.lr_milestones = \"%s\" is not a comma-separated "
                            "list of epochs\n", s->str);
            return APP_FAIL;
        }
        t->milestones[t->nmilestones++] = v;
        c = end;
        while (*c == ',' || *c == ' ') c++;
    }
    return APP_OK;
}

/* PyTorch's MultiStepLR stepped once per epoch: epoch e (0-based) runs at
 * lr * gamma^(milestones <= e). */
static double lr_at(const Train *t, int64_t epoch) {
    double lr = t->lr;
    for (int i = 0; i < t->nmilestones; i++)
        if (t->milestones[i] <= (double)epoch) lr *= t->gamma;
    return lr;
}

static void fmt_time(char *buf, size_t cap, double s) {
    if (!(s >= 0) || s > 1e8) s = 0;
    long v = (long)(s + 0.5);
    if (v >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
    else snprintf(buf, cap, "%ld:%02ld", v / 60, v % 60);
}

/* The first parameter holding a NaN or an infinity, or -1 (with *bad its
 * index in the tensor, *v the value). -2 if a device copy failed. */
static int nonfinite_param(Exec *r, int64_t *bad, double *v) {
    const Program *p = exec_program(r);
    for (int i = 0; i < p->nparams; i++) {
        const PTensor *t = &p->params[i].t;
        if (t->dtype != PD_F32 && t->dtype != PD_F64) continue;
        const void *data = exec_param(r, i);
        if (!data) return -2;
        for (int64_t k = 0; k < ptensor_numel(t); k++) {
            double x = t->dtype == PD_F32 ? ((const float *)data)[k] : ((const double *)data)[k];
            if (!isfinite(x)) return *bad = k, *v = x, i;
        }
    }
    return -1;
}

/* Stops a run whose parameters are no longer finite (a non-finite gradient
 * or update), naming the tensor; what: where the check ran. */
static bool params_finite(const Train *t, Exec *r, const char *what) {
    int64_t k = 0;
    double v = 0;
    int i = nonfinite_param(r, &k, &v);
    if (i == -1) return true;
    if (i == -2) fprintf(stderr, "\nerror: %s\n", exec_error(r));
    else
        fprintf(stderr, "\nerror: parameter '%s' holds %s (element %" PRId64 ") %s; training "
                        "stopped, the last good checkpoint (if any) is %s\n",
                t->p->params[i].t.name, isnan(v) ? "nan" : "inf", k, what, t->ckpt_path);
    return false;
}

static bool save(Train *t, Exec *r, int64_t epoch, int64_t batch, int64_t step, int64_t n) {
    if (!params_finite(t, r, "before the checkpoint")) return false; /* keep the last good one */
    if (!t->writer) return true; /* every rank holds the same weights: rank 0 writes them */
    CkptInfo info;
    memset(&info, 0, sizeof info);
    snprintf(info.program, sizeof info.program, "%s", t->p->name);
    snprintf(info.data, sizeof info.data, "%s", t->data);
    info.epoch = epoch, info.batch = batch, info.step = step, info.seed = t->seed;
    info.batches_per_epoch = t->nb, info.train_images = n;
    char err[2048];
    if (ckpt_save(t->ckpt_path, r, &info, err, sizeof err)) return true;
    fprintf(stderr, "\nerror: saving the checkpoint: %s\n", err);
    return false;
}

static bool write_last(const Train *t, int64_t epoch, int64_t step, double loss, double acc,
                       double ips, double secs, double lr) {
    if (!t->writer) return true;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "program", t->p->name);
    cJSON_AddStringToObject(j, "data", t->data);
    cJSON_AddNumberToObject(j, "epoch", (double)epoch);
    cJSON_AddNumberToObject(j, "epochs", (double)t->epochs);
    cJSON_AddNumberToObject(j, "step", (double)step);
    cJSON_AddNumberToObject(j, "seed", t->seed);
    cJSON_AddNumberToObject(j, "lr", lr);
    cJSON_AddNumberToObject(j, "loss", loss); /* the epoch's mean */
    if (acc >= 0) cJSON_AddNumberToObject(j, "train_accuracy", acc);
    else cJSON_AddNullToObject(j, "train_accuracy"); /* no logits output */
    cJSON_AddNumberToObject(j, "images_per_second", ips);
    cJSON_AddNumberToObject(j, "seconds", secs);
    cJSON_AddStringToObject(j, "checkpoint", t->ckpt_path);
    return app_write_json(j, t->last_path);
}

/* Where the run starts: from scratch, from weights (--init-from: step 0) or
 * from a training checkpoint (--resume: its position and optimiser state). */
static int start_position(Train *t, Exec *r, int64_t n, int64_t *epoch, int64_t *batch,
                          int64_t *step, bool seed_given) {
    *epoch = *batch = *step = 0;
    CkptInfo info;
    char err[2048];
    if (t->init_from) {
        if (!ckpt_load(t->init_from, r, WEIGHTS_FRESH, NULL, stderr, err, sizeof err)) {
            fprintf(stderr, "error: --init-from: %s\n", err);
            return APP_FAIL;
        }
        if (!params_finite(t, r, "in --init-from's weights")) return APP_FAIL;
        printf("starting from the weights in %s (step 0, a fresh optimiser state)\n",
               t->init_from);
        return APP_OK;
    }
    if (!t->resume) return APP_OK;
    if (!ckpt_load(t->resume, r, WEIGHTS_ALL, &info, stderr, err, sizeof err)) {
        fprintf(stderr, "error: --resume: %s\n", err);
        return APP_FAIL;
    }
    if (!params_finite(t, r, "in the checkpoint to resume")) return APP_FAIL;
    if (!info.has_position) {
        fprintf(stderr, "error: --resume: %s has no training position (epoch, batch, step, seed "
                        "metadata); it is not an igrc training checkpoint\n", t->resume);
        return APP_FAIL;
    }
    if (seed_given && info.seed != t->seed)
        fprintf(stderr, "warning: --seed %" PRIu32 " ignored: resuming with the checkpoint's "
                        "seed %" PRIu32 "\n", t->seed, info.seed);
    t->seed = info.seed;
    if ((info.batches_per_epoch && info.batches_per_epoch != t->nb) ||
        (info.train_images && info.train_images != n))
        fprintf(stderr, "warning: the checkpoint was written with %" PRId64 " images in %" PRId64
                        " batches per epoch, this run has %" PRId64 " in %" PRId64
                        ": the continuation will differ from an uninterrupted run\n",
                info.train_images, info.batches_per_epoch, n, t->nb);
    *epoch = info.epoch, *batch = info.batch, *step = info.step;
    if (*batch >= t->nb) (*epoch)++, *batch = 0;
    printf("resuming from %s: epoch %" PRId64 ", batch %" PRId64 ", step %" PRId64 "\n",
           t->resume, *epoch, *batch, *step);
    return APP_OK;
}

/* The state of one training run between steps. */
typedef struct {
    float *x;
    int32_t *y;
    int64_t *perm;
    double scal[3][2]; /* lr, step, progress: room for f64 */
    int64_t key[2];    /* room for i32[2] or i64[2] */
    void **outs;
    const void **ins;
    bool tty;
    double t0, last_print;
    int64_t step, total, done0; /* global step; steps of the run; steps done before it */
    /* this epoch so far */
    double loss_sum, loss_mean, acc, ips, lr;
    int64_t correct, seen, nsteps;
} Loop;

static bool loop_alloc(const Train *t, const Dataset *d, Loop *L) {
    const PFunc *fn = t->fn;
    L->x = malloc((size_t)(t->B * d->c * d->h * d->w) * sizeof(float));
    L->y = malloc((size_t)t->B * sizeof(int32_t));
    L->perm = malloc((size_t)d->n * sizeof(int64_t));
    L->outs = app_alloc_outputs(fn);
    L->ins = calloc((size_t)fn->ninputs + 1, sizeof *L->ins);
    if (!L->x || !L->y || !L->perm || !L->outs || !L->ins) {
        fprintf(stderr, "error: out of memory\n");
        return false;
    }
    L->ins[t->in_x] = L->x, L->ins[t->in_y] = L->y;
    if (t->in_lr >= 0) L->ins[t->in_lr] = L->scal[0];
    if (t->in_step >= 0) L->ins[t->in_step] = L->scal[1];
    if (t->in_progress >= 0) L->ins[t->in_progress] = L->scal[2];
    if (t->in_key >= 0) L->ins[t->in_key] = L->key;
    return true;
}

static void loop_free(const Train *t, Loop *L) {
    free(L->x);
    free(L->y);
    free(L->perm);
    free(L->ins);
    app_free_outputs(t->fn, L->outs);
}

/* The scalar inputs of global step L->step at batch b of epoch e. */
static void store_scalars(const Train *t, Loop *L, int64_t e, int64_t b) {
    const PTensor *in = t->fn->inputs;
    if (t->in_lr >= 0) app_store_num(&in[t->in_lr], L->scal[0], 0, L->lr);
    if (t->in_step >= 0) app_store_num(&in[t->in_step], L->scal[1], 0, (double)L->step);
    if (t->in_progress >= 0)
        app_store_num(&in[t->in_progress], L->scal[2], 0, (double)e + (double)b / (double)t->nb);
    if (t->in_key >= 0) {
        app_store_num(&in[t->in_key], L->key, 0, (double)t->seed);
        app_store_num(&in[t->in_key], L->key, 1, (double)(uint32_t)L->step);
    }
}

/* Adds a step's loss and correctly classified rows to the epoch's; false on
 * a non-finite loss (reported here; the caller then names a non-finite
 * parameter). */
static bool record(const Train *t, Loop *L, int64_t e, int64_t b, double loss, int64_t correct) {
    if (!isfinite(loss)) {
        fprintf(stderr, "%serror: the loss is %s at epoch %" PRId64 " step %" PRId64 "/%" PRId64
                        " (global step %" PRId64 "); training stopped, the last good checkpoint "
                        "(if any) is %s\n",
                L->tty ? "\n" : "", isnan(loss) ? "nan" : "inf", e + 1, b + 1, t->nb, L->step,
                t->ckpt_path);
        return false;
    }
    L->loss_sum += loss, L->nsteps++;
    L->loss_mean = L->loss_sum / (double)L->nsteps;
    if (correct >= 0) {
        L->correct += correct;
        L->seen += t->B;
        L->acc = 100.0 * (double)L->correct / (double)L->seen;
    }
    return true;
}

/* train_step's loss and accuracy (correct -1 without usable logits). */
static bool record_step(const Train *t, Loop *L, int64_t e, int64_t b) {
    const PFunc *fn = t->fn;
    const PTensor *lt = &fn->outputs[t->out_loss];
    double loss = lt->dtype == PD_F64 ? *(double *)L->outs[t->out_loss]
                                      : (double)*(float *)L->outs[t->out_loss];
    int64_t correct = t->out_logits >= 0 ? 0 : -1;
    for (int64_t k = 0; t->out_logits >= 0 && k < t->B; k++)
        correct += app_argmax(&fn->outputs[t->out_logits], L->outs[t->out_logits], k, t->K) == L->y[k];
    return record(t, L, e, b, loss, correct);
}

/* One step: train_step on the batch, or the data-parallel micro-batches. */
static bool step(Train *t, Exec *r, const Dataset *d, Loop *L, int64_t e, int64_t b) {
    if (!t->dp) {
        dataset_batch(d, L->perm, b * t->B, t->B, true, L->x, L->y, NULL);
        store_scalars(t, L, e, b);
        return app_call(r, t->f, L->ins, L->outs) && record_step(t, L, e, b);
    }
    DpStep s = {t->seed, L->step, L->lr, (double)e + (double)b / (double)t->nb};
    double loss;
    int64_t correct;
    return dp_step(t->dp, d, L->perm, b * t->B, &s, &loss, &correct) && record(t, L, e, b, loss, correct);
}

/* The progress line: redrawn in place on a terminal, else one line per
 * epoch and every --log-every steps. */
static void show_progress(const Train *t, Loop *L, int64_t e, int64_t b) {
    double now = app_now() - L->t0;
    int64_t done = e * t->nb + b + 1 - L->done0;
    L->ips = (double)(done * t->B) / (now > 0 ? now : 1e-9);
    bool last = b + 1 == t->nb;
    bool show = L->tty ? (now - L->last_print >= 0.1 || last)
                       : (last || (t->log_every > 0 && L->step % t->log_every == 0));
    if (!show) return;
    char eta[32], accs[32] = "";
    fmt_time(eta, sizeof eta, now / (double)done * (double)(L->total - L->done0 - done));
    if (L->acc >= 0) snprintf(accs, sizeof accs, "  acc %.1f%%", L->acc);
    printf("%sepoch %" PRId64 "/%" PRId64 "  step %" PRId64 "/%" PRId64
           "  loss %.4f%s  %.0f img/s  ETA %s%s",
           L->tty ? "\r" : "", e + 1, t->epochs, b + 1, t->nb, L->loss_mean, accs, L->ips, eta,
           L->tty && !last ? "\033[K" : "\n");
    fflush(stdout);
    L->last_print = now;
}

/* Epoch e from batch b0; the checkpoint and last.json at its end. */
static bool run_epoch(Train *t, Exec *r, const Dataset *d, Loop *L, int64_t e, int64_t b0) {
    dataset_permutation(d->n, t->seed, (uint32_t)e, L->perm);
    L->lr = lr_at(t, e);
    L->loss_sum = 0, L->correct = L->seen = L->nsteps = 0;
    for (int64_t b = b0; b < t->nb; b++) {
        L->step++;
        if (!step(t, r, d, L, e, b)) return params_finite(t, r, "after this step"), false;
        show_progress(t, L, e, b);
        if (t->ckpt_every > 0 && L->step % t->ckpt_every == 0 && b + 1 < t->nb &&
            !save(t, r, e, b + 1, L->step, d->n))
            return false;
    }
    return save(t, r, e + 1, 0, L->step, d->n) &&
           write_last(t, e + 1, L->step, L->loss_mean, L->acc, L->ips, app_now() - L->t0, L->lr);
}

static int run(Train *t, Exec *r, const Dataset *d, bool seed_given) {
    int64_t epoch0, batch0;
    Loop L = {.acc = -1, .lr = t->lr};
    int rc = start_position(t, r, d->n, &epoch0, &batch0, &L.step, seed_given);
    if (rc) return rc;
    if (epoch0 >= t->epochs) {
        printf("nothing to do: the checkpoint has %" PRId64 " of %" PRId64 " epochs done\n",
               epoch0, t->epochs);
        return APP_OK;
    }
    if (!loop_alloc(t, d, &L)) {
        loop_free(t, &L);
        return APP_FAIL;
    }
    L.tty = isatty(fileno(stdout));
    L.t0 = app_now();
    L.total = t->epochs * t->nb, L.done0 = epoch0 * t->nb + batch0;
    int64_t e = epoch0;
    for (; e < t->epochs; e++)
        if (!run_epoch(t, r, d, &L, e, e == epoch0 ? batch0 : 0)) break;
    if (e == t->epochs)
        printf("trained %" PRId64 " epochs (%" PRId64 " steps) in %.1f s; checkpoint %s\n", e,
               L.step, app_now() - L.t0, t->ckpt_path);
    if (e == t->epochs && dist_size(t->dist) > 1 && L.step > L.done0)
        printf("data-parallel: rank 0 sent %.0f bytes per step and waited %.2f ms per step for the sums\n",
               (double)dist_bytes_sent(t->dist) / (double)(L.step - L.done0), dp_wait_ms(t->dp));
    loop_free(t, &L);
    return e == t->epochs ? APP_OK : APP_FAIL;
}

int app_train(const AppCtx *ctx, int argc, char **argv) {
    const Program *p = ctx->p;
    Train t;
    memset(&t, 0, sizeof t);
    t.p = p;
    t.out = "run";
    t.log_every = 50;
    t.epochs = (int64_t)app_setting(p, "train.epochs");
    t.lr = app_setting(p, "train.lr");
    t.seed = (uint32_t)app_setting(p, "train.seed");
    t.device = "cpu";
    AppOpt opts[] = {
        {"data", OPT_STR, &t.data, "NAME|DIR", "mnist, fashion-mnist, cifar10 or a directory", 0},
        {"epochs", OPT_INT, &t.epochs, "N", "epochs to train (default: setting train.epochs)", 0},
        {"lr", OPT_NUM, &t.lr, "X", "base learning rate (default: setting train.lr)", 0},
        {"seed", OPT_U32, &t.seed, "S", "seed of initialisation, shuffling and random ops", 0},
        {"batches", OPT_INT, &t.batches, "N", "stop each epoch after N steps (short runs)", 0},
        {"limit", OPT_INT, &t.limit, "N", "use only the first N training images", 0},
        {"out", OPT_STR, &t.out, "DIR", "where checkpoint.safetensors and last.json go (./run)", 0},
        {"resume", OPT_STR, &t.resume, "CKPT", "continue a run from its checkpoint", 0},
        {"init-from", OPT_STR, &t.init_from, "FILE", "start from these weights (step 0)", 0},
        {"checkpoint-every", OPT_INT, &t.ckpt_every, "N", "also checkpoint every N steps", 0},
        {"threads", OPT_INT, &t.threads, "N", "worker threads (default: all cores)", 0},
        {"log-every", OPT_INT, &t.log_every, "N", "progress line every N steps when not a TTY", 0},
        APP_DEVICE_OPT(&t.device),
    };
    int rc = app_parse("train", "Trains the model and writes checkpoints.", argc, argv, opts,
                       (int)(sizeof opts / sizeof *opts));
    if (rc) return rc == APP_HELP ? APP_OK : rc;
    if (t.resume && t.init_from) {
        fprintf(stderr, "train: --resume continues a run, --init-from starts one: give one of "
                        "them\n");
        return APP_USAGE;
    }
    /* the flags obey the settings' ranges (base/settings.h) */
    if (!app_check_flag("train", "lr", "train.lr", t.lr) ||
        !app_check_flag("train", "epochs", "train.epochs", (double)t.epochs))
        return APP_USAGE;
    const Backend *dev;
    if ((rc = app_check_device(ctx, t.device, &dev))) return rc;
    if (!(t.dist = app_open_ranks())) return APP_FAIL;
    t.writer = dist_rank(t.dist) == 0;
    if ((rc = bind_entry(&t)) || (rc = parse_milestones(&t))) goto out;
    if (!t.data) t.data = app_setting_str(p, "data", NULL);
    Dataset d;
    if (!app_load_data(p, t.data, true, t.limit, &d)) {
        rc = APP_BADINPUT;
        goto out;
    }
    t.nb = dataset_nbatches(d.n, t.B);
    if (t.batches > 0 && t.batches < t.nb) t.nb = t.batches;
    snprintf(t.ckpt_path, sizeof t.ckpt_path, "%s/checkpoint.safetensors", t.out);
    snprintf(t.last_path, sizeof t.last_path, "%s/last.json", t.out);
    Exec *r = NULL;
    if (!app_mkdir(t.out) || !(r = app_exec_new(ctx, dev, t.threads, t.seed)) ||
        !bind_params(&t, r)) {
        rc = APP_FAIL;
    } else if (!(rc = dp_open(p, r, t.dist, &t.dp))) {
        /* a writer killed mid-write (kill -9) leaves its full-size temporary */
        if (t.writer) outfile_remove_stale(t.ckpt_path, stderr);
        if (t.writer) outfile_remove_stale(t.last_path, stderr);
        printf("training %s on %s: %" PRId64 " images, batch %" PRId64 ", %" PRId64
               " steps per epoch, lr %g\n", p->name, d.source, d.n, t.B, t.nb, t.lr);
        if (t.dp)
            printf("data-parallel: %d rank%s, micro-batches of %" PRId64 " rows\n", dist_size(t.dist),
                   dist_size(t.dist) > 1 ? "s" : "", dp_micro_batch(t.dp));
        rc = run(&t, r, &d, opts[3].seen);
        if (!dev->host_memory)
            printf("device: %s\npeak device memory %" PRId64 " bytes\n", exec_describe(r),
                   exec_memory_bytes(r));
    }
    dp_free(t.dp);
    exec_free(r);
    dataset_free(&d);
out:
    free(t.out_param);
    free(t.milestones);
    if (rc && dist_size(t.dist) > 1) dist_abort(t.dist, rc); /* the other ranks stop too */
    dist_close(t.dist);
    return rc;
}
