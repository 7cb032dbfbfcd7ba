/* The layer kinds imported networks use (docs/graph-format.md, docs/onnx.md):
 * add/sub/mul/div with a constant operand or broadcasting, div, reshape,
 * transpose, concat, pad, clip, softmax, reduce_mean and linear's
 * last_axis, each run by the
 * interpreter after decompose against values computed here; and their
 * errors (conv_transpose2d's numbers: tests/interop/test_onnx_import.py). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "ir/interp.h"
#include "passes/pass.h"
#include "tests/common/scratch.h"

TestSuite(net_layers, .init = scratch_setup, .fini = scratch_teardown);

#include "tests/frontend/bad_input_util.h"

#define N 2 /* batch */

/* A network over x ["B",2,3] (batch N) with the given nodes and output. */
static const char *net_file(const char *nodes) {
    return put("net.json",
               "{\"igrc\": 1, \"batch\": %d, \"inputs\": {\"x\": {\"shape\": [\"B\", 2, 3]}},\n"
               " \"networks\": {\"n\": {\"nodes\": [\n%s\n], \"output\": \"out\"}}}\n",
               N, nodes);
}

static double g_x[N * 6];

/* predict(x) through decompose and the interpreter; parameter element i
 * of every parameter is 0.1 * (i + 1). Returns the output (n elements). */
static double *predict(const char *nodes, Type *out_type) {
    Diag d;
    diag_init(&d);
    Module *m = frontend_load(net_file(nodes), NULL, &d);
    cr_assert(m, "load: %s", d.msg);
    PipelineOptions po = {.stop_after = "decompose"};
    cr_assert(pipeline_run(m, &po, &d), "pipeline: %s", d.msg);
    for (int i = 0; i < N * 6; i++) g_x[i] = 0.25 + 0.5 * i - (i % 4 == 1 ? 3 : 0);
    NamedValue in = {"x", m->inputs[0].type, g_x};
    NamedValue *ps = calloc((size_t)m->nparams + 1, sizeof *ps);
    for (int p = 0; p < m->nparams; p++) {
        ps[p].name = m->params[p].name;
        ps[p].type = m->params[p].type;
        int64_t k = type_numel(&ps[p].type);
        ps[p].data = malloc(sizeof(double) * (size_t)k);
        for (int64_t i = 0; i < k; i++) ps[p].data[i] = 0.1 * (double)(i + 1);
    }
    NamedValue *outs;
    int nout;
    InterpOptions io = {INTERP_F64};
    cr_assert(interp_run(m, module_find_func(m, "predict"), &io, &in, 1, ps, m->nparams, &outs,
                         &nout, &d),
              "run: %s", d.msg);
    *out_type = outs[0].type;
    double *r = outs[0].data;
    outs[0].data = NULL;
    named_values_free(outs, nout);
    for (int p = 0; p < m->nparams; p++) free(ps[p].data);
    free(ps);
    module_free(m);
    return r;
}

static void expect_shape(const Type *t, int rank, ...) {
    va_list ap;
    va_start(ap, rank);
    cr_assert_eq(t->rank, rank);
    for (int i = 0; i < rank; i++) cr_assert_eq(t->dim[i], va_arg(ap, int), "dim %d", i);
    va_end(ap);
}

static void expect_near(double got, double want, int i) {
    cr_assert(fabs(got - want) <= 1e-12 * (1 + fabs(want)), "element %d: %.17g, expected %.17g", i,
              got, want);
}

Test(net_layers, arithmetic_with_scalars_parameters_and_div) {
    /* out = (1 - (2x + p)) / x, p a parameter [3] broadcast over [N,2,3] */
    Type t;
    double *y = predict(
        "{\"id\": \"s\", \"op\": \"mul\", \"inputs\": [\"x\"], \"scalar\": 2},\n"
        "{\"id\": \"blk\", \"op\": \"add\", \"inputs\": [\"s\"], \"param\": \"shift\", \"shape\": [3]},\n"
        "{\"id\": \"r\", \"op\": \"sub\", \"inputs\": [\"blk\"], \"scalar\": 1, \"reverse\": true},\n"
        "{\"id\": \"out\", \"op\": \"div\", \"inputs\": [\"r\", \"x\"]}",
        &t);
    expect_shape(&t, 3, N, 2, 3);
    for (int i = 0; i < N * 6; i++)
        expect_near(y[i], (1 - (2 * g_x[i] + 0.1 * (i % 3 + 1))) / g_x[i], i);
    free(y);
}

Test(net_layers, broadcasting_two_inputs) {
    /* out = x * mean over the last axis [N,2,1], broadcast back to [N,2,3] */
    Type t;
    double *y = predict(
        "{\"id\": \"m\", \"op\": \"reduce_mean\", \"inputs\": [\"x\"], \"axes\": [-1]},\n"
        "{\"id\": \"out\", \"op\": \"mul\", \"inputs\": [\"x\", \"m\"], \"broadcast\": true}",
        &t);
    expect_shape(&t, 3, N, 2, 3);
    for (int r = 0; r < N * 2; r++) {
        double mean = (g_x[3 * r] + g_x[3 * r + 1] + g_x[3 * r + 2]) / 3;
        for (int j = 0; j < 3; j++) expect_near(y[3 * r + j], g_x[3 * r + j] * mean, j);
    }
    free(y);
}

Test(net_layers, reshape_transpose_concat) {
    /* x [N,2,3] -> reshape [N,3,2] -> transpose [N,2,3]; concat with x on axis 1 */
    Type t;
    double *y = predict(
        "{\"id\": \"r\", \"op\": \"reshape\", \"inputs\": [\"x\"], \"shape\": [3, 2]},\n"
        "{\"id\": \"t\", \"op\": \"transpose\", \"inputs\": [\"r\"], \"perm\": [0, 2, 1]},\n"
        "{\"id\": \"out\", \"op\": \"concat\", \"inputs\": [\"t\", \"x\"], \"axis\": 1}",
        &t);
    expect_shape(&t, 3, N, 4, 3);
    for (int b = 0; b < N; b++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) {
                const double *xb = g_x + 6 * b;
                expect_near(y[b * 12 + i * 3 + j], xb[j * 2 + i], i);     /* t[i][j] = r[j][i] */
                expect_near(y[b * 12 + 6 + i * 3 + j], xb[i * 3 + j], j); /* x */
            }
    free(y);
}

Test(net_layers, pad_clip_softmax_reduce_mean) {
    Type t;
    double *y = predict(
        "{\"id\": \"p\", \"op\": \"pad\", \"inputs\": [\"x\"], \"lo\": [0, 1, 0], \"hi\": [0, 0, 2], \"value\": 0.5},\n"
        "{\"id\": \"c\", \"op\": \"clip\", \"inputs\": [\"p\"], \"min\": 0.2, \"max\": 1.7},\n"
        "{\"id\": \"s\", \"op\": \"softmax\", \"inputs\": [\"c\"], \"axis\": -1},\n"
        "{\"id\": \"out\", \"op\": \"reduce_mean\", \"inputs\": [\"s\"], \"axes\": [1], \"keepdims\": false}",
        &t);
    expect_shape(&t, 2, N, 5);
    for (int b = 0; b < N; b++) {
        double s[3][5], want[5] = {0};
        for (int i = 0; i < 3; i++) {
            double z = 0;
            for (int j = 0; j < 5; j++) {
                double v = i == 0 || j >= 3 ? 0.5 : g_x[b * 6 + (i - 1) * 3 + j];
                s[i][j] = exp(fmin(fmax(v, 0.2), 1.7));
                z += s[i][j];
            }
            for (int j = 0; j < 5; j++) want[j] += s[i][j] / z / 3;
        }
        for (int j = 0; j < 5; j++) expect_near(y[b * 5 + j], want[j], j);
    }
    free(y);
}

Test(net_layers, linear_on_the_last_axis) {
    Type t;
    double *y = predict("{\"id\": \"out\", \"op\": \"linear\", \"inputs\": [\"x\"], "
                        "\"out_features\": 4, \"last_axis\": true}",
                        &t);
    expect_shape(&t, 3, N, 2, 4);
    for (int r = 0; r < N * 2; r++)
        for (int o = 0; o < 4; o++) {
            double want = 0.1 * (o + 1); /* bias */
            for (int k = 0; k < 3; k++) want += 0.1 * (o * 3 + k + 1) * g_x[r * 3 + k];
            expect_near(y[r * 4 + o], want, o);
        }
    free(y);
}

Test(net_layers, errors_name_the_node) {
    expect_bad(net_file("{\"id\": \"out\", \"op\": \"transpose\", \"inputs\": [\"x\"], \"perm\": [1, 0, 2]}"),
               "(id 'out')", "batch axis first");
    expect_bad(net_file("{\"id\": \"out\", \"op\": \"pad\", \"inputs\": [\"x\"], \"lo\": [1, 0, 0], \"hi\": [0, 0, 0]}"),
               "(id 'out')", "batch axis cannot be padded");
    expect_bad(net_file("{\"id\": \"out\", \"op\": \"mul\", \"inputs\": [\"x\"]}"),
               "(id 'out')", "either 'scalar' or 'param'");
    expect_bad(net_file("{\"id\": \"out\", \"op\": \"reduce_mean\", \"inputs\": [\"x\"], \"axes\": [0]}"),
               "(id 'out')", "non-batch axis");
    expect_bad(net_file("{\"id\": \"out\", \"op\": \"reshape\", \"inputs\": [\"x\"], \"shape\": [4]}"),
               "(id 'out')", "elements per row");
    expect_bad(net_file("{\"id\": \"out\", \"op\": \"clip\", \"inputs\": [\"x\"], \"min\": 2, \"max\": 1}"),
               "(id 'out')", "above 'max'");
    expect_bad(net_file("{\"id\": \"out\", \"op\": \"add\", \"inputs\": [\"x\"], \"param\": \"w\", \"shape\": [2, 2]}"),
               "(id 'out')", "broadcast");
    expect_bad(net_file("{\"id\": \"out\", \"op\": \"linear\", \"inputs\": [\"x\"], \"out_features\": 4}"),
               "(id 'out')", "last_axis");
    expect_bad(net_file("{\"id\": \"r\", \"op\": \"reshape\", \"inputs\": [\"x\"], \"shape\": [3, 2]},\n"
                        "{\"id\": \"out\", \"op\": \"add\", \"inputs\": [\"x\", \"r\"], \"broadcast\": true}"),
               "(id 'out')", "do not broadcast");
    expect_bad(net_file("{\"id\": \"r\", \"op\": \"reshape\", \"inputs\": [\"x\"], \"shape\": [1, 2, 3]},\n"
                        "{\"id\": \"out\", \"op\": \"conv_transpose2d\", \"inputs\": [\"r\"], "
                        "\"out_channels\": 2, \"kernel\": 3, \"stride\": 2, \"output_padding\": 2}"),
               "(id 'out')", "output_padding must be below the stride");
}
