// loss.cu: fused softmax cross-entropy with class weights, label smoothing and ignore_index.
//
// Kernels (each as _f32 and _f64; N rows of K logits; launched with blockDim = (32, rows per block)):
//   softmax_cross_entropy_forward   one WARP per row: row max, sum of exp, log_probs = z - max - log(sum)
//                                   written once, and the per-row loss
//                                   (1 - s) * (-w[t] * lp[t]) + (s / K) * (-sum_k w[k] * lp[k])
//   softmax_cross_entropy_backward  one warp per row: glogits = g * d - exp(lp) * sum(g * d),
//                                   g = glosses[n], d = -(s / K) * w - (1 - s) * w[t] * onehot(t)
//
// Versions:
//   v1 (this) warp per row with __shfl_xor_sync reductions: no shared memory, no __syncthreads, and
//      every lane keeps the reduced values. A warp reads its row 3 times in the forward (max, sum,
//      write lp; the re-reads hit L1/L2 for K <= a few thousand) and writes it once.
//   A block per row (reduce.cuh's nns_block_sum) would only pay off for K in the tens of thousands.
//
// Non-finite logits as PyTorch: the smoothing term is added only when s > 0 (it is +inf for a -inf logit,
// a masked class, and 0 * inf would be NaN); the gradient scales d by g before the softmax's part (PyTorch's
// order), so a -inf logit gets g * d.
//
// Rows whose target is ignore_index get loss 0 and zero gradient (g = 0: NaN only where the row's own
// log-probabilities are NaN, as in PyTorch). A target outside [0, K) that is
// not ignore_index gives a NaN loss (the GPU cannot raise; the host checks run on the emulator).
#include "reduce.cuh"

template <typename T>
__device__ __forceinline__ T class_weight(const T* __restrict__ weight, int has_weight, long long k) {
    return has_weight ? weight[k] : T(1);
}

template <typename T>
__device__ void softmax_cross_entropy_forward_body(const T* __restrict__ logits, const long long* __restrict__ target,
                                                   const T* __restrict__ weight, T* __restrict__ losses,
                                                   T* __restrict__ log_probs, int N, int K, int has_weight,
                                                   T label_smoothing, long long ignore_index) {
    const int lane = threadIdx.x;
    for (int row = blockIdx.x * blockDim.y + threadIdx.y; row < N; row += gridDim.x * blockDim.y) {
        const T* z = logits + (long long)row * K;
        T* lp = log_probs + (long long)row * K;
        T row_max = NNS_NEG_INF_F;
        for (int k = lane; k < K; k += 32) row_max = max(row_max, z[k]);
        row_max = nns_warp_max(row_max);
        T sum_exp = T(0);
        for (int k = lane; k < K; k += 32) sum_exp += exp(z[k] - row_max);
        const T log_sum = log(nns_warp_sum(sum_exp));
        T weighted = T(0);  // sum_k w[k] * lp[k]
        for (int k = lane; k < K; k += 32) {
            const T value = (z[k] - row_max) - log_sum;
            lp[k] = value;
            weighted += class_weight(weight, has_weight, k) * value;
        }
        weighted = nns_warp_sum(weighted);
        if (lane == 0) {
            const long long t = target[row];
            T loss = T(0);
            if (t != ignore_index) {
                if (t < 0 || t >= K) {
                    loss = __int_as_float(0x7fc00000);  // NaN: an invalid class index
                } else {
                    const T nll = -class_weight(weight, has_weight, t) * ((z[t] - row_max) - log_sum);
                    loss = label_smoothing > T(0)
                               ? (T(1) - label_smoothing) * nll + (label_smoothing / T(K)) * (-weighted)
                               : nll;
                }
            }
            losses[row] = loss;
        }
    }
}

template <typename T>
__device__ void softmax_cross_entropy_backward_body(const T* __restrict__ glosses, const T* __restrict__ log_probs,
                                                    const long long* __restrict__ target,
                                                    const T* __restrict__ weight, T* __restrict__ glogits, int N,
                                                    int K, int has_weight, T label_smoothing,
                                                    long long ignore_index) {
    const int lane = threadIdx.x;
    const T smooth = label_smoothing / T(K);
    for (int row = blockIdx.x * blockDim.y + threadIdx.y; row < N; row += gridDim.x * blockDim.y) {
        const T* lp = log_probs + (long long)row * K;
        T* g = glogits + (long long)row * K;
        const long long t = target[row];
        const bool kept = t != ignore_index && t >= 0 && t < K;
        const T scale = kept ? glosses[row] : T(0);
        const T target_weight = kept ? (T(1) - label_smoothing) * class_weight(weight, has_weight, t) : T(0);
        T sum_w = T(0);
        for (int k = lane; k < K; k += 32) sum_w += class_weight(weight, has_weight, k);
        // sum_k scale * d[k] = scale * (-(s / K) * sum(w) - (1 - s) * w[t])
        const T sum_d = scale * (-smooth * nns_warp_sum(sum_w) - target_weight);
        for (int k = lane; k < K; k += 32) {
            const T d = -smooth * class_weight(weight, has_weight, k) - (k == t ? target_weight : T(0));
            g[k] = scale * d - exp(lp[k]) * sum_d;
        }
    }
}

// ---- float32 ------------------------------------------------------------------------------------
extern "C" __global__ void softmax_cross_entropy_forward_f32(const float* logits, const long long* target,
                                                             const float* weight, float* losses, float* log_probs,
                                                             int N, int K, int has_weight, float label_smoothing,
                                                             long long ignore_index) {
    softmax_cross_entropy_forward_body(logits, target, weight, losses, log_probs, N, K, has_weight, label_smoothing,
                                       ignore_index);
}
extern "C" __global__ void softmax_cross_entropy_backward_f32(const float* glosses, const float* log_probs,
                                                              const long long* target, const float* weight,
                                                              float* glogits, int N, int K, int has_weight,
                                                              float label_smoothing, long long ignore_index) {
    softmax_cross_entropy_backward_body(glosses, log_probs, target, weight, glogits, N, K, has_weight,
                                        label_smoothing, ignore_index);
}

// ---- float64 ------------------------------------------------------------------------------------
extern "C" __global__ void softmax_cross_entropy_forward_f64(const double* logits, const long long* target,
                                                             const double* weight, double* losses,
                                                             double* log_probs, int N, int K, int has_weight,
                                                             double label_smoothing, long long ignore_index) {
    softmax_cross_entropy_forward_body(logits, target, weight, losses, log_probs, N, K, has_weight, label_smoothing,
                                       ignore_index);
}
extern "C" __global__ void softmax_cross_entropy_backward_f64(const double* glosses, const double* log_probs,
                                                              const long long* target, const double* weight,
                                                              double* glogits, int N, int K, int has_weight,
                                                              double label_smoothing, long long ignore_index) {
    softmax_cross_entropy_backward_body(glosses, log_probs, target, weight, glogits, N, K, has_weight,
                                        label_smoothing, ignore_index);
}
