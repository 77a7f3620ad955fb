"""`fastsiren fit` end to end on the quick profile: run folder, resume, bad inputs."""

import json
import shutil

import pytest
import torch

from fastsiren import ReluMLP, Siren, cli, metrics
from fastsiren.tasks import common, fit


def test_fit_quick_writes_a_complete_run_folder(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["fit", "--profile", "quick", "--out", str(out), "--no-progress"]) == 0
    for name in ("config.json", "metrics.json", "checkpoint.pt", "model.pt", "reconstruction.png",
                 "ground_truth.png", "psnr.png"):
        assert (out / name).exists(), name
    m = json.loads((out / "metrics.json").read_text())
    assert m["task"] == "fit" and m["profile"] == "quick" and m["backend"] == "torch"
    assert m["device"] == common.device_name("cpu") and m["threads"] == torch.get_num_threads()
    assert m["cpu_id"] == common.cpu_id()
    row = m["rows"][0]
    assert row["method"] == "siren" and row["params"] > 0 and row["steps"] == 60
    assert row["psnr"] > 25 and 0 < row["ssim"] <= 1
    assert [h["step"] for h in m["history"]] == [20, 40, 60]
    assert m["history"][-1]["psnr"] > m["history"][0]["psnr"]
    assert "commit" in m and "torch" in m["versions"]
    # a finished run is never overwritten silently
    assert cli.main(["fit", "--profile", "quick", "--out", str(out), "--no-progress"]) == 2


def test_resume_continues_from_the_checkpoint(tmp_path):
    out = tmp_path / "run"
    cfg = fit.FitConfig(profile="quick", out=str(out), steps=40, checkpoint_every=20, progress=False)
    calls = {"n": 0}
    real_train = common.train

    def interrupted(*args, **kwargs):  # simulate Ctrl-C after the step-20 checkpoint
        kwargs["steps"] = 20
        real_train(*args, **kwargs)
        calls["n"] += 1
        raise KeyboardInterrupt

    fit.common.train = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            fit.run(cfg)
    finally:
        fit.common.train = real_train
    assert not (out / "metrics.json").exists()  # unfinished: no metrics
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ck["step"] == 20
    res = fit.run(fit.FitConfig(profile="quick", out=str(out), steps=40, checkpoint_every=20,
                                progress=False, resume=True))
    steps = [h["step"] for h in res["history"]]
    assert steps == [20, 40]
    # the run's seconds count the training before the Ctrl-C too (its history's last seconds are all of it)
    assert res["seconds"] >= res["history"][-1]["seconds"] > ck["seconds"] > 0
    with pytest.raises(ValueError, match="different config"):
        fit.run(fit.FitConfig(profile="quick", out=str(out), steps=50, progress=False, resume=True))
    # how often it checkpoints changes nothing it computes: a resume may change it
    again = fit.run(fit.FitConfig(profile="quick", out=str(out), steps=40, checkpoint_every=7,
                                  progress=False, resume=True))
    assert [h["step"] for h in again["history"]] == [20, 40]


@pytest.fixture(scope="module")
def siren_quick(tmp_path_factory):
    return fit.run(fit.FitConfig(profile="quick", out=str(tmp_path_factory.mktemp("s") / "s"), progress=False))


@pytest.mark.parametrize("model", ["relu", "relu-pe", "tanh"])
def test_siren_beats_baselines_on_quick_fit(tmp_path, model, siren_quick):
    base = fit.run(fit.FitConfig(profile="quick", out=str(tmp_path / model), model=model, progress=False))
    siren = siren_quick
    assert siren["rows"][0]["psnr"] > base["rows"][0]["psnr"] + 5
    assert abs(base["rows"][0]["params"] - siren["rows"][0]["params"]) <= 0.01 * siren["rows"][0]["params"]


@pytest.mark.parametrize("args,msg", [
    (["--image", "/nonexistent/x.png"], "not found"),
    (["--image", "no_such_name"], "bundled"),
    (["--steps", "0"], "steps must be > 0"),
    (["--omega", "-1"], "omega must be a finite number > 0"),
    (["--backend", "bogus"], "backend='bogus'"),
    (["--size", "1024"], "smaller than"),
    (["--device", "bogus"], "device='bogus'"),
    (["--lr", "inf"], "lr must be > 0 and finite"),
    (["--omega", "nan"], "omega must be a finite number > 0"),
    (["--hidden-omega", "2e6"], "hidden_omega must be a finite number > 0 and <= 1e+06"),  # outputs were noise
    (["--size", "6"], "size must be >= 8"),  # SSIM's 7x7 window: was a skimage error after training
    (["--model", "relu", "--backend", "cuda"], "applies to the SIREN only"),
    (["--image", "eagle"], "needs a download"),  # was a ModuleNotFoundError traceback (pooch)
    (["--device", "meta"], "device='meta' is not one the tasks run on"),  # was a meta-tensor error mid-run
    (["--model", "relu", "--omega", "5"], "--omega applies to the SIREN only, not to --model relu"),  # was ignored
    (["--device", "cpu:1"], "device='cpu:1' is not one the tasks run on"),  # was accepted
    (["--publish", "--results-dir", "__FILE__"], "--results-dir"),  # was refused after the training
    (["--publish", "--figures-dir", "__FILE__/sub"], "is a file, so no folder can be made under it"),
])
def test_bad_inputs_fail_before_training(tmp_path, capsys, args, msg):
    out = tmp_path / "bad"
    (tmp_path / "file").write_text("x")
    args = [a.replace("__FILE__", str(tmp_path / "file")) for a in args]
    assert cli.main(["fit", "--profile", "quick", "--out", str(out), "--no-progress", *args]) == 2
    assert msg in capsys.readouterr().err
    assert not (out / "metrics.json").exists()


@pytest.mark.parametrize("task", [["fit"], ["poisson", "--supervision", "grad"], ["compare"],
                                  ["ablate", "--study", "omega0"]])
def test_a_backend_that_cannot_run_is_refused_before_the_run_folder(tmp_path, capsys, monkeypatch, task):
    monkeypatch.delenv("FASTSIREN_BACKEND", raising=False)
    out = tmp_path / "run"
    assert cli.main([*task, "--profile", "quick", "--out", str(out), "--no-progress", "--device", "cpu",
                     "--backend", "cuda"]) == 2
    assert "backend 'cuda' cannot run on cpu" in capsys.readouterr().err
    assert not out.exists()


# a fit of seconds: 4 steps of a small network on an 8x8 image, checkpointed
TINY_FIT = ["fit", "--profile", "quick", "--no-progress", "--size", "8", "--steps", "4", "--hidden", "8",
            "--checkpoint-every", "2"]


@pytest.fixture(scope="module")
def tiny_finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "run"
    assert cli.main([*TINY_FIT, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other network"])
def test_a_bad_checkpoint_on_resume_is_a_clear_error_that_keeps_the_results(tmp_path, capsys, tiny_finished_run,
                                                                            damage):
    out = tmp_path / "run"
    shutil.copytree(tiny_finished_run, out)
    ck, results = out / "checkpoint.pt", (out / "metrics.json").read_bytes()
    if damage == "garbage":
        ck.write_text("this is not a checkpoint\n")
    elif damage == "truncated":
        ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    elif damage == "empty":
        ck.write_bytes(b"")
    else:
        other = fit.make_model(fit.resolve(fit.FitConfig(profile="quick", size=8, hidden=16)), 1, torch.device("cpu"))
        common.atomic_torch_save({"model": other.state_dict()}, ck)
    assert cli.main([*TINY_FIT, "--out", str(out), "--resume"]) == 2  # "empty" was an EOFError traceback
    assert (out / "metrics.json").read_bytes() == results  # a failed resume loses no finished result
    err = capsys.readouterr().err
    assert f"checkpoint {ck} is unreadable or does not match this run's model" in err
    assert "delete it" in err and "without --resume" in err


@pytest.mark.parametrize("text, msg", [("{not json", "is not a readable run config"),
                                       ("[1, 2]", "holds a JSON list")])
def test_a_damaged_config_on_resume_is_a_clear_error(tmp_path, capsys, tiny_finished_run, text, msg):
    out = tmp_path / "run"
    shutil.copytree(tiny_finished_run, out)
    (out / "config.json").write_text(text)
    assert cli.main([*TINY_FIT, "--out", str(out), "--resume"]) == 2  # a list was an AttributeError traceback
    err = capsys.readouterr().err
    assert f"{out / 'config.json'}" in err and msg in err


def test_resume_without_a_checkpoint_says_it_starts_from_step_0(tmp_path, capsys):
    out = tmp_path / "new"
    assert cli.main([*TINY_FIT, "--out", str(out), "--resume"]) == 0
    assert f"no checkpoint in {out}: starting from step 0" in capsys.readouterr().err
    results = json.loads((out / "metrics.json").read_text())
    assert cli.main([*TINY_FIT, "--out", str(out), "--resume"]) == 0  # a finished run: resumed, rewritten
    assert "no checkpoint" not in capsys.readouterr().err
    assert json.loads((out / "metrics.json").read_text())["rows"] == results["rows"]


def test_out_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "afile"
    out.write_text("not a folder")
    assert cli.main(["fit", "--profile", "quick", "--out", str(out), "--no-progress"]) == 2
    assert f"out={out} is a file" in capsys.readouterr().err
    assert out.read_text() == "not a folder"
    assert cli.main(["fit", "--profile", "quick", "--out", str(out / "sub"), "--no-progress"]) == 2
    assert f"out={out / 'sub'}: cannot create the run folder" in capsys.readouterr().err


def test_written_files_get_the_mode_of_a_plain_write(tmp_path):
    """atomic_write_bytes goes through mkstemp (mode 0600): the result must still be readable
    as any file the user writes (0666 less the umask), or shared run folders are unreadable."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        common.write_json(tmp_path / "m.json", {"a": 1})
        common.atomic_torch_save({"a": 1}, tmp_path / "c.pt")
    finally:
        os.umask(old)
    for name in ("m.json", "c.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_results_files_are_standard_json(tmp_path):
    """A non-finite metric (the PSNR of identical images) is written as null, not as Python's
    ``Infinity``, which other JSON readers refuse."""
    import numpy as np

    common.write_json(tmp_path / "m.json", {"rows": [{"psnr": float("inf"), "ssim": np.float64(1.0)},
                                                     {"psnr": (float("nan"), np.float32(2.5))}]})
    text = (tmp_path / "m.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard {c}")) == {
        "rows": [{"psnr": None, "ssim": 1.0}, {"psnr": [None, 2.5]}]}


def test_cli_help_lists_every_task(capsys):
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for name in cli.SUBCOMMANDS:
        assert name in text
    with pytest.raises(SystemExit):
        cli.main(["fit", "--help"])
    assert "--profile" in capsys.readouterr().out


def test_top_level_parser_edges(capsys, monkeypatch):
    """--version; an option before the command; an unknown option in the command's own usage;
    bench's --size default shown (its help names a size "default"); an error that a Ctrl-C caused
    (an import it cut short) is the interrupt, not a traceback."""
    with pytest.raises(SystemExit) as ex:
        cli.main(["--version"])
    assert ex.value.code == 0 and capsys.readouterr().out.startswith("fastsiren ")
    with pytest.raises(SystemExit):
        cli.main(["--profile", "quick", "fit"])
    assert "options go after the command: fastsiren fit --profile quick" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["fit", "--bogus"])
    assert "fastsiren fit: error: unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # was the whole help, with no word of what was wrong
        cli.main(["-x"])
    assert "error: unrecognized arguments: -x (no command given" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # was NumPy's "Seed must be between 0 and 2**32 - 1", after the folder
        cli.main(["fit", "--seed", "-1"])
    assert "argument --seed: expected an integer from 0 to 4294967295, got '-1'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    assert "(default: default)" in " ".join(capsys.readouterr().out.split())

    def cut_short(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    monkeypatch.setattr(fit, "main", cut_short)
    assert cli.main(["fit"]) == 130 and "--resume" in capsys.readouterr().err


def test_output_files_are_checked_before_the_work(tmp_path, capsys):
    """A results file or PDF that cannot be written is refused by its option's name before any
    work, not after it under a temporary file's name."""
    (tmp_path / "file").write_text("x")
    for argv, name in ((["report", "--out", str(tmp_path / "file" / "r.pdf")], "--out"),
                       (["vfi", "--table", "--profile", "quick", "--out", str(tmp_path / "file" / "t.json")], "--out"),
                       (["report", "--out", str(tmp_path)], "--out")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert f"error: {name} " in err and ".tmp" not in err, err
    from fastsiren.tasks import sr_table

    with pytest.raises(OSError, match="--results .*s.json: .*file is a file, so no folder can be made under it"):
        sr_table.main(["--profile", "quick", "--images", "camera", "--results", str(tmp_path / "file" / "s.json"),
                       "--figures", str(tmp_path / "f")])


def test_help_shows_a_default_of_zero(capsys):
    with pytest.raises(SystemExit):
        cli.main(["fit", "--help"])
    assert "random seed, an integer from 0 to 4294967295 (default: 0)" in " ".join(capsys.readouterr().out.split())


def test_interrupt_hint_names_resume_only_where_the_task_has_it(monkeypatch, capsys):
    from fastsiren.report import build

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "main", interrupted)
    assert cli.main(["report"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" not in err
    monkeypatch.setattr(fit, "main", interrupted)
    assert cli.main(["fit"]) == 130
    assert "--resume" in capsys.readouterr().err
    from fastsiren.tasks import sr

    monkeypatch.setattr(sr, "main", interrupted)  # finished methods, not a step checkpoint: it says so
    assert cli.main(["sr"]) == 130
    err = capsys.readouterr().err
    assert "the running fit's checkpoint are kept in the run folder (parts/)" in err
    assert "the last checkpoint of the run folder is kept" not in err


def test_ctrl_c_mid_step_checkpoints_the_whole_step(tmp_path, request):
    """Ctrl-C inside a step (here: during its evaluation) lets the step finish first: the
    checkpoint holds its history record, so the resumed run's history has no hole."""
    import signal

    torch.manual_seed(0)
    model, x, y = torch.nn.Linear(2, 1), torch.randn(64, 2), torch.randn(64, 1)
    ck = tmp_path / "checkpoint.pt"
    sent = []

    def evaluate(step):
        if step == 20 and not sent:
            sent.append(step)
            handler = signal.getsignal(signal.SIGINT)
            assert getattr(handler, "__name__", "") == "hold", f"train did not defer SIGINT: handler {handler!r}"
            # raise() signals this thread (os.kill lets the kernel pick any thread that does not
            # block SIGINT): the handler runs here, mid-evaluation
            signal.raise_signal(signal.SIGINT)
        return {"psnr": 1.0}

    kw = dict(steps=40, lr=1e-2, checkpoint=ck, checkpoint_every=10, log_every=10, evaluate=evaluate,
              progress=False)
    # Python's own handler, whatever an earlier test or plugin left installed (a handler that does
    # not raise would let the deferred Ctrl-C pass: "DID NOT RAISE")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    with pytest.raises(KeyboardInterrupt):
        common.train(model, lambda: ((model(x) - y) ** 2).mean(), **kw)
    saved = torch.load(ck, weights_only=False)
    assert saved["step"] == 20 and [h["step"] for h in saved["history"]] == [10, 20]
    assert all(float(st["step"]) == 20 for st in saved["optimizer"]["state"].values())
    state = common.train(model, lambda: ((model(x) - y) ** 2).mean(), resume=True, **kw)
    assert [h["step"] for h in state.history] == [10, 20, 30, 40]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def test_train_resumes_schedule_stop_rule_and_extra_state_exactly(tmp_path, request):
    """What sr's and vfi's fits carry besides the model (a cosine schedule, a sampler's random
    generator, a stopping rule's running record) goes into the checkpoint: a fit stopped by
    Ctrl-C and resumed ends exactly where an uninterrupted one does, by the same rule."""
    import signal

    def run(checkpoint=None, interrupt_at=None, resume=False, twice=False):
        torch.manual_seed(0)
        model, x, y = torch.nn.Linear(3, 1), torch.randn(256, 3), torch.randn(256, 1)
        gen = torch.Generator().manual_seed(1)
        seen: list[float] = []

        def loss_fn():
            idx = torch.randint(256, (32,), generator=gen)
            loss = ((model(x[idx]) - y[idx]) ** 2).mean()
            if len(seen) + 1 == interrupt_at:
                signal.raise_signal(signal.SIGINT)  # mid-step: the step is let finish
                if twice:
                    signal.raise_signal(signal.SIGINT)  # ... unless a second one comes: it stops at once
            return loss, {"data": float(loss.detach())}

        def stop(step, terms):
            seen.append(terms["data"])
            return "enough" if len(seen) == 33 else None

        def set_state(saved):
            gen.set_state(saved["generator"])
            seen[:] = saved["seen"]

        state = common.train(model, loss_fn, steps=50, lr=1e-2, checkpoint=checkpoint, checkpoint_every=100,
                             resume=resume, log_every=10, progress=False,
                             schedule=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, 50),
                             stop=stop, extra_state=(lambda: {"generator": gen.get_state(), "seen": list(seen)},
                                                     set_state))
        return state, model

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    whole, model = run()
    assert (whole.step, whole.stopped) == (33, "enough") and [h["step"] for h in whole.history] == [10, 20, 30, 33]
    ck = tmp_path / "fit.pt"
    with pytest.raises(KeyboardInterrupt):
        run(ck, interrupt_at=12)
    saved = torch.load(ck, weights_only=False)
    assert saved["step"] == 12 and saved["scheduler"]["last_epoch"] == 12 and len(saved["extra"]["seen"]) == 12
    resumed, model2 = run(ck, resume=True)
    assert (resumed.step, resumed.stopped) == (33, "enough")
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)
    again, _ = run(ck, resume=True)  # a finished (stopped) fit resumed runs no step
    assert (again.step, again.stopped, len(again.history)) == (33, "enough", 4)
    # a second Ctrl-C cuts the step short: the checkpoint of the last whole step stays (here the
    # one of step 12, written by a first interruption), and resuming from it is still exact
    ck.unlink()
    with pytest.raises(KeyboardInterrupt):
        run(ck, interrupt_at=12)
    with pytest.raises(KeyboardInterrupt):
        run(ck, interrupt_at=20, resume=True, twice=True)
    assert torch.load(ck, weights_only=False)["step"] == 12
    resumed, model3 = run(ck, resume=True)
    assert (resumed.step, resumed.stopped) == (33, "enough")
    for a, b in zip(model.parameters(), model3.parameters()):
        assert torch.equal(a, b)


def test_sigterm_keeps_the_checkpoint(tmp_path):
    """`timeout` or a scheduler ends a run with SIGTERM: it takes the Ctrl-C path (exit 130,
    checkpoint written), so --resume can go on from there."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    args = [sys.executable, "-m", "fastsiren.cli", "fit", "--profile", "quick", "--out", str(out),
            "--no-progress", "--steps", "100000", "--checkpoint-every", "5", "--size", "16"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, FASTSIREN_BACKEND="torch"))
    deadline = time.time() + 180
    while not (out / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)  # training has begun once the first checkpoint is there
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    assert 5 <= ck["step"] < 100000
    assert not (out / "metrics.json").exists()


def test_git_commit_marks_source_changes_not_generated_results(tmp_path):
    import subprocess

    from fastsiren.tasks.common import git_commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "src.py").write_text("a = 1\n")
    (tmp_path / "docs" / "results" / "fit-cpu.json").write_text("{}\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    sha = git_commit(tmp_path)
    assert len(sha) == 40 and not sha.endswith("-dirty") and git_commit(tmp_path, length=10) == sha[:10]
    (tmp_path / "docs" / "results" / "fit-cpu.json").write_text('{"rows": []}\n')  # what a run writes
    assert git_commit(tmp_path) == sha
    (tmp_path / "src.py").write_text("a = 2\n")
    assert git_commit(tmp_path) == sha + "-dirty"
    assert git_commit(tmp_path.parent / "no-such-dir") == "unknown"


def test_a_long_run_keeps_the_commit_it_started_from():
    doc = common.results_doc("fit", "quick", [], backend="torch", seconds=1.0, commit="abc123")
    assert doc["commit"] == "abc123" and list(doc)[:5] == ["task", "profile", "device", "backend", "commit"]


def test_publish_copies_the_results_and_only_captioned_figures(tmp_path):
    out, res, figs = tmp_path / "run", tmp_path / "results", tmp_path / "figures"
    assert cli.main(["fit", "--profile", "quick", "--out", str(out), "--no-progress", "--publish",
                     "--results-dir", str(res), "--figures-dir", str(figs)]) == 0
    assert [p.name for p in res.iterdir()] == ["fit-quick.json"]
    assert json.loads((res / "fit-quick.json").read_text()) == json.loads((out / "metrics.json").read_text())
    # reconstruction.png and ground_truth.png are raw outputs (no caption): not figures
    assert sorted(p.name for p in figs.iterdir()) == ["fit-quick-psnr.png", "fit-quick.png"]
    assert "gradient magnitude and Laplacian" in common.figure_caption(figs / "fit-quick.png")
    assert common.figure_caption(out / "reconstruction.png") is None
    (out / "metrics.json").unlink()
    with pytest.raises(FileNotFoundError, match="run_dir=.*no metrics.json"):
        common.publish(out, "fit", results_dir=res, figures_dir=figs)


def test_publish_names_figures_by_study_and_profile(tmp_path):
    run = tmp_path / "run"
    common.write_json(run / "metrics.json", common.results_doc("poisson", "cpu", [], backend="torch", seconds=1.0))
    for name in ("poisson-grad-siren", "psnr"):
        fig, _ = common.plt_figure()
        common.save_figure(fig, run / f"{name}.png", caption=f"caption of {name}")
    written = common.publish(run, "poisson-grad", results_dir=tmp_path / "r", figures_dir=tmp_path / "f")
    assert sorted(p.name for p in written) == ["poisson-grad-cpu-psnr.png", "poisson-grad-cpu-siren.png",
                                               "poisson-grad-cpu.json"]
    assert common.figure_caption(tmp_path / "f" / "poisson-grad-cpu-siren.png") == "caption of poisson-grad-siren"
    (tmp_path / "junk.png").write_text("not an image")
    assert common.figure_caption(tmp_path / "junk.png") is None
    assert common.figure_caption(tmp_path / "missing.png") is None


def test_experiments_lists_validates_and_runs_by_name(tmp_path, capsys, monkeypatch):
    from fastsiren.tasks import experiments

    assert cli.main(["experiments", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(experiments.EXPERIMENTS) and "sr-table" in listed and "vfi-table" in listed
    assert cli.main(["experiments", "--only", "fit,nosuch"]) == 2
    assert "unknown experiment(s) ['nosuch']" in capsys.readouterr().err
    assert cli.main(["experiments", "--only", "fit,fit"]) == 2  # the second ran into the first's folder
    assert "--only lists fit more than once" in capsys.readouterr().err
    res, figs = tmp_path / "results", tmp_path / "figures"
    assert cli.main(["experiments", "--profile", "quick", "--only", "fit", "--runs", str(tmp_path / "runs"),
                     "--results-dir", str(res), "--figures-dir", str(figs), "--no-progress"]) == 0
    assert (res / "fit-quick.json").is_file() and (figs / "fit-quick.png").is_file()
    assert (tmp_path / "runs" / "fit" / "metrics.json").is_file()
    # a second run into the same folders refuses to overwrite the finished run: reported, exit 1
    assert cli.main(["experiments", "--profile", "quick", "--only", "fit", "--runs", str(tmp_path / "runs"),
                     "--results-dir", str(res), "--figures-dir", str(figs), "--no-progress"]) == 1
    assert "failed (exit 2)" in capsys.readouterr().out
    # --resume continues the run folder instead (here: from its last checkpoint, and republishes)
    (res / "fit-quick.json").unlink()
    assert cli.main(["experiments", "--profile", "quick", "--only", "fit", "--runs", str(tmp_path / "runs"),
                     "--results-dir", str(res), "--figures-dir", str(figs), "--no-progress", "--resume"]) == 0
    assert (res / "fit-quick.json").is_file()
    # ... and the tables keep the rows of their results files: --resume reaches every experiment
    for name in experiments.EXPERIMENTS:
        argv = experiments._argv(name, "quick", tmp_path, res, figs, progress=False, resume=True)
        assert argv.count("--resume") == 1, name
        assert "--resume" not in experiments._argv(name, "quick", tmp_path, res, figs, progress=False)
    from fastsiren.tasks import sr_table

    with pytest.raises(SystemExit):  # sr_table parses --resume (an unknown option exits)
        sr_table.main(["--resume", "--nosuch"])
    assert "unrecognized arguments: --nosuch" in capsys.readouterr().err
    # a table that fails (here: --resume over a file that is not a results document) is reported
    # and the next experiment runs
    (res / "sr-quick.json").write_text("[1]")
    assert cli.main(["experiments", "--profile", "quick", "--only", "sr-table,fit", "--runs", str(tmp_path / "runs"),
                     "--results-dir", str(res), "--figures-dir", str(figs), "--no-progress", "--resume"]) == 1
    out = capsys.readouterr()
    assert "sr-quick.json is not a results document" in out.err
    assert "sr-table" in out.out and "failed (exit 2)" in out.out and "fit                  ok" in out.out
    # Ctrl-C in the SR table: its own message, the summary and the --resume hint, as for a task
    def cut(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(sr_table, "main", cut)
    assert cli.main(["experiments", "--profile", "quick", "--only", "sr-table,fit", "--runs", str(tmp_path / "runs"),
                     "--results-dir", str(res), "--figures-dir", str(figs), "--no-progress"]) == 130
    out = capsys.readouterr()
    assert f"interrupted: {sr_table.INTERRUPT_HINT}" in out.err and "rerun the same command with --resume" in out.err
    assert "sr-table             interrupted" in out.out and "fit                  not run" in out.out


def test_cpu_id_reads_the_first_processor():
    info = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n"
            "stepping\t: 1\n\nprocessor\t: 1\ncpu family\t: 26\nmodel\t\t: 2\nstepping\t: 0\n")
    assert common.cpu_id(info) == "family 25 model 17 stepping 1"
    assert common.cpu_id("processor\t: 0\n") is None


def test_script_main_exit_codes_and_messages(capsys):
    """The `python -m` scripts outside the fastsiren command (sr_table, sr_train) end with a
    one-line error or what Ctrl-C kept, never a traceback."""
    def fails(exc):
        def main():
            raise exc
        return main

    for main, code, text in [(lambda: 0, 0, ""), (lambda: 3, 3, ""),
                             (fails(ValueError("--scales bad")), 2, "prog: error: --scales bad"),
                             (fails(FileNotFoundError("no such image")), 2, "prog: error: no such image"),
                             (fails(KeyboardInterrupt()), 130, "interrupted: rows kept")]:
        with pytest.raises(SystemExit) as exit_:
            common.script_main(main, "prog", "rows kept")
        assert exit_.value.code == code and text in capsys.readouterr().err


def test_load_model_rebuilds_a_fitted_network(tmp_path):
    """A fit run folder gives back its network (from model.pt, or from checkpoint.pt when the
    run did not finish): rendered on the run's grid it scores the run's PSNR; a folder that is
    not a fit run is an error naming it."""
    from fastsiren.tasks.fit import load_model, load_target

    run = tmp_path / "run"
    assert cli.main(["fit", "--profile", "quick", "--out", str(run), "--no-progress", "--color",
                     "--image", "astronaut"]) == 0
    doc = json.loads((run / "metrics.json").read_text())
    target = load_target("astronaut", 32, None)
    for _ in range(2):
        model = load_model(run, device="cpu")
        assert isinstance(model, Siren) and not model.training
        with torch.no_grad():
            pred = model.render((32, 32))
        assert round(metrics.psnr(pred, target, 2.0), 4) == doc["rows"][0]["psnr"]
        assert model.render((80, 48)).shape == (80, 48, 3)  # any grid
        (run / "model.pt").unlink(missing_ok=True)  # second round: the checkpoint's weights
    (run / "checkpoint.pt").unlink()
    with pytest.raises(FileNotFoundError, match="neither model.pt nor checkpoint.pt"):
        load_model(run)
    with pytest.raises(FileNotFoundError, match="holds no config.json"):
        load_model(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"video": "carphone"}')
    with pytest.raises(ValueError, match="not that of a `fastsiren fit` or `fastsiren poisson` run"):
        load_model(tmp_path / "other")


def test_load_model_rebuilds_a_poisson_run_network(tmp_path):
    """A poisson run folder gives back each of its networks by method (the finished weights, or the
    checkpoint of a run cut short): they score the run's PSNRs again; a method the run did not
    train, or a method asked of a fit run, is an error naming the run's."""
    from fastsiren.tasks import poisson
    from fastsiren.tasks.fit import load_model, load_target

    run = tmp_path / "p"
    assert cli.main(["poisson", "--profile", "quick", "--supervision", "laplacian", "--out", str(run),
                     "--no-progress"]) == 0
    rows = {r["method"]: r for r in json.loads((run / "metrics.json").read_text())["rows"]}
    assert set(rows) == {"siren", "relu"}
    problem = poisson.Problem(load_target("camera", 24, True), "laplacian", 3)
    for method, kind in [(None, Siren), ("siren", Siren), ("relu", ReluMLP)]:
        model = load_model(run, "cpu", method=method)
        assert isinstance(model, kind)
        assert round(problem.final(model)["psnr"], 5) == rows[method or "siren"]["psnr"]
    state = torch.load(run / "model-relu.pt", weights_only=True)
    torch.save({"model": state}, run / "checkpoint-relu.pt")  # as a run cut short leaves it
    (run / "model-relu.pt").unlink()
    assert round(problem.final(load_model(run, method="relu"))["psnr"], 5) == rows["relu"]["psnr"]
    with pytest.raises(ValueError, match=r"method='tanh'.*trained \['siren', 'relu'\]"):
        load_model(run, method="tanh")
    (run / "checkpoint-relu.pt").unlink()
    with pytest.raises(FileNotFoundError, match="neither model-relu.pt nor checkpoint-relu.pt"):
        load_model(run, method="relu")
    fit_run = tmp_path / "f"
    assert cli.main(["fit", "--profile", "quick", "--out", str(fit_run), "--no-progress"]) == 0
    assert isinstance(load_model(fit_run, method="siren"), Siren)
    with pytest.raises(ValueError, match="a fit run of 'siren', which holds one network"):
        load_model(fit_run, method="relu")


def test_a_fresh_start_never_deletes_what_a_folder_holds(tmp_path, capsys):
    """Without --resume a folder holding an unfinished run (checkpoints, networks, parts) is refused,
    not emptied: only --resume continues what a Ctrl-C kept; a folder of other files with no run's
    config.json is refused too (nothing of the user's is deleted or overwritten)."""
    run = tmp_path / "run"
    run.mkdir()
    for name in ("checkpoint-a.pt", "model.pt", "model-siren.pt", "notes.txt"):
        (run / name).write_bytes(b"x")
    with pytest.raises(FileExistsError, match="no fastsiren run"):
        common.RunFolder(run, {"a": 1}, resume=False, checkpoints="checkpoint-*.pt")
    # nor continued from: a checkpoint there may be another model's (with the same shapes)
    with pytest.raises(FileExistsError, match="may overwrite or continue from what it finds there"):
        common.RunFolder(run, {"a": 1}, resume=True, checkpoints="checkpoint-*.pt")
    (run / "config.json").write_text('{"a": 1}')  # a run's folder: its config says whose they are
    common.RunFolder(run, {"a": 1}, resume=True, checkpoints="checkpoint-*.pt")
    assert len(list(run.iterdir())) == 5  # --resume keeps them
    with pytest.raises(FileExistsError, match=r"holds an unfinished run \(model.pt, model-siren.pt, checkpoint-a.pt\)"):
        common.RunFolder(run, {"a": 1}, resume=False, checkpoints="checkpoint-*.pt")
    assert len(list(run.iterdir())) == 5
    user = tmp_path / "mine"
    (user / "parts").mkdir(parents=True)
    (user / "parts" / "chapter1.tex").write_text("x")
    assert cli.main(["fit", "--profile", "quick", "--out", str(user), "--no-progress"]) == 2
    assert "no fastsiren run" in capsys.readouterr().err and (user / "parts" / "chapter1.tex").exists()
    (tmp_path / "empty").mkdir()
    common.RunFolder(tmp_path / "empty", {"a": 1}, checkpoints="checkpoint-*.pt")  # an empty folder is fine
    common.RunFolder(tmp_path / "empty", {"a": 2}, checkpoints="checkpoint-*.pt")  # and a run that kept nothing
    # a network that cannot be built is refused before the folder is made
    assert cli.main(["fit", "--profile", "quick", "--model", "relu-pe", "--size", "16", "--out", str(tmp_path / "pe"),
                     "--no-progress"]) == 2
    assert "cannot match" in capsys.readouterr().err and not (tmp_path / "pe").exists()


def test_script_main_takes_sigterm_as_ctrl_c(tmp_path):
    import subprocess
    import sys

    code = ("import os, signal; from fastsiren.tasks import common; "
            "common.script_main(lambda: os.kill(os.getpid(), signal.SIGTERM) or 0, 'prog', 'rows kept')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130 and "interrupted: rows kept" in proc.stderr


def test_poisson_fits_checkpoint_every_so_many_steps(tmp_path, monkeypatch):
    """The fits of the Poisson, comparison and ablation tasks keep a checkpoint every
    common.CHECKPOINT_EVERY steps, not only at their end: a kill loses at most that many steps."""
    from fastsiren.tasks import poisson

    saved = []
    real = common.atomic_torch_save
    monkeypatch.setattr(common, "atomic_torch_save", lambda obj, path: (saved.append(obj["step"]), real(obj, path)))
    monkeypatch.setattr(common, "CHECKPOINT_EVERY", 2)
    target = torch.linspace(-1, 1, 64).reshape(8, 8, 1)
    problem = poisson.Problem(target, "grad", 3)
    model = Siren(2, 8, 1, 1, backend="reference")
    poisson.train_problem(model, problem, steps=5, lr=1e-3, log_every=5, checkpoint=tmp_path / "ck.pt",
                          progress=False)
    assert saved == [2, 4, 5]


def test_stale_temporary_files_of_a_killed_write_are_removed_on_resume(tmp_path):
    run = tmp_path / "run"
    (run / "parts").mkdir(parents=True)
    old, fresh = run / ".checkpoint.pt.abc123.tmp", run / "parts" / ".x.npz.def456.tmp"
    for p in (old, fresh):
        p.write_bytes(b"half")
    import os

    os.utime(old, (1.0, 1.0))  # written long ago by a process that was killed
    assert common.remove_stale_temps(run) == [old]
    assert not old.exists() and fresh.exists()  # a live writer's file is left alone
