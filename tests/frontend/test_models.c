/* Every graph file under models/ and models/nets/ loads, verifies and
 * survives print -> parse -> print byte for byte, before and after the
 * default pipeline; parameter counts and PyTorch names of the example
 * networks; and SmallCNN's predict through the interpreter against a
 * forward pass written out here in plain loops. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "ir/interp.h"
#include "ir/parse.h"
#include "ir/print.h"
#include "ir/shape.h"
#include "passes/pass.h"

static const char *source_dir(void) {
    const char *s = getenv("IGRC_SOURCE_DIR");
    cr_assert(s, "IGRC_SOURCE_DIR is not set");
    return s;
}

static Module *load(const char *path, const FrontendOptions *o) {
    Diag d;
    diag_init(&d);
    Module *m = frontend_load(path, o, &d);
    cr_assert(m, "%s: %s", path, d.msg);
    return m;
}

static Module *load_model(const char *rel, const FrontendOptions *o) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", source_dir(), rel);
    return load(p, o);
}

static void verify(const Module *m, const char *what) {
    Diag d;
    diag_init(&d);
    cr_assert(ir_verify(m, &d), "%s: verifier: %s", what, d.msg);
}

/* print -> parse -> print is byte-identical and the reparse verifies. */
static void round_trip(const Module *m, const char *what) {
    char *text = ir_module_to_string(m);
    cr_assert(text && *text, "%s: empty print", what);
    Diag d;
    diag_init(&d);
    Module *back = ir_parse(text, what, &d);
    if (!back) free(text);
    cr_assert(back, "%s: reparse: %s", what, d.msg);
    char *again = ir_module_to_string(back);
    bool same = strcmp(text, again) == 0;
    if (!same) { /* name the first differing line */
        size_t i = 0, line = 1;
        while (text[i] && text[i] == again[i]) line += text[i++] == '\n';
        cr_expect(same, "%s: print -> parse -> print differs at line %zu", what, line);
    }
    diag_init(&d);
    bool ok = ir_verify(back, &d);
    cr_expect(ok, "%s: the reparsed module does not verify: %s", what, d.msg);
    cr_expect_eq(module_param_count(back, true), module_param_count(m, true), "%s", what);
    cr_expect_eq(module_param_count(back, false), module_param_count(m, false), "%s", what);
    free(text);
    free(again);
    module_free(back);
}

static void run_pipeline(Module *m, const char *what) {
    PipelineOptions po;
    memset(&po, 0, sizeof po);
    Diag d;
    diag_init(&d);
    cr_assert(pipeline_run(m, &po, &d), "%s: pipeline: %s", what, d.msg);
}

/* Known parameter counts (trainable values) by file name. */
static int64_t expected_params(const char *name) {
    static const struct { const char *file; int64_t n; } known[] = {
        {"smallcnn.json", 312202}, {"resnet18.json", 11173962}, {"mlp.json", 269322},
        {"mnist_smallcnn.json", 312202}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(known[i].file, name) == 0) return known[i].n;
    return -1;
}

static int cmp_names(const void *a, const void *b) { return strcmp(a, b); }

static bool is_json(const char *name) {
    size_t n = strlen(name);
    return n > 5 && strcmp(name + n - 5, ".json") == 0;
}

/* Loads every *.json of dir (relative to the source root); returns the count. */
static int check_dir(const char *rel, int *known_seen) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", source_dir(), rel);
    DIR *dp = opendir(dir);
    cr_assert(dp, "cannot open %s", dir);
    /* Sorted, so a failure report is the same every run. */
    char names[64][256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)))
        if (is_json(e->d_name) && n < 64) snprintf(names[n++], 256, "%s", e->d_name);
    closedir(dp);
    qsort(names, (size_t)n, sizeof names[0], cmp_names);
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%.255s", dir, names[i]);
        Module *m = load(path, NULL);
        verify(m, path);
        cr_expect(module_find_func(m, "predict"), "%s: no predict", path);
        int64_t want = expected_params(names[i]);
        if (want >= 0) {
            ++*known_seen;
            cr_expect_eq(module_param_count(m, true), want, "%s: %lld parameters, expected %lld",
                         path, (long long)module_param_count(m, true), (long long)want);
        }
        round_trip(m, path);
        run_pipeline(m, path);
        verify(m, path);
        round_trip(m, path);
        cr_expect_eq(module_param_count(m, true), want >= 0 ? want : module_param_count(m, true));
        module_free(m);
    }
    return n;
}

Test(models, every_graph_file_loads_verifies_and_round_trips, .timeout = 300) {
    int known = 0;
    int n = check_dir("models", &known) + check_dir("models/nets", &known);
    cr_expect_geq(n, 4, "found only %d graph files", n);
    cr_expect_eq(known, 4, "smallcnn, resnet18, mlp and mnist_smallcnn are all there");
}

/* The CIFAR-10 rows of the paper's tables (models/cifar10/): every file
 * loads and verifies with ResNet-18's parameters and the entry points the
 * evaluation needs (the full pipeline on ResNet-18 is covered above). */
Test(models, cifar10_model_files_load_with_resnet18) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/models/cifar10", source_dir());
    DIR *dp = opendir(dir);
    cr_assert(dp, "cannot open %s", dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(dp));) {
        if (!is_json(e->d_name)) continue;
        char path[PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%.255s", dir, e->d_name);
        Module *m = load(path, NULL);
        verify(m, path);
        cr_expect_eq(module_param_count(m, true), 11173962, "%s", path);
        static const char *const fns[] = {"predict", "train_step", "grad_ce", "attrib_step",
                                          "activations"};
        for (int k = 0; k < 5; k++)
            cr_expect(module_find_func(m, fns[k]), "%s: no %s", path, fns[k]);
        module_free(m);
        n++;
    }
    closedir(dp);
    cr_expect_eq(n, 6, "standard, AT, AT+IGR, TRADES, MART, MART+IGR");
}

Test(models, round_trip_at_other_batches_and_defines) {
    const char *defs[] = {"act=softplus"};
    FrontendOptions o = {defs, 1, 3};
    Module *m = load_model("models/nets/resnet18.json", &o);
    verify(m, "resnet18 -D act=softplus --batch 3");
    round_trip(m, "resnet18 -D act=softplus --batch 3");
    run_pipeline(m, "resnet18");
    round_trip(m, "resnet18 after the pipeline");
    module_free(m);
}

static void expect_param(const Module *m, const char *name, bool trainable, int rank, ...) {
    int i = module_find_param(m, name);
    cr_assert(i >= 0, "no parameter %s", name);
    const Param *p = &m->params[i];
    char got[128];
    type_str(&p->type, got, sizeof got);
    cr_expect_eq(p->trainable, trainable, "%s: trainable", name);
    cr_assert_eq(p->type.rank, rank, "%s is %s", name, got);
    va_list ap;
    va_start(ap, rank);
    for (int k = 0; k < rank; k++) {
        int64_t want = va_arg(ap, int);
        cr_expect_eq(p->type.dim[k], want, "%s is %s", name, got);
    }
    va_end(ap);
}

Test(models, resnet18_parameters) {
    Module *m = load_model("models/nets/resnet18.json", NULL);
    cr_expect_eq(module_param_count(m, true), 11173962);
    expect_param(m, "conv1.weight", true, 4, 64, 3, 3, 3);
    expect_param(m, "bn1.weight", true, 1, 64);
    expect_param(m, "bn1.bias", true, 1, 64);
    expect_param(m, "bn1.running_mean", false, 1, 64);
    expect_param(m, "layer1.0.conv1.weight", true, 4, 64, 64, 3, 3);
    expect_param(m, "layer2.0.conv1.weight", true, 4, 128, 64, 3, 3);
    expect_param(m, "layer2.0.shortcut.0.weight", true, 4, 128, 64, 1, 1);
    expect_param(m, "layer2.0.shortcut.1.weight", true, 1, 128);
    expect_param(m, "layer2.0.shortcut.1.running_var", false, 1, 128);
    expect_param(m, "layer4.1.bn2.running_var", false, 1, 512);
    expect_param(m, "linear.weight", true, 2, 10, 512);
    expect_param(m, "linear.bias", true, 1, 10);
    cr_expect_lt(module_find_param(m, "layer1.0.shortcut.0.weight"), 0,
                 "identity blocks have no shortcut");
    /* Running statistics are state: 2 per batch-norm channel. */
    cr_expect_eq(module_param_count(m, false) - module_param_count(m, true), 9600);
    module_free(m);
}

Test(models, mlp_and_smallcnn_counts) {
    Module *m = load_model("models/nets/mlp.json", NULL);
    cr_expect_eq(module_param_count(m, true), 269322);
    cr_expect_eq(module_param_count(m, false), 269322);
    module_free(m);
    m = load_model("models/nets/smallcnn.json", NULL);
    cr_expect_eq(module_param_count(m, true), 312202);
    cr_expect_eq(module_param_count(m, false), 312202);
    module_free(m);
}

/* ---- SmallCNN through the interpreter vs plain loops ---- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

/* Uniform in [-a, a) (splitmix64). */
static double urand(double a) {
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return a * (2.0 * ((double)(z >> 11) / 9007199254740992.0) - 1.0);
}

/* Valid 3x3 (generally KxK) convolution, stride 1, plus bias. */
static double *conv(const double *x, int N, int C, int H, int W, const double *w,
                    const double *b, int O, int K) {
    int OH = H - K + 1, OW = W - K + 1;
    double *y = malloc(sizeof(double) * (size_t)(N * O * OH * OW));
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < OH; i++)
                for (int j = 0; j < OW; j++) {
                    double s = b[o];
                    for (int c = 0; c < C; c++)
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++)
                                s += x[((n * C + c) * H + i + ki) * W + j + kj] *
                                     w[((o * C + c) * K + ki) * K + kj];
                    y[((n * O + o) * OH + i) * OW + j] = s;
                }
    return y;
}

static void relu(double *x, int n) {
    for (int i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
}

/* 2x2 max-pool, stride 2. */
static double *pool(const double *x, int N, int C, int H, int W) {
    int OH = H / 2, OW = W / 2;
    double *y = malloc(sizeof(double) * (size_t)(N * C * OH * OW));
    for (int nc = 0; nc < N * C; nc++)
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                const double *p = x + (nc * H + 2 * i) * W + 2 * j;
                double m = fmax(fmax(p[0], p[1]), fmax(p[W], p[W + 1]));
                y[(nc * OH + i) * OW + j] = m;
            }
    return y;
}

/* y = x w^T + b, w of shape [O, K] (PyTorch's layout). */
static double *dense(const double *x, int N, int K, const double *w, const double *b, int O) {
    double *y = malloc(sizeof(double) * (size_t)(N * O));
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            double s = b[o];
            for (int k = 0; k < K; k++) s += x[n * K + k] * w[o * K + k];
            y[n * O + o] = s;
        }
    return y;
}

static const double *pv(const NamedValue *ps, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(ps[i].name, name) == 0) return ps[i].data;
    cr_assert_fail("no parameter %s", name);
    return NULL;
}

/* SmallCNN's forward pass on x [N,1,28,28]; returns logits [N,10]. */
static double *smallcnn_forward(const double *x, int N, const NamedValue *ps, int np) {
#define W_(s) pv(ps, np, s)
    double *a1 = conv(x, N, 1, 28, 28, W_("conv1.weight"), W_("conv1.bias"), 32, 3);
    relu(a1, N * 32 * 26 * 26);
    double *a2 = conv(a1, N, 32, 26, 26, W_("conv2.weight"), W_("conv2.bias"), 32, 3);
    relu(a2, N * 32 * 24 * 24);
    double *p1 = pool(a2, N, 32, 24, 24);
    double *a3 = conv(p1, N, 32, 12, 12, W_("conv3.weight"), W_("conv3.bias"), 64, 3);
    relu(a3, N * 64 * 10 * 10);
    double *a4 = conv(a3, N, 64, 10, 10, W_("conv4.weight"), W_("conv4.bias"), 64, 3);
    relu(a4, N * 64 * 8 * 8);
    double *p2 = pool(a4, N, 64, 8, 8); /* [N,64,4,4] = flatten [N,1024] */
    double *f1 = dense(p2, N, 1024, W_("fc1.weight"), W_("fc1.bias"), 200);
    relu(f1, N * 200);
    /* dropout: identity in evaluation */
    double *f2 = dense(f1, N, 200, W_("fc2.weight"), W_("fc2.bias"), 200);
    relu(f2, N * 200);
    double *out = dense(f2, N, 200, W_("fc3.weight"), W_("fc3.bias"), 10);
#undef W_
    free(a1), free(a2), free(p1), free(a3), free(a4), free(p2), free(f1), free(f2);
    return out;
}

Test(models, smallcnn_predict_matches_plain_loops, .timeout = 300) {
    FrontendOptions o = {NULL, 0, 2};
    Module *m = load_model("models/nets/smallcnn.json", &o);
    run_pipeline(m, "smallcnn");
    const Function *f = module_find_func(m, "predict");
    cr_assert(f);

    /* Random parameters at a scale that keeps activations O(1); fc3's
     * weights too (its file init is zeros, which would hide everything). */
    NamedValue *ps = calloc((size_t)m->nparams, sizeof *ps);
    for (int i = 0; i < m->nparams; i++) {
        const Param *p = &m->params[i];
        int64_t n = type_numel(&p->type);
        int64_t fan_in = p->type.rank > 1 ? n / p->type.dim[0] : 16;
        ps[i].name = p->name;
        ps[i].type = p->type;
        ps[i].data = malloc(sizeof(double) * (size_t)n);
        double a = sqrt(6.0 / (double)fan_in);
        for (int64_t k = 0; k < n; k++) ps[i].data[k] = urand(a);
    }
    NamedValue x = {"x", type_make(DT_F32, 4, (const int64_t[]){2, 1, 28, 28}), NULL};
    x.data = malloc(sizeof(double) * 2 * 784);
    for (int k = 0; k < 2 * 784; k++) x.data[k] = 0.5 + urand(0.5);

    InterpOptions io = {INTERP_F64};
    NamedValue *outs = NULL;
    int nout = 0;
    Diag d;
    diag_init(&d);
    bool ok = interp_run(m, f, &io, &x, 1, ps, m->nparams, &outs, &nout, &d);
    cr_assert(ok, "interp: %s", d.msg);
    cr_assert_eq(nout, 1);
    cr_assert_str_eq(outs[0].name, "logits");
    cr_assert_eq(outs[0].type.rank, 2);
    cr_assert_eq(outs[0].type.dim[0], 2);
    cr_assert_eq(outs[0].type.dim[1], 10);

    double *want = smallcnn_forward(x.data, 2, ps, m->nparams);
    double scale = 0;
    for (int i = 0; i < 20; i++) scale = fmax(scale, fabs(want[i]));
    cr_assert_gt(scale, 1e-3, "logits are all about zero: the test would prove nothing");
    for (int i = 0; i < 20; i++) {
        double tol = 1e-9 * fmax(fabs(want[i]), 1e-3 * scale);
        cr_expect_leq(fabs(outs[0].data[i] - want[i]), tol, "logit %d: interp %.17g, loops %.17g",
                      i, outs[0].data[i], want[i]);
    }
    /* The two images give different logits (the batch is not mixed up). */
    bool differ = false;
    for (int j = 0; j < 10; j++) differ |= want[j] != want[10 + j];
    cr_expect(differ);

    free(want);
    named_values_free(outs, nout);
    free(x.data);
    for (int i = 0; i < m->nparams; i++) free(ps[i].data);
    free(ps);
    module_free(m);
}
