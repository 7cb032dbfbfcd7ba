/* IDX loader (see idx.h): validates everything a corrupt or foreign file can
 * get wrong before trusting it, and never allocates more than the file
 * actually delivers plus one growth step. */
#include "runtime/io/idx.h"
#include "base/rt_error.h"
#include "runtime/io/datadirs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

enum { IDX_TYPE_U8 = 0x08 };

/* gzread takes an unsigned length and returns int: read in chunks below 2^31. */
#define READ_CHUNK ((size_t)1 << 30)
/* The payload buffer starts here and doubles, so a header that lies about its
 * size costs at most twice what the file really holds. */
#define FIRST_ALLOC ((size_t)1 << 20)

typedef struct {
    gzFile gz;
    const char *path;
    char *err;
    size_t errcap;
} Reader;


static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* zlib reports system errors as Z_ERRNO and leaves the detail in errno. */
static bool stream_error(const Reader *r) {
    int code = Z_OK;
    const char *msg = gzerror(r->gz, &code);
    return rt_fail(r->err, r->errcap, "%s: read error: %s", r->path,
                code == Z_ERRNO ? strerror(errno) : msg);
}

/* Reads up to len bytes; returns how many arrived, or -1 on a stream error. */
static int64_t read_some(gzFile gz, uint8_t *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        size_t want = len - got < READ_CHUNK ? len - got : READ_CHUNK;
        int k = gzread(gz, buf + got, (unsigned)want);
        if (k < 0) return -1;
        if (k == 0) break;
        got += (size_t)k;
    }
    return (int64_t)got;
}

static bool read_exact(const Reader *r, uint8_t *buf, size_t len, const char *what) {
    int64_t got = read_some(r->gz, buf, len);
    if (got < 0) return stream_error(r);
    if ((size_t)got < len)
        return rt_fail(r->err, r->errcap, "%s: truncated %s: expected %zu bytes, got %lld",
                    r->path, what, len, (long long)got);
    return true;
}

static bool check_magic(const Reader *r, const uint8_t m[4]) {
    uint32_t magic = be32(m);
    if (m[0] || m[1] || m[3] == 0)
        return rt_fail(r->err, r->errcap, "%s: bad magic 0x%08x: not an IDX file", r->path,
                    (unsigned)magic);
    if (m[2] != IDX_TYPE_U8)
        return rt_fail(r->err, r->errcap,
                    "%s: bad magic 0x%08x: element type 0x%02x unsupported (only unsigned "
                    "byte, 0x08)",
                    r->path, (unsigned)magic, (unsigned)m[2]);
    if (m[3] > IDX_MAX_RANK)
        return rt_fail(r->err, r->errcap, "%s: rank %d in magic 0x%08x exceeds the maximum of %d",
                    r->path, m[3], (unsigned)magic, IDX_MAX_RANK);
    return true;
}

static void format_dims(const IdxArray *a, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < a->rank && len < cap; i++) {
        int k = snprintf(buf + len, cap - len, "%s%lld", i ? "x" : "", (long long)a->dims[i]);
        if (k < 0) break;
        len += (size_t)k;
    }
}

/* Rejects element counts above IDX_MAX_ELEMENTS without overflowing. */
static bool set_count(const Reader *r, IdxArray *a) {
    int64_t count = 1;
    for (int i = 0; i < a->rank; i++) {
        if (a->dims[i] != 0 && count > IDX_MAX_ELEMENTS / a->dims[i]) {
            char dims[64];
            format_dims(a, dims, sizeof dims);
            return rt_fail(r->err, r->errcap, "%s: absurd dims %s: more than 2^31 elements",
                        r->path, dims);
        }
        count *= a->dims[i];
    }
    a->n = (size_t)count;
    return true;
}

static bool read_header(const Reader *r, IdxArray *a) {
    uint8_t m[4], d[4 * IDX_MAX_RANK];
    if (!read_exact(r, m, sizeof m, "header") || !check_magic(r, m)) return false;
    a->rank = m[3];
    if (!read_exact(r, d, 4 * (size_t)a->rank, "header")) return false;
    for (int i = 0; i < a->rank; i++) a->dims[i] = be32(d + 4 * i);
    return set_count(r, a);
}

/* Grows buf from *cap toward n; frees buf when memory runs out. */
static uint8_t *grow(const Reader *r, uint8_t *buf, size_t *cap, size_t n) {
    size_t next = *cap * 2 < n ? *cap * 2 : n;
    uint8_t *bigger = realloc(buf, next);
    if (!bigger) {
        free(buf);
        rt_fail(r->err, r->errcap, "%s: out of memory for %zu bytes", r->path, next);
        return NULL;
    }
    *cap = next;
    return bigger;
}

static bool read_payload(const Reader *r, IdxArray *a) {
    size_t cap = a->n < FIRST_ALLOC ? a->n : FIRST_ALLOC, got = 0;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) return rt_fail(r->err, r->errcap, "%s: out of memory for %zu bytes", r->path, cap);
    for (;;) {
        int64_t k = read_some(r->gz, buf + got, cap - got);
        if (k < 0) {
            free(buf);
            return stream_error(r);
        }
        got += (size_t)k;
        if (got < cap || cap == a->n) break;
        if (!(buf = grow(r, buf, &cap, a->n))) return false;
    }
    if (got < a->n) {
        free(buf);
        return rt_fail(r->err, r->errcap, "%s: truncated data: expected %zu bytes, got %zu",
                    r->path, a->n, got);
    }
    a->data = buf;
    return true;
}

/* Extra bytes mean the dims disagree with the file: treat it as corrupt. */
static bool check_end(const Reader *r, const IdxArray *a) {
    uint8_t extra;
    int64_t k = read_some(r->gz, &extra, 1);
    if (k < 0) return stream_error(r);
    if (k > 0)
        return rt_fail(r->err, r->errcap, "%s: unexpected data after the %zu bytes the dims describe",
                    r->path, a->n);
    return true;
}

/* A plain (not gzip) file is mapped rather than read: MNIST's training
 * images are 47 MB, and a run that trains on --limit 256 of them touches
 * 200 KB. The mapping is private, so the payload stays writable as a
 * malloc'd one is; its size must be exactly the header's. */
static bool map_payload(const Reader *r, size_t header, IdxArray *a) {
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return rt_fail(r->err, r->errcap, "%s: cannot open: %s", r->path, strerror(e));
    }
    size_t size = (size_t)st.st_size, want = header + a->n;
    if (size < want) {
        close(fd);
        return rt_fail(r->err, r->errcap, "%s: truncated data: expected %zu bytes, got %zu", r->path, a->n,
                       size > header ? size - header : 0);
    }
    if (size > want) {
        close(fd);
        return rt_fail(r->err, r->errcap, "%s: unexpected data after the %zu bytes the dims describe", r->path,
                       a->n);
    }
    void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return rt_fail(r->err, r->errcap, "%s: cannot map %zu bytes: %s", r->path, size, strerror(e));
    a->map = map, a->map_len = size;
    a->data = (uint8_t *)map + header;
    return true;
}

bool idx_load(const char *path, IdxArray *out, char *err, size_t errcap) {
    if (!out) return rt_fail(err, errcap, "idx_load: no output array");
    memset(out, 0, sizeof *out);
    if (!path) return rt_fail(err, errcap, "idx_load: no path");
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return rt_fail(err, errcap, "%s: cannot open: %s", path, strerror(errno ? errno : ENOMEM));
    gzbuffer(gz, 1u << 16);
    Reader r = {gz, path, err, errcap};
    IdxArray a = {0};
    bool ok = read_header(&r, &a);
    if (ok && gzdirect(gz))
        ok = map_payload(&r, 4 + 4 * (size_t)a.rank, &a);
    else
        ok = ok && read_payload(&r, &a) && check_end(&r, &a);
    gzclose(gz);
    if (!ok) {
        idx_free(&a);
        return false;
    }
    *out = a;
    return true;
}

void idx_free(IdxArray *a) {
    if (!a) return;
    if (a->map)
        munmap(a->map, a->map_len);
    else
        free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---- data set discovery ---- */

enum { PATH_CAP = sizeof(((IdxDataset *)0)->train_images) };

static const char *const IDX_FILES[4] = {
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
};

static bool file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fclose(f);
    return true;
}

static bool join(char *dst, size_t cap, const char *a, const char *b, const char *c) {
    int k = snprintf(dst, cap, "%s/%s%s", a, b, c);
    return k >= 0 && (size_t)k < cap;
}

/* dir/name or dir/name.gz, whichever exists; plain wins because it loads faster. */
static bool pick_file(const char *dir, const char *name, char *dst) {
    return (join(dst, PATH_CAP, dir, name, "") && file_exists(dst)) ||
           (join(dst, PATH_CAP, dir, name, ".gz") && file_exists(dst));
}

/* Fills out when dir holds all four files; else names the first missing one. */
static bool try_dir(const char *dir, IdxDataset *out, const char **missing) {
    char *dst[4] = {out->train_images, out->train_labels, out->test_images, out->test_labels};
    for (int i = 0; i < 4; i++) {
        if (!pick_file(dir, IDX_FILES[i], dst[i])) {
            *missing = IDX_FILES[i];
            return false;
        }
    }
    return true;
}

/* Directories to search for name_or_dir, most explicit first. */
static void candidate_dirs(const char *name, const char *root, DataDirs *dirs) {
    if (strcmp(name, "fashion-mnist") != 0 && strcmp(name, "mnist") != 0) {
        dirs->n = 1;
        snprintf(dirs->dir[0], DATA_PATH_CAP, "%s", name);
        return;
    }
    data_dirs(&name, 1, root, dirs);
}

bool idx_find_dataset(const char *name_or_dir, const char *data_root, IdxDataset *out,
                      char *err, size_t errcap) {
    if (!out) return rt_fail(err, errcap, "idx_find_dataset: no output");
    memset(out, 0, sizeof *out);
    if (!name_or_dir || !*name_or_dir) return rt_fail(err, errcap, "idx_find_dataset: no name");
    DataDirs dirs;
    char tried[4096] = "";
    candidate_dirs(name_or_dir, data_root, &dirs);
    int n = dirs.n;
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        IdxDataset found = {0};
        const char *missing = "";
        if (try_dir(dirs.dir[i], &found, &missing)) {
            *out = found;
            return true;
        }
        int k = snprintf(tried + len, sizeof tried - len, "%s%s (no %s[.gz])", i ? "; " : "",
                         dirs.dir[i], missing);
        if (k > 0) len += (size_t)k < sizeof tried - len ? (size_t)k : sizeof tried - len - 1;
    }
    return rt_fail(err, errcap, "data set '%s' not found; searched: %s", name_or_dir,
                n ? tried : "nothing");
}
