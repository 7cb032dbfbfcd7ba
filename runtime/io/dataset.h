/* Image classification data for generated executables: MNIST-style IDX
 * files (runtime/io/idx.h) or CIFAR-10's binary batches, as float images in
 * [0,1] (byte / 255, layout [n,C,H,W]) and int32 labels; seeded shuffling
 * and fixed-size batching.
 *
 * CIFAR-10 binary: a directory holding data_batch_1.bin .. data_batch_5.bin
 * (train) and test_batch.bin (test); each record is 1 label byte followed
 * by 3072 pixel bytes in CHW order (3 x 32 x 32).
 */
#ifndef IGRC_RUNTIME_DATASET_H
#define IGRC_RUNTIME_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t n, c, h, w;
    float *x;     /* n*c*h*w, in [0,1] */
    int32_t *y;   /* n */
    char source[1024]; /* the directory it came from, for messages */
} Dataset;

/* Loads the train (train = true) or test split of name_or_dir: "mnist",
 * "fashion-mnist", "cifar10" / "cifar-10" (looked up in the directories of
 * runtime/io/datadirs.h; data_root is the repository root, NULL for the
 * default one), or a directory holding IDX or CIFAR-10 binary files
 * (recognised by the files present). limit > 0 keeps the first limit
 * images. false with a message naming the directory on failure; *out is
 * then zeroed (safe to dataset_free). */
bool dataset_load(const char *name_or_dir, const char *data_root, bool train, int64_t limit,
                  Dataset *out, char *err, size_t errcap);
void dataset_free(Dataset *d);

/* Checks the images are [C,H,W] = chw (a program input's per-image shape). */
/* Every label in [0, classes): false naming the split, the image and the
 * label otherwise (classes <= 0: nothing to check). */
bool dataset_check_labels(const Dataset *d, bool train, int classes, char *err, size_t errcap);

bool dataset_check_shape(const Dataset *d, const int64_t chw[3], char *err, size_t errcap);

/* perm[0..n) = a permutation of 0..n-1 that depends only on (seed, epoch):
 * Fisher-Yates with Philox draws, so a resumed run sees the same order. */
void dataset_permutation(int64_t n, uint32_t seed, uint32_t epoch, int64_t *perm);

/* Fills a batch of B rows from positions [start, start + B) of order
 * (order NULL = identity over d->n). Positions past the end are padding:
 * when training they wrap around to the start of order (every row is a
 * real sample), otherwise they repeat the last sample and get mask 0.
 * x: B*C*H*W floats, y: B labels, mask (may be NULL): B bytes, 1 = real.
 * Returns the number of real (non-padding) rows. */
int64_t dataset_batch(const Dataset *d, const int64_t *order, int64_t start, int64_t B,
                      bool train, float *x, int32_t *y, uint8_t *mask);

/* Batches per pass over n images with batch B (the last one padded). */
int64_t dataset_nbatches(int64_t n, int64_t B);

#endif
