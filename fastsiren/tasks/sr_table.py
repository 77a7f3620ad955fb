"""The SR evaluation table: every method on the bundled images at x2, x2.5, x3 and x4.

    python -m fastsiren.tasks.sr_table --profile cpu [--images camera,astronaut] [--scales 2,2.5,3,4]

Writes ``docs/results/sr-<profile>.json`` (the tasks' results shape, :func:`common.results_doc`, rewritten atomically
after every image and scale so an interrupted table keeps what it measured, ``complete`` False
until the end; ``--resume`` keeps those rows and runs the rest) and, under ``docs/figures/``,
the crops of one region for every method and the error maps.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from fastsiren import backends, data
from fastsiren.tasks import common, sr
from fastsiren.tasks.sr_train import EVAL_IMAGES

# Published PSNR-Y (dB) on Set5 / Set14 (other data: other images, other training sets), from
# the tables of EDSR (Lim et al., CVPRW 2017, Table 6: bicubic, SRCNN, EDSR) and SwinIR
# (Liang et al., ICCVW 2021, Table 2, DIV2K-trained classical SR). Context only.
PUBLISHED = [
    {"method": m, "dataset": d, "scale": s, "psnr_y": v}
    for m, d, vals in [
        ("bicubic", "Set5", (33.66, 30.39, 28.42)), ("bicubic", "Set14", (30.24, 27.55, 26.00)),
        ("SRCNN", "Set5", (36.66, 32.75, 30.48)), ("SRCNN", "Set14", (32.42, 29.28, 27.49)),
        ("EDSR", "Set5", (38.11, 34.65, 32.46)), ("EDSR", "Set14", (33.92, 30.52, 28.80)),
        ("SwinIR", "Set5", (38.35, 34.89, 32.72)), ("SwinIR", "Set14", (34.14, 30.77, 28.94)),
    ]
    for s, v in zip((2, 3, 4), vals)
]


def summarize(rows: list[dict]) -> list[dict]:
    """Per scale and method: mean PSNR-Y / SSIM-Y / seconds, and for siren-consistent the mean
    gain over bicubic, lanczos3 and srcnn with the number of images where it wins."""
    out = []
    by = {(r["scale"], r["method"], r["image"]): r for r in rows}
    for scale in sorted({r["scale"] for r in rows}):
        images = sorted({r["image"] for r in rows if r["scale"] == scale})
        for method in sr.METHODS:
            got = [by[(scale, method, i)] for i in images if (scale, method, i) in by]
            if not got:
                continue
            rec = {"scale": scale, "method": method, "images": len(got),
                   "psnr_y": round(float(np.mean([r["psnr_y"] for r in got])), 4),
                   "ssim_y": round(float(np.mean([r["ssim_y"] for r in got])), 5),
                   "seconds": round(float(np.mean([r["seconds"] for r in got])), 3)}
            if method == "siren-consistent":
                for ref in ("bicubic", "lanczos3", "srcnn", "siren-naive"):
                    pairs = [(by[(scale, method, i)]["psnr_y"], by[(scale, ref, i)]["psnr_y"])
                             for i in images if (scale, method, i) in by and (scale, ref, i) in by]
                    if pairs:
                        rec[f"gain_vs_{ref}"] = round(float(np.mean([a - b for a, b in pairs])), 4)
                        rec[f"wins_vs_{ref}"] = f"{sum(a > b for a, b in pairs)}/{len(pairs)}"
            out.append(rec)
    return out


def run_table(profile: str, images: tuple[str, ...], scales: tuple[float, ...], results: Path, figures: Path,
              figure_images: tuple[str, ...] = ("astronaut", "camera"), progress: bool = False,
              resume: bool = False) -> dict:
    """Evaluate every method on every image and scale; returns the results document.
    ``resume``: the images and scales already in ``results`` (a run of the same settings) are
    kept, not run again."""
    base = sr.resolve(sr.SRConfig(profile=profile, progress=progress))
    images, scales = common.check_unique("--images", images), common.check_unique("--scales", scales)
    common.figure_stems([name for name in images if name in figure_images], "images")  # the ones drawn
    loaded = {name: data.read_image(name) for name in images}
    for scale in scales:  # a bad scale, or an image too small for one, is refused before the first fit
        sr.resolve(dataclasses.replace(base, scale=scale))
        for img in loaded.values():
            sr.sizes_for(img.shape[:2], scale, base.crop)
    device = common.pick_device("auto")
    srcnn = sr.load_srcnn()
    commit = common.git_commit()  # the code that ran, not what HEAD is at the last rewrite
    backend = backends.resolve(base.backend, device)
    settings = {k: v for k, v in dataclasses.asdict(base).items()
                if k in ("crop", "steps", "lr", "hidden", "layers", "omega_per_px", "tv", "tv_points", "tile")}
    units = [(name, float(scale)) for name in images for scale in scales]
    done, extra = common.resumed_rows(results, resume, key=lambda r: (r["image"], float(r["scale"])),
                                      units=set(units), task="sr", profile=profile,
                                      device=common.device_name(device), backend=backend,
                                      threads=torch.get_num_threads(), siren_settings=settings)
    rows: list[dict] = []
    t0 = time.perf_counter() - extra.pop("seconds", 0.0)
    doc: dict = {}
    for i, (name, scale) in enumerate(units):
        have = done.get((name, scale), [])
        if {r["method"] for r in have} >= set(sr.METHODS):  # --resume: measured by the earlier run
            rows += have
        else:
            cfg = dataclasses.replace(base, scale=scale, image=name)
            hr, lr, res = sr.evaluate_image(loaded[name], cfg, device, srcnn)
            line = "  ".join(f"{m} {row['psnr_y']:.2f}" for m, (_, row) in res.items())
            print(f"{name} x{scale:g} [{time.perf_counter() - t0:.0f} s]: {line}", flush=True)
            if name in figure_images:  # drawn before the rows are written: a resumed table has its figure
                # an image given as a file path is named by its stem (no folders inside the figure's name)
                sr.crop_figure(figures / f"sr-{profile}-{Path(name).stem}-x{scale:g}.png", hr, lr,
                            {m: s for m, (s, _) in res.items()}, scale, f"{name}, x{scale:g} ({profile} profile)")
            rows += [{**row, "image": name} for _, row in res.values()]
        doc = common.results_doc(
            "sr", profile, rows, backend=backend, device=device,
            seconds=time.perf_counter() - t0, commit=commit, complete=i == len(units) - 1,
            threads=torch.get_num_threads(), protocol=sr.PROTOCOL,
            siren_settings=settings, siren_rules=sr.RULES, summary=summarize(rows),
            published_other_data=PUBLISHED,
            srcnn_training=common.read_json(sr.WEIGHTS.with_suffix(".json")), **extra)
        common.write_json(results, doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    from fastsiren.cli import _HelpFormatter  # the defaults in the help, as `fastsiren TASK --help` has them

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_HelpFormatter)
    p.add_argument("--profile", choices=common.PROFILES, default="cpu",
                   help="quick = seconds (tests); cpu = minutes on 2 cores; paper = the paper's settings (GPU)")
    p.add_argument("--images", default=",".join(EVAL_IMAGES), help="comma-separated image names")
    p.add_argument("--scales", default="2,2.5,3,4", help="comma-separated scales (any real > 1)")
    p.add_argument("--results", help="results file (default: docs/results/sr-<profile>.json)")
    p.add_argument("--figures", default="docs/figures", help="figure folder")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.add_argument("--resume", action="store_true",
                   help="keep the images and scales already in the results file (a run of the same settings, "
                        "interrupted or finished) and run the rest")
    a = p.parse_args(argv)
    common.positive("--threads", a.threads, int)
    images = tuple(s.strip() for s in a.images.split(",") if s.strip())
    try:
        scales = tuple(float(s) for s in a.scales.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"--scales {a.scales!r}: expected comma-separated numbers > 1") from None
    if not images or not scales:
        raise ValueError(f"--images {a.images!r} / --scales {a.scales!r}: each needs at least one entry")
    torch.set_num_threads(a.threads)
    results = common.check_output_file(a.results or f"docs/results/sr-{a.profile}.json", "--results")
    doc = run_table(a.profile, images, scales, results, Path(a.figures), progress=a.progress, resume=a.resume)
    for rec in doc["summary"]:
        extra = "  ".join(f"{k} {v}" for k, v in rec.items() if k.startswith(("gain", "wins")))
        print(f"x{rec['scale']:g} {rec['method']:>17}: PSNR-Y {rec['psnr_y']:.2f}  SSIM-Y {rec['ssim_y']:.4f}  {extra}")
    print(f"{doc['seconds']:.0f} s -> {results}")
    return 0


# what a Ctrl-C of the table leaves (the script's and `fastsiren experiments`' message)
INTERRUPT_HINT = "the rows measured so far are in the results file; rerun with --resume to run the rest"

if __name__ == "__main__":
    common.script_main(main, "sr_table", INTERRUPT_HINT)
