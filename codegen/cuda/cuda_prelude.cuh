/* The prelude of every generated CUDA module: the fixed-width types NVRTC
 * lacks (no <cstdint> under NVRTC) and the one-line spellings of the kernel
 * IR's primitives (codegen/kir/kernel.h) that are not C operators. Compound
 * math (sigmoid, softplus, Philox, ...) is expanded into primitives before
 * rendering (codegen/lower_math.c), so it is not written here.
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

/* ---- the kernel IR's float primitives (overloaded for float and double) ---- */

IGRC_FN bool igrc_isnan(float x) { return x != x; }
IGRC_FN bool igrc_isnan(double x) { return x != x; }

/* The max reduction's combine: isnan(a) ? a : (a > b ? a : b); a NaN b
 * fails the comparison and is returned. */
template <typename T> IGRC_FN T igrc_max(T a, T b) { return igrc_isnan(a) ? a : (a > b ? a : b); }

IGRC_FN float igrc_abs(float x) { return fabsf(x); }
IGRC_FN double igrc_abs(double x) { return fabs(x); }
IGRC_FN float igrc_exp(float x) { return expf(x); }
IGRC_FN double igrc_exp(double x) { return exp(x); }
IGRC_FN float igrc_log(float x) { return logf(x); }
IGRC_FN double igrc_log(double x) { return log(x); }
IGRC_FN float igrc_sqrt(float x) { return sqrtf(x); }
IGRC_FN double igrc_sqrt(double x) { return sqrt(x); }
IGRC_FN float igrc_tanh(float x) { return tanhf(x); }
IGRC_FN double igrc_tanh(double x) { return tanh(x); }
IGRC_FN float igrc_erf(float x) { return erff(x); }
IGRC_FN double igrc_erf(double x) { return erf(x); }
IGRC_FN float igrc_cos(float x) { return cosf(x); }
IGRC_FN double igrc_cos(double x) { return cos(x); }
IGRC_FN float igrc_trunc(float x) { return truncf(x); }
IGRC_FN double igrc_trunc(double x) { return trunc(x); }
IGRC_FN float igrc_pow(float x, float y) { return powf(x, y); }
IGRC_FN double igrc_pow(double x, double y) { return pow(x, y); }

/* ---- integer primitives ---- */

/* Wrapping arithmetic through unsigned types (signed overflow is UB). */
IGRC_FN i32 igrc_add(i32 a, i32 b) { return (i32)((u32)a + (u32)b); }
IGRC_FN i32 igrc_sub(i32 a, i32 b) { return (i32)((u32)a - (u32)b); }
IGRC_FN i32 igrc_mul(i32 a, i32 b) { return (i32)((u32)a * (u32)b); }
IGRC_FN i64 igrc_add(i64 a, i64 b) { return (i64)((u64)a + (u64)b); }
IGRC_FN i64 igrc_sub(i64 a, i64 b) { return (i64)((u64)a - (u64)b); }
IGRC_FN i64 igrc_mul(i64 a, i64 b) { return (i64)((u64)a * (u64)b); }
IGRC_FN i32 igrc_neg(i32 a) { return (i32)(0u - (u32)a); }
IGRC_FN i64 igrc_neg(i64 a) { return (i64)(0ull - (u64)a); }

/* The grid-stride loop's first element and stride for this thread. */
IGRC_FN i64 igrc_first(i64 begin) { return begin + (i64)blockIdx.x * blockDim.x + threadIdx.x; }
IGRC_FN i64 igrc_stride(void) { return (i64)gridDim.x * blockDim.x; }
