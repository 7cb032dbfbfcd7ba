/* Text form of the IR (deterministic; parse(print(m)) prints identically)
 * and Graphviz DOT export. The grammar is in docs/ir.md. */
#ifndef IGRC_PRINT_H
#define IGRC_PRINT_H

#include <stdio.h>

#include "ir/ir.h"

void ir_print_module(const Module *m, FILE *out);
void ir_print_function(const Module *m, const Function *f, FILE *out);
/* The whole module as a malloc'd string (callers free). */
char *ir_module_to_string(const Module *m);
/* Shortest decimal text that reads back as the same double ("1.0", "1e-05",
 * "inf", "nan"); always contains '.', 'e', "inf" or "nan" so it never reads
 * as an integer. buf needs 32 bytes. */
const char *ir_format_double(double v, char buf[32]);
void ir_write_dot(const Module *m, const Function *f, FILE *out);

#endif
