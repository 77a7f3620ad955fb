"""The report builds from quick-profile results: every section is in the PDF's text, every
figure it references exists, a study without results says so, and numbers come from the files.

The results are one real ``fit`` quick run plus small synthetic files of the other tasks in
the results shape (written only inside the test's tmp dir). The PDF's text is read back with
a small extractor for the PDFs Typst writes (Flate streams, Type0 fonts with ToUnicode maps),
so no PDF library is needed.
"""

from __future__ import annotations

import csv
import json
import re
import zlib
from pathlib import Path

import pytest

from fastsiren.report import build as report
from fastsiren.tasks import common

SECTIONS = ("Introduction", "Related work", "Method", "Experiments", "Discussion", "Conclusion", "References")
SUBSECTIONS = ("Image fitting", "Poisson reconstruction", "Ablations", "Single-image super-resolution",
               "Video frame interpolation", "Speed and memory")


# ---------------------------------------------------------------- PDF text

_OBJ = re.compile(rb"(\d+) 0 obj\s*(.*?)\s*endobj", re.S)
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}


def _stream(obj: bytes) -> bytes:
    m = re.search(rb"stream\r?\n(.*)\r?\nendstream", obj, re.S)
    if m is None:
        return b""
    return zlib.decompress(m.group(1)) if b"/FlateDecode" in obj[:m.start()] else m.group(1)


def _to_unicode(cmap: bytes) -> dict[int, str]:
    table = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", cmap, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            table[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be", "replace")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", cmap, re.S):
        for lo, hi, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            for i, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                table[code] = chr(int(dst, 16) + i)
    return table


def _literal(data: bytes, i: int) -> tuple[bytes, int]:
    """The PDF literal string whose '(' is at ``i - 1``; returns (bytes, index after ')')."""
    out, depth = bytearray(), 1
    while i < len(data):
        c = data[i]
        if c == 0x5C:  # backslash
            m = re.match(rb"[0-7]{1,3}", data[i + 1:i + 4])
            if m:
                out.append(int(m.group(0), 8) & 255)
                i += 1 + len(m.group(0))
            else:
                out.append(_ESCAPES.get(data[i + 1], data[i + 1]))
                i += 2
            continue
        depth += c == 0x28
        depth -= c == 0x29
        if depth == 0:
            return bytes(out), i + 1
        out.append(c)
        i += 1
    raise ValueError("unterminated PDF string")


def pdf_text(path: Path) -> str:
    """The text of a Typst PDF, page by page, with glyph codes mapped through ToUnicode."""
    pdf = path.read_bytes()
    objs = {int(m.group(1)): m.group(2) for m in _OBJ.finditer(pdf)}
    cmaps = {}
    for num, obj in objs.items():
        m = re.search(rb"/ToUnicode (\d+) 0 R", obj)
        if m and b"/Type/Font" in obj:
            cmaps[num] = _to_unicode(_stream(objs[int(m.group(1))]))
    pages = []
    for obj in objs.values():
        if not re.search(rb"/Type/Page\b", obj):
            continue
        res = re.search(rb"/Resources (\d+) 0 R", obj)
        res_obj = objs[int(res.group(1))] if res else obj
        fonts = {name: cmaps.get(int(ref), {}) for name, ref in re.findall(rb"/(\w+) (\d+) 0 R", res_obj)}
        content = b"".join(_stream(objs[int(n)]) for n in re.findall(rb"/Contents (\d+) 0 R", obj))
        text, font, i = [], {}, 0
        while i < len(content):
            m = re.compile(rb"/(\w+) [\d.]+ Tf").match(content, i)
            if m:
                font = fonts.get(m.group(1), {})
                i = m.end()
            elif content[i] == 0x28:
                raw, i = _literal(content, i + 1)
                text.append("".join(font.get(int.from_bytes(raw[k:k + 2], "big"), "")
                                    for k in range(0, len(raw) - 1, 2)))
            elif content[i:i + 2] == b"ET":
                text.append(" ")
                i += 2
            else:
                i += 1
        pages.append("".join(text))
    return re.sub(r"\s+", " ", " ".join(pages))


# ---------------------------------------------------------------- fixtures

def _write(folder: Path, name: str, task: str, rows: list[dict], **extra) -> None:
    common.write_json(folder / name, common.results_doc(task, "quick", rows, backend="torch", seconds=1.0, **extra))


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory) -> dict[str, Path]:
    """A real ``fit --profile quick`` run plus synthetic results of the other studies."""
    from fastsiren.tasks import fit

    tmp = tmp_path_factory.mktemp("report")
    results, bench, figures = tmp / "results", tmp / "bench", tmp / "figures"
    results.mkdir()
    figures.mkdir()
    run = fit.run(fit.FitConfig(profile="quick", size=16, steps=20, hidden=16, out=str(tmp / "fit"),
                                progress=False))
    common.write_json(results / "fit-quick.json", run)
    (figures / "fit-camera-psnr.png").write_bytes((tmp / "fit" / "psnr.png").read_bytes())
    _write(results, "poisson-grad-quick.json", "poisson",
           [{"method": "siren", "supervision": "grad", "image": "camera", "psnr": 31.25},
            {"method": "tanh", "supervision": "grad", "image": "camera", "psnr": 24.5}],
           note="a constant offset is removed before the PSNR")
    _write(results, "compare-quick.json", "compare",
           [{"method": m, "image": "camera", "params": p, "psnr": v}
            for m, p, v in [("siren", 1000, 40.5), ("relu", 1004, 22.0), ("relu_pe", 998, 28.25)]])
    _write(results, "ablate-omega0-quick.json", "ablate",
           [{"method": "siren", "study": "omega0", "layer": layer, "value": v, "psnr": 20.0 + v / 10}
            for layer in ("first", "hidden") for v in (1, 10, 30)])
    _write(results, "sr-quick.json", "sr",
           [{"method": m, "image": img, "scale": s, "psnr_y": 30.0 + off - s, "ssim_y": 0.8}
            for img in ("camera", "astronaut") for s in (2, 4)
            for m, off in [("bicubic", 0.0), ("siren-consistent", 0.5)]])
    # vfi has no results: the report must say so.
    bench.mkdir()
    with (bench / "layer.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["suite", "provider", "size", "device", "median_ms", "speedup"])
        w.writeheader()
        for p, sp in [("reference", 1.0), ("torch", 2.75)]:
            w.writerow({"suite": "layer", "provider": p, "size": 4096, "device": "cpu", "median_ms": 8 / sp,
                        "speedup": sp})
    with (bench / "fit.csv").open("w", newline="") as f:  # fit run alone: reference 2x the malloc study's
        w = csv.DictWriter(f, ["suite", "phase", "provider", "size", "device", "device_type", "threads",
                               "median_ms", "speedup"])
        w.writeheader()
        for p, ms in [("reference", 24.0), ("torch", 6.0)]:
            w.writerow({"suite": "fit", "phase": "step", "provider": p, "size": "quick", "device": "cpu",
                        "device_type": "cpu", "threads": 2, "median_ms": ms, "speedup": 24.0 / ms})
    common.write_json(bench / "gemm-count.json", {"commit": "abc", "counter": "FlopCounterMode", "rows": [
        {"suite": "poisson-laplacian", "in_features": 2, "points": 64, "provider": p, "gemm_gflop": g,
         "reference_over_this": r} for p, g, r in [("reference", 1.5, 1.0), ("torch", 1.0, 1.5)]]})
    common.write_json(bench / "cpu-malloc.json", {
        "commit": "abc", "device": "cpu", "threads": "2", "size": "quick", "repeats": 3, "passes": 2, "rows": [
            {"suite": "fit", "phase": "step", "ms": {"glibc": {"reference": 12.0, "torch": 6.0},
                                                     "pinned": {"reference": 9.0, "torch": 6.0}},
             "torch_speedup": {"glibc": 2.0, "pinned": 1.5}, "pinned_over_glibc": {"reference": 0.75, "torch": 1.0}}]})
    for dev, rows in [("cpu-2t", [("torch", 10.0, 10.5)]), ("gpu", [("triton", 2.0, 2.2), ("cuda", 1.0, 0.98)])]:
        common.write_json(bench / f"weighted-cost-{dev}.json", {
            "commit": "abc", "device": dev, "threads": "2" if dev == "cpu-2t" else "", "size": "quick", "points": 256,
            "grid": [4, 8, 8], "hidden": 32, "hidden_layers": 1, "weights": [1.0, -0.25, -0.25],
            "method": f"steps interleaved, median of {7 if dev == 'gpu' else 15} rounds",
            "rows": [{"provider": p, "plain_ms": a, "weighted_ms": b, "weighted_over_plain": b / a,
                      "spread_ms": {"plain": [a * 0.98, a * 1.02], "weighted": [b * 0.98, b * 1.02]}}
                     for p, a, b in rows], "skipped": {"cuda": "no GPU"} if dev == "cpu-2t" else {}})
    common.write_json(bench / "cuda-mutations.json", {"commit": "abc", "tier": "emulated", "rows": [
        {"name": n, "what": n.replace("-", " "), "caught_plain": c and n != "oob-read", "caught": c, "blind_spot": b}
        for n, c, b in [("no-barrier-render-7", True, ""), ("no-barrier-render-9", False, ""),
                        ("sign-slip", True, ""), ("oob-read", True, ""), ("lost-atomic", False, "serial blocks")]]})
    common.write_json(bench / "triton-mutations.json", {"commit": "abd", "tier": "interpreted", "complete": False,
                                                        "rows": [{"name": n, "what": n.replace("-", " "),
                                                                  "caught_plain": c, "caught": c, "blind_spot": ""}
                                                                 for n, c in [("mask-slip", True), ("sum-slip", True),
                                                                              ("split-rest", False)]]})
    out = tmp / "report.pdf"
    rc = report.main(_args(results, bench, figures, out))
    assert rc == 0
    return {"results": results, "bench": bench, "figures": figures, "out": out, "fit": run}


def _args(results: Path, bench: Path, figures: Path, out: Path, profile: str | None = None):
    import argparse

    p = argparse.ArgumentParser()
    report.add_arguments(p)
    argv = ["--results", str(results), "--bench", str(bench), "--figures", str(figures), "--out", str(out)]
    return p.parse_args(argv + (["--profile", profile] if profile else []))


# ---------------------------------------------------------------- tests

def test_every_section_is_in_the_pdf_text(quick_results):
    text = pdf_text(quick_results["out"])
    assert quick_results["out"].read_bytes().startswith(b"%PDF")
    for heading in SECTIONS + SUBSECTIONS:
        assert heading in text, f"section {heading!r} missing from the PDF text"
    # each experiment names its numbered tables and figures (typst's references resolve)
    flat = " ".join(text.split())
    assert re.search(r"This section\W+s tables: Table \d+( to Table \d+)? ?; figures: Figure \d+", flat), \
        re.findall(r".{40}tables:.{60}", flat)
    assert "??" not in flat


def test_numbers_come_from_the_results_files(quick_results):
    text = pdf_text(quick_results["out"])
    fit_psnr = quick_results["fit"]["rows"][0]["psnr"]
    assert f"{fit_psnr:.2f}" in text  # the real quick fit's PSNR, formatted by the builder
    assert "31.25" in text and "28.25" in text  # synthetic poisson / compare rows
    assert "12.25 dB above the best baseline" in text  # 40.5 - 28.25, computed, not typed
    assert "2.75" in text  # the benchmark speedup
    assert "the reference executes 1.50x the matrix-product FLOPs" in text  # gemm-count.json
    assert "torch vs reference goes from 2.00x to 1.50x" in " ".join(text.split())  # cpu-malloc.json
    assert ("Laplacian weights: the weighted wave step takes 0.98x (cuda, gpu) to 1.10x (triton, gpu) the time of "
            "the same step with the plain Laplacian; in 1 of 3 measurements the two steps' timed rounds overlap"
            ) in " ".join(text.split())  # weighted-cost-*.json: min, max and the overlapping spreads counted
    assert "Not measured: cuda on cpu-2t, 2 threads (no GPU)" in " ".join(text.split())
    assert ("steps interleaved; cpu-2t, 2 threads: size quick, median of 15 rounds, commit abc"
            in " ".join(text.split()))  # each file's own rounds, not the first file's
    assert ("the suite table's reference took 2.00x its time in this study under the same glibc defaults"
            in " ".join(text.split()))  # fit.csv's reference against cpu-malloc.json's
    squashed = " ".join(text.split())  # *-mutations.json: counted, not typed
    assert ("The emulated test tier detected 3 of 5 mutants of the CUDA sources, among them 1 of the 2 with one "
            "barrier removed; 1 of the 3 only with AddressSanitizer (oob-read)") in squashed
    assert "Missed (cuda): lost-atomic, lost atomic (serial blocks)" in squashed
    assert "The interpreted Triton tier detected 2 of 3 mutants of the Triton kernels." in squashed
    assert "Missed (triton): split-rest, split rest." in squashed
    assert "A partial run (--only)" in squashed  # triton-mutations.json says "complete": false
    # no torch-mutations.json: named, not left out
    assert "(no torch-mutations.json; python -m benchmarks.torch_mutations writes it)" in squashed
    assert "profile quick" in text and "device cpu" in text
    assert "PSNR of the siren fit of camera" in text  # the caption the fit task stored in its figure


def test_a_study_without_results_says_so(quick_results):
    text = pdf_text(quick_results["out"])
    assert "No vfi results yet" in text
    assert "No fit results yet" not in text


def test_every_referenced_figure_exists(quick_results):
    results, _ = report.load_results(quick_results["results"])
    data = report.Builder(results, report.load_bench(quick_results["bench"]), quick_results["figures"]).build([], None)
    names = report.referenced_figures(data)
    assert "fit-camera-psnr.png" in names and "report-compare.png" in names and "report-sr.png" in names
    for name in names:
        assert (quick_results["figures"] / name).is_file(), name


def test_best_profile_is_chosen_and_profile_can_be_forced(tmp_path):
    _write(tmp_path, "compare-quick.json", "compare", [{"method": "siren", "psnr": 1.0}])
    doc = common.results_doc("compare", "cpu", [{"method": "siren", "psnr": 2.0}], backend="torch", seconds=1.0)
    common.write_json(tmp_path / "compare-cpu.json", doc)
    (tmp_path / "notes.json").write_text("[1, 2]")
    chosen, skipped = report.load_results(tmp_path)
    assert [r.profile for r in chosen["compare"]] == ["cpu"]
    assert any("superseded" in s for s in skipped) and any("notes.json" in s for s in skipped)
    forced, _ = report.load_results(tmp_path, profile="quick")
    assert forced["compare"][0].rows[0]["psnr"] == 1.0
    with pytest.raises(ValueError, match="profile='fast'"):
        report.load_results(tmp_path, profile="fast")


def test_an_interrupted_table_yields_to_a_complete_one(tmp_path):
    """A paper-profile table that timed out (``complete`` false) does not hide the complete
    cpu one; alone, it is still shown."""
    _write(tmp_path, "vfi-quick.json", "vfi", [{"method": "blend", "ie": 2.0}], complete=True)
    doc = common.results_doc("vfi", "paper", [{"method": "blend", "ie": 1.0}], backend="torch", seconds=1.0,
                             complete=False)
    common.write_json(tmp_path / "vfi-paper.json", doc)
    chosen, _ = report.load_results(tmp_path)
    assert [r.profile for r in chosen["vfi"]] == ["quick"]
    (tmp_path / "vfi-quick.json").unlink()
    chosen, _ = report.load_results(tmp_path)
    assert [r.profile for r in chosen["vfi"]] == ["paper"]


def test_figures_of_a_superseded_profile_are_left_out(tmp_path):
    results, figures = tmp_path / "results", tmp_path / "figures"
    _write(results, "fit-quick.json", "fit", [{"method": "siren", "psnr": 30.0}])
    for name in ("fit-quick.png", "fit-quick-psnr.png", "fit-paper.png", "fit-paper-psnr.png", "fit-camera.png"):
        fig, _ = common.plt_figure()
        common.save_figure(fig, figures / name, caption=f"caption {name}")
    chosen, _ = report.load_results(results)
    shown = [f["caption"] for f in report.Builder(chosen, [], figures)._task_figures("fit")]
    assert shown == ["caption fit-camera.png", "caption fit-quick-psnr.png", "caption fit-quick.png"]


def test_empty_results_still_build(tmp_path):
    out = tmp_path / "empty.pdf"
    with pytest.raises(FileNotFoundError, match="--results .*none: no such folder"):
        report.main(_args(tmp_path / "none", tmp_path / "nobench", tmp_path / "fig", out))
    assert not out.exists()
    (tmp_path / "none").mkdir()
    with pytest.raises(FileNotFoundError, match="--bench .*nobench: no such folder"):
        report.main(_args(tmp_path / "none", tmp_path / "nobench", tmp_path / "fig", out))
    (tmp_path / "nobench").mkdir()
    assert report.main(_args(tmp_path / "none", tmp_path / "nobench", tmp_path / "fig", out)) == 0
    text = pdf_text(out)
    for task in report.TASKS:
        assert f"No {task} results yet" in text
    assert "No benchmark results yet" in text


def test_comparison_direction_follows_the_metric():
    rows = [{"method": "siren", "ie": 4.0}, {"method": "blend", "ie": 5.0}, {"method": "flow", "ie": 3.5}]
    (c,) = report.compare_methods(rows, "ie", [])
    assert (c.siren, c.baseline) == ("siren", "flow") and c.gain == pytest.approx(-0.5)
    (p,) = report.compare_methods([{"method": "siren", "psnr": 30.0}, {"method": "relu", "psnr": 20.0}], "psnr", [])
    assert p.gain == pytest.approx(10.0) and "10.00 dB above" in p.sentence() and p.won
    (t,) = report.compare_methods([{"method": "siren", "ie": 27.459}, {"method": "blend", "ie": 27.462}], "ie", [])
    assert t.gain > 0 and t.level and not t.won and "level with the best baseline (blend" in t.sentence()
    (q,) = report.compare_methods([{"method": "siren", "psnr": 30.04}, {"method": "relu", "psnr": 30.0}], "psnr", [])
    assert q.level and not q.won


def test_every_siren_method_meets_the_best_baseline_with_a_paired_interval():
    """Each SIREN method is compared on its own (never the best one picked per setting), against the
    setting's best baseline; over paired frames a difference whose 95% interval holds zero is level."""
    ie = {"blend": (5.0, 5.0, 5.0, 5.0), "siren": (4.0, 4.1, 3.9, 4.0), "siren-flow": (2.0, 8.0, 3.0, 6.5)}
    rows = [{"method": m, "video": "bikes", "frame": f, "ie": v[f]} for m, v in ie.items() for f in range(4)]
    comps = report.compare_methods(rows, "ie", ["video"], pair=["frame"])
    assert [(c.siren, c.baseline, c.n) for c in comps] == [("siren", "blend", 4), ("siren-flow", "blend", 4)]
    siren, flow = comps
    d = [1.0, 0.9, 1.1, 1.0]  # blend - siren per frame: mean 1, sd 0.0816, t(0.975, 3) = 3.182
    assert siren.interval == pytest.approx(3.1824 * 0.08165 / 2, rel=1e-3) and siren.won and not siren.level
    assert sum(d) / 4 == pytest.approx(siren.gain)
    # siren-flow's mean (4.875) is below the blend's, but its frames scatter: level, and it says why
    assert flow.gain > 0 and flow.interval > flow.gain and flow.level and not flow.won
    assert "holds zero" in flow.sentence() and "over 4 cases" in flow.sentence()
    text = report.tally(comps, "ie", "video")
    assert "siren is better in 1, level in 0 and worse in 0; siren-flow is better in 0, level in 1" in text, text
    # no pairs (one row a method), or a median: no interval
    assert report.compare_methods(rows, "ie", ["video"], agg="median", pair=["frame"])[0].interval is None
    assert report.compare_methods(rows[:1] + rows[4:5], "ie", [], pair=["frame"])[0].interval is None


def test_bench_keeps_the_latest_run_of_each_device_suite_and_size(tmp_path):
    """Tables and findings come from one run per (device, suite, size, ...): an older run's
    rows (old code) never mix with a newer run's, even for cases the newer run did not time."""
    with (tmp_path / "fit.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run_id", "date", "suite", "size", "provider", "points", "device", "median_ms"])
        w.writerow(["r1", "2026-11-01", "fit", "default", "torch", 1000, "cpu", 1.5])
        w.writerow(["r1", "2026-11-01", "fit", "default", "torch", 2000, "cpu", 2.5])
        w.writerow(["r1", "2026-11-01", "fit", "quick", "torch", 10, "cpu", 0.5])
        w.writerow(["r2", "2026-11-01", "fit", "default", "torch", 1000, "NVIDIA H100", 0.1])
        w.writerow(["r3", "2026-11-02", "fit", "default", "torch", 1000, "cpu", 1.25])  # a later run
    rows = report.load_bench(tmp_path)
    got = sorted((r["device"], r["size"], r["points"], r["median_ms"]) for r in rows)
    assert got == [("NVIDIA H100", "default", 1000, 0.1), ("cpu", "default", 1000, 1.25),
                   ("cpu", "quick", 10, 0.5)]


def test_a_vfi_dev_run_gets_its_own_table_and_no_findings(tmp_path):
    rows = [{"method": m, "video": v, "gap": 1, "ie": ie} for v in ("carphone", "bikes")
            for m, ie in (("blend", 5.0), ("siren", 4.0))]
    _write(tmp_path, "vfi-quick.json", "vfi", rows)
    _write(tmp_path, "vfi-dev-quick.json", "vfi", [dict(r, ie=r["ie"] + 2 * (r["method"] == "siren")) for r in rows],
           dev_frames={"carphone": [3]})
    results, _ = report.load_results(tmp_path)
    sec = report.Builder(results, [], tmp_path / "fig").vfi()
    captions = [t["caption"] for t in sec.tables]
    assert sum("dev subset" in c for c in captions) == 1 and len(captions) == 2
    assert sec.comparisons and all(c.gain == pytest.approx(1.0) for c in sec.comparisons)  # the table's only
    assert {p.name for p in (tmp_path / "fig").glob("report-vfi*.png")} == {"report-vfi.png", "report-vfi-dev.png"}


def test_other_data_tables_come_from_the_results_files(tmp_path):
    """The published numbers of other methods are read from the results files, never typed."""
    pub = [{"method": "SwinIR", "dataset": "Set5", "scale": s, "psnr_y": v} for s, v in ((2, 38.35), (4, 32.72))]
    _write(tmp_path, "sr-quick.json", "sr", [{"method": "bicubic", "image": "camera", "scale": 2, "psnr_y": 30.0}],
           published_other_data=pub)
    _write(tmp_path, "vfi-quick.json", "vfi", [{"method": "blend", "video": "bikes", "gap": 1, "ie": 5.0}],
           published=[{"method": "DAIN", "dataset": "Middlebury evaluation", "ie": 4.86}])
    results, _ = report.load_results(tmp_path)
    other = report.Builder(results, [], tmp_path / "fig").other_data()
    assert other["sr"] == {"columns": ["method", "Set5 ×2", "Set5 ×4"], "rows": [["SwinIR", "38.35", "32.72"]]}
    assert other["vfi"]["rows"] == [["DAIN", "4.86"]]
    assert not any(n in report.template_text() for n in ("38.35", "4.86", "38.42"))


def test_summary_names_the_settings_of_a_study_counted_in_two_metrics(tmp_path):
    """The comparison counts fitting by held-out PSNR and Poisson by PSNR: the summary's metric
    list says which of its settings each metric counts."""
    rows = [{"method": m, "task": t, "supervision": sup, "image": "camera", "lr": 1e-3, "best_lr": True,
             "psnr": v, "psnr_heldout": v - 5 if t == "fit" else None}
            for t, sup in (("fit", "value"), ("poisson-grad", "grad")) for m, v in (("siren", 40.0), ("relu", 30.0))]
    _write(tmp_path, "compare-quick.json", "compare", rows)
    results, _ = report.load_results(tmp_path)
    summary = report.Builder(results, [], tmp_path / "fig").build([], None)["discussion"]["summary"][0]
    assert "PSNR for compare (task poisson-grad, supervision grad)" in summary, summary
    assert "held-out PSNR for compare (task fit, supervision value)" in summary, summary


def test_summary_counts_each_case_once(tmp_path):
    """A case with two metrics (VFI's IE and PSNR) is one case of the summary, counted by its first."""
    rows = [{"method": m, "video": v, "gap": 1, "ie": ie, "psnr": p} for v in ("carphone", "bikes")
            for m, ie, p in (("blend", 5.0, 30.0), ("siren", 4.0 if v == "bikes" else 6.0, 31.0))]
    _write(tmp_path, "vfi-quick.json", "vfi", rows)
    _write(tmp_path, "compare-quick.json", "compare",
           [{"method": m, "image": "camera", "psnr": v} for m, v in (("siren", 40.0), ("relu", 30.0))])
    results, _ = report.load_results(tmp_path)
    summary = report.Builder(results, [], tmp_path / "fig").build([], None)["discussion"]["summary"][0]
    assert summary.startswith("Across 3 cases") and "better in 2," in summary and "worse in 1." in summary, summary
    assert "IE (lower is better) for vfi" in summary and "PSNR for compare" in summary, summary
    assert "vfi 1 of 2 by IE" in summary and "compare 1 of 1" in summary, summary
    assert summary.endswith(" Worse: vfi siren (video carphone)."), summary  # the loss, named
    discussion = report.Builder(results, [], tmp_path / "fig").build([], None)["discussion"]
    # PSNR is counted apart, never added to the IE count, and each says which way is better
    assert "Counted by PSNR (higher is better) instead, in vfi: siren is better in 2 of 2, level in 0 and worse in 0." \
        in discussion["summary"], discussion["summary"]
    assert [w.split(" – ")[0] for w in discussion["lost"]] == ["vfi, by IE"], discussion["lost"]
    assert "lower is better" in discussion["lost"][0]
    verdicts = [[c["t"] for c in row] for row in discussion["table"]["rows"]]  # the Discussion's one table
    assert len(verdicts) == len(discussion["worked"]) + len(discussion["lost"]) - len(discussion["other_losses"])
    assert sum(v[-1] == "worse" for v in verdicts) == 1 and all(v[-1] in ("better", "level", "worse") for v in verdicts)
    assert sorted({w.split(" – ")[0] for w in discussion["worked"]}) == ["compare", "vfi, by IE",
                                                                        "vfi, by PSNR (higher is better)"]


def test_vfi_tallies_count_each_metric_apart(tmp_path):
    """The VFI findings count IE (lower is better) and PSNR (higher is better) separately."""
    rows = [{"method": m, "video": v, "gap": 1, "ie": ie, "psnr": p} for v in ("carphone", "bikes")
            for m, ie, p in (("blend", 5.0, 30.0), ("siren", 4.0 if v == "bikes" else 6.0, 31.0))]
    _write(tmp_path, "vfi-quick.json", "vfi", rows)
    results, _ = report.load_results(tmp_path)
    findings = report.Builder(results, [], tmp_path / "fig").vfi().findings
    assert ("By mean IE over each setting's frames (lower is better), against the best baseline of each of 2 settings "
            f"(video): siren is better in 1, level in 0 and worse in 1 ({report.LEVEL_RULE}).") in findings, findings
    assert ("By mean PSNR over each setting's frames (higher is better), against the best baseline of each of 2 "
            f"settings (video): siren is better in 2, level in 0 and worse in 0 ({report.LEVEL_RULE}).") in findings
    ie_at, psnr_at = (findings.index(next(f for f in findings if f.startswith(f"By mean {m}"))) for m in ("IE", "PSNR"))
    assert all(f.startswith("IE: ") for f in findings[ie_at + 1:psnr_at]), findings


def _vfi_frame_rows(big: float) -> list[dict]:
    """Two clips of three frames at gaps 1 and 2; frame 20 of bikes has IE ``big`` for every method."""
    rows = []
    for v, frames in (("bikes", (2, 20, 40)), ("carphone", (3, 30, 60))):
        for k in frames:
            for g in (1, 2):
                for m, ie in (("blend", 5.0), ("tvl1", 4.0 + (k == 2)), ("siren", 4.5)):
                    rows.append({"method": m, "video": v, "frame": k, "gap": g,
                                 "ie": big if (v, k) == ("bikes", 20) else ie + g})
    return rows


def test_vfi_lists_its_frames_gives_medians_and_flags_a_frame_that_carries_the_mean(tmp_path):
    _write(tmp_path, "vfi-quick.json", "vfi", _vfi_frame_rows(big=90.0))
    results, _ = report.load_results(tmp_path)
    builder = report.Builder(results, [], tmp_path / "fig")
    sec = builder.vfi()
    assert ("Evaluated frames (vfi-quick.json, 12 triplets): the predicted frame K of each clip, each at gaps 1 and 2: "
            "bikes 2, 20, 40; carphone 3, 30, 60.") in sec.findings, sec.findings
    medians = [t for t in sec.tables if "median over frames" in t["caption"]]
    assert len(medians) == 1 and medians[0]["columns"][-1] == "median"
    tvl1 = next(r for r in medians[0]["rows"] if r[0]["t"] == "tvl1")
    assert [c["t"] for c in tvl1[1:]] == ["6.000", "7.000", "5.000", "6.000", "6.000"]  # medians of 3 frames, of all 12
    assert ("By median IE over each setting's frames (lower is better; the table of medians), against the best "
            "baseline of each of 4 settings (video and gap): siren is better in 2, level in 0 and worse in 2 "
            f"({report.LEVEL_RULE})." in sec.findings), sec.findings
    carried = next(f for f in sec.findings if f.startswith("One frame carries the mean IE"))
    shares = {m: 180 / sum(r["ie"] for r in _vfi_frame_rows(90.0) if r["method"] == m)
              for m in ("blend", "tvl1", "siren")}
    assert (f"frame 20 of bikes (gaps 1 and 2) holds {min(shares.values()):.0%} to {max(shares.values()):.0%} of each "
            "method's IE summed over all 12 triplets, against an even share of 17% for each of the 6 frames") in carried
    assert carried.endswith("the lowest is tvl1 with it and without it."), carried
    assert any(lim.startswith("Frame interpolation: one frame, frame 20 of bikes") for lim in builder.limits)
    # no frame over three times its even share: no flag, no limit
    _write(tmp_path, "vfi-quick.json", "vfi", _vfi_frame_rows(big=7.0))
    results, _ = report.load_results(tmp_path)
    builder = report.Builder(results, [], tmp_path / "fig")
    assert not any("carries the mean" in f for f in builder.vfi().findings) and not builder.limits


def _sr_rows(srcnn_ssim: float) -> list[dict]:
    rows = []
    for img, off in (("camera", 0.0), ("coins", 0.02)):
        for s in (2, 2.5):
            for m, p, q in (("bicubic", 28.0, 0.80), ("srcnn", 28.5, srcnn_ssim + off),
                            ("siren-consistent", 29.0, 0.85)):
                rows.append({"method": m, "image": img, "scale": s, "psnr_y": p - s, "ssim_y": q})
    return rows


def test_sr_says_where_a_baseline_beats_siren_on_ssim_and_what_srcnn_is(tmp_path):
    training = {"steps": 30, "batch": 4, "patch": 9, "lr": 0.001, "train_seconds": 2.5, "threads": 1,
                "images": ["brick", "moon", "bikes[0]"], "scales": [2, 3], "excluded": ["camera", "coins"],
                "date": "not the committed weights"}
    _write(tmp_path, "sr-quick.json", "sr", _sr_rows(srcnn_ssim=0.845), srcnn_training=training)
    results, _ = report.load_results(tmp_path)
    data = report.Builder(results, [], tmp_path / "fig").build([], None)
    (lost,) = [x for x in data["discussion"]["lost"] if x.startswith("sr – ")]
    assert ("sr – by SSIM-Y (higher is better), siren-consistent, the SIREN variant with the best mean PSNR-Y, is "
            "below srcnn on 2 of 4 images and scales (x2 1 of 2, x2.5 1 of 2) and below it in the mean over images "
            "at 2 of 2 scales. By PSNR-Y, srcnn is above it on 0 of the 4.") in lost, lost
    assert ("The srcnn baseline is a small SRCNN trained in this project, not the published model. It was trained "
            "once, on the luma of 2 bundled images and 1 frame of the bundled clips (the evaluation images excluded) "
            "with the evaluation's degradation, for 30 Adam steps of 4 patches of 9x9 px each (lr 0.001, 2.5 s on 1 "
            "CPU thread), one network for scales 2 and 3; at x2.5, a scale it was not trained for, the same network "
            "corrects the bicubic upsampling. It is weaker than the published SRCNN") in lost, lost
    # the committed weights' own record: their architecture, read from the checkpoint
    committed = json.loads(Path(report.__file__).resolve().parents[1].joinpath("weights", "srcnn_y.json").read_text())
    _write(tmp_path, "sr-quick.json", "sr", _sr_rows(srcnn_ssim=0.845), srcnn_training=committed)
    results, _ = report.load_results(tmp_path)
    text = report.Builder(results, [], tmp_path / "fig")._srcnn_text(results["sr"][0])
    assert "not the published model: 9-1-5 convolutions with" in text and "filters (the paper's 64 and 32)" in text
    # SIREN above every baseline on SSIM: nothing to say
    _write(tmp_path, "sr-quick.json", "sr", _sr_rows(srcnn_ssim=0.80), srcnn_training=training)
    results, _ = report.load_results(tmp_path)
    data = report.Builder(results, [], tmp_path / "fig").build([], None)
    assert not any(x.startswith("sr – ") for x in data["discussion"]["lost"])
    assert not any("srcnn baseline" in f for f in data["sections"]["sr"]["findings"])


def test_compare_says_when_the_best_learning_rate_is_at_the_edge_of_the_sweep(tmp_path):
    psnr = {("siren", 1e-4): 30.0, ("siren", 1e-3): 40.0, ("siren", 1e-2): 10.0,   # inside the sweep
            ("relu", 1e-4): 18.0, ("relu", 1e-3): 20.0, ("relu", 1e-2): 21.0,      # at its top
            ("tanh", 1e-4): 19.0, ("tanh", 1e-3): 18.0, ("tanh", 1e-2): 17.0}      # at its bottom
    _write(tmp_path, "compare-quick.json", "compare",
           [{"method": m, "task": "fit", "lr": lr, "psnr": v} for (m, lr), v in psnr.items()])
    results, _ = report.load_results(tmp_path)
    builder = report.Builder(results, [], tmp_path / "fig")
    findings = builder.compare().findings
    edge = ("The best learning rate (highest PSNR) is the largest of the rates swept (0.0001, 0.001 and 0.01) for "
            "relu on all: it lies at the edge of the sweep, and a larger rate might fit better")
    assert edge in " ".join(findings), findings
    assert any(f.startswith("The best learning rate (highest PSNR) is the smallest of the rates swept (0.0001, 0.001 "
                            "and 0.01) for tanh on all") for f in findings), findings
    assert not any("siren" in f for f in findings if f.startswith("The best learning rate"))
    assert [lim.split(":")[0] for lim in builder.limits] == ["SIREN against same-size baselines"]
    # every best rate inside the sweep: nothing said
    _write(tmp_path, "compare-quick.json", "compare",
           [{"method": m, "task": "fit", "lr": lr, "psnr": 30.0 - abs(lr - 1e-3)} for m in ("siren", "relu")
            for lr in (1e-4, 1e-3, 1e-2)])
    results, _ = report.load_results(tmp_path)
    builder = report.Builder(results, [], tmp_path / "fig")
    assert not any("best learning rate" in f for f in builder.compare().findings) and not builder.limits
    # image fitting picks its rates by held-out PSNR: a top rate on the training pixels alone is no edge
    _write(tmp_path, "compare-quick.json", "compare",
           [{"method": m, "task": "fit", "lr": lr, "psnr": v, "psnr_heldout": 25.0 - abs(lr - 1e-3)}
            for (m, lr), v in psnr.items() if m != "tanh"])
    results, _ = report.load_results(tmp_path)
    builder = report.Builder(results, [], tmp_path / "fig")
    assert not any("best learning rate" in f for f in builder.compare().findings) and not builder.limits


def test_precision_table_states_its_settings_and_vfi_methods_are_defined(tmp_path):
    doc = {"device": "GPU X", "commit": "abc", "date": "2026-01-02", "image": "camera", "size": 32, "width": 8,
           "hidden_layers": 1, "steps": 7, "points": 37, "render_points": 64, "backend": "triton",
           "rule": "fastest that passes", "recommended_default": "tf32x3", "versions": {"torch": "9.9"},
           "rows": [{"precision": "float64", "training": False, "psnr": 30.0, "step_ms": 5.0},
                    {"precision": "tf32x3", "training": True, "init_value_err": 1e-6, "psnr": 30.01, "step_ms": 2.0}]}
    sec = report.Section("bench", [])
    report.Builder({}, [], tmp_path, precision=doc)._precision(sec)
    (caption,) = [t["caption"] for t in sec.tables]
    assert ("Settings: one SIREN of width 8 with hidden_layers 1 (counted as in the official code), fitted to the gray "
            "camera image at 32 x 32 px by 7 full-batch Adam steps") in caption, caption
    assert "measured at 37 random points of [-1, 1]²" in caption and "64 points (a 8 x 8 grid)" in caption
    assert "Run on GPU X (torch 9.9); the rule for the default training precision: fastest that passes" in caption
    template = report.template_text()
    for method in ("`blend` is", "`tvl1` is", "`siren` is", "`siren-raw`", "`siren-flow` is"):
        assert method in template, method


def test_cpu_speed_drift_between_days_is_a_limit(tmp_path):
    """Two benchmarks/cpu_gemm.py runs on one device and thread count: when a library's product
    throughput moved (median over the shared shapes), the Discussion's limits say so, computed."""
    def doc(date, onednn, blas, cpu_id=None):
        return {"device": "CPU", "threads": 2, "date": date, "rows": [
            {"shape": "forward", "points": n, "k": 64, "m": 64, "onednn_gflops": onednn * n, "blas_gflops": blas * n}
            for n in (1024, 2048, 4096)], **({"cpu_id": cpu_id} if cpu_id else {})}

    b = report.Builder({}, [], tmp_path, cpu_gemm=[doc("2026-12-05", 1.0, 2.0), doc("2026-12-04", 2.0, 2.0)])
    b._cpu_drift()
    assert b.limits == ["The CPU (CPU, 2 threads) did not run at the same speed from day to day: from 2026-12-04 "
                        "to 2026-12-05 its oneDNN products ran at 0.50x and its BLAS products at 1.00x their earlier "
                        "throughput (median over 3 product shapes, benchmarks/cpu_gemm.py), so CPU speedups compare "
                        "only within one run (one commit and date in the tables), not across dates. Whether it was "
                        "one processor is not recorded: neither of benchmarks/cpu_gemm.py's files records the CPU's "
                        "family and model, which the later results files and benchmark rows do."]
    for ids, says in ((("family 25 model 17", "family 26 model 2"), " Family and model differ, family 25 model 17 "
                       "then family 26 model 2: two processors under one name."),
                      (("family 25 model 17",) * 2, " Both runs name the same family and model, family 25 model 17."),
                      ((None, "family 25 model 17"), " Whether it was one processor is not recorded: the older of "
                       "benchmarks/cpu_gemm.py's files does not record the CPU's family and model, which the later "
                       "results files and benchmark rows do.")):
        moved = report.Builder({}, [], tmp_path, cpu_gemm=[doc("2026-12-06", 1.0, 2.0, ids[1]),
                                                           doc("2026-12-04", 2.0, 2.0, ids[0])])
        moved._cpu_drift()
        assert moved.limits[0].startswith("The CPU (CPU, 2 threads) did not run") and moved.limits[0].endswith(says)
    steady = report.Builder({}, [], tmp_path, cpu_gemm=[doc("2026-12-05", 1.9, 2.1), doc("2026-12-04", 2.0, 2.0)])
    steady._cpu_drift()
    assert steady.limits == []  # within a day's spread: nothing to say


def test_bench_captions_give_the_network_and_the_problem_size():
    def row(suite, size, layers, d, width, out, points, provider="torch"):
        return {"suite": suite, "size": size, "layers": layers, "in_features": d, "hidden": width,
                "out_features": out, "points": points, "provider": provider, "median_ms": 1.0, "_file": "x.csv"}

    net = report.Builder._bench_table("cpu", "render", 2, [row("render", "default", 5, 2, 256, 1, 65536),
                                                           row("render", "large", 5, 2, 256, 1, 4194304)], [])
    assert net["caption"] == ("Benchmark suite render on cpu, 2 torch threads: a SIREN of depth 5 (linear layers; "
                              "hidden_layers 3 as the official code counts them) and width 256, D = 2 inputs, 1 "
                              "output; 65,536 points (a 256 x 256 pixel grid) at benchmark size default, 4,194,304 "
                              "points (a 2048 x 2048 pixel grid) at benchmark size large"), net["caption"]
    wave = report.Builder._bench_table("cpu", "wave", 1, [row("wave", "default", 5, 3, 256, 1, 16384)], [])
    assert "D = 3 inputs, 1 output; 16,384 points (a 16 x 32 x 32 grid of (t, x, y)) at benchmark size default" in \
        wave["caption"], wave["caption"]  # the suite's own grid (benchmarks/suites.py), not a square root
    layer = report.Builder._bench_table("cpu", "layer", None, [row("layer", "default", 1, 256, 256, 256, 16384)], [])
    assert layer["caption"] == ("Benchmark suite layer on cpu: one sine layer from 256 to 256 features; 16,384 points "
                                "at benchmark size default")
    mixed = report.Builder._bench_table("cpu", "fit", None, [row("fit", "default", 5, 2, 256, 1, 100),
                                                             row("fit", "default", 5, 2, 64, 1, 100)], [])
    assert mixed["caption"] == "Benchmark suite fit on cpu"  # two networks in one size: the columns say


def test_cuda_registers_and_auto_cpu_gemm_findings(tmp_path):
    """The speed section states the CUDA kernels' offline resources (and the weighted twins'
    differences) and what mode "auto" timed in the benchmark runs, computed from their files."""
    regs = {"arch": "sm_90", "nvcc": "13.0", "commit": "abc", "rows": [
        {"kernel": "k<LapWeights>", "regs": 64, "spill_st": 0, "stack": 96},
        {"kernel": "k<UnitWeights>", "regs": 56, "spill_st": 8, "stack": 32}],
        "weighted_vs_unit": [{"regs_delta": 8, "stack_unit": 32, "stack_weighted": 96}]}
    kinds = [{"choice": "onednn", "seconds": 0.1}, {"choice": "blas", "seconds": 0.2}]
    auto = {"runs": [{"date": "2026-12-05T20:00", "seconds": 0.3, "kinds": kinds},
                     {"date": "2026-12-05T21:00", "seconds": 0.1, "kinds": kinds[:1]}]}
    b = report.Builder({}, [], tmp_path, registers=regs, auto_gemm=auto)
    sec = report.Section("bench", [])
    b._registers(sec)
    b._auto_gemm(sec)
    assert sec.findings == [
        "CUDA kernels on sm_90, compiled offline (nvcc 13.0, benchmarks/cuda_registers.py, commit abc): 2 kernel "
        "instantiations, 1 with spill stores, 56 to 64 registers per thread. The 1 weighted-Laplacian "
        "instantiation uses +8 registers against its plain twin, and it a stack frame larger by 64 "
        "bytes. No GPU has run them against these figures yet.",
        "CPU products in mode \"auto\": in 2 benchmark processes (2026-12-05; auto-cpu-gemm.json) the first product "
        "of each kind was timed both ways: 1 to 2 kinds per process, 0.10 to 0.30 s of timing per process; oneDNN "
        "was kept for 2 of the 3 kinds, BLAS for the rest."]
    empty = report.Section("bench", [])
    report.Builder({}, [], tmp_path)._registers(empty)
    report.Builder({}, [], tmp_path)._auto_gemm(empty)
    assert empty.findings == []


def test_cpu_targets_finding_gives_verdicts_and_the_product_count(tmp_path):
    """The speed section states issue 2's CPU targets per device and thread count from the
    latest default-size rows, with the matrix-product FLOP ratio, and explains a miss where
    the two steps make the same products."""
    def row(suite, speedup, d=2):
        return {"device": "CPU", "device_type": "cpu", "threads": 2, "size": "default", "dtype": "float32",
                "provider": "torch", "status": "ok", "suite": suite, "speedup": speedup, "in_features": d,
                "commit": "abcdef12345", "date": "2026-12-05T20:00"}

    gemm = {"commit": "d7d8b62304", "rows": [
        {"suite": "poisson-grad", "in_features": 2, "provider": "torch", "reference_over_this": 1.0002},
                     {"suite": "poisson-laplacian", "in_features": 2, "provider": "torch", "reference_over_this": 1.5}]}
    b = report.Builder({}, [], tmp_path, gemm=gemm)
    sec = report.Section("bench", [])
    b._cpu_targets(sec, [row("fit", 1.1), row("poisson-grad", 1.3), row("poisson-laplacian", 2.0),
                         dict(row("render", 2.0)), dict(row("fit", 3.0), device_type="cuda")])
    assert sec.findings == [
        "The torch backend against the reference on CPU, 2 threads, default size (commit abcdef1234, 2026-12-05): "
        "fit 1.10x (target 1x, met); poisson-grad 1.30x (target 1.5x, missed; reference makes 1.00x its "
        "matrix-product FLOPs); poisson-laplacian 2.00x (target 1.8x, met; reference makes 1.50x its matrix-product "
        "FLOPs). FLOPs as counted by benchmarks/gemm_count.py (gemm-count.json, commit d7d8b62304). Where the two "
        "make the same products (poisson-grad), torch's margin is only the rest of the step (elementwise passes, "
        "memory, Python) plus whatever speed its product library has over the reference's BLAS on that host."]
    b.limits.append("The CPU (CPU, 2 threads; ...) did not run at the same speed from day to day: ...")
    again = report.Section("bench", [])
    b._cpu_targets(again, [row("poisson-grad", 1.3)])
    assert again.findings[0].endswith("on that host; see the limit on this CPU's speed from day to day.")
    # with reference rows: each target's ceiling, and a target above its ceiling named
    ref = [dict(row(s_, 1.0), provider="reference", floor_frac=f, threads=1) for s_, f in
           (("fit", 0.5), ("poisson-grad", 1.1))]
    third = report.Section("bench", [])
    b._cpu_targets(third, [dict(row("fit", 1.1), threads=1), dict(row("poisson-grad", 1.3), threads=1), *ref])
    text = third.findings[0]
    assert "fit 1.10x (target 1x, met, ceiling 2.00x)" in text
    assert "poisson-grad 1.30x (target 1.5x, missed, ceiling 1.36x; reference makes 1.00x" in text
    assert "on poisson-grad divided by 0.67 (the reverse-mode gradient's share of the counted products)" in text
    assert ("The target of poisson-grad lies above its ceiling on this host: it can be met only with products "
            "faster than these torch.matmul calls") in text


def test_block_threads_finding_compares_torch_with_torch_serial(tmp_path):
    """The speed section states torch's time over torch+serial's per suite and phase where one
    CPU run timed both; nothing without a torch+serial row."""
    def row(suite, provider, ms, phase="step"):
        return {"device": "CPU", "device_type": "cpu", "threads": 2, "size": "default", "provider": provider,
                "status": "ok", "suite": suite, "phase": phase, "median_ms": ms, "commit": "abcdef12345"}

    b = report.Builder({}, [], tmp_path)
    sec = report.Section("bench", [])
    b._block_threads(sec, [row("fit", "torch", 90.0), row("fit", "torch+serial", 100.0),
                           row("render", "torch", 50.0, "infer"), row("wave", "torch", 10.0)])
    assert sec.findings == [
        "CPU point blocks side by side on CPU, 2 threads, size default (commit abcdef1234): the torch backend's "
        "time over torch+serial's (the same passes one block at a time, multi-threaded ops), same run: "
        "fit step 0.90 (90 against 100 ms)."]
    trig = report.Section("bench", [])
    later = dict(row("fit", "torch", 80.0), run_id="later")  # a later run without torch+torchtrig: not paired
    b._block_threads(trig, [row("fit", "torch", 90.0), row("fit", "torch+torchtrig", 120.0), later])
    assert trig.findings == [
        "Float32 sines and cosines from NumPy on CPU, 2 threads, size default (commit abcdef1234): the torch "
        "backend's time over torch+torchtrig's (the same steps with torch.sin and torch.cos), same run: "
        "fit step 0.75 (90 against 120 ms)."]
    none = report.Section("bench", [])
    b._block_threads(none, [row("fit", "torch", 90.0)])
    assert none.findings == []


def test_trig_study_table_and_finding(tmp_path):
    """benchmarks/cpu_trig.py's file becomes a table (ns per element per library and thread
    count, largest ulp errors) and a finding with the steps' ratios; nothing without the file."""
    doc = {"device": "CPU", "commit": "abcdef1234", "numpy": "2.4", "threads": "2", "numpy_max_threads": 2,
           "numpy_min_elements": {"1": 16384, "2": 65536},
           "elementwise": [{"function": f, "library": lib, "threads": t, "ns_per_element": v}
                           for f in ("sin", "cos") for lib, t, v in (("numpy", 1, 0.5), ("torch", 1, 1.4),
                                                                   ("torch", 2, 1.0))],
           "errors": [{"range": "r", "function": f, "library": lib, "max_ulp": u, "max_abs": 1e-8}
                      for f in ("sin", "cos") for lib, u in (("numpy", 1.25), ("torch", 0.59))]
           + [{"range": "special values", "function": f, "library": lib, "values": [0.0], "nan_where_float64": True,
               "all_close": True} for f in ("sin", "cos") for lib in ("numpy", "torch")],
           "steps": [{"suite": "fit", "phase": "step", "threads": 2, "numpy_ms": 90.0, "torch_ms": 100.0,
                      "numpy_over_torch": 0.9}]}
    sec = report.Section("bench", [])
    report.Builder({}, [], tmp_path, trig=doc)._trig(sec)
    (tab,) = sec.tables
    assert [c["t"] for c in tab["rows"][0]] == ["sin", "0.5", "1.4", "1", "1.25", "0.59"]
    assert "cpu-trig.json" in tab["source"] and tab["caption"].endswith("over 1 argument range")
    (finding,) = sec.findings
    assert "NumPy's sine took 0.5 ns against torch's 1.4 ns on one thread and 1 ns on 2" in finding
    assert "special values agree with float64 in both" in finding and "fit step 0.90 (90 against 100 ms)" in finding
    assert "for tensors of at least 16,384 elements at 1 torch thread and 65,536 elements at 2 torch threads (file" \
        in finding
    assert "(interleaved, 2 torch threads)" in finding
    empty = report.Section("bench", [])
    report.Builder({}, [], tmp_path)._trig(empty)
    assert empty.tables == [] and empty.findings == []


def test_bar_figures_read_true(tmp_path, monkeypatch):
    """Speedups: geometric means on a log axis, bars from 1x (a loss points down); PSNRs on a
    truncated axis are dots, not bars whose length would lie; more than 10 series never share a
    colour; a missing value is marked; the caption is the figure's own."""
    import matplotlib.pyplot as plt

    drawn = []
    monkeypatch.setattr(common, "save_figure", lambda fig, path, **kw: drawn.append((fig, kw.get("caption"))))
    rows = [{"method": "torch", "suite": "fit", "speedup": 2.0}, {"method": "torch", "suite": "fit", "speedup": 8.0},
            {"method": "torch", "suite": "render", "speedup": 0.5},
            {"method": "triton", "suite": "fit", "speedup": 1.5}]
    report.summary_bars(tmp_path / "b.png", rows, "speedup", ["suite"], "t", agg="geomean", base=1.0, caption="cap")
    (fig, caption), = drawn
    ax = fig.axes[0]
    assert caption == "cap" and ax.get_yscale() == "log"
    bars = {(round(b.get_y(), 6), round(b.get_y() + b.get_height(), 6)) for b in ax.patches}
    assert bars == {(1.0, 4.0), (1.0, 0.5), (1.0, 1.5)}  # geomean(2, 8) = 4; 0.5 drawn down from 1
    assert "n/a" in [t.get_text() for t in ax.texts]  # triton ran no render
    plt.close(fig)
    drawn.clear()
    series = {f"m{i}": [30.0 + i, None] for i in range(12)}
    report.grouped_bars(tmp_path / "p.png", ["a", "b"], series, "PSNR (dB)", "t")
    (fig, _), = drawn
    ax = fig.axes[0]
    assert not ax.patches and len(ax.get_lines()) == 12  # dots
    assert len({tuple(ln.get_color()) for ln in ax.get_lines()}) == 12
    plt.close(fig)


def test_series_of_one_family_share_a_colour_scale_and_sit_together():
    """Settings of one method (a dev grid: "tvl1, occlusion 0", "siren-flow, occlusion 0", ...)
    are drawn side by side in one colour scale, shade by the first setting and hatch by the
    second; unrelated methods keep one colour each."""
    names = ["tvl1, occlusion 0", "siren-flow, occlusion 0", "tvl1, occlusion 1", "siren-flow, occlusion 1"]
    order, styles = report.series_styles(names)
    assert order == [names[0], names[2], names[1], names[3]]
    (c0, h0), (c1, h1) = styles[names[0]], styles[names[2]]
    assert h0 == h1 == "" and c0 != c1 and max(c0[:3]) == c0[2] and max(c1[:3]) == c1[2]  # two blues
    assert all(max(styles[n][0][:3]) == styles[n][0][0] for n in names[1::2])  # oranges
    grid = [f"siren-flow, blur {b}, smooth {s}" for b in (0, 1) for s in (0.001, 0.003)] + ["tvl1, attachment 5"]
    _, styles = report.series_styles(grid)
    assert styles[grid[0]][0] == styles[grid[1]][0] != styles[grid[2]][0]  # shade: blur
    assert styles[grid[0]][1] == styles[grid[2]][1] != styles[grid[1]][1]  # hatch: smooth
    assert report.series_styles(["siren", "relu", "tanh"]) == (
        ["siren", "relu", "tanh"], {"siren": ("C0", ""), "relu": ("C1", ""), "tanh": ("C2", "")})


def test_abstract_states_speed_per_device_with_its_run(tmp_path):
    """The abstract's speed line per device: the fastest default backend (never a variant) per
    suite at the default size, GPUs first, the CPU at its largest thread count, a missed target
    never rounded onto it, and the run's commit and date."""
    def row(dev, kind, provider, suite, speedup, threads=None, commit="abc"):
        return {"device": dev, "device_type": kind, "provider": provider, "suite": suite, "size": "default",
                "speedup": speedup, "threads": threads, "status": "ok", "commit": commit, "date": "2026-12-01T00:00",
                "run_id": "r-" + kind}

    bench = [row("CPU X", "cpu", "torch", "poisson-grad", 1.4996, 2),
             row("CPU X", "cpu", "torch", "poisson-grad", 9.0, 1),
             row("CPU X", "cpu", "torch+blas", "fit", 5.0, 2), row("CPU X", "cpu", "torch", "fit", 1.2, 2),
             row("GPU Y", "cuda", "triton", "fit", 1.1, commit="def"),
             row("GPU Y", "cuda", "cuda", "fit", 1.3, commit="def")]
    lines = report.Builder({}, bench, tmp_path / "fig")._speed_summary()
    assert lines[0].startswith("Speed on GPU Y (commit def of 2026-12-01)")
    assert "fit 1.30x (cuda; target 2x)" in lines[0]
    assert lines[1].startswith("Speed on CPU X, 2 torch threads (commit abc of 2026-12-01)")
    assert "fit 1.20x (torch; target 1x)" in lines[1] and "poisson-grad 1.499x (torch; target 1.5x)" in lines[1]


def test_design_studies_go_after_the_speed_findings(tmp_path):
    """A study of one design choice (here the allocator's) adds its findings to the speed
    section's details, not to its main findings."""
    malloc = {"device": "CPU X", "threads": 2, "size": "default", "commit": "abc", "date": "2026-12-01",
              "passes": 2, "repeats": 3,
              "rows": [{"suite": "fit", "phase": "step", "ms": {"glibc": {"reference": 2.0, "torch": 1.0},
                                                                 "pinned": {"reference": 1.0, "torch": 1.0}},
                        "torch_speedup": {"glibc": 2.0, "pinned": 1.0},
                        "pinned_over_glibc": {"reference": 0.5, "torch": 1.0}}]}
    sec = report.Builder({}, [], tmp_path / "fig", malloc=malloc).speed()
    assert not sec.findings and len(sec.details) == 1
    assert "torch vs reference goes from 2.00x to 1.00x" in sec.details[0]
    assert sec.tables and sec.to_json("")["details"] == sec.details


def test_memory_findings_pair_each_backend_with_the_reference_of_its_run_and_phase():
    """The memory half of the speed tables: per phase, each default backend's peak against the
    reference's of the same run at the default size; variants and other runs left out."""
    def row(provider, phase, mb, run="r1", size="default"):
        return {"provider": provider, "phase": phase, "peak_mb": mb, "run_id": run, "size": size,
                "device_type": "cuda"}

    rows = [row("reference", "forward", 100.0), row("triton", "forward", 50.0), row("triton+fused", "forward", 1.0),
            row("cuda", "forward", 80.0, run="r2"), row("reference", "forward+backward", 200.0),
            row("torch", "forward+backward", 300.0), row("torch", "forward", 9.0, size="large")]
    (text,) = report.Builder._memory_findings("GPU Y", "layer", rows)
    assert text == ("On GPU Y, suite layer, peak memory per call above the allocation before the step at the "
                    "default size: forward: reference 100 MiB, triton 50 MiB (0.50x); forward+backward: reference "
                    "200 MiB, torch 300 MiB (1.50x).")


def test_ablation_findings_over_a_learning_rate_sweep(tmp_path):
    """A study that sweeps rates: each setting counts at its best rate (named), and one sentence
    gives the best setting at each rate and whether the winner changes with it."""
    psnr = {("paper", 1e-4): 25.9, ("paper", 1e-3): 28.1, ("pytorch", 1e-4): 27.0, ("pytorch", 1e-3): 27.6,
            ("xavier", 1e-4): 22.9, ("xavier", 1e-3): 26.1, ("normal", 1e-4): 20.0, ("normal", 1e-3): 19.0}
    rows = [{"study": "first-init", "value": v, "method": "siren", "lr": lr, "psnr": p + 10, "psnr_heldout": p}
            for (v, lr), p in psnr.items()]
    _write(tmp_path, "ablate-first-init-quick.json", "ablate", rows)
    results, _ = report.load_results(tmp_path)
    (tmp_path / "fig").mkdir()
    found = report.Builder(results, [], tmp_path / "fig").ablate().findings
    assert ("Ablation first-init, held-out PSNR (dB), each setting at the learning rate that maximises its held-out "
            "PSNR: the best setting (value "
            "paper, at lr 0.001) reaches 28.10 dB and the worst (value normal, at lr 0.0001) 20.00 dB, a spread of "
            "8.10 dB over 4 settings.") in found
    assert ("Ablation first-init, held-out PSNR (dB): the best setting at each learning rate (with those within 0.05 "
            "dB of it): lr 0.0001: pytorch (27.00 dB); lr 0.001: paper (28.10 dB); which setting wins depends on the "
            "rate.") in found
    # never split into one group per rate (normal's best rate differs from the others')
    assert not any(re.search(r"Ablation first-init \([^)]*lr", f) for f in found), found
    assert any("PSNR (dB), each setting at the learning rate that maximises its PSNR: the best setting (value paper, "
               "at lr 0.001) reaches "
               "38.10 dB (held-out PSNR 28.10 dB) and the worst (value normal, at lr 0.0001) 30.00 dB" in f
               for f in found), found
    # the Discussion's readings: a memorising case, and a winner that changes with the rate
    rows.append({"study": "first-init", "value": "xavier", "method": "siren", "lr": 1e-2, "psnr": 80.0,
                 "psnr_heldout": 10.5})
    readings = report.Builder._ablation_readings("first-init", rows, "psnr")
    assert readings == [
        "Ablation first-init: the case that fits the training pixels best (xavier at lr 0.01, 80.00 dB) scores "
        "10.50 dB between them, 17.60 dB below the best case there (paper at lr 0.001, 28.10 dB): a fit of the "
        "given pixels and a representation of the image between them rank the settings differently, so a setting "
        "chosen on its training PSNR can be one that memorises.",
        "Ablation first-init: the best case between the pixels changes with the learning rate (lr 0.0001: pytorch, "
        "27.00 dB; lr 0.001: paper, 28.10 dB; lr 0.01: xavier, 10.50 dB; cases within 0.05 dB of a rate's best count "
        "as best): an ablation at one rate ranks the settings partly by how well each suits that rate."]
    assert report.Builder._ablation_readings("first-init", [r for r in rows if r["lr"] == 1e-3], "psnr") == []
    # a tie (within 0.05 dB) is no change of winner: pytorch is among the best at both rates
    tied = [dict(r, psnr_heldout=28.08) if (r["value"], r["lr"]) == ("pytorch", 1e-3) else r for r in rows
            if r["lr"] != 1e-2]
    assert not any("changes with" in x for x in report.Builder._ablation_readings("first-init", tied, "psnr"))
    assert any("lr 0.001: paper or pytorch (28.10 dB); one setting is among the best at every rate where a case "
               "learned." in f
               for f in report.Builder._ablation_findings("first-init", tied, "psnr_heldout"))


def test_ablation_names_no_winner_among_cases_that_learned_nothing(tmp_path):
    """At a rate where every case diverged (within LEARNED_DB of the constant image the results file
    records), no best setting is named, the winner is not said to change there, and a method whose
    best rate is such a run is no learning-rate edge."""
    psnr = {("paper", 1e-4): 25.9, ("paper", 1e-3): 28.1, ("paper", 1e-2): 10.9,
            ("xavier", 1e-4): 5.0, ("xavier", 1e-3): 5.8, ("xavier", 1e-2): 11.0}
    rows = [{"study": "first-init", "value": v, "method": "siren", "lr": lr, "psnr": p + 10, "psnr_heldout": p}
            for (v, lr), p in psnr.items()]
    _write(tmp_path, "ablate-first-init-quick.json", "ablate", rows, constant_psnr=20.0,
           constant_psnr_heldout=10.5)
    results, _ = report.load_results(tmp_path)
    (tmp_path / "fig").mkdir()
    found = report.Builder(results, [], tmp_path / "fig").ablate().findings
    assert any(f.startswith("Ablation first-init: the constant image at the target's mean scores 20.00 dB on the "
                            "training pixels and 10.50 dB between them; a case less than 3 dB above it") for f in found)
    assert ("Ablation first-init, held-out PSNR (dB): the best setting at each learning rate (with those within 0.05 "
            "dB of it): lr 0.0001: paper (25.90 dB); lr 0.001: paper (28.10 dB); at lr 0.01 no case learned between "
            "the pixels (all below 13.50 dB); one setting is among the best at every rate where a case learned.") \
        in found, found
    assert any("the worst (value xavier, at lr 0.01; it learned nothing between the pixels at any rate) 11.00 dB" in f
               for f in found)
    assert not any("edge of the sweep" in f and "xavier" in f for f in found), found
    changes = [r for r in report.Builder._ablation_readings("first-init", rows, "psnr") if "changes with" in r]
    assert changes and "lr 0.01: xavier" in changes[0]  # without the floor, the diverged rate's "winner" counts
    assert not any("changes with" in r for r in report.Builder._ablation_readings("first-init", rows, "psnr",
                                                                                  {"psnr_heldout": 13.5}))


def test_lr_edges_skip_a_method_no_rate_moves():
    """A ReLU network on Laplacian supervision scores the same at every rate: its best rate is no
    edge of the sweep (the first of equals would have said 'the smallest')."""
    rows = [{"method": "relu", "lr": lr, "psnr": 13.3} for lr in (1e-4, 1e-3, 1e-2)]
    assert report.Builder._lr_edges(rows, "psnr", []) == []
    rows[0]["psnr"] = 14.0
    (edge,) = report.Builder._lr_edges(rows, "psnr", [])
    assert "is the smallest of the rates swept" in edge and "relu on all" in edge


def test_ablation_keeps_its_findings_when_the_task_figure_stands_in(tmp_path):
    """Where the ablation task published its own figure, the report draws no second curve of
    the study, but keeps every finding; without it, the report draws its own."""
    rows = [{"study": "omega0", "value": v, "layer": "first", "psnr": 30.0 + v / 10, "psnr_heldout": 25.0 - v / 100,
             "method": "siren"} for v in (10, 30, 100)]
    _write(tmp_path, "ablate-omega0-quick.json", "ablate", rows)
    results, _ = report.load_results(tmp_path)
    figs = tmp_path / "fig"
    figs.mkdir()
    (figs / "ablate-omega0-quick.png").write_bytes(b"")
    sec = report.Builder(results, [], figs).ablate()
    assert any("held-out PSNR" in f for f in sec.findings) and not list(figs.glob("report-ablate*.png"))
    (figs / "ablate-omega0-quick.png").unlink()
    again = report.Builder(results, [], figs).ablate()
    assert again.findings == sec.findings and [p.name for p in figs.glob("report-ablate*.png")] == [
        "report-ablate-omega0.png"]


def test_settings_become_a_table_with_their_meaning(tmp_path):
    """A results file's settings dict is a table of setting, value and meaning (the task's own
    option help, or the report's words for a setting without an option), not a key dump."""
    _write(tmp_path, "vfi-quick.json", "vfi", [{"method": "blend", "video": "bikes", "gap": 1, "ie": 5.0}],
           settings={"size": 32, "blur": 2.0, "video": "bikes", "out": "x.json"})
    (res,) = report.load_results(tmp_path)[0]["vfi"]
    (tab,) = report.settings_table(res)
    cells = [[c["t"] for c in row] for row in tab["rows"]]
    assert cells == [["size", "32", "long side of the processed frames in pixels"],
                     ["blur", "2", report.SETTING_WORDS["vfi", "blur"]]]
    assert "settings:" not in report.describe(res, report.SETTINGS_TABLE_KEYS) and "settings:" in report.describe(res)


def test_the_dev_table_names_the_row_the_evaluation_uses(tmp_path):
    """The VFI dev table says which of its variants is the evaluation table's siren (from the
    evaluation's fits and the dev run's weight), and its note names what a cell pools."""
    from fastsiren.tasks.vfi import weighted_label

    rows = [{"method": m, "video": v, "frame": f, "gap": 1, "ie": 5.0} for m in ("blend", "siren")
            for v in ("bikes", "carphone") for f in (3, 9)]
    _write(tmp_path, "vfi-quick.json", "vfi", rows, settings={"fits": 3})
    chosen = weighted_label(3, 2.0)
    dev_rows = [dict(r, method=m) for r in rows[:4] for m in ("blend", chosen, weighted_label(2, 2.0))]
    _write(tmp_path, "vfi-dev-quick.json", "vfi", dev_rows, dev_frames={"bikes": [3, 9]}, shrink_sigma=2.0)
    results, _ = report.load_results(tmp_path)
    sec = report.Builder(results, [], tmp_path / "fig").vfi()
    (dev,) = [t for t in sec.tables if "dev subset" in t["caption"]]
    assert f"The evaluation table's siren is the row '{chosen}' (3 fits, as its settings say)." in dev["notes"]
    assert any("one per frame" in n for n in dev["notes"])
    # the occlusion dev run's table says which sharpness the evaluation used
    _write(tmp_path, "vfi-quick.json", "vfi", rows, settings={"fits": 3, "occlusion": 0.0})
    occ_rows = [dict(r, method=m) for r in rows[:4] for m in ("blend", "tvl1, occlusion 0", "tvl1, occlusion 4")]
    _write(tmp_path, "vfi-dev-occlusion-quick.json", "vfi", occ_rows, dev_frames={"bikes": [3, 9]},
           occlusion_values=[0.0, 4.0])
    results, _ = report.load_results(tmp_path)
    sec = report.Builder(results, [], tmp_path / "fig").vfi()
    notes = [n for t in sec.tables if "dev subset" in t["caption"] for n in t["notes"]]
    assert ("The evaluation table's flow methods use occlusion sharpness 0 (as its settings say; 0 is the plain "
            "average of the two warps).") in notes
    # and the flow dev run's, which settings of each flow method
    _write(tmp_path, "vfi-quick.json", "vfi", rows, settings={"fits": 3, "occlusion": 0.0, "blur": 4.0,
                                                                "smooth": 0.01, "tvl1_attachment": 15.0})
    flow_rows = [dict(r, method=m) for r in rows[:4] for m in ("blend", "tvl1, attachment 15")]
    _write(tmp_path, "vfi-dev-flow-quick.json", "vfi", flow_rows, dev_frames={"bikes": [3, 9]},
           flow_grid={"blur": [4.0], "smooth": [0.01], "tvl1_attachment": [15.0]})
    results, _ = report.load_results(tmp_path)
    sec = report.Builder(results, [], tmp_path / "fig").vfi()
    notes = [n for t in sec.tables if "dev subset" in t["caption"] for n in t["notes"]]
    assert ("The evaluation table's motion SIREN uses blur 4 and smooth 0.01, its TV-L1 attachment 15 (as its "
            "settings say).") in notes


def test_gpu_target_findings_pair_one_size_and_never_round_onto_a_target(tmp_path):
    """The GPU target findings use the default size only (a large-size row would pair a
    reference+compile time with another size's), and a missed target is never printed as
    reached ("1.996x", not "2.00x (missed)")."""
    def row(provider, ms, size="default", speedup=None, floor=0.9):
        return {"device": "GPU Y", "device_type": "cuda", "suite": "render", "phase": "infer", "size": size,
                "provider": provider, "median_ms": ms, "speedup": speedup if speedup is not None else 100.0 / ms,
                **({"floor_frac": floor} if floor is not None else {}), "status": "ok", "run_id": "r" + size,
                "commit": "abc",
                "date": "2026-12-01", "reference_infer_graph": True, "_file": "render.csv"}

    bench = [row("reference", 100.0, speedup=1.0, floor=0.5), row("reference+compile", 60.0),
             row("triton", 100.0 / 2.996, floor=0.4998), row("cuda", 80.0, floor=None),  # an empty floor cell
             row("reference", 1000.0, "large", 1.0), row("reference+compile", 900.0, "large"),
             row("triton", 10.0, "large")]
    sec = report.Builder({}, bench, tmp_path / "fig").speed()
    (text,) = [f for f in sec.findings if "against the targets of" in f]
    assert "triton 2.996x (missed) at floor fraction 0.499 (missed); cuda 1.25x (missed) (floor not measured)" in text
    assert "against reference+compile, whose forward records no graph: triton 1.80x, cuda 0.75x" in text


def test_a_dirty_commit_keeps_its_mark():
    assert report._commit({"commit": "651d97905e7a50b9c1d2e3f4a5b6c7d8e9f0a1b2-dirty"}) == "651d97905e-dirty"
    assert report._commit({"commit": "651d97905e7a50b9c1d2e3f4a5b6c7d8e9f0a1b2"}) == "651d97905e"


def test_runs_that_shared_the_machine_are_named_in_sources_and_limits(tmp_path):
    """Two results files of one device whose runs overlapped (end date less seconds) name each
    other in their tables' sources and in one limit; another device's run or a run before does not."""
    def write(name, task, date, seconds, device="cpu"):
        doc = {"task": task, "profile": "cpu", "device": device, "backend": "torch", "commit": "abc",
               "date": date, "seconds": seconds, "rows": [{"method": "siren", "psnr": 30.0}]}
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))

    write("fit-cpu", "fit", "2026-12-06T11:30:00+00:00", 1800)           # 11:00-11:30
    write("sr-cpu", "sr", "2026-12-06T12:00:00+00:00", 3600)             # 11:00-12:00, 30 min with fit
    write("compare-cpu", "compare", "2026-12-06T10:59:00+00:00", 600)   # before both
    write("poisson-cpu", "poisson", "2026-12-06T11:30:00+00:00", 1800, device="gpu")
    results, _ = report.load_results(tmp_path)
    by_name = {r.path.name: r for rs in results.values() for r in rs}
    assert by_name["fit-cpu.json"].alongside == (("sr-cpu.json", 30.0),)
    assert by_name["sr-cpu.json"].alongside == (("fit-cpu.json", 30.0),)
    assert by_name["compare-cpu.json"].alongside == by_name["poisson-cpu.json"].alongside == ()
    assert by_name["fit-cpu.json"].source().endswith(
        "file fit-cpu.json; it shared the machine with sr-cpu.json for 30 of its 30 minutes (overlapping runs by "
        "their end times and durations), so its seconds are slower than a run alone")
    assert "shared" not in by_name["compare-cpu.json"].source()
    b = report.Builder(results, [], tmp_path)
    assert [lim for lim in b.limits if lim.startswith("Task timings: 2 of the 4 results files")]


def test_a_bench_table_of_two_days_says_so_and_gives_rounds_and_dtype():
    def row(size, commit, date, provider="torch", peak=1.0):
        return {"suite": "render", "size": size, "provider": provider, "median_ms": 1.0, "_file": "render.csv",
                "commit": commit, "date": date, "run_id": commit + size, "device_type": "cpu", "rounds": 10,
                "dtype": "float32", "peak_mb": peak}

    t = report.Builder._bench_table("cpu", "render", 1, [row("default", "bbb", "2026-12-06T02:00"),
                                                         row("large", "aaa", "2026-12-04T02:00"),
                                                         row("large", "aaa", "2026-12-04T02:00", "torch+compile",
                                                             None)], [])
    assert "; float32; median of 10 interleaved timed rounds; commit" in t["source"], t["source"]
    notes = " ".join(t["notes"])
    assert ("Rows of 2 commits or days (size default from commit bbb of 2026-12-06; size large from commit aaa of "
            "2026-12-04): each ratio pairs rows of one run, and CPU speed moved between dates") in notes, notes
    assert "Peak MiB \u2013: not measured" in notes
    said: set[str] = set()  # the long notes in full in the first table, named in the next
    rows = [row("default", "bbb", "2026-12-06T02:00"), row("default", "bbb", "2026-12-06T02:00", "torch+compile", None)]
    first, second = (" ".join(report.Builder._bench_table("cpu", "render", 1, rows, [], ["torch", "reference"],
                                                          said=said)["notes"]) for _ in range(2))
    assert "inductor kernels allocate" in first and "No row here for reference: providers that other" in first
    assert "inductor" not in second and "as in the first CPU table" in second
    assert "No row here for reference: not in this device's run" in second
    same_day = report.Builder._bench_table("cpu", "render", 1, [row("default", "bbb", "2026-12-06T02:00"),
                                                                row("large", "bbb", "2026-12-06T05:00")], [])
    assert "Rows of" not in " ".join(same_day["notes"])  # one commit, one day: runs of one machine state
    found = report.Builder._speed_findings("cpu", "poisson-grad", [
        dict(row("default", "bbb", "2026-12-06T02:00"), speedup=1.4996),
        dict(row("large", "aaa", "2026-12-04T02:00"), speedup=1.2)], "speedup")[0]
    assert "1.499x the reference" in found and "at size default, commit bbb of 2026-12-06" in found, found
    assert "These cases come from 2 commits or days" in found


def test_small_text_helpers_of_the_report():
    assert report._mean_seconds([0.0, 0.0, 0.001, 0.0]) == "< 0.001"
    assert report._mean_seconds([1.2, 1.3]) == "1.25"
    assert report._bytes_text("1073741824") == "1 GiB" and report._bytes_text(3 * 2**20) == "3 MiB"
    assert report._bytes_text(1000) == "1,000 bytes" and report._bytes_text("x") == "x"
    rule = report.cpu_block_rule()  # the Method section's block sizes follow the code's rule
    import torch

    from fastsiren import jet
    for width, points in ((rule["narrow"], rule["narrow_points"]), (rule["from"], rule["rows"]),
                          (2 * rule["from"], rule["rows"])):
        assert jet._point_blocks(1 << 20, torch.device("cpu"), 1, width)[0].stop == points
    assert rule["rows"] * rule["from"] == 2 ** rule["log2"]


def test_figures_are_placed_at_the_width_they_were_drawn_for(tmp_path):
    """A PNG drawn W inches wide is placed W inches wide (its fonts print at their own size), at
    most the text width; a file that is not a PNG keeps the asked width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b = report.Builder({}, [], tmp_path)
    for inches in (3.0, 12.0):
        fig = plt.figure(figsize=(inches, 2))
        path = tmp_path / f"w{inches:g}.png"
        fig.savefig(path, dpi=report.FIGURE_DPI)
        plt.close(fig)
        assert report.png_width_in(path) == pytest.approx(inches)
        assert b._fig(path, "c")["width"] == pytest.approx(min(1.0, inches / report.TEXT_WIDTH_IN))
    fig = plt.figure(figsize=(4.0, 2))  # another dpi: its pHYs chunk says which
    fig.savefig(tmp_path / "d.png", dpi=110)
    plt.close(fig)
    assert report.png_width_in(tmp_path / "d.png") == pytest.approx(4.0, rel=1e-3)
    (tmp_path / "x.png").write_text("not a png")
    assert report.png_width_in(tmp_path / "x.png") is None and b._fig(tmp_path / "x.png", "c", 0.7)["width"] == 0.7


def test_a_dev_choice_is_weighed_against_the_lowest_row_and_the_grid_edges(tmp_path):
    def rows(method, ies):
        return [{"method": method, "ie": v, "frame": i} for i, v in enumerate(ies)]

    doc = {"task": "vfi", "flow_grid": {"blur": [0.0, 1.0, 2.0], "smooth": [0.001, 0.003],
                                        "tvl1_attachment": [5.0, 15.0, 45.0]},
           "rows": rows("siren-flow, blur 2, smooth 0.003", [10.0, 10.01]) + rows("siren-flow, blur 1, smooth 0.003",
                                                                                   [10.0, 10.0])
           + rows("tvl1, attachment 15", [11.0, 11.0]) + rows("tvl1, attachment 5", [12.0, 12.0])}
    dev = report.Result(tmp_path / "vfi-dev-flow-cpu.json", doc, "vfi-dev-flow")
    level = report.Builder._dev_choice(dev, "siren-flow", "siren-flow, blur 2, smooth 0.003", "blur and smooth")
    assert level == (" Over its 2 triplets, siren-flow, blur 2, smooth 0.003 has mean IE 10.005; the lowest, "
                     "siren-flow, blur 1, smooth 0.003, has 10.000: level (within 0.1%), so the profile keeps its "
                     "value (blur 2 is at the upper edge of this run's grid (0, 1, 2))."), level
    doc["rows"][1]["ie"] = 11.0
    assert "lower by more than the level margin" in report.Builder._dev_choice(
        dev, "siren-flow", "siren-flow, blur 2, smooth 0.003", "blur and smooth")
    best = report.Builder._dev_choice(dev, "tvl1", "tvl1, attachment 15", "attachment")
    assert best == " Over its 2 triplets, tvl1, attachment 15 has mean IE 11.000, the lowest of the 2 tvl1 settings.", \
        best  # 15 is inside the grid (5, 15, 45): no edge
    assert report.Builder._dev_choice(dev, "tvl1", "tvl1, attachment 99", "attachment") == ""


def test_unreadable_inputs_are_left_out_and_said(tmp_path, capsys):
    """A CSV that is not readable or not the harness's, and a figure that is not a PNG, are left
    out (listed as not used, and on stderr) instead of stopping the build with an unnamed
    error; --figures that is a file is refused by name."""
    from fastsiren import cli

    res, bench, figs = tmp_path / "res", tmp_path / "bench", tmp_path / "figs"
    for d in (res, bench, figs):
        d.mkdir()
    (bench / "layer.csv").write_text("a,b\n1,2\n")
    (bench / "x.csv").write_bytes(bytes(range(128, 256)))
    (figs / "fit-quick-bad.png").write_text("not a png")
    skipped: list[str] = []
    assert report.load_bench(bench, skipped) == []
    assert skipped == ["layer.csv: not a benchmark results file (no column suite, provider, median_ms)", skipped[1]]
    assert skipped[1].startswith("x.csv: not a readable CSV")
    out = tmp_path / "r.pdf"
    assert cli.main(["report", "--results", str(res), "--bench", str(bench), "--figures", str(figs),
                     "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "report: not used: layer.csv" in err and "report: not used: x.csv" in err, err
    (tmp_path / "file").write_text("x")
    assert cli.main(["report", "--results", str(res), "--bench", str(bench), "--figures", str(tmp_path / "file"),
                     "--out", str(out)]) == 2
    assert "--figures" in capsys.readouterr().err
    b = report.Builder({}, [], figs)
    assert b._task_figures("fit") == [] and b.skipped == ["fit-quick-bad.png: not a readable PNG"]


def test_mutation_checks_one_table_per_measured_target(tmp_path):
    """verify(): a table per target with a results file (in the engine's target order), a
    finding naming each target without one, and nothing at all without any file."""
    def doc(rows):
        return {"commit": "abc", "tier": "t", "rows": [{"name": n, "what": n, "caught": c} for n, c in rows]}

    assert report.Builder({}, [], tmp_path).verify().tables == []
    assert report.Builder({}, [], tmp_path, mutations={"cuda": None, "torch": {"rows": []}}).verify().findings == []
    sec = report.Builder({}, [], tmp_path, mutations={"torch": doc([("a", True), ("b", False)]),
                                                       "triton": doc([("c", True)])}).verify()
    assert [t["caption"].split(" and ")[0] for t in sec.tables] == [
        "Mutants of the Triton kernels", "Mutants of the torch backend's CPU jets"]
    assert [t["source"] for t in sec.tables] == ["t; commit abc; file triton-mutations.json",
                                                 "t; commit abc; file torch-mutations.json"]
    assert sec.findings[0].startswith("Not measured: no mutation check of the CUDA sources (no cuda-mutations.json")
    assert "The torch backend's float64 tests detected 1 of 2 mutants of the torch backend's CPU jets." in sec.findings
    assert sec.findings[-1] == "Missed (torch): b, b."
    assert [[c["t"] for c in r] for r in sec.tables[1]["rows"]] == [["a", "a", "caught", ""], ["b", "b", "missed", ""]]


def test_a_cpu_bench_table_does_not_list_gpu_providers_as_absent(tmp_path):
    """A provider only another device's run timed is named as absent in this device's table,
    but not on a CPU one that needs a GPU (triton, cuda, +3xtf32): a CPU run never has their rows."""
    def row(dev, kind, provider):
        return {"device": dev, "device_type": kind, "suite": "render", "phase": "infer", "size": "default",
                "provider": provider, "median_ms": 1.0, "speedup": 1.0, "status": "ok", "run_id": dev,
                "commit": "abc", "date": "2026-12-01", "_file": "render.csv", "threads": 1 if kind == "cpu" else None}

    bench = [row("CPU X", "cpu", "reference"), row("CPU X", "cpu", "torch"),
             *(row("GPU Y", "cuda", p) for p in ("reference", "torch", "triton", "cuda+fused", "torch+3xtf32",
                                                 "reference+compile"))]
    tables = {t["caption"].split(" on ")[1].split(",")[0].split(":")[0]: " ".join(t["notes"])
              for t in report.Builder({}, bench, tmp_path / "fig").speed().tables if "Benchmark suite" in t["caption"]}
    assert "No row here for reference+compile:" in tables["CPU X"], tables
    assert "No row here" not in tables["GPU Y"] and "triton" not in tables["CPU X"], tables
