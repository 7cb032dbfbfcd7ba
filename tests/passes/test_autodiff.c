/* Every VJP rule, first and second order, against central finite
 * differences in float64 through the reference interpreter.
 *
 * For op y = op(x...) the test builds L = sum(w * y) with a fixed random w
 * (so the cotangent is not all ones), asks for grad(L, x_i), and compares
 * with (L(x + h e_j) - L(x - h e_j)) / 2h on every coordinate. Second
 * order: G = sum(v * grad(L, x_0)) and grad(G, x_i) against differences of
 * G. Operands are sampled away from kinks (ReLU at 0, ties of max/min and
 * max-pool windows), where the function is smooth. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fd_harness.h"
#include "ir/builder.h"
#include "passes/pass.h"
#include "passes/autodiff.h"

static const int64_t S23[] = {2, 3}, S3[] = {3}, S234[] = {2, 3, 4}, S1[] = {1, 3};

#define F64 DT_F64
#define UNARY(nm, OPK, LO, HI, AWAY)                                                           \
    Test(vjp, nm) {                                                                           \
        Case c = {.op = OPK, .nin = 1, .in = {t64(2, S23)}, .kind = {F64}, .lo = LO, .hi = HI, \
                  .away_from_zero = AWAY};                                                    \
        check(c, true);                                                                       \
    }

UNARY(neg, OP_NEG, -2, 2, false)
UNARY(abs, OP_ABS, -2, 2, true)
UNARY(exp, OP_EXP, -2, 2, false)
UNARY(log, OP_LOG, 0.3, 3, false)
UNARY(sqrt, OP_SQRT, 0.3, 3, false)
UNARY(rsqrt, OP_RSQRT, 0.3, 3, false)
UNARY(recip, OP_RECIP, 0.5, 3, false)
UNARY(relu, OP_RELU, -2, 2, true)
UNARY(sigmoid, OP_SIGMOID, -3, 3, false)
UNARY(tanh, OP_TANH, -2, 2, false)
UNARY(softplus, OP_SOFTPLUS, -3, 3, false)
UNARY(erf, OP_ERF, -2.5, 2.5, false)
/* one process: the identity, and its VJP rank_sum is too */
UNARY(rank_sum, OP_RANK_SUM, -2, 2, false)
/* activations (composites: their gradients are the primitives' rules) */
UNARY(gelu, OP_GELU, -3, 3, false)
UNARY(silu, OP_SILU, -4, 4, false)
UNARY(leaky_relu, OP_LEAKY_RELU, -2, 2, true)
UNARY(elu, OP_ELU, -2, 2, true)

Test(vjp, gelu_tanh_leaky_alpha_elu_alpha) {
    Case g = {.op = OP_GELU, .nin = 1, .in = {t64(2, S23)}, .kind = {F64}, .lo = -3, .hi = 3,
              .attrs = {attr_str("approximate", "tanh")}, .nattrs = 1};
    check(g, true);
    Case l = {.op = OP_LEAKY_RELU, .nin = 1, .in = {t64(2, S23)}, .kind = {F64}, .lo = -2, .hi = 2,
              .away_from_zero = true, .attrs = {attr_float("alpha", 0.3)}, .nattrs = 1};
    check(l, true);
    Case e = {.op = OP_ELU, .nin = 1, .in = {t64(2, S23)}, .kind = {F64}, .lo = -2, .hi = 2,
              .away_from_zero = true, .attrs = {attr_float("alpha", 1.7)}, .nattrs = 1};
    check(e, true);
}

Test(vjp, softplus_beta) {
    Case c = {.op = OP_SOFTPLUS, .nin = 1, .in = {t64(2, S23)}, .kind = {F64}, .lo = -2, .hi = 2,
              .attrs = {attr_float("beta", 3.0)}, .nattrs = 1};
    check(c, true);
}

#define BINARY(nm, OPK, LO, HI, GAP)                                                             \
    Test(vjp, nm) {                                                                             \
        Case c = {.op = OPK, .nin = 2, .in = {t64(2, S23), t64(2, S23)}, .kind = {F64, F64},     \
                  .lo = LO, .hi = HI, .gap = GAP};                                               \
        check(c, true);                                                                         \
    }

BINARY(add, OP_ADD, -2, 2, 0)
BINARY(sub, OP_SUB, -2, 2, 0)
BINARY(mul, OP_MUL, -2, 2, 0)
BINARY(div, OP_DIV, 0.5, 2, 0)
BINARY(max, OP_MAX, -1, 1, 0.13)
BINARY(min, OP_MIN, -1, 1, 0.13)
BINARY(pow, OP_POW, 0.5, 2, 0)

Test(vjp, select) {
    Case c = {.op = OP_SELECT, .nin = 3, .in = {t64(2, S23), t64(2, S23), t64(2, S23)},
              .kind = {DT_BOOL, F64, F64}, .lo = -2, .hi = 2};
    check(c, true);
}

Test(vjp, broadcast) {
    int64_t to[] = {2, 4, 3};
    Case c = {.op = OP_BROADCAST, .nin = 1, .in = {t64(2, S1)}, .kind = {F64}, .lo = -1, .hi = 1,
              .attrs = {attr_ints("shape", to, 3)}, .nattrs = 1};
    check(c, true);
}

Test(vjp, reshape) {
    int64_t to[] = {3, 2};
    Case c = {.op = OP_RESHAPE, .nin = 1, .in = {t64(2, S23)}, .kind = {F64}, .lo = -1, .hi = 1,
              .attrs = {attr_ints("shape", to, 2)}, .nattrs = 1};
    check(c, true);
}

Test(vjp, transpose) {
    int64_t p[] = {2, 0, 1};
    Case c = {.op = OP_TRANSPOSE, .nin = 1, .in = {t64(3, S234)}, .kind = {F64}, .lo = -1, .hi = 1,
              .attrs = {attr_ints("perm", p, 3)}, .nattrs = 1};
    check(c, true);
}

Test(vjp, slice_strided) {
    int64_t d[] = {5, 7}, st[] = {1, 0}, sp[] = {5, 6}, sz[] = {2, 3};
    Case c = {.op = OP_SLICE, .nin = 1, .in = {t64(2, d)}, .kind = {F64}, .lo = -1, .hi = 1,
              .attrs = {attr_ints("start", st, 2), attr_ints("stop", sp, 2), attr_ints("step", sz, 2)},
              .nattrs = 3};
    check(c, true);
}

Test(vjp, concat) {
    int64_t a[] = {2, 2}, b[] = {2, 3};
    Case c = {.op = OP_CONCAT, .nin = 2, .in = {t64(2, a), t64(2, b)}, .kind = {F64, F64},
              .lo = -1, .hi = 1, .attrs = {attr_int("axis", 1)}, .nattrs = 1};
    check(c, true);
}

Test(vjp, pad) {
    int64_t lo[] = {1, 0}, hi[] = {0, 2};
    Case c = {.op = OP_PAD, .nin = 1, .in = {t64(2, S23)}, .kind = {F64}, .lo = -1, .hi = 1,
              .attrs = {attr_ints("lo", lo, 2), attr_ints("hi", hi, 2), attr_float("value", 0.5)},
              .nattrs = 3};
    check(c, true);
}

Test(vjp, reduce_sum) {
    int64_t ax[] = {0, 2};
    Case c = {.op = OP_REDUCE_SUM, .nin = 1, .in = {t64(3, S234)}, .kind = {F64}, .lo = -1, .hi = 1,
              .attrs = {attr_ints("axes", ax, 2), attr_int("keepdims", 1)}, .nattrs = 2};
    check(c, true);
}

Test(vjp, reduce_max) {
    int64_t ax[] = {1};
    Case c = {.op = OP_REDUCE_MAX, .nin = 1, .in = {t64(3, S234)}, .kind = {F64}, .lo = -1,
              .gap = 0.07, .attrs = {attr_ints("axes", ax, 1)}, .nattrs = 1};
    check(c, true);
}

Test(vjp, matmul_batched) {
    int64_t a[] = {2, 3, 4}, b[] = {2, 4, 5};
    Case c = {.op = OP_MATMUL, .nin = 2, .in = {t64(3, a), t64(3, b)}, .kind = {F64, F64},
              .lo = -1, .hi = 1};
    check(c, true);
}

static const int64_t X4[] = {2, 3, 7, 6}, W4[] = {4, 3, 3, 2};

Test(vjp, conv2d_strided_padded) {
    int64_t st[] = {2, 1}, pd[] = {1, 1};
    Case c = {.op = OP_CONV2D, .nin = 2, .in = {t64(4, X4), t64(4, W4)}, .kind = {F64, F64},
              .lo = -1, .hi = 1, .attrs = {attr_ints("stride", st, 2), attr_ints("padding", pd, 2)},
              .nattrs = 2};
    check(c, true);
}

Test(vjp, conv2d_bwd_data) {
    int64_t st[] = {2, 1}, pd[] = {1, 1}, dy[] = {2, 4, 4, 7};
    Case c = {.op = OP_CONV2D_BWD_DATA, .nin = 2, .in = {t64(4, dy), t64(4, W4)},
              .kind = {F64, F64}, .lo = -1, .hi = 1,
              .attrs = {attr_ints("stride", st, 2), attr_ints("padding", pd, 2),
                        attr_ints("input_shape", X4, 4)},
              .nattrs = 3};
    check(c, true);
}

Test(vjp, conv2d_bwd_filter) {
    int64_t st[] = {2, 1}, pd[] = {1, 1}, dy[] = {2, 4, 4, 7}, k[] = {3, 2};
    Case c = {.op = OP_CONV2D_BWD_FILTER, .nin = 2, .in = {t64(4, X4), t64(4, dy)},
              .kind = {F64, F64}, .lo = -1, .hi = 1,
              .attrs = {attr_ints("stride", st, 2), attr_ints("padding", pd, 2), attr_ints("kernel", k, 2)},
              .nattrs = 3};
    check(c, true);
}

static const int64_t P4[] = {1, 2, 5, 5};

Test(vjp, maxpool2d) {
    int64_t k[] = {2, 2}, s[] = {2, 2}, p[] = {1, 0};
    Case c = {.op = OP_MAXPOOL2D, .nin = 1, .in = {t64(4, P4)}, .kind = {F64}, .lo = -1, .gap = 0.03,
              .attrs = {attr_ints("kernel", k, 2), attr_ints("stride", s, 2), attr_ints("padding", p, 2)},
              .nattrs = 3};
    check(c, true);
}

Test(vjp, maxpool2d_bwd) {
    int64_t k[] = {3, 3}, s[] = {2, 2}, p[] = {1, 1}, dy[] = {1, 2, 3, 3};
    Case c = {.op = OP_MAXPOOL2D_BWD, .nin = 2, .in = {t64(4, P4), t64(4, dy)},
              .kind = {F64, F64}, .lo = -1, .gap = 0.01,
              .attrs = {attr_ints("kernel", k, 2), attr_ints("stride", s, 2), attr_ints("padding", p, 2)},
              .nattrs = 3};
    check(c, true);
}

Test(vjp, maxpool2d_select) {
    int64_t k[] = {3, 3}, s[] = {2, 2}, p[] = {1, 1};
    Case c = {.op = OP_MAXPOOL2D_SELECT, .nin = 2, .in = {t64(4, P4), t64(4, P4)},
              .kind = {F64, F64}, .lo = -1, .gap = 0.01,
              .attrs = {attr_ints("kernel", k, 2), attr_ints("stride", s, 2), attr_ints("padding", p, 2)},
              .nattrs = 3};
    check(c, true);
}

Test(vjp, avgpool2d_and_bwd) {
    int64_t k[] = {2, 3}, s[] = {1, 2}, dy[] = {1, 2, 4, 2};
    Case c = {.op = OP_AVGPOOL2D, .nin = 1, .in = {t64(4, P4)}, .kind = {F64}, .lo = -1, .hi = 1,
              .attrs = {attr_ints("kernel", k, 2), attr_ints("stride", s, 2)}, .nattrs = 2};
    check(c, true);
    Case b = {.op = OP_AVGPOOL2D_BWD, .nin = 1, .in = {t64(4, dy)}, .kind = {F64}, .lo = -1, .hi = 1,
              .attrs = {attr_ints("kernel", k, 2), attr_ints("stride", s, 2), attr_ints("input_shape", P4, 4)},
              .nattrs = 3};
    check(b, true);
}

/* Padded average pooling, padding counted in the divisor and not, and its
 * backward (whose VJP must carry padding and count_include_pad back). */
Test(vjp, avgpool2d_padded) {
    int64_t k[] = {3, 2}, s[] = {2, 1}, p[] = {1, 1}, dy[] = {1, 2, 3, 6};
    for (int cip = 0; cip < 2; cip++) {
        Case c = {.op = OP_AVGPOOL2D, .nin = 1, .in = {t64(4, P4)}, .kind = {F64}, .lo = -1, .hi = 1,
                  .attrs = {attr_ints("kernel", k, 2), attr_ints("stride", s, 2),
                            attr_ints("padding", p, 2), attr_int("count_include_pad", cip)},
                  .nattrs = 4};
        check(c, true);
        Case b = {.op = OP_AVGPOOL2D_BWD, .nin = 1, .in = {t64(4, dy)}, .kind = {F64}, .lo = -1,
                  .hi = 1,
                  .attrs = {attr_ints("kernel", k, 2), attr_ints("stride", s, 2),
                            attr_ints("padding", p, 2), attr_int("count_include_pad", cip),
                            attr_ints("input_shape", P4, 4)},
                  .nattrs = 5};
        check(b, true);
    }
}

Test(vjp, gather) {
    Case c = {.op = OP_GATHER, .nin = 2, .in = {t64(2, S23), t64(1, (int64_t[]){2})},
              .kind = {F64, DT_I32}, .lo = -1, .hi = 1, .int_hi = 3};
    check(c, true);
}

Test(vjp, cast_f64_to_f32) {
    Case c = {.op = OP_CAST, .nin = 1, .in = {t64(1, S3)}, .kind = {F64}, .lo = -1, .hi = 1,
              .attrs = {attr_dtype("dtype", DT_F32)}, .nattrs = 1};
    check(c, true);
}

/* Composites are decomposed before autodiff: their gradients come from the
 * primitives' rules, checked here end to end. */
Test(vjp, softmax_and_log_softmax) {
    Case c = {.op = OP_LOG_SOFTMAX, .nin = 1, .in = {t64(2, S23)}, .kind = {F64}, .lo = -2, .hi = 2,
              .attrs = {attr_int("axis", 1)}, .nattrs = 1};
    check(c, true);
    Case s = {.op = OP_SOFTMAX, .nin = 1, .in = {t64(2, S23)}, .kind = {F64}, .lo = -2, .hi = 2,
              .attrs = {attr_int("axis", 1)}, .nattrs = 1};
    check(s, true);
}

Test(autodiff, non_differentiable_op_is_a_compile_error) {
    Module *m = module_new("bad");
    Diag d;
    diag_init(&d);
    Builder b = {m, module_add_func(m, "f"), &d};
    int x = b_input(&b, "x", type_make(DT_F64, 1, S3));
    int64_t ax = 0;
    int s = b_reduce(&b, OP_REDUCE_SUM, "s", x, &ax, 1, false);
    int ins[2] = {s, x};
    int g = b_node(&b, OP_GRAD, "g", ins, 2, NULL, 0);
    int ins2[2] = {g, x}; /* grad of a non-scalar: rejected by the shape rule */
    cr_assert(b_node(&b, OP_GRAD, "gg", ins2, 2, NULL, 0) < 0);
    cr_assert(strstr(d.msg, "float scalar"), "%s", d.msg);
    module_free(m);
}

/* Every primitive of the op table has a VJP rule (fused runs after
 * autodiff): a row added without one fails here instead of getting no
 * gradient. */
Test(vjp, every_primitive_has_a_rule) {
    for (OpKind op = 0; op < OP_COUNT; op++) {
        const OpInfo *info = op_info(op);
        bool needs = (info->cls == OC_PRIMITIVE || info->cls == OC_SOURCE) && op != OP_FUSED;
        cr_expect_eq(vjp_has_rule(op), needs, "%s: VJP rule %s", info->name,
                     needs ? "missing (its passes row, ops/<family>.c)" : "for an op autodiff never sees");
    }
}
