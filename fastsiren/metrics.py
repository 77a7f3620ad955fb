"""Image and video metrics: PSNR, SSIM, Y-channel PSNR (SISR protocol), Middlebury IE/NIE.

Every function takes NumPy arrays or tensors (H, W) or (H, W, C) (:func:`mse` and :func:`psnr`
any shape, pred and target alike) and returns a Python float; each states its data range:
nothing guesses the range of the data.
"""

from __future__ import annotations

import numbers

import numpy as np

from fastsiren.functional import check_positive


def _np(a, name: str = "image") -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if np.iscomplexobj(a):
        raise ValueError(f"{name} is complex ({a.dtype}); expected real values")
    return np.asarray(a, dtype=np.float64)


def _same_shape(pred, target) -> tuple[np.ndarray, np.ndarray]:
    p, t = _np(pred, "pred"), _np(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred has shape {p.shape} but target has {t.shape}")
    if p.size == 0:
        raise ValueError(f"pred and target are empty (shape {p.shape}); expected images with pixels")
    return p, t


def _image(p: np.ndarray, what: str, min_side: int = 1) -> None:
    """Check ``p`` is an image (H, W) or (H, W, C) with sides of at least ``min_side``."""
    if p.ndim not in (2, 3) or min(p.shape[:2]) < min_side:
        raise ValueError(f"{what} needs images (H, W) or (H, W, C)"
                         + (f" of at least {min_side}x{min_side}" if min_side > 1 else "") + f", got shape {p.shape}")


def mse(pred, target) -> float:
    """Mean squared error over every element of ``pred`` and ``target`` (any equal shape)."""
    p, t = _same_shape(pred, target)
    return float(np.mean((p - t) ** 2))


def psnr(pred, target, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)`` (inf if equal), of
    arrays of any equal shape; ``data_range`` (finite, > 0) is the span of the values (2 for
    [-1, 1])."""
    data_range = check_positive(data_range, "data_range")
    m = mse(pred, target)
    return float("inf") if m == 0 else float(10 * np.log10(data_range ** 2 / m))


SSIM_WINDOW = 7  # scikit-image's default window side: the smallest image side SSIM takes


def ssim(pred, target, data_range: float) -> float:
    """SSIM (scikit-image's default: a uniform 7x7 window, no Gaussian weighting) of images
    (H, W) or (H, W, C) of at least 7x7, channels averaged for (H, W, C); ``data_range``
    (finite, > 0) is the span of the values."""
    from skimage.metrics import structural_similarity

    data_range = check_positive(data_range, "data_range")
    p, t = _same_shape(pred, target)
    _image(p, "ssim", SSIM_WINDOW)
    if p.ndim == 3 and p.shape[-1] == 1:
        p, t = p[..., 0], t[..., 0]
    kw = {"channel_axis": -1} if p.ndim == 3 else {}
    return float(structural_similarity(p, t, data_range=data_range, **kw))


def rgb_to_y(img) -> np.ndarray:
    """ITU-R BT.601 luma of an RGB image in [0, 1] -> Y in [16, 235] / 255 (MATLAB rgb2ycbcr)."""
    a = _np(img)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"rgb_to_y needs an (H, W, 3) image, got shape {a.shape}")
    return (16.0 + a @ np.array([65.481, 128.553, 24.966])) / 255.0


def _crop(a: np.ndarray, border: int) -> np.ndarray:
    if not isinstance(border, numbers.Integral) or isinstance(border, (bool, np.bool_)):
        raise TypeError(f"border must be an int >= 0 (pixels cropped per side), got {type(border).__name__} "
                        f"{border!r}")
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    if border == 0:
        return a
    if 2 * border >= min(a.shape[:2]):
        raise ValueError(f"border {border} leaves nothing of an image of shape {a.shape}")
    return a[border:-border, border:-border]


def _y_cropped(pred, target, border: int) -> tuple[np.ndarray, np.ndarray]:
    """Y channels (RGB in [0, 1]; gray used as it is) with ``border`` pixels cropped per side."""
    p, t = _same_shape(pred, target)
    if p.ndim not in (2, 3) or (p.ndim == 3 and p.shape[-1] not in (1, 3)):
        raise ValueError(f"the Y-channel metrics need gray (H, W), (H, W, 1) or RGB (H, W, 3) images, "
                         f"got shape {p.shape}")
    if p.ndim == 3 and p.shape[-1] == 3:
        p, t = rgb_to_y(p), rgb_to_y(t)
    elif p.ndim == 3 and p.shape[-1] == 1:
        p, t = p[..., 0], t[..., 0]
    return _crop(p, border), _crop(t, border)


def psnr_y(pred, target, border: int = 0) -> float:
    """PSNR on the Y channel after cropping ``border`` pixels on each side: the SISR
    benchmarks' protocol (RGB in [0, 1], data range 1)."""
    return psnr(*_y_cropped(pred, target, border), 1.0)


def ssim_y(pred, target, border: int = 0) -> float:
    """SSIM on the Y channel with a border crop (SISR protocol; RGB in [0, 1])."""
    return ssim(*_y_cropped(pred, target, border), 1.0)


def _as_hwc(a: np.ndarray) -> np.ndarray:
    return a[..., None] if a.ndim == 2 else a


def interpolation_error(pred, target) -> float:
    """Middlebury interpolation error: RMS over pixels of the colour difference's L2 norm
    over channels. Use the data's own units (Middlebury: 8-bit values 0..255)."""
    p, t = _same_shape(pred, target)
    _image(p, "interpolation_error")
    p, t = _as_hwc(p), _as_hwc(t)
    return float(np.sqrt(np.mean(np.sum((p - t) ** 2, axis=-1))))


def normalized_interpolation_error(pred, target, eps: float = 1.0) -> float:
    """Middlebury normalized IE: RMS of ||pred - gt|| / sqrt(||grad gt||^2 + eps), the gradient
    by central differences and its squared norm summed over channels (8-bit units, eps = 1)."""
    eps = check_positive(eps, "eps")
    p, t = _same_shape(pred, target)
    _image(p, "normalized_interpolation_error", 2)  # central differences need 2 pixels a side
    p, t = _as_hwc(p), _as_hwc(t)
    gy, gx = np.gradient(t, axis=(0, 1))
    gnorm2 = np.sum(gx ** 2 + gy ** 2, axis=-1)
    diff2 = np.sum((p - t) ** 2, axis=-1)
    return float(np.sqrt(np.mean(diff2 / (gnorm2 + eps))))
