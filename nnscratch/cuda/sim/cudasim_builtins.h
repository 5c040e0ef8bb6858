// cudasim built-ins: what a CUDA C kernel expects from the compiler, for g++ on the CPU.
//
// Included before the unmodified .cu source. Qualifiers become nothing (or `static` for
// __shared__), math functions map to libm, atomics are plain read-modify-write (threads are fibers
// of one OS thread, so nothing interleaves), warp and block barriers call the fiber runtime.
#pragma once

#include "cudasim_runtime.h"

#include <cmath>
#include <math.h>

// --- Qualifiers -----------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __CUDACC__ 1
#define __CUDA_ARCH__ 800
#define __CUDACC_RTC__ 1
// One copy per block, shared by its threads: a static variable, in a section the runtime poisons.
#define __shared__ __attribute__((section("cudasim_smem"))) static

// --- Vector types -----------------------------------------------------------------------------------
#define CUDASIM_VEC2(T, N, A) struct __attribute__((aligned(A))) N##2 { T x, y; }; \
    static inline N##2 make_##N##2(T x, T y) { return N##2{x, y}; }
#define CUDASIM_VEC3(T, N) struct N##3 { T x, y, z; }; \
    static inline N##3 make_##N##3(T x, T y, T z) { return N##3{x, y, z}; }
#define CUDASIM_VEC4(T, N, A) struct __attribute__((aligned(A))) N##4 { T x, y, z, w; }; \
    static inline N##4 make_##N##4(T x, T y, T z, T w) { return N##4{x, y, z, w}; }
CUDASIM_VEC2(float, float, 8) CUDASIM_VEC3(float, float) CUDASIM_VEC4(float, float, 16)
CUDASIM_VEC2(double, double, 16) CUDASIM_VEC3(double, double) CUDASIM_VEC4(double, double, 16)
CUDASIM_VEC2(int, int, 8) CUDASIM_VEC3(int, int) CUDASIM_VEC4(int, int, 16)
CUDASIM_VEC2(unsigned int, uint, 8) CUDASIM_VEC4(unsigned int, uint, 16)
CUDASIM_VEC2(unsigned char, uchar, 2) CUDASIM_VEC4(unsigned char, uchar, 4)
CUDASIM_VEC2(short, short, 4) CUDASIM_VEC4(short, short, 8)
static inline uint3 make_uint3(unsigned int x, unsigned int y, unsigned int z) { return uint3{x, y, z}; }
#undef CUDASIM_VEC2
#undef CUDASIM_VEC3
#undef CUDASIM_VEC4

// --- Math: CUDA's single-precision names and intrinsics -----------------------------------------
// <math.h> already gives expf, logf, sqrtf, fmaxf, fminf, fmaf, tanhf, erff, ... and the C++
// overloads exp(float) and friends. Below: what CUDA adds.
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
// glibc already declares exp10f (a GNU extension) and, for its own use, __expf and friends:
// CUDA's fast intrinsics get their own names and a macro each.
#define __expf cudasim_expf
#define __exp10f cudasim_exp10f
#define __logf cudasim_logf
#define __log2f cudasim_log2f
#define __log10f cudasim_log10f
#define __sinf cudasim_sinf
#define __cosf cudasim_cosf
#define __tanf cudasim_tanf
#define __sincosf cudasim_sincosf
#define __powf cudasim_powf
static inline float cudasim_expf(float x) { return expf(x); }
static inline float cudasim_exp10f(float x) { return exp10f(x); }
static inline float cudasim_logf(float x) { return logf(x); }
static inline float cudasim_log2f(float x) { return log2f(x); }
static inline float cudasim_log10f(float x) { return log10f(x); }
static inline float cudasim_sinf(float x) { return sinf(x); }
static inline float cudasim_cosf(float x) { return cosf(x); }
static inline float cudasim_tanf(float x) { return tanf(x); }
static inline void cudasim_sincosf(float x, float* s, float* c) { *s = sinf(x); *c = cosf(x); }
static inline float cudasim_powf(float x, float y) { return powf(x, y); }
static inline float __fdividef(float x, float y) { return x / y; }
static inline float fdividef(float x, float y) { return x / y; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __fsqrt_rn(float x) { return sqrtf(x); }
static inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
static inline float __fadd_rn(float x, float y) { return x + y; }
static inline float __fsub_rn(float x, float y) { return x - y; }
static inline float __fmul_rn(float x, float y) { return x * y; }
static inline float __fdiv_rn(float x, float y) { return x / y; }
static inline float __fmaf_rn(float x, float y, float z) { return fmaf(x, y, z); }
static inline double __dadd_rn(double x, double y) { return x + y; }
static inline double __dmul_rn(double x, double y) { return x * y; }
static inline double __fma_rn(double x, double y, double z) { return fma(x, y, z); }
static inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
static inline float normcdff(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }
static inline double normcdf(double x) { return 0.5 * erfc(-x * 0.70710678118654752); }

static inline int __float2int_rn(float x) { return static_cast<int>(nearbyintf(x)); }
static inline int __float2int_rz(float x) { return static_cast<int>(x); }
static inline int __float2int_rd(float x) { return static_cast<int>(floorf(x)); }
static inline int __float2int_ru(float x) { return static_cast<int>(ceilf(x)); }
static inline float __int2float_rn(int x) { return static_cast<float>(x); }
static inline int __double2int_rn(double x) { return static_cast<int>(nearbyint(x)); }

static inline float __int_as_float(int x) { float f; std::memcpy(&f, &x, 4); return f; }
static inline int __float_as_int(float x) { int i; std::memcpy(&i, &x, 4); return i; }
static inline float __uint_as_float(unsigned int x) { float f; std::memcpy(&f, &x, 4); return f; }
static inline unsigned int __float_as_uint(float x) { unsigned int i; std::memcpy(&i, &x, 4); return i; }
static inline double __longlong_as_double(long long x) { double d; std::memcpy(&d, &x, 8); return d; }
static inline long long __double_as_longlong(double x) { long long i; std::memcpy(&i, &x, 8); return i; }

static inline int __popc(unsigned int x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned int>(x)); }
static inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline unsigned int __brev(unsigned int x) {
    unsigned int r = 0;
    for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
static inline int __mul24(int x, int y) { return x * y; }
static inline unsigned int __umul24(unsigned int x, unsigned int y) { return x * y; }
static inline int __mulhi(int x, int y) { return static_cast<int>((1ll * x * y) >> 32); }
static inline unsigned int __umulhi(unsigned int x, unsigned int y) {
    return static_cast<unsigned int>((1ull * x * y) >> 32);
}

// CUDA's global min/max overloads (integer and floating point, also mixed float/double).
#define CUDASIM_MINMAX(T) \
    static inline T min(T a, T b) { return b < a ? b : a; } \
    static inline T max(T a, T b) { return a < b ? b : a; }
CUDASIM_MINMAX(int) CUDASIM_MINMAX(unsigned int) CUDASIM_MINMAX(long) CUDASIM_MINMAX(unsigned long)
CUDASIM_MINMAX(long long) CUDASIM_MINMAX(unsigned long long)
#undef CUDASIM_MINMAX
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
static inline double min(float a, double b) { return fmin(a, b); }
static inline double max(float a, double b) { return fmax(a, b); }
static inline double min(double a, float b) { return fmin(a, b); }
static inline double max(double a, float b) { return fmax(a, b); }

// --- Memory -----------------------------------------------------------------------------------
template <class T> static inline T __ldg(const T* p) { return *p; }
static inline void __threadfence() { asm volatile("" ::: "memory"); }
static inline void __threadfence_block() { asm volatile("" ::: "memory"); }
static inline void __trap() { __builtin_trap(); }

// --- Atomics: one OS thread runs every fiber, so a plain read-modify-write is atomic ------------
template <class T> static inline T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
template <class T> static inline T atomicSub(T* p, T v) { T old = *p; *p = old - v; return old; }
template <class T> static inline T atomicExch(T* p, T v) { T old = *p; *p = v; return old; }
template <class T> static inline T atomicMax(T* p, T v) { T old = *p; *p = old < v ? v : old; return old; }
template <class T> static inline T atomicMin(T* p, T v) { T old = *p; *p = v < old ? v : old; return old; }
template <class T> static inline T atomicAnd(T* p, T v) { T old = *p; *p = old & v; return old; }
template <class T> static inline T atomicOr(T* p, T v) { T old = *p; *p = old | v; return old; }
template <class T> static inline T atomicXor(T* p, T v) { T old = *p; *p = old ^ v; return old; }
template <class T> static inline T atomicCAS(T* p, T compare, T v) {
    T old = *p;
    if (old == compare) *p = v;
    return old;
}
static inline unsigned int atomicInc(unsigned int* p, unsigned int limit) {
    unsigned int old = *p;
    *p = old >= limit ? 0u : old + 1u;
    return old;
}
static inline unsigned int atomicDec(unsigned int* p, unsigned int limit) {
    unsigned int old = *p;
    *p = (old == 0u || old > limit) ? limit : old - 1u;
    return old;
}

// --- Block barriers (the line number names the barrier in error messages) ------------------------
static inline void __syncthreads(int line = __builtin_LINE()) {
    ::cudasim::block_barrier(::cudasim::OP_SYNC, 0, line);
}
static inline int __syncthreads_count(int pred, int line = __builtin_LINE()) {
    return ::cudasim::block_barrier(::cudasim::OP_SYNC_COUNT, pred, line);
}
static inline int __syncthreads_and(int pred, int line = __builtin_LINE()) {
    return ::cudasim::block_barrier(::cudasim::OP_SYNC_AND, pred, line);
}
static inline int __syncthreads_or(int pred, int line = __builtin_LINE()) {
    return ::cudasim::block_barrier(::cudasim::OP_SYNC_OR, pred, line);
}

// --- Warp-level ops: every lane posts its value, waits for the lanes in `mask`, reads -----------
static inline void __syncwarp(unsigned int mask = 0xFFFFFFFFu, int line = __builtin_LINE()) {
    ::cudasim::warp_op(::cudasim::OP_SYNC, mask, 0, 0, 0, line);
}
static inline unsigned int __activemask() { return 0xFFFFFFFFu; }
static inline unsigned int __ballot_sync(unsigned int mask, int pred, int line = __builtin_LINE()) {
    return static_cast<unsigned int>(::cudasim::warp_op(::cudasim::OP_BALLOT, mask, 0, 0, pred, line));
}
static inline int __any_sync(unsigned int mask, int pred, int line = __builtin_LINE()) {
    return static_cast<int>(::cudasim::warp_op(::cudasim::OP_ANY, mask, 0, 0, pred, line));
}
static inline int __all_sync(unsigned int mask, int pred, int line = __builtin_LINE()) {
    return static_cast<int>(::cudasim::warp_op(::cudasim::OP_ALL, mask, 0, 0, pred, line));
}

namespace cudasim {
template <class T> static inline T shuffle(unsigned int mask, T var, int src_lane, int line) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffled values are at most 8 bytes");
    unsigned long long bits = 0;
    std::memcpy(&bits, &var, sizeof(T));
    bits = warp_op(OP_SHFL, mask, bits, src_lane, 0, line);
    T out;
    std::memcpy(&out, &bits, sizeof(T));
    return out;
}
static inline int segment_start(int width) { return static_cast<int>(g_cur->lane) & ~(width - 1); }
}  // namespace cudasim

template <class T>
static inline T __shfl_sync(unsigned int mask, T var, int src_lane, int width = warpSize, int line = __builtin_LINE()) {
    int src = ::cudasim::segment_start(width) + (src_lane & (width - 1));
    return ::cudasim::shuffle(mask, var, src, line);
}
template <class T>
static inline T __shfl_down_sync(unsigned int mask, T var, unsigned int delta, int width = warpSize,
                                 int line = __builtin_LINE()) {
    int lane = static_cast<int>(::cudasim::g_cur->lane);
    int in_segment = lane & (width - 1);
    int src = in_segment + static_cast<int>(delta) < width ? lane + static_cast<int>(delta) : lane;
    return ::cudasim::shuffle(mask, var, src, line);
}
template <class T>
static inline T __shfl_up_sync(unsigned int mask, T var, unsigned int delta, int width = warpSize,
                               int line = __builtin_LINE()) {
    int lane = static_cast<int>(::cudasim::g_cur->lane);
    int in_segment = lane & (width - 1);
    int src = in_segment >= static_cast<int>(delta) ? lane - static_cast<int>(delta) : lane;
    return ::cudasim::shuffle(mask, var, src, line);
}
template <class T>
static inline T __shfl_xor_sync(unsigned int mask, T var, int lane_mask, int width = warpSize,
                                int line = __builtin_LINE()) {
    int lane = static_cast<int>(::cudasim::g_cur->lane);
    int src = lane ^ lane_mask;
    if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
    return ::cudasim::shuffle(mask, var, src, line);
}

// --- Parameter types, read from the compiled function type -----------------------------------------
namespace cudasim {
template <class T> struct TypeName { static std::string get() { return "?" + std::to_string(sizeof(T)); } };
#define CUDASIM_TYPE_NAME(T) template <> struct TypeName<T> { static std::string get() { return #T; } };
CUDASIM_TYPE_NAME(void) CUDASIM_TYPE_NAME(bool) CUDASIM_TYPE_NAME(char) CUDASIM_TYPE_NAME(signed char)
CUDASIM_TYPE_NAME(unsigned char) CUDASIM_TYPE_NAME(short) CUDASIM_TYPE_NAME(unsigned short)
CUDASIM_TYPE_NAME(int) CUDASIM_TYPE_NAME(unsigned int) CUDASIM_TYPE_NAME(long) CUDASIM_TYPE_NAME(unsigned long)
CUDASIM_TYPE_NAME(long long) CUDASIM_TYPE_NAME(unsigned long long) CUDASIM_TYPE_NAME(float)
CUDASIM_TYPE_NAME(double)
#undef CUDASIM_TYPE_NAME
template <class T> struct TypeName<T*> {
    static std::string get() {
        using Base = std::remove_cv_t<T>;
        if (std::is_pointer<Base>::value) return "?pointer-to-pointer";
        return std::string(std::is_const<T>::value ? "const " : "") + TypeName<Base>::get() + "*";
    }
};

template <class Fn> struct Kernel;
template <class... A> struct Kernel<void (*)(A...)> {
    template <void (*F)(A...), size_t... I> static void call(void** args, std::index_sequence<I...>) {
        F(*static_cast<A*>(args[I])...);
    }
    template <void (*F)(A...)> static void invoke(void** args) { call<F>(args, std::index_sequence_for<A...>{}); }
    static const char* signature() {
        static const std::string text = [] {
            std::string s;
            ((s += TypeName<A>::get() + ";"), ...);
            return s;
        }();
        return text.c_str();
    }
};
}  // namespace cudasim
