"""One harness for every suite: providers, correctness check, interleaved timing, memory.

Protocol per suite and phase:

1. one :class:`~.suites.Case` (inputs, initial parameters) shared by every provider;
2. each provider's outputs (loss and every parameter gradient, or the layer/render output)
   are checked against the oracle, the ``reference`` provider run in float64 on the same
   case: a provider passes when, for every output, its error is at most twice the error of
   ``reference`` at the benchmark dtype, or under a per-dtype floor (STYLE.md: "no worse
   than 2x PyTorch's own error at that precision"). Errors are ``max|a - b| / max|b|``;
3. providers that pass are warmed up, then timed *interleaved*: every round times one block
   of each provider (and of the GEMM floor), in a rotating order, so load drift on a shared
   machine hits all of them alike. CPU blocks with ``torch.utils.benchmark.Timer``, GPU
   blocks with CUDA events around back-to-back calls;
4. peak memory of one more step: CUDA ``max_memory_allocated`` above what was allocated
   before the step; CPU the peak of live tensor bytes created during the step, tracked
   per ATen op with a dispatch mode (tracemalloc does not see torch's allocator and RSS
   does not go down when torch frees). The CPU method does not see ``torch.compile``'s
   inductor buffers, so it is not reported for that provider.
"""

from __future__ import annotations

import gc
import math
import sys
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable, Sequence

import torch

from fastsiren import backends, reference
from fastsiren.jet import Jet

from .suites import Case, Runner, Shape, Suite, default_shape, floor_runner, get_suite, total_flops

# Error floors per dtype, relative to the output's max: fp32 round-off amplified by omega_0 = 30
# through 5 layers and summed over 1e5 points reaches ~1e-5 (measured: 5e-6 for reference itself).
ERROR_FLOOR = {torch.float64: 1e-9, torch.float32: 1e-4, torch.bfloat16: 2e-2, torch.float16: 5e-3}
ERROR_FACTOR = 2.0

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16,
          "float16": torch.float16}


class ProviderUnavailable(RuntimeError):
    """A provider cannot run on this machine (the message says why)."""


@dataclass(frozen=True)
class Provider:
    """A named way to run the backend-module ops; ``load(device)`` returns the ops object.

    ``optional`` providers (``reference+compile``) are *skipped* with the reason when they
    fail on a suite instead of being reported as broken.
    """

    name: str
    load: Callable[[torch.device], object]
    optional: bool = False
    # called before every check and timed call of this provider: a setting that must hold
    # through the backward too (a triton precision is read when each kernel launches)
    setup: Callable[[], None] | None = None
    # the suites this variant means something for (None: all); elsewhere it is left out of
    # "all" and skipped with a reason when asked for by name
    suites: tuple[str, ...] | None = None
    # the device types on which "all" includes it (None: every one); elsewhere it runs only
    # when asked for by name (torch+compile on a GPU: its compile would take minutes of a run)
    in_all_on: tuple[str, ...] | None = None

    def in_all(self, suite: str, device_type: str) -> bool:
        """Whether "all" includes this provider on ``suite`` and this device type."""
        return ((not self.suites or suite in self.suites)
                and (not self.in_all_on or device_type in self.in_all_on))


def _backend_loader(name: str) -> Callable[[torch.device], object]:
    def load(device: torch.device):
        reason = backends.unavailable_reason(name, device)
        if reason is not None:
            raise ProviderUnavailable(reason)
        try:
            return backends.get(name, device)
        except ImportError as exc:  # a backend registered but not importable here
            raise ProviderUnavailable(f"cannot import the {name} backend ({exc})") from exc

    return load


def compiled_reference(device: torch.device | None = None) -> SimpleNamespace:
    """The reference ops with their forwards under ``torch.compile`` (autograd still does the
    derivatives, as the official code would if compiled)."""
    fwd = torch.compile(reference.mlp_forward, dynamic=False)
    layer = torch.compile(reference.sine_linear, dynamic=False)

    def mlp_jet(x, weights, biases, omegas, order, laplacian_weights=None):
        return reference.jet_of(lambda z: fwd(z, weights, biases, omegas), x, order, laplacian_weights)

    def mlp_infer(x, weights, biases, omegas, order, laplacian_weights=None):
        if order == 0:
            with torch.no_grad():
                return Jet(fwd(x, weights, biases, omegas), None, None)
        return mlp_jet(x, weights, biases, omegas, order, laplacian_weights).detach()

    return SimpleNamespace(sine_linear=layer, mlp_forward=fwd, mlp_jet=mlp_jet, mlp_infer=mlp_infer)


def _compiled_backend(name: str) -> Callable[[torch.device], object]:
    """Loader of a ``+compile`` provider: backend ``name``'s four operations under
    ``torch.compile`` (inductor, static shapes), which traces its autograd Functions, the
    hand-written backward included, and fuses their elementwise passes."""
    load = _backend_loader(name)

    def compiled_load(device: torch.device):
        mod = load(device)
        return SimpleNamespace(**{op: torch.compile(getattr(mod, op), dynamic=False)
                                  for op in ("sine_linear", "mlp_forward", "mlp_jet", "mlp_infer")})

    return compiled_load


def _guarded(name: str, reason: Callable[[torch.device], str | None]) -> Callable[[torch.device], object]:
    """Loader of backend ``name`` that is unavailable (:class:`ProviderUnavailable`) wherever
    ``reason(device)`` gives a reason: a variant provider where it would time the plain one."""
    load = _backend_loader(name)

    def guarded_load(device: torch.device):
        why = reason(device)
        if why is not None:
            raise ProviderUnavailable(why)
        return load(device)

    return guarded_load


def _gpu_products(name: str) -> Callable[[torch.device], object]:
    """Loader of a ``+3xtf32`` provider: backend ``name`` where its cuBLAS products can run
    as 3xTF32, i.e. on a GPU (CPU products stay float32, so there it would time the plain
    provider again)."""
    return _guarded(name, lambda device: None if device.type == "cuda" else
                    "3xTF32 products run on a CUDA device only (CPU products stay float32)")


def _cpu_products(name: str, library: str) -> Callable[[torch.device], object]:
    """Loader of a ``+blas`` or ``+onednn`` provider: backend ``name`` on the CPU in mode
    ``library`` of :func:`fastsiren.backends.set_cpu_gemm` instead of ``"auto"`` (``"blas"``:
    every product through BLAS; ``"onednn"``: oneDNN by that mode's fixed rules, which leave
    small products and narrow weight gradients to BLAS); elsewhere it would time the plain
    provider again."""
    def reason(device: torch.device) -> str | None:
        if device.type != "cpu":
            return "BLAS or oneDNN is a choice of CPU products (GPU products are cuBLAS)"
        why = backends.onednn_unavailable_reason()
        if why is None:
            return None
        return f"the plain provider already uses BLAS here: {why}" if library == "blas" else \
            f"oneDNN cannot run here: {why}"

    return _guarded(name, reason)


def _serial_blocks(name: str) -> Callable[[torch.device], object]:
    """Loader of a ``+serial`` provider: backend ``name`` on the CPU running one point block at
    a time with multi-threaded ops (:func:`fastsiren.backends.set_cpu_block_threads` off); with
    one thread, or off the CPU, it would time the plain provider again."""
    return _guarded(name, lambda device: None if device.type == "cpu" and torch.get_num_threads() > 1 else
                    "blocks side by side are a choice of a CPU run with more than one thread")


def _torch_trig(name: str) -> Callable[[torch.device], object]:
    """Loader of a ``+torchtrig`` provider: backend ``name`` on the CPU with torch's float32
    sines and cosines instead of NumPy's (:func:`fastsiren.backends.set_cpu_numpy_trig` off);
    off the CPU, or with more torch threads than NumPy's are taken at, it would time the plain
    provider again."""
    from fastsiren import jet

    def reason(device: torch.device) -> str | None:
        if device.type != "cpu":
            return "NumPy's sines and cosines are a choice of CPU runs"
        if torch.get_num_threads() > jet.numpy_trig_max_threads():
            return (f"above {jet.numpy_trig_max_threads()} torch threads the plain provider already takes torch's "
                    "sines and cosines")
        return None

    return _guarded(name, reason)


def _paths(fused: bool | None = None, reverse: bool | None = None, gemm: str | None = None,
           cpu_gemm: str | None = None, block_threads: bool | None = None,
           numpy_trig: bool | None = None) -> Callable[[], None]:
    """Setup of a provider: the inference path ``fused``
    (:func:`fastsiren.backends.set_fused_inference`), the gradient mode ``reverse``
    (:func:`fastsiren.backends.set_reverse_grad`), the precision ``gemm`` of the cuBLAS
    products (:func:`fastsiren.backends.set_gemm_precision`), the library ``cpu_gemm`` of
    the CPU products (:func:`fastsiren.backends.set_cpu_gemm`) and whether CPU point blocks
    run side by side (``block_threads``, :func:`fastsiren.backends.set_cpu_block_threads`) and
    take float32 sines and cosines from NumPy (``numpy_trig``,
    :func:`fastsiren.backends.set_cpu_numpy_trig`); None: the defaults, so a plain provider is
    not left at a variant's setting."""

    def setup() -> None:
        backends.set_fused_inference(fused)
        backends.set_reverse_grad(reverse)
        backends.set_gemm_precision(gemm)
        backends.set_cpu_gemm(cpu_gemm)
        backends.set_cpu_block_threads(block_threads)
        backends.set_cpu_numpy_trig(numpy_trig)

    return setup


def _triton_precision(name: str | None, fused: bool | None = None, reverse: bool | None = None,
                      wgrad: str | None = None, gemm: str | None = None,
                      products: str | None = None) -> Callable[[], None]:
    """Setup of a triton provider: training and inference kernels at precision ``name``
    (None: the defaults), the weight-gradient mode ``wgrad`` and the GEMM mode ``gemm``
    (kernels/config.py ``set_wgrad``, ``set_gemm``; None: the defaults) and the paths of
    :func:`_paths` (``products``: its cuBLAS precision)."""
    paths = _paths(fused, reverse, products)

    def setup() -> None:
        from fastsiren.kernels import config

        if name is None:
            config.reset_precision()
        else:
            config.set_precision(train=name, infer=name)
        config.set_wgrad(wgrad)
        config.set_gemm(gemm)
        paths()

    return setup


_TRAINING = ("fit", "poisson-grad", "poisson-laplacian", "wave")
PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("reference", _backend_loader("reference")),
        Provider("reference+compile", compiled_reference, optional=True),
        Provider("torch", _backend_loader("torch"), setup=_paths()),
        # the CPU products in a fixed mode instead of "auto" (the library measured faster for each
        # kind, backends.set_cpu_gemm): all through torch.mm's BLAS (MKL), or oneDNN by its rules
        Provider("torch+blas", _cpu_products("torch", "blas"), optional=True, setup=_paths(cpu_gemm="blas")),
        Provider("torch+onednn", _cpu_products("torch", "onednn"), optional=True, setup=_paths(cpu_gemm="onednn")),
        # one CPU point block at a time with multi-threaded ops instead of blocks side by side
        Provider("torch+serial", _serial_blocks("torch"), optional=True, setup=_paths(block_threads=False)),
        # torch's float32 sines and cosines instead of NumPy's SIMD ufuncs
        Provider("torch+torchtrig", _torch_trig("torch"), optional=True, setup=_paths(numpy_trig=False)),
        # the torch backend under torch.compile (inductor), its hand-written backward traced too
        Provider("torch+compile", _compiled_backend("torch"), optional=True, setup=_paths(), in_all_on=("cpu",)),
        Provider("triton", _backend_loader("triton"), setup=_triton_precision(None)),
        # the exact fp32 path beside the default (tf32x3, kernels/config.py): FMA loops on Hopper
        Provider("triton+ieee", _backend_loader("triton"), optional=True, setup=_triton_precision("ieee")),
        Provider("cuda", _backend_loader("cuda"), setup=_paths()),
        # dense-grid inference through the fully fused kernel instead of the per-layer ones
        Provider("triton+fused", _backend_loader("triton"), optional=True,
                 setup=_triton_precision(None, fused=True), suites=("render",)),
        Provider("cuda+fused", _backend_loader("cuda"), optional=True, setup=_paths(fused=True),
                 suites=("render",)),
        # order-1 jets of a gray image by forward-mode streams instead of the reverse-mode gradient
        Provider("torch+fwd", _backend_loader("torch"), optional=True, setup=_paths(reverse=False),
                 suites=("poisson-grad",)),
        Provider("triton+fwd", _backend_loader("triton"), optional=True,
                 setup=_triton_precision(None, reverse=False), suites=("poisson-grad",)),
        Provider("cuda+fwd", _backend_loader("cuda"), optional=True, setup=_paths(reverse=False),
                 suites=("poisson-grad",)),
        # weight gradients in the fused Triton kernel instead of one cuBLAS product (kernels/config.py)
        Provider("triton+fusedw", _backend_loader("triton"), optional=True,
                 setup=_triton_precision(None, wgrad="fused"), suites=("fit", "poisson-laplacian")),
        # every training GEMM through cuBLAS, the jet epilogues as their own kernels (kernels/config.py)
        Provider("triton+cublas", _backend_loader("triton"), optional=True,
                 setup=_triton_precision(None, gemm="cublas"), suites=("fit", "poisson-laplacian")),
        # the cuBLAS products as 3xTF32 on tensor cores instead of float32 (backends.set_gemm_precision)
        Provider("torch+3xtf32", _gpu_products("torch"), optional=True, setup=_paths(gemm="tf32x3"),
                 suites=_TRAINING + ("render",)),
        Provider("triton+3xtf32", _gpu_products("triton"), optional=True,
                 setup=_triton_precision(None, products="tf32x3"), suites=_TRAINING),
        Provider("triton+cublas+3xtf32", _gpu_products("triton"), optional=True,
                 setup=_triton_precision(None, gemm="cublas", products="tf32x3"),
                 suites=("fit", "poisson-laplacian")),
        Provider("cuda+3xtf32", _gpu_products("cuda"), optional=True, setup=_paths(gemm="tf32x3"),
                 suites=("layer",) + _TRAINING + ("render",)),
    )
}
BASELINE = "reference"


def resolve_providers(names: Sequence[str | Provider] | None, baseline: bool = True) -> list[Provider]:
    """Provider objects for ``names`` ("all" or None = every provider); reference first unless
    ``baseline`` is False (it is the oracle and the speed baseline)."""
    if not names or "all" in names:
        names = list(PROVIDERS)
    out: list[Provider] = [PROVIDERS[BASELINE]] if baseline else []
    for n in names:
        if isinstance(n, Provider):
            p = n
        elif n in PROVIDERS:
            p = PROVIDERS[n]
        else:
            raise ValueError(f"provider={n!r} is not a benchmark provider; expected one of {list(PROVIDERS)} or 'all'")
        if p.name not in {q.name for q in out}:
            out.append(p)
    return out


# ---------------------------------------------------------------- results


@dataclass
class Row:
    """One measured (or skipped) provider on one suite phase. Times in milliseconds."""

    suite: str
    phase: str
    provider: str
    status: str  # ok | skipped | mismatch | error | oom
    reason: str = ""
    median_ms: float = math.nan
    q10_ms: float = math.nan
    q90_ms: float = math.nan
    rounds: int = 0
    iters: int = 0
    speedup: float = math.nan
    gflop: float = math.nan
    tflops: float = math.nan
    floor_ms: float = math.nan
    floor_frac: float = math.nan
    # the same GEMMs as 3xTF32 products (GPU, float32): the floor at the +3xtf32 providers'
    # and Triton's tf32x3 precision
    floor_x3_ms: float = math.nan
    floor_x3_frac: float = math.nan
    peak_mb: float = math.nan
    max_err: float = math.nan
    ref_err: float = math.nan
    extra: dict = field(default_factory=dict)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max|a - b| / max|b|`` in float64 (``b`` the oracle); inf for a shape mismatch or NaN."""
    if a.shape != b.shape:
        return math.inf
    a64, b64 = a.detach().double(), b.detach().double()
    scale = b64.abs().max().item() or 1.0
    err = (a64 - b64).abs().max().item() / scale
    return err if math.isfinite(err) else math.inf


@dataclass
class Check:
    ok: bool
    max_err: float
    ref_err: float
    detail: str


def check_outputs(got: dict[str, torch.Tensor], oracle: dict[str, torch.Tensor],
                  ref_same_dtype: dict[str, torch.Tensor], dtype: torch.dtype, tol: float | None = None) -> Check:
    """Compare a provider's outputs with the float64 oracle (rule in the module docstring).

    ``tol`` replaces the rule by a fixed relative tolerance (e.g. for tf32 kernels).
    """
    if set(got) != set(oracle):
        return Check(False, math.inf, math.nan, f"outputs {sorted(got)} != expected {sorted(oracle)}")
    worst, worst_ref, bad = 0.0, 0.0, []
    for k, want in oracle.items():
        err = relative_error(got[k], want)
        ref = relative_error(ref_same_dtype[k], want)
        allowed = tol if tol is not None else max(ERROR_FACTOR * ref, ERROR_FLOOR.get(dtype, 1e-5))
        worst, worst_ref = max(worst, err), max(worst_ref, ref)
        if not err <= allowed:
            bad.append(f"{k}: error {err:.3g} > allowed {allowed:.3g} (reference's own error {ref:.3g})")
    return Check(not bad, worst, worst_ref, "; ".join(bad))


# ---------------------------------------------------------------- timing and memory


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_block(fn: Callable[[], object], iters: int, device: torch.device) -> float:
    """Seconds per call of ``fn`` over ``iters`` back-to-back calls."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        _sync(device)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / iters
    from torch.utils.benchmark import Timer

    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.timeit(iters).mean


def interleaved_times(fns: dict[str, Callable[[], object]], device: torch.device, rounds: int,
                      block_s: float, warmup: int = 1) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Per-round seconds per call of each function, timed in a rotating interleaved order.

    Each function is warmed up ``warmup`` times, then calibrated so one block lasts about
    ``block_s`` seconds (at least one call).
    """
    iters = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        _sync(device)
        t = time_block(fn, 1, device)
        iters[name] = max(1, int(block_s / max(t, 1e-9)))
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            times[n].append(time_block(fns[n], iters[n], device))
    return times, iters


def quantile(xs: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of a non-empty sequence."""
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class LiveTensorBytes:
    """Peak bytes of tensor storages created while active (CPU memory measurement).

    A ``TorchDispatchMode`` sees every ATen op, autograd's backward included; each new
    output storage is counted until it is freed (checked through a weak reference at the
    next op). Storages alive before entering are not counted.
    """

    def __init__(self) -> None:
        self.peak = 0

    def __enter__(self) -> "LiveTensorBytes":
        from torch.multiprocessing.reductions import StorageWeakRef
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_flatten

        tracker = self
        live: dict[int, tuple[object, int]] = {}
        current = [0]

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for key in [k for k, (ref, _) in live.items() if ref.expired()]:
                    current[0] -= live.pop(key)[1]
                inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                          if isinstance(t, torch.Tensor)}
                for t in tree_flatten(out)[0]:
                    if not isinstance(t, torch.Tensor):
                        continue
                    st = t.untyped_storage()
                    key = st.data_ptr()
                    if key in inputs or key in live:
                        continue  # a view or an in-place result: no new memory
                    live[key] = (StorageWeakRef(st), st.nbytes())
                    current[0] += st.nbytes()
                tracker.peak = max(tracker.peak, current[0])
                return out

        self._mode = _Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)


def peak_memory_mb(step: Callable[[], object], device: torch.device) -> float:
    """Peak extra memory of one call of ``step`` in MiB (method in the module docstring)."""
    if device.type == "cuda":
        _sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        _sync(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    with LiveTensorBytes() as live:
        step()
    return live.peak / 2**20


def memory_method(device: torch.device) -> str:
    return ("cuda max_memory_allocated above the pre-step allocation" if device.type == "cuda"
            else "peak live tensor bytes created during the step (ATen dispatch tracking)")


def is_oom(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in msg or "can't allocate memory" in msg


def _free(device: torch.device, collect: bool = False) -> None:
    """Return cached GPU memory; ``collect`` also runs the garbage collector (after a failure,
    whose traceback may hold tensors). It costs ~1 s with dynamo loaded, so not by default."""
    if collect:
        gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ---------------------------------------------------------------- one suite


@dataclass
class SuiteResult:
    suite: str
    shape: Shape
    dtype: torch.dtype
    device: torch.device
    rows: list[Row]


def run_suite(suite: str | Suite, providers: Sequence[str | Provider] | None = None, size: str = "default",
              device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, rounds: int = 5,
              block_s: float | None = None, shape: Shape | None = None, tol: float | None = None,
              check: bool = True, memory: bool = True, baseline: bool = True,
              log: Callable[[str], None] = print) -> SuiteResult:
    """Check and time every provider of one suite on one shared case; one :class:`Row` per
    (phase, provider). ``shape`` overrides the ``size`` preset (scaling sweeps).

    A provider that cannot run here gets a ``skipped`` row with the reason; a provider
    whose outputs disagree with the oracle gets a ``mismatch`` row and is not timed.
    ``baseline=False`` leaves the reference out (scaling past its memory): no check, no speedup.
    The path switches a variant's setup sets (:func:`_paths`) are back at their defaults after.
    """
    try:
        return _run_suite(suite, providers, size, device, dtype, rounds, block_s, shape, tol, check, memory,
                          baseline, log)
    finally:
        _paths()()
        config = sys.modules.get("fastsiren.kernels.config")
        if config is not None:  # a triton variant's settings end with the suite too
            config.reset_precision()
            config.set_wgrad(None)
            config.set_gemm(None)


def _run_suite(suite, providers, size, device, dtype, rounds, block_s, shape, tol, check, memory, baseline,
               log) -> SuiteResult:
    suite = get_suite(suite) if isinstance(suite, str) else suite
    device = torch.device(device)
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    # NaN fails every comparison: 'not x > 0', not 'x <= 0'
    if block_s is not None and not (math.isfinite(block_s) and block_s > 0):
        raise ValueError(f"block_s must be a positive number of seconds, got {block_s}")
    if tol is not None and not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive relative tolerance, got {tol}")
    shape = shape or default_shape(suite.name, size, device.type)
    if block_s is None:
        block_s = 0.05 if device.type == "cuda" else 0.2
    provs = resolve_providers(providers, baseline)
    everything = not providers or "all" in providers
    named = {n if isinstance(n, str) else n.name for n in providers or ()} - {"all"}
    provs = [p for p in provs if p.name in named or not everything or p.in_all(suite.name, device.type)]
    check = check and baseline
    log(f"[{suite.name}] {shape.describe()}, {str(dtype).replace('torch.', '')} on {device}")
    case = suite.make_case(shape, device, dtype)
    oracle_case = case.to(torch.float64) if check else None

    loaded: dict[str, object] = {}
    skipped: dict[str, Row] = {}
    for p in provs:
        if p.suites and suite.name not in p.suites:
            skipped[p.name] = Row(suite.name, "", p.name, "skipped",
                                  f"{p.name} measures only the suites {', '.join(p.suites)}")
            continue
        try:
            loaded[p.name] = p.load(device)
        except ProviderUnavailable as exc:
            skipped[p.name] = Row(suite.name, "", p.name, "skipped", str(exc))
        except Exception as exc:  # an optional provider that cannot even be set up
            status = "skipped" if p.optional else "error"
            skipped[p.name] = Row(suite.name, "", p.name, status, _short(exc))
    if baseline and BASELINE not in loaded:
        raise RuntimeError(f"the {BASELINE} provider cannot run on {device}: {skipped[BASELINE].reason}")

    rows: list[Row] = []
    for phase in suite.phases:
        rows.extend(_run_phase(suite, phase, case, oracle_case, provs, loaded, skipped, device, rounds, block_s,
                               tol, memory, log))
    del case, oracle_case
    _free(device)
    return SuiteResult(suite.name, shape, dtype, device, rows)


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:300]


def _run_phase(suite: Suite, phase: str, case: Case, oracle_case: Case | None, provs: list[Provider],
               loaded: dict[str, object], skipped: dict[str, Row], device: torch.device, rounds: int,
               block_s: float, tol: float | None, memory: bool, log) -> list[Row]:
    rows: dict[str, Row] = {}
    runners: dict[str, Runner] = {}
    oracle = ref_same = None
    if oracle_case is not None and BASELINE in loaded:
        oracle = suite.bind(oracle_case, phase, loaded[BASELINE]).outputs()
    for p in provs:
        if p.name in skipped:
            base = skipped[p.name]
            rows[p.name] = Row(suite.name, phase, p.name, base.status, base.reason)
            continue
        try:
            runner = suite.bind(case, phase, loaded[p.name])
            if p.setup is not None:
                runner = _with_setup(runner, p.setup)
            got = runner.outputs()
            if oracle is not None:
                if p.name == BASELINE:
                    ref_same = got
                verdict = check_outputs(got, oracle, ref_same, case.dtype, tol)
                if not verdict.ok:
                    rows[p.name] = Row(suite.name, phase, p.name, "mismatch", verdict.detail,
                                       max_err=verdict.max_err, ref_err=verdict.ref_err)
                    continue
                rows[p.name] = Row(suite.name, phase, p.name, "ok", max_err=verdict.max_err,
                                   ref_err=verdict.ref_err)
            else:
                rows[p.name] = Row(suite.name, phase, p.name, "ok")
            del got
            runners[p.name] = runner
        except Exception as exc:
            status = "oom" if is_oom(exc) else ("skipped" if p.optional else "error")
            rows[p.name] = Row(suite.name, phase, p.name, status, _short(exc))
            _free(device, collect=True)
    del oracle, ref_same
    _free(device)

    gemms = suite.gemms(case, phase)
    flops = total_flops(gemms)
    fns: dict[str, Callable[[], object]] = {n: r.step for n, r in runners.items()}
    floors = {"__floor__": False}
    if device.type == "cuda" and case.dtype == torch.float32:
        floors["__floor_x3__"] = True
    for key, x3 in floors.items():
        try:
            fns[key] = floor_runner(gemms, device, case.dtype, tf32x3=x3)
        except Exception as exc:  # e.g. out of memory for the floor's buffers: report without it
            log(f"  floor{' (3xTF32)' if x3 else ''} not measured: {_short(exc)}")
            _free(device, collect=True)
    times: dict[str, list[float]] = {}
    iters: dict[str, int] = {}
    # Timing runs everything in one loop; a provider failing here (out of memory at a size
    # its check passed) is removed and the rest are timed again.
    while fns:
        try:
            times, iters = interleaved_times(fns, device, rounds, block_s)
            break
        except Exception as exc:
            culprit = _find_failing(fns, device)
            if culprit is None:
                raise
            status = "oom" if is_oom(exc) else "error"
            if culprit not in floors:
                rows[culprit].status, rows[culprit].reason = status, _short(exc)
                runners.pop(culprit, None)
            fns.pop(culprit)
            _free(device, collect=True)
    floor_s = quantile(times["__floor__"], 0.5) if "__floor__" in times else math.nan
    floor_x3_s = quantile(times["__floor_x3__"], 0.5) if "__floor_x3__" in times else math.nan
    for name, runner in runners.items():
        ts = times[name]
        row = rows[name]
        row.median_ms, row.q10_ms, row.q90_ms = (quantile(ts, q) * 1e3 for q in (0.5, 0.1, 0.9))
        row.rounds, row.iters = len(ts), iters[name]
        row.gflop = flops / 1e9
        row.tflops = flops / quantile(ts, 0.5) / 1e12
        row.floor_ms = floor_s * 1e3
        row.floor_frac = floor_s / quantile(ts, 0.5)
        row.floor_x3_ms = floor_x3_s * 1e3
        row.floor_x3_frac = floor_x3_s / quantile(ts, 0.5)
        if memory and not (device.type == "cpu" and name.endswith("+compile")):
            try:
                row.peak_mb = peak_memory_mb(runner.step, device)
            except Exception as exc:
                row.extra["memory_error"] = _short(exc)
    base = rows.get(BASELINE)
    for row in rows.values():
        if row.status == "ok" and base is not None and base.status == "ok":
            row.speedup = base.median_ms / row.median_ms
        row.phase = phase
        if row.status == "ok":
            log(f"  {phase:>16} {row.provider:<18} {row.median_ms:10.3f} ms  [{row.q10_ms:.3f}, {row.q90_ms:.3f}]"
                f"  x{row.speedup:5.2f}  {row.tflops * 1e3:8.2f} GFLOP/s  floor {row.floor_frac:5.2f}"
                + (f" (3xTF32 {row.floor_x3_frac:5.2f})" if math.isfinite(row.floor_x3_frac) else "")
                + f"  peak {row.peak_mb:9.1f} MiB  err {row.max_err:.2g}")
        else:
            log(f"  {phase:>16} {row.provider:<18} {row.status}: {row.reason}")
    runners.clear()
    fns.clear()
    _free(device, collect=device.type == "cuda")
    return [rows[p.name] for p in provs]


def _with_setup(runner: Runner, setup: Callable[[], None]) -> Runner:
    def outputs():
        setup()
        return runner.outputs()

    def step():
        setup()
        return runner.step()

    return Runner(outputs, step)


def _find_failing(fns: dict[str, Callable[[], object]], device: torch.device) -> str | None:
    for name, fn in fns.items():
        try:
            fn()
            _sync(device)
        except Exception:
            _free(device, collect=True)
            return name
    return None
