"""How much of a CPU step's time is glibc's allocator: the benchmark suites' reference and torch
steps timed in child processes under glibc's default malloc settings and with its thresholds
pinned, the two settings alternating.

    python -m benchmarks.cpu_malloc          # writes benchmarks/results/cpu-malloc.json

PyTorch's CPU tensors come from ``malloc``. glibc serves a large block (from 128 KiB, a threshold
it raises as such blocks are freed, up to 32 MiB) with a fresh ``mmap``, whose pages fault in on
first touch, and hands free heap memory back to the system above a trim threshold: the time of a
step depends on the sizes it allocates and on the process's history. With
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` pinned (1 GiB) freed memory stays in the
process, as with a caching allocator, and no step pays page faults for it. The environment
variables act when a process starts, so each setting runs in its own child process
(``python -m benchmarks.cpu_malloc --child``), ``--passes`` times, alternating. A row gives each
provider's median step per setting (the median over the passes, each pass's own median of
``--repeats`` interleaved rounds) and torch's speedup over reference under each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from fastsiren.tasks import common

from .harness import run_suite
from .records import REPO_ROOT, RESULTS_DIR, environment

CPU_MALLOC_FILE = "cpu-malloc.json"
SUITES = ("layer", "fit", "poisson-grad", "poisson-laplacian", "render")
PROVIDERS = ("reference", "torch")
PINNED_BYTES = 1 << 30
SETTINGS = {
    "glibc": {},  # the defaults every user gets
    "pinned": {"MALLOC_MMAP_THRESHOLD_": str(PINNED_BYTES), "MALLOC_TRIM_THRESHOLD_": str(PINNED_BYTES)},
}


def child(suites, size: str, threads: int | None, repeats: int, out: Path) -> None:
    """Time ``suites`` (reference and torch) in this process as ``python -m benchmarks`` does,
    the float64 check and the memory pass included: without them a step can be timed in a
    slower process state (the file's first version, 521d52d in git history, timed without them:
    torch's fit step took 93-100 ms in five of its six processes, against 77.6 ms in
    ``fit.csv``'s run at the same commit); write
    {suite/phase: {provider: median ms}} to ``out``."""
    if threads is not None:
        torch.set_num_threads(threads)
    got: dict[str, dict[str, float]] = {}
    for name in suites:
        res = run_suite(name, list(PROVIDERS[1:]), size=size, device="cpu", rounds=repeats, log=lambda _: None)
        for r in res.rows:
            if r.status != "ok":
                raise RuntimeError(f"{name} {r.phase} {r.provider}: {r.status} ({r.reason})")
            got.setdefault(f"{name}/{r.phase}", {})[r.provider] = r.median_ms
    common.write_json(out, got)


def _run_child(setting: str, suites, size: str, threads: int | None, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "times.json"
        cmd = [sys.executable, "-m", f"{__package__}.cpu_malloc", "--child", str(out), "--size", size,
               "--repeats", str(repeats), *(a for s in suites for a in ("--suite", s))]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        env = {k: v for k, v in os.environ.items() if k not in SETTINGS["pinned"]} | SETTINGS[setting]
        subprocess.run(cmd, cwd=REPO_ROOT, env=env, check=True)
        return json.loads(out.read_text())


def measure(suites=SUITES, size: str = "default", threads: int | None = None, repeats: int = 5,
            passes: int = 2, log=print) -> list[dict]:
    runs: dict[str, list[dict]] = {s: [] for s in SETTINGS}
    for i in range(passes):
        for setting in SETTINGS:
            runs[setting].append(_run_child(setting, suites, size, threads, repeats))
            log(f"pass {i + 1}/{passes} {setting}: " + ", ".join(
                f"{k} " + "/".join(f"{v:.1f}" for v in t.values()) for k, t in runs[setting][-1].items()) + " ms")
    rows = []
    for key in runs["glibc"][0]:
        suite, phase = key.split("/")
        ms = {s: {p: statistics.median(run[key][p] for run in runs[s]) for p in PROVIDERS} for s in SETTINGS}
        rows.append({"suite": suite, "phase": phase,
                     "ms": {s: {p: round(v, 3) for p, v in t.items()} for s, t in ms.items()},
                     "passes_ms": {s: [{p: round(run[key][p], 3) for p in PROVIDERS} for run in runs[s]]
                                   for s in SETTINGS},
                     "torch_speedup": {s: round(t["reference"] / t["torch"], 3) for s, t in ms.items()},
                     "pinned_over_glibc": {p: round(ms["pinned"][p] / ms["glibc"][p], 3) for p in PROVIDERS}})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cpu_malloc", description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", action="append", choices=SUITES, help="suites, repeatable (default: all five)")
    p.add_argument("--size", default="default", choices=("quick", "default"), help="benchmark size")
    p.add_argument("--repeats", type=int, default=5, help="interleaved timed rounds per child process")
    p.add_argument("--passes", type=int, default=2, help="child processes per setting, alternating")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / CPU_MALLOC_FILE,
                   help="results file (default: %(default)s)")
    p.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)  # internal: one timed process
    a = p.parse_args(argv)
    common.positive("--repeats", a.repeats, int)
    common.positive("--passes", a.passes, int)
    if a.threads is not None:
        common.positive("--threads", a.threads, int)
    suites = tuple(a.suite or SUITES)
    if a.child is not None:
        child(suites, a.size, a.threads, a.repeats, a.child)
        return 0
    if not sys.platform.startswith("linux"):
        raise RuntimeError("benchmarks.cpu_malloc sets glibc's malloc thresholds: it runs on Linux only")
    rows = measure(suites, a.size, a.threads, a.repeats, a.passes)
    env = environment(torch.device("cpu"))
    threads = str(a.threads) if a.threads is not None else env["threads"]
    doc = {"script": "benchmarks/cpu_malloc.py", "device": common.device_name("cpu"),
           **{k: env[k] for k in ("date", "commit", "torch", "python")}, "threads": threads, "size": a.size,
           "repeats": a.repeats, "passes": a.passes,
           "settings": SETTINGS,
           "method": f"reference and torch steps of the benchmark suites (size {a.size}) as python -m benchmarks runs "
                     f"them (check, memory pass, then interleaved rounds) in a child process, median of {a.repeats} "
                     f"rounds; {a.passes} child processes per setting, "
                     "alternating; a row's ms is the median over the passes", "rows": rows}
    common.write_json(a.out, doc)
    print(f"-> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
