/* The reference interpreter: dispatch, dtype storage rules,
 * loops and interp_run. Each op's kernel is in its row (ops/<family>.c);
 * elementwise primitives share the loops here.
 *
 * Storage rules, applied to every op result (and to bound inputs):
 *   f32  in INTERP_F32 each element is rounded through (float); INTERP_F64
 *        keeps full double precision.
 *   i32  truncate toward zero, then wrap modulo 2^32 into [-2^31, 2^31) as
 *        two's-complement int32 arithmetic does; NaN and +-inf (e.g. an i32
 *        division by zero) become 0, since C leaves them undefined.
 *   bool any nonzero (NaN included) is 1, as C's conversion to _Bool.
 * A NULL InterpOptions means INTERP_F32: what the declared types say.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op_rows.h"
#include "ir/scalar.h"

/* ---- shared helpers ---- */

bool kfail(const Node *n, Diag *d, int code, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return diag_error(d, code, "node '%s' (%s): %s", n->name, op_name(n->op), msg);
}

bool need_shape(const Node *n, const Value *in, int i, const Type *want, Diag *d) {
    if (type_same_shape(&in[i].type, want)) return true;
    char a[128], b[128];
    return kfail(n, d, EXIT_BADINPUT, "operand %d is %s, expected shape %s", i,
                 type_str(&in[i].type, a, sizeof a), type_str(want, b, sizeof b));
}

bool need_rank(const Node *n, const Value *in, int i, int rank, Diag *d) {
    if (in[i].type.rank == rank) return true;
    char a[128];
    return kfail(n, d, EXIT_BADINPUT, "operand %d is %s, expected rank %d", i,
                 type_str(&in[i].type, a, sizeof a), rank);
}

void type_strides(const Type *t, int64_t *st) {
    int64_t s = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= t->dim[i];
    }
}

bool kfail_attr(const Node *n, Diag *d, const char *key) {
    return kfail(n, d, EXIT_BADINPUT, "attribute '%s' does not fit operand and result", key);
}

bool need_result(const Node *n, const Type *want, const Type *got, Diag *d) {
    if (type_same_shape(want, got)) return true;
    char a[128], b[128];
    return kfail(n, d, EXIT_BADINPUT, "result type %s, the operands give %s",
                 type_str(got, a, sizeof a), type_str(want, b, sizeof b));
}

bool kfail_shapes(const Node *n, const Type *x, const Type *w, const Type *y, Diag *d) {
    char a[128], b[128], c[128];
    return kfail(n, d, EXIT_BADINPUT, "inconsistent shapes x %s, w %s, y %s",
                 type_str(x, a, sizeof a), type_str(w, b, sizeof b), type_str(y, c, sizeof c));
}

/* Extent of a window op along one axis: floor((in + 2p - k) / s) + 1;
 * -1 when the window does not fit. */
int64_t window_extent(int64_t in, int64_t k, int64_t s, int64_t p) {
    int64_t span = in + 2 * p - k;
    return span < 0 || s < 1 || k < 1 || p < 0 ? -1 : span / s + 1;
}

bool need_pair(const Node *n, const char *key, int64_t dflt, int64_t v[2], Diag *d) {
    int64_t buf[3];
    int k = node_ints(n, key, buf, 3);
    if (k == 0 && dflt >= 0) {
        v[0] = v[1] = dflt;
        return true;
    }
    if (k != 2) return kfail(n, d, EXIT_BADINPUT, "attribute '%s' needs two entries", key);
    v[0] = buf[0];
    v[1] = buf[1];
    return true;
}

/* ---- dtype storage ---- */

double interp_wrap_i32(double v) {
    if (!isfinite(v)) return 0;
    double t = trunc(v);
    if (t >= -2147483648.0 && t <= 2147483647.0) return t;
    double r = fmod(t, 4294967296.0); /* exact; |r| < 2^32, sign of t */
    if (r >= 2147483648.0) r -= 4294967296.0;
    if (r < -2147483648.0) r += 4294967296.0;
    return r;
}

static void store_dtype(Value *v, InterpPrecision prec) {
    int64_t n = type_numel(&v->type);
    double *p = v->data;
    switch (v->type.dtype) {
    case DT_F32:
        if (prec == INTERP_F32)
            for (int64_t i = 0; i < n; i++) p[i] = (double)(float)p[i];
        break;
    case DT_I32:
        for (int64_t i = 0; i < n; i++) p[i] = interp_wrap_i32(p[i]);
        break;
    case DT_BOOL:
        for (int64_t i = 0; i < n; i++) p[i] = p[i] != 0;
        break;
    case DT_F64:
    case DT_COUNT: break;
    }
}

/* ---- dispatch ---- */

/* Elementwise primitives share a loop per arity; the row gives the value
 * (ir/scalar.h: NaN where a row has none). */
static bool ik_unary(const Node *n, const Value *in, Value *out, Diag *d) {
    if (!need_shape(n, in, 0, &out->type, d)) return false;
    UnaryValue f = ir_op_row(n->op)->unary;
    double beta = node_float(n, "beta", 1.0);
    int64_t numel = type_numel(&out->type);
    for (int64_t i = 0; i < numel; i++) out->data[i] = f ? f(in[0].data[i], beta) : NAN;
    return true;
}

static bool ik_binary(const Node *n, const Value *in, Value *out, Diag *d) {
    if (!need_shape(n, in, 0, &out->type, d) || !need_shape(n, in, 1, &out->type, d))
        return false;
    BinaryValue f = ir_op_row(n->op)->binary;
    bool i32 = out->type.dtype == DT_I32;
    int64_t numel = type_numel(&out->type);
    for (int64_t i = 0; i < numel; i++)
        out->data[i] = f ? f(in[0].data[i], in[1].data[i], i32) : NAN;
    return true;
}

double ir_unary_f64(OpKind op, double x, double beta) {
    const IrOpRow *r = ir_op_row(op);
    return r && r->unary ? r->unary(x, beta) : NAN;
}

double ir_binary_f64(OpKind op, double a, double b, bool i32) {
    const IrOpRow *r = ir_op_row(op);
    return r && r->binary ? r->binary(a, b, i32) : NAN;
}

/* The row's kernel; elementwise primitives without one (all but select)
 * run the loop of their arity. NULL: not run by a kernel here. */
static Kernel kernel_for(OpKind op) {
    const IrOpRow *row = ir_op_row(op);
    if (!row) return NULL;
    if (row->kernel) return row->kernel;
    const OpInfo *info = &row->info;
    if (info->pattern != PK_ELEMWISE || info->cls != OC_PRIMITIVE) return NULL;
    return info->min_inputs == 1 ? ik_unary : info->min_inputs == 2 ? ik_binary : NULL;
}

static bool check_node(const Node *n, Diag *d) {
    const OpInfo *info = op_info(n->op);
    if (!info) return diag_error(d, EXIT_BADINPUT, "node '%s': unknown op %d", n->name, (int)n->op);
    if (info->cls == OC_COMPOSITE)
        return kfail(n, d, EXIT_BADINPUT, "op %s is a composite: run the decompose pass first",
                     info->name);
    if (info->cls == OC_HIGHER)
        return kfail(n, d, EXIT_BADINPUT,
                     "op %s is higher-level: run the pass that lowers it first (autodiff for grad)",
                     info->name);
    if (!kernel_for(n->op))
        return kfail(n, d, EXIT_BADINPUT, "the interpreter cannot run op %s here%s", info->name,
                     n->op == OP_INPUT || n->op == OP_PARAM ? " (interp_run binds it)"
                     : n->op == OP_LOOP || n->op == OP_FUSED ? " (it runs a function of the module: use interp_run)"
                                        : "");
    if (n->ninputs < info->min_inputs || (info->max_inputs >= 0 && n->ninputs > info->max_inputs))
        return kfail(n, d, EXIT_BADINPUT, "has %d operands", n->ninputs);
    if (n->type.rank < 0 || n->type.rank > IR_MAX_RANK)
        return kfail(n, d, EXIT_BADINPUT, "result rank %d out of range", n->type.rank);
    for (int i = 0; i < n->type.rank; i++)
        if (n->type.dim[i] < 0) return kfail(n, d, EXIT_BADINPUT, "negative result dim");
    return true;
}

static double *alloc_data(int64_t numel) {
    return calloc((size_t)(numel ? numel : 1), sizeof(double));
}

bool interp_eval_node(const Node *n, const Value *ins, Value *out, const InterpOptions *opt,
                      Diag *d) {
    out->type = n->type;
    out->data = NULL;
    if (!check_node(n, d)) return false;
    out->data = alloc_data(type_numel(&n->type));
    if (!out->data) return kfail(n, d, EXIT_RUNTIME, "out of memory");
    if (!kernel_for(n->op)(n, ins, out, d)) {
        value_free(out);
        return false;
    }
    store_dtype(out, opt ? opt->precision : INTERP_F32);
    return true;
}

void value_free(Value *v) {
    if (!v) return;
    free(v->data);
    v->data = NULL;
}

void named_values_free(NamedValue *v, int n) {
    if (!v) return;
    for (int i = 0; i < n; i++) free(v[i].data);
    free(v);
}

/* ---- interp_run ---- */

/* Loop bodies run inside loop bodies at most this deep: a body that loops
 * over itself (directly or not) fails instead of exhausting the stack. */
#define MAX_LOOP_DEPTH 32

/* What every function run by one interp_run call shares. */
typedef struct {
    const Module *m;
    InterpPrecision prec;
    const NamedValue *inputs, *params;
    int ninputs, nparams;
    int depth; /* loop nesting */
    Diag *d;
} Ctx;

typedef struct {
    const Ctx *c;
    const Function *f;
    const Value *args; /* loop bodies: values for the inputs in node order */
    int nargs, nbound;
    Value *vals;  /* one per node; data NULL once freed */
    int *last;    /* index of the last node reading each value */
    Value *ins;   /* scratch operand list */
    Diag *d;
} Run;

static bool same_class(DType a, DType b) {
    return a == b || (dtype_is_float(a) && dtype_is_float(b));
}

/* Copies src (type st) into out, stored as node n's type. */
static bool copy_in(Run *r, const Node *n, const char *what, const char *key, const Type *st,
                    const double *src, Value *out) {
    char want[128], got[128];
    type_str(&n->type, want, sizeof want);
    type_str(st, got, sizeof got);
    if (!same_class(st->dtype, n->type.dtype) || !type_same_shape(st, &n->type))
        return diag_error(r->d, EXIT_BADINPUT, "%s '%s': expected %s, got %s", what, key, want,
                          got);
    int64_t numel = type_numel(&n->type);
    if (numel && !src) return diag_error(r->d, EXIT_BADINPUT, "%s '%s' has no data", what, key);
    out->type = n->type;
    out->data = alloc_data(numel);
    if (!out->data) return diag_error(r->d, EXIT_RUNTIME, "out of memory binding '%s'", key);
    if (numel) memcpy(out->data, src, (size_t)numel * sizeof(double));
    store_dtype(out, r->c->prec);
    return true;
}

/* Binds an input (by value name) or param (by ref) from the caller's list. */
static bool bind(Run *r, const Node *n, const char *what, const char *key, const NamedValue *nv,
                 int count, Value *out) {
    char want[128];
    type_str(&n->type, want, sizeof want);
    if (!key)
        return diag_error(r->d, EXIT_BADINPUT, "%s node '%s' has no 'ref' attribute", what,
                          n->name);
    const NamedValue *src = NULL;
    for (int i = 0; i < count && !src; i++)
        if (nv[i].name && strcmp(nv[i].name, key) == 0) src = &nv[i];
    if (!src) return diag_error(r->d, EXIT_BADINPUT, "missing %s '%s' (%s)", what, key, want);
    return copy_in(r, n, what, key, &src->type, src->data, out);
}

/* A loop body's next input, by position. */
static bool bind_arg(Run *r, const Node *n, Value *out) {
    if (r->nbound >= r->nargs)
        return diag_error(r->d, EXIT_BADINPUT, "loop body input '%s': the loop passes only %d",
                          n->name, r->nargs);
    const Value *a = &r->args[r->nbound++];
    return copy_in(r, n, "loop body input", n->name, &a->type, a->data, out);
}

/* last[v] = the last node reading v; a value nobody reads dies at once,
 * outputs never die during the run. Also rejects forward references. */
static bool plan_lifetimes(Run *r) {
    const Function *f = r->f;
    for (int i = 0; i < f->n; i++) {
        const Node *n = &f->nodes[i];
        r->last[i] = i;
        for (int k = 0; k < n->ninputs; k++) {
            int v = n->inputs[k];
            if (v < 0 || v >= i)
                return kfail(n, r->d, EXIT_BADINPUT, "operand %d refers to value %d, not defined "
                             "before it", k, v);
            r->last[v] = i;
        }
    }
    for (int k = 0; k < f->noutputs; k++) {
        int v = f->outputs[k].value;
        if (v < 0 || v >= f->n)
            return diag_error(r->d, EXIT_BADINPUT, "output '%s' refers to value %d of %d",
                              f->outputs[k].name, v, f->n);
        r->last[v] = f->n;
    }
    return true;
}

static bool run_function(const Ctx *c, const Function *f, const Value *args, int nargs,
                         Value *outs);

static int count_inputs(const Function *f) {
    int k = 0;
    for (int i = 0; i < f->n; i++) k += f->nodes[i].op == OP_INPUT;
    return k;
}

/* Checks a loop node and finds its body (the shape rule's checks, again,
 * because the interpreter also runs unverified IR). */
static const Function *loop_body(Run *r, const Node *n) {
    const char *name = node_str(n, "body");
    const Function *body = name && r->c->m ? module_find_func(r->c->m, name) : NULL;
    if (!body)
        return kfail(n, r->d, EXIT_BADINPUT, "no function '%s' in the module for the loop body",
                     name ? name : ""), NULL;
    if (r->c->depth >= MAX_LOOP_DEPTH)
        return kfail(n, r->d, EXIT_BADINPUT, "loops nest deeper than %d (does body '%s' loop "
                     "over itself?)", MAX_LOOP_DEPTH, name), NULL;
    if (n->ninputs < 1 || count_inputs(body) != n->ninputs + 1 || body->noutputs != 1)
        return kfail(n, r->d, EXIT_BADINPUT, "body function '%s' must have %d inputs and one "
                     "output, has %d and %d", name, n->ninputs + 1, count_inputs(body),
                     body->noutputs), NULL;
    return body;
}

/* The body's arguments: a fresh trip counter, a private copy of the carry
 * (replaced after every trip), and the captures, lent from the caller. */
static Value *loop_args(Run *r, const Node *n) {
    Value *args = calloc((size_t)n->ninputs + 1, sizeof *args);
    if (!args) return NULL;
    const Value *carry = &r->ins[0];
    int64_t numel = type_numel(&carry->type);
    args[0] = (Value){type_scalar(DT_I32), alloc_data(1)};
    args[1] = (Value){carry->type, alloc_data(numel)};
    for (int k = 1; k < n->ninputs; k++) args[k + 1] = r->ins[k];
    if (args[0].data && args[1].data) {
        memcpy(args[1].data, carry->data, sizeof(double) * (size_t)numel);
        return args;
    }
    value_free(&args[0]);
    value_free(&args[1]);
    free(args);
    return NULL;
}

/* loop(carry, captures...) {body, trips}: carry = body(t, carry, captures)
 * for t = 0..trips-1. */
static bool run_loop(Run *r, const Node *n, Value *out) {
    const Function *body = loop_body(r, n);
    if (!body) return false;
    Value *args = loop_args(r, n);
    if (!args) return kfail(n, r->d, EXIT_RUNTIME, "out of memory");
    Ctx inner = *r->c;
    inner.depth++;
    bool ok = true;
    for (int64_t t = 0; ok && t < node_int(n, "trips", 0); t++) {
        args[0].data[0] = (double)t;
        Value next;
        ok = run_function(&inner, body, args, n->ninputs + 1, &next);
        if (!ok) {
            diag_prefix(r->d, "node '%s' (loop), trip %lld", n->name, (long long)t);
        } else {
            value_free(&args[1]);
            args[1] = next;
        }
    }
    if (ok && !type_same_shape(&args[1].type, &n->type))
        ok = kfail(n, r->d, EXIT_BADINPUT, "the body's output does not have the carry's shape");
    if (ok) *out = (Value){n->type, args[1].data};
    else value_free(&args[1]);
    value_free(&args[0]);
    free(args);
    return ok;
}

/* fused(x...) {body}: the body run once on the operands, bound by position. */
static bool run_fused(Run *r, const Node *n, Value *out) {
    const char *name = node_str(n, "body");
    const Function *body = name && r->c->m ? module_find_func(r->c->m, name) : NULL;
    if (!body)
        return kfail(n, r->d, EXIT_BADINPUT, "no function '%s' in the module for the fused body",
                     name ? name : "");
    if (r->c->depth >= MAX_LOOP_DEPTH || count_inputs(body) != n->ninputs || body->noutputs != 1)
        return kfail(n, r->d, EXIT_BADINPUT, "fused body '%s' must have %d inputs and one output "
                     "(and not contain itself)", name, n->ninputs);
    Ctx inner = *r->c;
    inner.depth++;
    if (!run_function(&inner, body, r->ins, n->ninputs, out)) {
        diag_prefix(r->d, "node '%s' (fused)", n->name);
        return false;
    }
    return true;
}

static bool run_node(Run *r, int i) {
    const Ctx *c = r->c;
    const Node *n = &r->f->nodes[i];
    InterpOptions o = {c->prec};
    for (int k = 0; k < n->ninputs; k++) r->ins[k] = r->vals[n->inputs[k]];
    bool ok;
    if (n->op == OP_PARAM)
        ok = bind(r, n, "param", node_str(n, "ref"), c->params, c->nparams, &r->vals[i]);
    else if (n->op == OP_INPUT)
        ok = r->args ? bind_arg(r, n, &r->vals[i])
                     : bind(r, n, "input", n->name, c->inputs, c->ninputs, &r->vals[i]);
    else if (n->op == OP_LOOP)
        ok = run_loop(r, n, &r->vals[i]);
    else if (n->op == OP_FUSED)
        ok = run_fused(r, n, &r->vals[i]);
    else
        ok = interp_eval_node(n, r->ins, &r->vals[i], &o, r->d);
    if (!ok) return false;
    for (int k = 0; k < n->ninputs; k++)
        if (r->last[n->inputs[k]] == i) value_free(&r->vals[n->inputs[k]]);
    if (r->last[i] == i) value_free(&r->vals[i]);
    return true;
}

/* Copies the function's outputs into outs[0..noutputs). */
static bool copy_outputs(Run *r, Value *outs) {
    const Function *f = r->f;
    for (int k = 0; k < f->noutputs; k++) {
        const Value *v = &r->vals[f->outputs[k].value];
        int64_t numel = type_numel(&v->type);
        outs[k] = (Value){v->type, alloc_data(numel)};
        if (!outs[k].data) {
            for (int j = 0; j < k; j++) value_free(&outs[j]);
            return diag_error(r->d, EXIT_RUNTIME, "out of memory");
        }
        if (numel) memcpy(outs[k].data, v->data, (size_t)numel * sizeof(double));
    }
    return true;
}

/* Runs f with inputs bound by name (args NULL) or by position (loop
 * bodies); on success outs[0..f->noutputs) hold copies of the outputs. */
static bool run_function(const Ctx *c, const Function *f, const Value *args, int nargs,
                         Value *outs) {
    int maxin = 1;
    for (int i = 0; i < f->n; i++)
        if (f->nodes[i].ninputs > maxin) maxin = f->nodes[i].ninputs;
    Run r = {.c = c, .f = f, .args = args, .nargs = nargs, .d = c->d};
    r.vals = calloc((size_t)f->n + 1, sizeof *r.vals);
    r.last = calloc((size_t)f->n + 1, sizeof *r.last);
    r.ins = calloc((size_t)maxin, sizeof *r.ins);
    bool ok = r.vals && r.last && r.ins ? plan_lifetimes(&r)
                                        : diag_error(c->d, EXIT_RUNTIME, "out of memory");
    for (int i = 0; ok && i < f->n; i++) ok = run_node(&r, i);
    if (ok) ok = copy_outputs(&r, outs);
    for (int i = 0; r.vals && i < f->n; i++) value_free(&r.vals[i]);
    free(r.vals);
    free(r.last);
    free(r.ins);
    if (!ok) diag_prefix(c->d, "function '%s'", f->name);
    return ok;
}

bool interp_run(const Module *m, const Function *f, const InterpOptions *opt,
                const NamedValue *inputs, int ninputs, const NamedValue *params, int nparams,
                NamedValue **outputs, int *noutputs, Diag *d) {
    *outputs = NULL;
    *noutputs = 0;
    Ctx c = {.m = m, .prec = opt ? opt->precision : INTERP_F32, .inputs = inputs,
             .ninputs = ninputs, .params = params, .nparams = nparams, .d = d};
    Value *vals = calloc((size_t)(f->noutputs ? f->noutputs : 1), sizeof *vals);
    NamedValue *o = calloc((size_t)(f->noutputs ? f->noutputs : 1), sizeof *o);
    bool ok = vals && o ? run_function(&c, f, NULL, 0, vals)
                        : diag_error(d, EXIT_RUNTIME, "out of memory");
    for (int k = 0; ok && k < f->noutputs; k++)
        o[k] = (NamedValue){f->outputs[k].name, vals[k].type, vals[k].data};
    free(vals);
    if (!ok) {
        free(o);
        return false;
    }
    *outputs = o;
    *noutputs = f->noutputs;
    return true;
}
