"""Ablations of SIREN's design on image fitting, one study per run.

- ``first-init``: the first layer's init (:data:`fastsiren.init.FIRST_SCHEMES`: the paper's
  U(-1/n, 1/n), the hidden scheme, PyTorch's default, Xavier, a normal of the paper's variance).
- ``hidden-init``: the hidden layers' init (:data:`fastsiren.init.HIDDEN_SCHEMES`) and the
  paper's bound sqrt(6/n)/omega_0 scaled by ``scales`` (0.1, 0.5, 2, 10 by default).
- ``omega0``: omega_0 of the first layer (hidden layers at 30) and of the hidden layers
  (first layer at 30) over ``omegas``.

Rows report ``psnr`` on the training pixels and ``psnr_heldout`` on the image at twice the
side (every pixel centre lies between training pixels): on a small grid a large init can
memorise the training pixels and still interpolate badly between them.

Every case trains at every learning rate of ``lrs`` (cpu profile: the paper's 1e-4, then 1e-3
and 1e-2; paper profile: 1e-4 and 1e-3; quick: one rate): a setting that is worse at one rate
may only want another, and the ranking of the settings can change with the rate. Rows hold
every (case, rate).

Each study trains the basic SIREN (``layers=1`` in the official counting: in -> 256 ->
256 -> out) with everything else fixed, and writes a PSNR table (rows) and figure. The init
studies also plot each sine layer's pre-activations ``omega_0 (W h + b)`` and activations at
initialization on a deeper probe network of the same init (``probe_layers`` hidden->hidden
layers), against the paper's prediction: normal pre-activations (unit variance from W h, plus
omega_0^2 / (3 fan_in) from PyTorch's bias) and arcsine-distributed activations through depth.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
import torch.nn.functional as F

from fastsiren import backends, data, metrics
from fastsiren.init import FIRST_SCHEMES, HIDDEN_SCHEMES
from fastsiren.layers import SineLayer, Siren, count_params
from fastsiren.tasks import common, fit
from fastsiren.tasks.poisson import Problem, train_problem

STUDIES = ("first-init", "hidden-init", "omega0")
STUDY_TOPICS = {"first-init": "the first layer's initialization", "hidden-init": "the hidden layers' initialization",
                "omega0": "omega_0, of the first layer and of the hidden layers, each swept with the other at 30"}


@dataclasses.dataclass
class AblateConfig:
    """Settings of one ablation study; ``profile`` fills what is left as None."""

    study: str = "omega0"
    image: str = "camera"
    size: int | None = None
    steps: int | None = None
    lr: float | None = None  # one rate: the same as lrs=(lr,)
    lrs: tuple[float, ...] | None = None
    hidden: int | None = None
    layers: int | None = None
    omegas: tuple[float, ...] | None = None
    scales: tuple[float, ...] | None = None
    probe_layers: int | None = None
    backend: str = "auto"
    device: str = "auto"
    seed: int = 0
    out: str = "runs/ablate"
    profile: str = "cpu"
    log_every: int | None = None
    resume: bool = False
    progress: bool = True


_OMEGAS = (1.0, 3.0, 10.0, 30.0, 60.0, 100.0, 300.0)
_SCALES = (0.1, 0.5, 2.0, 10.0)
# per profile: size, steps, lrs (the paper's rate first), hidden, layers, omegas, scales,
# probe_layers, log_every
PROFILE_DEFAULTS = {
    "quick": dict(size=24, steps=30, lrs=(1e-3,), hidden=32, layers=1, omegas=(3.0, 30.0), scales=(0.1,),
                  probe_layers=2, log_every=10),
    "cpu": dict(size=64, steps=200, lrs=(1e-4, 1e-3, 1e-2), hidden=256, layers=1, omegas=_OMEGAS, scales=_SCALES,
                probe_layers=5, log_every=25),
    "paper": dict(size=256, steps=2000, lrs=(1e-4, 1e-3), hidden=256, layers=1, omegas=_OMEGAS, scales=_SCALES,
                  probe_layers=5, log_every=100),
}


def resolve(config: AblateConfig) -> AblateConfig:
    """Fill profile defaults and validate every setting before any work starts."""
    if config.study not in STUDIES:
        raise ValueError(f"study={config.study!r} is not known; expected one of {list(STUDIES)}")
    if config.lr is not None:
        if config.lrs is not None:
            raise ValueError(f"give --lr ({config.lr!r}) or --lrs ({config.lrs!r}), not both: --lr is one rate, "
                             "--lrs a sweep")
        common.positive("lr", config.lr)
        config = dataclasses.replace(config, lrs=(config.lr,), lr=None)
    cfg = common.fill_profile(config, PROFILE_DEFAULTS)
    cfg = dataclasses.replace(cfg, omegas=tuple(float(x) for x in cfg.omegas),
                              scales=tuple(float(x) for x in cfg.scales), lrs=common.check_rates("lrs", cfg.lrs))
    for name in ("size", "steps", "hidden", "log_every", "probe_layers"):
        common.positive(name, getattr(cfg, name), int)
    if cfg.study == "omega0" and not cfg.omegas:
        raise ValueError("the omega0 study needs at least one omega_0 in --omegas, got none")
    for w in cfg.omegas:
        common.positive("omega_0 (omegas entry)", w)
    for s in cfg.scales:
        common.positive("init scale (scales entry)", s)
    if cfg.layers < 0:
        raise ValueError(f"layers must be >= 0, got {cfg.layers}")
    common.check_size("size", cfg.size)
    return cfg


def cases(cfg: AblateConfig) -> list[dict]:
    """The study's cases: each a label, Siren keyword arguments and the row keys naming it."""
    out = []
    if cfg.study == "first-init":
        for s in FIRST_SCHEMES:
            out.append({"label": s, "siren": {"first_init": s}, "row": {"value": s}})
    elif cfg.study == "hidden-init":
        for s in HIDDEN_SCHEMES:
            out.append({"label": s, "siren": {"hidden_init": s}, "row": {"value": s, "scale": 1.0}})
        for c in cfg.scales:
            out.append({"label": f"paper x{c:g}", "siren": {"hidden_init": "paper", "init_scale": c},
                        "row": {"value": f"paper x{c:g}", "scale": c}})
    else:
        for layer, key in (("first", "first_omega_0"), ("hidden", "hidden_omega_0")):
            for w in cfg.omegas:
                kw = {"first_omega_0": 30.0, "hidden_omega_0": 30.0, key: w}
                out.append({"label": f"{layer} omega_0={w:g}", "siren": kw,
                            "row": {"value": w, "layer": layer, "first_omega_0": kw["first_omega_0"],
                                    "hidden_omega_0": kw["hidden_omega_0"]}})
    return out


def build_siren(cfg: AblateConfig, siren_kwargs: dict, hidden_layers: int | None = None) -> Siren:
    """The study's SIREN with one case's settings (``hidden_layers`` overrides the depth)."""
    kw = {"first_omega_0": 30.0, "hidden_omega_0": 30.0, **siren_kwargs}
    fcfg = fit.FitConfig(model="siren", size=cfg.size, hidden=cfg.hidden,
                         layers=cfg.layers if hidden_layers is None else hidden_layers,
                         omega=kw["first_omega_0"], hidden_omega=kw["hidden_omega_0"], backend=cfg.backend,
                         first_init=kw.get("first_init", "paper"), hidden_init=kw.get("hidden_init", "paper"),
                         init_scale=kw.get("init_scale", 1.0))
    return fit.make_model(fcfg, 1, torch.device("cpu"))


@torch.no_grad()
def init_activations(model: Siren, x: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per sine layer, the pre-activations ``omega_0 (W h + b)`` and activations ``sin(.)``
    at the points ``x`` (N, in), each (N, width) float64."""
    out, h = [], x
    for layer in model.layers:
        if not isinstance(layer, SineLayer):
            break
        pre = layer.omega_0 * F.linear(h, layer.weight, layer.bias)
        h = torch.sin(pre)
        out.append((pre.double().numpy(), h.double().numpy()))
    return out


def run(config: AblateConfig) -> dict:
    """Run every case of the study, write the run folder (table, figures), return its metrics."""
    cfg = resolve(config)
    backends.check_name(cfg.backend)
    device = common.pick_device(cfg.device)
    backends.resolve(cfg.backend, device)  # an unrunnable backend is refused before anything is written
    target = fit.load_target(cfg.image, cfg.size, True).to(device)
    # held-out pixels: the image at twice the side, whose pixel centres all fall between the
    # training grid's; a fit that only memorises the training pixels scores low here
    heldout = fit.load_target(cfg.image, 2 * cfg.size, True).to(device)
    folder = common.RunFolder(cfg.out, cfg, resume=cfg.resume, checkpoints="checkpoint-*.pt")
    problem = Problem(target, "value")
    t0, earlier = time.perf_counter(), 0.0  # earlier: training seconds before a Ctrl-C that --resume continued
    rows, histories, done = [], {}, {}
    for case in cases(cfg):
        for lr in cfg.lrs:
            sig = (tuple(sorted(case["siren"].items())), lr)
            if sig in done:  # omega0: (30, 30) is in both sweeps; the same seed gives the same run
                final, seconds, params = done[sig]
            else:
                common.seed_all(cfg.seed)
                model = build_siren(cfg, case["siren"]).to(device)
                key = history_key(cfg, case["label"], lr)
                state, final = train_problem(model, problem, steps=cfg.steps, lr=lr, log_every=cfg.log_every,
                                             checkpoint=folder.file(f"checkpoint-{_slug(case['label'])}-lr{lr:g}.pt"),
                                             resume=cfg.resume, progress=cfg.progress, desc=f"{cfg.study} {key}")
                earlier += state.earlier
                seconds, params = round(state.seconds, 3), count_params(model)
                final["psnr_heldout"] = fit.heldout_psnr(model, heldout)
                done[sig] = (final, seconds, params)
                histories[key] = state.history
            rows.append({"method": "siren", "study": cfg.study, **case["row"], "image": cfg.image,
                         "size": cfg.size, "params": params, "steps": cfg.steps, "lr": lr, **final,
                         "seconds": seconds})
    plot_study(folder.file(f"ablate-{cfg.study}.png"), cfg, rows, histories)
    extra = {}
    if cfg.study != "omega0":
        extra["init_distributions"] = plot_init_distributions(folder.file(f"ablate-{cfg.study}-init.png"), cfg)
        extra["probe_network"] = (f"siren in 2 -> {cfg.hidden} x {cfg.probe_layers + 1} sine layers, "
                                  f"inputs: the {cfg.size}x{cfg.size} pixel grid, at initialization")
    net = fit.network_description("siren", model)  # every case has the same shape
    doc = common.results_doc("ablate", cfg.profile, rows, backend=backends.resolve(cfg.backend, device),
                             device=device, seconds=time.perf_counter() - t0 + earlier, study=cfg.study, network=net,
                             constant_psnr=constant_psnr(target), constant_psnr_heldout=constant_psnr(heldout),
                             **extra, histories=histories)
    return folder.finish(doc)


def constant_psnr(target: torch.Tensor) -> float:
    """PSNR of the best constant image (the target's mean) against ``target`` in [-1, 1]: a fit that
    scores at or near it has learned nothing of the image (e.g. a run that diverged)."""
    return round(metrics.psnr(torch.full_like(target, float(target.mean())), target, 2.0), 5)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in label)


def history_key(cfg: AblateConfig, label: str, lr: float) -> str:
    """A run's name in ``histories``: the case's label, with its rate where the study sweeps
    more than one."""
    return f"{label}, lr {lr:g}" if len(cfg.lrs) > 1 else label


def _lr_colors(lrs: tuple[float, ...]) -> dict[float, tuple]:
    """One colour per learning rate, darker for larger rates (one rate: plain blue)."""
    import matplotlib

    if len(lrs) == 1:
        return {lrs[0]: matplotlib.colors.to_rgba("tab:blue")}
    cmap = matplotlib.colormaps["viridis"]
    order = sorted(lrs)
    return {lr: cmap(0.85 - 0.75 * order.index(lr) / (len(order) - 1)) for lr in lrs}


def best_rates(cfg: AblateConfig, rows: list[dict], metric: str = "psnr_heldout") -> dict[str, float]:
    """Each case's learning rate with the highest ``metric`` (first of equals), by case label."""
    return {case["label"]: max(case_rows, key=lambda r: r[metric])["lr"]
            for case, case_rows in zip(cases(cfg), _by_case(cfg, rows))}


def _by_case(cfg: AblateConfig, rows: list[dict]) -> list[list[dict]]:
    """``rows`` grouped per case of :func:`cases` (in its order), a row belonging to the case whose
    row fields (``value``, and ``layer`` in omega0) it carries; a case with no row is an error."""
    groups = []
    for case in cases(cfg):
        mine = [r for r in rows if all(r.get(k) == v for k, v in case["row"].items())]
        if not mine:
            raise ValueError(f"no row of case {case['label']!r} among the {len(rows)} rows given")
        groups.append(mine)
    return groups


def plot_study(path, cfg: AblateConfig, rows: list[dict], histories: dict[str, list[dict]]) -> None:
    """Left and middle: final PSNR per case on the training pixels and on the held-out grid, one
    colour per learning rate (omega0: against omega_0, log axis, line style = layer; the init
    studies: one line of dots per case); right: PSNR against steps for every case at its best
    rate on the held-out grid (omega0: first-layer sweeps in blues, hidden-layer sweeps in
    oranges, darker = larger omega_0). Legends sit outside the axes."""
    import matplotlib
    import matplotlib.ticker

    fig, (ax_t, ax_h, ax_c) = common.plt_figure(1, 3, figsize=(16, 4.2), layout="constrained")
    lr_color = _lr_colors(cfg.lrs)
    multi = len(cfg.lrs) > 1
    heldout = f"held-out {2 * cfg.size}x{2 * cfg.size} grid"
    colors: dict[str, tuple] = {}
    for ax, metric, what in ((ax_t, "psnr", "training pixels"), (ax_h, "psnr_heldout", heldout)):
        if cfg.study == "omega0":
            for layer, (style, marker) in (("first", ("-", "o")), ("hidden", ("--", "s"))):
                for lr in cfg.lrs:
                    sel = [r for r in rows if r["layer"] == layer and r["lr"] == lr]
                    ax.plot([r["value"] for r in sel], [r[metric] for r in sel], style, marker=marker,
                            color=lr_color[lr], mfc="none" if layer == "hidden" else None,
                            label=f"{layer} layer(s)" + (f", lr {lr:g}" if multi else ""))
            ax.set(xscale="log", xlabel="omega_0 (the other layers at 30)")
            ax.set_xticks(list(cfg.omegas), [f"{w:g}" for w in cfg.omegas], rotation=45, fontsize=8)
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_ylabel(f"PSNR (dB), {what}")
        else:
            groups = _by_case(cfg, rows)
            for i, case_rows in enumerate(groups):
                vals = [r[metric] for r in case_rows]
                ax.plot([min(vals), max(vals)], [i, i], color="0.8", lw=1, zorder=1)
                for r in case_rows:
                    ax.plot(r[metric], i, "o", color=lr_color[r["lr"]], zorder=2,
                            label=f"lr {r['lr']:g}" if i == 0 and multi else None)
                ax.text(max(vals), i, f"  {max(vals):.1f}", va="center", fontsize=7)
            ax.set_yticks(np.arange(len(groups)), [str(g[0]["value"]) for g in groups])
            ax.set_ylim(len(groups) - 0.5, -0.5)
            lo = min(r[metric] for r in rows)
            hi = max(r[metric] for r in rows)
            ax.set_xlim(lo - 0.05 * (hi - lo + 1), hi + 0.18 * (hi - lo + 1))
            ax.set_xlabel(f"PSNR (dB), {what}")
        ax.set_title(what, fontsize=9)
        ax.grid(alpha=0.3)
    if multi or cfg.study == "omega0":
        common.legend_outside(ax_h)
    if cfg.study == "omega0":  # the curves' colours: a sequential map per layer, by log omega_0
        logs = np.log([r["value"] for r in rows])
        span = (logs.max() - logs.min()) or 1.0
        for r, lg in zip(rows, logs):
            cmap = matplotlib.colormaps["Blues" if r["layer"] == "first" else "Oranges"]
            colors[f"{r['layer']} omega_0={r['value']:g}"] = (cmap(0.35 + 0.6 * (lg - logs.min()) / span),
                                                              "-" if r["layer"] == "first" else "--")
    best = best_rates(cfg, rows)
    for label, lr in best.items():
        hist = histories.get(history_key(cfg, label, lr))
        if hist is None:  # omega0: (30, 30) trained once, drawn as 'first omega_0=30'
            continue
        color, style = colors.get(label, (None, "-"))
        ax_c.plot([h["step"] for h in hist], [h["psnr"] for h in hist], style, color=color,
                  label=label + (f" (lr {lr:g})" if multi else ""))
    ax_c.set(xlabel="step", ylabel="PSNR (dB), training pixels")
    ax_c.set_title("during training" + (", each case at its best rate on the held-out grid" if multi else ""),
                   fontsize=9)
    ax_c.grid(alpha=0.3)
    common.legend_outside(ax_c, ncol=2 if len(best) > 8 else 1)
    rates = ", ".join(f"{lr:g}" for lr in cfg.lrs)
    fig.suptitle(f"{cfg.study}: {cfg.image} {cfg.size}x{cfg.size}, {cfg.steps} steps, "
                 f"learning rate{'s' if multi else ''} {rates}", fontsize=10)
    common.save_figure(fig, path, caption=(
        f"Ablation of {STUDY_TOPICS[cfg.study]} ({cfg.image} {cfg.size}x{cfg.size}, {cfg.steps} steps, "
        f"profile {cfg.profile}, Adam at learning rate{'s' if multi else ''} {rates}): "
        f"final PSNR on the training pixels (left) and on a held-out {2 * cfg.size}x{2 * cfg.size} grid "
        "between them (middle)" + (", one colour per learning rate" if multi else "")
        + "; PSNR on the training pixels against steps for every case"
        + (" at the rate best for it on the held-out grid" if multi else "") + " (right)"
        + ("; the run with both at 30 is shown once, as 'first omega_0=30'." if cfg.study == "omega0" else ".")))


def predicted_pre_std(layer: SineLayer) -> float:
    """The standard deviation the paper's argument predicts for a hidden sine layer's
    pre-activation ``omega_0 (W h + b)`` at init, with arcsine-distributed inputs h (variance
    1/2) and the paper's W ~ U(+-sqrt(6/n)/omega_0): omega_0 W h has unit variance (the
    paper's lemma), and PyTorch's bias U(+-1/sqrt(n)), scaled by omega_0, adds
    omega_0^2 / (3 n)."""
    n = layer.weight.shape[1]
    return float(np.sqrt(1.0 + layer.omega_0 ** 2 / (3.0 * n)))


def shown_layers(n_layers: int) -> list[int]:
    """The sine layers (1-based) the init figure shows: the first, the second, a middle one
    and the last."""
    return sorted({1, min(2, n_layers), n_layers // 2 + 1, n_layers})


def plot_init_distributions(path, cfg: AblateConfig) -> list[dict]:
    """Histograms of the sine layers' pre-activations ``omega_0 (W h + b)`` (blue) and
    activations (orange) at init, one row per case, on the probe network, for the layers of
    :func:`shown_layers`; over the hidden layers' pre-activations the normal the paper's
    hidden init predicts (:func:`predicted_pre_std`), over the activations the arcsine
    density 1/(pi sqrt(1-y^2)). Returns per-layer statistics (scalars, every layer) for the
    results."""
    x = data.grid((cfg.size, cfg.size))
    all_cases = cases(cfg)
    n_layers = cfg.probe_layers + 1
    show = shown_layers(n_layers)
    fig, axes = common.plt_figure(len(all_cases), 2 * len(show),
                                  figsize=(2.0 * 2 * len(show), 1.45 * len(all_cases) + 0.6), squeeze=False,
                                  layout="constrained")
    y = np.linspace(-0.995, 0.995, 200)
    stats, pres = [], {}
    for i, case in enumerate(all_cases):
        common.seed_all(cfg.seed)
        model = build_siren(cfg, case["siren"], cfg.probe_layers)
        acts = init_activations(model, x)
        for k, (pre2d, act2d) in enumerate(acts):
            pre, act = pre2d.ravel(), act2d.ravel()
            # act_signal: how much a unit's output still varies with the input (mean over units of
            # the std across points); the paper's init keeps it, a too-small bound lets it die
            stats.append({"case": case["label"], "layer": k + 1, "pre_mean": round(float(pre.mean()), 4),
                          "pre_std": round(float(pre.std()), 4), "act_std": round(float(act.std()), 4),
                          "act_signal": round(float(act2d.std(0).mean()), 4)})
            if k + 1 in show:
                pres[i, k + 1] = pre
                c = 2 * show.index(k + 1)
                a_act = axes[i, c + 1]
                a_act.hist(act, bins=60, range=(-1, 1), density=True, color="tab:orange", alpha=0.8)
                a_act.plot(y, 1 / (np.pi * np.sqrt(1 - y ** 2)), "k", lw=0.8)
                a_act.set_ylim(0, 3)
        ref = {k: predicted_pre_std(model.layers[k - 1]) for k in show if k > 1}
    for c, k in enumerate(show):  # one x range per column: the cases compare at a glance
        lim = max(4.0, max(float(np.percentile(np.abs(pres[i, k]), 99)) for i in range(len(all_cases))))
        z = np.linspace(-lim, lim, 300)
        for i, case in enumerate(all_cases):
            a_pre = axes[i, 2 * c]
            a_pre.hist(pres[i, k], bins=80, range=(-lim, lim), density=True, color="tab:blue", alpha=0.8)
            if k in ref:
                sd = ref[k]
                a_pre.plot(z, np.exp(-z ** 2 / (2 * sd ** 2)) / (sd * np.sqrt(2 * np.pi)), "k", lw=0.8)
            if c == 0:
                a_pre.set_ylabel(case["label"], fontsize=8)
        axes[0, 2 * c].set_title(f"layer {k}: pre-activation" + (f"\n(black: N(0, {ref[k]:.2f}\u00b2))"
                                                                   if k in ref else "\n(no reference)"), fontsize=8)
        axes[0, 2 * c + 1].set_title(f"layer {k}: activation\n(black: arcsine)", fontsize=8)
    for ax in axes.ravel():
        ax.set_yticks([])
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{cfg.study}, at initialization: pre-activations \u03c9\u2080(Wh + b) (blue) against the "
                 "normal the paper's hidden init predicts with the bias term,\n"
                 "activations (orange) against "
                 f"the arcsine density; layers {', '.join(map(str, show))} of {n_layers}", fontsize=9)
    common.save_figure(fig, path, caption=(
        f"Distributions at initialization for each case of the {cfg.study} ablation (one row each), for sine "
        f"layers {', '.join(map(str, show))} of a {n_layers}-layer probe network on the pixel grid. Blue: the "
        "pre-activation omega_0 (W h + b). Black over it, in the hidden layers: the normal that the paper's "
        "hidden initialization predicts for it, N(0, 1 + omega_0^2 / (3 fan_in)), the unit variance of the "
        "paper's lemma for omega_0 W h plus the variance of PyTorch's default bias U(+-1/sqrt(fan_in)) scaled "
        "by omega_0; the first layer, whose inputs are coordinates, has no such reference. Orange: the "
        "activation, against the arcsine density that the paper's initialization keeps through depth."))
    return stats


def add_arguments(parser) -> None:
    common.add_common_arguments(parser, default_out="runs/ablate")
    parser.add_argument("--study", required=True, help=f"one of {list(STUDIES)}")
    common.add_network_arguments(parser, layers=False)
    parser.add_argument("--layers", type=int, help="hidden->hidden layers after the first (official counting; "
                        "default 1: in -> 256 -> 256 -> out)")
    parser.add_argument("--lrs", help="comma-separated Adam learning rates, every case trained at each "
                        "(default: profile; cpu: 1e-4,1e-3,1e-2); --lr X is the same as --lrs X")
    parser.add_argument("--omegas", help="omega0 study: comma-separated omega_0 values (default: profile)")
    parser.add_argument("--scales",
                        help="hidden-init study: comma-separated factors on the paper's bound (default: profile)")
    parser.add_argument("--probe-layers", type=int,
                        help="init studies: hidden->hidden layers of the probe network (default: profile)")
    common.add_publish_arguments(parser)


def main(args) -> int:
    cfg = AblateConfig(study=args.study, image=args.image, size=args.size, steps=args.steps, lr=args.lr,
                       lrs=common.parse_floats(args.lrs, "--lrs"), hidden=args.hidden, layers=args.layers,
                       omegas=common.parse_floats(args.omegas, "--omegas"),
                       scales=common.parse_floats(args.scales, "--scales"), probe_layers=args.probe_layers,
                       backend=args.backend, device=args.device, seed=args.seed, out=args.out,
                       profile=args.profile, resume=args.resume, progress=not args.no_progress)
    res = run(cfg)
    common.publish_if_asked(args, f"ablate-{cfg.study}")
    for row in res["rows"]:
        what = f"{row['layer']} omega_0={row['value']:g}" if cfg.study == "omega0" else row["value"]
        print(f"{cfg.study:12s} {what:22s} lr {row['lr']:<8g} PSNR {row['psnr']:.2f} dB "
              f"(held-out {row['psnr_heldout']:.2f}), SSIM {row['ssim']:.4f}")
    print(f"({res['device']}, backend {res['backend']}) -> {cfg.out}")
    return 0
