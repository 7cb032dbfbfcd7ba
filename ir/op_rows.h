/* The IR layer's rows: for each op, what ir/ knows about it (name, arity,
 * fusion pattern, class, attribute schema, shape rule, interpreter kernel,
 * flop count). The rows live in the IGRC_OPS_IR section of their family's
 * file under ops/; ir/op_rows.c lists the families and indexes the rows by
 * op once. The passes and codegen layers have their own rows in the same
 * family files (passes/pass_rows.h, codegen/codegen_rows.h). */
#ifndef IGRC_OP_ROWS_H
#define IGRC_OP_ROWS_H

#include <math.h>

#include "ir/interp_internal.h"
#include "ir/shape_rule.h"

/* The value of an elementwise unary primitive in double (beta: softplus's). */
typedef double (*UnaryValue)(double x, double beta);
/* ... of a binary one; i32 makes integer products wrap (ir/scalar.h). */
typedef double (*BinaryValue)(double a, double b, bool i32);
typedef int64_t (*FlopsRule)(const Function *f, const Node *n);

typedef struct {
    OpKind op;          /* OP_COUNT ends a family's array */
    OpInfo info;        /* name, arity, pattern, class, attribute schema */
    ShapeRule shape;    /* NULL: an elementwise op, by arity (ir/shape.c) */
    Kernel kernel;      /* NULL: elementwise primitives by arity (ir/interp.c); others
                           are not run by a kernel (interp_run binds or runs them) */
    UnaryValue unary;   /* elementwise unary primitives: their value */
    BinaryValue binary; /* elementwise binary primitives: their value */
    FlopsRule flops;    /* NULL: elementwise ops 1 per result element, others 0 */
} IrOpRow;

/* A row's first fields: enumerator, name, arity (min, max; -1 variadic),
 * pattern, class, schema, as in OP_ROW(NEG, "neg", 1, 1, PK_ELEMWISE,
 * OC_PRIMITIVE, NO_ATTRS); the rules follow by field name. */
#define OP_ROW(e, nm, mn, mx, pk, cls, attrs) .op = OP_##e, .info = {nm, mn, mx, pk, cls, attrs}
#define IR_ROWS_END {.op = OP_COUNT}

/* The attribute schema's spellings (AttrSpec, ir/ops.h): key, kind (A_REQ_
 * when required), the allowed range of numbers and, for int lists, the
 * exact length (0 any, -1 the operand's rank); A_WIN is a 2-D window size
 * (A_OPT_WIN when optional). ir/verify.c checks every node against it. */
#define A_END {NULL, AK_INT, false, 0, 0, 0}
#define A_BIG 1e18
#define A_INT(k, lo, hi) {k, AK_INT, false, 0, lo, hi}
#define A_REQ_INT(k, lo, hi) {k, AK_INT, true, 0, lo, hi}
#define A_FLOAT(k, lo, hi) {k, AK_FLOAT, false, 0, lo, hi}
#define A_REQ_FLOAT(k, lo, hi) {k, AK_FLOAT, true, 0, lo, hi}
#define A_FLOATS(k, lo, hi) {k, AK_FLOATS, false, 0, lo, hi}
#define A_REQ_INTS(k, count, lo, hi) {k, AK_INTS, true, count, lo, hi}
#define A_WIN(k, lo) {k, AK_INTS, true, 2, lo, 1 << 20}
#define A_OPT_WIN(k, lo) {k, AK_INTS, false, 2, lo, 1 << 20}
#define A_STR(k) {k, AK_STR, false, 0, 0, 0}
#define A_REQ_STR(k) {k, AK_STR, true, 0, 0, 0}
#define A_DTYPE(k) {k, AK_DTYPE, false, 0, 0, 0}
#define A_REQ_DTYPE(k) {k, AK_DTYPE, true, 0, 0, 0}
#define ATTRS(...) ((const AttrSpec[]){__VA_ARGS__, A_END})
#define NO_ATTRS ((const AttrSpec[]){A_END})

/* One family file's IR rows; ir_op_families ends with {NULL, NULL}. */
typedef struct {
    const char *name; /* "pool": ops/pool.c */
    const IrOpRow *rows;
} IrOpFamily;

extern const IrOpFamily ir_op_families[];

/* op's row (NULL for an op out of range). The index is built on first use;
 * a duplicate, missing or inconsistent row aborts with a message naming
 * the op. */
const IrOpRow *ir_op_row(OpKind op);
/* The name of the family whose IR rows hold op ("?" out of range). */
const char *ir_op_family(OpKind op);

/* Reports a malformed op table (any layer's) on stderr and aborts. */
_Noreturn void op_table_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The families' IR sections (ops/<family>.c). */
extern const IrOpRow ops_sources_ir[], ops_elementwise_ir[], ops_layout_ir[], ops_reduce_ir[],
    ops_linalg_ir[], ops_pool_ir[], ops_indexing_ir[], ops_composites_ir[], ops_control_ir[];

/* Flop counts several families share (ir/flops.c): one per element of
 * operand 0 (reductions, pooling windows' inputs). */
int64_t flops_per_input(const Function *f, const Node *n);

static inline const Type *flops_in_type(const Function *f, const Node *n, int i) {
    return &f->nodes[n->inputs[i]].type;
}

#endif
