// pool.cu: 2-D max, average and adaptive-average pooling, forward and backward, on NCHW data.
//
// Kernels (each as _f32 and _f64; "plane" = one (n, c) image of H*W values, P = N*C planes):
//   max_pool2d_forward            one thread per output: max of its window and the flat index h*W+w
//   max_pool2d_backward           one thread per output: atomicAdd of gy at its argmax (gx zeroed first)
//   avg_pool2d_forward            one thread per output: window sum / PyTorch's divisor
//   avg_pool2d_backward           one thread per INPUT pixel: gathers gy/divisor of the windows covering it
//   adaptive_avg_pool2d_forward   one thread per output: window [floor(i*H/OH), ceil((i+1)*H/OH))
//   adaptive_avg_pool2d_backward  one thread per INPUT pixel: gathers from the windows covering it
//
// Versions:
//   v1 (this) direct kernels, grid-stride over flat NCHW indices. Consecutive threads handle
//      consecutive ow, so warps read rows of x (stride-SW) and write y contiguously. Each input is
//      read KH*KW/(SH*SW) times, but from L1/L2: these kernels are memory-bound (see README.md).
//
// Design notes:
//   * Backward passes that know the window geometry GATHER (each gx element written by one thread,
//     no atomics, deterministic). max_pool2d_backward only gets the argmax indices, so it scatters
//     with atomicAdd: contention only where windows overlap (stride < kernel), and the summation
//     order of such overlaps is then not deterministic on a GPU.
//   * Max pooling treats NaN as larger than everything (the first NaN of a window wins, as the
//     NumPy reference's argmax); ties go to the first position in row-major order.
#include "common.cuh"

// PyTorch's divisor of an average-pooling window along one axis (see ref.pool.avg_pool_divisor).
__device__ __forceinline__ int window_count(int start, int k, int size, int pad, int count_include_pad) {
    if (count_include_pad) return min(start + k, size + pad) - start;
    return min(start + k, size) - max(start, 0);
}

template <typename T>
__device__ void max_pool2d_forward_body(const T* __restrict__ x, T* __restrict__ y, long long* __restrict__ indices,
                                        int planes, int H, int W, int OH, int OW, int KH, int KW, int SH, int SW,
                                        int PH, int PW) {
    const int total = planes * OH * OW;
    for (int i = nns_global_index_x(); i < total; i += nns_grid_stride_x()) {
        const int ow = i % OW, oh = (i / OW) % OH, plane = i / (OW * OH);
        const int h0 = oh * SH - PH, w0 = ow * SW - PW;
        const int h_lo = max(h0, 0), h_hi = min(h0 + KH, H), w_lo = max(w0, 0), w_hi = min(w0 + KW, W);
        const T* xp = x + (long long)plane * H * W;
        T best = xp[h_lo * W + w_lo];
        int best_index = h_lo * W + w_lo;
        for (int h = h_lo; h < h_hi; ++h) {
            for (int w = w_lo; w < w_hi; ++w) {
                const T v = xp[h * W + w];
                if (v > best || (v != v && best == best)) {  // v != v: NaN wins, the first one
                    best = v;
                    best_index = h * W + w;
                }
            }
        }
        y[i] = best;
        indices[i] = best_index;
    }
}

template <typename T>
__device__ void max_pool2d_backward_body(const T* __restrict__ gy, const long long* __restrict__ indices,
                                         T* __restrict__ gx, int planes, int HW, int OHW) {
    const int total = planes * OHW;
    for (int i = nns_global_index_x(); i < total; i += nns_grid_stride_x()) {
        atomicAdd(&gx[(long long)(i / OHW) * HW + indices[i]], gy[i]);
    }
}

template <typename T>
__device__ void avg_pool2d_forward_body(const T* __restrict__ x, T* __restrict__ y, int planes, int H, int W,
                                        int OH, int OW, int KH, int KW, int SH, int SW, int PH, int PW,
                                        int count_include_pad) {
    const int total = planes * OH * OW;
    for (int i = nns_global_index_x(); i < total; i += nns_grid_stride_x()) {
        const int ow = i % OW, oh = (i / OW) % OH, plane = i / (OW * OH);
        const int h0 = oh * SH - PH, w0 = ow * SW - PW;
        const int h_lo = max(h0, 0), h_hi = min(h0 + KH, H), w_lo = max(w0, 0), w_hi = min(w0 + KW, W);
        const T* xp = x + (long long)plane * H * W;
        T sum = T(0);
        for (int h = h_lo; h < h_hi; ++h)
            for (int w = w_lo; w < w_hi; ++w) sum += xp[h * W + w];
        const int divisor = window_count(h0, KH, H, PH, count_include_pad) *
                            window_count(w0, KW, W, PW, count_include_pad);
        y[i] = sum / T(divisor);
    }
}

template <typename T>
__device__ void avg_pool2d_backward_body(const T* __restrict__ gy, T* __restrict__ gx, int planes, int H, int W,
                                         int OH, int OW, int KH, int KW, int SH, int SW, int PH, int PW,
                                         int count_include_pad) {
    const int total = planes * H * W;
    for (int i = nns_global_index_x(); i < total; i += nns_grid_stride_x()) {
        const int w = i % W, h = (i / W) % H, plane = i / (W * H);
        // Windows oh whose rows [oh*SH - PH, oh*SH - PH + KH) contain h, and likewise for columns.
        const int h_first = h + PH - KH + 1, w_first = w + PW - KW + 1;
        const int oh_lo = h_first <= 0 ? 0 : (h_first + SH - 1) / SH, oh_hi = min((h + PH) / SH, OH - 1);
        const int ow_lo = w_first <= 0 ? 0 : (w_first + SW - 1) / SW, ow_hi = min((w + PW) / SW, OW - 1);
        const T* gyp = gy + (long long)plane * OH * OW;
        T sum = T(0);
        for (int oh = oh_lo; oh <= oh_hi; ++oh) {
            const int rows = window_count(oh * SH - PH, KH, H, PH, count_include_pad);
            for (int ow = ow_lo; ow <= ow_hi; ++ow) {
                const int cols = window_count(ow * SW - PW, KW, W, PW, count_include_pad);
                sum += gyp[oh * OW + ow] / T(rows * cols);
            }
        }
        gx[i] = sum;
    }
}

// Adaptive windows along one axis: [floor(i*in/out), ceil((i+1)*in/out)).
__device__ __forceinline__ int adaptive_start(int i, int in, int out) { return (i * in) / out; }
__device__ __forceinline__ int adaptive_end(int i, int in, int out) { return ((i + 1) * in + out - 1) / out; }

template <typename T>
__device__ void adaptive_avg_pool2d_forward_body(const T* __restrict__ x, T* __restrict__ y, int planes, int H,
                                                 int W, int OH, int OW) {
    const int total = planes * OH * OW;
    for (int i = nns_global_index_x(); i < total; i += nns_grid_stride_x()) {
        const int ow = i % OW, oh = (i / OW) % OH, plane = i / (OW * OH);
        const int h_lo = adaptive_start(oh, H, OH), h_hi = adaptive_end(oh, H, OH);
        const int w_lo = adaptive_start(ow, W, OW), w_hi = adaptive_end(ow, W, OW);
        const T* xp = x + (long long)plane * H * W;
        T sum = T(0);
        for (int h = h_lo; h < h_hi; ++h)
            for (int w = w_lo; w < w_hi; ++w) sum += xp[h * W + w];
        y[i] = sum / T((h_hi - h_lo) * (w_hi - w_lo));
    }
}

template <typename T>
__device__ void adaptive_avg_pool2d_backward_body(const T* __restrict__ gy, T* __restrict__ gx, int planes, int H,
                                                  int W, int OH, int OW) {
    const int total = planes * H * W;
    for (int i = nns_global_index_x(); i < total; i += nns_grid_stride_x()) {
        const int w = i % W, h = (i / W) % H, plane = i / (W * H);
        // Window oh contains h iff oh >= floor(h*OH/H) and oh < ceil((h+1)*OH/H); checked again below.
        const int oh_lo = (h * OH) / H, oh_hi = min(((h + 1) * OH + H - 1) / H, OH);
        const int ow_lo = (w * OW) / W, ow_hi = min(((w + 1) * OW + W - 1) / W, OW);
        const T* gyp = gy + (long long)plane * OH * OW;
        T sum = T(0);
        for (int oh = oh_lo; oh < oh_hi; ++oh) {
            const int h_lo = adaptive_start(oh, H, OH), h_hi = adaptive_end(oh, H, OH);
            if (h < h_lo || h >= h_hi) continue;
            for (int ow = ow_lo; ow < ow_hi; ++ow) {
                const int w_lo = adaptive_start(ow, W, OW), w_hi = adaptive_end(ow, W, OW);
                if (w < w_lo || w >= w_hi) continue;
                sum += gyp[oh * OW + ow] / T((h_hi - h_lo) * (w_hi - w_lo));
            }
        }
        gx[i] = sum;
    }
}

// ---- float32 ------------------------------------------------------------------------------------
extern "C" __global__ void max_pool2d_forward_f32(const float* x, float* y, long long* indices, int planes, int H,
                                                  int W, int OH, int OW, int KH, int KW, int SH, int SW, int PH,
                                                  int PW) {
    max_pool2d_forward_body(x, y, indices, planes, H, W, OH, OW, KH, KW, SH, SW, PH, PW);
}
extern "C" __global__ void max_pool2d_backward_f32(const float* gy, const long long* indices, float* gx, int planes,
                                                   int HW, int OHW) {
    max_pool2d_backward_body(gy, indices, gx, planes, HW, OHW);
}
extern "C" __global__ void avg_pool2d_forward_f32(const float* x, float* y, int planes, int H, int W, int OH, int OW,
                                                  int KH, int KW, int SH, int SW, int PH, int PW,
                                                  int count_include_pad) {
    avg_pool2d_forward_body(x, y, planes, H, W, OH, OW, KH, KW, SH, SW, PH, PW, count_include_pad);
}
extern "C" __global__ void avg_pool2d_backward_f32(const float* gy, float* gx, int planes, int H, int W, int OH,
                                                   int OW, int KH, int KW, int SH, int SW, int PH, int PW,
                                                   int count_include_pad) {
    avg_pool2d_backward_body(gy, gx, planes, H, W, OH, OW, KH, KW, SH, SW, PH, PW, count_include_pad);
}
extern "C" __global__ void adaptive_avg_pool2d_forward_f32(const float* x, float* y, int planes, int H, int W, int OH,
                                                           int OW) {
    adaptive_avg_pool2d_forward_body(x, y, planes, H, W, OH, OW);
}
extern "C" __global__ void adaptive_avg_pool2d_backward_f32(const float* gy, float* gx, int planes, int H, int W,
                                                            int OH, int OW) {
    adaptive_avg_pool2d_backward_body(gy, gx, planes, H, W, OH, OW);
}

// ---- float64 ------------------------------------------------------------------------------------
extern "C" __global__ void max_pool2d_forward_f64(const double* x, double* y, long long* indices, int planes, int H,
                                                  int W, int OH, int OW, int KH, int KW, int SH, int SW, int PH,
                                                  int PW) {
    max_pool2d_forward_body(x, y, indices, planes, H, W, OH, OW, KH, KW, SH, SW, PH, PW);
}
extern "C" __global__ void max_pool2d_backward_f64(const double* gy, const long long* indices, double* gx,
                                                   int planes, int HW, int OHW) {
    max_pool2d_backward_body(gy, indices, gx, planes, HW, OHW);
}
extern "C" __global__ void avg_pool2d_forward_f64(const double* x, double* y, int planes, int H, int W, int OH,
                                                  int OW, int KH, int KW, int SH, int SW, int PH, int PW,
                                                  int count_include_pad) {
    avg_pool2d_forward_body(x, y, planes, H, W, OH, OW, KH, KW, SH, SW, PH, PW, count_include_pad);
}
extern "C" __global__ void avg_pool2d_backward_f64(const double* gy, double* gx, int planes, int H, int W, int OH,
                                                   int OW, int KH, int KW, int SH, int SW, int PH, int PW,
                                                   int count_include_pad) {
    avg_pool2d_backward_body(gy, gx, planes, H, W, OH, OW, KH, KW, SH, SW, PH, PW, count_include_pad);
}
extern "C" __global__ void adaptive_avg_pool2d_forward_f64(const double* x, double* y, int planes, int H, int W,
                                                           int OH, int OW) {
    adaptive_avg_pool2d_forward_body(x, y, planes, H, W, OH, OW);
}
extern "C" __global__ void adaptive_avg_pool2d_backward_f64(const double* gy, double* gx, int planes, int H, int W,
                                                            int OH, int OW) {
    adaptive_avg_pool2d_backward_body(gy, gx, planes, H, W, OH, OW);
}
