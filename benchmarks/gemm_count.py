"""Matrix-product FLOPs that each provider executes in one training step.

    python -m benchmarks.gemm_count              # writes benchmarks/results/gemm-count.json

One step (loss, backward, Adam) of the fit, Poisson-gradient and Poisson-Laplacian suites
at D = 1, 2, 3, counted with ``torch.utils.flop_counter.FlopCounterMode``: every matrix
product that reaches the dispatcher (oneDNN's inner product included), the backward and the
double backward included. The
count is a property of the algorithm, not of the machine. The ratio of the reference's
count to the torch backend's is the speedup the step would have if the products took all
of its time: the ceiling on a machine where the products dominate (the 2-core CPU), and
why elementwise fusion, not fewer products, is what a GPU kernel can add.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from fastsiren.tasks import common

from .harness import resolve_providers
from .records import RESULTS_DIR, environment
from .suites import Shape, _bind_training, _make_training, get_suite

SUITES = {"fit": 0, "poisson-grad": 1, "poisson-laplacian": 2}
PROVIDERS = ("reference", "torch")
GEMM_FILE = "gemm-count.json"


def pairs(doc: dict) -> list[tuple[str, int, dict, dict]]:
    """(suite, D, reference row, torch row) of a results document of this script, in the
    order it wrote them; a case missing either provider is left out."""
    by = {(r["suite"], r["in_features"], r["provider"]): r for r in doc.get("rows", [])}
    keys = dict.fromkeys((r["suite"], r["in_features"]) for r in doc.get("rows", []))
    return [(s, d, by[(s, d, "reference")], by[(s, d, "torch")]) for s, d in keys
            if (s, d, "reference") in by and (s, d, "torch") in by]


def _linear_flops(x_shape, w_shape, *args, **kwargs) -> int:
    """oneDNN's inner product (the torch backend's CPU products, backends.set_cpu_gemm):
    X (..., K) times W (M, K)^T."""
    return 2 * math.prod(x_shape[:-1]) * x_shape[-1] * w_shape[0]


_ONEDNN_FLOPS = {torch.ops.mkldnn._linear_pointwise: _linear_flops}


def count(suite: str, dim: int, points: int, hidden: int, provider: str) -> int:
    """Matrix-product FLOPs of one training step (after one untimed step)."""
    device = torch.device("cpu")
    shape = Shape(points=points, in_features=dim, hidden=hidden)
    case = _make_training(get_suite(suite), shape, device, torch.float32, 0)
    (prov,) = resolve_providers([provider], baseline=False)
    step = _bind_training(case, SUITES[suite], prov.load(device)).step
    step()
    with FlopCounterMode(display=False, custom_mapping=_ONEDNN_FLOPS) as counter:
        step()
    return int(counter.get_total_flops())


def run(points: int = 2048, hidden: int = 256, dims=(1, 2, 3)) -> dict:
    rows = []
    for suite in SUITES:
        for dim in dims:
            flops = {p: count(suite, dim, points, hidden, p) for p in PROVIDERS}
            unit = 2 * points * hidden * hidden  # one N x w x w product
            for p in PROVIDERS:
                rows.append({"suite": suite, "in_features": dim, "points": points, "hidden": hidden, "provider": p,
                             "gemm_gflop": round(flops[p] / 1e9, 4), "products_nww": round(flops[p] / unit, 2),
                             "reference_over_this": round(flops["reference"] / flops[p], 4)})
    env = environment(torch.device("cpu"))
    return {"script": "benchmarks/gemm_count.py", **{k: env[k] for k in ("date", "commit", "torch", "python")},
            "network": f"SIREN in D -> {hidden} x 4 hidden activations -> 1 (3 hidden {hidden}x{hidden} products)",
            "counter": "torch.utils.flop_counter.FlopCounterMode, one training step", "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, default=2048, help="points per step")
    p.add_argument("--hidden", type=int, default=256, help="hidden width")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / GEMM_FILE, help="results file (default: %(default)s)")
    a = p.parse_args(argv)
    common.positive("--points", a.points, int)
    common.positive("--hidden", a.hidden, int)
    doc = run(a.points, a.hidden)
    common.write_json(a.out, doc)
    for r in doc["rows"]:
        print(f"{r['suite']:18s} D={r['in_features']} {r['provider']:10s} {r['gemm_gflop']:8.3f} GFLOP "
              f"({r['products_nww']:5.1f} N*w*w products)  reference/this {r['reference_over_this']:.2f}")
    print(f"-> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
