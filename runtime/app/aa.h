/* The attacks of AutoAttack (Croce & Hein, ICML 2020) for `eval`: APGD on
 * the cross-entropy, APGD on the targeted DLR loss, FAB-T and Square, all
 * L-inf. They run on the host over the batch the program was compiled for
 * and reach the network only through entry points: predict (Square, which
 * uses no gradient), grad_ce (APGD-CE) and grad_logits (APGD-T and FAB-T,
 * whose losses' derivatives with respect to the K logits are taken here).
 * What each computes, with its constants: docs/cli.md, section eval. */
#ifndef IGRC_RUNTIME_APP_AA_H
#define IGRC_RUNTIME_APP_AA_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/exec.h"
#include "runtime/program/program.h"

/* One bound entry point: its inputs x (and y or dlogits), outputs logits
 * (and dx). */
typedef struct {
    int f;
    const PFunc *fn;
    int in_x, in_y, in_w, out_logits, out_dx;
    void **outs;
    const void **ins;
    int64_t calls;
} AaEntry;

typedef struct {
    Exec *r;
    AaEntry *predict, *grad_ce, *grad_logits; /* NULL where the program lacks one */
    int64_t B, K, img, C, H, W;
    const float *x0;   /* the batch, [B, img] */
    const int32_t *y;  /* its labels */
    double eps;
    uint32_t seed, batch; /* the random streams: (seed, batch index, attack's stream) */
    /* scratch, owned by aa_open / aa_close */
    double *z;         /* logits of the last call, [B, K] */
    void *w;           /* grad_logits' dlogits, its dtype, [B, K] */
    double *wd;        /* the same in double, filled by the attacks */
    float *x, *xprev, *xbest, *g, *gbest, *t;
    double *f, *fbest;
} AaCtx;

/* Allocates the scratch (false: out of memory, printed). */
bool aa_open(AaCtx *c);
void aa_close(AaCtx *c);

/* robust[k] on entry: row k is a real image still classified correctly by
 * the attacks so far; each attack clears the rows for which it finds an
 * input in the eps-ball (and [0,1]) that the network misclassifies. */
void aa_apgd_ce(AaCtx *c, int iters, int restarts, bool *robust);
void aa_apgd_t(AaCtx *c, int iters, int restarts, int targets, bool *robust);
void aa_fab_t(AaCtx *c, int iters, int restarts, int targets, bool *robust);
void aa_square(AaCtx *c, int queries, bool *robust);

/* ---- shared by the attacks (aa_common.c) ---- */

/* Logits at x into c->z: through predict, or a gradient entry if absent. */
void aa_logits(AaCtx *c, const float *x);
/* c->z and the cross-entropy's input gradient (summed over rows) into g. */
void aa_grad_ce(AaCtx *c, const float *x, float *g);
/* c->z = logits at x, g = (dz/dx)^T c->wd per row. */
void aa_vjp(AaCtx *c, const float *x, float *g);
int aa_argmax(const double *z, int64_t k);
/* Clears robust[k] for rows the last call's logits misclassify; the number
 * still robust. */
int64_t aa_mark_broken(AaCtx *c, bool *robust);
int64_t aa_count(const bool *robust, int64_t n);
/* The class with the rank-th largest logit in z (rank 1: the largest). */
int aa_ranked_class(const double *z, int64_t k, int rank);
/* A point of the eps-ball around x0's row k scaled by `scale`: x0 + scale *
 * eps * t / max|t|, t uniform in [-1,1]^n, clipped to [0,1]. */
void aa_random_start(AaCtx *c, int64_t k, uint32_t stream, double scale, float *x);
float aa_clampf(float a, float lo, float hi);

/* ---- the attacks' pieces, exposed for tests/runtime/test_aa.c ---- */

/* The targeted DLR loss -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)
 * of one row of k logits, and its derivative in w (length k). */
double aa_dlr_targeted(const double *z, int64_t k, int y, int t, double *w);
/* APGD's checkpoints w_1 < w_2 < ... <= iters into w (at most cap); their
 * number. */
int aa_apgd_checkpoints(int iters, int *w, int cap);
typedef struct {
    double cap, a;
} AaCap;
/* The smallest-L-inf d with sum_i w_i d_i = b and -x_i <= d_i <= 1 - x_i
 * (n coordinates, scratch of n); where no such d exists, the one whose sum
 * comes closest. Returns |d|_inf. */
double aa_project_linf(const float *w, const float *x, double b, int64_t n, AaCap *scratch, float *d);
/* Square's fraction p of the image a window covers at query q of queries. */
double aa_square_fraction(int q, int queries);

#endif
