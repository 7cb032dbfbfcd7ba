/* The op table's layout (ops/, docs/architecture.md): every op has exactly
 * one IR row, in one family, whose file exists, and the passes layer lists
 * the same families in the same order. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ir/op_rows.h"
#include "passes/pass_rows.h"
#include "tests/common/spawn.h"

Test(op_rows, every_op_is_in_exactly_one_family) {
    int count[OP_COUNT] = {0};
    const char *family[OP_COUNT] = {0};
    for (const IrOpFamily *fam = ir_op_families; fam->name; fam++)
        for (const IrOpRow *r = fam->rows; r->op != OP_COUNT; r++) {
            cr_assert_lt((unsigned)r->op, OP_COUNT, "ops/%s.c: a row for op #%d", fam->name,
                         (int)r->op);
            count[r->op]++;
            family[r->op] = fam->name;
        }
    for (int op = 0; op < OP_COUNT; op++) {
        cr_expect_eq(count[op], 1, "op #%d (%s) has %d IR rows", op, op_name((OpKind)op),
                     count[op]);
        if (count[op] == 1)
            cr_expect_str_eq(ir_op_family((OpKind)op), family[op], "%s", op_name((OpKind)op));
    }
}

Test(op_rows, every_row_is_its_ops) {
    for (int op = 0; op < OP_COUNT; op++) {
        const IrOpRow *r = ir_op_row((OpKind)op);
        cr_assert_not_null(r);
        cr_expect_eq((int)r->op, op);
        cr_expect_eq(op_info((OpKind)op), &r->info);
        OpKind back;
        cr_expect(op_lookup(r->info.name, &back) && back == (OpKind)op, "%s", r->info.name);
    }
}

Test(op_rows, every_family_is_a_file_and_every_layer_lists_it) {
    int k = 0;
    for (const IrOpFamily *fam = ir_op_families; fam->name; fam++, k++) {
        char rel[64];
        snprintf(rel, sizeof rel, "ops/%s.c", fam->name);
        cr_expect_eq(access(src_path(rel), R_OK), 0, "%s is missing", rel);
        cr_assert_not_null(pass_op_families[k].name, "passes lists fewer families");
        cr_expect_str_eq(pass_op_families[k].name, fam->name);
    }
    cr_expect_null(pass_op_families[k].name, "passes lists more families");
}
