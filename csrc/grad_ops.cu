// Fused elementwise steps of the reverse-mode gradient (fastsiren/jet.py,
// reverse_grad_function): the order-1 jet of a network with fewer outputs than input
// dimensions, whose GEMMs run through cuBLAS (ATen) in fastsiren/cuda_ext.py. Each step is one
// pass over (N, F) tensors where the torch ops make two or three:
//   grad_sin_cos          h = sin z, c = cos z
//   grad_reverse_adjoint  t = sum_o r_o dbar_o, rbar = dbar c      (r may be a broadcast view)
//   grad_forward_adjoint  zbar = hbar c - h t                        (hbar or t may be absent)
// Launch geometry: epilogue_common.cuh (32 feature lanes x 8 row groups, 128 rows a block).
#include "epilogue_common.cuh"
#include "fastsiren.h"
#include "jet_math.cuh"
#include "launch.cuh"

namespace fastsiren {
namespace {

template <typename T>
__global__ void grad_sin_cos_kernel(const T* __restrict__ z, int64_t n, int features, T* __restrict__ h,
                                    T* __restrict__ c) {
  const int f = epi::feature_lane();
  if (f >= features) return;
  epi::for_each_row(n, features, f, [&](int64_t, int64_t off) { jet::sin_cos(z[off], h + off, c + off); });
}

template <typename T>
__global__ void grad_reverse_adjoint_kernel(const T* __restrict__ rv, int64_t r_so, int64_t r_sn,
                                            const T* __restrict__ dbar, const T* __restrict__ c, int64_t n,
                                            int features, int outs, T* __restrict__ t, T* __restrict__ rbar) {
  const int f = epi::feature_lane();
  if (f >= features) return;
  const int64_t stride = n * features;
  epi::for_each_row(n, features, f, [&](int64_t row, int64_t off) {
    const T cv = c[off];
    T acc = T(0);
    for (int o = 0; o < outs; ++o) {
      const T d = dbar[o * stride + off];
      acc += rv[o * r_so + row * r_sn + f] * d;
      rbar[o * stride + off] = d * cv;
    }
    t[off] = acc;
  });
}

template <typename T>
__global__ void grad_forward_adjoint_kernel(const T* __restrict__ hbar, const T* __restrict__ c,
                                            const T* __restrict__ h, const T* __restrict__ t, int64_t n,
                                            int features, T* __restrict__ zbar) {
  const int f = epi::feature_lane();
  if (f >= features) return;
  epi::for_each_row(n, features, f, [&](int64_t, int64_t off) {
    T v = hbar != nullptr ? hbar[off] * c[off] : T(0);
    if (t != nullptr) v -= h[off] * t[off];
    zbar[off] = v;
  });
}

}  // namespace

template <typename T>
cudaError_t grad_sin_cos(const T* z, int64_t n, int features, T* h, T* c, cudaStream_t stream) {
  if (n == 0 || features == 0) return cudaSuccess;
  FASTSIREN_LAUNCH(epi::grid_for(n, features), epi::block_dims(), 0, stream, grad_sin_cos_kernel<T>)(
      z, n, features, h, c);
  return cudaGetLastError();
}

template <typename T>
cudaError_t grad_reverse_adjoint(const T* r, int64_t r_so, int64_t r_sn, const T* dbar, const T* c, int64_t n,
                                 int features, int outs, T* t, T* rbar, cudaStream_t stream) {
  if (n == 0 || features == 0) return cudaSuccess;
  FASTSIREN_LAUNCH(epi::grid_for(n, features), epi::block_dims(), 0, stream, grad_reverse_adjoint_kernel<T>)(
      r, r_so, r_sn, dbar, c, n, features, outs, t, rbar);
  return cudaGetLastError();
}

template <typename T>
cudaError_t grad_forward_adjoint(const T* hbar, const T* c, const T* h, const T* t, int64_t n, int features,
                                 T* zbar, cudaStream_t stream) {
  if (n == 0 || features == 0) return cudaSuccess;
  FASTSIREN_LAUNCH(epi::grid_for(n, features), epi::block_dims(), 0, stream, grad_forward_adjoint_kernel<T>)(
      hbar, c, h, t, n, features, zbar);
  return cudaGetLastError();
}

#define FASTSIREN_GRAD_OPS(T)                                                                                  \
  template cudaError_t grad_sin_cos<T>(const T*, int64_t, int, T*, T*, cudaStream_t);                         \
  template cudaError_t grad_reverse_adjoint<T>(const T*, int64_t, int64_t, const T*, const T*, int64_t, int, \
                                               int, T*, T*, cudaStream_t);                                    \
  template cudaError_t grad_forward_adjoint<T>(const T*, const T*, const T*, const T*, int64_t, int, T*,     \
                                               cudaStream_t);
FASTSIREN_GRAD_OPS(float)
FASTSIREN_GRAD_OPS(double)
#undef FASTSIREN_GRAD_OPS

}  // namespace fastsiren
