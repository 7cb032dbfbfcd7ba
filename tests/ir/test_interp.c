/* Reference interpreter: sources, elementwise ops, dtype storage rules,
 * random ops, and interp_run (binding, lifetimes, errors). Expected numbers
 * are worked out by hand in the comments. */
#include "tests/ir/interp_test_util.h"

#include "base/philox.h"

/* ---- sources ---- */

Test(interp_source, constant_value_and_data) {
    Attr v = attr_float("value", 2.5);
    Value a = eval_ok(OP_CONSTANT, &v, 1, NULL, 0, TY(DT_F32, 2, 2));
    EXPECT(&a, 0, 2.5, 2.5, 2.5, 2.5);
    Value z = eval_ok(OP_CONSTANT, NULL, 0, NULL, 0, TY(DT_F64, 3)); /* value defaults to 0 */
    EXPECT(&z, 0, 0, 0, 0);
    Attr data = attr_floats("data", D(1, -2, 3.5, 4, 5, 6), 6);
    Value b = eval_ok(OP_CONSTANT, &data, 1, NULL, 0, TY(DT_F64, 2, 3));
    EXPECT(&b, 0, 1, -2, 3.5, 4, 5, 6);
    /* i32 storage truncates: 3.5 -> 3. */
    Value c = eval_ok(OP_CONSTANT, &data, 1, NULL, 0, TY(DT_I32, 3, 2));
    EXPECT(&c, 0, 1, -2, 3, 4, 5, 6);
    Value s = eval_ok(OP_CONSTANT, &v, 1, NULL, 0, type_scalar(DT_F64));
    EXPECT(&s, 0, 2.5);
    free_vals((Value[]){a, z, b, c, s}, 5);
}

Test(interp_source, constant_data_length_mismatch) {
    Attr data = attr_floats("data", D(1, 2, 3, 4, 5), 5);
    Diag d = eval_fail(OP_CONSTANT, &data, 1, NULL, 0, TY(DT_F32, 2, 3));
    cr_expect_eq(d.code, EXIT_BADINPUT);
    cr_expect(strstr(d.msg, "'y'") && strstr(d.msg, "5") && strstr(d.msg, "6"), "%s", d.msg);
}

Test(interp_source, iota) {
    Attr a1 = attr_int("axis", 1), a0 = attr_int("axis", 0);
    Value x = eval_ok(OP_IOTA, &a1, 1, NULL, 0, TY(DT_I32, 2, 3));
    EXPECT(&x, 0, 0, 1, 2, 0, 1, 2);
    Value y = eval_ok(OP_IOTA, &a0, 1, NULL, 0, TY(DT_F32, 2, 3));
    EXPECT(&y, 0, 0, 0, 0, 1, 1, 1);
    /* Middle axis of [2,3,2]: index (i, j, k) -> j. */
    Value z = eval_ok(OP_IOTA, &a1, 1, NULL, 0, TY(DT_F64, 2, 3, 2));
    EXPECT(&z, 0, 0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2);
    Attr bad = attr_int("axis", 2);
    Diag d = eval_fail(OP_IOTA, &bad, 1, NULL, 0, TY(DT_I32, 2, 3));
    cr_expect(strstr(d.msg, "axis"), "%s", d.msg);
    free_vals((Value[]){x, y, z}, 3);
}

/* ---- elementwise unary ---- */

static Value unary(OpKind op, const double *x, int n) {
    Value in = val(TY(DT_F64, n), x);
    Value out = eval_ok(op, NULL, 0, &in, 1, in.type);
    value_free(&in);
    return out;
}

#define UNARY(op, tol, xs, ...)                                              \
    do {                                                                     \
        Value u_ = unary(op, D xs, (int)(sizeof(D xs) / sizeof(double)));    \
        EXPECT(&u_, tol, __VA_ARGS__);                                       \
        value_free(&u_);                                                     \
    } while (0)

Test(interp_unary, hand_values) {
    const double e = 2.718281828459045, l3 = log(3.0), l2 = log(2.0);
    UNARY(OP_NEG, 0, (-2, -0.5, 0, 0.5, 2), 2, 0.5, 0, -0.5, -2);
    UNARY(OP_ABS, 0, (-2, -0.5, 0, 0.5, 2), 2, 0.5, 0, 0.5, 2);
    UNARY(OP_SIGN, 0, (-2, -0.5, 0, 0.5, 2, NAN), -1, -1, 0, 1, 1, NAN); /* sign(0) = 0 */
    UNARY(OP_EXP, 1e-15, (1, 0, -1), e, 1, 1 / e);
    UNARY(OP_LOG, 1e-15, (e, 1, 0, -1), 1, 0, -INFINITY, NAN);
    UNARY(OP_SQRT, 0, (4, 2.25, 0), 2, 1.5, 0);
    UNARY(OP_RSQRT, 0, (4, 0.25), 0.5, 2);
    UNARY(OP_RECIP, 0, (4, -0.5, 0), 0.25, -2, INFINITY); /* IEEE, no error */
    /* relu propagates NaN (as PyTorch does); relu(-0) = +0. */
    UNARY(OP_RELU, 0, (-2, 0, 0.5, 3, NAN), 0, 0, 0.5, 3, NAN); /* NaN propagates, as in PyTorch */
    /* sigmoid(ln 3) = 1/(1 + 1/3) = 0.75; the tails are exact, not NaN. */
    UNARY(OP_SIGMOID, 1e-15, (0, l3, -l3, 1000, -1000), 0.5, 0.75, 0.25, 1, 0);
    /* tanh(ln 2) = (4 - 1)/(4 + 1) = 0.6. */
    UNARY(OP_TANH, 1e-15, (0, l2, -l2), 0, 0.6, -0.6);
    /* softplus(0) = ln 2, softplus(ln 3) = ln 4; beta x > 20 returns x;
     * a very negative x underflows to 0 rather than log(0). */
    UNARY(OP_SOFTPLUS, 1e-15, (0, l3, 30, -1000), l2, log(4.0), 30, 0);
    UNARY(OP_STOP_GRADIENT, 0, (1.5, -7), 1.5, -7);
}

Test(interp_unary, softplus_beta) {
    /* beta = 2: softplus(ln(3)/2) = ln(1 + 3)/2 = ln 2; x = 15 gives
     * beta x = 30 > 20, so 15; x = 10 gives exactly 20, not above the
     * threshold: log1p(e^20)/2 = 10 + log1p(e^-20)/2 = 10.000000001030577. */
    Attr b = attr_float("beta", 2.0);
    Value x = val(TY(DT_F64, 3), D(log(3.0) / 2, 15, 10));
    Value y = eval_ok(OP_SOFTPLUS, &b, 1, &x, 1, x.type);
    EXPECT(&y, 1e-15, log(2.0), 15, 10.000000001030577);
    free_vals((Value[]){x, y}, 2);
}

Test(interp_unary, not_on_bool) {
    Value x = val(TY(DT_BOOL, 2), D(0, 1));
    Value y = eval_ok(OP_NOT, NULL, 0, &x, 1, x.type);
    EXPECT(&y, 0, 1, 0);
    free_vals((Value[]){x, y}, 2);
}

Test(interp_unary, operand_shape_checked) {
    Value x = val(TY(DT_F64, 3), D(1, 2, 3));
    Diag d = eval_fail(OP_NEG, NULL, 0, &x, 1, TY(DT_F64, 4));
    cr_expect(strstr(d.msg, "'y'") && strstr(d.msg, "neg"), "%s", d.msg);
    value_free(&x);
}

/* ---- cast and the dtype storage rules ---- */

Test(interp_cast, to_i32_truncates_and_wraps) {
    /* 2.7 -> 2, -2.7 -> -2 (toward zero), -0.5 -> 0, 3e9 wraps to
     * 3e9 - 2^32 = -1294967296, NaN and inf -> 0. */
    Attr dt = attr_dtype("dtype", DT_I32);
    Value x = val(TY(DT_F64, 7), D(2.7, -2.7, 0.5, -0.5, 3e9, NAN, INFINITY));
    Value y = eval_ok(OP_CAST, &dt, 1, &x, 1, TY(DT_I32, 7));
    EXPECT(&y, 0, 2, -2, 0, 0, -1294967296.0, 0, 0);
    free_vals((Value[]){x, y}, 2);
}

Test(interp_cast, to_bool_and_float) {
    /* to bool means != 0: -0.5 and NaN are true. */
    Attr db = attr_dtype("dtype", DT_BOOL), df = attr_dtype("dtype", DT_F32);
    Value x = val(TY(DT_F64, 4), D(0, -0.5, 2, NAN));
    Value y = eval_ok(OP_CAST, &db, 1, &x, 1, TY(DT_BOOL, 4));
    EXPECT(&y, 0, 0, 1, 1, 1);
    Value i = val(TY(DT_I32, 2), D(3, -4));
    Value f = eval_ok(OP_CAST, &df, 1, &i, 1, TY(DT_F32, 2));
    EXPECT(&f, 0, 3, -4);
    /* f64 -> f32 rounds only in f32 precision: (float)0.1 = 0.10000000149011612. */
    Value p = val(TY(DT_F64, 1), D(0.1));
    Value q;
    Diag d;
    cr_assert(eval_op(OP_CAST, &df, 1, &p, 1, TY(DT_F32, 1), INTERP_F32, &q, &d), "%s", d.msg);
    EXPECT(&q, 0, 0.10000000149011612);
    Value r = eval_ok(OP_CAST, &df, 1, &p, 1, TY(DT_F32, 1));
    EXPECT(&r, 0, 0.1);
    free_vals((Value[]){x, y, i, f, p, q, r}, 7);
}

/* ---- elementwise binary ---- */

static Value binary(OpKind op, DType dt, DType out_dt, const double *a, const double *b, int n) {
    Value in[2] = {val(TY(dt, n), a), val(TY(dt, n), b)};
    Value out = eval_ok(op, NULL, 0, in, 2, TY(out_dt, n));
    free_vals(in, 2);
    return out;
}

#define BINARY(op, dt, odt, as, bs, ...)                                       \
    do {                                                                       \
        Value b_ = binary(op, dt, odt, D as, D bs,                             \
                          (int)(sizeof(D as) / sizeof(double)));               \
        EXPECT(&b_, 1e-15, __VA_ARGS__);                                       \
        value_free(&b_);                                                       \
    } while (0)

Test(interp_binary, float_arithmetic) {
    BINARY(OP_ADD, DT_F64, DT_F64, (1, -3, 2.5, 0), (2, 4, -0.5, 0), 3, 1, 2, 0);
    BINARY(OP_SUB, DT_F64, DT_F64, (1, -3, 2.5, 0), (2, 4, -0.5, 0), -1, -7, 3, 0);
    BINARY(OP_MUL, DT_F64, DT_F64, (1, -3, 2.5, 0), (2, 4, -0.5, 0), 2, -12, -1.25, 0);
    /* IEEE: 0/0 = NaN, +-1/0 = +-inf, no error. */
    BINARY(OP_DIV, DT_F64, DT_F64, (1, -3, 2.5, 0, 1, -1), (2, 4, -0.5, 0, 0, 0), 0.5, -0.75,
           -5, NAN, INFINITY, -INFINITY);
    /* max/min propagate NaN from either side. */
    BINARY(OP_MAX, DT_F64, DT_F64, (1, -3, 2.5, NAN, 1), (2, 4, -0.5, 1, NAN), 2, 4, 2.5, NAN,
           NAN);
    BINARY(OP_MIN, DT_F64, DT_F64, (1, -3, 2.5, NAN, 1), (2, 4, -0.5, 1, NAN), 1, -3, -0.5, NAN,
           NAN);
    /* 2^10, 9^0.5, 2^-1, 0^0 = 1 (C's pow). */
    BINARY(OP_POW, DT_F64, DT_F64, (2, 9, 2, 0), (10, 0.5, -1, 0), 1024, 3, 0.5, 1);
}

Test(interp_binary, i32_wraps_like_int32) {
    /* 2^31-1 + 1 wraps to -2^31; -2^31 - 1 wraps to 2^31-1. */
    BINARY(OP_ADD, DT_I32, DT_I32, (2147483647, 5), (1, -7), -2147483648.0, -2);
    BINARY(OP_SUB, DT_I32, DT_I32, (-2147483648.0, 5), (1, 7), 2147483647, -2);
    /* 65536^2 = 2^32 -> 0; 46341^2 = 2147488281 -> 2147488281 - 2^32 =
     * -2147479015; 123456789 * 987654321 = 121932631112635269, which a
     * double cannot hold exactly, mod 2^32 -> -67153019. */
    BINARY(OP_MUL, DT_I32, DT_I32, (65536, 46341, 123456789, 3), (65536, 46341, 987654321, -4), 0,
           -2147479015, -67153019, -12);
    /* Division truncates toward zero; x / 0 stores 0; -2^31 / -1 wraps. */
    BINARY(OP_DIV, DT_I32, DT_I32, (-7, 7, 5, -2147483648.0, 6), (2, -2, 0, -1, 3), -3, -3, 0,
           -2147483648.0, 2);
    BINARY(OP_MAX, DT_I32, DT_I32, (-5, 3), (2, 1), 2, 3);
}

Test(interp_binary, logic_and_compare) {
    BINARY(OP_AND, DT_BOOL, DT_BOOL, (0, 0, 1, 1), (0, 1, 0, 1), 0, 0, 0, 1);
    BINARY(OP_OR, DT_BOOL, DT_BOOL, (0, 0, 1, 1), (0, 1, 0, 1), 0, 1, 1, 1);
    /* Every comparison with NaN is false except ne. */
    BINARY(OP_EQ, DT_F64, DT_BOOL, (1, 2, 3, NAN), (2, 2, 2, NAN), 0, 1, 0, 0);
    BINARY(OP_NE, DT_F64, DT_BOOL, (1, 2, 3, NAN), (2, 2, 2, NAN), 1, 0, 1, 1);
    BINARY(OP_LT, DT_F64, DT_BOOL, (1, 2, 3, NAN), (2, 2, 2, NAN), 1, 0, 0, 0);
    BINARY(OP_LE, DT_F64, DT_BOOL, (1, 2, 3, NAN), (2, 2, 2, NAN), 1, 1, 0, 0);
    BINARY(OP_GT, DT_F64, DT_BOOL, (1, 2, 3, NAN), (2, 2, 2, NAN), 0, 0, 1, 0);
    BINARY(OP_GE, DT_I32, DT_BOOL, (1, 2, 3), (2, 2, 2), 0, 1, 1);
}

Test(interp_binary, select) {
    Value in[3] = {val(TY(DT_BOOL, 3), D(1, 0, 1)), val(TY(DT_F64, 3), D(10, 20, 30)),
                   val(TY(DT_F64, 3), D(-1, -2, -3))};
    Value y = eval_ok(OP_SELECT, NULL, 0, in, 3, TY(DT_F64, 3));
    EXPECT(&y, 0, 10, -2, 30);
    free_vals(in, 3);
    value_free(&y);
}

Test(interp_binary, operands_must_match) {
    Value in[2] = {val(TY(DT_F64, 2, 3), NULL), val(TY(DT_F64, 3, 2), NULL)};
    Diag d = eval_fail(OP_ADD, NULL, 0, in, 2, TY(DT_F64, 2, 3));
    cr_expect(strstr(d.msg, "'y' (add)") && strstr(d.msg, "f64[3,2]"), "%s", d.msg);
    free_vals(in, 2);
}

/* ---- precision ---- */

Test(interp_precision, f32_rounds_each_result) {
    /* 0.1 + 0.2 = 0.30000000000000004 in double; stored as f32 it becomes
     * the float nearest, 0.30000001192092896. */
    Value in[2] = {val(TY(DT_F32, 1), D(0.1)), val(TY(DT_F32, 1), D(0.2))};
    Value a, b;
    Diag d;
    cr_assert(eval_op(OP_ADD, NULL, 0, in, 2, TY(DT_F32, 1), INTERP_F32, &a, &d), "%s", d.msg);
    cr_assert(eval_op(OP_ADD, NULL, 0, in, 2, TY(DT_F32, 1), INTERP_F64, &b, &d), "%s", d.msg);
    cr_expect_eq(a.data[0], 0.30000001192092896);
    cr_expect_eq(a.data[0], (double)(float)(0.1 + 0.2));
    cr_expect_eq(b.data[0], 0.1 + 0.2);
    cr_expect_neq(a.data[0], b.data[0]);
    free_vals((Value[]){a, b}, 2);
    /* An f64 result is never rounded, even in f32 precision. */
    in[0].type.dtype = in[1].type.dtype = DT_F64;
    cr_assert(eval_op(OP_ADD, NULL, 0, in, 2, TY(DT_F64, 1), INTERP_F32, &a, &d), "%s", d.msg);
    cr_expect_eq(a.data[0], 0.1 + 0.2);
    value_free(&a);
    free_vals(in, 2);
}

/* ---- random ---- */

static Value random_op(OpKind op, int32_t seed, int32_t step, int64_t stream, double p, Type t,
                       InterpPrecision prec) {
    Value key = val(TY(DT_I32, 2), D(seed, step));
    Attr a[2] = {attr_int("stream", stream), attr_float("p", p)};
    Value out;
    Diag d;
    cr_assert(eval_op(op, a, op == OP_RANDOM_BERNOULLI ? 2 : 1, &key, 1, t, prec, &out, &d), "%s",
              d.msg);
    value_free(&key);
    return out;
}

Test(interp_random, uniform_matches_philox) {
    Type t = TY(DT_F32, 3, 4);
    Value a = random_op(OP_RANDOM_UNIFORM, 42, 7, 5, 0, t, INTERP_F64);
    Value b = random_op(OP_RANDOM_UNIFORM, 42, 7, 5, 0, t, INTERP_F64);
    Value c = random_op(OP_RANDOM_UNIFORM, 42, 7, 6, 0, t, INTERP_F64);
    Value e = random_op(OP_RANDOM_UNIFORM, 42, 8, 5, 0, t, INTERP_F64);
    Value r = random_op(OP_RANDOM_UNIFORM, 42, 7, 5, 0, t, INTERP_F32);
    int same_stream = 0, same_step = 0;
    for (int i = 0; i < 12; i++) {
        double u = philox_uniform(42, 7, 5, (uint64_t)i);
        cr_expect_eq(a.data[i], u, "element %d", i);
        /* (k + 0.5) 2^-24 has 25 significant bits above 0.5: f32 rounds. */
        cr_expect_eq(r.data[i], (double)(float)u, "element %d", i);
        cr_expect_eq(a.data[i], b.data[i]);
        cr_expect(a.data[i] > 0 && a.data[i] < 1);
        same_stream += a.data[i] == c.data[i];
        same_step += a.data[i] == e.data[i];
    }
    cr_expect_eq(same_stream, 0, "another stream repeats %d values", same_stream);
    cr_expect_eq(same_step, 0, "another step repeats %d values", same_step);
    free_vals((Value[]){a, b, c, e, r}, 5);
}

Test(interp_random, negative_key_is_bitwise) {
    /* seed -1 is the uint32 0xffffffff, step -2 is 0xfffffffe. */
    Value a = random_op(OP_RANDOM_UNIFORM, -1, -2, 3, 0, TY(DT_F64, 5), INTERP_F64);
    for (int i = 0; i < 5; i++)
        cr_expect_eq(a.data[i], philox_uniform(0xffffffffu, 0xfffffffeu, 3, (uint64_t)i));
    value_free(&a);
}

Test(interp_random, normal_and_bernoulli) {
    Value n = random_op(OP_RANDOM_NORMAL, 1, 2, 9, 0, TY(DT_F64, 2, 3), INTERP_F64);
    Value f = random_op(OP_RANDOM_NORMAL, 1, 2, 9, 0, TY(DT_F32, 2, 3), INTERP_F32);
    Value b = random_op(OP_RANDOM_BERNOULLI, 1, 2, 9, 0.3, TY(DT_F32, 64), INTERP_F32);
    for (int i = 0; i < 6; i++) {
        double z = philox_normal(1, 2, 9, (uint64_t)i);
        cr_expect_eq(n.data[i], z);
        cr_expect_eq(f.data[i], (double)(float)z);
    }
    int ones = 0;
    for (int i = 0; i < 64; i++) {
        cr_expect_eq(b.data[i], philox_uniform(1, 2, 9, (uint64_t)i) < 0.3 ? 1.0 : 0.0);
        ones += b.data[i] == 1.0;
    }
    cr_expect(ones > 0 && ones < 64, "bernoulli(0.3) gave %d ones of 64", ones);
    free_vals((Value[]){n, f, b}, 3);
}

Test(interp_random, key_must_be_pair) {
    Value key = val(TY(DT_I32, 3), D(1, 2, 3));
    Attr a = attr_int("stream", 0);
    Diag d = eval_fail(OP_RANDOM_UNIFORM, &a, 1, &key, 1, TY(DT_F32, 2));
    cr_expect(strstr(d.msg, "random_uniform"), "%s", d.msg);
    value_free(&key);
}

/* ---- ops the kernel dispatcher refuses ---- */

Test(interp_dispatch, composite_needs_decompose) {
    Value x = val(TY(DT_F32, 2, 3), NULL);
    Attr a = attr_int("axis", 1);
    Diag d = eval_fail(OP_SOFTMAX, &a, 1, &x, 1, x.type);
    cr_expect_eq(d.code, EXIT_BADINPUT);
    cr_expect(strstr(d.msg, "'y'") && strstr(d.msg, "op softmax is a composite: run the "
                                             "decompose pass first"), "%s", d.msg);
    Value two[2] = {val(type_scalar(DT_F32), D(1)), x};
    d = eval_fail(OP_GRAD, NULL, 0, two, 2, x.type);
    cr_expect(strstr(d.msg, "'y' (grad)") && strstr(d.msg, "autodiff"), "%s", d.msg);
    value_free(&two[0]);
    d = eval_fail(OP_INPUT, NULL, 0, NULL, 0, x.type);
    cr_expect(strstr(d.msg, "input"), "%s", d.msg);
    value_free(&x);
}

/* ---- interp_run ---- */

/* main(x f32[2,3]; w = param fc.w f32[3,2]):
 *   y = matmul(x, w); sq = mul(y, y) (y read twice); r = relu(y);
 *   dead = neg(x) (never read); s = reduce_sum(r, {0,1});
 *   outputs r, loss = s, y. */
static Module *small_module(Function **out) {
    Module *m = module_new("m");
    module_add_param(m, "fc.w", TY(DT_F32, 3, 2), (InitSpec){INIT_ZEROS, 0}, true);
    Function *f = module_add_func(m, "main");
    int x = func_add_node(m, f, OP_INPUT, "x", NULL, 0, NULL, 0, TY(DT_F32, 2, 3));
    Attr ref = attr_str("ref", "fc.w");
    int w = func_add_node(m, f, OP_PARAM, "w", NULL, 0, &ref, 1, TY(DT_F32, 3, 2));
    int y = func_add_node(m, f, OP_MATMUL, "y", (int[]){x, w}, 2, NULL, 0, TY(DT_F32, 2, 2));
    int sq = func_add_node(m, f, OP_MUL, "sq", (int[]){y, y}, 2, NULL, 0, TY(DT_F32, 2, 2));
    int r = func_add_node(m, f, OP_RELU, "r", &y, 1, NULL, 0, TY(DT_F32, 2, 2));
    func_add_node(m, f, OP_NEG, "dead", &x, 1, NULL, 0, TY(DT_F32, 2, 3));
    Attr ax = attr_ints("axes", DIMS(0, 1), 2);
    int s = func_add_node(m, f, OP_REDUCE_SUM, "s", &r, 1, &ax, 1, type_scalar(DT_F32));
    func_add_output(m, f, "r", r);
    func_add_output(m, f, "loss", s);
    func_add_output(m, f, "y", y);
    func_add_output(m, f, "sq", sq);
    *out = f;
    return m;
}

/* Runs small_module; the caller frees the module after reading the
 * outputs, whose names borrow from it. */
static bool run_small(Module **mp, const NamedValue *in, int nin, const NamedValue *par,
                      int npar, NamedValue **out, int *nout, Diag *d) {
    Function *f;
    *mp = small_module(&f);
    diag_init(d);
    return interp_run(*mp, f, &(InterpOptions){INTERP_F64}, in, nin, par, npar, out, nout, d);
}

static const double X[6] = {1, 2, 3, -1, -2, -3}, W[6] = {1, 0, 0, 1, 1, -1};

Test(interp_run, computes_outputs) {
    /* w rows [1,0],[0,1],[1,-1]: y = [[1+3, 2-3], [-1-3, -2+3]] = [[4,-1],[-4,1]];
     * sq = [[16,1],[16,1]]; relu = [[4,0],[0,1]]; loss = 5. */
    NamedValue in = {"x", TY(DT_F32, 2, 3), (double *)X};
    NamedValue par = {"fc.w", TY(DT_F64, 3, 2), (double *)W}; /* f64 binds to f32 */
    NamedValue *out;
    int nout;
    Diag d;
    Module *m;
    cr_assert(run_small(&m, &in, 1, &par, 1, &out, &nout, &d), "%s", d.msg);
    cr_assert_eq(nout, 4);
    cr_expect_str_eq(out[0].name, "r");
    cr_expect_str_eq(out[1].name, "loss");
    cr_expect_str_eq(out[2].name, "y");
    Type t22 = TY(DT_F32, 2, 2);
    cr_expect(type_equal(&out[0].type, &t22));
    cr_expect_eq(out[1].type.rank, 0);
    Value r = {out[0].type, out[0].data}, s = {out[1].type, out[1].data};
    Value y = {out[2].type, out[2].data}, q = {out[3].type, out[3].data};
    EXPECT(&r, 0, 4, 0, 0, 1);
    EXPECT(&s, 0, 5);
    EXPECT(&y, 0, 4, -1, -4, 1);
    EXPECT(&q, 0, 16, 1, 16, 1);
    cr_expect_neq(out[0].data, (double *)X);
    named_values_free(out, nout);
    module_free(m);
}

Test(interp_run, f32_precision_rounds_bound_inputs) {
    /* x = [0.1, 0.2] rounds to floats on binding; their sum
     * 0.30000000447034836 rounds to 0.30000001192092896. */
    Module *m = module_new("m");
    Function *f = module_add_func(m, "main");
    int x = func_add_node(m, f, OP_INPUT, "x", NULL, 0, NULL, 0, TY(DT_F32, 2));
    Attr ax = attr_ints("axes", DIMS(0), 1);
    int s = func_add_node(m, f, OP_REDUCE_SUM, "s", &x, 1, &ax, 1, type_scalar(DT_F32));
    func_add_output(m, f, "s", s);
    func_add_output(m, f, "x", x);
    NamedValue in = {"x", TY(DT_F32, 2), (double[]){0.1, 0.2}};
    NamedValue *out;
    int nout;
    Diag d;
    diag_init(&d);
    cr_assert(interp_run(m, f, &(InterpOptions){INTERP_F32}, &in, 1, NULL, 0, &out, &nout, &d),
              "%s", d.msg);
    cr_expect_eq(out[0].data[0], 0.30000001192092896);
    cr_expect_eq(out[1].data[0], 0.10000000149011612);
    named_values_free(out, nout);
    cr_assert(interp_run(m, f, &(InterpOptions){INTERP_F64}, &in, 1, NULL, 0, &out, &nout, &d),
              "%s", d.msg);
    cr_expect_eq(out[0].data[0], 0.1 + 0.2);
    named_values_free(out, nout);
    module_free(m);
}

static Diag run_fail(const NamedValue *in, int nin, const NamedValue *par, int npar) {
    NamedValue *out = (NamedValue *)1;
    int nout = -1;
    Diag d;
    Module *m;
    cr_assert(!run_small(&m, in, nin, par, npar, &out, &nout, &d));
    cr_expect(out == NULL && nout == 0);
    module_free(m);
    return d;
}

Test(interp_run, binding_errors_name_the_value) {
    NamedValue par = {"fc.w", TY(DT_F32, 3, 2), (double *)W};
    NamedValue wrong_shape = {"x", TY(DT_F32, 3, 2), (double *)X};
    Diag d = run_fail(&wrong_shape, 1, &par, 1);
    cr_expect_eq(d.code, EXIT_BADINPUT);
    cr_expect(strstr(d.msg, "input 'x'") && strstr(d.msg, "f32[2,3]") && strstr(d.msg, "f32[3,2]"),
              "%s", d.msg);

    NamedValue other = {"z", TY(DT_F32, 2, 3), (double *)X};
    d = run_fail(&other, 1, &par, 1);
    cr_expect_eq(d.code, EXIT_BADINPUT);
    cr_expect(strstr(d.msg, "missing input 'x'"), "%s", d.msg);

    NamedValue ints = {"x", TY(DT_I32, 2, 3), (double *)X};
    d = run_fail(&ints, 1, &par, 1);
    cr_expect(strstr(d.msg, "i32[2,3]") && strstr(d.msg, "f32[2,3]"), "%s", d.msg);

    NamedValue x = {"x", TY(DT_F32, 2, 3), (double *)X};
    d = run_fail(&x, 1, NULL, 0);
    cr_expect(strstr(d.msg, "missing param 'fc.w'"), "%s", d.msg);

    NamedValue bad_par = {"fc.w", TY(DT_F32, 2, 3), (double *)W};
    d = run_fail(&x, 1, &bad_par, 1);
    cr_expect(strstr(d.msg, "param 'fc.w'") && strstr(d.msg, "f32[3,2]"), "%s", d.msg);
}

/* A runtime failure mid-run (gather index 5 of 3 classes) names the node
 * and frees every live value (ASan checks). */
Test(interp_run, kernel_error_mid_run) {
    Module *m = module_new("m");
    Function *f = module_add_func(m, "main");
    int x = func_add_node(m, f, OP_INPUT, "logits", NULL, 0, NULL, 0, TY(DT_F32, 2, 3));
    int i = func_add_node(m, f, OP_INPUT, "labels", NULL, 0, NULL, 0, TY(DT_I32, 2));
    int e = func_add_node(m, f, OP_EXP, "e", &x, 1, NULL, 0, TY(DT_F32, 2, 3));
    int g = func_add_node(m, f, OP_GATHER, "picked", (int[]){e, i}, 2, NULL, 0, TY(DT_F32, 2));
    func_add_output(m, f, "picked", g);
    func_add_output(m, f, "e", e);
    NamedValue in[2] = {{"labels", TY(DT_I32, 2), (double[]){1, 5}},
                        {"logits", TY(DT_F32, 2, 3), (double *)X}};
    NamedValue *out;
    int nout;
    Diag d;
    diag_init(&d);
    cr_assert(!interp_run(m, f, NULL, in, 2, NULL, 0, &out, &nout, &d));
    cr_expect_eq(d.code, EXIT_RUNTIME);
    cr_expect(strstr(d.msg, "'picked' (gather)") && strstr(d.msg, "index 5"), "%s", d.msg);

    /* With a valid label the same graph runs: exp(X[0][1]) = e^2, exp(X[1][0]) = e^-1. */
    in[0].data = (double[]){1, 0};
    cr_assert(interp_run(m, f, &(InterpOptions){INTERP_F64}, in, 2, NULL, 0, &out, &nout, &d),
              "%s", d.msg);
    Value p = {out[0].type, out[0].data};
    EXPECT(&p, 1e-15, exp(2.0), exp(-1.0));
    named_values_free(out, nout);
    module_free(m);
}

Test(interp_run, composite_in_graph) {
    Module *m = module_new("m");
    Function *f = module_add_func(m, "main");
    int x = func_add_node(m, f, OP_INPUT, "x", NULL, 0, NULL, 0, TY(DT_F32, 2, 3));
    Attr a = attr_int("axis", 1);
    int s = func_add_node(m, f, OP_LOG_SOFTMAX, "lsm", &x, 1, &a, 1, TY(DT_F32, 2, 3));
    func_add_output(m, f, "out", s);
    NamedValue in = {"x", TY(DT_F32, 2, 3), (double *)X};
    NamedValue *out;
    int nout;
    Diag d;
    diag_init(&d);
    cr_assert(!interp_run(m, f, NULL, &in, 1, NULL, 0, &out, &nout, &d));
    cr_expect(strstr(d.msg, "'lsm'") && strstr(d.msg, "log_softmax is a composite"), "%s", d.msg);
    module_free(m);
}
