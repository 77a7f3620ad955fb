"""Image fitting: a coordinate network maps (row, col) in [-1,1]^2 to the pixel value.

Network counting follows the official code: ``layers`` = hidden->hidden layers after the
first, so the paper's network (``layers=3``) is in -> 256 -> 256 -> 256 -> 256 -> out.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from fastsiren import data, functional, metrics
from fastsiren.layers import MODEL_NAMES, build_model, count_params
from fastsiren.tasks import common


@dataclasses.dataclass
class FitConfig:
    """Settings of one fit; ``profile`` fills what is left as None."""

    image: str = "camera"
    size: int | None = None
    steps: int | None = None
    lr: float | None = None
    hidden: int | None = None
    layers: int | None = None
    omega: float = 30.0
    hidden_omega: float | None = None
    model: str = "siren"
    first_init: str = "paper"
    hidden_init: str = "paper"
    init_scale: float = 1.0
    gray: bool | None = True
    backend: str = "auto"
    device: str = "auto"
    seed: int = 0
    out: str = "runs/fit"
    profile: str = "cpu"
    log_every: int | None = None
    checkpoint_every: int = common.CHECKPOINT_EVERY
    resume: bool = False
    progress: bool = True


# per profile: size, steps, lr, hidden, layers, log_every
PROFILE_DEFAULTS = {
    "quick": dict(size=32, steps=60, lr=1e-3, hidden=32, layers=1, log_every=20),
    "cpu": dict(size=128, steps=500, lr=1e-4, hidden=256, layers=3, log_every=25),
    "paper": dict(size=512, steps=10000, lr=1e-4, hidden=256, layers=3, log_every=100),
}


def resolve(config: FitConfig) -> FitConfig:
    """Fill profile defaults and validate every setting before any work starts."""
    cfg = common.fill_profile(config, PROFILE_DEFAULTS)
    if cfg.hidden_omega is None:
        cfg = dataclasses.replace(cfg, hidden_omega=cfg.omega)
    if cfg.model not in MODEL_NAMES:
        raise ValueError(f"model={cfg.model!r} is not known; expected one of {list(MODEL_NAMES)}")
    for name in ("size", "steps", "hidden", "log_every", "checkpoint_every"):
        common.positive(name, getattr(cfg, name), int)
    for name in ("lr", "init_scale"):
        common.positive(name, getattr(cfg, name))
    for name in ("omega", "hidden_omega"):
        functional.check_omega(getattr(cfg, name), name)
    if cfg.layers < 0:
        raise ValueError(f"layers must be >= 0, got {cfg.layers}")
    common.check_size("size", cfg.size)
    if cfg.model != "siren" and cfg.backend not in ("auto", "reference"):
        raise ValueError(f"backend={cfg.backend!r} applies to the SIREN only: model={cfg.model!r} always runs in "
                         "plain PyTorch (backend reference); leave --backend at auto or pass reference")
    return cfg


def load_target(image: str, size: int, gray: bool | None) -> torch.Tensor:
    """The image (size, size, C) in [-1, 1]; an image smaller than ``size`` is an error."""
    raw = data.read_image(image)
    if min(raw.shape[:2]) < size:
        raise ValueError(f"image {image!r} is {raw.shape[0]}x{raw.shape[1]}, smaller than the "
                         f"profile's size {size}; pass a smaller --size")
    return torch.from_numpy(data.load_image(image, size=size, gray=gray))


def heldout_psnr(model, heldout: torch.Tensor) -> float:
    """PSNR of ``model`` rendered on the grid of ``heldout`` (the image at twice the training side,
    from :func:`load_target`: every pixel centre falls between the training grid's), in [-1, 1]."""
    return round(metrics.psnr(model.render(tuple(heldout.shape[:2])), heldout, 2.0), 5)


def make_model(cfg: FitConfig, out_features: int, device: torch.device):
    """The network of ``cfg`` (baselines matched to the SIREN's parameter count; the backend is
    the SIREN's: a baseline, plain PyTorch, is built with ``auto``)."""
    backend = cfg.backend if cfg.model == "siren" else "auto"
    return build_model(cfg.model, in_features=2, out_features=out_features, hidden_features=cfg.hidden,
                       hidden_layers=cfg.layers, backend=backend, first_omega_0=cfg.omega,
                       hidden_omega_0=cfg.hidden_omega, sidelength=cfg.size, first_init=cfg.first_init,
                       hidden_init=cfg.hidden_init, init_scale=cfg.init_scale).to(device)


def load_model(run: str | Path, device: str | torch.device = "auto", backend: str = "auto", *,
               method: str | None = None) -> torch.nn.Module:
    """The network a ``fastsiren fit`` or ``fastsiren poisson`` run folder holds, rebuilt from its
    ``config.json`` with the weights of the finished run (``model.pt``; poisson:
    ``model-METHOD.pt``) or of its checkpoint (a run still going or cut short), in eval mode on
    ``device``, e.g. to render it on a denser grid::

        model = load_model("runs/fit-camera")
        image = model.render((2048, 2048))          # (2048, 2048, C) in [-1, 1]
        jet = model.render((2048, 2048), order=2)   # with its gradient and Laplacian

    ``method``: which of a poisson run's networks (``"siren"``, the default, or one of its
    baselines); a fit run holds one. A poisson network is the raw fit: its image is the
    reconstruction before the best-fit constant or plane from the ground truth (the part the
    supervision cannot see) is added.
    ``backend``: the SIREN's backend here (the weights do not depend on the one that trained
    them). A folder that is not such a run, or holds no weights, is an error naming it."""
    run = Path(run)
    if not (run / "config.json").is_file():
        raise FileNotFoundError(f"run={run} holds no config.json: not a fastsiren run folder")
    saved = common._read_config(run / "config.json")
    if "supervision" in saved:  # a poisson run
        from fastsiren.tasks import poisson

        fields = {f.name for f in dataclasses.fields(poisson.PoissonConfig)}
        pcfg = poisson.resolve(poisson.PoissonConfig(**{k: v for k, v in saved.items() if k in fields}))
        method = "siren" if method is None else method
        if method not in ("siren", *pcfg.baselines):
            raise ValueError(f"method={method!r}: run={run} trained {['siren', *pcfg.baselines]}")
        cfg = dataclasses.replace(poisson.fit_config(pcfg, method), backend=backend)
        sources = [run / f"model-{method}.pt", run / f"checkpoint-{method}.pt"]
    elif {"image", "model", "hidden", "omega"} <= set(saved):
        if method not in (None, saved["model"]):
            raise ValueError(f"method={method!r}: run={run} is a fit run of {saved['model']!r}, which holds one "
                             "network (leave method out)")
        fields = {f.name for f in dataclasses.fields(FitConfig)}
        cfg = FitConfig(**{k: v for k, v in saved.items() if k in fields} | {"backend": backend})
        sources = [run / "model.pt", run / "checkpoint.pt"]
    else:
        raise ValueError(f"run={run}: its config.json is not that of a `fastsiren fit` or `fastsiren poisson` run")
    cfg = resolve(cfg)
    dev = common.pick_device(str(device))
    if cfg.model == "siren":  # a backend that cannot run here is refused now, not at the first forward
        from fastsiren import backends

        backends.resolve(cfg.backend, dev)
    source = next((f for f in sources if f.is_file()), None)
    if source is None:
        raise FileNotFoundError(f"run={run} holds neither {sources[0].name} nor {sources[1].name}: no weights to load")
    try:
        state = torch.load(source, map_location=dev, weights_only=True)
        state = state["model"] if source.name.startswith("checkpoint") else state
        last = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2][-1]
        model = make_model(cfg, last.shape[0], dev)
        model.load_state_dict(state)
    except Exception as exc:  # unpickling, zip, key, size-mismatch errors: all one answer
        reason = " ".join(str(exc).split())
        raise ValueError(f"run={run}: {source.name} does not hold the weights of the network its config.json "
                         f"describes ({type(exc).__name__}: {reason[:200]})") from exc
    return model.eval()


# the official layer counting, as network_description says it (the report says it once and drops it)
LAYER_COUNTING = "layers={} counts the hidden-to-hidden layers after the first, as the official code does"


def network_description(name: str, model) -> str:
    """The network in words, from the model itself: the feature counts layer by layer, the
    activation, and the official layer counting, e.g. ``siren: 2 -> 256 -> 256 -> 256 -> 256 ->
    1, sine after every layer but the last (5 linear layers; layers=3 ...)``."""
    acts = model.hidden_layers + 1
    act = {"siren": "sine", "tanh": "tanh"}.get(name, "ReLU")
    encode = getattr(model, "encoded_features", None)
    enc = encode() if encode is not None else model.in_features
    freqs = getattr(model, "num_frequencies", None)
    front = f"{model.in_features}" + ((f" (positional encoding: {enc} features, x and sin/cos(2^k pi x) for k < "
                                       f"{freqs})" if freqs is not None else f" (positional encoding: {enc})")
                                      if enc != model.in_features else "")
    widths = " -> ".join([str(model.hidden_features)] * acts)
    return (f"{name}: {front} -> {widths} -> {model.out_features}, {act} after every layer but the last "
            f"({acts + 1} linear layers; {LAYER_COUNTING.format(model.hidden_layers)})")


def run(config: FitConfig) -> dict:
    """Fit, write the run folder and return its metrics (the results-file shape)."""
    cfg = resolve(config)
    if cfg.model == "siren":  # an unrunnable backend is refused before anything is written
        device, backend = common.task_backend(cfg.backend, cfg.device)
    else:  # a baseline's backend is auto or reference (resolve): the reference's operations
        device, backend = common.pick_device(cfg.device), "reference"
    target = load_target(cfg.image, cfg.size, cfg.gray).to(device)
    common.seed_all(cfg.seed)
    h, w, c = target.shape
    model = make_model(cfg, c, device)  # a network that cannot be built is refused before the folder
    folder = common.RunFolder(cfg.out, cfg, resume=cfg.resume, checkpoints="checkpoint.pt")
    coords = data.grid((h, w), device=device)
    pixels = target.reshape(-1, c)

    def loss_fn() -> torch.Tensor:
        return ((model(coords) - pixels) ** 2).mean()

    def evaluate(step: int) -> dict:
        with torch.no_grad():
            pred = model(coords).reshape(h, w, c)
        return {"psnr": metrics.psnr(pred, target, data_range=2.0)}

    t0 = time.perf_counter()
    state = common.train(model, loss_fn, steps=cfg.steps, lr=cfg.lr, checkpoint=folder.file("checkpoint.pt"),
                         checkpoint_every=cfg.checkpoint_every, resume=cfg.resume, log_every=cfg.log_every,
                         evaluate=evaluate, desc=f"fit {cfg.model}", progress=cfg.progress)
    with torch.no_grad():
        pred = model(coords).reshape(h, w, c)
    psnr = metrics.psnr(pred, target, 2.0)
    ssim = metrics.ssim(pred.clamp(-1, 1), target, 2.0)
    common.save_png(folder.file("reconstruction.png"), pred.clamp(-1, 1))
    common.save_png(folder.file("ground_truth.png"), target)
    plot_curves(folder.file("psnr.png"), {cfg.model: state.history}, title=f"{cfg.image} {h}x{w}",
                caption=f"PSNR of the {cfg.model} fit of {cfg.image} ({h}x{w}) against Adam steps (left) and "
                        f"training seconds (right), profile {cfg.profile}.")
    plot_fit(folder.file("fit.png"), model, target, cfg)
    common.atomic_torch_save(model.state_dict(), folder.file("model.pt"))
    row = {"method": cfg.model, "image": cfg.image, "size": h, "params": count_params(model),
           "steps": cfg.steps, "lr": cfg.lr, "psnr": round(psnr, 4), "ssim": round(ssim, 5),
           "seconds": round(state.seconds, 3)}
    doc = common.results_doc("fit", cfg.profile, [row], backend=backend, device=device,
                             seconds=time.perf_counter() - t0 + state.earlier,
                             network=network_description(cfg.model, model),
                             history=state.history)
    return folder.finish(doc)


def jet_images(model, shape) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """A network on the pixel grid of ``shape`` from its jets: the values (H, W, C), and the
    gradient magnitude and the Laplacian (H, W), each averaged over the channels."""
    jet = model.render(shape, order=2)
    grad = torch.linalg.vector_norm(jet.grad, dim=-1).mean(-1)
    return jet.value, grad.cpu().numpy(), jet.laplacian.mean(-1).cpu().numpy()


# colour-bar labels of the maps: the image and its error in the image's [-1, 1] range,
# derivatives per unit of the [-1, 1] coordinate grid (which spans 2 units over the image)
ERROR_LABEL = "|error| (image range [-1, 1])"
GRAD_LABEL = "|\u2207f| (per unit coord.)"
LAP_LABEL = "\u0394f (per unit coord.\u00b2)"


def plot_fit(path: Path, model, target: torch.Tensor, cfg: FitConfig) -> None:
    """The paper's first figure for one network: ground truth, the fit, its error, and the
    gradient magnitude and Laplacian of the fitted network (from its jets on the grid:
    what the image supervision never saw, and where a ReLU network's Laplacian is zero),
    each map with its colour bar."""
    h, w, c = target.shape
    pred, grad, lap = jet_images(model, (h, w))
    err = (pred - target).abs().mean(-1).cpu().numpy()
    gray = c == 1
    show = (lambda t: t[..., 0].cpu().numpy()) if gray else (lambda t: ((t.clamp(-1, 1) + 1) / 2).cpu().numpy())
    gmax = float(np.percentile(grad, 99.5)) or 1.0
    lmax = float(np.percentile(np.abs(lap), 99.5)) or 1.0
    emax = float(np.percentile(err, 99.5)) or 1.0
    psnr = metrics.psnr(pred, target, 2.0)
    panels = [(show(target), "ground truth", "gray", -1, 1, None),
              (show(pred), f"{cfg.model}: {psnr:.2f} dB", "gray", -1, 1, None),
              (err, "|error|", "magma", 0, emax, (ERROR_LABEL, "max")),
              (grad, "network |grad|", "viridis", 0, gmax, (GRAD_LABEL, "max")),
              (lap, "network Laplacian", "RdBu_r", -lmax, lmax, (LAP_LABEL, "both"))]
    fig, axes = common.plt_figure(1, len(panels), figsize=(2.8 * len(panels), 3.6))
    for ax, (img, name, cmap, lo, hi, bar) in zip(axes, panels):
        im = ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
        if bar is not None:
            common.colorbar(fig, im, ax, bar[0], extend=bar[1], orientation="horizontal")
        if name == "network Laplacian":
            common.note_if_zero(ax, lap)
    common.save_figure(fig, path, caption=(
        f"The {cfg.model} fit of {cfg.image} ({h}x{w}, {cfg.steps} steps, profile {cfg.profile}): ground truth, "
        "the network, its absolute error (in the image's [-1, 1] range), and the gradient magnitude and "
        "Laplacian of the fitted network (per unit of the [-1, 1] coordinate grid), computed from its jets on "
        "the pixel grid; only the values were supervised. Each map's colour scale ends at its 99.5th "
        "percentile."))


def plot_curves(path: Path, histories: dict[str, list[dict]], title: str = "", caption: str | None = None) -> None:
    """PSNR against steps and against training seconds, one line per method; the legend
    (several methods) sits outside the axes, one method is named in the title instead."""
    fig, (ax1, ax2) = common.plt_figure(1, 2, figsize=(10, 3.6))
    for name, hist in histories.items():
        steps = [r["step"] for r in hist]
        secs = [r["seconds"] for r in hist]
        ps = [r["psnr"] for r in hist]
        ax1.plot(steps, ps, label=name)
        ax2.plot(secs, ps, label=name)
    if len(histories) == 1:
        title = f"{next(iter(histories))}: {title}" if title else next(iter(histories))
    ax1.set(xlabel="step", ylabel="PSNR (dB)", title=title)
    ax2.set(xlabel="training seconds", ylabel="PSNR (dB)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    if len(histories) > 1:
        common.legend_outside(ax2, fontsize=8)
    common.save_figure(fig, path, caption=caption)


def add_arguments(parser) -> None:
    common.add_common_arguments(parser, default_out="runs/fit")
    common.add_network_arguments(parser)
    common.add_publish_arguments(parser)
    parser.add_argument("--omega", type=float, help="omega_0 of the SIREN's first layer (default: 30)")
    parser.add_argument("--hidden-omega", type=float,
                        help="omega_0 of the SIREN's hidden layers (default: --omega)")
    parser.add_argument("--model", choices=MODEL_NAMES, default="siren",
                        help="siren, or a baseline sized to the SIREN's parameter count (a baseline runs in "
                             "plain PyTorch: --backend auto or reference only)")
    parser.add_argument("--color", action="store_true", help="fit RGB instead of grayscale")
    parser.add_argument("--checkpoint-every", type=int, default=common.CHECKPOINT_EVERY,
                        help="steps between checkpoints")


def main(args) -> int:
    given = [f"--{n.replace('_', '-')}" for n in ("omega", "hidden_omega") if getattr(args, n) is not None]
    if args.model != "siren" and given:  # a baseline has no omega_0: it was ignored silently
        raise ValueError(f"{', '.join(given)} applies to the SIREN only, not to --model {args.model}")
    cfg = FitConfig(image=args.image, size=args.size, steps=args.steps, lr=args.lr, hidden=args.hidden,
                    layers=args.layers, **({} if args.omega is None else {"omega": args.omega}),
                    hidden_omega=args.hidden_omega, model=args.model,
                    gray=None if args.color else True, backend=args.backend, device=args.device,
                    seed=args.seed, out=args.out, profile=args.profile,
                    checkpoint_every=args.checkpoint_every, resume=args.resume,
                    progress=not args.no_progress)
    common.check_publish_args(args)
    res = run(cfg)
    common.publish_if_asked(args, "fit")
    row = res["rows"][0]
    print(f"{row['method']} on {row['image']}: PSNR {row['psnr']:.2f} dB, SSIM {row['ssim']:.4f}, "
          f"{row['steps']} steps in {row['seconds']:.1f} s ({res['device']}, backend {res['backend']}) "
          f"-> {cfg.out}")
    return 0
