// The TF32 split of the cuda backend's 3xTF32 products (backends.set_gemm_precision("tf32x3");
// the Python side's twin is fastsiren/jet.py tf32_split):
//   head = v rounded to the nearest TF32 value (ties away from zero; bits 0-12 of the mantissa
//          cleared), rest = v - head (exact, |rest| <= 2^-11 |v|).
// A TF32 tensor-core product reads head without loss and rest with a relative error of 2^-11,
// so rest x head + head x rest + head x head is within about 2^-21 of the exact product.
// The layer epilogues split the streams they write in place (split_streams), so a GEMM operand
// they produce needs no pass of its own; tf32_split.cu splits any other float32 tensor.
#pragma once

#include <cstdint>
#include <cstring>

#include "fastsiren.h"

namespace fastsiren {
namespace tf32 {

__device__ __forceinline__ float head(float v) {
  uint32_t bits;
  memcpy(&bits, &v, sizeof bits);
  bits = (bits + 0x1000u) & 0xFFFFE000u;
  float h;
  memcpy(&h, &bits, sizeof h);
  return h;
}

// The `streams` values at v[s * stride], just written by this thread, become their TF32 heads;
// their remainders go to rest[s * stride]. A null rest splits nothing (float64 never splits).
__device__ __forceinline__ void split_streams(float* v, float* rest, int64_t stride, int streams) {
  if (rest == nullptr) return;
  for (int s = 0; s < streams; ++s) {
    const float x = v[s * stride];
    const float h = head(x);
    v[s * stride] = h;
    rest[s * stride] = x - h;
  }
}
__device__ __forceinline__ void split_streams(double*, double*, int64_t, int) {}

}  // namespace tf32
}  // namespace fastsiren
