"""The benchmark harness on the quick size with the providers that run on the CPU."""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from fastsiren.benchmarks import cli, readme_tables, records, scaling
from fastsiren.benchmarks.harness import (
    PROVIDERS,
    Provider,
    ProviderUnavailable,
    check_outputs,
    interleaved_times,
    quantile,
    relative_error,
    resolve_providers,
    run_suite,
)
from fastsiren.benchmarks.suites import (
    SUITES,
    WAVE_SPEED,
    Gemm,
    default_shape,
    get_suite,
    network_gemms,
    total_flops,
    wave_weights,
)

from fastsiren import backends, cuda_ext, jet, reference
from fastsiren.jet import Jet
from fastsiren.tasks import common

FAST = dict(size="quick", rounds=2, block_s=1e-3)


def _broken_torch(_device) -> SimpleNamespace:
    """The torch backend with a 0.5% error in every output: the check must catch it."""

    def mlp_jet(x, w, b, om, order, laplacian_weights=None):
        j = jet.mlp_jet(x, w, b, om, order, laplacian_weights)
        return Jet(*(None if t is None else t * 1.005 for t in j))

    return SimpleNamespace(
        sine_linear=lambda x, w, b, om: jet.sine_linear(x, w, b, om) * 1.005,
        mlp_forward=lambda x, w, b, om: jet.mlp_forward(x, w, b, om) * 1.005,
        mlp_jet=mlp_jet,
        mlp_infer=lambda x, w, b, om, order: mlp_jet(x, w, b, om, order).detach(),
    )


BROKEN = Provider("broken", _broken_torch)


@pytest.mark.parametrize("suite", list(SUITES))
def test_quick_suite_checks_and_times_reference_and_torch(suite):
    res = run_suite(suite, ["torch", "cuda"], log=lambda s: None, **FAST)
    by = {(r.phase, r.provider): r for r in res.rows}
    for phase in SUITES[suite].phases:
        ref, tor = by[(phase, "reference")], by[(phase, "torch")]
        assert ref.status == tor.status == "ok", (ref.reason, tor.reason)
        assert ref.speedup == pytest.approx(1.0)
        for r in (ref, tor):
            assert r.median_ms > 0 and r.q10_ms <= r.median_ms <= r.q90_ms
            assert r.rounds == 2 and r.iters >= 1
            assert r.gflop > 0 and r.tflops > 0 and r.floor_ms > 0 and r.floor_frac > 0
            assert r.peak_mb > 0
            assert r.max_err < 1e-4
        assert tor.speedup == pytest.approx(ref.median_ms / tor.median_ms)
        cuda = by[(phase, "cuda")]
        assert cuda.status == "skipped" and "CUDA" in cuda.reason and math.isnan(cuda.median_ms)


def test_cuda_provider_checked_and_timed_through_the_cuda_emulation(monkeypatch):
    """The cuda provider's path through the harness (what gpu_check.sh times on a GPU), here on
    the CPU emulation of the CUDA kernels: every suite's output passes the check and is timed."""
    monkeypatch.setenv(cuda_ext.EMULATE_ENV, "1")
    for suite in SUITES:
        res = run_suite(suite, ["cuda"], log=lambda s: None, **FAST)
        rows = [r for r in res.rows if r.provider == "cuda"]
        assert [r.phase for r in rows] == list(SUITES[suite].phases)
        for r in rows:
            assert r.status == "ok", (suite, r.phase, r.reason)
            assert r.max_err < 1e-4 and r.median_ms > 0


@pytest.mark.parametrize("suite", ["fit", "poisson-laplacian", "wave"])
def test_a_wrong_provider_is_detected_and_not_timed(suite):
    res = run_suite(suite, ["torch", BROKEN], log=lambda s: None, **FAST)
    broken = [r for r in res.rows if r.provider == "broken"]
    assert broken and all(r.status == "mismatch" for r in broken)
    assert all(math.isnan(r.median_ms) and r.max_err > 1e-3 for r in broken)
    assert "allowed" in broken[0].reason
    assert all(r.status == "ok" for r in res.rows if r.provider == "torch")


def test_wave_suite_is_the_wave_residual():
    """The wave suite's loss is the MSE of f_tt - v^2 (f_xx + f_yy) against its target, with the
    second derivatives from torch.func's Hessian, on a (T, H, W) grid in D = 3."""
    suite = get_suite("wave")
    shape = default_shape("wave", "quick", "cpu")
    assert (shape.in_features, shape.points, shape.grid_shape) == (3, 256, (4, 8, 8))
    case = suite.make_case(shape, "cpu", torch.float64)
    loss = suite.bind(case, "step", reference).outputs()["loss"]

    def f(p):
        return reference.mlp_forward(p[None], case.weights, case.biases, case.omegas)[0]

    d2 = torch.func.vmap(torch.func.hessian(f))(case.inputs["x"]).diagonal(dim1=-2, dim2=-1)  # (N, out, D)
    residual = d2[..., 0] - WAVE_SPEED ** 2 * (d2[..., 1] + d2[..., 2])
    torch.testing.assert_close(loss, torch.nn.functional.mse_loss(residual, case.inputs["target"]))
    assert wave_weights(2) == (1.0, -WAVE_SPEED ** 2)  # (t, x): the weights follow D (scaling sweeps)


def test_weighted_cost_times_the_wave_step_with_and_without_its_weights(tmp_path, monkeypatch):
    """benchmarks/weighted_cost.py on the quick size: a row per provider that runs here (torch,
    cuda through the CUDA emulation), with both medians and their ratio; the document names
    device, commit, shape and weights; a provider that cannot run is skipped with its reason."""
    import json

    from fastsiren.benchmarks import weighted_cost

    monkeypatch.setenv(cuda_ext.EMULATE_ENV, "1")
    out = tmp_path / "w.json"
    assert weighted_cost.main(["--size", "quick", "--rounds", "2", "--device", "cpu", "--out", str(out),
                               "--provider", "torch", "--provider", "cuda"]) == 0
    doc = json.loads(out.read_text())
    assert doc["device_type"] == "cpu" and doc["commit"] and doc["points"] == 256 and doc["in_features"] == 3
    assert doc["weights"] == [1.0, -WAVE_SPEED ** 2, -WAVE_SPEED ** 2]
    rows = {r["provider"]: r for r in doc["rows"]}
    assert set(rows) == {"torch", "cuda"} and doc["skipped"] == {}
    for r in rows.values():
        assert r["plain_ms"] > 0 and r["weighted_ms"] > 0
        assert r["weighted_over_plain"] == pytest.approx(r["weighted_ms"] / r["plain_ms"], rel=1e-3)
    monkeypatch.delenv(cuda_ext.EMULATE_ENV)
    rows, skipped = weighted_cost.measure(torch.device("cpu"), ("cuda",), "quick", 1, 1e-3, log=lambda s: None)
    assert rows == [] and "CUDA" in skipped["cuda"]
    with pytest.raises(ValueError, match="--rounds must be > 0"):
        weighted_cost.main(["--rounds", "0"])


def test_check_rule_uses_reference_error_and_floor():
    want = {"a": torch.tensor([1.0, -2.0], dtype=torch.float64)}
    ref32 = {"a": torch.tensor([1.0, -2.0 + 1e-6])}
    assert check_outputs({"a": torch.tensor([1.0, -2.0 + 2e-6])}, want, ref32, torch.float32).ok
    bad = check_outputs({"a": torch.tensor([1.0, -2.02])}, want, ref32, torch.float32)
    assert not bad.ok and bad.max_err == pytest.approx(0.01, rel=1e-5)
    assert check_outputs({"a": torch.tensor([1.0, -2.02])}, want, ref32, torch.float32, tol=0.02).ok
    assert not check_outputs({"b": want["a"]}, want, ref32, torch.float32).ok
    assert relative_error(torch.ones(2), torch.ones(3)) == math.inf
    assert relative_error(torch.tensor([float("nan")]), torch.ones(1)) == math.inf


def test_flop_count_by_hand():
    # 2 -> 4 -> 4 -> 1 with S = 3 streams and N = 10 points.
    fwd = network_gemms([2, 4, 4, 1], 10, 3, backward=False)
    assert total_flops(fwd) == 2 * 10 * 2 * 4 + 2 * 30 * 4 * 4 + 2 * 30 * 4 * 1
    both = network_gemms([2, 4, 4, 1], 10, 3, backward=True)
    assert total_flops(both) == total_flops(fwd) + 2 * 4 * 10 * 2 + 2 * (2 * 30 * 4 * 4 + 2 * 30 * 4 * 1)
    assert Gemm(2, 3, 4, count=5).flops == 240
    case = get_suite("render").make_case(default_shape("render", "quick", "cpu"), "cpu", torch.float32)
    n = case.shape.points
    assert total_flops(get_suite("render").gemms(case, "infer")) == 2 * n * (2 * 32 + 32 * 32 + 32 * 1)


def test_interleaved_times_and_quantiles():
    calls = {"a": 0, "b": 0}

    def bump(k):
        calls[k] += 1

    times, iters = interleaved_times({"a": lambda: bump("a"), "b": lambda: bump("b")}, torch.device("cpu"),
                                     rounds=3, block_s=1e-4)
    assert len(times["a"]) == len(times["b"]) == 3 and all(t > 0 for t in times["a"])
    assert calls["a"] >= 3 * iters["a"] + 2
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5 and quantile([5.0], 0.9) == 5.0


def test_bad_names_raise_clear_errors():
    with pytest.raises(ValueError, match="suite='nope'"):
        run_suite("nope")
    with pytest.raises(ValueError, match="provider='nope'"):
        resolve_providers(["nope"])
    with pytest.raises(ValueError, match="size='huge'"):
        default_shape("fit", "huge", "cpu")
    with pytest.raises(ValueError, match="sweep='depth'"):
        scaling.sweep_shapes("fit", "depth", "cpu")
    with pytest.raises(RuntimeError, match="provider 'cuda' cannot run on cpu"):
        cli.check_alone(["cuda"], torch.device("cpu"))
    cli.check_alone(["cuda", "torch"], torch.device("cpu"))  # not alone: skipped in the table instead


def test_cli_refuses_zero_repeats_and_an_out_that_is_a_file(tmp_path):
    """Both used to surface late: --repeats 0 ran the default rounds, a file as --out failed
    only after the suites had run."""
    with pytest.raises(ValueError, match="--repeats must be >= 1"):
        cli.main(_args(tmp_path, suite="layer", provider="torch", repeats=0))
    (tmp_path / "afile").write_text("x")
    args = _args(tmp_path, suite="layer", provider="torch")
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        args.out = out
        with pytest.raises(ValueError, match="is \\(or is under\\) a file"):
            cli.main(args)


def _args(tmp_path, **kw):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    argv = ["--out", str(tmp_path / "results"), "--size", "quick", "--repeats", "2", "--block", "0.001"]
    for k, v in kw.items():
        for item in v if isinstance(v, list) else [v]:
            argv += [f"--{k}", str(item)]
    return parser.parse_args(argv)


def test_cli_writes_csv_rows_with_run_fields(tmp_path):
    args = _args(tmp_path, suite="layer", provider=["torch", "cuda"])
    assert cli.main(args) == 0
    assert cli.main(args) == 0  # appends a second run under the same header
    path = tmp_path / "results" / "layer.csv"
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == records.COLUMNS
        rows = list(reader)
    assert len(rows) == 2 * 2 * 3 and len({r["run_id"] for r in rows}) == 2
    ok = [r for r in rows if r["status"] == "ok"]
    assert {r["provider"] for r in ok} == {"reference", "torch"}
    r = ok[0]
    assert r["device_type"] == "cpu" and r["device"] and r["torch"] == torch.__version__
    assert r["cpu_id"] == (common.cpu_id() or "")
    assert r["date"].startswith("20") and r["size"] == "quick" and r["dtype"] == "float32"
    assert float(r["median_ms"]) > 0 and float(r["gflop"]) > 0 and r["mem_method"]
    skipped = [x for x in rows if x["provider"] == "cuda"]
    assert skipped and all(x["status"] == "skipped" and x["reason"] for x in skipped)
    for bad in (dict(suite="nope"), dict(size="huge"), dict(dtype="int8"), dict(provider="nope")):
        with pytest.raises(ValueError):
            cli.main(_args(tmp_path, **{"suite": "layer", **bad}))


@pytest.mark.skipif(backends.onednn_unavailable_reason() is not None, reason="oneDNN products cannot run here")
def test_cli_records_what_auto_timed(tmp_path, monkeypatch):
    """A run whose torch provider timed CPU products in mode "auto" appends them (kinds,
    medians, choices, seconds) to auto-cpu-gemm.json beside its CSV rows; one that timed none
    writes nothing."""
    import json

    from fastsiren import jet

    monkeypatch.setattr(jet, "_CPU_GEMM_CHOICE", {})
    assert cli.main(_args(tmp_path, suite="layer", provider="torch")) == 0  # quick: products below the bound
    path = tmp_path / "results" / cli.CPU_GEMM_AUTO_FILE
    assert not path.exists()
    monkeypatch.setattr(jet, "CPU_ONEDNN_MIN_MACS", 0)
    for _ in range(2):
        assert cli.main(_args(tmp_path, suite="layer", provider="torch")) == 0
    runs = json.loads(path.read_text())["runs"]
    assert len(runs) == 2 and runs[0]["suites"] == ["layer"] and runs[0]["commit"] and runs[0]["threads"]
    kinds = runs[0]["kinds"]
    assert kinds and all(k["choice"] in ("onednn", "blas") and k["seconds"] > 0 for k in kinds)
    assert runs[0]["seconds"] == pytest.approx(sum(k["seconds"] for k in kinds), abs=1e-3)
    assert runs[0]["scaling"] is False
    # a scaling sweep records them too
    monkeypatch.setattr(jet, "_CPU_GEMM_CHOICE", {})
    args = _args(tmp_path, suite="layer", provider="torch", sweep="points", figures=tmp_path / "fig")
    args.scaling, args.max_points = True, 1000
    assert cli.main(args) == 0
    last = json.loads(path.read_text())["runs"][-1]
    assert last["scaling"] is True and last["suites"] == ["layer"] and last["kinds"]


def test_cli_defaults_write_under_the_current_folder(tmp_path, monkeypatch):
    """The default --out and --figures are the current folder's benchmarks/results and docs/figures
    (where `fastsiren report` reads), never the installed package's tree; --no-save writes nothing,
    not even a scaling plot."""
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    monkeypatch.chdir(tmp_path)
    args = parser.parse_args(["--suite", "layer", "--provider", "torch", "--sweep", "points", "--scaling",
                              "--max-points", "1000", "--repeats", "1", "--block", "0.001", "--no-save"])
    assert not args.out.is_absolute() and args.figures is None
    assert cli.main(args) == 0
    assert list(tmp_path.iterdir()) == []
    args.no_save = False
    assert cli.main(args) == 0
    assert (tmp_path / "benchmarks" / "results" / "scaling.csv").is_file()
    assert list((tmp_path / "docs" / "figures").glob("scaling-*.png"))


def test_merge_skips_known_rows_and_widens_old_files(tmp_path):
    src, dst = tmp_path / "gpu", tmp_path / "repo"
    row = {c: "" for c in records.COLUMNS} | {"run_id": "r1", "suite": "fit", "phase": "step",
                                              "provider": "torch", "status": "ok"}
    records.append_rows(src / "fit.csv", [row])
    assert records.merge_results(src, dst) == {"fit.csv": 1}
    assert records.merge_results(src, dst) == {"fit.csv": 0}
    old = dst / "layer.csv"
    old.write_text("run_id,date,suite,phase,provider,status\nr0,2026-01-01,layer,step,torch,ok\n")
    records.append_rows(old, [row | {"suite": "layer"}])
    rows = records.read_rows(old)
    assert len(rows) == 2 and rows[0]["run_id"] == "r0" and rows[0]["status"] == "ok" and rows[0]["median_ms"] == ""
    with old.open(newline="") as f:
        assert tuple(csv.DictReader(f).fieldnames) == records.COLUMNS


def test_readme_block_is_generated_from_results(tmp_path):
    res = run_suite("poisson-laplacian", ["torch"], log=lambda s: None, **FAST)
    env = records.environment(torch.device("cpu"))
    results = tmp_path / "results"
    records.append_rows(results / "poisson-laplacian.csv", records.result_rows(res, "run1", env, "quick"))
    section = readme_tables.render_section(results)
    assert env["device"] in section and "| poisson-laplacian | step |" in section
    assert "torch" in section and "target >= 1.8x" in section
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nintro\n{readme_tables.START}\nold\n{readme_tables.END}\n\nrest\n")
    assert readme_tables.update_readme(readme, section)
    text = readme.read_text()
    assert text.startswith("# x\n\nintro\n") and text.endswith("\nrest\n") and "old" not in text
    assert not readme_tables.update_readme(readme, section)
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="perf:start"):
        readme_tables.update_readme(readme, section)


def test_gpu_target_lines_and_the_reference_ceiling():
    """Issues 3 and 4's targets from a GPU table: speedup met or missed, floor fraction met or
    missed, and the ceiling 1 / reference's floor fraction."""
    def row(suite, provider, speedup, frac):
        return {"suite": suite, "provider": provider, "status": "ok", "speedup": str(speedup), "floor_frac": str(frac)}

    rows = [row("fit", "reference", 1.0, 0.5), row("fit", "triton", 2.5, 0.9), row("fit", "cuda", 1.5, 0.4),
            row("render", "triton", 9.0, 0.9)]  # no reference row for render: no line
    text = readme_tables.gpu_target_lines(rows)
    assert "- fit (target >= 2x, floor fraction >= 0.5): triton 2.50x (met), floor fraction 0.90 (met); " \
           "cuda 1.50x (**missed**), floor fraction 0.40 (**missed**); ceiling at reference's GEMMs: 2.00x" in text
    assert "render" not in text.split("\n\n", 1)[1]
    assert readme_tables.gpu_target_lines([row("fit", "torch", 1.0, 0.5)]) == ""
    rows[0]["floor_x3_frac"] = "0.125"  # a run that measured the 3xTF32 floor: its ceiling too
    assert "ceiling at reference's GEMMs: 2.00x, at the same GEMMs as 3xTF32: 8.00x" in \
        readme_tables.gpu_target_lines(rows)


def test_cpu_target_lines_give_the_ceiling():
    """Issue 2's CPU target lines: met or missed, and the ceiling from the reference's floor
    fraction (on poisson-grad divided by the reverse-mode gradient's product share); none
    without a reference row."""
    def row(suite, provider, speedup, frac):
        return {"suite": suite, "provider": provider, "status": "ok", "speedup": str(speedup), "floor_frac": str(frac)}

    text = readme_tables.target_lines([row("poisson-grad", "reference", 1.0, 1.0),
                                       row("poisson-grad", "torch", 1.4, 1.3), row("fit", "torch", 1.2, 1.0)])
    assert "- poisson-grad: torch 1.40x reference (target >= 1.5x): **missed**; ceiling 1.50x\n" in text
    assert "- fit: torch 1.20x reference (target >= 1x): met\n" in text
    assert readme_tables.target_lines([row("fit", "reference", 1.0, 0.5)]) == ""
    near = readme_tables.target_lines([row("poisson-grad", "torch", 1.4989, 1.3)])  # not "1.50x ... missed"
    assert "- poisson-grad: torch 1.499x reference (target >= 1.5x): **missed**" in near
    assert readme_tables.speedup_text(1.5, 1.5) == "1.50x" and readme_tables.speedup_text(1.504, 1.5) == "1.50x"
    assert readme_tables.speedup_text(1.4996, 1.5) == "1.499x"  # rounded down where three decimals reach it too


def test_render_reference_timed_with_a_recorded_graph_is_flagged():
    """Render rows timed before the reference's inference stopped recording a graph (251b650)
    say so under their table and in the GPU target lines; later rows and other suites do not."""
    from benchmarks import records

    def row(suite, provider, date, speedup="1", frac="0.5"):
        return {"run_id": "r" + date, "date": date, "commit": "c", "device": "GPU", "device_type": "cuda",
                "threads": "", "torch": "2", "triton": "3", "cuda": "13", "suite": suite, "phase": "infer",
                "size": "default", "dtype": "float32", "points": "16", "in_features": "2", "hidden": "8",
                "layers": "5", "sweep": "", "provider": provider, "status": "ok", "reason": "",
                "median_ms": "1", "q10_ms": "1", "q90_ms": "1", "rounds": "3", "speedup": speedup,
                "tflops": "1", "floor_frac": frac, "peak_mb": "1"}

    old, new = "2026-11-28T10:00:00+00:00", "2026-12-05T10:00:00+00:00"
    assert records.reference_infer_graph(row("render", "reference", old))
    assert not records.reference_infer_graph(row("render", "reference", new))
    assert not records.reference_infer_graph(row("render", "triton", old))
    assert not records.reference_infer_graph(row("fit", "reference", old))
    stale = [row("render", "reference", old), row("render", "triton", old, "1.4", "0.9")]
    assert records.REFERENCE_INFER_NOTE in readme_tables.suite_tables(stale)
    assert "(overstated: that reference recorded an autograd graph" in readme_tables.gpu_target_lines(stale)
    fresh = [row("render", "reference", new), row("render", "triton", new, "1.4", "0.9")]
    assert records.REFERENCE_INFER_NOTE not in readme_tables.suite_tables(fresh)
    assert "overstated" not in readme_tables.gpu_target_lines(fresh)
    # the header gives every run's rounds (of the timed rows) and says when runs are mixed
    assert "Median of 3 interleaved rounds.\n" in readme_tables.suite_tables(fresh)
    mixed = fresh + [dict(row("fit", "reference", new), commit="d", rounds="9"),
                     dict(row("fit", "triton", new), commit="d", rounds="0", status="skipped", reason="no GPU")]
    assert "Median of 3 or 9 interleaved rounds (several runs: compare rows of one commit and date)." in \
        readme_tables.suite_tables(mixed)
    # a CPU's family and model, where the rows record it, in the header
    assert "CPU " not in readme_tables.suite_tables(fresh)
    assert "triton 3; CPU family 25 model 17 stepping 1; commit c;" in readme_tables.suite_tables(
        [dict(r, cpu_id="family 25 model 17 stepping 1") for r in fresh])


def test_scaling_target_verdict_names_every_missed_size():
    def row(suite, provider, sweep, value, speedup, status="ok"):
        return dict(suite=suite, provider=provider, sweep=sweep, sweep_value=str(value), speedup=str(speedup),
                    status=status)

    rows = [row("poisson-grad", "reference", "points", 1000, 1.0), row("poisson-grad", "torch", "points", 1000, 1.6),
            row("poisson-grad", "torch", "width", 64, 1.2), row("poisson-grad", "torch", "points", 3000, 1.4999),
            row("poisson-laplacian", "torch", "dim", 1, 2.0), row("poisson-laplacian", "torch", "dim", 2, "",
                                                                  status="oom"),
            row("fit", "torch", "points", 1000, 0.5)]  # fit is not part of this target
    misses = readme_tables.scaling_target_misses(rows)
    assert misses == {"poisson-grad": (3, ["points=3000: 1.499x", "width=64: 1.200x"]),
                      "poisson-laplacian": (1, [])}
    text = readme_tables.scaling_target_text(rows)
    assert "poisson-grad: torch >= 1.5x reference at 1 of 3 sizes; missed at points=3000" in text
    assert "poisson-laplacian: torch >= 1.8x reference at 1 of 1 sizes (met at every size of the sweep)." in text
    assert readme_tables.scaling_target_text([row("fit", "torch", "points", 1000, 2.0)]) == ""


def test_scaling_plot_draws_each_phase_and_marks_a_projected_stop(tmp_path, monkeypatch):
    """The layer suite's two phases are two lines per provider (one line mixing them zig-zagged),
    and a size not run because its memory was projected too large is marked past the line's end
    as projected, not as a point that ran out of memory."""
    import matplotlib.pyplot as plt

    def row(phase, value, status="ok", ms=1.0, reason=""):
        return {"suite": "layer", "sweep": "points", "device": "cpu-x", "device_type": "cpu", "threads": "2",
                "provider": "torch", "phase": phase, "points": str(value), "hidden": "256", "in_features": "256",
                "layers": "1", "sweep_value": str(value), "status": status, "reason": reason,
                "median_ms": str(ms) if status == "ok" else "", "q10_ms": str(ms), "q90_ms": str(ms)}

    rows = [row("forward", 100, ms=1), row("forward", 1000, ms=10), row("forward+backward", 100, ms=3),
            row("forward+backward", 1000, ms=30), row("forward", 10000, "oom", reason="projected 9 GiB > 8 GiB"),
            row("forward+backward", 10000, "oom", reason="projected 20 GiB > 8 GiB")]
    drawn = []
    monkeypatch.setattr(common, "save_figure", lambda fig, path, **kw: drawn.append((fig, kw["caption"])))
    scaling.plot_sweep(rows, tmp_path / "x.png")
    (fig, caption), = drawn
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("torch")]
    assert sorted(ln.get_label() for ln in lines) == ["torch, forward", "torch, forward+backward"]
    assert [list(ln.get_ydata()) for ln in lines] in ([[1, 10], [3, 30]], [[3, 30], [1, 10]])
    crosses = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "x"]
    assert sorted(float(ln.get_xdata()[0]) for ln in crosses) == [10000, 10000]
    assert scaling.SCALING_TAIL + " (rows of " in caption and "projected above what was free" in caption
    assert re.search(r"\(rows of [^)]*, commit [^)]*\)\.$", caption), caption  # which runs the plot shows
    assert "1 linear layer;" in fig.axes[0].get_title()
    plt.close(fig)


def test_scaling_sweep_rows_plot_and_exponent(tmp_path, monkeypatch):
    monkeypatch.setattr(scaling, "POINTS", (100, 300, 1000))
    rows = scaling.run_sweeps(["fit"], ["torch"], torch.device("cpu"), torch.float32, sweeps=["points"],
                              max_points=300, rounds=1, out_dir=tmp_path, figures=tmp_path / "fig",
                              block_s=1e-3, log=lambda s: None)
    ok = [r for r in rows if r["status"] == "ok"]
    assert {r["sweep_value"] for r in ok} == {"100", "300"} and {r["provider"] for r in ok} == {"reference", "torch"}
    assert (tmp_path / scaling.SCALING_FILE).exists()
    tag = scaling.device_tag("cpu", "any", torch.get_num_threads())  # one set of plots per thread count
    assert tag == f"cpu-{torch.get_num_threads()}t" and scaling.device_tag("cpu", "any") == "cpu"
    png = tmp_path / "fig" / scaling.figure_name(tag, "fit", "points")
    assert png.exists() and png.stat().st_size > 1000
    assert "time per call against the number of points" in common.figure_caption(png)
    png.unlink()  # --replot draws it again from the CSV alone
    assert scaling.replot(tmp_path, tmp_path / "fig") == [png] and png.exists()
    png.unlink()  # the CLI's --replot alone (no --scaling) redraws and times nothing
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.main(parser.parse_args(["--replot", "--out", str(tmp_path), "--figures", str(tmp_path / "fig")])) == 0
    assert png.exists() and sorted(p.name for p in tmp_path.glob("*.csv")) == [scaling.SCALING_FILE]
    with pytest.raises(FileNotFoundError, match="no scaling results"):
        scaling.replot(tmp_path / "none", tmp_path / "fig")
    summary = {s["provider"]: s for s in scaling.summarize(rows)}
    assert math.isfinite(summary["torch"]["exponent"]) and summary["torch"]["bytes_per_point"] > 0
    assert scaling.exponent([1, 10, 100], [2, 20, 200]) == pytest.approx(1.0)
    assert scaling.exponent([1, 2], [3, 12]) == pytest.approx(2.0)
    assert len(records.read_rows(tmp_path / scaling.SCALING_FILE)) == len(rows)
    # each size is written as it is measured: a run stopped in the middle keeps the sizes before
    real, calls = scaling.run_suite, []

    def stop_at_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(scaling, "run_suite", stop_at_second)
    with pytest.raises(KeyboardInterrupt):
        scaling.run_sweeps(["fit"], ["torch"], torch.device("cpu"), torch.float32, sweeps=["points"], max_points=300,
                           rounds=1, out_dir=tmp_path / "cut", block_s=1e-3, log=lambda s: None)
    kept = records.read_rows(tmp_path / "cut" / scaling.SCALING_FILE)
    assert {r["sweep_value"] for r in kept} == {"100"}
    # a size every provider is refused at (projected out of memory) is recorded, not dropped
    monkeypatch.setattr(scaling, "run_suite", real)
    monkeypatch.setattr(scaling, "_projected_oom", lambda last, n, dev: "projected 99 GiB > 1 GiB" if n > 100 else None)
    rows = scaling.run_sweeps(["fit"], ["torch"], torch.device("cpu"), torch.float32, sweeps=["points"],
                              max_points=1000, rounds=1, out_dir=tmp_path / "oom", block_s=1e-3, log=lambda s: None)
    stopped = [r for r in records.read_rows(tmp_path / "oom" / scaling.SCALING_FILE) if r["sweep_value"] == "300"]
    assert {(r["provider"], r["status"], r["points"]) for r in stopped} == {("reference", "oom", "300"),
                                                                          ("torch", "oom", "300")}
    assert all(r["median_ms"] == "" and r["gflop"] == "" and "projected" in r["reason"] for r in stopped)
    assert not [r for r in rows if r["sweep_value"] == "1000"]  # nothing tried after the stop
    summary = {s["provider"]: s for s in scaling.summarize(rows)}
    assert "projected" in summary["torch"]["stopped"] and summary["torch"]["last"][0] == 100


def test_a_provider_without_a_measured_peak_is_projected_from_the_largest():
    peaks = {"reference": (100, 50.0), "torch": (100, 30.0)}
    assert scaling._peak_basis(peaks, "torch") == (100, 30.0)
    assert scaling._peak_basis(peaks, "reference+compile") == (100, 50.0)  # no peak of its own
    assert scaling._peak_basis({}, "torch") is None
    assert "projected" in scaling._projected_oom(scaling._peak_basis(peaks, "reference+compile"), 10**9,
                                                 torch.device("cpu"))


def test_resident_memory_guard_refuses_what_the_process_could_not_hold(monkeypatch):
    """The second guard of a CPU sweep: the process's resident growth over the last size,
    extrapolated, against 85% of MemAvailable (available_bytes is half of it)."""
    monkeypatch.setattr(scaling, "available_bytes", lambda device: 10 * 2**30)
    cpu = torch.device("cpu")
    assert scaling._projected_resident_oom(None, 10**6, cpu) is None
    assert scaling._projected_resident_oom((1000, 2**30), 10_000, cpu) is None  # 10 GiB <= 17 GiB
    why = scaling._projected_resident_oom((1000, 2**30), 30_000, cpu)  # 30 GiB
    assert why == "projected resident 30.0 GiB > 17.0 GiB available"
    assert scaling._projected_resident_oom((1000, 2**30), 30_000, torch.device("cuda")) is None
    if sys.platform == "linux":
        assert scaling._reset_resident_peak() > 0 and scaling._resident_kib("VmHWM") > 0


def test_reference_provider_is_the_reference_backend():
    (p,) = resolve_providers(["reference"])
    assert p.load(torch.device("cpu")) is reference


def test_gpu_check_script_plumbing_on_the_cpu(tmp_path):
    """benchmarks/gpu_check.sh with every GPU step skipped and one quick experiment: the
    manifest, README tables and bundle still come back with the published results, so a GPU
    run never loses its results to the packing code."""
    import json
    import os
    import shutil
    import subprocess
    import tarfile
    from pathlib import Path

    if shutil.which("bash") is None:
        pytest.skip("bash is not on PATH")
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, GPU_CHECK_TASKS="fit nosuch", GPU_CHECK_BUDGET="180",
               GPU_CHECK_PROFILE="quick",
               GPU_CHECK_SITE=str(tmp_path / "site"),
               SCALING_SUITES="fit", SCALING_SWEEPS="dim", SCALING_PROVIDERS="torch", SCALING_REPEATS="1",
               GPU_CHECK_SKIP="env wheels install cuda pytest bench weighted profile tune precision")
    proc = subprocess.run(["bash", str(root / "benchmarks" / "gpu_check.sh")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    steps = {s["step"]: s["status"] for s in manifest["steps"]}
    assert steps["bench"] == "skipped" and steps["pytest"] == "skipped" and steps["weighted"] == "skipped"
    assert steps["task-fit"] == "ok" and steps["task-nosuch"] == "skipped"
    assert manifest["commit"] and "torch" in manifest
    assert (out / "bench.md").exists()
    with tarfile.open(out / "bundle.tgz") as tar:
        names = tar.getnames()
    assert "work/steps.tsv" in names and "work/results" in names
    # the scaling step ran exactly the suites and sweeps asked for
    assert steps["scaling"] == "ok"
    with tarfile.open(out / "bundle.tgz") as tar:
        rows = list(csv.DictReader(tar.extractfile("work/results/scaling.csv").read().decode().splitlines()))
    assert {(r["suite"], r["sweep"]) for r in rows} == {("fit", "dim")}
    assert {r["provider"] for r in rows} == {"reference", "torch"}
    # the experiment published where `cp -r work/docs/. docs/` imports it, figures captioned
    assert {"work/docs/results/fit-quick.json", "work/docs/figures/fit-quick.png"} <= set(names)
    # work/ is built outside OUT (at most 8 files come back) and packed without checkpoints (a
    # paper-profile *.pt would push the bundle past what a returned file may weigh)
    assert not (out / "work").exists() and not any(n.endswith(".pt") for n in names)
    assert any(n.startswith("work/runs/") for n in names)


def test_provider_setup_holds_through_every_checked_and_timed_call():
    """A provider's setup (the triton precision) runs before its check and every timed step,
    so interleaving with other providers never leaves it at their settings."""
    from fastsiren.benchmarks import harness
    from fastsiren.kernels import config

    state = {"setting": None, "steps": 0, "wrong": 0}
    ops = jet  # the torch backend module, run under a recorded "setting"

    class Checked:
        def __getattr__(self, name):
            fn = getattr(ops, name)

            def run(*a, **k):
                state["steps"] += 1
                state["wrong"] += state["setting"] != "mine"
                state["setting"] = "other"  # what another provider would leave behind
                return fn(*a, **k)

            return run

    prov = Provider("with-setup", lambda _d: Checked(), setup=lambda: state.update(setting="mine"))
    res = run_suite("fit", ["torch", prov], log=lambda s: None, **FAST)
    assert all(r.status == "ok" for r in res.rows), [(r.provider, r.reason) for r in res.rows]
    assert state["steps"] > 2 and state["wrong"] == 0
    # the real setups: a variant sets both precisions, the plain provider restores the defaults
    harness.PROVIDERS["triton+ieee"].setup()
    assert (config.train_precision(torch.float32), config.infer_precision(torch.float32)) == ("ieee", "ieee")
    harness.PROVIDERS["triton"].setup()
    assert config._chosen == {"train": None, "infer": None}
    harness.PROVIDERS["triton+fusedw"].setup()
    assert config.wgrad_mode() == "fused"
    harness.PROVIDERS["triton+cublas"].setup()
    assert config.gemm_mode() == "cublas"
    harness.PROVIDERS["triton"].setup()
    assert config.wgrad_mode() == config.DEFAULT_WGRAD == "cublas" and config.gemm_mode() == "triton"
    harness.PROVIDERS["cuda+fwd"].setup()
    assert not backends.reverse_grad() and not backends.fused_inference()
    harness.PROVIDERS["torch"].setup()
    assert backends.reverse_grad()


def test_gemm_count_and_its_readme_table(tmp_path):
    """The executed matrix products per step: the same for fit, fewer for the torch Laplacian."""
    import json

    from fastsiren.benchmarks import gemm_count

    assert gemm_count.main(["--points", "64", "--hidden", "16", "--out", str(tmp_path / "gemm-count.json")]) == 0
    doc = json.loads((tmp_path / "gemm-count.json").read_text())
    ratio = {(r["suite"], r["in_features"]): r["reference_over_this"] for r in doc["rows"] if r["provider"] == "torch"}
    assert ratio[("fit", 2)] == 1.0 and ratio[("poisson-laplacian", 1)] < ratio[("poisson-laplacian", 3)]
    assert all(r["gemm_gflop"] > 0 for r in doc["rows"])
    table = readme_tables.gemm_table(tmp_path / "gemm-count.json")
    assert "| poisson-laplacian | 2 |" in table and readme_tables.gemm_table(tmp_path / "none.json") == ""


def test_render_path_variants_join_only_the_render_suite():
    """triton+fused / cuda+fused (fused-kernel inference) are part of "all" on render only, and
    named on another suite they are skipped with the reason."""
    fit = run_suite("fit", ["all"], log=lambda s: None, **FAST)
    assert not {"triton+fused", "cuda+fused"} & {r.provider for r in fit.rows}
    rend = run_suite("render", ["all"], log=lambda s: None, **FAST)
    assert {"triton+fused", "cuda+fused"} <= {r.provider for r in rend.rows}
    named = run_suite("fit", ["torch", "cuda+fused"], log=lambda s: None, **FAST)
    row = next(r for r in named.rows if r.provider == "cuda+fused")
    assert row.status == "skipped" and "only the suites render" in row.reason


def test_forward_mode_variants_time_the_gradient_step_beside_reverse_mode():
    """torch+fwd (forward-mode streams for the order-1 jet of a gray image) runs and is checked
    on poisson-grad beside torch (reverse mode), and only there."""
    res = run_suite("poisson-grad", ["torch", "torch+fwd"], log=lambda s: None, **FAST)
    rows = {r.provider: r for r in res.rows}
    assert rows["torch"].status == rows["torch+fwd"].status == "ok", [(r.provider, r.reason) for r in res.rows]
    assert rows["torch+fwd"].max_err <= 2 * rows["torch+fwd"].ref_err + 1e-6
    assert backends.reverse_grad()  # the variant's setting does not outlive its calls
    fit = run_suite("fit", ["all"], log=lambda s: None, **FAST)
    assert not {"torch+fwd", "triton+fwd", "cuda+fwd"} & {r.provider for r in fit.rows}


def test_precision_script_measures_training_and_inference_on_the_cpu(tmp_path):
    """benchmarks/precision.py --profile quick under the interpreter: every precision's jet
    errors, the training fits, each render's image against the float64 render, and both
    recommendations; the inference rule itself on hand-made rows."""
    import json
    import math

    pytest.importorskip("triton")
    from fastsiren.benchmarks import precision
    from fastsiren.kernels import config

    assert precision.main(["--profile", "quick", "--out", str(tmp_path / "p.json")]) == 0
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["recommended_default"] in config.PRECISIONS
    assert doc["recommended_infer_default"] in config.INFER_PRECISIONS
    rows = {r["precision"]: r for r in doc["rows"]}
    assert set(rows) == {"float64", *config.INFER_PRECISIONS}
    for p in config.INFER_PRECISIONS:
        assert math.isfinite(rows[p]["render_psnr"]) and abs(rows[p]["render_psnr_drop"]) < 0.5, rows[p]
        assert rows[p]["render_ms"] > 0
    ok = dict(fitted_value_err=1e-4, fitted_grad_err=1e-4, fitted_lap_err=1e-4, render_psnr_drop=0.0)
    made = [dict(ok, precision="ieee", render_ms=9.0), dict(ok, precision="tf32", render_ms=3.0),
            dict(ok, precision="fp16", render_ms=1.0, fitted_lap_err=float("nan")),  # overflows: not eligible
            dict(ok, precision="bf16", render_ms=0.5, render_psnr_drop=0.3)]  # loses 0.3 dB: not eligible
    assert precision.recommend_infer(made, 0.1, 1e-2) == "tf32"
    assert precision.recommend_infer(made[2:], 0.1, 1e-2) == "ieee"  # none passes: the exact one
    assert doc["step_timing"] == precision.STEP_TIMING and rows["ieee"]["step_ms"] > 0


def test_precision_step_time_leaves_out_the_first_steps(monkeypatch):
    """A fit's time per step is taken after the first tenth of its steps, where Triton compiles
    its kernels: a first step of 5 s (compilation) and then 0.1 s a step reads 0.1 s."""
    from types import SimpleNamespace

    from fastsiren.benchmarks import precision

    seen = {}

    def fake_train(model, loss_fn, *, steps, log_every, **kw):
        seen["log_every"] = log_every
        hist = [{"step": s, "seconds": 5.0 + 0.1 * (s - 1)} for s in range(log_every, steps + 1, log_every)]
        return SimpleNamespace(history=hist, seconds=hist[-1]["seconds"])

    monkeypatch.setattr(precision, "train", fake_train)
    image = torch.zeros(4, 4, 1)
    _, _, per_step = precision.fit(image, 8, 1, 30, "reference", torch.float32, None, 0)
    assert seen["log_every"] == 3 and per_step == pytest.approx(0.1)


def test_profile_and_tile_sweep_scripts_on_the_cpu(tmp_path, monkeypatch):
    """The GPU scripts' plumbing: profile_step profiles operators on the CPU, triton_tune sweeps
    under the interpreter (where the tiles do not apply) and writes its results document."""
    import json
    import os

    from fastsiren.benchmarks import profile_step, triton_tune

    assert profile_step.main(["--device", "cpu", "--size", "quick", "--suite", "fit", "--provider", "torch",
                              "--steps", "1", "--top", "3", "--out", str(tmp_path / "p.json")]) == 0
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["task"] == "profile-step" and len(doc["rows"]) == 4  # top 3 + (other)
    assert sum(r["share"] for r in doc["rows"]) == pytest.approx(1.0, abs=1e-3)
    pytest.importorskip("triton")
    assert triton_tune.main(["--device", "cpu", "--size", "quick", "--suite", "fit", "--max-configs", "1",
                             "--warm-jobs", "0", "--rounds", "1", "--out", str(tmp_path / "t.json")]) == 0
    doc = json.loads((tmp_path / "t.json").read_text())
    assert [r["tiles"] for r in doc["rows"]] == ["default", triton_tune.label(triton_tune.CANDIDATES[0])]
    assert all(r["status"] == "ok" for r in doc["rows"]) and set(doc["best"]) == {"fit"}
    for name in triton_tune.ENVS:
        assert name not in os.environ


def test_floor_runner_times_the_same_gemms_as_3xtf32_products():
    """The floor of the +3xtf32 providers: every counted GEMM as three products (of split
    operands, the splitting passes left out); the fp32 floor makes one each."""
    from conftest import EmulatedTF32
    from fastsiren.benchmarks.suites import floor_runner

    gemms = [Gemm(m=300, k=24, n=40, count=2), Gemm(m=50, k=40, n=7, count=1)]
    floor_runner(gemms, torch.device("cpu"), torch.float32, max_rows=128)()  # torch.matmul, once each
    run = floor_runner(gemms, torch.device("cpu"), torch.float32, max_rows=128, tf32x3=True)
    with EmulatedTF32() as emu:
        run()
    # max_rows=128 splits the 300 rows into 128 + 128 + 44: 3 x 2 + 1 products, three each
    assert emu.products == 3 * (3 * 2 + 1)


@pytest.mark.skipif(backends.onednn_unavailable_reason() is not None, reason="oneDNN products cannot run here")
def test_cpu_library_variants_time_the_torch_backend_beside_auto(tmp_path, monkeypatch):
    """torch+blas and torch+onednn (modes "blas" and "onednn": fixed rules, not a measurement) are
    checked and timed beside torch (each kind on the library measured faster) on the CPU, are skipped with their
    reasons on a GPU, leave the default behind; cpu_gemm times both libraries on the step's
    product shapes."""
    import json

    from fastsiren.benchmarks import cpu_gemm

    variants = ["torch+blas", "torch+onednn"]
    res = run_suite("poisson-grad", ["torch", *variants], log=lambda s: None, **FAST)
    rows = {r.provider: r for r in res.rows}
    assert {rows[p].status for p in ("torch", *variants)} == {"ok"}, [(r.provider, r.reason) for r in res.rows]
    for p in variants:
        assert rows[p].max_err <= 2 * rows[p].ref_err + 1e-6
        with pytest.raises(ProviderUnavailable, match="choice of CPU products"):
            PROVIDERS[p].load(torch.device("cuda"))
    assert backends.cpu_gemm() == "auto"
    monkeypatch.setattr(backends, "onednn_unavailable_reason", lambda: "no oneDNN in this build")
    with pytest.raises(ProviderUnavailable, match="already uses BLAS here: no oneDNN"):
        PROVIDERS["torch+blas"].load(torch.device("cpu"))
    with pytest.raises(ProviderUnavailable, match="oneDNN cannot run here: no oneDNN"):
        PROVIDERS["torch+onednn"].load(torch.device("cpu"))
    monkeypatch.undo()
    out = tmp_path / "cpu-gemm.json"
    monkeypatch.setattr(cpu_gemm, "SMALL", ((64, 2, 16),))
    assert cpu_gemm.main(["--points", "64", "--width", "16", "--repeats", "2", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert {r["shape"] for r in doc["rows"]} == {"forward", "weight-gradient", "small"}
    assert cpu_gemm.jet.CPU_ONEDNN_MIN_MACS > 0  # set aside only while it measured
    assert all(r["blas_gflops"] > 0 and r["onednn_gflops"] > 0 for r in doc["rows"]) and doc["commit"]
    assert backends.cpu_gemm() == "auto"
    with pytest.raises(ValueError, match="--width must be > 0"):
        cpu_gemm.main(["--width", "0"])


def test_cpu_blocks_times_each_block_size_and_the_rule(tmp_path):
    """cpu_blocks times a step at each forced block size and under the rule, reports the
    fastest, and leaves the block constants as they were; bad numbers are refused."""
    import json

    from fastsiren.benchmarks import cpu_blocks

    from fastsiren import jet as jet_module

    before = jet_module.CPU_BLOCK_ROWS, jet_module.CPU_BLOCK_ELEMS
    out = tmp_path / "cpu-blocks.json"
    assert cpu_blocks.main(["--suite", "poisson-laplacian", "--width", "16", "--block", "8", "--block", "32",
                            "--points", "64", "--rounds", "1", "--out", str(out)]) == 0
    assert (jet_module.CPU_BLOCK_ROWS, jet_module.CPU_BLOCK_ELEMS) == before
    doc = json.loads(out.read_text())
    (row,) = doc["rows"]
    assert set(row["ms"]) == {"8", "32"} and all(v > 0 for v in row["ms"].values())
    assert row["best_block"] in (8, 32) and row["rule_ms"] > 0 and row["rule_over_best"] > 0
    assert row["rule_block"] == 64  # the rule's block (8192 points at width 16, halved) holds all 64
    assert doc["commit"] and "CPU_BLOCK_ELEMS" in doc["rule"]
    with pytest.raises(ValueError, match="--block must be > 0"):
        cpu_blocks.main(["--block", "0"])


def test_cpu_trig_times_and_checks_both_libraries(tmp_path, monkeypatch):
    """cpu_trig times NumPy's and torch's sines and cosines per element (torch at each thread
    count up to --max-threads), writes each library's error against float64 per argument range
    and on the special values, and times the torch backend's steps with both (providers torch
    and torch+torchtrig, which is unavailable where it would time the plain provider); bad
    numbers are refused."""
    import json

    from fastsiren.benchmarks import cpu_trig

    out = tmp_path / "cpu-trig.json"
    before = torch.get_num_threads()
    assert cpu_trig.main(["--suite", "poisson-grad", "--size", "quick", "--step-rounds", "1", "--points", "8",
                          "--rounds", "1", "--calls", "1", "--max-threads", "2", "--error-points", "256",
                          "--out", str(out)]) == 0
    assert torch.get_num_threads() == before and backends.cpu_numpy_trig()
    table = readme_tables.trig_table(out)  # the README's tables of the file
    assert "| sin |" in table and "| poisson-grad | step |" in table and "per call" in table
    assert readme_tables.trig_table(tmp_path / "missing.json") == ""
    doc = json.loads(out.read_text())
    assert {(r["function"], r["library"], r["threads"]) for r in doc["elementwise"]} == {
        (f, lib, t) for f in ("sin", "cos") for lib, t in (("numpy", 1), ("torch", 1), ("torch", 2))}
    assert all(r["ns_per_element"] > 0 for r in doc["elementwise"])
    assert [(r["threads"], r["elements"]) for r in doc["per_call"]] == [
        (t, n) for t in (1, 2) for n in cpu_trig.CALL_SIZES]
    assert all(r["numpy_us"] > 0 and r["torch_us"] > 0 for r in doc["per_call"])
    assert doc["numpy_min_elements"] == {str(t): n for t, n in jet.CPU_NUMPY_TRIG_MIN_ELEMS.items()}
    assert min(jet.CPU_NUMPY_TRIG_MIN_ELEMS.values()) > 0  # set aside only while it timed
    ranged = [r for r in doc["errors"] if "max_ulp" in r]
    assert len(ranged) == 2 * 2 * len(cpu_trig.RANGES) and all(0 <= r["max_ulp"] < 4 for r in ranged)
    specials = [r for r in doc["errors"] if r["range"] == "special values"]
    assert len(specials) == 4 and all(r["nan_where_float64"] and r["all_close"] for r in specials)
    (row,) = doc["steps"]
    assert (row["suite"], row["phase"]) == ("poisson-grad", "step") and row["numpy_ms"] > 0 and row["torch_ms"] > 0
    assert doc["commit"] and doc["numpy"] and doc["numpy_max_threads"] == jet.numpy_trig_max_threads() == 2
    assert row["threads"] == min(before, 2)
    with pytest.raises(ProviderUnavailable, match="choice of CPU runs"):
        PROVIDERS["torch+torchtrig"].load(torch.device("cuda"))
    monkeypatch.setattr(jet, "CPU_NUMPY_TRIG_MIN_ELEMS", {})
    with pytest.raises(ProviderUnavailable, match="above 0 torch threads the plain provider"):
        PROVIDERS["torch+torchtrig"].load(torch.device("cpu"))
    # more threads than NumPy's functions run at: per-call rows only where they may, steps at 2
    monkeypatch.setattr(jet, "CPU_NUMPY_TRIG_MIN_ELEMS", {1: 16384})
    assert {r["threads"] for r in cpu_trig.per_call((256,), 2, 1, 1)} == {1}
    monkeypatch.undo()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        assert cpu_trig.main(["--suite", "fit", "--size", "quick", "--step-rounds", "1", "--points", "8", "--rounds",
                              "1", "--calls", "1", "--max-threads", "3", "--error-points", "64", "--out",
                              str(out)]) == 0
    finally:
        torch.set_num_threads(threads_before)
    doc3 = json.loads(out.read_text())
    assert {r["threads"] for r in doc3["steps"]} == {2} and {r["threads"] for r in doc3["per_call"]} == {1, 2}
    with pytest.raises(ValueError, match="--calls must be > 0"):
        cpu_trig.main(["--calls", "0"])


def test_cpu_malloc_times_both_settings_in_child_processes(tmp_path):
    """cpu_malloc runs each allocator setting in its own child process (the pinned one with
    glibc's thresholds in its environment), alternating, and writes both providers' medians
    and torch's speedup under each; bad numbers are refused."""
    import json

    from fastsiren.benchmarks import cpu_malloc

    out = tmp_path / "cpu-malloc.json"
    assert cpu_malloc.main(["--suite", "fit", "--size", "quick", "--repeats", "1", "--passes", "1",
                            "--threads", "1", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    (row,) = doc["rows"]
    assert (row["suite"], row["phase"]) == ("fit", "step")
    for setting in ("glibc", "pinned"):
        assert all(row["ms"][setting][p] > 0 for p in ("reference", "torch"))
        assert row["torch_speedup"][setting] > 0 and len(row["passes_ms"][setting]) == 1
    assert doc["settings"]["pinned"]["MALLOC_MMAP_THRESHOLD_"] == str(1 << 30) and doc["threads"] == "1"
    from fastsiren.benchmarks import readme_tables

    table = readme_tables.malloc_table(out)  # the README's table of the file
    assert "| fit | step |" in table and "1 thread " in table and "1 processes per setting" in table
    assert readme_tables.malloc_table(tmp_path / "missing.json") == ""
    with pytest.raises(ValueError, match="--passes must be > 0"):
        cpu_malloc.main(["--passes", "0"])


def test_cpu_malloc_child_pins_the_environment(monkeypatch):
    """The pinned setting reaches the child through its environment; the glibc one removes any
    inherited setting."""
    from fastsiren.benchmarks import cpu_malloc

    seen = []
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "5")

    def fake_run(cmd, cwd, env, check):
        seen.append({k: env.get(k) for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")})
        Path(cmd[cmd.index("--child") + 1]).write_text('{"fit/step": {"reference": 2.0, "torch": 1.0}}')

    monkeypatch.setattr(cpu_malloc.subprocess, "run", fake_run)
    rows = cpu_malloc.measure(("fit",), "quick", None, 1, 1, log=lambda _: None)
    assert seen == [{"MALLOC_MMAP_THRESHOLD_": None, "MALLOC_TRIM_THRESHOLD_": None},
                    {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}]
    assert rows[0]["torch_speedup"] == {"glibc": 2.0, "pinned": 2.0}


def test_compiled_torch_provider_is_checked_and_timed():
    """torch+compile (the torch backend under inductor, its hand-written backward traced) passes the
    reference check on a training step with jets and on the render."""
    for suite in ("poisson-laplacian", "render"):
        res = run_suite(suite, ["torch+compile"], log=lambda s: None, **FAST)
        row = next(r for r in res.rows if r.provider == "torch+compile")
        assert row.status == "ok" and row.median_ms > 0, (suite, row.reason)


def test_a_provider_left_out_of_all_on_other_devices_runs_by_name(monkeypatch):
    """in_all_on (torch+compile: cpu) keeps a provider out of "all" on other device types; asked for
    by name it runs there."""
    import dataclasses

    from fastsiren.benchmarks import harness

    assert harness.PROVIDERS["torch+compile"].in_all_on == ("cpu",)
    monkeypatch.setitem(harness.PROVIDERS, "torch+blas",
                        dataclasses.replace(harness.PROVIDERS["torch+blas"], in_all_on=("cuda",)))
    everything = run_suite("layer", ["all"], log=lambda s: None, **FAST)
    assert "torch+blas" not in {r.provider for r in everything.rows}
    for names in (["torch+blas"], ["all", "torch+blas"]):  # named beside "all" too
        named = run_suite("layer", names, log=lambda s: None, **FAST)
        assert {r.status for r in named.rows if r.provider == "torch+blas"} == {"ok"}, names


def test_scaling_caption_says_only_what_the_sweep_holds_fixed():
    """A setting that moves along a sweep is not called fixed: the layer suite's input
    dimension follows the width."""
    rows = [{"hidden": str(w), "in_features": str(w), "points": "2048", "layers": "1"} for w in (64, 128)]
    assert scaling._fixed_setting(rows, "width") == "D = width, N = 2,048, 1 linear layer"
    rows = [{"hidden": "256", "in_features": "2", "points": str(n), "layers": "5"} for n in (100, 1000)]
    assert scaling._fixed_setting(rows, "points") == "width 256, D = 2, 5 linear layers"



# ---------------------------------------------------------------- bad input and crash safety


@pytest.mark.parametrize("argv, message", [
    (["--block", "0"], "--block must be a positive number of seconds"),
    (["--block", "-1"], "--block must be a positive number of seconds"),
    (["--block", "nan"], "--block must be a positive number of seconds"),
    (["--block", "inf"], "--block must be a positive number of seconds"),
    (["--tol", "-1"], "--tol must be a positive relative tolerance"),
    (["--tol", "nan"], "--tol must be a positive relative tolerance"),
    (["--tol", "0"], "--tol must be a positive relative tolerance"),
    (["--threads", "0"], "--threads must be >= 1"),
    (["--repeats", "-3"], "--repeats must be >= 1"),
    (["--scaling", "--max-points", "0"], "--max-points must be a number of points >= 1000"),
    (["--scaling", "--max-points", "nan"], "--max-points must be a number of points >= 1000"),
    (["--scaling", "--max-points", "-5"], "--max-points must be a number of points >= 1000"),
    (["--scaling", "--max-points", "999"], "--max-points must be a number of points >= 1000"),
    (["--max-points", "1e4"], "--max-points applies only to the scaling sweeps: add --scaling"),
    (["--sweep", "points"], "--sweep applies only to the scaling sweeps: add --scaling"),
])
def test_cli_refuses_bad_numbers_before_any_work(tmp_path, monkeypatch, argv, message):
    """Each used to be taken silently (--block 0 ran one call per block, --tol -1 made every row a
    mismatch, --max-points 0 ran the default sweep) or to fail after the run had started
    (--block nan): now an error naming the option, before anything runs or is written."""
    from fastsiren.benchmarks import harness

    def no_run(*a, **k):
        raise AssertionError("a suite ran despite the bad option")

    monkeypatch.setattr(cli, "run_suite", no_run)
    monkeypatch.setattr(harness, "run_suite", no_run)
    monkeypatch.setattr(scaling, "run_suite", no_run)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "out"), "--suite", "layer", "--provider", "torch", *argv])
    with pytest.raises(ValueError, match=re.escape(message)):
        cli.main(args)
    assert not (tmp_path / "out").exists()


def test_fastsiren_bench_reports_a_bad_option_and_exits_2(tmp_path, capsys):
    from fastsiren import cli as top

    rc = top.main(["bench", "--size", "quick", "--out", str(tmp_path / "out"), "--block", "nan"])
    err = capsys.readouterr().err
    assert rc == 2 and "fastsiren bench: error: --block must be a positive number of seconds, got nan" in err.replace(
        " (per timed block)", "")
    assert not (tmp_path / "out").exists()


def test_harness_and_sweeps_refuse_bad_numbers():
    """The library calls check what the CLI checks: no silent fallback to a default."""
    for kw, message in ((dict(block_s=0.0), "block_s must be a positive"), (dict(block_s=math.nan), "block_s"),
                        (dict(tol=-1.0), "tol must be a positive"), (dict(tol=math.nan), "tol must be"),
                        (dict(rounds=0), "rounds must be >= 1")):
        with pytest.raises(ValueError, match=message):
            run_suite("layer", ["torch"], **{**FAST, **kw})
    for cap in (0, -5, math.nan, 999):
        with pytest.raises(ValueError, match="max_points must be a number of points >= 1000"):
            scaling.sweep_shapes("fit", "points", "cpu", cap)
    assert [v for v, _ in scaling.sweep_shapes("fit", "points", "cpu", 1000)] == [1000]
    assert max(v for v, _ in scaling.sweep_shapes("fit", "points", "cpu")) == scaling.DEFAULT_MAX_POINTS["cpu"]
    with pytest.raises(ValueError, match="max_points"):
        scaling.run_sweeps(["fit"], ["torch"], torch.device("cpu"), torch.float32, sweeps=["points"], max_points=0,
                           log=lambda s: None)
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        scaling.run_sweeps(["fit"], ["torch"], torch.device("cpu"), torch.float32, rounds=0, log=lambda s: None)


def _row(**kw) -> dict[str, str]:
    return {c: "" for c in records.COLUMNS} | {"run_id": "r1", "date": "2026-12-01T00:00:00+00:00", "suite": "fit",
                                              "phase": "step", "provider": "torch", "status": "ok"} | kw


def test_merge_refuses_what_is_not_a_results_csv_and_adds_nothing(tmp_path, capsys):
    """A junk CSV used to add an empty row, a plain file to 'merge' 0 rows, a binary CSV to fail
    with a bare codec error: now each fails the merge, naming the file, and nothing is added."""
    dst = tmp_path / "repo"
    records.append_rows(dst / "fit.csv", [_row(run_id="r0")])
    before = (dst / "fit.csv").read_bytes()
    good = tmp_path / "good"
    records.append_rows(good / "fit.csv", [_row()])
    cases = {
        "junk": ({"layer.csv": b"hello world\nfoo,bar\n"}, "lacks the columns run_id, date, suite, phase, provider"),
        "binary": ({"layer.csv": bytes(range(128, 256))}, "not UTF-8 text"),
        "short": ({"layer.csv": b"run_id,suite,provider\nr0,layer,torch\n"}, "lacks the columns date, phase, status"),
    }
    for name, (files, message) in cases.items():
        src = tmp_path / name
        src.mkdir()
        for f, data in files.items():
            (src / f).write_bytes(data)
        (src / "fit.csv").write_bytes((good / "fit.csv").read_bytes())  # a good file beside the bad one
        with pytest.raises(ValueError, match=re.escape(str(src / "layer.csv")) + ".*" + re.escape(message)):
            records.merge_results(src, dst)
        assert (dst / "fit.csv").read_bytes() == before and not (dst / "layer.csv").exists()
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="is a file, not a folder, and not a .csv file"):
        records.merge_results(tmp_path / "notes.txt", dst)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        records.merge_results(tmp_path / "nowhere", dst)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no \\*.csv files under it"):
        records.merge_results(tmp_path / "empty", dst)
    # a target that is not a results file is refused too, not rewritten in the harness's columns
    (tmp_path / "bad-dst").mkdir()
    (tmp_path / "bad-dst" / "fit.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="bad-dst.fit.csv is not a results CSV file"):
        records.merge_results(good, tmp_path / "bad-dst")
    assert (tmp_path / "bad-dst" / "fit.csv").read_text() == "a,b\n1,2\n"
    # one results CSV file is taken on its own (documented in --merge's help)
    assert records.merge_results(good / "fit.csv", dst) == {"fit.csv": 1}
    assert [r["run_id"] for r in records.read_rows(dst / "fit.csv")] == ["r0", "r1"]
    # through the CLI: exit 2 and the file's name
    from fastsiren import cli as top

    capsys.readouterr()
    assert top.main(["bench", "--merge", str(tmp_path / "junk"), "--out", str(dst)]) == 2
    err = capsys.readouterr().err
    assert "fastsiren bench: error:" in err and str(tmp_path / "junk" / "layer.csv") in err


def test_results_files_are_replaced_atomically(tmp_path, monkeypatch):
    """A write killed before its rename leaves the old file whole (and no temporary file):
    both the plain append and the rewrite of an older schema."""
    import os

    path = tmp_path / "fit.csv"
    records.append_rows(path, [_row(run_id="r0")])
    old_schema = tmp_path / "layer.csv"
    old_schema.write_text("run_id,date,suite,phase,provider,status\nr0,2026-01-01,layer,step,torch,ok\n")
    before = {p: p.read_bytes() for p in (path, old_schema)}

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    for p in before:
        with pytest.raises(KeyboardInterrupt):
            records.append_rows(p, [_row(run_id="r1")])
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.csv", "layer.csv"]
    records.append_rows(path, [_row(run_id="r1")])
    assert [r["run_id"] for r in records.read_rows(path)] == ["r0", "r1"]


def test_a_record_cut_short_by_an_old_writer_is_skipped_with_a_warning(tmp_path, capsys):
    """An older, non-atomic append killed mid-line left a last record without a line end: it is
    skipped with a warning, and the next write drops it instead of appending onto it."""
    path = tmp_path / "fit.csv"
    records.append_rows(path, [_row(run_id="r0"), _row(run_id="r1", median_ms="1.5")])
    whole = path.read_bytes()
    path.write_bytes(whole[:-10])  # cut inside the last record
    rows = records.read_rows(path)
    assert [r["run_id"] for r in rows] == ["r0"]
    assert "line 3 is cut short" in capsys.readouterr().err
    records.append_rows(path, [_row(run_id="r2")])
    assert "line 3 is cut short" in capsys.readouterr().err  # said once more, then gone from the file
    assert [r["run_id"] for r in records.read_rows(path)] == ["r0", "r2"]
    assert path.read_bytes().endswith(b"\r\n") and not capsys.readouterr().err
    # a record with fewer fields than the header (cut at a comma, line end added by hand) too
    path.write_bytes(whole.rsplit(b"\r\n", 2)[0] + b"\r\nr9,2026\r\n")
    assert [r["run_id"] for r in records.read_rows(path)] == ["r0"]
    assert "line 3 has 2 fields" in capsys.readouterr().err
    # an empty file (an old writer killed after truncating it) has no rows and takes new ones
    path.write_bytes(b"")
    assert records.read_rows(path) == []
    records.append_rows(path, [_row()])
    assert len(records.read_rows(path)) == 1


def test_cli_refuses_a_results_file_that_is_not_one_before_running(tmp_path, monkeypatch):
    def no_run(*a, **k):
        raise AssertionError("a suite ran before the results file was checked")

    monkeypatch.setattr(cli, "run_suite", no_run)
    out = tmp_path / "results"
    out.mkdir()
    (out / "layer.csv").write_text("hello world\nfoo,bar\n")
    with pytest.raises(ValueError, match="layer.csv is not a results CSV file"):
        cli.main(_args(tmp_path, suite="layer", provider="torch"))
    assert (out / "layer.csv").read_text() == "hello world\nfoo,bar\n"


def test_ctrl_c_keeps_the_finished_suites_and_exits_130(tmp_path, capsys, interrupt_on_call):
    """Ctrl-C in the second suite: the first suite's rows are on disk, the message says what
    was kept and what was lost, and the exit status is 130."""
    calls = interrupt_on_call(cli, "run_suite", 2)
    args = _args(tmp_path, suite=["layer", "fit"], provider="torch", repeats=1)
    assert cli.main(args) == 130
    assert len(calls) == 2
    out = tmp_path / "results"
    rows = records.read_rows(out / "layer.csv")
    assert rows and {r["suite"] for r in rows} == {"layer"} and not (out / "fit.csv").exists()
    err = capsys.readouterr().err
    assert "interrupted during suite fit" in err and "kept the rows of the finished suites layer" in err
    # a scaling run stopped keeps the sizes it measured (run_sweeps writes each) and says so
    args.suite, args.scaling, args.sweep, args.max_points = ["layer"], True, ["points"], 1000
    interrupt_on_call(scaling, "run_sweeps", 1)
    assert cli.main(args) == 130
    assert "interrupted: the rows of every size measured are kept" in capsys.readouterr().err


def _gpu_check_env(tmp_path, budget: int) -> tuple[dict, "Path", "Path"]:
    """gpu_check.sh's environment with a PYTHON whose pytest and README tables just sleep
    (steps that outlast their limits) and that runs everything else with this interpreter."""
    import os
    import stat
    from pathlib import Path

    fake = tmp_path / "python"
    fake.write_text("#!/usr/bin/env bash\n"
                    'case " $* " in *" -m pytest "*|*" -m benchmarks.readme_tables "*) exec sleep 120;; esac\n'
                    f'exec {sys.executable} "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PYTHON=str(fake), GPU_CHECK_BUDGET=str(budget), GPU_CHECK_TASKS="",
               GPU_CHECK_SITE=str(tmp_path / "site"), FASTSIREN_COMMIT="0123456789abcdef",
               GPU_CHECK_SKIP="env wheels install cuda bench weighted profile tune precision scaling")
    return env, out, Path(__file__).resolve().parents[1]


def test_gpu_check_killed_mid_step_still_returns_its_manifest_and_bundle(tmp_path):
    """A device call killed at its timeout (rc 124/137) in the middle of a step: OUT already
    holds manifest.json of the steps that finished and a bundle the import takes (work/docs
    included, which `cp -r work/docs/. docs/` needs), within the 8 files that come back."""
    import json
    import os
    import shutil
    import signal
    import subprocess
    import tarfile
    import time

    if shutil.which("bash") is None or shutil.which("timeout") is None:
        pytest.skip("bash or timeout is not on PATH")
    env, out, root = _gpu_check_env(tmp_path, 300)
    env["GPU_CHECK_SKIP"] = env["GPU_CHECK_SKIP"].replace("env ", "")  # the env step runs, then pytest hangs
    proc = subprocess.Popen(["bash", str(root / "benchmarks" / "gpu_check.sh")], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        t0 = time.monotonic()
        while "START pytest" not in ((out / "gpu_check.log").read_text() if (out / "gpu_check.log").exists() else ""):
            assert proc.poll() is None and time.monotonic() - t0 < 120, "the script never reached its pytest step"
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # what the device's timeout does to the whole call
        proc.wait()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["finished"] is False and manifest["commit"] == "0123456789abcdef"
    steps = {s["step"]: s["status"] for s in manifest["steps"]}
    assert steps["env"] == "ok" and "pytest" not in steps
    assert "torch" in manifest  # read off the env step's log, with no torch import per step
    with tarfile.open(out / "bundle.tgz") as tar:
        names = set(tar.getnames())
    assert {"work/steps.tsv", "work/logs/env.log", "work/results", "work/docs/results", "work/docs/figures"} <= names
    assert len([p for p in out.rglob("*") if p.is_file()]) <= 8


def test_gpu_check_ends_near_its_budget_when_steps_overrun(tmp_path):
    """A step is cut at the time left before the reserve, and the closing README tables at the
    deadline: with both hanging, the script still ends within a few seconds of GPU_CHECK_BUDGET
    (the device call's timeout_s is BUDGET + 30), with its manifest and bundle."""
    import json
    import shutil
    import subprocess
    import tarfile
    import time

    if shutil.which("bash") is None or shutil.which("timeout") is None:
        pytest.skip("bash or timeout is not on PATH")
    budget = 42  # pytest gets 42 - 25 s of reserve - what the start took: at least the 15 s a step needs
    env, out, root = _gpu_check_env(tmp_path, budget)
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(root / "benchmarks" / "gpu_check.sh")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=budget + 60)
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert wall <= budget + 8, f"{wall:.0f} s for a budget of {budget} s"
    manifest = json.loads((out / "manifest.json").read_text())
    steps = {s["step"]: s for s in manifest["steps"]}
    assert manifest["finished"] is True and steps["pytest"]["note"].startswith("timed out after")
    assert steps["pytest"]["rc"] in (124, 137) and steps["pytest"]["seconds"] <= budget - 25 + 10
    # GPU_CHECK_TASKS="": the experiments were not listed (a torch import's seconds saved)
    assert not any(s.startswith("task-") for s in steps)
    assert "readme_tables failed" in (out / "gpu_check.log").read_text()
    with tarfile.open(out / "bundle.tgz") as tar:
        assert "work/logs/pytest.log" in tar.getnames()
