/* The embedded CUDA image (runtime/cuda/cuda_abi.h): a short text header, then
 * the PTX and the CUBIN as counted byte strings. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/cuda_abi.h"

#define IMAGE_MAGIC "IGRCCUDA 1\n"

void *cuda_image_write(const CudaImage *img, size_t *n) {
    char head[256];
    int h = snprintf(head, sizeof head, IMAGE_MAGIC "arch %s\ntf32 %d\nkernels %d\nptx %zu\n",
                     img->arch, img->opt.tf32 ? 1 : 0, img->nkernels, img->ptx_bytes);
    char mid[64];
    int m = snprintf(mid, sizeof mid, "\ncubin %zu\n", img->cubin_bytes);
    size_t total = (size_t)h + img->ptx_bytes + (size_t)m + img->cubin_bytes;
    char *buf = malloc(total);
    if (!buf) return NULL;
    char *p = buf;
    memcpy(p, head, (size_t)h), p += h;
    if (img->ptx_bytes) memcpy(p, img->ptx, img->ptx_bytes), p += img->ptx_bytes;
    memcpy(p, mid, (size_t)m), p += m;
    if (img->cubin_bytes) memcpy(p, img->cubin, img->cubin_bytes);
    *n = total;
    return buf;
}

static bool bad(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = snprintf(err, cap, "CUDA image: ");
    if (k > 0 && (size_t)k < cap) vsnprintf(err + k, cap - (size_t)k, fmt, ap);
    va_end(ap);
    return false;
}

/* Reads "KEY VALUE\n" at *pos into val (at most cap-1 chars). */
static bool field(const char *d, size_t n, size_t *pos, const char *key, char *val, size_t cap) {
    size_t k = strlen(key);
    if (*pos + k + 1 > n || memcmp(d + *pos, key, k) != 0 || d[*pos + k] != ' ') return false;
    size_t i = *pos + k + 1, j = 0;
    while (i < n && d[i] != '\n' && j + 1 < cap) val[j++] = d[i++];
    if (i >= n || d[i] != '\n' || j == 0) return false;
    val[j] = 0;
    *pos = i + 1;
    return true;
}

static bool count(const char *s, size_t *out) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || *end) return false;
    *out = (size_t)v;
    return true;
}

bool cuda_image_parse(const void *data, size_t n, CudaImage *img, char *err, size_t errcap) {
    const char *d = data;
    size_t pos = strlen(IMAGE_MAGIC), v;
    char val[32];
    memset(img, 0, sizeof *img);
    if (!d || n < pos || memcmp(d, IMAGE_MAGIC, pos) != 0)
        return bad(err, errcap, "bad magic (not an igrc CUDA image, or another version)");
    if (!field(d, n, &pos, "arch", img->arch, sizeof img->arch))
        return bad(err, errcap, "missing 'arch' line");
    if (!field(d, n, &pos, "tf32", val, sizeof val) || (strcmp(val, "0") && strcmp(val, "1")))
        return bad(err, errcap, "missing or bad 'tf32' line");
    img->opt.tf32 = val[0] == '1';
    if (!field(d, n, &pos, "kernels", val, sizeof val) || !count(val, &v) || v > INT32_MAX)
        return bad(err, errcap, "missing or bad 'kernels' line");
    img->nkernels = (int)v;
    if (!field(d, n, &pos, "ptx", val, sizeof val) || !count(val, &v) || v > n - pos)
        return bad(err, errcap, "missing or bad 'ptx' size (image of %zu bytes)", n);
    img->ptx = v ? d + pos : NULL;
    img->ptx_bytes = v;
    if (v && d[pos + v - 1] != 0) return bad(err, errcap, "PTX is not NUL-terminated");
    pos += v;
    if (pos >= n || d[pos] != '\n') return bad(err, errcap, "no separator after the PTX");
    pos++;
    if (!field(d, n, &pos, "cubin", val, sizeof val) || !count(val, &v) || v != n - pos)
        return bad(err, errcap, "missing or bad 'cubin' size (image truncated?)");
    img->cubin = v ? d + pos : NULL;
    img->cubin_bytes = v;
    if (!img->ptx && !img->cubin) return bad(err, errcap, "neither PTX nor CUBIN present");
    return true;
}
