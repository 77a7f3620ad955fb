"""Super-resolution: the MATLAB-style resize operator, the Y-channel protocol, the SR command in
both modes (quick profile, tiny images) and its bad inputs."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fastsiren import cli, metrics
from fastsiren.sr_ops import imresize, quantize, resize, resize_matrix
from fastsiren.tasks import common, sr

# ---------------------------------------------------------------- resize operator


def test_x2_downsampling_weights_by_hand():
    # x0.5 antialiased: output pixel centre u = 2k + 1.5 (1-based), kernel 0.5 * cubic(0.5 d) at
    # distances d = 0.5, 1.5, 2.5, 3.5 -> 0.5 * cubic(0.25, 0.75, 1.25, 1.75) with a = -0.5
    half = np.array([0.8671875, 0.2265625, -0.0703125, -0.0234375]) * 0.5
    expect = np.concatenate([half[::-1], half])
    m = resize_matrix(16, 8, dtype=torch.float64).numpy()
    # output row 3 (0-based) is centred between input pixels 6 and 7: taps on pixels 3..10
    np.testing.assert_allclose(m[3, 3:11], expect, atol=1e-15)
    assert np.count_nonzero(m[3]) == 8
    # at the border the taps at pixels 0, -1, -2 are mirrored onto pixels 1, 2, 3
    h0, h1, h2, h3 = half
    np.testing.assert_allclose(m[0, :6], [h0 + h1, h0 + h2, h1 + h3, h2, h3, 0.0], atol=1e-15)


@pytest.mark.parametrize("kernel", ["cubic", "lanczos3", "box"])
@pytest.mark.parametrize("sizes", [(16, 8), (8, 16), (12, 5), (7, 17), (10, 25)])
def test_constant_image_stays_constant(kernel, sizes):
    n, m = sizes
    img = torch.full((n, n + 3, 2), 0.37, dtype=torch.float64)
    out = resize(img, (m, m + 1), kernel, antialias=kernel != "box")
    assert out.shape == (m, m + 1, 2)
    torch.testing.assert_close(out, torch.full_like(out, 0.37), atol=1e-14, rtol=0)


def test_linear_ramp_preserved_away_from_borders():
    ramp = np.add.outer(np.arange(40.0), 0.5 * np.arange(36.0))[..., None] / 60
    for size in [(20, 18), (80, 72), (100, 90)]:
        out = imresize(ramp, size)
        si, sj = size[0] / 40, size[1] / 36
        # the value at output pixel centre i sits at input position (i + 0.5) / s - 0.5
        ii = (np.arange(size[0]) + 0.5) / si - 0.5
        jj = (np.arange(size[1]) + 0.5) / sj - 0.5
        expect = np.add.outer(ii, 0.5 * jj)[..., None] / 60
        b = 6
        np.testing.assert_allclose(out[b:-b, b:-b], expect[b:-b, b:-b], atol=1e-12)


@pytest.mark.parametrize("size", [(40, 48), (10, 12), (50, 60)])
def test_matches_pil_bicubic_in_the_interior(size):
    # PIL's BICUBIC is Keys a=-0.5 with the same pixel-centre mapping and antialiased
    # shrinking; it renormalises at the borders instead of mirroring, so compare inside
    rng = np.random.default_rng(1)
    x = rng.random((20, 24))
    pil = np.asarray(Image.fromarray(x.astype(np.float32), "F").resize(size[::-1], Image.BICUBIC))
    ours = imresize(x[..., None], size)[..., 0]
    b = 6
    np.testing.assert_allclose(ours[b:-b, b:-b], pil[b:-b, b:-b], atol=1e-6)


def test_downsample_after_exact_upsample_is_near_identity():
    yy, xx = np.meshgrid(np.linspace(0, 1, 32), np.linspace(0, 1, 32), indexing="ij")
    smooth = (0.5 + 0.3 * np.sin(2 * np.pi * 1.5 * xx) * np.cos(2 * np.pi * yy))[..., None]
    for s in (2, 3, 4):
        back = imresize(imresize(smooth, (32 * s, 32 * s)), (32, 32))
        assert np.abs(back - smooth).max() < 5e-3, s


def test_resize_is_differentiable_as_its_transpose():
    img = torch.randn(9, 7, 1, dtype=torch.float64, requires_grad=True)
    out = resize(img, (4, 3))
    g = torch.randn_like(out)
    (out * g).sum().backward()
    rh = resize_matrix(9, 4, dtype=torch.float64)
    rw = resize_matrix(7, 3, dtype=torch.float64)
    torch.testing.assert_close(img.grad[..., 0], rh.T @ g[..., 0] @ rw)


def test_tile_support_is_exact():
    m = resize_matrix(60, 20, dtype=torch.float64)
    x = torch.randn(60, 3, dtype=torch.float64)
    for lo, hi in [(0, 5), (7, 13), (15, 20)]:
        a, b = sr.hr_support(m, lo, hi)
        assert b - a < 60
        torch.testing.assert_close(m[lo:hi, a:b] @ x[a:b], m[lo:hi] @ x, atol=1e-14, rtol=0)


def test_imresize_takes_flipped_and_strided_views():
    img = np.random.default_rng(0).random((12, 10, 3))
    for view in (img[::-1], img[:, ::-2], img.transpose(1, 0, 2)):
        assert np.allclose(imresize(view, (6, 5)), imresize(view.copy(), (6, 5)))


def test_resize_rejects_bad_arguments():
    with pytest.raises(ValueError, match="out_size"):
        resize_matrix(8, 0)
    with pytest.raises(ValueError, match="kernel"):
        resize_matrix(8, 4, kernel="spline")
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        resize(torch.zeros(4, 4), (2, 2))


# ---------------------------------------------------------------- protocol


def test_y_psnr_with_border_crop():
    rng = np.random.default_rng(0)
    hr = rng.random((20, 22, 3))
    pred = hr.copy()
    pred[:3] = 0.0  # errors only inside a 3-px border
    assert metrics.psnr_y(pred, hr, border=3) == float("inf")
    assert np.isfinite(metrics.psnr_y(pred, hr, border=2))
    # a uniform RGB offset d moves Y by d * (65.481 + 128.553 + 24.966) / 255
    d = 0.01
    dy = d * 219.0 / 255
    assert metrics.psnr_y(np.clip(hr, 0, 0.98) + d, np.clip(hr, 0, 0.98), border=2) == pytest.approx(
        10 * np.log10(1 / dy ** 2), abs=1e-9)


def test_evaluate_protocol_sizes_and_degradation():
    assert sr.sizes_for((120, 130), 3, 0) == ((120, 129), (40, 43))
    assert sr.sizes_for((512, 512), 4, 96) == ((96, 96), (24, 24))
    assert sr.sizes_for((24, 30), 2.5, 0) == ((20, 30), (8, 12))  # x2.5: even LR sides
    hr = np.random.default_rng(2).random((24, 24, 3))
    lr = sr.degrade(hr, (12, 12))
    np.testing.assert_array_equal(lr, quantize(lr))  # 8-bit values
    np.testing.assert_allclose(lr, imresize(hr, (12, 12)).clip(0, 1), atol=0.5 / 255 + 1e-12)


def test_ycbcr_round_trip():
    rgb = np.random.default_rng(3).random((5, 6, 3))
    cb = (128.0 + rgb @ np.array([-37.797, -74.203, 112.0])) / 255.0
    cr = (128.0 + rgb @ np.array([112.0, -93.786, -18.214])) / 255.0
    np.testing.assert_allclose(sr.ycbcr_to_rgb(metrics.rgb_to_y(rgb), cb, cr), rgb, atol=1e-12)


def test_srcnn_weights_trained_without_evaluation_images_and_beat_bicubic():
    from fastsiren.tasks import sr_train

    record = json.loads(sr.WEIGHTS.with_suffix(".json").read_text())
    used = {name.split("[")[0] for name in record["images"]}
    assert not used & set(sr_train.EXCLUDED) and "cat" in sr_train.EXCLUDED
    hr = sr.center_crop(sr.data.read_image("camera"), (60, 60))
    lr = sr.degrade(hr, (20, 20))
    net = sr.load_srcnn()
    gain = metrics.psnr_y(sr.srcnn_upsample(lr, (60, 60), net), hr, 3) - metrics.psnr_y(
        sr.upsample(lr, (60, 60), "bicubic"), hr, 3)
    assert gain > 0.2


def test_consistent_siren_matches_the_lr_image_better_than_bicubic():
    # bicubic upsampling is not consistent with the degradation: downsampling it again misses the
    # LR image; the consistent fit drives that residual down (first-call time is torch.optim's
    # one-time import of torch._dynamo, seconds)
    hr = sr.center_crop(sr.data.read_image("astronaut"), (24, 24))
    lr = sr.degrade(hr, (12, 12))
    cfg = sr.resolve(sr.SRConfig(profile="quick", progress=False))
    out, info = sr.siren_consistent(lr, (24, 24), cfg, omega=6.0, steps=120, device=torch.device("cpu"))
    assert out.shape == (24, 24, 3) and info["steps"] <= 120
    bic_residual = np.sqrt(np.mean((imresize(sr.upsample(lr, (24, 24), "bicubic"), (12, 12)) - lr) ** 2))
    assert info["lr_residual_rms"] < 0.75 * bic_residual


# ---------------------------------------------------------------- the command


def _write(path, arr):
    Image.fromarray(arr).save(path)
    return str(path)


@pytest.fixture
def color_png(tmp_path):
    yy, xx = np.mgrid[0:30, 0:26] / 30.0
    rgb = np.stack([np.sin(6 * xx) * 0.4 + 0.5, yy, 0.5 + 0.4 * np.cos(5 * (xx + yy))], -1)
    return _write(tmp_path / "tiny.png", np.round(rgb * 255).astype(np.uint8))


def test_cli_evaluate_quick(tmp_path, color_png):
    out = tmp_path / "run"
    rc = cli.main(["sr", "--image", color_png, "--scale", "2", "--profile", "quick", "--out", str(out),
                   "--steps", "30", "--no-progress"])
    assert rc == 0
    for name in ("lr.png", "sr.png", "bicubic.png", "metrics.json", "comparison.png"):
        assert (out / name).exists(), name
    assert "every method" in common.figure_caption(out / "comparison.png")
    assert Image.open(out / "lr.png").size == (12, 12)      # HR crop 24x24 (quick profile) / 2
    assert Image.open(out / "sr.png").size == (24, 24)
    assert Image.open(out / "bicubic.png").mode == "RGB"
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["task"] == "sr" and doc["mode"] == "evaluate"
    rows = {r["method"]: r for r in doc["rows"]}
    assert set(rows) == set(sr.METHODS)
    for r in rows.values():
        assert 10 < r["psnr_y"] < 60 and 0 < r["ssim_y"] <= 1 and np.isfinite(r["psnr"])
    # bicubic.png holds exactly the bicubic row's image: recompute its PSNR-Y from the files
    hr = np.asarray(Image.open(out / "hr.png"), dtype=np.float64) / 255
    bic = np.asarray(Image.open(out / "bicubic.png"), dtype=np.float64) / 255
    assert metrics.psnr_y(bic, hr, border=2) == pytest.approx(rows["bicubic"]["psnr_y"], abs=1e-3)
    assert rows["siren-consistent"]["stop"] in ("budget", "plateau", "discrepancy")


def test_cli_upscale_gray_real_scale(tmp_path, monkeypatch):
    img = np.round(np.outer(np.linspace(0, 1, 10), np.linspace(0.2, 1, 12)) * 255).astype(np.uint8)
    path = _write(tmp_path / "g.png", img)
    out = tmp_path / "up"
    assert cli.main(["sr", "--image", path, "--scale", "2.5", "--upscale", "--profile", "quick",
                     "--steps", "20", "--out", str(out), "--no-progress"]) == 0
    assert Image.open(out / "sr.png").size == (30, 25)
    assert Image.open(out / "sr.png").mode == "L"
    assert not (out / "lr.png").exists() and not (out / "bicubic.png").exists()
    assert "no ground truth" in common.figure_caption(out / "comparison.png")
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["mode"] == "upscale"
    # the fit's output is a part, the fitted model its checkpoint: a --resume of the finished run
    # rebuilds the output from the part
    assert sorted(p.name for p in (out / "parts").iterdir()) == ["siren-consistent.npz", "siren-consistent.pt"]
    assert torch.load(out / "parts" / "siren-consistent.pt", weights_only=False)["step"] == doc["rows"][0]["steps"]
    png = (out / "sr.png").read_bytes()
    monkeypatch.setattr(sr, "siren_consistent", None)  # not called again
    assert cli.main(["sr", "--image", path, "--scale", "2.5", "--upscale", "--profile", "quick",
                     "--steps", "20", "--out", str(out), "--no-progress", "--resume"]) == 0
    assert (out / "sr.png").read_bytes() == png
    assert json.loads((out / "metrics.json").read_text())["rows"] == doc["rows"]
    # an output too large to render is refused by its scale before the run folder (was a failed
    # allocation of tens of terabytes, or "Maximum allowed size exceeded", after it)
    for scale in ("100000", "1e300"):
        assert cli.main(["sr", "--image", path, "--scale", scale, "--upscale", "--profile", "quick",
                         "--out", str(tmp_path / "huge"), "--no-progress"]) == 2
        assert not (tmp_path / "huge").exists()


def test_alpha_and_16bit_inputs_are_read(tmp_path, color_png):
    rgb = np.asarray(Image.open(color_png))
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], -1)
    p_rgba = _write(tmp_path / "a.png", rgba)
    np.testing.assert_allclose(sr.data.read_image(p_rgba), rgb / 255.0)
    gray16 = (np.arange(30 * 26).reshape(30, 26) * 80).astype(np.uint16)
    p16 = str(tmp_path / "g16.png")
    Image.fromarray(gray16).save(p16)
    np.testing.assert_allclose(sr.data.read_image(p16)[..., 0], gray16 / 65535.0)
    out = tmp_path / "run16"
    assert cli.main(["sr", "--image", p16, "--scale", "3", "--profile", "quick", "--out", str(out),
                     "--methods", "bicubic,siren-naive", "--steps", "10", "--no-progress"]) == 0


@pytest.mark.parametrize("args, message", [
    (["--scale", "0.5"], "scale must be a number >= 1"),
    (["--scale", "0"], "scale must be a number >= 1"),
    (["--scale", "1"], "scale 1 leaves nothing to evaluate"),
    (["--scale", "12"], "too small for scale 12"),
    (["--methods", "bicubic,magic"], "magic"),
    (["--render-chunk", "0"], "render_chunk must be > 0"),
    (["--tv", "nan"], "tv must be >= 0 and finite"),
    (["--tv", "inf"], "tv must be >= 0 and finite"),
    (["--methods", "nearest,bicubic", "--backend", "cuda"], "backend 'cuda' cannot run"),
    # options the run would ignore (they were ignored silently)
    (["--upscale", "--crop", "16"], "--crop applies to the evaluate mode only"),
    (["--methods", "bicubic", "--tv", "5", "--tile", "3"], "--tv, --tile set the SIREN methods fit, which "
                                                           "--methods bicubic does not run"),
    (["--methods", "bicubic,siren-naive", "--tile", "3"], "--tile sets the siren-consistent fit"),
    # omega_0 = omega_per_px x the LR side beyond fastsiren's bound (was refused mid-run, after the folder)
    (["--omega-per-px", "1e5"], "omega_0 = omega_per_px (100000) x"),
    (["--omega-per-px", "1e5", "--upscale", "--scale", "2"], "must be a finite number > 0 and <= 1e+06"),
])
def test_bad_inputs(tmp_path, color_png, capsys, args, message):
    rc = cli.main(["sr", "--image", color_png, "--profile", "quick", "--out", str(tmp_path / "x"),
                   "--no-progress", *args])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before any work or any file


def test_missing_and_unreadable_files(tmp_path, capsys):
    assert cli.main(["sr", "--image", str(tmp_path / "nope.png"), "--out", str(tmp_path / "x")]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    assert cli.main(["sr", "--image", str(bad), "--out", str(tmp_path / "y")]) == 2
    assert "cannot read image" in capsys.readouterr().err


# ---------------------------------------------------------------- resume

def test_resume_takes_the_finished_methods_from_the_run_folder(tmp_path, color_png, capsys, interrupt_on_call):
    """Ctrl-C during the consistent fit keeps every finished method in RUN/parts/; --resume runs
    only the interrupted one and gives the rows of an uninterrupted run."""
    args = ["sr", "--image", color_png, "--scale", "2", "--profile", "quick", "--steps", "20", "--no-progress"]
    assert cli.main([*args, "--out", str(tmp_path / "fresh")]) == 0
    calls = interrupt_on_call(sr, "siren_consistent", 1)
    assert cli.main([*args, "--out", str(tmp_path / "cut")]) == 130
    assert "kept in the run folder (parts/)" in capsys.readouterr().err
    parts = tmp_path / "cut" / "parts"
    assert sorted(p.stem for p in parts.glob("*.npz")) == sorted(set(sr.METHODS) - {"siren-consistent"})
    assert not (tmp_path / "cut" / "metrics.json").exists()
    naive = interrupt_on_call(sr, "siren_naive", 0)  # counts, never raises
    assert cli.main([*args, "--out", str(tmp_path / "cut"), "--resume"]) == 0
    assert len(calls) == 2 and naive == []  # the consistent fit ran again, the naive one did not
    fresh, cut = ({r["method"]: r for r in json.loads((tmp_path / d / "metrics.json").read_text())["rows"]}
                  for d in ("fresh", "cut"))
    assert fresh.keys() == cut.keys()
    for m in fresh:
        assert {k: v for k, v in fresh[m].items() if k != "seconds"} == \
               {k: v for k, v in cut[m].items() if k != "seconds"}, m
    # a start without --resume into the unfinished folder is refused: its parts are only --resume's
    (tmp_path / "cut" / "metrics.json").unlink()
    no_fit = [a for a in args if a not in ("--steps", "20")]  # --steps with no SIREN method is refused
    assert cli.main([*no_fit, "--out", str(tmp_path / "cut"), "--methods", "nearest"]) == 2
    assert "holds an unfinished run (parts/)" in capsys.readouterr().err
    assert sorted(p.stem for p in parts.glob("*.npz")) == sorted(sr.METHODS)
    # a damaged part is an error naming the file, not a crash or a silent rerun
    (parts / "nearest.npz").write_bytes(b"not a zip")
    rc = cli.main([*args, "--out", str(tmp_path / "cut"), "--resume"])
    assert rc == 2 and "nearest.npz is unreadable" in capsys.readouterr().err


def test_sr_table_resume_keeps_its_rows(tmp_path, color_png, monkeypatch, interrupt_on_call):
    from fastsiren.tasks import sr_table

    args = dict(profile="quick", images=(color_png,), scales=(2.0, 3.0), figures=tmp_path / "fig",
                figure_images=(color_png,))
    calls = interrupt_on_call(sr, "evaluate_image", 2)
    with pytest.raises(KeyboardInterrupt):
        sr_table.run_table(results=tmp_path / "t.json", **args)
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["complete"] is False and {r["scale"] for r in doc["rows"]} == {2.0}
    # a new run without --resume never overwrites the rows of the run cut short
    with pytest.raises(ValueError, match="t.json holds an unfinished table"):
        sr_table.run_table(results=tmp_path / "t.json", **{**args, "scales": (3.0,)})
    assert json.loads((tmp_path / "t.json").read_text()) == doc
    doc = sr_table.run_table(results=tmp_path / "t.json", resume=True, **args)
    assert len(calls) == 3  # x2 kept, x3 run
    assert doc["complete"] is True and sorted({r["scale"] for r in doc["rows"]}) == [2.0, 3.0]
    assert len(doc["rows"]) == 2 * len(sr.METHODS) and doc["resumed"][0]["rows"] == len(sr.METHODS)
    assert sorted(p.name for p in (tmp_path / "fig").rglob("*.png")) == ["sr-quick-tiny-x2.png", "sr-quick-tiny-x3.png"]
    # rows of other images or scales, or of other settings, are never mixed in
    with pytest.raises(ValueError, match=r"holds rows of \[\('.*tiny.png', 3.0\)\], which this run does not"):
        sr_table.run_table(results=tmp_path / "t.json", resume=True, **{**args, "scales": (2.0,)})
    monkeypatch.setitem(sr.PROFILE_DEFAULTS["quick"], "steps", 7)
    with pytest.raises(ValueError, match=r"other settings \(then, now\): \{'siren_settings.steps': \(60, 7\)\}"):
        sr_table.run_table(results=tmp_path / "t.json", resume=True, **args)
    # bad scales and images are refused before the first fit
    with pytest.raises(ValueError, match="scale must be a number >= 1"):
        sr_table.run_table(results=tmp_path / "u.json", **{**args, "scales": (2.0, 0.0)})
    (tmp_path / "other").mkdir()
    twin = _write(tmp_path / "other" / "tiny.png", np.zeros((30, 26), np.uint8))
    with pytest.raises(ValueError, match="would share the figure name 'tiny'"):  # both drawn
        sr_table.run_table(results=tmp_path / "u.json", **{**args, "images": (color_png, twin),
                                                             "figure_images": (color_png, twin)})
    with pytest.raises(ValueError, match=r"--scales lists 2.0 more than once"):
        sr_table.run_table(results=tmp_path / "u.json", **{**args, "scales": (2.0, 3.0, 2.0)})
    with pytest.raises(ValueError, match="expected comma-separated numbers"):
        sr_table.main(["--profile", "quick", "--scales", "2,x", "--results", str(tmp_path / "u.json")])
    assert len(calls) == 3 and not (tmp_path / "u.json").exists()


def test_srcnn_training_resumes_exactly(tmp_path, monkeypatch, request):
    """The SRCNN training (minutes) keeps a checkpoint: Ctrl-C mid-step and --resume give the
    weights of an uninterrupted run (patch sampler and schedule included)."""
    import signal

    from fastsiren.tasks import sr_train

    img = sr.data.read_image("astronaut")[:72, :72]
    monkeypatch.setattr(sr_train, "training_images", lambda: [("a", img), ("b", img[::-1])])
    real, calls = sr_train.sample_batch, []

    def sample_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 7:
            signal.raise_signal(signal.SIGINT)  # during step 7, which is let finish
        return real(*args, **kwargs)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    kw = dict(steps=20, batch=4, patch=17, progress=False)
    whole, rec = sr_train.train_srcnn(**kw)
    monkeypatch.setattr(sr_train, "sample_batch", sample_batch)
    ck = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        sr_train.train_srcnn(checkpoint=ck, **kw)
    assert torch.load(ck, weights_only=False)["step"] == 7
    with pytest.raises(ValueError, match=r"other settings \(then, now\): \{'steps': \(20, 30\)\}"):
        sr_train.train_srcnn(checkpoint=ck, resume=True, **{**kw, "steps": 30})
    resumed, rec2 = sr_train.train_srcnn(checkpoint=ck, resume=True, **kw)
    assert len(calls) == 7 + 13 and rec2["train_psnr_last100"] == rec["train_psnr_last100"]
    for k, v in whole.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_comparison_figures_of_small_and_large_outputs(tmp_path, monkeypatch):
    """The evaluate figure shows the whole of an image under 16 px a side (its centre crop was
    a wrapped-around corner); the upscale figure of a large output is drawn subsampled."""
    shown = []
    real = sr.common.plt_figure

    def spy(*args, **kwargs):
        fig, axes = real(*args, **kwargs)
        for ax in np.ravel(axes):
            orig = ax.imshow
            ax.imshow = lambda img, *a, _orig=orig, **k: shown.append(np.shape(img)) or _orig(img, *a, **k)
        return fig, axes

    monkeypatch.setattr(sr.common, "plt_figure", spy)
    rng = np.random.default_rng(0)
    hr, lr = rng.random((12, 20, 3)), rng.random((6, 10, 3))
    sr.crop_figure(tmp_path / "c.png", hr, lr, {"bicubic": sr.upsample(lr, (12, 20), "bicubic")}, 2.0, "t")
    assert shown[:3] == [(12, 16, 3)] * 3 and shown[3] == (12, 20)
    assert common.figure_caption(tmp_path / "c.png").endswith("the absolute Y error of bicubic on the whole "
                                                              "image, the region outlined.")
    shown.clear()
    monkeypatch.setattr(sr, "FIGURE_MAX_SIDE", 16)
    sr.upscale_figure(tmp_path / "u.png", lr, rng.random((60, 100, 3)), "t")
    assert shown == [(9, 15, 3)] * 3  # every 7th pixel of 60 x 100
    assert "shown at 1/7 of the output's size" in common.figure_caption(tmp_path / "u.png")


def test_crop_window_is_where_bicubic_errs_most(tmp_path):
    """The crop figure enlarges the window of largest bicubic |delta Y| (a window on a grid of a
    quarter of its side), not the centre; the nearest method is the LR input enlarged, so the
    figure shows that image once."""
    rng = np.random.default_rng(0)
    hr = np.full((64, 64, 3), 0.5)
    hr[40:60, 4:24] = rng.random((20, 20, 3))  # all the detail (and bicubic's error) bottom left
    hr_shape, lr_shape = sr.sizes_for(hr.shape[:2], 2.0, 0)
    lr = sr.degrade(hr, lr_shape)
    assert sr.crop_window(hr, lr, 2.0) == (32, 0, 32, 32)
    near = sr.upsample(lr, hr_shape, "nearest")
    assert np.array_equal(sr.quantize(near), near)  # the nearest method's output (8-bit) is this image
    sr.crop_figure(tmp_path / "c.png", hr, lr, {"nearest": near, "bicubic": sr.upsample(lr, hr_shape, "bicubic")},
                   2.0, "t")
    caption = common.figure_caption(tmp_path / "c.png")
    assert "where bicubic upsampling errs most" in caption and "low-resolution input enlarged" in caption
