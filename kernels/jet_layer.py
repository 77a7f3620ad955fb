"""Per-layer fused jet kernels (orders 0, 1, 2), forward and backward, and the network op.

Layout: a layer's streams are one contiguous (S, N, F) tensor (stream 0 value, 1..D the
derivatives, D+1 the Laplacian; S = 1, 1+D, 2+D for orders 0, 1, 2). A program owns the
streams of BLOCK_N points, i.e. the rows ``S_PAD * BLOCK_N`` of one GEMM tile, so the jet
epilogue (which mixes streams: ``q = sum_k a_k^2``) runs in registers after the GEMM.

Kernels (all three are GEMMs over the stacked streams with a fused pro-/epilogue):

``_jet_fwd_kernel``    ``p = h W^T + b`` (bias on the value stream), then ``y = epilogue(p)``.
                       First layer of a jet: only z needs the GEMM; ``a_k = W[:, k]``, ``l = 0``.
``_jet_dgrad_kernel``  ``out = adjoint_this(adjoint_up(g) W)``: the input gradient of layer
                       i+1 with the adjoint of layer i fused as the epilogue (and, for the top
                       layer only, the adjoint of layer i+1 as the prologue of its A tiles).
``_jet_wgrad_kernel``  ``Wbar = sum_{s,n} pbar h^T`` and ``bbar = sum_n pbar[0]``, where
                       ``h = epilogue(p_prev)`` is recomputed from the previous layer's
                       pre-activations while loading the B tiles.

Memory (a choice each backend makes): the forward keeps only the
pre-activation streams ``p`` of every layer, (S, N, F) each, and for the first layer of a jet
only z, (1, N, F), since its ``a_k`` are columns of W and ``l = 0``. The post-activations
are never kept: the weight-gradient kernel recomputes them (one sin and cos per element of
``p_prev``, repeated for each of the ``F / BLOCK_F`` output-column blocks, about 4 for width
256), against the (S, N, F) tensor per layer that keeping them would cost. The adjoint of
layer i is written once (by the dgrad kernel of layer i+1) and read by two GEMMs.
"""

from __future__ import annotations

from typing import Sequence

import torch
import triton
import triton.language as tl
from triton.runtime.errors import OutOfResources

from fastsiren.jet import (
    Split,
    autocast_off,
    backward_by_autograd,
    double_backward_fallback,
    lap_slot,
    mm,
    network_grads,
    num_streams,
    operand,
    outer_sum,
    rows_mm,
    split_streams,
    stack_adjoints,
    unpack_saved,
    wants_split,
)

from .config import GemmConfig, gemm_config, gemm_mode, interpreting, stream_pad, train_precision, wgrad_mode
from .jet_math import (
    jet_adjoint,
    jet_epilogue,
    join_omega,
    lap_weights,
    load_pre,
    load_streams,
    store_split_streams,
    store_streams,
    stream_sum,
    tf32_head,
)

# Reductions this short run as FMA loops, not tl.dot: tl.dot would pad them to 16 and,
# under tf32, round the first layer's inputs, whose error omega_0 = 30 then multiplies.
SMALL_K_MAX = 8


@triton.jit
def _stacked_gemm(a_ptr, apre_ptr, w0_ptr, w_ptr, sid, offs_n, offs_f, N, omega, lw,
                  S: tl.constexpr, K: tl.constexpr, F: tl.constexpr, D: tl.constexpr,
                  STRIDE_WK: tl.constexpr, STRIDE_WF: tl.constexpr, ORDER: tl.constexpr,
                  PRO_ADJ: tl.constexpr, PRO_FIRST: tl.constexpr, SMALL_K: tl.constexpr,
                  PRECISION: tl.constexpr, S_PAD: tl.constexpr, BLOCK_N: tl.constexpr,
                  BLOCK_F: tl.constexpr, BLOCK_K: tl.constexpr, WEIGHTED: tl.constexpr):
    """(S_PAD, BLOCK_N, BLOCK_F) tile of ``A @ B`` for A (S, N, K) and B[k, f] at
    ``w_ptr + k * STRIDE_WK + f * STRIDE_WF``. ``PRO_ADJ``: A holds adjoints of a sine
    layer's outputs; the adjoint (with that layer's pre-activations) is applied per tile.
    ``lw``/``WEIGHTED``: the Laplacian's weights (jet_math.lap_weights)."""
    dt = a_ptr.dtype.element_ty
    f_mask = offs_f < F
    if SMALL_K:
        acc3 = tl.zeros((S_PAD, BLOCK_N, BLOCK_F), dtype=dt)
        for k in range(K):
            offs_k = k + tl.arange(0, 1)
            a = load_streams(a_ptr, sid, offs_n, offs_k, S, N, K)
            if PRO_ADJ:
                pre = load_pre(apre_ptr, w0_ptr, sid, offs_n, offs_k, S, N, K, D, PRO_FIRST)
                a = jet_adjoint(pre, a, sid, omega, D, ORDER, lw, WEIGHTED)
            b = tl.load(w_ptr + k * STRIDE_WK + offs_f * STRIDE_WF, mask=f_mask, other=0.0)
            acc3 += a * b[None, None, :]
        return acc3
    acc = tl.zeros((S_PAD * BLOCK_N, BLOCK_F), dtype=dt)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        a = load_streams(a_ptr, sid, offs_n, offs_k, S, N, K)
        if PRO_ADJ:
            pre = load_pre(apre_ptr, w0_ptr, sid, offs_n, offs_k, S, N, K, D, PRO_FIRST)
            a = jet_adjoint(pre, a, sid, omega, D, ORDER, lw, WEIGHTED)
        b = tl.load(w_ptr + offs_k[:, None] * STRIDE_WK + offs_f[None, :] * STRIDE_WF,
                    mask=(offs_k[:, None] < K) & f_mask[None, :], other=0.0)
        acc = tl.dot(tl.reshape(a, (S_PAD * BLOCK_N, BLOCK_K)), b, acc, input_precision=PRECISION, out_dtype=dt)
    return tl.reshape(acc, (S_PAD, BLOCK_N, BLOCK_F))


@triton.jit
def _jet_fwd_kernel(h_ptr, w_ptr, b_ptr, y_ptr, pre_ptr, lw_ptr, N, omega_hi, omega_lo,
                    K: tl.constexpr, F: tl.constexpr, D: tl.constexpr, S: tl.constexpr,
                    S_IN: tl.constexpr, ORDER: tl.constexpr, FIRST: tl.constexpr,
                    SINE: tl.constexpr, STORE_PRE: tl.constexpr, HAS_BIAS: tl.constexpr,
                    SMALL_K: tl.constexpr, PRECISION: tl.constexpr, S_PAD: tl.constexpr,
                    BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr, BLOCK_K: tl.constexpr,
                    WEIGHTED: tl.constexpr):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_f = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
    sid = tl.arange(0, S_PAD)[:, None, None]
    omega = join_omega(omega_hi, omega_lo, y_ptr)
    lw = lap_weights(lw_ptr, sid, D, WEIGHTED)
    p = _stacked_gemm(h_ptr, h_ptr, w_ptr, w_ptr, sid, offs_n, offs_f, N, omega, lw, S_IN, K, F, D,
                      1, K, ORDER, False, False, SMALL_K, PRECISION, S_PAD, BLOCK_N, BLOCK_F, BLOCK_K, WEIGHTED)
    if HAS_BIAS:
        bias = tl.load(b_ptr + offs_f, mask=offs_f < F, other=0.0)
        p += tl.where(sid == 0, bias[None, None, :], 0.0)
    if FIRST:
        f3 = offs_f[None, None, :]
        wcol = tl.load(w_ptr + f3 * K + (sid - 1), mask=(sid >= 1) & (sid <= D) & (f3 < F), other=0.0)
        p = tl.where(sid == 0, p, wcol)
    if STORE_PRE:
        store_streams(pre_ptr, p, sid, offs_n, offs_f, S_IN, N, F)
    if SINE:
        p = jet_epilogue(p, sid, omega, D, ORDER, lw, WEIGHTED)
    store_streams(y_ptr, p, sid, offs_n, offs_f, S, N, F)


@triton.jit
def _jet_dgrad_kernel(g_ptr, gpre_ptr, w0_ptr, w_ptr, pre_ptr, out_ptr, lw_ptr, N,
                      omega_up_hi, omega_up_lo, omega_hi, omega_lo,
                      FU: tl.constexpr, F: tl.constexpr, D: tl.constexpr, S: tl.constexpr,
                      S_OUT: tl.constexpr, ORDER: tl.constexpr, PRO_ADJ: tl.constexpr,
                      PRO_FIRST: tl.constexpr, EPI_ADJ: tl.constexpr, EPI_FIRST: tl.constexpr,
                      SMALL_K: tl.constexpr, PRECISION: tl.constexpr, S_PAD: tl.constexpr,
                      BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr, BLOCK_K: tl.constexpr,
                      WEIGHTED: tl.constexpr):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_f = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
    sid = tl.arange(0, S_PAD)[:, None, None]
    omega_up = join_omega(omega_up_hi, omega_up_lo, out_ptr)
    lw = lap_weights(lw_ptr, sid, D, WEIGHTED)
    t = _stacked_gemm(g_ptr, gpre_ptr, w0_ptr, w_ptr, sid, offs_n, offs_f, N, omega_up, lw, S, FU, F, D,
                      F, 1, ORDER, PRO_ADJ, PRO_FIRST, SMALL_K, PRECISION, S_PAD, BLOCK_N, BLOCK_F,
                      BLOCK_K, WEIGHTED)
    if EPI_ADJ:
        omega = join_omega(omega_hi, omega_lo, out_ptr)
        pre = load_pre(pre_ptr, w0_ptr, sid, offs_n, offs_f, S, N, F, D, EPI_FIRST)
        t = jet_adjoint(pre, t, sid, omega, D, ORDER, lw, WEIGHTED)
    store_streams(out_ptr, t, sid, offs_n, offs_f, S_OUT, N, F)


@triton.jit(do_not_specialize=["iters"])
def _jet_wgrad_kernel(g_ptr, gpre_ptr, w0_ptr, h_ptr, wpart_ptr, bpart_ptr, lw_ptr, N, iters,
                      omega_g_hi, omega_g_lo, omega_h_hi, omega_h_lo,
                      F: tl.constexpr, K: tl.constexpr, D: tl.constexpr, S: tl.constexpr,
                      ORDER: tl.constexpr, PRO_ADJ: tl.constexpr, PRO_FIRST: tl.constexpr,
                      H_JET_INPUT: tl.constexpr, H_FIRST: tl.constexpr, H_SINE: tl.constexpr,
                      HAS_BIAS: tl.constexpr, PRECISION: tl.constexpr, S_PAD: tl.constexpr,
                      BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr, BLOCK_K: tl.constexpr,
                      ITERS: tl.constexpr, WEIGHTED: tl.constexpr):
    pid_f, pid_k, pid_s = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_f = pid_f * BLOCK_F + tl.arange(0, BLOCK_F)
    offs_k = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    sid = tl.arange(0, S_PAD)[:, None, None]
    dt = wpart_ptr.dtype.element_ty
    omega_g = join_omega(omega_g_hi, omega_g_lo, wpart_ptr)
    omega_h = join_omega(omega_h_hi, omega_h_lo, wpart_ptr)
    lw = lap_weights(lw_ptr, sid, D, WEIGHTED)
    acc = tl.zeros((BLOCK_F, BLOCK_K), dtype=dt)
    bacc = tl.zeros((BLOCK_F,), dtype=dt)
    # Each program reduces n_it point blocks and writes a partial sum; the launcher adds them.
    # On a GPU the trip count is a runtime int (one compiled variant for every N); the 3.6
    # interpreter cannot loop to a runtime int (int() of a 1-element numpy array): ITERS > 0 there.
    n_it = ITERS if ITERS > 0 else iters
    for it in range(0, ITERS if ITERS > 0 else iters):
        offs_n = (pid_s * n_it + it) * BLOCK_N + tl.arange(0, BLOCK_N)
        g = load_streams(g_ptr, sid, offs_n, offs_f, S, N, F)
        if PRO_ADJ:
            pre = load_pre(gpre_ptr, w0_ptr, sid, offs_n, offs_f, S, N, F, D, PRO_FIRST)
            g = jet_adjoint(pre, g, sid, omega_g, D, ORDER, lw, WEIGHTED)
        if H_JET_INPUT:
            # The network input as a jet: h = x, J_k = e_k, L = 0.
            x = load_streams(h_ptr, sid, offs_n, offs_k, 1, N, K)
            k3 = offs_k[None, None, :]
            h = tl.where(sid == 0, x, tl.where((sid >= 1) & (sid <= D) & (k3 == sid - 1), 1.0, 0.0))
        else:
            h = load_pre(h_ptr, w0_ptr, sid, offs_n, offs_k, S, N, K, D, H_FIRST)
            if H_SINE:
                h = jet_epilogue(h, sid, omega_h, D, ORDER, lw, WEIGHTED)
        g2 = tl.reshape(g, (S_PAD * BLOCK_N, BLOCK_F))
        h2 = tl.reshape(h.to(dt), (S_PAD * BLOCK_N, BLOCK_K))
        acc = tl.dot(tl.trans(g2), h2, acc, input_precision=PRECISION, out_dtype=dt)
        if HAS_BIAS:
            bacc += tl.sum(stream_sum(g, sid, 0), axis=0)
    f_mask = offs_f < F
    out = wpart_ptr + pid_s * F * K + offs_f[:, None] * K + offs_k[None, :]
    tl.store(out, acc, mask=f_mask[:, None] & (offs_k[None, :] < K))
    if HAS_BIAS:
        tl.store(bpart_ptr + pid_s * F + offs_f, bacc, mask=f_mask & (pid_k == 0))


@triton.jit
def _jet_post_kernel(pre_ptr, w0_ptr, out_ptr, rest_ptr, lw_ptr, N, omega_hi, omega_lo, F: tl.constexpr,
                     D: tl.constexpr, S: tl.constexpr, ORDER: tl.constexpr, FIRST: tl.constexpr,
                     S_PAD: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr, SPLIT: tl.constexpr,
                     WEIGHTED: tl.constexpr):
    """The post-activation streams of a sine layer from its kept pre-activations (an epilogue
    without the GEMM), for the cuBLAS weight gradient (config.set_wgrad) and GEMM mode;
    ``SPLIT``: written split for 3xTF32 products (heads to out, remainders to rest)."""
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_f = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
    sid = tl.arange(0, S_PAD)[:, None, None]
    omega = join_omega(omega_hi, omega_lo, out_ptr)
    p = load_pre(pre_ptr, w0_ptr, sid, offs_n, offs_f, S, N, F, D, FIRST)
    y = jet_epilogue(p, sid, omega, D, ORDER, lap_weights(lw_ptr, sid, D, WEIGHTED), WEIGHTED)
    store_split_streams(out_ptr, rest_ptr, y, sid, offs_n, offs_f, S, N, F, SPLIT)


@triton.jit
def _jet_adjoint_kernel(pre_ptr, g_ptr, out_ptr, rest_ptr, lw_ptr, N, omega_hi, omega_lo, F: tl.constexpr,
                        D: tl.constexpr, S: tl.constexpr, ORDER: tl.constexpr, S_PAD: tl.constexpr,
                        BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr, SPLIT: tl.constexpr,
                        WEIGHTED: tl.constexpr):
    """The adjoints of a sine layer's pre-activation streams from those of its post-activation
    streams (the jet epilogue's adjoint without a GEMM), for the cuBLAS GEMM mode; ``SPLIT``:
    written split for 3xTF32 products."""
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_f = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
    sid = tl.arange(0, S_PAD)[:, None, None]
    omega = join_omega(omega_hi, omega_lo, out_ptr)
    p = load_streams(pre_ptr, sid, offs_n, offs_f, S, N, F)
    g = load_streams(g_ptr, sid, offs_n, offs_f, S, N, F)
    pbar = jet_adjoint(p, g, sid, omega, D, ORDER, lap_weights(lw_ptr, sid, D, WEIGHTED), WEIGHTED)
    store_split_streams(out_ptr, rest_ptr, pbar, sid, offs_n, offs_f, S, N, F, SPLIT)


# ----------------------------------------------------------------------------- launchers

# Pipeline stages that fit, per kernel and constexpr specialization, found at first launch.
_STAGES: dict[tuple, int] = {}


def launch(kernel, grid, cfg: GemmConfig, *args, **constexprs) -> None:
    """``kernel[grid](*args, **constexprs)`` with ``cfg``'s warps and pipeline stages.

    A specialization that needs more shared memory than the device has (Triton raises
    ``OutOfResources`` when it loads the compiled kernel, before anything runs) is launched
    again with one stage fewer, down to one, and the stages that fit are remembered. Seen on
    an H200: the tf32x3 weight gradient of a layer fed by raw inputs wanted 256 KiB at three
    stages (``benchmarks/results/layer.csv``); at two it fits (an offline sm_90 compile,
    ``benchmarks/results/compile-sm90-layer-wgrad-2stages.json``).
    """
    def key() -> tuple:  # built only once some specialization has needed fewer stages (hot path)
        return getattr(getattr(kernel, "fn", kernel), "__name__", repr(kernel)), cfg, tuple(sorted(constexprs.items()))

    stages = _STAGES.get(key(), cfg.num_stages) if _STAGES else cfg.num_stages
    while True:
        try:
            kernel[grid](*args, **constexprs, num_warps=cfg.num_warps, num_stages=stages)
            return
        except OutOfResources:
            if stages <= 1:
                raise
            stages -= 1
            _STAGES[key()] = stages


def check_tensor(t: torch.Tensor, name: str, dtype: torch.dtype | None = None,
                 device: torch.device | None = None) -> torch.Tensor:
    """Validate one kernel operand and return it contiguous (a copy only when it is not)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cuda" and not (t.device.type == "cpu" and interpreting()):
        raise RuntimeError(f"{name} is on {t.device}: the triton kernels need CUDA tensors "
                           "(CPU tensors run only under TRITON_INTERPRET=1)")
    if device is not None and t.device != device:
        raise ValueError(f"{name} is on {t.device} but the input is on {device}; use one device")
    if dtype is not None and t.dtype != dtype:
        raise TypeError(f"{name} has dtype {t.dtype} but the input has {dtype}; use one dtype")
    if t.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be float32 or float64 for the triton training kernels, "
                        f"got {t.dtype} (half precision is an inference option: kernels.config)")
    return t.contiguous()


SPLIT_BLOCK = 1024


@triton.jit
def _tf32_split_kernel(t_ptr, head_ptr, rest_ptr, numel, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    v = tl.load(t_ptr + offs, mask=mask, other=0.0)
    head = tf32_head(v)
    tl.store(head_ptr + offs, head, mask=mask)
    tl.store(rest_ptr + offs, v - head, mask=mask)


def tf32_split(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`fastsiren.jet.tf32_split` in one pass (one read, two writes): the TF32 head and
    the float32 rest of a GEMM operand of the 3xTF32 products (fastsiren.jet.operand)."""
    t = check_tensor(t, "t")
    if t.dtype != torch.float32:
        raise TypeError(f"tf32_split takes float32 tensors, got {t.dtype}")
    head, rest = torch.empty_like(t), torch.empty_like(t)
    _tf32_split_kernel[(triton.cdiv(t.numel(), SPLIT_BLOCK),)](t, head, rest, t.numel(), BLOCK=SPLIT_BLOCK)
    return head, rest


def omega_halves(omega: float | None) -> tuple[float, float]:
    """omega as two float32-representable parts (hi, lo) with hi + lo = omega to ~48 bits."""
    if omega is None:
        return 0.0, 0.0
    hi = float(torch.tensor(omega, dtype=torch.float32))
    return hi, float(omega) - hi


_LAP_W_CACHE: dict[tuple, torch.Tensor] = {}


def lap_weight_tensor(weights: Sequence[float] | None, like: torch.Tensor) -> torch.Tensor | None:
    """The Laplacian's weights as a (D,) tensor of ``like``'s dtype on its device, made once per
    (weights, dtype, device) and kept (the kernels only read it): a host-to-device copy at every
    call would synchronise the host with the GPU."""
    if weights is None:
        return None
    key = (tuple(float(c) for c in weights), like.dtype, like.device)
    t = _LAP_W_CACHE.get(key)
    if t is None:
        if len(_LAP_W_CACHE) >= 64:  # a sweep over many weights: keep the cache small
            _LAP_W_CACHE.clear()
        t = _LAP_W_CACHE[key] = torch.tensor(key[0], dtype=like.dtype, device=like.device)
    return t


def lap_operand(lap_w: torch.Tensor | None, order: int, dim: int, like: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The Laplacian's weights as a kernel operand and its ``WEIGHTED`` flag: a checked (D,)
    tensor of ``like``'s dtype and device at order 2 (jet_math.lap_weights), or, for the plain
    Laplacian (None), ``like`` itself as a pointer the kernels never read."""
    if lap_w is None:
        return like, False
    lap_w = check_tensor(lap_w, "lap_w", like.dtype, like.device)
    if order != 2 or tuple(lap_w.shape) != (dim,):
        raise ValueError(f"lap_w must be ({dim},) weights of an order-2 jet, got shape {tuple(lap_w.shape)} "
                         f"at order {order}")
    return lap_w, True


def jet_layer_forward(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                      omega: float | None, order: int, dim: int, first: bool,
                      store_pre: bool, precision: str | None = None, lap_w: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One layer on stacked streams.

    h: (S, N, K) input streams, or (1, N, D) coordinates when ``first`` (the first layer of a
    jet of order >= 1). weight (F, K), bias (F,) or None, omega None for a linear layer.
    Returns y (S, N, F) and the pre-activations kept for the backward when ``store_pre``:
    (S, N, F), or (1, N, F) when ``first``; None otherwise (for a linear layer y is its own
    pre-activation and is returned in both places). ``precision``: the ``tl.dot`` precision
    (default: the training precision; inference passes its own). ``lap_w`` (D,): the
    Laplacian's weights (None: all 1; :func:`lap_operand`).
    """
    h = check_tensor(h, "h")
    weight = check_tensor(weight, "weight", h.dtype, h.device)
    if bias is not None:
        bias = check_tensor(bias, "bias", h.dtype, h.device)
    s = num_streams(order, dim)
    lw_ptr, weighted = lap_operand(lap_w, order, dim, h)
    s_in, n, k = h.shape
    f = weight.shape[0]
    if weight.shape[1] != k or s_in != (1 if first else s):
        raise ValueError(f"h {tuple(h.shape)} and weight {tuple(weight.shape)} do not match a "
                         f"layer of order {order} in {dim} dimensions (first={first})")
    sine = omega is not None
    y = h.new_empty(s, n, f)
    keep = store_pre and sine
    pre = h.new_empty(s_in, n, f) if keep else None
    s_pad = stream_pad(s)
    cfg = gemm_config(n, k, f, s_pad, h.dtype)
    grid = (triton.cdiv(n, cfg.block_n), triton.cdiv(f, cfg.block_f))
    launch(_jet_fwd_kernel, grid, cfg,
        h, weight, bias if bias is not None else weight, y, pre if keep else y,
        lw_ptr, n, *omega_halves(omega),
        K=k, F=f, D=dim, S=s, S_IN=s_in, ORDER=order, FIRST=first, SINE=sine, STORE_PRE=keep,
        HAS_BIAS=bias is not None, SMALL_K=k <= SMALL_K_MAX,
        PRECISION=precision or train_precision(h.dtype), S_PAD=s_pad, BLOCK_N=cfg.block_n, BLOCK_F=cfg.block_f,
        BLOCK_K=cfg.block_k, WEIGHTED=weighted)
    if store_pre and not sine:
        pre = y
    return y, pre


def jet_layer_dgrad(g: torch.Tensor, weight_up: torch.Tensor, order: int, dim: int, *,
                    omega_up: float | None = None, pre_up: torch.Tensor | None = None,
                    first_up: bool = False, omega: float | None = None,
                    pre: torch.Tensor | None = None, first: bool = False,
                    w0: torch.Tensor | None = None, out_streams: int | None = None,
                    lap_w: torch.Tensor | None = None) -> torch.Tensor:
    """Adjoint streams of layer i from those of layer i+1 ("up", weight (FU, F)).

    g: (S, N, FU) adjoints of the *pre*-activations of layer i+1, or, when ``omega_up`` is
    given, of its post-activations (its adjoint is then applied in the GEMM prologue, with
    ``pre_up``). With ``omega`` the result is the adjoint of layer i's pre-activations
    (fused epilogue, using ``pre``), otherwise of its outputs. ``first``/``first_up`` mark
    pre-activations kept as z only (first layer of a jet); ``w0`` is that layer's weight.
    ``out_streams`` < S keeps only the leading streams (1: the gradient w.r.t. x).
    ``lap_w``: the Laplacian's weights, as in :func:`jet_layer_forward`. Returns (out_streams, N, F).
    """
    g = check_tensor(g, "g")
    weight_up = check_tensor(weight_up, "weight_up", g.dtype, g.device)
    s, n, fu = g.shape
    f = weight_up.shape[1]
    if weight_up.shape[0] != fu or s != num_streams(order, dim):
        raise ValueError(f"g {tuple(g.shape)} does not match weight_up {tuple(weight_up.shape)} "
                         f"at order {order} in {dim} dimensions")
    pre_up = check_tensor(pre_up, "pre_up", g.dtype, g.device) if omega_up is not None else g
    pre = check_tensor(pre, "pre", g.dtype, g.device) if omega is not None else g
    w0 = check_tensor(w0, "w0", g.dtype, g.device) if w0 is not None else weight_up
    lw_ptr, weighted = lap_operand(lap_w, order, dim, g)
    s_out = s if out_streams is None else out_streams
    out = g.new_empty(s_out, n, f)
    s_pad = stream_pad(s)
    cfg = gemm_config(n, fu, f, s_pad, g.dtype)
    grid = (triton.cdiv(n, cfg.block_n), triton.cdiv(f, cfg.block_f))
    launch(_jet_dgrad_kernel, grid, cfg,
        g, pre_up, w0, weight_up, pre, out, lw_ptr, n, *omega_halves(omega_up),
        *omega_halves(omega),
        FU=fu, F=f, D=dim, S=s, S_OUT=s_out, ORDER=order, PRO_ADJ=omega_up is not None,
        PRO_FIRST=first_up, EPI_ADJ=omega is not None, EPI_FIRST=first, SMALL_K=fu <= SMALL_K_MAX,
        PRECISION=train_precision(g.dtype), S_PAD=s_pad, BLOCK_N=cfg.block_n, BLOCK_F=cfg.block_f,
        BLOCK_K=cfg.block_k, WEIGHTED=weighted)
    return out


def jet_layer_wgrad(g: torch.Tensor, h: torch.Tensor, order: int, dim: int, *, has_bias: bool,
                    omega: float | None = None, pre: torch.Tensor | None = None,
                    first: bool = False, h_omega: float | None = None, h_first: bool = False,
                    h_is_input: bool = False, w0: torch.Tensor | None = None,
                    lap_w: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weight (F, K) and bias (F,) gradients of a layer from its adjoint streams.

    g: (S, N, F) adjoints of the layer's pre-activations, or of its outputs when ``omega`` is
    given (adjoint fused into the tile loads, using ``pre``/``first``). h: the layer's
    input: the previous layer's pre-activations (S, N, K) (or (1, N, K) if ``h_first``),
    turned into its outputs with ``h_omega`` unless that is None; or with ``h_is_input``
    the coordinates (N, D), whose jet is (x, e_k, 0). ``lap_w``: as in :func:`jet_layer_forward`.
    """
    g = check_tensor(g, "g")
    h = check_tensor(h, "h", g.dtype, g.device)
    s, n, f = g.shape
    jet_input = h_is_input and order >= 1
    if h_is_input and order == 0:
        h = h.reshape(1, n, -1)
    k = h.shape[-1]
    pre = check_tensor(pre, "pre", g.dtype, g.device) if omega is not None else g
    w0 = check_tensor(w0, "w0", g.dtype, g.device) if w0 is not None else g
    lw_ptr, weighted = lap_operand(lap_w, order, dim, g)
    if n == 0:  # no points: the sums are empty (and a grid of no point blocks has no split)
        return g.new_zeros(f, k), (g.new_zeros(f) if has_bias else None)
    s_pad = stream_pad(s)
    cfg = gemm_config(n, k, f, s_pad, g.dtype, split_n=True)
    n_blocks = triton.cdiv(n, cfg.block_n)
    iters = triton.cdiv(n_blocks, cfg.split)
    # Power-of-two trip counts keep the number of compiled variants small.
    iters = 1 << max(0, (iters - 1).bit_length())
    split = triton.cdiv(n_blocks, iters)
    wpart = g.new_empty(split, f, k)
    bpart = g.new_empty(split, f) if has_bias else wpart
    grid = (triton.cdiv(f, cfg.block_f), triton.cdiv(k, cfg.block_k), split)
    launch(_jet_wgrad_kernel, grid, cfg,
        g, pre, w0, h, wpart, bpart, lw_ptr, n, iters, *omega_halves(omega),
        *omega_halves(h_omega),
        F=f, K=k, D=dim, S=s, ORDER=order, PRO_ADJ=omega is not None, PRO_FIRST=first,
        H_JET_INPUT=jet_input, H_FIRST=h_first, H_SINE=h_omega is not None, HAS_BIAS=has_bias,
        PRECISION=train_precision(g.dtype), S_PAD=s_pad, BLOCK_N=cfg.block_n, BLOCK_F=cfg.block_f,
        BLOCK_K=cfg.block_k, ITERS=iters if interpreting() else 0, WEIGHTED=weighted)
    wgrad = wpart[0] if split == 1 else wpart.sum(0)
    bgrad = None if not has_bias else (bpart[0] if split == 1 else bpart.sum(0))
    return wgrad, bgrad


def jet_layer_post(pre: torch.Tensor, omega: float, order: int, dim: int, *, first: bool = False,
                   w0: torch.Tensor | None = None, split: bool = False,
                   lap_w: torch.Tensor | None = None) -> torch.Tensor | Split:
    """Post-activation streams (S, N, F) of a sine layer from its pre-activations ``pre``
    (S, N, F), or (1, N, F) with ``first`` (z only; ``w0`` (F, D) gives a_k, l = 0).
    ``split`` (float32): written as a :class:`fastsiren.jet.Split` for 3xTF32 products;
    ``lap_w``: as in :func:`jet_layer_forward`."""
    pre = check_tensor(pre, "pre")
    w0 = check_tensor(w0, "w0", pre.dtype, pre.device) if first else pre
    lw_ptr, weighted = lap_operand(lap_w, order, dim, pre)
    s = num_streams(order, dim)
    _, n, f = pre.shape
    if pre.shape[0] != (1 if first else s) or (first and w0.shape != (f, dim)):
        raise ValueError(f"pre {tuple(pre.shape)} (first={first}) does not match a layer of order {order} "
                         f"in {dim} dimensions")
    out = pre.new_empty(s, n, f)
    split = split and pre.dtype == torch.float32
    rest = torch.empty_like(out) if split else out
    s_pad = stream_pad(s)
    # order 2 at width 256: 128 registers on sm_90 (benchmarks/results/compile-sm90-grad-ops.json)
    block_n, block_f = max(1, 64 // s_pad), 32
    grid = (triton.cdiv(n, block_n), triton.cdiv(f, block_f))
    _jet_post_kernel[grid](pre, w0, out, rest, lw_ptr, n, *omega_halves(omega),
                           F=f, D=dim, S=s, ORDER=order, FIRST=first, S_PAD=s_pad, BLOCK_N=block_n,
                           BLOCK_F=block_f, SPLIT=split, WEIGHTED=weighted)
    return Split(out, rest) if split else out


def sine_adjoint(g: torch.Tensor, pre: torch.Tensor, omega: float) -> torch.Tensor:
    """Adjoint of an order-0 sine layer's pre-activations, ``g * omega cos(omega pre)``, in one
    pass (the cuBLAS weight-gradient mode: the top sine layer's GEMMs then need no prologue):
    :func:`jet_layer_adjoint` at order 0."""
    if g.shape != pre.shape:
        raise ValueError(f"g {tuple(g.shape)} and pre {tuple(pre.shape)} must have the same shape")
    return jet_layer_adjoint(pre, g, omega, 0, 1)


def jet_layer_adjoint(pre: torch.Tensor, g: torch.Tensor, omega: float, order: int, dim: int,
                      split: bool = False, lap_w: torch.Tensor | None = None) -> torch.Tensor | Split:
    """Adjoints (S, N, F) of a sine layer's pre-activation streams ``pre`` (S, N, F) from the
    adjoints ``g`` (S, N, F) of its post-activation streams: one elementwise pass. ``split``
    (float32): written as a :class:`fastsiren.jet.Split` for 3xTF32 products; ``lap_w``: as in
    :func:`jet_layer_forward`."""
    pre = check_tensor(pre, "pre")
    g = check_tensor(g, "g", pre.dtype, pre.device)
    lw_ptr, weighted = lap_operand(lap_w, order, dim, pre)
    s = num_streams(order, dim)
    if pre.shape[0] != s or g.shape != pre.shape:
        raise ValueError(f"pre {tuple(pre.shape)} and g {tuple(g.shape)} must both be (S={s}, N, F) for a layer "
                         f"of order {order} in {dim} dimensions")
    _, n, f = pre.shape
    out = torch.empty_like(g)
    split = split and g.dtype == torch.float32
    rest = torch.empty_like(out) if split else out
    s_pad = stream_pad(s)
    block_n, block_f = max(1, 64 // s_pad), 32  # as jet_layer_post
    grid = (triton.cdiv(n, block_n), triton.cdiv(f, block_f))
    _jet_adjoint_kernel[grid](pre, g, out, rest, lw_ptr, n, *omega_halves(omega),
                              F=f, D=dim, S=s, ORDER=order, S_PAD=s_pad, BLOCK_N=block_n, BLOCK_F=block_f,
                              SPLIT=split, WEIGHTED=weighted)
    return Split(out, rest) if split else out


def layer_input_streams(pres: Sequence[torch.Tensor], i: int, omegas: Sequence[float | None], order: int,
                        dim: int, z_only: bool, w0: torch.Tensor, split: bool = False,
                        lap_w: torch.Tensor | None = None) -> torch.Tensor | Split:
    """The input streams (S, N, K) of layer i >= 1: layer i-1's kept streams, through its sine
    (``split``: written split for 3xTF32 products; ``lap_w``: the Laplacian's weights)."""
    if omegas[i - 1] is None:
        return pres[i - 1]  # a linear layer keeps its output
    return jet_layer_post(pres[i - 1], omegas[i - 1], order, dim, first=(i == 1 and z_only), w0=w0, split=split,
                          lap_w=lap_w)


def cublas_weight_grads(g: torch.Tensor, x: torch.Tensor, pres: Sequence[torch.Tensor], i: int,
                        omegas: Sequence[float | None], order: int, z_only: bool, weights: Sequence[torch.Tensor],
                        need_w: bool, need_b: bool, g_op: torch.Tensor | Split | None = None,
                        lap_w: torch.Tensor | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Layer i's weight and bias gradients from the adjoints ``g`` (S, N, F) of its
    pre-activations: one cuBLAS product (:func:`fastsiren.jet.mm`) over the stacked streams of its
    materialised input
    (the coordinates themselves for the first layer of an order-0 network)."""
    w_grad = None
    if need_w:
        h = x.unsqueeze(0) if i == 0 else layer_input_streams(pres, i, omegas, order, x.shape[1], z_only, weights[0],
                                                              split=wants_split(x), lap_w=lap_w)
        f, k = weights[i].shape
        g_rows = g_op if g_op is not None else operand(g.reshape(-1, f), tf32_split)
        w_grad = outer_sum(g_rows, operand(h.reshape(-1, k), tf32_split))
    if not need_b:
        return w_grad, None
    g0 = g[0]  # the value stream's adjoints (exactly, from a split g's two parts)
    return w_grad, (g0.dense() if isinstance(g0, Split) else g0).sum(0)


# --------------------------------------------------------------------------- network op


def mlp_streams_forward(x: torch.Tensor, weights: Sequence[torch.Tensor],
                        biases: Sequence[torch.Tensor | None], omegas: Sequence[float | None],
                        order: int, keep: bool, precision: str | None = None,
                        cublas: bool = False, lap_w: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    """Jet of a whole network with the per-layer kernels.

    x (N, D) -> output streams (S, N, out) and, with ``keep``, every layer's pre-activations
    (the first layer's as z only when order >= 1); ``precision`` as in :func:`jet_layer_forward`.
    ``cublas``: the GEMMs through cuBLAS (:func:`fastsiren.jet.mm`) and the jet epilogue as its own kernel
    (config.set_gemm); ``precision`` then does not apply. ``lap_w`` (D,): the Laplacian's
    weights (None: the plain Laplacian).
    """
    dim = x.shape[1]
    h = x.unsqueeze(0)
    pres: list[torch.Tensor | None] = []
    for i, (w, b, om) in enumerate(zip(weights, biases, omegas)):
        if cublas and not (i == 0 and order >= 1):
            # one cuBLAS product over the stacked streams (the bias on the value stream), then the
            # jet epilogue alone (the first layer of a jet keeps its GEMM-free kernel)
            pre = rows_mm(operand(h, tf32_split), w.t())
            if b is not None:
                pre[0] += b
            # a hidden layer's epilogue writes its output split for the next 3xTF32 product
            h = pre if om is None else jet_layer_post(pre, om, order, dim, lap_w=lap_w,
                                                      split=wants_split(x) and i + 1 < len(weights))
            pres.append(pre if keep else None)
            continue
        h, pre = jet_layer_forward(h, w, b, om, order, dim, first=(i == 0 and order >= 1), store_pre=keep,
                                   precision=precision, lap_w=lap_w)
        pres.append(pre)
    return h, pres


def mlp_streams_backward(x: torch.Tensor, weights: Sequence[torch.Tensor],
                         biases: Sequence[torch.Tensor | None], omegas: Sequence[float | None],
                         order: int, pres: Sequence[torch.Tensor], gbar: torch.Tensor,
                         need_x: bool, need_w: Sequence[bool], need_b: Sequence[bool], cublas: bool = False,
                         lap_w: torch.Tensor | None = None):
    """Gradients (x, [W_i], [b_i]) from the adjoints ``gbar`` (S, N, out) of the output
    streams, with the kept pre-activations ``pres``. Entries not needed are None.
    ``cublas``: every GEMM through cuBLAS and each adjoint epilogue its own pass
    (:func:`_streams_backward_cublas`). ``lap_w``: the Laplacian's weights, as in the forward."""
    if cublas:
        return _streams_backward_cublas(x, weights, biases, omegas, order, pres, gbar, need_x, need_w, need_b,
                                        lap_w)
    n_layers, dim = len(weights), x.shape[1]
    # Layer 0 of a jet keeps only z when it is a sine layer (see jet_layer_forward).
    z_only = order >= 1 and omegas[0] is not None
    w_grads: list[torch.Tensor | None] = [None] * n_layers
    b_grads: list[torch.Tensor | None] = [None] * n_layers
    x_grad = None
    g = gbar
    # The top layer's adjoint is fused into the prologues of its two GEMMs; below it, every
    # layer's adjoint is the epilogue of the dgrad kernel that produces it.
    g_omega = omegas[-1]
    cublas = wgrad_mode() == "cublas"
    if cublas and order == 0 and g_omega is not None and (need_w[-1] or need_b[-1]):
        # cuBLAS weight gradients of a sine top layer (e.g. one SineLayer): its adjoint once.
        g, g_omega = sine_adjoint(g, pres[-1], g_omega), None  # (order 0: no Laplacian weights)
    for i in range(n_layers - 1, -1, -1):
        if (need_w[i] or need_b[i]) and g_omega is None and cublas and (i > 0 or order == 0):
            w_grads[i], b_grads[i] = cublas_weight_grads(g, x, pres, i, omegas, order, z_only, weights,
                                                         need_w[i], need_b[i], lap_w=lap_w)
        elif need_w[i] or need_b[i]:
            if i == 0:
                h_kw = dict(h_is_input=True)
            else:
                h_kw = dict(h_omega=omegas[i - 1], h_first=(i == 1 and z_only))
            wg, bg = jet_layer_wgrad(g, x if i == 0 else pres[i - 1], order, dim,
                                     has_bias=biases[i] is not None, omega=g_omega, pre=pres[i],
                                     first=(i == 0 and z_only), w0=weights[0], lap_w=lap_w, **h_kw)
            w_grads[i] = wg if need_w[i] else None
            b_grads[i] = bg if need_b[i] else None
        if i > 0:
            g = jet_layer_dgrad(g, weights[i], order, dim, omega_up=g_omega, pre_up=pres[i],
                                omega=omegas[i - 1], pre=pres[i - 1], first=(i == 1 and z_only),
                                w0=weights[0], lap_w=lap_w)
            g_omega = None
        elif need_x:
            # Only the value stream depends on x (J = e_k and L = 0 are constants).
            x_grad = jet_layer_dgrad(g, weights[0], order, dim, omega_up=g_omega, pre_up=pres[0],
                                     first_up=z_only, w0=weights[0], out_streams=1, lap_w=lap_w)[0]
    return x_grad, w_grads, b_grads


def _streams_backward_cublas(x, weights, biases, omegas, order, pres, gbar, need_x, need_w, need_b, lap_w=None):
    """:func:`mlp_streams_backward` with cuBLAS GEMMs: per layer, the adjoint of its jet
    epilogue in one pass (:func:`jet_layer_adjoint`), then its weight gradient and the adjoint of
    its input streams as two cuBLAS products, as the cuda backend does. The first
    layer of a jet (order >= 1: K = D, its derivative streams are columns of W0) keeps the
    Triton kernels."""
    n_layers, dim = len(weights), x.shape[1]
    z_only = order >= 1 and omegas[0] is not None
    w_grads: list[torch.Tensor | None] = [None] * n_layers
    b_grads: list[torch.Tensor | None] = [None] * n_layers
    x_grad = None
    g = gbar  # adjoints of layer i's output (post-activation) streams
    for i in range(n_layers - 1, -1, -1):
        if i == 0 and order >= 1:
            if need_w[0] or need_b[0]:
                w_grads[0], b_grads[0] = jet_layer_wgrad(g, x, order, dim, has_bias=biases[0] is not None,
                                                         omega=omegas[0], pre=pres[0], first=z_only,
                                                         w0=weights[0], h_is_input=True, lap_w=lap_w)
                w_grads[0] = w_grads[0] if need_w[0] else None
                b_grads[0] = b_grads[0] if need_b[0] else None
            if need_x:
                x_grad = jet_layer_dgrad(g, weights[0], order, dim, omega_up=omegas[0], pre_up=pres[0],
                                         first_up=z_only, w0=weights[0], out_streams=1, lap_w=lap_w)[0]
            break
        if omegas[i] is not None:  # adjoints of the pre-activations (written split for 3xTF32)
            g = jet_layer_adjoint(pres[i], g, omegas[i], order, dim, split=wants_split(x), lap_w=lap_w)
        f = weights[i].shape[0]
        g_op = operand(g.reshape(-1, f), tf32_split)  # split once for both products (3xTF32)
        w_grads[i], b_grads[i] = cublas_weight_grads(g, x, pres, i, omegas, order, z_only, weights,
                                                     need_w[i], need_b[i], g_op, lap_w)
        if i > 0:
            g = rows_mm(g_op, weights[i]).view(*g.shape[:-1], weights[i].shape[1])
        elif need_x:
            x_grad = mm(operand(g[0], tf32_split), weights[0])  # order 0: the value stream alone
    return x_grad, w_grads, b_grads


class MLPJetFunction(torch.autograd.Function):
    """Jet of a sine MLP with the Triton kernels; same signature as the torch backend's
    Function so :func:`fastsiren.jet.double_backward_fallback` serves its double backward.

    ``apply(x, order, omegas, n_layers, save, *weights, *biases[, laplacian_weights])`` -> (value,
    grad, laplacian); ``save``: keep the pre-activations for a backward (False: inference, nothing
    kept); ``laplacian_weights``: a tuple of D floats for a weighted Laplacian (as the torch
    backend's Function takes them), into the kernels as a (D,) tensor.
    """

    @staticmethod
    @autocast_off
    def forward(ctx, x, order, omegas, n_layers, save, *params):
        weights, biases = params[:n_layers], params[n_layers:2 * n_layers]
        ctx.lap_weights = params[2 * n_layers] if len(params) > 2 * n_layers else None
        ctx.lap_w = lap_w = lap_weight_tensor(ctx.lap_weights, x)
        keep = bool(save)
        ctx.cublas = gemm_mode() == "cublas"
        h, pres = mlp_streams_forward(x, weights, biases, omegas, order, keep, cublas=ctx.cublas, lap_w=lap_w)
        ctx.order, ctx.omegas, ctx.n_layers, ctx.dim = order, omegas, n_layers, x.shape[1]
        ctx.set_materialize_grads(False)  # an unused output's adjoint is None (network_grads)
        ctx.has_bias = tuple(b is not None for b in biases)
        if keep:
            ctx.save_for_backward(x, *weights, *[b for b in biases if b is not None],
                                  *[p for p in pres])
        return split_streams(h, order, x.shape[1])

    @staticmethod
    @autocast_off
    def backward(ctx, g_value, g_grad, g_lap):
        order, omegas, n = ctx.order, ctx.omegas, ctx.n_layers
        x, weights, biases, pres = unpack_saved(ctx)
        if backward_by_autograd(g_value, g_grad, g_lap):
            # create_graph=True or batched adjoints: autograd over the reference ops.
            return double_backward_fallback(ctx, x, weights, biases, g_value, g_grad, g_lap)
        gbar = stack_adjoints(g_value, g_grad, g_lap, order, x, weights[-1].shape[0])
        need_w = [ctx.needs_input_grad[5 + i] for i in range(n)]
        need_b = [ctx.needs_input_grad[5 + n + i] and ctx.has_bias[i] for i in range(n)]
        x_grad, w_grads, b_grads = mlp_streams_backward(
            x, weights, biases, omegas, order, pres, gbar, ctx.needs_input_grad[0], need_w, need_b, ctx.cublas,
            ctx.lap_w)
        return network_grads(x_grad, w_grads, b_grads, omegas, g_value) + lap_slot(ctx)
