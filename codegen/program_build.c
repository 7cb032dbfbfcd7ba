/* Module -> Program: one step per fused group, library call or loop, in the
 * function's node order (the schedule pass chose it), then the memory plan. */
#include "codegen/program_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/contract.h"
#include "codegen/codegen_rows.h"
#include "codegen/lower.h"
#include "runtime/cpu/cpu_ops.h"

#define ALIGN 64

typedef struct {
    int64_t bytes;
    int first, last;
    const char *name;
    int64_t offset;
} Slot;

typedef struct {
    const Module *m;
    Compiled *c;
    Diag *d;
    int errors;
    /* the function being built */
    const Function *f;
    PFunc *pf;
    PRef *ref;     /* node id -> where its value lives */
    int *slot;     /* node id -> arena slot, -1 */
    Slot *slots;
    int nslots, slotcap;
    PStep *steps;
    int nsteps, stepcap;
} Build;

static PDtype pdtype_of(DType t) {
    switch (t) {
    case DT_F64: return PD_F64;
    case DT_I32: return PD_I32;
    case DT_BOOL: return PD_BOOL;
    case DT_F32:
    case DT_COUNT: break;
    }
    return PD_F32;
}

static PTensor ptensor_of(const char *name, const Type *t) {
    PTensor p = {.name = strdup(name), .dtype = pdtype_of(t->dtype), .rank = t->rank};
    for (int i = 0; i < t->rank; i++) p.dim[i] = t->dim[i];
    return p;
}

static int64_t type_bytes(const Type *t) {
    return type_numel(t) * (int64_t)ktype_size(ktype_of(t->dtype));
}

static bool build_error(Build *B, const Node *n, const char *msg) {
    if (B->errors++ < 20)
        diag_error(B->d, EXIT_BADINPUT, "function '%s': node '%s' (%s): %s", B->f->name, n->name,
                   op_name(n->op), msg);
    return false;
}

/* ---- steps and slots ---- */

static int new_slot(Build *B, int64_t bytes, const char *name) {
    if (B->nslots == B->slotcap) {
        B->slotcap = B->slotcap ? 2 * B->slotcap : 64;
        B->slots = realloc(B->slots, sizeof(Slot) * (size_t)B->slotcap);
    }
    B->slots[B->nslots] = (Slot){bytes, B->nsteps, B->nsteps, name, -1};
    return B->nslots++;
}

/* Refs to arena slots are written as at = -(slot + 1) until the plan. */
static PRef slot_ref(int s) { return (PRef){PB_ARENA, -(int64_t)s - 1}; }

static PStep *new_step(Build *B, PStepKind kind, int nrefs, const char *label) {
    if (B->nsteps == B->stepcap) {
        B->stepcap = B->stepcap ? 2 * B->stepcap : 64;
        B->steps = realloc(B->steps, sizeof(PStep) * (size_t)B->stepcap);
    }
    PStep *s = &B->steps[B->nsteps++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->nrefs = nrefs;
    s->refs = calloc((size_t)nrefs + 1, sizeof(PRef));
    s->label = strdup(label);
    return s;
}

/* Records that the current step reads ref (extends an arena slot's life). */
static PRef use(Build *B, PRef r) {
    if (r.space == PB_ARENA && r.at < 0) {
        Slot *s = &B->slots[-r.at - 1];
        if (s->last < B->nsteps - 1) s->last = B->nsteps - 1;
    }
    return r;
}

/* The value of node v lives in a fresh slot written by the next step,
 * unless it is an output: then in the caller's output buffer. */
static PRef result_ref(Build *B, int v) {
    int first = -1, count = 0;
    for (int k = 0; k < B->f->noutputs; k++)
        if (B->f->outputs[k].value == v && count++ == 0) first = k;
    /* a value returned twice lives in the arena: an output's ref may name
     * only its own o<k>, other buffers are copied out after the steps */
    if (count == 1) return B->ref[v] = (PRef){PB_OUTPUT, first};
    const Node *n = &B->f->nodes[v];
    int s = new_slot(B, type_bytes(&n->type), n->name);
    B->slots[s].first = B->slots[s].last = B->nsteps;
    return B->ref[v] = slot_ref(s);
}

/* ---- kernels ---- */

static int add_kernel(Build *B, KernelDef *k) {
    Compiled *c = B->c;
    c->launches++;
    for (int i = 0; i < c->nkernels; i++)
        if (kernel_same(c->kernels[i], k)) {
            kernel_free(k);
            return i;
        }
    c->kernels = realloc(c->kernels, sizeof(KernelDef *) * (size_t)(c->nkernels + 1));
    c->kernels[c->nkernels] = k;
    return c->nkernels++;
}

static int64_t grain_for(const KernelDef *k) {
    int64_t work = 1;
    for (int i = 0; i < k->ninsts; i++)
        if (k->insts[i].kind == KI_RED_BEGIN) work *= k->insts[i].i > 0 ? k->insts[i].i : 1;
    int64_t g = 32768 / work;
    return g < 1 ? 1 : g;
}

/* ---- library calls ---- */

/* The op's library call from its row (ops/linalg.c, ops/pool.c); -1 for an
 * op without one. */
static int lib_args(const Node *n, const Type *in0, const Type *in1, int64_t *a, int *nargs) {
    LibArgs rule = codegen_op_row(n->op)->lib;
    return rule ? rule(n, in0, in1, a, nargs) : -1;
}

/* A library step for complex node n, operands at refs ins, result at out. */
static bool lib_step(Build *B, const Node *n, const Type *const *types, const PRef *ins, PRef out) {
    int64_t args[16];
    int nargs = 0;
    int op = lib_args(n, types[0], n->ninputs > 1 ? types[1] : types[0], args, &nargs);
    if (op < 0) return build_error(B, n, "no CPU library kernel for this op");
    if (n->type.dtype != DT_F32 && n->type.dtype != DT_F64)
        return build_error(B, n, "library kernels take f32 or f64");
    PStep *s = new_step(B, PS_LIB, 1 + n->ninputs, n->name);
    s->index = op;
    s->dtype = n->type.dtype == DT_F64 ? CPU_F64 : CPU_F32;
    s->nargs = nargs;
    memcpy(s->args, args, sizeof(int64_t) * (size_t)nargs);
    s->refs[0] = out;
    for (int k = 0; k < n->ninputs; k++) s->refs[k + 1] = use(B, ins[k]);
    return true;
}

static bool complex_node(Build *B, int v) {
    const Node *n = &B->f->nodes[v];
    const Type *types[2];
    PRef ins[2];
    for (int k = 0; k < n->ninputs && k < 2; k++) {
        types[k] = &B->f->nodes[n->inputs[k]].type;
        ins[k] = B->ref[n->inputs[k]];
    }
    return lib_step(B, n, types, ins, result_ref(B, v));
}

/* A concat group: one step per part (codegen/lower.h), all writing the one
 * result. */
static bool concat_parts(Build *B, int v, const Function *body) {
    const Node *n = &B->f->nodes[v];
    PRef out = result_ref(B, v);
    int nparts = (body->nodes[body->outputs[0].value].ninputs + LOWER_CONCAT_PART - 1) / LOWER_CONCAT_PART;
    for (int part = 0; part < nparts; part++) {
        char cname[96], full[128];
        int reads[LOWER_CONCAT_PART], nreads = 0;
        snprintf(full, sizeof full, "k%d_%s_%d", B->c->launches, body->name, part);
        KernelDef *k = lower_concat_part(body, part, lower_c_name(full, cname, 64), reads, &nreads, B->d);
        if (!k) return build_error(B, n, "cannot lower the concat");
        int64_t domain = k->domain, grain = grain_for(k);
        PStep *s = new_step(B, PS_KERNEL, 1 + nreads, n->name);
        s->index = add_kernel(B, k);
        s->domain = domain;
        s->grain = grain;
        s->refs[0] = use(B, out);
        for (int i = 0; i < nreads; i++) s->refs[1 + i] = use(B, B->ref[n->inputs[reads[i]]]);
    }
    return true;
}

/* A fused group: its head's library call (if any) into a temporary slot,
 * then the kernel. */
static bool fused_node(Build *B, int v) {
    const Node *n = &B->f->nodes[v];
    const Function *body = module_find_func(B->m, node_str(n, "body"));
    if (!body) return build_error(B, n, "fused body not found");
    if (lower_is_concat_copy(body)) return concat_parts(B, v, body);
    int head = lower_find_head(body), hslot = -1;
    if (head >= 0) {
        const Node *h = &body->nodes[head];
        const Type *types[2];
        PRef ins[2];
        for (int k = 0; k < h->ninputs && k < 2; k++) {
            int bi = h->inputs[k], pos = 0; /* body input -> operand position */
            if (body->nodes[bi].op != OP_INPUT) return build_error(B, n, "complex head reads a computed value");
            for (int j = 0; j < bi; j++) pos += body->nodes[j].op == OP_INPUT;
            types[k] = &body->nodes[bi].type;
            ins[k] = B->ref[n->inputs[pos]];
        }
        hslot = new_slot(B, type_bytes(&h->type), h->name);
        if (!lib_step(B, h, types, ins, slot_ref(hslot))) return false;
    }
    char cname[96], full[128];
    snprintf(full, sizeof full, "k%d_%s", B->c->launches, body->name);
    KernelDef *k = lower_body(B->m, body, lower_c_name(full, cname, 64), head >= 0, B->d);
    if (!k) return build_error(B, n, "cannot lower the fused body");
    int64_t domain = k->domain, grain = grain_for(k);
    int kid = add_kernel(B, k);
    PRef out = result_ref(B, v);
    PStep *s = new_step(B, PS_KERNEL, 1 + n->ninputs + (hslot >= 0), n->name);
    s->index = kid;
    s->domain = domain;
    s->grain = grain;
    s->refs[0] = out;
    for (int i = 0; i < n->ninputs; i++) s->refs[i + 1] = use(B, B->ref[n->inputs[i]]);
    if (hslot >= 0) s->refs[1 + n->ninputs] = use(B, slot_ref(hslot));
    return true;
}

static int program_func_index(const Compiled *c, const char *name) {
    for (int i = 0; i < c->prog->nfuncs; i++)
        if (strcmp(c->prog->funcs[i].name, name) == 0) return i;
    return -1;
}

static bool loop_node(Build *B, int v) {
    const Node *n = &B->f->nodes[v];
    int body = program_func_index(B->c, node_str(n, "body"));
    if (body < 0) return build_error(B, n, "loop body is not a program function");
    PRef out = result_ref(B, v);
    PStep *s = new_step(B, PS_LOOP, 1 + n->ninputs, n->name);
    s->index = body;
    s->domain = node_int(n, "trips", 0);
    s->grain = type_bytes(&n->type);
    s->refs[0] = out;
    for (int k = 0; k < n->ninputs; k++) s->refs[k + 1] = use(B, B->ref[n->inputs[k]]);
    return true;
}

/* ---- data-parallel collectives ---- */

/* rank_sum: a ranksum step into a fresh buffer (the sum over ranks). */
static bool rank_sum_node(Build *B, int v) {
    const Node *n = &B->f->nodes[v];
    if (n->type.dtype != DT_F32 && n->type.dtype != DT_F64) return build_error(B, n, "rank_sum of a non-float value");
    PRef out = result_ref(B, v);
    PStep *s = new_step(B, PS_RANKSUM, 2, n->name);
    s->dtype = n->type.dtype == DT_F64 ? CPU_F64 : CPU_F32;
    s->domain = type_numel(&n->type);
    s->refs[0] = out;
    s->refs[1] = use(B, B->ref[n->inputs[0]]);
    return true;
}

/* A reduce step right after the step that computed v, for each gradient of
 * train_grads that v is: the data-parallel sum (runtime/app/train_dp.c)
 * takes the last layers' gradients while the first layers' backward still
 * runs. */
static void reduce_steps(Build *B, int v) {
    const size_t plen = strlen(OUT_GRAD_PREFIX);
    if (strcmp(B->f->name, ENTRY_TRAIN_GRADS)) return;
    for (int k = 0; k < B->f->noutputs; k++) {
        const char *name = B->f->outputs[k].name;
        DType t = B->f->nodes[v].type.dtype;
        if (B->f->outputs[k].value != v || strncmp(name, OUT_GRAD_PREFIX, plen) || (t != DT_F32 && t != DT_F64))
            continue;
        PStep *s = new_step(B, PS_REDUCE, 1, name);
        s->index = k;
        s->refs[0] = use(B, B->ref[v]);
    }
}

/* ---- sources ---- */

static void *const_bytes(const Node *n) {
    const Attr *a = node_attr(n, "data");
    int64_t numel = type_numel(&n->type);
    KType t = ktype_of(n->type.dtype);
    char *p = calloc((size_t)numel + 1, ktype_size(t));
    for (int64_t i = 0; i < numel; i++) {
        double v = a->floats ? a->floats[i] : (double)a->ints[i];
        switch (t) {
        case KT_F64: ((double *)p)[i] = v; break;
        case KT_I32: ((int32_t *)p)[i] = (int32_t)v; break;
        case KT_BOOL: ((uint8_t *)p)[i] = v != 0; break;
        case KT_F32:
        case KT_I64: /* no constant of the tensor IR is i64 */
        case KT_COUNT: ((float *)p)[i] = (float)v; break;
        }
    }
    return p;
}

static bool const_name_taken(const Program *p, const char *name) {
    for (int i = 0; i < p->nconsts; i++)
        if (strcmp(p->consts[i].t.name, name) == 0) return true;
    return false;
}

/* Const names are unique in the program: a name another function's
 * constant already took becomes FUNC.NAME (then FUNC.NAME.K). */
static PRef add_const(Build *B, const Node *n) {
    Program *p = B->c->prog;
    char name[512];
    snprintf(name, sizeof name, "%s", n->name);
    for (int k = 1; const_name_taken(p, name); k++)
        snprintf(name, sizeof name, k == 1 ? "%s.%s" : "%s.%s.%d", B->f->name, n->name, k);
    p->consts = realloc(p->consts, sizeof(PConst) * (size_t)(p->nconsts + 1));
    p->consts[p->nconsts] = (PConst){ptensor_of(name, &n->type), const_bytes(n)};
    return (PRef){PB_CONST, p->nconsts++};
}

static bool source_node(Build *B, int v, int *ninputs) {
    const Node *n = &B->f->nodes[v];
    if (n->op == OP_INPUT) {
        B->ref[v] = (PRef){PB_INPUT, (*ninputs)++};
        return true;
    }
    if (n->op == OP_PARAM) {
        B->ref[v] = (PRef){PB_PARAM, module_find_param(B->m, node_str(n, "ref"))};
        return true;
    }
    if (n->op == OP_CONSTANT && node_attr(n, "data")) {
        B->ref[v] = add_const(B, n);
        return true;
    }
    return build_error(B, n, "must be inside a fused group (did the fuse pass run?)");
}

/* ---- memory plan ---- */

static int by_size(const void *a, const void *b) {
    const Slot *x = *(Slot *const *)a, *y = *(Slot *const *)b;
    return x->bytes != y->bytes ? (x->bytes < y->bytes ? 1 : -1) : (x < y ? -1 : x > y);
}

/* First fit by decreasing size among values whose lifetimes overlap. The
 * placed slots are kept in offset order, so each new one walks them once. */
static int64_t plan_slots(Slot *slots, int n) {
    Slot **order = malloc(sizeof(Slot *) * (size_t)(n + 1)), **placed = malloc(sizeof(Slot *) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) order[i] = &slots[i];
    qsort(order, (size_t)n, sizeof *order, by_size);
    int64_t arena = 0;
    for (int i = 0; i < n; i++) {
        Slot *s = order[i];
        int64_t at = 0, size = (s->bytes + ALIGN - 1) / ALIGN * ALIGN;
        int pos = 0; /* where s goes in offset order */
        for (int j = 0; j < i; j++) {
            const Slot *p = placed[j];
            if (p->first > s->last || s->first > p->last) continue;
            if (p->offset >= at + size) break;
            int64_t end = p->offset + (p->bytes + ALIGN - 1) / ALIGN * ALIGN;
            if (end > at) at = end;
        }
        s->offset = at;
        while (pos < i && placed[pos]->offset <= at) pos++;
        memmove(placed + pos + 1, placed + pos, sizeof *placed * (size_t)(i - pos));
        placed[pos] = s;
        if (at + size > arena) arena = at + size;
    }
    free(order);
    free(placed);
    return arena;
}

static void patch_refs(Build *B) {
    for (int i = 0; i < B->nsteps; i++)
        for (int k = 0; k < B->steps[i].nrefs; k++) {
            PRef *r = &B->steps[i].refs[k];
            if (r->space == PB_ARENA && r->at < 0) r->at = B->slots[-r->at - 1].offset;
        }
    for (int k = 0; k < B->pf->noutputs; k++) {
        PRef *r = &B->pf->out_refs[k];
        if (r->space == PB_ARENA && r->at < 0) r->at = B->slots[-r->at - 1].offset;
    }
}

static void record_plan(Build *B, PlanFunc *pl, int64_t arena) {
    pl->func = strdup(B->f->name);
    pl->arena = arena;
    pl->n = B->nslots;
    pl->v = calloc((size_t)B->nslots + 1, sizeof(PlanValue));
    for (int i = 0; i < B->nslots; i++) {
        const Slot *s = &B->slots[i];
        pl->unshared += (s->bytes + ALIGN - 1) / ALIGN * ALIGN;
        pl->v[i] = (PlanValue){strdup(s->name), s->offset, s->bytes, s->first, s->last};
    }
}

/* ---- functions ---- */

static void signature(Build *B) {
    const Function *f = B->f;
    PFunc *pf = B->pf;
    int nin = 0;
    for (int i = 0; i < f->n; i++) nin += f->nodes[i].op == OP_INPUT;
    pf->inputs = calloc((size_t)nin + 1, sizeof(PTensor));
    for (int i = 0; i < f->n; i++)
        if (f->nodes[i].op == OP_INPUT)
            pf->inputs[pf->ninputs++] = ptensor_of(f->nodes[i].name, &f->nodes[i].type);
    pf->noutputs = f->noutputs;
    pf->outputs = calloc((size_t)f->noutputs + 1, sizeof(PTensor));
    pf->out_refs = calloc((size_t)f->noutputs + 1, sizeof(PRef));
    for (int k = 0; k < f->noutputs; k++)
        pf->outputs[k] = ptensor_of(f->outputs[k].name, &f->nodes[f->outputs[k].value].type);
}

static bool build_function(Build *B, const Function *f, PFunc *pf, PlanFunc *pl) {
    B->f = f;
    B->pf = pf;
    B->ref = calloc((size_t)f->n + 1, sizeof(PRef));
    B->nslots = B->nsteps = 0;
    B->steps = NULL;
    B->stepcap = 0;
    pf->name = strdup(f->name);
    signature(B);
    int ninputs = 0;
    bool ok = true;
    for (int v = 0; v < f->n; v++) {
        const Node *n = &f->nodes[v];
        if (op_info(n->op)->cls == OC_SOURCE) ok &= source_node(B, v, &ninputs);
        else if (n->op == OP_FUSED) ok &= fused_node(B, v);
        else if (n->op == OP_LOOP) ok &= loop_node(B, v);
        else if (n->op == OP_RANK_SUM) ok &= rank_sum_node(B, v);
        else if (op_info(n->op)->pattern == PK_COMPLEX) ok &= complex_node(B, v);
        else ok &= build_error(B, n, op_info(n->op)->cls == OC_PRIMITIVE
                                          ? "must be inside a fused group (did the fuse pass run?)"
                                          : "not lowered by the pipeline (composite or grad)");
        if (ok) reduce_steps(B, v);
    }
    for (int k = 0; ok && k < f->noutputs; k++) {
        B->nsteps++; /* outputs are read after the last step */
        pf->out_refs[k] = use(B, B->ref[f->outputs[k].value]);
        B->nsteps--;
    }
    int64_t arena = ok ? plan_slots(B->slots, B->nslots) : 0;
    if (ok) patch_refs(B);
    record_plan(B, pl, arena);
    pf->arena_bytes = arena;
    pf->steps = B->steps;
    pf->nsteps = B->nsteps;
    free(B->ref);
    return ok;
}

/* Program functions: every function but fused bodies (kernels now). One
 * walk over all nodes: a module has about as many bodies as nodes. */
static bool *program_funcs(const Module *m) {
    bool *keep = malloc(sizeof(bool) * (size_t)(m->nfuncs + 1));
    for (int i = 0; i < m->nfuncs; i++) keep[i] = true;
    for (int i = 0; i < m->nfuncs; i++)
        for (int k = 0; k < m->funcs[i]->n; k++) {
            const Node *n = &m->funcs[i]->nodes[k];
            int b = n->op == OP_FUSED ? strmap_get(m->func_index, node_str(n, "body")) : -1;
            if (b >= 0) keep[b] = false;
        }
    return keep;
}

static void module_header(const Module *m, Program *p) {
    p->name = strdup(m->name);
    p->batch = m->batch > 0 ? m->batch : 1; /* hand-built modules have none; programs need >= 1 */
    p->params = calloc((size_t)m->nparams + 1, sizeof(PParam));
    p->nparams = m->nparams;
    for (int i = 0; i < m->nparams; i++) {
        const Param *q = &m->params[i];
        p->params[i] = (PParam){ptensor_of(q->name, &q->type), (int)q->init.kind, q->init.a, q->trainable};
    }
    p->inputs = calloc((size_t)m->ninputs + 1, sizeof(PInput));
    p->ninputs = m->ninputs;
    for (int i = 0; i < m->ninputs; i++) {
        const InputDesc *q = &m->inputs[i];
        p->inputs[i] = (PInput){ptensor_of(q->name, &q->type), q->batched, q->lo, q->hi, q->classes};
    }
    p->settings = calloc((size_t)m->nsettings + 1, sizeof(PSetting));
    p->nsettings = m->nsettings;
    for (int i = 0; i < m->nsettings; i++) {
        const Setting *q = &m->settings[i];
        p->settings[i] = (PSetting){strdup(q->key), q->is_str, q->num, q->is_str ? strdup(q->str) : NULL};
    }
}

bool codegen_build(const Module *m, Compiled *out, Diag *d) {
    memset(out, 0, sizeof *out);
    Program *p = out->prog = calloc(1, sizeof(Program));
    module_header(m, p);
    bool *keep = program_funcs(m);
    for (int i = 0; i < m->nfuncs; i++) p->nfuncs += keep[i];
    p->funcs = calloc((size_t)p->nfuncs + 1, sizeof(PFunc));
    out->plans = calloc((size_t)p->nfuncs + 1, sizeof(PlanFunc));
    /* names first: loop steps refer to their bodies by index */
    for (int i = 0, j = 0; i < m->nfuncs; i++)
        if (keep[i]) p->funcs[j++].name = strdup(m->funcs[i]->name);
    Build B = {.m = m, .c = out, .d = d};
    bool ok = true;
    for (int i = 0, j = 0; i < m->nfuncs; i++) {
        if (!keep[i]) continue;
        free(p->funcs[j].name);
        ok &= build_function(&B, m->funcs[i], &p->funcs[j], &out->plans[j]);
        j++;
    }
    free(B.slots);
    free(keep);
    return ok;
}

void compiled_free(Compiled *c) {
    for (int i = 0; c->plans && c->prog && i < c->prog->nfuncs; i++) {
        for (int k = 0; k < c->plans[i].n; k++) free(c->plans[i].v[k].name);
        free(c->plans[i].v);
        free(c->plans[i].func);
    }
    free(c->plans);
    if (c->prog) program_free(c->prog);
    for (int i = 0; i < c->nkernels; i++) kernel_free(c->kernels[i]);
    free(c->kernels);
    memset(c, 0, sizeof *c);
}

void codegen_write_plan(const Compiled *c, FILE *out) {
    for (int i = 0; i < c->prog->nfuncs; i++) {
        const PlanFunc *pl = &c->plans[i];
        fprintf(out, "func %s arena %lld bytes (unshared %lld, %d values)\n", pl->func,
                (long long)pl->arena, (long long)pl->unshared, pl->n);
        for (int k = 0; k < pl->n; k++)
            fprintf(out, "  %-12lld %-12lld steps %d..%d  %s\n", (long long)pl->v[k].offset,
                    (long long)pl->v[k].bytes, pl->v[k].first, pl->v[k].last, pl->v[k].name);
    }
}
