/* Comparing two attribution maps (SPEC section 6): Kendall's tau-b with ties
 * handled exactly, top-k intersection, Pearson correlation and cosine
 * similarity. Maps are f32 vectors of n elements (a whole image's map,
 * flattened in any order, the same order for both maps); sums are in double.
 *
 * Every function reports through a MetricStatus:
 *   METRIC_OK         *out holds the value.
 *   METRIC_UNDEFINED  the value is 0/0 for these inputs; *out is NaN. This is
 *                     a constant map for tau-b and Pearson (no pair is
 *                     ordered, or zero variance) and a zero map for cosine.
 *                     No number is right there (a constant map ranks nothing,
 *                     so neither "agrees" nor "disagrees"), and a silent
 *                     convention would change the mean over images without
 *                     anyone seeing it: callers count these cases and report
 *                     them next to their mean.
 *   METRIC_ERROR      bad arguments (n < 2 for tau-b and Pearson, n < 1 for
 *                     the others, k outside 1..n, a NaN or infinite value, a
 *                     NULL pointer) or out of memory; err says which and *out
 *                     is NaN.
 * err may be NULL; messages start with the function's name. */
#ifndef IGRC_RUNTIME_METRICS_H
#define IGRC_RUNTIME_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { METRIC_OK = 0, METRIC_UNDEFINED = 1, METRIC_ERROR = -1 } MetricStatus;

/* Largest n metric_kendall_tau_b accepts: n (n - 1) fits in an int64_t. */
#define METRIC_KENDALL_MAX_N (INT64_C(1) << 31)

/* Kendall's tau-b = (P - Q) / sqrt((P + Q + Tx) (P + Q + Ty)), P and Q the
 * concordant and discordant pairs, Tx (Ty) the pairs tied in x (y) only.
 * Knight's algorithm: O(n log n) time, O(n) memory, exact 64-bit pair counts
 * for n up to METRIC_KENDALL_MAX_N. */
MetricStatus metric_kendall_tau_b(const float *x, const float *y, int64_t n, double *out,
                                  char *err, size_t errcap);

/* Indices of the k largest values of v, written to idx[0..k-1] in order of
 * decreasing value; equal values are ordered by lower index first, so the
 * result is deterministic and the k-th place among ties goes to the lowest
 * indices. Ranks the values as given: pass |v| to rank by magnitude.
 * Returns METRIC_OK or METRIC_ERROR. */
MetricStatus metric_topk(const float *v, int64_t n, int64_t k, int64_t *idx, char *err,
                         size_t errcap);

/* |topk(a, k) ∩ topk(b, k)| / k, in [0, 1], with metric_topk's tie rule.
 * Ties at the k-th value are settled by index in both maps alike: when both
 * maps have fewer than k nonzero values, both top-k sets are filled with the
 * same lowest-index zeros, which counts as agreement. */
MetricStatus metric_topk_intersection(const float *a, const float *b, int64_t n, int64_t k,
                                      double *out, char *err, size_t errcap);

/* Pearson's correlation coefficient (two passes: means, then centred sums).
 * UNDEFINED when either map is constant. */
MetricStatus metric_pearson(const float *x, const float *y, int64_t n, double *out, char *err,
                            size_t errcap);

/* x·y / (|x| |y|). UNDEFINED when either map is all zeros. */
MetricStatus metric_cosine(const float *x, const float *y, int64_t n, double *out, char *err,
                           size_t errcap);

#endif
