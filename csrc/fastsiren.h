// Launcher API of the fastsiren CUDA kernels: plain pointers, no torch headers.
//
// The kernels (csrc/*.cu) are compiled by nvcc without any torch header so that
// `nvcc -c` of each file takes seconds; the torch-facing code (op registration, checks,
// cuBLAS GEMMs through ATen) lives in csrc/bindings.cpp, compiled by the host compiler.
//
// Layout: a jet of N points with F features is stored as *streams* (S, N, F), row-major,
// F fastest: stream 0 the value, streams 1..D the input derivatives, stream D+1 the
// Laplacian (S = 1, 1 + D, 2 + D for orders 0, 1, 2). A layer's "pre" streams are
// (z - b, a_1..a_D, l): the GEMM output before the bias, which goes to stream 0 only.
// An omega <= 0 marks a plain linear layer (the Python side uses None for it).
// Every launcher returns the CUDA error of its launch (cudaSuccess when fine).
// A `rest` argument (null: none; float32 only) asks a forward or adjoint epilogue for its
// output split for 3xTF32 products (tf32.cuh): the output gets the TF32 heads, rest (same
// shape) the remainders.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace fastsiren {

// The first layer's fused kernels keep the D columns of W in registers.
constexpr int kMaxJetDim = 16;
// The fused render kernel: layers it can hold, widest layer, threads per block.
constexpr int kMaxRenderLayers = 16;
constexpr int kMaxRenderWidth = 256;

#if defined(__CUDACC__)
#define FASTSIREN_HOST_DEVICE __host__ __device__
#else
#define FASTSIREN_HOST_DEVICE
#endif

// Streams per point for a jet of `order` in `dim` input dimensions (1, 1 + D, 2 + D).
FASTSIREN_HOST_DEVICE inline int num_streams(int order, int dim) {
  return order == 0 ? 1 : (order == 1 ? 1 + dim : 2 + dim);
}

// The weights c_k of a weighted Laplacian sum_k c_k d2f/dx_k^2 (order 2), passed by value to
// the launchers: q = sum_k c_k a_k^2 in the epilogue, abar_k's term -2 w^2 s c_k a_k Mbar in its
// adjoint. on = false (the default, {}): the plain Laplacian, every c_k = 1. The kernels are
// instantiated for LapWeights (on) and for UnitWeights (off), so the plain Laplacian compiles
// as if there were no weights (with_lap_weights).
template <typename T>
struct LapWeights {
  bool on;
  T c[kMaxJetDim];
  FASTSIREN_HOST_DEVICE T operator[](int k) const { return c[k]; }
};

template <typename T>
struct UnitWeights {
  FASTSIREN_HOST_DEVICE constexpr T operator[](int) const { return T(1); }
};

// launch(weights) with `lw` when it is on, else with UnitWeights (launch: a generic lambda).
template <typename T, typename Launch>
cudaError_t with_lap_weights(const LapWeights<T>& lw, Launch&& launch) {
  return lw.on ? launch(lw) : launch(UnitWeights<T>{});
}

// First layer (h = x, J_k = e_k, L = 0), fused: z = x W^T + b is computed in registers
// (dim <= kMaxJetDim), so no GEMM and nothing is saved for the backward.
//   x (N, D), w (F, D), b (F) or null  ->  post (S, N, F)
template <typename T>
cudaError_t first_layer_fwd(const T* x, const T* w, const T* b, T omega, int64_t n, int dim,
                            int features, int order, LapWeights<T> lw, T* post, T* rest, cudaStream_t stream);

// Backward of first_layer_fwd given the adjoint of its post streams gbar (S, N, F):
//   zbar (N, F) or null (only needed for the gradient w.r.t. x),
//   wbar (F, D) and bbar (F) or null: *accumulated* (atomics): zero them first.
template <typename T>
cudaError_t first_layer_bwd(const T* x, const T* w, const T* b, const T* gbar, T omega, int64_t n,
                            int dim, int features, int order, LapWeights<T> lw, T* zbar, T* wbar, T* bbar,
                            cudaStream_t stream);

// Sine epilogue of a layer whose GEMM gave pre (S, N, F): post = (y, G, M) of fastsiren/jet.py's module docstring.
// sin and cos are computed once per (point, feature); every stream is read and written once.
// post may alias pre.
template <typename T>
cudaError_t sine_fwd(const T* pre, const T* b, T omega, int64_t n, int features, int dim, int order,
                     LapWeights<T> lw, T* post, T* rest, cudaStream_t stream);

// Adjoint epilogue: pbar (S, N, F) = adjoint of the pre streams from gbar, the adjoint of the
// post streams; pbar may alias gbar (in place). bbar (F) or null is *accumulated* (atomics).
template <typename T>
cudaError_t sine_bwd(const T* pre, const T* b, const T* gbar, T omega, int64_t n, int features,
                     int dim, int order, LapWeights<T> lw, T* pbar, T* bbar, T* rest, cudaStream_t stream);

// Elementwise steps of the reverse-mode gradient (grad_ops.cu), on (N, F) tensors, row-major:
//   h = sin z, c = cos z;
//   t = sum_o r_o dbar_o and rbar = dbar c, for o < outs, r[o][row][f] at r + o*r_so + row*r_sn + f
//     (r_sn = 0: a row broadcast), dbar and rbar (outs, N, F);
//   zbar = hbar c - h t, where a null hbar or t drops its term.
template <typename T>
cudaError_t grad_sin_cos(const T* z, int64_t n, int features, T* h, T* c, cudaStream_t stream);
template <typename T>
cudaError_t grad_reverse_adjoint(const T* r, int64_t r_so, int64_t r_sn, const T* dbar, const T* c, int64_t n,
                                 int features, int outs, T* t, T* rbar, cudaStream_t stream);
template <typename T>
cudaError_t grad_forward_adjoint(const T* hbar, const T* c, const T* h, const T* t, int64_t n, int features,
                                 T* zbar, cudaStream_t stream);

// The TF32 split of a 3xTF32 product (tf32_split.cu), n contiguous floats:
//   head = t rounded to the nearest TF32 value, rest = t - head.
cudaError_t tf32_split(const float* t, int64_t n, float* head, float* rest, cudaStream_t stream);

// A whole network for the fused render kernel (passed by value as a kernel argument).
template <typename T>
struct RenderNet {
  int n_layers;
  int dim;                                 // in_features = D
  int order;                               // 0, 1 or 2
  int widths[kMaxRenderLayers + 1];        // widths[0] = D, widths[i + 1] = out of layer i
  const T* weights[kMaxRenderLayers];      // (widths[i + 1], widths[i]) row-major
  const T* biases[kMaxRenderLayers];       // (widths[i + 1]) or null
  T omegas[kMaxRenderLayers];              // <= 0: linear layer
  LapWeights<T> lap;                       // the Laplacian's weights (order 2)
};

// Inference of the whole network in one kernel: a block keeps a tile of points' streams in
// shared memory through every layer and streams each layer's weights through shared memory
// in K-chunks; only x and the output streams touch device memory.
//   x (N, D) -> out (S, N, widths[n_layers]).
// Sets *launched = false (and launches nothing) when the network does not fit the kernel
// (too many layers, a layer wider than kMaxRenderWidth, D > kMaxJetDim, or not enough
// shared memory on this device): the caller then runs the layer-by-layer path.
template <typename T>
cudaError_t render_fused(const RenderNet<T>& net, const T* x, int64_t n, T* out, bool* launched,
                         cudaStream_t stream);

}  // namespace fastsiren
