#include "ir/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void diag_init(Diag *d) {
    d->code = 0;
    d->msg[0] = '\0';
}

bool diag_error(Diag *d, int code, const char *fmt, ...) {
    if (!d || d->code) return false;
    d->code = code ? code : EXIT_RUNTIME;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    return false;
}

void diag_prefix(Diag *d, const char *fmt, ...) {
    if (!d || !d->code) return;
    char pre[1024], old[sizeof d->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, d->msg, sizeof old);
    size_t k = strlen(pre);
    if (k > sizeof d->msg - 3) k = sizeof d->msg - 3;
    memcpy(d->msg, pre, k);
    memcpy(d->msg + k, ": ", 2);
    size_t rest = sizeof d->msg - k - 3;
    size_t lo = strlen(old);
    if (lo > rest) lo = rest;
    memcpy(d->msg + k + 2, old, lo);
    d->msg[k + 2 + lo] = '\0';
}

bool diag_failed(const Diag *d) { return d && d->code != 0; }
