// Fused first layer. Its input streams are known in closed form (h = x, J_k = e_k, L = 0),
// so z = x W^T + b takes D FMAs per (point, feature) in registers, a_k = W[:, k] and l = 0
// need no GEMM, and the backward recomputes z instead of saving anything. The backward
// reduces W's and b's gradients over the points in the same pass:
//   Wbar[f, k] = sum_n (zbar x_k + abar_k),   bbar[f] = sum_n zbar.
#include "epilogue_common.cuh"
#include "fastsiren.h"
#include "jet_math.cuh"
#include "launch.cuh"
#include "tf32.cuh"

namespace fastsiren {
namespace {

// Column f of W (a_k of the first layer) in registers, zero-padded to MAXD, and
// q = sum_k c_k a_k^2 (c_k the Laplacian's weights).
template <int MAXD, typename T, typename LW>
__device__ __forceinline__ T load_wrow(const T* w, int f, int dim, const LW& lw, T (&wrow)[MAXD]) {
  T q = T(0);
#pragma unroll
  for (int k = 0; k < MAXD; ++k) {
    wrow[k] = k < dim ? w[static_cast<int64_t>(f) * dim + k] : T(0);
    q += lw[k] * wrow[k] * wrow[k];
  }
  return q;
}

template <int MAXD, typename T>
__device__ __forceinline__ T first_z(const T* x, int64_t row, int dim, T bias, const T (&wrow)[MAXD]) {
  T z = bias;
#pragma unroll
  for (int k = 0; k < MAXD; ++k)
    if (k < dim) z += wrow[k] * x[row * dim + k];
  return z;
}

template <int MAXD, typename T, typename LW>
__global__ void first_fwd_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                 T omega, int64_t n, int dim, int features, int order, const LW lw,
                                 T* __restrict__ post, T* __restrict__ rest) {
  const int f = epi::feature_lane();
  if (f >= features) return;
  T wrow[MAXD];
  const T q = load_wrow<MAXD>(w, f, dim, lw, wrow);
  const T bias = b != nullptr ? b[f] : T(0);
  const int64_t stride = n * features;
  epi::for_each_row(n, features, f, [&](int64_t row, int64_t off) {
    jet::first_fwd<MAXD>(first_z<MAXD>(x, row, dim, bias, wrow), wrow, q, omega, order, dim, post + off, stride);
    tf32::split_streams(post + off, rest != nullptr ? rest + off : nullptr, stride, num_streams(order, dim));
  });
}

template <int MAXD, typename T, typename LW>
__global__ void first_bwd_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                 const T* __restrict__ gbar, T omega, int64_t n, int dim, int features,
                                 int order, const LW lw, T* __restrict__ zbar_out, T* wbar,
                                 T* bbar) {
  __shared__ T red[epi::kGroups][epi::kLanes + 1];
  const int f = epi::feature_lane();
  const bool active = f < features;
  T wacc[MAXD];
#pragma unroll
  for (int k = 0; k < MAXD; ++k) wacc[k] = T(0);
  T bacc = T(0);
  if (active) {
    T wrow[MAXD];
    const T q = load_wrow<MAXD>(w, f, dim, lw, wrow);
    const T bias = b != nullptr ? b[f] : T(0);
    const int64_t stride = n * features;
    epi::for_each_row(n, features, f, [&](int64_t row, int64_t off) {
      T abar[MAXD];
      const T zbar = jet::first_bwd<MAXD>(first_z<MAXD>(x, row, dim, bias, wrow), wrow, q, gbar + off, stride,
                                          omega, order, dim, lw, abar);
      if (zbar_out != nullptr) zbar_out[off] = zbar;
      bacc += zbar;
#pragma unroll
      for (int k = 0; k < MAXD; ++k)
        if (k < dim) wacc[k] += zbar * x[row * dim + k] + abar[k];
    });
  }
  // The loop bounds are uniform over the block, so every thread reaches each barrier.
#pragma unroll
  for (int k = 0; k < MAXD; ++k)
    if (k < dim) epi::block_accumulate(wacc[k], wbar + (active ? static_cast<int64_t>(f) * dim + k : 0),
                                       active, red);
  if (bbar != nullptr) epi::block_accumulate(bacc, bbar + (active ? f : 0), active, red);
}

}  // namespace

template <typename T>
cudaError_t first_layer_fwd(const T* x, const T* w, const T* b, T omega, int64_t n, int dim, int features,
                            int order, LapWeights<T> lw, T* post, T* rest, cudaStream_t stream) {
  if (n == 0 || features == 0) return cudaSuccess;
  if (dim < 1 || dim > kMaxJetDim) return cudaErrorInvalidValue;
  const dim3 grid = epi::grid_for(n, features), block = epi::block_dims();
  // Two register budgets: the usual coordinate inputs (D <= 4) and the general case.
  return with_lap_weights(lw, [&](auto weights) {
    using LW = decltype(weights);
    if (dim <= 4)
      FASTSIREN_LAUNCH(grid, block, 0, stream, first_fwd_kernel<4, T, LW>)(x, w, b, omega, n, dim, features, order,
                                                                           weights, post, rest);
    else
      FASTSIREN_LAUNCH(grid, block, 0, stream, first_fwd_kernel<kMaxJetDim, T, LW>)(x, w, b, omega, n, dim,
                                                                                   features, order, weights, post,
                                                                                   rest);
    return cudaGetLastError();
  });
}

template <typename T>
cudaError_t first_layer_bwd(const T* x, const T* w, const T* b, const T* gbar, T omega, int64_t n, int dim,
                            int features, int order, LapWeights<T> lw, T* zbar, T* wbar, T* bbar,
                            cudaStream_t stream) {
  if (n == 0 || features == 0) return cudaSuccess;
  if (dim < 1 || dim > kMaxJetDim) return cudaErrorInvalidValue;
  const dim3 grid = epi::grid_for(n, features), block = epi::block_dims();
  return with_lap_weights(lw, [&](auto weights) {
    using LW = decltype(weights);
    if (dim <= 4)
      FASTSIREN_LAUNCH(grid, block, 0, stream, first_bwd_kernel<4, T, LW>)(x, w, b, gbar, omega, n, dim, features,
                                                                           order, weights, zbar, wbar, bbar);
    else
      FASTSIREN_LAUNCH(grid, block, 0, stream, first_bwd_kernel<kMaxJetDim, T, LW>)(x, w, b, gbar, omega, n, dim,
                                                                                   features, order, weights, zbar,
                                                                                   wbar, bbar);
    return cudaGetLastError();
  });
}

template cudaError_t first_layer_fwd<float>(const float*, const float*, const float*, float, int64_t, int,
                                            int, int, LapWeights<float>, float*, float*, cudaStream_t);
template cudaError_t first_layer_fwd<double>(const double*, const double*, const double*, double, int64_t,
                                             int, int, int, LapWeights<double>, double*, double*, cudaStream_t);
template cudaError_t first_layer_bwd<float>(const float*, const float*, const float*, const float*, float,
                                            int64_t, int, int, int, LapWeights<float>, float*, float*, float*,
                                            cudaStream_t);
template cudaError_t first_layer_bwd<double>(const double*, const double*, const double*, const double*,
                                             double, int64_t, int, int, int, LapWeights<double>, double*, double*,
                                             double*, cudaStream_t);

}  // namespace fastsiren
