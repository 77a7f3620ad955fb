"""``fastsiren report``: build the PDF report from the results files, with Typst.

The report is generated, never typed: every number in it comes from
``docs/results/*.json`` (the results shape of :func:`fastsiren.tasks.common.results_doc`)
or ``benchmarks/results/*.csv``. The builder

1. reads the results files, groups them by task and variant (the file name without its
   profile suffix: ``poisson-grad-cpu.json`` -> ``poisson-grad``) and keeps the best
   profile of each (paper > cpu > quick, or the one ``--profile`` forces);
2. turns them into tables (each naming its profile, device, backend and commit),
   computed sentences (e.g. how many dB SIREN is above the best baseline) and summary
   figures drawn with matplotlib into ``docs/figures/report-*.png``;
3. writes all of that to one JSON document, copies it with the figures and the Typst
   template (``report.typ``) into a temporary folder, and compiles the PDF there.

A study without results is shown as such ("no results yet"), never filled in.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import json
import math
import re
import shutil
import statistics
import sys
import tempfile
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable

from fastsiren.benchmarks.cli import CPU_GEMM_AUTO_FILE
from fastsiren.benchmarks.cpu_malloc import CPU_MALLOC_FILE
from fastsiren.benchmarks.cpu_trig import CPU_TRIG_FILE
from fastsiren.benchmarks.cuda_registers import REGISTERS_FILE
from fastsiren.benchmarks.gemm_count import GEMM_FILE
from fastsiren.benchmarks.mutations import TARGET_NAMES
from fastsiren.benchmarks.mutations import command as mutation_command
from fastsiren.benchmarks.mutations import results_file as mutation_results
from fastsiren.benchmarks.precision import GPU_FILE as PRECISION_FILE
from fastsiren.benchmarks.profile_step import PROFILE_FILE
from fastsiren.benchmarks.readme_tables import (
    GPU_FLOOR_TARGET,
    GPU_TARGETS,
    TARGETS,
    gpu_targets,
    numpy_trig_floor_text,
    scaling_target_text,
    speedup_text,
    torch_targets,
)
from fastsiren.benchmarks.records import REFERENCE_INFER_NOTE, reference_infer_graph
from fastsiren.benchmarks.scaling import SCALING_TAIL  # said once in the speed section
from fastsiren.benchmarks.suites import REVERSE_GRAD_PRODUCT_SHARE, default_shape
from fastsiren.tasks import common
from fastsiren.tasks.fit import LAYER_COUNTING

PROFILE_ORDER = ("paper", "cpu", "quick")
TASKS = ("fit", "poisson", "compare", "ablate", "sr", "vfi")
METRICS = ("psnr", "psnr_heldout", "psnr_harmonic", "psnr_raw", "psnr_y", "ssim", "ssim_y", "ie", "nie",
           "lr_residual_rms", "seconds", "params")
# True: higher is better; False: lower is better; absent: neither (not ranked).
HIGHER_IS_BETTER = {"psnr": True, "psnr_y": True, "ssim": True, "ssim_y": True,
                    "ie": False, "nie": False, "seconds": False, "ie_vs_blend": False}
METRIC_LABELS = {"psnr": "PSNR (dB)", "psnr_heldout": "held-out PSNR (dB)",
                 "psnr_harmonic": "PSNR, harmonic part removed (dB)", "psnr_raw": "raw PSNR (dB)",
                 "psnr_y": "PSNR-Y (dB)", "ssim": "SSIM", "ssim_y": "SSIM-Y", "ie": "IE (8-bit levels)", "nie": "NIE",
                 "lr_residual_rms": "LR residual RMS", "seconds": "train s", "params": "params",
                 "ie_vs_blend": "IE - blend IE (8-bit levels; lower is better)"}
# The benchmark columns a reader needs, in order (the CSVs hold more: versions, run ids, errors).
BENCH_COLUMNS = ("phase", "size", "threads", "points", "in_features", "hidden", "provider", "median_ms",
                 "q10_ms", "q90_ms", "speedup", "tflops", "floor_frac", "peak_mb")
# The measured columns of a benchmark table (right-aligned), and the headers a reader sees.
BENCH_MEASURED = ("median_ms", "q10_ms", "q90_ms", "speedup", "tflops", "floor_frac", "peak_mb")
BENCH_LABELS = {"in_features": "D", "median_ms": "median ms", "q10_ms": "q10 ms", "q90_ms": "q90 ms",
                "tflops": "TFLOP/s", "floor_frac": "floor fraction", "peak_mb": "peak MiB"}
DOC_META = ("task", "profile", "device", "backend", "commit", "date", "seconds", "versions", "rows")
# Benchmark CSV columns that describe the run, not the measured case (kept for captions).
BENCH_META = ("device", "commit", "date", "torch", "triton", "cuda", "python", "versions", "git_commit",
              "timestamp", "host")
# Figures made by the tasks are matched to a section by the start of their file name.
FIGURE_PREFIXES = {"fit": "fit", "poisson": "poisson", "compare": "compare", "ablate": "ablate",
                   "sr": "sr", "vfi": "vfi", "bench": "bench", "scaling": "bench"}
MAX_TABLE_ROWS = 60


# ---------------------------------------------------------------- loading

@dataclasses.dataclass(frozen=True)
class Result:
    """One results file: ``doc`` has the shape of :func:`fastsiren.tasks.common.results_doc`;
    ``variant`` names the study."""

    path: Path
    doc: dict
    variant: str
    # other results files whose runs overlapped this one's on the same device: (file, minutes)
    alongside: tuple[tuple[str, float], ...] = ()

    @property
    def task(self) -> str:
        return str(self.doc["task"])

    @property
    def profile(self) -> str:
        return str(self.doc.get("profile", "?"))

    @property
    def rows(self) -> list[dict]:
        return self.doc["rows"]

    def device(self) -> str:
        """The device, with the torch thread count where the file records one (CPU runs)."""
        threads = self.doc.get("threads")
        return str(self.doc.get("device", "?")) + (f", {_count(int(threads), 'torch thread')}"
                                                    if isinstance(threads, int) else "")

    def source(self) -> str:
        """Where a table's numbers come from: profile, device, backend, commit, date, file."""
        d = self.doc
        return (f"profile {self.profile}, device {self.device()}, backend {d.get('backend', '?')}, "
                f"commit {_commit(d)}, {str(d.get('date', '?'))[:10]}, "
                f"file {self.path.name}" + self.shared())

    def shared(self) -> str:
        """``; it shared the machine with ...`` where another run overlapped this one, else ""."""
        if not self.alongside:
            return ""
        span = _span(self.doc)
        total = f" of its {(span[1] - span[0]).total_seconds() / 60:.0f}" if span else ""
        return ("; it shared the machine with " + ", ".join(f"{name} for {minutes:.0f}{total} minutes"
                                                            for name, minutes in self.alongside)
                + " (overlapping runs by their end times and durations), so its seconds are slower than a run alone")


def _variant(path: Path, profile: str) -> str:
    stem = path.stem
    return stem[: -len(profile) - 1] if stem.endswith(f"-{profile}") else stem


def load_results(results_dir: Path, profile: str | None = None) -> tuple[dict[str, list[Result]], list[str]]:
    """Read every ``*.json`` under ``results_dir`` that has the results shape.

    Returns ``({task: [Result, ...]}, skipped)``: one Result per (task, variant), at the best
    profile available (paper > cpu > quick) or exactly ``profile`` when given; a table that
    an interrupted run left (``"complete": false``) yields to a complete one of any profile.
    ``skipped`` lists the files that were not used, each with the reason.
    """
    if profile is not None and profile not in PROFILE_ORDER:
        raise ValueError(f"profile={profile!r} is not known; expected one of {list(PROFILE_ORDER)}")
    skipped: list[str] = []
    groups: dict[tuple[str, str], list[Result]] = defaultdict(list)
    if not results_dir.is_dir():
        return {}, [f"{results_dir}: no such folder"]
    for path in sorted(results_dir.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            skipped.append(f"{path.name}: not readable JSON ({exc})")
            continue
        if not isinstance(doc, dict) or "task" not in doc or not isinstance(doc.get("rows"), list):
            skipped.append(f"{path.name}: not a results document (needs 'task' and a 'rows' list)")
            continue
        if not all(isinstance(r, dict) for r in doc["rows"]):
            skipped.append(f"{path.name}: 'rows' must be a list of dicts")
            continue
        prof = str(doc.get("profile", "?"))
        if profile is not None and prof != profile:
            skipped.append(f"{path.name}: profile {prof}, not the forced profile {profile}")
            continue
        groups[(str(doc["task"]), _variant(path, prof))].append(Result(path, doc, _variant(path, prof)))
    rank = {p: i for i, p in enumerate(PROFILE_ORDER)}
    chosen: dict[str, list[Result]] = defaultdict(list)
    loaded = [r for rs in groups.values() for r in rs]
    for (task, _), results in sorted(groups.items()):
        results.sort(key=lambda r: (r.doc.get("complete") is False, rank.get(r.profile, len(rank)), r.path.name))
        chosen[task].append(dataclasses.replace(results[0], alongside=_overlaps(results[0], loaded)))
        skipped.extend(f"{r.path.name}: superseded by {results[0].path.name} (profile {results[0].profile})"
                       for r in results[1:])
    return dict(chosen), skipped


def _span(doc: dict) -> tuple[_dt.datetime, _dt.datetime] | None:
    """When a results document's run went on: its ``date`` (written at the end) less its
    ``seconds``; None without both. A resumed run's seconds include its earlier parts, so its
    start is then an estimate on the early side."""
    try:
        end = _dt.datetime.fromisoformat(str(doc["date"]))
        seconds = float(doc["seconds"])
    except (KeyError, TypeError, ValueError):
        return None
    if end.tzinfo is None or not math.isfinite(seconds) or seconds <= 0:
        return None
    return end - _dt.timedelta(seconds=seconds), end


# Overlaps shorter than this are not reported (a run's end is written after its last timing).
OVERLAP_MIN_SECONDS = 60.0


def _overlaps(res: Result, others: list[Result]) -> tuple[tuple[str, float], ...]:
    """The other results files whose runs overlapped ``res``'s on the same device, with the
    minutes of overlap: runs that shared the machine, so their timings are not a run alone's."""
    span = _span(res.doc)
    if span is None:
        return ()
    out = []
    for other in others:
        o = _span(other.doc)
        if other.path == res.path or o is None or other.doc.get("device") != res.doc.get("device"):
            continue
        seconds = (min(span[1], o[1]) - max(span[0], o[0])).total_seconds()
        if seconds >= OVERLAP_MIN_SECONDS:
            out.append((other.path.name, seconds / 60))
    return tuple(out)


def _number(text: str):
    """A CSV cell as int, float or the original string."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


# The columns every row of fastsiren bench's CSVs has (benchmarks/records.py): a CSV without them
# is not one of its results files.
BENCH_REQUIRED = ("suite", "provider", "median_ms")


def load_bench(bench_dir: Path, skipped: list[str] | None = None) -> list[dict]:
    """The rows of the latest run (the README's rule: by date) of each device, thread count,
    suite, size, sweep and dtype in every ``*.csv`` under ``bench_dir``, cells parsed to
    numbers, with the file name under ``_file``: a table and its findings come from one run,
    never a mix of old and new code. A file that is not readable, or not such a CSV, is left
    out, with why appended to ``skipped``."""
    from fastsiren.benchmarks.records import latest

    if not bench_dir.is_dir():
        return []
    rows = []
    for path in sorted(bench_dir.glob("*.csv")):
        try:
            with path.open(newline="") as f:
                reader = csv.DictReader(f)
                got = list(reader)
                lacking = [c for c in BENCH_REQUIRED if c not in (reader.fieldnames or [])]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            if skipped is not None:
                skipped.append(f"{path.name}: not a readable CSV ({type(exc).__name__}: {exc})")
            continue
        if lacking:
            if skipped is not None:
                skipped.append(f"{path.name}: not a benchmark results file (no column {', '.join(lacking)})")
            continue
        for row in got:
            row = {k: _number(v) for k, v in row.items() if k is not None and v not in (None, "")}
            row["_file"] = path.name
            rows.append(row)
    return latest(rows, ("device", "threads", "suite", "size", "sweep", "dtype"))


# ---------------------------------------------------------------- formatting

# "..., median of N rounds" at the end of benchmarks/weighted_cost.py's method text (per file)
_ROUNDS = re.compile(r",? median of (\d+) rounds")


def _commit(doc: dict) -> str:
    """The commit of a results document, as the tables' sources print it: ten hex digits, and
    "-dirty" kept where the run's working tree had uncommitted changes."""
    commit = str(doc.get("commit", "?"))
    return commit[:10] + ("-dirty" if commit.endswith("-dirty") else "")


def fmt(key: str, value: Any) -> str:
    """A cell: metrics with their usual precision, parameter counts with separators."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if key in ("params", "points", "n") or abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if math.isnan(value):  # a computation that failed (e.g. fp16's Laplacian), not a missing value
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if key.startswith("psnr"):
            return f"{value:.2f}"
        if key.startswith("ssim") or key == "nie":
            return f"{value:.4f}"
        if key == "ie":
            return f"{value:.3f}"
        if key == "params":
            return f"{int(round(value)):,}"
        if 1e4 <= abs(value) < 1e15:  # a time in ms or a size: whole units, not 3.986e+04
            return f"{value:,.0f}"
        if value != 0 and (abs(value) >= 1e15 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value)


def _run_day(row: dict) -> tuple[str, str]:
    """A benchmark row's commit and day: rows that share them ran the same code on the same
    machine state (a day's runs at several thread counts), rows that do not may not compare."""
    return str(row.get("commit", "?"))[:10], str(row.get("date", "?"))[:10]


def _dates(rows: list[dict]) -> str:
    """``commit a455e96cef of 2026-11-28`` (each distinct run of ``rows``)."""
    return ", ".join(dict.fromkeys(f"commit {_commit(r)} of {str(r.get('date', '?'))[:10]}"
                                   for r in rows)) or "no rows"


def _most_threads(rows: list[dict]) -> tuple[int | None, list[dict]]:
    """The largest torch thread count among ``rows`` (None where they record none: a GPU) and
    the rows measured at it."""
    threads = max((r["threads"] for r in rows if isinstance(r.get("threads"), int)), default=None)
    return threads, [r for r in rows if threads is None or r.get("threads") == threads]


def _count(n: int, noun: str) -> str:
    """``1 row``, ``2 rows``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _natural_key(path: Path) -> list:
    """A file name's sort key with its numbers compared as numbers (``x2.png`` < ``x2.5.png`` < ``x10.png``);
    split parts alternate text, number, text, ... so lists compare position by position."""
    parts = re.split(r"(\d+(?:\.\d+)?)", path.name)
    return [float(t) if i % 2 else t for i, t in enumerate(parts)]


def _or_list(items: list) -> str:
    """``3``, ``3 or 4``, ``2, 3 or 4``."""
    words = [str(i) for i in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _label(key: str) -> str:
    return METRIC_LABELS.get(key, key)


def _is_metric(key: str) -> bool:
    return key in METRICS


def is_siren(method: Any) -> bool:
    """SIREN variants carry "siren" in their method name; everything else is a baseline."""
    return "siren" in str(method).lower()


def _mean(values: Iterable[float]) -> float | None:
    vals = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(float(v))]
    return sum(vals) / len(vals) if vals else None


def _median(values: Iterable[float]) -> float | None:
    vals = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(float(v))]
    return statistics.median(vals) if vals else None


def _present(rows: list[dict], keys: Iterable[str]) -> list[str]:
    return [k for k in keys if any(k in r for r in rows)]


def _varying(rows: list[dict], keys: Iterable[str]) -> list[str]:
    return [k for k in keys if len({repr(r.get(k)) for r in rows}) > 1]


def _ordered_keys(rows: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            seen.setdefault(k, None)
    return list(seen)


def _value_order(values: Iterable[Any]) -> list[Any]:
    """Distinct values, numbers sorted, strings in order of first appearance."""
    distinct = list(dict.fromkeys(values))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in distinct):
        return sorted(distinct)
    return distinct


def cell(text: str, best: bool = False) -> dict:
    return {"t": text, "b": best}


def table(caption: str, columns: list[str], rows: list[list[dict]], *, lead: int = 1,
          source: str = "", notes: Iterable[str] = ()) -> dict:
    """A table for the template: ``lead`` text columns on the left, numbers on the right."""
    width = len(columns)
    if any(len(r) != width for r in rows):
        raise ValueError(f"every table row needs {width} cells")
    return {"caption": caption, "columns": columns, "rows": rows, "lead": lead, "source": source,
            "notes": list(notes), "small": width > 7 or len(rows) > 25}


def rows_table(result: Result, rows: list[dict], caption: str, *, exclude: Iterable[str] = ()) -> dict:
    """Every row as it is: varying settings, method, metrics; constant settings go to a note.

    The best value of each ranked metric (``HIGHER_IS_BETTER``) is bold when the table
    compares methods on one setting.
    """
    exclude = set(exclude)
    keys = [k for k in _ordered_keys(rows) if k not in exclude]
    settings = [k for k in keys if not _is_metric(k) and k != "method"]
    varying = _varying(rows, settings)
    # a setting that is empty in every row (e.g. a Laplacian-only option on a gradient run) says nothing
    fixed = [k for k in settings if k not in varying and any(r.get(k) is not None for r in rows)]
    metrics = [k for k in METRICS if k in keys]
    columns = varying + (["method"] if "method" in keys else []) + metrics
    shown = rows[:MAX_TABLE_ROWS]
    best = {}
    if not varying:
        for m in metrics:
            if m in HIGHER_IS_BETTER:
                vals = [r[m] for r in shown if isinstance(r.get(m), (int, float)) and math.isfinite(r[m])]
                if len(vals) > 1:
                    best[m] = max(vals) if HIGHER_IS_BETTER[m] else min(vals)
    body = [[cell(fmt(k, r.get(k)), k in best and r.get(k) == best[k]) for k in columns] for r in shown]
    notes = []
    if fixed:
        notes.append("Same in every row: " + ", ".join(f"{k} = {fmt(k, rows[0].get(k))}" for k in fixed) + ".")
    if len(rows) > len(shown):
        notes.append(f"First {len(shown)} of {len(rows)} rows; the file holds all of them.")
    return table(caption, [_label(c) for c in columns], body, lead=len(varying) + ("method" in keys),
                 source=result.source(), notes=notes)


def pivot_table(result: Result, rows: list[dict], index: str, column: str, value: str, caption: str,
                *, mean_column: bool = True, column_label: str | None = None, agg: str = "mean") -> dict:
    """Mean (or, with ``agg="median"``, median) of ``value`` for each (``index``, ``column``)
    pair; best per column in bold. The last column is the mean of the row's cells, or with
    ``agg="median"`` the median of all the row's values."""
    if agg not in ("mean", "median"):
        raise ValueError(f"agg={agg!r}: expected 'mean' or 'median'")
    reduce = _median if agg == "median" else _mean
    idx = _value_order(r.get(index) for r in rows)
    cols = _value_order(r.get(column) for r in rows)
    cells: dict[tuple, float | None] = {}
    counts = set()
    for i in idx:
        for c in cols:
            sel = [r.get(value) for r in rows if r.get(index) == i and r.get(column) == c]
            counts.add(len(sel))
            cells[(i, c)] = reduce(sel)
    if agg == "median":
        means = {i: _median(r.get(value) for r in rows if r.get(index) == i) for i in idx}
    else:
        means = {i: _mean(cells[(i, c)] for c in cols if cells[(i, c)] is not None) for i in idx}
    higher = HIGHER_IS_BETTER.get(value)

    def best_of(vals: list[float | None]) -> float | None:
        vals = [v for v in vals if v is not None]
        if higher is None or len(vals) < 2:
            return None
        return max(vals) if higher else min(vals)

    best_col = {c: best_of([cells[(i, c)] for i in idx]) for c in cols}
    best_mean = best_of(list(means.values()))
    add_mean = mean_column and len(cols) > 1
    body = []
    for i in idx:
        row = [cell(fmt(index, i))]
        row += [cell(fmt(value, cells[(i, c)]), cells[(i, c)] is not None and cells[(i, c)] == best_col[c])
                for c in cols]
        if add_mean:
            row.append(cell(fmt(value, means[i]), means[i] is not None and means[i] == best_mean))
        body.append(row)
    counts.discard(0)
    notes = []
    if counts and max(counts) > 1:
        candidates = [k for k in _ordered_keys(rows) if k in CASE_KEYS and k not in (index, column)]
        pooled = [k for k in candidates  # the settings that differ within a cell
                  if any(len({str(r.get(k)) for r in rows if r.get(index) == i and r.get(column) == c}) > 1
                         for i in idx for c in cols)]
        over = f", one per {' and '.join(pooled)}" if pooled else " (over the settings not shown)"
        if add_mean and agg == "median":
            tail = "; the last column is the median over all of the row's cases (not of its cells)."
        elif add_mean and len(counts) > 1:
            tail = ("; the last column is the mean of the row's cells, each weighted alike whatever its number of "
                    "cases (not the mean over all of them).")
        else:
            tail = "."
        notes.append(f"Each cell is the {agg} of {_or_list(sorted(counts))} rows{over}{tail}")
    label = column if column_label is None else column_label
    head = [index] + [f"{label} {fmt(column, c)}".strip() for c in cols] + ([agg] if add_mean else [])
    return table(f"{caption} ({_label(value)})", head, body, source=result.source(), notes=notes)


# ---------------------------------------------------------------- comparisons

# Margins below which a SIREN method and the best baseline are called level: PSNR in dB, any other
# metric relative to the baseline's value (e.g. an IE of 27.459 against 27.462 is level). Where a
# group holds several paired cases (frames, images), a difference whose 95% interval holds zero is
# level too (:func:`compare_methods`).
TIE_DB = 0.05
TIE_REL = 1e-3
CONFIDENCE = 0.95


@dataclasses.dataclass
class Comparison:
    """One SIREN method against the best baseline on one group of settings. ``interval``: the
    half-width of the :data:`CONFIDENCE` interval of the mean paired difference (Student t over
    ``n`` paired cases), or None where the group has no pairs to draw it from."""

    group: str
    metric: str
    siren: str
    siren_value: float
    baseline: str
    baseline_value: float
    n: int
    interval: float | None = None

    @property
    def gain(self) -> float:
        """Positive when SIREN is better (in the metric's own direction)."""
        d = self.siren_value - self.baseline_value
        return d if HIGHER_IS_BETTER.get(self.metric, True) else -d

    @property
    def tied(self) -> bool:
        """Within :data:`TIE_DB` (PSNR) or :data:`TIE_REL` of the baseline."""
        if self.metric.startswith("psnr"):
            return abs(self.gain) < TIE_DB
        return abs(self.gain) <= TIE_REL * abs(self.baseline_value)

    @property
    def level(self) -> bool:
        """Tied, or a difference whose interval holds zero: neither wins."""
        return self.tied or (self.interval is not None and abs(self.gain) <= self.interval)

    @property
    def won(self) -> bool:
        return self.gain > 0 and not self.level

    def _spread(self) -> str:
        if self.interval is None:
            return ""
        unit = " dB" if self.metric.startswith("psnr") else ""
        return (f"; the {CONFIDENCE:.0%} interval of the mean paired difference over the {self.n} cases is "
                f"±{self.interval:.2f}{unit}")

    def sentence(self) -> str:
        unit = " dB" if self.metric.startswith("psnr") else ""
        where = f"{self.group}: " if self.group else ""
        word = "better" if self.gain > 0 else "worse"
        avg = f" (mean over {self.n} cases)" if self.n > 1 else ""
        if self.level:
            if self.tied:
                why = f"within {TIE_DB} dB" if self.metric.startswith("psnr") else f"within {TIE_REL:.1%}"
            else:
                why = (f"the {CONFIDENCE:.0%} interval of the mean paired difference, ±{self.interval:.2f}{unit} "
                       f"over {self.n} cases, holds zero")
            return (f"{where}{self.siren}'s {_short_label(self.metric)} is {fmt(self.metric, self.siren_value)}"
                    f"{unit}{avg}, level with the best baseline ({self.baseline}, "
                    f"{fmt(self.metric, self.baseline_value)}{unit}; {why}).")
        if self.metric.startswith("psnr"):
            word = "above" if self.gain > 0 else "below"
            return (f"{where}{self.siren} reaches {fmt(self.metric, self.siren_value)} dB "
                    f"{_short_label(self.metric)}{avg}, "
                    f"{abs(self.siren_value - self.baseline_value):.2f}{unit} {word} the best baseline "
                    f"({self.baseline}, {fmt(self.metric, self.baseline_value)} dB{self._spread()}).")
        way = f"; {direction(self.metric)}" if direction(self.metric) else ""
        return (f"{where}{self.siren}'s {_short_label(self.metric)} is {fmt(self.metric, self.siren_value)}{avg}, "
                f"{word} than the best baseline ({self.baseline}, {fmt(self.metric, self.baseline_value)}{way}"
                f"{self._spread()}).")


def direction(metric: str) -> str:
    """``lower is better`` / ``higher is better`` for a ranked metric, else ``""``."""
    higher = HIGHER_IS_BETTER.get(metric)
    return "" if higher is None else ("higher is better" if higher else "lower is better")


def _short_label(metric: str) -> str:
    """A metric's name without its unit: ``PSNR``, ``PSNR-Y``, ``IE``."""
    return _label(metric).removesuffix(" (dB)").removesuffix(" (8-bit levels)")


def _worse_cases(cases: dict[tuple[str, str, str], Comparison]) -> str:
    """`` Worse: sr siren-naive (scale 4); vfi siren and siren-raw (video carphone, gap 2).``: the
    cases of the summary where a SIREN method is worse than the best baseline, by study and
    setting (``""`` where there are none)."""
    worse: dict[tuple[str, str], list[str]] = defaultdict(list)
    for (key, group, siren), c in cases.items():
        if not c.won and not c.level:
            worse[key, group].append(siren)
    return ("" if not worse else " Worse: " + "; ".join(
        f"{key} {' and '.join(sirens)}" + (f" ({group})" if group else "") for (key, group), sirens in worse.items())
        + ".")


LEVEL_RULE = (f"level: within {TIE_DB} dB of PSNR or {TIE_REL:.1%} of another metric, or, over several paired "
              f"cases, a {CONFIDENCE:.0%} interval of the mean difference that holds zero")


def tally(comps: list[Comparison], metric: str, what: str, how: str = "", over: str = "",
          note: str = "") -> str | None:
    """One count per SIREN method of its comparisons in one metric, naming the metric and its
    direction: ``By IE (lower is better), against the best baseline of each of 6 settings (video
    and gap): siren is better in 3, level in 1 and worse in 2; siren-flow ...``"""
    cs = [c for c in comps if c.metric == metric]
    if not cs:
        return None
    groups = len(dict.fromkeys(c.group for c in cs))
    counts = []
    for m in dict.fromkeys(c.siren for c in cs):
        mine = [c for c in cs if c.siren == m]
        won, level = sum(c.won for c in mine), sum(c.level for c in mine)
        of = f" of {len(mine)}" if len(mine) != groups else ""
        counts.append(f"{m} is better in {won}{of}, level in {level} and worse in {len(mine) - won - level}")
    return (f"By {how}{_short_label(metric)}{over} ({direction(metric)}{note}), against the best baseline of each of "
            f"{_count(groups, 'setting')}{f' ({what})' if what else ''}: " + "; ".join(counts)
            + f" ({LEVEL_RULE}).")


def _t_quantile(p: float, dof: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(p, dof))


def compare_methods(rows: list[dict], metric: str, by: list[str], *, agg: str = "mean",
                    pair: Iterable[str] = ()) -> list[Comparison]:
    """For each group of ``by`` values: each method's ``agg`` ("mean", "median" or "best") of
    ``metric`` over the group's rows, then every SIREN method against the group's best baseline
    (one comparison each: the SIREN variant is never picked per group, the baseline is, which
    favours the baselines). ``pair``: the keys that name a case within a group (a frame, an
    image); with agg "mean" and two or more cases that both methods scored, the comparison
    carries the :data:`CONFIDENCE` interval of the mean of their paired differences."""
    higher = HIGHER_IS_BETTER.get(metric, True)
    pair = list(pair)
    groups: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    cases: dict[tuple, dict[str, dict[tuple, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        v = r.get(metric)
        if "method" in r and isinstance(v, (int, float)) and math.isfinite(v):
            key = tuple(r.get(k) for k in by)
            groups[key][str(r["method"])].append(float(v))
            if pair:
                cases[key][str(r["method"])][tuple(r.get(k) for k in pair)] = float(v)
    out = []
    for key, per_method in groups.items():
        def score(vals: list[float]) -> float:
            if agg == "best":
                return max(vals) if higher else min(vals)
            if agg == "median":
                return statistics.median(vals)
            return sum(vals) / len(vals)

        scored = {m: score(v) for m, v in per_method.items()}
        sirens = {m: s for m, s in scored.items() if is_siren(m)}
        bases = {m: s for m, s in scored.items() if not is_siren(m)}
        if not sirens or not bases:
            continue
        b_name = (max if higher else min)(bases, key=bases.get)
        group = ", ".join(f"{k} {fmt(k, v)}" for k, v in zip(by, key))
        for s_name in sirens:
            n = len(per_method[s_name]) if agg == "mean" else 1
            interval = None
            if pair and agg == "mean":
                mine, theirs = cases[key][s_name], cases[key][b_name]
                diffs = [mine[c] - theirs[c] for c in mine if c in theirs]
                if len(diffs) >= 2 and len(diffs) == len(mine) == len(theirs):
                    sd = statistics.stdev(diffs)
                    interval = _t_quantile(0.5 + CONFIDENCE / 2, len(diffs) - 1) * sd / math.sqrt(len(diffs))
            out.append(Comparison(group, metric, s_name, sirens[s_name], b_name, bases[b_name], n, interval))
    return out


def first_metric(rows: list[dict], prefs: Iterable[str]) -> str | None:
    for m in prefs:
        if any(isinstance(r.get(m), (int, float)) for r in rows):
            return m
    return None


# ---------------------------------------------------------------- figures

# the colour scales of the families of series (:func:`series_styles`)
FAMILY_CMAPS = ("Blues", "Oranges", "Greens", "Purples", "Reds", "Greys")
HATCHES = ("", "//", "..", "xx")


def _family(name: str) -> tuple[str, list[str]]:
    """A series name's family and its settings: ``"tvl1, attachment 5"`` -> ("tvl1",
    ["attachment 5"]); ``"3 fits: weighted (sigma 1), limited"`` -> ("3 fits", [...])."""
    head, sep, rest = name.partition(": ")
    if not sep:
        head, sep, rest = name.partition(", ")
    return head, rest.split(", ") if rest else []


def series_styles(names: list[str]) -> tuple[list[str], dict[str, tuple[Any, str]]]:
    """The order and (colour, hatch) of each series of a bar chart. Where series share a
    family (the name before its first ": " or ", ", e.g. the settings a method was tried at),
    a family keeps one colour scale (:data:`FAMILY_CMAPS`) and its series sit side by side:
    the shade follows the first setting, and where the family's series differ in a second
    setting too, the hatch follows that one. Otherwise one colour per series (tab20 past 10)."""
    import matplotlib

    fams = {n: _family(n) for n in names}
    families = list(dict.fromkeys(f for f, _ in fams.values()))
    if len(families) == len(names) or len(families) > len(FAMILY_CMAPS):
        cmap = matplotlib.colormaps["tab20"] if len(names) > 10 else None
        return names, {n: (cmap(j % 20) if cmap is not None else f"C{j}", "") for j, n in enumerate(names)}
    order = [n for f in families for n in names if fams[n][0] == f]
    styles = {}
    for i, fam in enumerate(families):
        members = [n for n in order if fams[n][0] == fam]
        cmap = matplotlib.colormaps[FAMILY_CMAPS[i]]
        firsts = list(dict.fromkeys(fams[n][1][0] if fams[n][1] else "" for n in members))
        seconds = list(dict.fromkeys(", ".join(fams[n][1][1:]) for n in members))
        hatch = 1 < len(seconds) <= len(HATCHES) and len(firsts) > 1
        for n in members:
            first = fams[n][1][0] if fams[n][1] else ""
            k = firsts.index(first) if hatch else members.index(n)
            m = len(firsts) if hatch else len(members)
            shade = 0.75 if m == 1 else 0.4 + 0.5 * k / (m - 1)
            styles[n] = (cmap(shade), HATCHES[seconds.index(", ".join(fams[n][1][1:]))] if hatch else "")
    return order, styles


def grouped_bars(path: Path, groups: list[str], series: dict[str, list[float | None]], ylabel: str,
                 title: str, *, base: float | None = None, caption: str | None = None) -> Path:
    """``series[name][i]`` for each group ``i``, styled by :func:`series_styles` (a family of
    series in one colour scale), a
    missing value marked "n/a" (up to 6 series; beyond, the gap says it). Bars start at zero, or
    with ``base`` on a log axis at ``base`` (ratios: a bar up is a gain, down a loss, with a line
    at ``base``); PSNRs, whose axis cannot start at zero and stay readable, are dots, whose
    position (not a bar's length) is the value."""
    # drawn at most the text width wide, so that its 8-9 pt labels print at their size (Builder._fig)
    fig, ax = common.plt_figure(1, 1, figsize=(min(TEXT_WIDTH_IN, 0.6 * len(groups) * max(len(series), 1) ** 0.5
                                                   + 2.5), 3.0))
    import textwrap

    import matplotlib
    import matplotlib.ticker

    n = max(len(series), 1)
    width = 0.8 / n
    dots = base is None and ylabel.startswith("PSNR")
    order, styles = series_styles(list(series))
    values = [v for vals in series.values() for v in vals if v is not None]
    for j, name in enumerate(order):
        vals = series[name]
        colour, hatch = styles[name]
        offset = (j - (n - 1) / 2) * width
        xs = [i + offset for i, v in enumerate(vals) if v is not None]
        ys = [v for v in vals if v is not None]
        bar = dict(width=width, color=colour, label=name, hatch=hatch or None, edgecolor="white" if hatch else None,
                   linewidth=0)
        if dots:
            ax.plot(xs, ys, marker="o" if not hatch else "s", ms=5, ls="none", color=colour, label=name)
        elif base is not None:
            ax.bar(xs, [y - base for y in ys], bottom=base, **bar)
        else:
            ax.bar(xs, ys, **bar)
        for i, v in enumerate(vals):
            if v is None and values and n <= 6:  # beyond that the legend and the gaps say it
                ax.annotate("n/a", (i + offset, 0), xycoords=("data", "axes fraction"), xytext=(0, 2),
                            textcoords="offset points", ha="center", va="bottom", fontsize=7.5, rotation=90,
                            color=colour)
    long = sum(map(len, groups)) > 40
    ax.set_xticks(range(len(groups)), groups, rotation=25 if long else 0, ha="right" if long else "center",
                  fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylabel(textwrap.fill(ylabel, 40), fontsize=8.5)
    ax.set_title(textwrap.fill(title, 90), fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    if base is not None:
        ax.set_yscale("log")
        ax.axhline(base, color="black", lw=0.8)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        if values:
            lo, hi = min(min(values), base) / 1.3, max(max(values), base) * 1.3
            ax.set_ylim(lo, hi)
            ticks = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10, 20)
            ax.set_yticks([t * base for t in ticks if lo <= t * base <= hi])
    if n > 4:  # many series: the legend goes below the axes, clear of the bars
        ax.legend(fontsize=7.5, ncol=min(n, 2 if max(map(len, series)) > 24 else 3), loc="upper center",
                  bbox_to_anchor=(0.5, -0.45 if long else -0.15))
    else:
        ax.legend(fontsize=7.5, ncol=min(n, 4))
    if dots and values and min(values) > 0:
        ax.set_ylim(max(0.0, min(values) - 2), max(values) + 2)
    common.save_figure(fig, path, caption=caption)
    return path


def _minus_blend(rows: list[dict]) -> list[dict]:
    """VFI rows -> rows of ``ie_vs_blend`` = IE - the blend's IE on the same triplet (no blend rows)."""
    def key(r):
        return r.get("video"), r.get("frame"), r.get("gap")

    blend = {key(r): r["ie"] for r in rows if r.get("method") == "blend"}
    return [dict(r, ie_vs_blend=r["ie"] - blend[key(r)]) for r in rows
            if r.get("method") != "blend" and key(r) in blend]


# how a bar group's setting reads under its bars: "gap 1", not a bare "1"
_GROUP_LABELS = {"gap": "gap {}", "scale": "x{}", "frame": "frame {}"}


def _group_label(key: str, value: Any) -> str:
    if key == "threads" and isinstance(value, int):
        return _count(value, "thread")
    text = fmt(key, value)
    return _GROUP_LABELS[key].format(text) if key in _GROUP_LABELS and value is not None else text


def summary_bars(path: Path, rows: list[dict], metric: str, group_keys: list[str], title: str,
                 *, agg: str = "mean", base: float | None = None, caption: str | None = None) -> Path | None:
    """The mean (``agg="best"``: the best; ``"geomean"``: the geometric mean, for ratios)
    ``metric`` per method for each group of ``group_keys`` values (:func:`grouped_bars`)."""
    rows = [r for r in rows if isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
    if not rows or not any("method" in r for r in rows):
        return None
    keys = [tuple(r.get(k) for k in group_keys) for r in rows]
    groups = list(dict.fromkeys(keys))
    methods = list(dict.fromkeys(str(r.get("method")) for r in rows))
    pick = max if HIGHER_IS_BETTER.get(metric, True) else min

    def score(vals: list[float]) -> float | None:
        if not vals:
            return None
        if agg == "geomean":
            return math.exp(_mean(math.log(v) for v in vals)) if min(vals) > 0 else None
        return pick(vals) if agg == "best" else _mean(vals)

    series = {m: [score([r[metric] for r, k in zip(rows, keys) if k == g and str(r.get("method")) == m])
                  for g in groups] for m in methods}
    labels = [", ".join(_group_label(k, v) for k, v in zip(group_keys, g)) or "all" for g in groups]
    return grouped_bars(path, labels, series, _label(metric), title, base=base, caption=caption)


def history_figure(path: Path, results: list[Result], caption: str | None = None) -> Path | None:
    """PSNR against step and against training seconds from the ``history`` of fit runs."""
    curves = []
    for res in results:
        hist = res.doc.get("history")
        if isinstance(hist, list) and hist and all(isinstance(h, dict) and "psnr" in h for h in hist):
            method = res.rows[0].get("method", res.variant) if res.rows else res.variant
            curves.append((f"{method} ({res.variant})", hist))
    if not curves:
        return None
    fig, (ax1, ax2) = common.plt_figure(1, 2, figsize=(9, 3.2))
    for name, hist in curves:
        ax1.plot([h.get("step") for h in hist], [h["psnr"] for h in hist], label=name)
        if all("seconds" in h for h in hist):
            ax2.plot([h["seconds"] for h in hist], [h["psnr"] for h in hist], label=name)
    ax1.set(xlabel="step", ylabel="PSNR (dB)")
    ax2.set(xlabel="training seconds", ylabel="PSNR (dB)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    common.save_figure(fig, path, caption=caption)
    return path


# an ablation study's name in words and what its value is, for figure titles and axes
ABLATION_LABELS = {"omega0": ("omega_0 of the first or of the hidden layers", "omega_0 (log scale)"),
                   "first-init": ("first-layer initialisation", "init scheme of the first layer"),
                   "hidden-init": ("hidden-layer initialisation", "init scheme of the hidden layers")}


def value_curves(path: Path, rows: list[dict], metric: str, title: str, xlabel: str = "value",
                 caption: str | None = None) -> Path | None:
    """``metric`` against the ablation ``value``, one line per (study, method, other setting)."""
    rows = [r for r in rows if "value" in r and isinstance(r.get(metric), (int, float))]
    if not rows:
        return None
    numeric = all(isinstance(r["value"], (int, float)) and r["value"] > 0 for r in rows)
    # one line per group of the settings that keep two or more values per line (omega_0 of the
    # first or of the hidden layers); settings that move with the value itself (scale,
    # first_omega_0) would make every point its own line
    other = _grouping_keys(rows, metric)
    lines: dict[str, list[tuple]] = defaultdict(list)
    for r in rows:
        name = ", ".join(f"{fmt(k, r.get(k))} layer{'s' if r.get(k) == 'hidden' else ''}" if k == "layer"
                         else f"{k} {fmt(k, r.get(k))}" for k in other) or str(r.get("method", metric))
        lines[name].append((r["value"], r[metric], r.get("psnr_heldout")))
    fig, ax = common.plt_figure(1, 1, figsize=(6, 3.2))
    order = _value_order(r["value"] for r in rows)
    heldout = metric == "psnr" and any(isinstance(p[2], (int, float)) for pts in lines.values() for p in pts)
    for i, (name, pts) in enumerate(lines.items()):
        pts = sorted(pts, key=lambda p: order.index(p[0]))
        xs = [p[0] if numeric else order.index(p[0]) for p in pts]
        style = "-" if numeric else "none"  # categories (init schemes) have no order to draw a line along
        color = f"C{i}"
        ax.plot(xs, [p[1] for p in pts], marker="o", linestyle=style, color=color,
                label=f"{name}: training pixels" if heldout else name)
        if heldout:
            ax.plot(xs, [p[2] for p in pts], marker="s", linestyle="--" if numeric else "none", color=color,
                    label=f"{name}: held-out grid", alpha=0.8)
    if numeric:
        ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(order)), [str(v) for v in order], rotation=25, fontsize=7)
    ax.set(xlabel=xlabel, ylabel=_label(metric), title=title)
    ax.grid(alpha=0.3)
    if len(lines) > 1 or heldout:
        ax.legend(fontsize=7)
    common.save_figure(fig, path, caption=caption)
    return path


# A fit "learned" the image when its PSNR is at least this far above that of the best constant
# image (the target's mean; the ablations record it): below, a run diverged or never started.
LEARNED_DB = 3.0


def _tops_per_rate(rows: list[dict], metric: str, rates: list, floor: float | None = None) -> dict:
    """Per learning rate, the rows within :data:`TIE_DB` of that rate's highest ``metric``, best
    first (a rate without rows is left out, and so is a rate whose best is below ``floor``: no
    case learned there, and ties among failed runs rank nothing)."""
    out = {}
    for lr in rates:
        at = sorted((r for r in rows if r.get("lr") == lr), key=lambda r: -r[metric])
        if at and (floor is None or at[0][metric] >= floor):
            out[lr] = [r for r in at if at[0][metric] - r[metric] <= TIE_DB]
    return out


def _failed_rates(rows: list[dict], metric: str, rates: list, floor: float | None) -> list:
    """The rates at which no row reaches ``floor`` (every case failed to learn)."""
    if floor is None:
        return []
    return [lr for lr in rates if any(r.get("lr") == lr for r in rows)
            and max(r[metric] for r in rows if r.get("lr") == lr) < floor]


def _grouping_keys(rows: list[dict], metric: str) -> list[str]:
    """The varying settings (other than the ablated ``value``) that split ``rows`` into groups of
    two or more: e.g. ``layer`` of the omega_0 ablation, not ``first_omega_0``, which moves with
    the value and would make every row its own group."""
    scored = [r for r in rows if isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
    candidates = _varying(scored, [k for k in _ordered_keys(scored)
                                   if not _is_metric(k) and k not in ("study", "seed", "value")])
    others: list[str] = []
    for k in candidates:
        sizes: dict[tuple, int] = defaultdict(int)
        for r in scored:
            sizes[tuple(r.get(c) for c in (*others, k))] += 1
        if min(sizes.values()) >= 2:
            others.append(k)
    return others


# ---------------------------------------------------------------- sections

@dataclasses.dataclass
class Section:
    """What the template shows for one experiment."""

    key: str
    results: list[Result]
    tables: list[dict] = dataclasses.field(default_factory=list)
    figures: list[dict] = dataclasses.field(default_factory=list)
    setup: list[str] = dataclasses.field(default_factory=list)
    findings: list[str] = dataclasses.field(default_factory=list)
    comparisons: list[Comparison] = dataclasses.field(default_factory=list)
    # computed sentences for the Discussion's "What did not" beyond the comparisons (e.g. a
    # baseline above SIREN on a second metric)
    lost: list[str] = dataclasses.field(default_factory=list)
    # findings of studies of one design choice each (the speed section's), after the main ones
    details: list[str] = dataclasses.field(default_factory=list)

    def to_json(self, missing: str) -> dict:
        return {"key": self.key, "available": bool(self.results), "missing": missing, "tables": self.tables,
                "figures": self.figures, "setup": self.setup, "findings": self.findings, "details": self.details}


def typeset(text: str) -> str:
    """Plain-text notation of the tasks' captions and help as the report prints it: omega_0 as
    ω₀, K -+ G as K ∓ G."""
    return text.replace("omega_0", "ω₀").replace(" -+ ", " ∓ ")


# A Discussion limit where task results come from the torch backend on a CPU (threads recorded)
CPU_REPEATABILITY = (
    "Repeatability on the CPU: the torch backend picks the library of each kind of matrix product (oneDNN or "
    "BLAS) by timing both the first time a process issues it (set_cpu_gemm('auto')), so two runs of one seed may "
    "round differently. Where training is chaotic, as when a SIREN memorises the training pixels at the larger "
    "learning rates, the final PSNR on the training pixels of a rerun can differ by several dB; the held-out "
    "PSNRs, and the runs at the paper's learning rate, moved far less. FASTSIREN_CPU_GEMM=onednn (or blas) fixes "
    "the library, which removes this source of difference.")

# The template's text width (A4, 2.1 cm margins left and right), in inches, and the resolution the
# figures are saved at (common.save_figure): a PNG of W pixels was drawn W / FIGURE_DPI inches wide.
TEXT_WIDTH_IN = (21.0 - 2 * 2.1) / 2.54
FIGURE_DPI = 120


def png_width_in(path: Path) -> float | None:
    """The width in inches a PNG was drawn at: its pixel width (IHDR) over the resolution its
    pHYs chunk records (matplotlib writes the dpi it saved at), :data:`FIGURE_DPI` without one;
    None if it is not a readable PNG."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    dpi, pos = float(FIGURE_DPI), 8
    while pos + 8 <= len(head):  # the chunks before the image data
        size, kind = int.from_bytes(head[pos:pos + 4], "big"), head[pos + 4:pos + 8]
        if kind == b"IDAT":
            break
        if kind == b"pHYs" and size == 9 and pos + 17 <= len(head) and head[pos + 16] == 1:  # per metre
            # pixels per metre, an integer: 120 dpi is stored as 4724 (119.99 dpi)
            dpi = round(int.from_bytes(head[pos + 8:pos + 12], "big") * 0.0254, 1) or dpi
            break
        pos += 12 + size
    return int.from_bytes(head[16:20], "big") / dpi


def figure(path: Path, caption: str, width: float = 0.7, half: bool = False) -> dict:
    """A figure of the report; ``half``: one of a two-column grid with its neighbours."""
    return {"file": path.name, "caption": typeset(caption), "width": width, "half": half}


# Document keys that hold per-step or per-case data, not settings (the tables and figures show them).
BULK_KEYS = ("histories", "history", "summary", "init_distributions", "published", "published_other_data")
# Keys of a nested settings dict that say nothing about how the numbers were made.
NOISE_KEYS = ("out", "progress", "torch", "triton", "cuda", "python")
# Keys that name the case a row measured: a config's single default for them (the video and frame
# of a one-triplet run) is not what a table over many cases used.
CASE_KEYS = ("video", "clip", "frame", "gap", "image", "scale")
MAX_LISTED = 12


def _setting_text(value: Any) -> str | None:
    """A settings value as text: scalars as they are, short lists joined, long ones counted."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (str, int)):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        if len(value) > MAX_LISTED:
            return ", ".join(_setting_text(v) or "" for v in value[:6]) + f", ... ({len(value)} in all)"
        return ", ".join(_setting_text(v) or "" for v in value)
    return None


# fit.network_description's reminder of the official layer counting, said once in the report's Method
_LAYER_COUNTING = re.compile("; " + re.escape(LAYER_COUNTING).replace(re.escape("{}"), r"\d+"))


def _settings_dict(value: dict, row_keys: set[str]) -> str | None:
    """A flat dict of settings (e.g. a task's config) as ``key value, ...``; keys that name the
    case of a table row (video, frame, gap) or the document's own metadata are left out, and so
    is a dict that holds anything but scalars, short lists and strings."""
    parts = []
    for k, v in value.items():
        if (k in row_keys and k in CASE_KEYS) or k in DOC_META or k in NOISE_KEYS or v is None:
            continue
        text = _setting_text(v)
        if text is None:
            if isinstance(v, dict):  # one level down (e.g. a dict of lists), nothing deeper
                inner = [f"{ik} {_setting_text(iv)}" for ik, iv in v.items() if _setting_text(iv) is not None]
                if len(inner) == len(v):
                    parts.append(f"{k} ({'; '.join(inner)})")
            continue
        if isinstance(v, str) and text.startswith(f"{k}:"):  # e.g. networks: {"siren": "siren: in 2 -> ..."}
            parts.append(text)
        else:
            parts.append(f"{k} = {text}" if isinstance(v, str) and ":" in v else f"{k} {text}")
    if not parts:
        return None
    return ("; " if any("," in p for p in parts) else ", ").join(parts)


# a results document's settings dicts shown as a table with each setting's meaning (settings_table)
SETTINGS_TABLE_KEYS = ("settings", "siren_settings")
# meanings of settings that have no command-line option of their own (the rest: the option's help)
SETTING_WORDS = {
    ("vfi", "lr"): "Adam learning rate of the space-time SIREN",
    ("vfi", "layers"): "hidden-to-hidden layers of the space-time SIREN (official counting)",
    ("vfi", "batch"): "points per Adam step of the space-time SIREN",
    ("vfi", "omega"): "omega_0 of the space-time SIREN",
    ("vfi", "flow_lr"): "Adam learning rate of the motion SIREN",
    ("vfi", "flow_hidden"): "hidden width of the motion SIREN",
    ("vfi", "flow_layers"): "hidden-to-hidden layers of the motion SIREN (official counting)",
    ("vfi", "flow_batch"): "points per Adam step of the motion SIREN",
    ("vfi", "flow_omega"): "omega_0 of the motion SIREN",
    ("vfi", "blur"): "Gaussian blur (px) of the frames at the start of the motion fit, annealed to 0 in 4 levels",
    ("sr", "tv_points"): "random high-resolution points per step of the total-variation prior",
}


def _option_help(task: str) -> dict[str, str]:
    """Each command-line option's help of ``fastsiren TASK``, by its setting name, without the
    default (the table gives the value used)."""
    import argparse
    import importlib

    try:
        module = importlib.import_module(f"fastsiren.tasks.{task}")
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
    except (ImportError, AttributeError):
        return {}
    return {a.dest: typeset(re.sub(r"\s*\(default:[^)]*\)\s*$", "", " ".join(a.help.split())))
            for a in parser._actions if a.help and a.help != argparse.SUPPRESS}


def settings_table(result: Result) -> list[dict]:
    """A results document's settings dicts (:data:`SETTINGS_TABLE_KEYS`) as tables of setting,
    value and meaning (the task's option help, or :data:`SETTING_WORDS`)."""
    helps = _option_help(result.task)
    out = []
    for key in SETTINGS_TABLE_KEYS:
        value = result.doc.get(key)
        if not isinstance(value, dict):
            continue
        body = [[cell(k), cell(_setting_text(v) or "–"),
                 cell(helps.get(k) or SETTING_WORDS.get((result.task, k), ""))]
                for k, v in value.items() if k not in DOC_META and k not in NOISE_KEYS and k not in CASE_KEYS
                and v is not None and _setting_text(v) is not None]
        if body:
            out.append(table(f"Settings of {result.variant} ({key})", ["setting", "value", "meaning"], body,
                             source=result.source()))
    return out


# why a GPU-only provider was not timed on a CPU: said once in the speed section, not per table
GPU_ONLY_REASONS = ("triton kernels need a CUDA device", "the cuda backend needs CUDA tensors",
                    "3xTF32 products run on a CUDA device only")


def describe(result: Result, tabled: Iterable[str] = ()) -> str:
    """One sentence of setup from the results document: profile, device, time, and every
    setting it records (scalars, short lists, flat dicts such as a task's config) but those
    ``tabled`` (shown by :func:`settings_table`)."""
    d = result.doc
    row_keys = {k for r in result.rows for k in r}
    extra = []
    for k, v in d.items():
        if k in DOC_META or k in BULK_KEYS or k in ("complete", "threads") or k in tabled:
            continue
        if isinstance(v, dict):
            text = _settings_dict(v, row_keys)
        else:
            text = _setting_text(v)
        if text is not None and text != "":
            extra.append(f"{k}: {text}")
    secs = d.get("seconds")
    time_ = f", {fmt('seconds', float(secs))} s in all" if isinstance(secs, (int, float)) else ""
    base = (f"{result.variant}: profile {result.profile} on {result.device()} with backend "
            f"{d.get('backend', '?')}{time_}; {_count(len(result.rows), 'row')}.")
    return _LAYER_COUNTING.sub("", base + (" " + "; ".join(extra) + "." if extra else ""))


def cost_finding(res: Result, per: str) -> list[str]:
    """``What each input costs``: the mean ``seconds`` per row of each method (a SIREN method
    fits a network per input; a classical one does not), on the results file's device."""
    secs: dict[str, list[float]] = defaultdict(list)
    for r in res.rows:
        if isinstance(r.get("seconds"), (int, float)) and "method" in r:
            secs[str(r["method"])].append(r["seconds"])
    if not secs:
        return []
    return [f"Cost per {per}, the mean seconds of each method on {res.device()}: "
            + ", ".join(f"{m} {_mean_seconds(v)}" for m, v in secs.items())
            + " (each SIREN method fits its networks anew for every input)."]


def _bytes_text(value: Any) -> str:
    """``1073741824`` -> "1 GiB" (a byte count as a results file records it)."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return str(value)
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n:,} bytes"


def _mean_seconds(values: list[float]) -> str:
    """A mean of task rows' ``seconds``, which the tasks round to milliseconds: "< 0.001" below
    that resolution, not a mean of rounded zeros and ones printed to three digits."""
    mean = statistics.fmean(values)
    return "< 0.001" if mean < 0.001 else f"{mean:.3g}"


class Builder:
    """Turns the loaded results into the report's JSON and the summary figures."""

    def __init__(self, results: dict[str, list[Result]], bench: list[dict], figures_dir: Path,
                 gemm: dict | None = None, mutations: dict[str, dict | None] | None = None, profile: dict | None = None,
                 precision: dict | None = None, malloc: dict | None = None, weighted: list[dict] | None = None,
                 cpu_gemm: list[dict] | None = None, registers: dict | None = None, auto_gemm: dict | None = None,
                 trig: dict | None = None):
        self.results, self.bench, self.figures_dir, self.gemm = results, bench, figures_dir, gemm
        self.mutations, self.profile, self.precision, self.malloc = mutations, profile, precision, malloc
        self.weighted = weighted or []  # benchmarks/weighted_cost.py's documents, one per device
        self.cpu_gemm = cpu_gemm or []  # benchmarks/cpu_gemm.py's documents (cpu-gemm*.json), by date
        self.registers = registers  # benchmarks/cuda_registers.py's sm_90 document
        self.auto_gemm = auto_gemm  # what set_cpu_gemm("auto") timed in benchmark runs (fastsiren bench)
        self.trig = trig  # benchmarks/cpu_trig.py's document: NumPy's and torch's float32 sin and cos
        self.used_figures: list[Path] = []
        self.skipped: list[str] = []  # inputs left out while building (an unreadable figure), as load_* list them
        self.limits: list[str] = []  # Discussion limits that the sections compute (e.g. a frame that carries a mean)
        self.readings: list[str] = []  # Discussion readings across a study's cases (the ablations')
        loaded = [r for rs in results.values() for r in rs]
        shared = [r for r in loaded if r.alongside]
        if shared:
            self.limits.append(
                f"Task timings: {len(shared)} of the {len(loaded)} results files come from runs that overlapped "
                "another run on the same device (by their end times and durations): "
                + "; ".join(f"{r.path.name} with {', '.join(name for name, _ in r.alongside)}" for r in shared)
                + ". Their seconds (the train s columns, the plots against training seconds, the cost lines) "
                  "measure a shared machine, not a run alone, and do not compare with other runs' seconds; their "
                  "metrics do not depend on it.")

    # -- helpers
    def _fig(self, path: Path | None, caption: str, width: float = 0.7) -> dict | None:
        """A figure at the width its PNG was drawn for (its fonts print at their own size), at
        most the text width; ``width`` (a fraction of the text width) where the PNG's size is
        unreadable."""
        if path is None:
            return None
        self.used_figures.append(path)
        natural = png_width_in(path)
        return figure(path, caption, min(1.0, natural / TEXT_WIDTH_IN) if natural else width)

    def _task_figures(self, key: str | None) -> list[dict]:
        """The PNGs the tasks wrote under the figures folder for section ``key`` (matched by
        the start of the file name); ``None``: those that match no section."""
        out = []
        if not self.figures_dir.is_dir():
            return out
        for p in sorted(self.figures_dir.glob("*.png"), key=_natural_key):  # x2 before x2.5 before x3
            if p.name.startswith("report-"):
                continue
            prefix = re.split(r"[-_.]", p.name, maxsplit=1)[0]
            if FIGURE_PREFIXES.get(prefix) == key and not self._superseded(p.stem, key):
                if png_width_in(p) is None:  # typst would stop the whole build on it
                    self.skipped.append(f"{p.name}: not a readable PNG")
                    continue
                who = f"the {key} task" if key else "a task"
                caption = common.figure_caption(p) or f"{p.stem} (written by {who})."
                threads = re.search(r"-(\d+)t-", p.name)
                if key == "bench" and threads and "thread" not in caption:  # 1- and 2-thread sweeps look alike
                    caption = caption.rstrip(".") + f"; {_count(int(threads.group(1)), 'torch thread')}."
                scaling = key == "bench" and SCALING_TAIL in caption  # many alike: two per row, tail said once
                fig = self._fig(p, caption.replace(SCALING_TAIL, ""), 0.9)
                if fig:
                    fig["half"] = scaling
                    out.append(fig)
        return out

    def _superseded(self, stem: str, key: str | None) -> bool:
        """A figure named ``<variant>-<profile>[-...]`` of a study whose table comes from
        another profile (the cpu figures once paper results exist): left out."""
        for res in self.results.get(key or "", []):
            for prof in PROFILE_ORDER:
                own = f"{res.variant}-{prof}"
                if prof != res.profile and (stem == own or stem.startswith(own + "-")):
                    return True
        return False

    def _generic(self, sec: Section, title: str) -> None:
        for res in sec.results:
            sec.setup.append(describe(res))
            sec.tables.append(rows_table(res, res.rows, f"{title}: {res.variant}"))

    # -- experiments
    def fit(self) -> Section:
        sec = Section("fit", self.results.get("fit", []))
        for res in sec.results:
            sec.setup.append(describe(res))
            sec.tables.append(rows_table(res, res.rows, f"Image fitting: {res.variant}"))
            for r in res.rows:
                if isinstance(r.get("psnr"), (int, float)):
                    size = f" at {r['size']}x{r['size']}" if "size" in r else ""
                    steps = f" after {r['steps']} steps" if "steps" in r else ""
                    secs = (f" ({fmt('seconds', float(r['seconds']))} s of training)"
                            if isinstance(r.get("seconds"), (int, float)) else "")
                    ssim = f", SSIM {fmt('ssim', r['ssim'])}" if "ssim" in r else ""
                    sec.findings.append(f"{r.get('method', '?')} fits {r.get('image', 'the image')}{size} to "
                                        f"{fmt('psnr', r['psnr'])} dB PSNR{ssim}{steps}{secs} on "
                                        f"{res.device()} (profile {res.profile}).")
            sec.comparisons += compare_methods(res.rows, "psnr", _varying(res.rows, ["image", "size"]))
        task_figs = self._task_figures("fit")
        fig = None
        if not any(f["file"].endswith("-psnr.png") for f in task_figs):  # the task drew the same curves
            caption = ("PSNR during training against step and against training seconds (fit results; "
                       + "; ".join(dict.fromkeys(r.source() for r in sec.results)) + ").")
            fig = self._fig(history_figure(self.figures_dir / "report-fit.png", sec.results, caption), caption)
        sec.figures += [f for f in [fig] if f] + task_figs
        sec.findings += [c.sentence() for c in sec.comparisons]
        return sec

    def poisson(self) -> Section:
        sec = Section("poisson", self.results.get("poisson", []))
        for res in sec.results:
            sec.setup.append(describe(res))
            sec.tables.append(rows_table(res, res.rows, f"Poisson reconstruction: {res.variant}"))
            metric = first_metric(res.rows, ("psnr",))
            if metric is None:
                continue
            by = _present(res.rows, ["supervision"]) + _varying(res.rows, ["image"])
            comps = compare_methods(res.rows, metric, by, agg="best")
            sec.comparisons += comps
            for method in _value_order(str(r.get("method")) for r in res.rows):
                rates = {r["lr"]: r[metric] for r in res.rows if str(r.get("method")) == method
                         and isinstance(r.get("lr"), (int, float)) and isinstance(r.get(metric), (int, float))}
                if len(rates) > 1 and len({round(v, 6) for v in rates.values()}) == 1:
                    sec.findings.append(
                        f"{method} scores {fmt(metric, next(iter(rates.values())))} dB on {res.variant} at every "
                        f"learning rate swept ({', '.join(fmt('lr', x) for x in sorted(rates))}): no rate moves it, "
                        "so it does not learn from this supervision (a ReLU network's Laplacian is zero whatever "
                        "its weights): what it scores is its initial network plus the unseen part fitted from the "
                        "image."
                        if method == "relu" and "laplacian" in str(res.variant) else
                        f"{method} scores {fmt(metric, next(iter(rates.values())))} dB on {res.variant} at every "
                        f"learning rate swept: no rate moves it.")
            for r in res.rows:
                if is_siren(r.get("method", "siren")) and isinstance(r.get(metric), (int, float)):
                    sup = r.get("supervision", res.variant)
                    sec.findings.append(f"{r.get('method', 'siren')} reconstructs {r.get('image', 'the image')} "
                                        f"from its {sup} at {fmt(metric, r[metric])} dB PSNR "
                                        f"(profile {res.profile}).")
        rows = [dict(r, variant=res.variant) for res in sec.results for r in res.rows]
        if len({str(r.get("method")) for r in rows}) > 1:
            profiles = _or_list(list(dict.fromkeys(r.profile for r in sec.results)))
            caption = (f"PSNR of the Poisson reconstructions per method and supervision ({profiles} profile; each "
                       "method at its best learning rate in the results; a method not run there: n/a).")
            by = _varying(rows, ["variant", "supervision"]) or ["variant"]
            fig = summary_bars(self.figures_dir / "report-poisson.png", rows, "psnr", by,
                               f"Poisson reconstruction ({profiles} profile)", agg="best", caption=caption)
            sec.figures += [f for f in [self._fig(fig, caption)] if f]
            sec.findings += self._lr_edges(rows, "psnr", by)
        sec.figures += self._task_figures("poisson")
        sec.findings += [c.sentence() for c in sec.comparisons]
        return sec

    def compare(self) -> Section:
        sec = Section("compare", self.results.get("compare", []))
        self._generic(sec, "SIREN against same-size baselines")
        rows = [dict(r, variant=res.variant) for res in sec.results for r in res.rows]
        metric = first_metric(rows, ("psnr", "psnr_y"))
        if metric:
            by = _varying(rows, ["variant", "task", "supervision", "image"])
            # each problem by its lead metric: image fitting between the pixels where it was measured
            # (the training pixels reward memorising them), a Poisson problem on its pixels
            edge = []
            for key in dict.fromkeys(tuple(r.get(k) for k in by) for r in rows):
                mine = [r for r in rows if tuple(r.get(k) for k in by) == key]
                lead = first_metric(mine, ("psnr_heldout", metric))
                sec.comparisons += compare_methods(mine, lead, by, agg="best")
                edge += self._lr_edges(mine, lead, by)  # best rates by the metric that picks them
            profiles = _or_list(list(dict.fromkeys(r.profile for r in sec.results)))
            caption = (f"{_label(metric)} on the training pixels per method, each method at its best setting (e.g. "
                       f"learning rate) in the results ({profiles} profile); groups: the problem and its supervision.")
            fig = summary_bars(self.figures_dir / "report-compare.png", rows, metric, by or ["variant"],
                               f"SIREN vs baselines, each at its best setting ({profiles} profile)", agg="best",
                               caption=caption)
            sec.figures += [f for f in [self._fig(fig, caption)] if f]
            if any("psnr_heldout" in r for r in rows):
                caption = (f"{_label('psnr_heldout')} of image fitting: on the image at twice the side, whose pixel "
                           "centres all fall between the training pixels; each method at its best learning rate by "
                           f"it ({profiles} profile).")
                fig = summary_bars(self.figures_dir / "report-compare-heldout.png", rows, "psnr_heldout",
                                   by or ["variant"], f"SIREN vs baselines between the pixels ({profiles} profile)",
                                   agg="best", caption=caption)
                sec.figures += [f for f in [self._fig(fig, caption)] if f]
            for res in sec.results:
                if any("params" in r for r in res.rows):
                    counts = {str(r.get("method")): r["params"] for r in res.rows if "params" in r}
                    lo, hi = min(counts.values()), max(counts.values())
                    sec.findings.append(f"{res.variant}: parameter counts range from {fmt('params', lo)} to "
                                        f"{fmt('params', hi)} ({100 * (hi - lo) / max(lo, 1):.2f} % apart).")
            sec.findings += edge
            self.limits += [f"SIREN against same-size baselines: {e[0].lower()}{e[1:]}" for e in edge
                            if "largest" in e]
        sec.figures += self._task_figures("compare")
        sec.findings += [c.sentence() for c in sec.comparisons]
        return sec

    @staticmethod
    def _lr_edges(rows: list[dict], metric: str, by: list[str], floor: float | None = None) -> list[str]:
        """Methods whose best learning rate (highest ``metric``) is the largest or the smallest
        of the rates swept for them: the sweep may have stopped short of their best (not said of a
        method whose best is below ``floor``: it learned at no rate, and another will not help)."""
        swept: dict[tuple, list[dict]] = defaultdict(list)
        for r in rows:
            if isinstance(r.get("lr"), (int, float)) and isinstance(r.get(metric), (int, float)) \
                    and math.isfinite(r[metric]):
                swept[(tuple(r.get(k) for k in by), str(r.get("method")))].append(r)
        edges: dict[str, dict[str, list[str]]] = {"largest": defaultdict(list), "smallest": defaultdict(list)}
        rates = set()
        for (key, method), rs in swept.items():
            lrs = sorted({float(r["lr"]) for r in rs})
            if len(lrs) < 2 or len({round(r[metric], 6) for r in rs}) == 1:  # one rate, or none moves it
                continue
            top = max(rs, key=lambda r: r[metric])
            if floor is not None and top[metric] < floor:
                continue
            rates.update(lrs)
            best = top["lr"]
            group = ", ".join(f"{k} {fmt(k, v)}" for k, v in zip(by, key)) or "all"
            for word, edge in (("largest", lrs[-1]), ("smallest", lrs[0])):
                if best == edge:
                    edges[word][group].append(method)
        out: list[str] = []
        if not rates:
            return out
        sweep = _or_list([fmt("lr", x) for x in sorted(rates)]).replace(" or ", " and ")
        for word, why in (("largest", "a larger rate might fit better, so those numbers are what the sweep found, "
                                      "a lower bound on what these methods reach with these settings"),
                          ("smallest", "a smaller rate might fit better")):
            if edges[word]:
                where = "; ".join(f"{_or_list(ms).replace(' or ', ' and ')} on {g}" for g, ms in edges[word].items())
                out.append(f"The best learning rate (highest {_short_label(metric)}) is the {word} of the rates "
                           f"swept ({sweep}) for {where}: it lies at the edge of the sweep, and {why}.")
        return out

    def ablate(self) -> Section:
        sec = Section("ablate", self.results.get("ablate", []))
        for res in sec.results:
            sec.setup.append(describe(res))
            studies = _value_order(r.get("study", res.variant) for r in res.rows)
            for study in studies:
                rows = [r for r in res.rows if r.get("study", res.variant) == study]
                metric = first_metric(rows, ("psnr", "psnr_y"))
                sec.tables.append(rows_table(res, rows, f"Ablation {study}", exclude=("study",)))
                if metric is None:
                    continue
                # the task's own figure of the study, whose left panel is this curve, stands in for it
                if not (self.figures_dir / f"{res.variant}-{res.profile}.png").exists():
                    self._ablation_curve(sec, res, str(study), rows, metric)
                # a case scoring less than LEARNED_DB above the constant image learned nothing
                floors = {m: res.doc[key] + LEARNED_DB for m, key in (("psnr", "constant_psnr"),
                                                                      ("psnr_heldout", "constant_psnr_heldout"))
                          if isinstance(res.doc.get(key), (int, float))}
                if floors:
                    sec.findings.append(
                        f"Ablation {study}: the constant image at the target's mean scores "
                        + " and ".join(f"{fmt(m, floors[m] - LEARNED_DB)} dB {what}" for m, what in
                                       (("psnr", "on the training pixels"), ("psnr_heldout", "between them"))
                                       if m in floors)
                        + f"; a case less than {LEARNED_DB:g} dB above it learned nothing (a diverged run), and no "
                        "best setting is named among such cases.")
                if any("psnr_heldout" in r for r in rows):  # between the training pixels: the lead, since
                    # a setting that memorises the pixels is best on them and worst between them
                    self.readings += self._ablation_readings(str(study), rows, metric, floors)
                    sec.findings += self._ablation_findings(str(study), rows, "psnr_heldout", floors=floors)
                    sec.findings += self._ablation_findings(str(study), rows, metric, also="psnr_heldout",
                                                            floors=floors)
                else:
                    sec.findings += self._ablation_findings(str(study), rows, metric, floors=floors)
                lead = "psnr_heldout" if any("psnr_heldout" in r for r in rows) else metric
                sec.findings += self._lr_edges(rows, lead, [k for k in ("layer", "value") if any(k in r for r in rows)],
                                               floors.get(lead))
        sec.figures += self._task_figures("ablate")
        return sec

    def _ablation_curve(self, sec: Section, res: Result, study: str, rows: list[dict], metric: str) -> None:
        """The report's own figure of an ablation: ``metric`` against the ablated value."""
        slug = re.sub(r"[^A-Za-z0-9]+", "-", study).strip("-")
        title, xlabel = ABLATION_LABELS.get(study, (study, "value"))
        both = metric == "psnr" and any("psnr_heldout" in r for r in rows)
        caption = (f"Ablation of the {title}: {_label(metric)} against {xlabel}"
                   + (" on the training pixels (circles, solid) and on the held-out grid between them "
                      "(squares, dashed)" if both else "") + f" ({res.source()}).")
        fig = value_curves(self.figures_dir / f"report-ablate-{slug}.png", rows, metric,
                           f"{title[0].upper()}{title[1:]} ({res.profile} profile)", xlabel, caption)
        f = self._fig(fig, caption, 0.75)
        if f:
            sec.figures.append(f)

    @staticmethod
    def _dev_choice(dev: Result, method: str, label: str, axes: str) -> str:
        """`` Over its N triplets ...``: the mean IE of ``label`` (a dev row the evaluation uses)
        over every triplet of the dev run, against the lowest of ``method``'s rows, and whether
        they are level (:data:`LEVEL_RULE`'s relative margin); an edge of the grid said where
        the used value sits on one."""
        means: dict[str, float] = {}
        for name in dict.fromkeys(str(r.get("method")) for r in dev.rows):
            if name == method or name.startswith(method + ","):
                ies = [r["ie"] for r in dev.rows if r.get("method") == name and isinstance(r.get("ie"), (int, float))]
                if ies:
                    means[name] = _mean(ies)
        if label not in means or len(means) < 2:
            return ""
        best = min(means, key=means.get)
        n = sum(1 for r in dev.rows if r.get("method") == label)
        text = f" Over its {n} triplets, {label} has mean IE {means[label]:.3f}"
        if best == label:
            text += f", the lowest of the {len(means)} {method} settings"
        else:
            level = abs(means[label] - means[best]) <= TIE_REL * means[best]
            text += (f"; the lowest, {best}, has {means[best]:.3f}: "
                     + (f"level (within {TIE_REL:.1%}), so the profile keeps its value" if level else
                        "lower by more than the level margin: the profile's value is not this run's best"))
        grid = dev.doc.get("flow_grid") if isinstance(dev.doc.get("flow_grid"), dict) else {}
        keys = {"blur": "blur", "smooth": "smooth", "attachment": "tvl1_attachment"}
        edges = []
        for word, key in keys.items():
            values = grid.get(key)
            m = re.search(rf"{word} ([-+0-9.e]+)", label)
            if word in axes and isinstance(values, list) and len(values) > 2 and m:
                v = float(m.group(1))
                if v in (min(values), max(values)):
                    edges.append(f"{word} {v:g} is at the {'lower' if v == min(values) else 'upper'} edge of "
                                 f"this run's grid ({', '.join(f'{x:g}' for x in values)})")
        return text + (" (" + "; ".join(edges) + ")" if edges else "") + "."

    @staticmethod
    def _vfi_chosen(results: list[Result], dev: Result) -> list[str]:
        """The dev table's row that the evaluation table's ``siren`` is (its fits and weight)."""
        from fastsiren.tasks.vfi import weighted_label

        main = next((r for r in results if "dev_frames" not in r.doc), None)
        settings = (main.doc.get("settings") or {}) if main else {}
        if isinstance(dev.doc.get("flow_grid"), dict):  # the flow methods' dev run
            used = {k: settings.get(k) for k in ("blur", "smooth", "tvl1_attachment")}
            if not all(isinstance(v, (int, float)) for v in used.values()):
                return []
            return [f"The evaluation table's motion SIREN uses blur {used['blur']:g} and smooth {used['smooth']:g}, "
                    f"its TV-L1 attachment {used['tvl1_attachment']:g} (as its settings say)."
                    + Builder._dev_choice(dev, "siren-flow", f"siren-flow, blur {used['blur']:g}, smooth "
                                                             f"{used['smooth']:g}", "blur and smooth")
                    + Builder._dev_choice(dev, "tvl1", f"tvl1, attachment {used['tvl1_attachment']:g}",
                                          "attachment")]
        if isinstance(dev.doc.get("occlusion_values"), list):  # the occlusion dev run
            used = settings.get("occlusion")
            if not isinstance(used, (int, float)):
                return []
            mine = dev.doc.get("settings") or {}
            other = [f"{k} {mine[k]:g} (the evaluation's: {settings[k]:g})" for k in ("blur", "smooth")
                     if all(isinstance(d.get(k), (int, float)) for d in (mine, settings)) and mine[k] != settings[k]]
            return [f"The evaluation table's flow methods use occlusion sharpness {used:g} (as its settings say; "
                    "0 is the plain average of the two warps)."
                    + (f" This dev run's motion SIREN ran with {' and '.join(other)}: its "
                       "rows are those of its own settings, so the evaluation's siren-flow is not one of them."
                       if other else "")]
        fits = settings.get("fits")
        sigma = dev.doc.get("shrink_sigma")
        if not isinstance(fits, int) or not isinstance(sigma, (int, float)):
            return []
        label = weighted_label(fits, sigma)
        if not any(r.get("method") == label for r in dev.rows):
            return []
        return [f"The evaluation table's siren is the row '{label}' ({fits} fits, as its settings say)."]

    @staticmethod
    def _ablation_readings(study: str, rows: list[dict], metric: str, floors: dict | None = None) -> list[str]:
        """What a study's cases say together (the Discussion's readings): whether the case that fits
        the training pixels best is also best between them, and whether the best setting between the
        pixels changes with the learning rate."""
        held = "psnr_heldout"
        scored = [r for r in rows if all(isinstance(r.get(m), (int, float)) and math.isfinite(r[m])
                                          for m in (metric, held))]
        if len(scored) < 2:
            return []
        rates = _value_order(r.get("lr") for r in scored if isinstance(r.get("lr"), (int, float)))

        def name(r: dict, rate: bool = True) -> str:
            layer = f" ({r['layer']} layer{'s' if r['layer'] == 'hidden' else ''})" if r.get("layer") else ""
            return (f"{fmt('value', r.get('value'))}{layer}"
                    + (f" at lr {fmt('lr', r['lr'])}" if rate and len(rates) > 1 else ""))
        fit, between = max(scored, key=lambda r: r[metric]), max(scored, key=lambda r: r[held])
        out = []
        if fit is not between and between[held] - fit[held] > TIE_DB:
            out.append(f"Ablation {study}: the case that fits the training pixels best ({name(fit)}, "
                       f"{fmt(metric, fit[metric])} dB) scores {fmt(held, fit[held])} dB between them, "
                       f"{between[held] - fit[held]:.2f} dB below the best case there ({name(between)}, "
                       f"{fmt(held, between[held])} dB): a fit of the given pixels and a representation of the "
                       "image between them rank the settings differently, so a setting chosen on its training "
                       "PSNR can be one that memorises.")
        tops = _tops_per_rate(scored, held, rates, (floors or {}).get(held))
        if len(tops) > 1 and not set.intersection(*({name(r, False) for r in t} for t in tops.values())):
            out.append(f"Ablation {study}: the best case between the pixels changes with the learning rate ("
                       + "; ".join(f"lr {fmt('lr', lr)}: {_or_list([name(r, False) for r in t])}, "
                                   f"{fmt(held, t[0][held])} dB" for lr, t in tops.items())
                       + f"; cases within {TIE_DB:g} dB of a rate's best count as best"
                       + ("; rates at which no case learned are left out" if len(tops) < len(rates) else "")
                       + "): an ablation at one rate ranks the settings partly by how well each suits that rate.")
        return out

    @staticmethod
    def _ablation_findings(study: str, rows: list[dict], metric: str, also: str | None = None,
                           floors: dict | None = None) -> list[str]:
        """Best and worst value of the ablation, per group of the other varying settings
        (e.g. omega_0 of the first layer and of the hidden layers separately); with ``also``, the
        best and worst settings' value of that metric too. Where the run sweeps learning rates,
        each setting counts at its best rate for ``metric`` (named), and without ``also`` one more
        sentence gives the best setting at each rate."""
        scored = [r for r in rows if isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
        rates = _value_order(r.get("lr") for r in scored if isinstance(r.get("lr"), (int, float)))
        swept = len(rates) > 1
        if swept:  # one row per setting: its best rate
            best_of: dict[tuple, dict] = {}
            for r in scored:
                key = tuple((k, repr(v)) for k, v in r.items() if k != "lr" and not _is_metric(k))
                if key not in best_of or r[metric] > best_of[key][metric]:
                    best_of[key] = r
            settings = list(best_of.values())
        else:
            settings = scored
        # the rate is each setting's own pick, never a group of its own
        others = _grouping_keys([{k: v for k, v in r.items() if k != "lr"} for r in settings] if swept else settings,
                                metric)
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for r in settings:
            groups[tuple(r.get(k) for k in others)].append(r)
        out = []
        label = _label(metric)

        def at(r: dict) -> str:
            return f", at lr {fmt('lr', r.get('lr'))}" if swept else ""
        for key, rs in groups.items():
            best = max(rs, key=lambda r: r[metric])
            worst = min(rs, key=lambda r: r[metric])
            where = ", ".join(f"{k} {fmt(k, v)}" for k, v in zip(others, key))
            what = f"value {fmt('value', best.get('value'))}" if "value" in best else "the only setting"

            def other(r: dict) -> str:
                v = r.get(also) if also else None
                if not isinstance(v, (int, float)):
                    return ""
                return f" ({_label(also).removesuffix(' (dB)')} {fmt(also, v)} dB)"
            def nothing(r: dict) -> str:
                floor = (floors or {}).get(metric)
                between = " between the pixels" if metric == "psnr_heldout" else ""
                return (f"; it learned nothing{between}" + (" at any rate" if swept else "")
                        if floor is not None and r[metric] < floor else "")
            each = (f", each setting at the learning rate that maximises its {_short_label(metric)}" if swept
                    else "")
            out.append(f"Ablation {study}{' (' + where + ')' if where else ''}, {label}{each}: the best "
                       f"setting ({what}{at(best)}) reaches "
                       f"{fmt(metric, best[metric])} dB{other(best)} and the worst (value "
                       f"{fmt('value', worst.get('value'))}{at(worst)}{nothing(worst)}) {fmt(metric, worst[metric])} dB"
                       f"{other(worst)}, a spread of {best[metric] - worst[metric]:.2f} dB over {len(rs)} settings.")
            if swept and also is None:
                mine = [r for r in scored if tuple(r.get(k) for k in others) == key]
                floor = (floors or {}).get(metric)
                tops = _tops_per_rate(mine, metric, rates, floor)
                failed = _failed_rates(mine, metric, rates, floor)
                listed = "; ".join(f"lr {fmt('lr', lr)}: {_or_list([fmt('value', r.get('value')) for r in t])} "
                                   f"({fmt(metric, t[0][metric])} dB)" for lr, t in tops.items())
                between = " between the pixels" if metric == "psnr_heldout" else ""
                none = (f"; at lr {_or_list([fmt('lr', lr) for lr in failed])} no case learned{between} (all "
                        f"below {fmt(metric, floor)} dB)" if failed else "")
                if not tops:
                    continue
                same = bool(set.intersection(*({repr(r.get("value")) for r in t} for t in tops.values())))
                verdict = ("only one rate has a case that learned." if len(tops) == 1 else
                           "one setting is among the best at every rate where a case learned." if same else
                           "which setting wins depends on the rate.")
                out.append(f"Ablation {study}{' (' + where + ')' if where else ''}, {label}: the best setting at "
                           f"each learning rate (with those within {TIE_DB:g} dB of it): {listed}{none}; {verdict}")
        return out

    def sr(self) -> Section:
        sec = Section("sr", self.results.get("sr", []))
        for res in sec.results:
            sec.setup.append(describe(res, SETTINGS_TABLE_KEYS))
            sec.tables += settings_table(res)
            metric = first_metric(res.rows, ("psnr_y", "psnr"))
            if metric and "scale" in _present(res.rows, ["scale"]) and "method" in _ordered_keys(res.rows):
                sec.tables.append(pivot_table(res, res.rows, "method", "scale", metric,
                                              "Super-resolution, mean over images"))
                if "ssim_y" in _ordered_keys(res.rows) or "ssim" in _ordered_keys(res.rows):
                    sm = "ssim_y" if "ssim_y" in _ordered_keys(res.rows) else "ssim"
                    sec.tables.append(pivot_table(res, res.rows, "method", "scale", sm,
                                                  "Super-resolution, mean over images"))
                if "image" in _ordered_keys(res.rows):
                    for scale in _value_order(r.get("scale") for r in res.rows):
                        rows = [r for r in res.rows if r.get("scale") == scale]
                        sec.tables.append(pivot_table(res, rows, "method", "image", metric,
                                                      f"Super-resolution x{fmt('scale', scale)} per image",
                                                      mean_column=True, column_label=""))
                comps = compare_methods(res.rows, metric, ["scale"], pair=["image"])
                sec.comparisons += comps
                sec.findings += self._sr_findings(res.rows, metric)
                lost = self._sr_second_metric(res.rows, metric)
                srcnn = self._srcnn_text(res) if any("srcnn" in n for n in lost) else None
                joined = " ".join(lost + [srcnn] if srcnn else lost)
                sec.lost += [joined[0].lower() + joined[1:]] if lost else []  # after "sr – "
                sec.findings += lost + ([srcnn] if srcnn else [])
                sizes = list(dict.fromkeys(f"{r['hr_h']}x{r['hr_w']}" for r in res.rows if "hr_h" in r and "hr_w" in r))
                if sizes:
                    sec.findings.insert(0, f"The high-resolution images are {_or_list(sizes)} px (profile "
                                           f"{res.profile}); at scale s the network fits an input 1/s of that side.")
                sec.findings += cost_finding(res, "image and scale")
                caption = f"Mean {_label(metric)} per method and upscaling factor ({res.source()})."
                fig = summary_bars(self.figures_dir / "report-sr.png", res.rows, metric, ["scale"],
                                   f"Super-resolution, mean over images ({res.profile} profile)", caption=caption)
                f = self._fig(fig, caption)
                if f:
                    sec.figures.append(f)
            else:
                sec.tables.append(rows_table(res, res.rows, f"Super-resolution: {res.variant}"))
        sec.figures += self._task_figures("sr")
        sec.findings += [c.sentence() for c in sec.comparisons]
        return sec

    @staticmethod
    def _sr_second_metric(rows: list[dict], metric: str) -> list[str]:
        """Where a baseline beats the best SIREN variant (by mean ``metric``) on SSIM, per image
        and scale: one sentence, or none when no baseline does."""
        sm = "ssim_y" if metric.endswith("_y") else "ssim"
        scored = [r for r in rows if isinstance(r.get(sm), (int, float)) and isinstance(r.get(metric), (int, float))]
        sirens = {m: _mean(r[metric] for r in scored if str(r.get("method")) == m)
                  for m in dict.fromkeys(str(r.get("method")) for r in scored) if is_siren(m)}
        if not sirens:
            return []
        best = max(sirens, key=sirens.get)
        own = {(r.get("image"), r.get("scale")): r for r in scored if str(r.get("method")) == best}
        scales = _value_order(r.get("scale") for r in own.values())
        below: dict[str, list[tuple]] = {}  # baseline -> cases where its SSIM is higher
        cases: dict[str, list[tuple]] = {}
        for b in dict.fromkeys(str(r.get("method")) for r in scored if not is_siren(r.get("method"))):
            theirs = {(r.get("image"), r.get("scale")): r for r in scored if str(r.get("method")) == b}
            cases[b] = [k for k in own if k in theirs]
            below[b] = [k for k in cases[b] if theirs[k][sm] > own[k][sm]]
        ranked = sorted((b for b in below if below[b]), key=lambda b: -len(below[b]))
        if not ranked:
            return []
        top = ranked[0]
        theirs = {(r.get("image"), r.get("scale")): r for r in scored if str(r.get("method")) == top}
        per_scale = ", ".join(f"x{fmt('scale', sc)} {sum(k[1] == sc for k in below[top])} of "
                              f"{sum(k[1] == sc for k in cases[top])}" for sc in scales)
        mean_below = [sc for sc in scales
                      if _mean(theirs[k][sm] for k in cases[top] if k[1] == sc)
                      > _mean(own[k][sm] for k in cases[top] if k[1] == sc)]
        psnr_above = sum(theirs[k][metric] > own[k][metric] for k in cases[top])
        others = ", ".join(f"{b} on {len(below[b])}" for b in ranked[1:])
        s, m_ = _short_label(sm), _short_label(metric)
        return [f"By {s} ({direction(sm)}), {best}, the SIREN variant with the best mean {m_}, is below {top} on "
                f"{len(below[top])} of {len(cases[top])} images and scales ({per_scale}) and below it in the mean "
                f"over images at {len(mean_below)} of {_count(len(scales), 'scale')}"
                + (f"; it is also below {others} of its {len(own)} images and scales" if others else "")
                + f". By {m_}, {top} is above it on {psnr_above} of the {len(cases[top])}."]

    @staticmethod
    def _srcnn_text(res: Result) -> str | None:
        """What the ``srcnn`` baseline is: the record of its training in the results file, and
        its architecture from the committed weights when their record is that one."""
        tr = res.doc.get("srcnn_training")
        if not isinstance(tr, dict):
            return None
        arch = ""
        try:
            import inspect

            import torch

            from fastsiren.sr_ops import SRCNN
            from fastsiren.tasks.sr import WEIGHTS

            record = json.loads(WEIGHTS.with_suffix(".json").read_text())
            if all(record.get(k) == tr.get(k) for k in ("date", "steps", "commit")):  # the weights evaluated
                sd = torch.load(WEIGHTS, map_location="cpu", weights_only=True)["state_dict"]
                convs = [k for k in sd if k.endswith(".weight") and sd[k].dim() == 4]
                sizes = "-".join(str(sd[k].shape[-1]) for k in convs)
                filters = [int(sd[k].shape[0]) for k in convs[:-1]]
                paper = [p.default for p in inspect.signature(SRCNN.__init__).parameters.values()
                         if p.name in ("f1", "f2")]
                arch = (f": {sizes} convolutions with {' and '.join(map(str, filters))} filters (the paper's "
                        f"{' and '.join(map(str, paper))}) whose output is added to the bicubic input")
        except (OSError, ValueError, KeyError, ImportError, RuntimeError):
            arch = ""
        images = tr.get("images") if isinstance(tr.get("images"), list) else []
        scales = tr.get("scales") if isinstance(tr.get("scales"), list) else []
        unseen = [sc for sc in _value_order(r.get("scale") for r in res.rows)
                  if isinstance(sc, (int, float)) and scales and sc not in scales]
        secs = tr.get("train_seconds")
        frames = [n for n in images if "[" in str(n)]  # clip[t]: frame t of a bundled clip
        data_ = " and ".join(x for x in (_count(len(images) - len(frames), "bundled image") if len(frames) < len(images)
                                         else "", _count(len(frames), "frame") + " of the bundled clips" if frames
                                         else "") if x)
        excluded = " (the evaluation images excluded)" if tr.get("excluded") else ""
        both = _or_list([fmt('scale', x) for x in scales]).replace(' or ', ' and ') if scales else ""
        return (f"The srcnn baseline is a small SRCNN trained in this project, not the published model{arch}. It was "
                f"trained once, on the luma of {data_ or 'bundled data'}{excluded} with the evaluation's degradation, "
                f"for {tr.get('steps', '?')} Adam steps of {tr.get('batch', '?')} patches of {tr.get('patch', '?')}x"
                f"{tr.get('patch', '?')} px each (lr {fmt('lr', tr.get('lr'))}"
                + (f", {fmt('seconds', float(secs))} s on {_count(int(tr.get('threads', 1)), 'CPU thread')}"
                   if isinstance(secs, (int, float)) else "")
                + ")" + (f", one network for scales {both}" if scales else "")
                + (f", at commit {_commit(tr)} on {str(tr['date'])[:10]}" if tr.get("commit") and tr.get("date")
                   else "")
                + (f"; at x{', x'.join(fmt('scale', x) for x in unseen)}, a scale it was not trained for, the "
                   "same network corrects the bicubic upsampling" if unseen else "")
                + ". It is weaker than the published SRCNN, trained longer on more data, whose numbers the other-data "
                  "table gives.")

    @staticmethod
    def _sr_findings(rows: list[dict], metric: str) -> list[str]:
        """Each SIREN method against bicubic: mean gain per scale and on how many images it wins."""
        out = []
        methods = list(dict.fromkeys(str(r.get("method")) for r in rows))
        bicubic = next((m for m in methods if "bicubic" in m.lower()), None)
        if bicubic is None:
            return out
        for m in (m for m in methods if is_siren(m)):
            for scale in _value_order(r.get("scale") for r in rows):
                ref = {r.get("image"): r[metric] for r in rows
                       if r.get("scale") == scale and str(r.get("method")) == bicubic and metric in r}
                own = {r.get("image"): r[metric] for r in rows
                       if r.get("scale") == scale and str(r.get("method")) == m and metric in r}
                common_imgs = [i for i in own if i in ref]
                if not common_imgs:
                    continue
                gains = [own[i] - ref[i] for i in common_imgs]
                wins = sum(g > 0 for g in gains)
                out.append(f"x{fmt('scale', scale)}: {m} is {sum(gains) / len(gains):+.2f} dB against {bicubic} "
                           f"on average ({_label(metric)}), better on {wins} of {len(gains)} images.")
        return out

    def vfi(self) -> Section:
        sec = Section("vfi", self.results.get("vfi", []))
        frame_notes: list[str] = []  # which frames were evaluated
        ie_notes: list[str] = []  # the IE medians, and a frame that carries the mean
        for res in sec.results:
            first = res is next((r for r in sec.results if "dev_frames" not in r.doc), None)
            sec.setup.append(describe(res, SETTINGS_TABLE_KEYS if first else ()))
            sec.tables += settings_table(res) if first else []  # the dev runs' settings: inline, as tuning runs
            first_table = len(sec.tables)
            rows = res.rows
            keys = _ordered_keys(rows)
            groups = _varying(rows, ["video", "clip", "gap"])
            # a tuning run on frames the evaluation never uses: its table, no findings
            dev = "dev_frames" in res.doc
            name = ("Frame interpolation on the dev subset (tuning; frames the evaluation never uses)" if dev
                    else "Frame interpolation")
            title = f"{name}, mean over frames"
            rows_caption = title if dev else f"{name}: {res.variant}"
            for metric in _present(rows, ["ie", "psnr"]):
                if "method" in keys and groups:
                    rows_g = [dict(r, setting=", ".join(fmt(k, r.get(k)) if isinstance(r.get(k), str)
                                                        else f"{k} {fmt(k, r.get(k))}" for k in groups))
                              for r in rows]
                    sec.tables.append(pivot_table(res, rows_g, "method", "setting", metric, title, column_label=""))
                    if metric == "ie" and not dev and "frame" in keys:  # a few frames can carry the mean
                        sec.tables.append(pivot_table(res, rows_g, "method", "setting", metric,
                                                      f"{name}, median over frames", column_label="", agg="median"))
                elif "method" in keys:
                    sec.tables.append(rows_table(res, rows, rows_caption))
            if not _present(rows, ["ie", "psnr"]):
                sec.tables.append(rows_table(res, rows, rows_caption))
            if dev:
                chosen = self._vfi_chosen(sec.results, res)
                for t in sec.tables[first_table:]:
                    t["notes"] += chosen
            else:
                for metric in _present(rows, ["ie", "psnr"]):
                    sec.comparisons += compare_methods(rows, metric, groups, pair=[
                        k for k in ("video", "clip", "gap", "frame") if k in keys and k not in groups])
                frames, after_ie, limits = self._vfi_frames(res, groups)
                frame_notes += frames
                ie_notes += after_ie + cost_finding(res, "triplet")
                self.limits += limits
            metric = first_metric(rows, ("ie", "psnr"))
            if not dev and (self.figures_dir / f"vfi-{res.profile}-ie.png").exists():
                metric = None  # the task's own summary (against the blend, with spread and n) is shown
            if metric == "ie" and any(r.get("method") == "blend" for r in rows):
                # clips differ in IE by far more than methods do: plot each method against the blend
                rows, metric = _minus_blend(rows), "ie_vs_blend"
            if metric:
                caption = (("Dev subset (tuning; frames the evaluation never uses), " + res.variant + ": m" if dev
                            else "M") + f"ean {_label(metric)} per method over the triplets of each clip and gap"
                           + (" (below zero: better than the linear blend)" if metric == "ie_vs_blend" else "")
                           + f" ({res.source()}).")
                fig = summary_bars(self.figures_dir / f"report-{res.variant}.png", rows, metric,
                                   groups or ["method"], f"{name}: mean over frames ({res.profile} profile)",
                                   caption=caption)
                f = self._fig(fig, caption)
                if f:
                    sec.figures.append(f)
        sec.figures += self._task_figures("vfi")
        what = " and ".join(k for k in ("video", "clip", "gap") if any(k in c.group for c in sec.comparisons))
        sec.findings += frame_notes
        for metric in dict.fromkeys(c.metric for c in sec.comparisons):  # each metric counted on its own
            sec.findings.append(tally(sec.comparisons, metric, what, "mean ", " over each setting's frames"))
            sec.findings += [f"{_short_label(metric)}: {c.sentence()}" for c in sec.comparisons if c.metric == metric]
            if metric == "ie":
                sec.findings += ie_notes
        return sec

    # a frame carries a mean when its share of a method's summed metric is above this many times
    # the even share (1 / the number of frames)
    DOMINANT = 3.0

    @classmethod
    def _vfi_frames(cls, res: Result, groups: list[str]) -> tuple[list[str], list[str], list[str]]:
        """The evaluated frames of a VFI table, listed; and, for IE, the tally of the medians
        over each setting's frames and the frame (of a clip, over its gaps) that carries the
        mean IE, when one holds more than :attr:`DOMINANT` times a frame's even share of a
        method's summed IE; and that frame, in one line for the Discussion's limits."""
        rows = [r for r in res.rows if "frame" in r and "method" in r]
        if not rows:
            return [], [], []
        clip = next((k for k in ("video", "clip") if any(k in r for r in rows)), None)
        clips = _value_order(r.get(clip) for r in rows) if clip else [None]
        gaps = _value_order(r.get("gap") for r in rows if "gap" in r)
        triplets = {(r.get(clip), r["frame"], r.get("gap")) for r in rows}
        listing = "; ".join((f"{c} " if c is not None else "") + ", ".join(
            fmt("frame", f) for f in _value_order(r["frame"] for r in rows if r.get(clip) == c)) for c in clips)
        at = (f", each at gap{'s' if len(gaps) > 1 else ''} "
              f"{_or_list([fmt('gap', g) for g in gaps]).replace(' or ', ' and ')}" if gaps else "")
        frames = [f"Evaluated frames ({res.path.name}, {_count(len(triplets), 'triplet')}): the predicted frame K of "
                  f"each clip{at}: {listing}."]
        scored = [r for r in rows if isinstance(r.get("ie"), (int, float)) and math.isfinite(r["ie"])]
        if not scored:
            return frames, [], []
        after: list[str] = []
        medians = compare_methods(scored, "ie", groups, agg="median")
        what = " and ".join(k for k in ("video", "clip", "gap") if k in groups)
        if medians:
            after.append(tally(medians, "ie", what, "median ", " over each setting's frames", "; the table of medians"))
        units = _value_order((r.get(clip), r["frame"]) for r in scored)
        methods = _value_order(str(r["method"]) for r in scored)
        share: dict[str, dict[tuple, float]] = {}
        for m in methods:
            total = sum(r["ie"] for r in scored if str(r["method"]) == m)
            if total > 0:
                share[m] = {u: sum(r["ie"] for r in scored if str(r["method"]) == m and (r.get(clip), r["frame"]) == u)
                            / total for u in units}
        if len(units) < 2 or not share:
            return frames, after, []
        even = 1 / len(units)
        top = max(units, key=lambda u: max(sh[u] for sh in share.values()))
        hi = max(sh[top] for sh in share.values())
        if hi <= cls.DOMINANT * even:
            return frames, after, []
        lo = min(sh[top] for sh in share.values())
        where = f"frame {fmt('frame', top[1])}" + (f" of {top[0]}" if top[0] is not None else "")
        top_gaps = _value_order(r.get("gap") for r in scored if (r.get(clip), r["frame"]) == top and "gap" in r)
        at_gaps = (f" (gap{'s' if len(top_gaps) > 1 else ''} "
                   f"{_or_list([fmt('gap', g) for g in top_gaps]).replace(' or ', ' and ')})" if top_gaps else "")
        with_ = {m: _mean(r["ie"] for r in scored if str(r["method"]) == m) for m in methods}
        without = {m: _mean(r["ie"] for r in scored if str(r["method"]) == m and (r.get(clip), r["frame"]) != top)
                   for m in methods}
        best_with = min(with_, key=with_.get)
        best_without = min(without, key=without.get)
        after.append(
            f"One frame carries the mean IE: {where}{at_gaps} holds {lo:.0%} to {hi:.0%} of each "
            f"method's IE summed over all {_count(len(triplets), 'triplet')}, against an even share of {even:.0%} "
            f"for each of the {len(units)} frames (flagged above {cls.DOMINANT:g} times that). The mean IE over all "
            "frames, with it and without it: " + ", ".join(f"{m} {fmt('ie', with_[m])} and {fmt('ie', without[m])}"
                                                          for m in methods)
            + f"; the lowest is {best_with} with it" + (" and without it." if best_with == best_without
                                                        else f" and {best_without} without it."))
        limit = (f"Frame interpolation: one frame, {where}{at_gaps}, holds {lo:.0%} to {hi:.0%} of each method's "
                 f"summed IE over the {_count(len(triplets), 'triplet')} of {res.path.name}, so the means that "
                 "include it (its clip's and the overall one) depend on it more than on any other frame; the medians "
                 "over frames are tabulated beside the means.")
        return frames, after, [limit]

    def speed(self) -> Section:
        """Benchmark tables per (device, suite) and speedup figures, from the CSV rows."""
        sec = Section("bench", [])
        self._gemm(sec)
        for study in (self._malloc, self._trig, self._weighted, self._registers, self._auto_gemm):
            self._detail(sec, study)
        self._cpu_drift()
        rows = self.bench
        if not rows:
            sec.figures += self._task_figures("bench")
            return sec
        by_dev_suite: dict[tuple, list[dict]] = defaultdict(list)
        for r in rows:
            by_dev_suite[(str(r.get("device", "?")), str(r.get("suite", r["_file"])))].append(r)
        speed_col = next((k for k in _ordered_keys(rows) if "speedup" in k.lower()), None)
        said: set[str] = set()  # the long table notes, in full once, then named
        for (dev, suite), all_rs in sorted(by_dev_suite.items()):
            rs = [r for r in all_rs if r.get("status", "ok") == "ok"] or all_rs
            # one table per thread count, of the fixed sizes; the scaling sweeps are the figures
            threads = _value_order(r.get("threads") for r in all_rs if not r.get("sweep"))
            # the providers this suite has on any device: one absent here is named in the table's notes
            # (on a CPU not those that need a GPU: their CPU rows would only be skips)
            on_cpu = all(r.get("device_type") == "cpu" for r in all_rs)
            known = [p for p in dict.fromkeys(str(r.get("provider")) for r in rows if r.get("suite") == suite
                                              and not r.get("sweep"))
                     if not (on_cpu and (p.split("+")[0] in ("triton", "cuda") or p.endswith("+3xtf32")))]
            for th in threads:
                t_all = [r for r in all_rs if not r.get("sweep") and r.get("threads") == th]
                sec.tables.append(self._bench_table(dev, suite, th, t_all, [r for r in all_rs if r.get("sweep")
                                                                            and r.get("threads") == th], known,
                                                    said=said))
            if speed_col:  # the tables' fixed sizes (a sweep's extremes say more of the reference's growth)
                sec.findings += self._speed_findings(dev, suite, [r for r in rs if not r.get("sweep")], speed_col)
            sec.findings += self._memory_findings(dev, suite, [r for r in rs if not r.get("sweep")])
            # the targets are set at the default size (and the ratios below pair rows of one size)
            suite_rows = [r for r in rs if not r.get("sweep") and r.get("device_type") == "cuda"
                          and str(r.get("size")) == "default"]
            for t in gpu_targets(suite_rows):
                fair = self._against_compiled_reference(suite_rows, t) if t["reference_overstated"] else ""
                sec.findings.append(
                    f"On {dev}, suite {suite} (rows of {_dates(suite_rows)}), against the targets of {t['target']:g}x "
                    f"the reference and a floor fraction of at least {GPU_FLOOR_TARGET:g}: "
                    + "; ".join(f"{p} {speedup_text(x, t['target'])} ({'met' if x >= t['target'] else 'missed'}) "
                                + (f"at floor fraction {speedup_text(f, GPU_FLOOR_TARGET)[:-1]} "
                                   f"({'met' if f >= GPU_FLOOR_TARGET else 'missed'})" if math.isfinite(f)
                                   else "(floor not measured)") for p, x, f in t["providers"])
                    + f". A provider whose GEMMs run at cuBLAS fp32 speed cannot beat the reference by more "
                      f"than {t['ceiling']:.2f}x (the ceiling"
                    + (", over the reverse-mode gradient's share of those GEMMs" if suite == "poisson-grad" else "")
                    + ")"
                    + ("; that reference recorded an autograd graph during inference, so both figures are "
                       "overstated" + fair if t["reference_overstated"] else "")
                    + ".")
        self._cpu_targets(sec, rows)
        self._detail(sec, lambda s: self._block_threads(s, rows))
        scaling: dict[tuple, list[dict]] = defaultdict(list)
        for r in rows:
            if r.get("sweep") and r.get("device_type") == "cpu":
                scaling[(str(r.get("device", "?")), str(r.get("threads", "?")))].append(r)
        for (dev, threads), rs in sorted(scaling.items()):
            verdict = scaling_target_text([{k: str(v) for k, v in r.items()} for r in rs])
            if verdict:
                n_threads = _count(int(threads), "torch thread") if threads.isdigit() else f"{threads} torch threads"
                tables = {r.get("run_id") for r in self.bench if not r.get("sweep") and str(r.get("device")) == dev
                          and str(r.get("threads")) == threads}
                other = ("" if {r.get("run_id") for r in rs} <= tables else
                         "; other runs than the tables', and CPU timings move far between runs "
                         "(the Discussion's limits), so a sweep and a table of another run need not agree")
                sec.findings.append(f"Scaling sweeps on {dev} with {n_threads} (rows of {_dates(rs)}{other}), "
                                    "against the CPU speed targets of the torch backend over reference on the "
                                    "Poisson steps (the target lines under the CPU tables), measured in those runs: "
                                    + verdict)
        if speed_col:
            for dev in sorted({d for d, _ in by_dev_suite}):
                # the tables' fixed-size rows (not the sweeps), reference (1x by definition) left out
                dev_rows = [dict(r, method=str(r.get("provider", "?")),
                                 case=str(r.get("suite", "?")) + (f" {r['phase']}" if r.get("suite") == "layer"
                                                                  and r.get("phase") else ""))
                            for r in rows if str(r.get("device", "?")) == dev and not r.get("sweep")
                            and isinstance(r.get(speed_col), (int, float))
                            and str(r.get("provider", "")).lower() != "reference"]
                # one size, so that a bar's mean does not pair runs of different dates (the sizes of a
                # table may come from different runs): the default size where there is one
                if any(r.get("size") == "default" for r in dev_rows):
                    dev_rows = [r for r in dev_rows if r.get("size") == "default"]
                dev_rows.sort(key=lambda r: (r["case"], str(r.get("threads"))))
                n_threads = len({r.get("threads") for r in dev_rows if r.get("threads") is not None})
                keys = ["case", "threads"] if n_threads > 1 else ["case"]
                slug = re.sub(r"[^A-Za-z0-9]+", "-", dev).strip("-").lower()
                sizes = ", ".join(dict.fromkeys(str(r.get("size")) for r in dev_rows))
                caption = (f"Speedup over the reference per provider and benchmark (suite, and phase of the layer "
                           f"suite{'; torch threads' if n_threads > 1 else ''}) on {dev}"
                           + (f" at size {sizes} ({_dates(dev_rows)})" if "," not in sizes else
                              f": the geometric mean over the benchmark sizes of the tables ({sizes})")
                           + ", on a log axis from 1x (a bar up is "
                           "faster than the reference, down slower; no bar: not run there). The tables give each case.")
                fig = summary_bars(self.figures_dir / f"report-bench-{slug}.png", dev_rows, speed_col, keys,
                                   f"speedup over reference on {dev}", agg="geomean", base=1.0, caption=caption)
                f = self._fig(fig, caption)
                if f:
                    sec.figures.append(f)
        self._detail(sec, self._profile)
        self._precision(sec)
        sec.figures += self._task_figures("bench")
        return sec

    @staticmethod
    def _detail(sec: Section, study: Callable[[Section], None]) -> None:
        """Run ``study`` and move the findings it adds to ``sec.details``: one design choice
        against its alternative, said after the section's main findings."""
        start = len(sec.findings)
        study(sec)
        sec.details += sec.findings[start:]
        del sec.findings[start:]

    def _profile(self, sec: Section) -> None:
        """Device time per step and its largest kernel, per suite and provider (benchmarks/profile_step.py)."""
        doc = self.profile
        if not doc or not doc.get("rows"):
            return
        first: dict[tuple[str, str], dict] = {}
        for r in doc["rows"]:
            first.setdefault((r["suite"], r["provider"]), r)  # rows come largest kernel first

        def short(name: str) -> str:
            name = re.sub(r"^void\s+", "", name).replace("(anonymous namespace)::", "")
            return re.split(r"[<(]", name)[0].split("::")[-1][:40] or name[:40]

        body = [[cell(s), cell(p), cell(f"{r['provider_total_ms']:.3g}"), cell(short(r["kernel"])),
                 cell(f"{100 * r['share']:.0f}%")] for (s, p), r in first.items()]
        sec.tables.append(table(
            f"Where a step's device time goes on {doc['device']}: the kernels' total per step and the largest kernel",
            ["suite", "provider", "device ms per step", "largest kernel", "its share"], body, lead=2,
            source=f"torch.profiler, size {doc.get('profile', '?')}; commit {_commit(doc)}; "
                   f"file {PROFILE_FILE}",
            notes=[f"Relabelled: {doc['relabelled']}."] if isinstance(doc.get("relabelled"), str) else []))
        for (s, p), r in first.items():
            if p.startswith("triton") and r["share"] >= 0.4:
                sec.findings.append(f"Suite {s} on {doc['device']}: the Triton step ({p}) spends "
                                    f"{100 * r['share']:.0f}% of its device time in {short(r['kernel'])}.")

    def _precision(self, sec: Section) -> None:
        """Each Triton precision's error against float64 and the fit it reaches (benchmarks/precision.py)."""
        doc = self.precision
        if not doc or not doc.get("rows"):
            return
        cols = ["precision", "training", "init_value_err", "fitted_value_err", "fitted_grad_err", "fitted_lap_err",
                "psnr", "step_ms"]
        cols += [k for k in ("render_psnr", "render_ms") if any(k in r for r in doc["rows"])]  # newer runs
        body = [[cell(fmt(k, r.get(k)) if r.get(k) is not None else "") for k in cols] for r in doc["rows"]]
        heads = {"training": "a training precision", "init_value_err": "value err, init",
                 "fitted_value_err": "value err",
                 "fitted_grad_err": "grad err", "fitted_lap_err": "Laplacian err", "psnr": "fit PSNR (dB)",
                 "step_ms": "step (ms)", "render_psnr": "render PSNR (dB)", "render_ms": "render (ms)"}
        sec.tables.append(table(
            f"Triton matmul precisions against float64 on {doc['device']}: scaled errors (the largest absolute "
            "error over the largest absolute float64 value) of the value at initialisation and of the value, "
            "gradient and Laplacian of a fitted network; the PSNR of a fit trained at that precision and its time "
            "per step; the PSNR and time of a render at that precision (fp16 and bf16 are for inference only, "
            "so their training cells are empty). " + self._precision_settings(doc), [heads.get(k, k) for k in cols],
            body, lead=1, source=f"commit {_commit(doc)}; {str(doc.get('date', '?'))[:10]}; file {PRECISION_FILE}",
            notes=[f"step (ms): {doc['step_timing']}." if doc.get("step_timing") else
                   "step (ms) in this file is the mean over every step of a fit, the first ones' kernel compilation "
                   "included (the script now times steps after them): Triton's fits of a few hundred steps carry "
                   "their compilation, so these times are not the speed tables' and the training default picked "
                   "from them (the fastest passing precision) rests on them."]))
        sec.findings.append(f"The rule '{doc.get('rule', '?')}' picks {doc.get('recommended_default', '?')} as the "
                            f"default training precision on {doc['device']}"
                            + ("." if doc.get("step_timing") else
                               ", from step times that include the kernels' compilation (the table's note): a pick "
                               "that waits for a rerun of the study, timed after compilation."))
        if "recommended_infer_default" in doc:
            sec.findings.append(f"The inference rule '{doc.get('infer_rule', '?')}' picks "
                                f"{doc['recommended_infer_default']} for rendering on {doc['device']}.")

    @staticmethod
    def _precision_settings(doc: dict) -> str:
        """How the precision study was run (benchmarks/precision.py), from its results file."""
        def get(key: str) -> str:
            v = doc.get(key)
            return fmt("points" if "points" in key else key, v) if v is not None else "?"

        side = math.isqrt(doc["render_points"]) if isinstance(doc.get("render_points"), int) else None
        render = (f"; a render evaluates {get('render_points')} points" + (f" (a {side} x {side} grid)" if side
                                                                          and side * side == doc["render_points"]
                                                                          else "")
                  + " of the network trained at ieee, at each precision (the float64 row's render PSNR is that "
                    "network's render in float64, not the float64 fit's), its time the median of repeated calls "
                    "after a compiling one") if side else ""
        versions = doc.get("versions") if isinstance(doc.get("versions"), dict) else {}
        soft = ", ".join(f"{k} {v}" for k, v in versions.items() if v and k != "python")
        return (f"Settings: one SIREN of width {get('width')} with hidden_layers {get('hidden_layers')} (counted as in "
                f"the official code), fitted to the "
                f"gray {doc.get('image', '?')} image at {get('size')} x {get('size')} px by {get('steps')} "
                "full-batch Adam steps (every pixel each step), once per training precision and once in float64 "
                "on the reference backend (the float64 row); every fit's PSNR is evaluated in float64, and its "
                "time per step is the training step's. The errors are measured at "
                f"{get('points')} random points of [-1, 1]², on a freshly initialised network (init) and on the "
                "network trained at ieee (the other columns), each precision's kernels against the reference "
                f"backend in float64{render}. Run on {doc.get('device', '?')}" + (f" ({soft})" if soft else "")
                + f"; the rule for the default training precision: {doc.get('rule', '?')}")

    def _gemm(self, sec: Section) -> None:
        """The matrix products each provider executes per step (benchmarks/gemm_count.py)."""
        doc = self.gemm
        if not doc or not doc.get("rows"):
            return
        from fastsiren.benchmarks.gemm_count import pairs

        body, ratios, dims = [], defaultdict(list), sorted({r["in_features"] for r in doc["rows"]})
        for suite, d, ref, tor in pairs(doc):
            body.append([cell(suite), cell(str(d)), cell(fmt("gflop", ref["gemm_gflop"])),
                         cell(fmt("gflop", tor["gemm_gflop"])), cell(f"{tor['reference_over_this']:.2f}")])
            ratios[suite].append(tor["reference_over_this"])
        if not body:
            return
        sec.tables.append(table(
            "Matrix-product GFLOP per training step, reference and torch, and their ratio: the torch backend's "
            "speedup if the products took all of the step's time", ["suite", "D", "reference", "torch", "ratio"],
            body, lead=2, source=f"{doc.get('counter', '?')}; {doc['rows'][0]['points']} points; "
                                 f"commit {_commit(doc)}; file {GEMM_FILE}"))
        for suite, rs in sorted(ratios.items()):
            lo, hi = f"{min(rs):.2f}x", f"{max(rs):.2f}x"
            sec.findings.append(f"Suite {suite}: the reference executes {lo if lo == hi else f'{lo} to {hi}'} the "
                                f"matrix-product FLOPs of the torch backend per step (D = {dims[0]} to {dims[-1]}); "
                                "a speedup beyond that comes from less elementwise work or faster products.")

    def _weighted(self, sec: Section) -> None:
        """The wave step with its Laplacian weights against the same step with the plain Laplacian,
        per device and provider (benchmarks/weighted_cost.py)."""
        body, ratios, skipped = [], [], []
        for doc in self.weighted:
            where = doc["device"] + (f", {_count(int(doc['threads']), 'thread')}"
                                     if str(doc.get("threads", "")).isdigit() else "")
            grid = " x ".join(str(g) for g in doc.get("grid", []))
            problem = f"{grid} ({fmt('points', doc.get('points'))} points), width {doc.get('hidden', '?')}"
            for r in doc.get("rows", []):
                spread = r.get("spread_ms", {})
                # the rounds' ranges overlap: the two steps are not told apart by this measurement
                overlap = (bool(spread) and spread["weighted"][0] <= spread["plain"][1]
                           and spread["plain"][0] <= spread["weighted"][1])
                ratios.append((r["weighted_over_plain"], r["provider"], where, overlap))
                body.append([cell(where), cell(problem), cell(r["provider"]), cell(fmt("ms", r["plain_ms"])),
                             cell(fmt("ms", r["weighted_ms"])), cell(f"{r['weighted_over_plain']:.3f}x")])
            skipped += [f"{name} on {where} ({why})" for name, why in doc.get("skipped", {}).items()]
        if not body:
            return
        weights = ", ".join(f"{c:g}" for c in self.weighted[0].get("weights", []))
        sec.tables.append(table(
            f"What the Laplacian's weights cost: the wave suite's training step (a SIREN of (t, x, y) on a "
            f"T x H x W grid) with laplacian_weights = ({weights}) and the same step with the plain Laplacian, "
            "interleaved in one process" + (f". Not measured: {'; '.join(skipped)}" if skipped else ""),
            ["device", "problem", "provider", "plain (ms)", "weighted (ms)", "weighted / plain"], body, lead=3,
            source=f"{_ROUNDS.sub('', self.weighted[0].get('method', '?'))}; " + "; ".join(
                f"{d['device']}" + (f", {_count(int(d['threads']), 'thread')}" if str(d.get("threads", "")).isdigit()
                                    else "")
                + f": size {d.get('size', '?')}, " + (f"median of {m.group(1)} rounds, " if (m := _ROUNDS.search(
                    d.get("method", ""))) else "")
                + (f"weights ({', '.join(f'{c:g}' for c in d['weights'])}), " if d.get("weights") !=
                   self.weighted[0].get("weights") else "")
                + f"commit {_commit(d)}, {str(d.get('date', '?'))[:10]}" for d in self.weighted)
            + "; files weighted-cost-*.json"))
        lo, hi = min(ratios), max(ratios)
        span = (f"{lo[0]:.2f}x ({lo[1]}, {lo[2]})" if len(ratios) == 1
                else f"{lo[0]:.2f}x ({lo[1]}, {lo[2]}) to {hi[0]:.2f}x ({hi[1]}, {hi[2]})")
        noise = [r for r in ratios if r[3]]
        sec.findings.append(
            f"Laplacian weights: the weighted wave step takes {span} the time of the same step with the plain "
            "Laplacian" + (f"; in {len(noise)} of {len(ratios)} measurements the two steps' timed rounds overlap, "
                           "so those ratios are within the measurement's spread" if noise else "") + ".")

    def _cpu_targets(self, sec: Section, rows: list[dict]) -> None:
        """The torch backend's CPU targets (issue 2) at the default size, per device and thread
        count, from the latest runs, with what the matrix-product count says of them: where the
        torch step makes the reference's products (gemm-count ratio 1), its margin comes only from
        the rest of the step and from the product library."""
        ratio = {}  # (suite, D) -> reference GFLOP / torch GFLOP (benchmarks/gemm_count.py)
        for r in (self.gemm or {}).get("rows", []):
            if r.get("provider") == "torch":
                ratio[(r["suite"], r["in_features"])] = r["reference_over_this"]
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for r in rows:
            if (r.get("device_type") == "cpu" and not r.get("sweep") and r.get("size") == "default"
                    and r.get("dtype") == "float32"):
                groups[(str(r.get("device")), str(r.get("threads")))].append(r)
        for (dev, threads), group in sorted(groups.items()):
            verdicts = torch_targets([dict(r, status=r.get("status", "ok")) for r in group])
            if not verdicts:
                continue
            rs = [r for r, *_ in verdicts]
            parts, missed = [], []
            for r, got, target, ceiling in verdicts:
                flops = ratio.get((r["suite"], int(r.get("in_features", 0))))
                parts.append(f"{r['suite']} {speedup_text(got, target)} (target {target:g}x, "
                             f"{'met' if got >= target else 'missed'}"
                             + ("" if math.isnan(ceiling) else f", ceiling {ceiling:.2f}x")
                             + (f"; reference makes {flops:.2f}x its matrix-product FLOPs" if flops else "") + ")")
                if got < target:
                    missed.append((r["suite"], flops))
            n_threads = _count(int(threads), "thread") if threads.isdigit() else f"{threads} threads"
            when = ", ".join(sorted({f"commit {str(r.get('commit'))[:10]}, {str(r.get('date'))[:10]}" for r in rs}))
            counted = (f" FLOPs as counted by benchmarks/gemm_count.py ({GEMM_FILE}, commit {_commit(self.gemm)})."
                       if any("FLOPs" in p_ for p_ in parts) else "")
            text = (f"The torch backend against the reference on {dev}, {n_threads}, default size ({when}): "
                    + "; ".join(parts) + "." + counted)
            if any(not math.isnan(c) for *_, c in verdicts):
                text += (" A ceiling is what torch would reach if its matrix products ran at the floor's speed "
                         "(torch.matmul) and nothing else took time: 1 / the reference's floor fraction, on "
                         f"poisson-grad divided by {REVERSE_GRAD_PRODUCT_SHARE:.2g} (the reverse-mode gradient's "
                         "share of the counted products).")
                above = [r["suite"] for r, _, target, c in verdicts if target > c]
                if above:
                    text += (f" The target of {', '.join(above)} lies above its ceiling on this host: it can be met "
                             "only with products faster than these torch.matmul calls (as oneDNN's or cache-sized "
                             "row blocks can be).")
            equal = [s_ for s_, f in missed if f is not None and f < 1.01]  # counted 1.00: the same products
            if equal:
                drift = any(lim.startswith(f"The CPU ({dev}, {threads} threads") for lim in self.limits)
                text += (f" Where the two make the same products ({', '.join(equal)}), torch's margin is only the "
                         "rest of the step (elementwise passes, memory, Python) plus whatever speed its product "
                         "library has over the reference's BLAS on that host"
                         + ("; see the limit on this CPU's speed from day to day." if drift else "."))
            sec.findings.append(text)

    # torch-backend CPU variants timed beside the default: (provider, what the default does instead, what the
    # variant does)
    CPU_VARIANTS = (
        ("torch+serial", "CPU point blocks side by side",
         "the same passes one block at a time, multi-threaded ops"),
        ("torch+torchtrig", "Float32 sines and cosines from NumPy",
         "the same steps with torch.sin and torch.cos"),
    )

    def _block_threads(self, sec: Section, rows: list[dict]) -> None:
        """The torch backend's CPU choices against the variants that turn one off (point blocks
        side by side against torch+serial, NumPy's sines against torch+torchtrig), per device
        and thread count, per suite and phase from the latest run (``run_id``) that timed both."""
        for variant, choice, instead in self.CPU_VARIANTS:
            runs: dict[tuple, dict[str, dict[str, dict]]] = defaultdict(dict)  # -> run -> provider -> row
            for r in rows:
                if (r.get("device_type") == "cpu" and not r.get("sweep") and r.get("status", "ok") == "ok"
                        and r.get("provider") in ("torch", variant)):
                    key = (str(r.get("device")), str(r.get("threads")), str(r.get("size")), str(r.get("dtype")),
                           r["suite"], r.get("phase", ""))
                    runs[key].setdefault(str(r.get("run_id", "")), {})[r["provider"]] = r
            groups: dict[tuple, list[tuple[dict, dict]]] = defaultdict(list)
            for (*where, _suite, _phase), by_run in runs.items():
                both = [got for got in by_run.values() if "torch" in got and variant in got]
                if both:  # runs in row order: the last is the latest
                    groups[tuple(where)].append((both[-1]["torch"], both[-1][variant]))
            for (dev, threads, size, _), pairs in sorted(groups.items()):
                parts = [f"{r['suite']} {r.get('phase', '')} {r['median_ms'] / other['median_ms']:.2f} "
                         f"({r['median_ms']:.0f} against {other['median_ms']:.0f} ms)" for r, other in pairs]
                if parts:
                    commits = ", ".join(sorted({str(r.get("commit"))[:10] for pair in pairs for r in pair}))
                    n_threads = _count(int(threads), "thread") if threads.isdigit() else f"{threads} threads"
                    sec.findings.append(
                        f"{choice} on {dev}, {n_threads}, size {size} (commit {commits}): the torch backend's "
                        f"time over {variant}'s ({instead}), same run: " + "; ".join(parts) + ".")

    def _trig(self, sec: Section) -> None:
        """NumPy's and torch's float32 sines and cosines per element, their errors against
        float64, and the torch backend's steps with each (benchmarks/cpu_trig.py)."""
        doc = self.trig
        if not doc or not doc.get("elementwise"):
            return
        ns = {(r["function"], r["library"], r["threads"]): r["ns_per_element"] for r in doc["elementwise"]}
        ts = sorted({t for (_, lib, t) in ns if lib == "torch"})
        err = {(r["range"], r["function"], r["library"]): r for r in doc.get("errors", []) if "max_ulp" in r}
        ranges = sorted({k[0] for k in err})

        def worst(fn: str, lib: str) -> str:
            ulps = [r["max_ulp"] for k, r in err.items() if k[1:] == (fn, lib)]
            return f"{max(ulps):.2f}" if ulps else "–"

        body = [[cell(fn), cell(f"{ns.get((fn, 'numpy', 1), math.nan):.3g}")]
                + [cell(f"{ns.get((fn, 'torch', t), math.nan):.3g}") for t in ts]
                + [cell(worst(fn, lib)) for lib in ("numpy", "torch")] for fn in ("sin", "cos")]
        sec.tables.append(table(
            f"Float32 sine and cosine on {doc['device']}: ns per element of NumPy {doc.get('numpy', '?')} (one "
            f"thread) and torch, and the largest error against float64 in ulps over "
            f"{_count(len(ranges), 'argument range')}",
            ["function", "NumPy ns", *[f"torch ns, {_count(t, 'thread')}" for t in ts], "NumPy max ulp",
             "torch max ulp"], body, lead=1,
            source=f"benchmarks/cpu_trig.py; commit {_commit(doc)}; file {CPU_TRIG_FILE}"))
        steps = doc.get("steps") or []
        parts = [f"{r['suite']} {r['phase']} {r['numpy_over_torch']:.2f} ({fmt('ms', r['numpy_ms'])} against "
                 f"{fmt('ms', r['torch_ms'])} ms)" for r in steps]
        step_threads = steps[0].get("threads", doc.get("threads", "?")) if steps else None
        special = [r for r in doc.get("errors", []) if r.get("range") == "special values"]
        agree = bool(special) and all(r["nan_where_float64"] and r["all_close"] for r in special)
        one = ns.get(("sin", "torch", 1))
        sec.findings.append(
            f"The torch backend takes float32 sines and cosines from NumPy's SIMD ufuncs on the CPU for tensors of "
            f"at least {numpy_trig_floor_text(doc)} (file {CPU_TRIG_FILE}): per element NumPy's sine took "
            f"{ns.get(('sin', 'numpy', 1), math.nan):.3g} ns"
            + (f" against torch's {one:.3g} ns on one thread" if one is not None else "")
            + (f" and {ns[('sin', 'torch', ts[-1])]:.3g} ns on {ts[-1]}" if ts and ts[-1] > 1 else "")
            + ("; special values agree with float64 in both" if agree else "")
            + (f". In that file's own run (commit {_commit(doc)}; the suite tables' torch+torchtrig rows are "
               "another run's), the backend's steps with NumPy's functions over the same steps with torch's "
               "(interleaved, "
               f"{_count(int(step_threads), 'torch thread') if str(step_threads).isdigit() else step_threads}): "
               + "; ".join(parts) if parts else "") + ".")

    def _registers(self, sec: Section) -> None:
        """The CUDA kernels' resources from an offline compile (benchmarks/cuda_registers.py), and
        what the weighted-Laplacian instantiations take beside their plain twins."""
        doc = self.registers
        if not doc or not doc.get("rows"):
            return
        rows, pairs = doc["rows"], doc.get("weighted_vs_unit", [])
        text = (f"CUDA kernels on {doc.get('arch', '?')}, compiled offline (nvcc {doc.get('nvcc', '?')}, "
                f"benchmarks/cuda_registers.py, commit {_commit(doc)}): {len(rows)} kernel instantiations, "
                f"{sum(1 for r in rows if r.get('spill_st', 0) > 0)} with spill stores, "
                f"{min(r['regs'] for r in rows)} to {max(r['regs'] for r in rows)} registers per thread")
        if pairs:
            deltas = [q["regs_delta"] for q in pairs]
            grew = [q for q in pairs if q["stack_weighted"] > q["stack_unit"]]
            span = f"{min(deltas):+d}" if min(deltas) == max(deltas) else f"{min(deltas):+d} to {max(deltas):+d}"
            one = len(pairs) == 1
            text += (f". The {_count(len(pairs), 'weighted-Laplacian instantiation')} {'uses' if one else 'use'} "
                     f"{span} registers against {'its plain twin' if one else 'their plain twins'}")
            if grew:
                extra = sorted({q["stack_weighted"] - q["stack_unit"] for q in grew})
                text += (f", and {'it' if one else f'{len(grew)} of them'} a stack frame larger by "
                         + (f"{extra[0]}" if len(extra) == 1 else f"{extra[0]} to {extra[-1]}")
                         + " bytes")
        sec.findings.append(text + ". No GPU has run them against these figures yet.")

    def _auto_gemm(self, sec: Section) -> None:
        """What set_cpu_gemm("auto") timed in the benchmark runs: kinds, choices and seconds."""
        runs = (self.auto_gemm or {}).get("runs", [])
        if not runs:
            return
        kinds = [len(r["kinds"]) for r in runs]
        seconds = [r["seconds"] for r in runs]
        picks = [k["choice"] for r in runs for k in r["kinds"]]
        dates = sorted({str(r.get("date", "?"))[:10] for r in runs})
        sec.findings.append(
            f"CPU products in mode \"auto\": in {len(runs)} benchmark {'process' if len(runs) == 1 else 'processes'} "
            f"({', '.join(dates)}; "
            f"{CPU_GEMM_AUTO_FILE}) the first product of each kind was timed both ways: "
            f"{min(kinds)} to {max(kinds)} kinds per process, {min(seconds):.2f} to {max(seconds):.2f} s of timing "
            f"per process; oneDNN was kept for {picks.count('onednn')} of the {len(picks)} kinds, BLAS for the rest.")

    def _cpu_drift(self) -> None:
        """A limit when two runs of benchmarks/cpu_gemm.py on the same device and thread count
        (different days) find different product throughput: CPU tables of different dates then
        do not compare."""
        by_key: dict[tuple, list[dict]] = defaultdict(list)
        for doc in self.cpu_gemm:
            by_key[(doc.get("device"), str(doc.get("threads")))].append(doc)
        for (device, threads), docs in sorted(by_key.items(), key=lambda kv: str(kv[0])):
            if len(docs) < 2:
                continue
            docs = sorted(docs, key=lambda d: str(d.get("date")))
            old, new = docs[0], docs[-1]
            shape = lambda r: (r.get("shape"), r.get("points"), r.get("k"), r.get("m"))  # noqa: E731
            then = {shape(r): r for r in old.get("rows", [])}
            pairs = [(then[shape(r)], r) for r in new.get("rows", []) if shape(r) in then]
            if not pairs:
                continue
            ratio = {lib: statistics.median(b[f"{lib}_gflops"] / a[f"{lib}_gflops"] for a, b in pairs)
                     for lib in ("onednn", "blas")}
            if all(abs(v - 1) < 0.15 for v in ratio.values()):
                continue  # within what repeated runs of one day spread
            ids = [d.get("cpu_id") for d in (old, new)]
            if all(ids):
                which = (f" Family and model differ, {ids[0]} then {ids[1]}: two processors under one name."
                         if ids[0] != ids[1] else f" Both runs name the same family and model, {ids[0]}.")
            else:
                which = (" Whether it was one processor is not recorded: "
                         + ("neither of benchmarks/cpu_gemm.py's files records" if not any(ids) else
                            f"the {'older' if not ids[0] else 'newer'} of benchmarks/cpu_gemm.py's files does not "
                            "record")
                         + " the CPU's family and model, which the later results files and benchmark rows do.")
            self.limits.append(
                f"The CPU ({device}, {threads} threads) did not run at the same speed from day to day: from "
                f"{str(old.get('date'))[:10]} to {str(new.get('date'))[:10]} its oneDNN products ran at "
                f"{ratio['onednn']:.2f}x and its BLAS products at {ratio['blas']:.2f}x their earlier throughput "
                f"(median over {len(pairs)} product shapes, benchmarks/cpu_gemm.py), so CPU speedups compare only "
                "within one run (one commit and date in the tables), not across dates." + which)

    def _malloc(self, sec: Section) -> None:
        """Reference's and torch's CPU steps under glibc's default malloc settings and with its
        thresholds pinned (benchmarks/cpu_malloc.py)."""
        doc = self.malloc
        if not doc or not doc.get("rows"):
            return
        body = []
        for r in doc["rows"]:
            ms, sp = r["ms"], r["torch_speedup"]
            body.append([cell(r["suite"]), cell(r["phase"])]
                        + [cell(fmt("ms", ms[s][p])) for p in ("reference", "torch") for s in ("glibc", "pinned")]
                        + [cell(f"{sp[s]:.2f}x") for s in ("glibc", "pinned")])
        pinned = ", ".join(dict.fromkeys(_bytes_text(v) for v in doc.get("settings", {}).get("pinned", {}).values()))
        sec.tables.append(table(
            f"CPU steps (ms) under glibc's default malloc settings and with its mmap and trim thresholds pinned at "
            f"{pinned or '?'} (freed memory stays in the process), on {doc['device']}, {doc['threads']} threads, size "
            f"{doc['size']}", ["suite", "phase", "reference glibc", "reference pinned", "torch glibc", "torch pinned",
                               "torch vs ref. glibc", "torch vs ref. pinned"], body, lead=2,
            source=f"{doc.get('passes', '?')} processes per setting, alternating, each the median of "
                   f"{doc.get('repeats', '?')} rounds; commit {_commit(doc)}; file {CPU_MALLOC_FILE}"))
        for r in doc["rows"]:
            po = r["pinned_over_glibc"]
            sec.findings.append(f"Suite {r['suite']} ({r['phase']}): with the allocator's thresholds pinned the "
                                f"reference takes {po['reference']:.2f}x the time it takes under glibc's defaults and "
                                f"torch {po['torch']:.2f}x; torch vs reference goes from "
                                f"{r['torch_speedup']['glibc']:.2f}x to {r['torch_speedup']['pinned']:.2f}x.")
        for r in doc["rows"]:  # the suite tables' own processes against the study's, same glibc defaults
            table_rows = {p: next((b for b in self.bench
                                   if b.get("device_type") == "cpu" and not b.get("sweep")
                                   and (b.get("suite"), b.get("phase"), b.get("provider"))
                                   == (r["suite"], r["phase"], p)
                                   and str(b.get("size")) == str(doc.get("size"))
                                   and str(b.get("device")) == str(doc.get("device"))
                                   and b.get("threads") == _number(str(doc.get("threads")))
                                   and isinstance(b.get("median_ms"), (int, float))), None)
                          for p in ("reference", "torch")}
            study = r["ms"]["glibc"]
            if None in table_rows.values():
                continue
            table_ms = {p: b["median_ms"] for p, b in table_rows.items()}
            if table_ms["reference"] < 1.25 * study["reference"]:
                continue
            margin, here = table_ms["reference"] / table_ms["torch"], r["torch_speedup"]["glibc"]
            when = _dates(list(table_rows.values()))
            here_run = _dates([doc])
            same_run = when == here_run
            sec.findings.append(
                f"Suite {r['suite']} ({r['phase']}): the suite table's reference took "
                f"{table_ms['reference'] / study['reference']:.2f}x its time in this study under the same glibc "
                f"defaults ({fmt('ms', table_ms['reference'])} against {fmt('ms', study['reference'])} ms) and torch "
                f"{table_ms['torch'] / study['torch']:.2f}x; torch's margin over the reference is "
                f"{margin:.2f}x in the table, {'larger' if margin > here else 'smaller'} than the {here:.2f}x here. "
                + ("The table's process ran this suite alone, this study's after the others."
                   if same_run else f"The table's rows come from another run ({when}; this study: {here_run}): "
                                    "beside the order of the suites (alone there, after the others here), "
                                    "whatever moved the CPU's speed between runs separates the two (the "
                                    "Discussion's limits)."))

    # per mutation-check target: what was mutated and which tier ran, for captions and findings
    MUTATION_TARGETS = {
        "cuda": ("the CUDA sources", "the emulated test tier"),
        "triton": ("the Triton kernels", "the interpreted Triton tier"),
        "torch": ("the torch backend's CPU jets", "the torch backend's float64 tests"),
    }

    def verify(self) -> Section:
        """The mutation checks (benchmarks/mutations.py): for each target with a results file,
        its mutants and whether its test tier fails on them; a target without one is named."""
        sec = Section("verify", [])
        docs = self.mutations or {}
        if not any(doc and doc.get("rows") for doc in docs.values()):
            return sec
        for target in TARGET_NAMES:
            what = self.MUTATION_TARGETS[target][0]
            doc = docs.get(target)
            if not doc or not doc.get("rows"):
                sec.findings.append(f"Not measured: no mutation check of {what} (no {mutation_results(target)}; "
                                    f"{mutation_command(target)} writes it).")
                continue
            self._mutations(sec, target, doc)
        return sec

    def _mutations(self, sec: Section, target: str, doc: dict) -> None:
        what, tier = self.MUTATION_TARGETS[target]
        rows = doc["rows"]

        def plain(r: dict) -> bool:
            return r.get("caught_plain", r["caught"])

        def verdict(r: dict) -> str:
            return "caught" if plain(r) else ("caught by ASan" if r["caught"] else "missed")

        body = [[cell(r["name"]), cell(r["what"]), cell(verdict(r)), cell(r.get("blind_spot") or "")] for r in rows]
        partial = [] if doc.get("complete", True) else ["A partial run (--only): not every mutant ran."]
        fails = "fail" if tier.endswith("tests") else "fails"
        sec.tables.append(table(
            f"Mutants of {what} and whether {tier} {fails} on them", ["mutant", "defect", "tier", "blind spot"],
            body, lead=1, notes=partial,
            source=f"{doc.get('tier', '?')}; commit {_commit(doc)}; file {mutation_results(target)}"))
        barriers = [r for r in rows if r["name"].startswith("no-barrier-")]
        caught = [r for r in rows if r["caught"]]
        by_asan = [r for r in caught if not plain(r)]
        names = ", ".join(r["name"] for r in by_asan)
        sec.findings.append(f"{tier[0].upper() + tier[1:]} detected {len(caught)} of {len(rows)} mutants of {what}"
                            + (f", among them {sum(r['caught'] for r in barriers)} of the {len(barriers)} with one "
                               "barrier removed" if barriers else "")
                            + (f"; {len(by_asan)} of the {len(caught)} only with AddressSanitizer ({names})"
                               if by_asan else "")
                            + ".")
        for r in rows:
            if not r["caught"]:
                why = f" ({r['blind_spot']})" if r.get("blind_spot") else ""
                sec.findings.append(f"Missed ({target}): {r['name']}, {r['what']}{why}.")

    @staticmethod
    def _bench_table(dev: str, suite: str, threads: Any, all_rs: list[dict], sweep_rs: list[dict],
                     known: Iterable[str] = (), said: set[str] | None = None) -> dict:
        """The fixed-size cases of one suite on one device and thread count, with every run
        (commit, date, file) its rows come from; what was not timed, per size, in a note, and the
        providers of ``known`` (this suite's on any device) with no row here at all. ``said``: the
        notes given in full by earlier tables (their keys), which this one then only names."""

        def once(key: str, full: str, short: str) -> str:
            if said is None or key not in said:
                if said is not None:
                    said.add(key)
                return full
            return short
        rs = [r for r in all_rs if r.get("status", "ok") == "ok"] or all_rs
        keys = [k for k in BENCH_COLUMNS if any(k in r for r in rs)]
        shown = _varying(rs, keys)
        constant = [k for k in keys if k not in shown and k != "threads"]
        lead = [k for k in shown if k not in BENCH_MEASURED]
        cols = lead + [k for k in shown if k in BENCH_MEASURED]
        body = [[cell(fmt(k, r.get(k))) for k in cols] for r in rs]

        def distinct(key: str, n: int | None = None) -> str:
            return ", ".join(dict.fromkeys(str(r.get(key))[:n] for r in rs if r.get(key) is not None))

        versions = ", ".join(f"{k} {distinct(k)}" for k in ("torch", "triton", "cuda", "python")
                             if any(r.get(k) is not None for r in rs))
        rounds = distinct("rounds")
        source = (f"device {dev}" + (f", {_count(int(threads), 'torch thread')}" if threads is not None else "")
                  + (f"; {distinct('dtype')}" if any(r.get("dtype") for r in rs) else "")
                  + (f"; median of {rounds} interleaved timed rounds" if rounds else "")
                  + f"; commit {distinct('commit', 10)}, date {distinct('date', 19)}, {versions}; "
                    f"file {distinct('_file')}")
        notes = ["Same in every row: " + ", ".join(f"{BENCH_LABELS.get(k, k)} = {fmt(k, rs[0].get(k))}"
                                                   for k in constant) + "."] \
            if constant else []
        runs = list(dict.fromkeys(_run_day(r) for r in rs))
        if len(runs) > 1:
            per_run = "; ".join(
                "size " + ", ".join(dict.fromkeys(str(r.get("size")) for r in rs if _run_day(r) == run))
                + " from " + _dates([r for r in rs if _run_day(r) == run]) for run in runs)
            notes.append(f"Rows of {len(runs)} commits or days ({per_run}): each ratio pairs rows of one run, and "
                         + ("CPU speed moved between dates (the Discussion's limits), so" if rs[0].get("device_type")
                            == "cpu" else "so") + " rows of different runs do not compare with each other.")
        if any(r.get("peak_mb") is None for r in rs) and rs[0].get("device_type") == "cpu":
            notes.append(once("peak", "Peak MiB \u2013: not measured. The CPU's memory tracking counts the tensors "
                              "ATen's dispatcher creates, and torch.compile's inductor kernels allocate their buffers "
                              "outside it.", "Peak MiB \u2013: not measured (as in the first CPU table)."))
        if any(reference_infer_graph(r) for r in rs):
            notes.append(REFERENCE_INFER_NOTE)
        # what was not timed, one entry per reason; the sizes only where not every size of the table
        all_sizes = set(dict.fromkeys(str(r.get("size")) for r in all_rs))
        skipped: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for r in all_rs:
            if r.get("status", "ok") != "ok" and not str(r.get("reason", "")).startswith(GPU_ONLY_REASONS):
                sizes = skipped[str(r.get("reason"))][str(r.get("provider"))]
                if str(r.get("size")) not in sizes:
                    sizes.append(str(r.get("size")))
        if skipped:
            notes.append("Not timed: " + "; ".join(
                ", ".join(p + ("" if set(sz) == all_sizes else f" at size {', '.join(sz)}")
                          for p, sz in sorted(provs.items())) + f" ({why})"
                for why, provs in sorted(skipped.items())) + ".")
        here = {str(r.get("provider")) for r in all_rs}
        absent = [p for p in known if p not in here]
        if absent:
            notes.append("No row here for " + ", ".join(absent) + once(
                "absent", ": providers that other devices' runs of this suite timed, absent from this device's run "
                "(added to the harness after it, or not available on this device): not timed here, not slower.",
                ": not in this device's run (not timed, not slower)."))
        if any(r.get("device_type") == "cuda" for r in rs):
            notes.append(once("names", "Provider names are the current code's: rows of GPU runs before commit "
                              "d23161df38 were relabelled where a name changed its meaning "
                              "(benchmarks/results/gpu-check/README.md says which), so a row's commit may have "
                              "printed it under another name.", "Provider names are the current code's (relabelled "
                              "rows: the first GPU table's note)."))
        if sweep_rs:
            sweeps = ", ".join(dict.fromkeys(str(r.get("sweep")) for r in sweep_rs))
            notes.append(f"The scaling sweeps of this suite ({sweeps}; {_count(len(sweep_rs), 'row')}, commit "
                         f"{', '.join(dict.fromkeys(str(r.get('commit'))[:10] for r in sweep_rs))}, file "
                         f"{', '.join(dict.fromkeys(r['_file'] for r in sweep_rs))}) are plotted in the scaling "
                         "figures.")
        caption = f"Benchmark suite {suite} on {dev}" + (f", {_count(int(threads), 'torch thread')}"
                                                        if threads is not None else "")
        shape = Builder._bench_shape(suite, rs)
        if shape:
            caption += f": {shape}"
        return table(caption, [BENCH_LABELS.get(c, c) for c in cols], body, lead=len(lead), source=source,
                     notes=notes)

    @staticmethod
    def _bench_shape(suite: str, rs: list[dict]) -> str:
        """The network (depth and width) and the problem size (points) of a benchmark table's
        rows, per benchmark size, from the rows' own columns."""
        nets, sizes = [], []
        for size in dict.fromkeys(r.get("size") for r in rs):
            shapes = list(dict.fromkeys(tuple(r.get(k) for k in ("layers", "in_features", "hidden", "out_features",
                                                                 "points")) for r in rs if r.get("size") == size))
            if len(shapes) != 1 or any(not isinstance(v, int) for v in shapes[0]):
                return ""  # several shapes in one size (or a column missing): the table's columns say
            layers, d, width, out, points = shapes[0]
            if layers == 1:
                nets.append(f"one sine layer from {d} to {out} features")
            else:
                nets.append(f"a SIREN of depth {layers} (linear layers; hidden_layers {layers - 2} as the official "
                            f"code counts them) and width {width}, D = {d} inputs, {_count(out, 'output')}")
            grid = ""
            try:  # the suite's own grid at this size, where the rows ran it (not a sweep's points)
                g = default_shape(suite, str(size), next((r.get("device_type") for r in rs), "cpu")).grid_shape
            except (KeyError, ValueError):
                g = None
            if g and math.prod(g) == points:
                grid = f" (a {' x '.join(map(str, g))} {'pixel grid' if len(g) == 2 else 'grid of (t, x, y)'})"
            sizes.append(f"{fmt('points', points)} points{grid} at benchmark size {size}")
        if not nets:
            return ""
        if len(set(nets)) == 1:
            return f"{nets[0]}; {', '.join(sizes)}"
        return "; ".join(f"{n}, {sz}" for n, sz in zip(nets, sizes))

    @staticmethod
    def _case(r: dict) -> str:
        """Which benchmark case a row is: its size or swept value, and its thread count."""
        where = (f"{r.get('sweep')} {fmt(str(r.get('sweep')), r.get('sweep_value'))} of the scaling sweep"
                 if r.get("sweep") else f"size {r.get('size', '?')}")
        return where + (f", {_count(int(r['threads']), 'thread')}" if isinstance(r.get("threads"), int) else "")

    @staticmethod
    def _against_compiled_reference(rows: list[dict], target: dict) -> str:
        """``; against reference+compile, which records no graph: triton 1.25x, ...`` (a GPU
        suite whose eager reference is overstated; ``rows``: one size of one device), or ""
        without that row."""
        comp = next((r for r in rows if r.get("provider") == "reference+compile"
                     and isinstance(r.get("median_ms"), (int, float))), None)
        if comp is None:
            return ""
        ms = {r.get("provider"): r["median_ms"] for r in rows if isinstance(r.get("median_ms"), (int, float))}
        got = [f"{p} {comp['median_ms'] / ms[p]:.2f}x" for p, _, _ in target["providers"] if p in ms]
        return ("; against reference+compile, whose forward records no graph: " + ", ".join(got)) if got else ""

    @staticmethod
    def _memory_findings(dev: str, suite: str, rows: list[dict]) -> list[str]:
        """Peak memory of each default backend against the reference's in the same run, per
        phase, at the default size (on the CPU at the largest thread count): the memory half of
        the tables."""
        threads, rows = _most_threads([r for r in rows if str(r.get("size")) == "default"
                                       and isinstance(r.get("peak_mb"), (int, float))])
        parts = []
        for phase in dict.fromkeys(r.get("phase") for r in rows):
            rs = [r for r in rows if r.get("phase") == phase]
            ref = next((r for r in rs if r.get("provider") == "reference" and r["peak_mb"] > 0), None)
            if ref is None:
                continue
            got = [f"{r['provider']} {fmt('peak_mb', r['peak_mb'])} MiB ({r['peak_mb'] / ref['peak_mb']:.2f}x)"
                   for r in rs if r.get("provider") in ("torch", "triton", "cuda")
                   and r.get("run_id") == ref.get("run_id")]
            if got:
                parts.append((f"{phase}: " if suite == "layer" else "")
                             + f"reference {fmt('peak_mb', ref['peak_mb'])} MiB, " + ", ".join(got))
        if not parts:
            return []
        how = "above the allocation before the step" if rows[0].get("device_type") == "cuda" else \
            "of the tensors the step creates"
        where = dev + (f", {_count(threads, 'torch thread')}" if threads is not None else "")
        return [f"On {where}, suite {suite}, peak memory per call {how} at the default size: " + "; ".join(parts)
                + "."]

    @staticmethod
    def _speed_findings(dev: str, suite: str, rows: list[dict], speed_col: str) -> list[str]:
        best = [r for r in rows if isinstance(r.get(speed_col), (int, float))
                and str(r.get("provider", "")).lower() != "reference"]
        if not best:
            return []
        top = max(best, key=lambda r: r[speed_col])
        low = min(best, key=lambda r: r[speed_col])
        runs = list(dict.fromkeys(_run_day(r) for r in best))
        # each ratio pairs rows of one run; cases of different commits or days are named with theirs
        at = (lambda r: f"{Builder._case(r)}, {_dates([r])}") if len(runs) > 1 else Builder._case
        mixed = (f" These cases come from {len(runs)} commits or days ({_dates(best)}): a ratio pairs rows of one "
                 "run, and CPU speed moved between dates (the Discussion's limits), so cases of different days, "
                 "such as two sizes, do not compare with each other."
                 if len(runs) > 1 and best[0].get("device_type") == "cpu" else "")
        # a target's own rounding: 1.499x, not 1.50x, beside "target 1.5x: missed"
        target = (GPU_TARGETS if best[0].get("device_type") == "cuda" else TARGETS).get(suite, 0.0)
        return [f"On {dev}, suite {suite}: the fastest case is {top.get('provider', '?')} at {at(top)}, "
                f"{speedup_text(top[speed_col], target)} the reference; the slowest non-reference case runs at "
                f"{speedup_text(low[speed_col], target)} ({low.get('provider', '?')} at {at(low)})." + mixed]

    @staticmethod
    def _verdict_table(sections: dict[str, Section]) -> dict | None:
        """Every comparison of the experiments in one table: each SIREN method against the best
        baseline per study and setting, the margin in the metric's direction with its interval
        where the setting has paired cases, the verdict."""
        rows = []
        for s in sections.values():
            for c in s.comparisons:
                unit = " dB" if c.metric.startswith("psnr") else ""
                verdict = "level" if c.level else ("better" if c.won else "worse")
                margin = f"{c.gain:+.2f}" + (f" ± {c.interval:.2f}" if c.interval is not None else "") + unit
                rows.append([cell(s.key), cell(c.group or "–"), cell(_short_label(c.metric)), cell(c.siren),
                             cell(fmt(c.metric, c.siren_value), c.won), cell(c.baseline),
                             cell(fmt(c.metric, c.baseline_value), not c.won and not c.level),
                             cell(margin), cell(verdict)])
        if not rows:
            return None
        return table("Where SIREN wins and loses: per study and setting, each SIREN method against the best "
                     "baseline of that setting (the better value in bold); the margin is in the metric's direction, "
                     f"positive when SIREN is better, ± the half-width of the {CONFIDENCE:.0%} interval of the mean "
                     f"paired difference where the setting has several cases (frames, images); {LEVEL_RULE}. "
                     "Each row's values, setting and profile are those of its study's tables above",
                     ["study", "setting", "metric", "SIREN", "value", "best baseline", "value", "margin",
                      "verdict"], rows, lead=4)

    def _speed_summary(self) -> list[str]:
        """One abstract line per device: each suite's speedup over the eager reference of the
        fastest default backend (torch, triton or cuda; no variant), at the tables' default size
        (on the CPU at the largest thread count measured), with the run's date."""
        out = []
        suites = ("fit", "poisson-grad", "poisson-laplacian", "render")
        rows = [r for r in self.bench if not r.get("sweep") and str(r.get("size")) == "default"
                and r.get("status", "ok") == "ok" and isinstance(r.get("speedup"), (int, float))
                and r.get("provider") in ("torch", "triton", "cuda") and r.get("suite") in suites]
        gpus_first = sorted({(r.get("device_type") != "cuda", str(r.get("device"))) for r in rows})
        for _, dev in gpus_first:
            threads, rs = _most_threads([r for r in rows if str(r.get("device")) == dev])
            parts = []
            cpu = False
            for suite in suites:
                best = max((r for r in rs if r.get("suite") == suite), key=lambda r: r["speedup"], default=None)
                if best is not None:
                    target = (GPU_TARGETS if best.get("device_type") == "cuda" else TARGETS).get(suite, 0.0)
                    ref = next((r for r in self.bench if not r.get("sweep") and r.get("run_id") == best.get("run_id")
                                and r.get("suite") == suite and r.get("provider") == "reference"
                                and r.get("size") == best.get("size")), {})
                    spread = ""
                    if best.get("device_type") != "cuda" and all(
                            isinstance(x.get(k), (int, float)) and x[k] > 0 for x in (ref, best)
                            for k in ("q10_ms", "q90_ms")):
                        cpu = True  # the run's own spread: slowest reference over fastest step and back
                        spread = (f", {ref['q10_ms'] / best['q90_ms']:.2f}x to {ref['q90_ms'] / best['q10_ms']:.2f}x "
                                  "between the timed rounds' extremes: the reference's 10th-percentile round over "
                                  "the backend's 90th, and its 90th over the backend's 10th")
                    parts.append(f"{suite} {speedup_text(best['speedup'], target)} ({best['provider']}{spread}"
                                 + (f"; target {target:g}x" if target else "")
                                 + ("; against a reference that recorded an autograd graph"
                                    if reference_infer_graph(next((r for r in self.bench if not r.get("sweep")
                                                                   and r.get("run_id") == best.get("run_id")
                                                                   and r.get("suite") == suite
                                                                   and r.get("provider") == "reference"), {}))
                                    else "") + ")")
            if parts:
                where = dev + (f", {_count(threads, 'torch thread')}" if threads is not None else "")
                out.append(f"Speed on {where} ({_dates(rs)}), the step (render: the inference call) of the fastest "
                           "fused backend in its default settings (torch, triton or cuda; Section 4.7 has the variants "
                           "and the speed targets) over the official-style eager reference at the default benchmark "
                           "size: " + ", ".join(parts) + "."
                           + (" These are from one run: on this shared CPU the same suites have measured far apart "
                              "from run to run (the Discussion's limits)." if cpu else ""))
        return out

    def _speed_limits(self) -> list[str]:
        """One Discussion line per GPU: the speed targets against the ceiling the reference's
        own floor fraction sets (same GEMMs at the same precision)."""
        out = []
        gpu_rows = [r for r in self.bench if r.get("device_type") == "cuda" and not r.get("sweep")
                    and str(r.get("size")) == "default"]  # the targets' size
        for dev in sorted({str(r.get("device")) for r in gpu_rows}):
            ts = gpu_targets([r for r in gpu_rows if str(r.get("device")) == dev])
            if not ts:
                continue
            over = [t for t in ts if t["target"] > t["ceiling"]]
            dev_rows = [r for r in gpu_rows if str(r.get("device")) == dev]
            text = f"Speed on {dev} (rows of {_dates(dev_rows)}): " + "; ".join(
                f"{t['suite']}, target {t['target']:g}x, ceiling {t['ceiling']:.2f}x, best of triton and cuda "
                f"{max(x for _, x, _ in t['providers']):.2f}x"
                + (" (overstated: that reference recorded an autograd graph during inference"
                   + self._against_compiled_reference([r for r in dev_rows if r.get("suite") == t["suite"]], t)
                   + ")" if t["reference_overstated"] else "") for t in ts) + "."
            if over:
                text += (" The targets of " + ", ".join(t["suite"] for t in over) + " lie above their ceilings, "
                         "1 / the reference's floor fraction: the time of the jet algorithm's GEMMs alone through "
                         "cuBLAS at fp32 bounds every provider whose GEMMs run at that speed from below (for "
                         "poisson-grad, scaled by the share of those GEMMs the reverse-mode gradient makes). Larger "
                         "gains need fewer FLOPs or faster GEMMs: fp32 emulated on tensor cores (three TF32 "
                         "products, as Triton's tf32x3 kernels and the +3xtf32 providers make them; not bound by "
                         "that ceiling in principle, though the triton rows above do not pass it), or lower "
                         "precision (tf32, half), which the precision study weighs against the jets' accuracy.")
            out.append(text)
        return out

    def other_data(self) -> dict:
        """The published results of other methods that the tasks keep in their results files
        (``published_other_data`` of sr, ``published`` of vfi): method rows, one column per
        dataset (and scale), printed at the precision they were published with."""
        out = {}
        for key, field, metric in (("sr", "published_other_data", "psnr_y"), ("vfi", "published", "ie")):
            pub = next((res.doc[field] for res in self.results.get(key, [])
                        if isinstance(res.doc.get(field), list) and res.doc[field]), None)
            if not pub:
                continue
            pub = [r for r in pub if isinstance(r, dict) and isinstance(r.get(metric), (int, float))]
            cols = list(dict.fromkeys((str(r.get("dataset", "?")), r.get("scale")) for r in pub))
            methods = list(dict.fromkeys(str(r.get("method", "?")) for r in pub))
            rows = []
            for m in methods:
                vals = {(str(r.get("dataset", "?")), r.get("scale")): r[metric]
                        for r in pub if str(r.get("method")) == m}
                rows.append([m] + [f"{vals[c]:.2f}" if c in vals else "–" for c in cols])
            head = [f"{d} ×{fmt('scale', sc)}" if sc is not None else f"{d}, mean {_label(metric)}" for d, sc in cols]
            out[key] = {"columns": ["method"] + head, "rows": rows}
        return out

    # -- the whole document
    def inventory(self, skipped: list[str]) -> dict:
        body = []
        for task in sorted(self.results):
            for res in self.results[task]:
                d = res.doc
                secs = d.get("seconds")
                body.append([cell(res.path.name), cell(task), cell(res.profile), cell(str(d.get("device", "?"))),
                             cell(str(d.get("backend", "?"))), cell(_commit(d)),
                             cell(str(d.get("date", "?"))[:10]),
                             cell(fmt("seconds", float(secs)) if isinstance(secs, (int, float)) else "–")])
        return table("Results files the report is built from", ["file", "task", "profile", "device", "backend",
                                                                "commit", "date", "seconds"],
                     body, lead=7, notes=[f"Not used: {s}" for s in skipped])

    def build(self, skipped: list[str], forced: str | None) -> dict:
        sections = {"fit": self.fit(), "poisson": self.poisson(), "compare": self.compare(),
                    "ablate": self.ablate(), "sr": self.sr(), "vfi": self.vfi(), "bench": self.speed(),
                    "verify": self.verify()}
        missing = {k: f"No {k} results yet: no results file with task \"{k}\""
                      + (f" at profile {forced}" if forced else "") + " was found, so this study is not reported."
                   for k in TASKS}
        missing["bench"] = "No benchmark results yet: no CSV file was found under the benchmark results folder."
        missing["verify"] = ("No mutation check yet: none of "
                             + ", ".join(mutation_results(t) for t in TARGET_NAMES)
                             + " was found under the benchmark results folder ("
                             + "; ".join(mutation_command(t) for t in TARGET_NAMES) + " write them).")
        def line(s: Section, c: Comparison) -> str:
            two = len({d.metric for d in s.comparisons}) > 1  # say which metric (and its direction) counts
            way = f" ({direction(c.metric)})" if c.metric.startswith("psnr") else ""  # IE's sentence says it
            return (f"{s.key}, by {_short_label(c.metric)}{way}" if two else s.key) + f" – {c.sentence()}"

        worked = [line(s, c) for s in sections.values() for c in s.comparisons if c.won]
        lost = [line(s, c) for s in sections.values() for c in s.comparisons if not c.won]
        other_losses = [f"{s.key} – {n}" for s in sections.values() for n in s.lost]
        lost += other_losses
        profiles = sorted({r.profile for rs in self.results.values() for r in rs},
                          key=lambda p: PROFILE_ORDER.index(p) if p in PROFILE_ORDER else 9)
        devices = sorted({str(r.doc.get("device", "?")) for rs in self.results.values() for r in rs}
                         | {str(r.get("device")) for r in self.bench if "device" in r})
        absent = [k for k in TASKS if not sections[k].results] + ([] if self.bench else ["bench"])
        limits = []
        if absent:
            limits.append("Studies without results in this build: " + ", ".join(absent) + ".")
        if profiles and "paper" not in profiles:
            limits.append("No task study ran at the paper profile: every task's number here comes from the reduced "
                          f"{' and '.join(profiles)} profile{'s' if len(profiles) > 1 else ''}, "
                          "with smaller images and fewer steps than the paper.")
        if any(r.doc.get("backend") == "torch" and isinstance(r.doc.get("threads"), int)
               for rs in self.results.values() for r in rs):
            limits.append(CPU_REPEATABILITY)
        limits += self.limits
        limits += self._speed_limits()
        summary = []
        # one comparison per study, setting and SIREN method: a study that reports two metrics of one
        # case (VFI's IE and PSNR) counts the first it lists, so no case is counted twice
        cases: dict[tuple[str, str, str], Comparison] = {}
        for s in sections.values():
            for c in s.comparisons:
                cases.setdefault((s.key, c.group, c.siren), c)
        if cases:
            wins, level = sum(c.won for c in cases.values()), sum(c.level for c in cases.values())
            per = defaultdict(lambda: [0, 0])
            for (key, _, siren), c in cases.items():
                per[key, siren][0] += c.won
                per[key, siren][1] += 1
            counted: dict[str, list[str]] = defaultdict(list)  # each study's counted metrics, in order
            for (key, _, _), c in cases.items():
                if c.metric not in counted[key]:
                    counted[key].append(c.metric)
            by_metric: dict[str, list[str]] = defaultdict(list)
            for key, ms in counted.items():
                for m in ms:  # a study counted in two metrics names the settings of each
                    groups = dict.fromkeys(g for (k, g, _), c in cases.items() if k == key and c.metric == m)
                    by_metric[m].append(key if len(ms) == 1 else f"{key} ({'; '.join(groups)})")
            metrics = "; ".join(f"{_short_label(m)}" + (f" ({direction(m)})" if not m.startswith("psnr") else "")
                                + f" for {' and '.join(keys)}" for m, keys in by_metric.items())
            several = {k for k, _ in per if sum(1 for kk, _ in per if kk == k) > 1}

            def name(key: str, siren: str) -> str:
                return f"{key} {siren}" if key in several else key

            def by(key: str) -> str:
                two = len({d.metric for d in sections[key].comparisons}) > 1
                return f" by {' and '.join(_short_label(m) for m in counted[key])}" if two else ""
            summary.append(f"Across {len(cases)} cases, one per study, setting and SIREN method, each counted by one "
                           f"metric ({metrics}), the SIREN method against the best baseline of its setting is "
                           f"better in {wins}, level in {level} ({LEVEL_RULE}) and worse in "
                           f"{len(cases) - wins - level}. Better per study"
                           + (" and SIREN method" if several else "") + ": "
                           + ", ".join(f"{name(k, m)} {w} of {n}{by(k)}" for (k, m), (w, n) in per.items()) + "."
                           + _worse_cases(cases))
            counted_ids = {id(c) for c in cases.values()}
            for s in sections.values():  # a case's other metrics, counted apart (never added to the above)
                rest = [c for c in s.comparisons if id(c) not in counted_ids]
                for m in dict.fromkeys(c.metric for c in rest):
                    cs = [c for c in rest if c.metric == m]
                    counts = []
                    for siren in dict.fromkeys(c.siren for c in cs):
                        mine = [c for c in cs if c.siren == siren]
                        w, lv = sum(c.won for c in mine), sum(c.level for c in mine)
                        counts.append(f"{siren} is better in {w} of {len(mine)}, level in {lv} and worse in "
                                      f"{len(mine) - w - lv}")
                    summary.append(f"Counted by {_short_label(m)} ({direction(m)}) instead, in {s.key}: "
                                   + "; ".join(counts) + ".")
        seconds = [s.key for s in sections.values() if s.lost]
        if seconds:
            summary.append("On a second measure a baseline is above the best SIREN variant in some cases of "
                           + " and ".join(seconds) + " (the Discussion says where and how often).")
        summary += self._speed_summary()
        return {
            "generated": {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                          "commit": common.git_commit()[:12], "profiles": profiles, "devices": devices,
                          "task_devices": sorted({str(r.doc.get("device", "?")) for rs in self.results.values()
                                                  for r in rs}),
                          "bench_devices": sorted({str(r.get("device")) for r in self.bench if "device" in r}),
                          "forced": forced or "", "files": sum(len(v) for v in self.results.values()),
                          "bench_rows": len(self.bench), "cpu_blocks": cpu_block_rule()},
            "sections": {k: s.to_json(missing[k]) for k, s in sections.items()},
            "discussion": {"worked": worked, "lost": lost, "limits": limits, "summary": summary,
                           "readings": self.readings,
                           "table": self._verdict_table(sections), "other_losses": other_losses},
            "inventory": self.inventory(skipped + self.skipped),
            "other_data": self.other_data(),
            "other_figures": self._task_figures(None),
        }


def cpu_block_rule() -> dict:
    """The torch backend's CPU point blocks (:func:`fastsiren.jet._point_blocks`) for the
    template's Method section: the floor of points, the elements per block as a power of two,
    and the points of a block at two widths."""
    import torch

    from fastsiren import jet

    def points(width: int) -> int:
        return jet._point_blocks(1 << 30, torch.device("cpu"), 1, width)[0].stop

    return {"rows": jet.CPU_BLOCK_ROWS, "log2": jet.CPU_BLOCK_ELEMS.bit_length() - 1, "narrow": 64,
            "narrow_points": points(64), "from": jet.CPU_BLOCK_ELEMS // jet.CPU_BLOCK_ROWS}


# ---------------------------------------------------------------- compile

def template_text() -> str:
    """The Typst template shipped with the package (``fastsiren/report/report.typ``)."""
    return resources.files("fastsiren.report").joinpath("report.typ").read_text(encoding="utf-8")


def referenced_figures(data: dict) -> list[str]:
    """File names of every figure the report data references."""
    return [f["file"] for s in data["sections"].values() for f in s["figures"]] + \
        [f["file"] for f in data.get("other_figures", [])]


def compile_pdf(data: dict, figures_dir: Path, out: Path) -> None:
    """Compile ``report.typ`` with ``data`` and the referenced figures into ``out``.

    Everything is staged in a temporary folder that is the Typst root, so the compiler
    reads nothing else; only the fonts embedded in the typst wheel are used, so the PDF
    is the same on every machine.
    """
    import typst

    with tempfile.TemporaryDirectory(prefix="fastsiren-report-") as tmp:
        root = Path(tmp)
        (root / "figures").mkdir()
        for name in referenced_figures(data):
            src = figures_dir / name
            if not src.exists():
                raise FileNotFoundError(f"figure {src} is referenced by the report but does not exist")
            shutil.copyfile(src, root / "figures" / name)
        (root / "data.json").write_text(json.dumps(data, indent=1, default=str))
        (root / "report.typ").write_text(template_text(), encoding="utf-8")
        out.parent.mkdir(parents=True, exist_ok=True)
        pdf = typst.compile(str(root / "report.typ"), root=str(root), ignore_system_fonts=True)
        common.atomic_write_bytes(out, pdf)


def build(results_dir: Path, bench_dir: Path, figures_dir: Path, out: Path,
          profile: str | None = None) -> dict:
    """Build the report; returns the data it was compiled from (with ``out``)."""
    results, skipped = load_results(results_dir, profile)
    bench = load_bench(bench_dir, skipped)
    def doc(name: str) -> dict | None:
        path = bench_dir / name
        return json.loads(path.read_text()) if path.is_file() else None

    figures_dir.mkdir(parents=True, exist_ok=True)
    weighted = [json.loads(path.read_text()) for path in sorted(bench_dir.glob("weighted-cost-*.json"))]
    cpu_gemm = [json.loads(path.read_text()) for path in sorted(bench_dir.glob("cpu-gemm*.json"))]
    data = Builder(results, bench, figures_dir, doc(GEMM_FILE),
                   {t: doc(mutation_results(t)) for t in TARGET_NAMES}, doc(PROFILE_FILE),
                   doc(PRECISION_FILE), doc(CPU_MALLOC_FILE), weighted, cpu_gemm, doc(REGISTERS_FILE),
                   doc(CPU_GEMM_AUTO_FILE), doc(CPU_TRIG_FILE)).build(skipped, profile)
    compile_pdf(data, figures_dir, out)
    data["out"] = str(out)
    return data


def add_arguments(parser) -> None:
    parser.add_argument("--results", default="docs/results", help="folder of results JSON files")
    parser.add_argument("--bench", default="benchmarks/results", help="folder of benchmark CSV files")
    parser.add_argument("--figures", default="docs/figures",
                        help="folder of the tasks' figures; the report's own figures are written here too")
    parser.add_argument("--out", default="docs/report.pdf", help="PDF to write")
    parser.add_argument("--profile", choices=PROFILE_ORDER, default=None,
                        help="use only results of this profile (default: the best per study, paper > cpu > quick)")


def main(args) -> int:
    for flag, folder in (("--results", args.results), ("--bench", args.bench)):
        if not Path(folder).is_dir():  # a typo would build an empty report over docs/report.pdf
            raise FileNotFoundError(f"{flag} {folder}: no such folder (run from the repository root, or name "
                                    "the folder; an empty folder builds a report that says what is missing)")
    common.check_output_file(args.out, "--out")  # before the build, not after it
    common.check_output_dir(args.figures, "--figures")
    data = build(Path(args.results), Path(args.bench), Path(args.figures), Path(args.out), args.profile)
    for note in (data.get("inventory") or {}).get("notes", []):
        if note.startswith("Not used: ") and "superseded by" not in note:
            print(f"report: {note[0].lower()}{note[1:]}", file=sys.stderr)
    have = [k for k, s in data["sections"].items() if s["available"]]
    print(f"report -> {args.out}: {data['generated']['files']} results files, "
          f"{data['generated']['bench_rows']} benchmark rows, {len(referenced_figures(data))} figures; "
          f"studies with results: {', '.join(have) or 'none'}", file=sys.stderr)
    return 0
