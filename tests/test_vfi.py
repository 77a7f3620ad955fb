"""Video frame interpolation: the IE metric, frame selection, warping, the CLI, bad inputs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fastsiren import cli, data, metrics
from fastsiren.tasks import common, vfi


def _moving_square(n: int = 5, h: int = 24, w: int = 32) -> np.ndarray:
    """(n, h, w, 3) uint8 frames: a bright square moving 2 px right per frame on a ramp."""
    frames = np.zeros((n, h, w, 3), np.uint8)
    frames[..., 0] = np.linspace(20, 120, w, dtype=np.uint8)[None, None]
    frames[..., 2] = 60
    for t in range(n):
        frames[t, 8:16, 4 + 2 * t:12 + 2 * t] = (230, 200, 40)
    return frames


def _write_mp4(path, frames: np.ndarray) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())


def _write_folder(folder, frames: np.ndarray) -> None:
    from PIL import Image

    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"frame_{i:03d}.png")


def _cli(args, capsys) -> tuple[int, str]:
    rc = cli.main(["vfi", *map(str, args), "--profile", "quick", "--no-progress", "--device", "cpu"])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


# ---------------------------------------------------------------- metric

def test_interpolation_error_hand_computed():
    gt = np.zeros((2, 2, 3))
    pred = gt.copy()
    pred[0, 0] = (3, 4, 0)  # one pixel off by a colour difference of norm 5
    pred[1, 1] = (0, 0, 1)  # another off by norm 1
    # RMS over the 4 pixels of the norms: sqrt((25 + 1) / 4)
    assert metrics.interpolation_error(pred, gt) == pytest.approx(np.sqrt(26 / 4))
    # a flat ground truth has zero gradient, so NIE = RMS of ||diff|| / sqrt(0 + 1) = IE
    assert metrics.normalized_interpolation_error(pred, gt) == pytest.approx(np.sqrt(26 / 4))


def test_score_uses_8bit_units():
    gt = np.full((8, 8, 3), 0.5)
    pred = gt + 10 / 255  # every channel 10 levels off -> ||(10, 10, 10)|| per pixel
    s = vfi.score(pred, gt)
    assert s["ie"] == pytest.approx(np.sqrt(300), abs=1e-3)
    assert s["psnr"] == pytest.approx(10 * np.log10(255 ** 2 / 100), abs=1e-3)


# ---------------------------------------------------------------- frame selection

def test_frame_offsets_inside_and_at_edges():
    assert vfi.frame_offsets(10, 1, 1) == [-1, 1]
    assert vfi.frame_offsets(10, 8, 1) == [-1, 1]
    assert vfi.frame_offsets(10, 5, 2) == [-1, 1]
    # context 2 adds -+3G where it fits: at frame 2 only +3 fits, at frame 5 both do
    assert vfi.frame_offsets(10, 2, 1, context=2) == [-1, 1, 3]
    assert vfi.frame_offsets(10, 5, 1, context=2) == [-3, -1, 1, 3]
    for frame, gap in ((0, 1), (9, 1), (1, 2), (8, 2)):
        with pytest.raises(ValueError, match="--frame"):
            vfi.frame_offsets(10, frame, gap)
    with pytest.raises(ValueError, match="--gap"):
        vfi.frame_offsets(10, 5, 0)
    with pytest.raises(ValueError, match="at least 3 frames"):
        vfi.frame_offsets(2, 1, 1)


def test_table_frames_are_valid_for_every_gap():
    ks = vfi.table_frames(120, 5, (1, 2))
    assert len(ks) == 5 and ks[0] == 2 and ks[-1] == 117
    for k in ks:
        for g in (1, 2):
            vfi.frame_offsets(120, k, g)


# ---------------------------------------------------------------- warping

def test_sample_and_synthesize_undo_a_known_shift():
    rng = np.random.default_rng(0)
    h, w = 12, 16
    img = rng.random((h, w, 3))
    points = data.grid((h, w))
    t = vfi.to_image_tensor(img)
    # sampling at the pixel centres returns the image itself
    assert torch.allclose(vfi.sample(t, points).reshape(h, w, 3), t[0].permute(1, 2, 0), atol=1e-6)
    # frame 0 shifted 1 px left and frame 1 shifted 1 px right of the middle: m = +1 px in x
    f0, f1 = np.roll(img, -1, axis=1), np.roll(img, 1, axis=1)
    m = torch.tensor([0.0, 2.0 / w]).expand(h * w, 2)
    mid = vfi.synthesize(vfi.to_image_tensor(f0), vfi.to_image_tensor(f1), points, -m, m).reshape(h, w, 3)
    assert np.allclose(mid.numpy()[:, 1:-1], img[:, 1:-1], atol=1e-5)


def test_occlusion_sharpness_zero_is_the_plain_average_and_the_dev_run_scores_each(tmp_path, capsys):
    """--occlusion 0 blends the two warps equally whatever their Jacobians; the occlusion dev run
    scores both flow methods at each sharpness on the dev triplets, from one field per triplet."""
    rng = np.random.default_rng(0)
    f0, f1 = (torch.from_numpy(rng.random((1, 3, 6, 8))).float() for _ in range(2))
    points = data.grid((6, 8))
    shift = torch.full((48, 2), 0.1)
    squeeze = torch.eye(2).expand(48, 2, 2) * 0.5
    plain = vfi.synthesize(f0, f1, points, -shift, shift)
    assert torch.equal(vfi.synthesize(f0, f1, points, -shift, shift, squeeze, torch.eye(2).expand(48, 2, 2), 0.0),
                       plain)
    assert not torch.allclose(vfi.synthesize(f0, f1, points, -shift, shift, squeeze,
                                             torch.eye(2).expand(48, 2, 2), 4.0), plain)
    cfg = vfi.VfiConfig(profile="quick", flow_steps=4, device="cpu", progress=False)
    doc = vfi.run_dev_occlusion(cfg, tmp_path / "occ.json", frames={"bikes": (33,)}, values=(0.0, 4.0))
    assert doc["complete"] and doc["occlusion_values"] == [0.0, 4.0] and doc["dev_frames"] == {"bikes": (33,)}
    methods = [r["method"] for r in doc["rows"] if r["gap"] == 1]
    assert methods == ["blend", "tvl1, occlusion 0", "siren-flow, occlusion 0", "tvl1, occlusion 4",
                       "siren-flow, occlusion 4"]
    assert len(doc["rows"]) == 2 * len(methods)  # gaps 1 and 2
    assert common.read_json(tmp_path / "occ.json")["rows"] == doc["rows"]
    # one field per method and triplet, blended at each sharpness: one time for all of them
    secs = {(r["method"].split(",")[0], r["gap"]): r["seconds"] for r in doc["rows"] if r["method"] != "blend"}
    assert all(r["seconds"] == secs[r["method"].split(",")[0], r["gap"]] for r in doc["rows"] if r["method"] != "blend")
    # the sharpness it sweeps and the space-time SIREN it does not run are not its settings: another
    # default of either resumes the file
    assert "occlusion" not in doc["settings"] and "fits" not in doc["settings"]
    again = vfi.run_dev_occlusion(dataclasses.replace(cfg, occlusion=2.0, fits=5), tmp_path / "occ.json",
                                  frames={"bikes": (33,)}, values=(0.0, 4.0), resume=True)
    assert again["rows"] == doc["rows"]
    with pytest.raises(ValueError, match="flow_steps"):
        vfi.run_dev_occlusion(dataclasses.replace(cfg, flow_steps=5), tmp_path / "occ.json",
                              frames={"bikes": (33,)}, values=(0.0, 4.0), resume=True)
    rc, text = _cli(["--dev", "--dev-occlusion", "--out", tmp_path / "x.json"], capsys)
    assert rc == 2 and "choose one mode" in text
    # a single run's triplet options mean nothing to the table and dev runs, and the table's to a single run
    rc, text = _cli(["--table", "--video", "bikes", "--out", tmp_path / "t.json"], capsys)
    assert rc == 2 and "--video applies to a single run; --table runs its own triplets" in text
    rc, text = _cli(["--dev-flow", "--frame", "3", "--out", tmp_path / "t.json"], capsys)
    assert rc == 2 and "--frame applies to a single run" in text
    rc, text = _cli(["--triplets", "3", "--out", tmp_path / "r"], capsys)
    assert rc == 2 and "--triplets applies to --table only" in text
    assert "video" not in doc["settings"] and "frame" not in doc["settings"]  # the dev run's own triplets


def test_the_flow_dev_run_scores_each_setting_of_each_flow_method(tmp_path, capsys):
    """--dev-flow: the motion SIREN at each (blur, smooth) and TV-L1 at each attachment, on the dev
    triplets; the swept settings are not the run's settings (another default resumes it)."""
    cfg = vfi.VfiConfig(profile="quick", flow_steps=4, device="cpu", progress=False)
    args = dict(frames={"bikes": (33,)}, gaps=(1,), blurs=(2.0,), smooths=(0.01, 0.1), attachments=(5.0, 15.0))
    doc = vfi.run_dev_flow(cfg, tmp_path / "flow.json", **args)
    assert [r["method"] for r in doc["rows"]] == [
        "blend", "tvl1, attachment 5", "tvl1, attachment 15", "siren-flow, blur 2, smooth 0.01",
        "siren-flow, blur 2, smooth 0.1"]
    ies = [r["ie"] for r in doc["rows"]]
    assert len(set(ies[1:3])) == 2 and len(set(ies[3:])) == 2  # each setting really ran
    assert doc["flow_grid"] == {"blur": [2.0], "smooth": [0.01, 0.1], "tvl1_attachment": [5.0, 15.0]}
    assert not {"blur", "smooth", "tvl1_attachment", "fits"} & set(doc["settings"])
    again = vfi.run_dev_flow(dataclasses.replace(cfg, blur=8.0, tvl1_attachment=30.0), tmp_path / "flow.json",
                             resume=True, **args)
    assert again["rows"] == doc["rows"]
    rc, text = _cli(["--video", "bikes", "--tvl1-attachment", "0", "--out", tmp_path / "x"], capsys)
    assert rc == 2 and "tvl1_attachment must be > 0" in text
    with pytest.raises(ValueError, match=r"flow_omega must be a finite number > 0 and <= 1e\+06"):
        vfi.resolve(dataclasses.replace(cfg, flow_omega=5e6))  # the motion SIREN's outputs were noise


def test_the_smoothness_prior_is_in_pixels_per_pixel(monkeypatch):
    """The motion SIREN's prior penalises the field's Jacobian in pixels per pixel, whatever the
    frame's aspect ratio: a linear field m_px = J x_px on a 32x48 frame, written in grid units,
    comes back as J (the grid-unit Jacobian weighted its cross terms by (w/h)^2 against each other)."""
    h, w = 32, 48
    px = torch.tensor([h / 2.0, w / 2.0], dtype=torch.float64)
    jac = torch.tensor([[0.3, -0.7], [0.2, 0.1]], dtype=torch.float64)
    grid_jac = jac * px.view(1, 2) / px.view(2, 1)  # d(m_i / px_i) / d(x_j / px_j)
    assert torch.allclose(vfi.pixel_jacobian(grid_jac.expand(5, 2, 2), px), jac.expand(5, 2, 2))
    seen = []
    real = vfi.pixel_jacobian
    monkeypatch.setattr(vfi, "pixel_jacobian", lambda g, p: seen.append(p.tolist()) or real(g, p))
    frame = np.zeros((h, w, 3))
    cfg = vfi.resolve(vfi.VfiConfig(profile="quick", flow_steps=2, device="cpu", progress=False))
    vfi.flow_siren(frame, frame, cfg, torch.device("cpu"))
    assert seen and seen[0] == [h / 2.0, w / 2.0]


def test_flow_fields_are_pixels_middle_to_next_in_dy_dx_order():
    """Both flow methods report the displacement from the middle frame to the next one in
    pixels of the processed frames, (dy, dx): on a non-square textured frame whose right half
    moves by a known (dy, dx) = (0.75, -1.5) px from the middle to the next frame while the
    left half stays, each recovers that motion and about zero on the static half (the figures
    draw these fields; a grid-unit factor, an h/w swap, a sign or an axis swap would fail)."""
    from scipy.ndimage import gaussian_filter, shift

    h, w, pad, move = 32, 48, 8, np.array([0.75, -1.5])
    rng = np.random.default_rng(0)
    tex = gaussian_filter(rng.random((h + 2 * pad, w + 2 * pad)), 2.0)
    tex = (tex - tex.min()) / np.ptp(tex)

    def frame(s: int) -> np.ndarray:  # s = -1: frame K-G, +1: frame K+G
        img = tex.copy()
        half = (w + 2 * pad) // 2
        img[:, half:] = shift(tex, s * move, order=3, mode="reflect")[:, half:]
        return np.repeat(img[pad:-pad, pad:-pad, None], 3, -1).clip(0, 1)

    f0, f1 = frame(-1), frame(1)
    cfg = vfi.resolve(vfi.VfiConfig(profile="cpu", flow_steps=100, flow_hidden=32, flow_batch=1024, blur=2.0,
                                    device="cpu", progress=False))
    _, siren_flow = vfi.flow_siren(f0, f1, cfg, torch.device("cpu"))
    _, tvl1_flow = vfi.tvl1_interpolate(f0, f1)
    for flow in (siren_flow, tvl1_flow):
        assert flow.shape == (h, w, 2)
        static, moving = flow[3:-3, 3:w // 2 - 5], flow[3:-3, w // 2 + 5:-3]
        assert np.allclose(np.median(moving, (0, 1)), move, atol=0.15)
        assert np.abs(np.median(static, (0, 1))).max() < 0.1


# ---------------------------------------------------------------- space-time SIREN

def test_spacetime_siren_static_clip_predicts_the_frame():
    """Two identical frames: the middle must be that frame. With the time weights starting at
    zero the network is one image at every t and stays so (IE 0.16 here); the paper's random
    init on t at time scale 1 gives the two samples unrelated features and the middle is
    noise (IE 65), so this fails if the zero init is lost."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    frame = np.clip(gaussian_filter(rng.random((12, 16, 3)), (1.5, 1.5, 0)) * 2 - 0.5, 0, 1)
    cfg = vfi.resolve(vfi.VfiConfig(profile="quick", steps=200, lr=3e-3, time_scale=1.0, progress=False))
    torch.manual_seed(0)
    hist: list = []
    pred, raw = vfi.spacetime_siren(np.stack([frame, frame]), [-1, 1], cfg, torch.device("cpu"), hist)
    assert pred.shape == raw.shape == frame.shape
    assert vfi.score(raw, frame)["ie"] < 1.0 and vfi.score(pred, frame)["ie"] < 1.0
    assert hist[-1]["step"] == 200 and hist[-1]["loss"] < hist[0]["loss"]


def test_spacetime_siren_without_time_dependence_is_the_blend():
    """After 3 steps each network is still about one image at every t (zero time init), far
    from both frames: the raw sample is poor, while the prediction, the blend plus each
    fit's curvature in t, is the blend up to f's tiny time dependence."""
    rng = np.random.default_rng(1)
    f0, f1 = rng.random((10, 12, 3)), rng.random((10, 12, 3))
    cfg = vfi.resolve(vfi.VfiConfig(profile="quick", steps=3, progress=False))
    hist: list = []
    pred, raw = vfi.spacetime_siren(np.stack([f0, f1]), [-1, 1], cfg, torch.device("cpu"), hist)
    blend = vfi.blend(f0, f1)
    assert np.abs(raw - blend).max() > 0.2
    assert np.abs(pred - blend).max() < 0.02
    assert sorted({h["seed"] for h in hist}) == [cfg.seed, cfg.seed + 1]  # cfg.fits = 2 fits


def test_curvature_weight_keeps_what_the_fits_agree_on():
    rng = np.random.default_rng(2)
    c = rng.normal(size=(9, 11, 3))
    assert np.allclose(vfi.curvature_weight([c]), 1.0)  # one fit: no shrinkage
    assert np.allclose(vfi.curvature_weight([c, c], sigma=0.0), 1.0)  # agreement: all signal
    assert np.allclose(vfi.curvature_weight([c, -c], sigma=0.0), 0.0)  # opposite: no signal
    # hand-computed for two fits: signal c0 c1, noise of the mean (c0 - c1)^2 / 4
    c0, c1 = np.full((1, 1, 1), 3.0), np.full((1, 1, 1), 1.0)
    assert np.allclose(vfi.curvature_weight([c0, c1], sigma=0.0), 3.0 / (3.0 + 1.0))
    noisy = vfi.curvature_weight([c, c + rng.normal(size=c.shape)], sigma=2.0)
    assert ((noisy > 0) & (noisy < 1)).all()


def test_spacetime_predict_is_blend_plus_weighted_curvature_limited_to_the_neighbours():
    prev, nxt = np.full((4, 5, 3), 0.2), np.full((4, 5, 3), 0.6)
    f = np.stack([prev, np.full_like(prev, 0.5), nxt])  # curvature term 0.5 - 0.4 = 0.1
    assert np.allclose(vfi.spacetime_predict([f], prev, nxt, None, False), 0.5)
    big = np.stack([prev, np.full_like(prev, 0.9), nxt])  # 0.4 + 0.5 leaves [0.2, 0.6]
    assert np.allclose(vfi.spacetime_predict([big], prev, nxt, None, True), 0.6)
    assert np.allclose(vfi.spacetime_predict([big], prev, nxt, None, False), 0.9)
    flat = np.stack([prev, 0.5 * (prev + nxt), nxt])
    assert np.allclose(vfi.spacetime_predict([flat, flat], prev, nxt), vfi.blend(prev, nxt))


def test_dev_frames_are_disjoint_from_the_table(tmp_path):
    for clip in vfi.DEV_FRAMES:
        n: list[int] = []
        data.read_video(clip, frames=lambda count, n=n: n.append(count) or [0])
        assert vfi.dev_overlap(clip, vfi.table_frames(n[0], vfi.TABLE_TRIPLETS, (1, 2)), (1, 2)) == [], clip
    # a denser table would share frames with the dev subset: refused before any fit runs, even
    # when only a later clip collides (6 frames: bikes is clear, bigbuckbunny is not)
    with pytest.raises(ValueError, match="triplets=6 puts the bigbuckbunny table on frames"):
        vfi.run_table(vfi.VfiConfig(profile="quick"), tmp_path / "t.json", tmp_path, triplets=6)
    assert not (tmp_path / "t.json").exists() and not list(tmp_path.glob("*.png"))


# ---------------------------------------------------------------- CLI

def _check_run(out, n_methods: int = 4) -> dict:
    for name in ("pred.png", "gt.png", "blend.png", "comparison.png", "metrics.json", "config.json"):
        assert (out / name).exists(), name
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["task"] == "vfi" and doc["profile"] == "quick"
    rows = {r["method"]: r for r in doc["rows"]}
    assert sorted(rows) == sorted(vfi.METHODS)
    for r in rows.values():
        assert np.isfinite([r["ie"], r["nie"], r["psnr"], r["ssim"]]).all()
    return rows


def test_cli_on_a_video_file(tmp_path, capsys):
    frames = _moving_square()
    video = tmp_path / "clip.mp4"
    _write_mp4(video, frames)
    assert data.read_video(video).shape == (5, 24, 32, 3)
    rc, text = _cli(["--video", video, "--frame", 2, "--out", tmp_path / "run"], capsys)
    assert rc == 0, text
    rows = _check_run(tmp_path / "run")
    # the square moves 2 px a frame: the blend ghosts it, a flow method must do better
    assert min(rows["tvl1"]["ie"], rows["siren-flow"]["ie"]) < rows["blend"]["ie"]


def test_resume_reruns_into_the_run_folder(tmp_path, capsys):
    """--resume is accepted by every task: vfi must honour it (rerun into its own finished run
    folder), not ignore it and refuse the folder as taken."""
    _write_folder(tmp_path / "frames", _moving_square())
    args = ["--video", tmp_path / "frames", "--frame", 2, "--steps", 5, "--flow-steps", 5, "--fits", 1,
            "--out", tmp_path / "run"]
    assert _cli(args, capsys)[0] == 0
    rc, text = _cli(args, capsys)
    assert rc == 2 and "already holds a finished run" in text
    rc, text = _cli([*args, "--resume"], capsys)
    assert rc == 0, text
    assert (tmp_path / "run" / "metrics.json").exists()
    rc, text = _cli([*args, "--gap", 2, "--resume"], capsys)
    assert rc == 2 and "different config" in text


def test_cli_on_a_folder_of_frames(tmp_path, capsys):
    _write_folder(tmp_path / "frames", _moving_square())
    rc, text = _cli(["--video", tmp_path / "frames", "--frame", 2, "--gap", 2, "--context", 2,
                     "--out", tmp_path / "run"], capsys)
    assert rc == 0, text
    doc = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert doc["given_frames"] == [0, 4]  # context 2 asks for -+6 too, outside the clip
    _check_run(tmp_path / "run")


# ---------------------------------------------------------------- bad input

def test_bad_inputs_name_the_argument(tmp_path, capsys):
    frames = _moving_square()
    _write_folder(tmp_path / "ok", frames)
    rc, text = _cli(["--video", tmp_path / "ok", "--frame", 4, "--out", tmp_path / "a"], capsys)
    assert rc == 2 and "--frame 4" in text and "0..4" in text
    rc, text = _cli(["--video", tmp_path / "ok", "--frame", 2, "--gap", 0, "--out", tmp_path / "b"], capsys)
    assert rc == 2 and "--gap" in text

    _write_folder(tmp_path / "two", frames[:2])
    rc, text = _cli(["--video", tmp_path / "two", "--frame", 1, "--out", tmp_path / "c"], capsys)
    assert rc == 2 and "--video" in text and "at least 3 frames" in text

    _write_folder(tmp_path / "mixed", frames)
    from PIL import Image

    Image.fromarray(frames[0][:20]).save(tmp_path / "mixed" / "frame_002.png")
    rc, text = _cli(["--video", tmp_path / "mixed", "--frame", 2, "--out", tmp_path / "d"], capsys)
    assert rc == 2 and "--video" in text and "different sizes" in text

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    rc, text = _cli(["--video", bad, "--frame", 1, "--out", tmp_path / "e"], capsys)
    assert rc == 2 and "--video" in text and "cannot decode" in text

    rc, text = _cli(["--video", tmp_path / "missing.mp4", "--frame", 1, "--out", tmp_path / "f"], capsys)
    assert rc == 2 and "--video" in text and "not found" in text
    rc, text = _cli(["--video", tmp_path / "ok", "--frame", 2, "--smooth", "inf", "--out", tmp_path / "g"], capsys)
    assert rc == 2 and "smooth must be >= 0 and finite" in text
    rc, text = _cli(["--video", tmp_path / "ok", "--frame", 2, "--size", 4, "--out", tmp_path / "h"], capsys)
    assert rc == 2 and "size must be >= 8" in text
    # the long side is --size: 24x32 frames at --size 8 are 6x8, too small for the scores' SSIM
    rc, text = _cli(["--video", tmp_path / "ok", "--frame", 2, "--size", 8, "--out", tmp_path / "i"], capsys)
    assert rc == 2 and "--size 8 gives 6x8 frames" in text
    assert not any((tmp_path / x).exists() for x in "abcdefghi")  # nothing written before the checks


def test_cli_table_and_dev_modes_reach_their_runs(tmp_path, capsys, monkeypatch):
    """The --table and --dev wiring (the runs themselves take the bundled clips for minutes)."""
    seen = {}

    def fake_table(cfg, out, figures, triplets, resume):
        seen["table"] = (cfg.fits, out, figures, triplets, resume)
        return {"summary": [{"gap": 0, "video": "bikes", "method": "blend", "ie": 1.0, "n": 2}]}

    def fake_dev(cfg, out, resume):
        seen["dev"] = (cfg.fits, out, resume)
        return {"summary": []}

    monkeypatch.setattr(vfi, "run_table", fake_table)
    monkeypatch.setattr(vfi, "run_dev", fake_dev)
    rc, text = _cli(["--table", "--triplets", 3, "--fits", 3, "--figures", tmp_path / "f"], capsys)
    assert rc == 0 and "bikes" in text, text
    assert seen["table"] == (3, Path("docs/results/vfi-quick.json"), tmp_path / "f", 3, False)
    rc, text = _cli(["--dev", "--out", tmp_path / "dev.json", "--resume"], capsys)
    assert rc == 0 and seen["dev"] == (None, tmp_path / "dev.json", True)
    # --out names the results file in these modes: a folder is refused before the first fit
    seen.clear()
    for mode in ("--table", "--dev"):
        rc, text = _cli([mode, "--out", tmp_path], capsys)
        assert rc == 2 and f"--out {tmp_path} is a folder" in text and "results JSON" in text, text
    assert not seen


# ---------------------------------------------------------------- resume

def test_resume_takes_the_finished_methods_from_the_run_folder(tmp_path, capsys, monkeypatch, request,
                                                                 interrupt_on_call):
    """Ctrl-C in the middle of the motion SIREN's fit: the finished methods are in RUN/parts/,
    the fit's checkpoint holds its last whole step; --resume continues that fit alone and gives
    the rows of an uninterrupted run."""
    import signal

    _write_folder(tmp_path / "frames", _moving_square())
    args = ["--video", tmp_path / "frames", "--frame", 2, "--steps", 10, "--flow-steps", 12, "--fits", 2]
    assert _cli([*args, "--out", tmp_path / "fresh"], capsys)[0] == 0
    real_flow, real_sample, calls = vfi.flow_siren, vfi.sample, []

    def flow(*a, **k):  # arm the Ctrl-C below for the first motion fit only
        calls.append("flow")
        return real_flow(*a, **k)

    def sample(*a, **k):  # two calls a step: Ctrl-C during step 5, which is let finish
        if calls == ["flow"]:
            calls.append(0)
        if len(calls) > 1 and isinstance(calls[-1], int):
            calls[-1] += 1
            if calls[-1] == 9:
                signal.raise_signal(signal.SIGINT)
        return real_sample(*a, **k)

    monkeypatch.setattr(vfi, "flow_siren", flow)
    monkeypatch.setattr(vfi, "sample", sample)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's, whatever pytest left
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    rc, text = _cli([*args, "--out", tmp_path / "cut"], capsys)
    assert rc == 130 and "rerun with --resume" in text
    parts = tmp_path / "cut" / "parts"
    assert sorted(p.stem for p in parts.glob("*.npz")) == ["blend", "siren", "tvl1"]
    assert sorted(p.name for p in parts.glob("*.pt")) == ["siren-flow.pt", "siren.fit0.pt", "siren.fit1.pt"]
    before = torch.load(parts / "siren-flow.pt", weights_only=False)
    assert before["step"] == 5
    fits = interrupt_on_call(vfi, "spacetime_siren", 0)
    rc, text = _cli([*args, "--out", tmp_path / "cut", "--resume"], capsys)
    assert rc == 0, text
    assert calls.count("flow") == 2 and fits == []  # only the interrupted method ran again, from step 5
    hist = [[{k: v for k, v in h.items() if k != "seconds"}
             for h in json.loads((tmp_path / d / "metrics.json").read_text())["history"]["siren-flow"]]
            for d in ("fresh", "cut")]
    assert hist[0] == hist[1] and len(hist[0]) == 12  # the same losses, no hole where it stopped
    fresh, cut = ({r["method"]: r for r in json.loads((tmp_path / d / "metrics.json").read_text())["rows"]}
                  for d in ("fresh", "cut"))
    assert fresh.keys() == cut.keys() == set(vfi.METHODS)
    for m in fresh:
        assert {k: v for k, v in fresh[m].items() if k != "seconds"} == \
               {k: v for k, v in cut[m].items() if k != "seconds"}, m
    assert (tmp_path / "cut" / "flow.png").exists()  # both flows (tvl1 from its part) drawn
    after = torch.load(parts / "siren-flow.pt", weights_only=False)  # the fitted motion SIREN is kept
    assert after["step"] == 12 and before["seconds"] < after["seconds"] <= cut["siren-flow"]["seconds"]


def test_table_and_dev_resume_keep_their_triplets(tmp_path, interrupt_on_call, monkeypatch):
    """The table and the dev run rewrite their results file after every triplet; --resume keeps
    those triplets (and the table's figure) and runs the rest; other settings are refused."""
    _write_folder(tmp_path / "frames", _moving_square())
    clip = str(tmp_path / "frames")
    cfg = vfi.VfiConfig(profile="quick", steps=5, flow_steps=5, fits=2, device="cpu", progress=False)
    table = dict(clips=(clip,), triplets=2, gaps=(1,), methods=("blend", "tvl1", "siren"))
    calls = interrupt_on_call(vfi, "interpolate", 2)
    with pytest.raises(KeyboardInterrupt):
        vfi.run_table(cfg, tmp_path / "t.json", tmp_path / "fig", **table)
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["complete"] is False and {r["frame"] for r in doc["rows"]} == {1}
    # without --resume the cut run's rows are never overwritten, and a --figures that is a file or
    # a backend that cannot run is refused before the clips are decoded (they were after it)
    read_video = data.read_video
    decoded = interrupt_on_call(data, "read_video", 1)
    with pytest.raises(ValueError, match="t.json holds an unfinished table"):
        vfi.run_table(cfg, tmp_path / "t.json", tmp_path / "fig", **table)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="--figures .*file is a file"):
        vfi.run_table(cfg, tmp_path / "u.json", tmp_path / "file", **table)
    with pytest.raises(RuntimeError, match="backend 'cuda' cannot run on cpu"):
        vfi.run_table(dataclasses.replace(cfg, backend="cuda"), tmp_path / "u.json", tmp_path / "fig", **table)
    assert decoded == [] and json.loads((tmp_path / "t.json").read_text()) == doc
    monkeypatch.setattr(data, "read_video", read_video)
    figure = tmp_path / "fig" / "vfi-quick-frames.png"
    assert figure.exists()  # the best triplet so far is drawn before its rows are written
    doc = vfi.run_table(cfg, tmp_path / "t.json", tmp_path / "fig", resume=True, **table)
    assert len(calls) == 3 and doc["complete"] is True
    assert sorted({r["frame"] for r in doc["rows"]}) == [1, 3] and len(doc["rows"]) == 6
    assert doc["resumed"][0]["rows"] == 3 and doc["summary"][0]["n"] == 2
    with pytest.raises(ValueError, match=r"\{'settings.steps': \(5, 6\)\}"):
        vfi.run_table(dataclasses.replace(cfg, steps=6), tmp_path / "t.json", tmp_path / "fig", resume=True, **table)
    with pytest.raises(ValueError, match=r"holds rows of \[\('.*frames', 3, 1\)\], which this run does not"):
        vfi.run_table(cfg, tmp_path / "t.json", tmp_path / "fig", resume=True, **{**table, "triplets": 1})
    (tmp_path / "other").mkdir()
    _write_folder(tmp_path / "other" / "frames", _moving_square())
    with pytest.raises(ValueError, match="would share the figure name 'frames'"):
        twins = (clip, str(tmp_path / "other" / "frames"))
        vfi.run_table(cfg, tmp_path / "u.json", tmp_path / "fig", **{**table, "clips": twins})
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="bad.json is not a results document"):
        vfi.run_table(cfg, tmp_path / "bad.json", tmp_path / "fig", resume=True, **table)

    samples = interrupt_on_call(vfi, "spacetime_samples", 2)
    dev = dict(frames={clip: (1, 3)}, gaps=(1,))
    with pytest.raises(KeyboardInterrupt):
        vfi.run_dev(cfg, tmp_path / "d.json", **dev)
    doc = vfi.run_dev(cfg, tmp_path / "d.json", resume=True, **dev)
    assert len(samples) == 3 and doc["complete"] is True
    assert sorted({r["frame"] for r in doc["rows"]}) == [1, 3]


def test_summary_figure_plots_each_method_against_the_blend(tmp_path):
    """The table's summary figure: per clip and gap, IE minus the blend's on the same triplet
    (mean and spread over the triplets, their count in the tick labels)."""
    import matplotlib.pyplot as plt

    # siren is the blend - 1 - k/2 on frame k (mean -1.5, spread over frames 0, 1, 2), tvl1 the blend
    rows = [{"video": "clip", "gap": g, "frame": k, "method": m,
             "ie": 10.0 + k - (1 + k / 2) * (m == "siren")}
            for g in (1, 2) for k in range(3) for m in ("blend", "tvl1", "siren")]
    vfi.plot_summary(tmp_path / "ie.png", rows)
    assert "minus that of the linear blend" in common.figure_caption(tmp_path / "ie.png")
    drawn = []
    real = common.save_figure
    try:
        common.save_figure = lambda fig, path, **kw: drawn.append(fig)
        vfi.plot_summary(tmp_path / "ie2.png", rows)
    finally:
        common.save_figure = real
    (fig,) = drawn
    ax = fig.axes[0]
    heights = sorted(round(b.get_height(), 6) for b in ax.patches)
    assert heights == [-1.5, -1.5, 0.0, 0.0]  # siren at both gaps, tvl1 at both: against the blend
    spreads = [ln for coll in ax.collections for ln in coll.get_segments()]  # the error bars
    assert sorted(round(abs(seg[1][1] - seg[0][1]), 6) for seg in spreads) == [0.0, 0.0,
                                                                                 round(2 * np.std([0, .5, 1]), 6),
                                                                                 round(2 * np.std([0, .5, 1]), 6)]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["clip\ngap 1\nn = 3", "clip\ngap 2\nn = 3"]
    assert len(ax.patches) == 4  # no bar for the blend itself
    plt.close(fig)
