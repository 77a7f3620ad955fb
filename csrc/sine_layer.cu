// Fused epilogue kernels of a hidden/last layer: the GEMM (cuBLAS, in bindings.cpp) gives
// the pre-activation streams; one kernel reads them once and writes every post stream
// (forward), or reads (pre, gbar) once and writes every pre-stream adjoint plus the bias
// gradient (backward). sin/cos are computed once per (point, feature). Outputs may alias
// inputs (post = pre for inference, pbar = gbar in the backward), hence no __restrict__ there.
// A non-null `rest` (float32, 3xTF32 products) splits what the kernel writes in place:
// post/pbar get the TF32 heads and rest the remainders (tf32.cuh), ready for the next GEMMs.
#include "epilogue_common.cuh"
#include "fastsiren.h"
#include "jet_math.cuh"
#include "launch.cuh"
#include "tf32.cuh"

namespace fastsiren {
namespace {

template <typename T, typename LW>
__global__ void sine_fwd_kernel(const T* pre, const T* __restrict__ b, T omega, int64_t n,
                                int features, int dim, int order, const LW lw, T* post,
                                T* __restrict__ rest) {
  const int f = epi::feature_lane();
  if (f >= features) return;
  const T bias = b != nullptr ? b[f] : T(0);
  const int64_t stride = n * features;
  epi::for_each_row(n, features, f, [&](int64_t, int64_t off) {
    jet::layer_fwd(pre + off, stride, bias, omega, order, dim, lw, post + off, stride);
    tf32::split_streams(post + off, rest != nullptr ? rest + off : nullptr, stride, num_streams(order, dim));
  });
}

template <typename T, typename LW>
__global__ void sine_bwd_kernel(const T* __restrict__ pre, const T* __restrict__ b, const T* gbar,
                                T omega, int64_t n, int features, int dim, int order, const LW lw,
                                T* pbar, T* bbar, T* __restrict__ rest) {
  __shared__ T red[epi::kGroups][epi::kLanes + 1];
  const int f = epi::feature_lane();
  const bool active = f < features;
  T zsum = T(0);
  if (active) {
    const T bias = b != nullptr ? b[f] : T(0);
    const int64_t stride = n * features;
    epi::for_each_row(n, features, f, [&](int64_t, int64_t off) {
      zsum += jet::layer_bwd(pre + off, stride, bias, gbar + off, stride, omega, order, dim, lw, pbar + off,
                             stride);
      tf32::split_streams(pbar + off, rest != nullptr ? rest + off : nullptr, stride, num_streams(order, dim));
    });
  }
  if (bbar != nullptr) epi::block_accumulate(zsum, bbar + (active ? f : 0), active, red);
}

}  // namespace

template <typename T>
cudaError_t sine_fwd(const T* pre, const T* b, T omega, int64_t n, int features, int dim, int order,
                     LapWeights<T> lw, T* post, T* rest, cudaStream_t stream) {
  if (n == 0 || features == 0) return cudaSuccess;
  return with_lap_weights(lw, [&](auto weights) {
    FASTSIREN_LAUNCH(epi::grid_for(n, features), epi::block_dims(), 0, stream,
                     sine_fwd_kernel<T, decltype(weights)>)(pre, b, omega, n, features, dim, order, weights, post,
                                                            rest);
    return cudaGetLastError();
  });
}

template <typename T>
cudaError_t sine_bwd(const T* pre, const T* b, const T* gbar, T omega, int64_t n, int features, int dim,
                     int order, LapWeights<T> lw, T* pbar, T* bbar, T* rest, cudaStream_t stream) {
  if (n == 0 || features == 0) return cudaSuccess;
  return with_lap_weights(lw, [&](auto weights) {
    FASTSIREN_LAUNCH(epi::grid_for(n, features), epi::block_dims(), 0, stream,
                     sine_bwd_kernel<T, decltype(weights)>)(pre, b, gbar, omega, n, features, dim, order, weights,
                                                            pbar, bbar, rest);
    return cudaGetLastError();
  });
}

template cudaError_t sine_fwd<float>(const float*, const float*, float, int64_t, int, int, int, LapWeights<float>,
                                     float*, float*, cudaStream_t);
template cudaError_t sine_fwd<double>(const double*, const double*, double, int64_t, int, int, int,
                                      LapWeights<double>, double*, double*, cudaStream_t);
template cudaError_t sine_bwd<float>(const float*, const float*, const float*, float, int64_t, int, int,
                                     int, LapWeights<float>, float*, float*, float*, cudaStream_t);
template cudaError_t sine_bwd<double>(const double*, const double*, const double*, double, int64_t, int,
                                      int, int, LapWeights<double>, double*, double*, double*, cudaStream_t);

}  // namespace fastsiren
