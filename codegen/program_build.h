/* Module (after the pipeline: fused groups, complex ops, loops) -> the
 * runtime's Program (runtime/program/program.h) and the distinct kernels it
 * launches. Also the memory plan: every intermediate value gets an arena
 * offset from its lifetime (first-fit by decreasing size), so values that
 * are never alive at once share bytes. */
#ifndef IGRC_CODEGEN_PROGRAM_BUILD_H
#define IGRC_CODEGEN_PROGRAM_BUILD_H

#include <stdio.h>

#include "codegen/kir/kernel.h"
#include "ir/ir.h"
#include "runtime/program/program.h"

typedef struct {
    char *name;
    int64_t offset, bytes;
    int first, last; /* steps that write it first and read it last */
} PlanValue;

typedef struct {
    char *func;
    int64_t arena, unshared; /* planned bytes; bytes if nothing were shared */
    PlanValue *v;
    int n;
} PlanFunc;

typedef struct {
    Program *prog;
    PlanFunc *plans;     /* one per program function */
    KernelDef **kernels; /* distinct kernels (structural dedup), table order */
    int nkernels;
    int launches;        /* kernel steps before dedup */
} Compiled;

/* Fails (listing every unsupported node with its function) when a node
 * cannot be lowered: composites or grad left over, or elementwise nodes
 * outside fused groups (the fuse pass did not run). */
bool codegen_build(const Module *m, Compiled *out, Diag *d);
void compiled_free(Compiled *c);

/* plan.txt: per function the arena size, and per value its offset, size
 * and lifetime (first and last step); the sum of sizes without sharing. */
void codegen_write_plan(const Compiled *c, FILE *out);

#endif
