"""Forward-mode jets of sine MLPs (the ``torch`` backend) and the :class:`Jet` type.

A jet carries, per point, the value ``h``, its input derivatives ``J_k = dh/dx_k`` and its
Laplacian ``L`` forward through the layers, stacked as *streams* in one tensor of shape
``(S, N, F)``: stream 0 is the value, streams 1..D the derivatives, stream D+1 the
Laplacian (S = 1, 1+D, 2+D for orders 0, 1, 2). One GEMM per layer serves every stream.
Per sine layer with frequency w (the report's Method section, fastsiren/report/report.typ):

    z = W h + b      a_k = W J_k      l = W L
    y = sin(w z)     G_k = w c a_k    M = w c l - w^2 s q,   s, c = sin, cos(w z), q = sum a_k^2

(``q = sum_k gamma_k a_k^2`` with ``laplacian_weights`` gamma). The first layer starts from h = x,
J_k = e_k, L = 0: a_k is column k of W and l = 0. The code folds w into the weights
(``W' = w W``, ``b' = w b``, :func:`_scaled`) and works on the scaled streams z' = w z etc.

The backward below is written by hand (not autograd through these ops). Per layer it keeps
the pre-activation streams ``(z, a, l)`` (the first layer: z alone), the post-activation
streams, ``cos(w z)`` and, at order 2, ``q``: about 2S + 1 (N, F) tensors per layer (2S + 2
at order 2), fewer than autograd's graph. On the CPU, recomputing the post-activations would
cost two more transcendental passes per layer (measured slower); the fused kernels recompute
instead, since there it is free in registers.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import queue
import threading
from typing import Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode

from fastsiren.backends import (
    cpu_block_threads,
    cpu_gemm,
    cpu_numpy_trig,
    exporting,
    gemm_precision,
    in_function_transform,
    reverse_grad,
)


class Jet(NamedTuple):
    """Value and input derivatives of a network at N points.

    value: (N, out); grad: (N, out, D) = d value / d x, or None for order 0;
    laplacian: (N, out) = sum_k d2 value / d x_k^2 (``sum_k c_k ...`` with ``laplacian_weights``
    c), or None for order < 2.
    """

    value: torch.Tensor
    grad: torch.Tensor | None
    laplacian: torch.Tensor | None

    def detach(self) -> "Jet":
        """A Jet of the fields detached from autograd (None stays None)."""
        return Jet(*(t.detach() if t is not None else None for t in self))

    def reshape(self, lead: tuple[int, ...]) -> "Jet":
        """Restore leading batch dimensions ``lead`` in place of N."""
        v, g, lap = self
        return Jet(
            v.reshape(*lead, v.shape[-1]),
            None if g is None else g.reshape(*lead, *g.shape[-2:]),
            None if lap is None else lap.reshape(*lead, lap.shape[-1]),
        )


def num_streams(order: int, dim: int) -> int:
    """Streams per point for a jet of ``order`` in ``dim`` input dimensions."""
    return (1, 1 + dim, 2 + dim)[order]


def split_streams(h: torch.Tensor, order: int, dim: int):
    """(S, N, out) output streams -> value (N, out), grad (N, out, D), Laplacian (N, out)."""
    value = h[0]
    # a copy even where the permuted view is contiguous already (D = 1): never a view of h
    grad = h[1:1 + dim].permute(1, 2, 0).clone(memory_format=torch.contiguous_format) if order >= 1 else None
    lap = h[1 + dim].clone() if order == 2 else None
    return (value.clone() if value._base is not None else value), grad, lap


def stack_adjoints(g_value, g_grad, g_lap, order: int, x: torch.Tensor, out: int) -> torch.Tensor:
    """Adjoints of (value, grad, Laplacian) -> (S, N, out) stream adjoints (None -> zeros)."""
    dim = x.shape[1]
    gbar = x.new_empty(num_streams(order, dim), x.shape[0], out)  # one write per stream, no zero pass
    for stream, g in ((gbar[0], g_value), (gbar[1:1 + dim], None if g_grad is None else g_grad.permute(2, 0, 1)),
                      (gbar[1 + dim:], g_lap)):
        if not stream.numel():
            continue
        if g is None:
            stream.zero_()
        else:
            stream.copy_(g)
    return gbar


# ----------------------------------------------------------------------------- products

# TF32 keeps 10 of float32's 23 mantissa bits: round at bit 12, clear bits 0-12.
_TF32_HALF_ULP, _TF32_MASK = 1 << 12, -(1 << 13)


def tf32_split(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(head, rest)`` of a float32 tensor: ``head`` is ``t`` rounded to the nearest TF32
    value (ties away from zero), ``rest = t - head`` exactly (both are float32). A TF32 product
    reads ``head`` without loss and ``rest`` with a relative error of at most 2^-11, and
    ``|rest| <= 2^-11 |t|``, so head x head + head x rest + rest x head misses the exact product
    by about 2^-21 of it (the dropped rest x rest term and the rounding of ``rest``)."""
    if t.dtype != torch.float32:
        raise TypeError(f"tf32_split takes float32 tensors, got {t.dtype}")
    head = ((t.view(torch.int32) + _TF32_HALF_ULP) & _TF32_MASK).view(torch.float32)
    return head, t - head


@contextlib.contextmanager
def tf32_products(enabled: bool = True) -> Iterator[None]:
    """PyTorch's cuBLAS float32 products at TF32 inside the block (unless ``enabled`` is False:
    then the block runs as it is), the previous settings after.

    PyTorch keeps two settings for cuBLAS: the legacy float32 matmul precision (``allow_tf32``,
    ``torch.set_float32_matmul_precision``) and the new per-backend ``fp32_precision``. Since
    torch 2.9 a reader of the legacy one (``allow_tf32``, ``allowTF32CuBLAS()``: TunableOp's
    GEMMs, inductor's cache keys) raises when the two disagree, so both are set together
    (``set_float32_matmul_precision("high")``, the CPU's oneDNN setting kept) and restored after.
    Where TF32 is already on through both, nothing changes; where the caller mixed the two, the
    legacy one is left as it is and only the new one is set."""
    if not enabled:
        yield
        return
    m, mk = torch.backends.cuda.matmul, torch.backends.mkldnn.matmul
    try:
        on = torch._C._get_cublas_allow_tf32()  # reads (and checks) cuBLAS's two settings only
    except RuntimeError:  # the caller mixed them
        on = None
    if on:
        yield
        return
    saved = (m.fp32_precision, mk.fp32_precision)
    if on is None:
        m.fp32_precision = "tf32"
    else:  # readable and off: the legacy setting is "highest"
        torch.set_float32_matmul_precision("high")
        mk.fp32_precision = saved[1]
    try:
        yield
    finally:
        if on is not None:
            torch.set_float32_matmul_precision("highest")
        m.fp32_precision, mk.fp32_precision = saved


def _tf32x3(a: torch.Tensor) -> bool:
    """Whether a product with ``a`` on the left runs as three TF32 products
    (:func:`fastsiren.backends.set_gemm_precision`): float32 on a GPU only."""
    return a.is_cuda and a.dtype == torch.float32 and gemm_precision() == "tf32x3"


class Split:
    """A float32 GEMM operand split once (:func:`tf32_split`) for the 3xTF32 products of
    however many :func:`mm` calls read it (:func:`operand`), or written split by a backend's
    epilogue kernel. Views (``t``, ``reshape``, indexing) apply to both parts;
    :meth:`dense` gives the tensor back exactly (head + rest)."""

    __slots__ = ("head", "rest")

    def __init__(self, head: torch.Tensor, rest: torch.Tensor):
        self.head, self.rest = head, rest

    @property
    def shape(self) -> torch.Size:
        return self.head.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.head.dtype

    @property
    def device(self) -> torch.device:
        return self.head.device

    def t(self) -> "Split":
        return Split(self.head.t(), self.rest.t())

    def reshape(self, *shape) -> "Split":
        return Split(self.head.reshape(*shape), self.rest.reshape(*shape))

    def __getitem__(self, index) -> "Split":
        return Split(self.head[index], self.rest[index])

    def dense(self) -> torch.Tensor:
        return self.head + self.rest


def wants_split(t: torch.Tensor) -> bool:
    """Whether GEMM operands like ``t`` are split (3xTF32 products, float32 on a GPU under
    :func:`fastsiren.backends.set_gemm_precision`): a kernel that writes one may write it
    split already."""
    return _tf32x3(t)


def operand(t: torch.Tensor | Split, split=tf32_split) -> torch.Tensor | Split:
    """``t`` as a GEMM operand: split once by ``split`` (:func:`tf32_split`, or a backend's
    one-pass kernel with its contract) when its products run as 3xTF32, else ``t`` itself
    (a :class:`Split` stays as it is). Pass the result to every :func:`mm` that reads ``t``."""
    if isinstance(t, Split):
        return t
    return Split(*split(t)) if _tf32x3(t) else t


# Smallest CPU product (multiply-adds, N x K x M) that goes through oneDNN (:func:`_onednn`).
CPU_ONEDNN_MIN_MACS = 1_500_000


def _onednn(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None, rule: bool = True,
            blocked: bool = False, into: bool = False, points_inner: bool = False) -> bool:
    """Whether ``a @ b (+ bias)`` runs as oneDNN's inner product
    (:func:`fastsiren.backends.set_cpu_gemm`): float32 CPU operands without an empty
    dimension (oneDNN rejects K = 0), in a product autograd does not record (the op has no
    derivative formula: a recorded product takes ``torch.mm``), of at least
    :data:`CPU_ONEDNN_MIN_MACS` multiply-adds: a oneDNN call has a fixed cost a BLAS one does
    not (the file below: 3.6-10 us more on its five smallest products), so small products (a
    narrow network on a few points, the first layer's K = D or the last layer's M = 1 products
    on a block's points) are faster in BLAS
    (``benchmarks/results/cpu-gemm.json``, the ``small`` rows, 2 threads: under 1.5e6
    multiply-adds BLAS was the faster in 7 of 8 products, from 2e6 oneDNN in 8 of 9, the ninth
    within 2%). Under ``torch.jit.trace`` (which cannot record oneDNN's op) and non-strict
    ``torch.export`` (:func:`fastsiren.backends.exporting`), BLAS; strict export takes the
    ``torch.compile`` path. Then mode ``"onednn"``, and
    ``"auto"`` where nothing may be timed (:func:`_may_time`), answer ``rule``, the caller's
    fixed choice; ``"auto"`` answers what
    :func:`_calibrated` measured for the product's kind (``blocked``: the BLAS side runs in
    blocks of :data:`CPU_GEMM_ROWS` rows, as :func:`rows_mm` does; ``into``: the result goes
    into a given ``out``, which oneDNN fills by a copy; ``points_inner``: the points are the
    inner dimension K, as in a weight gradient, not the rows N). Under ``torch.compile`` the
    op goes through the opaque custom op ``fastsiren::onednn_linear``: inductor's own lowering
    of it fails (torch 2.13)."""
    # cheapest tests first: a small step makes about a hundred products
    if not a.is_cpu or a.dtype != torch.float32 or b.dtype != torch.float32 or not a.numel() or not b.numel():
        return False
    if a.shape[0] * a.shape[1] * b.shape[1] < CPU_ONEDNN_MIN_MACS:
        return False
    if (a.requires_grad or b.requires_grad or (bias is not None and bias.requires_grad)) and torch.is_grad_enabled():
        return False
    mode = cpu_gemm()
    if mode == "blas" or exporting():  # torch.jit.trace cannot record oneDNN's op (its Scalar?[] argument)
        return False
    if mode == "onednn" or not _may_time(a, b):
        return rule
    return _calibrated(a, b, bias, blocked, into, points_inner)


def _may_time(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether mode ``"auto"`` may time a product here: plain eager tensors, outside
    ``torch.compile``, ``torch.func`` transforms, Python dispatch modes (a FlopCounterMode,
    make_fx's tracer: they would see the timing's products) and
    ``torch.use_deterministic_algorithms(True)``, under which the fixed rules hold: a
    timed choice may differ from process to process, and with it the float32 rounding."""
    return _eager(a, b) and not torch.are_deterministic_algorithms_enabled()


def _eager(*tensors: torch.Tensor) -> bool:
    """Plain eager tensors, outside ``torch.compile``, ``torch.func`` transforms and Python
    dispatch modes."""
    return (not torch.compiler.is_compiling() and all(type(t) in _PLAIN for t in tensors)
            and not in_function_transform() and _get_current_dispatch_mode() is None)


_PLAIN = (torch.Tensor, torch.nn.Parameter)

# When the torch backend takes float32 sines and cosines from NumPy (:func:`trig`): from how many
# elements on, per torch thread count (NumPy's ufuncs run on one thread, torch's on all of them;
# below, the checks and conversions cost more than NumPy saves); with another thread count, never.
# ``python -m benchmarks.cpu_trig`` (benchmarks/results/cpu-trig.json, its ``per_call`` rows) times
# both: NumPy's the faster from 16384 elements on one thread and level at 65536 on two.
CPU_NUMPY_TRIG_MIN_ELEMS = {1: 16384, 2: 65536}


def numpy_trig_max_threads() -> int:
    """The most torch threads at which :func:`trig` may take NumPy's functions (0: never)."""
    return max(CPU_NUMPY_TRIG_MIN_ELEMS, default=0)


@functools.cache
def _numpy_bridge() -> bool:
    """Whether this torch build can view its CPU tensors as NumPy arrays (``Tensor.numpy()``;
    a torch built without NumPy support, or against an incompatible NumPy, raises there)."""
    try:
        probe = torch.zeros(2)
        probe.numpy()[0] = 1.0
        return probe[0].item() == 1.0
    except Exception:  # any failure means: take torch's functions
        return False


def numpy_trig(z: torch.Tensor, out: torch.Tensor | None = None) -> bool:
    """Whether :func:`trig` takes NumPy's ufunc for ``z`` (into ``out``): float32 contiguous
    plain CPU tensors that need no gradient, of at least :data:`CPU_NUMPY_TRIG_MIN_ELEMS`
    elements at the current torch thread count (an ``out`` that is an inference tensor only in
    inference mode, where torch would write it too), in eager mode only (not compiled, traced or
    exported, not under torch.func transforms, dispatch or function modes), with
    :func:`fastsiren.backends.cpu_numpy_trig` on and a torch build that shares memory with NumPy."""
    if torch.compiler.is_compiling():  # first: compile traces none of the rest
        return False
    # the cheap tests next (a GPU tensor on the torch backend stops here)
    if not z.is_cpu or z.dtype != torch.float32 or z.numel() < CPU_NUMPY_TRIG_MIN_ELEMS.get(torch.get_num_threads(),
                                                                                          math.inf):
        return False
    tensors = (z,) if out is None else (z, out)
    if not (cpu_numpy_trig() and _eager(*tensors) and not exporting()
            and not torch._C._is_torch_function_mode_enabled() and _numpy_bridge()):  # a function mode must see the op
        return False
    if out is not None and not (out.dtype == torch.float32 and out.is_cpu and out.shape == z.shape
                                and (not out.is_inference() or torch.is_inference_mode_enabled())):
        return False  # (z's dtype and device were tested above)
    return all(t.is_contiguous() and not t.requires_grad and not t.is_neg() for t in tensors)


def trig(fn: str, z: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``sin`` or ``cos`` (``fn``) of ``z``, into ``out`` if given (``out`` may be z itself):
    NumPy's SIMD ufunc where :func:`numpy_trig` allows it (its speed and accuracy beside
    torch's: benchmarks/results/cpu-trig.json), else torch's. Under the profiler NumPy's call
    shows as ``numpy.sin`` / ``numpy.cos``."""
    if not numpy_trig(z, out):
        return getattr(torch, fn)(z) if out is None else getattr(torch, fn)(z, out=out)
    dst = torch.empty_like(z) if out is None else out
    record = (torch.profiler.record_function(f"numpy.{fn}") if torch._C._autograd._profiler_enabled()
              else contextlib.nullcontext())
    # all="ignore": sin(inf) is NaN and sin(1e-40) underflows as in torch, without NumPy's warnings or errors
    with record, np.errstate(all="ignore"):
        getattr(np, fn)(z.numpy(), out=dst.numpy())
    if out is not None:  # written behind torch's back: an autograd saved-tensor check must see it
        torch.autograd.graph.increment_version(out)
    return dst


# Longest points dimension "auto" times (:func:`_calibrated`): a kind's points (a block's rows,
# or the points a weight gradient sums over) are timed at the largest power of two not above
# them, at most this many.
CPU_GEMM_CAL_POINTS = 16384
# Timed rounds per library in a calibration (after one untimed call each), interleaved.
CPU_GEMM_CAL_ROUNDS = 5

# The choices "auto" made, by product kind (:func:`cpu_gemm_calibration`): a plain global
# dict (read in eager mode only), written under a lock so that two threads meeting a new kind
# do not time it against each other
_CPU_GEMM_CHOICE: dict[tuple, dict] = {}
_CPU_GEMM_LOCK = threading.Lock()


def cpu_gemm_calibration() -> list[dict]:
    """The products ``set_cpu_gemm("auto")`` has timed in this process, one dict each: ``shape``
    (n, k, m) as timed (a (n, k) x (k, m)), ``points_inner`` (the points are k, not n),
    ``a_transposed``/``b_transposed`` (a column-major operand), ``bias``, ``blocked`` (BLAS in
    blocks of rows), ``into`` (into a given output), ``threads``, the median seconds
    ``onednn_s`` and ``blas_s`` of the rounds, ``choice``, and ``seconds``, what the
    calibration took."""
    with _CPU_GEMM_LOCK:  # not while another thread adds a kind
        entries = list(_CPU_GEMM_CHOICE.values())
    return [dict(entry) for entry in entries]


def _column_major(t: torch.Tensor) -> bool:
    return t.shape[0] > 1 and t.shape[1] > 1 and t.stride(0) == 1


def _calibrated(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None, blocked: bool, into: bool,
                points_inner: bool) -> bool:
    """Whether oneDNN is the faster library for this kind of product on this host, timed once
    per kind: the widths as they are, the points dimension at the largest power of two not
    above it (at most :data:`CPU_GEMM_CAL_POINTS`), the operands' layouts, the bias, blocked
    BLAS, a given output and the thread count (:func:`_time_libraries`)."""
    n, k, m = a.shape[0], a.shape[1], b.shape[1]
    if points_inner:
        k = min(CPU_GEMM_CAL_POINTS, 1 << (k.bit_length() - 1))
    else:
        n = min(CPU_GEMM_CAL_POINTS, 1 << (n.bit_length() - 1))
    key = (n, k, m, points_inner, _column_major(a), _column_major(b), bias is not None, blocked, into,
           torch.get_num_threads())
    entry = _CPU_GEMM_CHOICE.get(key)
    if entry is None:
        with _CPU_GEMM_LOCK:
            entry = _CPU_GEMM_CHOICE.get(key)
            if entry is None:
                entry = _CPU_GEMM_CHOICE[key] = _time_libraries(*key)
    return entry["choice"] == "onednn"


def _time_libraries(n, k, m, points_inner, a_t, b_t, has_bias, blocked, into, threads) -> dict:
    """Both libraries on random float32 operands of the kind's sizes and layouts,
    :data:`CPU_GEMM_CAL_ROUNDS` interleaved rounds each (alternating which goes first), each
    side as the real call runs it: BLAS in blocks of rows or in one call, and each allocating
    its result unless the kind writes into a given output; medians compared."""
    import statistics
    import time

    start = time.perf_counter()
    f32 = dict(dtype=torch.float32, device="cpu")
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(k, n, generator=gen, **f32).t() if a_t else torch.randn(n, k, generator=gen, **f32)
    b = torch.randn(m, k, generator=gen, **f32).t() if b_t else torch.randn(k, m, generator=gen, **f32)
    bias = torch.randn(m, generator=gen, **f32) if has_bias else None
    given = torch.empty(n, m, **f32) if into else None
    rows = CPU_GEMM_ROWS if blocked else n

    def blas():
        out = given if into or not blocked else torch.empty(n, m, **f32)
        if out is None:  # one call, allocating its result
            return torch.mm(a, b) if bias is None else torch.addmm(bias, a, b)
        for i in range(0, n, rows):
            if bias is None:
                torch.mm(a[i:i + rows], b, out=out[i:i + rows])
            else:
                torch.addmm(bias, a[i:i + rows], b, out=out[i:i + rows])
        return out

    def onednn():
        return _onednn_mm(a, b, bias, given)

    times: dict[str, list[float]] = {"onednn": [], "blas": []}
    with torch.no_grad(), torch.autocast("cpu", enabled=False):
        onednn(), blas()  # untimed: oneDNN builds its primitive on the first call
        for r in range(CPU_GEMM_CAL_ROUNDS):  # each library first in every other round
            for name, fn in (("onednn", onednn), ("blas", blas))[::1 if r % 2 else -1]:
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    return dict(shape=(n, k, m), points_inner=points_inner, a_transposed=a_t, b_transposed=b_t, bias=has_bias,
                blocked=blocked, into=into, threads=threads, onednn_s=med["onednn"], blas_s=med["blas"],
                choice="onednn" if med["onednn"] < med["blas"] else "blas",
                seconds=time.perf_counter() - start)


@torch.library.custom_op("fastsiren::onednn_linear", mutates_args=())
def _onednn_linear(a: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """oneDNN's inner product ``a @ w.T (+ bias)`` as an opaque op under ``torch.compile``."""
    return torch.ops.mkldnn._linear_pointwise(a, w, bias, "none", [], "")


@_onednn_linear.register_fake
def _(a, w, bias):
    return a.new_empty((a.shape[0], w.shape[0]))


def _onednn_mm(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor | None = None):
    """``a @ b (+ bias)`` as oneDNN's inner product (where :func:`_onednn` says it may run)."""
    if torch.compiler.is_compiling():  # eagerly the op itself: a custom op's dispatch costs per call
        r = _onednn_linear(a, b.t(), bias)
    else:
        r = torch.ops.mkldnn._linear_pointwise(a, b.t(), bias, "none", [], "")
    return r if out is None else out.copy_(r)


def mm(a: torch.Tensor | Split, b: torch.Tensor | Split, bias: torch.Tensor | None = None,
       out: torch.Tensor | None = None, onednn: bool | None = True, points_inner: bool = False) -> torch.Tensor:
    """``a @ b`` (plus ``bias``) of 2-D operands at the GEMM precision of
    :func:`fastsiren.backends.set_gemm_precision`: every cuBLAS product of the torch backend,
    of the reverse-mode gradient and of the triton backend's cuBLAS paths comes through here.
    ``tf32x3``: rest x head + head x rest first, then head x head accumulated onto them
    (:func:`tf32_split`; an operand already a :class:`Split` is not split again); three
    tensor-core products for one fp32 one. On the CPU, float32 products run through the
    library of :func:`fastsiren.backends.set_cpu_gemm` (``onednn``: the choice of mode
    ``"onednn"`` for this product, :func:`_onednn`'s ``rule``; None: BLAS in every mode, for a
    caller that has chosen already; ``points_inner``: K counts the points, as in a weight
    gradient)."""
    if not (isinstance(a, Split) or isinstance(b, Split) or _tf32x3(a)):
        if onednn is not None and _onednn(a, b, bias, rule=onednn, into=out is not None, points_inner=points_inner):
            return _onednn_mm(a, b, bias, out)
        return torch.mm(a, b, out=out) if bias is None else torch.addmm(bias, a, b, out=out)
    ah, al = (a.head, a.rest) if isinstance(a, Split) else tf32_split(a)
    bh, bl = (b.head, b.rest) if isinstance(b, Split) else tf32_split(b)
    with tf32_products():
        r = torch.mm(al, bh, out=out) if bias is None else torch.addmm(bias, al, bh, out=out)
        r.addmm_(ah, bl)
        r.addmm_(ah, bh)
    return r


# Rows per block of a CPU product with N rows (:func:`rows_mm`).
CPU_GEMM_ROWS = 2048


def rows_mm(a: torch.Tensor | Split, w: torch.Tensor, bias: torch.Tensor | None = None,
            out: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ w`` (plus ``bias``) for ``a`` (..., K) with many rows and a small ``w`` (K, M),
    through :func:`mm`.

    On the CPU a BLAS product runs in blocks of :data:`CPU_GEMM_ROWS` rows: MKL's single
    (N, K) x (K, M) call with N = 16384 and K = M = 256 ran 8-12% slower than the same rows
    in blocks of 2048 (each block's output stays in cache), measured side by side in the
    Poisson-gradient step (the note of issue 2); oneDNN's ran as fast in one call as in
    blocks. Elsewhere one call. ``out`` (..., M), if given, must be contiguous; without it a
    one-call product returns its own result (no copy).
    """
    lead, k, m = a.shape[:-1], a.shape[-1], w.shape[1]
    a2 = a.reshape(-1, k)
    n = a2.shape[0]
    cpu = not isinstance(a2, Split) and a2.is_cpu
    onednn = cpu and not _tf32x3(a2) and _onednn(a2, w, bias, blocked=True, into=out is not None)  # once, not in mm
    if cpu and not onednn:  # BLAS, in blocks of rows
        if out is None:
            out = torch.empty(*lead, m, dtype=a.dtype, device=a.device)
        o2 = out.view(n, m)
        for i in range(0, n, CPU_GEMM_ROWS):
            mm(a2[i:i + CPU_GEMM_ROWS], w, bias, out=o2[i:i + CPU_GEMM_ROWS], onednn=None)
        return out
    o2 = None if out is None else out.view(n, m)
    return (_onednn_mm(a2, w, bias, o2) if onednn else mm(a2, w, bias, out=o2)).view(*lead, m)


# Narrowest weight gradient (F, K) of a CPU step that goes through oneDNN (:func:`outer_sum`).
CPU_ONEDNN_WGRAD_WIDTH = 256


def outer_sum(a: torch.Tensor | Split, b: torch.Tensor | Split) -> torch.Tensor:
    """``a.t() @ b`` for (N, F) x (N, K) -> (F, K), a weight gradient summed over N points,
    through :func:`mm`.

    With a narrow ``b`` (the first layer's D inputs) MKL's (F, N) x (N, K) product is several
    times slower on a CPU than the transposed (K, N) x (N, F) one (seen in a torch.profiler
    trace of the Poisson-gradient step): compute that and transpose the small result.

    oneDNN reads the transposed (F, N) operand through a copy, which costs more than its
    faster product gains below :data:`CPU_ONEDNN_WGRAD_WIDTH`
    (``benchmarks/results/cpu-gemm.json``, 2 threads: oneDNN's weight gradients ran at
    0.73-0.86x BLAS's speed at width 64, 0.81-1.17x at 128 (the run before it, in git
    history: 0.84-0.86x), 1.45-1.56x at 256 and 512 on a block's 1024 or 2048 points): there
    mode ``"onednn"`` takes BLAS. Mode ``"auto"`` times both (:func:`_calibrated`).
    """
    onednn = min(a.shape[-1], b.shape[-1]) >= CPU_ONEDNN_WGRAD_WIDTH
    if b.shape[-1] < a.shape[-1] and b.shape[-1] <= 16:
        return mm(b.t(), a, onednn=onednn, points_inner=True).t()
    return mm(a.t(), b, onednn=onednn, points_inner=True)


class _Layer(NamedTuple):
    """What the backward of one layer needs: pre-activation streams ``p`` (the first layer
    keeps only z; its derivative streams are the columns of W), post-activation streams
    ``h``, ``c = cos(w z)`` and ``q = sum_k a_k^2`` (None where unused)."""

    p: torch.Tensor | None
    h: torch.Tensor
    c: torch.Tensor | None
    q: torch.Tensor | None


def _scaled(w: torch.Tensor, b: torch.Tensor | None, omega: float | None):
    """Fold omega into the layer: ``omega (W h + b) = (omega W) h + omega b`` costs a pass over
    the (small) weights instead of one over the (N, F) activations."""
    if omega is None:
        return w, b
    return w * omega, (None if b is None else b * omega)


def _layer_forward(h_in: torch.Tensor | None, x: torch.Tensor, ws: torch.Tensor, bs: torch.Tensor | None,
                   omega: float | None, order: int, dim: int, need_z: bool,
                   out: torch.Tensor | None = None, lap_w: torch.Tensor | None = None) -> _Layer:
    """One layer: the stacked GEMM (bias on the value stream only) and the jet epilogue.

    Works on pre-activations scaled by omega (``z' = omega z``, ``a' = omega a``, ...), where
    the epilogue reads ``y = sin z'``, ``G = c a'``, ``M = c l' - s q'``. ``h_in=None`` marks
    the first layer: h = x, J_k = e_k, L = 0, so a'_k is column k of omega W (a (D, 1, F)
    view, no GEMM) and l' = 0. ``ws``, ``bs``: the weights and bias scaled by omega
    (:func:`_scaled`).

    Order 0 keeps z' for the backward (``need_z``), which takes cos z' itself, as autograd's
    sine does: a forward that is not differentiated (an evaluation under grad mode) pays
    for no cosine, and a training step makes the same passes either way. Its h goes into
    ``out`` (n, fo) if given (the network's output; then h is not for the backward).
    ``lap_w`` (D, 1, 1): the Laplacian's weights, ``q = sum_k c_k a_k^2`` (None: all 1).
    """
    first = h_in is None
    if order == 0:
        z = rows_mm(x if first else h_in[0], ws.t(), bs, out=None if omega is not None and need_z else out)
        if omega is None:
            return _Layer(None, z.unsqueeze(0), None, None)
        h = trig("sin", z, out) if need_z else trig("sin", z, z)
        return _Layer(z.unsqueeze(0) if need_z else None, h.unsqueeze(0), None, None)
    n_pts, fo = x.shape[0], ws.shape[0]
    s_count = num_streams(order, dim)
    if first:
        z = rows_mm(x, ws.t(), bs)
        p = z.unsqueeze(0)
        a = ws.t().unsqueeze(1) if order >= 1 else None  # (D, 1, F)
        lap_in = None
    else:
        # one product over the stacked streams; the bias belongs to the value stream alone
        p = rows_mm(h_in, ws.t(), bs if s_count == 1 else None)
        if s_count > 1 and bs is not None:
            p[0].add_(bs)
        z = p[0]
        a = p[1:1 + dim] if order >= 1 else None
        lap_in = p[1 + dim] if order == 2 else None
    if omega is None:  # linear layer: the streams pass through
        if first and order >= 1:
            full = [z.unsqueeze(0), a.expand(dim, n_pts, fo)]
            if order == 2:
                full.append(torch.zeros_like(z).unsqueeze(0))
            return _Layer(p, torch.cat(full, 0), None, None)
        return _Layer(p, p, None, None)
    h = torch.empty(s_count, n_pts, fo, dtype=x.dtype, device=x.device)
    trig("sin", z, h[0])
    c = trig("cos", z)
    q = None
    if order >= 1:
        torch.mul(a, c, out=h[1:1 + dim])
    if order == 2:
        q = (a * a).sum(0) if lap_w is None else (a * a).mul_(lap_w).sum(0)
        lap = h[1 + dim]
        if first:  # l' = 0: M = -s q'
            torch.mul(h[0], q, out=lap).neg_()
        else:
            torch.mul(c, lap_in, out=lap)
            lap.addcmul_(h[0], q, value=-1.0)
    return _Layer(p, h, c, q)


def _layer_adjoint(layer: _Layer, a_first: torch.Tensor | None, gbar: torch.Tensor, omega: float | None,
                   order: int, dim: int, lap_w: torch.Tensor | None = None) -> torch.Tensor:
    """Adjoints of the scaled pre-activation streams (z', a', l') from those of the outputs.

    With z' = omega z etc. (so the omega factors of the report's formulas fold into the weights):
    zbar' = c ybar - s sum_k a'_k Gbar_k - (s l' + c q') Mbar
    abar'_k = c Gbar_k - 2 s c_k a'_k Mbar;   lbar' = c Mbar
    (``c_k`` the Laplacian's weights ``lap_w``, all 1 when None; q' is already weighted).
    """
    if omega is None:
        return gbar
    pbar = torch.empty_like(gbar)
    if order == 0:  # c = cos z' from the kept z' (:func:`_layer_forward`)
        trig("cos", layer.p[0], pbar[0])
        return pbar.mul_(gbar)
    c = layer.c
    torch.mul(gbar[0], c, out=pbar[0])
    a = a_first if a_first is not None else layer.p[1:1 + dim]
    big = gbar[1:1 + dim]
    s = layer.h[0]
    pbar[0].addcmul_(s, (a * big).sum(0), value=-1.0)
    torch.mul(big, c, out=pbar[1:1 + dim])
    if order == 2:
        mbar = gbar[1 + dim]
        if a_first is None:
            coef = s * layer.p[1 + dim]
            coef.addcmul_(c, layer.q)
        else:  # first layer: l' = 0
            coef = c * layer.q
        pbar[0].addcmul_(coef, mbar, value=-1.0)
        pbar[1:1 + dim].addcmul_(a if lap_w is None else a * lap_w, s * mbar, value=-2.0)
        torch.mul(mbar, c, out=pbar[1 + dim])
    return pbar


# Points per block of a network pass on the CPU: at least CPU_BLOCK_ROWS, and as many as make
# CPU_BLOCK_ELEMS (points x width) per stream; half as many with more than one stream
# (:func:`_point_blocks`).
CPU_BLOCK_ROWS = 1024
CPU_BLOCK_ELEMS = 1 << 18


def _point_blocks(n_pts: int, device: torch.device, streams: int = 1, width: int = 0) -> list[slice]:
    """Point blocks of a network pass (a jet, or the reverse-mode gradient) whose widest layer
    has ``width`` features. On the CPU a block runs through every layer (in the backward,
    every adjoint) before the next block starts, so what a step reads right after it was
    written (pre-activations, adjoints) is still in cache and only what the backward keeps goes
    to memory; the weight gradients sum over the blocks. A block has
    ``max(CPU_BLOCK_ROWS, CPU_BLOCK_ELEMS // width)`` points with one stream, half as many with
    ``streams`` > 1: 4096 points at width 64, 2048 at 128, 1024 from 256 up. Narrow layers take
    more points because every operation of a block carries a fixed cost (a product's setup,
    an elementwise call, Python). ``python -m benchmarks.cpu_blocks`` times whole training
    steps at each forced block size and under this rule, interleaved
    (``benchmarks/results/cpu-blocks.json``, 2 threads, 8192 points, fit, poisson-grad and
    poisson-laplacian at widths 64-512): the rule's step took 0.98-1.08x the fastest block's
    time in every row, where the slowest fixed size took up to 1.93x. On a GPU one block: a
    kernel per layer over all points."""
    if device.type != "cpu":
        step = n_pts
    else:
        step = max(CPU_BLOCK_ROWS, CPU_BLOCK_ELEMS // width if width > 0 else 0) // min(streams, 2)
    step = max(step, 1)
    return [slice(i, min(i + step, n_pts)) for i in range(0, n_pts, step)] or [slice(0, 0)]


def _accumulate(acc: list, i: int, t: torch.Tensor) -> None:
    acc[i] = t if acc[i] is None else acc[i].add_(t)


# Fewest layers of a pass whose point blocks run side by side (:func:`_block_shares`). A one-layer
# pass (one product and one sine per block) ran slower side by side than one block at a time on
# the benchmarks' 2-core AMD EPYC (benchmarks/results/layer.csv, 2 threads, commit cc4022eeb6:
# forward 22.0 ms against torch+serial's 15.8, forward+backward 66.6 against 50.2), while the
# five-layer training steps and render ran faster (fit, poisson-grad, poisson-laplacian, render
# .csv, the rows of the torch and torch+serial providers); 4 lies between the two.
CPU_BLOCK_THREADS_MIN_LAYERS = 4


def _block_shares(n_blocks: int, x: torch.Tensor, n_layers: int) -> list[range]:
    """The point blocks (indices) each thread runs (:func:`_run_shares`). On the CPU with
    ``T = torch.get_num_threads() > 1``, :func:`fastsiren.backends.cpu_block_threads` on, at
    least :data:`CPU_BLOCK_THREADS_MIN_LAYERS` layers and at least 2 blocks per share:
    ``min(T, n_blocks // 2)`` contiguous shares of as equal a size as they can be. Only in plain
    eager mode (:func:`_eager`, tested first: under ``torch.compile`` nothing else here is
    traced), and not under autocast, a ``TorchFunctionMode`` (``torch.device`` as a context
    included) or the profiler, whose per-thread state the workers would not have; otherwise one
    share of every block."""
    one = [range(n_blocks)]
    if not (x.is_cpu and n_blocks >= 4 and n_layers >= CPU_BLOCK_THREADS_MIN_LAYERS and _eager(x)):
        return one
    if (not cpu_block_threads() or torch.is_autocast_enabled("cpu") or torch._C._is_torch_function_mode_enabled()
            or torch._C._autograd._profiler_enabled()):
        return one
    workers = min(torch.get_num_threads(), n_blocks // 2)
    if workers < 2:
        return one
    return [range(k * n_blocks // workers, (k + 1) * n_blocks // workers) for k in range(workers)]


def _run_shares(shares: list[range], work) -> list:
    """``[work(share) for share in shares]``, each share on its own thread with
    ``T // len(shares)`` threads for its ops (``torch.set_num_threads`` there; the calling
    thread runs the first share and gets its thread count T back at the end). Point blocks are
    independent until their weight gradients are summed, so threads running whole blocks side
    by side keep each core busy through the elementwise passes, the small products and the
    Python between them, where one block at a time with T-thread ops waits on every op's
    slowest thread. The other shares go to persistent worker threads (:func:`_block_workers`):
    a thread started per call would set up its thread-local state (oneDNN's and MKL's) every
    time. The workers run with the caller's grad and inference modes; the first error of any
    share is raised here after every share has finished (a Ctrl-C while waiting leaves the
    workers to finish their jobs into tensors nobody reads)."""
    if len(shares) == 1:
        return [work(shares[0])]
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()
    threads = torch.get_num_threads()
    each = max(1, threads // len(shares))
    out: list = [None] * len(shares)
    errors: list[BaseException | None] = [None] * len(shares)
    done = [threading.Event() for _ in shares[1:]]

    def job(k: int) -> None:
        try:
            torch.set_num_threads(each)
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                out[k] = work(shares[k])
        except BaseException as exc:  # handed to the calling thread
            errors[k] = exc
        finally:
            done[k - 1].set()

    try:
        for k, worker in enumerate(_block_workers(len(shares) - 1), 1):
            worker.put(functools.partial(job, k))
        torch.set_num_threads(each)
        try:
            out[0] = work(shares[0])
        except BaseException as exc:
            errors[0] = exc
        for event in done:
            event.wait()
    finally:
        torch.set_num_threads(threads)
    for exc in errors:
        if exc is not None:
            raise exc
    return out


_BLOCK_WORKERS: list[queue.SimpleQueue] = []
_BLOCK_WORKERS_LOCK = threading.Lock()


def _block_workers(n: int) -> list[queue.SimpleQueue]:
    """The job queues of ``n`` persistent daemon threads that run point-block shares
    (:func:`_run_shares`), started on first use; two callers at once share them (their jobs
    queue up)."""
    with _BLOCK_WORKERS_LOCK:
        while len(_BLOCK_WORKERS) < n:
            jobs: queue.SimpleQueue = queue.SimpleQueue()
            threading.Thread(target=_serve, args=(jobs,), name=f"fastsiren-blocks-{len(_BLOCK_WORKERS) + 1}",
                             daemon=True).start()
            _BLOCK_WORKERS.append(jobs)
        return _BLOCK_WORKERS[:n]


def _forget_block_workers() -> None:
    """In a forked child: the workers' threads did not come along, so start new ones on demand."""
    global _BLOCK_WORKERS_LOCK
    _BLOCK_WORKERS.clear()
    _BLOCK_WORKERS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_block_workers)


def _serve(jobs: queue.SimpleQueue) -> None:
    while True:
        try:
            jobs.get()()
        except BaseException:  # noqa: BLE001 - a job reports its own errors; the worker must live on
            pass


def _sum_shares(parts: list[list[torch.Tensor | None]]) -> list[torch.Tensor | None]:
    """Per index, the sum of the shares' gradient terms (None where no share has one), added
    in share order."""
    total = list(parts[0])
    for part in parts[1:]:
        for i, t in enumerate(part):
            if t is not None:
                _accumulate(total, i, t)
    return total


def autocast_off(fn):
    """``fn`` run with autocast off on each device type where it is on: the fused backends
    compute in the parameters' dtype whatever the autocast (their products already do), and
    some of torch's ops fail under an autocast of the other half dtype (``torch.cat`` of float16
    tensors under a CPU bfloat16 autocast: "Unexpected floating ScalarType"). For the
    ``forward`` and ``backward`` of every backend's autograd Function."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        cpu, cuda = torch.is_autocast_enabled("cpu"), torch.is_autocast_enabled("cuda")
        if not (cpu or cuda):
            return fn(*args, **kwargs)
        # plain `with` statements, which torch.compile traces (fullgraph), not an ExitStack
        with (torch.autocast("cpu", enabled=False) if cpu else contextlib.nullcontext()), \
                (torch.autocast("cuda", enabled=False) if cuda else contextlib.nullcontext()):
            return fn(*args, **kwargs)
    return run


class _MLPJetFunction(torch.autograd.Function):
    """Whole-network jet with the hand-written backward of the report's Method section, in
    point blocks on the CPU (:func:`_point_blocks`). ``params``: the weights, the biases and,
    for a weighted Laplacian, its D weights as a tuple of floats at the end."""

    @staticmethod
    @autocast_off
    def forward(ctx, x, order, omegas, n_layers, save, *params):
        weights = params[:n_layers]
        biases = params[n_layers:2 * n_layers]
        ctx.lap_weights = params[2 * n_layers] if len(params) > 2 * n_layers else None
        lap_w = None if ctx.lap_weights is None else torch.tensor(
            ctx.lap_weights, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        dim = x.shape[1]
        blocks = _point_blocks(x.shape[0], x.device, num_streams(order, dim), max(w.shape[0] for w in weights))
        scaled = [_scaled(w, b, om) for w, b, om in zip(weights, biases, omegas)]
        # order 0: every block's last layer writes its rows of the output
        value = x.new_empty(x.shape[0], weights[-1].shape[0]) if order == 0 else None
        def forward_share(share: range) -> list[list[_Layer]]:
            runs = []
            for j in share:
                rows = blocks[j]
                layers: list[_Layer] = []
                h, xb = None, x[rows]
                for i, ((ws, bs), om) in enumerate(zip(scaled, omegas)):
                    out = value[rows] if value is not None and i == n_layers - 1 else None
                    layer = _layer_forward(h, xb, ws, bs, om, order, dim, need_z=save, out=out, lap_w=lap_w)
                    if save:
                        layers.append(layer)
                    h = layer.h
                # without a backward only the last layer's streams (the outputs) are kept: a block's
                # activations are freed as the next layer consumes them, and no block keeps them
                runs.append(layers if save else [layer])
            return runs

        runs = [r for part in _run_shares(_block_shares(len(blocks), x, n_layers), forward_share) for r in part]
        ctx.order, ctx.omegas, ctx.n_layers, ctx.dim, ctx.blocks = order, omegas, n_layers, dim, blocks
        ctx.lap_w = lap_w
        ctx.set_materialize_grads(False)  # an unused output's adjoint is None (network_grads)
        ctx.has_bias = tuple(b is not None for b in biases)
        # The cache goes through save_for_backward, not a ctx attribute: autograd frees it right
        # after a backward (unless retain_graph=True), while the outputs may live on. At order
        # 0 the backward never reads the last layer's h, which is the output: it is not kept.
        if order == 0:
            runs = [[*layers[:-1], layers[-1]._replace(h=None)] for layers in runs]
        flat = [t for layers in runs for layer in layers for t in layer] if save else []
        ctx.save_for_backward(x, *weights, *[b for b in biases if b is not None], *flat)
        if order == 0:
            return value, None, None
        return _gather_streams([layers[-1].h for layers in runs], order, dim)

    @staticmethod
    @autocast_off
    def backward(ctx, g_value, g_grad, g_lap):
        order, omegas, n, dim = ctx.order, ctx.omegas, ctx.n_layers, ctx.dim
        x, weights, biases, rest = unpack_saved(ctx)
        if backward_by_autograd(g_value, g_grad, g_lap):
            # Double backward (create_graph=True) or batched adjoints: differentiate a
            # recomputation by autograd.
            return double_backward_fallback(ctx, x, weights, biases, g_value, g_grad, g_lap)
        flat = iter(rest)
        runs = [[_Layer(*(next(flat) for _ in _Layer._fields)) for _ in range(n)] for _ in ctx.blocks]

        wss = [w if om is None else w * om for w, om in zip(weights, omegas)]
        need_b = [b is not None and ctx.needs_input_grad[5 + n + i] for i, b in enumerate(biases)]
        need_x = ctx.needs_input_grad[0]
        # every block's first layer writes its rows of the input's adjoint
        x_grad = x.new_empty(x.shape) if need_x else None
        value_only = order == 0 and g_value is not None  # the one stream is the value's adjoint
        if value_only:
            g_value = g_value.contiguous()  # read in place below: the backward never writes a gbar

        def backward_share(share: range) -> list[torch.Tensor | None]:
            w_part: list[torch.Tensor | None] = [None] * n
            b_part: list[torch.Tensor | None] = [None] * n
            for j in share:
                rows, layers = ctx.blocks[j], runs[j]
                if value_only:  # no stack, no copy
                    gbar = g_value[rows].unsqueeze(0)
                else:
                    gs = [None if g is None else g[rows] for g in (g_value, g_grad, g_lap)]
                    gbar = stack_adjoints(*gs, order, x[rows], weights[-1].shape[0])
                _jet_backward_block(layers, gbar, x[rows], wss, omegas, order, dim, w_part, b_part, need_b,
                                    None if x_grad is None else x_grad[rows], ctx.lap_w)
            return w_part + b_part  # the weights' terms, then the biases'

        grads = _sum_shares(_run_shares(_block_shares(len(ctx.blocks), x, n), backward_share))
        w_grads, b_grads = grads[:n], grads[n:]
        for i, om in enumerate(omegas):  # back from the scaled weights W' = omega W
            scale = 1.0 if om is None else om
            w_grads[i].mul_(scale)
            if b_grads[i] is not None:
                b_grads[i].mul_(scale)
        return network_grads(x_grad, w_grads, b_grads, omegas, g_value) + lap_slot(ctx)


def _gather_streams(hs: list[torch.Tensor], order: int, dim: int):
    """The outputs (value, grad, Laplacian) of blocks' (S, n, out) output streams, one copy
    each (a custom Function's output may not be a view of what it keeps; ``torch.cat`` copies
    a single block too)."""
    value = torch.cat([h[0] for h in hs])
    grad = torch.cat([h[1:1 + dim].permute(1, 2, 0) for h in hs]) if order >= 1 else None
    lap = torch.cat([h[1 + dim] for h in hs]) if order == 2 else None
    return value, grad, lap


def _jet_backward_block(layers, gbar, x, wss, omegas, order, dim, w_grads, b_grads, need_b, x_grad, lap_w):
    """The backward of one block's points from its output stream adjoints ``gbar`` (read, never
    written): adds its (scaled) weight and bias gradients into ``w_grads``/``b_grads`` and
    writes the adjoint of its inputs into ``x_grad`` (the block's rows; None: not needed)."""
    for i in range(len(wss) - 1, -1, -1):
        ws, om = wss[i], omegas[i]
        a_first = ws.t().unsqueeze(1) if (i == 0 and order >= 1) else None
        pbar = _layer_adjoint(layers[i], a_first, gbar, om, order, dim, lap_w)
        if need_b[i]:
            _accumulate(b_grads, i, pbar[0].sum(0))
        if i == 0:
            wg = outer_sum(pbar[0], x)
            if order >= 1:
                wg += pbar[1:1 + dim].sum(1).t()
            _accumulate(w_grads, 0, wg)
            if x_grad is not None:
                rows_mm(pbar[0], ws, out=x_grad)
            return
        h = layers[i - 1].h
        fo = pbar.shape[-1]
        _accumulate(w_grads, i, outer_sum(pbar.reshape(-1, fo), h.reshape(-1, h.shape[-1])))
        gbar = rows_mm(pbar, ws)


class GradOps:
    """The elementwise steps of the reverse-mode gradient (:func:`reverse_grad_function`) as
    torch ops. The triton and cuda backends pass fused kernels with the same contracts; the
    GEMMs stay cuBLAS products (:func:`mm`, at the GEMM precision) in every backend.

    ``r`` (O, N, F) may be a broadcast view (stride 0 over N) with unit stride over F; every
    other argument is contiguous. A function may overwrite the arguments it says it may.
    """

    # (head, rest) of a float32 GEMM operand for 3xTF32 products (:func:`operand`)
    split = staticmethod(tf32_split)

    @staticmethod
    def sin_cos(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sin z, cos z)`` of the scaled pre-activations z (N, F); may reuse z's memory."""
        c = trig("cos", z)
        return trig("sin", z, z), c

    @staticmethod
    def reverse_adjoint(r: torch.Tensor, dbar: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``t = sum_o r_o dbar_o`` (N, F) and ``rbar = dbar c`` (O, N, F); may overwrite dbar."""
        t = r[0] * dbar[0] if r.shape[0] == 1 else (r * dbar).sum(0)
        return t, dbar.mul_(c)

    @staticmethod
    def forward_adjoint(hbar: torch.Tensor | None, c: torch.Tensor, h: torch.Tensor, t: torch.Tensor | None,
                        own_hbar: bool) -> torch.Tensor:
        """``zbar = hbar c - h t`` (N, F), a term left out where its tensor is None (not both);
        may overwrite t, and hbar when ``own_hbar``."""
        if hbar is None:
            return t.mul_(h).neg_()
        zbar = hbar.mul_(c) if own_hbar else hbar * c
        return zbar if t is None else zbar.addcmul_(h, t, value=-1.0)


def _grad_forward_block(ops, x, wss, bss, omegas, n_out):
    """Forward and reverse pass of the points ``x``: the backward's cache (hs, cs, rs), the
    value (N, O) and the gradient r_0 (O, N, D). The products ``d_i = r_i c_i`` are not kept:
    the backward reads r_i and c_i anyway and recomputes d_i from them in cache, which saves
    writing and reading back one (N, F) tensor per layer."""
    n_pts, n_layers = x.shape[0], len(wss)
    hs, cs = [x], []
    h = x
    for ws, bs, om in zip(wss, bss, omegas):
        z = rows_mm(operand(h, ops.split), ws.t(), bs)
        h, c = (z, None) if om is None else ops.sin_cos(z)
        hs.append(h)
        cs.append(c)
    eye = torch.eye(n_out, dtype=x.dtype, device=x.device).unsqueeze(1)
    r = eye.expand(n_out, n_pts, n_out)
    rs = [None] * n_layers
    for i in range(n_layers - 1, -1, -1):
        rs[i] = r
        if i == n_layers - 1 and cs[i] is None:  # e_o W' is row o of W': a broadcast, no GEMM
            r = wss[i].unsqueeze(1).expand(n_out, n_pts, wss[i].shape[1])
        else:
            r = rows_mm(operand(r if cs[i] is None else r * cs[i], ops.split), wss[i])
    return (hs, cs, rs), hs[-1], r


def _grad_forward(ctx, ops, x, order, omegas, n_layers, save, params):
    weights, biases = params[:n_layers], params[n_layers:]
    n_out = weights[-1].shape[0]
    wss, bss = zip(*(_scaled(w, b, om) for w, b, om in zip(weights, biases, omegas)))
    blocks = _point_blocks(x.shape[0], x.device, 1, max(w.shape[0] for w in weights))

    def forward_share(share: range) -> list[tuple]:
        runs = []
        for j in share:  # without a backward a block's cache is dropped at once, not kept to the end
            cache, value, grad = _grad_forward_block(ops, x[blocks[j]], wss, bss, omegas, n_out)
            runs.append((cache if save else None, value, grad))
        return runs

    runs = [r for part in _run_shares(_block_shares(len(blocks), x, n_layers), forward_share) for r in part]
    ctx.omegas, ctx.n_layers, ctx.order, ctx.blocks = omegas, n_layers, order, blocks
    ctx.set_materialize_grads(False)  # an unused output's adjoint is None (network_grads)
    ctx.has_bias = tuple(b is not None for b in biases)
    # The cache (scaled weights; per block hs, cs, rs) goes through save_for_backward, not a
    # ctx attribute: autograd frees it right after a backward (unless retain_graph=True),
    # while the outputs may live on (a training loop holds the last loss into the next step).
    flat = [*wss, *(t for run in runs for part in run[0] for t in part)] if save else []
    ctx.save_for_backward(x, *weights, *[b for b in biases if b is not None], *flat)
    # Fresh outputs (copies of N x O values), not the saved hs[-1].
    value = torch.cat([run[1] for run in runs]) if len(runs) > 1 else runs[0][1].clone()
    grad = torch.cat([run[2] for run in runs], 1) if len(runs) > 1 else runs[0][2]
    return value, grad.permute(1, 0, 2).clone(memory_format=torch.contiguous_format), None


def _grad_backward_block(ops, cache, wss, g_value, g_grad, w_grads, b_grads, has_bias, need_x):
    """The backward of one block's points: adds its weight and bias gradients into
    ``w_grads`` and ``b_grads`` (scaled weights; None until a first term) and returns the
    adjoint of its inputs (or None when ``need_x`` is False). An operand of two products is
    split once for both under 3xTF32 (:func:`operand`)."""
    hs, cs, rs = cache
    n = len(wss)
    t_extra: list[torch.Tensor | None] = [None] * n  # sum_o r_i dbar_i: z' gets -sin(z') t
    if g_grad is not None:
        rbar = g_grad.permute(1, 0, 2)  # (O, N, D): adjoint of r_0
        for i in range(n):  # the adjoint of the reverse pass runs first layer -> last
            fo, fi = wss[i].shape
            rbar_op = operand(rbar.contiguous(), ops.split)
            dbar = rows_mm(rbar_op, wss[i].t())
            if i == n - 1 and cs[i] is None:  # d = e_o: row o of the gradient is sum_n rbar_o
                _accumulate(w_grads, i, rbar.sum(1))
            else:
                d = rs[i] if cs[i] is None else rs[i] * cs[i]
                d_op = operand(d.reshape(-1, fo), ops.split)
                _accumulate(w_grads, i, outer_sum(d_op, rbar_op.reshape(-1, fi)))
            if cs[i] is None:
                rbar = dbar
                continue
            t_extra[i], rbar = ops.reverse_adjoint(rs[i], dbar, cs[i])
    hbar = g_value
    for i in range(n - 1, -1, -1):  # the adjoint of the forward pass
        if hbar is None and t_extra[i] is None:
            continue
        if cs[i] is None:
            zbar = hbar
        else:  # hbar is ours below the last layer (a GEMM output)
            zbar = ops.forward_adjoint(hbar, cs[i], hs[i + 1], t_extra[i], own_hbar=i < n - 1)
        zbar_op = operand(zbar, ops.split)
        _accumulate(w_grads, i, outer_sum(zbar_op, operand(hs[i], ops.split)))
        if has_bias[i]:
            _accumulate(b_grads, i, zbar.sum(0))
        hbar = rows_mm(zbar_op, wss[i]) if (i > 0 or need_x) else None
    return hbar if need_x else None


def _grad_backward(ctx, ops, g_value, g_grad, g_lap):
    omegas, n = ctx.omegas, ctx.n_layers
    x, weights, biases, rest = unpack_saved(ctx)
    if backward_by_autograd(g_value, g_grad, g_lap):
        return double_backward_fallback(ctx, x, weights, biases, g_value, g_grad, g_lap)
    wss, flat = rest[:n], iter(rest[n:])
    caches = [tuple([next(flat) for _ in range(k)] for k in (n + 1, n, n)) for _ in ctx.blocks]
    need_x = ctx.needs_input_grad[0]

    def backward_share(share: range) -> tuple[list, list]:
        w_part: list[torch.Tensor | None] = [None] * n
        b_part: list[torch.Tensor | None] = [None] * n
        x_part = [_grad_backward_block(ops, caches[j], wss, None if g_value is None else g_value[ctx.blocks[j]],
                                       None if g_grad is None else g_grad[ctx.blocks[j]], w_part, b_part,
                                       ctx.has_bias, need_x) for j in share]
        return w_part + b_part, x_part

    parts = _run_shares(_block_shares(len(ctx.blocks), x, n), backward_share)
    grads = _sum_shares([g for g, _ in parts])
    w_grads, b_grads = grads[:n], grads[n:]
    x_grads = [t for _, x_part in parts for t in x_part]
    for i, om in enumerate(omegas):  # back from the scaled weights W' = omega W
        scale = 1.0 if om is None else om
        w_grads[i] = torch.zeros_like(weights[i]) if w_grads[i] is None else w_grads[i].mul_(scale)
        if biases[i] is not None:
            b_grads[i] = torch.zeros_like(biases[i]) if b_grads[i] is None else b_grads[i].mul_(scale)
    x_grad = (torch.cat(x_grads) if len(x_grads) > 1 else x_grads[0]) if need_x else None
    return network_grads(x_grad, w_grads, b_grads, omegas, g_value)


def reverse_grad_function(ops, name: str) -> type[torch.autograd.Function]:
    """Value and input gradient (order 1) by a hand-written reverse pass, differentiated by hand,
    with the elementwise steps of ``ops`` (:class:`GradOps` or a backend's fused kernels).

    Forward mode carries 1 + D streams (3 (1 + D) products of N rows per hidden layer with the
    backward); a reverse pass carries one stream per output channel O (3 + 3 O). With fewer
    outputs than input dimensions (a gray image in 2-D: O = 1 < D = 2) reverse is cheaper,
    and every backend's ``mlp_jet`` picks it (:func:`use_reverse_grad`). With scaled
    pre-activations ``z' = omega (W h + b)`` and ``W' = omega W``: ``h = sin z'``; reverse pass
    ``d_i = r_i cos z'_i``, ``r_{i-1} = d_i W'_i``, ``r_L = e_o``; the gradient is ``r_0``. Per
    hidden layer the forward makes 2 GEMMs (z'; r_{i-1}, of O N rows), ``ops.sin_cos`` and the
    product ``d_i``; the backward 4 GEMMs (from the adjoint of r_{i-1}: that of d_i and a weight
    gradient; from the adjoint of z': a weight gradient and the adjoint of h_{i-1}) and 2
    elementwise steps (``ops.reverse_adjoint``, ``ops.forward_adjoint``) besides recomputing
    ``d_i``. Autograd's double backward makes the same 6 GEMMs (``benchmarks/gemm_count.py``)
    and about twice the elementwise passes, which is the whole difference on a CPU.

    ``apply(x, order, omegas, n_layers, save, *weights, *biases)`` -> (value, grad, None), the
    layout of :func:`double_backward_fallback`, which serves ``create_graph=True``.
    """
    def forward(ctx, x, order, omegas, n_layers, save, *params):
        return _grad_forward(ctx, ops, x, order, omegas, n_layers, save, params)

    def backward(ctx, g_value, g_grad, g_lap):
        return _grad_backward(ctx, ops, g_value, g_grad, g_lap)

    return type(name, (torch.autograd.Function,), {
        "forward": staticmethod(autocast_off(forward)), "backward": staticmethod(autocast_off(backward)),
        "__doc__": f"Reverse-mode value and gradient with the elementwise steps of {ops.__name__}."})


_MLPGradFunction = reverse_grad_function(GradOps, "_MLPGradFunction")


def use_reverse_grad(order: int, n_out: int, dim: int) -> bool:
    """Whether a jet takes the reverse-mode gradient: order 1 with fewer outputs than input
    dimensions, unless :func:`fastsiren.backends.set_reverse_grad` turned it off."""
    return order == 1 and n_out < dim and reverse_grad()


def unpack_saved(ctx) -> tuple:
    """``(x, weights, biases, rest)`` of a network Function's ``ctx.save_for_backward(x,
    *weights, *biases that are not None, *rest)``; ``biases`` has None where ``ctx.has_bias``
    says there is none. Shared by every backend's network Function."""
    saved = ctx.saved_tensors
    n, nb = ctx.n_layers, sum(ctx.has_bias)
    present = iter(saved[1 + n:1 + n + nb])
    biases = [next(present) if hb else None for hb in ctx.has_bias]
    return saved[0], saved[1:1 + n], biases, saved[1 + n + nb:]


def backward_by_autograd(*adjoints: torch.Tensor | None) -> bool:
    """Whether a network Function's backward runs :func:`double_backward_fallback` instead of
    its hand-written one: under grad mode (``create_graph=True``, a double backward) or with
    batched ``adjoints`` (``torch.autograd.grad(..., is_grads_batched=True)`` and
    ``torch.autograd.functional.jacobian(..., vectorize=True)`` vmap the backward), which the
    hand-written backwards cannot take (``out=`` products and in-place epilogues have no
    batching rules)."""
    if torch.is_grad_enabled() or in_function_transform() or all(g is None for g in adjoints):
        return True  # (no adjoint at all, as gradcheck's undefined-grad check sends: every gradient None)
    if torch.compiler.is_compiling():  # dynamo traces the hand-written backward (no batching there)
        return False
    return any(g is not None and torch._C._functorch.is_legacy_batchedtensor(g) for g in adjoints)


def network_grads(x_grad, w_grads, b_grads, omegas, g_value) -> tuple:
    """A network Function's backward result in its argument layout ``(x, order, omegas,
    n_layers, save, *weights, *biases)``. A final linear layer's bias moves the value alone: with
    no adjoint of the value its gradient is None, as autograd leaves it on the reference (not a
    zero tensor, which an optimizer would step with momentum or weight decay)."""
    b_grads = list(b_grads)
    if g_value is None and omegas[-1] is None:
        b_grads[-1] = None
    return (x_grad, None, None, None, None, *w_grads, *b_grads)


def lap_slot(ctx) -> tuple:
    """The gradient slot of a weighted Laplacian's weights (a trailing argument, no gradient)."""
    return () if getattr(ctx, "lap_weights", None) is None else (None,)


def double_backward_fallback(ctx, x, weights, biases, g_value, g_grad, g_lap):
    """Gradients that are themselves differentiable: autograd over the reference ops.

    Serves every backend's network Function, all with the argument layout
    ``(x, order, omegas, n_layers, save, *weights, *biases[, laplacian_weights])`` and ctx fields
    ``order``, ``omegas``, ``n_layers`` (and ``lap_weights``, None for the plain Laplacian);
    returns gradients in that layout.

    Used when a caller asks for ``create_graph=True`` through a fused forward (e.g. the
    official repo's ``gradient(model(x), x)``), for batched adjoints (``is_grads_batched=True``,
    ``jacobian(..., vectorize=True)``) and when no output's adjoint is defined
    (:func:`backward_by_autograd`); a plain single backward never takes this path.
    """
    from fastsiren import reference

    order, omegas, n = ctx.order, ctx.omegas, ctx.n_layers
    if g_value is None and g_grad is None and g_lap is None:  # no output was used
        return (None,) * (5 + 2 * n) + lap_slot(ctx)
    inputs = [x, *weights, *[b for b in biases if b is not None]]
    need = [x.requires_grad and ctx.needs_input_grad[0]]
    need += [ctx.needs_input_grad[5 + i] for i in range(n)]
    need += [ctx.needs_input_grad[5 + n + i] for i, b in enumerate(biases) if b is not None]
    create_graph = torch.is_grad_enabled()  # off: a backward of batched adjoints (backward_by_autograd)
    with torch.enable_grad():
        jet = reference.mlp_jet(x, weights, biases, omegas, order, getattr(ctx, "lap_weights", None))
        outs, grads_out = [], []
        for t, g in zip(jet, (g_value, g_grad, g_lap)):
            if t is not None and g is not None:
                outs.append(t)
                grads_out.append(g)
        wrt = [t for t, nd in zip(inputs, need) if nd]
        got = iter(torch.autograd.grad(outs, wrt, grads_out, create_graph=create_graph, allow_unused=True)
                   if wrt else ())
    res = [next(got) if nd else None for nd in need]
    x_grad = res[0]
    w_grads = res[1:1 + n]
    b_iter = iter(res[1 + n:])
    b_grads = [next(b_iter) if b is not None else None for b in biases]
    return (x_grad, None, None, None, None, *w_grads, *b_grads) + lap_slot(ctx)


def mlp_jet(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor | None],
            omegas: Sequence[float | None], order: int, laplacian_weights: Sequence[float] | None = None) -> Jet:
    """Jet of a sine MLP by forward-mode streams; differentiable w.r.t. x and every parameter.
    ``laplacian_weights`` (D floats, order 2): the Laplacian field is ``sum_k c_k d2 f / d x_k^2``
    (the weights enter the epilogue's ``q`` and its adjoint; nothing else changes)."""
    save = torch.is_grad_enabled() and (x.requires_grad or any(
        t is not None and t.requires_grad for t in (*weights, *biases)))
    if laplacian_weights is not None:
        value, grad, lap = _MLPJetFunction.apply(x, order, tuple(omegas), len(weights), save, *weights, *biases,
                                                 tuple(laplacian_weights))
        return Jet(value, grad, lap)
    fn = _MLPGradFunction if use_reverse_grad(order, weights[-1].shape[0], x.shape[1]) else _MLPJetFunction
    value, grad, lap = fn.apply(x, order, tuple(omegas), len(weights), save, *weights, *biases)
    return Jet(value, grad, lap)


def mlp_forward(x, weights, biases, omegas) -> torch.Tensor:
    """Plain forward (order-0 jet): saves only pre-activations; double backward via autograd."""
    return mlp_jet(x, weights, biases, omegas, 0).value


def sine_linear(x, weight, bias, omega_0) -> torch.Tensor:
    """One fused sine layer: a one-layer network."""
    return mlp_forward(x, [weight], [bias], [omega_0])


def mlp_infer(x, weights, biases, omegas, order: int, laplacian_weights: Sequence[float] | None = None) -> Jet:
    """No-grad inference of value (and jets for order > 0)."""
    with torch.no_grad():
        return mlp_jet(x, weights, biases, omegas, order, laplacian_weights).detach()
