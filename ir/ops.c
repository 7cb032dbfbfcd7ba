/* The op table (rows in ir/ops.h) and lookups by name. */
#include "ir/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rt_error.h"

/* The attribute schema spellings of IR_OPS's last column. */
#define END {NULL, AK_INT, false, 0, 0, 0}
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
#define ATTRS(...) ((const AttrSpec[]){__VA_ARGS__, END})
#define NO_ATTRS ((const AttrSpec[]){END})

static const OpInfo TABLE[OP_COUNT] = {
#define IR_OP_ROW(e, nm, mn, mx, pk, cl, attrs) [OP_##e] = {nm, mn, mx, pk, cl, attrs},
    IR_OPS(IR_OP_ROW)
#undef IR_OP_ROW
};

const OpInfo *op_info(OpKind op) { return (unsigned)op < OP_COUNT ? &TABLE[op] : NULL; }

const char *op_name(OpKind op) { return (unsigned)op < OP_COUNT ? TABLE[op].name : "?"; }

bool op_lookup(const char *name, OpKind *out) {
    for (int i = 0; i < OP_COUNT; i++)
        if (strcmp(TABLE[i].name, name) == 0) {
            *out = (OpKind)i;
            return true;
        }
    return false;
}

const char *op_closest(const char *name) {
    const char *best = NULL;
    int bd = 1 << 30;
    for (int i = 0; i < OP_COUNT; i++) {
        int d = rt_edit_distance(name, TABLE[i].name);
        if (d < bd) {
            bd = d;
            best = TABLE[i].name;
        }
    }
    return best;
}

const char *pattern_name(PatternKind p) {
    static const char *const names[] = {"elementwise", "broadcast", "injective",
                                        "reduction",   "complex",   "opaque"};
    return (unsigned)p <= PK_OPAQUE ? names[p] : "?";
}
