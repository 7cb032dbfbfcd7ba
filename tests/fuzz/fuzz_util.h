/* Shared by the libFuzzer harnesses: a private scratch directory per
 * process (the readers under test take paths), and writing bytes to a file
 * in it. */
#ifndef IGRC_FUZZ_UTIL_H
#define IGRC_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* The process's scratch directory, made on first use (under $TMPDIR or
 * /dev/shm), removed at exit. */
const char *fuzz_dir(void);
/* dir/name holding exactly the n bytes at p; returns the path (static
 * storage, one per name slot 0..7). */
const char *fuzz_file(int slot, const char *name, const uint8_t *p, size_t n);
/* A NUL-terminated malloc'd copy of the input (texts). */
char *fuzz_text(const uint8_t *p, size_t n);

#endif
