#include "runtime/checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/safetensors.h"
#include "runtime/rt_error.h"


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

static void shape_str(char *buf, size_t cap, int rank, const int64_t *dims) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < rank && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRId64, d ? "," : "", dims[d]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
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

/* Every parameter present with the program's dtype and shape. */
static bool check_tensors(const char *path, const Program *p, const StFile *f, char *err,
                          size_t errcap) {
    for (int i = 0; i < p->nparams; i++) {
        const PTensor *t = &p->params[i].t;
        const StTensor *s = st_find(f, t->name);
        if (!s)
            return rt_fail(err, errcap, "%s: tensor '%s' is missing (program %s has %d parameters)",
                        path, t->name, p->name, p->nparams);
        if (s->dtype != st_of(t->dtype))
            return rt_fail(err, errcap, "%s: tensor '%s' has dtype %s, the program expects %s", path,
                        t->name, st_dtype_name(s->dtype), st_dtype_name(st_of(t->dtype)));
        bool same = s->rank == t->rank;
        for (int d = 0; same && d < t->rank; d++) same = s->shape[d] == t->dim[d];
        if (!same) {
            char a[160], b[160];
            shape_str(a, sizeof a, s->rank, s->shape);
            shape_str(b, sizeof b, t->rank, t->dim);
            return rt_fail(err, errcap, "%s: tensor '%s' has shape %s, the program expects %s", path,
                        t->name, a, b);
        }
    }
    return true;
}

bool ckpt_load(const char *path, Exec *e, CkptInfo *info, char *err, size_t errcap) {
    const Program *p = exec_program(e);
    StFile f;
    if (!st_read(path, &f, err, errcap)) return false;
    CkptInfo tmp;
    memset(&tmp, 0, sizeof tmp);
    bool ok = read_meta(path, &f, &tmp, err, errcap) && check_tensors(path, p, &f, err, errcap);
    for (int i = 0; ok && i < p->nparams; i++) {
        const StTensor *s = st_find(&f, p->params[i].t.name);
        void *dst = exec_param(e, i);
        if (dst) memcpy(dst, s->data, s->nbytes);
        else ok = rt_fail(err, errcap, "%s: %s", path, exec_error(e));
    }
    if (ok && !exec_params_changed(e)) ok = rt_fail(err, errcap, "%s: %s", path, exec_error(e));
    if (ok && info) *info = tmp;
    st_free(&f);
    return ok;
}
