"""Generate the README's performance section from ``benchmarks/results/*.csv``.

Nothing in that section is typed by hand: this module rewrites the block between
``<!-- perf:start -->`` and ``<!-- perf:end -->`` of README.md (the rest of the README is
left untouched). Run ``python -m benchmarks.readme_tables`` after a benchmark run, or with
``--print`` to see the markdown. Each table names its device; for each (device, size,
dtype) and suite the latest run is shown.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Sequence

from .cpu_malloc import CPU_MALLOC_FILE
from .cpu_trig import CPU_TRIG_FILE
from .gemm_count import GEMM_FILE, pairs
from .records import REFERENCE_INFER_NOTE, REPO_ROOT, RESULTS_DIR, latest, read_rows, reference_infer_graph
from .scaling import SCALING_FILE, SWEEPS, device_tag, figure_name, summarize
from .suites import REVERSE_GRAD_PRODUCT_SHARE

START, END = "<!-- perf:start -->", "<!-- perf:end -->"
SUITE_ORDER = ("layer", "fit", "poisson-grad", "poisson-laplacian", "wave", "render")
# Issue 2's targets for the torch backend against reference (defined on the 2-core CPU).
TARGETS = {"fit": 1.0, "poisson-grad": 1.5, "poisson-laplacian": 1.8}
# The Triton and CUDA issues' targets on an H100/H200: speedup over reference per suite, and
# every step within 2x of its floor (floor fraction >= 0.5).
GPU_TARGETS = {"fit": 2.0, "poisson-grad": 5.0, "poisson-laplacian": 8.0, "render": 3.0}
GPU_FLOOR_TARGET = 0.5


def load_results(results_dir: Path = RESULTS_DIR) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(suite rows, scaling rows) of every CSV in ``results_dir``."""
    suite_rows, scaling_rows = [], []
    for path in sorted(Path(results_dir).glob("*.csv")):
        rows = read_rows(path)
        (scaling_rows if path.name == SCALING_FILE else suite_rows).extend(rows)
    return suite_rows, scaling_rows


def _num(v: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _f(v: str, spec: str = ".3g") -> str:
    x = _num(v)
    return "–" if math.isnan(x) else format(x, spec)


def _ms(v: str | float) -> str:
    x = _num(v)
    if math.isnan(x):
        return "–"
    return f"{x:,.0f}" if x >= 1000 else f"{x:.3g}"


def _device_title(r: dict[str, str]) -> str:
    if r["device_type"] == "cuda":
        return f"{r['device']} (CUDA {r['cuda']})"
    threads = r.get("threads") or "?"
    return f"{r['device']}, {threads} thread{'s' if threads != '1' else ''}"


def _problem(r: dict[str, str]) -> str:
    if r["suite"] == "layer":
        return f"N={int(_num(r['points'])):,}, {r['hidden']}->{r['hidden']}"
    return f"N={int(_num(r['points'])):,}, D={r['in_features']}, {r['layers']}x{r['hidden']}"


def suite_tables(rows: Sequence[dict[str, str]]) -> str:
    """One markdown table per (device, threads, size, dtype) of the latest run of each suite."""
    rows = [r for r in latest(rows, ("device", "threads", "size", "dtype", "suite")) if r.get("sweep", "") == ""]
    groups: dict[tuple, list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault((r["device_type"] != "cuda", r["device"], r.get("threads", ""), r["size"], r["dtype"]),
                          []).append(r)
    parts = []
    for key in sorted(groups):
        rs = sorted(groups[key], key=lambda r: (_suite_index(r["suite"]), r["phase"]))
        first = rs[0]
        gpu = first["device_type"] == "cuda"
        unit, scale = ("TFLOP/s", 1.0) if gpu else ("GFLOP/s", 1e3)
        parts.append(f"#### {_device_title(first)} — size `{first['size']}`, {first['dtype']}\n")
        commits = sorted({r["commit"] for r in rs if r["commit"]})
        dates = sorted({r["date"][:10] for r in rs})
        rounds = sorted({int(r["rounds"]) for r in rs if r["status"] == "ok" and str(r.get("rounds", "")).isdigit()})
        rounds_text = " or ".join(map(str, rounds)) or "?"  # runs of one table may differ (e.g. --repeats)
        cpus = sorted({r["cpu_id"] for r in rs if r.get("cpu_id")})
        parts.append(f"torch {first['torch']}, triton {first['triton'] or '–'}; "
                     + (f"CPU {', '.join(cpus)}; " if cpus else "") + f"commit {', '.join(commits) or '–'}; "
                     f"{', '.join(dates)}. Median of {rounds_text} interleaved rounds"
                     + (" (several runs: compare rows of one commit and date)" if len(commits) > 1 else "") + ".\n")
        parts.append(f"| suite | phase | problem | provider | median ms | q10–q90 ms | vs reference | {unit} "
                     "| floor fraction | peak MiB |")
        parts.append("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
        not_timed: dict[tuple[str, str, str], list[str]] = {}
        for r in rs:
            if r["status"] != "ok":
                not_timed.setdefault((r["provider"], r["status"], r["reason"]), []).append(r["suite"])
                continue
            tput = _num(r["tflops"]) * scale
            parts.append(
                f"| {r['suite']} | {r['phase']} | {_problem(r)} | {r['provider']} | {_ms(r['median_ms'])} "
                f"| {_ms(r['q10_ms'])}–{_ms(r['q90_ms'])} | {_f(r['speedup'], '.2f')}x "
                f"| {'–' if math.isnan(tput) else format(tput, '.3g')} | {_f(r['floor_frac'], '.2f')} "
                f"| {_f(r['peak_mb'], '.4g')} |")
        parts.append("")
        if any(reference_infer_graph(r) for r in rs):
            parts.append(REFERENCE_INFER_NOTE + "\n")
        if not_timed:
            parts.append("Not timed: " + "; ".join(
                f"{prov} on {', '.join(_dedupe(suites))} ({status}: {reason})"
                for (prov, status, reason), suites in not_timed.items()) + ".\n")
        parts.append(target_lines(rs) if not gpu else gpu_target_lines(rs))
    return "\n".join(parts)


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _suite_index(name: str) -> int:
    return SUITE_ORDER.index(name) if name in SUITE_ORDER else len(SUITE_ORDER)


def speed_ceiling(ref: dict | None, suite: str, floor: str = "floor_frac") -> float:
    """1 / (reference's floor fraction): the most a provider can beat reference by when it
    makes the counted products (benchmarks/suites.py) at the floor's speed and spends no time
    on anything else; on poisson-grad divided by :data:`REVERSE_GRAD_PRODUCT_SHARE`, the share
    of those products the reverse-mode gradient makes (every backend takes it there). ``floor``
    names the floor-fraction column (``floor_x3_frac``: the 3xTF32 floor). NaN without a
    reference row or that floor."""
    if ref is None:
        return math.nan
    ceiling = 1 / _num(ref.get(floor, ""))
    return ceiling / REVERSE_GRAD_PRODUCT_SHARE if suite == "poisson-grad" else ceiling


def _ok_row(rows: Sequence[dict], suite: str, provider: str) -> dict | None:
    return next((r for r in rows if r.get("suite") == suite and r.get("provider") == provider
                 and r.get("status", "ok") == "ok"), None)


def torch_targets(rows: Sequence[dict]) -> list[tuple[dict, float, float, float]]:
    """Issue 2's torch-vs-reference targets among ``rows`` (one run's): ``(row, speedup,
    target, ceiling)`` of the torch row of each suite in :data:`TARGETS` order (met where
    speedup >= target; ceiling: :func:`speed_ceiling`, NaN without a reference row)."""
    out = []
    for suite, target in TARGETS.items():
        r = _ok_row(rows, suite, "torch")
        if r is not None:
            out.append((r, _num(r["speedup"]), target, speed_ceiling(_ok_row(rows, suite, "reference"), suite)))
    return out


def speedup_text(got: float, target: float) -> str:
    """``got`` as "1.40x"; where two decimals would round a missed target onto it, three (rounded
    down where three would too): "1.499x", not "1.50x" beside "target >= 1.5x: missed"."""
    text = f"{got:.2f}"
    if got < target <= float(text):
        text = f"{got:.3f}"
        if float(text) >= target:
            text = f"{math.floor(got * 1000) / 1000:.3f}"
    return text + "x"


def numpy_trig_floor_text(doc: dict) -> str:
    """The element floors of benchmarks/cpu_trig.py's file, "16,384 elements at 1 torch thread
    and 65,536 elements at 2 torch threads"."""
    floors = doc.get("numpy_min_elements") or {}
    return " and ".join(f"{n:,} elements at {t} torch thread{'' if t == '1' else 's'}" for t, n in floors.items())


def target_lines(rows: Sequence[dict[str, str]]) -> str:
    """Issue 2's torch-vs-reference targets, met or missed, from the rows of one table, each
    with its ceiling (:func:`speed_ceiling`)."""
    lines = []
    for r, got, target, ceiling in torch_targets(rows):
        verdict = "met" if got >= target else "**missed**"
        lines.append(f"- {r['suite']}: torch {speedup_text(got, target)} reference (target >= {target:g}x): {verdict}"
                     + ("" if math.isnan(ceiling) else f"; ceiling {ceiling:.2f}x"))
    if not lines:
        return ""
    return ("The torch backend's CPU speed targets over reference. The ceiling is 1 / (reference's floor fraction), on "
            f"poisson-grad divided by {REVERSE_GRAD_PRODUCT_SHARE:.2g}: what torch would reach if its matrix "
            "products ran at the floor's speed (`torch.matmul` on this CPU) and nothing else took time "
            "(benchmarks/suites.py):\n\n" + "\n".join(lines) + "\n")


def gpu_targets(rows: Sequence[dict]) -> list[dict]:
    """The Triton and CUDA issues' targets from the rows of one GPU run (one device and size):
    per suite with a reference row, the target, the ceiling 1 / reference's floor fraction (a
    provider that makes the jet algorithm's GEMMs at fp32 cannot beat reference by more; on
    poisson-grad divided by the reverse-mode gradient's share of those products, which the
    triton and cuda backends take there), the same ceiling at the 3xTF32 floor where the run
    measured one (``floor_x3_frac``; NaN otherwise), and, for triton and cuda, (provider,
    speedup, floor fraction)."""
    out = []
    for suite, target in GPU_TARGETS.items():
        ref = _ok_row(rows, suite, "reference")
        got = [(p, _num(r.get("speedup")), _num(r.get("floor_frac"))) for p in ("triton", "cuda")
               if (r := _ok_row(rows, suite, p)) and math.isfinite(_num(r.get("speedup")))]  # a cell may be empty
        if ref is not None and got:
            out.append({"suite": suite, "target": target, "ceiling": speed_ceiling(ref, suite),
                        "ceiling_x3": speed_ceiling(ref, suite, "floor_x3_frac"),
                        "providers": got, "reference_overstated": reference_infer_graph(ref)})
    return out


def gpu_target_lines(rows: Sequence[dict[str, str]]) -> str:
    """:func:`gpu_targets` as README lines, met or missed."""
    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    lines = [f"- {t['suite']} (target >= {t['target']:g}x, floor fraction >= {GPU_FLOOR_TARGET:g}): "
             + "; ".join(f"{p} {speedup_text(x, t['target'])} ({verdict(x >= t['target'])}), "
                         + (f"floor fraction {speedup_text(f, GPU_FLOOR_TARGET)[:-1]} "
                            f"({verdict(f >= GPU_FLOOR_TARGET)})" if math.isfinite(f) else "floor not measured")
                         for p, x, f in t["providers"])
             + f"; ceiling at reference's GEMMs: {t['ceiling']:.2f}x"
             + ("" if math.isnan(t["ceiling_x3"]) else f", at the same GEMMs as 3xTF32: {t['ceiling_x3']:.2f}x")
             + (" (overstated: that reference recorded an autograd graph, see the note above)"
                if t["reference_overstated"] else "")
             for t in gpu_targets(rows)]
    if not lines:
        return ""
    return ("The triton and cuda backends' GPU speed targets over reference. The ceiling is 1 / (reference's floor "
            "fraction): a provider whose GEMMs of the jet algorithm run at the speed of cuBLAS fp32 takes at least "
            "their time alone, so it cannot beat reference by more (Triton's tf32x3 GEMMs, on tensor cores, are "
            "not bound by it; the second ceiling, where a run measured it, is the same bound for GEMMs made as "
            "3xTF32 tensor-core products, the `+3xtf32` providers' and Triton's precision); on poisson-grad it "
            "is divided by "
            f"{REVERSE_GRAD_PRODUCT_SHARE:.2g}, the share of those products the reverse-mode gradient makes "
            "(benchmarks/suites.py).\n\n" + "\n".join(lines) + "\n")


def scaling_target_misses(rows: Sequence[dict[str, str]]) -> dict[str, tuple[int, list[str]]]:
    """The benchmark issue's CPU target on one device's scaling rows: per Poisson suite, the
    number of sizes torch ran at and those (``sweep=value: speedup``, rounded down, so a miss
    never prints as the target) where torch misses issue 2's margin over reference."""
    out: dict[str, tuple[int, list[str]]] = {}
    order = {s: i for i, s in enumerate(SWEEPS)}
    for suite in ("poisson-grad", "poisson-laplacian"):
        ok = [r for r in rows if r["suite"] == suite and r["provider"] == "torch" and r["status"] == "ok"
              and r.get("speedup")]
        if not ok:
            continue
        ok.sort(key=lambda r: (order.get(r["sweep"], len(SWEEPS)), float(r["sweep_value"])))
        miss = [f"{r['sweep']}={float(r['sweep_value']):g}: {math.floor(_num(r['speedup']) * 1000) / 1000:.3f}x"
                for r in ok if _num(r["speedup"]) < TARGETS[suite]]
        out[suite] = (len(ok), miss)
    return out


def scaling_target_text(rows: Sequence[dict[str, str]]) -> str:
    """:func:`scaling_target_misses` as one sentence per suite (empty off the CPU)."""
    parts = []
    for suite, (n, miss) in scaling_target_misses(rows).items():
        head = f"{suite}: torch >= {TARGETS[suite]:g}x reference at {n - len(miss)} of {n} sizes"
        parts.append(head + (f"; missed at {', '.join(miss)}" if miss else " (met at every size of the sweep)") + ".")
    return " ".join(parts)


def sweep_runs(rows: Sequence[dict[str, str]]) -> str:
    """The commits and dates of a device's sweep rows, oldest first: "commit abc (2026-12-04), ..."."""
    runs = sorted({(str(r.get("date", ""))[:10], str(r.get("commit", ""))[:10]) for r in rows})
    return ("commit " if len(runs) == 1 else "commits ") + ", ".join(f"{c or '?'} ({d or 'no date'})" for d, c in runs)


def scaling_tables(rows: Sequence[dict[str, str]], figures_rel: str = "docs/figures") -> str:
    """Per device and suite: growth exponents, where memory ran out, and the plots."""
    rows = latest(rows, ("device", "threads", "suite", "sweep", "dtype"))
    by_device: dict[tuple, list[dict[str, str]]] = {}
    for r in rows:
        by_device.setdefault((r["device_type"] != "cuda", r["device"], r.get("threads", "")), []).append(r)
    parts = []
    for key in sorted(by_device):
        rs = by_device[key]
        first = rs[0]
        parts.append(f"#### Scaling on {_device_title(first)}\n")
        runs = sweep_runs(rs)
        parts.append(f"Rows of {runs}. "
                     "Exponent = slope of log(time) vs log(variable) (points: over the largest three sizes). "
                     "Bytes/point = peak memory / N at the largest size run.\n")
        parts.append("| suite | sweep | provider | range run | time at ends (ms) | vs reference (min–max) "
                     "| exponent | bytes/point | stopped at |")
        parts.append("|---|---|---|---|---|---|---:|---:|---|")
        summary = sorted(summarize(rs), key=lambda s: (_suite_index(s["suite"]), SWEEPS.index(s["sweep"])
                                                       if s["sweep"] in SWEEPS else len(SWEEPS), s["provider"]))
        figures = []
        # a provider that ran at no size here (e.g. triton on a CPU) gets one line, not a row per sweep
        not_run: dict[str, str] = {}
        for s in summary:
            if s["first"] is None:
                reason = (s["stopped"] or "").split(": ", 1)[-1]
                not_run.setdefault(s["provider"], reason)
                continue
            rng = f"{s['first'][0]:g}–{s['last'][0]:g}"
            times = f"{_ms(s['first'][1])} – {_ms(s['last'][1])}"
            bpp = "–" if math.isnan(s["bytes_per_point"]) else f"{s['bytes_per_point']:,.0f}"
            exp = "–" if math.isnan(s["exponent"]) else f"{s['exponent']:.2f}"
            spd = "–" if s["speedup"] is None else f"{s['speedup'][0]:.2f}x–{s['speedup'][1]:.2f}x"
            parts.append(f"| {s['suite']} | {s['sweep']} | {s['provider']} | {rng} | {times} | {spd} | {exp} "
                         f"| {bpp} | {s['stopped'] or '–'} |")
            tag = device_tag(first["device_type"], first["device"], first.get("threads"))
            fig = f"{figures_rel}/{figure_name(tag, s['suite'], s['sweep'])}"
            if fig not in figures and (REPO_ROOT / fig).exists():
                figures.append(fig)
        parts.append("")
        if any(reference_infer_graph(r) for r in rs):
            parts.append(REFERENCE_INFER_NOTE + "\n")
        if first["device_type"] != "cuda" and (verdict := scaling_target_text(rs)):
            provs = {r["provider"] for r in rs}
            why = ("torch's margin is reference's elementwise and memory overhead plus, per kind of product, the "
                   "faster of oneDNN's and BLAS's (torch+onednn, torch+blas: the same algorithm in the fixed modes)"
                   if "torch+onednn" in provs else
                   "torch's margin is reference's elementwise and memory overhead plus oneDNN's faster products "
                   "(torch+blas: the same algorithm with reference's BLAS products)"
                   if "torch+blas" in provs else
                   "torch's margin is only reference's elementwise and memory overhead, which shrinks where its "
                   "tensors fit in cache (these runs predate the oneDNN products)")
            parts.append("The CPU target of the sweeps (torch beats reference on the Poisson steps by its CPU "
                         f"targets' margins at every size), in these sweeps ({runs}; where they are older than the "
                         f"default-size tables' run, those tables' target lines are the latest word): {verdict} Where "
                         "the two "
                         "execute the same matrix products (the "
                         f"ratio column of the matrix-product table), {why}.\n")
        if not_run:
            parts.append("Not run here: " + "; ".join(f"{p} ({r})" if r else p for p, r in sorted(not_run.items()))
                         + ".\n")
        parts.extend(f"![{Path(f).stem}]({f})" for f in figures)
        parts.append("")
    return "\n".join(parts)


def render_section(results_dir: Path = RESULTS_DIR) -> str:
    """The markdown of the whole performance block."""
    suite_rows, scaling_rows = load_results(results_dir)
    head = ("<!-- generated by `python -m benchmarks.readme_tables` from benchmarks/results/*.csv: "
            "do not edit by hand -->\n"
            "Times are per call (a training step includes the backward and the Adam step). Throughput counts "
            "matrix-product FLOPs of the jet algorithm only (benchmarks/suites.py); the floor fraction is the "
            "time of those products alone through `torch.matmul` divided by the provider's time. Every "
            "provider was checked against the float64 reference before it was timed.\n")
    body = suite_tables(suite_rows) if suite_rows else "_No benchmark results yet._\n"
    scal = scaling_tables(scaling_rows) if scaling_rows else ""
    gemm = gemm_table(Path(results_dir) / GEMM_FILE)
    malloc = malloc_table(Path(results_dir) / CPU_MALLOC_FILE)
    trig = trig_table(Path(results_dir) / CPU_TRIG_FILE)
    return "\n".join(p for p in (head, body, gemm, malloc, trig, scal) if p).rstrip() + "\n"


def malloc_table(path: Path) -> str:
    """From benchmarks/cpu_malloc.py's file: reference's and torch's CPU steps under glibc's
    default malloc settings and with its thresholds pinned (empty without the file)."""
    import json

    if not path.is_file():
        return ""
    doc = json.loads(path.read_text())
    threads = f"{doc['threads']} thread{'s' if doc['threads'] != '1' else ''}"
    lines = [f"#### The allocator on {doc['device']}, {threads} (`python -m benchmarks.cpu_malloc`, "
             f"commit {doc['commit']})\n",
             f"Size `{doc['size']}`. The same steps in child processes under glibc's default malloc settings "
             "and with `MALLOC_MMAP_THRESHOLD_` and `MALLOC_TRIM_THRESHOLD_` pinned at 1 GiB (freed memory "
             "stays in the process, no page faults for fresh blocks), alternating, "
             f"{doc['passes']} processes per setting, each the median of {doc['repeats']} interleaved rounds; "
             "a time is the median over the processes.\n",
             "| suite | phase | reference ms (glibc / pinned) | torch ms (glibc / pinned) "
             "| torch vs reference (glibc / pinned) |", "|---|---|---:|---:|---:|"]
    for r in doc["rows"]:
        ms, sp = r["ms"], r["torch_speedup"]
        lines.append(f"| {r['suite']} | {r['phase']} | {_ms(ms['glibc']['reference'])} / "
                     f"{_ms(ms['pinned']['reference'])} | {_ms(ms['glibc']['torch'])} / {_ms(ms['pinned']['torch'])} "
                     f"| {sp['glibc']:.2f}x / {sp['pinned']:.2f}x |")
    return "\n".join(lines) + "\n"


def trig_table(path: Path) -> str:
    """From benchmarks/cpu_trig.py's file: NumPy's and torch's float32 sines and cosines per
    element, their largest errors, and the torch backend's steps with each (empty without the
    file)."""
    import json

    if not path.is_file():
        return ""
    doc = json.loads(path.read_text())
    threads = f"{doc['threads']} thread{'s' if doc['threads'] != '1' else ''}"
    ns = {(r["function"], r["library"], r["threads"]): r["ns_per_element"] for r in doc["elementwise"]}
    torch_threads = sorted({t for (_, lib, t) in ns if lib == "torch"})
    lines = [f"#### Sines and cosines on {doc['device']}, {threads} (`python -m benchmarks.cpu_trig`, "
             f"commit {doc['commit']})\n",
             f"NumPy {doc['numpy']} (one thread) against torch (at 1..{torch_threads[-1]} threads) on float32; the "
             f"torch backend takes NumPy's for tensors of at least {numpy_trig_floor_text(doc)}. "
             f"{doc.get('method', '')}.\n",
             "| function | NumPy ns/element | " + " | ".join(f"torch ns/element, {t} thread{'s' if t > 1 else ''}"
                                                      for t in torch_threads) + " |",
             "|---|---:|" + "---:|" * len(torch_threads)]
    for fn in ("sin", "cos"):
        lines.append(f"| {fn} | {ns[(fn, 'numpy', 1)]:.3g} | "
                     + " | ".join(f"{ns[(fn, 'torch', t)]:.3g}" for t in torch_threads) + " |")
    if doc.get("per_call"):
        lines += ["", "Whole `jet.trig` sine calls, checks and conversions included (NumPy's is taken for tensors "
                      f"of at least {numpy_trig_floor_text(doc)}; its floors set aside here):", "",
                  "| torch threads | elements | NumPy µs per call | torch µs per call |", "|---:|---:|---:|---:|"]
        lines += [f"| {r['threads']} | {r['elements']:,} | {r['numpy_us']:.3g} | {r['torch_us']:.3g} |"
                  for r in doc["per_call"]]
    lines += ["", "| arguments | function | NumPy max error (ulp) | torch max error (ulp) |", "|---|---|---:|---:|"]
    err = {(r["range"], r["function"], r["library"]): r for r in doc.get("errors", [])}
    for (rng, fn, lib), r in err.items():
        if lib == "numpy" and "max_ulp" in r:
            lines.append(f"| {rng} | {fn} | {r['max_ulp']:.2f} | {err[(rng, fn, 'torch')]['max_ulp']:.2f} |")
    special = [r for r in doc.get("errors", []) if r["range"] == "special values"]
    if special:
        ok = all(r["nan_where_float64"] and r["all_close"] for r in special)
        lines.append("\nSpecial values (" + ", ".join(str(v) for v in special[0]["values"]) + "): "
                     + ("both libraries agree with float64, NaN where it gives NaN." if ok else
                        "**a library disagrees with float64** (see the file)."))
    if doc.get("steps"):
        lines += ["", "| suite | phase | torch backend ms, NumPy's | ms, torch's (torch+torchtrig) | ratio |",
                  "|---|---|---:|---:|---:|"]
        lines += [f"| {r['suite']} | {r['phase']} | {_ms(r['numpy_ms'])} | {_ms(r['torch_ms'])} "
                  f"| {r['numpy_over_torch']:.2f} |" for r in doc["steps"]]
    return "\n".join(lines) + "\n"


def gemm_table(path: Path) -> str:
    """From benchmarks/gemm_count.py's file: the matrix products each provider executes per
    step and the speedup they alone allow (empty without the file)."""
    import json

    if not path.is_file():
        return ""
    doc = json.loads(path.read_text())
    lines = [f"#### Matrix products per training step (`python -m benchmarks.gemm_count`, commit {doc['commit']})\n",
             f"Counted with `{doc['counter']}`, {doc['rows'][0]['points']:,} points, {doc['network']}. The ratio is "
             "the speedup of the torch backend if the products took all of the step's time: the ceiling where "
             "they dominate, as on this CPU.\n",
             "| suite | D | reference GFLOP | torch GFLOP | ratio |", "|---|---:|---:|---:|---:|"]
    for suite, d, ref, tor in pairs(doc):
        lines.append(f"| {suite} | {d} | {ref['gemm_gflop']:.3g} | {tor['gemm_gflop']:.3g} "
                     f"| {tor['reference_over_this']:.2f} |")
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, section: str) -> bool:
    """Replace the text between the perf markers of ``readme``; True when the file changed."""
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text or text.index(START) > text.index(END):
        raise ValueError(f"{readme} has no '{START}' ... '{END}' block; add both markers where the "
                         "performance section belongs")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{section}{END}{tail}"
    if new == text:
        return False
    readme.write_text(new, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readme_tables", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="folder of the results CSV files")
    parser.add_argument("--readme", type=Path, default=REPO_ROOT / "README.md", help="README to update")
    parser.add_argument("--print", action="store_true", help="print the markdown instead of writing the README")
    args = parser.parse_args(argv)
    section = render_section(args.results)
    if args.print:
        print(section)
        return 0
    try:
        changed = update_readme(args.readme, section)
    except (ValueError, FileNotFoundError) as exc:
        print(f"readme_tables: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.readme}: performance section {'updated' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
