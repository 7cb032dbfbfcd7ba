/* Parameter initialisation from a seed: the same numbers in the compiler's
 * `igrc exec` and in generated executables. Element i of the parameter
 * with stream s uses Philox (seed, step 0, s, i), so adding a parameter
 * never changes the others' values. */
#ifndef IGRC_RUNTIME_INIT_H
#define IGRC_RUNTIME_INIT_H

#include <stdint.h>

typedef enum { RT_INIT_ZEROS, RT_INIT_ONES, RT_INIT_UNIFORM, RT_INIT_NORMAL } RtInitKind;

/* U(-a, a) for uniform, N(0, a^2) for normal. */
void rt_init_fill(double *out, int64_t n, RtInitKind kind, double a, uint32_t seed,
                  uint32_t stream);
/* The stream of a parameter: FNV-1a of its name. */
uint32_t rt_init_stream(const char *param_name);

#endif
