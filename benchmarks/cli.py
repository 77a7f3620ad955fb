"""``fastsiren bench`` / ``python -m benchmarks``: run the suites or the scaling sweeps.

Examples::

    fastsiren bench --suite poisson-laplacian --provider torch          # torch vs reference
    fastsiren bench --suite all --size default                          # every suite and provider
    fastsiren bench --scaling --suite fit --sweep points --max-points 100000
    fastsiren bench --merge gpu_out/results                             # import a GPU run's CSVs
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from .harness import DTYPES, PROVIDERS, ProviderUnavailable, resolve_providers, run_suite
from .records import append_rows, check_results_file, environment, merge_results, new_run_id, result_rows, results_file
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
                        help="timed rounds per provider, >= 1 (default 5 on the CPU, 20 on a GPU; scaling: 3 and 10)")
    parser.add_argument("--block", type=float, default=None,
                        help="seconds per timed block, > 0 (default 0.2 CPU, 0.05 GPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads, >= 1 (default: torch's)")
    parser.add_argument("--tol", type=float, default=None,
                        help="fixed relative tolerance of the check, > 0, instead of 2x reference's own error")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder of the results CSV files (default: %(default)s under the current folder, "
                             "where `fastsiren report --bench` reads them)")
    parser.add_argument("--no-save", action="store_true", help="print only, append nothing")
    parser.add_argument("--scaling", action="store_true",
                        help="run the scaling sweeps (time vs points, width, input dimension) instead")
    parser.add_argument("--sweep", action="append", metavar="VAR",
                        help="scaling sweep, repeatable: points, width, dim (default: all three)")
    parser.add_argument("--max-points", type=float, default=None,
                        help="scaling: largest number of points, at least the sweep's smallest size 1000 (default 1e7 "
                             "on a GPU, 3e4 on the CPU)")
    parser.add_argument("--figures", type=Path, default=None,
                        help=f"scaling: folder of the plots (default: {DEFAULT_FIGURES} under the current folder; "
                             "with --no-save none are drawn unless this is given)")
    parser.add_argument("--replot", action="store_true",
                        help="scaling (implies --scaling): redraw the plots from the results CSV (latest run per "
                             "device, thread count and sweep), time nothing")
    parser.add_argument("--merge", type=Path, default=None, metavar="DIR",
                        help="append the result CSVs of the folder DIR (e.g. a GPU run's results/, searched "
                             "recursively), or the one results CSV file DIR, to the files of the same names in --out, "
                             "skipping known rows; every file is checked first (UTF-8 CSV with the harness's columns) "
                             "and any bad one fails the merge with nothing added")


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


def _positive(value: float | None, option: str, what: str) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ValueError(f"{option} must be {what}, got {value}")


def check_args(args: argparse.Namespace) -> None:
    """The numeric options, before any work: an error naming the option and what it takes
    (none of them falls back to its default, or fails only once the run has started)."""
    if args.repeats is not None and args.repeats < 1:  # 0 must not fall back to the default silently
        raise ValueError(f"--repeats must be >= 1 (timed rounds), got {args.repeats}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1 (torch CPU threads), got {args.threads}")
    _positive(args.block, "--block", "a positive number of seconds (per timed block)")
    _positive(args.tol, "--tol", "a positive relative tolerance")
    if args.max_points is not None:
        from .scaling import POINTS

        if not (math.isfinite(args.max_points) and args.max_points >= min(POINTS)):
            raise ValueError(f"--max-points must be a number of points >= {min(POINTS):g} (the smallest size of "
                             f"the points sweep), got {args.max_points:g}")
    scaling = args.scaling or args.replot
    for option, given in (("--sweep", args.sweep), ("--max-points", args.max_points is not None)):
        if given and not scaling:
            raise ValueError(f"{option} applies only to the scaling sweeps: add --scaling")


def main(args: argparse.Namespace) -> int:
    check_args(args)
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
    if not args.no_save:  # a results file that is not one fails now, not after a suite has run
        from .scaling import SCALING_FILE

        for name in [SCALING_FILE] if args.scaling else [f"{n}.csv" for n in suites]:
            check_results_file(args.out / name)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    check_alone(args.provider, device)
    rounds = args.repeats or (20 if device.type == "cuda" else 5)
    if args.scaling:
        from .scaling import SCALING_FILE, run_sweeps

        env = environment(device)
        try:
            run_sweeps(suites, args.provider, device, DTYPES[args.dtype], sweeps=args.sweep,
                       max_points=args.max_points, rounds=args.repeats, out_dir=None if args.no_save else args.out,
                       figures=args.figures or (None if args.no_save else DEFAULT_FIGURES), block_s=args.block)
        except KeyboardInterrupt:
            # run_sweeps appends each size's rows as soon as it is measured: they are on disk
            print("interrupted: " + ("nothing saved (--no-save)" if args.no_save else
                                     f"the rows of every size measured are kept in {args.out / SCALING_FILE} "
                                     "(the plots of the sweep cut short are not drawn)"), file=sys.stderr)
            if not args.no_save:
                _save_cpu_gemm_choices(args.out, "", env, suites, scaling=True)
            return 130
        if not args.no_save:
            _save_cpu_gemm_choices(args.out, "", env, suites, scaling=True)
        return 0
    run_id, env = new_run_id(), environment(device)
    print(f"run {run_id} on {env['device']} (torch {env['torch']}, triton {env['triton'] or '-'}, "
          f"CUDA {env['cuda'] or '-'}, commit {env['commit'] or '-'})")
    failed = False
    done: list[str] = []  # suites whose rows are written
    try:
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
            done.append(name)
    except KeyboardInterrupt:
        # Each finished suite's rows were written (atomically) as it finished, so they are kept.
        # The suite cut short loses its rows: run_suite hands its rows (checked and timed per
        # phase, every provider interleaved) back only when the whole suite is done, and this
        # loop does not restructure the harness to get at a finished phase's.
        cut = suites[len(done)]
        if args.no_save:
            kept = "nothing saved (--no-save)"
        elif done:
            kept = f"kept the rows of the finished suites {', '.join(done)} in {args.out} (run {run_id})"
        else:
            kept = "no suite had finished: nothing saved"
        print(f"interrupted during suite {cut} (its rows are lost: a suite's rows are written when it finishes); "
              f"{kept}", file=sys.stderr)
        if not args.no_save:
            _save_cpu_gemm_choices(args.out, run_id, env, done + [cut])
        return 130
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
