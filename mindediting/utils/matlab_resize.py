"""MATLAB-compatible bicubic ``imresize`` and the BD (blur + decimate) degradation.

``imresize`` reproduces BasicSR ``basicsr/utils/matlab_functions.py::imresize`` (numpy path),
which is how the BIx4 low-resolution inputs of REDS / Vimeo-90K / Vid4 were made:

* separable, rows (H) first, then columns (W); output size ``ceil(in * scale)``;
* cubic kernel with a = -0.5; for ``scale < 1`` with antialiasing the kernel is stretched by
  ``1 / scale`` (``4 / scale`` taps) and scaled by ``scale``;
* sample centre ``u = x / scale + 0.5 * (1 - 1 / scale)`` (1-based, MATLAB convention);
* weights normalised per output pixel; the extra first / last tap column is dropped the way
  BasicSR does it (see :func:`calculate_weights_indices`);
* borders by symmetric padding (mirror including the edge pixel);
* everything in float32, like BasicSR (uint8 input is cast to float32 and the result stays in
  [0, 255]; float input is expected in [0, 1]); the result is float32 and NOT rounded or clipped.

Instead of BasicSR's per-row Python loops the weighted sums are vectorised over the whole image
(one numpy multiply-add per kernel tap), so a 256x448x3 frame takes a few milliseconds.

``bd_downsample`` reproduces mmagic ``tools/dataset_converters/vimeo90k/
preprocess_vimeo90k_dataset.py::bd_downsample`` (BDx4 inputs).
"""
import math

import cv2
import numpy as np

__all__ = ["cubic", "calculate_weights_indices", "imresize", "bd_gaussian_kernel", "bd_downsample"]


def cubic(x):
    """Keys cubic convolution kernel with a = -0.5 (MATLAB ``imresize`` 'bicubic'), float32."""
    x = np.asarray(x, dtype=np.float32)
    absx = np.abs(x)
    absx2 = absx * absx
    absx3 = absx2 * absx
    one, two = np.float32(1.0), np.float32(2.0)
    near = np.float32(1.5) * absx3 - np.float32(2.5) * absx2 + one
    far = np.float32(-0.5) * absx3 + np.float32(2.5) * absx2 - np.float32(4.0) * absx + two
    zero = np.zeros_like(absx)
    return np.where(absx <= one, near, np.where((absx > one) & (absx <= two), far, zero))


def calculate_weights_indices(in_length, out_length, scale, kernel_width=4, antialiasing=True):
    """Tap weights and positions for resizing one axis from ``in_length`` to ``out_length``.

    Returns ``(weights, indices, sym_len_start, sym_len_end)`` as BasicSR does:

    * ``weights``: float32 (out_length, taps), each row sums to 1;
    * ``indices``: float32 (out_length, taps), 0-based positions in the signal padded with
      ``sym_len_start`` mirrored samples in front (subtract ``sym_len_start`` to get positions in
      the original signal; negative or >= in_length means mirrored);
    * ``sym_len_start`` / ``sym_len_end``: symmetric padding needed before / after.

    Tap columns: ``ceil(width) + 2`` candidates; if the first column holds a zero weight in any
    row, BasicSR keeps columns ``1 .. taps-2`` (dropping the first and the last), else if the last
    column holds a zero it keeps ``0 .. taps-3`` (dropping the last two). That quirk is kept.
    """
    in_length, out_length = int(in_length), int(out_length)
    if in_length < 1 or out_length < 1:
        raise ValueError(f"imresize: lengths must be >= 1, got in_length={in_length}, out_length={out_length}")
    if not scale > 0:
        raise ValueError(f"imresize: scale must be > 0, got {scale}")
    downsample_aa = scale < 1 and antialiasing
    if downsample_aa:
        kernel_width = kernel_width / scale
    # torch computes these in float32 with the python scalars cast to float32
    x = np.arange(1, out_length + 1, dtype=np.float32)
    u = x / np.float32(scale) + np.float32(0.5 * (1 - 1 / scale))
    left = np.floor(u - np.float32(kernel_width / 2))
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float32)[None, :]
    distance = u[:, None] - indices
    if downsample_aa:
        weights = np.float32(scale) * cubic(distance * np.float32(scale))
    else:
        weights = cubic(distance)
    weights = weights / np.sum(weights, axis=1, keepdims=True, dtype=np.float32)

    zeros_per_column = np.sum(weights == 0, axis=0)
    if zeros_per_column[0] != 0:
        keep = slice(1, taps - 1)
    elif zeros_per_column[-1] != 0:
        keep = slice(0, taps - 2)
    else:
        keep = slice(0, taps)
    weights = np.ascontiguousarray(weights[:, keep])
    indices = np.ascontiguousarray(indices[:, keep])
    sym_len_start = int(-indices.min() + 1)
    sym_len_end = int(indices.max() - in_length)
    indices = indices + np.float32(sym_len_start - 1)
    return weights.astype(np.float32), indices.astype(np.float32), sym_len_start, sym_len_end


def _symmetric(positions, length):
    """Map integer positions (0-based, any range) into [0, length) by symmetric mirroring."""
    period = 2 * length
    pos = np.mod(positions, period)
    return np.where(pos < length, pos, period - 1 - pos)


def _resize_axis(img, axis, out_length, scale, antialiasing):
    """Resize float32 ``img`` along ``axis`` (0 or 1); float32 result."""
    in_length = img.shape[axis]
    weights, indices, sym_start, _ = calculate_weights_indices(in_length, out_length, scale, 4, antialiasing)
    src = _symmetric(indices.astype(np.int64) - sym_start, in_length)  # (out, taps) in the original
    moved = np.moveaxis(img, axis, 0)
    out = np.zeros((out_length,) + moved.shape[1:], dtype=np.float32)
    extra = (slice(None),) + (None,) * (moved.ndim - 1)
    for k in range(weights.shape[1]):
        out += weights[:, k][extra] * moved[src[:, k]]
    return np.moveaxis(out, 0, axis)


def imresize(img, scale, antialiasing=True):
    """MATLAB ``imresize(img, scale, 'bicubic')`` as BasicSR computes it (numpy, HWC or HW).

    Args:
        img (np.ndarray): (H, W) or (H, W, C); uint8 in [0, 255] or float in [0, 1] (any numeric
            dtype is cast to float32 first, as BasicSR does).
        scale (float): same factor for H and W; output size is ``ceil(H * scale), ceil(W * scale)``.
        antialiasing (bool): widen the kernel when downscaling (MATLAB default).

    Returns:
        np.ndarray: float32, same layout, unrounded and unclipped (uint8 input gives [0, 255]).
    """
    img = np.asarray(img)
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize expects an (H, W) or (H, W, C) array, got shape {img.shape}")
    if not (isinstance(scale, (int, float, np.integer, np.floating)) and scale > 0):
        raise ValueError(f"imresize: scale must be a positive number, got {scale!r}")
    if img.dtype == np.bool_ or not np.issubdtype(img.dtype, np.number):
        raise TypeError(f"imresize: expected a numeric image (uint8 or float), got dtype {img.dtype}")
    in_h, in_w = img.shape[:2]
    out_h, out_w = math.ceil(in_h * scale), math.ceil(in_w * scale)
    data = img.astype(np.float32)
    data = _resize_axis(data, 0, out_h, scale, antialiasing)
    data = _resize_axis(data, 1, out_w, scale, antialiasing)
    return data


def bd_gaussian_kernel(sigma=1.6):
    """The BD blur kernel of mmagic's Vimeo-90K script: isotropic Gaussian, normalised to sum 1.

    Size ``ceil(3 * sigma) * 2 + 2`` (12 for sigma 1.6, i.e. even), sampled at offsets
    ``-(size-1)/2 .. (size-1)/2`` (half-integers); the variance matrix is float32 as in mmagic's
    ``blur_kernels.bivariate_gaussian``. Returns a float64 (size, size) array.
    """
    if not sigma > 0:
        raise ValueError(f"bd_downsample: sigma must be > 0, got {sigma}")
    size = math.ceil(sigma * 3) * 2 + 2
    offsets = np.arange(-(size - 1.0) / 2.0, (size - 1.0) / 2.0 + 1.0)
    grid = np.stack(np.meshgrid(offsets, offsets), axis=-1)  # (size, size, 2): (x, y)
    inv_cov = np.linalg.inv(np.array([[sigma ** 2, 0], [0, sigma ** 2]], dtype=np.float32))
    kernel = np.exp(-0.5 * np.sum(np.matmul(grid, inv_cov) * grid, axis=2))
    return kernel / np.sum(kernel)


def bd_downsample(img, scale=4, sigma=1.6):
    """BD degradation (mmagic Vimeo-90K BDx4): Gaussian blur then keep every ``scale``-th pixel.

    The blur is ``cv2.filter2D`` with :func:`bd_gaussian_kernel` (12x12 for sigma 1.6), anchor
    ``((size-1)//2, (size-1)//2)`` and replicated borders; then rows / columns
    ``scale//2 - 1, scale//2 - 1 + scale, ...`` are kept, stopping ``scale//2 - 1`` pixels before
    the end (start offset 1 for x4, so 256x448 -> 64x112). Because the even kernel is centred
    half a pixel after the anchor, each kept pixel is the blur centred on its 4x4 block centre.

    Args:
        img (np.ndarray): (H, W) or (H, W, C); uint8 (read as ``u8 / 255`` like skimage
            ``img_as_float``) or float in [0, 1]. Channel order does not matter.
        scale (int): decimation factor (>= 2).
        sigma (float): Gaussian standard deviation.

    Returns:
        np.ndarray: uint8 input -> uint8 quantised as mmagic writes it
        (``floor(float32(clip(x, 0, 1) * 255) + 0.5)``); float input -> float64, unclipped.
        (mmagic's slice ``[s//2-1 : -(s//2)+1 : s]`` is empty for scale 2; here the stop is
        ``H - s//2 + 1``, which is the same for every scale >= 3.)
    """
    img = np.asarray(img)
    if img.ndim not in (2, 3):
        raise ValueError(f"bd_downsample expects an (H, W) or (H, W, C) array, got shape {img.shape}")
    if int(scale) != scale or scale < 2:
        raise ValueError(f"bd_downsample: scale must be an integer >= 2, got {scale!r}")
    scale = int(scale)
    is_u8 = img.dtype == np.uint8
    if is_u8:
        data = img.astype(np.float64) / 255.0
    elif np.issubdtype(img.dtype, np.floating):
        data = img.astype(np.float64)
    else:
        raise TypeError(f"bd_downsample: expected uint8 or float image, got dtype {img.dtype}")
    kernel = bd_gaussian_kernel(sigma)
    anchor = (kernel.shape[0] - 1) // 2
    blurred = cv2.filter2D(data, -1, kernel, anchor=(anchor, anchor), borderType=cv2.BORDER_REPLICATE)
    if blurred.ndim < data.ndim:  # cv2 drops a trailing channel axis of size 1
        blurred = blurred[..., None]
    start = scale // 2 - 1
    h, w = data.shape[:2]
    out = blurred[start:h - scale // 2 + 1:scale, start:w - scale // 2 + 1:scale]
    if is_u8:
        out = (np.clip(out, 0.0, 1.0) * 255).astype(np.float32)
        out = np.floor(out + np.float32(0.5)).astype(np.uint8)
    return out
