"""Video super-resolution inference: frames in, x``scale`` MP4 and/or PNG frames out, streamed.

The pipeline reads RGB ``uint8`` frames from a :class:`~mindediting.data.video_io.FrameSource`,
optionally bicubic-downscales them (``downscale_input``, to make a low-resolution demo input whose
ground truth is the original clip), feeds float32 ``[0, 1]`` ``(C, h, w)`` frames through
:func:`~mindediting.engine.tiling.stream_chunked` with the ``infer`` section's chunk/tile settings and
writes each output frame, clamped to ``[0, 1]`` and rounded to ``uint8``, as soon as it is final.

The restoration callable is either a network (``(1, T, C, h, w)`` in, ``(1, T, C, H, W)`` out, as
BasicVSR) or, without a checkpoint, the model-free bicubic baseline (OpenCV ``INTER_CUBIC``).
Device and execution mode are left to the caller (see ``infer.py``).
"""
import logging
import os
from collections import deque

import cv2
import numpy as np
import yaml

from mindediting.data.video_io import FrameSource, Mp4Writer, PngWriter, to_uint8, write_bytes_atomic
from mindediting.engine.tiling import stream_chunked
from mindediting.metrics import calculate_psnr

logger = logging.getLogger(__name__)

BASELINES = ("bicubic",)


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
        out = net(ms.Tensor(lq[None]))
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


def output_paths(input_path, output_dir, scale):
    stem = os.path.splitext(os.path.basename(os.path.normpath(input_path)))[0]
    base = os.path.join(output_dir, f"{stem}_x{scale}")
    return base + ".mp4", base


def run_inference(cfg, input_path, net=None, output_dir=None, max_frames=0, downscale_input=0, scale=4,
                  progress=True):
    """Restore ``input_path`` (video file or frame folder) with ``net`` or the config's baseline.

    Args:
        cfg: a config dict (see :mod:`mindediting.config`); its ``infer`` section is used.
        net: a MindSpore Cell, or None for the model-free baseline (``infer.baseline``, default bicubic).
        output_dir: overrides ``infer.output_dir``.
        max_frames: process at most this many frames (0 = all).
        downscale_input: if > 1, bicubic-downscale the input by this factor first and report PSNR of the
            output against the original frames.
        scale: the upscaling factor of ``net`` / the baseline.

    Returns a dict with ``frames``, ``mp4`` (path or None), ``png_dir`` (or None), ``psnr`` (mean dB or None),
    ``psnr_bicubic`` (the bicubic baseline on the same frames, when a network ran on a downscaled input),
    ``method``, ``fps``, ``input_size`` and ``output_size`` (width, height).
    """
    infer = dict(cfg.get("infer") or {})
    output_dir = output_dir or infer.get("output_dir") or "outputs/infer"
    save_mp4, save_png = infer.get("save_mp4", True), infer.get("save_png", False)
    if not save_mp4 and not save_png:
        raise ValueError("infer.save_mp4 and infer.save_png are both false: nothing would be written")
    _check_windows(infer)
    downscale_input = int(downscale_input or 0)
    if downscale_input < 0:
        raise ValueError(f"downscale_input must be >= 0, got {downscale_input}")

    if net is None:
        method = infer.get("baseline") or "bicubic"
        if method not in BASELINES:
            raise ValueError(f"infer.baseline is '{method}'; valid baselines: {', '.join(BASELINES)}")
        fn = bicubic_fn(scale)
        logger.info("no checkpoint given: running the model-free %s x%d baseline", method, scale)
    else:
        method = (cfg.get("model") or {}).get("name", type(net).__name__)
        fn = network_fn(net)

    source = FrameSource(input_path, max_frames=max_frames, fps=_fixed_fps(infer.get("fps")))
    fps = _fixed_fps(infer.get("fps")) or source.fps
    factor = downscale_input if downscale_input > 1 else 1
    in_w, in_h = source.width // factor, source.height // factor
    out_size = (in_w * scale, in_h * scale)
    logger.info("input %s: %d frames, %dx%d, %.3g fps%s", input_path, len(source), source.width, source.height,
                source.fps, f"; downscaled x{factor} to {in_w}x{in_h}" if factor > 1 else "")

    os.makedirs(output_dir, exist_ok=True)
    mp4_path, png_dir = output_paths(input_path, output_dir, scale)
    references = deque()  # original frames waiting for their output (only with downscale_input)

    def lq_frames():
        for frame in source:
            if factor > 1:
                h, w = frame.shape[0] - frame.shape[0] % factor, frame.shape[1] - frame.shape[1] % factor
                frame, original = downscale(frame, factor), frame[:h, :w]
                references.append((original, frame))
            yield frame.astype(np.float32).transpose(2, 0, 1) / 255.0

    psnr_fn = calculate_psnr if factor > 1 else None
    compare_bicubic = psnr_fn is not None and net is not None
    upscale = bicubic_fn(scale)
    scores, bicubic_scores = [], []
    writers = []
    try:
        if save_mp4:
            writers.append(Mp4Writer(mp4_path, fps))
        if save_png:
            writers.append(PngWriter(png_dir))
        outputs = stream_chunked(fn, lq_frames(), infer.get("chunk_frames", 0), infer.get("chunk_overlap", 0),
                                 infer.get("tile", 0), infer.get("tile_overlap", 0), scale)
        bar = _progress(len(source), progress, method)
        count = 0
        for index, frame in enumerate(outputs):
            image = to_uint8(frame.transpose(1, 2, 0))
            if (image.shape[1], image.shape[0]) != out_size:
                raise ValueError(
                    f"{method}: output frame {index} is {image.shape[1]}x{image.shape[0]}, "
                    f"expected {out_size[0]}x{out_size[1]} (x{scale} of the input)"
                )
            for writer in writers:
                writer.write(image)
            if psnr_fn is not None:
                original, small = references.popleft()
                scores.append(psnr_fn(image, original))
                if compare_bicubic:  # the same frame through the model-free baseline, for reference
                    lq = small.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
                    bicubic_scores.append(psnr_fn(to_uint8(upscale(lq)[0].transpose(1, 2, 0)), original))
            count += 1
            bar.update(1)
        bar.close()
    except BaseException:
        for writer in writers:
            if isinstance(writer, Mp4Writer):
                writer.abort()
        raise
    for writer in writers:
        writer.close()

    result = {
        "method": method,
        "frames": count,
        "input_size": (in_w, in_h),
        "output_size": out_size,
        "fps": fps,
        "mp4": mp4_path if save_mp4 else None,
        "png_dir": png_dir if save_png else None,
        "psnr": float(np.mean(scores)) if scores else None,
        "psnr_bicubic": float(np.mean(bicubic_scores)) if bicubic_scores else None,
    }
    for key in ("mp4", "png_dir"):
        if result[key]:
            logger.info("wrote %s", result[key])
    if result["psnr"] is not None:
        logger.info("%s x%d: mean PSNR %.2f dB (RGB, uint8) over %d frames against the original frames",
                    method, scale, result["psnr"], len(scores))
    if result["psnr_bicubic"] is not None:
        logger.info("bicubic x%d on the same frames: mean PSNR %.2f dB", scale, result["psnr_bicubic"])
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


def _progress(total, enabled, desc):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=desc, disable=not enabled)


def save_config(cfg, output_dir, name="infer_config.yaml"):
    """Write the merged config beside the outputs (atomically) and return its path."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, name)
    write_bytes_atomic(path, yaml.safe_dump(cfg, sort_keys=False).encode("utf-8"))
    return path
