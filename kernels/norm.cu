// norm.cu: batch normalisation over x viewed as (N, C, L), L = H*W (or 1 for BatchNorm1d on (N, C)).
//
// Kernels (each as _f32 and _f64):
//   batch_norm_stats            one block per channel: mean and 1/sqrt(var + eps) of its M = N*L values
//                               (two passes over the channel: sum, then sum of squared deviations),
//                               and the running statistics updated in place by thread 0
//   batch_norm_apply            elementwise: y = x * scale[c] + shift[c], scale = invstd*weight,
//                               shift = bias - mean*scale (grid-stride over N*C*L)
//   batch_norm_backward_reduce  one block per channel: gbias = sum(gy), gweight = sum(gy * xhat)
//   batch_norm_backward_apply   elementwise: gx = weight*invstd * (gy - gbias/M - xhat*gweight/M)
//
// Versions:
//   v1 (this) one block per channel for the reductions, block-wide sums by warp shuffles
//      (reduce.cuh). The block walks its channel as N runs of L contiguous values, so warps read
//      contiguous memory when L >= 32. Two-pass variance: exact as the reference, one extra read.
//   Known limit: with few channels (C < number of SMs) the reductions use only C SMs; a v2 would
//   split each channel over several blocks (partial sums, then a second tiny kernel).
//   With L = 1 (input (N, C)) the reads are strided by C: fine for the small layers that use it.
//
// Absent weight/bias/running statistics are passed as empty arrays with a has_* flag of 0.
#include "reduce.cuh"

template <typename T>
__device__ void batch_norm_stats_body(const T* __restrict__ x, T* __restrict__ mean, T* __restrict__ invstd,
                                      T* __restrict__ running_mean, T* __restrict__ running_var, int N, int C, int L,
                                      T momentum, T eps, int has_running, T* scratch) {
    const int c = blockIdx.x;
    const int M = N * L;
    const int tid = nns_thread_rank(), threads = blockDim.x * blockDim.y * blockDim.z;
    T sum = T(0);
    for (int j = tid; j < M; j += threads) sum += x[((long long)(j / L) * C + c) * L + j % L];
    const T mu = nns_block_sum(sum, scratch) / T(M);
    T squares = T(0);
    for (int j = tid; j < M; j += threads) {
        const T d = x[((long long)(j / L) * C + c) * L + j % L] - mu;
        squares += d * d;
    }
    const T var = nns_block_sum(squares, scratch) / T(M);  // biased: what the normalisation uses
    if (tid == 0) {
        mean[c] = mu;
        invstd[c] = T(1) / sqrt(var + eps);
        if (has_running) {
            running_mean[c] = (T(1) - momentum) * running_mean[c] + momentum * mu;
            running_var[c] = (T(1) - momentum) * running_var[c] + momentum * var * (T(M) / T(M - 1));
        }
    }
}

template <typename T>
__device__ void batch_norm_apply_body(const T* __restrict__ x, const T* __restrict__ mean,
                                      const T* __restrict__ invstd, const T* __restrict__ weight,
                                      const T* __restrict__ bias, T* __restrict__ y, int n, int C, int L,
                                      int has_weight, int has_bias) {
    for (int i = nns_global_index_x(); i < n; i += nns_grid_stride_x()) {
        const int c = (i / L) % C;
        const T scale = has_weight ? __ldg(&invstd[c]) * __ldg(&weight[c]) : __ldg(&invstd[c]);
        const T shift = (has_bias ? __ldg(&bias[c]) : T(0)) - __ldg(&mean[c]) * scale;
        y[i] = x[i] * scale + shift;
    }
}

template <typename T>
__device__ void batch_norm_backward_reduce_body(const T* __restrict__ gy, const T* __restrict__ x,
                                                const T* __restrict__ mean, const T* __restrict__ invstd,
                                                T* __restrict__ gweight, T* __restrict__ gbias, int N, int C, int L,
                                                T* scratch) {
    const int c = blockIdx.x;
    const int M = N * L;
    const int tid = nns_thread_rank(), threads = blockDim.x * blockDim.y * blockDim.z;
    const T mu = mean[c], inv = invstd[c];
    T sum_gy = T(0), sum_gy_xhat = T(0);
    for (int j = tid; j < M; j += threads) {
        const long long k = ((long long)(j / L) * C + c) * L + j % L;
        sum_gy += gy[k];
        sum_gy_xhat += gy[k] * ((x[k] - mu) * inv);
    }
    sum_gy = nns_block_sum(sum_gy, scratch);
    sum_gy_xhat = nns_block_sum(sum_gy_xhat, scratch);
    if (tid == 0) {
        gbias[c] = sum_gy;
        gweight[c] = sum_gy_xhat;
    }
}

template <typename T>
__device__ void batch_norm_backward_apply_body(const T* __restrict__ gy, const T* __restrict__ x,
                                               const T* __restrict__ mean, const T* __restrict__ invstd,
                                               const T* __restrict__ weight, const T* __restrict__ gweight,
                                               const T* __restrict__ gbias, T* __restrict__ gx, int n, int C,
                                               int L, int M, int has_weight) {
    for (int i = nns_global_index_x(); i < n; i += nns_grid_stride_x()) {
        const int c = (i / L) % C;
        const T inv = __ldg(&invstd[c]);
        const T gain = has_weight ? inv * __ldg(&weight[c]) : inv;
        const T xhat = (x[i] - __ldg(&mean[c])) * inv;
        gx[i] = gain * (gy[i] - __ldg(&gbias[c]) / T(M) - xhat * (__ldg(&gweight[c]) / T(M)));
    }
}

// ---- float32 ------------------------------------------------------------------------------------
extern "C" __global__ void batch_norm_stats_f32(const float* x, float* mean, float* invstd, float* running_mean,
                                                float* running_var, int N, int C, int L, float momentum, float eps,
                                                int has_running) {
    __shared__ float scratch[32];
    batch_norm_stats_body(x, mean, invstd, running_mean, running_var, N, C, L, momentum, eps, has_running, scratch);
}
extern "C" __global__ void batch_norm_apply_f32(const float* x, const float* mean, const float* invstd,
                                                const float* weight, const float* bias, float* y, int n, int C,
                                                int L, int has_weight, int has_bias) {
    batch_norm_apply_body(x, mean, invstd, weight, bias, y, n, C, L, has_weight, has_bias);
}
extern "C" __global__ void batch_norm_backward_reduce_f32(const float* gy, const float* x, const float* mean,
                                                          const float* invstd, float* gweight, float* gbias, int N,
                                                          int C, int L) {
    __shared__ float scratch[32];
    batch_norm_backward_reduce_body(gy, x, mean, invstd, gweight, gbias, N, C, L, scratch);
}
extern "C" __global__ void batch_norm_backward_apply_f32(const float* gy, const float* x, const float* mean,
                                                         const float* invstd, const float* weight,
                                                         const float* gweight, const float* gbias, float* gx, int n,
                                                         int C, int L, int M, int has_weight) {
    batch_norm_backward_apply_body(gy, x, mean, invstd, weight, gweight, gbias, gx, n, C, L, M, has_weight);
}

// ---- float64 ------------------------------------------------------------------------------------
extern "C" __global__ void batch_norm_stats_f64(const double* x, double* mean, double* invstd, double* running_mean,
                                                double* running_var, int N, int C, int L, double momentum,
                                                double eps, int has_running) {
    __shared__ double scratch[32];
    batch_norm_stats_body(x, mean, invstd, running_mean, running_var, N, C, L, momentum, eps, has_running, scratch);
}
extern "C" __global__ void batch_norm_apply_f64(const double* x, const double* mean, const double* invstd,
                                                const double* weight, const double* bias, double* y, int n, int C,
                                                int L, int has_weight, int has_bias) {
    batch_norm_apply_body(x, mean, invstd, weight, bias, y, n, C, L, has_weight, has_bias);
}
extern "C" __global__ void batch_norm_backward_reduce_f64(const double* gy, const double* x, const double* mean,
                                                          const double* invstd, double* gweight, double* gbias,
                                                          int N, int C, int L) {
    __shared__ double scratch[32];
    batch_norm_backward_reduce_body(gy, x, mean, invstd, gweight, gbias, N, C, L, scratch);
}
extern "C" __global__ void batch_norm_backward_apply_f64(const double* gy, const double* x, const double* mean,
                                                         const double* invstd, const double* weight,
                                                         const double* gweight, const double* gbias, double* gx,
                                                         int n, int C, int L, int M, int has_weight) {
    batch_norm_backward_apply_body(gy, x, mean, invstd, weight, gweight, gbias, gx, n, C, L, M, has_weight);
}
