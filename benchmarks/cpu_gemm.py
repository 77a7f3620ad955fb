"""The CPU's float32 matrix products through each library fastsiren can use
(:func:`fastsiren.backends.set_cpu_gemm`): ``torch.mm`` (BLAS: MKL on x86-64) and oneDNN's
inner product, on the shapes of a training step.

    python -m benchmarks.cpu_gemm            # writes benchmarks/results/cpu-gemm.json

Shapes, for a hidden layer of width ``w`` and a block of ``n`` points: ``forward`` (n, w) x
(w, w), the pre-activations and every input adjoint; ``weight-gradient`` (w, n) x (n, w), a
sum over the points (oneDNN reads its transposed left operand through a copy, so
:func:`fastsiren.jet.outer_sum` takes BLAS below ``jet.CPU_ONEDNN_WGRAD_WIDTH``). Each is
timed as :func:`fastsiren.jet.mm` makes it, both libraries interleaved in one process (median
of ``--repeats`` rounds); a row gives GFLOP/s per library and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from fastsiren import backends, jet
from fastsiren.tasks import common

from .records import RESULTS_DIR, device_name, environment

CPU_GEMM_FILE = "cpu-gemm.json"
LIBRARIES = ("blas", "onednn")


def _product(shape: str, n: int, w: int):
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, w, generator=gen), torch.randn(n, w, generator=gen)
    weight = torch.randn(w, w, generator=gen)
    if shape == "forward":
        return lambda: jet.rows_mm(a, weight.t())
    return lambda: jet.mm(a.t(), b)  # the library's product itself, not outer_sum's choice of one


def _seconds(fn, iters: int) -> float:
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters


def measure(points=(1024, 2048, 16384), widths=(64, 128, 256, 512), repeats: int = 7,
            block_s: float = 0.1) -> list[dict]:
    reason = backends.onednn_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"benchmarks.cpu_gemm compares BLAS with oneDNN, which cannot run here: {reason}")
    rows = []
    try:
        for shape, n, width in ((s, n, w) for s in ("forward", "weight-gradient") for w in widths for n in points):
            fn = _product(shape, n, width)
            iters, times = {}, {lib: [] for lib in LIBRARIES}
            for lib in LIBRARIES:
                backends.set_cpu_gemm(lib)
                fn()
                iters[lib] = max(1, int(block_s / max(_seconds(fn, 1), 1e-9)))
            for r in range(repeats):
                for lib in LIBRARIES[r % 2:] + LIBRARIES[:r % 2]:
                    backends.set_cpu_gemm(lib)
                    times[lib].append(_seconds(fn, iters[lib]))
            flops = 2 * n * width * width
            row = {"shape": shape, "points": n, "width": width}
            for lib in LIBRARIES:
                row[f"{lib}_gflops"] = round(flops / statistics.median(times[lib]) / 1e9, 1)
            row["onednn_over_blas"] = round(row["onednn_gflops"] / row["blas_gflops"], 3)
            rows.append(row)
            print(f"{shape:16s} n={n:6d} w={width}: BLAS {row['blas_gflops']:7.1f} GFLOP/s, oneDNN "
                  f"{row['onednn_gflops']:7.1f} GFLOP/s ({row['onednn_over_blas']:.2f}x)", flush=True)
    finally:
        backends.set_cpu_gemm(None)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cpu_gemm", description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, action="append", help="rows n of the products, repeatable "
                   "(default: 1024, 2048, 16384)")
    p.add_argument("--width", type=int, action="append", help="hidden width w, repeatable (default: 64, 128, 256, 512)")
    p.add_argument("--repeats", type=int, default=7, help="interleaved timed rounds")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / CPU_GEMM_FILE, help="results file")
    a = p.parse_args(argv)
    for n in a.points or []:
        common.positive("--points", n, int)
    for w in a.width or []:
        common.positive("--width", w, int)
    common.positive("--repeats", a.repeats, int)
    if a.threads is not None:
        common.positive("--threads", a.threads, int)
        torch.set_num_threads(a.threads)
    rows = measure(tuple(a.points or (1024, 2048, 16384)), tuple(a.width or (64, 128, 256, 512)), a.repeats)
    env = environment(torch.device("cpu"))
    doc = {"script": "benchmarks/cpu_gemm.py", "device": device_name(torch.device("cpu")),
           **{k: env[k] for k in ("date", "commit", "threads", "torch", "python")},
           "method": "fastsiren.jet.rows_mm (forward) and jet.mm (weight-gradient) under each "
                     "backends.set_cpu_gemm library, interleaved, "
                     f"median of {a.repeats} rounds", "rows": rows}
    common.write_json(a.out, doc)
    print(f"-> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
