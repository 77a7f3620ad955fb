"""Functional API: validates at the boundary, then dispatches to a backend of the registry."""

from __future__ import annotations

import numbers
from typing import Sequence

import torch

from fastsiren import backends
from fastsiren.jet import Jet


def check_order(order) -> None:
    if not isinstance(order, numbers.Integral) or isinstance(order, bool) or order not in (0, 1, 2):
        raise ValueError(f"order must be 0, 1 or 2 (value, +gradient, +Laplacian), got {order!r}")


def _check_floating(t: torch.Tensor, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")


def check_params(x: torch.Tensor, weights: Sequence[torch.Tensor],
                 biases: Sequence[torch.Tensor | None], omegas: Sequence[float | None]) -> None:
    """Shapes, dtypes and devices of an MLP's inputs, checked once with clear messages."""
    _check_floating(x, "x")
    if x.dim() != 2:
        raise ValueError(f"x must have shape (N, in_features), got {tuple(x.shape)}")
    if not (len(weights) == len(biases) == len(omegas)) or not weights:
        raise ValueError("weights, biases and omegas must be non-empty and of equal length, got "
                         f"{len(weights)}, {len(biases)}, {len(omegas)}")
    fan = x.shape[1]
    for i, (w, b, om) in enumerate(zip(weights, biases, omegas)):
        _check_floating(w, f"weights[{i}]")
        if w.dim() != 2 or w.shape[1] != fan:
            raise ValueError(f"weights[{i}] must have shape (out, {fan}), got {tuple(w.shape)}")
        if b is not None and tuple(b.shape) != (w.shape[0],):
            raise ValueError(f"biases[{i}] must have shape ({w.shape[0]},), got {tuple(b.shape)}")
        for t, name in ((w, f"weights[{i}]"), (b, f"biases[{i}]")):
            if t is None:
                continue
            if t.dtype != x.dtype:
                raise TypeError(f"{name} has dtype {t.dtype} but x has {x.dtype}; use one dtype")
            if t.device != x.device:
                raise ValueError(f"{name} is on {t.device} but x is on {x.device}; use one device")
        if isinstance(om, torch.Tensor) and om.requires_grad:
            raise TypeError(f"omegas[{i}] is a tensor that requires grad, but omega_0 is a fixed frequency here "
                            "(no gradient would reach it); pass a number")
        if om is not None and not om > 0:
            raise ValueError(f"omegas[{i}] must be > 0 (or None for a linear layer), got {om}")
        fan = w.shape[0]


def sine_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                omega_0: float = 30.0, backend: str | None = "auto") -> torch.Tensor:
    """Fused ``sin(omega_0 * (x @ W.T + b))``: x (..., in), weight (out, in), bias (out,) ->
    (..., out). Differentiable twice (double backward) on every backend."""
    _check_floating(x, "x")
    if x.dim() < 1 or weight.dim() != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x must have shape (..., {weight.shape[-1]}) to match weight "
                         f"{tuple(weight.shape)}, got {tuple(x.shape)}")
    flat = x.reshape(-1, x.shape[-1])
    check_params(flat, [weight], [bias], [omega_0])
    y = backends.get(backend, x.device).sine_linear(flat.contiguous(), weight, bias, float(omega_0))
    return y.reshape(*x.shape[:-1], weight.shape[0])


def siren_forward(x: torch.Tensor, weights: Sequence[torch.Tensor],
                  biases: Sequence[torch.Tensor | None], omegas: Sequence[float | None],
                  backend: str | None = "auto") -> torch.Tensor:
    """Forward of a sine MLP given its parameters; x (N, in) -> (N, out)."""
    check_params(x, weights, biases, omegas)
    return backends.get(backend, x.device).mlp_forward(x.contiguous(), list(weights), list(biases),
                                                        tuple(omegas))


def siren_jet(x: torch.Tensor, weights: Sequence[torch.Tensor],
              biases: Sequence[torch.Tensor | None], omegas: Sequence[float | None],
              order: int = 2, backend: str | None = "auto") -> Jet:
    """Jet (value (N, out), grad (N, out, D), Laplacian (N, out)) of a sine MLP at x (N, D).

    ``omegas[i]`` is layer i's frequency or None for a linear layer. Every field is
    differentiable w.r.t. the parameters (and x).
    """
    check_order(order)
    check_params(x, weights, biases, omegas)
    return backends.get(backend, x.device).mlp_jet(x.contiguous(), list(weights), list(biases),
                                                    tuple(omegas), order)
