/* Convolution and pooling kernels, NCHW, no dilation, no groups.
 *
 * Each family has one loop nest that visits every (output position,
 * window tap) pair. The forward kernel gathers along it; the backward
 * kernels scatter along the very same pairs. Being literal transposes of
 * the forward loop, they satisfy the adjoint identities
 *   <dy, conv2d(x, w)> = <conv2d_bwd_data(dy, w), x>
 *                      = <conv2d_bwd_filter(x, dy), w>
 * up to rounding, with no second formula that could drift from the first.
 */
#include <math.h>

#include "ir/interp_internal.h"

/* Extent of a window op along one axis: floor((in + 2p - k) / s) + 1;
 * -1 when the window does not fit. */
static int64_t window_extent(int64_t in, int64_t k, int64_t s, int64_t p) {
    int64_t span = in + 2 * p - k;
    return span < 0 || s < 1 || k < 1 || p < 0 ? -1 : span / s + 1;
}

/* Reads a two-element attribute (stride, padding, kernel). */
static bool pair(const Node *n, const char *key, int64_t dflt, int64_t v[2], Diag *d) {
    int64_t buf[3];
    int k = node_ints(n, key, buf, 3);
    if (k == 0 && dflt >= 0) {
        v[0] = v[1] = dflt;
        return true;
    }
    if (k != 2) return kfail(n, d, EXIT_BADINPUT, "attribute '%s' needs two entries", key);
    v[0] = buf[0];
    v[1] = buf[1];
    return true;
}

static bool shapes_fail(const Node *n, const Type *x, const Type *w, const Type *y, Diag *d) {
    char a[128], b[128], c[128];
    return kfail(n, d, EXIT_BADINPUT, "inconsistent shapes x %s, w %s, y %s",
                 type_str(x, a, sizeof a), type_str(w, b, sizeof b), type_str(y, c, sizeof c));
}

/* ---- convolution ---- */

typedef struct {
    int64_t N, C, H, W, O, KH, KW, OH, OW, sh, sw, ph, pw;
} ConvGeom;

typedef enum { CONV_FWD, CONV_BWD_DATA, CONV_BWD_FILTER } ConvMode;

/* Checks that x[N,C,H,W], w[O,C,KH,KW] and y[N,O,OH,OW] belong together
 * under the node's stride and padding, whichever of them is the result. */
static bool conv_setup(const Node *n, const Type *x, const Type *w, const Type *y,
                       ConvGeom *g, Diag *d) {
    int64_t s[2] = {1, 1}, p[2] = {0, 0};
    if (!pair(n, "stride", 1, s, d) || !pair(n, "padding", 0, p, d)) return false;
    if (x->rank != 4 || w->rank != 4 || y->rank != 4) return shapes_fail(n, x, w, y, d);
    *g = (ConvGeom){x->dim[0], x->dim[1], x->dim[2], x->dim[3], w->dim[0], w->dim[2],
                    w->dim[3], y->dim[2], y->dim[3], s[0], s[1], p[0], p[1]};
    if (w->dim[1] != g->C || y->dim[0] != g->N || y->dim[1] != g->O ||
        window_extent(g->H, g->KH, g->sh, g->ph) != g->OH ||
        window_extent(g->W, g->KW, g->sw, g->pw) != g->OW)
        return shapes_fail(n, x, w, y, d);
    return true;
}

/* Visits y[n,o,oh,ow] x x[n,c,oh*sh-ph+kh, ow*sw-pw+kw] x w[o,c,kh,kw] for
 * every tap whose input position lies inside x (zero padding contributes
 * nothing), accumulating into whichever buffer mode names. */
static void conv_visit(const ConvGeom *g, ConvMode mode, double *x, double *w, double *y) {
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t o = 0; o < g->O; o++)
            for (int64_t oh = 0; oh < g->OH; oh++)
                for (int64_t ow = 0; ow < g->OW; ow++) {
                    int64_t yi = ((n * g->O + o) * g->OH + oh) * g->OW + ow;
                    for (int64_t c = 0; c < g->C; c++)
                        for (int64_t kh = 0; kh < g->KH; kh++) {
                            int64_t ih = oh * g->sh - g->ph + kh;
                            if (ih < 0 || ih >= g->H) continue;
                            for (int64_t kw = 0; kw < g->KW; kw++) {
                                int64_t iw = ow * g->sw - g->pw + kw;
                                if (iw < 0 || iw >= g->W) continue;
                                int64_t xi = ((n * g->C + c) * g->H + ih) * g->W + iw;
                                int64_t wi = ((o * g->C + c) * g->KH + kh) * g->KW + kw;
                                switch (mode) {
                                case CONV_FWD: y[yi] += x[xi] * w[wi]; break;
                                case CONV_BWD_DATA: x[xi] += y[yi] * w[wi]; break;
                                case CONV_BWD_FILTER: w[wi] += x[xi] * y[yi]; break;
                                }
                            }
                        }
                }
}

/* conv2d(x, w) {stride, padding}: cross-correlation (PyTorch's conv2d). */
bool k_conv2d(const Node *n, const Value *in, Value *out, Diag *d) {
    ConvGeom g;
    if (!conv_setup(n, &in[0].type, &in[1].type, &out->type, &g, d)) return false;
    conv_visit(&g, CONV_FWD, in[0].data, in[1].data, out->data);
    return true;
}

/* conv2d_bwd_data(dy, w) {stride, padding, input_shape}: d<dy,conv>/dx. */
bool k_conv2d_bwd_data(const Node *n, const Value *in, Value *out, Diag *d) {
    int64_t is[5];
    ConvGeom g;
    if (node_ints(n, "input_shape", is, 5) == 4) {
        Type want = type_make(out->type.dtype, 4, is);
        if (!type_same_shape(&want, &out->type))
            return shapes_fail(n, &out->type, &in[1].type, &in[0].type, d);
    }
    if (!conv_setup(n, &out->type, &in[1].type, &in[0].type, &g, d)) return false;
    conv_visit(&g, CONV_BWD_DATA, out->data, in[1].data, in[0].data);
    return true;
}

/* conv2d_bwd_filter(x, dy) {stride, padding, kernel}: d<dy,conv>/dw. */
bool k_conv2d_bwd_filter(const Node *n, const Value *in, Value *out, Diag *d) {
    int64_t k[2] = {0, 0};
    ConvGeom g;
    if (!pair(n, "kernel", -1, k, d)) return false;
    if (out->type.rank != 4 || out->type.dim[2] != k[0] || out->type.dim[3] != k[1])
        return shapes_fail(n, &in[0].type, &out->type, &in[1].type, d);
    if (!conv_setup(n, &in[0].type, &out->type, &in[1].type, &g, d)) return false;
    conv_visit(&g, CONV_BWD_FILTER, in[0].data, out->data, in[1].data);
    return true;
}

/* ---- pooling ---- */

typedef struct {
    int64_t planes, H, W, KH, KW, sh, sw, ph, pw, OH, OW;
} PoolGeom;

static bool pool_fail(const Node *n, const Type *x, const Type *y, const int64_t *k,
                      const int64_t *s, const int64_t *p, Diag *d) {
    char a[128], b[128];
    return kfail(n, d, EXIT_BADINPUT,
                 "x %s and y %s do not fit kernel [%lld,%lld], stride [%lld,%lld], padding "
                 "[%lld,%lld]", type_str(x, a, sizeof a), type_str(y, b, sizeof b),
                 (long long)k[0], (long long)k[1], (long long)s[0], (long long)s[1],
                 (long long)p[0], (long long)p[1]);
}

/* Checks x[N,C,H,W] against y[N,C,OH,OW] under kernel, stride and padding
 * (default 0). */
static bool pool_setup(const Node *n, const Type *x, const Type *y, PoolGeom *g, Diag *d) {
    int64_t k[2] = {0, 0}, s[2] = {1, 1}, p[2] = {0, 0};
    if (!pair(n, "kernel", -1, k, d) || !pair(n, "stride", -1, s, d) ||
        !pair(n, "padding", 0, p, d))
        return false;
    if (x->rank != 4 || y->rank != 4 || x->dim[0] != y->dim[0] || x->dim[1] != y->dim[1] ||
        window_extent(x->dim[2], k[0], s[0], p[0]) != y->dim[2] ||
        window_extent(x->dim[3], k[1], s[1], p[1]) != y->dim[3])
        return pool_fail(n, x, y, k, s, p, d);
    *g = (PoolGeom){x->dim[0] * x->dim[1], x->dim[2], x->dim[3], k[0], k[1], s[0], s[1],
                    p[0], p[1], y->dim[2], y->dim[3]};
    return true;
}

/* Index within the plane of the first maximal element of window (oh, ow),
 * scanning the window row-major; NaN counts as larger than everything, so
 * the first NaN wins. Padded taps are -inf and never win; -1 when the
 * window holds only padding. */
static int64_t window_argmax(const PoolGeom *g, const double *x, int64_t oh, int64_t ow) {
    int64_t best = -1;
    for (int64_t kh = 0; kh < g->KH; kh++) {
        int64_t ih = oh * g->sh - g->ph + kh;
        if (ih < 0 || ih >= g->H) continue;
        for (int64_t kw = 0; kw < g->KW; kw++) {
            int64_t iw = ow * g->sw - g->pw + kw, i = ih * g->W + iw;
            if (iw < 0 || iw >= g->W) continue;
            if (best < 0 || (!isnan(x[best]) && (isnan(x[i]) || x[i] > x[best]))) best = i;
        }
    }
    return best;
}

typedef enum { MAX_FWD, MAX_BWD, MAX_SELECT } MaxMode;

/* Visits each window with the element window_argmax picks in x. The three
 * ops are one linear map and its transpose, fixed by x's argmaxes:
 *   forward  y[w] = x[pick(w)]        (padding-only window: -inf)
 *   bwd      dx[pick(w)] += dy[w]     (scatter; overlapping windows add)
 *   select   y[w] = g[pick(w)]        (the gather bwd is the transpose of;
 *                                      a padding-only window reads 0) */
static void max_visit(const PoolGeom *g, MaxMode mode, const double *x, const double *src,
                      double *dst) {
    for (int64_t p = 0; p < g->planes; p++) {
        const double *xp = x + p * g->H * g->W;
        for (int64_t oh = 0; oh < g->OH; oh++)
            for (int64_t ow = 0; ow < g->OW; ow++) {
                int64_t b = window_argmax(g, xp, oh, ow), w = (p * g->OH + oh) * g->OW + ow;
                int64_t i = p * g->H * g->W + b;
                switch (mode) {
                case MAX_FWD: dst[w] = b < 0 ? -INFINITY : x[i]; break;
                case MAX_BWD: if (b >= 0) dst[i] += src[w]; break;
                case MAX_SELECT: dst[w] = b < 0 ? 0.0 : src[i]; break;
                }
            }
    }
}

/* maxpool2d {kernel, stride, padding}: padding counts as -inf. */
bool k_maxpool2d(const Node *n, const Value *in, Value *out, Diag *d) {
    PoolGeom g;
    if (!pool_setup(n, &in[0].type, &out->type, &g, d)) return false;
    max_visit(&g, MAX_FWD, in[0].data, NULL, out->data);
    return true;
}

/* maxpool2d_bwd(x, dy): each window routes its dy to the element forward
 * picked (the first maximum, ties to the first). */
bool k_maxpool2d_bwd(const Node *n, const Value *in, Value *out, Diag *d) {
    PoolGeom g;
    if (!need_shape(n, in, 0, &out->type, d) ||
        !pool_setup(n, &in[0].type, &in[1].type, &g, d))
        return false;
    max_visit(&g, MAX_BWD, in[0].data, in[1].data, out->data);
    return true;
}

/* maxpool2d_select(x, g): each window takes g (x's shape) at the element
 * forward picked from x; the transpose of maxpool2d_bwd in dy. */
bool k_maxpool2d_select(const Node *n, const Value *in, Value *out, Diag *d) {
    PoolGeom g;
    if (!need_shape(n, in, 1, &in[0].type, d) ||
        !pool_setup(n, &in[0].type, &out->type, &g, d))
        return false;
    max_visit(&g, MAX_SELECT, in[0].data, in[1].data, out->data);
    return true;
}

/* Visits every (window, in-bounds tap) pair of an average pool: forward
 * gathers the window's sum over its divisor into y, backward scatters
 * dy / divisor into x. Padded taps add 0; the divisor is KH KW with
 * count_include_pad, else the window's in-bounds taps (at least one, as
 * padding is at most half the kernel). */
static void avg_visit(const PoolGeom *g, bool include_pad, bool bwd, double *x, double *y) {
    for (int64_t p = 0; p < g->planes; p++)
        for (int64_t oh = 0; oh < g->OH; oh++)
            for (int64_t ow = 0; ow < g->OW; ow++) {
                int64_t h0 = oh * g->sh - g->ph, w0 = ow * g->sw - g->pw;
                int64_t ha = h0 < 0 ? 0 : h0, hb = h0 + g->KH < g->H ? h0 + g->KH : g->H;
                int64_t wa = w0 < 0 ? 0 : w0, wb = w0 + g->KW < g->W ? w0 + g->KW : g->W;
                double div = (double)(include_pad ? g->KH * g->KW : (hb - ha) * (wb - wa));
                double *yo = &y[(p * g->OH + oh) * g->OW + ow], sum = 0.0;
                for (int64_t ih = ha; ih < hb; ih++)
                    for (int64_t iw = wa; iw < wb; iw++) {
                        double *xi = &x[(p * g->H + ih) * g->W + iw];
                        if (bwd) *xi += *yo / div;
                        else sum += *xi;
                    }
                if (!bwd) *yo = sum / div;
            }
}

/* The geometry of an average pool, x[N,C,H,W] to y[N,C,OH,OW], and its
 * count_include_pad (default 1). */
static bool avg_setup(const Node *n, const Type *x, const Type *y, PoolGeom *g, bool *include_pad,
                      Diag *d) {
    if (!pool_setup(n, x, y, g, d)) return false;
    if (2 * g->ph > g->KH || 2 * g->pw > g->KW)
        return kfail(n, d, EXIT_BADINPUT, "padding [%lld,%lld] exceeds half the kernel [%lld,%lld]",
                     (long long)g->ph, (long long)g->pw, (long long)g->KH, (long long)g->KW);
    *include_pad = node_int(n, "count_include_pad", 1) != 0;
    return true;
}

/* avgpool2d {kernel, stride, padding, count_include_pad}: the mean over
 * each window (see avg_visit). */
bool k_avgpool2d(const Node *n, const Value *in, Value *out, Diag *d) {
    PoolGeom g;
    bool include_pad = true;
    if (!avg_setup(n, &in[0].type, &out->type, &g, &include_pad, d)) return false;
    avg_visit(&g, include_pad, false, in[0].data, out->data);
    return true;
}

/* avgpool2d_bwd(dy) {kernel, stride, padding, count_include_pad,
 * input_shape}: each in-bounds input element gets dy / divisor from every
 * window containing it. */
bool k_avgpool2d_bwd(const Node *n, const Value *in, Value *out, Diag *d) {
    int64_t is[5];
    PoolGeom g;
    bool include_pad = true;
    if (node_ints(n, "input_shape", is, 5) == 4) {
        Type want = type_make(out->type.dtype, 4, is);
        if (!type_same_shape(&want, &out->type))
            return shapes_fail(n, &out->type, &want, &in[0].type, d);
    }
    if (!avg_setup(n, &out->type, &in[0].type, &g, &include_pad, d)) return false;
    avg_visit(&g, include_pad, true, out->data, in[0].data);
    return true;
}
