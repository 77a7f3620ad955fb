// Launch geometry shared by the layer-wise epilogue kernels (sine_layer.cu, first_layer.cu).
//
// A block is 32 feature lanes x 8 row groups and covers kRowsPerBlock points of a 32-wide
// feature tile: a warp reads 32 consecutive features of one point (coalesced, F is the
// fastest axis of the (S, N, F) streams), and a per-block reduction over the 8 row groups
// turns the bias/weight gradients into one atomicAdd per feature per block
// (N / kRowsPerBlock atomics per feature).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace fastsiren {
namespace epi {

constexpr int kLanes = 32;
constexpr int kGroups = 8;
constexpr int kRowsPerBlock = 128;

inline dim3 grid_for(int64_t n, int features) {
  // Row chunks on x (limit 2^31 - 1), feature tiles on y (limit 65535 -> F <= 2M).
  return dim3(static_cast<unsigned>((n + kRowsPerBlock - 1) / kRowsPerBlock),
              static_cast<unsigned>((features + kLanes - 1) / kLanes), 1);
}

inline dim3 block_dims() { return dim3(kLanes, kGroups, 1); }

// The feature this thread owns in the block's 32-wide feature tile (may be >= features).
__device__ __forceinline__ int feature_lane() { return blockIdx.y * kLanes + threadIdx.x; }

// fn(row, off) for each of the block's rows this thread's row group visits, below n, with
// off = row * features + f the element of feature f in a row-major (N, features) plane.
template <typename Fn>
__device__ __forceinline__ void for_each_row(int64_t n, int features, int f, Fn&& fn) {
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock;
  for (int r = threadIdx.y; r < kRowsPerBlock; r += kGroups) {
    const int64_t row = row0 + r;
    if (row >= n) break;
    fn(row, row * features + f);
  }
}

// Sum `v` over the block's 8 row groups and add it to *dst (one atomic per feature lane).
// Every thread of the block must call it (it synchronises).
template <typename T>
__device__ __forceinline__ void block_accumulate(T v, T* dst, bool active, T (&red)[kGroups][kLanes + 1]) {
  red[threadIdx.y][threadIdx.x] = v;
  __syncthreads();
  if (threadIdx.y == 0 && active) {
    T sum = T(0);
#pragma unroll
    for (int g = 0; g < kGroups; ++g) sum += red[g][threadIdx.x];
    atomicAdd(dst, sum);
  }
  __syncthreads();
}

}  // namespace epi
}  // namespace fastsiren
