/* The linalg family: matmul, conv2d, conv2d_bwd_data, conv2d_bwd_filter
 * (semantics: ir/ops.h). Each section below is compiled into one layer's
 * library and ends with that layer's rows for these ops (docs/architecture.md,
 * "Folders and dependency direction"). */
#if defined(IGRC_OPS_IR)

#include "ir/op_rows.h"

/* ---- shape rules ---- */

static bool matmul_rule(Rule *r, Type *out) {
    const Type *a = r->in[0], *b = r->in[1];
    int k = a->rank;
    if (k < 2 || b->rank != k || a->dtype != b->dtype || !dtype_is_float(a->dtype))
        return shape_fail_types(r, "expects float operands of equal rank >= 2", a, b);
    for (int i = 0; i < k - 2; i++)
        if (a->dim[i] != b->dim[i]) return shape_fail_types(r, "batch dims differ", a, b);
    if (a->dim[k - 1] != b->dim[k - 2]) return shape_fail_types(r, "inner dims differ", a, b);
    *out = *a;
    out->dim[k - 1] = b->dim[k - 1];
    return true;
}

static bool conv_out(Rule *r, const Type *x, int64_t o, int64_t kh, int64_t kw, Type *out) {
    int64_t st[2] = {1, 1}, pd[2] = {0, 0};
    shape_ints(r, "stride", st);
    shape_ints(r, "padding", pd);
    *out = *x;
    out->dim[1] = o;
    if (!shape_window_out(x->dim[2], kh, st[0], pd[0], &out->dim[2]) ||
        !shape_window_out(x->dim[3], kw, st[1], pd[1], &out->dim[3]))
        return shape_fail_type(r, "the kernel does not fit the input", x);
    return true;
}

static bool conv_rule(Rule *r, Type *out) {
    const Type *x = r->in[0], *w = r->in[1];
    if (x->rank != 4 || w->rank != 4 || x->dtype != w->dtype || !dtype_is_float(x->dtype))
        return shape_fail_types(r, "expects float x[N,C,H,W] and w[O,C,KH,KW]", x, w);
    if (x->dim[1] != w->dim[1]) return shape_fail_types(r, "input channels differ", x, w);
    return conv_out(r, x, w->dim[0], w->dim[2], w->dim[3], out);
}

static bool conv_bwd_data_rule(Rule *r, Type *out) {
    const Type *dy = r->in[0], *w = r->in[1];
    int64_t is[4];
    if (dy->rank != 4 || w->rank != 4 || shape_ints(r, "input_shape", is) != 4)
        return shape_fail_types(r, "expects dy[N,O,OH,OW], w[O,C,KH,KW], input_shape[4]", dy, w);
    Type x = type_make(dy->dtype, 4, is), y;
    if (x.dim[1] != w->dim[1] || x.dim[0] != dy->dim[0] || dy->dim[1] != w->dim[0])
        return shape_fail_types(r, "channels differ", dy, w);
    if (!conv_out(r, &x, w->dim[0], w->dim[2], w->dim[3], &y)) return false;
    if (!type_same_shape(&y, dy)) return shape_fail_types(r, "dy is not conv2d's output shape", dy, &y);
    *out = x;
    return true;
}

static bool conv_bwd_filter_rule(Rule *r, Type *out) {
    const Type *x = r->in[0], *dy = r->in[1];
    int64_t k[2];
    if (x->rank != 4 || dy->rank != 4 || shape_ints(r, "kernel", k) != 2 || x->dtype != dy->dtype)
        return shape_fail_types(r, "expects x[N,C,H,W], dy[N,O,OH,OW], kernel[2]", x, dy);
    Type y;
    if (!conv_out(r, x, dy->dim[1], k[0], k[1], &y)) return false;
    if (!type_same_shape(&y, dy)) return shape_fail_types(r, "dy is not conv2d's output shape", dy, &y);
    int64_t dims[4] = {dy->dim[1], x->dim[1], k[0], k[1]};
    *out = type_make(x->dtype, 4, dims);
    return true;
}

/* ---- interpreter kernels ---- */

/* matmul a[..,M,K] x b[..,K,N] -> [..,M,N], leading dims equal; each dot
 * product accumulates in double in k order. */
static bool k_matmul(const Node *n, const Value *in, Value *out, Diag *d) {
    const Type *a = &in[0].type, *b = &in[1].type;
    int r = a->rank;
    Type want = *a;
    if (r < 2 || b->rank != r || a->dim[r - 1] != b->dim[r - 2])
        return kfail(n, d, EXIT_BADINPUT, "operands are not [..,M,K] and [..,K,N]");
    for (int j = 0; j < r - 2; j++)
        if (a->dim[j] != b->dim[j]) return kfail(n, d, EXIT_BADINPUT, "batch dims differ");
    want.dim[r - 1] = b->dim[r - 1];
    if (!need_result(n, &want, &out->type, d)) return false;
    int64_t M = a->dim[r - 2], K = a->dim[r - 1], N = b->dim[r - 1], batch = 1;
    for (int j = 0; j < r - 2; j++) batch *= a->dim[j];
    for (int64_t t = 0; t < batch; t++) {
        const double *pa = in[0].data + t * M * K, *pb = in[1].data + t * K * N;
        double *py = out->data + t * M * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0.0;
                for (int64_t k = 0; k < K; k++) s += pa[i * K + k] * pb[k * N + j];
                py[i * N + j] = s;
            }
    }
    return true;
}

/* Convolution: one loop nest that visits every (output position,
 * window tap) pair. The forward kernel gathers along it; the backward
 * kernels scatter along the very same pairs. Being literal transposes of
 * the forward loop, they satisfy the adjoint identities
 *   <dy, conv2d(x, w)> = <conv2d_bwd_data(dy, w), x>
 *                      = <conv2d_bwd_filter(x, dy), w>
 * up to rounding, with no second formula that could drift from the first. */

typedef struct {
    int64_t N, C, H, W, O, KH, KW, OH, OW, sh, sw, ph, pw;
} ConvGeom;

typedef enum { CONV_FWD, CONV_BWD_DATA, CONV_BWD_FILTER } ConvMode;

/* Checks that x[N,C,H,W], w[O,C,KH,KW] and y[N,O,OH,OW] belong together
 * under the node's stride and padding, whichever of them is the result. */
static bool conv_setup(const Node *n, const Type *x, const Type *w, const Type *y,
                       ConvGeom *g, Diag *d) {
    int64_t s[2] = {1, 1}, p[2] = {0, 0};
    if (!need_pair(n, "stride", 1, s, d) || !need_pair(n, "padding", 0, p, d)) return false;
    if (x->rank != 4 || w->rank != 4 || y->rank != 4) return kfail_shapes(n, x, w, y, d);
    *g = (ConvGeom){x->dim[0], x->dim[1], x->dim[2], x->dim[3], w->dim[0], w->dim[2],
                    w->dim[3], y->dim[2], y->dim[3], s[0], s[1], p[0], p[1]};
    if (w->dim[1] != g->C || y->dim[0] != g->N || y->dim[1] != g->O ||
        window_extent(g->H, g->KH, g->sh, g->ph) != g->OH ||
        window_extent(g->W, g->KW, g->sw, g->pw) != g->OW)
        return kfail_shapes(n, x, w, y, d);
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
static bool k_conv2d(const Node *n, const Value *in, Value *out, Diag *d) {
    ConvGeom g;
    if (!conv_setup(n, &in[0].type, &in[1].type, &out->type, &g, d)) return false;
    conv_visit(&g, CONV_FWD, in[0].data, in[1].data, out->data);
    return true;
}

/* conv2d_bwd_data(dy, w) {stride, padding, input_shape}: d<dy,conv>/dx. */
static bool k_conv2d_bwd_data(const Node *n, const Value *in, Value *out, Diag *d) {
    int64_t is[5];
    ConvGeom g;
    if (node_ints(n, "input_shape", is, 5) == 4) {
        Type want = type_make(out->type.dtype, 4, is);
        if (!type_same_shape(&want, &out->type))
            return kfail_shapes(n, &out->type, &in[1].type, &in[0].type, d);
    }
    if (!conv_setup(n, &out->type, &in[1].type, &in[0].type, &g, d)) return false;
    conv_visit(&g, CONV_BWD_DATA, out->data, in[1].data, in[0].data);
    return true;
}

/* conv2d_bwd_filter(x, dy) {stride, padding, kernel}: d<dy,conv>/dw. */
static bool k_conv2d_bwd_filter(const Node *n, const Value *in, Value *out, Diag *d) {
    int64_t k[2] = {0, 0};
    ConvGeom g;
    if (!need_pair(n, "kernel", -1, k, d)) return false;
    if (out->type.rank != 4 || out->type.dim[2] != k[0] || out->type.dim[3] != k[1])
        return kfail_shapes(n, &in[0].type, &out->type, &in[1].type, d);
    if (!conv_setup(n, &in[0].type, &out->type, &in[1].type, &g, d)) return false;
    conv_visit(&g, CONV_BWD_FILTER, in[0].data, out->data, in[1].data);
    return true;
}

/* ---- flops: a multiply-add counts 2 ---- */

/* conv2d and its two backward ops: 2 * (dy elements) * (C * KH * KW). */
static int64_t conv_flops(const Function *f, const Node *n) {
    const Type *t = &n->type;
    if (n->op == OP_CONV2D) {
        const Type *w = flops_in_type(f, n, 1);
        return 2 * type_numel(t) * w->dim[1] * w->dim[2] * w->dim[3];
    }
    const Type *a = flops_in_type(f, n, 0), *b = flops_in_type(f, n, 1);
    const Type *dy = n->op == OP_CONV2D_BWD_DATA ? a : b;
    const Type *w = n->op == OP_CONV2D_BWD_DATA ? b : t;
    return 2 * type_numel(dy) * w->dim[1] * w->dim[2] * w->dim[3];
}

static int64_t matmul_flops(const Function *f, const Node *n) {
    const Type *a = flops_in_type(f, n, 0);
    return 2 * type_numel(&n->type) * a->dim[a->rank - 1];
}

const IrOpRow ops_linalg_ir[] = {
    {OP_ROW(MATMUL, "matmul", 2, 2, PK_COMPLEX, OC_PRIMITIVE, NO_ATTRS),
     .shape = matmul_rule, .kernel = k_matmul, .flops = matmul_flops},
    {OP_ROW(CONV2D, "conv2d", 2, 2, PK_COMPLEX, OC_PRIMITIVE,
            ATTRS(A_WIN("padding", 0), A_WIN("stride", 1))),
     .shape = conv_rule, .kernel = k_conv2d, .flops = conv_flops},
    {OP_ROW(CONV2D_BWD_DATA, "conv2d_bwd_data", 2, 2, PK_COMPLEX, OC_PRIMITIVE,
            ATTRS(A_REQ_INTS("input_shape", 4, 1, A_BIG), A_WIN("padding", 0), A_WIN("stride", 1))),
     .shape = conv_bwd_data_rule, .kernel = k_conv2d_bwd_data, .flops = conv_flops},
    {OP_ROW(CONV2D_BWD_FILTER, "conv2d_bwd_filter", 2, 2, PK_COMPLEX, OC_PRIMITIVE,
            ATTRS(A_WIN("kernel", 1), A_WIN("padding", 0), A_WIN("stride", 1))),
     .shape = conv_bwd_filter_rule, .kernel = k_conv2d_bwd_filter, .flops = conv_flops},
    IR_ROWS_END,
};

#elif defined(IGRC_OPS_PASSES)

#include "passes/vjp_rule.h"

/* ---- VJPs ---- */

static int swap_last(VjpCtx *c, const char *part, int v) {
    int r = ty(c, v)->rank;
    int64_t p[IR_MAX_RANK];
    for (int i = 0; i < r; i++) p[i] = i;
    p[r - 2] = r - 1;
    p[r - 1] = r - 2;
    Attr a = attr_ints("perm", p, r);
    return b_node(c->b, OP_TRANSPOSE, nm(c, part), &v, 1, &a, 1);
}

static int matmul_rule(VjpCtx *c, int i) {
    int ins[2];
    if (i == 0) ins[0] = c->ct, ins[1] = swap_last(c, "bT", in(c, 1));
    else ins[0] = swap_last(c, "aT", in(c, 0)), ins[1] = c->ct;
    return b_node(c->b, OP_MATMUL, nm(c, i == 0 ? "matmul.a" : "matmul.b"), ins, 2, NULL, 0);
}

/* conv2d and its two backward ops are each other's adjoints:
 * <ct, conv(x,w)> = <bwd_data(ct,w), x> = <bwd_filter(x,ct), w>. */
static int conv_family_rule(VjpCtx *c, int i) {
    int64_t st[2], pd[2];
    node_ints(c->n, "stride", st, 2);
    node_ints(c->n, "padding", pd, 2);
    Attr a[3] = {attr_ints("stride", st, 2), attr_ints("padding", pd, 2)};
    const Type *w;
    int ins[2];
    if (c->n->op == OP_CONV2D) {
        if (i == 0) {
            ins[0] = c->ct, ins[1] = in(c, 1);
            a[2] = shape_attr("input_shape", ty(c, in(c, 0)));
            return b_node(c->b, OP_CONV2D_BWD_DATA, nm(c, "conv.x"), ins, 2, a, 3);
        }
        w = ty(c, in(c, 1));
        ins[0] = in(c, 0), ins[1] = c->ct;
        a[2] = attr_ints("kernel", &w->dim[2], 2);
        return b_node(c->b, OP_CONV2D_BWD_FILTER, nm(c, "conv.w"), ins, 2, a, 3);
    }
    if (c->n->op == OP_CONV2D_BWD_DATA) { /* (dy, w) -> dx */
        if (i == 0) {
            ins[0] = c->ct, ins[1] = in(c, 1);
            return b_node(c->b, OP_CONV2D, nm(c, "bwd_data.dy"), ins, 2, a, 2);
        }
        w = ty(c, in(c, 1));
        ins[0] = c->ct, ins[1] = in(c, 0);
        a[2] = attr_ints("kernel", &w->dim[2], 2);
        return b_node(c->b, OP_CONV2D_BWD_FILTER, nm(c, "bwd_data.w"), ins, 2, a, 3);
    }
    /* OP_CONV2D_BWD_FILTER: (x, dy) -> dw */
    if (i == 0) {
        ins[0] = in(c, 1), ins[1] = c->ct;
        a[2] = shape_attr("input_shape", ty(c, in(c, 0)));
        return b_node(c->b, OP_CONV2D_BWD_DATA, nm(c, "bwd_filter.x"), ins, 2, a, 3);
    }
    ins[0] = in(c, 0), ins[1] = c->ct;
    return b_node(c->b, OP_CONV2D, nm(c, "bwd_filter.dy"), ins, 2, a, 2);
}

const PassOpRow ops_linalg_passes[] = {
    {OP_MATMUL, .vjp = matmul_rule},
    {OP_CONV2D, .vjp = conv_family_rule},
    {OP_CONV2D_BWD_DATA, .vjp = conv_family_rule},
    {OP_CONV2D_BWD_FILTER, .vjp = conv_family_rule},
    PASS_ROWS_END,
};

#elif defined(IGRC_OPS_CODEGEN)

#include <string.h>

#include "codegen/codegen_rows.h"
#include "runtime/cpu/cpu_ops.h"

/* ---- library calls (program_build.c): a complex op runs as one CPU
 * library call before its fused group's kernel ---- */

static void conv_args(const Node *n, const Type *x, const Type *w, const Type *y, int64_t *a) {
    int64_t s[2], p[2];
    node_ints(n, "stride", s, 2);
    node_ints(n, "padding", p, 2);
    int64_t v[13] = {x->dim[0], x->dim[1], x->dim[2], x->dim[3], w->dim[0], w->dim[2], w->dim[3],
                     s[0], s[1], p[0], p[1], y->dim[2], y->dim[3]};
    memcpy(a, v, sizeof v);
}

static int a_matmul(const Node *n, const Type *in0, const Type *in1, int64_t *a, int *nargs) {
    const Type *out = &n->type;
    int r = out->rank;
    int64_t batch = 1;
    for (int i = 0; i < r - 2; i++) batch *= out->dim[i];
    int64_t v[6] = {batch, in0->dim[r - 2], in0->dim[r - 1], in1->dim[r - 1], 0, 0};
    memcpy(a, v, sizeof v);
    *nargs = 6;
    return CPU_MATMUL;
}

/* conv_args takes (x, w, y) whichever operand or result each is. */
static int a_conv(const Node *n, const Type *in0, const Type *in1, int64_t *a, int *nargs) {
    const Type *out = &n->type;
    *nargs = 13;
    if (n->op == OP_CONV2D) return conv_args(n, in0, in1, out, a), CPU_CONV2D;
    if (n->op == OP_CONV2D_BWD_DATA) return conv_args(n, out, in1, in0, a), CPU_CONV2D_BWD_DATA;
    return conv_args(n, in0, out, in1, a), CPU_CONV2D_BWD_FILTER;
}

const CodegenOpRow ops_linalg_codegen[] = {
    {OP_MATMUL, .lib = a_matmul},
    {OP_CONV2D, .lib = a_conv},
    {OP_CONV2D_BWD_DATA, .lib = a_conv},
    {OP_CONV2D_BWD_FILTER, .lib = a_conv},
    CODEGEN_ROWS_END,
};

#else
#error "ops/ files are compiled with IGRC_OPS_IR, IGRC_OPS_PASSES or IGRC_OPS_CODEGEN"
#endif
