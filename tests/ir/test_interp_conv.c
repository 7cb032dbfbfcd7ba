/* Reference interpreter: convolution and pooling. Hand cases with exact
 * numbers; conv2d against a separately written formula (explicit zero
 * padding, no bounds checks); the backward kernels against the adjoint
 * identities; maxpool2d_bwd against finite differences. */
#include "tests/ir/interp_test_util.h"

typedef struct {
    int64_t N, C, H, W, O, KH, KW, sh, sw, ph, pw;
} Conv;

static const Conv CONVS[] = {
    {2, 3, 7, 6, 4, 3, 2, 2, 1, 1, 2}, /* OH 4, OW 9: padding wider than the kernel */
    {1, 2, 8, 8, 3, 3, 3, 2, 2, 1, 1}, /* (8 + 2 - 3) / 2 = 3.5 floors: OH 4 */
    {2, 1, 5, 5, 2, 5, 5, 1, 1, 0, 0}, /* kernel covers the input: 1x1 output */
    {1, 2, 4, 6, 1, 1, 3, 3, 2, 0, 1}, /* 1xK kernel, strides skip rows */
};

static int64_t out_dim(int64_t in, int64_t k, int64_t s, int64_t p) {
    return (in + 2 * p - k) / s + 1;
}

static Type conv_x(const Conv *c) { return TY(DT_F64, c->N, c->C, c->H, c->W); }
static Type conv_w(const Conv *c) { return TY(DT_F64, c->O, c->C, c->KH, c->KW); }
static Type conv_y(const Conv *c) {
    return TY(DT_F64, c->N, c->O, out_dim(c->H, c->KH, c->sh, c->ph),
              out_dim(c->W, c->KW, c->sw, c->pw));
}

/* Fills stride and padding, plus input_shape (bwd data) or kernel (bwd
 * filter); buf holds the lists. Returns the attribute count. */
static int conv_attrs(const Conv *c, OpKind op, Attr *at, int64_t *buf) {
    const int64_t v[10] = {c->sh, c->sw, c->ph, c->pw, c->N, c->C, c->H, c->W, c->KH, c->KW};
    memcpy(buf, v, sizeof v);
    at[0] = attr_ints("stride", buf, 2);
    at[1] = attr_ints("padding", buf + 2, 2);
    if (op == OP_CONV2D_BWD_DATA) at[2] = attr_ints("input_shape", buf + 4, 4);
    if (op == OP_CONV2D_BWD_FILTER) at[2] = attr_ints("kernel", buf + 8, 2);
    return op == OP_CONV2D ? 2 : 3;
}

static Value conv_op(const Conv *c, OpKind op, Value a, Value b, Type out) {
    Attr at[3];
    int64_t buf[10];
    int na = conv_attrs(c, op, at, buf);
    return eval_ok(op, at, na, (Value[]){a, b}, 2, out);
}

/* ---- conv2d ---- */

Test(interp_conv, hand_cases) {
    /* x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,2],[3,4]], stride 1, no pad:
     *   y00 = 1*1+2*2+4*3+5*4 = 37, y01 = 2+6+15+24 = 47,
     *   y10 = 4+10+21+32 = 67,      y11 = 5+12+24+36 = 77. */
    Value x = val(TY(DT_F64, 1, 1, 3, 3), D(1, 2, 3, 4, 5, 6, 7, 8, 9));
    Value w = val(TY(DT_F64, 1, 1, 2, 2), D(1, 2, 3, 4));
    Conv c1 = {1, 1, 3, 3, 1, 2, 2, 1, 1, 0, 0};
    Value y = conv_op(&c1, OP_CONV2D, x, w, conv_y(&c1));
    EXPECT(&y, 0, 37, 47, 67, 77);
    /* Stride 2, padding 1: windows start at -1 and 1 on each axis.
     *   y00: only tap (0,0) is inside, weight w11: 1*4 = 4
     *   y01: taps (0,1) w10 and (0,2) w11: 2*3 + 3*4 = 18
     *   y10: taps (1,0) w01 and (2,0) w11: 4*2 + 7*4 = 36
     *   y11: the full 2x2 window at (1,1): 5+12+24+36 = 77. */
    Conv c2 = {1, 1, 3, 3, 1, 2, 2, 2, 2, 1, 1};
    Value z = conv_op(&c2, OP_CONV2D, x, w, conv_y(&c2));
    EXPECT(&z, 0, 4, 18, 36, 77);
    /* Two channels, 1x1 kernels: out 0 = 2 ch0 - ch1, out 1 = ch1. */
    Value x2 = val(TY(DT_F64, 1, 2, 2, 2), D(1, 2, 3, 4, 5, 6, 7, 8));
    Value w2 = val(TY(DT_F64, 2, 2, 1, 1), D(2, -1, 0, 1));
    Conv c3 = {1, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0};
    Value v = conv_op(&c3, OP_CONV2D, x2, w2, conv_y(&c3));
    EXPECT(&v, 0, -3, -2, -1, 0, 5, 6, 7, 8);
    free_vals((Value[]){x, w, y, z, x2, w2, v}, 7);
}

/* Independent formula: copy x into an explicitly zero-padded buffer, then
 * correlate every output with its window read straight from the buffer. */
static double *conv_padded_ref(const Conv *c, const double *x, const double *w) {
    int64_t HP = c->H + 2 * c->ph, WP = c->W + 2 * c->pw;
    int64_t OH = out_dim(c->H, c->KH, c->sh, c->ph), OW = out_dim(c->W, c->KW, c->sw, c->pw);
    double *xp = calloc((size_t)(c->N * c->C * HP * WP), sizeof(double));
    double *y = calloc((size_t)(c->N * c->O * OH * OW), sizeof(double));
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t ch = 0; ch < c->C; ch++)
            for (int64_t h = 0; h < c->H; h++)
                for (int64_t q = 0; q < c->W; q++)
                    xp[((n * c->C + ch) * HP + h + c->ph) * WP + q + c->pw] =
                        x[((n * c->C + ch) * c->H + h) * c->W + q];
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t o = 0; o < c->O; o++)
            for (int64_t i = 0; i < OH; i++)
                for (int64_t j = 0; j < OW; j++) {
                    double s = 0;
                    for (int64_t ch = 0; ch < c->C; ch++)
                        for (int64_t a = 0; a < c->KH; a++)
                            for (int64_t b = 0; b < c->KW; b++)
                                s += xp[((n * c->C + ch) * HP + i * c->sh + a) * WP +
                                        j * c->sw + b] *
                                     w[((o * c->C + ch) * c->KH + a) * c->KW + b];
                    y[((n * c->O + o) * OH + i) * OW + j] = s;
                }
    free(xp);
    return y;
}

Test(interp_conv, matches_padded_formula) {
    uint64_t seed = 1;
    for (size_t t = 0; t < sizeof CONVS / sizeof CONVS[0]; t++) {
        const Conv *c = &CONVS[t];
        Value x = val_rand(conv_x(c), &seed), w = val_rand(conv_w(c), &seed);
        Value y = conv_op(c, OP_CONV2D, x, w, conv_y(c));
        double *ref = conv_padded_ref(c, x.data, w.data);
        expect_vals(&y, ref, type_numel(&y.type), 1e-14);
        free(ref);
        free_vals((Value[]){x, w, y}, 3);
    }
}

/* <dy, conv2d(x, w)> = <bwd_data(dy, w), x> = <bwd_filter(x, dy), w>. */
Test(interp_conv, adjoint_identities) {
    uint64_t seed = 2;
    for (size_t t = 0; t < sizeof CONVS / sizeof CONVS[0]; t++) {
        const Conv *c = &CONVS[t];
        Value x = val_rand(conv_x(c), &seed), w = val_rand(conv_w(c), &seed);
        Value dy = val_rand(conv_y(c), &seed);
        Value y = conv_op(c, OP_CONV2D, x, w, conv_y(c));
        Value dx = conv_op(c, OP_CONV2D_BWD_DATA, dy, w, conv_x(c));
        Value dw = conv_op(c, OP_CONV2D_BWD_FILTER, x, dy, conv_w(c));
        double lhs = dot(&dy, &y);
        expect_close(dot(&dx, &x), lhs, 1e-12, "<bwd_data(dy,w), x>");
        expect_close(dot(&dw, &w), lhs, 1e-12, "<bwd_filter(x,dy), w>");
        free_vals((Value[]){x, w, dy, y, dx, dw}, 6);
    }
}

Test(interp_conv, backward_hand_cases) {
    /* Stride 1: dy = [[1,0],[0,1]] drops w = [[1,2],[3,4]] at the top-left
     * and bottom-right of a 3x3 input; the centre gets 4 + 1 = 5. */
    Value x = val(TY(DT_F64, 1, 1, 3, 3), D(1, 2, 3, 4, 5, 6, 7, 8, 9));
    Value w = val(TY(DT_F64, 1, 1, 2, 2), D(1, 2, 3, 4));
    Value dy = val(TY(DT_F64, 1, 1, 2, 2), D(1, 0, 0, 1));
    Conv c1 = {1, 1, 3, 3, 1, 2, 2, 1, 1, 0, 0};
    Value dx = conv_op(&c1, OP_CONV2D_BWD_DATA, dy, w, conv_x(&c1));
    EXPECT(&dx, 0, 1, 2, 0, 3, 5, 2, 0, 3, 4);
    /* dw[a][b] = x[a][b] + x[1+a][1+b] = 1+5, 2+6, 4+8, 5+9. */
    Value dw = conv_op(&c1, OP_CONV2D_BWD_FILTER, x, dy, conv_w(&c1));
    EXPECT(&dw, 0, 6, 8, 12, 14);
    /* Stride 2, padding 1, dy = 1 everywhere: input row ih is reached by
     * exactly one (oh, kh): ih 0 <- kh 1, ih 1 <- kh 0, ih 2 <- kh 1 (same
     * for columns), so dx[ih][iw] = w[kh(ih)][kw(iw)]. Each tap (kh, kw)
     * sums x over ih in {1} (kh 0) or {0,2} (kh 1), likewise for columns:
     * dw = [[5, 4+6], [2+8, 1+3+7+9]]. Both give <.,.> = 135 =
     * 4+18+36+77, the forward hand case's sum. */
    Value ones = val(TY(DT_F64, 1, 1, 2, 2), D(1, 1, 1, 1));
    Conv c2 = {1, 1, 3, 3, 1, 2, 2, 2, 2, 1, 1};
    Value dx2 = conv_op(&c2, OP_CONV2D_BWD_DATA, ones, w, conv_x(&c2));
    EXPECT(&dx2, 0, 4, 3, 4, 2, 1, 2, 4, 3, 4);
    Value dw2 = conv_op(&c2, OP_CONV2D_BWD_FILTER, x, ones, conv_w(&c2));
    EXPECT(&dw2, 0, 5, 10, 10, 20);
    free_vals((Value[]){x, w, dy, dx, dw, ones, dx2, dw2}, 8);
}

Test(interp_conv, shape_errors) {
    Conv c = CONVS[0];
    Value in[2] = {val(conv_x(&c), NULL), val(conv_w(&c), NULL)};
    Attr at[3];
    int64_t buf[10];
    int na = conv_attrs(&c, OP_CONV2D, at, buf);
    Diag d = eval_fail(OP_CONV2D, at, na, in, 2, TY(DT_F64, 2, 4, 4, 8));
    cr_expect_eq(d.code, EXIT_BADINPUT);
    cr_expect(strstr(d.msg, "'y' (conv2d)") && strstr(d.msg, "f64[2,4,4,8]"), "%s", d.msg);
    free_vals(in, 2);
}

/* ---- max pooling ---- */

static Value pool(OpKind op, const int64_t *k, const int64_t *s, const int64_t *p,
                  const Value *in, int nin, Type out) {
    Attr a[3] = {attr_ints("kernel", k, 2), attr_ints("stride", s, 2), {0}};
    int na = 2;
    if (op == OP_MAXPOOL2D || op == OP_MAXPOOL2D_BWD || op == OP_MAXPOOL2D_SELECT)
        a[na++] = attr_ints("padding", p, 2);
    if (op == OP_AVGPOOL2D_BWD) a[na++] = attr_ints("input_shape", out.dim, 4);
    return eval_ok(op, a, na, in, nin, out);
}

Test(interp_maxpool, hand_cases) {
    /* x = 1..16 in a 4x4 plane; kernel 2 stride 2: 6, 8, 14, 16. */
    double v[16], neg[16];
    for (int i = 0; i < 16; i++) v[i] = i + 1, neg[i] = -(i + 1);
    Value x = val(TY(DT_F64, 1, 1, 4, 4), v), xn = val(TY(DT_F64, 1, 1, 4, 4), neg);
    Value y = pool(OP_MAXPOOL2D, DIMS(2, 2), DIMS(2, 2), DIMS(0, 0), &x, 1, TY(DT_F64, 1, 1, 2, 2));
    EXPECT(&y, 0, 6, 8, 14, 16);
    /* x = -(1..16), kernel 3 stride 2 padding 1 ((4+2-3)/2+1 = 2): window
     * (0,0) covers rows/cols -1..1, so -1 at (0,0) wins over padding, which
     * counts as -inf (zero padding would give 0). Then -2, -5, -6. */
    Value z = pool(OP_MAXPOOL2D, DIMS(3, 3), DIMS(2, 2), DIMS(1, 1), &xn, 1,
                   TY(DT_F64, 1, 1, 2, 2));
    EXPECT(&z, 0, -1, -2, -5, -6);
    free_vals((Value[]){x, xn, y, z}, 4);
}

Test(interp_maxpool, bwd_ties_and_nan) {
    /* x = [[1,3,3],[3,0,3]], kernel 2x2 stride 1: both windows hold tied 3s;
     * in row-major scan the first is (0,1) for both, so dx(0,1) = 10 + 100
     * and the other 3s get nothing. */
    Value in[2] = {val(TY(DT_F64, 1, 1, 2, 3), D(1, 3, 3, 3, 0, 3)),
                   val(TY(DT_F64, 1, 1, 1, 2), D(10, 100))};
    Value dx = pool(OP_MAXPOOL2D_BWD, DIMS(2, 2), DIMS(1, 1), DIMS(0, 0), in, 2, in[0].type);
    EXPECT(&dx, 0, 0, 110, 0, 0, 0, 0);
    Value y = pool(OP_MAXPOOL2D, DIMS(2, 2), DIMS(1, 1), DIMS(0, 0), in, 1, in[1].type);
    EXPECT(&y, 0, 3, 3);
    /* NaN is the maximum and the first NaN takes the gradient. */
    Value nn[2] = {val(TY(DT_F64, 1, 1, 2, 2), D(1, NAN, 3, NAN)),
                   val(TY(DT_F64, 1, 1, 1, 1), D(5))};
    Value yn = pool(OP_MAXPOOL2D, DIMS(2, 2), DIMS(1, 1), DIMS(0, 0), nn, 1, nn[1].type);
    EXPECT(&yn, 0, NAN);
    Value dn = pool(OP_MAXPOOL2D_BWD, DIMS(2, 2), DIMS(1, 1), DIMS(0, 0), nn, 2, nn[0].type);
    EXPECT(&dn, 0, 0, 5, 0, 0);
    free_vals(in, 2);
    free_vals(nn, 2);
    free_vals((Value[]){dx, y, yn, dn}, 4);
}

Test(interp_maxpool, select_hand_cases) {
    /* x = [[1,3,3],[3,0,3]], kernel 2x2 stride 1: both windows pick (0,1),
     * so select reads g(0,1) = 20 twice. */
    Value in[2] = {val(TY(DT_F64, 1, 1, 2, 3), D(1, 3, 3, 3, 0, 3)),
                   val(TY(DT_F64, 1, 1, 2, 3), D(10, 20, 30, 40, 50, 60))};
    Value y = pool(OP_MAXPOOL2D_SELECT, DIMS(2, 2), DIMS(1, 1), DIMS(0, 0), in, 2,
                   TY(DT_F64, 1, 1, 1, 2));
    EXPECT(&y, 0, 20, 20);
    /* x = -(1..16) in 4x4, kernel 3 stride 2 padding 1: the picks are
     * -1 (0,0), -2 (0,1), -5 (1,0), -6 (1,1), so g = 0..15 gives 0, 1, 4, 5. */
    double neg[16], g[16];
    for (int i = 0; i < 16; i++) neg[i] = -(i + 1), g[i] = i;
    Value r[2] = {val(TY(DT_F64, 1, 1, 4, 4), neg), val(TY(DT_F64, 1, 1, 4, 4), g)};
    Value z = pool(OP_MAXPOOL2D_SELECT, DIMS(3, 3), DIMS(2, 2), DIMS(1, 1), r, 2,
                   TY(DT_F64, 1, 1, 2, 2));
    EXPECT(&z, 0, 0, 1, 4, 5);
    free_vals(in, 2);
    free_vals(r, 2);
    free_vals((Value[]){y, z}, 2);
}

typedef struct {
    int64_t k[2], s[2], p[2];
} PoolCfg;

/* For fixed x, maxpool2d_select(x, .) is the transpose of
 * maxpool2d_bwd(x, .): <bwd(x, dy), g> = <dy, select(x, g)>. */
Test(interp_maxpool, select_is_bwd_transpose) {
    static const PoolCfg cfgs[] = {{{3, 3}, {2, 2}, {1, 1}}, {{2, 2}, {1, 1}, {0, 0}},
                                   {{3, 2}, {1, 2}, {1, 0}}};
    Type xt = TY(DT_F64, 2, 3, 5, 6);
    uint64_t seed = 6;
    for (size_t t = 0; t < sizeof cfgs / sizeof cfgs[0]; t++) {
        const PoolCfg *c = &cfgs[t];
        Type yt = TY(DT_F64, 2, 3, out_dim(5, c->k[0], c->s[0], c->p[0]),
                     out_dim(6, c->k[1], c->s[1], c->p[1]));
        Value x = val_rand(xt, &seed), g = val_rand(xt, &seed), dy = val_rand(yt, &seed);
        Value dx = pool(OP_MAXPOOL2D_BWD, c->k, c->s, c->p, (Value[]){x, dy}, 2, xt);
        Value sel = pool(OP_MAXPOOL2D_SELECT, c->k, c->s, c->p, (Value[]){x, g}, 2, yt);
        expect_close(dot(&dx, &g), dot(&dy, &sel), 1e-12, "<bwd(x,dy), g>");
        free_vals((Value[]){x, g, dy, dx, sel}, 5);
    }
}

/* maxpool is piecewise linear: away from ties the central difference of
 * L(x) = <dy, maxpool(x)> is exact up to rounding and must equal
 * maxpool2d_bwd(x, dy). x is a permutation of a grid with step 0.01, so
 * no two values are closer than 0.01 and a 1e-4 nudge changes no argmax. */
Test(interp_maxpool, bwd_is_the_derivative) {
    static const PoolCfg cfgs[] = {{{3, 3}, {2, 2}, {1, 1}}, /* padded, overlapping */
                                   {{2, 2}, {1, 1}, {0, 0}}, /* stride 1, overlapping */
                                   {{3, 2}, {1, 2}, {1, 0}}};
    Type xt = TY(DT_F64, 2, 2, 5, 6);
    uint64_t seed = 4;
    const double eps = 1e-4;
    for (size_t t = 0; t < sizeof cfgs / sizeof cfgs[0]; t++) {
        const PoolCfg *c = &cfgs[t];
        Type yt = TY(DT_F64, 2, 2, out_dim(5, c->k[0], c->s[0], c->p[0]),
                     out_dim(6, c->k[1], c->s[1], c->p[1]));
        Value in[2] = {val(xt, NULL), val_rand(yt, &seed)};
        for (int i = 0; i < 120; i++) in[0].data[i] = (double)((i * 37) % 120) * 0.01 - 0.6;
        Value dx = pool(OP_MAXPOOL2D_BWD, c->k, c->s, c->p, in, 2, xt);
        for (int i = 0; i < 120; i++) {
            double x0 = in[0].data[i], l[2];
            for (int side = 0; side < 2; side++) {
                in[0].data[i] = x0 + (side ? -eps : eps);
                Value y = pool(OP_MAXPOOL2D, c->k, c->s, c->p, in, 1, yt);
                l[side] = dot(&y, &in[1]);
                value_free(&y);
            }
            in[0].data[i] = x0;
            expect_close(dx.data[i], (l[0] - l[1]) / (2 * eps), 1e-8, "d<dy,maxpool>/dx");
        }
        free_vals(in, 2);
        value_free(&dx);
    }
}

/* ---- average pooling ---- */

Test(interp_avgpool, hand_cases) {
    /* x = 1..16 in 4x4. Kernel 2 stride 2: (1+2+5+6)/4 = 3.5, then 5.5,
     * 11.5, 13.5. Kernel 3 stride 1: a 3x3 window of this linear grid
     * averages to its centre: 6, 7, 10, 11. */
    double v[16];
    for (int i = 0; i < 16; i++) v[i] = i + 1;
    Value x = val(TY(DT_F64, 1, 1, 4, 4), v);
    Value y = pool(OP_AVGPOOL2D, DIMS(2, 2), DIMS(2, 2), NULL, &x, 1, TY(DT_F64, 1, 1, 2, 2));
    EXPECT(&y, 0, 3.5, 5.5, 11.5, 13.5);
    Value z = pool(OP_AVGPOOL2D, DIMS(3, 3), DIMS(1, 1), NULL, &x, 1, TY(DT_F64, 1, 1, 2, 2));
    EXPECT(&z, 1e-15, 6, 7, 10, 11);
    /* Backward, kernel 3 stride 1, dy = 9: each input gets 9/9 = 1 per
     * window containing it, i.e. its window count. */
    Value dy = val(TY(DT_F64, 1, 1, 2, 2), D(9, 9, 9, 9));
    Value dx = pool(OP_AVGPOOL2D_BWD, DIMS(3, 3), DIMS(1, 1), NULL, &dy, 1, x.type);
    EXPECT(&dx, 0, 1, 2, 2, 1, 2, 4, 4, 2, 2, 4, 4, 2, 1, 2, 2, 1);
    free_vals((Value[]){x, y, z, dy, dx}, 5);
}

/* avgpool is linear, so its backward is its adjoint:
 * <dy, avgpool(x)> = <avgpool_bwd(dy), x>. */
Test(interp_avgpool, bwd_adjoint) {
    static const PoolCfg cfgs[] = {{{2, 2}, {2, 2}, {0, 0}},
                                   {{3, 3}, {1, 1}, {0, 0}},
                                   {{2, 3}, {1, 2}, {0, 0}}};
    Type xt = TY(DT_F64, 2, 3, 5, 7);
    uint64_t seed = 8;
    for (size_t t = 0; t < sizeof cfgs / sizeof cfgs[0]; t++) {
        const PoolCfg *c = &cfgs[t];
        Type yt = TY(DT_F64, 2, 3, out_dim(5, c->k[0], c->s[0], 0),
                     out_dim(7, c->k[1], c->s[1], 0));
        Value x = val_rand(xt, &seed), dy = val_rand(yt, &seed);
        Value y = pool(OP_AVGPOOL2D, c->k, c->s, NULL, &x, 1, yt);
        Value dx = pool(OP_AVGPOOL2D_BWD, c->k, c->s, NULL, &dy, 1, xt);
        expect_close(dot(&dx, &x), dot(&dy, &y), 1e-12, "<avgpool_bwd(dy), x>");
        free_vals((Value[]){x, dy, y, dx}, 4);
    }
}

/* ---- padded average pooling (PyTorch's avg_pool2d, ceil_mode=False) ---- */

/* avgpool2d / avgpool2d_bwd with padding p and count_include_pad cip
 * (-1: the attribute absent, which means 1). */
static Value avg(OpKind op, const int64_t *k, const int64_t *s, const int64_t *p, int cip,
                 const Value *in, Type out) {
    Attr a[5] = {attr_ints("kernel", k, 2), attr_ints("stride", s, 2), attr_ints("padding", p, 2)};
    int na = 3;
    if (cip >= 0) a[na++] = attr_int("count_include_pad", cip);
    if (op == OP_AVGPOOL2D_BWD) a[na++] = attr_ints("input_shape", out.dim, 4);
    return eval_ok(op, a, na, in, 1, out);
}

/* x = 1..9 in a 3x3 plane, kernel 3, stride 1, padding 1: window (0,0)
 * holds 1 2 / 4 5 and five padded zeros, so it is 12/9 with padding
 * counted and 12/4 = 3 without; the centre window holds all nine (45/9 = 5
 * either way); the edge window (0,1) holds 1 2 3 / 4 5 6 (21/9 or 21/6). */
Test(interp_avgpool, padded_hand_case) {
    double v[9];
    for (int i = 0; i < 9; i++) v[i] = i + 1;
    Value x = val(TY(DT_F64, 1, 1, 3, 3), v);
    Type yt = TY(DT_F64, 1, 1, 3, 3);
    Value in_pad = avg(OP_AVGPOOL2D, DIMS(3, 3), DIMS(1, 1), DIMS(1, 1), -1, &x, yt);
    EXPECT(&in_pad, 1e-15, 12 / 9.0, 21 / 9.0, 16 / 9.0, 27 / 9.0, 5, 33 / 9.0, 24 / 9.0,
           39 / 9.0, 28 / 9.0);
    Value ex_pad = avg(OP_AVGPOOL2D, DIMS(3, 3), DIMS(1, 1), DIMS(1, 1), 0, &x, yt);
    EXPECT(&ex_pad, 1e-15, 3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7);
    /* Backward without padding counted, dy = 1 at the corner window (0,0)
     * only: its four in-bounds taps get 1/4, the rest 0. */
    Value dy = val(yt, D(1, 0, 0, 0, 0, 0, 0, 0, 0));
    Value dx = avg(OP_AVGPOOL2D_BWD, DIMS(3, 3), DIMS(1, 1), DIMS(1, 1), 0, &dy, x.type);
    EXPECT(&dx, 0, 0.25, 0.25, 0, 0.25, 0.25, 0, 0, 0, 0);
    free_vals((Value[]){x, in_pad, ex_pad, dy, dx}, 5);
}

/* Values against the definition written out here: y = sum of the in-bounds
 * taps / (KH KW or their count); dx = the sum, over the windows holding a
 * position, of dy / that window's divisor. Odd sizes, padding 1 and mixed,
 * strides 1 and 2, both modes; plus the adjoint identity. */
Test(interp_avgpool, padded_against_definition) {
    static const PoolCfg cfgs[] = {{{3, 3}, {1, 1}, {1, 1}}, {{3, 3}, {2, 2}, {1, 1}},
                                   {{2, 3}, {2, 1}, {1, 1}}, {{3, 2}, {2, 2}, {1, 0}},
                                   {{5, 3}, {1, 2}, {2, 0}}, {{2, 2}, {2, 2}, {0, 0}}};
    const int64_t N = 2, C = 3, H = 5, W = 7;
    Type xt = TY(DT_F64, N, C, H, W);
    uint64_t seed = 15;
    for (size_t t = 0; t < sizeof cfgs / sizeof cfgs[0]; t++)
        for (int cip = 0; cip < 2; cip++) {
            const PoolCfg *c = &cfgs[t];
            int64_t OH = (H + 2 * c->p[0] - c->k[0]) / c->s[0] + 1;
            int64_t OW = (W + 2 * c->p[1] - c->k[1]) / c->s[1] + 1;
            Type yt = TY(DT_F64, N, C, OH, OW);
            Value x = val_rand(xt, &seed), dy = val_rand(yt, &seed);
            Value y = avg(OP_AVGPOOL2D, c->k, c->s, c->p, cip, &x, yt);
            Value dx = avg(OP_AVGPOOL2D_BWD, c->k, c->s, c->p, cip, &dy, xt);
            double *want_dx = calloc((size_t)(N * C * H * W), sizeof(double));
            for (int64_t pl = 0; pl < N * C; pl++)
                for (int64_t oh = 0; oh < OH; oh++)
                    for (int64_t ow = 0; ow < OW; ow++) {
                        double sum = 0, count = 0;
                        for (int64_t kh = 0; kh < c->k[0]; kh++)
                            for (int64_t kw = 0; kw < c->k[1]; kw++) {
                                int64_t ih = oh * c->s[0] - c->p[0] + kh;
                                int64_t iw = ow * c->s[1] - c->p[1] + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                sum += x.data[(pl * H + ih) * W + iw];
                                count++;
                            }
                        double div = cip ? (double)(c->k[0] * c->k[1]) : count;
                        int64_t o = (pl * OH + oh) * OW + ow;
                        expect_close(y.data[o], sum / div, 1e-13, "avgpool2d");
                        for (int64_t kh = 0; kh < c->k[0]; kh++)
                            for (int64_t kw = 0; kw < c->k[1]; kw++) {
                                int64_t ih = oh * c->s[0] - c->p[0] + kh;
                                int64_t iw = ow * c->s[1] - c->p[1] + kw;
                                if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                                    want_dx[(pl * H + ih) * W + iw] += dy.data[o] / div;
                            }
                    }
            for (int64_t i = 0; i < N * C * H * W; i++)
                expect_close(dx.data[i], want_dx[i], 1e-13, "avgpool2d_bwd");
            expect_close(dot(&dx, &x), dot(&dy, &y), 1e-12, "<avgpool_bwd(dy), x>");
            free(want_dx);
            free_vals((Value[]){x, dy, y, dx}, 4);
        }
}

/* Padding beyond half the kernel is refused (PyTorch's rule; it would
 * leave windows of padding only). */
Test(interp_avgpool, padding_over_half_kernel) {
    Value x = val(TY(DT_F64, 1, 1, 4, 4), NULL);
    Attr a[3] = {attr_ints("kernel", DIMS(2, 2), 2), attr_ints("stride", DIMS(1, 1), 2),
                 attr_ints("padding", DIMS(2, 0), 2)};
    Diag d = eval_fail(OP_AVGPOOL2D, a, 3, &x, 1, TY(DT_F64, 1, 1, 7, 3));
    cr_expect_eq(d.code, EXIT_BADINPUT);
    cr_expect(strstr(d.msg, "half the kernel"), "%s", d.msg);
    free_vals(&x, 1);
}
