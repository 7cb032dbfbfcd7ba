/* What the AutoAttack attacks share: calls through the bound entry points,
 * logits as doubles, random starts, robustness bookkeeping. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/philox.h"
#include "runtime/app/aa.h"
#include "runtime/app/app_internal.h"

float aa_clampf(float a, float lo, float hi) { return a < lo ? lo : a > hi ? hi : a; }

bool aa_open(AaCtx *c) {
    const size_t n = (size_t)(c->B * c->img), bk = (size_t)(c->B * c->K);
    c->z = malloc(bk * sizeof(double));
    c->wd = calloc(bk, sizeof(double));
    c->w = calloc(bk, sizeof(double)); /* large enough for f32 or f64 */
    c->f = malloc((size_t)c->B * sizeof(double));
    c->fbest = malloc((size_t)c->B * sizeof(double));
    float **bufs[] = {&c->x, &c->xprev, &c->xbest, &c->g, &c->gbest, &c->t};
    bool ok = c->z && c->wd && c->w && c->f && c->fbest;
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) ok = (*bufs[i] = malloc(n * sizeof(float))) && ok;
    if (!ok) fprintf(stderr, "error: out of memory for the AutoAttack buffers\n");
    return ok;
}

void aa_close(AaCtx *c) {
    free(c->z), free(c->wd), free(c->w), free(c->f), free(c->fbest);
    free(c->x), free(c->xprev), free(c->xbest), free(c->g), free(c->gbest), free(c->t);
}

static void call(AaCtx *c, AaEntry *e, const float *x) {
    e->ins[e->in_x] = x;
    if (e->in_y >= 0) e->ins[e->in_y] = c->y;
    if (e->in_w >= 0) e->ins[e->in_w] = c->w;
    if (!app_call(c->r, e->f, e->ins, e->outs)) exit(APP_FAIL); /* a device failure */
    e->calls++;
    const PTensor *t = &e->fn->outputs[e->out_logits];
    const void *z = e->outs[e->out_logits];
    for (int64_t i = 0; i < c->B * c->K; i++)
        c->z[i] = t->dtype == PD_F64 ? ((const double *)z)[i] : (double)((const float *)z)[i];
}

void aa_logits(AaCtx *c, const float *x) {
    call(c, c->predict ? c->predict : c->grad_ce ? c->grad_ce : c->grad_logits, x);
}

void aa_grad_ce(AaCtx *c, const float *x, float *g) {
    call(c, c->grad_ce, x);
    memcpy(g, c->grad_ce->outs[c->grad_ce->out_dx], (size_t)(c->B * c->img) * sizeof(float));
}

void aa_vjp(AaCtx *c, const float *x, float *g) {
    AaEntry *e = c->grad_logits;
    bool f64 = e->fn->inputs[e->in_w].dtype == PD_F64;
    for (int64_t i = 0; i < c->B * c->K; i++) {
        if (f64) ((double *)c->w)[i] = c->wd[i];
        else ((float *)c->w)[i] = (float)c->wd[i];
    }
    call(c, e, x);
    memcpy(g, e->outs[e->out_dx], (size_t)(c->B * c->img) * sizeof(float));
}

int aa_argmax(const double *z, int64_t k) {
    int best = 0;
    for (int j = 1; j < k; j++)
        if (z[j] > z[best]) best = j;
    return best;
}

int64_t aa_mark_broken(AaCtx *c, bool *robust) {
    int64_t left = 0;
    for (int64_t k = 0; k < c->B; k++) {
        if (robust[k] && aa_argmax(c->z + k * c->K, c->K) != c->y[k]) robust[k] = false;
        left += robust[k];
    }
    return left;
}

int64_t aa_count(const bool *robust, int64_t n) {
    int64_t m = 0;
    for (int64_t k = 0; k < n; k++) m += robust[k];
    return m;
}

/* Ties go to the lower class index, as a stable descending sort would. */
int aa_ranked_class(const double *z, int64_t k, int rank) {
    for (int j = 0; j < k; j++) {
        int above = 0;
        for (int i = 0; i < k; i++) above += z[i] > z[j] || (z[i] == z[j] && i < j);
        if (above == rank - 1) return j;
    }
    return -1;
}

void aa_random_start(AaCtx *c, int64_t k, uint32_t stream, double scale, float *x) {
    float *t = c->t + k * c->img;
    const float *x0 = c->x0 + k * c->img;
    double m = 0;
    for (int64_t i = 0; i < c->img; i++) {
        uint64_t index = (uint64_t)k * (uint64_t)c->img + (uint64_t)i;
        t[i] = (float)(2.0 * philox_uniform(c->seed, c->batch, stream, index) - 1.0);
        m = fmax(m, fabs(t[i]));
    }
    for (int64_t i = 0; i < c->img; i++)
        x[k * c->img + i] = aa_clampf(x0[i] + (float)(scale * c->eps * t[i] / (m > 0 ? m : 1)), 0, 1);
}
