"""Device-side jet math shared by every Triton kernel (``@triton.jit`` helpers), and a
probe of its sin/cos accuracy.

Tiles are 3-D ``(S_PAD, BLOCK_N, BLOCK_F)``: the streams of a block of points (stream 0 the
value, 1..D the derivatives, D+1 the Laplacian; rows ``>= S`` are padding and loaded as 0),
so the epilogue can reduce over streams (``q = sum_k a_k^2``) inside one program. ``sid``
is the stream index ``tl.arange(0, S_PAD)[:, None, None]``. Formulas: fastsiren/jet.py's docstring.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def join_omega(omega_hi, omega_lo, ptr):
    """omega in the element type of ``ptr``: kernels take omega as two fp32 halves (Triton
    passes Python floats as fp32), so a float64 network sees omega to ~48 bits, not 24."""
    return tl.cast(omega_hi, ptr.dtype.element_ty) + tl.cast(omega_lo, ptr.dtype.element_ty)


@triton.jit
def sin_cos(x):
    """sin(x), cos(x). fp32 arguments are reduced to [-pi, pi] first (Cody-Waite, 2*pi in
    three parts): a GPU may lower ``tl.sin`` to the approximate instruction, which is only
    accurate near zero, while omega_0 * z reaches hundreds."""
    if x.dtype == tl.float32:
        k = tl.floor(x * 0.15915494309189535 + 0.5)
        r = x - k * 6.28125
        r = r - k * 0.0019353071693331003
        r = r - k * 1.0253131677018246e-11
    else:
        r = x
    return tl.sin(r), tl.cos(r)


@triton.jit
def stream_sum(t, sid, which):
    """Row ``which`` of the stream axis of ``t`` (S_PAD, BN, BF) -> (BN, BF)."""
    return tl.sum(tl.where(sid == which, t, 0.0), axis=0)


@triton.jit
def lap_weights(lw_ptr, sid, D, WEIGHTED: tl.constexpr):
    """The Laplacian's weights as a stream column (S_PAD, 1, 1): c_k on the rows k = 1..D of
    the derivative streams, 0 elsewhere, read from ``lw_ptr`` (D,) when ``WEIGHTED``; otherwise
    an unused placeholder (the plain Laplacian, c_k = 1, compiles without it)."""
    is_a = (sid >= 1) & (sid <= D)
    if WEIGHTED:
        lw = tl.load(lw_ptr + (sid - 1), mask=is_a, other=0.0)
    else:
        lw = tl.where(is_a, 1.0, 0.0)
    return lw


@triton.jit
def jet_epilogue(p, sid, omega, D, ORDER: tl.constexpr, lw, WEIGHTED: tl.constexpr):
    """Post-activation streams (y, G, M) of a sine layer from pre-activations (z, a, l).
    ``WEIGHTED``: the Laplacian stream is ``sum_k c_k d2/dx_k^2`` with ``lw`` from
    :func:`lap_weights`, so ``q = sum_k c_k a_k^2``."""
    z = stream_sum(p, sid, 0)
    s, c = sin_cos(omega * z)
    if ORDER == 0:
        y = tl.where(sid == 0, s[None, :, :], 0.0)
    else:
        wc = omega * c
        y = tl.where(sid == 0, s[None, :, :], wc[None, :, :] * p)
        if ORDER == 2:
            a = tl.where((sid >= 1) & (sid <= D), p, 0.0)
            if WEIGHTED:
                q = tl.sum(lw * a * a, axis=0)
            else:
                q = tl.sum(a * a, axis=0)
            lap = stream_sum(p, sid, D + 1)
            m = wc * lap - (omega * omega) * s * q
            y = tl.where(sid == D + 1, m[None, :, :], y)
    return y


@triton.jit
def jet_adjoint(p, g, sid, omega, D, ORDER: tl.constexpr, lw, WEIGHTED: tl.constexpr):
    """Adjoints of the pre-activation streams from those (``g``) of the post-activations
    (``lw``, ``WEIGHTED``: as :func:`jet_epilogue`; ``abar_k`` takes ``-2 w^2 s c_k a_k mbar``)."""
    z = stream_sum(p, sid, 0)
    s, c = sin_cos(omega * z)
    wc = omega * c
    ybar = stream_sum(g, sid, 0)
    if ORDER == 0:
        out = tl.where(sid == 0, (wc * ybar)[None, :, :], 0.0)
    else:
        is_a = (sid >= 1) & (sid <= D)
        a = tl.where(is_a, p, 0.0)
        w2s = (omega * omega) * s
        zbar = wc * ybar - w2s * tl.sum(a * g, axis=0)
        abar = wc[None, :, :] * g
        if ORDER == 2:
            mbar = stream_sum(g, sid, D + 1)
            lap = stream_sum(p, sid, D + 1)
            if WEIGHTED:
                ca = lw * a
            else:
                ca = a
            q = tl.sum(ca * a, axis=0)
            zbar = zbar - (w2s * lap + (omega * omega * omega) * c * q) * mbar
            abar = abar - 2.0 * (w2s * mbar)[None, :, :] * ca
            abar = tl.where(sid == D + 1, (wc * mbar)[None, :, :], abar)
        out = tl.where(sid == 0, zbar[None, :, :], abar)
    return out


@triton.jit
def load_streams(ptr, sid, offs_n, offs_f, S, N, F):
    """Tile (S_PAD, BN, BF) of a contiguous (S, N, F) tensor; padding and edges read 0."""
    n = offs_n.to(tl.int64)[None, :, None]
    f = offs_f[None, None, :]
    mask = (sid < S) & (n < N) & (f < F)
    return tl.load(ptr + sid.to(tl.int64) * N * F + n * F + f, mask=mask, other=0.0)


@triton.jit
def store_streams(ptr, t, sid, offs_n, offs_f, S, N, F):
    """Store the first S streams of tile ``t`` into a contiguous (S, N, F) tensor."""
    n = offs_n.to(tl.int64)[None, :, None]
    f = offs_f[None, None, :]
    mask = (sid < S) & (n < N) & (f < F)
    tl.store(ptr + sid.to(tl.int64) * N * F + n * F + f, t, mask=mask)


@triton.jit
def tf32_head(v):
    """float32 ``v`` rounded to the nearest TF32 value (ties away from zero, mantissa bits
    0-12 cleared): the head of fastsiren.jet.tf32_split."""
    return ((v.to(tl.int32, bitcast=True) + 0x1000) & -8192).to(tl.float32, bitcast=True)


@triton.jit
def store_split_streams(ptr, rest_ptr, t, sid, offs_n, offs_f, S, N, F, SPLIT: tl.constexpr):
    """:func:`store_streams` of ``t``; ``SPLIT``: its TF32 heads to ``ptr`` and the remainders to
    ``rest_ptr`` (an operand of 3xTF32 products, fastsiren.jet.Split)."""
    if SPLIT:
        head = tf32_head(t)
        store_streams(ptr, head, sid, offs_n, offs_f, S, N, F)
        store_streams(rest_ptr, t - head, sid, offs_n, offs_f, S, N, F)
    else:
        store_streams(ptr, t, sid, offs_n, offs_f, S, N, F)


@triton.jit
def load_pre(pre_ptr, w0_ptr, sid, offs_n, offs_f, S, N, F, D, FIRST: tl.constexpr):
    """Pre-activation streams of a layer. ``FIRST``: the first layer of a jet keeps only z
    (N, F) in memory; its a_k is column k of W0 (F, D) for every point and l = 0."""
    if FIRST:
        z = load_streams(pre_ptr, sid, offs_n, offs_f, 1, N, F)
        f = offs_f[None, None, :]
        is_a = (sid >= 1) & (sid <= D) & (f < F)
        wcol = tl.load(w0_ptr + f * D + (sid - 1), mask=is_a, other=0.0)
        p = tl.where(sid == 0, z, wcol)
    else:
        p = load_streams(pre_ptr, sid, offs_n, offs_f, S, N, F)
    return p


@triton.jit
def _sin_cos_probe_kernel(x_ptr, s_ptr, c_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    s, c = sin_cos(tl.load(x_ptr + offs, mask=mask, other=0.0))
    tl.store(s_ptr + offs, s, mask=mask)
    tl.store(c_ptr + offs, c, mask=mask)


def sin_cos_error(x: torch.Tensor) -> float:
    """Max abs error of the kernels' :func:`sin_cos` at ``x`` (1-D, contiguous) against float64
    ``torch.sin``/``torch.cos``: the check that range reduction holds for large arguments."""
    s, c = torch.empty_like(x), torch.empty_like(x)
    _sin_cos_probe_kernel[(triton.cdiv(x.numel(), 1024),)](x, s, c, x.numel(), BLOCK=1024)
    xd = x.double()
    return max((s.double() - xd.sin()).abs().max().item(), (c.double() - xd.cos()).abs().max().item())

