"""Data loading, Poisson target units and metrics against hand-computed values."""

import math

import numpy as np
import pytest
import torch

from fastsiren import data, metrics


def test_grid_is_pixel_centred_in_axis_order():
    g = data.grid((2, 4))
    assert g.shape == (8, 2)
    torch.testing.assert_close(g[:4, 1], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    torch.testing.assert_close(g[::4, 0], torch.tensor([-0.5, 0.5]))
    assert data.grid((3,)).shape == (3, 1) and data.grid((2, 2, 2)).shape == (8, 3)
    with pytest.raises(ValueError, match="shape"):
        data.grid((0, 3))


def test_size_arguments_are_positive_ints():
    from fastsiren.layers import build_model

    assert data.grid(4).shape == (4, 1)  # an int is a 1-D grid, as render takes it
    model = build_model("siren", in_features=2, out_features=1, hidden_features=8, hidden_layers=1)
    for call, name in [(lambda: data.grid((4.7, 4)), "shape"), (lambda: data.axis_coords(-1), "n"),
                       (lambda: data.load_image("camera", size=(0, 4)), "size"),
                       (lambda: data.load_image("camera", size=(4,)), "size"),
                       (lambda: model.render((4.5, 4)), "shape"), (lambda: model.render(("a", 4)), "shape"),
                       (lambda: model.render((4, 4), chunk=2.5), "chunk")]:
        with pytest.raises(ValueError, match=f"^{name} must be .*positive int"):
            call()


def test_bundled_names_are_offline_2d_images():
    names = data._skimage_names()
    assert "camera" in names and not {"eagle", "palisades_of_vogt", "lfw_subset"} & set(names)
    for name in names:  # every name offered reads, without a download, as a gray or RGB image
        assert data.read_image(name).shape[-1] in (1, 3), name
    with pytest.raises(ValueError, match="eagle.*needs a download"):
        data.read_image("eagle")
    with pytest.raises(ValueError, match="lfw_subset.*not one 2-D"):
        data.read_image("lfw_subset")


def test_load_bundled_image_range_and_size():
    img = data.load_image("camera")
    assert img.shape == (512, 512, 1) and img.dtype == np.float32
    assert -1 <= img.min() < -0.9 and 0.9 < img.max() <= 1
    small = data.load_image("astronaut", size=64)
    assert small.shape == (64, 64, 3)
    assert data.load_image("astronaut", size=(32, 48), gray=True).shape == (32, 48, 1)


def test_image_files_alpha_and_16bit(tmp_path):
    from PIL import Image

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 0  # fully transparent: composited over white
    Image.fromarray(rgba).save(tmp_path / "a.png")
    img = data.read_image(tmp_path / "a.png")
    assert img.shape == (8, 8, 3) and np.allclose(img, 1.0)
    arr16 = np.full((5, 6), 65535 // 2, np.uint16)
    Image.fromarray(arr16).save(tmp_path / "b.png")
    assert abs(data.read_image(tmp_path / "b.png").max() - 0.5) < 1e-3


def test_bad_image_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        data.read_image(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read image"):
        data.read_image(tmp_path / "junk.png")
    with pytest.raises(ValueError, match="bundled"):
        data.read_image("no_such_image_name")
    with pytest.raises(ValueError, match="empty string"):
        data.read_image("")
    with pytest.raises(ValueError, match="got the folder"):
        data.read_image(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.png: the file is empty"):  # was imageio's plugin advice
        data.read_image(tmp_path / "empty.png")
    with pytest.raises(ValueError, match="video must name .* got an empty string"):  # was the current folder
        data.read_video("")


def test_files_that_are_no_image_or_hold_bad_values_say_so(tmp_path):
    import tifffile

    (tmp_path / "notimage.png").write_text("hello\n")
    (tmp_path / "twobytes").write_bytes(b"ab")
    for name in ("notimage.png", "twobytes"):
        with pytest.raises(ValueError, match=f"cannot read image .*{name}: not an image in a format"):
            data.read_image(tmp_path / name)
    nan = np.full((8, 8), 0.5, np.float32)
    nan[3, 3] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", nan)
    with pytest.raises(ValueError, match="nan.tif has non-finite pixel values"):
        data.read_image(tmp_path / "nan.tif")
    tifffile.imwrite(tmp_path / "big.tif", np.full((8, 8), 1.5, np.float32))
    with pytest.raises(ValueError, match=r"big.tif: .* in \[0, 1\], .* has \[1.5, 1.5\]"):
        data.read_image(tmp_path / "big.tif")


def test_poisson_targets_in_coordinate_units():
    n = 32
    i = np.arange(n, dtype=np.float64)[:, None] * np.ones((1, n))
    ramp = 0.01 * i  # per-pixel step 0.01 along axis 0
    t = data.poisson_targets(ramp)
    inner = (slice(2, -2), slice(2, -2))
    # official: Sobel (8x the per-pixel difference) x10
    assert np.allclose(t.grad_official[inner][..., 0], 0.01 * 8 * 10)
    # coordinate units: pixel spacing 2/n -> d/dx = 0.01 / (2/n)
    assert np.allclose(t.grad[inner][..., 0], 0.01 * n / 2, rtol=1e-5)
    assert np.allclose(t.grad[inner][..., 1], 0, atol=1e-6)
    quad = 0.001 * i ** 2  # second difference 0.002 per pixel^2
    tq = data.poisson_targets(quad)
    assert np.allclose(tq.lap_official[inner], 0.002 * 1e4, rtol=1e-4)
    assert np.allclose(tq.lap[inner], 0.002 * (n / 2) ** 2, rtol=1e-4)


def test_poisson_targets_match_an_analytic_function():
    """For f = sin(pi x0) on the grid, the coordinate-unit targets approach f's derivatives."""
    n = 256
    g = data.grid((n, n), dtype=torch.float64).numpy().reshape(n, n, 2)
    f = np.sin(np.pi * g[..., 0])
    t = data.poisson_targets(f)
    inner = (slice(4, -4), slice(4, -4))
    assert np.abs(t.grad[inner][..., 0] - np.pi * np.cos(np.pi * g[..., 0])[inner]).max() < 0.01
    assert np.abs(t.lap[inner] + np.pi ** 2 * f[inner]).max() < 0.01


def test_psnr_ssim_by_hand():
    a = np.zeros((4, 4))
    b = a + 0.1
    assert metrics.psnr(b, a, data_range=1.0) == pytest.approx(20.0)
    assert metrics.psnr(b, a, data_range=2.0) == pytest.approx(20 + 20 * math.log10(2))
    assert metrics.psnr(a, a, 1.0) == float("inf")
    rng = np.random.default_rng(0)
    img = rng.random((32, 32))
    assert metrics.ssim(img, img, 1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr(a, np.zeros((3, 3)), 1.0)
    with pytest.raises(ValueError, match="data_range"):
        metrics.psnr(a, b, 0)


def test_metrics_reject_bad_inputs():
    img = np.random.default_rng(0).random((8, 8))
    cases = [(lambda: metrics.ssim(img, img, 0), "data_range must be a finite number > 0"),
             (lambda: metrics.ssim(img[:5], img[:5], 1.0), r"at least 7x7, got shape \(5, 8\)"),
             (lambda: metrics.ssim(img[None, ..., None], img[None, ..., None], 1.0), r"got shape \(1, 8, 8, 1\)"),
             (lambda: metrics.psnr(np.zeros(0), np.zeros(0), 1.0), "empty"),
             (lambda: metrics.mse(np.zeros((0, 3)), np.zeros((0, 3))), "empty"),
             (lambda: metrics.interpolation_error(np.zeros((0, 4, 3)), np.zeros((0, 4, 3))), "empty"),
             (lambda: metrics.psnr(img + 1j, img, 1.0), "pred is complex"),
             (lambda: metrics.psnr_y(np.zeros((8, 8, 2)), np.zeros((8, 8, 2))), r"\(H, W, 3\)"),
             (lambda: metrics.ssim_y(np.zeros((8, 8, 4)), np.zeros((8, 8, 4))), r"\(H, W, 3\)"),
             (lambda: metrics.normalized_interpolation_error(np.zeros(5), np.zeros(5)), r"got shape \(5,\)"),
             (lambda: metrics.normalized_interpolation_error(img, img, eps=0), "eps must be a finite number > 0")]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()


def test_y_channel_and_border_crop():
    white = np.ones((10, 10, 3))
    assert np.allclose(metrics.rgb_to_y(white), 235 / 255)
    assert np.allclose(metrics.rgb_to_y(np.zeros((2, 2, 3))), 16 / 255)
    gt = np.zeros((10, 10, 3))
    pred = gt.copy()
    pred[0, :, :] = 1.0  # error only in the border row
    assert metrics.psnr_y(pred, gt, border=1) == float("inf")
    assert metrics.psnr_y(pred, gt, border=0) < 30
    with pytest.raises(ValueError, match="border"):
        metrics.psnr_y(pred, gt, border=5)


def test_interpolation_error_by_hand():
    gt = np.zeros((2, 2, 3))
    pred = gt.copy()
    pred[0, 0] = [3.0, 4.0, 0.0]  # colour difference norm 5 at one of 4 pixels
    assert metrics.interpolation_error(pred, gt) == pytest.approx(math.sqrt(25 / 4))
    # flat ground truth: gradient 0, so NIE = sqrt(mean(d^2 / 1))
    assert metrics.normalized_interpolation_error(pred, gt) == pytest.approx(math.sqrt(25 / 4))
    gt2 = np.arange(16.0).reshape(4, 4)  # gradient (4, 1) everywhere -> |grad|^2 = 17
    assert metrics.normalized_interpolation_error(gt2 + 1, gt2) == pytest.approx(math.sqrt(1 / 18))


def test_read_bundled_video_and_frame_folder(tmp_path):
    v = data.read_video("bikes")
    assert v.ndim == 4 and v.shape[-1] == 3 and v.shape[0] >= 3 and 0 <= v.min() and v.max() <= 1
    from PIL import Image

    for k in range(3):
        Image.fromarray(np.full((6, 8, 3), 40 * k, np.uint8)).save(tmp_path / f"f{k:02d}.png")
    frames = data.read_video(tmp_path)
    assert frames.shape == (3, 6, 8, 3)
    Image.fromarray(np.zeros((5, 8, 3), np.uint8)).save(tmp_path / "f99.png")
    with pytest.raises(ValueError, match="different sizes"):
        data.read_video(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        data.read_video(tmp_path / "nope.mp4")
    (tmp_path / "bad.mp4").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot decode"):
        data.read_video(tmp_path / "bad.mp4")


def test_signed_integer_images_with_negative_values_are_refused():
    # divided by the dtype's maximum they gave values below 0 (to_float promises [0, 1])
    with pytest.raises(ValueError, match=r"signed integer image \(int16\) must have values >= 0"):
        data.to_float(np.array([[-5, 100]], np.int16), "image x")
    assert data.to_float(np.array([[0, 127]], np.int8)).max() == 1.0


def test_load_image_gray_must_be_a_bool_or_none():
    # gray=1 or "yes" was taken as None (the image's own channels), silently
    with pytest.raises(TypeError, match="gray must be True, False or None"):
        data.load_image("astronaut", size=8, gray=1)
    assert data.load_image("astronaut", size=8, gray=np.True_).shape == (8, 8, 1)


def test_video_path_names_the_bundled_clips():
    with pytest.raises(ValueError, match=r"video='nope' is not a bundled clip; expected one of \['bikes'"):
        data.video_path("nope")


def test_metric_arguments_are_checked_by_name():
    img = np.random.default_rng(0).random((8, 8, 3))
    for call, err, match in [
            (lambda: metrics.psnr(img, img * 0.5, float("inf")), ValueError, r"data_range must be .* > 0, got inf"),
            (lambda: metrics.ssim(img, img, float("inf")), ValueError, r"data_range must be .* > 0, got inf"),
            (lambda: metrics.psnr(img, img, "1"), TypeError, r"data_range must be .* > 0, got"),
            (lambda: metrics.psnr(img, img, None), TypeError, r"data_range must be .* > 0, got"),
            (lambda: metrics.normalized_interpolation_error(img, img, eps="1"), TypeError,
             r"eps must be .* > 0, got str"),
            (lambda: metrics.psnr_y(img, img, border=1.5), TypeError, "border must be an int"),
            (lambda: metrics.psnr_y(img, img, border=True), TypeError, "border must be an int")]:
        with pytest.raises(err, match=match):
            call()
    assert metrics.psnr(img, img * 0.5, np.float32(1.0)) == metrics.psnr(img, img * 0.5, torch.tensor(1.0))
    assert metrics.psnr_y(img, img * 0.5, border=np.int64(1)) == metrics.psnr_y(img, img * 0.5, border=1)
