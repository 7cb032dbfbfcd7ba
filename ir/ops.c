/* Lookups in the op table: each op's OpInfo is the first part of its IR row
 * (ops/<family>.c, indexed by ir/op_rows.c). */
#include "ir/ops.h"

#include <string.h>

#include "base/rt_error.h"
#include "ir/op_rows.h"

const OpInfo *op_info(OpKind op) {
    const IrOpRow *r = ir_op_row(op);
    return r ? &r->info : NULL;
}

const char *op_name(OpKind op) {
    const IrOpRow *r = ir_op_row(op);
    return r ? r->info.name : "?";
}

bool op_lookup(const char *name, OpKind *out) {
    for (int i = 0; i < OP_COUNT; i++)
        if (strcmp(op_name((OpKind)i), name) == 0) {
            *out = (OpKind)i;
            return true;
        }
    return false;
}

const char *op_closest(const char *name) {
    const char *best = NULL;
    int bd = 1 << 30;
    for (int i = 0; i < OP_COUNT; i++) {
        int d = rt_edit_distance(name, op_name((OpKind)i));
        if (d < bd) {
            bd = d;
            best = op_name((OpKind)i);
        }
    }
    return best;
}

const char *pattern_name(PatternKind p) {
    static const char *const names[] = {"elementwise", "broadcast", "injective",
                                        "reduction",   "complex",   "opaque"};
    return (unsigned)p <= PK_OPAQUE ? names[p] : "?";
}
