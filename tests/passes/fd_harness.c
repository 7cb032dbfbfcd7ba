/* The finite-difference harness (see fd_harness.h). */
#include "fd_harness.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/builder.h"
#include "ir/interp.h"
#include "passes/pass.h"

static uint64_t rng_state = 88172645463325252ull;
double urand(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Values for a float operand; with gap > 0 they are a shuffled grid so no
 * two are closer than gap (max, min, max-pool stay away from ties). */
static void sample(const Case *c, double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double u = urand();
        x[i] = c->lo + (c->hi - c->lo) * u;
        if (c->away_from_zero && fabs(x[i]) < 0.2) x[i] = x[i] < 0 ? x[i] - 0.2 : x[i] + 0.2;
    }
    if (c->gap > 0) {
        for (int64_t i = 0; i < n; i++) x[i] = c->lo + c->gap * (double)i;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(urand() * (double)(i + 1));
            double t = x[i];
            x[i] = x[j], x[j] = t;
        }
    }
}

typedef struct {
    Module *m;
    double *data[MAXIN]; /* operand values */
    int nfloat;
    int floats[MAXIN];   /* indices of differentiable operands */
} Setup;

/* Builds function `name`: inputs for the float operands, constants for the
 * others, y = op(...), L = sum(w * y). With order 2, G = sum(v * dL/dx0)
 * takes L's place. Outputs: "L", then "g<i>" = d(L or G)/d(operand i). */
static void build(Setup *s, const Case *c, int order) {
    Diag d;
    diag_init(&d);
    Builder b = {s->m, module_add_func(s->m, order == 1 ? "first" : "second"), &d};
    int ops[MAXIN];
    for (int i = 0; i < c->nin; i++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        if (c->kind[i] == DT_F64) {
            ops[i] = b_input(&b, name, c->in[i]);
            continue;
        }
        Type t = c->in[i];
        t.dtype = c->kind[i] == DT_BOOL ? DT_F64 : DT_I32;
        Attr a = attr_floats("data", s->data[i], (int)type_numel(&t));
        int v = b_source(&b, OP_CONSTANT, name, NULL, 0, &a, 1, t);
        if (c->kind[i] == DT_BOOL) { /* 0/1 data -> bool through a compare */
            int half = b_broadcast(&b, "half.b", b_const(&b, "half", 0.5, type_scalar(DT_F64)), &t);
            v = b_binary(&b, OP_GT, "cond", v, half);
        }
        ops[i] = v;
    }
    int y = b_node(&b, c->op, "y", ops, c->nin, c->attrs, c->nattrs);
    cr_assert(y >= 0, "build: %s", d.msg);
    const Type yt_v = *b_type(&b, y), *yt = &yt_v;
    int64_t n = type_numel(yt);
    double *w = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) w[i] = urand() - 0.3;
    Attr wa = attr_floats("data", w, (int)n);
    int wv = b_source(&b, OP_CONSTANT, "w", NULL, 0, &wa, 1, *yt);
    free(w);
    int64_t all[IR_MAX_RANK];
    for (int i = 0; i < yt->rank; i++) all[i] = i;
    int L = b_reduce(&b, OP_REDUCE_SUM, "L", b_binary(&b, OP_MUL, "wy", y, wv), all, yt->rank, false);
    if (order == 2) {
        int x0 = ops[s->floats[0]];
        int ins[2] = {L, x0};
        int g = b_node(&b, OP_GRAD, "dL", ins, 2, NULL, 0);
        const Type gt_v = *b_type(&b, g), *gt = &gt_v;
        int64_t k = type_numel(gt);
        double *v = malloc(sizeof(double) * (size_t)k);
        for (int64_t i = 0; i < k; i++) v[i] = urand() - 0.5;
        Attr va = attr_floats("data", v, (int)k);
        int vv = b_source(&b, OP_CONSTANT, "v", NULL, 0, &va, 1, *gt);
        free(v);
        for (int i = 0; i < gt->rank; i++) all[i] = i;
        L = b_reduce(&b, OP_REDUCE_SUM, "G", b_binary(&b, OP_MUL, "vg", g, vv), all, gt->rank, false);
    }
    func_add_output(s->m, b.f, "L", L);
    for (int k = 0; k < s->nfloat; k++) {
        int ins[2] = {L, ops[s->floats[k]]};
        char name[16];
        snprintf(name, sizeof name, "g%d", k);
        func_add_output(s->m, b.f, name, b_node(&b, OP_GRAD, name, ins, 2, NULL, 0));
    }
    cr_assert(!diag_failed(&d), "build: %s", d.msg);
}

static NamedValue *run(Setup *s, const Case *c, const char *fn, int *nout) {
    NamedValue in[MAXIN];
    int k = 0;
    for (int i = 0; i < c->nin; i++)
        if (c->kind[i] == DT_F64) {
            static const char *names[MAXIN] = {"x0", "x1", "x2", "x3", "x4"};
            in[k++] = (NamedValue){names[i], c->in[i], s->data[i]};
        }
    NamedValue *out = NULL;
    Diag d;
    diag_init(&d);
    InterpOptions o = {INTERP_F64};
    cr_assert(interp_run(s->m, module_find_func(s->m, fn), &o, in, k, NULL, 0, &out, nout, &d),
              "interp: %s", d.msg);
    return out;
}

static double eval_L(Setup *s, const Case *c, const char *fn) {
    int n;
    NamedValue *o = run(s, c, fn, &n);
    double v = o[0].data[0];
    named_values_free(o, n);
    return v;
}

static void compare(Setup *s, const Case *c, const char *fn, double tol) {
    int n;
    NamedValue *o = run(s, c, fn, &n);
    for (int k = 0; k < s->nfloat; k++) {
        int i = s->floats[k];
        int64_t cnt = type_numel(&c->in[i]);
        for (int64_t j = 0; j < cnt; j++) {
            double keep = s->data[i][j], h = 1e-5 * fmax(1.0, fabs(keep));
            s->data[i][j] = keep + h;
            double up = eval_L(s, c, fn);
            s->data[i][j] = keep - h;
            double dn = eval_L(s, c, fn);
            s->data[i][j] = keep;
            double fd = (up - dn) / (2 * h), ad = o[1 + k].data[j];
            double scale = fmax(1.0, fmax(fabs(fd), fabs(ad)));
            cr_assert(fabs(fd - ad) <= tol * scale,
                      "%s %s: d/dx%d[%lld]: autodiff %.12g, finite difference %.12g",
                      op_name(c->op), fn, i, (long long)j, ad, fd);
        }
    }
    named_values_free(o, n);
}

/* Operand data: sampled, fixed by the case, or integer labels. */
static void setup(Setup *s, Case *c) {
    *s = (Setup){.m = module_new("ad")};
    for (int i = 0; i < c->nin; i++) {
        c->in[i].dtype = c->kind[i] == DT_F64 ? DT_F64 : (c->kind[i] == DT_I32 ? DT_I32 : DT_BOOL);
        int64_t n = type_numel(&c->in[i]);
        s->data[i] = malloc(sizeof(double) * (size_t)(n + 1));
        if (c->kind[i] == DT_F64) {
            sample(c, s->data[i], n);
            s->floats[s->nfloat++] = i;
        } else {
            int hi = c->kind[i] == DT_BOOL ? 2 : c->int_hi;
            for (int64_t j = 0; j < n; j++) s->data[i][j] = (double)(int)(urand() * hi);
        }
        if (c->fixed[i]) memcpy(s->data[i], c->fixed[i], sizeof(double) * (size_t)n);
    }
}

static void compile(Setup *s, const Case *c, bool second) {
    build(s, c, 1);
    if (second) build(s, c, 2);
    Diag d;
    diag_init(&d);
    PipelineOptions po = {.verify_each = true};
    cr_assert(pipeline_run(s->m, &po, &d), "pipeline: %s", d.msg);
}

static void teardown(Setup *s, const Case *c) {
    for (int i = 0; i < c->nin; i++) free(s->data[i]);
    module_free(s->m);
}

void check(Case c, bool second) {
    Setup s;
    setup(&s, &c);
    compile(&s, &c, second);
    compare(&s, &c, "first", 1e-6);
    if (second) compare(&s, &c, "second", 1e-6);
    teardown(&s, &c);
}

static void expect_finite(Setup *s, const Case *c, const char *fn) {
    int n;
    NamedValue *o = run(s, c, fn, &n);
    for (int k = 0; k < n; k++)
        for (int64_t j = 0; j < type_numel(&o[k].type); j++)
            cr_assert(isfinite(o[k].data[j]), "%s %s: output %s[%lld] = %g", op_name(c->op), fn,
                      o[k].name, (long long)j, o[k].data[j]);
    named_values_free(o, n);
}

void check_finite(Case c) {
    Setup s;
    setup(&s, &c);
    compile(&s, &c, true);
    expect_finite(&s, &c, "first");
    expect_finite(&s, &c, "second");
    teardown(&s, &c);
}
