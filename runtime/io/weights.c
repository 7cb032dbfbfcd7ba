#include "runtime/io/weights.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/rt_error.h"

#define OPTIM_PREFIX "optim."
#define BN_COUNTER ".num_batches_tracked"

bool weights_is_optim(const char *name, bool trainable) {
    return !trainable && !strncmp(name, OPTIM_PREFIX, strlen(OPTIM_PREFIX));
}

static void shape_str(char *buf, size_t cap, int rank, const int64_t *dims) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < rank && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRId64, d ? "," : "", dims[d]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

static bool same_shape(const StTensor *s, const WeightsParam *p) {
    if (s->rank != p->rank) return false;
    for (int d = 0; d < p->rank; d++)
        if (s->shape[d] != p->dim[d]) return false;
    return true;
}

/* s's values in p's dtype into m->data[i]: the file's bytes when the dtypes
 * agree, else a converted copy (floats only). */
static bool take(const char *path, const StTensor *s, const WeightsParam *p, WeightsMatch *m,
                 int i, char *err, size_t errcap) {
    bool sf = st_dtype_is_float(s->dtype), pf = st_dtype_is_float(p->dtype);
    if (s->dtype != p->dtype && (!sf || !pf))
        return rt_fail(err, errcap, "%s: tensor '%s' has dtype %s, the program expects %s%s", path,
                       p->name, st_dtype_name(s->dtype), st_dtype_name(p->dtype),
                       sf != pf ? (pf ? " (a float type)" : " (an integer type)") : "");
    if (!same_shape(s, p)) {
        char a[160], b[160];
        shape_str(a, sizeof a, s->rank, s->shape);
        shape_str(b, sizeof b, p->rank, p->dim);
        return rt_fail(err, errcap, "%s: tensor '%s' has shape %s, the program expects %s", path,
                       p->name, a, b);
    }
    if (s->dtype == p->dtype) {
        m->data[i] = s->data;
        return true;
    }
    size_t numel = s->nbytes / st_dtype_size(s->dtype);
    void *dst = malloc(numel * st_dtype_size(p->dtype) + 1);
    if (!dst) return rt_fail(err, errcap, "%s: tensor '%s': out of memory", path, p->name);
    char why[256];
    if (!st_convert_float(s, p->dtype, dst, why, sizeof why)) {
        free(dst);
        return rt_fail(err, errcap, "%s: %s", path, why);
    }
    m->data[i] = dst, m->owned[i] = true;
    return true;
}

static bool match_one(const char *path, const char *program, const StFile *f,
                      const WeightsParam *p, int n, WeightsMode mode, WeightsMatch *m, int i,
                      char *err, size_t errcap) {
    const StTensor *s = st_find(f, p->name);
    if (p->optim && mode != WEIGHTS_ALL && (!s || mode == WEIGHTS_FRESH)) {
        m->zero_filled++;
        m->ignored += s != NULL;
        return true;
    }
    if (!s && p->optim)
        return rt_fail(err, errcap, "%s: optimiser state tensor '%s' is missing (resuming needs "
                       "every parameter of program %s, the optimiser state included)",
                       path, p->name, program);
    if (!s)
        return rt_fail(err, errcap, "%s: tensor '%s' is missing (program %s has %d parameters)",
                       path, p->name, program, n);
    return take(path, s, p, m, i, err, errcap);
}

static int find_param(const WeightsParam *ps, int n, const char *name, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(ps[i].name) == len && !strncmp(ps[i].name, name, len)) return i;
    return -1;
}

/* PyTorch's counter of a batch norm whose running mean is a parameter. */
static bool is_bn_counter(const WeightsParam *ps, int n, const char *name) {
    size_t len = strlen(name), cl = strlen(BN_COUNTER);
    if (len <= cl || strcmp(name + len - cl, BN_COUNTER)) return false;
    char mean[512];
    int k = snprintf(mean, sizeof mean, "%.*s.running_mean", (int)(len - cl), name);
    return k > 0 && (size_t)k < sizeof mean && find_param(ps, n, mean, (size_t)k) >= 0;
}

/* Lists the file's tensors that are no parameter, as many names as fit. */
static void list_extra(const StFile *f, const WeightsParam *ps, int n, WeightsMatch *m) {
    size_t used = 0, cap = sizeof m->extra_names - 32; /* room for ", ... (N more)" */
    int listed = 0;
    for (int t = 0; t < f->n; t++) {
        const char *name = f->tensors[t].name;
        if (find_param(ps, n, name, strlen(name)) >= 0 || is_bn_counter(ps, n, name)) continue;
        m->extra++;
        if (used + strlen(name) + 2 >= cap) continue;
        used += (size_t)snprintf(m->extra_names + used, cap - used, "%s%s", listed ? ", " : "",
                                 name);
        listed++;
    }
    if (listed < m->extra)
        snprintf(m->extra_names + used, sizeof m->extra_names - used, "%s... (%d more)",
                 listed ? ", " : "", m->extra - listed);
}

bool weights_match(const char *path, const char *program, const StFile *f,
                   const WeightsParam *ps, int n, WeightsMode mode, WeightsMatch *m, char *err,
                   size_t errcap) {
    memset(m, 0, sizeof *m);
    m->data = calloc((size_t)n + 1, sizeof *m->data);
    m->owned = calloc((size_t)n + 1, sizeof *m->owned);
    m->n = n;
    if (!m->data || !m->owned) {
        weights_match_free(m);
        return rt_fail(err, errcap, "%s: out of memory", path);
    }
    for (int i = 0; i < n; i++)
        if (!match_one(path, program, f, &ps[i], n, mode, m, i, err, errcap)) {
            weights_match_free(m);
            return false;
        }
    list_extra(f, ps, n, m);
    return true;
}

void weights_match_free(WeightsMatch *m) {
    for (int i = 0; m->owned && i < m->n; i++)
        if (m->owned[i]) free((void *)m->data[i]);
    free(m->data);
    free(m->owned);
    memset(m, 0, sizeof *m);
}

static const char *plural(int n) { return n == 1 ? "" : "s"; }

void weights_notes(const WeightsMatch *m, const char *path, const char *prefix, FILE *out) {
    if (!out) return;
    if (m->ignored)
        fprintf(out, "%s%s: %d optimiser tensor%s (optim.*) set to zero, the file's %d not "
                     "loaded: a fresh optimiser state\n",
                prefix, path, m->zero_filled, plural(m->zero_filled), m->ignored);
    else if (m->zero_filled)
        fprintf(out, "%s%s: %d optimiser tensor%s (optim.*) not in the file: zero-filled\n",
                prefix, path, m->zero_filled, plural(m->zero_filled));
    if (m->extra)
        fprintf(out, "%s%s: %d tensor%s of the file not in the program, ignored: %s\n", prefix,
                path, m->extra, plural(m->extra), m->extra_names);
}
