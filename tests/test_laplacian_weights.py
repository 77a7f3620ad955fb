"""Weighted Laplacians (``jet(x, 2, laplacian_weights=c)``: sum_k c_k d2 f / d x_k^2) against
the Hessian's diagonal in float64, on every CPU backend, with every parameter gradient."""

import warnings

import pytest
import torch
from conftest import backend_params

import fastsiren as fs
from fastsiren import functional
from fastsiren import jet as jet_module
from fastsiren.data import grid as make_grid

WEIGHTS = {  # D -> weight vectors: a subset, signs (the wave operator), zeros everywhere, general
    1: [(0.0,), (-2.5,)],
    2: [(1.0, 0.0), (0.0, 1.0), (1.0, -4.0), (0.0, 0.0)],
    3: [(0.0, 1.0, 1.0), (1.0, -0.25, -0.25), (0.5, 2.0, -1.5)],
}
CASES = [(d, c) for d, cs in WEIGHTS.items() for c in cs]


def _hessian_diagonal(model, x):
    """(N, out, D) second derivatives d2 f_o / d x_k^2 by torch.func, point by point."""
    def point(xi):
        return model(xi.unsqueeze(0)).squeeze(0)

    return torch.func.vmap(torch.func.hessian(point))(x).diagonal(dim1=-2, dim2=-1)


def _loss_and_grads(model, x, weights, seed=3):
    j = model.jet(x, 2, laplacian_weights=weights)
    gen = torch.Generator().manual_seed(seed)
    loss = sum((t * torch.randn(t.shape, generator=gen, dtype=t.dtype)).sum() for t in j)
    params = [x, *model.parameters()]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return j, [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


@pytest.mark.parametrize("d,weights", CASES, ids=[f"D{d}-{c}" for d, c in CASES])
def test_reference_weighted_laplacian_is_the_weighted_hessian_diagonal(d, weights):
    model = fs.Siren(d, 19, 1, 2, first_omega_0=6.0, hidden_omega_0=4.0, backend="reference").double()
    x = torch.rand(11, d, dtype=torch.float64) * 2 - 1
    want = (_hessian_diagonal(model, x) * torch.tensor(weights, dtype=torch.float64)).sum(-1)
    got = model.jet(x, 2, laplacian_weights=weights)
    torch.testing.assert_close(got.laplacian, want, atol=1e-9, rtol=1e-9)
    plain = model.jet(x, 2)
    torch.testing.assert_close(got.value, plain.value, atol=0, rtol=0)
    torch.testing.assert_close(got.grad, plain.grad, atol=0, rtol=0)


@pytest.mark.parametrize("blocks", [False, True], ids=["one-block", "row-blocks"])
@pytest.mark.parametrize("d,weights", CASES, ids=[f"D{d}-{c}" for d, c in CASES])
def test_torch_weighted_laplacian_matches_reference(d, weights, blocks, monkeypatch):
    """Values, jets and the gradients of x and every parameter, in point blocks too (the
    weights enter the epilogue and its adjoint in every block)."""
    if blocks:  # 29 points in blocks of 5 (more than one stream), products in blocks of 4 rows
        monkeypatch.setattr(jet_module, "CPU_BLOCK_ROWS", 10)
        monkeypatch.setattr(jet_module, "CPU_BLOCK_ELEMS", 0)
        monkeypatch.setattr(jet_module, "CPU_GEMM_ROWS", 4)
    model = fs.Siren(d, 24, 2, 1 if d == 2 else 3, first_omega_0=30.0, hidden_omega_0=25.0).double()
    x = (torch.rand(29, d, dtype=torch.float64) * 2 - 1).requires_grad_()
    model.backend = "reference"
    ref, ref_grads = _loss_and_grads(model, x, weights)
    model.backend = "torch"
    got, grads = _loss_and_grads(model, x, weights)
    for name, a, b in zip(fs.Jet._fields, ref, got):
        torch.testing.assert_close(b, a, atol=1e-9, rtol=1e-7, msg=f"{name} differs")
    for name, a, b in zip(["x", *dict(model.named_parameters())], ref_grads, grads):
        torch.testing.assert_close(b, a, atol=1e-8, rtol=1e-7, msg=f"d loss / d {name} differs")


FUSED_CPU = backend_params(["triton", "cuda"])  # cuda in its CPU emulation; a skip with its reason where one cannot run


@pytest.mark.parametrize("backend", ["torch", *FUSED_CPU])
def test_gradcheck_and_double_backward_of_the_weighted_jet(backend):
    """gradcheck of the hand-written backward with weights (torch; the triton kernels under the
    interpreter; the cuda kernels in their emulation); gradgradcheck through the double backward
    fallback (create_graph=True recomputes by the reference with the same weights)."""
    w = [torch.randn(5, 3, dtype=torch.float64) * 0.5, torch.randn(4, 5, dtype=torch.float64) * 0.3,
         torch.randn(2, 4, dtype=torch.float64) * 0.3]
    b = [torch.randn(t.shape[0], dtype=torch.float64) * 0.1 for t in w]
    params = [t.requires_grad_() for t in (*w, *b)]
    x = (torch.rand(6, 3, dtype=torch.float64) * 2 - 1).requires_grad_()

    def f(x, *ps):
        j = functional.siren_jet(x, ps[:3], ps[3:], (3.0, 2.0, None), order=2, backend=backend,
                                 laplacian_weights=(1.0, -0.5, 0.0))
        return j.value, j.grad, j.laplacian

    # create_graph=True takes the double-backward fallback, which must recompute with the same
    # weights: its gradients are the weighted jet's (the reference's), not the plain Laplacian's
    got = torch.autograd.grad(f(x, *params)[2].sum(), (x, params[0]), create_graph=True)

    def ref_lap(weights):
        return functional.siren_jet(x, params[:3], params[3:], (3.0, 2.0, None), order=2, backend="reference",
                                    laplacian_weights=weights).laplacian.sum()

    want = torch.autograd.grad(ref_lap((1.0, -0.5, 0.0)), (x, params[0]))
    plain = torch.autograd.grad(ref_lap(None), (x, params[0]))
    for g, w, p in zip(got, want, plain):
        assert g.requires_grad
        torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-8)
        assert (w - p).abs().max() > 1e-3
    fast = backend != "torch"  # every interpreted launch costs time: one random direction
    assert torch.autograd.gradcheck(f, (x, *params), atol=1e-6, fast_mode=fast)
    assert torch.autograd.gradgradcheck(lambda x, w0: f(x, w0, *params[1:])[2], (x, params[0]), atol=1e-5,
                                        fast_mode=fast)


def test_weights_of_ones_are_the_plain_laplacian_and_linear_in_the_weights():
    model = fs.Siren(3, 16, 1, 2).double()
    x = torch.rand(9, 3, dtype=torch.float64) * 2 - 1
    plain = model.jet(x, 2)
    assert torch.equal(model.jet(x, 2, laplacian_weights=[1, 1, 1]).laplacian, plain.laplacian)
    assert torch.equal(model.jet(x, 2, laplacian_weights=torch.ones(3)).laplacian, plain.laplacian)
    # the wave operator f_tt - c^2 (f_xx + f_yy) in one pass equals its two parts
    c = 0.7
    wave = model.jet(x, 2, laplacian_weights=(1.0, -c * c, -c * c)).laplacian
    f_tt = model.jet(x, 2, laplacian_weights=(1.0, 0.0, 0.0)).laplacian
    spatial = model.jet(x, 2, laplacian_weights=(0.0, 1.0, 1.0)).laplacian
    torch.testing.assert_close(wave, f_tt - c * c * spatial, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(f_tt + spatial, plain.laplacian, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("make", [lambda: fs.ReluMLP(2, 16, 1, 1), lambda: fs.TanhMLP(2, 16, 1, 1),
                                  lambda: fs.PosEncMLP(2, 16, 1, 1, num_frequencies=2)],
                         ids=["relu", "tanh", "relu-pe"])
def test_baselines_take_laplacian_weights(make):
    model = make().double()
    x = torch.rand(7, 2, dtype=torch.float64) * 2 - 1
    want = (_hessian_diagonal(model, x) * torch.tensor([2.0, -1.0], dtype=torch.float64)).sum(-1)
    torch.testing.assert_close(model.jet(x, 2, laplacian_weights=(2.0, -1.0)).laplacian, want)


@pytest.mark.parametrize("backend", ["reference", "torch", *FUSED_CPU])
def test_weighted_laplacian_inside_torch_func_and_render(backend):
    """Inside torch.func (the reference's jets by torch.func) and in render, with and without a
    transform, the weights act the same as in an eager jet."""
    tf = torch.func
    model = fs.Siren(3, 12, 1, 1, first_omega_0=5.0, backend=backend).double()
    weights = (0.0, 1.0, -2.0)
    grid = make_grid((2, 3, 4), dtype=torch.float64)
    eager = model.jet(grid, 2, laplacian_weights=weights).laplacian.reshape(2, 3, 4, 1)
    torch.testing.assert_close(model.render((2, 3, 4), order=2, laplacian_weights=weights).laplacian, eager)
    lap, rend = _Lap(model, weights), _Render(model, weights)
    params = {k: v.detach() for k, v in lap.named_parameters()}

    def loss(p):
        return tf.functional_call(lap, p, (grid,)).pow(2).sum()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fused backend's one-time transform warning
        got = tf.grad(loss)(params)
        rendered = tf.grad(lambda p: tf.functional_call(rend, p, ()).pow(2).sum())(params)
    want = torch.autograd.grad(model.jet(grid, 2, laplacian_weights=weights).laplacian.pow(2).sum(),
                               list(model.parameters()), allow_unused=True)
    for (k, g), r, w in zip(got.items(), rendered.values(), want):
        w = torch.zeros_like(g) if w is None else w
        torch.testing.assert_close(g, w, msg=k)
        torch.testing.assert_close(r, w, msg=k)


class _Lap(torch.nn.Module):
    def __init__(self, model, weights):
        super().__init__()
        self.model, self.weights = model, weights

    def forward(self, x):
        return self.model.jet(x, 2, laplacian_weights=self.weights).laplacian


class _Render(_Lap):
    def forward(self):
        return self.model.render((2, 3, 4), order=2, laplacian_weights=self.weights).laplacian


@pytest.mark.parametrize("weights,order,err,match", [
    ((1.0, 1.0), 2, ValueError, "one weight per input dimension \\(3\\)"),
    ("abc", 2, TypeError, "sequence of 3 numbers"),
    (2.0, 2, TypeError, "sequence of 3 numbers"),
    ((1.0, float("nan"), 1.0), 2, ValueError, "laplacian_weights\\[1\\] must be a finite number"),
    ((1.0, True, 1.0), 2, ValueError, "laplacian_weights\\[1\\] must be a finite number"),
    (torch.ones(1, 3), 2, ValueError, "must be 1-D"),
    (torch.ones(3, requires_grad=True), 2, TypeError, "requires grad"),
    ((1.0, 0.0, 0.0), 1, ValueError, "needs order=2"),
])
def test_bad_laplacian_weights(weights, order, err, match):
    model = fs.Siren(3, 8, 0, 1)
    with pytest.raises(err, match=match):
        model.jet(torch.rand(4, 3), order, laplacian_weights=weights)
    with pytest.raises(err, match=match):
        model.render((2, 2, 2), order=order, laplacian_weights=weights)
