/* The executables' program-text parser (what an executable reads at
 * start-up). An accepted program prints and parses again. */
#include <stdlib.h>

#include "runtime/program/program.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_text(data, size);
    char err[512];
    Program *p = program_parse(text, 4096, err, sizeof err);
    free(text);
    if (!p) return 0;
    char *again = program_to_text(p);
    Program *q = again ? program_parse(again, 4096, err, sizeof err) : NULL;
    if (!q) __builtin_trap(); /* printed program that does not parse */
    program_free(q);
    free(again);
    program_free(p);
    return 0;
}
