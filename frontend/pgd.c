/* The inner maximisation as a loop: x <- clip_[lo,hi](clip_[x0-eps,x0+eps](
 * x + alpha sign(grad_x loss))), `steps` times, from a random start. The
 * loop body is its own function (inputs: i, x, x0, y); the result is
 * detached, as every method treats x~ as a constant (SPEC §3). */
#include <stdio.h>
#include <string.h>

#include "frontend/objective.h"

static const char *nm(Builder *b, const char *base, const char *part) {
    return arena_printf(b->m->arena, "%s.%s", base, part);
}

static int full(Builder *b, const char *name, double v, const Type *like) {
    Type t = *like;
    return b_broadcast(b, name, b_const(b, arena_printf(b->m->arena, "%s.s", name), v, type_scalar(t.dtype)), &t);
}

/* clip to [x0 - eps, x0 + eps], then to [lo, hi]. */
static int project(Builder *b, const char *base, int x, int x0, const PgdSpec *s) {
    Type t = *b_type(b, x);
    int e = full(b, nm(b, base, "eps"), s->eps, &t);
    int up = b_binary(b, OP_ADD, nm(b, base, "x0+eps"), x0, e);
    int dn = b_binary(b, OP_SUB, nm(b, base, "x0-eps"), x0, e);
    int c = b_binary(b, OP_MIN, nm(b, base, "ball_hi"), b_binary(b, OP_MAX, nm(b, base, "ball_lo"), x, dn), up);
    int lo = full(b, nm(b, base, "lo"), s->lo, &t), hi = full(b, nm(b, base, "hi"), s->hi, &t);
    return b_binary(b, OP_MIN, nm(b, base, "box_hi"), b_binary(b, OP_MAX, nm(b, base, "box_lo"), c, lo), hi);
}

static int start(Builder *b, const PgdSpec *s, int x0, int key) {
    Type t = *b_type(b, x0);
    if (strcmp(s->start, "none") == 0) return x0;
    Attr a = attr_int("stream", s->stream);
    bool normal = strcmp(s->start, "normal") == 0;
    int r = b_source(b, normal ? OP_RANDOM_NORMAL : OP_RANDOM_UNIFORM, nm(b, s->name, "noise"), &key, 1, &a, 1, t);
    int noise;
    if (normal) {
        noise = b_binary(b, OP_MUL, nm(b, s->name, "noise.scaled"), r, full(b, nm(b, s->name, "std"), s->start_scale, &t));
    } else { /* U(-eps, eps) = (2u - 1) eps */
        int two_u = b_binary(b, OP_MUL, nm(b, s->name, "2u"), r, full(b, nm(b, s->name, "two"), 2.0, &t));
        int c = b_binary(b, OP_SUB, nm(b, s->name, "2u-1"), two_u, full(b, nm(b, s->name, "one"), 1.0, &t));
        noise = b_binary(b, OP_MUL, nm(b, s->name, "noise.scaled"), c, full(b, nm(b, s->name, "eps"), s->eps, &t));
    }
    int x = b_binary(b, OP_ADD, nm(b, s->name, "start"), x0, noise);
    return project(b, nm(b, s->name, "start"), x, x0, s);
}

/* The loop body: one ascent step on the loss graph. */
static bool build_body(ObjEnv *oe, const PgdSpec *s, const char *fname, int x0, int y) {
    Builder *outer = oe->env->b;
    Module *m = outer->m;
    Builder b = {m, module_add_func(m, fname), outer->d};
    int i = b_input(&b, "i", type_scalar(DT_I32));
    int x = b_input(&b, "x", *b_type(outer, x0));
    int ox0 = b_input(&b, "x0", *b_type(outer, x0));
    int oy = b_input(&b, "y", *b_type(outer, y));
    (void)i;
    NetEnv env = *oe->env;
    env.b = &b;
    env.stat_updates = NULL; /* the attack never moves running statistics */
    env.notes = false;
    env.rng_key = -1;        /* outer values do not exist inside the body */
    ObjEnv inner = *oe;
    inner.env = &env;
    inner.key = inner.progress = -1;
    inner.attack = true;
    int vals[3] = {x, ox0, oy};
    int loss = obj_emit_graph(&inner, s->loss, s->loss_path, vals, 3);
    if (loss < 0) return false;
    if (b_type(&b, loss)->rank != 0)
        return ferr(b.d, oe->env->root_file, s->loss_path, "the loss an adversary maximises must be a scalar");
    int gins[2] = {loss, x};
    int g = b_node(&b, OP_GRAD, "loss_grad", gins, 2, NULL, 0);
    Type t = *b_type(&b, x);
    int step = b_binary(&b, OP_MUL, "step", b_unary(&b, OP_SIGN, "direction", g), full(&b, "alpha", s->alpha, &t));
    int next = project(&b, "next", b_binary(&b, OP_ADD, "ascended", x, step), ox0, s);
    if (next < 0) return false;
    func_add_output(m, b.f, "x", next);
    return true;
}

int pgd_emit(ObjEnv *oe, const PgdSpec *s, int x0, int y) {
    Builder *b = oe->env->b;
    const char *fname = arena_printf(b->m->arena, "%s.%s.body", oe->entry, s->name);
    if (module_find_func(b->m, fname)) fname = arena_printf(b->m->arena, "%s.%d", fname, b->m->nfuncs);
    int x = start(b, s, x0, oe->key);
    if (x < 0 || !build_body(oe, s, fname, x0, y)) return -1;
    if (s->steps > 0) {
        int ins[3] = {x, x0, y};
        Attr a[2] = {attr_str("body", fname), attr_int("trips", s->steps)};
        x = b_node(b, OP_LOOP, nm(b, s->name, "loop"), ins, 3, a, 2);
    }
    return b_unary(b, OP_STOP_GRADIENT, s->name, x);
}
