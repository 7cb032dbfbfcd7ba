/* eval's AutoAttack attacks as a user runs them, on SmallCNN (standard
 * objective) trained briefly on real MNIST, with small iteration counts:
 *  - a non-robust model at eps 0.3: the standard sequence leaves <= 1%;
 *  - at eps 0.1, where some images survive: APGD-CE is at least as strong
 *    as PGD-20 (alpha 0.01), the sequence's worst case is at most each
 *    attack alone, its stages only go down and end at its result;
 *  - Square reaches the network through predict only (no gradient call),
 *    and a seed reproduces every attack's result;
 *  - bad counts and too many targets are usage errors naming the flag.
 * The attacks' pieces: tests/runtime/test_aa.c; against an independent
 * implementation: tests/reference/test_autoattack_reference.py. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/common/scratch.h"
#include "tests/common/spawn.h"

TestSuite(autoattack, .init = scratch_setup, .fini = scratch_teardown, .timeout = 900);

#define run(bin, ...) spawn_v((bin), (const char *const[]){__VA_ARGS__, NULL})
/* One batch of 32 images, 20 iterations, 3 targets, 100 queries. */
#define SMALL "--n", "32", "--aa-iters", "20", "--aa-targets", "3", "--square-queries", "100"

/* SmallCNN at batch 32 trained one epoch on 2048 images (about 90%). */
static const char *trained(char *dir, size_t cap) {
    if (!have_mnist()) cr_skip_test("no MNIST under $IGRC_SOURCE_DIR/data/mnist");
    mnist_env();
    const char *exe = in_dir("cnn");
    result_ok(run(igrc_bin(), "compile", src_path("models/mnist_smallcnn_standard.json"), "-o", exe, "--batch",
                  "32"),
              "igrc compile");
    snprintf(dir, cap, "%s", in_dir("run"));
    result_ok(run(exe, "train", "--data", "mnist", "--limit", "2048", "--epochs", "1", "--lr", "1e-3", "--out", dir),
              "train");
    return exe;
}

static const cJSON *result(const cJSON *j, const char *attack) {
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(j, "results")) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(r, "attack");
        if (cJSON_IsString(a) && !strcmp(a->valuestring, attack)) return r;
    }
    cr_assert_fail("no result for attack %s", attack);
    return NULL;
}

static double correct(const cJSON *j, const char *attack) { return json_num(result(j, attack), "correct"); }

/* The stages only go down and the last is the sequence's result. */
static void expect_stages(const cJSON *j) {
    const cJSON *aa = result(j, "autoattack"), *st = cJSON_GetObjectItemCaseSensitive(aa, "stages"), *s;
    static const char *const order[] = {"apgd-ce", "apgd-t", "fab-t", "square"};
    cr_assert_eq(cJSON_GetArraySize(st), 4);
    double prev = json_num(result(j, "natural"), "correct");
    int k = 0;
    cJSON_ArrayForEach(s, st) {
        cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(s, "attack")->valuestring, order[k++]);
        cr_expect_leq(json_num(s, "correct"), prev, "stage %s raised the count", order[k - 1]);
        prev = json_num(s, "correct");
    }
    cr_expect_eq(prev, json_num(aa, "correct"));
}

Test(autoattack, breaks_a_standard_model_at_eps_0_3) {
    char dir[PATH_MAX];
    const char *exe = trained(dir, sizeof dir);
    const char *json = in_dir("aa03.json");
    result_ok(run(exe, "eval", "--out", dir, "--data", "mnist", "--attacks", "natural,autoattack", "--eps", "0.3",
                  SMALL, "--json", json),
              "eval");
    cJSON *j = json_load(json);
    cr_expect_gt(correct(j, "natural"), 24, "natural accuracy %g of 32: the model did not train",
                 correct(j, "natural"));
    cr_expect_leq(json_num(result(j, "autoattack"), "accuracy"), 1.0, "AutoAttack left %g%% at eps 0.3",
                  json_num(result(j, "autoattack"), "accuracy"));
    expect_stages(j);
    cJSON_Delete(j);
}

Test(autoattack, worst_case_and_apgd_against_pgd_at_eps_0_1) {
    char dir[PATH_MAX];
    const char *exe = trained(dir, sizeof dir);
    const char *json = in_dir("aa01.json"), *again = in_dir("again.json");
    result_ok(run(exe, "eval", "--out", dir, "--data", "mnist", "--attacks",
                  "natural,pgd,apgd-ce,apgd-t,fab-t,square,autoattack", "--eps", "0.1", "--pgd-steps", "20",
                  "--pgd-alpha", "0.01", "--seed", "3", SMALL, "--json", json),
              "eval");
    cJSON *j = json_load(json);
    double aa = correct(j, "autoattack");
    cr_log_info("eps 0.1 of 32: natural %g pgd %g apgd-ce %g apgd-t %g fab-t %g square %g autoattack %g",
                correct(j, "natural"), correct(j, "pgd"), correct(j, "apgd-ce"), correct(j, "apgd-t"),
                correct(j, "fab-t"), correct(j, "square"), aa);
    cr_expect_gt(aa, 0, "nothing survived eps 0.1: the comparisons below would be empty");
    cr_expect_leq(correct(j, "apgd-ce"), correct(j, "pgd"));
    static const char *const single[] = {"apgd-ce", "apgd-t", "fab-t", "square"};
    for (int k = 0; k < 4; k++) cr_expect_leq(aa, correct(j, single[k]), "worst case above %s alone", single[k]);
    expect_stages(j);
    const cJSON *sq = result(j, "square");
    cr_expect_eq(json_num(sq, "gradient_calls"), 0, "square called a gradient entry point");
    cr_expect_geq(json_num(sq, "predict_calls"), 100 - 1, "square made %g predict calls", json_num(sq, "predict_calls"));
    cr_expect_gt(json_num(result(j, "apgd-ce"), "gradient_calls"), 0);
    /* the same seed, the same results (the attacks with random starts or draws) */
    result_ok(run(exe, "eval", "--out", dir, "--data", "mnist", "--attacks", "apgd-ce,square", "--eps", "0.1",
                  "--seed", "3", SMALL, "--json", again),
              "eval again");
    cJSON *k = json_load(again);
    for (int i = 0; i < 4; i += 3)
        cr_expect_eq(correct(k, single[i]), correct(j, single[i]), "%s is not reproducible", single[i]);
    cJSON_Delete(k);
    cJSON_Delete(j);
}

Test(autoattack, bad_options_name_the_flag) {
    char dir[PATH_MAX];
    const char *exe = trained(dir, sizeof dir);
    const char *const bad[][2] = {{"--aa-iters", "0"}, {"--aa-restarts", "-1"}, {"--square-queries", "0"},
                                  {"--aa-targets", "10"}};
    for (int i = 0; i < 4; i++) {
        Result r = run(exe, "eval", "--out", dir, "--data", "mnist", "--n", "4", "--attacks", "fab-t", bad[i][0],
                       bad[i][1]);
        cr_expect_eq(r.rc, 2, "%s %s: exit %d: %s", bad[i][0], bad[i][1], r.rc, r.err);
        cr_expect(strstr(r.err, bad[i][0]), "%s", r.err);
        result_free(&r);
    }
    Result r = run(exe, "eval", "--out", dir, "--data", "mnist", "--attacks", "auto-attack");
    cr_expect_eq(r.rc, 2, "exit %d: %s", r.rc, r.err);
    cr_expect(strstr(r.err, "autoattack") && strstr(r.err, "square"), "the list of attacks: %s", r.err);
    result_free(&r);
}
