"""The triton backend against the reference backend.

CPU tier: the kernels run under the Triton interpreter (tests/conftest.py sets
TRITON_INTERPRET=1 before triton is imported when there is no CUDA). The interpreter
computes ``tl.dot`` in the operands' dtype and supports float64, so the training kernels are
checked in float64 against the float64 reference; the fused render kernel is float32-only
and is checked against a float64 reference. Every interpreted launch costs about half a
second here, so shapes are tiny and each test checks many things per launch.

GPU tier (``-m gpu``): width-256 networks on the GPU, per precision, and large sine
arguments (``tl.sin`` may lower to an approximate instruction).

Tolerances, stated once (errors are scaled by the largest magnitude of the reference tensor):
CPU: float64 kernels 1e-9; the float32 fused render kernel 2e-5. GPU (errors against float64,
relative to PyTorch's own error when the reference backend runs at that precision, plus
1e-6): ieee <= 2x PyTorch fp32, tf32x3 <= 4x PyTorch fp32, tf32 <= 2x PyTorch tf32,
bf16/fp16 (inference) <= 2x PyTorch at that dtype.
"""

from __future__ import annotations

import math

import pytest
import torch

import fastsiren as fs
from fastsiren import backends, reference
from fastsiren.jet import Jet, tf32_products

pytest.importorskip("triton")

from fastsiren.kernels import backend as tb  # noqa: E402
from fastsiren.kernels import config, grad_ops, jet_layer, render  # noqa: E402
from fastsiren.kernels.jet_math import sin_cos_error  # noqa: E402

TOL = {"float64": 1e-9, "ieee": 2e-5}
# GPU: allowed multiple of PyTorch's own error, and the PyTorch setting it is measured at.
GPU_RULE = {"ieee": (2.0, "fp32"), "tf32x3": (4.0, "fp32"), "tf32": (2.0, "tf32"),
            "bf16": (2.0, "bf16"), "fp16": (2.0, "fp16")}
DEV = "cuda" if torch.cuda.is_available() else "cpu"


def scaled_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max(1e-3, max |b|), computed in float64."""
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-3)).item()


def assert_close(a, b, tol: float, what: str = "") -> None:
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)}"
    err = scaled_err(a, b)
    assert err <= tol, f"{what}: scaled error {err:.3g} > {tol:.1g}"


@pytest.fixture(params=["whole", "tiled"])
def tiles(request, monkeypatch):
    """The interpreter's default tiles (one across each width up to 64) or small ones (rows 32,
    16 x 16), with which the K loop runs several blocks, the column and K tiles of the weight
    gradient several programs, partial tiles are masked (widths 24 and 40) and an order-0 launch
    has two point blocks (N = 37)."""
    if request.param == "tiled":
        if not config.interpreting():
            pytest.skip("small tiles are an interpreter setting (a GPU compiles its own tiles)")
        monkeypatch.setattr(config, "INTERPRET_TILES", (32, 16, 16))
    return request.param


def make_net(dim: int, widths: list[int], out: int, last_sine: bool, dtype=torch.float64,
             device=DEV, first_omega: float = 30.0, hidden_omega: float = 3.5):
    """Random weights of a sine MLP dim -> widths... -> out (hidden omega kept small so the
    float64 Laplacian stays O(1e3) and errors are readable)."""
    dims = [dim] + widths + [out]
    gen = torch.Generator().manual_seed(1234)
    ws, bs = [], []
    for a, b in zip(dims[:-1], dims[1:]):
        ws.append((torch.randn(b, a, generator=gen, dtype=dtype) / math.sqrt(a)).to(device).requires_grad_())
        bs.append((0.1 * torch.randn(b, generator=gen, dtype=dtype)).to(device).requires_grad_())
    oms = [first_omega] + [hidden_omega] * (len(widths) - 1) + [2.0 if last_sine else None]
    return ws, bs, oms


def coords(n: int, dim: int, dtype=torch.float64, device=DEV, requires_grad=True):
    x = torch.rand(n, dim, dtype=dtype, generator=torch.Generator().manual_seed(7)) * 2 - 1
    return x.to(device).requires_grad_(requires_grad)


def jet_and_grads(fn, x, ws, bs, order):
    """The jet of ``fn`` and the gradients of a fixed random loss on it w.r.t. x and params."""
    jet = fn(x, ws, bs, order)
    gen = torch.Generator().manual_seed(3)
    outs = [t for t in jet if t is not None]
    cots = [torch.randn(t.shape, generator=gen, dtype=t.dtype).to(t.device) for t in outs]
    grads = torch.autograd.grad(outs, [x, *ws, *bs], cots)
    return jet, grads


# ------------------------------------------------------------------------- CPU tier


@pytest.mark.kernels
@pytest.mark.parametrize("mode", ["cublas", "fused"])
def test_sine_linear_matches_reference_float64(mode, monkeypatch, tiles):
    """One sine layer, both weight-gradient modes: "cublas" (the default) takes its adjoint in one
    elementwise pass and its weight gradient as one product, "fused" in the Triton kernel."""
    launched = spy_launches(monkeypatch)
    real_adjoint = jet_layer.sine_adjoint
    monkeypatch.setattr(jet_layer, "sine_adjoint", lambda *a: launched.append("sine_adjoint") or real_adjoint(*a))
    monkeypatch.setenv(config.WGRAD_ENV, mode)
    ws, bs, _ = make_net(24, [], 40, last_sine=True)
    x = coords(37, 24)
    y = fs.functional.sine_linear(x, ws[0], bs[0], 30.0, backend="triton")
    y_ref = reference.sine_linear(x, ws[0], bs[0], 30.0)
    assert_close(y, y_ref, TOL["float64"], "value")
    g = torch.randn_like(y)
    got = torch.autograd.grad(y, [x, ws[0], bs[0]], g)
    want = torch.autograd.grad(y_ref, [x, ws[0], bs[0]], g)
    for a, b, name in zip(got, want, ("x", "weight", "bias")):
        assert_close(a, b, TOL["float64"], f"grad {name}")
    assert ("_jet_wgrad_kernel" in launched) == (mode == "fused") and ("sine_adjoint" in launched) == (
        mode == "cublas"), launched
    with pytest.raises(ValueError, match="same shape"):
        real_adjoint(g.unsqueeze(0), torch.zeros(1, 37, 41, dtype=g.dtype, device=DEV), 30.0)
    # The module calls the same op.
    layer = fs.SineLayer(24, 40, omega_0=30.0, backend="triton").double().to(DEV)
    with torch.no_grad():
        layer.weight.copy_(ws[0])
        layer.bias.copy_(bs[0])
    assert_close(layer(x), y_ref, TOL["float64"], "SineLayer")


def test_sine_linear_gradcheck():
    ws, bs, _ = make_net(3, [], 4, last_sine=True)
    x = coords(5, 3)
    assert torch.autograd.gradcheck(
        lambda a, w, b: tb.sine_linear(a, w, b, 30.0), (x, ws[0], bs[0]), fast_mode=True)


# (dim, order, last layer is a sine layer): every order and dimension, both last layers.
JET_CASES = [(1, 2, True), (2, 2, False), (3, 2, False), (2, 1, True), (3, 1, False), (1, 0, False),
             (3, 0, True)]


@pytest.mark.kernels
@pytest.mark.parametrize("dim,order,last_sine", JET_CASES)
def test_mlp_jet_and_every_gradient_match_reference_float64(dim, order, last_sine, tiles):
    # Widths 24 and 40 (not powers of two), N = 37 (not a multiple of any block).
    ws, bs, oms = make_net(dim, [24, 40], 2, last_sine)
    x = coords(37, dim)
    jet, grads = jet_and_grads(lambda *a: tb.mlp_jet(*a[:3], oms, a[3]), x, ws, bs, order)
    jet_ref, grads_ref = jet_and_grads(lambda *a: reference.mlp_jet(*a[:3], oms, a[3]), x, ws, bs, order)
    for a, b, name in zip(jet, jet_ref, Jet._fields):
        assert (a is None) == (b is None), name
        if a is not None:
            assert_close(a, b, TOL["float64"], name)
    names = ["x"] + [f"weight{i}" for i in range(3)] + [f"bias{i}" for i in range(3)]
    for a, b, name in zip(grads, grads_ref, names):
        assert_close(a, b, TOL["float64"], f"d loss / d {name}")


@pytest.mark.kernels
def test_omegas_float32_cannot_hold_reach_the_float64_kernels_whole():
    """The kernels take omega as two float32 halves (jet_math.join_omega), so a float64 network
    with omegas that float32 cannot hold (30.1, 3.3, 2.2; the other tests' are exact in float32)
    still matches the reference to float64's tolerance, not to float32's rounding of omega
    (a relative 3e-8: the mutation check's omega-drops-low-half was missed without this test)."""
    ws, bs, oms = make_net(2, [24, 40], 1, True, first_omega=30.1, hidden_omega=3.3)
    oms = [*oms[:-1], 2.2]
    x = coords(37, 2)
    jet, grads = jet_and_grads(lambda *a: tb.mlp_jet(*a[:3], oms, a[3]), x, ws, bs, 2)
    assert_matches_reference(jet, grads, x, ws, bs, oms, 2)


def spy_launches(monkeypatch) -> list[str]:
    """The names of the kernels jet_layer.launch starts from now on (the GEMM kernels)."""
    launched: list[str] = []
    real_launch = jet_layer.launch

    def spy(kernel, *args, **kwargs):
        launched.append(getattr(getattr(kernel, "fn", kernel), "__name__", ""))
        return real_launch(kernel, *args, **kwargs)

    monkeypatch.setattr(jet_layer, "launch", spy)
    return launched


def mixed_net(dim: int, last_sine: bool):
    """dim -> 24 -> 40 -> 24 -> 2 with layer 1 linear, and 37 points: (ws, bs, oms, x)."""
    ws, bs, oms = make_net(dim, [24, 40, 24], 2, last_sine)
    return ws, bs, [oms[0], None, *oms[2:]], coords(37, dim)


def assert_matches_reference(jet, grads, x, ws, bs, oms, order) -> None:
    """``jet`` and the gradients of :func:`jet_and_grads` against the reference in float64."""
    jet_ref, grads_ref = jet_and_grads(lambda *a: reference.mlp_jet(*a[:3], oms, a[3]), x, ws, bs, order)
    for a, b, name in zip(jet, jet_ref, Jet._fields):
        if b is not None:
            assert_close(a, b, TOL["float64"], name)
    names = ["x"] + [f"weight{i}" for i in range(len(ws))] + [f"bias{i}" for i in range(len(bs))]
    for a, b, name in zip(grads, grads_ref, names):
        assert_close(a, b, TOL["float64"], f"d loss / d {name}")


def wgrad_jet_and_grads(mode, x, ws, bs, oms, order, lap_weights=None):
    """:func:`jet_and_grads` of the triton backend with its weight gradients in ``mode``
    (config.set_wgrad: "cublas", the default, or "fused")."""
    config.set_wgrad(mode)
    try:
        return jet_and_grads(lambda *a: tb.mlp_jet(*a[:3], oms, a[3], lap_weights), x, ws, bs, order)
    finally:
        config.set_wgrad(None)


@pytest.mark.kernels
@pytest.mark.parametrize("dim,out,last_sine", [(2, 1, False), (3, 2, True)])
def test_reverse_gradient_path_matches_reference_float64(dim, out, last_sine, monkeypatch, tiles):
    """Order-1 jets with fewer outputs than input dimensions (the Poisson gradient loss) take the
    reverse-mode gradient: GEMMs by torch.matmul, elementwise steps by the kernels of grad_ops.
    Value, gradient and every parameter gradient against the reference, for a loss on both
    outputs and on the gradient alone (no value adjoint); set_reverse_grad(False) gives forward
    mode, which agrees."""
    calls = []
    for name in ("sin_cos", "reverse_adjoint", "forward_adjoint"):
        real = getattr(grad_ops.TritonGradOps, name)
        monkeypatch.setattr(grad_ops.TritonGradOps, name,
                            staticmethod(lambda *a, _f=real, _n=name, **k: calls.append(_n) or _f(*a, **k)))
    ws, bs, oms = make_net(dim, [24, 40], out, last_sine)
    x = coords(37, dim)
    names = ["x"] + [f"weight{i}" for i in range(3)] + [f"bias{i}" for i in range(3)]
    ref = reference.mlp_jet(x, ws, bs, oms, 1)
    cot = torch.randn(ref.grad.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64).to(DEV)
    grad_only_ref = torch.autograd.grad((ref.grad * cot).sum(), [x, *ws, *bs], allow_unused=True,
                                        materialize_grads=True)  # the last bias does not move the gradient
    jet_ref, grads_ref = jet_and_grads(lambda *a: reference.mlp_jet(*a[:3], oms, a[3]), x, ws, bs, 1)
    for reverse in (True, False):
        backends.set_reverse_grad(reverse)
        try:
            jet, grads = jet_and_grads(lambda *a: tb.mlp_jet(*a[:3], oms, a[3]), x, ws, bs, 1)
            grad_only = torch.autograd.grad((tb.mlp_jet(x, ws, bs, oms, 1).grad * cot).sum(), [x, *ws, *bs],
                                                allow_unused=True, materialize_grads=True)
        finally:
            backends.set_reverse_grad(None)
        assert jet.laplacian is None
        for a, b, name in zip(jet[:2], jet_ref[:2], Jet._fields):
            assert_close(a, b, TOL["float64"], f"reverse={reverse} {name}")
        for a, b, name in zip(grads, grads_ref, names):
            assert_close(a, b, TOL["float64"], f"reverse={reverse} d loss / d {name}")
        for a, b, name in zip(grad_only, grad_only_ref, names):
            assert_close(a, b, TOL["float64"], f"reverse={reverse} d (gradient loss) / d {name}")
        if reverse:
            assert set(calls) == {"sin_cos", "reverse_adjoint", "forward_adjoint"}
            calls.clear()
    assert calls == [], "forward mode ran the reverse-mode kernels"


@pytest.mark.parametrize("mode", ["cublas", "fused"])
@pytest.mark.parametrize("dim,order,last_sine", [(2, 2, False), (3, 1, True), (1, 0, False), (2, 1, False),
                                                  (2, 0, True)])
@pytest.mark.kernels
def test_weight_gradient_modes_match_reference_float64(mode, dim, order, last_sine, monkeypatch, tiles):
    """config.set_wgrad("cublas") (the default): the layer inputs' post streams written once by
    the epilogue-only kernel and each weight gradient one torch.matmul; the fused
    weight-gradient kernel runs only where the adjoint is still to be applied (a sine top layer)
    and on the first layer (raw coordinates) of a jet of order >= 1; at order 0 a sine top
    layer's adjoint is one elementwise pass and the first layer's product takes the coordinates,
    so it never runs. "fused": that kernel makes every layer's weight gradient. Linear hidden
    layer included (its output is kept as is)."""
    launched = spy_launches(monkeypatch)
    ws, bs, oms, x = mixed_net(dim, last_sine)
    jet, grads = wgrad_jet_and_grads(mode, x, ws, bs, oms, order)
    assert_matches_reference(jet, grads, x, ws, bs, oms, order)
    if not (order == 1 and 2 < dim):  # the reverse-mode gradient has no weight-gradient kernel at all
        expected = len(ws) if mode == "fused" else (0 if order == 0 else 1 + last_sine)
        assert launched.count("_jet_wgrad_kernel") == expected, launched
    monkeypatch.setenv(config.WGRAD_ENV, "cuBLAS")
    with pytest.raises(ValueError, match=config.WGRAD_ENV):
        config.wgrad_mode()
    with pytest.raises(ValueError, match="mode"):
        config.set_wgrad("gemm")


@pytest.mark.kernels
@pytest.mark.parametrize("dim,order,last_sine", [(2, 2, False), (3, 1, True), (1, 0, False), (2, 0, True)])
def test_cublas_gemm_mode_matches_reference_float64(dim, order, last_sine, monkeypatch, tiles):
    """config.set_gemm("cublas"): every GEMM a torch.matmul, the jet epilogue (_jet_post_kernel)
    and its adjoint (_jet_adjoint_kernel) their own passes; only the first layer of a jet keeps
    its Triton kernels. Linear hidden layer included."""
    launched = spy_launches(monkeypatch)
    ws, bs, oms, x = mixed_net(dim, last_sine)
    monkeypatch.setenv(config.GEMM_ENV, "cublas")
    backends.set_reverse_grad(False)  # the jet path (order 1 with out < D would go reverse)
    try:
        jet, grads = jet_and_grads(lambda *a: tb.mlp_jet(*a[:3], oms, a[3]), x, ws, bs, order)
    finally:
        backends.set_reverse_grad(None)
    assert_matches_reference(jet, grads, x, ws, bs, oms, order)
    first = 1 if order >= 1 else 0  # the first layer of a jet: forward, weight gradient, input gradient
    assert launched.count("_jet_fwd_kernel") == first, launched
    assert launched.count("_jet_wgrad_kernel") == first and launched.count("_jet_dgrad_kernel") == first, launched
    monkeypatch.setenv(config.GEMM_ENV, "cuBLAS")
    with pytest.raises(ValueError, match=config.GEMM_ENV):
        config.gemm_mode()
    with pytest.raises(ValueError, match="mode"):
        config.set_gemm("mma")
    with pytest.raises(ValueError, match=r"must both be \(S=4"):
        jet_layer.jet_layer_adjoint(torch.zeros(4, 5, 8, dtype=torch.float64, device=DEV),
                                    torch.zeros(4, 5, 7, dtype=torch.float64, device=DEV), 30.0, 2, 2)


# (dim, Laplacian weights, last sine, weight-gradient mode, GEMM mode): the wave operator's signs,
# a zero weight, D = 1..3, every kernel that applies the jet epilogue or its adjoint
# (fwd, dgrad prologue and epilogue, wgrad prologue and B-tile epilogue; post and adjoint
# passes in the cuBLAS modes).
WEIGHTED_CASES = [(2, (1.0, -4.0), False, "fused", "triton"), (3, (0.0, 1.0, 1.0), True, "cublas", "triton"),
                  (3, (1.0, -0.25, 2.5), False, "cublas", "cublas"), (1, (-2.5,), True, "fused", "cublas")]


@pytest.mark.kernels
@pytest.mark.parametrize("dim,lap_weights,last_sine,wgrad,gemm", WEIGHTED_CASES)
def test_weighted_laplacian_kernels_match_reference_float64(dim, lap_weights, last_sine, wgrad, gemm, monkeypatch,
                                                            tiles):
    """``laplacian_weights`` in the kernels themselves (jet_math.lap_weights: q = sum_k c_k a_k^2
    and its adjoint): value, gradient, the weighted Laplacian and every parameter gradient
    against the reference in float64, in every weight-gradient and GEMM mode, with a linear
    hidden layer; the GEMM kernels ran, and the weights went to them as one cached tensor."""
    ws, bs, oms, x = mixed_net(dim, last_sine)
    monkeypatch.setenv(config.GEMM_ENV, gemm)
    launched = spy_launches(monkeypatch)
    jet, grads = wgrad_jet_and_grads(wgrad, x, ws, bs, oms, 2, lap_weights)
    cached = jet_layer.lap_weight_tensor(lap_weights, x)
    assert cached is jet_layer.lap_weight_tensor(lap_weights, x) and cached.tolist() == list(lap_weights)
    jet_ref, grads_ref = jet_and_grads(lambda *a: reference.mlp_jet(*a[:3], oms, a[3], lap_weights), x, ws, bs, 2)
    plain = reference.mlp_jet(x, ws, bs, oms, 2).laplacian
    assert scaled_err(jet_ref.laplacian, plain) > 1e-3  # the weights change the field checked below
    for a, b, name in zip(jet, jet_ref, Jet._fields):
        assert_close(a, b, TOL["float64"], f"weighted {name}")
    names = ["x"] + [f"weight{i}" for i in range(len(ws))] + [f"bias{i}" for i in range(len(bs))]
    for a, b, name in zip(grads, grads_ref, names):
        assert_close(a, b, TOL["float64"], f"weighted: d loss / d {name}")
    assert "_jet_fwd_kernel" in launched and "_jet_dgrad_kernel" in launched, launched


def test_weighted_laplacian_render_and_bad_operand(monkeypatch):
    """The fused render kernel (float32, one launch) and the per-layer inference kernels give
    the weighted Laplacian of the reference in float64; a kernel given weights of the wrong
    length or order says so."""
    model = fs.Siren(3, 24, 1, 1, backend="triton").to(DEV)
    ref64 = fs.Siren(3, 24, 1, 1, backend="reference").double().to(DEV)
    ref64.load_state_dict(model.state_dict())
    x = coords(37, 3, dtype=torch.float32, requires_grad=False)
    c = (1.0, -0.25, -0.25)
    want = ref64.jet(x.double(), order=2, laplacian_weights=c)
    fused = []
    real = render.render_fused
    monkeypatch.setattr(render, "render_fused", lambda *a, **k: fused.append(1) or real(*a, **k))
    for on in (False, True):
        backends.set_fused_inference(on)
        try:
            got = tb.mlp_infer(x, *model._params(), model.omegas(), 2, laplacian_weights=c)
        finally:
            backends.set_fused_inference(None)
        assert len(fused) == int(on), fused
        for a, b, name in zip(got, want, Jet._fields):
            assert_close(a, b, TOL["ieee"], f"fused={on} weighted {name}")
    h = coords(5, 3, requires_grad=False).unsqueeze(0)
    w = torch.zeros(8, 3, dtype=torch.float64, device=DEV)
    with pytest.raises(ValueError, match=r"lap_w must be \(3,\) weights of an order-2 jet"):
        jet_layer.jet_layer_forward(h, w, None, 30.0, 2, 3, first=True, store_pre=False,
                                    lap_w=torch.ones(2, dtype=torch.float64, device=DEV))
    with pytest.raises(ValueError, match="at order 1"):
        jet_layer.jet_layer_forward(h, w, None, 30.0, 1, 3, first=True, store_pre=False,
                                    lap_w=torch.ones(3, dtype=torch.float64, device=DEV))
    with pytest.raises(TypeError, match="lap_w has dtype"):
        jet_layer.jet_layer_forward(h, w, None, 30.0, 2, 3, first=True, store_pre=False,
                                    lap_w=torch.ones(3, dtype=torch.float32, device=DEV))


@pytest.mark.parametrize("gemm,order,out", [("cublas", 2, 2), ("cublas", 0, 2), ("triton", 2, 2), ("triton", 1, 1)])
def test_cublas_products_follow_the_gemm_precision(gemm, order, out, monkeypatch):
    """backends.set_gemm_precision("tf32x3"): the triton backend's cuBLAS products (its weight
    gradients; every GEMM but a jet's first layer in the cublas GEMM mode; every GEMM of the
    reverse-mode gradient, order 1 with one output) go through fastsiren.jet.mm and become
    3xTF32, their operands split by the one-pass Triton kernel. Under emulated TF32 tensor cores
    (conftest.EmulatedTF32; the setting made to apply to CPU products) the step keeps float32's
    error against float64; one TF32 product per GEMM is far worse."""
    from conftest import EmulatedTF32

    from fastsiren import jet as jet_module

    monkeypatch.setattr(jet_module, "_tf32x3",
                        lambda a: a.dtype == torch.float32 and backends.gemm_precision() == "tf32x3")
    monkeypatch.setenv(config.GEMM_ENV, gemm)
    splits = []
    real_split = jet_layer.tf32_split
    monkeypatch.setattr(grad_ops.TritonGradOps, "split", staticmethod(lambda t: splits.append(1) or real_split(t)))
    monkeypatch.setattr(jet_layer, "tf32_split", lambda t: splits.append(1) or real_split(t))
    ws64, bs64, oms = make_net(2, [40, 40], out, False)
    x64 = coords(37, 2)

    def run(fn, x, ws, bs):
        jet = fn(x, ws, bs, order)
        gen = torch.Generator().manual_seed(3)  # the same cotangents in both dtypes
        outs = [t for t in jet if t is not None]
        cots = [torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t) for t in outs]
        return outs, torch.autograd.grad(outs, [x, *ws, *bs], cots)

    want, want_grads = run(lambda *a: reference.mlp_jet(*a[:3], oms, a[3]), x64, ws64, bs64)
    x, ws, bs = [[t.detach().float().requires_grad_() for t in ts] for ts in ([x64], ws64, bs64)]
    errs = {}
    for mode in ("tf32x3", "ieee"):
        backends.set_gemm_precision(mode)
        try:
            with EmulatedTF32() as emu:
                got, grads = run(lambda *a: tb.mlp_jet(*a[:3], oms, a[3]), x[0], ws, bs)
        finally:
            backends.set_gemm_precision(None)
        assert emu.products > 0
        assert (len(splits) > 0) == (mode == "tf32x3"), "operands not split by the Triton kernel"
        splits.clear()
        errs[mode] = max(scaled_err(a, b) for a, b in zip([*got, *grads], [*want, *want_grads]))
    assert errs["tf32x3"] < 2e-5, errs
    assert errs["ieee"] > 30 * errs["tf32x3"], errs


def test_tf32_split_kernel_matches_the_torch_split():
    t = torch.randn(40, 33, device=DEV) * torch.logspace(-20, 20, 33, device=DEV)
    for arg in (t, t.t()):  # a non-contiguous operand is split through a contiguous copy
        head, rest = jet_layer.tf32_split(arg)
        want_head, want_rest = jet_module_split(arg)
        assert torch.equal(head, want_head) and torch.equal(rest, want_rest)
    with pytest.raises(TypeError, match="float32"):
        jet_layer.tf32_split(t.double())


def jet_module_split(t):
    from fastsiren.jet import tf32_split

    return tf32_split(t)


def test_reverse_gradient_kernels_reject_bad_operands():
    c = torch.zeros(5, 8, dtype=torch.float64, device=DEV)
    with pytest.raises(ValueError, match="needs hbar or t"):
        grad_ops.TritonGradOps.forward_adjoint(None, c, c, None, own_hbar=False)
    with pytest.raises(ValueError, match="hbar .* must have the shape of c"):
        grad_ops.TritonGradOps.forward_adjoint(torch.zeros(5, 7, dtype=torch.float64, device=DEV), c, c, None,
                                               own_hbar=False)
    with pytest.raises(ValueError, match=r"r \(2, 5, 8\), dbar \(2, 5, 7\)"):
        grad_ops.TritonGradOps.reverse_adjoint(torch.zeros(2, 5, 8, dtype=torch.float64, device=DEV),
                                               torch.zeros(2, 5, 7, dtype=torch.float64, device=DEV), c)
    with pytest.raises(TypeError, match="r is torch.float32"):
        grad_ops.TritonGradOps.reverse_adjoint(torch.zeros(2, 5, 8, device=DEV),
                                               torch.zeros(2, 5, 8, dtype=torch.float64, device=DEV), c)
    with pytest.raises(TypeError, match="float32 or float64"):
        grad_ops.TritonGradOps.sin_cos(torch.zeros(5, 8, dtype=torch.float16, device=DEV))


def test_layer_kernels_keep_only_z_for_the_first_jet_layer():
    ws, bs, oms = make_net(2, [24], 1, last_sine=False)
    x = coords(37, 2, requires_grad=False)
    h, pres = jet_layer.mlp_streams_forward(x.detach(), [w.detach() for w in ws], [b.detach() for b in bs],
                                            oms, 2, keep=True)
    assert h.shape == (4, 37, 1)
    assert pres[0].shape == (1, 37, 24), "first sine layer of a jet keeps z only"
    assert pres[1] is h, "a linear layer's output is its own pre-activation"


def test_siren_triton_trains_like_reference():
    torch.manual_seed(0)
    model = fs.Siren(2, 24, 1, 3, backend="triton").double().to(DEV)
    ref = fs.Siren(2, 24, 1, 3, backend="reference").double().to(DEV)
    ref.load_state_dict(model.state_dict())
    x = coords(37, 2, requires_grad=False)
    target = torch.rand(37, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).to(DEV)
    for m in (model, ref):
        opt = torch.optim.SGD(m.parameters(), lr=1e-2)
        loss = ((m(x) - target) ** 2).mean()
        loss.backward()
        opt.step()
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        assert_close(p, q, TOL["float64"], name)
    # Jet with parameter gradients (a Poisson-style loss on the Laplacian).
    jet = model.jet(x, order=2)
    jet_ref = ref.jet(x, order=2)
    assert_close(jet.laplacian, jet_ref.laplacian, TOL["float64"], "laplacian")
    # The last bias does not reach the Laplacian: its gradient is zero (materialized).
    g = torch.autograd.grad(jet.laplacian.square().mean(), list(model.parameters()), materialize_grads=True)
    g_ref = torch.autograd.grad(jet_ref.laplacian.square().mean(), list(ref.parameters()),
                                materialize_grads=True)
    for a, b in zip(g, g_ref):
        assert_close(a, b, TOL["float64"], "d |laplacian|^2 / d params")


@pytest.mark.kernels
def test_double_backward_through_plain_forward():
    """The official repo's gradient(model(x), x) with create_graph=True, then a loss on it."""
    model = fs.Siren(2, 6, 0, 1, backend="triton").double().to(DEV)
    ref = fs.Siren(2, 6, 0, 1, backend="reference").double().to(DEV)
    ref.load_state_dict(model.state_dict())
    x = coords(7, 2)
    (gx,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
    (gx_ref,) = torch.autograd.grad(ref(x).sum(), x, create_graph=True)
    assert_close(gx, gx_ref, TOL["float64"], "d y / d x")
    params, params_ref = list(model.parameters()), list(ref.parameters())
    got = torch.autograd.grad(gx.square().sum(), params, allow_unused=True)
    want = torch.autograd.grad(gx_ref.square().sum(), params_ref, allow_unused=True)
    for (name, _), a, b in zip(model.named_parameters(), got, want):  # every one, the last bias's None too
        assert (a is None) == (b is None), name
        if b is not None:
            assert_close(a, b, TOL["float64"], f"d |dy/dx|^2 / d {name}")
    assert torch.autograd.gradgradcheck(lambda a: model(a), (x[:3].detach().requires_grad_(),), fast_mode=True)


def test_no_points_backward_gives_zero_gradients():
    """N = 0 points: the jet and its backward run (empty sums: zero weight gradients), as on
    the reference backend."""
    model = fs.Siren(2, 6, 0, 1, backend="triton").double().to(DEV)
    x = torch.zeros(0, 2, dtype=torch.float64, device=DEV, requires_grad=True)
    jet = model.jet(x, order=2)
    (jet.value.sum() + jet.grad.sum() + jet.laplacian.sum()).backward()
    assert x.grad.shape == (0, 2)
    for p in model.parameters():
        assert p.grad is not None and not p.grad.abs().any()


@pytest.mark.kernels
@pytest.mark.parametrize("fused", [False, True], ids=["per-layer", "fused"])
@pytest.mark.parametrize("order,net", [(0, (2, 40, 2, 1, True)), (1, (3, 24, 1, 2, False)),
                                       (2, (1, 24, 2, 1, True)), (2, (2, 40, 1, 3, False))])
def test_inference_matches_reference_float64(order, net, fused, tiles, monkeypatch):
    """mlp_infer (Siren.render and the no-grad forward) in float64 against reference: every
    order, D 1-3, widths 24 and 40, both last layers, N = 37. The fused kernel is fp32 only, so
    float64 runs the per-layer kernels even where fusion is asked for (``fused``)."""
    d, width, layers, out, linear = net
    monkeypatch.setenv(backends.FUSED_INFER_ENV, "1" if fused else "0")
    monkeypatch.setattr(render, "render_fused", lambda *a, **k: pytest.fail("float64 ran the fp32 fused kernel"))
    model = fs.Siren(d, width, layers, out, outermost_linear=linear, backend="reference").double().to(DEV)
    x = coords(37, d, requires_grad=False)
    ws, bs = [m.weight.detach() for m in model.layers], [m.bias.detach() for m in model.layers]
    got = tb.mlp_infer(x, ws, bs, model.omegas(), order)
    want = reference.mlp_infer(x, ws, bs, model.omegas(), order)
    for name, a, b in zip(Jet._fields, got, want):
        assert (a is None) == (b is None), name
        if b is not None:
            assert_close(a, b, TOL["float64"], name)


def test_render_fused_matches_reference_float32(monkeypatch):
    """One launch for all layers: values (width 40: four column chunks) and jets (width 24:
    two chunks, order 2), against float64; the no-grad forward and render use it when fusion
    is on (FASTSIREN_FUSED_INFER=1)."""
    monkeypatch.setenv(backends.FUSED_INFER_ENV, "1")
    launched = []
    real = render.render_fused
    monkeypatch.setattr(render, "render_fused", lambda *a, **k: launched.append(1) or real(*a, **k))
    model = fs.Siren(2, 40, 2, 1, backend="triton").to(DEV)
    img = model.render((5, 7))
    ref64 = fs.Siren(2, 40, 2, 1, backend="reference").double().to(DEV)
    ref64.load_state_dict(model.state_dict())
    assert img.shape == (5, 7, 1)
    assert_close(img, ref64.render((5, 7)), TOL["ieee"], "render value")
    model = fs.Siren(2, 24, 1, 2, outermost_linear=False, backend="triton").to(DEV)
    ref64 = fs.Siren(2, 24, 1, 2, outermost_linear=False, backend="reference").double().to(DEV)
    ref64.load_state_dict(model.state_dict())
    x = coords(37, 2, dtype=torch.float32, requires_grad=False)
    jet = tb.mlp_infer(x, *model._params(), model.omegas(), 2)
    jet_ref = ref64.jet(x.double(), order=2)
    for a, b, name in zip(jet, jet_ref, Jet._fields):
        assert_close(a, b, TOL["ieee"], f"fused {name}")
    with torch.no_grad():
        assert_close(model(x), jet_ref.value, TOL["ieee"], "no-grad forward")
    assert len(launched) == 3, launched


@pytest.mark.parametrize("half", ["bf16", "fp16"])
def test_render_half_precision_no_worse_than_torch(half):
    model = fs.Siren(2, 24, 1, 1, backend="triton").to(DEV)
    x = coords(37, 2, dtype=torch.float32, requires_grad=False)
    ws, bs = model._params()
    exact = reference.mlp_forward(x.double(), [w.double() for w in ws], [b.double() for b in bs], model.omegas())
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16}[half]
    torch_err = scaled_err(reference.mlp_forward(x.to(dt), [w.to(dt) for w in ws], [b.to(dt) for b in bs],
                                                 model.omegas()), exact)
    with config.precision(infer=half):
        ours = tb.mlp_infer(x, ws, bs, model.omegas(), 0).value
    err = scaled_err(ours, exact)
    assert 0 < err <= 2 * torch_err + 1e-6, f"{half}: error {err:.3g}, PyTorch's own {torch_err:.3g}"


def test_render_fp16_jets_stay_in_range(monkeypatch):
    """fp16 inference of a network whose hidden gradient/Laplacian streams pass fp16's 65504:
    the fused kernel scales those streams' GEMM operands by powers of two, so the jets stay
    finite and accurate (unscaled, the hidden Laplacian stream would round to inf)."""
    monkeypatch.setenv(backends.FUSED_INFER_ENV, "1")
    torch.manual_seed(0)
    model = fs.Siren(2, 40, 1, 1, backend="triton").to(DEV)
    ws, bs = model._params()
    with torch.no_grad():
        ws[1].mul_(10)  # a sharper hidden layer: hidden Laplacian streams beyond 65504
    x = coords(50, 2, dtype=torch.float32, requires_grad=False)
    exact = reference.mlp_infer(x.double(), [w.double() for w in ws], [b.double() for b in bs], model.omegas(), 2)
    with config.precision(infer="fp16"):
        jet = tb.mlp_infer(x, ws, bs, model.omegas(), 2)
    for a, b, name in zip(jet, exact, Jet._fields):
        assert torch.isfinite(a).all(), name
        assert scaled_err(a, b) <= 1e-2, (name, scaled_err(a, b))
    # the last GEMM's operand (the hidden layer's output streams) is beyond fp16's range unscaled
    hidden = reference.mlp_infer(x.double(), [w.double() for w in ws[:2]], [b.double() for b in bs[:2]],
                                 model.omegas()[:2], 2)
    assert hidden.laplacian.abs().max() > 65504
    # Laplacian weights multiply that stream: its scale grows by the largest |c_k| (a power of two)
    c = (3e4, -3e4)
    assert render.lap_scale(c) == 4096.0 * 2 ** 15 and render.lap_scale(None) == render.lap_scale((0.5, -1.0)) == 4096
    exact = reference.mlp_infer(x.double(), [w.double() for w in ws], [b.double() for b in bs], model.omegas(), 2, c)
    with config.precision(infer="fp16"):
        jet = tb.mlp_infer(x, ws, bs, model.omegas(), 2, c)
    for a, b, name in zip(jet, exact, Jet._fields):
        assert torch.isfinite(a).all(), f"weighted {name}"
        assert scaled_err(a, b) <= 1e-2, (f"weighted {name}", scaled_err(a, b))


def test_render_falls_back_for_widths_it_cannot_fuse(monkeypatch):
    monkeypatch.setattr(render, "MAX_FUSED_WIDTH", 16)
    model = fs.Siren(1, 24, 0, 1, backend="triton").to(DEV)
    ref64 = fs.Siren(1, 24, 0, 1, backend="reference").double().to(DEV)
    ref64.load_state_dict(model.state_dict())
    img = model.render((19,))  # the per-layer default: nothing to warn about
    assert_close(img, ref64.render((19,)), TOL["ieee"], "per-layer render")
    for fused, half in ((True, None), (None, "fp16")):  # the fused kernel asked for
        backends.set_fused_inference(fused)
        try:
            with config.precision(infer=half), pytest.warns(UserWarning, match="not used: hidden width 24"):
                img = model.render((19,))
        finally:
            backends.set_fused_inference(None)
        assert_close(img, ref64.render((19,)), TOL["ieee"], "per-layer fallback render")


def test_render_runs_the_per_layer_kernels_unless_fusion_is_asked_for(monkeypatch):
    """The default render and no-grad forward run the per-layer kernels at the inference
    precision; set_fused_inference(True), FASTSIREN_FUSED_INFER=1 or a half inference precision
    run the fused kernel, which gives the same jets."""
    model = fs.Siren(2, 24, 1, 1, backend="triton").to(DEV)
    ref64 = fs.Siren(2, 24, 1, 1, backend="reference").double().to(DEV)
    ref64.load_state_dict(model.state_dict())
    x = coords(37, 2, dtype=torch.float32, requires_grad=False)
    calls, precisions = [], []
    real_fused, real_layers = render.render_fused, render.mlp_streams_forward
    monkeypatch.setattr(render, "render_fused", lambda *a, **k: calls.append("fused") or real_fused(*a, **k))

    def layers(*a, precision=None, **k):
        calls.append("layers")
        precisions.append(precision)
        return real_layers(*a, precision=precision, **k)

    monkeypatch.setattr(render, "mlp_streams_forward", layers)
    with config.precision(train="tf32", infer="ieee"):
        layered = tb.mlp_infer(x, *model._params(), model.omegas(), 2)
    assert calls == ["layers"] and precisions == ["ieee"], (calls, precisions)  # the inference precision
    img = model.render((5, 7))
    assert calls[-1] == "layers"
    backends.set_fused_inference(True)
    try:
        fused = tb.mlp_infer(x, *model._params(), model.omegas(), 2)
    finally:
        backends.set_fused_inference(None)
    assert calls[-1] == "fused", calls
    for a, b, c, name in zip(layered, fused, ref64.jet(x.double(), order=2), Jet._fields):
        assert_close(a, c, TOL["ieee"], f"per-layer {name}")
        assert_close(a, b, TOL["ieee"], f"per-layer vs fused {name}")
    assert_close(img, ref64.render((5, 7)), TOL["ieee"], "per-layer render")
    with config.precision(infer="bf16"):
        tb.mlp_infer(x, *model._params(), model.omegas(), 0)
    assert calls[-1] == "fused", calls  # only the fused kernel has half precisions
    monkeypatch.setenv(backends.FUSED_INFER_ENV, "1")
    tb.mlp_infer(x, *model._params(), model.omegas(), 0)
    assert calls[-1] == "fused", calls
    monkeypatch.setenv(backends.FUSED_INFER_ENV, "0")
    tb.mlp_infer(x, *model._params(), model.omegas(), 0)
    assert calls[-1] == "layers", calls
    monkeypatch.setenv(backends.FUSED_INFER_ENV, "yes")
    with pytest.raises(ValueError, match=backends.FUSED_INFER_ENV):
        tb.mlp_infer(x, *model._params(), model.omegas(), 0)
    with pytest.raises(TypeError, match="enabled"):
        backends.set_fused_inference("no")


def test_render_fused_rejects_what_it_cannot_run():
    ws, bs, oms = make_net(2, [24], 1, last_sine=False, dtype=torch.float32)
    with pytest.raises(ValueError, match="single layer"):
        render.render_fused(coords(4, 2, torch.float32), ws[:1], bs[:1], oms[:1], 0)
    with pytest.raises(ValueError, match="no bias"):
        render.render_fused(coords(4, 2, torch.float32), ws, [bs[0], None], oms, 0)


def test_sin_cos_range_reduction_is_accurate_for_large_arguments():
    # omega_0 * z reaches hundreds; the fp32 reduction keeps the error near fp32 rounding of x.
    x = torch.linspace(-3000.0, 3000.0, 1000, dtype=torch.float32, device=DEV)
    assert sin_cos_error(x) < 5e-6


def test_precision_option():
    with pytest.raises(ValueError, match="not a Triton precision"):
        config.set_precision(train="fp8")
    with pytest.raises(ValueError, match="not a Triton precision"):
        config.set_precision(train="bf16")  # half precision is inference only
    before = config.train_precision(torch.float32)
    with config.precision(train="tf32", infer="bf16"):
        assert config.train_precision(torch.float32) == "tf32"
        assert config.infer_precision(torch.float32) == "bf16"
        assert config.train_precision(torch.float64) == "ieee"
    assert config.train_precision(torch.float32) == before


def test_bad_inputs(monkeypatch):
    # Mixed dtypes: a clear error naming the tensor.
    model = fs.Siren(2, 8, 0, 1, backend="triton")
    with pytest.raises(TypeError, match="dtype"):
        model(coords(4, 2, torch.float64))
    # Half precision is an inference option, not a training dtype.
    with pytest.raises(TypeError, match="float32 or float64"):
        jet_layer.check_tensor(torch.zeros(2, 2, dtype=torch.float16, device=DEV), "h")
    # Non-contiguous inputs are made contiguous, never read wrongly.
    ws, bs, oms = make_net(2, [24], 1, last_sine=False)
    base = torch.rand(2, 37, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).to(DEV)
    x_t = base.t()
    assert not x_t.is_contiguous()
    with torch.no_grad():
        assert_close(tb.mlp_forward(x_t, ws, bs, oms), reference.mlp_forward(x_t, ws, bs, oms),
                     TOL["float64"], "non-contiguous x")
    # CPU tensors outside the interpreter: the registry refuses with the reason, and so do
    # the launchers when called directly.
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="CUDA"):
        backends.resolve("triton", "cpu")
    with pytest.raises(RuntimeError, match="CUDA"):
        jet_layer.check_tensor(torch.zeros(2, 2), "h")


# ------------------------------------------------------------------------- GPU tier

def paper_net_case(order: int):
    """The GPU tier's network (2 -> 256 x4 -> 1, the paper's hidden init U(+-sqrt(6/fan_in)/omega)),
    float32 copies of its parameters, 4099 points (not a multiple of any block) and the float64
    reference jet and parameter gradients at ``order``."""
    ws64, bs64, oms = make_net(2, [256] * 4, 1, last_sine=False, device="cuda", hidden_omega=30.0)
    with torch.no_grad():
        for w in ws64[1:]:
            w.uniform_(-math.sqrt(6 / 256) / 30, math.sqrt(6 / 256) / 30)
    ws = [w.detach().float().requires_grad_() for w in ws64]
    bs = [b.detach().float().requires_grad_() for b in bs64]
    x = coords(4099, 2, torch.float32, "cuda")
    x64 = x.detach().double().requires_grad_()
    exact, exact_grads = jet_and_grads(lambda *a: reference.mlp_jet(*a[:3], oms, a[3]), x64, ws64, bs64, order)
    return ws, bs, oms, x, exact, exact_grads


def torch_jet(setting: str, x, ws, bs, oms, order, grads: bool, lap_weights=None):
    """The reference backend's jet (and parameter gradients) at a PyTorch precision setting."""
    dt = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[setting]
    # TF32 through fastsiren.jet.tf32_products (both of torch's APIs, which must agree in torch
    # >= 2.9), else IEEE products; the previous settings after
    m = torch.backends.cuda.matmul
    saved = m.fp32_precision
    if setting != "tf32":
        m.fp32_precision = "ieee"
    try:
        with tf32_products(setting == "tf32"):
            xs = x.detach().to(dt).requires_grad_()
            wl = [w.detach().to(dt).requires_grad_() for w in ws]
            bl = [b.detach().to(dt).requires_grad_() for b in bs]
            fn = lambda *a: reference.mlp_jet(*a[:3], oms, a[3], lap_weights)
            if grads:
                return jet_and_grads(fn, xs, wl, bl, order)
            return fn(xs, wl, bl, order), ()
    finally:
        m.fp32_precision = saved


def assert_like_torch(precision: str, got, torch_got, exact, what: str) -> None:
    factor, setting = GPU_RULE[precision]
    for i, (a, t, e) in enumerate(zip(got, torch_got, exact)):
        if a is None:
            continue
        err, terr = scaled_err(a, e), scaled_err(t, e)
        assert err <= factor * terr + 1e-6, (
            f"{precision} {what}[{i}]: error {err:.3g} > {factor} x PyTorch {setting} error {terr:.3g}")


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["ieee", "tf32x3", "tf32"])
@pytest.mark.parametrize("order", [0, 1, 2])
def test_gpu_jet_and_gradients_per_precision(precision, order):
    ws, bs, oms, x, exact, exact_grads = paper_net_case(order)
    with config.precision(train=precision):
        jet, grads = jet_and_grads(lambda *a: tb.mlp_jet(*a[:3], oms, a[3]), x, ws, bs, order)
    t_jet, t_grads = torch_jet(GPU_RULE[precision][1], x, ws, bs, oms, order, grads=True)
    assert_like_torch(precision, jet, t_jet, exact, "jet")
    assert_like_torch(precision, grads, t_grads, exact_grads, "grads")


@pytest.mark.gpu
@pytest.mark.parametrize("gemm", ["triton", "cublas"])
def test_gpu_weighted_laplacian(gemm, monkeypatch):
    """laplacian_weights in the kernels on the GPU (width 256, the default precision, both GEMM
    modes): the weighted jet and every gradient against float64, tf32x3's rule (4x PyTorch fp32)."""
    c = (1.0, -4.0)
    ws, bs, oms, x, _, _ = paper_net_case(0)
    x64 = x.detach().double().requires_grad_()
    ws64 = [w.detach().double().requires_grad_() for w in ws]
    bs64 = [b.detach().double().requires_grad_() for b in bs]
    exact, exact_grads = jet_and_grads(lambda *a: reference.mlp_jet(*a[:3], oms, a[3], c), x64, ws64, bs64, 2)
    monkeypatch.setenv(config.GEMM_ENV, gemm)
    jet, grads = jet_and_grads(lambda *a: tb.mlp_jet(*a[:3], oms, a[3], c), x, ws, bs, 2)
    t_jet, t_grads = torch_jet("fp32", x, ws, bs, oms, 2, grads=True, lap_weights=c)
    assert_like_torch("tf32x3", jet, t_jet, exact, "weighted jet")
    assert_like_torch("tf32x3", grads, t_grads, exact_grads, "weighted grads")
    backends.set_fused_inference(True)
    try:
        rendered = tb.mlp_infer(x.detach(), [w.detach() for w in ws], [b.detach() for b in bs], oms, 2, c)
    finally:
        backends.set_fused_inference(None)
    assert_like_torch("tf32x3", rendered, t_jet, exact, "weighted fused render")


@pytest.mark.gpu
@pytest.mark.parametrize("order", [0, 2])
@pytest.mark.parametrize("mode", ["cublas", "fused"])
def test_gpu_weight_gradient_modes(mode, order):
    """config.set_wgrad on the GPU (width 256, the default tf32x3): "cublas" makes the weight
    gradients fp32 cuBLAS products, "fused" tf32x3 Triton GEMMs; tf32x3's rule (4x PyTorch fp32)."""
    ws, bs, oms, x, exact, exact_grads = paper_net_case(order)
    jet, grads = wgrad_jet_and_grads(mode, x, ws, bs, oms, order)
    t_jet, t_grads = torch_jet("fp32", x, ws, bs, oms, order, grads=True)
    assert_like_torch("tf32x3", jet, t_jet, exact, "jet")
    assert_like_torch("tf32x3", grads, t_grads, exact_grads, "grads")


@pytest.mark.gpu
@pytest.mark.parametrize("order", [0, 2])
def test_gpu_cublas_gemm_mode(order, monkeypatch):
    """config.set_gemm("cublas") on the GPU (width 256): fp32 cuBLAS GEMMs and the Triton
    epilogue and adjoint kernels; tf32x3's rule (4x PyTorch fp32)."""
    ws, bs, oms, x, exact, exact_grads = paper_net_case(order)
    monkeypatch.setenv(config.GEMM_ENV, "cublas")
    jet, grads = jet_and_grads(lambda *a: tb.mlp_jet(*a[:3], oms, a[3]), x, ws, bs, order)
    t_jet, t_grads = torch_jet("fp32", x, ws, bs, oms, order, grads=True)
    assert_like_torch("tf32x3", jet, t_jet, exact, "jet")
    assert_like_torch("tf32x3", grads, t_grads, exact_grads, "grads")


@pytest.mark.gpu
@pytest.mark.parametrize("gemm", ["triton", "cublas"])
@pytest.mark.parametrize("order", [0, 2])
def test_gpu_cublas_products_3xtf32(gemm, order, monkeypatch):
    """backends.set_gemm_precision("tf32x3") on the GPU (width 256): the cuBLAS products (the
    weight gradients; every GEMM in the cublas GEMM mode) as three TF32 tensor-core products;
    tf32x3's rule (4x PyTorch fp32)."""
    ws, bs, oms, x, exact, exact_grads = paper_net_case(order)
    monkeypatch.setenv(config.GEMM_ENV, gemm)
    backends.set_gemm_precision("tf32x3")
    try:
        jet, grads = jet_and_grads(lambda *a: tb.mlp_jet(*a[:3], oms, a[3]), x, ws, bs, order)
    finally:
        backends.set_gemm_precision(None)
    t_jet, t_grads = torch_jet("fp32", x, ws, bs, oms, order, grads=True)
    assert_like_torch("tf32x3", jet, t_jet, exact, "jet")
    assert_like_torch("tf32x3", grads, t_grads, exact_grads, "grads")


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["cublas", "fused"])
def test_gpu_sine_layer_weight_gradient_modes(mode):
    """One 256 -> 256 sine layer (the layer benchmark; SineLayer) trained in both weight-gradient
    modes at the default tf32x3, against float64: tf32x3's rule (4x PyTorch fp32)."""
    ws64, bs64, _ = make_net(256, [], 256, last_sine=True, device="cuda")
    with torch.no_grad():
        ws64[0].uniform_(-math.sqrt(6 / 256) / 30, math.sqrt(6 / 256) / 30)
    oms = [30.0]
    ws = [w.detach().float().requires_grad_() for w in ws64]
    bs = [b.detach().float().requires_grad_() for b in bs64]
    x = coords(4099, 256, torch.float32, "cuda")
    x64 = x.detach().double().requires_grad_()
    exact, exact_grads = jet_and_grads(lambda *a: reference.mlp_jet(*a[:3], oms, a[3]), x64, ws64, bs64, 0)
    jet, grads = wgrad_jet_and_grads(mode, x, ws, bs, oms, 0)
    t_jet, t_grads = torch_jet("fp32", x, ws, bs, oms, 0, grads=True)
    assert_like_torch("tf32x3", jet, t_jet, exact, "jet")
    assert_like_torch("tf32x3", grads, t_grads, exact_grads, "grads")


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["ieee", "tf32x3", "tf32", "bf16", "fp16"])
def test_gpu_render_fused_per_precision(precision, monkeypatch):
    monkeypatch.setenv(backends.FUSED_INFER_ENV, "1")
    model = fs.Siren(2, 256, 3, 3, backend="triton").cuda()
    ws, bs = model._params()
    x = coords(5000, 2, torch.float32, "cuda", requires_grad=False)
    exact = reference.mlp_infer(x.double(), [w.double() for w in ws], [b.double() for b in bs], model.omegas(), 2)
    with config.precision(infer=precision):
        jet = tb.mlp_infer(x, ws, bs, model.omegas(), 2)
    t_jet, _ = torch_jet(GPU_RULE[precision][1], x, ws, bs, model.omegas(), 2, grads=False)
    assert_like_torch(precision, jet, t_jet, exact, "fused render jet")


@pytest.mark.gpu
def test_gpu_render_peak_memory_is_output_plus_weights(monkeypatch):
    """The fused kernel's memory (set_fused_inference(True); the per-layer default keeps a chunk's
    activations)."""
    monkeypatch.setenv(backends.FUSED_INFER_ENV, "1")
    model = fs.Siren(2, 256, 3, 1, backend="triton").cuda()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    img = model.render((2048, 2048))
    peak = torch.cuda.max_memory_allocated() - base
    coords_bytes = 2048 * 2048 * 2 * 4  # the coordinate grid Siren.render builds
    assert peak <= 1.2 * (img.numel() * 4) + coords_bytes, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.gpu
def test_gpu_sin_cos_large_arguments():
    x = torch.linspace(-3000.0, 3000.0, 1 << 20, dtype=torch.float32, device="cuda")
    assert sin_cos_error(x) < 5e-6


@pytest.mark.gpu
def test_gpu_cpu_tensors_rejected_with_a_clear_error():
    with pytest.raises(RuntimeError, match="CUDA"):
        jet_layer.check_tensor(torch.zeros(2, 2), "h")
    ws, bs, oms = make_net(2, [24], 1, last_sine=False, dtype=torch.float32, device="cuda")
    with pytest.raises((RuntimeError, ValueError), match="cpu"):
        jet_layer.jet_layer_forward(torch.zeros(1, 4, 2, device="cuda"), ws[0].detach().cpu(), None,
                                    30.0, 0, 2, False, False)



def test_launch_retries_with_fewer_stages_when_shared_memory_runs_out(monkeypatch):
    """A specialization over the device's shared memory is launched again with fewer pipeline
    stages (remembered), and gives up with Triton's error at one stage."""
    from triton.runtime.errors import OutOfResources

    calls = []

    class FakeKernel:
        def __init__(self, fits_at):
            self.fits_at = fits_at
            self.fn = self

        def __getitem__(self, grid):
            def run(*args, num_warps, num_stages, **constexprs):
                calls.append(num_stages)
                if num_stages > self.fits_at:
                    raise OutOfResources(262144, 232448, "shared memory")
            return run

    monkeypatch.setattr(jet_layer, "_STAGES", {})
    cfg = config.GemmConfig(32, 64, 32, 8, 3)
    k = FakeKernel(fits_at=1)
    k.__name__ = "fake"
    jet_layer.launch(k, (1,), cfg, 0, A=1)
    assert calls == [3, 2, 1]
    jet_layer.launch(k, (1,), cfg, 0, A=1)  # remembered: straight to one stage
    assert calls == [3, 2, 1, 1]
    jet_layer.launch(k, (1,), cfg, 0, A=2)  # another specialization starts over
    assert calls[4:] == [3, 2, 1]
    never = FakeKernel(fits_at=0)
    never.__name__ = "never"
    with pytest.raises(OutOfResources):
        jet_layer.launch(never, (1,), cfg, 0, A=1)


def test_gemm_tiles_override_from_the_environment(monkeypatch):
    monkeypatch.delenv(config.GEMM_TILES_ENV, raising=False)
    monkeypatch.delenv(config.WGRAD_TILES_ENV, raising=False)
    assert config.gemm_tiles_override() is None and config.gemm_tiles_override(wgrad=True) is None
    monkeypatch.setenv(config.GEMM_TILES_ENV, "64,128,32,4,2")
    assert config.gemm_tiles_override() == config.gemm_tiles_override(wgrad=True) == (64, 128, 32, 4, 2)
    monkeypatch.setenv(config.WGRAD_TILES_ENV, "128,128,128,8,2")  # the weight gradient's own, first
    assert config.gemm_tiles_override(wgrad=True) == (128, 128, 128, 8, 2)
    assert config.gemm_tiles_override() == (64, 128, 32, 4, 2)
    monkeypatch.delenv(config.WGRAD_TILES_ENV)
    for bad in ("64,128,32,4", "64,100,32,4,2", "8,64,32,4,2", "a,b,c,d,e"):
        monkeypatch.setenv(config.GEMM_TILES_ENV, bad)
        with pytest.raises(ValueError, match=config.GEMM_TILES_ENV):
            config.gemm_tiles_override()


def test_launches_run_on_the_inputs_cuda_device(monkeypatch):
    """Triton launches on the current CUDA device: the entry points make the input's device
    current when it is another one, and do nothing on the CPU, on the current device or while
    compiling (stand-ins for the tensors and torch.cuda: this machine may have no GPU)."""
    import types

    entered = []

    class Device:
        def __init__(self, dev):
            self.dev = dev

        def __enter__(self):
            entered.append(self.dev)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device", Device)

    def on(device: str):
        x = types.SimpleNamespace(is_cuda=device.startswith("cuda"), device=torch.device(device))
        with tb._on_device(x):
            pass

    on("cuda:1")
    assert entered == [torch.device("cuda:1")]
    on("cuda:0")
    on("cpu")
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    on("cuda:1")
    assert entered == [torch.device("cuda:1")]
    monkeypatch.undo()
    # the entry points go through it with their input
    guarded = []
    real = tb._on_device
    monkeypatch.setattr(tb, "_on_device", lambda x: guarded.append(x) or real(x))
    gen = torch.Generator().manual_seed(0)
    ws = [torch.randn(8, 2, generator=gen), torch.randn(1, 8, generator=gen)]
    bs = [torch.randn(8, generator=gen), torch.randn(1, generator=gen)]
    x = torch.rand(5, 2, generator=gen)
    tb.mlp_jet(x, ws, bs, (30.0, None), 1)
    tb.mlp_infer(x, ws, bs, (30.0, None), 0)
    assert len(guarded) == 2 and all(g is x for g in guarded)
