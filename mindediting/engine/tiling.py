"""Model-agnostic temporal chunking and spatial tiling for video restoration inference.

A restoration callable ``fn(lq) -> hq`` takes a float32 clip ``(T, C, h, w)`` and returns
``(T, C', h * scale, w * scale)``. To bound memory, the clip is cut into temporal chunks of
``chunk_frames`` frames, consecutive chunks sharing ``chunk_overlap`` frames, and every chunk into
spatial tiles of ``tile`` low-resolution pixels sharing ``tile_overlap`` pixels. Where pieces overlap,
the outputs are averaged with equal weights: the result is the sum of all contributions to a pixel
divided by their number (the weight map). A size of 0 means "whole" (no cutting).

Windows start every ``size - overlap`` positions; the last window is moved back to end exactly at the
border, so every window has the full size (unless the clip or frame is smaller than one window).
For 10 frames, ``chunk_frames=4``, ``chunk_overlap=1``: chunks [0, 4), [3, 7), [6, 10).

:func:`run_chunked` works on a whole array; :func:`stream_chunked` consumes frames from an iterator
and yields output frames in order as soon as no later chunk can touch them, holding at most about
two chunks of input and one chunk of output.
"""
import numpy as np


def window_starts(length, size, overlap=0):
    """Start indices of windows of ``size`` covering ``range(length)`` with ``overlap`` shared items."""
    size, overlap = _check_window(size, overlap, "window")
    if size == 0 or size >= length:
        return [0]
    stride = size - overlap
    return list(range(0, length - size, stride)) + [length - size]


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
