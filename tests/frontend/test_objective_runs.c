/* The training objectives, every model file: each train_step runs through
 * the interpreter on real MNIST with finite outputs (the baselines too),
 * the optimiser updates match PyTorch's formulas, and ResNet-18 + TRADES +
 * IGR builds with a full train_step signature. No Criterion .timeout: see
 * test_objectives.c. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frontend/frontend.h"
#include "frontend/internal.h"
#include "ir/interp.h"
#include "ir/shape.h"
#include "passes/pass.h"
#include "runtime/io/idx.h"
#include "runtime/program/init.h"

#define NDEFS_MAX 8
#include "tests/frontend/objective_util.h"

/* ---- 1. every model file: train_step runs, outputs finite ---- */

static void expect_all_finite(const Outs *o, const char *what) {
    for (int i = 0; i < o->n; i++) {
        int64_t n = type_numel(&o->v[i].type), bad = 0;
        for (int64_t k = 0; k < n; k++) bad += !isfinite(o->v[i].data[k]);
        cr_expect_eq(bad, 0, "%s: output %s has %lld non-finite values", what, o->v[i].name, (long long)bad);
    }
}

/* train_step's signature: loss, logits, the updated parameters and optimiser state
 * for every trainable parameter, and every running statistic; returns the
 * number of outputs that are running statistics. */
static int expect_train_outputs(const Module *m, const char *what, const char *const *opt_states,
                                int nstates) {
    const Function *f = module_find_func(m, "train_step");
    cr_assert(f, "%s: no train_step", what);
    int stats = 0, expected = 2;
    bool have_loss = false, have_logits = false;
    for (int k = 0; k < f->noutputs; k++) {
        have_loss |= strcmp(f->outputs[k].name, "loss") == 0;
        have_logits |= strcmp(f->outputs[k].name, "logits") == 0;
    }
    cr_expect(have_loss, "%s: train_step has no loss output", what);
    cr_expect(have_logits, "%s: train_step has no logits output", what);
    for (int i = 0; i < m->nparams; i++) {
        const Param *p = &m->params[i];
        bool is_optim = strncmp(p->name, "optim.", 6) == 0;
        if (is_optim) continue;
        bool is_stat = ends_with(p->name, "running_mean") || ends_with(p->name, "running_var");
        cr_expect(p->trainable || is_stat, "%s: state parameter %s is neither optimiser state nor a "
                  "running statistic", what, p->name);
        char want[512];
        int found = 0;
        for (int s = -1; s < (p->trainable ? nstates : 0); s++) {
            if (s < 0) snprintf(want, sizeof want, "%s", p->name);
            else snprintf(want, sizeof want, "optim.%s.%s", opt_states[s], p->name);
            bool hit = false;
            for (int k = 0; k < f->noutputs && !hit; k++) hit = strcmp(f->outputs[k].name, want) == 0;
            cr_expect(hit, "%s: train_step has no output %s", what, want);
            found += hit;
            if (s >= 0) cr_expect_geq(module_find_param(m, want), 0, "%s: no state parameter %s", what, want);
        }
        expected += p->trainable ? 1 + nstates : 1;
        stats += is_stat && found;
    }
    cr_expect_eq(f->noutputs, expected, "%s: train_step has %d outputs, expected %d", what,
                 f->noutputs, expected);
    return stats;
}

static const char *const ADAM_STATES[] = {"exp_avg", "exp_avg_sq"};
static const char *const SGD_STATES[] = {"momentum_buffer"};

static void check_train_step_runs(const char *rel, const char *const *defs, int ndefs) {
    double t0 = now_s();
    Module *m = load_model(rel, defs, ndefs, 4);
    run_pipeline(m, rel);
    cr_expect_eq(count_trainable(m), 14, "%s: SmallCNN has 14 trainable tensors", rel);
    cr_expect_eq(expect_train_outputs(m, rel, ADAM_STATES, 2), 0, "%s: SmallCNN has no batch norm", rel);
    Params p = params_random(m, 11);
    Batch b = mnist_batch(false, 0, 4);
    NamedValue in[6] = {nv_image("x", b.x, 4), nv_labels("y", b.y, 4), nv_scalar("lr", 1e-3),
                        nv_scalar("step", 1), nv_scalar("progress", 0.5), nv_key(7, 3)};
    Outs o = run_fn(m, "train_step", INTERP_F32, in, 6, p.v, p.n);
    expect_all_finite(&o, rel);
    double loss = scalar_out(&o, "loss");
    cr_expect(isfinite(loss) && loss > 0, "%s: loss %g", rel, loss);
    /* Adam's first step moves every weight tensor (|update| ~ lr where the
     * gradient is nonzero). */
    for (int i = 0; i < m->nparams; i++) {
        if (!m->params[i].trainable) continue;
        const NamedValue *np = out_get(&o, m->params[i].name);
        double moved = 0;
        for (int64_t k = 0; k < type_numel(&np->type); k++) moved = fmax(moved, fabs(np->data[k] - p.v[i].data[k]));
        cr_expect(moved > 1e-4 && moved < 2e-3, "%s: %s moved by %g in one Adam step of lr 1e-3",
                  rel, m->params[i].name, moved);
    }
    fprintf(stderr, "[objectives] %-40s train_step loss %.6f (%.1f s)\n", rel, loss, now_s() - t0);
    outs_free(&o);
    nvs_free(in, 6);
    batch_free(&b);
    params_free(&p);
    module_free(m);
}

/* Every model's train_step at narrow SmallCNN widths (the same graph with
 * smaller extents: the interpreter under the sanitizers is the cost). */
#define NARROW "width1=4", "width2=8", "hidden=16"

Test(objectives, every_smallcnn_model_train_step_runs_finite) {
    static const char *const base[] = {NARROW, "pgd_steps=2"}, *const igr[] = {NARROW, "pgd_steps=2", "ig_steps=2"};
    static const struct { const char *file; int ndefs; } models[] = {
        {"models/mnist_smallcnn_standard.json", 3}, {"models/mnist_smallcnn_at.json", 4},
        {"models/mnist_smallcnn_trades.json", 4},   {"models/mnist_smallcnn_mart.json", 4},
        {"models/mnist_smallcnn_trades_igr.json", 5}, {"models/mnist_smallcnn_at_igr.json", 5},
        {"models/mnist_smallcnn_mart_igr.json", 5}};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        check_train_step_runs(models[i].file, models[i].ndefs == 5 ? igr : base, models[i].ndefs);
}

/* The baselines of Table 2 (SPEC §5), with their inner loops shortened. */
Test(objectives, every_baseline_model_train_step_runs_finite) {
    static const char *const norm[] = {NARROW, "pgd_steps=2", "ig_norm_steps=3", "ig_norm_attack_steps=2"};
    static const char *const advaat[] = {NARROW, "pgd_steps=2", "advaat_ig_steps=2"};
    static const char *const art[] = {NARROW, "pgd_steps=2"};
    static const char *const ssr[] = {NARROW, "ssr_iterations=3"};
    static const struct { const char *file; const char *const *defs; int ndefs; } models[] = {
        {"models/mnist_smallcnn_ig_norm.json", norm, 6}, {"models/mnist_smallcnn_ig_sum_norm.json", norm, 6},
        {"models/mnist_smallcnn_advaat.json", advaat, 5}, {"models/mnist_smallcnn_art.json", art, 4},
        {"models/mnist_smallcnn_ssr.json", ssr, 4}};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        check_train_step_runs(models[i].file, models[i].defs, models[i].ndefs);
}

/* Optimiser updates against PyTorch's formulas written out here, with the
 * gradients taken from the objective entry point (same network, same
 * batch, training mode) and random optimiser state. */
static void random_state(Params *p, const Module *m) {
    uint64_t s = 99;
    for (int i = 0; i < m->nparams; i++) {
        if (strncmp(m->params[i].name, "optim.", 6) != 0) continue;
        bool sq = strstr(m->params[i].name, "exp_avg_sq") != NULL;
        for (int64_t k = 0; k < type_numel(&m->params[i].type); k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            double u = (double)(s >> 11) / 9007199254740992.0;
            p->v[i].data[k] = sq ? 1e-4 * u : 0.02 * (u - 0.5);
        }
    }
}

static const double *state_of(const Params *p, const Module *m, const char *kind, const char *param) {
    char name[256];
    snprintf(name, sizeof name, "optim.%s.%s", kind, param);
    int i = module_find_param(m, name);
    cr_assert(i >= 0, "no state %s", name);
    return p->v[i].data;
}

static void check_optimiser(bool adam) {
    const char *rel = "models/mnist_mlp_standard.json";
    const char *defs[] = {"train.optimizer=adam"};
    Module *m = load_model(rel, defs, adam ? 1 : 0, 4);
    run_pipeline(m, rel);
    Params p = params_random(m, 5);
    random_state(&p, m);
    Batch b = mnist_batch(true, 0, 4);
    const double lr = 0.01, t = 3, mu = 0.9, wd = 5e-4, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    NamedValue in[6] = {nv_image("x", b.x, 4), nv_labels("y", b.y, 4), nv_scalar("lr", lr),
                        nv_scalar("step", t), nv_scalar("progress", 0), nv_key(1, 2)};
    NamedValue oin[3] = {in[0], in[1], nv_image("x_adv", b.x, 4)};
    Outs step = run_fn(m, "train_step", INTERP_F64, in, 6, p.v, p.n);
    Outs obj = run_fn(m, "objective", INTERP_F64, oin, 3, p.v, p.n);
    for (int i = 0; i < m->nparams; i++) {
        if (!m->params[i].trainable) continue;
        const char *name = m->params[i].name;
        char gname[256];
        snprintf(gname, sizeof gname, "grad.%s", name);
        const double *g = out_get(&obj, gname)->data, *w = p.v[i].data;
        const double *got = out_get(&step, name)->data;
        const double *s1 = state_of(&p, m, adam ? "exp_avg" : "momentum_buffer", name);
        const double *s2 = adam ? state_of(&p, m, "exp_avg_sq", name) : NULL;
        for (int64_t k = 0; k < type_numel(&m->params[i].type); k++) {
            double gk = g[k] + wd * w[k], want;
            if (adam) {
                double mk = b1 * s1[k] + (1 - b1) * gk, vk = b2 * s2[k] + (1 - b2) * gk * gk;
                want = w[k] - lr * (mk / (1 - pow(b1, t))) / (sqrt(vk / (1 - pow(b2, t))) + eps);
            } else {
                double buf = mu * s1[k] + gk;
                want = w[k] - lr * (gk + mu * buf); /* Nesterov */
            }
            cr_assert(fabs(got[k] - want) <= 1e-12 * fmax(1, fabs(want)), "%s %s[%lld]: %.15g vs %.15g",
                      adam ? "adam" : "sgd", name, (long long)k, got[k], want);
        }
    }
    outs_free(&step);
    outs_free(&obj);
    free(oin[2].data);
    nvs_free(in, 6);
    batch_free(&b);
    params_free(&p);
    module_free(m);
}

Test(objectives, sgd_nesterov_weight_decay_update_matches_pytorch_formula) { check_optimiser(false); }
Test(objectives, adam_update_matches_pytorch_formula) { check_optimiser(true); }

Test(objectives, resnet18_trades_igr_builds_with_full_train_step) {
    /* Batch 2: the IR's size does not depend on the batch. */
    const char *rel = "models/resnet18_trades_igr.json";
    Module *m = load_model(rel, NULL, 0, 2);
    cr_expect_eq(count_trainable(m), 62, "ResNet-18 has 62 trainable tensors");
    cr_expect_eq(module_param_count(m, true), 11173962);
    cr_expect(module_find_func(m, "predict") && module_find_func(m, "ig") &&
              module_find_func(m, "objective"), "predict, ig and objective entry points");
    /* SGD with momentum: one momentum buffer per trainable tensor; 20 batch
     * norms (stem, 16 in the blocks, 3 projection shortcuts) x 2 statistics. */
    int stats = expect_train_outputs(m, rel, SGD_STATES, 1);
    cr_expect_eq(stats, 40, "train_step returns %d running statistics, expected 40", stats);
    /* The whole pipeline (autodiff through IG with per-path-point batch
     * statistics) goes through and keeps the signature; not interpreted:
     * far too slow. */
    run_pipeline(m, rel);
    cr_expect_eq(expect_train_outputs(m, rel, SGD_STATES, 1), 40);
    module_free(m);
}

