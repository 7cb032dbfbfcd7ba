/* Helpers of the frontend bad-input suites (test_bad_input.c,
 * test_bad_include.c): files in the scratch directory, loading that must
 * fail with one line naming the file and given words, or succeed. */
#ifndef IGRC_TESTS_FRONTEND_BAD_INPUT_UTIL_H
#define IGRC_TESTS_FRONTEND_BAD_INPUT_UTIL_H

#include <criterion/criterion.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frontend/frontend.h"
#include "tests/common/scratch.h"
/* Writes a file into the scratch directory; returns its path. */
static inline const char *put(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline const char *put(const char *name, const char *fmt, ...) {
    const char *path = in_dir(name);
    char *slash = strrchr(name, '/');
    if (slash) { /* one level of subdirectory */
        char sub[512];
        snprintf(sub, sizeof sub, "%s/%.*s", g_dir, (int)(slash - name), name);
        mkdir(sub, 0700);
    }
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
    return path;
}

/* A file with one network "n" over input x of shape ["B",1,8,8] whose
 * node list is `nodes` and whose output is node "out". */
static inline const char *put_net(const char *name, const char *nodes) {
    return put(name,
               "{\n  \"igrc\": 1,\n  \"inputs\": {\"x\": {\"shape\": [\"B\", 1, 8, 8]}},\n"
               "  \"networks\": {\n    \"n\": {\n      \"nodes\": [\n%s\n      ],\n"
               "      \"output\": \"out\"\n    }\n  }\n}\n",
               nodes);
}

/* A file with block "blk" (argument w required, k defaulting to 2) and a
 * network "n" over input x of shape ["B",4]. */
static inline const char *put_block_net(const char *name, const char *nodes) {
    return put(name,
               "{\n  \"inputs\": {\"x\": {\"shape\": [\"B\", 4]}},\n"
               "  \"blocks\": {\n    \"blk\": {\n      \"args\": {\"w\": null, \"k\": 2},\n"
               "      \"inputs\": [\"x\"],\n      \"nodes\": [\n"
               "        {\"id\": \"fc\", \"op\": \"linear\", \"inputs\": [\"x\"], "
               "\"out_features\": \"$w\"}\n      ],\n      \"output\": \"fc\"\n    }\n  },\n"
               "  \"networks\": {\"n\": {\"nodes\": [\n%s\n  ], \"output\": \"out\"}}\n}\n",
               nodes);
}

static const char NET_N_PLAIN[] =
    "{\"inputs\": {\"x\": {\"shape\": [\"B\", 4]}}, \"networks\": {\"n\": "
    "{\"nodes\": [{\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"x\"]}], "
    "\"output\": \"out\"}}}\n";

static inline const char *base_of(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Loads path, which must fail with exit class EXIT_BADINPUT and one line
 * of message naming the file and containing every NULL-terminated word. */
static inline void expect_bad_opts(const char *path, const FrontendOptions *o, ...) {
    Diag d;
    diag_init(&d);
    Module *m = frontend_load(path, o, &d);
    if (m) module_free(m);
    cr_assert_null(m, "%s: loaded, expected an error", path);
    cr_assert_eq(d.code, EXIT_BADINPUT, "%s: exit class %d, expected %d (%s)", path, d.code,
                 EXIT_BADINPUT, d.msg);
    cr_expect(strchr(d.msg, '\n') == NULL, "message is not one line: %s", d.msg);
    cr_expect(strstr(d.msg, base_of(path)), "message does not name the file %s: %s",
              base_of(path), d.msg);
    va_list ap;
    va_start(ap, o);
    for (const char *w; (w = va_arg(ap, const char *));)
        cr_expect(strstr(d.msg, w), "message lacks \"%s\": %s", w, d.msg);
    va_end(ap);
}

#define expect_bad(path, ...) expect_bad_opts(path, NULL, __VA_ARGS__, (const char *)NULL)

static inline Module *load_ok(const char *path, const FrontendOptions *o) {
    Diag d;
    diag_init(&d);
    Module *m = frontend_load(path, o, &d);
    cr_assert(m, "%s: %s", path, d.msg);
    cr_assert_eq(d.code, 0);
    return m;
}

static inline const char *source_dir(void) {
    const char *s = getenv("IGRC_SOURCE_DIR");
    cr_assert(s, "IGRC_SOURCE_DIR is not set");
    return s;
}

static inline const char *model_path(const char *rel) {
    static char buf[4][PATH_MAX];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, PATH_MAX, "%s/%s", source_dir(), rel);
    return p;
}

/* ---- JSON and document structure ---- */

#endif
