/* Shared by runtime/program/program.c (printer, lookups) and the parser (runtime/program/program_parse.c,
 * runtime/program/program_fields.c). */
#ifndef IGRC_RUNTIME_PROGRAM_INTERNAL_H
#define IGRC_RUNTIME_PROGRAM_INTERNAL_H

#include "runtime/program/program.h"

/* A buffer reference as the text spells it: a<offset>, p<k>, i<k>, o<k>, c<k>. */
void program_ref_text(PRef r, char buf[32]);

/* Spellings of RtInitKind in param lines, indexed by the kind. */
extern const char *const program_init_names[4];

#endif
