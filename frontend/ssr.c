/* SSR's curvature term (Wang et al. 2020, SPEC §5): per sample, the top
 * eigenvalue of M = J^T H J, J = dz/dx the logits' input Jacobian and
 * H = diag(p) - p p^T, by power iteration in input space.
 *
 * Only gradients exist in the IR, so both products with J are built from
 * them: J^T u = grad(sum(u * z), x) (a VJP), and J v = grad(sum(J^T c * v), c)
 * for a dummy cotangent c (a VJP of a VJP is a JVP, whatever c's value).
 * The iterate is detached; the Rayleigh quotient v^T M v = (Jv)^T H (Jv)
 * at the last iterate carries the gradient to the parameters. */
#include <math.h>

#include "base/philox.h"
#include "frontend/objective.h"

typedef struct {
    Builder *b;
    const char *name;
    int x, z, p; /* input, logits, probabilities (all [B, ...]) */
} Ssr;

static const char *nm(Ssr *s, const char *part, int k) {
    return arena_printf(s->b->m->arena, "%s.%s%d", s->name, part, k);
}

static int total(Ssr *s, const char *part, int k, int v) {
    Type t = *b_type(s->b, v);
    int64_t axes[IR_MAX_RANK];
    for (int i = 0; i < t.rank; i++) axes[i] = i;
    return b_reduce(s->b, OP_REDUCE_SUM, nm(s, part, k), v, axes, t.rank, false);
}

static int rows(Ssr *s, const char *part, int k, int v) {
    Type t = *b_type(s->b, v);
    int64_t axes[IR_MAX_RANK];
    for (int i = 1; i < t.rank; i++) axes[i - 1] = i;
    return b_reduce(s->b, OP_REDUCE_SUM, nm(s, part, k), v, axes, t.rank - 1, false);
}

static int grad(Ssr *s, const char *part, int k, int y, int wrt) {
    int ins[2] = {y, wrt};
    return b_node(s->b, OP_GRAD, nm(s, part, k), ins, 2, NULL, 0);
}

static int mul(Ssr *s, const char *part, int k, int a, int c) {
    return b_binary(s->b, OP_MUL, nm(s, part, k), a, c);
}

/* J v, v shaped like x. */
static int jvp(Ssr *s, int k, int v) {
    Type zt = *b_type(s->b, s->z);
    int c = b_const(s->b, nm(s, "cotangent", k), 0.0, zt);
    int jtc = grad(s, "jtc", k, total(s, "cz", k, mul(s, "c_z", k, c, s->z)), s->x);
    return grad(s, "jv", k, total(s, "jtc_v", k, mul(s, "jtc_v.e", k, jtc, v)), c);
}

/* H u = p * u - p (p . u), per row. */
static int hess(Ssr *s, int k, int u) {
    Type t = *b_type(s->b, u);
    int pu = rows(s, "p_dot_u", k, mul(s, "p_u", k, s->p, u));
    int pub = b_bcast_axis(s->b, nm(s, "p_dot_u.b", k), pu, &t, 0);
    return b_binary(s->b, OP_SUB, nm(s, "hu", k), mul(s, "pu_e", k, s->p, u), mul(s, "p_pu", k, s->p, pub));
}

/* v / |v| per row (|v| floored so a zero row stays finite). */
static int normalize(Ssr *s, int k, int v) {
    Type t = *b_type(s->b, v);
    int n2 = rows(s, "norm2", k, mul(s, "v2", k, v, v));
    Type r = *b_type(s->b, n2);
    int floor_ = b_broadcast(s->b, nm(s, "floor", k), b_const(s->b, nm(s, "floor.s", k), 1e-24, type_scalar(r.dtype)), &r);
    int inv = b_unary(s->b, OP_RSQRT, nm(s, "inv_norm", k), b_binary(s->b, OP_MAX, nm(s, "norm2f", k), n2, floor_));
    return mul(s, "unit", k, v, b_bcast_axis(s->b, nm(s, "inv_norm.b", k), inv, &t, 0));
}

/* A fixed start: Philox normals, the same for every step and backend. */
static int start(Ssr *s) {
    Type t = *b_type(s->b, s->x);
    int64_t n = type_numel(&t);
    double *d = arena_alloc(s->b->m->arena, sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) d[i] = philox_normal(0x55a, 0, 0x55a, (uint64_t)i);
    Attr a = attr_floats("data", d, (int)n);
    return normalize(s, 0, b_source(s->b, OP_CONSTANT, nm(s, "v", 0), NULL, 0, &a, 1, t));
}

int ssr_emit(ObjEnv *oe, int x, int z, int iterations, const char *name) {
    Builder *b = oe->env->b;
    Attr ax = attr_int("axis", 1);
    Ssr s = {b, name, x, z, b_node(b, OP_SOFTMAX, arena_printf(b->m->arena, "%s.p", name), &z, 1, &ax, 1)};
    int v = start(&s);
    for (int k = 1; k <= iterations && v >= 0; k++) {
        int hjv = b_unary(b, OP_STOP_GRADIENT, nm(&s, "hjv.sg", k), hess(&s, k, jvp(&s, k, v)));
        int w = grad(&s, "jt_hjv", k, total(&s, "hjv_z", k, mul(&s, "hjv_z.e", k, hjv, z)), x);
        v = normalize(&s, k, b_unary(b, OP_STOP_GRADIENT, nm(&s, "w.sg", k), w));
    }
    int jv = jvp(&s, iterations + 1, v);
    int quot = b_binary(b, OP_MUL, nm(&s, "quot", 0), jv, hess(&s, iterations + 1, jv));
    Type t = *b_type(b, quot);
    int64_t axes[IR_MAX_RANK];
    for (int i = 1; i < t.rank; i++) axes[i - 1] = i;
    return b_reduce(b, OP_REDUCE_SUM, name, quot, axes, t.rank - 1, false);
}
