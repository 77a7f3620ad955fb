"""The torch backend against the reference backend in float64, modules, init, registry."""

import contextlib
import functools
import math
import threading
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import fastsiren as fs
from fastsiren import backends, functional, reference
from fastsiren import jet as jet_module
from fastsiren.jet import Jet

ATOL, RTOL = 1e-9, 1e-7  # float64 vs float64: only summation order differs


def _fused_on_cpu():
    """Every backend but the reference (conftest.backend_params: the cuda backend in its CPU
    emulation, a backend that cannot run here a skip with its reason)."""
    from conftest import backend_params

    return backend_params(b for b in backends.backend_names() if b != "reference")


def _set_backend(model, name):
    for m in model.modules():
        if hasattr(m, "backend"):
            m.backend = name


def _jet_and_grads(model, x, order, backend, seed=1):
    """The jet at ``x`` and the gradients of a random projection of it w.r.t. every parameter
    (in ``named_parameters`` order) and, last, the input ``x``."""
    _set_backend(model, backend)
    x = x.detach().clone().requires_grad_(True)
    jet = model.jet(x, order)
    gen = torch.Generator().manual_seed(seed)
    loss = sum((t * torch.randn(t.shape, generator=gen, dtype=t.dtype).to(t.device)).sum()
               for t in jet if t is not None)
    wrt = [*model.parameters(), x]
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    return jet, [torch.zeros_like(p) if g is None else g for p, g in zip(wrt, grads)]


CASES = [  # (D, hidden width, hidden_layers, out, first omega, hidden omega, outermost_linear)
    (1, 24, 0, 1, 30.0, 30.0, True),
    (2, 37, 1, 1, 30.0, 30.0, True),
    (2, 24, 2, 3, 10.0, 25.0, True),
    (3, 40, 1, 1, 5.0, 30.0, False),
    (3, 17, 3, 2, 30.0, 1.0, True),
    (2, 33, 1, 4, 60.0, 30.0, True),
]


@pytest.fixture
def threads():
    """``threads(n)`` sets torch's thread count for the test; the old count comes back after."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("rows", [None, "side-by-side", "serial"], ids=["one-product", "row-blocks", "serial-blocks"])
@pytest.mark.parametrize("order", [0, 1, 2])
@pytest.mark.parametrize("case", CASES, ids=[f"D{c[0]}-w{c[1]}-L{c[2]}-o{c[3]}" for c in CASES])
def test_torch_jet_matches_reference(case, order, rows, monkeypatch, threads):
    if rows is not None:  # 53 points in blocks of 10 points (order 0 and the reverse-mode
        # gradient) or 5 (S > 1 streams), every N-row product in blocks of 4; on 2 threads,
        # blocks side by side (backends.set_cpu_block_threads) or one at a time
        monkeypatch.setattr(jet_module, "CPU_GEMM_ROWS", 4)
        monkeypatch.setattr(jet_module, "CPU_BLOCK_ROWS", 10)
        monkeypatch.setattr(jet_module, "CPU_BLOCK_ELEMS", 0)
        monkeypatch.setattr(backends, "_CPU_BLOCK_THREADS", backends._Switch(backends.CPU_BLOCK_THREADS_ENV))
        monkeypatch.setattr(jet_module, "CPU_BLOCK_THREADS_MIN_LAYERS", 1)  # every case's network
        backends.set_cpu_block_threads(rows == "side-by-side")
        threads(2)
    _assert_torch_jet_matches_reference(case, order, 53, "cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("order", [0, 1, 2])
@pytest.mark.parametrize("case", CASES, ids=[f"D{c[0]}-w{c[1]}-L{c[2]}-o{c[3]}" for c in CASES])
def test_gpu_torch_jet_matches_reference_float64(case, order):
    """On a GPU the torch backend runs other code than on the CPU (cuBLAS products, no point
    blocks, torch's sines): values, jets and every gradient against reference in float64."""
    _assert_torch_jet_matches_reference(case, order, 4099, "cuda")


def _assert_torch_jet_matches_reference(case, order, n, device):
    d, width, layers, out, w0, w1, lin = case
    model = fs.Siren(d, width, layers, out, w0, w1, outermost_linear=lin).double().to(device)
    x = torch.rand(n, d, dtype=torch.float64, device=device) * 2 - 1
    ref_jet, ref_grads = _jet_and_grads(model, x, order, "reference")
    jet, grads = _jet_and_grads(model, x, order, "torch")
    for name, a, b in zip(Jet._fields, ref_jet, jet):
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.shape == b.shape, name
            torch.testing.assert_close(b, a, atol=ATOL, rtol=RTOL, msg=f"{name} differs")
    names = [pname for pname, _ in model.named_parameters()] + ["x"]
    assert len(names) == len(grads) == len(ref_grads)
    for pname, a, b in zip(names, ref_grads, grads):
        torch.testing.assert_close(b, a, atol=1e-8, rtol=1e-7, msg=f"d loss / d {pname} differs")


def test_jet_shapes_and_leading_dims():
    model = fs.Siren(3, 16, 1, 2)
    x = torch.rand(4, 5, 3)
    j = model.jet(x, order=2)
    assert j.value.shape == (4, 5, 2) and j.grad.shape == (4, 5, 2, 3) and j.laplacian.shape == (4, 5, 2)
    j1 = model.jet(x, order=1)
    assert j1.laplacian is None
    assert model.jet(x, order=0).grad is None
    torch.testing.assert_close(j.value, model(x))


@pytest.mark.parametrize("blocks", [False, True], ids=["one-block", "row-blocks"])
@pytest.mark.parametrize("order,out", [(1, 1), (1, 3), (2, 1), (0, 2)])
def test_gradcheck_torch_jet_function(order, out, blocks, monkeypatch, threads):
    """gradcheck of the hand-written backward (order 1 with out < D takes the reverse path);
    with ``blocks``, 6 points in blocks of 1 point, products in blocks of 3 rows, on 2 threads
    side by side."""
    if blocks:
        monkeypatch.setattr(jet_module, "CPU_BLOCK_ROWS", 1)
        monkeypatch.setattr(jet_module, "CPU_BLOCK_ELEMS", 0)
        monkeypatch.setattr(jet_module, "CPU_GEMM_ROWS", 3)
        monkeypatch.setattr(jet_module, "CPU_BLOCK_THREADS_MIN_LAYERS", 1)
        threads(2)
    w = [torch.randn(5, 2, dtype=torch.float64) * 0.5, torch.randn(4, 5, dtype=torch.float64) * 0.3,
         torch.randn(out, 4, dtype=torch.float64) * 0.3]
    b = [torch.randn(t.shape[0], dtype=torch.float64) * 0.1 for t in w]
    params = [t.requires_grad_() for t in (*w, *b)]
    x = (torch.rand(6, 2, dtype=torch.float64) * 2 - 1).requires_grad_()

    def f(x, *ps):
        j = functional.siren_jet(x, ps[:3], ps[3:], (3.0, 2.0, None), order=order, backend="torch")
        return tuple(t for t in j if t is not None)

    assert torch.autograd.gradcheck(f, (x, *params), atol=1e-6)


def _tensors_in(obj, depth=0) -> int:
    """Number of tensors reachable from ``obj`` through lists, tuples and dicts."""
    if isinstance(obj, torch.Tensor):
        return 1
    if depth < 4 and isinstance(obj, (list, tuple)):
        return sum(_tensors_in(o, depth + 1) for o in obj)
    if depth < 4 and isinstance(obj, dict):
        return sum(_tensors_in(o, depth + 1) for o in obj.values())
    return 0


def test_point_blocks_take_more_points_for_narrow_layers():
    """CPU point blocks: max(CPU_BLOCK_ROWS, CPU_BLOCK_ELEMS // width) points with one stream,
    half as many with more; every point in exactly one block, in order; one block on a GPU."""
    cpu = torch.device("cpu")
    for width, streams, step in [(64, 1, 4096), (128, 1, 2048), (256, 1, 1024), (512, 1, 1024),
                                 (64, 4, 2048), (128, 3, 1024), (512, 5, 512), (0, 1, 1024)]:
        blocks = jet_module._point_blocks(10_000, cpu, streams, width)
        assert [b.stop - b.start for b in blocks[:-1]] == [step] * (len(blocks) - 1), (width, streams)
        assert blocks[0].start == 0 and blocks[-1].stop == 10_000
        assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:]))
    assert jet_module._point_blocks(0, cpu, 1, 64) == [slice(0, 0)]
    assert jet_module._point_blocks(10_000, torch.device("meta"), 4, 64) == [slice(0, 10_000)]


def test_cpu_blocks_side_by_side(monkeypatch, threads):
    """With T = 3 threads and 7 point blocks, the blocks of a 4-layer network run on 3 threads in
    contiguous shares (the caller and two workers), each op there on one thread; the caller
    gets its thread count back; a worker's error reaches the caller; inference mode carries
    over; off (set_cpu_block_threads(False)), with one thread, under a dispatch mode or with
    fewer than CPU_BLOCK_THREADS_MIN_LAYERS layers, one share."""
    from torch.utils.flop_counter import FlopCounterMode

    monkeypatch.setattr(jet_module, "CPU_BLOCK_ROWS", 3)
    monkeypatch.setattr(jet_module, "CPU_BLOCK_ELEMS", 0)
    monkeypatch.setattr(backends, "_CPU_BLOCK_THREADS", backends._Switch(backends.CPU_BLOCK_THREADS_ENV))
    threads(3)
    x = torch.rand(20, 2, dtype=torch.float64)
    assert jet_module._block_shares(7, x, 4) == [range(0, 2), range(2, 4), range(4, 7)]
    assert jet_module._block_shares(7, x, 3) == [range(0, 7)]  # too few layers
    assert jet_module._block_shares(5, x, 4) == [range(0, 2), range(2, 5)]  # 2 blocks a share at least
    assert jet_module._block_shares(3, x, 4) == [range(0, 3)]
    with torch.device("cpu"):  # a TorchFunctionMode: its state is the caller thread's
        assert jet_module._block_shares(7, x, 4) == [range(0, 7)]
    with torch.profiler.profile():  # the profiler records the caller's thread only
        assert jet_module._block_shares(7, x, 4) == [range(0, 7)]
    seen = []
    real = jet_module._layer_forward

    def spy(*args, **kwargs):
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return real(*args, **kwargs)

    monkeypatch.setattr(jet_module, "_layer_forward", spy)
    model = fs.Siren(2, 8, 2, 1, backend="torch").double()
    with torch.inference_mode():
        y = model(x)  # 7 blocks of 3 points, 4 layers each
    assert y.is_inference() and torch.get_num_threads() == 3
    assert len(seen) == 28 and {n for n, _ in seen} >= {threading.current_thread().name} and \
        len({n for n, _ in seen}) == 3 and {t for _, t in seen} == {1}
    _set_backend(model, "reference")
    torch.testing.assert_close(y, model(x))
    _set_backend(model, "torch")

    def boom(*args, **kwargs):
        if threading.current_thread().name.startswith("fastsiren-blocks"):
            raise RuntimeError("worker failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(jet_module, "_layer_forward", boom)
    with pytest.raises(RuntimeError, match="worker failed"):
        model(x)
    assert torch.get_num_threads() == 3
    backends.set_cpu_block_threads(False)
    assert jet_module._block_shares(7, x, 4) == [range(0, 7)]
    backends.set_cpu_block_threads(None)
    with FlopCounterMode(display=False):
        assert jet_module._block_shares(7, x, 4) == [range(0, 7)]
    threads(1)
    assert jet_module._block_shares(7, x, 4) == [range(0, 7)]
    threads(4)  # 5 blocks: 2 shares of 2 threads each
    seen.clear()
    monkeypatch.setattr(jet_module, "_layer_forward", spy)
    monkeypatch.setattr(jet_module, "CPU_BLOCK_ROWS", 4)
    model(x)
    assert {t for _, t in seen} == {2} and len({n for n, _ in seen}) == 2 and torch.get_num_threads() == 4


def _blocks_in_child(queue) -> None:
    torch.set_num_threads(2)
    x = torch.rand(40, 2, dtype=torch.float64)
    model = fs.Siren(2, 8, 2, 1, backend="torch").double()
    queue.put(model.jet(x, 2).laplacian.shape == (40, 1))


def test_cpu_blocks_side_by_side_in_a_forked_child(monkeypatch, threads):
    """A process forked after the block workers started (a DataLoader worker, say) starts its
    own: the parent's threads do not exist there, and jobs queued for them would wait forever."""
    import multiprocessing

    monkeypatch.setattr(jet_module, "CPU_BLOCK_ROWS", 4)
    monkeypatch.setattr(jet_module, "CPU_BLOCK_ELEMS", 0)
    threads(2)
    fs.Siren(2, 8, 2, 1, backend="torch").double().jet(torch.rand(40, 2, dtype=torch.float64), 2)
    assert jet_module._BLOCK_WORKERS  # started here
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=_blocks_in_child, args=(results,))
    child.start()
    child.join(timeout=120)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung on the parent's block workers")
    assert child.exitcode == 0 and results.get(timeout=5)


@pytest.mark.parametrize("order,out", [(1, 1), (2, 1), (1, 3)], ids=["reverse-grad", "laplacian", "forward-grad"])
def test_torch_jet_cache_freed_after_backward_kept_with_retain_graph(order, out, monkeypatch):
    """What a jet's forward keeps for its backward is freed by that backward (not held by the
    outputs' graph into the next training step), and retain_graph=True keeps it for a second."""
    monkeypatch.setattr(jet_module, "CPU_BLOCK_ROWS", 8)  # several point blocks
    monkeypatch.setattr(jet_module, "CPU_BLOCK_ELEMS", 0)
    torch.manual_seed(5)
    model = fs.Siren(2, 12, 1, out, backend="torch").double()
    x = torch.rand(11, 2, dtype=torch.float64) * 2 - 1
    grads = []
    for retain in (True, False):
        j = model.jet(x, order)
        fn = j.grad.grad_fn
        while "Function" not in type(fn).__name__:  # through the reshapes of the module's outputs
            fn = fn.next_functions[0][0]
        assert len(fn.saved_tensors) > 1 + 2 * 3  # x, weights, biases and the cache
        assert _tensors_in(vars(fn)) == 0, "the forward left tensors in ctx attributes"
        loss = (j.grad.pow(2).sum() + (j.laplacian.pow(2).sum() if order == 2 else 0))
        model.zero_grad()
        loss.backward(retain_graph=retain)
        grads.append([None if p.grad is None else p.grad.clone() for p in model.parameters()])
        if retain:
            model.zero_grad()
            loss.backward()  # the second backward reads the retained cache
            for a, p in zip(grads[-1], model.parameters()):
                torch.testing.assert_close(p.grad, a)  # None (the final bias) on both
        with pytest.raises(RuntimeError):
            _ = fn.saved_tensors  # freed by autograd while j and loss are still alive
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("blocks", [False, True], ids=["one-block", "row-blocks"])
@pytest.mark.parametrize("order,lin", [(0, True), (0, False), (1, True), (2, False)])
def test_torch_jet_outputs_are_not_the_saved_cache(order, lin, blocks, monkeypatch):
    """An output may be changed in place before the backward: where the forward keeps a
    tensor, the output is a copy of it (never a view: a D = 1 gradient too), and where it does
    not (order 0's last layer), the output is that tensor itself. The gradients then match
    reference's, taken through the same in-place change."""
    if blocks:
        monkeypatch.setattr(jet_module, "CPU_BLOCK_ROWS", 4)
        monkeypatch.setattr(jet_module, "CPU_BLOCK_ELEMS", 0)
    torch.manual_seed(2)
    d = 1 if order == 1 else 2  # order 1 with D = 1 > O = 1 takes the forward-mode streams
    model = fs.Siren(d, 9, 1, 1, outermost_linear=lin).double()
    x = torch.rand(11, d, dtype=torch.float64) * 2 - 1
    got = []
    for backend in ("reference", "torch"):
        _set_backend(model, backend)
        j = model.jet(x, order)
        outs = [t for t in j if t is not None]
        for t in outs:
            t.mul_(3.0)
        loss = sum(t.pow(2).sum() for t in outs)
        got.append(torch.autograd.grad(loss, list(model.parameters()), allow_unused=True))
    for a, b in zip(*got):
        if a is None or b is None:
            assert a is None or not a.abs().max() or b is not None
            continue
        torch.testing.assert_close(b, a, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("lin", [True, False])
@pytest.mark.parametrize("order", [0, 2])
def test_torch_backward_of_a_broadcast_adjoint_in_blocks(order, lin, monkeypatch):
    """``.sum().backward()`` hands the backward an expanded (stride-0) adjoint: order 0 reads it
    in place, block by block, and the input's adjoint is written block by block; all as reference."""
    monkeypatch.setattr(jet_module, "CPU_BLOCK_ROWS", 4)
    monkeypatch.setattr(jet_module, "CPU_BLOCK_ELEMS", 0)
    torch.manual_seed(3)
    model = fs.Siren(2, 10, 1, 2, outermost_linear=lin).double()
    x0 = torch.rand(13, 2, dtype=torch.float64) * 2 - 1
    got = []
    for backend in ("reference", "torch"):
        _set_backend(model, backend)
        x = x0.clone().requires_grad_(True)
        j = model.jet(x, order)
        (j.value if order == 0 else j.laplacian).sum().backward()
        # (the last bias has no Laplacian: reference leaves its gradient None)
        got.append([x.grad] + [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()])
        model.zero_grad()
    for a, b in zip(*got):
        torch.testing.assert_close(b, a, atol=ATOL, rtol=RTOL)


def test_order0_forward_takes_no_cosine(monkeypatch):
    """A differentiable order-0 forward keeps z' and takes no cosine: evaluating a network under
    grad mode costs a GEMM and a sine per layer; the backward takes the cosines."""
    from torch.utils._python_dispatch import TorchDispatchMode

    calls = []

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            calls.append(func.__name__.split(".")[0])
            return func(*args, **(kwargs or {}))

    model = fs.Siren(2, 8, 2, 1, backend="torch").double()
    x = torch.rand(7, 2, dtype=torch.float64)
    with Count():
        y = model(x)
    assert "cos" not in calls and calls.count("sin") == 3, calls
    calls.clear()
    with Count():
        y.sum().backward()
    assert calls.count("cos") == 3 and "sin" not in calls, calls


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("backend", _fused_on_cpu())
def test_training_loop_peak_memory_does_not_double(order, backend):
    """A loop that keeps the last step's jet and loss alive into the next step (as training
    code does) peaks at about one step's memory: the forward's cache dies with the backward."""
    from fastsiren.benchmarks.harness import LiveTensorBytes

    torch.manual_seed(6)
    model = fs.Siren(2, 32, 2, 1, backend=backend)
    x = torch.rand(600, 2) * 2 - 1

    def steps(k):
        with LiveTensorBytes() as live:
            for _ in range(k):
                j = model.jet(x, order)
                loss = (j.grad.pow(2).mean() if order == 1 else j.laplacian.pow(2).mean())
                loss.backward()
        return live.peak

    one, three = steps(1), steps(3)
    assert one > 0 and three < 1.25 * one, (one, three)


@pytest.mark.parametrize("backend", ["reference", *_fused_on_cpu()])
def test_double_backward_plain_forward(backend):
    """The official repo's `gradient(model(x), x)` then `loss.backward()` works and agrees."""
    torch.manual_seed(3)
    model = fs.Siren(2, 21, 1, 1, backend=backend).double()
    ref = fs.Siren(2, 21, 1, 1, backend="reference").double()
    ref.load_state_dict(model.state_dict())
    x = torch.rand(19, 2, dtype=torch.float64) * 2 - 1
    out = []
    for m in (model, ref):
        xi = x.clone().requires_grad_()
        (g,) = torch.autograd.grad(m(xi).sum(), xi, create_graph=True)
        loss = g.pow(2).sum()
        out.append(torch.autograd.grad(loss, list(m.parameters()), allow_unused=True))
    for a, b in zip(*out):
        assert (a is None) == (b is None) or (a if b is None else b).abs().max() == 0
        if a is not None and b is not None:
            torch.testing.assert_close(a, b)


def test_gradgradcheck_sine_linear():
    x = torch.rand(7, 3, dtype=torch.float64, requires_grad=True)
    w = (torch.randn(5, 3, dtype=torch.float64) * 0.3).requires_grad_()
    b = (torch.randn(5, dtype=torch.float64) * 0.1).requires_grad_()
    for be in ("reference", "torch"):
        f = lambda x, w, b, be=be: functional.sine_linear(x, w, b, 3.0, backend=be)
        assert torch.autograd.gradgradcheck(f, (x, w, b))


def test_functional_equals_module_and_reference():
    layer = fs.SineLayer(5, 7, omega_0=12.0).double()
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    expect = torch.sin(12.0 * (x @ layer.weight.T + layer.bias))
    for be in ("reference", "torch"):
        layer.backend = be
        torch.testing.assert_close(layer(x), expect)
        torch.testing.assert_close(functional.sine_linear(x, layer.weight, layer.bias, 12.0, backend=be), expect)


def test_functional_siren_forward_and_jet_equal_the_module():
    m = fs.Siren(2, 16, 1, 3).double()
    x = torch.rand(9, 2, dtype=torch.float64) * 2 - 1
    w, b = m._params()
    torch.testing.assert_close(functional.siren_forward(x, w, b, m.omegas(), backend="torch"), m(x))
    torch.testing.assert_close(functional.siren_jet(x, w, b, m.omegas(), 2, backend="torch").laplacian,
                               m.jet(x, 2).laplacian)


def test_siren_structure_and_init_bounds():
    m = fs.Siren(2, 256, 3, 1, first_omega_0=30.0, hidden_omega_0=30.0)
    assert len(m.layers) == 5 and m.omegas() == (30.0, 30.0, 30.0, 30.0, None)
    assert isinstance(m.layers[-1], nn.Linear)
    assert m.layers[0].weight.abs().max() <= 1 / 2
    bound = math.sqrt(6 / 256) / 30
    for layer in m.layers[1:]:
        assert layer.weight.abs().max() <= bound
        assert layer.weight.abs().max() > 0.9 * bound  # the whole range is used
    assert fs.count_params(m) == 2 * 256 + 256 + 3 * (256 * 256 + 256) + 256 + 1


@pytest.mark.parametrize("first,hidden,scale", [("hidden", "paper", 2.0), ("pytorch", "xavier", 1.0),
                                                ("xavier", "normal", 0.5), ("normal", "pytorch", 1.0)])
def test_init_schemes_by_name(first, hidden, scale):
    m = fs.Siren(2, 64, 1, 1, first_init=first, hidden_init=hidden, init_scale=scale)
    w1 = m.layers[1].weight
    if hidden == "paper":
        assert w1.abs().max() <= scale * math.sqrt(6 / 64) / 30
        assert w1.abs().max() > 0.9 * scale * math.sqrt(6 / 64) / 30
    if hidden == "normal":
        assert abs(w1.std().item() - scale * math.sqrt(2 / 64) / 30) < 0.1 * scale * math.sqrt(2 / 64) / 30
    if first == "pytorch":  # Kaiming uniform a=sqrt(5): bound 1/sqrt(fan_in)
        assert m.layers[0].weight.abs().max() <= 1 / math.sqrt(2)


def test_hidden_init_bound_first_layer_variant():
    m = fs.Siren(2, 64, 1, 1, first_omega_0=30.0, first_init="hidden")
    assert m.layers[0].weight.abs().max() <= math.sqrt(6 / 2) / 30
    m2 = fs.Siren(2, 64, 1, 1, first_init="paper")
    assert m2.layers[0].weight.abs().max() > math.sqrt(6 / 2) / 30  # 1/2 > 0.058: a different scheme


def test_preactivations_standard_normal_through_depth():
    """The paper's claim (Sec. 3.2): omega_0 W h is ~N(0, 1), sin of it arcsine (std 1/sqrt 2)."""
    torch.manual_seed(0)
    m = fs.Siren(1, 1024, 5, 1).double()
    h = torch.linspace(-1, 1, 4096, dtype=torch.float64)[:, None]
    with torch.no_grad():
        h = m.layers[0](h)
        for layer in m.layers[1:-1]:
            pre = layer.omega_0 * (h @ layer.weight.T)
            assert abs(pre.std().item() - 1.0) < 0.08
            assert abs(pre.mean().item()) < 0.08
            h = layer(h)
            assert abs(h.std().item() - 1 / math.sqrt(2)) < 0.08
            # arcsine-like (U-shaped) activations: for the arcsine law P(|h| > 0.9) = 0.29 and
            # P(|h| < 0.1) = 0.06; a bell-shaped law would reverse the order.
            assert (h.abs() > 0.9).double().mean() > 2.5 * (h.abs() < 0.1).double().mean()


class _OfficialSineLayer(nn.Module):
    """The official repo's layer shape: `self.linear` inside a module."""

    def __init__(self, i, o, omega_0=30.0):
        super().__init__()
        self.omega_0, self.linear = omega_0, nn.Linear(i, o)

    def forward(self, x):
        return torch.sin(self.omega_0 * self.linear(x))


class _OfficialSiren(nn.Module):
    def __init__(self, i, hid, layers, o):
        super().__init__()
        net = [_OfficialSineLayer(i, hid)] + [_OfficialSineLayer(hid, hid) for _ in range(layers)]
        net.append(nn.Linear(hid, o))
        self.net = nn.Sequential(*net)

    def forward(self, x):
        return self.net(x)


def test_load_official_state_dict():
    off = _OfficialSiren(2, 32, 2, 3).double()
    assert "net.0.linear.weight" in off.state_dict() and "net.3.weight" in off.state_dict()
    m = fs.Siren(2, 32, 2, 3).double()
    m.load_official_state_dict(off.state_dict())
    x = torch.rand(10, 2, dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(m(x), off(x))
    with pytest.raises(ValueError, match="linear weight matrices"):
        fs.Siren(2, 32, 1, 3).load_official_state_dict(off.state_dict())
    # keys sorted as strings (safetensors' order): net.10 before net.2, loaded by layer index
    deep = _OfficialSiren(2, 8, 10, 1).double()
    m = fs.Siren(2, 8, 10, 1, backend="reference").double()  # 12 layers at the default init amplify rounding
    m.load_official_state_dict(dict(sorted(deep.state_dict().items())))
    torch.testing.assert_close(m(x), deep(x))


@pytest.mark.parametrize("kind", ["relu", "tanh", "relu-pe"])
@pytest.mark.parametrize("layers", [1, 3])
def test_matched_baseline_same_layers_and_params(kind, layers):
    siren = fs.Siren(2, 256, layers, 1)
    kw = {"sidelength": 256} if kind == "relu-pe" else {}
    base = fs.matched_baseline(siren, kind, **kw)
    assert len(base.layers) == len(siren.layers)
    assert abs(fs.count_params(base) - fs.count_params(siren)) <= 0.01 * fs.count_params(siren)
    x = torch.rand(9, 2) * 2 - 1
    j = base.jet(x, 2)
    assert j.value.shape == (9, 1) and j.grad.shape == (9, 1, 2) and j.laplacian.shape == (9, 1)


def test_posenc_frequencies_official_rule():
    # official: floor(log2(samples / 4)) octaves; 256 samples -> 6
    assert fs.PosEncMLP(2, 16, 1, 1, sidelength=256).num_frequencies == 6
    assert fs.PosEncMLP(2, 16, 1, 1, sidelength=512).encoded_features() == 2 * (1 + 2 * 7)


def test_posenc_mlp_takes_no_points():
    m = fs.PosEncMLP(2, 8, 1, 3)
    assert m(torch.rand(0, 2)).shape == (0, 3)
    assert m.jet(torch.rand(0, 2)).grad.shape == (0, 3, 2)
    assert m(torch.rand(2, 0, 2)).shape == (2, 0, 3)


def test_relu_laplacian_is_zero():
    m = fs.ReluMLP(2, 16, 1, 1).double()
    j = m.jet(torch.rand(8, 2, dtype=torch.float64), 2)
    assert torch.all(j.laplacian == 0)


@pytest.mark.parametrize("make", [lambda: fs.Siren(2, 8, 1, 1, backend="reference"),
                                  lambda: fs.ReluMLP(2, 8, 1, 1)], ids=["reference", "relu"])
def test_autograd_jets_under_no_grad_and_inference_mode(make):
    """Jets by autograd (reference backend, baselines) run under ``torch.inference_mode()`` and
    come back detached there and under ``torch.no_grad()``, as the other backends' do."""
    m = make().double()
    x = torch.rand(5, 2, dtype=torch.float64)
    want = m.jet(x, 2)
    with torch.no_grad():
        got = m.jet(x, 2)
    with torch.inference_mode():
        inf = m.jet(torch.rand(5, 2, dtype=torch.float64).copy_(x), 2)
        img = m.render((3, 4), order=1)
    for a, b, c in zip(got, inf, want):
        assert not a.requires_grad and not b.requires_grad
        torch.testing.assert_close(a, c.detach())
        torch.testing.assert_close(b, c.detach())
    assert img.grad.shape == (3, 4, 1, 2)
    saved = []  # a value-only pass records no graph: autograd saves no activations
    with torch.no_grad(), torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        m(x.requires_grad_())
        m.render((3, 4))
    assert not saved


def test_render_matches_forward_and_chunks():
    m = fs.Siren(2, 16, 1, 2).double()
    img = m.render((5, 7))
    from fastsiren.data import grid

    torch.testing.assert_close(img, m(grid((5, 7), dtype=torch.float64)).reshape(5, 7, 2))
    torch.testing.assert_close(m.render((5, 7), chunk=4), img)
    jet = m.render((5, 7), order=2, chunk=6)
    assert jet.laplacian.shape == (5, 7, 2) and jet.grad.shape == (5, 7, 2, 2)
    m3 = fs.Siren(3, 8, 0, 1)
    assert m3.render((2, 3, 4)).shape == (2, 3, 4, 1)


def test_render_default_chunk_bounds_the_layer_streams(monkeypatch):
    """Without ``chunk``, render's passes hold at most CPU_STREAM_BYTES of the widest layer's
    input and output streams: fewer points per pass for jets and wide networks."""
    from fastsiren import render as rmod

    m = fs.Siren(2, 256, 1, 1)
    per_point = [2 * s * 256 * 4 for s in (1, 3, 4)]  # value; + gradient (D = 2); + Laplacian
    want = [max(rmod.MIN_CHUNK, min(rmod.CPU_CHUNK, rmod.CPU_STREAM_BYTES // b)) for b in per_point]
    assert [rmod.default_chunk(m, order) for order in (0, 1, 2)] == want == [65536, 43690, 32768]
    assert rmod.default_chunk(fs.Siren(2, 256, 1, 1).double(), 2) == 16384  # float64: twice the bytes
    monkeypatch.setattr(rmod, "CPU_STREAM_BYTES", 2 * 4 * 256 * 4 * 5000)  # 5000 points at order 2
    monkeypatch.setattr(rmod, "MIN_CHUNK", 1)
    sizes = []
    real = m._infer_flat
    monkeypatch.setattr(m, "_infer_flat",
                        lambda x, order, lap_w=None: sizes.append(x.shape[0]) or real(x, order, lap_w))
    jet = m.render((100, 120), order=2)
    assert sizes == [5000, 5000, 2000] and jet.laplacian.shape == (100, 120, 1)


def test_registry_and_env_override(monkeypatch):
    assert {"reference", "torch"} <= set(fs.available_backends("cpu"))
    assert backends.resolve("auto", "cpu") == "torch"
    monkeypatch.setenv("FASTSIREN_BACKEND", "reference")
    assert backends.resolve("auto", "cpu") == "reference"
    assert backends.resolve(None, "cpu") == "reference"
    with pytest.raises(RuntimeError, match="cuda.*cannot run"):
        backends.resolve("cuda", "cpu")
    monkeypatch.setenv("FASTSIREN_BACKEND", "Torch")  # the error names the variable it came from
    with pytest.raises(ValueError, match="backend='Torch' is not a known backend.*FASTSIREN_BACKEND"):
        backends.resolve("auto", "cpu")
    monkeypatch.setenv("FASTSIREN_BACKEND", "cuda")
    with pytest.raises(RuntimeError, match="'cuda' \\(from FASTSIREN_BACKEND='cuda'\\) cannot run"):
        backends.resolve(None, "cpu")
    monkeypatch.setenv("FASTSIREN_BACKEND", " reference\n")  # stripped, as the other FASTSIREN_* switches
    assert backends.resolve("auto", "cpu") == "reference"
    monkeypatch.setenv("FASTSIREN_BACKEND", "  ")
    assert backends.resolve("auto", "cpu") == "torch"


def test_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        backends.resolve("triton", "cpu")


def test_bad_inputs():
    m = fs.Siren(2, 8, 1, 1)
    with pytest.raises(ValueError, match="in_features=2"):
        m(torch.rand(4, 3))
    with pytest.raises(TypeError, match="floating"):
        m(torch.ones(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="order"):
        m.jet(torch.rand(4, 2), order=3)
    with pytest.raises(ValueError, match="order"):
        m.jet(torch.rand(4, 2), order=1.0)
    with pytest.raises(ValueError, match="backend='nope'"):
        fs.Siren(2, 8, 1, 1, backend="nope")
    with pytest.raises(ValueError, match="first_init='bad'"):
        fs.Siren(2, 8, 1, 1, first_init="bad")
    with pytest.raises(ValueError, match="hidden_init='bad'"):
        fs.Siren(2, 8, 1, 1, hidden_init="bad")
    with pytest.raises(ValueError, match="model='mlp'"):
        fs.build_model("mlp", in_features=2, out_features=1, hidden_features=8, hidden_layers=1)
    with pytest.raises(ValueError, match=r"omega_0 must be a finite number > 0 and <= 1e\+06, got 0"):
        fs.SineLayer(2, 3, omega_0=0)
    with pytest.raises(TypeError, match="weight has dtype torch.float32 but x has torch.float64"):
        functional.sine_linear(torch.rand(3, 2, dtype=torch.float64), torch.rand(4, 2), None, 30.0)
    with pytest.raises(ValueError, match="shape"):
        m.render((4,))
    with pytest.raises(ValueError, match="hidden_features must be"):
        fs.Siren(2, 0, 1, 1)
    with pytest.raises(ValueError, match="out_features must be"):
        fs.Siren(2, 8, 1, 0)
    with pytest.raises(ValueError, match="hidden_layers must be"):
        fs.ReluMLP(2, 8, -1, 1)
    for model in (fs.Siren(2, 8, 1, 1, backend="reference"), fs.Siren(2, 8, 1, 1, backend="torch"),
                  fs.ReluMLP(2, 8, 1, 1)):  # the backends' own messages were torch's matmul error
        for call in (model, lambda x, model=model: model.jet(x, order=1)):
            with pytest.raises(TypeError, match=r"x has dtype torch.float64 but the model's parameters are "
                                                r"torch.float32"):
                call(torch.rand(4, 2, dtype=torch.float64))
    omega = torch.tensor(30.0, requires_grad=True)  # would silently get no gradient
    with pytest.raises(TypeError, match=r"omega_0 is a tensor that requires grad"):
        functional.sine_linear(torch.rand(3, 2), torch.rand(4, 2), None, omega)
    with pytest.raises(TypeError, match=r"omegas\[0\] is a tensor that requires grad"):
        functional.siren_forward(torch.rand(3, 2), [torch.rand(4, 2)], [None], [omega])
    with pytest.raises(ValueError, match="num_frequencies must be"):
        fs.PosEncMLP(2, 8, 1, 1, num_frequencies=-1)
    with pytest.raises(ValueError, match="sidelength must be an integer >= 1, got 0"):
        fs.PosEncMLP(2, 8, 1, 1, sidelength=0)
    with pytest.raises(ValueError, match="hidden_features must be an integer >= 1, got 8.0"):
        fs.Siren(2, 8.0, 1, 1)
    with pytest.raises(ValueError, match="hidden_layers must be an integer >= 0, got True"):
        fs.Siren(2, 8, True, 1)
    # found by an audit: taken as truthy, a raw AttributeError, an empty output, a TypeError of len()
    with pytest.raises(TypeError, match="outermost_linear must be True or False, got 'no'"):
        fs.Siren(2, 8, 1, 1, outermost_linear="no")
    assert fs.Siren(2, 8, 1, 1, outermost_linear=0).outermost_linear is False
    with pytest.raises(TypeError, match="model must be a Module, got str"):
        fs.count_params("x")
    with pytest.raises(TypeError, match="siren must be a Siren, got str"):
        fs.matched_baseline("x", "relu")
    with pytest.raises(TypeError, match="model must be a Siren, got str"):
        fs.convert_official_state_dict({}, "x")
    with pytest.raises(ValueError, match="backend='torch' applies to the SIREN only"):
        fs.build_model("relu", in_features=2, out_features=1, hidden_features=8, hidden_layers=1, backend="torch")
    with pytest.raises(ValueError, match=r"weights\[0\] must have shape \(out, 2\) with out >= 1, got \(0, 2\)"):
        functional.siren_forward(torch.rand(4, 2), [torch.rand(0, 2)], [None], [30.0])
    with pytest.raises(TypeError, match="weights must be a sequence"):
        functional.siren_forward(torch.rand(4, 2), (w for w in [torch.rand(3, 2)]), [None], [30.0])
    layers = torch.nn.ParameterList([torch.nn.Parameter(torch.rand(3, 2))])  # a sequence that is no list
    assert functional.siren_forward(torch.rand(4, 2), layers, [None], [30.0]).shape == (4, 3)


def test_sizes_from_numpy_are_plain_ints():
    """Sizes read from a NumPy array or a config (np.int64) are accepted and kept as Python ints,
    as nn.Linear does (they were refused)."""
    n = np.arange(10)
    for model, layers in ((fs.Siren(n[2], n[8], n[1], n[1], backend="reference"), 1),
                          (fs.ReluMLP(n[2], n[8], n[0], n[1]), 0),
                          (fs.PosEncMLP(n[2], n[8], n[1], n[1], sidelength=n[8], num_frequencies=n[3]), 1)):
        sizes = (model.in_features, model.hidden_features, model.hidden_layers, model.out_features)
        assert sizes == (2, 8, layers, 1) and all(type(v) is int for v in sizes)
        assert model(torch.rand(5, 2)).shape == (5, 1)
    assert fs.PosEncMLP(2, 8, 1, 1, num_frequencies=n[3]).num_frequencies == 3
    assert type(fs.SineLayer(n[3], n[4]).in_features) is int


@pytest.mark.parametrize("kwargs,error,message", [
    # no hidden layer
    (dict(hidden_omega_0=0), ValueError, r"hidden_omega_0 must be a finite number > 0 and <= 1e\+06, got 0"),
    (dict(first_omega_0=math.inf), ValueError, r"first_omega_0 must be a finite number > 0 and <= 1e\+06, got inf"),
    (dict(hidden_omega_0=-1.0), ValueError, r"hidden_omega_0 must be a finite number > 0 and <= 1e\+06, got -1.0"),
    (dict(first_omega_0="30"), TypeError, r"first_omega_0 must be a finite number > 0 and <= 1e\+06, got str '30'"),
    (dict(hidden_omega_0=torch.tensor([1.0, 2.0])), ValueError, r"hidden_omega_0 must be one number, got a tensor"),
    # finite but so large the outputs are rounding noise (1e308 gave nan outputs)
    (dict(first_omega_0=1e308), ValueError, r"first_omega_0 must be .* <= 1e\+06, got 1e\+308: omega_0 multiplies"),
    (dict(hidden_omega_0=1e6 * (1 + 1e-9)), ValueError, r"hidden_omega_0 must be .* <= 1e\+06, got 1000000.001"),
    (dict(init_scale=0), ValueError, "init_scale must be a finite number > 0, got 0"),
    (dict(init_scale=math.nan), ValueError, "init_scale must be a finite number > 0, got nan"),
    (dict(init_scale="a"), TypeError, "init_scale must be a finite number > 0, got str 'a'"),
], ids=lambda v: str(v)[:40])
def test_siren_frequencies_and_init_scale_are_checked(kwargs, error, message):
    """omega_0s and init_scale are finite numbers > 0, checked by Siren itself (the final
    linear layer's init reads hidden_omega_0 even without hidden layers); one-element tensors
    are numbers."""
    with pytest.raises(error, match=message):
        fs.Siren(2, 8, 0, 1, **kwargs)
    assert fs.Siren(2, 8, 0, 1, first_omega_0=torch.tensor(20.0)).first_omega_0 == 20.0
    assert fs.Siren(2, 8, 0, 1, first_omega_0=functional.MAX_OMEGA).first_omega_0 == 1e6  # the bound is allowed
    with pytest.raises(ValueError, match=r"omegas\[1\] must be a finite number > 0 and <= 1e\+06 \(or None"):
        functional.siren_forward(torch.rand(3, 2), [torch.rand(4, 2), torch.rand(1, 4)], [None, None], [30.0, 1e7])


def test_functional_arguments_and_devices_are_named():
    """Non-tensor weights and biases, a missing or infinite omega_0, a model and x on different
    devices, a CUDA device where torch has none, a device string torch does not know."""
    x, w = torch.rand(3, 2), torch.rand(4, 2)
    with pytest.raises(TypeError, match="weight must be a torch.Tensor, got list"):
        functional.sine_linear(x, [[1.0, 2.0]], None)
    with pytest.raises(TypeError, match=r"^bias must be a torch.Tensor, got list"):
        functional.sine_linear(x, w, [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=r"^bias must have shape \(4,\), got \(3,\)"):
        functional.sine_linear(x, w, torch.rand(3))
    with pytest.raises(TypeError, match=r"^weight has dtype torch.float32 but x has torch.float64"):
        functional.sine_linear(x.double(), w, None)
    with pytest.raises(TypeError, match=r"omega_0 must be a finite number > 0 and <= 1e\+06, got NoneType"):
        functional.sine_linear(x, w, None, None)
    with pytest.raises(ValueError,
                       match=r"omegas\[0\] must be a finite number > 0 and <= 1e\+06 \(or None for a linear layer\)"):
        functional.siren_jet(x, [w], [None], [math.inf], order=1)
    with pytest.raises(ValueError, match=r"x is on meta but the model's parameters are on cpu; move one"):
        fs.Siren(2, 8, 1, 1).jet(torch.rand(3, 2, device="meta"))
    with pytest.raises(ValueError, match="device='bogus' is not a torch device"):
        fs.available_backends("bogus")
    if not torch.cuda.is_available():
        assert fs.available_backends("cuda") == []
        assert "no CUDA device is available here" in backends.unavailable_reason("triton", "cuda")
        with pytest.raises(RuntimeError, match="no CUDA device is available here"):
            backends.resolve("torch", "cuda")


def test_posenc_zero_frequencies_and_int_render_shape():
    """An explicit num_frequencies=0 is the plain coordinates (it became the default before);
    ``render(n)`` is the 1-D grid ``render((n,))``."""
    pe = fs.PosEncMLP(2, 8, 1, 1, num_frequencies=0)
    assert pe.num_frequencies == 0 and pe.encoded_features() == 2
    x = torch.rand(5, 2)
    assert torch.equal(pe.encode(x), x)
    assert fs.PosEncMLP(2, 8, 1, 1, sidelength=64).num_frequencies == 4
    m = fs.Siren(1, 8, 1, 1, backend="torch")
    assert torch.equal(m.render(7), m.render((7,)))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast mixes dtypes on purpose
        fs.Siren(2, 8, 1, 1, backend="reference")(torch.rand(4, 2, dtype=torch.bfloat16))


@pytest.mark.parametrize("backend", _fused_on_cpu())
def test_autocast_half_input_runs_in_the_parameters_dtype(backend):
    """Under autocast a bf16 input to a float32 model runs on a fused backend in float32 (the
    parameters' dtype), for forward and jets, where it used to fail deep inside the backend;
    the parameter gradients of a loss backpropagated inside the autocast are those without it."""
    torch.manual_seed(0)
    m = fs.Siren(2, 8, 1, 2, backend=backend)
    x = torch.rand(4, 2).bfloat16()

    def grads(j):
        m.zero_grad()
        ((j.laplacian ** 2).mean() + (j.value ** 2).mean()).backward()
        return [p.grad.clone() for p in m.parameters()]

    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, j = m(x), m.jet(x, 2)
        under = grads(j)
    assert y.dtype == torch.float32 and j.laplacian.dtype == torch.float32
    plain = m.jet(x.float(), 2)
    assert torch.allclose(y, m(x.float()), atol=1e-6) and torch.allclose(j.grad, plain.grad, atol=1e-5)
    for a, b in zip(under, grads(plain)):
        assert a.dtype == torch.float32 and torch.allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype,autocast", [(torch.float16, torch.bfloat16), (torch.bfloat16, torch.float16)])
def test_a_half_model_under_the_other_half_autocast_runs_in_its_dtype(dtype, autocast):
    """A float16 model under a CPU bfloat16 autocast (and the other way round): jets of order 2
    and 1 (the reverse-mode gradient), their backward inside the autocast and a render run in the
    parameters' dtype and give what they give without autocast. They failed in torch.cat ("Unexpected
    floating ScalarType in at::autocast::prioritize")."""
    torch.manual_seed(0)
    m = fs.Siren(2, 16, 1, 1, backend="torch").to(dtype)
    x = torch.rand(9, 2).to(dtype)

    def run():
        m.zero_grad()
        j2, j1 = m.jet(x, 2), m.jet(x, 1)
        ((j2.laplacian.float() ** 2).mean() + (j1.grad.float() ** 2).mean()).backward()
        return j2.value, j2.laplacian, j1.grad, m.render((5, 4), order=2).laplacian, m.layers[0].weight.grad

    plain = run()
    with torch.autocast("cpu", dtype=autocast):
        under = run()
    for a, b in zip(under, plain):
        assert a.dtype == dtype and torch.equal(a, b)


@pytest.mark.parametrize("backend", ["reference", *_fused_on_cpu()])
def test_forward_mode_ad_runs_through_the_reference_ops(backend, monkeypatch):
    """Dual tensors of torch.autograd.forward_ad (and forward-mode jacobians) work on every
    backend: the fused Functions have no jvp, so the calls run the reference's operations."""
    import torch.autograd.forward_ad as fwAD

    monkeypatch.setattr(backends, "_TRANSFORM_WARNED", set())
    torch.manual_seed(0)
    m = fs.Siren(2, 16, 1, 1, backend=backend).double()
    x = torch.rand(5, 2, dtype=torch.float64)
    expect = m.jet(x, 1).grad[:, 0] @ torch.tensor([1.0, -2.0], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fwAD.dual_level():
            y = m(fwAD.make_dual(x, torch.tensor([1.0, -2.0], dtype=torch.float64).expand(5, 2)))
            tangent = fwAD.unpack_dual(y).tangent
        jac = torch.autograd.functional.jacobian(m, x, strategy="forward-mode", vectorize=True)
    assert torch.allclose(tangent[:, 0], expect, atol=1e-12)
    assert torch.allclose(jac[torch.arange(5), 0, torch.arange(5)], m.jet(x, 1).grad[:, 0], atol=1e-12)
    assert not backends.forward_ad_active()


@pytest.mark.parametrize("backend", _fused_on_cpu())
def test_order_one_grad_is_contiguous_on_the_reverse_path(backend):
    """out < in takes the reverse-mode gradient: its grad field is a contiguous (N, out, in) tensor."""
    j = fs.Siren(3, 16, 1, 2, backend=backend).jet(torch.rand(5, 3), 1)
    assert j.grad.shape == (5, 2, 3) and j.grad.is_contiguous()
    j.grad.view(5, -1)


def test_small_api_messages():
    from fastsiren.functional import sine_linear

    with pytest.raises(ValueError, match=r"weight must have shape \(out_features, in_features\)"):
        sine_linear(torch.randn(2, 3), torch.randn(3), None)
    with pytest.raises(ValueError, match="init='xavierr'"):
        fs.SineLayer(3, 5, init="xavierr")
    m = fs.Siren(3, 8, 1, 1, backend="torch")
    x = torch.rand(4, 3)
    assert torch.equal(m.jet(x, 2, laplacian_weights=np.array([0.0, 1.0, 1.0])).laplacian,
                       m.jet(x, 2, laplacian_weights=[0.0, 1.0, 1.0]).laplacian)


def test_grid_chunk_equals_rows_of_the_grid():
    from fastsiren.data import grid
    from fastsiren.render import grid_chunk

    for shape in [(5, 7), (3, 4, 5), (9,)]:
        g = grid(shape)
        assert torch.equal(grid_chunk(shape, 0, g.shape[0]), g)
        assert torch.equal(grid_chunk(shape, 3, 8), g[3:8])


@pytest.mark.parametrize("order,out", [(0, 1), (1, 1), (1, 3), (2, 1)])
@pytest.mark.parametrize("backend", _fused_on_cpu())
def test_no_reference_cycles(order, out, backend):
    """A training step's graph is freed by reference counting, not left to the gc (a cycle would
    keep a GPU's memory until the next collection)."""
    import gc
    import weakref

    model = fs.Siren(2, 16, 1, out, backend=backend)
    x = torch.rand(32, 2)
    gc.collect()
    gc.disable()
    try:
        w, b = model._params()
        jet = functional.siren_jet(x, w, b, model.omegas(), order, backend=backend)  # no reshape views
        field = jet.value if order == 0 else (jet.grad if order == 1 else jet.laplacian)
        refs = [weakref.ref(t) for t in jet if t is not None]
        field.square().mean().backward()
        del jet, field
        assert all(r() is None for r in refs)
    finally:
        gc.enable()


# ----------------------------------------------------------------------------- 3xTF32 products


def test_tf32_split_is_exact_with_a_tf32_head():
    gen = torch.Generator().manual_seed(0)
    t = torch.randn(4096, generator=gen) * torch.logspace(-30, 30, 4096)
    t[:3] = torch.tensor([0.0, 1.0, -0.75])  # already TF32: rest is 0
    head, rest = jet_module.tf32_split(t)
    assert head.dtype == rest.dtype == torch.float32
    assert (head.view(torch.int32) & 0x1FFF).eq(0).all(), "head keeps more than TF32's 10 mantissa bits"
    assert torch.equal(head.double() + rest.double(), t.double()), "head + rest is not t"
    assert (rest.abs() <= t.abs() * 2.0 ** -11).all()
    assert torch.equal(rest[:3], torch.zeros(3))
    # nearest, not truncation: a value just below a TF32 step goes up
    step = torch.tensor([1.0 + 2.0 ** -10 - 2.0 ** -20])
    assert jet_module.tf32_split(step)[0].item() == 1.0 + 2.0 ** -10
    with pytest.raises(TypeError, match="float32"):
        jet_module.tf32_split(t.double())


def _float32_and_reference(width: int, out: int, seed: int):
    """A float32 torch-backend SIREN (2 -> width x 2 hidden -> out) and a float64 reference copy."""
    torch.manual_seed(seed)
    model = fs.Siren(2, width, 2, out, backend="torch")
    ref = fs.Siren(2, width, 2, out, backend="reference").double()
    ref.load_state_dict(model.state_dict())
    return model, ref


def _jet_and_cotangent_grads(m, x, order: int):
    """A model's jet of ``x`` and the parameter gradients of the jet against fixed random
    cotangents (the same in float32 and float64)."""
    jet = m.jet(x, order)
    gen = torch.Generator().manual_seed(1)
    loss = sum((t * torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t.dtype)).sum()
               for t in jet if t is not None)
    return jet, torch.autograd.grad(loss, list(m.parameters()))


_NO_ONEDNN = backends.onednn_unavailable_reason()
needs_onednn = pytest.mark.skipif(_NO_ONEDNN is not None, reason=f"oneDNN products cannot run here: {_NO_ONEDNN}")


@pytest.fixture
def onednn_calls(monkeypatch):
    """The shapes of the products that went through oneDNN's inner product (every size: the
    tests' products are smaller than jet.CPU_ONEDNN_MIN_MACS)."""
    calls = []
    monkeypatch.setattr(jet_module, "CPU_ONEDNN_MIN_MACS", 0)
    real = torch.ops.mkldnn._linear_pointwise
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", lambda *a: calls.append(tuple(a[0].shape)) or real(*a))
    yield calls
    backends.set_cpu_gemm(None)


def test_cpu_gemm_setting(monkeypatch):
    monkeypatch.delenv(backends.CPU_GEMM_ENV, raising=False)
    assert backends.cpu_gemm() == ("blas" if _NO_ONEDNN else "auto")
    backends.set_cpu_gemm("blas")
    assert backends.cpu_gemm() == "blas"
    backends.set_cpu_gemm(None)
    monkeypatch.setenv(backends.CPU_GEMM_ENV, "blas")
    assert backends.cpu_gemm() == "blas"
    monkeypatch.setenv(backends.CPU_GEMM_ENV, "mkl")
    with pytest.raises(ValueError, match=backends.CPU_GEMM_ENV):
        backends.cpu_gemm()
    with pytest.raises(ValueError, match="mode='openblas'"):
        backends.set_cpu_gemm("openblas")
    # where oneDNN cannot run: "auto" falls back to BLAS, "onednn" asked for by name says why
    monkeypatch.setattr(backends, "onednn_unavailable_reason", lambda: "no oneDNN in this build")
    monkeypatch.setenv(backends.CPU_GEMM_ENV, "auto")
    assert backends.cpu_gemm() == "blas"
    monkeypatch.setenv(backends.CPU_GEMM_ENV, "onednn")
    with pytest.raises(RuntimeError, match="FASTSIREN_CPU_GEMM=onednn: no oneDNN in this build"):
        backends.cpu_gemm()
    with pytest.raises(RuntimeError, match="set_cpu_gemm.'onednn'.: no oneDNN in this build"):
        backends.set_cpu_gemm("onednn")


@needs_onednn
def test_onednn_products_match_float64(onednn_calls):
    """Every operand layout fastsiren's products use, through oneDNN: within float32's error of
    the float64 product and of BLAS's; what oneDNN cannot take (float64, an empty dimension, a
    product autograd records) goes to torch.mm."""
    backends.set_cpu_gemm("onednn")
    gen = torch.Generator().manual_seed(4)
    a, w, bias = torch.randn(301, 40, generator=gen), torch.randn(24, 40, generator=gen), torch.randn(24)
    x, z = torch.randn(301, 2, generator=gen), torch.randn(301, 24, generator=gen)
    r = torch.randn(3, 301, 24, generator=gen)
    wide = torch.randn(301, jet_module.CPU_ONEDNN_WGRAD_WIDTH + 3, generator=gen)
    cases = {  # name: (result, exact)
        "addmm, W^T view": (jet_module.mm(a, w.t(), bias), a.double() @ w.double().t() + bias.double()),
        "rows_mm 3-D": (jet_module.rows_mm(r, w[:, :24]), r.double() @ w[:, :24].double()),
        "rows_mm W": (jet_module.rows_mm(z, w), z.double() @ w.double()),
        "weight gradient": (jet_module.outer_sum(wide, wide[:, 3:]), wide.double().t() @ wide[:, 3:].double()),
        # narrower than CPU_ONEDNN_WGRAD_WIDTH: BLAS (oneDNN copies its transposed operand)
        "narrow weight gradient": (jet_module.outer_sum(z, x), z.double().t() @ x.double()),
        "hidden weight gradient": (jet_module.outer_sum(z, a), z.double().t() @ a.double()),
        "first layer": (jet_module.rows_mm(x, w[:, :2].t(), bias), x.double() @ w[:, :2].double().t() + bias.double()),
        "into out": (jet_module.mm(a, w.t(), out=torch.empty(301, 24)), a.double() @ w.double().t()),
    }
    assert len(onednn_calls) == len(cases) - 2
    for name, (got, exact) in cases.items():
        assert got.dtype == torch.float32 and got.shape == exact.shape, name
        err = ((got.double() - exact).abs().max() / exact.abs().max()).item()
        assert err < 1e-6, (name, err)
    onednn_calls.clear()
    backends.set_cpu_gemm("blas")
    blas = jet_module.mm(a, w.t(), bias)
    assert not onednn_calls
    assert torch.allclose(cases["addmm, W^T view"][0], blas, rtol=1e-5, atol=1e-5)
    backends.set_cpu_gemm("onednn")
    jet_module.mm(a.double(), w.double().t())
    assert jet_module.mm(torch.ones(5, 0), torch.ones(0, 3)).abs().sum() == 0  # K = 0: oneDNN rejects it
    leaf = a.clone().requires_grad_()
    jet_module.mm(leaf, w.t()).sum().backward()  # recorded by autograd: torch.mm, with its gradient
    assert torch.allclose(leaf.grad, w.sum(0).expand(301, 40), atol=1e-5)
    assert not onednn_calls


@needs_onednn
def test_small_products_stay_on_blas(onednn_calls, monkeypatch):
    """A product under jet.CPU_ONEDNN_MIN_MACS multiply-adds takes BLAS (a oneDNN call's fixed
    cost outweighs its speed there), one at the bound takes oneDNN."""
    monkeypatch.setattr(jet_module, "CPU_ONEDNN_MIN_MACS", 30 * 8 * 5)
    backends.set_cpu_gemm("onednn")
    a, w = torch.randn(30, 8), torch.randn(5, 8)
    jet_module.mm(a[:29], w.t())
    assert not onednn_calls
    got = jet_module.mm(a, w.t())
    assert onednn_calls == [(30, 8)]
    assert torch.allclose(got, a @ w.t(), atol=1e-5)


@pytest.fixture
def fresh_calibration(monkeypatch):
    """An empty table of "auto"'s measurements, and the calls to the timing function."""
    monkeypatch.setattr(jet_module, "_CPU_GEMM_CHOICE", {})
    timed = []
    real = jet_module._time_libraries
    monkeypatch.setattr(jet_module, "_time_libraries", lambda *key: timed.append(key) or real(*key))
    backends.set_cpu_gemm("auto")
    yield timed
    backends.set_cpu_gemm(None)


@needs_onednn
def test_auto_cpu_gemm_times_each_kind_once(fresh_calibration, monkeypatch):
    """set_cpu_gemm("auto") times a kind of product both ways once per process (widths exact;
    the points at a power of two, capped at CPU_GEMM_CAL_POINTS; layouts, bias, blocked BLAS,
    a given output and threads in the kind), records the medians, the faster library and the
    time it took, and reuses the choice; results equal float64's. Under the default dtype
    float64 the timing still runs float32."""
    timed = fresh_calibration
    monkeypatch.setattr(jet_module, "CPU_GEMM_CAL_POINTS", 64)
    monkeypatch.setattr(jet_module, "CPU_ONEDNN_MIN_MACS", 0)
    threads = torch.get_num_threads()
    gen = torch.Generator().manual_seed(3)
    a, w, bias = torch.randn(1000, 40, generator=gen), torch.randn(24, 40, generator=gen), torch.randn(24)
    exact = a.double() @ w.double().t() + bias.double()
    for rows in (1000, 700):  # 1000 and 700 points are both timed at the cap, 64: one kind
        got = jet_module.mm(a[:rows], w.t(), bias)
        assert ((got.double() - exact[:rows]).abs().max() / exact.abs().max()).item() < 1e-6
    assert timed == [(64, 40, 24, False, False, True, True, False, False, threads)]
    (entry,) = jet_module.cpu_gemm_calibration()
    assert entry["shape"] == (64, 40, 24) and entry["b_transposed"] and entry["bias"] and not entry["blocked"]
    assert 0 < entry["onednn_s"] + entry["blas_s"] < entry["seconds"]
    assert entry["choice"] == ("onednn" if entry["onednn_s"] < entry["blas_s"] else "blas")
    jet_module.rows_mm(a, w.t(), bias)  # blocked BLAS: another kind
    jet_module.outer_sum(a, a[:, :24])  # a weight gradient: (40, 1000) x (1000, 24), its 1000 points inner
    jet_module.mm(a[:50], w.t(), bias)  # 50 points: timed at 32
    jet_module.mm(a[:50], w.t(), bias, out=torch.empty(50, 24))  # into an output: its own kind
    with torch.device("cpu"):
        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            jet_module.mm(a[:50], w.t())  # no bias: another kind, timed in float32 all the same
        finally:
            torch.set_default_dtype(default)
    # (n, k, m, points_inner, blocked, into)
    assert [k[:4] + k[7:9] for k in timed[1:]] == [
        (64, 40, 24, False, True, False), (40, 64, 24, True, False, False), (32, 40, 24, False, False, False),
        (32, 40, 24, False, False, True), (32, 40, 24, False, False, False)]
    assert timed[-1][6] is False  # the no-bias kind
    try:
        torch.set_num_threads(1 if threads > 1 else 2)
        jet_module.mm(a, w.t(), bias)
    finally:
        torch.set_num_threads(threads)
    assert len(timed) == 7 and timed[-1][-1] != threads  # another thread count: timed again


@needs_onednn
def test_auto_cpu_gemm_times_nothing_where_it_may_not(fresh_calibration, monkeypatch):
    """Inside a torch.func transform, a dispatch mode (FlopCounterMode) and deterministic mode,
    "auto" times nothing and follows the fixed rules; under torch.jit.trace, which cannot
    record oneDNN's op, every mode takes BLAS."""
    from torch.utils.flop_counter import FlopCounterMode

    timed = fresh_calibration
    monkeypatch.setattr(jet_module, "CPU_ONEDNN_MIN_MACS", 0)
    gen = torch.Generator().manual_seed(3)
    a, w = torch.randn(200, 40, generator=gen), torch.randn(24, 40, generator=gen)
    exact = a.double() @ w.double().t()

    def close(got):
        return ((got.double() - exact).abs().max() / exact.abs().max()).item() < 1e-6

    assert close(torch.func.vmap(lambda r: jet_module.mm(r, w.t()), randomness="error")(a.view(2, 100, 40))
                 .view(200, 24))
    with FlopCounterMode(display=False):
        assert close(jet_module.mm(a, w.t()))
    for mode in ("auto", "onednn"):
        backends.set_cpu_gemm(mode)
        assert close(torch.jit.trace(lambda x: jet_module.mm(x, w.t()), (a,), check_trace=False)(a))
    backends.set_cpu_gemm("auto")
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        assert close(jet_module.mm(a, w.t()))
    finally:
        torch.use_deterministic_algorithms(deterministic)
    assert timed == []
    jet_module.mm(a, w.t())
    assert len(timed) == 1  # and plainly, it does


@needs_onednn
@pytest.mark.parametrize("choice", ["onednn", "blas"])
def test_auto_cpu_gemm_takes_the_measured_library(fresh_calibration, onednn_calls, monkeypatch, choice):
    """"auto" runs each product on the library its measurement chose, the narrow weight
    gradients mode "onednn" keeps on BLAS included; under mode "onednn" the rules hold."""
    timed = fresh_calibration
    monkeypatch.setattr(jet_module, "_time_libraries", lambda *key: timed.append(key) or dict(choice=choice))
    monkeypatch.setattr(jet_module, "CPU_GEMM_ROWS", 128)  # rows_mm's BLAS side: 3 blocks
    gen = torch.Generator().manual_seed(3)
    z, x = torch.randn(301, 24, generator=gen), torch.randn(301, 40, generator=gen)
    onednn_calls.clear()
    jet_module.outer_sum(z, x)  # narrower than CPU_ONEDNN_WGRAD_WIDTH
    got = jet_module.rows_mm(z, x[:24])
    assert len(onednn_calls) == (2 if choice == "onednn" else 0)
    assert len(timed) == 2  # rows_mm's blocks are not asked again
    assert torch.allclose(got, z @ x[:24], atol=1e-5)
    onednn_calls.clear()
    backends.set_cpu_gemm("onednn")
    jet_module.outer_sum(z, x)
    jet_module.rows_mm(z, x[:24])
    assert onednn_calls == [(301, 24)]


@needs_onednn
@pytest.mark.parametrize("order,out", [(0, 1), (1, 1), (1, 3), (2, 1)])
def test_torch_backend_float32_with_each_cpu_gemm(order, out, onednn_calls):
    """The torch backend in float32 with oneDNN's products and with BLAS's: jets and every
    parameter gradient within float32's error of the float64 reference (order 1 with one
    output: the reverse-mode gradient; with three: forward-mode streams), and oneDNN really ran."""
    model, ref = _float32_and_reference(40, out, seed=5)
    x = torch.rand(301, 2) * 2 - 1

    def jet_and_grads(m, x):
        jet, grads = _jet_and_cotangent_grads(m, x, order)
        return [*jet, *grads]

    want = jet_and_grads(ref, x.double())
    for mode in ("onednn", "blas"):
        backends.set_cpu_gemm(mode)
        onednn_calls.clear()
        got = jet_and_grads(model, x)
        assert bool(onednn_calls) == (mode == "onednn")
        for a, b in zip(got, want):
            if b is not None:
                err = ((a.double() - b).abs().max() / b.abs().max().clamp_min(1e-3)).item()
                assert err < 2e-5, (mode, err)


@pytest.fixture
def tf32x3_on_cpu(monkeypatch):
    """set_gemm_precision("tf32x3") also for CPU float32 products (on a real run it applies on a
    GPU only)."""
    monkeypatch.setattr(jet_module, "_tf32x3", lambda a: a.dtype == torch.float32
                        and backends.gemm_precision() == "tf32x3")
    backends.set_gemm_precision("tf32x3")
    yield
    backends.set_gemm_precision(None)


def test_gemm_precision_setting(monkeypatch):
    assert backends.gemm_precision() == "ieee"
    monkeypatch.setenv(backends.GEMM_PRECISION_ENV, "tf32x3")
    assert backends.gemm_precision() == "tf32x3"
    backends.set_gemm_precision("ieee")
    assert backends.gemm_precision() == "ieee"
    backends.set_gemm_precision(None)
    monkeypatch.setenv(backends.GEMM_PRECISION_ENV, "tf32")
    with pytest.raises(ValueError, match=backends.GEMM_PRECISION_ENV):
        backends.gemm_precision()
    with pytest.raises(ValueError, match="mode='bf16x3'"):
        backends.set_gemm_precision("bf16x3")
    # CPU float32 products never split: the setting is about cuBLAS
    monkeypatch.setenv(backends.GEMM_PRECISION_ENV, "tf32x3")
    assert not jet_module._tf32x3(torch.ones(2, 2))


def _matmul_precisions() -> tuple:
    try:
        legacy = torch.get_float32_matmul_precision()
    except RuntimeError:  # the legacy getter refuses a state made through the new API alone
        legacy = "mixed"
    return legacy, torch.backends.cuda.matmul.fp32_precision, torch.backends.mkldnn.matmul.fp32_precision


def _cublas_tf32():
    try:
        return torch._C._get_cublas_allow_tf32()  # what allowTF32CuBLAS() readers see
    except RuntimeError:
        return "mixed"


@pytest.mark.parametrize("start", ["fresh", "allow_tf32=False", "allow_tf32=True", "high", "medium",
                                   "new-api-ieee", "new-api-tf32", "mkldnn-bf16"])
def test_tf32_products_sets_both_apis_and_restores_them(start):
    """Inside the block cuBLAS's legacy reader (allowTF32CuBLAS: TunableOp, inductor) agrees with
    the new fp32_precision instead of raising torch's mixed-API error, and a reader that worked
    before still works; every setting comes back after."""
    m, mk = torch.backends.cuda.matmul, torch.backends.mkldnn.matmul
    fresh = (torch.get_float32_matmul_precision(), m.fp32_precision, mk.fp32_precision)
    try:
        if start == "allow_tf32=False":
            m.allow_tf32 = False
        elif start == "allow_tf32=True":
            m.allow_tf32 = True
        elif start in ("high", "medium"):
            torch.set_float32_matmul_precision(start)
        elif start.startswith("new-api"):
            m.fp32_precision = start.rsplit("-", 1)[1]
        elif start == "mkldnn-bf16":
            mk.fp32_precision = "bf16"
        before, cublas_before = _matmul_precisions(), _cublas_tf32()
        with jet_module.tf32_products():
            assert m.fp32_precision == "tf32"
            assert mk.fp32_precision == before[2]  # the CPU's oneDNN products as they were
            # a state the caller mixed stays mixed; otherwise the legacy reader sees TF32 on
            assert _cublas_tf32() == ("mixed" if cublas_before == "mixed" else True)
            if before[0] != "mixed":  # the general legacy getter still reads
                torch.get_float32_matmul_precision()
        assert _matmul_precisions() == before and _cublas_tf32() == cublas_before
        with jet_module.tf32_products(enabled=False):
            assert _matmul_precisions() == before
    finally:
        torch.set_float32_matmul_precision(fresh[0])
        m.fp32_precision, mk.fp32_precision = fresh[1], fresh[2]
    assert _matmul_precisions() == fresh  # nothing left behind


def test_tf32x3_product_recovers_float32_accuracy(tf32x3_on_cpu):
    """Under emulated TF32 tensor cores, mm in tf32x3 makes three products and lands within
    float32's error of the exact product; one TF32 product (ieee while TF32 is on, what
    PyTorch's allow_tf32 gives) is off by about 2^-11, so the check can fail."""
    from conftest import EmulatedTF32

    gen = torch.Generator().manual_seed(1)
    a, b, bias = torch.randn(301, 256, generator=gen), torch.randn(256, 67, generator=gen), torch.randn(67)
    exact = a.double() @ b.double() + bias.double()
    scale = (a.double().abs() @ b.double().abs()).max()
    errs = {}
    for mode in ("tf32x3", "ieee"):
        backends.set_gemm_precision(mode)
        with EmulatedTF32() as emu:
            got = jet_module.mm(a, b, bias)
            wide = jet_module.rows_mm(a.view(1, 301, 256), b, bias)
            outer = jet_module.outer_sum(a, a[:, :40])
        errs[mode] = ((got.double() - exact).abs().max() / scale).item()
        assert torch.equal(got, wide[0])
        assert emu.products == (9 if mode == "tf32x3" else 3)
        assert ((outer.double() - a.double().t() @ a[:, :40].double()).abs().max()
                / (a.double().abs().t() @ a[:, :40].double().abs()).max()).item() < (
                    1e-6 if mode == "tf32x3" else 1e-2)
    assert errs["tf32x3"] < 2e-7, errs
    assert errs["ieee"] > 2e-5, errs


def test_split_operands_are_split_once(tf32x3_on_cpu, monkeypatch):
    """jet.operand splits a tensor once; mm, rows_mm and outer_sum take the Split as it is (and
    split a plain tensor themselves), with the same result either way."""
    calls = []
    real = jet_module.tf32_split
    monkeypatch.setattr(jet_module, "tf32_split", lambda t: calls.append(t.shape) or real(t))
    gen = torch.Generator().manual_seed(2)
    a, b = torch.randn(50, 24, generator=gen), torch.randn(24, 7, generator=gen)
    a_op = jet_module.operand(a, jet_module.tf32_split)
    assert isinstance(a_op, jet_module.Split) and calls == [a.shape]
    calls.clear()
    once = jet_module.mm(a_op, b)
    assert calls == [b.shape]  # only b is split here
    calls.clear()
    assert torch.equal(jet_module.mm(a, b), once) and len(calls) == 2
    assert torch.equal(jet_module.rows_mm(a_op.reshape(2, 25, 24), b).reshape(50, 7), once)
    assert torch.equal(jet_module.outer_sum(a_op, a[:, :5]), jet_module.outer_sum(a, a[:, :5]))
    backends.set_gemm_precision("ieee")
    assert jet_module.operand(a) is a  # nothing to split: the tensor itself


@pytest.mark.parametrize("order,out", [(0, 1), (1, 1), (2, 1)])
def test_torch_backend_tf32x3_training_matches_float32(order, out, tf32x3_on_cpu):
    """The torch backend's jets and parameter gradients with every product as emulated 3xTF32
    (order 1 with one output: the reverse-mode gradient) stay at float32's error against the
    float64 reference; the same under one TF32 product per GEMM is an order of magnitude worse."""
    from conftest import EmulatedTF32

    model, ref = _float32_and_reference(64, out, seed=3)
    x = torch.rand(300, 2) * 2 - 1
    jet_and_grads = functools.partial(_jet_and_cotangent_grads, order=order)

    want, want_grads = jet_and_grads(ref, x.double())
    errs = {}
    for mode in ("tf32x3", "ieee"):
        backends.set_gemm_precision(mode)
        with EmulatedTF32() as emu:
            got, grads = jet_and_grads(model, x)
        assert emu.products > 0
        err = 0.0
        for a, b in zip([*got, *grads], [*want, *want_grads]):
            if b is not None:
                err = max(err, ((a.double() - b).abs().max() / b.abs().max().clamp_min(1e-3)).item())
        errs[mode] = err
    assert errs["tf32x3"] < 2e-5, errs
    assert errs["ieee"] > 100 * errs["tf32x3"], errs


@pytest.mark.gpu
@pytest.mark.parametrize("order,out", [(0, 1), (1, 1), (2, 1)])
def test_gpu_torch_backend_tf32x3(order, out):
    """On a GPU: the torch backend's step with 3xTF32 products stays within 4x of its float32
    (ieee) error against float64, while plain TF32 products (ieee inside tf32_products, i.e.
    PyTorch's TF32 setting, which the 3xTF32 products rely on) are at least 10x worse: the
    setting really reaches cuBLAS on this torch."""
    torch.manual_seed(3)
    model = fs.Siren(2, 256, 3, out, backend="torch").cuda()
    ref = fs.Siren(2, 256, 3, out, backend="reference").cuda().double()
    ref.load_state_dict(model.state_dict())
    x = torch.rand(4099, 2, device="cuda") * 2 - 1

    def jet_and_grads(m, x):
        jet = m.jet(x, order)
        gen = torch.Generator().manual_seed(1)
        loss = sum((t * torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t)).sum()
                   for t in jet if t is not None)
        return [t for t in jet if t is not None] + list(torch.autograd.grad(loss, list(m.parameters())))

    want = jet_and_grads(ref, x.double())
    errs = {}
    for name, mode, tf32 in (("ieee", "ieee", False), ("tf32x3", "tf32x3", False), ("tf32", "ieee", True)):
        backends.set_gemm_precision(mode)
        try:
            with jet_module.tf32_products() if tf32 else contextlib.nullcontext():
                got = jet_and_grads(model, x)
        finally:
            backends.set_gemm_precision(None)
        errs[name] = max(((a.double() - b).abs().max() / b.abs().max().clamp_min(1e-3)).item()
                         for a, b in zip(got, want))
    assert errs["tf32x3"] <= 4 * errs["ieee"] + 1e-6, errs
    assert errs["tf32"] >= 10 * errs["tf32x3"], errs


@pytest.mark.parametrize("order", [0, 1, 2])
def test_torch_inference_keeps_no_activations_across_blocks(monkeypatch, order):
    """Without a backward (no_grad render / forward) a point block's activations are freed as
    the next layer consumes them and no block keeps them: the peak is a few blocks' worth, not
    the whole batch's activations (every block's layers were kept to the end of the pass)."""
    from fastsiren.benchmarks.harness import LiveTensorBytes

    monkeypatch.setattr(jet_module, "CPU_BLOCK_ROWS", 256)
    monkeypatch.setattr(jet_module, "CPU_BLOCK_ELEMS", 0)
    torch.manual_seed(0)
    n, width = 32768, 64  # 128 blocks: a block's working set (the reverse gradient's cache) is small
    m = fs.Siren(2, width, 2, 1, backend="torch").double()
    x = torch.rand(n, 2, dtype=torch.float64) * 2 - 1
    w, b = m._params()
    with torch.no_grad(), LiveTensorBytes() as live:
        got = jet_module.mlp_infer(x, w, b, m.omegas(), order)
    activation = n * width * 8  # one layer's activations over the batch
    assert live.peak < activation / 2, (live.peak, activation)
    want = reference.mlp_infer(x, w, b, m.omegas(), order)
    for g, r in zip(got, want):
        if r is not None:
            torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("backend", _fused_on_cpu())
def test_torch_func_transforms_on_every_backend(backend, monkeypatch):
    """torch.func transforms (grad, jacrev, vmap, hessian, ensembles) run on every backend: inside
    them the reference's operations serve the call, with one warning, and the results equal the
    same quantities computed outside any transform."""
    monkeypatch.setattr(backends, "_TRANSFORM_WARNED", set())
    tf = torch.func
    torch.manual_seed(5)
    model = fs.Siren(2, 19, 1, 2, backend=backend).double()
    params = {k: v.detach() for k, v in model.named_parameters()}
    x = torch.rand(11, 2, dtype=torch.float64) * 2 - 1
    target = torch.randn(11, 2, dtype=torch.float64)
    gen = torch.Generator().manual_seed(2)
    gl = torch.randn(11, 2, generator=gen, dtype=torch.float64)

    def fit_loss(p):
        return (tf.functional_call(model, p, (x,)) - target).pow(2).sum()

    def lap_loss(p):  # a Poisson-style loss on the Laplacian jet, by the functional API
        w = [p[f"layers.{i}.weight"] for i in range(3)]
        b = [p[f"layers.{i}.bias"] for i in range(3)]
        return (functional.siren_jet(x, w, b, model.omegas(), 2, backend=backend).laplacian * gl).sum()

    with pytest.warns(UserWarning, match=f"backend '{backend}' has no torch.func rules") as rec:
        g_fit = tf.grad(fit_loss)(params)
        g_lap = tf.grad(lap_loss)(params)
        jac = tf.jacrev(lambda z: tf.functional_call(model, params, (z,)))(x)  # (N, out, N, D)
        hess = tf.vmap(tf.hessian(lambda z: model(z)))(x)  # (N, out, D, D)
        jet_v = tf.vmap(lambda z: model.jet(z.unsqueeze(0), 2).laplacian.squeeze(0))(x)
    assert sum("torch.func rules" in str(w.message) for w in rec) == 1  # once per backend

    # the same quantities without transforms, on the backend itself
    ps = [p for _, p in model.named_parameters()]
    want_fit = torch.autograd.grad(fit_loss(dict(model.named_parameters())), ps)
    jet = model.jet(x, 2)
    want_lap = torch.autograd.grad((jet.laplacian * gl).sum(), ps, allow_unused=True)  # final bias: None
    want_lap = [torch.zeros_like(p) if g is None else g for p, g in zip(ps, want_lap)]
    for (name, _), a, b, c, d in zip(model.named_parameters(), want_fit, want_lap, g_fit.values(), g_lap.values()):
        torch.testing.assert_close(c, a, msg=name)
        torch.testing.assert_close(d, b, msg=name)
    rows = torch.arange(11)
    torch.testing.assert_close(jac[rows, :, rows], jet.grad)
    torch.testing.assert_close(hess.diagonal(dim1=-2, dim2=-1).sum(-1), jet.laplacian)
    torch.testing.assert_close(jet_v, jet.laplacian)

    # an ensemble: vmap over stacked parameters of three models
    models = [fs.Siren(2, 19, 1, 2, backend=backend).double() for _ in range(3)]
    stacked, _ = tf.stack_module_state(models)
    ens = tf.vmap(lambda p: tf.functional_call(model, p, (x,)))(stacked)
    for i, m in enumerate(models):
        torch.testing.assert_close(ens[i], m(x))


@pytest.mark.filterwarnings("ignore:fastsiren. backend")
@pytest.mark.parametrize("backend", ["reference", *_fused_on_cpu()])
def test_forward_mode_transforms_of_a_frozen_model(backend):
    """torch.func.jvp / jacfwd of a frozen model's forward (no parameter requires grad, and a
    dual tensor does not either) keep the tangent: inside a transform the forward is not the
    detached inference path."""
    torch.manual_seed(3)
    model = fs.Siren(2, 9, 1, 2, backend=backend).double().requires_grad_(False)
    x = torch.rand(4, 2, dtype=torch.float64) * 2 - 1
    want = torch.func.jacrev(model)(x)
    torch.testing.assert_close(torch.func.jacfwd(model)(x), want, rtol=RTOL, atol=ATOL)
    v = torch.randn(4, 2, dtype=torch.float64)
    _, tangent = torch.func.jvp(model, (x,), (v,))
    torch.testing.assert_close(tangent, torch.einsum("nomd,md->no", want, v), rtol=RTOL, atol=ATOL)


@pytest.mark.filterwarnings("ignore:fastsiren. backend")
@pytest.mark.parametrize("backend", ["reference", *_fused_on_cpu()])
def test_torch_compile_of_a_torch_func_transform(backend):
    """torch.compile(torch.func.grad(loss), fullgraph=True) equals the eager transform: dynamo
    sees the transform (the forward is the differentiable one, not the detached inference path,
    which gave a wrong gradient) and traces the reference's operations without a graph break,
    a Laplacian jet's nested derivatives included."""
    torch._dynamo.reset()
    torch.manual_seed(2)
    model = fs.Siren(2, 12, 1, 1, backend=backend).double()
    params = {k: v.detach() for k, v in model.named_parameters()}
    x = torch.rand(30, 2, dtype=torch.float64) * 2 - 1
    target = torch.randn(30, 1, dtype=torch.float64)

    def loss(p):
        return (torch.func.functional_call(model, p, (x,)) - target).pow(2).mean()

    def lap_loss(p):  # the jet inside the transform: torch.func derivatives, traced by dynamo
        w = [p[f"layers.{i}.weight"] for i in range(3)]
        b = [p[f"layers.{i}.bias"] for i in range(3)]
        return functional.siren_jet(x, w, b, model.omegas(), 2, backend=backend).laplacian.pow(2).mean()

    for fn in (loss, lap_loss):
        want = torch.func.grad(fn)(params)
        got = torch.compile(torch.func.grad(fn), backend="aot_eager", fullgraph=True)(params)
        for k in params:
            torch.testing.assert_close(got[k], want[k], msg=f"{fn.__name__} {k}")
        torch._dynamo.reset()


@pytest.mark.parametrize("backend", ["reference", *_fused_on_cpu()])
def test_torch_export_of_every_backend(backend):
    """torch.export (non-strict, its default) of a Siren on any backend records the
    network as plain linear + sin ops with a symbolic point count, whose program equals the eager
    model at another N; under grad mode too (parameters that require grad). Strict export works
    where torch.compile traces the backend; so does torch.jit.trace, whose check ran a
    different graph under no_grad. Jets refuse export with a clear error instead of torch's
    internal one."""
    torch.manual_seed(3)
    model = fs.Siren(2, 16, 1, 2, backend=backend)
    x, x2 = torch.rand(10, 2), torch.rand(37, 2)
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            ep = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("n")},))
        ops = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
        assert {"aten.linear.default", "aten.sin.default"} <= ops, ops
        assert all(op.startswith("aten.") for op in ops), ops  # no custom op, no kernel launch
        torch.testing.assert_close(ep.module()(x2), model(x2))
    if backend in ("reference", "torch"):  # strict export is dynamo: the compile path, where the
        # triton / cuda Functions' launches do not trace (exporting() cannot tell strict export
        # from torch.compile on torch 2.11)
        strict = torch.export.export(model, (x,), strict=True)
        torch.testing.assert_close(strict.module()(x), model(x))
    with pytest.raises(NotImplementedError, match="jets .* cannot be exported"):
        torch.export.export(_JetOut(model), (x,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.13
        traced = torch.jit.trace(model, (x,))  # its check re-runs under no_grad: the same graph
    torch.testing.assert_close(traced(x2), model(x2))


class _Render(nn.Module):
    """A model's render (values, or the Laplacian image) as a module's forward, for functional_call."""

    def __init__(self, model, order):
        super().__init__()
        self.model, self.order = model, order

    def forward(self):
        out = self.model.render((3, 4), chunk=5, order=self.order)
        return out if self.order == 0 else out.laplacian


@pytest.mark.filterwarnings("ignore:fastsiren. backend")
@pytest.mark.parametrize("order", [0, 2])
@pytest.mark.parametrize("backend", ["reference", *_fused_on_cpu()])
def test_render_inside_torch_func(backend, order):
    """render under grad / jvp / vmap over stacked parameters gives the parameters' derivatives
    and each member's image (the no-grad inference path gave zero derivatives there)."""
    from fastsiren.data import grid

    tf = torch.func
    torch.manual_seed(4)
    model = fs.Siren(2, 9, 1, 1, backend=backend).double()
    wrap = _Render(model, order)
    params = {k: v.detach() for k, v in wrap.named_parameters()}
    x = grid((3, 4), dtype=torch.float64).reshape(-1, 2)
    field = model(x) if order == 0 else model.jet(x, 2).laplacian
    want = torch.autograd.grad(field.sum(), [p for _, p in wrap.named_parameters()], allow_unused=True)
    want = {k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(params.items(), want)}

    got = tf.grad(lambda p: tf.functional_call(wrap, p, ()).sum())(params)
    for k in params:
        torch.testing.assert_close(got[k], want[k], msg=k)
    tangents = {k: torch.randn_like(v) for k, v in params.items()}
    _, tangent = tf.jvp(lambda p: tf.functional_call(wrap, p, ()).sum(), (params,), (tangents,))
    torch.testing.assert_close(tangent, sum((want[k] * tangents[k]).sum() for k in params))

    members = [fs.Siren(2, 9, 1, 1, backend=backend).double() for _ in range(2)]
    stacked, _ = tf.stack_module_state([_Render(m, order) for m in members])
    images = tf.vmap(lambda p: tf.functional_call(wrap, p, ()))(stacked)
    for img, m in zip(images, members):
        torch.testing.assert_close(img, _Render(m, order)())


def test_transform_warning_once_across_threads(monkeypatch):
    """The once-per-backend torch.func warning is said once when threads race to it (the test
    and the add of the warned set are one step)."""
    import threading
    import time

    class SlowSet(set):  # widens the window between a thread's test and its add
        def __contains__(self, item):
            found = super().__contains__(item)
            time.sleep(0.05)
            return found

    said = []
    monkeypatch.setattr(backends, "_TRANSFORM_WARNED", SlowSet())
    monkeypatch.setattr(backends.warnings, "warn", lambda *a, **k: said.append(a))
    start, done = threading.Barrier(4), []

    def worker():
        start.wait()
        torch.func.vmap(lambda z: backends.get("torch", "cpu").mlp_forward(
            z[None], [torch.ones(1, 2, dtype=z.dtype)], [None], (None,)))(torch.rand(3, 2))
        done.append(True)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == 4 and len(said) == 1, (done, said)


def test_backend_load_waits_for_an_import_in_progress(tmp_path, monkeypatch):
    """A backend module another thread is still importing is not handed out half initialized
    (sys.modules holds it from the import's start): load waits for the import, as
    importlib does."""
    import sys
    import threading
    import time

    (tmp_path / "fs_slow_backend.py").write_text("import time\ntime.sleep(0.5)\nmlp_forward = 'ready'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fs_slow_backend", raising=False)
    spec = backends.BackendSpec("slow", "fs_slow_backend", lambda device: None, "test")
    first = threading.Thread(target=spec.load)
    first.start()
    deadline = time.monotonic() + 5
    while "fs_slow_backend" not in sys.modules and time.monotonic() < deadline:
        time.sleep(0.005)
    try:
        assert getattr(spec.load(), "mlp_forward", None) == "ready"
    finally:
        first.join()
        sys.modules.pop("fs_slow_backend", None)


class _JetLoss(nn.Module):
    """A loss on a model's jet as a module's forward, for ``torch.func.functional_call``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z):
        jet = self.model.jet(z, 2)
        return jet.laplacian.pow(2).sum() + jet.grad.pow(2).sum()


class _JetOut(_JetLoss):
    """The jet's three fields as the forward (what torch.export must refuse)."""

    def forward(self, x):
        jet = self.model.jet(x, 2)
        return jet.value, jet.grad, jet.laplacian


@pytest.mark.parametrize("kind", ["siren", "posenc"])
def test_reference_jet_inside_torch_func(kind):
    """The reference's jets (autograd.grad outside transforms) switch to torch.func inside one, for
    Siren and the baselines, at N = 0 too."""
    tf = torch.func
    model = (fs.Siren(3, 13, 1, 2, backend="reference") if kind == "siren"
             else fs.PosEncMLP(3, 13, 1, 2, num_frequencies=2)).double()
    wrapped = _JetLoss(model)
    params = {k: v.detach() for k, v in wrapped.named_parameters()}
    x = torch.rand(7, 3, dtype=torch.float64)
    got = tf.grad(lambda p: tf.functional_call(wrapped, p, (x,)))(params)
    ps = dict(wrapped.named_parameters())
    want = torch.autograd.grad(wrapped(x), list(ps.values()), allow_unused=True)
    for k, w in zip(got, want):
        torch.testing.assert_close(got[k], torch.zeros_like(got[k]) if w is None else w, msg=k)
    empty = tf.vmap(lambda z: model.jet(z, 2).laplacian, in_dims=1, out_dims=1)(torch.rand(0, 2, 3).double())
    assert empty.shape == (0, 2, 2)


@pytest.mark.parametrize("backend", _fused_on_cpu())
def test_batched_adjoints_vmap_the_backward(backend):
    """``torch.autograd.grad(..., is_grads_batched=True)`` and
    ``torch.autograd.functional.jacobian(..., vectorize=True)`` vmap a Function's backward: the
    hand-written backwards (``out=`` products, in-place epilogues) cannot run batched, so they
    hand over to autograd over the reference's operations; results equal the reference's."""
    x = torch.rand(5, 2, dtype=torch.float64) * 2 - 1
    for order, out in ((0, 1), (1, 1), (1, 3), (2, 2)):  # (1, 1): the reverse-mode gradient
        got, want = [], []
        for be, acc in ((backend, got), ("reference", want)):
            torch.manual_seed(0)
            m = fs.Siren(2, 6, 1, out, backend=be).double()
            xg = x.clone().requires_grad_()
            t = m.jet(xg, order)[min(order, 1) if order < 2 else 2]
            eye = torch.eye(t.numel(), dtype=t.dtype).reshape(-1, *t.shape)
            acc += torch.autograd.grad(t, [xg, *m.parameters()], eye, is_grads_batched=True, allow_unused=True)
        for g, r in zip(got, want):
            if r is not None:
                torch.testing.assert_close(g, r, rtol=RTOL, atol=ATOL)
    torch.manual_seed(0)
    m = fs.Siren(2, 6, 1, 3, backend=backend).double()
    jac = torch.autograd.functional.jacobian(m, x, vectorize=True)
    _set_backend(m, "reference")
    torch.testing.assert_close(jac, torch.autograd.functional.jacobian(m, x), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("autocast", [False, True])
@pytest.mark.parametrize("order", [0, 2])
def test_torch_compile_fullgraph_loss(order, autocast, monkeypatch, threads):
    """``torch.compile(fullgraph=True)`` traces a loss through the torch backend's module forward
    or jet (the backend lookup must not import: importlib is a graph break); the loss and the
    parameter gradients of its backward (the hand-written one, traced) equal the reference's.
    With 2 threads, 4 layers and 10 point blocks, where eager mode runs the blocks side by side
    (nothing of that may be traced). Under a CPU autocast too, which the backend's Functions
    turn off in plain ``with`` statements that dynamo traces (an ExitStack was a graph break)."""
    torch._dynamo.reset()
    monkeypatch.setattr(jet_module, "CPU_BLOCK_ROWS", 4)
    monkeypatch.setattr(jet_module, "CPU_BLOCK_ELEMS", 0)
    threads(2)
    x = torch.rand(40, 2, dtype=torch.float64) * 2 - 1
    results = []
    for be in ("torch", "reference"):
        torch.manual_seed(0)
        model = fs.Siren(2, 12, 2, 1, backend=be).double()

        def loss(x, model=model):
            if order == 0:
                return model(x).pow(2).mean()
            jet = model.jet(x, order)
            return jet.value.pow(2).mean() + jet.grad.pow(2).mean() + 1e-4 * jet.laplacian.pow(2).mean()

        fn = torch.compile(loss, backend="aot_eager", fullgraph=True) if be == "torch" else loss
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast and be == "torch"):
            val = fn(x)
        results.append((val, torch.autograd.grad(val, list(model.parameters()))))
    (got, got_g), (want, want_g) = results
    torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL)
    for g, w in zip(got_g, want_g):
        torch.testing.assert_close(g, w, rtol=RTOL, atol=ATOL)


def test_layer_hooks_run_in_the_module_forward():
    """With hooks on its layers (forward hooks; the pre-hooks by which torch.nn.utils.prune and
    the old weight_norm recompute a weight before each call), Siren.forward calls the layers one
    by one, so the hooks run and training follows the pruned weight; jets, which skip them,
    warn."""
    from torch.nn.utils import prune

    from fastsiren.data import grid

    x = torch.rand(9, 2, dtype=torch.float64) * 2 - 1
    final = []
    for be in ("torch", "reference"):
        torch.manual_seed(0)
        model = fs.Siren(2, 8, 1, 1, backend=be).double()
        prune.l1_unstructured(model.layers[1], "weight", amount=0.5)
        seen = []
        model.layers[0].register_forward_hook(lambda mod, inp, out, seen=seen: seen.append(out.shape))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(2):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
        assert seen == [(9, 8)] * 2
        h = x
        with torch.no_grad():
            for layer in model.layers:  # the network through its modules, as nn.Sequential runs it
                h = layer(h)
            torch.testing.assert_close(model(x), h, rtol=RTOL, atol=ATOL)
            torch.testing.assert_close(model.render((3, 2)).reshape(6, 1), model(grid((3, 2), dtype=torch.float64)))
        final.append([p.detach() for p in model.parameters()])
        with pytest.warns(UserWarning, match="do not call the layers' forward hooks"):
            model.jet(x, 1)
    for a, b in zip(*final):
        torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("backend", _fused_on_cpu())
def test_global_module_hooks_see_every_layer(backend):
    """A global module forward hook (as per-module profilers register) sees each layer of a fused
    Siren, as it does on reference, and the output is unchanged; removed, the fused pass returns."""
    from torch.nn.modules.module import register_module_forward_hook

    torch.manual_seed(1)
    model = fs.Siren(2, 8, 1, 1, backend=backend).double()
    x = torch.rand(5, 2, dtype=torch.float64)
    want = model(x)
    seen = []
    handle = register_module_forward_hook(lambda mod, inp, out: seen.append(type(mod).__name__))
    try:
        got = model(x)
    finally:
        handle.remove()
    assert seen == ["SineLayer", "SineLayer", "Linear", "Siren"], seen
    torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL)
    assert not model._hooked_layers()


@pytest.mark.parametrize("backend", _fused_on_cpu())
@pytest.mark.parametrize("order,out", [(1, 1), (1, 3), (2, 1)], ids=["reverse-grad", "forward-grad", "laplacian"])
def test_unreached_final_bias_gets_no_gradient(backend, order, out):
    """A loss on the input derivatives alone leaves the final linear layer's bias without a
    gradient (None, as on reference), not a zero tensor an optimizer would step."""
    torch.manual_seed(4)
    model = fs.Siren(2, 17, 1, out, backend=backend).double()
    ref = fs.Siren(2, 17, 1, out, backend="reference").double()
    ref.load_state_dict(model.state_dict())
    x = torch.rand(9, 2, dtype=torch.float64)
    for m in (model, ref):
        jet = m.jet(x, order)
        (jet.grad.pow(2).sum() + (0 if order == 1 else jet.laplacian.pow(2).sum())).backward()
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        assert (p.grad is None) == (q.grad is None), name
        if q.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, msg=name)
    assert model.layers[-1].bias.grad is None and model.layers[-1].weight.grad is not None
    model.zero_grad()
    model.jet(x, order).value.sum().backward()  # the value reaches it
    assert model.layers[-1].bias.grad is not None


@pytest.mark.filterwarnings("error::UserWarning")  # no dynamo warning either (a traced functools cache)
def test_inductor_compiles_the_torch_backend_in_float32(monkeypatch, fresh_calibration):
    """torch.compile (inductor) of the torch backend's float32 jets and their backward: the oneDNN
    products (every product here: no size threshold) enter the compiled graph as the opaque
    custom op fastsiren::onednn_linear (inductor's lowering of mkldnn's op fails); values and
    gradients equal eager. In mode "auto" the compiled function times nothing (the fixed rules)."""
    if backends.onednn_unavailable_reason() is not None:
        pytest.skip(backends.onednn_unavailable_reason())
    monkeypatch.setattr(jet_module, "CPU_ONEDNN_MIN_MACS", 0)
    torch.manual_seed(6)
    model = fs.Siren(2, 24, 1, 1, backend="torch")
    w, b = model._params()
    x = torch.rand(40, 2) * 2 - 1

    def loss(x, w, b):
        j = jet_module.mlp_jet(x, w, b, model.omegas(), 2)
        return j.value.square().mean() + j.laplacian.square().mean()

    compiled = torch.compile(loss, dynamic=False)
    got = compiled(x, w, b)
    assert fresh_calibration == []
    want = loss(x, w, b)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    for a, c in zip(torch.autograd.grad(got, w), torch.autograd.grad(want, w)):
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-5)


def test_onednn_custom_op_passes_opcheck():
    if backends.onednn_unavailable_reason() is not None:
        pytest.skip(backends.onednn_unavailable_reason())
    a, w, b = torch.randn(7, 5), torch.randn(3, 5), torch.randn(3)
    for bias in (b, None):
        torch.library.opcheck(jet_module._onednn_linear, (a, w, bias), test_utils=(
            "test_schema", "test_faketensor", "test_aot_dispatch_static"))
        torch.testing.assert_close(jet_module._onednn_linear(a, w, bias), torch.nn.functional.linear(a, w, bias))


@pytest.mark.gpu
@pytest.mark.filterwarnings("ignore:fastsiren. backend")
@pytest.mark.parametrize("backend", ["triton", "cuda"])
def test_gpu_export_compiled_transform_and_render_in_transform(backend):
    """The interop paths on a GPU's fused backends: non-strict torch.export, a compiled
    torch.func.grad and a render inside torch.func.grad (each serves the reference's operations)
    equal the fused model's values and autograd's gradients."""
    reason = backends.unavailable_reason(backend, "cuda")
    if reason is not None:
        pytest.skip(reason)
    torch.manual_seed(7)
    model = fs.Siren(2, 32, 1, 1, backend=backend).cuda()
    x = torch.rand(300, 2, device="cuda") * 2 - 1
    tol = dict(rtol=2e-3, atol=2e-3)
    ep = torch.export.export(model, (x,))
    torch.testing.assert_close(ep.module()(x), model(x), **tol)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p):
        return torch.func.functional_call(model, p, (x,)).pow(2).mean()

    want = torch.autograd.grad(loss(dict(model.named_parameters())), list(model.parameters()))
    got = torch.compile(torch.func.grad(loss), backend="aot_eager", fullgraph=True)(params)
    for w, k in zip(want, params):
        torch.testing.assert_close(got[k], w, **tol)
    wrap = _Render(model, 0)
    got = torch.func.grad(lambda p: torch.func.functional_call(wrap, p, ()).sum())(
        {k: v.detach() for k, v in wrap.named_parameters()})
    from fastsiren.data import grid

    field = model(grid((3, 4), device="cuda").reshape(-1, 2)).sum()
    for w, g in zip(torch.autograd.grad(field, list(model.parameters())), got.values()):
        torch.testing.assert_close(g, w, **tol)
    torch._dynamo.reset()


def test_numpy_trig_matches_float64_and_keeps_to_its_cases(monkeypatch, threads):
    """jet.trig: float32 sines and cosines from NumPy within 2 ulp of float64 over the
    arguments a SIREN sees, NaN where float64 gives NaN, without NumPy's warnings or errors
    (even under np.seterr(all="raise") on underflowing arguments), in place with the version
    counter bumped, visible to the profiler; torch's functions below the element floor of the
    thread count, above its thread counts, for float64, tensors needing a gradient,
    non-contiguous ones, a wrong ``out`` or an inference ``out`` outside inference mode, under
    a dispatch or function mode, inside torch.func.vmap, with the setting (or its variable) off, and
    on a torch build whose tensors cannot be viewed as NumPy arrays."""
    import numpy as np
    from torch.utils.flop_counter import FlopCounterMode

    monkeypatch.setattr(backends, "_CPU_NUMPY_TRIG", backends._Switch(backends.CPU_NUMPY_TRIG_ENV))
    monkeypatch.delenv(backends.CPU_NUMPY_TRIG_ENV, raising=False)
    threads(1)
    gen = torch.Generator().manual_seed(0)
    z = torch.cat([torch.randn(10000, generator=gen) * 3, (torch.rand(10000, generator=gen) * 2 - 1) * 1e5,
                   torch.tensor([0.0, 1e-40, 1e-39, float("inf"), float("-inf"), float("nan")])])
    assert jet_module.numpy_trig(z)
    old = np.seterr(all="raise")
    try:
        for fn in ("sin", "cos"):
            want = getattr(torch, fn)(z.double())
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                got = jet_module.trig(fn, z)
            assert got.dtype == torch.float32 and torch.equal(got.isnan(), want.isnan())
            fin = ~want.isnan()
            ulp = torch.exp2(torch.floor(torch.log2(want[fin].abs().clamp_min(torch.finfo(torch.float32).tiny))) - 23)
            assert ((got.double()[fin] - want[fin]).abs() / ulp).max().item() <= 2
            inplace = z.clone()
            version = inplace._version
            assert jet_module.trig(fn, inplace, inplace) is inplace and inplace._version > version
            torch.testing.assert_close(inplace, got, rtol=0, atol=0, equal_nan=True)
    finally:
        np.seterr(**old)
    with torch.profiler.profile() as prof:
        jet_module.trig("sin", z)
    assert "numpy.sin" in {e.name for e in prof.events()}
    m = torch.randn(256, 128)
    assert jet_module.numpy_trig(m) and jet_module.numpy_trig(m, torch.empty(256, 128))
    assert not jet_module.numpy_trig(m[:, :63])  # below the 1-thread floor
    assert not jet_module.numpy_trig(z.double())
    assert not jet_module.numpy_trig(z.clone().requires_grad_())
    assert not jet_module.numpy_trig(m.t().contiguous().t())
    assert not jet_module.numpy_trig(m, torch.empty(128, 256))
    assert not jet_module.numpy_trig(m, torch.empty(256, 128, dtype=torch.float64))
    with torch.inference_mode():
        frozen = torch.empty(256, 128)
        assert jet_module.numpy_trig(m, frozen)
    assert not jet_module.numpy_trig(m, frozen)  # torch refuses to write it outside inference mode
    with FlopCounterMode(display=False):
        assert not jet_module.numpy_trig(m)
    with torch.device("cpu"):  # a TorchFunctionMode
        assert not jet_module.numpy_trig(m)
    inside = []
    torch.func.vmap(lambda t: (inside.append(jet_module.numpy_trig(t)), t.sin())[1])(m.unsqueeze(0))
    assert inside == [False]
    threads(2)
    assert not jet_module.numpy_trig(m) and jet_module.numpy_trig(torch.randn(512, 128))  # 2 threads: 65536 on
    threads(jet_module.numpy_trig_max_threads() + 1)
    assert not jet_module.numpy_trig(torch.randn(1024, 1024))
    threads(1)
    backends.set_cpu_numpy_trig(False)
    assert not jet_module.numpy_trig(m)
    torch.testing.assert_close(jet_module.trig("cos", m), torch.cos(m), rtol=0, atol=0)
    backends.set_cpu_numpy_trig(None)
    monkeypatch.setenv(backends.CPU_NUMPY_TRIG_ENV, "0")
    assert not jet_module.numpy_trig(m)
    monkeypatch.setenv(backends.CPU_NUMPY_TRIG_ENV, "1")
    assert jet_module.numpy_trig(m)
    with pytest.raises(TypeError, match="enabled must be True, False or None"):
        backends.set_cpu_numpy_trig("yes")
    monkeypatch.setattr(jet_module, "_numpy_bridge", lambda: False)  # a torch without NumPy support
    assert not jet_module.numpy_trig(m)
    torch.testing.assert_close(jet_module.trig("sin", m), torch.sin(m), rtol=0, atol=0)


def test_numpy_trig_on_block_workers(monkeypatch, threads):
    """On 2 threads with point blocks side by side, the worker threads take NumPy's sines too,
    and the reverse-mode gradient's step agrees with the same step on torch's functions."""
    monkeypatch.setattr(backends, "_CPU_NUMPY_TRIG", backends._Switch(backends.CPU_NUMPY_TRIG_ENV))
    monkeypatch.setattr(backends, "_CPU_BLOCK_THREADS", backends._Switch(backends.CPU_BLOCK_THREADS_ENV))
    monkeypatch.delenv(backends.CPU_NUMPY_TRIG_ENV, raising=False)
    monkeypatch.delenv(backends.CPU_BLOCK_THREADS_ENV, raising=False)
    monkeypatch.setattr(jet_module, "CPU_NUMPY_TRIG_MIN_ELEMS", {1: 0, 2: 0})
    monkeypatch.setattr(jet_module, "CPU_BLOCK_ROWS", 8)
    monkeypatch.setattr(jet_module, "CPU_BLOCK_ELEMS", 0)
    threads(2)
    seen = []
    real = jet_module.numpy_trig

    def spy(*args):
        seen.append((threading.current_thread().name, real(*args)))
        return seen[-1][1]

    monkeypatch.setattr(jet_module, "numpy_trig", spy)
    torch.manual_seed(0)
    model = fs.Siren(2, 24, 3, 1, backend="torch")  # 5 layers, 8 blocks of 8 points: 2 shares
    x = torch.rand(64, 2) * 2 - 1

    def step():
        grad = model.jet(x, 1).grad
        grads = torch.autograd.grad(grad.square().sum(), list(model.parameters()), allow_unused=True)
        return [grad.detach(), *(g for g in grads if g is not None)]  # the output bias is unused

    got = step()
    assert {name.startswith("fastsiren-blocks") for name, taken in seen if taken} == {True, False}
    backends.set_cpu_numpy_trig(False)
    for g, w in zip(got, step()):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5 * (w.abs().max().item() + 1e-3))


@pytest.mark.parametrize("kind", ["forward", "reverse-grad", "order-1", "order-2", "weighted"])
def test_torch_backend_float32_with_numpy_trig(kind, monkeypatch, threads):
    """The torch backend in float32 takes NumPy's sines and cosines (forward and backward of
    the plain network, the reverse-mode gradient, forward-mode jets, weighted Laplacians) and
    agrees with itself on torch's and with the float64 reference, values and every parameter
    gradient."""
    monkeypatch.setattr(backends, "_CPU_NUMPY_TRIG", backends._Switch(backends.CPU_NUMPY_TRIG_ENV))
    monkeypatch.delenv(backends.CPU_NUMPY_TRIG_ENV, raising=False)
    monkeypatch.setattr(jet_module, "CPU_NUMPY_TRIG_MIN_ELEMS", {1: 0})  # tensors of the test's small network
    threads(1)
    taken = []
    real = jet_module.numpy_trig
    monkeypatch.setattr(jet_module, "numpy_trig", lambda *a: taken.append(real(*a)) or taken[-1])
    torch.manual_seed(0)
    out = 3 if kind == "order-1" else 1
    model = fs.Siren(2, 24, 2, out, backend="torch")
    x = torch.rand(37, 2) * 2 - 1

    def run():
        if kind == "forward":
            outs = (model(x),)
        else:
            order = 1 if kind in ("reverse-grad", "order-1") else 2
            outs = tuple(t for t in model.jet(x, order, laplacian_weights=(1.0, -0.25) if kind == "weighted" else None)
                         if t is not None)
        gen = torch.Generator().manual_seed(1)
        loss = sum((t * torch.randn(t.shape, generator=gen)).sum() for t in outs)
        return [t.detach() for t in outs] + list(torch.autograd.grad(loss, list(model.parameters())))

    got = run()
    assert taken and all(taken)
    backends.set_cpu_numpy_trig(False)
    taken.clear()
    plain = run()
    assert taken and not any(taken)
    model.double()
    x = x.double()
    _set_backend(model, "reference")
    want = run()
    for g, p, w in zip(got, plain, want):
        scale = w.abs().max().item() + 1e-3
        torch.testing.assert_close(g, p, rtol=1e-4, atol=1e-5 * scale)
        torch.testing.assert_close(g.double(), w, rtol=1e-3, atol=1e-4 * scale)
