// Per-element jet math (fastsiren/jet.py's module docstring), shared by every kernel (layer-wise and fused render).
//
// One call handles one (point, feature) element and all of its streams, which sit at
// `ptr[s * stride]` (stride = N*F in device memory, rows*ld in a render tile). sin and cos
// of w z are computed once; the jet and adjoint combinations stay in registers. Each
// function reads an element's stream before writing it, so output may alias input.
#pragma once

#include <cstdint>

#include "fastsiren.h"

namespace fastsiren {
namespace jet {

__device__ __forceinline__ void sin_cos(float v, float* s, float* c) { sincosf(v, s, c); }
__device__ __forceinline__ void sin_cos(double v, double* s, double* c) { sincos(v, s, c); }

// Forward epilogue of a hidden/last layer: pre (z - b, a, l) -> post (y, G, M).
// lw: the Laplacian's weights (LapWeights or UnitWeights, fastsiren.h), q = sum_k c_k a_k^2.
template <typename T, typename LW>
__device__ __forceinline__ void layer_fwd(const T* pre, int64_t ps, T bias, T omega, int order, int dim,
                                          const LW& lw, T* post, int64_t qs) {
  const T z = pre[0] + bias;
  if (omega <= T(0)) {  // linear layer: the streams pass through, the bias goes to the value
    post[0] = z;
    for (int k = 1; k < num_streams(order, dim); ++k) post[k * qs] = pre[k * ps];
    return;
  }
  T s, c;
  sin_cos(omega * z, &s, &c);
  post[0] = s;
  if (order == 0) return;
  const T wc = omega * c;
  T q = T(0);
  for (int k = 1; k <= dim; ++k) {
    const T a = pre[k * ps];
    q += lw[k - 1] * a * a;
    post[k * qs] = wc * a;
  }
  if (order == 2) post[(dim + 1) * qs] = wc * pre[(dim + 1) * ps] - omega * omega * s * q;
}

// Adjoint epilogue: given post-stream adjoints gbar (ybar, Gbar, Mbar), write pre-stream
// adjoints (zbar, abar, lbar) to pbar and return zbar (the bias gradient's summand).
template <typename T, typename LW>
__device__ __forceinline__ T layer_bwd(const T* pre, int64_t ps, T bias, const T* gbar, int64_t gs,
                                       T omega, int order, int dim, const LW& lw, T* pbar, int64_t bs) {
  const T ybar = gbar[0];
  if (omega <= T(0)) {
    pbar[0] = ybar;
    for (int k = 1; k < num_streams(order, dim); ++k) pbar[k * bs] = gbar[k * gs];
    return ybar;
  }
  T s, c;
  sin_cos(omega * (pre[0] + bias), &s, &c);
  const T wc = omega * c;
  if (order == 0) {
    pbar[0] = wc * ybar;
    return wc * ybar;
  }
  const T w2s = omega * omega * s;
  const T mbar = order == 2 ? gbar[(dim + 1) * gs] : T(0);
  T dot = T(0), q = T(0);
  for (int k = 1; k <= dim; ++k) {
    const T a = pre[k * ps];
    const T g = gbar[k * gs];
    const T ca = lw[k - 1] * a;
    dot += a * g;
    q += ca * a;
    pbar[k * bs] = wc * g - T(2) * w2s * ca * mbar;
  }
  T zbar = wc * ybar - w2s * dot;
  if (order == 2) {
    const T l = pre[(dim + 1) * ps];
    zbar -= (w2s * l + omega * omega * omega * c * q) * mbar;
    pbar[(dim + 1) * bs] = wc * mbar;
  }
  pbar[0] = zbar;
  return zbar;
}

// First layer forward: z (bias included), a_k = wrow[k] (column k of W), l = 0,
// q = sum_k c_k wrow[k]^2 precomputed per feature (c_k the Laplacian's weights).
template <int MAXD, typename T>
__device__ __forceinline__ void first_fwd(T z, const T (&wrow)[MAXD], T q, T omega, int order, int dim,
                                          T* post, int64_t qs) {
  if (omega <= T(0)) {
    post[0] = z;
    if (order == 0) return;
#pragma unroll
    for (int k = 0; k < MAXD; ++k)
      if (k < dim) post[(k + 1) * qs] = wrow[k];
    if (order == 2) post[(dim + 1) * qs] = T(0);
    return;
  }
  T s, c;
  sin_cos(omega * z, &s, &c);
  post[0] = s;
  if (order == 0) return;
  const T wc = omega * c;
#pragma unroll
  for (int k = 0; k < MAXD; ++k)
    if (k < dim) post[(k + 1) * qs] = wc * wrow[k];
  if (order == 2) post[(dim + 1) * qs] = -omega * omega * s * q;
}

// First layer adjoint: returns zbar and writes abar[k]; lbar is not needed (L = 0 feeds
// nothing back: W's gradient gets lbar L^T = 0).
template <int MAXD, typename T, typename LW>
__device__ __forceinline__ T first_bwd(T z, const T (&wrow)[MAXD], T q, const T* gbar, int64_t gs,
                                       T omega, int order, int dim, const LW& lw, T (&abar)[MAXD]) {
  const T ybar = gbar[0];
  if (omega <= T(0)) {
#pragma unroll
    for (int k = 0; k < MAXD; ++k) abar[k] = (order >= 1 && k < dim) ? gbar[(k + 1) * gs] : T(0);
    return ybar;
  }
  T s, c;
  sin_cos(omega * z, &s, &c);
  const T wc = omega * c;
  if (order == 0) {
#pragma unroll
    for (int k = 0; k < MAXD; ++k) abar[k] = T(0);
    return wc * ybar;
  }
  const T w2s = omega * omega * s;
  const T mbar = order == 2 ? gbar[(dim + 1) * gs] : T(0);
  T dot = T(0);
#pragma unroll
  for (int k = 0; k < MAXD; ++k) {
    const T g = k < dim ? gbar[(k + 1) * gs] : T(0);
    dot += wrow[k] * g;
    abar[k] = wc * g - T(2) * w2s * lw[k] * wrow[k] * mbar;
  }
  T zbar = wc * ybar - w2s * dot;
  if (order == 2) zbar -= omega * omega * omega * c * q * mbar;  // l = 0 in the first layer
  return zbar;
}

}  // namespace jet
}  // namespace fastsiren
