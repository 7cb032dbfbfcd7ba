/* The codegen layer's op index: the families' codegen rows (ops/<family>.c,
 * section IGRC_OPS_CODEGEN) by op, built once under pthread_once. */
#include "codegen/codegen_rows.h"

#include <pthread.h>
#include <string.h>

#include "ir/op_rows.h"

/* The families of ir_op_families, in the same order. */
const CodegenOpFamily codegen_op_families[] = {
    {"sources", ops_sources_codegen},   {"elementwise", ops_elementwise_codegen},
    {"layout", ops_layout_codegen},     {"reduce", ops_reduce_codegen},
    {"linalg", ops_linalg_codegen},     {"pool", ops_pool_codegen},
    {"indexing", ops_indexing_codegen}, {"composites", ops_composites_codegen},
    {"control", ops_control_codegen},   {NULL, NULL},
};

static const CodegenOpRow *ROWS[OP_COUNT];
static const CodegenOpRow NO_RULES;
static pthread_once_t built = PTHREAD_ONCE_INIT;

/* The backends see primitives and sources only (composites and grad are
 * gone after the pipeline); the math is for elementwise primitives of the
 * rule's arity; library calls are for complex ops. */
static void check_row(const CodegenOpRow *r, const char *family) {
    const char *name = op_name(r->op), *home = ir_op_family(r->op);
    const OpInfo *info = op_info(r->op);
    bool elementwise = info->pattern == PK_ELEMWISE && info->cls == OC_PRIMITIVE;
    if (strcmp(home, family) != 0)
        op_table_error("op '%s': its codegen row is in ops/%s.c, its IR row in ops/%s.c", name,
                       family, home);
    if ((r->emit || r->lib) && info->cls != OC_PRIMITIVE && info->cls != OC_SOURCE)
        op_table_error("op '%s' (ops/%s.c): a lowering for an op the backends never see", name,
                       family);
    if ((r->unary && (!elementwise || info->min_inputs != 1)) ||
        (r->binary && (!elementwise || info->min_inputs != 2)))
        op_table_error("op '%s' (ops/%s.c): elementwise math for an op that is not an "
                       "elementwise primitive of that arity", name, family);
    if (r->lib && info->pattern != PK_COMPLEX)
        op_table_error("op '%s' (ops/%s.c): a library call for an op that is not complex", name,
                       family);
}

static void build(void) {
    for (const CodegenOpFamily *fam = codegen_op_families; fam->name; fam++)
        for (const CodegenOpRow *r = fam->rows; r->op != OP_COUNT; r++) {
            if ((unsigned)r->op > OP_COUNT)
                op_table_error("family %s: a codegen row for op #%d, which is no op", fam->name,
                               (int)r->op);
            check_row(r, fam->name);
            if (ROWS[r->op])
                op_table_error("op '%s' has two codegen rows in ops/%s.c", op_name(r->op),
                               fam->name);
            ROWS[r->op] = r;
        }
}

const CodegenOpRow *codegen_op_row(OpKind op) {
    if ((unsigned)op >= OP_COUNT) return &NO_RULES;
    pthread_once(&built, build);
    return ROWS[op] ? ROWS[op] : &NO_RULES;
}
