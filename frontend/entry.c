/* Entry points built from an objective: ig(x, y), objective(x, y, x_adv)
 * and train_step(x, y, lr, step, progress, key). Names are fixed: tools
 * and tests outside rely on them (docs/graph-format.md, "Entry points"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/contract.h"
#include "base/settings.h"
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

/* A setting's value, or its default from the table the executables use
 * too (base/settings.c); values were checked against it at load. */
static double setting(const Ctx *c, const char *key) {
    const Setting *s = module_setting(c->m, key);
    return s && !s->is_str ? s->num : settings_default(key);
}

static const char *setting_str(const Ctx *c, const char *key) {
    const Setting *s = module_setting(c->m, key);
    return s && s->is_str ? s->str : settings_default_str(key);
}

/* ig(x, y) -> attributions, the network in evaluation mode. */
static bool build_ig(Ctx *c) {
    const InputDesc *x = input(c, IN_X), *y = input(c, IN_Y);
    if (!x || !y || !y->classes) return true; /* no labelled image input: no ig */
    double m = setting(c, "eval.ig_steps");
    Builder b = {c->m, module_add_func(c->m, ENTRY_IG), c->d};
    NetEnv env = {.b = &b, .doc = c->doc, .root_file = c->file, .rng_key = -1, .bn_groups = 1};
    ObjEnv oe = {.env = &env, .network = c->network, .x_adv = -1, .progress = -1, .key = -1, .entry = ENTRY_IG};
    int xv = b_input(&b, IN_X, x->type), yv = b_input(&b, IN_Y, y->type);
    IgSpec s = {(int)m, false, c->network, "logit", -1, "attributions"};
    int a = ig_emit(&oe, &s, xv, yv);
    if (a < 0) return false;
    func_add_output(c->m, b.f, OUT_ATTRIBUTIONS, a);
    return true;
}

/* An integer setting in [lo, hi] (default dflt); false with the message. */
static int int_setting(const Ctx *c, const char *key) { return (int)setting(c, key); }

/* x's type with the batch (leading) dimension set to n. */
static Type rebatch(const Type *t, int n) {
    Type r = *t;
    r.dim[0] = n;
    return r;
}

/* The saliency of SPEC section 6: sum over channels of |IG|, [B, 1, H, W]
 * (an image input's rank is checked by the runtime; other ranks keep |IG|). */
static int saliency(Builder *b, const char *name, int ig) {
    int a = b_unary(b, OP_ABS, arena_printf(b->m->arena, "%s.abs", name), ig);
    if (a < 0 || b_type(b, a)->rank != 4) return a;
    int64_t channels = 1;
    return b_reduce(b, OP_REDUCE_SUM, name, a, &channels, 1, true);
}

/* D(x) = sum over rows of sum(mask * s) / sum(s): the share of each row's
 * saliency inside its original top-k (Ghorbani et al. 2019, Chen et al.
 * 2019). Normalised, the attack cannot lower D by shrinking the whole map. */
static int topk_share(Builder *b, int s, int mask) {
    Type t = *b_type(b, s);
    int64_t rows[IR_MAX_RANK], batch = 0;
    for (int i = 1; i < t.rank; i++) rows[i - 1] = i;
    int in = b_reduce(b, OP_REDUCE_SUM, "attack.inside", b_binary(b, OP_MUL, "attack.masked", s, mask),
                      rows, t.rank - 1, false);
    int all = b_reduce(b, OP_REDUCE_SUM, "attack.total", s, rows, t.rank - 1, false);
    int share = b_binary(b, OP_DIV, "attack.share", in, all);
    return b_reduce(b, OP_REDUCE_SUM, "attack.D", share, &batch, 1, false);
}

/* attrib_step(x, y, mask) -> logits, attributions, dx: one iterate of the
 * IFIA top-k attack (SPEC section 6). logits and attributions are the real
 * (ReLU) network's prediction and saliency at x (the label check and
 * Kendall's tau); dx is the gradient of the normalised top-k share D(x) of
 * the saliency of the same network with every ReLU replaced by softplus
 * (beta 1), since a ReLU network's second derivative is zero. mask has the
 * saliency's shape [B, 1, H, W]. Evaluation mode, `batch` rows (attacks
 * run few images). */
static bool build_attrib_rows(Ctx *c, const char *name, int batch) {
    const InputDesc *x = input(c, IN_X), *y = input(c, IN_Y);
    int m = int_setting(c, "eval.ig_steps"), mt = int_setting(c, "eval.attack_ig_steps");
    Type xt = rebatch(&x->type, batch), yt = rebatch(&y->type, batch), st = xt;
    if (st.rank == 4) st.dim[1] = 1;
    Builder b = {c->m, module_add_func(c->m, name), c->d};
    NetEnv env = {.b = &b, .doc = c->doc, .root_file = c->file, .rng_key = -1, .bn_groups = 1};
    ObjEnv oe = {.env = &env, .network = c->network, .x_adv = -1, .progress = -1, .key = -1, .entry = name};
    int xv = b_input(&b, IN_X, xt), yv = b_input(&b, IN_Y, yt), mask = b_input(&b, IN_MASK, st);
    int z = net_emit(&env, c->network, xv);
    IgSpec real = {m, false, c->network, "logit", -1, "ig"};
    int a = z < 0 ? -1 : saliency(&b, OUT_ATTRIBUTIONS, ig_emit(&oe, &real, xv, yv));
    NetEnv smooth = env;
    smooth.smooth_relu = true;
    ObjEnv soe = oe;
    soe.env = &smooth;
    IgSpec sur = {mt, false, c->network, "logit", -1, "surrogate"};
    int s = a < 0 ? -1 : saliency(&b, "surrogate.saliency", ig_emit(&soe, &sur, xv, yv));
    int g = s < 0 ? -1 : b_node(&b, OP_GRAD, OUT_DX, (int[]){topk_share(&b, s, mask), xv}, 2, NULL, 0);
    if (g < 0) return false;
    func_add_output(c->m, b.f, OUT_LOGITS, z);
    func_add_output(c->m, b.f, OUT_ATTRIBUTIONS, a);
    func_add_output(c->m, b.f, OUT_DX, g);
    return true;
}

/* attrib_step at eval.attack_batch rows, and attrib_step.<N> at every power
 * of two N below it: attrib attacks a remainder of r images as r's binary
 * digits (13 = 8 + 4 + 1), never padding rows. Row-wise kernels are the
 * same code at every size (kernel_same), so the variants add few kernels. */
static bool build_attrib_step(Ctx *c) {
    int batch = int_setting(c, "eval.attack_batch");
    if (!build_attrib_rows(c, ENTRY_ATTRIB_STEP, batch)) return false;
    for (int n = 1; n < batch; n *= 2)
        if (!build_attrib_rows(c, arena_printf(c->m->arena, ENTRY_ATTRIB_STEP_ROWS, n), n)) return false;
    return true;
}

/* activations(x) -> logits, pre: every ReLU's input, each flattened per row
 * and concatenated along axis 1 ([B, units], emission order), for the
 * activation consistency of SPEC section 6 (units active when pre > 0). */
static bool build_activations(Ctx *c) {
    const InputDesc *x = input(c, IN_X);
    Builder b = {c->m, module_add_func(c->m, ENTRY_ACTIVATIONS), c->d};
    ReluTaps taps = {0};
    NetEnv env = {.b = &b, .doc = c->doc, .root_file = c->file, .rng_key = -1, .bn_groups = 1,
                  .relu_taps = &taps};
    int xv = b_input(&b, IN_X, x->type);
    int z = net_emit(&env, c->network, xv);
    bool ok = z >= 0;
    if (ok && taps.n == 0) {
        free(taps.values);
        return true; /* no ReLU: nothing to compare */
    }
    int *flat = ok ? malloc(sizeof(int) * (size_t)taps.n) : NULL;
    for (int i = 0; ok && i < taps.n; i++) {
        const Type *t = b_type(&b, taps.values[i]);
        int64_t d[2] = {t->dim[0], type_numel(t) / t->dim[0]};
        flat[i] = b_reshape(&b, arena_printf(c->m->arena, "pre.%d", i), taps.values[i], 2, d);
        ok = flat[i] >= 0;
    }
    int pre = -1;
    if (ok) {
        Attr ax = attr_int("axis", 1);
        pre = taps.n == 1 ? flat[0] : b_node(&b, OP_CONCAT, OUT_PRE, flat, taps.n, &ax, 1);
        ok = pre >= 0;
    }
    if (ok) {
        func_add_output(c->m, b.f, OUT_LOGITS, z);
        func_add_output(c->m, b.f, OUT_PRE, pre);
    }
    free(flat);
    free(taps.values);
    return ok;
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
    const InputDesc *x = input(c, IN_X), *y = input(c, IN_Y);
    Builder b = {c->m, module_add_func(c->m, ENTRY_OBJECTIVE), c->d};
    NetEnv env = {.b = &b, .doc = c->doc, .root_file = c->file, .training = true, .rng_key = -1, .bn_groups = 1};
    int xv = b_input(&b, IN_X, x->type), yv = b_input(&b, IN_Y, y->type);
    /* Dropout masks from the fixed key (0, 0): the entry point is a pure
     * function of its inputs, so other implementations can be compared. */
    Attr zero = attr_floats("data", (double[]){0, 0}, 2);
    env.rng_key = b_source(&b, OP_CONSTANT, "key", NULL, 0, &zero, 1, type_make(DT_I32, 1, (int64_t[]){2}));
    ObjEnv oe = {.env = &env, .network = c->network, .mode = OBJ_GIVEN_ADV,
                 .x_adv = b_input(&b, IN_X_ADV, x->type), .progress = -1, .key = -1, .entry = ENTRY_OBJECTIVE};
    int loss = emit_objective(c, &b, &oe, xv, yv);
    if (loss < 0) return false;
    int *pv = malloc(sizeof(int) * (size_t)(c->m->nparams + 1)), *gv = malloc(sizeof(int) * (size_t)(c->m->nparams + 1));
    bool ok = param_grads(&b, loss, pv, gv);
    func_add_output(c->m, b.f, OUT_LOSS, loss);
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
    int s = b_unary(b, OP_STOP_GRADIENT, OUT_LOGITS, z);
    if (s < 0) return false;
    func_add_output(b->m, b->f, OUT_LOGITS, s);
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
    const InputDesc *x = input(c, IN_X), *y = input(c, IN_Y);
    Builder b = {c->m, module_add_func(c->m, name), c->d};
    NetEnv env = {.b = &b, .doc = c->doc, .root_file = c->file, .training = false, .rng_key = -1, .bn_groups = 1};
    int xv = b_input(&b, IN_X, x->type), yv = b_input(&b, IN_Y, y->type);
    int z = net_emit(&env, c->network, xv);
    if (z < 0) return false;
    int loss;
    if (cw) {
        loss = cw_loss(&b, z, yv, setting(c, "eval.cw_kappa"));
    } else {
        Attr red = attr_str("reduction", "sum");
        loss = b_node(&b, OP_CROSS_ENTROPY, "ce.loss", (int[]){z, yv}, 2, &red, 1);
    }
    int g = b_node(&b, OP_GRAD, OUT_DX, (int[]){loss, xv}, 2, NULL, 0);
    if (g < 0) return false;
    func_add_output(c->m, b.f, OUT_LOGITS, z);
    func_add_output(c->m, b.f, OUT_DX, g);
    return true;
}

/* grad_logits(x, dlogits) -> logits, dx = (dz/dx)^T dlogits: the network's
 * vector-Jacobian product at x in evaluation mode. The AutoAttack attacks
 * (runtime/app/aa_*.c) compute their losses' derivatives with respect to the
 * K logits of each row on the host (CE, targeted DLR, a logit difference)
 * and take the input gradient from here, so one compiled entry point serves
 * every loss on every backend. Rows do not mix: the network runs in
 * evaluation mode (batch norm on running statistics). */
static bool build_logit_vjp(Ctx *c) {
    const InputDesc *x = input(c, IN_X);
    Builder b = {c->m, module_add_func(c->m, ENTRY_GRAD_LOGITS), c->d};
    NetEnv env = {.b = &b, .doc = c->doc, .root_file = c->file, .training = false, .rng_key = -1, .bn_groups = 1};
    int xv = b_input(&b, IN_X, x->type);
    int z = net_emit(&env, c->network, xv);
    if (z < 0) return false;
    int w = b_input(&b, IN_DLOGITS, *b_type(&b, z));
    int64_t all[2] = {0, 1};
    int dot = b_reduce(&b, OP_REDUCE_SUM, "vjp.dot", b_binary(&b, OP_MUL, "vjp.weighted", z, w), all, 2, false);
    int g = dot < 0 ? -1 : b_node(&b, OP_GRAD, OUT_DX, (int[]){dot, xv}, 2, NULL, 0);
    if (g < 0) return false;
    func_add_output(c->m, b.f, OUT_LOGITS, z);
    func_add_output(c->m, b.f, OUT_DX, g);
    return true;
}

static OptimSpec optim_spec(const Ctx *c) {
    return (OptimSpec){setting_str(c, "train.optimizer"), setting(c, "train.momentum"),
                       setting(c, "train.weight_decay"), setting(c, "train.nesterov") != 0,
                       setting(c, "train.beta1"), setting(c, "train.beta2"), setting(c, "train.adam_eps")};
}

/* train_step(x, y, lr, step, progress, key) -> loss, logits, <param>...,
 * <optimizer state>..., <running statistics>... at the module's batch; with
 * update false, train_grads(x, y, progress, key) -> loss, logits,
 * grad.<param>..., <running statistics>... at `batch` rows: the gradients
 * of one data-parallel micro-batch, which the runtime sums across
 * micro-batches and ranks before train_apply. */
static bool build_train_step(Ctx *c, const char *name, int64_t batch, bool update) {
    const InputDesc *x = input(c, IN_X), *y = input(c, IN_Y);
    Builder b = {c->m, module_add_func(c->m, name), c->d};
    StatUpdates stats = {0};
    /* train.sync_bn: train_grads' statistics over the batch / batch ranks of the job */
    int ranks = !update && setting(c, "train.sync_bn") != 0 ? (int)(c->m->batch / batch) : 1;
    NetEnv env = {.b = &b, .doc = c->doc, .root_file = c->file, .training = true, .bn_groups = 1,
                  .bn_ranks = ranks, .stat_updates = &stats};
    int xv = b_input(&b, IN_X, rebatch(&x->type, (int)batch)), yv = b_input(&b, IN_Y, rebatch(&y->type, (int)batch));
    int lr = update ? b_input(&b, IN_LR, type_scalar(DT_F32)) : -1;
    int step = update ? b_input(&b, IN_STEP, type_scalar(DT_F32)) : -1;
    int progress = b_input(&b, IN_PROGRESS, type_scalar(DT_F32));
    int key = b_input(&b, IN_KEY, type_make(DT_I32, 1, (int64_t[]){2}));
    env.rng_key = key;
    ObjEnv oe = {.env = &env, .network = c->network, .mode = OBJ_TRAIN, .x_adv = -1,
                 .progress = progress, .key = key, .entry = name};
    int loss = emit_objective(c, &b, &oe, xv, yv);
    int np = c->m->nparams;
    int *pv = malloc(sizeof(int) * (size_t)(np + 1)), *gv = malloc(sizeof(int) * (size_t)(np + 1));
    bool ok = loss >= 0 && param_grads(&b, loss, pv, gv);
    if (ok) {
        func_add_output(c->m, b.f, OUT_LOSS, loss);
        ok = add_train_logits(&b, &env, c->network, xv);
    }
    if (ok && update) {
        OptimSpec o = optim_spec(c);
        ok = optim_emit(&b, &o, np, pv, gv, lr, step, c->file);
    }
    for (int i = 0; ok && !update && i < np; i++)
        if (gv[i] >= 0) func_add_output(c->m, b.f, b.f->nodes[gv[i]].name, gv[i]);
    for (int i = 0; ok && i < stats.n; i++) func_add_output(c->m, b.f, stats.names[i], stats.values[i]);
    free(stats.names);
    free(stats.values);
    free(pv);
    free(gv);
    return ok;
}

/* train_apply(grad.<param>..., lr, step) -> <param>..., <optimizer state>:
 * the optimiser step of train_step on gradients given as inputs (summed
 * over the data-parallel micro-batches), so every rank applies the same
 * update to the same state. */
static bool build_train_apply(Ctx *c) {
    Builder b = {c->m, module_add_func(c->m, ENTRY_TRAIN_APPLY), c->d};
    int np = c->m->nparams;
    int *pv = malloc(sizeof(int) * (size_t)(np + 1)), *gv = malloc(sizeof(int) * (size_t)(np + 1));
    for (int i = 0; i < np; i++) {
        const Param *p = &c->m->params[i];
        pv[i] = gv[i] = -1;
        if (!p->trainable) continue;
        gv[i] = b_input(&b, arena_printf(c->m->arena, OUT_GRAD_PREFIX "%s", p->name), p->type);
        pv[i] = b_param(&b, p->name);
    }
    int lr = b_input(&b, IN_LR, type_scalar(DT_F32)), step = b_input(&b, IN_STEP, type_scalar(DT_F32));
    OptimSpec o = optim_spec(c);
    bool ok = optim_emit(&b, &o, np, pv, gv, lr, step, c->file);
    free(pv);
    free(gv);
    return ok;
}

/* The data-parallel pair when train.micro_batch is set: G rows per
 * micro-batch, G dividing the batch. */
static bool build_data_parallel(Ctx *c) {
    int g = int_setting(c, "train.micro_batch");
    if (g == 0 && setting(c, "train.sync_bn") != 0)
        return ferr(c->d, c->file, "train.sync_bn",
                    "synchronises batch-norm statistics across data-parallel ranks: it needs train.micro_batch "
                    "(batch / ranks rows per micro-batch)");
    if (g == 0) return true;
    if (c->m->batch % g != 0)
        return ferr(c->d, c->file, "train.micro_batch",
                    "must divide the batch: %d rows per micro-batch do not divide batch %lld", g,
                    (long long)c->m->batch);
    return build_train_step(c, ENTRY_TRAIN_GRADS, g, false) && build_train_apply(c);
}

/* A labelled image input pair: x [B, ...] and y i32 [B], batched alike
 * (every entry point indexes y by x's rows). */
static bool check_labelled(const Ctx *c, const InputDesc *x, const InputDesc *y) {
    if (!x->batched || x->type.rank < 1)
        return ferr(c->d, doc_origin(c->doc, "inputs.x", c->file), "inputs.x",
                    "'shape' must start with \"B\" (x is a batch of images labelled by y)");
    if (!y->batched || y->type.rank != 1 || y->type.dtype != DT_I32)
        return ferr(c->d, doc_origin(c->doc, "inputs.y", c->file), "inputs.y",
                    "labels with \"classes\" must be i32 of shape [\"B\"]");
    return true;
}

bool objective_build(Module *m, const cJSON *doc, const char *file, const char *network, Diag *d) {
    Ctx c = {m, doc, file, network, d};
    const InputDesc *xi = input(&c, IN_X), *yi = input(&c, IN_Y);
    if (xi && yi && yi->classes && !check_labelled(&c, xi, yi)) return false;
    if (!build_ig(&c)) return false;
    const InputDesc *x = input(&c, IN_X), *y = input(&c, IN_Y);
    if (x && y && y->classes && !(build_attrib_step(&c) && build_activations(&c))) return false;
    if (!cJSON_GetObjectItemCaseSensitive(doc, "objective")) return true;
    if (!input(&c, IN_X) || !input(&c, IN_Y) || !input(&c, IN_Y)->classes)
        return ferr(d, doc_file_of(cJSON_GetObjectItemCaseSensitive(doc, "objective"), file), "objective",
                    "an objective needs inputs x and y (y with \"classes\")");
    return build_objective(&c) && build_train_step(&c, ENTRY_TRAIN_STEP, m->batch, true) &&
           build_data_parallel(&c) && build_input_grad(&c, ENTRY_GRAD_CE, false) &&
           build_input_grad(&c, ENTRY_GRAD_CW, true) && build_logit_vjp(&c);
}
