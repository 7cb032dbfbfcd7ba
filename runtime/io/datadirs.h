/* Where named data sets (mnist, fashion-mnist, cifar10) are looked for:
 * one list, in one order, for the generated executables and igrc exec, so
 * that `MODEL train --data mnist` finds what `igrc exec --data mnist` finds
 * from any working directory. */
#ifndef IGRC_RUNTIME_DATADIRS_H
#define IGRC_RUNTIME_DATADIRS_H

#define DATA_MAX_DIRS 16
#define DATA_PATH_CAP 1024

typedef struct {
    int n;
    char dir[DATA_MAX_DIRS][DATA_PATH_CAP];
} DataDirs;

/* The repository root whose data/ is searched: $IGRC_SOURCE_DIR when set,
 * else the source directory this runtime was built from. */
const char *data_source_root(void);

/* The directories for a data set known by the names subs[0..nsubs) (CIFAR-10
 * has several), in order: for each base of $IGRC_DATA, ./data and
 * <root>/data (root NULL: data_source_root()), every base/sub; then Debian's
 * /usr/share/datasets/fashion-mnist when a sub is fashion-mnist. A directory
 * reached twice (./data from the repository root) is listed once. */
void data_dirs(const char *const *subs, int nsubs, const char *root, DataDirs *out);

#endif
