/* The frontend: graph files (JSON, format v1, docs/graph-format.md) to IR.
 *
 * Loading resolves `include`s into one document, applies command-line
 * overrides (-D key=value), then lowers the selected network to the
 * `predict` entry point. Every error names the file and the JSON path
 * (and the node id where there is one) and has exit class EXIT_BADINPUT.
 */
#ifndef IGRC_FRONTEND_H
#define IGRC_FRONTEND_H

#include "ir/ir.h"

typedef struct {
    const char *const *defines; /* "key=value" strings from -D */
    int ndefines;
    int64_t batch;        /* > 0 overrides the file's batch */
} FrontendOptions;

Module *frontend_load(const char *path, const FrontendOptions *o, Diag *d);

#endif
