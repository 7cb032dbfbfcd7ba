/* The CUDA backend end to end: kernels -> one CUDA C module (cuda_render.h)
 * -> NVRTC -> PTX and CUBIN for one GPU architecture, through a kernel
 * cache on disk so that recompiling an unchanged model does no NVRTC work.
 *
 * The cache lives in $IGRC_CACHE_DIR, else $XDG_CACHE_HOME/igrc, else
 * ~/.cache/igrc. An entry is keyed by a 128-bit hash of the module source,
 * the architecture, the NVRTC options and NVRTC's version; it is written
 * to a temporary file and renamed into place (concurrent compilers never
 * see half an entry), and carries a checksum of its contents: a corrupt or
 * truncated entry is ignored, recompiled and replaced. */
#ifndef IGRC_CODEGEN_CUDA_COMPILE_H
#define IGRC_CODEGEN_CUDA_COMPILE_H

#include <stdbool.h>
#include <stddef.h>

#include "codegen/cuda/cuda_render.h"
#include "runtime/cuda/cuda_abi.h"

#define CUDA_DEFAULT_ARCH "sm_90"

typedef struct {
    const char *arch;      /* "sm_NN"; NULL: CUDA_DEFAULT_ARCH */
    CudaOptions opt;       /* tf32: the tensor-core library kernels (sm_80+) */
    const char *cache_dir; /* NULL: the default above */
    bool no_cache;         /* neither read nor write the cache */
    bool ptx_only;         /* PTX for compute_NN alone: NVRTC skips ptxas (most of its time), no
                              CUBIN and no cache entry (an image holds both); what checks that
                              every kernel compiles needs, not an executable */
} CudaCompileOptions;

typedef struct {
    bool cache_hit;       /* the result came from the cache */
    bool cache_corrupt;   /* an entry existed but failed its checks */
    int nvrtc_runs;       /* NVRTC compilations done (0 on a hit) */
    double nvrtc_s;       /* seconds spent in NVRTC */
    char cache_file[4200]; /* the entry's path ("" when not cached) */
} CudaCompileStats;

/* A compiled module: what the image (runtime/cuda/cuda_abi.h) embeds. */
typedef struct {
    char arch[16];
    CudaOptions opt;
    int nkernels;
    char *ptx;        /* NUL-terminated; ptx_bytes counts the NUL */
    size_t ptx_bytes;
    void *cubin;
    size_t cubin_bytes;
} CudaBinary;

/* True when arch ("sm_90") is one NVRTC compiles for (and, with tf32,
 * sm_80 or newer); else false with a message listing the supported ones. */
bool cuda_arch_check(const char *arch, bool tf32, Diag *d);

/* The cache directory per the rule above, into buf. */
void cuda_cache_dir(char *buf, size_t cap);

/* Compiles a rendered module (src, with its kernel names for messages). */
bool cuda_compile_source(const CudaSource *src, KernelDef *const *kernels,
                         const CudaCompileOptions *o, CudaBinary *out, CudaCompileStats *st,
                         Diag *d);
/* Renders kernels[0..n-1] as igrc_k0.. with the prelude and library, and
 * compiles the module; src (may be NULL) receives the rendered text. */
bool cuda_compile_kernels(KernelDef *const *kernels, int n, const CudaCompileOptions *o,
                          CudaBinary *out, CudaCompileStats *st, CudaSource *src, Diag *d);
void cuda_binary_free(CudaBinary *b);

/* The image of b (cuda_image_write), malloc'd; length in *n. */
void *cuda_binary_image(const CudaBinary *b, size_t *n);

#endif
