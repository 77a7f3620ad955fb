"""Functional API: validates at the boundary, then dispatches to a backend of the registry."""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np
import torch

from fastsiren import backends
from fastsiren.jet import Jet


def check_order(order) -> None:
    """A ValueError naming ``order`` unless it is the int 0 (value), 1 (+ gradient) or 2
    (+ Laplacian); returns None."""
    if not isinstance(order, numbers.Integral) or isinstance(order, bool) or order not in (0, 1, 2):
        raise ValueError(f"order must be 0, 1 or 2 (value, +gradient, +Laplacian), got {order!r}")


def check_laplacian_weights(weights, order: int, dim: int) -> tuple[float, ...] | None:
    """A jet's ``laplacian_weights`` as D floats, or None for the plain Laplacian (also when
    every weight is 1). The jet's ``laplacian`` field is then ``sum_k c_k d2 f / d x_k^2``: the
    weights pick dimensions (``(0, 1, 1)``: the spatial Laplacian of f(t, x, y)) or combine
    them with signs (``(1, -v**2, -v**2)``: the wave operator ``f_tt - v^2 (f_xx + f_yy)``)."""
    if weights is None:
        return None
    if order != 2:
        raise ValueError(f"laplacian_weights weight the Laplacian, which needs order=2, got order={order}")
    if isinstance(weights, np.ndarray):
        weights = torch.from_numpy(weights)
    if isinstance(weights, torch.Tensor):
        if weights.requires_grad:
            raise TypeError("laplacian_weights is a tensor that requires grad, but the weights are constants "
                            "here (no gradient would reach them); pass numbers or a detached tensor")
        if weights.dim() != 1:
            raise ValueError(f"laplacian_weights must be 1-D (one weight per input dimension), "
                             f"got shape {tuple(weights.shape)}")
        weights = weights.tolist()
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise TypeError(f"laplacian_weights must be a sequence of {dim} numbers (one per input dimension), "
                        f"got {type(weights).__name__}")
    if len(weights) != dim:
        raise ValueError(f"laplacian_weights must have one weight per input dimension ({dim}), "
                         f"got {len(weights)}")
    out = []
    for k, c in enumerate(weights):
        if not isinstance(c, numbers.Real) or isinstance(c, bool) or not math.isfinite(c):
            raise ValueError(f"laplacian_weights[{k}] must be a finite number, got {c!r}")
        out.append(float(c))
    return None if all(c == 1.0 for c in out) else tuple(out)


def check_positive(value, name: str, what: str = "a finite number > 0") -> float:
    """``value`` (a real number, or a one-element tensor that does not require grad) as a
    float, if finite and > 0; else a TypeError / ValueError naming ``name``."""
    if isinstance(value, torch.Tensor):
        if value.requires_grad:
            raise TypeError(f"{name} is a tensor that requires grad, but it is a fixed constant here "
                            "(no gradient would reach it); pass a number")
        if value.numel() != 1:
            raise ValueError(f"{name} must be one number, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(value)


# The largest omega_0 accepted. omega_0 multiplies every pre-activation: above it float32's
# rounding of an order-1 first-layer pre-activation (spacing 2^-24 of it, times omega_0) alone
# moves the sine's argument by more than 0.06 rad, so the network's outputs are rounding noise;
# near 3.4e38 omega_0 itself overflows float32 (outputs nan) and its init underflows to zero.
# The paper uses 30; the ablation sweeps 1 to 300.
MAX_OMEGA = 1e6


def check_omega(value, name: str, what: str = f"a finite number > 0 and <= {MAX_OMEGA:g}") -> float:
    """An omega_0 as a float: :func:`check_positive`, and at most :data:`MAX_OMEGA`."""
    omega = check_positive(value, name, what)
    if omega > MAX_OMEGA:
        raise ValueError(f"{name} must be {what}, got {value!r}: omega_0 multiplies every pre-activation, and "
                         f"above {MAX_OMEGA:g} float32 rounding of an order-1 pre-activation alone moves the "
                         "sine's argument by more than 0.06 rad (the outputs are noise; near 3.4e38 they are nan)")
    return omega


def _check_floating(t: torch.Tensor, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")


def check_params(x: torch.Tensor, weights: Sequence[torch.Tensor],
                 biases: Sequence[torch.Tensor | None], omegas: Sequence[float | None], *,
                 layer: bool = False) -> None:
    """Shapes, dtypes and devices of an MLP's inputs, checked once with clear messages
    (``layer``: one layer's, named ``weight``, ``bias`` and ``omega_0`` as :func:`sine_linear`
    takes them)."""
    _check_floating(x, "x")
    if x.dim() != 2:
        raise ValueError(f"x must have shape (N, in_features), got {tuple(x.shape)}")
    for seq, what in ((weights, "weights"), (biases, "biases"), (omegas, "omegas")):
        if not hasattr(seq, "__len__") or not hasattr(seq, "__getitem__"):  # a generator: used up once read
            raise TypeError(f"{what} must be a sequence (a list, tuple, ParameterList), got {type(seq).__name__}")
    if not (len(weights) == len(biases) == len(omegas)) or not weights:
        raise ValueError("weights, biases and omegas must be non-empty and of equal length, got "
                         f"{len(weights)}, {len(biases)}, {len(omegas)}")
    fan = x.shape[1]
    for i, (w, b, om) in enumerate(zip(weights, biases, omegas)):
        wname, bname, oname = ("weight", "bias", "omega_0") if layer else (f"weights[{i}]", f"biases[{i}]",
                                                                          f"omegas[{i}]")
        _check_floating(w, wname)
        if w.dim() != 2 or w.shape[1] != fan or w.shape[0] == 0:
            raise ValueError(f"{wname} must have shape (out, {fan}) with out >= 1, got {tuple(w.shape)}")
        if b is not None:
            _check_floating(b, bname)
        if b is not None and tuple(b.shape) != (w.shape[0],):
            raise ValueError(f"{bname} must have shape ({w.shape[0]},), got {tuple(b.shape)}")
        for t, name in ((w, wname), (b, bname)):
            if t is None:
                continue
            if t.dtype != x.dtype:
                raise TypeError(f"{name} has dtype {t.dtype} but x has {x.dtype}; use one dtype")
            if t.device != x.device:
                raise ValueError(f"{name} is on {t.device} but x is on {x.device}; use one device")
        if om is not None:
            check_omega(om, oname, f"a finite number > 0 and <= {MAX_OMEGA:g} (or None for a linear layer)")
        fan = w.shape[0]


def sine_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                omega_0: float = 30.0, backend: str | None = "auto") -> torch.Tensor:
    """Fused ``sin(omega_0 * (x @ W.T + b))``: x (..., in), weight (out, in), bias (out,) or
    None -> (..., out), x's dtype. Differentiable twice (double backward) on every backend."""
    _check_floating(x, "x")
    _check_floating(weight, "weight")
    omega_0 = check_omega(omega_0, "omega_0")
    if weight.dim() != 2 or min(weight.shape) < 1:
        raise ValueError(f"weight must have shape (out_features, in_features), both >= 1, got {tuple(weight.shape)}")
    if x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x must have shape (..., {weight.shape[1]}) to match weight "
                         f"{tuple(weight.shape)}, got {tuple(x.shape)}")
    flat = x.reshape(-1, x.shape[-1])
    check_params(flat, [weight], [bias], [omega_0], layer=True)
    y = backends.get(backend, x.device).sine_linear(flat.contiguous(), weight, bias, omega_0)
    return y.reshape(*x.shape[:-1], weight.shape[0])


def siren_forward(x: torch.Tensor, weights: Sequence[torch.Tensor],
                  biases: Sequence[torch.Tensor | None], omegas: Sequence[float | None],
                  backend: str | None = "auto") -> torch.Tensor:
    """Forward of a sine MLP given its parameters; x (N, in) -> (N, out).

    Layer i is ``h @ weights[i].T + biases[i]`` (a bias may be None), then ``sin(omegas[i] * .)``,
    or nothing where ``omegas[i]`` is None (a linear layer). Differentiable twice.
    """
    check_params(x, weights, biases, omegas)
    return backends.get(backend, x.device).mlp_forward(x.contiguous(), list(weights), list(biases),
                                                        tuple(omegas))


def siren_jet(x: torch.Tensor, weights: Sequence[torch.Tensor],
              biases: Sequence[torch.Tensor | None], omegas: Sequence[float | None],
              order: int = 2, backend: str | None = "auto", laplacian_weights=None) -> Jet:
    """Jet (value (N, out), grad (N, out, D), Laplacian (N, out)) of a sine MLP at x (N, D).

    ``omegas[i]`` is layer i's frequency or None for a linear layer. Every field is
    differentiable w.r.t. the parameters (and x). ``laplacian_weights`` (D numbers) make the
    Laplacian field ``sum_k c_k d2 f / d x_k^2`` (:func:`check_laplacian_weights`).
    """
    check_order(order)
    check_params(x, weights, biases, omegas)
    lap_w = check_laplacian_weights(laplacian_weights, order, x.shape[1])
    return backends.get(backend, x.device).mlp_jet(x.contiguous(), list(weights), list(biases),
                                                    tuple(omegas), order, laplacian_weights=lap_w)
