/* The evaluation entry points of the attribution attack and of activation
 * consistency (frontend/entry.c), checked by independent computations:
 *  - attrib_step's dx against central finite differences of the normalised
 *    top-k share D(x) = sum_rows sum(mask * S) / sum(S), S = |IG| (one
 *    channel) where IG comes from the `ig` entry point of the same model
 *    compiled with every activation a softplus (-D act=softplus): the
 *    surrogate is smooth, so the differences converge;
 *  - attrib_step's logits and attributions against `predict` and |`ig`| of
 *    the ReLU model;
 *  - activations' `pre`: its length is the sum of the ReLU layers' sizes and
 *    its last block reproduces the logits through the last linear layer. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objective_util.h"

#define MODEL "models/mnist_smallcnn_standard.json"
#define B 2
#define NPIX 784

static const char *const relu_defs[] = {"eval.attack_batch=2", "eval.ig_steps=3",
                                        "eval.attack_ig_steps=4"};
/* The finite differences at narrow SmallCNN widths (4/8 channels, 16
 * hidden units): the same graph with smaller extents; at the published
 * widths the interpreter under the sanitizers took a minute for them. */
#define NARROW "width1=4", "width2=8", "hidden=16"
static const char *const fd_relu_defs[] = {"eval.attack_batch=2", "eval.ig_steps=3",
                                           "eval.attack_ig_steps=4", NARROW};
static const char *const fd_soft_defs[] = {"act=softplus", "eval.ig_steps=4", NARROW};

static NamedValue nv_mask(const double *m) {
    NamedValue v = nv_image("mask", m, B);
    return v;
}

/* D(x) = sum over rows of sum(mask * S) / sum(S), S = |IG_softplus(x)|. */
static double surrogate_d(const Module *soft, const Params *p, const double *x, const int *y,
                          const double *mask) {
    NamedValue in[2] = {nv_image("x", x, B), nv_labels("y", y, B)};
    Outs o = run_fn(soft, "ig", INTERP_F64, in, 2, p->v, p->n);
    const double *a = out_get(&o, "attributions")->data;
    double d = 0;
    for (int r = 0; r < B; r++) {
        double in = 0, all = 0;
        for (int i = r * NPIX; i < (r + 1) * NPIX; i++) in += mask[i] * fabs(a[i]), all += fabs(a[i]);
        d += in / all;
    }
    outs_free(&o);
    nvs_free(in, 2);
    return d;
}

Test(attack_entries, attrib_step_dx_matches_finite_differences_of_the_softplus_surrogate) {
    Module *relu = load_model(MODEL, fd_relu_defs, 6, B), *soft = load_model(MODEL, fd_soft_defs, 5, B);
    run_pipeline(relu, "attrib_step");
    run_pipeline(soft, "ig of the softplus model");
    Params p = params_random(relu, 11);
    Batch b = mnist_batch(false, 10, B);
    double mask[B * NPIX];
    Rng r = {99};
    /* MNIST's zero background makes exact ties in max-pool windows (every
     * position sees the bias alone), where one-sided slopes differ and
     * central differences halve them: a little noise removes the ties. */
    for (int i = 0; i < B * NPIX; i++) b.x[i] += 0.05 * rng_unit(&r);
    for (int i = 0; i < B * NPIX; i++) mask[i] = rng_unit(&r) < 0.15 ? 1 : 0;
    NamedValue in[3] = {nv_image("x", b.x, B), nv_labels("y", b.y, B), nv_mask(mask)};
    Outs o = run_fn(relu, "attrib_step", INTERP_F64, in, 3, p.v, p.n);
    const double *dx = out_get(&o, "dx")->data;
    double scale = max_abs(dx, B * NPIX);
    cr_assert_gt(scale, 0, "dx is all zero: nothing to compare");
    /* Pixels where dx is largest, plus a few random ones. */
    int picks[12], np = 0;
    for (int s = 0; s < 8; s++) {
        int best = -1;
        for (int i = 0; i < B * NPIX; i++) {
            bool taken = false;
            for (int j = 0; j < np; j++) taken |= picks[j] == i;
            if (!taken && (best < 0 || fabs(dx[i]) > fabs(dx[best]))) best = i;
        }
        picks[np++] = best;
    }
    while (np < 12) picks[np++] = (int)rng_index(&r, B * NPIX);
    double worst = 0, h = 1e-5;
    for (int j = 0; j < np; j++) {
        int i = picks[j];
        double keep = b.x[i];
        b.x[i] = keep + h;
        double up = surrogate_d(soft, &p, b.x, b.y, mask);
        b.x[i] = keep - h;
        double dn = surrogate_d(soft, &p, b.x, b.y, mask);
        b.x[i] = keep;
        double fd = (up - dn) / (2 * h), err = fabs(fd - dx[i]) / scale;
        cr_expect_leq(err, 1e-5, "pixel %d: dx %.10g, finite difference %.10g (max |dx| %.3g)", i,
                      dx[i], fd, scale);
        worst = fmax(worst, err);
    }
    fprintf(stderr, "[attack] attrib_step dx vs FD of the softplus surrogate: worst %.3g of max |dx| %.3g\n",
            worst, scale);
    outs_free(&o);
    nvs_free(in, 3);
    batch_free(&b);
    params_free(&p);
    module_free(relu);
    module_free(soft);
}

/* max |a - f(b)|, f the identity or fabs. */
static double max_diff_of(const NamedValue *a, const NamedValue *b, double (*f)(double)) {
    int64_t n = type_numel(&a->type);
    cr_assert_eq(n, type_numel(&b->type), "%s and %s differ in size", a->name, b->name);
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs(a->data[i] - (f ? f(b->data[i]) : b->data[i])));
    return d;
}

Test(attack_entries, attrib_step_logits_and_attributions_are_the_relu_models) {
    static const char *const ig_defs[] = {"eval.attack_batch=2", "eval.ig_steps=3"};
    Module *relu = load_model(MODEL, relu_defs, 3, B), *plain = load_model(MODEL, ig_defs, 2, B);
    run_pipeline(relu, "attrib_step");
    run_pipeline(plain, "ig, predict");
    Params p = params_random(relu, 5);
    Batch b = mnist_batch(false, 40, B);
    double mask[B * NPIX] = {0};
    NamedValue in[3] = {nv_image("x", b.x, B), nv_labels("y", b.y, B), nv_mask(mask)};
    Outs o = run_fn(relu, "attrib_step", INTERP_F64, in, 3, p.v, p.n);
    Outs ig = run_fn(plain, "ig", INTERP_F64, in, 2, p.v, p.n);
    Outs z = run_fn(plain, "predict", INTERP_F64, in, 1, p.v, p.n);
    const NamedValue *a = out_get(&o, "attributions");
    cr_expect_gt(max_abs(a->data, B * NPIX), 0);
    /* The saliency: |IG| summed over MNIST's one channel. */
    cr_expect_eq(a->type.rank, 4);
    cr_expect_eq(a->type.dim[1], 1);
    cr_expect_leq(max_diff_of(a, out_get(&ig, "attributions"), fabs), 1e-12);
    cr_expect_leq(max_diff_of(out_get(&o, "logits"), out_get(&z, "logits"), NULL), 1e-12);
    /* A zero mask makes D zero, so its gradient is exactly zero. */
    cr_expect_eq(max_abs(out_get(&o, "dx")->data, B * NPIX), 0);
    outs_free(&o);
    outs_free(&ig);
    outs_free(&z);
    nvs_free(in, 3);
    batch_free(&b);
    params_free(&p);
    module_free(relu);
    module_free(plain);
}

Test(attack_entries, activations_pre_covers_every_relu_and_feeds_the_last_layer) {
    Module *m = load_model(MODEL, NULL, 0, B);
    run_pipeline(m, "activations");
    Params p = params_random(m, 3);
    Batch b = mnist_batch(false, 0, B);
    NamedValue in[1] = {nv_image("x", b.x, B)};
    Outs o = run_fn(m, "activations", INTERP_F64, in, 1, p.v, p.n);
    const NamedValue *pre = out_get(&o, "pre"), *z = out_get(&o, "logits");
    /* conv1..conv4 (32x26x26, 32x24x24, 64x10x10, 64x8x8), fc1, fc2 (200). */
    int64_t units = 32 * 26 * 26 + 32 * 24 * 24 + 64 * 10 * 10 + 64 * 8 * 8 + 200 + 200;
    cr_assert_eq(pre->type.rank, 2);
    cr_assert_eq(pre->type.dim[0], B);
    cr_assert_eq(pre->type.dim[1], units, "pre has %lld units, the ReLU layers %lld",
                 (long long)pre->type.dim[1], (long long)units);
    int w = -1, bias = -1;
    for (int i = 0; i < p.n; i++) {
        if (strcmp(p.v[i].name, "fc3.weight") == 0) w = i;
        if (strcmp(p.v[i].name, "fc3.bias") == 0) bias = i;
    }
    cr_assert(w >= 0 && bias >= 0, "fc3 parameters");
    double worst = 0;
    for (int s = 0; s < B; s++) {
        const double *last = pre->data + s * units + units - 200;
        for (int k = 0; k < 10; k++) {
            double acc = p.v[bias].data[k];
            for (int j = 0; j < 200; j++) acc += p.v[w].data[k * 200 + j] * fmax(last[j], 0);
            worst = fmax(worst, fabs(acc - z->data[s * 10 + k]));
        }
    }
    cr_expect_leq(worst, 1e-12, "fc3(relu(pre of fc2)) vs logits: %.3g", worst);
    outs_free(&o);
    nvs_free(in, 1);
    batch_free(&b);
    params_free(&p);
    module_free(m);
}

/* grad_logits(x, dlogits) = (dz/dx)^T dlogits: with dlogits the
 * cross-entropy's derivative in the logits, softmax(z) - onehot(y) (computed
 * here from predict's logits), it is grad_ce's dx; and it is linear in
 * dlogits (the rows' sum of two cotangents gives the sum of the dx). */
Test(attack_entries, grad_logits_is_the_vector_jacobian_product) {
    Module *m = load_model(MODEL, NULL, 0, B);
    run_pipeline(m, "grad_logits, grad_ce, predict");
    Params p = params_random(m, 21);
    Batch b = mnist_batch(false, 7, B);
    NamedValue in[2] = {nv_image("x", b.x, B), nv_labels("y", b.y, B)};
    Outs z = run_fn(m, "predict", INTERP_F64, in, 1, p.v, p.n);
    Outs ce = run_fn(m, "grad_ce", INTERP_F64, in, 2, p.v, p.n);
    const double *zl = out_get(&z, "logits")->data;
    NamedValue w = {"dlogits", type_make(DT_F32, 2, (const int64_t[]){B, 10}), malloc(sizeof(double) * B * 10)};
    for (int r = 0; r < B; r++) {
        double m0 = zl[r * 10], s = 0;
        for (int k = 1; k < 10; k++) m0 = fmax(m0, zl[r * 10 + k]);
        for (int k = 0; k < 10; k++) s += exp(zl[r * 10 + k] - m0);
        for (int k = 0; k < 10; k++) w.data[r * 10 + k] = exp(zl[r * 10 + k] - m0) / s - (k == b.y[r]);
    }
    NamedValue vin[2] = {in[0], w};
    Outs g = run_fn(m, "grad_logits", INTERP_F64, vin, 2, p.v, p.n);
    const NamedValue *dx = out_get(&g, "dx"), *want = out_get(&ce, "dx");
    double scale = max_abs(want->data, B * NPIX);
    cr_assert_gt(scale, 0);
    cr_expect_leq(max_diff_of(dx, want, NULL), 1e-12 * scale, "grad_logits vs grad_ce: %.3g of %.3g",
                  max_diff_of(dx, want, NULL), scale);
    cr_expect_leq(max_diff_of(out_get(&g, "logits"), out_get(&z, "logits"), NULL), 1e-12);
    /* linearity: e_3 on row 0 plus e_8 on row 1, against the two apart */
    double *both = calloc(B * NPIX, sizeof(double));
    for (int part = 0; part < 2; part++) {
        memset(w.data, 0, sizeof(double) * B * 10);
        w.data[part * 10 + (part ? 8 : 3)] = 1;
        Outs one = run_fn(m, "grad_logits", INTERP_F64, vin, 2, p.v, p.n);
        const double *d = out_get(&one, "dx")->data;
        for (int i = 0; i < B * NPIX; i++) both[i] += d[i];
        /* a row's cotangent moves only that row's dx */
        cr_expect_eq(max_abs(d + (1 - part) * NPIX, NPIX), 0, "row %d's dlogits moved row %d", part, 1 - part);
        outs_free(&one);
    }
    w.data[3] = 1; /* now e_3 on row 0 and e_8 on row 1 together */
    Outs sum = run_fn(m, "grad_logits", INTERP_F64, vin, 2, p.v, p.n);
    NamedValue bv = {"both", dx->type, both};
    cr_expect_leq(max_diff_of(out_get(&sum, "dx"), &bv, NULL), 1e-12 * max_abs(both, B * NPIX));
    free(both);
    outs_free(&sum);
    outs_free(&g);
    outs_free(&ce);
    outs_free(&z);
    free(w.data);
    nvs_free(in, 2);
    batch_free(&b);
    params_free(&p);
    module_free(m);
}
