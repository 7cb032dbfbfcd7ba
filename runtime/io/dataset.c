#include "runtime/io/dataset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/philox.h"
#include "base/rt_error.h"
#include "runtime/io/datadirs.h"
#include "runtime/io/idx.h"

#define CIFAR_PIXELS 3072
#define CIFAR_RECORD (1 + CIFAR_PIXELS)


static bool is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool has_file(const char *dir, const char *name) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return is_file(p);
}

static bool is_cifar_dir(const char *dir) {
    return is_dir(dir) && (has_file(dir, "test_batch.bin") || has_file(dir, "data_batch_1.bin"));
}

void dataset_free(Dataset *d) {
    if (!d) return;
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

static bool alloc_images(Dataset *d, int64_t n, int64_t c, int64_t h, int64_t w, char *err,
                         size_t errcap) {
    d->n = n, d->c = c, d->h = h, d->w = w;
    d->x = malloc((size_t)(n * c * h * w) * sizeof(float) + 1);
    d->y = malloc((size_t)n * sizeof(int32_t) + 1);
    if (!d->x || !d->y) return rt_fail(err, errcap, "%s: out of memory for %lld images", d->source,
                                    (long long)n);
    return true;
}

/* ---- IDX (MNIST, Fashion-MNIST) ---------------------------------------- */

static bool load_idx(const IdxDataset *files, bool train, int64_t limit, Dataset *d, char *err,
                     size_t errcap) {
    const char *ip = train ? files->train_images : files->test_images;
    const char *lp = train ? files->train_labels : files->test_labels;
    IdxArray im = {0}, lb = {0};
    bool ok = idx_load(ip, &im, err, errcap) && idx_load(lp, &lb, err, errcap);
    if (ok && (im.rank != 3 || lb.rank != 1))
        ok = rt_fail(err, errcap, "%s: expected images of rank 3 and labels of rank 1, got %d and %d",
                  d->source, im.rank, lb.rank);
    if (ok && im.dims[0] != lb.dims[0])
        ok = rt_fail(err, errcap, "%s: %lld images but %lld labels", d->source,
                  (long long)im.dims[0], (long long)lb.dims[0]);
    if (ok) {
        int64_t n = im.dims[0], hw = im.dims[1] * im.dims[2];
        if (limit > 0 && limit < n) n = limit;
        ok = alloc_images(d, n, 1, im.dims[1], im.dims[2], err, errcap);
        for (int64_t i = 0; ok && i < n * hw; i++) d->x[i] = (float)im.data[i] / 255.0f;
        for (int64_t i = 0; ok && i < n; i++) d->y[i] = lb.data[i];
    }
    idx_free(&im);
    idx_free(&lb);
    return ok;
}

/* ---- CIFAR-10 binary ---------------------------------------------------- */

/* Appends up to `want` records of one batch file to d (d->n counts them). */
static bool read_cifar_file(const char *path, int64_t want, Dataset *d, int64_t *cap, char *err,
                            size_t errcap) {
    FILE *f = fopen(path, "rb");
    if (!f) return rt_fail(err, errcap, "%s: %s", path, strerror(errno));
    bool ok = fseek(f, 0, SEEK_END) == 0;
    long size = ok ? ftell(f) : -1;
    ok = ok && size >= 0 && fseek(f, 0, SEEK_SET) == 0;
    if (!ok) {
        fclose(f);
        return rt_fail(err, errcap, "%s: cannot determine the file size", path);
    }
    if (size == 0 || size % CIFAR_RECORD) {
        fclose(f);
        return rt_fail(err, errcap,
                    "%s: %ld bytes is not a whole number of CIFAR-10 records (%d bytes each: "
                    "1 label byte + 3x32x32 pixels)",
                    path, size, CIFAR_RECORD);
    }
    int64_t n = size / CIFAR_RECORD;
    if (want >= 0 && n > want) n = want;
    if (d->n + n > *cap) {
        int64_t nc = d->n + n;
        float *x = realloc(d->x, (size_t)(nc * CIFAR_PIXELS) * sizeof(float));
        if (x) d->x = x;
        int32_t *y = realloc(d->y, (size_t)nc * sizeof(int32_t));
        if (y) d->y = y;
        if (!x || !y) {
            fclose(f);
            return rt_fail(err, errcap, "%s: out of memory", path);
        }
        *cap = nc;
    }
    uint8_t rec[CIFAR_RECORD];
    for (int64_t i = 0; i < n; i++) {
        if (fread(rec, 1, CIFAR_RECORD, f) != CIFAR_RECORD) {
            fclose(f);
            return rt_fail(err, errcap, "%s: read error in record %lld", path, (long long)i);
        }
        if (rec[0] > 9) {
            fclose(f);
            return rt_fail(err, errcap, "%s: record %lld has label %d (CIFAR-10 labels are 0..9)",
                        path, (long long)i, rec[0]);
        }
        float *x = d->x + (d->n + i) * CIFAR_PIXELS;
        for (int k = 0; k < CIFAR_PIXELS; k++) x[k] = (float)rec[1 + k] / 255.0f;
        d->y[d->n + i] = rec[0];
    }
    d->n += n;
    fclose(f);
    return true;
}

static bool load_cifar(const char *dir, bool train, int64_t limit, Dataset *d, char *err,
                       size_t errcap) {
    d->c = 3, d->h = 32, d->w = 32;
    int64_t cap = 0;
    char path[1200];
    if (!train) {
        snprintf(path, sizeof path, "%s/test_batch.bin", dir);
        if (!is_file(path))
            return rt_fail(err, errcap, "%s: CIFAR-10 directory without test_batch.bin", dir);
        return read_cifar_file(path, limit > 0 ? limit : -1, d, &cap, err, errcap);
    }
    for (int b = 1; b <= 5; b++) {
        if (limit > 0 && d->n >= limit) break;
        snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b);
        if (!is_file(path)) {
            if (b == 1)
                return rt_fail(err, errcap, "%s: CIFAR-10 directory without data_batch_1.bin", dir);
            break; /* a subset of the five batches is fine */
        }
        if (!read_cifar_file(path, limit > 0 ? limit - d->n : -1, d, &cap, err, errcap))
            return false;
    }
    return true;
}

/* A named CIFAR-10 set: the usual directory names in the data directories
 * (runtime/io/datadirs.h). */
static bool find_cifar(const char *name, const char *data_root, char *dir, size_t cap,
                       char *err, size_t errcap) {
    static const char *const subs[] = {"cifar10", "cifar-10", "cifar-10-batches-bin"};
    DataDirs dirs;
    data_dirs(subs, 3, data_root, &dirs);
    char tried[4096] = "";
    for (int i = 0; i < dirs.n; i++) {
        snprintf(dir, cap, "%s", dirs.dir[i]);
        if (is_cifar_dir(dir)) return true;
        size_t used = strlen(tried);
        snprintf(tried + used, sizeof tried - used, "%s%s", used ? ", " : "", dir);
    }
    return rt_fail(err, errcap, "data set '%s' not found (searched: %s; set IGRC_DATA)", name,
                   tried[0] ? tried : "nothing");
}

bool dataset_load(const char *name_or_dir, const char *data_root, bool train, int64_t limit,
                  Dataset *out, char *err, size_t errcap) {
    memset(out, 0, sizeof *out);
    char dir[1024];
    bool ok;
    if (!strcmp(name_or_dir, "cifar10") || !strcmp(name_or_dir, "cifar-10") ||
        is_cifar_dir(name_or_dir)) {
        if (is_cifar_dir(name_or_dir))
            snprintf(dir, sizeof dir, "%s", name_or_dir);
        else if (!find_cifar(name_or_dir, data_root, dir, sizeof dir, err, errcap))
            return false;
        snprintf(out->source, sizeof out->source, "%s", dir);
        ok = load_cifar(dir, train, limit, out, err, errcap);
    } else {
        IdxDataset files;
        if (!idx_find_dataset(name_or_dir, data_root, &files, err, errcap)) return false;
        /* The directory is the images file's. */
        snprintf(out->source, sizeof out->source, "%s", files.train_images);
        char *slash = strrchr(out->source, '/');
        if (slash) *slash = 0;
        ok = load_idx(&files, train, limit, out, err, errcap);
    }
    if (ok && out->n == 0)
        ok = rt_fail(err, errcap, "%s: the %s split has no images", out->source,
                  train ? "training" : "test");
    if (!ok) dataset_free(out);
    return ok;
}

bool dataset_check_labels(const Dataset *d, bool train, int classes, char *err, size_t errcap) {
    for (int64_t i = 0; classes > 0 && i < d->n; i++)
        if (d->y[i] < 0 || d->y[i] >= classes)
            return rt_fail(err, errcap,
                           "%s: the %s labels give image %lld the label %d, but the program's y "
                           "has %d classes (0..%d)",
                           d->source, train ? "training" : "test", (long long)i, (int)d->y[i],
                           classes, classes - 1);
    return true;
}

bool dataset_check_shape(const Dataset *d, const int64_t chw[3], char *err, size_t errcap) {
    if (d->c == chw[0] && d->h == chw[1] && d->w == chw[2]) return true;
    return rt_fail(err, errcap,
                "%s: images are [%lld,%lld,%lld] (C,H,W) but the program's input x expects "
                "[%lld,%lld,%lld]",
                d->source, (long long)d->c, (long long)d->h, (long long)d->w,
                (long long)chw[0], (long long)chw[1], (long long)chw[2]);
}

/* Stream constant for shuffling draws ("shuf"), so they never collide
 * with a random op's stream under the same (seed, step) key. */
#define SHUFFLE_STREAM 0x73687566u

void dataset_permutation(int64_t n, uint32_t seed, uint32_t epoch, int64_t *perm) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    const uint32_t key[2] = {seed, epoch};
    for (int64_t i = n - 1; i > 0; i--) {
        uint32_t ctr[4] = {(uint32_t)i, (uint32_t)((uint64_t)i >> 32), SHUFFLE_STREAM, 0}, r[4];
        philox4x32_10(ctr, key, r);
        /* 64 random bits: the modulo bias is below 2^-30 for any real n. */
        uint64_t u = ((uint64_t)r[0] << 32) | r[1];
        int64_t j = (int64_t)(u % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

int64_t dataset_batch(const Dataset *d, const int64_t *order, int64_t start, int64_t B,
                      bool train, float *x, int32_t *y, uint8_t *mask) {
    const int64_t img = d->c * d->h * d->w;
    int64_t real = 0;
    for (int64_t k = 0; k < B; k++) {
        int64_t pos = start + k;
        bool pad = pos >= d->n;
        if (pad) pos = train ? pos % d->n : d->n - 1;
        else real++;
        int64_t i = order ? order[pos] : pos;
        memcpy(x + k * img, d->x + i * img, (size_t)img * sizeof(float));
        y[k] = d->y[i];
        if (mask) mask[k] = !pad;
    }
    return real;
}

int64_t dataset_nbatches(int64_t n, int64_t B) { return B > 0 ? (n + B - 1) / B : 0; }
