#include "runtime/io/checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rt_error.h"
#include "runtime/io/safetensors.h"


static StDtype st_of(PDtype t) {
    switch (t) {
    case PD_F32: return ST_F32;
    case PD_F64: return ST_F64;
    case PD_I32: return ST_I32;
    case PD_I64: return ST_I64;
    case PD_BOOL: return ST_BOOL;
    }
    return ST_F32;
}

enum { META_PROGRAM, META_DATA, META_EPOCH, META_BATCH, META_STEP, META_SEED, META_BPE,
       META_NTRAIN, META_COUNT };
static const char *const meta_keys[META_COUNT] = {
    "program", "data", "epoch", "batch", "step", "seed", "batches_per_epoch", "train_images"};

bool ckpt_save(const char *path, Exec *e, const CkptInfo *info, char *err, size_t errcap) {
    const Program *p = exec_program(e);
    StTensor *ts = calloc((size_t)p->nparams + 1, sizeof *ts);
    if (!ts) return rt_fail(err, errcap, "%s: out of memory", path);
    for (int i = 0; i < p->nparams; i++) {
        const PTensor *t = &p->params[i].t;
        ts[i].name = t->name;
        ts[i].dtype = st_of(t->dtype);
        ts[i].rank = t->rank;
        for (int d = 0; d < t->rank; d++) ts[i].shape[d] = t->dim[d];
        ts[i].data = exec_param(e, i);
        if (!ts[i].data) {
            free(ts);
            return rt_fail(err, errcap, "%s: %s", path, exec_error(e));
        }
        ts[i].nbytes = ptensor_bytes(t);
    }
    char num[6][32];
    snprintf(num[0], 32, "%" PRId64, info->epoch);
    snprintf(num[1], 32, "%" PRId64, info->batch);
    snprintf(num[2], 32, "%" PRId64, info->step);
    snprintf(num[3], 32, "%" PRIu32, info->seed);
    snprintf(num[4], 32, "%" PRId64, info->batches_per_epoch);
    snprintf(num[5], 32, "%" PRId64, info->train_images);
    StMeta meta[META_COUNT] = {
        {(char *)meta_keys[META_PROGRAM], (char *)(info->program[0] ? info->program : p->name)},
        {(char *)meta_keys[META_DATA], (char *)info->data},
        {(char *)meta_keys[META_EPOCH], num[0]},
        {(char *)meta_keys[META_BATCH], num[1]},
        {(char *)meta_keys[META_STEP], num[2]},
        {(char *)meta_keys[META_SEED], num[3]},
        {(char *)meta_keys[META_BPE], num[4]},
        {(char *)meta_keys[META_NTRAIN], num[5]},
    };
    bool ok = st_write(path, ts, p->nparams, meta, META_COUNT, err, errcap);
    free(ts);
    return ok;
}

/* "<bn>.num_batches_tracked" when parameter i is a batch norm's running
 * variance (its running_mean a parameter too), else "": PyTorch keeps the
 * counter after the two. */
static void bn_counter_name(const Program *p, int i, char *buf, size_t cap) {
    const char *name = p->params[i].t.name, *suf = ".running_var";
    size_t len = strlen(name), sl = strlen(suf);
    buf[0] = 0;
    if (p->params[i].trainable || len <= sl || strcmp(name + len - sl, suf)) return;
    char mean[512];
    snprintf(mean, sizeof mean, "%.*s.running_mean", (int)(len - sl), name);
    if (program_find_param(p, mean) >= 0)
        snprintf(buf, cap, "%.*s.num_batches_tracked", (int)(len - sl), name);
}

bool ckpt_export(const char *path, Exec *e, const CkptInfo *info, char *err, size_t errcap) {
    const Program *p = exec_program(e);
    StTensor *ts = calloc(2 * (size_t)p->nparams + 1, sizeof *ts);
    char (*counters)[512] = calloc((size_t)p->nparams + 1, sizeof *counters);
    int64_t steps = info->step;
    int n = 0;
    bool ok = ts && counters ? true : rt_fail(err, errcap, "%s: out of memory", path);
    for (int i = 0; ok && i < p->nparams; i++) {
        const PTensor *t = &p->params[i].t;
        if (weights_is_optim(t->name, p->params[i].trainable)) continue;
        ts[n] = (StTensor){.name = t->name, .dtype = st_of(t->dtype), .rank = t->rank,
                           .data = exec_param(e, i), .nbytes = ptensor_bytes(t)};
        for (int d = 0; d < t->rank; d++) ts[n].shape[d] = t->dim[d];
        if (!ts[n++].data) ok = rt_fail(err, errcap, "%s: %s", path, exec_error(e));
        bn_counter_name(p, i, counters[i], sizeof counters[i]);
        if (counters[i][0])
            ts[n++] = (StTensor){.name = counters[i], .dtype = ST_I64, .rank = 0, .data = &steps,
                                 .nbytes = sizeof steps};
    }
    char step[32];
    snprintf(step, sizeof step, "%" PRId64, info->step);
    StMeta meta[] = {{"format", "pt"},
                     {(char *)meta_keys[META_PROGRAM], p->name},
                     {(char *)meta_keys[META_STEP], step}};
    ok = ok && st_write(path, ts, n, meta, 3, err, errcap);
    free(counters);
    free(ts);
    return ok;
}

/* A non-negative decimal integer metadata value. */
static bool meta_int(const char *path, const char *key, const char *v, int64_t max,
                     int64_t *out, char *err, size_t errcap) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < 0 || x > max)
        return rt_fail(err, errcap, "%s: metadata '%s' = \"%s\" is not an integer in [0, %" PRId64 "]",
                    path, key, v, max);
    *out = x;
    return true;
}

static bool read_meta(const char *path, const StFile *f, CkptInfo *info, char *err,
                      size_t errcap) {
    int found = 0;
    for (int m = 0; m < f->nmeta; m++) {
        const char *k = f->meta[m].key, *v = f->meta[m].value;
        int64_t x = 0;
        int which = -1;
        for (int j = 0; j < META_COUNT; j++)
            if (!strcmp(k, meta_keys[j])) which = j;
        switch (which) {
        case META_PROGRAM: snprintf(info->program, sizeof info->program, "%s", v); break;
        case META_DATA: snprintf(info->data, sizeof info->data, "%s", v); break;
        case META_SEED:
            if (!meta_int(path, k, v, UINT32_MAX, &x, err, errcap)) return false;
            info->seed = (uint32_t)x;
            found |= 1 << which;
            break;
        case META_EPOCH: case META_BATCH: case META_STEP: case META_BPE: case META_NTRAIN:
            if (!meta_int(path, k, v, INT64_MAX / 2, &x, err, errcap)) return false;
            if (which == META_EPOCH) info->epoch = x;
            if (which == META_BATCH) info->batch = x;
            if (which == META_STEP) info->step = x;
            if (which == META_BPE) info->batches_per_epoch = x;
            if (which == META_NTRAIN) info->train_images = x;
            found |= 1 << which;
            break;
        default: break; /* other writers' keys */
        }
    }
    int need = 1 << META_EPOCH | 1 << META_BATCH | 1 << META_STEP | 1 << META_SEED;
    info->has_position = (found & need) == need;
    return true;
}

/* The program's parameters as the weights matcher sees them. */
static WeightsParam *weights_params(const Program *p) {
    WeightsParam *ps = calloc((size_t)p->nparams + 1, sizeof *ps);
    for (int i = 0; ps && i < p->nparams; i++) {
        const PParam *pp = &p->params[i];
        ps[i] = (WeightsParam){pp->t.name, st_of(pp->t.dtype), pp->t.rank, pp->t.dim,
                               weights_is_optim(pp->t.name, pp->trainable)};
    }
    return ps;
}

/* Writes the matched values (zeros where m has none) into e's parameters. */
static bool apply(const char *path, Exec *e, const WeightsMatch *m, char *err, size_t errcap) {
    const Program *p = exec_program(e);
    for (int i = 0; i < p->nparams; i++) {
        void *dst = exec_param(e, i);
        if (!dst) return rt_fail(err, errcap, "%s: %s", path, exec_error(e));
        size_t n = ptensor_bytes(&p->params[i].t);
        if (m->data[i]) memcpy(dst, m->data[i], n);
        else memset(dst, 0, n);
    }
    if (!exec_params_changed(e)) return rt_fail(err, errcap, "%s: %s", path, exec_error(e));
    return true;
}

bool ckpt_load(const char *path, Exec *e, WeightsMode mode, CkptInfo *info, FILE *notes,
               char *err, size_t errcap) {
    const Program *p = exec_program(e);
    StFile f;
    if (!st_read(path, &f, err, errcap)) return false;
    CkptInfo tmp;
    memset(&tmp, 0, sizeof tmp);
    WeightsParam *ps = weights_params(p);
    WeightsMatch m;
    memset(&m, 0, sizeof m);
    bool ok = ps ? true : rt_fail(err, errcap, "%s: out of memory", path);
    ok = ok && read_meta(path, &f, &tmp, err, errcap) &&
         weights_match(path, p->name, &f, ps, p->nparams, mode, &m, err, errcap) &&
         apply(path, e, &m, err, errcap);
    if (ok) weights_notes(&m, path, "note: ", notes);
    if (ok && info) *info = tmp;
    weights_match_free(&m);
    free(ps);
    st_free(&f);
    return ok;
}
