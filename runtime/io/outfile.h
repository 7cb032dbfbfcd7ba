/* Output files written atomically (a temporary file renamed over the
 * target): what may be replaced, and the temporaries a killed writer left.
 * Every writer of results, checkpoints and images goes through here, so a
 * device node, a FIFO or a directory given as an output is never replaced
 * by a regular file. */
#ifndef IGRC_RUNTIME_OUTFILE_H
#define IGRC_RUNTIME_OUTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The file to write for output path `path` into dst (cap bytes): path
 * itself when it does not exist or is a regular file, the regular file a
 * symbolic link leads to (so the link survives the rename); false with the
 * reason in err for anything else (a device, a FIFO, a socket, a directory,
 * a link to one of those or to nothing). */
bool outfile_target(const char *path, char *dst, size_t cap, char *err, size_t errcap);

/* Removes PATH.tmp.<pid> files (the temporaries of the writers above)
 * whose process is gone, naming each on `note` (may be NULL); returns how
 * many were removed. */
int outfile_remove_stale(const char *path, FILE *note);

#endif
