/* Entry points built from an objective: ig(x, y), objective(x, y, x_adv)
 * and train_step(x, y, lr, step, progress, key). Names are fixed: tools
 * and tests outside rely on them (docs/graph-format.md, "Entry points"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/objective.h"

typedef struct {
    Module *m;
    const cJSON *doc;
    const char *file;
    const char *network;
    Diag *d;
} Ctx;

static const InputDesc *input(const Ctx *c, const char *name) {
    for (int i = 0; i < c->m->ninputs; i++)
        if (strcmp(c->m->inputs[i].name, name) == 0) return &c->m->inputs[i];
    return NULL;
}

static double setting(const Ctx *c, const char *key, double dflt) {
    const Setting *s = module_setting(c->m, key);
    return s && !s->is_str ? s->num : dflt;
}

static const char *setting_str(const Ctx *c, const char *key, const char *dflt) {
    const Setting *s = module_setting(c->m, key);
    return s && s->is_str ? s->str : dflt;
}

/* ig(x, y) -> attributions, the network in evaluation mode. */
static bool build_ig(Ctx *c) {
    const InputDesc *x = input(c, "x"), *y = input(c, "y");
    if (!x || !y || !y->classes) return true; /* no labelled image input: no ig */
    double m = setting(c, "eval.ig_steps", 100);
    if (m < 1 || m != floor(m) || m > 100000)
        return ferr(c->d, c->file, "eval.ig_steps", "must be an integer in [1, 100000]");
    Builder b = {c->m, module_add_func(c->m, "ig"), c->d};
    NetEnv env = {.b = &b, .doc = c->doc, .root_file = c->file, .rng_key = -1, .bn_groups = 1};
    ObjEnv oe = {.env = &env, .network = c->network, .x_adv = -1, .progress = -1, .key = -1, .entry = "ig"};
    int xv = b_input(&b, "x", x->type), yv = b_input(&b, "y", y->type);
    IgSpec s = {(int)m, false, c->network, "logit", -1, "attributions"};
    int a = ig_emit(&oe, &s, xv, yv);
    if (a < 0) return false;
    func_add_output(c->m, b.f, "attributions", a);
    return true;
}

/* Gradients of loss with respect to every trainable parameter. */
static bool param_grads(Builder *b, int loss, int *pv, int *gv) {
    for (int i = 0; i < b->m->nparams; i++) {
        pv[i] = gv[i] = -1;
        if (!b->m->params[i].trainable) continue;
        pv[i] = b_param(b, b->m->params[i].name);
        int ins[2] = {loss, pv[i]};
        gv[i] = b_node(b, OP_GRAD, arena_printf(b->m->arena, "grad.%s", b->m->params[i].name), ins, 2, NULL, 0);
        if (gv[i] < 0) return false;
    }
    return true;
}

static int emit_objective(Ctx *c, Builder *b, ObjEnv *oe, int x, int y) {
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(c->doc, "objective");
    int vals[2] = {x, y};
    int loss = obj_emit_graph(oe, obj, "objective", vals, 2);
    if (loss >= 0 && b_type(b, loss)->rank != 0)
        return ferr(c->d, c->file, "objective", "the objective's output must be a scalar loss"), -1;
    return loss;
}

/* objective(x, y, x_adv) -> loss, grad.<param>: the inner maximisation
 * replaced by the given x_adv, ramps (warm-ups) at full value. */
static bool build_objective(Ctx *c) {
    const InputDesc *x = input(c, "x"), *y = input(c, "y");
    Builder b = {c->m, module_add_func(c->m, "objective"), c->d};
    NetEnv env = {.b = &b, .doc = c->doc, .root_file = c->file, .training = true, .rng_key = -1, .bn_groups = 1};
    int xv = b_input(&b, "x", x->type), yv = b_input(&b, "y", y->type);
    /* Dropout masks from the fixed key (0, 0): the entry point is a pure
     * function of its inputs, so other implementations can be compared. */
    Attr zero = attr_floats("data", (double[]){0, 0}, 2);
    env.rng_key = b_source(&b, OP_CONSTANT, "key", NULL, 0, &zero, 1, type_make(DT_I32, 1, (int64_t[]){2}));
    ObjEnv oe = {.env = &env, .network = c->network, .mode = OBJ_GIVEN_ADV,
                 .x_adv = b_input(&b, "x_adv", x->type), .progress = -1, .key = -1, .entry = "objective"};
    int loss = emit_objective(c, &b, &oe, xv, yv);
    if (loss < 0) return false;
    int *pv = malloc(sizeof(int) * (size_t)(c->m->nparams + 1)), *gv = malloc(sizeof(int) * (size_t)(c->m->nparams + 1));
    bool ok = param_grads(&b, loss, pv, gv);
    func_add_output(c->m, b.f, "loss", loss);
    for (int i = 0; ok && i < c->m->nparams; i++)
        if (gv[i] >= 0) func_add_output(c->m, b.f, b.f->nodes[gv[i]].name, gv[i]);
    free(pv);
    free(gv);
    return ok;
}

static bool build_train_step(Ctx *c) {
    const InputDesc *x = input(c, "x"), *y = input(c, "y");
    Builder b = {c->m, module_add_func(c->m, "train_step"), c->d};
    StatUpdates stats = {0};
    NetEnv env = {.b = &b, .doc = c->doc, .root_file = c->file, .training = true, .bn_groups = 1,
                  .stat_updates = &stats};
    int xv = b_input(&b, "x", x->type), yv = b_input(&b, "y", y->type);
    int lr = b_input(&b, "lr", type_scalar(DT_F32)), step = b_input(&b, "step", type_scalar(DT_F32));
    int progress = b_input(&b, "progress", type_scalar(DT_F32));
    int key = b_input(&b, "key", type_make(DT_I32, 1, (int64_t[]){2}));
    env.rng_key = key;
    ObjEnv oe = {.env = &env, .network = c->network, .mode = OBJ_TRAIN, .x_adv = -1,
                 .progress = progress, .key = key, .entry = "train_step"};
    int loss = emit_objective(c, &b, &oe, xv, yv);
    int np = c->m->nparams;
    int *pv = malloc(sizeof(int) * (size_t)(np + 1)), *gv = malloc(sizeof(int) * (size_t)(np + 1));
    bool ok = loss >= 0 && param_grads(&b, loss, pv, gv);
    if (ok) {
        func_add_output(c->m, b.f, "loss", loss);
        OptimSpec o = {setting_str(c, "train.optimizer", "adam"), setting(c, "train.momentum", 0.9),
                       setting(c, "train.weight_decay", 0), setting(c, "train.nesterov", 0) != 0,
                       setting(c, "train.beta1", 0.9), setting(c, "train.beta2", 0.999),
                       setting(c, "train.adam_eps", 1e-8)};
        ok = optim_emit(&b, &o, np, pv, gv, lr, step, c->file);
    }
    for (int i = 0; ok && i < stats.n; i++) func_add_output(c->m, b.f, stats.names[i], stats.values[i]);
    free(stats.names);
    free(stats.values);
    free(pv);
    free(gv);
    return ok;
}

bool objective_build(Module *m, const cJSON *doc, const char *file, const char *network, Diag *d) {
    Ctx c = {m, doc, file, network, d};
    if (!build_ig(&c)) return false;
    if (!cJSON_GetObjectItemCaseSensitive(doc, "objective")) return true;
    if (!input(&c, "x") || !input(&c, "y") || !input(&c, "y")->classes)
        return ferr(d, file, "inputs", "an objective needs inputs x and y (y with \"classes\")");
    return build_objective(&c) && build_train_step(&c);
}
