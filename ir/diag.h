/* Diagnostics: one error message per failed call, with an exit class.
 *
 * Every fallible function takes a Diag* and returns false on failure after
 * filling it. The first error wins, so a caller that adds context uses
 * diag_prefix rather than overwriting the root cause.
 */
#ifndef IGRC_DIAG_H
#define IGRC_DIAG_H

#include <stdbool.h>

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_BADINPUT = 2 };

typedef struct {
    int code; /* 0 while no error; else EXIT_RUNTIME or EXIT_BADINPUT */
    char msg[4096];
} Diag;

void diag_init(Diag *d);
/* Records an error unless one is already recorded; returns false. */
bool diag_error(Diag *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Puts "ctx: " in front of the recorded message (e.g. the file name). */
void diag_prefix(Diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool diag_failed(const Diag *d);

#endif
