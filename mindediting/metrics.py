"""Image quality metrics with the exact semantics of the published evaluators.

* :func:`calculate_psnr` / :func:`calculate_ssim` follow BasicSR ``basicsr/metrics/psnr_ssim.py``
  (numpy versions), which mmagic's PSNR/SSIM metrics reproduce: inputs in [0, 255] (uint8 or
  float), ``crop_border`` pixels removed on every side, optional Y channel (BT.601 studio swing,
  float, NOT rounded), PSNR ``10 log10(255^2 / MSE)`` in float64, SSIM with an 11x11 Gaussian
  window (sigma 1.5), valid region only, C1 = (0.01*255)^2, C2 = (0.03*255)^2, mean over channels.
* :func:`calculate_psnr_vrt` / :func:`calculate_ssim_vrt` / :func:`vrt_y_channel` /
  :func:`vrt_protocol_metrics` follow VRT ``utils/utils_image.py`` and ``main_test_vrt.py``: the
  prediction is first rounded to uint8 (:func:`~mindediting.data.video_io.to_uint8`, half to even), the Y
  channel is computed along a slightly different float path than BasicSR's (differences ~1e-7 dB).

Channel order: BasicSR and VRT work on BGR arrays (``cv2.imread``) and take Y with
``bgr2ycbcr``. mindediting keeps frames in **RGB** everywhere, so every function here assumes RGB
input by default; pass ``channel_order='BGR'`` for arrays read with OpenCV. Internally the RGB
input is flipped to BGR so the Y values are bit-identical to the upstream evaluators'. Channel
order only matters for the Y channel (RGB PSNR/SSIM are order-free).

PSNR of two identical images is ``float('inf')`` (MSE = 0), as in BasicSR and VRT; average
per-frame PSNRs only over finite values or report such clips separately.
"""
import math

import cv2
import numpy as np

from mindediting.data.video_io import to_uint8
from mindediting.utils.color import bgr2ycbcr

__all__ = [
    "reorder_image", "to_y_channel", "calculate_psnr", "calculate_ssim", "calculate_ssim_grey",
    "vrt_y_channel", "calculate_psnr_vrt", "calculate_ssim_vrt", "vrt_protocol_metrics",
    "gaussian_window",
]

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def _as_array(img):
    if hasattr(img, "asnumpy"):  # mindspore.Tensor
        img = img.asnumpy()
    return np.asarray(img)


def reorder_image(img, input_order="HWC"):
    """(H, W) -> (H, W, 1); (C, H, W) -> (H, W, C) when ``input_order='CHW'``; HWC unchanged."""
    if input_order not in ("HWC", "CHW"):
        raise ValueError(f"Wrong input_order {input_order!r}. Supported input_orders are 'HWC' and 'CHW'")
    if img.ndim == 2:
        return img[..., None]
    if img.ndim != 3:
        raise ValueError(f"Expected an (H, W) or 3-D ({input_order}) image, got shape {img.shape}")
    if input_order == "CHW":
        img = img.transpose(1, 2, 0)
    return img


def _check_order(channel_order):
    if channel_order not in ("RGB", "BGR"):
        raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {channel_order!r}")


def to_y_channel(img, channel_order="RGB"):
    """HWC image in [0, 255] -> (H, W, 1) float32 Y in [16, 235], not rounded (BasicSR).

    ``img.astype(float32) / 255`` -> BT.601 Y (float32) -> ``* 255``. Images whose last axis is
    not 3 are returned as ``img / 255 * 255`` in float32, as BasicSR does.
    """
    _check_order(channel_order)
    img = img.astype(np.float32) / np.float32(255.0)
    if img.ndim == 3 and img.shape[2] == 3:
        bgr = img[..., ::-1] if channel_order == "RGB" else img
        img = bgr2ycbcr(bgr, y_only=True)[..., None]
    return img * np.float32(255.0)


def _prepare(img, img2, crop_border, input_order, test_y_channel, channel_order):
    img, img2 = _as_array(img), _as_array(img2)
    if img.shape != img2.shape:
        raise ValueError(f"Image shapes are different: {img.shape} vs {img2.shape}")
    if int(crop_border) != crop_border or crop_border < 0:
        raise ValueError(f"crop_border must be a non-negative integer, got {crop_border!r}")
    crop_border = int(crop_border)
    img = reorder_image(img, input_order)
    img2 = reorder_image(img2, input_order)
    h, w = img.shape[:2]
    if 2 * crop_border >= min(h, w):
        raise ValueError(f"crop_border={crop_border} removes the whole {h}x{w} image")
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, ...]
    if test_y_channel:
        img = to_y_channel(img, channel_order)
        img2 = to_y_channel(img2, channel_order)
    return img.astype(np.float64), img2.astype(np.float64)


def calculate_psnr(img, img2, crop_border=0, input_order="HWC", test_y_channel=False, channel_order="RGB"):
    """PSNR in dB between two images in [0, 255] (BasicSR ``calculate_psnr``).

    Args:
        img, img2 (np.ndarray): same shape, (H, W), HWC or CHW, uint8 or float in [0, 255].
        crop_border (int): pixels removed on each side before measuring.
        input_order (str): 'HWC' or 'CHW' (ignored for 2-D input).
        test_y_channel (bool): measure on BT.601 Y (float, unrounded) instead of all channels.
        channel_order (str): 'RGB' (mindediting default) or 'BGR'; used only for the Y channel.

    Returns:
        float: PSNR; ``inf`` for identical images.
    """
    _check_order(channel_order)
    img, img2 = _prepare(img, img2, crop_border, input_order, test_y_channel, channel_order)
    mse = np.mean((img - img2) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0 * 255.0 / mse))


def gaussian_window(size=11, sigma=1.5):
    """2-D SSIM window: outer product of ``cv2.getGaussianKernel(size, sigma)`` (sums to 1)."""
    kernel = cv2.getGaussianKernel(size, sigma)
    return np.outer(kernel, kernel.transpose())


def _ssim_single(img, img2):
    """SSIM of two float64 (H, W) images in [0, 255], valid region of the 11x11 window."""
    if min(img.shape) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after cropping, got {img.shape[0]}x{img.shape[1]}")
    window = gaussian_window()

    def filt(x):
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]

    mu1, mu2 = filt(img), filt(img2)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 ** 2, mu2 ** 2, mu1 * mu2
    sigma1_sq = filt(img ** 2) - mu1_sq
    sigma2_sq = filt(img2 ** 2) - mu2_sq
    sigma12 = filt(img * img2) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + _C1) * (2 * sigma12 + _C2)) / ((mu1_sq + mu2_sq + _C1) * (sigma1_sq + sigma2_sq + _C2))
    return ssim_map.mean()


def calculate_ssim(img, img2, crop_border=0, input_order="HWC", test_y_channel=False, channel_order="RGB"):
    """SSIM between two images in [0, 255] (BasicSR ``calculate_ssim``), mean over channels.

    Arguments as :func:`calculate_psnr`. The image must be at least 11x11 after cropping.
    """
    _check_order(channel_order)
    img, img2 = _prepare(img, img2, crop_border, input_order, test_y_channel, channel_order)
    ssims = [_ssim_single(img[..., c], img2[..., c]) for c in range(img.shape[2])]
    return float(np.array(ssims).mean())


def calculate_ssim_grey(img, img2):
    """:func:`calculate_ssim` of two grey ``(H, W)`` images (spike reconstructions); other shapes raise."""
    img, img2 = _as_array(img), _as_array(img2)
    if img.shape != img2.shape or img.ndim != 2:
        raise ValueError(f"ssim needs two (H, W) images of one shape, got {img.shape} and {img2.shape}")
    return calculate_ssim(img, img2)


# ----------------------------------------------------------------------------------------------
# VRT protocol (JingyunLiang/VRT utils/utils_image.py, main_test_vrt.py)
# ----------------------------------------------------------------------------------------------

def vrt_y_channel(img_u8, channel_order="RGB"):
    """(H, W, 3) uint8 -> (H, W) float32 Y in [16, 235] along VRT's float path.

    VRT: ``bgr2ycbcr(u8.astype(float32) / 255.) * 255.`` where its ``bgr2ycbcr`` multiplies by
    255 in float32, takes ``dot / 255 + 16`` in float64, divides by 255 and casts to float32.
    """
    _check_order(channel_order)
    img = _as_array(img_u8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"vrt_y_channel expects an (H, W, 3) image, got shape {img.shape}")
    bgr = img[..., ::-1] if channel_order == "RGB" else img
    data = bgr.astype(np.float32) / np.float32(255.0)
    data *= np.float32(255.0)
    y = np.dot(data, [24.966, 128.553, 65.481]) / 255.0 + 16.0
    y = (y / 255.0).astype(np.float32)
    return y * np.float32(255.0)


def _crop_vrt(img1, img2, border, func):
    img1, img2 = _as_array(img1), _as_array(img2)
    if img1.shape != img2.shape:
        raise ValueError(f"{func}: image shapes are different: {img1.shape} vs {img2.shape}")
    if int(border) != border or border < 0:
        raise ValueError(f"{func}: border must be a non-negative integer, got {border!r}")
    h, w = img1.shape[:2]
    border = int(border)
    return img1[border:h - border, border:w - border], img2[border:h - border, border:w - border]


def calculate_psnr_vrt(img1, img2, border=0):
    """VRT ``calculate_psnr``: HWC or HW in [0, 255], ``20 log10(255 / sqrt(MSE))``; inf if equal."""
    img1, img2 = _crop_vrt(img1, img2, border, "calculate_psnr_vrt")
    mse = np.mean((img1.astype(np.float64) - img2.astype(np.float64)) ** 2)
    if mse == 0:
        return float("inf")
    return 20 * math.log10(255.0 / math.sqrt(mse))


def calculate_ssim_vrt(img1, img2, border=0):
    """VRT ``calculate_ssim``: per-channel SSIM averaged over 3 channels, HW or HW1 directly."""
    img1, img2 = _crop_vrt(img1, img2, border, "calculate_ssim_vrt")
    img1, img2 = img1.astype(np.float64), img2.astype(np.float64)
    if img1.ndim == 2:
        return float(_ssim_single(img1, img2))
    if img1.ndim == 3 and img1.shape[2] == 3:
        return float(np.array([_ssim_single(img1[..., c], img2[..., c]) for c in range(3)]).mean())
    if img1.ndim == 3 and img1.shape[2] == 1:
        return float(_ssim_single(img1[..., 0], img2[..., 0]))
    raise ValueError(f"calculate_ssim_vrt: wrong image dimensions {img1.shape}")


def vrt_protocol_metrics(output, gt, border=0, channel_order="RGB"):
    """PSNR/SSIM on RGB and on Y exactly as VRT's test script reports them.

    ``output`` and ``gt`` are (H, W, 3) frames; float frames in [0, 1] are first converted with
    :func:`to_uint8` (VRT rounds both prediction and ground truth to uint8). Returns a dict with
    keys ``psnr``, ``ssim``, ``psnr_y``, ``ssim_y``.
    """
    output, gt = _as_array(output), _as_array(gt)
    if output.shape != gt.shape:
        raise ValueError(f"vrt_protocol_metrics: image shapes are different: {output.shape} vs {gt.shape}")
    if output.dtype != np.uint8:
        output = to_uint8(output)
    if gt.dtype != np.uint8:
        gt = to_uint8(gt)
    out_y, gt_y = vrt_y_channel(output, channel_order), vrt_y_channel(gt, channel_order)
    return {
        "psnr": calculate_psnr_vrt(output, gt, border),
        "ssim": calculate_ssim_vrt(output, gt, border),
        "psnr_y": calculate_psnr_vrt(out_y, gt_y, border),
        "ssim_y": calculate_ssim_vrt(out_y, gt_y, border),
    }
