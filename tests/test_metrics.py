"""PSNR / SSIM against BasicSR and VRT goldens, plus hand-computed cases and error messages."""
import math

import numpy as np
import pytest

from mindediting import metrics
from mindediting.data.video_io import to_uint8
from mindediting.metrics import (calculate_psnr, calculate_psnr_vrt, calculate_ssim, calculate_ssim_grey,
                                 calculate_ssim_vrt, to_y_channel, vrt_protocol_metrics, vrt_y_channel)
from tests.golden import golden_dir, load, load_config


@pytest.fixture(scope="module")
def gold():
    folder = golden_dir("metrics", need=("config.json", "gt_rgb_u8.npy", "pred_rgb_u8.npy", "pred_rgb_float.npy"))
    cfg = load_config(folder)
    names = ("gt_rgb_u8", "pred_rgb_u8", "pred_rgb_float", "gt_y_float")
    arrays = {name: load(folder, f"{name}.npy") for name in names}
    return cfg, arrays


@pytest.mark.parametrize("crop", [0, 4])
@pytest.mark.parametrize("y", [False, True])
def test_basicsr_psnr_ssim_match_golden(gold, crop, y):
    cfg, a = gold
    key = f"{'y' if y else 'rgb'}_crop{crop}"
    tol = cfg["tolerance"]
    psnr = calculate_psnr(a["pred_rgb_u8"], a["gt_rgb_u8"], crop_border=crop, test_y_channel=y)
    ssim = calculate_ssim(a["pred_rgb_u8"], a["gt_rgb_u8"], crop_border=crop, test_y_channel=y)
    assert abs(psnr - cfg["values"][f"psnr_{key}"]) <= tol["psnr_abs"]
    assert abs(ssim - cfg["values"][f"ssim_{key}"]) <= tol["ssim_abs"]
    # channel order: the same frames in BGR order give the same numbers when declared as BGR
    bgr_pred, bgr_gt = a["pred_rgb_u8"][..., ::-1], a["gt_rgb_u8"][..., ::-1]
    bgr_psnr = calculate_psnr(bgr_pred, bgr_gt, crop, test_y_channel=y, channel_order="BGR")
    assert bgr_psnr == pytest.approx(psnr, abs=1e-12)
    # CHW input gives the same value as HWC
    chw = calculate_ssim(a["pred_rgb_u8"].transpose(2, 0, 1), a["gt_rgb_u8"].transpose(2, 0, 1), crop,
                         input_order="CHW", test_y_channel=y)
    assert chw == pytest.approx(ssim, abs=1e-12)


def test_y_channel_is_unrounded_bt601(gold):
    cfg, a = gold
    atol = cfg["tolerance"]["y_abs"]
    y = to_y_channel(a["gt_rgb_u8"])
    assert y.shape == a["gt_rgb_u8"].shape[:2] + (1,) and y.dtype == np.float32
    np.testing.assert_allclose(y[..., 0], a["gt_y_float"], rtol=0, atol=atol)
    pixels = np.array(cfg["values"]["y_of_pixels"]["rgb_u8"], dtype=np.uint8)[None]
    expected = cfg["values"]["y_of_pixels"]["y_float"]
    np.testing.assert_allclose(to_y_channel(pixels)[0, :, 0], expected, rtol=0, atol=atol)
    np.testing.assert_allclose(vrt_y_channel(pixels)[0], expected, rtol=0, atol=atol)
    # a 1-channel image is only rescaled, not converted
    np.testing.assert_allclose(to_y_channel(a["gt_rgb_u8"][..., :1]), a["gt_rgb_u8"][..., :1], rtol=0, atol=1e-4)


def test_vrt_protocol_matches_golden(gold):
    cfg, a = gold
    v, tol = cfg["values"], cfg["tolerance"]
    out = vrt_protocol_metrics(a["pred_rgb_u8"], a["gt_rgb_u8"])
    assert abs(out["psnr"] - v["vrt_protocol_psnr_rgb"]) <= tol["psnr_abs"]
    assert abs(out["ssim"] - v["vrt_protocol_ssim_rgb"]) <= tol["ssim_abs"]
    assert abs(out["psnr_y"] - v["vrt_protocol_psnr_y"]) <= tol["psnr_abs"]
    assert abs(out["ssim_y"] - v["vrt_protocol_ssim_y"]) <= tol["ssim_abs"]
    # the two Y paths differ (by ~2e-7 dB here); each implementation lands on its own golden
    basicsr_y = calculate_psnr(a["pred_rgb_u8"], a["gt_rgb_u8"], test_y_channel=True)
    assert abs(out["psnr_y"] - v["vrt_protocol_psnr_y"]) < abs(out["psnr_y"] - v["psnr_y_crop0"])
    assert abs(basicsr_y - v["psnr_y_crop0"]) < abs(basicsr_y - v["vrt_protocol_psnr_y"])
    # float frames in [0, 1] are rounded to uint8 first, as VRT's test script does
    out_f = vrt_protocol_metrics(a["pred_rgb_u8"] / 255.0, a["gt_rgb_u8"].astype(np.float32) / 255)
    assert out_f == out


def test_float_prediction_vs_rounded(gold):
    cfg, a = gold
    v, atol = cfg["values"], cfg["tolerance"]["psnr_abs"]
    assert abs(calculate_psnr(a["pred_rgb_float"], a["gt_rgb_u8"]) - v["psnr_rgb_float_pred_crop0"]) <= atol
    rounded = to_uint8(a["pred_rgb_float"] / 255.0)
    assert rounded.dtype == np.uint8
    assert abs(calculate_psnr(rounded, a["gt_rgb_u8"]) - v["psnr_rgb_rounded_pred_crop0"]) <= atol


def test_gaussian_window(gold):
    cfg, _ = gold
    window = metrics.gaussian_window()
    assert window.shape == (11, 11)
    assert window.sum() == pytest.approx(1.0, abs=1e-12)
    one_d = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    np.testing.assert_allclose(window[5] / window[5].sum(), one_d / one_d.sum(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(window[5] / window[5].sum(), cfg["gaussian_window_1d"], rtol=0, atol=1e-12)


def test_hand_computed_psnr():
    gt = np.full((16, 20, 3), 100, dtype=np.uint8)
    # every pixel off by one gray level: MSE = 1 -> 10 log10(255^2) = 48.1308 dB
    assert calculate_psnr(gt + 1, gt) == pytest.approx(20 * math.log10(255), abs=1e-12)
    assert calculate_psnr(gt + 1, gt) == pytest.approx(48.1308036, abs=1e-7)
    # a quarter of the values off by 2: MSE = 4/4 = 1 as well
    pred = gt.astype(np.float64)
    pred[:8, :10] += 2
    assert calculate_psnr(pred, gt) == pytest.approx(48.1308036, abs=1e-7)
    # VRT formula 20 log10(255 / sqrt(MSE)) with an offset of 5: MSE = 25
    assert calculate_psnr_vrt(gt.astype(np.float64) + 5, gt) == pytest.approx(10 * math.log10(255 ** 2 / 25), abs=1e-12)
    # on Y a gray offset d (R = G = B) moves Y by d * (65.481 + 128.553 + 24.966) / 255 = d * 219 / 255
    y_psnr = calculate_psnr(gt + 51, gt, test_y_channel=True)
    assert y_psnr == pytest.approx(20 * math.log10(255 / (51 * 219 / 255)), abs=1e-5)
    # identical images: infinite PSNR (documented), in both protocols
    assert calculate_psnr(gt, gt) == float("inf")
    assert calculate_psnr_vrt(gt, gt) == float("inf")
    # a difference only inside the cropped border is not seen
    pred = gt.copy()
    pred[:2] = 0
    assert calculate_psnr(pred, gt, crop_border=2) == float("inf")
    assert calculate_psnr(pred, gt, crop_border=1) < 20


def test_hand_computed_ssim():
    a = np.full((12, 13), 100.0)
    b = np.full((12, 13), 110.0)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    # constant images: zero variances, SSIM = (2 mu1 mu2 + C1) / (mu1^2 + mu2^2 + C1)
    expected = (2 * 100 * 110 + c1) / (100 ** 2 + 110 ** 2 + c1)
    assert calculate_ssim(a, b) == pytest.approx(expected, abs=1e-9)
    assert calculate_ssim_vrt(a, b) == pytest.approx(expected, abs=1e-9)
    rnd = np.random.RandomState(1).randint(0, 256, (20, 24, 3)).astype(np.uint8)
    assert calculate_ssim(rnd, rnd) == pytest.approx(1.0, abs=1e-12)
    # the mean over channels: channel-wise values averaged
    other = np.random.RandomState(2).randint(0, 256, (20, 24, 3)).astype(np.uint8)
    per_channel = [calculate_ssim(rnd[..., c], other[..., c]) for c in range(3)]
    assert calculate_ssim(rnd, other) == pytest.approx(np.mean(per_channel), abs=1e-12)


def test_to_uint8_clamps_and_rounds_half_to_even():
    x = np.array([-0.3, 0.0, 0.2, 0.5, 1.0, 2.0], dtype=np.float64)
    # 0.2*255 = 51, 0.5*255 = 127.5 -> 128 (even), clamped ends
    np.testing.assert_array_equal(to_uint8(x), [0, 0, 51, 128, 255, 255])
    np.testing.assert_array_equal(to_uint8(np.array([2.5 / 255], np.float32)), [2])  # 2.5 -> 2 (half to even)
    with pytest.raises(TypeError, match="to_uint8 expects a float image in \\[0, 1\\], got dtype uint8"):
        to_uint8(np.zeros(3, np.uint8))


def test_grey_ssim_front_end():
    img = np.random.RandomState(5).randint(0, 256, (16, 20)).astype(np.uint8)
    other = np.random.RandomState(6).randint(0, 256, (16, 20)).astype(np.uint8)
    assert calculate_ssim_grey(img, other) == calculate_ssim(img, other)
    with pytest.raises(ValueError, match=r"ssim needs two \(H, W\) images of one shape, got \(16, 20, 1\)"):
        calculate_ssim_grey(img[..., None], other[..., None])


def test_errors_name_the_problem():
    a, b = np.zeros((16, 16, 3)), np.zeros((16, 17, 3))
    with pytest.raises(ValueError, match=r"Image shapes are different: \(16, 16, 3\) vs \(16, 17, 3\)"):
        calculate_psnr(a, b)
    with pytest.raises(ValueError, match=r"\(16, 16, 3\) vs \(16, 17, 3\)"):
        calculate_ssim(a, b)
    with pytest.raises(ValueError, match=r"calculate_psnr_vrt: image shapes are different: \(16, 16, 3\) vs \(16, 17"):
        calculate_psnr_vrt(a, b)
    with pytest.raises(ValueError, match="Wrong input_order 'CWH'"):
        calculate_psnr(a, a, input_order="CWH")
    with pytest.raises(ValueError, match="crop_border=8 removes the whole 16x16 image"):
        calculate_psnr(a, a, crop_border=8)
    with pytest.raises(ValueError, match="crop_border must be a non-negative integer"):
        calculate_psnr(a, a, crop_border=-1)
    with pytest.raises(ValueError, match="SSIM needs at least 11x11 pixels after cropping, got 10x10"):
        calculate_ssim(a, a, crop_border=3)
    with pytest.raises(ValueError, match="channel_order must be 'RGB' or 'BGR', got 'rgb'"):
        calculate_psnr(a, a, test_y_channel=True, channel_order="rgb")
