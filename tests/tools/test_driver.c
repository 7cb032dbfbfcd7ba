/* The igrc driver as a user runs it: exit statuses, the lines scripts
 * read (`parameters: N`), dumps, and exec on safetensors files, with the
 * errors of bad inputs, bad parameter files and bad entry points. */
#define _POSIX_C_SOURCE 200809L /* strdup, fileno */

#include <criterion/criterion.h>
#include <math.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/common/scratch.h"
#include "tests/common/spawn.h"
#include "runtime/io/safetensors.h"

/* ---- a scratch directory per test (tests/common/scratch.c) ---- */

TestSuite(driver, .init = scratch_setup, .fini = scratch_teardown, .timeout = 300);


/* ---- running igrc ---- */

#define igrc(...) spawn_v(igrc_bin(), (const char *const[]){__VA_ARGS__, NULL})
#define model src_path

#define done result_free

/* Exit status rc, and each NULL-terminated word in stderr. */
static void expect_fail(Result r, int rc, ...) {
    cr_expect_eq(r.rc, rc, "exit %d, expected %d\nstderr: %s", r.rc, rc, r.err);
    va_list ap;
    va_start(ap, rc);
    for (const char *w; (w = va_arg(ap, const char *));)
        cr_expect(strstr(r.err, w), "stderr lacks \"%s\": %s", w, r.err);
    va_end(ap);
    done(&r);
}
#define expect_error(r, rc, ...) expect_fail(r, rc, __VA_ARGS__, (const char *)NULL)

static void expect_ok(Result r) {
    cr_expect_eq(r.rc, 0, "exit %d\nstderr: %s", r.rc, r.err);
}

/* A whole line of text equal to line. */
static bool has_line(const char *text, const char *line) {
    size_t k = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && (p[k] == '\n' || p[k] == '\0')) return true;
    return false;
}

/* ---- safetensors helpers ---- */

/* Writes one f32 tensor of the given shape filled from a fixed pattern. */
static void write_tensor(const char *path, const char *name, int rank, const int64_t *shape,
                         unsigned salt) {
    StTensor t = {.name = (char *)name, .dtype = ST_F32, .rank = rank};
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= (size_t)(t.shape[i] = shape[i]);
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (float)((i * 7919u + salt * 104729u) % 1000u) / 1000.0f;
    t.data = v;
    t.nbytes = n * sizeof *v;
    char err[512];
    bool ok = st_write(path, &t, 1, NULL, 0, err, sizeof err);
    free(v);
    cr_assert(ok, "%s", err);
}

static const char *write_x(const char *name, int64_t batch) {
    const char *p = in_dir(name);
    write_tensor(p, "x", 4, (const int64_t[]){batch, 1, 28, 28}, 1);
    return p;
}

/* Reads the logits of an exec output; checks its shape [N,10]. */
static void read_logits(const char *path, int64_t N, StFile *f) {
    char err[512];
    cr_assert(st_read(path, f, err, sizeof err), "%s", err);
    const StTensor *t = st_find(f, "logits");
    cr_assert(t, "%s has no tensor logits", path);
    cr_expect_eq(t->rank, 2);
    cr_expect_eq(t->shape[0], N);
    cr_expect_eq(t->shape[1], 10);
}

/* ---- help and usage ---- */

Test(driver, help) {
    Result r = igrc("--help");
    expect_ok(r);
    cr_expect(strstr(r.out, "usage: igrc"), "%s", r.out);
    cr_expect(strstr(r.out, "check") && strstr(r.out, "dump") && strstr(r.out, "exec"));
    done(&r);
    static const char *const cmds[] = {"check", "dump", "exec", NULL};
    for (const char *const *c = cmds; *c; c++) {
        char want[64];
        snprintf(want, sizeof want, "usage: igrc %s", *c);
        r = igrc(*c, "--help");
        expect_ok(r);
        cr_expect(strstr(r.out, want), "igrc %s --help: %s", *c, r.out);
        done(&r);
        r = igrc(*c, "-h");
        expect_ok(r);
        done(&r);
    }
}

Test(driver, usage_errors) {
    Result r = spawn_v(igrc_bin(), (const char *const[]){NULL});
    cr_expect_eq(r.rc, 2);
    cr_expect(strstr(r.err, "usage: igrc"), "%s", r.err);
    done(&r);
    expect_error(igrc("frobnicate"), 2, "unknown command 'frobnicate'");
    expect_error(igrc("check"), 2, "no graph file");
    expect_error(igrc("check", "--bogus", model("models/nets/smallcnn.json")), 2, "--bogus");
    expect_error(igrc("check", model("models/nets/smallcnn.json"), "--batch", "0"), 2, "--batch");
    expect_error(igrc("check", model("models/nets/smallcnn.json"), "-D"), 2, "-D");
    expect_error(igrc("dump", model("models/nets/smallcnn.json"), "--format", "svg"), 2, "svg");
    expect_error(igrc("exec", model("models/nets/smallcnn.json")), 2, "--fn");
    expect_error(igrc("exec", model("models/nets/smallcnn.json"), "--fn", "predict"), 2,
                 "--inputs");
}

/* ---- check ---- */

Test(driver, check_prints_parameter_counts) {
    Result r = igrc("check", model("models/nets/smallcnn.json"));
    expect_ok(r);
    cr_expect(has_line(r.out, "parameters: 312202"), "%s", r.out);
    cr_expect(strstr(r.out, "f32[128,10]"), "%s", r.out);
    done(&r);
    r = igrc("check", model("models/nets/resnet18.json"));
    expect_ok(r);
    cr_expect(has_line(r.out, "parameters: 11173962"), "%s", r.out);
    done(&r);
    r = igrc("check", model("models/nets/mlp.json"));
    expect_ok(r);
    cr_expect(has_line(r.out, "parameters: 269322"), "%s", r.out);
    done(&r);
    r = igrc("check", model("models/mnist_smallcnn.json"));
    expect_ok(r);
    cr_expect(has_line(r.out, "parameters: 312202"), "%s", r.out);
    done(&r);
}

/* Output that cannot be written is a failure: igrc check and dump into a
 * full device exit 1 and say so (they exited 0 before). */
Test(driver, stdout_write_errors_fail) {
    static const char *const cmds[] = {"check", "dump"};
    for (int i = 0; i < 2; i++) {
        char sh[2048];
        snprintf(sh, sizeof sh, "'%s' %s '%s' > /dev/full", igrc_bin(), cmds[i],
                 model("models/mnist_mlp_standard.json"));
        Result r = spawn_v("/bin/sh", (const char *const[]){"-c", sh, NULL});
        cr_expect_eq(r.rc, 1, "%s > /dev/full: exit %d\n%s", cmds[i], r.rc, r.err);
        cr_expect(strstr(r.err, "writing to standard output failed"), "%s", r.err);
        done(&r);
    }
}

Test(driver, check_with_defines_and_batch) {
    Result r = igrc("check", model("models/nets/smallcnn.json"), "-D", "act=softplus", "--batch", "4");
    expect_ok(r);
    cr_expect(strstr(r.out, "softplus"), "%s", r.out);
    cr_expect(strstr(r.out, "f32[4,1,28,28]"), "%s", r.out);
    cr_expect(has_line(r.out, "batch: 4"), "%s", r.out);
    done(&r);
    r = igrc("check", model("models/nets/smallcnn.json"), "-Dact=tanh");
    expect_ok(r);
    cr_expect(strstr(r.out, "tanh"), "%s", r.out);
    done(&r);
    expect_error(igrc("check", model("models/nets/smallcnn.json"), "-D", "nosuch=1"), 2,
                 "nosuch", "smallcnn.json");
    expect_error(igrc("check", model("models/nets/smallcnn.json"), "-D", "beta"), 2, "-D beta",
                 "key=value");
}

Test(driver, check_bad_files) {
    const char *missing = in_dir("nosuch.json");
    expect_error(igrc("check", missing), 2, "nosuch.json");
    const char *bad = in_dir("bad.json");
    FILE *f = fopen(bad, "w");
    fputs("{\n  \"igrc\": 1,\n  \"batch\": 4,,\n}\n", f);
    fclose(f);
    expect_error(igrc("check", bad), 2, "bad.json:3:14:", "malformed JSON");
    expect_error(igrc("check", g_dir), 2, "not a regular file");
}

/* ---- dump ---- */

Test(driver, dump_after_decompose) {
    Result r = igrc("dump", model("models/nets/smallcnn.json"), "--after", "decompose");
    expect_ok(r);
    cr_expect(strstr(r.out, "matmul"), "%s", r.out);
    cr_expect(!strstr(r.out, "linear("), "linear survived decompose");
    done(&r);
    /* Without --after: the frontend's IR, with linear. */
    r = igrc("dump", model("models/nets/smallcnn.json"));
    expect_ok(r);
    cr_expect(strstr(r.out, "linear("), "%s", r.out);
    cr_expect(strstr(r.out, "module @smallcnn"), "%s", r.out);
    done(&r);
}

Test(driver, dump_unknown_pass) {
    expect_error(igrc("dump", model("models/nets/smallcnn.json"), "--after", "nosuchpass"), 2,
                 "nosuchpass", "verify", "decompose", "dce");
}

Test(driver, dump_dot) {
    Result r = igrc("dump", model("models/nets/smallcnn.json"), "--format", "dot");
    expect_ok(r);
    cr_expect(strncmp(r.out, "digraph", 7) == 0, "%.80s", r.out);
    done(&r);
    r = igrc("dump", model("models/nets/mlp.json"), "--format", "dot", "--after", "dce");
    expect_ok(r);
    cr_expect(strstr(r.out, "digraph"), "%.80s", r.out);
    done(&r);
}

/* ---- exec ---- */

Test(driver, exec_on_safetensors) {
    const char *x = write_x("x.safetensors", 2);
    const char *out = in_dir("out.safetensors");
    Result r = igrc("exec", model("models/nets/smallcnn.json"), "--inputs", x, "--batch", "2",
                    "--fn", "predict", "-o", out);
    expect_ok(r);
    cr_expect(strstr(r.out, "logits: f32[2,10]"), "%s", r.out);
    done(&r);
    StFile f;
    read_logits(out, 2, &f);
    cr_expect_eq(st_find(&f, "logits")->dtype, ST_F32);
    st_free(&f);

    /* --dtype f64 writes f64 */
    r = igrc("exec", model("models/nets/smallcnn.json"), "--inputs", x, "--batch", "2", "--fn",
             "predict", "-o", out, "--dtype", "f64");
    expect_ok(r);
    done(&r);
    read_logits(out, 2, &f);
    cr_expect_eq(st_find(&f, "logits")->dtype, ST_F64);
    st_free(&f);
}

/* A label outside the classes is refused on every backend alike (the
 * compiled gather would read out of bounds), naming the file and index. */
Test(driver, exec_label_out_of_range) {
    float x[2 * 784] = {0};
    int32_t y[2] = {3, 10};
    StTensor ts[2] = {
        {.name = "x", .dtype = ST_F32, .rank = 4, .shape = {2, 1, 28, 28}, .data = x, .nbytes = sizeof x},
        {.name = "y", .dtype = ST_I32, .rank = 1, .shape = {2}, .data = y, .nbytes = sizeof y}};
    const char *in = in_dir("xy.safetensors");
    char err[512];
    cr_assert(st_write(in, ts, 2, NULL, 0, err, sizeof err), "%s", err);
    static const char *const backends[] = {"interp", "cpu"};
    for (int b = 0; b < 2; b++)
        expect_error(igrc("exec", model("models/mnist_mlp_standard.json"), "--inputs", in, "--batch",
                          "2", "--fn", "grad_ce", "--backend", backends[b], "-o",
                          in_dir("o.safetensors")),
                     2, "xy.safetensors", "y[1] is 10", "[0, 10)");
}

/* NaN in, NaN out (as in PyTorch), on both backends: relu once turned a
 * NaN input into finite logits. */
Test(driver, exec_nan_input_gives_nan_logits) {
    float x[2 * 784] = {0};
    x[5] = NAN, x[784 + 9] = INFINITY;
    StTensor t = {.name = "x", .dtype = ST_F32, .rank = 4, .shape = {2, 1, 28, 28}, .data = x,
                  .nbytes = sizeof x};
    const char *in = in_dir("nan.safetensors"), *out = in_dir("nan_out.safetensors");
    char err[512];
    cr_assert(st_write(in, &t, 1, NULL, 0, err, sizeof err), "%s", err);
    static const char *const backends[] = {"interp", "cpu"};
    for (int b = 0; b < 2; b++) {
        Result r = igrc("exec", model("models/mnist_mlp_standard.json"), "--inputs", in, "--batch",
                        "2", "--fn", "predict", "--backend", backends[b], "-o", out);
        expect_ok(r);
        done(&r);
        StFile f;
        read_logits(out, 2, &f);
        const StTensor *l = st_find(&f, "logits");
        for (int i = 0; i < 20; i++) {
            double v = l->dtype == ST_F64 ? ((double *)l->data)[i] : ((float *)l->data)[i];
            cr_expect(!isfinite(v), "%s: logit %d is %g for a non-finite input", backends[b], i, v);
        }
        st_free(&f);
    }
}

Test(driver, exec_wrong_input_shape) {
    const char *x = write_x("x3.safetensors", 3);
    expect_error(igrc("exec", model("models/nets/smallcnn.json"), "--inputs", x, "--batch", "2",
                      "--fn", "predict", "-o", in_dir("o.safetensors")),
                 2, "'x'", "[3,1,28,28]", "f32[2,1,28,28]", "x3.safetensors");
    /* The wrong rank, and an input under another name. */
    const char *y = in_dir("r2.safetensors");
    write_tensor(y, "x", 2, (const int64_t[]){2, 784}, 2);
    expect_error(igrc("exec", model("models/nets/smallcnn.json"), "--inputs", y, "--batch", "2",
                      "--fn", "predict", "-o", in_dir("o.safetensors")),
                 2, "'x'", "[2,784]", "f32[2,1,28,28]");
    const char *z = in_dir("z.safetensors");
    write_tensor(z, "image", 4, (const int64_t[]){2, 1, 28, 28}, 3);
    expect_error(igrc("exec", model("models/nets/smallcnn.json"), "--inputs", z, "--batch", "2",
                      "--fn", "predict", "-o", in_dir("o.safetensors")),
                 2, "input 'x'", "z.safetensors");
    cr_expect(access(in_dir("o.safetensors"), F_OK) != 0, "an output was written after a failure");
}

Test(driver, exec_corrupt_params) {
    const char *x = write_x("x.safetensors", 2);
    const char *p = in_dir("p.safetensors");
    Result r = igrc("exec", model("models/nets/mlp.json"), "--inputs", x, "--batch", "2", "--fn",
                    "predict", "-o", in_dir("o.safetensors"), "--save-params", p);
    expect_ok(r);
    done(&r);
    /* Truncate the saved parameters to half. */
    size_t len;
    char *bytes = slurp(p, &len);
    const char *t = in_dir("trunc.safetensors");
    FILE *f = fopen(t, "wb");
    fwrite(bytes, 1, len / 2, f);
    fclose(f);
    free(bytes);
    expect_error(igrc("exec", model("models/nets/mlp.json"), "--inputs", x, "--batch", "2", "--fn",
                      "predict", "-o", in_dir("o2.safetensors"), "--params", t),
                 2, "trunc.safetensors");
    /* Not safetensors at all. */
    f = fopen(t, "wb");
    fputs("hello", f);
    fclose(f);
    expect_error(igrc("exec", model("models/nets/mlp.json"), "--inputs", x, "--batch", "2", "--fn",
                      "predict", "-o", in_dir("o2.safetensors"), "--params", t),
                 2, "trunc.safetensors");
    /* A parameters file of another model. */
    expect_error(igrc("exec", model("models/nets/smallcnn.json"), "--inputs", x, "--batch", "2",
                      "--fn", "predict", "-o", in_dir("o2.safetensors"), "--params", p),
                 2, "conv1.weight");
    /* A missing parameters file. */
    expect_error(igrc("exec", model("models/nets/mlp.json"), "--inputs", x, "--batch", "2", "--fn",
                      "predict", "-o", in_dir("o2.safetensors"), "--params", in_dir("none.st")),
                 2, "none.st");
}

Test(driver, exec_unknown_entry_point) {
    const char *x = write_x("x.safetensors", 2);
    expect_error(igrc("exec", model("models/nets/smallcnn.json"), "--inputs", x, "--batch", "2",
                      "--fn", "nosuch", "-o", in_dir("o.safetensors")),
                 2, "'nosuch'");
}

/* Logits of mlp.json (nonzero for any seed, unlike SmallCNN's zero fc3). */
static void logits_of(const char *x, const char *out, const char *const *extra, StFile *f) {
    const char *args[32] = {"exec", model("models/nets/mlp.json"), "--inputs", x, "--batch", "2",
                            "--fn", "predict", "-o", out};
    int n = 10;
    for (; *extra; extra++) args[n++] = *extra;
    args[n] = NULL;
    Result r = spawn_v(igrc_bin(), args);
    expect_ok(r);
    done(&r);
    read_logits(out, 2, f);
}

static bool same_tensor(const StTensor *a, const StTensor *b) {
    return a->dtype == b->dtype && a->nbytes == b->nbytes && memcmp(a->data, b->data, a->nbytes) == 0;
}

/* The weights of a --save-params file as a PyTorch state_dict holds them:
 * no optim.* tensors, and one tensor the model does not have. bf16: every
 * float cut to a BF16 value, as BF16 (bits) or as the same values in F32. */
static void write_state_dict(const char *from, const char *to, bool bf16, bool as_bf16,
                             const char *drop) {
    StFile f;
    char err[512];
    cr_assert(st_read(from, &f, err, sizeof err), "%s", err);
    StTensor *ts = calloc((size_t)f.n + 1, sizeof *ts);
    int n = 0;
    for (int i = 0; i < f.n; i++) {
        StTensor t = f.tensors[i];
        if (!strncmp(t.name, "optim.", 6) || (drop && !strcmp(t.name, drop))) continue;
        size_t k = t.nbytes / 4;
        uint32_t *u = t.data;
        for (size_t j = 0; bf16 && j < k; j++) u[j] &= 0xffff0000u;
        if (as_bf16) {
            for (size_t j = 0; j < k; j++) ((uint16_t *)t.data)[j] = (uint16_t)(u[j] >> 16);
            t.dtype = ST_BF16, t.nbytes = 2 * k;
        }
        ts[n++] = t;
    }
    float extra[2] = {1, 2};
    ts[n++] = (StTensor){.name = "head.weight", .dtype = ST_F32, .rank = 1, .shape = {2},
                         .data = extra, .nbytes = 8};
    cr_assert(st_write(to, ts, n, NULL, 0, err, sizeof err), "%s", err);
    free(ts);
    st_free(&f);
}

/* A state_dict of weights alone: the optimiser state is zero-filled with one
 * note, the extra tensor is named in another, BF16 converts exactly, and a
 * missing weight is named with the file. */
Test(driver, exec_params_weights_only) {
    char x[600], full[600], w[600], r[600], h[600];
    snprintf(x, sizeof x, "%s", write_x("x.safetensors", 2));
    snprintf(full, sizeof full, "%s", in_dir("full.safetensors"));
    snprintf(w, sizeof w, "%s", in_dir("w.safetensors"));
    snprintf(r, sizeof r, "%s", in_dir("r.safetensors"));
    snprintf(h, sizeof h, "%s", in_dir("h.safetensors"));
    const char *net = model("models/mnist_mlp_standard.json");
    StFile a, b, c, d;
    Result res = igrc("exec", net, "--inputs", x, "--batch", "2", "--fn", "predict", "-o",
                      in_dir("a.safetensors"), "--seed", "3", "--save-params", full);
    expect_ok(res);
    done(&res);
    read_logits(in_dir("a.safetensors"), 2, &a);
    write_state_dict(full, w, false, false, NULL);
    res = igrc("exec", net, "--inputs", x, "--batch", "2", "--fn", "predict", "-o",
               in_dir("b.safetensors"), "--params", w);
    expect_ok(res);
    char note[1400];
    snprintf(note, sizeof note,
             "igrc exec: note: %s: 6 optimiser tensors (optim.*) not in the file: zero-filled\n"
             "igrc exec: note: %s: 1 tensor of the file not in the program, ignored: "
             "head.weight\n", w, w);
    cr_expect_str_eq(res.err, note);
    done(&res);
    read_logits(in_dir("b.safetensors"), 2, &b);
    cr_expect(same_tensor(st_find(&a, "logits"), st_find(&b, "logits")));

    write_state_dict(full, r, true, false, NULL);
    write_state_dict(full, h, true, true, NULL);
    res = igrc("exec", net, "--inputs", x, "--batch", "2", "--fn", "predict", "-o",
               in_dir("c.safetensors"), "--params", r);
    expect_ok(res);
    done(&res);
    res = igrc("exec", net, "--inputs", x, "--batch", "2", "--fn", "predict", "-o",
               in_dir("d.safetensors"), "--params", h);
    expect_ok(res);
    done(&res);
    read_logits(in_dir("c.safetensors"), 2, &c);
    read_logits(in_dir("d.safetensors"), 2, &d);
    cr_expect(same_tensor(st_find(&c, "logits"), st_find(&d, "logits")), "BF16 is not exact");
    cr_expect(!same_tensor(st_find(&a, "logits"), st_find(&c, "logits")), "nothing was cut");

    write_state_dict(full, w, false, false, "fc2.bias");
    char want[700];
    snprintf(want, sizeof want, "igrc: %s: tensor 'fc2.bias' is missing (program ", w);
    expect_error(igrc("exec", net, "--inputs", x, "--batch", "2", "--fn", "predict", "-o",
                      in_dir("e.safetensors"), "--params", w),
                 2, want);
    st_free(&a), st_free(&b), st_free(&c), st_free(&d);
}

Test(driver, save_params_then_params_reproduces_seed) {
    const char *x = write_x("x.safetensors", 2);
    const char *p = in_dir("p.safetensors");
    static const char *const dtypes[] = {"f32", "f64"};
    for (int k = 0; k < 2; k++) {
        StFile a, b, c;
        logits_of(x, in_dir("a.safetensors"),
                  (const char *const[]){"--seed", "7", "--save-params", p, "--dtype", dtypes[k], NULL},
                  &a);
        logits_of(x, in_dir("b.safetensors"),
                  (const char *const[]){"--params", p, "--dtype", dtypes[k], NULL}, &b);
        logits_of(x, in_dir("c.safetensors"),
                  (const char *const[]){"--seed", "8", "--dtype", dtypes[k], NULL}, &c);
        const StTensor *la = st_find(&a, "logits"), *lb = st_find(&b, "logits"),
                       *lc = st_find(&c, "logits");
        cr_expect(same_tensor(la, lb), "--params of the saved file changes the logits (%s)",
                  dtypes[k]);
        cr_expect(!same_tensor(la, lc), "the seed makes no difference (%s)", dtypes[k]);
        bool nonzero = false;
        for (size_t i = 0; i < la->nbytes; i++) nonzero |= ((const unsigned char *)la->data)[i] != 0;
        cr_expect(nonzero, "logits are all zero");
        /* The saved file has every parameter under its PyTorch name. */
        StFile ps;
        char err[512];
        cr_assert(st_read(p, &ps, err, sizeof err), "%s", err);
        cr_expect_eq(ps.n, 6);
        const StTensor *w = st_find(&ps, "fc1.weight");
        cr_assert(w);
        cr_expect_eq(w->rank, 2);
        cr_expect_eq(w->shape[0], 256);
        cr_expect_eq(w->shape[1], 784);
        st_free(&ps);
        st_free(&a);
        st_free(&b);
        st_free(&c);
    }
}

/* ---- exec over a data set ---- */

/* A CIFAR-shaped network small enough for the interpreter. */
static const char kCifarNet[] =
    "{\"igrc\": 1, \"inputs\": {\"x\": {\"shape\": [\"B\", 3, 32, 32], \"dtype\": \"f32\", \"range\": [0, 1]},"
    " \"y\": {\"shape\": [\"B\"], \"dtype\": \"i32\", \"classes\": 10}},"
    " \"networks\": {\"n\": {\"input\": \"x\", \"nodes\": ["
    "  {\"id\": \"f\", \"op\": \"flatten\", \"inputs\": [\"x\"]},"
    "  {\"id\": \"fc\", \"op\": \"linear\", \"inputs\": [\"f\"], \"out_features\": 10}], \"output\": \"fc\"}}}";

/* CIFAR-10's binary layout: per record a label byte and 3x32x32 pixel bytes. */
static void write_cifar(const char *dir, const char *file, int n, int bad_label, unsigned char *pixels,
                        unsigned char *labels) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    cr_assert(f, "%s", path);
    for (int i = 0; i < n; i++) {
        unsigned char rec[1 + 3072];
        rec[0] = (unsigned char)(i == bad_label ? 12 : (i * 7 + 3) % 10);
        for (int p = 0; p < 3072; p++) rec[1 + p] = (unsigned char)((p * 31 + i * 97 + p / 1024 * 50) % 256);
        if (pixels) memcpy(pixels + (size_t)i * 3072, rec + 1, 3072);
        if (labels) labels[i] = rec[0];
        cr_assert_eq(fwrite(rec, 1, sizeof rec, f), sizeof rec);
    }
    fclose(f);
}

/* `exec --data DIR` reads CIFAR-10 batches as the executables do: its
 * accuracy equals the one computed from `exec --inputs` on the same
 * images (byte / 255, CHW); --split and --limit; bad labels and a network
 * of another image shape are errors naming them. */
Test(driver, exec_over_a_cifar_data_set) {
    const char *net = in_dir("cifar_net.json"), *dir = in_dir("cifar");
    FILE *f = fopen(net, "w");
    cr_assert(f);
    fputs(kCifarNet, f);
    fclose(f);
    cr_assert_eq(mkdir(dir, 0755), 0);
    unsigned char px[6 * 3072], lab[6];
    write_cifar(dir, "test_batch.bin", 6, -1, px, lab);
    write_cifar(dir, "data_batch_1.bin", 4, -1, NULL, NULL);
    Result r = igrc("exec", net, "--fn", "predict", "--data", dir, "--batch", "4");
    expect_ok(r);
    int shown = 0, of = 0;
    const char *acc = strstr(r.out, "accuracy: ");
    cr_assert(acc && sscanf(strchr(acc, '(') + 1, "%d/%d", &shown, &of) == 2, "%s", r.out);
    cr_expect_eq(of, 6);
    cr_expect(strstr(acc, "test split of"), "%s", acc);
    done(&r);
    /* the same images through --inputs, as f64 byte / 255 */
    double *x = malloc(sizeof(double) * 6 * 3072);
    for (int i = 0; i < 6 * 3072; i++) x[i] = px[i] / 255.0;
    StTensor t = {.name = "x", .dtype = ST_F64, .rank = 4, .shape = {6, 3, 32, 32}, .data = x,
                  .nbytes = sizeof(double) * 6 * 3072};
    const char *in = in_dir("x.safetensors"), *out = in_dir("logits.safetensors");
    char err[512];
    cr_assert(st_write(in, &t, 1, NULL, 0, err, sizeof err), "%s", err);
    free(x);
    r = igrc("exec", net, "--fn", "predict", "--inputs", in, "--batch", "6", "-o", out, "--dtype", "f64");
    expect_ok(r);
    done(&r);
    StFile lf;
    cr_assert(st_read(out, &lf, err, sizeof err), "%s", err);
    const double *lg = st_find(&lf, "logits")->data;
    int correct = 0;
    for (int i = 0; i < 6; i++) {
        int best = 0;
        for (int j = 1; j < 10; j++) best = lg[i * 10 + j] > lg[i * 10 + best] ? j : best;
        correct += best == lab[i];
    }
    st_free(&lf);
    cr_expect_eq(shown, correct, "--data counted %d correct, --inputs %d", shown, correct);
    /* the training split, limited */
    r = igrc("exec", net, "--fn", "predict", "--data", dir, "--batch", "4", "--split", "train", "--limit", "3");
    expect_ok(r);
    cr_expect(strstr(r.out, "/3, train split of"), "%s", r.out);
    done(&r);
    /* a label outside the classes; a network of MNIST's shape */
    write_cifar(dir, "test_batch.bin", 6, 4, NULL, NULL);
    expect_error(igrc("exec", net, "--fn", "predict", "--data", dir, "--batch", "4"), 2, "test_batch.bin", "record 4", "label 12");
    write_cifar(dir, "test_batch.bin", 6, -1, NULL, NULL);
    expect_error(igrc("exec", model("models/nets/mlp.json"), "--fn", "predict", "--data", dir, "--batch", "4"), 2,
                 "3072 values per image", "784");
}
