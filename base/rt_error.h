/* The runtime's one way to report an error: a formatted message into the
 * caller's buffer (which may be NULL), and false to return. */
#ifndef IGRC_BASE_RT_ERROR_H
#define IGRC_BASE_RT_ERROR_H

#include <stdbool.h>
#include <stddef.h>

bool rt_fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Levenshtein distance between two names (up to 63 characters each; longer
 * ones are far from everything), for "did you mean" in messages. */
int rt_edit_distance(const char *a, const char *b);

/* Flushes stdout; false, with "who: error: ..." on stderr, if writing to it
 * failed at any point (a full disk, /dev/full, a closed pipe): a command's
 * output that never arrived is a failure, not exit 0. */
bool rt_flush_stdout(const char *who);

#endif
