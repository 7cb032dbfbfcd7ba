/* safetensors reader and writer; see safetensors.h for the format.
 *
 * Reading validates the whole header (types, sizes, bounds, exact coverage
 * of the data section without overlaps or holes,
 * duplicates) before allocating any tensor data, so a hostile header cannot
 * make us allocate more than the file actually holds.
 */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64

#include "runtime/io/safetensors.h"
#include "base/rt_error.h"
#include "runtime/io/outfile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian and is copied as is: needs a little-endian host"
#endif

/* The reference implementation's limit; larger means a corrupt or foreign file. */
#define ST_MAX_HEADER 100000000u
/* Integers above 2^53 do not survive cJSON's double representation exactly. */
#define ST_MAX_JSON_INT 9007199254740992.0
#define ST_METADATA_KEY "__metadata__"

static const struct {
    const char *name;
    size_t size;
} DTYPES[] = {
    [ST_F32] = {"F32", 4}, [ST_F64] = {"F64", 8}, [ST_I32] = {"I32", 4},
    [ST_I64] = {"I64", 8}, [ST_U8] = {"U8", 1},   [ST_BOOL] = {"BOOL", 1},
    [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},
};
#define ST_NDTYPES (sizeof DTYPES / sizeof DTYPES[0])

static bool dtype_valid(StDtype t) { return (unsigned)t < ST_NDTYPES; }

size_t st_dtype_size(StDtype t) { return dtype_valid(t) ? DTYPES[t].size : 0; }

const char *st_dtype_name(StDtype t) { return dtype_valid(t) ? DTYPES[t].name : "?"; }

/* ---- error reporting ---- */

typedef struct {
    const char *label; /* path, or the caller's label for a memory image */
    char *err;
    size_t errcap;
} Ctx;

__attribute__((format(printf, 2, 3))) static bool fail(const Ctx *c, const char *fmt, ...) {
    if (!c->err || c->errcap == 0) return false;
    int k = snprintf(c->err, c->errcap, "%s: ", c->label);
    if (k >= 0 && (size_t)k < c->errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + k, c->errcap - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* Names come from the file: quote them, cut long ones and replace control
 * bytes so that a message stays one readable line. */
typedef struct {
    char s[72];
} Quoted;

static Quoted quote(const char *name) {
    Quoted q;
    size_t j = 0, i = 0;
    q.s[j++] = '\'';
    for (; name && name[i] && i < 60; i++) {
        unsigned char ch = (unsigned char)name[i];
        q.s[j++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    if (name && name[i]) j += (size_t)snprintf(q.s + j, sizeof q.s - j, "...");
    q.s[j++] = '\'';
    q.s[j] = '\0';
    return q;
}

typedef struct {
    char s[ST_MAX_RANK * 22 + 3];
} ShapeStr;

static ShapeStr shape_str(const int64_t *shape, int rank) {
    ShapeStr r;
    size_t j = (size_t)snprintf(r.s, sizeof r.s, "[");
    for (int i = 0; i < rank; i++)
        j += (size_t)snprintf(r.s + j, sizeof r.s - j, "%s%" PRId64, i ? ", " : "", shape[i]);
    snprintf(r.s + j, sizeof r.s - j, "]");
    return r;
}

/* ---- small helpers ---- */

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static uint64_t load_le64(const unsigned char b[8]) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static void store_le64(unsigned char b[8], uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts names and fails, naming it, if one occurs twice. Sorting rather than
 * comparing pairs, since a hostile header may hold millions of keys. */
static bool check_sorted_unique(const Ctx *c, const char **names, size_t n, const char *what) {
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            return fail(c, "duplicate %s %s", what, quote(names[i]).s);
    return true;
}

static bool check_unique_names(const Ctx *c, const StTensor *ts, int n) {
    if (n < 2) return true;
    const char **names = malloc((size_t)n * sizeof *names);
    if (!names) return fail(c, "out of memory");
    for (int i = 0; i < n; i++) names[i] = ts[i].name;
    bool ok = check_sorted_unique(c, names, (size_t)n, "tensor name");
    free(names);
    return ok;
}

static bool check_unique_meta(const Ctx *c, const StMeta *meta, int n) {
    if (n < 2) return true;
    const char **keys = malloc((size_t)n * sizeof *keys);
    if (!keys) return fail(c, "out of memory");
    for (int i = 0; i < n; i++) keys[i] = meta[i].key;
    bool ok = check_sorted_unique(c, keys, (size_t)n, ST_METADATA_KEY " key");
    free(keys);
    return ok;
}

/* Byte size of a tensor with this dtype and shape; false on uint64 overflow.
 * A zero dimension makes the size 0 whatever the others are. */
static bool byte_size(StDtype dt, const int64_t *shape, int rank, uint64_t *out) {
    for (int i = 0; i < rank; i++)
        if (shape[i] == 0) {
            *out = 0;
            return true;
        }
    uint64_t n = st_dtype_size(dt);
    for (int i = 0; i < rank; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (n > UINT64_MAX / d) return false;
        n *= d;
    }
    *out = n;
    return true;
}

/* ---- reading: the header ---- */

typedef struct {
    uint64_t begin, end;
    int idx; /* tensor index in file order */
} Span;

static int cmp_span(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static bool json_u64(const cJSON *j, uint64_t *v) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_JSON_INT)) return false;
    *v = (uint64_t)d;
    return (double)*v == d;
}

static bool parse_dtype(const Ctx *c, const char *name, const cJSON *e, StDtype *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(j) || !j->valuestring)
        return fail(c, "tensor %s: missing or non-string \"dtype\"", quote(name).s);
    for (size_t t = 0; t < ST_NDTYPES; t++)
        if (strcmp(j->valuestring, DTYPES[t].name) == 0) {
            *out = (StDtype)t;
            return true;
        }
    return fail(c,
                "tensor %s: unsupported dtype %s (supported: F32, F64, F16, BF16, I32, I64, U8, "
                "BOOL)",
                quote(name).s, quote(j->valuestring).s);
}

static bool parse_shape(const Ctx *c, const char *name, const cJSON *e, StTensor *t) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(j)) return fail(c, "tensor %s: missing or non-array \"shape\"", quote(name).s);
    int rank = cJSON_GetArraySize(j);
    if (rank > ST_MAX_RANK)
        return fail(c, "tensor %s: shape has rank %d, more than %d", quote(name).s, rank, ST_MAX_RANK);
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, j) {
        uint64_t v;
        if (!json_u64(d, &v))
            return fail(c, "tensor %s: shape[%d] is not a non-negative integer", quote(name).s, i);
        t->shape[i++] = (int64_t)v;
    }
    t->rank = rank;
    return true;
}

static bool parse_offsets(const Ctx *c, const char *name, const cJSON *e, Span *s) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != 2 || !json_u64(j->child, &s->begin) ||
        !json_u64(j->child->next, &s->end))
        return fail(c, "tensor %s: \"data_offsets\" must be two non-negative integers [begin, end]",
                    quote(name).s);
    if (s->begin > s->end)
        return fail(c, "tensor %s: data_offsets [%" PRIu64 ", %" PRIu64 "] have begin > end",
                    quote(name).s, s->begin, s->end);
    return true;
}

static bool check_extent(const Ctx *c, const StTensor *t, const Span *s, uint64_t data_len) {
    uint64_t n;
    if (!byte_size(t->dtype, t->shape, t->rank, &n))
        return fail(c, "tensor %s: shape %s is too large (byte size overflows 64 bits)",
                    quote(t->name).s, shape_str(t->shape, t->rank).s);
    if (s->end - s->begin != n)
        return fail(c,
                    "tensor %s: size mismatch: %s %s needs %" PRIu64
                    " bytes but data_offsets [%" PRIu64 ", %" PRIu64 "] span %" PRIu64,
                    quote(t->name).s, st_dtype_name(t->dtype), shape_str(t->shape, t->rank).s, n,
                    s->begin, s->end, s->end - s->begin);
    if (s->end > data_len)
        return fail(c,
                    "tensor %s: data_offsets [%" PRIu64 ", %" PRIu64
                    "] extend beyond the data section (%" PRIu64 " bytes; file truncated?)",
                    quote(t->name).s, s->begin, s->end, data_len);
#if SIZE_MAX < UINT64_MAX
    if (n > SIZE_MAX) return fail(c, "tensor %s: too large for this host", quote(t->name).s);
#endif
    return true;
}

static bool parse_entry(const Ctx *c, const cJSON *e, StTensor *t, Span *s, uint64_t data_len) {
    if (!cJSON_IsObject(e)) return fail(c, "tensor %s: entry is not a JSON object", quote(e->string).s);
    t->name = dup_str(e->string);
    if (!t->name) return fail(c, "out of memory");
    return parse_dtype(c, t->name, e, &t->dtype) && parse_shape(c, t->name, e, t) &&
           parse_offsets(c, t->name, e, s) && check_extent(c, t, s, data_len);
}

/* __metadata__ must map strings to strings; null counts as absent. */
static bool parse_meta(const Ctx *c, const cJSON *m, StFile *out) {
    if (cJSON_IsNull(m)) return true;
    if (!cJSON_IsObject(m)) return fail(c, ST_METADATA_KEY " is not a JSON object");
    int n = cJSON_GetArraySize(m);
    out->meta = calloc(n ? (size_t)n : 1, sizeof *out->meta);
    if (!out->meta) return fail(c, "out of memory");
    out->nmeta = n;
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, m) {
        if (!cJSON_IsString(v) || !v->valuestring)
            return fail(c, ST_METADATA_KEY " key %s: value is not a string", quote(v->string).s);
        out->meta[i].key = dup_str(v->string);
        out->meta[i].value = dup_str(v->valuestring);
        if (!out->meta[i].key || !out->meta[i].value) return fail(c, "out of memory");
        i++;
    }
    return check_unique_meta(c, out->meta, out->nmeta);
}

/* Sorts spans by offset and checks the format's own rule: the tensors'
 * byte ranges tile the data section exactly, from 0 to its end, without
 * overlaps or holes (a header a few bytes short, for one, leaves the data
 * shifted against its offsets: a hole at the end). An empty tensor sits at
 * the position it names, occupying nothing. */
static bool check_coverage(const Ctx *c, const StFile *f, Span *spans, uint64_t data_len) {
    qsort(spans, (size_t)f->n, sizeof *spans, cmp_span);
    const Span *prev = NULL;
    uint64_t pos = 0;
    for (int i = 0; i < f->n; i++) {
        const Span *s = &spans[i];
        if (s->begin < pos)
            return fail(c,
                        "tensor %s: data_offsets [%" PRIu64 ", %" PRIu64
                        "] overlap tensor %s [%" PRIu64 ", %" PRIu64 "]",
                        quote(f->tensors[s->idx].name).s, s->begin, s->end,
                        quote(f->tensors[prev->idx].name).s, prev->begin, prev->end);
        if (s->begin > pos)
            return fail(c,
                        "tensor %s: data_offsets [%" PRIu64 ", %" PRIu64 "] leave bytes [%" PRIu64
                        ", %" PRIu64 ") of the data section unused (the tensors must cover it "
                        "exactly; header length wrong?)",
                        quote(f->tensors[s->idx].name).s, s->begin, s->end, pos, s->begin);
        if (s->end > s->begin) prev = s;
        pos = s->end;
    }
    if (pos != data_len)
        return fail(c,
                    "the tensors cover %" PRIu64 " of the data section's %" PRIu64
                    " bytes (the tensors must cover it exactly; header length wrong or trailing "
                    "bytes?)",
                    pos, data_len);
    return true;
}

static int count_tensors(const cJSON *root) {
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) n += strcmp(e->string, ST_METADATA_KEY) != 0;
    return n;
}

/* Fills out's names, dtypes and shapes from the header and returns the
 * tensors' byte ranges in *spans_out (caller frees), sorted by offset. */
static bool parse_header(const Ctx *c, const cJSON *root, uint64_t data_len, StFile *out,
                         Span **spans_out) {
    int n = count_tensors(root);
    out->tensors = calloc(n ? (size_t)n : 1, sizeof *out->tensors);
    Span *spans = calloc(n ? (size_t)n : 1, sizeof *spans);
    *spans_out = spans;
    if (!out->tensors || !spans) return fail(c, "out of memory");
    out->n = n;
    int i = 0;
    bool seen_meta = false;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (strcmp(e->string, ST_METADATA_KEY) == 0) {
            if (seen_meta) return fail(c, "duplicate key " ST_METADATA_KEY);
            seen_meta = true;
            if (!parse_meta(c, e, out)) return false;
            continue;
        }
        spans[i].idx = i;
        if (!parse_entry(c, e, &out->tensors[i], &spans[i], data_len)) return false;
        i++;
    }
    return check_unique_names(c, out->tensors, out->n) && check_coverage(c, out, spans, data_len);
}

/* ---- reading: the data ---- */

/* Where the file image lives: in memory, or behind a file descriptor. */
typedef struct {
    const unsigned char *mem; /* NULL: read from fd */
    int fd;
    uint64_t data_start; /* 8 + header length */
    uint64_t data_len;
} Src;

/* pread until n bytes arrive; returns 0, -1 at end of file, or an errno. */
static int pread_full(int fd, void *buf, size_t n, uint64_t off) {
    unsigned char *p = buf;
    while (n > 0) {
        size_t chunk = n < ((size_t)1 << 30) ? n : ((size_t)1 << 30);
        ssize_t r = pread(fd, p, chunk, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errno ? errno : EIO;
        if (r == 0) return -1;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static bool read_or_fail(const Ctx *c, int fd, void *buf, size_t n, uint64_t off,
                         const char *what) {
    int rc = pread_full(fd, buf, n, off);
    if (rc == -1) return fail(c, "truncated: file ended while reading %s", what);
    if (rc != 0) return fail(c, "read error in %s: %s", what, strerror(rc));
    return true;
}

static bool load_tensor(const Ctx *c, const Src *src, StTensor *t, uint64_t begin) {
    t->data = malloc(t->nbytes ? t->nbytes : 1);
    if (!t->data)
        return fail(c, "tensor %s: out of memory for %zu bytes", quote(t->name).s, t->nbytes);
    if (t->nbytes == 0) return true;
    if (src->mem) {
        memcpy(t->data, src->mem + src->data_start + begin, t->nbytes);
        return true;
    }
    char what[96];
    snprintf(what, sizeof what, "tensor %s", quote(t->name).s);
    return read_or_fail(c, src->fd, t->data, t->nbytes, src->data_start + begin, what);
}

/* Spans are sorted by offset, so a file is read front to back. */
static bool load_data(const Ctx *c, const Src *src, const Span *spans, StFile *out) {
    for (int i = 0; i < out->n; i++) {
        StTensor *t = &out->tensors[spans[i].idx];
        t->nbytes = (size_t)(spans[i].end - spans[i].begin);
        if (!load_tensor(c, src, t, spans[i].begin)) return false;
    }
    return true;
}

static bool is_json_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }

static bool parse_image(const Ctx *c, const char *hdr, size_t hlen, const Src *src, StFile *out) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, hlen, &end, 0);
    if (!root)
        return fail(c, "header is not valid JSON (error at header byte %td)", end ? end - hdr : 0);
    bool ok = true;
    for (const char *p = end; ok && p < hdr + hlen; p++)
        if (!is_json_space(*p))
            ok = fail(c, "header has trailing bytes after the JSON object (at header byte %td)",
                      p - hdr);
    if (ok && !cJSON_IsObject(root)) ok = fail(c, "header is not a JSON object");
    Span *spans = NULL;
    ok = ok && parse_header(c, root, src->data_len, out, &spans) && load_data(c, src, spans, out);
    free(spans);
    cJSON_Delete(root);
    if (!ok) st_free(out);
    return ok;
}

/* Checks the 8-byte length prefix against the image size. */
static bool check_prefix(const Ctx *c, const unsigned char prefix[8], uint64_t total,
                         uint64_t *hlen) {
    if (total < 8)
        return fail(c, "truncated: %" PRIu64 " bytes, shorter than the 8-byte header length", total);
    uint64_t n = load_le64(prefix);
    if (n > ST_MAX_HEADER)
        return fail(c, "header length %" PRIu64 " is absurd (more than 100 MB): not a safetensors file?",
                    n);
    if (n > total - 8)
        return fail(c,
                    "truncated: header length %" PRIu64 " extends beyond the end of the file (%" PRIu64
                    " bytes)",
                    n, total);
    *hlen = n;
    return true;
}

bool st_read_mem(const void *buf, size_t len, const char *label, StFile *out, char *err,
                 size_t errcap) {
    Ctx c = {label ? label : "<memory>", err, errcap};
    memset(out, 0, sizeof *out);
    if (!buf && len > 0) return fail(&c, "NULL buffer");
    const unsigned char *b = buf;
    uint64_t hlen = 0;
    if (!check_prefix(&c, b, len, &hlen)) return false;
    Src src = {b, -1, 8 + hlen, len - 8 - hlen};
    return parse_image(&c, (const char *)b + 8, (size_t)hlen, &src, out);
}

static bool read_fd(const Ctx *c, int fd, StFile *out) {
    struct stat sb;
    if (fstat(fd, &sb) != 0) return fail(c, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode)) return fail(c, "not a regular file");
    uint64_t total = (uint64_t)sb.st_size, hlen = 0;
    unsigned char prefix[8] = {0};
    if (total >= 8 && !read_or_fail(c, fd, prefix, 8, 0, "the header length")) return false;
    if (!check_prefix(c, prefix, total, &hlen)) return false;
    char *hdr = malloc(hlen ? (size_t)hlen : 1);
    if (!hdr) return fail(c, "out of memory for the %" PRIu64 "-byte header", hlen);
    bool ok = read_or_fail(c, fd, hdr, (size_t)hlen, 8, "the header");
    Src src = {NULL, fd, 8 + hlen, total - 8 - hlen};
    ok = ok && parse_image(c, hdr, (size_t)hlen, &src, out);
    free(hdr);
    return ok;
}

bool st_read(const char *path, StFile *out, char *err, size_t errcap) {
    Ctx c = {path ? path : "<null path>", err, errcap};
    memset(out, 0, sizeof *out);
    if (!path) return fail(&c, "no path given");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(&c, "cannot open: %s", strerror(errno));
    bool ok = read_fd(&c, fd, out);
    close(fd);
    return ok;
}

/* ---- writing ---- */

static bool check_tensor(const Ctx *c, const StTensor *t) {
    if (!t->name) return fail(c, "tensor with a NULL name");
    if (strcmp(t->name, ST_METADATA_KEY) == 0)
        return fail(c, "tensor %s: name is reserved for metadata", quote(t->name).s);
    if (!dtype_valid(t->dtype)) return fail(c, "tensor %s: invalid dtype %d", quote(t->name).s, (int)t->dtype);
    if (t->rank < 0 || t->rank > ST_MAX_RANK)
        return fail(c, "tensor %s: rank %d outside 0..%d", quote(t->name).s, t->rank, ST_MAX_RANK);
    for (int i = 0; i < t->rank; i++)
        if (t->shape[i] < 0 || (double)t->shape[i] > ST_MAX_JSON_INT)
            return fail(c, "tensor %s: shape[%d] = %" PRId64 " is negative or too large",
                        quote(t->name).s, i, t->shape[i]);
    uint64_t n;
    if (!byte_size(t->dtype, t->shape, t->rank, &n) || n != t->nbytes)
        return fail(c, "tensor %s: nbytes %zu does not match %s %s", quote(t->name).s, t->nbytes,
                    st_dtype_name(t->dtype), shape_str(t->shape, t->rank).s);
    if (t->nbytes > 0 && !t->data) return fail(c, "tensor %s: NULL data", quote(t->name).s);
    return true;
}

static bool check_write_args(const Ctx *c, const StTensor *ts, int n, const StMeta *meta,
                             int nmeta) {
    if (n < 0 || nmeta < 0 || (n > 0 && !ts) || (nmeta > 0 && !meta))
        return fail(c, "invalid tensor or metadata arrays");
    for (int i = 0; i < n; i++)
        if (!check_tensor(c, &ts[i])) return false;
    for (int i = 0; i < nmeta; i++)
        if (!meta[i].key || !meta[i].value)
            return fail(c, ST_METADATA_KEY " entry %d has a NULL key or value", i);
    return check_unique_names(c, ts, n) && check_unique_meta(c, meta, nmeta);
}

/* Numbers go in as raw text: cJSON would print large integers via %g. */
static bool add_u64(cJSON *arr, uint64_t v) {
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_AddItemToArray(arr, cJSON_CreateRaw(buf));
}

static bool add_tensor_entry(cJSON *root, const StTensor *t, uint64_t begin) {
    cJSON *e = cJSON_AddObjectToObject(root, t->name);
    if (!e || !cJSON_AddStringToObject(e, "dtype", st_dtype_name(t->dtype))) return false;
    cJSON *shape = cJSON_AddArrayToObject(e, "shape");
    cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
    if (!shape || !offs) return false;
    for (int i = 0; i < t->rank; i++)
        if (!add_u64(shape, (uint64_t)t->shape[i])) return false;
    return add_u64(offs, begin) && add_u64(offs, begin + t->nbytes);
}

static bool add_meta(cJSON *root, const StMeta *meta, int nmeta) {
    if (nmeta == 0) return true;
    cJSON *m = cJSON_AddObjectToObject(root, ST_METADATA_KEY);
    if (!m) return false;
    for (int i = 0; i < nmeta; i++)
        if (!cJSON_AddStringToObject(m, meta[i].key, meta[i].value)) return false;
    return true;
}

/* The JSON header padded with spaces to a multiple of 8 bytes, so the data
 * section starts 8-aligned (as the reference implementation does). */
static char *build_header(const Ctx *c, const StTensor *ts, int n, const StMeta *meta,
                          int nmeta, size_t *len) {
    cJSON *root = cJSON_CreateObject();
    bool ok = root && add_meta(root, meta, nmeta);
    uint64_t off = 0;
    for (int i = 0; ok && i < n; i++) {
        ok = add_tensor_entry(root, &ts[i], off);
        off += ts[i].nbytes;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    size_t jl = json ? strlen(json) : 0, padded = (jl + 7) / 8 * 8;
    char *hdr = json ? malloc(padded) : NULL;
    if (hdr) {
        memcpy(hdr, json, jl);
        memset(hdr + jl, ' ', padded - jl);
        *len = padded;
    } else {
        fail(c, "out of memory building the header");
    }
    cJSON_free(json);
    return hdr;
}

static bool write_full(int fd, const void *buf, size_t n) {
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n < ((size_t)1 << 30) ? n : ((size_t)1 << 30));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool write_contents(const Ctx *c, int fd, const char *tmp, const char *hdr, size_t hlen,
                           const StTensor *ts, int n) {
    unsigned char prefix[8];
    store_le64(prefix, hlen);
    if (!write_full(fd, prefix, 8) || !write_full(fd, hdr, hlen))
        return fail(c, "cannot write %s: %s", tmp, strerror(errno));
    for (int i = 0; i < n; i++)
        if (!write_full(fd, ts[i].data, ts[i].nbytes))
            return fail(c, "cannot write tensor %s to %s: %s", quote(ts[i].name).s, tmp,
                        strerror(errno));
    if (fsync(fd) != 0) return fail(c, "cannot fsync %s: %s", tmp, strerror(errno));
    return true;
}

/* Makes the rename durable. Best effort: if it fails, a crash can at worst
 * undo the rename, which still leaves a whole file (old or new) at path. */
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 1;
    char *dir = malloc(n + 1);
    if (!dir) return;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

static bool write_atomic(const Ctx *c, const char *path, const char *hdr, size_t hlen,
                         const StTensor *ts, int n) {
    size_t cap = strlen(path) + 32;
    char *tmp = malloc(cap);
    if (!tmp) return fail(c, "out of memory");
    snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        fail(c, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return false;
    }
    bool ok = write_contents(c, fd, tmp, hdr, hlen, ts, n);
    if (close(fd) != 0 && ok) ok = fail(c, "cannot close %s: %s", tmp, strerror(errno));
    if (ok && rename(tmp, path) != 0)
        ok = fail(c, "cannot rename %s into place: %s", tmp, strerror(errno));
    if (ok)
        sync_parent_dir(path);
    else
        unlink(tmp);
    free(tmp);
    return ok;
}

bool st_write(const char *path, const StTensor *ts, int n, const StMeta *meta, int nmeta,
              char *err, size_t errcap) {
    Ctx c = {path ? path : "<null path>", err, errcap};
    if (!path) return fail(&c, "no path given");
    if (!check_write_args(&c, ts, n, meta, nmeta)) return false;
    char target[PATH_MAX];
    if (!outfile_target(path, target, sizeof target, err, errcap)) return false;
    size_t hlen = 0;
    char *hdr = build_header(&c, ts, n, meta, nmeta, &hlen);
    if (!hdr) return false;
    bool ok = write_atomic(&c, target, hdr, hlen, ts, n);
    free(hdr);
    return ok;
}

/* ---- float conversion ---- */

bool st_dtype_is_float(StDtype t) {
    return t == ST_F32 || t == ST_F64 || t == ST_F16 || t == ST_BF16;
}

static float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float st_bf16_to_f32(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

/* IEEE binary16: 1 sign, 5 exponent (bias 15), 10 fraction bits. */
float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = h >> 10 & 0x1f, frac = h & 0x3ffu;
    if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | frac << 13); /* inf, NaN */
    if (exp == 0) {
        /* zero or subnormal: frac * 2^-24, exact in float */
        float v = (float)frac * 0x1p-24f;
        return sign ? -v : v;
    }
    return f32_from_bits(sign | (exp + 112) << 23 | frac << 13);
}

static double float_elem(const StTensor *t, size_t i) {
    const void *d = t->data;
    switch (t->dtype) {
    case ST_F16: return st_f16_to_f32(((const uint16_t *)d)[i]);
    case ST_BF16: return st_bf16_to_f32(((const uint16_t *)d)[i]);
    case ST_F32: return ((const float *)d)[i];
    case ST_F64: return ((const double *)d)[i];
    case ST_I32: case ST_I64: case ST_U8: case ST_BOOL: break; /* callers pass floats only */
    }
    return NAN;
}

bool st_convert_float(const StTensor *src, StDtype to, void *dst, char *err, size_t errcap) {
    if (!st_dtype_is_float(src->dtype) || (to != ST_F32 && to != ST_F64))
        return rt_fail(err, errcap, "tensor %s: cannot convert %s to %s", quote(src->name).s,
                       st_dtype_name(src->dtype), st_dtype_name(to));
    size_t n = src->nbytes / st_dtype_size(src->dtype);
    if (src->dtype == to) {
        if (n) memcpy(dst, src->data, src->nbytes);
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        double v = float_elem(src, i);
        if (to == ST_F64) {
            ((double *)dst)[i] = v;
            continue;
        }
        /* Rounds to nearest; beyond FLT_MAX by at least half an ulp it would be inf. */
        float f = (float)v;
        if (isinf(f) && !isinf(v))
            return rt_fail(err, errcap, "tensor %s: element %zu = %g is beyond the range of F32",
                           quote(src->name).s, i, v);
        ((float *)dst)[i] = f;
    }
    return true;
}

/* ---- lookup and cleanup ---- */

const StTensor *st_find(const StFile *f, const char *name) {
    if (!f || !name) return NULL;
    for (int i = 0; i < f->n; i++)
        if (f->tensors[i].name && strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

void st_free(StFile *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) {
        free(f->tensors[i].name);
        free(f->tensors[i].data);
    }
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->tensors);
    free(f->meta);
    memset(f, 0, sizeof *f);
}
