/* Flop counts: each op's rule is in its row (ops/<family>.c); elementwise
 * ops without one count 1 per result element, every other op 0. */
#include "ir/flops.h"

#include "ir/op_rows.h"

int64_t flops_per_input(const Function *f, const Node *n) {
    return type_numel(flops_in_type(f, n, 0));
}

int64_t node_flops(const Function *f, const Node *n) {
    const IrOpRow *row = ir_op_row(n->op);
    if (row->flops) return row->flops(f, n);
    return row->info.pattern == PK_ELEMWISE ? type_numel(&n->type) : 0;
}

int64_t function_flops(const Function *f) {
    int64_t s = 0;
    for (int i = 0; i < f->n; i++) s += node_flops(f, &f->nodes[i]);
    return s;
}
