/* The CPU backend (runtime/backend.h): the program's kernels from the host
 * kernel table, run by the runner (runtime/cpu/runner.h) in host memory, so
 * parameters need no copies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rt_error.h"
#include "runtime/backend.h"
#include "runtime/cpu/runner.h"

typedef struct {
    int f, out, param;
} CpuBind;

struct BackendRun {
    Runner *r;
    const Program *p;
    CpuBind *binds;
    int nbinds;
};

/* A library-only program runs without kernels; an executable with only
 * device kernels does not run here. */
static bool cpu_has_code(const Program *p, const BackendCode *c) {
    bool images = false;
    for (int i = 0; i < c->nimages; i++)
        images = images || (c->images[i].data && c->images[i].size > 0);
    return c->nkernels > 0 || !images || !program_has_kernels(p);
}

static int cpu_kernel_count(const BackendCode *c) { return c->kernels ? c->nkernels : 0; }

static BackendRun *cpu_load(const Program *p, const BackendCode *c, int threads, uint32_t seed,
                            char *err, size_t errcap) {
    BackendRun *b = calloc(1, sizeof *b);
    if (!b) return rt_fail(err, errcap, "out of memory"), NULL;
    b->p = p;
    if (!(b->r = runner_new(p, c->kernels, c->nkernels, threads, seed, err, errcap))) {
        free(b);
        return NULL;
    }
    return b;
}

static void cpu_free(BackendRun *b) {
    if (!b) return;
    runner_free(b->r);
    free(b->binds);
    free(b);
}

/* Bound outputs are returned and copied into their parameters. */
static bool cpu_call(BackendRun *b, int f, const void *const *inputs, void *const *outputs,
                     char *err, size_t errcap) {
    (void)err, (void)errcap;
    runner_call(b->r, f, inputs, outputs);
    for (int k = 0; k < b->nbinds; k++) {
        const CpuBind *x = &b->binds[k];
        if (x->f == f)
            memcpy(runner_param(b->r, x->param), outputs[x->out],
                   ptensor_bytes(&b->p->funcs[f].outputs[x->out]));
    }
    return true;
}

static bool cpu_bind(BackendRun *b, int f, int out, int param, char *err, size_t errcap) {
    CpuBind *nb = realloc(b->binds, (size_t)(b->nbinds + 1) * sizeof *nb);
    if (!nb) return rt_fail(err, errcap, "out of memory");
    b->binds = nb;
    b->binds[b->nbinds++] = (CpuBind){f, out, param};
    return true;
}

static void *cpu_param_host(BackendRun *b, int i) { return runner_param(b->r, i); }

static bool cpu_param_get(BackendRun *b, int i, void *dst, char *err, size_t errcap) {
    (void)err, (void)errcap;
    memcpy(dst, runner_param(b->r, i), ptensor_bytes(&b->p->params[i].t));
    return true;
}

static bool cpu_param_set(BackendRun *b, int i, const void *src, char *err, size_t errcap) {
    (void)err, (void)errcap;
    memcpy(runner_param(b->r, i), src, ptensor_bytes(&b->p->params[i].t));
    return true;
}

static void cpu_set_collectives(BackendRun *b, const PCollectives *c) { runner_set_collectives(b->r, c); }

static int64_t cpu_memory_bytes(const BackendRun *b) { return runner_memory_bytes(b->r); }

static void cpu_describe(const BackendRun *b, char *buf, size_t cap) {
    snprintf(buf, cap, "cpu, %d threads", tp_size(runner_pool(b->r)));
}

const Backend backend_cpu = {
    .name = "cpu",
    .host_memory = true,
    .has_code = cpu_has_code,
    .kernel_count = cpu_kernel_count,
    .load = cpu_load,
    .free = cpu_free,
    .call = cpu_call,
    .bind = cpu_bind,
    .param_host = cpu_param_host,
    .param_get = cpu_param_get,
    .param_set = cpu_param_set,
    .set_collectives = cpu_set_collectives,
    .memory_bytes = cpu_memory_bytes,
    .describe = cpu_describe,
};
