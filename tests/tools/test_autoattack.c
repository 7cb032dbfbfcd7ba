/* eval's AutoAttack attacks as a user runs them, on SmallCNN (standard
 * objective) trained briefly on real MNIST, with small iteration counts:
 *  - a non-robust model at eps 0.3: the standard sequence leaves <= 1%;
 *  - at eps 0.1, where some images survive: APGD-CE is at least as strong
 *    as PGD-20 (alpha 0.01), the sequence's worst case is at most each
 *    attack alone, its stages only go down and end at its result;
 *  - Square reaches the network through predict only (no gradient call),
 *    and a seed reproduces every attack's result;
 *  - bad counts and too many targets are usage errors naming the flag;
 *  - on every SmallCNN model of models/ (narrow widths; 8 steps of its own
 *    objective, inner loops shortened, from a briefly TRADES-trained
 *    start): APGD-CE <= PGD-20 at eps 0.3 (three tests of four models).
 * The trained models are made once per run and shared (shared_artifact).
 * The attacks' pieces: tests/runtime/test_aa.c; against an independent
 * implementation: tests/reference/test_autoattack_reference.py. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/common/scratch.h"
#include "tests/common/spawn.h"

TestSuite(autoattack, .init = scratch_setup, .fini = scratch_teardown, .timeout = 900);

#define run(bin, ...) spawn_v((bin), (const char *const[]){__VA_ARGS__, NULL})
/* One batch of 32 images, 20 iterations, 3 targets, 100 queries. */
#define SMALL "--n", "32", "--aa-iters", "20", "--aa-targets", "3", "--square-queries", "100"

/* SmallCNN at narrow widths (8/16 channels, 32 hidden units: the attacks'
 * many calls cost a quarter of the published widths'). */
#define NARROW "-D", "width1=8", "-D", "width2=16", "-D", "hidden=32"

/* A narrow SmallCNN model at batch 32 (its file and extra -D's) trained two
 * epochs on 2048 images: the executable exe and run/checkpoint.safetensors. */
typedef struct {
    const char *file, *defs[4];
} Narrow;

/* igrc compile of m, narrow, at batch 32, into exe. */
static void compile_narrow(const Narrow *m, const char *exe) {
    char model[PATH_MAX];
    snprintf(model, sizeof model, "%s/%s", src_path("models"), m->file);
    const char *argv[32] = {"compile", model, "-o", exe, "--batch", "32", NARROW};
    int n = 12;
    for (int k = 0; k < 4 && m->defs[k]; k++) argv[n++] = "-D", argv[n++] = m->defs[k];
    argv[n] = NULL;
    result_ok(spawn_v(igrc_bin(), argv), m->file);
}

static void make_narrow(const char *dir, const void *arg) {
    char exe[PATH_MAX], out[PATH_MAX];
    snprintf(exe, sizeof exe, "%s/exe", dir);
    snprintf(out, sizeof out, "%s/run", dir);
    compile_narrow(arg, exe);
    result_ok(run(exe, "train", "--data", "mnist", "--limit", "2048", "--epochs", "2", "--lr", "3e-3", "--out", out),
              "train");
}

/* make_narrow's model, made once per run (shared_artifact) under key:
 * returns the executable, its checkpoint in ckpt. */
static const char *narrow(const char *key, const Narrow *m, char *ckpt, size_t cap) {
    if (!have_mnist()) cr_skip_test("no MNIST under $IGRC_SOURCE_DIR/data/mnist");
    mnist_env();
    const char *dir = shared_artifact(key, make_narrow, m);
    static char exe[PATH_MAX];
    snprintf(exe, sizeof exe, "%s/exe", dir);
    cr_assert_lt((size_t)snprintf(ckpt, cap, "%s/run/checkpoint.safetensors", dir), cap);
    return exe;
}

/* The standard objective (about 90% after training). */
static const char *trained(char *ckpt, size_t cap) {
    static const Narrow m = {"mnist_smallcnn_standard.json", {NULL}};
    return narrow("smallcnn_standard_w8_16_32_b32_2048x2_lr3e-3", &m, ckpt, cap);
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
    char ckpt[PATH_MAX];
    const char *exe = trained(ckpt, sizeof ckpt);
    const char *json = in_dir("aa03.json");
    result_ok(run(exe, "eval", "--ckpt", ckpt, "--data", "mnist", "--attacks", "natural,autoattack", "--eps", "0.3",
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
    char ckpt[PATH_MAX];
    const char *exe = trained(ckpt, sizeof ckpt);
    const char *json = in_dir("aa01.json"), *again = in_dir("again.json");
    result_ok(run(exe, "eval", "--ckpt", ckpt, "--data", "mnist", "--attacks",
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
    result_ok(run(exe, "eval", "--ckpt", ckpt, "--data", "mnist", "--attacks", "apgd-ce,square", "--eps", "0.1",
                  "--seed", "3", SMALL, "--json", again),
              "eval again");
    cJSON *k = json_load(again);
    for (int i = 0; i < 4; i += 3)
        cr_expect_eq(correct(k, single[i]), correct(j, single[i]), "%s is not reproducible", single[i]);
    cJSON_Delete(k);
    cJSON_Delete(j);
}

/* Every SmallCNN model file, with the -D settings that shorten its
 * objective's inner loops (each names a setting the model has). The
 * widths are narrowed so that training the twelve fits the suite. */
static const Narrow MODELS[] = {
    {"mnist_smallcnn_standard.json", {NULL}},
    {"mnist_smallcnn_at.json", {"pgd_steps=3", "alpha=0.1"}},
    {"mnist_smallcnn_trades.json", {"pgd_steps=3", "alpha=0.1"}},
    {"mnist_smallcnn_mart.json", {"pgd_steps=3", "alpha=0.1"}},
    {"mnist_smallcnn_art.json", {"pgd_steps=3", "alpha=0.1"}},
    {"mnist_smallcnn_at_igr.json", {"pgd_steps=3", "alpha=0.1", "ig_steps=3", "igr_warmup=0.25"}},
    {"mnist_smallcnn_trades_igr.json", {"pgd_steps=3", "alpha=0.1", "ig_steps=3", "igr_warmup=0.25"}},
    {"mnist_smallcnn_mart_igr.json", {"pgd_steps=3", "alpha=0.1", "ig_steps=3", "igr_warmup=0.25"}},
    {"mnist_smallcnn_ig_norm.json", {"pgd_steps=3", "alpha=0.1", "ig_norm_steps=3"}},
    {"mnist_smallcnn_ig_sum_norm.json", {"pgd_steps=3", "alpha=0.1", "ig_norm_steps=3"}},
    {"mnist_smallcnn_advaat.json", {"pgd_steps=3", "alpha=0.1", "advaat_ig_steps=3"}},
    {"mnist_smallcnn_ssr.json", {"ssr_iterations=2"}},
};

/* Every model file the loop above covers (a new one must be added there). */
static void expect_every_model_listed(void) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", src_path("models"));
    DIR *d = opendir(dir);
    cr_assert(d, "cannot list %s", dir);
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "mnist_smallcnn_", 15) || !strstr(e->d_name, ".json")) continue;
        bool listed = false;
        for (size_t i = 0; i < sizeof MODELS / sizeof *MODELS; i++) listed |= !strcmp(MODELS[i].file, e->d_name);
        cr_expect(listed, "models/%s is not in this test's MODELS", e->d_name);
    }
    closedir(d);
}

/* SmallCNN at the narrow widths trained with TRADES (3-step inner PGD) for
 * 2 epochs on 2048 images: the start every model fine-tunes from, so that
 * each is accurate, somewhat robust at eps 0.3 (where PGD-20 with step 0.01
 * cannot use the whole budget), and its weights are its own objective's. */
static void narrow_start(char *ckpt, size_t cap) {
    static const Narrow m = {"mnist_smallcnn_trades.json", {"pgd_steps=3", "alpha=0.1"}};
    narrow("smallcnn_trades_w8_16_32_b32_pgd3_2048x2_lr3e-3", &m, ckpt, cap);
}

/* One model: compile narrow at batch 32, 8 steps of its objective from the
 * start, then PGD-20 (step 0.01) and APGD-CE (100 iterations, as
 * AutoAttack runs it) at the paper's eps 0.3 on 32 images. */
static void apgd_against_pgd(size_t i, const char *start) {
    char exe[PATH_MAX], dir[PATH_MAX], json[PATH_MAX], name[64];
    snprintf(name, sizeof name, "m%zu", i);
    snprintf(exe, sizeof exe, "%s", in_dir(name));
    snprintf(name, sizeof name, "run%zu", i);
    snprintf(dir, sizeof dir, "%s", in_dir(name));
    snprintf(name, sizeof name, "eval%zu.json", i);
    snprintf(json, sizeof json, "%s", in_dir(name));
    compile_narrow(&MODELS[i], exe);
    result_ok(run(exe, "train", "--data", "mnist", "--limit", "256", "--epochs", "1", "--lr", "1e-3", "--init-from",
                  start, "--out", dir),
              "train");
    result_ok(run(exe, "eval", "--out", dir, "--data", "mnist", "--attacks", "natural,pgd,apgd-ce", "--eps", "0.3",
                  "--pgd-steps", "20", "--pgd-alpha", "0.01", "--n", "32", "--json", json),
              "eval");
    cJSON *j = json_load(json);
    cr_log_info("%s, 32 images at eps 0.3: natural %g pgd-20 %g apgd-ce %g", MODELS[i].file, correct(j, "natural"),
                correct(j, "pgd"), correct(j, "apgd-ce"));
    cr_expect_gt(correct(j, "natural"), 20, "%s: natural %g of 32", MODELS[i].file, correct(j, "natural"));
    cr_expect_leq(correct(j, "apgd-ce"), correct(j, "pgd"), "%s: APGD-CE weaker than PGD-20", MODELS[i].file);
    cJSON_Delete(j);
}

/* Models [first, first + 4) of MODELS: three tests that Criterion runs side
 * by side, sharing the start. */
static void apgd_against_pgd_on(size_t first) {
    if (!have_mnist()) cr_skip_test("no MNIST under $IGRC_SOURCE_DIR/data/mnist");
    mnist_env();
    expect_every_model_listed();
    char start[PATH_MAX];
    narrow_start(start, sizeof start);
    for (size_t i = first; i < first + 4 && i < sizeof MODELS / sizeof *MODELS; i++) apgd_against_pgd(i, start);
}

Test(autoattack, apgd_ce_at_most_pgd_on_every_smallcnn_model_1) { apgd_against_pgd_on(0); }
Test(autoattack, apgd_ce_at_most_pgd_on_every_smallcnn_model_2) { apgd_against_pgd_on(4); }
Test(autoattack, apgd_ce_at_most_pgd_on_every_smallcnn_model_3) { apgd_against_pgd_on(8); }

Test(autoattack, bad_options_name_the_flag) {
    char ckpt[PATH_MAX];
    const char *exe = trained(ckpt, sizeof ckpt);
    const char *const bad[][2] = {{"--aa-iters", "0"}, {"--aa-restarts", "-1"}, {"--square-queries", "0"},
                                  {"--aa-targets", "10"}};
    for (int i = 0; i < 4; i++) {
        Result r = run(exe, "eval", "--ckpt", ckpt, "--data", "mnist", "--n", "4", "--attacks", "fab-t", bad[i][0],
                       bad[i][1]);
        cr_expect_eq(r.rc, 2, "%s %s: exit %d: %s", bad[i][0], bad[i][1], r.rc, r.err);
        cr_expect(strstr(r.err, bad[i][0]), "%s", r.err);
        result_free(&r);
    }
    Result r = run(exe, "eval", "--ckpt", ckpt, "--data", "mnist", "--attacks", "auto-attack");
    cr_expect_eq(r.rc, 2, "exit %d: %s", r.rc, r.err);
    cr_expect(strstr(r.err, "autoattack") && strstr(r.err, "square"), "the list of attacks: %s", r.err);
    result_free(&r);
}
