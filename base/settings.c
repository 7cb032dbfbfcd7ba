#include "base/settings.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/rt_error.h"

#define INF HUGE_VAL

/*  key, kind, lo, hi, lo_open, hi_open, default, choices, doc */
static const SettingSpec TABLE[] = {
    {"train.optimizer", SET_ENUM, 0, 0, false, false, 0, "adam|sgd", "the optimiser (PyTorch's update rules)"},
    {"train.lr", SET_NUM, 0, INF, false, false, 0.01, NULL, "learning rate (>= 0); train --lr overrides it"},
    {"train.epochs", SET_INT, 1, 1e6, false, false, 1, NULL, "epochs; train --epochs overrides it"},
    {"train.seed", SET_INT, 0, 4294967295.0, false, false, 0, NULL, "seed of initialisation, shuffling, dropout and random starts"},
    {"train.momentum", SET_NUM, 0, 1, false, false, 0.9, NULL, "SGD momentum, in [0, 1]"},
    {"train.nesterov", SET_BOOL, 0, 1, false, false, 0, NULL, "SGD with Nesterov momentum"},
    {"train.weight_decay", SET_NUM, 0, INF, false, false, 0, NULL, "L2 weight decay added to the gradient (>= 0)"},
    {"train.beta1", SET_NUM, 0, 1, false, true, 0.9, NULL, "Adam's first-moment decay, in [0, 1)"},
    {"train.beta2", SET_NUM, 0, 1, false, true, 0.999, NULL, "Adam's second-moment decay, in [0, 1)"},
    {"train.adam_eps", SET_NUM, 0, INF, true, false, 1e-8, NULL, "Adam's epsilon (> 0)"},
    {"train.lr_milestones", SET_TEXT, 0, 0, false, false, 0, NULL, "epochs at which the learning rate is multiplied by lr_gamma, e.g. \"75,90\""},
    {"train.lr_gamma", SET_NUM, 0, INF, true, false, 0.1, NULL, "learning-rate factor at each milestone (> 0)"},
    {"train.micro_batch", SET_INT, 0, 1048576, false, false, 0, NULL, "rows per data-parallel micro-batch (compiled in; 0: none): dividing the batch, it adds train_grads and train_apply, which train uses in fixed-order micro-batches, alone or under mpirun"},
    {"train.sync_bn", SET_BOOL, 0, 1, false, false, 0, NULL, "train_grads takes batch-norm statistics over the global batch (batch / train.micro_batch ranks, run with that many under mpirun) rather than per rank"},
    {"eval.eps", SET_NUM, 0, INF, false, false, 0.3, NULL, "L-inf radius of every attack"},
    {"eval.pgd_steps", SET_INT, 0, 1e6, false, false, 20, NULL, "PGD and CW steps"},
    {"eval.pgd_alpha", SET_NUM, 0, INF, false, false, 0.01, NULL, "PGD and CW step size"},
    {"eval.cw_kappa", SET_NUM, 0, INF, false, false, 50, NULL, "CW margin kappa (compiled into grad_cw)"},
    {"eval.ig_steps", SET_INT, 1, 100000, false, false, 100, NULL, "path points m of ig and of the attack's saliency (compiled in)"},
    {"eval.attack_ig_steps", SET_INT, 1, 100000, false, false, 100, NULL, "path points of the attack's softplus surrogate (compiled in)"},
    {"eval.attack_batch", SET_INT, 1, 65536, false, false, 16, NULL, "rows of attrib_step (compiled in; attrib_step.N at every power of two below it)"},
    {"eval.topk", SET_INT, 1, 1e9, false, false, 100, NULL, "k of the top-k intersection (100 MNIST, 1000 CIFAR-10)"},
    {"eval.attack_steps", SET_INT, 0, 1e6, false, false, 200, NULL, "steps of the IFIA attack"},
    {"eval.attack_alpha", SET_NUM, 0, INF, false, false, 0.01, NULL, "step size of the IFIA attack"},
};

#define NSET ((int)(sizeof TABLE / sizeof *TABLE))

const SettingSpec *settings_table(int *n) {
    *n = NSET;
    return TABLE;
}

const SettingSpec *settings_find(const char *key) {
    for (int i = 0; key && i < NSET; i++)
        if (!strcmp(TABLE[i].key, key)) return &TABLE[i];
    return NULL;
}

const char *settings_closest(const char *key) {
    const char *best = TABLE[0].key;
    int bd = rt_edit_distance(key, best);
    for (int i = 1; i < NSET; i++) {
        int d = rt_edit_distance(key, TABLE[i].key);
        if (d < bd) bd = d, best = TABLE[i].key;
    }
    return best;
}

static void range_text(const SettingSpec *s, char *buf, size_t cap) {
    if (isinf(s->hi)) snprintf(buf, cap, "%s %.10g", s->lo_open ? ">" : ">=", s->lo);
    else snprintf(buf, cap, "in %s%.10g, %.10g%s", s->lo_open ? "(" : "[", s->lo, s->hi, s->hi_open ? ")" : "]");
}

bool settings_check_num(const SettingSpec *s, double v, char *err, size_t cap) {
    char r[64];
    range_text(s, r, sizeof r);
    switch (s->kind) {
    case SET_ENUM: snprintf(err, cap, "must be one of %s, got a number", s->choices); return false;
    case SET_TEXT: snprintf(err, cap, "must be a string, got a number"); return false;
    case SET_BOOL:
        if (v == 0 || v == 1) return true;
        snprintf(err, cap, "must be true or false, got %g", v);
        return false;
    case SET_INT:
        if (v == floor(v) && v >= s->lo && v <= s->hi) return true;
        snprintf(err, cap, "must be an integer %s, got %g", r, v);
        return false;
    case SET_NUM:
        if (isfinite(v) && (s->lo_open ? v > s->lo : v >= s->lo) && (s->hi_open ? v < s->hi : v <= s->hi))
            return true;
        snprintf(err, cap, "must be a number %s, got %g", r, v);
        return false;
    }
    return false;
}

bool settings_check_str(const SettingSpec *s, const char *v, char *err, size_t cap) {
    if (s->kind == SET_TEXT) return true;
    if (s->kind == SET_ENUM) {
        size_t n = strlen(v);
        for (const char *c = s->choices; *c;) {
            size_t k = strcspn(c, "|");
            if (k == n && !strncmp(c, v, n)) return true;
            c += k + (c[k] == '|');
        }
        snprintf(err, cap, "must be one of %s, got \"%s\"", s->choices, v);
        return false;
    }
    snprintf(err, cap, "must be %s, got the string \"%s\"",
             s->kind == SET_BOOL ? "true or false" : s->kind == SET_INT ? "an integer" : "a number", v);
    return false;
}

double settings_default(const char *key) {
    const SettingSpec *s = settings_find(key);
    return s ? s->dflt : 0;
}

const char *settings_default_str(const char *key) {
    static char first[64];
    const SettingSpec *s = settings_find(key);
    if (!s || s->kind != SET_ENUM) return NULL;
    snprintf(first, sizeof first, "%.*s", (int)strcspn(s->choices, "|"), s->choices);
    return first;
}
