"""Temporal chunking and spatial tiling for video restoration, for every model.

A restoration callable ``fn(lq) -> hq`` takes a float32 clip ``(T, C, h, w)`` and returns
``(T, C', h * scale, w * scale)``. To bound memory, the clip is cut into temporal chunks of
``chunk_frames`` frames, consecutive chunks sharing ``chunk_overlap`` frames, and every chunk into
spatial tiles of ``tile`` low-resolution pixels sharing ``tile_overlap`` pixels. A size of 0 means
"whole" (no cutting). Windows start every ``size - overlap`` positions; the last window is moved back to
end exactly at the border, so every window has the full size (unless the clip or frame is smaller than
one window). For 10 frames, ``chunk_frames=4``, ``chunk_overlap=1``: chunks [0, 4), [3, 7), [6, 10).

Two ways to put the pieces back together:

* generic (:func:`run_chunked`, :func:`run_tiled`, :func:`stream_chunked`): overlapping outputs are
  averaged with equal weights, in float64. :func:`stream_chunked` consumes frames from an iterator and
  yields output frames in order as soon as no later chunk can touch them, holding at most about two
  chunks of input and one chunk of output.
* blend (:func:`run_blended`, and :func:`test_video` / :func:`test_clip` as in JingyunLiang/VRT
  ``main_test_vrt.py``): clips of ``tile[0]`` frames averaged in time; square patches of ``tile[1]``
  pixels, each dropping ``overlap // 2`` output rows/columns on sides that are not image borders, then
  averaged by the kept counts, in float32. A zero tile runs the whole clip / frame after mirror-padding
  it to a multiple of the attention window. Only one patch goes through the network at a time.
"""
import numpy as np


def window_starts(length, size, overlap=0):
    """Start indices of windows of ``size`` covering ``range(length)`` with ``overlap`` shared items."""
    size, overlap = _check_window(size, overlap, "window")
    return _starts(length, size, size - overlap) if size else [0]


def _starts(length, size, stride):
    """Every ``stride``, then one window ending at ``length``; ``[0]`` when one window covers it all."""
    return list(range(0, length - size, stride)) + [max(0, length - size)]


def _check_window(size, overlap, what):
    size, overlap = int(size or 0), int(overlap or 0)
    if size < 0 or overlap < 0:
        raise ValueError(f"{what} size and overlap must be >= 0, got size={size}, overlap={overlap}")
    if size and overlap >= size:
        raise ValueError(f"{what} overlap ({overlap}) must be smaller than the {what} size ({size})")
    return size, overlap


def _pair(value, what):
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"{what} must be an int or (height, width), got {value!r}")
        return int(value[0] or 0), int(value[1] or 0)
    return int(value or 0), int(value or 0)


def _call(fn, lq, scale):
    """Run ``fn`` on one piece and check its output shape; returns (output, scale)."""
    out = np.asarray(fn(lq))
    t, _, h, w = lq.shape
    if scale is None and out.ndim == 4 and h and w and out.shape[2] % h == 0 and out.shape[2] // h == out.shape[3] / w:
        scale = out.shape[2] // h
    if scale is None or out.ndim != 4 or out.shape[0] != t or out.shape[2:] != (h * scale, w * scale):
        expected = f"({t}, C, {h}*scale, {w}*scale)" if scale is None else f"({t}, C, {h * scale}, {w * scale})"
        raise ValueError(f"restoration fn returned shape {out.shape} for input {lq.shape}; expected {expected}")
    return out, scale


def run_tiled(fn, lq, tile=0, tile_overlap=0, scale=None):
    """Apply ``fn`` to ``lq`` ``(T, C, h, w)`` tile by tile and blend the tiles by averaging.

    ``tile`` and ``tile_overlap`` are in low-resolution pixels (an int, or a (height, width) pair).
    ``scale`` is taken from the first output when None. Returns float32 ``(T, C', h*scale, w*scale)``.
    """
    lq = np.asarray(lq, dtype=np.float32)
    if lq.ndim != 4:
        raise ValueError(f"expected a (T, C, h, w) clip, got shape {lq.shape}")
    (tile_h, tile_w), (over_h, over_w) = _pair(tile, "tile"), _pair(tile_overlap, "tile_overlap")
    _check_window(tile_h, over_h, "tile")
    _check_window(tile_w, over_w, "tile")
    h, w = lq.shape[2:]
    tops, lefts = window_starts(h, tile_h, over_h), window_starts(w, tile_w, over_w)
    if len(tops) == 1 and len(lefts) == 1:
        return _call(fn, lq, scale)[0].astype(np.float32, copy=False)
    size_h, size_w = min(tile_h or h, h), min(tile_w or w, w)
    total = weight = None
    for top in tops:
        for left in lefts:
            out, scale = _call(fn, lq[:, :, top : top + size_h, left : left + size_w], scale)
            if total is None:  # float64 sums keep the average of identical values exact
                total = np.zeros(out.shape[:2] + (h * scale, w * scale), np.float64)
                weight = np.zeros((h * scale, w * scale), np.float64)
            rows = slice(top * scale, (top + size_h) * scale)
            cols = slice(left * scale, (left + size_w) * scale)
            total[:, :, rows, cols] += out
            weight[rows, cols] += 1.0
    return (total / weight).astype(np.float32)


def run_chunked(fn, lq, chunk_frames=0, chunk_overlap=0, tile=0, tile_overlap=0, scale=None):
    """Apply ``fn`` to a whole clip ``(T, C, h, w)`` by temporal chunks and spatial tiles (see module doc)."""
    lq = np.asarray(lq, dtype=np.float32)
    if lq.ndim != 4 or lq.shape[0] == 0:
        raise ValueError(f"expected a non-empty (T, C, h, w) clip, got shape {lq.shape}")
    chunk_frames, chunk_overlap = _check_window(chunk_frames, chunk_overlap, "chunk")
    frames = lq.shape[0]
    size = min(chunk_frames or frames, frames)
    total = None
    weight = np.zeros(frames, np.float64)
    for start in window_starts(frames, chunk_frames, chunk_overlap):
        out = run_tiled(fn, lq[start : start + size], tile, tile_overlap, scale)
        scale = out.shape[-1] // lq.shape[-1]
        if total is None:
            total = np.zeros((frames,) + out.shape[1:], np.float64)
        total[start : start + size] += out
        weight[start : start + size] += 1.0
    return (total / weight[:, None, None, None]).astype(np.float32)


def stream_chunked(fn, frames, chunk_frames=0, chunk_overlap=0, tile=0, tile_overlap=0, scale=None):
    """Like :func:`run_chunked`, but read ``(C, h, w)`` frames from an iterable and yield output frames.

    Output frame ``i`` (float32 ``(C', h*scale, w*scale)``) is yielded as soon as every chunk that covers
    it has run. Input is read only as far as needed to place the next chunk: at most
    ``2 * chunk_frames + 1`` input frames and ``chunk_frames`` partial outputs are held at once.
    With ``chunk_frames=0`` the whole clip is one chunk and is read before the first output.
    The results equal :func:`run_chunked` on the stacked frames.
    """
    chunk, overlap = _check_window(chunk_frames, chunk_overlap, "chunk")
    source = iter(frames)
    buffer = []  # input frames buffer_start, buffer_start + 1, ...
    buffer_start = 0
    ended = False

    def fill(count):
        """Read until the buffer reaches absolute index ``count`` (exclusive) or the input ends."""
        nonlocal ended
        while not ended and buffer_start + len(buffer) < count:
            try:
                frame = next(source)
            except StopIteration:
                ended = True
                break
            frame = np.asarray(frame, dtype=np.float32)
            if frame.ndim != 3 or (buffer and frame.shape != buffer[0].shape):
                raise ValueError(
                    f"frame {buffer_start + len(buffer)} has shape {frame.shape}; "
                    f"expected (C, h, w){' ' + str(buffer[0].shape) if buffer else ''}"
                )
            buffer.append(frame)

    if not chunk:
        fill(float("inf"))
        if not buffer:
            return
        yield from run_tiled(fn, np.stack(buffer), tile, tile_overlap, scale)
        return

    stride = chunk - overlap
    sums, counts = {}, {}  # partial outputs of frames not yielded yet
    start = 0
    fill(chunk)
    if not buffer:
        return
    while True:
        offset = start - buffer_start
        clip = np.stack(buffer[offset : offset + chunk])
        out = run_tiled(fn, clip, tile, tile_overlap, scale)
        scale = out.shape[-1] // clip.shape[-1]
        for i, frame in enumerate(out):
            index = start + i
            if index in sums:
                sums[index] += frame
                counts[index] += 1
            else:
                sums[index] = frame.astype(np.float64)
                counts[index] = 1
        # the next regular chunk exists only if a frame follows it (else the last chunk ends at the clip end)
        fill(start + stride + chunk + 1)
        available = buffer_start + len(buffer)
        if available > start + stride + chunk:
            following = start + stride
        elif available > start + chunk:
            following = available - chunk
        else:
            following = None
        final = available if following is None else following
        for index in range(start, final):
            yield (sums.pop(index) / counts.pop(index)).astype(np.float32)
        if following is None:
            return
        del buffer[: following - buffer_start]
        buffer_start = following
        start = following


# ---------------------------------------------------------------------------------------------- blend
def _check_blend(tile, tile_overlap, window_size):
    if len(tile) != 3 or len(tile_overlap) != 3:
        raise ValueError(f"tile {tile} and tile_overlap {tile_overlap} need 3 values (frames, height, width)")
    if tile[1] % window_size[-1]:
        raise ValueError(f"tile size {tile[1]} must be a multiple of window_size[-1] = {window_size[-1]}")
    if tile[0] and tile_overlap[0] >= tile[0]:
        raise ValueError(f"temporal overlap {tile_overlap[0]} must be smaller than tile[0] = {tile[0]}")
    if tile[1] and tile_overlap[1] >= tile[1]:
        raise ValueError(f"spatial overlap {tile_overlap[1]} must be smaller than tile[1] = {tile[1]}")


def _tensor_call(model):
    """``model`` taking and returning MindSpore tensors (N, D, C, H, W) as a numpy callable."""
    from mindspore import Tensor

    return lambda x: model(Tensor(np.ascontiguousarray(x, dtype=np.float32))).asnumpy()


def _blend_clip(run, lq, scale, window_size, tile, tile_overlap, nonblind_denoising, progress):
    """Upstream ``test_clip`` on a numpy callable ``run``; ``run``'s outputs are modified in place."""
    size = tile[1]
    if not size:
        h_old, w_old = lq.shape[3:]
        h_pad = (window_size[1] - h_old % window_size[1]) % window_size[1]
        w_pad = (window_size[2] - w_old % window_size[2]) % window_size[2]
        if h_pad:
            lq = np.concatenate([lq, np.flip(lq[:, :, :, -h_pad:, :], 3)], 3)
        if w_pad:
            lq = np.concatenate([lq, np.flip(lq[:, :, :, :, -w_pad:], 4)], 4)
        out = run(lq)
        if progress is not None:
            progress.update(1)
        return out[:, :, :, :h_old * scale, :w_old * scale]
    overlap = tile_overlap[1]
    b, d, c, h, w = lq.shape
    c = c - 1 if nonblind_denoising else c
    h_starts, w_starts = _starts(h, size, size - overlap), _starts(w, size, size - overlap)
    acc = np.zeros((b, d, c, h * scale, w * scale), np.float32)
    # upstream keeps a full-size weight; it only varies over (height, width), so one plane holds the same counts
    weight = np.zeros((h * scale, w * scale), np.float32)
    for hi in h_starts:
        for wi in w_starts:
            out = run(lq[..., hi:hi + size, wi:wi + size])
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


def _blend_video(run, lq, scale, window_size, tile, tile_overlap, nonblind_denoising, progress):
    """Upstream ``test_video`` on a numpy callable ``run``: temporal clips of ``tile[0]`` frames, averaged."""
    frames = tile[0]
    if not frames:
        d_old = lq.shape[1]
        d_pad = (window_size[0] - d_old % window_size[0]) % window_size[0]
        if d_pad:
            lq = np.concatenate([lq, np.flip(lq[:, -d_pad:], 1)], 1)
        out = _blend_clip(run, lq, scale, window_size, tile, tile_overlap, nonblind_denoising, progress)
        return out[:, :d_old]
    b, d, c, h, w = lq.shape
    c = c - 1 if nonblind_denoising else c
    acc = np.zeros((b, d, c, h * scale, w * scale), np.float32)
    weight = np.zeros((b, d, 1, 1, 1), np.float32)
    for di in _starts(d, frames, frames - tile_overlap[0]):
        acc[:, di:di + frames] += _blend_clip(run, lq[:, di:di + frames], scale, window_size, tile, tile_overlap,
                                              nonblind_denoising, progress)
        weight[:, di:di + frames] += 1.0
    return np.divide(acc, weight, out=acc)  # in place: no second full-size array


def count_model_calls(shape, tile, tile_overlap):
    """How many network calls ``test_video`` makes for an (N, D, C, H, W) input (for progress bars)."""
    _, d, _, h, w = shape
    clips = len(_starts(d, tile[0], tile[0] - tile_overlap[0])) if tile[0] else 1
    if not tile[1]:
        return clips
    stride = tile[1] - tile_overlap[1]
    return clips * len(_starts(h, tile[1], stride)) * len(_starts(w, tile[1], stride))


def test_clip(lq, model, scale, window_size, tile, tile_overlap, nonblind_denoising=False, progress=None):
    """Run ``model`` (MindSpore tensors in and out) on one clip (N, D, C, H, W), whole or patch by patch
    (``tile[1]``); returns (N, D, C, H*scale, W*scale). ``progress``: a tqdm bar to advance per call."""
    _check_blend(tile, tile_overlap, window_size)
    return _blend_clip(_tensor_call(model), lq, scale, window_size, tile, tile_overlap, nonblind_denoising, progress)


def test_video(lq, model, scale, window_size, tile=(40, 128, 128), tile_overlap=(2, 20, 20),
               nonblind_denoising=False, progress=False):
    """Restore a whole video (N, D, C, H, W) with temporal clips and spatial patches, as upstream does.

    ``model`` takes and returns MindSpore tensors (the VRT Cell). ``progress`` True shows a tqdm bar over
    the network calls.
    """
    lq = np.asarray(lq, dtype=np.float32)
    if lq.ndim != 5:
        raise ValueError(f"test_video: expected (N, D, C, H, W), got shape {lq.shape}")
    tile, tile_overlap, window_size = list(tile), list(tile_overlap), list(window_size)
    _check_blend(tile, tile_overlap, window_size)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=count_model_calls(lq.shape, tile, tile_overlap), desc="VRT tiles", unit="call")
    try:
        return _blend_video(_tensor_call(model), lq, scale, window_size, tile, tile_overlap, nonblind_denoising, bar)
    finally:
        if bar is not None:
            bar.close()


def run_blended(fn, lq, scale, window_size, tile, tile_overlap, nonblind_denoising=False):
    """:func:`test_video` for a numpy restoration callable ``fn`` ``(T, C, h, w) -> (T', C', H, W)`` (as
    :func:`run_chunked` takes) on one clip ``(T, C, h, w)``; ``tile``, ``tile_overlap`` and
    ``window_size`` are [frames, height, width]. Returns float32 ``(T', C', h*scale, w*scale)``.
    """
    lq = np.asarray(lq, dtype=np.float32)
    if lq.ndim != 4:
        raise ValueError(f"run_blended: expected a (T, C, h, w) clip, got shape {lq.shape}")
    tile, tile_overlap, window_size = list(tile), list(tile_overlap), list(window_size)
    _check_blend(tile, tile_overlap, window_size)

    def run(x):
        # a copy: the blending zeroes output borders in place, and fn may return a view of its input
        return np.array(fn(np.ascontiguousarray(x[0]))[None], dtype=np.float32)

    return _blend_video(run, lq[None], scale, window_size, tile, tile_overlap, nonblind_denoising, None)[0]


# upstream's names start with test_: keep pytest from collecting them where tests import them
test_clip.__test__ = False
test_video.__test__ = False
