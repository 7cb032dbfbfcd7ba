/* The program text form's parser (runtime/program/program.h): line-oriented, with
 * strict validation.
 *
 * The parser works on a private copy of the text, one line at a time: the
 * line is cut at its label ('#', step lines only), split into blank-separated
 * tokens and dispatched on the first. Elements are appended to the Program
 * zeroed and counted at once, so program_free can release a half-built
 * program on any error path. Loop steps name their body by function name;
 * those are resolved (and the bodies' signatures checked, and recursion
 * refused) after the last line, with the loop's line number kept for the
 * message. The fields of a line (numbers, dims, references) are read by
 * runtime/program/program_fields.c.
 */
#include "runtime/program/program.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu/cpu_ops.h"
#include "runtime/program/init.h"
#include "runtime/program/program_internal.h"
#include "runtime/program/program_parser.h"

/* ---- lines ---- */

typedef enum { SEC_PROGRAM, SEC_PARAM, SEC_INPUT, SEC_SETTING, SEC_CONST, SEC_FUNC } Section;
static const char *const kSections[] = {"program", "param", "input", "setting", "const",
                                        "func"};

static PFunc *cur_func(Parser *ps) { return &ps->p->funcs[ps->p->nfuncs - 1]; }

static bool line_program(Parser *ps) {
    if (!pf_want_tokens(ps, 4, "program NAME batch B")) return false;
    if (strcmp(ps->tok[2], "batch"))
        return pf_fail(ps, "expected 'batch', got '%s' (program NAME batch B)", ps->tok[2]);
    if (!pf_check_name(ps, "program", ps->tok[1])) return false;
    if (!(ps->p->name = pf_dupstr(ps->tok[1]))) return pf_oom(ps);
    return pf_parse_i64(ps, "batch", ps->tok[3], 1, INT32_MAX, &ps->p->batch);
}

static bool line_param(Parser *ps) {
    Program *p = ps->p;
    if (!pf_want_tokens(ps, 8, "param NAME DTYPE [dims] init KIND A trainable|state")) return false;
    PParam *np = pf_grow(p->params, p->nparams, &ps->cap_params, sizeof *np);
    if (!np) return pf_oom(ps);
    p->params = np;
    PParam *pp = &p->params[p->nparams++];
    if (!pf_parse_tensor(ps, "param", 1, &pp->t)) return false;
    if (program_find_param(p, pp->t.name) < p->nparams - 1)
        return pf_fail(ps, "duplicate param '%s'", pp->t.name);
    if (strcmp(ps->tok[4], "init"))
        return pf_fail(ps, "param %s: expected 'init', got '%s'", pp->t.name, ps->tok[4]);
    pp->init_kind = -1;
    for (int k = 0; k < 4; k++)
        if (!strcmp(ps->tok[5], program_init_names[k])) pp->init_kind = k;
    if (pp->init_kind < 0)
        return pf_fail(ps, "param %s: unknown init '%s' (zeros ones uniform normal)", pp->t.name,
                    ps->tok[5]);
    if (!pf_parse_num(ps, "init scale", ps->tok[6], &pp->init_a)) return false;
    if (!isfinite(pp->init_a))
        return pf_fail(ps, "param %s: init scale '%s' is not finite", pp->t.name, ps->tok[6]);
    if (!strcmp(ps->tok[7], "trainable")) pp->trainable = true;
    else if (strcmp(ps->tok[7], "state"))
        return pf_fail(ps, "param %s: expected 'trainable' or 'state', got '%s'", pp->t.name,
                    ps->tok[7]);
    return true;
}

static bool line_input(Parser *ps) {
    Program *p = ps->p;
    if (!pf_want_tokens(ps, 8, "input NAME DTYPE [dims] batched|fixed LO HI CLASSES")) return false;
    PInput *ni = pf_grow(p->inputs, p->ninputs, &ps->cap_inputs, sizeof *ni);
    if (!ni) return pf_oom(ps);
    p->inputs = ni;
    PInput *in = &p->inputs[p->ninputs++];
    if (!pf_parse_tensor(ps, "input", 1, &in->t)) return false;
    for (int k = 0; k < p->ninputs - 1; k++)
        if (!strcmp(p->inputs[k].t.name, in->t.name))
            return pf_fail(ps, "duplicate input '%s'", in->t.name);
    if (!strcmp(ps->tok[4], "batched")) in->batched = true;
    else if (strcmp(ps->tok[4], "fixed"))
        return pf_fail(ps, "input %s: expected 'batched' or 'fixed', got '%s'", in->t.name,
                    ps->tok[4]);
    int64_t classes;
    if (!pf_parse_num(ps, "input lo", ps->tok[5], &in->lo) ||
        !pf_parse_num(ps, "input hi", ps->tok[6], &in->hi) ||
        !pf_parse_i64(ps, "input classes", ps->tok[7], 0, INT32_MAX, &classes))
        return false;
    in->classes = (int)classes;
    return true;
}

/* setting KEY num V | setting KEY str "S" (S with \\ \" \n \t \xHH). Works on
 * the raw line because the string may hold blanks and '#'. */
static bool line_setting(Parser *ps, char *line) {
    Program *p = ps->p;
    PSetting *ns = pf_grow(p->settings, p->nsettings, &ps->cap_settings, sizeof *ns);
    if (!ns) return pf_oom(ps);
    p->settings = ns;
    PSetting *s = &p->settings[p->nsettings++];
    char *q = line;
    char *f[3];
    for (int k = 0; k < 3; k++) { /* "setting", KEY, kind */
        while (pf_is_blank(*q)) q++;
        if (!*q) return pf_fail(ps, "'setting' takes KEY num V or KEY str \"S\"");
        f[k] = q;
        while (*q && !pf_is_blank(*q)) q++;
        if (*q) *q++ = '\0';
    }
    if (!pf_check_name(ps, "setting", f[1])) return false;
    if (!(s->key = pf_dupstr(f[1]))) return pf_oom(ps);
    if (program_setting(p, s->key) != s) return pf_fail(ps, "duplicate setting '%s'", s->key);
    while (pf_is_blank(*q)) q++;
    if (!strcmp(f[2], "num")) {
        char *v = q;
        while (*q && !pf_is_blank(*q)) q++;
        if (*q) *q++ = '\0';
        while (pf_is_blank(*q)) q++;
        if (!*v) return pf_fail(ps, "setting %s: missing value", s->key);
        if (*q) return pf_fail(ps, "setting %s: text after the value: '%s'", s->key, q);
        return pf_parse_num(ps, "setting value", v, &s->num);
    }
    if (strcmp(f[2], "str"))
        return pf_fail(ps, "setting %s: expected 'num' or 'str', got '%s'", s->key, f[2]);
    s->is_str = true;
    if (*q != '"') return pf_fail(ps, "setting %s: expected a string in double quotes", s->key);
    q++;
    size_t cap = strlen(q) + 1, n = 0;
    if (!(s->str = malloc(cap))) return pf_oom(ps);
    for (;;) {
        unsigned char c = (unsigned char)*q++;
        if (!c) return pf_fail(ps, "setting %s: unterminated string", s->key);
        if (c == '"') break;
        if (c < 0x20 && c != '\t') return pf_fail(ps, "setting %s: raw control byte in string",
                                               s->key);
        if (c == '\\') {
            c = (unsigned char)*q++;
            if (c == 'n') c = '\n';
            else if (c == 't') c = '\t';
            else if (c == 'x') {
                int v = 0;
                for (int k = 0; k < 2; k++) {
                    char h = *q++;
                    int d = h >= '0' && h <= '9' ? h - '0'
                          : h >= 'a' && h <= 'f' ? h - 'a' + 10
                          : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                    if (d < 0) return pf_fail(ps, "setting %s: bad \\x escape", s->key);
                    v = v * 16 + d;
                }
                if (!v) return pf_fail(ps, "setting %s: \\x00 in string", s->key);
                c = (unsigned char)v;
            } else if (c != '\\' && c != '"')
                return pf_fail(ps, "setting %s: unknown escape '\\%c'", s->key, c ? c : '0');
        }
        s->str[n++] = (char)c;
    }
    s->str[n] = '\0';
    while (pf_is_blank(*q)) q++;
    if (*q) return pf_fail(ps, "setting %s: text after the string: '%s'", s->key, q);
    return true;
}

static int hexval(char h) {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
}

static bool line_const(Parser *ps) {
    Program *p = ps->p;
    if (!pf_want_tokens(ps, 5, "const NAME DTYPE [dims] HEX")) return false;
    PConst *nc = pf_grow(p->consts, p->nconsts, &ps->cap_consts, sizeof *nc);
    if (!nc) return pf_oom(ps);
    p->consts = nc;
    PConst *c = &p->consts[p->nconsts++];
    if (!pf_parse_tensor(ps, "const", 1, &c->t)) return false;
    for (int k = 0; k < p->nconsts - 1; k++)
        if (!strcmp(p->consts[k].t.name, c->t.name))
            return pf_fail(ps, "duplicate const '%s'", c->t.name);
    size_t bytes = ptensor_bytes(&c->t);
    const char *h = ps->tok[4];
    size_t hl = strlen(h);
    if (!strcmp(h, "-")) hl = 0;
    if (hl % 2 || hl / 2 != bytes)
        return pf_fail(ps, "const %s: %zu hex digits, expected %zu (%zu bytes of %s %s)",
                    c->t.name, hl, 2 * bytes, bytes, pdtype_name(c->t.dtype), ps->tok[3]);
    if (!(c->data = malloc(bytes ? bytes : 1))) return pf_oom(ps);
    for (size_t i = 0; i < bytes; i++) {
        int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return pf_fail(ps, "const %s: '%c%c' is not a hex byte", c->t.name, h[2 * i],
                        h[2 * i + 1]);
        ((unsigned char *)c->data)[i] = (unsigned char)(hi * 16 + lo);
    }
    return true;
}

static bool line_func(Parser *ps) {
    Program *p = ps->p;
    if (!pf_want_tokens(ps, 4, "func NAME arena BYTES")) return false;
    PFunc *nf = pf_grow(p->funcs, p->nfuncs, &ps->cap_funcs, sizeof *nf);
    if (!nf) return pf_oom(ps);
    p->funcs = nf;
    int *nl = pf_grow(ps->loop_lines, p->nfuncs, &ps->cap_lines, sizeof *nl);
    if (!nl) return pf_oom(ps);
    ps->loop_lines = nl;
    ps->loop_lines[p->nfuncs] = ps->line;
    PFunc *f = &p->funcs[p->nfuncs++];
    ps->cap_fin = ps->cap_fout = ps->cap_steps = 0;
    if (!pf_check_name(ps, "func", ps->tok[1])) return false;
    if (!(f->name = pf_dupstr(ps->tok[1]))) return pf_oom(ps);
    if (program_find_func(p, f->name) < p->nfuncs - 1)
        return pf_fail(ps, "duplicate func '%s'", f->name);
    if (strcmp(ps->tok[2], "arena"))
        return pf_fail(ps, "func %s: expected 'arena', got '%s'", f->name, ps->tok[2]);
    return pf_parse_i64(ps, "arena size", ps->tok[3], 0, INT64_C(1) << 60, &f->arena_bytes);
}

/* Where within a function we are: in lines, out lines, then steps. */
enum { FN_IN, FN_OUT, FN_STEPS };

static bool line_in(Parser *ps) {
    PFunc *f = cur_func(ps);
    if (!pf_want_tokens(ps, 4, "in NAME DTYPE [dims]")) return false;
    PTensor *ni = pf_grow(f->inputs, f->ninputs, &ps->cap_fin, sizeof *ni);
    if (!ni) return pf_oom(ps);
    f->inputs = ni;
    return pf_parse_tensor(ps, "in", 1, &f->inputs[f->ninputs++]);
}

static bool line_out(Parser *ps) {
    PFunc *f = cur_func(ps);
    if (!pf_want_tokens(ps, 5, "out NAME DTYPE [dims] REF")) return false;
    int cap = ps->cap_fout;
    PTensor *no = pf_grow(f->outputs, f->noutputs, &cap, sizeof *no);
    if (!no) return pf_oom(ps);
    f->outputs = no;
    cap = ps->cap_fout;
    PRef *nr = pf_grow(f->out_refs, f->noutputs, &cap, sizeof *nr);
    if (!nr) return pf_oom(ps);
    f->out_refs = nr;
    ps->cap_fout = cap;
    int k = f->noutputs++;
    PTensor *t = &f->outputs[k];
    if (!pf_parse_tensor(ps, "out", 1, t)) return false;
    PRef *r = &f->out_refs[k];
    if (!pf_parse_ref(ps, ps->tok[4], r)) return false;
    char what[160];
    snprintf(what, sizeof what, "output %s", t->name);
    if (r->space == PB_OUTPUT) {
        if (r->at != k)
            return pf_fail(ps, "%s refers to output o%lld; an output may name only itself (o%d)",
                        what, (long long)r->at, k);
        return true;
    }
    return pf_check_ref(ps, f, *r, (int64_t)ptensor_bytes(t), false, what);
}

static bool line_kernel(Parser *ps) {
    PFunc *f = cur_func(ps);
    PStep *s = &f->steps[f->nsteps - 1];
    s->kind = PS_KERNEL;
    if (ps->ntok < 5)
        return pf_fail(ps, "'kernel' takes K DOMAIN GRAIN REF... (at least one buffer)");
    int64_t k;
    if (!pf_parse_i64(ps, "kernel index", ps->tok[1], 0, INT32_MAX, &k)) return false;
    if (k >= ps->nkernels)
        return pf_fail(ps, "kernel index %lld is beyond the kernel table (%d kernels)",
                    (long long)k, ps->nkernels);
    s->index = (int)k;
    if (!pf_parse_i64(ps, "kernel domain", ps->tok[2], 0, INT64_MAX, &s->domain) ||
        !pf_parse_i64(ps, "kernel grain", ps->tok[3], 1, INT64_MAX, &s->grain) ||
        !pf_parse_refs(ps, 4, s))
        return false;
    char what[64];
    snprintf(what, sizeof what, "kernel step (kernel %d)", s->index);
    for (int i = 0; i < s->nrefs; i++)
        if (!pf_check_ref(ps, f, s->refs[i], -1, false, what)) return false;
    return true;
}

/* The byte sizes of a lib step's buffers {out, in0, in1} from its args
 * (already checked by cpu_op_check); nbufs receives how many it has. */
static bool lib_sizes(CpuOp op, const int64_t *a, int64_t esize, int64_t sz[3], int *nbufs) {
    int64_t x[3][4];
    *nbufs = cpu_op_buffer_dims(op, a, x);
    if (!*nbufs) return false; /* not an op */
    for (int i = 0; i < *nbufs; i++) {
        int64_t t = esize;
        for (int j = 0; j < 4; j++)
            if (!pf_mul_ok(t, x[i][j], &t)) return false;
        sz[i] = t;
    }
    return true;
}

static bool line_lib(Parser *ps) {
    PFunc *f = cur_func(ps);
    PStep *s = &f->steps[f->nsteps - 1];
    s->kind = PS_LIB;
    if (ps->ntok < 4) return pf_fail(ps, "'lib' takes OP DTYPE ARG... ; REF...");
    int op = program_lib_op(ps->tok[1]);
    if (op < 0) {
        char names[256] = "";
        for (int k = 0; k < CPU_OP_COUNT; k++) {
            const char *n = cpu_op_name((CpuOp)k);
            size_t l = strlen(names);
            snprintf(names + l, sizeof names - l, "%s%s", k ? " " : "", n ? n : "?");
        }
        return pf_fail(ps, "unknown lib op '%s' (%s)", ps->tok[1], names);
    }
    s->index = op;
    if (!strcmp(ps->tok[2], "f32")) s->dtype = CPU_F32;
    else if (!strcmp(ps->tok[2], "f64")) s->dtype = CPU_F64;
    else return pf_fail(ps, "lib %s: dtype '%s' is not f32 or f64", ps->tok[1], ps->tok[2]);
    int semi = -1;
    for (int k = 3; k < ps->ntok && semi < 0; k++)
        if (!strcmp(ps->tok[k], ";")) semi = k;
    if (semi < 0) return pf_fail(ps, "lib %s: missing ';' between the args and the buffers",
                              ps->tok[1]);
    int want = cpu_op_nargs((CpuOp)op);
    if (semi - 3 != want)
        return pf_fail(ps, "lib %s takes %d args, got %d", ps->tok[1], want, semi - 3);
    s->nargs = want;
    for (int k = 0; k < want; k++)
        if (!pf_parse_i64(ps, "lib arg", ps->tok[3 + k], INT64_MIN, INT64_MAX, &s->args[k]))
            return false;
    char cerr[256] = "";
    if (!cpu_op_check((CpuOp)op, s->args, cerr, sizeof cerr))
        return pf_fail(ps, "lib %s: %s", ps->tok[1], cerr);
    int64_t sz[3];
    int nbufs = 0;
    if (!lib_sizes((CpuOp)op, s->args, s->dtype == CPU_F64 ? 8 : 4, sz, &nbufs))
        return pf_fail(ps, "lib %s: buffer sizes overflow", ps->tok[1]);
    if (!pf_parse_refs(ps, semi + 1, s)) return false;
    if (s->nrefs != nbufs)
        return pf_fail(ps, "lib %s takes %d buffers (out, inputs), got %d", ps->tok[1], nbufs,
                    s->nrefs);
    char what[64];
    snprintf(what, sizeof what, "lib step (%s)", ps->tok[1]);
    for (int i = 0; i < s->nrefs; i++)
        if (!pf_check_ref(ps, f, s->refs[i], sz[i], i == 0, what)) return false;
    /* The output must not overlap an input (cpu_op_run's contract). */
    for (int i = 1; i < s->nrefs; i++) {
        PRef o = s->refs[0], in = s->refs[i];
        bool overlap = o.space == in.space &&
                       (o.space != PB_ARENA ? o.at == in.at
                                            : o.at < in.at + sz[i] && in.at < o.at + sz[0]);
        if (overlap) {
            char a[32], b[32];
            program_ref_text(o, a);
            program_ref_text(in, b);
            return pf_fail(ps, "%s: output %s (%lld bytes) overlaps input %s (%lld bytes)", what,
                        a, (long long)sz[0], b, (long long)sz[i]);
        }
    }
    return true;
}

static bool line_copy(Parser *ps) {
    PFunc *f = cur_func(ps);
    PStep *s = &f->steps[f->nsteps - 1];
    s->kind = PS_COPY;
    if (!pf_want_tokens(ps, 4, "copy BYTES DST SRC")) return false;
    if (!pf_parse_i64(ps, "copy size", ps->tok[1], 0, INT64_MAX, &s->domain) ||
        !pf_parse_refs(ps, 2, s))
        return false;
    return pf_check_ref(ps, f, s->refs[0], s->domain, true, "copy step (destination)") &&
           pf_check_ref(ps, f, s->refs[1], s->domain, false, "copy step (source)");
}

static bool line_reduce(Parser *ps) {
    PFunc *f = cur_func(ps);
    PStep *s = &f->steps[f->nsteps - 1];
    s->kind = PS_REDUCE;
    int64_t k;
    if (!pf_want_tokens(ps, 3, "reduce K REF") ||
        !pf_parse_i64(ps, "reduce output", ps->tok[1], 0, INT32_MAX, &k))
        return false;
    if (k >= f->noutputs)
        return pf_fail(ps, "reduce names output %lld but func %s has %d outputs", (long long)k, f->name,
                       f->noutputs);
    const PTensor *o = &f->outputs[k];
    if (o->dtype != PD_F32 && o->dtype != PD_F64)
        return pf_fail(ps, "reduce names output %s, which is not f32 or f64", o->name);
    s->index = (int)k;
    return pf_parse_refs(ps, 2, s) &&
           pf_check_ref(ps, f, s->refs[0], (int64_t)ptensor_bytes(o), false, "reduce step");
}

static bool line_ranksum(Parser *ps) {
    PFunc *f = cur_func(ps);
    PStep *s = &f->steps[f->nsteps - 1];
    s->kind = PS_RANKSUM;
    if (!pf_want_tokens(ps, 5, "ranksum DTYPE COUNT OUT IN")) return false;
    if (strcmp(ps->tok[1], "f32") && strcmp(ps->tok[1], "f64"))
        return pf_fail(ps, "ranksum dtype '%s' is not f32 or f64", ps->tok[1]);
    s->dtype = strcmp(ps->tok[1], "f64") ? CPU_F32 : CPU_F64;
    if (!pf_parse_i64(ps, "ranksum count", ps->tok[2], 0, INT64_MAX / 8, &s->domain) || !pf_parse_refs(ps, 3, s))
        return false;
    int64_t bytes = pstep_ranksum_bytes(s);
    return pf_check_ref(ps, f, s->refs[0], bytes, true, "ranksum step (output)") &&
           pf_check_ref(ps, f, s->refs[1], bytes, false, "ranksum step (input)");
}

static bool line_loop(Parser *ps) {
    Program *p = ps->p;
    PFunc *f = cur_func(ps);
    PStep *s = &f->steps[f->nsteps - 1];
    s->kind = PS_LOOP;
    s->index = -1;
    if (ps->ntok < 6) return pf_fail(ps, "'loop' takes FUNC TRIPS CARRYBYTES OUT INIT CAPTURE...");
    if (!pf_parse_i64(ps, "loop trips", ps->tok[2], 0, INT32_MAX, &s->domain) ||
        !pf_parse_i64(ps, "loop carry size", ps->tok[3], 0, INT64_MAX, &s->grain) ||
        !pf_parse_refs(ps, 4, s))
        return false;
    if (!pf_check_ref(ps, f, s->refs[0], s->grain, true, "loop step (carry out)") ||
        !pf_check_ref(ps, f, s->refs[1], s->grain, false, "loop step (carry init)"))
        return false;
    for (int i = 2; i < s->nrefs; i++)
        if (!pf_check_ref(ps, f, s->refs[i], -1, false, "loop step (capture)")) return false;
    PendingLoop *nl = pf_grow(ps->loops, ps->nloops, &ps->cap_loops, sizeof *nl);
    if (!nl) return pf_oom(ps);
    ps->loops = nl;
    PendingLoop *pl = &ps->loops[ps->nloops++];
    pl->func = p->nfuncs - 1;
    pl->step = f->nsteps - 1;
    pl->line = ps->line;
    if (!pf_check_name(ps, "loop body", ps->tok[1])) return false;
    if (!(pl->name = pf_dupstr(ps->tok[1]))) return pf_oom(ps);
    return true;
}

/* ---- deferred loop checks ---- */

static bool check_loop(Parser *ps, PendingLoop *pl) {
    Program *p = ps->p;
    PFunc *f = &p->funcs[pl->func];
    PStep *s = &f->steps[pl->step];
    ps->line = pl->line;
    int g = program_find_func(p, pl->name);
    if (g < 0) return pf_fail(ps, "loop body '%s' is not a function of the program", pl->name);
    s->index = g;
    const PFunc *b = &p->funcs[g];
    int ncap = s->nrefs - 2;
    if (b->ninputs != 2 + ncap)
        return pf_fail(ps, "loop body %s takes %d inputs; the loop passes %d (trip, carry and "
                        "%d captures)", b->name, b->ninputs, 2 + ncap, ncap);
    if (b->noutputs != 1)
        return pf_fail(ps, "loop body %s has %d outputs; a body has one (the next carry)",
                    b->name, b->noutputs);
    if (b->inputs[0].dtype != PD_I32 || ptensor_numel(&b->inputs[0]) != 1)
        return pf_fail(ps, "loop body %s: input 0 (%s) must be an i32 scalar (the trip index)",
                    b->name, b->inputs[0].name);
    if ((int64_t)ptensor_bytes(&b->inputs[1]) != s->grain)
        return pf_fail(ps, "loop body %s: carry input %s has %zu bytes, the loop carries %lld",
                    b->name, b->inputs[1].name, ptensor_bytes(&b->inputs[1]),
                    (long long)s->grain);
    if ((int64_t)ptensor_bytes(&b->outputs[0]) != s->grain)
        return pf_fail(ps, "loop body %s: output %s has %zu bytes, the loop carries %lld", b->name,
                    b->outputs[0].name, ptensor_bytes(&b->outputs[0]), (long long)s->grain);
    for (int i = 0; i < ncap; i++) {
        char what[200];
        snprintf(what, sizeof what, "loop step (capture %d for %s's input %s)", i, b->name,
                 b->inputs[2 + i].name);
        if (!pf_check_ref(ps, f, s->refs[2 + i], (int64_t)ptensor_bytes(&b->inputs[2 + i]), false,
                       what))
            return false;
    }
    return true;
}

/* Depth-first search over loop calls; state 0 new, 1 on the stack, 2 done. */
static bool no_cycle(Parser *ps, int fi, char *state) {
    Program *p = ps->p;
    state[fi] = 1;
    for (int k = 0; k < ps->nloops; k++) {
        PendingLoop *pl = &ps->loops[k];
        if (pl->func != fi) continue;
        int g = p->funcs[fi].steps[pl->step].index;
        if (state[g] == 1) {
            ps->line = pl->line;
            return pf_fail(ps, "loop in %s calls %s recursively", p->funcs[fi].name,
                        p->funcs[g].name);
        }
        if (state[g] == 0 && !no_cycle(ps, g, state)) return false;
    }
    state[fi] = 2;
    return true;
}

/* ---- driver ---- */

static bool is_step_keyword(const char *w) {
    return !strcmp(w, "kernel") || !strcmp(w, "lib") || !strcmp(w, "copy") ||
           !strcmp(w, "loop") || !strcmp(w, "reduce") || !strcmp(w, "ranksum");
}

/* Where the driver is: the last top-level section and, inside a func, which
 * part of it. */
typedef struct {
    int section; /* -1 before the program line */
    bool in_func;
    int fn_part;
} Where;

static int section_of(const char *kw) {
    for (int k = 0; k <= SEC_FUNC; k++)
        if (!strcmp(kw, kSections[k])) return k;
    return -1;
}

/* The line's first word into kw (empty when too long to be a keyword); on a
 * step line the label after '#' is cut off and returned (NULL if none). */
static char *split_keyword(char *line, char kw[16]) {
    char *w = line;
    while (pf_is_blank(*w)) w++;
    char *we = w;
    while (*we && !pf_is_blank(*we)) we++;
    size_t wl = (size_t)(we - w);
    kw[0] = '\0';
    if (wl < 16) memcpy(kw, w, wl), kw[wl] = '\0';
    char *hash = is_step_keyword(kw) ? strchr(line, '#') : NULL;
    if (!hash) return NULL;
    *hash = '\0';
    char *label = hash + 1;
    while (pf_is_blank(*label)) label++;
    size_t ll = strlen(label);
    while (ll && pf_is_blank(label[ll - 1])) label[--ll] = '\0';
    return ll ? label : NULL;
}

/* A step line of the current func. */
static bool add_step(Parser *ps, const char *kw, const char *label) {
    PFunc *f = cur_func(ps);
    PStep *ns = pf_grow(f->steps, f->nsteps, &ps->cap_steps, sizeof *ns);
    if (!ns) return pf_oom(ps);
    f->steps = ns;
    PStep *s = &f->steps[f->nsteps++];
    if (label && !(s->label = pf_dupstr(label))) return pf_oom(ps);
    return !strcmp(kw, "kernel") ? line_kernel(ps)
         : !strcmp(kw, "lib")    ? line_lib(ps)
         : !strcmp(kw, "copy")   ? line_copy(ps)
         : !strcmp(kw, "reduce") ? line_reduce(ps)
         : !strcmp(kw, "ranksum") ? line_ranksum(ps)
                                 : line_loop(ps);
}

/* A line between 'func' and 'end': in, out, then steps. */
static bool func_line(Parser *ps, Where *at, const char *kw, const char *label) {
    const PFunc *f = cur_func(ps);
    if (!strcmp(kw, "end")) {
        if (ps->ntok != 1) return pf_fail(ps, "'end' takes no fields");
        at->in_func = false;
        return true;
    }
    if (!strcmp(kw, "in")) {
        if (at->fn_part != FN_IN)
            return pf_fail(ps, "func %s: 'in' after out or step lines (order: in, out, steps)",
                        f->name);
        return line_in(ps);
    }
    if (!strcmp(kw, "out")) {
        if (at->fn_part == FN_STEPS)
            return pf_fail(ps, "func %s: 'out' after step lines (order: in, out, steps)", f->name);
        at->fn_part = FN_OUT;
        return line_out(ps);
    }
    if (is_step_keyword(kw)) {
        at->fn_part = FN_STEPS;
        return add_step(ps, kw, label);
    }
    if (section_of(kw) >= 0)
        return pf_fail(ps, "'%s' inside func %s (missing 'end'?)", kw, f->name);
    return pf_fail(ps, "unknown keyword '%s' in func %s", ps->tok[0], f->name);
}

/* Sections come in the order of kSections, the program line first and once. */
static bool check_order(Parser *ps, const Where *at, int sec, const char *kw) {
    if (at->section < 0 && sec != SEC_PROGRAM)
        return pf_fail(ps, "the first line must be 'program NAME batch B', got '%s'", kw);
    if (sec == SEC_PROGRAM && at->section >= 0) return pf_fail(ps, "a second 'program' line");
    if (sec < at->section)
        return pf_fail(ps, "'%s' after '%s' lines (order: program, param, input, setting, const, "
                        "func)", kw, kSections[at->section]);
    return true;
}

/* A line outside any func (setting lines are handled before tokenizing). */
static bool top_line(Parser *ps, Where *at, const char *kw) {
    int sec = section_of(kw);
    if (sec < 0) {
        if (is_step_keyword(kw) || !strcmp(kw, "in") || !strcmp(kw, "out") || !strcmp(kw, "end"))
            return pf_fail(ps, "'%s' outside a function", ps->tok[0]);
        return pf_fail(ps, "unknown keyword '%s'", ps->tok[0]);
    }
    if (!check_order(ps, at, sec, kw)) return false;
    at->section = sec;
    switch ((Section)sec) {
    case SEC_PROGRAM: return line_program(ps);
    case SEC_PARAM: return line_param(ps);
    case SEC_INPUT: return line_input(ps);
    case SEC_CONST: return line_const(ps);
    case SEC_SETTING: break; /* parsed from the raw line by one_line */
    case SEC_FUNC:
        at->in_func = true;
        at->fn_part = FN_IN;
        return line_func(ps);
    }
    return pf_fail(ps, "unexpected '%s' line", ps->tok[0]);
}

/* One non-blank line. A setting's string value may hold blanks, so it is
 * parsed from the raw line. */
static bool one_line(Parser *ps, Where *at, char *line) {
    char kw[16];
    char *label = split_keyword(line, kw);
    if (!strcmp(kw, "setting") && !at->in_func) {
        if (!check_order(ps, at, SEC_SETTING, kw)) return false;
        at->section = SEC_SETTING;
        return line_setting(ps, line);
    }
    if (!pf_tokenize(ps, line)) return false;
    return at->in_func ? func_line(ps, at, kw, label) : top_line(ps, at, kw);
}

/* After the last line: every func closed, loop bodies resolved and checked,
 * no recursion. */
static bool finish(Parser *ps, const Where *at) {
    Program *p = ps->p;
    if (at->section < 0) return pf_fail(ps, "empty program (expected 'program NAME batch B')");
    if (at->in_func) {
        int fl = ps->loop_lines[p->nfuncs - 1];
        return pf_fail(ps, "func %s (line %d) has no 'end'", cur_func(ps)->name, fl);
    }
    for (int k = 0; k < ps->nloops; k++)
        if (!check_loop(ps, &ps->loops[k])) return false;
    if (!p->nfuncs) return true;
    char *state = calloc((size_t)p->nfuncs, 1);
    if (!state) return pf_oom(ps);
    bool ok = true;
    for (int fi = 0; fi < p->nfuncs && ok; fi++)
        if (!state[fi]) ok = no_cycle(ps, fi, state);
    free(state);
    return ok;
}

static bool parse_lines(Parser *ps, char *text) {
    Where at = {.section = -1, .in_func = false, .fn_part = FN_IN};
    ps->line = 0;
    for (char *line = text; *line;) {
        ps->line++;
        char *nl = strchr(line, '\n');
        char *next = nl ? nl + 1 : line + strlen(line);
        if (nl) *nl = '\0';
        const char *w = line;
        while (pf_is_blank(*w)) w++;
        if (*w && !one_line(ps, &at, line)) return false;
        line = next;
    }
    return finish(ps, &at);
}

Program *program_parse(const char *text, int nkernels, char *err, size_t errcap) {
    if (err && errcap) err[0] = '\0';
    Parser ps = {.nkernels = nkernels, .err = err, .errcap = errcap};
    if (!text) {
        pf_fail(&ps, "no text");
        return NULL;
    }
    char *copy = pf_dupstr(text);
    ps.p = calloc(1, sizeof *ps.p);
    bool ok = false;
    if (!copy || !ps.p) pf_oom(&ps);
    else ok = parse_lines(&ps, copy);
    free(copy);
    for (int k = 0; k < ps.nloops; k++) free(ps.loops[k].name);
    free(ps.loops);
    free(ps.loop_lines);
    free(ps.tok);
    if (!ok) {
        program_free(ps.p);
        return NULL;
    }
    return ps.p;
}

