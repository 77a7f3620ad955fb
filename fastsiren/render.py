"""Dense-grid inference: evaluate a coordinate network on a pixel-centre grid over [-1,1]^d.

Memory stays at the output plus one chunk: the outputs are allocated once and filled chunk
by chunk, and each chunk's coordinates are generated from its flat indices (the whole
(N, d) coordinate grid is never built; for a one-channel 4096^2 image it would be twice the
output). Each chunk goes through the model's no-grad path: on the triton/cuda backends the
per-layer kernels by default, which hold one layer's input and output streams for the chunk, or
the fully fused render kernel (``fastsiren.backends.set_fused_inference(True)``), which holds
none. The default chunk bounds those streams to :data:`GPU_STREAM_BYTES` (:data:`CPU_STREAM_BYTES`
on the CPU), so a jet of order 2 or a wide network renders in smaller chunks.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from fastsiren.jet import Jet

GPU_CHUNK = 1 << 20  # 1M points: coordinates 8 MB (fp32, 2-D), ~1/8 of a 4096^2 one-channel output
CPU_CHUNK = 1 << 16  # activations of a 256-wide layer: 64 MB per stream in fp32
GPU_STREAM_BYTES = 2 << 30  # a chunk's widest layer, input and output streams (1M points x 256 x fp32 x 2)
CPU_STREAM_BYTES = 256 << 20
MIN_CHUNK = 4096


def default_chunk(model, order: int) -> int:
    """Points per pass of :func:`render` when none is given: GPU_CHUNK (CPU_CHUNK), or fewer
    where the widest layer's input and output streams (1 for values, 1 + D with the gradient,
    2 + D with the Laplacian) would pass GPU_STREAM_BYTES (CPU_STREAM_BYTES); at least MIN_CHUNK."""
    from fastsiren.jet import num_streams

    p = next(model.parameters())
    gpu = p.device.type == "cuda"
    widest = max((q.shape[0] for q in model.parameters() if q.dim() == 2), default=1)
    per_point = 2 * num_streams(order, model.in_features) * widest * p.element_size()
    budget = GPU_STREAM_BYTES if gpu else CPU_STREAM_BYTES
    return max(MIN_CHUNK, min(GPU_CHUNK if gpu else CPU_CHUNK, budget // per_point))


def grid_chunk(shape: Sequence[int], start: int, stop: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Rows ``start:stop`` of :func:`fastsiren.data.grid` (pixel centres, axis order), (stop-start, d).

    Each axis is computed in float64 (so the centres round exactly as the grid's do) one column
    at a time, in place: besides the result, a chunk holds its indices and one float64 column
    (a GPU render's peak is the output plus a few chunk-sized buffers; tests/test_triton.py).
    """
    idx = torch.arange(start, stop, device=device, dtype=torch.int32 if stop < 2**31 else torch.int64)
    out = torch.empty(stop - start, len(shape), device=device, dtype=dtype)
    for axis in range(len(shape) - 1, -1, -1):
        size = shape[axis]
        col = torch.remainder(idx, size).to(torch.float64)
        out[:, axis] = col.mul_(2).add_(1).div_(size).sub_(1)
        del col
        if axis:
            idx.div_(size, rounding_mode="floor")
    return out


def render(model, shape: Sequence[int], chunk: int | None = None, order: int = 0, laplacian_weights=None):
    """Evaluate ``model`` (a :class:`fastsiren.layers.CoordinateMLP`) on the grid ``shape``
    (one size per input dimension; an int is a 1-D grid).

    Returns ``(*shape, out)`` for ``order=0``, else a :class:`Jet` with the grid's shape in
    front of each field. ``chunk`` bounds the points per pass (None: :func:`default_chunk`,
    2^20 on a GPU and 2^16 on the CPU for the values of a 256-wide network, fewer for jets and
    wider networks).

    Rendering is inference: no autograd graph is kept. Inside a ``torch.func`` transform
    (``grad``, ``jvp``, ``vmap`` over stacked parameters, ...) the chunks go through the
    differentiable forward / jet instead and are concatenated, so the transform sees the
    parameters' derivatives (a no-grad render would silently give zeros there).

    ``laplacian_weights`` (order 2): the Laplacian field is ``sum_k c_k d2 f / d x_k^2``, as for
    :meth:`fastsiren.layers.CoordinateMLP.jet` (e.g. ``(0, 1, 1)``: a video's spatial Laplacian).
    """
    from fastsiren import backends
    from fastsiren.data import check_shape, is_size
    from fastsiren.functional import check_laplacian_weights, check_order

    check_order(order)
    lap_w = check_laplacian_weights(laplacian_weights, order, model.in_features)
    shape = check_shape(shape)  # an int: a 1-D grid
    if len(shape) != model.in_features:
        raise ValueError(f"shape must have in_features={model.in_features} sizes >= 1, got {shape}")
    p = next(model.parameters())
    if chunk is None:
        chunk = default_chunk(model, order)
    if not is_size(chunk):
        raise ValueError(f"chunk must be a positive int, got {chunk!r}")
    if backends.reference_ops_only():
        return _render_differentiable(model, shape, chunk, order, p, lap_w)
    with torch.no_grad():
        return _render_no_grad(model, shape, chunk, order, p, lap_w)


def _render_no_grad(model, shape: tuple[int, ...], chunk: int, order: int, p: torch.Tensor, lap_w):
    """The outputs allocated once and filled chunk by chunk through the model's inference path."""
    n, d, out = math.prod(shape), len(shape), model.out_features
    value = torch.empty(n, out, device=p.device, dtype=p.dtype)
    grad = torch.empty(n, out, d, device=p.device, dtype=p.dtype) if order >= 1 else None
    lap = torch.empty(n, out, device=p.device, dtype=p.dtype) if order == 2 else None
    for i in range(0, n, chunk):
        j = min(n, i + chunk)
        jet = model._infer_flat(grid_chunk(shape, i, j, p.device, p.dtype), order, lap_w)
        value[i:j] = jet.value
        if grad is not None:
            grad[i:j] = jet.grad
        if lap is not None:
            lap[i:j] = jet.laplacian
    result = Jet(value, grad, lap).reshape(shape)
    return result.value if order == 0 else result


def _render_differentiable(model, shape: tuple[int, ...], chunk: int, order: int, p: torch.Tensor, lap_w):
    """Each chunk through ``model(x)`` / ``model.jet(x)``, joined by ``torch.cat`` (transform-safe:
    no in-place writes of transformed tensors into plain ones)."""
    n = math.prod(shape)
    parts = []
    for i in range(0, n, chunk):
        x = grid_chunk(shape, i, min(n, i + chunk), p.device, p.dtype)
        parts.append(Jet(model(x), None, None) if order == 0 else model.jet(x, order, lap_w))
    result = Jet(torch.cat([j.value for j in parts]),
                 torch.cat([j.grad for j in parts]) if order >= 1 else None,
                 torch.cat([j.laplacian for j in parts]) if order == 2 else None).reshape(shape)
    return result.value if order == 0 else result
