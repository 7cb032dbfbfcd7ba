/* A Program on any backend (runtime/exec.h), through its table
 * (runtime/backend.h): nothing here knows a device. */
#include "runtime/exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rt_error.h"

struct Exec {
    const Backend *be;
    BackendRun *run;
    const Program *p;
    void **host;  /* host copies of the parameters a device holds, made on demand */
    bool *fresh;  /* host[i] is as current as the device's */
    char desc[320];
    char err[2048];
};

Exec *exec_new(const Program *p, const BackendCode *c, const char *backend, int threads,
               uint32_t seed, char *err, size_t errcap) {
    const Backend *be = backend_find(backend);
    if (!be) return rt_fail(err, errcap, "no backend '%s' (%s)", backend, backend_names()), NULL;
    if (!backend_check_code(be, p, c, err, errcap)) return NULL;
    Exec *e = calloc(1, sizeof *e);
    if (e) {
        e->be = be, e->p = p;
        e->host = calloc((size_t)p->nparams + 1, sizeof *e->host);
        e->fresh = calloc((size_t)p->nparams + 1, sizeof *e->fresh);
    }
    if (!e || !e->host || !e->fresh) {
        exec_free(e);
        return rt_fail(err, errcap, "out of memory"), NULL;
    }
    if (!(e->run = be->load(p, c, threads, seed, err, errcap))) {
        exec_free(e);
        return NULL;
    }
    be->describe(e->run, e->desc, sizeof e->desc);
    return e;
}

void exec_free(Exec *e) {
    if (!e) return;
    if (e->run) e->be->free(e->run);
    for (int i = 0; e->host && i < e->p->nparams; i++) free(e->host[i]);
    free(e->host);
    free(e->fresh);
    free(e);
}

const Backend *exec_backend(const Exec *e) { return e->be; }
const Program *exec_program(const Exec *e) { return e->p; }
const char *exec_error(const Exec *e) { return e->err; }
const char *exec_describe(const Exec *e) { return e->desc; }
int64_t exec_memory_bytes(const Exec *e) { return e->be->memory_bytes(e->run); }

bool exec_call(Exec *e, int f, const void *const *inputs, void *const *outputs) {
    if (f < 0 || f >= e->p->nfuncs) return rt_fail(e->err, sizeof e->err, "no function %d", f);
    if (!e->be->call(e->run, f, inputs, outputs, e->err, sizeof e->err)) return false;
    /* Any parameter may have been written (bound outputs, steps into p<i>). */
    memset(e->fresh, 0, (size_t)e->p->nparams * sizeof *e->fresh);
    return true;
}

bool exec_keep_on_device(Exec *e, int f, bool input, int k, uint64_t *addr) {
    *addr = 0;
    if (f < 0 || f >= e->p->nfuncs || k < 0 || k >= (input ? e->p->funcs[f].ninputs : e->p->funcs[f].noutputs))
        return rt_fail(e->err, sizeof e->err, "no %s %d of function %d", input ? "input" : "output", k, f);
    return !e->be->keep_on_device || e->be->keep_on_device(e->run, f, input, k, addr, e->err, sizeof e->err);
}

void *exec_stream(Exec *e) { return e->be->stream ? e->be->stream(e->run) : NULL; }

bool exec_set_collectives(Exec *e, const PCollectives *c) {
    if (!e->be->set_collectives) return false;
    e->be->set_collectives(e->run, c);
    return true;
}

bool exec_bind_param_output(Exec *e, int f, int out, int param) {
    const Program *p = e->p;
    if (f < 0 || f >= p->nfuncs || out < 0 || out >= p->funcs[f].noutputs || param < 0 ||
        param >= p->nparams ||
        ptensor_bytes(&p->funcs[f].outputs[out]) != ptensor_bytes(&p->params[param].t))
        return rt_fail(e->err, sizeof e->err, "cannot bind output %d of function %d to "
                                              "parameter %d", out, f, param);
    return e->be->bind(e->run, f, out, param, e->err, sizeof e->err);
}

/* Parameter i's host view without fetching it: the backend's own storage,
 * else exec's copy (allocated the first time). */
static void *host_view(Exec *e, int i) {
    void *h = e->be->param_host(e->run, i);
    if (h || e->host[i]) return h ? h : e->host[i];
    size_t b = ptensor_bytes(&e->p->params[i].t);
    if (!(e->host[i] = calloc(1, b ? b : 1))) rt_fail(e->err, sizeof e->err, "out of memory");
    return e->host[i];
}

void *exec_param(Exec *e, int i) {
    if (i < 0 || i >= e->p->nparams) return NULL;
    void *h = host_view(e, i);
    if (!h || h != e->host[i] || e->fresh[i]) return h;
    if (!e->be->param_get(e->run, i, h, e->err, sizeof e->err)) return NULL;
    e->fresh[i] = true;
    return h;
}

/* Only host copies that are current can have been edited (exec_param
 * refreshes before it hands one out); stale ones would overwrite newer
 * device values. */
bool exec_params_changed(Exec *e) {
    for (int i = 0; i < e->p->nparams; i++)
        if (e->host[i] && e->fresh[i] &&
            !e->be->param_set(e->run, i, e->host[i], e->err, sizeof e->err))
            return false;
    return true;
}

bool exec_init_params(Exec *e, uint32_t seed) {
    for (int i = 0; i < e->p->nparams; i++) {
        void *h = host_view(e, i);
        if (!h || !program_init_param(&e->p->params[i], h, seed))
            return rt_fail(e->err, sizeof e->err, "out of memory");
        if (h == e->host[i]) e->fresh[i] = true;
    }
    return exec_params_changed(e);
}
