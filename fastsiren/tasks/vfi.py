"""Video frame interpolation: predict frame K from frames K-G and K+G.

Methods (every one sees the same downscaled frames; none sees frame K):

``blend``
    Linear blending ``(I0 + I1) / 2``.
``tvl1``
    Classical optical flow: scikit-image's TV-L1 flows F01 and F10 between the gray
    frames, the intermediate flows of Super SloMo at t = 1/2 (``F_t0 = (F10 - F01) / 4``,
    ``F_t1 = -F_t0``) and both frames backward-warped to the middle and blended with the
    occlusion weights below.
``siren``
    Space-time SIREN: a SIREN of (t, y, x) -> RGB fitted to the given frames (with
    ``--context C``, also frames K +- 3G, ... at their own times) and sampled at t = K.
    Time and space share the pixel-centre grid of :func:`fastsiren.data.grid`: the given
    frames are rows of a (4C - 1, H, W) grid whose middle row is frame K (``time_scale``
    multiplies t; 1 by default).

    *Zero time init.* The first layer's time weights start at zero, so the initial network
    is one image at every t and all time dependence is learned from the differences between
    the frames; with the paper's random init on t the two frames get unrelated features and
    the middle is noise. Adam with a cosine-decayed lr: the fit must be near-exact, and a
    constant lr high enough to get there in the budget diverges.

    *Sampling: the blend plus the network's curvature in time.* Each fit f gives
    ``f(K) - (f(K-G) + f(K+G)) / 2``, the part of its time dependence that is not linear in
    t, and the prediction is the blend of the two neighbours plus that term: the same as the
    sample f(K) with the network's fitting residuals at the neighbours carried to the middle.
    Why the term helps: a moving edge makes the blend err by about half its second time
    derivative, and a first-layer sine feature with a time weight is a travelling plane wave
    whose curvature in t is fixed by the phase shift the two frames show, so the fit predicts
    the blend's error where motions are small against the features' wavelengths. The raw
    sample f(K) (reported as ``siren-raw``) also carries the fitting error of both
    neighbours, a few 8-bit levels at the cpu profile, more than the term gains.

    *Several fits and a per-pixel weight.* Where motion is large the term is unreliable, and it
    varies with the init. ``fits`` (3) networks from different seeds give terms c_i; their
    mean is weighted per pixel by signal / (signal + noise), the signal power from the cross
    products c_i c_j and the noise of the mean from their spread, both averaged over a
    Gaussian window of :data:`SHRINK_SIGMA` pixels (an empirical-Bayes shrinkage: where the
    fits disagree, the blend is kept).

    *Limiter.* The prediction is clipped per pixel and channel to the range of the two
    neighbours (no new temporal extremum, as in monotone cubic interpolation): an edge that
    passes a pixel between the frames leaves it between its two values. With no time
    dependence learned the prediction is exactly the blend.

    Settings were chosen once, on a dev subset disjoint from the evaluation frames
    (:data:`DEV_FRAMES`, gaps 1 and 2; ``fastsiren vfi --dev --profile cpu`` writes every
    variant, one fit or two, with or without the weight or the limiter, and the window
    sizes :data:`DEV_SIGMAS`, to docs/results/vfi-dev-cpu.json), not per clip or frame. The
    number of fits came from a second dev run with four fits, which also scores the first two
    and three (``--dev --fits 4``, docs/results/vfi-dev-fits-cpu.json): three beat two on the
    mean IE of every clip; four beat three on every clip too, each time by less than three beat
    two (an earlier run had four against three mixed), at a third more cost: three were kept.

    Tried and not kept (ad-hoc dev runs, not committed results): a sparse-gradient
    (hyper-Laplacian) prior on the frames between the neighbours from the network's jet
    (ghosts are two half-contrast edges, which such a prior charges more than one edge)
    changed the mean IE by less than the spread between inits; a transport prior
    ``I_t + v . grad I = 0`` with the motion SIREN's field as the velocity made the mean IE
    worse or stayed on the blend (for motions of a few pixels the blend already satisfies the
    linearised transport equation at the middle time); a third hidden layer diverged at the
    cpu profile's lr; twice the steps or half the time scale changed little.
``siren-flow``
    Motion-aware SIREN: a SIREN m(y, x) -> (dy, dx) is the *symmetric* motion field at the
    middle time, so that the middle frame is ``I0(p - m(p)) ~ I1(p + m(p))``. It is fitted
    by a photometric Charbonnier loss between those two backward warps (bilinear
    ``grid_sample``) on colour and on image gradients, coarse to fine (the frames are
    Gaussian-blurred with a sigma annealed from ``blur`` pixels to 0, which widens the basin
    of the warp), plus a smoothness prior on the field's analytic Jacobian from
    ``model.jet(order=1)``, in pixels per pixel (the same weight for every term on a frame
    that is not square). Fitting the field at the middle time avoids the Super SloMo
    approximation the classical baseline needs (flow at t=0 re-used at t=1/2, which smears
    motion boundaries), and the SIREN's smooth sinusoidal basis is itself a regulariser.
    The last layer starts at zero, so the fit starts from "no motion" (= blending).

Occlusion: near a moving boundary the two warps disagree, because part of the middle frame
is visible in one neighbour only. Both flow methods can blend the warps with per-pixel weights
from the Jacobians of the two source maps ``p -> p - m(p)`` and ``p -> p + m(p)``: a map
whose determinant is below 1 draws many middle pixels from one source patch, which happens
on the side where the region is being covered, so its warp gets less weight
(``w_0 = sigmoid(s (log det J_0 - log det J_1))`` of sharpness s = ``--occlusion``,
:func:`occlusion_weights`). For the motion SIREN the Jacobian ``I -+ dm/dp`` is exact, from
the jet; for TV-L1 it comes from finite differences of the intermediate flow. Where the
motion is smooth both determinants are 1 and the blend is the plain average. The default is
s = 0, the plain average everywhere: on the dev subset (``--dev-occlusion``,
docs/results/vfi-dev-occlusion-cpu.json) the mean IE of both flow methods rose with s at every
sharpness tried (0, 1, 2, 4), so the weights are an option, not the method.

Metrics are computed on 8-bit images (the prediction rounded to 0..255) against the
downscaled ground truth: the Middlebury interpolation error (IE), its normalised form
(NIE), PSNR and SSIM (:mod:`fastsiren.metrics`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fastsiren import data, functional, metrics
from fastsiren.layers import Siren
from fastsiren.tasks import common

METHODS = ("blend", "tvl1", "siren", "siren-raw", "siren-flow")

# Gaussian sigma (pixels) of the local statistics of the curvature shrinkage (module docstring)
SHRINK_SIGMA = 2.0


# Ctrl-C message of `fastsiren vfi` and the help of its --resume: finished methods and a fit's
# checkpoint (one run), or finished triplets (--table, --dev)
INTERRUPT_HINT = ("interrupted: what finished is kept (one run: the methods and the running fit's checkpoint in "
                  "the run folder's parts/; --table or --dev: the triplets in the results file); rerun with "
                  "--resume to go on from there")
RESUME_HELP = ("one run: take the methods that finished from this run folder's parts/ and continue the fit that "
               "was cut short from its checkpoint there; --table or --dev: keep the triplets already in the "
               "results file (a triplet cut short runs again); the settings must be the same")


# a single run's triplet (VfiConfig's defaults); the table and dev runs choose their own, so these
# are neither taken from the command line nor saved in their settings
SINGLE_RUN = {"video": "carphone", "frame": 10, "gap": 1, "context": 1}


@dataclasses.dataclass
class VfiConfig:
    """Settings of one interpolation; ``profile`` fills what is left as None."""

    video: str = SINGLE_RUN["video"]
    frame: int = SINGLE_RUN["frame"]
    gap: int = SINGLE_RUN["gap"]
    context: int = SINGLE_RUN["context"]
    size: int | None = None
    steps: int | None = None
    lr: float | None = None
    hidden: int | None = None
    layers: int | None = None
    batch: int | None = None
    omega: float = 30.0
    time_scale: float | None = None
    fits: int | None = None
    flow_steps: int | None = None
    flow_lr: float | None = None
    flow_hidden: int | None = None
    flow_layers: int | None = None
    flow_batch: int | None = None
    flow_omega: float | None = None
    smooth: float | None = None
    blur: float | None = None
    occlusion: float | None = None
    tvl1_attachment: float | None = None
    backend: str = "auto"
    device: str = "auto"
    seed: int = 0
    out: str = "runs/vfi"
    profile: str = "cpu"
    progress: bool = True


# The flow methods' occlusion sharpness (:func:`occlusion_weights`; 0: the plain average of the
# two warps), chosen on the dev subset by ``fastsiren vfi --dev-occlusion``
# (docs/results/vfi-dev-occlusion-cpu.json) among DEV_OCCLUSION, for both flow methods alike.
OCCLUSION = 0.0
DEV_OCCLUSION = (0.0, 1.0, 2.0, 4.0)
# The flow methods' own settings tried by ``fastsiren vfi --dev-flow`` on the dev subset
# (docs/results/vfi-dev-flow-cpu.json), each method's cpu-profile defaults being its best there
# (lowest mean IE): the motion SIREN's starting blur (pixels; 0: no annealing, the raw frames from
# the first step) x the weight of its smoothness prior (the quick and paper profiles keep theirs,
# untuned), and TV-L1's data-term weight (scikit-image's ``attachment``). A first grid, blur
# {2, 4, 8} x smooth {0.003, 0.01, 0.03} (at 477ee76, TV-L1 best at its default 15), put the
# motion SIREN's best at its small edge on both axes and blur 8 last on every clip; this grid goes
# down on both axes instead (at about 20 s a fit on the cpu profile, 20 triplets x 6 settings). On
# it (at 3ca3064) blur 2 stays best (1 and 0 are worse by 0.35 IE and more), and smooth 0.001 and
# 0.003 are level at blur 2 (10.038 and 10.044 mean IE): the cpu profile keeps 2 and 0.003, with
# which the evaluation table ran.
DEV_BLURS = (0.0, 1.0, 2.0)
DEV_SMOOTHS = (0.001, 0.003)
DEV_ATTACHMENTS = (5.0, 15.0, 45.0)
TVL1_ATTACHMENT = 15.0

# size = long side of the processed frames in pixels; batch = points per Adam step
PROFILE_DEFAULTS = {
    "quick": dict(size=32, steps=30, lr=1e-3, hidden=32, layers=1, batch=1024, time_scale=1.0, fits=2,
                  flow_steps=30, flow_lr=1e-3, flow_hidden=32, flow_layers=1, flow_batch=512,
                  flow_omega=10.0, smooth=0.01, blur=2.0, occlusion=OCCLUSION,
                  tvl1_attachment=TVL1_ATTACHMENT),
    "cpu": dict(size=128, steps=900, lr=3e-3, hidden=128, layers=2, batch=4096, time_scale=1.0, fits=3,
                flow_steps=300, flow_lr=1e-3, flow_hidden=64, flow_layers=2, flow_batch=2048,
                flow_omega=10.0, smooth=0.003, blur=2.0, occlusion=OCCLUSION,
                tvl1_attachment=TVL1_ATTACHMENT),
    "paper": dict(size=512, steps=3000, lr=1e-4, hidden=256, layers=3, batch=65536, time_scale=1.0, fits=3,
                  flow_steps=2000, flow_lr=1e-4, flow_hidden=128, flow_layers=3, flow_batch=65536,
                  flow_omega=10.0, smooth=0.01, blur=8.0, occlusion=OCCLUSION,
                  tvl1_attachment=TVL1_ATTACHMENT),
}


def resolve(config: VfiConfig) -> VfiConfig:
    """Fill profile defaults and validate every setting before any work starts."""
    cfg = common.fill_profile(config, PROFILE_DEFAULTS)
    if not isinstance(cfg.gap, int) or cfg.gap < 1:
        raise ValueError(f"--gap must be an integer >= 1, got {cfg.gap!r}")
    if not isinstance(cfg.context, int) or cfg.context < 1:
        raise ValueError(f"--context must be an integer >= 1 (frames used on each side), got {cfg.context!r}")
    if not isinstance(cfg.frame, int) or cfg.frame < 0:
        raise ValueError(f"--frame must be a frame index >= 0, got {cfg.frame!r}")
    for name in ("size", "steps", "hidden", "batch", "fits", "flow_steps", "flow_hidden", "flow_batch"):
        common.positive(name, getattr(cfg, name), int)
    for name in ("lr", "time_scale", "flow_lr"):
        common.positive(name, getattr(cfg, name))
    for name in ("omega", "flow_omega"):
        functional.check_omega(getattr(cfg, name), name)
    common.positive("tvl1_attachment", cfg.tvl1_attachment)
    for name in ("layers", "flow_layers", "smooth", "blur", "occlusion"):
        common.non_negative(name, getattr(cfg, name))
    common.check_size("size", cfg.size)
    return cfg


# ---------------------------------------------------------------- frames

def frame_offsets(n_frames: int, frame: int, gap: int, context: int = 1) -> list[int]:
    """Offsets (in units of ``gap``) of the frames given to the methods for target ``frame``.

    The neighbours K -+ G are offsets -+1; ``context`` C adds -+3, -+5, ... up to C frames a
    side, dropping those outside the clip. The neighbours themselves must lie in the clip.
    """
    if n_frames < 3:
        raise ValueError(f"--video must have at least 3 frames to interpolate one, it has {n_frames}")
    if gap < 1:
        raise ValueError(f"--gap must be >= 1, got {gap}")
    if context < 1:
        raise ValueError(f"--context must be >= 1, got {context}")
    lo, hi = frame - gap, frame + gap
    if lo < 0 or hi >= n_frames:
        raise ValueError(f"--frame {frame} with --gap {gap} needs frames {lo} and {hi}, but the clip has "
                         f"frames 0..{n_frames - 1}; choose --frame in {gap}..{n_frames - 1 - gap}")
    offs = [s * (2 * j - 1) for j in range(1, context + 1) for s in (-1, 1)]
    return sorted(o for o in offs if 0 <= frame + o * gap < n_frames)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) in [0, 1] -> long side at most ``size`` pixels (anti-aliased, aspect kept)."""
    from skimage.transform import resize

    t, h, w, c = frames.shape
    scale = size / max(h, w)
    shape = (max(1, round(h * scale)), max(1, round(w * scale)), c) if scale < 1 else (h, w, c)
    if min(shape[:2]) < 7:  # the scores' SSIM window
        raise ValueError(f"--size {size} gives {shape[0]}x{shape[1]} frames (the video's are {h}x{w}); scoring "
                         "them needs at least 7x7 (SSIM's window): pass a larger --size or a larger video")
    if scale >= 1:
        return frames
    return np.stack([np.clip(resize(f, shape, order=3, anti_aliasing=True, mode="reflect"), 0, 1)
                     for f in frames])


def load_frames(video: str, frame: int, gap: int, context: int, size: int) -> tuple[np.ndarray, list[int]]:
    """The target frame and the given frames of ``video``, downscaled: ((T', H, W, 3), offsets).

    Row ``offsets.index(0)`` of the result is the ground truth; the other rows are the frames
    at ``frame + offset * gap``.
    """
    chosen: list[int] = []

    def select(n: int) -> list[int]:
        chosen.extend(sorted(frame_offsets(n, frame, gap, context) + [0]))
        return [frame + o * gap for o in chosen]

    try:
        raw = data.read_video(video, frames=select)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"--video: {exc}") from exc
    except ValueError as exc:
        if str(exc).startswith("--"):
            raise
        raise ValueError(f"--video {video}: {exc}") from exc
    return resize_frames(raw, size), chosen


# ---------------------------------------------------------------- warping and blending

def to_image_tensor(img: np.ndarray | torch.Tensor, device=None) -> torch.Tensor:
    """(H, W, C) -> (1, C, H, W) float32 tensor."""
    t = torch.as_tensor(np.ascontiguousarray(img) if isinstance(img, np.ndarray) else img,
                        dtype=torch.float32, device=device)
    return t.permute(2, 0, 1).unsqueeze(0)


def sample(img: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``img`` (1, C, H, W) at grid coordinates ``points`` (N, 2) = (y, x)
    in the pixel-centre convention of :func:`fastsiren.data.grid` -> (N, C); border padding."""
    g = points.flip(-1).reshape(1, 1, -1, 2)  # grid_sample wants (x, y)
    out = F.grid_sample(img, g, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0].T


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (1, C, H, W) with ``sigma`` pixels (reflect padding)."""
    if sigma < 0.3:
        return img
    r = max(1, math.ceil(3 * sigma))
    r = min(r, img.shape[-1] - 1, img.shape[-2] - 1)
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=img.dtype, device=img.device) / sigma) ** 2)
    k = k / k.sum()
    c = img.shape[1]
    out = F.conv2d(F.pad(img, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(out, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def occlusion_weights(jac0: torch.Tensor, jac1: torch.Tensor, sharpness: float = 4.0) -> torch.Tensor:
    """Weight of warp 0 per pixel from the Jacobians (N, 2, 2) of the maps p -> source in
    frame 0 and frame 1: a map that compresses (det < 1, many middle pixels drawn from one
    source patch) is drawing from a region being covered, so its warp is trusted less.
    Returns (N, 1) in (0, 1); equal Jacobians give 1/2."""
    d0 = torch.linalg.det(jac0).clamp(0.05, 20.0)
    d1 = torch.linalg.det(jac1).clamp(0.05, 20.0)
    return torch.sigmoid(sharpness * (d0.log() - d1.log())).unsqueeze(-1)


def synthesize(f0: torch.Tensor, f1: torch.Tensor, points: torch.Tensor, to0: torch.Tensor,
               to1: torch.Tensor, jac0: torch.Tensor | None = None,
               jac1: torch.Tensor | None = None, sharpness: float = OCCLUSION) -> torch.Tensor:
    """The middle frame at ``points`` (N, 2) from frames (1, C, H, W) backward-warped by the
    displacements ``to0``/``to1`` (N, 2, grid units), blended by :func:`occlusion_weights` of
    ``sharpness`` (equal weights without Jacobians or at sharpness 0) -> (N, C)."""
    a, b = sample(f0, points + to0), sample(f1, points + to1)
    if jac0 is None or sharpness == 0:
        return 0.5 * (a + b)
    w = occlusion_weights(jac0, jac1, sharpness)
    return w * a + (1 - w) * b


def blend(f0: np.ndarray, f1: np.ndarray) -> np.ndarray:
    """Linear blending of two frames (H, W, C)."""
    return 0.5 * (f0 + f1)


def _identity_plus(grad: torch.Tensor, sign: float) -> torch.Tensor:
    eye = torch.eye(2, dtype=grad.dtype, device=grad.device)
    return eye + sign * grad


def tvl1_flow(f0: np.ndarray, f1: np.ndarray, attachment: float = TVL1_ATTACHMENT) -> np.ndarray:
    """TV-L1 flows both ways between the gray frames (data-term weight ``attachment``) and Super
    SloMo's intermediate flow at t=1/2 towards frame 0, F_t0 (H, W, 2) pixels, (dy, dx)."""
    from skimage.color import rgb2gray
    from skimage.registration import optical_flow_tvl1

    g0, g1 = rgb2gray(f0), rgb2gray(f1)
    f01 = np.stack(optical_flow_tvl1(g0, g1, attachment=attachment), -1)  # g0(p) ~ g1(p + f01(p)), (dy, dx) px
    f10 = np.stack(optical_flow_tvl1(g1, g0, attachment=attachment), -1)
    return 0.25 * (f10 - f01)


def tvl1_interpolate(f0: np.ndarray, f1: np.ndarray, occlusion: float = OCCLUSION,
                     ft0: np.ndarray | None = None,
                     attachment: float = TVL1_ATTACHMENT) -> tuple[np.ndarray, np.ndarray]:
    """Classical baseline: the TV-L1 intermediate flow (:func:`tvl1_flow`, or ``ft0`` as it
    gives it), both frames warped to the middle and blended with the occlusion weights of
    sharpness ``occlusion`` -> (frame (H, W, C), flow F_t1 (H, W, 2) px)."""
    ft0 = tvl1_flow(f0, f1, attachment) if ft0 is None else ft0
    h, w = f0.shape[:2]
    units = np.array([2.0 / h, 2.0 / w])  # pixels -> grid units
    to0 = torch.from_numpy((ft0 * units).reshape(-1, 2)).float()
    # Jacobian of p -> p + F_t0(p) in grid units: d(F * units)/d(p px * units) = d F / d p (px)
    dy, dx = np.gradient(ft0, axis=(0, 1))
    grad0 = torch.from_numpy(np.stack([dy, dx], -1).reshape(-1, 2, 2)).float()
    points = data.grid((h, w))
    pred = synthesize(to_image_tensor(f0), to_image_tensor(f1), points, to0, -to0,
                      _identity_plus(grad0, 1.0), _identity_plus(grad0, -1.0), occlusion)
    return pred.reshape(h, w, -1).numpy().astype(np.float64), -ft0


# ---------------------------------------------------------------- SIREN methods

def _predict_chunks(model, coords: torch.Tensor, chunk: int = 1 << 16) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(coords[i:i + chunk]) for i in range(0, coords.shape[0], chunk)])


def spacetime_fit(given: np.ndarray, offsets: list[int], cfg: VfiConfig, device, seed: int,
                  history: list | None = None, checkpoint: Path | None = None) -> np.ndarray:
    """Fit one SIREN (t, y, x) -> RGB to the ``given`` frames (T, H, W, 3) in [0, 1] at time
    ``offsets`` (units of the gap) from the init of ``seed``; returns its samples at offsets
    -1, 0, +1 as (3, H, W, 3) in [0, 1] units (not clipped). ``checkpoint``: the fit's
    checkpoint file (every 500 steps and on Ctrl-C; continued from where it exists)."""
    t_given, h, w, _ = given.shape
    span = max(abs(o) for o in offsets)
    rows = 2 * span + 1  # offsets -span..span on the grid's time axis; the middle row is frame K
    coords = data.grid((rows, h, w), device=device).reshape(rows, h * w, 3)
    coords[..., 0] *= cfg.time_scale
    x = torch.cat([coords[o + span] for o in offsets])
    y = torch.from_numpy(given.reshape(-1, 3) * 2 - 1).float().to(device)
    common.seed_all(seed)
    model = Siren(3, cfg.hidden, cfg.layers, 3, cfg.omega, cfg.omega, backend=cfg.backend).to(device)
    with torch.no_grad():
        # time weights start at zero: the initial fit is the same image at every t, and the
        # time dependence is learned from the frames' differences only (a random time init
        # makes the two frames' features independent, so the middle is noise)
        model.layers[0].weight[:, 0] = 0.0
    gen = torch.Generator(device="cpu").manual_seed(seed)
    n = x.shape[0]

    def loss_fn() -> torch.Tensor:
        if cfg.batch >= n:
            return ((model(x) - y) ** 2).mean()
        idx = torch.randint(n, (cfg.batch,), generator=gen).to(device)
        return ((model(x[idx]) - y[idx]) ** 2).mean()

    # a cosine schedule: the fit must be near-exact and a constant lr high enough to get there
    # in the budget diverges
    state = common.train(model, loss_fn, steps=cfg.steps, lr=cfg.lr, checkpoint=checkpoint,
                         resume=checkpoint is not None, log_every=max(1, cfg.steps // 10),
                         evaluate=lambda step: {"seed": seed}, desc="space-time siren", progress=cfg.progress,
                         schedule=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps),
                         extra_state=(gen.get_state, gen.set_state))
    if history is not None:
        history.extend(state.history)
    out = [_predict_chunks(model, coords[span + o]).reshape(h, w, 3) for o in (-1, 0, 1)]
    return (torch.stack(out).cpu().double().numpy() + 1) / 2


def curvature_weight(curv: list[np.ndarray], sigma: float = SHRINK_SIGMA) -> np.ndarray:
    """Per-pixel weight in [0, 1] of the mean of the curvature terms ``curv`` (each (H, W, C),
    one per independently initialised fit): signal / (signal + noise of the mean), with the
    signal power from the fits' cross products and the noise from their spread, both
    averaged over a Gaussian window of ``sigma`` pixels. One fit: weight 1."""
    k = len(curv)
    if k < 2:
        return np.ones_like(curv[0])
    from scipy.ndimage import gaussian_filter

    def local(a: np.ndarray) -> np.ndarray:
        return gaussian_filter(a, (sigma, sigma, 0)) if sigma > 0 else a

    c = np.stack(curv)
    mean = c.mean(0)
    cross = (c.sum(0) ** 2 - (c ** 2).sum(0)) / (k * (k - 1))  # mean of c_i c_j, i != j
    signal = np.maximum(local(cross), 0.0)
    noise = local(((c - mean) ** 2).sum(0) / (k - 1)) / k  # variance of the mean of k fits
    return signal / (signal + noise + 1e-12)


def spacetime_predict(samples: list[np.ndarray], prev: np.ndarray, nxt: np.ndarray,
                      sigma: float | None = SHRINK_SIGMA, limit: bool = True) -> np.ndarray:
    """The space-time SIREN's prediction from the samples (3, H, W, 3) of one or more fits
    (:func:`spacetime_fit`) and the neighbours ``prev``/``nxt`` (H, W, 3): the blend plus the
    fits' mean curvature term ``f(0) - (f(-1) + f(+1)) / 2``, weighted by
    :func:`curvature_weight` (``sigma`` None: weight 1), then limited per pixel to the
    neighbours' range (``limit``)."""
    curv = [f[1] - 0.5 * (f[0] + f[2]) for f in samples]
    weight = 1.0 if sigma is None else curvature_weight(curv, sigma)
    pred = blend(prev, nxt) + weight * np.mean(curv, axis=0)
    if limit:
        pred = np.clip(pred, np.minimum(prev, nxt), np.maximum(prev, nxt))
    return pred.clip(0, 1)


def spacetime_samples(given: np.ndarray, offsets: list[int], cfg: VfiConfig, device,
                      history: list | None = None, parts: common.Parts | None = None) -> list[np.ndarray]:
    """``cfg.fits`` fits (:func:`spacetime_fit`) from seeds ``cfg.seed``, ``cfg.seed + 1``, ...;
    with ``parts``, each one checkpointed there (piece ``siren``, fit ``fitI``)."""
    return [spacetime_fit(given, offsets, cfg, device, cfg.seed + i, history,
                          parts.checkpoint("siren", f"fit{i}") if parts is not None else None)
            for i in range(cfg.fits)]


def raw_sample(samples: list[np.ndarray]) -> np.ndarray:
    """The fits' mean plain sample f(K) (H, W, 3) in [0, 1]: ``siren-raw``."""
    return np.mean([f[1] for f in samples], axis=0).clip(0, 1)


def spacetime_siren(given: np.ndarray, offsets: list[int], cfg: VfiConfig, device,
                    history: list | None = None, parts: common.Parts | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The space-time SIREN method on the ``given`` frames (T, H, W, 3) at ``offsets`` ->
    (prediction, :func:`raw_sample`), both (H, W, 3) in [0, 1]; see the module docstring.
    ``parts``: where its fits keep their checkpoints (:func:`spacetime_samples`)."""
    samples = spacetime_samples(given, offsets, cfg, device, history, parts)
    prev, nxt = given[offsets.index(-1)], given[offsets.index(1)]
    return spacetime_predict(samples, prev, nxt), raw_sample(samples)


def _image_gradients(img: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) -> (1, 2C, H, W) central differences along y and x (replicate edges)."""
    p = F.pad(img, (1, 1, 1, 1), mode="replicate")
    gy = 0.5 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])
    gx = 0.5 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2])
    return torch.cat([gy, gx], 1)


def pixel_jacobian(grad: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """The Jacobian (N, 2, 2) of a motion field in pixels per pixel, from its grid-unit one
    (``grad[:, i, j] = dm_i / dx_j``, m and x in grid units; ``px`` the pixels per grid unit
    along y and x): ``d(px_i m_i) / d(px_j x_j) = (px_i / px_j) dm_i/dx_j``. The grid-unit
    Jacobian is that only on a square frame; on a wide one its cross terms differ by (w/h)^2."""
    return grad * (px.view(2, 1) / px.view(1, 2))


def flow_siren(f0: np.ndarray, f1: np.ndarray, cfg: VfiConfig, device,
               history: list | None = None, checkpoint: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Motion-aware SIREN: the middle frame (H, W, 3) and motion m (H, W, 2) pixels of frames
    (H, W, 3) in [0, 1]: :func:`fit_flow`, then :func:`flow_predict` at ``cfg.occlusion``."""
    return flow_predict(fit_flow(f0, f1, cfg, device, history, checkpoint), f0, f1, cfg.occlusion)


def fit_flow(f0: np.ndarray, f1: np.ndarray, cfg: VfiConfig, device, history: list | None = None,
             checkpoint: Path | None = None):
    """The motion SIREN fitted to the symmetric middle-time motion field m of frames (H, W, 3)
    (see the module docstring). ``checkpoint``: the fit's checkpoint file (every 500 steps and
    on Ctrl-C; continued from where it exists)."""
    h, w, _ = f0.shape
    img0, img1 = to_image_tensor(f0, device), to_image_tensor(f1, device)
    model = Siren(2, cfg.flow_hidden, cfg.flow_layers, 2, cfg.flow_omega, cfg.flow_omega,
                  backend=cfg.backend).to(device)
    with torch.no_grad():  # start from zero motion: the first fit is the blend
        model.layers[-1].weight.zero_()
        model.layers[-1].bias.zero_()
    points = data.grid((h, w), device=device)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1)
    step = [0]
    pyramid: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    px = torch.tensor([h / 2.0, w / 2.0], device=device)  # grid units -> pixels

    def features(level: int) -> tuple[torch.Tensor, torch.Tensor]:
        # blur annealed in 4 levels: sigma = blur, blur/2, blur/4, 0 over the steps
        if level not in pyramid:
            sigma = cfg.blur / 2 ** level if level < 3 else 0.0
            out = []
            for img in (img0, img1):
                b = gaussian_blur(img, sigma)
                out.append(torch.cat([b, 4.0 * _image_gradients(b)], 1))
            pyramid[level] = (out[0], out[1])
        return pyramid[level]

    def charbonnier(r: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(r * r + 1e-6)

    def loss_fn() -> torch.Tensor:
        level = min(3, 4 * step[0] // cfg.flow_steps)
        step[0] += 1
        a, b = features(level)
        n = min(cfg.flow_batch, points.shape[0])
        idx = torch.randint(points.shape[0], (n,), generator=gen).to(device)
        p = points[idx] + (torch.rand(n, 2, generator=gen).to(device) - 0.5) * (2 / px)
        jet = model.jet(p, order=1)
        m = jet.value
        photo = charbonnier(sample(a, p - m) - sample(b, p + m)).sum(-1).mean()
        smooth = charbonnier(pixel_jacobian(jet.grad, px)).sum((-1, -2)).mean()
        return photo + cfg.smooth * smooth

    def get_state() -> dict:
        return {"generator": gen.get_state(), "step": step[0]}

    def set_state(saved: dict) -> None:
        gen.set_state(saved["generator"])
        step[0] = saved["step"]

    state = common.train(model, loss_fn, steps=cfg.flow_steps, lr=cfg.flow_lr, checkpoint=checkpoint,
                         resume=checkpoint is not None, log_every=max(1, cfg.flow_steps // 10), desc="flow siren",
                         progress=cfg.progress, extra_state=(get_state, set_state))
    if history is not None:
        history.extend(state.history)
    return model


@torch.no_grad()
def flow_predict(model, f0: np.ndarray, f1: np.ndarray, occlusion: float) -> tuple[np.ndarray, np.ndarray]:
    """The middle frame from a fitted motion SIREN (:func:`fit_flow`) and frames (H, W, 3):
    both warps blended with the occlusion weights of sharpness ``occlusion`` -> (frame (H, W, 3),
    motion (H, W, 2) pixels)."""
    h, w, _ = f0.shape
    device = next(model.parameters()).device
    img0, img1 = to_image_tensor(f0, device), to_image_tensor(f1, device)
    jet = model.render((h, w), order=1)
    m = jet.value.reshape(-1, 2)
    grad = jet.grad.reshape(-1, 2, 2)
    pred = synthesize(img0, img1, data.grid((h, w), device=device), -m, m, _identity_plus(grad, -1.0),
                      _identity_plus(grad, 1.0), occlusion)
    flow_px = (m * torch.tensor([h / 2.0, w / 2.0], device=device)).reshape(h, w, 2).cpu().double().numpy()
    return pred.reshape(h, w, 3).cpu().double().numpy().clip(0, 1), flow_px


# ---------------------------------------------------------------- evaluation

def quantize(img: np.ndarray) -> np.ndarray:
    """[0, 1] -> 8-bit values 0..255 as float64 (the Middlebury protocol's units)."""
    return np.round(np.clip(img, 0, 1) * 255.0)


def score(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """IE, NIE, PSNR and SSIM of a prediction (H, W, 3) in [0, 1] against the ground truth,
    both rounded to 8 bits first."""
    p, t = quantize(pred), quantize(gt)
    return {"ie": round(metrics.interpolation_error(p, t), 4),
            "nie": round(metrics.normalized_interpolation_error(p, t), 4),
            "psnr": round(metrics.psnr(p, t, 255.0), 4),
            "ssim": round(metrics.ssim(p, t, 255.0), 5)}


def split_frames(frames: np.ndarray, offsets: list[int]):
    """Frames (T', H, W, 3) at ``offsets`` (0 = the ground truth) -> (ground truth, the given
    frames, their offsets, the neighbour before, the neighbour after)."""
    given = np.delete(frames, offsets.index(0), axis=0)
    return (frames[offsets.index(0)], given, [o for o in offsets if o != 0],
            frames[offsets.index(-1)], frames[offsets.index(1)])


def interpolate(frames: np.ndarray, offsets: list[int], cfg: VfiConfig, device,
                methods=METHODS, parts: common.Parts | None = None) -> dict[str, dict]:
    """Every method on one triplet: ``frames`` (T', H, W, 3) in [0, 1] at ``offsets``
    (0 = the ground truth) -> {method: {"pred": (H, W, 3), "seconds": s, "history": [...],
    "flow": (H, W, 2) pixels or None}}. With ``parts``, a method found there is taken from it
    and each one run is put there (``siren`` and ``siren-raw`` are one piece: one set of fits
    gives both)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods {unknown} not known; expected a subset of {list(METHODS)}")
    _, given, given_offsets, f0, f1 = split_frames(frames, offsets)
    pieces: dict[str, tuple[dict, dict]] = {}
    out: dict[str, dict] = {}
    for method in methods:
        piece = "siren" if method == "siren-raw" else method
        if piece not in pieces:
            got = parts.get(piece) if parts is not None else None
            if got is None:
                carried = parts.started(piece) if parts is not None else 0.0  # fits continued from checkpoints
                common.seed_all(cfg.seed)
                hist: list = []
                t0 = time.perf_counter()
                if piece == "blend":
                    arrays = {"pred": blend(f0, f1)}
                elif piece == "tvl1":
                    pred, flow = tvl1_interpolate(f0, f1, cfg.occlusion, attachment=cfg.tvl1_attachment)
                    arrays = {"pred": pred, "flow": flow}
                elif piece == "siren":
                    pred, raw = spacetime_siren(given, given_offsets, cfg, device, hist, parts)
                    arrays = {"pred": pred, "raw": raw}
                else:  # siren-flow
                    pred, flow = flow_siren(f0, f1, cfg, device, hist,
                                            parts.checkpoint(piece) if parts is not None else None)
                    arrays = {"pred": pred, "flow": flow}
                got = arrays, {"seconds": round(time.perf_counter() - t0 + carried, 3), "history": hist}
                if parts is not None:
                    parts.put(piece, *got)
            pieces[piece] = got
        arrays, info = pieces[piece]
        out[method] = {"pred": arrays["raw" if method == "siren-raw" else "pred"], "seconds": info["seconds"],
                       "history": info["history"], "flow": arrays.get("flow")}
    return out


# ---------------------------------------------------------------- figures

LABELS = {"blend": "linear blend", "tvl1": "TV-L1 flow", "siren": "space-time SIREN",
          "siren-raw": "space-time SIREN, raw",
          "siren-flow": "motion SIREN", "gt": "ground truth"}
# Figure fonts (pt): the figures here are at most about 8 in wide, and the report places a figure
# at most its text width wide (fastsiren.report.build.TEXT_WIDTH_IN), scaling these down a little.
FONT, FONT_TITLE = 9, 10


def method_label(name: str, wrap: int | None = None) -> str:
    """A method as figures name it: its key in the tables and results, then what it is,
    "tvl1 (TV-L1 flow)"; the ground truth as "ground truth". ``wrap``: the key on a line of
    its own and the description wrapped at that many characters (narrow panel titles)."""
    import textwrap

    desc = LABELS.get(name)
    if name == "gt" or desc is None:
        return desc or name
    if wrap is None:
        return f"{name} ({desc})"
    return name + "\n" + "\n".join(textwrap.wrap(f"({desc})", wrap))


def error_map(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-pixel colour error ||pred - gt|| in 8-bit units (H, W)."""
    return np.sqrt(((quantize(pred) - quantize(gt)) ** 2).sum(-1))


def crop_box(err: np.ndarray, frac: float = 0.4) -> tuple[int, int, int, int]:
    """The (top, left, height, width) window of ``frac`` of each side with the largest summed
    error of ``err`` (H, W): where the methods differ most, the blend's error is large."""
    h, w = err.shape
    ch, cw = min(h, max(4, int(h * frac))), min(w, max(4, int(w * frac)))
    top, left = common.worst_window(err, (ch, cw))
    return top, left, ch, cw


def plot_triplet(path: Path, preds: dict[str, np.ndarray], gt: np.ndarray, scores: dict[str, dict],
                 title: str, why: str = "") -> None:
    """One figure, a column per method and one for the ground truth (each headed by the
    method's key and name, and its IE and PSNR): the prediction (top), a crop of it (the box of
    largest blend error, middle) and the error map (the RGB Euclidean norm of the 8-bit error,
    bottom). The error maps share one scale, the 99th percentile of all of them, in the colour
    bar beneath them."""
    from matplotlib.patches import Rectangle

    names = list(preds) + ["gt"]
    errs = {m: error_map(p, gt) for m, p in preds.items()}
    top, left, ch, cw = crop_box(errs["blend"] if "blend" in errs else np.zeros(gt.shape[:2]))
    emax = float(np.percentile(np.concatenate([e.ravel() for e in errs.values()]), 99)) or 1.0
    h, w = gt.shape[:2]
    col = min(1.22, 7.2 / len(names))  # inches per column: at most about 7.9 in in all
    fig, axes = common.plt_figure(3, len(names), figsize=(0.7 + col * len(names), 3.1 * col * h / w + 2.2),
                                  squeeze=False, layout="constrained")
    for j, name in enumerate(names):
        img = gt if name == "gt" else preds[name]
        axes[0, j].imshow(np.clip(img, 0, 1))
        axes[0, j].add_patch(Rectangle((left - 0.5, top - 0.5), cw, ch, fill=False, edgecolor="yellow",
                                       linewidth=1))
        sub = "" if name == "gt" else f"\nIE {scores[name]['ie']:.2f}\nPSNR {scores[name]['psnr']:.1f}"
        axes[0, j].set_title(method_label(name, wrap=15) + sub, fontsize=FONT)
        axes[1, j].imshow(np.clip(img[top:top + ch, left:left + cw], 0, 1), interpolation="nearest")
        if name != "gt":
            im = axes[2, j].imshow(errs[name], cmap="inferno", vmin=0, vmax=emax)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("frame", fontsize=FONT)
    axes[1, 0].set_ylabel("crop", fontsize=FONT)
    axes[2, 0].set_ylabel("\u2016\u0394RGB\u2016", fontsize=FONT)
    axes[2, -1].axis("off")  # the ground truth has no error map
    cb = fig.colorbar(im, ax=axes[2, :-1] if len(names) > 1 else axes[2, :], location="bottom", extend="max",
                      shrink=0.7, aspect=40, pad=0.05)
    cb.set_label(f"\u2016\u0394RGB\u2016: error, 8-bit units (scale up to the 99th percentile, {emax:.0f})",
                 fontsize=FONT)
    cb.ax.tick_params(labelsize=FONT)
    fig.suptitle(title, fontsize=FONT_TITLE)
    common.save_figure(fig, path, caption=(
        f"Frame interpolation, {title}{why}: every method's prediction of the middle frame beside the true one "
        "(top row; each column headed by the method's key in the tables, its name, IE and PSNR), a crop of "
        "the region where the linear blend errs most (middle row, the yellow box above) and the per-pixel "
        "error, the Euclidean norm of the RGB difference in 8-bit units (bottom row; one colour scale for "
        "all methods, in the bar beneath, up to the 99th percentile of their errors, brighter pixels "
        "clipped)."))


NEXT_FRAME = "middle \u2192 next frame (K+G)"


def flow_rgb(flow: np.ndarray, vmax: float) -> np.ndarray:
    """Colour code of a motion field (H, W, 2) = (dy, dx) pixels: hue = direction (as drawn on
    the image, y down), brightness = magnitude / ``vmax`` (clipped)."""
    from matplotlib.colors import hsv_to_rgb

    mag = np.hypot(flow[..., 0], flow[..., 1])
    hsv = np.stack([(np.arctan2(flow[..., 0], flow[..., 1]) / (2 * np.pi)) % 1, np.ones_like(mag),
                    np.clip(mag / vmax, 0, 1)], -1)
    return hsv_to_rgb(hsv)


def plot_flow(path: Path, flows: dict[str, np.ndarray], title: str, why: str = "") -> None:
    """Colour-coded motion fields (H, W, 2) in pixels (hue = direction, value = magnitude),
    from the middle frame K to the next one, K+G (the displacement whose backward warp of
    frame K+G gives the middle frame), with a colour-wheel key of the common scale."""
    n = len(flows)
    h, w = next(iter(flows.values())).shape[:2]
    panel = min(2.7, 6.0 / n)  # inches per motion field: at most about 7.9 in in all
    fig, axes = common.plt_figure(1, n + 1, figsize=(panel * n + 1.9, max(1.4, panel * h / w) + 1.4), squeeze=False,
                                  layout="constrained", width_ratios=[1] * n + [1.45 / panel])
    vmax = max(float(np.hypot(f[..., 0], f[..., 1]).max()) for f in flows.values()) or 1.0
    for ax, (name, f) in zip(axes[0], flows.items()):
        ax.imshow(flow_rgb(f, vmax))
        ax.set_title(f"{method_label(name)}\n{NEXT_FRAME}\nmax {np.hypot(f[..., 0], f[..., 1]).max():.1f} px",
                     fontsize=FONT)
        ax.set_xticks([])
        ax.set_yticks([])
    key = axes[0, -1]
    yy, xx = np.mgrid[-1:1:101j, -1:1:101j]
    wheel = flow_rgb(np.stack([yy, xx], -1) * vmax, vmax)
    wheel[np.hypot(yy, xx) > 1] = 1.0
    key.imshow(wheel, extent=(-vmax, vmax, vmax, -vmax))
    key.set_title(f"key: direction (hue),\nlength 0\u2013{vmax:.1f} px\n(brightness)", fontsize=FONT)
    key.set_xlabel("dx (px)", fontsize=FONT)
    key.set_ylabel("dy (px, down)", fontsize=FONT)
    from matplotlib.ticker import MaxNLocator

    for axis in (key.xaxis, key.yaxis):
        axis.set_major_locator(MaxNLocator(3, symmetric=True))
    key.tick_params(labelsize=FONT)
    fig.suptitle(title, fontsize=FONT_TITLE)
    common.save_figure(fig, path, caption=(
        f"Motion fields from the middle frame K to the next frame K+G, {title}{why}: hue is the direction and "
        "brightness the length (one scale for all panels), as the colour wheel on the right shows (its x "
        "and y axes are the displacement in pixels, y pointing down as in the image), for each "
        "motion-compensated method, headed by its key in the tables and its name."))


# ---------------------------------------------------------------- one run

def _row(method: str, video: str, frame: int, gap: int, s: dict, seconds: float) -> dict:
    return {"method": method, "video": video, "frame": frame, "gap": gap, **s, "seconds": seconds}


def run(config: VfiConfig, resume: bool = False) -> dict:
    """Interpolate one frame with every method, write the run folder, return its metrics.

    Each method's output goes to the run folder's ``parts/`` when it finishes, and the fit
    that runs keeps its checkpoint there; ``resume`` (a run folder of the same configuration)
    takes the finished methods from there and continues the fit that was cut short, as
    ``fastsiren sr --resume`` does."""
    cfg = resolve(config)

    device, backend = common.task_backend(cfg.backend, cfg.device)
    frames, offsets = load_frames(cfg.video, cfg.frame, cfg.gap, cfg.context, cfg.size)
    folder = common.RunFolder(cfg.out, cfg, resume=resume)
    t0 = time.perf_counter()
    parts = common.Parts(folder, resume)
    out = interpolate(frames, offsets, cfg, device, parts=parts)
    gt = frames[offsets.index(0)]
    scores = {m: score(r["pred"], gt) for m, r in out.items()}
    for m, r in out.items():
        common.save_png(folder.file(f"pred_{m}.png"), r["pred"] * 2 - 1)
    common.save_png(folder.file("pred.png"), out["siren-flow"]["pred"] * 2 - 1)
    common.save_png(folder.file("blend.png"), out["blend"]["pred"] * 2 - 1)
    common.save_png(folder.file("gt.png"), gt * 2 - 1)
    title = f"{cfg.video} frame {cfg.frame}, gap {cfg.gap} ({gt.shape[1]}x{gt.shape[0]})"
    plot_triplet(folder.file("comparison.png"), {m: r["pred"] for m, r in out.items()}, gt, scores, title)
    plot_flow(folder.file("flow.png"), {m: r["flow"] for m, r in out.items() if r["flow"] is not None}, title)
    rows = [_row(m, cfg.video, cfg.frame, cfg.gap, scores[m], out[m]["seconds"]) for m in out]
    doc = common.results_doc("vfi", cfg.profile, rows, backend=backend, device=device,
                             seconds=time.perf_counter() - t0 + parts.earlier, size=list(gt.shape[:2]),
                             given_frames=[cfg.frame + o * cfg.gap for o in offsets if o != 0],
                             pred="siren-flow", settings=dataclasses.asdict(cfg),
                             history={m: r["history"] for m, r in out.items() if r["history"]})
    return folder.finish(doc)


# ---------------------------------------------------------------- evaluation table

TABLE_TRIPLETS = 5  # target frames per clip of the table (x gaps 1, 2): held out from DEV_FRAMES


def table_frames(n_frames: int, triplets: int, gaps) -> list[int]:
    """``triplets`` target frames evenly spread over a clip of ``n_frames``, each valid for every gap."""
    margin = max(gaps)
    if n_frames < 2 * margin + 1:
        raise ValueError(f"--video has {n_frames} frames, too few for gap {margin}")
    return sorted({int(round(k)) for k in np.linspace(margin, n_frames - 1 - margin, triplets)})


def summarize(rows: list[dict]) -> list[dict]:
    """Mean IE / NIE / PSNR / SSIM / seconds per (video, gap, method), and per (video, method)
    over all gaps (gap 0)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["video"], r["gap"], r["method"]), []).append(r)
        groups.setdefault((r["video"], 0, r["method"]), []).append(r)
    out = []
    for (video, gap, method), rs in sorted(groups.items()):
        out.append({"video": video, "gap": gap, "method": method, "n": len(rs),
                    **{k: round(float(np.mean([r[k] for r in rs])), 4)
                       for k in ("ie", "nie", "psnr", "ssim", "seconds")}})
    return out


def plot_summary(path: Path, rows: list[dict], source: str = "") -> None:
    """Per clip and gap, each method's IE minus the linear blend's on the same triplet: the
    mean over the triplets (bars) and their standard deviation (error bars), with the number
    of triplets under each group. ``rows``: the table's rows (one per triplet and method);
    ``source``: the run it shows (profile, device, commit, file), for the caption."""
    blend_ie = {(r["video"], r["gap"], r["frame"]): r["ie"] for r in rows if r["method"] == "blend"}
    keys = sorted({k[:2] for k in blend_ie})
    methods = [m for m in METHODS if m != "blend" and any(r["method"] == m for r in rows)]
    fig, ax = common.plt_figure(figsize=(min(7.9, max(5.0, 1.15 * len(keys) + 1.2)), 3.9), layout="constrained")
    width = 0.8 / max(1, len(methods))
    for i, m in enumerate(methods):
        means, spreads = [], []
        for k in keys:
            d = [r["ie"] - blend_ie[(*k, r["frame"])] for r in rows
                 if r["method"] == m and (r["video"], r["gap"]) == k and (*k, r["frame"]) in blend_ie]
            means.append(np.mean(d) if d else np.nan)
            spreads.append(np.std(d) if d else np.nan)
        ax.bar(np.arange(len(keys)) + i * width, means, width, yerr=spreads, capsize=2,
               error_kw={"lw": 0.8}, label=method_label(m))
    counts = {k: sum(1 for b in blend_ie if b[:2] == k) for k in keys}
    ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2,
                  [f"{v}\ngap {g}\nn = {counts[(v, g)]}" for v, g in keys], fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylabel("IE \u2212 linear blend's IE\n(8-bit; below 0: better)", fontsize=FONT)
    fig.legend(loc="outside upper center", ncol=2, fontsize=FONT, frameon=False)  # above the bars
    ax.grid(axis="y", alpha=0.3)
    common.save_figure(fig, path, caption=(
        "Interpolation error of each method minus that of the linear blend on the same triplet (8-bit "
        "units; below zero the method beats the blend), per clip and gap: the mean over the n triplets "
        "(bars) and their standard deviation (error bars); the legend names each method by its key in the "
        "tables, then what it is" + (f" ({source})" if source else "") + "."))


# how the table picks the one triplet per clip it draws (its gain: see run_table)
TABLE_FIGURE_CHOICE = (", the triplet of this clip, at its largest gap, where the best method gains most over the "
                       "linear blend (a best case for motion compensation, not a typical one; the tables give "
                       "every triplet)")


def triplet_figures(stem: Path, video: str, frame: int, gap: int, res: dict, scores: dict, gt: np.ndarray,
                    profile: str, why: str = "") -> None:
    """``STEM.png`` (predictions, crops, error maps) and ``STEM-flow.png`` (motion fields);
    ``why``: how the triplet was chosen, for the captions (", ...")."""
    h, w = gt.shape[:2]
    title = f"{video} frame {frame}, gap {gap} ({w}x{h}, {profile} profile)"
    plot_triplet(stem.with_name(stem.name + ".png"), {m: r["pred"] for m, r in res.items()}, gt, scores, title,
                 why)
    flows = {m: r["flow"] for m, r in res.items() if r["flow"] is not None}
    if flows:
        plot_flow(stem.with_name(stem.name + "-flow.png"), flows, title, why)


def triplet_frames(targets, gaps) -> set[int]:
    """Every frame the triplets of ``targets`` x ``gaps`` read or predict."""
    return {k + s * g for k in targets for g in gaps for s in (-1, 0, 1)}


def dev_overlap(clip: str, targets, gaps) -> list[int]:
    """Frames that the table's triplets share with the dev subset of ``clip`` (must be none)."""
    return sorted(triplet_frames(targets, gaps) & triplet_frames(DEV_FRAMES.get(clip, ()), (1, 2)))


def _resume_table(out: Path, resume: bool, cfg: VfiConfig, device, backend: str, methods,
                  units: set[tuple], settings: dict | None = None) -> tuple[dict, dict]:
    """The rows of the VFI table or dev run at ``out`` that ``resume`` keeps, by triplet:
    ({(video, frame, gap): [rows]} of the triplets with a row for every one of ``methods``
    (every row of a triplet is written at once), the extra fields of the new document).
    ``units``: this run's triplets (a file with others is refused); ``settings``: what the file's
    settings must be (default: all of ``cfg``)."""
    done, extra = common.resumed_rows(out, resume, key=lambda r: (r["video"], r["frame"], r["gap"]), units=units,
                                      task="vfi", profile=cfg.profile, device=common.device_name(device),
                                      backend=backend,
                                      settings=dataclasses.asdict(cfg) if settings is None else settings)
    return {k: rs for k, rs in done.items() if set(methods) <= {r["method"] for r in rs}}, extra


def run_table(cfg: VfiConfig, out: Path, figures: Path, clips=data.VIDEO_CLIPS, triplets: int = TABLE_TRIPLETS,
              gaps=(1, 2), methods=METHODS, resume: bool = False) -> dict:
    """Every method on ``triplets`` frames x ``gaps`` of every clip: the results document
    (rewritten after every triplet, ``complete`` False until the end) and figures. A count of
    triplets whose frames would touch the dev subset (the frames the method was tuned on) is
    refused before anything runs: the table is a held-out evaluation. ``resume``: the
    triplets already in ``out`` (a run of the same settings) are kept, not run again."""
    cfg = resolve(cfg)
    # what can be refused without decoding is refused before it (the clips take seconds to minutes)
    device, backend = common.task_backend(cfg.backend, cfg.device)
    common.check_output_dir(figures, "--figures")
    if not resume:
        common.check_not_unfinished(out)
    loaded: dict[str, tuple[list[int], dict[int, np.ndarray]]] = {}
    common.figure_stems(clips, "clips")
    for clip in clips:  # every clip decoded (once) and checked before the first fit
        ks: list[int] = []

        def select(n: int, ks=ks, clip=clip) -> list[int]:
            ks.extend(table_frames(n, triplets, gaps))
            shared = dev_overlap(clip, ks, gaps)
            if shared:
                raise ValueError(f"triplets={triplets} puts the {clip} table on frames {shared}, which the dev "
                                 f"subset (DEV_FRAMES, used to tune the method) also uses; the table must be held "
                                 f"out: use triplets={TABLE_TRIPLETS}")
            return sorted(triplet_frames(ks, gaps))

        raw = data.read_video(clip, frames=select)
        loaded[clip] = (ks, dict(zip(sorted(triplet_frames(ks, gaps)), resize_frames(raw, cfg.size))))
        del raw
    units = {(clip, k, g) for clip, (ks, _) in loaded.items() for k in ks for g in gaps}
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in SINGLE_RUN}  # the table runs its own
    done, extra = _resume_table(out, resume, cfg, device, backend, methods, units, settings)
    rows: list[dict] = []
    t0 = time.perf_counter() - extra.pop("seconds", 0.0)
    figures.mkdir(parents=True, exist_ok=True)
    commit = common.git_commit()  # the code that ran, not what HEAD is at the last rewrite

    def write(complete: bool) -> dict:
        summary = summarize(rows)
        doc = common.results_doc("vfi", cfg.profile, rows, backend=backend, device=device,
                                 seconds=time.perf_counter() - t0, commit=commit, complete=complete,
                                 summary=summary, settings=settings, published=PUBLISHED, **extra)
        common.write_json(out, doc)
        return doc

    def gain(scores: dict) -> float:
        # the figure shows the triplet where motion compensation gains most over the blend
        # (the largest blend IE alone picks scene cuts, where every method fails)
        return scores["blend"]["ie"] - min(v["ie"] for v in scores.values()) if "blend" in scores else 0.0

    for clip in clips:
        ks, frames = loaded.pop(clip)
        shown: float | None = None  # the gain of the triplet the clip's figure shows
        for k in ks:
            for g in gaps:
                kept = done.get((clip, k, g))
                if kept is not None:  # --resume: measured by the earlier run (its figure, if shown, too)
                    rows.extend(r for r in kept if r["method"] in methods)
                    key = gain({r["method"]: r for r in kept if r["method"] in methods})
                    if g == max(gaps) and (shown is None or key > shown):
                        shown = key
                    continue
                trip = np.stack([frames[k - g], frames[k], frames[k + g]])
                res = interpolate(trip, [-1, 0, 1], dataclasses.replace(cfg, frame=k, gap=g), device, methods)
                scores = {m: score(r["pred"], trip[1]) for m, r in res.items()}
                rows.extend(_row(m, clip, k, g, scores[m], res[m]["seconds"]) for m in res)
                print(f"{clip} frame {k} gap {g}: " + ", ".join(f"{m} IE {s['ie']:.2f}" for m, s in scores.items()),
                      flush=True)
                key = gain(scores)
                if g == max(gaps) and (shown is None or key > shown):
                    # drawn now, before the row is written: a resumed table finds the figure of
                    # every triplet its results file holds
                    shown = key
                    # a clip given as a path is named by its stem (no folders inside the figure's name)
                    triplet_figures(figures / f"vfi-{cfg.profile}-{Path(clip).stem}", clip, k, g, res, scores,
                                    trip[1], cfg.profile, TABLE_FIGURE_CHOICE)
                write(False)
    doc = write(True)
    plot_summary(figures / f"vfi-{cfg.profile}-ie.png", doc["rows"],
                 f"profile {cfg.profile}, {doc.get('device', '?')}, commit {str(doc.get('commit', '?'))[:10]}, "
                 f"{Path(out).name}")
    return doc


# The dev subset the space-time SIREN's settings were chosen on (gaps 1 and 2): target frames,
# and their neighbours, disjoint from those of the evaluation table (``table_frames(n, 5, (1, 2))``).
DEV_FRAMES = {"bigbuckbunny": (18, 50, 113), "carphone": (16, 45, 74), "bikes": (33, 94, 155, 216)}
DEV_SIGMAS = (0.0, 1.0, 2.0, 4.0)


def dev_variants(samples: list[np.ndarray], prev: np.ndarray, nxt: np.ndarray) -> dict[str, np.ndarray]:
    """The ways of turning the fits' samples into a prediction that the dev run compares: with
    k fits, every window size of the weight; with 2..k-1 fits (the first ones), the weight at
    :data:`SHRINK_SIGMA`, so one run also tells how the method gains with the number of fits."""
    k = len(samples)
    out = {"siren-raw": raw_sample(samples),
           "1 fit: corrected": spacetime_predict(samples[:1], prev, nxt, None, False),
           "1 fit: corrected, limited": spacetime_predict(samples[:1], prev, nxt, None, True),
           f"{k} fits: corrected": spacetime_predict(samples, prev, nxt, None, False),
           f"{k} fits: corrected, limited": spacetime_predict(samples, prev, nxt, None, True)}
    for j in range(2, k):
        out[weighted_label(j, SHRINK_SIGMA)] = spacetime_predict(samples[:j], prev, nxt, SHRINK_SIGMA, True)
    for sigma in DEV_SIGMAS:
        out[weighted_label(k, sigma)] = spacetime_predict(samples, prev, nxt, sigma, True)
    return out


def weighted_label(fits: int, sigma: float) -> str:
    """A dev variant's name: ``fits`` fits, weighted at ``sigma``, limited; the table's
    ``siren`` is ``weighted_label(cfg.fits, SHRINK_SIGMA)``."""
    return f"{fits} fits: weighted (sigma {sigma:g}), limited"


# the settings of the space-time SIREN and of the flow methods: a dev run of the one leaves the
# other's out of its settings (neither saved nor compared on --resume)
SPACETIME_SETTINGS = ("steps", "lr", "hidden", "layers", "batch", "omega", "time_scale", "fits")
FLOW_SETTINGS = ("flow_steps", "flow_lr", "flow_hidden", "flow_layers", "flow_batch", "flow_omega", "smooth", "blur",
                 "occlusion", "tvl1_attachment")


def _dev_run(cfg: VfiConfig, out: Path, frames, gaps, resume: bool, methods: tuple[str, ...], measure,
             unused: tuple[str, ...] = (), **doc_fields) -> dict:
    """A tuning run on the dev subset (``frames``: {clip: targets}, default :data:`DEV_FRAMES`) x
    ``gaps``: ``measure(frames, offsets, device)`` gives each triplet's {method: (scores,
    seconds)}; a results document (with ``doc_fields``) rewritten after every triplet. Its
    ``settings`` leave out those ``unused`` by the run (neither saved nor compared on resume).
    ``resume``: the triplets already in ``out`` with a row of every one of ``methods`` (same
    settings) are kept."""
    device, backend = common.task_backend(cfg.backend, cfg.device)
    frames = frames or DEV_FRAMES
    units = {(clip, k, g) for clip, ks in frames.items() for k in ks for g in gaps}
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in (*unused, *SINGLE_RUN)}
    done, extra = _resume_table(out, resume, cfg, device, backend, methods, units, settings)
    rows: list[dict] = []
    t0 = time.perf_counter() - extra.pop("seconds", 0.0)
    commit = common.git_commit()  # the code that ran, not what HEAD is at the last rewrite

    def write(complete: bool) -> dict:
        doc = common.results_doc("vfi", cfg.profile, rows, backend=backend, device=device,
                                 seconds=time.perf_counter() - t0, commit=commit, complete=complete,
                                 summary=summarize(rows), settings=settings, dev_frames=frames,
                                 gaps=list(gaps), **doc_fields, **extra)
        common.write_json(out, doc)
        return doc

    for clip, ks in frames.items():
        for k in ks:
            for g in gaps:
                if (clip, k, g) in done:  # --resume: measured by the earlier run
                    rows.extend(done[(clip, k, g)])
                    continue
                found = measure(*load_frames(clip, k, g, cfg.context, cfg.size), device)
                rows.extend(_row(m, clip, k, g, sc, sec) for m, (sc, sec) in found.items())
                print(f"dev {clip} frame {k} gap {g}: "
                      + ", ".join(f"{m} {sc['ie']:.2f}" for m, (sc, _) in found.items()), flush=True)
                write(False)
    return write(True)


def run_dev(cfg: VfiConfig, out: Path, frames=None, gaps=(1, 2), resume: bool = False) -> dict:
    """The dev run (:func:`_dev_run`): per triplet, ``cfg.fits`` space-time SIREN fits and every
    variant of :func:`dev_variants` from them, with the blend."""
    cfg = resolve(cfg)
    if cfg.fits < 2:
        raise ValueError(f"--fits must be >= 2 for --dev (the weighted variants need two fits), got {cfg.fits}")

    def measure(frames: np.ndarray, offsets: list[int], device) -> dict[str, tuple[dict, float]]:
        gt, given, given_offsets, prev, nxt = split_frames(frames, offsets)
        t1 = time.perf_counter()
        samples = spacetime_samples(given, given_offsets, cfg, device)
        seconds = round(time.perf_counter() - t1, 3)
        preds = {"blend": blend(prev, nxt), **dev_variants(samples, prev, nxt)}
        return {m: (score(p, gt), 0.0 if m == "blend" else seconds) for m, p in preds.items()}

    return _dev_run(cfg, out, frames, gaps, resume, ("blend",), measure, FLOW_SETTINGS, shrink_sigma=SHRINK_SIGMA)


def run_dev_occlusion(cfg: VfiConfig, out: Path, frames=None, gaps=(1, 2), values=DEV_OCCLUSION,
                      resume: bool = False) -> dict:
    """The occlusion dev run (:func:`_dev_run`): per triplet, both flow methods (TV-L1 and the
    motion SIREN) with the occlusion weights at each sharpness of ``values`` (0: the plain
    average of the two warps), each method's field computed once per triplet and blended at
    every sharpness, with the blend. The profiles' :data:`OCCLUSION` is the value with the lowest mean IE
    over both methods and every dev triplet."""
    cfg = resolve(cfg)
    values = tuple(float(v) for v in values)
    for v in values:
        common.non_negative("occlusion sharpness (values entry)", v)
    names = {(m, v): f"{m}, occlusion {v:g}" for m in ("tvl1", "siren-flow") for v in values}

    def measure(frames: np.ndarray, offsets: list[int], device) -> dict[str, tuple[dict, float]]:
        gt, _, _, prev, nxt = split_frames(frames, offsets)
        t1 = time.perf_counter()
        ft0 = tvl1_flow(prev, nxt, cfg.tvl1_attachment)
        tvl1_seconds = round(time.perf_counter() - t1, 3)
        common.seed_all(cfg.seed)
        t1 = time.perf_counter()
        field = fit_flow(prev, nxt, cfg, device)
        siren_seconds = round(time.perf_counter() - t1, 3)
        found = {"blend": (score(blend(prev, nxt), gt), 0.0)}
        for v in values:  # the same two fields, blended at each sharpness
            found[names["tvl1", v]] = (score(tvl1_interpolate(prev, nxt, v, ft0)[0], gt), tvl1_seconds)
            found[names["siren-flow", v]] = (score(flow_predict(field, prev, nxt, v)[0], gt), siren_seconds)
        return found

    unused = ("occlusion",) + SPACETIME_SETTINGS  # swept, and not run: not this run's settings
    return _dev_run(cfg, out, frames, gaps, resume, ("blend", *names.values()), measure, unused,
                    occlusion_values=list(values))



def run_dev_flow(cfg: VfiConfig, out: Path, frames=None, gaps=(1, 2), blurs=DEV_BLURS, smooths=DEV_SMOOTHS,
                 attachments=DEV_ATTACHMENTS, resume: bool = False) -> dict:
    """The flow methods' dev run (:func:`_dev_run`): per triplet, the motion SIREN at each
    (starting blur, smoothness weight) of ``blurs`` x ``smooths`` and TV-L1 at each data-term
    weight of ``attachments``, both at ``cfg.occlusion``, with the blend. Each method's defaults
    (the profiles' ``blur`` and ``smooth``; :data:`TVL1_ATTACHMENT`) are its setting with the
    lowest mean IE over every dev triplet."""
    cfg = resolve(cfg)
    grid = [(float(b), float(m)) for b in blurs for m in smooths]
    for b, m in grid:
        common.non_negative("blur (blurs entry)", b)
        common.non_negative("smooth (smooths entry)", m)
    attachments = tuple(float(a) for a in attachments)
    for a in attachments:
        common.positive("tvl1 attachment (attachments entry)", a)
    names = {**{("siren-flow", g): f"siren-flow, blur {g[0]:g}, smooth {g[1]:g}" for g in grid},
             **{("tvl1", a): f"tvl1, attachment {a:g}" for a in attachments}}

    def measure(frames: np.ndarray, offsets: list[int], device) -> dict[str, tuple[dict, float]]:
        gt, _, _, prev, nxt = split_frames(frames, offsets)
        found = {"blend": (score(blend(prev, nxt), gt), 0.0)}
        for a in attachments:
            t1 = time.perf_counter()
            pred, _ = tvl1_interpolate(prev, nxt, cfg.occlusion, attachment=a)
            found[names["tvl1", a]] = (score(pred, gt), round(time.perf_counter() - t1, 3))
        for b, m in grid:
            common.seed_all(cfg.seed)
            t1 = time.perf_counter()
            pred, _ = flow_siren(prev, nxt, dataclasses.replace(cfg, blur=b, smooth=m), device)
            found[names["siren-flow", (b, m)]] = (score(pred, gt), round(time.perf_counter() - t1, 3))
        return found

    unused = ("blur", "smooth", "tvl1_attachment") + SPACETIME_SETTINGS  # swept, and not run
    return _dev_run(cfg, out, frames, gaps, resume, ("blend", *names.values()), measure, unused,
                    flow_grid={"blur": list(blurs), "smooth": list(smooths), "tvl1_attachment": list(attachments)})


# Other data, for context only (not measured here): Middlebury "Evaluation" set, mean IE over
# all pixels of its 8 sequences, as tabulated in Table 3 of Cheng and Chen, AAAI 2020 (DSepConv).
_MIDDLEBURY = "Middlebury benchmark via Cheng & Chen, AAAI 2020, Table 3"
PUBLISHED = [{"method": "AdaConv", "dataset": "Middlebury evaluation", "ie": 6.20, "source": _MIDDLEBURY},
             {"method": "SepConv-L1", "dataset": "Middlebury evaluation", "ie": 5.61, "source": _MIDDLEBURY},
             {"method": "DAIN", "dataset": "Middlebury evaluation", "ie": 4.86, "source": _MIDDLEBURY}]


# ---------------------------------------------------------------- CLI

def add_arguments(parser) -> None:
    common.add_common_arguments(parser, image=None, default_out="runs/vfi", resume=RESUME_HELP)
    # a single run's triplet: None unless given, so that the table and dev modes (which run their
    # own triplets) can refuse them
    parser.add_argument("--video", help=f"bundled clip ({', '.join(data.VIDEO_CLIPS)}), a video file or a folder of "
                                        f"frames (single run only; default: {SINGLE_RUN['video']})")
    parser.add_argument("--frame", type=int, help="index K of the frame to predict (single run only; default: "
                                                  f"{SINGLE_RUN['frame']})")
    parser.add_argument("--gap", type=int, help="G: predict frame K from frames K-G and K+G (single run only; "
                                                f"default: {SINGLE_RUN['gap']})")
    parser.add_argument("--context", type=int,
                        help="C: frames given a side (K -+ G, K -+ 3G, ...; the space-time SIREN uses them; single "
                             f"run only; default: {SINGLE_RUN['context']})")
    parser.add_argument("--size", type=int, help="long side of the processed frames in pixels (default: profile)")
    parser.add_argument("--steps", type=int, help="Adam steps of the space-time SIREN (default: profile)")
    parser.add_argument("--flow-steps", type=int, help="Adam steps of the motion SIREN (default: profile)")
    parser.add_argument("--hidden", type=int, help="hidden width of the space-time SIREN (default: profile)")
    parser.add_argument("--time-scale", type=float,
                        help="factor on the time coordinate of the space-time SIREN (default: profile)")
    parser.add_argument("--fits", type=int,
                        help="independently initialised space-time SIREN fits per triplet (default: profile)")
    parser.add_argument("--smooth", type=float, help="weight of the motion field's Jacobian prior (default: profile)")
    parser.add_argument("--table", action="store_true",
                        help="evaluate every method on --triplets frames x gaps 1, 2 of every bundled clip; "
                             "--out is then the results JSON (default docs/results/vfi-PROFILE.json)")
    parser.add_argument("--triplets", type=int,
                        help="frames per clip in --table mode (x 2 gaps = triplets per clip); a count whose "
                             f"frames touch the dev subset is refused (default: {TABLE_TRIPLETS})")
    parser.add_argument("--figures", help="figure folder in --table mode (default: docs/figures)")
    parser.add_argument("--dev", action="store_true",
                        help="tuning run: the space-time SIREN's sampling variants on the dev subset "
                             f"({'; '.join(f'{c} {list(k)}' for c, k in DEV_FRAMES.items())}, gaps 1 and 2: frames "
                             "the table never uses); --out is then the results JSON (default "
                             "docs/results/vfi-dev-PROFILE.json)")
    parser.add_argument("--occlusion", type=float,
                        help="sharpness of both flow methods' occlusion weights between the two warps "
                             "(0: their plain average; default: profile, chosen by --dev-occlusion)")
    parser.add_argument("--tvl1-attachment", type=float,
                        help="TV-L1's data-term weight (scikit-image's attachment; default: profile, chosen by "
                             "--dev-flow)")
    parser.add_argument("--dev-flow", action="store_true",
                        help=f"tuning run: the motion SIREN at each starting blur of {list(DEV_BLURS)} x smoothness "
                             f"weight of {list(DEV_SMOOTHS)}, and TV-L1 at each attachment of "
                             f"{list(DEV_ATTACHMENTS)}, on the dev subset; --out is then the results JSON (default "
                             "docs/results/vfi-dev-flow-PROFILE.json)")
    parser.add_argument("--dev-occlusion", action="store_true",
                        help="tuning run: both flow methods at each occlusion sharpness of "
                             f"{list(DEV_OCCLUSION)} on the dev subset; --out is then the results JSON (default "
                             "docs/results/vfi-dev-occlusion-PROFILE.json)")


def _print_summary(doc: dict, out: Path, width: int) -> None:
    for s in doc["summary"]:
        if s["gap"] == 0:
            print(f"{s['video']:>13} {s['method']:>{width}}: mean IE {s['ie']:.3f} over {s['n']} triplets")
    print(f"-> {out}")


def main(args) -> int:
    modes = [m for m in ("dev", "dev_occlusion", "dev_flow", "table") if getattr(args, m)]
    given = [k for k in SINGLE_RUN if getattr(args, k) is not None]
    if modes and given:
        raise ValueError(f"--{given[0]} applies to a single run; --{modes[0].replace('_', '-')} runs its own "
                         "triplets (every bundled clip at its frames)")
    table_only = [k for k in ("triplets", "figures") if getattr(args, k) is not None]
    if table_only and "table" not in modes:
        raise ValueError(f"--{table_only[0]} applies to --table only")
    single = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in SINGLE_RUN.items()}
    cfg = VfiConfig(**single, size=args.size,
                    steps=args.steps, flow_steps=args.flow_steps, hidden=args.hidden, time_scale=args.time_scale,
                    fits=args.fits, smooth=args.smooth, occlusion=args.occlusion,
                    tvl1_attachment=args.tvl1_attachment, backend=args.backend,
                    device=args.device, seed=args.seed, out=args.out, profile=args.profile,
                    progress=not args.no_progress)
    if len(modes) > 1:
        raise ValueError(f"--{modes[0].replace('_', '-')} and --{modes[1].replace('_', '-')}: choose one mode")
    if modes and args.out != "runs/vfi" and Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a folder; with --{modes[0].replace('_', '-')} --out is the "
                         "results JSON file to write")
    if modes:
        # --out is the results file (default per mode), written after the first triplet: a path that
        # cannot be written is refused now
        stem = {"dev": "vfi-dev", "dev_occlusion": "vfi-dev-occlusion", "dev_flow": "vfi-dev-flow", "table": "vfi"}
        out = common.check_output_file(args.out if args.out != "runs/vfi" else
                                       f"docs/results/{stem[modes[0]]}-{args.profile}.json", "--out")
        if args.table:
            triplets = TABLE_TRIPLETS if args.triplets is None else args.triplets
            common.positive("--triplets", triplets, int)
            doc = run_table(cfg, out, Path(args.figures or "docs/figures"), triplets=triplets, resume=args.resume)
        else:
            dev = {"dev": run_dev, "dev_occlusion": run_dev_occlusion, "dev_flow": run_dev_flow}[modes[0]]
            doc = dev(cfg, out, resume=args.resume)
        _print_summary(doc, out, {"dev": 40, "dev_occlusion": 28, "dev_flow": 34, "table": 10}[modes[0]])
        return 0
    res = run(cfg, resume=args.resume)
    for row in res["rows"]:
        print(f"{row['method']:>10}: IE {row['ie']:.3f}  NIE {row['nie']:.3f}  PSNR {row['psnr']:.2f} dB  "
              f"SSIM {row['ssim']:.4f}  ({row['seconds']:.1f} s)")
    print(f"-> {cfg.out}")
    return 0
