/* The generated executable's host side: checkpoints, and the train / eval /
 * info / export commands end to end on a tiny program whose "kernels" are C
 * functions below: a linear softmax classifier on 2x2 images (data sets:
 * test_datasets.c). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "runtime/app/app.h"
#include "runtime/io/checkpoint.h"
#include "runtime/io/dataset.h"
#include "runtime/program/program.h"
#include "runtime/io/safetensors.h"
#include "tests/common/scratch.h"
#include "tests/runtime/app_files.h"

TestSuite(app, .init = scratch_setup, .fini = scratch_teardown);

/* ---- the tiny program --------------------------------------------------- */

#define B 8
#define D 4
#define K 2

static int g_kill_at = -1, g_nan_at = -1, g_nan_weight_at = -1, g_key_bad;
static float g_lr[64];

static void logits_of(const float *x, const float *W, const float *bias, float *z) {
    for (int r = 0; r < B; r++)
        for (int k = 0; k < K; k++) {
            float s = bias[k];
            for (int d = 0; d < D; d++) s += W[k * D + d] * x[r * D + d];
            z[r * K + k] = s;
        }
}

static void softmax_row(const float *z, float *p) {
    float m = z[0] > z[1] ? z[0] : z[1], e0 = expf(z[0] - m), e1 = expf(z[1] - m);
    p[0] = e0 / (e0 + e1), p[1] = e1 / (e0 + e1);
}

/* bufs: x y lr step progress key W b count | loss logits W' b' count' */
static void k_train(void *const *bufs, int64_t begin, int64_t end) {
    if (begin > 0 || end < 1) return;
    const float *x = bufs[0], *W = bufs[6], *bias = bufs[7], *count = bufs[8];
    const int32_t *y = bufs[1], *key = bufs[5];
    float lr = *(float *)bufs[2], step = *(float *)bufs[3];
    float *loss = bufs[9], *z = bufs[10], *W2 = bufs[11], *b2 = bufs[12], *count2 = bufs[13];
    if ((int)step == g_kill_at) raise(SIGKILL);
    if (key[1] != (int32_t)step) g_key_bad++;
    if (step < 64) g_lr[(int)step] = lr;
    logits_of(x, W, bias, z);
    float gW[K * D] = {0}, gb[K] = {0}, l = 0;
    for (int r = 0; r < B; r++) {
        float p[K];
        softmax_row(z + r * K, p);
        l -= logf(p[y[r]]);
        for (int k = 0; k < K; k++) {
            float g = (p[k] - (k == y[r])) / B;
            gb[k] += g;
            for (int d = 0; d < D; d++) gW[k * D + d] += g * x[r * D + d];
        }
    }
    for (int i = 0; i < K * D; i++) W2[i] = W[i] - lr * gW[i];
    for (int k = 0; k < K; k++) b2[k] = bias[k] - lr * gb[k];
    *loss = (int)step == g_nan_at ? NAN : l / B;
    if ((int)step == g_nan_weight_at) W2[3] = NAN; /* a bad update, the loss still finite */
    *count2 = *count + 1;
}

static void k_predict(void *const *bufs, int64_t begin, int64_t end) {
    if (begin > 0 || end < 1) return;
    logits_of(bufs[0], bufs[1], bufs[2], bufs[3]);
}

/* bufs: x y W b | logits dx; dx of the summed CE */
static void k_grad_ce(void *const *bufs, int64_t begin, int64_t end) {
    if (begin > 0 || end < 1) return;
    const int32_t *y = bufs[1];
    const float *W = bufs[2];
    float *z = bufs[4], *dx = bufs[5];
    logits_of(bufs[0], W, bufs[3], z);
    for (int r = 0; r < B; r++) {
        float p[K];
        softmax_row(z + r * K, p);
        for (int d = 0; d < D; d++) {
            float s = 0;
            for (int k = 0; k < K; k++) s += (p[k] - (k == y[r])) * W[k * D + d];
            dx[r * D + d] = s;
        }
    }
}

/* dx of the summed -ReLU(z_y - z_other + 50) */
static void k_grad_cw(void *const *bufs, int64_t begin, int64_t end) {
    if (begin > 0 || end < 1) return;
    const int32_t *y = bufs[1];
    const float *W = bufs[2];
    float *z = bufs[4], *dx = bufs[5];
    logits_of(bufs[0], W, bufs[3], z);
    for (int r = 0; r < B; r++) {
        int t = y[r], o = 1 - t;
        bool on = z[r * K + t] - z[r * K + o] + 50 > 0;
        for (int d = 0; d < D; d++) dx[r * D + d] = on ? -(W[t * D + d] - W[o * D + d]) : 0;
    }
}

static const PKernelFn kKernels[] = {k_train, k_predict, k_grad_ce, k_grad_cw};

static const char kHead[] =
    "program tiny batch 8\n"
    "param W f32 [2,4] init uniform 0.1 trainable\n"
    "param b f32 [2] init zeros 0 trainable\n"
    "param count f32 [] init zeros 0 state\n"
    "input x f32 [8,1,2,2] batched 0 1 0\n"
    "input y i32 [8] batched 0 0 2\n"
    "setting train.epochs num 3\n"
    "setting train.lr num 0.8\n"
    "setting train.lr_milestones str \"2\"\n"
    "setting train.lr_gamma num 0.5\n"
    "setting train.seed num 3\n"
    "setting eval.eps num 0.05\n"
    "setting eval.pgd_steps num 4\n"
    "setting eval.pgd_alpha num 0.02\n"
    "func train_step arena 0\n"
    "  in x f32 [8,1,2,2]\n  in y i32 [8]\n  in lr f32 []\n  in step f32 []\n"
    "  in progress f32 []\n  in key i32 [2]\n"
    "  out loss f32 [] o0\n  out logits f32 [8,2] o1\n  out W f32 [2,4] o2\n"
    "  out b f32 [2] o3\n  out count f32 [] o4\n"
    "  kernel 0 1 1 i0 i1 i2 i3 i4 i5 p0 p1 p2 o0 o1 o2 o3 o4 # train\n"
    "end\n"
    "func predict arena 0\n"
    "  in x f32 [8,1,2,2]\n  out logits f32 [8,2] o0\n"
    "  kernel 1 1 1 i0 p0 p1 o0 # predict\n"
    "end\n"
    "func grad_ce arena 0\n"
    "  in x f32 [8,1,2,2]\n  in y i32 [8]\n  out logits f32 [8,2] o0\n"
    "  out dx f32 [8,1,2,2] o1\n"
    "  kernel 2 1 1 i0 i1 p0 p1 o0 o1 # grad_ce\n"
    "end\n";
static const char kCw[] =
    "func grad_cw arena 0\n"
    "  in x f32 [8,1,2,2]\n  in y i32 [8]\n  out logits f32 [8,2] o0\n"
    "  out dx f32 [8,1,2,2] o1\n"
    "  kernel 3 1 1 i0 i1 p0 p1 o0 o1 # grad_cw\n"
    "end\n";

static char g_text[8192];

static const char *program_text(bool with_cw) {
    snprintf(g_text, sizeof g_text, "%s%s", kHead, with_cw ? kCw : "");
    return g_text;
}

/* Runs the app with stdout and stderr in the scratch file "log". */
static int run_app(bool with_cw, const char *const *args) {
    char *argv[40];
    int argc = 0;
    argv[argc++] = "tiny";
    for (; args[argc - 1]; argc++) argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    const char *text = program_text(with_cw);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fd = open(in_dir("log"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    dup2(fd, 1), dup2(fd, 2);
    close(fd);
    int rc = igrc_app_main(argc, argv, text, (int64_t)strlen(text), kKernels, 4);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1), dup2(se, 2);
    close(so), close(se);
    return rc;
}

static char *app_log(void) { return read_text(in_dir("log")); }

#define RUN(cw, ...) run_app(cw, (const char *const[]){__VA_ARGS__, NULL})

static Program *tiny(void) {
    char err[1024];
    const char *t = program_text(true);
    Program *p = program_parse(t, 4, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    return p;
}

/* ---- checkpoints -------------------------------------------------------- */

Test(app, checkpoint_round_trip) {
    Program *p = tiny();
    char err[2048];
    Exec *a = exec_new(p, &(BackendCode){kKernels, 4, NULL, 0}, "cpu", 1, 1, err, sizeof err);
    Exec *b = exec_new(p, &(BackendCode){kKernels, 4, NULL, 0}, "cpu", 1, 2, err, sizeof err);
    cr_assert(a && b, "%s", err);
    *(float *)exec_param(a, 2) = 42;
    CkptInfo in = {.epoch = 3, .batch = 4, .step = 55, .seed = 4000000000u,
                   .batches_per_epoch = 13, .train_images = 100};
    snprintf(in.data, sizeof in.data, "mnist");
    const char *path = in_dir("c.safetensors");
    cr_assert(ckpt_save(path, a, &in, err, sizeof err), "%s", err);
    cr_assert_neq(memcmp(exec_param(a, 0), exec_param(b, 0), 32), 0);
    CkptInfo out;
    cr_assert(ckpt_load(path, b, WEIGHTS_ALL, &out, NULL, err, sizeof err), "%s", err);
    for (int i = 0; i < p->nparams; i++)
        cr_assert_eq(memcmp(exec_param(a, i), exec_param(b, i), ptensor_bytes(&p->params[i].t)),
                     0);
    cr_assert(out.has_position && out.epoch == 3 && out.batch == 4 && out.step == 55 &&
              out.seed == 4000000000u && out.batches_per_epoch == 13 && out.train_images == 100);
    cr_assert_str_eq(out.program, "tiny");
    cr_assert_str_eq(out.data, "mnist");
    exec_free(a);
    exec_free(b);
    program_free(p);
}

/* Writes a safetensors file holding W, b, count with one of them altered. */
static void write_variant(const char *path, int which, StDtype dt, int rank, const char *meta_v) {
    float w[8] = {0}, bb[2] = {0}, c = 0;
    double wd[8] = {0};
    StTensor ts[3] = {
        {.name = "W", .dtype = ST_F32, .rank = 2, .shape = {2, 4}, .data = w, .nbytes = 32},
        {.name = "b", .dtype = ST_F32, .rank = 1, .shape = {2}, .data = bb, .nbytes = 8},
        {.name = "count", .dtype = ST_F32, .rank = 0, .data = &c, .nbytes = 4},
    };
    int n = 3;
    if (which == 1) ts[0].dtype = dt, ts[0].data = wd, ts[0].nbytes = 8 * st_dtype_size(dt);
    if (which == 2) ts[0].rank = rank, ts[0].shape[0] = 8, ts[0].shape[1] = 1;
    if (which == 3) ts[1] = ts[2], n = 2; /* b missing */
    StMeta meta[4] = {{"epoch", (char *)meta_v}, {"batch", "0"}, {"step", "1"}, {"seed", "1"}};
    char err[1024];
    cr_assert(st_write(path, ts, n, meta, 4, err, sizeof err), "%s", err);
}

Test(app, checkpoint_errors) {
    Program *p = tiny();
    char err[2048];
    Exec *r = exec_new(p, &(BackendCode){kKernels, 4, NULL, 0}, "cpu", 1, 1, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    float before[8];
    memcpy(before, exec_param(r, 0), sizeof before);
    const char *path = in_dir("bad.safetensors");
    struct {
        int which;
        StDtype dt;
        int rank;
        const char *meta, *want;
    } cases[] = {
        {1, ST_I32, 2, "0", "'W' has dtype I32, the program expects F32 (a float type)"},
        {2, ST_F32, 2, "0", "'W' has shape [8,1], the program expects [2,4]"},
        {2, ST_F32, 1, "0", "'W' has shape [8], the program expects [2,4]"},
        {3, ST_F32, 2, "0", "'b' is missing"},
        {0, ST_F32, 2, "x1", "metadata 'epoch'"},
        {0, ST_F32, 2, "-1", "metadata 'epoch'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_variant(path, cases[i].which, cases[i].dt, cases[i].rank, cases[i].meta);
        cr_assert_not(ckpt_load(path, r, WEIGHTS_ALL, NULL, NULL, err, sizeof err), "case %zu", i);
        cr_assert(strstr(err, path) && strstr(err, cases[i].want), "case %zu: %s", i, err);
        cr_assert_eq(memcmp(before, exec_param(r, 0), sizeof before), 0, "unchanged");
    }
    write_variant(path, 0, ST_F32, 2, "2");
    CkptInfo info;
    cr_assert(ckpt_load(path, r, WEIGHTS_ALL, &info, NULL, err, sizeof err), "%s", err);
    cr_assert(info.has_position && info.epoch == 2);

    /* not a checkpoint at all, a torn one, a missing one */
    write_bytes(path, "garbage!", 8);
    cr_assert_not(ckpt_load(path, r, WEIGHTS_ALL, NULL, NULL, err, sizeof err));
    cr_assert(strstr(err, path), "%s", err);
    CkptInfo ci = {0};
    cr_assert(ckpt_save(path, r, &ci, err, sizeof err), "%s", err);
    char *full = read_text(path);
    struct stat sb;
    stat(path, &sb);
    FILE *f = fopen(path, "wb");
    fwrite(full, 1, (size_t)sb.st_size - 5, f);
    fclose(f);
    free(full);
    cr_assert_not(ckpt_load(path, r, WEIGHTS_ALL, NULL, NULL, err, sizeof err));
    cr_assert(strstr(err, path), "%s", err);
    cr_assert_not(ckpt_load(in_dir("none.safetensors"), r, WEIGHTS_ALL, NULL, NULL, err,
                            sizeof err));
    cr_assert(strstr(err, "none.safetensors"), "%s", err);
    exec_free(r);
    program_free(p);
}

/* ---- train / eval / info end to end ------------------------------------ */

static StFile load_ckpt(const char *path) {
    StFile f;
    char err[1024];
    cr_assert(st_read(path, &f, err, sizeof err), "%s", err);
    return f;
}

static double json_num(const char *path, const char *key) {
    char *s = read_text(path);
    cJSON *j = cJSON_Parse(s);
    free(s);
    cr_assert_not_null(j, "%s is not JSON", path);
    cJSON *v = cJSON_GetObjectItem(j, key);
    cr_assert(cJSON_IsNumber(v), "%s: no number %s", path, key);
    double d = v->valuedouble;
    cJSON_Delete(j);
    return d;
}

static const char *meta(const StFile *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (!strcmp(f->meta[i].key, key)) return f->meta[i].value;
    return "";
}

Test(app, train_resume_eval, .timeout = 300) {
    const char *data = make_idx_dir("data");
    char runA[600], runB[600], ckA[700], ckB[700], lastA[700];
    snprintf(runA, sizeof runA, "%s", in_dir("runA"));
    snprintf(runB, sizeof runB, "%s", in_dir("runB"));
    snprintf(ckA, sizeof ckA, "%s/checkpoint.safetensors", runA);
    snprintf(ckB, sizeof ckB, "%s/checkpoint.safetensors", runB);
    snprintf(lastA, sizeof lastA, "%s/last.json", runA);

    /* one step: the loss of nearly untrained weights */
    cr_assert_eq(RUN(true, "train", "--data", data, "--epochs", "1", "--batches", "1", "--out",
                     runA, "--threads", "1"), 0);
    double loss0 = json_num(lastA, "loss");
    cr_assert_gt(loss0, 0.5);

    /* the uninterrupted run: 100 images, 13 batches per epoch, 3 epochs */
    cr_assert_eq(RUN(true, "train", "--data", data, "--out", runA, "--threads", "1",
                     "--log-every", "5"), 0);
    char *log = app_log();
    cr_assert(strstr(log, "epoch 3/3  step 13/13  loss "), "%s", log);
    cr_assert(strstr(log, "img/s  ETA "), "%s", log);
    free(log);
    cr_assert_eq(g_key_bad, 0);
    cr_assert_float_eq(g_lr[1], 0.8f, 1e-7);
    cr_assert_float_eq(g_lr[26], 0.8f, 1e-7);
    cr_assert_float_eq(g_lr[27], 0.4f, 1e-7); /* milestone 2: epoch index 2 */
    cr_assert_lt(json_num(lastA, "loss"), loss0 * 0.7, "the loss falls");
    cr_assert_gt(json_num(lastA, "train_accuracy"), 90);
    cr_assert_eq(json_num(lastA, "step"), 39);
    StFile a = load_ckpt(ckA);
    cr_assert_float_eq(*(float *)st_find(&a, "count")->data, 39.0f, 0, "state copied back");
    cr_assert_str_eq(meta(&a, "epoch"), "3");
    cr_assert_str_eq(meta(&a, "step"), "39");

    /* killed at step 30 after a checkpoint at step 28 (epoch 3, batch 2) */
    pid_t pid = fork();
    if (pid == 0) {
        g_kill_at = 30;
        RUN(true, "train", "--data", data, "--out", runB, "--threads", "1",
            "--checkpoint-every", "7");
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    StFile mid = load_ckpt(ckB);
    cr_assert_str_eq(meta(&mid, "step"), "28");
    cr_assert_str_eq(meta(&mid, "epoch"), "2");
    cr_assert_str_eq(meta(&mid, "batch"), "2");
    st_free(&mid);
    cr_assert_eq(RUN(true, "train", "--data", data, "--out", runB, "--threads", "1", "--resume",
                     ckB), 0);
    StFile b = load_ckpt(ckB);
    for (int i = 0; i < a.n; i++) {
        const StTensor *t = st_find(&b, a.tensors[i].name);
        cr_assert_not_null(t);
        cr_assert_eq(memcmp(t->data, a.tensors[i].data, t->nbytes), 0,
                     "%s differs after resume", t->name);
    }
    st_free(&b);

    /* eval: every attack, n = 37 (not a multiple of the batch) */
    const char *json = in_dir("eval.json");
    cr_assert_eq(RUN(true, "eval", "--out", runA, "--data", data, "--json", json), 0);
    log = app_log();
    cr_assert(strstr(log, "attack") && strstr(log, "natural") && strstr(log, "cw"), "%s", log);
    char *js = read_text(json);
    cJSON *j = cJSON_Parse(js);
    cr_assert_not_null(j);
    cr_assert_eq(cJSON_GetObjectItem(j, "n")->valuedouble, NTEST);
    cJSON *res = cJSON_GetObjectItem(j, "results");
    cr_assert_eq(cJSON_GetArraySize(res), 4);
    double acc[4];
    for (int i = 0; i < 4; i++) {
        cJSON *o = cJSON_GetArrayItem(res, i);
        acc[i] = cJSON_GetObjectItem(o, "accuracy")->valuedouble;
        double correct = cJSON_GetObjectItem(o, "correct")->valuedouble;
        cr_assert_float_eq(acc[i], 100 * correct / NTEST, 1e-9);
        char line[64];
        snprintf(line, sizeof line, "%.2f%%", acc[i]);
        cr_assert(strstr(log, line), "table lacks %s:\n%s", line, log);
    }
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(res, 2), "attack")->valuestring, "pgd");
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(res, 2), "steps")->valuedouble, 4);

    /* natural accuracy recomputed here from the checkpoint's weights */
    Dataset d;
    char err[1024];
    cr_assert(dataset_load(data, NULL, false, 0, &d, err, sizeof err), "%s", err);
    const float *W = st_find(&a, "W")->data, *bias = st_find(&a, "b")->data;
    int correct = 0;
    for (int i = 0; i < d.n; i++) {
        float z[2];
        for (int k = 0; k < 2; k++) {
            z[k] = bias[k];
            for (int q = 0; q < 4; q++) z[k] += W[k * 4 + q] * d.x[i * 4 + q];
        }
        correct += (z[1] > z[0]) == d.y[i];
    }
    cr_assert_float_eq(acc[0], 100.0 * correct / NTEST, 1e-9);
    cr_assert_gt(acc[0], 90);
    cr_assert_leq(acc[1], acc[0]);
    cr_assert_leq(acc[2], acc[0]);
    dataset_free(&d);
    free(js);
    free(log);
    cJSON_Delete(j);
    st_free(&a);

    /* a larger eps breaks more images */
    cr_assert_eq(RUN(true, "eval", "--out", runA, "--data", data, "--attacks", "fgsm", "--eps",
                     "0.5", "--n", "20"), 0);
    char evj[700];
    snprintf(evj, sizeof evj, "%s/eval.json", runA);
    cr_assert_eq(json_num(evj, "n"), 20);
    js = read_text(evj);
    j = cJSON_Parse(js);
    cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "results"), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(o, "attack")->valuestring, "fgsm");
    cr_assert_lt(cJSON_GetObjectItem(o, "accuracy")->valuedouble, 50);
    cJSON_Delete(j);
    free(js);
}

Test(app, nan_keeps_last_checkpoint) {
    const char *data = make_idx_dir("data");
    char run[600], ck[700];
    snprintf(run, sizeof run, "%s", in_dir("run"));
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", run);
    g_nan_at = 12;
    cr_assert_eq(RUN(true, "train", "--data", data, "--out", run, "--checkpoint-every", "5"), 1);
    char *log = app_log();
    cr_assert(strstr(log, "loss is nan at epoch 1 step 12/13"), "%s", log);
    free(log);
    StFile f = load_ckpt(ck);
    cr_assert_str_eq(meta(&f, "step"), "10");
    cr_assert_float_eq(*(float *)st_find(&f, "count")->data, 10.0f, 0);
    st_free(&f);
}

/* A NaN in the weights with a finite loss (a non-finite update): the guard
 * before the next checkpoint stops the run, names the tensor, and the last
 * good checkpoint stays; NaN weights given to --init-from are refused. */
Test(app, nonfinite_weights_stop_training_and_name_the_tensor) {
    const char *data = make_idx_dir("data");
    char run[600], ck[700];
    snprintf(run, sizeof run, "%s", in_dir("run"));
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", run);
    g_nan_weight_at = 10; /* step 10's update, saved at step 10 */
    cr_assert_eq(RUN(true, "train", "--data", data, "--out", run, "--checkpoint-every", "5"), 1);
    char *log = app_log();
    cr_assert(strstr(log, "parameter 'W' holds nan (element 3) before the checkpoint"), "%s", log);
    free(log);
    /* a NaN made at step 7 turns step 8's loss NaN: the tensor is named too */
    g_nan_weight_at = 7;
    cr_assert_eq(RUN(true, "train", "--data", data, "--out", in_dir("run7")), 1);
    g_nan_weight_at = -1;
    log = app_log();
    cr_assert(strstr(log, "loss is nan at epoch 1 step 8/13") &&
              strstr(log, "parameter 'W' holds nan (element 0) after this step"), "%s", log);
    free(log);
    StFile f = load_ckpt(ck);
    cr_assert_str_eq(meta(&f, "step"), "5");
    for (int i = 0; i < 8; i++) cr_assert(isfinite(((float *)st_find(&f, "W")->data)[i]));
    st_free(&f);
    float w[8] = {0, 0, 0, 0, 0, INFINITY, 0, 0}, bb[2] = {0, 0}, c = 0;
    StTensor ts[3] = {
        {.name = "W", .dtype = ST_F32, .rank = 2, .shape = {2, 4}, .data = w, .nbytes = 32},
        {.name = "b", .dtype = ST_F32, .rank = 1, .shape = {2}, .data = bb, .nbytes = 8},
        {.name = "count", .dtype = ST_F32, .rank = 0, .data = &c, .nbytes = 4},
    };
    char err[1024], *bad = (char *)in_dir("inf.safetensors");
    cr_assert(st_write(bad, ts, 3, NULL, 0, err, sizeof err), "%s", err);
    cr_assert_eq(RUN(true, "train", "--data", data, "--out", in_dir("run2"), "--init-from", bad), 1);
    log = app_log();
    cr_assert(strstr(log, "parameter 'W' holds inf (element 5) in --init-from's weights"), "%s", log);
    free(log);
}

/* A checkpoint temporary left by a writer killed mid-write (kill -9) is
 * removed when training starts in that directory, and said so; a live
 * writer's (the parent process's pid) is kept. */
Test(app, stale_checkpoint_temporaries_removed_at_train_start) {
    const char *data = make_idx_dir("data");
    char run[600], dead[700], live[700];
    snprintf(run, sizeof run, "%s", in_dir("run"));
    mkdir(run, 0777);
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    snprintf(dead, sizeof dead, "%s/checkpoint.safetensors.tmp.%ld", run, (long)child);
    snprintf(live, sizeof live, "%s/checkpoint.safetensors.tmp.%ld", run, (long)getppid());
    write_bytes(dead, (const uint8_t *)"partial", 7);
    write_bytes(live, (const uint8_t *)"partial", 7);
    cr_assert_eq(RUN(true, "train", "--data", data, "--out", run, "--batches", "1"), 0);
    char *log = app_log();
    cr_assert(strstr(log, "note: removed") && strstr(log, dead), "%s", log);
    free(log);
    cr_expect_neq(access(dead, F_OK), 0);
    cr_expect_eq(access(live, F_OK), 0);
}

Test(app, usage_and_data_errors) {
    const char *data = make_idx_dir("data");
    char p0[600];
    cr_assert_eq(RUN(true, "train", "--bogus"), 2);
    char *log = app_log();
    cr_assert(strstr(log, "unknown option '--bogus'"), "%s", log);
    free(log);
    cr_assert_eq(RUN(true, "train", "--epochs"), 2);
    log = app_log();
    cr_assert(strstr(log, "--epochs needs a value"), "%s", log);
    free(log);
    cr_assert_eq(RUN(true, "train", "--lr", "fast"), 2);
    cr_assert_eq(RUN(true, "eval", "--attacks", "natural,deepfool"), 2);
    cr_assert_eq(RUN(true, "frobnicate"), 2);
    cr_assert_eq(RUN(true, "train", "--help"), 0);
    log = app_log();
    cr_assert(strstr(log, "--checkpoint-every N") && strstr(log, "--resume CKPT"), "%s", log);
    free(log);
    /* bad input (data) is exit 2, as in igrc */
    cr_assert_eq(RUN(true, "train", "--data", in_dir("missing")), 2);
    log = app_log();
    cr_assert(strstr(log, "missing"), "%s", log);
    free(log);
    cr_assert_eq(RUN(true, "train"), 2); /* no data set named anywhere */
    /* a label the program has no class for: named with its split and image */
    char data_ok[512];
    snprintf(data_ok, sizeof data_ok, "%s", data); /* make_idx_dir returns one static buffer */
    const char *badl = make_idx_dir("badlabels");
    uint8_t lb[NTEST];
    uint8_t px[4 * NTEST];
    make_pixels(NTEST, 2, px, lb);
    lb[3] = 7; /* the tiny program has 2 classes */
    snprintf(p0, sizeof p0, "%s/t10k-labels-idx1-ubyte", badl);
    write_idx_labels(p0, NTEST, lb);
    cr_assert_eq(RUN(true, "eval", "--data", badl, "--attacks", "natural"), 2);
    data = data_ok;
    log = app_log();
    cr_assert(strstr(log, "test labels give image 3 the label 7") && strstr(log, "2 classes"),
              "%s", log);
    free(log);
    /* CIFAR-10 images for a program that expects 1x2x2 */
    char cifar[512];
    snprintf(cifar, sizeof cifar, "%s", in_dir("cifar"));
    mkdir(cifar, 0777);
    char p[600];
    snprintf(p, sizeof p, "%s/data_batch_1.bin", cifar);
    write_cifar(p, 2, 0);
    cr_assert_eq(RUN(true, "train", "--data", cifar), 2);
    log = app_log();
    cr_assert(strstr(log, cifar) && strstr(log, "[3,32,32]") && strstr(log, "[1,2,2]"), "%s",
              log);
    free(log);
    /* eval without a checkpoint, and cw on a program without grad_cw */
    cr_assert_eq(RUN(true, "eval", "--data", data, "--out", in_dir("norun")), 1);
    log = app_log();
    cr_assert(strstr(log, "norun/checkpoint.safetensors") && strstr(log, "train first"), "%s", log);
    free(log);
    cr_assert_eq(RUN(false, "eval", "--data", data), 1);
    log = app_log();
    cr_assert(strstr(log, "no grad_cw entry point"), "%s", log);
    free(log);
    /* resume from a file that is not a training checkpoint */
    const char *bad = in_dir("bad.safetensors");
    write_bytes(bad, "\x02\0\0\0\0\0\0\0{}", 10);
    cr_assert_eq(RUN(true, "train", "--data", data, "--out", in_dir("r"), "--resume", bad), 1);
    log = app_log();
    cr_assert(strstr(log, "bad.safetensors"), "%s", log);
    free(log);
}

Test(app, info) {
    cr_assert_eq(RUN(true, "info"), 0);
    char *log = app_log();
    cr_assert(strstr(log, "program  tiny"), "%s", log);
    cr_assert(strstr(log, "2 trainable (10 elements), 1 state (1 elements), 44 bytes"), "%s", log);
    cr_assert(strstr(log, "grad_cw") && strstr(log, "kernels  4") && strstr(log, "runner memory"),
              "%s", log);
    cr_assert(strstr(log, "x                        f32[8,1,2,2]"), "%s", log);
    free(log);
}

/* ---- weights alone: --init-from, export, data from elsewhere ----------- */

/* The tiny program's weights as a PyTorch state_dict would hold them: no
 * metadata, W in F16 (0x3400 = 0.25), b = {1, -1}, count = 100. */
static void write_weights_only(const char *path) {
    uint16_t w[8];
    for (int i = 0; i < 8; i++) w[i] = 0x3400;
    float bb[2] = {1, -1}, c = 100;
    StTensor ts[3] = {
        {.name = "W", .dtype = ST_F16, .rank = 2, .shape = {2, 4}, .data = w, .nbytes = 16},
        {.name = "b", .dtype = ST_F32, .rank = 1, .shape = {2}, .data = bb, .nbytes = 8},
        {.name = "count", .dtype = ST_F32, .rank = 0, .data = &c, .nbytes = 4},
    };
    char err[1024];
    cr_assert(st_write(path, ts, 3, NULL, 0, err, sizeof err), "%s", err);
}

Test(app, init_from_and_export) {
    const char *data = make_idx_dir("data");
    char w[600], run[600], ck[700], exported[700];
    snprintf(w, sizeof w, "%s", in_dir("w.safetensors"));
    snprintf(run, sizeof run, "%s", in_dir("run"));
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", run);
    snprintf(exported, sizeof exported, "%s/weights.safetensors", run);
    write_weights_only(w);

    /* lr 0 keeps the weights: the checkpoint shows exactly what was loaded */
    cr_assert_eq(RUN(true, "train", "--data", data, "--epochs", "1", "--batches", "2", "--lr", "0",
                     "--out", run, "--init-from", w), 0);
    char *log = app_log();
    cr_assert(strstr(log, "starting from the weights in") && strstr(log, "step 0"), "%s", log);
    free(log);
    StFile f = load_ckpt(ck);
    for (int i = 0; i < 8; i++) cr_assert_eq(((float *)st_find(&f, "W")->data)[i], 0.25f);
    cr_assert_eq(((float *)st_find(&f, "b")->data)[1], -1.0f);
    cr_assert_eq(*(float *)st_find(&f, "count")->data, 102.0f, "state loaded, then 2 steps");
    cr_assert_str_eq(meta(&f, "step"), "2");
    st_free(&f);

    cr_assert_eq(RUN(true, "export", "--out", run), 0);
    log = app_log();
    cr_assert(strstr(log, "wrote ") && strstr(log, "weights.safetensors"), "%s", log);
    free(log);
    f = load_ckpt(exported);
    cr_assert_eq(f.n, 3);
    cr_assert_eq(st_find(&f, "W")->dtype, ST_F32);
    cr_assert_eq(((float *)st_find(&f, "W")->data)[7], 0.25f);
    cr_assert_eq(*(float *)st_find(&f, "count")->data, 102.0f);
    cr_assert_str_eq(meta(&f, "program"), "tiny");
    cr_assert_str_eq(meta(&f, "format"), "pt");
    cr_assert_str_eq(meta(&f, "step"), "2");
    cr_assert_str_eq(meta(&f, "epoch"), "", "no training position: not for --resume");
    st_free(&f);

    /* the exported weights evaluate like the checkpoint */
    cr_assert_eq(RUN(true, "eval", "--ckpt", exported, "--out", run, "--data", data, "--attacks",
                     "natural"), 0);
    cr_assert_eq(RUN(true, "export", "--out", run, "--to", ck), 2);
    cr_assert_eq(RUN(true, "export", "--out", in_dir("norun")), 1);
    log = app_log();
    cr_assert(strstr(log, "norun/checkpoint.safetensors") && strstr(log, "train first"), "%s", log);
    free(log);
}

Test(app, init_from_refusals) {
    const char *data = make_idx_dir("data");
    char w[600];
    snprintf(w, sizeof w, "%s", in_dir("w.safetensors"));
    write_weights_only(w);
    cr_assert_eq(RUN(true, "train", "--data", data, "--init-from", w, "--resume", w), 2);
    char *log = app_log();
    cr_assert(strstr(log, "--resume") && strstr(log, "--init-from"), "%s", log);
    free(log);
    /* weights alone cannot be resumed from: no position */
    cr_assert_eq(RUN(true, "train", "--data", data, "--out", in_dir("r"), "--resume", w), 1);
    log = app_log();
    cr_assert(strstr(log, "has no training position"), "%s", log);
    free(log);
    /* a weight missing: the file and the tensor named */
    float bb[2] = {0};
    StTensor t = {.name = "b", .dtype = ST_F32, .rank = 1, .shape = {2}, .data = bb, .nbytes = 8};
    char err[1024];
    cr_assert(st_write(w, &t, 1, NULL, 0, err, sizeof err), "%s", err);
    cr_assert_eq(RUN(true, "train", "--data", data, "--out", in_dir("r"), "--init-from", w), 1);
    log = app_log();
    cr_assert(strstr(log, "w.safetensors: tensor 'W' is missing"), "%s", log);
    free(log);
}

/* `--data mnist` is found through the repository's data/ from any working
 * directory, and a miss lists every place searched. */
Test(app, named_data_from_another_directory) {
    mkdir(in_dir("repo"), 0777);
    mkdir(in_dir("repo/data"), 0777);
    make_idx_dir("repo/data/mnist");
    mkdir(in_dir("elsewhere"), 0777);
    char run[600];
    snprintf(run, sizeof run, "%s", in_dir("run"));
    setenv("IGRC_SOURCE_DIR", in_dir("repo"), 1);
    unsetenv("IGRC_DATA");
    cr_assert_eq(chdir(in_dir("elsewhere")), 0);
    cr_assert_eq(RUN(true, "train", "--data", "mnist", "--epochs", "1", "--batches", "1", "--out",
                     run), 0);
    char *log = app_log();
    cr_assert(strstr(log, "/repo/data/mnist: 100 images"), "%s", log);
    free(log);

    setenv("IGRC_SOURCE_DIR", in_dir("norepo"), 1);
    setenv("IGRC_DATA", in_dir("env"), 1);
    cr_assert_eq(RUN(true, "train", "--data", "mnist", "--out", run), 2);
    log = app_log();
    char want[3][700];
    snprintf(want[0], sizeof want[0], "searched: %s (no train-images", in_dir("env/mnist"));
    snprintf(want[1], sizeof want[1], "; ./data/mnist (no train-images");
    snprintf(want[2], sizeof want[2], "; %s (no train-images", in_dir("norepo/data/mnist"));
    for (int i = 0; i < 3; i++) cr_assert(strstr(log, want[i]), "lacks '%s':\n%s", want[i], log);
    free(log);
}
