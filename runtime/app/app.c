/* igrc_app_main: dispatch, option parsing, the helpers the commands share,
 * and `info`. */
#include "runtime/app/app.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/contract.h"
#include "base/rt_error.h"
#include "base/settings.h"
#include "runtime/app/app_internal.h"
#include "runtime/io/checkpoint.h"
#include "runtime/io/outfile.h"

/* ---- options ------------------------------------------------------------ */

static void print_help(const char *cmd, const char *summary, const AppOpt *opts, int nopts) {
    printf("usage: %s [options]\n%s\n\noptions:\n", cmd, summary);
    for (int i = 0; i < nopts; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].kind == OPT_FLAG ? "" : " ",
                 opts[i].kind == OPT_FLAG ? "" : opts[i].meta);
        printf("  %-24s %s\n", left, opts[i].help);
    }
    printf("  %-24s %s\n", "--help", "show this help");
}

static bool set_opt(const char *cmd, AppOpt *o, const char *v) {
    char *end;
    errno = 0;
    switch (o->kind) {
    case OPT_STR: *(const char **)o->dst = v; return true;
    case OPT_FLAG: *(bool *)o->dst = true; return true;
    case OPT_INT: {
        long long x = strtoll(v, &end, 10);
        if (*v && !*end && !errno && x >= 0) {
            *(int64_t *)o->dst = x;
            return true;
        }
        fprintf(stderr, "%s: --%s expects a non-negative integer, got '%s'\n", cmd, o->name, v);
        return false;
    }
    case OPT_U32: {
        long long x = strtoll(v, &end, 10);
        if (*v && !*end && !errno && x >= 0 && x <= (long long)UINT32_MAX) {
            *(uint32_t *)o->dst = (uint32_t)x;
            return true;
        }
        fprintf(stderr, "%s: --%s expects an integer in [0, 4294967295], got '%s'\n", cmd,
                o->name, v);
        return false;
    }
    case OPT_NUM: {
        double x = strtod(v, &end);
        if (*v && !*end && !errno && x == x) {
            *(double *)o->dst = x;
            return true;
        }
        fprintf(stderr, "%s: --%s expects a number, got '%s'\n", cmd, o->name, v);
        return false;
    }
    }
    return false;
}

int app_parse(const char *cmd, const char *summary, int argc, char **argv, AppOpt *opts,
              int nopts) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help(cmd, summary, opts, nopts);
            return APP_HELP;
        }
        if (strncmp(a, "--", 2)) {
            fprintf(stderr, "%s: unexpected argument '%s' (see %s --help)\n", cmd, a, cmd);
            return APP_USAGE;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        AppOpt *o = NULL;
        for (int k = 0; k < nopts; k++)
            if (strlen(opts[k].name) == len && !strncmp(opts[k].name, name, len)) o = &opts[k];
        if (!o) {
            fprintf(stderr, "%s: unknown option '%.*s' (see %s --help)\n", cmd, (int)len + 2, a,
                    cmd);
            return APP_USAGE;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (o->kind == OPT_FLAG && v) {
            fprintf(stderr, "%s: --%s takes no value\n", cmd, o->name);
            return APP_USAGE;
        }
        if (!v && o->kind != OPT_FLAG) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: --%s needs a value (%s)\n", cmd, o->name, o->meta);
                return APP_USAGE;
            }
            v = argv[++i];
        }
        if (!set_opt(cmd, o, v)) return APP_USAGE;
        o->seen = true;
    }
    return APP_OK;
}

/* ---- shared helpers ----------------------------------------------------- */

bool app_check_flag(const char *cmd, const char *name, const char *key, double v) {
    char why[256];
    const SettingSpec *s = settings_find(key);
    if (!s || settings_check_num(s, v, why, sizeof why)) return true;
    fprintf(stderr, "%s: --%s %s\n", cmd, name, why);
    return false;
}

double app_setting(const Program *p, const char *key) {
    return app_setting_num(p, key, settings_default(key));
}

double app_setting_num(const Program *p, const char *key, double def) {
    const PSetting *s = program_setting(p, key);
    if (!s) return def;
    if (!s->is_str) return s->num;
    char *end;
    double v = strtod(s->str, &end);
    return *s->str && !*end ? v : def;
}

const char *app_setting_str(const Program *p, const char *key, const char *def) {
    const PSetting *s = program_setting(p, key);
    return s && s->is_str ? s->str : def;
}

int app_find_input(const PFunc *f, const char *name) {
    for (int i = 0; i < f->ninputs; i++)
        if (!strcmp(f->inputs[i].name, name)) return i;
    return -1;
}

int app_find_output(const PFunc *f, const char *name) {
    for (int i = 0; i < f->noutputs; i++)
        if (!strcmp(f->outputs[i].name, name)) return i;
    return -1;
}

bool app_image_shape(const Program *p, int64_t chw[3], int64_t *batch) {
    static const char *const fns[] = {ENTRY_TRAIN_STEP, ENTRY_PREDICT, ENTRY_GRAD_CE, ENTRY_GRAD_CW};
    for (int k = 0; k < 4; k++) {
        int f = program_find_func(p, fns[k]);
        if (f < 0) continue;
        int i = app_find_input(&p->funcs[f], IN_X);
        if (i < 0) continue;
        const PTensor *t = &p->funcs[f].inputs[i];
        if (t->rank != 4 || t->dtype != PD_F32) continue;
        for (int d = 0; d < 3; d++) chw[d] = t->dim[d + 1];
        *batch = t->dim[0];
        return true;
    }
    return false;
}

/* The classes of the program's label input y (0 when it has none). */
static int app_label_classes(const Program *p) {
    for (int i = 0; i < p->ninputs; i++)
        if (!strcmp(p->inputs[i].t.name, IN_Y)) return p->inputs[i].classes;
    return 0;
}

bool app_load_data(const Program *p, const char *data, bool train, int64_t limit, Dataset *d) {
    char err[2048];
    if (!data) data = app_setting_str(p, "data", NULL);
    if (!data) {
        fprintf(stderr, "error: no data set: pass --data NAME|DIR (mnist, fashion-mnist, cifar10 "
                        "or a directory)\n");
        return false;
    }
    int64_t chw[3], batch;
    if (!app_image_shape(p, chw, &batch)) {
        fprintf(stderr, "error: program %s has no entry point with an f32 image input x "
                        "[B,C,H,W]\n", p->name);
        return false;
    }
    if (!dataset_load(data, NULL, train, limit, d, err, sizeof err) ||
        !dataset_check_shape(d, chw, err, sizeof err) ||
        !dataset_check_labels(d, train, app_label_classes(p), err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        dataset_free(d);
        return false;
    }
    return true;
}

void **app_alloc_outputs(const PFunc *f) {
    void **outs = calloc((size_t)f->noutputs + 1, sizeof *outs);
    for (int i = 0; outs && i < f->noutputs; i++) {
        outs[i] = calloc(1, ptensor_bytes(&f->outputs[i]) + 8);
        if (!outs[i]) {
            app_free_outputs(f, outs);
            return NULL;
        }
    }
    return outs;
}

void app_free_outputs(const PFunc *f, void **outs) {
    if (!outs) return;
    for (int i = 0; i < f->noutputs; i++) free(outs[i]);
    free(outs);
}

void app_store_num(const PTensor *t, void *buf, int64_t index, double v) {
    switch (t->dtype) {
    case PD_F32: ((float *)buf)[index] = (float)v; break;
    case PD_F64: ((double *)buf)[index] = v; break;
    case PD_I32: ((int32_t *)buf)[index] = (int32_t)(int64_t)v; break;
    case PD_I64: ((int64_t *)buf)[index] = (int64_t)v; break;
    case PD_BOOL: ((uint8_t *)buf)[index] = v != 0; break;
    }
}

bool app_check_input(const PFunc *f, const char *name, PDtype dtype, int rank) {
    int i = app_find_input(f, name);
    if (i < 0) {
        fprintf(stderr, "error: entry point %s has no input '%s'\n", f->name, name);
        return false;
    }
    const PTensor *t = &f->inputs[i];
    if (t->dtype != dtype || (rank >= 0 && t->rank != rank)) {
        fprintf(stderr, "error: entry point %s: input '%s' is %s of rank %d, expected %s of "
                        "rank %d\n", f->name, name, pdtype_name(t->dtype), t->rank,
                pdtype_name(dtype), rank);
        return false;
    }
    return true;
}

int app_argmax(const PTensor *logits, const void *data, int64_t row, int64_t k) {
    int best = 0;
    double bv = 0;
    for (int64_t j = 0; j < k; j++) {
        double v = logits->dtype == PD_F64 ? ((const double *)data)[row * k + j]
                                           : ((const float *)data)[row * k + j];
        if (j == 0 || v > bv) best = (int)j, bv = v;
    }
    return best;
}

double app_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void app_default_path(const char **path, char *buf, size_t n, const char *dir, const char *name) {
    if (*path) return;
    snprintf(buf, n, "%s/%s", dir, name);
    *path = buf;
}

/* mkdir -p: parents first, so --out run/main works on a fresh checkout. */
bool app_mkdir(const char *dir) {
    struct stat sb;
    if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) return true;
    char path[4096];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (stat(path, &sb) != 0) mkdir(path, 0777);
        *p = '/';
    }
    if (mkdir(dir, 0777) == 0) return true;
    /* another process (a rank of the same mpirun job) may have made it meanwhile */
    if (errno == EEXIST && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) return true;
    fprintf(stderr, "error: cannot create directory %s: %s\n", dir, strerror(errno));
    return false;
}

bool app_write_json(cJSON *json, const char *path) {
    char *text = cJSON_Print(json);
    cJSON_Delete(json);
    char target[4096], tmp[4200], err[4400], dir[4096];
    /* results go into the run's directory even when --ckpt named weights
     * elsewhere and the directory does not exist yet */
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) *slash = 0;
    if (slash && slash != dir && !app_mkdir(dir)) {
        free(text);
        return false;
    }
    if (!outfile_target(path, target, sizeof target, err, sizeof err)) {
        free(text);
        fprintf(stderr, "error: %s\n", err);
        return false;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", target, (long)getpid());
    FILE *f = text ? fopen(tmp, "w") : NULL;
    bool ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f) ok = (fclose(f) == 0) && ok;
    ok = ok && rename(tmp, target) == 0;
    free(text);
    if (!ok) {
        remove(tmp);
        fprintf(stderr, "error: cannot write %s\n", path);
    }
    return ok;
}

/* ---- backends ----------------------------------------------------------- */

const char *app_device_help(void) {
    static char help[256];
    if (!help[0])
        snprintf(help, sizeof help, "where the program runs: %s (default cpu)", backend_names());
    return help;
}

int app_check_device(const AppCtx *ctx, const char *name, const Backend **dev) {
    char err[512];
    if (!(*dev = backend_find(name))) {
        fprintf(stderr, "error: --device must be %s, got '%s'\n", backend_names(), name);
        return APP_USAGE;
    }
    if (!backend_check_code(*dev, ctx->p, &ctx->code, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return APP_FAIL;
    }
    return APP_OK;
}

Exec *app_exec_new(const AppCtx *ctx, const Backend *dev, int64_t threads, uint32_t seed) {
    char err[2048];
    Exec *e = exec_new(ctx->p, &ctx->code, dev->name, (int)threads, seed, err, sizeof err);
    if (!e) fprintf(stderr, "error: %s\n", err);
    return e;
}

Exec *app_open_weights(const AppCtx *ctx, const Backend *dev, int64_t threads, uint32_t seed,
                       const char *ckpt, bool ckpt_named) {
    Exec *e = app_exec_new(ctx, dev, threads, seed);
    char err[2048];
    if (e && !ckpt_load(ckpt, e, WEIGHTS_ONLY, NULL, stderr, err, sizeof err)) {
        fprintf(stderr, "error: %s%s\n", err,
                ckpt_named ? "" : " (train first, or name the weights with --ckpt FILE)");
        exec_free(e);
        e = NULL;
    }
    return e;
}

Dist *app_open_ranks(void) {
    char err[512];
    Dist *d = dist_open(err, sizeof err);
    if (!d) {
        fprintf(stderr, "error: %s\n", err);
        return NULL;
    }
    if (dist_rank(d) != 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "error: rank %d: cannot silence stdout\n", dist_rank(d));
        dist_close(d);
        return NULL;
    }
    return d;
}

bool app_gather_rows(Dist *d, double *rows, int64_t n, int fields, int64_t B) {
    int *owner = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!owner) return fprintf(stderr, "error: out of memory\n"), false;
    for (int64_t i = 0; i < n; i++) owner[i] = (int)((i / B) % dist_size(d));
    bool ok = app_gather_rows_owned(d, rows, n, fields, owner);
    free(owner);
    return ok;
}

bool app_gather_rows_owned(Dist *d, double *rows, int64_t n, int fields, const int *owner) {
    const int ranks = dist_size(d);
    if (ranks == 1) return true;
    const int64_t cnt = n * fields;
    double *all = malloc(sizeof(double) * (size_t)(cnt * ranks));
    char err[512];
    if (!all) return fprintf(stderr, "error: out of memory\n"), false;
    bool ok = dist_allgather(d, rows, cnt, all, err, sizeof err);
    for (int64_t i = 0; ok && i < n; i++) {
        memcpy(rows + i * fields, all + owner[i] * cnt + i * fields, (size_t)fields * sizeof(double));
    }
    if (!ok) fprintf(stderr, "error: rank %d: %s\n", dist_rank(d), err);
    free(all);
    return ok;
}

int app_single_process(const char *cmd) {
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n || atoi(n) <= 1) return APP_OK;
    fprintf(stderr, "%s: runs as one process (started under mpirun with %s ranks): only train and eval "
                    "share their work across ranks so far\n", cmd, n);
    return APP_USAGE;
}

bool app_call(Exec *e, int f, const void *const *inputs, void *const *outputs) {
    if (exec_call(e, f, inputs, outputs)) return true;
    fprintf(stderr, "\nerror: %s\n", exec_error(e));
    return false;
}

/* ---- info --------------------------------------------------------------- */

static void print_tensor(const char *kind, const PTensor *t) {
    printf("    %-4s %-24s %s[", kind, t->name, pdtype_name(t->dtype));
    for (int d = 0; d < t->rank; d++) printf("%s%" PRId64, d ? "," : "", t->dim[d]);
    printf("]\n");
}

static int app_info(const AppCtx *ctx, int argc, char **argv) {
    int64_t threads = 1;
    const char *device = "cpu";
    const Backend *dev;
    AppOpt opts[] = {{"threads", OPT_INT, &threads, "N", "threads of the runner (default 1)", 0},
                     APP_DEVICE_OPT(&device)};
    int rc = app_parse("info", "Describes the embedded program.", argc, argv, opts, 2);
    if (rc) return rc == APP_HELP ? APP_OK : rc;
    if ((rc = app_check_device(ctx, device, &dev))) return rc;
    const Program *p = ctx->p;
    printf("program  %s\nbatch    %" PRId64 "\n", p->name, p->batch);
    int64_t ntr = 0, nst = 0, etr = 0, est = 0, bytes = 0;
    for (int i = 0; i < p->nparams; i++) {
        int64_t n = ptensor_numel(&p->params[i].t);
        bytes += (int64_t)ptensor_bytes(&p->params[i].t);
        if (p->params[i].trainable) ntr++, etr += n;
        else nst++, est += n;
    }
    printf("parameters  %" PRId64 " trainable (%" PRId64 " elements), %" PRId64
           " state (%" PRId64 " elements), %" PRId64 " bytes\n", ntr, etr, nst, est, bytes);
    for (int i = 0; i < p->nsettings; i++) {
        const PSetting *s = &p->settings[i];
        if (s->is_str) printf("setting  %s = \"%s\"\n", s->key, s->str);
        else printf("setting  %s = %g\n", s->key, s->num);
    }
    printf("entry points:\n");
    for (int f = 0; f < p->nfuncs; f++) {
        const PFunc *fn = &p->funcs[f];
        printf("  %-16s arena %" PRId64 " bytes, %d steps\n", fn->name, fn->arena_bytes,
               fn->nsteps);
        for (int i = 0; i < fn->ninputs; i++) print_tensor("in", &fn->inputs[i]);
        for (int i = 0; i < fn->noutputs; i++) print_tensor("out", &fn->outputs[i]);
    }
    printf("kernels  %d\n", ctx->code.nkernels);
    for (int i = 0; i < ctx->code.nimages; i++)
        printf("%s image  %" PRId64 " bytes\n", ctx->code.images[i].backend,
               ctx->code.images[i].size);
    Exec *e = app_exec_new(ctx, dev, threads, 0);
    if (!e) return APP_FAIL;
    if (!dev->host_memory) printf("device   %s\n", exec_describe(e));
    printf("runner memory  %" PRId64 " bytes\n", exec_memory_bytes(e));
    exec_free(e);
    return APP_OK;
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *f, const char *prog, const char *name) {
    fprintf(f,
            "usage: %s COMMAND [options]   (program %s)\n\n"
            "commands:\n"
            "  train   train the model (checkpoints in --out DIR)\n"
            "  eval    accuracy under natural, fgsm, pgd and cw attacks\n"
            "  attrib  the IFIA top-k attack on attributions: top-k intersection, Kendall tau\n"
            "  consistency  activation consistency between images and their PGD examples\n"
            "  ig      integrated-gradients maps (and of attacked copies) as PNG\n"
            "  export  the weights alone, as safetensors for PyTorch's load_state_dict\n"
            "  info    the program: parameters, entry points, memory\n\n"
            "'%s COMMAND --help' lists a command's options.\n",
            prog, name, prog);
}

int igrc_app_main(int argc, char **argv, const char *program_text, int64_t program_size,
                  const PKernelFn *kernels, int nkernels) {
    BackendCode code = {kernels, nkernels, NULL, 0};
    return igrc_app_main_code(argc, argv, program_text, program_size, &code);
}

int igrc_app_main_code(int argc, char **argv, const char *program_text, int64_t program_size,
                       const BackendCode *code) {
    const char *prog = argc > 0 && argv[0] ? argv[0] : "igrc-model";
    /* The embedded text need not be NUL-terminated. */
    char *text = malloc((size_t)program_size + 1);
    if (!text) {
        fprintf(stderr, "error: out of memory\n");
        return APP_FAIL;
    }
    memcpy(text, program_text, (size_t)program_size);
    text[program_size] = 0;
    char err[2048];
    Program *p = program_parse(text, backend_code_kernels(code), err, sizeof err);
    free(text);
    if (!p) {
        fprintf(stderr, "error: the embedded program is invalid: %s\n", err);
        return APP_FAIL;
    }
    AppCtx ctx = {p, *code};
    int rc;
    const char *cmd = argc > 1 ? argv[1] : NULL;
    if (!cmd) {
        usage(stderr, prog, p->name);
        rc = APP_USAGE;
    } else if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout, prog, p->name);
        rc = APP_OK;
    } else if (!strcmp(cmd, "train")) {
        rc = app_train(&ctx, argc - 2, argv + 2);
    } else if (!strcmp(cmd, "eval")) {
        rc = app_eval(&ctx, argc - 2, argv + 2);
    } else if (!strcmp(cmd, "attrib")) {
        rc = app_attrib(&ctx, argc - 2, argv + 2);
    } else if (!strcmp(cmd, "consistency")) {
        rc = app_consistency(&ctx, argc - 2, argv + 2);
    } else if (!strcmp(cmd, "ig")) {
        rc = app_ig(&ctx, argc - 2, argv + 2);
    } else if (!strcmp(cmd, "export")) {
        rc = app_export(&ctx, argc - 2, argv + 2);
    } else if (!strcmp(cmd, "info")) {
        rc = app_info(&ctx, argc - 2, argv + 2);
    } else {
        fprintf(stderr, "%s: unknown command '%s' (train, eval, attrib, consistency, ig, export, "
                        "info; see --help)\n", prog, cmd);
        rc = APP_USAGE;
    }
    program_free(p);
    if (!rt_flush_stdout(prog) && rc == APP_OK) rc = APP_FAIL;
    return rc;
}
