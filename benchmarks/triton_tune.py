"""Sweep the fp32 GEMM tiles of the Triton kernels on a GPU and time whole training steps.

Each candidate ``(rows, block_f, block_k, num_warps, num_stages)`` is set through
``FASTSIREN_TRITON_WGRAD_TILES`` (the weight-gradient kernel alone, which took most of a Triton
step on an H200: ``results/profile-gpu.json``) or ``FASTSIREN_TRITON_GEMM_TILES`` (every GEMM
kernel), see :func:`fastsiren.kernels.config.gemm_tiles_override`. The harness then checks
the triton provider against the reference (float64 oracle) and times it beside the reference
and the GEMM floor, as ``fastsiren bench`` does, at ``--size``. The first row of every suite
is the built-in tiles (``default``).

Triton compiles a few kernels per configuration, seconds each: ``--warm-jobs`` processes
compile the candidates in parallel first (Triton's on-disk cache), so the one timing process
only loads them. Results are rewritten after every suite, so a run stopped by a time limit
keeps what it measured:

    python -m benchmarks.triton_tune --out benchmarks/results/triton-tune-gpu.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from fastsiren.tasks.common import git_commit, results_doc, write_json

from .harness import run_suite
from .suites import default_shape, get_suite

# (environment variable, (rows = streams x points of a tile, block_f, block_k, num_warps, num_stages)),
# most promising first. The weight gradient re-reads its adjoint streams once per K tile and its
# inputs once per F tile (and recomputes their sines each time), so wider tiles there come first,
# among those an offline sm_90 compile of the width-256 training specializations found without
# heavy register spills or shared-memory overflow (``--offline`` wrote
# benchmarks/results/triton-tune-offline.json, with the tiles dropped from here: 128x64x64,
# 64x128x128 and 128x128x128 for wgrad, 128x128x64 and 256x64x32 for every kernel, which spilled
# 290 to 2700 bytes a thread or needed 256 KiB of shared memory).
WGRAD = "FASTSIREN_TRITON_WGRAD_TILES"
ALL = "FASTSIREN_TRITON_GEMM_TILES"
CANDIDATES = (
    (WGRAD, (64, 128, 64, 8, 2)), (WGRAD, (64, 64, 64, 8, 3)), (WGRAD, (32, 64, 64, 4, 3)),
    (WGRAD, (64, 64, 128, 8, 2)), (WGRAD, (64, 64, 64, 4, 3)),
    (ALL, (64, 128, 64, 8, 2)), (ALL, (64, 64, 64, 8, 3)),
)
ENVS = (WGRAD, ALL)
# the specializations --offline compiles: the training suites' width-256 layers at the default precision
WHERE = "PRECISION=tf32x3,K=256,F=256,D=2"
SUITES = ("fit", "poisson-laplacian", "poisson-grad")


def tiles_str(tiles: tuple[int, ...] | None) -> str:
    return "default" if tiles is None else ",".join(str(v) for v in tiles)


def label(cand: tuple[str, tuple[int, ...]] | None) -> str:
    """``default``, ``wgrad=...`` or ``all=...``."""
    if cand is None:
        return "default"
    return f"{'wgrad' if cand[0] == WGRAD else 'all'}={tiles_str(cand[1])}"


def set_candidate(cand: tuple[str, tuple[int, ...]] | None) -> None:
    for name in ENVS:
        os.environ.pop(name, None)
    if cand is not None:
        os.environ[cand[0]] = tiles_str(cand[1])


def warm(suites: list[str], size: str, device: torch.device) -> None:
    """One training step of each suite (compiles this process's tiles)."""
    from .harness import PROVIDERS

    ops = PROVIDERS["triton"].load(device)
    for name in suites:
        suite = get_suite(name)
        case = suite.make_case(default_shape(name, size, device.type), device, torch.float32)
        suite.bind(case, "step", ops).step()
    if device.type == "cuda":
        torch.cuda.synchronize()


def warm_all(candidates: list[tuple[str, tuple[int, ...]]], suites: list[str], size: str, device: torch.device,
             jobs: int, limit_s: float) -> dict:
    """Compile every candidate in ``jobs`` parallel subprocesses; returns {label: rc or 'timeout'}."""
    pending = list(candidates)
    running: dict[tuple, tuple[subprocess.Popen, float]] = {}
    status: dict[str, object] = {}
    deadline = time.monotonic() + limit_s
    while pending or running:
        while pending and len(running) < jobs:
            t = pending.pop(0)
            cmd = [sys.executable, "-m", f"{__package__}.triton_tune", "--warm-one", "--size", size,
                   "--device", device.type]
            for s in suites:
                cmd += ["--suite", s]
            env = {k: v for k, v in os.environ.items() if k not in ENVS}
            env[t[0]] = tiles_str(t[1])
            running[t] = (subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
                          time.monotonic())
        for t, (proc, _) in list(running.items()):
            if proc.poll() is not None:
                status[label(t)] = proc.returncode
                if proc.returncode:
                    print(f"  warm {label(t)} failed: {proc.stderr.read().decode()[-400:]}", flush=True)
                del running[t]
            elif time.monotonic() > deadline:
                proc.kill()
                status[label(t)] = "timeout"
                del running[t]
        if time.monotonic() > deadline:
            for t in pending:
                status[label(t)] = "not compiled (time)"
            pending = []
        time.sleep(0.2)
    return status


def offline(candidates: list[tuple[str, tuple[int, ...]]], out: Path, jobs: int) -> int:
    """Compile each candidate's weight-gradient (or every GEMM) specializations of the training
    suites for sm_90 with ``benchmarks/compile_sm90.py`` (no GPU) and record registers, spills and
    shared memory per candidate."""
    import json
    import tempfile

    script = Path(__file__).resolve().parent / "compile_sm90.py"
    repo = script.parent.parent
    rows: list[dict] = []
    t0 = time.monotonic()
    for cand in [None, *candidates]:
        env = {k: v for k, v in os.environ.items() if k not in ENVS and k != "TRITON_INTERPRET"}
        if cand is not None:
            env[cand[0]] = tiles_str(cand[1])
        kernel = "_jet_wgrad_kernel" if cand is None or cand[0] == WGRAD else "_jet_(fwd|dgrad|wgrad)_kernel"
        with tempfile.TemporaryDirectory() as tmp:
            js = Path(tmp) / "c.json"
            cmd = [sys.executable, str(script), "--repo", str(repo), "--only", "all", "--kernel", kernel,
                   "--where", WHERE, "--jobs", str(jobs), "--json", str(js)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
            if not js.is_file():  # (a nonzero exit with the file written means some went over a limit)
                rows.append({"tiles": label(cand), "status": "error", "reason": (proc.stdout + proc.stderr)[-300:]})
                continue
            res = json.loads(js.read_text())["results"]
        ok = [r for r in res if r.get("ok")]
        rows.append({"tiles": label(cand), "status": "ok", "kernels": kernel, "specializations": len(res),
                     "compiled": len(ok), "max_regs": max((r["regs"] for r in ok), default=None),
                     "max_spill_st": max((r["spill_st"] for r in ok), default=None),
                     "spilling": sum(r["spill_st"] > 0 for r in ok),
                     "max_shared": max((r["shared"] for r in ok), default=None),
                     "over_smem": sum(r["shared"] > 232448 for r in ok)})
        r = rows[-1]
        print(f"{label(cand):24s} regs<={r['max_regs']} spills<={r['max_spill_st']} B in {r['spilling']} of "
              f"{r['compiled']}; smem<={r['max_shared']} ({r['over_smem']} over)", flush=True)
    write_json(out, results_doc("triton-tune-offline", "sm_90", rows, backend="triton", seconds=time.monotonic() - t0,
                                device="cpu", commit=git_commit(), where=WHERE,
                                compiler="benchmarks/compile_sm90.py (triton's bundled ptxas, no GPU)"))
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.triton_tune", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None,
                    help="results JSON, rewritten after each suite (default: benchmarks/results/triton-tune-gpu.json, "
                         "with --offline triton-tune-offline.json)")
    ap.add_argument("--suite", action="append", choices=SUITES, help="training suites to time (default: all three)")
    ap.add_argument("--size", default="default", choices=("quick", "default", "large"), help="problem size preset")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds per configuration")
    ap.add_argument("--warm-jobs", type=int, default=8, help="parallel compile processes (0: compile while timing)")
    ap.add_argument("--warm-limit", type=float, default=90.0, help="seconds for the parallel compile phase")
    ap.add_argument("--max-configs", type=int, default=len(CANDIDATES), help="candidates to try, in listed order")
    ap.add_argument("--budget", type=float, default=float("inf"),
                    help="stop starting new configurations after this many seconds")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                    help="cuda; cpu only checks the plumbing (TRITON_INTERPRET=1 ignores the tiles)")
    ap.add_argument("--offline", action="store_true",
                    help="no GPU: compile every candidate for sm_90 and record registers, spills and shared memory "
                         "(to benchmarks/results/triton-tune-offline.json unless --out is given)")
    ap.add_argument("--warm-one", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    suites = args.suite or list(SUITES)
    results = Path(__file__).resolve().parent / "results"
    if args.offline:
        return offline(list(CANDIDATES[:args.max_configs]), args.out or results / "triton-tune-offline.json",
                       max(1, args.warm_jobs))
    args.out = args.out or results / "triton-tune-gpu.json"
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("benchmarks.triton_tune needs a CUDA device (the tiles only apply to compiled kernels)")
    if args.warm_one:
        warm(suites, args.size, device)
        return 0
    t0 = time.monotonic()
    candidates = list(CANDIDATES[:args.max_configs])
    warm_status = {}
    if args.warm_jobs:
        warm_status = warm_all(candidates, suites, args.size, device, args.warm_jobs, args.warm_limit)
    print(f"compiled {len(warm_status)} configurations in {time.monotonic() - t0:.0f}s", flush=True)
    rows: list[dict] = []
    commit = git_commit()  # once: the documents are rewritten as the run goes
    for name in suites:
        for tiles in [None, *candidates]:
            if time.monotonic() - t0 > args.budget:
                break
            set_candidate(tiles)
            try:
                res = run_suite(name, ["triton"], size=args.size, device=device, rounds=args.rounds, memory=False,
                                log=lambda s: None)
            except Exception as exc:  # a configuration that cannot compile or launch
                rows.append({"suite": name, "tiles": label(tiles), "status": "error",
                             "reason": f"{type(exc).__name__}: {exc}"[:300]})
                continue
            finally:
                set_candidate(None)
            by = {r.provider: r for r in res.rows}
            tr, ref = by["triton"], by["reference"]
            rows.append({"suite": name, "tiles": label(tiles), "status": tr.status, "reason": tr.reason,
                         "median_ms": tr.median_ms, "reference_ms": ref.median_ms, "speedup": tr.speedup,
                         "floor_frac": tr.floor_frac, "max_err": tr.max_err})
            print(f"{name:18s} {label(tiles):24s} {tr.status:8s} {tr.median_ms:9.3f} ms  x{tr.speedup:.2f}"
                  f"  floor {tr.floor_frac:.2f}", flush=True)
        best = {}
        for s in suites:
            ok = [r for r in rows if r["suite"] == s and r["status"] == "ok"]
            if ok:
                b = min(ok, key=lambda r: r["median_ms"])
                best[s] = {"tiles": b["tiles"], "median_ms": b["median_ms"], "speedup": b["speedup"]}
        doc = results_doc("triton-tune", args.size, rows, backend="triton", seconds=time.monotonic() - t0,
                          device=device, commit=commit, candidates=[label(t) for t in candidates],
                          warm=warm_status, best=best)
        write_json(args.out, doc)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
