"""Fused elementwise steps of the reverse-mode gradient (:func:`fastsiren.jet.reverse_grad_function`).

The reverse-mode order-1 jet (value and input gradient, the Poisson gradient loss) is GEMM
bound: 6 GEMMs per hidden layer and training step, which run through cuBLAS
(``fastsiren.jet.mm``, at the GEMM precision of ``backends.set_gemm_precision``). What is
left are elementwise passes over (N, F) tensors, which the torch ops of
:class:`fastsiren.jet.GradOps` make in two or three passes each; the kernels here make each
step one pass, with the range-reduced ``sin_cos`` of the jet kernels (a GPU may lower
``tl.sin`` to an approximate instruction):

``sin_cos``          ``h = sin z`` (in place) and ``c = cos z``: one read, two writes.
``reverse_adjoint``  ``t = sum_o r_o dbar_o`` and ``rbar = dbar c`` (in place in dbar).
``forward_adjoint``  ``zbar = hbar c - h t`` (into hbar's or t's memory where those are ours).
``split``            the TF32 split of a GEMM operand for 3xTF32 products (one pass,
                     ``jet_layer.tf32_split``).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .jet_layer import check_tensor, tf32_split
from .jet_math import sin_cos

BLOCK = 1024
BLOCK_N, BLOCK_F = 32, 64


@triton.jit
def _sin_cos_kernel(z_ptr, c_ptr, numel, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    s, c = sin_cos(tl.load(z_ptr + offs, mask=mask, other=0.0))
    tl.store(z_ptr + offs, s, mask=mask)
    tl.store(c_ptr + offs, c, mask=mask)


@triton.jit
def _reverse_adjoint_kernel(r_ptr, d_ptr, c_ptr, t_ptr, N, F, r_so, r_sn,
                            OUTS: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr):
    n = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    f = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
    mask = (n[:, None] < N) & (f[None, :] < F)
    off = n[:, None] * F + f[None, :]
    roff = n[:, None] * r_sn + f[None, :]
    c = tl.load(c_ptr + off, mask=mask, other=0.0)
    t = tl.zeros((BLOCK_N, BLOCK_F), dtype=c.dtype)
    for o in tl.static_range(OUTS):
        # row o * N + n of the (O * N, F) stack, in int64 (n is): O * N * F passes 2^31 at 8M points x 256
        doff = (o * N + n[:, None]) * F + f[None, :]
        r = tl.load(r_ptr + (tl.zeros((1, 1), tl.int64) + o) * r_so + roff, mask=mask, other=0.0)
        d = tl.load(d_ptr + doff, mask=mask, other=0.0)
        t += r * d
        tl.store(d_ptr + doff, d * c, mask=mask)
    tl.store(t_ptr + off, t, mask=mask)


@triton.jit
def _forward_adjoint_kernel(hbar_ptr, c_ptr, h_ptr, t_ptr, out_ptr, numel, HAS_HBAR: tl.constexpr,
                            HAS_T: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    if HAS_HBAR:
        zbar = tl.load(hbar_ptr + offs, mask=mask, other=0.0) * tl.load(c_ptr + offs, mask=mask, other=0.0)
        if HAS_T:
            zbar -= tl.load(h_ptr + offs, mask=mask, other=0.0) * tl.load(t_ptr + offs, mask=mask, other=0.0)
    else:
        zbar = -(tl.load(h_ptr + offs, mask=mask, other=0.0) * tl.load(t_ptr + offs, mask=mask, other=0.0))
    tl.store(out_ptr + offs, zbar, mask=mask)


class TritonGradOps:
    """:class:`fastsiren.jet.GradOps` as fused Triton kernels (same contracts)."""

    split = staticmethod(tf32_split)

    @staticmethod
    def sin_cos(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = check_tensor(z, "z")
        c = torch.empty_like(z)
        _sin_cos_kernel[(triton.cdiv(z.numel(), BLOCK),)](z, c, z.numel(), BLOCK=BLOCK)
        return z, c

    @staticmethod
    def reverse_adjoint(r: torch.Tensor, dbar: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dbar = check_tensor(dbar, "dbar")
        c = check_tensor(c, "c", dbar.dtype, dbar.device)
        n_out, n, f = dbar.shape
        if r.shape != dbar.shape or c.shape != (n, f):
            raise ValueError(f"r {tuple(r.shape)}, dbar {tuple(dbar.shape)} and c {tuple(c.shape)} "
                             "must be (O, N, F), (O, N, F) and (N, F)")
        if r.stride(2) != 1:  # broadcasts over N or O keep their zero strides; F must be unit
            r = r.contiguous()
        if r.dtype != dbar.dtype or r.device != dbar.device:  # not check_tensor: it would copy a broadcast
            raise TypeError(f"r is {r.dtype} on {r.device} but dbar is {dbar.dtype} on {dbar.device}")
        t = torch.empty_like(c)
        grid = (triton.cdiv(n, BLOCK_N), triton.cdiv(f, BLOCK_F))
        _reverse_adjoint_kernel[grid](r, dbar, c, t, n, f, r.stride(0), r.stride(1),
                                      OUTS=n_out, BLOCK_N=BLOCK_N, BLOCK_F=BLOCK_F)
        return t, dbar

    @staticmethod
    def forward_adjoint(hbar: torch.Tensor | None, c: torch.Tensor, h: torch.Tensor, t: torch.Tensor | None,
                        own_hbar: bool) -> torch.Tensor:
        if hbar is None and t is None:
            raise ValueError("forward_adjoint needs hbar or t")
        c = check_tensor(c, "c")
        h = check_tensor(h, "h", c.dtype, c.device)
        if hbar is not None:
            hbar = check_tensor(hbar, "hbar", c.dtype, c.device)
        if t is not None:
            t = check_tensor(t, "t", c.dtype, c.device)
        for name, v in (("hbar", hbar), ("h", h), ("t", t)):
            if v is not None and v.shape != c.shape:
                raise ValueError(f"{name} {tuple(v.shape)} must have the shape of c {tuple(c.shape)}")
        out = hbar if (hbar is not None and own_hbar) else (t if t is not None else torch.empty_like(c))
        _forward_adjoint_kernel[(triton.cdiv(c.numel(), BLOCK),)](
            hbar if hbar is not None else c, c, h, t if t is not None else c, out, c.numel(),
            HAS_HBAR=hbar is not None, HAS_T=t is not None, BLOCK=BLOCK)
        return out
