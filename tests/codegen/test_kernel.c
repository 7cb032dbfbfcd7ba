/* The kernel IR: builders, verifier messages, text form, structural hash,
 * and the reference evaluator on hand-worked cases. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/philox.h"
#include "codegen/kir/kernel.h"
#include "codegen/lower_math.h"

/* y[i] = relu(x[i] * 2); relu expands to const 0, le, select. */
static KernelDef *relu2(const char *name, int64_t n) {
    KernelDef *k = kernel_new(name, n);
    int x = kernel_add_buf(k, KT_F32, n, false, "x");
    int y = kernel_add_buf(k, KT_F32, n, true, "y");
    int i = k_index(k);
    int l = k_load(k, x, i);
    int v = k_binary(k, KO_MUL, l, k_const_f(k, KT_F32, 2.0));
    k_store(k, y, i, lm_unary(k, OP_RELU, v, 0));
    return k;
}

static bool verifies(const KernelDef *k, Diag *d) {
    diag_init(d);
    return kernel_verify(k, d);
}

static void expect_reject(KernelDef *k, const char *a, const char *b) {
    Diag d;
    cr_expect_not(verifies(k, &d), "%s accepted", k->name);
    cr_expect(strstr(d.msg, k->name), "no kernel name: %s", d.msg);
    cr_expect(strstr(d.msg, a) && (!b || strstr(d.msg, b)), "%s", d.msg);
    kernel_free(k);
}

Test(kernel, builders_and_types) {
    KernelDef *k = relu2("k_relu", 10);
    cr_assert_eq(k->ninsts, 8);
    cr_expect_eq(k->insts[0].kind, KI_INDEX);
    cr_expect_eq(k->insts[0].type, KT_I64);
    cr_expect_eq(k->insts[1].type, KT_F32);
    cr_expect_eq(k->insts[2].kind, KI_CONST);
    cr_expect_eq(k->insts[2].f, 2.0);
    cr_expect_eq(k->insts[3].a, 1);
    cr_expect_eq(k->insts[3].op, KO_MUL);
    cr_expect_eq(k->insts[5].op, KO_LE);
    cr_expect_eq(k->insts[5].type, KT_BOOL);
    cr_expect_eq(k->insts[6].kind, KI_SELECT);
    cr_expect_eq(k->insts[7].kind, KI_STORE);
    cr_expect_eq(k->insts[7].b, 6);
    Diag d;
    cr_expect(verifies(k, &d), "%s", d.msg);
    int c = k_binary(k, KO_LT, 1, 4);
    cr_expect_eq(k->insts[c].type, KT_BOOL);
    int am = k_red_end(k, KR_ARGMAX, k_red_begin(k, 3), 1);
    cr_expect_eq(k->insts[am].type, KT_I32);
    cr_expect_eq(k->insts[am - 1].i, 3);
    cr_expect_str_eq(ktype_name(KT_BOOL), "bool");
    cr_expect_eq(ktype_of(DT_I32), KT_I32);
    cr_expect_eq(ktype_of(DT_F64), KT_F64);
    cr_expect_eq(ktype_size(KT_BOOL), 1);
    cr_expect_eq(ktype_size(KT_I64), 8);
    cr_expect_eq(ktype_size(KT_F32), 4);
    /* f32 constants are rounded to float when built. */
    int f = k_const_f(k, KT_F32, 0.1);
    cr_expect_eq(k->insts[f].f, (double)0.1f);
    int b = k_const_f(k, KT_BOOL, 5);
    cr_expect_eq(k->insts[b].i, 1);
    kernel_free(k);
}

Test(kernel, verify_rejects_bad_kernels) {
    KernelDef *k = relu2("fwd_operand", 4);
    k->insts[3].b = 4; /* its own successor */
    expect_reject(k, "%3", "not an earlier value");

    k = relu2("bad_type", 4);
    k->insts[7].a = 2; /* store index is the f32 constant */
    expect_reject(k, "operand a = %2 has type f32, expected i64", NULL);

    k = relu2("not_written", 4);
    k->bufs[1].written = false;
    expect_reject(k, "not marked written", NULL);

    k = relu2("no_buffer", 4);
    k->insts[1].buf = 7;
    expect_reject(k, "b7 does not exist", NULL);

    k = kernel_new("load_type", 4);
    int x = kernel_add_buf(k, KT_BOOL, 4, false, "x");
    int l = k_load(k, x, k_index(k));
    k->insts[l].type = KT_I32;
    expect_reject(k, "does not match buffer b0's type bool", NULL);

    k = kernel_new("store_from_store", 4);
    x = kernel_add_buf(k, KT_F32, 4, true, "x");
    int i = k_index(k);
    k_store(k, x, i, k_load(k, x, i));
    k_store(k, x, i, 2);
    expect_reject(k, "is a store", NULL);

    k = kernel_new("unclosed", 4);
    k_red_begin(k, 3);
    expect_reject(k, "never closed", NULL);

    k = kernel_new("crossed", 4);
    int r1 = k_red_begin(k, 3), r2 = k_red_begin(k, 3);
    k_red_end(k, KR_SUM, r1, r2);
    expect_reject(k, "innermost open reduction is %1", NULL);

    k = kernel_new("escaped", 4);
    x = kernel_add_buf(k, KT_I64, 4, true, "x");
    r1 = k_red_begin(k, 3);
    int inner = k_binary(k, KO_ADD, r1, r1);
    k_red_end(k, KR_SUM, r1, inner);
    k_store(k, x, k_index(k), inner);
    expect_reject(k, "inside the reduction opened at %0", NULL);

    k = kernel_new("bool_math", 4);
    int t = k_const_i(k, KT_BOOL, 1);
    k_binary(k, KO_ADD, t, t);
    expect_reject(k, "add expects numeric operands", NULL);

    k = kernel_new("int_exp", 4);
    k_unary(k, KO_EXP, k_const_i(k, KT_I32, 1));
    expect_reject(k, "exp expects float operands, got i32", NULL);

    k = kernel_new("mixed", 4);
    k_binary(k, KO_ADD, k_const_f(k, KT_F32, 1), k_const_f(k, KT_F64, 1));
    expect_reject(k, "expected f32", NULL);

    k = kernel_new("not_unary", 4);
    k_unary(k, KO_ADD, k_const_f(k, KT_F32, 1));
    expect_reject(k, "not a unary op", NULL);

    k = kernel_new("float_shift", 4);
    int f1 = k_const_f(k, KT_F64, 1);
    k_binary(k, KO_SHR, f1, f1);
    expect_reject(k, "shr expects integer operands, got f64", NULL);

    k = kernel_new("cast_to_bool", 4);
    k_cast(k, KT_BOOL, k_const_f(k, KT_F32, 1));
    expect_reject(k, "casts to bool are comparisons", NULL);

    k = kernel_new("bad-name", 4);
    expect_reject(k, "not a C identifier", NULL);
}

static char *printed(const KernelDef *k) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    kernel_print(k, f);
    fclose(f);
    return buf;
}

Test(kernel, print) {
    KernelDef *k = relu2("k_print", 10);
    kernel_set_comment(k, "relu1 <- mul1");
    int r = k_red_begin(k, 4);
    k_red_end(k, KR_MAX, r, 1);
    char *s = printed(k);
    cr_expect(strstr(s, "kernel k_print domain=10"), "%s", s);
    cr_expect(strstr(s, "# relu1 <- mul1"), "%s", s);
    cr_expect(strstr(s, "b0: f32[10] in \"x\""), "%s", s);
    cr_expect(strstr(s, "b1: f32[10] out \"y\""), "%s", s);
    cr_expect(strstr(s, "%1 = load b0[%0] : f32"), "%s", s);
    cr_expect(strstr(s, "%3 = mul %1, %2 : f32"), "%s", s);
    cr_expect(strstr(s, "%5 = le %3, %4 : bool"), "%s", s);
    cr_expect(strstr(s, "%6 = select %5, %4, %3 : f32"), "%s", s);
    cr_expect(strstr(s, "store b1[%0] = %6 : f32"), "%s", s);
    cr_expect(strstr(s, "%8 = red_begin 4 : i64 {"), "%s", s);
    cr_expect(strstr(s, "} %9 = red_end max %8, %1 : f32"), "%s", s);
    free(s);
    kernel_free(k);
}

Test(kernel, hash_and_same) {
    KernelDef *a = relu2("a_name", 10), *b = relu2("other_name", 10);
    kernel_set_comment(b, "different comment");
    free((char *)b->bufs[0].name);
    b->bufs[0].name = NULL;
    cr_expect(kernel_same(a, b));
    cr_expect_eq(kernel_hash(a), kernel_hash(b));
    /* An unused field left different does not matter. */
    b->insts[0].f = 123;
    cr_expect(kernel_same(a, b));
    cr_expect_eq(kernel_hash(a), kernel_hash(b));
    /* Another domain and buffer size is the same code: the renderers never
     * read them, so a row-wise kernel at batch 16 serves batch 128. */
    KernelDef *c = relu2("c", 11);
    cr_expect(kernel_same(a, c));
    cr_expect_eq(kernel_hash(a), kernel_hash(c));
    KernelDef *e = relu2("e", 10);
    e->insts[2].f = 3.0; /* constant */
    cr_expect_not(kernel_same(a, e));
    cr_expect_neq(kernel_hash(a), kernel_hash(e));
    KernelDef *g = relu2("g", 10);
    g->bufs[0].type = KT_F64; /* buffer type */
    cr_expect_not(kernel_same(a, g));
    cr_expect_neq(kernel_hash(a), kernel_hash(g));
    KernelDef *h = relu2("h", 10);
    h->insts[3].op = KO_ADD; /* op */
    cr_expect_not(kernel_same(a, h));
    cr_expect_neq(kernel_hash(a), kernel_hash(h));
    KernelDef *ks[] = {a, b, c, e, g, h};
    for (int i = 0; i < 6; i++) kernel_free(ks[i]);
}

static void eval_ok(const KernelDef *k, void *const *bufs, int64_t b, int64_t e) {
    Diag d;
    diag_init(&d);
    cr_assert(kernel_eval(k, bufs, b, e, &d), "%s", d.msg);
}

Test(kernel, eval_elementwise) {
    KernelDef *k = relu2("ev", 5);
    float x[5] = {1, -2, 0.5f, NAN, 3}, y[5] = {9, 9, 9, 9, 9};
    void *bufs[] = {x, y};
    eval_ok(k, bufs, 1, 4); /* only [1, 4) */
    cr_expect_eq(y[0], 9);
    cr_expect_eq(y[1], 0);
    cr_expect_eq(y[2], 1);
    cr_expect(isnan(y[3])); /* relu(NaN) = NaN, as in PyTorch */
    cr_expect_eq(y[4], 9);
    Diag d;
    diag_init(&d);
    cr_expect_not(kernel_eval(k, bufs, 0, 6, &d));
    cr_expect(strstr(d.msg, "outside domain"), "%s", d.msg);
    kernel_free(k);

    /* i32: 7 / -2 = -3, x / 0 = 0, INT_MIN / -1 wraps; INT_MAX + 1 wraps;
     * cast f32 -> i32 truncates, 2^32 + 5 wraps to 5, NaN to 0. */
    k = kernel_new("ints", 4);
    int a = kernel_add_buf(k, KT_I32, 4, false, "a"), b = kernel_add_buf(k, KT_I32, 4, false, "b");
    int f = kernel_add_buf(k, KT_F64, 4, false, "f");
    int q = kernel_add_buf(k, KT_I32, 4, true, "q"), s = kernel_add_buf(k, KT_I32, 4, true, "s");
    int c = kernel_add_buf(k, KT_I32, 4, true, "c"), bo = kernel_add_buf(k, KT_BOOL, 4, true, "bo");
    int i = k_index(k), va = k_load(k, a, i), vb = k_load(k, b, i), vf = k_load(k, f, i);
    k_store(k, q, i, lm_binary(k, OP_DIV, va, vb));
    k_store(k, s, i, k_binary(k, KO_ADD, va, k_const_i(k, KT_I32, 1)));
    k_store(k, c, i, lm_cast(k, KT_I32, vf));
    k_store(k, bo, i, lm_cast(k, KT_BOOL, vf));
    int32_t av[4] = {7, 5, INT32_MIN, INT32_MAX}, bv[4] = {-2, 0, -1, 3};
    double fv[4] = {-2.7, 4294967301.0, NAN, 0.0};
    int32_t qv[4], sv[4], cv[4];
    unsigned char bov[4];
    void *ib[] = {av, bv, fv, qv, sv, cv, bov};
    eval_ok(k, ib, 0, 4);
    cr_expect_eq(qv[0], -3);
    cr_expect_eq(qv[1], 0);
    cr_expect_eq(qv[2], INT32_MIN);
    cr_expect_eq(qv[3], INT32_MAX / 3);
    cr_expect_eq(sv[3], INT32_MIN);
    cr_expect_eq(cv[0], -2);
    cr_expect_eq(cv[1], 5);
    cr_expect_eq(cv[2], 0);
    cr_expect(bov[0] == 1 && bov[1] == 1 && bov[2] == 1 && bov[3] == 0);
    kernel_free(k);
}

Test(kernel, eval_math_matches_interpreter_formulas) {
    KernelDef *k = kernel_new("math", 4);
    int x = kernel_add_buf(k, KT_F64, 4, false, "x");
    int sg = kernel_add_buf(k, KT_F64, 4, true, "sg"), sp = kernel_add_buf(k, KT_F64, 4, true, "sp");
    int mx = kernel_add_buf(k, KT_F64, 4, true, "mx"), sn = kernel_add_buf(k, KT_F64, 4, true, "sn");
    int i = k_index(k), v = k_load(k, x, i);
    k_store(k, sg, i, lm_unary(k, OP_SIGMOID, v, 0));
    k_store(k, sp, i, lm_unary(k, OP_SOFTPLUS, v, 2.0));
    k_store(k, mx, i, lm_binary(k, OP_MAX, v, k_const_f(k, KT_F64, 0.5)));
    k_store(k, sn, i, lm_unary(k, OP_SIGN, v, 0));
    double xv[4] = {0, -1000, 11, NAN}, a[4], b[4], c[4], e[4];
    void *bufs[] = {xv, a, b, c, e};
    eval_ok(k, bufs, 0, 4);
    cr_expect_eq(a[0], 0.5);
    cr_expect_eq(a[1], 0); /* no overflow: e^-1000 / (1 + e^-1000) */
    cr_expect_eq(b[0], log(2.0) / 2);
    cr_expect_eq(b[1], 0);
    cr_expect_eq(b[2], 11); /* beta x = 22 > 20: x */
    cr_expect_eq(c[0], 0.5);
    cr_expect(isnan(c[3])); /* max propagates NaN */
    cr_expect_eq(e[1], -1);
    cr_expect(isnan(e[3]));
    kernel_free(k);
}

Test(kernel, eval_reductions) {
    /* y[i] = sum_r x[3i + r]; m[i] = max; a[i] = argmax */
    KernelDef *k = kernel_new("reds", 4);
    int x = kernel_add_buf(k, KT_F32, 12, false, "x");
    int y = kernel_add_buf(k, KT_F32, 4, true, "y"), m = kernel_add_buf(k, KT_F32, 4, true, "m");
    int a = kernel_add_buf(k, KT_I32, 4, true, "a");
    int i = k_index(k), base = k_binary(k, KO_MUL, i, k_const_i(k, KT_I64, 3));
    int r = k_red_begin(k, 3);
    int v = k_load(k, x, k_binary(k, KO_ADD, base, r));
    int s = k_red_end(k, KR_SUM, r, v);
    int r2 = k_red_begin(k, 3);
    int v2 = k_load(k, x, k_binary(k, KO_ADD, base, r2));
    int mm = k_red_end(k, KR_MAX, r2, v2);
    int r3 = k_red_begin(k, 3);
    int v3 = k_load(k, x, k_binary(k, KO_ADD, base, r3));
    int am = k_red_end(k, KR_ARGMAX, r3, v3);
    k_store(k, y, i, s);
    k_store(k, m, i, mm);
    k_store(k, a, i, am);
    float xv[12] = {1, 5, 5,  /* tie: first 5 wins */
                    -INFINITY, -INFINITY, -INFINITY, /* all -inf: index 0 */
                    2, NAN, NAN, /* first NaN wins */
                    -1, -3, -2};
    float yv[4], mv[4];
    int32_t av[4];
    void *bufs[] = {xv, yv, mv, av};
    eval_ok(k, bufs, 0, 4);
    cr_expect_eq(yv[0], 11);
    cr_expect_eq(mv[0], 5);
    cr_expect_eq(av[0], 1);
    cr_expect_eq(mv[1], -INFINITY);
    cr_expect_eq(av[1], 0);
    cr_expect(isnan(yv[2]) && isnan(mv[2]));
    cr_expect_eq(av[2], 1);
    cr_expect_eq(yv[3], -6);
    cr_expect_eq(mv[3], -1);
    cr_expect_eq(av[3], 0);
    kernel_free(k);
}

Test(kernel, eval_nested_and_random) {
    /* y[i] = sum_a max_b (a * 10 + b) over a < 3, b < 4 = 3 + 13 + 23 = 39, plus i. */
    KernelDef *k = kernel_new("nest", 2);
    int y = kernel_add_buf(k, KT_I64, 2, true, "y");
    int u = kernel_add_buf(k, KT_F32, 2, true, "u");
    int bn = kernel_add_buf(k, KT_F64, 2, true, "bn");
    int i = k_index(k);
    int ra = k_red_begin(k, 3);
    int rb = k_red_begin(k, 4);
    int v = k_binary(k, KO_ADD, k_binary(k, KO_MUL, ra, k_const_i(k, KT_I64, 10)), rb);
    int mx = k_red_end(k, KR_MAX, rb, v);
    int s = k_red_end(k, KR_SUM, ra, mx);
    k_store(k, y, i, k_binary(k, KO_ADD, s, i));
    int seed = k_const_i(k, KT_I32, -5), step = k_const_i(k, KT_I32, 3);
    k_store(k, u, i, lm_random(k, KRAND_UNIFORM, KT_F32, seed, step, i, 2, 0));
    k_store(k, bn, i, lm_random(k, KRAND_BERNOULLI, KT_F64, seed, step, i, 2, 0.5));
    int64_t yv[2];
    float uv[2];
    double bv[2];
    void *bufs[] = {yv, uv, bv};
    eval_ok(k, bufs, 0, 2);
    cr_expect_eq(yv[0], 39);
    cr_expect_eq(yv[1], 40);
    for (int j = 0; j < 2; j++) {
        double want = philox_uniform((uint32_t)-5, 3, 2, (uint64_t)j);
        cr_expect_eq((double)uv[j], want);
        cr_expect_eq(bv[j], want < 0.5 ? 1.0 : 0.0);
    }
    kernel_free(k);
}
