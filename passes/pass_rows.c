/* The passes layer's op index: the families' passes rows (ops/<family>.c,
 * section IGRC_OPS_PASSES) by op, built once under pthread_once. */
#include "passes/pass_rows.h"

#include <pthread.h>
#include <string.h>

#include "ir/op_rows.h"

/* The families of ir_op_families, in the same order. */
const PassOpFamily pass_op_families[] = {
    {"sources", ops_sources_passes},   {"elementwise", ops_elementwise_passes},
    {"layout", ops_layout_passes},     {"reduce", ops_reduce_passes},
    {"linalg", ops_linalg_passes},     {"pool", ops_pool_passes},
    {"indexing", ops_indexing_passes}, {"composites", ops_composites_passes},
    {"control", ops_control_passes},   {NULL, NULL},
};

static const PassOpRow *ROWS[OP_COUNT];
static const PassOpRow NO_RULES;
static pthread_once_t built = PTHREAD_ONCE_INIT;

/* Autodiff sees primitives and sources only (decompose runs first), and
 * only composites are decomposed. */
static void check_row(const PassOpRow *r, const char *family) {
    const char *name = op_name(r->op), *home = ir_op_family(r->op);
    OpClass cls = op_info(r->op)->cls;
    if (strcmp(home, family) != 0)
        op_table_error("op '%s': its passes row is in ops/%s.c, its IR row in ops/%s.c", name,
                       family, home);
    if (r->vjp && cls != OC_PRIMITIVE && cls != OC_SOURCE)
        op_table_error("op '%s' (ops/%s.c): a VJP for an op autodiff never sees", name, family);
    if (r->expand && cls != OC_COMPOSITE)
        op_table_error("op '%s' (ops/%s.c): an expansion for an op that is not a composite", name,
                       family);
}

static void build(void) {
    for (const PassOpFamily *fam = pass_op_families; fam->name; fam++)
        for (const PassOpRow *r = fam->rows; r->op != OP_COUNT; r++) {
            if ((unsigned)r->op > OP_COUNT)
                op_table_error("family %s: a passes row for op #%d, which is no op", fam->name,
                               (int)r->op);
            check_row(r, fam->name);
            if (ROWS[r->op])
                op_table_error("op '%s' has two passes rows in ops/%s.c", op_name(r->op),
                               fam->name);
            ROWS[r->op] = r;
        }
}

const PassOpRow *pass_op_row(OpKind op) {
    if ((unsigned)op >= OP_COUNT) return &NO_RULES;
    pthread_once(&built, build);
    return ROWS[op] ? ROWS[op] : &NO_RULES;
}
