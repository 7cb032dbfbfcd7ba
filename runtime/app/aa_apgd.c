/* APGD (Croce & Hein 2020, Algorithm 1), L-inf, per row: signed-gradient
 * steps with momentum 0.75, step size 2 eps halved at checkpoints
 * w_j = ceil(p_j N) (p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1}
 * - 0.03, 0.06)) when fewer than 75% of the steps since the last
 * checkpoint raised the loss, or when neither the step size nor the best
 * loss changed since it; a halving restarts from the best point. Start:
 * x0 + eps t / max|t|, t uniform in [-1,1]^n. Every iterate is checked; a
 * row is broken as soon as one is misclassified.
 * Losses: cross-entropy (APGD-CE), and the targeted DLR loss (APGD-T)
 * -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12), pi sorting the
 * logits in decreasing order, for the 2nd..(targets+1)-th classes of the
 * clean logits as targets t. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/app/aa.h"
#include "runtime/app/app_internal.h"

#define APGD_MOMENTUM 0.75
#define APGD_RHO 0.75
#define STREAM_APGD 0x61706764u /* "apgd" */

static double cross_entropy(const double *z, int64_t k, int y) {
    double m = z[0], s = 0;
    for (int j = 1; j < k; j++) m = fmax(m, z[j]);
    for (int j = 0; j < k; j++) s += exp(z[j] - m);
    return m + log(s) - z[y];
}

double aa_dlr_targeted(const double *z, int64_t k, int y, int t, double *w) {
    int p1 = aa_ranked_class(z, k, 1), p3 = aa_ranked_class(z, k, 3), p4 = aa_ranked_class(z, k, 4);
    double num = z[y] - z[t], den = z[p1] - 0.5 * (z[p3] + z[p4]) + 1e-12;
    memset(w, 0, (size_t)k * sizeof *w);
    w[y] -= 1 / den;
    w[t] += 1 / den;
    double dden = num / (den * den); /* d(-num/den)/d den */
    w[p1] += dden;
    w[p3] -= 0.5 * dden;
    w[p4] -= 0.5 * dden;
    return -num / den;
}

/* c->f (per row) and g = its input gradient at x. */
static void loss_grad(AaCtx *c, const int *target, const float *x, float *g) {
    if (!target) {
        aa_grad_ce(c, x, g);
        for (int64_t r = 0; r < c->B; r++) c->f[r] = cross_entropy(c->z + r * c->K, c->K, c->y[r]);
        return;
    }
    aa_logits(c, x);
    for (int64_t r = 0; r < c->B; r++)
        c->f[r] = aa_dlr_targeted(c->z + r * c->K, c->K, c->y[r], target[r], c->wd + r * c->K);
    aa_vjp(c, x, g);
}

int aa_apgd_checkpoints(int iters, int *w, int cap) {
    double prev = 0, p = 0.22;
    int n = 0;
    while (p <= 1 && n < cap) {
        int wj = (int)ceil(p * iters - 1e-9); /* p_j * N rounds up, not its binary error */
        if (wj >= 1 && (n == 0 || wj > w[n - 1])) w[n++] = wj;
        double next = p + fmax(p - prev - 0.03, 0.06);
        prev = p, p = next;
    }
    return n;
}

static void copy_row(const AaCtx *c, float *dst, const float *src, int64_t r) {
    memcpy(dst + r * c->img, src + r * c->img, (size_t)c->img * sizeof(float));
}

/* One step of row r from x (previous iterate xp) along sign(g). */
static void step_row(AaCtx *c, int64_t r, double eta, bool first) {
    const float eps = (float)c->eps;
    for (int64_t i = r * c->img; i < (r + 1) * c->img; i++) {
        float x0 = c->x0[i], xi = c->x[i], s = c->g[i] > 0 ? 1.0f : c->g[i] < 0 ? -1.0f : 0.0f;
        float z = aa_clampf(aa_clampf(xi + (float)eta * s, x0 - eps, x0 + eps), 0, 1);
        float xn = first ? z
                         : xi + (float)APGD_MOMENTUM * (z - xi) + (float)(1 - APGD_MOMENTUM) * (xi - c->xprev[i]);
        c->xprev[i] = xi;
        c->x[i] = aa_clampf(aa_clampf(xn, x0 - eps, x0 + eps), 0, 1);
    }
}

typedef struct {
    double *eta, *eta_last, *fbest_last, *fprev;
    int *raised;
} RowState;

/* At checkpoint `since` steps after the previous one: halve and restart
 * from the best point where the loss stalled. */
static void at_checkpoint(AaCtx *c, RowState *s, int since) {
    for (int64_t r = 0; r < c->B; r++) {
        bool few_raises = s->raised[r] < APGD_RHO * since;
        bool stalled = s->eta[r] == s->eta_last[r] && c->fbest[r] == s->fbest_last[r];
        if (few_raises || stalled) {
            s->eta[r] /= 2;
            copy_row(c, c->x, c->xbest, r);
            copy_row(c, c->g, c->gbest, r);
            c->f[r] = c->fbest[r];
        }
        s->raised[r] = 0;
        s->eta_last[r] = s->eta[r];
        s->fbest_last[r] = c->fbest[r];
    }
}

static void apgd_run(AaCtx *c, const int *target, int iters, uint32_t stream, bool *robust, RowState *s) {
    for (int64_t r = 0; r < c->B; r++) {
        if (robust[r]) aa_random_start(c, r, stream, 1.0, c->x);
        else copy_row(c, c->x, c->x0, r);
    }
    loss_grad(c, target, c->x, c->g);
    aa_mark_broken(c, robust);
    memcpy(c->xprev, c->x, (size_t)(c->B * c->img) * sizeof(float));
    memcpy(c->xbest, c->x, (size_t)(c->B * c->img) * sizeof(float));
    memcpy(c->gbest, c->g, (size_t)(c->B * c->img) * sizeof(float));
    for (int64_t r = 0; r < c->B; r++) {
        c->fbest[r] = s->fbest_last[r] = c->f[r];
        s->eta[r] = s->eta_last[r] = 2 * c->eps;
        s->raised[r] = 0;
    }
    int w[32], nw = aa_apgd_checkpoints(iters, w, 32), j = 0, w_prev = 0;
    for (int k = 0; k < iters && aa_count(robust, c->B); k++) {
        for (int64_t r = 0; r < c->B; r++) step_row(c, r, s->eta[r], k == 0);
        memcpy(s->fprev, c->f, (size_t)c->B * sizeof(double));
        loss_grad(c, target, c->x, c->g);
        aa_mark_broken(c, robust);
        for (int64_t r = 0; r < c->B; r++) {
            s->raised[r] += c->f[r] > s->fprev[r];
            if (c->f[r] > c->fbest[r]) {
                c->fbest[r] = c->f[r];
                copy_row(c, c->xbest, c->x, r);
                copy_row(c, c->gbest, c->g, r);
            }
        }
        if (j < nw && k + 1 == w[j]) {
            at_checkpoint(c, s, w[j] - w_prev);
            w_prev = w[j++];
        }
    }
}

static bool state_open(RowState *s, int64_t B) {
    s->eta = malloc((size_t)B * sizeof(double));
    s->eta_last = malloc((size_t)B * sizeof(double));
    s->fbest_last = malloc((size_t)B * sizeof(double));
    s->fprev = malloc((size_t)B * sizeof(double));
    s->raised = malloc((size_t)B * sizeof(int));
    return s->eta && s->eta_last && s->fbest_last && s->fprev && s->raised;
}

static void state_close(RowState *s) {
    free(s->eta), free(s->eta_last), free(s->fbest_last), free(s->fprev), free(s->raised);
}

static void apgd(AaCtx *c, int iters, int restarts, int targets, bool *robust) {
    RowState s;
    int *target = targets ? malloc((size_t)c->B * sizeof(int)) : NULL;
    double *z0 = targets ? malloc((size_t)(c->B * c->K) * sizeof(double)) : NULL;
    if (!state_open(&s, c->B) || (targets && (!target || !z0))) {
        fprintf(stderr, "error: out of memory in APGD\n");
        exit(APP_FAIL);
    }
    if (targets) aa_logits(c, c->x0); /* the targets come from the clean logits */
    if (z0) memcpy(z0, c->z, (size_t)(c->B * c->K) * sizeof(double));
    for (int t = 0; t < (targets ? targets : 1); t++) {
        for (int64_t r = 0; target && r < c->B; r++) target[r] = aa_ranked_class(z0 + r * c->K, c->K, t + 2);
        for (int k = 0; k < restarts && aa_count(robust, c->B); k++)
            apgd_run(c, target, iters, STREAM_APGD + 0x100u * (uint32_t)k + 0x10000u * (uint32_t)(t + 1),
                     robust, &s);
    }
    free(z0);
    free(target);
    state_close(&s);
}

void aa_apgd_ce(AaCtx *c, int iters, int restarts, bool *robust) { apgd(c, iters, restarts, 0, robust); }

void aa_apgd_t(AaCtx *c, int iters, int restarts, int targets, bool *robust) {
    apgd(c, iters, restarts, targets, robust);
}
