"""Reconstruct images from a spike-camera stream: .dat recording or video (spikes simulated) -> PNG + MP4.

Methods: interval (inter-spike interval), window (spike counting), spikling (network; needs --ckpt).
With a video input the simulated stream has ground truth, and PSNR/SSIM are printed and saved to metrics.json.

Examples:
    python src/scripts/spike_infer.py --input rec.dat --method interval window --output-dir out/rec
    python src/scripts/spike_infer.py --input clip.mp4 --size 256 256 --method spikling \
        --ckpt pretrained/spikling_small_skvideo.ckpt --output-dir out/clip
    python src/scripts/spike_infer.py --config configs/spikling/spikling_infer_dat.yaml --input rec.dat
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

METHODS = ("interval", "window", "spikling")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML config (configs/spikling/*.yaml); command-line flags win")
    parser.add_argument("--input", help="spike .dat file or a video")
    parser.add_argument("--method", nargs="+", choices=METHODS, help="reconstruction method(s) (default interval)")
    parser.add_argument("--ckpt", help="Spikling checkpoint (.ckpt, or an upstream .pth) for --method spikling")
    parser.add_argument("--output-dir", help="where PNG folders, MP4s and metrics.json go")
    parser.add_argument("--width", type=int, help=".dat frame width (default 400)")
    parser.add_argument("--height", type=int, help=".dat frame height (default 250)")
    parser.add_argument("--size", nargs=2, type=int, metavar=("W", "H"), help="simulated frame size for a video")
    parser.add_argument("--window", type=int, help="spike frames per output image (default 32)")
    parser.add_argument("--stride", type=int, help="frames between output images (default = window)")
    parser.add_argument("--fps", type=float, help="MP4 frame rate (default: the video's, 30 for .dat)")
    parser.add_argument("--seed", type=int, help="simulation seed for a video input (default 0)")
    parser.add_argument("--max-frames", type=int, default=0, help="simulate at most N video frames (0 = all)")
    parser.add_argument("--no-png", action="store_true", help="do not write PNG frames")
    parser.add_argument("--no-mp4", action="store_true", help="do not write MP4 files")
    parser.add_argument("overrides", nargs="*", help="config overrides section.key=value")
    return parser.parse_args(argv)


def options_from(args):
    """Merge config (if any) and flags into keyword arguments of :func:`spike_pipeline.run`."""
    opts = dict(methods=["interval"], output_dir=None, checkpoint=None, width=400, height=250, size=None,
                window=32, stride=None, save_png=True, save_mp4=True, fps=None, seed=0)
    if args.config:
        from mindediting.config import load_config
        from mindediting.engine.spike_pipeline import config_options

        opts.update(config_options(load_config(args.config, args.overrides)))
    elif args.overrides:
        raise ValueError(f"overrides {args.overrides} need --config")
    flags = dict(input_path=args.input, methods=args.method, checkpoint=args.ckpt, output_dir=args.output_dir,
                 width=args.width, height=args.height, size=tuple(args.size) if args.size else None,
                 window=args.window, stride=args.stride, fps=args.fps, seed=args.seed)
    opts.update({k: v for k, v in flags.items() if v is not None})
    if args.no_png:
        opts["save_png"] = False
    if args.no_mp4:
        opts["save_mp4"] = False
    opts["max_frames"] = args.max_frames
    if not opts.get("input_path"):
        raise ValueError("no input: pass --input (a .dat file or a video) or set data.root in the config")
    if "spikling" in opts["methods"] and not opts["checkpoint"]:
        raise ValueError("--method spikling needs --ckpt (or infer.checkpoint in the config)")
    return opts


def main(argv=None):
    args = parse_args(argv)
    from mindediting.config import ConfigError
    from mindediting.convert.pth_reader import CheckpointError
    from mindediting.engine.spike_pipeline import run
    from mindediting.utils.cli import run_cli

    def body():
        report(run(progress=True, **options_from(args)))

    return run_cli(body, errors=(ConfigError, CheckpointError, ValueError, OSError))


def report(results):
    """One line per method: frames, PSNR/SSIM when ground truth was given, the MP4 path."""
    for method, res in results.items():
        line = f"{method}: {res['num_frames']} frame(s)"
        if "psnr" in res:
            line += f", PSNR {res['psnr']:.2f} dB, SSIM {res['ssim']:.4f}"
        if res.get("mp4"):
            line += f", video {res['mp4']}"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
