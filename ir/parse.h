/* Parser for the IR text form. Errors name "file:line:col". The result is
 * not verified: callers run ir_verify (ir/verify.h) when they need to. */
#ifndef IGRC_PARSE_H
#define IGRC_PARSE_H

#include "ir/ir.h"

Module *ir_parse(const char *text, const char *filename, Diag *d);
Module *ir_parse_file(const char *path, Diag *d);

#endif
