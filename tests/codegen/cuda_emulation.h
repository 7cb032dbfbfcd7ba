/* CPU emulation of the CUDA subset that igrc's generated modules use, so
 * that the rendered CUDA C can be compiled by the host C++ compiler and
 * run without a GPU (test_cuda_codegen). Included before the module text.
 *
 * A launch runs its blocks one after another. Within a block either every
 * thread runs on its own pthread, and __syncthreads() is a barrier over
 * them (kernels that use shared memory), or the threads run one after
 * another on the caller's thread (kernels without barriers: much faster).
 * __shared__ variables are function statics, which all threads of the
 * running block share. Math is the host's libm: float functions in float,
 * double in double, as on the device (within an ulp or two). */
#ifndef IGRC_TEST_CUDA_EMULATION_H
#define IGRC_TEST_CUDA_EMULATION_H

#include <math.h>
#include <pthread.h>
#include <string.h>

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

inline thread_local uint3 threadIdx;
inline uint3 blockIdx;
inline dim3 blockDim, gridDim;
inline pthread_barrier_t *emu_barrier;

inline void __syncthreads() {
    if (emu_barrier) pthread_barrier_wait(emu_barrier);
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

struct EmuThread {
    const std::function<void()> *body;
    unsigned tid;
};

inline void *emu_thread_main(void *p) {
    EmuThread *t = (EmuThread *)p;
    threadIdx.x = t->tid;
    (*t->body)();
    return nullptr;
}

/* Runs body once per thread of grid x block (1-D blocks). */
inline void emu_launch(dim3 grid, unsigned threads, bool threaded, const std::function<void()> &body) {
    gridDim = grid;
    blockDim.x = threads;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                blockIdx.x = x, blockIdx.y = y, blockIdx.z = z;
                if (!threaded) {
                    for (unsigned t = 0; t < threads; t++) {
                        threadIdx.x = t;
                        body();
                    }
                    continue;
                }
                pthread_barrier_t bar;
                pthread_barrier_init(&bar, nullptr, threads);
                emu_barrier = &bar;
                std::vector<pthread_t> ids(threads);
                std::vector<EmuThread> ts(threads);
                for (unsigned t = 0; t < threads; t++) {
                    ts[t] = EmuThread{&body, t};
                    pthread_create(&ids[t], nullptr, emu_thread_main, &ts[t]);
                }
                for (unsigned t = 0; t < threads; t++) pthread_join(ids[t], nullptr);
                emu_barrier = nullptr;
                pthread_barrier_destroy(&bar);
            }
}

#endif
