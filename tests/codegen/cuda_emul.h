/* The CUDA backend's emulation harness (test_cuda_codegen): rendered
 * kernels compiled by the host C++ compiler with tests/codegen/
 * cuda_emulation.h, loaded into the test, its generated kernels and the
 * library kernels (cuda_emul_lib.cpp, built with the tests) callable like
 * launches; and the check of generated kernels against the kernel IR's
 * evaluator (codegen/kernel_eval.c). */
#ifndef IGRC_TEST_CUDA_EMUL_H
#define IGRC_TEST_CUDA_EMUL_H

#include <stdbool.h>
#include <stdint.h>

#include "codegen/kir/kernel.h"
#include "runtime/cuda/cuda_abi.h"

typedef struct CudaEmu CudaEmu;

/* A fresh temporary directory for one emulated module, removed with its
 * contents when the test process exits (also after a failed assertion). */
const char *cuda_emu_tmpdir(void);

/* Renders kernels[0..n-1] with the prelude, compiles the text with $CXX
 * (else g++) into a shared library under dir and loads it, beside the
 * library kernels (n = 0: those alone, no compile); NULL with the
 * compiler's output in err on failure. */
CudaEmu *cuda_emu_build(KernelDef *const *kernels, int n, const char *dir, char *err, size_t cap);
void cuda_emu_free(CudaEmu *e);
/* igrc_k<i>(bufs..., begin, end) on a grid of `grid` blocks of 256. */
void cuda_emu_kernel(CudaEmu *e, int i, void *const *bufs, int64_t begin, int64_t end, unsigned grid);
/* One planned library launch; false when the module lacks the kernel. */
bool cuda_emu_lib(CudaEmu *e, const CudaLaunch *l, void *out, const void *in0, const void *in1,
                  void *scratch, const int64_t *args);

typedef struct {
    int kernels, failed, index_refills;
    double worst;         /* largest error / tolerance ratio */
    char worst_name[128]; /* the kernel it was seen in */
} EmuCheck;

/* Every kernel on random buffers, emulated (in two launches, [0, d/3)
 * and [d/3, d), with a small grid so the grid-stride loop wraps) against
 * kernel_eval; every written buffer compared: integers and bools exactly,
 * f32 within 1e-5 (1 + |want|), f64 within 1e-12 (1 + |want|). Failures
 * are reported with cr_expect under `label`. */
void cuda_emu_check_kernels(CudaEmu *e, KernelDef *const *kernels, int n, uint64_t seed,
                            const char *label, EmuCheck *out);

/* Library op (op, dt, args) planned by cuda_lib_plan (opt), its launches
 * emulated, against cpu_op_run on the same random inputs: U(-2, 2), or
 * with ties_nans integers -2..2 (many ties) and about 3% NaNs (max
 * pooling's tie and NaN rules).
 * Tolerance |emulated - cpu| <= tol (1 + |cpu|): pooling exact; matmul and
 * convolutions, whose sums run in another order (and OpenBLAS's kernels),
 * tol = 1e-5 sqrt(K) in f32 and 1e-12 sqrt(K) in f64 for K terms per
 * output. Returns the worst error / tolerance ratio (0 when exact). */
double cuda_emu_check_lib(CudaEmu *e, CpuOp op, CpuDtype dt, const int64_t *args,
                          const CudaOptions *opt, bool ties_nans, uint64_t seed, const char *label);

#endif
