/* The IR text parser. A module it accepts must verify... or be rejected by
 * the verifier with a message; and its printed form must parse again
 * (the text round-trips). */
#include <stdio.h>
#include <stdlib.h>

#include "ir/parse.h"
#include "ir/print.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_text(data, size);
    Diag d;
    diag_init(&d);
    Module *m = ir_parse(text, "fuzz.ir", &d);
    free(text);
    if (!m) return 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ir_print_module(m, f);
    fclose(f);
    Diag d2;
    diag_init(&d2);
    Module *again = ir_parse(buf, "printed.ir", &d2);
    if (!again) __builtin_trap(); /* printed IR that does not parse */
    module_free(again);
    module_free(m);
    free(buf);
    return 0;
}
