/* The passes layer's rows: for each op, its VJP (autodiff), its expansion
 * into primitives (decompose, composites only) and its peephole rule
 * (simplify). The rows live in the IGRC_OPS_PASSES section of their
 * family's file under ops/; passes/pass_rows.c lists the families and
 * indexes the rows by op once. */
#ifndef IGRC_PASS_ROWS_H
#define IGRC_PASS_ROWS_H

#include "passes/autodiff.h"
#include "passes/rewrite.h"

typedef struct Exp Exp;   /* passes/expand_rule.h */
typedef struct Peep Peep; /* passes/peephole_rule.h */

/* The value of the composite's expansion, or -1 after an error. */
typedef int (*ExpandRule)(Exp *e);
typedef int (*PeepholeRule)(const Peep *p);

typedef struct {
    OpKind op;             /* OP_COUNT ends a family's array */
    VjpRule vjp;           /* every primitive and source but fused (which runs after
                              autodiff); none is an error, never a zero gradient */
    ExpandRule expand;     /* every composite */
    PeepholeRule peephole; /* optional: an algebraic identity */
} PassOpRow;

#define PASS_ROWS_END {.op = OP_COUNT}

typedef struct {
    const char *name; /* the family, as ir_op_families names it */
    const PassOpRow *rows;
} PassOpFamily;

extern const PassOpFamily pass_op_families[];

/* op's row; an op without one (grad, fused) gets a row of NULL rules. The
 * index is built on first use; a duplicate row, a row outside its op's
 * family or one that does not fit its op's class aborts. */
const PassOpRow *pass_op_row(OpKind op);

/* The families' passes sections (ops/<family>.c). */
extern const PassOpRow ops_sources_passes[], ops_elementwise_passes[], ops_layout_passes[],
    ops_reduce_passes[], ops_linalg_passes[], ops_pool_passes[], ops_indexing_passes[],
    ops_composites_passes[], ops_control_passes[];

#endif
