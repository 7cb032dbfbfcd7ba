/* The loss and similarity composites (kl_div, cosine_similarity, mart_bce,
 * pearson) and grouped batch norm: values after decomposition against the
 * formulas of SPEC §2-§3 written out in plain C, and first and second
 * derivatives against finite differences (fd_harness.h). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fd_harness.h"
#include "ir/builder.h"
#include "ir/interp.h"
#include "ir/print.h"
#include "passes/pass.h"

#define TOL 1e-12

/* ---- running one composite ---- */

typedef struct {
    Type t;
    double *data;
} Operand;

static Operand operand(DType dt, int rank, const int64_t *dims) {
    Type t = type_make(dt, rank, dims);
    return (Operand){t, calloc((size_t)type_numel(&t) + 1, sizeof(double))};
}

static void rand_fill(Operand *o, double lo, double hi) {
    for (int64_t i = 0; i < type_numel(&o->t); i++) o->data[i] = lo + (hi - lo) * urand();
}

static void free_operands(Operand *o, int n) {
    for (int i = 0; i < n; i++) free(o[i].data);
}

/* y = op(x0, x1, ...) through the pipeline and the f64 interpreter;
 * returns y's data (malloc'd) and its type. */
static double *eval(OpKind op, const Attr *attrs, int nattrs, const Operand *in, int nin,
                    Type *yt) {
    Module *m = module_new("c");
    Diag d;
    diag_init(&d);
    Builder b = {m, module_add_func(m, "f"), &d};
    int ids[8];
    NamedValue nv[8];
    static const char *names[8] = {"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"};
    for (int i = 0; i < nin; i++) {
        ids[i] = b_input(&b, names[i], in[i].t);
        nv[i] = (NamedValue){names[i], in[i].t, in[i].data};
    }
    int y = b_node(&b, op, "y", ids, nin, attrs, nattrs);
    cr_assert(y >= 0, "build: %s", d.msg);
    func_add_output(m, b.f, "y", y);
    PipelineOptions po = {.verify_each = true};
    cr_assert(pipeline_run(m, &po, &d), "pipeline: %s", d.msg);
    NamedValue *out;
    int nout;
    InterpOptions o = {INTERP_F64};
    cr_assert(interp_run(m, b.f, &o, nv, nin, NULL, 0, &out, &nout, &d), "interp: %s", d.msg);
    *yt = out[0].type;
    double *r = malloc(sizeof(double) * (size_t)(type_numel(yt) + 1));
    memcpy(r, out[0].data, sizeof(double) * (size_t)type_numel(yt));
    named_values_free(out, nout);
    module_free(m);
    return r;
}

/* The reduction of per-row reference values as the op's attribute says. */
static void expect_reduced(const double *got, const Type *yt, const double *rows, int64_t n,
                           const char *red, const char *what) {
    if (strcmp(red, "none") == 0) {
        cr_assert_eq(yt->rank, 1, "%s: rank", what);
        for (int64_t i = 0; i < n; i++)
            cr_expect(fabs(got[i] - rows[i]) <= TOL * (1 + fabs(rows[i])),
                      "%s row %lld: %.17g vs %.17g", what, (long long)i, got[i], rows[i]);
        return;
    }
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += rows[i];
    if (strcmp(red, "mean") == 0) s /= (double)n;
    cr_assert_eq(yt->rank, 0, "%s: rank", what);
    cr_expect(fabs(got[0] - s) <= TOL * (1 + fabs(s)), "%s: %.17g vs %.17g", what, got[0], s);
}

/* ---- plain-C references ---- */

static void softmax_row(const double *z, int64_t c, double *p) {
    double s = 0;
    for (int64_t k = 0; k < c; k++) s += exp(z[k]);
    for (int64_t k = 0; k < c; k++) p[k] = exp(z[k]) / s;
}

/* KL(p || q) = sum p (log p - log(q [+ eps])). */
static double kl_row(const double *zp, const double *zq, int64_t c, double eps) {
    double p[64], q[64], s = 0;
    softmax_row(zp, c, p);
    softmax_row(zq, c, q);
    for (int64_t k = 0; k < c; k++) s += p[k] * (log(p[k]) - log(q[k] + eps));
    return s;
}

/* SPEC §2: a.b / max(|a| |b|, eps). */
static double cos_row(const double *a, const double *b, int64_t k, double eps) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < k; i++) ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
    return ab / fmax(sqrt(aa) * sqrt(bb), eps);
}

static double pearson_row(const double *a, const double *b, int64_t k) {
    double ma = 0, mb = 0, ac[64], bc[64];
    for (int64_t i = 0; i < k; i++) ma += a[i] / (double)k, mb += b[i] / (double)k;
    for (int64_t i = 0; i < k; i++) ac[i] = a[i] - ma, bc[i] = b[i] - mb;
    return cos_row(ac, bc, k, 1e-8);
}

/* MART's reference code: the two most probable classes; the wrong class
 * is the first unless it is the label. */
static double mart_row(const double *z, int y, int64_t c) {
    double p[64];
    softmax_row(z, c, p);
    int64_t top1 = 0, top2 = -1;
    for (int64_t k = 1; k < c; k++)
        if (p[k] > p[top1]) top1 = k;
    for (int64_t k = 0; k < c; k++)
        if (k != top1 && (top2 < 0 || p[k] > p[top2])) top2 = k;
    int64_t w = top1 == y ? top2 : top1;
    return -log(p[y]) - log(1.0001 - p[w] + 1e-12);
}

/* ---- values ---- */

static void kl_case(int64_t n, int64_t c, double eps, const char *red) {
    int64_t d[2] = {n, c};
    Operand in[2] = {operand(DT_F64, 2, d), operand(DT_F64, 2, d)};
    rand_fill(&in[0], -3, 3);
    rand_fill(&in[1], -3, 3);
    Attr a[2] = {attr_str("reduction", red), attr_float("eps", eps)};
    Type yt;
    double *y = eval(OP_KL_DIV, a, 2, in, 2, &yt), rows[16];
    for (int64_t i = 0; i < n; i++) rows[i] = kl_row(&in[0].data[i * c], &in[1].data[i * c], c, eps);
    expect_reduced(y, &yt, rows, n, red, "kl_div");
    free(y);
    free_operands(in, 2);
}

Test(composites, kl_div_values) {
    const char *reds[] = {"mean", "sum", "none"};
    for (int r = 0; r < 3; r++) {
        kl_case(1, 2, 0, reds[r]);
        kl_case(3, 4, 0, reds[r]);
        kl_case(5, 10, 1e-12, reds[r]);
        kl_case(4, 3, 0.1, reds[r]);
    }
}

Test(composites, kl_div_default_is_mean_and_identical_inputs_give_zero) {
    int64_t d[2] = {3, 5};
    Operand in[2] = {operand(DT_F64, 2, d), operand(DT_F64, 2, d)};
    rand_fill(&in[0], -4, 4);
    memcpy(in[1].data, in[0].data, sizeof(double) * 15);
    Type yt;
    double *y = eval(OP_KL_DIV, NULL, 0, in, 2, &yt);
    cr_assert_eq(yt.rank, 0);
    cr_expect(fabs(y[0]) < 1e-15, "KL(p || p) = %g", y[0]);
    free(y);
    free_operands(in, 2);
}

static void rowwise_case(OpKind op, int rank, const int64_t *dims, double eps) {
    Operand in[2] = {operand(DT_F64, rank, dims), operand(DT_F64, rank, dims)};
    rand_fill(&in[0], -1, 1);
    rand_fill(&in[1], -1, 1);
    Attr a = attr_float("eps", eps);
    Type yt;
    double *y = eval(op, &a, op == OP_PEARSON ? 0 : 1, in, 2, &yt);
    int64_t n = dims[0], k = type_numel(&in[0].t) / n;
    cr_assert(yt.rank == 1 && yt.dim[0] == n);
    for (int64_t i = 0; i < n; i++) {
        const double *ra = &in[0].data[i * k], *rb = &in[1].data[i * k];
        double want = op == OP_PEARSON ? pearson_row(ra, rb, k) : cos_row(ra, rb, k, eps);
        cr_expect(fabs(y[i] - want) <= TOL, "%s row %lld: %.17g vs %.17g", op_name(op),
                  (long long)i, y[i], want);
    }
    free(y);
    free_operands(in, 2);
}

Test(composites, cosine_values) {
    rowwise_case(OP_COSINE_SIMILARITY, 1, (int64_t[]){4}, 1e-8);
    rowwise_case(OP_COSINE_SIMILARITY, 2, (int64_t[]){2, 3}, 1e-8);
    rowwise_case(OP_COSINE_SIMILARITY, 3, (int64_t[]){3, 2, 2}, 1e-8);
    rowwise_case(OP_COSINE_SIMILARITY, 4, (int64_t[]){2, 2, 2, 3}, 0.5);
}

Test(composites, pearson_values) {
    rowwise_case(OP_PEARSON, 2, (int64_t[]){2, 5}, 0);
    rowwise_case(OP_PEARSON, 3, (int64_t[]){3, 2, 3}, 0);
    rowwise_case(OP_PEARSON, 2, (int64_t[]){1, 2}, 0);
}

/* SPEC §2: a zero row (IG at a zero-initialised last layer) gives 0. */
Test(composites, cosine_zero_row_is_zero) {
    int64_t d[2] = {3, 4};
    Operand in[2] = {operand(DT_F64, 2, d), operand(DT_F64, 2, d)};
    rand_fill(&in[0], -1, 1);
    rand_fill(&in[1], -1, 1);
    memset(in[0].data, 0, sizeof(double) * 4);     /* row 0: a = 0 */
    memset(&in[0].data[4], 0, sizeof(double) * 4); /* row 1: a = b = 0 */
    memset(&in[1].data[4], 0, sizeof(double) * 4);
    Type yt;
    double *y = eval(OP_COSINE_SIMILARITY, NULL, 0, in, 2, &yt);
    cr_expect(y[0] == 0 && y[1] == 0, "zero rows: %g %g", y[0], y[1]);
    double want = cos_row(&in[0].data[8], &in[1].data[8], 4, 1e-8);
    cr_expect(fabs(y[2] - want) <= TOL, "%.17g vs %.17g", y[2], want);
    free(y);
    free_operands(in, 2);
}

static void mart_case(int64_t n, int64_t c, const char *red, bool label_is_top) {
    int64_t d[2] = {n, c};
    Operand in[2] = {operand(DT_F64, 2, d), operand(DT_I32, 1, d)};
    rand_fill(&in[0], -3, 3);
    for (int64_t i = 0; i < n; i++) {
        int64_t top = 0;
        for (int64_t k = 1; k < c; k++)
            if (in[0].data[i * c + k] > in[0].data[i * c + top]) top = k;
        /* alternate rows: the label is the most probable class or not */
        in[1].data[i] = label_is_top && i % 2 == 0 ? (double)top : (double)((top + 1 + i) % c);
    }
    Attr a = attr_str("reduction", red);
    Type yt;
    double *y = eval(OP_MART_BCE, &a, 1, in, 2, &yt), rows[16];
    for (int64_t i = 0; i < n; i++) rows[i] = mart_row(&in[0].data[i * c], (int)in[1].data[i], c);
    expect_reduced(y, &yt, rows, n, red, "mart_bce");
    free(y);
    free_operands(in, 2);
}

Test(composites, mart_bce_values) {
    const char *reds[] = {"mean", "sum", "none"};
    for (int r = 0; r < 3; r++) {
        mart_case(3, 4, reds[r], true);
        mart_case(5, 10, reds[r], false);
        mart_case(4, 2, reds[r], true);
    }
}

/* ---- batch norm groups ---- */

/* Decomposed batch_norm(x, gamma, beta, mean, var) {training=1, groups}
 * (groups < 1: no attribute) over operands given as data. */
static Module *bn_module(const Type *xt, int64_t groups) {
    Module *m = module_new("bn");
    Diag d;
    diag_init(&d);
    Builder b = {m, module_add_func(m, "f"), &d};
    Type c = type_make(DT_F64, 1, &xt->dim[1]);
    int ins[5] = {b_input(&b, "x", *xt)};
    static const char *names[4] = {"gamma", "beta", "mean", "var"};
    for (int i = 1; i < 5; i++) ins[i] = b_input(&b, names[i - 1], c);
    Attr a[3] = {attr_int("training", 1), attr_float("eps", 1e-3), attr_int("groups", groups)};
    func_add_output(m, b.f, "y", b_node(&b, OP_BATCH_NORM, "bn", ins, 5, a, groups < 1 ? 2 : 3));
    PipelineOptions po = {.verify_each = true, .stop_after = "decompose"};
    cr_assert(pipeline_run(m, &po, &d), "%s", d.msg);
    return m;
}

static double *bn_eval(const Type *xt, int64_t groups, const double *x, const double *const *cd) {
    Module *m = bn_module(xt, groups);
    Type c = type_make(DT_F64, 1, &xt->dim[1]);
    NamedValue nv[5] = {{"x", *xt, (double *)x}, {"gamma", c, (double *)cd[0]},
                        {"beta", c, (double *)cd[1]}, {"mean", c, (double *)cd[2]},
                        {"var", c, (double *)cd[3]}};
    NamedValue *out;
    int nout;
    Diag d;
    diag_init(&d);
    InterpOptions o = {INTERP_F64};
    cr_assert(interp_run(m, m->funcs[0], &o, nv, 5, NULL, 0, &out, &nout, &d), "%s", d.msg);
    double *y = out[0].data;
    out[0].data = NULL;
    named_values_free(out, nout);
    module_free(m);
    return y;
}

/* groups=G equals G batch norms of the consecutive slices of the batch. */
static void bn_groups_case(int rank, const int64_t *dims, int64_t g) {
    Type xt = type_make(DT_F64, rank, dims), st = xt;
    st.dim[0] /= g;
    int64_t n = type_numel(&xt), per = type_numel(&st), ch = dims[1];
    double *x = malloc(sizeof(double) * (size_t)n), cdat[4][8];
    for (int64_t i = 0; i < n; i++) x[i] = 4 * urand() - 1;
    for (int k = 0; k < 4; k++)
        for (int64_t j = 0; j < ch; j++) cdat[k][j] = 0.5 + urand();
    const double *cd[4] = {cdat[0], cdat[1], cdat[2], cdat[3]};
    double *y = bn_eval(&xt, g, x, cd);
    for (int64_t k = 0; k < g; k++) {
        double *ys = bn_eval(&st, 1, &x[k * per], cd);
        for (int64_t i = 0; i < per; i++)
            cr_expect(fabs(y[k * per + i] - ys[i]) <= TOL, "group %lld [%lld]: %.17g vs %.17g",
                      (long long)k, (long long)i, y[k * per + i], ys[i]);
        free(ys);
    }
    free(y);
    free(x);
}

Test(composites, batch_norm_groups_equal_separate_calls) {
    bn_groups_case(4, (int64_t[]){6, 2, 2, 3}, 3);
    bn_groups_case(2, (int64_t[]){4, 3}, 2);
    bn_groups_case(3, (int64_t[]){4, 2, 5}, 4);
    bn_groups_case(5, (int64_t[]){4, 2, 2, 1, 2}, 2);
}

Test(composites, batch_norm_groups_one_is_unchanged) {
    Type xt = type_make(DT_F64, 4, (int64_t[]){4, 3, 2, 2});
    Module *a = bn_module(&xt, 1), *b = bn_module(&xt, 0);
    char *sa = ir_module_to_string(a), *sb = ir_module_to_string(b);
    cr_expect_str_eq(sa, sb, "groups=1 must decompose exactly as no groups");
    free(sa);
    free(sb);
    module_free(a);
    module_free(b);
}

/* ---- shape rules ---- */

static void expect_build_error(OpKind op, const Type *ta, const Type *tb, const Attr *a, int na,
                               const char *want) {
    Module *m = module_new("e");
    Diag d;
    diag_init(&d);
    Builder b = {m, module_add_func(m, "f"), &d};
    int ins[5] = {b_input(&b, "a", *ta), b_input(&b, "b", *tb)};
    int n = 2;
    if (op == OP_BATCH_NORM) {
        Type c = type_make(ta->dtype, 1, &ta->dim[1]);
        for (n = 1; n < 5; n++) ins[n] = b_input(&b, NULL, c);
    }
    cr_assert(b_node(&b, op, "y", ins, n, a, na) < 0, "%s built", op_name(op));
    cr_expect(strstr(d.msg, want), "message: %s", d.msg);
    module_free(m);
}

Test(composites, shape_errors) {
    Type p = type_make(DT_F64, 2, (int64_t[]){3, 4}), q = type_make(DT_F64, 2, (int64_t[]){3, 5});
    Type y = type_make(DT_I32, 1, (int64_t[]){3}), x = type_make(DT_F64, 3, (int64_t[]){6, 2, 2});
    expect_build_error(OP_KL_DIV, &p, &q, NULL, 0, "node 'y' (kl_div): expects float p_logits");
    Attr bad = attr_str("reduction", "max");
    expect_build_error(OP_KL_DIV, &p, &p, &bad, 1, "reduction must be mean, sum or none");
    expect_build_error(OP_COSINE_SIMILARITY, &p, &q, NULL, 0, "b of the same type");
    expect_build_error(OP_PEARSON, &y, &y, NULL, 0, "expects float a[N,...]");
    expect_build_error(OP_MART_BCE, &p, &p, NULL, 0, "i32 labels[N]");
    Attr g[2] = {attr_int("training", 1), attr_int("groups", 4)};
    expect_build_error(OP_BATCH_NORM, &x, &x, g, 2, "groups=4 must divide the batch of x, 6");
    Attr gr[3] = {attr_int("training", 1), attr_int("groups", 2), attr_int("ranks", 2)};
    expect_build_error(OP_BATCH_NORM, &x, &x, gr, 3, "groups and ranks: path-point groups keep");
}

/* ---- gradients: finite differences, first and second order ---- */

static const int64_t R34[] = {3, 4}, R25[] = {2, 5}, R223[] = {2, 2, 3};

#define F64 DT_F64

Test(composite_grads, kl_div) {
    Case c = {.op = OP_KL_DIV, .nin = 2, .in = {t64(2, R34), t64(2, R34)}, .kind = {F64, F64},
              .lo = -2, .hi = 2};
    check(c, true);
    Case s = {.op = OP_KL_DIV, .nin = 2, .in = {t64(2, R25), t64(2, R25)}, .kind = {F64, F64},
              .lo = -2, .hi = 2, .attrs = {attr_str("reduction", "none"), attr_float("eps", 0.01)},
              .nattrs = 2};
    check(s, true);
    Case m = {.op = OP_KL_DIV, .nin = 2, .in = {t64(2, R25), t64(2, R25)}, .kind = {F64, F64},
              .lo = -2, .hi = 2, .attrs = {attr_str("reduction", "sum"), attr_float("eps", 1e-12)},
              .nattrs = 2};
    check(m, true);
}

Test(composite_grads, cosine_similarity) {
    Case c = {.op = OP_COSINE_SIMILARITY, .nin = 2, .in = {t64(2, R34), t64(2, R34)},
              .kind = {F64, F64}, .lo = -1, .hi = 1};
    check(c, true);
    Case r = {.op = OP_COSINE_SIMILARITY, .nin = 2, .in = {t64(3, R223), t64(3, R223)},
              .kind = {F64, F64}, .lo = -1, .hi = 1};
    check(r, true);
}

/* Rows 0 (a = 0) and 1 (a = b = 0) are zero. */
static const double ZA[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0.3, -0.7, 0.2, 0.9};
static const double ZB[12] = {0.5, -0.2, 0.8, 0.1, 0, 0, 0, 0, -0.4, 0.6, 0.1, 0.3};

/* With eps = 0.1 the whole finite-difference stencil around a zero row stays
 * on the eps branch (|a|^2 |b|^2 << eps^2), where cos = a.b / eps is smooth. */
Test(composite_grads, cosine_zero_row_matches_differences) {
    Case c = {.op = OP_COSINE_SIMILARITY, .nin = 2, .in = {t64(2, R34), t64(2, R34)},
              .kind = {F64, F64}, .fixed = {ZA, ZB}, .attrs = {attr_float("eps", 0.1)},
              .nattrs = 1};
    check(c, true);
}

/* At the default eps a zero row sits at the kink of max(|a||b|, eps):
 * the derivatives must still be finite, never NaN. */
Test(composite_grads, cosine_zero_row_gradients_are_finite) {
    Case c = {.op = OP_COSINE_SIMILARITY, .nin = 2, .in = {t64(2, R34), t64(2, R34)},
              .kind = {F64, F64}, .fixed = {ZA, ZB}};
    check_finite(c);
    Case p = c;
    p.op = OP_PEARSON;
    check_finite(p);
}

Test(composite_grads, pearson) {
    Case c = {.op = OP_PEARSON, .nin = 2, .in = {t64(2, R25), t64(2, R25)}, .kind = {F64, F64},
              .lo = -1, .hi = 1};
    check(c, true);
    Case r = {.op = OP_PEARSON, .nin = 2, .in = {t64(3, R223), t64(3, R223)},
              .kind = {F64, F64}, .lo = -1, .hi = 1};
    check(r, true);
}

/* Distinct logits (gap) keep the wrong-class argmax away from ties. */
Test(composite_grads, mart_bce) {
    Case c = {.op = OP_MART_BCE, .nin = 2, .in = {t64(2, R34), t64(1, R34)},
              .kind = {F64, DT_I32}, .lo = -1, .gap = 0.13, .int_hi = 4};
    check(c, true);
    Case s = {.op = OP_MART_BCE, .nin = 2, .in = {t64(2, R25), t64(1, R25)},
              .kind = {F64, DT_I32}, .lo = -1, .gap = 0.17, .int_hi = 5,
              .attrs = {attr_str("reduction", "none")}, .nattrs = 1};
    check(s, true);
}

/* batch_norm in training with one more attribute: groups=2 (IG's path
 * points), or ranks=2 (train.sync_bn: the statistics' sums go through
 * rank_sum, the identity in one process, so this checks the gradient
 * through it, the count doubled). */
static void bn_grad_case(Attr extra) {
    int64_t x[] = {4, 2, 3}, ch[] = {2};
    Case c = {.op = OP_BATCH_NORM, .nin = 5,
              .in = {t64(3, x), t64(1, ch), t64(1, ch), t64(1, ch), t64(1, ch)},
              .kind = {F64, F64, F64, F64, F64}, .lo = 0.2, .hi = 2,
              .attrs = {attr_int("training", 1), extra, attr_float("eps", 0.01)}, .nattrs = 3};
    check(c, true);
}

Test(composite_grads, batch_norm_groups) { bn_grad_case(attr_int("groups", 2)); }
Test(composite_grads, batch_norm_ranks) { bn_grad_case(attr_int("ranks", 2)); }

/* ---- activations: values against PyTorch's definitions in plain C ---- */

static double ref_activation(OpKind op, double x, double alpha, bool tanh_form) {
    switch (op) {
    case OP_GELU:
        if (tanh_form) return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
        return 0.5 * x * erfc(-x / sqrt(2.0)); /* = x Phi(x), without erf's cancellation */
    case OP_SILU: return x / (1 + exp(-x));
    case OP_LEAKY_RELU: return x > 0 ? x : alpha * x;
    case OP_ELU: return x > 0 ? x : alpha * expm1(x);
    default: break;
    }
    cr_assert_fail("no reference formula for %s", op_name(op)); /* a case missing here fails loudly */
    return NAN;
}

static void activation_case(OpKind op, const Attr *a, int na, double alpha, bool tanh_form) {
    static const double xs[] = {-40, -8, -3, -1.5, -1, -0.3, -1e-3, -0.0, 0.0, 1e-3, 0.4, 1,
                                2.5, 6, 30, 500, NAN, INFINITY, -INFINITY};
    enum { N = sizeof xs / sizeof *xs };
    Operand x = operand(DT_F64, 1, (int64_t[]){N});
    memcpy(x.data, xs, sizeof xs);
    Type yt;
    double *y = eval(op, a, na, &x, 1, &yt);
    for (int i = 0; i < N; i++) {
        double want = ref_activation(op, xs[i], alpha, tanh_form);
        if (isnan(want) || isnan(y[i])) {
            cr_expect(isnan(want) && isnan(y[i]), "%s(%g) = %.17g, expected %.17g", op_name(op), xs[i], y[i], want);
            continue;
        }
        /* 1e-12 relative, or absolute near zero: gelu's and elu's tails
         * are 0 - 0 differences of order 1e-15 */
        cr_expect(fabs(y[i] - want) <= 1e-12 * fabs(want) + 1e-14 || y[i] == want,
                  "%s(%g) = %.17g, expected %.17g", op_name(op), xs[i], y[i], want);
    }
    free(y);
    free_operands(&x, 1);
}

Test(composites, activation_values) {
    activation_case(OP_GELU, NULL, 0, 0, false);
    Attr tf = attr_str("approximate", "tanh");
    activation_case(OP_GELU, &tf, 1, 0, true);
    activation_case(OP_SILU, NULL, 0, 0, false);
    activation_case(OP_LEAKY_RELU, NULL, 0, 0.01, false);
    Attr a = attr_float("alpha", 0.2);
    activation_case(OP_LEAKY_RELU, &a, 1, 0.2, false);
    activation_case(OP_ELU, NULL, 0, 1.0, false);
    Attr e = attr_float("alpha", 1.5);
    activation_case(OP_ELU, &e, 1, 1.5, false);
}

/* gelu's approximate must be one of PyTorch's two forms. */
Test(composites, gelu_unknown_form_is_an_error) {
    Module *m = module_new("c");
    Diag d;
    diag_init(&d);
    Builder b = {m, module_add_func(m, "f"), &d};
    int x = b_input(&b, "x", type_make(DT_F32, 1, (int64_t[]){3}));
    Attr a = attr_str("approximate", "sigmoid");
    func_add_output(m, b.f, "y", b_node(&b, OP_GELU, "g", &x, 1, &a, 1));
    PipelineOptions po = {0};
    cr_assert_not(pipeline_run(m, &po, &d));
    cr_expect(strstr(d.msg, "node 'g'") && strstr(d.msg, "\"none\" or \"tanh\""), "%s", d.msg);
    module_free(m);
}
