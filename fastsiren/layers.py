"""SIREN modules (:class:`SineLayer`, :class:`Siren`) and same-interface baselines.

Layer counting follows the official code: ``hidden_layers`` counts the hidden->hidden
layers *after* the first layer, so a network has ``hidden_layers + 2`` linear layers
(in -> hidden, ``hidden_layers`` x hidden -> hidden, hidden -> out).
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as _torch_module  # its global hook dicts

from fastsiren import backends, functional
from fastsiren.init import check_scheme, init_bias_, init_weight_
from fastsiren.jet import Jet


class SineLayer(nn.Module):
    """``y = sin(omega_0 * (x W^T + b))`` with the paper's init; weight (out, in), bias (out,)
    (None with ``bias=False``).

    ``init`` names the weight's init scheme: of the first-layer family
    (:data:`fastsiren.init.FIRST_SCHEMES`) if ``is_first``, else of the hidden family
    (:data:`fastsiren.init.HIDDEN_SCHEMES`, whose bound or std ``init_scale`` multiplies). The
    forward, x (..., in_features) -> (..., out_features), runs the fused op of ``backend``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 omega_0: float = 30.0, is_first: bool = False, *, init: str = "paper",
                 init_scale: float = 1.0, backend: str = "auto") -> None:
        super().__init__()
        in_features = _int_at_least(in_features, "in_features")
        out_features = _int_at_least(out_features, "out_features")
        omega_0 = functional.check_omega(omega_0, "omega_0")
        init_scale = functional.check_positive(init_scale, "init_scale")
        backends.check_name(backend)
        self.in_features, self.out_features = in_features, out_features
        self.omega_0, self.is_first, self.backend = omega_0, is_first, backend
        self.init, self.init_scale = init, init_scale
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the weight (scheme ``init``) and the bias (PyTorch's default) again, in place."""
        init_weight_(self.weight, self.init, first=self.is_first, omega_0=self.omega_0,
                     scale=self.init_scale, name="init")
        init_bias_(self.bias, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``sin(omega_0 (x W^T + b))``: x (..., in_features) -> (..., out_features)."""
        return functional.sine_linear(x, self.weight, self.bias, self.omega_0, backend=self.backend)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, omega_0={self.omega_0}, is_first={self.is_first}")


def _int_at_least(v, name: str, minimum: int = 1) -> int:
    """``v`` as a Python int: an integer of any integer type (a NumPy int too; not a bool or a
    float) of at least ``minimum``."""
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _check_network_sizes(in_features, hidden_features, hidden_layers, out_features) -> tuple[int, int, int, int]:
    """The size arguments every coordinate network takes (Siren and the baselines), as ints."""
    return (_int_at_least(in_features, "in_features"), _int_at_least(hidden_features, "hidden_features"),
            _int_at_least(hidden_layers, "hidden_layers", 0), _int_at_least(out_features, "out_features"))


class CoordinateMLP(nn.Module):
    """Shared interface of every coordinate network: ``forward``, ``jet``, ``render``."""

    in_features: int
    out_features: int

    def _flatten(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor of coordinates, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor of coordinates, got dtype {x.dtype}")
        # under torch.jit.trace a size is a tensor: comparing it would warn that the trace holds a
        # constant (a wrong width still fails in the first product there)
        if x.dim() < 1 or (not torch.jit.is_tracing() and x.shape[-1] != self.in_features):
            raise ValueError(
                f"x must have shape (..., in_features={self.in_features}), got {tuple(x.shape)}")
        p = next(self.parameters(), None)
        if p is not None and x.device != p.device:
            raise ValueError(f"x is on {x.device} but the model's parameters are on {p.device}; move one "
                             f"(x.to({str(p.device)!r}) or model.to({str(x.device)!r}))")
        if p is not None and x.dtype != p.dtype:
            if not torch.is_autocast_enabled(x.device.type):
                raise TypeError(f"x has dtype {x.dtype} but the model's parameters are {p.dtype}; convert one "
                                f"(x.to({p.dtype}) or model.to({x.dtype}))")
            # under autocast the fused backends compute in the parameters' dtype (the reference's
            # operations are cast by autocast itself, whatever x's dtype)
            x = x.to(p.dtype)
        lead = tuple(x.shape[:-1])
        return x.reshape(-1, self.in_features), lead

    def _jet_flat(self, x: torch.Tensor, order: int, lap_w: tuple[float, ...] | None = None) -> Jet:
        raise NotImplementedError

    def jet(self, x: torch.Tensor, order: int = 2, laplacian_weights=None) -> Jet:
        """The :class:`Jet` of the network at ``x`` (..., in): value (..., out), gradient
        (..., out, in) (None for ``order=0``) and Laplacian (..., out) (None for ``order < 2``).

        ``laplacian_weights`` (one number per input dimension, order 2) make the Laplacian field
        ``sum_k c_k d2 f / d x_k^2``: ``(0, 1, 1)`` is the spatial Laplacian of f(t, x, y),
        ``(1, -v**2, -v**2)`` the wave operator ``f_tt - v^2 (f_xx + f_yy)``, in the same pass.
        """
        functional.check_order(order)
        lap_w = functional.check_laplacian_weights(laplacian_weights, order, self.in_features)
        flat, lead = self._flatten(x)
        return self._jet_flat(flat, order, lap_w).reshape(lead)

    def _infer_flat(self, x: torch.Tensor, order: int, lap_w: tuple[float, ...] | None = None) -> Jet:
        with torch.no_grad():
            return self._jet_flat(x, order, lap_w).detach()

    def render(self, shape: Sequence[int], chunk: int | None = None, order: int = 0, laplacian_weights=None):
        """Evaluate on the dense pixel-centre grid over [-1,1]^d of ``shape`` (any d).

        Returns a tensor ``(*shape, out)`` for ``order=0``, else a :class:`Jet` whose fields
        have the grid's shape in front. ``chunk`` bounds the points per pass (memory); see
        :func:`fastsiren.render.render`. ``laplacian_weights``: as for :meth:`jet`.
        """
        from fastsiren.render import render

        return render(self, shape, chunk=chunk, order=order, laplacian_weights=laplacian_weights)


def _global_module_hooks() -> bool:
    """Whether a global forward / backward module hook is registered (read each call: they are
    plain dicts in ``torch.nn.modules.module``; absent names count as none)."""
    return any(getattr(_torch_module, name, None) for name in (
        "_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
        "_global_backward_pre_hooks"))


class Siren(CoordinateMLP):
    """SIREN (Sitzmann et al. 2020) with fused kernels; layers in ``self.layers``.

    in_features -> hidden_features (first sine layer, ``first_omega_0``), ``hidden_layers``
    sine layers hidden -> hidden (``hidden_omega_0``), then hidden -> out_features (linear if
    ``outermost_linear``, else a sine layer). ``first_init``/``hidden_init``/``init_scale``
    pick the init schemes of :mod:`fastsiren.init`.
    """

    def __init__(self, in_features: int = 2, hidden_features: int = 256, hidden_layers: int = 3,
                 out_features: int = 1, first_omega_0: float = 30.0, hidden_omega_0: float = 30.0,
                 outermost_linear: bool = True, backend: str = "auto", *, first_init: str = "paper",
                 hidden_init: str = "paper", init_scale: float = 1.0) -> None:
        super().__init__()
        in_features, hidden_features, hidden_layers, out_features = _check_network_sizes(
            in_features, hidden_features, hidden_layers, out_features)
        backends.check_name(backend)
        # checked here, not only by the layers: the final linear layer's init reads hidden_omega_0
        # and init_scale even without hidden layers
        first_omega_0 = functional.check_omega(first_omega_0, "first_omega_0")
        hidden_omega_0 = functional.check_omega(hidden_omega_0, "hidden_omega_0")
        init_scale = functional.check_positive(init_scale, "init_scale")
        check_scheme(first_init, True, "first_init")  # by this class's argument names, not SineLayer's init=
        check_scheme(hidden_init, False, "hidden_init")
        if not isinstance(outermost_linear, (bool, int)) or outermost_linear not in (0, 1):
            # "no" would be taken as true silently
            raise TypeError(f"outermost_linear must be True or False, got {outermost_linear!r}")
        outermost_linear = bool(outermost_linear)
        self.in_features, self.out_features = in_features, out_features
        self.hidden_features, self.hidden_layers = hidden_features, hidden_layers
        self.first_omega_0, self.hidden_omega_0 = first_omega_0, hidden_omega_0
        self.outermost_linear, self.backend = outermost_linear, backend
        kw = dict(backend=backend, init_scale=init_scale)
        layers: list[nn.Module] = [SineLayer(in_features, hidden_features, omega_0=first_omega_0,
                                             is_first=True, init=first_init, **kw)]
        for _ in range(hidden_layers):
            layers.append(SineLayer(hidden_features, hidden_features, omega_0=hidden_omega_0,
                                    init=hidden_init, **kw))
        if outermost_linear:
            final = nn.Linear(hidden_features, out_features)
            init_weight_(final.weight, hidden_init, first=False, omega_0=hidden_omega_0, scale=init_scale)
            init_bias_(final.bias, hidden_features)
        else:
            final = SineLayer(hidden_features, out_features, omega_0=hidden_omega_0,
                              init=hidden_init, **kw)
        layers.append(final)
        self.layers = nn.ModuleList(layers)

    def omegas(self) -> tuple[float | None, ...]:
        """Per-layer sine frequency; None for the final linear layer."""
        return tuple(getattr(layer, "omega_0", None) if isinstance(layer, SineLayer) else None
                     for layer in self.layers)

    def _params(self):
        return [layer.weight for layer in self.layers], [layer.bias for layer in self.layers]

    def _backend(self, x: torch.Tensor):
        return backends.get(self.backend, x.device)

    def _hooked_layers(self) -> bool:
        """Whether a layer has forward or backward hooks (``register_forward_hook``, or the
        pre-hooks by which ``torch.nn.utils.prune``, ``weight_norm`` and ``spectral_norm``
        recompute a weight before each call), which the fused whole-network pass would skip;
        also the global module hooks (``torch.nn.modules.module.register_module_forward_hook``
        and friends, as per-module profilers use), which fire on every layer call."""
        return _global_module_hooks() or any(
            layer._forward_hooks or layer._forward_pre_hooks or layer._backward_hooks
            or layer._backward_pre_hooks for layer in self.layers)

    def _warn_hooks_skipped(self) -> None:
        if self._hooked_layers():
            warnings.warn("fastsiren: Siren jets run the whole network fused and do not call the layers' "
                          "forward hooks or pre-hooks (their own or global module hooks; torch.nn.utils.prune, "
                          "weight_norm, spectral_norm recompute weights there); use torch.nn.utils.parametrize / "
                          "parametrizations, which jets follow", stacklevel=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output at ``x``: (..., in_features) -> (..., out_features)."""
        flat, lead = self._flatten(x)
        if self._hooked_layers():  # call the layers one by one (each fused), so their hooks run
            h = flat
            for layer in self.layers:
                h = layer(h)
            return h.reshape(*lead, self.out_features)
        w, b = self._params()
        be = self._backend(flat)
        # inside a torch.func transform always the differentiable forward: jvp/jacfwd's dual
        # tensors do not require grad, and the inference path detaches (drops the tangent);
        # under export / jit.trace too: one graph whatever the grad mode (jit.trace checks it)
        if backends.reference_ops_only() or backends.exporting() or (
                torch.is_grad_enabled() and (flat.requires_grad or any(p.requires_grad for p in w))):
            y = be.mlp_forward(flat, w, b, self.omegas())
        else:
            y = be.mlp_infer(flat, w, b, self.omegas(), 0).value
        return y.reshape(*lead, self.out_features)

    def _jet_flat(self, x: torch.Tensor, order: int, lap_w: tuple[float, ...] | None = None) -> Jet:
        self._warn_hooks_skipped()
        w, b = self._params()
        return self._backend(x).mlp_jet(x, w, b, self.omegas(), order, laplacian_weights=lap_w)

    def _infer_flat(self, x: torch.Tensor, order: int, lap_w: tuple[float, ...] | None = None) -> Jet:
        if order == 0 and self._hooked_layers():
            with torch.no_grad():
                return Jet(self(x).detach(), None, None)
        self._warn_hooks_skipped()
        w, b = self._params()
        return self._backend(x).mlp_infer(x, w, b, self.omegas(), order, laplacian_weights=lap_w)

    def load_official_state_dict(self, state_dict: dict[str, torch.Tensor], strict: bool = True):
        """Load a state dict of the official repo's network (any key prefix) into this model
        (:func:`convert_official_state_dict`); returns ``load_state_dict``'s missing and
        unexpected keys."""
        return self.load_state_dict(convert_official_state_dict(state_dict, self), strict=strict)


def convert_official_state_dict(state_dict: dict[str, torch.Tensor], model: Siren) -> dict:
    """Map the official code's key names (``net.0.linear.weight``, ``net.net.0.0.weight``, ...)
    to ours (``layers.0.weight``) by the order of the linear layers: the layer indices in the
    key names, compared as numbers (a dict with sorted keys, as safetensors returns, lists
    ``net.10`` before ``net.2``), else the order of the state dict. Returns a new dict
    ``{"layers.i.weight": ..., "layers.i.bias": ...}`` (a bias only where the state dict has
    one) of the same tensors, for ``model.load_state_dict``."""
    _check_module(model, "model", Siren)
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict of tensors, got {type(state_dict).__name__}")
    weights = sorted((k for k, v in state_dict.items() if k.endswith("weight") and v.dim() == 2),
                     key=lambda k: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", k)])
    n = len(model.layers)
    if len(weights) != n:
        raise ValueError(f"state_dict has {len(weights)} linear weight matrices, the model has {n} layers")
    out = {}
    for i, key in enumerate(weights):
        w = state_dict[key]
        expect = tuple(model.layers[i].weight.shape)
        if tuple(w.shape) != expect:
            raise ValueError(f"state_dict[{key!r}] has shape {tuple(w.shape)}, layer {i} expects {expect}")
        out[f"layers.{i}.weight"] = w
        bkey = key[: -len("weight")] + "bias"
        if bkey in state_dict:
            out[f"layers.{i}.bias"] = state_dict[bkey]
    return out


class _AutogradMLP(CoordinateMLP):
    """An MLP of ``nn.Linear`` + activation; jets by autograd (reference backend)."""

    def __init__(self, in_features: int, hidden_features: int, hidden_layers: int,
                 out_features: int, activation) -> None:
        super().__init__()
        in_features, hidden_features, hidden_layers, out_features = _check_network_sizes(
            in_features, hidden_features, hidden_layers, out_features)
        self.in_features, self.out_features = in_features, out_features
        self.hidden_features, self.hidden_layers = hidden_features, hidden_layers
        self.activation = activation
        dims = [self.encoded_features()] + [hidden_features] * (hidden_layers + 1) + [out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def encoded_features(self) -> int:
        """Width of :meth:`encode`'s output, the first linear layer's input."""
        return self.in_features

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The input encoding, (N, in_features) -> (N, :meth:`encoded_features`): none here."""
        return x

    def _net(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encode(x)
        for layer in self.layers[:-1]:
            h = self.activation(layer(h))
        return self.layers[-1](h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output at ``x``: (..., in_features) -> (..., out_features)."""
        flat, lead = self._flatten(x)
        return self._net(flat).reshape(*lead, self.out_features)

    def _jet_flat(self, x: torch.Tensor, order: int, lap_w: tuple[float, ...] | None = None) -> Jet:
        from fastsiren.reference import jet_of

        return jet_of(self._net, x, order, lap_w)


class ReluMLP(_AutogradMLP):
    """ReLU MLP baseline, same layer counting as :class:`Siren`."""

    def __init__(self, in_features: int = 2, hidden_features: int = 256, hidden_layers: int = 3,
                 out_features: int = 1) -> None:
        super().__init__(in_features, hidden_features, hidden_layers, out_features, F.relu)


class TanhMLP(_AutogradMLP):
    """tanh MLP baseline, same layer counting as :class:`Siren`."""

    def __init__(self, in_features: int = 2, hidden_features: int = 256, hidden_layers: int = 3,
                 out_features: int = 1) -> None:
        super().__init__(in_features, hidden_features, hidden_layers, out_features, torch.tanh)


def nyquist_frequencies(samples: int) -> int:
    """Number of positional-encoding octaves for ``samples`` per side (official rule:
    floor(log2(Nyquist rate)) with the grid spanning 2 units)."""
    samples = _int_at_least(samples, "sidelength")
    nyquist_rate = samples / 4.0
    return max(1, int(math.floor(math.log2(nyquist_rate))))


class PosEncMLP(_AutogradMLP):
    """ReLU MLP on a NeRF positional encoding ``(x, sin(2^i pi x_j), cos(2^i pi x_j))``.

    ``num_frequencies`` defaults to the official rule from ``sidelength`` (samples per side).
    """

    def __init__(self, in_features: int = 2, hidden_features: int = 256, hidden_layers: int = 3,
                 out_features: int = 1, sidelength: int = 256, num_frequencies: int | None = None) -> None:
        if num_frequencies is not None:
            num_frequencies = _int_at_least(num_frequencies, "num_frequencies", 0)
        self.num_frequencies = nyquist_frequencies(sidelength) if num_frequencies is None else num_frequencies
        super().__init__(in_features, hidden_features, hidden_layers, out_features, F.relu)

    def encoded_features(self) -> int:
        """``in_features * (1 + 2 num_frequencies)``: x, then a sine and a cosine per octave."""
        return self.in_features * (1 + 2 * self.num_frequencies)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_features) -> (N, :meth:`encoded_features`): ``x``, then for each octave i the
        sines of ``2^i pi x`` followed by their cosines."""
        freqs = (2.0 ** torch.arange(self.num_frequencies, device=x.device, dtype=x.dtype)) * math.pi
        arg = x.unsqueeze(-2) * freqs.unsqueeze(-1)          # (N, F, D)
        enc = torch.stack([torch.sin(arg), torch.cos(arg)], -2)  # (N, F, 2, D)
        return torch.cat([x, enc.reshape(x.shape[0], arg.shape[-2] * 2 * x.shape[-1])], -1)


BASELINES = {"relu": ReluMLP, "tanh": TanhMLP, "relu-pe": PosEncMLP}
MODEL_NAMES = ("siren", *BASELINES)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (``requires_grad``) of ``model``, an int."""
    _check_module(model, "model")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _check_module(obj: Any, name: str, cls: type = nn.Module) -> None:
    if not isinstance(obj, cls):
        raise TypeError(f"{name} must be a {cls.__name__}, got {type(obj).__name__}")


def matched_baseline(siren: Siren, kind: str, **kwargs) -> CoordinateMLP:
    """A baseline ``kind`` ("relu", "tanh", "relu-pe") with the same number of layers as
    ``siren`` and the width whose parameter count is closest to it (within 1% or an error)."""
    _check_module(siren, "siren", Siren)
    if kind not in BASELINES:
        raise ValueError(f"kind={kind!r} is not a known baseline; expected one of {list(BASELINES)}")
    cls = BASELINES[kind]
    target = count_params(siren)

    def build(width: int):
        return cls(siren.in_features, width, siren.hidden_layers, siren.out_features, **kwargs)

    enc = build(1).encoded_features()
    L, o = siren.hidden_layers, siren.out_features

    def n_params(w: int) -> int:  # (enc -> w) + L (w -> w) + (w -> out), with biases
        return (enc + 1) * w + L * (w + 1) * w + (w + 1) * o

    best = min(range(1, 4 * siren.hidden_features + 1), key=lambda w: abs(n_params(w) - target))
    model = build(best)
    if abs(count_params(model) - target) > 0.01 * target:
        raise ValueError(f"cannot match {target} parameters with a {kind} MLP within 1%: the closest, width "
                         f"{best}, has {count_params(model)}")
    return model


def build_model(name: str, *, in_features: int, out_features: int, hidden_features: int,
                hidden_layers: int, backend: str = "auto", first_omega_0: float = 30.0,
                hidden_omega_0: float = 30.0, sidelength: int = 256, **siren_kwargs) -> CoordinateMLP:
    """A new model ``name`` of :data:`MODEL_NAMES`: the :class:`Siren` of these sizes (more
    Siren arguments by ``siren_kwargs``), or a baseline sized by :func:`matched_baseline` to
    that SIREN's layers and parameter count (``sidelength``: :class:`PosEncMLP`'s octaves)."""
    if name not in MODEL_NAMES:
        raise ValueError(f"model={name!r} is not a known model; expected one of {list(MODEL_NAMES)}")
    backends.check_name(backend)
    if name != "siren" and backend not in ("auto", "reference"):  # as the tasks' --backend refuses it
        raise ValueError(f"backend={backend!r} applies to the SIREN only: the {name} baseline is plain PyTorch "
                         "(backend 'auto' or 'reference')")
    siren = Siren(in_features, hidden_features, hidden_layers, out_features, first_omega_0,
                  hidden_omega_0, backend=backend, **siren_kwargs)
    if name == "siren":
        return siren
    kw = {"sidelength": sidelength} if name == "relu-pe" else {}
    return matched_baseline(siren, name, **kw)
