// conv.cu: the memory-bound halves of a 2-D convolution; the matrix products go to cuBLAS.
//
// nnscratch computes conv2d as im2col + GEMM (see nnscratch/ref/conv.py for the plan):
//   forward          cols = im2col(x)                    (C*KH*KW, N*OH*OW)     this file
//                    y_cm = w @ cols                      (OC, N*OH*OW)          cuBLAS (cupy.matmul)
//                    y    = swap_leading_axes(y_cm) + b   (N, OC, OH, OW)        this file
//   backward input   gcols = w.T @ gy_cm, gx = col2im(gcols)
//   backward weight  gw = gy_cm @ cols.T
//
// Kernels (each as _f32 and _f64):
//   im2col             one thread per element of cols; zeros where a tap falls in the padding
//   col2im             one thread per input pixel, GATHERING the taps that read it (each gx element
//                      written once: no atomics, deterministic; Caffe's formulation)
//   swap_leading_axes  (A, B, L) -> (B, A, L), optionally adding bias[a]: NCHW <-> channel-major,
//                      fused with the bias add of the forward
//
// Why im2col + cuBLAS rather than an implicit GEMM in this file: the GEMM carries all the FLOPs
// (2*OC*C*KH*KW*N*OH*OW) and cuBLAS runs it near peak for every shape, with tile heuristics a
// hand-written kernel would need hundreds of lines to approach; im2col/col2im are short, readable
// and deterministic. The price is memory traffic: cols is KH*KW times the input, written once and
// read once more by the GEMM. For a 3x3 layer with N=128, C=OC=64, 32x32 (kernels/README.md) that is
// ~600 MB, ~0.2 ms at 3 TB/s, the same order as the GEMM itself (9.7 GFLOP, ~0.15 ms at 67 TFLOP/s
// FP32), and the forward keeps cols alive until the weight gradient. An implicit GEMM (v2: gather the
// taps straight into the GEMM's shared-memory tiles, as cuDNN does) would remove that traffic and
// is where the next ~1.5-2x on such layers would come from.
//
// Versions:
//   v1 (this) grid-stride elementwise kernels; consecutive threads take consecutive output pixels
//      (ow fastest), so with stride 1 both the reads of x and the writes of cols are coalesced.
#include "common.cuh"

template <typename T>
__device__ void im2col_body(const T* __restrict__ x, T* __restrict__ cols, int N, int C, int H, int W, int KH,
                            int KW, int SH, int SW, int PH, int PW, int DH, int DW, int OH, int OW) {
    const int columns = N * OH * OW;
    const int total = C * KH * KW * columns;
    for (int i = nns_global_index_x(); i < total; i += nns_grid_stride_x()) {
        const int j = i % columns, row = i / columns;
        const int ow = j % OW, oh = (j / OW) % OH, n = j / (OW * OH);
        const int kw = row % KW, kh = (row / KW) % KH, c = row / (KW * KH);
        const int h = oh * SH - PH + kh * DH, w = ow * SW - PW + kw * DW;
        const bool inside = h >= 0 && h < H && w >= 0 && w < W;
        cols[i] = inside ? x[((long long)(n * C + c) * H + h) * W + w] : T(0);
    }
}

template <typename T>
__device__ void col2im_body(const T* __restrict__ cols, T* __restrict__ x, int N, int C, int H, int W, int KH,
                            int KW, int SH, int SW, int PH, int PW, int DH, int DW, int OH, int OW) {
    const int columns = N * OH * OW;
    const int total = N * C * H * W;
    for (int i = nns_global_index_x(); i < total; i += nns_grid_stride_x()) {
        const int w = i % W, h = (i / W) % H, c = (i / (W * H)) % C, n = i / (W * H * C);
        T sum = T(0);
        for (int kh = 0; kh < KH; ++kh) {
            const int hh = h + PH - kh * DH;  // = oh * SH for the output row that reads (h, w) with tap kh
            if (hh < 0 || hh % SH != 0 || hh / SH >= OH) continue;
            const int oh = hh / SH;
            for (int kw = 0; kw < KW; ++kw) {
                const int ww = w + PW - kw * DW;
                if (ww < 0 || ww % SW != 0 || ww / SW >= OW) continue;
                const int ow = ww / SW;
                sum += cols[(long long)((c * KH + kh) * KW + kw) * columns + (n * OH + oh) * OW + ow];
            }
        }
        x[i] = sum;
    }
}

template <typename T>
__device__ void swap_leading_axes_body(const T* __restrict__ src, const T* __restrict__ bias, T* __restrict__ dst,
                                       int A, int B, int L, int has_bias) {
    const int total = A * B * L;
    for (int i = nns_global_index_x(); i < total; i += nns_grid_stride_x()) {
        const int l = i % L, a = (i / L) % A, b = i / (L * A);  // i indexes dst (B, A, L)
        const T value = src[((long long)a * B + b) * L + l];
        dst[i] = has_bias ? value + __ldg(&bias[a]) : value;
    }
}

// ---- float32 ------------------------------------------------------------------------------------
extern "C" __global__ void im2col_f32(const float* x, float* cols, int N, int C, int H, int W, int KH, int KW, int SH,
                                      int SW, int PH, int PW, int DH, int DW, int OH, int OW) {
    im2col_body(x, cols, N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW);
}
extern "C" __global__ void col2im_f32(const float* cols, float* x, int N, int C, int H, int W, int KH, int KW, int SH,
                                      int SW, int PH, int PW, int DH, int DW, int OH, int OW) {
    col2im_body(cols, x, N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW);
}
extern "C" __global__ void swap_leading_axes_f32(const float* src, const float* bias, float* dst, int A, int B, int L,
                                                 int has_bias) {
    swap_leading_axes_body(src, bias, dst, A, B, L, has_bias);
}

// ---- float64 ------------------------------------------------------------------------------------
extern "C" __global__ void im2col_f64(const double* x, double* cols, int N, int C, int H, int W, int KH, int KW,
                                      int SH, int SW, int PH, int PW, int DH, int DW, int OH, int OW) {
    im2col_body(x, cols, N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW);
}
extern "C" __global__ void col2im_f64(const double* cols, double* x, int N, int C, int H, int W, int KH, int KW,
                                      int SH, int SW, int PH, int PW, int DH, int DW, int OH, int OW) {
    col2im_body(cols, x, N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW);
}
extern "C" __global__ void swap_leading_axes_f64(const double* src, const double* bias, double* dst, int A, int B,
                                                 int L, int has_bias) {
    swap_leading_axes_body(src, bias, dst, A, B, L, has_bias);
}
