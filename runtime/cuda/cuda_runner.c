/* The CUDA program executor (runtime/cuda/cuda_runner.h). */
#include "runtime/cuda/cuda_runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rt_error.h"
#include "runtime/cuda/cuda_driver.h"
#include "runtime/cuda/cuda_plan.h"


/* One operation, resolved: the function and its parameter array point into
 * this record, which never moves once built. */
typedef struct {
    CUfunction fn;
    CUdeviceptr *ptrs;  /* kernel: naddr; lib: 4 */
    void **params;      /* what cuLaunchKernel receives */
    long long be[2];    /* kernel: begin, end */
    IgrcLibArgs args;
    CUdeviceptr dst, src;
    size_t bytes;
} Launch;

typedef struct {
    bool built;           /* io, staging, ops resolved for the current bindings */
    CUdeviceptr io;       /* inputs then outputs (cuda_io_layout) */
    unsigned char *pinned;
    int64_t io_bytes, *in_off, *out_off;
    CudaBind *binds;
    int nbinds;
    bool *keep_in, *keep_out; /* left on the device: neither staged nor returned */
    CudaOpList ops;
    Launch *launches;
    uint64_t gen, graph_gen; /* bindings' generation; the graph's */
    CUgraphExec graph;
} FuncState;

typedef struct {
    char name[IGRC_CUDA_NAME_MAX];
    CUfunction fn;
} NamedFn;

struct CudaRunner {
    const Program *p;
    CudaDriver d;
    CudaImage img;
    CudaPick pick;
    CudaPlanner pl;
    CudaMemPlan mp;
    CUmodule mod;
    CUstream stream;
    bool graphs;
    CUdeviceptr *params, *consts, scratch;
    CUdeviceptr *arenas, *trips, *carry; /* per func; per slot; per slot */
    FuncState *fs;
    NamedFn *fns;
    int nfns, capfns;
    int64_t dev_now, dev_peak, pinned;
    char desc[256];
};

/* ---- memory ---- */

static bool dev_alloc(CudaRunner *r, CUdeviceptr *ptr, int64_t bytes, const char *what, char *err,
                      size_t cap) {
    *ptr = 0;
    if (bytes <= 0) return true;
    char doing[400];
    snprintf(doing, sizeof doing, "allocating %lld bytes for %s", (long long)bytes, what);
    if (!cudrv_ok(&r->d, r->d.cuMemAlloc(ptr, (size_t)bytes), "cuMemAlloc", doing, err, cap))
        return false;
    r->dev_now += bytes;
    if (r->dev_now > r->dev_peak) r->dev_peak = r->dev_now;
    return true;
}

static void dev_free(CudaRunner *r, CUdeviceptr *ptr, int64_t bytes) {
    if (!*ptr) return;
    r->d.cuMemFree(*ptr);
    *ptr = 0;
    r->dev_now -= bytes;
}

static bool upload(CudaRunner *r, CUdeviceptr dst, const void *src, size_t n, const char *what,
                   char *err, size_t cap) {
    if (!n) return true;
    char doing[256];
    snprintf(doing, sizeof doing, "uploading %s", what);
    return cudrv_ok(&r->d, r->d.cuMemcpyHtoD(dst, src, n), "cuMemcpyHtoD", doing, err, cap);
}

/* ---- construction ---- */

static bool load_module(CudaRunner *r, const void *image, size_t n, const CudaPlanner *pl,
                        char *err, size_t cap) {
    if (!cuda_image_parse(image, n, &r->img, err, cap)) return false;
    if (!cudrv_open(&r->d, err, cap)) return false;
    r->pick = cuda_image_pick(&r->img, r->d.cc_major, r->d.cc_minor);
    if (!cudrv_load_image(&r->d, &r->img, &r->mod, err, cap)) return false;
    if (!pl->kernel_grid || !pl->lib_plan)
        return rt_fail(err, cap, "CUDA: no launch planner (cuda_kernel_grid, cuda_lib_plan) given");
    r->pl = *pl;
    r->pl.opt = r->img.opt;
    return cudrv_ok(&r->d, r->d.cuStreamCreate(&r->stream, CU_STREAM_NON_BLOCKING),
                    "cuStreamCreate", "creating the runner's stream", err, cap);
}

static bool upload_state(CudaRunner *r, void *const *params, char *err, size_t cap) {
    const Program *p = r->p;
    for (int i = 0; i < p->nparams; i++) {
        size_t b = ptensor_bytes(&p->params[i].t);
        if (!dev_alloc(r, &r->params[i], (int64_t)b, p->params[i].t.name, err, cap) ||
            !upload(r, r->params[i], params[i], b, p->params[i].t.name, err, cap))
            return false;
    }
    for (int i = 0; i < p->nconsts; i++) {
        size_t b = ptensor_bytes(&p->consts[i].t);
        if (!dev_alloc(r, &r->consts[i], (int64_t)b, p->consts[i].t.name, err, cap) ||
            !upload(r, r->consts[i], p->consts[i].data, b, p->consts[i].t.name, err, cap))
            return false;
    }
    return dev_alloc(r, &r->scratch, r->mp.scratch, "the library kernels' scratch", err, cap);
}

CudaRunner *cuda_runner_new(const Program *p, const void *image, size_t image_bytes,
                            void *const *params, char *err, size_t errcap) {
    CudaPlanner pl = {cuda_kernel_grid, cuda_lib_plan, {false}};
    return cuda_runner_new_planned(p, image, image_bytes, params, &pl, err, errcap);
}

CudaRunner *cuda_runner_new_planned(const Program *p, const void *image, size_t image_bytes,
                                    void *const *params, const CudaPlanner *pl, char *err,
                                    size_t errcap) {
    CudaRunner *r = calloc(1, sizeof *r);
    if (!r) return rt_fail(err, errcap, "CUDA: out of memory"), NULL;
    r->p = p;
    r->graphs = cuda_graphs_enabled();
    int nslots = cuda_nslots(p);
    r->params = calloc((size_t)p->nparams + 1, sizeof *r->params);
    r->consts = calloc((size_t)p->nconsts + 1, sizeof *r->consts);
    r->arenas = calloc((size_t)p->nfuncs + 1, sizeof *r->arenas);
    r->trips = calloc((size_t)nslots + 1, sizeof *r->trips);
    r->carry = calloc((size_t)nslots + 1, sizeof *r->carry);
    r->fs = calloc((size_t)p->nfuncs + 1, sizeof *r->fs);
    bool ok = r->params && r->consts && r->arenas && r->trips && r->carry && r->fs;
    if (!ok) rt_fail(err, errcap, "CUDA: out of memory");
    ok = ok && load_module(r, image, image_bytes, pl, err, errcap) &&
         cuda_mem_plan(p, &r->pl, &r->mp, err, errcap) && upload_state(r, params, err, errcap);
    if (!ok) {
        cuda_runner_free(r);
        return NULL;
    }
    snprintf(r->desc, sizeof r->desc, "%s (sm_%d%d), %s for %s, graphs %s", r->d.name,
             r->d.cc_major, r->d.cc_minor, r->pick == CUDA_PICK_CUBIN ? "CUBIN" : "PTX (JIT)",
             r->img.arch, r->graphs ? "on" : "off");
    return r;
}

static void release_func(CudaRunner *r, FuncState *fs) {
    if (fs->graph) r->d.cuGraphExecDestroy(fs->graph);
    fs->graph = NULL;
    if (fs->launches)
        for (int i = 0; i < fs->ops.n; i++) {
            free(fs->launches[i].ptrs);
            free(fs->launches[i].params);
        }
    free(fs->launches);
    fs->launches = NULL;
    cuda_ops_free(&fs->ops);
    fs->built = false;
}

/* Teardown ignores the results: after a failed call the context may be
 * unusable and every release would fail again; the failure itself has been
 * reported. */
void cuda_runner_free(CudaRunner *r) {
    if (!r) return;
    const Program *p = r->p;
    if (r->stream) r->d.cuStreamSynchronize(r->stream);
    for (int f = 0; r->fs && f < p->nfuncs; f++) {
        FuncState *fs = &r->fs[f];
        release_func(r, fs);
        dev_free(r, &fs->io, fs->io_bytes);
        if (fs->pinned) r->d.cuMemFreeHost(fs->pinned);
        free(fs->in_off);
        free(fs->out_off);
        free(fs->keep_in);
        free(fs->keep_out);
        free(fs->binds);
    }
    for (int f = 0; r->arenas && r->mp.arena && f < p->nfuncs; f++)
        dev_free(r, &r->arenas[f], r->mp.arena[f]);
    for (int s = 0; r->trips && r->mp.trips && s < r->mp.nslots; s++) {
        dev_free(r, &r->trips[s], r->mp.trips[s]);
        dev_free(r, &r->carry[s], r->mp.carry[s]);
    }
    for (int i = 0; r->params && i < p->nparams; i++)
        dev_free(r, &r->params[i], (int64_t)ptensor_bytes(&p->params[i].t));
    for (int i = 0; r->consts && i < p->nconsts; i++)
        dev_free(r, &r->consts[i], (int64_t)ptensor_bytes(&p->consts[i].t));
    dev_free(r, &r->scratch, r->mp.scratch);
    if (r->stream) r->d.cuStreamDestroy(r->stream);
    if (r->mod) r->d.cuModuleUnload(r->mod);
    cudrv_close(&r->d);
    cuda_mem_plan_free(&r->mp);
    free(r->params);
    free(r->consts);
    free(r->arenas);
    free(r->trips);
    free(r->carry);
    free(r->fs);
    free(r->fns);
    free(r);
}

/* ---- per-function state ---- */

/* Arenas, trip tables (uploaded) and carries of f and its loop bodies. */
static bool alloc_reach(CudaRunner *r, int f, char *err, size_t cap) {
    const Program *p = r->p;
    bool *reach = calloc((size_t)p->nfuncs + 1, 1);
    if (!reach) return rt_fail(err, cap, "CUDA: out of memory");
    cuda_func_reach(p, f, reach);
    bool ok = true;
    for (int g = 0; ok && g < p->nfuncs; g++) {
        if (!reach[g]) continue;
        char what[160];
        snprintf(what, sizeof what, "the arena of %s", p->funcs[g].name);
        if (!r->arenas[g]) ok = dev_alloc(r, &r->arenas[g], r->mp.arena[g], what, err, cap);
        for (int s = 0; ok && s < p->funcs[g].nsteps; s++) {
            int slot = cuda_slot(p, g, s);
            if (!r->mp.trips[slot] || r->trips[slot]) continue;
            const PStep *st = &p->funcs[g].steps[s];
            int32_t *t = malloc((size_t)r->mp.trips[slot]);
            if (!t) ok = rt_fail(err, cap, "CUDA: out of memory");
            for (int64_t k = 0; ok && k < st->domain; k++) t[k] = (int32_t)k;
            snprintf(what, sizeof what, "the loop of %s step %d", p->funcs[g].name, s);
            ok = ok && dev_alloc(r, &r->trips[slot], r->mp.trips[slot], what, err, cap) &&
                 upload(r, r->trips[slot], t, (size_t)(4 * st->domain), what, err, cap) &&
                 dev_alloc(r, &r->carry[slot], r->mp.carry[slot], what, err, cap);
            free(t);
        }
    }
    free(reach);
    return ok;
}

static bool alloc_io(CudaRunner *r, int f, FuncState *fs, char *err, size_t cap) {
    const PFunc *fn = &r->p->funcs[f];
    fs->in_off = calloc((size_t)fn->ninputs + 1, sizeof *fs->in_off);
    fs->out_off = calloc((size_t)fn->noutputs + 1, sizeof *fs->out_off);
    fs->keep_in = calloc((size_t)fn->ninputs + 1, sizeof *fs->keep_in);
    fs->keep_out = calloc((size_t)fn->noutputs + 1, sizeof *fs->keep_out);
    if (!fs->in_off || !fs->out_off || !fs->keep_in || !fs->keep_out)
        return rt_fail(err, cap, "CUDA: out of memory");
    fs->io_bytes = cuda_io_layout(fn, fs->in_off, fs->out_off);
    char what[160];
    snprintf(what, sizeof what, "the inputs and outputs of %s", fn->name);
    if (!dev_alloc(r, &fs->io, fs->io_bytes, what, err, cap)) return false;
    if (!fs->io_bytes) return true;
    void *host = NULL;
    snprintf(what, sizeof what, "pinning %lld staging bytes for %s", (long long)fs->io_bytes,
             fn->name);
    if (!cudrv_ok(&r->d, r->d.cuMemHostAlloc(&host, (size_t)fs->io_bytes, 0), "cuMemHostAlloc",
                  what, err, cap))
        return false;
    fs->pinned = host;
    r->pinned += fs->io_bytes;
    return true;
}

static bool find_fn(CudaRunner *r, const char *name, CUfunction *out, char *err, size_t cap) {
    for (int i = 0; i < r->nfns; i++)
        if (!strcmp(r->fns[i].name, name)) return *out = r->fns[i].fn, true;
    if (r->nfns == r->capfns) {
        int c = r->capfns ? 2 * r->capfns : 32;
        NamedFn *n = realloc(r->fns, (size_t)c * sizeof *n);
        if (!n) return rt_fail(err, cap, "CUDA: out of memory");
        r->fns = n, r->capfns = c;
    }
    char what[128];
    snprintf(what, sizeof what, "looking up kernel %s in the module", name);
    if (!cudrv_ok(&r->d, r->d.cuModuleGetFunction(out, r->mod, name), "cuModuleGetFunction",
                  what, err, cap))
        return false;
    snprintf(r->fns[r->nfns].name, sizeof r->fns[r->nfns].name, "%s", name);
    r->fns[r->nfns++].fn = *out;
    return true;
}

static CUdeviceptr dev_addr(const CudaRunner *r, const FuncState *fs, CudaAddr a) {
    switch (a.space) {
    case CA_NULL: return 0;
    case CA_ARENA: return r->arenas[a.index] + (CUdeviceptr)a.off;
    case CA_PARAM: return r->params[a.index] + (CUdeviceptr)a.off;
    case CA_CONST: return r->consts[a.index] + (CUdeviceptr)a.off;
    case CA_INPUT: return fs->io + (CUdeviceptr)(fs->in_off[a.index] + a.off);
    case CA_OUTPUT: return fs->io + (CUdeviceptr)(fs->out_off[a.index] + a.off);
    case CA_TRIPS: return r->trips[a.index] + (CUdeviceptr)a.off;
    case CA_CARRY: return r->carry[a.index] + (CUdeviceptr)a.off;
    case CA_SCRATCH: return r->scratch + (CUdeviceptr)a.off;
    }
    return 0;
}

static bool resolve_op(CudaRunner *r, const FuncState *fs, const CudaOp *op, Launch *l,
                       char *err, size_t cap) {
    if (op->kind == COP_COPY) {
        l->dst = dev_addr(r, fs, op->addr[0]), l->src = dev_addr(r, fs, op->addr[1]);
        l->bytes = (size_t)op->bytes;
        return true;
    }
    if (!find_fn(r, op->launch.kernel, &l->fn, err, cap)) return false;
    if (op->launch.shmem > 48 * 1024) {
        char what[128];
        snprintf(what, sizeof what, "allowing %u bytes of shared memory for %s",
                 op->launch.shmem, op->launch.kernel);
        if (!cudrv_ok(&r->d, r->d.cuFuncSetAttribute(l->fn,
                                                     CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                                     (int)op->launch.shmem),
                      "cuFuncSetAttribute", what, err, cap))
            return false;
    }
    int np = cuda_op_nparams(op);
    l->ptrs = calloc((size_t)op->naddr + 1, sizeof *l->ptrs);
    l->params = calloc((size_t)np + 1, sizeof *l->params);
    if (!l->ptrs || !l->params) return rt_fail(err, cap, "CUDA: out of memory");
    for (int k = 0; k < op->naddr; k++) {
        l->ptrs[k] = dev_addr(r, fs, op->addr[k]);
        l->params[k] = &l->ptrs[k];
    }
    if (op->kind == COP_KERNEL) {
        l->be[0] = op->begin, l->be[1] = op->end;
        l->params[op->naddr] = &l->be[0];
        l->params[op->naddr + 1] = &l->be[1];
    } else {
        l->args = op->args;
        l->params[4] = &l->args;
    }
    return true;
}

/* Everything f's call needs, built on its first call and after a binding. */
static bool build_func(CudaRunner *r, int f, char *err, size_t cap) {
    FuncState *fs = &r->fs[f];
    if (fs->built) return true;
    if (!fs->in_off && (!alloc_reach(r, f, err, cap) || !alloc_io(r, f, fs, err, cap)))
        return false;
    if (!cuda_plan_func(r->p, f, &r->pl, fs->binds, fs->nbinds, &fs->ops, err, cap)) return false;
    fs->launches = calloc((size_t)fs->ops.n + 1, sizeof *fs->launches);
    if (!fs->launches) return rt_fail(err, cap, "CUDA: out of memory");
    for (int i = 0; i < fs->ops.n; i++)
        if (!resolve_op(r, fs, &fs->ops.ops[i], &fs->launches[i], err, cap)) return false;
    fs->built = true;
    return true;
}

/* ---- calls ---- */

/* "step 3 (matmul_1) of train_step in a call of train_step" */
static void op_where(const CudaRunner *r, int f, const CudaOp *op, char *buf, size_t cap) {
    const PFunc *fn = &r->p->funcs[op->func];
    const char *label = op->step >= 0 && fn->steps[op->step].label ? fn->steps[op->step].label
                        : op->step >= 0                            ? "no label"
                                                                   : "output copy";
    snprintf(buf, cap, "step %d (%s) of %s in a call of %s", op->step, label, fn->name,
             r->p->funcs[f].name);
}

static bool enqueue_op(CudaRunner *r, int f, const CudaOp *op, const Launch *l, char *err,
                       size_t cap) {
    char where[256], what[400];
    CUresult rc;
    if (op->kind == COP_COPY) {
        if (!l->bytes) return true;
        rc = r->d.cuMemcpyDtoDAsync(l->dst, l->src, l->bytes, r->stream);
        if (rc == CUDA_SUCCESS) return true;
        op_where(r, f, op, where, sizeof where);
        snprintf(what, sizeof what, "copying %zu bytes for %s", l->bytes, where);
        return cudrv_ok(&r->d, rc, "cuMemcpyDtoDAsync", what, err, cap);
    }
    const CudaLaunch *la = &op->launch;
    rc = r->d.cuLaunchKernel(l->fn, la->grid[0], la->grid[1], la->grid[2], la->block[0],
                             la->block[1], la->block[2], la->shmem, r->stream, l->params, NULL);
    if (rc == CUDA_SUCCESS) return true;
    op_where(r, f, op, where, sizeof where);
    snprintf(what, sizeof what, "launching %s for %s", la->kernel, where);
    return cudrv_ok(&r->d, rc, "cuLaunchKernel", what, err, cap);
}

/* Upload inputs, the operations, download the unbound outputs. */
static bool enqueue_call(CudaRunner *r, int f, char *err, size_t cap) {
    FuncState *fs = &r->fs[f];
    const PFunc *fn = &r->p->funcs[f];
    for (int k = 0; k < fn->ninputs; k++) {
        if (fs->keep_in[k] || !ptensor_bytes(&fn->inputs[k])) continue;
        char what[160];
        snprintf(what, sizeof what, "staging input %s of %s", fn->inputs[k].name, fn->name);
        if (!cudrv_ok(&r->d, r->d.cuMemcpyHtoDAsync(fs->io + (CUdeviceptr)fs->in_off[k],
                                                    fs->pinned + fs->in_off[k],
                                                    ptensor_bytes(&fn->inputs[k]), r->stream),
                      "cuMemcpyHtoDAsync", what, err, cap))
            return false;
    }
    for (int i = 0; i < fs->ops.n; i++)
        if (!enqueue_op(r, f, &fs->ops.ops[i], &fs->launches[i], err, cap)) return false;
    for (int k = 0; k < fn->noutputs; k++) {
        bool bound = false;
        for (int b = 0; b < fs->nbinds; b++) bound |= fs->binds[b].out == k;
        if (bound || fs->keep_out[k] || !ptensor_bytes(&fn->outputs[k])) continue;
        char what[160];
        snprintf(what, sizeof what, "returning output %s of %s", fn->outputs[k].name, fn->name);
        if (!cudrv_ok(&r->d, r->d.cuMemcpyDtoHAsync(fs->pinned + fs->out_off[k],
                                                    fs->io + (CUdeviceptr)fs->out_off[k],
                                                    ptensor_bytes(&fn->outputs[k]), r->stream),
                      "cuMemcpyDtoHAsync", what, err, cap))
            return false;
    }
    return true;
}

static bool capture(CudaRunner *r, int f, char *err, size_t cap) {
    FuncState *fs = &r->fs[f];
    const char *name = r->p->funcs[f].name;
    char what[160];
    snprintf(what, sizeof what, "capturing a call of %s as a graph", name);
    if (fs->graph) r->d.cuGraphExecDestroy(fs->graph), fs->graph = NULL;
    if (!cudrv_ok(&r->d, r->d.cuStreamBeginCapture(r->stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
                  "cuStreamBeginCapture", what, err, cap))
        return false;
    bool ok = enqueue_call(r, f, err, cap);
    CUgraph g = NULL;
    CUresult rc = r->d.cuStreamEndCapture(r->stream, &g); /* always: restores the stream */
    ok = ok && cudrv_ok(&r->d, rc, "cuStreamEndCapture", what, err, cap);
    snprintf(what, sizeof what, "instantiating the graph of %s", name);
    ok = ok && cudrv_ok(&r->d, r->d.cuGraphInstantiate(&fs->graph, g, 0), "cuGraphInstantiate",
                        what, err, cap);
    if (g) r->d.cuGraphDestroy(g);
    if (!ok) fs->graph = NULL;
    fs->graph_gen = fs->gen;
    return ok;
}

bool cuda_runner_call(CudaRunner *r, int f, const void *const *inputs, void *const *outputs,
                      char *err, size_t cap) {
    if (!r || f < 0 || f >= r->p->nfuncs) return rt_fail(err, cap, "CUDA: no function %d", f);
    if (!build_func(r, f, err, cap)) return false;
    FuncState *fs = &r->fs[f];
    const PFunc *fn = &r->p->funcs[f];
    for (int k = 0; k < fn->ninputs; k++)
        if (!fs->keep_in[k] && ptensor_bytes(&fn->inputs[k]))
            memcpy(fs->pinned + fs->in_off[k], inputs[k], ptensor_bytes(&fn->inputs[k]));
    char what[256];
    snprintf(what, sizeof what, "replaying the graph of %s", fn->name);
    bool ok = false;
    switch (cuda_run_mode(r->graphs, fs->graph != NULL, fs->graph_gen, fs->gen)) {
    case CUDA_RUN_DIRECT: ok = enqueue_call(r, f, err, cap); break;
    case CUDA_RUN_CAPTURE:
        ok = capture(r, f, err, cap) &&
             cudrv_ok(&r->d, r->d.cuGraphLaunch(fs->graph, r->stream), "cuGraphLaunch", what, err,
                      cap);
        break;
    case CUDA_RUN_REPLAY:
        ok = cudrv_ok(&r->d, r->d.cuGraphLaunch(fs->graph, r->stream), "cuGraphLaunch", what,
                      err, cap);
        break;
    }
    snprintf(what, sizeof what, "running a call of %s (CUDA_LAUNCH_BLOCKING=1 with "
             "IGRC_CUDA_GRAPHS=0 names the failing step)", fn->name);
    if (!ok || !cudrv_ok(&r->d, r->d.cuStreamSynchronize(r->stream), "cuStreamSynchronize", what,
                         err, cap))
        return false;
    for (int k = 0; k < fn->noutputs; k++) {
        bool bound = false;
        for (int b = 0; b < fs->nbinds; b++) bound |= fs->binds[b].out == k;
        if (!bound && !fs->keep_out[k] && ptensor_bytes(&fn->outputs[k]))
            memcpy(outputs[k], fs->pinned + fs->out_off[k], ptensor_bytes(&fn->outputs[k]));
    }
    return true;
}

bool cuda_runner_keep(CudaRunner *r, int f, bool input, int k, uint64_t *addr, char *err, size_t cap) {
    if (!r || f < 0 || f >= r->p->nfuncs || k < 0 || k >= (input ? r->p->funcs[f].ninputs : r->p->funcs[f].noutputs))
        return rt_fail(err, cap, "CUDA: no %s %d of function %d", input ? "input" : "output", k, f);
    FuncState *fs = &r->fs[f];
    if (!fs->in_off && (!alloc_reach(r, f, err, cap) || !alloc_io(r, f, fs, err, cap))) return false;
    bool *keep = input ? &fs->keep_in[k] : &fs->keep_out[k];
    *addr = (uint64_t)(fs->io + (CUdeviceptr)(input ? fs->in_off[k] : fs->out_off[k]));
    if (*keep) return true;
    *keep = true;
    fs->gen++;
    release_func(r, fs); /* the graph stages or returns one buffer less: captured again */
    return true;
}

void *cuda_runner_stream(CudaRunner *r) { return r ? (void *)r->stream : NULL; }

bool cuda_runner_bind(CudaRunner *r, int f, int out, int param, char *err, size_t cap) {
    const Program *p = r->p;
    if (f < 0 || f >= p->nfuncs || out < 0 || out >= p->funcs[f].noutputs || param < 0 ||
        param >= p->nparams ||
        ptensor_bytes(&p->funcs[f].outputs[out]) != ptensor_bytes(&p->params[param].t))
        return rt_fail(err, cap, "CUDA: cannot bind output %d of function %d to parameter %d "
                                 "(out of range or of another size)", out, f, param);
    FuncState *fs = &r->fs[f];
    for (int b = 0; b < fs->nbinds; b++)
        if (fs->binds[b].out == out) {
            if (fs->binds[b].param == param) return true;
            return rt_fail(err, cap, "CUDA: output %s of %s is already bound",
                           p->funcs[f].outputs[out].name, p->funcs[f].name);
        }
    CudaBind *nb = realloc(fs->binds, (size_t)(fs->nbinds + 1) * sizeof *nb);
    if (!nb) return rt_fail(err, cap, "CUDA: out of memory");
    fs->binds = nb;
    fs->binds[fs->nbinds++] = (CudaBind){out, param};
    fs->gen++;
    release_func(r, fs); /* the operation list changes: rebuilt on the next call */
    return true;
}

bool cuda_runner_get_param(CudaRunner *r, int i, void *host, char *err, size_t cap) {
    const PTensor *t = &r->p->params[i].t;
    char what[160];
    snprintf(what, sizeof what, "reading parameter %s from the device", t->name);
    return cudrv_ok(&r->d, r->d.cuStreamSynchronize(r->stream), "cuStreamSynchronize", what, err,
                    cap) &&
           (!ptensor_bytes(t) ||
            cudrv_ok(&r->d, r->d.cuMemcpyDtoH(host, r->params[i], ptensor_bytes(t)),
                     "cuMemcpyDtoH", what, err, cap));
}

bool cuda_runner_set_param(CudaRunner *r, int i, const void *host, char *err, size_t cap) {
    const PTensor *t = &r->p->params[i].t;
    return cudrv_ok(&r->d, r->d.cuStreamSynchronize(r->stream), "cuStreamSynchronize",
                    "writing a parameter", err, cap) &&
           upload(r, r->params[i], host, ptensor_bytes(t), t->name, err, cap);
}

int64_t cuda_runner_memory_bytes(const CudaRunner *r) { return r ? r->dev_peak : 0; }
int64_t cuda_runner_pinned_bytes(const CudaRunner *r) { return r ? r->pinned : 0; }
const char *cuda_runner_describe(const CudaRunner *r) { return r ? r->desc : ""; }
