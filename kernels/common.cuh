// common.cuh: helpers shared by nnscratch's CUDA kernels.
//
// Written for NVRTC as CuPy's RawModule runs it (no <cmath>, no math_constants.h on the include
// path) and for the cudasim emulator, which compiles the same text with g++.
#pragma once

// Infinities from their bit patterns: NVRTC rejects INFINITY and HUGE_VALF without <cmath>.
#define NNS_INF_F __int_as_float(0x7f800000)
#define NNS_NEG_INF_F __int_as_float(static_cast<int>(0xff800000u))

// Flat index of this thread along x across the whole grid, and the stride of a grid-stride loop.
__device__ __forceinline__ int nns_global_index_x() { return blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int nns_grid_stride_x() { return blockDim.x * gridDim.x; }

// Blocks needed to cover n items with `per_block` items each: (n + per_block - 1) / per_block.
__device__ __forceinline__ int nns_ceil_div(int n, int per_block) { return (n + per_block - 1) / per_block; }

// Linear index of this thread inside its block (x fastest), and its lane and warp.
__device__ __forceinline__ int nns_thread_rank() {
    return (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int nns_lane() { return nns_thread_rank() & 31; }
__device__ __forceinline__ int nns_warp() { return nns_thread_rank() >> 5; }
