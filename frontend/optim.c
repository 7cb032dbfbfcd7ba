/* Optimiser steps as IR, with PyTorch's update rules so that runs match:
 *   SGD:  g += wd p; buf = mu buf + g; d = nesterov ? g + mu buf : buf; p -= lr d
 *         (buf starts at zero, so the first step's buf is g, as in PyTorch)
 *   Adam: g += wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *         p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * State lives in module parameters of kind state, named like PyTorch's
 * optimizer state: optim.momentum_buffer.<p>, optim.exp_avg.<p>, ... */
#include <string.h>

#include "frontend/objective.h"

typedef struct {
    Builder *b;
    const OptimSpec *o;
    const char *p;  /* parameter name */
    Type t;
    int lr_b;       /* lr broadcast to t */
} Upd;

static int k(Upd *u, const char *part, double v) {
    Builder *b = u->b;
    const char *n = arena_printf(b->m->arena, "%s.%s", u->p, part);
    return b_broadcast(b, n, b_const(b, arena_printf(b->m->arena, "%s.s", n), v, type_scalar(u->t.dtype)), &u->t);
}

static const char *nm(Upd *u, const char *fmt) { return arena_printf(u->b->m->arena, fmt, u->p); }

static int state(Upd *u, const char *kind) {
    const char *name = arena_printf(u->b->m->arena, "optim.%s.%s", kind, u->p);
    if (module_find_param(u->b->m, name) < 0)
        module_add_param(u->b->m, name, u->t, (InitSpec){INIT_ZEROS, 0}, false);
    return b_param(u->b, name);
}

static int out(Upd *u, const char *kind, int v) {
    func_add_output(u->b->m, u->b->f, arena_printf(u->b->m->arena, "optim.%s.%s", kind, u->p), v);
    return v;
}

static int sgd(Upd *u, int p, int g) {
    Builder *b = u->b;
    int d = g;
    if (u->o->momentum > 0) {
        int buf = b_binary(b, OP_ADD, nm(u, "optim.momentum_buffer.%s.new"),
                           b_binary(b, OP_MUL, nm(u, "%s.mu_buf"), state(u, "momentum_buffer"), k(u, "mu", u->o->momentum)), g);
        out(u, "momentum_buffer", buf);
        d = u->o->nesterov ? b_binary(b, OP_ADD, nm(u, "%s.nesterov"), g, b_binary(b, OP_MUL, nm(u, "%s.mu_buf2"), buf, k(u, "mu2", u->o->momentum)))
                           : buf;
    }
    return b_binary(b, OP_SUB, nm(u, "%s.new"), p, b_binary(b, OP_MUL, nm(u, "%s.lr_d"), u->lr_b, d));
}

/* 1 - beta^step, broadcast: Adam's bias correction. */
static int correction(Upd *u, const char *part, double beta, int step) {
    Builder *b = u->b;
    int bt = b_binary(b, OP_POW, nm(u, part), b_const(b, nm(u, "%s.beta"), beta, type_scalar(DT_F32)), step);
    int c = b_binary(b, OP_SUB, nm(u, "%s.1-beta^t"), b_const(b, nm(u, "%s.one"), 1.0, type_scalar(DT_F32)), bt);
    if (u->t.dtype != DT_F32) {
        Attr a = attr_dtype("dtype", u->t.dtype);
        c = b_node(b, OP_CAST, nm(u, "%s.corr.cast"), &c, 1, &a, 1);
    }
    return b_broadcast(b, nm(u, "%s.corr"), c, &u->t);
}

static int adam(Upd *u, int p, int g, int step) {
    Builder *b = u->b;
    const OptimSpec *o = u->o;
    int m = b_binary(b, OP_ADD, nm(u, "optim.exp_avg.%s.new"),
                     b_binary(b, OP_MUL, nm(u, "%s.b1m"), state(u, "exp_avg"), k(u, "b1", o->beta1)),
                     b_binary(b, OP_MUL, nm(u, "%s.g1"), g, k(u, "1-b1", 1 - o->beta1)));
    int g2 = b_binary(b, OP_MUL, nm(u, "%s.g2"), g, g);
    int v = b_binary(b, OP_ADD, nm(u, "optim.exp_avg_sq.%s.new"),
                     b_binary(b, OP_MUL, nm(u, "%s.b2v"), state(u, "exp_avg_sq"), k(u, "b2", o->beta2)),
                     b_binary(b, OP_MUL, nm(u, "%s.g2s"), g2, k(u, "1-b2", 1 - o->beta2)));
    out(u, "exp_avg", m);
    out(u, "exp_avg_sq", v);
    int mhat = b_binary(b, OP_DIV, nm(u, "%s.mhat"), m, correction(u, "%s.b1^t", o->beta1, step));
    int vhat = b_binary(b, OP_DIV, nm(u, "%s.vhat"), v, correction(u, "%s.b2^t", o->beta2, step));
    int den = b_binary(b, OP_ADD, nm(u, "%s.denom"), b_unary(b, OP_SQRT, nm(u, "%s.sqrt_vhat"), vhat), k(u, "eps", o->eps));
    int upd = b_binary(b, OP_MUL, nm(u, "%s.lr_upd"), u->lr_b, b_binary(b, OP_DIV, nm(u, "%s.upd"), mhat, den));
    return b_binary(b, OP_SUB, nm(u, "%s.new"), p, upd);
}

bool optim_emit(Builder *b, const OptimSpec *o, int np, const int *pv, const int *gv, int lr,
                int step, const char *file) {
    bool is_adam = strcmp(o->kind, "adam") == 0;
    if (!is_adam && strcmp(o->kind, "sgd") != 0)
        return ferr(b->d, file, "train.optimizer", "must be \"adam\" or \"sgd\", got '%s'", o->kind);
    for (int i = 0; i < np && !diag_failed(b->d); i++) {
        if (gv[i] < 0) continue;
        Upd u = {b, o, b->m->params[i].name, *b_type(b, pv[i]), -1};
        int lrc = lr;
        if (u.t.dtype != DT_F32) {
            Attr a = attr_dtype("dtype", u.t.dtype);
            lrc = b_node(b, OP_CAST, nm(&u, "%s.lr.cast"), &lr, 1, &a, 1);
        }
        u.lr_b = b_broadcast(b, nm(&u, "%s.lr"), lrc, &u.t);
        int g = gv[i];
        if (o->weight_decay > 0)
            g = b_binary(b, OP_ADD, nm(&u, "%s.g_wd"), g, b_binary(b, OP_MUL, nm(&u, "%s.wd_p"), pv[i], k(&u, "wd", o->weight_decay)));
        int np_v = is_adam ? adam(&u, pv[i], g, step) : sgd(&u, pv[i], g);
        if (np_v >= 0) func_add_output(b->m, b->f, u.p, np_v);
    }
    return !diag_failed(b->d);
}
