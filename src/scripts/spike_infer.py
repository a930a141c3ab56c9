"""Reconstruct images from a spike-camera stream: .dat recording or video (spikes simulated) -> PNG + MP4.

Methods: interval (inter-spike interval), window (spike counting), spikling (network; needs --ckpt).
With a video input the simulated stream has ground truth, and PSNR/SSIM are printed and saved to metrics.json.
--device_target/--mode apply to the Spikling network; the interval and window methods run on NumPy.

Examples:
    python src/scripts/spike_infer.py --input rec.dat --method interval window --output_dir out/rec
    python src/scripts/spike_infer.py --input clip.mp4 --size 256 256 --method spikling \
        --ckpt pretrained/spikling_small_skvideo.ckpt --output_dir out/clip
    python src/scripts/spike_infer.py --config_path configs/spikling/spikling_infer_dat.yaml --input rec.dat
"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

# without --config_path only the model section of this config is used: it names the network of the learned method
MODEL_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "spikling", "spikling_infer_dat.yaml")


def parse_args(argv=None):
    from mindediting.utils.cli import parse_script_args, script_parser

    parser = script_parser(__doc__, config_help="YAML config (configs/spikling/*.yaml); command-line flags win",
                           output_help="where PNG folders, MP4s and metrics.json go", config_required=False)
    # the old --config is a prefix of --config_path: without this argparse would still accept it
    parser.allow_abbrev = False
    parser.add_argument("--input", help="spike .dat file or a video")
    parser.add_argument("--method", nargs="+", help="reconstruction method(s): interval, window, or the config's "
                        "model name (spikling) (default interval)")
    parser.add_argument("--ckpt", help="Spikling checkpoint (.ckpt, or an upstream .pth) for --method spikling")
    parser.add_argument("--width", type=int, help=".dat frame width (default 400)")
    parser.add_argument("--height", type=int, help=".dat frame height (default 250)")
    parser.add_argument("--size", nargs=2, type=int, metavar=("W", "H"), help="simulated frame size for a video")
    parser.add_argument("--window", type=int, help="spike frames per output image (default 32)")
    parser.add_argument("--stride", type=int, help="frames between output images (default = window)")
    parser.add_argument("--fps", type=float, help="MP4 frame rate (default: the video's, 30 for .dat)")
    parser.add_argument("--seed", type=int, help="simulation seed for a video input (default 0)")
    parser.add_argument("--max_frames", type=int, default=0, help="simulate at most N video frames (0 = all)")
    parser.add_argument("--no_png", action="store_true", help="do not write PNG frames")
    parser.add_argument("--no_mp4", action="store_true", help="do not write MP4 files")
    return parse_script_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    from mindediting.config import load_config
    from mindediting.engine import spike_task
    from mindediting.engine.runtime import setup_runtime
    from mindediting.engine.spike_pipeline import run
    from mindediting.utils.cli import run_cli

    def body():
        if args.config_path:
            cfg = load_config(args.config_path, args.overrides)
        elif args.overrides:
            raise ValueError(f"overrides {args.overrides} need --config_path")
        else:
            cfg = {"model": load_config(MODEL_CONFIG)["model"]}
        flags = dict(methods=args.method, width=args.width, height=args.height,
                     size=tuple(args.size) if args.size else None, window=args.window, stride=args.stride,
                     fps=args.fps, seed=args.seed, save_png=False if args.no_png else None,
                     save_mp4=False if args.no_mp4 else None)
        opts = spike_task.options(cfg, args.ckpt, args.output_dir, args.input, args.max_frames, **flags)
        setup_runtime(cfg, args)
        spike_task.report(run(progress=True, **opts))

    return run_cli(body, errors=(ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
