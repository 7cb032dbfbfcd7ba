/* Private to fused-kernel lowering (codegen/lower.c) and the emit rules in
 * the ops/ families' codegen sections: the lowering state, output
 * coordinates, and the helpers rules compute indices with. A rule returns
 * the kernel value of its node at coordinates C (low_emit gives an
 * operand's), or -1 after low_fail. */
#ifndef IGRC_LOWER_RULE_H
#define IGRC_LOWER_RULE_H

#include "codegen/codegen_rows.h"
#include "codegen/lower.h"
#include "codegen/lower_math.h"

struct Coord {
    int rank;
    int64_t dim[IR_MAX_RANK];
    int c[IR_MAX_RANK]; /* kernel value ids, -1 until needed */
    int flat;           /* flat index in this shape, -1 until needed */
};

typedef struct {
    int node, flat, c[IR_MAX_RANK], val;
} Memo;

struct Low {
    const Function *f;
    KernelDef *k;
    Diag *d;
    int *buf;  /* body node id -> buffer, -1 */
    Memo *memo;
    int nmemo, memocap;
    bool failed;
};

/* Records "kernel 'k': node 'n' (op): msg" once; returns false. */
bool low_fail(Low *L, const Node *n, const char *msg);
/* A source the kernel cannot compute: it should have been a buffer. */
int low_source_fail(Low *L, const Node *n);

/* An i64 index constant (lower_math_rule.h's ci makes one of any type: the names differ so
 * that a file may include both). */
static inline int cidx(Low *L, int64_t v) { return k_const_i(L->k, KT_I64, v); }
static inline int lt(Low *L, int a, int b) { return k_binary(L->k, KO_LT, a, b); }

/* Coordinates in shape t from a flat index (kernel value), or none yet. */
Coord coord_flat(const Type *t, int flat);
Coord coord_empty(const Type *t);
/* Coordinate i, computed from the flat index on first use. */
int coord_get(Low *L, Coord *C, int i);
/* The flat index, computed from the coordinates on first use. */
int coord_index(Low *L, Coord *C);
void coord_all(Low *L, Coord *C);
/* clamp(x, 0, hi) on i64 indices (loads of padding/concat never read out
 * of bounds; the select picks the right value afterwards). */
int clamp_index(Low *L, int x, int64_t hi);

/* The value of body node v at coordinates C (memoised). */
int low_emit(Low *L, int v, Coord *C);
/* Operands first..last-1 of concat n, whose axis coordinate C counts from
 * the first one's start (a concat node, or one part of a wide one). */
int emit_concat_range(Low *L, const Node *n, int first, int last, Coord *C);

#endif
