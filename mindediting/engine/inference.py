"""Inference on a user's files, for every task: the pieces the task adapters share.

* :class:`OutputRun`: where one run writes. The video is H.264 (:mod:`mindediting.data.video_av`), encoded segment by
  segment into ``<output_dir>/.<name>.resume/`` and joined (packets copied, the input's audio added) at the end;
  PNG frames, a side-by-side ``--compare`` video and one still. After each completed segment the run's state is
  saved, so an interrupted run (Ctrl-C, kill -9) continues with ``--resume auto`` from the last completed segment;
  the joined result equals that of an unbroken run. A progress bar shows frames/s and the ETA.
* :func:`run_inference`: frame-to-frame restoration (super-resolution, deblurring, denoising) streamed through
  :func:`~mindediting.engine.tiling.stream_chunked` with the ``infer`` section's chunks and tiles.
* :func:`plan_memory`: chunk length and tile size for ``--max_memory`` from the model spec's ``infer_memory``.

Frames are RGB ``uint8`` ``(H, W, 3)`` (grey ``(H, W)`` for SCI and spike outputs); networks take float32
``(T, C, h, w)`` in ``[0, 1]``. PSNR is measured on the ``uint8`` frames before H.264 encoding and on the frames
decoded from the written MP4, and each figure says which it is.
"""
import hashlib
import json
import logging
import os
import re
import shutil
from collections import deque

import cv2
import numpy as np
import yaml

from mindediting.data.video_av import DEFAULT_CRF, H264Writer, as_rate, join_segments
from mindediting.data.video_io import FrameSource, to_uint8, write_bytes_atomic, write_png
from mindediting.engine.tiling import stream_chunked, window_starts
from mindediting.metrics import calculate_psnr
from mindediting.utils.atomic import check_writable_dir, write_text_atomic

logger = logging.getLogger(__name__)

BASELINES = ("bicubic",)
PSNR_NOTE = "RGB uint8"


def psnr_text(result, crf):
    """``"38.51 dB before encoding, 38.20 dB after encoding (H.264 crf 17)"``: the frames as computed, and as
    decoded from the written MP4 (what a viewer gets)."""
    text = f"{result['psnr']:.2f} dB before encoding"
    if result.get("psnr_encoded") is not None:
        text += f", {result['psnr_encoded']:.2f} dB after encoding (H.264 crf {crf})"
    return text


# ------------------------------------------------------------------------------------------ restoration callables
def bicubic_fn(scale):
    """Model-free baseline: upscale every frame of a ``(T, C, h, w)`` clip with OpenCV bicubic."""

    def upscale(lq):
        t, c, h, w = lq.shape
        out = np.empty((t, c, h * scale, w * scale), np.float32)
        for i, frame in enumerate(lq):
            hwc = cv2.resize(np.ascontiguousarray(frame.transpose(1, 2, 0)), (w * scale, h * scale),
                             interpolation=cv2.INTER_CUBIC)
            out[i] = hwc.reshape(h * scale, w * scale, c).transpose(2, 0, 1)
        return out

    return upscale


def network_fn(net):
    """Wrap a MindSpore Cell taking ``(N, T, C, h, w)`` into a ``(T, C, h, w) -> (T, C, H, W)`` numpy callable."""
    import mindspore as ms

    def restore(lq):
        out = net(ms.Tensor(np.ascontiguousarray(lq[None], dtype=np.float32)))
        if isinstance(out, (list, tuple)):
            out = out[0]
        return out.asnumpy()[0]

    return restore


def downscale(frame, factor):
    """MATLAB-bicubic (antialiased, as the BIx4 test sets are made) downscale of an RGB ``uint8`` frame by
    ``factor``, rounded to ``uint8``; the frame is first cropped to a multiple of ``factor``."""
    from mindediting.utils.matlab_resize import imresize

    h, w = frame.shape[:2]
    h, w = h - h % factor, w - w % factor
    return np.clip(np.round(imresize(frame[:h, :w], 1.0 / factor)), 0, 255).astype(np.uint8)


def to_frame(chw):
    """A float ``(C, H, W)`` network output in [0, 1] -> ``uint8`` ``(H, W, C)`` (grey ``(H, W)`` for one channel)."""
    image = to_uint8(np.asarray(chw).transpose(1, 2, 0))
    return image[..., 0] if image.shape[2] == 1 else image


# ------------------------------------------------------------------------------------------------- memory budget
def parse_memory(text):
    """``'4G'``, ``'512M'``, ``'1.5GB'`` or bytes -> bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)i?b?\s*", str(text).lower())
    if not match:
        raise ValueError(f"--max_memory '{text}' is not a size such as 4G, 512M or 1.5G")
    return int(float(match.group(1)) * 1024 ** " kmgt".index(match.group(2) or " "))


def plan_memory(model, budget, frames, height, width, min_chunk=2, tile_multiple=8, min_tile=32, pad_multiple=1):
    """``(chunk_frames, tile)`` keeping the peak host RSS within ``budget`` bytes.

    ``model`` is a spec's ``infer_memory``: ``floor_mb`` (the process with the runtime, the network and the
    codecs loaded, before any frame) and ``kb_per_pixel`` (peak growth per low-resolution input pixel of one
    chunk, frames x tile area, measured end to end by ``benchmarks/measure_infer_memory.py``). Whole frames are
    preferred with the longest chunk that fits; otherwise chunks of ``min_chunk`` frames and the largest tile (a
    multiple of ``tile_multiple``). A budget under the floor, or too small for ``min_tile`` tiles, is refused.
    ``pad_multiple``: the network pads frames (and tiles) to this multiple, so pixels are counted after padding
    (VRT: 64, its 8x8 attention windows at 1/8 scale).
    """
    def padded(size):
        return -(-size // pad_multiple) * pad_multiple

    height, width = padded(height), padded(width)
    tile_multiple = max(tile_multiple, pad_multiple)
    floor = model["floor_mb"] * 2**20
    per_pixel = model["kb_per_pixel"] * 1024
    spare = budget - floor
    need = floor + per_pixel * min_chunk * min(min_tile, height) * min(min_tile, width)
    if spare <= 0 or budget < need:
        raise ValueError(f"--max_memory {budget / 2**30:.2f} GiB is below this model's floor of "
                         f"{need / 2**30:.2f} GiB (runtime, weights and the smallest chunk); raise it")
    pixels = spare / per_pixel  # frame-pixels one chunk may hold
    longest = int(pixels // (height * width))
    if longest >= min(min_chunk, frames):
        return min(longest, frames), 0
    chunk = min(min_chunk, frames)
    tile = int((pixels / chunk) ** 0.5) // tile_multiple * tile_multiple
    return chunk, max(tile, min_tile)


# ------------------------------------------------------------------------------------------------------ outputs
def _labelled(image, text):
    """``image`` with ``text`` in its top-left corner, white on a dark outline (readable on any content)."""
    image = image.copy()
    scale = max(0.35, min(image.shape[0], image.shape[1]) / 500)
    for colour, thickness in ((0, 3), (255, 1)):
        cv2.putText(image, text, (4, int(14 * scale / 0.35)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (colour,) * (1 if image.ndim == 2 else 3), thickness, cv2.LINE_AA)
    return image


def side_by_side(left, right, labels=None, gap=4):
    """``left | right`` with a white gap; ``left`` is resized (bicubic) to ``right``'s size, channels matched."""
    if left.shape[:2] != right.shape[:2]:
        left = cv2.resize(left, (right.shape[1], right.shape[0]), interpolation=cv2.INTER_CUBIC)
    if left.ndim != right.ndim:
        left, right = (np.repeat(x[..., None], 3, axis=2) if x.ndim == 2 else x for x in (left, right))
    if labels:
        left, right = _labelled(left, labels[0]), _labelled(right, labels[1])
    white = np.full((right.shape[0], gap) + right.shape[2:], 255, np.uint8)
    return np.concatenate([left, white, right], axis=1)


def fingerprint(*parts):
    """A hash of what decides a run's output: settings, and the size and time of each file it reads."""
    items = []
    for part in parts:
        if isinstance(part, str) and os.path.exists(part):
            stat = os.stat(part)
            part = (os.path.abspath(part), stat.st_size, int(stat.st_mtime))
        items.append(part)
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()[:16]


class OutputRun:
    """The outputs of one run, written segment by segment (see the module docstring).

    Args:
        output_dir, name: files are ``<name>.mp4``, ``<name>/<index:08d>.png``, ``<name>_compare.mp4`` and
            ``<name>_compare.png``.
        rate: output frame rate (``Fraction`` or number).
        units, segment_units: input units (frames, measurements, windows) of the run and per segment.
        frames: output frames of the whole run (for the still's index and the progress bar).
        compare: ``(left label, right label)`` to write the side-by-side outputs, or None.
        audio: a video file whose audio the MP4 carries, trimmed to the output's duration.
        resume: continue a run with the same ``key`` whose state is in the folder.
        png_name: file name pattern of the PNG frames inside ``<name>/``.
    The producer asks :attr:`start_unit` where to begin, calls :meth:`write` per output frame, then
    :meth:`finish`, or :meth:`abort` on an exception.
    """

    def __init__(self, output_dir, name, rate, units, segment_units, frames, save_mp4=True, save_png=False,
                 compare=None, crf=DEFAULT_CRF, audio=None, resume=False, key="", progress=True, desc="infer",
                 png_name="{:08d}.png"):
        if not save_mp4 and not save_png:
            raise ValueError("infer.save_mp4 and infer.save_png are both false: nothing would be written")
        check_writable_dir(output_dir)
        self.output_dir, self.name, self.rate = str(output_dir), name, as_rate(rate)
        self.units, self.segment_units, self.frames = int(units), max(1, int(segment_units)), int(frames)
        self.save_mp4, self.save_png, self.compare, self.crf, self.audio = save_mp4, save_png, compare, crf, audio
        self.key, self.png_name = key, png_name
        base = os.path.join(self.output_dir, name)
        self.mp4, self.png_dir = base + ".mp4", base
        self.compare_mp4, self.still = base + "_compare.mp4", base + "_compare.png"
        self.parts = os.path.join(self.output_dir, f".{name}.resume")
        self.state = {"key": key, "segments": []}
        self._open_state(resume)
        self.segment = len(self.state["segments"])
        self.start_unit = min(self.segment * self.segment_units, self.units)
        self.index = sum(s["frames"] for s in self.state["segments"])
        self._writers, self._scores, self._baseline_scores, self._refs, self._metrics = [], [], [], [], {}
        self._segment_frames = 0
        from tqdm import tqdm

        self.bar = tqdm(total=self.frames, initial=self.index, unit="frame", desc=desc, disable=not progress,
                        dynamic_ncols=True)

    # state --------------------------------------------------------------------------------------------------
    def _state_path(self):
        return os.path.join(self.parts, "state.json")

    def _open_state(self, resume):
        state = None
        if resume and os.path.isfile(self._state_path()):
            with open(self._state_path(), encoding="utf-8") as handle:
                state = json.load(handle)
            if state.get("key") != self.key:
                raise ValueError(f"{self.parts}: the interrupted run there used other settings or inputs; rerun "
                                 "without --resume to start again, or use another --output_dir")
            missing = [p for s in state["segments"] for p in s["files"] if not os.path.isfile(p)]
            if missing:
                raise ValueError(f"{missing[0]}: a completed segment of the interrupted run is gone; rerun without "
                                 "--resume")
        if state is None:
            shutil.rmtree(self.parts, ignore_errors=True)
            state = self.state
        os.makedirs(self.parts, exist_ok=True)
        for leftover in os.listdir(self.parts):  # temporaries of a killed run
            if ".partial" in leftover:
                os.remove(os.path.join(self.parts, leftover))
        self.state = state
        if state["segments"]:
            logger.info("resuming: %d of %d segments done (%d frames)", len(state["segments"]),
                        -(-self.units // self.segment_units), sum(s["frames"] for s in state["segments"]))

    # writing ------------------------------------------------------------------------------------------------
    def _segment_writers(self):
        if self._segment_frames:
            return self._writers
        paths = []
        if self.save_mp4:
            paths.append(os.path.join(self.parts, f"video_{self.segment:05d}.mp4"))
        if self.compare:
            paths.append(os.path.join(self.parts, f"compare_{self.segment:05d}.mp4"))
        self._writers = [H264Writer(p, self.rate, crf=self.crf, bframes=0) for p in paths]
        return self._writers

    def write(self, unit, frame, reference=None, left=None, baseline=None, metrics=None):
        """Output frame of input ``unit``; ``reference``: ground truth for PSNR; ``left``: the compare video's
        left side (default ``reference``); ``baseline``: the baseline's frame, scored for reference;
        ``metrics``: more per-frame scores of the caller (``{name: value}``), averaged in the summary."""
        if unit >= (self.segment + 1) * self.segment_units:
            self._close_segment()
        writers = self._segment_writers()
        if self.save_mp4:
            writers[0].write(frame)
        if self.save_png:
            write_png(os.path.join(self.png_dir, self.png_name.format(self.index)), frame)
        if reference is not None:
            self._scores.append(calculate_psnr(frame, reference))
            if self.save_mp4:
                # kept until the segment is encoded, to score what the MP4 holds; a segment is one chunk of input
                self._refs.append(reference)
            if baseline is not None:
                self._baseline_scores.append(calculate_psnr(baseline, reference))
        for name, value in (metrics or {}).items():
            self._metrics.setdefault(name, []).append(float(value))
        if self.compare:
            left = reference if left is None else left
            shown = side_by_side(left, frame, self.compare)
            writers[-1].write(shown)
            if self.index == self.frames // 2:
                write_png(self.still, shown)
        self.index += 1
        self._segment_frames += 1
        self.bar.update(1)

    def unit_done(self, unit):
        """Input ``unit`` has all its output frames: close the segment now if ``unit`` ends it, so an interruption
        during the next unit keeps it (otherwise it closes at the next segment's first frame)."""
        if (unit + 1) % self.segment_units == 0 or unit + 1 == self.units:
            self._close_segment()

    def _close_segment(self):
        if not self._segment_frames:
            return
        files = [w.close() for w in self._writers]
        encoded = self._score_encoded(files[0]) if self._refs else []
        self.state["segments"].append({"frames": self._segment_frames, "files": files, "psnr": self._scores,
                                       "encoded_psnr": encoded, "baseline_psnr": self._baseline_scores,
                                       "metrics": self._metrics})
        write_text_atomic(self._state_path(), json.dumps(self.state))
        self._writers, self._scores, self._baseline_scores, self._refs, self._metrics = [], [], [], [], {}
        self._segment_frames = 0
        self.segment += 1

    def _score_encoded(self, segment_file):
        """PSNR of the segment's decoded H.264 frames against the references: what a viewer of the MP4 gets.
        The joined MP4 copies the segments' packets, so its frames are these."""
        from mindediting.data.video_av import decode_frames

        grey = self._refs[0].ndim == 2
        scores = []
        for reference, decoded in zip(self._refs, decode_frames(segment_file, grey=grey)):
            scores.append(calculate_psnr(decoded[: reference.shape[0], : reference.shape[1]], reference))
        if len(scores) != len(self._refs):
            raise ValueError(f"{segment_file}: decoded {len(scores)} frames, wrote {len(self._refs)}")
        return scores

    def finish(self):
        """Close the last segment, join the segments (+ audio) into the final videos; return the summary."""
        self._close_segment()
        self.bar.close()
        segments = self.state["segments"]
        if not segments:
            raise ValueError(f"{self.output_dir}: no frame was produced, so nothing was written")
        seconds = self.index / self.rate
        audio = (self.audio, seconds) if self.audio else None
        if self.save_mp4:
            join_segments([s["files"][0] for s in segments], self.mp4, audio=audio)
        if self.compare:
            join_segments([s["files"][-1] for s in segments], self.compare_mp4, audio=audio)
        shutil.rmtree(self.parts, ignore_errors=True)
        scores = [v for s in segments for v in s["psnr"]]
        encoded = [v for s in segments for v in s.get("encoded_psnr", [])]
        baseline = [v for s in segments for v in s["baseline_psnr"]]
        metrics = {}
        for segment in segments:
            for name, values in segment.get("metrics", {}).items():
                metrics.setdefault(name, []).extend(values)
        result = {"frames": self.index, "fps": float(self.rate), "mp4": self.mp4 if self.save_mp4 else None,
                  "png_dir": self.png_dir if self.save_png else None,
                  "compare_mp4": self.compare_mp4 if self.compare else None,
                  "compare_png": self.still if self.compare and os.path.isfile(self.still) else None,
                  "psnr": float(np.mean(scores)) if scores else None,
                  "psnr_encoded": float(np.mean(encoded)) if encoded else None,
                  "psnr_baseline": float(np.mean(baseline)) if baseline else None,
                  "psnr_per_frame": scores, "metrics": {k: float(np.mean(v)) for k, v in metrics.items()},
                  "metrics_per_frame": metrics}
        for key in ("mp4", "png_dir", "compare_mp4", "compare_png"):
            if result[key]:
                logger.info("wrote %s", result[key])
        return result

    def abort(self):
        """Drop the unfinished segment; completed ones stay for ``--resume auto``."""
        self.bar.close()
        for writer in self._writers:
            writer.abort()
        self._writers = []
        if self.state["segments"]:
            logger.info("interrupted after %d frames: rerun with --resume auto to continue", self.index)
        else:
            shutil.rmtree(self.parts, ignore_errors=True)


def resume_start(units, chunk_frames, chunk_overlap, unit):
    """First input frame to feed :func:`~mindediting.engine.tiling.stream_chunked` so that its outputs from
    ``unit`` on equal those of a run from frame 0: the start of the first chunk that covers ``unit`` (outputs are
    sums over the chunks covering them, in chunk order, and those chunks start there)."""
    if not unit or not chunk_frames or chunk_frames >= units:
        return 0
    return next(s for s in window_starts(units, chunk_frames, chunk_overlap) if s + chunk_frames > unit)


# ----------------------------------------------------------------------------------- frame-to-frame restoration
def output_paths(input_path, output_dir, scale):
    stem = os.path.splitext(os.path.basename(os.path.normpath(input_path)))[0]
    base = os.path.join(output_dir, f"{stem}_x{scale}")
    return base + ".mp4", base


def run_inference(cfg, input_path, net=None, output_dir=None, max_frames=0, downscale_input=0, scale=4,
                  progress=True, fn=None, label=None, prepare=None, name=None, compare=False, resume=False,
                  key="", has_reference=False, input_name=None, baseline=None):
    """Restore ``input_path`` (video file or frame folder) frame to frame, streamed in chunks and tiles.

    Args:
        cfg: a config dict; its ``infer`` section gives chunks, tiles, outputs and ``crf``.
        net: a MindSpore Cell ``(1, T, C, h, w) -> (1, T, C, H, W)``; or ``fn`` a numpy callable on
            ``(T, C, h, w)``; neither: the bicubic x``scale`` baseline.
        downscale_input: if > 1, bicubic-downscale the input by this factor first and report PSNR of the
            output against the original frames (next to the bicubic baseline's, when a network runs).
        baseline: a callable like ``fn`` whose output is scored next to it (``psnr_baseline``) where there is
            ground truth.
        prepare: ``f(index, uint8 frame) -> (float32 (C, h, w) network input, reference uint8 or None, shown uint8)``
            for degradations made here (noise); ``shown`` is the input as a picture.
            ``has_reference``: ``prepare`` gives ground truth (PSNR is reported, the comparison shows it).
        name: output name (default ``<input stem>_x<scale>``); compare: write the side-by-side outputs, with
            ``input_name`` labelling the input side; resume, key: see :class:`OutputRun`.
    Returns the :meth:`OutputRun.finish` summary plus ``method``, ``input_size``, ``output_size`` and
    ``psnr_bicubic`` (the baseline's PSNR on the same frames, SR with ``downscale_input`` and a network).
    """
    infer = dict(cfg.get("infer") or {})
    output_dir = output_dir or infer.get("output_dir") or "outputs/infer"
    _check_windows(infer)
    downscale_input = int(downscale_input or 0)
    if downscale_input < 0:
        raise ValueError(f"downscale_input must be >= 0, got {downscale_input}")
    if net is not None:
        fn, label = network_fn(net), label or (cfg.get("model") or {}).get("name", type(net).__name__)
    elif fn is None:
        method = infer.get("baseline") or "bicubic"
        if method not in BASELINES:
            raise ValueError(f"infer.baseline is '{method}'; valid baselines: {', '.join(BASELINES)}")
        fn, label = bicubic_fn(scale), label or "bicubic"
        logger.info("no checkpoint given: running the model-free %s x%d baseline", method, scale)
    if not infer.get("save_mp4", True) and not infer.get("save_png", False):
        raise ValueError("infer.save_mp4 and infer.save_png are both false: nothing would be written")

    fixed = _fixed_fps(infer.get("fps"))
    probe = FrameSource(input_path, max_frames=max_frames, fps=fixed)
    total, factor = len(probe), downscale_input if downscale_input > 1 else 1
    in_w, in_h = probe.width // factor, probe.height // factor
    out_size = (in_w * scale, in_h * scale)
    logger.info("input %s: %d frames, %dx%d, %.3g fps%s", input_path, total, probe.width, probe.height, probe.fps,
                f"; downscaled x{factor} to {in_w}x{in_h}" if factor > 1 else "")
    chunk, overlap = infer.get("chunk_frames", 0) or 0, infer.get("chunk_overlap", 0) or 0
    stem = os.path.splitext(os.path.basename(os.path.normpath(input_path)))[0]
    has_reference = factor > 1 or has_reference
    if compare:
        shown_name = input_name or (f"bicubic x{scale} input" if scale > 1 else "input")
        compare = ("ground truth" if has_reference else shown_name, label)
    run = OutputRun(output_dir, name or f"{stem}_x{scale}", probe.rate, total,
                    (chunk - overlap) if chunk and chunk < total else total, total,
                    save_mp4=infer.get("save_mp4", True), save_png=infer.get("save_png", False),
                    compare=compare or None, crf=infer.get("crf", DEFAULT_CRF),
                    audio=None if probe.is_folder or not probe.audio else input_path, resume=resume, key=key,
                    progress=progress, desc=label)
    pending = deque()  # per input frame: (reference, input as a picture, network input) waiting for its output
    if baseline is None and factor > 1 and net is not None:
        baseline = bicubic_fn(scale)

    def inputs(source, first):
        for index, frame in enumerate(source, start=first):
            reference = shown = None
            if factor > 1:
                h, w = frame.shape[0] - frame.shape[0] % factor, frame.shape[1] - frame.shape[1] % factor
                frame, reference = downscale(frame, factor), frame[:h, :w]
            if prepare is not None:
                lq, reference, shown = prepare(index, frame)
            else:
                lq = frame.astype(np.float32).transpose(2, 0, 1) / 255.0
            pending.append((reference, frame if shown is None else shown, lq if baseline is not None else None))
            yield lq

    try:
        first = resume_start(total, chunk, overlap, run.start_unit)
        source = FrameSource(input_path, start=first, max_frames=total - first, fps=fixed) if first else probe
        outputs = stream_chunked(fn, inputs(source, first), chunk, overlap, infer.get("tile", 0),
                                 infer.get("tile_overlap", 0), scale)
        for index, out in enumerate(outputs, start=first):
            reference, shown, lq = pending.popleft()
            if index < run.start_unit:
                continue  # made by the interrupted run; computed again only because its chunk reaches further
            image = to_frame(out)
            if (image.shape[1], image.shape[0]) != out_size:
                raise ValueError(f"{label}: output frame {index} is {image.shape[1]}x{image.shape[0]}, "
                                 f"expected {out_size[0]}x{out_size[1]} (x{scale} of the input)")
            base = to_frame(baseline(lq[None])[0]) if baseline is not None and reference is not None else None
            run.write(index, image, reference, shown if reference is None else None, base)
    except BaseException:
        run.abort()
        raise
    result = run.finish()
    result.update(method=label, input_size=(in_w, in_h), output_size=out_size)
    result["psnr_bicubic"] = result["psnr_baseline"] if factor > 1 else None
    if result["psnr"] is not None:
        logger.info("%s: mean PSNR %s (%s) over %d frames against the %s", label,
                    psnr_text(result, infer.get("crf", DEFAULT_CRF)), PSNR_NOTE, result["frames"],
                    "clean frames" if prepare is not None else "original frames")
    if result["psnr_bicubic"] is not None:
        logger.info("bicubic x%d on the same frames: mean PSNR %.2f dB before encoding", scale, result["psnr_bicubic"])
    elif result["psnr_baseline"] is not None:
        logger.info("the input itself on the same frames: mean PSNR %.2f dB before encoding", result["psnr_baseline"])
    return result


def _check_windows(infer):
    """``infer.chunk_frames/chunk_overlap`` and ``infer.tile/tile_overlap``: sizes >= 0, overlap < size."""
    for size_key, overlap_key in (("chunk_frames", "chunk_overlap"), ("tile", "tile_overlap")):
        size, overlap = infer.get(size_key) or 0, infer.get(overlap_key) or 0
        for key, value in ((size_key, size), (overlap_key, overlap)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"infer.{key} must be an integer >= 0, got {value!r}")
        if size and overlap >= size:
            raise ValueError(f"infer.{overlap_key} ({overlap}) must be smaller than infer.{size_key} ({size})")


def _fixed_fps(value):
    """``infer.fps``: a number, or None / 'source' to keep the input's rate."""
    if value in (None, "", "source"):
        return None
    try:
        fps = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"infer.fps must be a number or 'source', got {value!r}") from None
    if fps <= 0:
        raise ValueError(f"infer.fps must be > 0, got {value!r}")
    return fps


def save_config(cfg, output_dir, name="infer_config.yaml"):
    """Write the merged config beside the outputs (atomically) and return its path."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, name)
    write_bytes_atomic(path, yaml.safe_dump(cfg, sort_keys=False).encode("utf-8"))
    return path
