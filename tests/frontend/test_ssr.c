/* SSR's power iteration against an independent eigenvalue computation.
 *
 * igrc computes lambda_max(J^T H J) with Jacobian-vector products built
 * from nested grads. Here J comes from central finite differences of
 * `predict` (a smooth MLP: softplus activations), and the top eigenvalue
 * from the 10x10 matrix J J^T H, which has the same nonzero eigenvalues
 * (PQ and QP do), by plain power iteration in double precision. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend/frontend.h"
#include "ir/interp.h"
#include "passes/pass.h"

#define C 10
#define D 784

static char dir[64];

static const char *write_model(void) {
    snprintf(dir, sizeof dir, "/tmp/igrc-ssr-XXXXXX");
    cr_assert(mkdtemp(dir));
    static char path[256];
    snprintf(path, sizeof path, "%s/ssr.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "{\"igrc\": 1, \"include\": [\"%s/models/nets/mlp.json\"],\n"
               " \"params\": {\"act\": \"softplus\", \"hidden\": 32}, \"eval\": {\"ig_steps\": 1},\n"
               " \"objective\": {\"inputs\": [\"x\", \"y\"], \"nodes\": [\n"
               "  {\"id\": \"z\", \"op\": \"net\", \"inputs\": [\"x\"]},\n"
               "  {\"id\": \"lam\", \"op\": \"ssr_lambda\", \"inputs\": [\"x\", \"z\"], \"iterations\": 200},\n"
               "  {\"id\": \"loss\", \"op\": \"mean\", \"inputs\": [\"lam\"]}],\n"
               "  \"output\": \"loss\"}}\n",
            getenv("IGRC_SOURCE_DIR"));
    fclose(f);
    return path;
}

static Module *load(const char *path, int64_t batch) {
    Diag d;
    diag_init(&d);
    FrontendOptions o = {NULL, 0, batch};
    Module *m = frontend_load(path, &o, &d);
    cr_assert(m, "%s", d.msg);
    PipelineOptions po = {0};
    cr_assert(pipeline_run(m, &po, &d), "%s", d.msg);
    return m;
}

/* Small random parameters, the same for both modules (same names). */
static NamedValue *params(const Module *m) {
    NamedValue *p = calloc((size_t)m->nparams, sizeof *p);
    uint64_t s = 12345;
    for (int i = 0; i < m->nparams; i++) {
        int64_t n = type_numel(&m->params[i].type);
        p[i] = (NamedValue){m->params[i].name, m->params[i].type, malloc(sizeof(double) * (size_t)n)};
        for (int64_t j = 0; j < n; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            p[i].data[j] = ((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.3;
        }
    }
    return p;
}

static NamedValue *run(const Module *m, const char *fn, NamedValue *in, int nin, NamedValue *p, int *nout) {
    Diag d;
    diag_init(&d);
    InterpOptions o = {INTERP_F64};
    NamedValue *out = NULL;
    cr_assert(interp_run(m, module_find_func(m, fn), &o, in, nin, p, m->nparams, &out, nout, &d), "%s", d.msg);
    return out;
}

/* J[c][i] = d z_c / d x_i by central differences, all 2D rows in one batch. */
static void jacobian(const Module *big, NamedValue *p, const double *x, double J[C][D]) {
    const double h = 1e-5;
    Type t = type_make(DT_F64, 4, (int64_t[]){2 * D, 1, 28, 28});
    double *xs = malloc(sizeof(double) * 2 * D * D);
    for (int i = 0; i < D; i++)
        for (int s = 0; s < 2; s++) {
            memcpy(xs + (2 * i + s) * D, x, sizeof(double) * D);
            xs[(2 * i + s) * D + i] += s ? -h : h;
        }
    NamedValue in = {"x", t, xs};
    int n;
    NamedValue *out = run(big, "predict", &in, 1, p, &n);
    for (int i = 0; i < D; i++)
        for (int c = 0; c < C; c++)
            J[c][i] = (out[0].data[(2 * i) * C + c] - out[0].data[(2 * i + 1) * C + c]) / (2 * h);
    named_values_free(out, n);
    free(xs);
}

/* Top eigenvalue of A = J J^T H (nonnegative spectrum) by power iteration. */
static double top_eigen(double J[C][D], const double *z) {
    double p[C], mx = z[0], s = 0, A[C][C], H[C][C], G[C][C];
    for (int c = 1; c < C; c++) mx = fmax(mx, z[c]);
    for (int c = 0; c < C; c++) s += (p[c] = exp(z[c] - mx));
    for (int c = 0; c < C; c++) p[c] /= s;
    for (int a = 0; a < C; a++)
        for (int b = 0; b < C; b++) {
            H[a][b] = (a == b ? p[a] : 0) - p[a] * p[b];
            G[a][b] = 0;
            for (int i = 0; i < D; i++) G[a][b] += J[a][i] * J[b][i];
        }
    for (int a = 0; a < C; a++)
        for (int b = 0; b < C; b++) {
            A[a][b] = 0;
            for (int k = 0; k < C; k++) A[a][b] += G[a][k] * H[k][b];
        }
    double v[C], lam = 0;
    for (int c = 0; c < C; c++) v[c] = 1.0 + 0.1 * c;
    for (int it = 0; it < 5000; it++) {
        double w[C], nrm = 0;
        for (int a = 0; a < C; a++) {
            w[a] = 0;
            for (int b = 0; b < C; b++) w[a] += A[a][b] * v[b];
            nrm += w[a] * w[a];
        }
        nrm = sqrt(nrm);
        lam = nrm;
        for (int a = 0; a < C; a++) v[a] = w[a] / nrm;
    }
    return lam;
}

Test(ssr, power_iteration_matches_an_explicit_eigenvalue) {
    const char *path = write_model();
    Module *one = load(path, 1), *big = load(path, 2 * D);
    NamedValue *p = params(one);
    double x[D];
    for (int i = 0; i < D; i++) x[i] = 0.5 + 0.4 * sin(0.37 * i);
    Type xt = type_make(DT_F64, 4, (int64_t[]){1, 1, 28, 28});
    double y0 = 3;
    NamedValue in[3] = {{"x", xt, x}, {"y", type_make(DT_I32, 1, (int64_t[]){1}), &y0}, {"x_adv", xt, x}};
    int n;
    NamedValue *out = run(one, "objective", in, 3, p, &n);
    double lam_igrc = out[0].data[0];
    named_values_free(out, n);
    NamedValue *z = run(one, "predict", in, 1, p, &n);
    static double J[C][D];
    jacobian(big, p, x, J);
    double lam_ref = top_eigen(J, z[0].data);
    named_values_free(z, n);
    cr_assert(lam_ref > 1e-6, "the test network has a degenerate Jacobian (%g)", lam_ref);
    cr_assert(fabs(lam_igrc - lam_ref) <= 1e-5 * lam_ref, "power iteration %.12g, explicit %.12g",
              lam_igrc, lam_ref);
    for (int i = 0; i < one->nparams; i++) free(p[i].data);
    free(p);
    module_free(one);
    module_free(big);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert(system(cmd) == 0);
}
