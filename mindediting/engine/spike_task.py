"""The spike-camera adapter (Spikling; the interval and window methods, its baseline, need no checkpoint): what
eval.py and infer.py call for a model whose spec is of task ``spike``. Both run
:func:`mindediting.engine.spike_pipeline.run` with the config's ``data``/``infer`` sections; a video input is turned
into spikes first and then has ground truth, so PSNR/SSIM are reported and written to ``metrics.json``."""
from mindediting.engine.spike_pipeline import CLASSICAL_METHODS, SENSOR_HEIGHT, SENSOR_WIDTH, config_options, run

DEFAULTS = dict(methods=["interval"], output_dir=None, checkpoint=None, width=SENSOR_WIDTH, height=SENSOR_HEIGHT,
                size=None, window=32, stride=None, save_png=True, save_mp4=True, fps=None, seed=0, motion=1, gain=1.0)


def options(cfg, ckpt=None, output_dir=None, input_path=None, max_frames=0, **flags):
    """Keyword arguments of the pipeline: defaults < config < the command line's (``flags``: more of
    :func:`~mindediting.engine.spike_pipeline.run`'s arguments; None means not given)."""
    opts = dict(DEFAULTS, **config_options(cfg), model=cfg.get("model"))
    flags.update(checkpoint=ckpt, output_dir=output_dir, input_path=input_path)
    opts.update({k: v for k, v in flags.items() if v is not None and v != ""})
    opts["max_frames"] = int(max_frames or 0)
    if not opts.get("input_path"):
        raise ValueError("no input: pass --input (a .dat file or a video) or set data.root in the config")
    network = [m for m in opts["methods"] if m not in CLASSICAL_METHODS]
    if network and not opts["checkpoint"]:
        raise ValueError(f"method {network[0]} needs --ckpt (or infer.checkpoint in the config)")
    return opts


def report(results):
    """One line per method: frames, PSNR/SSIM when ground truth was given, the MP4 path."""
    for method, res in results.items():
        line = f"{method}: {res['num_frames']} frame(s)"
        if "psnr" in res:
            line += f", PSNR {res['psnr']:.2f} dB before encoding"
            if res.get("psnr_encoded") is not None:
                line += f" ({res['psnr_encoded']:.2f} dB after)"
            line += f", SSIM {res['ssim']:.4f}"
        if res.get("mp4"):
            line += f", video {res['mp4']}"
        print(line)


def evaluate(cfg, ckpt=None, output_dir=None, progress=True):
    output_dir = output_dir or (cfg.get("eval") or {}).get("output_dir")
    results = run(progress=progress, **options(cfg, ckpt, output_dir))
    report(results)
    return results


def infer(cfg, request):
    """``request.input``: a ``.dat`` stream (``--spike_size H W``), a ``.npz`` window, or a video with ``--simulate``.
    The classical methods of ``infer.method`` always run (the baseline); ``--ckpt`` adds the network.
    ``--resume auto`` continues each method's outputs from its last completed segment (``infer.chunk_frames``
    windows, 16 by default)."""
    import logging
    import os

    from mindediting.utils.atomic import check_writable_dir

    for flag, task in (("noise_sigma", "denoising"), ("add_noise", "denoising"),
                       ("downscale_input", "super-resolution"), ("mask", "video SCI"),
                       ("max_memory", "video restoration")):
        if getattr(request, flag, None):
            raise ValueError(f"--{flag} is for {task} models; this config is spike")
    if request.simulate and not request.input:
        from mindediting.data.video_io import sample_video

        request.input = sample_video("bikes")
    path = str(request.input or (cfg.get("data") or {}).get("root") or "")
    video = path and not path.lower().endswith((".dat", ".npz"))
    if video and not request.simulate:
        raise ValueError(f"{path}: not a spike stream (.dat or .npz); add --simulate to make spikes from this video")
    if request.simulate and not video:
        raise ValueError(f"--simulate makes spikes from a video; {path} is already a spike stream")
    flags = {"compare": bool(request.compare), "resume": getattr(request, "resume", None) == "auto"}
    if request.spike_size:
        flags["height"], flags["width"] = (int(v) for v in request.spike_size)
        if video:
            flags["size"] = (flags.pop("width"), flags.pop("height"))
    opts = options(cfg, request.ckpt, request.output_dir, request.input, request.max_frames, **flags)
    name = (cfg.get("model") or {}).get("name")
    if request.ckpt and name not in opts["methods"]:
        opts["methods"] = list(opts["methods"]) + [name]
    if not request.ckpt:
        logging.getLogger(__name__).info("no checkpoint given: running the classical %s method(s) (baseline)",
                                         ", ".join(opts["methods"]))
    opts["output_dir"] = opts.get("output_dir") or "outputs/infer"
    check_writable_dir(opts["output_dir"])
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such spike stream or video")
    results = run(progress=request.progress, **opts)
    report(results)
    return results
