// reduce.cuh: warp and block reductions shared by the kernels that sum or take maxima
// (norm.cu, loss.cu). Templates over the element type, so one body serves float and double.
//
// Warp reductions use __shfl_xor_sync: after log2(32) = 5 butterfly steps EVERY lane holds the
// result (no broadcast needed). They need all 32 lanes of the warp to take part: launch blocks
// whose size is a multiple of 32 and call them from non-divergent code.
#pragma once

#include "common.cuh"

#define NNS_FULL_MASK 0xffffffffu

template <typename T>
__device__ __forceinline__ T nns_warp_sum(T value) {
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(NNS_FULL_MASK, value, offset);
    return value;
}

template <typename T>
__device__ __forceinline__ T nns_warp_max(T value) {
    for (int offset = 16; offset > 0; offset >>= 1) value = max(value, __shfl_xor_sync(NNS_FULL_MASK, value, offset));
    return value;
}

// Sum of `value` over the whole block, returned to every thread.
// `scratch` is __shared__ memory for at least 32 values (one per warp). Every thread of the block
// must call it (it contains __syncthreads). Cost: two warp reductions and two barriers.
template <typename T>
__device__ T nns_block_sum(T value, T* scratch) {
    const int warps = (blockDim.x * blockDim.y * blockDim.z + 31) >> 5;
    value = nns_warp_sum(value);
    if (nns_lane() == 0) scratch[nns_warp()] = value;
    __syncthreads();
    // Every warp reduces the per-warp partials itself: no third barrier to broadcast the result.
    value = nns_lane() < warps ? scratch[nns_lane()] : T(0);
    value = nns_warp_sum(value);
    __syncthreads();  // scratch may be reused by the caller's next reduction
    return value;
}
