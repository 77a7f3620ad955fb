"""What a weighted Laplacian costs: the wave suite's training step with its weights
(``laplacian_weights = (1, -v^2, -v^2)``) and the same step with the plain Laplacian, per
provider, interleaved in one process.

    python -m benchmarks.weighted_cost       # writes benchmarks/results/weighted-cost-<device>.json
                                             # (<device>: cpu-2t for 2 CPU threads, or the GPU's name)

Both steps run the same network on the same (T, H, W) grid of the wave suite (D = 3, S = 5
streams, :func:`benchmarks.suites.default_shape`); only the Laplacian's weights differ, so
the ratio of their times is the price of the weights: one multiplication per dimension and
element in the epilogue and its adjoint (the Triton and CUDA kernels compile the weighted
epilogue as a variant of their own). The step's outputs are checked against the reference
by the wave suite itself (``fastsiren bench --suite wave``), not here.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from pathlib import Path

import torch

from fastsiren.tasks import common

from .harness import PROVIDERS, ProviderUnavailable, interleaved_times
from .records import RESULTS_DIR, environment
from .scaling import device_tag
from .suites import default_shape, get_suite

PROVIDER_NAMES = ("torch", "triton", "cuda")


def measure(device: torch.device, providers=PROVIDER_NAMES, size: str = "default", rounds: int = 7,
            block_s: float = 0.2, log=print) -> tuple[list[dict], dict[str, str]]:
    """Rows (provider, plain and weighted median ms, their ratio) and the providers skipped
    with their reasons."""
    weighted = get_suite("wave")
    plain = dataclasses.replace(weighted, laplacian_weights=None)
    shape = default_shape("wave", size, device.type)
    case = weighted.make_case(shape, device, torch.float32)
    rows, skipped = [], {}
    for name in providers:
        prov = PROVIDERS[name]
        try:
            ops = prov.load(device)
        except ProviderUnavailable as exc:
            skipped[name] = str(exc)
            log(f"{name:8s} skipped: {exc}")
            continue
        runners = {"plain": plain.bind(case, "step", ops), "weighted": weighted.bind(case, "step", ops)}

        def stepper(runner, setup=prov.setup):
            def step():
                if setup is not None:
                    setup()
                runner.step()
            return step

        times, _ = interleaved_times({k: stepper(r) for k, r in runners.items()}, device, rounds, block_s)
        ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        row = {"provider": name, "plain_ms": round(ms["plain"], 3), "weighted_ms": round(ms["weighted"], 3),
               "weighted_over_plain": round(ms["weighted"] / ms["plain"], 4),
               "spread_ms": {k: [round(min(v) * 1e3, 3), round(max(v) * 1e3, 3)] for k, v in times.items()}}
        rows.append(row)
        log(f"{name:8s} plain {ms['plain']:.2f} ms, weighted {ms['weighted']:.2f} ms "
            f"({row['weighted_over_plain']:.3f}x)")
    return rows, skipped


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.weighted_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--provider", action="append", choices=PROVIDER_NAMES,
                   help="provider, repeatable (default: torch, triton, cuda; those that cannot run here are "
                        "skipped with the reason)")
    p.add_argument("--size", default="default", choices=("quick", "default", "large"),
                   help="the wave suite's problem size")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved timed rounds")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", type=Path, default=None,
                   help="results file (default: benchmarks/results/weighted-cost-<device>.json)")
    a = p.parse_args(argv)
    common.positive("--rounds", a.rounds, int)
    if a.threads is not None:
        common.positive("--threads", a.threads, int)
        torch.set_num_threads(a.threads)
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    rows, skipped = measure(device, tuple(a.provider or PROVIDER_NAMES), a.size, a.rounds,
                            0.2 if device.type == "cpu" else 0.05)
    env = environment(device)
    shape = default_shape("wave", a.size, device.type)
    doc = {"script": "benchmarks/weighted_cost.py", "device": env["device"], "device_type": device.type,
           **{k: env[k] for k in ("date", "commit", "threads", "torch", "triton", "cuda", "python")},
           "size": a.size, "points": shape.points, "grid": list(shape.grid_shape), "in_features": shape.in_features,
           "hidden": shape.hidden, "hidden_layers": shape.hidden_layers,
           "weights": list(get_suite("wave").laplacian_weights(shape.in_features)),
           "method": "the wave suite's training step (MSE of the Laplacian field, backward, Adam) with the weights "
                     "and with the plain Laplacian, interleaved in one process, median of "
                     f"{a.rounds} rounds", "rows": rows, "skipped": skipped}
    out = a.out or RESULTS_DIR / f"weighted-cost-{device_tag(device.type, env['device'], env['threads'])}.json"
    common.write_json(out, doc)
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
