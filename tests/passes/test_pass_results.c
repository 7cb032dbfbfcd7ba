/* simplify, cse, schedule, licm and fuse change no result: every composed model (the
 * .json files of models/) is loaded at batch 2, run through the pipeline up to dce
 * (with the three passes disabled), and `predict` (and `objective` of two
 * small models, SmallCNN TRADES+IGR at narrow widths) is interpreted in float64 on fixed random inputs and
 * parameters, before and after applying simplify, cse, schedule, licm and fuse
 * (whose bodies the interpreter runs as functions); the
 * outputs must agree to 1e-12 relative. Also: simplify and cse never add
 * nodes, schedule never raises schedule_peak_bytes, and every function of
 * every model still verifies. ResNet-18 runs predict at batch 1. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "ir/builder.h"
#include "ir/interp.h"
#include "ir/shape.h"
#include "passes/pass.h"
#include "passes/schedule.h"

#define REL_TOL 1e-12

static const char *src_dir(void) {
    const char *s = getenv("IGRC_SOURCE_DIR");
    cr_assert(s, "IGRC_SOURCE_DIR is not set");
    return s;
}

static Module *load(const char *file, int64_t batch, const char *const *defs, int ndefs) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/models/%s", src_dir(), file);
    FrontendOptions o = {defs, ndefs, batch};
    Diag d;
    diag_init(&d);
    Module *m = frontend_load(p, &o, &d);
    cr_assert(m, "%s: %s", file, d.msg);
    return m;
}

static void verify(const Module *m, const char *what) {
    Diag d;
    diag_init(&d);
    cr_assert(ir_verify(m, &d), "%s: verifier: %s", what, d.msg);
}

/* The default pipeline up to dce, without the passes under test. */
static void pipeline_to_dce(Module *m, const char *what) {
    PipelineOptions po;
    memset(&po, 0, sizeof po);
    po.disable = "simplify,cse,schedule";
    po.stop_after = "dce";
    Diag d;
    diag_init(&d);
    cr_assert(pipeline_run(m, &po, &d), "%s: pipeline: %s", what, d.msg);
    verify(m, what);
}

static void apply(Module *m, const char *pass, const char *what) {
    const PassDef *p = pass_find(pass);
    cr_assert(p, "no pass %s", pass);
    Diag d;
    diag_init(&d);
    PassCtx ctx = {&d};
    cr_assert(p->run(m, &ctx), "%s: pass %s: %s", what, pass, d.msg);
    char w[512];
    snprintf(w, sizeof w, "%s after %s", what, pass);
    verify(m, w);
}

/* ---- fixed random values ---- */

static double unit(uint64_t *s) { /* splitmix64, in (0, 1) */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(uint64_t *s) {
    double u = unit(s), v = unit(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

typedef struct {
    NamedValue *v;
    int n;
} Vals;

static void vals_free(Vals *v) {
    named_values_free(v->v, v->n);
    v->v = NULL;
    v->n = 0;
}

static const InputDesc *input_desc(const Module *m, const char *name) {
    for (int i = 0; i < m->ninputs; i++)
        if (strcmp(m->inputs[i].name, name) == 0) return &m->inputs[i];
    return NULL;
}

/* One value per `input` node of f: images in their range (else [0, 1]),
 * labels below their class count (else 0 or 1), keys and the rest random. */
static Vals make_inputs(const Module *m, const Function *f, uint64_t seed) {
    Vals r = {calloc((size_t)f->n + 1, sizeof(NamedValue)), 0};
    for (int id = 0; id < f->n; id++) {
        const Node *n = &f->nodes[id];
        if (n->op != OP_INPUT) continue;
        NamedValue *v = &r.v[r.n++];
        v->name = n->name;
        v->type = n->type;
        int64_t numel = type_numel(&n->type);
        v->data = calloc((size_t)numel + 1, sizeof(double));
        const InputDesc *desc = input_desc(m, n->name);
        double lo = 0, hi = 1;
        if (desc && desc->hi > desc->lo) lo = desc->lo, hi = desc->hi;
        int classes = desc && desc->classes ? desc->classes : 2;
        for (int64_t k = 0; k < numel; k++) {
            double u = unit(&seed);
            switch (n->type.dtype) {
            case DT_I32: v->data[k] = floor(u * classes); break;
            case DT_BOOL: v->data[k] = u < 0.5; break;
            default: v->data[k] = lo + (hi - lo) * u; break;
            }
        }
    }
    return r;
}

/* Trainable weights N(0, 2/fan_in), vectors N(0, 0.1^2); running
 * variances 1, other state 0. */
static Vals make_params(const Module *m, uint64_t seed) {
    Vals r = {calloc((size_t)m->nparams + 1, sizeof(NamedValue)), m->nparams};
    for (int i = 0; i < m->nparams; i++) {
        const Param *p = &m->params[i];
        int64_t numel = type_numel(&p->type);
        r.v[i].name = p->name;
        r.v[i].type = p->type;
        r.v[i].data = calloc((size_t)numel + 1, sizeof(double));
        size_t len = strlen(p->name);
        bool var = len >= 11 && strcmp(p->name + len - 11, "running_var") == 0;
        double sd = p->type.rank > 1 ? sqrt(2.0 / (double)(numel / p->type.dim[0])) : 0.1;
        for (int64_t k = 0; k < numel; k++)
            r.v[i].data[k] = !p->trainable ? (double)var : sd * normal(&seed);
    }
    return r;
}

static Vals run(const Module *m, const char *fn, const Vals *in, const Vals *ps) {
    const Function *f = module_find_func(m, fn);
    cr_assert(f, "%s: no function %s", m->name, fn);
    InterpOptions io = {INTERP_F64};
    Vals o = {NULL, 0};
    Diag d;
    diag_init(&d);
    cr_assert(interp_run(m, f, &io, in->v, in->n, ps->v, ps->n, &o.v, &o.n, &d), "%s.%s: %s",
              m->name, fn, d.msg);
    return o;
}

static void compare(const Vals *a, const Vals *b, const char *what) {
    cr_assert_eq(a->n, b->n, "%s: %d outputs before, %d after", what, a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        cr_assert_str_eq(a->v[i].name, b->v[i].name, "%s: output %d renamed", what, i);
        cr_assert(type_equal(&a->v[i].type, &b->v[i].type), "%s: output %s changed type", what,
                  a->v[i].name);
        int64_t n = type_numel(&a->v[i].type);
        for (int64_t k = 0; k < n; k++) {
            double x = a->v[i].data[k], y = b->v[i].data[k];
            if (isnan(x) && isnan(y)) continue;
            bool ok = x == y || fabs(x - y) <= REL_TOL * fmax(fabs(x), fabs(y));
            cr_assert(ok, "%s: output %s[%lld]: %.17g before, %.17g after", what, a->v[i].name,
                      (long long)k, x, y);
        }
    }
}

typedef struct {
    int before[64], after_simplify[64], after_cse[64];
    int64_t peak_before[64], peak_after[64];
} Stats;

/* simplify, cse, schedule with their invariants checked per function. */
static void rewrite(Module *m, const char *what, Stats *s) {
    cr_assert_leq(m->nfuncs, 64);
    for (int i = 0; i < m->nfuncs; i++) s->before[i] = m->funcs[i]->n;
    apply(m, "simplify", what);
    for (int i = 0; i < m->nfuncs; i++) {
        s->after_simplify[i] = m->funcs[i]->n;
        cr_expect_leq(s->after_simplify[i], s->before[i], "%s: simplify grew %s", what,
                      m->funcs[i]->name);
    }
    apply(m, "cse", what);
    for (int i = 0; i < m->nfuncs; i++) {
        s->after_cse[i] = m->funcs[i]->n;
        cr_expect_leq(s->after_cse[i], s->after_simplify[i], "%s: cse grew %s", what,
                      m->funcs[i]->name);
    }
    apply(m, "dce", what);
    for (int i = 0; i < m->nfuncs; i++) s->peak_before[i] = schedule_peak_bytes(m->funcs[i]);
    apply(m, "schedule", what);
    for (int i = 0; i < m->nfuncs; i++) {
        s->peak_after[i] = schedule_peak_bytes(m->funcs[i]);
        cr_expect_leq(s->peak_after[i], s->peak_before[i], "%s: schedule raised the peak of %s",
                      what, m->funcs[i]->name);
    }
}

static void report(const Module *m, const char *file, const Stats *s) {
    for (int i = 0; i < m->nfuncs; i++)
        fprintf(stderr, "[pass_results] %-32s %-24s nodes %5d -> simplify %5d -> cse %5d -> dce %5d; "
                "peak %lld -> %lld bytes\n", file, m->funcs[i]->name, s->before[i],
                s->after_simplify[i], s->after_cse[i], m->funcs[i]->n, (long long)s->peak_before[i],
                (long long)s->peak_after[i]);
}

/* Interprets fns before and after the rewrites (the model compiled with
 * the ndefs -D's defs). */
static void check_model(const char *file, int64_t batch, const char *const *defs, int ndefs,
                        const char *const *fns, int nfns) {
    Module *m = load(file, batch, defs, ndefs);
    pipeline_to_dce(m, file);
    Vals ps = make_params(m, 7);
    Vals ins[4], before[4];
    for (int k = 0; k < nfns; k++) {
        const Function *f = module_find_func(m, fns[k]);
        cr_assert(f, "%s: no %s", file, fns[k]);
        ins[k] = make_inputs(m, f, 1000 + (uint64_t)k);
        before[k] = run(m, fns[k], &ins[k], &ps);
    }
    Stats s;
    rewrite(m, file, &s);
    if (getenv("IGRC_PASS_REPORT")) report(m, file, &s);
    /* fuse moves groups into body functions the interpreter runs as they
     * are; schedule again after it, as the pipeline does */
    apply(m, "licm", file);
    apply(m, "fuse", file);
    apply(m, "schedule", file);
    for (int k = 0; k < nfns; k++) {
        Vals after = run(m, fns[k], &ins[k], &ps);
        char what[512];
        snprintf(what, sizeof what, "%s: %s", file, fns[k]);
        compare(&before[k], &after, what);
        vals_free(&after);
        vals_free(&before[k]);
        vals_free(&ins[k]);
    }
    vals_free(&ps);
    module_free(m);
}

static int cmp_names(const void *a, const void *b) { return strcmp(a, b); }

Test(pass_results, predict_of_every_model_is_unchanged) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/models", src_dir());
    DIR *dp = opendir(dir);
    cr_assert(dp, "cannot open %s", dir);
    static char names[64][256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0 && n < 64)
            snprintf(names[n++], 256, "%s", e->d_name);
    }
    closedir(dp);
    qsort(names, (size_t)n, sizeof names[0], cmp_names);
    cr_assert_geq(n, 10, "found only %d models", n);
    static const char *const predict[] = {"predict"};
    for (int i = 0; i < n; i++)
        check_model(names[i], strncmp(names[i], "resnet", 6) == 0 ? 1 : 2, NULL, 0, predict, 1);
}

/* TRADES+IGR at narrow widths with short inner loops: the same ops and
 * rewrites (unrolled PGD and IG, double backprop) at a fraction of the
 * interpreter's time. */
Test(pass_results, objective_of_small_models_is_unchanged) {
    static const char *const fns[] = {"predict", "objective"};
    static const char *const narrow[] = {"width1=8", "width2=16", "hidden=32", "pgd_steps=3", "ig_steps=3"};
    check_model("mnist_smallcnn_trades_igr.json", 2, narrow, 5, fns, 2);
    check_model("mnist_mlp_standard.json", 2, NULL, 0, fns, 2);
}

/* A chain of 30,000 elementwise nodes: copying a group into its body once
 * recursed per node and overflowed the stack. Groups stop at 256 nodes
 * (passes/fuse.c, FUSE_MAX_NODES: a kernel's compile time grows faster
 * than its code), so the chain is ceil(30000 / 256) groups that together
 * hold every node once and compute what the chain computes. */
Test(pass_results, fuse_splits_a_30000_node_chain_without_recursing) {
    enum { DEPTH = 30000, N = 8, CAP = 256 };
    Module *m = module_new("deep");
    Diag d;
    diag_init(&d);
    Builder b = {m, module_add_func(m, "predict"), &d};
    int v = b_input(&b, "x", type_make(DT_F32, 1, (int64_t[]){N}));
    for (int i = 0; i < DEPTH; i++)
        v = b_unary(&b, i % 2 ? OP_RELU : OP_NEG, arena_printf(m->arena, "n%d", i), v);
    cr_assert(v >= 0, "builder: %s", d.msg);
    func_add_output(m, b.f, "y", v);
    PassCtx ctx = {&d};
    cr_assert(pass_fuse(m, &ctx), "fuse: %s", d.msg);
    verify(m, "deep chain after fuse");
    const Function *f = module_find_func(m, "predict");
    int fused = 0, members = 0, largest = 0;
    for (int i = 0; i < f->n; i++) {
        if (f->nodes[i].op != OP_FUSED) continue;
        fused++;
        const Function *body = module_find_func(m, node_str(&f->nodes[i], "body"));
        cr_assert(body, "no body for %s", f->nodes[i].name);
        int own = 0;
        for (int k = 0; k < body->n; k++) own += body->nodes[k].op != OP_INPUT;
        members += own;
        if (own > largest) largest = own;
    }
    cr_expect_eq(fused, (DEPTH + CAP - 1) / CAP, "%d fused nodes", fused);
    cr_expect_eq(members, DEPTH, "the bodies hold %d nodes", members);
    cr_expect_eq(largest, CAP, "the largest body has %d nodes", largest);
    cr_assert(module_find_func(m, "predict.fused.n29999"), "no body named predict.fused.n29999");
    /* neg then relu, 15,000 times: relu(-x), then relu(-relu(-x)) = 0 */
    double x[N] = {-2, -1, -0.5, 0, 0.25, 1, 3, -7};
    NamedValue in = {"x", type_make(DT_F32, 1, (int64_t[]){N}), x}, *out = NULL;
    InterpOptions io = {INTERP_F64};
    int nout = 0;
    cr_assert(interp_run(m, f, &io, &in, 1, NULL, 0, &out, &nout, &d), "interp: %s", d.msg);
    for (int i = 0; i < N; i++) cr_expect_eq(out[0].data[i], 0.0, "y[%d]", i);
    named_values_free(out, nout);
    module_free(m);
}
