"""``fastsiren bench`` / ``python -m benchmarks``: run the suites or the scaling sweeps.

Examples::

    fastsiren bench --suite poisson-laplacian --provider torch          # torch vs reference
    fastsiren bench --suite all --size default                          # every suite and provider
    fastsiren bench --scaling --suite fit --sweep points --max-points 100000
    fastsiren bench --merge gpu_out/results                             # import a GPU run's CSVs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from .harness import DTYPES, PROVIDERS, ProviderUnavailable, resolve_providers, run_suite
from .records import append_rows, environment, merge_results, new_run_id, result_rows, results_file
from .suites import SIZES, SUITES

# relative to the current folder, like the report's --bench/--figures and the experiments'
# --results-dir: run from the repository root (`fastsiren bench` never writes into an installed
# package; the developer scripts python -m benchmarks.* write into their own tree's results/)
DEFAULT_OUT = Path("benchmarks") / "results"
DEFAULT_FIGURES = Path("docs") / "figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", action="append", metavar="NAME",
                        help=f"suite to run, repeatable: {', '.join(SUITES)} or all (default: all)")
    parser.add_argument("--provider", action="append", metavar="NAME",
                        help=f"provider, repeatable: {', '.join(PROVIDERS)} or all (default: all); "
                             "reference always runs (oracle and speed baseline). Variants: +compile (under "
                             "torch.compile: reference's forwards, torch's whole jets and backward), +ieee "
                             "(Triton at full fp32), +fused (render through the "
                             "fully fused kernel), +fwd (poisson-grad by forward-mode jets, not the reverse-mode "
                             "gradient), +fusedw (Triton weight gradients in the fused kernel, not cuBLAS), +cublas "
                             "(every Triton training GEMM through cuBLAS), +blas and +onednn (the torch backend's CPU "
                             "products all through torch.mm's BLAS, or through oneDNN by mode 'onednn''s fixed "
                             "rules, instead of the library measured faster for each kind of product), +serial (the "
                             "torch backend's CPU point blocks one at a time with multi-threaded ops, not side by "
                             "side), +torchtrig (its float32 CPU sines and cosines by torch, not NumPy), +3xtf32 "
                             "(the cuBLAS products as three TF32 tensor-core products, GPU only); a variant runs "
                             "under 'all' only on "
                             "the suites it is about, and torch+compile only on the CPU (on a GPU its compile "
                             "takes minutes: name it)")
    parser.add_argument("--size", default="default", help=f"problem sizes: {', '.join(SIZES)}")
    parser.add_argument("--dtype", default="float32", help=f"one of {', '.join(DTYPES)}")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds per provider (default 5 on the CPU, 20 on a GPU)")
    parser.add_argument("--block", type=float, default=None,
                        help="seconds per timed block (default 0.2 CPU, 0.05 GPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--tol", type=float, default=None,
                        help="fixed relative tolerance of the check instead of 2x reference's own error")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder of the results CSV files (default: %(default)s under the current folder, "
                             "where `fastsiren report --bench` reads them)")
    parser.add_argument("--no-save", action="store_true", help="print only, append nothing")
    parser.add_argument("--scaling", action="store_true",
                        help="run the scaling sweeps (time vs points, width, input dimension) instead")
    parser.add_argument("--sweep", action="append", metavar="VAR",
                        help="scaling sweep, repeatable: points, width, dim (default: all three)")
    parser.add_argument("--max-points", type=float, default=None,
                        help="scaling: largest number of points (default 1e7 on a GPU, 3e4 on the CPU)")
    parser.add_argument("--figures", type=Path, default=None,
                        help=f"scaling: folder of the plots (default: {DEFAULT_FIGURES} under the current folder; "
                             "with --no-save none are drawn unless this is given)")
    parser.add_argument("--replot", action="store_true",
                        help="scaling (implies --scaling): redraw the plots from the results CSV (latest run per "
                             "device, thread count and sweep), time nothing")
    parser.add_argument("--merge", type=Path, default=None, metavar="DIR",
                        help="append the result CSVs of DIR (e.g. a GPU run) to --out, skipping known rows")


def _suites(names: list[str] | None) -> list[str]:
    if not names or "all" in names:
        return list(SUITES)
    for n in names:
        if n not in SUITES:
            raise ValueError(f"--suite {n!r} is not a benchmark suite; expected one of {list(SUITES)} or all")
    return list(dict.fromkeys(names))


def _device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"--device must be cpu or cuda, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(name)


def check_alone(providers: list[str] | None, device: torch.device) -> None:
    """A provider asked for alone (besides the reference) must run here: error otherwise."""
    named = [p for p in (providers or []) if p not in ("all", "reference")]
    if len(named) != 1:
        return
    (p,) = resolve_providers(named)[1:]
    try:
        p.load(device)
    except ProviderUnavailable as exc:
        raise RuntimeError(f"provider {p.name!r} cannot run on {device}: {exc}") from exc


def main(args: argparse.Namespace) -> int:
    if args.repeats is not None and args.repeats < 1:  # 0 must not fall back to the default silently
        raise ValueError(f"--repeats must be >= 1 (timed rounds), got {args.repeats}")
    if not args.no_save and (args.out.is_file() or any(p.is_file() for p in args.out.parents)):
        raise ValueError(f"--out {args.out} is (or is under) a file; expected a folder of results CSV files")
    if args.merge is not None:
        added = merge_results(args.merge, args.out)
        for name, n in added.items():
            print(f"{name}: {n} new rows -> {args.out / name}")
        return 0
    if args.replot:  # implies --scaling: only scaling plots are redrawn
        from .scaling import replot

        for path in replot(args.out, args.figures or DEFAULT_FIGURES):
            print(f"  -> {path}")
        return 0
    if args.size not in SIZES:
        raise ValueError(f"--size {args.size!r} is not a benchmark size; expected one of {list(SIZES)}")
    if args.dtype not in DTYPES:
        raise ValueError(f"--dtype {args.dtype!r} is not supported; expected one of {list(DTYPES)}")
    suites = _suites(args.suite)
    resolve_providers(args.provider)  # unknown names fail before anything runs
    device = _device(args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    check_alone(args.provider, device)
    rounds = args.repeats or (20 if device.type == "cuda" else 5)
    if args.scaling:
        from .scaling import run_sweeps

        run_sweeps(suites, args.provider, device, DTYPES[args.dtype], sweeps=args.sweep,
                   max_points=args.max_points, rounds=args.repeats, out_dir=None if args.no_save else args.out,
                   figures=args.figures or (None if args.no_save else DEFAULT_FIGURES), block_s=args.block)
        if not args.no_save:
            _save_cpu_gemm_choices(args.out, "", environment(device), suites, scaling=True)
        return 0
    run_id, env = new_run_id(), environment(device)
    print(f"run {run_id} on {env['device']} (torch {env['torch']}, triton {env['triton'] or '-'}, "
          f"CUDA {env['cuda'] or '-'}, commit {env['commit'] or '-'})")
    failed = False
    for name in suites:
        t0 = time.perf_counter()
        res = run_suite(name, args.provider, size=args.size, device=device, dtype=DTYPES[args.dtype],
                        rounds=rounds, block_s=args.block, tol=args.tol)
        failed |= any(r.status in ("mismatch", "error") for r in res.rows)
        # wall time of the whole suite (set-up, compilation, checks and timing): plans GPU calls
        print(f"  [{name}] {time.perf_counter() - t0:.0f} s")
        if not args.no_save:
            path = append_rows(results_file(args.out, name), result_rows(res, run_id, env, args.size))
            print(f"  -> {path}")
    if not args.no_save:
        _save_cpu_gemm_choices(args.out, run_id, env, suites)
    if failed:
        print("some providers disagree with the reference or failed: see the rows above", file=sys.stderr)
    return 1 if failed else 0


CPU_GEMM_AUTO_FILE = "auto-cpu-gemm.json"


def _save_cpu_gemm_choices(out: Path, run_id: str, env: dict, suites: list[str], scaling: bool = False) -> None:
    """Append what ``set_cpu_gemm("auto")`` has timed in this process, this run included
    (fastsiren.jet.cpu_gemm_calibration:
    every kind of product, both libraries' medians, the choice, the seconds it took) to
    ``out/auto-cpu-gemm.json``, so the ``torch`` rows' library choices are on record (``scaling``:
    a sweep, whose rows carry their own run ids)."""
    import json

    from fastsiren import jet
    from fastsiren.tasks import common

    entries = jet.cpu_gemm_calibration()
    if not entries:
        return
    path = Path(out) / CPU_GEMM_AUTO_FILE
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    runs.append({"run_id": run_id, "suites": list(suites), "scaling": scaling,
                 **{k: env[k] for k in ("date", "commit", "device", "cpu_id", "threads", "torch")},
                 "seconds": round(sum(e["seconds"] for e in entries), 4), "kinds": entries})
    common.write_json(path, {"script": "benchmarks/cli.py (fastsiren bench)", "runs": runs})
    print(f"  -> {path} ({len(entries)} kinds of CPU product timed by set_cpu_gemm('auto'))")
