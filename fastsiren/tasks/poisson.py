"""Poisson image reconstruction: fit a network's gradient or Laplacian, recover the image.

Targets are the official code's (scipy Sobel x10 per axis, scipy Laplace x1e4, made by
:func:`fastsiren.data.poisson_targets`), converted from Sobel/stencil pixel units to the
grid's coordinate units (the grid spans 2 units over the image), so the reconstruction
comes out at the image's own scale with no fitted gain. Training supervises the network's
jet (``model.jet(coords, order=1|2)``: the torch backend's fused forward-mode jets).

The supervision cannot see part of the image, and the PSNR removes exactly that part by a
least-squares fit of the reconstruction to the ground truth: the constant for gradient
supervision; for Laplacian supervision a plane (``psnr``: 3 terms), and, reported beside it,
the harmonic polynomials up to ``harmonic_degree`` (``psnr_harmonic``: Re/Im (x0 + i x1)^k,
k <= degree, 2*degree + 1 terms), all of which have zero Laplacian.

:class:`Problem` also serves value supervision (image fitting) so that ``compare`` and
``ablate`` train every case through the same code.

Network counting follows the official code (``layers`` = hidden->hidden layers after the
first); the paper's network is ``layers=3`` (in -> 256 -> 256 -> 256 -> 256 -> out).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from fastsiren import data, functional, metrics
from fastsiren.layers import MODEL_NAMES, count_params
from fastsiren.tasks import common, fit

SUPERVISIONS = ("grad", "laplacian")
ORDERS = {"value": 0, "grad": 1, "laplacian": 2}
REMOVED = {
    "value": "nothing",
    "grad": "the best-fit constant (the gradient cannot see an offset)",
    "laplacian": "the best-fit plane a + b x0 + c x1 for psnr; the best-fit harmonic polynomials "
                 "Re/Im (x0 + i x1)^k, k <= harmonic_degree, for psnr_harmonic (the Laplacian cannot see them)",
}


# ---------------------------------------------------------------- what the supervision cannot see

def harmonic_basis(shape: tuple[int, int], degree: int) -> np.ndarray:
    """Harmonic polynomials on the pixel-centre grid of ``shape``: (H*W, 2*degree + 1) float64.

    Columns: 1, then Re and Im of (x0 + i x1)^k for k = 1..degree (degree 1 = a plane).
    Every column has zero Laplacian, so Laplacian supervision cannot see any of them.
    """
    if degree < 0:
        raise ValueError(f"degree must be >= 0, got {degree}")
    xy = data.grid(shape, dtype=torch.float64).numpy()
    z = xy[:, 0] + 1j * xy[:, 1]
    cols = [np.ones(len(z))]
    for k in range(1, degree + 1):
        zk = z ** k
        cols += [zk.real, zk.imag]
    return np.stack(cols, 1)


def remove_unseen(pred, target, degree: int | None) -> np.ndarray:
    """``pred`` (H, W[, 1]) plus the least-squares fit of ``target - pred`` over the harmonic
    basis of ``degree`` (None: nothing added; 0: a constant; 1: a plane), so that the error
    against ``target`` has no part the supervision cannot see. Returns float64 with ``pred``'s
    shape."""
    p = metrics._np(pred)
    t = metrics._np(target)
    if p.shape != t.shape:
        raise ValueError(f"pred has shape {p.shape} but target has {t.shape}")
    if degree is None:
        return p
    basis = harmonic_basis(p.shape[:2], degree)
    coef, *_ = np.linalg.lstsq(basis, (t - p).reshape(len(basis), -1), rcond=None)
    return p + (basis @ coef).reshape(p.shape)


# ---------------------------------------------------------------- one supervised problem

class Problem:
    """Supervise a coordinate network by one jet field of a gray image.

    ``target``: (H, W, 1) in [-1, 1]. ``supervision``: ``value`` (image fitting), ``grad``
    (coordinate-unit Sobel gradient, (H*W, 1, 2)) or ``laplacian`` (coordinate-unit
    Laplacian, (H*W, 1)). ``loss(model)`` is the MSE of the supervised field; ``evaluate``
    and ``final`` score the reconstruction after :func:`remove_unseen`.
    """

    def __init__(self, target: torch.Tensor, supervision: str, harmonic_degree: int = 3) -> None:
        if supervision not in ORDERS:
            raise ValueError(f"supervision={supervision!r} is not known; expected one of {list(ORDERS)}")
        if target.dim() != 3 or target.shape[-1] != 1:
            raise ValueError(f"target must be a gray image (H, W, 1), got shape {tuple(target.shape)}")
        self.supervision, self.order = supervision, ORDERS[supervision]
        self.harmonic_degree = harmonic_degree
        self.target = target
        self.shape = tuple(target.shape[:2])
        dev = target.device
        self.coords = data.grid(self.shape, device=dev)
        self.targets = data.poisson_targets(target.cpu().numpy())
        if supervision == "value":
            self.field = target.reshape(-1, 1)
        elif supervision == "grad":
            self.field = torch.from_numpy(self.targets.grad).to(dev).reshape(-1, 1, 2)
        else:
            self.field = torch.from_numpy(self.targets.lap).to(dev).reshape(-1, 1)

    @property
    def degree(self) -> int | None:
        """Harmonic degree removed for ``psnr`` (None: nothing)."""
        return {"value": None, "grad": 0, "laplacian": 1}[self.supervision]

    def loss(self, model) -> torch.Tensor:
        if self.order == 0:
            pred = model(self.coords)  # the plain forward: no jet streams to carry
        else:
            jet = model.jet(self.coords, order=self.order)
            pred = jet.grad if self.order == 1 else jet.laplacian
        return ((pred - self.field) ** 2).mean()

    def reconstruction(self, model, degree: int | None = -1) -> np.ndarray:
        """The network's image (H, W, 1), float64, plus the best fit from the ground truth of
        what ``degree`` names (default: this supervision's own :attr:`degree`; :func:`remove_unseen`)."""
        pred = model.render(self.shape)
        return remove_unseen(pred, self.target, self.degree if degree == -1 else degree)

    def evaluate(self, model) -> dict[str, float]:
        """PSNR (data range 2) of the aligned reconstruction; Laplacian runs add ``psnr_harmonic``."""
        out = {"psnr": metrics.psnr(self.reconstruction(model), self.target, 2.0)}
        if self.supervision == "laplacian":
            out["psnr_harmonic"] = metrics.psnr(self.reconstruction(model, self.harmonic_degree),
                                                self.target, 2.0)
        return out

    def final(self, model) -> dict[str, float]:
        """Every metric of a finished run: psnr, ssim, psnr_raw (nothing removed) and more."""
        rec = self.reconstruction(model)
        out = {**self.evaluate(model), "ssim": metrics.ssim(np.clip(rec, -1, 1), self.target, 2.0)}
        if self.supervision != "value":
            out["psnr_raw"] = metrics.psnr(self.reconstruction(model, None), self.target, 2.0)
        return {k: round(v, 5) for k, v in out.items()}


def train_problem(model, problem: Problem, *, steps: int, lr: float, log_every: int,
                  checkpoint: Path | None = None, resume: bool = False, progress: bool = True,
                  desc: str = "train") -> tuple[common.TrainState, dict[str, float]]:
    """Adam on ``problem.loss`` (common.train: progress bar, checkpoint every
    :data:`common.CHECKPOINT_EVERY` steps and at the end, resume); returns the training state
    (history with PSNR every ``log_every`` steps) and the final metrics."""
    state = common.train(model, lambda: problem.loss(model), steps=steps, lr=lr, checkpoint=checkpoint,
                         checkpoint_every=common.CHECKPOINT_EVERY, resume=resume, log_every=log_every,
                         evaluate=lambda step: problem.evaluate(model), desc=desc, progress=progress)
    return state, problem.final(model)


# ---------------------------------------------------------------- the task

@dataclasses.dataclass
class PoissonConfig:
    """Settings of a Poisson run; ``profile`` fills what is left as None."""

    supervision: str = "grad"
    image: str = "camera"
    size: int | None = None
    steps: int | None = None
    lr: float | None = None
    hidden: int | None = None
    layers: int | None = None
    omega: float = 30.0
    baselines: tuple[str, ...] | None = None
    baseline_lrs: tuple[float, ...] | None = None
    harmonic_degree: int = 3
    backend: str = "auto"
    device: str = "auto"
    seed: int = 0
    out: str = "runs/poisson"
    profile: str = "cpu"
    log_every: int | None = None
    resume: bool = False
    progress: bool = True


# per profile: size, steps, lr (SIREN's: the paper's), baseline_lrs (each baseline trains at every
# one and counts at its best, as in `fastsiren compare`), hidden, layers (the paper's network: 3),
# log_every
PROFILE_DEFAULTS = {
    "quick": dict(size=24, steps=40, lr=1e-3, baseline_lrs=(1e-3,), hidden=32, layers=1, log_every=20),
    "cpu": dict(size=64, steps=300, lr=1e-4, baseline_lrs=(1e-4, 1e-3, 1e-2), hidden=256, layers=3, log_every=25),
    "paper": dict(size=256, steps=10000, lr=1e-4, baseline_lrs=(1e-4, 1e-3), hidden=256, layers=3, log_every=250),
}
# baselines trained beside SIREN unless --baselines says otherwise: the paper's tanh and ReLU+PE
# (both can learn from either supervision), and for the Laplacian a plain ReLU network too, whose
# Laplacian is 0 everywhere whatever its weights (the point of the Laplacian experiment: it cannot
# learn, and no learning rate moves it).
DEFAULT_BASELINES = {
    ("grad", "quick"): (), ("grad", "cpu"): ("tanh", "relu-pe"), ("grad", "paper"): ("tanh", "relu-pe"),
    ("laplacian", "quick"): ("relu",), ("laplacian", "cpu"): ("relu", "tanh", "relu-pe"),
    ("laplacian", "paper"): ("relu", "tanh", "relu-pe"),
}


def resolve(config: PoissonConfig) -> PoissonConfig:
    """Fill profile defaults and validate every setting before any work starts."""
    if config.supervision not in SUPERVISIONS:
        raise ValueError(f"supervision={config.supervision!r} is not known; expected one of {list(SUPERVISIONS)}")
    cfg = common.fill_profile(config, PROFILE_DEFAULTS)
    if cfg.baselines is None:
        cfg = dataclasses.replace(cfg, baselines=DEFAULT_BASELINES[cfg.supervision, cfg.profile])
    cfg = dataclasses.replace(cfg, baselines=common.check_unique("baselines", cfg.baselines),
                              baseline_lrs=common.check_rates("baseline_lrs", cfg.baseline_lrs))
    for b in cfg.baselines:
        if b not in MODEL_NAMES or b == "siren":
            raise ValueError(f"baselines holds {b!r}; expected names from {list(MODEL_NAMES[1:])}")
    for name in ("size", "steps", "hidden", "log_every"):
        common.positive(name, getattr(cfg, name), int)
    common.positive("lr", cfg.lr)
    functional.check_omega(cfg.omega, "omega")
    if cfg.layers < 0:
        raise ValueError(f"layers must be >= 0, got {cfg.layers}")
    if cfg.harmonic_degree < 1:
        raise ValueError(f"harmonic_degree must be >= 1, got {cfg.harmonic_degree}")
    common.check_size("size", cfg.size, "for a 3x3 Sobel/Laplace stencil to mean anything")
    if cfg.supervision == "laplacian" and 2 * cfg.harmonic_degree + 1 > cfg.size:
        # 2 k + 1 harmonic columns fitted to the image: beyond the grid's side they fit the image itself
        raise ValueError(f"harmonic_degree={cfg.harmonic_degree} fits {2 * cfg.harmonic_degree + 1} harmonic "
                         f"polynomials, more than the {cfg.size}-pixel side of the grid; expected at most "
                         f"{(cfg.size - 1) // 2} at size {cfg.size}")
    return cfg


def fit_config(cfg, method: str, **overrides) -> fit.FitConfig:
    """The :class:`fit.FitConfig` that :func:`fit.make_model` builds ``method`` from."""
    return fit.FitConfig(model=method, size=cfg.size, hidden=cfg.hidden, layers=cfg.layers, omega=cfg.omega,
                         hidden_omega=getattr(cfg, "hidden_omega", None) or cfg.omega, backend=cfg.backend,
                         **overrides)


def run(config: PoissonConfig) -> dict:
    """Train SIREN (and the baselines) on the supervision, write the run folder, return its metrics."""
    cfg = resolve(config)

    device, backend = common.task_backend(cfg.backend, cfg.device)
    target = fit.load_target(cfg.image, cfg.size, True).to(device)
    folder = common.RunFolder(cfg.out, cfg, resume=cfg.resume, checkpoints="checkpoint-*.pt")
    problem = Problem(target, cfg.supervision, cfg.harmonic_degree)
    t0, earlier = time.perf_counter(), 0.0  # earlier: training seconds before a Ctrl-C that --resume continued
    rows, histories, networks, best_histories = [], {}, {}, {}
    for method in ("siren", *cfg.baselines):
        lrs = (cfg.lr,) if method == "siren" else cfg.baseline_lrs
        best = None  # (psnr, lr, weights) of the best rate so far
        for lr in lrs:
            common.seed_all(cfg.seed)
            fcfg = fit_config(cfg, method)
            model = fit.make_model(fcfg, 1, device)
            tag = method if len(lrs) == 1 else f"{method}, lr {lr:g}"
            ckpt = f"checkpoint-{method}.pt" if len(lrs) == 1 else f"checkpoint-{method}-lr{lr:g}.pt"
            state, final = train_problem(model, problem, steps=cfg.steps, lr=lr, log_every=cfg.log_every,
                                         checkpoint=folder.file(ckpt), resume=cfg.resume, progress=cfg.progress,
                                         desc=f"poisson {cfg.supervision} {tag}")
            earlier += state.earlier
            histories[tag], networks[method] = state.history, fit.network_description(method, model)
            rows.append({"method": method, "image": cfg.image, "size": cfg.size, "supervision": cfg.supervision,
                         "params": count_params(model), "steps": cfg.steps, "lr": lr, **final,
                         "harmonic_degree": cfg.harmonic_degree if cfg.supervision == "laplacian" else None,
                         "seconds": round(state.seconds, 3)})
            if best is None or final["psnr"] > best[0]:  # the first of equals
                best = (final["psnr"], lr, {k: v.detach().clone() for k, v in model.state_dict().items()})
                best_histories[method] = state.history
        psnr, lr, weights = best
        for row in rows[-len(lrs):]:
            row["best_lr"] = row["lr"] == lr
        model.load_state_dict(weights)  # the best rate's network: its weights, figures and images
        common.atomic_torch_save(model.state_dict(), folder.file(f"model-{method}.pt"))
        at_rate = f" (best of lr {', '.join(f'{x:g}' for x in lrs)}: {lr:g})" if len(lrs) > 1 else ""
        plot_jets(folder.file(f"poisson-{cfg.supervision}-{method}.png"), model, problem,
                  title=f"{method}, {cfg.supervision} supervision, {psnr:.2f} dB{at_rate}",
                  caption=f"{method} trained on the {cfg.supervision} of {cfg.image} ({cfg.size}x{cfg.size}, "
                          f"{cfg.steps} steps, lr {lr:g}{' of those swept' if at_rate else ''}, profile "
                          f"{cfg.profile}) only. Top: the image and the targets; "
                          f"bottom: the network's image plus the {ADDED[cfg.supervision]} taken from the ground truth "
                          "(the part the supervision cannot see; the PSNR is scored on it), and the network's "
                          "gradient magnitude and Laplacian from its jets (per unit of the [-1, 1] coordinate "
                          "grid, on the target's colour scale).")
        common.save_png(folder.file(f"reconstruction-{method}.png"),
                        np.clip(problem.reconstruction(model), -1, 1))
    common.save_png(folder.file("ground_truth.png"), target)
    ran = (f"one line per method ({', '.join(best_histories)}; a baseline at its best learning rate)"
           if len(best_histories) > 1 else f"{next(iter(best_histories))} only (no baseline was run)")
    fit.plot_curves(folder.file("psnr.png"), best_histories,
                    title=f"{cfg.image} {cfg.size}x{cfg.size}, {cfg.supervision} supervision",
                    caption=f"PSNR of the reconstruction from the {cfg.supervision} against Adam steps and "
                            f"training seconds, {ran} ({cfg.image} {cfg.size}x{cfg.size}, "
                            f"profile {cfg.profile}).")
    doc = common.results_doc("poisson", cfg.profile, rows, backend=backend, device=device,
                             seconds=time.perf_counter() - t0 + earlier, supervision=cfg.supervision,
                             removed=REMOVED[cfg.supervision], networks=networks,
                             baselines_backend="reference (autograd jets)", histories=histories)
    return folder.finish(doc)


# what :meth:`Problem.reconstruction` adds to the network's image: the least-squares fit of
# (ground truth - network) over what the supervision cannot see
ADDED = {"value": "", "grad": "best-fit constant", "laplacian": "best-fit plane"}


def plot_jets(path: Path, model, problem: Problem, title: str = "", caption: str | None = None) -> None:
    """Targets (top) beside the network's (bottom): image, gradient magnitude, Laplacian,
    all rendered from the network's jets (:func:`fastsiren.tasks.fit.jet_images`); the
    derivative columns share the target's scale, shown by the colour bars under them."""
    _, net_grad, net_lap = fit.jet_images(model, problem.shape)
    rec = problem.reconstruction(model)[..., 0]
    tgt_grad = np.linalg.norm(problem.targets.grad, axis=-1)
    tgt_lap = problem.targets.lap
    gmax = float(np.percentile(tgt_grad, 99.5)) or 1.0
    lmax = float(np.percentile(np.abs(tgt_lap), 99.5)) or 1.0
    fig, axes = common.plt_figure(2, 3, figsize=(10, 7.4))
    added = ADDED[problem.supervision]
    panels = [
        (problem.target[..., 0].cpu().numpy(), "ground truth", "gray", -1, 1),
        (tgt_grad, "target |grad|", "viridis", 0, gmax),
        (tgt_lap, "target Laplacian", "RdBu_r", -lmax, lmax),
        (rec, f"reconstruction + {added}\nfrom the ground truth" if added else "reconstruction", "gray", -1, 1),
        (net_grad, "network |grad|", "viridis", 0, gmax),
        (net_lap, "network Laplacian", "RdBu_r", -lmax, lmax),
    ]
    ims = []
    for ax, (img, name, cmap, lo, hi) in zip(axes.flat, panels):
        ims.append(ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi))
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    common.colorbar(fig, ims[4], axes[1, 1], fit.GRAD_LABEL, extend="max", orientation="horizontal")
    common.colorbar(fig, ims[5], axes[1, 2], fit.LAP_LABEL, extend="both", orientation="horizontal")
    common.note_if_zero(axes[1, 2], net_lap)
    fig.suptitle(title)
    common.save_figure(fig, path, caption=caption)


def add_arguments(parser) -> None:
    common.add_common_arguments(parser, default_out="runs/poisson")
    parser.add_argument("--supervision", required=True, help="grad | laplacian: the jet field to fit")
    common.add_network_arguments(parser)
    common.add_publish_arguments(parser)
    parser.add_argument("--omega", type=float, default=30.0, help="omega_0 of every sine layer")
    parser.add_argument("--baselines", help="comma-separated baselines trained beside SIREN "
                        "(relu, tanh, relu-pe; '' for none; default: from the supervision and profile)")
    parser.add_argument("--baseline-lrs", help="comma-separated Adam learning rates: each baseline trains at "
                        "every one and counts at its best final PSNR (default: profile; cpu: 1e-4,1e-3,1e-2); "
                        "SIREN trains at --lr")
    parser.add_argument("--harmonic-degree", type=int, default=3,
                        help="Laplacian runs: highest harmonic degree removed for psnr_harmonic")


def main(args) -> int:
    baselines = None if args.baselines is None else tuple(b for b in args.baselines.split(",") if b)
    if baselines == () and args.baseline_lrs is not None:  # it was ignored silently
        raise ValueError("--baseline-lrs sets the baselines' learning rates, but --baselines names none")
    cfg = PoissonConfig(supervision=args.supervision, image=args.image, size=args.size, steps=args.steps,
                        lr=args.lr, hidden=args.hidden, layers=args.layers, omega=args.omega,
                        baselines=baselines, baseline_lrs=common.parse_floats(args.baseline_lrs, "--baseline-lrs"),
                        harmonic_degree=args.harmonic_degree, backend=args.backend,
                        device=args.device, seed=args.seed, out=args.out, profile=args.profile,
                        resume=args.resume, progress=not args.no_progress)
    common.check_publish_args(args)
    res = run(cfg)
    common.publish_if_asked(args, f"poisson-{cfg.supervision}")
    for row in res["rows"]:
        print(f"{row['method']} (lr {row['lr']:g}) from its {row['supervision']}: PSNR {row['psnr']:.2f} dB "
              f"(raw {row['psnr_raw']:.2f}), SSIM {row['ssim']:.4f}, {row['steps']} steps in "
              f"{row['seconds']:.1f} s")
    print(f"({res['device']}, backend {res['backend']}; removed: {res['removed']}) -> {cfg.out}")
    return 0
