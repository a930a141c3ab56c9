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
import logging
import os
import re
from collections import deque

import cv2
import numpy as np
import yaml

from mindediting.data.video_av import DEFAULT_CRF
from mindediting.data.video_io import FrameSource, to_uint8, write_bytes_atomic
from mindediting.engine.output_run import OutputRun, resume_start
from mindediting.engine.tiling import stream_chunked

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


def padded(size, multiple):
    """``size`` rounded up to a multiple of ``multiple``: what a network that pads its input runs on."""
    return -(-size // multiple) * multiple


def plan_memory(model, budget, frames, height, width):
    """``(chunk_frames, tile)`` keeping the peak host RSS within ``budget`` bytes.

    ``model`` is a spec's ``infer_memory``: ``floor_mb`` (the process with the runtime, the network and the
    codecs loaded, before any frame) and ``kb_per_pixel`` (peak growth per low-resolution input pixel of one
    chunk, frames x tile area, measured end to end by ``benchmarks/measure_infer_memory.py``). Whole frames are
    preferred with the longest chunk that fits; otherwise chunks of ``min_chunk`` (2) frames and the largest tile
    (a multiple of ``tile_multiple``, 8). A budget under the floor, or too small for ``min_tile`` (32) tiles, is
    refused. ``pad_multiple`` (1): the network pads frames (and tiles) to this multiple, so pixels are counted after
    padding (VRT: 64, its 8x8 attention windows at 1/8 scale).
    """
    min_chunk, tile_multiple = model.get("min_chunk", 2), model.get("tile_multiple", 8)
    min_tile, pad_multiple = model.get("min_tile", 32), model.get("pad_multiple", 1)

    height, width = padded(height, pad_multiple), padded(width, pad_multiple)
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
