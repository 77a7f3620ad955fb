// The TF32 split of the cuda backend's 3xTF32 products (csrc/bindings.cpp gemm; the Python
// side's twin is fastsiren/jet.py tf32_split): one pass over a float32 tensor writes
//   head = t rounded to the nearest TF32 value (bits 0-12 of the mantissa cleared),
//   rest = t - head (exact).
// A TF32 tensor-core product reads head without loss, and rest (|rest| <= 2^-11 |t|) with a
// relative error of 2^-11, so rest x head + head x rest + head x head is within about 2^-21
// of the exact product: float32's accuracy from three tensor-core GEMMs.
#include <cstring>

#include "fastsiren.h"
#include "launch.cuh"

namespace fastsiren {
namespace {

constexpr int kSplitThreads = 256;
constexpr int64_t kSplitMaxBlocks = 4096;  // grid-stride beyond that

__global__ void tf32_split_kernel(const float* __restrict__ t, int64_t n, float* __restrict__ head,
                                  float* __restrict__ rest) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = t[i];
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits = (bits + 0x1000u) & 0xFFFFE000u;
    float h;
    memcpy(&h, &bits, sizeof h);
    head[i] = h;
    rest[i] = v - h;
  }
}

}  // namespace

cudaError_t tf32_split(const float* t, int64_t n, float* head, float* rest, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  int64_t blocks = (n + kSplitThreads - 1) / kSplitThreads;
  if (blocks > kSplitMaxBlocks) blocks = kSplitMaxBlocks;
  FASTSIREN_LAUNCH(dim3(static_cast<unsigned>(blocks)), dim3(kSplitThreads), 0, stream, tf32_split_kernel)(
      t, n, head, rest);
  return cudaGetLastError();
}

}  // namespace fastsiren
