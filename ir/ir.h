/* The tensor IR: modules, functions, nodes, types and attributes.
 *
 * A Module owns parameters and functions. A Function is SSA: an array of
 * nodes in topological order; a node's index is its value id. Every node
 * produces exactly one tensor value with a static type. Strings, attribute
 * payloads and input arrays live in the module's arena, so freeing the
 * module frees everything at once (no per-node ownership to get wrong).
 */
#ifndef IGRC_IR_H
#define IGRC_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/diag.h"
#include "ir/ops.h"

/* ---- types ------------------------------------------------------------ */

typedef enum { DT_F32, DT_F64, DT_I32, DT_BOOL, DT_COUNT } DType;

#define IR_MAX_RANK 6

typedef struct {
    DType dtype;
    int rank;
    int64_t dim[IR_MAX_RANK];
} Type;

const char *dtype_name(DType t);
bool dtype_parse(const char *s, DType *out);
bool dtype_is_float(DType t);
int64_t type_numel(const Type *t);
bool type_equal(const Type *a, const Type *b);
bool type_same_shape(const Type *a, const Type *b);
Type type_make(DType dt, int rank, const int64_t *dims);
Type type_scalar(DType dt);
/* "f32[128,1,28,28]"; writes at most cap bytes, returns buf. */
char *type_str(const Type *t, char *buf, size_t cap);

/* ---- attributes -------------------------------------------------------- */

typedef enum {
    ATTR_INT,    /* i */
    ATTR_FLOAT,  /* f */
    ATTR_INTS,   /* ints[n] */
    ATTR_FLOATS, /* floats[n] */
    ATTR_STR,    /* s (also function references) */
    ATTR_DTYPE,  /* i holds a DType */
} AttrKind;

typedef struct {
    const char *key;
    AttrKind kind;
    int n;
    int64_t i;
    double f;
    int64_t *ints;
    double *floats;
    const char *s;
} Attr;

/* ---- nodes, functions, modules ----------------------------------------- */

typedef struct {
    OpKind op;
    const char *name; /* value name, unique in its function; keeps graph ids */
    int ninputs;
    int *inputs;      /* value ids (indices of earlier nodes) */
    int nattrs;
    Attr *attrs;      /* sorted by key: printing and hashing are canonical */
    Type type;
} Node;

typedef struct {
    const char *name;
    int value;
} Output;

typedef struct StrMap StrMap;

typedef struct {
    const char *name;
    Node *nodes;
    int n, cap;
    Output *outputs;
    int noutputs, outcap;
    StrMap *names; /* value name -> id */
} Function;

typedef enum { INIT_ZEROS, INIT_ONES, INIT_UNIFORM, INIT_NORMAL } InitKind;

typedef struct {
    InitKind kind;
    double a; /* bound for uniform (U(-a, a)), standard deviation for normal */
} InitSpec;

typedef struct {
    const char *name;  /* PyTorch state_dict name, e.g. layer1.0.conv1.weight */
    Type type;
    InitSpec init;
    bool trainable;    /* false: state (batch-norm running statistics) */
} Param;

/* A module-level input description (graph file "inputs"). */
typedef struct {
    const char *name;
    Type type;         /* dim[0] is the batch when batched */
    bool batched;
    double lo, hi;     /* value range (images: [0, 1]) */
    int classes;       /* labels: number of classes, else 0 */
} InputDesc;

/* A named number or string the runtime reads (train/eval settings). */
typedef struct {
    const char *key;
    bool is_str;
    double num;
    const char *str;
} Setting;

/* A graph-file node and the value that carries its result in `predict`
 * (kept by the frontend for `igrc check`'s per-node listing). */
typedef struct {
    const char *path;  /* "layer1.0.conv1" */
    const char *op;    /* the graph file's op or block name */
    int value;
} GraphNote;

typedef struct Arena Arena;

typedef struct Module {
    const char *name;
    Arena *arena;
    Param *params;
    int nparams, paramcap;
    Function **funcs;
    int nfuncs, funccap;
    StrMap *func_index;        /* name -> first function of that name */
    InputDesc *inputs;
    int ninputs, inputcap;
    Setting *settings;
    int nsettings, settingcap;
    int64_t batch;
    GraphNote *notes;
    int nnotes, notecap;
} Module;

/* ---- arena and small containers ---------------------------------------- */

Arena *arena_new(void);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t n);      /* zeroed, 16-byte aligned */
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

StrMap *strmap_new(void);
void strmap_free(StrMap *m);
/* Keys are borrowed: they must outlive the map (arena strings do). */
void strmap_put(StrMap *m, const char *key, int value);
int strmap_get(const StrMap *m, const char *key); /* -1 when absent */

/* ---- module API ---------------------------------------------------------- */

Module *module_new(const char *name);
void module_free(Module *m);
Function *module_add_func(Module *m, const char *name);
Function *module_find_func(const Module *m, const char *name);
int module_add_param(Module *m, const char *name, Type t, InitSpec init,
                     bool trainable);
int module_find_param(const Module *m, const char *name);
InputDesc *module_add_input(Module *m, const char *name, Type t);
void module_set_num(Module *m, const char *key, double v);
void module_set_str(Module *m, const char *key, const char *v);
const Setting *module_setting(const Module *m, const char *key);
int64_t module_param_count(const Module *m, bool trainable_only);
void module_note(Module *m, const char *path, const char *op, int value);

/* ---- function API ---------------------------------------------------------- */

/* Adds a node whose type is already known (used by the parser and by the
 * builder after shape inference). Name may be NULL: "t<N>" is chosen. A
 * taken name gets a ".<k>" suffix. Returns the value id. */
int func_add_node(Module *m, Function *f, OpKind op, const char *name,
                  const int *inputs, int ninputs, const Attr *attrs,
                  int nattrs, Type type);
int func_find(const Function *f, const char *name);
/* A function not (yet) in the module: passes build a rewritten body in one
 * and then move it over the original with func_replace, which frees the
 * original's node arrays (their strings stay in the arena). */
Function *func_new_detached(Module *m, const char *name);
void func_replace(Function *dst, Function *src);
void func_add_output(Module *m, Function *f, const char *name, int value);

/* ---- attribute helpers (on nodes) ----------------------------------------- */

const Attr *node_attr(const Node *n, const char *key);
int64_t node_int(const Node *n, const char *key, int64_t dflt);
double node_float(const Node *n, const char *key, double dflt);
/* Copies up to cap ints into out; returns the count (0 when absent). */
int node_ints(const Node *n, const char *key, int64_t *out, int cap);
const char *node_str(const Node *n, const char *key);

Attr attr_int(const char *key, int64_t v);
Attr attr_float(const char *key, double v);
Attr attr_ints(const char *key, const int64_t *v, int n);
Attr attr_floats(const char *key, const double *v, int n);
Attr attr_str(const char *key, const char *s);
Attr attr_dtype(const char *key, DType t);

#endif
