// The TF32 split (tf32.cuh) of a whole float32 tensor in one pass: a GEMM operand of the
// cuda backend's 3xTF32 products (csrc/bindings.cpp gemm) that no layer epilogue wrote.
#include "fastsiren.h"
#include "launch.cuh"
#include "tf32.cuh"

namespace fastsiren {
namespace {

constexpr int kSplitThreads = 256;
constexpr int64_t kSplitMaxBlocks = 4096;  // grid-stride beyond that

__global__ void tf32_split_kernel(const float* __restrict__ t, int64_t n, float* __restrict__ head,
                                  float* __restrict__ rest) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = t[i];
    const float h = tf32::head(v);
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
