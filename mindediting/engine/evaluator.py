"""Video super-resolution evaluation with the papers' protocols (REDS4 RGB, Vimeo90K-T centre frame on Y).

For every clip: read the LR frames, run the restoration callable (whole clip, or temporal windows and
spatial tiles with overlap from ``eval.tile``/``eval.tile_overlap`` = [frames, h, w]), clamp and round the
output to uint8 as the BasicSR/mmagic evaluators do, and score the selected frames against the ground
truth with PSNR/SSIM (``eval.convert_to`` rgb|y, ``eval.crop_border``). With ``eval.mirror_extend``
(mmagic's Vimeo90K-T test) the input is mirrored in time and the scored output averages the two
copies of the frame. Per-clip rows and the average are printed and written as CSV and JSON.
Clips that have ``read_lq`` / ``read_gt`` (the VRT test sets of :mod:`mindediting.data.vrt_testsets`:
noise and sigma channel, centre crops) read their own frames; ``eval.protocol: vrt`` scores with VRT's
functions, RGB and Y at once (metrics ``psnr``, ``ssim``, ``psnr_y``, ``ssim_y``).
"""
import csv
import io
import json
import logging
import os

import numpy as np
from tqdm import tqdm

from mindediting.data.video_io import PngWriter, read_image, write_bytes_atomic
from mindediting.data.video_sr_test import build_test_set
from mindediting.engine.tiling import run_chunked
from mindediting.metrics import calculate_psnr, calculate_ssim, to_uint8, vrt_protocol_metrics

logger = logging.getLogger(__name__)

METRICS = {"psnr": calculate_psnr, "ssim": calculate_ssim}
VRT_METRICS = ("psnr", "ssim", "psnr_y", "ssim_y")  # eval.protocol 'vrt': VRT's own functions, RGB and Y at once


def _tiling(eval_cfg):
    tile = list(eval_cfg.get("tile") or [0, 0, 0])
    overlap = list(eval_cfg.get("tile_overlap") or [0, 0, 0])
    if len(tile) != 3 or len(overlap) != 3:
        raise ValueError(f"eval.tile and eval.tile_overlap must be [frames, height, width], got {tile}, {overlap}")
    return {"chunk_frames": tile[0], "chunk_overlap": overlap[0], "tile": tile[1:], "tile_overlap": overlap[1:]}


def restore_clip(fn, lq, eval_cfg):
    """Run ``fn`` on ``lq`` (T, C, h, w) float32 with the config's mirroring and tiling; (T', C, H, W) out."""
    if eval_cfg.get("mirror_extend"):
        lq = np.concatenate([lq, lq[::-1]], axis=0)
    out = run_chunked(fn, lq, **_tiling(eval_cfg))
    if eval_cfg.get("mirror_extend"):
        t = out.shape[0]
        # mmagic: the centre frame appears at t//4 and -1-t//4 of the mirrored output
        mirrored = 0.5 * (out[t // 4] + out[-1 - t // 4])
        out = out[: t // 2].copy()
        out[(t // 2) // 2] = mirrored
    return out


def evaluate(fn, cfg, output_dir=None, progress=True):
    """Evaluate ``fn`` ((T, C, h, w) float [0,1] -> (T, C, sH, sW)) on the config's test set.

    Returns ``{'clips': [{'clip', 'frames', 'psnr', 'ssim'}...], 'average': {...}}``.
    """
    eval_cfg = cfg.get("eval") or {}
    metrics = [m.lower() for m in eval_cfg.get("metrics") or ["psnr", "ssim"]]
    vrt = eval_cfg.get("protocol") == "vrt"
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

    rows = []
    bar = tqdm(clips, desc="eval", unit="clip", disable=not progress)
    for clip in bar:
        if hasattr(clip, "read_lq"):  # clips that build their own input (VRT: noise + sigma channel, crops)
            lq = clip.read_lq()
        else:
            lq = np.stack([read_image(f, i).transpose(2, 0, 1) for i, f in enumerate(clip.lq_files)])
            lq = lq.astype(np.float32) / 255.0
        out = restore_clip(fn, lq, eval_cfg)
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


def write_results(result, metrics, output_dir):
    os.makedirs(output_dir, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["clip", "frames"] + list(metrics))
    for row in result["clips"]:
        writer.writerow([row["clip"], row["frames"]] + [f"{row[m]:.6f}" for m in metrics])
    writer.writerow(["average", sum(r["frames"] for r in result["clips"])] + [f"{result['average'][m]:.6f}" for m in metrics])
    write_bytes_atomic(os.path.join(output_dir, "metrics.csv"), text.getvalue().encode())
    write_bytes_atomic(os.path.join(output_dir, "metrics.json"), json.dumps(result, indent=2).encode())
