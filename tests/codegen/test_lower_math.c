/* The compound math of codegen/lower_math.c and ops/elementwise.c, expanded
 * into kernel-IR primitives and run by the kernel evaluator, against the
 * interpreter's own C definitions (ir/scalar.h, the interpreter's i32 cast,
 * base/philox.h): the one definition every backend's expansion is tested
 * against. The renderers are then checked primitive by primitive against
 * the evaluator (test_llvm.c, test_cuda_emul_ops.c). */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/philox.h"
#include "codegen/lower_math.h"
#include "ir/interp_internal.h"
#include "ir/scalar.h"

#define N 4096

/* Inputs: specials, then a log-spaced sweep of both signs over the range
 * where the formulas switch branches (|x| from 1e-8 to 1e3). */
static void inputs(double *x) {
    const double sp[] = {0.0, -0.0, NAN, INFINITY, -INFINITY, 1.0, -1.0, 20.0, 20.5, -20.0,
                         1e-300, -1e-300, 700.0, -745.0, 0.5, 88.0, -103.0};
    int ns = (int)(sizeof sp / sizeof sp[0]);
    for (int i = 0; i < N; i++) {
        if (i < ns) {
            x[i] = sp[i];
            continue;
        }
        double t = (double)(i - ns) / (N - ns); /* 0 .. 1 */
        double m = pow(10.0, -8.0 + 11.0 * t);
        x[i] = (i % 2) ? -m : m;
    }
}

/* y = f(x) for the elementwise op, at type t. */
static KernelDef *unary_kernel(OpKind op, KType t, double beta) {
    KernelDef *k = kernel_new("u", N);
    int x = kernel_add_buf(k, t, N, false, "x"), y = kernel_add_buf(k, t, N, true, "y");
    int i = k_index(k);
    int r = lm_unary(k, op, k_load(k, x, i), beta);
    cr_assert_geq(r, 0, "no expansion for %s", op_name(op));
    k_store(k, y, i, r);
    return k;
}

static void eval(KernelDef *k, void **bufs) {
    Diag d;
    diag_init(&d);
    cr_assert(kernel_eval(k, bufs, 0, k->domain, &d), "%s", d.msg);
}

static bool same(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

/* |got - want| within ulps of the type at want (exact where ulps is 0;
 * NaN and infinities must match exactly). */
static bool close_to(double got, double want, KType t, double ulps) {
    if (same(got, want)) return true;
    if (!isfinite(got) || !isfinite(want)) return false;
    double eps = t == KT_F32 ? FLT_EPSILON : DBL_EPSILON;
    double tiny = t == KT_F32 ? FLT_MIN : DBL_MIN;
    return fabs(got - want) <= ulps * eps * fmax(fabs(want), tiny);
}

static const struct {
    OpKind op;
    double beta;
    double ulps_f64, ulps_f32; /* 0: bit-identical to the interpreter */
} unary_cases[] = {
    {OP_NEG, 1, 0, 0},     {OP_ABS, 1, 0, 0},     {OP_SIGN, 1, 0, 0},
    {OP_RELU, 1, 0, 0},    {OP_EXP, 1, 0, 2},     {OP_LOG, 1, 0, 2},
    {OP_SQRT, 1, 0, 0},    {OP_RSQRT, 1, 0, 2},   {OP_RECIP, 1, 0, 0},
    {OP_SIGMOID, 1, 0, 4}, {OP_TANH, 1, 0, 0},    {OP_ERF, 1, 0, 0},
    /* f32 softplus rounds beta x in f32 before exp: a relative error up to
     * |beta x| / 2 ulps where exp(beta x) matters (beta x > -88) */
    {OP_SOFTPLUS, 1, 4, 64}, {OP_SOFTPLUS, 2.5, 4, 64}, {OP_STOP_GRADIENT, 1, 0, 0},
};

Test(lower_math, unary_expansions_match_the_interpreter) {
    static double x[N], y[N];
    static float xf[N], yf[N];
    inputs(x);
    for (int i = 0; i < N; i++) xf[i] = (float)x[i];
    for (size_t c = 0; c < sizeof unary_cases / sizeof unary_cases[0]; c++) {
        OpKind op = unary_cases[c].op;
        double beta = unary_cases[c].beta;
        KernelDef *k = unary_kernel(op, KT_F64, beta);
        eval(k, (void *[]){x, y});
        for (int i = 0; i < N; i++) {
            double want = ir_unary_f64(op, x[i], beta);
            cr_expect(close_to(y[i], want, KT_F64, unary_cases[c].ulps_f64),
                      "f64 %s(%.17g) beta %g: %.17g, interpreter %.17g", op_name(op), x[i], beta,
                      y[i], want);
        }
        kernel_free(k);
        /* f32: the interpreter computes in double and rounds once */
        k = unary_kernel(op, KT_F32, beta);
        eval(k, (void *[]){xf, yf});
        for (int i = 0; i < N; i++) {
            double want = (double)(float)ir_unary_f64(op, (double)xf[i], beta);
            cr_expect(close_to(yf[i], want, KT_F32, unary_cases[c].ulps_f32),
                      "f32 %s(%.9g) beta %g: %.9g, interpreter %.9g", op_name(op), (double)xf[i],
                      beta, (double)yf[i], want);
        }
        kernel_free(k);
    }
}

Test(lower_math, max_min_propagate_nan_as_the_interpreter) {
    enum { M = 7 };
    double a[M * M], b[M * M], mx[M * M], mn[M * M];
    const double v[M] = {NAN, -INFINITY, -1.5, -0.0, 0.0, 2.0, INFINITY};
    for (int i = 0; i < M * M; i++) {
        a[i] = v[i / M];
        b[i] = v[i % M];
    }
    KernelDef *k = kernel_new("mm", M * M);
    int ba = kernel_add_buf(k, KT_F64, M * M, false, "a"), bb = kernel_add_buf(k, KT_F64, M * M, false, "b");
    int bx = kernel_add_buf(k, KT_F64, M * M, true, "mx"), bn = kernel_add_buf(k, KT_F64, M * M, true, "mn");
    int i = k_index(k), la = k_load(k, ba, i), lb = k_load(k, bb, i);
    k_store(k, bx, i, lm_binary(k, OP_MAX, la, lb));
    k_store(k, bn, i, lm_binary(k, OP_MIN, la, lb));
    eval(k, (void *[]){a, b, mx, mn});
    for (int j = 0; j < M * M; j++) {
        double wx = ir_max_f64(a[j], b[j]), wn = ir_min_f64(a[j], b[j]);
        /* bit patterns: max(-0, 0) must pick the same zero */
        cr_expect(same(mx[j], wx) && signbit(mx[j]) == signbit(wx), "max(%g, %g) = %g, want %g",
                  a[j], b[j], mx[j], wx);
        cr_expect(same(mn[j], wn) && signbit(mn[j]) == signbit(wn), "min(%g, %g) = %g, want %g",
                  a[j], b[j], mn[j], wn);
    }
    kernel_free(k);
}

/* C's truncating division; x / 0 = 0 and INT_MIN / -1 wraps. */
static int32_t c_div(int32_t a, int32_t b) {
    if (b == 0) return 0;
    if (b == -1) return (int32_t)(0u - (uint32_t)a);
    return a / b;
}

Test(lower_math, integer_division_and_casts) {
    enum { M = 9 };
    const int32_t v[M] = {INT32_MIN, -7, -2, -1, 0, 1, 2, 7, INT32_MAX};
    int32_t a[M * M], b[M * M], q[M * M];
    for (int i = 0; i < M * M; i++) {
        a[i] = v[i / M];
        b[i] = v[i % M];
    }
    KernelDef *k = kernel_new("idiv", M * M);
    int ba = kernel_add_buf(k, KT_I32, M * M, false, "a"), bb = kernel_add_buf(k, KT_I32, M * M, false, "b");
    int bq = kernel_add_buf(k, KT_I32, M * M, true, "q");
    int i = k_index(k), la = k_load(k, ba, i), lb = k_load(k, bb, i);
    k_store(k, bq, i, lm_binary(k, OP_DIV, la, lb));
    eval(k, (void *[]){a, b, q});
    for (int j = 0; j < M * M; j++)
        cr_expect_eq(q[j], c_div(a[j], b[j]), "%d / %d = %d", a[j], b[j], q[j]);
    kernel_free(k);

    /* float -> i32 is the interpreter's wrap; -> bool is x != 0 */
    static double x[N];
    static int32_t c[N];
    static unsigned char bo[N];
    inputs(x);
    for (int j = 0; j < 64; j++) x[N - 1 - j] = ldexp(1.0, 20 + j) + j; /* past 2^31, 2^32, 2^63 */
    k = kernel_new("casts", N);
    int bx = kernel_add_buf(k, KT_F64, N, false, "x"), bc = kernel_add_buf(k, KT_I32, N, true, "c");
    int bb2 = kernel_add_buf(k, KT_BOOL, N, true, "b");
    i = k_index(k);
    int lx = k_load(k, bx, i);
    k_store(k, bc, i, lm_cast(k, KT_I32, lx));
    k_store(k, bb2, i, lm_cast(k, KT_BOOL, lx));
    eval(k, (void *[]){x, c, bo});
    for (int j = 0; j < N; j++) {
        cr_expect_eq((double)c[j], interp_wrap_i32(x[j]), "(i32)%.17g = %d", x[j], c[j]);
        cr_expect_eq(bo[j], x[j] != 0, "(bool)%.17g = %d", x[j], bo[j]);
    }
    kernel_free(k);
}

Test(lower_math, random_is_base_philox_bit_for_bit) {
    enum { M = 2000 };
    static float u32v[M], n32[M], b32[M];
    static double u64v[M], n64[M], b64[M];
    int32_t key[2] = {-12345, 77};
    KernelDef *k = kernel_new("rand", M);
    int kb = kernel_add_buf(k, KT_I32, 2, false, "key");
    int out[6];
    for (int j = 0; j < 6; j++) out[j] = kernel_add_buf(k, j < 3 ? KT_F32 : KT_F64, M, true, "o");
    int i = k_index(k);
    int seed = k_load(k, kb, k_const_i(k, KT_I64, 0)), step = k_load(k, kb, k_const_i(k, KT_I64, 1));
    int idx = k_binary(k, KO_ADD, i, k_const_i(k, KT_I64, ((int64_t)1 << 32) - 1000)); /* hi word */
    for (int j = 0; j < 6; j++) {
        KType t = j < 3 ? KT_F32 : KT_F64;
        KRandom r = (KRandom)(j % 3);
        k_store(k, out[j], i, lm_random(k, r, t, seed, step, idx, 4000000000u, 0.3));
    }
    eval(k, (void *[]){key, u32v, n32, b32, u64v, n64, b64});
    for (int j = 0; j < M; j++) {
        uint64_t ix = ((uint64_t)1 << 32) - 1000 + (uint64_t)j;
        double u = philox_uniform((uint32_t)key[0], 77, 4000000000u, ix);
        double n = philox_normal((uint32_t)key[0], 77, 4000000000u, ix);
        cr_expect_eq(u64v[j], u, "uniform %d", j);
        cr_expect_eq((double)u32v[j], (double)(float)u, "uniform f32 %d", j);
        cr_expect_eq(n64[j], n, "normal %d: %.17g vs %.17g", j, n64[j], n);
        cr_expect_eq((double)n32[j], (double)(float)n, "normal f32 %d", j);
        cr_expect_eq(b64[j], u < 0.3 ? 1.0 : 0.0, "bernoulli %d", j);
        cr_expect_eq((double)b32[j], u < 0.3 ? 1.0 : 0.0, "bernoulli f32 %d", j);
    }
    kernel_free(k);
}

/* A primitive's precondition broken is an evaluator error, not a value. */
Test(lower_math, evaluator_rejects_broken_preconditions) {
    struct { KOp op; int64_t a, b; const char *msg; } cs[] = {
        {KO_DIV, 5, 0, "integer division by 0 or overflow"},
        {KO_DIV, INT32_MIN, -1, "integer division by 0 or overflow"},
        {KO_SHR, 5, 32, "shift out of range"},
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        KernelDef *k = kernel_new("pre", 1);
        int y = kernel_add_buf(k, KT_I32, 1, true, "y");
        int r = k_binary(k, cs[c].op, k_const_i(k, KT_I32, cs[c].a), k_const_i(k, KT_I32, cs[c].b));
        k_store(k, y, k_index(k), r);
        int32_t out = 0;
        Diag d;
        diag_init(&d);
        cr_expect_not(kernel_eval(k, (void *[]){&out}, 0, 1, &d), "%s accepted", kop_name(cs[c].op));
        cr_expect(strstr(d.msg, cs[c].msg), "%s", d.msg);
        kernel_free(k);
    }
    KernelDef *k = kernel_new("frac", 1);
    int y = kernel_add_buf(k, KT_I32, 1, true, "y");
    k_store(k, y, k_index(k), k_cast(k, KT_I32, k_const_f(k, KT_F64, 2.5)));
    int32_t out = 0;
    Diag d;
    diag_init(&d);
    cr_expect_not(kernel_eval(k, (void *[]){&out}, 0, 1, &d));
    cr_expect(strstr(d.msg, "is not an integer of i32"), "%s", d.msg);
    kernel_free(k);
}

/* Every elementwise primitive of the op table has an interpreter value and
 * a kernel lowering: a row added without either fails here, not silently. */
Test(lower_math, every_elementwise_primitive_has_a_value_and_a_lowering) {
    int checked = 0;
    for (OpKind op = 0; op < OP_COUNT; op++) {
        const OpInfo *info = op_info(op);
        if (info->pattern != PK_ELEMWISE || info->cls != OC_PRIMITIVE || op == OP_SELECT ||
            op == OP_CAST)
            continue;
        bool boolean = op == OP_NOT || op == OP_AND || op == OP_OR;
        KType t = boolean ? KT_BOOL : KT_F64;
        KernelDef *k = kernel_new("row", 1);
        int a = boolean ? k_const_i(k, t, 1) : k_const_f(k, t, 0.5);
        int b = boolean ? k_const_i(k, t, 0) : k_const_f(k, t, 0.25);
        int r = info->min_inputs == 1 ? lm_unary(k, op, a, 1.0) : lm_binary(k, op, a, b);
        cr_expect_geq(r, 0, "%s has no kernel lowering (ops/elementwise.c)", info->name);
        double want = info->min_inputs == 1 ? ir_unary_f64(op, boolean ? 1 : 0.5, 1.0)
                                            : ir_binary_f64(op, boolean ? 1 : 0.5, boolean ? 0 : 0.25, false);
        cr_expect_not(isnan(want), "%s has no interpreter value (ops/elementwise.c)", info->name);
        if (r >= 0 && !isnan(want)) {
            KType rt = k->insts[r].type;
            int y = kernel_add_buf(k, rt, 1, true, "y");
            k_store(k, y, k_index(k), r);
            double f = 0;
            unsigned char bo = 0;
            eval(k, (void *[]){rt == KT_BOOL ? (void *)&bo : (void *)&f});
            double got = rt == KT_BOOL ? bo : f;
            cr_expect(close_to(got, want, KT_F64, 4), "%s: lowering %.17g, interpreter %.17g",
                      info->name, got, want);
        }
        kernel_free(k);
        checked++;
    }
    cr_expect_geq(checked, 30);
}
