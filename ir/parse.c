/* Parser for the IR text form: a character-level lexer and a recursive
 * descent over lines. The format is line-oriented (one declaration or node
 * per line), so newlines are tokens and everything else is separated by
 * optional blanks. The lexer is told what it expects (a name after a sigil,
 * a number, a word), because bare names may look like numbers ("%0").
 *
 * Ownership: the module and a per-statement scratch arena are the only
 * allocations, so any error path just frees both.
 */
#include "ir/parse.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *src; /* the whole text, NUL-terminated */
    const char *p;   /* cursor */
    const char *file;
    Diag *d;
    Module *m;
    Arena *tmp;      /* names, lists and attributes of the current statement */
} Parser;

/* ---- errors ---- */

static void locate(const char *src, const char *at, int *line, int *col) {
    const char *ls = src;
    *line = 1;
    for (const char *q = src; q < at; q++)
        if (*q == '\n') {
            (*line)++;
            ls = q + 1;
        }
    *col = (int)(at - ls) + 1;
}

static bool fail(Parser *ps, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(Parser *ps, const char *at, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    locate(ps->src, at, &line, &col);
    return diag_error(ps->d, EXIT_BADINPUT, "%s:%d:%d: %s", ps->file, line, col, msg);
}

/* The name just lexed, from its sigil at `at` to the cursor, as written. */
static bool fail_duplicate(Parser *ps, const char *what, const char *at) {
    return fail(ps, at, "duplicate %s %.*s", what, (int)(ps->p - at), at);
}

/* What the cursor sits on, for "expected X, got Y". */
static const char *got(const char *p, char buf[16]) {
    if (*p == '\0') return "end of file";
    if (*p == '\n') return "end of line";
    if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
        snprintf(buf, 16, "byte 0x%02x", (unsigned char)*p);
    else
        snprintf(buf, 16, "'%c'", *p);
    return buf;
}

/* ---- scratch memory ---- */

static void begin_statement(Parser *ps) {
    arena_free(ps->tmp);
    ps->tmp = arena_new();
}

/* Returns arr with room for element n, doubling the capacity in tmp. */
static void *grow(Parser *ps, void *arr, int n, int *cap, size_t elem) {
    if (n < *cap) return arr;
    *cap = *cap ? 2 * *cap : 8;
    void *na = arena_alloc(ps->tmp, elem * (size_t)*cap);
    if (n) memcpy(na, arr, elem * (size_t)n);
    return na;
}

/* ---- lexer ---- */

/* Skips spaces, tabs, carriage returns and a '#' comment, not the newline. */
static void skip_blank(Parser *ps) {
    for (;;) {
        while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r') ps->p++;
        if (*ps->p != '#') return;
        while (*ps->p && *ps->p != '\n') ps->p++;
    }
}

static void skip_empty_lines(Parser *ps) {
    for (skip_blank(ps); *ps->p == '\n'; skip_blank(ps)) ps->p++;
}

static bool expect_eol(Parser *ps) {
    char b[16];
    skip_blank(ps);
    if (*ps->p == '\n') {
        ps->p++;
        return true;
    }
    if (*ps->p == '\0') return true;
    return fail(ps, ps->p, "expected end of line, got %s", got(ps->p, b));
}

static bool accept(Parser *ps, char c) {
    skip_blank(ps);
    if (*ps->p != c) return false;
    ps->p++;
    return true;
}

static bool expect(Parser *ps, char c) {
    char b[16];
    if (accept(ps, c)) return true;
    return fail(ps, ps->p, "expected '%c', got %s", c, got(ps->p, b));
}

static bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool is_bare_name_char(char c) { return is_alnum(c) || c == '.' || c == ':' || c == '-'; }

static bool is_number_char(char c) { return is_alnum(c) || c == '.' || c == '+' || c == '-'; }

static size_t span(const char *p, bool (*ok)(char)) {
    size_t n = 0;
    while (ok(p[n])) n++;
    return n;
}

/* A keyword, op or dtype: [A-Za-z0-9_]+. Sets *n = 0 when there is none. */
static const char *lex_word(Parser *ps, size_t *n) {
    skip_blank(ps);
    const char *w = ps->p;
    *n = span(w, is_alnum);
    ps->p += *n;
    return w;
}

static bool word_is(const char *w, size_t n, const char *kw) {
    return strlen(kw) == n && memcmp(w, kw, n) == 0;
}

static bool expect_keyword(Parser *ps, const char *kw) {
    size_t n;
    const char *w = lex_word(ps, &n);
    if (word_is(w, n, kw)) return true;
    char b[16];
    if (!n) return fail(ps, w, "expected '%s', got %s", kw, got(w, b));
    return fail(ps, w, "expected '%s', got '%.*s'", kw, (int)n, w);
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One escape after a backslash at ps->p; writes the byte to *out. */
static bool lex_escape(Parser *ps, char *out) {
    const char *at = ps->p;
    char c = at[1];
    ps->p += 2;
    switch (c) {
    case '"': *out = '"'; return true;
    case '\\': *out = '\\'; return true;
    case 'n': *out = '\n'; return true;
    case 't': *out = '\t'; return true;
    case 'x': break;
    default:
        if (c == '\n' || c == '\0') return fail(ps, at, "unterminated string");
        return fail(ps, at, "unknown escape '\\%c' in string", c);
    }
    int hi = hex_digit(at[2]), lo = hi < 0 ? -1 : hex_digit(at[3]);
    if (lo < 0) return fail(ps, at, "\\x needs two hex digits");
    if (hi == 0 && lo == 0) return fail(ps, at, "\\x00 is not allowed in strings");
    *out = (char)(hi * 16 + lo);
    ps->p += 2;
    return true;
}

/* A "..." string at ps->p, decoded into tmp. */
static bool lex_string(Parser *ps, char **out) {
    const char *open = ps->p++;
    /* The decoded text is never longer than the rest of the line. */
    char *s = arena_alloc(ps->tmp, strcspn(ps->p, "\n") + 1);
    size_t n = 0;
    for (;;) {
        char c = *ps->p;
        if (c == '"') break;
        if (c == '\n' || c == '\0') return fail(ps, open, "unterminated string");
        if (c == '\\') {
            if (!lex_escape(ps, &s[n++])) return false;
        } else {
            s[n++] = c;
            ps->p++;
        }
    }
    ps->p++;
    s[n] = '\0';
    *out = s;
    return true;
}

/* A name: bare [A-Za-z0-9_.:-]+ or a quoted string. what names the
 * construct for the error. */
static bool lex_name(Parser *ps, char **out, const char *what) {
    char b[16];
    if (*ps->p == '"') return lex_string(ps, out);
    size_t n = span(ps->p, is_bare_name_char);
    if (!n) return fail(ps, ps->p, "expected %s, got %s", what, got(ps->p, b));
    *out = arena_alloc(ps->tmp, n + 1);
    memcpy(*out, ps->p, n);
    ps->p += n;
    return true;
}

/* sigil followed directly by a name; *at is where the sigil is. */
static bool lex_sigil_name(Parser *ps, char sigil, char **out, const char **at) {
    char b[16];
    skip_blank(ps);
    *at = ps->p;
    if (*ps->p != sigil) return fail(ps, ps->p, "expected '%c', got %s", sigil, got(ps->p, b));
    ps->p++;
    return lex_name(ps, out, sigil == '%' ? "a value name" : "a name");
}

/* ---- numbers ---- */

static bool is_int_text(const char *s, size_t n) {
    size_t i = (n && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    if (i == n) return false;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

/* The number-shaped token at the cursor; fails when there is none. */
static bool number_token(Parser *ps, const char *what, const char **s, size_t *n) {
    char b[16];
    skip_blank(ps);
    *s = ps->p;
    *n = span(ps->p, is_number_char);
    if (!*n) return fail(ps, ps->p, "expected %s, got %s", what, got(ps->p, b));
    return true;
}

static bool parse_int(Parser *ps, int64_t *out) {
    const char *s;
    size_t n;
    if (!number_token(ps, "an integer", &s, &n)) return false;
    if (!is_int_text(s, n)) return fail(ps, s, "expected an integer, got '%.*s'", (int)n, s);
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE) return fail(ps, s, "integer '%.*s' out of range", (int)n, s);
    *out = v;
    ps->p = s + n;
    return true;
}

static bool parse_small_int(Parser *ps, int lo, int hi, int *out) {
    skip_blank(ps);
    const char *at = ps->p;
    int64_t v;
    if (!parse_int(ps, &v)) return false;
    if (v < lo || v > hi) return fail(ps, at, "%lld is out of range", (long long)v);
    *out = (int)v;
    return true;
}

/* Decimal, exponent, inf, nan: whatever strtod takes as a whole token. */
static bool double_of(const char *s, size_t n, double *out) {
    char *end;
    *out = strtod(s, &end);
    return end == s + n;
}

static bool parse_double(Parser *ps, double *out) {
    const char *s;
    size_t n;
    if (!number_token(ps, "a number", &s, &n)) return false;
    if (!double_of(s, n, out)) return fail(ps, s, "expected a number, got '%.*s'", (int)n, s);
    ps->p = s + n;
    return true;
}

/* ---- types ---- */

static bool parse_dtype(Parser *ps, DType *dt) {
    size_t n;
    const char *w = lex_word(ps, &n);
    char name[16], b[16];
    if (!n) return fail(ps, w, "expected a dtype, got %s", got(w, b));
    if (n < sizeof name) {
        memcpy(name, w, n);
        name[n] = '\0';
        if (dtype_parse(name, dt)) return true;
    }
    return fail(ps, w, "unknown dtype '%.*s' (expected f32, f64, i32 or bool)", (int)n, w);
}

static bool parse_type(Parser *ps, Type *t) {
    *t = (Type){0};
    if (!parse_dtype(ps, &t->dtype) || !expect(ps, '[')) return false;
    if (accept(ps, ']')) return true;
    do {
        skip_blank(ps);
        if (t->rank == IR_MAX_RANK) return fail(ps, ps->p, "rank above %d", IR_MAX_RANK);
        if (!parse_int(ps, &t->dim[t->rank++])) return false;
    } while (accept(ps, ','));
    return expect(ps, ']');
}

/* ---- attributes ---- */

static bool parse_int_list(Parser *ps, Attr *a) {
    int cap = 0;
    a->kind = ATTR_INTS;
    if (accept(ps, ']')) return true;
    do {
        const char *s;
        size_t n;
        if (!number_token(ps, "an integer", &s, &n)) return false;
        if (!is_int_text(s, n))
            return fail(ps, s, "expected an integer, got '%.*s' (float lists are written f[...])",
                        (int)n, s);
        a->ints = grow(ps, a->ints, a->n, &cap, sizeof *a->ints);
        if (!parse_int(ps, &a->ints[a->n++])) return false;
    } while (accept(ps, ','));
    return expect(ps, ']');
}

static bool parse_float_list(Parser *ps, Attr *a) {
    int cap = 0;
    a->kind = ATTR_FLOATS;
    if (!expect(ps, '[')) return false;
    if (accept(ps, ']')) return true;
    do {
        a->floats = grow(ps, a->floats, a->n, &cap, sizeof *a->floats);
        if (!parse_double(ps, &a->floats[a->n++])) return false;
    } while (accept(ps, ','));
    return expect(ps, ']');
}

/* A value starting with a letter: f[...], a dtype, inf or nan. */
static bool parse_word_value(Parser *ps, Attr *a) {
    const char *at = ps->p;
    size_t n;
    const char *w = lex_word(ps, &n);
    char name[16];
    if (word_is(w, n, "f") && *ps->p == '[') return parse_float_list(ps, a);
    if (word_is(w, n, "inf") || word_is(w, n, "nan")) {
        *a = (Attr){.key = a->key, .kind = ATTR_FLOAT, .f = *w == 'i' ? INFINITY : NAN};
        return true;
    }
    if (n < sizeof name) {
        memcpy(name, w, n);
        name[n] = '\0';
        DType dt;
        if (dtype_parse(name, &dt)) {
            *a = (Attr){.key = a->key, .kind = ATTR_DTYPE, .i = dt};
            return true;
        }
    }
    return fail(ps, at, "bad attribute value '%.*s'", (int)(span(at, is_number_char)), at);
}

static bool parse_attr_value(Parser *ps, Attr *a) {
    skip_blank(ps);
    char c = *ps->p;
    if (c == '"') {
        char *s;
        a->kind = ATTR_STR;
        if (!lex_string(ps, &s)) return false;
        a->s = s;
        return true;
    }
    if (c == '[') {
        ps->p++;
        return parse_int_list(ps, a);
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return parse_word_value(ps, a);
    const char *s;
    size_t n;
    if (!number_token(ps, "an attribute value", &s, &n)) return false;
    if (is_int_text(s, n)) {
        a->kind = ATTR_INT;
        return parse_int(ps, &a->i);
    }
    a->kind = ATTR_FLOAT;
    return parse_double(ps, &a->f);
}

static bool parse_attrs(Parser *ps, Attr **attrs, int *nattrs) {
    int cap = 0;
    if (accept(ps, '}')) return true;
    do {
        skip_blank(ps);
        const char *at = ps->p;
        char *key;
        if (!lex_name(ps, &key, "an attribute name")) return false;
        for (int i = 0; i < *nattrs; i++)
            if (strcmp((*attrs)[i].key, key) == 0)
                return fail_duplicate(ps, "attribute", at);
        *attrs = grow(ps, *attrs, *nattrs, &cap, sizeof **attrs);
        Attr *a = &(*attrs)[(*nattrs)++];
        *a = (Attr){.key = key};
        if (!expect(ps, '=') || !parse_attr_value(ps, a)) return false;
    } while (accept(ps, ','));
    return expect(ps, '}');
}

/* ---- nodes and functions ---- */

/* A %name that must already be defined in f; returns its id in *v. */
static bool parse_value_ref(Parser *ps, const Function *f, int *v) {
    const char *at;
    char *name;
    if (!lex_sigil_name(ps, '%', &name, &at)) return false;
    *v = func_find(f, name);
    if (*v < 0) return fail(ps, at, "unknown value %.*s", (int)(ps->p - at), at);
    return true;
}

static bool parse_operands(Parser *ps, const Function *f, int **ins, int *n) {
    int cap = 0;
    if (!expect(ps, '(')) return false;
    if (accept(ps, ')')) return true;
    do {
        *ins = grow(ps, *ins, *n, &cap, sizeof **ins);
        if (!parse_value_ref(ps, f, &(*ins)[(*n)++])) return false;
    } while (accept(ps, ','));
    return expect(ps, ')');
}

static bool check_arity(Parser *ps, const char *at, OpKind op, int n) {
    const OpInfo *oi = op_info(op);
    int lo = oi->min_inputs, hi = oi->max_inputs;
    if (n >= lo && (hi < 0 || n <= hi)) return true;
    if (hi < 0)
        return fail(ps, at, "op '%s' takes at least %d operand%s, got %d", oi->name, lo,
                    lo == 1 ? "" : "s", n);
    if (lo == hi)
        return fail(ps, at, "op '%s' takes %d operand%s, got %d", oi->name, lo, lo == 1 ? "" : "s",
                    n);
    return fail(ps, at, "op '%s' takes %d to %d operands, got %d", oi->name, lo, hi, n);
}

static bool parse_op(Parser *ps, OpKind *op, const char **at) {
    char b[16], name[64];
    size_t n;
    const char *w = lex_word(ps, &n);
    *at = w;
    if (!n) return fail(ps, w, "expected an op name, got %s", got(w, b));
    snprintf(name, sizeof name, "%.*s", (int)n, w);
    if (n < sizeof name && op_lookup(name, op)) return true;
    return fail(ps, w, "unknown op '%.*s' (did you mean '%s'?)", (int)n, w, op_closest(name));
}

/* %name = op(%a, %b) {attrs} : type */
static bool parse_node(Parser *ps, Function *f) {
    const char *at, *op_at;
    char *name;
    if (!lex_sigil_name(ps, '%', &name, &at)) return false;
    if (!*name) return fail(ps, at, "empty value name");
    if (func_find(f, name) >= 0) return fail_duplicate(ps, "value", at);
    OpKind op;
    int *ins = NULL, nins = 0, nattrs = 0;
    Attr *attrs = NULL;
    Type t;
    if (!expect(ps, '=') || !parse_op(ps, &op, &op_at) || !parse_operands(ps, f, &ins, &nins) ||
        !check_arity(ps, op_at, op, nins))
        return false;
    if (accept(ps, '{') && !parse_attrs(ps, &attrs, &nattrs)) return false;
    if (!expect(ps, ':') || !parse_type(ps, &t) || !expect_eol(ps)) return false;
    func_add_node(ps->m, f, op, name, ins, nins, attrs, nattrs, t);
    return true;
}

/* return name=%v, name=%v */
static bool parse_return(Parser *ps, Function *f) {
    skip_blank(ps);
    if (*ps->p == '\n' || *ps->p == '\0') return expect_eol(ps);
    do {
        char *name;
        int v;
        skip_blank(ps);
        if (!lex_name(ps, &name, "an output name") || !expect(ps, '=') ||
            !parse_value_ref(ps, f, &v))
            return false;
        func_add_output(ps->m, f, name, v);
    } while (accept(ps, ','));
    return expect_eol(ps);
}

/* The lines of a function body after "func @name {". */
static bool parse_body(Parser *ps, Function *f) {
    char b[16];
    for (;;) {
        skip_empty_lines(ps);
        begin_statement(ps);
        if (*ps->p == '%') {
            if (!parse_node(ps, f)) return false;
            continue;
        }
        size_t n;
        const char *w = lex_word(ps, &n);
        if (word_is(w, n, "return")) break;
        if (*w == '\0') return fail(ps, w, "unexpected end of file in func (missing '}')");
        if (*w == '}') return fail(ps, w, "expected 'return' before '}'");
        if (n) return fail(ps, w, "expected a node or 'return', got '%.*s'", (int)n, w);
        return fail(ps, w, "expected a node or 'return', got %s", got(w, b));
    }
    if (!parse_return(ps, f)) return false;
    skip_empty_lines(ps);
    return expect(ps, '}') && expect_eol(ps);
}

static bool parse_func(Parser *ps) {
    const char *at;
    char *name;
    if (!lex_sigil_name(ps, '@', &name, &at)) return false;
    if (module_find_func(ps->m, name)) return fail_duplicate(ps, "func", at);
    if (!expect(ps, '{') || !expect_eol(ps)) return false;
    return parse_body(ps, module_add_func(ps->m, name));
}

/* ---- module-level declarations ---- */

static bool find_input(const Module *m, const char *name) {
    for (int i = 0; i < m->ninputs; i++)
        if (strcmp(m->inputs[i].name, name) == 0) return true;
    return false;
}

/* The flags after an input's type: batched, range=[lo, hi], classes=N. */
static bool parse_input_flags(Parser *ps, InputDesc *in) {
    char b[16];
    for (skip_blank(ps); *ps->p != '\n' && *ps->p != '\0'; skip_blank(ps)) {
        size_t n;
        const char *w = lex_word(ps, &n);
        if (word_is(w, n, "batched")) {
            in->batched = true;
        } else if (word_is(w, n, "range")) {
            if (!expect(ps, '=') || !expect(ps, '[') || !parse_double(ps, &in->lo) ||
                !expect(ps, ',') || !parse_double(ps, &in->hi) || !expect(ps, ']'))
                return false;
        } else if (word_is(w, n, "classes")) {
            if (!expect(ps, '=') || !parse_small_int(ps, INT32_MIN, INT32_MAX, &in->classes))
                return false;
        } else if (n) {
            return fail(ps, w, "unknown input flag '%.*s'", (int)n, w);
        } else {
            return fail(ps, w, "expected an input flag or end of line, got %s", got(w, b));
        }
    }
    return expect_eol(ps);
}

/* input @name : type flags */
static bool parse_input(Parser *ps) {
    const char *at;
    char *name;
    Type t;
    if (!lex_sigil_name(ps, '@', &name, &at)) return false;
    if (find_input(ps->m, name)) return fail_duplicate(ps, "input", at);
    if (!expect(ps, ':') || !parse_type(ps, &t)) return false;
    return parse_input_flags(ps, module_add_input(ps->m, name, t));
}

/* setting @key = number | "string" */
static bool parse_setting(Parser *ps) {
    const char *at;
    char *key;
    if (!lex_sigil_name(ps, '@', &key, &at)) return false;
    if (module_setting(ps->m, key)) return fail_duplicate(ps, "setting", at);
    if (!expect(ps, '=')) return false;
    skip_blank(ps);
    if (*ps->p == '"') {
        char *s;
        if (!lex_string(ps, &s)) return false;
        module_set_str(ps->m, key, s);
    } else {
        double v;
        if (!parse_double(ps, &v)) return false;
        module_set_num(ps->m, key, v);
    }
    return expect_eol(ps);
}

/* init=zeros | ones | uniform(a) | normal(a); (a) optional for all. */
static bool parse_init(Parser *ps, InitSpec *init) {
    static const char *const kinds[] = {"zeros", "ones", "uniform", "normal"};
    if (!expect_keyword(ps, "init") || !expect(ps, '=')) return false;
    size_t n;
    const char *w = lex_word(ps, &n);
    int k = 0;
    while (k < 4 && !word_is(w, n, kinds[k])) k++;
    if (k == 4)
        return fail(ps, w, "unknown init '%.*s' (expected zeros, ones, uniform or normal)", (int)n,
                    w);
    *init = (InitSpec){.kind = (InitKind)k};
    if (*ps->p != '(') {
        if (k >= INIT_UNIFORM) return fail(ps, ps->p, "init %s needs an argument", kinds[k]);
        return true;
    }
    ps->p++;
    return parse_double(ps, &init->a) && expect(ps, ')');
}

/* param @name : type init=... trainable|state */
static bool parse_param(Parser *ps) {
    const char *at;
    char *name;
    Type t;
    InitSpec init;
    if (!lex_sigil_name(ps, '@', &name, &at)) return false;
    if (module_find_param(ps->m, name) >= 0) return fail_duplicate(ps, "param", at);
    if (!expect(ps, ':') || !parse_type(ps, &t) || !parse_init(ps, &init)) return false;
    size_t n;
    const char *w = lex_word(ps, &n);
    if (!word_is(w, n, "trainable") && !word_is(w, n, "state")) {
        char b[16];
        if (n) return fail(ps, w, "expected 'trainable' or 'state', got '%.*s'", (int)n, w);
        return fail(ps, w, "expected 'trainable' or 'state', got %s", got(w, b));
    }
    module_add_param(ps->m, name, t, init, word_is(w, n, "trainable"));
    return expect_eol(ps);
}

/* module @name batch=N; creates ps->m. */
static bool parse_header(Parser *ps) {
    skip_empty_lines(ps);
    begin_statement(ps);
    const char *at;
    char *name;
    int64_t batch = 0;
    if (!expect_keyword(ps, "module") || !lex_sigil_name(ps, '@', &name, &at)) return false;
    skip_blank(ps);
    if (*ps->p != '\n' && *ps->p != '\0') {
        if (!expect_keyword(ps, "batch") || !expect(ps, '=') || !parse_int(ps, &batch))
            return false;
    }
    if (!expect_eol(ps)) return false;
    ps->m = module_new(name);
    ps->m->batch = batch;
    return true;
}

static bool parse_declaration(Parser *ps) {
    size_t n;
    const char *w = lex_word(ps, &n);
    if (word_is(w, n, "input")) return parse_input(ps);
    if (word_is(w, n, "setting")) return parse_setting(ps);
    if (word_is(w, n, "param")) return parse_param(ps);
    if (word_is(w, n, "func")) return parse_func(ps);
    if (word_is(w, n, "module")) return fail(ps, w, "second 'module' header");
    char b[16];
    if (n) return fail(ps, w, "expected input, setting, param or func, got '%.*s'", (int)n, w);
    return fail(ps, w, "expected input, setting, param or func, got %s", got(w, b));
}

static bool parse_module(Parser *ps) {
    if (!parse_header(ps)) return false;
    for (skip_empty_lines(ps); *ps->p; skip_empty_lines(ps)) {
        begin_statement(ps);
        if (!parse_declaration(ps)) return false;
    }
    return true;
}

Module *ir_parse(const char *text, const char *filename, Diag *d) {
    Parser ps = {.src = text, .p = text, .file = filename ? filename : "<input>", .d = d};
    bool ok = parse_module(&ps);
    arena_free(ps.tmp);
    if (ok) return ps.m;
    module_free(ps.m);
    return NULL;
}

/* ---- files ---- */

static char *read_all(FILE *fp, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, fp);
        if (n < cap - 1) break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) free(buf);
        buf = nb;
    }
    if (!buf) return NULL;
    buf[n] = '\0';
    *len = n;
    return buf;
}

Module *ir_parse_file(const char *path, Diag *d) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        diag_error(d, EXIT_BADINPUT, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t len = 0;
    char *text = read_all(fp, &len);
    bool bad = !text || ferror(fp);
    int err = errno;
    fclose(fp);
    if (bad) {
        free(text);
        diag_error(d, EXIT_BADINPUT, "cannot read %s: %s", path, strerror(err));
        return NULL;
    }
    Module *m = NULL;
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line, col;
        locate(text, nul, &line, &col);
        diag_error(d, EXIT_BADINPUT, "%s:%d:%d: NUL byte in file", path, line, col);
    } else {
        m = ir_parse(text, path, d);
    }
    free(text);
    return m;
}
