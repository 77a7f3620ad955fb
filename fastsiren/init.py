"""Weight-initialization schemes of SIREN and the variants its ablations compare.

Paper (Sitzmann et al. 2020, Sec. 3.2 and the official code):
first layer ``W ~ U(-1/fan_in, 1/fan_in)``; every later layer (the final linear layer too)
``W ~ U(-sqrt(6/fan_in)/omega_0, +sqrt(6/fan_in)/omega_0)``, so that ``omega_0 W x`` has unit
variance for arcsine-distributed inputs x (variance 1/2); biases keep PyTorch's default
``U(-1/sqrt(fan_in), ..)``, which adds ``omega_0^2 / (3 fan_in)`` to the variance of the
pre-activation ``omega_0 (W x + b)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

FIRST_SCHEMES = ("paper", "hidden", "pytorch", "xavier", "normal")
"""First-layer schemes: ``paper`` U(-1/n, 1/n); ``hidden`` the hidden-layer scheme with the
first layer's omega_0; ``pytorch`` nn.Linear's default (Kaiming uniform, a=sqrt(5));
``xavier`` Glorot uniform; ``normal`` N(0, 1/n^2 * 1/3), the paper's variance as a Gaussian."""

HIDDEN_SCHEMES = ("paper", "pytorch", "xavier", "normal")
"""Hidden-layer schemes: ``paper`` U(-c, c), c = scale * sqrt(6/n)/omega_0; ``pytorch``;
``xavier``; ``normal`` N(0, (scale * sqrt(2/n)/omega_0)^2), the paper's variance as a Gaussian."""


def check_scheme(name: str, first: bool, arg: str) -> None:
    """An init scheme of the first-layer (``first``) or hidden family, reported as ``arg``."""
    choices = FIRST_SCHEMES if first else HIDDEN_SCHEMES
    if name not in choices:
        raise ValueError(f"{arg}={name!r} is not a known init scheme; expected one of {list(choices)}")


def paper_hidden_bound(fan_in: int, omega_0: float) -> float:
    """The paper's hidden-layer bound ``sqrt(6/fan_in)/omega_0``."""
    return math.sqrt(6.0 / fan_in) / omega_0


@torch.no_grad()
def init_weight_(weight: torch.Tensor, scheme: str, *, first: bool, omega_0: float,
                 scale: float = 1.0, name: str | None = None) -> torch.Tensor:
    """Initialize ``weight`` (out, in) in place with a named scheme and return it.

    ``first`` selects the first-layer family (:data:`FIRST_SCHEMES`), otherwise the hidden
    family (:data:`HIDDEN_SCHEMES`). ``scale`` multiplies the paper's hidden bound/std. ``name``:
    the caller's argument an unknown scheme is reported as (default first_init / hidden_init).
    """
    check_scheme(scheme, first, name or ("first_init" if first else "hidden_init"))
    fan_in = weight.shape[1]
    if scheme == "pytorch":
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    elif scheme == "xavier":
        nn.init.xavier_uniform_(weight)
    elif first and scheme == "paper":
        weight.uniform_(-1.0 / fan_in, 1.0 / fan_in)
    elif first and scheme == "normal":
        weight.normal_(0.0, 1.0 / (fan_in * math.sqrt(3.0)))
    elif scheme in ("paper", "hidden"):
        c = scale * paper_hidden_bound(fan_in, omega_0)
        weight.uniform_(-c, c)
    else:  # hidden normal
        weight.normal_(0.0, scale * math.sqrt(2.0 / fan_in) / omega_0)
    return weight


@torch.no_grad()
def init_bias_(bias: torch.Tensor | None, fan_in: int) -> None:
    """PyTorch's default bias init, as the official code keeps it."""
    if bias is not None:
        bound = 1.0 / math.sqrt(fan_in)
        bias.uniform_(-bound, bound)
