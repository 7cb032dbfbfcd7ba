/* The igrc driver: shared option parsing and module loading. */
#ifndef IGRC_DRIVER_H
#define IGRC_DRIVER_H

#include "ir/ir.h"
#include "passes/pass.h"

#define MAX_DEFINES 64

typedef struct {
    const char *file;
    const char *defines[MAX_DEFINES];
    int ndefines;
    int64_t batch;
    PipelineOptions pipe;
} CommonArgs;

/* Handles an option shared by the commands (-D, --batch and the pipeline
 * switches). Returns 1 if consumed (advancing *i), 0 if not ours, -1 on a
 * usage error (message printed). */
int common_option(CommonArgs *a, int argc, char **argv, int *i);
/* .ir files are parsed and verified; anything else is a graph file. */
Module *load_module(const CommonArgs *a, Diag *d);
/* Prints "igrc: <message>" and returns the diagnostic's exit code. */
int report(const Diag *d);
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int cmd_check(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_import(int argc, char **argv);

#endif
