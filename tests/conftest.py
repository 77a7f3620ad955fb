"""Test configuration: the Triton interpreter on machines without CUDA, seeded RNGs,
GPU tests skipped (with the reason) where no GPU is present."""

import os

# Must happen before anything imports triton: without a GPU the Triton kernels run under
# the interpreter (tiny shapes only).
try:
    import torch as _torch

    _has_cuda = _torch.cuda.is_available()
except Exception:  # pragma: no cover
    _has_cuda = False
if not _has_cuda:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA GPU (GPU tier: run `pytest -m "gpu or kernels"` on a GPU machine)')
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def backend_params(names) -> list:
    """Backends as pytest parameters; one that cannot run on the CPU here is a skip with its
    reason, not a case left out of the collection. The cuda backend runs on CPU tensors in its
    emulation (marker ``cuda_emulated``: the test runs with FASTSIREN_CUDA_EMULATE=1, as the
    emulated tier of tests/test_cuda_kernels.py does) wherever a host C++ compiler can build it."""
    from fastsiren import backends, cuda_ext

    params = []
    for b in names:
        why = backends.unavailable_reason(b, "cpu")
        if why is None:
            params.append(b)
        elif b == "cuda" and cuda_ext.host_compiler() is not None:
            params.append(pytest.param(b, marks=pytest.mark.cuda_emulated))
        else:
            params.append(pytest.param(b, marks=pytest.mark.skip(reason=why)))
    return params


@pytest.fixture(autouse=True)
def _cuda_emulated(request, monkeypatch):
    """FASTSIREN_CUDA_EMULATE=1 for a test marked ``cuda_emulated`` (asan where the caller set it)."""
    if request.node.get_closest_marker("cuda_emulated") is not None:
        from fastsiren import cuda_ext

        monkeypatch.setenv(cuda_ext.EMULATE_ENV, cuda_ext.emulation_mode() or "1")
    yield


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def interrupt_on_call(monkeypatch):
    """``interrupt_on_call(module, name, call)``: make ``module.name`` raise KeyboardInterrupt
    on its ``call``-th call (1-based; 0: never) and return the list of calls made, to count
    them (what a task keeps when Ctrl-C stops it there)."""

    def patch(module, name: str, call: int) -> list:
        real, calls = getattr(module, name), []

        def wrapped(*args, **kwargs):
            calls.append(1)
            if len(calls) == call:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapped)
        return calls

    return patch


class EmulatedTF32:
    """Within the block, ``torch.mm``, ``torch.addmm`` and ``Tensor.addmm_`` on float32 act as
    TF32 tensor cores do: both factors rounded to the nearest TF32 value, the products exact
    (float64), the result float32; ``products`` counts them. Patched on the torch module (not a
    TorchFunctionMode, which autograd's backward does not see), so the backward's products are
    emulated too. Lets the CPU tier check what a 3xTF32 product (fastsiren.jet.mm,
    backends.set_gemm_precision) recovers and what one TF32 product loses."""

    def __init__(self):
        self.products = 0
        self._saved = {}

    @staticmethod
    def _tf32(t):
        from fastsiren.jet import tf32_split

        return tf32_split(t)[0].double()

    def _product(self, real, accumulate: bool, in_place: bool):
        def product(*args, out=None, **kwargs):
            if args[-1].dtype != torch.float32 or kwargs:
                return real(*args, out=out, **kwargs) if out is not None else real(*args, **kwargs)
            self.products += 1
            prod = self._tf32(args[-2]) @ self._tf32(args[-1])
            res = ((args[0].double() + prod) if accumulate else prod).float()
            if in_place:
                return args[0].copy_(res)
            return res if out is None else out.copy_(res)

        return product

    def __enter__(self):
        from fastsiren import backends

        backends.set_cpu_gemm("blas")  # the products it emulates are torch.mm's (cuBLAS on a GPU)
        self._saved = {(torch, "mm"): torch.mm, (torch, "addmm"): torch.addmm,
                       (torch.Tensor, "addmm_"): torch.Tensor.addmm_}
        torch.mm = self._product(torch.mm, False, False)
        torch.addmm = self._product(torch.addmm, True, False)
        torch.Tensor.addmm_ = self._product(torch.Tensor.addmm_, True, True)
        return self

    def __exit__(self, *exc):
        from fastsiren import backends

        for (owner, name), real in self._saved.items():
            setattr(owner, name, real)
        backends.set_cpu_gemm(None)
        return False
