"""The ``cuda`` backend: the fused CUDA kernels of ``csrc/`` as torch custom ops.

Nothing here compiles or loads native code at import time. The first use of the backend
(:func:`unavailable_reason`, called by the registry in :mod:`fastsiren.backends`, or any
op) loads the extension: a prebuilt ``fastsiren._C`` if ``FASTSIREN_BUILD_CUDA=1 pip install
--no-build-isolation -e .`` made one, else a just-in-time build with ninja
(``torch.utils.cpp_extension.load``, cached under ``~/.cache/torch_extensions``) for the
architectures of ``FASTSIREN_CUDA_ARCH`` (default: the current device's). A failed load is
remembered and reported as the reason the backend is unavailable (with one warning), so
"auto" falls back to triton.

Ops (namespace ``fastsiren_cuda``, defined in ``csrc/bindings.cpp``, fake implementations
below so ``torch.compile`` traces them); ``out`` is the stack of output streams
(S, N, out) = (value, D derivatives, Laplacian), S = 1, 1 + D, 2 + D for orders 0, 1, 2:

- ``mlp_fwd(x, weights, biases, omegas, order, save, tf32x3=False) -> (out, saved)``
- ``mlp_bwd(x, weights, biases, omegas, order, saved, gout, need_x, tf32x3=False) -> (x_grad, w_grads, b_grads)``
- ``mlp_infer(x, weights, biases, omegas, order) -> out`` (one fused kernel where it fits)
- ``grad_sin_cos``, ``grad_reverse_adjoint``, ``grad_forward_adjoint``: the elementwise steps
  of the reverse-mode gradient (:class:`CudaGradOps`), which order-1 jets with fewer outputs
  than input dimensions take, with cuBLAS GEMMs (:func:`fastsiren.jet.reverse_grad_function`)
- ``tf32_split(t) -> (head, rest)``: the TF32 split of a float32 GEMM operand in one pass, for
  the 3xTF32 products of that path (:func:`fastsiren.jet.operand`); contiguous outputs

``omegas`` are floats there, ``<= 0`` marking a linear layer (``None`` on the Python side).

**CPU emulation.** With ``FASTSIREN_CUDA_EMULATE=1`` the backend takes CPU tensors instead:
the same ``csrc/`` sources are compiled by the host C++ compiler against the emulated CUDA
runtime of ``csrc/emulation/`` (blocks run one after another, the threads of a block as
fibers that meet at ``__syncthreads``), cached by content under ``~/.cache/fastsiren``
(``FASTSIREN_CACHE_DIR``), and registered as namespace ``fastsiren_cuda_emu``. It is slow and
meant for tests and debugging, as ``TRITON_INTERPRET=1`` is for the Triton kernels: the CPU
test tier runs every correctness check of the GPU tier through it. ``FASTSIREN_CUDA_EMULATE=asan``
builds it with AddressSanitizer, which then reports every out-of-bounds access of the kernels;
the process must start with the sanitizer's runtime preloaded (:func:`asan_preload_hint`).
One emulation mode per process.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import torch

from fastsiren.backends import fused_inference, gemm_precision
from fastsiren.jet import (
    Jet,
    autocast_off,
    backward_by_autograd,
    double_backward_fallback,
    lap_slot,
    network_grads,
    num_streams,
    reverse_grad_function,
    split_streams,
    stack_adjoints,
    tf32_products,
    unpack_saved,
    use_reverse_grad,
)

ARCH_ENV = "FASTSIREN_CUDA_ARCH"
VERBOSE_ENV = "FASTSIREN_CUDA_VERBOSE"
# Must equal kMaxJetDim in csrc/fastsiren.h (tests/test_cuda_compile.py checks): jets of
# wider inputs are computed by the "torch" backend (coordinate networks have D <= 4).
MAX_JET_DIM = 16
OPS_NAMESPACE = "fastsiren_cuda"
OP_NAMES = ("mlp_fwd", "mlp_bwd", "mlp_infer", "grad_sin_cos", "grad_reverse_adjoint", "grad_forward_adjoint",
            "tf32_split")
EMULATE_ENV = "FASTSIREN_CUDA_EMULATE"
EMU_NAMESPACE = "fastsiren_cuda_emu"
CACHE_ENV = "FASTSIREN_CACHE_DIR"

EMULATE_MODES = ("1", "asan")


def fresh_state() -> dict[str, object]:
    """The load state of an extension nothing has tried to load yet."""
    return {"loaded": False, "error": None, "warned": False, "fakes": False}


# Load state of the real extension ("") and of the CPU emulation, plain ("1") or with ASan.
_states: dict[str, dict[str, object]] = {mode: fresh_state() for mode in ("",) + EMULATE_MODES}


def host_compiler() -> str | None:
    """The host C++ compiler of the emulation: ``$CXX``, else ``c++`` or ``g++`` on the PATH."""
    return os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")


def emulation_mode() -> str:
    """``FASTSIREN_CUDA_EMULATE``: "" (the real extension), "1" (CPU emulation) or "asan"
    (CPU emulation under AddressSanitizer)."""
    mode = os.environ.get(EMULATE_ENV, "0")
    if mode in ("", "0"):
        return ""
    if mode not in EMULATE_MODES:
        raise ValueError(f"{EMULATE_ENV}={mode!r}: expected 0, 1 (CPU emulation) or asan (with AddressSanitizer)")
    return mode


def emulating() -> bool:
    """True under ``FASTSIREN_CUDA_EMULATE=1`` or ``asan``: the backend runs on CPU tensors."""
    return emulation_mode() != ""


def asan_environment() -> dict[str, str]:
    """Environment variables that start a Python process in which the ASan emulation can load:
    AddressSanitizer's runtime preloaded (and the C++ runtime with it, so the sanitizer's
    exception interceptor finds it), leak checks off (the interpreter's own would swamp them)."""
    cxx = host_compiler() or "c++"
    libs = [subprocess.run([cxx, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
            for name in ("libasan.so", "libstdc++.so")]
    return {"LD_PRELOAD": " ".join(libs), "ASAN_OPTIONS": "detect_leaks=0", EMULATE_ENV: "asan"}


def asan_preload_hint() -> str:
    """How to start a process in which the ASan emulation can load."""
    return ("LD_PRELOAD=\"$(c++ -print-file-name=libasan.so) $(c++ -print-file-name=libstdc++.so)\" "
            "ASAN_OPTIONS=detect_leaks=0 (AddressSanitizer must be loaded before Python starts; "
            "cuda_ext.asan_environment() gives these)")


def _asan_loaded() -> bool:
    try:
        return "libasan" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def namespace() -> str:
    """The ``torch.ops`` namespace of the ops in use (the real or the emulated extension)."""
    return EMU_NAMESPACE if emulating() else OPS_NAMESPACE


def _state() -> dict[str, object]:
    return _states[emulation_mode()]


CSRC_ENV = "FASTSIREN_CSRC_DIR"


def csrc_dir() -> Path:
    """The folder of the CUDA sources: ``$FASTSIREN_CSRC_DIR`` if set (another copy of them,
    e.g. a mutant of benchmarks/cuda_mutations.py), else next to the package (installed) or
    the repo root."""
    override = os.environ.get(CSRC_ENV)
    if override:
        if not (Path(override) / "bindings.cpp").is_file():
            raise FileNotFoundError(f"{CSRC_ENV}={override!r} holds no bindings.cpp")
        return Path(override).resolve()
    here = Path(__file__).resolve().parent
    for cand in (here / "csrc", here.parent / "csrc"):
        if (cand / "bindings.cpp").is_file():
            return cand
    raise FileNotFoundError(f"the CUDA sources (csrc/bindings.cpp) are neither in {here / 'csrc'} "
                            f"nor in {here.parent / 'csrc'}")


def source_files() -> list[Path]:
    """Every source of the extension: the kernels (*.cu), then the bindings (*.cpp)."""
    src = csrc_dir()
    return sorted(src.glob("*.cu")) + sorted(src.glob("*.cpp"))


def parse_arch_list(spec: str) -> list[str]:
    """``"80;90"``, ``"8.0,9.0"``, ``"sm_80 sm_90a"`` -> ``["80", "90"]`` / ``["80", "90a"]``."""
    archs = []
    for tok in re.split(r"[;,\s]+", spec.strip()):
        if not tok:
            continue
        m = re.fullmatch(r"(?:sm_|compute_)?(\d+)\.?(\d)([af]?)(?:\+PTX)?", tok)
        if m is None:
            raise ValueError(f"{ARCH_ENV} entry {tok!r} is not an architecture like '80', '8.0' or 'sm_90a'")
        archs.append(m.group(1) + m.group(2) + m.group(3))
    if not archs:
        raise ValueError(f"{ARCH_ENV}={spec!r} names no architecture")
    return sorted(set(archs))


def cuda_archs() -> list[str]:
    """Architectures to build for: ``FASTSIREN_CUDA_ARCH``, else the current device's, else
    ``TORCH_CUDA_ARCH_LIST``, else A100 and H100 (80, 90)."""
    spec = os.environ.get(ARCH_ENV)
    if spec:
        return parse_arch_list(spec)
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        return [f"{major}{minor}"]
    spec = os.environ.get("TORCH_CUDA_ARCH_LIST")
    return parse_arch_list(spec) if spec else ["80", "90"]


def find_nvcc() -> str | None:
    """This machine's nvcc: on PATH, else in torch's ``CUDA_HOME``; None where there is none."""
    found = shutil.which("nvcc")
    if found:
        return found
    from torch.utils import cpp_extension

    home = cpp_extension.CUDA_HOME
    cand = Path(home, "bin", "nvcc") if home else None
    return str(cand) if cand is not None and cand.is_file() else None


def nvcc_flags(archs: Sequence[str]) -> list[str]:
    """nvcc flags: optimisation, SASS for each architecture and PTX of the newest (JIT-able on
    later GPUs). Passing -gencode stops torch from adding its own architecture flags."""
    flags = ["-O3"]
    for a in archs:
        flags.append(f"-gencode=arch=compute_{a},code=sm_{a}")
    newest = max(archs, key=lambda a: int(re.sub(r"\D", "", a)))
    flags.append(f"-gencode=arch=compute_{newest},code=compute_{newest}")
    return flags


def _load_prebuilt() -> bool:
    spec = importlib.util.find_spec("fastsiren._C")
    if spec is None or spec.origin is None:
        return False
    torch.ops.load_library(spec.origin)
    return True


def _build_jit() -> None:
    from torch.utils import cpp_extension

    if cpp_extension.CUDA_HOME is None:
        raise RuntimeError("no CUDA toolkit found (nvcc; set CUDA_HOME) to build it just in time")
    if not cpp_extension.is_ninja_available():
        raise RuntimeError("ninja is not installed (pip install ninja) to build it just in time")
    archs = cuda_archs()
    cpp_extension.load(
        name="fastsiren_cuda_sm" + "_".join(archs),
        sources=[str(p) for p in source_files()],
        extra_include_paths=[str(csrc_dir())],
        extra_cflags=["-O3"],
        extra_cuda_cflags=nvcc_flags(archs),
        is_python_module=False,
        verbose=os.environ.get(VERBOSE_ENV) == "1",
    )


def _emulation_flags(cxx: str, asan: bool) -> list[str]:
    from torch.utils.cpp_extension import include_paths

    src = csrc_dir()
    opt = ["-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"] if asan else ["-O2"]
    return [cxx, "-std=c++20", *opt, "-fPIC", "-Wno-unknown-pragmas", "-DFASTSIREN_CUDA_EMULATION",
            f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}",
            f"-I{src / 'emulation'}", f"-I{src}", *[a for p in include_paths() for a in ("-isystem", p)]]


def emulation_library(asan: bool = False) -> Path:
    """Build the CPU-emulated extension (once per content of csrc/, torch, compiler and flags:
    cached under ``$FASTSIREN_CACHE_DIR`` or ``~/.cache/fastsiren``) and return its shared
    library; ``asan``: instrumented with AddressSanitizer."""
    from torch.utils.cpp_extension import library_paths

    cxx = host_compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler found (set CXX) to build the CUDA emulation")
    flags = _emulation_flags(cxx, asan)
    src = csrc_dir()
    digest = hashlib.sha256(" ".join(flags + [torch.__version__]).encode())
    for path in sorted(src.rglob("*")):
        if path.suffix in (".cu", ".cuh", ".h", ".cpp"):
            digest.update(path.relative_to(src).as_posix().encode() + path.read_bytes())
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "fastsiren") / "cuda-emulation"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: build under the temporary folder instead
        root = Path(tempfile.gettempdir()) / "fastsiren-cache" / "cuda-emulation"
        root.mkdir(parents=True, exist_ok=True)
    final = root / digest.hexdigest()[:16]
    lib = final / f"{EMU_NAMESPACE}.so"
    if lib.is_file():
        return lib
    work = Path(tempfile.mkdtemp(prefix="build-", dir=root))
    try:
        objs, procs = [], []
        for source in source_files():  # the .cu files are plain C++ against the emulated runtime
            obj = work / (source.name + ".o")
            objs.append(obj)
            cmd = [*flags, "-x", "c++", "-c", str(source), "-o", str(obj)]
            procs.append((source, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                   text=True)))
        for source, proc in procs:
            out, _ = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"compiling {source.name} for the CUDA emulation failed:\n{out[-4000:]}")
        libdir = library_paths()[0]
        link = [cxx, "-shared", *(["-fsanitize=address"] if asan else []), "-o", str(work / lib.name),
                *map(str, objs), f"-L{libdir}", "-lc10", "-ltorch_cpu", f"-Wl,-rpath,{libdir}"]
        res = subprocess.run(link, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"linking the CUDA emulation failed:\n{(res.stdout + res.stderr)[-4000:]}")
        for obj in objs:
            obj.unlink()
        try:
            work.rename(final)  # atomic: a concurrent build of the same content may have won
        except OSError:
            if not lib.is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return lib


def _ensure_loaded() -> None:
    """Load the extension once (prebuilt, else JIT; or the CPU emulation under
    ``FASTSIREN_CUDA_EMULATE=1``); re-raise the first failure afterwards."""
    state = _state()
    if state["loaded"]:
        return
    if state["error"] is not None:
        raise RuntimeError(state["error"])
    try:
        if emulating():
            asan = emulation_mode() == "asan"
            if asan and not _asan_loaded():
                raise RuntimeError(f"{EMULATE_ENV}=asan needs AddressSanitizer's runtime in the process: "
                                   f"start it with {asan_preload_hint()}")
            torch.ops.load_library(str(emulation_library(asan)))
        else:
            try:
                prebuilt = _load_prebuilt()
            except OSError as exc:  # e.g. built against another torch: rebuild just in time
                warnings.warn(f"fastsiren: the prebuilt CUDA extension does not load ({exc}); "
                              "building it just in time", stacklevel=3)
                prebuilt = False
            if not prebuilt:
                _build_jit()
        _register_fakes(namespace(), state)
    except Exception as exc:
        state["error"] = f"{type(exc).__name__}: {exc}"
        raise RuntimeError(state["error"]) from exc
    state["loaded"] = True


def unavailable_reason() -> str | None:
    """None when the CUDA extension can run here (building/loading it on first call), else why
    not. Under ``FASTSIREN_CUDA_EMULATE=1`` no GPU is needed: the emulation is built instead."""
    state = _state()
    if not emulating():
        if not torch.cuda.is_available():
            return "no CUDA device is visible to torch"
        if torch.version.cuda is None:
            return "this torch build has no CUDA support"
    try:
        _ensure_loaded()
    except RuntimeError as exc:
        what = "CPU emulation of the fastsiren CUDA extension" if emulating() else "fastsiren CUDA extension"
        reason = f"the {what} could not be built or loaded ({exc})"
        if not state["warned"]:
            state["warned"] = True
            warnings.warn(f"fastsiren: {reason}; the 'auto' backend falls back to triton. "
                          f"Set {VERBOSE_ENV}=1 to see the build log.", stacklevel=2)
        return reason
    return None


def _ops():
    _ensure_loaded()
    return getattr(torch.ops, namespace())


def _saved_shapes(n, dim: int, widths: Sequence[int], omegas: Sequence[float], order: int) -> list[tuple]:
    """Shapes of what ``mlp_fwd`` saves per layer (mirrors csrc/bindings.cpp)."""
    s = num_streams(order, dim)
    shapes = []
    for i, (f, om) in enumerate(zip(widths, omegas)):
        last = i == len(widths) - 1
        if i == 0 and dim <= MAX_JET_DIM:
            shapes.append((0,))  # the fused first layer is recomputed from x
        elif om > 0 or not last:
            shapes.append((s, n, f))  # sine: pre streams; linear hidden: post streams
        else:
            shapes.append((0,))  # a linear last layer's backward needs nothing
    return shapes


def _register_fakes(ns: str, state: dict[str, object]) -> None:
    """Meta implementations (shapes only) so torch.compile / FakeTensor can trace the ops."""
    if state["fakes"]:
        return

    @torch.library.register_fake(f"{ns}::mlp_fwd")
    def _mlp_fwd_fake(x, weights, biases, omegas, order, save, tf32x3=False, lap_weights=None):
        n, dim = x.shape
        out = x.new_empty((num_streams(order, dim), n, weights[-1].shape[0]))
        if not save:
            return out, []
        shapes = _saved_shapes(n, dim, [w.shape[0] for w in weights], omegas, order)
        return out, [x.new_empty(sh) for sh in shapes]

    @torch.library.register_fake(f"{ns}::mlp_bwd")
    def _mlp_bwd_fake(x, weights, biases, omegas, order, saved, gout, need_x, tf32x3=False, lap_weights=None):
        x_grad = x.new_empty(x.shape) if need_x else x.new_empty((0,))
        w_grads = [w.new_empty(w.shape) for w in weights]
        b_grads = [b.new_empty(b.shape) if b is not None else x.new_empty((0,)) for b in biases]
        return x_grad, w_grads, b_grads

    @torch.library.register_fake(f"{ns}::mlp_infer")
    def _mlp_infer_fake(x, weights, biases, omegas, order, lap_weights=None):
        n, dim = x.shape
        return x.new_empty((num_streams(order, dim), n, weights[-1].shape[0]))

    @torch.library.register_fake(f"{ns}::grad_sin_cos")
    def _grad_sin_cos_fake(z):
        return torch.empty_like(z), torch.empty_like(z)

    @torch.library.register_fake(f"{ns}::grad_reverse_adjoint")
    def _grad_reverse_adjoint_fake(r, dbar, c):
        return torch.empty_like(c), torch.empty_like(dbar)

    @torch.library.register_fake(f"{ns}::grad_forward_adjoint")
    def _grad_forward_adjoint_fake(hbar, c, h, t):
        return torch.empty_like(c)

    @torch.library.register_fake(f"{ns}::tf32_split")
    def _tf32_split_fake(t):
        return torch.empty_like(t, memory_format=torch.contiguous_format), torch.empty_like(
            t, memory_format=torch.contiguous_format)

    state["fakes"] = True


def _op_omegas(omegas: Sequence[float | None]) -> list[float]:
    return [float(om) if om is not None else 0.0 for om in omegas]


def _tf32x3(x: torch.Tensor) -> bool:
    """Whether the ops' GEMMs run as 3xTF32 (:func:`fastsiren.backends.set_gemm_precision`):
    float32 on a GPU, or in the CPU emulation (where ATen's CPU products stand in for the
    TF32 ones, so the tier checks the split and the three products, not TF32 rounding)."""
    return x.dtype == torch.float32 and gemm_precision() == "tf32x3" and (x.is_cuda or emulating())


def _lap_list(laplacian_weights: Sequence[float] | None) -> list[float] | None:
    return None if laplacian_weights is None else [float(c) for c in laplacian_weights]


def _fwd(x, weights, biases, omegas, order: int, save: bool, laplacian_weights: Sequence[float] | None = None):
    """``mlp_fwd`` at the GEMM precision (``laplacian_weights``: the Laplacian's D weights)."""
    x3 = _tf32x3(x)
    with tf32_products(x3):
        return _ops().mlp_fwd(x, weights, biases, _op_omegas(omegas), order, save, x3, _lap_list(laplacian_weights))


class _MLPJetFunction(torch.autograd.Function):
    """Whole-network jet through the fused ops; backward by ``mlp_bwd`` (fastsiren/jet.py's adjoint).

    The argument layout (x, order, omegas, n_layers, save, *weights, *biases[,
    laplacian_weights]) and the ctx fields match fastsiren.jet's Function, so its
    ``double_backward_fallback`` serves ``create_graph=True``.
    """

    @staticmethod
    @autocast_off
    def forward(ctx, x, order, omegas, n_layers, save, *params):
        weights, biases = list(params[:n_layers]), list(params[n_layers:2 * n_layers])
        ctx.lap_weights = params[2 * n_layers] if len(params) > 2 * n_layers else None
        out, saved = _fwd(x, weights, biases, omegas, order, save, ctx.lap_weights)
        ctx.order, ctx.omegas, ctx.n_layers, ctx.dim = order, omegas, n_layers, x.shape[1]
        ctx.set_materialize_grads(False)  # an unused output's adjoint is None (network_grads)
        ctx.has_bias = tuple(b is not None for b in biases)
        ctx.save_for_backward(x, *weights, *[b for b in biases if b is not None], *saved)
        return split_streams(out, order, x.shape[1])

    @staticmethod
    @autocast_off
    def backward(ctx, g_value, g_grad, g_lap):
        order = ctx.order
        x, weights, biases, rest = unpack_saved(ctx)
        weights = list(weights)
        if backward_by_autograd(g_value, g_grad, g_lap):
            # create_graph=True or batched adjoints: autograd over the reference ops.
            return double_backward_fallback(ctx, x, weights, biases, g_value, g_grad, g_lap)
        gout = stack_adjoints(g_value, g_grad, g_lap, order, x, weights[-1].shape[0])
        need_x = bool(ctx.needs_input_grad[0])
        x3 = _tf32x3(x)
        with tf32_products(x3):
            x_grad, w_grads, b_grads = _ops().mlp_bwd(x, weights, biases, _op_omegas(ctx.omegas), order,
                                                      list(rest), gout, need_x, x3, _lap_list(ctx.lap_weights))
        b_out = [g if b is not None else None for g, b in zip(b_grads, biases)]
        return network_grads(x_grad if need_x else None, w_grads, b_out, ctx.omegas, g_value) + lap_slot(ctx)


class CudaGradOps:
    """:class:`fastsiren.jet.GradOps` through the ``grad_*`` ops (csrc/grad_ops.cu) and
    ``tf32_split`` (csrc/tf32_split.cu); every result is a fresh tensor."""

    @staticmethod
    def split(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        head, rest = _ops().tf32_split(t)
        return head, rest

    @staticmethod
    def sin_cos(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = _ops().grad_sin_cos(z.contiguous())
        return h, c

    @staticmethod
    def reverse_adjoint(r: torch.Tensor, dbar: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if r.stride(2) != 1:  # a broadcast over N or O keeps its zero strides
            r = r.contiguous()
        t, rbar = _ops().grad_reverse_adjoint(r, dbar.contiguous(), c.contiguous())
        return t, rbar

    @staticmethod
    def forward_adjoint(hbar: torch.Tensor | None, c: torch.Tensor, h: torch.Tensor, t: torch.Tensor | None,
                        own_hbar: bool) -> torch.Tensor:
        return _ops().grad_forward_adjoint(None if hbar is None else hbar.contiguous(), c.contiguous(),
                                           h.contiguous(), t)


CudaGradFunction = reverse_grad_function(CudaGradOps, "CudaGradFunction")


def _params(weights, biases):
    return [w.contiguous() for w in weights], [None if b is None else b.contiguous() for b in biases]


def _needs_graph(x: torch.Tensor, weights, biases) -> bool:
    return torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, *weights, *biases))


def mlp_jet(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor | None],
            omegas: Sequence[float | None], order: int, laplacian_weights: Sequence[float] | None = None) -> Jet:
    """Jet (value (N, out), grad (N, out, D), Laplacian (N, out)) of a sine MLP at x (N, D);
    differentiable (twice) w.r.t. x and every parameter. ``laplacian_weights`` (D floats, order 2):
    the Laplacian field is ``sum_k c_k d2 f / d x_k^2``, in the same kernels."""
    dim = x.shape[1]
    if order >= 1 and dim > MAX_JET_DIM:
        from fastsiren import jet  # the fused first layer holds at most MAX_JET_DIM columns

        return jet.mlp_jet(x, weights, biases, omegas, order, laplacian_weights)
    x = x.contiguous()  # Siren._flatten's reshape may hand over a strided view
    weights, biases = _params(weights, biases)
    if use_reverse_grad(order, weights[-1].shape[0], dim):
        value, grad, lap = CudaGradFunction.apply(x, order, tuple(omegas), len(weights),
                                                  _needs_graph(x, weights, biases), *weights, *biases)
        return Jet(value, grad, lap)
    if _needs_graph(x, weights, biases):
        lap_arg = () if laplacian_weights is None else (tuple(laplacian_weights),)
        value, grad, lap = _MLPJetFunction.apply(x, order, tuple(omegas), len(weights), True, *weights,
                                                 *biases, *lap_arg)
        return Jet(value, grad, lap)
    out, _ = _fwd(x, weights, biases, omegas, order, False, laplacian_weights)
    return Jet(*split_streams(out, order, dim))


def mlp_forward(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor | None],
                omegas: Sequence[float | None]) -> torch.Tensor:
    """Plain forward x (N, in) -> (N, out); double backward through the reference ops."""
    return mlp_jet(x, weights, biases, omegas, 0).value


def sine_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                omega_0: float) -> torch.Tensor:
    """``sin(omega_0 (x W^T + b))`` for x (N, in) -> (N, out): a one-layer network."""
    return mlp_forward(x, [weight], [bias], [omega_0])


def mlp_infer(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor | None],
              omegas: Sequence[float | None], order: int, laplacian_weights: Sequence[float] | None = None) -> Jet:
    """No-grad inference (render): every layer in one fused kernel where the network fits it
    (<= 16 layers, widths <= 256, shared memory) and :func:`fastsiren.backends.fused_inference`
    allows, else the layer-wise kernels; ``laplacian_weights`` as in :func:`mlp_jet`."""
    dim = x.shape[1]
    if order >= 1 and dim > MAX_JET_DIM:
        from fastsiren import jet

        return jet.mlp_infer(x, weights, biases, omegas, order, laplacian_weights)
    x = x.contiguous()
    weights, biases = _params(weights, biases)
    with torch.no_grad():
        if fused_inference():
            out = _ops().mlp_infer(x, weights, biases, _op_omegas(omegas), order, _lap_list(laplacian_weights))
        else:
            out = _fwd(x, weights, biases, omegas, order, False, laplacian_weights)[0]
    return Jet(*split_streams(out, order, dim))
