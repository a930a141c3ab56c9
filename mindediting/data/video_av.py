"""Video files through PyAV (FFmpeg inside its wheel): read what FFmpeg reads, write H.264 MP4 with the source's audio.

* :func:`probe` -> :class:`VideoInfo`: frame rate (a ``Fraction``), frame count, size, audio codec (or None).
* :func:`decode_rgb` streams RGB ``uint8`` ``(H, W, 3)`` frames, one at a time; :func:`decode_frames` RGB or grey.
* :class:`H264Writer` encodes ``uint8`` frames (RGB, or grey ``(H, W)``) as H.264 yuv420p (libx264, ``crf``) in
  an MP4 written under a temporary name and moved into place on :meth:`~H264Writer.close`. 4:2:0 chroma needs
  even sizes: an odd frame is padded by one replicated row/column for the encoder only.
* :func:`join_segments` concatenates H.264 MP4 segments of one size and one encoder setting into a single MP4
  without re-encoding (packets are copied, time stamps shifted), so a run encoded chunk by chunk, or resumed
  after an interruption, gives the same decoded frames as one encoded in a single go with the same chunks.

Both writers can carry the audio of a source file (``audio=(path, seconds)``), trimmed to the video's duration:
copied packet by packet when MP4 holds its codec, re-encoded to AAC otherwise.

Every error names the file on one line (a ``ValueError``).
"""
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from mindediting.utils.atomic import AtomicPath, AtomicWriterMixin

# audio codecs FFmpeg's MP4 muxer stores as they are; others (PCM, Vorbis, ...) become AAC
MP4_AUDIO_CODECS = ("aac", "mp3", "alac", "ac3", "eac3")
DEFAULT_CRF = 17
DEFAULT_PRESET = "medium"


class VideoFileError(ValueError):
    """A video file cannot be read or written; the message names the file."""


@dataclass(frozen=True)
class VideoInfo:
    path: str
    rate: Fraction  # frames per second
    frames: int
    width: int
    height: int
    audio: str = None  # codec name of the first audio stream

    @property
    def fps(self):
        return float(self.rate)


def _first_line(err):
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _open(path):
    try:
        return av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as err:
        raise VideoFileError(f"{path}: cannot open as a video ({_first_line(err)})") from None


def as_rate(value):
    """A frame rate as a ``Fraction`` (29.97 -> 30000/1001, as FFmpeg spells NTSC rates)."""
    rate = Fraction(value).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"frame rate must be > 0, got {value}")
    return rate


def probe(path):
    """Frame rate, frame count, size and audio codec of ``path``; counts packets when the file declares no count."""
    path = str(path)
    with _open(path) as container:
        if not container.streams.video:
            raise VideoFileError(f"{path}: holds no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
        frames = stream.frames
        if not frames:  # mkv/webm headers carry no count: demuxing without decoding is cheap
            try:
                frames = sum(1 for packet in container.demux(stream) if packet.size)
            except av.FFmpegError as err:
                raise VideoFileError(f"{path}: cannot read its packets ({_first_line(err)})") from None
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        width, height = stream.codec_context.width, stream.codec_context.height
    if frames <= 0:
        raise VideoFileError(f"{path}: the video stream holds no frame")
    return VideoInfo(path, as_rate(rate), int(frames), int(width), int(height), audio)


def decode_rgb(path, start=0, count=None):
    """Yield RGB ``uint8`` frames ``start, start + 1, ...`` (at most ``count``); decodes from the beginning, which
    is exact where seeking by time stamp is not."""
    path = str(path)
    yielded = 0
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for index, frame in enumerate(container.decode(stream)):
                if index < start:
                    continue
                if count is not None and yielded >= count:
                    return
                yield frame.to_ndarray(format="rgb24")
                yielded += 1
        except av.FFmpegError as err:
            raise VideoFileError(f"{path}: decoding stopped at frame {start + yielded} ({_first_line(err)})") from None


def decode_frames(path, grey=False):
    """Yield the frames of ``path`` as ``uint8``: RGB ``(H, W, 3)``, or with ``grey`` the luma ``(H, W)`` (what a
    grey frame written by :class:`H264Writer` comes back as, without a trip through RGB)."""
    path = str(path)
    with _open(path) as container:
        try:
            for frame in container.decode(container.streams.video[0]):
                yield frame.to_ndarray(format="gray" if grey else "rgb24")
        except av.FFmpegError as err:
            raise VideoFileError(f"{path}: decoding failed ({_first_line(err)})") from None


def check_frame(frame, where, size=None):
    """A ``uint8`` RGB ``(H, W, 3)`` or grey ``(H, W)`` frame of ``size`` (width, height); ``where`` names it in
    the message: ``"<path>: frame 3"``."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or not (
        frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)
    ):
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"{where} must be a uint8 (H, W, 3) RGB or (H, W) grey array, got {got}")
    if size is not None and (frame.shape[1], frame.shape[0]) != size:
        raise ValueError(f"{where} is {frame.shape[1]}x{frame.shape[0]}, expected {size[0]}x{size[1]} like frame 0")


def _pad_even(frame):
    rows, cols = frame.shape[0] % 2, frame.shape[1] % 2
    if not rows and not cols:
        return frame
    pad = ((0, rows), (0, cols)) + ((0, 0),) * (frame.ndim - 2)
    return np.pad(frame, pad, mode="edge")


class _Audio:
    """The first audio stream of ``source``, trimmed to ``seconds``, into an output container."""

    def __init__(self, source, seconds):
        self.source, self.seconds = str(source), float(seconds)
        self._input = _open(self.source)
        self._in = self._input.streams.audio[0] if self._input.streams.audio else None
        self._out = None
        self.copies = self._in is not None and self._in.codec_context.name in MP4_AUDIO_CODECS

    def add_stream(self, container):
        """Declare the output stream; must happen before the first packet is written."""
        if self._in is None:
            return
        if self.copies:
            self._out = container.add_stream_from_template(self._in)
        else:
            self._out = container.add_stream("aac", rate=self._in.codec_context.sample_rate or 48000)
            # AAC takes named layouts only ("2 channels" of a PCM track is not one): mono stays, the rest is stereo
            layout = self._in.codec_context.layout
            self._out.layout = "mono" if layout is not None and layout.nb_channels == 1 else "stereo"

    def write(self, container):
        if self._out is None:
            return
        try:
            if self.copies:
                self._copy(container)
            else:
                self._encode(container)
        except av.FFmpegError as err:
            raise VideoFileError(f"{self.source}: cannot carry its audio ({_first_line(err)})") from None

    def _copy(self, container):
        for packet in self._input.demux(self._in):
            if packet.dts is None:
                continue
            if packet.pts is not None and packet.pts * packet.time_base >= self.seconds:
                break
            packet.stream = self._out
            container.mux(packet)

    def _encode(self, container):
        ctx = self._out.codec_context
        resampler = av.AudioResampler(format=ctx.format.name, layout=ctx.layout.name, rate=ctx.sample_rate,
                                      frame_size=ctx.frame_size or 1024)
        remaining = int(round(self.seconds * ctx.sample_rate))
        pts = 0
        for frame in self._input.decode(self._in):
            for chunk in resampler.resample(frame):
                remaining, pts = self._encode_chunk(container, chunk, remaining, pts)
            if remaining <= 0:
                break
        for chunk in resampler.resample(None):
            remaining, pts = self._encode_chunk(container, chunk, remaining, pts)
        for packet in self._out.encode(None):
            container.mux(packet)

    def _encode_chunk(self, container, chunk, remaining, pts):
        if remaining <= 0:
            return remaining, pts
        if chunk.samples > remaining:  # the last frame holds fewer samples: the encoder takes a short final frame
            data = chunk.to_ndarray()[..., :remaining]
            short = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=chunk.format.name,
                                               layout=chunk.layout.name)
            short.sample_rate = chunk.sample_rate
            chunk = short
        chunk.pts = pts
        for packet in self._out.encode(chunk):
            container.mux(packet)
        return remaining - chunk.samples, pts + chunk.samples

    def close(self):
        self._input.close()


class H264Writer(AtomicWriterMixin):
    """Stream ``uint8`` frames into an H.264 yuv420p MP4 at ``rate`` frames/s; ``path`` appears on :meth:`close`.

    Args:
        rate: frame rate (a number or ``Fraction``).
        crf: libx264 constant rate factor (0 lossless ... 51; 17 is visually lossless for most footage).
        audio: ``(source file, seconds)``: carry the source's first audio stream, trimmed to ``seconds``.
        bframes: libx264's B-frame count (None: the preset's). Segments for :func:`join_segments` use 0: x264
            gives a short segment another decoding delay than a long one, and MP4 holds one delay per stream.
    The frame size is taken from the first frame. As a context manager, an exception discards the partial file.
    """

    def __init__(self, path, rate, crf=DEFAULT_CRF, audio=None, preset=DEFAULT_PRESET, bframes=None):
        self.path = str(path)
        self.rate = as_rate(rate)
        if not 0 <= int(crf) <= 51:
            raise ValueError(f"{self.path}: crf must be in 0..51, got {crf}")
        self.crf, self.preset, self.audio, self.bframes = int(crf), preset, audio, bframes
        self._target = AtomicPath(self.path, suffix=".mp4")
        self._container = self._stream = self._audio = None
        self.size = None
        self.count = 0
        self.closed = False

    def _start(self, width, height):
        self._container = av.open(self._target.tmp, mode="w", format="mp4")
        stream = self._container.add_stream("libx264", rate=self.rate)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = 1 / self.rate
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        if self.bframes is not None:
            stream.options["bf"] = str(self.bframes)
        self._stream = stream
        if self.audio is not None:
            self._audio = _Audio(*self.audio)
            self._audio.add_stream(self._container)

    def write(self, frame):
        if self.closed:
            raise ValueError(f"{self.path}: writer is already closed")
        check_frame(frame, f"{self.path}: frame {self.count}", self.size)
        if self._container is None:
            self.size = (frame.shape[1], frame.shape[0])
            self._start(*self.size)
        image = av.VideoFrame.from_ndarray(np.ascontiguousarray(_pad_even(frame)),
                                           format="gray" if frame.ndim == 2 else "rgb24")
        image.pts = self.count
        image.time_base = 1 / self.rate
        for packet in self._stream.encode(image):
            self._container.mux(packet)
        self.count += 1

    @property
    def seconds(self):
        return float(self.count / self.rate)

    def close(self):
        """Flush the encoder, add the audio, move the file to ``path``. A writer that got no frame leaves no file."""
        if self.closed:
            return self.path
        self.closed = True
        if self._container is None:
            self._target.discard()
            raise ValueError(f"{self.path}: no frame was written, so no video was created")
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            if self._audio is not None:
                self._audio.write(self._container)
            self._finish()
        except BaseException:
            self._target.discard()
            raise
        return self._target.commit()

    def _finish(self):
        if self._audio is not None:
            self._audio.close()
        self._container.close()

    def abort(self):
        """Drop the partial video; ``path`` is not created or changed."""
        self.closed = True
        if self._container is not None:
            try:
                self._finish()
            except av.FFmpegError:
                pass
        self._target.discard()


def join_segments(segments, path, audio=None):
    """Concatenate H.264 MP4 ``segments`` (one size, one encoder setting) into ``path`` without re-encoding,
    atomically; ``audio=(source, seconds)`` as :class:`H264Writer`. Returns the number of video frames."""
    if not segments:
        raise ValueError(f"{path}: no segment to join")
    inputs = [_open(s) for s in segments]
    frames = 0
    try:
        with AtomicPath(path, suffix=".mp4") as tmp:
            with av.open(tmp, mode="w", format="mp4") as container:
                template = inputs[0].streams.video[0]
                out = container.add_stream_from_template(template)
                carry = _Audio(*audio) if audio is not None else None
                if carry is not None:
                    carry.add_stream(container)
                offset = Fraction(0)  # seconds before the current segment
                for segment in inputs:
                    stream = segment.streams.video[0]
                    rate = stream.average_rate or template.average_rate
                    shift = int(offset / stream.time_base)
                    for packet in segment.demux(stream):
                        if packet.dts is None:  # the demuxer's end-of-stream marker
                            continue
                        packet.pts += shift
                        packet.dts += shift
                        packet.stream = out
                        container.mux(packet)
                    offset += Fraction(stream.frames) / rate
                    frames += stream.frames
                if carry is not None:
                    carry.write(container)
                    carry.close()
    finally:
        for segment in inputs:
            segment.close()
    return frames
