/* IR text printer and Graphviz DOT export.
 *
 * The text is canonical: attributes are already sorted by key, numbers use
 * the shortest text that reads back to the same bits, and names are quoted
 * only when they must be. So print(parse(print(m))) == print(m) byte for
 * byte, which lets tests and caches compare modules as strings. The grammar
 * is written down in docs/ir.md ("Text format").
 */
#include "ir/print.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- growable string ---- */

typedef struct {
    char *s;
    size_t len, cap;
} Buf;

static void buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        fprintf(stderr, "igrc: out of memory (%zu bytes)\n", cap);
        abort();
    }
    b->s = s;
    b->cap = cap;
}

static void buf_putn(Buf *b, const char *s, size_t n) {
    buf_reserve(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_puts(Buf *b, const char *s) { buf_putn(b, s, strlen(s)); }

static void buf_putc(Buf *b, char c) { buf_putn(b, &c, 1); }

static void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(Buf *b, const char *fmt, ...) {
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, aq);
    va_end(aq);
    b->len += (size_t)n;
}

/* ---- numbers, strings, names, types ---- */

const char *ir_format_double(double v, char buf[32]) {
    /* Spelled out: printf gives "-nan" or "nan(...)" depending on libc. */
    if (isnan(v)) return strcpy(buf, "nan");
    if (isinf(v)) return strcpy(buf, v < 0 ? "-inf" : "inf");
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, 32, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        if (memcmp(&back, &v, sizeof v) == 0) break; /* %.17g always does */
    }
    if (!strpbrk(buf, ".en")) strcat(buf, ".0"); /* "1" would read as an int */
    return buf;
}

static void put_double(Buf *b, double v) {
    char t[32];
    buf_puts(b, ir_format_double(v, t));
}

/* C escapes for the quote, backslash and control bytes; other bytes
 * (UTF-8 included) are written as they are. */
static void put_string(Buf *b, const char *s) {
    buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf_putc(b, '\\');
            buf_putc(b, (char)*p);
        } else if (*p == '\n') {
            buf_puts(b, "\\n");
        } else if (*p == '\t') {
            buf_puts(b, "\\t");
        } else if (*p < 0x20 || *p == 0x7f) {
            buf_printf(b, "\\x%02x", *p);
        } else {
            buf_putc(b, (char)*p);
        }
    }
    buf_putc(b, '"');
}

static bool name_is_bare(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (!strchr("_.:-", *s) && !(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
            !(*s >= '0' && *s <= '9'))
            return false;
    return true;
}

static void put_name(Buf *b, const char *s) {
    if (name_is_bare(s))
        buf_puts(b, s);
    else
        put_string(b, s);
}

static void put_type(Buf *b, const Type *t) {
    buf_printf(b, "%s[", dtype_name(t->dtype));
    for (int i = 0; i < t->rank; i++) buf_printf(b, i ? ",%lld" : "%lld", (long long)t->dim[i]);
    buf_putc(b, ']');
}

/* A reference to value id v. A broken module (the verifier's input) may
 * hold an id out of range: print something that cannot parse rather than
 * read out of bounds. */
static void put_value_ref(Buf *b, const Function *f, int v) {
    buf_putc(b, '%');
    if (v >= 0 && v < f->n)
        put_name(b, f->nodes[v].name);
    else
        buf_printf(b, "\"<invalid value id %d>\"", v);
}

/* ---- nodes and functions ---- */

static void put_attr_value(Buf *b, const Attr *a) {
    switch (a->kind) {
    case ATTR_INT: buf_printf(b, "%lld", (long long)a->i); break;
    case ATTR_FLOAT: put_double(b, a->f); break;
    case ATTR_INTS:
        buf_putc(b, '[');
        for (int i = 0; i < a->n; i++) buf_printf(b, i ? ",%lld" : "%lld", (long long)a->ints[i]);
        buf_putc(b, ']');
        break;
    case ATTR_FLOATS:
        buf_puts(b, "f[");
        for (int i = 0; i < a->n; i++) {
            if (i) buf_putc(b, ',');
            put_double(b, a->floats[i]);
        }
        buf_putc(b, ']');
        break;
    case ATTR_STR: put_string(b, a->s ? a->s : ""); break;
    case ATTR_DTYPE: buf_puts(b, dtype_name((DType)a->i)); break;
    }
}

static void put_node(Buf *b, const Function *f, const Node *n) {
    buf_puts(b, "  %");
    put_name(b, n->name);
    buf_printf(b, " = %s(", op_name(n->op));
    for (int i = 0; i < n->ninputs; i++) {
        if (i) buf_puts(b, ", ");
        put_value_ref(b, f, n->inputs[i]);
    }
    buf_putc(b, ')');
    if (n->nattrs) {
        buf_puts(b, " {");
        for (int i = 0; i < n->nattrs; i++) {
            if (i) buf_puts(b, ", ");
            put_name(b, n->attrs[i].key);
            buf_putc(b, '=');
            put_attr_value(b, &n->attrs[i]);
        }
        buf_putc(b, '}');
    }
    buf_puts(b, " : ");
    put_type(b, &n->type);
    buf_putc(b, '\n');
}

static void put_function(Buf *b, const Function *f) {
    buf_puts(b, "func @");
    put_name(b, f->name);
    buf_puts(b, " {\n");
    for (int i = 0; i < f->n; i++) put_node(b, f, &f->nodes[i]);
    buf_puts(b, "  return");
    for (int i = 0; i < f->noutputs; i++) {
        buf_puts(b, i ? ", " : " ");
        put_name(b, f->outputs[i].name);
        buf_putc(b, '=');
        put_value_ref(b, f, f->outputs[i].value);
    }
    buf_puts(b, "\n}\n");
}

/* ---- module-level declarations ---- */

static void put_input(Buf *b, const InputDesc *in) {
    buf_puts(b, "input @");
    put_name(b, in->name);
    buf_puts(b, " : ");
    put_type(b, &in->type);
    if (in->batched) buf_puts(b, " batched");
    /* lo == hi == 0 is "no range"; any other pair is kept so it round-trips. */
    if (in->lo != in->hi || in->lo != 0) {
        buf_puts(b, " range=[");
        put_double(b, in->lo);
        buf_puts(b, ", ");
        put_double(b, in->hi);
        buf_putc(b, ']');
    }
    if (in->classes != 0) buf_printf(b, " classes=%d", in->classes);
    buf_putc(b, '\n');
}

static void put_setting(Buf *b, const Setting *s) {
    buf_puts(b, "setting @");
    put_name(b, s->key);
    buf_puts(b, " = ");
    if (s->is_str)
        put_string(b, s->str ? s->str : "");
    else
        put_double(b, s->num);
    buf_putc(b, '\n');
}

static void put_param(Buf *b, const Param *p) {
    static const char *const kinds[] = {"zeros", "ones", "uniform", "normal"};
    buf_puts(b, "param @");
    put_name(b, p->name);
    buf_puts(b, " : ");
    put_type(b, &p->type);
    unsigned k = (unsigned)p->init.kind;
    buf_printf(b, " init=%s", k < 4 ? kinds[k] : "?");
    /* zeros and ones ignore a; it is printed only when set, to round-trip. */
    if (p->init.kind == INIT_UNIFORM || p->init.kind == INIT_NORMAL || p->init.a != 0) {
        buf_putc(b, '(');
        put_double(b, p->init.a);
        buf_putc(b, ')');
    }
    buf_puts(b, p->trainable ? " trainable\n" : " state\n");
}

static void put_module(Buf *b, const Module *m) {
    buf_puts(b, "module @");
    put_name(b, m->name);
    buf_printf(b, " batch=%lld\n", (long long)m->batch);
    for (int i = 0; i < m->ninputs; i++) put_input(b, &m->inputs[i]);
    for (int i = 0; i < m->nsettings; i++) put_setting(b, &m->settings[i]);
    for (int i = 0; i < m->nparams; i++) put_param(b, &m->params[i]);
    for (int i = 0; i < m->nfuncs; i++) {
        buf_putc(b, '\n');
        put_function(b, m->funcs[i]);
    }
}

/* ---- public API ---- */

static void buf_flush(Buf *b, FILE *out) {
    if (b->len) fwrite(b->s, 1, b->len, out);
    free(b->s);
}

void ir_print_module(const Module *m, FILE *out) {
    Buf b = {0};
    put_module(&b, m);
    buf_flush(&b, out);
}

void ir_print_function(const Module *m, const Function *f, FILE *out) {
    (void)m; /* value names live in the function; nothing module-wide needed */
    Buf b = {0};
    put_function(&b, f);
    buf_flush(&b, out);
}

char *ir_module_to_string(const Module *m) {
    Buf b = {0};
    buf_reserve(&b, 0);
    b.s[0] = '\0';
    put_module(&b, m);
    return b.s;
}

/* ---- DOT ---- */

/* Inside a DOT quoted string: quote and backslash escaped, newline as \n
 * (a line break in the label), other control bytes dropped. */
static void put_dot_text(Buf *b, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf_putc(b, '\\');
            buf_putc(b, (char)*p);
        } else if (*p == '\n') {
            buf_puts(b, "\\n");
        } else if (*p >= 0x20 && *p != 0x7f) {
            buf_putc(b, (char)*p);
        }
    }
}

static const char *dot_shape(OpKind op) {
    if (op == OP_INPUT) return "invhouse";
    if (op == OP_PARAM) return "box";
    return "ellipse";
}

static bool is_output(const Function *f, int v) {
    for (int i = 0; i < f->noutputs; i++)
        if (f->outputs[i].value == v) return true;
    return false;
}

static void put_dot_node(Buf *b, const Function *f, int v) {
    const Node *n = &f->nodes[v];
    char ty[256];
    buf_printf(b, "  n%d [label=\"", v);
    put_dot_text(b, n->name);
    buf_printf(b, "\\n%s\\n%s\", shape=%s", op_name(n->op), type_str(&n->type, ty, sizeof ty),
               dot_shape(n->op));
    if (is_output(f, v)) buf_puts(b, ", peripheries=2");
    buf_puts(b, "];\n");
}

void ir_write_dot(const Module *m, const Function *f, FILE *out) {
    Buf b = {0};
    buf_puts(&b, "digraph \"");
    put_dot_text(&b, f->name);
    buf_puts(&b, "\" {\n  label=\"");
    put_dot_text(&b, m->name);
    buf_putc(&b, '/');
    put_dot_text(&b, f->name);
    buf_puts(&b, "\";\n  node [fontname=\"monospace\"];\n");
    for (int v = 0; v < f->n; v++) put_dot_node(&b, f, v);
    for (int v = 0; v < f->n; v++)
        for (int i = 0; i < f->nodes[v].ninputs; i++)
            buf_printf(&b, "  n%d -> n%d;\n", f->nodes[v].inputs[i], v);
    /* Outputs as plain-text sinks so their names show in the picture. */
    for (int i = 0; i < f->noutputs; i++) {
        buf_printf(&b, "  out%d [label=\"", i);
        put_dot_text(&b, f->outputs[i].name);
        buf_printf(&b, "\", shape=plaintext];\n  n%d -> out%d [style=dashed];\n",
                   f->outputs[i].value, i);
    }
    buf_puts(&b, "}\n");
    buf_flush(&b, out);
}
