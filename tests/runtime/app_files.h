/* Files the executables' host-side tests write: bytes, IDX data sets of
 * 2x2 images with two separable classes (tests/runtime/test_app.c,
 * test_datasets.c). */
#ifndef IGRC_TEST_APP_FILES_H
#define IGRC_TEST_APP_FILES_H

#include <stddef.h>
#include <stdint.h>

#define NTRAIN 100
#define NTEST 37

void write_bytes(const char *path, const void *p, size_t n);
char *read_text(const char *path); /* malloc'd, NUL-terminated */
void put_be32(uint8_t *p, uint32_t v);
void write_idx_images(const char *path, int n, int h, int w, const uint8_t *px);
void write_idx_labels(const char *path, int n, const uint8_t *lb);
/* n 2x2 images whose label is which diagonal is brighter. */
void make_pixels(int n, uint32_t seed, uint8_t *px, uint8_t *lb);
/* An IDX data set directory (NTRAIN / NTEST images) in the scratch
 * directory; one static buffer: copy the path to keep two. */
const char *make_idx_dir(const char *name);
/* n CIFAR-10 records, labels label0, label0 + 1, ... (mod 10). */
void write_cifar(const char *path, int n, int label0);

#endif
