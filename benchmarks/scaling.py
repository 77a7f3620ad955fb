"""Scaling sweeps: time (and peak memory) of every provider against the number of points,
the width and the input dimension; rows in ``results/scaling.csv``, log-log plots under
``docs/figures/``.

How a provider's cost grows is summarised by the slope of log(time) against log(variable)
(the *exponent*: 1 = linear in the points, 2 = quadratic in the width, ...), fitted over the
largest three points of the points sweep (where fixed overheads no longer matter) and over
the whole width and dimension sweeps. Where a provider runs out of memory is recorded as
an ``oom`` row (GPU, caught) or, before a run that would exceed the free memory by a
linear extrapolation of its measured peak (CPU, where the kernel would kill the process
instead of raising), as a ``skipped`` row saying so; larger sizes of that provider are not
tried.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Sequence

import torch

from fastsiren.tasks import common

from .harness import BASELINE, resolve_providers, run_suite
from .records import append_rows, environment, latest, new_run_id, result_rows
from .suites import Shape, get_suite

SWEEPS = ("points", "width", "dim")
POINTS = (1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7)
WIDTHS = (64, 128, 256, 512)
DIMS = (1, 2, 3)
# Points of the width and dimension sweeps.
FIXED_POINTS = {"cpu": 2048, "cuda": 1 << 16}
DEFAULT_MAX_POINTS = {"cpu": 3e4, "cuda": 1e7}
SCALING_FILE = "scaling.csv"


def device_tag(device_type: str, name: str, threads: str | int | None = None) -> str:
    """A file-name tag for a device: "cpu-2t" (the CPU with its torch thread count, so runs at
    different thread counts keep their own plots), "cpu" without a count, or e.g.
    "nvidia-h100-80gb-hbm3"."""
    if device_type != "cuda":
        return f"cpu-{threads}t" if threads else "cpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def figure_name(tag: str, suite: str, sweep: str) -> str:
    return f"scaling-{tag}-{suite}-{sweep}.png"


def sweep_shapes(suite: str, sweep: str, device_type: str, max_points: float | None = None) -> list[tuple[int, Shape]]:
    """(value, shape) pairs of one sweep: the 3x256 SIREN, D=2, varying one variable."""
    if sweep not in SWEEPS:
        raise ValueError(f"sweep={sweep!r} is not a scaling sweep; expected one of {list(SWEEPS)}")
    dev = "cuda" if device_type == "cuda" else "cpu"
    fixed = FIXED_POINTS[dev]
    layer = suite == "layer"
    if sweep == "points":
        cap = DEFAULT_MAX_POINTS[dev] if max_points is None else check_max_points(max_points)
        vals = [int(n) for n in POINTS if n <= cap]
        return [(n, _shape(layer, n, 256, 2)) for n in vals]
    if sweep == "width":
        return [(w, _shape(layer, fixed, w, 2)) for w in WIDTHS]
    if layer:
        return []  # a hidden layer has no input dimension of its own
    return [(d, _shape(layer, fixed, 256, d)) for d in DIMS]


def check_max_points(max_points: float) -> float:
    """``max_points`` if it lets the points sweep run at least its smallest size (a cap of 0
    used to fall back to the default, a NaN or one below the smallest size to run nothing)."""
    if not (isinstance(max_points, (int, float)) and math.isfinite(max_points) and max_points >= min(POINTS)):
        raise ValueError(f"max_points must be a number of points >= {min(POINTS):g} (the smallest size of the "
                         f"points sweep), got {max_points!r}")
    return max_points


def _shape(layer: bool, n: int, width: int, dim: int) -> Shape:
    if layer:
        return Shape(points=n, in_features=width, hidden=width, hidden_layers=0, out_features=width)
    return Shape(points=n, in_features=dim, hidden=width, hidden_layers=3, out_features=1)


def exponent(xs: Sequence[float], ts: Sequence[float]) -> float:
    """Least-squares slope of log t against log x (nan with fewer than two points)."""
    pts = [(math.log(x), math.log(t)) for x, t in zip(xs, ts) if x > 0 and t > 0 and math.isfinite(t)]
    if len(pts) < 2:
        return math.nan
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else math.nan


def release_host_memory() -> None:
    """Hand the freed heap of this process back to the system (glibc ``malloc_trim``): after a
    size of a sweep, glibc keeps its freed tensors' pages (its mmap threshold grows with the
    blocks it frees), and MemAvailable, on which :func:`available_bytes` projects the next
    size, would count them as taken. No-op where glibc is not the allocator."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def available_bytes(device: torch.device) -> float:
    """Memory a run may still take: free GPU memory, or half of MemAvailable (shared CPU host)
    after :func:`release_host_memory`."""
    if device.type == "cuda":
        return float(torch.cuda.mem_get_info(device)[0])
    release_host_memory()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable"):
                return int(line.split()[1]) * 1024 / 2
    except OSError:
        pass
    return math.inf


def run_sweeps(suites: Sequence[str], providers: Sequence[str] | None, device: torch.device, dtype: torch.dtype,
               sweeps: Sequence[str] | None = None, max_points: float | None = None, rounds: int | None = None,
               out_dir: Path | None = None, figures: Path | None = None, block_s: float | None = None,
               log=print) -> list[dict[str, str]]:
    """Run the sweeps of every suite; append rows to ``out_dir/scaling.csv`` as each size is
    measured (a run stopped by a time limit keeps them) and draw the plots.

    Returns the CSV rows. Only the first size of each sweep is checked against the oracle
    (the suites check at their own sizes); every size is timed interleaved as in the suites.
    """
    sweeps = list(dict.fromkeys(sweeps or SWEEPS))
    for s in sweeps:
        if s not in SWEEPS:
            raise ValueError(f"--sweep {s!r} is not a scaling sweep; expected one of {list(SWEEPS)}")
    if max_points is not None and "points" in sweeps:
        check_max_points(max_points)  # before any sweep runs
    if rounds is None:  # 0 is refused below, not taken for the default
        rounds = 10 if device.type == "cuda" else 3
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1 (timed rounds), got {rounds}")
    run_id, env = new_run_id(), environment(device)
    all_rows: list[dict[str, str]] = []
    for suite in suites:
        get_suite(suite)
        for sweep in sweeps:
            rows = _one_sweep(suite, sweep, providers, device, dtype, max_points, rounds, block_s, run_id, env, log,
                              None if out_dir is None else Path(out_dir) / SCALING_FILE)
            all_rows += rows
            if figures is not None and rows:
                tag = device_tag(env["device_type"], env["device"], env.get("threads"))
                path = plot_sweep(rows, Path(figures) / figure_name(tag, suite, sweep))
                log(f"  -> {path}")
    return all_rows


def _one_sweep(suite, sweep, providers, device, dtype, max_points, rounds, block_s, run_id, env, log, out=None):
    names = [p.name for p in resolve_providers(providers)]
    stopped: dict[str, str] = {}  # provider -> why larger sizes are not tried
    last_peak: dict[str, tuple[int, float]] = {}
    last_resident: tuple[int, float] | None = None  # (points, resident growth in bytes) of the last size
    rows: list[dict[str, str]] = []
    for i, (value, shape) in enumerate(sweep_shapes(suite, sweep, device.type, max_points)):
        run_names, skipped_rows = [], []
        resident = _projected_resident_oom(last_resident, shape.points, device)
        for n in names:
            why = (stopped.get(n) or resident
                   or _projected_oom(_peak_basis(last_peak, n), shape.points, device))
            if why:
                stopped.setdefault(n, why)
                skipped_rows.append((n, why))
            else:
                run_names.append(n)
        if not run_names:
            # every provider stopped: record where and why (the plot's OOM marks, the table's
            # "stopped at"), on the previous size's row with this size's points
            if rows and skipped_rows:
                tmpl = {**rows[-1], "sweep_value": str(value), "points": str(shape.points)}
                csv_rows = [_stopped_row(tmpl, n, why) for n, why in skipped_rows]
                rows += csv_rows
                if out is not None:
                    append_rows(out, csv_rows)
            break
        log(f"[scaling {suite} {sweep}={value}]")
        start_rss = _reset_resident_peak() if device.type == "cpu" else None
        res = run_suite(suite, run_names, device=device, dtype=dtype, rounds=rounds, block_s=block_s, shape=shape,
                        check=(i == 0 and BASELINE in run_names), baseline=BASELINE in run_names, log=log)
        peak_rss = _resident_kib("VmHWM") if start_rss is not None else None
        if start_rss is not None and peak_rss is not None:
            last_resident = (shape.points, max(peak_rss - start_rss, 0) * 1024.0)
        for row in res.rows:
            if row.status == "oom":
                stopped[row.provider] = f"out of memory at {sweep}={value}"
            elif row.status == "ok" and math.isfinite(row.peak_mb):
                last_peak[row.provider] = (shape.points, row.peak_mb)
        csv_rows = result_rows(res, run_id, env, "scaling", sweep, str(value))
        csv_rows += [_stopped_row(csv_rows[0], n, why) for n, why in skipped_rows]
        rows += csv_rows
        if out is not None:
            append_rows(out, csv_rows)
    return rows


def _stopped_row(template: dict[str, str], provider: str, why: str) -> dict[str, str]:
    """The CSV row of a provider not run at a size (``template``: a row of that size)."""
    status = "oom" if why.startswith("out of memory") or why.startswith("projected") else "skipped"
    return {**template, "provider": provider, "status": status, "reason": why,
            **{k: "" for k in ("median_ms", "q10_ms", "q90_ms", "rounds", "iters", "speedup", "gflop", "tflops",
                               "floor_ms", "floor_frac", "floor_x3_ms", "floor_x3_frac", "peak_mb", "mem_method",
                               "max_err", "ref_err")}}


def _peak_basis(last_peak: dict[str, tuple[int, float]], provider: str) -> tuple[int, float] | None:
    """The (points, MiB) a provider's next size is projected from: its own last measured peak,
    else (a peak not measured, as reference+compile's on the CPU) the largest peak per point
    measured so far, so that no provider walks into a real out-of-memory kill unprojected."""
    return last_peak.get(provider) or max(last_peak.values(), key=lambda p: p[1] / p[0], default=None)


def _resident_kib(field: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` of this process in KiB (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_resident_peak() -> int | None:
    """Reset this process's resident high-water mark (``/proc/self/clear_refs``) and return its
    resident size in KiB; None where Linux does not allow it (no resident guard then)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return _resident_kib("VmRSS")


# Share of MemAvailable the resident projection may fill (it measures, not estimates, memory).
RESIDENT_SHARE = 0.85


def _projected_resident_oom(last: tuple[int, float] | None, points: int, device: torch.device) -> str | None:
    """On the CPU, refuse a size for every provider when the growth of the process's resident
    memory over the last size (every provider, interleaved), extrapolated linearly in the
    points, exceeds :data:`RESIDENT_SHARE` of MemAvailable. The per-provider projection
    (:func:`_projected_oom`) reads the live tensors a step creates, which misses what the
    allocator keeps around them: the torch Poisson-gradient step at 1e6 points filled a 24 GB
    machine that the live-tensor projection had let it start on."""
    if last is None or device.type == "cuda":
        return None
    n0, grown = last
    need = grown * points / n0
    have = available_bytes(device) * 2 * RESIDENT_SHARE
    if need > have:
        return f"projected resident {need / 2**30:.1f} GiB > {have / 2**30:.1f} GiB available"
    return None


def _projected_oom(last: tuple[int, float] | None, points: int, device: torch.device) -> str | None:
    """On the CPU, refuse a size whose peak, extrapolated linearly in the points from the last
    measured one, exceeds the memory available (an OOM there kills instead of raising)."""
    if last is None or device.type == "cuda":
        return None
    n0, mb0 = last
    need = mb0 * 2**20 * points / n0
    have = available_bytes(device)
    if need > have:
        return f"projected {need / 2**30:.1f} GiB > {have / 2**30:.1f} GiB available"
    return None


def summarize(rows: Sequence[dict[str, str]]) -> list[dict[str, object]]:
    """Per (suite, sweep, provider): exponent, speedup over reference (min, max over the
    sizes), largest value run, where memory ran out, and bytes per point at the largest run."""
    groups: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault((r["suite"], r["sweep"], r["provider"]), []).append(r)
    out = []
    for (suite, sweep, provider), rs in groups.items():
        ok = sorted(((float(r["sweep_value"]), float(r["median_ms"]), r) for r in rs
                     if r["status"] == "ok" and r["median_ms"]), key=lambda t: t[0])
        fails = [r for r in rs if r["status"] in ("oom", "skipped", "error", "mismatch")]
        xs, ts = [t[0] for t in ok], [t[1] for t in ok]
        fit_from = max(0, len(xs) - 3) if sweep == "points" else 0
        last = ok[-1][2] if ok else None
        per_point = (float(last["peak_mb"]) * 2**20 / float(last["points"])
                     if last is not None and last.get("peak_mb") else math.nan)
        speedups = [float(t[2]["speedup"]) for t in ok if t[2].get("speedup")]
        out.append({"suite": suite, "sweep": sweep, "provider": provider,
                    "speedup": (min(speedups), max(speedups)) if speedups else None,
                    "exponent": exponent(xs[fit_from:], ts[fit_from:]),
                    "first": (xs[0], ts[0]) if ok else None, "last": (xs[-1], ts[-1]) if ok else None,
                    "stopped": next((f"{r['sweep_value']}: {r['reason']}" for r in fails), ""),
                    "bytes_per_point": per_point})
    return out


def replot(results_dir: Path, figures: Path) -> list[Path]:
    """Redraw every scaling figure from ``results_dir/scaling.csv`` without timing anything:
    per device, suite and sweep, the rows of its latest run."""
    import csv

    path = Path(results_dir) / SCALING_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no scaling results to plot: {path} does not exist")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    groups: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault((device_tag(r["device_type"], r["device"], r.get("threads")), r["suite"], r["sweep"]),
                         []).append(r)
    out = []
    for (tag, suite, sweep), rs in sorted(groups.items()):
        out.append(plot_sweep(latest(rs, ()), Path(figures) / figure_name(tag, suite, sweep)))
    return out


# every scaling figure's caption ends so (the report says it once for all of them)
SCALING_TAIL = (", one colour per provider and one line style per phase, with the 10-90 % band of the rounds, on log "
                "axes; an x past a line's end marks the next size, not run because the memory it would take was "
                "projected above what was free (or, where its row says so, it ran out of memory)")


def _fixed_setting(rows: Sequence[dict[str, str]], sweep: str) -> str:
    """What a sweep holds fixed, from its rows, e.g. ``width 256, D = 2, 5 linear layers``: a
    setting that changes along the sweep is left out, or said as following the width (the
    layer suite's input dimension is its width)."""
    def one(key: str) -> str | None:
        values = {r.get(key) for r in rows}
        return values.pop() if len(values) == 1 and None not in values and "" not in values else None

    parts = []
    if sweep != "width" and one("hidden"):
        parts.append(f"width {one('hidden')}")
    if sweep != "dim":
        if one("in_features"):
            parts.append(f"D = {one('in_features')}")
        elif all(r.get("in_features") == r.get("hidden") for r in rows):
            parts.append("D = width")
    if sweep != "points" and one("points"):
        parts.append(f"N = {int(float(one('points'))):,}")
    if one("layers"):
        parts.append(f"{one('layers')} linear layer{'s' if one('layers') != '1' else ''}")
    return ", ".join(parts)


def plot_sweep(rows: Sequence[dict[str, str]], path: Path) -> Path:
    """Log-log plot of median time (with the q10-q90 band) against the swept variable: one
    colour per provider, one line style per phase (the ``layer`` suite times the forward and
    the forward+backward apart); an ``x`` past a line's end marks the size it was not run at
    because the memory it would take was projected above what is free (or it ran out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    path.parent.mkdir(parents=True, exist_ok=True)
    suite, sweep, device = rows[0]["suite"], rows[0]["sweep"], rows[0]["device"]
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    groups: dict[tuple[str, str], list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault((r["provider"], r.get("phase", "")), []).append(r)
    phases = list(dict.fromkeys(ph for _, ph in groups))
    styles = dict(zip(phases, ["-", "--", ":", "-."]))
    colours = {prov: f"C{i % 10}" for i, prov in enumerate(dict.fromkeys(pr for pr, _ in groups))}
    for (provider, phase), rs in groups.items():
        ok = sorted((r for r in rs if r["status"] == "ok" and r["median_ms"]), key=lambda r: float(r["sweep_value"]))
        if not ok:
            continue
        xs = [float(r["sweep_value"]) for r in ok]
        med = [float(r["median_ms"]) for r in ok]
        label = provider if len(phases) == 1 else f"{provider}, {phase}"
        ax.plot(xs, med, marker="o", ms=3.5, ls=styles.get(phase, "-"), color=colours[provider], label=label)
        ax.fill_between(xs, [float(r["q10_ms"]) for r in ok], [float(r["q90_ms"]) for r in ok],
                        color=colours[provider], alpha=0.15)
        stops = sorted(float(r["sweep_value"]) for r in rs if r["status"] == "oom" and float(r["sweep_value"]) > xs[-1])
        if stops:
            ax.plot([xs[-1], stops[0]], [med[-1], med[-1]], ls=":", lw=0.8, color=colours[provider])
            ax.plot([stops[0]], [med[-1]], marker="x", ms=7, mew=1.5, ls="none", color=colours[provider])
    ax.set_xscale("log", base=2 if sweep != "points" else 10)
    ax.set_yscale("log")
    ax.set_xlabel({"points": "points N", "width": "width (hidden features)", "dim": "input dimension D"}[sweep])
    ax.set_ylabel("median time per call (ms)")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(NullFormatter())
    if sweep != "points":
        values = sorted({float(r["sweep_value"]) for r in rows})
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.xaxis.set_minor_formatter(NullFormatter())
    threads = rows[0].get("threads") if rows[0].get("device_type") != "cuda" else ""
    where = f"{device}, {threads} thread{'s' if threads != '1' else ''}" if threads else device
    call = {"fit": "one image-fit training step", "poisson-grad": "one Poisson-gradient training step",
            "poisson-laplacian": "one Poisson-Laplacian training step", "render": "one dense-grid inference",
            "layer": "one sine layer", "wave": "one wave-equation training step"}.get(suite, suite)
    ax.set_title(f"{suite} ({call}): time vs {sweep}\n{_fixed_setting(rows, sweep)}; {where}", fontsize=8.5)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    what = {"points": "the number of points", "width": "the hidden width", "dim": "the input dimension"}[sweep]
    commits = ", ".join(sorted({str(r.get("commit", "?"))[:10] for r in rows}))
    dates = ", ".join(sorted({str(r.get("date", "?"))[:10] for r in rows}))
    common.save_figure(fig, path, dpi=110, caption=(
        f"Scaling of the {suite} benchmark ({_fixed_setting(rows, sweep)}) on {where}: median time per call "
        f"against {what}" + SCALING_TAIL + f" (rows of {dates}, commit {commits})."))
    return path
