"""The CPU's float32 matrix products through each library fastsiren can use
(:func:`fastsiren.backends.set_cpu_gemm`): ``torch.mm`` (BLAS: MKL on x86-64) and oneDNN's
inner product, on the shapes of a training step.

    python -m benchmarks.cpu_gemm            # writes benchmarks/results/cpu-gemm.json

Shapes, for a hidden layer of width ``w`` and a block of ``n`` points: ``forward`` (n, w) x
(w, w), the pre-activations and every input adjoint; ``weight-gradient`` (w, n) x (n, w), a
sum over the points (oneDNN reads its transposed left operand through a copy, so
:func:`fastsiren.jet.outer_sum` takes BLAS below ``jet.CPU_ONEDNN_WGRAD_WIDTH``); ``small``,
products of under a few million multiply-adds (n, k) x (k, m): the first layer (k = D = 2),
the last layer (m = 1) and hidden layers on few points, where a call's fixed cost decides
(:data:`fastsiren.jet.CPU_ONEDNN_MIN_MACS`, which this script sets aside while it measures).
Each is timed as :func:`fastsiren.jet.mm` makes it, both libraries interleaved in one process
(median of ``--repeats`` rounds); a row gives GFLOP/s per library and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from fastsiren import backends, jet
from fastsiren.tasks import common

from .records import RESULTS_DIR, environment

CPU_GEMM_FILE = "cpu-gemm.json"
LIBRARIES = ("blas", "onednn")


# (n, k, m) of the ``small`` rows: first layer (k = 2), last layer (m = 1), hidden layers on
# few points, from about 1e5 to 1e7 multiply-adds
SMALL = ((1024, 2, 64), (2048, 2, 64), (4096, 2, 256), (16384, 2, 256),
         (1024, 64, 1), (2048, 64, 1), (4096, 256, 1), (16384, 256, 1),
         (64, 64, 64), (256, 64, 64), (512, 64, 64), (1024, 64, 64),
         (64, 128, 128), (128, 128, 128), (256, 128, 128), (64, 256, 256), (128, 256, 256))


def _product(shape: str, n: int, k: int, m: int):
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, k, generator=gen), torch.randn(n, m, generator=gen)
    weight = torch.randn(m, k, generator=gen)
    if shape == "weight-gradient":
        return lambda: jet.mm(a.t(), b)  # the library's product itself, not outer_sum's choice of one
    return lambda: jet.rows_mm(a, weight.t())


def _seconds(fn, iters: int) -> float:
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters


def measure(points=(1024, 2048, 16384), widths=(64, 128, 256, 512), repeats: int = 7,
            block_s: float = 0.1, small=SMALL) -> list[dict]:
    reason = backends.onednn_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"benchmarks.cpu_gemm compares BLAS with oneDNN, which cannot run here: {reason}")
    cases = [(s, n, w, w) for s in ("forward", "weight-gradient") for w in widths for n in points]
    cases += [("small", n, k, m) for n, k, m in small]
    rows = []
    min_macs = jet.CPU_ONEDNN_MIN_MACS
    jet.CPU_ONEDNN_MIN_MACS = 0  # every product through the library asked for
    try:
        for shape, n, k, m in cases:
            fn = _product(shape, n, k, m)
            iters, times = {}, {lib: [] for lib in LIBRARIES}
            for lib in LIBRARIES:
                backends.set_cpu_gemm(lib)
                fn()
                iters[lib] = max(1, int(block_s / max(_seconds(fn, 1), 1e-9)))
            for r in range(repeats):
                for lib in LIBRARIES[r % 2:] + LIBRARIES[:r % 2]:
                    backends.set_cpu_gemm(lib)
                    times[lib].append(_seconds(fn, iters[lib]))
            macs = n * k * m
            row = {"shape": shape, "points": n, "k": k, "m": m, "macs": macs}
            if shape != "small":
                row["width"] = k
            for lib in LIBRARIES:
                row[f"{lib}_us"] = round(statistics.median(times[lib]) * 1e6, 2)
                # three significant digits: a tiny product's rate rounded to 0.1 GFLOP/s was 0.0
                row[f"{lib}_gflops"] = float(f"{2 * macs / statistics.median(times[lib]) / 1e9:.3g}")
            row["onednn_over_blas"] = round(statistics.median(times["blas"]) / statistics.median(times["onednn"]), 3)
            rows.append(row)
            print(f"{shape:16s} ({n}, {k}) x ({k}, {m}), {macs:.2g} MACs: BLAS {row['blas_gflops']:7.1f} GFLOP/s, "
                  f"oneDNN {row['onednn_gflops']:7.1f} GFLOP/s ({row['onednn_over_blas']:.2f}x)", flush=True)
    finally:
        jet.CPU_ONEDNN_MIN_MACS = min_macs
        backends.set_cpu_gemm(None)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cpu_gemm", description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, action="append", help="rows n of the products, repeatable "
                   "(default: 1024, 2048, 16384)")
    p.add_argument("--width", type=int, action="append", help="hidden width w, repeatable (default: 64, 128, 256, 512)")
    p.add_argument("--no-small", action="store_true", help="leave out the small products (first layer, last "
                   "layer, few points)")
    p.add_argument("--repeats", type=int, default=7, help="interleaved timed rounds")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / CPU_GEMM_FILE, help="results file (default: %(default)s)")
    a = p.parse_args(argv)
    for n in a.points or []:
        common.positive("--points", n, int)
    for w in a.width or []:
        common.positive("--width", w, int)
    common.positive("--repeats", a.repeats, int)
    if a.threads is not None:
        common.positive("--threads", a.threads, int)
        torch.set_num_threads(a.threads)
    rows = measure(tuple(a.points or (1024, 2048, 16384)), tuple(a.width or (64, 128, 256, 512)), a.repeats,
                   small=() if a.no_small else SMALL)
    env = environment(torch.device("cpu"))
    doc = {"script": "benchmarks/cpu_gemm.py", "device": common.device_name("cpu"), "cpu_id": common.cpu_id(),
           **{k: env[k] for k in ("date", "commit", "threads", "torch", "python")},
           "method": "fastsiren.jet.rows_mm (forward, small) and jet.mm (weight-gradient) under each "
                     "backends.set_cpu_gemm library with jet.CPU_ONEDNN_MIN_MACS set aside, interleaved, "
                     f"median of {a.repeats} rounds", "rows": rows}
    common.write_json(a.out, doc)
    print(f"-> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
