/* The pass manager: one array of named passes, with the debugging hooks
 * around it (--dump-after, --dump-after-all, --stop-after, --verify-each,
 * timings, and bisect switches that turn one pass off). */
#ifndef IGRC_PASS_H
#define IGRC_PASS_H

#include <stdio.h>

#include "ir/ir.h"

typedef struct {
    Diag *d;
} PassCtx;

typedef bool (*PassFn)(Module *m, PassCtx *ctx);

typedef struct {
    const char *name;
    PassFn run;
    const char *summary;
} PassDef;

/* The default pipeline, in order. */
const PassDef *pass_pipeline(int *count);
const PassDef *pass_find(const char *name);

typedef struct {
    const char *dump_after;  /* comma-separated pass names, or NULL */
    bool dump_after_all;
    const char *stop_after;  /* pass name, or NULL */
    const char *disable;     /* comma-separated passes to skip (bisecting) */
    const char *passes;      /* comma-separated: run exactly these, in order (tests) */
    bool verify_each;
    bool timings;            /* per-pass wall time on stderr */
    const char *dump_dir;    /* NNN.<pass>.ir files here; NULL: to dump_out */
    FILE *dump_out;          /* default stdout */
    bool dump_dot;           /* Graphviz instead of text */
} PipelineOptions;

/* Runs the pipeline; fails on the first pass error, naming the pass. */
bool pipeline_run(Module *m, const PipelineOptions *o, Diag *d);
/* Checks that every name in a comma-separated list is a pass. */
bool pass_names_valid(const char *list, Diag *d);

/* Passes. */
bool pass_verify(Module *m, PassCtx *ctx);
bool pass_decompose(Module *m, PassCtx *ctx);
bool pass_dce(Module *m, PassCtx *ctx);
bool pass_autodiff(Module *m, PassCtx *ctx);
bool pass_simplify(Module *m, PassCtx *ctx);
bool pass_cse(Module *m, PassCtx *ctx);
bool pass_licm(Module *m, PassCtx *ctx);
bool pass_fuse(Module *m, PassCtx *ctx);
bool pass_schedule(Module *m, PassCtx *ctx); /* passes/schedule.h: the peak measure */

#endif
