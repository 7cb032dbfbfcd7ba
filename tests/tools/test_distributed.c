/* Data-parallel training under mpirun (docs/distributed.md), as a user runs
 * it, on real MNIST with small SmallCNN models (8/16 channels) compiled
 * with train.micro_batch:
 *  - TRADES+IGR (dropout, PGD random starts, IG), 20 steps: two ranks end
 *    with the same checkpoint bytes as one process, and a second two-rank
 *    run repeats them, as does one whose gradient sums start after each
 *    call (IGRC_DP_OVERLAP=0) rather than at train_grads' reduce steps;
 *  - a two-rank run resumed from its checkpoint continues as if never
 *    stopped;
 *  - eval, attrib and consistency share their batches out over the ranks:
 *    the same tables and JSON as one process;
 *  - a rank killed mid-epoch stops the job within a bounded time, with an
 *    error naming the rank, and the last checkpoint stays loadable;
 *  - the NCCL path (fake_nccl standing in for libnccl.so.2, the CPU
 *    backend's buffers as device memory): two ranks with one micro-batch
 *    each end with one process's checkpoint bytes; NCCL missing, or more
 *    micro-batches per rank than it reduces, are errors naming the cause;
 *  - train.sync_bn on a small batch-norm network: one SGD step of two ranks
 *    (micro-batches of 8, statistics over both) matches one process on the
 *    whole batch of 16 within float rounding, per-rank statistics do not,
 *    and two-rank runs repeat bit for bit; with the same images on both
 *    ranks, the step equals one process's on one copy bit for bit; a sync_bn program refuses a rank
 *    count other than the one it was compiled for, and sync_bn without
 *    micro-batches does not compile;
 *  - refused: ranks that cannot share the batch, a program without
 *    train.micro_batch under mpirun, an unloadable libmpi, another MPI's
 *    launcher, ig (which does not shard) under mpirun. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/io/safetensors.h"
#include "tests/common/scratch.h"
#include "tests/common/spawn.h"

extern char **environ;

TestSuite(distributed, .init = scratch_setup, .fini = scratch_teardown, .timeout = 900);

#define run(bin, ...) spawn_v((bin), (const char *const[]){__VA_ARGS__, NULL})
#define run_mpi(mr, ...) run_mpi_v((mr), (const char *const[]){__VA_ARGS__, NULL})
/* Open MPI as root, more ranks than cores, no ptrace-based copies (containers). */
#define MPI_FLAGS "--allow-run-as-root", "--oversubscribe", "--mca", "btl_vader_single_copy_mechanism", "none"

/* Ranks run without LeakSanitizer's exit check: Open MPI's plugins, unloaded
 * at MPI_Finalize, leave allocations it cannot attribute (frames in an
 * "<unknown module>"), so no suppression can name them. The same commands
 * as one process keep the check. */
static void mpi_env(bool on) {
    static char saved[512], *had;
    if (on) {
        had = getenv("ASAN_OPTIONS") ? strncpy(saved, getenv("ASAN_OPTIONS"), sizeof saved - 1) : NULL;
        char opts[600];
        snprintf(opts, sizeof opts, "%s%sdetect_leaks=0", had ? had : "", had && *had ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    } else if (had) {
        setenv("ASAN_OPTIONS", had, 1);
    } else {
        unsetenv("ASAN_OPTIONS");
    }
}

static Result run_mpi_v(const char *mr, const char *const *args) {
    mpi_env(true);
    Result r = spawn_v(mr, args);
    mpi_env(false);
    return r;
}

static const char *mpirun(void) {
    static const char *const where[] = {"/usr/bin/mpirun", "/usr/local/bin/mpirun"};
    for (int i = 0; i < 2; i++)
        if (access(where[i], X_OK) == 0) return where[i];
    cr_skip_test("no mpirun (Debian: openmpi-bin, which scripts/setup.sh installs)");
    return NULL;
}

/* What compile_v makes: a model file and its extra -D's. */
typedef struct {
    const char *model, *const *defs;
} Build;

static void make_exe(const char *dir, const void *arg) {
    const Build *b = arg;
    char exe[PATH_MAX];
    snprintf(exe, sizeof exe, "%s/exe", dir);
    const char *argv[32] = {"compile", src_path(b->model), "-o", exe, "--batch", "16", "-D", "train.micro_batch=4",
                            "-D", "eval.attack_batch=4", "-D", "eval.ig_steps=4", "-D", "eval.attack_ig_steps=4"};
    int n = 14;
    for (int i = 0; b->defs[i] && i < 4; i++) argv[n++] = "-D", argv[n++] = b->defs[i];
    result_ok(spawn_v(igrc_bin(), argv), "igrc compile");
}

/* model compiled at batch 16 with micro-batches of 4 (M = 4), attrib's
 * batch 4 with 4 path points, and the -D's given (key=value, at most 4):
 * compiled once per run and shared by the tests that ask for the same. */
static const char *compile_v(const char *model, const char *const *defs) {
    if (!have_mnist()) cr_skip_test("no MNIST under $IGRC_SOURCE_DIR/data/mnist");
    mnist_env();
    char key[512];
    int len = snprintf(key, sizeof key, "dist_%s_b16_mb4", strrchr(model, '/') ? strrchr(model, '/') + 1 : model);
    for (int i = 0; defs[i] && len < (int)sizeof key; i++)
        len += snprintf(key + len, sizeof key - (size_t)len, "_%s", defs[i]);
    const Build b = {model, defs};
    const char *dir = shared_artifact(key, make_exe, &b);
    static char exe[4][PATH_MAX];
    static int k;
    char *e = exe[k++ % 4];
    snprintf(e, PATH_MAX, "%s/exe", dir);
    return e;
}
#define compile(model, ...) compile_v((model), (const char *const[]){__VA_ARGS__, NULL})

static bool same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    bool same = na == nb && memcmp(x, y, na) == 0;
    free(x), free(y);
    return same;
}

static char *ckpt(const char *dir) {
    static char buf[4][PATH_MAX];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, PATH_MAX, "%s/checkpoint.safetensors", dir);
    return p;
}

/* mpirun -np 2 EXE train on the first `limit` images for `epochs` into out
 * (resuming from resume unless NULL). */
static void train2(const char *exe, const char *limit, const char *epochs, const char *out, const char *resume) {
    result_ok(resume ? run_mpi(mpirun(), MPI_FLAGS, "-np", "2", exe, "train", "--data", "mnist", "--limit", limit,
                           "--epochs", epochs, "--out", out, "--resume", resume)
                     : run_mpi(mpirun(), MPI_FLAGS, "-np", "2", exe, "train", "--data", "mnist", "--limit", limit,
                           "--epochs", epochs, "--out", out),
              out);
}

Test(distributed, two_ranks_give_one_process_bits_and_repeat) {
    mpirun();
    /* narrow widths (8/16 channels): the same ops and reductions at a fraction of the cost */
    const char *exe =
        compile("models/mnist_smallcnn_trades_igr.json", "pgd_steps=5", "ig_steps=4", "width1=8", "width2=16");
    const char *one = in_dir("one"), *two = in_dir("two"), *again = in_dir("again");
    result_ok(run(exe, "train", "--data", "mnist", "--limit", "320", "--epochs", "1", "--out", one), "one process");
    train2(exe, "320", "1", two, NULL);
    train2(exe, "320", "1", again, NULL);
    cr_expect(same_file(ckpt(one), ckpt(two)), "20 steps: 2 ranks differ from one process");
    cr_expect(same_file(ckpt(two), ckpt(again)), "2 ranks do not repeat");
    /* the sums started after the call rather than at the reduce steps: same bits */
    const char *late = in_dir("late");
    setenv("IGRC_DP_OVERLAP", "0", 1);
    train2(exe, "320", "1", late, NULL);
    unsetenv("IGRC_DP_OVERLAP");
    cr_expect(same_file(ckpt(two), ckpt(late)), "2 ranks: reducing after the call differs from reduce steps");
}

/* The gradients of TRADES+IGR (f32; micro-batches of 8, one per rank) summed
 * by NCCL's pair communicators, in place in train_apply's inputs. */
Test(distributed, nccl_reduction_gives_one_process_bits) {
    mpirun();
    if (!have_mnist()) cr_skip_test("no MNIST under $IGRC_SOURCE_DIR/data/mnist");
    mnist_env();
    const char *exe = in_dir("ti8"), *one = in_dir("one"), *nccl = in_dir("nccl"), *trace = in_dir("trace");
    result_ok(run(igrc_bin(), "compile", src_path("models/mnist_smallcnn_trades_igr.json"), "-o", exe, "--batch",
                  "16", "-D", "train.micro_batch=8", "-D", "pgd_steps=3", "-D", "ig_steps=4", "-D", "width1=8",
                  "-D", "width2=16"),
              "igrc compile");
    result_ok(run(exe, "train", "--data", "mnist", "--limit", "160", "--epochs", "1", "--out", one), "one process");
    setenv("IGRC_NCCL", "1", 1), setenv("IGRC_NCCL_LIB", FAKE_LIBNCCL, 1), setenv("FAKE_NCCL_TRACE", trace, 1);
    Result r = run_mpi(mpirun(), MPI_FLAGS, "-np", "2", exe, "train", "--data", "mnist", "--limit", "160", "--epochs",
                       "1", "--out", nccl);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_expect(strstr(r.err, "2 ranks: gradients summed with NCCL 2.11.0"), "%s", r.err);
    result_free(&r);
    cr_expect(same_file(ckpt(one), ckpt(nccl)), "10 steps: NCCL's sum differs from one process");
    size_t n = 0;
    char *t = slurp(trace, NULL);
    for (const char *p = t; (p = strstr(p, "allreduce pid")); p++) n++;
    free(t);
    cr_expect_eq(n, 2 * 10 * 14, "%zu all-reduces: 2 ranks x 10 steps x 14 gradients (SmallCNN) expected", n);
    /* NCCL missing; micro-batches of 4 (two per rank) */
    setenv("IGRC_NCCL_LIB", "/nonexistent/libnccl.so.2", 1);
    r = run_mpi(mpirun(), MPI_FLAGS, "-np", "2", exe, "train", "--data", "mnist", "--limit", "32", "--out",
                in_dir("x"));
    cr_expect_neq(r.rc, 0);
    cr_expect(strstr(r.err, "/nonexistent/libnccl.so.2 cannot be loaded") && strstr(r.err, "IGRC_NCCL=0"), "%s",
              r.err);
    result_free(&r);
    setenv("IGRC_NCCL_LIB", FAKE_LIBNCCL, 1);
    const char *mb4 = compile("models/mnist_smallcnn_standard.json", "width1=8", "width2=16");
    r = run_mpi(mpirun(), MPI_FLAGS, "-np", "2", mb4, "train", "--data", "mnist", "--limit", "32", "--out",
                in_dir("y"));
    cr_expect_eq(r.rc, 2, "exit %d: %s", r.rc, r.err);
    cr_expect(strstr(r.err, "compile with -D train.micro_batch=8"), "%s", r.err);
    result_free(&r);
    unsetenv("IGRC_NCCL"), unsetenv("IGRC_NCCL_LIB"), unsetenv("FAKE_NCCL_TRACE");
}

Test(distributed, resumed_two_rank_run_continues_bit_for_bit) {
    mpirun();
    const char *exe = compile("models/mnist_smallcnn_standard.json", "width1=8", "width2=16");
    const char *full = in_dir("full"), *part = in_dir("part");
    train2(exe, "128", "2", full, NULL);
    train2(exe, "128", "1", part, NULL);
    train2(exe, "128", "2", part, ckpt(part));
    cr_expect(same_file(ckpt(full), ckpt(part)), "the resumed run differs from the uninterrupted one");
}

Test(distributed, sharded_eval_equals_one_process) {
    const char *mr = mpirun();
    const char *exe = compile("models/mnist_smallcnn_standard.json", "width1=8", "width2=16");
    const char *dir = in_dir("run");
    result_ok(run(exe, "train", "--data", "mnist", "--limit", "512", "--epochs", "1", "--lr", "2e-3", "--out", dir),
              "train");
    /* 40 images: batches of 16, 16 and 8 (padded), two on rank 0 */
    const char *one = in_dir("one.json"), *two = in_dir("two.json");
#define EVAL_ARGS "eval", "--out", dir, "--data", "mnist", "--n", "40", "--eps", "0.1", "--attacks", \
        "natural,fgsm,pgd,apgd-ce,square,autoattack", "--aa-iters", "5", "--aa-targets", "2", "--square-queries", "20"
    Result a = run(exe, EVAL_ARGS, "--json", one);
    Result b = run_mpi(mr, MPI_FLAGS, "-np", "2", exe, EVAL_ARGS, "--json", two);
    cr_assert_eq(a.rc, 0, "%s", a.err);
    cr_assert_eq(b.rc, 0, "%s", b.err);
    cr_expect_str_eq(b.out, a.out, "the tables differ");
    cr_expect(same_file(one, two), "the JSON differs");
    result_free(&a);
    result_free(&b);
    /* attrib (attack batch 4: 10 images in 3 batches) and consistency (40 in 3) */
    static const char *const cmds[][2] = {{"attrib", "attrib"}, {"consistency", "consistency"}};
    for (int i = 0; i < 2; i++) {
        char j1[PATH_MAX], j2[PATH_MAX];
        snprintf(j1, sizeof j1, "%s/%s1.json", dir, cmds[i][1]);
        snprintf(j2, sizeof j2, "%s/%s2.json", dir, cmds[i][1]);
        const char *n = i ? "40" : "10";
        a = run(exe, cmds[i][0], "--out", dir, "--data", "mnist", "--n", n, "--steps", "3", "--json", j1);
        b = i ? run_mpi(mr, MPI_FLAGS, "-np", "2", exe, cmds[i][0], "--out", dir, "--data", "mnist", "--n", n,
                    "--pgd-steps", "3", "--json", j2)
              : run_mpi(mr, MPI_FLAGS, "-np", "2", exe, cmds[i][0], "--out", dir, "--data", "mnist", "--n", n,
                    "--steps", "3", "--json", j2);
        if (i) { /* consistency's steps flag is --pgd-steps: run one process the same way */
            result_free(&a);
            a = run(exe, cmds[i][0], "--out", dir, "--data", "mnist", "--n", n, "--pgd-steps", "3", "--json", j1);
        }
        cr_assert_eq(a.rc, 0, "%s: %s", cmds[i][0], a.err);
        cr_assert_eq(b.rc, 0, "%s under mpirun: %s", cmds[i][0], b.err);
        cr_expect_str_eq(b.out, a.out, "%s: the tables differ", cmds[i][0]);
        cr_expect(same_file(j1, j2), "%s: the JSON differs", cmds[i][0]);
        result_free(&a);
        result_free(&b);
    }
}

static pid_t start(const char *const *argv, const char *err) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int e = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(e, 0, "cannot run %s: %s", argv[0], strerror(e));
    return pid;
}

/* A child of parent whose command line is exe's (a rank), or -1. */
static pid_t rank_of(pid_t parent, const char *exe) {
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "pgrep -P %d -f '^%s train'", (int)parent, exe);
    FILE *f = popen(cmd, "r");
    int pid = -1;
    if (f && fscanf(f, "%d", &pid) != 1) pid = -1;
    if (f) pclose(f);
    return pid;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

Test(distributed, a_killed_rank_stops_the_job_and_leaves_the_checkpoint) {
    const char *mr = mpirun();
    const char *exe = compile("models/mnist_smallcnn_standard.json", "width1=8", "width2=16");
    const char *dir = in_dir("run"), *err = in_dir("mpirun.err");
    const char *argv[] = {mr, MPI_FLAGS, "-np", "2", exe, "train", "--data", "mnist", "--epochs", "1",
                          "--checkpoint-every", "5", "--out", dir, NULL};
    mpi_env(true);
    pid_t job = start(argv, err);
    mpi_env(false);
    struct stat st;
    double t0 = now();
    while (stat(ckpt(dir), &st) != 0 && now() - t0 < 120) usleep(100000);
    cr_assert_eq(stat(ckpt(dir), &st), 0, "no checkpoint after 2 minutes");
    pid_t victim = rank_of(job, exe);
    cr_assert_gt(victim, 0, "no rank process under mpirun %d", (int)job);
    cr_assert_eq(kill(victim, SIGKILL), 0);
    double t_kill = now();
    int status = 0;
    pid_t w;
    while ((w = waitpid(job, &status, WNOHANG)) == 0 && now() - t_kill < 60) usleep(100000);
    if (w == 0) {
        kill(job, SIGKILL);
        waitpid(job, &status, 0);
        cr_assert_fail("the job still ran 60 s after a rank was killed");
    }
    cr_log_info("the job ended %.1f s after the kill", now() - t_kill);
    cr_expect(!WIFEXITED(status) || WEXITSTATUS(status) != 0, "mpirun exited 0 after a rank was killed");
    char *msg = slurp(err, NULL);
    cr_expect(strstr(msg, "rank"), "the error does not name the rank:\n%s", msg);
    free(msg);
    Result r = run(exe, "eval", "--ckpt", ckpt(dir), "--data", "mnist", "--n", "16", "--attacks", "natural",
                   "--json", in_dir("e.json"));
    cr_expect_eq(r.rc, 0, "the checkpoint left behind does not load: %s", r.err);
    result_free(&r);
}

/* A batch-norm CNN (conv biases off: batch norm removes them) with the
 * standard objective and plain SGD, batch 16, into dir/bn.json. */
static const char *bn_model(void) {
    static char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", in_dir("bn.json"));
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f,
            "{\"igrc\": 1, \"name\": \"bncnn\", \"include\": [\"%s\"], \"data\": \"mnist\", \"batch\": 16,\n"
            " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.05},\n"
            " \"inputs\": {\"x\": {\"shape\": [\"B\", 1, 28, 28], \"dtype\": \"f32\", \"range\": [0, 1]},\n"
            "            \"y\": {\"shape\": [\"B\"], \"dtype\": \"i32\", \"classes\": 10}},\n"
            " \"networks\": {\"bncnn\": {\"input\": \"x\", \"output\": \"fc\", \"nodes\": [\n"
            "  {\"id\": \"conv1\", \"op\": \"conv2d\", \"inputs\": [\"x\"], \"out_channels\": 8, \"kernel\": 3, \"bias\": false},\n"
            "  {\"id\": \"bn1\", \"op\": \"batch_norm\", \"inputs\": [\"conv1\"]},\n"
            "  {\"id\": \"relu1\", \"op\": \"relu\", \"inputs\": [\"bn1\"]},\n"
            "  {\"id\": \"pool1\", \"op\": \"maxpool2d\", \"inputs\": [\"relu1\"], \"kernel\": 2},\n"
            "  {\"id\": \"conv2\", \"op\": \"conv2d\", \"inputs\": [\"pool1\"], \"out_channels\": 16, \"kernel\": 3, \"bias\": false},\n"
            "  {\"id\": \"bn2\", \"op\": \"batch_norm\", \"inputs\": [\"conv2\"]},\n"
            "  {\"id\": \"relu2\", \"op\": \"relu\", \"inputs\": [\"bn2\"]},\n"
            "  {\"id\": \"pool2\", \"op\": \"maxpool2d\", \"inputs\": [\"relu2\"], \"kernel\": 2},\n"
            "  {\"id\": \"flatten\", \"op\": \"flatten\", \"inputs\": [\"pool2\"]},\n"
            "  {\"id\": \"fc\", \"op\": \"linear\", \"inputs\": [\"flatten\"], \"out_features\": 10}]}}}\n",
            src_path("models/objectives/standard.json"));
    fclose(f);
    return path;
}

/* An MNIST-format directory of 16 copies of one image (label 3). */
static const char *same_images_dir(void) {
    static char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", in_dir("same"));
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST);
    unsigned char img[784], head[16] = {0, 0, 8, 3, 0, 0, 0, 16, 0, 0, 0, 28, 0, 0, 0, 28},
                            lhead[8] = {0, 0, 8, 1, 0, 0, 0, 16}, labels[16];
    for (int i = 0; i < 784; i++) img[i] = (unsigned char)((i * 37 + 11) % 251);
    memset(labels, 3, sizeof labels);
    static const char *const prefix[] = {"train", "t10k"};
    for (int p = 0; p < 2; p++) {
        char path[PATH_MAX + 40];
        snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix[p]);
        FILE *f = fopen(path, "wb");
        cr_assert(f);
        fwrite(head, 1, sizeof head, f);
        for (int i = 0; i < 16; i++) fwrite(img, 1, sizeof img, f);
        fclose(f);
        snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix[p]);
        cr_assert(f = fopen(path, "wb"));
        fwrite(lhead, 1, sizeof lhead, f);
        fwrite(labels, 1, sizeof labels, f);
        fclose(f);
    }
    return dir;
}

/* |a - b| / |a| (2-norms) of the f32 tensors called name in two checkpoints. */
static double rel_diff(const StFile *a, const StFile *b, const char *name) {
    const StTensor *x = st_find(a, name), *y = st_find(b, name);
    cr_assert(x && y && x->dtype == ST_F32 && x->nbytes == y->nbytes, "%s", name);
    double d = 0, n = 0;
    for (size_t i = 0; i < x->nbytes / 4; i++) {
        double p = ((const float *)x->data)[i], q = ((const float *)y->data)[i];
        d += (p - q) * (p - q), n += p * p;
    }
    return n > 0 ? sqrt(d / n) : sqrt(d);
}

static StFile load_ckpt(const char *dir) {
    StFile f;
    char err[512];
    cr_assert(st_read(ckpt(dir), &f, err, sizeof err), "%s", err);
    return f;
}

Test(distributed, sync_bn_takes_statistics_over_the_global_batch) {
    const char *mr = mpirun();
    if (!have_mnist()) cr_skip_test("no MNIST under $IGRC_SOURCE_DIR/data/mnist");
    mnist_env();
    /* in_dir's results rotate: keep the executables' paths */
    char one[PATH_MAX], sync[PATH_MAX], local[PATH_MAX];
    const char *model = bn_model();
    snprintf(one, sizeof one, "%s", in_dir("one.exe"));
    snprintf(sync, sizeof sync, "%s", in_dir("sync.exe"));
    snprintf(local, sizeof local, "%s", in_dir("local.exe"));
    result_ok(run(igrc_bin(), "compile", model, "-o", one, "-D", "train.micro_batch=16", "-D", "train.sync_bn=1"),
              "compile, one micro-batch");
    result_ok(run(igrc_bin(), "compile", model, "-o", sync, "-D", "train.micro_batch=8", "-D", "train.sync_bn=1"),
              "compile, sync_bn");
    result_ok(run(igrc_bin(), "compile", model, "-o", local, "-D", "train.micro_batch=8"), "compile, per rank");
    const char *r1 = in_dir("r1"), *rs = in_dir("rs"), *rs2 = in_dir("rs2"), *rl = in_dir("rl");
    result_ok(run(one, "train", "--data", "mnist", "--limit", "16", "--out", r1), "one process");
    result_ok(run_mpi(mr, MPI_FLAGS, "-np", "2", sync, "train", "--data", "mnist", "--limit", "16", "--out", rs),
              "2 ranks, sync_bn");
    result_ok(run_mpi(mr, MPI_FLAGS, "-np", "2", sync, "train", "--data", "mnist", "--limit", "16", "--out", rs2),
              "2 ranks, sync_bn again");
    result_ok(run_mpi(mr, MPI_FLAGS, "-np", "2", local, "train", "--data", "mnist", "--limit", "16", "--out", rl),
              "2 ranks, statistics per rank");
    cr_expect(same_file(ckpt(rs), ckpt(rs2)), "sync_bn: 2 ranks do not repeat");
    StFile a = load_ckpt(r1), s = load_ckpt(rs), l = load_ckpt(rl);
    /* every parameter, running statistic and momentum buffer (the step's gradient) */
    double worst_sync = 0, worst_local = 0;
    for (int i = 0; i < a.n; i++) {
        double ds = rel_diff(&a, &s, a.tensors[i].name), dl = rel_diff(&a, &l, a.tensors[i].name);
        cr_expect_leq(ds, 2e-4, "%s: 2 ranks with sync_bn differ from one process by %.3g", a.tensors[i].name, ds);
        worst_sync = fmax(worst_sync, ds), worst_local = fmax(worst_local, dl);
    }
    cr_expect_gt(a.n, 10);
    double bias = rel_diff(&a, &l, "bn1.bias");
    cr_expect_gt(bias, 1e-2, "per-rank statistics should move bn1.bias away from one process's (%.3g)", bias);
    cr_expect_gt(worst_local, 100 * worst_sync, "per rank %.3g, synchronised %.3g", worst_local, worst_sync);
    st_free(&a), st_free(&s), st_free(&l);
    /* exactly: both ranks given the same 8 images, the global statistics are
     * each rank's (sums doubled, counts doubled: exact in floating point), so
     * a step equals one process's on one copy bit for bit, every gradient
     * included; only the unbiased running variance differs (2n - 1 against
     * n - 1 in its divisor) */
    const char *same = same_images_dir(), *eight = in_dir("eight.exe"), *r8 = in_dir("r8"), *rs8 = in_dir("rs8");
    result_ok(run(igrc_bin(), "compile", model, "-o", eight, "--batch", "8", "-D", "train.micro_batch=8"),
              "compile, batch 8");
    result_ok(run(eight, "train", "--data", same, "--limit", "8", "--out", r8), "one process, one copy");
    result_ok(run_mpi(mr, MPI_FLAGS, "-np", "2", sync, "train", "--data", same, "--limit", "16", "--out", rs8),
              "2 ranks, sync_bn, the same images");
    StFile o = load_ckpt(r8), t = load_ckpt(rs8);
    for (int i = 0; i < o.n; i++) {
        const char *name = o.tensors[i].name;
        double d = rel_diff(&o, &t, name);
        if (strstr(name, "running_var"))
            cr_expect(d > 0 && d < 1e-4, "%s: %.3g", name, d);
        else
            cr_expect_eq(d, 0, "%s: 2 ranks with the same images differ from one copy by %.3g", name, d);
    }
    st_free(&o), st_free(&t);
    /* refusals: the compiled rank count, and sync_bn without micro-batches */
    Result r = run(sync, "train", "--data", "mnist", "--limit", "16", "--out", in_dir("bad"));
    cr_expect_eq(r.rc, 2, "%s", r.err);
    cr_expect(strstr(r.err, "compiled for 2 ranks (batch 16 in micro-batches of 8), run with 1: use mpirun -np 2"),
              "%s", r.err);
    result_free(&r);
    r = run(igrc_bin(), "compile", model, "-o", in_dir("nomb"), "-D", "train.sync_bn=1");
    cr_expect_neq(r.rc, 0);
    cr_expect(strstr(r.err, "train.sync_bn") && strstr(r.err, "it needs train.micro_batch"), "%s", r.err);
    result_free(&r);
}

Test(distributed, refusals_name_the_problem) {
    const char *mr = mpirun();
    const char *exe = compile("models/mnist_smallcnn_standard.json", "width1=8", "width2=16");
    Result r = run_mpi(mr, MPI_FLAGS, "-np", "3", exe, "train", "--data", "mnist", "--limit", "64", "--out",
                   in_dir("three"));
    cr_expect_neq(r.rc, 0);
    cr_expect(strstr(r.err, "3 ranks cannot share batch 16 in micro-batches of 4"), "%s", r.err);
    result_free(&r);
    const char *plain = in_dir("plain");
    result_ok(run(igrc_bin(), "compile", src_path("models/mnist_mlp_standard.json"), "-o", plain, "--batch", "16"),
              "compile plain");
    r = run_mpi(mr, MPI_FLAGS, "-np", "2", plain, "train", "--data", "mnist", "--limit", "64", "--out", in_dir("p"));
    cr_expect_neq(r.rc, 0);
    cr_expect(strstr(r.err, "compiled without train.micro_batch"), "%s", r.err);
    result_free(&r);
    /* as mpirun would start them (its environment), one process each */
    static const struct {
        const char *env[2][2], *cmd, *arg, *val; /* env: up to two variables */
        int rc;
        const char *says;
    } cases[] = {
        {{{"OMPI_COMM_WORLD_SIZE", "2"}, {"IGRC_MPI_LIB", "/nonexistent/libmpi.so.40"}}, "train", "--limit", "64", 1,
         "runs under mpirun (OMPI_COMM_WORLD_SIZE=2) but /nonexistent/libmpi.so.40 cannot be loaded"},
        {{{"OMPI_COMM_WORLD_SIZE", "2"}, {NULL, NULL}}, "ig", "--images", "0", 2, "ig: runs as one process"},
        {{{"PMI_SIZE", "2"}, {NULL, NULL}}, "train", "--limit", "64", 1, "other than Open MPI"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        for (int e = 0; e < 2; e++)
            if (cases[k].env[e][0]) setenv(cases[k].env[e][0], cases[k].env[e][1], 1);
        r = run(exe, cases[k].cmd, "--data", "mnist", cases[k].arg, cases[k].val, "--out", in_dir("refused"));
        cr_expect_eq(r.rc, cases[k].rc, "case %zu: exit %d: %s", k, r.rc, r.err);
        cr_expect(strstr(r.err, cases[k].says), "case %zu: %s", k, r.err);
        result_free(&r);
        for (int e = 0; e < 2; e++)
            if (cases[k].env[e][0]) unsetenv(cases[k].env[e][0]);
    }
}
