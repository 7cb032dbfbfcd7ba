/* Running programs from tests (the igrc driver, compiled executables):
 * stdout and stderr captured through files in the scratch directory; a
 * sanitizer report from the child is copied to our stderr (where ctest
 * looks for it) and fails the test. */
#ifndef IGRC_TEST_SPAWN_H
#define IGRC_TEST_SPAWN_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    int rc;          /* exit status, 128 + signal when killed */
    char *out, *err; /* malloc'd, NUL-terminated */
} Result;

/* Runs bin with the NULL-terminated arguments (after argv[0]). */
Result spawn_v(const char *bin, const char *const *args);
void result_free(Result *r);
/* Asserts that r exited 0 (naming `what`, with its output otherwise); frees it. */
void result_ok(Result r, const char *what);
/* A JSON file, parsed (asserted); cJSON_Delete it. */
cJSON *json_load(const char *path);
/* The number o[key] (asserted present). */
double json_num(const cJSON *o, const char *key);
/* $IGRC_BIN (asserted set). */
const char *igrc_bin(void);
/* $IGRC_SOURCE_DIR/rel; the last 8 results stay valid. */
const char *src_path(const char *rel);
/* A whole file, NUL-terminated (asserted readable); *len may be NULL. */
char *slurp(const char *path, size_t *len);

/* MNIST is under $IGRC_SOURCE_DIR/data/mnist (plain or .gz). */
bool have_mnist(void);
/* Points executables at that data (IGRC_DATA) with one thread. */
void mnist_env(void);

#endif
