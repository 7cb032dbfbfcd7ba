/* The CPU/CUDA execution interface (runtime/exec.h). */
#include "runtime/exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rt_error.h"
#include "runtime/cuda/cuda_runner.h"

typedef struct {
    int f, out, param;
} ExecBind;

struct Exec {
    ExecDevice dev;
    const Program *p;
    Runner *cpu;
    CudaRunner *cuda;
    void **host;  /* CUDA: host copies of the parameters */
    bool *stale;  /* CUDA: the device copy may be newer */
    ExecBind *binds;
    int nbinds;
    char desc[320];
    char err[2048];
};

bool exec_device_from_name(const char *name, ExecDevice *dev) {
    if (!strcmp(name, "cpu")) return *dev = EXEC_CPU, true;
    if (!strcmp(name, "cuda")) return *dev = EXEC_CUDA, true;
    return false;
}

const char *exec_device_name(ExecDevice dev) { return dev == EXEC_CUDA ? "cuda" : "cpu"; }

static bool host_params(Exec *e, uint32_t seed) {
    const Program *p = e->p;
    for (int i = 0; i < p->nparams; i++) {
        if (!e->host[i]) {
            size_t b = ptensor_bytes(&p->params[i].t);
            if (!(e->host[i] = calloc(1, b ? b : 1))) return false;
        }
        if (!program_init_param(&p->params[i], e->host[i], seed)) return false;
        e->stale[i] = false;
    }
    return true;
}

static bool new_cuda(Exec *e, const void *image, int64_t size, uint32_t seed, char *err,
                     size_t cap) {
    if (!image || size <= 0)
        return rt_fail(err, cap, "this executable was compiled without --target cuda: it runs "
                                 "only with --device cpu");
    const Program *p = e->p;
    e->host = calloc((size_t)p->nparams + 1, sizeof *e->host);
    e->stale = calloc((size_t)p->nparams + 1, sizeof *e->stale);
    if (!e->host || !e->stale || !host_params(e, seed))
        return rt_fail(err, cap, "out of memory initialising parameters");
    e->cuda = cuda_runner_new(p, image, (size_t)size, e->host, err, cap);
    if (!e->cuda) return false;
    snprintf(e->desc, sizeof e->desc, "cuda: %s", cuda_runner_describe(e->cuda));
    return true;
}

static bool has_kernel_steps(const Program *p) {
    for (int f = 0; f < p->nfuncs; f++)
        for (int s = 0; s < p->funcs[f].nsteps; s++)
            if (p->funcs[f].steps[s].kind == PS_KERNEL) return true;
    return false;
}

Exec *exec_new(const Program *p, const PKernelFn *kernels, int nkernels, const void *cuda_image,
               int64_t cuda_image_size, ExecDevice dev, int threads, uint32_t seed, char *err,
               size_t errcap) {
    Exec *e = calloc(1, sizeof *e);
    if (!e) return rt_fail(err, errcap, "out of memory"), NULL;
    e->dev = dev, e->p = p;
    bool ok;
    if (dev == EXEC_CUDA) {
        ok = new_cuda(e, cuda_image, cuda_image_size, seed, err, errcap);
    } else if (nkernels == 0 && cuda_image && has_kernel_steps(p)) {
        ok = rt_fail(err, errcap, "this executable holds only CUDA kernels: run it with "
                                  "--device cuda");
    } else {
        ok = (e->cpu = runner_new(p, kernels, nkernels, threads, seed, err, errcap)) != NULL;
        if (ok)
            snprintf(e->desc, sizeof e->desc, "cpu, %d threads", tp_size(runner_pool(e->cpu)));
    }
    if (!ok) {
        exec_free(e);
        return NULL;
    }
    return e;
}

void exec_free(Exec *e) {
    if (!e) return;
    runner_free(e->cpu);
    cuda_runner_free(e->cuda);
    for (int i = 0; e->host && i < e->p->nparams; i++) free(e->host[i]);
    free(e->host);
    free(e->stale);
    free(e->binds);
    free(e);
}

ExecDevice exec_device(const Exec *e) { return e->dev; }
const Program *exec_program(const Exec *e) { return e->p; }
Runner *exec_runner(Exec *e) { return e->cpu; }
const char *exec_error(const Exec *e) { return e->err; }
const char *exec_describe(const Exec *e) { return e->desc; }

bool exec_call(Exec *e, int f, const void *const *inputs, void *const *outputs) {
    if (f < 0 || f >= e->p->nfuncs) return rt_fail(e->err, sizeof e->err, "no function %d", f);
    if (e->cpu) {
        runner_call(e->cpu, f, inputs, outputs);
        for (int b = 0; b < e->nbinds; b++)
            if (e->binds[b].f == f)
                memcpy(runner_param(e->cpu, e->binds[b].param), outputs[e->binds[b].out],
                       ptensor_bytes(&e->p->funcs[f].outputs[e->binds[b].out]));
        return true;
    }
    if (!cuda_runner_call(e->cuda, f, inputs, outputs, e->err, sizeof e->err)) return false;
    /* Any parameter may have been written (bound outputs, steps into p<i>). */
    for (int i = 0; i < e->p->nparams; i++) e->stale[i] = true;
    return true;
}

bool exec_bind_param_output(Exec *e, int f, int out, int param) {
    const Program *p = e->p;
    if (f < 0 || f >= p->nfuncs || out < 0 || out >= p->funcs[f].noutputs || param < 0 ||
        param >= p->nparams ||
        ptensor_bytes(&p->funcs[f].outputs[out]) != ptensor_bytes(&p->params[param].t))
        return rt_fail(e->err, sizeof e->err, "cannot bind output %d of function %d to "
                                              "parameter %d", out, f, param);
    if (e->cuda) return cuda_runner_bind(e->cuda, f, out, param, e->err, sizeof e->err);
    ExecBind *nb = realloc(e->binds, (size_t)(e->nbinds + 1) * sizeof *nb);
    if (!nb) return rt_fail(e->err, sizeof e->err, "out of memory");
    e->binds = nb;
    e->binds[e->nbinds++] = (ExecBind){f, out, param};
    return true;
}

void *exec_param(Exec *e, int i) {
    if (i < 0 || i >= e->p->nparams) return NULL;
    if (e->cpu) return runner_param(e->cpu, i);
    if (e->stale[i]) {
        if (!cuda_runner_get_param(e->cuda, i, e->host[i], e->err, sizeof e->err)) return NULL;
        e->stale[i] = false;
    }
    return e->host[i];
}

/* Only host copies that are current can have been edited (exec_param
 * refreshes before it hands one out); stale ones would overwrite newer
 * device values. */
bool exec_params_changed(Exec *e) {
    if (e->cpu) return true;
    for (int i = 0; i < e->p->nparams; i++)
        if (!e->stale[i] &&
            !cuda_runner_set_param(e->cuda, i, e->host[i], e->err, sizeof e->err))
            return false;
    return true;
}

bool exec_init_params(Exec *e, uint32_t seed) {
    if (e->cpu) {
        runner_init_params(e->cpu, seed);
        return true;
    }
    if (!host_params(e, seed)) return rt_fail(e->err, sizeof e->err, "out of memory");
    return exec_params_changed(e);
}

int64_t exec_memory_bytes(const Exec *e) {
    return e->cpu ? runner_memory_bytes(e->cpu) : cuda_runner_memory_bytes(e->cuda);
}
