"""Single-image super-resolution (SISR) with SIREN, and the classical and learned baselines.

The network maps pixel-centre coordinates in [-1, 1]^2 to colour; LR and HR grids cover the
same extent, so the LR pixel ``i`` of ``n`` and HR pixel ``j`` of ``m`` sit where the
MATLAB ``imresize`` mapping puts them (:mod:`fastsiren.sr_ops`).

Methods
-------
- ``nearest``, ``bicubic``, ``lanczos3``: MATLAB ``imresize`` upsampling.
- ``srcnn``: SRCNN 9-1-5 on the bicubic luma, weights trained by :mod:`fastsiren.tasks.sr_train`.
- ``siren-naive``: fit the LR pixels at their pixel-centre coordinates, render the HR grid.
- ``siren-consistent``: render the HR grid, downsample it with the *same* operator that made
  the LR image, match the LR image (Deep Image Prior's and WIRE's SISR recipe), plus a
  total-variation prior computed from the network's analytic gradient (``model.jet(order=1)``)
  on a random subset of HR points each step. Stopping rule (never looks at the ground truth):
  the discrepancy principle (stop once the LR residual RMS, averaged over 20 steps, falls to the
  8-bit quantisation noise of the LR image, 1/(255 sqrt 12)), a plateau test on the data term,
  or the budget.

Rules that set the SIREN per scale (not per image): ``omega_0 = omega_per_px * n_lr`` with
``n_lr`` the LR image's longer side, so the network's first-layer bandwidth per LR pixel is
the same at every scale and size; the step budget grows with the scale
(``steps * (1 + (scale - 2) / 4)``) because larger scales leave more of the HR grid to fill.

Each method's output and results row go to the run folder's ``parts/`` as soon as the method
finishes, and a SIREN fit keeps its checkpoint there (every 100 steps and on Ctrl-C; after the
fit, the fitted model; :class:`fastsiren.tasks.common.Parts`): ``--resume`` takes the finished
methods from there and continues the fit that was cut short. Both modes draw
``comparison.png``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import torch

from fastsiren import data, functional, metrics
from fastsiren.layers import Siren, count_params
from fastsiren.sr_ops import SRCNN, imresize, quantize, resize_matrix
from fastsiren.tasks import common

BASELINES = ("nearest", "bicubic", "lanczos3", "srcnn")
SIREN_METHODS = ("siren-naive", "siren-consistent")
METHODS = BASELINES + SIREN_METHODS
WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "srcnn_y.pt"
RULES = ("omega_0 = omega_per_px x (LR longer side in px); hidden omega_0 = 30; steps = steps x (1 + (scale - 2) / 4), "
         "Adam with cosine decay; consistent fit stops at the discrepancy principle (LR residual RMS over 20 "
         "steps <= 8-bit quantisation RMS), a 1% plateau of the data term over 100 steps, or the budget")
QUANT_RMS = 1.0 / (255.0 * math.sqrt(12.0))  # RMS of 8-bit rounding noise, data range 1


# Ctrl-C message of `fastsiren sr` and the help of its --resume: finished methods and a fit's checkpoint
INTERRUPT_HINT = ("interrupted: the methods that finished and the running fit's checkpoint are kept in the run "
                  "folder (parts/); rerun with --resume to go on from there")
RESUME_HELP = ("take the methods that finished from this run folder's parts/, continue the fit that was cut short "
               "from its checkpoint there and run the rest; the config must be the same")


@dataclasses.dataclass
class SRConfig:
    """Settings of one SR run; ``profile`` fills what is left as None."""

    image: str = "camera"
    scale: float = 2.0
    upscale: bool = False
    crop: int | None = None
    steps: int | None = None
    lr: float | None = None
    hidden: int | None = None
    layers: int | None = None
    omega_per_px: float | None = None
    tv: float | None = None
    tv_points: int | None = None
    tile: int | None = None
    methods: tuple[str, ...] = METHODS
    backend: str = "auto"
    device: str = "auto"
    seed: int = 0
    out: str = "runs/sr"
    profile: str = "cpu"
    render_chunk: int | None = None
    resume: bool = False
    progress: bool = True


# crop: HR centre-crop side in evaluate mode (0 = whole image); steps: SIREN Adam steps at x2;
# tile: LR tile side of one consistent-fit step (0 = the whole LR image)
PROFILE_DEFAULTS = {
    "quick": dict(crop=24, steps=60, lr=5e-3, hidden=32, layers=1, omega_per_px=0.5, tv=2e-3,
                  tv_points=256, tile=32),
    "cpu": dict(crop=96, steps=300, lr=2e-3, hidden=64, layers=2, omega_per_px=0.5, tv=2e-3,
                tv_points=2048, tile=64),
    "paper": dict(crop=0, steps=2000, lr=2e-4, hidden=256, layers=3, omega_per_px=0.5, tv=2e-3,
                  tv_points=16384, tile=0),
}


# The most pixels `fastsiren sr --upscale` renders (16384 x 16384): its output, the HR grid's
# coordinates and the image files are that many values each.
MAX_UPSCALE_PIXELS = 1 << 28


def resolve(config: SRConfig) -> SRConfig:
    """Fill profile defaults and validate every setting before any work starts."""
    cfg = common.fill_profile(config, PROFILE_DEFAULTS)
    if not (isinstance(cfg.scale, (int, float)) and math.isfinite(cfg.scale) and cfg.scale >= 1):
        raise ValueError(f"scale must be a number >= 1, got {cfg.scale!r}")
    if cfg.scale == 1 and not cfg.upscale:
        raise ValueError("scale 1 leaves nothing to evaluate: the LR image would be the HR image itself "
                         "(bicubic's PSNR infinite); evaluate at a scale > 1, or fit one image with "
                         "`fastsiren sr --upscale`")
    for name in ("steps", "hidden", "tv_points"):
        common.positive(name, getattr(cfg, name), int)
    for name in ("lr", "omega_per_px"):
        common.positive(name, getattr(cfg, name))
    common.non_negative("tv", cfg.tv)
    if cfg.tile < 0:
        raise ValueError(f"tile must be >= 0 (0 = whole LR image per step), got {cfg.tile}")
    if cfg.crop < 0:
        raise ValueError(f"crop must be >= 0 (0 = whole image), got {cfg.crop}")
    if cfg.layers < 0:
        raise ValueError(f"layers must be >= 0, got {cfg.layers}")
    common.positive("render_chunk", cfg.render_chunk, int)
    unknown = [m for m in cfg.methods if m not in METHODS]
    if unknown or not cfg.methods:
        raise ValueError(f"methods {unknown or '[]'} not known; expected a subset of {list(METHODS)}")
    if cfg.upscale and "siren-consistent" not in cfg.methods:
        raise ValueError("--upscale writes the siren-consistent result; keep it in --methods")
    return cfg


# ---------------------------------------------------------------- data

def sizes_for(hr_shape: tuple[int, int], scale: float, crop: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """HR and LR sizes of the evaluate protocol: the HR image is centre-cropped to ``crop``
    (0 = whole), then to ``n_lr * s`` with ``n_lr`` the largest LR size (within 8 below
    ``floor(n / s)``) for which ``n_lr * s`` is an integer: the benchmarks' modcrop for integer
    scales, and even LR sizes for x2.5. A scale with no such size rounds ``n_lr * s``; the
    resize operator then uses the exact size ratio, so LR and HR grids still align."""
    h, w = hr_shape
    if crop:
        h, w = min(h, crop), min(w, crop)

    def lr_side(n: int) -> int:
        top = int(math.floor(n / scale + 1e-9))
        for k in range(top, max(top - 8, 1), -1):
            if abs(k * scale - round(k * scale)) < 1e-6:
                return k
        return top

    lr = (lr_side(h), lr_side(w))
    hr = (int(round(lr[0] * scale)), int(round(lr[1] * scale)))
    # the scores crop ceil(scale) px per side and SSIM needs a 7x7 window in what is left
    need = max(2 * math.ceil(scale) + 7, math.ceil(2 * scale))
    if min(lr) < 2 or min(hr) < need:
        raise ValueError(f"an HR image of {h}x{w} is too small for scale {scale}: the LR image would be "
                         f"{lr[0]}x{lr[1]}; evaluating needs an HR image (after --crop) of at least "
                         f"{need} pixels a side")
    return hr, lr


def center_crop(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = img.shape[:2]
    top, left = (h - shape[0]) // 2, (w - shape[1]) // 2
    return img[top:top + shape[0], left:left + shape[1]]


def degrade(hr: np.ndarray, lr_shape: tuple[int, int]) -> np.ndarray:
    """The benchmark LR image: MATLAB bicubic antialiased downsampling, rounded to 8 bits."""
    return quantize(imresize(hr, lr_shape, "cubic", antialias=True))


# ---------------------------------------------------------------- baselines

def upsample(lr: np.ndarray, hr_shape: tuple[int, int], method: str) -> np.ndarray:
    """``nearest`` / ``bicubic`` / ``lanczos3`` upsampling (MATLAB ``imresize``) in [0, 1]."""
    kernel = {"nearest": "box", "bicubic": "cubic", "lanczos3": "lanczos3"}[method]
    return np.clip(imresize(lr, hr_shape, kernel, antialias=method != "nearest"), 0, 1)


def load_srcnn(path: Path = WEIGHTS) -> SRCNN:
    """The committed SRCNN weights (trained by ``python -m fastsiren.tasks.sr_train``)."""
    if not path.exists():
        raise FileNotFoundError(f"SRCNN weights not found at {path}; train them with "
                                "`python -m fastsiren.tasks.sr_train`")
    ck = torch.load(path, map_location="cpu", weights_only=True)
    net = SRCNN(int(ck["f1"]), int(ck["f2"]))
    net.load_state_dict(ck["state_dict"])
    return net.eval()


def srcnn_upsample(lr: np.ndarray, hr_shape: tuple[int, int], net: SRCNN) -> np.ndarray:
    """SRCNN on the luma of the bicubic upsampling; chroma stays bicubic (the paper's protocol)."""
    bic = upsample(lr, hr_shape, "bicubic")
    y = luma(bic)
    if bic.shape[-1] == 3:
        cb = (128.0 + bic @ np.array([-37.797, -74.203, 112.0])) / 255.0
        cr = (128.0 + bic @ np.array([112.0, -93.786, -18.214])) / 255.0
    with torch.no_grad():
        y_sr = net(torch.from_numpy(y).float()[None, None])[0, 0].double().numpy()
    if bic.shape[-1] == 1:
        return np.clip(y_sr, 0, 1)[..., None]
    return np.clip(ycbcr_to_rgb(y_sr, cb, cr), 0, 1)


def luma(img: np.ndarray) -> np.ndarray:
    """(H, W, 3|1) in [0, 1] -> (H, W): BT.601 Y of a colour image, the channel of a gray one."""
    return metrics.rgb_to_y(img) if img.shape[-1] == 3 else img[..., 0]


def ycbcr_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Inverse of MATLAB ``rgb2ycbcr`` (BT.601, studio range), all in [0, 1] units."""
    ycc = np.stack([y * 255 - 16, cb * 255 - 128, cr * 255 - 128], -1)
    inv = np.linalg.inv(np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0],
                                  [112.0, -93.786, -18.214]]))
    return ycc @ inv.T


# ---------------------------------------------------------------- SIREN

def siren_rules(cfg: SRConfig, lr_shape: tuple[int, int], scale: float) -> tuple[float, int]:
    """``omega_0`` and the step budget for one image and scale, by the rules of the module doc."""
    omega = functional.check_omega(cfg.omega_per_px * max(lr_shape),
                                   f"omega_0 = omega_per_px ({cfg.omega_per_px:g}) x {max(lr_shape)} px")
    steps = int(round(cfg.steps * (1 + (scale - 2) / 4)))
    return omega, max(1, steps)


def make_siren(cfg: SRConfig, channels: int, omega: float, device: torch.device) -> Siren:
    return Siren(2, cfg.hidden, cfg.layers, channels, first_omega_0=omega, hidden_omega_0=30.0,
                 backend=cfg.backend).to(device)


def _optimize(model, loss_fn, steps: int, lr: float, stop=None, desc: str = "", progress: bool = True,
              checkpoint: Path | None = None, extra_state=None) -> tuple[int, str]:
    """Adam with cosine decay of the learning rate (:func:`fastsiren.tasks.common.train`);
    ``stop(step, loss_terms) -> reason | None`` ends early. ``checkpoint``: the fit's checkpoint
    file (every 100 steps and on Ctrl-C; continued from where it exists). Returns (steps run,
    reason)."""
    state = common.train(model, loss_fn, steps=steps, lr=lr, checkpoint=checkpoint, checkpoint_every=100,
                         resume=checkpoint is not None, log_every=steps, desc=desc, progress=progress,
                         schedule=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps,
                                                                                        eta_min=lr * 0.05),
                         stop=stop, extra_state=extra_state)
    return state.step, state.stopped or "budget"


def siren_naive(lr_img: np.ndarray, hr_shape: tuple[int, int], cfg: SRConfig, omega: float, steps: int,
                device: torch.device, checkpoint: Path | None = None) -> tuple[np.ndarray, dict]:
    """Fit the LR pixels at their pixel-centre coordinates, render the HR grid (model.render).
    ``checkpoint``: the fit's checkpoint file (:func:`_optimize`)."""
    h, w, c = lr_img.shape
    model = make_siren(cfg, c, omega, device)
    coords = data.grid((h, w), device=device)
    target = data.image_to_tensor(lr_img * 2 - 1, device)

    def loss_fn():
        loss = ((model(coords) - target) ** 2).mean()
        return loss, {"data": loss.detach()}

    run, reason = _optimize(model, loss_fn, steps, cfg.lr, desc="siren-naive", progress=cfg.progress,
                            checkpoint=checkpoint)
    out = model.render(hr_shape, chunk=cfg.render_chunk)
    sr = ((out.double().cpu().numpy() + 1) / 2).clip(0, 1)
    return sr, {"steps": run, "stop": reason, "params": count_params(model), "omega": omega}


def hr_support(mat: torch.Tensor, lo: int, hi: int) -> tuple[int, int]:
    """The HR index range ``[a, b)`` that rows ``lo:hi`` of a downsampling matrix (n_lr, n_hr)
    touch: ``mat[lo:hi] @ x == mat[lo:hi, a:b] @ x[a:b]`` for any ``x``."""
    nz = (mat[lo:hi] != 0).any(0).nonzero()
    return int(nz.min()), int(nz.max()) + 1


def siren_consistent(lr_img: np.ndarray, hr_shape: tuple[int, int], cfg: SRConfig, omega: float,
                     steps: int, device: torch.device, checkpoint: Path | None = None) -> tuple[np.ndarray, dict]:
    """Render the HR grid, downsample with the LR operator, match the LR image; TV prior on the
    analytic gradient (``model.jet(order=1)``) at ``tv_points`` random HR points per step.

    With ``cfg.tile`` smaller than the LR image, each step takes a random LR tile and renders
    only the HR rows/columns its downsampling rows touch: the same loss restricted to that
    tile (exact, not approximate), so the memory of a step is bounded for any image size.
    Shapes: ``lr_img`` (h, w, C) in [0, 1]; returns the HR image (H, W, C) in [0, 1].
    ``checkpoint``: the fit's checkpoint file (:func:`_optimize`), with the tile sampler's state
    and the stopping rule's running data term.
    """
    h, w, c = lr_img.shape
    H, W = hr_shape
    model = make_siren(cfg, c, omega, device)
    dh = resize_matrix(H, h, "cubic", True, device=device)
    dw = resize_matrix(W, w, "cubic", True, device=device)
    ax_h, ax_w = data.axis_coords(H, device=device), data.axis_coords(W, device=device)
    target = torch.from_numpy(lr_img * 2 - 1).float().to(device)  # network range [-1, 1]
    # d/d(HR pixel) = (2/n) d/dx; the 0.5 maps the [-1, 1] output range back to [0, 1] units
    px = torch.tensor([2.0 / H, 2.0 / W], device=device) * 0.5
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    th, tw = (min(cfg.tile, h), min(cfg.tile, w)) if cfg.tile else (h, w)
    history: list[float] = []

    def randint(n: int) -> int:
        return int(torch.randint(0, n, (1,), generator=gen)) if n > 1 else 0

    def loss_fn():
        i0, j0 = randint(h - th + 1), randint(w - tw + 1)
        (a, b), (p, q) = hr_support(dh, i0, i0 + th), hr_support(dw, j0, j0 + tw)
        coords = torch.stack(torch.meshgrid(ax_h[a:b], ax_w[p:q], indexing="ij"), -1).reshape(-1, 2)
        hr = model(coords).reshape(b - a, q - p, c)
        lr_pred = torch.einsum("ih,hwc,jw->ijc", dh[i0:i0 + th, a:b], hr, dw[j0:j0 + tw, p:q])
        data_term = ((lr_pred - target[i0:i0 + th, j0:j0 + tw]) ** 2).mean()
        loss = data_term
        if cfg.tv > 0:
            idx = torch.randint(0, len(coords), (min(cfg.tv_points, len(coords)),), generator=gen).to(device)
            g = model.jet(coords[idx], order=1).grad * px          # (n, C, 2), [0,1] units per HR px
            tv = torch.sqrt((g ** 2).sum(-1) + 1e-8).mean()
            loss = loss + cfg.tv * tv
        return loss, {"data": data_term.detach()}

    def stop(step: int, terms: dict):
        history.append(float(terms["data"]))
        # discrepancy principle on the data term averaged over 20 steps (Adam's single steps
        # dip below the noise level by chance); /4 maps [-1, 1] to [0, 1] units
        if len(history) >= 20 and np.mean(history[-20:]) / 4 <= QUANT_RMS ** 2:
            return "discrepancy"
        # plateau: the data term improved by < 1% over the last 100 steps (noise-averaged)
        if step >= 200 and np.mean(history[-20:]) > 0.99 * np.mean(history[-120:-100]):
            return "plateau"
        return None

    def get_state() -> dict:
        return {"generator": gen.get_state(), "history": list(history)}

    def set_state(saved: dict) -> None:
        gen.set_state(saved["generator"])
        history[:] = saved["history"]

    run, reason = _optimize(model, loss_fn, steps, cfg.lr, stop, desc="siren-consistent", progress=cfg.progress,
                            checkpoint=checkpoint, extra_state=(get_state, set_state))
    out = model.render(hr_shape, chunk=cfg.render_chunk)
    sr = ((out.double().cpu().numpy() + 1) / 2).clip(0, 1)
    lr_rms = float(np.sqrt(np.mean((imresize(sr, (h, w)) - lr_img) ** 2)))
    return sr, {"steps": run, "stop": reason, "params": count_params(model), "omega": omega,
                "lr_residual_rms": lr_rms}


# ---------------------------------------------------------------- runs

def super_resolve(method: str, lr_img: np.ndarray, hr_shape: tuple[int, int], cfg: SRConfig, scale: float,
                  device: torch.device, srcnn: SRCNN | None = None,
                  checkpoint: Path | None = None) -> tuple[np.ndarray, dict]:
    """One method on one LR image (h, w, C) in [0, 1] -> (HR image (H, W, C) in [0, 1], info).
    ``checkpoint``: a SIREN method's checkpoint file (:func:`_optimize`)."""
    if method in ("nearest", "bicubic", "lanczos3"):
        return upsample(lr_img, hr_shape, method), {}
    if method == "srcnn":
        return srcnn_upsample(lr_img, hr_shape, srcnn if srcnn is not None else load_srcnn()), {}
    omega, steps = siren_rules(cfg, lr_img.shape[:2], scale)
    common.seed_all(cfg.seed)
    fn = siren_naive if method == "siren-naive" else siren_consistent
    return fn(lr_img, hr_shape, cfg, omega, steps, device, checkpoint)


def evaluate_image(hr: np.ndarray, cfg: SRConfig, device: torch.device, srcnn: SRCNN | None = None,
                   parts: common.Parts | None = None):
    """The evaluate protocol on one HR image: crop, degrade, run every method, score on Y
    (border = ceil(scale)) and RGB after 8-bit rounding.

    Returns ``(hr, lr, {method: (sr, row)})``: the cropped HR (H, W, C), the LR (h, w, C) and
    each method's 8-bit-rounded output (H, W, C), all in [0, 1], with its results row. With
    ``parts``, a method found there is taken from it and each one run is put there."""
    hr_shape, lr_shape = sizes_for(hr.shape[:2], cfg.scale, cfg.crop)
    hr = center_crop(hr, hr_shape)
    lr_img = degrade(hr, lr_shape)
    border = int(math.ceil(cfg.scale))
    results = {}
    for method in cfg.methods:
        got = parts.get(method) if parts is not None else None
        if got is not None:
            results[method] = (got[0]["sr"].astype(np.float64) / 255.0, got[1])
            continue
        carried = parts.started(method) if parts is not None else 0.0  # a fit continued from its checkpoint
        t0 = time.perf_counter()
        sr, info = super_resolve(method, lr_img, hr_shape, cfg, cfg.scale, device, srcnn,
                                 parts.checkpoint(method) if parts is not None else None)
        seconds = time.perf_counter() - t0 + carried
        sr = quantize(sr)
        row = {"method": method, "scale": cfg.scale, "hr_h": hr_shape[0], "hr_w": hr_shape[1],
               "psnr_y": round(metrics.psnr_y(sr, hr, border), 4),
               "ssim_y": round(metrics.ssim_y(sr, hr, border), 5),
               "psnr": round(metrics.psnr(sr, hr, 1.0), 4), "ssim": round(metrics.ssim(sr, hr, 1.0), 5),
               "seconds": round(seconds, 3), **info}
        results[method] = (sr, row)
        if parts is not None:  # 8-bit values: kept exactly as uint8
            parts.put(method, {"sr": np.round(sr * 255.0).astype(np.uint8)}, row)
    return hr, lr_img, results


ERR_MAX = 0.15  # the error maps' colour scale: |delta Y| on the [0, 1] scale, clipped above


def crop_window(hr: np.ndarray, lr: np.ndarray, scale: float) -> tuple[int, int, int, int]:
    """The (top, left, height, width) region :func:`crop_figure` enlarges: a window of half the
    shorter side (at least 16 px; an image under 16 px a side is shown whole along it) where
    bicubic upsampling of ``lr`` errs most, the largest mean |delta Y| against ``hr`` among
    the positions on a grid of a quarter of the window's side, the ``ceil(scale)`` px border
    that the scores leave out not counted. Images (H, W, C), (h, w, C) in [0, 1]."""
    h, w = hr.shape[:2]
    side = max(16, min(h, w) // 2)
    sh, sw = min(h, side), min(w, side)
    err = np.abs(luma(upsample(lr, (h, w), "bicubic")) - luma(hr))
    b = int(np.ceil(scale))
    inner = np.zeros_like(err)
    inner[b:h - b, b:w - b] = err[b:h - b, b:w - b]
    top, left = common.worst_window(inner, (sh, sw), step=max(1, max(sh, sw) // 4))
    return top, left, sh, sw


def crop_figure(path: Path, hr: np.ndarray, lr: np.ndarray, outputs: dict[str, np.ndarray], scale: float,
                title: str) -> None:
    """The same region (:func:`crop_window`: where bicubic errs most) of HR, the LR input
    (nearest-enlarged; left out when the ``nearest`` method, the same image, is shown) and every
    method (titled with its PSNR-Y), then the absolute Y error maps of bicubic and
    siren-consistent on the whole image with the region outlined and one colour bar. Images
    (H, W, C) in [0, 1]."""
    from matplotlib.patches import Rectangle

    h, w = hr.shape[:2]
    top, left, sh, sw = crop_window(hr, lr, scale)
    # the nearest method's output is the LR image enlarged by nearest neighbour: shown once
    lr_panel = {} if "nearest" in outputs else {"LR (nearest)": upsample(lr, (h, w), "nearest")}
    panels = {"HR": hr, **lr_panel, **outputs}
    errs = [m for m in ("bicubic", "siren-consistent") if m in outputs]
    cols = -(-(len(panels) + len(errs)) // 2)
    fig, axes = common.plt_figure(2, cols, figsize=(2.6 * cols, 5.2))
    axes = axes.ravel()
    gray = hr.shape[-1] == 1
    border = int(np.ceil(scale))
    for ax, (name, img) in zip(axes, panels.items()):
        c = img[top:top + sh, left:left + sw]
        ax.imshow(c[..., 0] if gray else c, cmap="gray" if gray else None, vmin=0, vmax=1,
                  interpolation="nearest")
        label = name + (" (= LR input)" if name == "nearest" else "")
        if name in outputs:
            label += f"\n{metrics.psnr_y(img, hr, border):.2f} dB"
        ax.set_title(label, fontsize=8)
    y_hr = luma(hr)
    for ax, name in zip(axes[len(panels):], errs):
        im = ax.imshow(np.abs(luma(outputs[name]) - y_hr), cmap="inferno", vmin=0, vmax=ERR_MAX)
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), sw, sh, fill=False, ec="cyan", lw=0.8))
        ax.set_title(f"|Y error| {name}", fontsize=8)
    if errs:  # one colour bar for both maps, beside the last (the slot after it is empty or outside)
        common.colorbar(fig, im, axes[len(panels) + len(errs) - 1],
                        f"|\u0394Y| (Y on a 0\u20131 scale), clipped at {ERR_MAX:g}", extend="max")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(panels) + len(errs):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    shown = {"bicubic": "bicubic", "siren-consistent": "the degradation-consistent SIREN"}
    errors = (", then the absolute Y error of " + " and of ".join(shown[m] for m in errs)
              + " on the whole image, the region outlined") if errs else ""
    region = ("the whole image" if (sh, sw) == (h, w) else
              f"the same {sw}x{sh} region (where bicubic upsampling errs most: the largest mean |\u0394Y| "
              f"among windows on a {max(1, max(sh, sw) // 4)}-px grid, the border excluded)")
    inputs = "the low-resolution input (enlarged by nearest neighbour), " if lr_panel else ""
    same = "; the nearest method's output is the low-resolution input enlarged" if not lr_panel else ""
    common.save_figure(fig, path, caption=(
        f"Super-resolution, {title}: {region} of the ground truth, {inputs}"
        f"and every method (with its PSNR-Y on the whole image{same}){errors}."))


# the longest side an --upscale figure's panels are drawn at (a larger output is shown subsampled)
FIGURE_MAX_SIDE = 1024


def upscale_figure(path: Path, lr: np.ndarray, out: np.ndarray, title: str) -> None:
    """``--upscale``'s figure: the LR input enlarged by nearest neighbour (its pixels as they
    are), bicubic, and the SIREN's output, side by side, each at most :data:`FIGURE_MAX_SIDE`
    pixels a side (a larger output is shown every k-th pixel, and the other two made at that
    size: the figure costs no more memory than a 1024^2 image). Images (h, w, C), (H, W, C) in
    [0, 1]."""
    k = -(-max(out.shape[:2]) // FIGURE_MAX_SIDE)
    out = out[::k, ::k]
    shape = out.shape[:2]
    panels = {"LR input (nearest)": upsample(lr, shape, "nearest"), "bicubic": upsample(lr, shape, "bicubic"),
              "SIREN (consistent)": out}
    fig, axes = common.plt_figure(1, 3, figsize=(3.2 * 3, 3.4))
    gray = out.shape[-1] == 1
    for ax, (name, img) in zip(axes, panels.items()):
        ax.imshow(img[..., 0] if gray else img, cmap="gray" if gray else None, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    common.save_figure(fig, path, caption=(
        f"Upscaling, {title}: the low-resolution input enlarged by nearest neighbour, bicubic upsampling, and "
        "the degradation-consistent SIREN rendered on the high-resolution grid (no ground truth in this mode)"
        + (f"; shown at 1/{k} of the output's size, every {k}th pixel." if k > 1 else ".")))


def _to_pm1(img: np.ndarray) -> np.ndarray:
    return img * 2 - 1


def run(config: SRConfig) -> dict:
    """Evaluate (default) or upscale; writes the run folder and returns its metrics document."""
    cfg = resolve(config)

    device, backend = common.task_backend(cfg.backend, cfg.device)
    img = data.read_image(cfg.image)
    t0 = time.perf_counter()
    if cfg.upscale:
        lr_img = img
        if min(img.shape[:2]) < 2:
            raise ValueError(f"image {cfg.image} is {img.shape[0]}x{img.shape[1]}; upscaling needs at least 2x2")
        hr = (img.shape[0] * cfg.scale, img.shape[1] * cfg.scale)
        if hr[0] * hr[1] > MAX_UPSCALE_PIXELS:
            raise ValueError(f"scale={cfg.scale:g} upscales the {img.shape[0]}x{img.shape[1]} image to "
                             f"{hr[0]:.4g}x{hr[1]:.4g} pixels, more than the {MAX_UPSCALE_PIXELS:,} an upscale "
                             f"writes; expected a scale of at most "
                             f"{math.sqrt(MAX_UPSCALE_PIXELS / (img.shape[0] * img.shape[1])):.4g} for this image")
        hr_shape = (int(round(hr[0])), int(round(hr[1])))
        siren_rules(cfg, img.shape[:2], cfg.scale)  # an omega_0 out of range: refused before the folder
        folder = common.RunFolder(cfg.out, cfg, resume=cfg.resume)
        parts = common.Parts(folder, cfg.resume)
        got = parts.get("siren-consistent")
        if got is not None:  # --resume of a finished upscale: its output is in parts/
            sr, row = got[0]["sr"], got[1]
        else:
            carried = parts.started("siren-consistent")
            sr, info = super_resolve("siren-consistent", lr_img, hr_shape, cfg, cfg.scale, device,
                                     checkpoint=parts.checkpoint("siren-consistent"))
            row = {"method": "siren-consistent", "image": str(cfg.image), "scale": cfg.scale,
                   "lr_h": img.shape[0], "lr_w": img.shape[1], "hr_h": hr_shape[0], "hr_w": hr_shape[1],
                   "seconds": round(time.perf_counter() - t0 + carried, 3), **info}
            parts.put("siren-consistent", {"sr": sr}, row)
        common.save_png(folder.file("sr.png"), _to_pm1(sr))
        upscale_figure(folder.file("comparison.png"), lr_img, sr,
                       f"{Path(str(cfg.image)).name}: {img.shape[0]}x{img.shape[1]} -> {hr_shape[0]}x{hr_shape[1]} "
                       f"(x{cfg.scale:g})")
        doc = common.results_doc("sr", cfg.profile, [row], backend=backend,
                                 device=device, seconds=time.perf_counter() - t0 + parts.earlier, mode="upscale")
        return folder.finish(doc)
    _, lr_shape = sizes_for(img.shape[:2], cfg.scale, cfg.crop)  # too small for the scale: refused before the folder
    if any(m in SIREN_METHODS for m in cfg.methods):
        siren_rules(cfg, lr_shape, cfg.scale)  # an omega_0 out of range: likewise
    folder = common.RunFolder(cfg.out, cfg, resume=cfg.resume)
    parts = common.Parts(folder, cfg.resume)
    hr, lr_img, results = evaluate_image(img, cfg, device, parts=parts)
    common.save_png(folder.file("lr.png"), _to_pm1(lr_img))
    common.save_png(folder.file("hr.png"), _to_pm1(hr))
    for method, (sr, _) in results.items():
        common.save_png(folder.file(f"{method}.png"), _to_pm1(sr))
    main_method = "siren-consistent" if "siren-consistent" in results else list(results)[-1]
    common.save_png(folder.file("sr.png"), _to_pm1(results[main_method][0]))
    if "bicubic" not in results:
        common.save_png(folder.file("bicubic.png"), _to_pm1(upsample(lr_img, hr.shape[:2], "bicubic")))
    crop_figure(folder.file("comparison.png"), hr, lr_img, {m: out for m, (out, _) in results.items()}, cfg.scale,
                f"{Path(str(cfg.image)).name}, x{cfg.scale:g} ({cfg.profile} profile)")
    rows = [{**row, "image": str(cfg.image)} for _, row in results.values()]
    doc = common.results_doc("sr", cfg.profile, rows, backend=backend,
                             device=device, seconds=time.perf_counter() - t0 + parts.earlier, mode="evaluate",
                             sr_method=main_method, protocol=PROTOCOL)
    return folder.finish(doc)


PROTOCOL = ("HR centre-cropped to the profile's crop and to a multiple of the scale; LR = MATLAB "
            "imresize bicubic (Keys a=-0.5, antialiased) rounded to 8 bits; outputs rounded to 8 bits; "
            "psnr_y/ssim_y on BT.601 Y with a border crop of ceil(scale) px; psnr/ssim on RGB, no crop")


def add_arguments(parser) -> None:
    common.add_common_arguments(parser, default_out="runs/sr", resume=RESUME_HELP)
    parser.add_argument("--scale", type=float, default=2.0, help="upscaling factor, any real number > 1 "
                        "(1 only with --upscale: a fit at the image's own size)")
    parser.add_argument("--upscale", action="store_true",
                        help="the image is the LR input: write the upscaled DIR/sr.png and DIR/comparison.png (with "
                             "config.json, metrics.json and parts/, no ground-truth metrics) (default: evaluate, the "
                             "image is the HR ground truth)")
    parser.add_argument("--crop", type=int, help="evaluate: HR centre crop side, 0 = whole image (default: profile)")
    parser.add_argument("--steps", type=int, help="SIREN Adam steps at x2 (default: profile; grows with the scale)")
    parser.add_argument("--lr", type=float, help="Adam learning rate (default: profile)")
    parser.add_argument("--hidden", type=int, help="SIREN hidden width (default: profile)")
    parser.add_argument("--layers", type=int, help="SIREN hidden->hidden layers after the first (default: profile)")
    parser.add_argument("--omega-per-px", type=float,
                        help="omega_0 = this x the LR image's longer side (default: profile)")
    parser.add_argument("--tile", type=int, help="LR tile side per consistent-fit step, 0 = whole (default: profile)")
    parser.add_argument("--tv", type=float, help="weight of the total-variation prior (default: profile)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated subset of {', '.join(METHODS)} (evaluate mode)")
    parser.add_argument("--render-chunk", type=int, help="points per render pass (default: 2^18 on the CPU)")


# the options that set the SIREN methods' fits, and those only the consistent fit reads
SIREN_OPTIONS = ("steps", "lr", "hidden", "layers", "omega_per_px", "render_chunk")
CONSISTENT_OPTIONS = ("tv", "tile")


def check_relevant(args, methods: tuple[str, ...]) -> None:
    """An option the run would ignore is an error naming it (it was ignored silently): --crop
    in --upscale mode, the SIREN fits' options without a SIREN method, the consistent fit's
    without siren-consistent."""
    def given(names):
        return [f"--{n.replace('_', '-')}" for n in names if getattr(args, n, None) is not None]

    if args.upscale and args.crop is not None:
        raise ValueError("--crop applies to the evaluate mode only: --upscale renders the whole image")
    sirens = [m for m in methods if m.startswith("siren")]
    unused = given(SIREN_OPTIONS + CONSISTENT_OPTIONS) if not sirens else \
        given(CONSISTENT_OPTIONS) if "siren-consistent" not in methods else []
    if unused:
        raise ValueError(f"{', '.join(unused)} set{'s' if len(unused) == 1 else ''} the "
                         f"{'SIREN methods' if not sirens else 'siren-consistent'} fit, which --methods "
                         f"{','.join(methods)} does not run")


def main(args) -> int:
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    check_relevant(args, methods)
    cfg = SRConfig(image=args.image, scale=args.scale, upscale=args.upscale, crop=args.crop, steps=args.steps,
                   lr=args.lr, hidden=args.hidden, layers=args.layers, omega_per_px=args.omega_per_px,
                   tv=args.tv, tile=args.tile, methods=methods, backend=args.backend, device=args.device,
                   seed=args.seed, out=args.out, profile=args.profile, render_chunk=args.render_chunk,
                   resume=args.resume,
                   progress=not args.no_progress)
    res = run(cfg)
    for row in res["rows"]:
        if "psnr_y" in row:
            print(f"{row['method']:>17} x{row['scale']:g} {row['image']}: PSNR-Y {row['psnr_y']:.2f} dB, "
                  f"SSIM-Y {row['ssim_y']:.4f}, {row['seconds']:.1f} s")
        else:
            print(f"{row['method']} x{row['scale']:g}: {row['lr_h']}x{row['lr_w']} -> {row['hr_h']}x{row['hr_w']} "
                  f"in {row['seconds']:.1f} s")
    print(f"-> {cfg.out}")
    return 0
