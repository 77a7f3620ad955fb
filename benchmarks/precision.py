"""Accuracy of each Triton precision against float64, and the default it implies.

For every precision (``ieee``, ``tf32x3``, ``tf32`` for training; also ``fp16``/``bf16``
for inference) this measures, on the same weights:

* the scaled error (max |err| / max |reference|) of the value, gradient and Laplacian of a
  freshly initialised and of a fitted SIREN, against the reference backend in float64;
* the PSNR an image fit reaches when *trained* at that precision (evaluated in float64, so
  only the training precision differs), next to the float64 fit, and the time per step;
* the error of ``sin``/``cos`` over [-3000, 3000] (``tl.sin`` may be an approximate
  instruction on a GPU; the kernels reduce the argument first);
* for inference (the path a render takes at that precision by default: the per-layer kernels
  for ``ieee``/``tf32x3``/``tf32``, the fused kernel for ``fp16``/``bf16``, which only it has):
  the PSNR of the fitted network's rendered image against the image, next to the same network
  rendered in float64, and the time of one render of ``render_points`` points.

Rule for the default training precision: the fastest measured precision whose fit is
within ``--psnr-slack`` dB of the float64 fit and whose gradient and Laplacian errors on
the fitted network are at most ``--jet-tol``. Rule for the default inference precision: the
fastest render whose image is within ``--psnr-slack`` dB of the float64 render and whose
fitted jet errors (value, gradient, Laplacian: a render may draw any of them) are finite and
at most ``--infer-jet-tol``. The result (rows in the tasks' results shape plus
``recommended_default`` and ``recommended_infer_default``) goes to
``benchmarks/results/precision-<profile>.json``.

Run on a GPU: ``python -m fastsiren.benchmarks.precision``. ``--profile quick`` is a tiny
smoke run that also works on the CPU under ``TRITON_INTERPRET=1`` (minutes, not numbers).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from fastsiren.kernels import backend as tb
from fastsiren.kernels import config
from fastsiren.kernels.jet_math import sin_cos_error

import fastsiren as fs
from fastsiren import metrics, reference
from fastsiren.data import grid, load_image
from fastsiren.tasks.common import results_doc, seed_all, train, write_json

RESULTS_DIR = Path(__file__).resolve().parent / "results"
GPU_FILE = "precision-gpu.json"  # the run that sets the default (gpu_check.sh writes it)

# how ``step_ms`` is timed (recorded in the results file; files without it timed every step, the
# first ones' Triton compilation included, which made Triton's fits look slower than float64's)
STEP_TIMING = "mean per step after the first tenth of the steps (compilation excluded)"

PROFILES = {
    # image side, width, hidden layers, fit steps, jet points
    "gpu": dict(size=256, width=256, hidden=3, steps=300, points=16384, render_points=1 << 22, repeats=5),
    "quick": dict(size=12, width=16, hidden=1, steps=3, points=37, render_points=64, repeats=1),
}


def scaled_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| in float64."""
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def jet_errors(model: fs.Siren, x: torch.Tensor, precision: str) -> dict[str, float]:
    """Errors of the triton jet (training kernels, or the fused inference kernel for half
    precisions) of ``model`` at x against its float64 reference jet."""
    ws, bs = model._params()
    w64 = [w.detach().double() for w in ws]
    b64 = [b.detach().double() for b in bs]
    exact = reference.mlp_infer(x.double(), w64, b64, model.omegas(), 2)
    with torch.no_grad():
        if precision in config.PRECISIONS:
            with config.precision(train=precision):
                got = tb.mlp_jet(x, [w.detach() for w in ws], [b.detach() for b in bs], model.omegas(), 2)
        else:
            with config.precision(infer=precision):
                got = tb.mlp_infer(x, ws, bs, model.omegas(), 2)
    return {f"{name}_err": scaled_err(a, b) for name, a, b in
            zip(("value", "grad", "lap"), got, exact)}


def fit(image: torch.Tensor, width: int, hidden: int, steps: int, backend: str, dtype: torch.dtype,
        precision: str | None, seed: int) -> tuple[fs.Siren, float, float]:
    """Fit a SIREN to ``image`` (H, W, C) in [-1, 1]; returns the model, the PSNR of its
    float64 evaluation and the mean seconds per training step after the first tenth of the
    steps (:data:`STEP_TIMING`: the first steps hold the kernels' compilation)."""
    h, w, c = image.shape
    seed_all(seed)
    model = fs.Siren(2, width, hidden, c, backend=backend).to(device=image.device, dtype=dtype)
    x = grid((h, w), device=image.device, dtype=dtype)
    target = image.reshape(-1, c).to(dtype)

    def loss_fn() -> torch.Tensor:
        return ((model(x) - target) ** 2).mean()

    with config.precision(train=precision or "ieee"):
        state = train(model, loss_fn, steps=steps, lr=1e-4, progress=False, log_every=max(1, steps // 10))
    # steps synchronised by train(); the history's seconds are cumulative
    first, last = state.history[0], state.history[-1]
    per_step = ((last["seconds"] - first["seconds"]) / (last["step"] - first["step"]) if last["step"] > first["step"]
                else state.seconds / steps)
    ref64 = fs.Siren(2, width, hidden, c, backend="reference").to(device=image.device, dtype=torch.float64)
    ref64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    with torch.no_grad():
        pred = ref64(x.double()).reshape(h, w, c)
    return model, metrics.psnr(pred.cpu().numpy(), image.double().cpu().numpy(), data_range=2.0), per_step


def render_check(model: fs.Siren, image: torch.Tensor, precision: str | None, points: int,
                 repeats: int) -> tuple[float, float]:
    """PSNR of ``model`` rendered on the image's grid at inference ``precision`` (None: the
    float64 reference) against the image, and the median ms of one render of ``points`` points
    (a square grid; not timed for the reference)."""
    h, w, c = image.shape
    ws, bs = model._params()
    ws, bs = [t.detach() for t in ws], [t.detach() for t in bs]
    sync = torch.cuda.synchronize if image.is_cuda else (lambda: None)
    with torch.no_grad():
        if precision is None:
            pred = reference.mlp_infer(grid((h, w), device=image.device, dtype=torch.float64),
                                       [t.double() for t in ws], [t.double() for t in bs], model.omegas(), 0)
            return metrics.psnr(pred.value.reshape(h, w, c).cpu().numpy(), image.double().cpu().numpy(),
                                data_range=2.0), math.nan
        with config.precision(infer=precision):
            pred = tb.mlp_infer(grid((h, w), device=image.device), ws, bs, model.omegas(), 0).value
            psnr = metrics.psnr(pred.reshape(h, w, c).double().cpu().numpy(), image.double().cpu().numpy(),
                                data_range=2.0)
            side = int(math.isqrt(points))
            xs = grid((side, side), device=image.device)
            times = []
            for _ in range(repeats + 1):  # the first call compiles
                sync()
                t0 = time.perf_counter()
                tb.mlp_infer(xs, ws, bs, model.omegas(), 0)
                sync()
                times.append(time.perf_counter() - t0)
    return psnr, 1e3 * sorted(times[1:])[len(times[1:]) // 2]


def recommend_infer(rows: list[dict], psnr_slack: float, jet_tol: float) -> str:
    """The fastest inference precision that passes the inference rule (ieee if none does)."""
    ok = [r for r in rows if r["precision"] in config.INFER_PRECISIONS and r.get("render_psnr_drop") is not None
          and r["render_psnr_drop"] <= psnr_slack
          and all(math.isfinite(r[k]) and r[k] <= jet_tol for k in ("fitted_value_err", "fitted_grad_err",
                                                                     "fitted_lap_err"))]
    if not ok:
        return "ieee"
    return min(ok, key=lambda r: r["render_ms"])["precision"]


def sin_error(device: torch.device) -> float:
    """Max error of the kernels' sin/cos over [-3000, 3000] (float32) against float64."""
    return sin_cos_error(torch.linspace(-3000.0, 3000.0, 1 << 16, device=device))


def recommend(rows: list[dict], psnr_slack: float, jet_tol: float) -> str:
    """The fastest training precision that passes the accuracy rule (ieee if none does)."""
    by_method = {r["method"]: r for r in rows}
    f64 = by_method["float64"]["psnr"]
    ok = [r for r in rows if r.get("training") and r["psnr"] >= f64 - psnr_slack
          and r["fitted_grad_err"] <= jet_tol and r["fitted_lap_err"] <= jet_tol]
    if not ok:
        return "ieee"
    return min(ok, key=lambda r: r["step_ms"])["precision"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="gpu",
                        help="sizes: gpu (the 256x256 fit, 16,384 jet points) or quick (a tiny smoke run)")
    parser.add_argument("--image", default="camera", help="image of the fits (a bundled name or a file)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the networks' init and the jet points")
    parser.add_argument("--psnr-slack", type=float, default=0.1, help="dB below the float64 fit")
    parser.add_argument("--jet-tol", type=float, default=1e-3, help="scaled gradient/Laplacian error")
    parser.add_argument("--infer-jet-tol", type=float, default=1e-2,
                        help="scaled value/gradient/Laplacian error allowed to an inference precision")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: benchmarks/results/)")
    args = parser.parse_args(argv)
    cfg = PROFILES[args.profile]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    image = torch.from_numpy(load_image(args.image, size=cfg["size"], gray=True)).to(device)
    gen = torch.Generator().manual_seed(args.seed)
    x = (torch.rand(cfg["points"], 2, generator=gen) * 2 - 1).to(device)
    common = dict(width=cfg["width"], hidden=cfg["hidden"], steps=cfg["steps"], seed=args.seed)

    _, psnr64, sec64 = fit(image, backend="reference", dtype=torch.float64, precision=None, **common)
    rows: list[dict] = [{"method": "float64", "precision": "float64", "training": False, "psnr": psnr64,
                         "step_ms": 1e3 * sec64}]
    init = fs.Siren(2, cfg["width"], cfg["hidden"], 1, backend="triton").to(device)
    fitted = None
    for prec in config.INFER_PRECISIONS:
        row: dict = {"method": f"triton-{prec}", "precision": prec, "training": prec in config.PRECISIONS}
        row.update({f"init_{k}": v for k, v in jet_errors(init, x, prec).items()})
        if row["training"]:
            model, psnr, sec = fit(image, backend="triton", dtype=torch.float32, precision=prec, **common)
            row.update(psnr=psnr, psnr_drop=psnr64 - psnr, step_ms=1e3 * sec)
            if prec == "ieee":
                fitted = model
        rows.append(row)
    render64, _ = render_check(fitted, image, None, cfg["render_points"], cfg["repeats"])
    for row in rows[1:]:
        row.update({f"fitted_{k}": v for k, v in jet_errors(fitted, x, row["precision"]).items()})
        psnr, ms = render_check(fitted, image, row["precision"], cfg["render_points"], cfg["repeats"])
        row.update(render_psnr=psnr, render_psnr_drop=render64 - psnr, render_ms=ms)
    rows[0]["render_psnr"] = render64
    default = recommend(rows, args.psnr_slack, args.jet_tol)
    infer_default = recommend_infer(rows, args.psnr_slack, args.infer_jet_tol)
    doc = results_doc("precision", args.profile, rows, backend="triton", seconds=time.perf_counter() - t_start,
                      device=device, image=args.image, size=cfg["size"], width=cfg["width"],
                      hidden_layers=cfg["hidden"], steps=cfg["steps"], points=cfg["points"],
                      rule=f"fastest with psnr >= float64 - {args.psnr_slack} dB and fitted grad/lap "
                           f"error <= {args.jet_tol}",
                      infer_rule=f"fastest render with psnr >= float64 render - {args.psnr_slack} dB and finite "
                                 f"fitted value/grad/lap error <= {args.infer_jet_tol}",
                      render_points=cfg["render_points"], step_timing=STEP_TIMING,
                      recommended_default=default, current_default=config.DEFAULT_PRECISION,
                      recommended_infer_default=infer_default,
                      current_infer_default=config.DEFAULT_INFER_PRECISION,
                      sin_max_err=sin_error(device))
    out = args.out or RESULTS_DIR / f"precision-{args.profile}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, doc)
    for r in rows:
        print({k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v) for k, v in r.items()})
    print(f"recommended default training precision: {default} (current: {config.DEFAULT_PRECISION}); "
          f"inference: {infer_default} (current: {config.DEFAULT_INFER_PRECISION}); "
          f"sin max error {doc['sin_max_err']:.2e}; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
