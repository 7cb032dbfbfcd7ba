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

/* train_step's `logits`: the network on the natural batch in training mode
 * with the step's key (what the runtime's accuracy column reads). Objectives
 * that run the same call already (standard, TRADES) share it after cse. */
static bool add_train_logits(Builder *b, NetEnv *env, const char *network, int x) {
    StatUpdates *keep = env->stat_updates;
    env->stat_updates = NULL; /* running statistics come from the objective's own calls */
    int z = net_emit(env, network, x);
    env->stat_updates = keep;
    if (z < 0) return false;
    int s = b_unary(b, OP_STOP_GRADIENT, "logits", z);
    if (s < 0) return false;
    func_add_output(b->m, b->f, "logits", s);
    return true;
}

/* Input gradients for the evaluation attacks, network in evaluation mode:
 * grad_ce(x, y) -> logits, dx of the summed cross-entropy (FGSM, PGD);
 * grad_cw(x, y) -> logits, dx of the summed CW margin loss
 * -relu(z_y - max_{j != y} z_j + kappa), the true logit masked with -1e4
 * before the max (SPEC section 6). */
static int cw_loss(Builder *b, int z, int y, double kappa) {
    const Type tz = *b_type(b, z);
    Attr oh_attrs[2] = {attr_int("depth", tz.dim[1]), attr_dtype("dtype", DT_F32)};
    int oh = b_node(b, OP_ONE_HOT, "cw.onehot", &y, 1, oh_attrs, 2);
    int masked = b_binary(b, OP_SUB, "cw.masked", b_binary(b, OP_MUL, "cw.others", z,
                          b_binary(b, OP_SUB, "cw.noty", b_const(b, "cw.one", 1, tz), oh)),
                          b_binary(b, OP_MUL, "cw.mask", oh, b_const(b, "cw.big", 1e4, tz)));
    int64_t ax = 1;
    int other = b_reduce(b, OP_REDUCE_MAX, "cw.other", masked, &ax, 1, false);
    int zy = b_reduce(b, OP_REDUCE_SUM, "cw.zy", b_binary(b, OP_MUL, "cw.ztrue", z, oh), &ax, 1, false);
    if (other < 0 || zy < 0) return -1;
    const Type tr = *b_type(b, zy);
    int margin = b_binary(b, OP_ADD, "cw.margin", b_binary(b, OP_SUB, "cw.diff", zy, other),
                          b_const(b, "cw.kappa", kappa, tr));
    int per = b_unary(b, OP_NEG, "cw.loss_per", b_unary(b, OP_RELU, "cw.hinge", margin));
    int64_t all = 0;
    return b_reduce(b, OP_REDUCE_SUM, "cw.loss", per, &all, 1, false);
}

static bool build_input_grad(Ctx *c, const char *name, bool cw) {
    const InputDesc *x = input(c, "x"), *y = input(c, "y");
    Builder b = {c->m, module_add_func(c->m, name), c->d};
    NetEnv env = {.b = &b, .doc = c->doc, .root_file = c->file, .training = false, .rng_key = -1, .bn_groups = 1};
    int xv = b_input(&b, "x", x->type), yv = b_input(&b, "y", y->type);
    int z = net_emit(&env, c->network, xv);
    if (z < 0) return false;
    int loss;
    if (cw) {
        loss = cw_loss(&b, z, yv, setting(c, "eval.cw_kappa", 50));
    } else {
        Attr red = attr_str("reduction", "sum");
        loss = b_node(&b, OP_CROSS_ENTROPY, "ce.loss", (int[]){z, yv}, 2, &red, 1);
    }
    int g = b_node(&b, OP_GRAD, "dx", (int[]){loss, xv}, 2, NULL, 0);
    if (g < 0) return false;
    func_add_output(c->m, b.f, "logits", z);
    func_add_output(c->m, b.f, "dx", g);
    return true;
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
        ok = add_train_logits(&b, &env, c->network, xv);
    }
    if (ok) {
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
    return build_objective(&c) && build_train_step(&c) && build_input_grad(&c, "grad_ce", false) &&
           build_input_grad(&c, "grad_cw", true);
}
