"""One registry of compute backends.

A backend is a module that implements the four network-level operations below on
plain tensors. Every backend computes the same function; ``reference`` is the oracle.

Backend module protocol (all tensors 2-D and contiguous on entry, validated upstream):

``sine_linear(x, weight, bias, omega_0) -> y``
    ``x`` (N, in), ``weight`` (out, in), ``bias`` (out,) or None -> ``sin(omega_0 (x W^T + b))``.
``mlp_forward(x, weights, biases, omegas) -> y``
    a whole MLP; ``omegas[i]`` is the sine frequency of layer i or ``None`` for a plain
    linear layer. Differentiable, twice (double backward) w.r.t. ``x`` and parameters.
``mlp_jet(x, weights, biases, omegas, order, laplacian_weights=None) -> Jet``
    value (N, out), grad (N, out, D), laplacian (N, out) (None above ``order``); differentiable
    w.r.t. params. ``laplacian_weights``: None or D floats c, the Laplacian then
    ``sum_k c_k d2 f / d x_k^2`` (checked upstream, :func:`fastsiren.functional.check_laplacian_weights`).
``mlp_infer(x, weights, biases, omegas, order, laplacian_weights=None) -> Jet``
    no-grad inference (``render``); may use a fully fused kernel.

``available(device) -> str | None`` returns None when the backend can run on ``device``
and otherwise the reason it cannot.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

import torch
from torch.autograd import forward_ad as _forward_ad

BACKEND_ENV = "FASTSIREN_BACKEND"


def _always(device: torch.device) -> str | None:
    return None


def _triton_available(device: torch.device) -> str | None:
    try:
        import triton  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"triton cannot be imported ({exc})"
    interpret = os.environ.get("TRITON_INTERPRET", "0") == "1"
    if device.type == "cuda":
        return None
    if device.type == "cpu" and interpret:
        return None
    if device.type == "cpu":
        return "triton kernels need a CUDA device (CPU tensors run only under TRITON_INTERPRET=1)"
    return f"triton kernels do not run on device type {device.type!r}"


def _cuda_available(device: torch.device) -> str | None:
    from fastsiren import cuda_ext

    if cuda_ext.emulating():  # FASTSIREN_CUDA_EMULATE=1: the same kernels, emulated on CPU tensors
        if device.type != "cpu":
            return (f"under {cuda_ext.EMULATE_ENV}=1 the cuda backend runs its CPU emulation and needs CPU "
                    f"tensors (got device {device})")
    elif device.type != "cuda":
        return "the cuda backend needs CUDA tensors (got device %s)" % device
    return cuda_ext.unavailable_reason()


@dataclass(frozen=True)
class BackendSpec:
    name: str
    module: str
    available: Callable[[torch.device], str | None]
    description: str

    def reason(self, device: torch.device) -> str | None:
        """None when this backend can run on ``device``, else why not (a CUDA device where
        torch sees none, for every backend; then the backend's own test)."""
        if device.type == "cuda" and not torch.cuda.is_available():
            return "no CUDA device is available here (torch.cuda.is_available() is False)"
        return self.available(device)

    def load(self) -> ModuleType:
        """The backend's implementation module (imported on first use)."""
        # Under torch.compile an imported backend comes from sys.modules: dynamo traces that
        # lookup, where importlib.import_module is a graph break (an error under fullgraph=True).
        # Eagerly importlib: sys.modules holds a module from the start of its import, and
        # another thread still importing it would hand it out half initialized.
        if torch.compiler.is_compiling():
            mod = sys.modules.get(self.module)
            if mod is not None:
                return mod
        return importlib.import_module(self.module)


_REGISTRY: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec("reference", "fastsiren.reference", _always,
                    "nn.Linear + torch.sin, derivatives by autograd (official style)"),
        BackendSpec("torch", "fastsiren.jet", _always,
                    "forward-mode jets in PyTorch ops with a hand-written backward"),
        BackendSpec("triton", "fastsiren.kernels.backend", _triton_available,
                    "fused Triton kernels"),
        BackendSpec("cuda", "fastsiren.cuda_ext", _cuda_available,
                    "fused CUDA kernels (torch custom ops)"),
    )
}

# "auto" tries these in order on a CUDA device; on the CPU it is always "torch".
_AUTO_CUDA_ORDER = ("cuda", "triton", "torch")


def backend_names() -> list[str]:
    """All registered backend names, available here or not."""
    return list(_REGISTRY)


def unavailable_reason(name: str, device: torch.device | str = "cpu") -> str | None:
    """None when backend ``name`` can run on ``device``, else the reason it cannot."""
    spec = _spec(name)
    return spec.reason(_device(device))


def available_backends(device: torch.device | str | None = None) -> list[str]:
    """Names of the backends that can run on ``device`` (default: CUDA if present, else CPU)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = _device(device)
    return [n for n, s in _REGISTRY.items() if s.reason(dev) is None]


def _device(device: torch.device | str) -> torch.device:
    """``device`` as a torch.device, or a ValueError naming it."""
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device ({exc})") from None


def _spec(name: str) -> BackendSpec:
    if name not in _REGISTRY:
        raise ValueError(
            f"backend={name!r} is not a known backend; expected 'auto' or one of {backend_names()}"
        )
    return _REGISTRY[name]


def resolve(name: str | None, device: torch.device | str) -> str:
    """Turn a requested backend ("auto", None or a name) into a backend that runs on ``device``.

    ``FASTSIREN_BACKEND`` overrides "auto". An automatic choice falls back quietly; a
    backend asked for by name that cannot run raises with the reason.
    """
    dev = _device(device)
    source = ""
    if name in (None, "auto"):
        name = os.environ.get(BACKEND_ENV, "").strip() or "auto"  # stripped, as the other FASTSIREN_* switches
        source = f" (from {BACKEND_ENV}={name!r})" if name != "auto" else ""
    if name == "auto":
        if dev.type != "cuda":
            return "torch"
        for cand in _AUTO_CUDA_ORDER:
            if _REGISTRY[cand].reason(dev) is None:
                return cand
        return "torch"
    try:
        spec = _spec(name)
    except ValueError as exc:
        raise ValueError(f"{exc}{source}") from None
    reason = spec.reason(dev)
    if reason is not None:
        raise RuntimeError(
            f"backend {name!r}{source} cannot run on {dev}: {reason}. "
            f"Available here: {available_backends(dev)}"
        )
    return name


def in_function_transform() -> bool:
    """Whether the caller runs inside a ``torch.func`` transform (``grad``, ``vmap``, ``jacrev``,
    ``jvp``, ``hessian``, ``functionalize``), eagerly or as torch.compile traces one:
    ``torch.compile(torch.func.grad(f))`` counts, a compiled function without transforms does
    not. Written so that dynamo evaluates it right on torch 2.11 and 2.13 alike: it wraps
    ``peek_interpreter_stack()``'s None in an object that ``is not None`` (a compiled function
    would always count), and cannot trace ``get_dynamic_layer_stack_depth`` on 2.11; the
    isinstance test works on both. AOTAutograd's later trace of a compiled graph does not count."""
    if torch.compiler.is_compiling() and not torch.compiler.is_dynamo_compiling():
        return False
    return isinstance(torch._C._functorch.peek_interpreter_stack(), torch._C._functorch.CInterpreter)


def forward_ad_active() -> bool:
    """Whether a ``torch.autograd.forward_ad`` dual level is open (dual tensors may reach the
    network: ``fwAD.make_dual``, ``torch.autograd.functional.jacobian(strategy="forward-mode")``)."""
    return _forward_ad._current_level >= 0


def reference_ops_only() -> bool:
    """Whether calls must run the reference's plain torch operations: inside a ``torch.func``
    transform (the fused Functions have no functorch rules) or a forward-mode AD dual level (they
    have no ``jvp``)."""
    return in_function_transform() or forward_ad_active()


def exporting() -> bool:
    """Whether ``torch.export`` (non-strict, its default) or ``torch.jit.trace`` is tracing the
    caller. Strict export runs dynamo, where torch 2.11 reports ``is_exporting()`` under plain
    torch.compile too: it is left to the compile path."""
    if torch.jit.is_tracing():
        return True
    return torch.compiler.is_exporting() and not torch.compiler.is_dynamo_compiling()


_TRANSFORM_WARNED: set[str] = set()
_TRANSFORM_WARNED_LOCK = threading.Lock()  # once per backend across threads (test, then add)


def get(name: str | None, device: torch.device | str) -> ModuleType:
    """The implementation module of the backend ``resolve(name, device)`` picks.

    Inside a ``torch.func`` transform or a forward-mode AD dual level (:func:`forward_ad_active`)
    every backend serves the call with the reference
    backend's operations, with a warning once per backend: the fused backends' autograd
    Functions have no functorch rules (a vmap rule per kernel), while the reference is plain
    torch operations, whose jets take their derivatives by ``torch.func`` there
    (:func:`fastsiren.reference.jet_of`). Values are the same; the speed is the reference's.
    Under torch.compile (a compiled transform) the switch is silent: dynamo cannot trace the
    warning.

    Under ``torch.export`` (its default, non-strict tracing) and ``torch.jit.trace`` every
    backend serves the reference's operations too, silently: the exported program holds the
    network as plain ``linear`` + ``sin`` ops that any runtime runs (AOTInductor fuses them
    again), with symbolic point counts, where the fused kernels are opaque launches and the CPU
    path's point blocks would fix N."""
    resolved = resolve(name, device)
    if resolved == "reference" or exporting():
        return _spec("reference").load()
    if reference_ops_only():
        # silent under torch.compile: dynamo traces neither the lock nor warnings.warn
        if not torch.compiler.is_compiling():
            with _TRANSFORM_WARNED_LOCK:
                first = resolved not in _TRANSFORM_WARNED
                _TRANSFORM_WARNED.add(resolved)
            if first:
                warnings.warn(f"fastsiren: backend {resolved!r} has no torch.func rules and no forward-mode "
                              "(jvp) rules; inside torch.func transforms (grad, vmap, jacrev, ...) and "
                              "torch.autograd.forward_ad dual levels its calls run the reference backend's "
                              "operations (same values, reference speed)", stacklevel=3)
        resolved = "reference"
    return _spec(resolved).load()


def check_name(name: str | None) -> None:
    """Raise a clear error now (not at first use) for an unknown backend name."""
    if name not in (None, "auto"):
        _spec(name)


# ----------------------------------------------------------------------------- path switches


class EnvChoice:
    """A named setting: the value set in code, else the environment variable ``env``, else
    ``default``; both checked against ``choices`` (kernels.config's modes use it too)."""

    def __init__(self, env: str, choices: tuple[str, ...], default: str):
        self.env, self.choices, self.default, self.value = env, choices, default, None

    def set(self, choice: str | None) -> None:
        """Set the value in code (one of ``choices``; None: back to the environment variable)."""
        if choice is not None and choice not in self.choices:
            raise ValueError(f"mode={choice!r}: expected one of {list(self.choices)} or None")
        self.value = choice

    def get(self) -> str:
        """The value set in code, else the environment variable's (read now, stripped), else
        the default; a ValueError naming the variable for a value not in ``choices``."""
        choice = self.value or os.environ.get(self.env, "").strip() or self.default
        if choice not in self.choices:
            raise ValueError(f"{self.env}={choice!r}: expected one of {list(self.choices)}")
        return choice


class _Switch(EnvChoice):
    """A boolean setting: the value set in code, else the environment variable ``env`` ("0"
    or "1"), else ``default``."""

    def __init__(self, env: str, default: bool = True):
        super().__init__(env, ("0", "1"), "1" if default else "0")

    def set(self, enabled: bool | None) -> None:
        if enabled is not None and not isinstance(enabled, bool):
            raise TypeError(f"enabled must be True, False or None, got {enabled!r}")
        super().set(None if enabled is None else ("1" if enabled else "0"))

    def get(self) -> bool:
        return super().get() == "1"


FUSED_INFER_ENV = "FASTSIREN_FUSED_INFER"
REVERSE_GRAD_ENV = "FASTSIREN_REVERSE_GRAD"
_FUSED_INFER = _Switch(FUSED_INFER_ENV, default=False)
_REVERSE_GRAD = _Switch(REVERSE_GRAD_ENV)


def set_fused_inference(enabled: bool | None) -> None:
    """Whether no-grad inference (``Siren.render``, no-grad ``forward``) on the triton and cuda
    backends runs the fully fused kernel (True) or the per-layer kernels (False, the default);
    None goes back to :data:`FUSED_INFER_ENV` ("1" turns fusion on), else the default.

    The fused kernel keeps memory at the output plus the weights; the per-layer kernels keep
    one chunk's activations. On an H200 (width 256, 4096x4096 grid,
    benchmarks/results/render.csv, run 3d220ec5fd89) the per-layer path rendered 4.3x (triton)
    and 3.0x (cuda) faster than the fused kernel, so it is the default; the benchmarks'
    ``+fused`` providers time the fused kernel beside it. A half inference precision
    (``fp16``/``bf16``, kernels.config) exists only in the fused kernel and always runs it.
    """
    _FUSED_INFER.set(enabled)


def fused_inference() -> bool:
    """The current choice of :func:`set_fused_inference`."""
    return _FUSED_INFER.get()


def set_reverse_grad(enabled: bool | None) -> None:
    """Whether order-1 jets with fewer outputs than input dimensions (the Poisson gradient loss
    of a gray image) take the reverse-mode gradient (True, the default: 6 GEMMs per hidden
    layer and training step against forward mode's 3 (1 + D)) or forward-mode streams
    (False), on every backend; None goes back to :data:`REVERSE_GRAD_ENV` ("0" turns it off),
    else the default. The benchmarks' ``+fwd`` providers time forward mode beside it.
    """
    _REVERSE_GRAD.set(enabled)


def reverse_grad() -> bool:
    """The current choice of :func:`set_reverse_grad`."""
    return _REVERSE_GRAD.get()


CPU_BLOCK_THREADS_ENV = "FASTSIREN_CPU_BLOCK_THREADS"
_CPU_BLOCK_THREADS = _Switch(CPU_BLOCK_THREADS_ENV)


def set_cpu_block_threads(enabled: bool | None) -> None:
    """Whether the torch backend on the CPU, with ``torch.get_num_threads()`` = T > 1, runs its
    point blocks side by side on ``min(T, blocks // 2)`` threads, each with ``T // threads``
    threads for its ops (True, the default), or one block at a time with T-thread ops (False),
    in passes of at least ``jet.CPU_BLOCK_THREADS_MIN_LAYERS`` layers and in plain eager mode
    (``fastsiren.jet._block_shares`` says where else not); None goes back to
    :data:`CPU_BLOCK_THREADS_ENV` ("0" turns it off), else the default. The weight gradients
    are the same sums in another order (float32 rounding differs, a fixed T gives fixed
    results). The benchmarks' ``torch+serial`` provider times the False side beside it.
    """
    _CPU_BLOCK_THREADS.set(enabled)


def cpu_block_threads() -> bool:
    """The current choice of :func:`set_cpu_block_threads`."""
    return _CPU_BLOCK_THREADS.get()


CPU_NUMPY_TRIG_ENV = "FASTSIREN_CPU_NUMPY_TRIG"
_CPU_NUMPY_TRIG = _Switch(CPU_NUMPY_TRIG_ENV)


def set_cpu_numpy_trig(enabled: bool | None) -> None:
    """Whether the torch backend takes the sines and cosines of float32 CPU tensors from
    NumPy's SIMD ufuncs (True, the default) or from ``torch.sin``/``torch.cos`` (False), where
    ``fastsiren.jet.numpy_trig`` says NumPy's applies (plain eager contiguous tensors, large
    enough for the torch thread count, ``jet.CPU_NUMPY_TRIG_MIN_ELEMS``: NumPy's ufuncs run on one
    thread); None goes back to :data:`CPU_NUMPY_TRIG_ENV` ("0" turns it off), else the default.
    Both are within about one and a half float32 ulps of float64 (``python -m benchmarks.cpu_trig``
    measures speed and error); the benchmarks' ``torch+torchtrig`` provider times the False side
    beside it.
    """
    _CPU_NUMPY_TRIG.set(enabled)


def cpu_numpy_trig() -> bool:
    """The current choice of :func:`set_cpu_numpy_trig`."""
    return _CPU_NUMPY_TRIG.get()


GEMM_PRECISION_ENV = "FASTSIREN_GEMM_PRECISION"
GEMM_PRECISIONS = ("ieee", "tf32x3")
_GEMM_PRECISION = EnvChoice(GEMM_PRECISION_ENV, GEMM_PRECISIONS, "ieee")


def set_gemm_precision(mode: str | None) -> None:
    """The precision of the float32 cuBLAS products fastsiren issues on a GPU: the torch
    backend's, the reverse-mode gradient's (every backend), the triton backend's cuBLAS weight
    gradients and GEMM mode, and the cuda backend's. ``"ieee"`` (the default): one product
    at PyTorch's fp32 matmul precision (full fp32 unless the user allowed TF32). ``"tf32x3"``:
    each operand split into its TF32 head and float32 remainder (:func:`fastsiren.jet.tf32_split`)
    and three TF32 tensor-core products summed, head x head + head x rest + rest x head, the
    3xTF32 scheme: about float32's accuracy at tensor-core speed. None goes back to
    :data:`GEMM_PRECISION_ENV`, else the default. CPU products and float64 are unaffected.

    The default stays ``"ieee"`` until a GPU run of the benchmarks' ``+3xtf32`` providers
    times it. While a tf32x3 product runs, PyTorch's cuBLAS fp32 precision is switched to
    TF32 and restored after (process-global, like every PyTorch precision flag).
    """
    _GEMM_PRECISION.set(mode)


def gemm_precision() -> str:
    """The current choice of :func:`set_gemm_precision`."""
    return _GEMM_PRECISION.get()


CPU_GEMM_ENV = "FASTSIREN_CPU_GEMM"
CPU_GEMMS = ("auto", "onednn", "blas")
_CPU_GEMM = EnvChoice(CPU_GEMM_ENV, CPU_GEMMS, "auto")


_ONEDNN_REASON: list[str | None] = []  # the probe's answer, once (a plain global: torch.compile
# traces the lookup, where a functools cache would make dynamo warn)


def onednn_unavailable_reason() -> str | None:
    """None where oneDNN's fp32 inner product (``torch.ops.mkldnn._linear_pointwise``) can run
    the CPU products, else why not (this torch built without oneDNN, or a CPU that is not
    x86-64, where oneDNN's kernels were not measured)."""
    if not _ONEDNN_REASON:
        _ONEDNN_REASON.append(_probe_onednn())
    return _ONEDNN_REASON[0]


def _probe_onednn() -> str | None:
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"oneDNN products are used on x86-64 CPUs only (this is {platform.machine()})"
    if not torch.backends.mkldnn.is_available():
        return "this torch was built without oneDNN (torch.backends.mkldnn.is_available() is False)"
    try:
        getattr(torch.ops.mkldnn, "_linear_pointwise")  # noqa: B009 (an op namespace: looked up on access)
    except (AttributeError, RuntimeError):
        return "this torch has no torch.ops.mkldnn._linear_pointwise"
    return None


def set_cpu_gemm(mode: str | None) -> None:
    """The library of the float32 matrix products fastsiren issues on the CPU (the torch
    backend's, the reverse-mode gradient's): ``"onednn"`` (oneDNN's inner product, the kernel
    PyTorch ships for ``torch.compile``'s CPU linear layers), ``"blas"`` (``torch.mm``: the BLAS
    this torch was built with, MKL on x86-64), ``"auto"`` (the default: measured on this host,
    below). None goes back to :data:`CPU_GEMM_ENV`, else the default. Float64 products and GPU
    tensors always take ``torch.mm``.

    ``"auto"`` times each kind of product both ways the first time the process issues it and
    takes the faster (:func:`fastsiren.jet.cpu_gemm_calibration` lists the choices and the
    seconds each took; ``fastsiren bench`` records them in ``auto-cpu-gemm.json``): a kind is
    the product's widths, its points (rows, or a weight gradient's inner dimension) rounded
    down to a power of two and capped at :data:`fastsiren.jet.CPU_GEMM_CAL_POINTS`, its
    operands' layouts, its bias, blocked BLAS, a given output and torch's thread count. Why
    measure: which library is faster depends on the host. On the AMD EPYC of the benchmarks
    (AVX-512, 2 threads), oneDNN ran the (N, w) x (w, w) products of a forward 1.5-2.5x as
    fast as MKL's sgemm on 2026-12-04 (``benchmarks/results/cpu-gemm.json``, written by
    ``python -m benchmarks.cpu_gemm``) and about 1.1x on 2026-12-05, where its weight
    gradients ran slower than MKL's (``cpu-gemm-2026-12-05.json``). Where the two are close a
    timing on random operands can pick the slower. Where oneDNN cannot run
    (:func:`onednn_unavailable_reason`), ``"auto"`` is BLAS. Nothing is timed under
    ``torch.compile``, ``torch.func`` transforms, Python dispatch modes or
    ``torch.use_deterministic_algorithms(True)`` (a timed choice may differ between processes,
    and with it the float32 rounding): there ``"auto"`` follows the ``"onednn"`` rules. Under
    ``torch.jit.trace`` and non-strict ``torch.export`` (its default) every product takes BLAS;
    strict export goes through dynamo, as ``torch.compile`` does.

    ``"onednn"`` takes oneDNN for every float32 product of at least
    :data:`fastsiren.jet.CPU_ONEDNN_MIN_MACS` multiply-adds, except weight gradients narrower
    than :data:`fastsiren.jet.CPU_ONEDNN_WGRAD_WIDTH` (:func:`fastsiren.jet.outer_sum`); smaller
    products take BLAS in every mode (a oneDNN call's fixed cost). The ``torch+onednn`` and
    ``torch+blas`` benchmark providers time whole steps on each library beside ``torch``
    (auto). The results differ only by float32 rounding (a different summation order). oneDNN
    has no autograd formula, so a product recorded by autograd (an operand that requires
    grad, grad mode on) takes ``torch.mm``.
    """
    if mode == "onednn":
        reason = onednn_unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"set_cpu_gemm('onednn'): {reason}")
    _CPU_GEMM.set(mode)


def cpu_gemm() -> str:
    """The mode :func:`set_cpu_gemm` selects, resolved: ``"onednn"``, ``"blas"``, or ``"auto"``
    (only where oneDNN can run: elsewhere ``"auto"`` resolves to ``"blas"``)."""
    choice = _CPU_GEMM.get()
    if choice == "blas":
        return "blas"
    reason = onednn_unavailable_reason()
    if reason is None:
        return choice
    if choice == "onednn":  # asked for by name (the environment variable): say why it cannot be
        raise RuntimeError(f"{CPU_GEMM_ENV}=onednn: {reason}")
    return "blas"

