"""The cuda backend against the ``reference`` backend in float64, in two tiers:

* **gpu** (``pytest -m gpu``; skipped without CUDA, see conftest.py): the real extension on a GPU.
* **emulated** (the default CPU tier): the same ``csrc/`` kernels compiled by the host compiler
  against the CUDA emulation of ``csrc/emulation/`` (``FASTSIREN_CUDA_EMULATE=1``), on CPU
  tensors, as the Triton tests use ``TRITON_INTERPRET=1``. It checks the kernels' indexing,
  tiling, barriers, atomics and jet math; it cannot check speed, fp32 rounding of the GPU's
  instructions or races the serial block order hides.

Every check: values, jets of order 0/1/2, the gradient of a fixed random loss w.r.t. x and
every parameter, double backward, the fused render kernel (and its layer-wise fallback), bad
inputs, and that torch.compile traces the custom ops (their fake implementations). Shapes are
awkward on purpose: N = 37 and 1003 on the GPU, 37 and 131 emulated (not multiples of the
128-point blocks), widths 24, 40 and 256 (not multiples of the 32-feature tiles or wider
than one), D = 1, 2, 3.

Tolerances, stated once (errors scaled by the largest magnitude of the reference tensor):
float64 kernels 1e-9; float32 kernels 1e-4 (cuBLAS fp32 GEMMs with TF32 off, float atomics
for the bias and first-layer gradients).
"""

from __future__ import annotations

import math

import pytest
import torch

import fastsiren as fs
from fastsiren import backends, cuda_ext, reference

TOL = {torch.float64: 1e-9, torch.float32: 1e-4}
# Point counts per tier: "small" fits one 128-row block, "large" spans several.
N_CASES = {"cuda": {"small": 37, "large": 1003}, "cpu": {"small": 37, "large": 131}}


@pytest.fixture(scope="module", params=[pytest.param("cuda", marks=pytest.mark.gpu, id="gpu"),
                                        pytest.param("cpu", id="emulated")])
def dev(request):
    """The tier's device, with the extension built/loaded once (a failed build fails the tier
    with its reason); the emulated tier runs with FASTSIREN_CUDA_EMULATE=1."""
    with pytest.MonkeyPatch.context() as mp:
        if request.param == "cpu":  # FASTSIREN_CUDA_EMULATE=asan (set by the caller) is kept
            mp.setenv(cuda_ext.EMULATE_ENV, cuda_ext.emulation_mode() or "1")
        else:
            mp.delenv(cuda_ext.EMULATE_ENV, raising=False)
            # IEEE float32 cuBLAS products, through the API fastsiren.jet.tf32_products uses
            # (a legacy allow_tf32 write mixed with it makes later legacy reads raise)
            mp.setattr(torch.backends.cuda.matmul, "fp32_precision", "ieee")
        reason = cuda_ext.unavailable_reason()
        assert reason is None, reason
        yield request.param


def ops():
    return getattr(torch.ops, cuda_ext.namespace())


def scaled_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max(1e-3, max |b|), in float64."""
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-3)).item()


def assert_close(a, b, tol: float, what: str) -> None:
    assert a is not None and b is not None, what
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)}"
    err = scaled_err(a, b)
    assert err <= tol, f"{what}: scaled error {err:.3g} > {tol:.1g}"


def make_net(dev: str, dim: int, width: int, hidden: int, out: int, last_sine: bool, dtype=torch.float64,
             bias_everywhere: bool = True):
    """Weights of dim -> width (x hidden+1 sine layers) -> out; hidden omega kept small so the
    float64 Laplacian stays O(1e3). With bias_everywhere=False the second layer has no bias."""
    dims = [dim] + [width] * (hidden + 1) + [out]
    gen = torch.Generator().manual_seed(1234)
    ws, bs = [], []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        ws.append((torch.randn(b, a, generator=gen, dtype=dtype) / math.sqrt(a)).to(dev).requires_grad_())
        bias = (0.1 * torch.randn(b, generator=gen, dtype=dtype)).to(dev).requires_grad_()
        bs.append(None if (i == 1 and not bias_everywhere) else bias)
    oms = [30.0] + [3.5] * hidden + [2.0 if last_sine else None]
    return ws, bs, oms


def coords(dev: str, n: int, dim: int, dtype=torch.float64, requires_grad=True):
    x = torch.rand(n, dim, dtype=dtype, generator=torch.Generator().manual_seed(7)) * 2 - 1
    return x.to(dev).requires_grad_(requires_grad)


def jet_and_grads(mod, x, ws, bs, oms, order, lap_weights=None):
    """The jet by backend module ``mod`` and the gradients of a fixed random loss on it."""
    jet = mod.mlp_jet(x, ws, bs, oms, order, lap_weights)
    outs = [t for t in jet if t is not None]
    gen = torch.Generator().manual_seed(3)
    cots = [torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t) for t in outs]
    params = [x, *ws, *[b for b in bs if b is not None]]
    return jet, torch.autograd.grad(outs, params, cots)


def check_against_reference(x, ws, bs, oms, order, tol, what, lap_weights=None):
    jet, grads = jet_and_grads(cuda_ext, x, ws, bs, oms, order, lap_weights)
    x64 = x.detach().double().requires_grad_()
    ws64 = [w.detach().double().requires_grad_() for w in ws]
    bs64 = [None if b is None else b.detach().double().requires_grad_() for b in bs]
    ref, ref_grads = jet_and_grads(reference, x64, ws64, bs64, oms, order, lap_weights)
    for name, a, b in zip(("value", "grad", "laplacian"), jet, ref):
        if b is None:
            assert a is None, f"{what}: {name} should be None at order {order}"
        else:
            assert a.dtype == x.dtype
            assert_close(a, b, tol, f"{what} {name}")
    names = ["x"] + [f"W{i}" for i in range(len(ws))] + [f"b{i}" for i, b in enumerate(bs) if b is not None]
    for name, a, b in zip(names, grads, ref_grads):
        assert_close(a, b, tol, f"{what} d loss / d {name}")


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("fan_in,width", [(2, 24), (40, 256), (3, 40)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sine_linear_and_gradients(dev, size, fan_in, width, dtype):
    n = N_CASES[dev][size]
    # fan_in=40 > MAX_JET_DIM takes the GEMM + epilogue path for the first layer too.
    ws, bs, oms = make_net(dev, fan_in, width, 0, 1, False, dtype=dtype)
    x = coords(dev, n, fan_in, dtype)
    y = fs.functional.sine_linear(x, ws[0], bs[0], 30.0, backend="cuda")
    ref = reference.sine_linear(x.double(), ws[0].double(), bs[0].double(), 30.0)
    assert_close(y, ref, TOL[dtype], "sine_linear value")
    g = torch.randn_like(y)
    got = torch.autograd.grad(y, [x, ws[0], bs[0]], g)
    want = torch.autograd.grad(ref, [x, ws[0], bs[0]], g.double())
    for name, a, b in zip(("x", "W", "b"), got, want):
        assert_close(a, b, TOL[dtype], f"sine_linear d/d{name}")


@pytest.mark.parametrize("order", [0, 1, 2])
@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("width", [24, 40, 256])
@pytest.mark.parametrize("size", ["small", "large"])
def test_jet_and_every_gradient_float64(dev, order, dim, width, size):
    n = N_CASES[dev][size]
    last_sine = (dim + width) % 2 == 1  # both final-layer kinds over the grid of cases
    ws, bs, oms = make_net(dev, dim, width, 2, 3, last_sine, bias_everywhere=width != 40)
    check_against_reference(coords(dev, n, dim), ws, bs, oms, order, TOL[torch.float64],
                            f"D={dim} width={width} N={n} order={order}")


@pytest.mark.parametrize("order", [0, 1, 2])
@pytest.mark.parametrize("dim", [4, 5, 16])
def test_jet_wide_inputs_float64(dev, order, dim):
    """Input dimensions 4 (the first-layer kernels' MAXD=4 with every slot live) and 5-16 (their
    MAXD=16 instantiation), which no other test launches; order 1 through the forward-mode
    kernels (the reverse-mode gradient, which O < D would pick, is set aside)."""
    backends.set_reverse_grad(False)
    try:
        ws, bs, oms = make_net(dev, dim, 24, 1, 2, last_sine=dim == 5)
        check_against_reference(coords(dev, N_CASES[dev]["small"], dim), ws, bs, oms, order,
                                TOL[torch.float64], f"D={dim} order={order}")
    finally:
        backends.set_reverse_grad(None)


@pytest.mark.parametrize("order", [0, 1, 2])
def test_jet_and_every_gradient_float32(dev, order):
    ws, bs, oms = make_net(dev, 2, 256, 3, 1, False, dtype=torch.float32)
    x = coords(dev, N_CASES[dev]["large"], 2, torch.float32)
    check_against_reference(x, ws, bs, oms, order, TOL[torch.float32], f"float32 order={order}")


@pytest.mark.parametrize("dim,out,width,last_sine,dtype", [
    (2, 1, 24, False, torch.float64), (3, 2, 40, True, torch.float64), (3, 1, 256, False, torch.float64),
    (2, 1, 256, False, torch.float32)])
def test_reverse_gradient_path(dev, dim, out, width, last_sine, dtype, monkeypatch):
    """Order-1 jets with fewer outputs than input dimensions (the Poisson gradient loss) take the
    reverse-mode gradient: cuBLAS GEMMs and the fused grad_* ops. Value, gradient and every
    parameter gradient against the reference, also for a loss on the gradient alone (no value
    adjoint); set_reverse_grad(False) gives the forward-mode kernels, which agree."""
    calls = []
    for name in ("sin_cos", "reverse_adjoint", "forward_adjoint"):
        real = getattr(cuda_ext.CudaGradOps, name)
        monkeypatch.setattr(cuda_ext.CudaGradOps, name,
                            staticmethod(lambda *a, _f=real, _n=name, **k: calls.append(_n) or _f(*a, **k)))
    ws, bs, oms = make_net(dev, dim, width, 2, out, last_sine, dtype=dtype, bias_everywhere=width != 40)
    x = coords(dev, N_CASES[dev]["large"], dim, dtype)
    params = [x, *ws, *[b for b in bs if b is not None]]
    x64, ws64 = x.detach().double().requires_grad_(), [w.detach().double().requires_grad_() for w in ws]
    bs64 = [None if b is None else b.detach().double().requires_grad_() for b in bs]
    ref = reference.mlp_jet(x64, ws64, bs64, oms, 1)
    cot = torch.randn(ref.grad.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64).to(dev)
    want = torch.autograd.grad((ref.grad * cot).sum(), [x64, *ws64, *[b for b in bs64 if b is not None]],
                               allow_unused=True, materialize_grads=True)  # the last bias does not move it
    for reverse in (True, False):
        backends.set_reverse_grad(reverse)
        try:
            check_against_reference(x, ws, bs, oms, 1, TOL[dtype], f"reverse={reverse} D={dim} out={out}")
            got = torch.autograd.grad((cuda_ext.mlp_jet(x, ws, bs, oms, 1).grad * cot.to(dtype)).sum(), params,
                                      allow_unused=True, materialize_grads=True)
        finally:
            backends.set_reverse_grad(None)
        for i, (a, b) in enumerate(zip(got, want)):
            assert_close(a, b, TOL[dtype], f"reverse={reverse} d (gradient loss) / d param {i}")
        if reverse:
            assert set(calls) == {"sin_cos", "reverse_adjoint", "forward_adjoint"}
            calls.clear()
    assert calls == [], "forward mode ran the reverse-mode ops"


@pytest.mark.parametrize("dim,order", [(2, 0), (2, 1), (2, 2), (40, 0)])
def test_tf32x3_products(dev, dim, order):
    """backends.set_gemm_precision("tf32x3"): every GEMM of mlp_fwd and mlp_bwd as three products
    of TF32-split operands (csrc/tf32_split.cu; on a GPU under PyTorch's TF32 setting, i.e. on
    tensor cores; emulated, ATen's float32 CPU products, which checks the split and the three
    terms). Float32's tolerance against the float64 reference, and not bit-identical to the
    ieee products (the split path ran). dim=40: the first layer is a GEMM too (no fused first
    layer), with the input gradient from the value stream's rows of the split adjoints."""
    ws, bs, oms = make_net(dev, dim, 256, 3, 2, False, dtype=torch.float32)
    x = coords(dev, N_CASES[dev]["large"], dim, torch.float32)
    plain = jet_and_grads(cuda_ext, x, ws, bs, oms, order)
    backends.set_gemm_precision("tf32x3")
    try:
        check_against_reference(x, ws, bs, oms, order, TOL[torch.float32], f"tf32x3 order={order}")
        split = jet_and_grads(cuda_ext, x, ws, bs, oms, order)
    finally:
        backends.set_gemm_precision(None)
    pairs = [(a, b) for a, b in zip([*plain[0], *plain[1]], [*split[0], *split[1]]) if a is not None]
    assert any(not torch.equal(a, b) for a, b in pairs), "tf32x3 gave the ieee products bit for bit"


def test_tf32_split_op(dev):
    """The one-pass TF32 split (csrc/tf32_split.cu) agrees bit for bit with fastsiren.jet's,
    for a contiguous and a transposed operand, and rejects float64."""
    from fastsiren.jet import tf32_split

    t = (torch.randn(70, 33) * torch.logspace(-20, 20, 33)).to(dev)
    for arg in (t, t.t()):
        head, rest = cuda_ext.CudaGradOps.split(arg)
        want_head, want_rest = tf32_split(arg)
        assert head.is_contiguous() and torch.equal(head, want_head) and torch.equal(rest, want_rest)
    with pytest.raises(RuntimeError, match="t must be float32"):
        cuda_ext.CudaGradOps.split(t.double())


def test_reverse_gradient_tf32x3(dev, monkeypatch):
    """The reverse-mode gradient under set_gemm_precision("tf32x3") with its operands split by
    the cuda op (emulated: the setting made to apply to CPU products, which ATen makes in
    float32): float32's tolerance against the float64 reference."""
    from fastsiren import jet as jet_module

    if dev == "cpu":
        monkeypatch.setattr(jet_module, "_tf32x3",
                            lambda a: a.dtype == torch.float32 and backends.gemm_precision() == "tf32x3")
    splits = []
    real = cuda_ext.CudaGradOps.split
    monkeypatch.setattr(cuda_ext.CudaGradOps, "split", staticmethod(lambda t: splits.append(1) or real(t)))
    ws, bs, oms = make_net(dev, 2, 256, 2, 1, False, dtype=torch.float32)
    x = coords(dev, N_CASES[dev]["large"], 2, torch.float32)
    backends.set_gemm_precision("tf32x3")
    try:
        check_against_reference(x, ws, bs, oms, 1, TOL[torch.float32], "reverse gradient tf32x3")
    finally:
        backends.set_gemm_precision(None)
    assert splits, "the reverse-mode gradient's operands were not split by the cuda op"


def test_linear_hidden_layer_and_one_layer_network(dev):
    ws, bs, oms = make_net(dev, 2, 40, 1, 2, True)
    oms = [30.0, None, 2.0]  # a linear hidden layer: its post streams are saved, not recomputed
    check_against_reference(coords(dev, 37, 2), ws, bs, oms, 2, TOL[torch.float64], "linear hidden")
    ws, bs, _ = make_net(dev, 3, 24, -1, 24, True)  # hidden=-1: dims [3, 24], a single sine layer
    check_against_reference(coords(dev, 37, 3), ws, bs, [30.0], 2, TOL[torch.float64], "one layer")


def test_wide_input_jets_fall_back_to_torch_backend(dev):
    ws, bs, oms = make_net(dev, cuda_ext.MAX_JET_DIM + 1, 24, 0, 1, False)
    check_against_reference(coords(dev, 37, cuda_ext.MAX_JET_DIM + 1), ws, bs, oms, 1, TOL[torch.float64],
                            "D > MAX_JET_DIM")


@pytest.mark.parametrize("order,out", [(0, 2), (1, 1), (1, 3), (2, 1)])
def test_gradcheck_and_gradgradcheck(dev, order, out):
    """Finite differences against the fused backward (gradcheck) and through it (gradgradcheck:
    create_graph=True takes the reference ops), in float64 on a tiny network."""
    w = [torch.randn(5, 2, dtype=torch.float64) * 0.5, torch.randn(4, 5, dtype=torch.float64) * 0.3,
         torch.randn(out, 4, dtype=torch.float64) * 0.3]
    b = [torch.randn(t.shape[0], dtype=torch.float64) * 0.1 for t in w]
    params = [t.to(dev).requires_grad_() for t in (*w, *b)]
    x = (torch.rand(6, 2, dtype=torch.float64) * 2 - 1).to(dev).requires_grad_()

    def f(x, *ps):
        j = fs.functional.siren_jet(x, ps[:3], ps[3:], (3.0, 2.0, None), order=order, backend="cuda")
        return tuple(t for t in j if t is not None)

    assert torch.autograd.gradcheck(f, (x, *params), atol=1e-6)
    assert torch.autograd.gradgradcheck(lambda x, *ps: f(x, *ps)[0], (x, *params), atol=1e-6)


def test_siren_module_and_double_backward(dev):
    torch.manual_seed(0)
    model = fs.Siren(2, 40, 2, 1, backend="cuda").to(dev).double()
    ref = fs.Siren(2, 40, 2, 1, backend="reference").to(dev).double()
    ref.load_state_dict(model.state_dict())
    x = coords(dev, N_CASES[dev]["large"], 2)
    losses = []
    for m in (model, ref):
        y = m(x)
        # the official repo's gradient(): create_graph through the fused forward
        (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        loss = (g ** 2).sum() + y.square().mean()
        losses.append((y, g, torch.autograd.grad(loss, list(m.parameters()))))
    (y, g, pg), (ry, rg, rpg) = losses
    assert_close(y, ry, 1e-9, "Siren forward")
    assert_close(g, rg, 1e-9, "Siren input gradient")
    for i, (a, b) in enumerate(zip(pg, rpg)):
        assert_close(a, b, 1e-9, f"double backward param {i}")


@pytest.mark.parametrize("order", [0, 1, 2])
@pytest.mark.parametrize("width,dtype,hidden", [(24, torch.float64, 3), (256, torch.float64, 3),
                                                (256, torch.float32, 3), (40, torch.float32, 3),
                                                (24, torch.float64, -1), (40, torch.float32, -1)])
def test_render_fused_matches_reference(dev, order, width, dtype, hidden, monkeypatch):
    """The fused render; hidden=-1 is a one-layer network (layer 0 is the last and writes the
    output itself)."""
    monkeypatch.setenv(backends.FUSED_INFER_ENV, "1")
    if hidden < 0:
        ws, bs, oms = make_net(dev, 2, width, 0, 3, False, dtype=dtype)
        ws, bs, oms = ws[:1], bs[:1], oms[:1]
    else:
        ws, bs, oms = make_net(dev, 2, width, hidden, 3, False, dtype=dtype)
    _check_render(coords(dev, N_CASES[dev]["large"], 2, dtype, requires_grad=False), ws, bs, oms, order,
                  f"render width={width} {dtype}")


def _check_render(x, ws, bs, oms, order, what: str) -> None:
    """``cuda_ext.mlp_infer`` against the reference's float64 render, in x's dtype, no grad."""
    jet = cuda_ext.mlp_infer(x, ws, bs, oms, order)
    ref = reference.mlp_infer(x.double(), [w.double() for w in ws], [b.double() for b in bs], oms, order)
    for name, a, b in zip(("value", "grad", "laplacian"), jet, ref):
        if b is not None:
            assert a.dtype == x.dtype and not a.requires_grad
            assert_close(a, b, TOL[x.dtype], f"{what} {name}")


def _render_tile(limit: int, streams: int, fmax: int, itemsize: int) -> int:
    """The fused render's rows per tile (TM) on a device of ``limit`` bytes of opt-in shared memory
    per block and 1 KiB more per SM: csrc/render.cu's rule (render_fused), mirrored."""
    ldw = (fmax + 31) // 32 * 32 + 1
    size = {tm: (2 * 8 * tm * fmax + 32 * ldw) * itemsize for tm in (8, 4, 2)}
    budget2 = (limit + 1024) // 2 - 1024
    for tm, most, cap in ((8, 64, budget2), (4, 32, budget2), (8, 64, limit), (4, 32, limit), (2, 16, limit)):
        if streams <= most and size[tm] <= cap:
            return tm
    return 0


@pytest.mark.parametrize("dev", [pytest.param("cpu", id="emulated")], indirect=True)  # its shared memory is set
@pytest.mark.parametrize("dim,order,width,dtype", [(2, 0, 256, torch.float32), (2, 2, 256, torch.float32),
                                                   (3, 2, 256, torch.float32), (2, 1, 136, torch.float64)])
def test_render_fused_two_row_tile(dev, dim, order, width, dtype, monkeypatch):
    """The fused render's smallest tile (TM=2), which a card with less shared memory than an H100
    takes (an A100 at float64 widths above about 217, sm_86/89 cards): the emulated device's limit
    lowered to 80000 bytes (FASTSIREN_CUDA_EMULATE_SMEM), against reference."""
    limit = 80000
    streams = {0: 1, 1: 1 + dim, 2: 2 + dim}[order]
    assert _render_tile(limit, streams, width, dtype.itemsize) == 2  # the case takes the tile
    assert _render_tile(232448, streams, width, dtype.itemsize) > 2  # an H100 would not
    monkeypatch.setenv("FASTSIREN_CUDA_EMULATE_SMEM", str(limit))
    monkeypatch.setenv(backends.FUSED_INFER_ENV, "1")
    ws, bs, oms = make_net(dev, dim, width, 2, 3, False, dtype=dtype)
    _check_render(coords(dev, N_CASES[dev]["large"], dim, dtype, requires_grad=False), ws, bs, oms, order,
                  f"render TM=2 D={dim} width={width} {dtype}")


def test_weighted_laplacian_float32(dev, monkeypatch):
    """The float32 LapWeights kernels (first layer, sine epilogue and adjoint, fused render),
    which the float64 test above does not launch: on a GPU they keep the weights in local memory
    for their dynamic index. The jet, every gradient and both renders against float64."""
    lw = (1.0, -4.0)
    ws, bs, oms = make_net(dev, 2, 40, 1, 2, last_sine=False, dtype=torch.float32)
    x = coords(dev, N_CASES[dev]["large"], 2, torch.float32)
    check_against_reference(x, ws, bs, oms, 2, TOL[torch.float32], "weighted float32", lw)
    want = reference.mlp_jet(x.detach().double(), [w.detach().double() for w in ws],
                             [b.detach().double() for b in bs], oms, 2, lw)
    for fused in ("1", "0"):
        monkeypatch.setenv(backends.FUSED_INFER_ENV, fused)
        got = cuda_ext.mlp_infer(x.detach(), ws, bs, oms, 2, lw)
        for name, a, b in zip(("value", "grad", "laplacian"), got, want):
            assert a.dtype == torch.float32
            assert_close(a, b, TOL[torch.float32], f"render fused={fused} weighted float32 {name}")


@pytest.mark.parametrize("dim,lap_weights", [(1, (-2.5,)), (2, (1.0, -4.0)), (3, (0.0, 1.0, 1.0))])
def test_weighted_laplacian(dev, dim, lap_weights, monkeypatch):
    """``laplacian_weights`` in the kernels (LapWeights in fastsiren.h: the first-layer, sine
    epilogue and adjoint kernels and the fused render): the weighted jet and every gradient,
    and the render (fused and layer-wise), against the reference in float64; the ops say
    what is wrong with bad weights."""
    ws, bs, oms = make_net(dev, dim, 40, 1, 2, last_sine=dim == 1, bias_everywhere=dim != 2)
    x = coords(dev, N_CASES[dev]["small"], dim)
    calls = []  # every network op the backend runs, with the weights it was given
    real_ops = cuda_ext._ops

    class Spy:
        def __getattr__(self, name):
            op = getattr(real_ops(), name)

            def call(*args):
                calls.append((name, args[-1]))
                return op(*args)
            return call

    monkeypatch.setattr(cuda_ext, "_ops", Spy)
    check_against_reference(x, ws, bs, oms, 2, TOL[torch.float64], f"weighted D={dim}", lap_weights)
    assert [n for n, _ in calls] == ["mlp_fwd", "mlp_bwd"] and all(w == list(lap_weights) for _, w in calls), calls
    plain = reference.mlp_jet(x, ws, bs, oms, 2).laplacian
    want = reference.mlp_jet(x, ws, bs, oms, 2, lap_weights)
    assert scaled_err(want.laplacian, plain) > 1e-3  # the weights change the field checked
    for fused in ("1", "0"):
        monkeypatch.setenv(backends.FUSED_INFER_ENV, fused)
        got = cuda_ext.mlp_infer(x.detach(), ws, bs, oms, 2, lap_weights)
        for name, a, b in zip(("value", "grad", "laplacian"), got, want):
            assert_close(a, b, TOL[torch.float64], f"render fused={fused} weighted {name}")
        assert calls[-1] == ("mlp_infer" if fused == "1" else "mlp_fwd", list(lap_weights)), calls[-1]
    # gradients of the weighted jet are differentiable again: create_graph=True recomputes by the
    # reference with the same weights (ctx.lap_weights), so they are the weighted ones, not the plain
    xs, w0 = x[:5].detach().clone().requires_grad_(), ws[0].detach().clone().requires_grad_()

    def lap(mod, weights):
        return mod.mlp_jet(xs, [w0, *ws[1:]], bs, oms, 2, weights).laplacian.sum()

    got = torch.autograd.grad(lap(cuda_ext, lap_weights), (xs, w0), create_graph=True)
    want = torch.autograd.grad(lap(reference, lap_weights), (xs, w0))
    plain = torch.autograd.grad(lap(reference, None), (xs, w0))
    for g, w, pl, name in zip(got, want, plain, ("x", "W0")):
        assert g.requires_grad, name
        assert_close(g, w, TOL[torch.float64], f"create_graph weighted d lap / d {name}")
        assert scaled_err(w, pl) > 1e-3, name  # the weights change what is checked
    assert torch.autograd.gradgradcheck(
        lambda a, w: cuda_ext.mlp_jet(a, [w, *ws[1:]], bs, oms, 2, lap_weights).laplacian, (xs, w0), atol=1e-5)
    w, b = [t.detach() for t in ws], [None if t is None else t.detach() for t in bs]
    om = cuda_ext._op_omegas(oms)
    with pytest.raises(RuntimeError, match=f"one weight per input dimension \\({dim}\\), got {dim + 1}"):
        ops().mlp_fwd(x.detach(), w, b, om, 2, False, False, [1.0] * (dim + 1))
    with pytest.raises(RuntimeError, match="needs order=2, got order=1"):
        ops().mlp_infer(x.detach(), w, b, om, 1, [1.0] * dim)
    with pytest.raises(RuntimeError, match=r"lap_weights\[0\] must be a finite number in the dtype of x, got nan"):
        ops().mlp_infer(x.detach(), w, b, om, 2, [float("nan")] * dim)
    x32 = x.detach().float()  # finite as a double, inf as a float: rejected, not cast to inf
    with pytest.raises(RuntimeError, match=r"lap_weights\[0\] must be a finite number in the dtype of x"):
        ops().mlp_infer(x32, [t.float() for t in w], [None if t is None else t.float() for t in b], om, 2,
                        [1e300] * dim)


def test_render_through_the_layer_kernels_unless_fusion_is_on(dev, monkeypatch):
    """The default (and set_fused_inference(False)) runs the layer-wise kernels; fusion on, the
    fused one; the same jets."""
    ws, bs, oms = make_net(dev, 2, 40, 2, 1, False, dtype=torch.float32)
    x = coords(dev, 37, 2, torch.float32, requires_grad=False)
    backends.set_fused_inference(True)
    try:
        fused = cuda_ext.mlp_infer(x, ws, bs, oms, 2)
    finally:
        backends.set_fused_inference(None)
    calls = []
    real = cuda_ext._ops

    class Spy:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(real(), name)

    monkeypatch.setattr(cuda_ext, "_ops", Spy)
    layered = cuda_ext.mlp_infer(x, ws, bs, oms, 2)
    backends.set_fused_inference(False)
    try:
        cuda_ext.mlp_infer(x, ws, bs, oms, 0)
        backends.set_fused_inference(True)
        cuda_ext.mlp_infer(x, ws, bs, oms, 0)
    finally:
        backends.set_fused_inference(None)
    assert calls == ["mlp_fwd", "mlp_fwd", "mlp_infer"], calls
    ref = reference.mlp_infer(x.double(), [w.double() for w in ws], [b.double() for b in bs], oms, 2)
    for name, a, b, c in zip(("value", "grad", "laplacian"), layered, fused, ref):
        assert_close(a, c, TOL[torch.float32], f"layer-wise render {name}")
        assert_close(a, b, TOL[torch.float32], f"layer-wise vs fused render {name}")


def test_render_falls_back_for_networks_it_cannot_fuse(dev, monkeypatch):
    monkeypatch.setenv(backends.FUSED_INFER_ENV, "1")  # the fused op asked for, and refusing
    # width 300 > kMaxRenderWidth and 20 layers > kMaxRenderLayers: the layer-wise kernels
    for width, hidden in ((300, 1), (24, 19)):
        ws, bs, oms = make_net(dev, 2, width, hidden, 1, False)
        # 20 hidden layers at omega 3.5 are chaotic (the jet grows by orders of magnitude per
        # layer): 1-ulp rounding differences outgrow the tolerance. At 1.5 it stays well conditioned.
        if hidden > 1:
            oms = [30.0] + [1.5] * hidden + [None]
        x = coords(dev, 37, 2, requires_grad=False)
        jet = cuda_ext.mlp_infer(x, ws, bs, oms, 2)
        ref = reference.mlp_infer(x, ws, bs, oms, 2)
        for a, b in zip(jet, ref):
            assert_close(a, b, 1e-9, f"render fallback width={width} layers={hidden + 2}")


def test_model_render_and_auto_backend(dev):
    # "auto" picks cuda on a GPU; the emulation is never an automatic choice
    assert backends.resolve("auto", dev) == ("cuda" if dev == "cuda" else "torch")
    model = fs.Siren(2, 64, 2, 3, backend="cuda" if dev == "cpu" else "auto").to(dev)
    ref = fs.Siren(2, 64, 2, 3, backend="reference").to(dev)
    ref.load_state_dict(model.state_dict())
    img = model.render((37, 45))
    assert img.shape == (37, 45, 3)
    assert_close(img, ref.render((37, 45)), TOL[torch.float32], "Siren.render")


def test_bad_inputs_have_clear_errors(dev):
    op = ops()
    ws, bs, oms = make_net(dev, 2, 24, 0, 1, False)
    w = [t.detach() for t in ws]
    b = [t.detach() for t in bs]
    x = coords(dev, 37, 2, requires_grad=False)
    if dev == "cuda":
        with pytest.raises(RuntimeError, match="x must be a CUDA tensor"):
            op.mlp_fwd(x.cpu(), w, b, [30.0, 0.0], 0, False)
        with pytest.raises(RuntimeError, match="x must be a CUDA tensor"):  # all-CPU: the CPU registration
            op.mlp_infer(x.cpu(), [t.cpu() for t in w], [t.cpu() for t in b], [30.0, 0.0], 0)
        with pytest.raises(RuntimeError, match="needs CUDA tensors"):
            fs.Siren(2, 8, 0, 1, backend="cuda")(torch.zeros(4, 2))
    else:  # no tensor of another device reaches the CPU registration: the registry answers instead
        assert "needs CPU tensors" in backends.unavailable_reason("cuda", "meta")
    with pytest.raises(RuntimeError, match=r"weights\[1\] has dtype Float but x has Double"):
        op.mlp_fwd(x, [w[0], w[1].float()], b, [30.0, 0.0], 0, False)
    with pytest.raises(RuntimeError, match=r"weights\[0\] must be contiguous"):
        op.mlp_fwd(x, [w[0].t().contiguous().t(), w[1]], b, [30.0, 0.0], 0, False)
    with pytest.raises(RuntimeError, match=r"weights\[1\] must have shape \(out, 24\), got \(1, 5\)"):
        op.mlp_fwd(x, [w[0], w[1][:, :5].contiguous()], b, [30.0, 0.0], 0, False)
    with pytest.raises(RuntimeError, match="x must be float32 or float64"):
        op.mlp_infer(x.half(), [t.half() for t in w], [t.half() for t in b], [30.0, 0.0], 0)
    with pytest.raises(RuntimeError, match="order must be 0, 1 or 2"):
        op.mlp_infer(x, w, b, [30.0, 0.0], 3)
    with pytest.raises(RuntimeError, match="in_features <= 16"):
        op.mlp_fwd(coords(dev, 5, 17, requires_grad=False), [torch.ones(3, 17, dtype=x.dtype, device=dev)],
                   [None], [30.0], 1, False)
    c = torch.zeros(5, 8, dtype=x.dtype, device=dev)
    with pytest.raises(RuntimeError, match="grad_forward_adjoint needs hbar or t"):
        op.grad_forward_adjoint(None, c, c, None)
    with pytest.raises(RuntimeError, match=r"hbar must have shape \(5, 8\) \(N, F\), got \(5, 7\)"):
        op.grad_forward_adjoint(torch.zeros(5, 7, dtype=x.dtype, device=dev), c, c, None)
    with pytest.raises(RuntimeError, match="r must have unit stride over its last axis"):
        op.grad_reverse_adjoint(torch.zeros(1, 8, 5, dtype=x.dtype, device=dev).transpose(1, 2),
                                torch.zeros(1, 5, 8, dtype=x.dtype, device=dev), c)
    with pytest.raises(RuntimeError, match=r"dbar must have shape \(O, 5, 8\), got \(1, 5, 7\)"):
        op.grad_reverse_adjoint(c.unsqueeze(0), torch.zeros(1, 5, 7, dtype=x.dtype, device=dev), c)
    with pytest.raises(RuntimeError, match="z must be float32 or float64"):
        op.grad_sin_cos(c.half())
    with pytest.raises(RuntimeError, match="h has dtype Float but c has Double"):  # named after c, not x
        op.grad_forward_adjoint(None, c, c.float(), c)
    out, saved = op.mlp_fwd(x, w, b, [30.0, 3.0], 1, True)
    with pytest.raises(RuntimeError, match=r"saved\[1\] must have shape \(3, 37, 1\) as mlp_fwd saved it, got "
                       r"\(3, 5, 1\)"):
        op.mlp_bwd(x, w, b, [30.0, 3.0], 1, [saved[0], saved[1][:, :5].contiguous()], out, True)


def test_ops_pass_opcheck(dev):
    """Schema, fake (meta) implementation and dispatch consistency of each custom op."""
    ws, bs, oms = make_net(dev, 2, 24, 1, 1, False)
    w = [t.detach() for t in ws]
    b = [t.detach() for t in bs]
    om = cuda_ext._op_omegas(oms)
    x = coords(dev, 37, 2, requires_grad=False)
    op = ops()
    out, saved = op.mlp_fwd(x, w, b, om, 2, True)
    torch.library.opcheck(op.mlp_fwd.default, (x, w, b, om, 2, True))
    torch.library.opcheck(op.mlp_infer.default, (x, w, b, om, 1))
    torch.library.opcheck(op.mlp_bwd.default, (x, w, b, om, 2, saved, torch.randn_like(out), True))
    lap = [1.0, -4.0]  # a weighted Laplacian (the trailing lap_weights argument)
    out, saved = op.mlp_fwd(x, w, b, om, 2, True, False, lap)
    torch.library.opcheck(op.mlp_fwd.default, (x, w, b, om, 2, True, False, lap))
    torch.library.opcheck(op.mlp_infer.default, (x, w, b, om, 2, lap))
    torch.library.opcheck(op.mlp_bwd.default, (x, w, b, om, 2, saved, torch.randn_like(out), True, False, lap))
    z, c, h = (torch.randn(37, 24, dtype=x.dtype, device=dev) for _ in range(3))
    dbar = torch.randn(2, 37, 24, dtype=x.dtype, device=dev)
    torch.library.opcheck(op.grad_sin_cos.default, (z,))
    torch.library.opcheck(op.grad_reverse_adjoint.default, (torch.randn_like(dbar), dbar, c))
    row = torch.randn(2, 1, 24, dtype=x.dtype, device=dev).expand(2, 37, 24)  # a broadcast over points
    torch.library.opcheck(op.grad_reverse_adjoint.default, (row, dbar, c))
    for hbar, t in ((z, h), (None, h), (z, None)):
        torch.library.opcheck(op.grad_forward_adjoint.default, (hbar, c, h, t))


def test_torch_compile_traces_the_ops(dev):
    ws, bs, oms = make_net(dev, 2, 40, 1, 1, False)
    x = coords(dev, N_CASES[dev]["large"], 2)

    def loss_fn(x, ws, bs):
        jet = cuda_ext.mlp_jet(x, ws, bs, oms, 2)
        return jet.value.square().mean() + jet.laplacian.square().mean() + jet.grad.square().mean()

    compiled = torch.compile(loss_fn, backend="aot_eager", fullgraph=True)
    got = compiled(x, ws, bs)
    want = loss_fn(x, ws, bs)
    assert_close(got, want, 1e-12, "compiled loss")

    g1 = torch.autograd.grad(got, ws)
    g2 = torch.autograd.grad(want, ws)
    for a, b in zip(g1, g2):
        assert_close(a, b, 1e-9, "compiled gradient")

    def grad_loss(x, ws, bs):  # order 1, one output in 2-D: the reverse path and its grad_* ops
        jet = cuda_ext.mlp_jet(x, ws, bs, oms, 1)
        return jet.value.square().mean() + jet.grad.square().mean()

    compiled = torch.compile(grad_loss, backend="aot_eager", fullgraph=True)
    got, want = compiled(x, ws, bs), grad_loss(x, ws, bs)
    assert_close(got, want, 1e-12, "compiled gradient loss")
    for i, (a, b) in enumerate(zip(torch.autograd.grad(got, ws), torch.autograd.grad(want, ws))):
        assert_close(a, b, 1e-12, f"compiled gradient loss d/dW{i}")


def test_batched_adjoints_vmap_the_backward(dev):
    """is_grads_batched=True vmaps the backward: the cuda Functions hand it to autograd over the
    reference's operations (the ops have no batching rules), for the jet and the reverse path."""
    x = coords(dev, 5, 2)
    for order, out in ((2, 2), (1, 1)):
        grads = []
        for be in ("cuda", "reference"):
            torch.manual_seed(0)
            m = fs.Siren(2, 6, 1, out, backend=be).to(dev).double()
            t = m.jet(x, order)[order]
            eye = torch.eye(t.numel(), dtype=t.dtype, device=dev).reshape(-1, *t.shape)
            grads.append(torch.autograd.grad(t, list(m.parameters()), eye, is_grads_batched=True, allow_unused=True))
        for i, (a, b) in enumerate(zip(*grads)):
            if b is not None:
                assert_close(a, b, TOL[torch.float64], f"order {order}, batched d/dparam{i}")


def test_strided_coordinates_are_accepted(dev):
    """Siren flattens x with reshape, which may hand over a strided view: same result as torch."""
    torch.manual_seed(0)
    model = fs.Siren(2, 40, 1, 1, backend="torch").to(dev).double()
    x = torch.rand(2, 50, device=dev, dtype=torch.float64).t()  # (50, 2), not contiguous
    want_value, want_lap = model(x), model.jet(x, order=2).laplacian
    model.backend = "cuda"
    assert_close(model(x), want_value, TOL[torch.float64], "strided x, forward")
    assert_close(model.jet(x, order=2).laplacian, want_lap, TOL[torch.float64], "strided x, Laplacian")
