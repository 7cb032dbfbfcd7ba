/* The LLVM CPU backend against the reference evaluator.
 *
 * Every kernel below is compiled into one CpuModule per test, optimised
 * (O3), written as an object, linked into a shared library with cpu_link
 * and loaded with dlopen; each kernel then runs on the full domain and on
 * partial ranges [begin, end), and every buffer (outputs, and the elements
 * outside the range, which must stay untouched) is compared with
 * kernel_eval on the same inputs.
 *
 * Tolerances: integer and bool results bitwise; float results exactly for
 * the correctly rounded operations (+ - * /, sqrt, max/min, comparisons,
 * casts, Philox uniform numbers), and within a relative 2e-6 (f32) / 1e-13
 * (f64) for the transcendental ones (exp, log, pow, sigmoid, softplus,
 * rsqrt, Box-Muller), where the evaluator rounds a double result once while
 * the compiled code calls the f32 libm routines (each within 1-2 ulp) or
 * evaluates log1p by Goldberg's formula. Any NaN matches any NaN.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/philox.h"
#include "codegen/cpu/llvm_backend.h"
#include "codegen/lower_math.h"
#include "tests/common/scratch.h"

TestSuite(llvm, .init = scratch_setup, .fini = scratch_teardown);

typedef void (*KernelFn)(void *const *, int64_t, int64_t);

#define TOL_F32 2e-6
#define TOL_F64 1e-13

/* How a buffer is filled: general values with specials (NaN, infinities,
 * signed zeros, extremes), small values with many ties, or 0..9. */
typedef enum { F_GEN, F_TIES, F_DIGIT } Fill;

typedef struct {
    KernelDef *k;
    double tol; /* 0: exact; else relative, any float output */
    Fill fill[8];
} Case;

typedef struct {
    Case c[400];
    int n;
} Suite;

static void add_case(Suite *s, KernelDef *k, double tol) {
    cr_assert_lt(s->n, 400);
    Diag d;
    diag_init(&d);
    cr_assert(kernel_verify(k, &d), "%s", d.msg);
    s->c[s->n++] = (Case){k, tol, {F_GEN}};
}

static Case *last(Suite *s) { return &s->c[s->n - 1]; }

/* ---- test data ---- */

static uint64_t next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static double unif(uint64_t *s) { return (double)(next(s) >> 11) / 9007199254740992.0; }

static double gen_float(uint64_t *s) {
    static const double specials[] = {0.0, -0.0, 1.0, -1.0, NAN, INFINITY, -INFINITY, 20.5,
                                      -30.0, 1e-8, -1e-8, 100.0, 1e30, -1e30, 0.5, 3e9};
    if (next(s) % 6 == 0) return specials[next(s) % 16];
    return (unif(s) * 2 - 1) * 6;
}

static int64_t gen_int(uint64_t *s, bool wide) {
    static const int64_t specials[] = {0, 1, -1, INT32_MIN, INT32_MAX, 7, -7, 2};
    uint64_t r = next(s);
    if (r % 5 == 0) return specials[(r >> 8) % 8];
    if (r % 5 == 1) return (int64_t)((r >> 8) % 21) - 10;
    return wide ? (int64_t)next(s) : (int64_t)(int32_t)(uint32_t)next(s);
}

static void put(void *p, KType t, int64_t i, double f, int64_t v) {
    switch (t) {
    case KT_F32: ((float *)p)[i] = (float)f; break;
    case KT_F64: ((double *)p)[i] = f; break;
    case KT_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case KT_I64: ((int64_t *)p)[i] = v; break;
    default: ((unsigned char *)p)[i] = (unsigned char)(v & 1); break;
    }
}

static void fill_buf(void *p, const KBuf *b, Fill f, uint64_t *s) {
    for (int64_t i = 0; i < b->numel; i++) {
        int64_t r = (int64_t)(next(s) % 64);
        switch (f) {
        case F_TIES: put(p, b->type, i, r == 0 ? NAN : r == 1 ? -INFINITY : (double)(r % 4), r % 4); break;
        case F_DIGIT: put(p, b->type, i, (double)(r % 10), r % 10); break;
        default: put(p, b->type, i, gen_float(s), gen_int(s, b->type == KT_I64)); break;
        }
    }
}

/* ---- comparison ---- */

static bool close_enough(double a, double b, double tol) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (tol == 0) return memcmp(&a, &b, sizeof a) == 0 || (a == 0 && b == 0 && signbit(a) == signbit(b));
    if (a == b) return true;
    return fabs(a - b) <= tol * fmax(fabs(a), fabs(b));
}

static bool elem_same(const void *x, const void *y, KType t, int64_t i, double tol, char *msg) {
    double a, b;
    switch (t) {
    case KT_F32: a = ((const float *)x)[i]; b = ((const float *)y)[i]; break;
    case KT_F64: a = ((const double *)x)[i]; b = ((const double *)y)[i]; break;
    default: {
        size_t z = ktype_size(t);
        if (!memcmp((const char *)x + i * (int64_t)z, (const char *)y + i * (int64_t)z, z)) return true;
        int64_t u = 0, v = 0;
        memcpy(&u, (const char *)x + i * (int64_t)z, z);
        memcpy(&v, (const char *)y + i * (int64_t)z, z);
        snprintf(msg, 200, "eval %lld, compiled %lld", (long long)u, (long long)v);
        return false;
    }
    }
    if (close_enough(a, b, tol)) return true;
    snprintf(msg, 200, "eval %.9g, compiled %.9g", a, b);
    return false;
}

/* Runs one case on [begin, end) with both the evaluator and the compiled
 * function, on identical copies of the same data; compares every buffer. */
static void run_range(const Case *c, KernelFn fn, int64_t begin, int64_t end, uint64_t seed) {
    const KernelDef *k = c->k;
    void *ev[8], *cp[8];
    cr_assert_leq(k->nbufs, 8);
    uint64_t s = seed;
    for (int i = 0; i < k->nbufs; i++) {
        size_t bytes = (size_t)k->bufs[i].numel * ktype_size(k->bufs[i].type) + 1;
        ev[i] = malloc(bytes);
        cp[i] = malloc(bytes);
        fill_buf(ev[i], &k->bufs[i], c->fill[i], &s);
        memcpy(cp[i], ev[i], bytes);
    }
    Diag d;
    diag_init(&d);
    cr_assert(kernel_eval(k, ev, begin, end, &d), "%s: %s", k->name, d.msg);
    fn(cp, begin, end);
    for (int i = 0; i < k->nbufs; i++) {
        char msg[200];
        double tol = c->tol == 0 ? 0 : k->bufs[i].type == KT_F32 ? TOL_F32 : TOL_F64;
        for (int64_t j = 0; j < k->bufs[i].numel; j++)
            if (!elem_same(ev[i], cp[i], k->bufs[i].type, j, tol, msg))
                cr_assert_fail("%s [%lld,%lld): buffer b%d element %lld: %s", k->name,
                               (long long)begin, (long long)end, i, (long long)j, msg);
        free(ev[i]);
        free(cp[i]);
    }
}

static void *compile_all(Suite *s, const char *lib) {
    Diag d;
    diag_init(&d);
    CpuModule *m = cpu_module_new("test", &d);
    cr_assert(m, "%s", d.msg);
    for (int i = 0; i < s->n; i++) cr_assert(cpu_add_kernel(m, s->c[i].k, &d), "%s", d.msg);
    cr_assert(cpu_optimize(m, &d), "%s", d.msg);
    const char *obj = in_dir("kernels.o");
    cr_assert(cpu_emit_object(m, obj, &d), "%s", d.msg);
    cpu_module_free(m);
    const char *so = in_dir(lib);
    cr_assert(cpu_link(&obj, 1, so, true, NULL, 0, &d), "%s", d.msg);
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    cr_assert(h, "dlopen: %s", dlerror());
    return h;
}

/* Full domain, a partial range and an empty one, for every case. */
static void check_suite(Suite *s) {
    void *h = compile_all(s, "kernels.so");
    for (int i = 0; i < s->n; i++) {
        const Case *c = &s->c[i];
        KernelFn fn = (KernelFn)(uintptr_t)dlsym(h, c->k->name);
        cr_assert(fn, "dlsym %s", c->k->name);
        int64_t D = c->k->domain;
        run_range(c, fn, 0, D, 42 + (uint64_t)i);
        run_range(c, fn, D / 3, D - D / 5, 7 + (uint64_t)i);
        run_range(c, fn, D / 2, D / 2, 9);
    }
    dlclose(h);
    for (int i = 0; i < s->n; i++) kernel_free(s->c[i].k);
}

/* ---- kernels ---- */

static bool is_float(KType t) { return t == KT_F32 || t == KT_F64; }

/* out[i] = op(x[i]) */
static KernelDef *unary_k(OpKind op, KType t, double beta, int64_t n) {
    char name[96];
    snprintf(name, sizeof name, "u_%s_%s_%d", op_name(op), ktype_name(t), (int)(beta * 10));
    KernelDef *k = kernel_new(name, n);
    int x = kernel_add_buf(k, t, n, false, "x"), y = kernel_add_buf(k, t, n, true, "y");
    int i = k_index(k);
    k_store(k, y, i, lm_unary(k, op, k_load(k, x, i), beta));
    return k;
}

/* out[i] = op(a[i], b[i]) */
static KernelDef *binary_k(OpKind op, KType t, int64_t n) {
    char name[96];
    snprintf(name, sizeof name, "b_%s_%s", op_name(op), ktype_name(t));
    bool cmp = op >= OP_EQ && op <= OP_GE;
    KernelDef *k = kernel_new(name, n);
    int a = kernel_add_buf(k, t, n, false, "a"), b = kernel_add_buf(k, t, n, false, "b");
    int y = kernel_add_buf(k, cmp ? KT_BOOL : t, n, true, "y");
    int i = k_index(k);
    k_store(k, y, i, lm_binary(k, op, k_load(k, a, i), k_load(k, b, i)));
    return k;
}

static KernelDef *cast_k(KType from, KType to, int64_t n) {
    char name[96];
    snprintf(name, sizeof name, "c_%s_%s", ktype_name(from), ktype_name(to));
    KernelDef *k = kernel_new(name, n);
    int x = kernel_add_buf(k, from, n, false, "x"), y = kernel_add_buf(k, to, n, true, "y");
    int i = k_index(k);
    k_store(k, y, i, lm_cast(k, to, k_load(k, x, i)));
    return k;
}

/* y[i] = c[i] ? a[i] : b[i], and z[i] = constant */
static KernelDef *select_k(KType t, int64_t n) {
    char name[96];
    snprintf(name, sizeof name, "s_%s", ktype_name(t));
    KernelDef *k = kernel_new(name, n);
    int c = kernel_add_buf(k, KT_BOOL, n, false, "c");
    int a = kernel_add_buf(k, t, n, false, "a"), b = kernel_add_buf(k, t, n, false, "b");
    int y = kernel_add_buf(k, t, n, true, "y"), z = kernel_add_buf(k, t, n, true, "z");
    int i = k_index(k);
    k_store(k, y, i, k_select(k, k_load(k, c, i), k_load(k, a, i), k_load(k, b, i)));
    int cst = is_float(t) ? k_const_f(k, t, -2.75) : k_const_i(k, t, t == KT_BOOL ? 1 : -123456);
    k_store(k, z, i, cst);
    return k;
}

static const OpKind float_unary[] = {OP_NEG, OP_ABS, OP_SIGN, OP_EXP, OP_LOG, OP_SQRT,
                                     OP_RSQRT, OP_RECIP, OP_RELU, OP_SIGMOID, OP_TANH,
                                     OP_ERF, OP_SOFTPLUS, OP_STOP_GRADIENT};

static bool transcendental(OpKind op) {
    return op == OP_EXP || op == OP_LOG || op == OP_RSQRT || op == OP_SIGMOID ||
           op == OP_SOFTPLUS || op == OP_POW;
}

Test(llvm, elementwise_ops_match_eval, .timeout = 0) {
    static Suite s;
    const KType fl[] = {KT_F32, KT_F64};
    for (int t = 0; t < 2; t++) {
        for (size_t o = 0; o < sizeof float_unary / sizeof float_unary[0]; o++) {
            OpKind op = float_unary[o];
            add_case(&s, unary_k(op, fl[t], 1.0, 257), transcendental(op) ? 1 : 0);
        }
        add_case(&s, unary_k(OP_SOFTPLUS, fl[t], 2.5, 257), 1);
        for (OpKind op = OP_ADD; op <= OP_GE; op++)
            if (op != OP_AND && op != OP_OR) add_case(&s, binary_k(op, fl[t], 257), transcendental(op) ? 1 : 0);
    }
    const KType in[] = {KT_I32, KT_I64};
    for (int t = 0; t < 2; t++) {
        const OpKind un[] = {OP_NEG, OP_ABS, OP_SIGN, OP_RELU, OP_STOP_GRADIENT};
        for (int o = 0; o < 5; o++) add_case(&s, unary_k(un[o], in[t], 1.0, 131), 0);
        for (OpKind op = OP_ADD; op <= OP_GE; op++)
            if (op != OP_AND && op != OP_OR && op != OP_POW) add_case(&s, binary_k(op, in[t], 131), 0);
    }
    add_case(&s, unary_k(OP_NOT, KT_BOOL, 1.0, 77), 0);
    add_case(&s, unary_k(OP_STOP_GRADIENT, KT_BOOL, 1.0, 77), 0);
    const OpKind bops[] = {OP_AND, OP_OR, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE};
    for (int o = 0; o < 8; o++) add_case(&s, binary_k(bops[o], KT_BOOL, 77), 0);
    for (KType a = 0; a < KT_COUNT; a++) {
        add_case(&s, select_k(a, 99), 0);
        for (KType b = 0; b < KT_COUNT; b++) add_case(&s, cast_k(a, b, 99), 0);
    }
    check_suite(&s);
}

/* y[i] = x[i / 7] * w[i % 7] with constant divisors, and q[i] = i / d[i],
 * r[i] = i % d[i] with loaded divisors (0 among them gives 0). */
static KernelDef *index_k(const char *name, int64_t n) {
    KernelDef *k = kernel_new(name, n);
    int x = kernel_add_buf(k, KT_F32, (n + 6) / 7, false, "x");
    int w = kernel_add_buf(k, KT_F32, 7, false, "w");
    int dv = kernel_add_buf(k, KT_I64, n, false, "d");
    int y = kernel_add_buf(k, KT_F32, n, true, "y");
    int q = kernel_add_buf(k, KT_I64, n, true, "q");
    int r = kernel_add_buf(k, KT_I64, n, true, "r");
    int i = k_index(k), seven = k_const_i(k, KT_I64, 7);
    int a = k_load(k, x, k_idiv(k, i, seven)), b = k_load(k, w, k_imod(k, i, seven));
    k_store(k, y, i, k_binary(k, KO_MUL, a, b));
    int di = k_load(k, dv, i);
    k_store(k, q, i, k_idiv(k, i, di));
    k_store(k, r, i, k_imod(k, i, di));
    return k;
}

/* y[i] = x[i] * 3 + x[i] (vectorisable), over odd domains */
static KernelDef *axpy_k(const char *name, int64_t n) {
    KernelDef *k = kernel_new(name, n);
    int x = kernel_add_buf(k, KT_F32, n, false, "x"), y = kernel_add_buf(k, KT_F32, n, true, "y");
    int i = k_index(k), v = k_load(k, x, i);
    k_store(k, y, i, k_binary(k, KO_ADD, k_binary(k, KO_MUL, v, k_const_f(k, KT_F32, 3.0)), v));
    return k;
}

Test(llvm, index_arithmetic_and_odd_domains, .timeout = 0) {
    static Suite s;
    add_case(&s, index_k("idx_1", 1), 0);
    last(&s)->fill[2] = F_DIGIT;
    add_case(&s, index_k("idx_7", 7), 0);
    last(&s)->fill[2] = F_DIGIT;
    add_case(&s, index_k("idx_1000003", 1000003), 0);
    last(&s)->fill[2] = F_DIGIT;
    add_case(&s, axpy_k("axpy_1", 1), 0);
    add_case(&s, axpy_k("axpy_7", 7), 0);
    add_case(&s, axpy_k("axpy_1000003", 1000003), 0);
    check_suite(&s);
}

/* y[i] = random(seed = key[0], step = key[1], index = i + off) */
static KernelDef *random_k(KRandom r, KType t, double p, int64_t stream, int64_t n) {
    char name[96];
    snprintf(name, sizeof name, "rand_%d_%s_%lld", (int)r, ktype_name(t), (long long)stream);
    KernelDef *k = kernel_new(name, n);
    int key = kernel_add_buf(k, KT_I32, 2, false, "key"), y = kernel_add_buf(k, t, n, true, "y");
    int i = k_index(k);
    int seed = k_load(k, key, k_const_i(k, KT_I64, 0)), step = k_load(k, key, k_const_i(k, KT_I64, 1));
    int idx = k_binary(k, KO_ADD, i, k_const_i(k, KT_I64, (int64_t)1 << 32));
    k_store(k, y, i, lm_random(k, r, t, seed, step, idx, (uint32_t)stream, p));
    return k;
}

Test(llvm, random_matches_philox, .timeout = 0) {
    static Suite s;
    for (KType t = KT_F32; t <= KT_F64; t++) {
        add_case(&s, random_k(KRAND_UNIFORM, t, 0, 3, 1001), 0);
        add_case(&s, random_k(KRAND_NORMAL, t, 0, 4, 1001), 1);
        add_case(&s, random_k(KRAND_BERNOULLI, t, 0.3, 5, 1001), 0);
    }
    /* The compiled numbers against base/philox.c directly. */
    Suite direct = s;
    void *h = compile_all(&direct, "rand.so");
    int32_t key[2] = {-12345, 77};
    float u[1001];
    void *bufs[2] = {key, u};
    KernelFn fn = (KernelFn)(uintptr_t)dlsym(h, "rand_0_f32_3");
    cr_assert(fn);
    fn(bufs, 0, 1001);
    for (int i = 0; i < 1001; i++) {
        double want = philox_uniform((uint32_t)key[0], 77, 3, ((uint64_t)1 << 32) + (uint64_t)i);
        cr_assert_eq((double)u[i], want, "uniform %d: %.9g vs %.9g", i, u[i], want);
    }
    double z[1001];
    bufs[1] = z;
    fn = (KernelFn)(uintptr_t)dlsym(h, "rand_1_f64_4");
    fn(bufs, 0, 1001);
    for (int i = 0; i < 1001; i++) {
        double want = philox_normal((uint32_t)key[0], 77, 4, ((uint64_t)1 << 32) + (uint64_t)i);
        cr_assert(close_enough(z[i], want, TOL_F64), "normal %d: %.17g vs %.17g", i, z[i], want);
    }
    dlclose(h);
    check_suite(&s);
}

/* y[i] = red_{r < R} x[i * R + r] */
static KernelDef *reduce_k(KReduce red, KType t, int64_t rows, int64_t R) {
    char name[96];
    snprintf(name, sizeof name, "red_%d_%s_%lld", (int)red, ktype_name(t), (long long)R);
    KernelDef *k = kernel_new(name, rows);
    int x = kernel_add_buf(k, t, rows * R, false, "x");
    int y = kernel_add_buf(k, red == KR_ARGMAX ? KT_I32 : t, rows, true, "y");
    int i = k_index(k);
    int base = k_binary(k, KO_MUL, i, k_const_i(k, KT_I64, R));
    int rb = k_red_begin(k, R);
    int v = k_load(k, x, k_binary(k, KO_ADD, base, rb));
    int e = k_red_end(k, red, rb, v);
    k_store(k, y, i, e);
    return k;
}

/* Softmax rows: m = max x, s = sum exp(x - m), y = exp(x - m) / s (a store
 * inside a bracket, values of earlier brackets used in later ones). */
static KernelDef *softmax_k(int64_t rows, int64_t C) {
    KernelDef *k = kernel_new("softmax_rows", rows);
    int x = kernel_add_buf(k, KT_F32, rows * C, false, "x");
    int y = kernel_add_buf(k, KT_F32, rows * C, true, "y");
    int i = k_index(k), base = k_binary(k, KO_MUL, i, k_const_i(k, KT_I64, C));
    int r1 = k_red_begin(k, C);
    int m = k_red_end(k, KR_MAX, r1, k_load(k, x, k_binary(k, KO_ADD, base, r1)));
    int r2 = k_red_begin(k, C);
    int e2 = k_unary(k, KO_EXP, k_binary(k, KO_SUB, k_load(k, x, k_binary(k, KO_ADD, base, r2)), m));
    int s = k_red_end(k, KR_SUM, r2, e2);
    int r3 = k_red_begin(k, C);
    int at = k_binary(k, KO_ADD, base, r3);
    int e3 = k_unary(k, KO_EXP, k_binary(k, KO_SUB, k_load(k, x, at), m));
    k_store(k, y, at, k_binary(k, KO_DIV, e3, s));
    k_red_end(k, KR_SUM, r3, e3);
    return k;
}

/* y[i] = sum_a max_b x[i, a, b] * w  +  sum over an empty range + an
 * invariant summed 5 times. */
static KernelDef *nested_k(KType t, int64_t rows, int64_t A, int64_t Bn) {
    char name[96];
    snprintf(name, sizeof name, "nested_%s", ktype_name(t));
    KernelDef *k = kernel_new(name, rows);
    int x = kernel_add_buf(k, t, rows * A * Bn, false, "x");
    int w = kernel_add_buf(k, t, 1, false, "w");
    int y = kernel_add_buf(k, t, rows, true, "y");
    int z = kernel_add_buf(k, KT_I32, rows, true, "z");
    int i = k_index(k), zero = k_const_i(k, KT_I64, 0);
    int wv = k_load(k, w, zero);
    int ra = k_red_begin(k, A);
    int rowa = k_binary(k, KO_ADD, k_binary(k, KO_MUL, i, k_const_i(k, KT_I64, A)), ra);
    int rb = k_red_begin(k, Bn);
    int at = k_binary(k, KO_ADD, k_binary(k, KO_MUL, rowa, k_const_i(k, KT_I64, Bn)), rb);
    int v = k_binary(k, KO_MUL, k_load(k, x, at), wv);
    int mx = k_red_end(k, KR_MAX, rb, v);
    int rc = k_red_begin(k, Bn);
    int at2 = k_binary(k, KO_ADD, k_binary(k, KO_MUL, rowa, k_const_i(k, KT_I64, Bn)), rc);
    int am = k_red_end(k, KR_ARGMAX, rc, k_load(k, x, at2));
    int sum = k_red_end(k, KR_SUM, ra, k_binary(k, KO_ADD, mx, k_cast(k, t, am)));
    int re = k_red_begin(k, 0);
    int empty = k_red_end(k, KR_SUM, re, k_load(k, x, re));
    int ri = k_red_begin(k, 5);
    int inv = k_red_end(k, KR_SUM, ri, wv);
    int re2 = k_red_begin(k, 0);
    int empty_arg = k_red_end(k, KR_ARGMAX, re2, wv);
    k_store(k, y, i, k_binary(k, KO_ADD, k_binary(k, KO_ADD, sum, empty), inv));
    k_store(k, z, i, empty_arg);
    return k;
}

Test(llvm, reductions_match_eval, .timeout = 0) {
    static Suite s;
    const KReduce reds[] = {KR_SUM, KR_MAX, KR_ARGMAX};
    const KType ts[] = {KT_F32, KT_F64, KT_I32, KT_I64};
    for (int r = 0; r < 3; r++)
        for (int t = 0; t < 4; t++) {
            add_case(&s, reduce_k(reds[r], ts[t], 37, 10), 0);
            last(&s)->fill[0] = F_TIES; /* ties, NaN and -inf for argmax / max */
            add_case(&s, reduce_k(reds[r], ts[t], 5, 1), 0);
        }
    add_case(&s, reduce_k(KR_SUM, KT_F32, 3, 1000), 0); /* sequential f32 sum: bitwise */
    add_case(&s, reduce_k(KR_SUM, KT_I32, 9, 100), 0);  /* wraps */
    add_case(&s, softmax_k(33, 10), 1);
    add_case(&s, nested_k(KT_F32, 17, 3, 4), 0);
    last(&s)->fill[0] = F_TIES;
    add_case(&s, nested_k(KT_F64, 17, 3, 4), 0);
    add_case(&s, nested_k(KT_I32, 17, 3, 4), 0);
    last(&s)->fill[0] = F_TIES;
    check_suite(&s);
}

/* ---- module features ---- */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    return p;
}

Test(llvm, blob_and_kernel_table) {
    Diag d;
    diag_init(&d);
    CpuModule *m = cpu_module_new("blobs", &d);
    cr_assert(m, "%s", d.msg);
    KernelDef *k1 = axpy_k("tbl_a", 8), *k2 = unary_k(OP_NEG, KT_F32, 1.0, 8);
    cr_assert(cpu_add_kernel(m, k1, &d) && cpu_add_kernel(m, k2, &d), "%s", d.msg);
    static const char data[] = "hello\0world";
    cr_assert(cpu_add_blob(m, "igrc_blob", data, 11, &d), "%s", d.msg);
    cr_assert(cpu_add_blob(m, "igrc_empty", NULL, 0, &d), "%s", d.msg);
    const char *names[] = {"tbl_a", k2->name};
    cr_assert(cpu_add_kernel_table(m, "igrc_kernels", names, 2, &d), "%s", d.msg);
    /* Name clashes are refused. */
    cr_assert_not(cpu_add_blob(m, "tbl_a", data, 3, &d));
    cr_assert(strstr(d.msg, "tbl_a") && strstr(d.msg, "already"), "%s", d.msg);
    diag_init(&d);
    cr_assert_not(cpu_add_kernel(m, k1, &d));
    cr_assert(strstr(d.msg, "already"), "%s", d.msg);
    diag_init(&d);
    cr_assert(cpu_optimize(m, &d), "%s", d.msg);
    const char *obj = in_dir("blob.o"), *so = in_dir("blob.so");
    cr_assert(cpu_emit_object(m, obj, &d), "%s", d.msg);
    cpu_module_free(m);
    cr_assert(cpu_link(&obj, 1, so, true, NULL, 0, &d), "%s", d.msg);
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    cr_assert(h, "%s", dlerror());
    const char *blob = dlsym(h, "igrc_blob");
    const int64_t *size = dlsym(h, "igrc_blob_size");
    cr_assert(blob && size);
    cr_assert_eq(*size, 11);
    cr_assert_eq(memcmp(blob, data, 12), 0); /* with the NUL after it */
    const char *empty = dlsym(h, "igrc_empty");
    cr_assert(empty && empty[0] == '\0' && *(const int64_t *)dlsym(h, "igrc_empty_size") == 0);
    KernelFn const *tab = dlsym(h, "igrc_kernels");
    const int32_t *count = dlsym(h, "igrc_kernels_count");
    cr_assert(tab && count);
    cr_assert_eq(*count, 2);
    cr_assert_eq((void *)(uintptr_t)tab[0], dlsym(h, "tbl_a"));
    cr_assert_eq((void *)(uintptr_t)tab[1], dlsym(h, k2->name));
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8] = {0};
    void *bufs[2] = {x, y};
    tab[0](bufs, 2, 6);
    for (int i = 0; i < 8; i++) cr_assert_eq(y[i], i >= 2 && i < 6 ? 4 * x[i] : 0.0f, "%d: %g", i, y[i]);
    tab[1](bufs, 0, 8);
    for (int i = 0; i < 8; i++) cr_assert_eq(y[i], -x[i]);
    dlclose(h);
    kernel_free(k1);
    kernel_free(k2);
}

Test(llvm, emit_llvm_names_kernels_and_vectorises) {
    Diag d;
    diag_init(&d);
    CpuModule *m = cpu_module_new("vec", &d);
    cr_assert(m, "%s", d.msg);
    KernelDef *k = axpy_k("saxpy_like", 4096);
    KernelDef *t = binary_k(OP_MAX, KT_F32, 4096);
    cr_assert(cpu_add_kernel(m, k, &d) && cpu_add_kernel(m, t, &d), "%s", d.msg);
    const char *raw = in_dir("raw.ll"), *opt = in_dir("opt.ll");
    cr_assert(cpu_emit_llvm(m, raw, &d), "%s", d.msg);
    cr_assert(cpu_optimize(m, &d), "%s", d.msg);
    cr_assert(cpu_emit_llvm(m, opt, &d), "%s", d.msg);
    cpu_module_free(m);
    char *a = slurp(raw), *b = slurp(opt);
    cr_assert(strstr(a, "@saxpy_like(") && strstr(a, "@b_max_f32("), "%s", a);
    cr_assert(strstr(a, "noalias"), "%s", a);
    cr_assert(strstr(b, "define void @saxpy_like("));
    cr_assert(strstr(b, "<16 x float>") || strstr(b, "<8 x float>"), "not vectorised:\n%s", b);
    /* The body stays a function of its own with noalias buffers: inlined,
     * they would become scoped alias metadata, quadratic in the buffers. */
    cr_assert(strstr(b, "@saxpy_like.body(ptr noalias"), "%s", b);
    free(a);
    free(b);
    kernel_free(k);
    kernel_free(t);
}

/* kernel_same ignores the domain and the buffers' sizes because the LLVM
 * emitter never reads them: the same kernel lowered for 7 elements and for
 * 1,000,003 gives the same optimised module. */
static char *optimised_ir(KernelDef *k, const char *file) {
    Diag d;
    diag_init(&d);
    CpuModule *m = cpu_module_new("same", &d);
    cr_assert(m && cpu_add_kernel(m, k, &d) && cpu_optimize(m, &d) && cpu_emit_llvm(m, in_dir(file), &d),
              "%s", d.msg);
    cpu_module_free(m);
    return slurp(in_dir(file));
}

Test(llvm, code_ignores_domain_and_sizes) {
    KernelDef *a = index_k("idx_same", 7), *b = index_k("idx_same", 1000003);
    cr_assert(kernel_same(a, b));
    char *ta = optimised_ir(a, "a.ll"), *tb = optimised_ir(b, "b.ll");
    cr_expect_str_eq(ta, tb);
    free(ta);
    free(tb);
    kernel_free(a);
    kernel_free(b);
}

Test(llvm, link_executable_and_errors) {
    Diag d;
    diag_init(&d);
    CpuModule *m = cpu_module_new("exe", &d);
    cr_assert(m, "%s", d.msg);
    KernelDef *k = axpy_k("exe_axpy", 5);
    cr_assert(cpu_add_kernel(m, k, &d), "%s", d.msg);
    cr_assert(cpu_optimize(m, &d), "%s", d.msg);
    const char *obj = in_dir("exe.o");
    cr_assert(cpu_emit_object(m, obj, &d), "%s", d.msg);
    cpu_module_free(m);
    kernel_free(k);
    const char *main_c = in_dir("main.c");
    FILE *f = fopen(main_c, "w");
    fputs("#include <stdint.h>\n"
          "void exe_axpy(void *const *, int64_t, int64_t);\n"
          "int main(void) { float x[5] = {1, 2, 3, 4, 5}, y[5] = {0};\n"
          "  void *b[2] = {x, y}; exe_axpy(b, 0, 5);\n"
          "  for (int i = 0; i < 5; i++) if (y[i] != 4 * x[i]) return 1;\n"
          "  return 0; }\n",
          f);
    fclose(f);
    const char *objs[] = {obj, main_c};
    const char *exe = in_dir("prog");
    const char *extra[] = {"-O1"};
    cr_assert(cpu_link(objs, 2, exe, false, extra, 1, &d), "%s", d.msg);
    int st = system(exe);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    /* A failing link reports the compiler's message. */
    const char *missing = in_dir("missing.o");
    cr_assert_not(cpu_link(&missing, 1, in_dir("x.so"), true, NULL, 0, &d));
    cr_assert(strstr(d.msg, "missing.o"), "%s", d.msg);
}

Test(llvm, rejects_invalid_kernel) {
    Diag d;
    diag_init(&d);
    CpuModule *m = cpu_module_new("bad", &d);
    cr_assert(m, "%s", d.msg);
    KernelDef *k = kernel_new("bad_kernel", 4);
    int x = kernel_add_buf(k, KT_F32, 4, false, "x");
    int i = k_index(k);
    k_store(k, x, i, k_load(k, x, i)); /* x is not written */
    cr_assert_not(cpu_add_kernel(m, k, &d));
    cr_assert(strstr(d.msg, "bad_kernel") && strstr(d.msg, "written"), "%s", d.msg);
    kernel_free(k);
    cpu_module_free(m);
}
