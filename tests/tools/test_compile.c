/* igrc compile and igrc run as a user runs them, and the executable they
 * produce: a compiled MLP (batch 16) describes itself (info), --emit stops
 * at IR, LLVM IR or an ELF object, --dump-dir writes the plan, program
 * and kernels, bad inputs exit 2 naming the problem; training the real
 * compiled model on MNIST and resuming from a checkpoint gives the same
 * final tensors byte for byte as an uninterrupted run; eval writes JSON. */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/io/safetensors.h"
#include "tests/common/scratch.h"
#include "tests/common/spawn.h"

TestSuite(compile, .init = scratch_setup, .fini = scratch_teardown, .timeout = 900);

#define MLP "models/mnist_mlp_standard.json"
#define MLP_NAME "mnist_mlp_standard"

#define igrc(...) spawn_v(igrc_bin(), (const char *const[]){__VA_ARGS__, NULL})
#define run(bin, ...) spawn_v((bin), (const char *const[]){__VA_ARGS__, NULL})
#define done result_free

static void expect_ok(const Result *r, const char *what) {
    cr_expect_eq(r->rc, 0, "%s: exit %d\nstdout: %s\nstderr: %s", what, r->rc, r->out, r->err);
}

/* Exit status 2 and each word in stderr. */
static void expect_bad(Result r, const char *w1, const char *w2) {
    cr_expect_eq(r.rc, 2, "exit %d, expected 2\nstderr: %s", r.rc, r.err);
    cr_expect(strstr(r.err, w1), "stderr lacks \"%s\": %s", w1, r.err);
    if (w2) cr_expect(strstr(r.err, w2), "stderr lacks \"%s\": %s", w2, r.err);
    done(&r);
}

static bool file_has(const char *path, const char *needle) {
    char *t = slurp(path, NULL);
    bool ok = strstr(t, needle) != NULL;
    free(t);
    return ok;
}

/* Compiles the MLP at batch 16 into the scratch directory; its path. */
static const char *compile_mlp(void) {
    const char *exe = in_dir("mlp");
    Result r = igrc("compile", src_path(MLP), "-o", exe, "--batch", "16");
    cr_assert_eq(r.rc, 0, "igrc compile: exit %d\nstderr: %s", r.rc, r.err);
    done(&r);
    return exe;
}

/* ---- compile ---- */

Test(compile, executable_info) {
    const char *exe = compile_mlp();
    cr_assert_eq(access(exe, X_OK), 0, "%s is not executable: %s", exe, strerror(errno));
    Result r = run(exe, "info");
    expect_ok(&r, "mlp info");
    cr_expect(strstr(r.out, MLP_NAME), "info lacks the program name: %s", r.out);
    cr_expect(strstr(r.out, "parameters"), "info lacks parameters: %s", r.out);
    cr_expect(strstr(r.out, "predict"), "info lacks predict: %s", r.out);
    cr_expect(strstr(r.out, "train_step"), "info lacks train_step: %s", r.out);
    cr_expect(strstr(r.out, "batch    16"), "info: batch is not 16: %s", r.out);
    done(&r);
}

Test(compile, emit_ir) {
    Result r = igrc("compile", src_path(MLP), "--batch", "16", "--emit", "ir");
    expect_ok(&r, "--emit ir");
    cr_expect(strstr(r.out, "fused("), "IR after the pipeline has no fused node");
    cr_expect(strstr(r.out, "func @train_step"), "IR lacks train_step");
    done(&r);
}

Test(compile, emit_llvm) {
    const char *ll = in_dir("x.ll");
    Result r = igrc("compile", src_path(MLP), "--batch", "16", "--emit", "llvm", "-o", ll);
    expect_ok(&r, "--emit llvm");
    done(&r);
    cr_assert_eq(access(ll, R_OK), 0, "no %s", ll);
    cr_expect(file_has(ll, "define"), "%s has no function definition", ll);
}

Test(compile, emit_obj) {
    const char *o = in_dir("x.o");
    Result r = igrc("compile", src_path(MLP), "--batch", "16", "--emit", "obj", "-o", o);
    expect_ok(&r, "--emit obj");
    done(&r);
    size_t n = 0;
    char *b = slurp(o, &n);
    cr_expect(n > 4 && !memcmp(b, "\x7f" "ELF", 4), "%s is not an ELF file (%zu bytes)", o, n);
    free(b);
}

Test(compile, dump_dir) {
    const char *dir = in_dir("dumps");
    cr_assert_eq(mkdir(dir, 0700), 0);
    const char *exe = in_dir("mlp");
    Result r = igrc("compile", src_path(MLP), "--batch", "16", "-o", exe, "--dump-dir", dir);
    expect_ok(&r, "--dump-dir");
    done(&r);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/plan.txt", dir);
    cr_expect_eq(access(p, R_OK), 0, "no %s", p);
    if (access(p, R_OK) == 0) cr_expect(file_has(p, "train_step"), "plan.txt lacks train_step");
    snprintf(p, sizeof p, "%s/program.txt", dir);
    cr_expect_eq(access(p, R_OK), 0, "no %s", p);
    snprintf(p, sizeof p, "%s/kernels", dir);
    DIR *d = opendir(p);
    cr_assert(d, "no %s", p);
    int kernels = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t k = strlen(e->d_name);
        if (k > 2 && !strcmp(e->d_name + k - 2, ".k")) kernels++;
    }
    closedir(d);
    cr_expect_gt(kernels, 0, "no kernels/*.k in %s", p);
}

/* --dump-after into a --dump-dir that does not exist yet: the pass dumps
 * come first, and they make the directory too. */
Test(compile, dump_after_into_a_new_dir) {
    const char *dir = in_dir("fresh");
    Result r = igrc("compile", src_path(MLP), "--batch", "16", "-o", in_dir("mlp2"), "--dump-dir", dir,
                    "--dump-after", "licm");
    expect_ok(&r, "--dump-after licm --dump-dir (new)");
    done(&r);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/006.licm.ir", dir);
    cr_expect_eq(access(p, R_OK), 0, "no %s", p);
    if (access(p, R_OK) == 0) cr_expect(file_has(p, "func @train_step"), "%s lacks train_step", p);
}

Test(compile, bad_input) {
    expect_bad(igrc("compile", in_dir("missing.json"), "-o", in_dir("m")), "missing.json", NULL);
    expect_bad(igrc("compile", src_path(MLP), "--target", "tpu", "-o", in_dir("m")), "tpu",
               "--target");
    expect_bad(igrc("compile", src_path(MLP), "--emit", "bogus", "-o", in_dir("m")), "bogus",
               "--emit");
    cr_expect_neq(access(in_dir("m"), F_OK), 0, "a failed compile left %s", in_dir("m"));
}

/* An output that cannot be written is a runtime failure (status 1), for
 * every --emit, naming the path. */
Test(compile, unwritable_output) {
    static const char *const emits[] = {"ir", "obj", "exe"};
    for (int i = 0; i < 3; i++) {
        char out[PATH_MAX];
        snprintf(out, sizeof out, "%s/nodir/out", g_dir);
        Result r = igrc("compile", src_path(MLP), "--batch", "2", "--emit", emits[i], "-o", out);
        cr_expect_eq(r.rc, 1, "--emit %s -o %s: exit %d, expected 1\nstderr: %s", emits[i], out,
                     r.rc, r.err);
        cr_expect(strstr(r.err, "nodir/out"), "--emit %s: stderr lacks the path: %s", emits[i],
                  r.err);
        done(&r);
    }
}

/* An output name that starts with '-' is a file, not a compiler option
 * (cc once got "-X.o.tmp" as an option); the executable runs. */
Test(compile, output_name_starting_with_a_dash) {
    cr_assert_eq(chdir(g_dir), 0);
    Result r = igrc("compile", src_path(MLP), "--batch", "2", "-o", "-X");
    cr_expect_eq(r.rc, 0, "exit %d\nstderr: %s", r.rc, r.err);
    done(&r);
    r = run("./-X", "info");
    cr_expect_eq(r.rc, 0, "./-X info: exit %d\nstderr: %s", r.rc, r.err);
    cr_expect(strstr(r.out, MLP_NAME), "%s", r.out);
    done(&r);
}

Test(compile, run_info) {
    Result r = igrc("run", src_path(MLP), "--batch", "16", "--", "info");
    expect_ok(&r, "igrc run -- info");
    cr_expect(strstr(r.out, MLP_NAME), "igrc run -- info lacks the program name: %s", r.out);
    done(&r);
}

/* ---- the compiled model on MNIST ---- */

/* Every tensor of a and b has the same name, dtype, shape and bytes. */
static void expect_same_checkpoint(const char *a, const char *b) {
    StFile fa = {0}, fb = {0};
    char err[512];
    cr_assert(st_read(a, &fa, err, sizeof err), "%s", err);
    cr_assert(st_read(b, &fb, err, sizeof err), "%s", err);
    cr_expect_eq(fa.n, fb.n, "%d tensors vs %d", fa.n, fb.n);
    cr_expect_gt(fa.n, 0);
    int differ = 0;
    for (int i = 0; i < fa.n; i++) {
        const StTensor *x = &fa.tensors[i], *y = st_find(&fb, x->name);
        if (!y) {
            cr_expect_fail("%s has no tensor %s", b, x->name);
            continue;
        }
        bool same = x->dtype == y->dtype && x->rank == y->rank && x->nbytes == y->nbytes &&
                    !memcmp(x->shape, y->shape, sizeof x->shape[0] * (size_t)x->rank) &&
                    !memcmp(x->data, y->data, x->nbytes);
        if (!same) {
            differ++;
            cr_expect_fail("tensor %s differs between the uninterrupted and the resumed run",
                           x->name);
        }
    }
    cr_log_info("%d checkpoint tensors compared, %d differ", fa.n, differ);
    st_free(&fa);
    st_free(&fb);
}

Test(compile, train_resume_bit_identical) {
    if (!have_mnist()) cr_skip_test("no MNIST under $IGRC_SOURCE_DIR/data/mnist");
    mnist_env();
    const char *exe = compile_mlp();
    char A[PATH_MAX], B[PATH_MAX], ckA[PATH_MAX + 32], ckB[PATH_MAX + 32];
    snprintf(A, sizeof A, "%s", in_dir("A"));
    snprintf(B, sizeof B, "%s", in_dir("B"));
    snprintf(ckA, sizeof ckA, "%s/checkpoint.safetensors", A);
    snprintf(ckB, sizeof ckB, "%s/checkpoint.safetensors", B);

    /* 256 images at batch 16: 16 steps per epoch. */
    Result r = run(exe, "train", "--data", "mnist", "--limit", "256", "--epochs", "2", "--out", A);
    expect_ok(&r, "train 2 epochs");
    cr_expect(strstr(r.out, "trained 2 epochs (32 steps)"), "%s", r.out);
    done(&r);

    r = run(exe, "train", "--data", "mnist", "--limit", "256", "--epochs", "1", "--out", B);
    expect_ok(&r, "train 1 epoch");
    cr_expect(strstr(r.out, "trained 1 epochs (16 steps)"), "%s", r.out);
    done(&r);
    r = run(exe, "train", "--data", "mnist", "--limit", "256", "--epochs", "2", "--out", B,
            "--resume", ckB);
    expect_ok(&r, "resume to 2 epochs");
    done(&r);

    expect_same_checkpoint(ckA, ckB);

    /* eval on the trained checkpoint */
    const char *json = in_dir("eval.json");
    r = run(exe, "eval", "--out", A, "--data", "mnist", "--n", "64", "--json", json);
    expect_ok(&r, "eval");
    done(&r);
    cr_assert_eq(access(json, R_OK), 0, "eval wrote no %s", json);
    cr_expect(file_has(json, "\"natural\""), "%s lacks \"natural\"", json);
}

/* The SmallCNN with GELU (models/nets/smallcnn_gelu.json) under the standard
 * objective, compiled, trained one epoch on 2,048 images and evaluated on
 * 500: it learns (a one-epoch ReLU SmallCNN gets about 90% here). Narrow
 * widths (16/32/128) keep the sanitizer build's run short. */
Test(compile, gelu_smallcnn_trains_one_epoch) {
    if (!have_mnist()) cr_skip_test("no MNIST under $IGRC_SOURCE_DIR/data/mnist");
    mnist_env();
    char model[PATH_MAX + 64];
    snprintf(model, sizeof model, "%s", in_dir("gelu.json"));
    FILE *f = fopen(model, "w");
    cr_assert(f);
    fprintf(f, "{\"igrc\": 1, \"name\": \"gelu_standard\", \"include\": [\"%s\", \"%s\"], "
               "\"data\": \"mnist\", \"batch\": 64, \"train\": {\"lr\": 0.002, \"epochs\": 1}}\n",
            src_path("models/nets/smallcnn_gelu.json"), src_path("models/objectives/standard.json"));
    fclose(f);
    const char *exe = in_dir("gelu");
    Result r = igrc("compile", model, "-o", exe, "-D", "width1=16", "-D", "width2=32", "-D", "hidden=128");
    cr_assert_eq(r.rc, 0, "igrc compile: exit %d\nstderr: %s", r.rc, r.err);
    done(&r);
    const char *out = in_dir("gelu_run"), *json = in_dir("gelu_eval.json");
    r = run(exe, "train", "--data", "mnist", "--limit", "2048", "--out", out);
    expect_ok(&r, "train");
    cr_expect(strstr(r.out, "trained 1 epochs (32 steps)"), "%s", r.out);
    done(&r);
    r = run(exe, "eval", "--out", out, "--data", "mnist", "--n", "500", "--attacks", "natural",
            "--json", json);
    expect_ok(&r, "eval");
    done(&r);
    char *text = slurp(json, NULL);
    const char *acc = strstr(text, "\"accuracy\":");
    cr_assert(acc, "no accuracy in %s", text);
    double a = strtod(acc + strlen("\"accuracy\":"), NULL); /* percent */
    cr_log_info("GELU SmallCNN after one epoch on 2,048 images: natural accuracy %.1f%%", a);
    cr_expect(a > 75 && a <= 100, "natural accuracy %.1f%% after one epoch", a);
    free(text);
}
