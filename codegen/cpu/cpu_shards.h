/* Parallel kernel compilation for the CPU backend (see cpu_shards.c). */
#ifndef IGRC_CODEGEN_CPU_SHARDS_H
#define IGRC_CODEGEN_CPU_SHARDS_H

#include <stdbool.h>

#include "codegen/kir/kernel.h"
#include "ir/diag.h"

/* How many shards to compile n kernels in: one per core (or
 * IGRC_COMPILE_THREADS), at most one per 24 kernels, 1 to 16. */
int cpu_shard_count(int nkernels);
/* Compiles kernels[0..n) in nshards modules on as many threads, shard s
 * (a balanced subset) to the object file paths[s]. */
bool cpu_compile_shards(const KernelDef *const *kernels, int n, int nshards,
                        const char *const *paths, Diag *d);

#endif
