/* The CUDA runner's plan (runtime/cuda/cuda_plan.h): flattening a call into
 * launches and copies, buffer sizes, staging layout, graph replay. */
#include "runtime/cuda/cuda_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rt_error.h"

static int64_t align_up(int64_t n) { return (n + CUDA_ALIGN - 1) / CUDA_ALIGN * CUDA_ALIGN; }

/* ---- slots ---- */

int cuda_slot(const Program *p, int f, int s) {
    int base = 0;
    for (int g = 0; g < f; g++) base += p->funcs[g].nsteps;
    return base + s;
}

int cuda_nslots(const Program *p) { return cuda_slot(p, p->nfuncs, 0); }

/* ---- flattening ---- */

/* One active function: where its inputs and outputs live (NULL: the
 * planned entry point's own I/O buffers). */
typedef struct {
    int func;
    const CudaAddr *ins, *outs;
} Frame;

typedef struct {
    const Program *p;
    const CudaPlanner *pl;
    CudaOpList *ops;
    char *err;
    size_t cap;
} Flat;

static CudaAddr addr(CudaSpace s, int index, int64_t off) { return (CudaAddr){s, index, off}; }

static CudaAddr resolve(const Frame *fr, PRef r) {
    switch (r.space) {
    case PB_ARENA: return addr(CA_ARENA, fr->func, r.at);
    case PB_PARAM: return addr(CA_PARAM, (int)r.at, 0);
    case PB_CONST: return addr(CA_CONST, (int)r.at, 0);
    case PB_INPUT: return fr->ins ? fr->ins[r.at] : addr(CA_INPUT, (int)r.at, 0);
    case PB_OUTPUT: return fr->outs ? fr->outs[r.at] : addr(CA_OUTPUT, (int)r.at, 0);
    }
    return addr(CA_NULL, 0, 0);
}

static bool same_buffer(CudaAddr a, CudaAddr b) { return a.space == b.space && a.index == b.index; }

static CudaOp *push(Flat *fl, CudaOpKind kind, int func, int step, int naddr) {
    CudaOpList *l = fl->ops;
    if (l->n >= CUDA_MAX_OPS) {
        rt_fail(fl->err, fl->cap, "CUDA plan: a call unrolls to more than %d operations "
                                  "(loops with many trips)", CUDA_MAX_OPS);
        return NULL;
    }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        CudaOp *o = realloc(l->ops, (size_t)cap * sizeof *o);
        if (!o) return rt_fail(fl->err, fl->cap, "CUDA plan: out of memory"), NULL;
        l->ops = o, l->cap = cap;
    }
    CudaOp *op = &l->ops[l->n];
    memset(op, 0, sizeof *op);
    op->kind = kind, op->func = func, op->step = step, op->kernel = -1, op->naddr = naddr;
    if (!(op->addr = calloc((size_t)(naddr ? naddr : 1), sizeof *op->addr)))
        return rt_fail(fl->err, fl->cap, "CUDA plan: out of memory"), NULL;
    l->n++;
    return op;
}

/* dst <- src; nothing when they coincide; overlapping ranges of one buffer
 * are refused (device copies do not handle overlap). */
static bool emit_copy(Flat *fl, int func, int step, CudaAddr dst, CudaAddr src, int64_t bytes) {
    if (bytes <= 0 || (same_buffer(dst, src) && dst.off == src.off)) return true;
    if (same_buffer(dst, src) && dst.off < src.off + bytes && src.off < dst.off + bytes)
        return rt_fail(fl->err, fl->cap, "CUDA plan: func %s step %d: overlapping copy of %lld "
                                         "bytes", fl->p->funcs[func].name, step, (long long)bytes);
    CudaOp *op = push(fl, COP_COPY, func, step, 2);
    if (!op) return false;
    op->addr[0] = dst, op->addr[1] = src, op->bytes = bytes;
    return true;
}

static bool emit_kernel(Flat *fl, const Frame *fr, int si, const PStep *s) {
    if (s->domain <= 0) return true; /* the CPU runner runs nothing either */
    CudaOp *op = push(fl, COP_KERNEL, fr->func, si, s->nrefs);
    if (!op) return false;
    for (int k = 0; k < s->nrefs; k++) op->addr[k] = resolve(fr, s->refs[k]);
    op->kernel = s->index;
    snprintf(op->launch.kernel, sizeof op->launch.kernel, IGRC_CUDA_KERNEL_PREFIX "%d", s->index);
    op->launch.grid[0] = fl->pl->kernel_grid(s->domain);
    op->launch.grid[1] = op->launch.grid[2] = 1;
    op->launch.block[0] = IGRC_CUDA_BLOCK;
    op->launch.block[1] = op->launch.block[2] = 1;
    op->begin = 0, op->end = s->domain;
    return true;
}

static bool emit_lib(Flat *fl, const Frame *fr, int si, const PStep *s) {
    CudaLaunch ls[IGRC_CUDA_LIB_MAX_LAUNCHES];
    int64_t scratch = 0;
    char why[512];
    int n = fl->pl->lib_plan((CpuOp)s->index, (CpuDtype)s->dtype, s->args, &fl->pl->opt, ls,
                             &scratch, why, sizeof why);
    if (n < 0 || n > IGRC_CUDA_LIB_MAX_LAUNCHES)
        return rt_fail(fl->err, fl->cap, "CUDA plan: func %s step %d (%s): %s",
                       fl->p->funcs[fr->func].name, si, s->label ? s->label : "lib",
                       n < 0 ? why : "too many launches");
    if (scratch > fl->ops->scratch_bytes) fl->ops->scratch_bytes = scratch;
    for (int i = 0; i < n; i++) {
        CudaOp *op = push(fl, COP_LIB, fr->func, si, 4);
        if (!op) return false;
        op->launch = ls[i];
        for (int k = 0; k < 3; k++)
            op->addr[k] = k < s->nrefs ? resolve(fr, s->refs[k]) : addr(CA_NULL, 0, 0);
        op->addr[3] = scratch > 0 ? addr(CA_SCRATCH, 0, 0) : addr(CA_NULL, 0, 0);
        for (int k = 0; k < s->nargs && k < CPU_OP_MAX_ARGS; k++) op->args.a[k] = s->args[k];
    }
    return true;
}

static bool flatten(Flat *fl, const Frame *fr);

static bool emit_loop(Flat *fl, const Frame *fr, int si, const PStep *s) {
    const int slot = cuda_slot(fl->p, fr->func, si);
    CudaAddr out = resolve(fr, s->refs[0]);
    if (!emit_copy(fl, fr->func, si, out, resolve(fr, s->refs[1]), s->grain)) return false;
    CudaAddr *ins = calloc((size_t)s->nrefs, sizeof *ins);
    if (!ins) return rt_fail(fl->err, fl->cap, "CUDA plan: out of memory");
    ins[1] = out;
    for (int k = 2; k < s->nrefs; k++) ins[k] = resolve(fr, s->refs[k]);
    const CudaAddr carry = addr(CA_CARRY, slot, 0);
    Frame body = {s->index, ins, &carry};
    bool ok = true;
    for (int64_t t = 0; ok && t < s->domain; t++) {
        ins[0] = addr(CA_TRIPS, slot, 4 * t);
        ok = flatten(fl, &body) && emit_copy(fl, fr->func, si, out, carry, s->grain);
    }
    free(ins);
    return ok;
}

/* The steps of fr's function, then its outputs' copies when a frame binds
 * them (a loop body's output goes to its carry scratch). */
static bool flatten(Flat *fl, const Frame *fr) {
    const PFunc *fn = &fl->p->funcs[fr->func];
    for (int si = 0; si < fn->nsteps; si++) {
        const PStep *s = &fn->steps[si];
        /* reduce steps launch nothing: the caller reduces outputs after the call;
         * a ranksum step is one rank's copy (runtime/exec.h, exec_set_collectives) */
        bool ok = s->kind == PS_KERNEL   ? emit_kernel(fl, fr, si, s)
                  : s->kind == PS_LIB    ? emit_lib(fl, fr, si, s)
                  : s->kind == PS_COPY   ? emit_copy(fl, fr->func, si, resolve(fr, s->refs[0]),
                                                     resolve(fr, s->refs[1]), s->domain)
                  : s->kind == PS_REDUCE ? true
                  : s->kind == PS_RANKSUM
                      ? emit_copy(fl, fr->func, si, resolve(fr, s->refs[0]), resolve(fr, s->refs[1]),
                                  pstep_ranksum_bytes(s))
                                         : emit_loop(fl, fr, si, s);
        if (!ok) return false;
    }
    if (!fr->outs) return true; /* the entry point: its caller handles outputs */
    for (int k = 0; k < fn->noutputs; k++)
        if (!emit_copy(fl, fr->func, -1, fr->outs[k], resolve(fr, fn->out_refs[k]),
                       (int64_t)ptensor_bytes(&fn->outputs[k])))
            return false;
    return true;
}

static const CudaBind *bind_of(const CudaBind *b, int n, int out) {
    for (int i = 0; i < n; i++)
        if (b[i].out == out) return &b[i];
    return NULL;
}

bool cuda_plan_func(const Program *p, int f, const CudaPlanner *pl, const CudaBind *binds,
                    int nbinds, CudaOpList *ops, char *err, size_t errcap) {
    memset(ops, 0, sizeof *ops);
    if (f < 0 || f >= p->nfuncs) return rt_fail(err, errcap, "CUDA plan: no function %d", f);
    const PFunc *fn = &p->funcs[f];
    for (int i = 0; i < nbinds; i++)
        if (binds[i].out < 0 || binds[i].out >= fn->noutputs || binds[i].param < 0 ||
            binds[i].param >= p->nparams ||
            ptensor_bytes(&fn->outputs[binds[i].out]) != ptensor_bytes(&p->params[binds[i].param].t))
            return rt_fail(err, errcap, "CUDA plan: func %s: binding %d (output %d -> parameter "
                                        "%d) is out of range or of another size",
                           fn->name, i, binds[i].out, binds[i].param);
    Flat fl = {p, pl, ops, err, errcap};
    Frame top = {f, NULL, NULL};
    bool ok = flatten(&fl, &top);
    /* Unbound outputs: into the output buffer; bound ones into their
     * parameter, after every step has read the old values. A bound output
     * that is itself another parameter is first copied to its output
     * buffer, so that no binding reads a parameter another one wrote (the
     * CPU, copying from the returned outputs, reads none either). */
    for (int pass = 0; ok && pass < 2; pass++)
        for (int k = 0; ok && k < fn->noutputs; k++) {
            const CudaBind *b = bind_of(binds, nbinds, k);
            CudaAddr src = resolve(&top, fn->out_refs[k]);
            bool via_out = b && src.space == CA_PARAM && src.index != b->param;
            if (pass == 0 && b && !via_out) continue;
            if (pass == 1 && !b) continue;
            CudaAddr dst = pass == 1 ? addr(CA_PARAM, b->param, 0) : addr(CA_OUTPUT, k, 0);
            if (pass == 1 && via_out) src = addr(CA_OUTPUT, k, 0);
            ok = emit_copy(&fl, f, -1, dst, src, (int64_t)ptensor_bytes(&fn->outputs[k]));
        }
    if (!ok) cuda_ops_free(ops);
    return ok;
}

void cuda_ops_free(CudaOpList *ops) {
    if (!ops) return;
    for (int i = 0; i < ops->n; i++) free(ops->ops[i].addr);
    free(ops->ops);
    memset(ops, 0, sizeof *ops);
}

int cuda_op_nparams(const CudaOp *op) {
    return op->kind == COP_KERNEL ? op->naddr + 2 : op->kind == COP_LIB ? 5 : 0;
}

/* ---- sizes ---- */

void cuda_func_reach(const Program *p, int f, bool *reach) {
    if (reach[f]) return;
    reach[f] = true;
    for (int s = 0; s < p->funcs[f].nsteps; s++)
        if (p->funcs[f].steps[s].kind == PS_LOOP) cuda_func_reach(p, p->funcs[f].steps[s].index, reach);
}

bool cuda_mem_plan(const Program *p, const CudaPlanner *pl, CudaMemPlan *m, char *err,
                   size_t errcap) {
    memset(m, 0, sizeof *m);
    m->nfuncs = p->nfuncs, m->nslots = cuda_nslots(p);
    m->arena = calloc((size_t)p->nfuncs + 1, sizeof *m->arena);
    m->trips = calloc((size_t)m->nslots + 1, sizeof *m->trips);
    m->carry = calloc((size_t)m->nslots + 1, sizeof *m->carry);
    if (!m->arena || !m->trips || !m->carry) {
        cuda_mem_plan_free(m);
        return rt_fail(err, errcap, "CUDA plan: out of memory");
    }
    for (int i = 0; i < p->nparams; i++) m->params += align_up((int64_t)ptensor_bytes(&p->params[i].t));
    for (int i = 0; i < p->nconsts; i++) m->consts += align_up((int64_t)ptensor_bytes(&p->consts[i].t));
    for (int f = 0, slot = 0; f < p->nfuncs; f++) {
        m->arena[f] = align_up(p->funcs[f].arena_bytes);
        for (int s = 0; s < p->funcs[f].nsteps; s++, slot++) {
            const PStep *st = &p->funcs[f].steps[s];
            if (st->kind == PS_LOOP) {
                m->trips[slot] = align_up(4 * st->domain);
                m->carry[slot] = align_up(st->grain);
            } else if (st->kind == PS_LIB) {
                CudaLaunch ls[IGRC_CUDA_LIB_MAX_LAUNCHES];
                int64_t sb = 0;
                char why[512];
                if (pl->lib_plan((CpuOp)st->index, (CpuDtype)st->dtype, st->args, &pl->opt, ls,
                                 &sb, why, sizeof why) < 0) {
                    cuda_mem_plan_free(m);
                    return rt_fail(err, errcap, "CUDA plan: func %s step %d (%s): %s",
                                   p->funcs[f].name, s, st->label ? st->label : "lib", why);
                }
                if (align_up(sb) > m->scratch) m->scratch = align_up(sb);
            }
        }
    }
    return true;
}

void cuda_mem_plan_free(CudaMemPlan *m) {
    if (!m) return;
    free(m->arena);
    free(m->trips);
    free(m->carry);
    memset(m, 0, sizeof *m);
}

int64_t cuda_mem_func_bytes(const Program *p, const CudaMemPlan *m, int f) {
    bool *reach = calloc((size_t)p->nfuncs + 1, 1);
    if (!reach) return -1;
    cuda_func_reach(p, f, reach);
    int64_t total = 0;
    for (int g = 0; g < p->nfuncs; g++) {
        if (!reach[g]) continue;
        total += m->arena[g];
        for (int s = 0; s < p->funcs[g].nsteps; s++) {
            int slot = cuda_slot(p, g, s);
            total += m->trips[slot] + m->carry[slot];
        }
    }
    free(reach);
    return total;
}

int64_t cuda_io_layout(const PFunc *f, int64_t *in_off, int64_t *out_off) {
    int64_t at = 0;
    for (int k = 0; k < f->ninputs; k++) {
        if (in_off) in_off[k] = at;
        at += align_up((int64_t)ptensor_bytes(&f->inputs[k]));
    }
    for (int k = 0; k < f->noutputs; k++) {
        if (out_off) out_off[k] = at;
        at += align_up((int64_t)ptensor_bytes(&f->outputs[k]));
    }
    return at;
}

/* ---- graphs ---- */

CudaRunMode cuda_run_mode(bool graphs_on, bool captured, uint64_t captured_gen, uint64_t gen) {
    if (!graphs_on) return CUDA_RUN_DIRECT;
    return captured && captured_gen == gen ? CUDA_RUN_REPLAY : CUDA_RUN_CAPTURE;
}

bool cuda_graphs_enabled(void) {
    const char *v = getenv("IGRC_CUDA_GRAPHS");
    return !(v && !strcmp(v, "0"));
}
