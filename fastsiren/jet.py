"""Forward-mode jets of sine MLPs (the ``torch`` backend) and the :class:`Jet` type.

A jet carries, per point, the value ``h``, its input derivatives ``J_k = dh/dx_k`` and its
Laplacian ``L`` forward through the layers, stacked as *streams* in one tensor of shape
``(S, N, F)``: stream 0 is the value, streams 1..D the derivatives, stream D+1 the
Laplacian (S = 1, 1+D, 2+D for orders 0, 1, 2). One GEMM per layer serves every stream.
Per sine layer with frequency w (DESIGN.md):

    z = W h + b      a_k = W J_k      l = W L
    y = sin(w z)     G_k = w c a_k    M = w c l - w^2 s q,   s, c = sin, cos(w z), q = sum a_k^2

The backward below is written by hand (not autograd through these ops). It keeps only the
pre-activation streams ``(z, a, l)`` of every layer and recomputes the post-activation
streams it needs (elementwise) in the backward: memory is one (S, N, F) tensor per layer
instead of the dozen intermediates autograd would keep.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch


class Jet(NamedTuple):
    """Value and input derivatives of a network at N points.

    value: (N, out); grad: (N, out, D) = d value / d x, or None for order 0;
    laplacian: (N, out) = sum_k d2 value / d x_k^2, or None for order < 2.
    """

    value: torch.Tensor
    grad: torch.Tensor | None
    laplacian: torch.Tensor | None

    def detach(self) -> "Jet":
        return Jet(*(t.detach() if t is not None else None for t in self))

    def reshape(self, lead: tuple[int, ...]) -> "Jet":
        """Restore leading batch dimensions ``lead`` in place of N."""
        v, g, lap = self
        return Jet(
            v.reshape(*lead, v.shape[-1]),
            None if g is None else g.reshape(*lead, *g.shape[-2:]),
            None if lap is None else lap.reshape(*lead, lap.shape[-1]),
        )


def num_streams(order: int, dim: int) -> int:
    """Streams per point for a jet of ``order`` in ``dim`` input dimensions."""
    return (1, 1 + dim, 2 + dim)[order]


def sine_epilogue(p: torch.Tensor, omega: float | None, order: int, dim: int) -> torch.Tensor:
    """Post-activation streams (y, G, M) from pre-activation streams (z, a, l), both (S, N, F).

    ``omega=None`` is a linear layer (identity). The first layer's ``a`` may be (D, 1, F).
    """
    if omega is None:
        return p
    z = p[0]
    s = torch.sin(omega * z)
    if order == 0:
        return s.unsqueeze(0)
    c = torch.cos(omega * z)
    wc = omega * c
    a = p[1:1 + dim]
    g = wc * a
    if order == 1:
        return torch.cat([s.unsqueeze(0), g.expand(dim, *z.shape)], 0)
    q = (a * a).sum(0)
    lap = wc * p[1 + dim] - (omega * omega) * s * q
    return torch.cat([s.unsqueeze(0), g.expand(dim, *z.shape), lap.unsqueeze(0)], 0)


def sine_adjoint(p: torch.Tensor, gbar: torch.Tensor, omega: float | None, order: int,
                 dim: int) -> torch.Tensor:
    """Adjoints of the pre-activation streams from those of the post-activation streams."""
    if omega is None:
        return gbar
    z = p[0]
    wz = omega * z
    s, c = torch.sin(wz), torch.cos(wz)
    wc = omega * c
    ybar = gbar[0]
    if order == 0:
        return (wc * ybar).unsqueeze(0)
    a = p[1:1 + dim]
    big = gbar[1:1 + dim]
    w2s = (omega * omega) * s
    zbar = wc * ybar - w2s * (a * big).sum(0)
    abar = wc * big
    if order == 1:
        return torch.cat([zbar.unsqueeze(0), abar], 0)
    mbar = gbar[1 + dim]
    q = (a * a).sum(0)
    lap_in = p[1 + dim]
    zbar = zbar - (w2s * lap_in + (omega ** 3) * c * q) * mbar
    abar = abar - 2.0 * w2s * a * mbar
    lbar = wc * mbar
    return torch.cat([zbar.unsqueeze(0), abar, lbar.unsqueeze(0)], 0)


def first_layer_pre(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, order: int) -> torch.Tensor:
    """Pre-activation streams of the first layer: h = x, J_k = e_k, L = 0 (no GEMM for J, L)."""
    z = torch.nn.functional.linear(x, w, b)
    if order == 0:
        return z.unsqueeze(0)
    dim = x.shape[1]
    a = w.t().unsqueeze(1).expand(dim, x.shape[0], w.shape[0])
    parts = [z.unsqueeze(0), a]
    if order == 2:
        parts.append(torch.zeros_like(z).unsqueeze(0))
    return torch.cat(parts, 0)


def _stacked_linear(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """One GEMM over all streams; the bias goes to the value stream only."""
    p = torch.matmul(h, w.t())
    if b is not None:
        p[0] += b
    return p


class _MLPJetFunction(torch.autograd.Function):
    """Whole-network jet with the hand-written backward of DESIGN.md."""

    @staticmethod
    def forward(ctx, x, order, omegas, n_layers, *params):
        weights = params[:n_layers]
        biases = params[n_layers:]
        dim = x.shape[1]
        pres = []
        h = None
        for i, (w, b, om) in enumerate(zip(weights, biases, omegas)):
            p = first_layer_pre(x, w, b, order) if i == 0 else _stacked_linear(h, w, b)
            pres.append(p)
            h = sine_epilogue(p, om, order, dim)
        ctx.order, ctx.omegas, ctx.n_layers, ctx.dim = order, omegas, n_layers, dim
        ctx.has_bias = tuple(b is not None for b in biases)
        ctx.save_for_backward(x, *weights, *[b for b in biases if b is not None], *pres)
        value = h[0]
        grad = h[1:1 + dim].permute(1, 2, 0).contiguous() if order >= 1 else None
        lap = h[1 + dim] if order == 2 else None
        return value, grad, lap

    @staticmethod
    def backward(ctx, g_value, g_grad, g_lap):
        order, omegas, n, dim = ctx.order, ctx.omegas, ctx.n_layers, ctx.dim
        saved = ctx.saved_tensors
        x = saved[0]
        weights = saved[1:1 + n]
        nb = sum(ctx.has_bias)
        bias_iter = iter(saved[1 + n:1 + n + nb])
        biases = [next(bias_iter) if hb else None for hb in ctx.has_bias]
        pres = saved[1 + n + nb:]

        if torch.is_grad_enabled():
            # Double backward (create_graph=True): differentiate a recomputation by autograd.
            return _double_backward_fallback(ctx, x, weights, biases, g_value, g_grad, g_lap)

        n_pts, out = pres[-1].shape[1], pres[-1].shape[2]
        gbar = torch.zeros(num_streams(order, dim), n_pts, out, dtype=x.dtype, device=x.device)
        if g_value is not None:
            gbar[0] = g_value
        if order >= 1 and g_grad is not None:
            gbar[1:1 + dim] = g_grad.permute(2, 0, 1)
        if order == 2 and g_lap is not None:
            gbar[1 + dim] = g_lap

        w_grads: list[torch.Tensor | None] = [None] * n
        b_grads: list[torch.Tensor | None] = [None] * n
        x_grad = None
        for i in range(n - 1, -1, -1):
            w = weights[i]
            pbar = sine_adjoint(pres[i], gbar, omegas[i], order, dim)
            if biases[i] is not None and ctx.needs_input_grad[4 + n + i]:
                b_grads[i] = pbar[0].sum(0)
            if i == 0:
                wg = pbar[0].t() @ x
                if order >= 1:
                    wg = wg + pbar[1:1 + dim].sum(1).t()
                w_grads[0] = wg
                if ctx.needs_input_grad[0]:
                    x_grad = pbar[0] @ w
            else:
                h = sine_epilogue(pres[i - 1], omegas[i - 1], order, dim)
                s_, n_, fo = pbar.shape
                w_grads[i] = pbar.reshape(s_ * n_, fo).t() @ h.reshape(s_ * n_, -1)
                gbar = torch.matmul(pbar, w)
        return (x_grad, None, None, None, *w_grads, *b_grads)


def _double_backward_fallback(ctx, x, weights, biases, g_value, g_grad, g_lap):
    """Gradients that are themselves differentiable: autograd over the reference ops.

    Used only when a caller asks for ``create_graph=True`` through a fused forward (e.g. the
    official repo's ``gradient(model(x), x)``); a single backward never takes this path.
    """
    from fastsiren import reference

    order, omegas, n = ctx.order, ctx.omegas, ctx.n_layers
    inputs = [x, *weights, *[b for b in biases if b is not None]]
    need = [x.requires_grad and ctx.needs_input_grad[0]]
    need += [ctx.needs_input_grad[4 + i] for i in range(n)]
    need += [ctx.needs_input_grad[4 + n + i] for i, b in enumerate(biases) if b is not None]
    jet = reference.mlp_jet(x, weights, biases, omegas, order)
    outs, grads_out = [], []
    for t, g in zip(jet, (g_value, g_grad, g_lap)):
        if t is not None and g is not None:
            outs.append(t)
            grads_out.append(g)
    wrt = [t for t, nd in zip(inputs, need) if nd]
    got = iter(torch.autograd.grad(outs, wrt, grads_out, create_graph=True, allow_unused=True)) if wrt else iter(())
    res = [next(got) if nd else None for nd in need]
    x_grad = res[0]
    w_grads = res[1:1 + n]
    b_iter = iter(res[1 + n:])
    b_grads = [next(b_iter) if b is not None else None for b in biases]
    return (x_grad, None, None, None, *w_grads, *b_grads)


def mlp_jet(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor | None],
            omegas: Sequence[float | None], order: int) -> Jet:
    """Jet of a sine MLP by forward-mode streams; differentiable w.r.t. x and every parameter."""
    value, grad, lap = _MLPJetFunction.apply(x, order, tuple(omegas), len(weights), *weights, *biases)
    return Jet(value, grad, lap)


def mlp_forward(x, weights, biases, omegas) -> torch.Tensor:
    """Plain forward (order-0 jet): saves only pre-activations; double backward via autograd."""
    return mlp_jet(x, weights, biases, omegas, 0).value


def sine_linear(x, weight, bias, omega_0) -> torch.Tensor:
    """One fused sine layer: a one-layer network."""
    return mlp_forward(x, [weight], [bias], [omega_0])


def mlp_infer(x, weights, biases, omegas, order: int) -> Jet:
    """No-grad inference of value (and jets for order > 0)."""
    with torch.no_grad():
        return mlp_jet(x, weights, biases, omegas, order).detach()
