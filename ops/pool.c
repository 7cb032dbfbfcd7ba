/* The pool family: maxpool2d, maxpool2d_bwd, maxpool2d_select, avgpool2d,
 * avgpool2d_bwd (semantics: ir/ops.h). Each section below is compiled into one
 * layer's library and ends with that layer's rows for these ops
 * (docs/architecture.md, "Folders and dependency direction"). */
#if defined(IGRC_OPS_IR)

#include "ir/op_rows.h"

/* ---- shape rules ---- */

static bool pool_out(Rule *r, const Type *x, Type *out) {
    int64_t k[2], st[2], pd[2] = {0, 0};
    shape_ints(r, "kernel", k);
    shape_ints(r, "stride", st);
    shape_ints(r, "padding", pd);
    if (x->rank != 4 || !dtype_is_float(x->dtype))
        return shape_fail_type(r, "expects a float x[N,C,H,W]", x);
    if (2 * pd[0] > k[0] || 2 * pd[1] > k[1])
        return shape_fail_type(r, "padding must be at most half the kernel", x);
    *out = *x;
    if (!shape_window_out(x->dim[2], k[0], st[0], pd[0], &out->dim[2]) ||
        !shape_window_out(x->dim[3], k[1], st[1], pd[1], &out->dim[3]))
        return shape_fail_type(r, "the window does not fit the input", x);
    return true;
}

static bool pool_rule(Rule *r, Type *out) { return pool_out(r, r->in[0], out); }

static bool maxpool_bwd_rule(Rule *r, Type *out) {
    Type y;
    if (!pool_out(r, r->in[0], &y)) return false;
    if (!type_equal(&y, r->in[1])) return shape_fail_types(r, "dy is not the pool's output", r->in[1], &y);
    *out = *r->in[0];
    return true;
}

static bool maxpool_select_rule(Rule *r, Type *out) {
    if (!type_equal(r->in[0], r->in[1])) return shape_fail_types(r, "g must have x's type", r->in[1], r->in[0]);
    return pool_out(r, r->in[0], out);
}

static bool avgpool_bwd_rule(Rule *r, Type *out) {
    int64_t is[4];
    if (shape_ints(r, "input_shape", is) != 4) return shape_fail_type(r, "needs input_shape[4]", r->in[0]);
    Type x = type_make(r->in[0]->dtype, 4, is), y;
    if (!pool_out(r, &x, &y)) return false;
    if (!type_equal(&y, r->in[0])) return shape_fail_types(r, "dy is not the pool's output", r->in[0], &y);
    *out = x;
    return true;
}

/* ---- interpreter kernels: one loop nest per pool visits every (window,
 * tap) pair; the backward kernels scatter along the very pairs the forward
 * one gathers along ---- */

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
    if (!need_pair(n, "kernel", -1, k, d) || !need_pair(n, "stride", -1, s, d) ||
        !need_pair(n, "padding", 0, p, d))
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
static bool k_maxpool2d(const Node *n, const Value *in, Value *out, Diag *d) {
    PoolGeom g;
    if (!pool_setup(n, &in[0].type, &out->type, &g, d)) return false;
    max_visit(&g, MAX_FWD, in[0].data, NULL, out->data);
    return true;
}

/* maxpool2d_bwd(x, dy): each window routes its dy to the element forward
 * picked (the first maximum, ties to the first). */
static bool k_maxpool2d_bwd(const Node *n, const Value *in, Value *out, Diag *d) {
    PoolGeom g;
    if (!need_shape(n, in, 0, &out->type, d) ||
        !pool_setup(n, &in[0].type, &in[1].type, &g, d))
        return false;
    max_visit(&g, MAX_BWD, in[0].data, in[1].data, out->data);
    return true;
}

/* maxpool2d_select(x, g): each window takes g (x's shape) at the element
 * forward picked from x; the transpose of maxpool2d_bwd in dy. */
static bool k_maxpool2d_select(const Node *n, const Value *in, Value *out, Diag *d) {
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
static bool k_avgpool2d(const Node *n, const Value *in, Value *out, Diag *d) {
    PoolGeom g;
    bool include_pad = true;
    if (!avg_setup(n, &in[0].type, &out->type, &g, &include_pad, d)) return false;
    avg_visit(&g, include_pad, false, in[0].data, out->data);
    return true;
}

/* avgpool2d_bwd(dy) {kernel, stride, padding, count_include_pad,
 * input_shape}: each in-bounds input element gets dy / divisor from every
 * window containing it. */
static bool k_avgpool2d_bwd(const Node *n, const Value *in, Value *out, Diag *d) {
    int64_t is[5];
    PoolGeom g;
    bool include_pad = true;
    if (node_ints(n, "input_shape", is, 5) == 4) {
        Type want = type_make(out->type.dtype, 4, is);
        if (!type_same_shape(&want, &out->type))
            return kfail_shapes(n, &out->type, &want, &in[0].type, d);
    }
    if (!avg_setup(n, &out->type, &in[0].type, &g, &include_pad, d)) return false;
    avg_visit(&g, include_pad, true, out->data, in[0].data);
    return true;
}

/* ---- flops: forward one per window input element, backward one per
 * result element ---- */

static int64_t per_output(const Function *f, const Node *n) {
    (void)f;
    return type_numel(&n->type);
}

const IrOpRow ops_pool_ir[] = {
    {OP_ROW(MAXPOOL2D, "maxpool2d", 1, 1, PK_COMPLEX, OC_PRIMITIVE,
            ATTRS(A_WIN("kernel", 1), A_WIN("padding", 0), A_WIN("stride", 1))),
     .shape = pool_rule, .kernel = k_maxpool2d, .flops = flops_per_input},
    {OP_ROW(MAXPOOL2D_BWD, "maxpool2d_bwd", 2, 2, PK_COMPLEX, OC_PRIMITIVE,
            ATTRS(A_WIN("kernel", 1), A_WIN("padding", 0), A_WIN("stride", 1))),
     .shape = maxpool_bwd_rule, .kernel = k_maxpool2d_bwd, .flops = per_output},
    {OP_ROW(MAXPOOL2D_SELECT, "maxpool2d_select", 2, 2, PK_COMPLEX, OC_PRIMITIVE,
            ATTRS(A_WIN("kernel", 1), A_WIN("padding", 0), A_WIN("stride", 1))),
     .shape = maxpool_select_rule, .kernel = k_maxpool2d_select},
    {OP_ROW(AVGPOOL2D, "avgpool2d", 1, 1, PK_COMPLEX, OC_PRIMITIVE,
            ATTRS(A_INT("count_include_pad", 0, 1), A_WIN("kernel", 1), A_OPT_WIN("padding", 0),
                  A_WIN("stride", 1))),
     .shape = pool_rule, .kernel = k_avgpool2d, .flops = flops_per_input},
    {OP_ROW(AVGPOOL2D_BWD, "avgpool2d_bwd", 1, 1, PK_COMPLEX, OC_PRIMITIVE,
            ATTRS(A_INT("count_include_pad", 0, 1), A_REQ_INTS("input_shape", 4, 1, A_BIG),
                  A_WIN("kernel", 1), A_OPT_WIN("padding", 0), A_WIN("stride", 1))),
     .shape = avgpool_bwd_rule, .kernel = k_avgpool2d_bwd, .flops = per_output},
    IR_ROWS_END,
};

#elif defined(IGRC_OPS_PASSES)

#include <string.h>

#include "passes/vjp_rule.h"

/* ---- VJPs ---- */

static int copy_attrs_node(VjpCtx *c, OpKind op, const char *part, const int *ins, int nin,
                           const Attr *extra, int nextra) {
    Attr a[8];
    int k = 0;
    for (int i = 0; i < c->n->nattrs && k < 8; i++) a[k++] = c->n->attrs[i];
    for (int i = 0; i < nextra && k < 8; i++) a[k++] = extra[i];
    return b_node(c->b, op, nm(c, part), ins, nin, a, k);
}

/* Max-pool routing is piecewise constant in x: gradients flow only through
 * the routed values. maxpool2d_bwd and maxpool2d_select are transposes. */
static int pool_rule(VjpCtx *c, int i) {
    int ins[2] = {in(c, 0), c->ct};
    OpKind op = c->n->op;
    if (op == OP_MAXPOOL2D) return copy_attrs_node(c, OP_MAXPOOL2D_BWD, "maxpool", ins, 2, NULL, 0);
    if (op == OP_MAXPOOL2D_BWD)
        return i == 0 ? VJP_NONE
                      : copy_attrs_node(c, OP_MAXPOOL2D_SELECT, "maxpool_bwd", ins, 2, NULL, 0);
    if (op == OP_MAXPOOL2D_SELECT)
        return i == 0 ? VJP_NONE
                      : copy_attrs_node(c, OP_MAXPOOL2D_BWD, "maxpool_select", ins, 2, NULL, 0);
    if (op == OP_AVGPOOL2D) {
        Attr a = shape_attr("input_shape", ty(c, in(c, 0)));
        return copy_attrs_node(c, OP_AVGPOOL2D_BWD, "avgpool", &c->ct, 1, &a, 1);
    }
    /* OP_AVGPOOL2D_BWD: its transpose is avgpool2d, same window */
    Attr a[8];
    int k = 0;
    for (int j = 0; j < c->n->nattrs && k < 8; j++)
        if (strcmp(c->n->attrs[j].key, "input_shape") != 0) a[k++] = c->n->attrs[j];
    return b_node(c->b, OP_AVGPOOL2D, nm(c, "avgpool_bwd"), &c->ct, 1, a, k);
}

const PassOpRow ops_pool_passes[] = {
    {OP_MAXPOOL2D, .vjp = pool_rule},
    {OP_MAXPOOL2D_BWD, .vjp = pool_rule},
    {OP_MAXPOOL2D_SELECT, .vjp = pool_rule},
    {OP_AVGPOOL2D, .vjp = pool_rule},
    {OP_AVGPOOL2D_BWD, .vjp = pool_rule},
    PASS_ROWS_END,
};

#elif defined(IGRC_OPS_CODEGEN)

#include <string.h>

#include "codegen/codegen_rows.h"
#include "runtime/cpu/cpu_ops.h"

/* ---- library calls (program_build.c): a complex op runs as one CPU
 * library call before its fused group's kernel ---- */

static void pool_args(const Node *n, const Type *x, const Type *y, int64_t *a) {
    int64_t k[2], s[2], p[2] = {0, 0};
    node_ints(n, "kernel", k, 2);
    node_ints(n, "stride", s, 2);
    node_ints(n, "padding", p, 2);
    int64_t v[12] = {x->dim[0], x->dim[1], x->dim[2], x->dim[3], k[0], k[1],
                     s[0], s[1], p[0], p[1], y->dim[2], y->dim[3]};
    memcpy(a, v, sizeof v);
}

/* pool_args takes (x, y): the window's input and output shapes. */
static int a_maxpool(const Node *n, const Type *in0, const Type *in1, int64_t *a, int *nargs) {
    *nargs = 12;
    if (n->op == OP_MAXPOOL2D_BWD) return pool_args(n, in0, in1, a), CPU_MAXPOOL2D_BWD;
    pool_args(n, in0, &n->type, a);
    return n->op == OP_MAXPOOL2D ? CPU_MAXPOOL2D : CPU_MAXPOOL2D_SELECT;
}

/* x then y; arg 12 is count_include_pad */
static int a_avgpool(const Node *n, const Type *in0, const Type *in1, int64_t *a, int *nargs) {
    (void)in1;
    if (n->op == OP_AVGPOOL2D) pool_args(n, in0, &n->type, a);
    else pool_args(n, &n->type, in0, a);
    a[12] = node_int(n, "count_include_pad", 1) != 0;
    *nargs = 13;
    return n->op == OP_AVGPOOL2D ? CPU_AVGPOOL2D : CPU_AVGPOOL2D_BWD;
}

const CodegenOpRow ops_pool_codegen[] = {
    {OP_MAXPOOL2D, .lib = a_maxpool},
    {OP_MAXPOOL2D_BWD, .lib = a_maxpool},
    {OP_MAXPOOL2D_SELECT, .lib = a_maxpool},
    {OP_AVGPOOL2D, .lib = a_avgpool},
    {OP_AVGPOOL2D_BWD, .lib = a_avgpool},
    CODEGEN_ROWS_END,
};

#else
#error "ops/ files are compiled with IGRC_OPS_IR, IGRC_OPS_PASSES or IGRC_OPS_CODEGEN"
#endif
