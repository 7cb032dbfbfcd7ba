/* The CUDA library kernels: what a PS_LIB step (runtime/cpu/cpu_ops.h's ops)
 * runs on the GPU, launched as runtime/cuda/cuda_lib_plan.c plans. Every entry
 * has the signature of runtime/cuda/cuda_abi.h:
 *
 *   extern "C" __global__ void NAME(void *out, const void *in0,
 *                                   const void *in1, void *scratch,
 *                                   IgrcLibArgs args)
 *
 * args are cpu_ops.h's, in its order. Matrix products and the three
 * convolutions share one tiled GEMM (64 x 64 output tiles, K in steps of 16
 * through shared memory, 4 x 4 outputs per thread) over index functors: a
 * convolution is an implicit GEMM whose operand elements are computed from
 * the image on the fly (no im2col buffer). conv2d_bwd_data gathers (each dx
 * element sums over the taps that read it) and conv2d_bwd_filter splits
 * its long reduction into partial sums added in a fixed order, so every
 * result is deterministic: no float atomics anywhere. Products use fma
 * explicitly (the module is compiled with --fmad=false).
 *
 * Pooling is one thread per output element; the backward ops gather too,
 * visiting windows in row-major order, which is the order in which the CPU
 * adds them, so pooling matches the CPU bit for bit. Max pooling's window
 * winner is the first maximal element in row-major order, a NaN beating
 * everything (the first NaN wins); padding is -inf.
 *
 * With IGRC_TF32 defined (--tf32, sm_80 and newer) the f32 GEMMs also come
 * as *_tf32 entries on tensor cores: mma.sync m16n8k8 with operands rounded
 * to TF32 (cvt.rna) and f32 accumulation. */

#define IGRC_LIB_NARGS 16 /* CPU_OP_MAX_ARGS */
typedef struct {
    long long a[IGRC_LIB_NARGS];
} IgrcLibArgs;

#define IGRC_TILE 64     /* output tile edge of the GEMM */
#define IGRC_TK 16       /* K step through shared memory */
#define IGRC_GEMM_THREADS 256
#define IGRC_SPLIT_K 4096 /* conv2d_bwd_filter: reduction terms per partial */
#define IGRC_SPLIT_MAX 32

IGRC_FN float igrc_fma(float a, float b, float c) { return fmaf(a, b, c); }
IGRC_FN double igrc_fma(double a, double b, double c) { return fma(a, b, c); }

/* conv2d_bwd_filter's partial sums for a reduction of K = N OH OW terms;
 * runtime/cuda/cuda_lib_plan.c computes the same number. */
IGRC_FN i64 igrc_filter_splits(i64 K) {
    i64 s = K / IGRC_SPLIT_K;
    return s < 1 ? 1 : s > IGRC_SPLIT_MAX ? IGRC_SPLIT_MAX : s;
}

/* ---- GEMM operands as functors: a(z, m, k), b(z, k, n) ---- */

template <typename T> struct IgrcMatmul {
    const T *A, *B;
    i64 M, N, K;
    bool ta, tb;
    __device__ T a(i64 z, i64 m, i64 k) const {
        return A[z * M * K + (ta ? k * M + m : m * K + k)];
    }
    __device__ T b(i64 z, i64 k, i64 n) const {
        return B[z * K * N + (tb ? n * K + k : k * N + n)];
    }
};

/* Geometry of a convolution: cpu_ops.h's 13 args. */
struct IgrcConv {
    i64 N, C, H, W, O, KH, KW, SH, SW, PH, PW, OH, OW;
};

IGRC_FN IgrcConv igrc_conv(const IgrcLibArgs &g) {
    const long long *a = g.a;
    IgrcConv c = {a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12]};
    return c;
}

/* Element (r, p) of sample n's im2col matrix: row r = (c, kh, kw), column
 * p = (oh, ow); 0 in the padding. */
template <typename T> IGRC_FN T igrc_im2col(const IgrcConv &g, const T *x, i64 n, i64 r, i64 p) {
    i64 kk = g.KH * g.KW, c = r / kk, kh = r % kk / g.KW, kw = r % g.KW;
    i64 ih = p / g.OW * g.SH - g.PH + kh, iw = p % g.OW * g.SW - g.PW + kw;
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) return (T)0;
    return x[((n * g.C + c) * g.H + ih) * g.W + iw];
}

/* y_n (O x OH OW) = w (O x C KH KW) . im2col(x_n) */
template <typename T> struct IgrcConvFwd {
    IgrcConv g;
    const T *x, *w;
    i64 M, N, K;
    __device__ T a(i64, i64 o, i64 r) const { return w[o * K + r]; }
    __device__ T b(i64 z, i64 r, i64 p) const { return igrc_im2col(g, x, z, r, p); }
};

/* dx_n (C x H W) = sum over taps (o, kh, kw) of w[o, c, kh, kw] times the
 * dy_n element that read x[c, ih, iw] through that tap (0 if none). */
template <typename T> struct IgrcConvBwdData {
    IgrcConv g;
    const T *dy, *w;
    i64 M, N, K;
    __device__ T a(i64, i64 c, i64 r) const {
        i64 kk = g.KH * g.KW;
        return w[(r / kk * g.C + c) * kk + r % kk];
    }
    __device__ T b(i64 z, i64 r, i64 q) const {
        i64 kk = g.KH * g.KW, o = r / kk, kh = r % kk / g.KW, kw = r % g.KW;
        i64 th = q / g.W + g.PH - kh, tw = q % g.W + g.PW - kw;
        if (th < 0 || tw < 0 || th % g.SH || tw % g.SW) return (T)0;
        i64 oh = th / g.SH, ow = tw / g.SW;
        if (oh >= g.OH || ow >= g.OW) return (T)0;
        return dy[((z * g.O + o) * g.OH + oh) * g.OW + ow];
    }
};

/* dw (O x C KH KW) = sum over k = (n, p) of dy[n, o, p] im2col(x_n)[r, p] */
template <typename T> struct IgrcConvBwdFilter {
    IgrcConv g;
    const T *x, *dy;
    i64 M, N, K;
    __device__ T a(i64, i64 o, i64 k) const {
        i64 P = g.OH * g.OW;
        return dy[(k / P * g.O + o) * P + k % P];
    }
    __device__ T b(i64, i64 k, i64 r) const {
        i64 P = g.OH * g.OW;
        return igrc_im2col(g, x, k / P, r, k % P);
    }
};

/* ---- the SIMT tiled GEMM ---- */

/* out[z M N + m N + n] = sum over k in [k0, k1) of a(z, m, k) b(z, k, n)
 * for the block's tile; k in ascending order, one fma per term. Every
 * thread reaches every barrier. */
template <typename T, class G>
IGRC_FN void igrc_gemm_tile(const G &g, i64 z, i64 k0, i64 k1, T *out) {
    __shared__ T As[IGRC_TK][IGRC_TILE + 1]; /* +1: the k-fastest stores hit distinct banks */
    __shared__ T Bs[IGRC_TK][IGRC_TILE];
    int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    i64 m0 = (i64)blockIdx.y * IGRC_TILE, n0 = (i64)blockIdx.x * IGRC_TILE;
    T acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = (T)0;
    for (i64 kt = k0; kt < k1; kt += IGRC_TK) {
        /* A is mostly contiguous along k (weights, row-major matrices), B
         * along n (images, row-major matrices): neighbouring threads load
         * neighbouring elements of each */
        for (int l = tid; l < IGRC_TK * IGRC_TILE; l += IGRC_GEMM_THREADS) {
            int ak = l % IGRC_TK, am = l / IGRC_TK, bk = l / IGRC_TILE, bn = l % IGRC_TILE;
            i64 m = m0 + am, n = n0 + bn;
            As[ak][am] = kt + ak < k1 && m < g.M ? g.a(z, m, kt + ak) : (T)0;
            Bs[bk][bn] = kt + bk < k1 && n < g.N ? g.b(z, kt + bk, n) : (T)0;
        }
        __syncthreads();
        for (int kk = 0; kk < IGRC_TK; kk++) {
            T av[4], bv[4];
            for (int i = 0; i < 4; i++) av[i] = As[kk][ty + 16 * i];
            for (int j = 0; j < 4; j++) bv[j] = Bs[kk][tx + 16 * j];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) acc[i][j] = igrc_fma(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            i64 m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
            if (m < g.M && n < g.N) out[(z * g.M + m) * g.N + n] = acc[i][j];
        }
}

#ifdef IGRC_TF32
/* ---- the TF32 tensor-core GEMM (f32 only): 4 warps, 32 x 32 each ---- */

IGRC_FN u32 igrc_to_tf32(float x) {
    u32 r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

IGRC_FN void igrc_mma_tf32(float *c, const u32 *a, const u32 *b) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* As igrc_gemm_tile, 128 threads: warp (wm, wn) owns rows wm 32.. and
 * columns wn 32.. of the tile as 2 x 4 mma tiles of 16 x 8. Fragment
 * layouts of m16n8k8 (PTX ISA): lane = 4 group + t; A (row-major 16 x 8)
 * a0 (group, t), a1 (group + 8, t), a2 (group, t + 4), a3 (group + 8,
 * t + 4); B (col-major 8 x 8) b0 (t, group), b1 (t + 4, group); C c0
 * (group, 2t), c1 (group, 2t + 1), c2 (group + 8, 2t), c3 (group + 8,
 * 2t + 1). */
template <class G> IGRC_FN void igrc_gemm_tile_tf32(const G &g, i64 z, i64 k0, i64 k1, float *out) {
    __shared__ u32 As[IGRC_TK][IGRC_TILE + 4];
    __shared__ u32 Bs[IGRC_TK][IGRC_TILE + 4];
    int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, grp = lane / 4, t = lane % 4;
    int wm = warp / 2 * 32, wn = warp % 2 * 32;
    i64 m0 = (i64)blockIdx.y * IGRC_TILE, n0 = (i64)blockIdx.x * IGRC_TILE;
    float acc[2][4][4];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            for (int q = 0; q < 4; q++) acc[i][j][q] = 0.0f;
    for (i64 kt = k0; kt < k1; kt += IGRC_TK) {
        for (int l = tid; l < IGRC_TK * IGRC_TILE; l += 128) {
            int kk = l / IGRC_TILE, mm = l % IGRC_TILE;
            i64 k = kt + kk, m = m0 + mm, n = n0 + mm;
            As[kk][mm] = igrc_to_tf32(k < k1 && m < g.M ? g.a(z, m, k) : 0.0f);
            Bs[kk][mm] = igrc_to_tf32(k < k1 && n < g.N ? g.b(z, k, n) : 0.0f);
        }
        __syncthreads();
        for (int kb = 0; kb < IGRC_TK; kb += 8) {
            u32 af[2][4], bf[4][2];
            for (int i = 0; i < 2; i++) {
                int row = wm + i * 16 + grp;
                af[i][0] = As[kb + t][row];
                af[i][1] = As[kb + t][row + 8];
                af[i][2] = As[kb + t + 4][row];
                af[i][3] = As[kb + t + 4][row + 8];
            }
            for (int j = 0; j < 4; j++) {
                int col = wn + j * 8 + grp;
                bf[j][0] = Bs[kb + t][col];
                bf[j][1] = Bs[kb + t + 4][col];
            }
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 4; j++) igrc_mma_tf32(acc[i][j], af[i], bf[j]);
        }
        __syncthreads();
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            for (int q = 0; q < 4; q++) {
                i64 m = m0 + wm + i * 16 + grp + (q >= 2 ? 8 : 0);
                i64 n = n0 + wn + j * 8 + 2 * t + (q & 1);
                if (m < g.M && n < g.N) out[(z * g.M + m) * g.N + n] = acc[i][j][q];
            }
}
#endif

/* ---- GEMM entries ---- */

/* Batched over blockIdx.z (a grid-stride loop over z: grids stop at 65535). */
template <typename T, class G> IGRC_FN void igrc_gemm_batched(const G &g, i64 batch, T *out) {
    for (i64 z = blockIdx.z; z < batch; z += gridDim.z) igrc_gemm_tile<T>(g, z, 0, g.K, out);
}

template <typename T> IGRC_FN IgrcMatmul<T> igrc_matmul_op(const void *in0, const void *in1, const IgrcLibArgs &a) {
    IgrcMatmul<T> g = {(const T *)in0, (const T *)in1, a.a[1], a.a[3], a.a[2], a.a[4] != 0, a.a[5] != 0};
    return g;
}

template <typename T> IGRC_FN IgrcConvFwd<T> igrc_fwd_op(const void *in0, const void *in1, const IgrcLibArgs &a) {
    IgrcConv c = igrc_conv(a);
    IgrcConvFwd<T> g = {c, (const T *)in0, (const T *)in1, c.O, c.OH * c.OW, c.C * c.KH * c.KW};
    return g;
}

template <typename T> IGRC_FN IgrcConvBwdData<T> igrc_data_op(const void *in0, const void *in1, const IgrcLibArgs &a) {
    IgrcConv c = igrc_conv(a);
    IgrcConvBwdData<T> g = {c, (const T *)in0, (const T *)in1, c.C, c.H * c.W, c.O * c.KH * c.KW};
    return g;
}

template <typename T> IGRC_FN IgrcConvBwdFilter<T> igrc_filter_op(const void *in0, const void *in1, const IgrcLibArgs &a) {
    IgrcConv c = igrc_conv(a);
    IgrcConvBwdFilter<T> g = {c, (const T *)in0, (const T *)in1, c.O, c.C * c.KH * c.KW, c.N * c.OH * c.OW};
    return g;
}

#define IGRC_GEMM_ENTRIES(T, sfx)                                                                  \
    extern "C" __global__ void __launch_bounds__(256)                                              \
        igrc_matmul_##sfx(void *out, const void *in0, const void *in1, void *, IgrcLibArgs a) {    \
        igrc_gemm_batched<T>(igrc_matmul_op<T>(in0, in1, a), a.a[0], (T *)out);                    \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(256)                                              \
        igrc_conv2d_##sfx(void *out, const void *in0, const void *in1, void *, IgrcLibArgs a) {    \
        igrc_gemm_batched<T>(igrc_fwd_op<T>(in0, in1, a), a.a[0], (T *)out);                       \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(256) igrc_conv2d_bwd_data_##sfx(                  \
        void *out, const void *in0, const void *in1, void *, IgrcLibArgs a) {                      \
        igrc_gemm_batched<T>(igrc_data_op<T>(in0, in1, a), a.a[0], (T *)out);                      \
    }                                                                                              \
    /* split z of gridDim.z: terms [K z / S, K (z+1) / S) into out (S = 1)                      \
     * or partial z of scratch */                                                                  \
    extern "C" __global__ void __launch_bounds__(256) igrc_conv2d_bwd_filter_##sfx(                \
        void *out, const void *in0, const void *in1, void *scratch, IgrcLibArgs a) {               \
        IgrcConvBwdFilter<T> g = igrc_filter_op<T>(in0, in1, a);                                   \
        i64 S = gridDim.z, z = blockIdx.z;                                                         \
        T *dst = S == 1 ? (T *)out : (T *)scratch + z * g.M * g.N;                                 \
        igrc_gemm_tile<T>(g, 0, g.K * z / S, g.K * (z + 1) / S, dst);                              \
    }                                                                                              \
    /* dw = partial 0 + partial 1 + ... in that order */                                           \
    extern "C" __global__ void __launch_bounds__(256) igrc_conv2d_bwd_filter_sum_##sfx(            \
        void *out, const void *, const void *, void *scratch, IgrcLibArgs a) {                     \
        IgrcConv c = igrc_conv(a);                                                                 \
        i64 len = c.O * c.C * c.KH * c.KW, S = igrc_filter_splits(c.N * c.OH * c.OW);             \
        const T *p = (const T *)scratch;                                                           \
        for (i64 i = igrc_first(0); i < len; i += igrc_stride()) {                                 \
            T s = p[i];                                                                            \
            for (i64 k = 1; k < S; k++) s = s + p[k * len + i];                                    \
            ((T *)out)[i] = s;                                                                     \
        }                                                                                          \
    }

IGRC_GEMM_ENTRIES(float, f32)
IGRC_GEMM_ENTRIES(double, f64)

#ifdef IGRC_TF32
template <class G> IGRC_FN void igrc_gemm_batched_tf32(const G &g, i64 batch, float *out) {
    for (i64 z = blockIdx.z; z < batch; z += gridDim.z) igrc_gemm_tile_tf32(g, z, 0, g.K, out);
}

extern "C" __global__ void __launch_bounds__(128)
    igrc_matmul_tf32(void *out, const void *in0, const void *in1, void *, IgrcLibArgs a) {
    igrc_gemm_batched_tf32(igrc_matmul_op<float>(in0, in1, a), a.a[0], (float *)out);
}
extern "C" __global__ void __launch_bounds__(128)
    igrc_conv2d_tf32(void *out, const void *in0, const void *in1, void *, IgrcLibArgs a) {
    igrc_gemm_batched_tf32(igrc_fwd_op<float>(in0, in1, a), a.a[0], (float *)out);
}
extern "C" __global__ void __launch_bounds__(128)
    igrc_conv2d_bwd_data_tf32(void *out, const void *in0, const void *in1, void *, IgrcLibArgs a) {
    igrc_gemm_batched_tf32(igrc_data_op<float>(in0, in1, a), a.a[0], (float *)out);
}
extern "C" __global__ void __launch_bounds__(128) igrc_conv2d_bwd_filter_tf32(
    void *out, const void *in0, const void *in1, void *scratch, IgrcLibArgs a) {
    IgrcConvBwdFilter<float> g = igrc_filter_op<float>(in0, in1, a);
    i64 S = gridDim.z, z = blockIdx.z;
    float *dst = S == 1 ? (float *)out : (float *)scratch + z * g.M * g.N;
    igrc_gemm_tile_tf32(g, 0, g.K * z / S, g.K * (z + 1) / S, dst);
}
#endif

/* ---- pooling: one thread per output (forward) or input (backward) ---- */

struct IgrcPool {
    i64 N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW;
    i64 include_pad; /* average pooling's arg 12 (count_include_pad) */
};

IGRC_FN IgrcPool igrc_pool(const IgrcLibArgs &g) {
    const long long *a = g.a;
    IgrcPool p = {a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12]};
    return p;
}

/* Plane index of the winner of window (oh, ow) of plane x; -1 when the
 * window is all padding. */
template <typename T> IGRC_FN i64 igrc_argmax(const IgrcPool &g, const T *x, i64 oh, i64 ow) {
    i64 best = -1;
    for (i64 kh = 0; kh < g.KH; kh++) {
        i64 ih = oh * g.SH - g.PH + kh;
        if (ih < 0 || ih >= g.H) continue;
        for (i64 kw = 0; kw < g.KW; kw++) {
            i64 iw = ow * g.SW - g.PW + kw, i = ih * g.W + iw;
            if (iw < 0 || iw >= g.W) continue;
            if (best < 0 || (!igrc_isnan(x[best]) && (igrc_isnan(x[i]) || x[i] > x[best]))) best = i;
        }
    }
    return best;
}

/* The windows along one axis that contain input position i: [*lo, *hi]. */
IGRC_FN void igrc_windows(i64 i, i64 k, i64 s, i64 pad, i64 n_out, i64 *lo, i64 *hi) {
    i64 first = i + pad - k + 1; /* o s >= first */
    *lo = first <= 0 ? 0 : (first + s - 1) / s;
    i64 last = (i + pad) / s;
    *hi = last < n_out - 1 ? last : n_out - 1;
}

template <typename T> IGRC_FN void igrc_maxpool(const IgrcPool &g, const T *x, T *y) {
    i64 ohw = g.OH * g.OW, total = g.N * g.C * ohw;
    for (i64 w = igrc_first(0); w < total; w += igrc_stride()) {
        i64 p = w / ohw, oh = w % ohw / g.OW, ow = w % g.OW;
        const T *xp = x + p * g.H * g.W;
        i64 b = igrc_argmax(g, xp, oh, ow);
        y[w] = b < 0 ? -(T)igrc_bits_f(0x7f800000u) : xp[b];
    }
}

/* g's value at the winner of each window of x (0 for an all-padding one). */
template <typename T> IGRC_FN void igrc_maxpool_select(const IgrcPool &g, const T *x, const T *src, T *y) {
    i64 ohw = g.OH * g.OW, hw = g.H * g.W, total = g.N * g.C * ohw;
    for (i64 w = igrc_first(0); w < total; w += igrc_stride()) {
        i64 p = w / ohw, oh = w % ohw / g.OW, ow = w % g.OW;
        i64 b = igrc_argmax(g, x + p * hw, oh, ow);
        y[w] = b < 0 ? (T)0 : src[p * hw + b];
    }
}

/* dx[i] = sum of dy over the windows whose winner is i, in row-major
 * window order (the CPU's order of additions). */
template <typename T> IGRC_FN void igrc_maxpool_bwd(const IgrcPool &g, const T *x, const T *dy, T *dx) {
    i64 hw = g.H * g.W, ohw = g.OH * g.OW, total = g.N * g.C * hw;
    for (i64 i = igrc_first(0); i < total; i += igrc_stride()) {
        i64 p = i / hw, ih = i % hw / g.W, iw = i % g.W, h0, h1, w0, w1;
        igrc_windows(ih, g.KH, g.SH, g.PH, g.OH, &h0, &h1);
        igrc_windows(iw, g.KW, g.SW, g.PW, g.OW, &w0, &w1);
        T s = (T)0;
        for (i64 oh = h0; oh <= h1; oh++)
            for (i64 ow = w0; ow <= w1; ow++)
                if (igrc_argmax(g, x + p * hw, oh, ow) == i % hw) s = s + dy[p * ohw + oh * g.OW + ow];
        dx[i] = s;
    }
}

/* The in-bounds extent [*lo, *hi) along one axis of window o. */
IGRC_FN void igrc_clip(i64 o, i64 k, i64 s, i64 pad, i64 n, i64 *lo, i64 *hi) {
    i64 a = o * s - pad;
    *lo = a < 0 ? 0 : a;
    *hi = a + k < n ? a + k : n;
}

/* Window (oh, ow)'s divisor: KH KW with count_include_pad, else its
 * in-bounds elements (the CPU's avg_window). */
IGRC_FN double igrc_avg_div(const IgrcPool &g, i64 oh, i64 ow) {
    if (g.include_pad) return (double)(g.KH * g.KW);
    i64 h0, h1, w0, w1;
    igrc_clip(oh, g.KH, g.SH, g.PH, g.H, &h0, &h1);
    igrc_clip(ow, g.KW, g.SW, g.PW, g.W, &w0, &w1);
    return (double)((h1 - h0) * (w1 - w0));
}

/* The in-bounds window sum in double (padding adds 0), as the CPU takes it. */
template <typename T> IGRC_FN void igrc_avgpool(const IgrcPool &g, const T *x, T *y) {
    i64 ohw = g.OH * g.OW, total = g.N * g.C * ohw;
    for (i64 w = igrc_first(0); w < total; w += igrc_stride()) {
        i64 p = w / ohw, oh = w % ohw / g.OW, ow = w % g.OW, h0, h1, w0, w1;
        const T *xp = x + p * g.H * g.W;
        igrc_clip(oh, g.KH, g.SH, g.PH, g.H, &h0, &h1);
        igrc_clip(ow, g.KW, g.SW, g.PW, g.W, &w0, &w1);
        double s = 0.0;
        for (i64 ih = h0; ih < h1; ih++)
            for (i64 iw = w0; iw < w1; iw++) s += (double)xp[ih * g.W + iw];
        y[w] = (T)(s / igrc_avg_div(g, oh, ow));
    }
}

template <typename T> IGRC_FN void igrc_avgpool_bwd(const IgrcPool &g, const T *dy, T *dx) {
    i64 hw = g.H * g.W, ohw = g.OH * g.OW, total = g.N * g.C * hw;
    for (i64 i = igrc_first(0); i < total; i += igrc_stride()) {
        i64 p = i / hw, ih = i % hw / g.W, iw = i % g.W, h0, h1, w0, w1;
        igrc_windows(ih, g.KH, g.SH, g.PH, g.OH, &h0, &h1);
        igrc_windows(iw, g.KW, g.SW, g.PW, g.OW, &w0, &w1);
        T s = (T)0;
        for (i64 oh = h0; oh <= h1; oh++)
            for (i64 ow = w0; ow <= w1; ow++)
                s = s + (T)((double)dy[p * ohw + oh * g.OW + ow] / igrc_avg_div(g, oh, ow));
        dx[i] = s;
    }
}

#define IGRC_POOL_ENTRIES(T, sfx)                                                                  \
    extern "C" __global__ void __launch_bounds__(256)                                              \
        igrc_maxpool2d_##sfx(void *out, const void *in0, const void *, void *, IgrcLibArgs a) {    \
        igrc_maxpool<T>(igrc_pool(a), (const T *)in0, (T *)out);                                   \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(256) igrc_maxpool2d_bwd_##sfx(                    \
        void *out, const void *in0, const void *in1, void *, IgrcLibArgs a) {                      \
        igrc_maxpool_bwd<T>(igrc_pool(a), (const T *)in0, (const T *)in1, (T *)out);               \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(256) igrc_maxpool2d_select_##sfx(                 \
        void *out, const void *in0, const void *in1, void *, IgrcLibArgs a) {                      \
        igrc_maxpool_select<T>(igrc_pool(a), (const T *)in0, (const T *)in1, (T *)out);            \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(256)                                              \
        igrc_avgpool2d_##sfx(void *out, const void *in0, const void *, void *, IgrcLibArgs a) {    \
        igrc_avgpool<T>(igrc_pool(a), (const T *)in0, (T *)out);                                   \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(256) igrc_avgpool2d_bwd_##sfx(                    \
        void *out, const void *in0, const void *, void *, IgrcLibArgs a) {                         \
        igrc_avgpool_bwd<T>(igrc_pool(a), (const T *)in0, (T *)out);                               \
    }

IGRC_POOL_ENTRIES(float, f32)
IGRC_POOL_ENTRIES(double, f64)
