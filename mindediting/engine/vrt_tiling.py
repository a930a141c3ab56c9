"""Test-time tiling for VRT, as ``test_video`` / ``test_clip`` in JingyunLiang/VRT ``main_test_vrt.py``.

``test_video`` splits the clip in time (``tile[0]`` frames, ``tile_overlap[0]`` overlap, plain
averaging of overlapping frames), ``test_clip`` splits each clip in space (square ``tile[1]`` patches,
``tile_overlap[1]`` overlap; each patch drops ``overlap // 2`` output rows/columns on sides that are
not image borders, then weighted averaging). A zero tile runs the whole clip / frame at once after
mirror-padding it to a multiple of the window. Peak memory is set by the tile, not by the video:
only one patch goes through the network at a time and the blended result is kept in numpy.

Arrays are numpy (N, D, C, H, W) float32; ``model`` is any callable taking and returning a
MindSpore tensor of that layout (the VRT Cell).
"""
import numpy as np
from mindspore import Tensor


def _run(model, x):
    return model(Tensor(np.ascontiguousarray(x, dtype=np.float32))).asnumpy()


def _check(tile, tile_overlap, window_size):
    if len(tile) != 3 or len(tile_overlap) != 3:
        raise ValueError(f"tile {tile} and tile_overlap {tile_overlap} need 3 values (frames, height, width)")
    if tile[1] % window_size[-1]:
        raise ValueError(f"tile size {tile[1]} must be a multiple of window_size[-1] = {window_size[-1]}")
    if tile[0] and tile_overlap[0] >= tile[0]:
        raise ValueError(f"temporal overlap {tile_overlap[0]} must be smaller than tile[0] = {tile[0]}")
    if tile[1] and tile_overlap[1] >= tile[1]:
        raise ValueError(f"spatial overlap {tile_overlap[1]} must be smaller than tile[1] = {tile[1]}")


def _starts(size, tile, stride):
    return list(range(0, size - tile, stride)) + [max(0, size - tile)]


def test_clip(lq, model, scale, window_size, tile, tile_overlap, nonblind_denoising=False, progress=None):
    """Run ``model`` on one clip, whole or patch by patch (``tile[1]``); returns (N, D, C, H*scale, W*scale)."""
    _check(tile, tile_overlap, window_size)
    size = tile[1]
    if not size:
        h_old, w_old = lq.shape[3:]
        h_pad = (window_size[1] - h_old % window_size[1]) % window_size[1]
        w_pad = (window_size[2] - w_old % window_size[2]) % window_size[2]
        if h_pad:
            lq = np.concatenate([lq, np.flip(lq[:, :, :, -h_pad:, :], 3)], 3)
        if w_pad:
            lq = np.concatenate([lq, np.flip(lq[:, :, :, :, -w_pad:], 4)], 4)
        out = _run(model, lq)
        if progress is not None:
            progress.update(1)
        return out[:, :, :, :h_old * scale, :w_old * scale]
    overlap = tile_overlap[1]
    b, d, c, h, w = lq.shape
    c = c - 1 if nonblind_denoising else c
    stride = size - overlap
    h_starts, w_starts = _starts(h, size, stride), _starts(w, size, stride)
    acc = np.zeros((b, d, c, h * scale, w * scale), np.float32)
    # upstream keeps a full-size weight; it only varies over (height, width), so one plane holds the same counts
    weight = np.zeros((h * scale, w * scale), np.float32)
    for hi in h_starts:
        for wi in w_starts:
            out = _run(model, lq[..., hi:hi + size, wi:wi + size])
            mask = np.ones(out.shape[-2:], np.float32)
            # the same index expressions as upstream: -overlap // 2 is floor(-overlap / 2)
            if hi < h_starts[-1]:
                out[..., -overlap // 2:, :] = 0
                mask[-overlap // 2:, :] = 0
            if wi < w_starts[-1]:
                out[..., :, -overlap // 2:] = 0
                mask[:, -overlap // 2:] = 0
            if hi > h_starts[0]:
                out[..., :overlap // 2, :] = 0
                mask[:overlap // 2, :] = 0
            if wi > w_starts[0]:
                out[..., :, :overlap // 2] = 0
                mask[:, :overlap // 2] = 0
            rows, cols = slice(hi * scale, (hi + size) * scale), slice(wi * scale, (wi + size) * scale)
            acc[..., rows, cols] += out
            weight[rows, cols] += mask
            if progress is not None:
                progress.update(1)
    return np.divide(acc, weight, out=acc)  # in place: no second full-size array


def count_model_calls(shape, tile, tile_overlap):
    """How many network calls ``test_video`` makes for an (N, D, C, H, W) input (for progress bars)."""
    _, d, _, h, w = shape
    clips = len(_starts(d, tile[0], tile[0] - tile_overlap[0])) if tile[0] else 1
    if not tile[1]:
        return clips
    stride = tile[1] - tile_overlap[1]
    return clips * len(_starts(h, tile[1], stride)) * len(_starts(w, tile[1], stride))


def test_video(lq, model, scale, window_size, tile=(40, 128, 128), tile_overlap=(2, 20, 20),
               nonblind_denoising=False, progress=False):
    """Restore a whole video (N, D, C, H, W) with temporal clips and spatial patches, as upstream does.

    ``progress`` True shows a tqdm bar over the network calls.
    """
    lq = np.asarray(lq, dtype=np.float32)
    if lq.ndim != 5:
        raise ValueError(f"test_video: expected (N, D, C, H, W), got shape {lq.shape}")
    tile, tile_overlap, window_size = list(tile), list(tile_overlap), list(window_size)
    _check(tile, tile_overlap, window_size)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=count_model_calls(lq.shape, tile, tile_overlap), desc="VRT tiles", unit="call")
    try:
        frames = tile[0]
        if not frames:
            d_old = lq.shape[1]
            d_pad = (window_size[0] - d_old % window_size[0]) % window_size[0]
            if d_pad:
                lq = np.concatenate([lq, np.flip(lq[:, -d_pad:], 1)], 1)
            return test_clip(lq, model, scale, window_size, tile, tile_overlap, nonblind_denoising, bar)[:, :d_old]
        b, d, c, h, w = lq.shape
        c = c - 1 if nonblind_denoising else c
        acc = np.zeros((b, d, c, h * scale, w * scale), np.float32)
        weight = np.zeros((b, d, 1, 1, 1), np.float32)
        for di in _starts(d, frames, frames - tile_overlap[0]):
            acc[:, di:di + frames] += test_clip(lq[:, di:di + frames], model, scale, window_size, tile, tile_overlap,
                                                nonblind_denoising, bar)
            weight[:, di:di + frames] += 1.0
        return np.divide(acc, weight, out=acc)  # in place: no second full-size array
    finally:
        if bar is not None:
            bar.close()


test_clip.__test__ = False
test_video.__test__ = False
