/* Frontend internals shared by its files: the merged document and error
 * helpers that name the file and JSON path. */
#ifndef IGRC_FRONTEND_INTERNAL_H
#define IGRC_FRONTEND_INTERNAL_H

#include <cjson/cJSON.h>

#include "frontend/frontend.h"
#include "ir/builder.h"

/* Key under which merging records the file a network or block came from. */
#define DOC_FILE_KEY "__file__"
#define DOC_ORIGIN_KEY "__origin__"

/* Loads path and its includes into one object (caller deletes it). */
cJSON *doc_load(const char *path, Diag *d);
/* Applies -D key=value overrides to the merged document. */
bool doc_apply_defines(cJSON *doc, const char *root_file, const char *const *defs, int n, Diag *d);
/* The file an object was defined in (DOC_FILE_KEY), else fallback. */
const char *doc_file_of(const cJSON *obj, const char *fallback);
/* Where the merged document's setting `jpath` ("train.lr", "inputs.x",
 * "batch") was given: the file (an include's) or "ROOT (-D key=value)"; fallback
 * when unrecorded. Overridable sections keep this per key (DOC_ORIGIN_KEY). */
const char *doc_origin(const cJSON *doc, const char *jpath, const char *fallback);

/* "file: path: message", exit class EXIT_BADINPUT; returns false. */
bool ferr(Diag *d, const char *file, const char *jpath, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Names (frontend/names.c): 1 to 128 characters of A-Z a-z 0-9 _ . : - */
bool frontend_name_ok(const char *s);
/* Checks every name the merged document gives: the model's, the inputs',
 * networks', blocks', losses' and every node id. */
bool frontend_check_names(const cJSON *doc, const char *root_file, Diag *d);

/* Checks that obj has only keys from the NULL-terminated list. */
bool check_keys(Diag *d, const char *file, const char *jpath, const cJSON *obj,
                const char *const *allowed);

/* Every value and parameter a graph file makes has at most this many
 * elements, so element counts (and sums of them) never overflow int64. */
#define FRONTEND_MAX_NUMEL ((int64_t)1 << 40)
/* type_numel(t) <= FRONTEND_MAX_NUMEL, computed without overflow. */
bool frontend_size_ok(const Type *t);

/* Running-statistics updates made by training-mode batch norms, in order;
 * a later update of the same statistic starts from the earlier one. */
typedef struct {
    const char **names; /* parameter names, e.g. bn1.running_mean */
    int *values;
    int n, cap;
} StatUpdates;

/* The inputs (pre-activations) of every ReLU a network call emits, in
 * emission order. */
typedef struct {
    int *values;
    int n, cap;
} ReluTaps;

/* Lowering of networks (frontend/net.c). */
typedef struct {
    Builder *b;
    const cJSON *doc;     /* merged document */
    const char *root_file;
    bool training;        /* batch-norm statistics and dropout */
    int rng_key;          /* i32[2] value for dropout masks, -1 if none */
    bool notes;           /* record graph nodes (module_note) */
    int bn_groups;        /* batch-norm statistics per group of rows (IG path points) */
    int bn_ranks;         /* > 1: training statistics over that many data-parallel ranks (train.sync_bn) */
    const char *value_prefix; /* names this network call's values ("z_adv"), or NULL */
    StatUpdates *stat_updates; /* training mode: collect running-statistics updates */
    bool smooth_relu;     /* every ReLU emitted as softplus (beta 1): the IFIA surrogate */
    ReluTaps *relu_taps;  /* if set, collects every ReLU's input (activation consistency) */
    /* Set by net_emit for one emission: */
    StrMap *made;         /* parameter names made so far */
    int depth;            /* nesting of emit() */
} NetEnv;

/* Emits network `name` applied to value x; returns its output value id. */
int net_emit(NetEnv *env, const char *name, int x);

#endif
