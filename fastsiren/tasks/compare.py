"""A fair comparison: SIREN vs ReLU vs ReLU + positional encoding vs tanh.

Every network has the same number of layers as the SIREN and its parameter count within
1% (:func:`fastsiren.layers.matched_baseline` picks the width; counts are in the rows).
Every method trains on the same problem, with the same steps and the same learning-rate
policy (constant-LR full-batch Adam), at every learning rate of a small stated sweep; the
rows hold every run and mark each method's best learning rate (``best_lr``), and the curves
show each method at its best. Problems: image fitting (value supervision) and Poisson
gradient supervision (where a ReLU network's gradient is piecewise constant and its
Laplacian zero).

The network is the basic SIREN with 2 hidden activations: ``layers=1`` in the official
counting (hidden->hidden layers after the first), i.e. in -> 256 -> 256 -> out.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from fastsiren import data, functional
from fastsiren.layers import MODEL_NAMES, count_params
from fastsiren.tasks import common, fit
from fastsiren.tasks.poisson import REMOVED, Problem, fit_config, train_problem

# study name -> the Problem supervision it trains
PROBLEMS = {"fit": "value", "poisson-grad": "grad"}
METHODS = ("siren", "relu", "relu-pe", "tanh")


@dataclasses.dataclass
class CompareConfig:
    """Settings of the comparison; ``profile`` fills what is left as None."""

    image: str = "camera"
    size: int | None = None
    steps: int | None = None
    poisson_steps: int | None = None
    lrs: tuple[float, ...] | None = None
    hidden: int | None = None
    layers: int | None = None
    omega: float = 30.0
    problems: tuple[str, ...] = tuple(PROBLEMS)
    methods: tuple[str, ...] = METHODS
    backend: str = "auto"
    device: str = "auto"
    seed: int = 0
    out: str = "runs/compare"
    profile: str = "cpu"
    log_every: int | None = None
    resume: bool = False
    progress: bool = True


# per profile: size, steps (fit), poisson_steps, lrs (the sweep), hidden, layers, log_every
PROFILE_DEFAULTS = {
    "quick": dict(size=32, steps=100, poisson_steps=40, lrs=(1e-3,), hidden=32, layers=1, log_every=20),
    "cpu": dict(size=64, steps=300, poisson_steps=200, lrs=(1e-4, 1e-3, 1e-2), hidden=256, layers=1,
                log_every=25),
    "paper": dict(size=256, steps=2000, poisson_steps=2000, lrs=(1e-4, 3e-4, 1e-3, 3e-3), hidden=256, layers=1,
                  log_every=50),
}


def resolve(config: CompareConfig) -> CompareConfig:
    """Fill profile defaults and validate every setting before any work starts."""
    cfg = common.fill_profile(config, PROFILE_DEFAULTS)
    cfg = dataclasses.replace(cfg, lrs=common.check_rates("lrs", cfg.lrs),
                              problems=common.check_unique("problems", cfg.problems),
                              methods=common.check_unique("methods", cfg.methods))
    for p in cfg.problems:
        if p not in PROBLEMS:
            raise ValueError(f"problems holds {p!r}; expected names from {list(PROBLEMS)}")
    for m in cfg.methods:
        if m not in MODEL_NAMES:
            raise ValueError(f"methods holds {m!r}; expected names from {list(MODEL_NAMES)}")
    if not cfg.problems or not cfg.methods:
        raise ValueError("problems and methods must each name at least one entry")
    for name in ("size", "steps", "poisson_steps", "hidden", "log_every"):
        common.positive(name, getattr(cfg, name), int)
    functional.check_omega(cfg.omega, "omega")
    if cfg.layers < 0:
        raise ValueError(f"layers must be >= 0, got {cfg.layers}")
    common.check_size("size", cfg.size)
    return cfg


def run(config: CompareConfig) -> dict:
    """Train every (problem, method, learning rate), write the run folder, return its metrics."""
    cfg = resolve(config)
    device, backend = common.task_backend(cfg.backend, cfg.device)
    target = fit.load_target(cfg.image, cfg.size, True).to(device)
    # image fitting is also scored between the pixels (the image at twice the side, as the
    # ablations do): the training pixels reward memorising them
    heldout = fit.load_target(cfg.image, 2 * cfg.size, True).to(device)
    folder = common.RunFolder(cfg.out, cfg, resume=cfg.resume, checkpoints="checkpoint-*.pt")
    t0, earlier = time.perf_counter(), 0.0  # earlier: training seconds before a Ctrl-C that --resume continued
    rows, histories, networks = [], {}, {}
    for pname in cfg.problems:
        problem = Problem(target, PROBLEMS[pname])
        steps = cfg.steps if pname == "fit" else cfg.poisson_steps
        best: dict[str, tuple[float, dict, np.ndarray]] = {}
        for method in cfg.methods:
            for lr in cfg.lrs:
                common.seed_all(cfg.seed)
                fcfg = fit_config(cfg, method)
                model = fit.make_model(fcfg, 1, device)
                key = f"{pname}/{method}/lr={lr:g}"
                state, final = train_problem(
                    model, problem, steps=steps, lr=lr, log_every=cfg.log_every,
                    checkpoint=folder.file(f"checkpoint-{pname}-{method}-lr{lr:g}.pt"), resume=cfg.resume,
                    progress=cfg.progress, desc=key)
                earlier += state.earlier
                if pname == "fit":
                    final["psnr_heldout"] = fit.heldout_psnr(model, heldout)
                histories[key], networks[method] = state.history, fit.network_description(method, model)
                rows.append({"method": method, "task": pname, "supervision": problem.supervision,
                             "image": cfg.image, "size": cfg.size, "params": count_params(model),
                             "width": model.hidden_features, "steps": steps, "lr": lr, **final,
                             "seconds": round(state.seconds, 3)})
                score = final.get("psnr_heldout", final["psnr"])
                if method not in best or score > best[method][0]:
                    best[method] = (score, {"key": key, "history": state.history},
                                    problem.reconstruction(model), fit.jet_images(model, problem.shape)[1:],
                                    final["psnr"])
        for row in rows:
            if row["task"] == pname:
                row["best_lr"] = best[row["method"]][1]["key"] == f"{pname}/{row['method']}/lr={row['lr']:g}"
        what = f"{cfg.image} {cfg.size}x{cfg.size}, {pname} ({problem.supervision} supervision)" + (
            f"; best = highest PSNR on the held-out {2 * cfg.size}x{2 * cfg.size} grid" if pname == "fit" else "")
        fit.plot_curves(folder.file(f"compare-{pname}.png"),
                        {f"{m} (lr {b[1]['key'].split('=')[1]})": b[1]["history"] for m, b in best.items()},
                        title=f"{cfg.image} {cfg.size}x{cfg.size}, {pname}, best lr each",
                        caption=f"PSNR against steps and training seconds of every method at its best learning "
                                f"rate: {what}, networks of the same depth and parameter count.")
        plot_reconstructions(folder.file(f"compare-{pname}-images.png"), target,
                             {m: (b[2], b[4], b[3]) for m, b in best.items()}, title=pname,
                             caption=f"Every method at its best learning rate, {what}: the reconstruction "
                                     "(top), and the gradient magnitude (middle) and Laplacian (bottom) of the "
                                     "fitted network from its jets, as in the SIREN paper's first figure; the "
                                     "left column shows the target's, from the Sobel and Laplace stencils the "
                                     "Poisson task supervises with. Derivatives are per unit of the [-1, 1] "
                                     "coordinate grid; each row has one colour scale, the Laplacian's "
                                     "symmetric-logarithmic; a panel marked \u2261 0 is identically zero (a piecewise "
                                     "linear network).")
    check_params(rows)
    doc = common.results_doc(
        "compare", cfg.profile, rows, backend=backend, device=device, seconds=time.perf_counter() - t0 + earlier,
        networks=networks, lr_sweep=list(cfg.lrs),
        lr_policy="constant-LR full-batch Adam, same steps for every method; best = highest final psnr_heldout "
                  "where measured (fit), else psnr",
        removed={p: REMOVED[PROBLEMS[p]] for p in cfg.problems},
        baselines_backend="reference (autograd jets)", histories=histories)
    return folder.finish(doc)


def check_params(rows: list[dict]) -> None:
    """Every method's parameter count within 1% of the SIREN's (the fairness contract)."""
    siren = {r["params"] for r in rows if r["method"] == "siren"}
    if not siren:
        return
    ref = siren.pop()
    for r in rows:
        if abs(r["params"] - ref) > 0.01 * ref:
            raise RuntimeError(f"{r['method']} has {r['params']} parameters, not within 1% of SIREN's {ref}")


def plot_reconstructions(path, target: torch.Tensor,
                         recs: dict[str, tuple[np.ndarray, float, tuple[np.ndarray, np.ndarray]]],
                         title: str = "", caption: str | None = None) -> None:
    """One column per method (first: the target), rows: image with its PSNR, gradient
    magnitude, Laplacian, each derivative row on one colour scale (colour bar at its right):
    |grad| linear up to the largest 99.5th percentile of the columns, the Laplacian on a
    symmetric log scale (a fit's Laplacian between the pixels can be far larger than the
    target's). The target's derivatives are the Poisson task's (:func:`data.poisson_targets`)."""
    from matplotlib.colors import SymLogNorm

    tgt = target[..., 0].cpu().numpy()
    t = data.poisson_targets(tgt)  # per unit of the [-1, 1] grid, as the Poisson task supervises
    cols = [("target", tgt, (np.linalg.norm(t.grad, axis=-1), t.lap))]
    cols += [(f"{m}: {p:.2f} dB", rec[..., 0], jets) for m, (rec, p, jets) in recs.items()]
    gmax = max(float(np.percentile(g, 99.5)) for _, _, (g, _) in cols) or 1.0
    lmax = max(float(np.percentile(np.abs(lp), 99.5)) for _, _, (_, lp) in cols) or 1.0
    lin = float(np.percentile(np.abs(t.lap), 90)) or lmax / 100  # linear below the target's typical value
    lap_norm = SymLogNorm(linthresh=min(lin, lmax / 10), vmin=-lmax, vmax=lmax, base=10)
    fig, axes = common.plt_figure(3, len(cols), figsize=(2.4 * len(cols) + 1.0, 7.4), squeeze=False)
    for j, (name, img, (grad, lp)) in enumerate(cols):
        ims = [axes[0, j].imshow(img, cmap="gray", vmin=-1, vmax=1),
               axes[1, j].imshow(grad, cmap="viridis", vmin=0, vmax=gmax),
               axes[2, j].imshow(lp, cmap="RdBu_r", norm=lap_norm)]
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, j].set_title(name, fontsize=9)
        if j:
            common.note_if_zero(axes[2, j], lp)
    common.colorbar(fig, ims[0], axes[0, -1], "image ([-1, 1])")
    common.colorbar(fig, ims[1], axes[1, -1], fit.GRAD_LABEL, extend="max")
    common.colorbar(fig, ims[2], axes[2, -1], fit.LAP_LABEL + ", sym. log", extend="both")
    for i, row in enumerate(("image", "|grad|", "Laplacian")):
        axes[i, 0].set_ylabel(row, fontsize=9)
    fig.suptitle(title)
    common.save_figure(fig, path, caption=caption)


def add_arguments(parser) -> None:
    common.add_common_arguments(parser, default_out="runs/compare")
    parser.add_argument("--size", type=int, help="side of the square image grid (default: from the profile)")
    parser.add_argument("--steps", type=int, help="Adam steps of the image fit (default: from the profile)")
    parser.add_argument("--poisson-steps", type=int, help="Adam steps of the Poisson runs (default: profile)")
    parser.add_argument("--lrs", help="comma-separated learning-rate sweep, e.g. 1e-4,1e-3 (default: profile)")
    parser.add_argument("--hidden", type=int,
                        help="SIREN hidden width; baselines match its parameters (default: profile)")
    parser.add_argument("--layers", type=int, help="hidden->hidden layers after the first (official counting; "
                        "default 1: in -> 256 -> 256 -> out)")
    parser.add_argument("--omega", type=float, default=30.0, help="SIREN omega_0")
    parser.add_argument("--problems", default=",".join(PROBLEMS), help=f"comma-separated, from {list(PROBLEMS)}")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, from {list(MODEL_NAMES)}")
    common.add_publish_arguments(parser)


def main(args) -> int:
    cfg = CompareConfig(image=args.image, size=args.size, steps=args.steps, poisson_steps=args.poisson_steps,
                        lrs=common.parse_floats(args.lrs, "--lrs"), hidden=args.hidden, layers=args.layers,
                        omega=args.omega, problems=tuple(p for p in args.problems.split(",") if p),
                        methods=tuple(m for m in args.methods.split(",") if m), backend=args.backend,
                        device=args.device, seed=args.seed, out=args.out, profile=args.profile,
                        resume=args.resume, progress=not args.no_progress)
    common.check_publish_args(args)
    res = run(cfg)
    common.publish_if_asked(args, "compare")
    for row in res["rows"]:
        if row["best_lr"]:
            print(f"{row['task']:13s} {row['method']:8s} {row['params']:7d} params, lr {row['lr']:g}: "
                  f"PSNR {row['psnr']:.2f} dB, SSIM {row['ssim']:.4f}, {row['seconds']:.1f} s")
    print(f"({res['device']}, backend {res['backend']}) -> {cfg.out}")
    return 0
