"""The benchmark suites: what each one times, on which inputs, and how much work that is.

A *suite* builds one :class:`Case` (inputs and parameters shared by every provider) and,
for each of its *phases*, binds a provider's ops (the backend-module protocol of
:mod:`fastsiren.backends`) to a :class:`Runner` with two entry points: ``outputs()`` (what
the correctness check compares, computed from the initial parameters) and ``step()`` (the
timed unit).

FLOP count (used for TFLOP/s and for the GEMM floor). Only matrix products are counted,
2*m*k*n per product, as flash-attention's and Liger's ``flops()`` do; sines, cosines,
the jet epilogue and Adam are elementwise and left out. The count is the work of the
forward-mode jet algorithm (the report's Method section; :mod:`fastsiren.jet`), the same
nominal number for every provider: with S streams per point (1, 1+D, 2+D for value,
+gradient, +Laplacian) and layer widths d_0..d_L,

* forward: layer 0 is one (N, D) x (D, d_1) product (its derivative streams are free:
  ``a_k`` is a column of W, ``l = 0``), layer i >= 1 one (S N, d_i) x (d_i, d_{i+1}) product;
* backward: per layer i >= 1 a weight gradient (d_{i+1}, S N) x (S N, d_i) and an input
  gradient (S N, d_{i+1}) x (d_{i+1}, d_i); layer 0 only a weight gradient (d_1, N) x (N, D).

A provider that does more products (autograd's double backward does) still gets credit for
this nominal count only, so TFLOP/s compare providers on the same work. The *floor* is the
time of exactly these products alone through ``torch.matmul`` at the benchmark's dtype.
The other way round on ``poisson-grad`` (a gray image, O = 1 < D = 2): the torch, triton and
cuda backends take the reverse-mode gradient there (:func:`fastsiren.jet.reverse_grad_function`:
6 products per hidden layer instead of the 9 counted), so their TFLOP/s and floor fraction
are of the nominal work and the fraction may exceed 1; the ``+fwd`` providers run the
counted algorithm.

The ``wave`` suite is the Laplacian step of a time-dependent PDE: a SIREN of (t, x, y) (D = 3,
S = 5 streams) trained on the wave equation's residual ``f_tt - v^2 (f_xx + f_yy)``
(:data:`WAVE_SPEED`), one order-2 jet with ``laplacian_weights = (1, -v^2, -v^2)``; its points
are a (T, H, W) grid with as many points as the Poisson suites' image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import torch

from fastsiren.data import grid
from fastsiren.jet import num_streams
from fastsiren.layers import Siren

SIZES = ("quick", "default", "large")
# The reverse-mode gradient's products per hidden layer over the counted forward-mode ones
# (poisson-grad; the first and last layers' products are small beside them).
REVERSE_GRAD_PRODUCT_SHARE = 6 / 9

# Points per suite for each size, per device type. The CPU default is the issue's
# 3x256 network on 128x128 points; the GPU default 512x512 (fit), 256x256 (Poisson), a
# 4096x4096 render. ``chunk`` bounds the points per inference pass of the render suite (the
# CPU's large render is the SR issue's 2048x2048 output in passes of 2^18 points). The GPU
# default renders in passes of 2^20 points, as ``Siren.render`` does: the Triton issue's
# target is against *chunked* eager inference (unchunked, the reference peaked at 96 GiB on
# an H200, benchmarks/results/render.csv, more than an H100 has).
_GRIDS = {
    ("quick", "cpu"): dict(fit=(16, 16), poisson=(16, 16), layer=256, render=(32, 32), chunk=512, wave=(4, 8, 8)),
    ("default", "cpu"): dict(fit=(128, 128), poisson=(128, 128), layer=16384, render=(256, 256), chunk=1 << 18,
                             wave=(16, 32, 32)),
    ("large", "cpu"): dict(fit=(256, 256), poisson=(256, 256), layer=65536, render=(2048, 2048), chunk=1 << 18,
                           wave=(16, 64, 64)),
    ("quick", "cuda"): dict(fit=(64, 64), poisson=(64, 64), layer=4096, render=(256, 256), chunk=None,
                            wave=(4, 32, 32)),
    ("default", "cuda"): dict(fit=(512, 512), poisson=(256, 256), layer=1 << 18, render=(4096, 4096), chunk=1 << 20,
                              wave=(16, 64, 64)),
    ("large", "cuda"): dict(fit=(1024, 1024), poisson=(512, 512), layer=1 << 20, render=(8192, 8192),
                            chunk=1 << 22, wave=(16, 128, 128)),
}
# The wave suite's speed v in f_tt - v^2 (f_xx + f_yy) (its timings do not depend on it).
WAVE_SPEED = 0.5


def wave_weights(dim: int) -> tuple[float, ...]:
    """The Laplacian's weights of the wave residual in (t, x_1..x_{D-1}): (1, -v^2, ..., -v^2)."""
    return (1.0,) + (-WAVE_SPEED ** 2,) * (dim - 1)
_NETS = {"quick": dict(hidden=32, hidden_layers=1), "default": dict(hidden=256, hidden_layers=3),
         "large": dict(hidden=256, hidden_layers=3)}

# Points of the render suite compared against the oracle (the whole grid at 4096^2 in
# float64 would not fit next to the timed providers).
RENDER_CHECK_POINTS = 1 << 16
LEARNING_RATE = 1e-4


@dataclass(frozen=True)
class Shape:
    """Problem size of one case: N points in D dimensions through a SIREN of widths ``dims``.

    ``grid_shape`` is set when the points are a pixel grid; ``chunk`` (render only) bounds
    the points per pass, None = all at once.
    """

    points: int
    in_features: int = 2
    hidden: int = 256
    hidden_layers: int = 3
    out_features: int = 1
    grid_shape: tuple[int, ...] | None = None
    chunk: int | None = None

    @property
    def dims(self) -> list[int]:
        return [self.in_features] + [self.hidden] * (self.hidden_layers + 1) + [self.out_features]

    def describe(self) -> str:
        pts = "x".join(map(str, self.grid_shape)) if self.grid_shape else str(self.points)
        return (f"{pts} points, D={self.in_features}, {self.hidden_layers + 2} layers of width {self.hidden}, "
                f"out={self.out_features}")


def default_shape(suite: str, size: str, device_type: str) -> Shape:
    """The :class:`Shape` of ``suite`` at ``size`` ("quick", "default", "large") on a device type."""
    if size not in SIZES:
        raise ValueError(f"size={size!r} is not a benchmark size; expected one of {list(SIZES)}")
    table = _GRIDS[(size, "cuda" if device_type == "cuda" else "cpu")]
    net = _NETS[size]
    if suite == "layer":
        return Shape(points=table["layer"], in_features=net["hidden"], hidden=net["hidden"], hidden_layers=0,
                     out_features=net["hidden"])
    key = {"fit": "fit", "poisson-grad": "poisson", "poisson-laplacian": "poisson", "render": "render",
           "wave": "wave"}[suite]
    g = table[key]
    return Shape(points=math.prod(g), in_features=len(g), grid_shape=g,
                 chunk=table["chunk"] if suite == "render" else None, **net)


# ---------------------------------------------------------------- work accounting


@dataclass(frozen=True)
class Gemm:
    """``count`` products (m, k) x (k, n)."""

    m: int
    k: int
    n: int
    count: int = 1

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n * self.count


def network_gemms(dims: list[int], points: int, streams: int, backward: bool) -> list[Gemm]:
    """Products of a jet forward (and backward) through widths ``dims`` (module docstring)."""
    n, sn = points, streams * points
    out = [Gemm(n, dims[0], dims[1])]
    for i in range(1, len(dims) - 1):
        out.append(Gemm(sn, dims[i], dims[i + 1]))
    if backward:
        out.append(Gemm(dims[1], n, dims[0]))
        for i in range(1, len(dims) - 1):
            out.append(Gemm(dims[i + 1], sn, dims[i]))
            out.append(Gemm(sn, dims[i + 1], dims[i]))
    return out


def total_flops(gemms: list[Gemm]) -> int:
    return sum(g.flops for g in gemms)


# ---------------------------------------------------------------- cases and runners


@dataclass
class Case:
    """Inputs and initial parameters of one suite, identical for every provider.

    ``weights[i]`` (d_{i+1}, d_i), ``biases[i]`` (d_{i+1},), ``omegas[i]`` float or None
    (linear); ``inputs`` holds the suite's tensors (e.g. ``x`` (N, D), ``target``).
    """

    suite: str
    shape: Shape
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    omegas: tuple[float | None, ...]
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def dtype(self) -> torch.dtype:
        return self.weights[0].dtype

    @property
    def device(self) -> torch.device:
        return self.weights[0].device

    def to(self, dtype: torch.dtype) -> "Case":
        """The same case in another dtype (the float64 oracle)."""
        cast = lambda t: t.to(dtype)  # noqa: E731
        return replace(self, weights=[cast(w) for w in self.weights], biases=[cast(b) for b in self.biases],
                       inputs={k: cast(v) for k, v in self.inputs.items()})


class Runner:
    """One provider bound to one phase of a case: ``outputs()`` for the check, ``step()`` timed."""

    def __init__(self, outputs: Callable[[], dict[str, torch.Tensor]], step: Callable[[], object]) -> None:
        self.outputs = outputs
        self.step = step


@dataclass(frozen=True)
class Suite:
    """A benchmark suite: how to build its case, its phases, and how to bind a provider."""

    name: str
    description: str
    phases: tuple[str, ...]
    order: int | None  # jet order of the training suites; None for layer/render
    # the Laplacian's weights of an order-2 suite from D (None: the plain Laplacian)
    laplacian_weights: Callable[[int], tuple[float, ...]] | None = None

    def make_case(self, shape: Shape, device: torch.device | str, dtype: torch.dtype, seed: int = 0) -> Case:
        return _MAKE[self.name](self, shape, torch.device(device), dtype, seed)

    def gemms(self, case: Case, phase: str) -> list[Gemm]:
        """The products whose time is the floor of ``phase`` (module docstring)."""
        s = case.shape
        if self.name == "layer":
            fwd = [Gemm(s.points, s.hidden, s.hidden)]
            if phase == "forward":
                return fwd
            return fwd + [Gemm(s.hidden, s.points, s.hidden), Gemm(s.points, s.hidden, s.hidden)]
        if self.name == "render":
            chunk = s.chunk or s.points
            full, rest = divmod(s.points, chunk)
            out = [replace(g, count=full) for g in network_gemms(s.dims, chunk, 1, backward=False)]
            if rest:
                out += network_gemms(s.dims, rest, 1, backward=False)
            return out
        return network_gemms(s.dims, s.points, num_streams(self.order, s.in_features), backward=True)

    def bind(self, case: Case, phase: str, ops) -> Runner:
        """A :class:`Runner` running ``phase`` of ``case`` with ``ops`` (backend-module protocol)."""
        if phase not in self.phases:
            raise ValueError(f"phase={phase!r} is not a phase of suite {self.name!r}; expected one of {self.phases}")
        if self.name == "layer":
            return _bind_layer(case, phase, ops)
        if self.name == "render":
            return _bind_render(case, ops)
        lw = None if self.laplacian_weights is None else self.laplacian_weights(case.shape.in_features)
        return _bind_training(case, self.order, ops, lw)


def _siren_params(shape: Shape, device, dtype, seed: int):
    torch.manual_seed(seed)
    model = Siren(shape.in_features, shape.hidden, shape.hidden_layers, shape.out_features, backend="reference")
    ws = [layer.weight.detach().to(device=device, dtype=dtype) for layer in model.layers]
    bs = [layer.bias.detach().to(device=device, dtype=dtype) for layer in model.layers]
    return ws, bs, model.omegas()


def _points(shape: Shape, device, dtype, gen: torch.Generator) -> torch.Tensor:
    if shape.grid_shape is not None and len(shape.grid_shape) == shape.in_features:
        return grid(shape.grid_shape, device=device, dtype=dtype)
    # Scaling sweeps ask for N points in D dims that are not a grid: uniform in [-1, 1]^D.
    return (torch.rand(shape.points, shape.in_features, generator=gen, dtype=torch.float64) * 2 - 1).to(device, dtype)


def _make_training(suite: Suite, shape: Shape, device, dtype, seed: int) -> Case:
    ws, bs, omegas = _siren_params(shape, device, dtype, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    x = _points(shape, device, dtype, gen)
    n, out, d = shape.points, shape.out_features, shape.in_features
    # Random targets of the scale of the official Poisson targets (Sobel x10, Laplacian
    # x1e4 have unit-order std after normalisation): speed does not depend on their values.
    tshape = {0: (n, out), 1: (n, out, d), 2: (n, out)}[suite.order]
    target = torch.randn(*tshape, generator=gen, dtype=torch.float64).to(device, dtype)
    return Case(suite.name, shape, ws, bs, omegas, {"x": x, "target": target})


def _make_layer(suite: Suite, shape: Shape, device, dtype, seed: int) -> Case:
    gen = torch.Generator().manual_seed(seed)
    f = shape.hidden
    bound = math.sqrt(6.0 / f) / 30.0  # the paper's hidden-layer init
    w = ((torch.rand(f, f, generator=gen, dtype=torch.float64) * 2 - 1) * bound).to(device, dtype)
    b = ((torch.rand(f, generator=gen, dtype=torch.float64) * 2 - 1) / math.sqrt(f)).to(device, dtype)
    x = (torch.rand(shape.points, f, generator=gen, dtype=torch.float64) * 2 - 1).to(device, dtype)
    gy = torch.randn(shape.points, f, generator=gen, dtype=torch.float64).to(device, dtype)
    return Case(suite.name, shape, [w], [b], (30.0,), {"x": x, "gy": gy})


def _make_render(suite: Suite, shape: Shape, device, dtype, seed: int) -> Case:
    ws, bs, omegas = _siren_params(shape, device, dtype, seed)
    x = _points(shape, device, dtype, torch.Generator().manual_seed(seed + 1))
    return Case(suite.name, shape, ws, bs, omegas, {"x": x})


_MAKE = {"fit": _make_training, "poisson-grad": _make_training, "poisson-laplacian": _make_training,
         "wave": _make_training, "layer": _make_layer, "render": _make_render}


def _leaves(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return [t.detach().clone().requires_grad_(True) for t in tensors]


def _bind_training(case: Case, order: int, ops, laplacian_weights: tuple[float, ...] | None = None) -> Runner:
    """Training step: loss on value (order 0), gradient (1) or Laplacian (2; weighted by
    ``laplacian_weights`` where given), backward, Adam."""
    ws, bs = _leaves(case.weights), _leaves(case.biases)
    params = ws + bs
    x, target = case.inputs["x"], case.inputs["target"]
    opt = torch.optim.Adam(params, lr=LEARNING_RATE)

    def loss() -> torch.Tensor:
        if order == 0:
            pred = ops.mlp_forward(x, ws, bs, case.omegas)
        else:
            jet = (ops.mlp_jet(x, ws, bs, case.omegas, order) if laplacian_weights is None
                   else ops.mlp_jet(x, ws, bs, case.omegas, order, laplacian_weights))
            pred = jet.grad if order == 1 else jet.laplacian
        return torch.nn.functional.mse_loss(pred, target)

    def outputs() -> dict[str, torch.Tensor]:
        value = loss()
        # The last bias has no effect on a gradient or Laplacian: its gradient is zero.
        grads = [torch.zeros_like(p) if g is None else g
                 for p, g in zip(params, torch.autograd.grad(value, params, allow_unused=True))]
        names = [f"weight{i}.grad" for i in range(len(ws))] + [f"bias{i}.grad" for i in range(len(bs))]
        return {"loss": value.detach(), **dict(zip(names, grads))}

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss().backward()
        opt.step()

    return Runner(outputs, step)


def _bind_layer(case: Case, phase: str, ops) -> Runner:
    """One sine layer: forward (with grad enabled, as in training) or forward + backward."""
    (w,), (b,) = _leaves(case.weights), _leaves(case.biases)
    x = case.inputs["x"].detach().clone().requires_grad_(True)
    gy, omega = case.inputs["gy"], case.omegas[0]

    def run() -> dict[str, torch.Tensor]:
        y = ops.sine_linear(x, w, b, omega)
        if phase == "forward":
            return {"y": y.detach()}
        gx, gw, gb = torch.autograd.grad(y, (x, w, b), gy)
        return {"y": y.detach(), "x.grad": gx, "weight.grad": gw, "bias.grad": gb}

    return Runner(run, run)


def _bind_render(case: Case, ops) -> Runner:
    """Dense-grid inference in chunks of ``shape.chunk`` points into one output buffer."""
    x, s = case.inputs["x"], case.shape
    ws, bs = case.weights, case.biases  # plain tensors: inference builds no graph
    chunk = s.chunk or s.points
    out = torch.empty(s.points, s.out_features, device=case.device, dtype=case.dtype)

    def step() -> None:
        with torch.no_grad():
            for i in range(0, s.points, chunk):
                out[i:i + chunk] = ops.mlp_infer(x[i:i + chunk], ws, bs, case.omegas, 0).value

    def outputs() -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {"value": ops.mlp_infer(x[:RENDER_CHECK_POINTS], ws, bs, case.omegas, 0).value}

    return Runner(outputs, step)


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite("layer", "one sine-linear layer (N, F) -> (N, F): forward, forward + backward",
              ("forward", "forward+backward"), None),
        Suite("fit", "image-fit training step: MSE on the value, backward, Adam", ("step",), 0),
        Suite("poisson-grad", "Poisson training step on the gradient jet: MSE, backward, Adam", ("step",), 1),
        Suite("poisson-laplacian", "Poisson training step on the Laplacian jet: MSE, backward, Adam", ("step",), 2),
        Suite("render", "dense-grid inference (mlp_infer, order 0) in chunks", ("infer",), None),
        Suite("wave", "wave-equation training step in (t, x, y): MSE of f_tt - v^2 (f_xx + f_yy) from one "
              "weighted-Laplacian jet, backward, Adam", ("step",), 2, laplacian_weights=wave_weights),
    )
}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise ValueError(f"suite={name!r} is not a benchmark suite; expected one of {list(SUITES)} or 'all'")
    return SUITES[name]


def floor_runner(gemms: list[Gemm], device, dtype, max_rows: int = 1 << 22,
                 tf32x3: bool = False) -> Callable[[], None]:
    """A callable that runs exactly ``gemms`` through ``torch.matmul`` (the floor).

    Dimensions above ``max_rows`` are split into products of at most ``max_rows`` (same
    FLOPs, each still large enough to run at full speed) so the floor of a 4096^2 render
    needs two ~4 GB buffers instead of two 17 GB ones. ``tf32x3``: each GEMM as the three TF32
    products of already split operands (rest x head, head x rest, head x head, as
    ``fastsiren.jet.mm`` makes them; the splitting passes are not part of a floor): the floor
    of the ``+3xtf32`` providers.
    """
    plan = []
    for g in gemms:
        m_parts = _split(g.m, max_rows)
        k_parts = _split(g.k, max_rows)
        for m in m_parts:
            for k in k_parts:
                plan.append((m, k, g.n, g.count))
    a = torch.randn(max(m * k for m, k, _, _ in plan), device=device, dtype=dtype)
    c = torch.empty(max(m * n for m, _, n, _ in plan), device=device, dtype=dtype)
    bs = {(k, n): torch.randn(k, n, device=device, dtype=dtype) for _, k, n, _ in plan}
    ops = [(a[:m * k].view(m, k), bs[(k, n)], c[:m * n].view(m, n), count) for m, k, n, count in plan]
    if tf32x3:
        from fastsiren.jet import Split, mm

        a_rest = torch.randn_like(a)
        b_rest = {key: torch.randn_like(b) for key, b in bs.items()}
        parts = [(Split(a_, a_rest[:a_.numel()].view_as(a_)), Split(b_, b_rest[tuple(b_.shape)]), c_, count)
                 for a_, b_, c_, count in ops]

        def run_x3() -> None:
            for a_op, b_op, c_, count in parts:
                for _ in range(count):
                    mm(a_op, b_op, out=c_)  # split operands: the three products alone

        return run_x3

    def run() -> None:
        for a_, b_, c_, count in ops:
            for _ in range(count):
                torch.matmul(a_, b_, out=c_)

    return run


def _split(size: int, cap: int) -> list[int]:
    full, rest = divmod(size, cap)
    return [cap] * full + ([rest] if rest else [])
