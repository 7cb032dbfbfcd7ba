/* GFLOP/s of the CPU backend's convolutions, each distinct convolution of
 * SmallCNN and of ResNet-18 (CIFAR) at batch 128, forward, backward-data
 * and backward-filter, through the runtime's entry point (cpu_op_run: what
 * compiled programs call, reorders included), with oneDNN and with im2col +
 * OpenBLAS in interleaved rounds; against the cores' f32 FMA ceiling,
 * measured here with a register-only FMA loop on the same threads.
 *
 *   conv_gflops [--threads T] [--rounds R] [--batch N] [--net smallcnn|resnet18|all]
 *
 * Prints a Markdown table (medians over the rounds, min - max). */
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/cpu/cpu_conv_dnnl.h"
#include "runtime/cpu/cpu_ops.h"

typedef struct {
    const char *net, *name;
    int64_t C, O, H, K, S, P; /* square images and kernels */
} Conv;

static const Conv CONVS[] = {
    {"smallcnn", "conv1", 1, 32, 28, 3, 1, 0},
    {"smallcnn", "conv2", 32, 32, 26, 3, 1, 0},
    {"smallcnn", "conv3", 32, 64, 12, 3, 1, 0},
    {"smallcnn", "conv4", 64, 64, 10, 3, 1, 0},
    {"resnet18", "conv1", 3, 64, 32, 3, 1, 1},
    {"resnet18", "layer1 3x3", 64, 64, 32, 3, 1, 1},
    {"resnet18", "layer2.0.conv1", 64, 128, 32, 3, 2, 1},
    {"resnet18", "layer2.0.shortcut", 64, 128, 32, 1, 2, 0},
    {"resnet18", "layer2 3x3", 128, 128, 16, 3, 1, 1},
    {"resnet18", "layer3.0.conv1", 128, 256, 16, 3, 2, 1},
    {"resnet18", "layer3.0.shortcut", 128, 256, 16, 1, 2, 0},
    {"resnet18", "layer3 3x3", 256, 256, 8, 3, 1, 1},
    {"resnet18", "layer4.0.conv1", 256, 512, 8, 3, 2, 1},
    {"resnet18", "layer4.0.shortcut", 256, 512, 8, 1, 2, 0},
    {"resnet18", "layer4 3x3", 512, 512, 4, 3, 1, 1},
};
enum { NCONV = sizeof CONVS / sizeof CONVS[0], MAXR = 64 };
static const char *const KIND[3] = {"forward", "backward-data", "backward-filter"};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *filled(int64_t n, unsigned seed) {
    float *p = malloc((size_t)n * sizeof *p);
    if (!p) abort();
    for (int64_t i = 0; i < n; i++) p[i] = (float)((seed = seed * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    return p;
}

/* ---- the ceiling: 16 independent FMA chains per thread, in registers ---- */

/* 16 chains cover an FMA latency of 4 cycles on two 512-bit pipes with
 * room to spare (8 sufficed on the machines of the first measurements, and
 * measured less on a later host of the same name). */
enum { CHAINS = 16 };

__attribute__((target("avx512f"), noinline)) static float fma_loop(long iters) {
    __m512 a[CHAINS], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
    for (int i = 1; i < CHAINS; i++) a[0] = _mm512_add_ps(a[0], a[i]);
    return _mm512_reduce_add_ps(a[0]);
}

typedef struct {
    long iters;
    float sink[64]; /* per thread's chunk: no shared write */
} FmaJob;

static void fma_range(void *ctx, int64_t b, int64_t e) {
    FmaJob *j = ctx;
    for (int64_t i = b; i < e; i++) j->sink[i % 64] += fma_loop(j->iters);
}

/* GFLOP/s of `threads` threads each running the loop (16 lanes x CHAINS x
 * 2 flops per iteration), the best of 5 timings after a warm-up (a timing
 * that a descheduled thread or a clock change slowed is not the ceiling);
 * 0 without AVX-512. */
static double ceiling(ThreadPool *tp, int threads) {
    if (!__builtin_cpu_supports("avx512f")) return 0;
    FmaJob j = {10000000, {0}};
    tp_parallel_for(tp, threads, 1, fma_range, &j); /* warm-up, clocks up */
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t = now();
        tp_parallel_for(tp, threads, 1, fma_range, &j);
        t = now() - t;
        double g = (double)threads * (double)j.iters * 16 * CHAINS * 2 / t * 1e-9;
        if (g > best) best = g;
    }
    return best + 0 * j.sink[0];
}

/* ---- one convolution ---- */

typedef struct {
    int64_t a[13];
    float *x, *w, *y;
    double flop;
} Case;

static Case make_case(const Conv *c, int64_t N) {
    int64_t OH = (c->H + 2 * c->P - c->K) / c->S + 1;
    Case k = {{N, c->C, c->H, c->H, c->O, c->K, c->K, c->S, c->S, c->P, c->P, OH, OH}, 0, 0, 0, 0};
    k.x = filled(N * c->C * c->H * c->H, 1);
    k.w = filled(c->O * c->C * c->K * c->K, 2);
    k.y = filled(N * c->O * OH * OH, 3);
    k.flop = 2.0 * (double)(N * c->O * OH * OH) * (double)(c->C * c->K * c->K);
    return k;
}

/* Seconds per call of kind k (the best of enough calls for ~0.2 s). */
static double time_call(ThreadPool *tp, Case *c, int k) {
    void *bufs[3][3] = {{c->y, c->x, c->w}, {c->x, c->y, c->w}, {c->w, c->x, c->y}};
    CpuOp op = (CpuOp)(CPU_CONV2D + k);
    double t = now();
    cpu_op_run(tp, op, CPU_F32, c->a, bufs[k]); /* warm-up (primitive made) */
    int reps = (int)fmin(50, fmax(2, 0.2 / fmax(now() - t, 1e-6)));
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        t = now();
        cpu_op_run(tp, op, CPU_F32, c->a, bufs[k]);
        best = fmin(best, now() - t);
    }
    return best;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    int threads = 2, rounds = 3;
    int64_t N = 128;
    const char *net = "all";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) N = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--net")) net = argv[i + 1];
        else {
            fprintf(stderr, "usage: conv_gflops [--threads T] [--rounds R] [--batch N] "
                            "[--net smallcnn|resnet18|all]\n");
            return 2;
        }
    }
    if (threads < 1 || rounds < 1 || rounds > MAXR || N < 1) {
        fprintf(stderr, "conv_gflops: threads, batch >= 1 and 1 <= rounds <= %d\n", MAXR);
        return 2;
    }
    ThreadPool *tp = tp_new(threads);
    double peak = ceiling(tp, threads);
    printf("threads %d, batch %lld, %d interleaved rounds; f32 FMA ceiling %.0f GFLOP/s "
           "(measured: %d threads of AVX-512 FMA chains)%s\n\n",
           threads, (long long)N, rounds, peak, threads,
           cpu_dnnl_enabled() ? "" : "; oneDNN OFF in this build or by IGRC_CONV");
    printf("| net | conv | C->O, HxW, k/s/p | kind | GFLOP | oneDNN GFLOP/s [min-max] | "
           "of ceiling | im2col GFLOP/s | of ceiling | oneDNN / im2col |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (int i = 0; i < NCONV; i++) {
        const Conv *cv = &CONVS[i];
        if (strcmp(net, "all") && strcmp(net, cv->net)) continue;
        Case c = make_case(cv, N);
        for (int k = 0; k < 3; k++) {
            double d[MAXR], m[MAXR];
            for (int r = 0; r < rounds; r++) {
                cpu_dnnl_set_enabled(true);
                d[r] = c.flop / time_call(tp, &c, k) * 1e-9;
                cpu_dnnl_set_enabled(false);
                m[r] = c.flop / time_call(tp, &c, k) * 1e-9;
            }
            double dmed = median(d, rounds), mmed = median(m, rounds);
            printf("| %s | %s | %lld->%lld, %lldx%lld, %lld/%lld/%lld | %s | %.2f | %.0f [%.0f-%.0f] "
                   "| %.0f%% | %.0f | %.0f%% | %.2fx |\n",
                   cv->net, cv->name, (long long)cv->C, (long long)cv->O, (long long)cv->H,
                   (long long)cv->H, (long long)cv->K, (long long)cv->S, (long long)cv->P, KIND[k],
                   c.flop * 1e-9, dmed, d[0], d[rounds - 1], peak > 0 ? 100 * dmed / peak : 0,
                   mmed, peak > 0 ? 100 * mmed / peak : 0, dmed / mmed);
            fflush(stdout);
        }
        free(c.x), free(c.w), free(c.y);
    }
    tp_free(tp);
    return 0;
}
