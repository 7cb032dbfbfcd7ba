/* Reading and writing safetensors files (the Hugging Face tensor format):
 *
 *   u64 little-endian N | N bytes of JSON header | data section
 *
 * The header maps tensor names to {"dtype", "shape", "data_offsets": [begin,
 * end]} (offsets relative to the start of the data section) and may hold a
 * "__metadata__" object of string -> string. Files come from outside, so the
 * reader validates everything before it allocates or copies tensor data.
 *
 * Tensor data is kept in the file's byte order (little-endian), so these
 * functions assume a little-endian host. F16 (IEEE half) and BF16 (bfloat16)
 * are read and written as they are; st_convert_float widens them.
 */
#ifndef IGRC_RUNTIME_SAFETENSORS_H
#define IGRC_RUNTIME_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { ST_F32, ST_F64, ST_I32, ST_I64, ST_U8, ST_BOOL, ST_F16, ST_BF16 } StDtype;

#define ST_MAX_RANK 8

typedef struct {
    char *name;
    StDtype dtype;
    int rank; /* 0 for a scalar */
    int64_t shape[ST_MAX_RANK];
    void *data;    /* nbytes bytes, row-major; never NULL after st_read */
    size_t nbytes; /* prod(shape) * st_dtype_size(dtype) */
} StTensor;

typedef struct {
    char *key;
    char *value;
} StMeta;

typedef struct {
    StTensor *tensors; /* in file (header) order */
    int n;
    StMeta *meta; /* __metadata__, in file order */
    int nmeta;
} StFile;

/* Bytes per element; 0 for a value outside the enum. */
size_t st_dtype_size(StDtype t);
/* The format's spelling ("F32", ..., "BF16"); "?" for a value outside the enum. */
const char *st_dtype_name(StDtype t);
/* F16, BF16, F32 or F64. */
bool st_dtype_is_float(StDtype t);

/* One F16 or BF16 value (its bits) as a float: exact, since F32 holds
 * every value of both (F16 subnormals, infinities and NaN included). */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);

/* Converts the elements of a float tensor (F16, BF16, F32 or F64) to F32
 * or F64 (`to`) into dst (numel * st_dtype_size(to) bytes). Exact except
 * F64 -> F32, which rounds to nearest; a finite F64 value beyond F32's
 * range is an error naming the tensor and the element. */
bool st_convert_float(const StTensor *src, StDtype to, void *dst, char *err, size_t errcap);

/* All return true on success. On failure they fill err (if non-NULL) with a
 * one-line message that starts with the path (or label) and names the tensor
 * or JSON key at fault, and leave *out zeroed. */
bool st_read(const char *path, StFile *out, char *err, size_t errcap);
/* Parses a whole file image held in memory; tensor data is copied, so buf
 * may be freed afterwards. label stands in for the path in messages. */
bool st_read_mem(const void *buf, size_t len, const char *label, StFile *out, char *err,
                 size_t errcap);
/* Writes tensors in the given order (and meta, if nmeta > 0) atomically:
 * to "<path>.tmp.<pid>", fsync, rename over path. On failure the temp file
 * is removed and any existing file at path is untouched. */
bool st_write(const char *path, const StTensor *ts, int n, const StMeta *meta, int nmeta,
              char *err, size_t errcap);

/* The tensor called name, or NULL. */
const StTensor *st_find(const StFile *f, const char *name);
/* Frees everything st_read allocated and zeroes *f; safe on a zeroed StFile. */
void st_free(StFile *f);

#endif
