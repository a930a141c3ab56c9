"""Video super-resolution evaluation with the papers' protocols (REDS4 RGB, Vimeo90K-T centre frame on Y).

For every clip: read the LR frames, run the restoration callable (whole clip, or temporal windows and
spatial tiles with overlap from ``eval.tile``/``eval.tile_overlap`` = [frames, h, w], put back together by
the model's tiling: generic averaging or VRT's blending, :mod:`mindediting.engine.tiling`), clamp and round the
output to uint8 as the BasicSR/mmagic evaluators do, and score the selected frames against the ground
truth with PSNR/SSIM (``eval.convert_to`` rgb|y, ``eval.crop_border``). With ``eval.mirror_extend``
(mmagic's Vimeo90K-T test) the input is mirrored in time and the scored output averages the two
copies of the frame. Per-clip rows and the average are printed and written as CSV and JSON.
Clips that have ``read_lq`` / ``read_gt`` (the VRT test sets of :mod:`mindediting.data.vrt_testsets`:
noise and sigma channel, centre crops) read their own frames; ``eval.protocol: kair`` scores with VRT's (KAIR main_test_vrt.py)
functions, RGB and Y at once (metrics ``psnr``, ``ssim``, ``psnr_y``, ``ssim_y``).
"""
import csv
import io
import json
import logging
import os

import numpy as np
from tqdm import tqdm

from mindediting.data.video_io import PngWriter, read_image, to_uint8, write_bytes_atomic
from mindediting.data.video_sr_test import build_test_set
from mindediting.engine.tiling import run_blended, run_chunked
from mindediting.metrics import calculate_psnr, calculate_ssim, vrt_protocol_metrics
from mindediting.registry import TILINGS

logger = logging.getLogger(__name__)

METRICS = {"psnr": calculate_psnr, "ssim": calculate_ssim}
VRT_METRICS = ("psnr", "ssim", "psnr_y", "ssim_y")  # eval.protocol 'kair': VRT's own functions, RGB and Y at once


# VRT's constructor defaults: blend tiling needs the network's scale and attention window
# how eval.py names each tiling in its printed header, so a score says how it was made
TILING_NAMES = {"generic": "generic tiling (overlapping tiles averaged)",
                "blend": "blend tiling (upstream VRT test_video)", "none": "whole clips (no tiling)"}
BLEND_DEFAULTS = {"upscale": 4, "window_size": [6, 8, 8], "nonblind_denoising": False}


def _tile_settings(eval_cfg):
    tile = list(eval_cfg.get("tile") or [0, 0, 0])
    overlap = list(eval_cfg.get("tile_overlap") or [0, 0, 0])
    if len(tile) != 3 or len(overlap) != 3:
        raise ValueError(f"eval.tile and eval.tile_overlap must be [frames, height, width], got {tile}, {overlap}")
    return tile, overlap


def clip_restorer(fn, cfg, tiling="generic"):
    """``fn`` split by ``eval.tile`` / ``eval.tile_overlap`` ([frames, height, width]) the way ``tiling`` says.

    ``fn`` maps a ``(T, C, h, w)`` float32 clip to ``(T, C', H, W)``. ``generic``: temporal chunks and
    spatial tiles averaged (:func:`~mindediting.engine.tiling.run_chunked`); ``blend``: VRT's upstream
    ``test_video`` (:func:`~mindediting.engine.tiling.run_blended`), with ``model.args`` ``upscale``,
    ``window_size`` and ``nonblind_denoising``; ``none``: whole clips, ``eval.tile`` unused.
    Every result goes through ``run_chunked`` once more, whole, for its output shape check.
    """
    if tiling not in TILINGS:
        raise ValueError(f"tiling '{tiling}' is not one of {', '.join(TILINGS)}")
    tile, overlap = _tile_settings(cfg.get("eval") or {})
    if tiling == "none":
        return lambda lq: run_chunked(fn, lq)
    if tiling == "generic":
        return lambda lq: run_chunked(fn, lq, tile[0], overlap[0], tile[1:], overlap[1:])
    args = {**BLEND_DEFAULTS, **((cfg.get("model") or {}).get("args") or {})}

    def blended(lq):
        out = run_blended(fn, lq, args["upscale"], args["window_size"], tile, overlap, args["nonblind_denoising"])
        # frame interpolation gives one frame: repeated to the input length for the shape check; only frame 0 is scored
        return np.repeat(out, len(lq), axis=0) if len(out) == 1 < len(lq) else out

    return lambda lq: run_chunked(blended, lq)


def restore_clip(restore, lq, eval_cfg):
    """Run ``restore`` (a :func:`clip_restorer`) on ``lq`` (T, C, h, w) float32 with the config's mirroring.

    ``eval.single_frame: N`` is the ablation of a multi-frame model's use of its neighbours: every frame is
    restored from a clip of N copies of itself (nothing to align, no other frame's content) and the middle
    output is kept; N is the clip length the model normally sees, so only the temporal information differs.
    """
    copies = int(eval_cfg.get("single_frame") or 0)
    if copies < 0:
        raise ValueError(f"eval.single_frame must be >= 0 (copies of each frame; 0 = off), got {copies}")
    if copies:
        single = dict(eval_cfg, single_frame=0)
        return np.stack([restore_clip(restore, np.repeat(lq[t:t + 1], copies, axis=0), single)[copies // 2]
                         for t in range(len(lq))])
    if eval_cfg.get("mirror_extend"):
        lq = np.concatenate([lq, lq[::-1]], axis=0)
    out = restore(lq)
    if eval_cfg.get("mirror_extend"):
        t = out.shape[0]
        # mmagic: the centre frame appears at t//4 and -1-t//4 of the mirrored output
        mirrored = 0.5 * (out[t // 4] + out[-1 - t // 4])
        out = out[: t // 2].copy()
        out[(t // 2) // 2] = mirrored
    return out


def evaluate(fn, cfg, output_dir=None, progress=True, tiling="generic"):
    """Evaluate ``fn`` ((T, C, h, w) float [0,1] -> (T, C, sH, sW)) on the config's test set.

    ``tiling`` (``generic`` | ``blend`` | ``none``, a model spec's ``tiling``) says how ``eval.tile``
    splits each clip (see :func:`clip_restorer`); training validation and eval.py pass the same value.
    Returns ``{'clips': [{'clip', 'frames', 'psnr', 'ssim'}...], 'average': {...}}``.
    """
    eval_cfg = cfg.get("eval") or {}
    metrics = [m.lower() for m in eval_cfg.get("metrics") or ["psnr", "ssim"]]
    vrt = eval_cfg.get("protocol") == "kair"
    unknown = [m for m in metrics if m not in (VRT_METRICS if vrt else METRICS)]
    if unknown:
        valid = ", ".join(VRT_METRICS if vrt else METRICS)
        raise ValueError(f"eval.metrics: unknown metric(s) {unknown} (valid: {valid})")
    clips = build_test_set(cfg.get("data") or {})
    if eval_cfg.get("max_clips"):
        clips = clips[: eval_cfg["max_clips"]]
    y_channel = (eval_cfg.get("convert_to") or "rgb").lower() == "y"
    crop = int(eval_cfg.get("crop_border") or 0)
    save_frames = bool(eval_cfg.get("save_frames")) and output_dir

    restore = clip_restorer(fn, cfg, tiling)
    rows = []
    bar = tqdm(clips, desc="eval", unit="clip", disable=not progress)
    for clip in bar:
        if hasattr(clip, "read_lq"):  # clips that build their own input (VRT: noise + sigma channel, crops)
            lq = clip.read_lq()
        else:
            lq = np.stack([read_image(f, i).transpose(2, 0, 1) for i, f in enumerate(clip.lq_files)])
            lq = lq.astype(np.float32) / 255.0
        out = restore_clip(restore, lq, eval_cfg)
        scores = {m: [] for m in metrics}
        writer = PngWriter(os.path.join(output_dir, "frames", clip.name)) if save_frames else None
        for k, (index, gt_file) in enumerate(zip(clip.score_indices, clip.gt_files)):
            pred = to_uint8(out[index].transpose(1, 2, 0))
            gt = clip.read_gt(k) if hasattr(clip, "read_gt") else read_image(gt_file)
            if pred.shape != gt.shape:
                raise ValueError(f"clip {clip.name}: output {pred.shape} does not match ground truth {gt_file} {gt.shape}")
            values = vrt_protocol_metrics(pred, gt, border=crop) if vrt else None
            for m in metrics:
                scores[m].append(values[m] if vrt else METRICS[m](pred, gt, crop_border=crop, test_y_channel=y_channel))
            if writer:
                writer.write(pred)
        if writer:
            writer.close()
        row = {"clip": clip.name, "frames": len(clip.score_indices)}
        row.update({m: float(np.mean(v)) for m, v in scores.items()})
        rows.append(row)
        bar.set_postfix({m: f"{row[m]:.4f}" for m in metrics})
    average = {m: float(np.mean([r[m] for r in rows])) for m in metrics}
    channel = "RGB and Y (VRT protocol)" if vrt else "Y" if y_channel else "RGB"
    result = {"clips": rows, "average": average, "channel": channel, "crop_border": crop}
    if output_dir:
        write_results(result, metrics, output_dir)
    return result


def format_table(result, metrics=None):
    metrics = [m for m in metrics or result["average"] if m in result["average"]]
    lines = [f"{'clip':<14}{'frames':>7}" + "".join(f"{m.upper():>10}" for m in metrics)]
    for row in result["clips"]:
        lines.append(f"{row['clip']:<14}{row['frames']:>7}" + "".join(f"{row[m]:>10.4f}" for m in metrics))
    frames = sum(r["frames"] for r in result["clips"])
    lines.append(f"{'average':<14}{frames:>7}" + "".join(f"{result['average'][m]:>10.4f}" for m in metrics))
    lines.append(f"({result['channel']} channel, crop_border {result['crop_border']}; average of clip averages)")
    return "\n".join(lines)


METRICS_FILES = ("metrics.csv", "metrics.json")  # what every evaluation (video, SCI, spike) writes


def write_metrics(output_dir, result, columns, rows):
    """Write the metrics files of an evaluation into ``output_dir``: ``metrics.csv`` (``columns``, then one
    line per row dict: clip, scene or method, and the average last; floats with 6 decimals, None empty) and
    ``metrics.json`` (``result`` as it is). Every evaluator goes through here so the names stay one."""
    os.makedirs(output_dir, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(columns)
    for row in rows:
        cells = [row.get(c) for c in columns]
        writer.writerow(["" if v is None else f"{v:.6f}" if isinstance(v, float) else v for v in cells])
    csv_name, json_name = METRICS_FILES
    write_bytes_atomic(os.path.join(output_dir, csv_name), text.getvalue().encode())
    write_bytes_atomic(os.path.join(output_dir, json_name), json.dumps(result, indent=2).encode())


def write_results(result, metrics, output_dir):
    average = dict(result["average"], clip="average", frames=sum(r["frames"] for r in result["clips"]))
    write_metrics(output_dir, result, ["clip", "frames"] + list(metrics), result["clips"] + [average])
