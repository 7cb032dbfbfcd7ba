/* The CUDA kernel cache: keys, entry files, atomic writes (cuda_cache.h). */
#include "codegen/cuda/cuda_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "IGRCKC 1\n"

/* FNV-1a, 64 bits, continuing from h. */
static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* A 64-bit finaliser (splitmix64's) so the two halves decorrelate. */
static uint64_t mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

CudaCacheKey cuda_cache_key(const char *const *parts, int n) {
    uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
    for (int i = 0; i < n; i++) {
        uint64_t len = strlen(parts[i]);
        a = fnv(a, &len, sizeof len);
        b = fnv(b ^ mix(a), &len, sizeof len);
        a = fnv(a, parts[i], len);
        b = fnv(b, parts[i], len);
    }
    return (CudaCacheKey){{mix(a), mix(b ^ a)}};
}

static void key_hex(CudaCacheKey k, char out[33]) {
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)k.h[0], (unsigned long long)k.h[1]);
}

void cuda_cache_path(const char *dir, CudaCacheKey key, char *buf, size_t cap) {
    char hex[33];
    key_hex(key, hex);
    snprintf(buf, cap, "%s/%s.igrck", dir, hex);
}

static uint64_t checksum(const void *data, size_t n) {
    return mix(fnv(0xcbf29ce484222325ull, data, n));
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (len + 65536 > cap) {
            cap = (len + 65536) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    fclose(f);
    if (buf) buf[len] = 0; /* room is left: the loop ends on a short read */
    *n = len;
    return buf;
}

bool cuda_cache_load(const char *path, CudaCacheKey key, void **data, size_t *n, bool *corrupt) {
    size_t len, m = strlen(MAGIC), body = 0;
    *corrupt = false;
    char *buf = read_all(path, &len);
    if (!buf) return false;
    char hex[33], seen[33];
    key_hex(key, hex);
    unsigned long long sum = 0;
    int used = 0;
    /* header: magic, key, length, checksum; then exactly length bytes */
    bool ok = len > m && memcmp(buf, MAGIC, m) == 0 &&
              sscanf(buf + m, "%32[0-9a-f]\n%zu\n%16llx\n%n", seen, &body, &sum, &used) == 3 &&
              used > 0 && strcmp(seen, hex) == 0 && body == len - m - (size_t)used &&
              checksum(buf + m + used, body) == sum;
    if (!ok) {
        *corrupt = true;
        free(buf);
        return false;
    }
    memmove(buf, buf + m + (size_t)used, body);
    *data = buf;
    *n = body;
    return true;
}

/* mkdir -p */
static bool make_dirs(const char *dir, char *err, size_t cap) {
    char path[4096];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0777) && errno != EEXIST) {
            snprintf(err, cap, "mkdir %s: %s", path, strerror(errno));
            return false;
        }
        *p = '/';
    }
    if (mkdir(path, 0777) && errno != EEXIST) {
        snprintf(err, cap, "mkdir %s: %s", path, strerror(errno));
        return false;
    }
    return true;
}

bool cuda_cache_store(const char *path, CudaCacheKey key, const void *data, size_t n, char *err,
                      size_t errcap) {
    char dir[4096], tmp[4300], hex[33];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    if (slash && !make_dirs(dir, err, errcap)) return false;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errcap, "%s: %s", tmp, strerror(errno));
        return false;
    }
    key_hex(key, hex);
    fprintf(f, MAGIC "%s\n%zu\n%016llx\n", hex, n, (unsigned long long)checksum(data, n));
    bool ok = fwrite(data, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errcap, "%s: %s", ok ? path : tmp, strerror(errno));
        unlink(tmp);
        return false;
    }
    return true;
}
