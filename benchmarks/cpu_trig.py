"""The float32 sines and cosines of the torch backend on the CPU: NumPy's SIMD ufuncs against
``torch.sin``/``torch.cos``, per element (speed at each torch thread count, and the error
against float64 on the argument ranges a SIREN sees) and in whole steps.

    python -m benchmarks.cpu_trig            # writes benchmarks/results/cpu-trig.json

The torch backend takes a float32 sine or cosine from NumPy (:func:`fastsiren.jet.trig`) from
``jet.CPU_NUMPY_TRIG_MIN_ELEMS[T]`` elements on at T torch threads (at no other T): NumPy's
ufuncs run on one thread, torch's on all of its threads, so the ``elementwise`` rows time torch
at 1 .. ``--max-threads`` threads beside NumPy. The ``per_call`` rows time whole
:func:`fastsiren.jet.trig` calls, checks and conversions included, on small to large tensors at
each thread count up to ``--max-threads`` where NumPy's may be taken: where its saving outweighs
its fixed cost. The ``errors`` rows give each
library's largest error in units in the last place (ulp, of the float32 result's binade,
against the float64 function of the same float32 argument) and the largest absolute error, on:
pre-activations of the hidden layers (normal, scale 3), of a first layer with omega_0 = 30
(uniform in +-100), large arguments (uniform in +-1e5, beyond a short range reduction) and
special values. The ``steps`` rows time the torch backend's benchmark steps (``python -m
benchmarks`` suites) with NumPy's functions and with torch's (providers ``torch`` and
``torch+torchtrig``, :func:`fastsiren.backends.set_cpu_numpy_trig`), interleaved in one process.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from fastsiren import backends, jet
from fastsiren.tasks import common

from .harness import run_suite
from .records import RESULTS_DIR, environment

CPU_TRIG_FILE = "cpu-trig.json"
SUITES = ("fit", "poisson-grad", "poisson-laplacian", "render")
# (name, sampler of float32 arguments) of the error rows
RANGES = (
    ("hidden: normal, scale 3", lambda g, n: torch.randn(n, generator=g) * 3),
    ("first layer: uniform +-100", lambda g, n: (torch.rand(n, generator=g) * 2 - 1) * 100),
    ("large: uniform +-1e5", lambda g, n: (torch.rand(n, generator=g) * 2 - 1) * 1e5),
)
SPECIALS = (0.0, -0.0, 1e-30, 3.1415927, 1.5707964, 1e30, float("inf"), float("-inf"), float("nan"))


def _numpy(fn: str, z: torch.Tensor, out: torch.Tensor) -> None:
    with np.errstate(invalid="ignore"):  # as jet.trig calls it
        getattr(np, fn)(z.numpy(), out=out.numpy())


def _torch(fn: str, z: torch.Tensor, out: torch.Tensor) -> None:
    getattr(torch, fn)(z, out=out)


def elementwise(shape: tuple[int, int], max_threads: int, rounds: int, calls: int) -> list[dict]:
    """ns per element of each function: NumPy, and torch at 1 .. max_threads threads, timed in
    interleaved rounds (each ``calls`` calls on one block of ``shape``); the median round."""
    z = torch.randn(shape, generator=torch.Generator().manual_seed(0)) * 3
    out = torch.empty_like(z)
    before = torch.get_num_threads()
    rows = []
    try:
        for fn in ("sin", "cos"):
            variants = [("numpy", 1, _numpy)] + [("torch", t, _torch) for t in range(1, max_threads + 1)]
            times: dict[tuple[str, int], list[float]] = {(lib, t): [] for lib, t, _ in variants}
            for r in range(rounds + 1):  # round 0 warms up
                for lib, t, call in variants:
                    torch.set_num_threads(t)
                    start = time.perf_counter()
                    for _ in range(calls):
                        call(fn, z, out)
                    if r:
                        times[(lib, t)].append((time.perf_counter() - start) / calls / z.numel() * 1e9)
            for (lib, t), ts in times.items():
                rows.append({"function": fn, "library": lib, "threads": t, "ns_per_element": statistics.median(ts)})
    finally:
        torch.set_num_threads(before)
    return rows


CALL_SIZES = (256, 4096, 16384, 65536, 262144)


def per_call(sizes: tuple[int, ...], max_threads: int, rounds: int, calls: int) -> list[dict]:
    """Microseconds per :func:`fastsiren.jet.trig` call (sine, its checks and conversions
    included) on ``n`` elements at each torch thread count up to ``max_threads`` where NumPy's
    may be taken (``jet.CPU_NUMPY_TRIG_MIN_ELEMS``; its floors set aside for this timing), with
    NumPy's function and with torch's, interleaved."""
    saved, before = jet.CPU_NUMPY_TRIG_MIN_ELEMS, torch.get_num_threads()
    counts = [t for t in sorted(saved) if t <= max_threads]
    rows = []
    try:
        jet.CPU_NUMPY_TRIG_MIN_ELEMS = {t: 0 for t in counts}
        for threads in counts:
            torch.set_num_threads(threads)
            for n in sizes:
                z = torch.randn(n, generator=torch.Generator().manual_seed(n)) * 3
                out = torch.empty_like(z)
                times: dict[str, list[float]] = {"numpy": [], "torch": []}
                for r in range(rounds + 1):
                    for lib, on in (("numpy", True), ("torch", False)):
                        backends.set_cpu_numpy_trig(on)
                        start = time.perf_counter()
                        for _ in range(calls):
                            jet.trig("sin", z, out)
                        if r:
                            times[lib].append((time.perf_counter() - start) / calls * 1e6)
                rows.append({"threads": threads, "elements": n,
                             **{f"{lib}_us": statistics.median(ts) for lib, ts in times.items()}})
    finally:
        jet.CPU_NUMPY_TRIG_MIN_ELEMS = saved
        backends.set_cpu_numpy_trig(None)
        torch.set_num_threads(before)
    return rows


def _ulps(got: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    """|got - want| in float32 ulps of want's binade (of the smallest normal below it)."""
    tiny = torch.finfo(torch.float32).tiny
    exp = torch.floor(torch.log2(want.abs().clamp_min(tiny)))
    return (got - want).abs() / torch.exp2(exp - 23)


def _each_result(z: torch.Tensor):
    """(function, library, float64 of the library's float32 result, the float64 function of z)."""
    for fn in ("sin", "cos"):
        want = getattr(torch, fn)(z.double())
        for lib, call in (("numpy", _numpy), ("torch", _torch)):
            out = torch.empty_like(z)
            call(fn, z, out)
            yield fn, lib, out.double(), want


def errors(points: int) -> list[dict]:
    """Largest ulp and absolute error of each library and function per argument range, and
    whether the special values agree with float64's (NaN where it gives NaN)."""
    g = torch.Generator().manual_seed(1)
    rows = []
    for name, sample in RANGES:
        for fn, lib, got, want in _each_result(sample(g, points).float()):
            rows.append({"range": name, "function": fn, "library": lib, "max_ulp": _ulps(got, want).max().item(),
                         "max_abs": (got - want).abs().max().item()})
    for fn, lib, got, want in _each_result(torch.tensor(SPECIALS, dtype=torch.float32)):
        ok = got.isnan() | ((got - want).abs() <= 1e-6)
        rows.append({"range": "special values", "function": fn, "library": lib, "values": list(SPECIALS),
                     "nan_where_float64": bool(torch.equal(got.isnan(), want.isnan())), "all_close": bool(ok.all())})
    return rows


STEP_PROVIDERS = {"numpy": "torch", "torch": "torch+torchtrig"}


def steps(suites: tuple[str, ...], size: str, rounds: int, threads: int) -> list[dict]:
    """The torch backend's steps at ``threads`` torch threads with NumPy's functions (provider
    ``torch``) and with torch's (``torch+torchtrig``), interleaved as ``python -m benchmarks``
    runs them."""
    rows = []
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        for name in suites:
            res = run_suite(name, list(STEP_PROVIDERS.values()), size=size, device="cpu", rounds=rounds,
                            log=lambda _: None)
            got: dict[tuple[str, str], dict[str, float]] = {}
            for r in res.rows:
                if r.status != "ok":
                    raise RuntimeError(f"{name}/{r.phase} {r.provider}: {r.status}: {r.reason}")
                got.setdefault((r.suite, r.phase), {})[r.provider] = r.median_ms
            for (suite, phase), ms in got.items():
                t_np, t_torch = ms[STEP_PROVIDERS["numpy"]], ms[STEP_PROVIDERS["torch"]]
                rows.append({"suite": suite, "phase": phase, "threads": threads, "numpy_ms": t_np,
                             "torch_ms": t_torch, "numpy_over_torch": t_np / t_torch})
    finally:
        torch.set_num_threads(before)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cpu_trig", description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", action="append", choices=SUITES,
                   help="suites of the step rows, repeatable (default: all four)")
    p.add_argument("--no-steps", action="store_true", help="only the elementwise and error rows")
    p.add_argument("--size", default="default", choices=("quick", "default"), help="benchmark size of the step rows")
    p.add_argument("--step-rounds", type=int, default=5, help="interleaved timed rounds per step row")
    p.add_argument("--points", type=int, default=1024, help="points of the elementwise block (width 256)")
    p.add_argument("--rounds", type=int, default=11, help="interleaved timed rounds of the elementwise rows")
    p.add_argument("--calls", type=int, default=20, help="calls per elementwise round")
    p.add_argument("--max-threads", type=int, default=None,
                   help="torch threads up to which torch is timed (default: torch's current count)")
    p.add_argument("--error-points", type=int, default=1 << 20, help="arguments per range of the error rows")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / CPU_TRIG_FILE, help="results file (default: %(default)s)")
    a = p.parse_args(argv)
    for flag in ("points", "rounds", "calls", "error_points", "step_rounds"):
        common.positive("--" + flag.replace("_", "-"), getattr(a, flag), int)
    max_threads = torch.get_num_threads() if a.max_threads is None else a.max_threads
    common.positive("--max-threads", max_threads, int)
    rows_e = elementwise((a.points, 256), max_threads, a.rounds, a.calls)
    rows_c = per_call(CALL_SIZES, max_threads, a.rounds, a.calls)
    rows_err = errors(a.error_points)
    # the steps at as many threads as NumPy's functions may run at (above, both providers are one)
    step_threads = min(torch.get_num_threads(), jet.numpy_trig_max_threads())
    rows_s = [] if a.no_steps or step_threads < 1 else steps(tuple(a.suite or SUITES), a.size, a.step_rounds,
                                                             step_threads)
    env = environment(torch.device("cpu"))
    doc = {"script": "benchmarks/cpu_trig.py", "device": common.device_name("cpu"),
           **{k: env[k] for k in ("date", "commit", "torch", "python", "threads", "cpu_id") if k in env},
           "numpy": np.__version__, "numpy_max_threads": jet.numpy_trig_max_threads(),
           "numpy_min_elements": {str(t): n for t, n in sorted(jet.CPU_NUMPY_TRIG_MIN_ELEMS.items())},
           "method": f"elementwise: a ({a.points}, 256) float32 block of normal arguments (scale 3), {a.calls} calls "
                     f"per round, median of {a.rounds} interleaved rounds; per call: jet.trig's sine on 1-D blocks "
                     f"at each thread count, {a.calls} calls per round, median of {a.rounds} interleaved rounds; "
                     f"errors: {a.error_points} arguments per range against the float64 function of the same float32 "
                     "arguments; steps: the torch backend in the benchmark suites"
                     f" (size {a.size}, {a.step_rounds} interleaved rounds, {step_threads} torch threads) with "
                     "NumPy's and with torch's functions",
           "elementwise": rows_e, "per_call": rows_c, "errors": rows_err, "steps": rows_s}
    common.write_json(a.out, doc)
    print(f"-> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
