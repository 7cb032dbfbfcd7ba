/* The program executor (runtime/program/program.h): arenas, parameters, and the
 * step loop.
 *
 * Everything a call needs is allocated by runner_new: one 64-byte aligned
 * arena per function, the parameters, per step a buffer-pointer table (and
 * for a loop step the body's input table and the carry scratch the body
 * writes into). A function is never active twice at once (parse refuses
 * recursive loops, runner_new checks again), so each step's tables can be
 * reused by every call without allocation on the hot path. runner_call is
 * not reentrant: one call at a time per runner.
 */
#include "runtime/cpu/runner.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "runtime/cpu/cpu_ops.h"
#include "runtime/program/init.h"

typedef struct {
    void **bufs;          /* nrefs pointers (kernel, lib, copy) */
    const void **ins;     /* loop: the body's inputs (trip, carry, captures) */
    void *scratch;        /* loop: the body's output, CARRYBYTES */
    int32_t trip;
    double secs;          /* IGRC_PROFILE: time spent in this step */
    int64_t calls;
} StepState;

struct Runner {
    const Program *p;
    PKernelFn *kernels;
    int nkernels;
    ThreadPool *pool;
    int threads;
    void **params;        /* per param, 64-byte aligned */
    unsigned char **arenas; /* per func, 64-byte aligned (NULL when 0 bytes) */
    unsigned char *shared;  /* the entry points' one arena (see alloc_arenas) */
    int64_t shared_bytes;
    StepState **steps;    /* per func, per step */
    int64_t memory;
    PCollectives coll;    /* what reduce and ranksum steps call */
};

static bool fail(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(char *err, size_t cap, const char *fmt, ...) {
    if (!err || !cap) return false;
    int n = snprintf(err, cap, "runner: ");
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < cap) vsnprintf(err + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

/* Arenas are anonymous mappings: zero pages that cost no memory until
 * touched, so an entry point never called (a 100-point IG) stays virtual. */
static void *alloc_arena(size_t bytes) {
    void *q = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return q == MAP_FAILED ? NULL : q;
}

static void *alloc64(size_t bytes) {
    size_t n = (bytes + 63) / 64 * 64;
    void *q = aligned_alloc(64, n ? n : 64);
    if (q) memset(q, 0, n ? n : 64);
    return q;
}

/* ---- structural checks for programs not built by program_parse ---- */

static bool check_ref(const Program *p, const PFunc *f, PRef r, const char *where, char *err,
                      size_t cap) {
    int64_t n = -1; /* stays for a space outside the enum (a program built by hand) */
    switch (r.space) {
    case PB_ARENA: n = f->arena_bytes; break;
    case PB_PARAM: n = p->nparams; break;
    case PB_INPUT: n = f->ninputs; break;
    case PB_OUTPUT: n = f->noutputs; break;
    case PB_CONST: n = p->nconsts; break;
    }
    if (n < 0) return fail(err, cap, "func %s: %s: bad buffer space", f->name, where);
    if (r.at < 0 || r.at >= n)
        return fail(err, cap, "func %s: %s: buffer %c%lld out of range (%lld)", f->name, where,
                    "apioc"[r.space], (long long)r.at, (long long)n);
    return true;
}

static bool acyclic(const Program *p, int fi, char *state) {
    state[fi] = 1;
    const PFunc *f = &p->funcs[fi];
    for (int s = 0; s < f->nsteps; s++) {
        if (f->steps[s].kind != PS_LOOP) continue;
        int g = f->steps[s].index;
        if (state[g] == 1) return false;
        if (state[g] == 0 && !acyclic(p, g, state)) return false;
    }
    state[fi] = 2;
    return true;
}

static bool check_program(const Program *p, const PKernelFn *kernels, int nkernels, char *err,
                          size_t cap) {
    for (int fi = 0; fi < p->nfuncs; fi++) {
        const PFunc *f = &p->funcs[fi];
        for (int k = 0; k < f->noutputs; k++)
            if (!check_ref(p, f, f->out_refs[k], "output", err, cap)) return false;
        for (int si = 0; si < f->nsteps; si++) {
            const PStep *s = &f->steps[si];
            char where[32];
            snprintf(where, sizeof where, "step %d", si);
            for (int k = 0; k < s->nrefs; k++)
                if (!check_ref(p, f, s->refs[k], where, err, cap)) return false;
            if ((unsigned)s->kind > PS_RANKSUM)
                return fail(err, cap, "func %s: %s: unknown step kind", f->name, where);
            switch (s->kind) {
            case PS_KERNEL:
                if (s->index < 0 || s->index >= nkernels || !kernels[s->index])
                    return fail(err, cap, "func %s: %s: kernel %d missing (%d kernels)",
                                f->name, where, s->index, nkernels);
                if (s->grain < 1 || s->domain < 0)
                    return fail(err, cap, "func %s: %s: bad domain or grain", f->name, where);
                break;
            case PS_LIB:
                if (s->index < 0 || s->index >= CPU_OP_COUNT ||
                    (s->dtype != CPU_F32 && s->dtype != CPU_F64) || s->nrefs < 2 ||
                    s->nrefs > 3)
                    return fail(err, cap, "func %s: %s: bad lib step", f->name, where);
                if (!cpu_op_check((CpuOp)s->index, s->args, err, cap)) return false;
                break;
            case PS_COPY:
                if (s->nrefs != 2 || s->domain < 0)
                    return fail(err, cap, "func %s: %s: bad copy step", f->name, where);
                break;
            case PS_LOOP:
                if (s->index < 0 || s->index >= p->nfuncs || s->nrefs < 2 || s->domain < 0 ||
                    s->domain > INT32_MAX || s->grain < 0)
                    return fail(err, cap, "func %s: %s: bad loop step", f->name, where);
                if (p->funcs[s->index].ninputs != s->nrefs || p->funcs[s->index].noutputs != 1)
                    return fail(err, cap, "func %s: %s: loop body %s has the wrong signature",
                                f->name, where, p->funcs[s->index].name);
                break;
            case PS_REDUCE:
                if (s->index < 0 || s->index >= f->noutputs || s->nrefs != 1)
                    return fail(err, cap, "func %s: %s: bad reduce step", f->name, where);
                break;
            case PS_RANKSUM:
                if (s->nrefs != 2 || s->domain < 0 || (s->dtype != CPU_F32 && s->dtype != CPU_F64))
                    return fail(err, cap, "func %s: %s: bad ranksum step", f->name, where);
                break;
            }
        }
    }
    if (p->nfuncs) {
        char *state = calloc((size_t)p->nfuncs, 1);
        if (!state) return fail(err, cap, "out of memory");
        bool ok = true;
        for (int fi = 0; fi < p->nfuncs && ok; fi++)
            if (!state[fi]) ok = acyclic(p, fi, state);
        free(state);
        if (!ok) return fail(err, cap, "loop bodies call each other recursively");
    }
    return true;
}

/* ---- parameters ---- */

static bool init_params(Runner *r, uint32_t seed) {
    for (int i = 0; i < r->p->nparams; i++)
        if (!program_init_param(&r->p->params[i], r->params[i], seed)) return false;
    return true;
}

void runner_init_params(Runner *r, uint32_t seed) {
    if (r && !init_params(r, seed))
        fprintf(stderr, "runner: out of memory initialising parameters\n");
}

/* ---- construction ---- */

/* Entry points run one at a time and leave nothing in their arenas (outputs
 * go to the caller's buffers), so they share one arena of the largest size:
 * a process that calls predict, grad_ce and attrib_step holds the largest
 * of them, not their sum. A loop body runs inside its caller's call and
 * keeps an arena of its own. Adds the bytes to *mem. */
static bool alloc_arenas(Runner *r, int64_t *mem) {
    const Program *p = r->p;
    bool *body = calloc((size_t)p->nfuncs, sizeof *body); /* some loop step runs it */
    if (!body) return false;
    for (int g = 0; g < p->nfuncs; g++)
        for (int s = 0; s < p->funcs[g].nsteps; s++)
            if (p->funcs[g].steps[s].kind == PS_LOOP) body[p->funcs[g].steps[s].index] = true;
    for (int fi = 0; fi < p->nfuncs; fi++)
        if (!body[fi] && p->funcs[fi].arena_bytes > r->shared_bytes) r->shared_bytes = p->funcs[fi].arena_bytes;
    bool ok = r->shared_bytes == 0 || (r->shared = alloc_arena((size_t)r->shared_bytes)) != NULL;
    *mem += r->shared_bytes;
    for (int fi = 0; ok && fi < p->nfuncs; fi++) {
        const PFunc *f = &p->funcs[fi];
        if (f->arena_bytes <= 0) continue;
        r->arenas[fi] = body[fi] ? alloc_arena((size_t)f->arena_bytes) : r->shared;
        ok = r->arenas[fi] != NULL;
        if (body[fi]) *mem += f->arena_bytes;
    }
    free(body);
    return ok;
}

Runner *runner_new(const Program *p, const PKernelFn *kernels, int nkernels, int threads,
                   uint32_t seed, char *err, size_t errcap) {
    if (err && errcap) err[0] = '\0';
    if (!p) {
        fail(err, errcap, "no program");
        return NULL;
    }
    if (nkernels < 0 || (nkernels > 0 && !kernels)) {
        fail(err, errcap, "no kernel table");
        return NULL;
    }
    if (!check_program(p, kernels, nkernels, err, errcap)) return NULL;
    Runner *r = calloc(1, sizeof *r);
    if (!r) {
        fail(err, errcap, "out of memory");
        return NULL;
    }
    r->p = p;
    r->nkernels = nkernels;
    if (threads <= 0) threads = tp_default_size();
    if (threads < 1) threads = 1;
    int64_t mem = 0;
    size_t lib_scratch = 0;
    if (nkernels > 0) {
        r->kernels = malloc((size_t)nkernels * sizeof *r->kernels);
        if (!r->kernels) goto oom;
        memcpy(r->kernels, kernels, (size_t)nkernels * sizeof *r->kernels);
    }
    r->pool = tp_new(threads);
    if (!r->pool) {
        fail(err, errcap, "cannot start %d threads", threads);
        runner_free(r);
        return NULL;
    }
    r->threads = tp_size(r->pool);
    if (p->nparams) {
        if (!(r->params = calloc((size_t)p->nparams, sizeof *r->params))) goto oom;
        for (int i = 0; i < p->nparams; i++) {
            size_t b = ptensor_bytes(&p->params[i].t);
            if (!(r->params[i] = alloc64(b))) goto oom;
            mem += (int64_t)b;
        }
    }
    for (int i = 0; i < p->nconsts; i++) mem += (int64_t)ptensor_bytes(&p->consts[i].t);
    if (p->nfuncs) {
        if (!(r->arenas = calloc((size_t)p->nfuncs, sizeof *r->arenas))) goto oom;
        if (!(r->steps = calloc((size_t)p->nfuncs, sizeof *r->steps))) goto oom;
    }
    if (p->nfuncs && !alloc_arenas(r, &mem)) goto oom;
    for (int fi = 0; fi < p->nfuncs; fi++) {
        const PFunc *f = &p->funcs[fi];
        if (!f->nsteps) continue;
        if (!(r->steps[fi] = calloc((size_t)f->nsteps, sizeof **r->steps))) goto oom;
        for (int si = 0; si < f->nsteps; si++) {
            const PStep *s = &f->steps[si];
            StepState *st = &r->steps[fi][si];
            size_t nb = (size_t)(s->nrefs > 3 ? s->nrefs : 3); /* lib: {out, in0, in1} */
            if (!(st->bufs = calloc(nb, sizeof *st->bufs)))
                goto oom;
            if (s->kind == PS_LOOP) {
                if (!(st->ins = calloc((size_t)s->nrefs, sizeof *st->ins))) goto oom;
                if (!(st->scratch = alloc64((size_t)s->grain))) goto oom;
                mem += s->grain; /* the carry scratch counts with the arenas */
            } else if (s->kind == PS_LIB) {
                size_t sb = cpu_op_scratch_bytes((CpuOp)s->index, (CpuDtype)s->dtype, s->args,
                                                 r->threads);
                if (sb > lib_scratch) lib_scratch = sb;
            }
        }
    }
    r->memory = mem + (int64_t)lib_scratch;
    if (!init_params(r, seed)) goto oom;
    return r;
oom:
    fail(err, errcap, "out of memory");
    runner_free(r);
    return NULL;
}

static bool profiling(void);
static void print_profile(const Runner *r);

void runner_free(Runner *r) {
    if (!r) return;
    const Program *p = r->p;
    if (profiling() && r->steps) print_profile(r);
    if (r->params)
        for (int i = 0; i < p->nparams; i++) free(r->params[i]);
    free(r->params);
    for (int fi = 0; fi < p->nfuncs; fi++) {
        if (r->arenas && r->arenas[fi] && r->arenas[fi] != r->shared)
            munmap(r->arenas[fi], (size_t)p->funcs[fi].arena_bytes);
        if (r->steps && r->steps[fi]) {
            for (int si = 0; si < p->funcs[fi].nsteps; si++) {
                free(r->steps[fi][si].bufs);
                free(r->steps[fi][si].ins);
                free(r->steps[fi][si].scratch);
            }
            free(r->steps[fi]);
        }
    }
    if (r->shared) munmap(r->shared, (size_t)r->shared_bytes);
    free(r->arenas);
    free(r->steps);
    free(r->kernels);
    tp_free(r->pool);
    free(r);
}

const Program *runner_program(const Runner *r) { return r ? r->p : NULL; }
ThreadPool *runner_pool(Runner *r) { return r ? r->pool : NULL; }
int64_t runner_memory_bytes(const Runner *r) { return r ? r->memory : 0; }

void *runner_param(Runner *r, int i) {
    if (!r || i < 0 || i >= r->p->nparams) return NULL;
    return r->params[i];
}

/* ---- execution ---- */

typedef struct {
    PKernelFn fn;
    void *const *bufs;
} KernelCtx;

static void kernel_range(void *ctx, int64_t begin, int64_t end) {
    const KernelCtx *k = ctx;
    k->fn(k->bufs, begin, end);
}

static void *resolve(Runner *r, int f, PRef ref, const void *const *inputs,
                     void *const *outputs) {
    switch (ref.space) {
    case PB_ARENA: return r->arenas[f] + ref.at;
    case PB_PARAM: return r->params[ref.at];
    case PB_INPUT: return (void *)inputs[ref.at];
    case PB_OUTPUT: return outputs[ref.at];
    case PB_CONST: return r->p->consts[ref.at].data;
    }
    return NULL;
}

/* memcpy, or memmove when the ranges overlap; nothing when they coincide. */
static void move(void *dst, const void *src, size_t n) {
    if (!n || dst == src) return;
    const char *d = dst, *s = src;
    if (d < s + n && s < d + n) memmove(dst, src, n);
    else memcpy(dst, src, n);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* IGRC_PROFILE=1: the runner times every step and prints the 30 most
 * expensive (with their IR labels) when it is freed. */
static bool profiling(void) {
    static int on = -1;
    if (on < 0) on = getenv("IGRC_PROFILE") && strcmp(getenv("IGRC_PROFILE"), "0") != 0;
    return on;
}

typedef struct {
    const PStep *s;
    const StepState *st;
    const char *func;
} ProfRow;

static int by_secs(const void *a, const void *b) {
    double x = ((const ProfRow *)a)->st->secs, y = ((const ProfRow *)b)->st->secs;
    return (x < y) - (x > y);
}

static void print_profile(const Runner *r) {
    int n = 0;
    for (int fi = 0; fi < r->p->nfuncs; fi++) n += r->p->funcs[fi].nsteps;
    ProfRow *rows = calloc((size_t)n + 1, sizeof *rows);
    double total = 0;
    n = 0;
    for (int fi = 0; fi < r->p->nfuncs; fi++)
        for (int si = 0; si < r->p->funcs[fi].nsteps; si++) {
            const PStep *s = &r->p->funcs[fi].steps[si];
            if (!r->steps[fi][si].calls || s->kind == PS_LOOP) continue; /* loops: their bodies' steps */
            rows[n++] = (ProfRow){s, &r->steps[fi][si], r->p->funcs[fi].name};
            total += r->steps[fi][si].secs;
        }
    qsort(rows, (size_t)n, sizeof *rows, by_secs);
    static const char *kinds[] = {"kernel", "lib", "copy", "loop", "reduce", "ranksum"};
    fprintf(stderr, "profile: %.3f s in %d steps\n", total, n);
    for (int i = 0; i < n && i < 30; i++)
        fprintf(stderr, "  %8.3f s %5.1f%% %8lld calls  %-6s %s: %s\n", rows[i].st->secs,
                100 * rows[i].st->secs / (total > 0 ? total : 1), (long long)rows[i].st->calls,
                kinds[rows[i].s->kind], rows[i].func, rows[i].s->label ? rows[i].s->label : "");
    free(rows);
}

void runner_set_collectives(Runner *r, const PCollectives *c) {
    r->coll = c ? *c : (PCollectives){0};
}

void runner_call(Runner *r, int f, const void *const *inputs, void *const *outputs) {
    if (!r || f < 0 || f >= r->p->nfuncs) return;
    const PFunc *fn = &r->p->funcs[f];
    bool prof = profiling();
    for (int si = 0; si < fn->nsteps; si++) {
        const PStep *s = &fn->steps[si];
        StepState *st = &r->steps[f][si];
        double t0 = prof ? now_s() : 0;
        switch (s->kind) {
        case PS_KERNEL: {
            for (int k = 0; k < s->nrefs; k++)
                st->bufs[k] = resolve(r, f, s->refs[k], inputs, outputs);
            if (s->domain <= 0) break;
            KernelCtx kc = {r->kernels[s->index], st->bufs};
            tp_parallel_for(r->pool, s->domain, s->grain, kernel_range, &kc);
            break;
        }
        case PS_LIB:
            for (int k = 0; k < s->nrefs; k++)
                st->bufs[k] = resolve(r, f, s->refs[k], inputs, outputs);
            cpu_op_run(r->pool, (CpuOp)s->index, (CpuDtype)s->dtype, s->args, st->bufs);
            break;
        case PS_COPY:
            move(resolve(r, f, s->refs[0], inputs, outputs),
                 resolve(r, f, s->refs[1], inputs, outputs), (size_t)s->domain);
            break;
        case PS_LOOP: {
            void *out = resolve(r, f, s->refs[0], inputs, outputs);
            move(out, resolve(r, f, s->refs[1], inputs, outputs), (size_t)s->grain);
            st->ins[0] = &st->trip;
            st->ins[1] = out;
            for (int k = 2; k < s->nrefs; k++)
                st->ins[k] = resolve(r, f, s->refs[k], inputs, outputs);
            void *const body_out[1] = {st->scratch};
            for (int64_t t = 0; t < s->domain; t++) {
                st->trip = (int32_t)t;
                runner_call(r, s->index, st->ins, body_out);
                move(out, st->scratch, (size_t)s->grain);
            }
            break;
        }
        case PS_REDUCE:
            if (r->coll.reduce)
                r->coll.reduce(r->coll.ctx, f, s->index, resolve(r, f, s->refs[0], inputs, outputs),
                               (int64_t)ptensor_bytes(&fn->outputs[s->index]));
            break;
        case PS_RANKSUM: {
            void *out = resolve(r, f, s->refs[0], inputs, outputs);
            move(out, resolve(r, f, s->refs[1], inputs, outputs), (size_t)pstep_ranksum_bytes(s));
            if (r->coll.rank_sum) r->coll.rank_sum(r->coll.ctx, out, s->domain, s->dtype == CPU_F64);
            break;
        }
        }
        if (prof) {
            st->secs += now_s() - t0;
            st->calls++;
        }
    }
    for (int k = 0; k < fn->noutputs; k++) {
        PRef ref = fn->out_refs[k];
        if (ref.space == PB_OUTPUT && ref.at == k) continue;
        move(outputs[k], resolve(r, f, ref, inputs, outputs), ptensor_bytes(&fn->outputs[k]));
    }
}
