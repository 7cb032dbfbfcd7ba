/* A minimal scatter plot as PNG: points, axes with tick marks at round
 * values, light grid lines and numeric tick labels (a 3x5 pixel digit font);
 * axis names go in the caption of whatever shows the figure. */
#ifndef IGRC_BENCH_PLOT_H
#define IGRC_BENCH_PLOT_H

#include <stdbool.h>
#include <stdint.h>

/* Writes n points (x[i], y[i]) to path; messages go to stderr. */
bool plot_scatter(const char *path, const double *x, const double *y, int64_t n);

#endif
