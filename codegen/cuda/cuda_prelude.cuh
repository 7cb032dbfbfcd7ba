/* The prelude of every generated CUDA module: the fixed-width types NVRTC
 * lacks (no <cstdint> under NVRTC), the elementwise math of the kernel IR
 * with the semantics of the LLVM backend (codegen/cpu/llvm_math.c) and of
 * ir/scalar.h, and Philox 4x32-10 bit-identical to base/philox.c.
 *
 * f32 operations are done in f32 and f64 in f64, as the CPU backend does;
 * the module is compiled with --fmad=false so that a * b + c rounds twice,
 * as on the CPU. The text is plain C++ that also compiles on the host (the
 * emulation test defines the CUDA keywords), so nothing here may use
 * device-only intrinsics outside IGRC_DEVICE_ONLY blocks. */

typedef long long i64;
typedef unsigned long long u64;
typedef int i32;
typedef unsigned int u32;
typedef unsigned char u8;

#define IGRC_FN static __device__ __forceinline__

/* ---- constants that have no literal ---- */

IGRC_FN float igrc_bits_f(u32 b) { return __int_as_float((int)b); }
IGRC_FN double igrc_bits_d(u64 b) { return __longlong_as_double((long long)b); }

/* ---- float ops (overloaded for float and double) ---- */

IGRC_FN bool igrc_isnan(float x) { return x != x; }
IGRC_FN bool igrc_isnan(double x) { return x != x; }

/* max/min propagating NaN: isnan(a) ? a : (a > b ? a : b); a NaN b fails
 * the comparison and is returned. */
template <typename T> IGRC_FN T igrc_max(T a, T b) { return igrc_isnan(a) ? a : (a > b ? a : b); }
template <typename T> IGRC_FN T igrc_min(T a, T b) { return igrc_isnan(a) ? a : (a < b ? a : b); }

IGRC_FN float igrc_exp(float x) { return expf(x); }
IGRC_FN double igrc_exp(double x) { return exp(x); }
IGRC_FN float igrc_log(float x) { return logf(x); }
IGRC_FN double igrc_log(double x) { return log(x); }
IGRC_FN float igrc_sqrt(float x) { return sqrtf(x); }
IGRC_FN double igrc_sqrt(double x) { return sqrt(x); }
IGRC_FN float igrc_abs(float x) { return fabsf(x); }
IGRC_FN double igrc_abs(double x) { return fabs(x); }
IGRC_FN float igrc_pow(float x, float y) { return powf(x, y); }
IGRC_FN double igrc_pow(double x, double y) { return pow(x, y); }
/* tanh from double, rounded once for f32 (the CPU backend's choice). */
IGRC_FN float igrc_tanh(float x) { return (float)tanh((double)x); }
IGRC_FN double igrc_tanh(double x) { return tanh(x); }
IGRC_FN float igrc_erf(float x) { return (float)erf((double)x); }
IGRC_FN double igrc_erf(double x) { return erf(x); }

/* x == 0 gives x (keeps -0), NaN stays NaN. */
template <typename T> IGRC_FN T igrc_sign(T x) {
    return x > (T)0 ? (T)1 : x < (T)0 ? (T)-1 : x;
}
/* NaN stays NaN (as in PyTorch and the interpreter). */
template <typename T> IGRC_FN T igrc_relu(T x) { return x <= (T)0 ? (T)0 : x; }

/* 1/(1+e) for x >= 0 and e/(1+e) below, e = exp(-|x|): never overflows. */
template <typename T> IGRC_FN T igrc_sigmoid(T x) {
    T e = igrc_exp(-igrc_abs(x)), den = (T)1 + e;
    return x >= (T)0 ? (T)1 / den : e / den;
}

/* log1p(v) as u = 1 + v; u == 1 ? v : log(u) * (v / (u - 1)) (Goldberg). */
template <typename T> IGRC_FN T igrc_log1p(T v) {
    T u = (T)1 + v;
    return u == (T)1 ? v : igrc_log(u) * (v / (u - (T)1));
}

/* beta x > 20 ? x : log1p(exp(beta x)) / beta (PyTorch's threshold). */
template <typename T> IGRC_FN T igrc_softplus(T x, T beta) {
    T bx = beta * x;
    return bx > (T)20 ? x : igrc_log1p(igrc_exp(bx)) / beta;
}

/* ---- integer ops ---- */

/* Wrapping arithmetic through unsigned types (signed overflow is UB). */
IGRC_FN i32 igrc_add(i32 a, i32 b) { return (i32)((u32)a + (u32)b); }
IGRC_FN i32 igrc_sub(i32 a, i32 b) { return (i32)((u32)a - (u32)b); }
IGRC_FN i32 igrc_mul(i32 a, i32 b) { return (i32)((u32)a * (u32)b); }
IGRC_FN i64 igrc_add(i64 a, i64 b) { return (i64)((u64)a + (u64)b); }
IGRC_FN i64 igrc_sub(i64 a, i64 b) { return (i64)((u64)a - (u64)b); }
IGRC_FN i64 igrc_mul(i64 a, i64 b) { return (i64)((u64)a * (u64)b); }
IGRC_FN i32 igrc_neg(i32 a) { return (i32)(0u - (u32)a); }
IGRC_FN i64 igrc_neg(i64 a) { return (i64)(0ull - (u64)a); }

/* C's truncating division with x / 0 = 0 and x / -1 = -x (wrapping). */
IGRC_FN i32 igrc_div(i32 a, i32 b) { return b == 0 ? 0 : b == -1 ? igrc_neg(a) : a / b; }
IGRC_FN i64 igrc_div(i64 a, i64 b) { return b == 0 ? 0 : b == -1 ? igrc_neg(a) : a / b; }

/* Float -> i32: truncate, wrap modulo 2^32, non-finite gives 0. r = t -
 * 2^32 trunc(t 2^-32) is exact for finite t and below 2^32 in magnitude. */
IGRC_FN i32 igrc_f2i32(double x) {
    if (!(fabs(x) < igrc_bits_d(0x7ff0000000000000ull))) return 0;
    double t = trunc(x);
    double r = t - trunc(t * (1.0 / 4294967296.0)) * 4294967296.0;
    return (i32)(u32)(u64)(i64)r;
}

/* Float -> i64: truncate, saturate, NaN gives 0 (llvm.fptosi.sat). */
IGRC_FN i64 igrc_f2i64(double x) {
    if (x != x) return 0;
    if (x >= 9223372036854775808.0) return (i64)0x7fffffffffffffffull;
    if (x < -9223372036854775808.0) return (i64)0x8000000000000000ull;
    return (i64)x;
}

/* ---- Philox 4x32-10 (base/philox.h) ---- */

/* out[0], out[1] of philox4x32_10(ctr = {idx lo, idx hi, stream, 0},
 * key = {seed, step}). */
IGRC_FN void igrc_philox(u32 seed, u32 step, u64 idx, u32 stream, u32 *w0, u32 *w1) {
    u32 x0 = (u32)idx, x1 = (u32)(idx >> 32), x2 = stream, x3 = 0, k0 = seed, k1 = step;
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        u64 p0 = (u64)0xD2511F53u * x0, p1 = (u64)0xCD9E8D57u * x2;
        u32 y0 = (u32)(p1 >> 32) ^ x1 ^ k0, y2 = (u32)(p0 >> 32) ^ x3 ^ k1;
        x0 = y0;
        x1 = (u32)p1;
        x2 = y2;
        x3 = (u32)p0;
    }
    *w0 = x0;
    *w1 = x1;
}

/* ((w >> 9) + 0.5) 2^-23: 24 significant bits, so exact in f32 too. */
IGRC_FN double igrc_unit_d(u32 w) { return ((double)(w >> 9) + 0.5) * (1.0 / 8388608.0); }

IGRC_FN double igrc_rand_uniform(i32 seed, i32 step, i64 idx, u32 stream) {
    u32 w0, w1;
    igrc_philox((u32)seed, (u32)step, (u64)idx, stream, &w0, &w1);
    return igrc_unit_d(w0);
}

/* Box-Muller in double: sqrt(-2 ln u1) cos(2 pi u2). */
IGRC_FN double igrc_rand_normal(i32 seed, i32 step, i64 idx, u32 stream) {
    u32 w0, w1;
    igrc_philox((u32)seed, (u32)step, (u64)idx, stream, &w0, &w1);
    double u1 = igrc_unit_d(w0), u2 = igrc_unit_d(w1);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925286766559 * u2);
}

IGRC_FN bool igrc_rand_bernoulli(i32 seed, i32 step, i64 idx, u32 stream, double p) {
    return igrc_rand_uniform(seed, step, idx, stream) < p;
}

/* The grid-stride loop's first element and stride for this thread. */
IGRC_FN i64 igrc_first(i64 begin) { return begin + (i64)blockIdx.x * blockDim.x + threadIdx.x; }
IGRC_FN i64 igrc_stride(void) { return (i64)gridDim.x * blockDim.x; }
