/* The fields of a program text line (runtime/program/program_parser.h): tokens,
 * names, integers, numbers, dtypes, dims and buffer references, each checked
 * with an error that names the line. */
#include "runtime/program/program_parser.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/program/program_internal.h"

void *pf_grow(void *arr, int n, int *cap, size_t elem) {
    if (n < *cap) return arr;
    int nc = *cap ? 2 * *cap : 8;
    void *na = realloc(arr, elem * (size_t)nc);
    if (!na) return NULL;
    memset((char *)na + elem * (size_t)*cap, 0, elem * (size_t)(nc - *cap));
    *cap = nc;
    return na;
}

char *pf_dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

bool pf_mul_ok(int64_t a, int64_t b, int64_t *out) {
    if (a < 0 || b < 0) return false;
    if (a != 0 && b > INT64_MAX / a) return false;
    *out = a * b;
    return true;
}

bool pf_fail(Parser *ps, const char *fmt, ...) {
    if (!ps->err || !ps->errcap) return false;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errcap, "program:%d: %s", ps->line > 0 ? ps->line : 1, msg);
    return false;
}

/* Splits line (modified in place) into blank-separated tokens. */
bool pf_tokenize(Parser *ps, char *line) {
    ps->ntok = 0;
    char *q = line;
    for (;;) {
        while (pf_is_blank(*q)) q++;
        if (!*q) return true;
        char **nt = pf_grow(ps->tok, ps->ntok, &ps->cap_tok, sizeof *ps->tok);
        if (!nt) return pf_oom(ps);
        ps->tok = nt;
        ps->tok[ps->ntok++] = q;
        while (*q && !pf_is_blank(*q)) q++;
        if (*q) *q++ = '\0';
    }
}

/* A name: printable ASCII without blanks, '#', '"' or '\'. */
bool pf_check_name(Parser *ps, const char *what, const char *s) {
    for (const char *q = s; *q; q++) {
        unsigned char c = (unsigned char)*q;
        if (c <= 0x20 || c >= 0x7f || c == '#' || c == '"' || c == '\\')
            return pf_fail(ps, "%s name '%s' has a character other than printable ASCII "
                            "without '#', '\"' and '\\'", what, s);
    }
    return true;
}

bool pf_parse_i64(Parser *ps, const char *what, const char *s, int64_t lo, int64_t hi,
                  int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
        return pf_fail(ps, "%s '%s' is not an integer", what, s);
    if (v < lo || v > hi) {
        if (hi == INT64_MAX) return pf_fail(ps, "%s %s is below %lld", what, s, (long long)lo);
        return pf_fail(ps, "%s %s is outside [%lld, %lld]", what, s, (long long)lo,
                    (long long)hi);
    }
    *out = v;
    return true;
}

bool pf_parse_num(Parser *ps, const char *what, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || (errno == ERANGE && fabs(v) > 1.0))
        return pf_fail(ps, "%s '%s' is not a number", what, s);
    *out = v;
    return true;
}

bool pf_parse_dtype(Parser *ps, const char *s, PDtype *out) {
    int d = pdtype_from_name(s);
    if (d < 0) return pf_fail(ps, "unknown dtype '%s' (f32 f64 i32 i64 bool)", s);
    *out = (PDtype)d;
    return true;
}

/* [d0,d1,...] with no blanks; [] for a scalar. */
bool pf_parse_dims(Parser *ps, const char *s, PTensor *t) {
    size_t n = strlen(s);
    if (n < 2 || s[0] != '[' || s[n - 1] != ']')
        return pf_fail(ps, "dims '%s' are not written [d0,d1,...]", s);
    t->rank = 0;
    if (n == 2) return true;
    const char *q = s + 1;
    int64_t total = (int64_t)pdtype_size(t->dtype);
    for (;;) {
        if (t->rank == PROG_MAX_RANK)
            return pf_fail(ps, "dims '%s' have more than %d dimensions", s, PROG_MAX_RANK);
        if (!(*q >= '0' && *q <= '9'))
            return pf_fail(ps, "dims '%s': expected a size at '%s'", s, q);
        char *end;
        errno = 0;
        long long v = strtoll(q, &end, 10);
        if (errno || (*end != ',' && *end != ']'))
            return pf_fail(ps, "dims '%s': bad size at '%s'", s, q);
        t->dim[t->rank++] = v;
        if (!pf_mul_ok(total, v, &total) || total > (INT64_C(1) << 60))
            return pf_fail(ps, "dims '%s' are too large", s);
        if (*end == ']') {
            if (end[1]) return pf_fail(ps, "dims '%s': text after ']'", s);
            return true;
        }
        q = end + 1;
    }
}

/* NAME DTYPE [dims] starting at token k. */
bool pf_parse_tensor(Parser *ps, const char *what, int k, PTensor *t) {
    if (!pf_check_name(ps, what, ps->tok[k])) return false;
    if (!(t->name = pf_dupstr(ps->tok[k]))) return pf_oom(ps);
    return pf_parse_dtype(ps, ps->tok[k + 1], &t->dtype) && pf_parse_dims(ps, ps->tok[k + 2], t);
}

bool pf_want_tokens(Parser *ps, int n, const char *form) {
    if (ps->ntok != n)
        return pf_fail(ps, "'%s' takes %d fields, got %d (%s)", ps->tok[0], n - 1, ps->ntok - 1,
                    form);
    return true;
}

const char *pf_space_name(PBufSpace s) {
    switch (s) {
    case PB_ARENA: return "arena";
    case PB_PARAM: return "param";
    case PB_INPUT: return "input";
    case PB_OUTPUT: return "output";
    case PB_CONST: return "const";
    }
    return "?";
}

bool pf_parse_ref(Parser *ps, const char *s, PRef *r) {
    const char *sp = "apioc";
    const char *at = *s ? strchr(sp, s[0]) : NULL;
    bool digits = s[0] && s[1];
    for (const char *q = s + 1; digits && *q; q++)
        if (!(*q >= '0' && *q <= '9')) digits = false;
    if (!at || !digits)
        return pf_fail(ps, "'%s' is not a buffer reference (a<offset> p<k> i<k> o<k> c<k>)", s);
    r->space = (PBufSpace)(at - sp);
    errno = 0;
    long long v = strtoll(s + 1, NULL, 10);
    if (errno || (r->space != PB_ARENA && v > INT_MAX))
        return pf_fail(ps, "reference '%s' is out of range", s);
    r->at = v;
    return true;
}


/* The size in bytes of what r names in function f, or -1 when unknown
 * (arena values). */
int64_t pf_ref_size(const Program *p, const PFunc *f, PRef r) {
    switch (r.space) {
    case PB_ARENA: return -1;
    case PB_PARAM: return (int64_t)ptensor_bytes(&p->params[r.at].t);
    case PB_INPUT: return (int64_t)ptensor_bytes(&f->inputs[r.at]);
    case PB_OUTPUT: return (int64_t)ptensor_bytes(&f->outputs[r.at]);
    case PB_CONST: return (int64_t)ptensor_bytes(&p->consts[r.at].t);
    }
    return -1;
}

/* Checks r in function f: index in range, bytes (when >= 0) fit what it
 * names; writable refuses inputs and constants. what names the step. */
bool pf_check_ref(Parser *ps, const PFunc *f, PRef r, int64_t bytes, bool writable,
                  const char *what) {
    const Program *p = ps->p;
    char rt[32];
    program_ref_text(r, rt);
    int64_t count = 0;
    switch (r.space) {
    case PB_ARENA:
        if (r.at >= f->arena_bytes)
            return pf_fail(ps, "%s names buffer %s beyond the arena (%lld bytes)", what, rt,
                        (long long)f->arena_bytes);
        if (bytes >= 0 && bytes > f->arena_bytes - r.at)
            return pf_fail(ps, "%s names buffer %s of %lld bytes beyond the arena (%lld bytes)",
                        what, rt, (long long)bytes, (long long)f->arena_bytes);
        return true;
    case PB_PARAM: count = p->nparams; break;
    case PB_INPUT: count = f->ninputs; break;
    case PB_OUTPUT: count = f->noutputs; break;
    case PB_CONST: count = p->nconsts; break;
    }
    if (r.at >= count)
        return pf_fail(ps, "%s names %s %s but there %s %lld %ss", what, pf_space_name(r.space), rt,
                    count == 1 ? "is" : "are", (long long)count, pf_space_name(r.space));
    if (writable && (r.space == PB_INPUT || r.space == PB_CONST))
        return pf_fail(ps, "%s writes into %s %s, which is read-only", what, pf_space_name(r.space),
                    rt);
    int64_t have = pf_ref_size(p, f, r);
    if (bytes >= 0 && bytes > have)
        return pf_fail(ps, "%s needs %lld bytes at %s %s of %lld bytes", what, (long long)bytes,
                    pf_space_name(r.space), rt, (long long)have);
    return true;
}

/* Parses and checks refs tok[k..ntok) into a new array. */
bool pf_parse_refs(Parser *ps, int k, PStep *s) {
    s->nrefs = ps->ntok - k;
    if (s->nrefs > 0 && !(s->refs = calloc((size_t)s->nrefs, sizeof *s->refs))) return pf_oom(ps);
    for (int i = 0; i < s->nrefs; i++)
        if (!pf_parse_ref(ps, ps->tok[k + i], &s->refs[i])) return false;
    return true;
}
