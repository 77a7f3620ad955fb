"""The ``triton`` backend of the registry (:mod:`fastsiren.backends`).

``sine_linear``, ``mlp_forward`` and ``mlp_jet`` run :class:`jet_layer.MLPJetFunction`
(per-layer fused kernels with the hand-written backward; a single sine layer is a one-layer
network of order 0), except order-1 jets with fewer outputs than input dimensions, which take
the reverse-mode gradient with the fused elementwise kernels of :mod:`grad_ops` (fewer GEMMs;
:func:`fastsiren.backends.set_reverse_grad`). Their gradients are differentiable again (``create_graph=True``,
gradgradcheck) through :func:`fastsiren.jet.double_backward_fallback`, which recomputes by
autograd over the reference ops. ``mlp_infer`` (``Siren.render`` and the no-grad forward)
runs the fully fused kernel of :mod:`render` where the network allows it.

Inputs are 2-D and validated upstream (:mod:`fastsiren.functional`); the launchers check
devices, dtypes and contiguity again, so a direct call gets the same clear errors. The
precision is set in :mod:`config` (``set_precision``/``precision``).
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import torch

from fastsiren.jet import Jet, reverse_grad_function, use_reverse_grad

from .grad_ops import TritonGradOps
from .jet_layer import MLPJetFunction
from .render import mlp_infer as _fused_infer

# Order-1 jets with fewer outputs than input dimensions (the Poisson gradient loss): reverse
# mode, cuBLAS GEMMs and the fused elementwise kernels of grad_ops.
TritonGradFunction = reverse_grad_function(TritonGradOps, "TritonGradFunction")


def _on_device(x: torch.Tensor):
    """The CUDA device of ``x`` made current for the launches: Triton launches on the current
    device (a model on cuda:1 while cuda:0 is current would read cuda:1's memory from cuda:0).
    Nothing to do when it already is current or on the CPU. While dynamo traces, nothing either:
    the choice would be made at trace time, and ``torch.cuda.device`` in a traced region has not
    run on a GPU here, so a compiled model on another device than the current one should make
    its device current itself (``torch.cuda.set_device``). The backward needs nothing: autograd
    runs a CUDA backward with its device current."""
    if not x.is_cuda or torch.compiler.is_compiling() or x.device.index == torch.cuda.current_device():
        return contextlib.nullcontext()
    return torch.cuda.device(x.device)


def mlp_jet(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor | None],
            omegas: Sequence[float | None], order: int, laplacian_weights: Sequence[float] | None = None) -> Jet:
    """Jet (value (N, out), grad (N, out, D), Laplacian (N, out)) of a sine MLP at x (N, D);
    every field is differentiable w.r.t. x and the parameters. ``laplacian_weights`` (D floats,
    order 2): the Laplacian field is ``sum_k c_k d2 f / d x_k^2``, in the same kernels."""
    save = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, *weights, *biases))
    # weights come with order 2 only, so never with the reverse-mode gradient (order 1)
    fn = TritonGradFunction if use_reverse_grad(order, weights[-1].shape[0], x.shape[1]) else MLPJetFunction
    lap_arg = () if laplacian_weights is None else (tuple(laplacian_weights),)
    with _on_device(x):
        value, grad, lap = fn.apply(x, order, tuple(omegas), len(weights), save, *weights, *biases, *lap_arg)
    return Jet(value, grad, lap)


def mlp_forward(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor | None],
                omegas: Sequence[float | None]) -> torch.Tensor:
    """Plain forward x (N, in) -> (N, out); differentiable twice."""
    return mlp_jet(x, weights, biases, omegas, 0).value


def sine_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                omega_0: float) -> torch.Tensor:
    """``sin(omega_0 (x W^T + b))`` for x (N, in), weight (out, in) -> (N, out), fused; the
    backward fuses the cosine adjoint into the prologues of its input and weight GEMMs."""
    return mlp_forward(x, [weight], [bias], [omega_0])


def mlp_infer(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor | None],
              omegas: Sequence[float | None], order: int, laplacian_weights: Sequence[float] | None = None) -> Jet:
    """No-grad jet for rendering: one fused launch where possible (see :mod:`render`), with the
    Laplacian weighted by ``laplacian_weights`` where given."""
    with _on_device(x):
        return _fused_infer(x, weights, biases, omegas, order, laplacian_weights)
