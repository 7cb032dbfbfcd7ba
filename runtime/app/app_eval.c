/* `eval`: accuracy on the test split, naturally and under FGSM, PGD,
 * CW-inf (PGD on the margin loss) and the AutoAttack attacks (aa_*.c), all
 * in evaluation mode. Padding rows of the last batch repeat a real image and
 * are masked out of every count, so accuracy is over exactly --n images. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/contract.h"
#include "base/philox.h"
#include "runtime/app/aa.h"
#include "runtime/app/app_internal.h"
#include "runtime/io/checkpoint.h"

typedef enum {
    ATK_NATURAL,
    ATK_FGSM,
    ATK_PGD,
    ATK_CW,
    ATK_APGD_CE,
    ATK_APGD_T,
    ATK_FAB_T,
    ATK_SQUARE,
    ATK_AUTOATTACK,
    ATK_COUNT
} Attack;
static const char *const attack_names[ATK_COUNT] = {"natural", "fgsm",  "pgd",    "cw",        "apgd-ce",
                                                    "apgd-t",  "fab-t", "square", "autoattack"};
#define ATTACK_LIST "natural, fgsm, pgd, cw, apgd-ce, apgd-t, fab-t, square, autoattack"
/* AutoAttack's standard sequence, each run on the rows the ones before left. */
static const Attack aa_sequence[] = {ATK_APGD_CE, ATK_APGD_T, ATK_FAB_T, ATK_SQUARE};
#define AA_STAGES 4

/* Streams for the random starts, one per attack, so PGD and CW start from
 * different points ("pgd0", "cw00"). */
static const uint32_t start_stream[ATK_COUNT] = {0, 0, 0x70676430u, 0x63773030u};

/* An entry point bound for eval: inputs x (and y or dlogits), outputs
 * logits (and dx). */
typedef AaEntry Entry;

typedef struct {
    int64_t iters, restarts, targets, queries;
} AaSettings;

typedef struct {
    const char *ckpt, *out, *data, *attacks, *json, *device;
    int64_t n, pgd_steps, threads;
    double eps, alpha;
    uint32_t seed;
    bool want[ATK_COUNT];
    AaSettings aa;
    Entry predict, grad_ce, grad_cw, grad_logits;
    Entry *classify; /* predict, else a gradient entry's logits */
    int64_t B, K, img, chw[3];
    Exec *r;
    Dist *dist; /* batches b with b mod N == rank are this rank's */
    /* per batch */
    float *x0, *xa;
    int32_t *y;
    uint8_t *mask;
    bool *robust;
    int64_t correct[ATK_COUNT], stage_correct[AA_STAGES];
    int64_t grad_calls[ATK_COUNT], predict_calls[ATK_COUNT];
} Eval;

static bool bind(const Program *p, const char *name, bool grad, Entry *e) {
    memset(e, 0, sizeof *e);
    e->f = program_find_func(p, name);
    if (e->f < 0) return true; /* absent: reported when an attack needs it */
    e->fn = &p->funcs[e->f];
    if (!app_check_input(e->fn, IN_X, PD_F32, 4) || (grad && !app_check_input(e->fn, IN_Y, PD_I32, 1)))
        return false;
    e->in_x = app_find_input(e->fn, IN_X);
    e->in_y = app_find_input(e->fn, IN_Y);
    e->in_w = app_find_input(e->fn, IN_DLOGITS);
    e->out_logits = app_find_output(e->fn, OUT_LOGITS);
    e->out_dx = app_find_output(e->fn, OUT_DX);
    if (e->out_logits < 0 || (grad && e->out_dx < 0)) {
        fprintf(stderr, "error: entry point %s lacks output '%s'\n", name,
                e->out_logits < 0 ? OUT_LOGITS : OUT_DX);
        return false;
    }
    const PTensor *l = &e->fn->outputs[e->out_logits];
    if (l->rank != 2 || (l->dtype != PD_F32 && l->dtype != PD_F64)) {
        fprintf(stderr, "error: entry point %s: logits must be a float [B,K] tensor\n", name);
        return false;
    }
    if (grad && e->fn->outputs[e->out_dx].dtype != PD_F32) {
        fprintf(stderr, "error: entry point %s: dx must be f32 like x\n", name);
        return false;
    }
    for (int i = 0; i < e->fn->ninputs; i++)
        if (i != e->in_x && i != e->in_y && i != e->in_w) {
            fprintf(stderr, "error: entry point %s has an input '%s' eval cannot feed\n", name,
                    e->fn->inputs[i].name);
            return false;
        }
    e->outs = app_alloc_outputs(e->fn);
    e->ins = calloc((size_t)e->fn->ninputs + 1, sizeof *e->ins);
    if (!e->outs || !e->ins) {
        fprintf(stderr, "error: out of memory\n");
        return false;
    }
    return true;
}

static void unbind(Entry *e) {
    if (e->fn) app_free_outputs(e->fn, e->outs);
    free(e->ins);
}

static void call(Eval *v, Entry *e, const float *x) {
    e->ins[e->in_x] = x;
    if (e->in_y >= 0) e->ins[e->in_y] = v->y;
    if (!app_call(v->r, e->f, e->ins, e->outs)) exit(APP_FAIL); /* a device failure */
    e->calls++;
}

static bool classified(const Eval *v, int64_t k) {
    const Entry *e = v->classify;
    return app_argmax(&e->fn->outputs[e->out_logits], e->outs[e->out_logits], k, v->K) == v->y[k];
}

static int64_t count_correct(Eval *v, const float *x) {
    call(v, v->classify, x);
    int64_t c = 0;
    for (int64_t k = 0; k < v->B; k++) c += v->mask[k] && classified(v, k);
    return c;
}

static float clampf(float a, float lo, float hi) { return a < lo ? lo : a > hi ? hi : a; }

/* One signed-gradient step from xa, projected onto the eps-ball around x0
 * and [0,1]. */
static void step_sign(Eval *v, Entry *g, double alpha) {
    call(v, g, v->xa);
    const float *dx = g->outs[g->out_dx];
    const float eps = (float)v->eps, a = (float)alpha;
    for (int64_t i = 0; i < v->B * v->img; i++) {
        float s = dx[i] > 0 ? 1.0f : dx[i] < 0 ? -1.0f : 0.0f;
        float d = clampf(v->xa[i] + a * s - v->x0[i], -eps, eps);
        v->xa[i] = clampf(v->x0[i] + d, 0.0f, 1.0f);
    }
}

static int64_t attack_pgd(Eval *v, Attack atk, int64_t batch_index) {
    const int64_t n = v->B * v->img;
    if (atk == ATK_FGSM) {
        memcpy(v->xa, v->x0, (size_t)n * sizeof(float));
        step_sign(v, &v->grad_ce, v->eps);
        return count_correct(v, v->xa);
    }
    /* PGD / CW: a uniform start in the eps-ball, from (seed, batch). */
    for (int64_t i = 0; i < n; i++) {
        double u = philox_uniform(v->seed, (uint32_t)batch_index, start_stream[atk], (uint64_t)i);
        v->xa[i] = clampf(v->x0[i] + (float)(v->eps * (2.0 * u - 1.0)), 0.0f, 1.0f);
    }
    Entry *g = atk == ATK_PGD ? &v->grad_ce : &v->grad_cw;
    for (int64_t s = 0; s < v->pgd_steps; s++) step_sign(v, g, v->alpha);
    return count_correct(v, v->xa);
}

static void run_aa(Eval *v, AaCtx *c, Attack atk, bool *robust) {
    const AaSettings *s = &v->aa;
    switch (atk) {
    case ATK_APGD_CE: aa_apgd_ce(c, (int)s->iters, (int)s->restarts, robust); break;
    case ATK_APGD_T: aa_apgd_t(c, (int)s->iters, (int)s->restarts, (int)s->targets, robust); break;
    case ATK_FAB_T: aa_fab_t(c, (int)s->iters, (int)s->restarts, (int)s->targets, robust); break;
    case ATK_SQUARE: aa_square(c, (int)s->queries, robust); break;
    case ATK_NATURAL: case ATK_FGSM: case ATK_PGD: case ATK_CW: case ATK_AUTOATTACK: case ATK_COUNT:
        break; /* not AutoAttack's single attacks */
    }
}

/* An AutoAttack attack, or the whole sequence, on the rows of the batch
 * classified correctly; the rows still robust after it. */
static int64_t attack_aa(Eval *v, AaCtx *c, Attack atk, int64_t batch_index) {
    c->batch = (uint32_t)batch_index;
    call(v, v->classify, v->x0);
    for (int64_t k = 0; k < v->B; k++) v->robust[k] = v->mask[k] && classified(v, k);
    if (atk != ATK_AUTOATTACK) {
        run_aa(v, c, atk, v->robust);
        return aa_count(v->robust, v->B);
    }
    for (int st = 0; st < AA_STAGES; st++) {
        run_aa(v, c, aa_sequence[st], v->robust);
        v->stage_correct[st] += aa_count(v->robust, v->B);
    }
    return aa_count(v->robust, v->B);
}

static int64_t grad_calls(const Eval *v) { return v->grad_ce.calls + v->grad_cw.calls + v->grad_logits.calls; }

static int64_t attack(Eval *v, AaCtx *c, Attack atk, int64_t batch_index) {
    int64_t g0 = grad_calls(v), p0 = v->predict.calls, correct;
    if (atk == ATK_NATURAL) correct = count_correct(v, v->x0);
    else if (atk == ATK_FGSM || atk == ATK_PGD || atk == ATK_CW) correct = attack_pgd(v, atk, batch_index);
    else correct = attack_aa(v, c, atk, batch_index);
    v->grad_calls[atk] += grad_calls(v) - g0;
    v->predict_calls[atk] += v->predict.calls - p0;
    return correct;
}

static int parse_attacks(Eval *v) {
    const char *s = v->attacks;
    while (*s) {
        size_t len = strcspn(s, ",");
        int found = -1;
        for (int a = 0; a < ATK_COUNT; a++)
            if (strlen(attack_names[a]) == len && !strncmp(s, attack_names[a], len)) found = a;
        if (found < 0) {
            fprintf(stderr, "eval: unknown attack '%.*s' in --attacks (" ATTACK_LIST ")\n", (int)len, s);
            return APP_USAGE;
        }
        v->want[found] = true;
        s += len + (s[len] == ',');
    }
    return APP_OK;
}

/* What the AutoAttack attacks need: predict (Square), grad_ce (APGD-CE),
 * grad_logits (APGD-T, FAB-T), enough classes for the targets. */
static int check_aa_entries(const Eval *v, const Program *p) {
    bool all = v->want[ATK_AUTOATTACK];
    static const char *const hint = "(a program compiled by an older igrc: compile it again)";
    if ((all || v->want[ATK_SQUARE]) && !v->predict.fn)
        return fprintf(stderr, "error: program %s has no predict entry point, which attack square needs\n",
                       p->name), APP_FAIL;
    if ((all || v->want[ATK_APGD_CE]) && !v->grad_ce.fn)
        return fprintf(stderr, "error: program %s has no grad_ce entry point, which attack apgd-ce needs\n",
                       p->name), APP_FAIL;
    if ((all || v->want[ATK_APGD_T] || v->want[ATK_FAB_T]) && !v->grad_logits.fn)
        return fprintf(stderr, "error: program %s has no grad_logits entry point, which attacks apgd-t and "
                       "fab-t need %s\n", p->name, hint), APP_FAIL;
    if ((all || v->want[ATK_APGD_T] || v->want[ATK_FAB_T]) && v->aa.targets > v->K - 1)
        return fprintf(stderr, "eval: --aa-targets %" PRId64 " exceeds the %" PRId64 " classes other than "
                       "the true one\n", v->aa.targets, v->K - 1), APP_USAGE;
    if ((all || v->want[ATK_APGD_T]) && v->K < 4)
        return fprintf(stderr, "eval: apgd-t's DLR loss needs at least 4 classes, the program has %" PRId64
                       "\n", v->K), APP_USAGE;
    return APP_OK;
}

/* The entry points each requested attack needs. */
static int check_entries(Eval *v, const Program *p) {
    v->classify = v->predict.fn ? &v->predict : v->grad_ce.fn ? &v->grad_ce
                  : v->grad_cw.fn ? &v->grad_cw : NULL;
    if (!v->classify) {
        fprintf(stderr, "error: program %s has no predict (nor grad_ce / grad_cw) entry point, "
                        "so it cannot be evaluated\n", p->name);
        return APP_FAIL;
    }
    if ((v->want[ATK_FGSM] || v->want[ATK_PGD]) && !v->grad_ce.fn) {
        fprintf(stderr, "error: program %s has no grad_ce entry point, which attacks fgsm and pgd "
                        "need (drop them with --attacks natural,cw)\n", p->name);
        return APP_FAIL;
    }
    if (v->want[ATK_CW] && !v->grad_cw.fn) {
        fprintf(stderr, "error: program %s has no grad_cw entry point, which attack cw needs "
                        "(drop it with --attacks natural,fgsm,pgd)\n", p->name);
        return APP_FAIL;
    }
    const PTensor *l = &v->classify->fn->outputs[v->classify->out_logits];
    v->B = v->classify->fn->inputs[v->classify->in_x].dim[0];
    v->K = l->dim[1];
    int rc = check_aa_entries(v, p);
    if (rc) return rc;
    const Entry *all[4] = {&v->predict, &v->grad_ce, &v->grad_cw, &v->grad_logits};
    for (int i = 0; i < 4; i++)
        if (all[i]->fn && all[i]->fn->inputs[all[i]->in_x].dim[0] != v->B) {
            fprintf(stderr, "error: entry points disagree on the batch size\n");
            return APP_FAIL;
        }
    return APP_OK;
}

/* An AutoAttack row's settings, its calls, and for autoattack the
 * accuracy after each stage. */
static void add_aa_json(const Eval *v, Attack a, int64_t n, cJSON *o) {
    const bool all = a == ATK_AUTOATTACK, square = a == ATK_SQUARE;
    if (all || !square) {
        cJSON_AddNumberToObject(o, "iterations", (double)v->aa.iters);
        cJSON_AddNumberToObject(o, "restarts", (double)v->aa.restarts);
    }
    if (all || a == ATK_APGD_T || a == ATK_FAB_T) cJSON_AddNumberToObject(o, "targets", (double)v->aa.targets);
    if (all || square) cJSON_AddNumberToObject(o, "queries", (double)v->aa.queries);
    cJSON_AddNumberToObject(o, "gradient_calls", (double)v->grad_calls[a]);
    cJSON_AddNumberToObject(o, "predict_calls", (double)v->predict_calls[a]);
    if (!all) return;
    cJSON *st = cJSON_AddArrayToObject(o, "stages");
    for (int k = 0; k < AA_STAGES; k++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "attack", attack_names[aa_sequence[k]]);
        cJSON_AddNumberToObject(e, "accuracy", 100.0 * (double)v->stage_correct[k] / (double)n);
        cJSON_AddNumberToObject(e, "correct", (double)v->stage_correct[k]);
        cJSON_AddItemToArray(st, e);
    }
}

static int write_json(const Eval *v, const Program *p, const char *source, int64_t n) {
    cJSON *root = cJSON_CreateObject(), *res = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "program", p->name);
    cJSON_AddStringToObject(root, "checkpoint", v->ckpt);
    cJSON_AddStringToObject(root, "data", source);
    cJSON_AddNumberToObject(root, "n", (double)n);
    cJSON_AddNumberToObject(root, "seed", v->seed);
    for (int a = 0; a < ATK_COUNT; a++) {
        if (!v->want[a]) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "attack", attack_names[a]);
        cJSON_AddNumberToObject(o, "accuracy", 100.0 * (double)v->correct[a] / (double)n);
        cJSON_AddNumberToObject(o, "correct", (double)v->correct[a]);
        cJSON_AddNumberToObject(o, "n", (double)n);
        if (a != ATK_NATURAL) cJSON_AddNumberToObject(o, "eps", v->eps);
        else cJSON_AddNullToObject(o, "eps");
        if (a == ATK_PGD || a == ATK_CW) {
            cJSON_AddNumberToObject(o, "steps", (double)v->pgd_steps);
            cJSON_AddNumberToObject(o, "alpha", v->alpha);
        } else if (a == ATK_FGSM) {
            cJSON_AddNumberToObject(o, "steps", 1);
            cJSON_AddNumberToObject(o, "alpha", v->eps);
        } else if (a == ATK_NATURAL) {
            cJSON_AddNullToObject(o, "steps");
            cJSON_AddNullToObject(o, "alpha");
        } else {
            add_aa_json(v, (Attack)a, n, o);
        }
        cJSON_AddItemToArray(res, o);
    }
    cJSON_AddItemToObject(root, "results", res);
    if (!app_write_json(root, v->json)) return APP_FAIL;
    return APP_OK;
}

/* steps: PGD's and CW's steps, APGD's and FAB's iterations, Square's
 * queries; autoattack's stages follow it, indented. */
static void print_table(const Eval *v, int64_t n) {
    printf("%-10s %9s %8s %6s %8s %7s\n", "attack", "accuracy", "eps", "steps", "alpha", "n");
    for (int a = 0; a < ATK_COUNT; a++) {
        if (!v->want[a]) continue;
        double acc = 100.0 * (double)v->correct[a] / (double)n;
        if (a == ATK_NATURAL)
            printf("%-10s %8.2f%% %8s %6s %8s %7" PRId64 "\n", "natural", acc, "-", "-", "-", n);
        else if (a == ATK_FGSM)
            printf("%-10s %8.2f%% %8.4g %6d %8.4g %7" PRId64 "\n", "fgsm", acc, v->eps, 1, v->eps, n);
        else if (a == ATK_PGD || a == ATK_CW)
            printf("%-10s %8.2f%% %8.4g %6" PRId64 " %8.4g %7" PRId64 "\n", attack_names[a], acc, v->eps,
                   v->pgd_steps, v->alpha, n);
        else
            printf("%-10s %8.2f%% %8.4g %6" PRId64 " %8s %7" PRId64 "\n", attack_names[a], acc, v->eps,
                   a == ATK_SQUARE ? v->aa.queries : v->aa.iters, "-", n);
        for (int k = 0; a == ATK_AUTOATTACK && k < AA_STAGES; k++)
            printf("  %-8s %8.2f%%   (robust after %s)\n", attack_names[aa_sequence[k]],
                   100.0 * (double)v->stage_correct[k] / (double)n, attack_names[aa_sequence[k]]);
    }
}

static bool wants_aa(const Eval *v) {
    for (int a = ATK_APGD_CE; a <= ATK_AUTOATTACK; a++)
        if (v->want[a]) return true;
    return false;
}

/* The counts over every rank's batches (integers: the sum is exact, so the
 * table and the JSON equal one process's). */
static bool gather_counts(Eval *v) {
    enum { NC = 3 * ATK_COUNT + AA_STAGES };
    int64_t *cols[4] = {v->correct, v->grad_calls, v->predict_calls, v->stage_correct};
    const int len[4] = {ATK_COUNT, ATK_COUNT, ATK_COUNT, AA_STAGES};
    const int ranks = dist_size(v->dist);
    double mine[NC], *all = malloc(sizeof(double) * NC * (size_t)ranks);
    char err[512];
    if (!all) return fprintf(stderr, "error: out of memory\n"), false;
    for (int c = 0, k = 0; c < 4; c++)
        for (int i = 0; i < len[c]; i++) mine[k++] = (double)cols[c][i];
    bool ok = dist_allgather(v->dist, mine, NC, all, err, sizeof err);
    for (int c = 0, k = 0; ok && c < 4; c++)
        for (int i = 0; i < len[c]; i++, k++) {
            double sum = 0;
            for (int r = 0; r < ranks; r++) sum += all[r * NC + k];
            cols[c][i] = (int64_t)sum;
        }
    if (!ok) fprintf(stderr, "error: rank %d: %s\n", dist_rank(v->dist), err);
    free(all);
    return ok;
}

static int evaluate(Eval *v, const Program *p, const Dataset *d) {
    int64_t n = v->n > 0 && v->n < d->n ? v->n : d->n;
    v->img = d->c * d->h * d->w;
    v->x0 = malloc((size_t)(v->B * v->img) * sizeof(float));
    v->xa = malloc((size_t)(v->B * v->img) * sizeof(float));
    v->y = malloc((size_t)v->B * sizeof(int32_t));
    v->mask = malloc((size_t)v->B);
    v->robust = malloc((size_t)v->B * sizeof(bool));
    if (!v->x0 || !v->xa || !v->y || !v->mask || !v->robust) {
        fprintf(stderr, "error: out of memory\n");
        return APP_FAIL;
    }
    AaCtx c = {.r = v->r, .predict = v->predict.fn ? &v->predict : NULL,
               .grad_ce = v->grad_ce.fn ? &v->grad_ce : NULL, .grad_logits = v->grad_logits.fn ? &v->grad_logits : NULL,
               .B = v->B, .K = v->K, .img = v->img, .C = d->c, .H = d->h, .W = d->w,
               .x0 = v->x0, .y = v->y, .eps = v->eps, .seed = v->seed};
    if (wants_aa(v) && !aa_open(&c)) return APP_FAIL;
    Dataset view = *d;
    view.n = n; /* the first n images; padding repeats image n-1 */
    const int64_t nb = dataset_nbatches(n, v->B);
    const int rank = dist_rank(v->dist), ranks = dist_size(v->dist);
    for (int64_t b = rank; b < nb; b += ranks) {
        dataset_batch(&view, NULL, b * v->B, v->B, false, v->x0, v->y, v->mask);
        for (int a = 0; a < ATK_COUNT; a++)
            if (v->want[a]) v->correct[a] += attack(v, &c, (Attack)a, b);
    }
    if (wants_aa(v)) aa_close(&c);
    if (!gather_counts(v)) return APP_FAIL;
    if (rank != 0) return APP_OK;
    print_table(v, n);
    return write_json(v, p, d->source, n);
}

/* The attacks' settings from the program (flags override them). */
static void eval_defaults(Eval *v, const Program *p) {
    memset(v, 0, sizeof *v);
    v->out = "run";
    v->eps = app_setting(p, "eval.eps");
    v->pgd_steps = (int64_t)app_setting(p, "eval.pgd_steps");
    v->alpha = app_setting(p, "eval.pgd_alpha");
    v->seed = (uint32_t)app_setting(p, "train.seed");
    v->device = "cpu";
    v->aa = (AaSettings){.iters = 100, .restarts = 1, .targets = 9, .queries = 5000};
}

/* What eval and consistency both release (unbind and free accept empties). */
static void eval_release(Eval *v, Dataset *d) {
    exec_free(v->r);
    dataset_free(d);
    unbind(&v->predict);
    unbind(&v->grad_ce);
    unbind(&v->grad_cw);
    unbind(&v->grad_logits);
    free(v->robust);
    free(v->x0);
    free(v->xa);
    free(v->y);
    free(v->mask);
}

/* The AutoAttack counts: each at least 1. */
static int check_aa_settings(const AaSettings *s) {
    const int64_t v[4] = {s->iters, s->restarts, s->targets, s->queries};
    static const char *const names[4] = {"--aa-iters", "--aa-restarts", "--aa-targets", "--square-queries"};
    for (int i = 0; i < 4; i++)
        if (v[i] < 1 || v[i] > 1000000) {
            fprintf(stderr, "eval: %s must be an integer in [1, 1000000], got %" PRId64 "\n", names[i], v[i]);
            return APP_USAGE;
        }
    return APP_OK;
}

/* --eps and --pgd-alpha: NaN or negative is a usage error. */
static int check_radius(const char *cmd, const Eval *v) {
    if (v->eps >= 0 && v->alpha >= 0) return APP_OK;
    fprintf(stderr, "%s: --eps and --pgd-alpha must be >= 0\n", cmd);
    return APP_USAGE;
}

int app_eval(const AppCtx *ctx, int argc, char **argv) {
    const Program *p = ctx->p;
    Eval v;
    eval_defaults(&v, p);
    v.attacks = "natural,fgsm,pgd,cw";
    AppOpt opts[] = {
        APP_RUN_OPTS(&v.ckpt, &v.out, &v.data),
        {"n", OPT_INT, &v.n, "N", "evaluate the first N test images (default: all)", 0},
        {"attacks", OPT_STR, &v.attacks, "LIST", "comma-separated: " ATTACK_LIST " (default: the first four)", 0},
        {"eps", OPT_NUM, &v.eps, "E", "L-inf radius (default: setting eval.eps)", 0},
        {"pgd-steps", OPT_INT, &v.pgd_steps, "S", "PGD / CW steps (default: eval.pgd_steps)", 0},
        {"pgd-alpha", OPT_NUM, &v.alpha, "A", "PGD / CW step size (default: eval.pgd_alpha)", 0},
        {"seed", OPT_U32, &v.seed, "S", "seed of the random starts", 0},
        {"aa-iters", OPT_INT, &v.aa.iters, "N", "APGD and FAB iterations per run (default 100)", 0},
        {"aa-restarts", OPT_INT, &v.aa.restarts, "N", "APGD and FAB runs per target (default 1)", 0},
        {"aa-targets", OPT_INT, &v.aa.targets, "N", "APGD-T and FAB-T target classes (default 9)", 0},
        {"square-queries", OPT_INT, &v.aa.queries, "N", "Square's queries per image (default 5000)", 0},
        {"json", OPT_STR, &v.json, "FILE", "results as JSON (default: DIR/eval.json)", 0},
        APP_EXEC_OPTS(&v.threads, &v.device),
    };
    int rc = app_parse("eval", "Evaluates accuracy under attacks on the test split.", argc, argv,
                       opts, (int)(sizeof opts / sizeof *opts));
    if (rc) return rc == APP_HELP ? APP_OK : rc;
    if ((rc = check_radius("eval", &v)) || (rc = check_aa_settings(&v.aa)) || (rc = parse_attacks(&v))) return rc;
    const Backend *dev;
    if ((rc = app_check_device(ctx, v.device, &dev))) return rc;
    if (!(v.dist = app_open_ranks())) return APP_FAIL;
    char ckpt[1100], json[1100];
    app_default_path(&v.ckpt, ckpt, sizeof ckpt, v.out, "checkpoint.safetensors");
    app_default_path(&v.json, json, sizeof json, v.out, "eval.json");
    Dataset d;
    memset(&d, 0, sizeof d);
    if (!bind(p, ENTRY_PREDICT, false, &v.predict) || !bind(p, ENTRY_GRAD_CE, true, &v.grad_ce) ||
        !bind(p, ENTRY_GRAD_CW, true, &v.grad_cw) || !bind(p, ENTRY_GRAD_LOGITS, false, &v.grad_logits) ||
        (rc = check_entries(&v, p))) {
        rc = rc ? rc : APP_FAIL;
    } else if (!app_load_data(p, v.data, false, v.n, &d)) {
        rc = APP_BADINPUT;
    } else if (!(v.r = app_open_weights(ctx, dev, v.threads, v.seed, v.ckpt, opts[0].seen))) {
        rc = APP_FAIL;
    } else {
        rc = evaluate(&v, p, &d);
    }
    eval_release(&v, &d);
    if (rc && dist_size(v.dist) > 1) dist_abort(v.dist, rc); /* the other ranks stop too */
    dist_close(v.dist);
    return rc;
}

/* ---- consistency -------------------------------------------------------- */

/* Activation consistency (SPEC section 6, eq. 6): over the ReLU units of
 * the network, A = {pre-activation > 0 at x}, B = the same at x's PGD
 * example; P(A and B) / sqrt(P(A) P(B)), pooled over every unit of every
 * image, and its mean over images. */
typedef struct {
    int f;
    const PFunc *fn;
    int in_x, out_pre;
    void **outs;
    int64_t units;
    float *pre0;      /* pre-activations at x0, one batch */
    double a, b, ab;  /* pooled counts */
    double sum_img;   /* sum of per-image consistencies */
    int64_t images, undefined, correct;
    double *rows;     /* per image: real, |A|, |B|, |A and B|, classified after PGD */
} Acts;
enum { CROW = 5 };

static bool bind_acts(const Program *p, int64_t B, Acts *c) {
    c->f = program_find_func(p, ENTRY_ACTIVATIONS);
    if (c->f < 0) {
        fprintf(stderr, "error: program %s has no activations entry point (a model without ReLU, "
                        "or compiled by an older igrc)\n", p->name);
        return false;
    }
    c->fn = &p->funcs[c->f];
    if (!app_check_input(c->fn, IN_X, PD_F32, 4)) return false;
    c->in_x = app_find_input(c->fn, IN_X);
    c->out_pre = app_find_output(c->fn, OUT_PRE);
    const PTensor *t = c->out_pre >= 0 ? &c->fn->outputs[c->out_pre] : NULL;
    if (!t || t->rank != 2 || t->dtype != PD_F32 || t->dim[0] != B ||
        c->fn->inputs[c->in_x].dim[0] != B) {
        fprintf(stderr, "error: entry point activations must give pre, f32 [%" PRId64 ", units]\n", B);
        return false;
    }
    c->units = t->dim[1];
    c->outs = app_alloc_outputs(c->fn);
    c->pre0 = malloc((size_t)(B * c->units) * sizeof(float));
    if (!c->outs || !c->pre0) return fprintf(stderr, "error: out of memory\n"), false;
    return true;
}

static const float *pre_at(Eval *v, Acts *c, const float *x) {
    const void *ins[1] = {x};
    if (!app_call(v->r, c->f, ins, c->outs)) exit(APP_FAIL); /* a device failure */
    return c->outs[c->out_pre];
}

/* Batch `first`'s per-image counts into c->rows (xa's logits are the
 * classify entry's last outputs). */
static void keep_counts(const Eval *v, Acts *c, const float *pre1, int64_t first, int64_t n) {
    for (int64_t k = 0; k < v->B && first + k < n; k++) {
        const float *p0 = c->pre0 + k * c->units, *p1 = pre1 + k * c->units;
        int64_t a = 0, b = 0, ab = 0;
        for (int64_t u = 0; u < c->units; u++) a += p0[u] > 0, b += p1[u] > 0, ab += p0[u] > 0 && p1[u] > 0;
        double *r = c->rows + (first + k) * CROW;
        r[0] = v->mask[k], r[1] = (double)a, r[2] = (double)b, r[3] = (double)ab, r[4] = 0;
    }
}

/* The pooled counts and the per-image mean, in image order. */
static void tally(Acts *c, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const double *r = c->rows + i * CROW;
        if (!r[0]) continue;
        c->a += r[1], c->b += r[2], c->ab += r[3];
        c->images++;
        c->correct += r[4] != 0;
        if (r[1] > 0 && r[2] > 0) c->sum_img += r[3] / sqrt(r[1] * r[2]);
        else c->undefined++;
    }
}

static int write_consistency(const Eval *v, const Acts *c, const Program *p, const char *source,
                             double pgd_acc) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "program", p->name);
    cJSON_AddStringToObject(root, "checkpoint", v->ckpt);
    cJSON_AddStringToObject(root, "data", source);
    cJSON_AddNumberToObject(root, "n", (double)c->images);
    cJSON_AddNumberToObject(root, "units", (double)c->units);
    cJSON_AddNumberToObject(root, "eps", v->eps);
    cJSON_AddNumberToObject(root, "steps", (double)v->pgd_steps);
    cJSON_AddNumberToObject(root, "alpha", v->alpha);
    cJSON_AddNumberToObject(root, "seed", v->seed);
    cJSON_AddNumberToObject(root, "consistency", c->ab / sqrt(c->a * c->b));
    cJSON_AddNumberToObject(root, "consistency_mean_per_image",
                            c->sum_img / (double)(c->images - c->undefined));
    cJSON_AddNumberToObject(root, "images_without_active_units", (double)c->undefined);
    cJSON_AddNumberToObject(root, "pgd_accuracy", pgd_acc);
    return app_write_json(root, v->json) ? APP_OK : APP_FAIL;
}

static int measure_consistency(Eval *v, Acts *c, const Program *p, const Dataset *d) {
    int64_t n = v->n > 0 && v->n < d->n ? v->n : d->n;
    v->img = d->c * d->h * d->w;
    v->x0 = malloc((size_t)(v->B * v->img) * sizeof(float));
    v->xa = malloc((size_t)(v->B * v->img) * sizeof(float));
    v->y = malloc((size_t)v->B * sizeof(int32_t));
    v->mask = malloc((size_t)v->B);
    if (!v->x0 || !v->xa || !v->y || !v->mask) return fprintf(stderr, "error: out of memory\n"), APP_FAIL;
    Dataset view = *d;
    view.n = n;
    if (!(c->rows = calloc((size_t)(n * CROW), sizeof(double))))
        return fprintf(stderr, "error: out of memory\n"), APP_FAIL;
    const int rank = dist_rank(v->dist), ranks = dist_size(v->dist);
    for (int64_t b = rank; b < dataset_nbatches(n, v->B); b += ranks) {
        dataset_batch(&view, NULL, b * v->B, v->B, false, v->x0, v->y, v->mask);
        attack_pgd(v, ATK_PGD, b); /* leaves the logits at xa in the classify entry's outputs */
        memcpy(c->pre0, pre_at(v, c, v->x0), (size_t)(v->B * c->units) * sizeof(float));
        keep_counts(v, c, pre_at(v, c, v->xa), b * v->B, n);
        for (int64_t k = 0; k < v->B && b * v->B + k < n; k++)
            c->rows[(b * v->B + k) * CROW + 4] = v->mask[k] && classified(v, k);
    }
    if (!app_gather_rows(v->dist, c->rows, n, CROW, v->B)) return APP_FAIL;
    tally(c, n);
    if (rank != 0) return APP_OK;
    double pooled = c->ab / sqrt(c->a * c->b), acc = 100.0 * (double)c->correct / (double)n;
    printf("%-12s %11s %9s %8s %6s %8s %7s\n", "measure", "consistency", "per-image", "eps",
           "steps", "alpha", "n");
    printf("%-12s %11.4f %9.4f %8.4g %6" PRId64 " %8.4g %7" PRId64 "\n", "pgd", pooled,
           c->sum_img / (double)(c->images - c->undefined), v->eps, v->pgd_steps, v->alpha, n);
    printf("(%" PRId64 " ReLU units per image; PGD accuracy %.2f%%)\n", c->units, acc);
    return write_consistency(v, c, p, d->source, acc);
}

int app_consistency(const AppCtx *ctx, int argc, char **argv) {
    const Program *p = ctx->p;
    Eval v;
    Acts c;
    eval_defaults(&v, p);
    memset(&c, 0, sizeof c);
    AppOpt opts[] = {
        APP_RUN_OPTS(&v.ckpt, &v.out, &v.data),
        {"n", OPT_INT, &v.n, "N", "the first N test images (default: all)", 0},
        {"eps", OPT_NUM, &v.eps, "E", "L-inf radius (default: setting eval.eps)", 0},
        {"pgd-steps", OPT_INT, &v.pgd_steps, "S", "PGD steps (default: eval.pgd_steps)", 0},
        {"pgd-alpha", OPT_NUM, &v.alpha, "A", "PGD step size (default: eval.pgd_alpha)", 0},
        {"seed", OPT_U32, &v.seed, "S", "seed of the random start", 0},
        {"json", OPT_STR, &v.json, "FILE", "results as JSON (default: DIR/consistency.json)", 0},
        APP_EXEC_OPTS(&v.threads, &v.device),
    };
    int rc = app_parse("consistency", "Activation consistency between test images and their PGD "
                       "examples.", argc, argv, opts, (int)(sizeof opts / sizeof *opts));
    if (rc) return rc == APP_HELP ? APP_OK : rc;
    if ((rc = check_radius("consistency", &v))) return rc;
    const Backend *dev;
    if ((rc = app_check_device(ctx, v.device, &dev))) return rc;
    if (!(v.dist = app_open_ranks())) return APP_FAIL;
    char ckpt[1100], json[1100];
    app_default_path(&v.ckpt, ckpt, sizeof ckpt, v.out, "checkpoint.safetensors");
    app_default_path(&v.json, json, sizeof json, v.out, "consistency.json");
    v.want[ATK_PGD] = true;
    Dataset d;
    memset(&d, 0, sizeof d);
    if (!bind(p, ENTRY_GRAD_CE, true, &v.grad_ce) || check_entries(&v, p) || !bind_acts(p, v.B, &c)) {
        rc = APP_FAIL;
    } else if (!app_load_data(p, v.data, false, v.n, &d)) {
        rc = APP_BADINPUT;
    } else if (!(v.r = app_open_weights(ctx, dev, v.threads, v.seed, v.ckpt, opts[0].seen))) {
        rc = APP_FAIL;
    } else {
        rc = measure_consistency(&v, &c, p, &d);
    }
    eval_release(&v, &d);
    if (c.fn) app_free_outputs(c.fn, c.outs);
    free(c.pre0);
    free(c.rows);
    if (rc && dist_size(v.dist) > 1) dist_abort(v.dist, rc); /* the other ranks stop too */
    dist_close(v.dist);
    return rc;
}
