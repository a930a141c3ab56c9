"""Toolbox-style PSNR/SSIM against golden ``sci_metrics`` and hand-computed values."""
import math

import numpy as np
import pytest

from mindediting.metrics_sci import sci_frame_scores, sci_psnr, sci_scene_scores, sci_ssim
from tests.golden import golden_dir, load, load_config


def test_metrics_match_golden():
    folder = golden_dir("sci_metrics", need=("output.npy",))
    cfg = load_config(folder)
    expected = load(folder, "output.npy")
    for k in range(expected.shape[0]):
        gt, est = load(folder, f"gt_{k}.npy"), load(folder, f"est_{k}.npy")
        assert abs(sci_psnr(gt * 255, est * 255) - expected[k, 0]) <= cfg["tolerance"]["atol_psnr"]
        assert abs(sci_ssim(gt * 255, est * 255) - expected[k, 1]) <= cfg["tolerance"]["atol_ssim"]


def test_psnr_by_hand_and_identical_frames():
    a = np.zeros((4, 4))
    b = np.full((4, 4), 2.0)  # rmse 2 on the 255 scale
    assert sci_psnr(a, b) == pytest.approx(20 * math.log10(255 / 2))
    assert sci_psnr(a, a) == 100
    assert sci_ssim(np.full((16, 16), 7.0), np.full((16, 16), 7.0)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        sci_psnr(a, np.zeros((3, 4)))


def test_scene_score_is_mean_over_all_frames():
    rng = np.random.RandomState(0)
    gt = rng.rand(2, 3, 24, 24)
    out = gt + 0.01 * rng.randn(*gt.shape)  # not clipped, as the toolbox
    psnr, ssim = sci_frame_scores(gt, out)
    assert len(psnr) == 6
    assert sci_scene_scores(gt, out) == pytest.approx((np.mean(psnr), np.mean(ssim)))
    assert psnr[4] == pytest.approx(sci_psnr(gt[1, 1] * 255, out[1, 1] * 255))
