"""PSNR / SSIM the way the video-SCI toolbox (cacti ``utils/metrics.py``) computes them.

Both take two 2-D frames on the 0..255 scale (the toolbox calls them with ``gt * 255`` and
``out * 255``; reconstructions are **not** clipped). A scene score is the mean over every frame of
every measurement (:func:`sci_scene_scores`).

* PSNR: difference in float32, ``20 log10(255 / rmse)``; 100 when the frames are identical.
* SSIM: MATLAB-style, float64, 11x11 Gaussian window (sigma 1.5) applied with OpenCV's ``filter2D``
  (reflect-101 borders), then 5 pixels cropped on every side; ``C1 = (0.01*255)^2``,
  ``C2 = (0.03*255)^2``; mean of the SSIM map.
"""
import math

import numpy as np

from mindediting.metrics import _ssim_single


def sci_psnr(img1, img2):
    """PSNR in dB of two frames on the 0..255 scale (float32 difference, as the toolbox)."""
    img1 = np.asarray(img1, dtype=np.float32)
    img2 = np.asarray(img2, dtype=np.float32)
    if img1.shape != img2.shape:
        raise ValueError(f"sci_psnr: shapes differ: {img1.shape} vs {img2.shape}")
    rmse = math.sqrt(np.mean((img1 - img2) ** 2))
    if rmse == 0:
        return 100.0
    return 20 * math.log10(255.0 / rmse)


def sci_ssim(img1, img2):
    """MATLAB-style SSIM of two 2-D frames on the 0..255 scale (or (H, W, 1))."""
    img1 = np.asarray(img1, dtype=np.float64)
    img2 = np.asarray(img2, dtype=np.float64)
    if img1.shape != img2.shape:
        raise ValueError(f"sci_ssim: shapes differ: {img1.shape} vs {img2.shape}")
    if img1.ndim == 3 and img1.shape[2] == 1:
        img1, img2 = img1[:, :, 0], img2[:, :, 0]
    if img1.ndim != 2:
        raise ValueError(f"sci_ssim: expected 2-D frames, got shape {img1.shape}")
    return float(_ssim_single(img1, img2))  # same 11x11 Gaussian window, C1/C2 as BasicSR


def sci_frame_scores(gt, out):
    """Per-frame ``(psnr, ssim)`` lists for frames in [0, 1] of layout ``(..., H, W)``."""
    gt = np.asarray(gt)
    out = np.asarray(out)
    if gt.shape != out.shape:
        raise ValueError(f"ground truth {gt.shape} and reconstruction {out.shape} differ in shape")
    gt2 = gt.reshape(-1, *gt.shape[-2:])
    out2 = out.reshape(-1, *out.shape[-2:])
    psnr = [sci_psnr(g * 255, o * 255) for g, o in zip(gt2, out2)]
    ssim = [sci_ssim(g * 255, o * 255) for g, o in zip(gt2, out2)]
    return psnr, ssim


def sci_scene_scores(gt, out):
    """Scene PSNR/SSIM: mean over all frames of all measurements (``(n, cr, H, W)`` in [0, 1])."""
    psnr, ssim = sci_frame_scores(gt, out)
    return float(np.mean(psnr)), float(np.mean(ssim))
