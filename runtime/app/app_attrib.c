/* `attrib`: the IFIA top-k attribution attack (SPEC section 6, the protocol
 * of Ghorbani et al. 2019 as Chen et al. 2019 run it) on the test split,
 * reporting the mean top-k intersection and Kendall's tau-b between the
 * saliency of each image and that of its attacked copy; and `ig`:
 * integrated-gradients maps of chosen images and of their attacked copies
 * as PNG strips (the paper's Figure 3 layout).
 *
 * One call of the entry point attrib_step(x, y, mask) returns the real
 * network's logits and saliency (sum over channels of |IG|) at x, for the
 * label check and the metrics, and the gradient of the top-k share
 * D(x) = sum(mask * S~) / sum(S~) of the softplus surrogate's saliency, so
 * each attack step is one call. Images the model misclassifies are skipped;
 * every iterate is a candidate unless its predicted label changed, and the
 * candidate with the lowest tau (--select topk: the lowest intersection) is
 * kept (intersection = tau = 1 if none). */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/contract.h"
#include "base/philox.h"
#include "runtime/app/app_internal.h"
#include "runtime/io/checkpoint.h"
#include "runtime/app/metrics.h"
#include "runtime/io/png.h"

/* One compiled size of the attack step: attrib_step (B rows) or
 * attrib_step.<N> (a power of two N < B). */
typedef struct {
    int f;
    const PFunc *fn;
    int in_x, in_y, in_mask, out_logits, out_attr, out_dx;
    void **outs;
    int64_t rows;
} AttackFn;

enum { MAX_SIZES = 18 }; /* B <= 65536: B and the 16 powers of two below it */

typedef struct {
    const char *ckpt, *out, *data, *json, *which, *device; /* which: ig's --images */
    const char *select;   /* the kept iterate: "kendall" (lowest tau) or "topk" */
    int64_t n, k, attack_k, steps, threads;
    double eps, alpha;
    bool random_start;    /* start from a uniform point of the eps-ball */
    uint32_t seed;
    Exec *r;
    AttackFn sizes[MAX_SIZES]; /* [0]: attrib_step, then 1, 2, 4, ... rows */
    int nsizes;
    const AttackFn *cur;       /* the size running: rows = cur->rows */
    int64_t rows;
    int64_t B, K, img, sal; /* per row: img image values, sal saliency values */
    float *x0, *xa, *mask, *s0, *best_x, *best_s;
    int32_t *y;
    int64_t *image;   /* row's test image index (keys --random-start) */
    uint8_t *attack;  /* row is a correctly classified image */
    uint8_t *found;   /* some label-preserving iterate was seen */
    double *tau, *topk;
    int64_t *idx;     /* top-k scratch (max(k, attack_k) entries) */
    /* totals */
    double sum_topk, sum_tau;
    int64_t images, attacked, undefined;
    cJSON *per_image;
    Dist *dist;       /* attrib: chunk c of the attacked images is rank c mod N's */
    double *results;  /* attrib: per image ROW_FIELDS values, every rank's after the gather */
} Attrib;

/* An image's result as attrib gathers it: 1, label, attacked, found, top-k, tau. */
enum { ROW_FIELDS = 6 };

/* ---- the attack --------------------------------------------------------- */

/* Binds entry point `name` into *af; rows < 0: the full attrib_step, whose
 * shape sets B, K and sal; else a variant of `rows` rows that must agree. */
static bool bind_size(Attrib *a, const Program *p, const char *name, int64_t rows, AttackFn *af) {
    af->f = program_find_func(p, name);
    if (af->f < 0) {
        fprintf(stderr, "error: program %s has no %s entry point (recompile the model with this "
                        "igrc)\n", p->name, name);
        return false;
    }
    const PFunc *fn = af->fn = &p->funcs[af->f];
    if (!app_check_input(fn, IN_X, PD_F32, 4) || !app_check_input(fn, IN_Y, PD_I32, 1) ||
        !app_check_input(fn, IN_MASK, PD_F32, 4))
        return false;
    af->in_x = app_find_input(fn, IN_X);
    af->in_y = app_find_input(fn, IN_Y);
    af->in_mask = app_find_input(fn, IN_MASK);
    af->out_logits = app_find_output(fn, OUT_LOGITS);
    af->out_attr = app_find_output(fn, OUT_ATTRIBUTIONS);
    af->out_dx = app_find_output(fn, OUT_DX);
    if (af->out_logits < 0 || af->out_attr < 0 || af->out_dx < 0 || fn->ninputs != 3) {
        fprintf(stderr, "error: entry point %s must map x, y, mask to logits, attributions, dx\n", name);
        return false;
    }
    af->rows = fn->inputs[af->in_x].dim[0];
    if (rows < 0) {
        a->B = af->rows;
        a->K = fn->outputs[af->out_logits].dim[1];
        a->sal = ptensor_numel(&fn->outputs[af->out_attr]) / a->B;
    }
    if ((rows >= 0 && af->rows != rows) || fn->outputs[af->out_logits].dim[1] != a->K ||
        ptensor_numel(&fn->outputs[af->out_attr]) != af->rows * a->sal ||
        ptensor_numel(&fn->inputs[af->in_mask]) != af->rows * a->sal) {
        fprintf(stderr, "error: %s's shapes do not match attrib_step's (the mask has the "
                        "saliency's shape; recompile the model with this igrc)\n", name);
        return false;
    }
    return (af->outs = app_alloc_outputs(fn)) != NULL;
}

/* attrib_step and its variants at every power of two below B. */
static bool bind_attrib(Attrib *a, const Program *p) {
    if (!bind_size(a, p, ENTRY_ATTRIB_STEP, -1, &a->sizes[0])) return false;
    a->nsizes = 1;
    for (int64_t n = 1; n < a->B; n *= 2) {
        char name[64];
        snprintf(name, sizeof name, ENTRY_ATTRIB_STEP_ROWS, (int)n);
        if (!bind_size(a, p, name, n, &a->sizes[a->nsizes++])) return false;
    }
    a->cur = &a->sizes[0];
    a->rows = a->B;
    return true;
}

/* Runs the next calls at the size of `rows` rows (B or a power of two). */
static void use_rows(Attrib *a, int64_t rows) {
    for (int i = 0; i < a->nsizes; i++)
        if (a->sizes[i].rows == rows) a->cur = &a->sizes[i];
    a->rows = a->cur->rows;
}

static bool alloc_buffers(Attrib *a) {
    size_t n = (size_t)(a->B * a->img), ns = (size_t)(a->B * a->sal), b = (size_t)a->B;
    float **f[] = {&a->x0, &a->xa, &a->best_x, &a->mask, &a->s0, &a->best_s};
    bool ok = true;
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        ok &= (*f[i] = calloc(i < 3 ? n : ns, sizeof(float))) != NULL;
    ok &= (a->y = calloc(b, sizeof *a->y)) && (a->image = calloc(b, sizeof *a->image)) &&
          (a->attack = calloc(b, 1)) &&
          (a->found = calloc(b, 1)) && (a->tau = calloc(b, sizeof(double))) &&
          (a->topk = calloc(b, sizeof(double))) &&
          (a->idx = calloc((size_t)(a->k > a->attack_k ? a->k : a->attack_k), sizeof(int64_t)));
    if (!ok) fprintf(stderr, "error: out of memory\n");
    return ok;
}

static void free_buffers(Attrib *a) {
    free(a->x0), free(a->xa), free(a->mask), free(a->s0), free(a->best_x), free(a->best_s);
    free(a->y), free(a->image), free(a->attack), free(a->found), free(a->tau), free(a->topk);
    free(a->idx);
}

static void call_at(Attrib *a, const float *x) {
    const AttackFn *c = a->cur;
    const void *ins[3];
    ins[c->in_x] = x;
    ins[c->in_y] = a->y;
    ins[c->in_mask] = a->mask;
    if (!app_call(a->r, c->f, ins, c->outs)) exit(APP_FAIL); /* a device failure */
}

static const float *out_attr(const Attrib *a) { return a->cur->outs[a->cur->out_attr]; }

static int predicted(const Attrib *a, int64_t row) {
    const AttackFn *c = a->cur;
    return app_argmax(&c->fn->outputs[c->out_logits], c->outs[c->out_logits], row, a->K);
}

/* Saliency S0 at x0, the rows to attack, and their masks M (the top
 * attack_k pixels of S0). */
static bool start(Attrib *a) {
    memset(a->mask, 0, (size_t)(a->rows * a->sal) * sizeof(float));
    call_at(a, a->x0);
    memcpy(a->s0, out_attr(a), (size_t)(a->rows * a->sal) * sizeof(float));
    char err[256];
    for (int64_t r = 0; r < a->rows; r++) {
        a->attack[r] = predicted(a, r) == a->y[r];
        a->found[r] = 0;
        if (!a->attack[r]) continue;
        if (metric_topk(a->s0 + r * a->sal, a->sal, a->attack_k, a->idx, err, sizeof err) !=
            METRIC_OK) {
            fprintf(stderr, "error: attrib: %s\n", err);
            return false;
        }
        for (int64_t i = 0; i < a->attack_k; i++) a->mask[r * a->sal + a->idx[i]] = 1.0f;
    }
    return true;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Stream of the random start's draws ("ifia"), apart from eval's attacks. */
#define START_STREAM 0x69666961u

/* xa = x0, or with --random-start clip01(x0 + U[-eps, eps]) drawn from
 * (seed, test image index) so a rerun, any rank count or attack batch
 * attacks each image from the same point. */
static void first_iterate(Attrib *a) {
    for (int64_t r = 0; r < a->rows; r++)
        for (int64_t j = 0; j < a->img; j++) {
            int64_t i = r * a->img + j;
            float u = a->random_start ? (float)((2 * philox_uniform(a->seed, (uint32_t)a->image[r], START_STREAM,
                                                                    (uint64_t)j) - 1) * a->eps)
                                      : 0.0f;
            a->xa[i] = clampf(a->x0[i] + u, 0.0f, 1.0f);
        }
}

/* x <- clip01(x0 + clip_eps(x - alpha sign(dD/dx) - x0)): lowers D, moving
 * saliency off the original top-k. */
static void step(Attrib *a) {
    const float *dx = a->cur->outs[a->cur->out_dx], eps = (float)a->eps, al = (float)a->alpha;
    for (int64_t i = 0; i < a->rows * a->img; i++) {
        float s = dx[i] > 0 ? 1.0f : dx[i] < 0 ? -1.0f : 0.0f;
        float d = clampf(a->xa[i] - al * s - a->x0[i], -eps, eps);
        a->xa[i] = clampf(a->x0[i] + d, 0.0f, 1.0f);
    }
}

/* Whether (topk, tau) beats row r's kept iterate under --select: the
 * lowest tau (ties: lower intersection), or the lowest intersection (ties:
 * lower tau). */
static bool better(const Attrib *a, int64_t r, double topk, double tau) {
    if (!a->found[r]) return true;
    bool by_tau = strcmp(a->select, "topk") != 0;
    double p = by_tau ? tau : topk, q = by_tau ? a->tau[r] : a->topk[r];
    double p2 = by_tau ? topk : tau, q2 = by_tau ? a->topk[r] : a->tau[r];
    return p < q || (p == q && p2 < q2);
}

/* Scores the current iterate (outputs of the call at xa) for each row. */
static bool score(Attrib *a) {
    const float *s = out_attr(a);
    char err[256];
    for (int64_t r = 0; r < a->rows; r++) {
        if (!a->attack[r] || predicted(a, r) != a->y[r]) continue;
        const float *sr = s + r * a->sal, *s0 = a->s0 + r * a->sal;
        double tau, topk;
        MetricStatus st = metric_kendall_tau_b(s0, sr, a->sal, &tau, err, sizeof err);
        if (st == METRIC_UNDEFINED) continue; /* a constant map ranks nothing */
        if (st != METRIC_OK ||
            metric_topk_intersection(s0, sr, a->sal, a->k, &topk, err, sizeof err) != METRIC_OK)
            return fprintf(stderr, "error: attrib: %s\n", err), false;
        if (!better(a, r, topk, tau)) continue;
        a->tau[r] = tau;
        a->topk[r] = topk;
        a->found[r] = 1;
        memcpy(a->best_x + r * a->img, a->xa + r * a->img, (size_t)a->img * sizeof(float));
        memcpy(a->best_s + r * a->sal, sr, (size_t)a->sal * sizeof(float));
    }
    return true;
}

/* Attacks the a->rows images in x0/y/image at that size; results in
 * attack/tau/topk/found. */
static bool attack_rows(Attrib *a) {
    if (!start(a)) return false;
    first_iterate(a);
    call_at(a, a->xa);
    for (int64_t t = 0; t < a->steps; t++) {
        step(a);
        call_at(a, a->xa);
        if (!score(a)) return false;
    }
    for (int64_t r = 0; r < a->rows; r++)
        if (a->attack[r] && !a->found[r]) {
            a->tau[r] = a->topk[r] = 1.0; /* no label-preserving iterate */
            memcpy(a->best_x + r * a->img, a->x0 + r * a->img, (size_t)a->img * sizeof(float));
            memcpy(a->best_s + r * a->sal, a->s0 + r * a->sal, (size_t)a->sal * sizeof(float));
        }
    return true;
}

/* ---- shared set-up ------------------------------------------------------ */

static void defaults(Attrib *a, const Program *p) {
    memset(a, 0, sizeof *a);
    a->out = "run";
    a->device = "cpu";
    a->eps = app_setting(p, "eval.eps");
    a->alpha = app_setting(p, "eval.attack_alpha");
    a->steps = (int64_t)app_setting(p, "eval.attack_steps");
    a->k = (int64_t)app_setting(p, "eval.topk");
    a->attack_k = -1; /* the metric's k unless --attack-k */
    a->select = "kendall";
    a->seed = (uint32_t)app_setting(p, "train.seed");
}

/* A top-k size in [1, saliency values per image]. */
static bool check_k(const char *cmd, const char *opt, int64_t k, int64_t sal) {
    if (k >= 1 && k <= sal) return true;
    fprintf(stderr, "%s: --%s %" PRId64 " must be in [1, %" PRId64 "] (saliency pixels per image)\n",
            cmd, opt, k, sal);
    return false;
}

static bool check_args(const char *cmd, Attrib *a) {
    if (!(a->eps >= 0) || !(a->alpha >= 0)) {
        fprintf(stderr, "%s: --eps and --alpha must be >= 0\n", cmd);
        return false;
    }
    if (strcmp(a->select, "kendall") && strcmp(a->select, "topk")) {
        fprintf(stderr, "%s: --select must be kendall or topk, got '%s'\n", cmd, a->select);
        return false;
    }
    if (a->attack_k < 0) a->attack_k = a->k;
    return check_k(cmd, "k", a->k, a->sal) && check_k(cmd, "attack-k", a->attack_k, a->sal);
}

/* Binds the entry point, loads data and weights; prints errors. APP_OK,
 * APP_USAGE (bad options) or APP_FAIL. */
static int open_model(const char *cmd, const AppCtx *ctx, Attrib *a, Dataset *d, bool ckpt_named) {
    const Program *p = ctx->p;
    const Backend *dev;
    int rc = app_check_device(ctx, a->device, &dev);
    if (rc) return rc;
    if (!bind_attrib(a, p)) return APP_FAIL;
    if (!app_load_data(p, a->data, false, a->n, d)) return APP_BADINPUT;
    if (!check_args(cmd, a)) return APP_USAGE;
    a->img = d->c * d->h * d->w;
    const PTensor *x = &a->sizes[0].fn->inputs[a->sizes[0].in_x];
    if (x->dim[1] * x->dim[2] * x->dim[3] != a->img) {
        fprintf(stderr, "error: %s: the data's images (%" PRId64 " values) do not fit attrib_step's x\n",
                cmd, a->img);
        return APP_FAIL;
    }
    if (!alloc_buffers(a)) return APP_FAIL;
    a->r = app_open_weights(ctx, dev, a->threads, 0, a->ckpt, ckpt_named);
    return a->r ? APP_OK : APP_FAIL;
}

static void close_model(Attrib *a) {
    exec_free(a->r);
    for (int i = 0; i < a->nsizes; i++) app_free_outputs(a->sizes[i].fn, a->sizes[i].outs);
    free_buffers(a);
}

/* ---- chunks ------------------------------------------------------------- */

/* Splits `total` images into chunks: full ones of B rows, then the
 * remainder as its binary digits, largest first (B 16, 29 images: 16, 8, 4,
 * 1), each run by the attack step of its size, so no row is padding. rows
 * gets each chunk's size (at most total / B + 17 chunks); returns the count. */
static int64_t plan_chunks(int64_t total, int64_t B, int64_t *rows) {
    int64_t n = 0, rest = total % B;
    for (int64_t i = 0; i < total / B; i++) rows[n++] = B;
    int64_t p = 1;
    while (p * 2 <= rest) p *= 2;
    for (; p >= 1; p /= 2)
        if (rest & p) rows[n++] = p;
    return n;
}

/* Loads test images idx[0..rows) into the rows of x0, y and image, and
 * selects the attack step of that size. */
static void load_rows(Attrib *a, const Dataset *d, const int64_t *idx, int64_t rows) {
    use_rows(a, rows);
    for (int64_t r = 0; r < rows; r++) {
        dataset_batch(d, NULL, idx[r], 1, false, a->x0 + r * a->img, a->y + r, NULL);
        a->image[r] = idx[r];
    }
}

/* ---- attrib ------------------------------------------------------------- */

/* The attack's options, shared by attrib and ig. */
#define ATTACK_OPTS(a)                                                                          \
    {"k", OPT_INT, &(a)->k, "K", "top-k size of the metric (default: setting eval.topk)", 0},   \
    {"attack-k", OPT_INT, &(a)->attack_k, "K", "size of the attacked top-k set M (default: --k)", \
     0},                                                                                        \
    {"select", OPT_STR, &(a)->select, "kendall|topk",                                          \
     "keep the iterate with the lowest tau or the lowest top-k (default kendall)", 0},          \
    {"steps", OPT_INT, &(a)->steps, "S", "attack steps (default: eval.attack_steps, 200)", 0},  \
    {"eps", OPT_NUM, &(a)->eps, "E", "L-inf radius (default: eval.eps)", 0},                    \
    {"alpha", OPT_NUM, &(a)->alpha, "A", "step size (default: eval.attack_alpha, 0.01)", 0},    \
    {"random-start", OPT_FLAG, &(a)->random_start, "",                                         \
     "start from a uniform point of the eps-ball (default: from x0)", 0},                       \
    {"seed", OPT_U32, &(a)->seed, "S", "seed of --random-start (default: train.seed)", 0}

/* The chunk's results into its images' rows of a->results. */
static void keep_rows(Attrib *a) {
    for (int64_t r = 0; r < a->rows; r++) {
        double *v = a->results + a->image[r] * ROW_FIELDS;
        v[0] = 1, v[1] = a->y[r], v[2] = a->attack[r], v[3] = a->found[r];
        v[4] = a->attack[r] ? a->topk[r] : 0, v[5] = a->attack[r] ? a->tau[r] : 0;
    }
}

/* The test images [0, n) the model classifies correctly (the predict entry
 * point, as eval's natural accuracy), in order, into idx; the count, or -1
 * with the error printed. Every image's row of a->results gets its label
 * and "not attacked" until its chunk says otherwise. */
static int64_t classify(Attrib *a, const Program *p, const Dataset *d, int64_t n, int64_t *idx) {
    int f = program_find_func(p, ENTRY_PREDICT);
    if (f < 0 || !app_check_input(&p->funcs[f], IN_X, PD_F32, 4) || p->funcs[f].ninputs != 1 ||
        app_find_output(&p->funcs[f], OUT_LOGITS) < 0) {
        fprintf(stderr, "error: program %s has no predict(x) -> logits entry point (recompile the "
                        "model with this igrc)\n", p->name);
        return -1;
    }
    const PFunc *fn = &p->funcs[f];
    const int lo = app_find_output(fn, OUT_LOGITS);
    const PTensor *lt = &fn->outputs[lo];
    int64_t B = fn->inputs[0].dim[0], count = 0;
    if (ptensor_numel(&fn->inputs[0]) != B * a->img) {
        fprintf(stderr, "error: the data's images (%" PRId64 " values) do not fit predict's x\n", a->img);
        return -1;
    }
    float *x = malloc(sizeof(float) * (size_t)(B * a->img));
    int32_t *y = malloc(sizeof(int32_t) * (size_t)B);
    void **outs = app_alloc_outputs(fn);
    bool ok = x && y && outs;
    if (!ok) fprintf(stderr, "error: out of memory\n");
    for (int64_t first = 0; ok && first < n; first += B) {
        dataset_batch(d, NULL, first, B, false, x, y, NULL);
        const void *ins[] = {x};
        if (!(ok = app_call(a->r, f, ins, outs))) break;
        for (int64_t r = 0; r < B && first + r < n; r++) {
            double *v = a->results + (first + r) * ROW_FIELDS;
            memset(v, 0, ROW_FIELDS * sizeof(double));
            v[0] = 1, v[1] = y[r];
            if (app_argmax(lt, outs[lo], r, lt->dim[1]) == y[r]) idx[count++] = first + r;
        }
    }
    free(x);
    free(y);
    if (outs) app_free_outputs(fn, outs);
    return ok ? count : -1;
}

/* Image i (its row of a->results) into the totals and the JSON, in image order. */
static void record(Attrib *a, int64_t i) {
    const double *v = a->results + i * ROW_FIELDS;
    if (!v[0]) return;
    a->images++;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", (double)i);
    cJSON_AddNumberToObject(o, "label", v[1]);
    cJSON_AddBoolToObject(o, "attacked", v[2] != 0);
    if (v[2]) {
        a->attacked++;
        a->sum_topk += v[4];
        a->sum_tau += v[5];
        a->undefined += !v[3];
        cJSON_AddNumberToObject(o, "topk", v[4]);
        cJSON_AddNumberToObject(o, "kendall_tau", v[5]);
        cJSON_AddBoolToObject(o, "label_preserving_iterate", v[3] != 0);
    }
    cJSON_AddItemToArray(a->per_image, o);
}

static bool write_attrib_json(Attrib *a, const Program *p, const Dataset *d) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "program", p->name);
    cJSON_AddStringToObject(root, "checkpoint", a->ckpt);
    cJSON_AddStringToObject(root, "data", d->source);
    cJSON_AddStringToObject(root, "attack", "ifia-topk");
    cJSON_AddStringToObject(root, "dissimilarity", "normalised top-k share of the softplus surrogate's saliency");
    cJSON_AddStringToObject(root, "select", a->select);
    cJSON_AddNumberToObject(root, "attack_k", (double)a->attack_k);
    cJSON_AddBoolToObject(root, "random_start", a->random_start);
    if (a->random_start) cJSON_AddNumberToObject(root, "seed", a->seed);
    cJSON_AddNumberToObject(root, "n", (double)a->images);
    cJSON_AddNumberToObject(root, "attacked", (double)a->attacked);
    cJSON_AddNumberToObject(root, "skipped_misclassified", (double)(a->images - a->attacked));
    cJSON_AddNumberToObject(root, "no_label_preserving_iterate", (double)a->undefined);
    cJSON_AddNumberToObject(root, "k", (double)a->k);
    cJSON_AddNumberToObject(root, "eps", a->eps);
    cJSON_AddNumberToObject(root, "alpha", a->alpha);
    cJSON_AddNumberToObject(root, "steps", (double)a->steps);
    cJSON_AddNumberToObject(root, "ig_steps", app_setting(p, "eval.ig_steps"));
    cJSON_AddNumberToObject(root, "attack_ig_steps", app_setting(p, "eval.attack_ig_steps"));
    double n = a->attacked ? (double)a->attacked : NAN;
    cJSON_AddNumberToObject(root, "topk_intersection", a->sum_topk / n);
    cJSON_AddNumberToObject(root, "kendall_tau", a->sum_tau / n);
    cJSON_AddItemToObject(root, "images", a->per_image);
    a->per_image = NULL;
    return app_write_json(root, a->json);
}

/* Attacks this rank's chunks of the n first test images the model
 * classifies correctly (chunk c is rank c mod N's); owner[i] gets the rank
 * whose row of a->results holds image i. */
static bool attack_chunks(Attrib *a, const Program *p, const Dataset *d, int64_t n, int *owner) {
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    int64_t *chunk = malloc(sizeof(int64_t) * (size_t)(n / a->B + MAX_SIZES));
    if (!idx || !chunk) {
        free(idx), free(chunk);
        return fprintf(stderr, "error: out of memory\n"), false;
    }
    const int rank = dist_rank(a->dist), ranks = dist_size(a->dist);
    double t0 = app_now();
    int64_t na = classify(a, p, d, n, idx), nchunks = na < 0 ? 0 : plan_chunks(na, a->B, chunk);
    bool ok = na >= 0;
    for (int64_t c = 0, first = 0; ok && c < nchunks; first += chunk[c++]) {
        for (int64_t r = 0; r < chunk[c]; r++) owner[idx[first + r]] = (int)(c % ranks);
        if (c % ranks != rank) continue;
        load_rows(a, d, idx + first, chunk[c]);
        if (!(ok = attack_rows(a))) break;
        keep_rows(a);
        for (int64_t r = 0; r < a->rows; r++) record(a, a->image[r]);
        fprintf(stderr, "attrib%s: %" PRId64 " of %" PRId64 " correctly classified images attacked (%" PRId64
                        " rows a step), top-k %.4f, kendall %.4f, %.1f s\n",
                ranks > 1 ? " (this rank)" : "", first + chunk[c], na, a->rows,
                a->sum_topk / (double)(a->attacked ? a->attacked : 1),
                a->sum_tau / (double)(a->attacked ? a->attacked : 1), app_now() - t0);
    }
    free(idx);
    free(chunk);
    return ok;
}

static int run_attrib(Attrib *a, const Program *p, const Dataset *d) {
    int64_t n = a->n > 0 && a->n < d->n ? a->n : d->n;
    Dataset view = *d;
    view.n = n;
    a->per_image = cJSON_CreateArray();
    a->results = calloc((size_t)(n * ROW_FIELDS), sizeof(double));
    int *owner = calloc((size_t)(n ? n : 1), sizeof(int));
    if (!a->results || !owner) return free(owner), fprintf(stderr, "error: out of memory\n"), APP_FAIL;
    bool ok = attack_chunks(a, p, &view, n, owner) &&
              app_gather_rows_owned(a->dist, a->results, n, ROW_FIELDS, owner);
    free(owner);
    if (!ok) return APP_FAIL;
    /* the totals and the rows again, over every rank's images in image order */
    cJSON_Delete(a->per_image);
    a->per_image = cJSON_CreateArray();
    a->images = a->attacked = a->undefined = 0;
    a->sum_topk = a->sum_tau = 0;
    for (int64_t i = 0; i < n; i++) record(a, i);
    if (dist_rank(a->dist) != 0) return APP_OK;
    printf("%-10s %9s %9s %6s %6s %8s %8s %6s\n", "attack", "top-k", "kendall", "k", "steps", "eps",
           "alpha", "n");
    printf("%-10s %9.4f %9.4f %6" PRId64 " %6" PRId64 " %8.4g %8.4g %6" PRId64 "\n", "ifia-topk",
           a->attacked ? a->sum_topk / (double)a->attacked : NAN,
           a->attacked ? a->sum_tau / (double)a->attacked : NAN, a->k, a->steps, a->eps, a->alpha,
           a->attacked);
    if (a->attacked < a->images)
        printf("(%" PRId64 " of %" PRId64 " images misclassified and skipped)\n",
               a->images - a->attacked, a->images);
    return write_attrib_json(a, p, d) ? APP_OK : APP_FAIL;
}

int app_attrib(const AppCtx *ctx, int argc, char **argv) {
    Attrib a;
    defaults(&a, ctx->p);
    AppOpt opts[] = {
        APP_RUN_OPTS(&a.ckpt, &a.out, &a.data),
        {"n", OPT_INT, &a.n, "N", "attack the first N test images (default: all)", 0},
        ATTACK_OPTS(&a),
        {"json", OPT_STR, &a.json, "FILE", "results as JSON (default: DIR/attrib.json)", 0},
        APP_EXEC_OPTS(&a.threads, &a.device),
    };
    int rc = app_parse("attrib", "Attacks the attributions (IFIA top-k) of test images.", argc,
                       argv, opts, (int)(sizeof opts / sizeof *opts));
    if (rc) return rc == APP_HELP ? APP_OK : rc;
    if (!(a.dist = app_open_ranks())) return APP_FAIL;
    char json[1100], ckpt[1100];
    app_default_path(&a.json, json, sizeof json, a.out, "attrib.json");
    app_default_path(&a.ckpt, ckpt, sizeof ckpt, a.out, "checkpoint.safetensors");
    Dataset d;
    memset(&d, 0, sizeof d);
    rc = open_model("attrib", ctx, &a, &d, opts[0].seen);
    if (rc == APP_OK) rc = run_attrib(&a, ctx->p, &d);
    cJSON_Delete(a.per_image);
    free(a.results);
    close_model(&a);
    dataset_free(&d);
    if (rc && dist_size(a.dist) > 1) dist_abort(a.dist, rc); /* the other ranks stop too */
    dist_close(a.dist);
    return rc;
}

/* ---- ig ----------------------------------------------------------------- */

/* Parses "3,17,42" into idx (at most cap), each < n; prints the error. */
static int64_t parse_images(const char *s, int64_t n, int64_t *idx, int64_t cap) {
    int64_t c = 0;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || (*end && *end != ',') || v < 0 || v >= n || c == cap) {
            fprintf(stderr, "ig: --images expects up to %" PRId64 " comma-separated test image "
                            "indices in [0, %" PRId64 "), got '%s'\n", cap, n, s);
            return -1;
        }
        idx[c++] = v;
        s = *end ? end + 1 : end;
    }
    if (!c) fprintf(stderr, "ig: --images is empty\n");
    return c ? c : -1;
}

/* Row r's strip: original, IG of the original and, for an attacked image,
 * its attacked copy and that copy's IG. */
static bool write_strip(const Attrib *a, int64_t r, const char *path, int scale) {
    const PTensor *x = &a->sizes[0].fn->inputs[a->sizes[0].in_x];
    int c = (int)x->dim[1], h = (int)x->dim[2], w = (int)x->dim[3];
    const float *rows[4] = {a->x0 + r * a->img, a->s0 + r * a->sal, a->best_x + r * a->img,
                            a->best_s + r * a->sal};
    Panel panels[4];
    int n = a->attack[r] ? 4 : 2;
    for (int i = 0; i < n; i++) /* saliency maps have one channel */
        panels[i] = (Panel){i % 2 ? PANEL_ATTRIBUTION : PANEL_IMAGE, rows[i], i % 2 ? 1 : c, h, w};
    char err[1200];
    if (!image_write_strip_png(path, panels, n, scale, err, sizeof err)) {
        fprintf(stderr, "error: ig: %s\n", err);
        return false;
    }
    return true;
}

static int run_ig(Attrib *a, const Dataset *d, const char *dir, int scale) {
    int64_t idx[256];
    int64_t n = parse_images(a->which, d->n, idx, 256);
    if (n < 0) return APP_USAGE;
    if (!app_mkdir(dir)) return APP_FAIL;
    int64_t chunk[256 + MAX_SIZES], nchunks = plan_chunks(n, a->B, chunk);
    for (int64_t c = 0, first = 0; c < nchunks; first += chunk[c++]) {
        load_rows(a, d, idx + first, chunk[c]);
        if (!attack_rows(a)) return APP_FAIL;
        for (int64_t r = 0; r < a->rows; r++) {
            char path[1200];
            snprintf(path, sizeof path, "%s/ig_%05" PRId64 ".png", dir, idx[first + r]);
            if (!write_strip(a, r, path, scale)) return APP_FAIL;
            if (a->attack[r])
                printf("%s  label %d  top-k %.4f  kendall %.4f\n", path, a->y[r], a->topk[r], a->tau[r]);
            else
                printf("%s  label %d  misclassified: original and its IG only\n", path, a->y[r]);
        }
    }
    return APP_OK;
}

int app_ig(const AppCtx *ctx, int argc, char **argv) {
    Attrib a;
    defaults(&a, ctx->p);
    a.which = "0";
    const char *dir = NULL;
    int64_t scale = 8;
    AppOpt opts[] = {
        APP_RUN_OPTS(&a.ckpt, &a.out, &a.data),
        {"images", OPT_STR, &a.which, "LIST", "test image indices, e.g. 0,7,42 (default 0)", 0},
        {"maps", OPT_STR, &dir, "DIR", "where the PNG files go (default: DIR/ig)", 0},
        {"scale", OPT_INT, &scale, "S", "pixels per map value (default 8)", 0},
        ATTACK_OPTS(&a),
        APP_EXEC_OPTS(&a.threads, &a.device),
    };
    int rc = app_parse("ig", "Writes integrated-gradients maps of test images and of their "
                       "attributionally attacked copies as PNG (original, IG, attacked, IG).",
                       argc, argv, opts, (int)(sizeof opts / sizeof *opts));
    if (rc) return rc == APP_HELP ? APP_OK : rc;
    if ((rc = app_single_process("ig"))) return rc;
    if (scale < 1 || scale > 64) {
        fprintf(stderr, "ig: --scale must be in [1, 64]\n");
        return APP_USAGE;
    }
    char ckpt[1100], maps[1100];
    app_default_path(&a.ckpt, ckpt, sizeof ckpt, a.out, "checkpoint.safetensors");
    app_default_path(&dir, maps, sizeof maps, a.out, "ig");
    Dataset d;
    memset(&d, 0, sizeof d);
    rc = open_model("ig", ctx, &a, &d, opts[0].seen);
    if (rc == APP_OK) rc = run_ig(&a, &d, dir, (int)scale);
    close_model(&a);
    dataset_free(&d);
    return rc;
}
