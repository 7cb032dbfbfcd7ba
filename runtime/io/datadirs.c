#include "runtime/io/datadirs.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef IGRC_SOURCE_DIR
#define IGRC_SOURCE_DIR "."
#endif

#define DEBIAN_FASHION_MNIST "/usr/share/datasets/fashion-mnist"

const char *data_source_root(void) {
    const char *env = getenv("IGRC_SOURCE_DIR");
    return env && *env ? env : IGRC_SOURCE_DIR;
}

/* Two spellings of one directory compare equal once resolved; a directory
 * that does not exist is compared as written. */
static bool same_dir(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    if (realpath(a, ra) && realpath(b, rb)) return !strcmp(ra, rb);
    return !strcmp(a, b);
}

static void add(DataDirs *out, const char *base, const char *sub) {
    if (out->n >= DATA_MAX_DIRS) return;
    char *dst = out->dir[out->n];
    int k = sub ? snprintf(dst, DATA_PATH_CAP, "%s/%s", base, sub)
                : snprintf(dst, DATA_PATH_CAP, "%s", base);
    if (k < 0 || k >= DATA_PATH_CAP) return; /* too long to be a real place */
    for (int i = 0; i < out->n; i++)
        if (same_dir(out->dir[i], dst)) return;
    out->n++;
}

void data_dirs(const char *const *subs, int nsubs, const char *root, DataDirs *out) {
    out->n = 0;
    if (!root) root = data_source_root();
    const char *env = getenv("IGRC_DATA");
    char rootdata[DATA_PATH_CAP];
    snprintf(rootdata, sizeof rootdata, "%s/data", root);
    const char *bases[3] = {env && *env ? env : NULL, "./data", *root ? rootdata : NULL};
    for (int b = 0; b < 3; b++)
        for (int s = 0; bases[b] && s < nsubs; s++) add(out, bases[b], subs[s]);
    for (int s = 0; s < nsubs; s++)
        if (!strcmp(subs[s], "fashion-mnist")) add(out, DEBIAN_FASHION_MNIST, NULL);
}
