/* Rewriting a function into a fresh body: passes copy or replace each node
 * in order, with a map from old value ids to new ones. */
#ifndef IGRC_REWRITE_H
#define IGRC_REWRITE_H

#include "ir/builder.h"

typedef struct {
    Builder b;       /* builds the new body */
    Function *old;
    int *map;        /* old value id -> new value id (-1: dropped) */
} Rewriter;

void rw_begin(Rewriter *rw, Module *m, Function *f, Diag *d);
/* Copies old node `id` with its operands remapped; returns the new id. */
int rw_copy(Rewriter *rw, int id);
/* Remaps the outputs and moves the new body over the old function. On an
 * earlier error it discards the new body and returns false. */
bool rw_finish(Rewriter *rw);

#endif
