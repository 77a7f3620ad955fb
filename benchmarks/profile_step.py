"""Where a provider's step spends its GPU time: the kernels of one training step (or render
pass), from ``torch.profiler``, per suite and provider, on the benchmark's own inputs.

    python -m benchmarks.profile_step --out benchmarks/results/profile-gpu.json

For every suite the case is the benchmark's (``--size``); each provider warms up, then
``--steps`` steps run under the profiler. A row is one kernel name of one provider: its
device time per step (ms), its share of the provider's total and its calls per step. The
top ``--top`` kernels of each provider are kept; the rest are summed into ``(other)``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from fastsiren.tasks.common import git_commit, results_doc, write_json

from .harness import PROVIDERS, ProviderUnavailable, _with_setup
from .suites import SUITES, default_shape, get_suite

PROFILE_FILE = "profile-gpu.json"


def _device_time_us(evt, device: torch.device) -> float:
    attrs = ("self_device_time_total", "self_cuda_time_total") if device.type == "cuda" else ("self_cpu_time_total",)
    for attr in attrs:
        if hasattr(evt, attr):
            return float(getattr(evt, attr))
    return 0.0


def profile_provider(suite_name: str, provider: str, size: str, steps: int, top: int,
                     device: torch.device) -> list[dict]:
    suite = get_suite(suite_name)
    phase = suite.phases[-1]
    case = suite.make_case(default_shape(suite_name, size, device.type), device, torch.float32)
    prov = PROVIDERS[provider]
    ops = prov.load(device)
    runner = suite.bind(case, phase, ops)
    if prov.setup is not None:
        runner = _with_setup(runner, prov.setup)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):
        runner.step()
    sync()
    activity = torch.profiler.ProfilerActivity.CUDA if device.type == "cuda" else torch.profiler.ProfilerActivity.CPU
    with torch.profiler.profile(activities=[activity]) as prof:
        for _ in range(steps):
            runner.step()
        sync()
    # on the CPU the rows are operators (self time), not kernels
    kernels = [(e.key, _device_time_us(e, device) / 1e3 / steps, e.count / steps) for e in prof.key_averages()
               if _device_time_us(e, device) > 0]
    kernels.sort(key=lambda k: -k[1])
    total = sum(k[1] for k in kernels)
    keep, rest = kernels[:top], kernels[top:]
    if rest:
        keep.append(("(other)", sum(k[1] for k in rest), sum(k[2] for k in rest)))
    return [{"suite": suite_name, "phase": phase, "provider": provider, "kernel": name[:160],
             "ms_per_step": round(ms, 4), "share": round(ms / total, 4) if total else None,
             "calls_per_step": round(calls, 2), "provider_total_ms": round(total, 4)}
            for name, ms, calls in keep]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.profile_step", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / PROFILE_FILE,
                    help="results JSON (rewritten after each suite)")
    ap.add_argument("--suite", action="append", choices=list(SUITES), help="suites (default: all)")
    ap.add_argument("--provider", action="append", choices=list(PROVIDERS),
                    help="providers (default: reference, torch, triton, cuda)")
    ap.add_argument("--size", default="default", choices=("quick", "default", "large"), help="problem size preset")
    ap.add_argument("--steps", type=int, default=3, help="profiled steps per provider")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                    help="cuda; cpu profiles operators (for checking the script)")
    ap.add_argument("--top", type=int, default=12, help="kernels kept per provider")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("benchmarks.profile_step needs a CUDA device (--device cpu profiles operators instead)")
    suites = args.suite or list(SUITES)
    providers = args.provider or ["reference", "torch", "triton", "cuda"]
    t0 = time.monotonic()
    rows: list[dict] = []
    skipped: list[dict] = []
    commit = git_commit()  # once: the documents are rewritten as the run goes
    for s in suites:
        for p in providers:
            try:
                got = profile_provider(s, p, args.size, args.steps, args.top, device)
            except ProviderUnavailable as exc:
                skipped.append({"suite": s, "provider": p, "reason": str(exc)})
                continue
            except Exception as exc:
                skipped.append({"suite": s, "provider": p, "reason": f"{type(exc).__name__}: {exc}"[:300]})
                continue
            finally:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            rows += got
            print(f"[{s}] {p}: {got[0]['provider_total_ms']:.3f} ms/step; top: "
                  + "; ".join(f"{r['kernel'][:50]} {r['ms_per_step']:.3f}" for r in got[:4]), flush=True)
        doc = results_doc("profile-step", args.size, rows, backend="all", seconds=time.monotonic() - t0,
                          device=device, commit=commit, skipped=skipped)
        write_json(args.out, doc)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
