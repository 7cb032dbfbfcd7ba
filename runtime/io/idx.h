/* IDX tensor files, the format MNIST and Fashion-MNIST ship in.
 *
 * Layout: a big-endian magic 0x0000TTRR (TT element type, RR rank), RR
 * big-endian u32 dims, then the elements in row-major order. Only unsigned
 * bytes (TT = 0x08) are supported: labels are 0x00000801 (rank 1), images
 * 0x00000803 (count x rows x cols). Files may be gzip-compressed; zlib reads
 * plain and .gz files alike, so callers never care which they have.
 */
#ifndef IGRC_RUNTIME_IDX_H
#define IGRC_RUNTIME_IDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDX_MAX_RANK 4
/* Larger element counts are rejected as corrupt headers: no real data set
 * comes close, and it keeps every size well inside int64/size_t. */
#define IDX_MAX_ELEMENTS ((int64_t)1 << 31)

typedef struct {
    int rank;
    int64_t dims[IDX_MAX_RANK]; /* dims[rank..] are 0 */
    uint8_t *data;              /* n bytes: malloc'd, or inside map */
    size_t n;                   /* product of dims */
    void *map;                  /* a plain file's private mapping (idx_free unmaps it) */
    size_t map_len;
} IdxArray;

/* Loads an IDX file (plain or gzip). On failure returns false, leaves *out
 * zeroed (safe to idx_free) and writes a message naming the path to err
 * (which may be NULL). */
bool idx_load(const char *path, IdxArray *out, char *err, size_t errcap);

/* Frees a->data and zeroes *a; NULL and already-freed arrays are fine. */
void idx_free(IdxArray *a);

typedef struct {
    char train_images[1024], train_labels[1024];
    char test_images[1024], test_labels[1024];
} IdxDataset;

/* Finds the four files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
 * (plain preferred over .gz when both exist).
 * name_or_dir "mnist" or "fashion-mnist": tries the directories of
 * data_dirs (runtime/io/datadirs.h: $IGRC_DATA/<name>, ./data/<name>,
 * <data_root>/data/<name> with data_root the repository root, NULL for the
 * default one, and for "fashion-mnist" Debian's
 * /usr/share/datasets/fashion-mnist). Anything else is a directory holding the files
 * (write "./mnist" for a local directory named like a known data set).
 * On failure *out is zeroed and err lists every directory searched. */
bool idx_find_dataset(const char *name_or_dir, const char *data_root, IdxDataset *out,
                      char *err, size_t errcap);

#endif
