"""Results files: one CSV per suite under ``benchmarks/results/``, rows appended per run.

Every row carries its run (``run_id``, date, git commit), the machine (device name,
thread count) and the software (torch, triton, CUDA versions) so the README tables can
name the device of every number. Columns are :data:`COLUMNS`; an older file with fewer
columns is rewritten with the new ones left empty. Every write replaces the whole file
atomically (temporary file, fsync, rename): an interrupted run never leaves a cut file.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
import platform
import sys
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Sequence

import torch

from fastsiren.tasks.common import atomic_write_bytes, cpu_id, device_name, git_commit

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
    """Append ``rows`` to the CSV at ``path`` (older headers widened to :data:`COLUMNS`).

    Every change is a full rewrite of the file to a temporary file beside it, fsynced and
    renamed over it (:func:`fastsiren.tasks.common.atomic_write_bytes`): a Ctrl-C or a kill
    at any moment leaves either the old file or the new one, never a truncated one. The files
    hold at most a few thousand rows, so the rewrite costs nothing beside a benchmark. An
    existing file that is not a results file (its header lacks :data:`REQUIRED_COLUMNS`) is
    refused, not rewritten; a record cut short by an older, non-atomic writer is dropped with
    a warning (:func:`read_rows`)."""
    rows = list(rows)
    path = Path(path)
    old = read_rows(path) if path.exists() else []
    _write(path, old + rows)
    return path


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    """Write ``rows`` as the whole file at ``path``, in :data:`COLUMNS`, atomically."""
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=COLUMNS, restval="", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


# Columns every results file the harness has written carries (every schema since the first):
# a CSV without them is not a results file, and is neither widened nor merged.
REQUIRED_COLUMNS = ("run_id", "date", "suite", "phase", "provider", "status")


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _parse(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of the results CSV at ``path``, ([], []) for an empty file; an error
    names the file when it is not UTF-8 text, not CSV, or its header lacks
    :data:`REQUIRED_COLUMNS`. A record cut short -- the last one with no line end after it, or one
    with another number of fields than the header, as an older writer killed in the middle
    of an append left -- is skipped with a warning on stderr."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a results CSV file: not UTF-8 text (byte {exc.start} is "
                         f"0x{exc.object[exc.start]:02x})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[tuple[int, list[str]]] = []
    try:
        for rec in reader:
            if rec:  # blank lines are no records (as for csv.DictReader)
                records.append((reader.line_num, rec))
    except csv.Error as exc:
        raise ValueError(f"{path} is not a results CSV file: line {reader.line_num}: {exc}") from None
    if not records:
        return [], []
    (_, header), body = records[0], records[1:]
    _missing_columns(path, header)  # before any warning about its records
    if body and text[-1] not in "\r\n":
        line, _ = body.pop()
        _warn(f"{path}: line {line} is cut short (no line end: a write that was killed); skipped")
    rows = []
    for line, rec in body:
        if len(rec) != len(header):
            _warn(f"{path}: line {line} has {len(rec)} fields, the header {len(header)} (a record cut short); "
                  "skipped")
            continue
        rows.append(dict(zip(header, rec)))
    return header, rows


def _missing_columns(path: Path, header: Sequence[str]) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        have = ", ".join(header[:6]) + (", ..." if len(header) > 6 else "") if header else "no header"
        raise ValueError(f"{path} is not a results CSV file: its header lacks the columns {', '.join(missing)} "
                         f"(it has: {have}); expected a CSV written by fastsiren bench")


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of the results CSV at ``path``; an empty file has none. A file that is not a
    results CSV (not UTF-8, not CSV, a header without :data:`REQUIRED_COLUMNS`) is an error
    naming it; a record cut short is skipped with a warning (:func:`_parse`)."""
    return _parse(Path(path))[1]


def check_results_file(path: Path) -> None:
    """Before a run: the results file it will append to, where it exists, is one (else the
    error of :func:`read_rows`), so that no finished suite is lost to a bad ``--out``."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"--out: {path} is a folder; expected the results CSV file of that name")
    if path.exists():
        read_rows(path)


def results_file(out_dir: Path, suite: str) -> Path:
    return Path(out_dir) / f"{suite}.csv"


def merge_results(src: Path, dst: Path = RESULTS_DIR) -> dict[str, int]:
    """Append the rows of every ``*.csv`` under the folder ``src`` (e.g. a GPU machine's
    results folder, searched recursively), or of the one results ``.csv`` file ``src``, to the
    file of the same name in ``dst``, skipping rows already there (same run, suite, phase,
    provider, sweep and sweep value). Returns rows added per file name.

    Every file is read and checked before anything is written: a source or target that is
    not a results CSV (not UTF-8, not CSV, or a header without :data:`REQUIRED_COLUMNS`) fails
    the whole merge with an error naming it, and no row of any file is added. An empty source
    file is skipped with a warning; a record cut short is skipped with one (:func:`read_rows`).
    Each target is rewritten atomically (:func:`append_rows`)."""
    src, dst = Path(src), Path(dst)
    what = "a folder of results CSV files (e.g. a GPU run's results/) or one results .csv file"
    if not src.exists():
        raise FileNotFoundError(f"--merge {src} does not exist; expected {what}")
    if src.is_dir():
        files = sorted(f for f in src.rglob("*.csv") if f.is_file())
        if not files:
            raise FileNotFoundError(f"--merge {src}: no *.csv files under it; expected {what}")
    elif src.is_file() and src.suffix.lower() == ".csv":
        files = [src]
    else:
        raise ValueError(f"--merge {src} is a file, not a folder, and not a .csv file; expected {what}")
    if dst.exists() and not dst.is_dir():
        raise NotADirectoryError(f"--out {dst} is a file; expected the folder of the results CSV files")
    key = lambda r: (r.get("run_id"), r.get("suite"), r.get("phase"), r.get("provider"),  # noqa: E731
                     r.get("sweep"), r.get("sweep_value"))
    sources: list[tuple[Path, list[dict[str, str]]]] = []
    targets: dict[str, list[dict[str, str]]] = {}
    for f in files:  # check everything first: a rejected file must not leave the others half merged
        header, rows = _parse(f)
        if not header:
            _warn(f"{f} is empty; skipped")
            continue
        sources.append((f, rows))
        target = dst / f.name
        if f.name not in targets:
            targets[f.name] = read_rows(target) if target.exists() else []
    added: dict[str, int] = {}
    new_rows: dict[str, list[dict[str, str]]] = {}
    for f, rows in sources:
        have = {key(r) for r in targets[f.name]} | {key(r) for r in new_rows.get(f.name, [])}
        new = [r for r in rows if key(r) not in have]
        new_rows.setdefault(f.name, []).extend(new)
        added[f.name] = added.get(f.name, 0) + len(new)
    for name, new in new_rows.items():
        if new:
            _write(dst / name, targets[name] + new)
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
