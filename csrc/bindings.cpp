// Torch custom ops of the CUDA backend (namespace fastsiren_cuda), compiled by the host
// compiler: argument checks with clear messages, the stacked GEMMs through ATen (cuBLAS),
// and the launches of the fused kernels declared in fastsiren.h.
//
//   mlp_fwd(x, weights, biases, omegas, order, save, tf32x3=False) -> (out, saved)
//   mlp_bwd(x, weights, biases, omegas, order, saved, gout, need_x, tf32x3=False)
//       -> (x_grad, w_grads, b_grads)
//   mlp_infer(x, weights, biases, omegas, order) -> out
//   grad_sin_cos(z) -> (h, c); grad_reverse_adjoint(r, dbar, c) -> (t, rbar);
//   grad_forward_adjoint(hbar?, c, h, t?) -> zbar: the elementwise steps of the reverse-mode
//   gradient (csrc/grad_ops.cu, fastsiren/jet.py reverse_grad_function)
//   tf32_split(t) -> (head, rest): the TF32 split of a float32 GEMM operand (csrc/tf32_split.cu),
//   for the 3xTF32 products the Python side makes (fastsiren/jet.py operand)
//
// tf32x3: every float32 GEMM of the op as three TF32 products of split operands (gemm below);
// the caller runs the op with PyTorch's cuBLAS float32 products at TF32
// (fastsiren/cuda_ext.py), which makes them tensor-core products.
//
// x (N, D); weights[i] (F_i, F_{i-1}); biases[i] (F_i) or None; omegas[i] > 0 a sine layer,
// <= 0 a linear one. out (S, N, F_last) holds the output streams (value, D derivatives,
// Laplacian; S = 1, 1 + D, 2 + D for orders 0, 1, 2). saved[i] is what the backward needs
// of layer i (an empty tensor where it needs nothing): the pre streams without bias of a
// sine layer, the post streams of a linear hidden layer, nothing for the fused first layer
// (recomputed from x) or a linear last layer. fastsiren/cuda_ext.py's fake implementations
// mirror these shapes; keep both in step.
//
// Built with -DFASTSIREN_CUDA_EMULATION (fastsiren/cuda_ext.py, FASTSIREN_CUDA_EMULATE=1), the
// same ops take CPU tensors, registered as namespace fastsiren_cuda_emu, and the kernels run
// in the CPU emulation of csrc/emulation/: the CPU test tier of this backend.
// Per-operator ATen headers instead of <ATen/ATen.h>: halves the host compile time.
#define TORCH_ASSERT_ONLY_METHOD_OPERATORS
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>
#if !defined(FASTSIREN_CUDA_EMULATION)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "fastsiren.h"

namespace fastsiren {
namespace {

using OptTensor = std::optional<at::Tensor>;
using BiasList = c10::List<OptTensor>;

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "fastsiren CUDA kernel ", what, " failed: ", cudaGetErrorString(err));
}

bool is_sine(double omega) { return omega > 0.0; }

// A GEMM operand: the tensor, and under tf32x3 (float32 only) its TF32 head and float32 rest
// (csrc/tf32_split.cu), split once however many products read it.
struct Operand {
  at::Tensor t, head, rest;

  bool split() const { return head.defined(); }
  Operand transposed() const {
    return split() ? Operand{t.t(), head.t(), rest.t()} : Operand{t.t(), {}, {}};
  }
  Operand first_rows(int64_t n) const {
    return split() ? Operand{t.narrow(0, 0, n), head.narrow(0, 0, n), rest.narrow(0, 0, n)}
                   : Operand{t.narrow(0, 0, n), {}, {}};
  }
  // (S, N, K) streams as the (S*N, K) rows of a GEMM operand.
  Operand rows(int64_t k) const {
    return split() ? Operand{t.reshape({-1, k}), head.reshape({-1, k}), rest.reshape({-1, k})}
                   : Operand{t.reshape({-1, k}), {}, {}};
  }
};

// An epilogue's output `out` and the remainder buffer it split into (undefined: not split);
// `out` then holds the TF32 heads and is the operand's tensor too.
Operand epilogue_operand(const at::Tensor& out, const at::Tensor& rest) {
  return rest.defined() ? Operand{out, out, rest} : Operand{out, {}, {}};
}

// The remainder buffer of an epilogue that writes `like` split (float32 under tf32x3), else
// an undefined tensor (the epilogue gets a null pointer and splits nothing).
at::Tensor rest_buffer(const at::Tensor& like, bool split) {
  return split && like.scalar_type() == at::kFloat ? at::empty_like(like) : at::Tensor();
}

// A transposed 2-D view is split through its contiguous transpose, anything else through a
// contiguous copy (tf32_split.cu: one pass).
Operand operand(const at::Tensor& t, bool tf32x3, cudaStream_t stream) {
  if (!tf32x3 || t.scalar_type() != at::kFloat) return {t, {}, {}};
  if (!t.is_contiguous() && t.dim() == 2 && t.t().is_contiguous()) {
    return operand(t.t(), tf32x3, stream).transposed();
  }
  const at::Tensor c = t.contiguous();
  at::Tensor head = at::empty_like(c), rest = at::empty_like(c);
  check_launch(tf32_split(c.data_ptr<float>(), c.numel(), head.data_ptr<float>(), rest.data_ptr<float>(), stream),
               "tf32_split");
  return {t, head, rest};
}

// a @ b through ATen (cuBLAS). Split operands (tf32x3): rest x head + head x rest, then
// head x head accumulated onto them, each a TF32 product under the caller's TF32 setting:
// float32's accuracy (about 2^-21 of the product) at tensor-core speed.
at::Tensor gemm(const Operand& a, const Operand& b) {
  if (!a.split() || !b.split()) return at::mm(a.t, b.t);
  at::Tensor out = at::mm(a.rest, b.head);
  out.addmm_(a.head, b.rest);
  out.addmm_(a.head, b.head);
  return out;
}

std::optional<at::Tensor> bias_at(const BiasList& biases, size_t i) {
  OptTensor b = biases.get(i);
  if (b.has_value() && !b->defined()) return std::nullopt;
  return b;
}

#if defined(FASTSIREN_CUDA_EMULATION)
constexpr const char* kDeviceWanted = "a CPU tensor (the CUDA emulation runs on the CPU)";
bool on_kernel_device(const at::Tensor& t) { return t.is_cpu(); }
// Device and stream of the kernels' launches.
struct DeviceScope {
  explicit DeviceScope(const at::Tensor&) {}
  cudaStream_t stream() const { return nullptr; }
};
#else
constexpr const char* kDeviceWanted = "a CUDA tensor";
bool on_kernel_device(const at::Tensor& t) { return t.is_cuda(); }
struct DeviceScope {
  c10::cuda::CUDAGuard guard;
  explicit DeviceScope(const at::Tensor& x) : guard(x.device()) {}
  cudaStream_t stream() const { return c10::cuda::getCurrentCUDAStream().stream(); }
};
#endif

// Error messages hold strings only. Streaming a number into TORCH_CHECK's message (an integer
// through std::ostream's num_put facet) segfaulted inside the JIT-built extension on an H200
// (torch 2.11, CUDA 13; a cuda-gdb backtrace, benchmarks/results/gpu-check/2026-11-28-h200-2),
// while string pieces were fine: numbers go through std::to_string, shapes through shape_str,
// devices and dtypes through their names.
std::string num(int64_t v) { return std::to_string(v); }
std::string num_f(double v) { return std::to_string(v); }

// "(a, b, c)"
std::string shape_str(at::IntArrayRef sizes) {
  std::string out = "(";
  for (size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
  return out + (sizes.size() == 1 ? ",)" : ")");
}

// t on the device and of the dtype of the reference operand x (named `ref` in the messages).
void check_tensor(const at::Tensor& t, const std::string& name, const at::Tensor& x, const std::string& ref = "x") {
  TORCH_CHECK(on_kernel_device(t), name, " must be ", kDeviceWanted, ", got device ", t.device().str());
  TORCH_CHECK(t.device() == x.device(), name, " is on ", t.device().str(), " but ", ref, " is on ", x.device().str(),
              "; use one device");
  TORCH_CHECK(t.scalar_type() == x.scalar_type(), name, " has dtype ", c10::toString(t.scalar_type()), " but ", ref,
              " has ", c10::toString(x.scalar_type()), "; use one dtype");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous (call .contiguous() first)");
}

// The whole network's arguments, checked once at the boundary.
using OptWeights = std::optional<at::ArrayRef<double>>;

void check_net(const at::Tensor& x, at::TensorList weights, const BiasList& biases,
               at::ArrayRef<double> omegas, int64_t order, const OptWeights& lap_weights = std::nullopt) {
  TORCH_CHECK(on_kernel_device(x), "x must be ", kDeviceWanted, ", got device ", x.device().str());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "x must be float32 or float64, got ", c10::toString(x.scalar_type()));
  TORCH_CHECK(x.dim() == 2, "x must have shape (N, in_features), got ", shape_str(x.sizes()));
  TORCH_CHECK(x.is_contiguous(), "x must be contiguous (call .contiguous() first)");
  TORCH_CHECK(order >= 0 && order <= 2, "order must be 0, 1 or 2, got ", num(order));
  TORCH_CHECK(!weights.empty() && weights.size() == biases.size() && weights.size() == omegas.size(),
              "weights, biases and omegas must be non-empty and of equal length, got ", num(weights.size()), ", ",
              num(biases.size()), ", ", num(omegas.size()));
  const int64_t dim = x.size(1);
  TORCH_CHECK(order == 0 || (dim >= 1 && dim <= kMaxJetDim), "jets (order >= 1) of the cuda backend need ",
              "1 <= in_features <= ", num(kMaxJetDim), ", got in_features=", num(dim));
  int64_t fan = dim;
  for (size_t i = 0; i < weights.size(); ++i) {
    const std::string wi = "weights[" + std::to_string(i) + "]";
    const at::Tensor& w = weights[i];
    check_tensor(w, wi, x);
    TORCH_CHECK(w.dim() == 2 && w.size(1) == fan && w.size(0) >= 1, wi, " must have shape (out, ", num(fan),
                "), got ", shape_str(w.sizes()));
    OptTensor b = bias_at(biases, i);
    if (b.has_value()) {
      const std::string bi = "biases[" + std::to_string(i) + "]";
      check_tensor(*b, bi, x);
      TORCH_CHECK(b->dim() == 1 && b->size(0) == w.size(0), bi, " must have shape (", num(w.size(0)), ",), got ",
                  shape_str(b->sizes()));
    }
    fan = w.size(0);
  }
  if (lap_weights.has_value()) {
    TORCH_CHECK(order == 2, "lap_weights weight the Laplacian, which needs order=2, got order=", num(order));
    TORCH_CHECK(static_cast<int64_t>(lap_weights->size()) == dim, "lap_weights must have one weight per input ",
                "dimension (", num(dim), "), got ", num(lap_weights->size()));
    // finite in the network's dtype (a double beyond float's range would overflow the cast)
    const double limit = x.scalar_type() == at::kFloat ? std::numeric_limits<float>::max()
                                                      : std::numeric_limits<double>::max();
    for (size_t k = 0; k < lap_weights->size(); ++k)
      TORCH_CHECK(std::isfinite((*lap_weights)[k]) && std::abs((*lap_weights)[k]) <= limit, "lap_weights[",
                  num(static_cast<int64_t>(k)), "] must be a finite number in the dtype of x, got ",
                  num_f((*lap_weights)[k]));
  }
}

// The Laplacian's weights as the kernels take them (on = false: the plain Laplacian).
template <typename T>
LapWeights<T> lap_weights_of(const OptWeights& lap_weights) {
  LapWeights<T> lw{};
  lw.on = lap_weights.has_value();
  if (lw.on)
    for (size_t k = 0; k < lap_weights->size(); ++k) lw.c[k] = static_cast<T>((*lap_weights)[k]);
  return lw;
}

template <typename T>
const T* ptr_or_null(const OptTensor& t) {
  return t.has_value() ? t->data_ptr<T>() : nullptr;
}

template <typename T>
T* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

// Layer 0 runs the fused first-layer kernels when the input is narrow enough for registers;
// otherwise (order 0 only, checked above) it is an ordinary GEMM + epilogue layer.
bool fused_first(int64_t dim) { return dim <= kMaxJetDim; }

at::Tensor placeholder(const at::Tensor& x) { return at::empty({0}, x.options()); }

// What mlp_fwd saved for layer i, handed back to mlp_bwd: checked before a kernel reads it.
const at::Tensor& checked_saved(at::TensorList saved, size_t i, const at::Tensor& x, int64_t s, int64_t n,
                                int64_t f) {
  const std::string name = "saved[" + std::to_string(i) + "]";
  check_tensor(saved[i], name, x);
  TORCH_CHECK(saved[i].dim() == 3 && saved[i].size(0) == s && saved[i].size(1) == n && saved[i].size(2) == f,
              name, " must have shape (", num(s), ", ", num(n), ", ", num(f), ") as mlp_fwd saved it, got ",
              shape_str(saved[i].sizes()));
  return saved[i];
}

struct Ctx {
  const at::Tensor& x;
  at::TensorList weights;
  const BiasList& biases;
  at::ArrayRef<double> omegas;
  int order;
  int dim;
  int64_t n;
  int s;
  cudaStream_t stream;
  OptWeights lap;  // the Laplacian's weights (lap_weights_of)
};

// The fused first layer's post streams; `split`: written split for 3xTF32 products.
Operand first_post(const Ctx& c, bool split) {
  const at::Tensor& w = c.weights[0];
  OptTensor b = bias_at(c.biases, 0);
  at::Tensor post = at::empty({c.s, c.n, w.size(0)}, c.x.options());
  const at::Tensor rest = rest_buffer(post, split);
  AT_DISPATCH_FLOATING_TYPES(c.x.scalar_type(), "fastsiren_first_layer_fwd", [&] {
    check_launch(first_layer_fwd<scalar_t>(c.x.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(),
                                           ptr_or_null<scalar_t>(b), static_cast<scalar_t>(c.omegas[0]), c.n,
                                           c.dim, static_cast<int>(w.size(0)), c.order,
                                           lap_weights_of<scalar_t>(c.lap), post.data_ptr<scalar_t>(),
                                           ptr_or_null<scalar_t>(rest), c.stream),
                 "first_layer_fwd");
  });
  return epilogue_operand(post, rest);
}

// Post streams of sine layer i from its pre streams (into `post`, which may be `pre`);
// `split`: written split for 3xTF32 products.
Operand sine_post(const Ctx& c, size_t i, const at::Tensor& pre, const at::Tensor& post, bool split) {
  OptTensor b = bias_at(c.biases, i);
  const at::Tensor rest = rest_buffer(post, split);
  AT_DISPATCH_FLOATING_TYPES(c.x.scalar_type(), "fastsiren_sine_fwd", [&] {
    check_launch(sine_fwd<scalar_t>(pre.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(b),
                                    static_cast<scalar_t>(c.omegas[i]), c.n, static_cast<int>(pre.size(2)), c.dim,
                                    c.order, lap_weights_of<scalar_t>(c.lap), post.data_ptr<scalar_t>(),
                                    ptr_or_null<scalar_t>(rest), c.stream),
                 "sine_fwd");
  });
  return epilogue_operand(post, rest);
}

// The input streams of layer i (S, N, F_{i-1}) as the rows of a GEMM operand: x for layer 0
// (order 0), else layer i-1's post streams recomputed from what the forward saved (split by
// their epilogue under tf32x3).
Operand layer_input(const Ctx& c, size_t i, at::TensorList saved, bool tf32x3) {
  const int64_t k = c.weights[i].size(1);
  if (i == 0) return operand(c.x, tf32x3, c.stream);
  const size_t j = i - 1;
  if (j == 0 && fused_first(c.dim)) return first_post(c, tf32x3).rows(k);
  const at::Tensor& kept = checked_saved(saved, j, c.x, c.s, c.n, c.weights[j].size(0));
  if (!is_sine(c.omegas[j])) return operand(kept.reshape({-1, k}), tf32x3, c.stream);
  return sine_post(c, j, kept, at::empty_like(kept), tf32x3).rows(k);
}

std::tuple<at::Tensor, std::vector<at::Tensor>> mlp_fwd(const at::Tensor& x, at::TensorList weights,
                                                        const BiasList& biases, at::ArrayRef<double> omegas,
                                                        int64_t order, bool save, bool tf32x3,
                                                        OptWeights lap_weights) {
  check_net(x, weights, biases, omegas, order, lap_weights);
  const DeviceScope scope(x);
  const int dim = static_cast<int>(x.size(1));
  const Ctx c{x, weights, biases, omegas, static_cast<int>(order), dim, x.size(0),
              num_streams(static_cast<int>(order), dim), scope.stream(), lap_weights};
  const size_t layers = weights.size();
  std::vector<at::Tensor> saved;
  // The post streams of the last layer run; a hidden layer's epilogue writes them split for
  // the next GEMM under tf32x3 (the network's output never is).
  Operand h;
  for (size_t i = 0; i < layers; ++i) {
    const at::Tensor& w = weights[i];
    const bool last = i + 1 == layers;
    if (i == 0 && fused_first(dim)) {
      h = first_post(c, tf32x3 && !last);
      saved.push_back(placeholder(x));
      continue;
    }
    const int64_t k = w.size(1);
    const Operand in = i == 0 ? operand(x, tf32x3, c.stream)
                              : (h.split() ? h.rows(k) : operand(h.t.reshape({-1, k}), tf32x3, c.stream));
    // One GEMM for every stream: (S*N, K) x (K, F).
    at::Tensor pre = gemm(in, operand(w, tf32x3, c.stream).transposed()).view({c.s, c.n, w.size(0)});
    if (is_sine(omegas[i])) {
      h = sine_post(c, i, pre, save ? at::empty_like(pre) : pre, tf32x3 && !last);
      saved.push_back(save ? pre : placeholder(x));
    } else {
      OptTensor b = bias_at(biases, i);
      if (b.has_value()) pre.select(0, 0).add_(*b);
      saved.push_back(save && !last ? pre : placeholder(x));
      h = Operand{pre, {}, {}};
    }
  }
  if (!save) saved.clear();
  return {h.t, saved};
}

std::tuple<at::Tensor, std::vector<at::Tensor>, std::vector<at::Tensor>> mlp_bwd(
    const at::Tensor& x, at::TensorList weights, const BiasList& biases, at::ArrayRef<double> omegas,
    int64_t order, at::TensorList saved, const at::Tensor& gout, bool need_x, bool tf32x3, OptWeights lap_weights) {
  check_net(x, weights, biases, omegas, order, lap_weights);
  const DeviceScope scope(x);
  const int dim = static_cast<int>(x.size(1));
  const Ctx c{x, weights, biases, omegas, static_cast<int>(order), dim, x.size(0),
              num_streams(static_cast<int>(order), dim), scope.stream(), lap_weights};
  const size_t layers = weights.size();
  TORCH_CHECK(saved.size() == layers, "saved must hold one tensor per layer (", num(layers), "), got ",
              num(saved.size()));
  const std::vector<int64_t> gshape{c.s, c.n, weights.back().size(0)};
  check_tensor(gout, "gout", x);
  TORCH_CHECK(gout.sizes() == at::IntArrayRef(gshape), "gout must have shape ", shape_str(gshape),
              ", got ", shape_str(gout.sizes()));

  std::vector<at::Tensor> w_grads(layers), b_grads(layers);
  at::Tensor x_grad = placeholder(x);
  at::Tensor gbar = gout;
  bool owned = false;  // gbar is our own buffer (a GEMM output): the adjoint may overwrite it
  for (size_t step = 0; step < layers; ++step) {
    const size_t i = layers - 1 - step;
    const at::Tensor& w = weights[i];
    OptTensor b = bias_at(biases, i);
    const int f = static_cast<int>(w.size(0));
    if (i == 0 && fused_first(dim)) {
      at::Tensor wbar = at::zeros_like(w);
      at::Tensor bbar = b.has_value() ? at::zeros_like(*b) : placeholder(x);
      at::Tensor zbar = need_x ? at::empty({c.n, f}, x.options()) : at::Tensor();
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastsiren_first_layer_bwd", [&] {
        check_launch(first_layer_bwd<scalar_t>(x.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(),
                                               ptr_or_null<scalar_t>(b), gbar.data_ptr<scalar_t>(),
                                               static_cast<scalar_t>(omegas[0]), c.n, dim, f, c.order,
                                               lap_weights_of<scalar_t>(c.lap),
                                               need_x ? zbar.data_ptr<scalar_t>() : nullptr,
                                               wbar.data_ptr<scalar_t>(),
                                               b.has_value() ? bbar.data_ptr<scalar_t>() : nullptr, c.stream),
                     "first_layer_bwd");
      });
      if (need_x) x_grad = gemm(operand(zbar, tf32x3, c.stream), operand(w, tf32x3, c.stream));
      w_grads[0] = wbar;
      b_grads[0] = bbar;
      break;
    }
    // The adjoints of the pre streams as the rows of a GEMM operand: written split by the
    // sine adjoint epilogue under tf32x3, so both products below read one split.
    Operand p_op;
    at::Tensor bbar = placeholder(x);
    if (is_sine(omegas[i])) {
      const at::Tensor pbar = owned ? gbar : at::empty_like(gbar);
      const at::Tensor rest = rest_buffer(pbar, tf32x3);
      if (b.has_value()) bbar = at::zeros_like(*b);
      const at::Tensor& pre = checked_saved(saved, i, x, c.s, c.n, f);
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastsiren_sine_bwd", [&] {
        check_launch(sine_bwd<scalar_t>(pre.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(b),
                                        gbar.data_ptr<scalar_t>(), static_cast<scalar_t>(omegas[i]), c.n, f, dim,
                                        c.order, lap_weights_of<scalar_t>(c.lap), pbar.data_ptr<scalar_t>(),
                                        b.has_value() ? bbar.data_ptr<scalar_t>() : nullptr,
                                        ptr_or_null<scalar_t>(rest), c.stream),
                     "sine_bwd");
      });
      p_op = epilogue_operand(pbar, rest).rows(f);
    } else {
      if (b.has_value()) bbar = gbar.select(0, 0).sum(0);
      p_op = operand(gbar.reshape({-1, f}), tf32x3, c.stream);
    }
    // Wbar = sum over every stream and point of pbar h^T: one GEMM over the stacked streams.
    w_grads[i] = gemm(p_op.transposed(), layer_input(c, i, saved, tf32x3));
    b_grads[i] = bbar;
    if (i > 0) {
      gbar = gemm(p_op, operand(w, tf32x3, c.stream)).view({c.s, c.n, w.size(1)});
      owned = true;
    } else if (need_x) {
      x_grad = gemm(p_op.first_rows(c.n), operand(w, tf32x3, c.stream));  // the value stream
    }
  }
  return {x_grad, w_grads, b_grads};
}

at::Tensor mlp_infer(const at::Tensor& x, at::TensorList weights, const BiasList& biases,
                     at::ArrayRef<double> omegas, int64_t order, OptWeights lap_weights) {
  check_net(x, weights, biases, omegas, order, lap_weights);
  const DeviceScope scope(x);
  const int dim = static_cast<int>(x.size(1));
  const int64_t layers = static_cast<int64_t>(weights.size());
  at::Tensor out =
      at::empty({num_streams(static_cast<int>(order), dim), x.size(0), weights.back().size(0)}, x.options());
  bool launched = false;
  if (layers <= kMaxRenderLayers && dim <= kMaxJetDim) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastsiren_render_fused", [&] {
      RenderNet<scalar_t> net{};
      net.n_layers = static_cast<int>(layers);
      net.dim = dim;
      net.order = static_cast<int>(order);
      net.lap = lap_weights_of<scalar_t>(lap_weights);
      net.widths[0] = dim;
      for (int64_t i = 0; i < layers; ++i) {
        OptTensor b = bias_at(biases, static_cast<size_t>(i));
        net.widths[i + 1] = static_cast<int>(weights[i].size(0));
        net.weights[i] = weights[i].data_ptr<scalar_t>();
        net.biases[i] = ptr_or_null<scalar_t>(b);
        net.omegas[i] = static_cast<scalar_t>(omegas[i]);
      }
      check_launch(render_fused<scalar_t>(net, x.data_ptr<scalar_t>(), x.size(0), out.data_ptr<scalar_t>(),
                                          &launched, scope.stream()),
                   "render_fused");
    });
  }
  if (launched) return out;
  // Too wide/deep for the fused kernel: the layer-wise path without saving anything.
  return std::get<0>(mlp_fwd(x, weights, biases, omegas, order, false, false, lap_weights));
}

// ------------------------------------------------------------- reverse-mode gradient steps

// An (N, F) operand of the gradient steps, on the device and of the dtype of `like` (named
// `ref`), float32 or float64.
void check_plane(const at::Tensor& t, const std::string& name, const at::Tensor& like, const std::string& ref) {
  check_tensor(t, name, like, ref);
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, name,
              " must be float32 or float64, got ", c10::toString(t.scalar_type()));
  TORCH_CHECK(t.dim() == 2 && t.sizes() == like.sizes(), name, " must have shape ", shape_str(like.sizes()),
              " (N, F), got ", shape_str(t.sizes()));
}

std::tuple<at::Tensor, at::Tensor> grad_sin_cos_op(const at::Tensor& z) {
  TORCH_CHECK(z.dim() == 2, "z must have shape (N, F), got ", shape_str(z.sizes()));
  check_plane(z, "z", z, "z");
  const DeviceScope scope(z);
  at::Tensor h = at::empty_like(z), c = at::empty_like(z);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "fastsiren_grad_sin_cos", [&] {
    check_launch(grad_sin_cos<scalar_t>(z.data_ptr<scalar_t>(), z.size(0), static_cast<int>(z.size(1)),
                                        h.data_ptr<scalar_t>(), c.data_ptr<scalar_t>(), scope.stream()),
                 "grad_sin_cos");
  });
  return {h, c};
}

std::tuple<at::Tensor, at::Tensor> grad_reverse_adjoint_op(const at::Tensor& r, const at::Tensor& dbar,
                                                        const at::Tensor& c) {
  TORCH_CHECK(c.dim() == 2, "c must have shape (N, F), got ", shape_str(c.sizes()));
  check_plane(c, "c", c, "c");
  check_tensor(dbar, "dbar", c, "c");
  TORCH_CHECK(dbar.dim() == 3 && dbar.size(1) == c.size(0) && dbar.size(2) == c.size(1),
              "dbar must have shape (O, ", num(c.size(0)), ", ", num(c.size(1)), "), got ", shape_str(dbar.sizes()));
  // r may be a broadcast (zero strides over N or O); features must be its unit-stride axis.
  TORCH_CHECK(on_kernel_device(r) && r.device() == c.device() && r.scalar_type() == c.scalar_type(),
              "r must be a tensor on ", c.device().str(), " of dtype ", c10::toString(c.scalar_type()));
  TORCH_CHECK(r.sizes() == dbar.sizes(), "r must have the shape of dbar ", shape_str(dbar.sizes()), ", got ",
              shape_str(r.sizes()));
  TORCH_CHECK(r.stride(2) == 1, "r must have unit stride over its last axis (call .contiguous() first)");
  const DeviceScope scope(c);
  at::Tensor t = at::empty_like(c), rbar = at::empty_like(dbar);
  AT_DISPATCH_FLOATING_TYPES(c.scalar_type(), "fastsiren_grad_reverse_adjoint", [&] {
    check_launch(grad_reverse_adjoint<scalar_t>(r.data_ptr<scalar_t>(), r.stride(0), r.stride(1),
                                                dbar.data_ptr<scalar_t>(), c.data_ptr<scalar_t>(), c.size(0),
                                                static_cast<int>(c.size(1)), static_cast<int>(dbar.size(0)),
                                                t.data_ptr<scalar_t>(), rbar.data_ptr<scalar_t>(), scope.stream()),
                 "grad_reverse_adjoint");
  });
  return {t, rbar};
}

at::Tensor grad_forward_adjoint_op(const OptTensor& hbar, const at::Tensor& c, const at::Tensor& h,
                                const OptTensor& t) {
  TORCH_CHECK(c.dim() == 2, "c must have shape (N, F), got ", shape_str(c.sizes()));
  check_plane(c, "c", c, "c");
  check_plane(h, "h", c, "c");
  const bool has_hbar = hbar.has_value() && hbar->defined(), has_t = t.has_value() && t->defined();
  TORCH_CHECK(has_hbar || has_t, "grad_forward_adjoint needs hbar or t");
  if (has_hbar) check_plane(*hbar, "hbar", c, "c");
  if (has_t) check_plane(*t, "t", c, "c");
  const DeviceScope scope(c);
  at::Tensor zbar = at::empty_like(c);
  AT_DISPATCH_FLOATING_TYPES(c.scalar_type(), "fastsiren_grad_forward_adjoint", [&] {
    check_launch(grad_forward_adjoint<scalar_t>(has_hbar ? hbar->data_ptr<scalar_t>() : nullptr,
                                                c.data_ptr<scalar_t>(), h.data_ptr<scalar_t>(),
                                                has_t ? t->data_ptr<scalar_t>() : nullptr, c.size(0),
                                                static_cast<int>(c.size(1)), zbar.data_ptr<scalar_t>(),
                                                scope.stream()),
                 "grad_forward_adjoint");
  });
  return zbar;
}

std::tuple<at::Tensor, at::Tensor> tf32_split_op(const at::Tensor& t) {
  // any layout: a strided operand is split through a contiguous copy
  TORCH_CHECK(on_kernel_device(t), "t must be ", kDeviceWanted, ", got device ", t.device().str());
  TORCH_CHECK(t.scalar_type() == at::kFloat, "t must be float32, got ", c10::toString(t.scalar_type()));
  const DeviceScope scope(t);
  const Operand o = operand(t.contiguous(), true, scope.stream());
  return {o.head, o.rest};
}

void define_ops(torch::Library& m) {
  // lap_weights (order 2): the Laplacian stream is sum_k c_k d2f/dx_k^2 (None: every c_k = 1).
  m.def("mlp_fwd(Tensor x, Tensor[] weights, Tensor?[] biases, float[] omegas, int order, bool save, "
        "bool tf32x3=False, float[]? lap_weights=None) -> (Tensor, Tensor[])");
  m.def("mlp_bwd(Tensor x, Tensor[] weights, Tensor?[] biases, float[] omegas, int order, Tensor[] saved, "
        "Tensor gout, bool need_x, bool tf32x3=False, float[]? lap_weights=None) -> (Tensor, Tensor[], Tensor[])");
  m.def("mlp_infer(Tensor x, Tensor[] weights, Tensor?[] biases, float[] omegas, int order, "
        "float[]? lap_weights=None) -> Tensor");
  m.def("grad_sin_cos(Tensor z) -> (Tensor, Tensor)");
  m.def("grad_reverse_adjoint(Tensor r, Tensor dbar, Tensor c) -> (Tensor, Tensor)");
  m.def("grad_forward_adjoint(Tensor? hbar, Tensor c, Tensor h, Tensor? t) -> Tensor");
  m.def("tf32_split(Tensor t) -> (Tensor, Tensor)");
}

void impl_ops(torch::Library& m) {
  m.impl("mlp_fwd", &mlp_fwd);
  m.impl("mlp_bwd", &mlp_bwd);
  m.impl("mlp_infer", &mlp_infer);
  m.impl("grad_sin_cos", &grad_sin_cos_op);
  m.impl("grad_reverse_adjoint", &grad_reverse_adjoint_op);
  m.impl("grad_forward_adjoint", &grad_forward_adjoint_op);
  m.impl("tf32_split", &tf32_split_op);
}

}  // namespace
}  // namespace fastsiren

#if defined(FASTSIREN_CUDA_EMULATION)
TORCH_LIBRARY(fastsiren_cuda_emu, m) { fastsiren::define_ops(m); }
TORCH_LIBRARY_IMPL(fastsiren_cuda_emu, CPU, m) { fastsiren::impl_ops(m); }
#else
TORCH_LIBRARY(fastsiren_cuda, m) { fastsiren::define_ops(m); }
TORCH_LIBRARY_IMPL(fastsiren_cuda, CUDA, m) { fastsiren::impl_ops(m); }
// CPU tensors reach the same entry points so that the argument checks answer with
// "x must be a CUDA tensor" instead of the dispatcher's generic "could not run" error.
TORCH_LIBRARY_IMPL(fastsiren_cuda, CPU, m) { fastsiren::impl_ops(m); }
#endif
