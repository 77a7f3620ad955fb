"""Results files: one CSV per suite under ``benchmarks/results/``, rows appended per run.

Every row carries its run (``run_id``, date, git commit), the machine (device name,
thread count) and the software (torch, triton, CUDA versions) so the README tables can
name the device of every number. Columns are :data:`COLUMNS`; an older file with fewer
columns is rewritten with the new ones left empty.
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
import platform
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Sequence

import torch

from fastsiren.tasks.common import cpu_id, device_name, git_commit

from .harness import SuiteResult, memory_method

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent

COLUMNS = (
    "run_id", "date", "commit", "device", "device_type", "threads", "torch", "triton", "cuda", "python",
    "suite", "phase", "size", "dtype", "points", "in_features", "hidden", "layers", "out_features",
    "sweep", "sweep_value", "provider", "status", "reason",
    "median_ms", "q10_ms", "q90_ms", "rounds", "iters", "speedup", "gflop", "tflops",
    "floor_ms", "floor_frac", "peak_mb", "mem_method", "max_err", "ref_err", "floor_x3_ms", "floor_x3_frac",
    "cpu_id",
)


def environment(device: torch.device) -> dict[str, str]:
    """Machine and software fields of a row."""
    try:
        import triton

        triton_version = triton.__version__
    except Exception:  # not installed, or broken: record that, do not fail the benchmark
        triton_version = ""
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(REPO_ROOT, length=10),
        "device": device_name(device),
        # a bare model name ("AMD EPYC") can hide different processors: family, model, stepping
        "cpu_id": (cpu_id() or "") if device.type == "cpu" else "",
        "device_type": device.type,
        "threads": str(torch.get_num_threads()) if device.type == "cpu" else "",
        "torch": torch.__version__,
        "triton": triton_version,
        "cuda": torch.version.cuda or "",
        "python": platform.python_version(),
    }


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def result_rows(result: SuiteResult, run_id: str, env: dict[str, str], size: str,
                sweep: str = "", sweep_value: str = "") -> list[dict[str, str]]:
    """CSV dicts of a suite result."""
    s = result.shape
    common = {**env, "run_id": run_id, "size": size, "dtype": str(result.dtype).replace("torch.", ""),
              "points": s.points, "in_features": s.in_features, "hidden": s.hidden,
              "layers": s.hidden_layers + 2 if result.suite != "layer" else 1, "out_features": s.out_features,
              "sweep": sweep, "sweep_value": sweep_value, "mem_method": memory_method(result.device)}
    out = []
    for row in result.rows:
        d = {k: v for k, v in asdict(row).items() if k != "extra"}
        out.append({k: _fmt(v) for k, v in {**common, **d}.items() if k in COLUMNS})
    return out


def append_rows(path: Path, rows: Iterable[dict[str, str]]) -> Path:
    """Append ``rows`` to the CSV at ``path`` (header written once; older headers widened)."""
    rows = list(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    old: list[dict[str, str]] = []
    if path.exists():
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                old = list(reader)
    if old:  # schema changed: rewrite the file in the current columns
        _write(path, old + rows, mode="w")
    else:
        _write(path, rows, mode="a" if path.exists() and path.stat().st_size else "w")
    return path


def _write(path: Path, rows: list[dict[str, str]], mode: str) -> None:
    with path.open(mode, newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, restval="", extrasaction="ignore")
        if mode == "w":
            w.writeheader()
        w.writerows(rows)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def results_file(out_dir: Path, suite: str) -> Path:
    return Path(out_dir) / f"{suite}.csv"


def merge_results(src: Path, dst: Path = RESULTS_DIR) -> dict[str, int]:
    """Append the rows of every ``*.csv`` under ``src`` (e.g. a GPU machine's results folder)
    to the file of the same name in ``dst``, skipping rows already there. Returns rows added
    per file."""
    src, dst = Path(src), Path(dst)
    files = sorted(src.rglob("*.csv")) if src.is_dir() else [src]
    if not files or not all(f.is_file() for f in files):
        raise FileNotFoundError(f"no results CSV files under {src}")
    added = {}
    key = lambda r: (r.get("run_id"), r.get("suite"), r.get("phase"), r.get("provider"),  # noqa: E731
                     r.get("sweep"), r.get("sweep_value"))
    for f in files:
        target = dst / f.name
        have = {key(r) for r in read_rows(target)} if target.exists() else set()
        new = [r for r in read_rows(f) if key(r) not in have]
        if new:
            append_rows(target, new)
        added[f.name] = len(new)
    return added


# Until commit 251b650 (committed 2026-12-04T22:00:59Z) the reference backend's order-0
# inference ran under ``enable_grad`` on an input that required grad: it recorded an autograd
# graph and kept every layer's activations. The render suite's ``reference`` rows timed before
# then carry that cost in their time and peak memory, and every speedup over them is overstated;
# ``reference+compile`` kept no activations (its peak memory shows it).
REFERENCE_INFER_FIX_DATE = "2026-12-04T22:01"
REFERENCE_INFER_NOTE = (
    "The reference row of render timed before commit 251b650 (2026-12-04) recorded an autograd graph "
    "during inference and kept every layer's activations: its time and peak memory are inflated and every "
    "speedup over it is overstated; reference+compile, which kept none, is the fair baseline there until a rerun.")


def reference_infer_graph(row: dict) -> bool:
    """Whether ``row`` is a render-suite ``reference`` row timed with that recorded graph."""
    return (str(row.get("suite", "")) == "render" and str(row.get("provider", "")) == "reference"
            and str(row.get("date", "")) < REFERENCE_INFER_FIX_DATE)


def latest(rows: Sequence[dict[str, str]], key: Sequence[str]) -> list[dict[str, str]]:
    """Rows of the most recent run (by date) within each group of ``key`` columns."""
    best: dict[tuple, tuple[str, str]] = {}
    for r in rows:
        k = tuple(r.get(c, "") for c in key)
        stamp = (r.get("date", ""), r.get("run_id", ""))
        if k not in best or stamp > best[k]:
            best[k] = stamp
    return [r for r in rows if (r.get("date", ""), r.get("run_id", "")) == best[tuple(r.get(c, "") for c in key)]]
