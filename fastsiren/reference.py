"""The ``reference`` backend: written the way the official SIREN code is written.

Layers are ``F.linear`` + ``torch.sin``; input derivatives come from autograd with
``create_graph=True`` exactly like the official ``diff_operators.gradient/laplace`` (inside a
``torch.func`` transform, where ``torch.autograd.grad`` cannot run, by ``torch.func``).
It is the correctness oracle for every other backend and the speed baseline of the
benchmarks ("x times faster than the official code" is measured against this file).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from fastsiren.backends import exporting, in_function_transform
from fastsiren.jet import Jet


def sine_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                omega_0: float) -> torch.Tensor:
    """``sin(omega_0 * (x @ W.T + b))`` for x (N, in) -> (N, out)."""
    return torch.sin(omega_0 * F.linear(x, weight, bias))


def mlp_forward(x: torch.Tensor, weights: Sequence[torch.Tensor],
                biases: Sequence[torch.Tensor | None],
                omegas: Sequence[float | None]) -> torch.Tensor:
    """Plain forward of a sine MLP; ``omegas[i] is None`` marks a linear layer."""
    h = x
    for w, b, om in zip(weights, biases, omegas):
        h = F.linear(h, w, b) if om is None else sine_linear(h, w, b, om)
    return h


def gradient(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """d y / d x for y (N, out), x (N, D) -> (N, out, D), keeping the graph (official style)."""
    cols = []
    for o in range(y.shape[-1]):
        (g,) = torch.autograd.grad(y[:, o].sum(), x, create_graph=True)
        cols.append(g)
    return torch.stack(cols, dim=1)


def laplacian(grad: torch.Tensor, x: torch.Tensor, weights: Sequence[float] | None = None) -> torch.Tensor:
    """Sum_k d2 y / d x_k^2 from grad (N, out, D) -> (N, out), keeping the graph; with
    ``weights``, sum_k weights[k] d2 y / d x_k^2 (a zero weight skips its dimension)."""
    outs = []
    for o in range(grad.shape[1]):
        acc = torch.zeros_like(grad[:, o, 0])
        for k in range(grad.shape[2]):
            c = 1.0 if weights is None else weights[k]
            if c == 0.0:
                continue
            (g2,) = torch.autograd.grad(grad[:, o, k].sum(), x, create_graph=True)
            acc = acc + (g2[:, k] if c == 1.0 else c * g2[:, k])
        outs.append(acc)
    return torch.stack(outs, dim=1)


def jet_of(fn, x: torch.Tensor, order: int, laplacian_weights: Sequence[float] | None = None) -> Jet:
    """Jet of any differentiable map ``fn`` (N, D) -> (N, out) by autograd (used by baselines);
    ``laplacian_weights`` (D floats or None) weight the Laplacian's terms.

    Under ``torch.no_grad()`` or ``torch.inference_mode()`` the jet is detached, as the other
    backends' are; its derivatives still need a graph, built outside inference mode (where
    autograd records nothing) and dropped. Order 0 is the plain forward: under ``no_grad`` it
    records no graph (no activations kept), as the official code's inference does."""
    if order == 0:
        return Jet(fn(x), None, None)
    if exporting():
        raise NotImplementedError(
            "jets (order > 0) cannot be exported: torch.export and torch.jit.trace record neither "
            "torch.autograd.grad nor torch.func's derivatives (torch 2.13); export the forward (the values) "
            "and take jets eagerly or under torch.compile")
    if in_function_transform():  # torch.autograd.grad cannot run inside torch.func transforms
        return _jet_by_func(fn, x, order, laplacian_weights)
    if torch.is_inference_mode_enabled() or not torch.is_grad_enabled():
        with torch.inference_mode(False):
            return _jet_of(fn, x.clone() if x.is_inference() else x, order, laplacian_weights).detach()
    return _jet_of(fn, x, order, laplacian_weights)


def _jet_of(fn, x: torch.Tensor, order: int, laplacian_weights: Sequence[float] | None) -> Jet:
    with torch.enable_grad():
        xg = x if x.requires_grad else x.detach().requires_grad_(True)
        value = fn(xg)
        grad = gradient(value, xg)
        lap = laplacian(grad, xg, laplacian_weights) if order == 2 else None
    return Jet(value, grad, lap)


def _jet_by_func(fn, x: torch.Tensor, order: int, laplacian_weights: Sequence[float] | None) -> Jet:
    """The jet by ``torch.func`` (per-point Jacobian and Hessian, vmapped over the points), which
    composes with the caller's transforms. ``fn`` must treat points independently, as every
    coordinate network does. One pass: the value rides along as the Jacobian's auxiliary
    output, and value and Jacobian along the Hessian's (no forward is recomputed)."""
    if x.shape[0] == 0:  # vmap cannot map over zero points
        value = fn(x)
        out = value.shape[-1]
        grad = value.new_zeros(0, out, x.shape[1])
        return Jet(value, grad, value.new_zeros(0, out) if order == 2 else None)

    def point(xi):
        y = fn(xi.unsqueeze(0)).squeeze(0)
        return y, y

    jac = torch.func.jacrev(point, has_aux=True)  # xi -> (d y / d xi (out, D), y)
    if order == 1:
        grad, value = torch.func.vmap(jac)(x)
        return Jet(value, grad, None)

    def point_grad(xi):
        g, y = jac(xi)
        return g, (g, y)

    # Under torch.compile reverse-over-reverse: dynamo fails on the forward-mode half of
    # hessian (jacfwd over jacrev) inside a compiled grad (an internal assert in torch 2.13);
    # eagerly forward-over-reverse, the cheaper one.
    second = torch.func.jacrev if torch.compiler.is_dynamo_compiling() else torch.func.jacfwd
    hess, (grad, value) = torch.func.vmap(second(point_grad, has_aux=True))(x)  # hess (N, out, D, D)
    diag = hess.diagonal(dim1=-2, dim2=-1)  # (N, out, D)
    if laplacian_weights is not None:
        diag = diag * diag.new_tensor(laplacian_weights)
    return Jet(value, grad, diag.sum(-1))


def mlp_jet(x, weights, biases, omegas, order: int, laplacian_weights: Sequence[float] | None = None) -> Jet:
    """Jet of a sine MLP by autograd with ``create_graph=True`` (the official way)."""
    return jet_of(lambda z: mlp_forward(z, weights, biases, omegas), x, order, laplacian_weights)


def mlp_infer(x, weights, biases, omegas, order: int, laplacian_weights: Sequence[float] | None = None) -> Jet:
    """No-grad inference: the same as :func:`mlp_jet`, detached."""
    j = mlp_jet(x, weights, biases, omegas, order, laplacian_weights)
    return j.detach()
