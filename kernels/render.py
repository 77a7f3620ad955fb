"""Fully fused inference: every layer of a SIREN in one launch per block of points.

A program evaluates BLOCK_N points through the whole network. The hidden activation of its
points (all streams: value, and for ``order`` >= 1 the D gradient streams and the
Laplacian) stays in registers as up to four column chunks of shape (S_PAD * BLOCK_N,
WIDTH_PAD / CHUNKS); each layer is CHUNKS x CHUNKS ``tl.dot``s against weight tiles read
from global memory (L2-resident: the weights of a width-256 network are 0.8 MB). Only the
coordinates go in and the output streams (S, N, out) come out, so peak device memory is the
output plus the weights.

Fusable networks: a sine first layer, hidden layers of one width (sine, any omegas), and a
last layer that is linear or sine. Widths above :data:`config.MAX_FUSED_WIDTH` (register
tiles would spill) fall back to the per-layer kernels with a warning; other shapes use the
per-layer kernels silently (same results, more memory traffic).

Precision: ``config.infer_precision``: ``ieee``/``tf32x3``/``tf32`` as in training, or
``fp16``/``bf16``: GEMM operands rounded to half precision, accumulation, bias and the sine
epilogue in fp32. In fp16 the gradient and Laplacian streams of the operands are first divided by
2^6 and 2^12 (the latter times a weighted Laplacian's largest |c_k|, rounded up to a power of
two; the products multiplied back, exactly): a fitted network's hidden Laplacian
stream passes fp16's largest value, 65504, and rounded to inf (an H200 precision run measured a
NaN Laplacian before the scales; bf16 has the range of fp32). Under the interpreter (no
half-precision ``tl.dot``) the rounding is emulated by a round trip through the half type.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import torch
import triton
import triton.language as tl

from fastsiren.backends import fused_inference
from fastsiren.jet import Jet, num_streams

from .config import (
    MAX_FUSED_WIDTH,
    PRECISIONS,
    infer_precision,
    interpreting,
    render_config,
    stream_pad,
    train_precision,
)
from .jet_layer import check_tensor, lap_operand, lap_weight_tensor, mlp_streams_forward, omega_halves, split_streams
from .jet_math import jet_epilogue, join_omega, lap_weights, store_streams

FP16_GRAD_SCALE: tl.constexpr = tl.constexpr(64.0)
FP16_LAP_SCALE: tl.constexpr = tl.constexpr(4096.0)


@triton.jit
def _round_operand(t, HALF: tl.constexpr, EMULATE: tl.constexpr):
    """A GEMM operand in the inference precision (fp32 kept for ieee/tf32x3/tf32)."""
    if HALF == "fp16":
        t = t.to(tl.float16)
    elif HALF == "bf16":
        t = t.to(tl.bfloat16)
    if EMULATE:
        t = t.to(tl.float32)
    return t


@triton.jit
def _weight_tile(w_ptr, k0, f0, K: tl.constexpr, F: tl.constexpr, CW: tl.constexpr, COLS: tl.constexpr,
                 HALF: tl.constexpr, EMULATE: tl.constexpr):
    """W^T[k0:k0+CW, f0:f0+COLS] of a weight W (F, K), zero outside."""
    k = k0 + tl.arange(0, CW)
    f = f0 + tl.arange(0, COLS)
    w = tl.load(w_ptr + f[None, :] * K + k[:, None], mask=(k[:, None] < K) & (f[None, :] < F), other=0.0)
    return _round_operand(w, HALF, EMULATE)


@triton.jit
def _chunked_gemm(h0, h1, h2, h3, w_ptr, f0, K: tl.constexpr, F: tl.constexpr, CW: tl.constexpr,
                  COLS: tl.constexpr, CHUNKS: tl.constexpr, PRECISION: tl.constexpr,
                  HALF: tl.constexpr, EMULATE: tl.constexpr, unscale):
    """Columns f0:f0+COLS of ``[h0 h1 h2 h3] @ W^T`` (h_j: (ROWS, CW), chunk j of K).

    fp16 (largest finite value 65504): each row is divided by its stream's power-of-two scale
    ``unscale`` (ROWS, 1) before it is rounded and the product multiplied back, so the
    gradient and Laplacian streams of a fitted network stay in range (exact: powers of two).
    The division is a multiplication by the reciprocal, taken once per row with IEEE rounding
    (``div_rn``; a plain ``/`` compiles to the approximate ``div.full.f32`` on a GPU).
    """
    if HALF == "fp16":
        rscale = tl.div_rn(tl.full(unscale.shape, 1.0, tl.float32), unscale)
        h0 = h0 * rscale
        h1 = h1 * rscale
        h2 = h2 * rscale
        h3 = h3 * rscale
    acc = tl.dot(_round_operand(h0, HALF, EMULATE),
                 _weight_tile(w_ptr, 0, f0, K, F, CW, COLS, HALF, EMULATE), input_precision=PRECISION)
    if CHUNKS > 1:
        acc = tl.dot(_round_operand(h1, HALF, EMULATE),
                     _weight_tile(w_ptr, CW, f0, K, F, CW, COLS, HALF, EMULATE), acc,
                     input_precision=PRECISION)
    if CHUNKS > 2:
        acc = tl.dot(_round_operand(h2, HALF, EMULATE),
                     _weight_tile(w_ptr, 2 * CW, f0, K, F, CW, COLS, HALF, EMULATE), acc,
                     input_precision=PRECISION)
        acc = tl.dot(_round_operand(h3, HALF, EMULATE),
                     _weight_tile(w_ptr, 3 * CW, f0, K, F, CW, COLS, HALF, EMULATE), acc,
                     input_precision=PRECISION)
    if HALF == "fp16":
        acc = acc * unscale
    return acc


@triton.jit
def _hidden_chunk(h0, h1, h2, h3, w_ptr, b_ptr, omega, c0, sid, W: tl.constexpr, D: tl.constexpr,
                  ORDER: tl.constexpr, CW: tl.constexpr, CHUNKS: tl.constexpr, S_PAD: tl.constexpr,
                  BLOCK_N: tl.constexpr, PRECISION: tl.constexpr, HALF: tl.constexpr,
                  EMULATE: tl.constexpr, unscale, lw, WEIGHTED: tl.constexpr):
    """Output chunk starting at column c0 of a hidden sine layer: (ROWS, CW)."""
    acc = _chunked_gemm(h0, h1, h2, h3, w_ptr, c0, W, W, CW, CW, CHUNKS, PRECISION, HALF, EMULATE, unscale)
    p = tl.reshape(acc, (S_PAD, BLOCK_N, CW))
    f = c0 + tl.arange(0, CW)
    bias = tl.load(b_ptr + f, mask=f < W, other=0.0)
    p += tl.where(sid == 0, bias[None, None, :], 0.0)
    y = jet_epilogue(p, sid, omega, D, ORDER, lw, WEIGHTED)
    return tl.reshape(y, (S_PAD * BLOCK_N, CW))


@triton.jit
def _first_chunk(x_ptr, w0_ptr, b0_ptr, omega, c0, offs_n, sid, N, W: tl.constexpr, D: tl.constexpr,
                 ORDER: tl.constexpr, CW: tl.constexpr, S_PAD: tl.constexpr, BLOCK_N: tl.constexpr, lw,
                 WEIGHTED: tl.constexpr):
    """Output chunk starting at column c0 of the first layer (no GEMM: K = D): (ROWS, CW)."""
    f = c0 + tl.arange(0, CW)
    f_mask = f < W
    z = tl.load(b0_ptr + f, mask=f_mask, other=0.0)[None, :] + tl.zeros((BLOCK_N, CW), dtype=tl.float32)
    n_mask = offs_n < N
    for k in range(D):
        xk = tl.load(x_ptr + offs_n.to(tl.int64) * D + k, mask=n_mask, other=0.0)
        wk = tl.load(w0_ptr + f * D + k, mask=f_mask, other=0.0)
        z += xk[:, None] * wk[None, :]
    f3 = f[None, None, :]
    wcol = tl.load(w0_ptr + f3 * D + (sid - 1), mask=(sid >= 1) & (sid <= D) & (f3 < W), other=0.0)
    p = tl.where(sid == 0, z[None, :, :], wcol)
    y = jet_epilogue(p, sid, omega, D, ORDER, lw, WEIGHTED)
    return tl.reshape(y, (S_PAD * BLOCK_N, CW))


@triton.jit
def _render_fused_kernel(x_ptr, w0_ptr, b0_ptr, wh_ptr, bh_ptr, omh_ptr, wl_ptr, bl_ptr, y_ptr, lw_ptr, N,
                         om0_hi, om0_lo, oml_hi, oml_lo,
                         D: tl.constexpr, W: tl.constexpr, OUT: tl.constexpr, HIDDEN: tl.constexpr,
                         S: tl.constexpr, ORDER: tl.constexpr, LAST_SINE: tl.constexpr,
                         S_PAD: tl.constexpr, BLOCK_N: tl.constexpr, CW: tl.constexpr,
                         CHUNKS: tl.constexpr, OUT_PAD: tl.constexpr, PRECISION: tl.constexpr,
                         HALF: tl.constexpr, EMULATE: tl.constexpr, WEIGHTED: tl.constexpr,
                         LAP_SCALE: tl.constexpr):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    sid = tl.arange(0, S_PAD)[:, None, None]
    # Per-row stream scale of the fp16 GEMM operands (see _chunked_gemm): 1 for the value,
    # 2^6 for the gradient streams, 2^12 for the Laplacian (times the Laplacian's largest weight,
    # rounded up to a power of two: lap_scale).
    row_sid = tl.arange(0, S_PAD * BLOCK_N)[:, None] // BLOCK_N
    unscale = tl.where(row_sid == 0, 1.0, tl.where(row_sid <= D, FP16_GRAD_SCALE, LAP_SCALE))
    om0 = join_omega(om0_hi, om0_lo, y_ptr)
    lw = lap_weights(lw_ptr, sid, D, WEIGHTED)
    h0 = _first_chunk(x_ptr, w0_ptr, b0_ptr, om0, 0, offs_n, sid, N, W, D, ORDER, CW, S_PAD, BLOCK_N, lw, WEIGHTED)
    # Unused chunks hold a copy of h0 so every loop-carried value is defined.
    h1 = h0
    h2 = h0
    h3 = h0
    if CHUNKS > 1:
        h1 = _first_chunk(x_ptr, w0_ptr, b0_ptr, om0, CW, offs_n, sid, N, W, D, ORDER, CW, S_PAD, BLOCK_N, lw, WEIGHTED)
    if CHUNKS > 2:
        h2 = _first_chunk(x_ptr, w0_ptr, b0_ptr, om0, 2 * CW, offs_n, sid, N, W, D, ORDER, CW, S_PAD,
                          BLOCK_N, lw, WEIGHTED)
        h3 = _first_chunk(x_ptr, w0_ptr, b0_ptr, om0, 3 * CW, offs_n, sid, N, W, D, ORDER, CW, S_PAD,
                          BLOCK_N, lw, WEIGHTED)
    for layer in range(HIDDEN):
        w_ptr = wh_ptr + layer * W * W
        b_ptr = bh_ptr + layer * W
        om = tl.load(omh_ptr + layer)
        n0 = _hidden_chunk(h0, h1, h2, h3, w_ptr, b_ptr, om, 0, sid, W, D, ORDER, CW, CHUNKS, S_PAD,
                           BLOCK_N, PRECISION, HALF, EMULATE, unscale, lw, WEIGHTED)
        n1 = n0
        n2 = n0
        n3 = n0
        if CHUNKS > 1:
            n1 = _hidden_chunk(h0, h1, h2, h3, w_ptr, b_ptr, om, CW, sid, W, D, ORDER, CW, CHUNKS, S_PAD,
                               BLOCK_N, PRECISION, HALF, EMULATE, unscale, lw, WEIGHTED)
        if CHUNKS > 2:
            n2 = _hidden_chunk(h0, h1, h2, h3, w_ptr, b_ptr, om, 2 * CW, sid, W, D, ORDER, CW, CHUNKS,
                               S_PAD, BLOCK_N, PRECISION, HALF, EMULATE, unscale, lw, WEIGHTED)
            n3 = _hidden_chunk(h0, h1, h2, h3, w_ptr, b_ptr, om, 3 * CW, sid, W, D, ORDER, CW, CHUNKS,
                               S_PAD, BLOCK_N, PRECISION, HALF, EMULATE, unscale, lw, WEIGHTED)
        h0, h1, h2, h3 = n0, n1, n2, n3
    acc = _chunked_gemm(h0, h1, h2, h3, wl_ptr, 0, W, OUT, CW, OUT_PAD, CHUNKS, PRECISION, HALF, EMULATE,
                        unscale)
    p = tl.reshape(acc, (S_PAD, BLOCK_N, OUT_PAD))
    f = tl.arange(0, OUT_PAD)
    bias = tl.load(bl_ptr + f, mask=f < OUT, other=0.0)
    p += tl.where(sid == 0, bias[None, None, :], 0.0)
    if LAST_SINE:
        p = jet_epilogue(p, sid, join_omega(oml_hi, oml_lo, y_ptr), D, ORDER, lw, WEIGHTED)
    store_streams(y_ptr, p, sid, offs_n, f, S, N, OUT)


def fusable(weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor | None],
            omegas: Sequence[float | None]) -> str | None:
    """None if the fused kernel can run this network, else the reason it cannot."""
    if len(weights) < 2:
        return "the network has a single layer"
    if any(b is None for b in biases):
        return "a layer has no bias"
    if any(om is None for om in omegas[:-1]):
        return "a layer before the last is linear"
    width = weights[0].shape[0]
    if any(tuple(w.shape) != (width, width) for w in weights[1:-1]) or weights[-1].shape[1] != width:
        return "the hidden layers differ in width"
    if width > MAX_FUSED_WIDTH:
        return f"hidden width {width} > {MAX_FUSED_WIDTH} (the register tiles would spill)"
    if weights[0].shape[1] > 8:
        return f"{weights[0].shape[1]} input features (the fused first layer takes at most 8)"
    return None


def lap_scale(laplacian_weights: Sequence[float] | None) -> float:
    """The fp16 scale of the Laplacian stream's GEMM operands: 2^12, times the largest |c_k|
    rounded up to a power of two when it exceeds 1 (the weights multiply that stream)."""
    big = max((abs(float(c)) for c in laplacian_weights or ()), default=1.0)
    return float(FP16_LAP_SCALE.value) * (2.0 ** math.ceil(math.log2(big)) if big > 1.0 else 1.0)


def render_fused(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
                 omegas: Sequence[float | None], order: int,
                 laplacian_weights: Sequence[float] | None = None) -> Jet:
    """Value (N, out), and for ``order`` >= 1 gradient (N, out, D) / Laplacian (N, out), of a
    fusable network (see :func:`fusable`) at x (N, D), in one kernel launch. float32 only.
    ``laplacian_weights`` (D floats, order 2): the Laplacian's weights (None: all 1)."""
    reason = fusable(weights, biases, omegas)
    if reason is not None:
        raise ValueError(f"render_fused cannot run this network: {reason}")
    x = check_tensor(x, "x")
    if x.dtype != torch.float32:
        raise TypeError(f"render_fused computes in float32, got x of dtype {x.dtype}")
    weights = [check_tensor(w, f"weights[{i}]", x.dtype, x.device) for i, w in enumerate(weights)]
    biases = [check_tensor(b, f"biases[{i}]", x.dtype, x.device) for i, b in enumerate(biases)]
    n, dim = x.shape
    lw_ptr, weighted = lap_operand(lap_weight_tensor(laplacian_weights, x), order, dim, x)
    width, out = weights[0].shape[0], weights[-1].shape[0]
    hidden = len(weights) - 2
    s = num_streams(order, dim)
    s_pad = stream_pad(s)
    prec = infer_precision(x.dtype)
    cfg = render_config(width, s_pad, prec)
    if hidden:
        wh = torch.stack(list(weights[1:-1]))
        bh = torch.stack(list(biases[1:-1]))
        omh = torch.tensor([float(om) for om in omegas[1:-1]], dtype=x.dtype, device=x.device)
    else:
        wh, bh, omh = weights[0], biases[0], biases[0]
    y = x.new_empty(s, n, out)
    half = prec if prec in ("fp16", "bf16") else "none"
    grid = (triton.cdiv(n, cfg.block_n),)
    _render_fused_kernel[grid](
        x, weights[0], biases[0], wh, bh, omh, weights[-1], biases[-1], y, lw_ptr, n,
        *omega_halves(omegas[0]), *omega_halves(omegas[-1]),
        D=dim, W=width, OUT=out, HIDDEN=hidden, S=s, ORDER=order, LAST_SINE=omegas[-1] is not None,
        S_PAD=s_pad, BLOCK_N=cfg.block_n, CW=cfg.width_pad // cfg.chunks, CHUNKS=cfg.chunks,
        OUT_PAD=max(16, 1 << max(0, (out - 1).bit_length())),
        PRECISION="ieee" if half != "none" else prec, HALF=half, EMULATE=interpreting(),
        WEIGHTED=weighted,
        # read by fp16 only: other precisions keep one compiled variant whatever the weights
        LAP_SCALE=lap_scale(laplacian_weights) if half == "fp16" else lap_scale(None),
        num_warps=cfg.num_warps, num_stages=1)
    return Jet(*split_streams(y, order, dim))


def mlp_infer(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor | None],
              omegas: Sequence[float | None], order: int, laplacian_weights: Sequence[float] | None = None) -> Jet:
    """No-grad jet of a network at the inference precision: the per-layer kernels (the
    default), or the fused kernel where it applies and :func:`fastsiren.backends.fused_inference`
    asks for it or the precision is a half one (only the fused kernel has those).

    Where the fused kernel was asked for, networks too wide to fuse warn and run the per-layer
    kernels (a half precision falls back to the training precision); float64 networks always
    run the per-layer kernels (the fused kernel is fp32). ``laplacian_weights`` (D floats, order 2):
    the Laplacian field is ``sum_k c_k d2 f / d x_k^2``, in either kernel.
    """
    with torch.no_grad():
        reason = fusable(weights, biases, omegas)
        prec = infer_precision(x.dtype)
        half = prec not in PRECISIONS
        if half or fused_inference():
            if reason is None and x.dtype == torch.float32:
                return render_fused(x, weights, biases, omegas, order, laplacian_weights)
            if half:
                prec = train_precision(x.dtype)
            if reason is not None and reason.startswith("hidden width"):
                warnings.warn(f"fused render kernel not used: {reason}; running the per-layer kernels "
                              f"at precision {prec!r}", stacklevel=3)
        h, _ = mlp_streams_forward(x, weights, biases, omegas, order, keep=False, precision=prec,
                                   lap_w=lap_weight_tensor(laplacian_weights, x))
        return Jet(*split_streams(h, order, x.shape[1]))
