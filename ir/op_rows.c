/* The IR layer's op index: the families' IR rows (ops/<family>.c, section
 * IGRC_OPS_IR) by op. Built once, on first use, under pthread_once (compile
 * runs passes on threads); a malformed table is a programming error, so it
 * aborts with a message naming the op rather than returning an error. */
#include "ir/op_rows.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* One entry per file under ops/; the passes and codegen registries list
 * the same families under the same names. */
const IrOpFamily ir_op_families[] = {
    {"sources", ops_sources_ir},   {"elementwise", ops_elementwise_ir},
    {"layout", ops_layout_ir},     {"reduce", ops_reduce_ir},
    {"linalg", ops_linalg_ir},     {"pool", ops_pool_ir},
    {"indexing", ops_indexing_ir}, {"composites", ops_composites_ir},
    {"control", ops_control_ir},   {NULL, NULL},
};

static const IrOpRow *ROWS[OP_COUNT];
static const char *FAMILY[OP_COUNT];
static pthread_once_t built = PTHREAD_ONCE_INIT;

_Noreturn void op_table_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("igrc: internal error in the op table (ops/): ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* A row's rules must fit its op's class: the interpreter runs primitives
 * and sources only, and only elementwise primitives have scalar values. */
static void check_row(const IrOpRow *r, const char *family) {
    const OpInfo *i = &r->info;
    bool elementwise = i->pattern == PK_ELEMWISE && i->cls == OC_PRIMITIVE;
    if (!i->name) op_table_error("family %s: the row of op #%d has no name", family, (int)r->op);
    if (r->kernel && i->cls != OC_PRIMITIVE && i->cls != OC_SOURCE)
        op_table_error("op '%s' (ops/%s.c): an interpreter kernel for a %s op", i->name, family,
                    i->cls == OC_COMPOSITE ? "composite" : "higher-level");
    if ((r->unary && (!elementwise || i->min_inputs != 1)) ||
        (r->binary && (!elementwise || i->min_inputs != 2)))
        op_table_error("op '%s' (ops/%s.c): a scalar value for an op that is not an elementwise "
                    "primitive of that arity", i->name, family);
}

static void build(void) {
    for (const IrOpFamily *fam = ir_op_families; fam->name; fam++)
        for (const IrOpRow *r = fam->rows; r->op != OP_COUNT; r++) {
            if ((unsigned)r->op > OP_COUNT)
                op_table_error("family %s: a row for op #%d, which is no op", fam->name, (int)r->op);
            if (ROWS[r->op])
                op_table_error("op '%s' has IR rows in ops/%s.c and ops/%s.c", r->info.name,
                            FAMILY[r->op], fam->name);
            check_row(r, fam->name);
            ROWS[r->op] = r;
            FAMILY[r->op] = fam->name;
        }
    for (int op = 0; op < OP_COUNT; op++)
        if (!ROWS[op])
            op_table_error("op #%d (after '%s' in ir/ops.h) has no IR row in any family", op,
                        op > 0 && ROWS[op - 1] ? ROWS[op - 1]->info.name : "-");
}

const IrOpRow *ir_op_row(OpKind op) {
    if ((unsigned)op >= OP_COUNT) return NULL;
    pthread_once(&built, build);
    return ROWS[op];
}

const char *ir_op_family(OpKind op) {
    if ((unsigned)op >= OP_COUNT) return "?";
    pthread_once(&built, build);
    return FAMILY[op];
}
