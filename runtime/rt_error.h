/* The runtime's one way to report an error: a formatted message into the
 * caller's buffer (which may be NULL), and false to return. */
#ifndef IGRC_RUNTIME_RT_ERROR_H
#define IGRC_RUNTIME_RT_ERROR_H

#include <stdbool.h>
#include <stddef.h>

bool rt_fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
