/* Floating-point operation counts, for `igrc check` and benchmarks. A
 * multiply-add counts 2; elementwise ops 1 per result element; reductions
 * 1 per operand element; data movement 0. */
#ifndef IGRC_FLOPS_H
#define IGRC_FLOPS_H

#include "ir/ir.h"

int64_t node_flops(const Function *f, const Node *n);
int64_t function_flops(const Function *f);

#endif
