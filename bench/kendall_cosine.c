/* The Kendall-versus-cosine simulation of the paper (Figure 2a, and Figure 7
 * for Pearson's correlation): a fixed positive vector u of dimension d and n
 * perturbed vectors v_i; for each, tau_b(u, v_i), cos(u, v_i) and
 * pearson(u, v_i). Prints the Pearson correlation between tau and cosine
 * (and between tau and Pearson), writes the points as CSV and two scatter
 * plots as PNG.
 *
 * The paper does not say how its v_i are drawn. Here, with Philox streams
 * keyed by --seed:
 *   u_j    ~ Exp(1)                          (attribution magnitudes are positive)
 *   w_i    ~ U(0, 1), p_i ~ U(0.5, 2)
 *   e_ij   = E_ij^p_i, E_ij ~ Exp(1)          (positive noise of a random shape)
 *   v_ij   = (1 - w_i) u_j + w_i e_ij
 * so v_i runs from u itself (w 0) to independent noise (w 1), and the noise
 * shape p_i changes cosine (which sees magnitudes) without changing tau
 * (which sees ranks only) in the same way. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/philox.h"
#include "bench/plot.h"
#include "runtime/app/metrics.h"

typedef struct {
    const char *out;
    uint32_t seed;
    int64_t d, n;
} Options;

typedef struct {
    double *w, *p, *tau, *cos, *pearson;
} Results;

enum { STREAM_U, STREAM_W, STREAM_P, STREAM_NOISE };

static int usage(const char *msg) {
    fprintf(stderr, "kendall_cosine: %s\n"
                    "usage: kendall_cosine [--out DIR] [--seed S] [--d D] [--n N]\n", msg);
    return 2;
}

static bool parse_int(const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr,
                "kendall_cosine: %s: '%s' is not an integer in %" PRId64 "..%" PRId64 "\n", flag,
                s ? s : "", lo, hi);
        return false;
    }
    *out = v;
    return true;
}

/* 0 on success, else the exit status. */
static int parse_args(int argc, char **argv, Options *o) {
    *o = (Options){"kendall_cosine_out", 0, 10000, 1000};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t x;
        if (!strcmp(f, "--out") && v) {
            o->out = v;
        } else if (!strcmp(f, "--seed")) {
            if (!parse_int(f, v, 0, UINT32_MAX, &x)) return 2;
            o->seed = (uint32_t)x;
        } else if (!strcmp(f, "--d")) {
            if (!parse_int(f, v, 2, 100000000, &o->d)) return 2;
        } else if (!strcmp(f, "--n")) {
            if (!parse_int(f, v, 2, 10000000, &o->n)) return 2;
        } else {
            char msg[300];
            snprintf(msg, sizeof msg, "unknown option or missing value: %s", f);
            return usage(msg);
        }
        i++;
    }
    return 0;
}

static double exp1(uint32_t seed, uint32_t step, uint32_t stream, uint64_t j) {
    return -log(philox_uniform(seed, step, stream, j));
}

static void perturb(const Options *o, const float *u, int64_t i, double w, double p, float *v) {
    for (int64_t j = 0; j < o->d; j++) {
        double e = pow(exp1(o->seed, (uint32_t)(1 + i), STREAM_NOISE, (uint64_t)j), p);
        v[j] = (float)((1 - w) * u[j] + w * e);
    }
}

static bool simulate(const Options *o, Results *r) {
    float *u = malloc((size_t)o->d * sizeof *u), *v = malloc((size_t)o->d * sizeof *v);
    bool ok = u && v;
    if (!ok) fprintf(stderr, "kendall_cosine: out of memory for d = %" PRId64 "\n", o->d);
    for (int64_t j = 0; ok && j < o->d; j++)
        u[j] = (float)exp1(o->seed, 0, STREAM_U, (uint64_t)j);
    char err[256];
    for (int64_t i = 0; ok && i < o->n; i++) {
        r->w[i] = philox_uniform(o->seed, 0, STREAM_W, (uint64_t)i);
        r->p[i] = 0.5 + 1.5 * philox_uniform(o->seed, 0, STREAM_P, (uint64_t)i);
        perturb(o, u, i, r->w[i], r->p[i], v);
        ok = metric_kendall_tau_b(u, v, o->d, &r->tau[i], err, sizeof err) == METRIC_OK &&
             metric_cosine(u, v, o->d, &r->cos[i], err, sizeof err) == METRIC_OK &&
             metric_pearson(u, v, o->d, &r->pearson[i], err, sizeof err) == METRIC_OK;
        if (!ok) fprintf(stderr, "kendall_cosine: vector %" PRId64 ": %s\n", i, err);
    }
    free(u);
    free(v);
    return ok;
}

static bool write_csv(const char *path, const Results *r, int64_t n) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "kendall_cosine: cannot write %s: %s\n", path, strerror(errno));
        return false;
    }
    fprintf(f, "i,w,p,cos,tau_b,pearson\n");
    for (int64_t i = 0; i < n; i++)
        fprintf(f, "%" PRId64 ",%.6f,%.6f,%.9f,%.9f,%.9f\n", i, r->w[i], r->p[i], r->cos[i],
                r->tau[i], r->pearson[i]);
    if (fclose(f) != 0) {
        fprintf(stderr, "kendall_cosine: cannot write %s: %s\n", path, strerror(errno));
        return false;
    }
    return true;
}

/* Pearson's correlation of two result columns, through the metrics module
 * (f32 is ample for a coefficient printed to 4 decimals). */
static double correlation(const double *a, const double *b, int64_t n) {
    float *fa = malloc((size_t)n * sizeof *fa), *fb = malloc((size_t)n * sizeof *fb);
    double r = NAN;
    if (fa && fb) {
        for (int64_t i = 0; i < n; i++) fa[i] = (float)a[i], fb[i] = (float)b[i];
        if (metric_pearson(fa, fb, n, &r, NULL, 0) != METRIC_OK) r = NAN;
    }
    free(fa);
    free(fb);
    return r;
}

static bool make_dir(const char *dir) {
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) return true;
    fprintf(stderr, "kendall_cosine: cannot create directory %s: %s\n", dir, strerror(errno));
    return false;
}

static bool outputs(const Options *o, const Results *r) {
    char path[4096];
    snprintf(path, sizeof path, "%s/kendall_cosine.csv", o->out);
    if (!write_csv(path, r, o->n)) return false;
    printf("wrote %s\n", path);
    snprintf(path, sizeof path, "%s/kendall_cosine.png", o->out);
    if (!plot_scatter(path, r->cos, r->tau, o->n)) return false;
    printf("wrote %s (x: cos(u, v), y: tau_b(u, v))\n", path);
    snprintf(path, sizeof path, "%s/kendall_pearson.png", o->out);
    if (!plot_scatter(path, r->pearson, r->tau, o->n)) return false;
    printf("wrote %s (x: pearson(u, v), y: tau_b(u, v))\n", path);
    return true;
}

int main(int argc, char **argv) {
    Options o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc;
    if (!make_dir(o.out)) return 1;
    Results r;
    double *all = calloc((size_t)o.n * 5, sizeof *all);
    if (!all) return fprintf(stderr, "kendall_cosine: out of memory\n"), 1;
    r = (Results){all, all + o.n, all + 2 * o.n, all + 3 * o.n, all + 4 * o.n};
    bool ok = simulate(&o, &r);
    if (ok) {
        printf("d %" PRId64 ", n %" PRId64 ", seed %" PRIu32 "\n", o.d, o.n, o.seed);
        printf("pearson(tau_b, cos)     = %.4f\n", correlation(r.tau, r.cos, o.n));
        printf("pearson(tau_b, pearson) = %.4f\n", correlation(r.tau, r.pearson, o.n));
        ok = outputs(&o, &r);
    }
    free(all);
    return ok ? 0 : 1;
}
