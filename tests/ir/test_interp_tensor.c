/* Reference interpreter: shape ops, reductions, matmul and indexing.
 * Hand cases give exact numbers worked out in the comments; the larger
 * cases compare against loops written independently of the kernels. */
#include "tests/ir/interp_test_util.h"

static void unravel(int64_t flat, const Type *t, int64_t *idx) {
    for (int i = t->rank - 1; i >= 0; i--) {
        idx[i] = flat % t->dim[i];
        flat /= t->dim[i];
    }
}

/* ---- broadcast ---- */

Test(interp_broadcast, hand_cases) {
    Attr s22 = attr_ints("shape", DIMS(2, 2), 2);
    Value row = val(TY(DT_F64, 2), D(1, 2)), col = val(TY(DT_F64, 2, 1), D(1, 2));
    Value sc = val(type_scalar(DT_I32), D(7));
    Value a = eval_ok(OP_BROADCAST, &s22, 1, &row, 1, TY(DT_F64, 2, 2));
    Value b = eval_ok(OP_BROADCAST, &s22, 1, &col, 1, TY(DT_F64, 2, 2));
    Value c = eval_ok(OP_BROADCAST, &s22, 1, &sc, 1, TY(DT_I32, 2, 2));
    EXPECT(&a, 0, 1, 2, 1, 2); /* [2] aligns right: rows repeat */
    EXPECT(&b, 0, 1, 1, 2, 2); /* [2,1]: columns repeat */
    EXPECT(&c, 0, 7, 7, 7, 7);
    free_vals((Value[]){row, col, sc, a, b, c}, 6);
}

/* Odd shapes against explicit loops: [3,1], [1,4,1] and [5] into rank 3. */
Test(interp_broadcast, odd_shapes) {
    uint64_t seed = 11;
    Value x1 = val_rand(TY(DT_F64, 3, 1), &seed), x2 = val_rand(TY(DT_F64, 1, 4, 1), &seed);
    Value x3 = val_rand(TY(DT_F64, 5), &seed);
    Attr s1 = attr_ints("shape", DIMS(2, 3, 5), 3), s2 = attr_ints("shape", DIMS(2, 4, 3), 3);
    Value y1 = eval_ok(OP_BROADCAST, &s1, 1, &x1, 1, TY(DT_F64, 2, 3, 5));
    Value y2 = eval_ok(OP_BROADCAST, &s2, 1, &x2, 1, TY(DT_F64, 2, 4, 3));
    Value y3 = eval_ok(OP_BROADCAST, &s1, 1, &x3, 1, TY(DT_F64, 2, 3, 5));
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 5; c++) {
                cr_expect_eq(y1.data[(a * 3 + b) * 5 + c], x1.data[b]);
                cr_expect_eq(y3.data[(a * 3 + b) * 5 + c], x3.data[c]);
            }
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 3; c++) cr_expect_eq(y2.data[(a * 4 + b) * 3 + c], x2.data[b]);
    Attr s4 = attr_ints("shape", DIMS(4), 1);
    Diag d = eval_fail(OP_BROADCAST, &s4, 1, &x1, 1, TY(DT_F64, 4)); /* rank 2 into rank 1 */
    cr_expect(strstr(d.msg, "'y' (broadcast)"), "%s", d.msg);
    d = eval_fail(OP_BROADCAST, &s1, 1, &x2, 1, TY(DT_F64, 2, 3, 5)); /* 4 vs 3 */
    cr_expect(strstr(d.msg, "shape"), "%s", d.msg);
    free_vals((Value[]){x1, x2, x3, y1, y2, y3}, 6);
}

/* ---- reshape, transpose, slice, concat, pad ---- */

Test(interp_shape, reshape_and_transpose) {
    Value x = val(TY(DT_F64, 2, 3), D(1, 2, 3, 4, 5, 6));
    Attr sh = attr_ints("shape", DIMS(3, 2), 2), perm = attr_ints("perm", DIMS(1, 0), 2);
    Value r = eval_ok(OP_RESHAPE, &sh, 1, &x, 1, TY(DT_F64, 3, 2));
    EXPECT(&r, 0, 1, 2, 3, 4, 5, 6);
    /* [[1,2,3],[4,5,6]]^T = [[1,4],[2,5],[3,6]]. */
    Value t = eval_ok(OP_TRANSPOSE, &perm, 1, &x, 1, TY(DT_F64, 3, 2));
    EXPECT(&t, 0, 1, 4, 2, 5, 3, 6);
    Diag d = eval_fail(OP_RESHAPE, &sh, 1, &x, 1, TY(DT_F64, 4, 2));
    cr_expect(strstr(d.msg, "reshape"), "%s", d.msg);
    free_vals((Value[]){x, r, t}, 3);
}

/* perm {2,0,3,1} on [2,3,4,5] gives [4,2,5,3]: out[a][b][c][e] reads the
 * x element whose axis 2 is a, axis 0 is b, axis 3 is c, axis 1 is e. */
Test(interp_shape, transpose_rank4) {
    uint64_t seed = 5;
    Value x = val_rand(TY(DT_F64, 2, 3, 4, 5), &seed);
    Attr perm = attr_ints("perm", DIMS(2, 0, 3, 1), 4);
    Value y = eval_ok(OP_TRANSPOSE, &perm, 1, &x, 1, TY(DT_F64, 4, 2, 5, 3));
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 5; c++)
                for (int e = 0; e < 3; e++)
                    cr_expect_eq(y.data[((a * 2 + b) * 5 + c) * 3 + e],
                                 x.data[((b * 3 + e) * 4 + a) * 5 + c]);
    Attr dup = attr_ints("perm", DIMS(2, 0, 2, 1), 4);
    Diag d = eval_fail(OP_TRANSPOSE, &dup, 1, &x, 1, TY(DT_F64, 4, 2, 4, 3));
    cr_expect(strstr(d.msg, "perm"), "%s", d.msg);
    free_vals((Value[]){x, y}, 2);
}

Test(interp_shape, slice) {
    /* x = [[0..3],[4..7],[8..11]]. Rows 0,2 x cols 1,3 -> 1,3,9,11;
     * row 1 x cols 0,3 (step 3) -> 4,7; stop - start = 3 with step 2 gives
     * ceil(3/2) = 2 elements. */
    Value x = val(TY(DT_F64, 3, 4), D(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
    Attr a[3] = {attr_ints("start", DIMS(0, 1), 2), attr_ints("stop", DIMS(3, 4), 2),
                 attr_ints("step", DIMS(2, 2), 2)};
    Value y = eval_ok(OP_SLICE, a, 3, &x, 1, TY(DT_F64, 2, 2));
    EXPECT(&y, 0, 1, 3, 9, 11);
    Attr b[3] = {attr_ints("start", DIMS(1, 0), 2), attr_ints("stop", DIMS(2, 4), 2),
                 attr_ints("step", DIMS(1, 3), 2)};
    Value z = eval_ok(OP_SLICE, b, 3, &x, 1, TY(DT_F64, 1, 2));
    EXPECT(&z, 0, 4, 7);
    Attr c[3] = {attr_ints("start", DIMS(0, 0), 2), attr_ints("stop", DIMS(3, 5), 2),
                 attr_ints("step", DIMS(1, 1), 2)};
    Diag d = eval_fail(OP_SLICE, c, 3, &x, 1, TY(DT_F64, 3, 5)); /* stop past the dim */
    cr_expect(strstr(d.msg, "'y' (slice)"), "%s", d.msg);
    free_vals((Value[]){x, y, z}, 3);
}

Test(interp_shape, concat) {
    /* Axis 1 of [2,1] ++ [2,2] ++ [2,0] ++ [2,3]: row 0 = 1 | 3 4 | | 7 8 9,
     * row 1 = 2 | 5 6 | | 10 11 12. */
    Value in[4] = {val(TY(DT_F64, 2, 1), D(1, 2)), val(TY(DT_F64, 2, 2), D(3, 4, 5, 6)),
                   val(TY(DT_F64, 2, 0), NULL), val(TY(DT_F64, 2, 3), D(7, 8, 9, 10, 11, 12))};
    Attr a1 = attr_int("axis", 1), a0 = attr_int("axis", 0);
    Value y = eval_ok(OP_CONCAT, &a1, 1, in, 4, TY(DT_F64, 2, 6));
    EXPECT(&y, 0, 1, 3, 4, 7, 8, 9, 2, 5, 6, 10, 11, 12);
    /* Axis 0 of [1,2] ++ [2,2]: the blocks follow each other. */
    Value r[2] = {val(TY(DT_F64, 1, 2), D(1, 2)), val(TY(DT_F64, 2, 2), D(3, 4, 5, 6))};
    Value z = eval_ok(OP_CONCAT, &a0, 1, r, 2, TY(DT_F64, 3, 2));
    EXPECT(&z, 0, 1, 2, 3, 4, 5, 6);
    Diag d = eval_fail(OP_CONCAT, &a0, 1, in, 2, TY(DT_F64, 4, 1)); /* [2,1] ++ [2,2] on axis 0 */
    cr_expect(strstr(d.msg, "operand 1"), "%s", d.msg);
    free_vals(in, 4);
    free_vals(r, 2);
    free_vals((Value[]){y, z}, 2);
}

Test(interp_shape, pad) {
    /* [[1,2],[3,4]] with lo {1,0}, hi {0,2}, value -1:
     *   -1 -1 -1 -1 /  1  2 -1 -1 /  3  4 -1 -1 */
    Value x = val(TY(DT_F64, 2, 2), D(1, 2, 3, 4));
    Attr a[3] = {attr_ints("lo", DIMS(1, 0), 2), attr_ints("hi", DIMS(0, 2), 2),
                 attr_float("value", -1)};
    Value y = eval_ok(OP_PAD, a, 3, &x, 1, TY(DT_F64, 3, 4));
    EXPECT(&y, 0, -1, -1, -1, -1, 1, 2, -1, -1, 3, 4, -1, -1);
    /* value defaults to 0: [5,6] with lo 1 -> [0,5,6]. */
    Value v = val(TY(DT_F64, 2), D(5, 6));
    Attr b[2] = {attr_ints("lo", DIMS(1), 1), attr_ints("hi", DIMS(0), 1)};
    Value z = eval_ok(OP_PAD, b, 2, &v, 1, TY(DT_F64, 3));
    EXPECT(&z, 0, 0, 5, 6);
    free_vals((Value[]){x, y, v, z}, 4);
}

/* ---- reductions ---- */

Test(interp_reduce, hand_cases) {
    /* [[1,5,3],[4,2,6]]: sum over axis 1 = 9, 12; over axis 0 = 5, 7, 9;
     * over both = 21; max over axis 1 = 5, 6; over axis 0 = 4, 5, 6. */
    Value x = val(TY(DT_F64, 2, 3), D(1, 5, 3, 4, 2, 6));
    Attr ax1 = attr_ints("axes", DIMS(1), 1), ax0 = attr_ints("axes", DIMS(0), 1);
    Attr both = attr_ints("axes", DIMS(1, 0), 2);
    Value s1 = eval_ok(OP_REDUCE_SUM, &ax1, 1, &x, 1, TY(DT_F64, 2));
    Value s0 = eval_ok(OP_REDUCE_SUM, &ax0, 1, &x, 1, TY(DT_F64, 3));
    Value sa = eval_ok(OP_REDUCE_SUM, &both, 1, &x, 1, type_scalar(DT_F64));
    Value m1 = eval_ok(OP_REDUCE_MAX, &ax1, 1, &x, 1, TY(DT_F64, 2));
    Attr keep[2] = {ax0, attr_int("keepdims", 1)};
    Value m0 = eval_ok(OP_REDUCE_MAX, keep, 2, &x, 1, TY(DT_F64, 1, 3));
    EXPECT(&s1, 0, 9, 12);
    EXPECT(&s0, 0, 5, 7, 9);
    EXPECT(&sa, 0, 21);
    EXPECT(&m1, 0, 5, 6);
    EXPECT(&m0, 0, 4, 5, 6);
    /* The declared type must be the reduced one: keepdims=1 wants [1,3]. */
    Diag d = eval_fail(OP_REDUCE_SUM, keep, 2, &x, 1, TY(DT_F64, 3));
    cr_expect(strstr(d.msg, "f64[1,3]"), "%s", d.msg);
    free_vals((Value[]){x, s1, s0, sa, m1, m0}, 6);
}

Test(interp_reduce, empty_axis_and_nan) {
    /* Reducing an empty axis: sum 0, max -inf (the identities). */
    Value e = val(TY(DT_F64, 2, 0), NULL);
    Attr ax1 = attr_ints("axes", DIMS(1), 1);
    Value s = eval_ok(OP_REDUCE_SUM, &ax1, 1, &e, 1, TY(DT_F64, 2));
    Value m = eval_ok(OP_REDUCE_MAX, &ax1, 1, &e, 1, TY(DT_F64, 2));
    EXPECT(&s, 0, 0, 0);
    EXPECT(&m, 0, -INFINITY, -INFINITY);
    /* NaN propagates through reduce_max wherever it sits. */
    Value x = val(TY(DT_F64, 3, 3), D(1, NAN, 3, NAN, 1, 2, 4, 5, -INFINITY));
    Value n = eval_ok(OP_REDUCE_MAX, &ax1, 1, &x, 1, TY(DT_F64, 3));
    EXPECT(&n, 0, NAN, NAN, 5);
    free_vals((Value[]){e, s, m, x, n}, 5);
}

/* Every axis set of a [2,3,4] tensor, with and without keepdims, against
 * a brute-force reduction: output element o collects every input element
 * whose kept coordinates equal o's. */
Test(interp_reduce, all_axis_sets) {
    uint64_t seed = 3;
    Type xt = TY(DT_F64, 2, 3, 4);
    Value x = val_rand(xt, &seed);
    for (int mask = 0; mask < 8; mask++)
        for (int keep = 0; keep < 2; keep++)
            for (int op = 0; op < 2; op++) {
                int64_t axes[3];
                int k = 0;
                Type yt = {.dtype = DT_F64}, kept = xt;
                for (int j = 2; j >= 0; j--) /* listed in reverse: order must not matter */
                    if (mask >> j & 1) axes[k++] = j;
                for (int j = 0; j < 3; j++) {
                    if (mask >> j & 1) kept.dim[j] = 1;
                    if (!(mask >> j & 1) || keep) yt.dim[yt.rank++] = kept.dim[j];
                }
                Attr a[2] = {attr_ints("axes", axes, k), attr_int("keepdims", keep)};
                OpKind kind = op ? OP_REDUCE_MAX : OP_REDUCE_SUM;
                Value y = eval_ok(kind, a, 2, &x, 1, yt);
                for (int64_t o = 0; o < type_numel(&kept); o++) {
                    int64_t oi[3], xi[3];
                    unravel(o, &kept, oi);
                    double want = op ? -INFINITY : 0;
                    for (int64_t i = 0; i < 24; i++) {
                        unravel(i, &xt, xi);
                        bool match = true;
                        for (int j = 0; j < 3; j++)
                            if (!(mask >> j & 1) && xi[j] != oi[j]) match = false;
                        if (match) want = op ? fmax(want, x.data[i]) : want + x.data[i];
                    }
                    expect_close(y.data[o], want, 1e-14, op ? "reduce_max" : "reduce_sum");
                }
                value_free(&y);
            }
    value_free(&x);
}

Test(interp_reduce, argmax) {
    /* Row 0 [1,3,3,2]: the first of the tied 3s, index 1. Row 1
     * [5,NaN,7,NaN]: NaN beats 7 and the first NaN wins, index 1. Row 2
     * [-inf,-inf,-inf,-inf]: index 0. */
    Value x = val(TY(DT_F64, 3, 4), D(1, 3, 3, 2, 5, NAN, 7, NAN, -INFINITY, -INFINITY,
                                      -INFINITY, -INFINITY));
    Attr a1 = attr_int("axis", 1), a0 = attr_int("axis", 0);
    Value y = eval_ok(OP_ARGMAX, &a1, 1, &x, 1, TY(DT_I32, 3));
    EXPECT(&y, 0, 1, 1, 0);
    /* Axis 0 of [[1,5,2],[4,5,-1]]: 1, 0 (tie: first), 0. */
    Value z = val(TY(DT_F64, 2, 3), D(1, 5, 2, 4, 5, -1));
    Value w = eval_ok(OP_ARGMAX, &a0, 1, &z, 1, TY(DT_I32, 3));
    EXPECT(&w, 0, 1, 0, 0);
    /* Middle axis of [2,3,2] against a direct scan. */
    uint64_t seed = 9;
    Value r = val_rand(TY(DT_F64, 2, 3, 2), &seed);
    Value q = eval_ok(OP_ARGMAX, &a1, 1, &r, 1, TY(DT_I32, 2, 2));
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++) {
            int best = 0;
            for (int j = 1; j < 3; j++)
                if (r.data[(i * 3 + j) * 2 + k] > r.data[(i * 3 + best) * 2 + k]) best = j;
            cr_expect_eq(q.data[i * 2 + k], best);
        }
    free_vals((Value[]){x, y, z, w, r, q}, 6);
}

/* ---- matmul ---- */

Test(interp_matmul, hand_cases) {
    /* [[1,2,3],[4,5,6]] x [[7,8],[9,10],[11,12]]:
     *   1*7+2*9+3*11 = 58, 1*8+2*10+3*12 = 64,
     *   4*7+5*9+6*11 = 139, 4*8+5*10+6*12 = 154. */
    Value in[2] = {val(TY(DT_F64, 2, 3), D(1, 2, 3, 4, 5, 6)),
                   val(TY(DT_F64, 3, 2), D(7, 8, 9, 10, 11, 12))};
    Value y = eval_ok(OP_MATMUL, NULL, 0, in, 2, TY(DT_F64, 2, 2));
    EXPECT(&y, 0, 58, 64, 139, 154);
    /* Batch of two [1,2] x [2,1]: 1*3+2*4 = 11; -1*2+0.5*6 = 1. */
    Value b[2] = {val(TY(DT_F64, 2, 1, 2), D(1, 2, -1, 0.5)),
                  val(TY(DT_F64, 2, 2, 1), D(3, 4, 2, 6))};
    Value z = eval_ok(OP_MATMUL, NULL, 0, b, 2, TY(DT_F64, 2, 1, 1));
    EXPECT(&z, 0, 11, 1);
    Diag d = eval_fail(OP_MATMUL, NULL, 0, (Value[]){in[0], in[0]}, 2, TY(DT_F64, 2, 3));
    cr_expect(strstr(d.msg, "'y' (matmul)"), "%s", d.msg);
    free_vals(in, 2);
    free_vals(b, 2);
    free_vals((Value[]){y, z}, 2);
}

Test(interp_matmul, batched_rank4) {
    uint64_t seed = 21;
    Value in[2] = {val_rand(TY(DT_F64, 2, 3, 4, 5), &seed),
                   val_rand(TY(DT_F64, 2, 3, 5, 6), &seed)};
    Value y = eval_ok(OP_MATMUL, NULL, 0, in, 2, TY(DT_F64, 2, 3, 4, 6));
    for (int b = 0; b < 6; b++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 6; j++) {
                double s = 0;
                for (int k = 0; k < 5; k++)
                    s += in[0].data[(b * 4 + i) * 5 + k] * in[1].data[(b * 5 + k) * 6 + j];
                expect_close(y.data[(b * 4 + i) * 6 + j], s, 1e-14, "matmul");
            }
    free_vals(in, 2);
    value_free(&y);
}

/* ---- indexing ---- */

Test(interp_index, one_hot) {
    /* [[0,2],[-1,3]] with depth 3: rows e0, e2, then two all-zero rows for
     * the out-of-range -1 and 3. */
    Value idx = val(TY(DT_I32, 2, 2), D(0, 2, -1, 3));
    Attr depth = attr_int("depth", 3);
    Value y = eval_ok(OP_ONE_HOT, &depth, 1, &idx, 1, TY(DT_F32, 2, 2, 3));
    EXPECT(&y, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0);
    free_vals((Value[]){idx, y}, 2);
}

Test(interp_index, gather) {
    /* x = [[10,11,12],[20,21,22]], idx = [2,0] -> [12,20]. */
    Value in[2] = {val(TY(DT_F64, 2, 3), D(10, 11, 12, 20, 21, 22)), val(TY(DT_I32, 2), D(2, 0))};
    Value y = eval_ok(OP_GATHER, NULL, 0, in, 2, TY(DT_F64, 2));
    EXPECT(&y, 0, 12, 20);
    /* Rank 3: x[2,2,3] = 0..11, idx [[1,2],[0,0]] -> x[0,0,1]=1, x[0,1,2]=5,
     * x[1,0,0]=6, x[1,1,0]=9. */
    Value r[2] = {val(TY(DT_F64, 2, 2, 3), D(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)),
                  val(TY(DT_I32, 2, 2), D(1, 2, 0, 0))};
    Value z = eval_ok(OP_GATHER, NULL, 0, r, 2, TY(DT_F64, 2, 2));
    EXPECT(&z, 0, 1, 5, 6, 9);
    in[1].data[1] = 3;
    Diag d = eval_fail(OP_GATHER, NULL, 0, in, 2, TY(DT_F64, 2));
    cr_expect_eq(d.code, EXIT_RUNTIME);
    cr_expect(strstr(d.msg, "'y' (gather)") && strstr(d.msg, "index 3") &&
                  strstr(d.msg, "element 1"), "%s", d.msg);
    in[1].data[1] = -1;
    d = eval_fail(OP_GATHER, NULL, 0, in, 2, TY(DT_F64, 2));
    cr_expect(strstr(d.msg, "index -1"), "%s", d.msg);
    free_vals(in, 2);
    free_vals(r, 2);
    free_vals((Value[]){y, z}, 2);
}
