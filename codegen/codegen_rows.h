/* The codegen layer's rows: for each op, how a fused kernel computes it by
 * index arithmetic (codegen/lower.c), its elementwise math in kernel-IR
 * primitives (codegen/lower_math.c) and the arguments of its CPU library
 * call (codegen/program_build.c). The rows live in the IGRC_OPS_CODEGEN
 * section of their family's file under ops/; codegen/codegen_rows.c lists
 * the families and indexes the rows by op once. */
#ifndef IGRC_CODEGEN_ROWS_H
#define IGRC_CODEGEN_ROWS_H

#include "codegen/kir/kernel.h"
#include "ir/ir.h"

typedef struct Low Low;     /* codegen/lower_rule.h */
typedef struct Coord Coord; /* codegen/lower_rule.h */

/* The kernel value of node n at output coordinates C, or -1 after an error. */
typedef int (*EmitRule)(Low *L, const Node *n, Coord *C);
/* An elementwise op's value from its operands' (lower_math.h's lm_unary,
 * lm_binary); a binary rule gets its row's kop. */
typedef int (*UnaryLowering)(KernelDef *k, int a, double beta);
typedef int (*BinaryLowering)(KernelDef *k, KOp kop, int a, int b);
/* A complex op's library call: returns its CpuOp (runtime/cpu/cpu_ops.h)
 * and fills its arguments a[0..*nargs) from the operand types. */
typedef int (*LibArgs)(const Node *n, const Type *in0, const Type *in1, int64_t *a, int *nargs);

typedef struct {
    OpKind op;             /* OP_COUNT ends a family's array */
    EmitRule emit;         /* views, reductions, indexing, computed sources; elementwise
                              ops go by their pattern (lower.c's emit_elementwise) */
    UnaryLowering unary;   /* elementwise unary primitives but cast */
    BinaryLowering binary; /* elementwise binary primitives */
    KOp kop;               /* the kernel-IR op binary builds with */
    LibArgs lib;           /* complex ops */
} CodegenOpRow;

#define CODEGEN_ROWS_END {.op = OP_COUNT}

typedef struct {
    const char *name; /* the family, as ir_op_families names it */
    const CodegenOpRow *rows;
} CodegenOpFamily;

extern const CodegenOpFamily codegen_op_families[];

/* op's row; an op without one gets a row of NULL rules. The index is built
 * on first use; a duplicate row, a row outside its op's family or one that
 * does not fit its op's class aborts. */
const CodegenOpRow *codegen_op_row(OpKind op);

/* The families' codegen sections (ops/<family>.c). */
extern const CodegenOpRow ops_sources_codegen[], ops_elementwise_codegen[], ops_layout_codegen[],
    ops_reduce_codegen[], ops_linalg_codegen[], ops_pool_codegen[], ops_indexing_codegen[],
    ops_composites_codegen[], ops_control_codegen[];

#endif
