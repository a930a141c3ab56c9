"""BT.601 studio-swing RGB/BGR <-> YCbCr, as MATLAB ``rgb2ycbcr`` and BasicSR ``color_util``.

For R, G, B in [0, 1]::

    Y  = ( 65.481 R + 128.553 G +  24.966 B +  16) / 255      (Y in [16, 235] / 255)
    Cb = (-37.797 R -  74.203 G + 112.0   B + 128) / 255
    Cr = (112.0   R -  93.786 G -  18.214 B + 128) / 255

This is NOT OpenCV's ``COLOR_RGB2YCrCb`` (full-swing JPEG matrix). The mindediting package keeps
frames in RGB order everywhere; ``bgr2ycbcr`` exists for arrays read with ``cv2.imread``.

Type convention (BasicSR): the output has the type and range of the input.

* uint8 in [0, 255] -> divided by 255 (float32), converted in float64, rounded back to uint8
  (clipped to [0, 255] first so out-of-gamut values cannot wrap around);
* float in [0, 1] -> float32 in [0, 1], not rounded or clipped (float16 / float64 inputs are
  cast to float32 first, since BasicSR only computes in float32).

Images are (..., 3) with channels last, e.g. HWC or THWC.
"""
import numpy as np

__all__ = ["rgb2ycbcr", "bgr2ycbcr", "ycbcr2rgb", "ycbcr2bgr"]

_Y_RGB = [65.481, 128.553, 24.966]
_YCBCR_FROM_RGB = [[65.481, -37.797, 112.0], [128.553, -74.203, -93.786], [24.966, 112.0, -18.214]]
_YCBCR_OFFSET = [16, 128, 128]
# inverse matrix (per unit of 0..255 YCbCr) and offsets of MATLAB ycbcr2rgb
_RGB_FROM_YCBCR = [[0.00456621, 0.00456621, 0.00456621], [0, -0.00153632, 0.00791071],
                   [0.00625893, -0.00318811, 0]]
_RGB_OFFSET = [-222.921, 135.576, -276.836]


def _to_float01(img, func):
    """float32 copy in [0, 1] (uint8 / 255) and the dtype to return."""
    img = np.asarray(img)
    if img.ndim < 1 or img.shape[-1] != 3:
        raise ValueError(f"{func} expects channels last with 3 channels, got shape {img.shape}")
    if img.dtype == np.uint8:
        out = img.astype(np.float32)
        out /= np.float32(255.0)
        return out, np.uint8
    if np.issubdtype(img.dtype, np.floating):
        return img.astype(np.float32), np.float32
    raise TypeError(f"{func}: the image must be uint8 in [0, 255] or float in [0, 1], got dtype {img.dtype}")


def _from_255(values, dst_type):
    """Back from a [0, 255]-scaled float64 result to the input's type and range."""
    if dst_type == np.uint8:
        return np.clip(values.round(), 0, 255).astype(np.uint8)
    return (values / 255.0).astype(np.float32)


def rgb2ycbcr(img, y_only=False):
    """RGB (channels last) -> YCbCr (..., 3), or Y (...) when ``y_only``. See the module doc."""
    data, dst_type = _to_float01(img, "rgb2ycbcr")
    if y_only:
        out = np.dot(data, _Y_RGB) + 16.0
    else:
        out = np.matmul(data, _YCBCR_FROM_RGB) + _YCBCR_OFFSET
    return _from_255(out, dst_type)


def bgr2ycbcr(img, y_only=False):
    """Same as :func:`rgb2ycbcr` for BGR-ordered input (``cv2.imread``); output order Y, Cb, Cr."""
    data, dst_type = _to_float01(img, "bgr2ycbcr")
    if y_only:
        out = np.dot(data, _Y_RGB[::-1]) + 16.0
    else:
        out = np.matmul(data, _YCBCR_FROM_RGB[::-1]) + _YCBCR_OFFSET
    return _from_255(out, dst_type)


def ycbcr2rgb(img):
    """YCbCr (..., 3) -> RGB, MATLAB ``ycbcr2rgb`` (inverse of :func:`rgb2ycbcr`)."""
    data, dst_type = _to_float01(img, "ycbcr2rgb")
    data *= np.float32(255.0)
    out = np.matmul(data, _RGB_FROM_YCBCR) * 255.0 + _RGB_OFFSET
    return _from_255(out, dst_type)


def ycbcr2bgr(img):
    """YCbCr (..., 3) -> BGR (channel-reversed :func:`ycbcr2rgb`)."""
    return ycbcr2rgb(img)[..., ::-1].copy()
