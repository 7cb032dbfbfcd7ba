/* What app.c, app_train.c and app_eval.c share: option parsing, settings,
 * entry-point binding, data loading. */
#ifndef IGRC_RUNTIME_APP_INTERNAL_H
#define IGRC_RUNTIME_APP_INTERNAL_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/dist/dist.h"
#include "runtime/io/dataset.h"
#include "runtime/exec.h"
#include "runtime/program/program.h"

#define APP_OK 0
#define APP_FAIL 1  /* runtime or data failure */
#define APP_USAGE 2 /* bad command line */
#define APP_BADINPUT 2 /* bad input: a missing or malformed data set (as igrc's exit 2) */
#define APP_HELP -1 /* --help was printed: exit 0 */

typedef enum { OPT_STR, OPT_INT, OPT_NUM, OPT_U32, OPT_FLAG } AppOptKind;

typedef struct {
    const char *name; /* without the leading "--" */
    AppOptKind kind;
    void *dst;        /* const char **, int64_t *, double *, uint32_t *, bool * (a flag: no value) */
    const char *meta; /* "N", "DIR"... */
    const char *help;
    bool seen;        /* set by app_parse */
} AppOpt;

/* Parses --name VALUE and --name=VALUE; APP_OK, APP_HELP or APP_USAGE (with
 * the message on stderr). */
int app_parse(const char *cmd, const char *summary, int argc, char **argv, AppOpt *opts,
              int nopts);

typedef struct {
    const Program *p;
    BackendCode code; /* the kernels and device images the executable carries */
} AppCtx;

/* The --device option every command that runs the program takes: a
 * backend's name (runtime/backend.h). */
#define APP_DEVICE_OPT(dst) {"device", OPT_STR, (dst), "NAME", app_device_help(), 0}
/* "where the program runs: cpu or cuda (default cpu)" */
const char *app_device_help(void);

/* Where a trained run's weights are: the file, else the run's directory.
 * ckpt must stay first: a command asks opts[0].seen whether the user named
 * the weights file. */
#define APP_WEIGHTS_OPTS(ckpt, out)                                                      \
    {"ckpt", OPT_STR, (ckpt), "FILE", "weights (default: DIR/checkpoint.safetensors)", 0}, \
    {"out", OPT_STR, (out), "DIR", "the training run's directory (./run)", 0}

/* The options of every command that reads a trained run: where its weights,
 * its directory and its data are. */
#define APP_RUN_OPTS(ckpt, out, data)                                                    \
    APP_WEIGHTS_OPTS(ckpt, out),                                                         \
    {"data", OPT_STR, (data), "NAME|DIR", "mnist, fashion-mnist, cifar10 or a directory", 0}

/* --threads and --device of a command that runs the program. */
#define APP_EXEC_OPTS(threads, device)                                              \
    {"threads", OPT_INT, (threads), "N", "worker threads (default: all cores)", 0}, \
        APP_DEVICE_OPT(device)

/* *path = dir/name in buf (size n) unless the user gave *path. */
void app_default_path(const char **path, char *buf, size_t n, const char *dir, const char *name);

/* Checks --device NAME before any work: an unknown name is a usage error,
 * a backend whose code the executable lacks a failure; prints why. */
int app_check_device(const AppCtx *ctx, const char *name, const Backend **dev);
/* exec_new for the command; prints the error and returns NULL on failure. */
Exec *app_exec_new(const AppCtx *ctx, const Backend *dev, int64_t threads, uint32_t seed);
/* app_exec_new, then the weights from ckpt (a checkpoint or a weights-only
 * state_dict: ckpt_load's WEIGHTS_ONLY; ckpt_named: the user named the file,
 * else a hint to train first goes with a failure); NULL on error. */
Exec *app_open_weights(const AppCtx *ctx, const Backend *dev, int64_t threads, uint32_t seed,
                       const char *ckpt, bool ckpt_named);
/* This process's place in an mpirun job (alone: rank 0 of 1); ranks other
 * than 0 print nothing on stdout, their errors still go to stderr. NULL
 * with the error printed. */
Dist *app_open_ranks(void);
/* rows: n images of `fields` doubles, this rank's filled: those of the
 * batches (of B images) b with b mod N == rank. Afterwards every rank holds
 * every image's row (each from the rank that computed it). */
bool app_gather_rows(Dist *d, double *rows, int64_t n, int fields, int64_t B);
/* The same with image i's row taken from rank owner[i]. */
bool app_gather_rows_owned(Dist *d, double *rows, int64_t n, int fields, const int *owner);
/* APP_OK unless the process runs under mpirun with several ranks (a
 * command that does not shard its work: the error is printed). */
int app_single_process(const char *cmd);
/* exec_call; prints the error on a device failure. */
bool app_call(Exec *e, int f, const void *const *inputs, void *const *outputs);

int app_train(const AppCtx *ctx, int argc, char **argv);
int app_eval(const AppCtx *ctx, int argc, char **argv);
int app_consistency(const AppCtx *ctx, int argc, char **argv); /* app_eval.c */
int app_attrib(const AppCtx *ctx, int argc, char **argv);
int app_ig(const AppCtx *ctx, int argc, char **argv);          /* app_attrib.c */
int app_export(const AppCtx *ctx, int argc, char **argv);

double app_setting_num(const Program *p, const char *key, double def);
/* A numeric setting, its default from the settings table (base/settings.h). */
double app_setting(const Program *p, const char *key);
/* Checks the value of flag --name against setting key's type and range;
 * prints "cmd: --name must be ..." and returns false outside it. */
bool app_check_flag(const char *cmd, const char *name, const char *key, double v);
const char *app_setting_str(const Program *p, const char *key, const char *def);

int app_find_input(const PFunc *f, const char *name);
int app_find_output(const PFunc *f, const char *name);

/* The per-image shape [C,H,W] and batch B from the first entry point with a
 * rank-4 f32 input x; false if none. */
bool app_image_shape(const Program *p, int64_t chw[3], int64_t *batch);

/* Loads a split (data set from --data, else setting "data") and checks its
 * shape and labels against the program; prints the error and returns false
 * (the command then exits APP_BADINPUT). */
bool app_load_data(const Program *p, const char *data, bool train, int64_t limit, Dataset *d);

/* malloc'd buffers for every output of f (NULL on out of memory). */
void **app_alloc_outputs(const PFunc *f);
void app_free_outputs(const PFunc *f, void **outs);

/* Stores v into a scalar (or each element of a small vector) buffer of
 * tensor t's dtype. */
void app_store_num(const PTensor *t, void *buf, int64_t index, double v);

/* Checks that function f's input `name` exists with dtype and rank
 * (rank < 0: any); prints an error naming the entry point otherwise. */
bool app_check_input(const PFunc *f, const char *name, PDtype dtype, int rank);

/* Index of the largest of the k logits (f32 or f64), first on ties. */
int app_argmax(const PTensor *logits, const void *data, int64_t row, int64_t k);

/* Monotonic seconds. */
double app_now(void);
/* Creates dir (one level) unless it exists. */
bool app_mkdir(const char *dir);
/* Writes json (printed, then deleted) to path through a temp file and a
 * rename: a reader never sees half a file. Prints the error; false on it. */
bool app_write_json(cJSON *json, const char *path);

#endif
