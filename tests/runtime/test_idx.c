/* IDX loader: round trips of small plain and gzipped files, every error class,
 * data set discovery, and the real MNIST / Fashion-MNIST files when present. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, setenv, opendir */

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime/io/datadirs.h"
#include "runtime/io/idx.h"

static char tmp[512];

/* Tests run in the scratch directory, so that no ./data of the caller's
 * working directory takes part in a search. */
static void make_tmp(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/igrc-idx-XXXXXX", base && *base ? base : "/tmp");
    cr_assert_not_null(mkdtemp(tmp), "mkdtemp: %s", strerror(errno));
    cr_assert_eq(chdir(tmp), 0);
}

static void rm_tree(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char child[1024];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            rm_tree(child);
        }
        closedir(d);
    }
    remove(path);
}

static void rm_tmp(void) { rm_tree(tmp); }

TestSuite(idx, .init = make_tmp, .fini = rm_tmp);

static void tmp_path(char *dst, size_t cap, const char *name) {
    snprintf(dst, cap, "%s/%s", tmp, name);
}

/* gzopen's "T" mode writes the bytes as they are, so one path covers both. */
static void write_raw(const char *path, const void *bytes, size_t len, bool gz) {
    gzFile f = gzopen(path, gz ? "wb" : "wbT");
    cr_assert_not_null(f, "gzopen %s", path);
    cr_assert_eq(gzwrite(f, bytes, (unsigned)len), (int)len);
    cr_assert_eq(gzclose(f), Z_OK);
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

/* Writes magic, dims and len payload bytes (fewer or more than the dims say
 * when a test wants a broken file); returns the path in a static buffer. */
static const char *write_idx(const char *name, uint32_t magic, const uint32_t *dims, int rank,
                             const uint8_t *payload, size_t len, bool gz) {
    static char path[1024];
    size_t hdr = 4 + 4 * (size_t)rank;
    uint8_t *buf = malloc(hdr + len + 1);
    cr_assert_not_null(buf);
    put_be32(buf, magic);
    for (int i = 0; i < rank; i++) put_be32(buf + 4 + 4 * i, dims[i]);
    if (len) memcpy(buf + hdr, payload, len);
    tmp_path(path, sizeof path, name);
    write_raw(path, buf, hdr + len, gz);
    free(buf);
    return path;
}

static uint8_t *pattern(size_t n, unsigned mul) {
    uint8_t *p = malloc(n ? n : 1);
    cr_assert_not_null(p);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * mul + (i >> 8));
    return p;
}

/* Loads a file that must fail; checks the message mentions every needle. */
static void expect_fail(const char *path, const char *needle1, const char *needle2) {
    IdxArray a;
    char err[512] = "";
    cr_assert_not(idx_load(path, &a, err, sizeof err), "loaded %s", path);
    cr_assert_null(a.data);
    cr_assert_eq(a.n, 0);
    cr_assert_eq(a.rank, 0);
    cr_assert_not_null(strstr(err, needle1), "'%s' lacks '%s'", err, needle1);
    if (needle2) cr_assert_not_null(strstr(err, needle2), "'%s' lacks '%s'", err, needle2);
    idx_free(&a);
}

static void roundtrip(uint32_t magic, const uint32_t *dims, int rank, bool gz) {
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    uint8_t *want = pattern(n, 7);
    const char *path = write_idx(gz ? "rt.gz" : "rt", magic, dims, rank, want, n, gz);
    IdxArray a;
    char err[512] = "";
    cr_assert(idx_load(path, &a, err, sizeof err), "%s", err);
    cr_assert_eq(a.rank, rank);
    for (int i = 0; i < IDX_MAX_RANK; i++)
        cr_assert_eq(a.dims[i], i < rank ? (int64_t)dims[i] : 0, "dim %d", i);
    cr_assert_eq(a.n, n);
    cr_assert_not_null(a.data);
    cr_assert_eq(memcmp(a.data, want, n), 0);
    idx_free(&a);
    cr_assert_null(a.data);
    free(want);
}

Test(idx, plain_labels) { roundtrip(0x00000801, (uint32_t[]){10}, 1, false); }
Test(idx, gzip_labels) { roundtrip(0x00000801, (uint32_t[]){10}, 1, true); }
Test(idx, plain_images) { roundtrip(0x00000803, (uint32_t[]){3, 4, 5}, 3, false); }
Test(idx, gzip_images) { roundtrip(0x00000803, (uint32_t[]){3, 4, 5}, 3, true); }
Test(idx, rank4) { roundtrip(0x00000804, (uint32_t[]){2, 3, 4, 5}, 4, true); }
Test(idx, empty_dim) { roundtrip(0x00000802, (uint32_t[]){0, 28}, 2, false); }

/* Bigger than the first allocation, so the payload buffer has to grow. */
Test(idx, multi_megabyte_plain) { roundtrip(0x00000803, (uint32_t[]){5, 1000, 1000}, 3, false); }
Test(idx, multi_megabyte_gzip) { roundtrip(0x00000803, (uint32_t[]){5, 1000, 1000}, 3, true); }

Test(idx, gzip_file_is_really_compressed) {
    const char *path = write_idx("c.gz", 0x00000801, (uint32_t[]){4}, 1,
                                 (const uint8_t *)"abcd", 4, true);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    int b0 = fgetc(f), b1 = fgetc(f);
    fclose(f);
    cr_assert(b0 == 0x1f && b1 == 0x8b, "no gzip magic");
}

Test(idx, missing_file) {
    char path[1024];
    tmp_path(path, sizeof path, "nope-idx1-ubyte");
    expect_fail(path, path, strerror(ENOENT));
}

Test(idx, directory_is_not_a_file) { expect_fail(tmp, tmp, NULL); }

Test(idx, bad_magic) {
    const char *p = write_idx("bad", 0x12345678, NULL, 0, NULL, 0, false);
    expect_fail(p, p, "0x12345678");
}

Test(idx, bad_magic_gzip) {
    const char *p = write_idx("bad.gz", 0x89504e47, NULL, 0, NULL, 0, true);
    expect_fail(p, p, "0x89504e47");
}

Test(idx, unsupported_element_type) {
    const char *p = write_idx("float", 0x00000d01, (uint32_t[]){1}, 1, (const uint8_t *)"abcd",
                              4, false);
    expect_fail(p, p, "0x00000d01");
}

Test(idx, rank_zero) {
    const char *p = write_idx("r0", 0x00000800, NULL, 0, (const uint8_t *)"a", 1, false);
    expect_fail(p, p, "0x00000800");
}

Test(idx, rank_above_four) {
    uint32_t dims[5] = {1, 1, 1, 1, 1};
    const char *p = write_idx("r5", 0x00000805, dims, 5, (const uint8_t *)"a", 1, false);
    expect_fail(p, p, "rank 5");
}

Test(idx, empty_file) {
    char path[1024];
    tmp_path(path, sizeof path, "empty");
    write_raw(path, "", 0, false);
    expect_fail(path, path, "expected 4 bytes, got 0");
}

Test(idx, truncated_dims) {
    const char *p = write_idx("td", 0x00000803, (uint32_t[]){10}, 1, NULL, 0, false);
    expect_fail(p, p, "expected 12 bytes, got 4");
}

Test(idx, truncated_data) {
    const char *p = write_idx("tp", 0x00000801, (uint32_t[]){10}, 1, (const uint8_t *)"abcd",
                              4, false);
    expect_fail(p, p, "expected 10 bytes, got 4");
}

Test(idx, truncated_data_gzip) {
    const char *p = write_idx("tp.gz", 0x00000802, (uint32_t[]){2, 3}, 2,
                              (const uint8_t *)"abc", 3, true);
    expect_fail(p, p, "expected 6 bytes, got 3");
}

/* A header claiming 2^31 bytes over a 3-byte payload must fail cleanly
 * without first allocating 2 GiB. */
Test(idx, huge_claim_small_file) {
    const char *p = write_idx("huge", 0x00000801, (uint32_t[]){0x80000000u}, 1,
                              (const uint8_t *)"abc", 3, false);
    expect_fail(p, p, "expected 2147483648 bytes, got 3");
}

Test(idx, absurd_dims) {
    const char *p = write_idx("absurd", 0x00000803, (uint32_t[]){65536, 65536, 1}, 3, NULL, 0,
                              false);
    expect_fail(p, p, "65536x65536x1");
}

Test(idx, absurd_dims_no_overflow) {
    uint32_t dims[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    const char *p = write_idx("ovf", 0x00000804, dims, 4, NULL, 0, false);
    expect_fail(p, p, "2^31");
}

Test(idx, trailing_bytes) {
    const char *p = write_idx("trail", 0x00000801, (uint32_t[]){2}, 1, (const uint8_t *)"abc",
                              3, false);
    expect_fail(p, p, "after the 2 bytes");
}

/* A gzip header followed by garbage: zlib reports a stream error. */
Test(idx, corrupt_gzip_stream) {
    static const uint8_t bad[] = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03,
                                  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    char path[1024];
    tmp_path(path, sizeof path, "corrupt.gz");
    write_raw(path, bad, sizeof bad, false);
    expect_fail(path, path, NULL);
}

/* Cutting a real gzip file in half must not crash or leak. */
Test(idx, cut_gzip_file) {
    uint8_t *data = pattern(4096, 13);
    const char *p = write_idx("cut.gz", 0x00000801, (uint32_t[]){4096}, 1, data, 4096, true);
    free(data);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(truncate(p, st.st_size / 2), 0);
    expect_fail(p, p, NULL);
}

Test(idx, null_arguments) {
    IdxArray a;
    char err[128] = "";
    cr_assert_not(idx_load(NULL, &a, err, sizeof err));
    cr_assert_null(a.data);
    cr_assert_not(idx_load("x", NULL, err, sizeof err));
    cr_assert_not(idx_load("/nonexistent/igrc/x", &a, NULL, 0));
    idx_free(NULL);
    idx_free(&a);
    idx_free(&a);
    IdxDataset ds;
    cr_assert_not(idx_find_dataset(NULL, NULL, &ds, err, sizeof err));
    cr_assert_not(idx_find_dataset("", NULL, &ds, NULL, 0));
    cr_assert_not(idx_find_dataset("x", NULL, NULL, err, sizeof err));
}

Test(idx, tiny_error_buffer_is_terminated) {
    IdxArray a;
    char err[8] = "xxxxxxx";
    cr_assert_not(idx_load("/nonexistent/igrc/x", &a, err, sizeof err));
    cr_assert_eq(strlen(err), 7);
}

/* ---- data set discovery ---- */

static const char *const NAMES[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

/* Makes tmp/sub with the four files; files listed in gz_mask (bit i) get .gz,
 * and skip (if >= 0) is left out. */
static void make_dataset(const char *sub, unsigned gz_mask, int skip) {
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/%s", tmp, sub);
    for (char *s = dir + strlen(tmp) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        mkdir(dir, 0755);
        *s = '/';
    }
    cr_assert_eq(mkdir(dir, 0755), 0, "mkdir %s", dir);
    for (int i = 0; i < 4; i++) {
        if (i == skip) continue;
        bool gz = gz_mask >> i & 1;
        snprintf(path, sizeof path, "%s/%s%s", dir, NAMES[i], gz ? ".gz" : "");
        write_raw(path, "x", 1, gz);
    }
}

static void assert_ends(const char *path, const char *suffix) {
    size_t lp = strlen(path), ls = strlen(suffix);
    cr_assert(lp >= ls && !strcmp(path + lp - ls, suffix), "'%s' !~ '%s'", path, suffix);
}

Test(idx, find_directory_mixed_gzip) {
    make_dataset("ds", 0x6, -1);
    char dir[1024], err[2048] = "";
    snprintf(dir, sizeof dir, "%s/ds", tmp);
    IdxDataset ds;
    cr_assert(idx_find_dataset(dir, NULL, &ds, err, sizeof err), "%s", err);
    assert_ends(ds.train_images, "/ds/train-images-idx3-ubyte");
    assert_ends(ds.train_labels, "/ds/train-labels-idx1-ubyte.gz");
    assert_ends(ds.test_images, "/ds/t10k-images-idx3-ubyte.gz");
    assert_ends(ds.test_labels, "/ds/t10k-labels-idx1-ubyte");
}

Test(idx, find_prefers_plain_over_gzip) {
    make_dataset("ds", 0x0, -1);
    char path[1100], err[2048] = "";
    snprintf(path, sizeof path, "%s/ds/%s.gz", tmp, NAMES[0]);
    write_raw(path, "x", 1, true);
    snprintf(path, sizeof path, "%s/ds", tmp);
    IdxDataset ds;
    cr_assert(idx_find_dataset(path, NULL, &ds, err, sizeof err), "%s", err);
    assert_ends(ds.train_images, "/ds/train-images-idx3-ubyte");
}

Test(idx, find_directory_missing_file) {
    make_dataset("ds", 0x0, 2);
    char dir[1024], err[2048] = "";
    snprintf(dir, sizeof dir, "%s/ds", tmp);
    IdxDataset ds;
    cr_assert_not(idx_find_dataset(dir, NULL, &ds, err, sizeof err));
    cr_assert_not_null(strstr(err, dir), "%s", err);
    cr_assert_not_null(strstr(err, "t10k-images-idx3-ubyte"), "%s", err);
    cr_assert_eq(ds.train_images[0], '\0');
}

Test(idx, find_mnist_under_repo_root) {
    make_dataset("repo/data/mnist", 0x0, -1);
    char root[1024], err[2048] = "";
    snprintf(root, sizeof root, "%s/repo", tmp);
    unsetenv("IGRC_DATA");
    IdxDataset ds;
    cr_assert(idx_find_dataset("mnist", root, &ds, err, sizeof err), "%s", err);
    assert_ends(ds.test_labels, "/repo/data/mnist/t10k-labels-idx1-ubyte");
}

Test(idx, find_mnist_env_wins) {
    make_dataset("repo/data/mnist", 0x0, -1);
    make_dataset("env/mnist", 0xf, -1);
    char root[1024], env[1024], err[2048] = "";
    snprintf(root, sizeof root, "%s/repo", tmp);
    snprintf(env, sizeof env, "%s/env", tmp);
    setenv("IGRC_DATA", env, 1);
    IdxDataset ds;
    bool ok = idx_find_dataset("mnist", root, &ds, err, sizeof err);
    unsetenv("IGRC_DATA");
    cr_assert(ok, "%s", err);
    assert_ends(ds.train_images, "/env/mnist/train-images-idx3-ubyte.gz");
}

Test(idx, find_missing_lists_every_place) {
    char root[600], err[4096] = "", want[4096];
    snprintf(root, sizeof root, "%s/repo", tmp);
    setenv("IGRC_DATA", tmp, 1);
    IdxDataset ds;
    bool ok = idx_find_dataset("mnist", root, &ds, err, sizeof err);
    unsetenv("IGRC_DATA");
    cr_assert_not(ok);
    snprintf(want, sizeof want,
             "data set 'mnist' not found; searched: %s/mnist (no train-images-idx3-ubyte[.gz]); "
             "./data/mnist (no train-images-idx3-ubyte[.gz]); %s/data/mnist (no "
             "train-images-idx3-ubyte[.gz])",
             tmp, root);
    cr_assert_str_eq(err, want);
}

/* ---- real data, when present ---- */

/* ctest may run us from the build tree: try the source dir, then parents. */
static bool find_real_mnist(IdxDataset *ds) {
    const char *roots[] = {getenv("IGRC_SOURCE_DIR"), ".", "..", "../..", "../../.."};
    char err[2048];
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++)
        if (roots[i] && idx_find_dataset("mnist", roots[i], ds, err, sizeof err)) return true;
    return false;
}

static void histogram(const IdxArray *labels, size_t counts[10]) {
    memset(counts, 0, 10 * sizeof counts[0]);
    for (size_t i = 0; i < labels->n; i++) {
        cr_assert_lt(labels->data[i], 10, "label %zu is %u", i, labels->data[i]);
        counts[labels->data[i]]++;
    }
}

static void load_ok(const char *path, IdxArray *a) {
    char err[2048] = "";
    cr_assert(idx_load(path, a, err, sizeof err), "%s", err);
}

Test(idx_real, mnist_t10k) {
    IdxDataset ds;
    if (!find_real_mnist(&ds)) cr_skip("data/mnist not found (run scripts/setup.sh)");
    static const size_t want[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    IdxArray labels, images;
    load_ok(ds.test_labels, &labels);
    cr_assert_eq(labels.rank, 1);
    cr_assert_eq(labels.n, 10000);
    size_t counts[10], sum = 0;
    histogram(&labels, counts);
    for (int c = 0; c < 10; c++) {
        cr_assert(counts[c] >= 892 && counts[c] <= 1135, "class %d: %zu", c, counts[c]);
        cr_assert_eq(counts[c], want[c], "class %d: %zu", c, counts[c]);
        sum += counts[c];
    }
    cr_assert_eq(sum, 10000);
    load_ok(ds.test_images, &images);
    cr_assert_eq(images.rank, 3);
    cr_assert(images.dims[0] == 10000 && images.dims[1] == 28 && images.dims[2] == 28);
    idx_free(&labels);
    idx_free(&images);
}

Test(idx_real, fashion_mnist_t10k_gzip) {
    IdxDataset ds;
    char err[2048];
    if (!idx_find_dataset("fashion-mnist", NULL, &ds, err, sizeof err))
        cr_skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
    IdxArray labels, images;
    load_ok(ds.test_labels, &labels);
    cr_assert_eq(labels.n, 10000);
    size_t counts[10];
    histogram(&labels, counts);
    for (int c = 0; c < 10; c++) cr_assert_eq(counts[c], 1000, "class %d: %zu", c, counts[c]);
    load_ok(ds.test_images, &images);
    cr_assert(images.rank == 3 && images.dims[0] == 10000 && images.dims[1] == 28 &&
              images.dims[2] == 28);
    idx_free(&labels);
    idx_free(&images);
}
