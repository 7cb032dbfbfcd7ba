/* The on-disk kernel cache of the CUDA backend (see cuda_compile.h for the
 * rules). An entry is
 *   "IGRCKC 1\n" KEY(32 hex) "\n" LENGTH "\n" CHECKSUM(16 hex) "\n"
 * followed by LENGTH bytes of CUDA image (runtime/cuda/cuda_abi.h). */
#ifndef IGRC_CODEGEN_CUDA_CACHE_H
#define IGRC_CODEGEN_CUDA_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t h[2];
} CudaCacheKey;

/* Hash of the concatenated parts (each length-prefixed, so that moving a
 * byte from one part to the next changes the key). */
CudaCacheKey cuda_cache_key(const char *const *parts, int n);
/* dir/<key hex>.igrck into buf. */
void cuda_cache_path(const char *dir, CudaCacheKey key, char *buf, size_t cap);

/* The image stored under key at path: malloc'd in *data (length *n), or
 * false when there is no entry; *corrupt tells a damaged entry apart. */
bool cuda_cache_load(const char *path, CudaCacheKey key, void **data, size_t *n, bool *corrupt);
/* Writes the entry through a temporary file and rename; false (with a
 * message in err) when the directory or file cannot be written. */
bool cuda_cache_store(const char *path, CudaCacheKey key, const void *data, size_t n, char *err,
                      size_t errcap);

#endif
