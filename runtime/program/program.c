/* The program text form (runtime/program/program.h): dtypes and tensor sizes, the
 * printer that writes the canonical spelling, freeing and lookups. The
 * parser is runtime/program/program_parse.c. */
#include "runtime/program/program.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu/cpu_ops.h"
#include "runtime/program/init.h"
#include "runtime/program/program_internal.h"

/* ---- dtypes and tensors ---- */

static const char *const kDtypeNames[] = {"f32", "f64", "i32", "i64", "bool"};

size_t pdtype_size(PDtype t) {
    switch (t) {
    case PD_F32: return 4;
    case PD_F64: return 8;
    case PD_I32: return 4;
    case PD_I64: return 8;
    case PD_BOOL: return 1;
    }
    return 0;
}

const char *pdtype_name(PDtype t) {
    if ((unsigned)t < sizeof kDtypeNames / sizeof *kDtypeNames) return kDtypeNames[t];
    return "?";
}

int pdtype_from_name(const char *s) {
    for (int i = 0; i < (int)(sizeof kDtypeNames / sizeof *kDtypeNames); i++)
        if (!strcmp(s, kDtypeNames[i])) return i;
    return -1;
}

int64_t ptensor_numel(const PTensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->dim[i];
    return n;
}

size_t ptensor_bytes(const PTensor *t) {
    return (size_t)ptensor_numel(t) * pdtype_size(t->dtype);
}

const char *const program_init_names[4] = {"zeros", "ones", "uniform", "normal"};

int program_lib_op(const char *name) {
    for (int op = 0; op < CPU_OP_COUNT; op++) {
        const char *n = cpu_op_name((CpuOp)op);
        if (n && !strcmp(n, name)) return op;
    }
    return -1;
}


void program_ref_text(PRef r, char buf[32]) {
    snprintf(buf, 32, "%c%lld", "apioc"[r.space < 5 ? r.space : 0], (long long)r.at);
}

/* ---- printer ---- */

typedef struct {
    char *s;
    size_t n, cap;
    bool oom;
} Buf;

static void bprintf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bprintf(Buf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)w < b->cap - b->n) {
            b->n += (size_t)w;
            return;
        }
        size_t nc = b->cap * 2 + (size_t)w + 1;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
}

/* The shortest %g spelling that reads back as the same double. */
static void fmt_num(char out[40], double v) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, v);
        if (strtod(out, NULL) == v || v != v) return;
    }
}

static void put_tensor(Buf *b, const PTensor *t) {
    bprintf(b, "%s %s [", t->name ? t->name : "?", pdtype_name(t->dtype));
    for (int i = 0; i < t->rank; i++) bprintf(b, "%s%lld", i ? "," : "", (long long)t->dim[i]);
    bprintf(b, "]");
}

static void put_ref(Buf *b, PRef r) {
    char t[32];
    program_ref_text(r, t);
    bprintf(b, " %s", t);
}

int64_t pstep_ranksum_bytes(const PStep *s) { return s->domain * (s->dtype == CPU_F64 ? 8 : 4); }

static void put_step(Buf *b, const Program *p, const PStep *s) {
    switch (s->kind) {
    case PS_KERNEL:
        bprintf(b, "  kernel %d %lld %lld", s->index, (long long)s->domain, (long long)s->grain);
        break;
    case PS_LIB: {
        const char *n = (unsigned)s->index < CPU_OP_COUNT ? cpu_op_name((CpuOp)s->index) : NULL;
        bprintf(b, "  lib %s %s", n ? n : "?", s->dtype == CPU_F64 ? "f64" : "f32");
        for (int i = 0; i < s->nargs; i++) bprintf(b, " %lld", (long long)s->args[i]);
        bprintf(b, " ;");
        break;
    }
    case PS_COPY: bprintf(b, "  copy %lld", (long long)s->domain); break;
    case PS_LOOP:
        bprintf(b, "  loop %s %lld %lld",
                s->index >= 0 && s->index < p->nfuncs && p->funcs[s->index].name
                    ? p->funcs[s->index].name : "?",
                (long long)s->domain, (long long)s->grain);
        break;
    case PS_REDUCE: bprintf(b, "  reduce %d", s->index); break;
    case PS_RANKSUM:
        bprintf(b, "  ranksum %s %lld", s->dtype == CPU_F64 ? "f64" : "f32", (long long)s->domain);
        break;
    }
    for (int i = 0; i < s->nrefs; i++) put_ref(b, s->refs[i]);
    if (s->label && *s->label) bprintf(b, " # %s", s->label);
    bprintf(b, "\n");
}

char *program_to_text(const Program *p) {
    if (!p) return NULL;
    Buf b = {.cap = 4096};
    if (!(b.s = malloc(b.cap))) return NULL;
    char n1[40], n2[40];
    bprintf(&b, "program %s batch %lld\n", p->name ? p->name : "?", (long long)p->batch);
    for (int i = 0; i < p->nparams; i++) {
        const PParam *pp = &p->params[i];
        bprintf(&b, "param ");
        put_tensor(&b, &pp->t);
        fmt_num(n1, pp->init_a);
        bprintf(&b, " init %s %s %s\n",
                (unsigned)pp->init_kind < 4 ? program_init_names[pp->init_kind] : "?", n1,
                pp->trainable ? "trainable" : "state");
    }
    for (int i = 0; i < p->ninputs; i++) {
        const PInput *in = &p->inputs[i];
        bprintf(&b, "input ");
        put_tensor(&b, &in->t);
        fmt_num(n1, in->lo);
        fmt_num(n2, in->hi);
        bprintf(&b, " %s %s %s %d\n", in->batched ? "batched" : "fixed", n1, n2, in->classes);
    }
    for (int i = 0; i < p->nsettings; i++) {
        const PSetting *s = &p->settings[i];
        if (!s->is_str) {
            fmt_num(n1, s->num);
            bprintf(&b, "setting %s num %s\n", s->key, n1);
            continue;
        }
        bprintf(&b, "setting %s str \"", s->key);
        for (const unsigned char *q = (const unsigned char *)(s->str ? s->str : ""); *q; q++) {
            if (*q == '\\' || *q == '"') bprintf(&b, "\\%c", *q);
            else if (*q == '\n') bprintf(&b, "\\n");
            else if (*q == '\t') bprintf(&b, "\\t");
            else if (*q < 0x20 || *q == 0x7f) bprintf(&b, "\\x%02x", *q);
            else bprintf(&b, "%c", *q);
        }
        bprintf(&b, "\"\n");
    }
    for (int i = 0; i < p->nconsts; i++) {
        const PConst *c = &p->consts[i];
        bprintf(&b, "const ");
        put_tensor(&b, &c->t);
        size_t bytes = ptensor_bytes(&c->t);
        bprintf(&b, " ");
        if (!bytes) bprintf(&b, "-");
        for (size_t k = 0; k < bytes; k++)
            bprintf(&b, "%02x", ((const unsigned char *)c->data)[k]);
        bprintf(&b, "\n");
    }
    for (int fi = 0; fi < p->nfuncs; fi++) {
        const PFunc *f = &p->funcs[fi];
        bprintf(&b, "func %s arena %lld\n", f->name ? f->name : "?", (long long)f->arena_bytes);
        for (int i = 0; i < f->ninputs; i++) {
            bprintf(&b, "  in ");
            put_tensor(&b, &f->inputs[i]);
            bprintf(&b, "\n");
        }
        for (int i = 0; i < f->noutputs; i++) {
            bprintf(&b, "  out ");
            put_tensor(&b, &f->outputs[i]);
            put_ref(&b, f->out_refs[i]);
            bprintf(&b, "\n");
        }
        for (int i = 0; i < f->nsteps; i++) put_step(&b, p, &f->steps[i]);
        bprintf(&b, "end\n");
    }
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ---- freeing and lookups ---- */

void program_free(Program *p) {
    if (!p) return;
    free(p->name);
    for (int i = 0; i < p->nparams; i++) free(p->params[i].t.name);
    free(p->params);
    for (int i = 0; i < p->ninputs; i++) free(p->inputs[i].t.name);
    free(p->inputs);
    for (int i = 0; i < p->nsettings; i++) {
        free(p->settings[i].key);
        free(p->settings[i].str);
    }
    free(p->settings);
    for (int i = 0; i < p->nconsts; i++) {
        free(p->consts[i].t.name);
        free(p->consts[i].data);
    }
    free(p->consts);
    for (int fi = 0; fi < p->nfuncs; fi++) {
        PFunc *f = &p->funcs[fi];
        free(f->name);
        for (int i = 0; i < f->ninputs; i++) free(f->inputs[i].name);
        for (int i = 0; i < f->noutputs; i++) free(f->outputs[i].name);
        free(f->inputs);
        free(f->outputs);
        free(f->out_refs);
        for (int i = 0; i < f->nsteps; i++) {
            free(f->steps[i].refs);
            free(f->steps[i].label);
        }
        free(f->steps);
    }
    free(p->funcs);
    free(p);
}

int program_find_func(const Program *p, const char *name) {
    for (int i = 0; p && name && i < p->nfuncs; i++)
        if (p->funcs[i].name && !strcmp(p->funcs[i].name, name)) return i;
    return -1;
}

int program_find_param(const Program *p, const char *name) {
    for (int i = 0; p && name && i < p->nparams; i++)
        if (p->params[i].t.name && !strcmp(p->params[i].t.name, name)) return i;
    return -1;
}

const PSetting *program_setting(const Program *p, const char *key) {
    for (int i = 0; p && key && i < p->nsettings; i++)
        if (p->settings[i].key && !strcmp(p->settings[i].key, key)) return &p->settings[i];
    return NULL;
}
