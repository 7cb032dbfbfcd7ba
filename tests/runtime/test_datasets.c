/* The executables' data sets: CIFAR-10 binary batches, IDX shape checks,
 * the shuffling permutation and padded batches. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/io/dataset.h"
#include "tests/common/scratch.h"
#include "tests/runtime/app_files.h"

TestSuite(datasets, .init = scratch_setup, .fini = scratch_teardown);

/* ---- data sets ---------------------------------------------------------- */


Test(datasets, cifar10_binary) {
    const char *dir = in_dir("cifar");
    mkdir(dir, 0777);
    char p[600];
    snprintf(p, sizeof p, "%s/data_batch_1.bin", dir);
    write_cifar(p, 3, 0);
    snprintf(p, sizeof p, "%s/data_batch_2.bin", dir);
    write_cifar(p, 2, 5);
    snprintf(p, sizeof p, "%s/test_batch.bin", dir);
    write_cifar(p, 4, 9);
    Dataset d;
    char err[2048];
    cr_assert(dataset_load(dir, NULL, true, 0, &d, err, sizeof err), "%s", err);
    cr_assert_eq(d.n, 5);
    cr_assert(d.c == 3 && d.h == 32 && d.w == 32);
    int32_t labels[5] = {0, 1, 2, 5, 6};
    for (int i = 0; i < 5; i++) cr_assert_eq(d.y[i], labels[i]);
    /* record 3 is the first of batch 2: pixel k = (0 + k) / 255 */
    cr_assert_float_eq(d.x[3 * 3072 + 7], 7.0f / 255.0f, 1e-7);
    cr_assert_float_eq(d.x[1 * 3072 + 255], 0.0f, 1e-7); /* (1 + 255) mod 256 */
    cr_assert_str_eq(d.source, dir);
    dataset_free(&d);
    cr_assert(dataset_load(dir, NULL, true, 4, &d, err, sizeof err), "%s", err);
    cr_assert_eq(d.n, 4); /* --limit across files */
    cr_assert_eq(d.y[3], 5);
    dataset_free(&d);
    cr_assert(dataset_load(dir, NULL, false, 0, &d, err, sizeof err), "%s", err);
    cr_assert_eq(d.n, 4);
    cr_assert_eq(d.y[0], 9);
    cr_assert_eq(d.y[1], 0);
    int64_t chw[3] = {1, 28, 28};
    cr_assert_not(dataset_check_shape(&d, chw, err, sizeof err));
    cr_assert(strstr(err, dir) && strstr(err, "[3,32,32]") && strstr(err, "[1,28,28]"), "%s", err);
    dataset_free(&d);

    /* a torn file and a bad label */
    uint8_t junk[3073 + 10] = {0};
    write_bytes(p, junk, sizeof junk);
    cr_assert_not(dataset_load(dir, NULL, false, 0, &d, err, sizeof err));
    cr_assert(strstr(err, "test_batch.bin") && strstr(err, "whole number"), "%s", err);
    cr_assert_null(d.x);
    junk[0] = 10;
    write_bytes(p, junk, 3073);
    cr_assert_not(dataset_load(dir, NULL, false, 0, &d, err, sizeof err));
    cr_assert(strstr(err, "label 10"), "%s", err);
    /* a CIFAR directory without training batches */
    snprintf(p, sizeof p, "%s/data_batch_1.bin", dir);
    remove(p);
    cr_assert_not(dataset_load(dir, NULL, true, 0, &d, err, sizeof err));
    cr_assert(strstr(err, "data_batch_1.bin"), "%s", err);
}

Test(datasets, idx_shape_mismatch) {
    const char *dir = make_idx_dir("idx");
    Dataset d;
    char err[2048];
    cr_assert(dataset_load(dir, NULL, true, 0, &d, err, sizeof err), "%s", err);
    cr_assert(d.n == NTRAIN && d.c == 1 && d.h == 2 && d.w == 2);
    int64_t ok[3] = {1, 2, 2}, bad[3] = {1, 28, 28};
    cr_assert(dataset_check_shape(&d, ok, err, sizeof err));
    cr_assert_not(dataset_check_shape(&d, bad, err, sizeof err));
    cr_assert(strstr(err, dir) && strstr(err, "[1,2,2]") && strstr(err, "[1,28,28]"), "%s", err);
    dataset_free(&d);
    cr_assert(dataset_load(dir, NULL, false, 10, &d, err, sizeof err), "%s", err);
    cr_assert_eq(d.n, 10);
    dataset_free(&d);
    cr_assert_not(dataset_load(in_dir("nowhere"), NULL, true, 0, &d, err, sizeof err));
    cr_assert(strstr(err, "nowhere"), "%s", err);
}

Test(datasets, permutation_deterministic) {
    enum { N = 1000 };
    static int64_t a[N], b[N], c[N];
    dataset_permutation(N, 5, 0, a);
    dataset_permutation(N, 5, 0, b);
    cr_assert_arr_eq(a, b, sizeof a);
    static bool seen[N];
    int fixed = 0;
    for (int i = 0; i < N; i++) {
        cr_assert(a[i] >= 0 && a[i] < N && !seen[a[i]]);
        seen[a[i]] = true;
        fixed += a[i] == i;
    }
    cr_assert_lt(fixed, 10); /* actually shuffled */
    dataset_permutation(N, 5, 1, c);
    cr_assert_neq(memcmp(a, c, sizeof a), 0, "another epoch, another order");
    dataset_permutation(N, 6, 0, c);
    cr_assert_neq(memcmp(a, c, sizeof a), 0, "another seed, another order");
    int64_t one[1];
    dataset_permutation(1, 5, 0, one);
    cr_assert_eq(one[0], 0);
    dataset_permutation(0, 5, 0, one);
}

Test(datasets, padded_batches) {
    float xs[5] = {0, 1, 2, 3, 4};
    int32_t ys[5] = {10, 11, 12, 13, 14};
    Dataset d = {.n = 5, .c = 1, .h = 1, .w = 1, .x = xs, .y = ys};
    int64_t order[5] = {4, 2, 0, 1, 3};
    float x[4];
    int32_t y[4];
    uint8_t m[4];
    cr_assert_eq(dataset_nbatches(5, 4), 2);
    cr_assert_eq(dataset_batch(&d, order, 0, 4, false, x, y, m), 4);
    cr_assert(x[0] == 4 && y[1] == 12 && m[3] == 1);
    cr_assert_eq(dataset_batch(&d, order, 4, 4, false, x, y, m), 1);
    cr_assert(x[0] == 3 && y[0] == 13 && m[0] == 1);
    for (int k = 1; k < 4; k++) cr_assert(x[k] == 3 && y[k] == 13 && m[k] == 0);
    /* training wraps around to the start of the same order */
    cr_assert_eq(dataset_batch(&d, order, 4, 4, true, x, y, m), 1);
    cr_assert(x[0] == 3 && x[1] == 4 && x[2] == 2 && x[3] == 0);
    cr_assert(y[1] == 14 && y[2] == 12 && y[3] == 10);
    cr_assert_eq(dataset_batch(&d, NULL, 4, 4, false, x, y, NULL), 1);
    cr_assert(x[0] == 4 && x[3] == 4);
}
