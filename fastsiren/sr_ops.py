"""Resampling for super-resolution: MATLAB-style ``imresize`` as a differentiable operator,
and the SRCNN baseline network.

``imresize`` (and the SISR benchmarks that use it to make LR images) resamples each axis
with a separable kernel; for an output size ``m`` and input size ``n`` (scale ``s = m/n``)
output pixel ``x`` (1-based) sits at input position ``u = x/s + (1 - 1/s)/2``, i.e. pixel
centres of the two grids are aligned over the same extent (exactly the pixel-centre grids of
:func:`fastsiren.data.grid`). When shrinking with antialiasing the kernel is stretched by
``1/s`` (``h(x) = s k(s x)``), rows are normalised to sum 1, and samples beyond the border are
mirrored (``[1..n, n..1]``). Each axis is therefore one fixed matrix ``(m, n)``, and resizing an
image ``(H, W, C)`` is ``R_h @ img @ R_w^T``: linear, differentiable, and cheap for the sizes
used here, so a network can backpropagate through the degradation.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import nn

# kernel name -> (function, support width in input pixels at scale 1)
KERNELS = ("cubic", "lanczos3", "box")


def cubic_kernel(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel (``a = -0.5``, MATLAB's ``cubic``), support [-2, 2]."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (a + 2) * ax3 - (a + 3) * ax2 + 1
    far = a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a
    return np.where(ax <= 1, near, np.where(ax < 2, far, 0.0))


def lanczos3_kernel(x: np.ndarray) -> np.ndarray:
    """Lanczos kernel with 3 lobes (MATLAB's ``lanczos3``), support [-3, 3]."""
    return np.where(np.abs(x) < 3, np.sinc(x) * np.sinc(x / 3), 0.0)


def box_kernel(x: np.ndarray) -> np.ndarray:
    """Box kernel [-0.5, 0.5) (MATLAB's ``box``; ``nearest`` without antialiasing)."""
    return ((x >= -0.5) & (x < 0.5)).astype(np.float64)


_KERNEL_FN = {"cubic": (cubic_kernel, 4.0), "lanczos3": (lanczos3_kernel, 6.0), "box": (box_kernel, 1.0)}


@lru_cache(maxsize=64)
def _resize_matrix_np(in_size: int, out_size: int, kernel: str, antialias: bool) -> np.ndarray:
    fn, width = _KERNEL_FN[kernel]
    scale = out_size / in_size
    if scale < 1 and antialias:
        def h(x):
            return scale * fn(scale * x)

        width = width / scale
    else:
        h = fn
    x = np.arange(1, out_size + 1, dtype=np.float64)[:, None]
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left + np.arange(taps)[None, :]                 # (out, taps), 1-based input indices
    w = h(u - idx)
    w = w / w.sum(1, keepdims=True)
    mirror = np.concatenate([np.arange(1, in_size + 1), np.arange(in_size, 0, -1)])
    idx = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_size)] - 1  # 0-based, mirrored at borders
    mat = np.zeros((out_size, in_size))
    np.add.at(mat, (np.repeat(np.arange(out_size), taps), idx.ravel()), w.ravel())
    mat.setflags(write=False)
    return mat


def resize_matrix(in_size: int, out_size: int, kernel: str = "cubic", antialias: bool = True,
                  dtype=torch.float32, device=None) -> torch.Tensor:
    """The ``(out_size, in_size)`` matrix of MATLAB ``imresize`` along one axis.

    ``kernel``: ``cubic`` (Keys, a = -0.5), ``lanczos3`` or ``box`` (nearest neighbour when
    not antialiased). Each row sums to 1, so constant signals are preserved exactly.
    """
    for name, v in (("in_size", in_size), ("out_size", out_size)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if kernel not in _KERNEL_FN:
        raise ValueError(f"kernel={kernel!r} is not known; expected one of {list(KERNELS)}")
    mat = _resize_matrix_np(int(in_size), int(out_size), kernel, bool(antialias))
    return torch.tensor(mat, dtype=dtype, device=device)


def resize(img: torch.Tensor, size: tuple[int, int], kernel: str = "cubic",
           antialias: bool = True) -> torch.Tensor:
    """Resize ``img`` (H, W, C) to ``size = (h, w)`` like MATLAB ``imresize`` (no rounding).

    Differentiable in ``img``; the result is ``(h, w, C)`` in the dtype and device of ``img``.
    """
    if not isinstance(img, torch.Tensor) or img.dim() != 3:
        raise ValueError(f"img must be a tensor (H, W, C), got {getattr(img, 'shape', type(img).__name__)}")
    h, w = (int(s) for s in size)
    rh = resize_matrix(img.shape[0], h, kernel, antialias, img.dtype, img.device)
    rw = resize_matrix(img.shape[1], w, kernel, antialias, img.dtype, img.device)
    return torch.einsum("ih,hwc,jw->ijc", rh, img, rw)


def imresize(img: np.ndarray, size: tuple[int, int], kernel: str = "cubic",
             antialias: bool = True) -> np.ndarray:
    """NumPy convenience: float (H, W, C) in [0, 1] -> float64 (h, w, C), not clipped."""
    # contiguous: a flipped or strided view (img[::-1]) is a valid image too
    return resize(torch.from_numpy(np.ascontiguousarray(img, dtype=np.float64)), size, kernel, antialias).numpy()


def quantize(img: np.ndarray) -> np.ndarray:
    """Round to 8 bits like an ``imresize`` on uint8 data / a saved PNG: float in [0, 1]."""
    return np.round(np.clip(img, 0.0, 1.0) * 255.0) / 255.0


# ---------------------------------------------------------------- SRCNN

class SRCNN(nn.Module):
    """SRCNN (Dong et al. 2014), 9-1-5 with ``f1``/``f2`` filters, on the Y channel.

    Input: the bicubic upsampling (N, 1, H, W) of the LR luma in [0, 1]; output the same shape.
    Two departures from the paper, both for a training run of minutes on one CPU core: the
    network adds its output to the input (residual learning, as VDSR), and replicate padding
    keeps the size so every pixel is predicted.
    """

    def __init__(self, f1: int = 64, f2: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, f1, 9, padding=4, padding_mode="replicate")
        self.conv2 = nn.Conv2d(f1, f2, 1)
        self.conv3 = nn.Conv2d(f2, 1, 5, padding=2, padding_mode="replicate")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(h))
        return x + self.conv3(h)
