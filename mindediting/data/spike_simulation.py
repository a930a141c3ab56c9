"""Simulate a spike camera from ordinary video (integrate-and-fire, as lshpku/spikling ``preprocess.py``).

Each output pixel integrates the grey value of every video frame; when the accumulator reaches 255 the pixel
fires one spike and 255 is subtracted (the remainder is kept). Frames are centre-cropped to the output aspect
ratio, turned grey with OpenCV's ``COLOR_RGB2GRAY`` applied to the BGR frame (as upstream does, so the 0.299
weight falls on blue) and resized with ``INTER_LINEAR``. The accumulator starts uniform in [0, 255) from
numpy's global RNG (``np.random.random``) unless an initial state or a ``numpy.random.Generator`` is given.

Windows of ``window`` frames become training samples: spikes (window, H, W) + the grey frame at index
``window // 2`` as ground truth; an incomplete trailing window is dropped.
"""
import os

import cv2
import numpy as np

from mindediting.data.spike_io import SpikeDatWriter, save_spike_npz


def crop_box(width, height, out_w, out_h):
    """(top, bottom, left, right) of the centred crop with the aspect ratio of ``out_w x out_h``."""
    ratio = min(width / out_w, height / out_h)
    left = round((width - out_w * ratio) / 2)
    top = round((height - out_h * ratio) / 2)
    return top, height - top, left, width - left


def grey_frame(frame_bgr, size):
    """Crop, grey and resize one BGR uint8 frame to ``size = (W, H)`` as the upstream simulator."""
    height, width = frame_bgr.shape[:2]
    top, bottom, left, right = crop_box(width, height, size[0], size[1])
    grey = cv2.cvtColor(np.ascontiguousarray(frame_bgr[top:bottom, left:right]), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, tuple(int(s) for s in size), interpolation=cv2.INTER_LINEAR)


def grey_frames(frames_bgr, size):
    """``(T, H, W)`` uint8: :func:`grey_frame` of each BGR frame of an iterable."""
    size = tuple(int(s) for s in size)
    return np.stack([grey_frame(frame, size) for frame in frames_bgr])


class IntegrateAndFire:
    """The spike simulator state: ``step(grey)`` -> one (H, W) uint8 0/1 spike frame."""

    def __init__(self, size, initial=None, rng=None, threshold=255.0):
        width, height = int(size[0]), int(size[1])
        if initial is not None:
            initial = np.asarray(initial, dtype=np.float64)
            if initial.shape != (height, width):
                raise ValueError(f"initial accumulator must be (H, W) = {(height, width)}, got {initial.shape}")
            self.adder = initial.copy()
        elif rng is not None:
            self.adder = rng.random((height, width)) * threshold
        else:
            self.adder = np.random.random((height, width)) * threshold
        self.threshold = threshold

    def step(self, grey):
        self.adder += grey
        spike = self.adder >= self.threshold
        self.adder -= self.threshold * spike
        return spike.astype(np.uint8)


def integrate(greys, rng):
    """Spikes ``(T, H, W)`` uint8 of grey frames ``(T, H, W)`` (integrate-and-fire, threshold 255, accumulator drawn
    from ``rng``)."""
    sim = IntegrateAndFire((greys.shape[2], greys.shape[1]), rng=rng)
    return np.stack([sim.step(grey.astype(np.float64)) for grey in greys])


def check_variant(motion, gain):
    """``(int motion, float gain)``, or a ValueError naming the bad one (see :func:`variant_greys`)."""
    motion, gain = int(motion), float(gain)
    if motion < 0:
        raise ValueError(f"motion {motion}: a frame step >= 0 (0 = still, 1 = as filmed, k = k x faster)")
    if not 0.0 < gain <= 1.0:
        raise ValueError(f"gain {gain}: a brightness factor in (0, 1]")
    return motion, gain


def variant_greys(greys, motion=1, gain=1.0):
    """Grey frames ``(T, H, W)`` uint8 of a scene that moves ``motion`` times as fast (every ``motion``-th frame;
    ``0``: still, the middle frame held for all ``T``) under ``gain`` times the light (rounded to uint8)."""
    motion, gain = check_variant(motion, gain)
    moved = np.repeat(greys[len(greys) // 2][None], len(greys), axis=0) if motion == 0 else greys[::motion]
    return moved if gain == 1.0 else np.round(moved * gain).astype(np.uint8)


def read_video_frames(path):
    """Yield the BGR uint8 frames of a video file; error if it cannot be opened or holds no frame."""
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: video file not found")
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise ValueError(f"{path}: OpenCV cannot open this video")
    count = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            count += 1
            yield frame
    finally:
        cap.release()
    if count == 0:
        raise ValueError(f"{path}: video holds no decodable frame")


def video_fps(path, default=30.0):
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    return fps if fps and fps > 0 else default


def simulate_spikes(frames_bgr, size, initial=None, rng=None):
    """Yield ``(spike, grey)`` per input BGR frame; ``size = (W, H)``."""
    sim = None
    for frame in frames_bgr:
        grey = grey_frame(frame, size)
        if sim is None:
            sim = IntegrateAndFire(size, initial=initial, rng=rng)
        yield sim.step(grey), grey


def spike_windows(frames_bgr, size, window=32, initial=None, rng=None):
    """Yield ``(spikes (window, H, W) uint8, tag (H, W) uint8)`` for every complete window."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    spikes, tag = [], None
    for spike, grey in simulate_spikes(frames_bgr, size, initial, rng):
        if len(spikes) == window // 2:
            tag = grey
        spikes.append(spike)
        if len(spikes) == window:
            yield np.stack(spikes), tag.astype(np.uint8)
            spikes, tag = [], None


def video_to_spike(video, size, window, save_pattern, start_index=1, dat_path=None, initial=None, rng=None,
                   progress=None):
    """Simulate spikes from ``video`` (a path or an iterable of BGR frames) and write ``.npz`` windows.

    ``save_pattern`` is formatted with a running index starting at ``start_index`` (upstream's global
    counter); pass ``None`` to write no windows. When ``dat_path`` is given, every simulated frame is also
    written to a raw ``.dat`` file. Returns the list of window files written.
    """
    frames = read_video_frames(video) if isinstance(video, (str, os.PathLike)) else video
    written = []
    dat = SpikeDatWriter(dat_path) if dat_path else None
    try:
        spikes, tag = [], None
        for spike, grey in simulate_spikes(frames, size, initial, rng):
            if dat is not None:
                dat.write(spike)
            if len(spikes) == window // 2:
                tag = grey
            spikes.append(spike)
            if len(spikes) == window:
                if save_pattern:
                    written.append(save_spike_npz(save_pattern.format(start_index + len(written)),
                                                  np.stack(spikes), tag.astype(np.uint8)))
                if progress is not None:
                    progress.update(1)
                spikes, tag = [], None
        if dat is not None:
            dat.close()
            dat = None
    finally:
        if dat is not None:
            dat.__exit__(RuntimeError, None, None)
    return written
