// activation.cu: ReLU and leaky ReLU, plain and fused with a per-channel bias, hard swish, and a dropout
// mask.
//
// Kernels (each as _f32 and _f64; T = float or double):
//   relu_forward          y  = x < 0 ? 0 : x                   (PyTorch's clamp_min: NaN and -0.0 stay)
//   relu_backward         gx = y <= 0 ? 0 : gy                 (PyTorch's threshold_backward)
//   bias_relu_forward     y  = relu(x + b[c])                  c = (i / L) % C for x (N, C, L)
//   leaky_relu_forward    y  = x > 0 ? x : slope * x
//   leaky_relu_backward   gx = x > 0 ? gy : slope * gy
//   bias_leaky_relu_forward
//   hardswish_forward     y  = x * min(max(x + 3, 0), 6) / 6
//   hardswish_backward    gx = x <= -3 ? 0 : x < 3 ? gy * (x / 3 + 0.5) : gy
//   dropout_mask          m  = (u >= p) / (1 - p), u uniform in [0, 1) from a counter-based hash
//
// Versions:
//   v1 (this) one element per thread in a grid-stride loop: every warp reads and writes 32
//      consecutive elements (128-byte transactions for float). All of these are memory-bound
//      (1 FLOP per 8-12 bytes), so nothing else matters; see kernels/README.md for the numbers.
//
// Design notes:
//   * ReLU is a select, never a product by 0: -inf * 0 and inf * 0 are NaN. The comparisons are written
//     so that NaN takes the pass-through branch (NaN < 0 is false), not max()/fmax(), which drop NaN.
//   * The bias kernels read b[c] through the read-only cache (__ldg); C is small, so it stays in L1.
//   * The dropout mask needs no RNG state: element i hashes (seed, i) with SplitMix64, so any
//     launch configuration (and the emulator's thread orders) gives the same mask.
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void relu_forward_body(const T* __restrict__ x, T* __restrict__ y, int n) {
    for (int i = nns_global_index_x(); i < n; i += nns_grid_stride_x()) y[i] = x[i] < T(0) ? T(0) : x[i];
}

template <typename T>
__device__ __forceinline__ void relu_backward_body(const T* __restrict__ gy, const T* __restrict__ y,
                                                   T* __restrict__ gx, int n) {
    for (int i = nns_global_index_x(); i < n; i += nns_grid_stride_x()) gx[i] = y[i] <= T(0) ? T(0) : gy[i];
}

// Leaky = false is plain ReLU: negatives become exactly 0 (z * 0 would turn -inf into NaN), NaN stays.
template <bool Leaky, typename T>
__device__ __forceinline__ void bias_activation_body(const T* __restrict__ x, const T* __restrict__ b,
                                                     T* __restrict__ y, T slope, int n, int C, int L) {
    for (int i = nns_global_index_x(); i < n; i += nns_grid_stride_x()) {
        const T z = x[i] + __ldg(&b[(i / L) % C]);
        y[i] = Leaky ? (z > T(0) ? z : z * slope) : (z < T(0) ? T(0) : z);
    }
}

template <typename T>
__device__ __forceinline__ void leaky_relu_forward_body(const T* __restrict__ x, T* __restrict__ y, T slope,
                                                        int n) {
    for (int i = nns_global_index_x(); i < n; i += nns_grid_stride_x()) y[i] = x[i] > T(0) ? x[i] : x[i] * slope;
}

template <typename T>
__device__ __forceinline__ void leaky_relu_backward_body(const T* __restrict__ gy, const T* __restrict__ x,
                                                         T* __restrict__ gx, T slope, int n) {
    for (int i = nns_global_index_x(); i < n; i += nns_grid_stride_x()) gx[i] = x[i] > T(0) ? gy[i] : gy[i] * slope;
}

// Hard swish in PyTorch's order of operations (a division by 6, not a product by 1/6: the same bits).
// The clamps are written as comparisons that are false for NaN, so NaN stays NaN.
template <typename T>
__device__ __forceinline__ void hardswish_forward_body(const T* __restrict__ x, T* __restrict__ y, int n) {
    for (int i = nns_global_index_x(); i < n; i += nns_grid_stride_x()) {
        const T v = x[i];
        T relu6 = v + T(3);
        relu6 = relu6 < T(0) ? T(0) : relu6;
        relu6 = relu6 > T(6) ? T(6) : relu6;
        y[i] = v * relu6 / T(6);
    }
}

// The ends of the parabola take the outer slopes (x = -3 gives 0, x = 3 gives gy), and NaN gives gy.
template <typename T>
__device__ __forceinline__ void hardswish_backward_body(const T* __restrict__ gy, const T* __restrict__ x,
                                                        T* __restrict__ gx, int n) {
    for (int i = nns_global_index_x(); i < n; i += nns_grid_stride_x()) {
        const T v = x[i];
        gx[i] = v <= T(-3) ? T(0) : (v < T(3) ? gy[i] * (v / T(3) + T(0.5)) : gy[i]);
    }
}

// SplitMix64 finaliser of (seed, i): 53 random bits -> a double in [0, 1).
__device__ __forceinline__ double uniform_from_counter(unsigned long long seed, unsigned long long i) {
    unsigned long long z = seed + (i + 1ull) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

template <typename T>
__device__ __forceinline__ void dropout_mask_body(T* __restrict__ mask, double p, unsigned long long seed,
                                                  int n) {
    const T keep = p < 1.0 ? T(1.0 / (1.0 - p)) : T(0);
    for (int i = nns_global_index_x(); i < n; i += nns_grid_stride_x())
        mask[i] = uniform_from_counter(seed, (unsigned long long)i) >= p ? keep : T(0);
}

// ---- float32 ------------------------------------------------------------------------------------
extern "C" __global__ void relu_forward_f32(const float* x, float* y, int n) { relu_forward_body(x, y, n); }
extern "C" __global__ void relu_backward_f32(const float* gy, const float* y, float* gx, int n) {
    relu_backward_body(gy, y, gx, n);
}
extern "C" __global__ void bias_relu_forward_f32(const float* x, const float* b, float* y, int n, int C, int L) {
    bias_activation_body<false>(x, b, y, 0.0f, n, C, L);
}
extern "C" __global__ void leaky_relu_forward_f32(const float* x, float* y, float slope, int n) {
    leaky_relu_forward_body(x, y, slope, n);
}
extern "C" __global__ void leaky_relu_backward_f32(const float* gy, const float* x, float* gx, float slope, int n) {
    leaky_relu_backward_body(gy, x, gx, slope, n);
}
extern "C" __global__ void bias_leaky_relu_forward_f32(const float* x, const float* b, float* y, float slope, int n,
                                                       int C, int L) {
    bias_activation_body<true>(x, b, y, slope, n, C, L);
}
extern "C" __global__ void hardswish_forward_f32(const float* x, float* y, int n) {
    hardswish_forward_body(x, y, n);
}
extern "C" __global__ void hardswish_backward_f32(const float* gy, const float* x, float* gx, int n) {
    hardswish_backward_body(gy, x, gx, n);
}
extern "C" __global__ void dropout_mask_f32(float* mask, double p, unsigned long long seed, int n) {
    dropout_mask_body(mask, p, seed, n);
}

// ---- float64 ------------------------------------------------------------------------------------
extern "C" __global__ void relu_forward_f64(const double* x, double* y, int n) { relu_forward_body(x, y, n); }
extern "C" __global__ void relu_backward_f64(const double* gy, const double* y, double* gx, int n) {
    relu_backward_body(gy, y, gx, n);
}
extern "C" __global__ void bias_relu_forward_f64(const double* x, const double* b, double* y, int n, int C, int L) {
    bias_activation_body<false>(x, b, y, 0.0, n, C, L);
}
extern "C" __global__ void leaky_relu_forward_f64(const double* x, double* y, double slope, int n) {
    leaky_relu_forward_body(x, y, slope, n);
}
extern "C" __global__ void leaky_relu_backward_f64(const double* gy, const double* x, double* gx, double slope,
                                                   int n) {
    leaky_relu_backward_body(gy, x, gx, slope, n);
}
extern "C" __global__ void bias_leaky_relu_forward_f64(const double* x, const double* b, double* y, double slope,
                                                       int n, int C, int L) {
    bias_activation_body<true>(x, b, y, slope, n, C, L);
}
extern "C" __global__ void hardswish_forward_f64(const double* x, double* y, int n) {
    hardswish_forward_body(x, y, n);
}
extern "C" __global__ void hardswish_backward_f64(const double* gy, const double* x, double* gx, int n) {
    hardswish_backward_body(gy, x, gx, n);
}
extern "C" __global__ void dropout_mask_f64(double* mask, double p, unsigned long long seed, int n) {
    dropout_mask_body(mask, p, seed, n);
}
