"""Warp images or features with optical flow (mmagic / VRT ``flow_warp`` conventions).

``x`` is (N, C, H, W); ``flow`` is (N, H, W, 2) holding (dx, dy) in pixels. The sampling position of
output pixel (i, j) is (j + dx, i + dy), normalised with ``2 * p / max(size - 1, 1) - 1`` and read with
``grid_sample(align_corners=True)``.
"""
from mindspore import ops


def _sampling_positions(flow):
    _, h, w, _ = flow.shape
    grid_y, grid_x = ops.meshgrid(ops.arange(0, h).astype(flow.dtype), ops.arange(0, w).astype(flow.dtype), indexing="ij")
    return grid_x + flow[..., 0], grid_y + flow[..., 1]


def _normalise(pos_x, pos_y, h, w, dtype):
    # grid_sample wants the grid in the dtype of x: under mixed precision (amp O2) x is float16, the flow float32
    grid = ops.stack((2.0 * pos_x / max(w - 1, 1) - 1.0, 2.0 * pos_y / max(h - 1, 1) - 1.0), axis=3)
    return grid if grid.dtype == dtype else grid.astype(dtype)


def flow_warp(x, flow, interpolation="bilinear", padding_mode="zeros", align_corners=True):
    """Warp ``x`` with ``flow``; ``interpolation`` is 'bilinear', 'nearest' or VRT's 'nearest4'.

    'nearest4' returns 4C channels: the nearest samples at (floor x, floor y), (floor x, ceil y),
    (ceil x, floor y) and (ceil x, ceil y), in that order.
    """
    if x.shape[-2:] != flow.shape[1:3]:
        raise ValueError(f"flow_warp: spatial size of x {tuple(x.shape[-2:])} and flow {tuple(flow.shape[1:3])} differ")
    h, w = x.shape[-2:]
    pos_x, pos_y = _sampling_positions(flow)
    if interpolation != "nearest4":
        grid = _normalise(pos_x, pos_y, h, w, x.dtype)
        return ops.grid_sample(x, grid, mode=interpolation, padding_mode=padding_mode, align_corners=align_corners)
    outputs = []
    for px in (ops.floor(pos_x), ops.ceil(pos_x)):
        for py in (ops.floor(pos_y), ops.ceil(pos_y)):
            grid = _normalise(px, py, h, w, x.dtype)
            outputs.append(
                ops.grid_sample(x, grid, mode="nearest", padding_mode=padding_mode, align_corners=align_corners)
            )
    return ops.cat(outputs, axis=1)

