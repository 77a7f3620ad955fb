"""``fastsiren experiments``: every experiment of the report at one profile, published.

    fastsiren experiments --profile cpu                       # all of them, in order
    fastsiren experiments --profile paper --only fit,compare  # a subset (benchmarks/gpu_check.sh)
    fastsiren experiments --list                              # the names

Each experiment is one task command line (below: the single place they are written down).
The training tasks run in ``RUNS/<name>`` and publish their results file and captioned
figures into ``--results-dir`` / ``--figures-dir`` (``docs/results``, ``docs/figures``: what
``fastsiren report`` reads); the SR and VFI tables and the VFI dev run write there
directly. A failed experiment is reported and the next one runs; the exit status says
whether all of them finished.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fastsiren.tasks import common

# name -> (what it is, the `fastsiren` argv before the shared options; the SR table is its own
# module, fastsiren.tasks.sr_table). The tables take their own output options; the training
# tasks take --out/--publish (see _argv).
EXPERIMENTS: dict[str, tuple[str, list[str]]] = {
    "fit": ("SIREN fit of cameraman", ["fit"]),
    "poisson-grad": ("Poisson reconstruction from the gradient", ["poisson", "--supervision", "grad"]),
    "poisson-laplacian": ("Poisson reconstruction from the Laplacian", ["poisson", "--supervision", "laplacian"]),
    "compare": ("SIREN vs same-size ReLU, ReLU+PE and tanh networks", ["compare"]),
    "ablate-omega0": ("ablation of omega_0", ["ablate", "--study", "omega0"]),
    "ablate-first-init": ("ablation of the first layer's init", ["ablate", "--study", "first-init"]),
    "ablate-hidden-init": ("ablation of the hidden layers' init", ["ablate", "--study", "hidden-init"]),
    "sr-table": ("super-resolution table over the bundled images", []),
    "vfi-table": ("frame-interpolation table over the bundled clips", ["vfi", "--table"]),
    "vfi-dev": ("the space-time SIREN's sampling variants on the VFI dev subset", ["vfi", "--dev"]),
    "vfi-dev-occlusion": ("the flow methods' occlusion weights on the VFI dev subset", ["vfi", "--dev-occlusion"]),
    "vfi-dev-flow": ("the flow methods' own settings on the VFI dev subset", ["vfi", "--dev-flow"]),
}


def _argv(name: str, profile: str, runs: Path, results: Path, figures: Path, progress: bool,
          resume: bool = False) -> list[str]:
    base = EXPERIMENTS[name][1]
    again = ["--resume"] if resume else []
    if name == "sr-table":
        return ["--profile", profile, "--results", str(results / f"sr-{profile}.json"), "--figures", str(figures),
                *(["--progress"] if progress else []), *again]
    quiet = [] if progress else ["--no-progress"]
    if name == "vfi-table":
        return [*base, "--profile", profile, "--out", str(results / f"vfi-{profile}.json"),
                "--figures", str(figures), *quiet, *again]
    if name in ("vfi-dev", "vfi-dev-occlusion", "vfi-dev-flow"):
        return [*base, "--profile", profile, "--out", str(results / f"{name}-{profile}.json"), *quiet, *again]
    return [*base, "--profile", profile, "--out", str(runs / name), "--publish", "--results-dir", str(results),
            "--figures-dir", str(figures), *quiet, *again]


def parse_names(text: str | None) -> list[str]:
    """``"fit,compare"`` -> those names, in the order given; None: all of them, in order."""
    if text is None:
        return list(EXPERIMENTS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown or not names:
        raise ValueError(f"--only {text!r}: unknown experiment(s) {unknown}; expected names from {list(EXPERIMENTS)}")
    return list(common.check_unique("--only", names))


def run_one(name: str, profile: str, runs: Path, results: Path, figures: Path, progress: bool = False,
            resume: bool = False) -> int:
    """Run one experiment in this process; its exit status (0: finished and published)."""
    argv = _argv(name, profile, runs, results, figures, progress, resume)
    if name == "sr-table":
        import torch

        from fastsiren.tasks import sr_table

        threads = torch.get_num_threads()
        try:
            return sr_table.main(argv)  # it sets its own thread count (--threads)
        except KeyboardInterrupt:  # as `fastsiren` reports a task's Ctrl-C: the summary and --resume follow
            print(f"interrupted: {sr_table.INTERRUPT_HINT}", file=sys.stderr)
            return 130
        except (ValueError, OSError, TypeError, RuntimeError) as exc:  # reported as `fastsiren` reports a task's
            print(f"fastsiren experiments: sr-table: error: {exc}", file=sys.stderr)
            return 2
        finally:
            torch.set_num_threads(threads)  # ... which must not carry over to the next experiment
    from fastsiren import cli

    return cli.main(argv)


def add_arguments(parser) -> None:
    from fastsiren.tasks.common import PROFILES

    parser.add_argument("--profile", choices=PROFILES, default="cpu",
                        help="quick = seconds (tests); cpu = minutes on 2 cores; paper = the paper's settings (GPU)")
    parser.add_argument("--only", help=f"comma-separated subset, in the order given, from {list(EXPERIMENTS)}")
    parser.add_argument("--runs", help="folder of the training tasks' run folders (default: runs/PROFILE)")
    parser.add_argument("--results-dir", default="docs/results", help="where the results files go")
    parser.add_argument("--figures-dir", default="docs/figures", help="where the figures go")
    parser.add_argument("--list", action="store_true", help="print the experiment names and what each is, then exit")
    parser.add_argument("--no-progress", action="store_true", help="hide the tasks' progress bars")
    parser.add_argument("--resume", action="store_true",
                        help="go on after Ctrl-C or a timeout: training tasks continue from their run folders' "
                             "checkpoints, the SR and VFI tables and the VFI dev run keep the rows their results "
                             "files hold and run the rest")


def main(args) -> int:
    if args.list:
        for name, (what, _) in EXPERIMENTS.items():
            print(f"{name:20s} {what}")
        return 0
    names = parse_names(args.only)
    runs = Path(args.runs or f"runs/{args.profile}")
    # before any task: a typo in a folder must not cost the runs before the first publish
    common.check_output_dir(args.results_dir, "--results-dir")
    common.check_output_dir(args.figures_dir, "--figures-dir")
    common.check_output_dir(runs, "--runs")
    done = []
    for name in names:
        print(f"== {name}: {EXPERIMENTS[name][0]} (profile {args.profile})", flush=True)
        t0 = time.perf_counter()
        rc = run_one(name, args.profile, runs, Path(args.results_dir), Path(args.figures_dir),
                     progress=not args.no_progress, resume=args.resume)
        done.append((name, rc, time.perf_counter() - t0))
        if rc == 130:  # Ctrl-C: the task kept its checkpoint; stop here
            break
    for name, rc, secs in done:
        state = "ok" if rc == 0 else "interrupted" if rc == 130 else f"failed (exit {rc})"
        print(f"{name:20s} {state:18s} {secs:8.1f} s")
    for name in names[len(done):]:
        print(f"{name:20s} {'not run':18s}")
    if any(rc == 130 for _, rc, _ in done):
        print("interrupted: rerun the same command with --resume to go on", file=sys.stderr)
        return 130
    if any(rc == 2 for _, rc, _ in done):
        print(f"a task refused its run folder or settings (its error above); a folder under --runs {runs} that "
              "holds an earlier run goes on with --resume (a finished one is republished), or choose another "
              "--runs", file=sys.stderr)
    return 0 if all(rc == 0 for _, rc, _ in done) and len(done) == len(names) else 1
