// Fully fused inference (render): every layer of the network in one kernel.
//
// A block owns a tile of `points` points and keeps all of their streams (value, and for
// order >= 1 the D derivative streams and the Laplacian) in shared memory through every
// layer: row s * points + p of a tile holds stream s of point p. Per layer it multiplies the
// tile (rows x K) by W^T, staging W in kKChunk-wide slices in shared memory, with a
// register micro-tile of TM rows x up to 8 features per thread (rows ty + 8 i, features
// tx + 32 j: the activation read is a warp-wide broadcast and the weight read is
// conflict-free), adds the bias to the value rows, and applies the jet epilogue in place.
// Only x and the last layer's streams touch device memory.
#include <algorithm>

#include "fastsiren.h"
#include "jet_math.cuh"
#include "launch.cuh"

namespace fastsiren {
namespace {

constexpr int kThreads = 256;  // 8 row groups x 32 feature lanes
constexpr int kKChunk = 32;    // K-slice of W staged in shared memory per step
constexpr int kColTiles = kMaxRenderWidth / 32;

// lw: net.lap (a weighted Laplacian) or UnitWeights (the plain one), see with_lap_weights.
template <typename T, int TM, typename LW>
__global__ void __launch_bounds__(kThreads)
    render_kernel(const RenderNet<T> net, const LW lw, const T* __restrict__ x, int64_t n, int points, int ld,
                  int ldw, T* __restrict__ out) {
  constexpr int kRows = 8 * TM;
  FASTSIREN_DYNAMIC_SHARED(unsigned char, smem_raw, 16);
  T* buf_in = reinterpret_cast<T*>(smem_raw);
  T* buf_out = buf_in + kRows * ld;
  T* wt = buf_out + kRows * ld;

  const int tid = threadIdx.x, tx = tid & 31, ty = tid >> 5;
  const int dim = net.dim, order = net.order;
  const int rows = num_streams(order, dim) * points;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * points;
  const int f_out = net.widths[net.n_layers];
  const int64_t out_stride = n * f_out;
  const int64_t tile_stride = static_cast<int64_t>(points) * ld;

  // Layer 0 from x directly (h = x, J_k = e_k, L = 0): D FMAs per element, no GEMM.
  {
    const int f0 = net.widths[1];
    const T* w = net.weights[0];
    const T* b = net.biases[0];
    const bool last = net.n_layers == 1;
    for (int idx = tid; idx < points * f0; idx += kThreads) {
      const int p = idx / f0, o = idx % f0;
      const int64_t row = n0 + p;
      T wrow[kMaxJetDim];
      T q = T(0), z = b != nullptr ? b[o] : T(0);
#pragma unroll
      for (int k = 0; k < kMaxJetDim; ++k) {
        wrow[k] = k < dim ? w[o * dim + k] : T(0);
        q += lw[k] * wrow[k] * wrow[k];
        if (k < dim && row < n) z += wrow[k] * x[row * dim + k];
      }
      if (!last)
        jet::first_fwd<kMaxJetDim>(z, wrow, q, net.omegas[0], order, dim, buf_in + p * ld + o, tile_stride);
      else if (row < n)
        jet::first_fwd<kMaxJetDim>(z, wrow, q, net.omegas[0], order, dim, out + row * f0 + o, out_stride);
    }
  }
  // No barrier needed here: the next layer first stages W (a disjoint region), and the barrier
  // after that staging orders these writes before any read of the tile.

  for (int l = 1; l < net.n_layers; ++l) {
    const int k_in = net.widths[l], f = net.widths[l + 1];
    const int col_tiles = (f + 31) / 32;
    const T* w = net.weights[l];
    T acc[TM][kColTiles];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < kColTiles; ++j) acc[i][j] = T(0);

    for (int k0 = 0; k0 < k_in; k0 += kKChunk) {
      const int kc = min(kKChunk, k_in - k0);
      // W[:, k0:k0+kc] -> wt[kk][o]: consecutive threads read consecutive k (coalesced).
      for (int idx = tid; idx < kc * f; idx += kThreads) {
        const int o = idx / kc, kk = idx % kc;
        wt[kk * ldw + o] = w[static_cast<int64_t>(o) * k_in + k0 + kk];
      }
      __syncthreads();
      for (int kk = 0; kk < kc; ++kk) {
        T a[TM];
#pragma unroll
        for (int i = 0; i < TM; ++i) a[i] = buf_in[(ty + 8 * i) * ld + k0 + kk];
#pragma unroll
        for (int j = 0; j < kColTiles; ++j) {
          if (j < col_tiles) {
            const T bw = wt[kk * ldw + tx + 32 * j];
#pragma unroll
            for (int i = 0; i < TM; ++i) acc[i][j] += a[i] * bw;
          }
        }
      }
      __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < kColTiles; ++j) {
        const int r = ty + 8 * i, o = tx + 32 * j;
        if (j < col_tiles && r < rows && o < f) buf_out[r * ld + o] = acc[i][j];
      }
    __syncthreads();

    const bool last = l == net.n_layers - 1;
    const T* b = net.biases[l];
    const T omega = net.omegas[l];
    for (int idx = tid; idx < points * f; idx += kThreads) {
      const int p = idx / f, o = idx % f;
      const T bias = b != nullptr ? b[o] : T(0);
      T* e = buf_out + p * ld + o;
      if (!last) {
        jet::layer_fwd(e, tile_stride, bias, omega, order, dim, lw, e, tile_stride);
      } else {
        const int64_t row = n0 + p;
        if (row < n) jet::layer_fwd(e, tile_stride, bias, omega, order, dim, lw, out + row * f + o, out_stride);
      }
    }
    // No barrier needed here either: the next layer reads this tile only after its first
    // W-staging barrier, and writes the other tile only after its last K-chunk's barrier.
    T* tmp = buf_in;
    buf_in = buf_out;
    buf_out = tmp;
  }
}

template <typename T, int TM>
size_t smem_bytes(int ld, int ldw) {
  return (static_cast<size_t>(2 * 8 * TM) * ld + static_cast<size_t>(kKChunk) * ldw) * sizeof(T);
}

template <typename T, int TM>
cudaError_t launch(const RenderNet<T>& net, const T* x, int64_t n, T* out, int ld, int ldw, size_t bytes,
                   cudaStream_t stream) {
  const int points = 8 * TM / num_streams(net.order, net.dim);
  const int64_t blocks = (n + points - 1) / points;
  return with_lap_weights(net.lap, [&](auto weights) {
    using LW = decltype(weights);
    cudaError_t err = cudaFuncSetAttribute(render_kernel<T, TM, LW>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(bytes));
    if (err != cudaSuccess) return err;
    FASTSIREN_LAUNCH(static_cast<unsigned>(blocks), kThreads, bytes, stream, render_kernel<T, TM, LW>)(
        net, weights, x, n, points, ld, ldw, out);
    return cudaGetLastError();
  });
}

}  // namespace

template <typename T>
cudaError_t render_fused(const RenderNet<T>& net, const T* x, int64_t n, T* out, bool* launched,
                         cudaStream_t stream) {
  *launched = false;
  if (net.n_layers < 1 || net.n_layers > kMaxRenderLayers || net.dim < 1 || net.dim > kMaxJetDim ||
      net.order < 0 || net.order > 2)
    return cudaSuccess;
  int fmax = 1;
  for (int l = 1; l <= net.n_layers; ++l) {
    if (net.widths[l] < 1 || net.widths[l] > kMaxRenderWidth) return cudaSuccess;
    fmax = std::max(fmax, net.widths[l]);
  }
  if (n == 0) {
    *launched = true;
    return cudaSuccess;
  }
  const int s = num_streams(net.order, net.dim);
  const int ld = fmax;
  // Odd stride: the transposing store wt[kk * ldw + o] hits 32 different banks.
  const int ldw = ((fmax + 31) / 32) * 32 + 1;

  int device = 0, optin = 0, per_sm = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (err == cudaSuccess)
    err = cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device);
  if (err != cudaSuccess) return err;

  // Prefer the tallest tile (most reuse of each staged weight) that still lets two blocks
  // share an SM (latency hiding); else the tallest tile that fits at all.
  const size_t b8 = smem_bytes<T, 8>(ld, ldw), b4 = smem_bytes<T, 4>(ld, ldw), b2 = smem_bytes<T, 2>(ld, ldw);
  const size_t budget2 = static_cast<size_t>(per_sm) / 2 - 1024;  // 1 KiB reserved per block
  const size_t cap = static_cast<size_t>(optin);
  int tm = 0;
  if (s <= 64 && b8 <= budget2) tm = 8;
  else if (s <= 32 && b4 <= budget2) tm = 4;
  else if (s <= 64 && b8 <= cap) tm = 8;
  else if (s <= 32 && b4 <= cap) tm = 4;
  else if (s <= 16 && b2 <= cap) tm = 2;
  if (tm == 0) return cudaSuccess;
  *launched = true;
  if (tm == 8) return launch<T, 8>(net, x, n, out, ld, ldw, b8, stream);
  if (tm == 4) return launch<T, 4>(net, x, n, out, ld, ldw, b4, stream);
  return launch<T, 2>(net, x, n, out, ld, ldw, b2, stream);
}

template cudaError_t render_fused<float>(const RenderNet<float>&, const float*, int64_t, float*, bool*,
                                         cudaStream_t);
template cudaError_t render_fused<double>(const RenderNet<double>&, const double*, int64_t, double*, bool*,
                                          cudaStream_t);

}  // namespace fastsiren
