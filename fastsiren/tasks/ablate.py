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

from fastsiren import data, functional, metrics
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
        functional.check_omega(w, "omega_0 (omegas entry)")
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
    device, backend = common.task_backend(cfg.backend, cfg.device)
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
    doc = common.results_doc("ablate", cfg.profile, rows, backend=backend,
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


# Figure size and fonts (pt): the report places a figure at most its text width wide
# (fastsiren.report.build.TEXT_WIDTH_IN), so a FIGURE_WIDTH_IN-wide one is scaled down a little.
FIGURE_WIDTH_IN = 7.9
FONT, FONT_LABEL, FONT_TITLE = 9, 10, 11


def plot_study(path, cfg: AblateConfig, rows: list[dict], histories: dict[str, list[dict]]) -> None:
    """Top row: final PSNR per case on the training pixels (left) and on the held-out grid
    (right), one colour per learning rate, their legend beneath the row (omega0: against
    omega_0, log axis, line style = layer; the init studies: one line of dots per case). Bottom
    row: PSNR against steps for every case at its best rate on the held-out grid, legend on the
    right (omega0: first-layer sweeps in blues, hidden-layer sweeps in oranges, darker = larger
    omega_0, one legend column per layer). Sized to be read at the report's width."""
    import matplotlib
    import matplotlib.ticker
    from matplotlib.lines import Line2D

    n_cases = len(cases(cfg)) if cfg.study != "omega0" else 0
    top_h = max(3.2, 0.3 * n_cases + 1.2)
    fig = common.plt_canvas(figsize=(FIGURE_WIDTH_IN, top_h + 3.5), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[top_h, 3.5], hspace=0.02)
    ax_t, ax_h = top.subplots(1, 2)
    ax_c = bottom.subplots()
    lr_color = _lr_colors(cfg.lrs)
    multi = len(cfg.lrs) > 1
    heldout = f"held-out {2 * cfg.size}x{2 * cfg.size} grid"
    colors: dict[str, tuple] = {}
    for ax, metric, what in ((ax_t, "psnr", "training pixels"), (ax_h, "psnr_heldout", heldout)):
        if cfg.study == "omega0":
            for layer, (style, marker) in (("first", ("-", "o")), ("hidden", ("--", "s"))):
                for lr in cfg.lrs:
                    sel = [r for r in rows if r["layer"] == layer and r["lr"] == lr]
                    ax.plot([r["value"] for r in sel], [r[metric] for r in sel], style, marker=marker, ms=5,
                            color=lr_color[lr], mfc="none" if layer == "hidden" else None,
                            label=("first layer" if layer == "first" else "hidden layers")
                            + (f", lr {lr:g}" if multi else ""))
            ax.set_xscale("log")
            ax.set_xlabel("omega_0 (the other layers at 30)", fontsize=FONT_LABEL)
            ax.set_xticks(list(cfg.omegas), [f"{w:g}" for w in cfg.omegas], rotation=45)
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_ylabel("PSNR (dB)", fontsize=FONT_LABEL)
        else:
            groups = _by_case(cfg, rows)
            for i, case_rows in enumerate(groups):
                vals = [r[metric] for r in case_rows]
                ax.plot([min(vals), max(vals)], [i, i], color="0.8", lw=1, zorder=1)
                for r in case_rows:
                    ax.plot(r[metric], i, "o", ms=5, color=lr_color[r["lr"]], zorder=2,
                            label=f"lr {r['lr']:g}" if i == 0 and multi else None)
                ax.text(max(vals), i, f" {max(vals):.1f}", va="center", fontsize=FONT)
            ax.set_yticks(np.arange(len(groups)), [str(g[0]["value"]) for g in groups])
            ax.set_ylim(len(groups) - 0.5, -0.5)
            lo = min(r[metric] for r in rows)
            hi = max(r[metric] for r in rows)
            ax.set_xlim(lo - 0.05 * (hi - lo + 1), hi + 0.25 * (hi - lo + 1))  # room for the values
            ax.set_xlabel("PSNR (dB)", fontsize=FONT_LABEL)
        ax.set_title(what, fontsize=FONT_LABEL)
        ax.tick_params(labelsize=FONT)
        ax.grid(alpha=0.3)
    if multi or cfg.study == "omega0":  # one legend for both panels, beneath them
        handles, labels = ax_h.get_legend_handles_labels()
        ncol = len(cfg.lrs)
        if cfg.study == "omega0":  # a row per layer (the legend fills column by column)
            order = [i + j * ncol for i in range(ncol) for j in range(2)]
            handles, labels = [handles[i] for i in order], [labels[i] for i in order]
        top.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=FONT, frameon=False,
                   columnspacing=1.5, handlelength=2.5 if cfg.study == "omega0" else 1.0)
    if cfg.study == "omega0":  # the curves' colours: a sequential map per layer, by log omega_0
        logs = np.log([r["value"] for r in rows])
        span = (logs.max() - logs.min()) or 1.0
        for r, lg in zip(rows, logs):
            cmap = matplotlib.colormaps["Blues" if r["layer"] == "first" else "Oranges"]
            colors[f"{r['layer']} omega_0={r['value']:g}"] = (cmap(0.35 + 0.6 * (lg - logs.min()) / span),
                                                              "-" if r["layer"] == "first" else "--")
    best = best_rates(cfg, rows)
    drawn: dict[str, list] = {"first": [], "hidden": [], "": []}
    for case, (label, lr) in zip(cases(cfg), best.items()):
        hist = histories.get(history_key(cfg, label, lr))
        if hist is None:  # omega0: (30, 30) trained once, drawn as 'first omega_0=30'
            continue
        color, style = colors.get(label, (None, "-"))
        rate = f" (lr {lr:g})" if multi else ""
        if cfg.study == "omega0":  # the legend's columns name the layer: an entry is omega_0 and rate
            short = f"{case['row']['value']:g}{rate}"
        else:
            short = label + rate
        (line,) = ax_c.plot([h["step"] for h in hist], [h["psnr"] for h in hist], style, color=color, label=short)
        drawn[case["row"].get("layer", "")].append(line)
    ax_c.set_xlabel("step", fontsize=FONT_LABEL)
    ax_c.set_ylabel("PSNR (dB), training pixels", fontsize=FONT_LABEL)
    ax_c.set_title("during training" + (", each case at its best rate on the held-out grid" if multi else ""),
                   fontsize=FONT_LABEL)
    ax_c.tick_params(labelsize=FONT)
    ax_c.grid(alpha=0.3)
    if cfg.study == "omega0":  # two columns, each headed by its layer
        blank = Line2D([], [], color="none")
        rows_n = max(len(drawn["first"]), len(drawn["hidden"]))
        handles, labels = [], []
        for layer, head in (("first", "first layer,"), ("hidden", "hidden layers,")):
            lines = drawn[layer]
            handles += [blank, blank] + lines + [blank] * (rows_n - len(lines))
            labels += [head, "omega_0" + (" (lr)" if multi else "")] + [ln.get_label() for ln in lines] \
                + [""] * (rows_n - len(lines))
        leg = common.legend_outside(ax_c, handles=handles, labels=labels, ncol=2, fontsize=FONT,
                                    handlelength=2.0, columnspacing=1.0)
        for i, t in enumerate(leg.get_texts()):
            if i % (rows_n + 2) < 2:  # the column heads
                t.set_fontweight("bold")
    else:
        common.legend_outside(ax_c, fontsize=FONT, handlelength=1.5)
    rates = ", ".join(f"{lr:g}" for lr in cfg.lrs)
    fig.suptitle(f"{cfg.study}: {cfg.image} {cfg.size}x{cfg.size}, {cfg.steps} steps, "
                 f"learning rate{'s' if multi else ''} {rates}", fontsize=FONT_TITLE)
    common.save_figure(fig, path, caption=(
        f"Ablation of {STUDY_TOPICS[cfg.study]} ({cfg.image} {cfg.size}x{cfg.size}, {cfg.steps} steps, "
        f"profile {cfg.profile}, Adam at learning rate{'s' if multi else ''} {rates}): "
        f"final PSNR on the training pixels (top left) and on a held-out {2 * cfg.size}x{2 * cfg.size} grid "
        "between them (top right)" + (", one colour per learning rate" if multi else "")
        + "; PSNR on the training pixels against steps for every case"
        + (" at the rate best for it on the held-out grid" if multi else "") + " (bottom)"
        + ("; the run with both at 30 is shown once, as first layer omega_0=30." if cfg.study == "omega0"
           else ".")))


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
    from matplotlib.ticker import FixedLocator

    x = data.grid((cfg.size, cfg.size))
    all_cases = cases(cfg)
    n_layers = cfg.probe_layers + 1
    show = shown_layers(n_layers)
    fig = common.plt_canvas(figsize=(FIGURE_WIDTH_IN, 0.78 * len(all_cases) + 1.5), layout="constrained")
    # one subfigure per layer shown, headed by it: two columns each, pre-activation and activation
    subs = fig.subfigures(1, len(show), wspace=0.0, width_ratios=[1.12] + [1] * (len(show) - 1))
    axes = np.concatenate([sub.subplots(len(all_cases), 2, squeeze=False) for sub in subs], axis=1)
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
                a_act.xaxis.set_major_locator(FixedLocator([-1, 0, 1]))
        ref = {k: predicted_pre_std(model.layers[k - 1]) for k in show if k > 1}
    for c, k in enumerate(show):  # one x range per column: the cases compare at a glance
        lim = max(4.0, max(float(np.percentile(np.abs(pres[i, k]), 99)) for i in range(len(all_cases))))
        z = np.linspace(-lim, lim, 300)
        tick = _nice_tick(0.85 * lim)  # three ticks, far enough apart for their labels
        for i, case in enumerate(all_cases):
            a_pre = axes[i, 2 * c]
            a_pre.hist(pres[i, k], bins=80, range=(-lim, lim), density=True, color="tab:blue", alpha=0.8)
            a_pre.xaxis.set_major_locator(FixedLocator([-tick, 0, tick]))
            if k in ref:
                sd = ref[k]
                a_pre.plot(z, np.exp(-z ** 2 / (2 * sd ** 2)) / (sd * np.sqrt(2 * np.pi)), "k", lw=0.8)
            if c == 0:
                a_pre.set_ylabel(case["label"], fontsize=FONT)
        subs[c].suptitle(f"layer {k}", fontsize=FONT_LABEL, fontweight="bold")
        axes[0, 2 * c].set_title("pre-activ.\n" + (f"N(0, {ref[k]:.2f}\u00b2)" if k in ref else "(no ref.)"),
                                 fontsize=FONT)
        axes[0, 2 * c + 1].set_title("activation\narcsine", fontsize=FONT)
    for ax in axes.ravel():
        ax.set_yticks([])
        ax.tick_params(labelsize=FONT, pad=2)
    fig.suptitle(f"{cfg.study}, at initialization, layers {', '.join(map(str, show))} of {n_layers}: "
                 "pre-activations \u03c9\u2080(Wh + b) (blue)\nagainst the normal the paper's hidden init predicts "
                 "with the bias term\n(black; its N(0, \u03c3\u00b2) heads the column), "
                 "activations (orange) against the arcsine density (black)",
                 fontsize=FONT_LABEL)
    common.save_figure(fig, path, caption=(
        f"Distributions at initialization for each case of the {cfg.study} ablation (one row each), for sine "
        f"layers {', '.join(map(str, show))} of a {n_layers}-layer probe network on the pixel grid (two columns "
        "per layer). Blue: the "
        "pre-activation omega_0 (W h + b). Black over it, in the hidden layers: the normal that the paper's "
        "hidden initialization predicts for it, N(0, 1 + omega_0^2 / (3 fan_in)), the unit variance of the "
        "paper's lemma for omega_0 W h plus the variance of PyTorch's default bias U(+-1/sqrt(fan_in)) scaled "
        "by omega_0; the first layer, whose inputs are coordinates, has no such reference. Orange: the "
        "activation, against the arcsine density that the paper's initialization keeps through depth."))
    return stats


def _nice_tick(x: float) -> float:
    """The largest of 1, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten that is at most ``x`` (> 0)."""
    p = 10.0 ** np.floor(np.log10(x))
    return float(max(m * p for m in (1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0) if m * p <= x))


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


# the options that only one kind of study reads: given to another, they were ignored silently
STUDY_OPTIONS = {"omegas": ("omega0",), "scales": ("hidden-init",), "probe_layers": ("first-init", "hidden-init")}


def main(args) -> int:
    for name, studies in STUDY_OPTIONS.items():
        if getattr(args, name) is not None and args.study not in studies:
            raise ValueError(f"--{name.replace('_', '-')} applies to the {' and '.join(studies)} "
                             f"stud{'ies' if len(studies) > 1 else 'y'} only, not to --study {args.study}")
    cfg = AblateConfig(study=args.study, image=args.image, size=args.size, steps=args.steps, lr=args.lr,
                       lrs=common.parse_floats(args.lrs, "--lrs"), hidden=args.hidden, layers=args.layers,
                       omegas=common.parse_floats(args.omegas, "--omegas"),
                       scales=common.parse_floats(args.scales, "--scales"), probe_layers=args.probe_layers,
                       backend=args.backend, device=args.device, seed=args.seed, out=args.out,
                       profile=args.profile, resume=args.resume, progress=not args.no_progress)
    common.check_publish_args(args)
    res = run(cfg)
    common.publish_if_asked(args, f"ablate-{cfg.study}")
    for row in res["rows"]:
        what = f"{row['layer']} omega_0={row['value']:g}" if cfg.study == "omega0" else row["value"]
        print(f"{cfg.study:12s} {what:22s} lr {row['lr']:<8g} PSNR {row['psnr']:.2f} dB "
              f"(held-out {row['psnr_heldout']:.2f}), SSIM {row['ssim']:.4f}")
    print(f"({res['device']}, backend {res['backend']}) -> {cfg.out}")
    return 0
