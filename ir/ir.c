/* Core IR containers: types, the arena, the name map, modules and functions. */
#include "ir/ir.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "igrc: out of memory (%zu bytes)\n", n);
        abort();
    }
    return q;
}

/* ---- types ---- */

static const char *const DTYPE_NAMES[DT_COUNT] = {"f32", "f64", "i32", "bool"};

const char *dtype_name(DType t) { return (unsigned)t < DT_COUNT ? DTYPE_NAMES[t] : "?"; }

bool dtype_parse(const char *s, DType *out) {
    for (int i = 0; i < DT_COUNT; i++)
        if (strcmp(s, DTYPE_NAMES[i]) == 0) {
            *out = (DType)i;
            return true;
        }
    return false;
}

bool dtype_is_float(DType t) { return t == DT_F32 || t == DT_F64; }

int64_t type_numel(const Type *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->dim[i];
    return n;
}

bool type_same_shape(const Type *a, const Type *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

bool type_equal(const Type *a, const Type *b) {
    return a->dtype == b->dtype && type_same_shape(a, b);
}

Type type_make(DType dt, int rank, const int64_t *dims) {
    Type t = {.dtype = dt, .rank = rank};
    for (int i = 0; i < rank; i++) t.dim[i] = dims[i];
    return t;
}

Type type_scalar(DType dt) { return type_make(dt, 0, NULL); }

char *type_str(const Type *t, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "%s[", dtype_name(t->dtype));
    for (int i = 0; i < t->rank && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ",%lld" : "%lld", (long long)t->dim[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* ---- arena: chunks of at least 64 KiB, freed together ---- */

typedef struct Chunk {
    struct Chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} Chunk;

struct Arena {
    Chunk *head;
};

Arena *arena_new(void) { return calloc(1, sizeof(Arena)); }

void arena_free(Arena *a) {
    if (!a) return;
    for (Chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(a);
}

void *arena_alloc(Arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    Chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = xrealloc(NULL, sizeof(Chunk) + cap);
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *arena_strdup(Arena *a, const char *s) {
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(a, n);
    memcpy(p, s, n);
    return p;
}

char *arena_printf(Arena *a, const char *fmt, ...) {
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, aq);
    va_end(aq);
    return p;
}

/* ---- string -> int map: open addressing, FNV-1a ---- */

struct StrMap {
    const char **keys;
    int *vals;
    size_t cap, len;
};

StrMap *strmap_new(void) {
    StrMap *m = calloc(1, sizeof *m);
    m->cap = 64;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->vals = calloc(m->cap, sizeof *m->vals);
    return m;
}

void strmap_free(StrMap *m) {
    if (!m) return;
    free(m->keys);
    free(m->vals);
    free(m);
}

static size_t str_hash(const char *s) {
    size_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static size_t strmap_slot(const StrMap *m, const char *key) {
    size_t i = str_hash(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key) != 0) i = (i + 1) & (m->cap - 1);
    return i;
}

static void strmap_grow(StrMap *m) {
    StrMap old = *m;
    m->cap *= 2;
    m->len = 0;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->vals = calloc(m->cap, sizeof *m->vals);
    for (size_t i = 0; i < old.cap; i++)
        if (old.keys[i]) strmap_put(m, old.keys[i], old.vals[i]);
    free(old.keys);
    free(old.vals);
}

void strmap_put(StrMap *m, const char *key, int value) {
    if (2 * (m->len + 1) > m->cap) strmap_grow(m);
    size_t i = strmap_slot(m, key);
    if (!m->keys[i]) m->len++;
    m->keys[i] = key;
    m->vals[i] = value;
}

int strmap_get(const StrMap *m, const char *key) {
    size_t i = strmap_slot(m, key);
    return m->keys[i] ? m->vals[i] : -1;
}

/* ---- modules ---- */

#define GROW(arr, len, cap)                                            \
    do {                                                               \
        if ((len) == (cap)) {                                          \
            (cap) = (cap) ? 2 * (cap) : 8;                             \
            (arr) = xrealloc((arr), (size_t)(cap) * sizeof *(arr));    \
        }                                                              \
    } while (0)

Module *module_new(const char *name) {
    Module *m = calloc(1, sizeof *m);
    m->arena = arena_new();
    m->name = arena_strdup(m->arena, name ? name : "module");
    m->func_index = strmap_new();
    return m;
}

static void func_free(Function *f) {
    free(f->nodes);
    free(f->outputs);
    strmap_free(f->names);
    free(f);
}

void module_free(Module *m) {
    if (!m) return;
    for (int i = 0; i < m->nfuncs; i++) func_free(m->funcs[i]);
    free(m->funcs);
    strmap_free(m->func_index);
    free(m->params);
    free(m->inputs);
    free(m->settings);
    free(m->notes);
    arena_free(m->arena);
    free(m);
}

Function *func_new_detached(Module *m, const char *name) {
    Function *f = calloc(1, sizeof *f);
    f->name = arena_strdup(m->arena, name);
    f->names = strmap_new();
    return f;
}

void func_replace(Function *dst, Function *src) {
    free(dst->nodes);
    free(dst->outputs);
    strmap_free(dst->names);
    const char *name = dst->name;
    *dst = *src;
    dst->name = name;
    free(src);
}

Function *module_add_func(Module *m, const char *name) {
    Function *f = func_new_detached(m, name);
    GROW(m->funcs, m->nfuncs, m->funccap);
    if (strmap_get(m->func_index, f->name) < 0) strmap_put(m->func_index, f->name, m->nfuncs);
    m->funcs[m->nfuncs++] = f;
    return f;
}

/* By index: fused and loop bodies make functions as many as nodes, and
 * codegen looks each one up. Functions are only ever appended. */
Function *module_find_func(const Module *m, const char *name) {
    int i = strmap_get(m->func_index, name);
    return i < 0 ? NULL : m->funcs[i];
}

int module_add_param(Module *m, const char *name, Type t, InitSpec init, bool trainable) {
    GROW(m->params, m->nparams, m->paramcap);
    m->params[m->nparams] = (Param){arena_strdup(m->arena, name), t, init, trainable};
    return m->nparams++;
}

int module_find_param(const Module *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i].name, name) == 0) return i;
    return -1;
}

InputDesc *module_add_input(Module *m, const char *name, Type t) {
    GROW(m->inputs, m->ninputs, m->inputcap);
    InputDesc *d = &m->inputs[m->ninputs++];
    *d = (InputDesc){.name = arena_strdup(m->arena, name), .type = t};
    return d;
}

static Setting *setting_slot(Module *m, const char *key) {
    for (int i = 0; i < m->nsettings; i++)
        if (strcmp(m->settings[i].key, key) == 0) return &m->settings[i];
    GROW(m->settings, m->nsettings, m->settingcap);
    Setting *s = &m->settings[m->nsettings++];
    *s = (Setting){.key = arena_strdup(m->arena, key)};
    return s;
}

void module_set_num(Module *m, const char *key, double v) {
    Setting *s = setting_slot(m, key);
    s->is_str = false;
    s->num = v;
}

void module_set_str(Module *m, const char *key, const char *v) {
    Setting *s = setting_slot(m, key);
    s->is_str = true;
    s->str = arena_strdup(m->arena, v);
}

const Setting *module_setting(const Module *m, const char *key) {
    for (int i = 0; i < m->nsettings; i++)
        if (strcmp(m->settings[i].key, key) == 0) return &m->settings[i];
    return NULL;
}

int64_t module_param_count(const Module *m, bool trainable_only) {
    int64_t n = 0;
    for (int i = 0; i < m->nparams; i++)
        if (m->params[i].trainable || !trainable_only) n += type_numel(&m->params[i].type);
    return n;
}

void module_note(Module *m, const char *path, const char *op, int value) {
    GROW(m->notes, m->nnotes, m->notecap);
    m->notes[m->nnotes++] = (GraphNote){arena_strdup(m->arena, path), arena_strdup(m->arena, op),
                                        value};
}

/* ---- functions ---- */

static const char *unique_name(Module *m, Function *f, const char *name) {
    if (!name || !*name) name = arena_printf(m->arena, "t%d", f->n);
    if (strmap_get(f->names, name) < 0) return arena_strdup(m->arena, name);
    for (int k = 1;; k++) {
        char *cand = arena_printf(m->arena, "%s.%d", name, k);
        if (strmap_get(f->names, cand) < 0) return cand;
    }
}

static int attr_cmp(const void *a, const void *b) {
    return strcmp(((const Attr *)a)->key, ((const Attr *)b)->key);
}

/* Deep-copies an attribute's payload into the arena. */
static Attr attr_copy(Arena *a, const Attr *src) {
    Attr d = *src;
    d.key = arena_strdup(a, src->key);
    if (src->kind == ATTR_INTS) {
        d.ints = arena_alloc(a, sizeof(int64_t) * (size_t)(src->n + 1));
        if (src->n) memcpy(d.ints, src->ints, sizeof(int64_t) * (size_t)src->n);
    } else if (src->kind == ATTR_FLOATS) {
        d.floats = arena_alloc(a, sizeof(double) * (size_t)(src->n + 1));
        if (src->n) memcpy(d.floats, src->floats, sizeof(double) * (size_t)src->n);
    } else if (src->kind == ATTR_STR) {
        d.s = arena_strdup(a, src->s ? src->s : "");
    }
    return d;
}

int func_add_node(Module *m, Function *f, OpKind op, const char *name, const int *inputs,
                  int ninputs, const Attr *attrs, int nattrs, Type type) {
    /* Copy operands and attributes before growing the node array: callers
     * may pass pointers into it (a node's type dims as a shape attribute). */
    int *ins = arena_alloc(m->arena, sizeof(int) * (size_t)(ninputs + 1));
    if (ninputs) memcpy(ins, inputs, sizeof(int) * (size_t)ninputs);
    Attr *as = arena_alloc(m->arena, sizeof(Attr) * (size_t)(nattrs + 1));
    for (int i = 0; i < nattrs; i++) as[i] = attr_copy(m->arena, &attrs[i]);
    qsort(as, (size_t)nattrs, sizeof(Attr), attr_cmp);
    const char *uname = unique_name(m, f, name);
    GROW(f->nodes, f->n, f->cap);
    Node *n = &f->nodes[f->n];
    *n = (Node){.op = op, .name = uname, .ninputs = ninputs, .inputs = ins, .nattrs = nattrs,
                .attrs = as, .type = type};
    strmap_put(f->names, n->name, f->n);
    return f->n++;
}

int func_find(const Function *f, const char *name) { return strmap_get(f->names, name); }

void func_add_output(Module *m, Function *f, const char *name, int value) {
    GROW(f->outputs, f->noutputs, f->outcap);
    f->outputs[f->noutputs++] = (Output){arena_strdup(m->arena, name), value};
}

/* ---- attributes ---- */

const Attr *node_attr(const Node *n, const char *key) {
    for (int i = 0; i < n->nattrs; i++)
        if (strcmp(n->attrs[i].key, key) == 0) return &n->attrs[i];
    return NULL;
}

int64_t node_int(const Node *n, const char *key, int64_t dflt) {
    const Attr *a = node_attr(n, key);
    if (!a) return dflt;
    if (a->kind == ATTR_FLOAT) return (int64_t)a->f;
    return a->i;
}

double node_float(const Node *n, const char *key, double dflt) {
    const Attr *a = node_attr(n, key);
    if (!a) return dflt;
    if (a->kind == ATTR_INT) return (double)a->i;
    return a->f;
}

int node_ints(const Node *n, const char *key, int64_t *out, int cap) {
    const Attr *a = node_attr(n, key);
    if (!a || a->kind != ATTR_INTS) return 0;
    int k = a->n < cap ? a->n : cap;
    for (int i = 0; i < k; i++) out[i] = a->ints[i];
    return a->n;
}

const char *node_str(const Node *n, const char *key) {
    const Attr *a = node_attr(n, key);
    return a && a->kind == ATTR_STR ? a->s : NULL;
}

Attr attr_int(const char *key, int64_t v) { return (Attr){.key = key, .kind = ATTR_INT, .i = v}; }

Attr attr_float(const char *key, double v) {
    return (Attr){.key = key, .kind = ATTR_FLOAT, .f = v};
}

Attr attr_ints(const char *key, const int64_t *v, int n) {
    return (Attr){.key = key, .kind = ATTR_INTS, .ints = (int64_t *)v, .n = n};
}

Attr attr_floats(const char *key, const double *v, int n) {
    return (Attr){.key = key, .kind = ATTR_FLOATS, .floats = (double *)v, .n = n};
}

Attr attr_str(const char *key, const char *s) {
    return (Attr){.key = key, .kind = ATTR_STR, .s = s};
}

Attr attr_dtype(const char *key, DType t) {
    return (Attr){.key = key, .kind = ATTR_DTYPE, .i = t};
}
