"""The spike-camera adapter (Spikling; the interval and window methods need no checkpoint): what eval.py and
infer.py call for a model whose spec is of task ``spike``. Both run :func:`mindediting.engine.spike_pipeline.run`
with the config's ``data``/``infer`` sections; a video input is turned into spikes first and then has ground
truth, so PSNR/SSIM are reported and written to ``metrics.json``."""
from mindediting.engine.spike_pipeline import CLASSICAL_METHODS, SENSOR_HEIGHT, SENSOR_WIDTH, config_options, run

DEFAULTS = dict(methods=["interval"], output_dir=None, checkpoint=None, width=SENSOR_WIDTH, height=SENSOR_HEIGHT,
                size=None, window=32, stride=None, save_png=True, save_mp4=True, fps=None, seed=0)


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
        raise ValueError(f"--method {network[0]} needs --ckpt (or infer.checkpoint in the config)")
    return opts


def report(results):
    """One line per method: frames, PSNR/SSIM when ground truth was given, the MP4 path."""
    for method, res in results.items():
        line = f"{method}: {res['num_frames']} frame(s)"
        if "psnr" in res:
            line += f", PSNR {res['psnr']:.2f} dB, SSIM {res['ssim']:.4f}"
        if res.get("mp4"):
            line += f", video {res['mp4']}"
        print(line)


def evaluate(cfg, ckpt=None, output_dir=None, progress=True):
    output_dir = output_dir or (cfg.get("eval") or {}).get("output_dir")
    results = run(progress=progress, **options(cfg, ckpt, output_dir))
    report(results)
    return results


def infer(cfg, request):
    results = run(progress=request.progress, **options(cfg, request.ckpt, request.output_dir, request.input,
                                                         request.max_frames))
    report(results)
    return results
