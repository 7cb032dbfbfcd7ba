#include "tests/runtime/app_files.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/common/scratch.h"

void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "fopen %s", path);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "fopen %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

void write_idx_images(const char *path, int n, int h, int w, const uint8_t *px) {
    size_t len = 16 + (size_t)(n * h * w);
    uint8_t *b = malloc(len);
    put_be32(b, 0x803), put_be32(b + 4, (uint32_t)n), put_be32(b + 8, (uint32_t)h),
        put_be32(b + 12, (uint32_t)w);
    memcpy(b + 16, px, (size_t)(n * h * w));
    write_bytes(path, b, len);
    free(b);
}

void write_idx_labels(const char *path, int n, const uint8_t *lb) {
    uint8_t *b = malloc(8 + (size_t)n);
    put_be32(b, 0x801), put_be32(b + 4, (uint32_t)n);
    memcpy(b + 8, lb, (size_t)n);
    write_bytes(path, b, 8 + (size_t)n);
    free(b);
}

/* A separable 2x2 data set: label 1 iff the top row is brighter than the
 * bottom row by a clear margin. */
void make_pixels(int n, uint32_t seed, uint8_t *px, uint8_t *lb) {
    uint32_t s = seed * 2654435761u + 12345u;
    for (int i = 0; i < n;) {
        uint8_t v[4];
        for (int k = 0; k < 4; k++) {
            s = s * 1664525u + 1013904223u;
            v[k] = (uint8_t)(s >> 24);
        }
        int diff = v[0] + v[1] - v[2] - v[3];
        if (abs(diff) < 60) continue;
        memcpy(px + 4 * i, v, 4);
        lb[i] = diff > 0;
        i++;
    }
}


/* The directory's path stays valid for the whole test (in_dir's rotate). */
const char *make_idx_dir(const char *name) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s", in_dir(name));
    mkdir(dir, 0777);
    uint8_t px[4 * NTRAIN], lb[NTRAIN];
    char p[600];
    make_pixels(NTRAIN, 1, px, lb);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dir);
    write_idx_images(p, NTRAIN, 2, 2, px);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", dir);
    write_idx_labels(p, NTRAIN, lb);
    make_pixels(NTEST, 2, px, lb);
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte", dir);
    write_idx_images(p, NTEST, 2, 2, px);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", dir);
    write_idx_labels(p, NTEST, lb);
    return dir;
}

void write_cifar(const char *path, int n, int label0) {
    uint8_t *b = malloc((size_t)n * 3073);
    for (int i = 0; i < n; i++) {
        b[i * 3073] = (uint8_t)((label0 + i) % 10);
        for (int k = 0; k < 3072; k++) b[i * 3073 + 1 + k] = (uint8_t)(i + k);
    }
    write_bytes(path, b, (size_t)n * 3073);
    free(b);
}
