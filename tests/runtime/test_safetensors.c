/* safetensors: round trips, a hand-built file, and every class of bad input. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/common/scratch.h"
#include "runtime/io/safetensors.h"

/* ---- a scratch directory per test (tests/common/scratch.c) ---- */

TestSuite(safetensors, .init = scratch_setup, .fini = scratch_teardown);


static int dir_entries(void) {
    DIR *d = opendir(g_dir);
    cr_assert(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void write_file(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* A file image: little-endian header length, header, then data (datalen
 * bytes from data, or zeros when data is NULL). */
static unsigned char *image(const char *json, const void *data, size_t datalen, size_t *len) {
    size_t hl = strlen(json);
    *len = 8 + hl + datalen;
    unsigned char *b = calloc(1, *len);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, json, hl);
    if (data) memcpy(b + 8 + hl, data, datalen);
    return b;
}

static bool is_zeroed(const StFile *f) {
    return !f->tensors && !f->n && !f->meta && !f->nmeta;
}

/* ---- round trips ---- */

static StTensor mk(const char *name, StDtype dt, int rank, const int64_t *shape, const void *data,
                   size_t nbytes) {
    StTensor t = {.name = (char *)name, .dtype = dt, .rank = rank, .data = (void *)data,
                  .nbytes = nbytes};
    for (int i = 0; i < rank && i < ST_MAX_RANK; i++) t.shape[i] = shape[i];
    return t;
}

static void expect_same_tensor(const StTensor *got, const StTensor *want) {
    cr_expect_str_eq(got->name, want->name);
    cr_expect_eq(got->dtype, want->dtype, "%s dtype", want->name);
    cr_expect_eq(got->rank, want->rank, "%s rank", want->name);
    for (int i = 0; i < want->rank; i++) cr_expect_eq(got->shape[i], want->shape[i]);
    cr_expect_eq(got->nbytes, want->nbytes, "%s nbytes", want->name);
    cr_expect_not_null(got->data, "%s data", want->name);
    if (want->nbytes) cr_expect_eq(memcmp(got->data, want->data, want->nbytes), 0, "%s bytes", want->name);
}

Test(safetensors, round_trip_dtypes_and_shapes) {
    static const float f32[6] = {1, -2.5f, 3, 4e-20f, 5, 6};
    static const double f64[4] = {0.1, -1e300, 2, 3};
    static const int32_t i32[8] = {0, 1, -1, INT32_MAX, INT32_MIN, 5, 6, 7};
    static const int64_t i64[3] = {INT64_MIN, -1, INT64_MAX};
    static const uint8_t u8[5] = {0, 1, 127, 128, 255};
    static const uint8_t b8[4] = {1, 0, 0, 1};
    static const float scalar = 3.25f;
    const StTensor ts[] = {
        mk("zeta.weight", ST_F32, 2, (int64_t[]){2, 3}, f32, sizeof f32),
        mk("alpha", ST_F64, 1, (int64_t[]){4}, f64, sizeof f64),
        mk("cube", ST_I32, 3, (int64_t[]){2, 2, 2}, i32, sizeof i32),
        mk("empty", ST_F32, 2, (int64_t[]){0, 3}, NULL, 0),
        mk("longs", ST_I64, 1, (int64_t[]){3}, i64, sizeof i64),
        mk("bytes", ST_U8, 1, (int64_t[]){5}, u8, sizeof u8),
        mk("mask", ST_BOOL, 2, (int64_t[]){2, 2}, b8, sizeof b8),
        mk("scale", ST_F32, 0, NULL, &scalar, sizeof scalar),
    };
    const int n = (int)(sizeof ts / sizeof ts[0]);
    const char *path = in_dir("m.safetensors");
    char err[256] = "";
    cr_assert(st_write(path, ts, n, NULL, 0, err, sizeof err), "%s", err);
    cr_expect_eq(dir_entries(), 1, "temp file left behind");

    StFile f;
    cr_assert(st_read(path, &f, err, sizeof err), "%s", err);
    cr_assert_eq(f.n, n);
    cr_expect_eq(f.nmeta, 0);
    for (int i = 0; i < n; i++) expect_same_tensor(&f.tensors[i], &ts[i]);
    cr_expect_eq(st_find(&f, "scale"), &f.tensors[7]);
    cr_expect_null(st_find(&f, "nope"));
    st_free(&f);
    cr_expect(is_zeroed(&f));

    /* Header padded to 8 so the data section is aligned; no metadata key. */
    size_t len;
    unsigned char *raw = read_file(path, &len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | raw[i];
    cr_expect_eq(hl % 8, 0);
    cr_expect_eq(len, 8 + hl + sizeof f32 + sizeof f64 + sizeof i32 + sizeof i64 + sizeof u8 +
                          sizeof b8 + sizeof scalar);
    cr_expect_null(strstr((char *)raw + 8, "__metadata__"));
    /* Tensors laid out in the given order. */
    cr_expect_eq(memcmp(raw + 8 + hl, f32, sizeof f32), 0);
    cr_expect_eq(memcmp(raw + 8 + hl + sizeof f32, f64, sizeof f64), 0);
    free(raw);
}

Test(safetensors, metadata_round_trip) {
    const StMeta meta[] = {{"format", "pt"}, {"note", "quote \" backslash \\ newline \n \xc3\xa9"},
                           {"empty", ""}};
    static const int32_t v[2] = {7, 8};
    const StTensor t = mk("w \"odd\" name", ST_I32, 1, (int64_t[]){2}, v, sizeof v);
    const char *path = in_dir("meta.safetensors");
    char err[256] = "";
    cr_assert(st_write(path, &t, 1, meta, 3, err, sizeof err), "%s", err);
    StFile f;
    cr_assert(st_read(path, &f, err, sizeof err), "%s", err);
    cr_assert_eq(f.nmeta, 3);
    for (int i = 0; i < 3; i++) {
        cr_expect_str_eq(f.meta[i].key, meta[i].key);
        cr_expect_str_eq(f.meta[i].value, meta[i].value);
    }
    cr_assert_eq(f.n, 1);
    expect_same_tensor(&f.tensors[0], &t);
    st_free(&f);
}

Test(safetensors, overwrite_replaces_atomically) {
    static const uint8_t a[1] = {1}, b[2] = {2, 3};
    const char *path = in_dir("x.safetensors");
    char err[256] = "";
    StTensor t = mk("a", ST_U8, 1, (int64_t[]){1}, a, 1);
    cr_assert(st_write(path, &t, 1, NULL, 0, err, sizeof err), "%s", err);
    t = mk("b", ST_U8, 1, (int64_t[]){2}, b, 2);
    cr_assert(st_write(path, &t, 1, NULL, 0, err, sizeof err), "%s", err);
    StFile f;
    cr_assert(st_read(path, &f, err, sizeof err), "%s", err);
    cr_assert_eq(f.n, 1);
    expect_same_tensor(&f.tensors[0], &t);
    st_free(&f);
    cr_expect_eq(dir_entries(), 1);
}

/* ---- a file built byte by byte ---- */

static const char HAND_JSON[] =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"b\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[8,24]},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
    "\"s\":{\"dtype\":\"BOOL\",\"shape\":[],\"data_offsets\":[24,25]}}   ";

static void check_hand_file(const StFile *f) {
    cr_assert_eq(f->n, 3);
    cr_expect_str_eq(f->tensors[0].name, "b"); /* file order, not offset order */
    cr_expect_str_eq(f->tensors[1].name, "a");
    cr_expect_str_eq(f->tensors[2].name, "s");
    const StTensor *b = st_find(f, "b"), *a = st_find(f, "a"), *s = st_find(f, "s");
    cr_assert(a && b && s);
    cr_expect_eq(b->dtype, ST_I64);
    cr_expect_eq(b->rank, 1);
    cr_expect_eq(b->shape[0], 2);
    cr_expect_eq(((const int64_t *)b->data)[0], 7);
    cr_expect_eq(((const int64_t *)b->data)[1], -9);
    cr_expect_eq(a->dtype, ST_F32);
    cr_expect_eq(((const float *)a->data)[0], 1.5f);
    cr_expect_eq(((const float *)a->data)[1], -2.0f);
    cr_expect_eq(s->rank, 0);
    cr_expect_eq(s->nbytes, 1);
    cr_expect_eq(*(const uint8_t *)s->data, 1);
    cr_assert_eq(f->nmeta, 1);
    cr_expect_str_eq(f->meta[0].key, "format");
    cr_expect_str_eq(f->meta[0].value, "pt");
}

static unsigned char *hand_image(size_t *len) {
    unsigned char data[25] = {0};
    const float a[2] = {1.5f, -2.0f};
    const int64_t b[2] = {7, -9};
    memcpy(data, a, 8);
    memcpy(data + 8, b, 16);
    data[24] = 1;
    return image(HAND_JSON, data, sizeof data, len);
}

Test(safetensors, hand_built_file) {
    size_t len;
    unsigned char *img = hand_image(&len);
    const char *path = in_dir("hand.safetensors");
    write_file(path, img, len);
    char err[256] = "";
    StFile f;
    cr_assert(st_read(path, &f, err, sizeof err), "%s", err);
    check_hand_file(&f);
    st_free(&f);
    cr_assert(st_read_mem(img, len, "hand", &f, err, sizeof err), "%s", err);
    free(img); /* data must have been copied */
    check_hand_file(&f);
    st_free(&f);
}

Test(safetensors, empty_tensors_accepted_where_they_tile) {
    /* an empty tensor at the position between a and b, another at the end */
    const char *json = "{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"e\":{\"dtype\":\"F64\",\"shape\":[3,0],\"data_offsets\":[4,4]},"
                       "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]},"
                       "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,8]}}";
    size_t len;
    unsigned char *img = image(json, NULL, 8, &len);
    StFile f;
    char err[256] = "";
    cr_assert(st_read_mem(img, len, "tiled", &f, err, sizeof err), "%s", err);
    cr_expect_eq(f.n, 4);
    cr_expect_eq(st_find(&f, "e")->nbytes, 0);
    cr_expect_not_null(st_find(&f, "e")->data);
    st_free(&f);
    free(img);
}

/* Half-precision tensors read as they are (2 bytes each) and widen exactly. */
Test(safetensors, f16_bf16_read_and_convert) {
    static const uint16_t h[3] = {0x3c00, 0xbc00, 0x3555}, bf[2] = {0x3f80, 0xc0a0};
    const StTensor ts[] = {mk("h", ST_F16, 1, (int64_t[]){3}, h, sizeof h),
                           mk("bf", ST_BF16, 2, (int64_t[]){1, 2}, bf, sizeof bf)};
    const char *path = in_dir("half.safetensors");
    char err[256] = "";
    cr_assert(st_write(path, ts, 2, NULL, 0, err, sizeof err), "%s", err);
    StFile f;
    cr_assert(st_read(path, &f, err, sizeof err), "%s", err);
    expect_same_tensor(st_find(&f, "h"), &ts[0]);
    expect_same_tensor(st_find(&f, "bf"), &ts[1]);
    float out[3];
    double out64[2];
    cr_assert(st_convert_float(st_find(&f, "h"), ST_F32, out, err, sizeof err), "%s", err);
    cr_expect(out[0] == 1 && out[1] == -1 && out[2] == 0.333251953125f);
    cr_assert(st_convert_float(st_find(&f, "bf"), ST_F64, out64, err, sizeof err), "%s", err);
    cr_expect(out64[0] == 1 && out64[1] == -5);
    cr_expect(st_dtype_is_float(ST_BF16) && !st_dtype_is_float(ST_I64));
    cr_expect_eq(st_dtype_size(ST_F16), 2);
    cr_expect_str_eq(st_dtype_name(ST_BF16), "BF16");
    StTensor i = mk("i", ST_I32, 1, (int64_t[]){1}, h, 4);
    cr_expect_not(st_convert_float(&i, ST_F32, out, err, sizeof err));
    cr_expect(strstr(err, "'i': cannot convert I32 to F32"), "%s", err);
    st_free(&f);
}

Test(safetensors, free_and_names) {
    StFile f = {0};
    st_free(&f);
    st_free(NULL);
    cr_expect_null(st_find(&f, "x"));
    cr_expect_eq(st_dtype_size(ST_F64), 8);
    cr_expect_eq(st_dtype_size(ST_BOOL), 1);
    cr_expect_str_eq(st_dtype_name(ST_I64), "I64");
    cr_expect_str_eq(st_dtype_name((StDtype)99), "?");
    cr_expect_eq(st_dtype_size((StDtype)99), 0);
}

/* ---- bad input ---- */

/* Reads img and expects failure with a message that starts with the label
 * and contains every word in the NULL-terminated list. */
static void expect_reject_img(const void *img, size_t len, ...) {
    StFile f;
    char err[512] = "";
    cr_assert_not(st_read_mem(img, len, "bad.safetensors", &f, err, sizeof err),
                  "accepted; expected an error");
    cr_expect(is_zeroed(&f));
    cr_expect_eq(strncmp(err, "bad.safetensors: ", 17), 0, "message: %s", err);
    cr_expect_null(strchr(err, '\n'), "message has a newline: %s", err);
    va_list ap;
    va_start(ap, len);
    for (const char *w; (w = va_arg(ap, const char *));)
        cr_expect_not_null(strstr(err, w), "message lacks \"%s\": %s", w, err);
    va_end(ap);
}

#define EXPECT_REJECT_JSON(json, datalen, ...)                       \
    do {                                                             \
        size_t len_;                                                 \
        unsigned char *img_ = image(json, NULL, datalen, &len_);     \
        expect_reject_img(img_, len_, __VA_ARGS__, (const char *)0); \
        free(img_);                                                  \
    } while (0)

static const char ENTRY_W[] = "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

Test(safetensors, reject_short_and_absurd_lengths) {
    expect_reject_img("\x02\0\0", 3, "truncated", "8-byte", (const char *)0);
    expect_reject_img("", 0, "truncated", (const char *)0);
    expect_reject_img(NULL, 0, "truncated", (const char *)0);
    /* header length 100 with only 2 header bytes present */
    expect_reject_img("\x64\0\0\0\0\0\0\0{}", 10, "truncated", "beyond", (const char *)0);
    expect_reject_img("\0\0\0\0\0\0\0\x80{}", 10, "absurd", (const char *)0);
    expect_reject_img("\x01\xe1\xf5\x05\0\0\0\0{}", 10, "absurd", (const char *)0); /* 1e8 + 1 */
}

Test(safetensors, reject_bad_json) {
    EXPECT_REJECT_JSON("", 0, "not valid JSON");
    EXPECT_REJECT_JSON("{\"w\":", 0, "not valid JSON");
    EXPECT_REJECT_JSON("[1,2]", 0, "not a JSON object");
    EXPECT_REJECT_JSON("\"str\"", 0, "not a JSON object");
    EXPECT_REJECT_JSON("{} x", 0, "trailing");
    /* NUL padding is not JSON whitespace. */
    expect_reject_img("\4\0\0\0\0\0\0\0{}\0\0", 12, "trailing", (const char *)0);
}

Test(safetensors, reject_bad_entries) {
    EXPECT_REJECT_JSON("{\"w\":3}", 8, "'w'", "not a JSON object");
    EXPECT_REJECT_JSON("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'w'", "dtype");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'w'",
                       "dtype");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, "'w'",
                       "unsupported dtype 'I16'", "F16, BF16");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 8,
                       "'w'", "F8_E4M3");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "'w'", "shape");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,8]}}", 8, "'w'",
                       "shape");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "'w'",
                       "shape[0]", "non-negative integer");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1.5],\"data_offsets\":[0,8]}}", 8,
                       "'w'", "shape[1]");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
                       "'w'", "shape[0]");
    EXPECT_REJECT_JSON(
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 8, "'w'",
        "rank 9");
}

Test(safetensors, reject_bad_offsets) {
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "'w'", "data_offsets");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "'w'",
                       "data_offsets");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", 9,
                       "'w'", "data_offsets");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "'w'",
                       "data_offsets");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1e300]}}", 8,
                       "'w'", "data_offsets");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, "'w'",
                       "begin > end");
}

Test(safetensors, reject_size_mismatch_and_overflow) {
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 12, "'w'",
                       "size mismatch", "12 bytes");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,4]}}", 8, "'w'",
                       "size mismatch");
    /* 2^32 * 2^32 * 4 overflows uint64; must not wrap to a small size. */
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                       "\"data_offsets\":[0,0]}}",
                       8, "'w'", "too large");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,1],"
                       "\"data_offsets\":[0,0]}}",
                       8, "'w'", "too large");
}

Test(safetensors, reject_beyond_data_section) {
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12,
                       "'w'", "beyond", "truncated");
    EXPECT_REJECT_JSON("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[13,13]}}", 12,
                       "'w'", "beyond");
}

Test(safetensors, reject_overlap) {
    EXPECT_REJECT_JSON("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                       12, "overlap", "'a'", "'b'");
    /* Listed out of offset order, and the overlap is not with the neighbour in file order. */
    EXPECT_REJECT_JSON("{\"c\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[10,12]},"
                       "\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[7,8]}}",
                       12, "overlap", "'a'", "'b'");
    EXPECT_REJECT_JSON("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                       "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
                       4, "overlap");
}

Test(safetensors, reject_duplicates) {
    char json[256];
    snprintf(json, sizeof json, "{%s,%s}", ENTRY_W, ENTRY_W);
    EXPECT_REJECT_JSON(json, 8, "duplicate tensor name 'w'");
    EXPECT_REJECT_JSON("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate", "__metadata__");
}

Test(safetensors, reject_bad_metadata) {
    EXPECT_REJECT_JSON("{\"__metadata__\":[\"a\"]}", 0, "__metadata__", "not a JSON object");
    EXPECT_REJECT_JSON("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__", "'k'", "not a string");
    EXPECT_REJECT_JSON("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, "'k'", "not a string");
    EXPECT_REJECT_JSON("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "duplicate",
                       "__metadata__ key 'k'");
}

Test(safetensors, hostile_names_keep_message_on_one_line) {
    EXPECT_REJECT_JSON("{\"line\\nbreak\":{\"dtype\":\"I16\",\"shape\":[],\"data_offsets\":[0,2]}}",
                       2, "'line?break'", "I16");
    char json[512];
    char name[301];
    memset(name, 'n', 300);
    name[300] = '\0';
    snprintf(json, sizeof json, "{\"%s\":3}", name);
    EXPECT_REJECT_JSON(json, 0, "...'", "not a JSON object");
}

Test(safetensors, reject_truncated_file) {
    static const float v[4] = {1, 2, 3, 4};
    const StTensor t = mk("weights", ST_F32, 1, (int64_t[]){4}, v, sizeof v);
    const char *path = in_dir("t.safetensors");
    char err[256] = "";
    cr_assert(st_write(path, &t, 1, NULL, 0, err, sizeof err), "%s", err);
    size_t len;
    unsigned char *raw = read_file(path, &len);
    free(raw);
    cr_assert_eq(truncate(path, (off_t)len - 4), 0);
    StFile f;
    cr_assert_not(st_read(path, &f, err, sizeof err));
    cr_expect(is_zeroed(&f));
    cr_expect_eq(strncmp(err, path, strlen(path)), 0, "%s", err);
    cr_expect_not_null(strstr(err, "'weights'"), "%s", err);
    cr_expect_not_null(strstr(err, "beyond"), "%s", err);
    cr_assert_eq(truncate(path, 5), 0);
    cr_assert_not(st_read(path, &f, err, sizeof err));
    cr_expect_not_null(strstr(err, "truncated"), "%s", err);
}

Test(safetensors, read_errors_on_paths) {
    StFile f;
    char err[256] = "";
    const char *missing = in_dir("missing.safetensors");
    cr_assert_not(st_read(missing, &f, err, sizeof err));
    cr_expect(is_zeroed(&f));
    cr_expect_eq(strncmp(err, missing, strlen(missing)), 0, "%s", err);
    cr_expect_not_null(strstr(err, "cannot open"), "%s", err);
    cr_assert_not(st_read(g_dir, &f, err, sizeof err));
    cr_expect_not_null(strstr(err, "not a regular file"), "%s", err);
    /* A NULL or zero-size error buffer is allowed. */
    cr_assert_not(st_read(missing, &f, NULL, 0));
    cr_assert_not(st_read(missing, &f, err, 0));
}

/* ---- write failures ---- */

Test(safetensors, write_to_missing_directory) {
    static const uint8_t v[1] = {1};
    const StTensor t = mk("a", ST_U8, 1, (int64_t[]){1}, v, 1);
    const char *path = in_dir("no/such/dir/out.safetensors");
    char err[512] = "";
    cr_assert_not(st_write(path, &t, 1, NULL, 0, err, sizeof err));
    cr_expect_eq(strncmp(err, path, strlen(path)), 0, "%s", err);
    cr_expect_not_null(strstr(err, "cannot create"), "%s", err);
    cr_expect_eq(dir_entries(), 0);
}

Test(safetensors, directory_target_refused_without_a_temp_file) {
    static const uint8_t v[1] = {1};
    const StTensor t = mk("a", ST_U8, 1, (int64_t[]){1}, v, 1);
    /* A directory is no output file: refused before anything is written. */
    const char *path = in_dir("target");
    cr_assert_eq(mkdir(path, 0700), 0);
    write_file(in_dir("target/keep"), "x", 1);
    char err[512] = "";
    cr_assert_not(st_write(path, &t, 1, NULL, 0, err, sizeof err));
    cr_expect_not_null(strstr(err, "it is a directory; refusing to replace it"), "%s", err);
    cr_expect_eq(dir_entries(), 1, "temp file left behind");
}

Test(safetensors, invalid_write_leaves_old_file) {
    static const uint8_t v[2] = {1, 2};
    const char *path = in_dir("keep.safetensors");
    char err[512] = "";
    StTensor good = mk("good", ST_U8, 1, (int64_t[]){2}, v, 2);
    cr_assert(st_write(path, &good, 1, NULL, 0, err, sizeof err), "%s", err);

    const StTensor bad[] = {
        mk("short", ST_F32, 1, (int64_t[]){2}, v, 2),         /* nbytes mismatch */
        mk("neg", ST_U8, 1, (int64_t[]){-1}, v, 0),           /* negative dim */
        mk("nodata", ST_U8, 1, (int64_t[]){2}, NULL, 2),      /* NULL data */
        mk("__metadata__", ST_U8, 1, (int64_t[]){2}, v, 2),   /* reserved */
        mk("deep", ST_U8, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1}, v, 1), /* rank */
        mk("baddt", (StDtype)42, 1, (int64_t[]){2}, v, 2),
    };
    const char *words[] = {"'short'", "'neg'", "'nodata'", "reserved", "'deep'", "'baddt'"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        cr_expect_not(st_write(path, &bad[i], 1, NULL, 0, err, sizeof err), "case %zu", i);
        cr_expect_not_null(strstr(err, words[i]), "case %zu: %s", i, err);
    }
    const StTensor dup[] = {good, good};
    cr_expect_not(st_write(path, dup, 2, NULL, 0, err, sizeof err));
    cr_expect_not_null(strstr(err, "duplicate tensor name 'good'"), "%s", err);
    const StMeta meta[] = {{"k", "1"}, {"k", "2"}};
    cr_expect_not(st_write(path, &good, 1, meta, 2, err, sizeof err));
    cr_expect_not_null(strstr(err, "duplicate __metadata__ key 'k'"), "%s", err);
    const StMeta nullv = {"k", NULL};
    cr_expect_not(st_write(path, &good, 1, &nullv, 1, err, sizeof err));

    StFile f;
    cr_assert(st_read(path, &f, err, sizeof err), "%s", err);
    cr_assert_eq(f.n, 1);
    expect_same_tensor(&f.tensors[0], &good);
    st_free(&f);
    cr_expect_eq(dir_entries(), 1);
}

/* The format's rule: the byte ranges cover the data section exactly. */
Test(safetensors, holes_trailing_bytes_and_a_short_header_rejected) {
    EXPECT_REJECT_JSON("{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,12]}}",
                       12, "tensor 'b'", "bytes [4, 8)", "unused");
    EXPECT_REJECT_JSON("{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
                       "cover 4 of the data section's 8 bytes");
    EXPECT_REJECT_JSON("{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]}}",
                       4, "tensor 'e'", "overlap tensor 'a'");
    /* A written file whose header length is 1 to 4 bytes short: the header
     * still parses (padding), the data would be read shifted. */
    float v[6] = {1, 2, 3, 4, 5, 6};
    const StTensor t = mk("w", ST_F32, 2, (int64_t[]){2, 3}, v, sizeof v);
    const char *path = in_dir("ok.safetensors");
    char err[256] = "";
    cr_assert(st_write(path, &t, 1, NULL, 0, err, sizeof err), "%s", err);
    size_t len;
    unsigned char *img = read_file(path, &len);
    for (int k = 1; k <= 4; k++) {
        img[0] = (unsigned char)(img[0] - 1);
        expect_reject_img(img, len, "bad.safetensors", (const char *)0);
    }
    free(img);
}
