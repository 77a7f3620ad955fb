"""The paper-experiment tasks (poisson, compare, ablate) on the quick profile, the Poisson
handling of what a supervision cannot see, and bad inputs failing before any training."""

import json

import numpy as np
import pytest
import torch
from conftest import backend_params

from fastsiren import cli, data
from fastsiren.tasks import ablate, common, compare, poisson


class _Fixed:
    """A stand-in network whose render is a fixed image (H, W, 1)."""

    def __init__(self, img: torch.Tensor) -> None:
        self.img = img

    def render(self, shape, order=0):
        assert tuple(shape) == tuple(self.img.shape[:2]) and order == 0
        return self.img


def _image(n=16):
    return torch.from_numpy(data.load_image("camera", size=n, gray=True))


def _forbid_training(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("training started before the bad input was reported")

    monkeypatch.setattr(common, "train", fail)


# ---------------------------------------------------------------- what the supervision cannot see

def test_harmonic_basis_has_zero_laplacian():
    # the 5-point stencil is exact for polynomials of degree <= 3, so every column of the
    # degree-3 basis must have zero discrete Laplacian in the interior
    b = poisson.harmonic_basis((9, 11), 3).reshape(9, 11, -1)
    assert b.shape[-1] == 7
    h0, h1 = 2 / 9, 2 / 11  # grid spacing along each axis
    lap = ((b[2:, 1:-1] + b[:-2, 1:-1] - 2 * b[1:-1, 1:-1]) / h0 ** 2
           + (b[1:-1, 2:] + b[1:-1, :-2] - 2 * b[1:-1, 1:-1]) / h1 ** 2)
    np.testing.assert_allclose(lap, 0, atol=1e-9)


def test_remove_unseen_hand_made():
    gt = _image(16).double()
    xy = data.grid((16, 16), dtype=torch.float64).reshape(16, 16, 2)
    plane = 0.2 - 0.3 * xy[..., :1] + 0.1 * xy[..., 1:]
    saddle = 0.25 * (xy[..., :1] ** 2 - xy[..., 1:] ** 2)
    # a constant offset is exactly what gradient supervision cannot see
    np.testing.assert_allclose(poisson.remove_unseen(gt + 0.37, gt, 0), gt.numpy(), atol=1e-12)
    # a plane is removed by degree 1 but not by a constant alone
    np.testing.assert_allclose(poisson.remove_unseen(gt + plane, gt, 1), gt.numpy(), atol=1e-12)
    assert np.abs(poisson.remove_unseen(gt + plane, gt, 0) - gt.numpy()).max() > 0.1
    # x0^2 - x1^2 is harmonic of degree 2: degree 1 leaves it, degree 2 removes it
    assert np.abs(poisson.remove_unseen(gt + saddle, gt, 1) - gt.numpy()).max() > 0.05
    np.testing.assert_allclose(poisson.remove_unseen(gt + saddle, gt, 2), gt.numpy(), atol=1e-12)
    # None removes nothing
    np.testing.assert_allclose(poisson.remove_unseen(gt + 0.37, gt, None), gt.numpy() + 0.37, atol=1e-6)


def test_problem_psnr_removes_exactly_the_unseen_part():
    gt = _image(16)
    xy = data.grid((16, 16)).reshape(16, 16, 2)
    noise = 0.01 * torch.randn(16, 16, 1)
    raw = poisson.Problem(gt, "value").evaluate(_Fixed(gt + noise))["psnr"]
    grad = poisson.Problem(gt, "grad")
    lap = poisson.Problem(gt, "laplacian", harmonic_degree=2)
    # offset removed for gradients: same PSNR as the noise alone (the noise's mean is refitted too)
    assert grad.evaluate(_Fixed(gt + noise + 0.5))["psnr"] == pytest.approx(raw, abs=0.2)
    # a plane offset is not invisible to the gradient: the PSNR must drop
    assert grad.evaluate(_Fixed(gt + noise + 0.3 * xy[..., :1]))["psnr"] < raw - 10
    # for the Laplacian a plane is removed, the harmonic saddle only by psnr_harmonic
    res = lap.evaluate(_Fixed(gt + noise + 0.3 * xy[..., :1] + 0.2 * xy[..., 1:2] * xy[..., :1]))
    assert res["psnr_harmonic"] == pytest.approx(raw, abs=0.3)
    assert res["psnr"] < raw - 10
    assert lap.evaluate(_Fixed(gt + noise - 0.4 + 0.3 * xy[..., 1:]))["psnr"] == pytest.approx(raw, abs=0.3)


# ---------------------------------------------------------------- the tasks, quick profile

def test_poisson_quick_grad(tmp_path):
    res = poisson.run(poisson.PoissonConfig(supervision="grad", profile="quick", out=str(tmp_path / "g"),
                                            progress=False))
    for name in ("metrics.json", "config.json", "psnr.png", "ground_truth.png", "poisson-grad-siren.png",
                 "reconstruction-siren.png", "model-siren.pt", "checkpoint-siren.pt"):
        assert (tmp_path / "g" / name).exists(), name
    assert json.loads((tmp_path / "g" / "metrics.json").read_text())["rows"] == res["rows"]
    (row,) = res["rows"]
    assert row["method"] == "siren" and row["supervision"] == "grad" and res["backend"] == "torch"
    # the offset fit can only help, and the run learns something at the image's own scale
    assert row["psnr"] >= row["psnr_raw"] and 12 < row["psnr"] < 60
    hist = res["histories"]["siren"]
    assert hist[-1]["loss"] < 0.5 * hist[0]["loss"]


def test_poisson_quick_laplacian_siren_learns_relu_cannot(tmp_path):
    res = poisson.run(poisson.PoissonConfig(supervision="laplacian", profile="quick", out=str(tmp_path / "l"),
                                            progress=False))
    rows = {r["method"]: r for r in res["rows"]}
    assert set(rows) == {"siren", "relu"} and "plane" in res["removed"]
    assert (tmp_path / "l" / "poisson-laplacian-relu.png").exists()
    for r in rows.values():
        assert r["psnr_harmonic"] >= r["psnr"] >= r["psnr_raw"] - 1e-9
    siren, relu = res["histories"]["siren"], res["histories"]["relu"]
    assert siren[-1]["loss"] < 0.5 * siren[0]["loss"]
    # a ReLU network's Laplacian is 0: the loss cannot move
    assert relu[-1]["loss"] == pytest.approx(relu[0]["loss"], rel=1e-6)


def test_poisson_baselines_sweep_learning_rates(tmp_path, capsys):
    """Each baseline trains at every rate of --baseline-lrs, SIREN at --lr; best_lr marks each
    method's best final PSNR, whose network is model-METHOD.pt (load_model scores it again)."""
    out = tmp_path / "p"
    assert cli.main(["poisson", "--supervision", "grad", "--profile", "quick", "--size", "16", "--steps", "8",
                     "--hidden", "16", "--baselines", "tanh", "--baseline-lrs", "1e-4,1e-2", "--out", str(out),
                     "--no-progress"]) == 0
    rows = common.read_json(out / "metrics.json")["rows"]
    assert [(r["method"], r["lr"]) for r in rows] == [("siren", 1e-3), ("tanh", 1e-4), ("tanh", 1e-2)]
    tanh = [r for r in rows if r["method"] == "tanh"]
    assert tanh[0]["psnr"] != tanh[1]["psnr"] and rows[0]["best_lr"]
    best = max(tanh, key=lambda r: r["psnr"])
    assert [r["best_lr"] for r in tanh] == [r is best for r in tanh]
    assert sorted(p.name for p in out.glob("checkpoint-tanh-*.pt")) == ["checkpoint-tanh-lr0.0001.pt",
                                                                        "checkpoint-tanh-lr0.01.pt"]
    from fastsiren.tasks.fit import load_model

    problem = poisson.Problem(poisson.fit.load_target("camera", 16, True), "grad")
    assert problem.final(load_model(out, "cpu", method="tanh"))["psnr"] == pytest.approx(best["psnr"], abs=1e-3)
    assert "tanh (lr 0.01)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="more than once"):
        poisson.resolve(poisson.PoissonConfig(supervision="grad", profile="quick", baseline_lrs=(1e-3, 1e-3)))
    with pytest.raises(ValueError, match="baseline_lrs entry"):
        poisson.resolve(poisson.PoissonConfig(supervision="grad", profile="quick", baseline_lrs=(0.0,)))


def test_compare_quick_siren_beats_baselines(tmp_path):
    res = compare.run(compare.CompareConfig(profile="quick", out=str(tmp_path / "c"), progress=False))
    for name in ("compare-fit.png", "compare-poisson-grad.png", "compare-fit-images.png", "metrics.json"):
        assert (tmp_path / "c" / name).exists(), name
    rows = res["rows"]
    assert {(r["task"], r["method"]) for r in rows} == {(t, m) for t in compare.PROBLEMS for m in compare.METHODS}
    siren_params = next(r["params"] for r in rows if r["method"] == "siren")
    assert all(abs(r["params"] - siren_params) <= 0.01 * siren_params for r in rows)
    fit = {r["method"]: r["psnr"] for r in rows if r["task"] == "fit" and r["best_lr"]}
    assert fit["siren"] > 25
    for m in ("relu", "relu-pe", "tanh"):
        assert fit["siren"] > fit[m] + 5, (m, fit)
    # image fitting is scored between the pixels too; the Poisson problem is not
    assert all(5 < r["psnr_heldout"] < r["psnr"] + 5 for r in rows if r["task"] == "fit")
    assert not any("psnr_heldout" in r for r in rows if r["task"] != "fit")


def test_ablate_quick_studies(tmp_path):
    res = ablate.run(ablate.AblateConfig(study="omega0", profile="quick", out=str(tmp_path / "o"), progress=False))
    rows = res["rows"]
    assert [(r["layer"], r["value"]) for r in rows] == [("first", 3.0), ("first", 30.0),
                                                        ("hidden", 3.0), ("hidden", 30.0)]
    # (30, 30) is the same run in both sweeps, trained once
    assert rows[1]["psnr"] == rows[3]["psnr"] and len(res["histories"]) == 3
    assert (tmp_path / "o" / "ablate-omega0.png").exists()
    # --resume of the same study (its omegas a tuple, saved as a JSON list) is the same config
    again = ablate.run(ablate.AblateConfig(study="omega0", profile="quick", out=str(tmp_path / "o"), progress=False,
                                           resume=True))
    assert [r["psnr"] for r in again["rows"]] == [r["psnr"] for r in rows]
    res = ablate.run(ablate.AblateConfig(study="first-init", profile="quick", out=str(tmp_path / "f"),
                                         progress=False))
    assert [r["value"] for r in res["rows"]] == list(ablate.FIRST_SCHEMES)
    assert all(np.isfinite(r["psnr"]) and r["psnr"] > 10 and 5 < r["psnr_heldout"] < 60 for r in res["rows"])
    assert (tmp_path / "f" / "ablate-first-init-init.png").exists()
    assert len(res["init_distributions"]) == len(ablate.FIRST_SCHEMES) * 3
    # the flat image at the target's mean: every case learned more than it
    assert 0 < res["constant_psnr"] < min(r["psnr"] for r in res["rows"])
    assert 0 < res["constant_psnr_heldout"] < 30


def test_ablate_sweeps_learning_rates(tmp_path, capsys):
    """Every case at every rate of --lrs: a row each, a checkpoint each, the curves at each case's
    best held-out rate; --lr is one rate."""
    out = tmp_path / "s"
    assert cli.main(["ablate", "--study", "first-init", "--profile", "quick", "--steps", "6", "--size", "16",
                     "--hidden", "16", "--lrs", "1e-3,1e-2", "--out", str(out), "--no-progress"]) == 0
    doc = common.read_json(out / "metrics.json")
    rows = doc["rows"]
    assert [(r["value"], r["lr"]) for r in rows] == [(s, lr) for s in ablate.FIRST_SCHEMES for lr in (1e-3, 1e-2)]
    assert len({r["psnr"] for r in rows}) == len(rows)  # each rate really trained
    assert set(doc["histories"]) == {f"{s}, lr {lr:g}" for s in ablate.FIRST_SCHEMES for lr in (1e-3, 1e-2)}
    assert sorted(p.name for p in out.glob("checkpoint-paper-*.pt")) == ["checkpoint-paper-lr0.001.pt",
                                                                         "checkpoint-paper-lr0.01.pt"]
    cfg = ablate.resolve(ablate.AblateConfig(study="first-init", profile="quick", lrs=(1e-3, 1e-2)))
    best = ablate.best_rates(cfg, rows)
    for s in ablate.FIRST_SCHEMES:
        mine = [r for r in rows if r["value"] == s]
        assert best[s] == max(mine, key=lambda r: r["psnr_heldout"])["lr"]
    assert ablate.best_rates(cfg, rows[::-1]) == best  # rows are matched to cases by their fields
    with pytest.raises(ValueError, match="no row of case 'paper'"):
        ablate.best_rates(cfg, [r for r in rows if r["value"] != "paper"])
    assert "lr 0.01" in capsys.readouterr().out
    one = ablate.resolve(ablate.AblateConfig(study="omega0", profile="cpu", lr=3e-4))
    assert one.lrs == (3e-4,) and one.lr is None
    assert ablate.resolve(ablate.AblateConfig(study="omega0", profile="cpu")).lrs == (1e-4, 1e-3, 1e-2)


def test_paper_init_gives_arcsine_activations_through_depth():
    # the paper's argument: with its init every sine layer's output is arcsine-distributed on
    # [-1, 1], whose standard deviation is 1/sqrt(2)
    cfg = ablate.resolve(ablate.AblateConfig(study="hidden-init", profile="cpu"))
    common.seed_all(0)
    acts = ablate.init_activations(ablate.build_siren(cfg, {}, hidden_layers=3), data.grid((32, 32)))
    assert len(acts) == 4
    for pre, act in acts[1:]:
        assert pre.shape == act.shape == (32 * 32, 256)
        assert abs(act.std() - 2 ** -0.5) < 0.03
        assert 0.8 < pre.std() < 2.0  # unit variance from W h, plus the official omega_0-scaled bias
        assert act.std(0).mean() > 0.3  # each unit still depends on the input at depth 4
    # the figure's reference: N(0, 1 + omega_0^2 / (3 fan_in)), the bias U(+-1/sqrt(fan_in)) scaled by omega_0
    model = ablate.build_siren(cfg, {}, hidden_layers=3)
    for k, (pre, _) in enumerate(acts[1:], start=1):
        assert abs(pre.std() - ablate.predicted_pre_std(model.layers[k])) < 0.1
    common.seed_all(0)
    small = ablate.init_activations(ablate.build_siren(cfg, {"init_scale": 0.1}, hidden_layers=3),
                                    data.grid((32, 32)))
    # a 10x smaller bound: the input's signal dies with depth, units become constants
    assert small[-1][1].std(0).mean() < 0.05


# ---------------------------------------------------------------- bad inputs, before any training

@pytest.mark.parametrize("make, match", [
    (lambda o: poisson.PoissonConfig(supervision="grad", profile="quick", size=1024, out=o), "smaller than"),
    (lambda o: poisson.PoissonConfig(supervision="curl", profile="quick", out=o), "supervision='curl'"),
    (lambda o: poisson.PoissonConfig(supervision="grad", profile="quick", omega=0.0, out=o),
     "omega must be a finite number > 0"),
    (lambda o: poisson.PoissonConfig(supervision="grad", profile="quick", steps=0, out=o), "steps must be > 0"),
    (lambda o: compare.CompareConfig(profile="quick", size=600, out=o), "smaller than"),
    (lambda o: compare.CompareConfig(profile="quick", omega=-30.0, out=o), "omega must be a finite number > 0"),
    (lambda o: compare.CompareConfig(profile="quick", poisson_steps=-1, out=o), "poisson_steps must be > 0"),
    (lambda o: ablate.AblateConfig(study="depth", profile="quick", out=o), "study='depth'"),
    (lambda o: ablate.AblateConfig(study="omega0", profile="quick", omegas=(30.0, 0.0), out=o), "omega_0"),
    (lambda o: ablate.AblateConfig(study="omega0", profile="quick", omegas=(), out=o), "at least one omega_0"),
    (lambda o: ablate.AblateConfig(study="omega0", profile="quick", omegas=(30.0, 1e7), out=o),
     r"omega_0 \(omegas entry\) must be a finite number > 0 and <= 1e\+06, got 10000000.0"),  # was refused mid-sweep
    (lambda o: ablate.AblateConfig(study="first-init", profile="quick", steps=0, out=o), "steps must be > 0"),
    (lambda o: ablate.AblateConfig(study="omega0", profile="quick", size=4, out=o), "size must be >= 8"),
    (lambda o: ablate.AblateConfig(study="omega0", profile="quick", lr=1e-3, lrs=(1e-2,), out=o), "not both"),
    (lambda o: ablate.AblateConfig(study="omega0", profile="quick", lrs=(), out=o), "at least one learning rate"),
    (lambda o: ablate.AblateConfig(study="omega0", profile="quick", lr=-1.0, out=o), "lr must be > 0"),
    (lambda o: ablate.AblateConfig(study="omega0", profile="quick", lrs=(1e-3, 0.0), out=o), "lrs entry"),
    (lambda o: ablate.AblateConfig(study="omega0", profile="quick", lrs=(1e-3, 1e-3), out=o), "more than once"),
    (lambda o: ablate.AblateConfig(study="omega0", profile="quick", lrs=(1e-3, 1.0000001e-3), out=o),
     "equal to six significant digits"),
    (lambda o: compare.CompareConfig(profile="quick", size=4, out=o), "size must be >= 8"),
    (lambda o: poisson.PoissonConfig(supervision="grad", profile="quick", size=4, out=o), "size must be >= 8"),
    (lambda o: poisson.PoissonConfig(supervision="grad", profile="quick", baselines=("relu", "relu"), out=o),
     "baselines lists relu more than once"),  # was trained twice into one checkpoint file
    (lambda o: compare.CompareConfig(profile="quick", methods=("siren", "siren"), out=o),
     "methods lists siren more than once"),
    (lambda o: compare.CompareConfig(profile="quick", problems=("fit", "fit"), out=o), "problems lists fit more"),
    (lambda o: poisson.PoissonConfig(supervision="laplacian", profile="quick", size=8, harmonic_degree=4, out=o),
     "harmonic_degree=4 fits 9 harmonic polynomials, more than the 8-pixel side"),  # was a meaningless PSNR
])
def test_bad_inputs_fail_before_training(tmp_path, monkeypatch, make, match):
    _forbid_training(monkeypatch)
    cfg = make(str(tmp_path / "run"))
    task = {poisson.PoissonConfig: poisson, compare.CompareConfig: compare, ablate.AblateConfig: ablate}[type(cfg)]
    with pytest.raises(ValueError, match=match):
        task.run(cfg)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("cfg", [
    compare.CompareConfig(profile="quick", methods=("siren", "relu")),
    ablate.AblateConfig(study="omega0", profile="quick"),
])
def test_resume_matches_tuple_settings_to_the_saved_config(tmp_path, cfg):
    """Tuple settings (methods, lrs, omegas, ...) come back from config.json as lists: --resume
    must still see the same config, and still refuse a different one."""
    import dataclasses

    task = {compare.CompareConfig: compare, ablate.AblateConfig: ablate}[type(cfg)]
    cfg = task.resolve(dataclasses.replace(cfg, out=str(tmp_path / "run")))
    common.RunFolder(cfg.out, cfg)
    common.RunFolder(cfg.out, cfg, resume=True)
    changed = dataclasses.replace(cfg, lrs=(0.5,)) if hasattr(cfg, "lrs") else dataclasses.replace(cfg, omegas=(1.0,))
    with pytest.raises(ValueError, match="different config"):
        common.RunFolder(cfg.out, changed, resume=True)


def test_cli_reports_bad_names(tmp_path, capsys, monkeypatch):
    _forbid_training(monkeypatch)
    assert cli.main(["poisson", "--supervision", "curl", "--profile", "quick", "--out", str(tmp_path)]) == 2
    assert "supervision='curl'" in capsys.readouterr().err
    assert cli.main(["ablate", "--study", "width", "--profile", "quick", "--out", str(tmp_path)]) == 2
    assert "study='width'" in capsys.readouterr().err
    assert cli.main(["compare", "--lrs", "1e-3,fast", "--profile", "quick", "--out", str(tmp_path)]) == 2
    assert "--lrs" in capsys.readouterr().err
    assert cli.main(["poisson", "--supervision", "grad", "--profile", "quick", "--baselines", "", "--baseline-lrs",
                     "1e-2", "--out", str(tmp_path)]) == 2  # was ignored
    assert "--baseline-lrs sets the baselines' learning rates, but --baselines names none" in capsys.readouterr().err
    for argv, msg in ((["--study", "hidden-init", "--omegas", "5,10"], "--omegas applies to the omega0 study only"),
                      (["--study", "omega0", "--scales", "2"], "--scales applies to the hidden-init study only"),
                      (["--study", "omega0", "--probe-layers", "3"],
                       "--probe-layers applies to the first-init and hidden-init studies only")):
        assert cli.main(["ablate", *argv, "--profile", "quick", "--out", str(tmp_path / "a")]) == 2  # was ignored
        assert msg in capsys.readouterr().err


def test_network_description_reads_the_model():
    """The results files' network strings come from the model: its feature counts layer by layer
    (a baseline's matched width, the positional encoding's size), its activation and the official
    layer counting."""
    from fastsiren import build_model
    from fastsiren.tasks.fit import network_description

    siren = build_model("siren", in_features=2, out_features=3, hidden_features=24, hidden_layers=2)
    assert network_description("siren", siren) == (
        "siren: 2 -> 24 -> 24 -> 24 -> 3, sine after every layer but the last (4 linear layers; layers=2 "
        "counts the hidden-to-hidden layers after the first, as the official code does)")
    pe = build_model("relu-pe", in_features=2, out_features=1, hidden_features=128, hidden_layers=1, sidelength=32)
    text = network_description("relu-pe", pe)
    width = pe.hidden_features
    assert text.startswith(f"relu-pe: 2 (positional encoding: {pe.encoded_features()} features, x and "
                           f"sin/cos(2^k pi x) for k < {pe.num_frequencies}) -> {width} -> {width} -> 1, "
                           "ReLU after every layer but the last (3 linear layers; layers=1"), text


def test_task_backend_checks_name_then_device_then_backend(monkeypatch):
    monkeypatch.delenv("FASTSIREN_BACKEND", raising=False)
    with pytest.raises(ValueError, match="backend='nope'"):  # the name first, even with a bad device
        common.task_backend("nope", "bogus")
    with pytest.raises(ValueError, match="device='bogus'"):
        common.task_backend("torch", "bogus")
    with pytest.raises(RuntimeError, match="backend 'cuda' cannot run on cpu"):
        common.task_backend("cuda", "cpu")
    assert common.task_backend("auto", "cpu") == (torch.device("cpu"), "torch")
    monkeypatch.setenv("FASTSIREN_BACKEND", "reference")  # resolved once, at the start
    assert common.task_backend(None, "cpu") == (torch.device("cpu"), "reference")


@pytest.mark.parametrize("task", ["fit", "poisson", "compare", "ablate", "sr", "vfi"])
def test_tasks_refuse_an_unrunnable_backend_before_writing(task, tmp_path):
    from fastsiren.tasks import fit, sr, vfi

    out = tmp_path / "run"
    kw = dict(profile="quick", out=str(out), backend="cuda", device="cpu", progress=False)
    run = {"fit": lambda: fit.run(fit.FitConfig(**kw)),
           "poisson": lambda: poisson.run(poisson.PoissonConfig(**kw)),
           "compare": lambda: compare.run(compare.CompareConfig(**kw)),
           "ablate": lambda: ablate.run(ablate.AblateConfig(study="omega0", **kw)),
           "sr": lambda: sr.run(sr.SRConfig(**kw)),
           "vfi": lambda: vfi.run(vfi.VfiConfig(**kw))}[task]
    with pytest.raises(RuntimeError, match="backend 'cuda' cannot run on cpu"):
        run()
    assert not out.exists()


@pytest.mark.parametrize("backend", backend_params(["triton", "cuda"]))
@pytest.mark.parametrize("task", ["fit", "poisson-grad", "poisson-laplacian", "sr", "vfi"])
def test_tasks_train_on_the_gpu_backends(task, backend, tmp_path):
    """The task layer on the backends a GPU serves (triton interpreted, cuda emulated: the same
    Python paths): a fit, both Poisson runs (the reverse-mode gradient, the Laplacian jet), SR
    and VFI train, render, checkpoint and report, and end where the torch backend does."""
    from fastsiren.tasks import fit, sr, vfi

    def run(b):
        kw = dict(profile="quick", steps=10, hidden=16, out=str(tmp_path / b), backend=b, device="cpu",
                  progress=False)
        if task == "fit":
            return fit.run(fit.FitConfig(size=12, lr=1e-2, **kw))
        if task == "sr":
            return sr.run(sr.SRConfig(crop=12, methods=("siren-naive", "siren-consistent"), **kw))
        if task == "vfi":
            return vfi.run(vfi.VfiConfig(size=16, fits=1, flow_steps=2, **kw))
        return poisson.run(poisson.PoissonConfig(supervision=task.split("-")[1], baselines=(), size=12, lr=1e-2,
                                                 **kw))

    got, want = run(backend), run("torch")
    assert got["backend"] == backend and (tmp_path / backend / "metrics.json").exists()
    key = "ie" if task == "vfi" else ("psnr_y" if task == "sr" else "psnr")
    pairs = [(g["method"], g[key], w[key]) for g, w in zip(got["rows"], want["rows"], strict=True)
             if g["method"].startswith("siren")]
    assert pairs and all(g == pytest.approx(w, abs=2e-3) for _, g, w in pairs), pairs
