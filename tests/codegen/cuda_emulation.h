/* CPU emulation of the CUDA subset that igrc's generated modules use, so
 * that the rendered CUDA C can be compiled by the host C++ compiler and
 * run without a GPU (test_cuda_codegen). Included before the module text.
 *
 * A launch runs its blocks one after another. Within a block either every
 * thread runs as a fiber (ucontext: a stack of its own, all on the
 * caller's thread) and __syncthreads() switches to the next one, so that
 * every thread of the block reaches a barrier before any passes it
 * (kernels that use shared memory), or the threads run one after another
 * (kernels without barriers). Fibers rather than a pthread per thread: the
 * same barriers without creating 256 threads per block, which took most of
 * test_cuda_codegen's time under the sanitizers. __shared__ variables are
 * function statics, which all threads of the running block share. Math is
 * the host's libm: float functions in float, double in double, as on the
 * device (within an ulp or two). */
#ifndef IGRC_TEST_CUDA_EMULATION_H
#define IGRC_TEST_CUDA_EMULATION_H

#include <dlfcn.h>
#include <math.h>
#include <string.h>
#include <ucontext.h>

#include <functional>
#include <vector>

#define IGRC_CUDA_EMULATION 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(n)
#define __shared__ static

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
struct uint3 {
    unsigned x = 0, y = 0, z = 0;
};

inline uint3 threadIdx;
inline uint3 blockIdx;
inline dim3 blockDim, gridDim;

/* The running block's fibers (null outside a fiber launch). */
struct EmuFibers {
    ucontext_t sched;           /* the launching thread's context */
    std::vector<ucontext_t> ctx; /* one per thread of the block */
    std::vector<unsigned char> done;
    std::vector<char> stacks;
    const std::function<void()> *body;
    unsigned current;
};
inline EmuFibers *emu_fibers;
enum { EMU_FIBER_STACK = 64 << 10 };

/* glibc's swapcontext, past the sanitizers' interceptor (the tests are
 * built with ASan): only this uninstrumented module runs on the fiber
 * stacks, so there is no shadow memory to clear, and the interceptor
 * would warn of possible false positives in every test process. */
inline int (*emu_swapcontext)(ucontext_t *, const ucontext_t *) = [] {
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    void *f = libc ? dlsym(libc, "swapcontext") : nullptr;
    return f ? (int (*)(ucontext_t *, const ucontext_t *))f : swapcontext;
}();

/* Back to the scheduler, which runs every other thread of the block up to
 * this barrier (or its end) before resuming this one. */
inline void __syncthreads() {
    if (emu_fibers) emu_swapcontext(&emu_fibers->ctx[emu_fibers->current], &emu_fibers->sched);
}

inline float __int_as_float(int b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

inline double __longlong_as_double(long long b) {
    double f;
    memcpy(&f, &b, 8);
    return f;
}

inline void emu_fiber_main() {
    (*emu_fibers->body)();
    emu_fibers->done[emu_fibers->current] = 1; /* returns to uc_link, the scheduler */
}

/* Runs body once per thread of grid x block (1-D blocks). */
inline void emu_launch(dim3 grid, unsigned threads, bool fibers, const std::function<void()> &body) {
    gridDim = grid;
    blockDim.x = threads;
    static EmuFibers f; /* stacks kept from launch to launch */
    if (fibers) {
        f.ctx.resize(threads);
        f.done.resize(threads);
        if (f.stacks.size() < (size_t)threads * EMU_FIBER_STACK) f.stacks.resize((size_t)threads * EMU_FIBER_STACK);
        f.body = &body;
    }
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                blockIdx.x = x, blockIdx.y = y, blockIdx.z = z;
                if (!fibers) {
                    for (unsigned t = 0; t < threads; t++) {
                        threadIdx.x = t;
                        body();
                    }
                    continue;
                }
                for (unsigned t = 0; t < threads; t++) {
                    getcontext(&f.ctx[t]);
                    f.ctx[t].uc_stack.ss_sp = &f.stacks[(size_t)t * EMU_FIBER_STACK];
                    f.ctx[t].uc_stack.ss_size = EMU_FIBER_STACK;
                    f.ctx[t].uc_link = &f.sched;
                    makecontext(&f.ctx[t], emu_fiber_main, 0);
                    f.done[t] = 0;
                }
                emu_fibers = &f;
                /* each pass takes every unfinished thread to its next barrier */
                for (unsigned left = threads; left;)
                    for (unsigned t = 0; t < threads; t++) {
                        if (f.done[t]) continue;
                        f.current = t;
                        threadIdx.x = t;
                        emu_swapcontext(&f.sched, &f.ctx[t]);
                        left -= f.done[t];
                    }
                emu_fibers = nullptr;
            }
}

#endif
