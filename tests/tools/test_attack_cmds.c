/* The executable's attribution commands as a user runs them, on a compiled
 * MLP trained briefly on real MNIST: attrib (IFIA top-k), consistency and
 * ig. Checked: the JSON's aggregates are the means of its per-image rows
 * and lie in range; identities that must hold exactly (eps 0: every iterate
 * is the original, so top-k = tau = 1 and consistency = 1; zero steps: no
 * candidate, recorded as 1); the two selections' per-image order; a seeded
 * random start; the PNG strip's size follows the layout; bad options and a
 * missing checkpoint are clear errors. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/common/scratch.h"
#include "tests/common/spawn.h"

TestSuite(attack_cmds, .init = scratch_setup, .fini = scratch_teardown, .timeout = 900);

#define run(bin, ...) spawn_v((bin), (const char *const[]){__VA_ARGS__, NULL})

/* The MLP at batch 16, attack batch 4, m = 4, trained 1 epoch on 2048
 * images; returns the executable, the run directory in dir. */
static const char *trained_mlp(char *dir, size_t cap) {
    if (!have_mnist()) cr_skip_test("no MNIST under $IGRC_SOURCE_DIR/data/mnist");
    mnist_env();
    const char *exe = in_dir("mlp");
    Result r = run(igrc_bin(), "compile", src_path("models/mnist_mlp_standard.json"), "-o", exe,
                   "--batch", "16", "-D", "eval.ig_steps=4", "-D", "eval.attack_ig_steps=4", "-D",
                   "eval.attack_batch=4");
    cr_assert_eq(r.rc, 0, "igrc compile: exit %d\nstderr: %s", r.rc, r.err);
    result_free(&r);
    snprintf(dir, cap, "%s", in_dir("run"));
    result_ok(run(exe, "train", "--data", "mnist", "--limit", "2048", "--epochs", "1", "--out", dir),
              "train");
    return exe;
}

Test(attack_cmds, attrib_json_means_are_the_per_image_rows) {
    char dir[PATH_MAX];
    const char *exe = trained_mlp(dir, sizeof dir);
    const char *json = in_dir("attrib.json");
    result_ok(run(exe, "attrib", "--out", dir, "--data", "mnist", "--n", "10", "--steps", "3",
                  "--k", "50", "--json", json),
              "attrib");
    cJSON *j = json_load(json);
    cr_expect_eq(json_num(j, "n"), 10);
    cr_expect_eq(json_num(j, "attacked") + json_num(j, "skipped_misclassified"), 10);
    cr_expect_eq(json_num(j, "k"), 50);
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(j, "images");
    cr_assert_eq(cJSON_GetArraySize(rows), 10);
    double topk = 0, tau = 0;
    int attacked = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "attacked"))) continue;
        double t = json_num(row, "topk"), k = json_num(row, "kendall_tau");
        cr_expect(t >= 0 && t <= 1 && k >= -1 && k <= 1, "top-k %g, tau %g out of range", t, k);
        cr_expect_eq(fmod(t * 50, 1.0), 0, "top-k %g is not a multiple of 1/k", t);
        topk += t, tau += k, attacked++;
    }
    cr_assert_gt(attacked, 5, "only %d of 10 images classified correctly", attacked);
    cr_expect_eq(attacked, json_num(j, "attacked"));
    cr_expect_leq(fabs(topk / attacked - json_num(j, "topk_intersection")), 1e-12);
    cr_expect_leq(fabs(tau / attacked - json_num(j, "kendall_tau")), 1e-12);
    cr_expect_lt(json_num(j, "kendall_tau"), 1, "three steps at eps 0.3 changed no ranking");
    cJSON_Delete(j);
}

Test(attack_cmds, attrib_identities_at_eps_zero_and_zero_steps) {
    char dir[PATH_MAX];
    const char *exe = trained_mlp(dir, sizeof dir);
    const char *const cases[2][2] = {{"--eps", "0"}, {"--steps", "0"}};
    for (int c = 0; c < 2; c++) {
        const char *json = in_dir(c ? "steps0.json" : "eps0.json");
        result_ok(run(exe, "attrib", "--out", dir, "--data", "mnist", "--n", "6", "--steps", "2",
                      cases[c][0], cases[c][1], "--json", json),
                  cases[c][0]);
        cJSON *j = json_load(json);
        cr_expect_eq(json_num(j, "topk_intersection"), 1, "%s %s", cases[c][0], cases[c][1]);
        cr_expect_eq(json_num(j, "kendall_tau"), 1, "%s %s", cases[c][0], cases[c][1]);
        /* eps 0: the original is a label-preserving iterate; 0 steps: none. */
        cr_expect_eq(json_num(j, "no_label_preserving_iterate"), c ? json_num(j, "attacked") : 0);
        cJSON_Delete(j);
    }
}

/* The per-image rows of an attrib JSON: topk and tau of attacked images. */
static int image_rows(const cJSON *j, double *topk, double *tau, int cap) {
    int n = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(j, "images")) {
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "attacked")) || n == cap) continue;
        topk[n] = json_num(row, "topk"), tau[n] = json_num(row, "kendall_tau"), n++;
    }
    return n;
}

/* Both selections choose among the same label-preserving iterates, so per
 * image the topk selection's intersection is at most the kendall one's, and
 * the kendall selection's tau at most the topk one's. A random start is a
 * function of the seed. */
Test(attack_cmds, attrib_selection_attack_k_and_random_start) {
    char dir[PATH_MAX];
    const char *exe = trained_mlp(dir, sizeof dir);
    const char *jk = in_dir("kendall.json"), *jt = in_dir("topk.json");
    const char *jr1 = in_dir("rs1.json"), *jr2 = in_dir("rs2.json");
    result_ok(run(exe, "attrib", "--out", dir, "--data", "mnist", "--n", "8", "--steps", "4",
                  "--json", jk), "attrib --select kendall");
    result_ok(run(exe, "attrib", "--out", dir, "--data", "mnist", "--n", "8", "--steps", "4",
                  "--select", "topk", "--json", jt), "attrib --select topk");
    for (int i = 0; i < 2; i++)
        result_ok(run(exe, "attrib", "--out", dir, "--data", "mnist", "--n", "8", "--steps", "4",
                      "--random-start", "--seed", "7", "--attack-k", "40", "--json", i ? jr2 : jr1),
                  "attrib --random-start");
    /* weights named with --ckpt, results into a run directory not made yet */
    char ck[PATH_MAX + 32], fresh[PATH_MAX + 32];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", dir);
    snprintf(fresh, sizeof fresh, "%s/new/run", dir);
    result_ok(run(exe, "attrib", "--ckpt", ck, "--out", fresh, "--data", "mnist", "--n", "4",
                  "--steps", "1"), "attrib into a new --out");
    char made[PATH_MAX + 64];
    snprintf(made, sizeof made, "%s/attrib.json", fresh);
    cJSON_Delete(json_load(made));
    cJSON *k = json_load(jk), *t = json_load(jt), *r1 = json_load(jr1), *r2 = json_load(jr2);
    double tk[16], kk[16], tt[16], kt[16], a1[16], b1[16], a2[16], b2[16];
    int n = image_rows(k, tk, kk, 16);
    cr_assert_gt(n, 3, "only %d images attacked", n);
    cr_assert_eq(image_rows(t, tt, kt, 16), n);
    for (int i = 0; i < n; i++) {
        cr_expect_leq(tt[i], tk[i], "image row %d: top-k selection %g > kendall selection's %g", i,
                      tt[i], tk[i]);
        cr_expect_leq(kk[i], kt[i], "image row %d: kendall selection's tau %g > %g", i, kk[i], kt[i]);
    }
    cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(t, "select")->valuestring, "topk");
    cr_expect_eq(json_num(k, "attack_k"), json_num(k, "k"), "--attack-k defaults to --k");
    cr_expect_eq(json_num(r1, "attack_k"), 40);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r1, "random_start")));
    cr_expect_eq(image_rows(r1, a1, b1, 16), image_rows(r2, a2, b2, 16));
    for (int i = 0; i < n; i++)
        cr_expect(a1[i] == a2[i] && b1[i] == b2[i], "row %d: the same seed gave %g/%g and %g/%g", i,
                  a1[i], b1[i], a2[i], b2[i]);
    cJSON_Delete(k), cJSON_Delete(t), cJSON_Delete(r1), cJSON_Delete(r2);
}

/* The chunk sizes attrib reports on stderr ("(R rows a step)"), in order;
 * the count. */
static int chunk_rows(const char *err, int *rows, int cap) {
    int n = 0;
    for (const char *p = err; (p = strstr(p, " rows a step)")) && n < cap; p++) {
        const char *q = p;
        while (q > err && q[-1] >= '0' && q[-1] <= '9') q--;
        rows[n++] = atoi(q);
    }
    return n;
}

/* attrib attacks only the correctly classified images, in chunks of the
 * attack batch (4) and then the remainder's binary digits, each by the
 * attack step of that size: no row is padding. An image's result does not
 * depend on its chunk: the first 9 images give the same rows attacked as 9
 * and as 12 (other chunks), with a random start too (keyed by the image). */
Test(attack_cmds, attrib_attacks_exact_chunks_of_the_classified_images) {
    char dir[PATH_MAX];
    const char *exe = trained_mlp(dir, sizeof dir);
    for (int rs = 0; rs < 2; rs++) {
        char j9[PATH_MAX], j12[PATH_MAX];
        snprintf(j9, sizeof j9, "%s", in_dir(rs ? "rs9.json" : "n9.json"));
        snprintf(j12, sizeof j12, "%s", in_dir(rs ? "rs12.json" : "n12.json"));
        Result a = run(exe, "attrib", "--out", dir, "--data", "mnist", "--n", "9", "--steps", "3", "--json", j9,
                       rs ? "--random-start" : "--k", rs ? "--random-start" : "100");
        cr_assert_eq(a.rc, 0, "%s", a.err);
        result_ok(run(exe, "attrib", "--out", dir, "--data", "mnist", "--n", "12", "--steps", "3", "--json", j12,
                      rs ? "--random-start" : "--k", rs ? "--random-start" : "100"),
                  "attrib --n 12");
        cJSON *x = json_load(j9), *y = json_load(j12);
        int attacked = (int)json_num(x, "attacked"), rows[16], n = chunk_rows(a.err, rows, 16), sum = 0;
        cr_assert_gt(attacked, 4, "only %d of 9 images classified correctly", attacked);
        for (int i = 0; i < n; i++) {
            int want = i < attacked / 4 ? 4 : 0;
            if (!want) /* the remainder's binary digits, largest first */
                for (int b = 2, rest = attacked % 4 - (sum - attacked / 4 * 4); b >= 0 && !want; b--)
                    if (rest & (1 << b)) want = 1 << b;
            cr_expect_eq(rows[i], want, "chunk %d has %d rows, not %d (%d attacked)", i, rows[i], want, attacked);
            sum += rows[i];
        }
        cr_expect_eq(sum, attacked, "the chunks hold %d rows for %d attacked images:\n%s", sum, attacked, a.err);
        double t9[16], k9[16], t12[16], k12[16];
        int n9 = image_rows(x, t9, k9, 16);
        cr_assert_geq(image_rows(y, t12, k12, 16), n9);
        for (int i = 0; i < n9; i++)
            cr_expect(t9[i] == t12[i] && k9[i] == k12[i], "attacked image %d: %g/%g among 9, %g/%g among 12", i,
                      t9[i], k9[i], t12[i], k12[i]);
        result_free(&a);
        cJSON_Delete(x), cJSON_Delete(y);
    }
}

Test(attack_cmds, consistency_is_one_at_eps_zero_and_below_one_under_attack) {
    char dir[PATH_MAX];
    const char *exe = trained_mlp(dir, sizeof dir);
    const char *j0 = in_dir("c0.json"), *j1 = in_dir("c1.json");
    result_ok(run(exe, "consistency", "--out", dir, "--data", "mnist", "--n", "20", "--eps", "0",
                  "--json", j0),
              "consistency eps 0");
    result_ok(run(exe, "consistency", "--out", dir, "--data", "mnist", "--n", "20", "--json", j1),
              "consistency eps 0.3");
    cJSON *a = json_load(j0), *b = json_load(j1);
    cr_expect_eq(json_num(a, "consistency"), 1);
    cr_expect_eq(json_num(a, "n"), 20);
    double c = json_num(b, "consistency");
    cr_expect(c > 0 && c < 1, "consistency under PGD %g", c);
    cr_expect_gt(json_num(b, "units"), 0);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* Width and height from a PNG's IHDR. */
static void png_size(const char *path, unsigned *w, unsigned *h) {
    size_t n;
    unsigned char *t = (unsigned char *)slurp(path, &n);
    cr_assert(n > 24 && memcmp(t, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(t + 12, "IHDR", 4) == 0,
              "%s is not a PNG", path);
    uint32_t be[2];
    memcpy(be, t + 16, 8);
    *w = ntohl(be[0]), *h = ntohl(be[1]);
    free(t);
}

Test(attack_cmds, ig_writes_figure_strips) {
    char dir[PATH_MAX], maps[PATH_MAX + 8];
    const char *exe = trained_mlp(dir, sizeof dir);
    snprintf(maps, sizeof maps, "%s/maps", dir);
    result_ok(run(exe, "ig", "--out", dir, "--data", "mnist", "--images", "3,7", "--steps", "2",
                  "--scale", "2", "--maps", maps),
              "ig");
    for (int i = 0; i < 2; i++) {
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/ig_%05d.png", maps, i ? 7 : 3);
        unsigned w, h;
        png_size(p, &w, &h);
        cr_expect_eq(h, 56u, "%s: height %u", p, h);
        /* four panels of 28 * 2 with 4-pixel gaps, or two for a misclassified image */
        cr_expect(w == 4 * 56 + 3 * 4 || w == 2 * 56 + 4, "%s: width %u", p, w);
    }
}

Test(attack_cmds, bad_options_and_missing_checkpoint) {
    char dir[PATH_MAX];
    const char *exe = trained_mlp(dir, sizeof dir);
    Result r = run(exe, "attrib", "--out", dir, "--data", "mnist", "--k", "0");
    cr_expect_eq(r.rc, 2, "exit %d: %s", r.rc, r.err);
    cr_expect(strstr(r.err, "--k"), "%s", r.err);
    result_free(&r);
    const char *const bad[][2] = {{"--select", "lowest"}, {"--attack-k", "0"},
                                  {"--attack-k", "785"}, {"--random-start=1", NULL}};
    for (int i = 0; i < 4; i++) {
        r = bad[i][1] ? run(exe, "attrib", "--out", dir, "--data", "mnist", bad[i][0], bad[i][1])
                      : run(exe, "attrib", "--out", dir, "--data", "mnist", bad[i][0]);
        cr_expect_eq(r.rc, 2, "%s: exit %d: %s", bad[i][0], r.rc, r.err);
        cr_expect(strstr(r.err, bad[i][1] ? bad[i][0] : "--random-start"), "%s", r.err);
        result_free(&r);
    }
    r = run(exe, "ig", "--out", dir, "--data", "mnist", "--images", "5,99999");
    cr_expect_eq(r.rc, 2, "exit %d: %s", r.rc, r.err);
    cr_expect(strstr(r.err, "--images"), "%s", r.err);
    result_free(&r);
    /* output that cannot be written fails the command */
    static const char *const full[] = {"info > /dev/full", "eval --out '%s' --data mnist --n 4 "
                                       "--attacks natural --json '%s/e.json' > /dev/full"};
    for (int i = 0; i < 2; i++) {
        char cmd[1024], sh[3072];
        snprintf(cmd, sizeof cmd, full[i], dir, dir);
        snprintf(sh, sizeof sh, "'%s' %s", exe, cmd);
        r = spawn_v("/bin/sh", (const char *const[]){"-c", sh, NULL});
        cr_expect_eq(r.rc, 1, "%s: exit %d: %s", cmd, r.rc, r.err);
        cr_expect(strstr(r.err, "writing to standard output failed"), "%s", r.err);
        result_free(&r);
    }
    r = run(exe, "consistency", "--out", in_dir("nowhere"), "--data", "mnist", "--n", "4");
    cr_expect_eq(r.rc, 1, "exit %d: %s", r.rc, r.err);
    cr_expect(strstr(r.err, "train first"), "%s", r.err);
    result_free(&r);
}
